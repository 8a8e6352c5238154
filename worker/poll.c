/* worker/poll.c - statuses and replies of providers without webhooks
 * (Jojka), fetched by polling.
 *
 * Statuses: every submitted message of a polling provider is kept in a
 * Redis sorted set per account, scored by when to ask next. Any replica
 * claims due members atomically (the claim moves their score one interval
 * on, so two replicas never ask together), asks the provider, and emits a
 * status event when the recipient's state moves forward; a final state
 * removes the member, and so does silence past POLL_GIVE_UP_MS (operators
 * may take 48 h to report; after three days the state is `unknown`).
 *
 * Replies: one replica per account and interval (a Redis lock) fetches the
 * replies since the last fetch; replies already published (a set of their
 * ids, kept four days: Jojka looks back 96 h at most) are skipped.
 *
 * Runs on the loop thread. */
#include "worker/poll.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codecs/util.h"
#include "worker/events.h"
#include "worker/log.h"
#include "worker/outcome.h"
#include "worker/reads.h"
#include "worker/xalloc.h"

#define POLL_BATCH      64
#define POLL_GIVE_UP_MS (72LL * 3600 * 1000)
#define POLL_SEEN_TTL_S (4 * 24 * 3600)
#define POLL_MEMBER_MAX 256

/* KEYS: the poll set. ARGV: now_ms, max, next_ms. Returns the members due
 * and moves them to next_ms. */
static struct rconn_script claim_script = {
    .src = "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', "
           "ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))\n"
           "for _, m in ipairs(due) do\n"
           "  redis.call('ZADD', KEYS[1], ARGV[3], m)\n"
           "end\n"
           "return due\n",
};

/* One poll request in flight, then its outcome until Kafka has it. */
struct pollreq {
    enum event_owner owner; /* OWNER_POLL; must stay first */
    struct worker *w;
    const struct account *acct;
    struct codec_calls calls;
    char member[POLL_MEMBER_MAX]; /* OP_POLL_STATUS: the set member */
    char pid[CODEC_ID_MAX];       /* parsed from member */
    char job[CODEC_ID_MAX];
    char recipient[24];
    int64_t first_ms;
    int64_t asked_s;    /* OP_POLL_REPLIES: the time asked */
    struct outcome rec; /* OP_POLL_STATUS: the states read */
    bool recording;     /* rec is with Redis or Kafka */
    bool final;         /* a final state: stop asking */
    bool failed;        /* an event was not kept */
    int pending_events;
    struct pollreq *prev, *next; /* w->polls: every request alive */
};

static void poll_produce(struct worker *w, enum kafka_topic topic,
                         const char *key, char *value, size_t len)
{
    char errstr[256];

    /* No owner: nothing waits for the acknowledgement (librdkafka keeps
     * the event until Kafka has it). */
    if (kafka_produce(w->kafka, topic, key, strlen(key), value, len, NULL, NULL,
                      errstr, sizeof(errstr)) != 0)
        log_error("poll: %s", errstr);
    else
        w->stats.events++;
    free(value);
}

static struct pollreq *pollreq_new(struct worker *w, const struct account *acct)
{
    struct pollreq *p = xcalloc(1, sizeof(*p));

    p->owner = OWNER_POLL;
    p->w = w;
    p->acct = acct;
    p->next = w->polls;
    if (p->next != NULL)
        p->next->prev = p;
    w->polls = p;
    return p;
}

static void pollreq_free(struct pollreq *p)
{
    struct worker *w = p->w;

    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        w->polls = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    codec_calls_cleanup(&p->calls);
    outcome_cleanup(&p->rec);
    free(p);
}

void poll_free_all(struct worker *w)
{
    while (w->polls != NULL)
        pollreq_free(w->polls);
}

static void poll_removed(const redisReply *reply, const char *err,
                         void *privdata)
{
    (void)reply;
    (void)privdata;
    if (err != NULL)
        /* The member stays and is asked about again: harmless. */
        log_warn("poll: remove: %s", err);
}

/* Every event of a status poll is on Kafka (or one was refused): a final
 * state stops the asking only now, so a replica that dies before leaves
 * the member to be asked again. */
static void poll_finish(struct pollreq *p)
{
    struct worker *w = p->w;
    char key[RCONN_KEY_MAX];
    char errstr[256];

    if (p->final && !p->failed &&
        rconn_key(key, sizeof(key), w->redis, p->acct->name, "poll", NULL,
                  errstr, sizeof(errstr)) == 0) {
        const char *argv[] = {"ZREM", key, p->member};
        aredis_command(w->aredis, 3, argv, NULL, poll_removed, NULL);
    }
    pollreq_free(p);
}

