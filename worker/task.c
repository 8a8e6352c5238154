/* worker/task.c - one job, from Kafka poll (or Redis claim) to its end.
 *
 * The stages of a task, each resumable after a park:
 *
 *   STAGE_SCHEDULE  a send due later is stored in Redis (sched) and reported
 *                   `scheduled`; the task ends and Kafka's offset moves on.
 *   STAGE_TOKENS    the account's token bucket is charged in segments for
 *                   every recipient, parking while the bucket refills.
 *   STAGE_MARK      once a provider connection is free, send-once markers
 *                   for every recipient (one round trip): recipients
 *                   already sent re-emit their known outcome, the rest are
 *                   marked in flight and kept in job->to.
 *   STAGE_CALLS     one provider call at a time.
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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codecs/job.h"
#include "worker/events.h"
#include "worker/log.h"
#include "worker/poll.h"
#include "worker/xalloc.h"

/* How long a task waits before trying Redis again. */
#define TASK_REDIS_RETRY_MS 500
/* How long a task waits for a recipient in flight at another replica. */
#define TASK_BUSY_RETRY_MS 1000
/* A marker in flight longer than this was left by a replica that died. */
#define TASK_STALE_MS 120000
/* The recipient name of a job-level marker (jobs without recipients). */
#define TASK_JOB_LEVEL "-"

enum task_stage {
    STAGE_SCHEDULE,
    STAGE_CANCEL,
    STAGE_TOKENS,
    STAGE_MARK,
    STAGE_CALLS,
};

struct task {
    enum event_owner owner; /* OWNER_TASK; must stay first */
    struct worker *w;
    rd_kafka_message_t *rkm;    /* Kafka source (owned), or NULL */
    struct sched_entry entry;   /* Redis source (owned) when rkm is NULL */
    const char *entry_account;  /* the account the entry was claimed in */
    struct job *job;            /* owned; NULL when it did not parse */
    const struct account *acct; /* borrowed from w->accounts */
    enum task_stage stage;      /* what task_next() does */
    int attempt;                /* 1 for the first try */
    int64_t first_ms;           /* wall clock of the first try */
    struct codec_calls calls;   /* the calls of the current chunk */
    size_t next_call;           /* index into calls of the next call */
    size_t next_recipient;      /* first recipient not yet encoded */
    size_t sent_upto;           /* recipients before this were submitted */
    int64_t charge_left;        /* tokens still to take (STAGE_TOKENS) */
    bool has_slot;              /* counted in w->calls_active */
    bool in_call;               /* a provider request is in flight */
    int pending_events;         /* produced, not yet acknowledged */
    bool ended;                 /* no more events will be produced */
    bool abandoned;             /* leave the source unacknowledged */
    int64_t wake_ms;            /* parked: when to resume */
    struct task *next_parked;
    struct task *prev, *next; /* w->all: every live task */
};

static void task_next(struct task *t);

/* Jobs whose recipients are sent to, chunk by chunk. */
static bool task_is_bulk(const struct job *job)
{
    return job->nto > 0 &&
           (job->type == JOB_SEND ||
            (job->type == JOB_CAMPAIGN && job->action == ACTION_CREATE));
}

/* Logs a Redis failure once per outage and tells the loop to stop taking
 * new work until Redis answers again. */
static void task_redis_down(struct task *t, const char *what,
                            const char *errstr)
{
    if (t->w->redis_ok)
        log_error("redis: %s: %s; not taking new work until it is back", what,
                  errstr);
    t->w->redis_ok = false;
}

/* ------------------------------------------------------------------------ */
/* Ending. */

static void task_give_slot(struct task *t);

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
    codec_calls_cleanup(&t->calls);
    job_free(t->job);
    if (t->rkm != NULL)
        rd_kafka_message_destroy(t->rkm);
    free(t->entry.id);
    free(t->entry.token);
    free(t->entry.payload);
    free(t);
    w->tasks--;
}

/* The job has ended: its offset may be stored, or its Redis entry
 * removed. */
