/* ratelimit/rconn.c - one Redis connection that heals itself.
 *
 * See rconn.h for the contract. The reconnect policy: a call finding the
 * context broken (or absent) connects again at once unless a backoff is
 * running; a failed connect starts or doubles the backoff, a good one clears
 * it. A command that fails on the wire breaks the context; it is repeated
 * once over a fresh connection only when the caller says that is harmless. */
#include "ratelimit/rconn.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct rconn {
    struct rconn_url url;   /* parsed KURIR_REDIS_URL */
    char prefix[64];        /* key namespace */
    int connect_timeout_ms; /* redisConnectWithTimeout */
    int command_timeout_ms; /* redisSetTimeout */
    int backoff_min_ms;     /* first wait after a failed connect */
    int backoff_max_ms;     /* cap of the doubling wait */
    redisContext *redis;    /* NULL while disconnected */
    int backoff_ms;         /* current wait; 0 when the last connect worked */
    int64_t retry_at_ms;    /* monotonic: no connect attempt before this */
    char last_error[128];   /* why the last connect failed */
    bool is_up;             /* the last call reached Redis */
    uint64_t round_trips;   /* replies read */
    struct rconn_epoch *epoch; /* borrowed; NULL: not read */
};

static int64_t rconn_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------------ */
/* URL parsing. */

static int rconn_hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Copies [s, s+len) into out, decoding %XX. Returns 0, or -1 when it does
 * not fit or an escape is broken. */
static int rconn_unescape(char *out, size_t out_size, const char *s, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= len)
                return -1;
            int hi = rconn_hex(s[i + 1]);
            int lo = rconn_hex(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = hi * 16 + lo;
            i += 2;
        }
        if (c == 0 || n + 1 >= out_size)
            return -1;
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return 0;
}

