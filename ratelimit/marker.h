/* ratelimit/marker.h - send-once markers and monotonic recipient states.
 *
 * Send-once: before a provider request the worker calls marker_begin() for
 * all recipients of the job (one round trip). Each recipient not yet sent is
 * marked "in flight" and may be sent; one already sent (or finally failed)
 * is not sent again and its recorded outcome comes back, so a redelivered
 * job re-emits its known status instead. After the provider's answer,
 * marker_update() records the outcome (or clears the marker on a retryable
 * failure, so the retry may send).
 *
 * The double-send window (CONTRACT §6): a replica that dies after the
 * provider accepted and before marker_update() recorded it leaves an "in
 * flight" marker. Until stale_ms have passed that recipient is reported
 * MARKER_BUSY (never sent twice by live replicas); after it, the next
 * marker_begin() reports MARKER_STALE and takes the marker over: the worker
 * then either sends again (the documented duplicate) or reports the state
 * `unknown`. docs/redis.md describes the choice.
 *
 * States: marker_update() can also advance each recipient's last state and
 * accepts only forward moves, in the CONTRACT order
 *     accepted < scheduled < retrying < submitted < unknown < final
 * (final: delivered, failed, rejected, cancelled). Equal moves are refused
 * except retrying -> retrying (a new attempt); nothing follows a final
 * state. Markers and states live MARKER_TTL_MS after their last write,
 * or at least MARKER_TTL_MS - MARKER_TTL_FRESH_MS after it when the write
 * is a unit's outcome soon after its own begin (marker_update_job.ttl_fresh:
 * one PEXPIRE a message less, as the begin has just set it).
 *
 * Keys: P:{A}:mk:<job>, one hash per job in the account's hash slot:
 * field <recipient> is its marker, s:<recipient> its state, h: the job's
 * echo headers (one key and one expiry a job, not three). Not
 * thread-safe: one struct marker per struct rconn. */
#ifndef RATELIMIT_MARKER_H
#define RATELIMIT_MARKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ratelimit/rconn.h"

/* How long markers and states live after their last write: 7 days. */
#define MARKER_TTL_MS (7LL * 24 * 3600 * 1000)
/* How long after a begin set that TTL a unit's own outcome may leave it as
 * it is: half of it, so the hash still lives 3.5 days after that write. */
#define MARKER_TTL_FRESH_MS (MARKER_TTL_MS / 2)

/* What marker_begin() found for one recipient. */
enum marker_begin_result {
    MARKER_NEW,       /* now marked in flight by this call: send it */
    MARKER_BUSY,      /* in flight elsewhere, fresh: don't send; retry later */
    MARKER_STALE,     /* in flight longer than stale_ms (its replica died):
                         now marked by this call; the provider may have it */
    MARKER_DONE,      /* sent or failed for good: don't send; see outcome */
    MARKER_CANCELLED, /* the job or its campaign was cancelled: don't send */
    MARKER_OPTED_OUT, /* on the account's opt-out set (ratelimit/optout.h):
                         don't send; not marked */
};

/* One recipient of marker_begin(). */
struct marker_begin_item {
    const char *recipient;           /* in: MSISDN */
    enum marker_begin_result result; /* out */
    char *outcome;      /* out, owned (MARKER_DONE): the bytes given to
                           marker_update(), NUL-terminated; else NULL */
    size_t outcome_len; /* out */
};

/* What marker_update() does to a recipient's marker. */
enum marker_op {
    MARKER_OP_KEEP,  /* leave the marker as it is */
    MARKER_OP_DONE,  /* record `outcome`: never send this recipient again */
    MARKER_OP_CLEAR, /* remove it: a retryable failure, the retry may send */
    MARKER_OP_GATED, /* leave it, and go by what is published (below) */
};

/* The account's published set (key "<prefix>{<account>}:await"): members
 * "<job>\t<recipient>\t<type>" of recipients whose `submitted` or
 * `unknown` event is on Kafka, written only once Kafka has it (the
 * worker's tracking, worker/poll.c, whose give-up waits on it). A gated
 * item (MARKER_OP_GATED, its job's `type` set) is news from elsewhere (a
 * callback, a redelivered job saying a state again): it does not advance a
 * recipient past a `submitted` or `unknown` that is not on Kafka yet, nor
 * one with no state recorded yet, nor say such a state again (`early`: the
 * event would overtake it on the topic, or its owner may still be
 * publishing it), and it does not say again one that is. */
#define MARKER_PUBLISHED_SET "await"

/* One recipient of marker_update(). */
struct marker_update_item {
    const char *recipient; /* in: MSISDN */
    enum marker_op op;     /* in */
    const void *outcome;   /* in (MARKER_OP_DONE): opaque, e.g. the status
                              event to re-emit */
    size_t outcome_len;    /* in */
    const char *state;     /* in: CONTRACT state name to advance to, or
                              NULL to leave the state alone */
    bool advanced;         /* out: the state moved (emit the event) */
    bool repeated;         /* out: the state already was this one (the
                              news came before; its event may not have
                              reached Kafka if a replica died) */
    bool early;            /* out, MARKER_OP_GATED: nothing changed; the
                              state it follows is not on Kafka yet */
};

struct marker;

/* Creates the marker store over `rc` (borrowed; must outlive it). Returns 0
 * and sets *out (free with marker_free). */
