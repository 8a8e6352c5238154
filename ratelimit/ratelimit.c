/* ratelimit/ratelimit.c - token buckets in SMS segments, shared through
 * Redis, with local leases to save round trips.
 *
 * Bucket state is a hash {t = tokens, ts = Redis time in microseconds of
 * the last update}; an absent key is a full bucket, and each key expires
 * once it would have refilled, so idle accounts cost nothing. */
#include "ratelimit/ratelimit.h"

#include "ratelimit/rargv.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* KEYS: penalty, bucket [, bucket]. ARGV: want, need, max_wait_ms, then
 * rate and burst per bucket.
 *
 * When every bucket holds `need` whole tokens, grants at once as many as
 * all hold, up to `want`. Otherwise reserves `want` (or at least `need`)
 * tokens ahead, letting the buckets go negative, and answers how long until
 * they are paid for: the caller may use them only after that wait (GCRA's
 * virtual scheduling), so the fleet still admits at most
 * burst + rate x elapsed. A reservation further ahead than max_wait_ms is
 * refused instead. Returns {granted, wait_ms, penalised}: granted 0 is a
 * refusal, retry after wait_ms. */
static struct rconn_script take_script = {
    .src =
        "local t = redis.call('TIME')\n"
        "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
        "local pen = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
        "if pen * 1000 > now then\n"
        "  return {0, math.ceil((pen * 1000 - now) / 1000), 1}\n"
        "end\n"
        "local want = tonumber(ARGV[1])\n"
        "local need = tonumber(ARGV[2])\n"
        "local max_wait = tonumber(ARGV[3]) * 1000\n"
        "local n = #KEYS - 1\n"
        "local tokens, rates, bursts = {}, {}, {}\n"
        "local avail = want\n"
        "for i = 1, n do\n"
        "  rates[i] = tonumber(ARGV[2 + 2 * i])\n"
        "  bursts[i] = tonumber(ARGV[3 + 2 * i])\n"
        "  local s = redis.call('HMGET', KEYS[i + 1], 't', 'ts')\n"
        "  local tk = tonumber(s[1])\n"
        "  local ts = tonumber(s[2])\n"
        "  if tk == nil or ts == nil then\n"
        "    tk = bursts[i]\n"
        "    ts = now\n"
        "  end\n"
        "  if now > ts then tk = tk + (now - ts) * rates[i] / 1e6 end\n"
        "  if tk > bursts[i] then tk = bursts[i] end\n"
        "  tokens[i] = tk\n"
        "  if math.floor(tk) < avail then avail = math.floor(tk) end\n"
        "end\n"
        "local function wait_for(k)\n"
        "  local w = 0\n"
        "  for i = 1, n do\n"
        "    local debt = k - tokens[i]\n"
        "    if debt > 0 and debt * 1e6 / rates[i] > w then\n"
        "      w = debt * 1e6 / rates[i]\n"
        "    end\n"
        "  end\n"
        "  return w\n"
        "end\n"
        "local grant, wait = avail, 0\n"
        "if avail < need then\n"
        "  grant = want\n"
        "  wait = wait_for(want)\n"
        "  if wait > max_wait then\n"
        "    grant = need\n"
        "    wait = wait_for(need)\n"
        "  end\n"
        "  if wait > max_wait then\n"
        "    return {0, math.max(1, math.ceil((wait - max_wait) / 1000)), 0}\n"
        "  end\n"
        "end\n"
        "for i = 1, n do\n"
        "  local tk = tokens[i] - grant\n"
        "  redis.call('HSET', KEYS[i + 1], 't', string.format('%.17g', tk),\n"
        "             'ts', string.format('%d', now))\n"
        "  redis.call('PEXPIRE', KEYS[i + 1],\n"
        "             math.ceil((bursts[i] - tk) * 1000 / rates[i]) + 1000)\n"
        "end\n"
        "return {grant, math.ceil(wait / 1000), 0}\n",
};

/* KEYS: penalty. ARGV: for_ms. Keeps the later of the two ends. */
static struct rconn_script penalize_script = {
    .src = "local t = redis.call('TIME')\n"
           "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / "
           "1000)\n"
           "local untl = now + tonumber(ARGV[1])\n"
           "local cur = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
           "if cur >= untl then return cur - now end\n"
           "redis.call('SET', KEYS[1], string.format('%d', untl), 'PX',\n"
           "           tonumber(ARGV[1]))\n"
           "return tonumber(ARGV[1])\n",
};

/* This process's share of one (account, sender) pair. */
struct ratelimit_lease {
    char *account;            /* owned copy */
    char *sender;             /* owned copy; NULL for the account bucket */
    int64_t tokens;           /* granted and not yet used */
    int64_t usable_ms;        /* monotonic: tokens may be used from then */
    int64_t expires_ms;       /* monotonic: unused tokens dropped then */
    int64_t blocked_until_ms; /* monotonic: refused until then */
    int64_t size;             /* the next lease asks for this many */
    bool asking;              /* an asynchronous ask is out */
};

