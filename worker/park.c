/* worker/park.c - parked units by wake time: a min-heap and a FIFO. */
#include "worker/park.h"

#include <stdlib.h>
#include <string.h>

#include "worker/xalloc.h"

static int park_before(const struct park_item *a, const struct park_item *b)
{
    return a->wake_ms < b->wake_ms ||
           (a->wake_ms == b->wake_ms && a->seq < b->seq);
}

void park_at(struct parking *p, void *item, int64_t wake_ms)
{
    if (p->nheap == p->heap_cap) {
        p->heap_cap = p->heap_cap ? p->heap_cap * 2 : 64;
        p->heap = xrealloc(p->heap, p->heap_cap * sizeof(*p->heap));
    }
    size_t i = p->nheap++;
    struct park_item it = {wake_ms, p->seq++, item};
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!park_before(&it, &p->heap[up]))
            break;
        p->heap[i] = p->heap[up];
        i = up;
    }
    p->heap[i] = it;
}

static void park_pop_heap(struct parking *p)
{
    struct park_item last = p->heap[--p->nheap];
    size_t i = 0;

    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= p->nheap)
            break;
        if (c + 1 < p->nheap && park_before(&p->heap[c + 1], &p->heap[c]))
            c++;
        if (!park_before(&p->heap[c], &last))
            break;
        p->heap[i] = p->heap[c];
        i = c;
    }
    if (p->nheap > 0)
        p->heap[i] = last;
}

void park_now(struct parking *p, void *item)
{
    if (p->nready == p->ready_cap) {
        size_t cap = p->ready_cap ? p->ready_cap * 2 : 64;
        void **ring = xmalloc(cap * sizeof(*ring));
        for (size_t i = 0; i < p->nready; i++)
            ring[i] = p->ready[(p->ready_head + i) % p->ready_cap];
        free(p->ready);
        p->ready = ring;
        p->ready_cap = cap;
        p->ready_head = 0;
    }
    p->ready[(p->ready_head + p->nready++) % p->ready_cap] = item;
}

size_t park_count(const struct parking *p)
{
    return p->nheap + p->nready;
}

int64_t park_next_wake(const struct parking *p)
{
    if (p->nready > 0)
        return 0;
    return p->nheap > 0 ? p->heap[0].wake_ms : INT64_MAX;
}

size_t park_take_due(struct parking *p, int64_t now_ms, void **out, size_t max)
{
    size_t n = 0;

    while (n < max && p->nready > 0) {
        out[n++] = p->ready[p->ready_head];
        p->ready_head = (p->ready_head + 1) % p->ready_cap;
        p->nready--;
    }
    while (n < max && p->nheap > 0 && p->heap[0].wake_ms <= now_ms) {
        out[n++] = p->heap[0].item;
        park_pop_heap(p);
    }
    return n;
}

void park_each(const struct parking *p, void (*fn)(void *item, void *arg),
               void *arg)
{
    for (size_t i = 0; i < p->nheap; i++)
        fn(p->heap[i].item, arg);
    for (size_t i = 0; i < p->nready; i++)
        fn(p->ready[(p->ready_head + i) % p->ready_cap], arg);
}

void *park_take_any(struct parking *p)
{
    void *item;

    if (park_take_due(p, INT64_MAX, &item, 1) == 1)
        return item;
    return NULL;
}

void park_cleanup(struct parking *p)
{
    free(p->heap);
    free(p->ready);
    memset(p, 0, sizeof(*p));
}