void poll_event_delivered(struct pollreq *p, rd_kafka_resp_err_t err)
{
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        p->failed = true;
    if (--p->pending_events == 0)
        poll_finish(p);
}

static void poll_recorded(struct outcome *o, const char *err)
{
    struct pollreq *p =
        (struct pollreq *)((char *)o - offsetof(struct pollreq, rec));

    if (p->w->closing)
        return; /* poll_free_all frees it */
    if (err != NULL) {
        /* Asked again next interval: the claim moved its time on. */
        log_warn("poll: redis: %s", err);
        pollreq_free(p);
        return;
    }
    p->failed = o->produce_failed;
    p->pending_events = (int)o->produced;
    if (p->pending_events == 0)
        poll_finish(p);
}

/* The state a poll read, as an outcome item. */
static void poll_item(struct pollreq *p, const struct status_update *u,
                      enum sms_state state, const char *code,
                      const char *message)
{
    struct status_event ev = {
        .job_id = p->job,
        .type = "send",
        .account = p->acct->name,
        .provider = p->acct->codec->name,
        .recipient = p->recipient,
        .state = state,
        .provider_message_id = p->pid,
        .provider_status = u ? u->provider_status : NULL,
        .error_code = code,
        .error_message = message,
    };
    struct outcome_item *it = &p->rec.items[p->rec.n++];

    it->recipient = p->recipient;
    it->op = MARKER_OP_KEEP;
    it->state = sms_state_name(state);
    it->event = event_status_json(&ev, &it->event_len);
}

/* Records what a status poll read; the member goes once a final state is
 * recorded and on Kafka. Returns true when the request lives on. */
static bool poll_status_done(struct worker *w, struct pollreq *p,
                             const struct callback_result *res)
{
    p->rec = (struct outcome){
        .account = p->acct->name,
        .job_id = p->job,
        .items = xcalloc(res->nupdates + 1, sizeof(*p->rec.items)),
        .want_echo = true,
        .owner = p,
        .done = poll_recorded,
    };
    for (size_t i = 0; i < res->nupdates; i++) {
        const struct status_update *u = &res->updates[i];
        poll_item(p, u, u->state, u->error_code[0] ? u->error_code : NULL,
                  u->error_message[0] ? u->error_message : NULL);
        p->final = p->final || sms_state_is_final(u->state);
    }
    if (!p->final && worker_wall_ms() - p->first_ms > POLL_GIVE_UP_MS) {
        poll_item(p, NULL, STATE_UNKNOWN, "no_report",
                  "no delivery report within three days");
        p->final = true;
    }
    if (p->rec.n == 0)
        return false;
    p->recording = true;
    outcome_record(w, &p->rec);
    return true;
}

/* Publishes replies not seen before and remembers where to start next. */
static void poll_replies_done(struct worker *w, struct pollreq *p,
                              const struct callback_result *res)
{
    char key[RCONN_KEY_MAX], since_key[RCONN_KEY_MAX], ttl[24], since[24];
    char errstr[256];
    redisReply *reply = NULL;

    if (rconn_key(key, sizeof(key), w->redis, p->acct->name, "replies-seen",
                  NULL, errstr, sizeof(errstr)) != 0 ||
        rconn_key(since_key, sizeof(since_key), w->redis, p->acct->name,
                  "replies-since", NULL, errstr, sizeof(errstr)) != 0)
        return;
    rconn_i64(ttl, sizeof(ttl), POLL_SEEN_TTL_S);
    for (size_t i = 0; i < res->nreplies; i++) {
        const struct inbound_sms *r = &res->replies[i];
        const char *argv[] = {"SADD", key, r->provider_id};
        if (rconn_command(&reply, w->redis, 3, argv, NULL, true, errstr,
                          sizeof(errstr)) != 0) {
            log_warn("poll: replies: %s", errstr);
            return; /* since stays: fetched again next time */
        }
        bool fresh = reply->type == REDIS_REPLY_INTEGER && reply->integer == 1;
        freeReplyObject(reply);
        reply = NULL;
        if (!fresh)
            continue;
        size_t len;
        char *value =
            event_reply_json(p->acct->name, p->acct->codec->name, r, &len);
        poll_produce(w, KAFKA_REPLIES, r->from, value, len);
        optout_on_reply(w, NULL, p->acct, r, NULL); /* logs its failure */
    }
    const char *exp[] = {"EXPIRE", key, ttl};
    if (rconn_command(&reply, w->redis, 3, exp, NULL, true, errstr,
                      sizeof(errstr)) == 0)
        freeReplyObject(reply);
    /* A minute of overlap covers replies stamped just before the ask; the
     * seen set drops the repeats. */
    rconn_i64(since, sizeof(since), p->asked_s - 60);
    const char *set[] = {"SET", since_key, since};
    if (rconn_command(&reply, w->redis, 3, set, NULL, true, errstr,
                      sizeof(errstr)) == 0)
        freeReplyObject(reply);
}

