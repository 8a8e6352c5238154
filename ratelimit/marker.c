/* ratelimit/marker.c - send-once markers and monotonic recipient states.
 *
 * A marker value is "i<ms>" (in flight since that Redis time, Unix ms) or
 * "d<outcome>" (done). A state value is the CONTRACT state name. */
#include "ratelimit/marker.h"

#include "ratelimit/optout.h"
#include "ratelimit/rargv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Batched over jobs of one account (one hash slot). KEYS: the account's
 * opt-out set (ratelimit/optout.h), then per job its hash, cxjob and cxcamp
 * (cxjob again when there is no campaign). ARGV: stale_ms, ttl_ms, then per
 * job: n, headers ("" for none; kept for later events of the job), owner,
 * recipients... Returns per recipient {code, outcome} with the codes of
 * enum marker_begin_result. A marker is "i<ms>/<owner>" in flight,
 * "d<outcome>" done; a fresh marker of the same non-empty owner (one unit
 * of one replica) counts as new, so an owner that lost a reply can begin
 * again without finding itself busy, while any other owner, even in the
 * same replica, finds it busy. A recipient on the opt-out set (code 5) is
 * neither marked nor sent; one done or cancelled before keeps that answer.
 *
 * Every redis.call costs a few microseconds of Redis' one thread around the
 * command itself, so the common case is kept to two a job: one EXISTS over
 * the whole batch's cancel keys (asked again per job only when one exists),
 * an empty opt-out set not asked per recipient, and HSETNX, which marks a
 * recipient without a marker and says whether there was one: only then is
 * the marker read. */
static struct rconn_script begin_script = {
    .src = RCONN_LUA_BULK
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local stale, ttl = tonumber(ARGV[1]), ARGV[2]\n"
    "local opted = redis.call('EXISTS', KEYS[1]) == 1\n"
    "local cxkeys = {}\n"
    "for j = 2, #KEYS, 3 do\n"
    "  cxkeys[#cxkeys + 1] = KEYS[j + 1]\n"
    "  if KEYS[j + 2] ~= KEYS[j + 1] then cxkeys[#cxkeys + 1] = KEYS[j + 2] "
    "end\n"
    "end\n"
    "local anycx = false\n"
    "for s = 1, #cxkeys, 2000 do\n"
    "  local e = math.min(s + 1999, #cxkeys)\n"
    "  if redis.call('EXISTS', unpack(cxkeys, s, e)) > 0 then anycx = true "
    "end\n"
    "end\n"
    "local out = {}\n"
    "local a = 3\n"
    "for j = 2, #KEYS, 3 do\n"
    "  local mk = KEYS[j]\n"
    "  local cx = false\n"
    "  if anycx then\n"
    "    if KEYS[j + 2] ~= KEYS[j + 1] then\n"
    "      cx = redis.call('EXISTS', KEYS[j + 1], KEYS[j + 2]) > 0\n"
    "    else\n"
    "      cx = redis.call('EXISTS', KEYS[j + 1]) == 1\n"
    "    end\n"
    "  end\n"
    "  local n = tonumber(ARGV[a])\n"
    "  local set = {}\n"
    "  if ARGV[a + 1] ~= '' then set[1] = 'h:'; set[2] = ARGV[a + 1] end\n"
    "  local owner = ARGV[a + 2]\n"
    "  local mark = 'i' .. now .. '/' .. owner\n"
    "  local marked = false\n"
    "  for i = a + 3, a + n + 2 do\n"
    "    local r = ARGV[i]\n"
    "    local code, outcome = 0, ''\n"
    "    local barred = cx or\n"
    "      (opted and redis.call('SISMEMBER', KEYS[1], r) == 1)\n"
    "    if not barred and redis.call('HSETNX', mk, r, mark) == 1 then\n"
    "      marked = true\n"
    "    else\n"
    "      local v = redis.call('HGET', mk, r)\n"
    "      local ms, who\n"
    "      if v then ms, who = string.match(v, '^i(%d+)/?(.*)$') end\n"
    "      if v and string.sub(v, 1, 1) == 'd' then\n"
    "        code = 3\n"
    "        outcome = string.sub(v, 2)\n"
    "      elseif cx then\n"
    "        code = 4\n"
    "      elseif barred then\n"
    "        code = 5\n"
    "      elseif ms and owner ~= '' and who == owner then\n"
    "        code = 0\n"
    "      elseif ms and now - tonumber(ms) < stale then\n"
    "        code = 1\n"
    "      else\n"
    "        if v then code = 2 end\n"
    "        set[#set + 1] = r\n"
    "        set[#set + 1] = mark\n"
    "      end\n"
    "    end\n"
    "    out[#out + 1] = code\n"
    "    out[#out + 1] = outcome\n"
    "  end\n"
    "  if #set > 0 then bulk('HSET', mk, set) end\n"
    "  if #set > 0 or marked then redis.call('PEXPIRE', mk, ttl) end\n"
    "  a = a + n + 3\n"
    "end\n"
    "return out\n",
};