static void task_release(struct task *t)
{
    char errstr[256];
    bool held;

    if (!t->abandoned && t->rkm != NULL)
        kafka_done(t->w->kafka, rd_kafka_topic_name(t->rkm->rkt),
                   t->rkm->partition, t->rkm->offset);
    if (!t->abandoned && t->rkm == NULL &&
        sched_ack(&held, t->w->sched, t->entry_account, t->entry.id,
                  t->entry.token, errstr, sizeof(errstr)) != 0)
        /* The lease runs out and the entry is claimed again; its markers
         * make that harmless. */
        log_warn("redis: ack %s: %s", t->entry.id, errstr);
    task_free(t);
}

void task_free_all(struct worker *w)
{
    while (w->all != NULL)
        task_free(w->all);
    w->parked = NULL;
}

/* The task will produce nothing more; it is released once Kafka has all
 * its events. */
static void task_end(struct task *t)
{
    t->ended = true;
    if (t->pending_events == 0)
        task_release(t);
}

void task_event_delivered(struct task *t, rd_kafka_resp_err_t err)
{
    (void)err; /* logged by kafka.c; only fatal errors get here */
    t->pending_events--;
    if (t->ended && t->pending_events == 0)
        task_release(t);
}

/* Clears the send-once markers of n recipients, so that whoever handles
 * the job next sends them. */
static void task_unmark(struct task *t, char **to, size_t n)
{
    const struct job *job = t->job;
    struct marker_update_item *items = xcalloc(n, sizeof(*items));
    char errstr[256];

    for (size_t i = 0; i < n; i++) {
        items[i].recipient = to[i];
        items[i].op = MARKER_OP_CLEAR;
    }
    if (marker_update(t->w->marker, job->account, job->id, items, n, errstr,
                      sizeof(errstr)) != 0)
        log_warn("redis: unmark %s: %s", job->id, errstr);
    free(items);
}

/* Clears the markers of recipients not yet handed to the provider. */
static void task_unmark_unsent(struct task *t)
{
    const struct job *job = t->job;

    if (job == NULL || t->stage != STAGE_CALLS || !task_is_bulk(job) ||
        t->sent_upto >= job->nto)
        return;
    task_unmark(t, &job->to[t->sent_upto], job->nto - t->sent_upto);
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
    while (w->slot_head != NULL) {
        struct task *t = w->slot_head;
        w->slot_head = t->next_parked;
        task_abandon(t);
    }
    w->slot_tail = NULL;
    while (w->parked != NULL) {
        struct task *t = w->parked;
        w->parked = t->next_parked;
        task_abandon(t);
    }
}

/* ------------------------------------------------------------------------ */
/* Events. */

static void task_produce(struct task *t, enum kafka_topic topic,
                         const char *key, char *value, size_t len,
                         rd_kafka_headers_t *headers)
{
    char errstr[256];

    if (kafka_produce(t->w->kafka, topic, key, key ? strlen(key) : 0, value,
                      len, headers, t, errstr, sizeof(errstr)) != 0) {
        /* Only a full local queue or a fatal error get here; the job's
         * source then stays unacknowledged and it comes back. */
        log_error("task: %s job=%s", errstr, t->job != NULL ? t->job->id : "-");
        t->abandoned = true;
    } else {
        t->pending_events++;
        t->w->stats.events++;
    }
    free(value);
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
        .segments = job && job->text ? (int)job->text_info.segments : 0,
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
    size_t len;
    char *value = task_status_json(t, job_id, recipient, state, NULL, NULL,
                                   error_code, error_message, &len);

    task_produce(t, KAFKA_STATUS, job_id, value, len, NULL);
}

/* One recipient's new state, to be recorded in Redis and then emitted. */
struct task_outcome {
    const char *recipient; /* job->to[i], or TASK_JOB_LEVEL */
    enum sms_state state;
    enum marker_op op;
    const char *provider_id;
    const char *provider_status;
    const char *error_code;
    const char *error_message;
};

