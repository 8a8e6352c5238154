/* worker/poll.c - following what was handed to a provider until it ends.
 *
 * Keys of one account A (prefix P), all in A's hash slot (docs/redis.md):
 *
 *   P:{A}:poll      zset of status reads, scored by when to ask next.
 *                   A member is "m\t<pid>\t<job>\t<recipient>\t<first_ms>\t
 *                   <type>\t1" (one message) or "c\t<pid>\t<job>\t\t
 *                   <first_ms>\t<type>\t<n>" (a unit of n recipients read
 *                   in one call: a Jojka campaign, an iP.1 batch, a legacy
 *                   bundle), or "r\t<reference>\t<job>\t\t<first_ms>\t
 *                   <type>\t<n>" (iP.1: a batch whose answer never came,
 *                   looked for by its reference, then read as "c").
 *                   Members of before (pid, job, recipient, first_ms) read
 *                   as one message of a send.
 *   P:{A}:await     zset "<job>\t<recipient>\t<type>" scored by its give-up
 *                   time: every recipient handed over (submitted) or maybe
 *                   handed over (unknown), of every provider.
 *   P:{A}:ref:<r>   "<type>\t<job>": what the reference a provider echoes
 *                   stands for (iP.1's 40-character reference of a long job
 *                   id; the job's type for callback events).
 *   P:{A}:held:<j>  hash pid -> "<send_at_ms>\t<recipient>,<recipient>...":
 *                   units of job j the provider holds until send_at.
 *
 * Polls: any replica claims due members atomically (the claim moves their
 * score one interval on, so two replicas never ask together), asks the
 * provider, and records what it read (states only move forward, checked in
 * Redis); a member goes once every recipient it reads is final, or at the
 * give-up time.
 *
 * Give-up: the await set is claimed the same way (a minute's lease); a
 * claimed member whose recipient is not final yet ends `failed` with code
 * `no_report` (a final state already there refuses it: nothing is said).
 * Callbacks and polls remove the members they end.
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
#include "ratelimit/rargv.h"
#include "worker/events.h"
#include "worker/log.h"
#include "worker/outcome.h"
#include "worker/rbatch.h"
#include "worker/reads.h"
#include "worker/xalloc.h"

#define POLL_BATCH      64
#define POLL_SEEN_TTL_S (4 * 24 * 3600)
#define POLL_MEMBER_MAX 256
/* A claimed give-up or status read is this replica's for a minute: a
 * read not final is put back one interval on when it ends, so a slow
 * answer is never asked again meanwhile; a replica that dies leaves its
 * claims to the others after the minute. */
#define POLL_LEASE_MS 60000
/* Kept references outlive the give-up by a day: reports may come late. */
#define POLL_REF_EXTRA_MS (24LL * 3600 * 1000)

/* KEYS: the set. ARGV: now_ms, max, next_ms. Returns the members due and
 * moves them to next_ms. */
static struct rconn_script claim_script = {
    .src = "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', "
           "ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))\n"
           "for _, m in ipairs(due) do\n"
           "  redis.call('ZADD', KEYS[1], ARGV[3], m)\n"
           "end\n"
           "return due\n",
};

/* Batched over jobs of one account. KEYS: poll, await, then per job ref
 * and held. ARGV per job: ref value ("": none kept), ref ttl, held ttl,
 * the counts of poll members, await members and held units, then their
 * (score, member) and (pid, value) pairs. Await members keep their first
 * give-up time (NX). Every job's poll and await members go in one ZADD
 * each. It runs once Kafka has the recipients' events: the await set is
 * also what ratelimit/marker.h calls the published set. */
static struct rconn_script track_script = {
    .src = RCONN_LUA_BULK
    "local polls, awaits = {}, {}\n"
    "local a = 1\n"
    "for j = 3, #KEYS, 2 do\n"
    "  local np, na, nh = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4]),\n"
    "    tonumber(ARGV[a + 5])\n"
    "  local b = a + 6\n"
    "  for i = b, b + 2 * np - 1 do polls[#polls + 1] = ARGV[i] end\n"
    "  b = b + 2 * np\n"
    "  for i = b, b + 2 * na - 1 do awaits[#awaits + 1] = ARGV[i] end\n"
    "  b = b + 2 * na\n"
    "  if nh > 0 then\n"
    "    local held = {}\n"
    "    for i = b, b + 2 * nh - 1 do held[#held + 1] = ARGV[i] end\n"
    "    bulk('HSET', KEYS[j + 1], held)\n"
    "    redis.call('PEXPIRE', KEYS[j + 1], ARGV[a + 2])\n"
    "  end\n"
    "  if ARGV[a] ~= '' then\n"
    "    redis.call('SET', KEYS[j], ARGV[a], 'PX', ARGV[a + 1])\n"
    "  end\n"
    "  a = b + 2 * nh\n"
    "end\n"
    "bulk('ZADD', KEYS[1], polls)\n"
    "bulk('ZADD', KEYS[2], awaits, 'NX')\n"
    "return 1\n",
};

