/* worker/xalloc.h - allocation that aborts on out of memory (STYLE §4.3.8).
 * Callers never test the result. */
#ifndef WORKER_XALLOC_H
#define WORKER_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);

#endif /* WORKER_XALLOC_H */
