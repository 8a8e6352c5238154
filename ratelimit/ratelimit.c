/* ratelimit/ratelimit.c - token buckets in SMS segments, shared through
 * Redis, with local leases to save round trips.
 *
 * Bucket state is a hash {t = tokens, ts = Redis time in microseconds of
 * the last update}; an absent key is a full bucket, and each key expires
 * once it would have refilled, so idle accounts cost nothing. */
#include "ratelimit/ratelimit.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* KEYS: penalty, bucket [, bucket]. ARGV: want, need, then rate and burst
 * per bucket. Grants min(want, whole tokens in every bucket) when that is
 * at least `need`, else nothing; returns {granted, wait_ms, penalised}
 * where wait_ms is how long until `need` tokens will be there. */
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
        "local n = #KEYS - 1\n"
        "local tokens = {}\n"
        "local avail = want\n"
        "local wait = 0\n"
        "for i = 1, n do\n"
        "  local rate = tonumber(ARGV[1 + 2 * i])\n"
        "  local burst = tonumber(ARGV[2 + 2 * i])\n"
        "  local s = redis.call('HMGET', KEYS[i + 1], 't', 'ts')\n"
        "  local tk = tonumber(s[1])\n"
        "  local ts = tonumber(s[2])\n"
        "  if tk == nil or ts == nil then\n"
        "    tk = burst\n"
        "    ts = now\n"
        "  end\n"
        "  if now > ts then tk = tk + (now - ts) * rate / 1e6 end\n"
        "  if tk > burst then tk = burst end\n"
        "  tokens[i] = tk\n"
        "  if math.floor(tk) < avail then avail = math.floor(tk) end\n"
        "  if tk < need then\n"
        "    local w = (need - tk) * 1e6 / rate\n"
        "    if w > wait then wait = w end\n"
        "  end\n"
        "end\n"
        "if avail < need then\n"
        "  return {0, math.max(1, math.ceil(wait / 1000)), 0}\n"
        "end\n"
        "for i = 1, n do\n"
        "  local rate = tonumber(ARGV[1 + 2 * i])\n"
        "  local burst = tonumber(ARGV[2 + 2 * i])\n"
        "  local tk = tokens[i] - avail\n"
        "  redis.call('HSET', KEYS[i + 1], 't', string.format('%.17g', tk),\n"
        "             'ts', string.format('%d', now))\n"
        "  redis.call('PEXPIRE', KEYS[i + 1],\n"
        "             math.ceil((burst - tk) * 1000 / rate) + 1000)\n"
        "end\n"
        "return {avail, 0, 0}\n",
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
    int64_t tokens;           /* leased and not yet used */
    int64_t expires_ms;       /* monotonic; tokens are dropped after it */
    int64_t blocked_until_ms; /* monotonic; refused until then */
    int64_t size;             /* the next lease asks for this many */
};

struct ratelimit {
    struct rconn *rc;               /* borrowed */
    int lease_ms;                   /* lease lifetime */
    int64_t max_lease;              /* tokens per round trip at most */
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

/* Asks Redis for between `need` and `want` tokens. */
static int ratelimit_remote_take(struct ratelimit *rl, int64_t *granted,
                                 int64_t *wait_ms,
                                 const struct ratelimit_bucket *b,
                                 bool with_sender, int64_t want, int64_t need,
                                 char *errstr, size_t errstr_size)
{
    char keys[3][RCONN_KEY_MAX];
    char nums[6][32];
    const char *argv[9];
    redisReply *reply = NULL;
    int nkeys = with_sender ? 3 : 2;
    int argc = 0;
    int ret = -1;

    if (rconn_key(keys[0], sizeof(keys[0]), rl->rc, b->account, "penalty", NULL,
                  errstr, errstr_size) != 0 ||
        rconn_key(keys[1], sizeof(keys[1]), rl->rc, b->account, "tb", NULL,
                  errstr, errstr_size) != 0)
        goto out;
    if (with_sender &&
        rconn_key(keys[2], sizeof(keys[2]), rl->rc, b->account, "tb:sender",
                  b->sender, errstr, errstr_size) != 0)
        goto out;
    for (int i = 0; i < nkeys; i++)
        argv[argc++] = keys[i];
    snprintf(nums[0], sizeof(nums[0]), "%lld", (long long)want);
    snprintf(nums[1], sizeof(nums[1]), "%lld", (long long)need);
    snprintf(nums[2], sizeof(nums[2]), "%.17g", b->per_second);
    snprintf(nums[3], sizeof(nums[3]), "%.17g", b->burst);
    snprintf(nums[4], sizeof(nums[4]), "%.17g", b->sender_per_second);
    snprintf(nums[5], sizeof(nums[5]), "%.17g", b->sender_burst);
    for (int i = 0; i < (with_sender ? 6 : 4); i++)
        argv[argc++] = nums[i];

    /* Repeating a take whose reply was lost wastes tokens but never
     * over-admits, so it may be repeated. */
    if (rconn_eval(&reply, rl->rc, &take_script, nkeys, argc, argv, NULL, true,
                   errstr, errstr_size) != 0)
        goto out;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        rconn_reply_i64(granted, reply->element[0]) != 0 ||
        rconn_reply_i64(wait_ms, reply->element[1]) != 0) {
        snprintf(errstr, errstr_size, "redis: unexpected rate limit reply");
        goto out;
    }
    ret = 0;

out:
    freeReplyObject(reply);
    return ret;
}

int ratelimit_take(struct ratelimit *rl, int64_t *wait_ms,
                   const struct ratelimit_bucket *b, unsigned segments,
                   char *errstr, size_t errstr_size)
{
    bool with_sender = b->sender != NULL && b->sender_per_second > 0;
    struct ratelimit_lease *lease;
    int64_t now = ratelimit_now_ms();
    int64_t need, want, cap, granted, wait;

    if (segments == 0 || b->per_second <= 0 || segments > b->burst ||
        (with_sender && segments > b->sender_burst)) {
        snprintf(errstr, errstr_size,
                 "cannot take %u segments: rate must be "
                 "positive and a message must fit in the burst",
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
        lease->tokens -= segments;
        *wait_ms = 0;
        return 0;
    }
    if (now < lease->blocked_until_ms) {
        *wait_ms = lease->blocked_until_ms - now;
        return 0;
    }

    /* The leftover is spent on this message now; Redis gives the rest. */
    need = segments - lease->tokens;
    cap = ratelimit_bucket_cap(b->per_second, b->burst, rl->lease_ms);
    if (with_sender) {
        int64_t scap = ratelimit_bucket_cap(b->sender_per_second,
                                            b->sender_burst, rl->lease_ms);
        if (scap < cap)
            cap = scap;
    }
    if (cap > rl->max_lease)
        cap = rl->max_lease;
    want = lease->size < cap ? lease->size : cap;
    if (want < need)
        want = need;
    if (ratelimit_remote_take(rl, &granted, &wait, b, with_sender, want, need,
                              errstr, errstr_size) != 0)
        return -1;
    if (granted < need) {
        lease->blocked_until_ms = now + wait;
        *wait_ms = wait > 0 ? wait : 1;
        return 0;
    }
    /* Ran out before expiry: demand is higher than the lease; grow it. */
    if (lease->size < cap)
        lease->size *= 2;
    lease->tokens = granted - need;
    lease->expires_ms = now + rl->lease_ms;
    *wait_ms = 0;
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
