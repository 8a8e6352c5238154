/* ratelimit/rconn.h - one Redis connection that heals itself.
 *
 * Every piece of state kurir replicas share lives in Redis (docs/redis.md).
 * struct rconn wraps one blocking hiredis context: it parses KURIR_REDIS_URL,
 * connects with a timeout, authenticates, selects the database, runs
 * binary-safe commands (redisCommandArgv only) and Lua scripts (EVALSHA,
 * loading the script again on NOSCRIPT).
 *
 * When Redis is away every call fails quickly with -1 and a clear errstr.
 * A broken connection is re-established once, at once; when that fails,
 * further attempts are spaced by an exponential backoff (100 ms doubling to
 * 5 s) and calls made before the next attempt fail at once without touching
 * the network. Callers just retry later: the connection comes back by itself.
 *
 * Not thread-safe: one struct rconn per thread (the worker has one loop). */
#ifndef RATELIMIT_RCONN_H
#define RATELIMIT_RCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

/* The longest key kurir builds; longer ids are refused with an error. */
#define RCONN_KEY_MAX 512

/* The most Sentinels one sentinel:// URL may list. */
#define RCONN_MAX_SENTINELS 8

/* One host:port of a Sentinel. */
struct rconn_addr {
    char host[256];
    int port;
};

/* KURIR_REDIS_URL, parsed. */
struct rconn_url {
    bool is_unix;       /* unix:/path rather than redis://host:port */
    bool is_sentinel;   /* sentinel://...: host/port come from Sentinel */
    char host[256];     /* TCP host name or address; "" for unix/sentinel */
    int port;           /* TCP port; 0 for unix/sentinel */
    char path[256];     /* socket path for unix; "" for TCP */
    char user[128];     /* ACL user name; "" for the default user */
    char password[256]; /* "" when none; never printed */
    int db;             /* SELECT index; 0 when not given */
    char master[128];   /* Sentinel's name of the primary; "" unless sentinel */
    struct rconn_addr sentinels[RCONN_MAX_SENTINELS]; /* tried in order */
    int nsentinels;
};

/* The epoch: a random value written once into "<prefix>:epoch" (SET NX)
 * and read back at every connect of either connection (rconn, aredis) and
 * on each periodic check. A Redis that came back empty (restarted without
 * its data, flushed, or failed over to a replica that had nothing) no
 * longer holds the value read before: the next read finds another one,
 * written by whichever replica got there first. One per process, shared by
 * its connections; loop thread only. */
struct rconn_epoch {
    char value[40];    /* the value last read; "" before the first read */
    char previous[40]; /* the value before the last change */
    uint64_t changes;  /* reads that found another value than the last */
};

/* The key of the epoch: "<prefix>:epoch" (not in an account's hash slot:
 * it is one key for the whole Redis). */
#define RCONN_EPOCH_KIND "epoch"

/* Records a value read from Redis (len bytes): adopts it, and counts a
 * change when an earlier read found another value. */
void rconn_epoch_seen(struct rconn_epoch *e, const char *value, size_t len);

/* Writes a fresh random candidate (32 hex digits) into buf (at least 33
 * bytes): each SET NX offers a new one, so a replica whose own value was
 * lost cannot write the same value back unnoticed. */
void rconn_epoch_candidate(char *buf, size_t buf_size);

/* How to reach Redis. Zero timeouts take the defaults. */
struct rconn_opts {
    const char *url;           /* KURIR_REDIS_URL */
    const char *prefix;        /* key namespace, e.g. "kurir"; no braces */
    int connect_timeout_ms;    /* default 1000 */
    int command_timeout_ms;    /* default 1000 */
    int backoff_min_ms;        /* first wait after a failed connect; 100 */
    int backoff_max_ms;        /* the wait doubles up to this; 5000 */
    struct rconn_epoch *epoch; /* borrowed; read at each connect; NULL: no */
};

/* A Lua script known by source; its SHA1 is learnt from SCRIPT LOAD on first
 * use and reused with EVALSHA. Declare one per script, statically:
 *     static struct rconn_script take_script = {.src = "..."}; */
struct rconn_script {
    const char *src; /* the Lua source */
    char sha[41];    /* hex SHA1 once loaded; "" before */
};

/* Lua for scripts that write many fields or members in one command:
 * bulk(cmd, key, t[, opt]) calls redis.call(cmd, key[, opt], t...) over the
 * table t in chunks of 2,000 (Lua's unpack stops near 8,000 values). */
#define RCONN_LUA_BULK                                           \
    "local function bulk(cmd, k, t, opt)\n"                      \
    "  for s = 1, #t, 2000 do\n"                                 \
    "    local e = math.min(s + 1999, #t)\n"                     \
    "    if opt then redis.call(cmd, k, opt, unpack(t, s, e))\n" \
    "    else redis.call(cmd, k, unpack(t, s, e)) end\n"         \
    "  end\n"                                                    \
    "end\n"

struct rconn;

/* Parses `url`:
 *   "redis://[[user]:password@]host[:port][/db]" (port 6379, db 0 by
 *       default; with a user, AUTH user password: a Redis 6+ ACL user);
 *   "sentinel://[[user]:password@]host[:port][,host[:port]...]/master[/db]"
 *       (Sentinel's port 26379 by default; the credentials are for the
 *       primary, and tried on a Sentinel only when it answers NOAUTH);
 *   "unix:/path" (also "unix:///path").
 * The userinfo ends at the LAST '@' before the path, so a password may hold
 * '@' (or write it %40). Returns 0 with *out filled, or -1 with errstr set
 * (the message never contains the password). Stable: the asynchronous client
 * uses it too. */
