/* worker/hooks.c - provider callbacks, read on the loop thread. */
#include "worker/hooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/events.h"
#include "worker/log.h"
#include "worker/outcome.h"
#include "worker/reads.h"
#include "worker/poll.h"
#include "worker/xalloc.h"

/* Answers a callback, counting the answer by class for /metrics. */
static void hook_reply(struct worker *w, struct hook *h, int status,
                       const char *body, const char *type)
{
    metrics_count(&w->metrics, M_WEBHOOK_REQUESTS,
                  ML(metrics_http_class(status)), 1);
    hook_answer(w->listener, h, status, body, type);
}

/* Finishes a callback once its events are in (or at once without any). */
static void hook_finish(struct worker *w, struct hook *h)
{
    if (h->failed)
        hook_reply(w, h, 503, "try again later\n", "text/plain");
    else
        hook_reply(w, h, h->answer_status, h->answer_body, h->answer_type);
}

void hook_event_delivered(struct worker *w, struct hook *h,
                          rd_kafka_resp_err_t err)
{
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        h->failed = true;
    if (--h->pending_events == 0 && h->pending_records == 0)
        hook_finish(w, h);
}

static void hook_produce(struct worker *w, struct hook *h,
                         enum kafka_topic topic, const char *key, char *value,
                         size_t len)
{
    char errstr[256];

    if (kafka_produce(w->kafka, topic, key, key ? strlen(key) : 0, value, len,
                      NULL, h, errstr, sizeof(errstr)) != 0) {
        log_error("hooks: %s", errstr);
        h->failed = true;
    } else {
        h->pending_events++;
        w->stats.events++;
    }
    free(value);
}

/* Finds the job and recipient a status update is about: InTime echoes the
 * transid "<job>:<msisdn>" kurir gave it, iP.1 the reference (the job id)
 * and the recipient. */
static void hook_resolve(const struct status_update *u, char *job,
                         size_t job_size, char *recipient,
                         size_t recipient_size)
{
    snprintf(job, job_size, "%s", u->transid);
    snprintf(recipient, recipient_size, "%s", u->recipient);
    char *colon = strrchr(job, ':');
    if (colon != NULL &&
        (recipient[0] == '\0' || strcmp(colon + 1, recipient) == 0)) {
        snprintf(recipient, recipient_size, "%s", colon + 1);
        *colon = '\0';
    }
}

/* How long a status update that came before the state it follows was on
 * Kafka waits before its job is looked up and it is recorded again. */
#define HOOK_EARLY_RETRY_MS 250
/* ... and for how long in all: then it is recorded as it is (a job Redis
 * knows nothing of, a replica holding its `submitted` longer), a second
 * before the listener would give up on the callback. */
#define HOOK_EARLY_MAX_MS (LISTENER_HOOK_WAIT_MS - 1000)

/* One status update's recording, owned by its hook until recorded. */
struct hook_record {
    enum event_owner owner; /* OWNER_HOOK_RECORD (parked); must stay first */
    struct outcome o;
    struct hook *h;
    struct worker *w;
    struct status_update u;
    char ref[CODEC_ID_MAX]; /* the job's reference as the provider echoed it */
    struct poll_ref job;    /* what it stands for (worker/poll.h) */
    char recipient[32];
    bool ungated; /* waited HOOK_EARLY_MAX_MS: recorded as it is */
};

static void hook_recorded(struct outcome *o, const char *err)
{
    struct hook_record *r =
        (struct hook_record *)((char *)o - offsetof(struct hook_record, o));
    struct hook *h = r->h;
    struct worker *w = o->w;

    if (w->closing) {
        /* The listener answers every waiting callback itself. */
        outcome_cleanup(o);
        free(r);
        return;
    }
    if (err == NULL && o->early > 0) {
        /* The `submitted` this report follows is not on Kafka yet (its
         * replica holds it: a broker away, the batch lingering), or not
         * even recorded: it would overtake it. The callback is held, and
         * its job looked up and recorded again shortly (the reference of
         * a long iP.1 id is kept with the tracking, once Kafka has the
         * `submitted`). */
        r->ungated = worker_now_ms() - h->handed_ms >= HOOK_EARLY_MAX_MS;
        if (r->ungated)
            log_warn("hooks: %s status for job %s recipient %s: its "
                     "`submitted` is not on Kafka after %d ms; recorded "
                     "as it is",
                     h->acct->name, r->job.job, r->recipient,
                     HOOK_EARLY_MAX_MS);
        outcome_cleanup(o);
        park_at(&w->parking, r,
                worker_now_ms() + (r->ungated ? 0 : HOOK_EARLY_RETRY_MS));
        return;
    }
    if (err != NULL) {
        /* Not kept: the provider gets an error and sends it again. */
        log_warn("hooks: redis: %s", err);
        h->failed = true;
    } else if (sms_state_is_final(r->u.state)) {
        /* Final: the give-up need not wait for it any more. */
        poll_awaited_done(w, h->acct, r->job.job, r->recipient, r->job.type);
    }
    if (o->produce_failed)
        h->failed = true;
    h->pending_events += (int)o->produced;
    h->pending_records--;
    outcome_cleanup(o);
    free(r);
    if (h->pending_records == 0 && h->pending_events == 0)
        hook_finish(w, h);
}

static void hook_ref_found(const redisReply *reply, const char *err,
                           void *privdata);

void hook_record_resume(struct worker *w, void *parked)
{
    struct hook_record *r = parked;
    poll_ref_lookup(w, r->h->acct, r->ref, hook_ref_found, r);
}

void hook_record_abandon(void *parked)
{
    struct hook_record *r = parked;
    /* The listener answers every waiting callback itself. */
    outcome_cleanup(&r->o);
    free(r);
}