/* One job's tracking, queued on the turn's batch. */
struct poll_track_job {
    struct rbatch_req req;
    struct rargv keys; /* ref, held */
    struct rargv args; /* the job's ARGV part of track_script */
    poll_tracked_fn *fn;
    void *privdata;
};

/* What a claimed member asks. */
enum poll_kind {
    POLL_MESSAGE, /* one message's status */
    POLL_UNIT,    /* the statuses of a unit's recipients */
    POLL_FIND,    /* a unit whose answer never came, by its reference */
    POLL_REPLIES, /* replies since a time */
    POLL_GIVE_UP, /* no read: the give-up of one awaited recipient */
};

/* One poll request in flight, then its outcome until Kafka has it. */
struct pollreq {
    enum event_owner owner; /* OWNER_POLL; must stay first */
    struct worker *w;
    const struct account *acct;
    enum poll_kind kind;
    struct codec_calls calls;
    char member[POLL_MEMBER_MAX]; /* the poll or await member */
    char pid[CODEC_ID_MAX];       /* parsed from member */
    char job[CODEC_ID_MAX];
    char recipient[24];
    char type[16];
    size_t count; /* POLL_UNIT: recipients the unit carries */
    int64_t first_ms;
    int64_t asked_s;    /* POLL_REPLIES: the time asked */
    struct outcome rec; /* the states read */
    char (*recips)[24]; /* owned: the recipients of rec's items */
    bool *item_final;   /* owned: which items are final */
    bool final;         /* every recipient read is final: stop asking */
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

static struct pollreq *pollreq_new(struct worker *w, const struct account *acct,
                                   enum poll_kind kind)
{
    struct pollreq *p = xcalloc(1, sizeof(*p));

    p->owner = OWNER_POLL;
    p->w = w;
    p->acct = acct;
    p->kind = kind;
    snprintf(p->type, sizeof(p->type), "send");
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
    free(p->recips);
    free(p->item_final);
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
        /* The member stays and is asked about (or swept) again: the
         * states only move forward, so that is harmless. */
        log_warn("poll: remove: %s", err);
}

/* Removes n members of the account's set `kind` ("poll", "await") in
 * one command. */
static void poll_zrem_n(struct worker *w, const struct account *acct,
                        const char *kind, const char *const *members, size_t n)
{
    char key[RCONN_KEY_MAX];
    char errstr[256];

    if (n == 0 || rconn_key(key, sizeof(key), w->redis, acct->name, kind, NULL,
                            errstr, sizeof(errstr)) != 0)
        return;
    const char **argv = xcalloc(n + 2, sizeof(*argv));
    argv[0] = "ZREM";
    argv[1] = key;
    memcpy(argv + 2, members, n * sizeof(*members));
    aredis_command(w->aredis, (int)n + 2, argv, NULL, poll_removed, NULL);
    free(argv);
}

static void poll_zrem(struct worker *w, const struct account *acct,
                      const char *kind, const char *member)
{
    poll_zrem_n(w, acct, kind, &member, 1);
}

/* Ends a request: a status read whose member stays (not final, or the
 * read failed) is asked again one interval from now. */
static void poll_end(struct pollreq *p, bool member_stays)
{
    struct worker *w = p->w;
    char key[RCONN_KEY_MAX], score[24];
    char errstr[256];

    if (member_stays && !w->closing &&
        (p->kind == POLL_MESSAGE || p->kind == POLL_UNIT ||
         p->kind == POLL_FIND) &&
        rconn_key(key, sizeof(key), w->redis, p->acct->name, "poll", NULL,
                  errstr, sizeof(errstr)) == 0) {
        rconn_i64(score, sizeof(score),
                  worker_wall_ms() + w->cfg->poll_interval_ms);
        const char *argv[] = {"ZADD", key, "XX", score, p->member};
        aredis_command(w->aredis, 5, argv, NULL, poll_removed, NULL);
    }
    pollreq_free(p);
}

void poll_awaited_done(struct worker *w, const struct account *acct,
                       const char *job, const char *recipient, const char *type)
{
    char member[POLL_MEMBER_MAX];

    snprintf(member, sizeof(member), "%s\t%s\t%s", job, recipient, type);
    poll_zrem(w, acct, MARKER_PUBLISHED_SET, member);
}

/* Every event of a poll is on Kafka (or one was refused): the awaited
 * recipients it ended are forgotten, and a member read final goes, only
 * now, so a replica that dies before leaves them to be asked again. */
static void poll_finish(struct pollreq *p)
{
    struct worker *w = p->w;

    if (!p->failed) {
        /* One command for every recipient the read ended. */
        struct rargv done = {0};
        for (size_t i = 0; i < p->rec.n && p->item_final != NULL; i++) {
            char member[POLL_MEMBER_MAX];
            if (!p->item_final[i])
                continue;
            snprintf(member, sizeof(member), "%s\t%s\t%s", p->job, p->recips[i],
                     p->type);
            rargv_adds(&done, member);
        }
        poll_zrem_n(w, p->acct, MARKER_PUBLISHED_SET, done.v, done.n);
        rargv_cleanup(&done);
        if (p->kind == POLL_GIVE_UP)
            poll_zrem(w, p->acct, MARKER_PUBLISHED_SET, p->member);
        else if (p->final)
            poll_zrem(w, p->acct, "poll", p->member);
    }
    poll_end(p, p->failed || !p->final);
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
        /* Asked again once the claim's lease runs out. No Redis call from
         * here: this may run while the connection is being torn down. */
        log_warn("poll: redis: %s", err);
        pollreq_free(p);
        return;
    }
    p->failed = o->produce_failed;
    p->pending_events = (int)o->produced;
    if (p->pending_events == 0)
        poll_finish(p);
}