int rconn_url_parse(struct rconn_url *out, const char *url, char *errstr,
                    size_t errstr_size);

/* Finds where to connect for `u`: for redis:// its own host and port; for
 * sentinel:// asks each Sentinel in turn (blocking, `timeout_ms` per
 * connect and per reply; 0 takes 500) for SENTINEL get-master-addr-by-name
 * and returns the first answer. Call it at every (re)connect so a failover
 * is followed. Returns 0 with host (host_size bytes) and *port set, or -1
 * with errstr set (no Sentinel answered, or none knows the master). Not for
 * unix: URLs (returns -1). Stable: the asynchronous client uses it too. */
int rconn_resolve(const struct rconn_url *u, char *host, size_t host_size,
                  int *port, int timeout_ms, char *errstr, size_t errstr_size);

/* Checks with ROLE that the server behind `redis` (already authenticated)
 * is a primary: after a failover a stale address may lead to a replica.
 * Returns 0, or -1 with errstr set. */
int rconn_check_primary(redisContext *redis, char *errstr, size_t errstr_size);

/* Creates a connection from `opts` and tries to connect once. An
 * unreachable Redis is not an error here: the first call will try again (use
 * rconn_ping() to check). Returns 0 and sets *out (free with rconn_free), or
 * -1 with errstr set when the URL or prefix is invalid. */
int rconn_new(struct rconn **out, const struct rconn_opts *opts, char *errstr,
              size_t errstr_size);

/* Reads the epoch now (SET NX a fresh candidate, then GET) into the
 * rconn_epoch given at creation: a cheap periodic check (two commands).
 * Returns 0, or -1 with errstr set when Redis could not be reached. */
int rconn_epoch_check(struct rconn *rc, char *errstr, size_t errstr_size);

/* What Redis says of its persistence. */
struct rconn_persistence {
    bool aof;       /* appendonly yes (CONFIG) or aof_enabled:1 (INFO) */
    bool rdb;       /* a save schedule is set (CONFIG GET save not empty) */
    bool rdb_known; /* false when CONFIG is refused (renamed, ACL, managed
                     * Redis) and only INFO persistence could be read */
    char how[16];   /* "CONFIG" or "INFO": where the answer came from */
};

/* Reads Redis' persistence settings: CONFIG GET appendonly and save, or,
 * where CONFIG is refused, INFO persistence (which tells AOF, not the RDB
 * schedule). Returns 0 and fills *out, or -1 with errstr set when Redis
 * answered neither. */
int rconn_persistence(struct rconn_persistence *out, struct rconn *rc,
                      char *errstr, size_t errstr_size);

/* Closes the connection and frees it. rconn_free(NULL) does nothing. */
void rconn_free(struct rconn *rc);

/* Returns the key prefix given at creation (borrowed). */
const char *rconn_prefix(const struct rconn *rc);

/* Returns true when the last call reached Redis (for /readyz and metrics
 * without a round trip). */
bool rconn_is_up(const struct rconn *rc);

/* Returns how many replies were read from Redis since creation: one per
 * command, so one per round trip outside pipelines (benchmarks, metrics). */
uint64_t rconn_round_trips(const struct rconn *rc);

/* Sends PING. Returns 0 when Redis answered, or -1 with errstr set. */
int rconn_ping(struct rconn *rc, char *errstr, size_t errstr_size);

/* Runs one command given as argc strings of argvlen bytes (binary-safe).
 * When `may_repeat` is true and the connection was broken, the command is
 * sent again once over a fresh connection (only for commands whose double
 * execution is harmless). Returns 0 and sets *out to the reply (free with
 * freeReplyObject), or -1 with errstr set when Redis could not be reached or
 * answered with an error reply. */
int rconn_command(redisReply **out, struct rconn *rc, int argc,
                  const char **argv, const size_t *argvlen, bool may_repeat,
                  char *errstr, size_t errstr_size);

/* Runs `script` with `nkeys` keys followed by the other arguments in
 * argv/argvlen (keys first, then ARGV), by EVALSHA, loading the script on
 * first use and on NOSCRIPT (Redis restarted or flushed its cache).
 * `may_repeat` as for rconn_command(). Returns 0 and sets *out (free with
 * freeReplyObject), or -1 with errstr set (an error reply included). */
int rconn_eval(redisReply **out, struct rconn *rc, struct rconn_script *script,
               int nkeys, int argc, const char **argv, const size_t *argvlen,
               bool may_repeat, char *errstr, size_t errstr_size);

/* Writes "<prefix>:{<account>}:<kind>" and, when `id` is not NULL,
 * ":<id>" into buf. The account is the Redis Cluster hash tag, so all of an
 * account's keys live in one slot and one script may touch them together.
 * Returns 0, or -1 with errstr set when the account is empty or holds a
 * brace, or the key would not fit in RCONN_KEY_MAX bytes. */
int rconn_key(char *buf, size_t buf_size, const struct rconn *rc,
              const char *account, const char *kind, const char *id,
              char *errstr, size_t errstr_size);

/* rconn_key() for a bare prefix, for callers without a struct rconn (the
 * asynchronous aredis and the argument builders). Same contract. */
int rconn_key_p(char *buf, size_t buf_size, const char *prefix,
                const char *account, const char *kind, const char *id,
                char *errstr, size_t errstr_size);

/* Formats a signed integer for a command argument into buf (at least 24
 * bytes) and returns buf. */
const char *rconn_i64(char *buf, size_t buf_size, int64_t v);

/* Reads an integer reply (or an integer written as a bulk string) into
 * *out. Returns 0, or -1 when the reply is of another kind. */
int rconn_reply_i64(int64_t *out, const redisReply *reply);

#endif /* RATELIMIT_RCONN_H */
