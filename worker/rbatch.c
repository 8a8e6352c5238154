/* worker/rbatch.c - the Redis work of one loop turn, batched. */
#include "worker/rbatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit/aredis.h"
#include "ratelimit/rargv.h"
#include "worker/log.h"
#include "worker/poll.h"
#include "worker/worker.h"
#include "worker/xalloc.h"

/* One script call in flight: the requests whose jobs it carries. */
struct rbatch_flight {
    enum rbatch_kind kind;
    struct rbatch_req **reqs;
    size_t n;
};

void rbatch_queue(struct worker *w, struct rbatch_req *req)
{
    req->next = NULL;
    if (w->rb_tail != NULL)
        w->rb_tail->next = req;
    else
        w->rb_head = req;
    w->rb_tail = req;
}

static void rbatch_end(struct rbatch_flight *f, const char *err)
{
    for (size_t i = 0; i < f->n; i++)
        f->reqs[i]->fn(f->reqs[i], err);
    free(f->reqs);
    free(f);
}

static void rbatch_reply(const redisReply *reply, const char *err,
                         void *privdata)
{
    struct rbatch_flight *f = privdata;
    char errstr[256];

    if (err != NULL) {
        rbatch_end(f, err);
        return;
    }
    /* Read the reply into each job in order: the jobs are consecutive. */
    if (f->kind == RBATCH_TRACK) {
        rbatch_end(f, NULL); /* nothing to read: it ran */
    } else if (f->kind == RBATCH_BEGIN) {
        struct marker_begin_job *jobs = xcalloc(f->n, sizeof(*jobs));
        for (size_t i = 0; i < f->n; i++)
            jobs[i] = f->reqs[i]->begin;
        int r = marker_begin_read(reply, jobs, f->n, errstr, sizeof(errstr));
        free(jobs);
        rbatch_end(f, r == 0 ? NULL : errstr);
    } else {
        struct marker_update_job *jobs = xcalloc(f->n, sizeof(*jobs));
        for (size_t i = 0; i < f->n; i++)
            jobs[i] = f->reqs[i]->update;
        int r = marker_update_read(reply, jobs, f->n, errstr, sizeof(errstr));
        for (size_t i = 0; i < f->n; i++)
            f->reqs[i]->update.headers_out = jobs[i].headers_out;
        free(jobs);
        rbatch_end(f, r == 0 ? NULL : errstr);
    }
}

/* Sends the requests of one account and kind as one script call. */
static void rbatch_send(struct worker *w, struct rbatch_req **reqs, size_t n)
{
    struct rbatch_flight *f = xcalloc(1, sizeof(*f));
    struct rargv args = {0};
    char errstr[256];
    int r;

    struct rconn_script *script;
    int nkeys;

    f->kind = reqs[0]->kind;
    f->reqs = xcalloc(n, sizeof(*f->reqs));
    memcpy(f->reqs, reqs, n * sizeof(*reqs));
    f->n = n;
    if (f->kind == RBATCH_TRACK) {
        const struct poll_track_job **jobs = xcalloc(n, sizeof(*jobs));
        for (size_t i = 0; i < n; i++)
            jobs[i] = reqs[i]->track;
        r = poll_track_build(&args, w, reqs[0]->account, jobs, n, errstr,
                             sizeof(errstr));
        free(jobs);
        script = poll_track_script();
        nkeys = poll_track_nkeys(n);
    } else if (f->kind == RBATCH_BEGIN) {
        struct marker_begin_job *jobs = xcalloc(n, sizeof(*jobs));
        for (size_t i = 0; i < n; i++)
            jobs[i] = reqs[i]->begin;
        r = marker_begin_build(&args, aredis_prefix(w->aredis),
                               reqs[0]->account, jobs, n, w->cfg->mark_stale_ms,
                               errstr, sizeof(errstr));
        free(jobs);
        script = marker_begin_script();
        nkeys = marker_begin_nkeys(n);
    } else {
        struct marker_update_job *jobs = xcalloc(n, sizeof(*jobs));
        for (size_t i = 0; i < n; i++)
            jobs[i] = reqs[i]->update;
        r = marker_update_build(&args, aredis_prefix(w->aredis),
                                reqs[0]->account, jobs, n, errstr,
                                sizeof(errstr));
        free(jobs);
        script = marker_update_script();
        nkeys = marker_update_nkeys(n);
    }
    if (r != 0) {
        /* Only a request of its own can be at fault (a key too long):
         * keys are checked per job before a batch is built. */
        rargv_cleanup(&args);
        rbatch_end(f, errstr);
        return;
    }
    aredis_eval(w->aredis, script, nkeys, (int)args.n, args.v, args.len,
                rbatch_reply, f);
    rargv_cleanup(&args);
}

void rbatch_flush(struct worker *w)
{
    struct rbatch_req *all = w->rb_head;
    struct rbatch_req **group = NULL;
    size_t cap = 0;

    w->rb_head = w->rb_tail = NULL;
    while (all != NULL) {
        /* Take every request of the first one's account and kind. */
        struct rbatch_req *first = all;
        struct rbatch_req **pp = &all;
        size_t n = 0;
        while (*pp != NULL) {
            struct rbatch_req *r = *pp;
            if (r->kind == first->kind &&
                strcmp(r->account, first->account) == 0 &&
                n < RBATCH_MAX_JOBS) {
                *pp = r->next;
                if (n == cap) {
                    cap = cap == 0 ? 64 : cap * 2;
                    group = xrealloc(group, cap * sizeof(*group));
                }
                group[n++] = r;
            } else {
                pp = &r->next;
            }
        }
        rbatch_send(w, group, n);
    }
    free(group);
}

void rbatch_fail_all(struct worker *w)
{
    while (w->rb_head != NULL) {
        struct rbatch_req *r = w->rb_head;
        w->rb_head = r->next;
        r->fn(r, "redis: shutting down");
    }
    w->rb_tail = NULL;
}
