/* worker/offsets.c - per-partition completion watermarks.
 *
 * Each partition keeps a FIFO of its in-progress offsets in poll order with a
 * done flag. Marking an offset done finds it by binary search (offsets in the
 * FIFO increase, though not always by one: compaction and transaction
 * markers leave gaps) and then pops every done entry from the head; the
 * watermark is the last popped offset + 1. */
#include "worker/offsets.h"

#include <assert.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "worker/metrics.h"
#include "worker/xalloc.h"

struct offsets_entry {
    int64_t offset;
    int64_t tracked_ms; /* monotonic, for the oldest unfinished age */
    bool done;
};

struct offsets_part {
    char *topic;
    int32_t partition;
    struct offsets_entry *ring; /* FIFO of `count` entries from `head` */
    size_t cap;                 /* a power of two */
    size_t head;
    size_t count;
};

struct offsets {
    struct offsets_part *parts;
    size_t nparts;
    size_t pending;
};

struct offsets *offsets_new(void)
{
    return xcalloc(1, sizeof(struct offsets));
}

void offsets_free(struct offsets *o)
{
    if (o == NULL)
        return;
    for (size_t i = 0; i < o->nparts; i++) {
        free(o->parts[i].topic);
        free(o->parts[i].ring);
    }
    free(o->parts);
    free(o);
}

static struct offsets_part *offsets_find(const struct offsets *o,
                                         const char *topic, int32_t partition)
{
    for (size_t i = 0; i < o->nparts; i++)
        if (o->parts[i].partition == partition &&
            strcmp(o->parts[i].topic, topic) == 0)
            return &o->parts[i];
    return NULL;
}

static struct offsets_entry *part_at(struct offsets_part *p, size_t i)
{
    return &p->ring[(p->head + i) & (p->cap - 1)];
}

static int64_t offsets_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void offsets_track(struct offsets *o, const char *topic, int32_t partition,
                   int64_t offset)
{
    struct offsets_part *p = offsets_find(o, topic, partition);

    if (p == NULL) {
        o->parts = xrealloc(o->parts, (o->nparts + 1) * sizeof(*o->parts));
        p = &o->parts[o->nparts++];
        memset(p, 0, sizeof(*p));
        p->topic = xstrdup(topic);
        p->partition = partition;
    }
    assert(p->count == 0 || part_at(p, p->count - 1)->offset < offset);
    if (p->count == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        struct offsets_entry *ring = xmalloc(cap * sizeof(*ring));
        for (size_t i = 0; i < p->count; i++)
            ring[i] = *part_at(p, i);
        free(p->ring);
        p->ring = ring;
        p->cap = cap;
        p->head = 0;
    }
    struct offsets_entry *e = part_at(p, p->count++);
    e->offset = offset;
    e->tracked_ms = offsets_now_ms();
    e->done = false;
    o->pending++;
}

bool offsets_done(struct offsets *o, const char *topic, int32_t partition,
                  int64_t offset, int64_t *store_out)
{
    struct offsets_part *p = offsets_find(o, topic, partition);

    if (p == NULL || p->count == 0)
        return false;
    size_t lo = 0, hi = p->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (part_at(p, mid)->offset < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == p->count || part_at(p, lo)->offset != offset ||
        part_at(p, lo)->done)
        return false;
    part_at(p, lo)->done = true;
    o->pending--;

    bool moved = false;
    while (p->count > 0 && part_at(p, 0)->done) {
        *store_out = part_at(p, 0)->offset + 1;
        p->head = (p->head + 1) & (p->cap - 1);
        p->count--;
        moved = true;
    }
    return moved;
}

void offsets_forget(struct offsets *o, const char *topic, int32_t partition)
{
    struct offsets_part *p = offsets_find(o, topic, partition);

    if (p == NULL)
        return;
    for (size_t i = 0; i < p->count; i++)
        if (!part_at(p, i)->done)
            o->pending--;
    free(p->topic);
    free(p->ring);
    *p = o->parts[--o->nparts];
}

size_t offsets_pending(const struct offsets *o)
{
    return o->pending;
}

void offsets_read_metrics(const struct offsets *o, struct metrics *m)
{
    int64_t now = offsets_now_ms();
    char part[16];

    metrics_clear(m, M_KAFKA_OLDEST_AGE);
    for (size_t i = 0; i < o->nparts; i++) {
        struct offsets_part *p = &o->parts[i];
        /* Done entries at the head are popped at once, so the head is the
         * oldest unfinished offset. */
        double age = p->count > 0
                         ? (double)(now - part_at(p, 0)->tracked_ms) / 1000.0
                         : 0.0;
        snprintf(part, sizeof(part), "%d", (int)p->partition);
        metrics_set(m, M_KAFKA_OLDEST_AGE, ML(p->topic, part), age);
    }
}
