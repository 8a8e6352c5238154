/* ratelimit/aredis.c - one asynchronous Redis connection for the loop.
 *
 * hiredis' async context does the protocol; this file is its adapter to
 * our loop (the ev hooks only note what the socket waits for) plus what
 * the loop needs around it: a FIFO of calls to time out the oldest, a
 * backoff between connects, EVALSHA with script loading, and callbacks
 * that are called exactly once whatever happens to the connection. */
#include "ratelimit/aredis.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/async.h>

/* One queued call. Replies arrive in order, so the FIFO's head is the
 * oldest call without a reply. */
struct acall {
    aredis_fn *fn; /* NULL for the connection's own calls */
    void *privdata;
    struct rconn_script *script; /* EVAL/EVALSHA: to reload on NOSCRIPT */
    bool loads;                  /* SCRIPT LOAD of `script` */
    int64_t queued_ms;
    struct acall *next;
};

struct aredis {
    struct rconn_url url;
    char prefix[64];
    int command_timeout_ms;
    int backoff_min_ms, backoff_max_ms;
    redisAsyncContext *ac; /* NULL while disconnected */
    bool connected;        /* the connect callback said yes */
    bool want_read, want_write;
    int backoff_ms;
    int64_t retry_at_ms;  /* no connect before this */
    struct acall *head;   /* calls sent or to be sent, oldest first */
    struct acall *tail;   /* of head's list */
    struct acall *failed; /* calls to fail at the next flush or tick */
    size_t pending;
    bool up;
    bool dirty;    /* commands queued since the last flush */
    bool dropping; /* inside redisAsyncFree: its callbacks fail the calls */
    uint64_t round_trips, commands;
    struct rconn_epoch *epoch; /* borrowed; NULL: not read */
};

static int64_t aredis_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------------ */
/* The adapter: hiredis tells us what the socket waits for. */

static void aredis_add_read(void *data)
{
    ((struct aredis *)data)->want_read = true;
}

static void aredis_del_read(void *data)
{
    ((struct aredis *)data)->want_read = false;
}

static void aredis_add_write(void *data)
{
    ((struct aredis *)data)->want_write = true;
}

static void aredis_del_write(void *data)
{
    ((struct aredis *)data)->want_write = false;
}

static void aredis_cleanup_ev(void *data)
{
    struct aredis *ar = data;

    ar->want_read = ar->want_write = false;
}

/* ------------------------------------------------------------------------ */
/* Calls. */

static void aredis_call_end(struct acall *c, const redisReply *reply,
                            const char *err)
{
    if (c->fn != NULL)
        c->fn(reply, err, c->privdata);
    free(c);
}

/* hiredis calls this once per command: with its reply, or with NULL when
 * the context is going away. */
static void aredis_reply_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    struct aredis *ar = ac->ev.data;
    struct acall *c = privdata;
    const redisReply *reply = r;
    char err[256];

    /* Replies come in order: c is the head. */
    if (ar->head == c) {
        ar->head = c->next;
        if (ar->head == NULL)
            ar->tail = NULL;
    }
    ar->pending--;
    if (reply == NULL) {
        ar->up = false;
        snprintf(err, sizeof(err), "redis: %s",
                 ac->err != 0 ? ac->errstr : "connection lost");
        aredis_call_end(c, NULL, err);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(err, sizeof(err), "redis: %.200s", reply->str);
        if (c->script != NULL && strncmp(reply->str, "NOSCRIPT", 8) == 0)
            c->script->sha[0] = '\0'; /* the next call loads it again */
        if (strncmp(reply->str, "READONLY", 8) == 0) {
            /* A primary demoted by a failover: find the new one. */
            ar->up = false;
            redisAsyncDisconnect(ac);
        }
        if (c->fn == NULL && !c->loads) {
            /* AUTH or SELECT refused: this connection is of no use. */
            ar->up = false;
            redisAsyncDisconnect(ac);
        }
        aredis_call_end(c, NULL, err);
        return;
    }
    ar->up = true;
    if (c->loads && reply->type == REDIS_REPLY_STRING && reply->len == 40) {
        memcpy(c->script->sha, reply->str, 40);
        c->script->sha[40] = '\0';
    }
    aredis_call_end(c, reply, NULL);
}