/* Starts the outcome of a poll with room for n items. */
static void poll_outcome_begin(struct pollreq *p, size_t n)
{
    p->rec = (struct outcome){
        .account = p->acct->name,
        .job_id = p->job,
        .items = xcalloc(n + 1, sizeof(*p->rec.items)),
        .want_echo = true,
        .owner = p,
        .done = poll_recorded,
    };
    p->recips = xcalloc(n + 1, sizeof(*p->recips));
    p->item_final = xcalloc(n + 1, sizeof(*p->item_final));
}

/* One recipient's state, as an outcome item. */
static void poll_item(struct pollreq *p, const char *recipient,
                      const struct status_update *u, enum sms_state state,
                      const char *code, const char *message)
{
    size_t i = p->rec.n++;

    util_strlcpy(p->recips[i], recipient, sizeof(p->recips[i]));
    p->item_final[i] = sms_state_is_final(state);
    struct status_event ev = {
        .job_id = p->job,
        .type = p->type,
        .account = p->acct->name,
        .provider = p->acct->codec->name,
        .recipient = outcome_event_recipient(p->recips[i]),
        .state = state,
        .provider_message_id = u != NULL && u->provider_id[0] ? u->provider_id
                               : p->pid[0]                    ? p->pid
                                                              : NULL,
        .provider_status = u ? u->provider_status : NULL,
        .error_code = code,
        .error_message = message,
    };
    struct outcome_item *it = &p->rec.items[i];

    it->recipient = p->recips[i];
    it->op = MARKER_OP_KEEP;
    it->state = sms_state_name(state);
    it->event = event_status_json(&ev, &it->event_len);
}

/* Records what a status poll read; the member goes once every recipient
 * it reads is final and on Kafka. Returns true when the request lives
 * on. */
static bool poll_status_done(struct worker *w, struct pollreq *p,
                             const struct callback_result *res)
{
    size_t nfinal = 0;

    poll_outcome_begin(p, res->nupdates);
    for (size_t i = 0; i < res->nupdates; i++) {
        const struct status_update *u = &res->updates[i];
        /* A message's read names no recipient: the member does. A unit's
         * read names each, and only those of the member's job count. */
        const char *to = p->kind == POLL_MESSAGE ? p->recipient : u->recipient;
        /* Still on its way says nothing new: every recipient followed is
         * `submitted` or later already. */
        if (to[0] == '\0' || u->state <= STATE_SUBMITTED)
            continue;
        poll_item(p, to, u, u->state, u->error_code[0] ? u->error_code : NULL,
                  u->error_message[0] ? u->error_message : NULL);
        nfinal += sms_state_is_final(u->state);
    }
    p->final = nfinal > 0 && nfinal >= p->count;
    if (p->rec.n == 0)
        return false;
    outcome_record(w, &p->rec);
    return true;
}

/* A unit looked for by its reference: once a batch names it, the member
 * becomes a read of that batch ("c"), due now. Returns true when found
 * (the request is freed). */
