/* ratelimit/marker.c - send-once markers and monotonic recipient states.
 *
 * A marker value is "i<ms>" (in flight since that Redis time, Unix ms) or
 * "d<outcome>" (done). A state value is the CONTRACT state name. */
#include "ratelimit/marker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* KEYS: markers, cxjob [, cxcamp]. ARGV: stale_ms, ttl_ms, recipients...
 * Returns {code, outcome, ...} with the codes of enum marker_begin_result. */
static struct rconn_script begin_script = {
    .src = "local cx = redis.call('EXISTS', KEYS[2]) == 1 or\n"
           "  (KEYS[3] ~= nil and redis.call('EXISTS', KEYS[3]) == 1)\n"
           "local t = redis.call('TIME')\n"
           "local now = tonumber(t[1]) * 1000 + "
           "math.floor(tonumber(t[2]) / 1000)\n"
           "local stale = tonumber(ARGV[1])\n"
           "local out = {}\n"
           "local wrote = false\n"
           "for i = 3, #ARGV do\n"
           "  local v = redis.call('HGET', KEYS[1], ARGV[i])\n"
           "  local code = 0\n"
           "  local outcome = ''\n"
           "  if v and string.sub(v, 1, 1) == 'd' then\n"
           "    code = 3\n"
           "    outcome = string.sub(v, 2)\n"
           "  elseif cx then\n"
           "    code = 4\n"
           "  elseif v and now - tonumber(string.sub(v, 2)) < stale then\n"
           "    code = 1\n"
           "  else\n"
           "    if v then code = 2 end\n"
           "    redis.call('HSET', KEYS[1], ARGV[i], 'i' .. now)\n"
           "    wrote = true\n"
           "  end\n"
           "  out[#out + 1] = code\n"
           "  out[#out + 1] = outcome\n"
           "end\n"
           "if wrote then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end\n"
           "return out\n",
};

/* KEYS: markers, states. ARGV: ttl_ms, then per item: recipient, op
 * ("k", "d", "c"), outcome, state ("" for none). Returns one number per
 * item: 1 when its state advanced, 2 when it already was that state, 0
 * otherwise. */
static struct rconn_script update_script = {
    .src = "local rank = {accepted = 1, scheduled = 2, retrying = 3,\n"
           "  submitted = 4, unknown = 5, delivered = 6, failed = 6,\n"
           "  rejected = 6, cancelled = 6}\n"
           "for i = 2, #ARGV, 4 do\n"
           "  local st = ARGV[i + 3]\n"
           "  if st ~= '' and rank[st] == nil then\n"
           "    return redis.error_reply('unknown state ' .. st)\n"
           "  end\n"
           "end\n"
           "local out = {}\n"
           "local mk, sw = false, false\n"
           "for i = 2, #ARGV, 4 do\n"
           "  local r, op, st = ARGV[i], ARGV[i + 1], ARGV[i + 3]\n"
           "  if op == 'd' then\n"
           "    redis.call('HSET', KEYS[1], r, 'd' .. ARGV[i + 2])\n"
           "    mk = true\n"
           "  elseif op == 'c' then\n"
           "    redis.call('HDEL', KEYS[1], r)\n"
           "  end\n"
           "  local adv = 0\n"
           "  if st ~= '' then\n"
           "    local cur = redis.call('HGET', KEYS[2], r)\n"
           "    local old = cur and rank[cur] or 0\n"
           "    if rank[st] > old or\n"
           "       (st == 'retrying' and cur == 'retrying') then\n"
           "      redis.call('HSET', KEYS[2], r, st)\n"
           "      adv = 1\n"
           "      sw = true\n"
           "    elseif cur == st then\n"
           "      adv = 2\n"
           "    end\n"
           "  end\n"
           "  out[#out + 1] = adv\n"
           "end\n"
           "if mk then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end\n"
           "if sw then redis.call('PEXPIRE', KEYS[2], ARGV[1]) end\n"
           "return out\n",
};

struct marker {
    struct rconn *rc; /* borrowed */
};

int marker_new(struct marker **out, struct rconn *rc, char *errstr,
               size_t errstr_size)
{
    struct marker *m;

    (void)errstr;
    (void)errstr_size;
    m = calloc(1, sizeof(*m));
    if (m == NULL)
        abort();
    m->rc = rc;
    *out = m;
    return 0;
}

void marker_free(struct marker *m)
{
    free(m);
}

int marker_state_rank(const char *state)
{
    static const struct {
        const char *name;
        int rank;
    } ranks[] = {
        {"accepted", 1},  {"scheduled", 2}, {"retrying", 3},
        {"submitted", 4}, {"unknown", 5},   {"delivered", 6},
        {"failed", 6},    {"rejected", 6},  {"cancelled", 6},
    };

    for (size_t i = 0; i < sizeof(ranks) / sizeof(ranks[0]); i++) {
        if (strcmp(state, ranks[i].name) == 0)
            return ranks[i].rank;
    }
    return 0;
}

/* Allocates argv/argvlen arrays for `n` arguments. */
static void marker_args_alloc(const char ***argv, size_t **argvlen, size_t n)
{
    *argv = calloc(n, sizeof(**argv));
    *argvlen = calloc(n, sizeof(**argvlen));
    if (*argv == NULL || *argvlen == NULL)
        abort();
}

