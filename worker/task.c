/* worker/task.c - one unit of work, from its source (a Kafka message or a
 * Redis entry) to its end.
 *
 * A job is planned into units (worker/plan.h): one provider call each. A job
 * of one unit is carried by its own task. A job of many units fans out: its
 * task puts one part per unit on the part topic (KURIR_TOPIC_PARTS, read by
 * the same consumer group, keyed so parts spread over its partitions) and
 * ends once Kafka has every part; each part is then a task of one unit on
 * whichever replica owns its partition. The stages of a task, each
 * resumable after a park:
 *
 *   STAGE_SCHEDULE  a send due later is stored in Redis (sched) and reported
 *                   `scheduled`; the task ends and Kafka's offset moves on.
 *   STAGE_CANCEL    a campaign cancel removes what waits in Redis.
 *   STAGE_FANOUT    a job of many units puts its parts on Kafka.
 *   STAGE_TOKENS    the account's token bucket is charged in segments for
 *                   every recipient, parking while the bucket refills.
 *   STAGE_MARK      once a provider connection is free, send-once markers
 *                   for every recipient, batched with the turn's other
 *                   marks: recipients already sent re-emit their known
 *                   outcome, the rest are marked in flight and kept.
 *   STAGE_CALLS     the unit's call (a contact-sync action: its steps, one
 *                   at a time).
 *   STAGE_RECORD    the outcome is recorded in Redis, then published
 *                   (worker/outcome.h); a recording Redis could not take is
 *                   tried again as a recording, never as a new request.
 *
 * Marking comes last on purpose: a replica that dies leaves its marked,
 * unanswered recipients `unknown` (never sent twice), so as few as possible
 * should be marked and not yet on the wire: no waits come after it.
 *
 * A retryable answer clears the call's markers and stores a retry in Redis
 * (sched) with backoff and jitter, bounded by the retry horizon; whoever
 * claims it later (any replica) sends it. When Redis is unreachable a task
 * parks and tries again: nothing is sent without a marker or a token
 * (fail closed), and no offset moves. */
#include "worker/task.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codecs/job.h"
#include "ratelimit/aredis.h"
#include "ratelimit/rargv.h"
#include "worker/dlq.h"
#include "worker/echo.h"
#include "worker/events.h"
#include "worker/failpoint.h"
#include "worker/hooks.h"
#include "worker/log.h"
#include "worker/outcome.h"
#include "worker/park.h"
#include "worker/plan.h"
#include "worker/poll.h"
#include "worker/rand.h"
#include "worker/rbatch.h"
#include "worker/reads.h"
#include "worker/xalloc.h"

/* How long a task waits before trying Redis again. */
#define TASK_REDIS_RETRY_MS 500
/* The most of a rejected job's bytes its DLQ copy keeps (the producer's
 * message.max.bytes is 1,000,000 by default). */
#define TASK_DLQ_MAX (512 * 1024)
/* How many emptied call lists are kept for reuse (worker.h). */
#define TASK_CALLS_KEEP WORKER_CALLS_KEEP
/* How long a task waits for a recipient in flight at another replica. */
#define TASK_BUSY_RETRY_MS 1000
/* How often a redelivered job looks again for a state its first owner
 * recorded but has not published yet; how long it waits while that
 * replica is alive (its events may wait in its producer for a broker);
 * and how long when no replica is named as its recorder. */
#define TASK_AGAIN_RETRY_MS   250
#define TASK_AGAIN_MAX_MS     60000
#define TASK_AGAIN_UNNAMED_MS 8000
/* The longest rate-limit wait a unit spends parked in memory; a longer one
 * (a provider's long Retry-After charged to the bucket) is stored in
 * Redis until due, so its KURIR_MAX_IN_FLIGHT place frees. */
#define TASK_PARK_MAX_MS 5000
/* The most claimed entries one lease extension carries. */
#define TASK_EXTEND_BATCH 256

enum task_stage {
    STAGE_SCHEDULE,
    STAGE_CANCEL,
    STAGE_FANOUT,
    STAGE_TOKENS,
    STAGE_MARK,
    STAGE_CALLS,
    STAGE_RECORD,
};

/* What a task does once its outcome is recorded. */
enum task_after {
    AFTER_END,  /* the task has ended */
    AFTER_NEXT, /* go on at t->stage_next */
    AFTER_BUSY, /* another replica holds recipients: look again later */
};

struct task {
    enum event_owner owner; /* OWNER_TASK; must stay first */
    struct worker *w;
    rd_kafka_message_t *rkm;         /* Kafka source (owned), or NULL */
    struct sched_entry entry;        /* Redis source (owned) when rkm is NULL */
    const char *entry_account;       /* the account the entry was claimed in */
    struct job *job;                 /* owned; NULL when it did not parse */
    const struct account *acct;      /* borrowed from w->accounts */
    enum task_stage stage;           /* what task_next() does */
    int attempt;                     /* 1 for the first try */
    int64_t first_ms;                /* wall clock of the first try */
    bool from_parts;                 /* a part of a fanned-out job */
    struct codec_calls *calls;       /* the unit's calls, once encoded */
    size_t next_call;                /* index into calls of the next call */
    bool encoded;                    /* calls holds the unit */
    bool sent;                       /* the unit's call went out */
    struct outcome rec;              /* STAGE_RECORD: what is being recorded */
    enum task_after after;           /* ... and what comes after it */
    enum task_stage stage_next;      /* AFTER_NEXT: the stage to go on with */
    int64_t again_since;             /* said-again states wait: since when */
    bool again_ungated;              /* ... TASK_AGAIN_MAX_MS: said from here */
    enum task_wait wait;             /* parked: why */
    struct marker_begin_item *marks; /* STAGE_MARK: the reply's items */
    size_t nmarks;
    struct rbatch_req mark_req;
    int64_t marked_ms;   /* monotonic ms of the first begin that marked a
                            recipient (its job's hash got its TTL), or 0 */
    char *echo;          /* the job's echo headers (worker/echo.h), or NULL */
    char mark_owner[96]; /* this unit's name on its marks: replica, task */
    struct {
        char *pid;             /* owned, or NULL: no provider id */
        const char *recipient; /* job->to[i] */
        bool unit_id;          /* pid names the whole call */
    } * track;                 /* to follow (worker/poll.h) once recorded */
    size_t ntrack;
    struct poll_held *held; /* a campaign cancel: units the provider holds */
    size_t nheld;
    size_t *cancel_of; /* the held unit of each cancel call */
    size_t held_next;  /* the first held unit not yet in a call */
    char **cancel_to;  /* owned: recipients taken out of the schedule */
    size_t ncancel_to;
    bool cancel_closed;           /* the cancel job's own end is recorded */
    bool pending_retry;           /* STAGE_RECORD: the retry is to store */
    struct call_result retry_res; /* ... for this answer */
    int64_t charge_left;          /* tokens still to take (STAGE_TOKENS) */
    bool has_slot;                /* counted in w->calls_active */
    bool in_call;                 /* a provider request is in flight */
    int pending_events;           /* produced, not yet acknowledged */
    int unacked;                  /* ... of them Kafka events */
    char **clear_after;           /* owned: markers to clear once Kafka has
                                     every event (a retry's `retrying`) */
    size_t nclear_after;
    bool ended;     /* no more events will be produced */
    bool abandoned; /* leave the source unacknowledged */
    bool rejected;  /* went to the DLQ */
    bool deferred;  /* stored in Redis for later (no ack) */
    struct task *next_parked;
    struct task *prev, *next; /* w->all: every live task */
};

static void task_next(struct task *t);
static void task_park(struct task *t, int64_t wait_ms, enum task_wait why);

/* ------------------------------------------------------------------------ */
/* Ending. */

static void task_give_slot(struct task *t);

/* Gives the unit's call list back to the pool for the next unit. */
static void task_put_calls(struct task *t)
{
    struct worker *w = t->w;

    if (t->calls == NULL)
        return;
    codec_calls_cleanup(t->calls);
    /* Kept for the next unit: the list is large (CODEC_MAX_CALLS requests)
     * and every message needs one. */
    if (w->ncalls_free < TASK_CALLS_KEEP)
        w->calls_free[w->ncalls_free++] = t->calls;
    else
        free(t->calls);
    t->calls = NULL;
}

static void task_free(struct task *t)
{
    struct worker *w = t->w;

    task_give_slot(t);
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        w->all = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    task_put_calls(t);
    outcome_cleanup(&t->rec);
    call_result_cleanup(&t->retry_res);
    marker_begin_cleanup(t->marks, t->nmarks);
    free(t->marks);
    job_free(t->job);
    if (t->rkm != NULL)
        rd_kafka_message_destroy(t->rkm);
    free(t->entry.id);
    free(t->entry.token);
    free(t->entry.payload);
    free(t->echo);
    for (size_t i = 0; i < t->nclear_after; i++)
        free(t->clear_after[i]);
    free(t->clear_after);
    for (size_t i = 0; i < t->ntrack; i++)
        free(t->track[i].pid);
    free(t->track);
    poll_held_free(t->held, t->nheld);
    free(t->cancel_of);
    for (size_t i = 0; i < t->ncancel_to; i++)
        free(t->cancel_to[i]);
    free(t->cancel_to);
    if (t->ended && t->pending_events > 0)
        w->finishing--;
    else
        w->tasks--;
    free(t);
}

static void task_redis_down(struct task *t, const char *what,
                            const char *errstr)
{
    metrics_count(&t->w->metrics, M_REDIS_ERRORS, NULL, 1);
    if (t->w->redis_ok)
        log_error("redis: %s: %s; not taking new work until it is back", what,
                  errstr);
    t->w->redis_ok = false;
}

static void task_sched_acked(const redisReply *reply, const char *err,
                             void *privdata)
{
    char *id = privdata;

    (void)reply;
    if (err != NULL)
        /* The lease runs out and the entry is claimed again; its markers
         * make that harmless. */
        log_warn("redis: ack %s: %s", id, err);
    free(id);
}

/* Removes a claimed entry whose unit has ended: one script call on the
 * loop's asynchronous Redis, pipelined with the turn's others, not a
 * blocking round trip per unit (blocking Redis reads were 28% of the
 * loop's time while a large schedule fell due). */
static void task_sched_ack(const struct task *t)
{
    struct sched_ack_call c;
    char errstr[256];

    if (sched_ack_call(&c, t->w->sched, t->entry_account, t->entry.id,
                       t->entry.token, errstr, sizeof(errstr)) != 0) {
        log_warn("redis: ack %s: %s", t->entry.id, errstr);
        return;
    }
    aredis_eval(t->w->aredis, sched_ack_script(), SCHED_ACK_NKEYS,
                SCHED_ACK_ARGC, c.argv, NULL, task_sched_acked,
                xstrdup(t->entry.id));
}