/* Batched over jobs of one account. KEYS: the account's published set
 * (marker.h), then per job its hash. ARGV: ttl_ms, then per job: n, want
 * ("1": return the job's echo headers), the published member's head and
 * tail ("<job>\t", "\t<type>"; "" when no item is gated), the recorder
 * (field "o:" of the hash when an item is done; "" for none), "1" when the
 * hash's TTL is to be left as it is (marker_update_job.ttl_fresh; "" to
 * renew it on a write), then per item:
 * recipient, op ("k", "d", "c", or "g": keep, gated), outcome, state (""
 * for none). Returns one number per item: 1 when its state advanced, 2
 * when it already was that state, 3 when a gated item's state would
 * advance past, or say again, a `submitted` or `unknown` not yet
 * published, or follow a state not yet recorded (nothing is changed), 0
 * otherwise; a gated item already in its published state is 0.
 * After a job's items, its headers ("" for none) when wanted. A state is
 * field "s:<recipient>" of the job's hash, next to the marker (field
 * "<recipient>"). */
static struct rconn_script update_script = {
    .src = RCONN_LUA_BULK
    "local rank = {accepted = 1, scheduled = 2, retrying = 3,\n"
    "  submitted = 4, unknown = 5, delivered = 6, failed = 6,\n"
    "  rejected = 6, cancelled = 6}\n"
    "local out = {}\n"
    "local a = 2\n"
    "for j = 2, #KEYS do\n"
    "  local mk = KEYS[j]\n"
    "  local n = tonumber(ARGV[a])\n"
    "  local want = ARGV[a + 1] == '1'\n"
    "  local ghead, gtail, rec = ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]\n"
    "  local renew = ARGV[a + 5] ~= '1'\n"
    "  local set, pend = {}, {}\n"
    "  for i = a + 6, a + 4 * n + 5, 4 do\n"
    "    local r, op, st = ARGV[i], ARGV[i + 1], ARGV[i + 3]\n"
    "    if op == 'd' then\n"
    "      set[#set + 1] = r\n"
    "      set[#set + 1] = 'd' .. ARGV[i + 2]\n"
    "      if rec ~= '' then set[#set + 1] = 'o:'; set[#set + 1] = rec end\n"
    "      rec = ''\n"
    "    elseif op == 'c' then\n"
    "      redis.call('HDEL', mk, r)\n"
    "    end\n"
    "    local adv = 0\n"
    "    if st ~= '' then\n"
    "      local cur = pend[r]\n"
    "      if cur == nil then cur = redis.call('HGET', mk, 's:' .. r) end\n"
    "      local old = cur and rank[cur] or 0\n"
    "      local gated, published = false, false\n"
    "      if op == 'g' and (not cur or cur == 'submitted' or\n"
    "                        cur == 'unknown') then\n"
    "        gated = true\n"
    "        published = cur and\n"
    "          redis.call('ZSCORE', KEYS[1], ghead .. r .. gtail) ~= false\n"
    "      end\n"
    "      if gated and not published and rank[st] >= old then\n"
    "        adv = 3\n"
    "      elseif rank[st] > old or\n"
    "         (st == 'retrying' and cur == 'retrying') then\n"
    "        set[#set + 1] = 's:' .. r\n"
    "        set[#set + 1] = st\n"
    "        pend[r] = st\n"
    "        adv = 1\n"
    "      elseif cur == st and not published then\n"
    "        adv = 2\n"
    "      end\n"
    "    end\n"
    "    out[#out + 1] = adv\n"
    "  end\n"
    "  if #set > 0 then\n"
    "    bulk('HSET', mk, set)\n"
    "    if renew then redis.call('PEXPIRE', mk, ARGV[1]) end\n"
    "  end\n"
    "  if want then\n"
    "    out[#out + 1] = redis.call('HGET', mk, 'h:') or ''\n"
    "  end\n"
    "  a = a + 4 * n + 6\n"
    "end\n"
    "return out\n",
};

int marker_begin_nkeys(size_t njobs)
{
    return (int)(1 + 3 * njobs);
}

int marker_update_nkeys(size_t njobs)
{
    return (int)(1 + njobs);
}

struct rconn_script *marker_begin_script(void)
{
    return &begin_script;
}

struct rconn_script *marker_update_script(void)
{
    return &update_script;
}

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

