/* worker/task.c - one job, from Kafka poll to stored offset. */
#include "worker/task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codecs/job.h"
#include "worker/events.h"
#include "worker/log.h"
#include "worker/xalloc.h"

struct task {
    struct worker *w;
    rd_kafka_message_t *rkm;     /* owned: the job's bytes and coordinates */
    struct job *job;             /* owned; NULL when it did not parse */
    const struct account *acct;  /* borrowed from w->accounts */
    struct codec_calls calls;    /* the calls of the current chunk */
    size_t next_call;            /* index into calls of the next call */
    size_t next_recipient;       /* first recipient not yet encoded */
    int attempt;                 /* of the current call, from 1 */
    int64_t first_try_ms;        /* when the current call was first made */
    int pending_events;          /* produced, not yet acknowledged */
    bool ended;                  /* no more events will be produced */
    bool abandoned;              /* shutdown: leave the offset unstored */
    int64_t wake_ms;             /* parked: when to resume */
    struct task *next_parked;
    struct task *prev, *next;    /* w->all: every live task */
};

static void task_next(struct task *t);

/* ------------------------------------------------------------------------ */
/* Ending. */

static void task_free(struct task *t)
{
    struct worker *w = t->w;

    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        w->all = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    codec_calls_cleanup(&t->calls);
    job_free(t->job);
    rd_kafka_message_destroy(t->rkm);
    free(t);
    w->tasks--;
}

static void task_release(struct task *t)
{
    if (!t->abandoned)
        kafka_done(t->w->kafka, rd_kafka_topic_name(t->rkm->rkt),
                   t->rkm->partition, t->rkm->offset);
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

void task_abandon(struct task *t)
{
    t->abandoned = true;
    task_end(t);
}

void task_abandon_parked(struct worker *w)
{
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
         * offset then stays unstored and it is redelivered. */
        log_error("task: %s topic=%s partition=%d offset=%lld", errstr,
                  rd_kafka_topic_name(t->rkm->rkt), t->rkm->partition,
                  (long long)t->rkm->offset);
        t->abandoned = true;
    } else {
        t->pending_events++;
        t->w->stats.events++;
    }
    free(value);
}

static void task_status(struct task *t, const char *job_id,
                        const char *recipient, enum sms_state state,
                        const char *provider_id, const char *provider_status,
                        const char *error_code, const char *error_message)
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
    size_t len;
    char *value = event_status_json(&ev, &len);

    task_produce(t, KAFKA_STATUS, job_id, value, len, NULL);
}

/* Sends the job's bytes to the DLQ with one error line, and a rejected
 * event when it had a readable id. */
static void task_reject(struct task *t, const char *id, const char *error)
{
    rd_kafka_message_t *rkm = t->rkm;
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(4);
    char num[32];

    log_warn("task: rejected topic=%s partition=%d offset=%lld id=%s: %s",
             rd_kafka_topic_name(rkm->rkt), rkm->partition,
             (long long)rkm->offset, id[0] ? id : "-", error);
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
        task_status(t, id, NULL, STATE_REJECTED, NULL, NULL, "invalid_job",
                    error);
    task_end(t);
}

/* ------------------------------------------------------------------------ */
/* Calls. */