/* Records the outcomes in Redis (one round trip) and emits an event for
 * each recipient whose state moved forward: events stay monotonic even
 * when a job is processed twice. Returns 0, or -1 when Redis failed
 * (nothing emitted; the caller parks and repeats). */
static int task_record(struct task *t, const struct task_outcome *outs,
                       size_t n)
{
    const struct job *job = t->job;
    struct marker_update_item *items = xcalloc(n, sizeof(*items));
    char **values = xcalloc(n, sizeof(*values));
    size_t *lens = xcalloc(n, sizeof(*lens));
    char errstr[256];
    int ret = -1;

    for (size_t i = 0; i < n; i++) {
        const struct task_outcome *o = &outs[i];
        bool job_level = strcmp(o->recipient, TASK_JOB_LEVEL) == 0;
        values[i] =
            task_status_json(t, job->id, job_level ? NULL : o->recipient,
                             o->state, o->provider_id, o->provider_status,
                             o->error_code, o->error_message, &lens[i]);
        items[i].recipient = o->recipient;
        items[i].op = o->op;
        items[i].outcome = values[i];
        items[i].outcome_len = lens[i];
        items[i].state = sms_state_name(o->state);
    }
    if (marker_update(t->w->marker, job->account, job->id, items, n, errstr,
                      sizeof(errstr)) != 0) {
        task_redis_down(t, "record outcome", errstr);
        goto out;
    }
    t->w->redis_ok = true;
    for (size_t i = 0; i < n; i++) {
        if (items[i].advanced) {
            task_produce(t, KAFKA_STATUS, job->id, values[i], lens[i], NULL);
            values[i] = NULL;
        }
    }
    ret = 0;

out:
    for (size_t i = 0; i < n; i++)
        free(values[i]);
    free(values);
    free(lens);
    free(items);
    return ret;
}

/* Sends the job's bytes to the DLQ with one error line, and a rejected
 * event when it had a readable id. Only for jobs from Kafka; a job from
 * Redis passed these checks when it was stored. */
static void task_reject(struct task *t, const char *id, const char *error)
{
    rd_kafka_message_t *rkm = t->rkm;
    char num[32];

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
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(4);
    rd_kafka_header_add(hdrs, "kurir-error", -1, error, -1);
    rd_kafka_header_add(hdrs, "kurir-source-topic", -1,
                        rd_kafka_topic_name(rkm->rkt), -1);
    snprintf(num, sizeof(num), "%d", (int)rkm->partition);
    rd_kafka_header_add(hdrs, "kurir-source-partition", -1, num, -1);
    snprintf(num, sizeof(num), "%lld", (long long)rkm->offset);
    rd_kafka_header_add(hdrs, "kurir-source-offset", -1, num, -1);

    char *copy = xmalloc(rkm->len + 1);
    if (rkm->len > 0)
        memcpy(copy, rkm->payload, rkm->len);
    task_produce(t, KAFKA_DLQ, id[0] ? id : NULL, copy, rkm->len, hdrs);
    t->w->stats.dlq++;
    if (id[0] != '\0')
        task_status(t, id, NULL, STATE_REJECTED, "invalid_job", error);
    task_end(t);
}

/* ------------------------------------------------------------------------ */
/* Parking. */

static void task_park(struct task *t, int64_t wait_ms)
{
    struct task **pp = &t->w->parked;

    t->wake_ms = worker_now_ms() + wait_ms;
    while (*pp != NULL && (*pp)->wake_ms <= t->wake_ms)
        pp = &(*pp)->next_parked;
    t->next_parked = *pp;
    *pp = t;
}

int64_t task_wake_ms(const struct task *t)
{
    return t->wake_ms;
}

void task_resume(struct task *t)
{
    t->w->parked = t->next_parked;
    t->next_parked = NULL;
    task_next(t);
}

/* ------------------------------------------------------------------------ */
/* Redis entries: scheduled sends and retries. */

/* The payload of a stored entry: the job (with only `to` recipients when
 * given), the attempt it is for and when the first attempt was. */