struct ratelimit {
    struct rconn *rc;               /* borrowed */
    int lease_ms;                   /* lease lifetime */
    int64_t max_lease;              /* tokens per round trip at most */
    int64_t max_wait_ms;            /* reservations at most this far ahead */
    struct ratelimit_lease *leases; /* owned array */
    size_t nleases;
    size_t leases_cap;
};

static int64_t ratelimit_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ratelimit_new(struct ratelimit **out, struct rconn *rc,
                  const struct ratelimit_opts *opts, char *errstr,
                  size_t errstr_size)
{
    struct ratelimit *rl;

    (void)errstr;
    (void)errstr_size;
    rl = calloc(1, sizeof(*rl));
    if (rl == NULL)
        abort();
    rl->rc = rc;
    rl->lease_ms = opts != NULL && opts->lease_ms > 0 ? opts->lease_ms : 100;
    rl->max_lease =
        opts != NULL && opts->max_lease > 0 ? opts->max_lease : 1000;
    rl->max_wait_ms =
        opts != NULL && opts->max_wait_ms > 0 ? opts->max_wait_ms : 1000;
    *out = rl;
    return 0;
}

void ratelimit_free(struct ratelimit *rl)
{
    if (rl == NULL)
        return;
    for (size_t i = 0; i < rl->nleases; i++) {
        free(rl->leases[i].account);
        free(rl->leases[i].sender);
    }
    free(rl->leases);
    free(rl);
}

static char *ratelimit_strdup(const char *s)
{
    size_t len = strlen(s) + 1;
    char *p = malloc(len);

    if (p == NULL)
        abort();
    memcpy(p, s, len);
    return p;
}

static struct ratelimit_lease *ratelimit_lease_get(struct ratelimit *rl,
                                                   const char *account,
                                                   const char *sender)
{
    struct ratelimit_lease *lease;

    for (size_t i = 0; i < rl->nleases; i++) {
        lease = &rl->leases[i];
        if (strcmp(lease->account, account) != 0)
            continue;
        if ((lease->sender == NULL) != (sender == NULL))
            continue;
        if (sender == NULL || strcmp(lease->sender, sender) == 0)
            return lease;
    }
    if (rl->nleases == rl->leases_cap) {
        size_t cap = rl->leases_cap == 0 ? 8 : rl->leases_cap * 2;
        void *p = realloc(rl->leases, cap * sizeof(*rl->leases));
        if (p == NULL)
            abort();
        rl->leases = p;
        rl->leases_cap = cap;
    }
    lease = &rl->leases[rl->nleases++];
    memset(lease, 0, sizeof(*lease));
    lease->account = ratelimit_strdup(account);
    lease->sender = sender != NULL ? ratelimit_strdup(sender) : NULL;
    lease->size = 1;
    return lease;
}

/* The largest lease one bucket allows: a quarter of its burst and what it
 * refills in one lease lifetime, at least one token. */
static int64_t ratelimit_bucket_cap(double rate, double burst, int lease_ms)
{
    double cap = floor(burst / 4);
    double refill = floor(rate * lease_ms / 1000);

    if (refill < cap)
        cap = refill;
    return cap < 1 ? 1 : (int64_t)cap;
}

/* Appends the take script's keys and arguments for between `need` and
 * `want` tokens of `b`. */
static int ratelimit_args(struct rargv *out, const char *prefix,
                          const struct ratelimit *rl,
                          const struct ratelimit_bucket *b, bool with_sender,
                          int64_t want, int64_t need, char *errstr,
                          size_t errstr_size)
{
    char key[RCONN_KEY_MAX];
    char num[32];

    if (rconn_key_p(key, sizeof(key), prefix, b->account, "penalty", NULL,
                    errstr, errstr_size) != 0)
        goto fail;
    rargv_adds(out, key);
    if (rconn_key_p(key, sizeof(key), prefix, b->account, "tb", NULL, errstr,
                    errstr_size) != 0)
        goto fail;
    rargv_adds(out, key);
    if (with_sender) {
        if (rconn_key_p(key, sizeof(key), prefix, b->account, "tb:sender",
                        b->sender, errstr, errstr_size) != 0)
            goto fail;
        rargv_adds(out, key);
    }
    rargv_addi(out, want);
    rargv_addi(out, need);
    rargv_addi(out, rl->max_wait_ms);
    snprintf(num, sizeof(num), "%.17g", b->per_second);
    rargv_adds(out, num);
    snprintf(num, sizeof(num), "%.17g", b->burst);
    rargv_adds(out, num);
    if (with_sender) {
        snprintf(num, sizeof(num), "%.17g", b->sender_per_second);
        rargv_adds(out, num);
        snprintf(num, sizeof(num), "%.17g", b->sender_burst);
        rargv_adds(out, num);
    }
    return 0;

fail:
    rargv_cleanup(out);
    return -1;
}