static void task_park(struct task *t, int64_t wake_ms)
{
    struct task **pp = &t->w->parked;

    t->wake_ms = wake_ms;
    while (*pp != NULL && (*pp)->wake_ms <= wake_ms)
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

/* Backoff for the n-th retry (n from 1): 1 s doubling to 5 min, with up to
 * a quarter of jitter so that retries of many jobs spread out. */
static int64_t task_backoff_ms(int n, int hint_ms)
{
    int64_t ms = 1000;

    for (int i = 1; i < n && ms < 300000; i++)
        ms *= 2;
    if (ms > 300000)
        ms = 300000;
    ms += rand() % (ms / 4 + 1);
    return hint_ms > ms ? hint_ms : ms;
}

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

/* The state a non-send job ends in when its calls succeeded. */
static enum sms_state task_done_state(const struct job *job)
{
    if (job->type == JOB_CAMPAIGN && job->action == ACTION_CANCEL)
        return STATE_CANCELLED;
    return STATE_DELIVERED;
}

/* Emits what a call's result means and decides what comes next. */
static void task_result(struct task *t, const struct codec_call *call,
                        struct call_result *res)
{
    const struct job *job = t->job;

    if (res->outcome == CALL_RETRY) {
        int64_t now = worker_now_ms();
        int64_t horizon = t->w->cfg->retry_horizon_s * 1000;
        int64_t wait = task_backoff_ms(t->attempt, res->retry_after_ms);
        bool give_up = now + wait - t->first_try_ms > horizon;
        for (size_t i = 0; i < call->count; i++)
            task_status(t, job->id, job->to[call->first + i],
                        give_up ? STATE_FAILED : STATE_RETRYING, NULL,
                        res->provider_status,
                        give_up ? "retry_horizon" : res->error_code,
                        res->error_message);
        if (call->count == 0)
            task_status(t, job->id, NULL,
                        give_up ? STATE_FAILED : STATE_RETRYING, NULL,
                        res->provider_status,
                        give_up ? "retry_horizon" : res->error_code,
                        res->error_message);
        if (give_up) {
            t->next_call++;
            t->attempt = 0;
            if (call->op == OP_SEND)
                task_next(t);
            else
                task_end(t);
            return;
        }
        t->attempt++;
        task_park(t, now + wait);
        return;
    }

    if (call->op == OP_SEND || call->op == OP_CAMPAIGN_CREATE) {
        for (size_t i = 0; i < call->count; i++) {
            const struct recipient_result *r =
                i < res->nrecipients ? &res->recipients[i] : NULL;
            enum call_outcome outcome = r ? r->outcome : res->outcome;
            enum sms_state state = task_outcome_state(outcome);
            const char *pid = r && r->provider_id[0] ? r->provider_id
                                                     : res->provider_id;
            const char *pstatus = r && r->provider_status[0]
                                      ? r->provider_status
                                      : res->provider_status;
            const char *code = r && r->error_code[0] ? r->error_code
                                                     : res->error_code;
            const char *msg = r && r->error_message[0] ? r->error_message
                                                       : res->error_message;
            if (state == STATE_SUBMITTED) {
                code = NULL;
                msg = NULL;
                t->w->stats.submitted++;
            } else {
                t->w->stats.failed++;
            }
            task_status(t, job->id, job->to[call->first + i], state, pid,
                        pstatus, code, msg);
        }
        t->next_call++;
        t->attempt = 0;
        task_next(t);
        return;
    }

    /* A step of a campaign cancel or contact-sync action: a failure ends
     * the job; success goes on to the next step, and the last one ends it
     * in its done state. */
    if (res->outcome != CALL_ACCEPTED) {
        task_status(t, job->id, NULL, task_outcome_state(res->outcome),
                    res->provider_id, res->provider_status, res->error_code,
                    res->error_message);
        task_end(t);
        return;
    }
    t->next_call++;
    t->attempt = 0;
    if (t->next_call < t->calls.ncalls) {
        task_next(t);
        return;
    }
    task_status(t, job->id, NULL, task_done_state(job), res->provider_id,
                res->provider_status, NULL, NULL);
    task_end(t);
}

static void task_http_done(const struct http_response *resp,
                           const char *error, bool maybe_sent, void *opaque)
{
    struct task *t = opaque;
    const struct codec_call *call = &t->calls.calls[t->next_call];
    struct call_result res = {0};
    char errstr[256];

    if (error != NULL) {
        log_warn("task: %s request for job %s: %s", t->acct->codec->name,
                 t->job->id, error);
        if (maybe_sent && call->op == OP_SEND) {
            /* The provider may have the message: sending again could send
             * it twice, so its state is unknown (CONTRACT §6). */
            for (size_t i = 0; i < call->count; i++)
                task_status(t, t->job->id, t->job->to[call->first + i],
                            STATE_UNKNOWN, NULL, NULL, "no_answer", error);
            t->next_call++;
            t->attempt = 0;
            task_next(t);
            return;
        }
        call_result_set_error(&res, CALL_RETRY, "no_answer", "%s", error);
    } else if (t->acct->codec->decode(&res, t->acct, t->job, call, resp,
                                      errstr, sizeof(errstr)) != 0) {
        log_warn("task: %s answer for job %s (HTTP %ld): %s",
                 t->acct->codec->name, t->job->id, resp->status, errstr);
        call_result_cleanup(&res);
        call_result_set_error(&res,
                              resp->status >= 200 && resp->status < 300
                                  ? CALL_FAILED
                                  : CALL_RETRY,
                              "bad_answer", "%s", errstr);
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
    if (job->nto > 0 &&
        (job->type == JOB_SEND ||
         (job->type == JOB_CAMPAIGN && job->action == ACTION_CREATE))) {
        if (first >= job->nto)
            return 1;
        size_t per_call = job->type == JOB_SEND ? codec->send_max_recipients
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
        task_reject(t, job->id, errstr);
        return -1;
    }
    t->next_recipient = count > 0 ? first + count : 1;
    return 0;
}

/* Makes the next call, encoding the next chunk when the current one is
 * done, and ends the task when nothing is left. */
static void task_next(struct task *t)
{
    char errstr[256];

    if (t->next_call >= t->calls.ncalls) {
        int r = task_encode(t);
        if (r < 0)
            return;
        if (r > 0 || t->calls.ncalls == 0) {
            task_end(t);
            return;
        }
    }
    if (worker_stop && t->attempt > 1) {
        /* Shutting down: a retry waits for the next owner. */
        task_abandon(t);
        return;
    }
    const struct codec_call *call = &t->calls.calls[t->next_call];
    if (t->attempt == 0) {
        t->attempt = 1;
        t->first_try_ms = worker_now_ms();
    }
    if (http_submit(t->w->http, &call->req, task_http_done, t, errstr,
                    sizeof(errstr)) != 0) {
        log_error("task: %s", errstr);
        task_abandon(t);
        return;
    }
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

void task_start(struct worker *w, rd_kafka_message_t *rkm)
{
    struct task *t = xcalloc(1, sizeof(*t));
    char id[128];
    char errstr[512];

    t->w = w;
    t->rkm = rkm;
    t->next = w->all;
    if (t->next != NULL)
        t->next->prev = t;
    w->all = t;
    w->tasks++;
    w->stats.jobs++;
    enum job_type type =
        task_topic_type(w->cfg, rd_kafka_topic_name(rkm->rkt));
    if (job_parse(&t->job, rkm->payload, rkm->len, type, id, sizeof(id),
                  errstr, sizeof(errstr)) != 0) {
        task_reject(t, id, errstr);
        return;
    }
    t->acct = accounts_find(w->accounts, t->job->account);
    if (t->acct == NULL) {
        snprintf(errstr, sizeof(errstr), "unknown account \"%s\"",
                 t->job->account);
        task_reject(t, t->job->id, errstr);
        return;
    }
    if (t->acct->codec->encode == NULL) {
        snprintf(errstr, sizeof(errstr), "provider %s is not supported yet",
                 t->acct->codec->name);
        task_reject(t, t->job->id, errstr);
        return;
    }
    if (t->acct->codec->check != NULL &&
        t->acct->codec->check(t->acct, t->job, errstr, sizeof(errstr)) != 0) {
        task_reject(t, t->job->id, errstr);
        return;
    }
    log_debug("task: job %s topic=%s partition=%d offset=%lld", t->job->id,
              rd_kafka_topic_name(rkm->rkt), rkm->partition,
              (long long)rkm->offset);
    task_next(t);
}
