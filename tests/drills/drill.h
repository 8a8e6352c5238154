/* tests/drills/drill.h - the fault drills' harness: kurir replicas, the
 * provider stand-in, a Redis of the drill's own when it must stop it, and
 * the checks every drill ends with (CONTRACT §6), read from Kafka and from
 * the stand-in's record:
 *
 *   - every job id reaches a settled state on the status topic, or the DLQ;
 *   - no recipient holds two different final states;
 *   - no recipient is sent twice, except inside the documented window (a
 *     replica died between the provider's answer and the record: the
 *     recipient is `unknown`, code `interrupted`), and those are counted;
 *   - no recipient's state moves backwards (the event order per recipient);
 *   - the replicas recover by themselves: the time from the fault's end to
 *     the last job settled is printed.
 *
 * Each drill appends one line to $KURIR_DRILL_RESULTS (tests/drills/table
 * prints them as the drill table). KURIR_DRILL_LONG=1 runs the long sizes
 * (tests/drills/README.md). */
#ifndef TESTS_DRILLS_DRILL_H
#define TESTS_DRILLS_DRILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "tests/support/kafka.h"
#include "tests/support/support.h"
#include "tests/worker/stack.h"

#define DRILL_MAX_REPLICAS 4

/* The report give-up of a drill whose recipients must all end final (ms):
 * one without a report ends `failed`, `no_report`, after it. */
#define DRILL_GIVE_UP "10000"

struct drill_opts {
    size_t replicas;            /* kurir replicas to start (0: none yet) */
    bool own_redis;             /* a redis-server of the drill's own (AOF) */
    bool own_kafka;             /* a KRaft broker of the drill's own */
    const char *extra_accounts; /* as stack.extra_accounts */
    const char *const *env;     /* every replica's extra environment */
    const char *const *env0;    /* replica 0's too (after env): a failpoint */
    bool final; /* every recipient must end final, not only `submitted`:
                   the replicas give up on reports after DRILL_GIVE_UP */
};

struct drill {
    const char *name;
    struct stack s;
    bool own_redis;
    struct proc redis;
    int redis_port;
    char redis_dir[256];
    char redis_addr[32];
    bool own_kafka;
    struct proc kafka;
    int kafka_port, kafka_cport;
    char kafka_dir[256];
    char kafka_addr[32];
    struct proc rep[DRILL_MAX_REPLICAS];
    int port[DRILL_MAX_REPLICAS];
    size_t nrep;
    const char *const *env;
    bool final;
    struct tk_reader status, dlq;
    void *producer; /* rd_kafka_t of drill_job_async, or NULL */
    size_t refused; /* jobs its delivery reports said Kafka refused */
    char refused_why[128];
    json_t *want;   /* job id -> [recipient...] ([""] for job level) */
    json_t *events; /* job id -> {recipient -> [state...]} */
    json_t *dlqd;   /* job id -> true */
    json_t *why;    /* "job/recipient" -> error code of its last event */
    size_t nevents;
    size_t regressions, conflicts;
    char first_regression[256];
    int64_t t0, fault_end;
    int64_t recovery_ms; /* fault end to the last job settled; -1 */
};

/* True when KURIR_DRILL_LONG=1: the long sizes. */
bool drill_long(void);
/* `ci` normally, `lng` with KURIR_DRILL_LONG=1. */
size_t drill_size(size_t ci, size_t lng);

/* Starts the stand-in, the replicas and a status and DLQ reader. */
void drill_start(struct drill *d, const char *name, const struct drill_opts *o);
/* Stops everything the drill started (idempotent). */
void drill_stop(struct drill *d);

/* Starts replica i (0 .. DRILL_MAX_REPLICAS-1) anew, with `extra` on top
 * of the drill's environment. */
void drill_replica(struct drill *d, size_t i, const char *const *extra);
/* Kills replica i with SIGKILL (if it still runs) and reaps it. */
void drill_kill(struct drill *d, size_t i);
/* True when replica i has exited (a failpoint killed it); reaps it. */
bool drill_replica_gone(struct drill *d, size_t i);

/* The drill's Redis (own_redis): stop (SIGKILL), start again. `keep`
 * false removes its files first: it comes back empty. */
void drill_redis_stop(struct drill *d);
void drill_redis_start(struct drill *d, bool keep);