/* Reads a take reply: {granted, wait_ms, ...}. */
static int ratelimit_read(const redisReply *reply, int64_t *granted,
                          int64_t *wait_ms, char *errstr, size_t errstr_size)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        rconn_reply_i64(granted, reply->element[0]) != 0 ||
        rconn_reply_i64(wait_ms, reply->element[1]) != 0) {
        snprintf(errstr, errstr_size, "redis: unexpected rate limit reply");
        return -1;
    }
    return 0;
}

/* Asks Redis for between `need` and `want` tokens (see take_script). */
static int ratelimit_remote_take(struct ratelimit *rl, int64_t *granted,
                                 int64_t *wait_ms,
                                 const struct ratelimit_bucket *b,
                                 bool with_sender, int64_t want, int64_t need,
                                 char *errstr, size_t errstr_size)
{
    struct rargv args = {0};
    redisReply *reply = NULL;
    int ret = -1;

    if (ratelimit_args(&args, rconn_prefix(rl->rc), rl, b, with_sender, want,
                       need, errstr, errstr_size) != 0)
        return -1;
    /* Repeating a take whose reply was lost wastes tokens but never
     * over-admits, so it may be repeated. */
    if (rconn_eval(&reply, rl->rc, &take_script, with_sender ? 3 : 2,
                   (int)args.n, args.v, args.len, true, errstr,
                   errstr_size) == 0)
        ret = ratelimit_read(reply, granted, wait_ms, errstr, errstr_size);
    freeReplyObject(reply);
    rargv_cleanup(&args);
    return ret;
}

/* The most tokens one round trip may ask for: the per-bucket caps and
 * max_lease. */
static int64_t ratelimit_cap(const struct ratelimit *rl,
                             const struct ratelimit_bucket *b, bool with_sender)
{
    int64_t cap = ratelimit_bucket_cap(b->per_second, b->burst, rl->lease_ms);

    if (with_sender) {
        int64_t scap = ratelimit_bucket_cap(b->sender_per_second,
                                            b->sender_burst, rl->lease_ms);
        if (scap < cap)
            cap = scap;
    }
    return cap < rl->max_lease ? cap : rl->max_lease;
}

/* The local half of a take: spends leased tokens, or says how long to
 * wait, or what to ask Redis for (RL_ASK, ask filled). */
static int ratelimit_local(struct ratelimit *rl, enum ratelimit_step *step,
                           int64_t *wait_ms, struct ratelimit_ask *ask,
                           const struct ratelimit_bucket *b, unsigned segments,
                           char *errstr, size_t errstr_size)
{
    bool with_sender = b->sender != NULL && b->sender_per_second > 0;
    struct ratelimit_lease *lease;
    int64_t now = ratelimit_now_ms();
    int64_t need, cap, want;

    if (segments == 0 || b->per_second <= 0 || segments > b->burst ||
        (with_sender && segments > b->sender_burst)) {
        snprintf(errstr, errstr_size,
                 "cannot take %u segments: rate must be positive and a "
                 "message must fit in the burst",
                 segments);
        return -1;
    }
    lease = ratelimit_lease_get(rl, b->account, with_sender ? b->sender : NULL);
    if (lease->tokens > 0 && now >= lease->expires_ms) {
        /* Expired unused: we asked for more than we needed. */
        lease->tokens = 0;
        lease->size = lease->size > 1 ? lease->size / 2 : 1;
    }
    if (lease->tokens >= segments) {
        if (now < lease->usable_ms) {
            *step = RL_WAIT;
            *wait_ms = lease->usable_ms - now;
            return 0;
        }
        lease->tokens -= segments;
        *step = RL_GO;
        *wait_ms = 0;
        return 0;
    }
    if (now < lease->blocked_until_ms) {
        *step = RL_WAIT;
        *wait_ms = lease->blocked_until_ms - now;
        return 0;
    }
    if (lease->asking) {
        *step = RL_ASKING;
        *wait_ms = 0;
        return 0;
    }

    /* The leftover counts towards this message; Redis gives the rest. */
    need = segments - lease->tokens;
    cap = ratelimit_cap(rl, b, with_sender);
    want = lease->size < cap ? lease->size : cap;
    if (want < need)
        want = need;
    *ask = (struct ratelimit_ask){
        .lease = (size_t)(lease - rl->leases),
        .want = want,
        .need = need,
        .with_sender = with_sender,
        .asked_ms = now,
    };
    *step = RL_ASK;
    *wait_ms = 0;
    return 0;
}

