/* ratelimit/sched.c - scheduled sends and delayed retries, kept in Redis.
 *
 * Keys of one account A (prefix P), all in A's hash slot:
 *     P:{A}:sched:due         zset  id -> due time (Unix ms)
 *     P:{A}:sched:lease       zset  id -> lease end (Unix ms)
 *     P:{A}:sched:data        hash  id -> payload
 *     P:{A}:sched:tok         hash  id -> current claim token
 *     P:{A}:sched:seq         counter the tokens come from
 *     P:{A}:sched:done:<id>   acked id, expires after SCHED_DONE_TTL_MS
 *     P:{A}:sched:job:<job>   set of entry ids of a job (cancel index)
 *     P:{A}:sched:camp:<c>    set of entry ids of a campaign
 *     P:{A}:cx:job:<job>      "cancelled" marker, SCHED_MARKER_TTL_MS
 *     P:{A}:cx:camp:<c>       "cancelled" marker
 * An entry is stored when it has a payload in `data`; it is due when in
 * `due` and leased when in `lease`. Every script names all keys it touches
 * (Redis Cluster rule). */
#include "ratelimit/sched.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* KEYS: due, data, done, jobidx, cxjob [, campidx, cxcamp].
 * ARGV: id, due_ms, payload, index_ttl_ms.
 * Returns 0 added, 1 exists, 2 cancelled. */
static struct rconn_script add_script = {
    .src = "if redis.call('EXISTS', KEYS[5]) == 1 or\n"
           "   (KEYS[7] and redis.call('EXISTS', KEYS[7]) == 1) then\n"
           "  return 2\n"
           "end\n"
           "if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 or\n"
           "   redis.call('EXISTS', KEYS[3]) == 1 then\n"
           "  return 1\n"
           "end\n"
           "redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])\n"
           "redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])\n"
           "local ttl = tonumber(ARGV[4])\n"
           "for _, k in ipairs({KEYS[4], KEYS[6]}) do\n"
           "  redis.call('SADD', k, ARGV[1])\n"
           "  if redis.call('PTTL', k) < ttl then\n"
           "    redis.call('PEXPIRE', k, ttl)\n"
           "  end\n"
           "end\n"
           "return 0\n",
};

/* KEYS: due, lease, data, tok, seq. ARGV: max, lease_ms, ahead_ms.
 * Returns {id, token, payload, ...}: expired leases first, then entries due
 * within ahead_ms, earliest first. */
static struct rconn_script claim_script = {
    .src = "local t = redis.call('TIME')\n"
           "local now = tonumber(t[1]) * 1000 + "
           "math.floor(tonumber(t[2]) / 1000)\n"
           "local max = tonumber(ARGV[1])\n"
           "local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now,\n"
           "                       'LIMIT', 0, max)\n"
           "if #ids < max then\n"
           "  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf',\n"
           "                         now + tonumber(ARGV[3]),\n"
           "                         'LIMIT', 0, max - #ids)\n"
           "  for _, id in ipairs(due) do ids[#ids + 1] = id end\n"
           "end\n"
           "local out = {}\n"
           "local lease_end = now + tonumber(ARGV[2])\n"
           "for _, id in ipairs(ids) do\n"
           "  local p = redis.call('HGET', KEYS[3], id)\n"
           "  redis.call('ZREM', KEYS[1], id)\n"
           "  if p then\n"
           "    local tok = tostring(redis.call('INCR', KEYS[5]))\n"
           "    redis.call('ZADD', KEYS[2], lease_end, id)\n"
           "    redis.call('HSET', KEYS[4], id, tok)\n"
           "    out[#out + 1] = id\n"
           "    out[#out + 1] = tok\n"
           "    out[#out + 1] = p\n"
           "  else\n"
           "    redis.call('ZREM', KEYS[2], id)\n"
           "    redis.call('HDEL', KEYS[4], id)\n"
           "  end\n"
           "end\n"
           "return out\n",
};

/* KEYS: lease, data, tok, done. ARGV: id, token, done_ttl_ms. */
static struct rconn_script ack_script = {
    .src = "if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then\n"
           "  return 0\n"
           "end\n"
           "redis.call('ZREM', KEYS[1], ARGV[1])\n"
           "redis.call('HDEL', KEYS[2], ARGV[1])\n"
           "redis.call('HDEL', KEYS[3], ARGV[1])\n"
           "redis.call('SET', KEYS[4], '1', 'PX', ARGV[3])\n"
           "return 1\n",
};

