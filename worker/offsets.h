/* worker/offsets.h - per-partition completion watermarks (at-least-once).
 *
 * Jobs of one partition finish out of order, but Kafka keeps one committed
 * offset per partition, and "only greater offsets are committed". So an
 * offset may be stored only when every lower offset of its partition is
 * done: the watermark. offsets_track() is called for every message in poll
 * order; offsets_done() when its job has ended (its events acknowledged by
 * Kafka); it returns the offset to store, if the watermark moved. */
#ifndef WORKER_OFFSETS_H
#define WORKER_OFFSETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct offsets;

/* Returns a new, empty tracker. */
struct offsets *offsets_new(void);

/* Frees the tracker. offsets_free(NULL) does nothing. */
void offsets_free(struct offsets *o);

/* Records that `offset` of (topic, partition) is in progress. Offsets of a
 * partition must be tracked in increasing order. */
void offsets_track(struct offsets *o, const char *topic, int32_t partition,
                   int64_t offset);

/* Marks `offset` done. Returns true and sets *store_out to the offset to
 * store (the next offset to consume: last contiguous done + 1) when the
 * watermark moved; false otherwise, also for an untracked partition (one
 * revoked meanwhile). */
bool offsets_done(struct offsets *o, const char *topic, int32_t partition,
                  int64_t offset, int64_t *store_out);

/* Forgets a partition (on revocation). */
void offsets_forget(struct offsets *o, const char *topic, int32_t partition);

struct metrics;

/* Sets kurir_kafka_oldest_unfinished_age_seconds{topic,partition} in m for
 * every partition tracked: the seconds since its oldest unfinished offset
 * was tracked, 0 when none is unfinished. Partitions forgotten since the
 * last call disappear. Call on the loop thread before rendering. */
void offsets_read_metrics(const struct offsets *o, struct metrics *m);

/* Returns the number of offsets in progress over all partitions. */
size_t offsets_pending(const struct offsets *o);

#endif /* WORKER_OFFSETS_H */
