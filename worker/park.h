/* worker/park.h - what waits for a time: parked units, by wake time.
 *
 * One owner for the loop's timers (redis' `ae` time events are the model):
 * a unit that must wait (a rate-limit wait, Redis away, another replica's
 * mark) is parked until a monotonic time; one that may go on at the next
 * turn (a connection place or a token lease came free) is parked "now".
 * A callback's status update that came before the state it follows was on
 * Kafka waits here too; the loop tells them apart by their first member
 * (enum event_owner).
 * Both are O(log n) or O(1): a min-heap by wake time and a FIFO, so a
 * burst of thousands of wake-ups costs what it costs, not its square.
 * Loop thread only. */
#ifndef WORKER_PARK_H
#define WORKER_PARK_H

#include <stddef.h>
#include <stdint.h>

struct park_item {
    int64_t wake_ms;
    uint64_t seq; /* ties resolve in parking order */
    void *item;
};

struct parking {
    struct park_item *heap; /* by (wake_ms, seq) */
    size_t nheap, heap_cap;
    void **ready; /* a ring: due at the next turn */
    size_t ready_head, nready, ready_cap;
    uint64_t seq;
};

/* Parks `item` until monotonic wake_ms. */
void park_at(struct parking *p, void *item, int64_t wake_ms);

/* Parks `item` for the next turn. */
void park_now(struct parking *p, void *item);

/* How many items are parked. */
size_t park_count(const struct parking *p);

/* The earliest wake time (0 when something is ready now), or INT64_MAX
 * when nothing is parked. */
int64_t park_next_wake(const struct parking *p);

/* Takes up to `max` items that are due at `now_ms`, ready ones first, into
 * out[]; returns how many. Items parked while the caller handles them wait
 * for the next call. */
size_t park_take_due(struct parking *p, int64_t now_ms, void **out, size_t max);

/* Calls fn(item, arg) for every parked item, in no particular order (for
 * counting them). */
void park_each(const struct parking *p, void (*fn)(void *item, void *arg),
               void *arg);

/* Takes any one parked item, due or not (shutdown), or returns NULL. */
void *park_take_any(struct parking *p);

/* Frees the parking's arrays (not the items). */
void park_cleanup(struct parking *p);

#endif /* WORKER_PARK_H */