/* What Redis granted for an ask. */
static void ratelimit_apply(struct ratelimit *rl,
                            const struct ratelimit_ask *ask,
                            const struct ratelimit_bucket *b, int64_t granted,
                            int64_t wait)
{
    struct ratelimit_lease *lease = &rl->leases[ask->lease];
    int64_t now = ask->asked_ms;
    int64_t cap = ratelimit_cap(rl, b, ask->with_sender);

    if (granted < ask->need) {
        lease->blocked_until_ms = now + (wait > 0 ? wait : 1);
        return;
    }
    /* The lease ran out before it expired: demand is higher; grow it. */
    if (lease->size < cap)
        lease->size = lease->size * 2 < cap ? lease->size * 2 : cap;
    lease->tokens += granted;
    lease->usable_ms = now + wait;
    lease->expires_ms = lease->usable_ms + rl->lease_ms;
}

int ratelimit_take(struct ratelimit *rl, int64_t *wait_ms,
                   const struct ratelimit_bucket *b, unsigned segments,
                   char *errstr, size_t errstr_size)
{
    enum ratelimit_step step;
    struct ratelimit_ask ask;
    int64_t granted, wait, local_wait;

    /* *wait_ms is set only on success. */
    if (ratelimit_local(rl, &step, &local_wait, &ask, b, segments, errstr,
                        errstr_size) != 0)
        return -1;
    if (step == RL_ASK) {
        if (ratelimit_remote_take(rl, &granted, &wait, b, ask.with_sender,
                                  ask.want, ask.need, errstr, errstr_size) != 0)
            return -1;
        ratelimit_apply(rl, &ask, b, granted, wait);
        if (ratelimit_local(rl, &step, &local_wait, &ask, b, segments, errstr,
                            errstr_size) != 0)
            return -1;
    }
    /* RL_ASKING cannot happen without asynchronous asks. */
    *wait_ms = local_wait;
    return 0;
}

int ratelimit_take_begin(struct ratelimit *rl, enum ratelimit_step *step,
                         int64_t *wait_ms, struct ratelimit_ask *ask,
                         const struct ratelimit_bucket *b, unsigned segments,
                         char *errstr, size_t errstr_size)
{
    if (ratelimit_local(rl, step, wait_ms, ask, b, segments, errstr,
                        errstr_size) != 0)
        return -1;
    if (*step == RL_ASK)
        rl->leases[ask->lease].asking = true;
    return 0;
}

int ratelimit_ask_build(struct rargv *out, const char *prefix,
                        const struct ratelimit *rl,
                        const struct ratelimit_bucket *b,
                        const struct ratelimit_ask *ask, char *errstr,
                        size_t errstr_size)
{
    return ratelimit_args(out, prefix, rl, b, ask->with_sender, ask->want,
                          ask->need, errstr, errstr_size);
}

struct rconn_script *ratelimit_take_script(void)
{
    return &take_script;
}

int ratelimit_ask_done(struct ratelimit *rl, const struct ratelimit_ask *ask,
                       const struct ratelimit_bucket *b,
                       const redisReply *reply, char *errstr,
                       size_t errstr_size)
{
    int64_t granted, wait;

    rl->leases[ask->lease].asking = false;
    if (reply == NULL) {
        snprintf(errstr, errstr_size, "redis: no rate limit reply");
        return -1;
    }
    if (ratelimit_read(reply, &granted, &wait, errstr, errstr_size) != 0)
        return -1;
    ratelimit_apply(rl, ask, b, granted, wait);
    return 0;
}

int ratelimit_penalize(struct ratelimit *rl, const char *account,
                       int64_t for_ms, char *errstr, size_t errstr_size)
{
    char key[RCONN_KEY_MAX];
    char ms[24];
    const char *argv[2];
    redisReply *reply = NULL;
    int64_t now = ratelimit_now_ms();
    int ret = -1;

    if (for_ms < 1)
        for_ms = 1;
    if (rconn_key(key, sizeof(key), rl->rc, account, "penalty", NULL, errstr,
                  errstr_size) != 0)
        goto out;
    argv[0] = key;
    argv[1] = rconn_i64(ms, sizeof(ms), for_ms);
    if (rconn_eval(&reply, rl->rc, &penalize_script, 1, 2, argv, NULL, true,
                   errstr, errstr_size) != 0)
        goto out;
    for (size_t i = 0; i < rl->nleases; i++) {
        struct ratelimit_lease *lease = &rl->leases[i];
        if (strcmp(lease->account, account) != 0)
            continue;
        lease->tokens = 0;
        lease->size = 1;
        lease->blocked_until_ms = now + for_ms;
    }
    ret = 0;

out:
    freeReplyObject(reply);
    return ret;
}
