/* ratelimit/rargv.c - the arguments of one Redis call. */
#include "ratelimit/rargv.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *rargv_realloc(void *p, size_t n, size_t size)
{
    p = realloc(p, n * size);
    if (p == NULL)
        abort();
    return p;
}

void rargv_add(struct rargv *a, const char *s, size_t len)
{
    char *copy = malloc(len + 1);

    if (copy == NULL)
        abort();
    if (len > 0)
        memcpy(copy, s, len);
    copy[len] = '\0';
    if (a->n == a->cap) {
        a->cap = a->cap == 0 ? 16 : a->cap * 2;
        a->v = rargv_realloc(a->v, a->cap, sizeof(*a->v));
        a->len = rargv_realloc(a->len, a->cap, sizeof(*a->len));
    }
    a->v[a->n] = copy;
    a->len[a->n] = len;
    a->n++;
}

void rargv_adds(struct rargv *a, const char *s)
{
    rargv_add(a, s, strlen(s));
}

void rargv_addi(struct rargv *a, int64_t v)
{
    char buf[24];

    snprintf(buf, sizeof(buf), "%" PRId64, v);
    rargv_adds(a, buf);
}

void rargv_cleanup(struct rargv *a)
{
    for (size_t i = 0; i < a->n; i++)
        free((char *)a->v[i]);
    free(a->v);
    free(a->len);
    memset(a, 0, sizeof(*a));
}