static void task_release(struct task *t)
{
    metrics_count(
        &t->w->metrics, M_JOBS_CONSUMED,
        ML(t->rkm != NULL ? rd_kafka_topic_name(t->rkm->rkt) : "redis",
           t->abandoned  ? "abandoned"
           : t->rejected ? "rejected"
           : t->deferred ? "deferred"
                         : "done"),
        1);
    failpoint("before_ack");
    if (!t->abandoned && t->rkm != NULL)
        kafka_done(t->w->kafka, rd_kafka_topic_name(t->rkm->rkt),
                   t->rkm->partition, t->rkm->offset);
    if (!t->abandoned && !t->deferred && t->rkm == NULL)
        task_sched_ack(t);
    task_free(t);
}

void task_free_all(struct worker *w)
{
    while (w->all != NULL)
        task_free(w->all);
    while (w->ncalls_free > 0)
        free(w->calls_free[--w->ncalls_free]);
    park_cleanup(&w->parking);
}

/* The task will produce nothing more; it is released once Kafka has all
 * its events. */
static void task_end(struct task *t)
{
    t->ended = true;
    if (t->pending_events == 0) {
        task_release(t);
        return;
    }
    /* Waiting only for Kafka (linger.ms batches the events): the unit's
     * place goes to the next job, and its calls back to the pool. */
    task_put_calls(t);
    t->w->tasks--;
    t->w->finishing++;
}

static void task_dlq(struct task *t, const char *error);

/* An event Kafka will never take (too large): the job goes to the DLQ
 * with the reason, so its offset can move; when the DLQ copy is refused
 * too (or the source is a Redis entry), the source is left unacknowledged
 * and comes back. Other refusals never get here: kafka.c produces them
 * again until Kafka takes them. */
static void task_refused(struct task *t, rd_kafka_resp_err_t err)
{
    char why[256];

    if (t->rkm == NULL || t->rejected || !kafka_err_is_permanent(err)) {
        t->abandoned = true;
        return;
    }
    snprintf(why, sizeof(why), "an event of this job was refused by Kafka: %s",
             rd_kafka_err2str(err));
    log_error("task: job %s: %s; to the DLQ", t->job != NULL ? t->job->id : "-",
              why);
    task_dlq(t, why);
}

static void task_track_now(struct task *t);
static void task_unmark(struct task *t, char **to, size_t n);

/* Clears the markers kept until Kafka had the task's events. */
static void task_clear_after(struct task *t)
{
    task_unmark(t, t->clear_after, t->nclear_after);
    for (size_t i = 0; i < t->nclear_after; i++)
        free(t->clear_after[i]);
    free(t->clear_after);
    t->clear_after = NULL;
    t->nclear_after = 0;
}

/* One of the task's pending events or trackings is done. */
static void task_pending_done(struct task *t)
{
    if (t->ended && t->pending_events == 1) {
        task_release(t); /* task_free counts it out of w->finishing */
        return;
    }
    t->pending_events--;
}

void task_event_delivered(struct task *t, rd_kafka_resp_err_t err)
{
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        task_refused(t, err);
    /* Kafka has every event so far: what they submitted may be followed,
     * and what they said will be retried may be sent by anyone. */
    if (--t->unacked == 0) {
        task_track_now(t);
        task_clear_after(t);
    }
    task_pending_done(t);
}

/* n more Kafka events of the task are on their way. */
static void task_produced(struct task *t, size_t n)
{
    t->pending_events += (int)n;
    t->unacked += (int)n;
}

/* A fire-and-forget marker update (clearing markers of recipients this
 * replica will not send after all). */
struct task_unmark_req {
    struct rbatch_req req;
    struct marker_update_item *items;
    char *account, *job_id;
};

static void task_unmarked(struct rbatch_req *req, const char *err)
{
    struct task_unmark_req *u = req->owner;

    if (err != NULL)
        /* The markers age into stale; the next owner reports them
         * `unknown` rather than guess. */
        log_warn("redis: unmark %s: %s", u->job_id, err);
    for (size_t i = 0; i < u->req.update.n; i++)
        free((char *)u->items[i].recipient);
    free(u->items);
    free(u->account);
    free(u->job_id);
    free(u);
}

/* Clears the send-once markers of n recipients, so that whoever handles
 * the job next sends them. */
static void task_unmark(struct task *t, char **to, size_t n)
{
    const struct job *job = t->job;
    if (n == 0)
        return;
    struct task_unmark_req *u = xcalloc(1, sizeof(*u));
    u->items = xcalloc(n, sizeof(*u->items));
    u->account = xstrdup(job->account);
    u->job_id = xstrdup(job->id);
    for (size_t i = 0; i < n; i++) {
        /* Copied: an abandoned task may be freed before the flush. */
        u->items[i].recipient = xstrdup(to[i]);
        u->items[i].op = MARKER_OP_CLEAR;
    }
    u->req = (struct rbatch_req){
        .kind = RBATCH_UPDATE,
        .account = u->account,
        .update = {u->job_id, NULL, u->items, n},
        .fn = task_unmarked,
        .owner = u,
    };
    rbatch_queue(t->w, &u->req);
}

/* Clears the markers of recipients marked but not handed to the provider. */
static void task_unmark_unsent(struct task *t)
{
    const struct job *job = t->job;

    if (job == NULL || t->stage != STAGE_CALLS || !plan_is_bulk(job) || t->sent)
        return;
    task_unmark(t, job->to, job->nto);
}

void task_abandon(struct task *t)
{
    if (!t->in_call)
        task_unmark_unsent(t);
    t->abandoned = true;
    task_end(t);
}

void task_abandon_parked(struct worker *w)
{
    while (w->tok_head != NULL) {
        struct task *t = w->tok_head;
        w->tok_head = t->next_parked;
        task_abandon(t);
    }
    while (w->slot_head != NULL) {
        struct task *t = w->slot_head;
        w->slot_head = t->next_parked;
        task_abandon(t);
    }
    w->slot_tail = NULL;
    void *item;
    while ((item = park_take_any(&w->parking)) != NULL) {
        if (*(const enum event_owner *)item == OWNER_TASK)
            task_abandon(item);
        else
            hook_record_abandon(item);
    }
}

/* ------------------------------------------------------------------------ */
/* Events. */

static void task_produce(struct task *t, enum kafka_topic topic,
                         const void *key, size_t key_len, char *value,
                         size_t len, rd_kafka_headers_t *headers)
{
    char errstr[256];

    if (kafka_produce(t->w->kafka, topic, key, key_len, value, len, headers, t,
                      errstr, sizeof(errstr)) != 0) {
        /* A full local queue or a fatal error: the job's source stays
         * unacknowledged and it comes back. An event too large for
         * message.max.bytes: the job goes to the DLQ. */
        log_error("task: %s job=%s", errstr, t->job != NULL ? t->job->id : "-");
        free(value);
        task_refused(t, kafka_last_produce_err(t->w->kafka));
        return;
    }
    task_produced(t, 1);
    t->w->stats.events++;
    free(value);
}

/* The segments one recipient's text costs (its own text when personal). */
static unsigned task_segments(const struct task *t, const char *recipient)
{
    const struct job *job = t->job;
    size_t i = 0;

    if (job_is_personal(job) && recipient != NULL)
        while (i + 1 < job->nto && strcmp(job->to[i], recipient) != 0)
            i++;
    return plan_segments(t->acct, job, i);
}

static char *task_status_json(struct task *t, const char *job_id,
                              const char *recipient, enum sms_state state,
                              const char *provider_id,
                              const char *provider_status,
                              const char *error_code, const char *error_message,
                              size_t *len)
{
    const struct job *job = t->job;
    struct status_event ev = {
        .job_id = job_id,
        .type = job ? job_type_name(job->type) : NULL,
        .account = job ? job->account : NULL,
        .provider = t->acct ? t->acct->codec->name : NULL,
        .recipient = recipient,
        .state = state,
        .provider_message_id = provider_id,
        .provider_status = provider_status,
        .segments =
            job && job->text && t->acct ? (int)task_segments(t, recipient) : 0,
        .attempt = t->attempt,
        .reference = job ? job->reference : NULL,
        .error_code = error_code,
        .error_message = error_message,
    };

    return event_status_json(&ev, len);
}

/* Produces a status event without consulting Redis: for jobs that never
 * reached it (rejected at parse or check). */
static void task_status(struct task *t, const char *job_id,
                        const char *recipient, enum sms_state state,
                        const char *error_code, const char *error_message)
{
    size_t len, produced = 0;
    char *value = task_status_json(t, job_id, recipient, state, NULL, NULL,
                                   error_code, error_message, &len);

    if (outcome_publish(t->w, t, job_id, recipient, sms_state_name(state),
                        value, len, t->echo, &produced) != 0)
        t->abandoned = true; /* the source comes back */
    task_produced(t, produced);
    free(value);
}

/* One recipient's new state, to be recorded in Redis and then emitted. */
struct task_outcome {
    const char *recipient; /* job->to[i], or OUTCOME_JOB_LEVEL */
    enum sms_state state;
    enum marker_op op;
    const char *provider_id;
    const char *provider_status;
    const char *error_code;
    const char *error_message;
    bool emit_repeated; /* emit also when the state already was this one */
};

static void task_record_send(struct task *t);
static void task_track_later(struct task *t, const char *pid,
                             const char *recipient, bool unit_id);

/* Recipients a redelivered job said again whose `submitted` or `unknown`
 * was not on Kafka (the replica before stopped between recording and
 * publishing, so nobody follows them): followed from here, under the
 * provider id their event carries, one shared by several recipients being
 * the call's. */