static struct acall *aredis_call_new(aredis_fn *fn, void *privdata)
{
    struct acall *c = calloc(1, sizeof(*c));

    if (c == NULL)
        abort();
    c->fn = fn;
    c->privdata = privdata;
    c->queued_ms = aredis_now_ms();
    return c;
}

/* Fails the calls queued while no connection could take them. */
static void aredis_fail_deferred(struct aredis *ar)
{
    while (ar->failed != NULL) {
        struct acall *c = ar->failed;
        ar->failed = c->next;
        ar->pending--;
        aredis_call_end(c, NULL, "redis: not connected");
    }
}

static void aredis_connect(struct aredis *ar);

static int aredis_send(struct aredis *ar, struct acall *c, int argc,
                       const char **argv, const size_t *argvlen)
{
    ar->pending++;
    /* A caller told of a lost call may call again at once, from inside the
     * teardown: that call waits for the next tick, so no new connection is
     * made while hiredis is still failing the old one's calls (and the old
     * one's disconnect callback cannot forget it). */
    if (ar->ac == NULL && !ar->dropping && aredis_now_ms() >= ar->retry_at_ms)
        aredis_connect(ar);
    if (ar->ac == NULL || ar->dropping ||
        redisAsyncCommandArgv(ar->ac, aredis_reply_cb, c, argc, argv,
                              argvlen) != REDIS_OK) {
        c->next = ar->failed;
        ar->failed = c;
        return 0;
    }
    c->next = NULL;
    if (ar->tail != NULL)
        ar->tail->next = c;
    else
        ar->head = c;
    ar->tail = c;
    ar->commands++;
    ar->dirty = true;
    return 0;
}

int aredis_command(struct aredis *ar, int argc, const char **argv,
                   const size_t *argvlen, aredis_fn *fn, void *privdata)
{
    return aredis_send(ar, aredis_call_new(fn, privdata), argc, argv, argvlen);
}

int aredis_eval(struct aredis *ar, struct rconn_script *script, int nkeys,
                int argc, const char **argv, const size_t *argvlen,
                aredis_fn *fn, void *privdata)
{
    const char **av = malloc(sizeof(*av) * (size_t)(argc + 3));
    size_t *al = malloc(sizeof(*al) * (size_t)(argc + 3));
    char nk[24];

    if (av == NULL || al == NULL)
        abort();
    if (script->sha[0] == '\0') {
        /* Learn the SHA1 for the next calls; this one carries the source. */
        const char *load[] = {"SCRIPT", "LOAD", script->src};
        struct acall *c = aredis_call_new(NULL, NULL);
        c->script = script;
        c->loads = true;
        aredis_send(ar, c, 3, load, NULL);
        av[0] = "EVAL";
        av[1] = script->src;
    } else {
        av[0] = "EVALSHA";
        av[1] = script->sha;
    }
    av[2] = rconn_i64(nk, sizeof(nk), nkeys);
    for (int i = 0; i < 3; i++)
        al[i] = strlen(av[i]);
    for (int i = 0; i < argc; i++) {
        av[i + 3] = argv[i];
        al[i + 3] = argvlen != NULL ? argvlen[i] : strlen(argv[i]);
    }
    struct acall *c = aredis_call_new(fn, privdata);
    c->script = script;
    int ret = aredis_send(ar, c, argc + 3, av, al);
    free(av);
    free(al);
    return ret;
}

/* ------------------------------------------------------------------------ */
/* The connection. */

static void aredis_backoff(struct aredis *ar)
{
    ar->backoff_ms =
        ar->backoff_ms == 0 ? ar->backoff_min_ms : ar->backoff_ms * 2;
    if (ar->backoff_ms > ar->backoff_max_ms)
        ar->backoff_ms = ar->backoff_max_ms;
    ar->retry_at_ms = aredis_now_ms() + ar->backoff_ms;
}