int marker_begin_build(struct rargv *out, const char *prefix,
                       const char *account, const struct marker_begin_job *jobs,
                       size_t njobs, int64_t stale_ms, char *errstr,
                       size_t errstr_size)
{
    char key[RCONN_KEY_MAX];

    if (rconn_key_p(key, sizeof(key), prefix, account, OPTOUT_KIND, NULL,
                    errstr, errstr_size) != 0)
        goto fail;
    rargv_adds(out, key);
    for (size_t j = 0; j < njobs; j++) {
        const struct marker_begin_job *jb = &jobs[j];
        if (rconn_key_p(key, sizeof(key), prefix, account, "mk", jb->job_id,
                        errstr, errstr_size) != 0)
            goto fail;
        rargv_adds(out, key);
        if (rconn_key_p(key, sizeof(key), prefix, account, "cx:job", jb->job_id,
                        errstr, errstr_size) != 0)
            goto fail;
        rargv_adds(out, key);
        if (jb->campaign_id != NULL &&
            rconn_key_p(key, sizeof(key), prefix, account, "cx:camp",
                        jb->campaign_id, errstr, errstr_size) != 0)
            goto fail;
        rargv_adds(out, key);
    }
    rargv_addi(out, stale_ms);
    rargv_addi(out, MARKER_TTL_MS);
    for (size_t j = 0; j < njobs; j++) {
        rargv_addi(out, (int64_t)jobs[j].n);
        rargv_adds(out, jobs[j].headers != NULL ? jobs[j].headers : "");
        rargv_adds(out, jobs[j].owner != NULL ? jobs[j].owner : "");
        for (size_t i = 0; i < jobs[j].n; i++)
            rargv_adds(out, jobs[j].items[i].recipient);
    }
    return 0;

fail:
    rargv_cleanup(out);
    return -1;
}

int marker_begin_read(const redisReply *reply, struct marker_begin_job *jobs,
                      size_t njobs, char *errstr, size_t errstr_size)
{
    size_t total = 0;

    for (size_t j = 0; j < njobs; j++)
        total += jobs[j].n;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 * total)
        goto bad;
    for (size_t k = 0; k < total; k++) {
        int64_t code;
        const redisReply *o = reply->element[2 * k + 1];
        if (rconn_reply_i64(&code, reply->element[2 * k]) != 0 || code < 0 ||
            code > MARKER_OPTED_OUT || o->type != REDIS_REPLY_STRING)
            goto bad;
    }
    for (size_t j = 0, k = 0; j < njobs; j++) {
        for (size_t i = 0; i < jobs[j].n; i++, k++) {
            struct marker_begin_item *it = &jobs[j].items[i];
            const redisReply *o = reply->element[2 * k + 1];
            it->result =
                (enum marker_begin_result)reply->element[2 * k]->integer;
            it->outcome = NULL;
            it->outcome_len = 0;
            if (it->result != MARKER_DONE)
                continue;
            it->outcome = malloc(o->len + 1);
            if (it->outcome == NULL)
                abort();
            memcpy(it->outcome, o->str, o->len);
            it->outcome[o->len] = '\0';
            it->outcome_len = o->len;
        }
    }
    return 0;

bad:
    snprintf(errstr, errstr_size, "redis: unexpected marker reply");
    return -1;
}

int marker_begin(struct marker *m, const char *account, const char *job_id,
                 const char *campaign_id, struct marker_begin_item *items,
                 size_t n, int64_t stale_ms, char *errstr, size_t errstr_size)
{
    struct marker_begin_job job = {job_id, campaign_id, items, n, NULL, NULL};
    struct rargv args = {0};
    redisReply *reply = NULL;
    int ret = -1;

    for (size_t i = 0; i < n; i++)
        items[i].outcome = NULL;
    if (n == 0)
        return 0;
    if (marker_begin_build(&args, rconn_prefix(m->rc), account, &job, 1,
                           stale_ms, errstr, errstr_size) != 0)
        return -1;
    /* Not repeated on a lost reply: without an owner the repeat would find
     * its own marks and answer MARKER_BUSY. The caller retries later. */
    if (rconn_eval(&reply, m->rc, &begin_script, marker_begin_nkeys(1),
                   (int)args.n, args.v, args.len, false, errstr,
                   errstr_size) != 0)
        goto out;
    ret = marker_begin_read(reply, &job, 1, errstr, errstr_size);

out:
    freeReplyObject(reply);
    rargv_cleanup(&args);
    return ret;
}

void marker_begin_cleanup(struct marker_begin_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(items[i].outcome);
        items[i].outcome = NULL;
    }
}