/* KEYS: lease, tok. ARGV: id, token, lease_ms. */
static struct rconn_script extend_script = {
    .src = "if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then\n"
           "  return 0\n"
           "end\n"
           "local t = redis.call('TIME')\n"
           "local now = tonumber(t[1]) * 1000 + "
           "math.floor(tonumber(t[2]) / 1000)\n"
           "redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])\n"
           "return 1\n",
};

/* KEYS: lease, tok. ARGV: lease_ms, then id, token pairs. Returns how many
 * were still held (their leases extended). */
static struct rconn_script extend_many_script = {
    .src = "local t = redis.call('TIME')\n"
           "local now = tonumber(t[1]) * 1000 + "
           "math.floor(tonumber(t[2]) / 1000)\n"
           "local held = 0\n"
           "for i = 2, #ARGV, 2 do\n"
           "  if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[i + 1] then\n"
           "    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), "
           "ARGV[i])\n"
           "    held = held + 1\n"
           "  end\n"
           "end\n"
           "return held\n",
};

/* KEYS: due, lease, data, tok. ARGV: id, token, due_ms [, payload]. */
static struct rconn_script retry_script = {
    .src = "if redis.call('HGET', KEYS[4], ARGV[1]) ~= ARGV[2] then\n"
           "  return 0\n"
           "end\n"
           "redis.call('ZREM', KEYS[2], ARGV[1])\n"
           "redis.call('HDEL', KEYS[4], ARGV[1])\n"
           "if ARGV[4] then redis.call('HSET', KEYS[3], ARGV[1], ARGV[4]) "
           "end\n"
           "redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])\n"
           "return 1\n",
};

/* KEYS: due, lease, data, tok, index, marker. ARGV: marker_ttl_ms.
 * Returns the removed stored entries as id, payload, id, payload, ... */
static struct rconn_script cancel_script = {
    .src = "local out = {}\n"
           "for _, id in ipairs(redis.call('SMEMBERS', KEYS[5])) do\n"
           "  local p = redis.call('HGET', KEYS[3], id)\n"
           "  if p then\n"
           "    out[#out + 1] = id\n"
           "    out[#out + 1] = p\n"
           "  end\n"
           "  redis.call('HDEL', KEYS[3], id)\n"
           "  redis.call('ZREM', KEYS[1], id)\n"
           "  redis.call('ZREM', KEYS[2], id)\n"
           "  redis.call('HDEL', KEYS[4], id)\n"
           "end\n"
           "redis.call('DEL', KEYS[5])\n"
           "redis.call('SET', KEYS[6], '1', 'PX', ARGV[1])\n"
           "return out\n",
};

struct sched {
    struct rconn *rc; /* borrowed */
};

/* The four keys most scripts share. */
enum { SCHED_DUE, SCHED_LEASE, SCHED_DATA, SCHED_TOK, SCHED_NKEYS };

static int sched_keys(char keys[][RCONN_KEY_MAX], const struct sched *s,
                      const char *account, char *errstr, size_t errstr_size)
{
    static const char *const kinds[SCHED_NKEYS] = {"sched:due", "sched:lease",
                                                   "sched:data", "sched:tok"};

    for (int i = 0; i < SCHED_NKEYS; i++) {
        if (rconn_key(keys[i], RCONN_KEY_MAX, s->rc, account, kinds[i], NULL,
                      errstr, errstr_size) != 0)
            return -1;
    }
    return 0;
}

static int64_t sched_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sched_new(struct sched **out, struct rconn *rc, char *errstr,
              size_t errstr_size)
{
    struct sched *s;

    (void)errstr;
    (void)errstr_size;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        abort();
    s->rc = rc;
    *out = s;
    return 0;
}

void sched_free(struct sched *s)
{
    free(s);
}

