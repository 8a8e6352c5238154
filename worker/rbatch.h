/* worker/rbatch.h - the Redis work of one loop turn, batched.
 *
 * Units and outcomes queue their Redis work here instead of calling Redis
 * one by one; rbatch_flush(), once per loop turn, sends every account's
 * queued begins as one script call, its updates as another and its
 * trackings (worker/poll.h) as a third (at most RBATCH_MAX_JOBS jobs a
 * call), all pipelined on the asynchronous connection. Each request's
 * callback then gets its own part of the reply, or the error. A request's
 * memory is its owner's until the callback has run. Loop thread only. */
#ifndef WORKER_RBATCH_H
#define WORKER_RBATCH_H

#include "ratelimit/marker.h"

struct worker;

#define RBATCH_MAX_JOBS 512

struct rbatch_req;

/* The end of a request: err NULL with the items' results filled, or the
 * error (nothing known: the script may or may not have run). */
typedef void rbatch_fn(struct rbatch_req *req, const char *err);

enum rbatch_kind {
    RBATCH_BEGIN,  /* marks before a call (ratelimit/marker.h) */
    RBATCH_UPDATE, /* records an outcome (ratelimit/marker.h) */
    RBATCH_TRACK,  /* follows what a provider was handed (worker/poll.h) */
};

struct poll_track_job;

/* A request: a begin (begin.items), an update (update.items) or a
 * tracking (track) of one job's recipients in one account. */
struct rbatch_req {
    enum rbatch_kind kind;
    const char *account; /* borrowed until the callback */
    struct marker_begin_job begin;
    struct marker_update_job update;
    const struct poll_track_job *track;
    rbatch_fn *fn;
    void *owner; /* the caller's */
    struct rbatch_req *next;
};

/* Queues a request for the next flush. */
void rbatch_queue(struct worker *w, struct rbatch_req *req);

/* Sends what the turn queued. */
void rbatch_flush(struct worker *w);

/* Fails every request still queued (shutdown). */
void rbatch_fail_all(struct worker *w);

#endif /* WORKER_RBATCH_H */