static bool poll_found(struct worker *w, struct pollreq *p,
                       const struct callback_result *res)
{
    char key[RCONN_KEY_MAX], member[POLL_MEMBER_MAX], score[24];
    char errstr[256];

    for (size_t i = 0; i < res->nupdates; i++) {
        const struct status_update *u = &res->updates[i];
        if (u->recipient[0] != '\0' || strcmp(u->transid, p->pid) != 0 ||
            u->provider_id[0] == '\0')
            continue;
        if (rconn_key(key, sizeof(key), w->redis, p->acct->name, "poll", NULL,
                      errstr, sizeof(errstr)) != 0)
            return false;
        snprintf(member, sizeof(member), "c\t%s\t%s\t\t%lld\t%s\t%zu",
                 u->provider_id, p->job, (long long)p->first_ms, p->type,
                 p->count);
        rconn_i64(score, sizeof(score), worker_wall_ms());
        const char *add[] = {"ZADD", key, score, member};
        aredis_command(w->aredis, 4, add, NULL, poll_removed, NULL);
        log_info("poll: %s: job %s without an answer is batch %s",
                 p->acct->name, p->job, u->provider_id);
        poll_zrem(w, p->acct, "poll", p->member);
        pollreq_free(p);
        return true;
    }
    return false;
}

/* Publishes replies not seen before and remembers where to start next.
 * The point where a reply is published (poll_produce KAFKA_REPLIES) is
 * where reply handling (opt-out) hooks in. */
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
    const char *what = p->kind == POLL_REPLIES ? "replies" : "status";
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
        log_warn("poll: %s %s: %s", p->acct->name, what, error);
    } else if (codec->decode_poll(&res, p->acct, call, resp, errstr,
                                  sizeof(errstr)) != 0) {
        log_warn("poll: %s %s%s%s: %s", p->acct->name, what,
                 p->pid[0] ? " " : "", p->pid, errstr);
    } else if (p->kind == POLL_FIND) {
        if (poll_found(w, p, &res)) {
            callback_result_cleanup(&res);
            return;
        }
    } else if (p->kind != POLL_REPLIES) {
        if (poll_status_done(w, p, &res)) {
            callback_result_cleanup(&res);
            return; /* freed once recorded and on Kafka */
        }
    } else {
        poll_replies_done(w, p, &res);
    }
    callback_result_cleanup(&res);
    poll_end(p, true);
}

/* The read that asks for a unit's statuses (a campaign, a batch, a
 * bundle) on the account's provider: op and what into *op and out. */
static bool poll_unit_read(const struct account *acct, const char *pid,
                           enum codec_op *op, char *out, size_t out_size)
{
    const struct codec *c = acct->codec;

    if (c == &codec_jojka) {
        *op = OP_READ;
        snprintf(out, out_size, "get_campaign_recipients_status?campaign_id=%s",
                 pid);
    } else if (c == &codec_ip1) {
        *op = OP_READ;
        snprintf(out, out_size, "batches/%s/messages?limit=1000", pid);
    } else if (c == &codec_ip1_legacy) {
        *op = OP_POLL_STATUS; /* "bundle:<id>" as the codec gave it */
        snprintf(out, out_size, "%s", pid);
    } else {
        return false;
    }
    return true;
}

static void poll_submit(struct worker *w, struct pollreq *p, enum codec_op op,
                        const char *what, int64_t since)
{
    const struct codec *codec = p->acct->codec;
    char errstr[256];

    if (codec->encode_poll(&p->calls, p->acct, op, what, since, errstr,
                           sizeof(errstr)) != 0 ||
        p->calls.ncalls == 0) {
        log_warn("poll: %s: %s", p->acct->name, errstr);
        poll_end(p, true);
        return;
    }
    if (http_submit(w->http, &p->calls.calls[0].req, poll_http_done, p, errstr,
                    sizeof(errstr)) != 0) {
        log_warn("poll: %s", errstr);
        poll_end(p, true);
        return;
    }
    w->polls_in_flight++;
    w->stats.requests++;
}

/* ------------------------------------------------------------------------ */
/* Tracking. */

bool poll_reads_statuses(const struct account *acct)
{
    const struct codec *c = acct->codec;

    if (c->encode_poll == NULL || c->decode_poll == NULL)
        return false;
    if (c == &codec_ip1)
        return acct->callback_url == NULL;
    if (c == &codec_ip1_legacy)
        /* Status and statusBundle are unconfirmed SOAP names
         * (docs/providers-choices.md). */
        return acct->options.legacy_unconfirmed_soap;
    return poll_wanted(c);
}

int poll_check_accounts(const struct accounts *accounts, char *errstr,
                        size_t errstr_size)
{
    for (size_t i = 0; i < accounts->count; i++) {
        const struct account *a = &accounts->items[i];
        if (a->codec == &codec_intime && a->callback_url == NULL) {
            snprintf(errstr, errstr_size,
                     "account %s: InTime reports statuses only by callback "
                     "and has no status read: set KURIR_PUBLIC_URL (and "
                     "leave out poll_statuses)",
                     a->name);
            return -1;
        }
    }
    return 0;
}

/* The reference the provider echoes for a job: iP.1 REST carries at most
 * 40 characters (codec_ip1_reference); everyone else the job id. */
