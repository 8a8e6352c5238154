/* ratelimit/sched.h - scheduled sends and delayed retries, kept in Redis.
 *
 * An entry is an opaque payload (the worker's serialised send) due at a
 * Unix time in milliseconds, stored under its account, indexed by job id
 * and, optionally, campaign id. Once sched_add() has returned the Kafka
 * offset may be committed: Kafka never waits for a scheduled send.
 *
 * Lifecycle of one entry:
 *
 *     sched_add -> due --(sched_claim)--> leased --(sched_ack)--> done
 *                   ^                       |  |
 *                   +--(sched_retry)--------+  +--(lease expires)--> due
 *
 * A claim hands an entry to one replica with a fresh claim token and a
 * lease; only the holder of the current token may ack, extend or retry it.
 * An entry whose holder died is claimed again once its lease has expired,
 * with a new token, so an entry is never held by two live replicas (a
 * replica that overruns its lease loses it: extend it while working).
 * Every decision uses Redis's clock (TIME).
 *
 * Cancelling a job or campaign removes all its entries, due or leased, in
 * one script and leaves a "cancelled" marker (7 days) that later adds and
 * marker_begin() (ratelimit/marker.h) honour, so an entry in flight at
 * cancel time is not sent after.
 *
 * All of an account's entries share one Redis Cluster hash slot.
 * Not thread-safe: one struct sched per struct rconn. */
#ifndef RATELIMIT_SCHED_H
#define RATELIMIT_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ratelimit/rconn.h"

/* How long "cancelled" markers live. */
#define SCHED_MARKER_TTL_MS (7LL * 24 * 3600 * 1000)

/* How long an acked entry's id is remembered (so that re-adding it is a
 * no-op). Send-once markers (ratelimit/marker.h) guard longer. */
#define SCHED_DONE_TTL_MS (24LL * 3600 * 1000)

/* What sched_add() did. */
enum sched_added {
    SCHED_ADDED,     /* stored; due at due_ms */
    SCHED_EXISTS,    /* an entry with this id is stored or was done already */
    SCHED_CANCELLED, /* its job or campaign was cancelled; not stored */
};

/* One claimed entry. */
struct sched_entry {
    char *id;      /* owned: the entry id given to sched_add */
    char *token;   /* owned: the claim token for ack/extend/retry */
    char *payload; /* owned: the payload bytes, NUL-terminated */
    size_t payload_len;
};

/* A set of claimed entries; sched_entries_cleanup() frees them. */
struct sched_entries {
    struct sched_entry *v; /* owned array */
    size_t n;
};

/* Retry backoff: exponential with jitter, bounded by a horizon. */
struct sched_backoff {
    int64_t base_ms;    /* first delay, e.g. 1000 */
    int64_t cap_ms;     /* longest single delay, e.g. 300000 */
    int64_t horizon_ms; /* no retry due later than first attempt + this */
};

struct sched;

/* Creates the store over `rc` (borrowed; must outlive it). Returns 0 and
 * sets *out (free with sched_free). */
int sched_new(struct sched **out, struct rconn *rc, char *errstr,
              size_t errstr_size);

/* Frees the store. sched_free(NULL) does nothing. */
void sched_free(struct sched *s);

/* Stores an entry `id` (unique within the account, e.g. "<job>" or
 * "<job>/<recipient>") due at due_ms (Unix ms; past times are due now) with
 * `payload`, indexed by job_id and by campaign_id (NULL: none). Adding an id
 * that is stored, or was acked within SCHED_DONE_TTL_MS, changes nothing,
 * so a redelivered Kafka message is harmless. Returns 0 and sets *out, or -1
 * with errstr set. */
int sched_add(enum sched_added *out, struct sched *s, const char *account,
              const char *id, const char *job_id, const char *campaign_id,
              int64_t due_ms, const void *payload, size_t payload_len,
              char *errstr, size_t errstr_size);

/* Claims up to `max` entries of `account` that are due within ahead_ms
 * (or whose lease has expired), leasing each for lease_ms; an entry taken
 * ahead of its time is the caller's to hold until due. Returns 0 and fills
 * *out (possibly with none; free with sched_entries_cleanup), or -1 with
 * errstr set and *out empty. */
int sched_claim(struct sched_entries *out, struct sched *s, const char *account,
                size_t max, int64_t lease_ms, int64_t ahead_ms, char *errstr,
                size_t errstr_size);

/* Frees the entries of a claim and empties *entries. */
void sched_entries_cleanup(struct sched_entries *entries);