/* The status event of one update. */
static char *hook_event(const struct account *acct,
                        const struct status_update *u, const char *job,
                        const char *type, const char *recipient, size_t *len)
{
    struct status_event ev = {
        .job_id = job,
        .type = type,
        .account = acct->name,
        .provider = acct->codec->name,
        .recipient = recipient,
        .state = u->state,
        .provider_message_id = u->provider_id,
        .provider_status = u->provider_status,
        .error_code = u->error_code,
        .error_message = u->error_message,
    };

    return event_status_json(&ev, len);
}

/* Records and emits one status update whose job is known (r->job). */
static void hook_status_record(struct worker *w, struct hook_record *r)
{
    struct hook *h = r->h;
    const struct account *acct = h->acct;
    const struct status_update *u = &r->u;
    size_t len;
    char *value =
        hook_event(acct, u, r->job.job, r->job.type, r->recipient, &len);

    r->owner = OWNER_HOOK_RECORD;
    r->o = (struct outcome){
        .account = acct->name,
        .job_id = r->job.job,
        .type = r->job.type,
        .items = xcalloc(1, sizeof(*r->o.items)),
        .n = 1,
        .want_echo = true,
        .owner = h,
        .done = hook_recorded,
    };
    r->o.items[0] = (struct outcome_item){
        .recipient = r->recipient,
        .op = r->ungated ? MARKER_OP_KEEP : MARKER_OP_GATED,
        .state = sms_state_name(u->state),
        .event = value,
        .event_len = len,
        .emit_repeated = true,
    };
    outcome_record(w, &r->o);
}

/* The reference's job is looked up (or Redis could not say). */
static void hook_ref_found(const redisReply *reply, const char *err,
                           void *privdata)
{
    struct hook_record *r = privdata;
    struct hook *h = r->h;
    struct worker *w = r->w;

    if (w->closing) {
        free(r);
        return;
    }
    if (err != NULL) {
        /* Not known now: the provider gets an error and sends it again. */
        log_warn("hooks: redis: %s", err);
        h->failed = true;
        h->pending_records--;
        free(r);
        if (h->pending_records == 0 && h->pending_events == 0)
            hook_finish(w, h);
        return;
    }
    poll_ref_read(&r->job, r->ref, reply);
    hook_status_record(w, r);
}

/* Emits one status update if it moves its recipient's state forward (or
 * repeats it: the first copy's event may have been lost with a replica
 * that died before Kafka had it, and the provider retries because it got
 * no answer; consumers see at least once). Anything else is late news of
 * a later state: dropped. The job comes from the reference the provider
 * echoed, through what kurir kept under it (iP.1's hashed reference of a
 * long job id; the job's type). */
static void hook_status(struct worker *w, struct hook *h,
                        const struct status_update *u)
{
    const struct account *acct = h->acct;
    struct hook_record *r = xcalloc(1, sizeof(*r));

    hook_resolve(u, r->ref, sizeof(r->ref), r->recipient, sizeof(r->recipient));
    if (r->ref[0] == '\0' || r->recipient[0] == '\0') {
        size_t len;
        char *value = hook_event(acct, u, r->ref, "send", r->recipient, &len);
        log_warn("hooks: %s status for message %s names no kurir job",
                 acct->name, u->provider_id);
        hook_produce(w, h, KAFKA_STATUS, u->provider_id, value, len);
        free(r);
        return;
    }
    r->h = h;
    r->w = w;
    r->u = *u;
    h->pending_records++;
    poll_ref_lookup(w, acct, r->ref, hook_ref_found, r);
}

static void hook_serve_one(struct worker *w, struct hook *h)
{
    const struct codec *codec = h->acct->codec;
    struct callback_result res = {0};
    char errstr[256];

    w->stats.callbacks++;
    if (codec->callback == NULL) {
        hook_reply(w, h, 404, "no callbacks for this provider\n", "text/plain");
        return;
    }
    if (codec->callback(&res, h->acct, h->kind, &h->in, errstr,
                        sizeof(errstr)) != 0) {
        log_warn("hooks: %s callback for %s: %s", codec->name, h->acct->name,
                 errstr);
        hook_reply(w, h, res.answer_status ? res.answer_status : 400,
                   res.answer_body[0] ? res.answer_body : errstr,
                   res.answer_content_type ? res.answer_content_type
                                           : "text/plain");
        callback_result_cleanup(&res);
        return;
    }
    h->answer_status = res.answer_status ? res.answer_status : 200;
    snprintf(h->answer_body, sizeof(h->answer_body), "%s", res.answer_body);
    h->answer_type =
        res.answer_content_type ? res.answer_content_type : "text/plain";
    for (size_t i = 0; i < res.nupdates; i++)
        hook_status(w, h, &res.updates[i]);
    /* Replies: where reply handling (opt-out) hooks in. */
    for (size_t i = 0; i < res.nreplies; i++) {
        size_t len;
        char *value =
            event_reply_json(h->acct->name, codec->name, &res.replies[i], &len);
        hook_produce(w, h, KAFKA_REPLIES, res.replies[i].from, value, len);
        h->failed |= optout_on_reply(w, h, h->acct, &res.replies[i],
                                     &h->pending_events) != 0;
    }
    callback_result_cleanup(&res);
    /* Whatever was produced, the answer waits for Redis and Kafka; a
     * failure answers an error so the provider sends it again. */
    if (h->pending_records == 0 && h->pending_events == 0)
        hook_finish(w, h);
}

void hooks_serve(struct worker *w)
{
    struct hook *h;

    if (w->listener == NULL)
        return;
    while ((h = listener_take(w->listener)) != NULL)
        hook_serve_one(w, h);
}