/* Parses a decimal in [min, max] from [s, s+len). */
static int rconn_parse_int(int *out, const char *s, size_t len, int min,
                           int max)
{
    char buf[16];
    char *end = NULL;
    long v;

    if (len == 0 || len >= sizeof(buf))
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    v = strtol(buf, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

static int rconn_url_parse_unix(struct rconn_url *out, const char *rest,
                                char *errstr, size_t errstr_size)
{
    if (strncmp(rest, "//", 2) == 0)
        rest += 2;
    if (rest[0] != '/') {
        snprintf(errstr, errstr_size,
                 "redis URL: unix socket path must be "
                 "absolute");
        return -1;
    }
    if (strlen(rest) >= sizeof(out->path)) {
        snprintf(errstr, errstr_size, "redis URL: socket path too long");
        return -1;
    }
    out->is_unix = true;
    snprintf(out->path, sizeof(out->path), "%s", rest);
    return 0;
}

/* Parses "[v6]" or "name", then an optional ":port", from [p, end). */
static int rconn_parse_hostport(struct rconn_addr *out, const char *p,
                                const char *end, int default_port, char *errstr,
                                size_t errstr_size)
{
    const char *host = p, *host_end, *port = NULL;
    size_t port_len = 0;

    if (*p == '[') {
        const char *close = memchr(p, ']', (size_t)(end - p));
        if (close == NULL) {
            snprintf(errstr, errstr_size, "redis URL: unclosed '[' in host");
            return -1;
        }
        host = p + 1;
        host_end = close;
        p = close + 1;
    } else {
        host_end = memchr(p, ':', (size_t)(end - p));
        if (host_end == NULL)
            host_end = end;
        p = host_end;
    }
    if (p < end) {
        if (*p != ':') {
            snprintf(errstr, errstr_size, "redis URL: bad host");
            return -1;
        }
        port = p + 1;
        port_len = (size_t)(end - port);
    }
    if (host_end == host || (size_t)(host_end - host) >= sizeof(out->host)) {
        snprintf(errstr, errstr_size, "redis URL: missing or too long host");
        return -1;
    }
    memcpy(out->host, host, (size_t)(host_end - host));
    out->host[host_end - host] = '\0';
    out->port = default_port;
    if (port != NULL &&
        rconn_parse_int(&out->port, port, port_len, 1, 65535) != 0) {
        snprintf(errstr, errstr_size, "redis URL: bad port");
        return -1;
    }
    return 0;
}

/* Parses the userinfo of [p, slash): everything up to the LAST '@' (a
 * password may hold '@'), "user:password" or ":password". Sets *host to
 * what follows it. */
static int rconn_parse_userinfo(struct rconn_url *u, const char *p,
                                const char *slash, const char **host,
                                char *errstr, size_t errstr_size)
{
    const char *at = NULL;

    for (const char *q = p; q < slash; q++) {
        if (*q == '@')
            at = q;
    }
    *host = p;
    if (at == NULL)
        return 0;
    const char *colon = memchr(p, ':', (size_t)(at - p));
    const char *user_end = colon != NULL ? colon : at;
    if (rconn_unescape(u->user, sizeof(u->user), p, (size_t)(user_end - p)) !=
        0) {
        snprintf(errstr, errstr_size, "redis URL: bad or too long user name");
        return -1;
    }
    if (colon != NULL &&
        rconn_unescape(u->password, sizeof(u->password), colon + 1,
                       (size_t)(at - colon - 1)) != 0) {
        snprintf(errstr, errstr_size, "redis URL: bad password encoding");
        return -1;
    }
    *host = at + 1;
    return 0;
}

/* "host[:port][,host[:port]...]/master[/db]" after sentinel://. */
static int rconn_url_parse_sentinel(struct rconn_url *u, const char *p,
                                    char *errstr, size_t errstr_size)
{
    const char *slash = strchr(p, '/');

    if (slash == NULL) {
        snprintf(errstr, errstr_size,
                 "redis URL: sentinel:// needs /master after the hosts");
        return -1;
    }
    if (rconn_parse_userinfo(u, p, slash, &p, errstr, errstr_size) != 0)
        return -1;
    while (p < slash) {
        const char *comma = memchr(p, ',', (size_t)(slash - p));
        const char *end = comma != NULL ? comma : slash;
        if (u->nsentinels == RCONN_MAX_SENTINELS) {
            snprintf(errstr, errstr_size, "redis URL: more than %d sentinels",
                     RCONN_MAX_SENTINELS);
            return -1;
        }
        if (rconn_parse_hostport(&u->sentinels[u->nsentinels], p, end, 26379,
                                 errstr, errstr_size) != 0)
            return -1;
        u->nsentinels++;
        p = comma != NULL ? comma + 1 : slash;
    }
    if (u->nsentinels == 0) {
        snprintf(errstr, errstr_size, "redis URL: no sentinel host");
        return -1;
    }
    const char *name = slash + 1;
    const char *name_end = strchr(name, '/');
    if (name_end == NULL)
        name_end = name + strlen(name);
    if (name_end == name || (size_t)(name_end - name) >= sizeof(u->master)) {
        snprintf(errstr, errstr_size,
                 "redis URL: missing or too long master name");
        return -1;
    }
    memcpy(u->master, name, (size_t)(name_end - name));
    u->master[name_end - name] = '\0';
    if (*name_end == '/' && name_end[1] != '\0' &&
        rconn_parse_int(&u->db, name_end + 1, strlen(name_end + 1), 0,
                        INT_MAX) != 0) {
        snprintf(errstr, errstr_size, "redis URL: bad database number");
        return -1;
    }
    u->is_sentinel = true;
    return 0;
}

int rconn_url_parse(struct rconn_url *out, const char *url, char *errstr,
                    size_t errstr_size)
{
    struct rconn_url u;
    const char *p, *slash;
    struct rconn_addr addr;

    memset(&u, 0, sizeof(u));
    if (strncmp(url, "unix:", 5) == 0) {
        if (rconn_url_parse_unix(&u, url + 5, errstr, errstr_size) != 0)
            return -1;
        *out = u;
        return 0;
    }
    bool sentinel = strncmp(url, "sentinel://", 11) == 0;
    if (!sentinel && strncmp(url, "redis://", 8) != 0) {
        snprintf(errstr, errstr_size,
                 "redis URL must start with redis://, sentinel:// or unix:");
        return -1;
    }
    p = url + (sentinel ? 11 : 8);
    if (strpbrk(p, "?#") != NULL) {
        snprintf(errstr, errstr_size,
                 "redis URL: query and fragment are not "
                 "supported");
        return -1;
    }
    if (sentinel) {
        int ret = rconn_url_parse_sentinel(&u, p, errstr, errstr_size);
        if (ret == 0)
            *out = u;
        memset(&u, 0, sizeof(u));
        return ret;
    }
    slash = strchr(p, '/');
    if (slash == NULL)
        slash = p + strlen(p);
    if (rconn_parse_userinfo(&u, p, slash, &p, errstr, errstr_size) != 0)
        return -1;
    if (rconn_parse_hostport(&addr, p, slash, 6379, errstr, errstr_size) != 0)
        return -1;
    memcpy(u.host, addr.host, sizeof(u.host));
    u.port = addr.port;

    /* "/db", optional. */
    if (*slash == '/' && slash[1] != '\0' &&
        rconn_parse_int(&u.db, slash + 1, strlen(slash + 1), 0, INT_MAX) != 0) {
        snprintf(errstr, errstr_size, "redis URL: bad database number");
        return -1;
    }
    *out = u;
    memset(&u, 0, sizeof(u));
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Connecting. */

static struct timeval rconn_timeval(int ms)
{
    struct timeval tv;

    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    return tv;
}

/* Copies a reply's error (or hiredis's context error) into errstr. */
static void rconn_reply_error(const redisReply *reply, char *errstr,
                              size_t errstr_size)
{
    snprintf(errstr, errstr_size, "redis: %.*s",
             reply->len > 200 ? 200 : (int)reply->len, reply->str);
}

/* Runs AUTH or SELECT on a fresh context. */
static int rconn_setup_command(redisContext *redis, int argc, const char **argv,
                               char *errstr, size_t errstr_size)
{
    redisReply *reply = NULL;
    int ret = -1;

    reply = redisCommandArgv(redis, argc, argv, NULL);
    if (reply == NULL) {
        snprintf(errstr, errstr_size, "redis: %.100s", redis->errstr);
        goto out;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        /* AUTH errors never echo the password, so the reply is safe. */
        rconn_reply_error(reply, errstr, errstr_size);
        goto out;
    }
    ret = 0;

out:
    freeReplyObject(reply);
    return ret;
}

/* AUTH [user] password when the URL has a password. */
static int rconn_auth(redisContext *redis, const struct rconn_url *u,
                      char *errstr, size_t errstr_size)
{
    if (u->password[0] == '\0')
        return 0;
    if (u->user[0] != '\0') {
        const char *argv[] = {"AUTH", u->user, u->password};
        return rconn_setup_command(redis, 3, argv, errstr, errstr_size);
    }
    const char *argv[] = {"AUTH", u->password};
    return rconn_setup_command(redis, 2, argv, errstr, errstr_size);
}

int rconn_check_primary(redisContext *redis, char *errstr, size_t errstr_size)
{
    const char *argv[] = {"ROLE"};
    redisReply *reply = redisCommandArgv(redis, 1, argv, NULL);
    int ret = -1;

    if (reply == NULL) {
        snprintf(errstr, errstr_size, "redis: ROLE: %.100s", redis->errstr);
        return -1;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        rconn_reply_error(reply, errstr, errstr_size);
    } else if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0 ||
               reply->element[0]->type != REDIS_REPLY_STRING) {
        snprintf(errstr, errstr_size, "redis: unexpected ROLE reply");
    } else if (strcmp(reply->element[0]->str, "master") != 0) {
        snprintf(errstr, errstr_size,
                 "redis: the address Sentinel gave is a %.20s, not the "
                 "primary (failover under way)",
                 reply->element[0]->str);
    } else {
        ret = 0;
    }
    freeReplyObject(reply);
    return ret;
}

/* Asks one Sentinel for the master's address. */
static int rconn_ask_sentinel(const struct rconn_url *u,
                              const struct rconn_addr *s, char *host,
                              size_t host_size, int *port, int timeout_ms,
                              char *errstr, size_t errstr_size)
{
    struct timeval tv = rconn_timeval(timeout_ms);
    redisContext *redis = NULL;
    redisReply *reply = NULL;
    const char *argv[] = {"SENTINEL", "get-master-addr-by-name", u->master};
    int ret = -1;

    redis = redisConnectWithTimeout(s->host, s->port, tv);
    if (redis == NULL || redis->err) {
        snprintf(errstr, errstr_size, "sentinel %s:%d: connect: %.80s", s->host,
                 s->port, redis ? redis->errstr : "no memory");
        goto out;
    }
    redisSetTimeout(redis, tv);
    for (int attempt = 0; attempt < 2; attempt++) {
        reply = redisCommandArgv(redis, 3, argv, NULL);
        if (reply == NULL) {
            snprintf(errstr, errstr_size, "sentinel %s:%d: %.80s", s->host,
                     s->port, redis->errstr);
            goto out;
        }
        /* A Sentinel with requirepass: try the URL's credentials once. */
        if (attempt == 0 && reply->type == REDIS_REPLY_ERROR &&
            strncmp(reply->str, "NOAUTH", 6) == 0 && u->password[0] != '\0') {
            freeReplyObject(reply);
            reply = NULL;
            if (rconn_auth(redis, u, errstr, errstr_size) != 0)
                goto out;
            continue;
        }
        break;
    }
    if (reply->type == REDIS_REPLY_NIL) {
        snprintf(errstr, errstr_size, "sentinel %s:%d: knows no master %.100s",
                 s->host, s->port, u->master);
        goto out;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(errstr, errstr_size, "sentinel %s:%d: %.100s", s->host,
                 s->port, reply->str);
        goto out;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_STRING ||
        reply->element[0]->len >= host_size ||
        rconn_parse_int(port, reply->element[1]->str, reply->element[1]->len, 1,
                        65535) != 0) {
        snprintf(errstr, errstr_size, "sentinel %s:%d: unexpected reply",
                 s->host, s->port);
        goto out;
    }
    memcpy(host, reply->element[0]->str, reply->element[0]->len);
    host[reply->element[0]->len] = '\0';
    ret = 0;

out:
    freeReplyObject(reply);
    redisFree(redis);
    return ret;
}

int rconn_resolve(const struct rconn_url *u, char *host, size_t host_size,
                  int *port, int timeout_ms, char *errstr, size_t errstr_size)
{
    if (u->is_unix) {
        snprintf(errstr, errstr_size, "redis: a unix socket has no address");
        return -1;
    }
    if (!u->is_sentinel) {
        if (strlen(u->host) >= host_size) {
            snprintf(errstr, errstr_size, "redis: host name too long");
            return -1;
        }
        snprintf(host, host_size, "%s", u->host);
        *port = u->port;
        return 0;
    }
    if (timeout_ms <= 0)
        timeout_ms = 500;
    for (int i = 0; i < u->nsentinels; i++) {
        /* The last Sentinel's error is the one reported. */
        if (rconn_ask_sentinel(u, &u->sentinels[i], host, host_size, port,
                               timeout_ms, errstr, errstr_size) == 0)
            return 0;
    }
    return -1;
}

static int rconn_setup_command(redisContext *redis, int argc, const char **argv,
                               char *errstr, size_t errstr_size);

/* ------------------------------------------------------------------------ */
/* The epoch. */

void rconn_epoch_seen(struct rconn_epoch *e, const char *value, size_t len)
{
    char v[sizeof(e->value)];

    if (len >= sizeof(v))
        len = sizeof(v) - 1;
    memcpy(v, value, len);
    v[len] = '\0';
    if (strcmp(v, e->value) == 0)
        return;
    if (e->value[0] != '\0') {
        e->changes++;
        snprintf(e->previous, sizeof(e->previous), "%s", e->value);
    }
    snprintf(e->value, sizeof(e->value), "%s", v);
}

void rconn_epoch_candidate(char *buf, size_t buf_size)
{
    static uint64_t seq;
    unsigned char raw[16] = {0};
    FILE *f = fopen("/dev/urandom", "rb");
    size_t got = f != NULL ? fread(raw, 1, sizeof(raw), f) : 0;

    if (f != NULL)
        fclose(f);
    if (got != sizeof(raw)) {
        /* No /dev/urandom: the clock, the address space and a counter
         * still differ between processes and calls. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t a = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        uint64_t b = (uint64_t)(uintptr_t)&seq ^ (++seq * 0x9e3779b97f4a7c15u);
        memcpy(raw, &a, 8);
        memcpy(raw + 8, &b, 8);
    }
    size_t n = 0;
    for (size_t i = 0; i < sizeof(raw) && n + 2 < buf_size; i++)
        n += (size_t)snprintf(buf + n, buf_size - n, "%02x", raw[i]);
}

/* SET <prefix>:epoch <candidate> NX, then GET it, on `redis`; records what
 * was read. Returns 0, or -1 with errstr set. */
static int rconn_epoch_read(redisContext *redis, const char *prefix,
                            struct rconn_epoch *e, char *errstr,
                            size_t errstr_size)
{
    char key[128], cand[40];
    redisReply *reply = NULL;
    int ret = -1;

    snprintf(key, sizeof(key), "%s:%s", prefix, RCONN_EPOCH_KIND);
    rconn_epoch_candidate(cand, sizeof(cand));
    const char *set[] = {"SET", key, cand, "NX"};
    const char *get[] = {"GET", key};
    if (rconn_setup_command(redis, 4, set, errstr, errstr_size) != 0)
        goto out;
    reply = redisCommandArgv(redis, 2, get, NULL);
    if (reply == NULL) {
        snprintf(errstr, errstr_size, "redis: %.100s", redis->errstr);
        goto out;
    }
    if (reply->type != REDIS_REPLY_STRING) {
        snprintf(errstr, errstr_size, "redis: epoch: unexpected reply");
        goto out;
    }
    rconn_epoch_seen(e, reply->str, reply->len);
    ret = 0;

out:
    freeReplyObject(reply);
    return ret;
}

/* Connects now, replacing any old context. Returns 0, or -1 with
 * rc->last_error set. */
static int rconn_connect(struct rconn *rc)
{
    struct timeval tv = rconn_timeval(rc->connect_timeout_ms);
    redisContext *redis = NULL;
    char err[128];
    int ret = -1;

    char host[256];
    int port = 0;

    redisFree(rc->redis);
    rc->redis = NULL;
    if (!rc->url.is_unix &&
        rconn_resolve(&rc->url, host, sizeof(host), &port,
                      rc->connect_timeout_ms, err, sizeof(err)) != 0)
        goto out;
    if (rc->url.is_unix)
        redis = redisConnectUnixWithTimeout(rc->url.path, tv);
    else
        redis = redisConnectWithTimeout(host, port, tv);
    if (redis == NULL) {
        snprintf(err, sizeof(err), "redis: cannot allocate a context");
        goto out;
    }
    if (redis->err) {
        snprintf(err, sizeof(err), "redis: connect: %.100s", redis->errstr);
        goto out;
    }
    if (redisSetTimeout(redis, rconn_timeval(rc->command_timeout_ms)) !=
        REDIS_OK) {
        snprintf(err, sizeof(err), "redis: cannot set timeout");
        goto out;
    }
    if (rconn_auth(redis, &rc->url, err, sizeof(err)) != 0)
        goto out;
    if (rc->url.is_sentinel &&
        rconn_check_primary(redis, err, sizeof(err)) != 0)
        goto out;
    if (rc->url.db != 0) {
        char db[24];
        const char *argv[] = {"SELECT", rconn_i64(db, sizeof(db), rc->url.db)};
        if (rconn_setup_command(redis, 2, argv, err, sizeof(err)) != 0)
            goto out;
    }
    /* Every connect reads the epoch: a Redis that came back empty is seen
     * before any call runs on it. */
    if (rc->epoch != NULL &&
        rconn_epoch_read(redis, rc->prefix, rc->epoch, err, sizeof(err)) != 0)
        goto out;
    rc->redis = redis;
    redis = NULL;
    rc->backoff_ms = 0;
    rc->retry_at_ms = 0;
    ret = 0;

out:
    if (ret != 0) {
        snprintf(rc->last_error, sizeof(rc->last_error), "%s", err);
        rc->backoff_ms =
            rc->backoff_ms == 0 ? rc->backoff_min_ms : rc->backoff_ms * 2;
        if (rc->backoff_ms > rc->backoff_max_ms)
            rc->backoff_ms = rc->backoff_max_ms;
        rc->retry_at_ms = rconn_now_ms() + rc->backoff_ms;
        rc->is_up = false;
    }
    redisFree(redis);
    return ret;
}

/* Makes sure a usable context exists, honouring the backoff. Sets *fresh
 * when it had to connect. */
static int rconn_ensure(struct rconn *rc, bool *fresh, char *errstr,
                        size_t errstr_size)
{
    int64_t now;

    *fresh = false;
    if (rc->redis != NULL && rc->redis->err == 0)
        return 0;
    now = rconn_now_ms();
    if (rc->retry_at_ms > now) {
        snprintf(errstr, errstr_size, "%s (next attempt in %" PRId64 " ms)",
                 rc->last_error, rc->retry_at_ms - now);
        return -1;
    }
    if (rconn_connect(rc) != 0) {
        snprintf(errstr, errstr_size, "%s (next attempt in %d ms)",
                 rc->last_error, rc->backoff_ms);
        return -1;
    }
    *fresh = true;
    return 0;
}

int rconn_new(struct rconn **out, const struct rconn_opts *opts, char *errstr,
              size_t errstr_size)
{
    struct rconn *rc = NULL;
    const char *prefix = opts->prefix != NULL ? opts->prefix : "kurir";

    if (prefix[0] == '\0' || strpbrk(prefix, "{}") != NULL ||
        strlen(prefix) >= sizeof(rc->prefix)) {
        snprintf(errstr, errstr_size,
                 "redis key prefix must be 1-63 bytes "
                 "without braces");
        return -1;
    }
    rc = calloc(1, sizeof(*rc));
    if (rc == NULL)
        abort(); /* Out of memory aborts (STYLE §4.3). */
    if (rconn_url_parse(&rc->url, opts->url, errstr, errstr_size) != 0) {
        free(rc);
        return -1;
    }
    snprintf(rc->prefix, sizeof(rc->prefix), "%s", prefix);
    rc->connect_timeout_ms =
        opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 1000;
    rc->command_timeout_ms =
        opts->command_timeout_ms > 0 ? opts->command_timeout_ms : 1000;
    rc->backoff_min_ms = opts->backoff_min_ms > 0 ? opts->backoff_min_ms : 100;
    rc->backoff_max_ms = opts->backoff_max_ms > 0 ? opts->backoff_max_ms : 5000;
    if (rc->backoff_max_ms < rc->backoff_min_ms)
        rc->backoff_max_ms = rc->backoff_min_ms;
    rc->epoch = opts->epoch;
    if (rconn_connect(rc) == 0)
        rc->is_up = true;
    *out = rc;
    return 0;
}

void rconn_free(struct rconn *rc)
{
    if (rc == NULL)
        return;
    redisFree(rc->redis);
    /* The password must not linger in freed memory. */
    memset(&rc->url, 0, sizeof(rc->url));
    free(rc);
}

const char *rconn_prefix(const struct rconn *rc)
{
    return rc->prefix;
}

bool rconn_is_up(const struct rconn *rc)
{
    return rc->is_up;
}

uint64_t rconn_round_trips(const struct rconn *rc)
{
    return rc->round_trips;
}

/* ------------------------------------------------------------------------ */
/* Commands. */

int rconn_command(redisReply **out, struct rconn *rc, int argc,
                  const char **argv, const size_t *argvlen, bool may_repeat,
                  char *errstr, size_t errstr_size)
{
    redisReply *reply = NULL;
    bool fresh;
    int ret = -1;

    for (int attempt = 0; attempt < 2; attempt++) {
        if (rconn_ensure(rc, &fresh, errstr, errstr_size) != 0)
            goto out;
        reply = redisCommandArgv(rc->redis, argc, argv, argvlen);
        if (reply != NULL)
            break;
        /* The context is now broken; hiredis never reuses it. */
        snprintf(rc->last_error, sizeof(rc->last_error), "redis: %.100s",
                 rc->redis->errstr);
        snprintf(errstr, errstr_size, "%s", rc->last_error);
        rc->is_up = false;
        redisFree(rc->redis);
        rc->redis = NULL;
        /* Reconnect once at once; repeat only harmless commands and only
         * when the failure was on an old connection. */
        if (fresh || !may_repeat) {
            rc->retry_at_ms = 0;
            goto out;
        }
    }
    if (reply == NULL)
        goto out;
    rc->round_trips++;
    rc->is_up = true;
    if (reply->type == REDIS_REPLY_ERROR) {
        rconn_reply_error(reply, errstr, errstr_size);
        /* Our primary became a replica (a failover): drop the connection
         * so the next call finds the new primary. */
        if (strncmp(reply->str, "READONLY", 8) == 0) {
            redisFree(rc->redis);
            rc->redis = NULL;
            rc->retry_at_ms = 0;
        }
        goto out;
    }
    *out = reply;
    reply = NULL;
    ret = 0;

out:
    freeReplyObject(reply);
    return ret;
}

int rconn_ping(struct rconn *rc, char *errstr, size_t errstr_size)
{
    redisReply *reply = NULL;
    const char *argv[] = {"PING"};
    int ret;

    ret = rconn_command(&reply, rc, 1, argv, NULL, true, errstr, errstr_size);
    freeReplyObject(reply);
    return ret;
}

static int rconn_script_load(struct rconn *rc, struct rconn_script *script,
                             char *errstr, size_t errstr_size)
{
    redisReply *reply = NULL;
    const char *argv[] = {"SCRIPT", "LOAD", script->src};
    int ret = -1;

    if (rconn_command(&reply, rc, 3, argv, NULL, true, errstr, errstr_size) !=
        0)
        goto out;
    if (reply->type != REDIS_REPLY_STRING || reply->len != 40) {
        snprintf(errstr, errstr_size, "redis: unexpected SCRIPT LOAD reply");
        goto out;
    }
    memcpy(script->sha, reply->str, 40);
    script->sha[40] = '\0';
    ret = 0;

out:
    freeReplyObject(reply);
    return ret;
}

int rconn_eval(redisReply **out, struct rconn *rc, struct rconn_script *script,
               int nkeys, int argc, const char **argv, const size_t *argvlen,
               bool may_repeat, char *errstr, size_t errstr_size)
{
    const char **av = NULL;
    size_t *al = NULL;
    char nkeys_buf[24];
    int ret = -1;

    av = malloc(sizeof(*av) * (size_t)(argc + 3));
    al = malloc(sizeof(*al) * (size_t)(argc + 3));
    if (av == NULL || al == NULL)
        abort();
    av[0] = "EVALSHA";
    av[2] = rconn_i64(nkeys_buf, sizeof(nkeys_buf), nkeys);
    al[0] = strlen(av[0]);
    al[1] = 40;
    al[2] = strlen(av[2]);
    for (int i = 0; i < argc; i++) {
        av[i + 3] = argv[i];
        al[i + 3] = argvlen != NULL ? argvlen[i] : strlen(argv[i]);
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        if (script->sha[0] == '\0' &&
            rconn_script_load(rc, script, errstr, errstr_size) != 0)
            goto out;
        av[1] = script->sha;
        ret = rconn_command(out, rc, argc + 3, av, al, may_repeat, errstr,
                            errstr_size);
        if (ret == 0 || strstr(errstr, "NOSCRIPT") == NULL)
            goto out;
        /* Redis restarted or its script cache was flushed: load again. */
        script->sha[0] = '\0';
    }

out:
    free(av);
    free(al);
    return ret;
}

/* ------------------------------------------------------------------------ */
/* Keys and replies. */

int rconn_key(char *buf, size_t buf_size, const struct rconn *rc,
              const char *account, const char *kind, const char *id,
              char *errstr, size_t errstr_size)
{
    return rconn_key_p(buf, buf_size, rc->prefix, account, kind, id, errstr,
                       errstr_size);
}

int rconn_key_p(char *buf, size_t buf_size, const char *prefix,
                const char *account, const char *kind, const char *id,
                char *errstr, size_t errstr_size)
{
    if (account[0] == '\0' || strpbrk(account, "{}") != NULL) {
        snprintf(errstr, errstr_size,
                 "account name must be non-empty and "
                 "free of braces");
        return -1;
    }
    /* "<prefix>:{<account>}:<kind>[:<id>]", built by hand: several keys a
     * message, where snprintf was 2% of the worker. */
    const char *parts[] = {prefix,
                           ":{",
                           account,
                           "}:",
                           kind,
                           id != NULL ? ":" : "",
                           id != NULL ? id : ""};
    size_t n = 0;
    bool fits = true;
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]) && fits; i++) {
        size_t len = strlen(parts[i]);
        fits = n + len < buf_size && n + len < RCONN_KEY_MAX;
        if (fits) {
            memcpy(buf + n, parts[i], len);
            n += len;
        }
    }
    if (buf_size > 0)
        buf[fits ? n : 0] = '\0';
    if (!fits) {
        snprintf(errstr, errstr_size,
                 "redis key too long (account or id "
                 "over the limit)");
        return -1;
    }
    return 0;
}

const char *rconn_i64(char *buf, size_t buf_size, int64_t v)
{
    snprintf(buf, buf_size, "%" PRId64, v);
    return buf;
}

int rconn_reply_i64(int64_t *out, const redisReply *reply)
{
    char buf[32];
    char *end = NULL;
    long long v;

    if (reply->type == REDIS_REPLY_INTEGER) {
        *out = reply->integer;
        return 0;
    }
    if (reply->type != REDIS_REPLY_STRING || reply->len == 0 ||
        reply->len >= sizeof(buf))
        return -1;
    memcpy(buf, reply->str, reply->len);
    buf[reply->len] = '\0';
    errno = 0;
    v = strtoll(buf, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

int rconn_epoch_check(struct rconn *rc, char *errstr, size_t errstr_size)
{
    bool fresh;

    if (rc->epoch == NULL)
        return 0;
    if (rconn_ensure(rc, &fresh, errstr, errstr_size) != 0)
        return -1;
    if (fresh) /* the connect read it */
        return 0;
    if (rconn_epoch_read(rc->redis, rc->prefix, rc->epoch, errstr,
                         errstr_size) != 0) {
        rc->is_up = false;
        return -1;
    }
    rc->round_trips += 2;
    rc->is_up = true;
    return 0;
}

/* Reads "name value" from a CONFIG GET reply. Returns 0, or -1. */
static int rconn_config_value(char *out, size_t out_size,
                              const redisReply *reply)
{
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
        reply->elements != 2 || reply->element[1]->type != REDIS_REPLY_STRING)
        return -1;
    snprintf(out, out_size, "%s", reply->element[1]->str);
    return 0;
}

int rconn_persistence(struct rconn_persistence *out, struct rconn *rc,
                      char *errstr, size_t errstr_size)
{
    struct rconn_persistence p = {0};
    redisReply *aof = NULL, *save = NULL, *info = NULL;
    char v[256];
    int ret = -1;

    const char *aof_argv[] = {"CONFIG", "GET", "appendonly"};
    const char *save_argv[] = {"CONFIG", "GET", "save"};
    if (rconn_command(&aof, rc, 3, aof_argv, NULL, true, errstr, errstr_size) ==
            0 &&
        rconn_command(&save, rc, 3, save_argv, NULL, true, errstr,
                      errstr_size) == 0 &&
        rconn_config_value(v, sizeof(v), aof) == 0) {
        p.aof = strcmp(v, "yes") == 0;
        if (rconn_config_value(v, sizeof(v), save) == 0) {
            p.rdb = v[0] != '\0';
            p.rdb_known = true;
        }
        snprintf(p.how, sizeof(p.how), "CONFIG");
    } else {
        /* CONFIG renamed or refused (a managed Redis, an ACL): INFO says
         * whether AOF is on, not what RDB saves. */
        const char *info_argv[] = {"INFO", "persistence"};
        if (rconn_command(&info, rc, 2, info_argv, NULL, true, errstr,
                          errstr_size) != 0)
            goto out;
        if (info->type != REDIS_REPLY_STRING &&
            info->type != REDIS_REPLY_STATUS) {
            snprintf(errstr, errstr_size, "redis: INFO: unexpected reply");
            goto out;
        }
        p.aof = strstr(info->str, "aof_enabled:1") != NULL;
        snprintf(p.how, sizeof(p.how), "INFO");
    }
    *out = p;
    ret = 0;

out:
    freeReplyObject(aof);
    freeReplyObject(save);
    freeReplyObject(info);
    return ret;
}