/* The drill's own broker (own_kafka; tests/drills/kafka-broker): stop it
 * with `sig` (SIGTERM: a controlled shutdown; SIGKILL), start it again on
 * the same port and data. drill_kafka_start() returns once the broker
 * answers a metadata request (fails the test after 120 s) and says how
 * long that took, in ms. */
void drill_kafka_stop(struct drill *d, int sig);
int64_t drill_kafka_start(struct drill *d);

/* Produces a job (its key is its id) and records what it must reach:
 * `n` recipients (NULL/0: a job-level event). */
void drill_job(struct drill *d, const char *topic, const char *id,
               const char *json, char *const *to, size_t n);
/* The same without waiting for Kafka each time (a backlog of many jobs);
 * drill_flush() waits for them all. */
void drill_job_async(struct drill *d, const char *topic, const char *id,
                     const char *json, char *const *to, size_t n);
void drill_flush(struct drill *d);
/* drill_job_async() with a Kafka key other than the id (a good job on a
 * poison job's partition). The producer takes messages up to 8 MB; the
 * topic's max.message.bytes decides. drill_flush() fails the test when
 * Kafka refused any job. */
void drill_job_async_key(struct drill *d, const char *topic, const char *key,
                         const char *id, const char *json, char *const *to,
                         size_t n);

/* One send of `account` to `num`, id "<uniq>-<tag>-<j>", text "<tag> <j>",
 * `extra` (NULL or `, "key": value...`) added to the job; expected to
 * settle when `expect`. */
void drill_send(struct drill *d, const char *account, const char *tag, size_t j,
                const char *num, const char *extra, bool expect);

/* Writes `, "send_at": "<RFC 3339 UTC, ms>"` for `in_ms` from now: the
 * `extra` of drill_send() for a scheduled send. */
void drill_send_at(char *out, size_t size, int64_t in_ms);
/* Unix ms as RFC 3339 with milliseconds, UTC ("...T12:00:00.123Z"). */
void drill_rfc3339_ms(char *out, size_t size, int64_t ms);

/* The stand-in's requests on `path` (e.g. "/websms/api/send"). */
size_t drill_standin_requests(const struct drill *d, const char *path);

/* The sum over the running replicas of the /metrics sample `name`
 * (labels as support_metric()). */
double drill_metric_sum(const struct drill *d, const char *name,
                        const char *labels);

/* drill_send() through drill_job_async() (expected to settle). */
void drill_send_async(struct drill *d, const char *account, const char *tag,
                      size_t j, const char *num, const char *extra);

/* The stand-in's messages (of `account`, or NULL: all); caller decrefs. */
json_t *drill_messages(const struct drill *d, const char *account);

/* Records the expectation only (the drill produced the job itself). */
void drill_expect(struct drill *d, const char *id, char *const *to, size_t n);

/* Creates `topic` if it is not there and sets its config `name`. */
void drill_topic_config(const struct drill *d, const char *topic,
                        const char *name, const char *value);

/* Waits until the running replicas share the send topic's 4 partitions
 * and each holds some (the group has settled). */
void drill_wait_group(const struct drill *d);

/* Marks the end of the fault: the recovery time counts from here. */
void drill_fault_over(struct drill *d);

/* Reads the status and DLQ topics until every expected job is settled or
 * timeout_ms pass; returns how many (job, recipient) pairs are not. */
size_t drill_collect(struct drill *d, int timeout_ms);

/* How many recipients hold `state` last (on the status topic, as read). */
size_t drill_count_state(const struct drill *d, const char *state);
/* How many recipients had `state` at some point. */
size_t drill_count_ever(const struct drill *d, const char *state);

/* How many recipients had `state` more than once (a unit handled again:
 * its recorded event said anew). */
size_t drill_count_repeated(const struct drill *d, const char *state);

/* A stand-in control call (path under /_standin/, JSON body or NULL);
 * fails the test unless it answers 2xx. */
void drill_standin(const struct drill *d, const char *method, const char *path,
                   const char *json);

/* /readyz or /healthz of replica i: the HTTP status (0: no answer); when
 * `body` is not NULL, a malloc'd copy of the body. */
long drill_get(const struct drill *d, size_t i, const char *path, char **body);

/* Collects (up to timeout_ms), then asserts the guarantees above, prints
 * the drill's line and appends it to $KURIR_DRILL_RESULTS. `note` says what
 * else the drill checked (NULL: nothing). */
void drill_finish(struct drill *d, int timeout_ms, const char *note);

#endif /* TESTS_DRILLS_DRILL_H */