static void poll_reference(char *out, size_t out_size,
                           const struct account *acct, const char *job_id)
{
    char ref[CODEC_IP1_REFERENCE_MAX + 1];

    if (acct->codec == &codec_ip1 && codec_ip1_reference(ref, job_id))
        util_strlcpy(out, ref, out_size);
    else
        util_strlcpy(out, job_id, out_size);
}

struct rconn_script *poll_track_script(void)
{
    return &track_script;
}

int poll_track_nkeys(size_t njobs)
{
    return (int)(2 + 2 * njobs);
}

int poll_track_build(struct rargv *out, struct worker *w, const char *account,
                     const struct poll_track_job *const *jobs, size_t njobs,
                     char *errstr, size_t errstr_size)
{
    char key[RCONN_KEY_MAX];
    const char *prefix = aredis_prefix(w->aredis);

    if (rconn_key_p(key, sizeof(key), prefix, account, "poll", NULL, errstr,
                    errstr_size) != 0)
        return -1;
    rargv_adds(out, key);
    if (rconn_key_p(key, sizeof(key), prefix, account, MARKER_PUBLISHED_SET,
                    NULL, errstr, errstr_size) != 0)
        return -1;
    rargv_adds(out, key);
    for (size_t j = 0; j < njobs; j++)
        for (size_t i = 0; i < jobs[j]->keys.n; i++)
            rargv_add(out, jobs[j]->keys.v[i], jobs[j]->keys.len[i]);
    for (size_t j = 0; j < njobs; j++)
        for (size_t i = 0; i < jobs[j]->args.n; i++)
            rargv_add(out, jobs[j]->args.v[i], jobs[j]->args.len[i]);
    return 0;
}

static void poll_tracked(struct rbatch_req *req, const char *err)
{
    struct poll_track_job *tj = req->owner;

    tj->fn(tj->privdata, err);
    rargv_cleanup(&tj->keys);
    rargv_cleanup(&tj->args);
    free(tj);
}