static char *task_entry_payload(const struct task *t, char **to, size_t nto,
                                int attempt, size_t *len)
{
    json_t *job = json_deep_copy(t->job->root);

    if (to != NULL) {
        json_t *arr = json_array();
        for (size_t i = 0; i < nto; i++)
            json_array_append_new(arr, json_string(to[i]));
        json_object_set_new(job, "to", arr);
    }
    json_t *root = json_pack("{s:s, s:i, s:I, s:o}", "type",
                             job_type_name(t->job->type), "attempt", attempt,
                             "first_ms", (json_int_t)t->first_ms, "job", job);
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
        task_park(t, TASK_REDIS_RETRY_MS);
        return;
    }
    size_t n = job->nto > 0 ? job->nto : 1;
    struct task_outcome *outs = xcalloc(n, sizeof(*outs));
    enum sms_state state =
        added == SCHED_CANCELLED ? STATE_CANCELLED : STATE_SCHEDULED;
    for (size_t i = 0; i < n; i++) {
        outs[i].recipient = job->nto > 0 ? job->to[i] : TASK_JOB_LEVEL;
        outs[i].state = state;
        outs[i].op = MARKER_OP_KEEP;
    }
    r = task_record(t, outs, n);
    free(outs);
    if (r != 0) {
        task_park(t, TASK_REDIS_RETRY_MS);
        return;
    }
    task_end(t);
}

/* Stores a retry of `to` (nto recipients; NULL: the whole job) for later,
 * or returns false when the retry horizon has passed. */
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
    char id[256];
    enum sched_added added;

    *stored = false;
    if (!sched_backoff_next(&due, &policy, t->first_ms, worker_wall_ms(),
                            (unsigned)t->attempt, hint_ms, (uint32_t)rand()))
        return 0;
    snprintf(id, sizeof(id), "%s#%d#%s", job->id, t->attempt + 1,
             to != NULL ? to[0] : TASK_JOB_LEVEL);
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

/* Re-emits the recorded events of recipients a redelivered job had already
 * handled, but only where that event is still the recipient's latest state:
 * a delivery report that came since must not be followed by the older
 * `submitted` again. Returns 0, or -1 when Redis failed. */
static int task_reemit(struct task *t, struct marker_begin_item *items,
                       size_t n)
{
    const struct job *job = t->job;
    struct marker_update_item *ups = xcalloc(n, sizeof(*ups));
    json_t **events = xcalloc(n, sizeof(*events));
    size_t m = 0;
    char errstr[256];
    int ret = -1;

    for (size_t i = 0; i < n; i++) {
        if (items[i].result != MARKER_DONE)
            continue;
        events[m] = json_loadb(items[i].outcome, items[i].outcome_len, 0, NULL);
        const char *state =
            json_string_value(json_object_get(events[m], "state"));
        ups[m] = (struct marker_update_item){
            .recipient = items[i].recipient,
            .op = MARKER_OP_KEEP,
            .state =
                state != NULL && marker_state_rank(state) > 0 ? state : NULL,
        };
        m++;
    }
    if (marker_update(t->w->marker, job->account, job->id, ups, m, errstr,
                      sizeof(errstr)) != 0) {
        task_redis_down(t, "re-emit", errstr);
        goto out;
    }
    for (size_t i = 0, j = 0; i < n; i++) {
        if (items[i].result != MARKER_DONE)
            continue;
        if (ups[j].advanced || ups[j].repeated) {
            task_produce(t, KAFKA_STATUS, job->id, items[i].outcome,
                         items[i].outcome_len, NULL);
            items[i].outcome = NULL; /* Freed by task_produce. */
        }
        j++;
    }
    ret = 0;

out:
    for (size_t i = 0; i < m; i++)
        json_decref(events[i]);
    free(events);
    free(ups);
    return ret;
}

/* STAGE_MARK: takes the send-once markers. Recipients already handled
 * re-emit their recorded event; the rest stay in job->to to be sent. */