int marker_update_build(struct rargv *out, const char *prefix,
                        const char *account,
                        const struct marker_update_job *jobs, size_t njobs,
                        char *errstr, size_t errstr_size)
{
    static const char *const ops[] = {"k", "d", "c", "g"};
    char key[RCONN_KEY_MAX];

    if (rconn_key_p(key, sizeof(key), prefix, account, MARKER_PUBLISHED_SET,
                    NULL, errstr, errstr_size) != 0)
        goto fail;
    rargv_adds(out, key);
    for (size_t j = 0; j < njobs; j++) {
        for (size_t i = 0; i < jobs[j].n; i++) {
            const char *st = jobs[j].items[i].state;
            if (st != NULL && marker_state_rank(st) == 0) {
                snprintf(errstr, errstr_size, "unknown state \"%.40s\"", st);
                goto fail;
            }
        }
        if (rconn_key_p(key, sizeof(key), prefix, account, "mk", jobs[j].job_id,
                        errstr, errstr_size) != 0)
            goto fail;
        rargv_adds(out, key);
    }
    rargv_addi(out, MARKER_TTL_MS);
    for (size_t j = 0; j < njobs; j++) {
        rargv_addi(out, (int64_t)jobs[j].n);
        rargv_adds(out, jobs[j].want_headers ? "1" : "");
        if (jobs[j].type != NULL) {
            char head[RCONN_KEY_MAX + 2], tail[32];
            snprintf(head, sizeof(head), "%s\t", jobs[j].job_id);
            snprintf(tail, sizeof(tail), "\t%s", jobs[j].type);
            rargv_adds(out, head);
            rargv_adds(out, tail);
        } else {
            rargv_adds(out, "");
            rargv_adds(out, "");
        }
        rargv_adds(out, jobs[j].recorder != NULL ? jobs[j].recorder : "");
        rargv_adds(out, jobs[j].ttl_fresh ? "1" : "");
        for (size_t i = 0; i < jobs[j].n; i++) {
            const struct marker_update_item *it = &jobs[j].items[i];
            rargv_adds(out, it->recipient);
            rargv_adds(out, ops[it->op]);
            if (it->op == MARKER_OP_DONE)
                rargv_add(out, it->outcome, it->outcome_len);
            else
                rargv_adds(out, "");
            rargv_adds(out, it->state != NULL ? it->state : "");
        }
    }
    return 0;

fail:
    rargv_cleanup(out);
    return -1;
}

int marker_update_read(const redisReply *reply, struct marker_update_job *jobs,
                       size_t njobs, char *errstr, size_t errstr_size)
{
    size_t total = 0;

    for (size_t j = 0; j < njobs; j++)
        total += jobs[j].n + (jobs[j].want_headers ? 1 : 0);
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != total)
        goto bad;
    for (size_t j = 0, k = 0; j < njobs; j++) {
        for (size_t i = 0; i < jobs[j].n; i++, k++) {
            int64_t adv;
            if (rconn_reply_i64(&adv, reply->element[k]) != 0)
                goto bad;
            jobs[j].items[i].advanced = adv == 1;
            jobs[j].items[i].repeated = adv == 2;
            jobs[j].items[i].early = adv == 3;
        }
        if (!jobs[j].want_headers)
            continue;
        const redisReply *h = reply->element[k++];
        if (h->type != REDIS_REPLY_STRING)
            goto bad;
        free(jobs[j].headers_out);
        jobs[j].headers_out = NULL;
        if (h->len > 0) {
            jobs[j].headers_out = malloc(h->len + 1);
            if (jobs[j].headers_out == NULL)
                abort();
            memcpy(jobs[j].headers_out, h->str, h->len);
            jobs[j].headers_out[h->len] = '\0';
        }
    }
    return 0;

bad:
    snprintf(errstr, errstr_size, "redis: unexpected marker reply");
    return -1;
}

int marker_update(struct marker *m, const char *account, const char *job_id,
                  struct marker_update_item *items, size_t n, char *errstr,
                  size_t errstr_size)
{
    struct marker_update_job job = {job_id, NULL, items, n, false, NULL};
    struct rargv args = {0};
    redisReply *reply = NULL;
    int ret = -1;

    if (n == 0)
        return 0;
    if (marker_update_build(&args, rconn_prefix(m->rc), account, &job, 1,
                            errstr, errstr_size) != 0)
        return -1;
    /* Not repeated on a lost reply: a second run would find the states
     * already advanced and report `advanced` false, hiding events. */
    if (rconn_eval(&reply, m->rc, &update_script, marker_update_nkeys(1),
                   (int)args.n, args.v, args.len, false, errstr,
                   errstr_size) != 0)
        goto out;
    ret = marker_update_read(reply, &job, 1, errstr, errstr_size);

out:
    freeReplyObject(reply);
    rargv_cleanup(&args);
    return ret;
}