int poll_track_unit(struct worker *w, const struct account *acct,
                    const struct job *job, const struct poll_item *items,
                    size_t n, bool provider_scheduled, poll_tracked_fn *fn,
                    void *privdata)
{
    char keys[2][RCONN_KEY_MAX];
    char ref[CODEC_ID_MAX], refval[CODEC_ID_MAX + 24];
    char errstr[256];
    const char *type = job_type_name(job->type);
    bool reads = poll_reads_statuses(acct);
    int64_t now = worker_wall_ms(), wall = now;
    int64_t give_up = w->cfg->report_give_up_ms;

    if (n == 0)
        return 1;
    /* A unit the provider holds until send_at is asked after, and given
     * up on, from then. */
    if (job->send_at_ms > now)
        now = job->send_at_ms;
    poll_reference(ref, sizeof(ref), acct, job->id);
    if (rconn_key(keys[0], RCONN_KEY_MAX, w->redis, acct->name, "ref", ref,
                  errstr, sizeof(errstr)) != 0 ||
        rconn_key(keys[1], RCONN_KEY_MAX, w->redis, acct->name, "held", job->id,
                  errstr, sizeof(errstr)) != 0) {
        log_warn("poll: track %s: %s", job->id, errstr);
        return 1;
    }
    /* A send echoed under its own id needs no reference kept:
     * poll_ref_read() reads a missing one as exactly that. */
    if (job->type == JOB_SEND && strcmp(ref, job->id) == 0)
        refval[0] = '\0';
    else
        snprintf(refval, sizeof(refval), "%s\t%s", type, job->id);

    /* The pairs, built first so the counts lead them. */
    struct rargv polls = {0}, awaits = {0}, held = {0};
    size_t np = 0, na = 0, nh = 0, nfind = 0;
    char score[24], member[POLL_MEMBER_MAX];
    rconn_i64(score, sizeof(score), now + w->cfg->poll_interval_ms);
    for (size_t i = 0; i < n; i++) {
        const struct poll_item *it = &items[i];
        char deadline[24];
        rconn_i64(deadline, sizeof(deadline), now + give_up);
        snprintf(member, sizeof(member), "%s\t%s\t%s", job->id, it->recipient,
                 type);
        rargv_adds(&awaits, deadline);
        rargv_adds(&awaits, member);
        na++;
        if (strcmp(it->recipient, OUTCOME_JOB_LEVEL) == 0)
            continue; /* the job itself, without an id: only awaited */
        if (reads && (it->pid == NULL || it->pid[0] == '\0'))
            nfind++;
        if (!reads || it->pid == NULL || it->pid[0] == '\0')
            continue;
        bool first_of_unit = true;
        for (size_t k = 0; k < i && it->unit_id; k++)
            first_of_unit =
                first_of_unit && !(items[k].unit_id && items[k].pid != NULL &&
                                   strcmp(items[k].pid, it->pid) == 0);
        if (!first_of_unit)
            continue;
        size_t count = 1;
        for (size_t k = i + 1; k < n && it->unit_id; k++)
            count += items[k].unit_id && items[k].pid != NULL &&
                     strcmp(items[k].pid, it->pid) == 0;
        snprintf(member, sizeof(member), "%s\t%s\t%s\t%s\t%lld\t%s\t%zu",
                 it->unit_id ? "c" : "m", it->pid, job->id,
                 it->unit_id ? "" : it->recipient, (long long)now, type, count);
        rargv_adds(&polls, score);
        rargv_adds(&polls, member);
        np++;
    }
    if (nfind > 0 && acct->codec == &codec_ip1) {
        /* Recipients without a provider id (no answer, a 5xx): iP.1
         * lists its batches with their references, so the batch can
         * still be found and read. */
        snprintf(member, sizeof(member), "r\t%s\t%s\t\t%lld\t%s\t%zu", ref,
                 job->id, (long long)now, type, nfind);
        rargv_adds(&polls, score);
        rargv_adds(&polls, member);
        np++;
    }
    if (provider_scheduled) {
        /* One entry per provider id: the recipients it carries. */
        for (size_t i = 0; i < n; i++) {
            const char *pid = items[i].pid;
            bool seen = false;
            if (pid == NULL || pid[0] == '\0')
                continue;
            for (size_t k = 0; k < i && !seen; k++)
                seen = items[k].pid != NULL && strcmp(items[k].pid, pid) == 0;
            if (seen)
                continue;
            char head[32];
            snprintf(head, sizeof(head), "%lld\t", (long long)job->send_at_ms);
            size_t len = strlen(head);
            char *value = xmalloc(len + 1);
            memcpy(value, head, len + 1);
            for (size_t k = i; k < n; k++) {
                if (items[k].pid == NULL || strcmp(items[k].pid, pid) != 0)
                    continue;
                size_t rl = strlen(items[k].recipient);
                value = xrealloc(value, len + rl + 2);
                if (value[len - 1] != '\t')
                    value[len++] = ',';
                memcpy(value + len, items[k].recipient, rl + 1);
                len += rl;
            }
            rargv_adds(&held, pid);
            rargv_adds(&held, value);
            free(value);
            nh++;
        }
    }

    struct poll_track_job *tj = xcalloc(1, sizeof(*tj));
    rargv_adds(&tj->keys, keys[0]);
    rargv_adds(&tj->keys, keys[1]);
    rargv_adds(&tj->args, refval);
    rargv_addi(&tj->args, now - wall + give_up + POLL_REF_EXTRA_MS);
    rargv_addi(&tj->args, now - wall + MARKER_TTL_MS);
    rargv_addi(&tj->args, (int64_t)np);
    rargv_addi(&tj->args, (int64_t)na);
    rargv_addi(&tj->args, (int64_t)nh);
    for (size_t i = 0; i < polls.n; i++)
        rargv_add(&tj->args, polls.v[i], polls.len[i]);
    for (size_t i = 0; i < awaits.n; i++)
        rargv_add(&tj->args, awaits.v[i], awaits.len[i]);
    for (size_t i = 0; i < held.n; i++)
        rargv_add(&tj->args, held.v[i], held.len[i]);
    rargv_cleanup(&polls);
    rargv_cleanup(&awaits);
    rargv_cleanup(&held);
    tj->fn = fn;
    tj->privdata = privdata;
    tj->req = (struct rbatch_req){
        .kind = RBATCH_TRACK,
        .account = acct->name,
        .track = tj,
        .fn = poll_tracked,
        .owner = tj,
    };
    rbatch_queue(w, &tj->req);
    return 0;
}

int poll_held_units(struct worker *w, const struct account *acct,
                    const char *job_id, struct poll_held **out, size_t *n,
                    char *errstr, size_t errstr_size)
{
    char key[RCONN_KEY_MAX];
    redisReply *reply = NULL;
    int64_t now = worker_wall_ms();

    *out = NULL;
    *n = 0;
    if (rconn_key(key, sizeof(key), w->redis, acct->name, "held", job_id,
                  errstr, errstr_size) != 0)
        return -1;
    const char *argv[] = {"HGETALL", key};
    if (rconn_command(&reply, w->redis, 2, argv, NULL, true, errstr,
                      errstr_size) != 0)
        return -1;
    size_t pairs = reply->type == REDIS_REPLY_ARRAY ? reply->elements / 2 : 0;
    *out = xcalloc(pairs + 1, sizeof(**out));
    for (size_t i = 0; i < pairs; i++) {
        const redisReply *pid = reply->element[2 * i];
        const redisReply *val = reply->element[2 * i + 1];
        if (pid->type != REDIS_REPLY_STRING || val->type != REDIS_REPLY_STRING)
            continue;
        char *copy = xmalloc(val->len + 1);
        memcpy(copy, val->str, val->len);
        copy[val->len] = '\0';
        char *tab = strchr(copy, '\t');
        /* Only what the provider still holds can be stopped there. */
        if (tab == NULL || strtoll(copy, NULL, 10) <= now) {
            free(copy);
            continue;
        }
        struct poll_held *h = &(*out)[(*n)++];
        h->pid = xmalloc(pid->len + 1);
        memcpy(h->pid, pid->str, pid->len);
        h->pid[pid->len] = '\0';
        char *save = NULL;
        for (char *tok = strtok_r(tab + 1, ",", &save); tok != NULL;
             tok = strtok_r(NULL, ",", &save)) {
            h->recipients =
                xrealloc(h->recipients, (h->n + 1) * sizeof(*h->recipients));
            h->recipients[h->n++] = xstrdup(tok);
        }
        free(copy);
    }
    freeReplyObject(reply);
    return 0;
}