/* Runs a script that answers one integer. */
static int sched_eval_i64(int64_t *out, struct sched *s,
                          struct rconn_script *script, int nkeys, int argc,
                          const char **argv, const size_t *argvlen,
                          char *errstr, size_t errstr_size)
{
    redisReply *reply = NULL;
    int ret = -1;

    /* Every sched script is safe to run twice: a token check or a set
     * operation makes the second run a no-op. */
    if (rconn_eval(&reply, s->rc, script, nkeys, argc, argv, argvlen, true,
                   errstr, errstr_size) != 0)
        goto out;
    if (rconn_reply_i64(out, reply) != 0) {
        snprintf(errstr, errstr_size, "redis: unexpected scheduler reply");
        goto out;
    }
    ret = 0;

out:
    freeReplyObject(reply);
    return ret;
}

int sched_add(enum sched_added *out, struct sched *s, const char *account,
              const char *id, const char *job_id, const char *campaign_id,
              int64_t due_ms, const void *payload, size_t payload_len,
              char *errstr, size_t errstr_size)
{
    char keys[7][RCONN_KEY_MAX];
    char due[24], ttl[24];
    const char *argv[11];
    size_t argvlen[11];
    int nkeys = campaign_id != NULL ? 7 : 5;
    int64_t now = sched_wall_ms();
    int64_t index_ttl = (due_ms > now ? due_ms - now : 0) + SCHED_MARKER_TTL_MS;
    int64_t code;

    /* Slots: due, data, done, jobidx, cxjob, campidx, cxcamp. */
    if (rconn_key(keys[0], RCONN_KEY_MAX, s->rc, account, "sched:due", NULL,
                  errstr, errstr_size) != 0 ||
        rconn_key(keys[1], RCONN_KEY_MAX, s->rc, account, "sched:data", NULL,
                  errstr, errstr_size) != 0 ||
        rconn_key(keys[2], RCONN_KEY_MAX, s->rc, account, "sched:done", id,
                  errstr, errstr_size) != 0 ||
        rconn_key(keys[3], RCONN_KEY_MAX, s->rc, account, "sched:job", job_id,
                  errstr, errstr_size) != 0 ||
        rconn_key(keys[4], RCONN_KEY_MAX, s->rc, account, "cx:job", job_id,
                  errstr, errstr_size) != 0)
        return -1;
    if (campaign_id != NULL &&
        (rconn_key(keys[5], RCONN_KEY_MAX, s->rc, account, "sched:camp",
                   campaign_id, errstr, errstr_size) != 0 ||
         rconn_key(keys[6], RCONN_KEY_MAX, s->rc, account, "cx:camp",
                   campaign_id, errstr, errstr_size) != 0))
        return -1;
    for (int i = 0; i < nkeys; i++) {
        argv[i] = keys[i];
        argvlen[i] = strlen(keys[i]);
    }
    argv[nkeys] = id;
    argv[nkeys + 1] = rconn_i64(due, sizeof(due), due_ms);
    argv[nkeys + 2] = payload;
    argv[nkeys + 3] = rconn_i64(ttl, sizeof(ttl), index_ttl);
    for (int i = nkeys; i < nkeys + 4; i++)
        argvlen[i] = strlen(argv[i]);
    argvlen[nkeys + 2] = payload_len;
    if (sched_eval_i64(&code, s, &add_script, nkeys, nkeys + 4, argv, argvlen,
                       errstr, errstr_size) != 0)
        return -1;
    *out = code == 0 ? SCHED_ADDED : code == 1 ? SCHED_EXISTS : SCHED_CANCELLED;
    return 0;
}

static char *sched_dup(const char *p, size_t len)
{
    char *s = malloc(len + 1);

    if (s == NULL)
        abort();
    memcpy(s, p, len);
    s[len] = '\0';
    return s;
}