/* Removes entry `id` for good (it was sent or failed finally) when `token`
 * is its current claim token. Returns 0 and sets *held to whether it was
 * (false: the lease was lost or the entry cancelled; nothing changed), or
 * -1 with errstr set. */
int sched_ack(bool *held, struct sched *s, const char *account, const char *id,
              const char *token, char *errstr, size_t errstr_size);

/* The same ack as a script call, for a caller that sends it itself (the
 * worker's asynchronous Redis, aredis_eval): sched_ack_call() fills *c,
 * whose argv (SCHED_ACK_ARGC strings, the first SCHED_ACK_NKEYS keys)
 * points into it; the reply is 1 when the entry was held, 0 otherwise.
 * Returns 0, or -1 with errstr set (a key too long). */
#define SCHED_ACK_NKEYS 4
#define SCHED_ACK_ARGC  7
struct sched_ack_call {
    char keys[4][RCONN_KEY_MAX];
    char done[RCONN_KEY_MAX];
    char ttl[24];
    const char *argv[SCHED_ACK_ARGC];
};
int sched_ack_call(struct sched_ack_call *c, struct sched *s,
                   const char *account, const char *id, const char *token,
                   char *errstr, size_t errstr_size);
struct rconn_script *sched_ack_script(void);

/* Extends the lease of `id` to lease_ms from now when `token` is current.
 * Returns 0 and sets *held as for sched_ack, or -1 with errstr set. */
int sched_extend(bool *held, struct sched *s, const char *account,
                 const char *id, const char *token, int64_t lease_ms,
                 char *errstr, size_t errstr_size);

/* sched_extend() for n claimed entries of one account in one script (the
 * worker extends every claim it holds every lease/3). Returns 0 and sets
 * *held to how many were still held (and extended), or -1 with errstr set.
 */
int sched_extend_many(size_t *held, struct sched *s, const char *account,
                      const char *const *ids, const char *const *tokens,
                      size_t n, int64_t lease_ms, char *errstr,
                      size_t errstr_size);

/* Puts a claimed entry back, due at due_ms, with a new payload (NULL keeps
 * the old one), when `token` is current: the retry path. Returns 0 and sets
 * *held as for sched_ack, or -1 with errstr set. */
int sched_retry(bool *held, struct sched *s, const char *account,
                const char *id, const char *token, int64_t due_ms,
                const void *payload, size_t payload_len, char *errstr,
                size_t errstr_size);

/* Cancels every entry of job `job_id` (when campaign is false) or of
 * campaign `job_id` (when campaign is true) in `account`, due or leased,
 * and marks it cancelled for SCHED_MARKER_TTL_MS. Returns 0 and sets
 * *removed to how many entries were removed, or -1 with errstr set. */
int sched_cancel(size_t *removed, struct sched *s, const char *account,
                 const char *job_id, bool campaign, char *errstr,
                 size_t errstr_size);

/* sched_cancel, handing back the entries it removed (id and payload; no
 * token), so the caller can report their recipients `cancelled`. Returns 0
 * with *out filled (free with sched_entries_cleanup), or -1 with errstr
 * set and *out empty. */
int sched_cancel_take(struct sched_entries *out, struct sched *s,
                      const char *account, const char *job_id, bool campaign,
                      char *errstr, size_t errstr_size);

/* Sets *cancelled to whether job `job_id` or campaign `campaign_id` (NULL:
 * none) was cancelled. Returns 0, or -1 with errstr set. */
int sched_is_cancelled(bool *cancelled, struct sched *s, const char *account,
                       const char *job_id, const char *campaign_id,
                       char *errstr, size_t errstr_size);

/* Pure. The delay before retry number `attempt` (1 for the first retry):
 * min(cap, base * 2^(attempt-1)), of which the upper half is jitter taken
 * from `rnd` (any random 32 bits), so the result lies in
 * [delay/2, delay]. */
int64_t sched_backoff_delay_ms(const struct sched_backoff *policy,
                               unsigned attempt, uint32_t rnd);

/* Pure. Computes when retry number `attempt` is due: now_ms plus the
 * backoff delay, or plus min_delay_ms (a provider's Retry-After) when that
 * is longer. Returns true and sets *due_ms, or false when that time lies
 * beyond first_ms + horizon_ms: the send must be failed instead. */
bool sched_backoff_next(int64_t *due_ms, const struct sched_backoff *policy,
                        int64_t first_ms, int64_t now_ms, unsigned attempt,
                        int64_t min_delay_ms, uint32_t rnd);

#endif /* RATELIMIT_SCHED_H */