void poll_held_free(struct poll_held *held, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < held[i].n; k++)
            free(held[i].recipients[k]);
        free(held[i].recipients);
        free(held[i].pid);
    }
    free(held);
}

int poll_ref_lookup(struct worker *w, const struct account *acct,
                    const char *reference, aredis_fn *fn, void *privdata)
{
    char key[RCONN_KEY_MAX];
    char errstr[256];

    if (rconn_key(key, sizeof(key), w->redis, acct->name, "ref", reference,
                  errstr, sizeof(errstr)) != 0) {
        fn(NULL, NULL, privdata); /* a reference too long: none kept */
        return 0;
    }
    const char *argv[] = {"GET", key};
    aredis_command(w->aredis, 2, argv, NULL, fn, privdata);
    return 0;
}

void poll_ref_read(struct poll_ref *out, const char *reference,
                   const redisReply *reply)
{
    util_strlcpy(out->job, reference, sizeof(out->job));
    snprintf(out->type, sizeof(out->type), "send");
    if (reply == NULL || reply->type != REDIS_REPLY_STRING)
        return;
    const char *tab = memchr(reply->str, '\t', reply->len);
    if (tab == NULL)
        return;
    size_t tl = (size_t)(tab - reply->str);
    size_t jl = reply->len - tl - 1;
    if (tl >= sizeof(out->type) || jl >= sizeof(out->job))
        return;
    memcpy(out->type, reply->str, tl);
    out->type[tl] = '\0';
    memcpy(out->job, tab + 1, jl);
    out->job[jl] = '\0';
}

/* ------------------------------------------------------------------------ */
/* Claims. */

/* Claims up to POLL_BATCH due members of the account's set `kind`,
 * moving them `lease_ms` on. Returns the reply (caller frees) or NULL. */
static redisReply *poll_claim(struct worker *w, const struct account *acct,
                              const char *kind, int64_t now, int64_t lease_ms)
{
    char key[RCONN_KEY_MAX], snow[24], smax[24], snext[24];
    char errstr[256];
    redisReply *reply = NULL;

    if (rconn_key(key, sizeof(key), w->redis, acct->name, kind, NULL, errstr,
                  sizeof(errstr)) != 0)
        return NULL;
    const char *argv[] = {
        key,
        rconn_i64(snow, sizeof(snow), now),
        rconn_i64(smax, sizeof(smax), POLL_BATCH),
        rconn_i64(snext, sizeof(snext), now + lease_ms),
    };
    if (rconn_eval(&reply, w->redis, &claim_script, 1, 4, argv, NULL, false,
                   errstr, sizeof(errstr)) != 0) {
        log_warn("poll: claim %s: %s", kind, errstr);
        return NULL;
    }
    if (reply->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(reply);
        return NULL;
    }
    return reply;
}

/* Splits a member at tabs into at most max fields; returns how many. */
static size_t poll_fields(char *s, char **f, size_t max)
{
    size_t n = 0;

    f[n++] = s;
    while (n < max) {
        char *tab = strchr(f[n - 1], '\t');
        if (tab == NULL)
            break;
        *tab = '\0';
        f[n++] = tab + 1;
    }
    return n;
}