static void poll_http_done(const struct http_response *resp, const char *error,
                           bool maybe_sent, void *opaque)
{
    struct pollreq *p = opaque;
    struct worker *w = p->w;
    const struct codec *codec = p->acct->codec;
    const struct codec_call *call = &p->calls.calls[0];
    struct callback_result res = {0};
    char errstr[256];

    (void)maybe_sent;
    w->polls_in_flight--;
    metrics_count(
        &w->metrics, M_PROVIDER_REQUESTS,
        ML(p->acct->name, codec->name,
           error != NULL ? "error" : metrics_http_class(resp->status)),
        1);
    metrics_observe(&w->metrics, M_PROVIDER_LATENCY, ML(p->acct->name),
                    http_done_seconds(w->http));
    if (error != NULL) {
        log_warn("poll: %s %s: %s", p->acct->name,
                 call->op == OP_POLL_STATUS ? "status" : "replies", error);
    } else if (codec->decode_poll(&res, p->acct, call, resp, errstr,
                                  sizeof(errstr)) != 0) {
        log_warn("poll: %s %s: %s", p->acct->name,
                 call->op == OP_POLL_STATUS ? "status" : "replies", errstr);
    } else if (call->op == OP_POLL_STATUS) {
        if (poll_status_done(w, p, &res)) {
            callback_result_cleanup(&res);
            return; /* freed once recorded and on Kafka */
        }
    } else {
        poll_replies_done(w, p, &res);
    }
    callback_result_cleanup(&res);
    pollreq_free(p);
}

static void poll_submit(struct worker *w, struct pollreq *p, enum codec_op op,
                        const char *pid, int64_t since)
{
    const struct codec *codec = p->acct->codec;
    char errstr[256];

    if (codec->encode_poll(&p->calls, p->acct, op, pid, since, errstr,
                           sizeof(errstr)) != 0 ||
        p->calls.ncalls == 0) {
        log_warn("poll: %s: %s", p->acct->name, errstr);
        pollreq_free(p);
        return;
    }
    if (http_submit(w->http, &p->calls.calls[0].req, poll_http_done, p, errstr,
                    sizeof(errstr)) != 0) {
        log_warn("poll: %s", errstr);
        pollreq_free(p);
        return;
    }
    w->polls_in_flight++;
    w->stats.requests++;
}

int poll_track(struct worker *w, const struct account *acct, const char *pid,
               const char *job, const char *recipient, aredis_fn *fn,
               void *privdata)
{
    char key[RCONN_KEY_MAX], member[POLL_MEMBER_MAX], score[24];
    char errstr[256];

    if (pid == NULL || pid[0] == '\0')
        return 1;
    if (rconn_key(key, sizeof(key), w->redis, acct->name, "poll", NULL, errstr,
                  sizeof(errstr)) != 0) {
        log_warn("poll: track %s: %s", pid, errstr);
        return 1;
    }
    int64_t now = worker_wall_ms();
    snprintf(member, sizeof(member), "%s\t%s\t%s\t%lld", pid, job, recipient,
             (long long)now);
    rconn_i64(score, sizeof(score), now + w->cfg->poll_interval_ms);
    const char *argv[] = {"ZADD", key, score, member};
    aredis_command(w->aredis, 4, argv, NULL, fn, privdata);
    return 0;
}