int sched_claim(struct sched_entries *out, struct sched *s, const char *account,
                size_t max, int64_t lease_ms, int64_t ahead_ms, char *errstr,
                size_t errstr_size)
{
    char keys[SCHED_NKEYS + 1][RCONN_KEY_MAX];
    char max_buf[24], lease_buf[24], ahead_buf[24];
    const char *argv[SCHED_NKEYS + 4];
    redisReply *reply = NULL;
    struct sched_entries entries = {NULL, 0};
    int ret = -1;

    out->v = NULL;
    out->n = 0;
    if (max == 0)
        return 0;
    if (sched_keys(keys, s, account, errstr, errstr_size) != 0 ||
        rconn_key(keys[SCHED_NKEYS], RCONN_KEY_MAX, s->rc, account, "sched:seq",
                  NULL, errstr, errstr_size) != 0)
        goto out;
    for (int i = 0; i <= SCHED_NKEYS; i++)
        argv[i] = keys[i];
    argv[SCHED_NKEYS + 1] = rconn_i64(max_buf, sizeof(max_buf), (int64_t)max);
    argv[SCHED_NKEYS + 2] = rconn_i64(lease_buf, sizeof(lease_buf), lease_ms);
    argv[SCHED_NKEYS + 3] = rconn_i64(ahead_buf, sizeof(ahead_buf), ahead_ms);
    /* A claim whose reply is lost leaves its entries leased to nobody; they
     * come back when the lease ends, so repeating is safe. */
    if (rconn_eval(&reply, s->rc, &claim_script, SCHED_NKEYS + 1,
                   SCHED_NKEYS + 4, argv, NULL, true, errstr, errstr_size) != 0)
        goto out;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements % 3 != 0) {
        snprintf(errstr, errstr_size, "redis: unexpected claim reply");
        goto out;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        if (reply->element[i]->type != REDIS_REPLY_STRING) {
            snprintf(errstr, errstr_size, "redis: unexpected claim reply");
            goto out;
        }
    }
    entries.n = reply->elements / 3;
    if (entries.n == 0) {
        ret = 0;
        goto out;
    }
    entries.v = calloc(entries.n, sizeof(*entries.v));
    if (entries.v == NULL)
        abort();
    for (size_t i = 0; i < entries.n; i++) {
        redisReply **e = &reply->element[i * 3];
        entries.v[i].id = sched_dup(e[0]->str, e[0]->len);
        entries.v[i].token = sched_dup(e[1]->str, e[1]->len);
        entries.v[i].payload = sched_dup(e[2]->str, e[2]->len);
        entries.v[i].payload_len = e[2]->len;
    }
    *out = entries;
    entries.v = NULL;
    entries.n = 0;
    ret = 0;

out:
    sched_entries_cleanup(&entries);
    freeReplyObject(reply);
    return ret;
}

void sched_entries_cleanup(struct sched_entries *entries)
{
    for (size_t i = 0; i < entries->n; i++) {
        free(entries->v[i].id);
        free(entries->v[i].token);
        free(entries->v[i].payload);
    }
    free(entries->v);
    entries->v = NULL;
    entries->n = 0;
}

_Static_assert(SCHED_NKEYS == 4, "struct sched_ack_call holds the keys");

int sched_ack_call(struct sched_ack_call *c, struct sched *s,
                   const char *account, const char *id, const char *token,
                   char *errstr, size_t errstr_size)
{
    if (sched_keys(c->keys, s, account, errstr, errstr_size) != 0 ||
        rconn_key(c->done, sizeof(c->done), s->rc, account, "sched:done", id,
                  errstr, errstr_size) != 0)
        return -1;
    const char *argv[SCHED_ACK_ARGC] = {
        c->keys[SCHED_LEASE],
        c->keys[SCHED_DATA],
        c->keys[SCHED_TOK],
        c->done,
        id,
        token,
        rconn_i64(c->ttl, sizeof(c->ttl), SCHED_DONE_TTL_MS)};
    memcpy(c->argv, argv, sizeof(argv));
    return 0;
}

struct rconn_script *sched_ack_script(void)
{
    return &ack_script;
}

int sched_ack(bool *held, struct sched *s, const char *account, const char *id,
              const char *token, char *errstr, size_t errstr_size)
{
    struct sched_ack_call c;
    int64_t code;

    if (sched_ack_call(&c, s, account, id, token, errstr, errstr_size) != 0)
        return -1;
    if (sched_eval_i64(&code, s, &ack_script, SCHED_ACK_NKEYS, SCHED_ACK_ARGC,
                       c.argv, NULL, errstr, errstr_size) != 0)
        return -1;
    *held = code == 1;
    return 0;
}