int marker_begin(struct marker *m, const char *account, const char *job_id,
                 const char *campaign_id, struct marker_begin_item *items,
                 size_t n, int64_t stale_ms, char *errstr, size_t errstr_size)
{
    char keys[3][RCONN_KEY_MAX];
    char stale[24], ttl[24];
    const char **argv = NULL;
    size_t *argvlen = NULL;
    redisReply *reply = NULL;
    int nkeys = campaign_id != NULL ? 3 : 2;
    size_t argc = 0;
    int ret = -1;

    for (size_t i = 0; i < n; i++)
        items[i].outcome = NULL;
    if (n == 0)
        return 0;
    if (rconn_key(keys[0], RCONN_KEY_MAX, m->rc, account, "mk", job_id, errstr,
                  errstr_size) != 0 ||
        rconn_key(keys[1], RCONN_KEY_MAX, m->rc, account, "cx:job", job_id,
                  errstr, errstr_size) != 0)
        goto out;
    if (campaign_id != NULL &&
        rconn_key(keys[2], RCONN_KEY_MAX, m->rc, account, "cx:camp",
                  campaign_id, errstr, errstr_size) != 0)
        goto out;
    marker_args_alloc(&argv, &argvlen, (size_t)nkeys + 2 + n);
    for (int i = 0; i < nkeys; i++)
        argv[argc++] = keys[i];
    argv[argc++] = rconn_i64(stale, sizeof(stale), stale_ms);
    argv[argc++] = rconn_i64(ttl, sizeof(ttl), MARKER_TTL_MS);
    for (size_t i = 0; i < n; i++)
        argv[argc++] = items[i].recipient;
    for (size_t i = 0; i < argc; i++)
        argvlen[i] = strlen(argv[i]);
    /* Not repeated on a lost reply: the repeat would find its own marks
     * and answer MARKER_BUSY. The caller retries later instead. */
    if (rconn_eval(&reply, m->rc, &begin_script, nkeys, (int)argc, argv,
                   argvlen, false, errstr, errstr_size) != 0)
        goto out;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 * n) {
        snprintf(errstr, errstr_size, "redis: unexpected marker reply");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const redisReply *o = reply->element[2 * i + 1];
        int64_t code;
        if (rconn_reply_i64(&code, reply->element[2 * i]) != 0 || code < 0 ||
            code > MARKER_CANCELLED || o->type != REDIS_REPLY_STRING) {
            snprintf(errstr, errstr_size, "redis: unexpected marker reply");
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const redisReply *o = reply->element[2 * i + 1];
        int64_t code = reply->element[2 * i]->integer;
        items[i].result = (enum marker_begin_result)code;
        items[i].outcome_len = 0;
        if (items[i].result != MARKER_DONE)
            continue;
        items[i].outcome = malloc(o->len + 1);
        if (items[i].outcome == NULL)
            abort();
        memcpy(items[i].outcome, o->str, o->len);
        items[i].outcome[o->len] = '\0';
        items[i].outcome_len = o->len;
    }
    ret = 0;

out:
    freeReplyObject(reply);
    free(argv);
    free(argvlen);
    return ret;
}

void marker_begin_cleanup(struct marker_begin_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(items[i].outcome);
        items[i].outcome = NULL;
    }
}

int marker_update(struct marker *m, const char *account, const char *job_id,
                  struct marker_update_item *items, size_t n, char *errstr,
                  size_t errstr_size)
{
    static const char *const ops[] = {"k", "d", "c"};
    char keys[2][RCONN_KEY_MAX];
    char ttl[24];
    const char **argv = NULL;
    size_t *argvlen = NULL;
    redisReply *reply = NULL;
    size_t argc = 0;
    int ret = -1;

    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (items[i].state != NULL && marker_state_rank(items[i].state) == 0) {
            snprintf(errstr, errstr_size, "unknown state \"%.40s\"",
                     items[i].state);
            return -1;
        }
    }
    if (rconn_key(keys[0], RCONN_KEY_MAX, m->rc, account, "mk", job_id, errstr,
                  errstr_size) != 0 ||
        rconn_key(keys[1], RCONN_KEY_MAX, m->rc, account, "st", job_id, errstr,
                  errstr_size) != 0)
        goto out;
    marker_args_alloc(&argv, &argvlen, 3 + 4 * n);
    argv[argc++] = keys[0];
    argv[argc++] = keys[1];
    argv[argc++] = rconn_i64(ttl, sizeof(ttl), MARKER_TTL_MS);
    for (size_t i = 0; i < n; i++) {
        argv[argc++] = items[i].recipient;
        argv[argc++] = ops[items[i].op];
        argv[argc] = items[i].op == MARKER_OP_DONE ? items[i].outcome : "";
        argvlen[argc] =
            items[i].op == MARKER_OP_DONE ? items[i].outcome_len : 0;
        argc++;
        argv[argc++] = items[i].state != NULL ? items[i].state : "";
    }
    for (size_t i = 0; i < argc; i++) {
        if (i < 3 || (i - 3) % 4 != 2)
            argvlen[i] = strlen(argv[i]);
    }
    /* Not repeated on a lost reply: a second run would find the states
     * already advanced and report `advanced` false, hiding events. */
    if (rconn_eval(&reply, m->rc, &update_script, 2, (int)argc, argv, argvlen,
                   false, errstr, errstr_size) != 0)
        goto out;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != n) {
        snprintf(errstr, errstr_size, "redis: unexpected marker reply");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        int64_t adv;
        if (rconn_reply_i64(&adv, reply->element[i]) != 0) {
            snprintf(errstr, errstr_size, "redis: unexpected marker reply");
            goto out;
        }
        items[i].advanced = adv == 1;
        items[i].repeated = adv == 2;
    }
    ret = 0;

out:
    freeReplyObject(reply);
    free(argv);
    free(argvlen);
    return ret;
}