static void task_track_said_again(struct task *t)
{
    const struct outcome *o = &t->rec;
    size_t nsaid = 0;

    /* A said-again item is gated, or recorded as it is once its first owner
     * is presumably gone (then the recording holds nothing else). The job
     * itself is followed only when `unknown` (its `submitted` is not
     * gated: the done state of a campaign to groups). */
    bool *said = xcalloc(o->n + 1, sizeof(*said));
    for (size_t i = 0; i < o->n; i++) {
        const struct outcome_item *it = &o->items[i];
        bool job = strcmp(it->recipient, OUTCOME_JOB_LEVEL) == 0;
        said[i] = (it->op == MARKER_OP_GATED || t->again_ungated) &&
                  o->mitems[i].repeated && it->state != NULL &&
                  ((!job && strcmp(it->state, "submitted") == 0) ||
                   strcmp(it->state, "unknown") == 0);
        nsaid += said[i];
    }
    if (nsaid == 0) {
        free(said);
        return;
    }
    /* Each gated item's provider id, read once (a unit carries up to a
     * thousand), said again or not: one shared with any of them is the
     * call's. */
    char **pids = xcalloc(o->n + 1, sizeof(*pids));
    for (size_t i = 0; i < o->n; i++) {
        const struct outcome_item *it = &o->items[i];
        if (it->op != MARKER_OP_GATED && !t->again_ungated)
            continue;
        json_t *ev = json_loadb(it->event, it->event_len, 0, NULL);
        const char *pid =
            json_string_value(json_object_get(ev, "provider_message_id"));
        pids[i] = pid != NULL && pid[0] ? xstrdup(pid) : NULL;
        json_decref(ev);
    }
    for (size_t i = 0; i < o->n; i++) {
        const struct outcome_item *it = &o->items[i];
        if (!said[i])
            continue;
        bool shared = false;
        for (size_t k = 0; k < o->n && pids[i] != NULL && !shared; k++)
            shared = k != i && pids[k] != NULL && strcmp(pids[k], pids[i]) == 0;
        task_track_later(t, pids[i], it->recipient, shared);
    }
    for (size_t i = 0; i < o->n; i++)
        free(pids[i]);
    free(pids);
    free(said);
}

/* Says the waiting said-again states from here: their recorder is gone
 * (or waited out). */
static void task_say_again_now(struct task *t, const char *why)
{
    struct outcome *o = &t->rec;

    log_warn("task: job %s: %zu recorded state(s) not on Kafka, %s: said "
             "again from here",
             t->job->id, o->n, why);
    t->again_ungated = true;
    for (size_t i = 0; i < o->n; i++)
        o->items[i].op = MARKER_OP_KEEP;
    task_park(t, 0, TASK_WAIT_REDELIVERY);
}

/* The recorder's alive key was read: alive, it is waited for. */
static void task_recorder_alive(const redisReply *reply, const char *err,
                                void *privdata)
{
    struct task *t = privdata;

    if (t->w->closing)
        return;
    if (err == NULL && reply->type == REDIS_REPLY_INTEGER &&
        reply->integer == 0) {
        task_say_again_now(t, "their replica is gone");
        return;
    }
    task_park(t, TASK_AGAIN_RETRY_MS, TASK_WAIT_REDELIVERY);
}

/* The job's recorder (MARKER_RECORDER) was read: is it alive? */
static void task_recorder_named(const redisReply *reply, const char *err,
                                void *privdata)
{
    struct task *t = privdata;
    char key[256], name[128];

    if (t->w->closing)
        return;
    if (err != NULL || reply->type != REDIS_REPLY_STRING ||
        reply->len >= sizeof(name)) {
        /* Redis away, or no replica named (recorded by an older kurir):
         * looked at again, until TASK_AGAIN_UNNAMED_MS. */
        if (err == NULL &&
            worker_now_ms() - t->again_since >= TASK_AGAIN_UNNAMED_MS) {
            task_say_again_now(t, "their replica unknown");
            return;
        }
        task_park(t, TASK_AGAIN_RETRY_MS, TASK_WAIT_REDELIVERY);
        return;
    }
    memcpy(name, reply->str, reply->len);
    name[reply->len] = '\0';
    worker_alive_key(key, sizeof(key), t->w, name);
    const char *argv[] = {"EXISTS", key};
    aredis_command(t->w->aredis, 2, argv, NULL, task_recorder_alive, t);
}

/* Said-again states not on Kafka yet (early): the replica that recorded
 * them may still be publishing them (its producer waiting for a broker),
 * and a copy from here could land after its copy and after the report
 * that follows it. While that replica is alive (worker.h) only they are
 * recorded again, every TASK_AGAIN_RETRY_MS: once its copy is on Kafka
 * nothing is said. Once it is gone (it died between recording and
 * publishing), or after TASK_AGAIN_MAX_MS, they are said and followed
 * from here. The task keeps its place meanwhile. Returns true when the
 * task waits. */
static bool task_wait_said_again(struct task *t)
{
    struct outcome *o = &t->rec;
    size_t k = 0;
    char key[RCONN_KEY_MAX], errstr[256];

    if (o->early == 0)
        return false;
    for (size_t i = 0; i < o->n; i++) {
        if (o->mitems[i].early)
            o->items[k++] = o->items[i];
        else
            free(o->items[i].event); /* published, or not to be */
    }
    o->n = k;
    int64_t now = worker_now_ms();
    if (t->again_since == 0)
        t->again_since = now;
    t->stage = STAGE_RECORD;
    if (now - t->again_since >= TASK_AGAIN_MAX_MS) {
        task_say_again_now(t, "their replica alive but silent for a minute");
        return true;
    }
    if (rconn_key_p(key, sizeof(key), aredis_prefix(t->w->aredis),
                    t->job->account, "mk", t->job->id, errstr,
                    sizeof(errstr)) != 0) {
        task_say_again_now(t, errstr); /* the recording took this key */
        return true;
    }
    const char *argv[] = {"HGET", key, MARKER_RECORDER};
    aredis_command(t->w->aredis, 3, argv, NULL, task_recorder_named, t);
    return true;
}

static void task_recorded(struct outcome *o, const char *err)
{
    struct task *t = (struct task *)((char *)o - offsetof(struct task, rec));

    if (t->w->closing)
        return; /* task_free_all frees the outcome with the task */
    if (err != NULL) {
        /* Keep the outcome's meaning: record it again, never call again. */
        task_redis_down(t, "record outcome", err);
        t->rec.again = true;
        task_park(t, TASK_REDIS_RETRY_MS, TASK_WAIT_REDIS);
        return;
    }
    t->w->redis_ok = true;
    failpoint("after_record");
    task_produced(t, o->produced);
    if (o->produce_failed)
        t->abandoned = true;
    task_track_said_again(t);
    task_track_now(t);
    if (t->unacked == 0)
        task_clear_after(t);
    if (task_wait_said_again(t))
        return;
    t->again_since = 0;
    t->again_ungated = false;
    outcome_cleanup(&t->rec);
    switch (t->after) {
    case AFTER_END:
        task_end(t);
        return;
    case AFTER_BUSY:
        task_park(t, TASK_BUSY_RETRY_MS, TASK_WAIT_BUSY);
        t->stage = STAGE_MARK;
        return;
    case AFTER_NEXT:
        t->stage = t->stage_next;
        task_next(t);
        return;
    }
}

static void task_record_send(struct task *t)
{
    outcome_record(t->w, &t->rec);
}

/* Records the outcomes in Redis (batched with the turn's other Redis work)
 * and emits an event for each recipient whose state moved forward; then
 * goes on as `after` says. While Redis is away the same recording is tried
 * again. `extra` items (events kept from before) are recorded along. */
static void task_record_ex(struct task *t, const char *job_id,
                           const struct task_outcome *outs, size_t n,
                           const struct outcome_item *extra, size_t nextra,
                           enum task_after after)
{
    const struct job *job = t->job;

    outcome_cleanup(&t->rec);
    t->rec = (struct outcome){
        .account = job->account,
        .job_id = job_id,
        .type = job_type_name(job->type),
        .items = xcalloc(n + nextra + 1, sizeof(*t->rec.items)),
        .n = n + nextra,
        .echo = t->echo,
        .ttl_fresh = strcmp(job_id, job->id) == 0 && t->marked_ms != 0 &&
                     worker_now_ms() - t->marked_ms < MARKER_TTL_FRESH_MS,
        .owner = t,
        .done = task_recorded,
    };
    for (size_t i = 0; i < n; i++) {
        const struct task_outcome *o = &outs[i];
        bool job_level = strcmp(o->recipient, OUTCOME_JOB_LEVEL) == 0;
        struct outcome_item *it = &t->rec.items[i];
        it->recipient = o->recipient;
        it->op = o->op;
        it->state = sms_state_name(o->state);
        it->emit_repeated = o->emit_repeated;
        it->event =
            task_status_json(t, job_id, job_level ? NULL : o->recipient,
                             o->state, o->provider_id, o->provider_status,
                             o->error_code, o->error_message, &it->event_len);
    }
    if (nextra > 0)
        memcpy(&t->rec.items[n], extra, nextra * sizeof(*extra));
    t->after = after;
    t->stage = STAGE_RECORD;
    task_record_send(t);
}

static void task_record(struct task *t, const struct task_outcome *outs,
                        size_t n, enum task_after after)
{
    task_record_ex(t, t->job->id, outs, n, NULL, 0, after);
}

static void task_reject(struct task *t, const char *id, const char *error)
{
    rd_kafka_message_t *rkm = t->rkm;

    if (rkm == NULL) {
        log_error("task: stored job %s no longer valid: %s", id, error);
        if (id[0] != '\0')
            task_status(t, id, NULL, STATE_REJECTED, "invalid_job", error);
        task_end(t);
        return;
    }
    log_warn("task: rejected topic=%s partition=%d offset=%lld id=%s: %s",
             rd_kafka_topic_name(rkm->rkt), rkm->partition,
             (long long)rkm->offset, id[0] ? id : "-", error);
    task_dlq(t, error);
    if (id[0] != '\0')
        task_status(t, id, NULL, STATE_REJECTED, "invalid_job", error);
    task_end(t);
}

/* Puts the task's Kafka message on the DLQ with `error`. */
static void task_dlq(struct task *t, const char *error)
{
    rd_kafka_message_t *rkm = t->rkm;

    /* The copy keeps the original key and headers (worker/dlq.h), so it can
     * be replayed as it was. A copy too large for Kafka would be refused
     * again at every redelivery: it is cut, and says so. */
    rd_kafka_headers_t *hdrs = dlq_headers(rkm, error);
    size_t len = rkm->len;
    if (len > TASK_DLQ_MAX) {
        char num[32];
        snprintf(num, sizeof(num), "%zu", rkm->len);
        rd_kafka_header_add(hdrs, "kurir-truncated-from", -1, num, -1);
        len = TASK_DLQ_MAX;
    }
    char *copy = xmalloc(len + 1);
    if (len > 0)
        memcpy(copy, rkm->payload, len);
    t->rejected = true;
    t->w->stats.dlq++;
    task_produce(t, KAFKA_DLQ, rkm->key, rkm->key_len, copy, len, hdrs);
}

/* ------------------------------------------------------------------------ */
/* Parking. */