int marker_new(struct marker **out, struct rconn *rc, char *errstr,
               size_t errstr_size);

/* Frees the store. marker_free(NULL) does nothing. */
void marker_free(struct marker *m);

/* For each of the n recipients of job `job_id` in `account`, atomically
 * (one script): returns what was there and marks the sendable ones in
 * flight (see enum marker_begin_result). `campaign_id` (NULL: none) is
 * checked for cancellation along with the job. A marker older than
 * stale_ms counts as abandoned; choose it above the longest provider
 * request. Returns 0 with every item's result set (free outcomes with
 * marker_begin_cleanup), or -1 with errstr set and nothing marked. */
int marker_begin(struct marker *m, const char *account, const char *job_id,
                 const char *campaign_id, struct marker_begin_item *items,
                 size_t n, int64_t stale_ms, char *errstr, size_t errstr_size);

/* Frees the outcomes marker_begin() returned and sets them to NULL. */
void marker_begin_cleanup(struct marker_begin_item *items, size_t n);

/* For each of the n items, atomically (one script): applies the marker op
 * and advances the state when asked. Returns 0 with every item's
 * `advanced` set, or -1 with errstr set (a state name that is not a
 * CONTRACT state included; nothing is changed then). */
int marker_update(struct marker *m, const char *account, const char *job_id,
                  struct marker_update_item *items, size_t n, char *errstr,
                  size_t errstr_size);

/* ------------------------------------------------------------------------ */
/* Batches: the same two scripts over many jobs of one account in one call,
 * for callers that queue the call themselves (the worker's asynchronous
 * Redis). Build the arguments (keys first: marker_begin_nkeys() and
 * marker_update_nkeys() of them), send them with the script, read the reply
 * back into the jobs. */

struct rargv;

/* The keys of a batch of njobs: for a begin the account's opt-out set, then
 * per job its hash and the cancel markers of job and campaign; for an
 * update the account's published set, then the hash of each job. */
int marker_begin_nkeys(size_t njobs);
int marker_update_nkeys(size_t njobs);

/* One job's part of a batched marker_begin. */
struct marker_begin_job {
    const char *job_id;
    const char *campaign_id; /* NULL: none */
    struct marker_begin_item *items;
    size_t n;
    const char *headers; /* NULL, or the job's echo headers to keep for the
                            events that come later (callbacks, polls) */
    const char *owner;   /* who marks: one unit of one replica; NULL or ""
                            for nobody in particular */
};

/* One job's part of a batched marker_update. */
struct marker_update_job {
    const char *job_id;
    const char *type; /* the job's type: what gated items go by; or NULL */
    struct marker_update_item *items;
    size_t n;
    bool want_headers;    /* in: return the headers marker_begin kept */
    char *headers_out;    /* out, malloc'd: those headers, or NULL */
    const char *recorder; /* in: who records (a replica's name), kept in
                             the job's hash as MARKER_RECORDER when an item
                             is done; NULL: not kept */
    bool ttl_fresh;       /* in: the hash got its MARKER_TTL_MS from a begin
                             less than MARKER_TTL_FRESH_MS ago (the unit's
                             own): a write leaves that TTL as it is. false:
                             a write renews it */
};

/* The field of a job's hash naming the replica that last recorded a done
 * item (marker_update_job.recorder): a redelivery asks whether it is
 * still alive before saying its unpublished states again. */
#define MARKER_RECORDER "o:"

/* The scripts, for aredis_eval() / rconn_eval(). */
struct rconn_script *marker_begin_script(void);
struct rconn_script *marker_update_script(void);

/* Appends the arguments of a begin over `njobs` jobs to *out. Each job's
 * `owner` names who marks (a unit of a replica): a fresh in-flight marker
 * of the same non-empty owner counts as MARKER_NEW, so an owner whose reply
 * was lost may begin again; any other owner finds it MARKER_BUSY. Returns
 * 0, or -1 with errstr set (a key too long) and *out emptied. */
int marker_begin_build(struct rargv *out, const char *prefix,
                       const char *account, const struct marker_begin_job *jobs,
                       size_t njobs, int64_t stale_ms, char *errstr,
                       size_t errstr_size);

/* Reads a begin reply into the jobs' items (free outcomes with
 * marker_begin_cleanup). Returns 0, or -1 with errstr set. */
int marker_begin_read(const redisReply *reply, struct marker_begin_job *jobs,
                      size_t njobs, char *errstr, size_t errstr_size);

/* Appends the arguments of an update over `njobs` jobs. Returns 0, or -1
 * with errstr set (an unknown state name, a key too long). */
int marker_update_build(struct rargv *out, const char *prefix,
                        const char *account,
                        const struct marker_update_job *jobs, size_t njobs,
                        char *errstr, size_t errstr_size);

/* Reads an update reply into the items' advanced/repeated flags. Returns
 * 0, or -1 with errstr set. */
int marker_update_read(const redisReply *reply, struct marker_update_job *jobs,
                       size_t njobs, char *errstr, size_t errstr_size);

/* Returns the rank of a CONTRACT state name (accepted 1 ... final 6), or 0
 * when it is not one. Pure. */
int marker_state_rank(const char *state);

#endif /* RATELIMIT_MARKER_H */
