/* worker/outcome.h - record, then publish: the one way a recipient's new
 * state leaves kurir, shared by units (sends), polls and callbacks.
 *
 * An outcome is a set of recipients of one job with their new states and
 * the status events that say so. outcome_record() records them in Redis
 * (the marker update script, batched with the turn's other Redis work) and,
 * once Redis has them, produces the event of every recipient whose state
 * moved forward, so events stay monotonic even when a job is handled twice.
 * Kafka's acknowledgements go to the outcome's owner (a task or a hook),
 * which acknowledges its own source (an offset, a provider's callback) only
 * when every event is in.
 *
 * When Redis cannot record it, nothing is produced and the owner is told:
 * it tries the recording again later (outcome_record once more, `again`
 * set), never the provider request that led to it. */
#ifndef WORKER_OUTCOME_H
#define WORKER_OUTCOME_H

#include <stdbool.h>
#include <stddef.h>

#include "ratelimit/marker.h"
#include "worker/rbatch.h"

struct worker;

/* The recipient name of the job itself (a job without recipients, a
 * campaign to groups): its marker, its state, its await member, and the
 * key of its latest-state record; its events carry `recipient` null. */
#define OUTCOME_JOB_LEVEL "-"

/* The `recipient` of an event about `recipient`: NULL for the job itself
 * (OUTCOME_JOB_LEVEL). */
const char *outcome_event_recipient(const char *recipient);

/* One recipient's new state. */
struct outcome_item {
    const char *recipient; /* borrowed from the owner */
    enum marker_op op;     /* MARKER_OP_DONE keeps `event` as the outcome;
                              MARKER_OP_GATED for news from elsewhere
                              (ratelimit/marker.h), with the outcome's
                              `type` set */
    const char *state;     /* CONTRACT name to advance to; NULL: none */
    char *event;           /* owned: the status event JSON */
    size_t event_len;
    bool emit_repeated; /* emit also when the state already was this one (a
                           recorded outcome said again) */
};

struct outcome;

/* Redis has recorded the outcome (err NULL; `produced` events queued for
 * Kafka, acknowledged to the owner), or could not (err set; nothing
 * produced; also at shutdown, when the worker is closing). */
typedef void outcome_done_fn(struct outcome *o, const char *err);

struct outcome {
    const char *account; /* borrowed */
    const char *job_id;  /* borrowed */
    const char *type;    /* the job's type: gated items go by it; or NULL */
    const char *echo;    /* borrowed: the job's echo headers (worker/echo.h),
                            or NULL; want_echo fetches them from Redis */
    bool want_echo;      /* callbacks, polls: take the kept ones */
    bool ttl_fresh;      /* the job's hash got its TTL from this owner's own
                            begin lately (marker_update_job.ttl_fresh) */
    struct outcome_item *items;
    size_t n;
    void *owner; /* the events' msg_opaque (enum event_owner *) */
    bool again;  /* a retried recording: emit repeated states too */
    outcome_done_fn *done;
    size_t produced;                   /* out: events queued */
    bool produce_failed;               /* out: an event could not be queued */
    size_t early;                      /* out: gated items not recorded: what
                                          they follow is not on Kafka yet */
    struct marker_update_item *mitems; /* private */
    struct rbatch_req req;             /* private */
    struct worker *w;                  /* private */
};

/* Publishes one status event of job `job_id` (and its latest-state record,
 * keyed "<job>/<recipient>", OUTCOME_JOB_LEVEL for the job itself) with the
 * echo headers `echo` (NULL: none); `owner` gets Kafka's acknowledgements. Adds
 * the events queued to *produced; `state` (may be NULL) is counted in /metrics.
 * Returns 0, or -1 when one could not be queued (logged). */
int outcome_publish(struct worker *w, void *owner, const char *job_id,
                    const char *recipient, const char *state, const char *value,
                    size_t len, const char *echo, size_t *produced);

/* Starts recording (asynchronously; done is called once). */
void outcome_record(struct worker *w, struct outcome *o);

/* Frees the items' events and the private arrays (not *o itself). */
void outcome_cleanup(struct outcome *o);

#endif /* WORKER_OUTCOME_H */