const char *const task_wait_names[TASK_WAIT_N] = {
    [TASK_WAIT_REDIS] = "redis",           [TASK_WAIT_BUSY] = "busy",
    [TASK_WAIT_RATELIMIT] = "ratelimit",   [TASK_WAIT_SCHEDULE] = "schedule",
    [TASK_WAIT_REDELIVERY] = "redelivery", [TASK_WAIT_NEXT] = "next",
};

/* Parks the task for wait_ms (0: the next turn; worker/park.h). */
static void task_park(struct task *t, int64_t wait_ms, enum task_wait why)
{
    t->wait = why;
    if (wait_ms <= 0)
        park_now(&t->w->parking, t);
    else
        park_at(&t->w->parking, t, worker_now_ms() + wait_ms);
}

void task_resume(struct task *t)
{
    task_next(t);
}

enum task_wait task_parked_for(const struct task *t)
{
    return t->wait;
}

const struct task *task_next_parked(const struct task *t)
{
    return t->next_parked;
}

/* ------------------------------------------------------------------------ */
/* Redis entries: scheduled sends and retries. */

/* The payload of a stored entry: the job (with only `to` recipients when
 * given: a slice of job->to, their params with them), the attempt it is for
 * and when the first attempt was. */
static char *task_entry_payload(const struct task *t, char **to, size_t nto,
                                int attempt, size_t *len)
{
    const struct job *src = t->job;
    /* A shallow copy: only "to" is replaced, and a deep one copied every
     * recipient of the job for each part (a 100,000-recipient fan-out
     * had not ended after 300 s, the loop stuck in it). The members are shared
     * and only read. */
    json_t *job = json_copy(src->root);

    if (to != NULL) {
        size_t base = (size_t)(to - src->to);
        json_t *arr = json_array();
        for (size_t i = 0; i < nto; i++) {
            json_t *params = src->params != NULL ? src->params[base + i] : NULL;
            json_array_append_new(arr, params != NULL
                                           ? json_pack("{s:s, s:O}", "msisdn",
                                                       to[i], "params", params)
                                           : json_string(to[i]));
        }
        json_object_set_new(job, "to", arr);
    }
    json_t *root = json_pack("{s:s, s:i, s:I, s:o}", "type",
                             job_type_name(t->job->type), "attempt", attempt,
                             "first_ms", (json_int_t)t->first_ms, "job", job);
    if (t->echo != NULL)
        json_object_set_new(root, "echo", json_loads(t->echo, 0, NULL));
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (s == NULL) /* out of memory only: the job was valid JSON */
        abort();
    *len = strlen(s);
    return s;
}

/* STAGE_SCHEDULE: stores a send that is due later. */
static void task_schedule(struct task *t)
{
    const struct job *job = t->job;
    enum sched_added added;
    size_t len;
    char errstr[256];

    char *payload = task_entry_payload(t, NULL, 0, 1, &len);
    int r = sched_add(&added, t->w->sched, job->account, job->id, job->id,
                      job->type == JOB_CAMPAIGN ? job->id : NULL,
                      job->send_at_ms, payload, len, errstr, sizeof(errstr));
    free(payload);
    if (r != 0) {
        task_redis_down(t, "schedule", errstr);
        task_park(t, TASK_REDIS_RETRY_MS, TASK_WAIT_REDIS);
        return;
    }
    size_t n = job->nto > 0 ? job->nto : 1;
    struct task_outcome *outs = xcalloc(n, sizeof(*outs));
    enum sms_state state =
        added == SCHED_CANCELLED ? STATE_CANCELLED : STATE_SCHEDULED;
    for (size_t i = 0; i < n; i++) {
        outs[i].recipient = job->nto > 0 ? job->to[i] : OUTCOME_JOB_LEVEL;
        outs[i].state = state;
        outs[i].op = MARKER_OP_KEEP;
    }
    task_record(t, outs, n, AFTER_END);
    free(outs);
}