static void task_mark(struct task *t)
{
    struct job *job = t->job;
    bool job_level = job->nto == 0 || !task_is_bulk(job);
    size_t n = job_level ? 1 : job->nto;
    struct marker_begin_item *items = xcalloc(n, sizeof(*items));
    char errstr[256];
    bool busy = false;
    bool job_level_new = false;
    size_t ndone = 0;

    for (size_t i = 0; i < n; i++)
        items[i].recipient = job_level ? TASK_JOB_LEVEL : job->to[i];
    const char *campaign = job->type == JOB_CAMPAIGN ? job->id : NULL;
    if (marker_begin(t->w->marker, job->account, job->id, campaign, items, n,
                     TASK_STALE_MS, errstr, sizeof(errstr)) != 0) {
        task_redis_down(t, "mark", errstr);
        free(items);
        task_park(t, TASK_REDIS_RETRY_MS);
        return;
    }
    t->w->redis_ok = true;

    size_t keep = 0;
    struct task_outcome *outs = xcalloc(n, sizeof(*outs));
    size_t nouts = 0;
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
             * Sending again could send twice, so it is unknown. */
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
        }
        if (job_level)
            continue;
        if (send) {
            char *tmp = job->to[keep];
            job->to[keep++] = job->to[i];
            job->to[i] = tmp;
        }
    }
    if (ndone > 0 && task_reemit(t, items, n) != 0) {
        marker_begin_cleanup(items, n);
        free(items);
        free(outs);
        task_park(t, TASK_REDIS_RETRY_MS);
        return;
    }
    marker_begin_cleanup(items, n);
    free(items);
    if (nouts > 0 && task_record(t, outs, nouts) != 0) {
        /* Redis failed after marking: let the markers age into stale
         * rather than guess; try the whole stage again. */
        free(outs);
        task_park(t, TASK_REDIS_RETRY_MS);
        return;
    }
    free(outs);
    if (busy) {
        /* Another replica holds some recipients: give back the ones this
         * call marked, and look again later. */
        if (!job_level && keep > 0)
            task_unmark(t, job->to, keep);
        task_park(t, TASK_BUSY_RETRY_MS);
        return;
    }
    if (job_level) {
        if (!job_level_new) {
            task_end(t);
            return;
        }
    } else {
        /* Only the sendable recipients stay (the numbers live in one block
         * the job owns: entries are reordered, never freed). */
        job->nto = keep;
        if (keep == 0) {
            task_end(t);
            return;
        }
    }
    t->stage = STAGE_CALLS;
    task_next(t);
}

/* STAGE_CANCEL: a campaign cancel removes every part of the campaign still
 * waiting in Redis and marks the campaign cancelled, so no replica sends a
 * part after this (marker_begin refuses them). */
