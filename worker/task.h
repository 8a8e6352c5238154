/* worker/task.h - one unit of work, from its source (a Kafka message of a
 * job or part topic, or a Redis entry) to its acknowledged end.
 *
 * Lifecycle of a task (worker/task.c has the stages):
 *
 *   consumed -> parsed and checked -> [scheduled in Redis | fanned out as
 *            parts | tokens -> marks -> the unit's call -> outcome recorded]
 *            -> ended: every event acknowledged by Kafka -> offset stored.
 *
 * A job that cannot be processed (bad JSON, unknown account, invalid field)
 * goes to the DLQ with a `rejected` event when it had an id. A task owns its
 * Kafka message, its parsed job, its calls and their results; task_release
 * frees them all. */
#ifndef WORKER_TASK_H
#define WORKER_TASK_H

#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "worker/worker.h"

/* Starts a task for a consumed message (ownership of rkm passes). */
void task_start(struct worker *w, rd_kafka_message_t *rkm);

/* Starts a task for a scheduled send or retry claimed from Redis in
 * `account` (ownership of the entry's strings passes; *entry is zeroed). */
void task_start_entry(struct worker *w, const char *account,
                      struct sched_entry *entry);

/* Extends, to lease_ms from now, the lease of every scheduled send or
 * retry this replica claimed and still works on (one script per account
 * and 256 claims), so no other replica claims it meanwhile. Called every
 * lease/3; a failure is logged, and the next call tries again. */
void task_extend_leases(struct worker *w, int64_t lease_ms);

/* Why a task is parked (kurir_units_parked's `cause`). */
enum task_wait {
    TASK_WAIT_REDIS,      /* Redis away: the same step again */
    TASK_WAIT_BUSY,       /* another unit holds some recipients */
    TASK_WAIT_RATELIMIT,  /* the account's bucket, a short Retry-After */
    TASK_WAIT_SCHEDULE,   /* a claimed scheduled send, due in a moment */
    TASK_WAIT_REDELIVERY, /* a redelivered job, for its first owner's events */
    TASK_WAIT_NEXT,       /* a place or a lease came free: the next turn */
    TASK_WAIT_N,
};

/* The cause names, by enum task_wait. */
extern const char *const task_wait_names[TASK_WAIT_N];

/* Resumes a parked task whose wake time has come. */
void task_resume(struct task *t);

/* Why the parked task waits. */
enum task_wait task_parked_for(const struct task *t);

/* The next task in the same waiting queue (tokens or connections), for
 * counting them. */
const struct task *task_next_parked(const struct task *t);

/* Kafka acknowledged (or refused for good) one event of this task. */
void task_event_delivered(struct task *t, rd_kafka_resp_err_t err);

/* Abandons a task at shutdown: its offset stays unstored, so Kafka
 * redelivers the job to the next owner. */
void task_abandon(struct task *t);

/* Abandons every parked task (shutdown). */
void task_abandon_parked(struct worker *w);

/* Frees every task left, storing no offsets: for the very end, after the
 * HTTP and Kafka clients are gone, so no callback can reach a task. */
void task_free_all(struct worker *w);

#endif /* WORKER_TASK_H */