static int task_store_retry(struct task *t, char **to, size_t nto,
                            int64_t hint_ms, bool *stored)
{
    const struct job *job = t->job;
    struct sched_backoff policy = {
        .base_ms = 1000,
        .cap_ms = 300000,
        .horizon_ms = t->w->cfg->retry_horizon_s * 1000,
    };
    int64_t due;
    char errstr[256];
    char id[RCONN_KEY_MAX];
    enum sched_added added;

    *stored = false;
    if (!sched_backoff_next(&due, &policy, t->first_ms, worker_wall_ms(),
                            (unsigned)t->attempt, hint_ms, worker_rand32()))
        return 0;
    snprintf(id, sizeof(id), "%s#%d#%s", job->id, t->attempt + 1,
             to != NULL ? to[0] : OUTCOME_JOB_LEVEL);
    size_t len;
    char *payload = task_entry_payload(t, to, nto, t->attempt + 1, &len);
    int r = sched_add(&added, t->w->sched, job->account, id, job->id,
                      job->type == JOB_CAMPAIGN ? job->id : NULL, due, payload,
                      len, errstr, sizeof(errstr));
    free(payload);
    if (r != 0) {
        task_redis_down(t, "store retry", errstr);
        return -1;
    }
    *stored = added != SCHED_CANCELLED;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Markers. */

static enum sms_state task_outcome_state(enum call_outcome outcome)
{
    switch (outcome) {
    case CALL_ACCEPTED:
        return STATE_SUBMITTED;
    case CALL_RETRY:
        return STATE_RETRYING;
    case CALL_REJECTED:
        return STATE_REJECTED;
    case CALL_FAILED:
    case CALL_AUTH:
        break;
    }
    return STATE_FAILED;
}

/* STAGE_FANOUT: a job of many units puts one part per unit on the part
 * topic, keyed by job and unit so parts spread over its partitions. The
 * job's own source is acknowledged once Kafka has every part: a replica
 * that dies before leaves the job to be fanned out again (the parts' ids
 * and markers make the repeat harmless). */
static void task_fanout(struct task *t)
{
    struct job *job = t->job;
    size_t nunits = plan_count(t->acct, job);
    char key[CODEC_ID_MAX + 32];

    log_info("task: job %s fans out %zu recipients in %zu parts", job->id,
             job->nto, nunits);
    for (size_t i = 0; i < nunits && !t->abandoned; i++) {
        struct plan_unit u = plan_unit(t->acct, job, i);
        size_t len;
        char *payload =
            task_entry_payload(t, &job->to[u.first], u.count, 1, &len);
        snprintf(key, sizeof(key), "%s#%zu", job->id, i);
        task_produce(t, KAFKA_PARTS, key, strlen(key), payload, len,
                     echo_headers(t->echo));
    }
    task_end(t);
}

/* What the turn's batched begin said for this task's recipients. */
static void task_marked(struct rbatch_req *req, const char *err);

/* STAGE_MARK: takes the send-once markers, batched with the turn's other
 * marks. */
static void task_mark(struct task *t)
{
    struct job *job = t->job;
    bool job_level = !plan_is_bulk(job);
    size_t n = job_level ? 1 : job->nto;

    marker_begin_cleanup(t->marks, t->nmarks);
    free(t->marks);
    t->marks = xcalloc(n, sizeof(*t->marks));
    t->nmarks = n;
    for (size_t i = 0; i < n; i++)
        t->marks[i].recipient = job_level ? OUTCOME_JOB_LEVEL : job->to[i];
    t->mark_req = (struct rbatch_req){
        .kind = RBATCH_BEGIN,
        .account = job->account,
        .begin = {job->id, job->type == JOB_CAMPAIGN ? job->id : NULL, t->marks,
                  n, t->echo, t->mark_owner},
        .fn = task_marked,
        .owner = t,
    };
    rbatch_queue(t->w, &t->mark_req);
}

static void task_marked(struct rbatch_req *req, const char *err)
{
    struct task *t = req->owner;
    struct job *job = t->job;
    bool job_level = !plan_is_bulk(job);
    size_t n = t->nmarks;
    struct marker_begin_item *items = t->marks;
    bool busy = false;
    bool job_level_new = false;

    if (t->w->closing)
        return;
    if (err != NULL) {
        /* Marks carry this replica's owner name: trying again finds its
         * own fresh marks new, so a lost reply costs nothing. */
        task_redis_down(t, "mark", err);
        task_park(t, TASK_REDIS_RETRY_MS, TASK_WAIT_REDIS);
        return;
    }
    t->w->redis_ok = true;
    failpoint("after_mark");
    /* The first begin that marked sets the hash's TTL. A begin again after
     * a lost reply finds its own marks new without writing: its time is
     * then seconds late, against a margin of days. */
    for (size_t i = 0; i < n && t->marked_ms == 0; i++)
        if (items[i].result == MARKER_NEW || items[i].result == MARKER_STALE)
            t->marked_ms = worker_now_ms();

    size_t keep = 0;
    struct task_outcome *outs = xcalloc(n, sizeof(*outs));
    size_t nouts = 0;
    size_t ndone = 0;
    for (size_t i = 0; i < n; i++) {
        bool send = false;
        switch (items[i].result) {
        case MARKER_NEW:
            send = true;
            job_level_new = job_level;
            break;
        case MARKER_BUSY:
            /* Another replica is sending it now: wait for its outcome. */
            busy = true;
            break;
        case MARKER_DONE:
            /* Handled before (a redelivered job): said again below. */
            ndone++;
            break;
        case MARKER_STALE:
            /* Its replica died mid-request: the provider may have it.
             * Sending again could send twice, so it is unknown; awaited
             * (the job itself too), a report or the give-up settles it. */
            task_track_later(t, NULL, items[i].recipient, false);
            outs[nouts++] = (struct task_outcome){
                .recipient = items[i].recipient,
                .state = STATE_UNKNOWN,
                .op = MARKER_OP_DONE,
                .error_code = "interrupted",
                .error_message = "a replica stopped while sending; the "
                                 "provider may or may not have it",
            };
            break;
        case MARKER_CANCELLED:
            outs[nouts++] = (struct task_outcome){
                .recipient = items[i].recipient,
                .state = STATE_CANCELLED,
                .op = MARKER_OP_DONE,
            };
            break;
        case MARKER_OPTED_OUT:
            /* On the account's opt-out set (a stop word, the block list):
             * never handed to the provider; the rest of the unit goes on. */
            outs[nouts++] = (struct task_outcome){
                .recipient = items[i].recipient,
                .state = STATE_REJECTED,
                .op = MARKER_OP_DONE,
                .error_code = "opted_out",
                .error_message = "the recipient has opted out (a stop word "
                                 "or the account's block list)",
            };
            t->w->stats.failed++;
            break;
        }
        if (job_level)
            continue;
        if (send)
            plan_swap(job, i, keep++);
    }
    /* Recipients handled before re-emit their recorded event, but only
     * where it is still the recipient's latest state (a delivery report
     * that came since must not be followed by the older `submitted`) and,
     * for a `submitted` or `unknown`, not yet on Kafka (gated: one already
     * there may be followed by a report any moment, which the copy would
     * then follow); those are followed from here (task_track_said_again). */
    struct outcome_item *again = xcalloc(ndone + 1, sizeof(*again));
    size_t nagain = 0;
    for (size_t i = 0; i < n; i++) {
        if (items[i].result != MARKER_DONE)
            continue;
        json_t *ev =
            json_loadb(items[i].outcome, items[i].outcome_len, 0, NULL);
        const char *state = json_string_value(json_object_get(ev, "state"));
        const char *name = NULL; /* static: the event is freed below */
        for (int s = STATE_ACCEPTED; state != NULL && s <= STATE_CANCELLED; s++)
            if (strcmp(sms_state_name((enum sms_state)s), state) == 0)
                name = sms_state_name((enum sms_state)s);
        json_decref(ev);
        /* A job-level `submitted` (a campaign to groups) is the job's done
         * state: nothing follows it, nothing publishes it but this. */
        bool done = job_level && name == sms_state_name(STATE_SUBMITTED);
        again[nagain++] = (struct outcome_item){
            .recipient = items[i].recipient,
            .op = done ? MARKER_OP_KEEP : MARKER_OP_GATED,
            .state = name,
            .event = items[i].outcome,
            .event_len = items[i].outcome_len,
            .emit_repeated = true,
        };
        items[i].outcome = NULL; /* now the outcome's */
    }

    enum task_after after = AFTER_NEXT;
    if (busy) {
        /* Another replica holds some recipients: give back the ones this
         * call marked, and look again later. */
        if (!job_level && keep > 0)
            task_unmark(t, job->to, keep);
        after = AFTER_BUSY;
    } else if (job_level ? !job_level_new : keep == 0) {
        after = AFTER_END;
    }
    if (after != AFTER_NEXT)
        task_give_slot(t);
    if (!job_level && !busy)
        /* Only the sendable recipients stay (the numbers live in one block
         * the job owns: entries are reordered, never freed). */
        job->nto = keep;
    t->stage_next = STAGE_CALLS;
    if (nouts + nagain == 0) {
        free(outs);
        free(again);
        if (after == AFTER_END) {
            task_end(t);
        } else if (after == AFTER_BUSY) {
            t->stage = STAGE_MARK;
            task_park(t, TASK_BUSY_RETRY_MS, TASK_WAIT_BUSY);
        } else {
            t->stage = STAGE_CALLS;
            task_next(t);
        }
        return;
    }
    /* One recording for the new states and the said-again ones. */
    task_record_ex(t, job->id, outs, nouts, again, nagain, after);
    free(outs);
    free(again);
}

/* Adds the recipients of a stored entry (its payload's job) to the cancel's
 * list of recipients taken out of the schedule. */
static void task_cancel_entry(struct task *t, const struct sched_entry *e)
{
    json_t *root = json_loadb(e->payload, e->payload_len, 0, NULL);
    json_t *jobj = json_object_get(root, "job");
    char *bytes = jobj != NULL ? json_dumps(jobj, JSON_COMPACT) : NULL;
    const char *type = json_string_value(json_object_get(root, "type"));
    struct job *job = NULL;
    char id[128], errstr[256];

    if (bytes != NULL &&
        job_parse(&job, bytes, strlen(bytes),
                  type != NULL && strcmp(type, "send") == 0 ? JOB_SEND
                                                            : JOB_CAMPAIGN,
                  id, sizeof(id), errstr, sizeof(errstr)) == 0) {
        for (size_t i = 0; i < job->nto; i++) {
            bool seen = false;
            for (size_t k = 0; k < t->ncancel_to && !seen; k++)
                seen = strcmp(t->cancel_to[k], job->to[i]) == 0;
            if (seen)
                continue;
            t->cancel_to = xrealloc(t->cancel_to, (t->ncancel_to + 1) *
                                                      sizeof(*t->cancel_to));
            t->cancel_to[t->ncancel_to++] = xstrdup(job->to[i]);
        }
    } else {
        log_warn("task: cancel: stored entry %s unreadable", e->id);
    }
    job_free(job);
    free(bytes);
    json_decref(root);
}

/* Records `cancelled` for n recipients of the campaign job (its create's
 * id), then goes on at `next`. */
static void task_cancel_record(struct task *t, char **to, size_t n,
                               enum marker_op op, enum task_stage next)
{
    struct task_outcome *outs = xcalloc(n + 1, sizeof(*outs));

    for (size_t i = 0; i < n; i++)
        outs[i] = (struct task_outcome){
            .recipient = to[i],
            .state = STATE_CANCELLED,
            .op = op,
        };
    t->stage_next = next;
    task_record_ex(t, t->job->campaign_id, outs, n, NULL, 0, AFTER_NEXT);
    free(outs);
}

/* STAGE_CANCEL: a campaign cancel reads which units the provider holds
 * for the campaign (to cancel there, STAGE_CALLS), removes every part
 * still waiting in Redis and marks the campaign cancelled, so no replica
 * sends a part after this (marker_begin refuses them: those recipients end
 * `cancelled` when their part comes). The recipients taken out of the
 * schedule end `cancelled` now. */
static void task_cancel(struct task *t)
{
    const struct job *job = t->job;
    struct sched_entries taken;
    char errstr[256];

    poll_held_free(t->held, t->nheld);
    t->held = NULL;
    t->nheld = 0;
    if (poll_held_units(t->w, t->acct, job->campaign_id, &t->held, &t->nheld,
                        errstr, sizeof(errstr)) != 0 ||
        sched_cancel_take(&taken, t->w->sched, job->account, job->campaign_id,
                          true, errstr, sizeof(errstr)) != 0) {
        task_redis_down(t, "cancel", errstr);
        task_park(t, TASK_REDIS_RETRY_MS, TASK_WAIT_REDIS);
        return;
    }
    for (size_t i = 0; i < taken.n; i++)
        task_cancel_entry(t, &taken.v[i]);
    log_info("task: job %s cancelled campaign %s: %zu waiting parts removed "
             "(%zu recipients), %zu held by the provider",
             job->id, job->campaign_id, taken.n, t->ncancel_to, t->nheld);
    sched_entries_cleanup(&taken);
    if (t->ncancel_to > 0) {
        task_cancel_record(t, t->cancel_to, t->ncancel_to, MARKER_OP_DONE,
                           STAGE_MARK);
        return;
    }
    t->stage = STAGE_MARK;
    task_next(t);
}

/* A campaign cancel's calls: one provider cancel per unit it holds, as
 * many as one call list takes (CODEC_MAX_CALLS); task_next asks for the
 * rest once these are answered. */
static void task_encode_cancels(struct task *t)
{
    char errstr[256];

    if (t->cancel_of == NULL)
        t->cancel_of = xcalloc(CODEC_MAX_CALLS, sizeof(*t->cancel_of));
    for (; t->held_next < t->nheld && t->calls->ncalls < CODEC_MAX_CALLS;
         t->held_next++) {
        size_t i = t->held_next;
        size_t before = t->calls->ncalls;
        if (t->acct->codec->encode_poll == NULL ||
            t->acct->codec->encode_poll(t->calls, t->acct, OP_CANCEL,
                                        t->held[i].pid, 0, errstr,
                                        sizeof(errstr)) != 0) {
            log_warn("task: job %s: %s %s is not cancelled at the provider: "
                     "%s",
                     t->job->id, t->acct->name, t->held[i].pid,
                     t->acct->codec->encode_poll == NULL ? "no cancel"
                                                         : errstr);
            continue;
        }
        for (size_t k = before; k < t->calls->ncalls; k++)
            t->cancel_of[k] = i;
    }
}

/* The provider's answer to one cancel: the unit's recipients end
 * `cancelled` when it took it; otherwise they stay as they are (reports,
 * reads or the give-up end them) and the next unit is cancelled. */
static void task_cancel_answer(struct task *t, const struct call_result *res)
{
    const struct poll_held *h = &t->held[t->cancel_of[t->next_call]];

    t->next_call++;
    if (res->outcome == CALL_ACCEPTED) {
        log_info("task: job %s: %s cancelled %s at the provider (%zu "
                 "recipients)",
                 t->job->id, t->acct->name, h->pid, h->n);
        task_cancel_record(t, h->recipients, h->n, MARKER_OP_KEEP, STAGE_CALLS);
        return;
    }
    log_warn("task: job %s: %s did not cancel %s: %s", t->job->id,
             t->acct->name, h->pid, res->error_message);
    t->stage = STAGE_CALLS;
    task_next(t);
}

/* ------------------------------------------------------------------------ */
/* Calls. */

/* The state a job without recipients ends in when its calls succeeded. */
static enum sms_state task_done_state(const struct job *job)
{
    if (job->type == JOB_CAMPAIGN && job->action == ACTION_CANCEL)
        return STATE_CANCELLED;
    return STATE_DELIVERED;
}

/* A retryable answer: clears the markers, reports `retrying` and stores a
 * retry, or fails the recipients once the horizon has passed. Returns 0, or
 * -1 when Redis failed to store the retry (the caller parks and repeats). */
static int task_retry_later(struct task *t, const struct codec_call *call,
                            const struct call_result *res)
{
    const struct job *job = t->job;
    bool bulk = plan_is_bulk(job);
    char **to = bulk ? &job->to[call->first] : NULL;
    size_t n = bulk ? call->count : 1;
    bool stored;

    /* The provider asked us to slow down: the whole fleet does. */
    char errstr[256];
    if (res->retry_after_ms > 0) {
        metrics_count(&t->w->metrics, M_RATELIMIT_PENALTIES, ML(job->account),
                      1);
        log_warn("task: %s asks account %s to wait %lld ms (Retry-After)",
                 t->acct->codec->name, job->account,
                 (long long)res->retry_after_ms);
        if (ratelimit_penalize(t->w->ratelimit, job->account,
                               res->retry_after_ms, errstr,
                               sizeof(errstr)) != 0)
            log_warn("redis: penalize %s: %s", job->account, errstr);
    }
    if (task_store_retry(t, to, n, res->retry_after_ms, &stored) != 0)
        return -1;
    struct task_outcome *outs = xcalloc(n, sizeof(*outs));
    /* A stored retry's markers stay this unit's until Kafka has its
     * `retrying`: cleared at once, a redelivered copy of the job could be
     * sent and its `submitted` published first (seen in the 429 storm). */
    if (stored) {
        t->clear_after = xrealloc(t->clear_after, (t->nclear_after + n) *
                                                      sizeof(*t->clear_after));
        for (size_t i = 0; i < n; i++)
            t->clear_after[t->nclear_after++] =
                xstrdup(bulk ? to[i] : OUTCOME_JOB_LEVEL);
    }
    for (size_t i = 0; i < n; i++)
        outs[i] = (struct task_outcome){
            .recipient = bulk ? to[i] : OUTCOME_JOB_LEVEL,
            .state = stored ? STATE_RETRYING : STATE_FAILED,
            .op = stored ? MARKER_OP_KEEP : MARKER_OP_DONE,
            .provider_status = res->provider_status,
            .error_code = stored ? res->error_code : "retry_horizon",
            .error_message = res->error_message,
        };
    task_record(t, outs, n, AFTER_END);
    free(outs);
    return 0;
}

/* The poll set has a submitted message (or could not take it). */
static void task_tracked(void *privdata, const char *err)
{
    struct task *t = privdata;

    if (t->w->closing)
        return;
    if (err != NULL) {
        /* Not acknowledged: the job comes back to whoever owns it next. */
        log_warn("poll: track job %s: %s", t->job->id, err);
        t->abandoned = true;
    }
    task_pending_done(t);
}

/* Remembers a recipient handed to the provider (submitted) or maybe
 * handed (unknown), with its provider id (NULL: none), to follow once its
 * outcome is recorded and on Kafka: a poll that came first, here or on
 * another replica, could report `delivered` before `submitted` is recorded,
 * or publish it ahead of a `submitted` held in this replica's producer (a
 * broker away), and the recipient's state would move backwards on the
 * topic. */
static void task_track_later(struct task *t, const char *pid,
                             const char *recipient, bool unit_id)
{
    t->track = xrealloc(t->track, (t->ntrack + 1) * sizeof(*t->track));
    t->track[t->ntrack].pid = pid != NULL && pid[0] ? xstrdup(pid) : NULL;
    t->track[t->ntrack].recipient = recipient;
    t->track[t->ntrack].unit_id = unit_id;
    t->ntrack++;
}

/* Follows the remembered recipients (worker/poll.h: awaited until final,
 * polled where the account's statuses are read, their provider ids kept
 * for a cancel) once Kafka has every event the task produced; the task
 * waits for Redis to have them. */
static void task_track_now(struct task *t)
{
    if (t->ntrack == 0 || t->unacked > 0)
        return;
    struct poll_item *items = xcalloc(t->ntrack, sizeof(*items));
    for (size_t i = 0; i < t->ntrack; i++)
        items[i] = (struct poll_item){t->track[i].recipient, t->track[i].pid,
                                      t->track[i].unit_id};
    /* The provider holds the unit until send_at: a cancel can stop it. */
    bool held = t->acct->options.schedule_at_provider &&
                t->job->send_at_ms > worker_wall_ms();
    if (poll_track_unit(t->w, t->acct, t->job, items, t->ntrack, held,
                        task_tracked, t) == 0)
        t->pending_events++;
    free(items);
    for (size_t i = 0; i < t->ntrack; i++)
        free(t->track[i].pid);
    free(t->track);
    t->track = NULL;
    t->ntrack = 0;
}

/* Records what a call's result means and decides what comes next. */
static void task_result(struct task *t, const struct codec_call *call,
                        struct call_result *res)
{
    const struct job *job = t->job;

    if (t->cancel_of != NULL) {
        task_cancel_answer(t, res);
        return;
    }
    if (res->outcome == CALL_RETRY) {
        if (task_retry_later(t, call, res) != 0) {
            /* Redis is away: keep the answer's meaning by trying again;
             * nothing was sent again (t->next_call stays on a sent call,
             * and task_next never submits a call twice). */
            task_park(t, TASK_REDIS_RETRY_MS, TASK_WAIT_REDIS);
            t->stage = STAGE_RECORD;
            t->pending_retry = true;
            t->retry_res = *res;
            memset(res, 0, sizeof(*res));
        }
        return;
    }
    if (plan_is_bulk(job)) {
        struct task_outcome *outs = xcalloc(call->count, sizeof(*outs));
        for (size_t i = 0; i < call->count; i++) {
            const struct recipient_result *r =
                i < res->nrecipients ? &res->recipients[i] : NULL;
            enum call_outcome outcome = r ? r->outcome : res->outcome;
            struct task_outcome *o = &outs[i];
            o->recipient = job->to[call->first + i];
            o->state = task_outcome_state(outcome);
            o->op = MARKER_OP_DONE;
            o->provider_id =
                r && r->provider_id[0] ? r->provider_id : res->provider_id;
            o->provider_status = r && r->provider_status[0]
                                     ? r->provider_status
                                     : res->provider_status;
            if (o->state != STATE_SUBMITTED) {
                o->error_code =
                    r && r->error_code[0] ? r->error_code : res->error_code;
                o->error_message = r && r->error_message[0]
                                       ? r->error_message
                                       : res->error_message;
                t->w->stats.failed++;
            } else {
                t->w->stats.submitted++;
                /* Followed until final: a recipient's own id, or the
                 * call's (a campaign, a batch, a bundle). */
                task_track_later(t, o->provider_id, o->recipient,
                                 !(r && r->provider_id[0]));
            }
        }
        task_record(t, outs, call->count, AFTER_END);
        free(outs);
        return;
    }
    if (res->outcome != CALL_ACCEPTED || t->next_call + 1 == t->calls->ncalls) {
        /* A job-level action: a failure ends it; the last step's success
         * ends it in its done state. A read keeps no marker: a redelivered
         * read reads and publishes again, its status event included
         * (worker/reads.h). */
        bool read = job_action_is_read(job->action);
        struct task_outcome o = {
            .recipient = OUTCOME_JOB_LEVEL,
            .state = res->outcome == CALL_ACCEPTED
                         ? task_done_state(job)
                         : task_outcome_state(res->outcome),
            .op = read ? MARKER_OP_CLEAR : MARKER_OP_DONE,
            .emit_repeated = read,
            .provider_id = res->provider_id,
            .provider_status = res->provider_status,
            .error_code =
                res->outcome == CALL_ACCEPTED ? NULL : res->error_code,
            .error_message =
                res->outcome == CALL_ACCEPTED ? NULL : res->error_message,
        };
        task_record(t, &o, 1, AFTER_END);
        return;
    }
    t->next_call++;
    task_next(t);
}

/* True for jobs whose call hands messages to the provider: a second call
 * after a first that may have got through could send them twice. */
static bool task_sends(const struct job *job)
{
    return job->type == JOB_SEND ||
           (job->type == JOB_CAMPAIGN && job->action == ACTION_CREATE);
}

/* The retry policy of a send (docs/worker.md, "Which answers are
 * retried"): an answer that says the provider did not take the request
 * (429, 503) is retried; one that may follow an accepted request (500,
 * 502, 504 and other 5xx, whether the body reads or not, from the provider
 * or a proxy in front of it) is not: its recipients are `unknown` until a
 * report or a status read settles them. */
static bool task_maybe_taken(long status)
{
    return status >= 500 && status <= 599 && status != 503;
}

/* Records the unit's recipients (or the job) `unknown`: the provider may
 * have the message, and sending again could send it twice (CONTRACT §6). */
static void task_unknown(struct task *t, const struct codec_call *call,
                         const char *code, const char *message)
{
    bool bulk = plan_is_bulk(t->job);
    size_t n = bulk ? call->count : 1;
    struct task_outcome *outs = xcalloc(n, sizeof(*outs));

    for (size_t i = 0; i < n; i++) {
        outs[i] = (struct task_outcome){
            .recipient = bulk ? t->job->to[call->first + i] : OUTCOME_JOB_LEVEL,
            .state = STATE_UNKNOWN,
            .op = MARKER_OP_DONE,
            .error_code = code,
            .error_message = message,
        };
        /* Awaited (the job itself too): a report settles it, else the
         * give-up ends it. */
        task_track_later(t, NULL, outs[i].recipient, false);
    }
    task_record(t, outs, n, AFTER_END);
    free(outs);
}

static void task_http_done(const struct http_response *resp, const char *error,
                           bool maybe_sent, void *opaque)
{
    struct task *t = opaque;
    const struct codec_call *call = &t->calls->calls[t->next_call];
    struct call_result res = {0};
    char errstr[256];
    size_t produced = 0; /* results events (worker/reads.h) */
    bool more = false;   /* a read's next page is to be asked for */

    t->in_call = false;
    failpoint("after_accept");
    /* The place was for the marked and unanswered: give it to the next. */
    task_give_slot(t);
    struct metrics *m = &t->w->metrics;
    metrics_count(
        m, M_PROVIDER_REQUESTS,
        ML(t->acct->name, t->acct->codec->name,
           error != NULL ? "error" : metrics_http_class(resp->status)),
        1);
    metrics_observe(m, M_PROVIDER_LATENCY, ML(t->acct->name),
                    http_done_seconds(t->w->http));
    log_debug("task: job %s call %zu answered HTTP %ld", t->job->id,
              t->next_call, resp->status);
    bool sends = task_sends(t->job);
    if (error != NULL) {
        log_warn("task: %s request for job %s: %s", t->acct->codec->name,
                 t->job->id, error);
        if (maybe_sent && sends) {
            task_unknown(t, call, "no_answer", error);
            return;
        }
        call_result_set_error(&res, CALL_RETRY, "no_answer", "%s", error);
    } else if (reads_decode(&res, t->w, t, t->acct, t->job, call,
                            t->next_call + 1 == t->calls->ncalls, resp, t->echo,
                            &produced, &more, errstr, sizeof(errstr)) != 0) {
        /* reads_decode: codec->decode, plus what read actions and block
         * lists need (worker/reads.h). */
        log_warn("task: %s answer for job %s (HTTP %ld): %s",
                 t->acct->codec->name, t->job->id, resp->status, errstr);
        call_result_cleanup(&res);
        call_result_set_error(&res,
                              resp->status >= 200 && resp->status < 300
                                  ? CALL_FAILED
                                  : CALL_RETRY,
                              "bad_answer", "%s", errstr);
    } else if (resp->status == 429 && res.retry_after_ms == 0 &&
               res.outcome == CALL_RETRY) {
        res.retry_after_ms = 1000;
    }
    task_produced(t, produced);
    if (more) {
        /* The same call again for the next page (job->page moved on). */
        call_result_cleanup(&res);
        t->encoded = false;
        task_next(t);
        return;
    }
    if (sends && res.outcome == CALL_RETRY && task_maybe_taken(resp->status)) {
        char msg[CODEC_TEXT_MAX + 64];
        snprintf(msg, sizeof(msg), "HTTP %ld after the request went out: %s",
                 resp->status, res.error_message);
        task_unknown(t, call, "maybe_sent", msg);
        call_result_cleanup(&res);
        return;
    }
    task_result(t, call, &res);
    call_result_cleanup(&res);
}

/* Encodes the unit: all of job->to (a unit never holds more than one
 * call's worth), or the job when it has no recipients. Returns 0, or -1 on
 * a codec error (the task then records the job rejected). */
static int task_encode(struct task *t)
{
    const struct job *job = t->job;
    char errstr[256];

    /* Allocated only now: a task waiting for tokens or a mark stays small
     * (the list holds CODEC_MAX_CALLS requests). */
    if (t->calls == NULL)
        t->calls = t->w->ncalls_free > 0 ? t->w->calls_free[--t->w->ncalls_free]
                                         : xcalloc(1, sizeof(*t->calls));
    codec_calls_cleanup(t->calls);
    t->next_call = 0;
    struct plan_unit u = {0, plan_is_bulk(job) ? job->nto : 0};
    if (plan_encode(t->calls, t->acct, job, u, (int64_t)time(NULL), errstr,
                    sizeof(errstr)) != 0) {
        struct task_outcome o = {
            .recipient = OUTCOME_JOB_LEVEL,
            .state = STATE_REJECTED,
            .op = MARKER_OP_DONE,
            .error_code = "invalid_job",
            .error_message = errstr,
        };
        log_warn("task: job %s: %s", job->id, errstr);
        /* The markers taken stay: the job is wrong and stays wrong. */
        task_record(t, &o, 1, AFTER_END);
        return -1;
    }
    if (job->type == JOB_CAMPAIGN && job->action == ACTION_CANCEL)
        task_encode_cancels(t);
    t->encoded = true;
    return 0;
}

/* One rate-limit ask on the asynchronous connection. */
struct task_ask {
    struct worker *w;
    struct ratelimit_ask ask;
    struct ratelimit_bucket b;
    char account[128];
};

/* Wakes every task waiting for an ask's answer: each takes again, at
 * once, or after `wait_ms` when the ask failed (no spinning on a Redis
 * that is away). */
static void task_wake_token_waiters(struct worker *w, int64_t wait_ms)
{
    while (w->tok_head != NULL) {
        struct task *t = w->tok_head;
        w->tok_head = t->next_parked;
        task_park(t, wait_ms, wait_ms > 0 ? TASK_WAIT_REDIS : TASK_WAIT_NEXT);
    }
}

static void task_asked(const redisReply *reply, const char *err, void *privdata)
{
    struct task_ask *a = privdata;
    struct worker *w = a->w;
    char errstr[256];

    a->b.account = a->account;
    if (!w->closing) {
        int64_t wait = 0;
        if (ratelimit_ask_done(w->ratelimit, &a->ask, &a->b,
                               err != NULL ? NULL : reply, errstr,
                               sizeof(errstr)) != 0) {
            if (w->redis_ok)
                log_error("redis: rate limit: %s; not taking new work until "
                          "it is back",
                          err != NULL ? err : errstr);
            w->redis_ok = false;
            metrics_count(&w->metrics, M_REDIS_ERRORS, NULL, 1);
            wait = TASK_REDIS_RETRY_MS;
        }
        task_wake_token_waiters(w, wait);
    }
    free(a);
}

/* Queues the task until the account's ask is answered. */
static void task_wait_tokens(struct task *t)
{
    t->next_parked = t->w->tok_head;
    t->w->tok_head = t;
}

/* A unit that must wait long for tokens (a provider's Retry-After of
 * minutes or hours charged to the bucket, a very slow rate) goes to Redis
 * as an entry due when the wait ends, and its task ends: it must not hold
 * one of KURIR_MAX_IN_FLIGHT places meanwhile. A claimed entry is put back
 * (sched_retry); a Kafka message becomes a new entry, and its offset moves
 * on. Nothing was marked yet, so nothing is unmarked. */
static void task_defer(struct task *t, int64_t wait_ms)
{
    const struct job *job = t->job;
    int64_t due = worker_wall_ms() + wait_ms;
    char errstr[256];
    int r;

    if (t->rkm == NULL) {
        bool held;
        r = sched_retry(&held, t->w->sched, t->entry_account, t->entry.id,
                        t->entry.token, due, NULL, 0, errstr, sizeof(errstr));
    } else {
        char id[RCONN_KEY_MAX];
        enum sched_added added;
        size_t len;
        snprintf(id, sizeof(id), "%s#%d#wait#%s", job->id, t->attempt,
                 job->nto > 0 ? job->to[0] : OUTCOME_JOB_LEVEL);
        char *payload =
            task_entry_payload(t, job->to, job->nto, t->attempt, &len);
        r = sched_add(&added, t->w->sched, job->account, id, job->id,
                      job->type == JOB_CAMPAIGN ? job->id : NULL, due, payload,
                      len, errstr, sizeof(errstr));
        free(payload);
    }
    if (r != 0) {
        task_redis_down(t, "defer", errstr);
        task_park(t, TASK_REDIS_RETRY_MS, TASK_WAIT_REDIS);
        return;
    }
    metrics_count(&t->w->metrics, M_UNITS_DEFERRED, ML(job->account), 1);
    log_info("task: job %s waits %lld ms for account %s's tokens in Redis",
             job->id, (long long)wait_ms, job->account);
    t->deferred = true;
    task_end(t);
}

/* STAGE_TOKENS: charges the account's bucket for every recipient, in
 * bucket-sized takes, parking while the bucket refills. Leased tokens are
 * spent locally; a new lease is asked for on the asynchronous connection
 * while the task waits. */
static void task_tokens(struct task *t)
{
    const struct job *job = t->job;
    struct ratelimit_bucket b = {
        .account = job->account,
        .per_second = t->acct->per_second,
        .burst = t->acct->burst,
    };
    char errstr[256];

    if (t->charge_left == 0)
        t->charge_left = plan_charge(t->acct, job);
    int64_t most = (int64_t)t->acct->burst;
    while (t->charge_left > 0) {
        int64_t take = t->charge_left < most ? t->charge_left : most;
        int64_t wait_ms;
        enum ratelimit_step step;
        struct ratelimit_ask ask;
        if (ratelimit_take_begin(t->w->ratelimit, &step, &wait_ms, &ask, &b,
                                 (unsigned)take, errstr, sizeof(errstr)) != 0) {
            /* Never admissible: a bucket smaller than one message. */
            struct task_outcome o = {
                .recipient = OUTCOME_JOB_LEVEL,
                .state = STATE_REJECTED,
                .op = MARKER_OP_DONE,
                .error_code = "rate_limit",
                .error_message = errstr,
            };
            log_error("task: job %s: account %s: %s", job->id, job->account,
                      errstr);
            task_record(t, &o, 1, AFTER_END);
            return;
        }
        if (step == RL_WAIT) {
            metrics_count(&t->w->metrics, M_RATELIMIT_WAITS, ML(job->account),
                          1);
            if (wait_ms > TASK_PARK_MAX_MS)
                task_defer(t, wait_ms);
            else
                task_park(t, wait_ms, TASK_WAIT_RATELIMIT);
            return;
        }
        if (step == RL_ASKING) {
            task_wait_tokens(t);
            return;
        }
        if (step == RL_ASK) {
            struct task_ask *a = xcalloc(1, sizeof(*a));
            struct rargv args = {0};
            a->w = t->w;
            a->ask = ask;
            a->b = b;
            snprintf(a->account, sizeof(a->account), "%s", job->account);
            if (ratelimit_ask_build(&args, aredis_prefix(t->w->aredis),
                                    t->w->ratelimit, &b, &ask, errstr,
                                    sizeof(errstr)) != 0) {
                /* Cannot happen for an account that passed start-up. */
                ratelimit_ask_done(t->w->ratelimit, &ask, &b, NULL, errstr,
                                   sizeof(errstr));
                free(a);
                task_park(t, TASK_REDIS_RETRY_MS, TASK_WAIT_REDIS);
                return;
            }
            aredis_eval(t->w->aredis, ratelimit_take_script(),
                        ask.with_sender ? 3 : 2, (int)args.n, args.v, args.len,
                        task_asked, a);
            rargv_cleanup(&args);
            task_wait_tokens(t);
            return;
        }
        t->charge_left -= take;
        metrics_count(&t->w->metrics, M_RATELIMIT_TOKENS, ML(job->account),
                      (double)take);
    }
    t->stage = STAGE_MARK;
    task_next(t);
}

/* Takes one of the KURIR_HTTP_MAX_CONNS places for tasks that are marked
 * and calling. Returns true, or false with the task queued until a place
 * frees. */
static bool task_take_slot(struct task *t)
{
    struct worker *w = t->w;

    if (t->has_slot)
        return true;
    if (w->calls_active >= (size_t)w->cfg->http_max_conns) {
        t->next_parked = NULL;
        if (w->slot_tail != NULL)
            w->slot_tail->next_parked = t;
        else
            w->slot_head = t;
        w->slot_tail = t;
        return false;
    }
    w->calls_active++;
    t->has_slot = true;
    return true;
}

/* Gives a place back and wakes the first task waiting for one. */
static void task_give_slot(struct task *t)
{
    struct worker *w = t->w;

    if (!t->has_slot)
        return;
    t->has_slot = false;
    w->calls_active--;
    struct task *next = w->slot_head;
    if (next != NULL && !worker_stop) {
        w->slot_head = next->next_parked;
        if (w->slot_head == NULL)
            w->slot_tail = NULL;
        task_park(next, 0, TASK_WAIT_NEXT);
    }
}

/* Runs the task's current stage. */
static void task_next(struct task *t)
{
    char errstr[256];

    switch (t->stage) {
    case STAGE_SCHEDULE:
        task_schedule(t);
        return;
    case STAGE_CANCEL:
        task_cancel(t);
        return;
    case STAGE_FANOUT:
        task_fanout(t);
        return;
    case STAGE_TOKENS:
        task_tokens(t);
        return;
    case STAGE_MARK:
        if (task_take_slot(t))
            task_mark(t);
        return;
    case STAGE_RECORD:
        if (t->pending_retry) {
            if (task_retry_later(t, &t->calls->calls[t->next_call],
                                 &t->retry_res) != 0) {
                task_park(t, TASK_REDIS_RETRY_MS, TASK_WAIT_REDIS);
                return;
            }
            t->pending_retry = false;
            call_result_cleanup(&t->retry_res);
            return;
        }
        task_record_send(t);
        return;
    case STAGE_CALLS:
        break;
    }
    if (!t->encoded) {
        if (task_encode(t) != 0)
            return;
        if (t->calls->ncalls == 0) {
            /* Nothing to ask the provider (a campaign cancel whose parts
             * were all still here): the job is done as it stands. */
            struct task_outcome o = {
                .recipient = OUTCOME_JOB_LEVEL,
                .state = task_done_state(t->job),
                .op = MARKER_OP_DONE,
            };
            task_record(t, &o, 1, AFTER_END);
            return;
        }
    }
    if (t->next_call >= t->calls->ncalls && t->cancel_of != NULL &&
        t->held_next < t->nheld) {
        /* More held units than one call list takes: the next ones. */
        codec_calls_cleanup(t->calls);
        t->next_call = 0;
        task_encode_cancels(t);
    }
    if (t->next_call >= t->calls->ncalls) {
        if (t->cancel_of != NULL && !t->cancel_closed) {
            /* Every held unit was asked: the cancel job itself ends. */
            struct task_outcome o = {
                .recipient = OUTCOME_JOB_LEVEL,
                .state = STATE_CANCELLED,
                .op = MARKER_OP_DONE,
            };
            t->cancel_closed = true;
            task_record(t, &o, 1, AFTER_END);
            return;
        }
        task_end(t);
        return;
    }
    if (worker_stop) {
        /* Shutting down: what is not sent yet waits for the next owner. */
        task_abandon(t);
        return;
    }
    const struct codec_call *call = &t->calls->calls[t->next_call];
    if (http_submit(t->w->http, &call->req, task_http_done, t, errstr,
                    sizeof(errstr)) != 0) {
        log_error("task: %s", errstr);
        task_abandon(t);
        return;
    }
    t->in_call = true;
    t->sent = true;
    t->w->stats.requests++;
}

/* ------------------------------------------------------------------------ */
/* Start. */

static enum job_type task_topic_type(const struct config *cfg,
                                     const char *topic)
{
    if (strcmp(topic, cfg->topic_campaign) == 0)
        return JOB_CAMPAIGN;
    if (strcmp(topic, cfg->topic_contacts) == 0)
        return JOB_CONTACTS;
    return JOB_SEND;
}

static struct task *task_new(struct worker *w)
{
    struct task *t = xcalloc(1, sizeof(*t));

    t->owner = OWNER_TASK;
    t->w = w;
    /* Another task of the same job (a redelivery while this one waits)
     * is another owner: it finds these marks busy, never new. */
    snprintf(t->mark_owner, sizeof(t->mark_owner), "%s/%llu", w->owner,
             (unsigned long long)++w->task_seq);
    t->attempt = 1;
    t->next = w->all;
    if (t->next != NULL)
        t->next->prev = t;
    w->all = t;
    w->tasks++;
    return t;
}

/* Checks the parsed job against its account and provider, then decides the
 * first stage. `may_schedule`: a job from its own topic (not a part, not a
 * claimed entry) whose send_at lies ahead is stored until due. */
static void task_prepare(struct task *t, bool may_schedule)
{
    struct job *job = t->job;
    char errstr[512];
    char key[RCONN_KEY_MAX];

    t->acct = accounts_find(t->w->accounts, job->account);
    if (t->acct == NULL) {
        snprintf(errstr, sizeof(errstr), "unknown account \"%s\"",
                 job->account);
        task_reject(t, job->id, errstr);
        return;
    }
    if (t->acct->codec->encode == NULL) {
        snprintf(errstr, sizeof(errstr), "provider %s is not supported yet",
                 t->acct->codec->name);
        task_reject(t, job->id, errstr);
        return;
    }
    /* Every key kurir builds for the job must fit, or no Redis call for it
     * could ever succeed: a poison job, rejected now rather than parked. */
    if (rconn_key_p(key, sizeof(key), "kurir", job->account, "cx:camp", job->id,
                    errstr, sizeof(errstr)) != 0) {
        snprintf(errstr, sizeof(errstr),
                 "job id too long: at most %d bytes together with the "
                 "account name",
                 RCONN_KEY_MAX - 24);
        task_reject(t, job->id, errstr);
        return;
    }
    if (t->acct->codec->check != NULL &&
        t->acct->codec->check(t->acct, job, errstr, sizeof(errstr)) != 0) {
        task_reject(t, job->id, errstr);
        return;
    }
    if (t->first_ms == 0)
        t->first_ms = worker_wall_ms();
    plan_dedupe(job);
    /* A send due later than now waits in Redis. */
    bool later = job->send_at_ms > worker_wall_ms() &&
                 (job->type == JOB_SEND ||
                  (job->type == JOB_CAMPAIGN && job->action == ACTION_CREATE));
    /* A campaign of an account that schedules at the provider goes there
     * now, with its time: a cancel then stops it at the provider. */
    if (later && job->type == JOB_CAMPAIGN &&
        t->acct->options.schedule_at_provider)
        later = false;
    if (may_schedule && later)
        t->stage = STAGE_SCHEDULE;
    else if (job->type == JOB_CAMPAIGN && job->action == ACTION_CANCEL)
        t->stage = STAGE_CANCEL;
    else if (!t->from_parts && plan_count(t->acct, job) > 1)
        t->stage = STAGE_FANOUT;
    else if (plan_is_bulk(job))
        t->stage = STAGE_TOKENS;
    else
        t->stage = STAGE_MARK;
    /* An entry claimed ahead of its time waits the rest on the loop's
     * timers: it leaves when due, never before (one more millisecond:
     * both clocks are read in whole ones). */
    int64_t early = t->rkm == NULL ? job->send_at_ms - worker_wall_ms() : 0;
    if (early > 0 && early <= WORKER_CLAIM_AHEAD_MS) {
        task_park(t, early + 1, TASK_WAIT_SCHEDULE);
        return;
    }
    task_next(t);
}

/* Reads a stored payload (a scheduled entry, a retry, a part):
 * {"type", "attempt", "first_ms", "job"}. Returns 0, or -1 with the job id
 * (when readable) and errstr set. */
static int task_parse_payload(struct task *t, const char *payload, size_t len,
                              char *id, size_t id_size, char *errstr,
                              size_t errstr_size)
{
    json_t *root = json_loadb(payload, len, 0, NULL);
    const char *type = json_string_value(json_object_get(root, "type"));
    json_t *jobj = json_object_get(root, "job");
    char *jbytes = jobj != NULL ? json_dumps(jobj, JSON_COMPACT) : NULL;
    enum job_type jt = JOB_SEND;

    if (type != NULL && strcmp(type, "campaign") == 0)
        jt = JOB_CAMPAIGN;
    else if (type != NULL && strcmp(type, "contact-sync") == 0)
        jt = JOB_CONTACTS;
    t->attempt = (int)json_integer_value(json_object_get(root, "attempt"));
    if (t->attempt < 1)
        t->attempt = 1;
    t->first_ms = json_integer_value(json_object_get(root, "first_ms"));
    t->echo = echo_from_json(json_object_get(root, "echo"));
    int r = -1;
    if (jbytes == NULL) {
        snprintf(errstr, errstr_size, "unreadable stored job");
        id[0] = '\0';
    } else {
        r = job_parse(&t->job, jbytes, strlen(jbytes), jt, id, id_size, errstr,
                      errstr_size);
    }
    free(jbytes);
    json_decref(root);
    return r;
}

void task_start(struct worker *w, rd_kafka_message_t *rkm)
{
    struct task *t = task_new(w);
    char id[1024]; /* a rejected job's id as it came, even a long one */
    char errstr[512];
    const char *topic = rd_kafka_topic_name(rkm->rkt);
    int r;

    t->rkm = rkm;
    t->from_parts = strcmp(topic, w->cfg->topic_parts) == 0;
    if (t->from_parts) {
        r = task_parse_payload(t, rkm->payload, rkm->len, id, sizeof(id),
                               errstr, sizeof(errstr));
    } else {
        w->stats.jobs++;
        t->echo = echo_from_message(rkm);
        r = job_parse(&t->job, rkm->payload, rkm->len,
                      task_topic_type(w->cfg, topic), id, sizeof(id), errstr,
                      sizeof(errstr));
    }
    if (r != 0) {
        task_reject(t, id, errstr);
        return;
    }
    log_debug("task: job %s topic=%s partition=%d offset=%lld", t->job->id,
              topic, rkm->partition, (long long)rkm->offset);
    task_prepare(t, !t->from_parts);
}

void task_start_entry(struct worker *w, const char *account,
                      struct sched_entry *entry)
{
    struct task *t = task_new(w);
    char id[1024];
    char errstr[512];

    t->entry = *entry;
    memset(entry, 0, sizeof(*entry)); /* Now owned by the task. */
    t->entry_account = accounts_find(w->accounts, account)->name;
    if (task_parse_payload(t, t->entry.payload, t->entry.payload_len, id,
                           sizeof(id), errstr, sizeof(errstr)) != 0) {
        task_reject(t, id, errstr);
        return;
    }
    log_debug("task: job %s from redis entry %s attempt %d", t->job->id,
              t->entry.id, t->attempt);
    task_prepare(t, false);
}

void task_extend_leases(struct worker *w, int64_t lease_ms)
{
    const char *ids[TASK_EXTEND_BATCH], *tokens[TASK_EXTEND_BATCH];
    char errstr[256];

    for (size_t a = 0; a < w->accounts->count; a++) {
        const char *account = w->accounts->items[a].name;
        const struct task *t = w->all;
        while (t != NULL) {
            size_t n = 0;
            for (; t != NULL && n < TASK_EXTEND_BATCH; t = t->next)
                if (t->rkm == NULL && !t->ended && t->entry.id != NULL &&
                    t->entry_account == account) {
                    ids[n] = t->entry.id;
                    tokens[n] = t->entry.token;
                    n++;
                }
            size_t held;
            if (n == 0)
                break;
            if (sched_extend_many(&held, w->sched, account, ids, tokens, n,
                                  lease_ms, errstr, sizeof(errstr)) != 0) {
                /* The lease still runs; the next extension tries again. */
                log_warn("redis: extend %zu claims of %s: %s", n, account,
                         errstr);
                metrics_count(&w->metrics, M_REDIS_ERRORS, NULL, 1);
                return;
            }
            if (held < n) {
                metrics_count(&w->metrics, M_LEASES_LOST, NULL, n - held);
                log_warn("task: %zu of %zu claims of %s were no longer ours "
                         "(leases run out); their markers keep them from "
                         "being sent twice",
                         n - held, n, account);
            }
        }
    }
}