int sched_extend(bool *held, struct sched *s, const char *account,
                 const char *id, const char *token, int64_t lease_ms,
                 char *errstr, size_t errstr_size)
{
    char keys[SCHED_NKEYS][RCONN_KEY_MAX];
    char lease[24];
    int64_t code;

    if (sched_keys(keys, s, account, errstr, errstr_size) != 0)
        return -1;
    const char *argv[] = {keys[SCHED_LEASE], keys[SCHED_TOK], id, token,
                          rconn_i64(lease, sizeof(lease), lease_ms)};
    if (sched_eval_i64(&code, s, &extend_script, 2, 5, argv, NULL, errstr,
                       errstr_size) != 0)
        return -1;
    *held = code == 1;
    return 0;
}

int sched_extend_many(size_t *held, struct sched *s, const char *account,
                      const char *const *ids, const char *const *tokens,
                      size_t n, int64_t lease_ms, char *errstr,
                      size_t errstr_size)
{
    char keys[SCHED_NKEYS][RCONN_KEY_MAX];
    char lease[24];
    const char **argv = NULL;
    int64_t code;
    int ret = -1;

    *held = 0;
    if (n == 0)
        return 0;
    if (sched_keys(keys, s, account, errstr, errstr_size) != 0)
        return -1;
    argv = malloc(sizeof(*argv) * (3 + 2 * n));
    if (argv == NULL)
        abort();
    argv[0] = keys[SCHED_LEASE];
    argv[1] = keys[SCHED_TOK];
    argv[2] = rconn_i64(lease, sizeof(lease), lease_ms);
    for (size_t i = 0; i < n; i++) {
        argv[3 + 2 * i] = ids[i];
        argv[4 + 2 * i] = tokens[i];
    }
    if (sched_eval_i64(&code, s, &extend_many_script, 2, (int)(3 + 2 * n), argv,
                       NULL, errstr, errstr_size) != 0)
        goto out;
    *held = (size_t)code;
    ret = 0;

out:
    free(argv);
    return ret;
}

int sched_retry(bool *held, struct sched *s, const char *account,
                const char *id, const char *token, int64_t due_ms,
                const void *payload, size_t payload_len, char *errstr,
                size_t errstr_size)
{
    char keys[SCHED_NKEYS][RCONN_KEY_MAX];
    char due[24];
    int64_t code;

    if (sched_keys(keys, s, account, errstr, errstr_size) != 0)
        return -1;
    const char *argv[] = {keys[SCHED_DUE],
                          keys[SCHED_LEASE],
                          keys[SCHED_DATA],
                          keys[SCHED_TOK],
                          id,
                          token,
                          rconn_i64(due, sizeof(due), due_ms),
                          payload};
    size_t argvlen[8];
    for (int i = 0; i < 7; i++)
        argvlen[i] = strlen(argv[i]);
    argvlen[7] = payload_len;
    if (sched_eval_i64(&code, s, &retry_script, 4, payload != NULL ? 8 : 7,
                       argv, argvlen, errstr, errstr_size) != 0)
        return -1;
    *held = code == 1;
    return 0;
}