static void task_cancel(struct task *t)
{
    const struct job *job = t->job;
    size_t removed;
    char errstr[256];

    if (sched_cancel(&removed, t->w->sched, job->account, job->campaign_id,
                     true, errstr, sizeof(errstr)) != 0) {
        task_redis_down(t, "cancel", errstr);
        task_park(t, TASK_REDIS_RETRY_MS);
        return;
    }
    log_info("task: job %s cancelled campaign %s: %zu waiting parts removed",
             job->id, job->campaign_id, removed);
    t->stage = STAGE_MARK;
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
 * -1 when Redis failed (the caller parks and repeats). */
static int task_retry_later(struct task *t, const struct codec_call *call,
                            const struct call_result *res)
{
    const struct job *job = t->job;
    bool bulk = task_is_bulk(job);
    char **to = bulk ? &job->to[call->first] : NULL;
    size_t n = bulk ? call->count : 1;
    bool stored;

    /* The provider asked us to slow down: the whole fleet does. */
    char errstr[256];
    if (res->retry_after_ms > 0 &&
        ratelimit_penalize(t->w->ratelimit, job->account, res->retry_after_ms,
                           errstr, sizeof(errstr)) != 0)
        log_warn("redis: penalize %s: %s", job->account, errstr);
    if (task_store_retry(t, to, n, res->retry_after_ms, &stored) != 0)
        return -1;
    struct task_outcome *outs = xcalloc(n, sizeof(*outs));
    for (size_t i = 0; i < n; i++)
        outs[i] = (struct task_outcome){
            .recipient = bulk ? to[i] : TASK_JOB_LEVEL,
            .state = stored ? STATE_RETRYING : STATE_FAILED,
            .op = stored ? MARKER_OP_CLEAR : MARKER_OP_DONE,
            .provider_status = res->provider_status,
            .error_code = stored ? res->error_code : "retry_horizon",
            .error_message = res->error_message,
        };
    int r = task_record(t, outs, n);
    free(outs);
    return r;
}

/* Records and emits what a call's result means and decides what comes
 * next. */
static void task_result(struct task *t, const struct codec_call *call,
                        struct call_result *res)
{
    const struct job *job = t->job;
    bool bulk = task_is_bulk(job);

    if (res->outcome == CALL_RETRY) {
        if (task_retry_later(t, call, res) != 0) {
            /* Redis is away: keep the answer's meaning by trying again. */
            task_park(t, TASK_REDIS_RETRY_MS);
            return;
        }
        if (!bulk) {
            task_end(t);
            return;
        }
    } else if (bulk) {
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
            }
        }
        int r = task_record(t, outs, call->count);
        /* A polling provider's messages are asked after until final (a
         * campaign's id is not a message id: its parts are not polled). */
        if (r == 0 && poll_wanted(t->acct->codec) && call->op == OP_SEND)
            for (size_t i = 0; i < call->count; i++)
                if (outs[i].state == STATE_SUBMITTED)
                    poll_track(t->w, t->acct, outs[i].provider_id, job->id,
                               outs[i].recipient);
        free(outs);
        if (r != 0) {
            task_park(t, TASK_REDIS_RETRY_MS);
            return;
        }
    } else if (res->outcome != CALL_ACCEPTED ||
               t->next_call + 1 == t->calls.ncalls) {
        /* A job-level action: a failure ends it; the last step's success
         * ends it in its done state. */
        struct task_outcome o = {
            .recipient = TASK_JOB_LEVEL,
            .state = res->outcome == CALL_ACCEPTED
                         ? task_done_state(job)
                         : task_outcome_state(res->outcome),
            .op = MARKER_OP_DONE,
            .provider_id = res->provider_id,
            .provider_status = res->provider_status,
            .error_code =
                res->outcome == CALL_ACCEPTED ? NULL : res->error_code,
            .error_message =
                res->outcome == CALL_ACCEPTED ? NULL : res->error_message,
        };
        if (task_record(t, &o, 1) != 0) {
            task_park(t, TASK_REDIS_RETRY_MS);
            return;
        }
        if (res->outcome != CALL_ACCEPTED) {
            task_end(t);
            return;
        }
    }
    t->next_call++;
    task_next(t);
}