static void aredis_on_connect(const redisAsyncContext *ac, int status)
{
    struct aredis *ar = ac->ev.data;

    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback. */
        if (ar->ac != ac)
            return;
        ar->ac = NULL;
        ar->connected = false;
        ar->up = false;
        aredis_backoff(ar);
        return;
    }
    ar->connected = true;
    ar->backoff_ms = 0;
}

static void aredis_on_disconnect(const redisAsyncContext *ac, int status)
{
    struct aredis *ar = ac->ev.data;

    (void)status;
    if (ar->ac != ac)
        return; /* an old context, already let go */
    ar->ac = NULL;
    ar->connected = false;
    ar->up = false;
    ar->want_read = ar->want_write = false;
    aredis_backoff(ar);
}

/* The GET of the epoch came back. */
static void aredis_epoch_got(const redisReply *reply, const char *err,
                             void *privdata)
{
    struct aredis *ar = privdata;

    if (err == NULL && reply->type == REDIS_REPLY_STRING)
        rconn_epoch_seen(ar->epoch, reply->str, reply->len);
}

static void aredis_epoch_set(const redisReply *reply, const char *err,
                             void *privdata)
{
    (void)reply;
    (void)err;
    (void)privdata;
}

/* Queues SET <prefix>:epoch <candidate> NX and GET <prefix>:epoch. */
static void aredis_epoch_read(struct aredis *ar)
{
    char key[128], cand[40];

    snprintf(key, sizeof(key), "%s:%s", ar->prefix, RCONN_EPOCH_KIND);
    rconn_epoch_candidate(cand, sizeof(cand));
    const char *set[] = {"SET", key, cand, "NX"};
    const char *get[] = {"GET", key};
    aredis_send(ar, aredis_call_new(aredis_epoch_set, ar), 4, set, NULL);
    aredis_send(ar, aredis_call_new(aredis_epoch_got, ar), 2, get, NULL);
}

void aredis_epoch_check(struct aredis *ar)
{
    if (ar->epoch != NULL && ar->ac != NULL)
        aredis_epoch_read(ar);
}

/* Starts a connection and queues its AUTH and SELECT first, so every call
 * after them runs authenticated in the right database; then the epoch
 * read, so a Redis that came back empty is seen at once. */
static void aredis_connect(struct aredis *ar)
{
    char host[256];
    int port = ar->url.port;
    char err[256];

    snprintf(host, sizeof(host), "%s", ar->url.host);
    /* Sentinel names the primary at every connect, so a failover is
     * followed: a short blocking ask, at (re)connect time only. */
    if (ar->url.is_sentinel &&
        rconn_resolve(&ar->url, host, sizeof(host), &port, 500, err,
                      sizeof(err)) != 0) {
        aredis_backoff(ar);
        return;
    }
    redisAsyncContext *ac = ar->url.is_unix
                                ? redisAsyncConnectUnix(ar->url.path)
                                : redisAsyncConnect(host, port);

    if (ac == NULL || ac->err != 0) {
        if (ac != NULL)
            redisAsyncFree(ac);
        aredis_backoff(ar);
        return;
    }
    ac->ev.data = ar;
    ac->ev.addRead = aredis_add_read;
    ac->ev.delRead = aredis_del_read;
    ac->ev.addWrite = aredis_add_write;
    ac->ev.delWrite = aredis_del_write;
    ac->ev.cleanup = aredis_cleanup_ev;
    redisAsyncSetConnectCallback(ac, aredis_on_connect);
    redisAsyncSetDisconnectCallback(ac, aredis_on_disconnect);
    ar->ac = ac;
    ar->connected = false;
    /* hiredis waits for the connect through a write event. */
    ar->want_write = true;
    if (ar->url.user[0] != '\0') {
        const char *auth[] = {"AUTH", ar->url.user, ar->url.password};
        aredis_send(ar, aredis_call_new(NULL, NULL), 3, auth, NULL);
    } else if (ar->url.password[0] != '\0') {
        const char *auth[] = {"AUTH", ar->url.password};
        aredis_send(ar, aredis_call_new(NULL, NULL), 2, auth, NULL);
    }
    if (ar->url.db != 0) {
        char db[24];
        const char *sel[] = {"SELECT", rconn_i64(db, sizeof(db), ar->url.db)};
        aredis_send(ar, aredis_call_new(NULL, NULL), 2, sel, NULL);
    }
    if (ar->epoch != NULL)
        aredis_epoch_read(ar);
}