int sched_cancel_take(struct sched_entries *out, struct sched *s,
                      const char *account, const char *job_id, bool campaign,
                      char *errstr, size_t errstr_size)
{
    char keys[SCHED_NKEYS + 2][RCONN_KEY_MAX];
    char ttl[24];
    const char *argv[SCHED_NKEYS + 3];
    redisReply *reply = NULL;

    out->v = NULL;
    out->n = 0;
    if (sched_keys(keys, s, account, errstr, errstr_size) != 0 ||
        rconn_key(keys[SCHED_NKEYS], RCONN_KEY_MAX, s->rc, account,
                  campaign ? "sched:camp" : "sched:job", job_id, errstr,
                  errstr_size) != 0 ||
        rconn_key(keys[SCHED_NKEYS + 1], RCONN_KEY_MAX, s->rc, account,
                  campaign ? "cx:camp" : "cx:job", job_id, errstr,
                  errstr_size) != 0)
        return -1;
    for (int i = 0; i < SCHED_NKEYS + 2; i++)
        argv[i] = keys[i];
    argv[SCHED_NKEYS + 2] = rconn_i64(ttl, sizeof(ttl), SCHED_MARKER_TTL_MS);
    /* Run twice (a lost reply), the second run finds nothing to return:
     * the entries are gone either way. */
    if (rconn_eval(&reply, s->rc, &cancel_script, SCHED_NKEYS + 2,
                   SCHED_NKEYS + 3, argv, NULL, true, errstr, errstr_size) != 0)
        return -1;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements % 2 != 0) {
        freeReplyObject(reply);
        snprintf(errstr, errstr_size, "redis: unexpected cancel reply");
        return -1;
    }
    size_t n = reply->elements / 2;
    out->v = calloc(n > 0 ? n : 1, sizeof(*out->v));
    if (out->v == NULL)
        abort();
    for (size_t i = 0; i < n; i++) {
        const redisReply *id = reply->element[2 * i];
        const redisReply *p = reply->element[2 * i + 1];
        if (id->type != REDIS_REPLY_STRING || p->type != REDIS_REPLY_STRING)
            continue;
        struct sched_entry *e = &out->v[out->n++];
        e->id = malloc(id->len + 1);
        e->payload = malloc(p->len + 1);
        if (e->id == NULL || e->payload == NULL)
            abort();
        memcpy(e->id, id->str, id->len);
        e->id[id->len] = '\0';
        memcpy(e->payload, p->str, p->len);
        e->payload[p->len] = '\0';
        e->payload_len = p->len;
    }
    freeReplyObject(reply);
    return 0;
}

int sched_cancel(size_t *removed, struct sched *s, const char *account,
                 const char *job_id, bool campaign, char *errstr,
                 size_t errstr_size)
{
    struct sched_entries taken;

    if (sched_cancel_take(&taken, s, account, job_id, campaign, errstr,
                          errstr_size) != 0)
        return -1;
    *removed = taken.n;
    sched_entries_cleanup(&taken);
    return 0;
}

int sched_is_cancelled(bool *cancelled, struct sched *s, const char *account,
                       const char *job_id, const char *campaign_id,
                       char *errstr, size_t errstr_size)
{
    char keys[2][RCONN_KEY_MAX];
    const char *argv[3] = {"EXISTS", keys[0], keys[1]};
    redisReply *reply = NULL;
    int64_t n;
    int ret = -1;

    if (rconn_key(keys[0], RCONN_KEY_MAX, s->rc, account, "cx:job", job_id,
                  errstr, errstr_size) != 0)
        goto out;
    if (campaign_id != NULL &&
        rconn_key(keys[1], RCONN_KEY_MAX, s->rc, account, "cx:camp",
                  campaign_id, errstr, errstr_size) != 0)
        goto out;
    if (rconn_command(&reply, s->rc, campaign_id != NULL ? 3 : 2, argv, NULL,
                      true, errstr, errstr_size) != 0)
        goto out;
    if (rconn_reply_i64(&n, reply) != 0) {
        snprintf(errstr, errstr_size, "redis: unexpected EXISTS reply");
        goto out;
    }
    *cancelled = n > 0;
    ret = 0;

out:
    freeReplyObject(reply);
    return ret;
}

/* ------------------------------------------------------------------------ */
/* Backoff (pure). */

int64_t sched_backoff_delay_ms(const struct sched_backoff *policy,
                               unsigned attempt, uint32_t rnd)
{
    int64_t delay = policy->base_ms > 0 ? policy->base_ms : 1;
    int64_t half;

    for (unsigned i = 1; i < attempt && delay < policy->cap_ms; i++)
        delay = delay > INT64_MAX / 2 ? INT64_MAX : delay * 2;
    if (delay > policy->cap_ms && policy->cap_ms > 0)
        delay = policy->cap_ms;
    half = delay / 2;
    return delay - half + (int64_t)(rnd % (uint64_t)(half + 1));
}

bool sched_backoff_next(int64_t *due_ms, const struct sched_backoff *policy,
                        int64_t first_ms, int64_t now_ms, unsigned attempt,
                        int64_t min_delay_ms, uint32_t rnd)
{
    int64_t delay = sched_backoff_delay_ms(policy, attempt, rnd);

    if (min_delay_ms > delay)
        delay = min_delay_ms;
    if (now_ms + delay > first_ms + policy->horizon_ms)
        return false;
    *due_ms = now_ms + delay;
    return true;
}