static void task_http_done(const struct http_response *resp, const char *error,
                           bool maybe_sent, void *opaque)
{
    struct task *t = opaque;
    const struct codec_call *call = &t->calls.calls[t->next_call];
    struct call_result res = {0};
    char errstr[256];

    t->in_call = false;
    log_debug("task: job %s call %zu answered HTTP %ld", t->job->id,
              t->next_call, resp->status);
    if (error != NULL) {
        log_warn("task: %s request for job %s: %s", t->acct->codec->name,
                 t->job->id, error);
        if (maybe_sent && task_is_bulk(t->job)) {
            /* The provider may have the message: sending again could send
             * it twice, so its state is unknown (CONTRACT §6). */
            call_result_set_error(&res, CALL_FAILED, "no_answer", "%s", error);
            struct task_outcome *outs = xcalloc(call->count, sizeof(*outs));
            for (size_t i = 0; i < call->count; i++)
                outs[i] = (struct task_outcome){
                    .recipient = t->job->to[call->first + i],
                    .state = STATE_UNKNOWN,
                    .op = MARKER_OP_DONE,
                    .error_code = "no_answer",
                    .error_message = error,
                };
            int r = task_record(t, outs, call->count);
            free(outs);
            if (r != 0)
                log_error("task: job %s: outcome not recorded", t->job->id);
            t->next_call++;
            task_next(t);
            return;
        }
        call_result_set_error(&res, CALL_RETRY, "no_answer", "%s", error);
    } else if (t->acct->codec->decode(&res, t->acct, t->job, call, resp, errstr,
                                      sizeof(errstr)) != 0) {
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
    task_result(t, call, &res);
    call_result_cleanup(&res);
}

/* Encodes the next chunk of recipients (or the whole job when it has none)
 * into t->calls. Returns 0, -1 on a codec error (the task then ended), or
 * 1 when nothing is left. */
static int task_encode(struct task *t)
{
    const struct job *job = t->job;
    const struct codec *codec = t->acct->codec;
    char errstr[256];

    codec_calls_cleanup(&t->calls);
    t->next_call = 0;
    size_t first = t->next_recipient;
    size_t count = 0;
    if (task_is_bulk(job)) {
        if (first >= job->nto)
            return 1;
        size_t per_call = job->type == JOB_SEND
                              ? codec->send_max_recipients
                              : codec->campaign_max_recipients;
        if (per_call == 0)
            per_call = 1;
        count = per_call * (CODEC_MAX_CALLS / 2);
        if (count > job->nto - first)
            count = job->nto - first;
    } else if (t->next_recipient > 0) {
        return 1;
    }
    if (codec->encode(&t->calls, t->acct, job, first, count,
                      (int64_t)time(NULL), errstr, sizeof(errstr)) != 0) {
        struct task_outcome o = {
            .recipient = TASK_JOB_LEVEL,
            .state = STATE_REJECTED,
            .op = MARKER_OP_DONE,
            .error_code = "invalid_job",
            .error_message = errstr,
        };
        log_warn("task: job %s: %s", job->id, errstr);
        if (task_record(t, &o, 1) != 0)
            log_error("task: job %s: outcome not recorded", job->id);
        task_end(t);
        return -1;
    }
    t->next_recipient = count > 0 ? first + count : 1;
    return 0;
}

/* STAGE_TOKENS: charges the account's bucket for every recipient, in
 * bucket-sized takes, parking until the tokens are there. */
static void task_tokens(struct task *t)
{
    const struct job *job = t->job;
    struct ratelimit_bucket b = {
        .account = job->account,
        .per_second = t->acct->per_second,
        .burst = t->acct->burst,
    };
    char errstr[256];

    if (t->charge_left == 0) {
        unsigned segments = job->text != NULL ? job->text_info.segments : 1;
        t->charge_left = (int64_t)segments * (int64_t)job->nto;
    }
    int64_t most = (int64_t)t->acct->burst;
    while (t->charge_left > 0) {
        int64_t take = t->charge_left < most ? t->charge_left : most;
        int64_t wait_ms;
        if (ratelimit_take(t->w->ratelimit, &wait_ms, &b, (unsigned)take,
                           errstr, sizeof(errstr)) != 0) {
            task_redis_down(t, "rate limit", errstr);
            task_park(t, TASK_REDIS_RETRY_MS);
            return;
        }
        t->w->redis_ok = true;
        if (wait_ms > 0) {
            task_park(t, wait_ms);
            return;
        }
        t->charge_left -= take;
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
        task_park(next, 0);
    }
}

/* Makes the next call, encoding the next chunk when the current one is
 * done, and ends the task when nothing is left. */
static void task_next(struct task *t)
{
    char errstr[256];

    if (t->stage == STAGE_SCHEDULE) {
        task_schedule(t);
        return;
    }
    if (t->stage == STAGE_CANCEL) {
        task_cancel(t);
        return;
    }
    if (t->stage == STAGE_TOKENS) {
        task_tokens(t);
        return;
    }
    if (t->stage == STAGE_MARK) {
        if (task_take_slot(t))
            task_mark(t);
        return;
    }
    if (t->next_call >= t->calls.ncalls) {
        int r = task_encode(t);
        if (r < 0)
            return;
        if (r > 0) {
            task_end(t);
            return;
        }
        if (t->calls.ncalls == 0) {
            /* Nothing to ask the provider (a campaign cancel whose parts
             * were all still here): the job is done as it stands. */
            struct task_outcome o = {
                .recipient = TASK_JOB_LEVEL,
                .state = task_done_state(t->job),
                .op = MARKER_OP_DONE,
            };
            if (task_record(t, &o, 1) != 0) {
                task_park(t, TASK_REDIS_RETRY_MS);
                return;
            }
            task_end(t);
            return;
        }
    }
    if (worker_stop) {
        /* Shutting down: what is not sent yet waits for the next owner. */
        task_abandon(t);
        return;
    }
    const struct codec_call *call = &t->calls.calls[t->next_call];
    if (http_submit(t->w->http, &call->req, task_http_done, t, errstr,
                    sizeof(errstr)) != 0) {
        log_error("task: %s", errstr);
        task_abandon(t);
        return;
    }
    t->in_call = true;
    if (task_is_bulk(t->job))
        t->sent_upto = call->first + call->count;
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
    t->attempt = 1;
    t->next = w->all;
    if (t->next != NULL)
        t->next->prev = t;
    w->all = t;
    w->tasks++;
    return t;
}

/* Checks the parsed job against its account and provider, then decides the
 * first stage. */
static void task_prepare(struct task *t, bool from_kafka)
{
    struct job *job = t->job;
    char errstr[512];

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
    if (t->acct->codec->check != NULL &&
        t->acct->codec->check(t->acct, job, errstr, sizeof(errstr)) != 0) {
        task_reject(t, job->id, errstr);
        return;
    }
    if (t->first_ms == 0)
        t->first_ms = worker_wall_ms();
    /* A send due later than now waits in Redis. */
    bool later = job->send_at_ms > worker_wall_ms() &&
                 (job->type == JOB_SEND ||
                  (job->type == JOB_CAMPAIGN && job->action == ACTION_CREATE));
    t->stage = from_kafka && later ? STAGE_SCHEDULE
               : task_is_bulk(job) ? STAGE_TOKENS
                                   : STAGE_MARK;
    if (job->type == JOB_CAMPAIGN && job->action == ACTION_CANCEL)
        t->stage = STAGE_CANCEL;
    task_next(t);
}

void task_start(struct worker *w, rd_kafka_message_t *rkm)
{
    struct task *t = task_new(w);
    char id[128];
    char errstr[512];

    t->rkm = rkm;
    w->stats.jobs++;
    enum job_type type = task_topic_type(w->cfg, rd_kafka_topic_name(rkm->rkt));
    if (job_parse(&t->job, rkm->payload, rkm->len, type, id, sizeof(id), errstr,
                  sizeof(errstr)) != 0) {
        task_reject(t, id, errstr);
        return;
    }
    log_debug("task: job %s topic=%s partition=%d offset=%lld", t->job->id,
              rd_kafka_topic_name(rkm->rkt), rkm->partition,
              (long long)rkm->offset);
    task_prepare(t, true);
}

void task_start_entry(struct worker *w, const char *account,
                      struct sched_entry *entry)
{
    struct task *t = task_new(w);
    char id[128];
    char errstr[512];

    t->entry = *entry;
    memset(entry, 0, sizeof(*entry)); /* Now owned by the task. */
    t->entry_account = accounts_find(w->accounts, account)->name;
    json_t *root = json_loadb(t->entry.payload, t->entry.payload_len, 0, NULL);
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
    int r = jbytes == NULL ? -1
                           : job_parse(&t->job, jbytes, strlen(jbytes), jt, id,
                                       sizeof(id), errstr, sizeof(errstr));
    free(jbytes);
    json_decref(root);
    if (r != 0) {
        if (jbytes == NULL) {
            snprintf(errstr, sizeof(errstr), "unreadable stored entry");
            id[0] = '\0';
        }
        task_reject(t, id, errstr);
        return;
    }
    log_debug("task: job %s from redis entry %s attempt %d", t->job->id,
              t->entry.id, t->attempt);
    task_prepare(t, false);
}
