/* worker/xalloc.c - allocation that aborts on out of memory. */
#include "worker/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void xalloc_oom(size_t size)
{
    fprintf(stderr, "out of memory allocating %zu bytes\n", size);
    abort();
}

void *xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);

    if (p == NULL)
        xalloc_oom(size);
    return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

    if (p == NULL)
        xalloc_oom(nmemb * size);
    return p;
}

void *xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);

    if (q == NULL)
        xalloc_oom(size);
    return q;
}

char *xstrdup(const char *s)
{
    char *p = strdup(s);

    if (p == NULL)
        xalloc_oom(strlen(s) + 1);
    return p;
}