/* Claims the due status polls of one account and asks for each. */
static int poll_statuses(struct worker *w, const struct account *acct,
                         int64_t now)
{
    redisReply *reply = poll_claim(w, acct, "poll", now, POLL_LEASE_MS);

    if (reply == NULL)
        return -1;
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *m = reply->element[i];
        char copy[POLL_MEMBER_MAX], what[CODEC_ID_MAX + 64];
        char *f[7];
        if (m->type != REDIS_REPLY_STRING || m->len >= POLL_MEMBER_MAX)
            continue;
        memcpy(copy, m->str, m->len);
        copy[m->len] = '\0';
        size_t nf = poll_fields(copy, f, 7);
        bool old = nf == 4; /* pid, job, recipient, first_ms */
        if (!old && nf != 7)
            continue;
        struct pollreq *p = pollreq_new(w, acct,
                                        old || f[0][0] == 'm' ? POLL_MESSAGE
                                        : f[0][0] == 'r'      ? POLL_FIND
                                                              : POLL_UNIT);
        memcpy(p->member, m->str, m->len);
        p->member[m->len] = '\0';
        size_t o = old ? 0 : 1; /* old members have no kind */
        util_strlcpy(p->pid, f[o], sizeof(p->pid));
        util_strlcpy(p->job, f[o + 1], sizeof(p->job));
        util_strlcpy(p->recipient, f[o + 2], sizeof(p->recipient));
        p->first_ms = strtoll(f[o + 3], NULL, 10);
        if (!old) {
            util_strlcpy(p->type, f[5], sizeof(p->type));
            p->count = (size_t)strtoull(f[6], NULL, 10);
        }
        if (p->count == 0)
            p->count = 1;
        if (now - p->first_ms > w->cfg->report_give_up_ms) {
            /* Past the give-up: the await set ends what is left. */
            poll_zrem(w, acct, "poll", p->member);
            pollreq_free(p);
            continue;
        }
        enum codec_op op = OP_POLL_STATUS;
        snprintf(what, sizeof(what), "%s", p->pid);
        if (p->kind == POLL_FIND) {
            /* The latest batches: a send without an answer is recent. */
            op = OP_READ;
            snprintf(what, sizeof(what), "batches?order=DESC&limit=100");
        } else if (p->kind == POLL_UNIT &&
                   !poll_unit_read(acct, p->pid, &op, what, sizeof(what))) {
            pollreq_free(p);
            continue;
        }
        poll_submit(w, p, op, what, 0);
    }
    freeReplyObject(reply);
    return 0;
}

/* Ends the awaited recipients whose give-up time has come: `failed`
 * (no_report) where nothing final came before. */
static int poll_give_ups(struct worker *w, const struct account *acct,
                         int64_t now)
{
    redisReply *reply =
        poll_claim(w, acct, MARKER_PUBLISHED_SET, now, POLL_LEASE_MS);
    char message[128];

    if (reply == NULL)
        return -1;
    snprintf(message, sizeof(message),
             "no delivery report or status within %ld s; the message may "
             "still have been delivered",
             w->cfg->report_give_up_ms / 1000);
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *m = reply->element[i];
        char copy[POLL_MEMBER_MAX];
        char *f[3];
        if (m->type != REDIS_REPLY_STRING || m->len >= POLL_MEMBER_MAX)
            continue;
        memcpy(copy, m->str, m->len);
        copy[m->len] = '\0';
        if (poll_fields(copy, f, 3) != 3)
            continue;
        struct pollreq *p = pollreq_new(w, acct, POLL_GIVE_UP);
        memcpy(p->member, m->str, m->len);
        p->member[m->len] = '\0';
        util_strlcpy(p->job, f[0], sizeof(p->job));
        util_strlcpy(p->type, f[2], sizeof(p->type));
        poll_outcome_begin(p, 1);
        poll_item(p, f[1], NULL, STATE_FAILED, "no_report", message);
        p->item_final[0] = false; /* the member goes as a whole */
        outcome_record(w, &p->rec);
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
    struct pollreq *p = pollreq_new(w, acct, POLL_REPLIES);
    p->asked_s = now / 1000;
    poll_submit(w, p, OP_POLL_REPLIES, NULL, since);
    return 0;
}

bool poll_wanted(const struct codec *codec)
{
    /* A provider that pushes anything pushes replies: only providers
     * without any webhook (Jojka) have their replies polled. */
    return codec->polls && !codec->has_callbacks &&
           codec->encode_poll != NULL && codec->decode_poll != NULL;
}

void poll_serve(struct worker *w)
{
    int64_t now = worker_wall_ms();

    if (now < w->next_poll_ms || !w->redis_ok)
        return;
    /* Claims are cheap; the provider is asked per member only when due.
     * Give-ups are looked for once a second: a second late is nothing
     * after hours. */
    w->next_poll_ms = now + 250;
    bool sweep = now >= w->next_sweep_ms;
    if (sweep)
        w->next_sweep_ms = now + 1000;
    for (size_t i = 0; i < w->accounts->count; i++) {
        const struct account *acct = &w->accounts->items[i];
        if (sweep && poll_give_ups(w, acct, now) != 0)
            return;
        if (poll_reads_statuses(acct) && poll_statuses(w, acct, now) != 0)
            return;
        if (poll_wanted(acct->codec) && poll_replies(w, acct, now) != 0)
            return;
    }
}