/* Claims the due status polls of one account and asks for each. */
static int poll_statuses(struct worker *w, const struct account *acct,
                         int64_t now)
{
    char key[RCONN_KEY_MAX], snow[24], smax[24], snext[24];
    char errstr[256];
    redisReply *reply = NULL;

    if (rconn_key(key, sizeof(key), w->redis, acct->name, "poll", NULL, errstr,
                  sizeof(errstr)) != 0)
        return -1;
    const char *argv[] = {
        key,
        rconn_i64(snow, sizeof(snow), now),
        rconn_i64(smax, sizeof(smax), POLL_BATCH),
        rconn_i64(snext, sizeof(snext), now + w->cfg->poll_interval_ms),
    };
    if (rconn_eval(&reply, w->redis, &claim_script, 1, 4, argv, NULL, false,
                   errstr, sizeof(errstr)) != 0) {
        log_warn("poll: claim: %s", errstr);
        return -1;
    }
    for (size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements;
         i++) {
        const redisReply *m = reply->element[i];
        if (m->type != REDIS_REPLY_STRING || m->len >= POLL_MEMBER_MAX)
            continue;
        struct pollreq *p = pollreq_new(w, acct);
        memcpy(p->member, m->str, m->len);
        char copy[POLL_MEMBER_MAX];
        memcpy(copy, m->str, m->len + 1);
        char *f[4] = {copy, NULL, NULL, NULL};
        for (int k = 1; k < 4 && f[k - 1] != NULL; k++) {
            char *tab = strchr(f[k - 1], '\t');
            if (tab != NULL) {
                *tab = '\0';
                f[k] = tab + 1;
            }
        }
        if (f[3] == NULL) {
            pollreq_free(p);
            continue;
        }
        util_strlcpy(p->pid, f[0], sizeof(p->pid));
        util_strlcpy(p->job, f[1], sizeof(p->job));
        util_strlcpy(p->recipient, f[2], sizeof(p->recipient));
        p->first_ms = strtoll(f[3], NULL, 10);
        poll_submit(w, p, OP_POLL_STATUS, p->pid, 0);
    }
    freeReplyObject(reply);
    return 0;
}

/* Fetches one account's replies when no other replica does this interval. */
static int poll_replies(struct worker *w, const struct account *acct,
                        int64_t now)
{
    char lock[RCONN_KEY_MAX], since_key[RCONN_KEY_MAX], px[24];
    char errstr[256];
    redisReply *reply = NULL;

    if (rconn_key(lock, sizeof(lock), w->redis, acct->name, "replies-lock",
                  NULL, errstr, sizeof(errstr)) != 0 ||
        rconn_key(since_key, sizeof(since_key), w->redis, acct->name,
                  "replies-since", NULL, errstr, sizeof(errstr)) != 0)
        return -1;
    rconn_i64(px, sizeof(px), w->cfg->poll_interval_ms);
    const char *argv[] = {"SET", lock, "1", "NX", "PX", px};
    if (rconn_command(&reply, w->redis, 6, argv, NULL, false, errstr,
                      sizeof(errstr)) != 0) {
        log_warn("poll: replies lock: %s", errstr);
        return -1;
    }
    bool mine = reply->type == REDIS_REPLY_STATUS;
    freeReplyObject(reply);
    if (!mine)
        return 0;
    const char *get[] = {"GET", since_key};
    if (rconn_command(&reply, w->redis, 2, get, NULL, true, errstr,
                      sizeof(errstr)) != 0)
        return -1;
    /* The first fetch looks back one interval: kurir publishes the replies
     * that come while it runs, not the provider's whole history. */
    int64_t since = now / 1000 - w->cfg->poll_interval_ms / 1000 - 60;
    if (reply->type == REDIS_REPLY_STRING)
        since = strtoll(reply->str, NULL, 10);
    freeReplyObject(reply);
    /* Jojka looks back 96 hours at most. */
    if (since < now / 1000 - 95 * 3600)
        since = now / 1000 - 95 * 3600;
    struct pollreq *p = pollreq_new(w, acct);
    p->asked_s = now / 1000;
    poll_submit(w, p, OP_POLL_REPLIES, NULL, since);
    return 0;
}

bool poll_wanted(const struct codec *codec)
{
    /* A provider that pushes anything pushes replies; iP.1 legacy's status
     * poll rests on a SOAP operation name nobody has confirmed
     * (docs/providers-choices.md), so only providers without any webhook
     * (Jojka) are polled. */
    return codec->polls && !codec->has_callbacks &&
           codec->encode_poll != NULL && codec->decode_poll != NULL;
}

void poll_serve(struct worker *w)
{
    int64_t now = worker_wall_ms();

    if (now < w->next_poll_ms || !w->redis_ok)
        return;
    /* Claims are cheap; the provider is asked per member only when due. */
    w->next_poll_ms = now + 250;
    for (size_t i = 0; i < w->accounts->count; i++) {
        const struct account *acct = &w->accounts->items[i];
        if (!poll_wanted(acct->codec))
            continue;
        if (poll_statuses(w, acct, now) != 0 || poll_replies(w, acct, now) != 0)
            return;
    }
}