int aredis_new(struct aredis **out, const struct rconn_opts *opts, char *errstr,
               size_t errstr_size)
{
    struct aredis *ar = calloc(1, sizeof(*ar));

    if (ar == NULL)
        abort();
    if (rconn_url_parse(&ar->url, opts->url, errstr, errstr_size) != 0) {
        free(ar);
        return -1;
    }
    snprintf(ar->prefix, sizeof(ar->prefix), "%s",
             opts->prefix != NULL ? opts->prefix : "kurir");
    ar->command_timeout_ms =
        opts->command_timeout_ms > 0 ? opts->command_timeout_ms : 1000;
    ar->backoff_min_ms = opts->backoff_min_ms > 0 ? opts->backoff_min_ms : 100;
    ar->backoff_max_ms = opts->backoff_max_ms > 0 ? opts->backoff_max_ms : 5000;
    ar->epoch = opts->epoch;
    aredis_connect(ar);
    *out = ar;
    return 0;
}

void aredis_free(struct aredis *ar)
{
    if (ar == NULL)
        return;
    if (ar->ac != NULL) {
        redisAsyncContext *ac = ar->ac;
        ar->ac = NULL;
        ar->dropping = true;
        redisAsyncFree(ac); /* fails every call still queued */
        ar->dropping = false;
    }
    aredis_fail_deferred(ar);
    free(ar);
}

void aredis_flush(struct aredis *ar)
{
    aredis_fail_deferred(ar);
    if (ar->ac != NULL && ar->connected && ar->dirty && ar->want_write) {
        ar->round_trips++;
        ar->dirty = false;
        redisAsyncHandleWrite(ar->ac);
    }
}

bool aredis_waitfd(const struct aredis *ar, int *fd, short *events)
{
    if (ar->ac == NULL)
        return false;
    *fd = ar->ac->c.fd;
    *events =
        (short)((ar->want_read ? POLLIN : 0) | (ar->want_write ? POLLOUT : 0));
    return *events != 0;
}

void aredis_io(struct aredis *ar, short revents)
{
    if (ar->ac != NULL && (revents & (POLLIN | POLLERR | POLLHUP)))
        redisAsyncHandleRead(ar->ac);
    if (ar->ac != NULL && (revents & POLLOUT)) {
        if (ar->connected && ar->dirty) {
            ar->round_trips++;
            ar->dirty = false;
        }
        redisAsyncHandleWrite(ar->ac);
    }
}

void aredis_tick(struct aredis *ar)
{
    aredis_fail_deferred(ar);
    if (ar->ac != NULL && ar->head != NULL &&
        aredis_now_ms() - ar->head->queued_ms > ar->command_timeout_ms) {
        /* Redis stalls: drop the connection, so every caller learns now
         * that its call's fate is unknown, and connect again. */
        redisAsyncContext *ac = ar->ac;
        ar->ac = NULL;
        ar->up = false;
        ar->dropping = true;
        redisAsyncFree(ac);
        ar->dropping = false;
        aredis_backoff(ar);
    }
    if (ar->ac == NULL && ar->head == NULL &&
        aredis_now_ms() >= ar->retry_at_ms)
        aredis_connect(ar);
}

bool aredis_is_up(const struct aredis *ar)
{
    return ar->ac != NULL && ar->connected && ar->up;
}

size_t aredis_pending(const struct aredis *ar)
{
    return ar->pending;
}

uint64_t aredis_round_trips(const struct aredis *ar)
{
    return ar->round_trips;
}

uint64_t aredis_commands(const struct aredis *ar)
{
    return ar->commands;
}

const char *aredis_prefix(const struct aredis *ar)
{
    return ar->prefix;
}
