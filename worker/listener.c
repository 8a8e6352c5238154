/* worker/listener.c - provider callbacks, health and metrics over
 * libmicrohttpd.
 *
 * Threads: the access handler runs on libmicrohttpd's thread; it touches
 * only the immutable accounts, the inbox and the published health under
 * `lock`. The loop takes hooks from the inbox and answers them; answering
 * resumes the suspended connection, after which libmicrohttpd calls the
 * handler again and the stored answer is queued. */
#include "worker/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "worker/log.h"
#include "worker/xalloc.h"

/* Callbacks are small: InTime's form, one iP.1 document. */
#define LISTENER_MAX_BODY (64 * 1024)

/* A slow client or a flood must not hold the listener: connections at
 * once, per client address (an Ingress is one address, so generous), and
 * callbacks waiting for the loop (503 beyond, the provider retries). */
#define LISTENER_MAX_CONNS     1024
#define LISTENER_MAX_PER_IP    256
#define LISTENER_ADMIN_CONNS   64
#define LISTENER_MAX_SUSPENDED 512

/* Which routes a daemon serves. */
enum listener_role {
    ROLE_ALL,    /* one listener: everything (no KURIR_ADMIN_LISTEN) */
    ROLE_PUBLIC, /* /callbacks/ only */
    ROLE_ADMIN,  /* /healthz, /readyz, /metrics only */
};

struct listener;

/* One libmicrohttpd daemon and what it serves. */
struct listener_port {
    struct listener *l;
    enum listener_role role;
    struct MHD_Daemon *daemon;
    unsigned port; /* bound */
};

struct listener {
    struct MHD_Daemon *daemon; /* pub.daemon, for the old paths */
    struct listener_port pub;
    struct listener_port admin;   /* daemon NULL without KURIR_ADMIN_LISTEN */
    _Atomic int64_t heartbeat_ms; /* monotonic ms of the loop's last turn */
    int64_t stall_ms;             /* /healthz fails beyond this */
    size_t suspended;             /* callbacks in inbox or taken; lock */
    bool kafka_published;         /* kafka_ok is the loop's; lock */
    bool kafka_ok;
    const struct accounts *accounts;
    listener_probe_fn *kafka_ready;
    void *opaque;
    int pipefd[2];        /* wakes the loop: [0] read, [1] write */
    pthread_mutex_t lock; /* guards everything below */
    struct hook *inbox;   /* waiting for the loop, oldest first */
    struct hook **inbox_tail;
    struct hook *taken; /* with the loop, not yet answered */
    bool redis_ok;
    char redis_note[64]; /* "" or why Redis is not ready */
    char *metrics;
};

/* What libmicrohttpd keeps per request between handler calls. */
struct request {
    char *uri; /* the full URI, query included */
    char *body;
    size_t body_len;
    bool too_big;
    bool started;      /* the handler's first call has been */
    struct hook *hook; /* set once handed to the loop */
    bool answered;     /* hook->answer_* hold the answer */
    bool expired;      /* answered 503 by listener_expire (hook NULL) */
};

static void hook_free(struct hook *h);

static int64_t listener_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *listener_uri_cb(void *cls, const char *uri,
                             struct MHD_Connection *conn)
{
    struct request *req = xcalloc(1, sizeof(*req));

    (void)cls;
    (void)conn;
    req->uri = xstrdup(uri);
    return req;
}

static void listener_completed_cb(void *cls, struct MHD_Connection *conn,
                                  void **con_cls,
                                  enum MHD_RequestTerminationCode toe)
{
    struct request *req = *con_cls;

    (void)cls;
    (void)conn;
    (void)toe;
    if (req == NULL)
        return;
    if (req->hook != NULL) /* answered (or stopped) but never sent */
        hook_free(req->hook);
    free(req->uri);
    free(req->body);
    free(req);
    *con_cls = NULL;
}

static void hook_free(struct hook *h)
{
    free(h->query);
    free(h->body);
    free(h);
}

static enum MHD_Result listener_reply(struct MHD_Connection *conn, int status,
                                      const char *body,
                                      const char *content_type)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);

    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", content_type);
    enum MHD_Result r = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return r;
}

/* Compares secrets in time independent of where they differ. An account
 * without a token (one whose provider never calls back) and an empty token
 * match nothing. */
static bool listener_token_ok(const char *want, const char *got)
{
    if (want == NULL || want[0] == '\0' || got == NULL)
        return false;
    size_t wl = strlen(want), gl = strlen(got);
    unsigned char diff = wl != gl;
    for (size_t i = 0; i < wl; i++)
        diff |= (unsigned char)(want[i] ^ (i < gl ? got[i] : 0));
    return diff == 0;
}

/* Parses "/callbacks/<account>/<kind>"; returns the account or NULL. */
static const struct account *listener_route(const struct listener *l,
                                            const char *url,
                                            enum callback_kind *kind)
{
    static const char prefix[] = "/callbacks/";
    char name[128];

    if (strncmp(url, prefix, sizeof(prefix) - 1) != 0)
        return NULL;
    const char *a = url + sizeof(prefix) - 1;
    const char *slash = strchr(a, '/');
    if (slash == NULL || (size_t)(slash - a) >= sizeof(name))
        return NULL;
    memcpy(name, a, (size_t)(slash - a));
    name[slash - a] = '\0';
    if (strcmp(slash + 1, "status") == 0)
        *kind = CALLBACK_STATUS;
    else if (strcmp(slash + 1, "inbound") == 0)
        *kind = CALLBACK_INBOUND;
    else
        return NULL;
    return l->accounts != NULL ? accounts_find(l->accounts, name) : NULL;
}

static enum MHD_Result listener_callback(struct listener *l,
                                         struct MHD_Connection *conn,
                                         struct request *req, const char *url,
                                         const char *method)
{
    enum callback_kind kind;
    const struct account *acct = listener_route(l, url, &kind);

    if (acct == NULL)
        return listener_reply(conn, 404, "no such account or callback\n",
                              "text/plain");
    const char *token =
        MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "token");
    if (!listener_token_ok(acct->webhook_token, token)) {
        log_warn("listener: callback for %s with a wrong token", acct->name);
        return listener_reply(conn, 403, "bad token\n", "text/plain");
    }
    if (req->too_big)
        return listener_reply(conn, 413, "body too large\n", "text/plain");
    pthread_mutex_lock(&l->lock);
    bool full = l->suspended >= LISTENER_MAX_SUSPENDED;
    if (!full)
        l->suspended++;
    pthread_mutex_unlock(&l->lock);
    if (full) {
        log_warn("listener: %d callbacks already wait for the loop; 503",
                 LISTENER_MAX_SUSPENDED);
        return listener_reply(conn, 503, "busy, retry later\n", "text/plain");
    }

    struct hook *h = xcalloc(1, sizeof(*h));
    h->owner = OWNER_HOOK;
    h->acct = acct;
    h->kind = kind;
    h->conn = conn;
    h->req = req;
    const char *q = strchr(req->uri, '?');
    h->query = xstrdup(q != NULL ? q + 1 : "");
    h->body = req->body != NULL ? req->body : xstrdup("");
    req->body = NULL; /* Now owned by the hook. */
    const char *ct =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    snprintf(h->content_type, sizeof(h->content_type), "%s", ct ? ct : "");
    snprintf(h->method, sizeof(h->method), "%s", method);
    h->in.method = h->method;
    h->in.query = h->query;
    h->in.content_type = h->content_type[0] ? h->content_type : NULL;
    h->in.body = h->body;
    h->in.body_len = req->body_len;
    req->hook = h;

    MHD_suspend_connection(conn);
    pthread_mutex_lock(&l->lock);
    *l->inbox_tail = h;
    l->inbox_tail = &h->next;
    pthread_mutex_unlock(&l->lock);
    if (write(l->pipefd[1], "h", 1) < 0 && errno != EAGAIN)
        log_warn("listener: wake-up: %s", strerror(errno));
    return MHD_YES;
}

static enum MHD_Result listener_handler(void *cls, struct MHD_Connection *conn,
                                        const char *url, const char *method,
                                        const char *version,
                                        const char *upload_data,
                                        size_t *upload_data_size,
                                        void **con_cls)
{
    struct listener_port *lp = cls;
    struct listener *l = lp->l;
    enum listener_role role = lp->role;
    struct request *req = *con_cls;

    (void)version;
    if (req->answered && req->expired)
        return listener_reply(conn, 503,
                              "timed out waiting for Kafka, retry later\n",
                              "text/plain");
    if (req->answered) {
        struct hook *h = req->hook;
        enum MHD_Result r = listener_reply(conn, h->answer_status,
                                           h->answer_body, h->answer_type);
        hook_free(h);
        req->hook = NULL;
        return r;
    }
    if (req->hook != NULL) /* resumed spuriously: still with the loop */
        return MHD_YES;
    if (!req->started) { /* headers only; the body (if any) comes next */
        req->started = true;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (req->body_len + *upload_data_size > LISTENER_MAX_BODY) {
            req->too_big = true;
        } else {
            req->body =
                xrealloc(req->body, req->body_len + *upload_data_size + 1);
            memcpy(req->body + req->body_len, upload_data, *upload_data_size);
            req->body_len += *upload_data_size;
            req->body[req->body_len] = '\0';
        }
        *upload_data_size = 0;
        return MHD_YES;
    }

    bool admin_routes = role != ROLE_PUBLIC;
    if (!admin_routes || strncmp(url, "/callbacks/", 11) == 0) {
        if (role != ROLE_ADMIN && strncmp(url, "/callbacks/", 11) == 0)
            return listener_callback(l, conn, req, url, method);
        return listener_reply(conn, 404, "not found\n", "text/plain");
    }
    if (strcmp(url, "/healthz") == 0) {
        int64_t age = listener_now_ms() - atomic_load(&l->heartbeat_ms);
        if (age <= l->stall_ms)
            return listener_reply(conn, 200, "ok\n", "text/plain");
        char body[96];
        snprintf(body, sizeof(body), "loop stalled for %lld ms\n",
                 (long long)age);
        return listener_reply(conn, 503, body, "text/plain");
    }
    if (strcmp(url, "/readyz") == 0) {
        pthread_mutex_lock(&l->lock);
        bool redis_ok = l->redis_ok;
        bool kafka_published = l->kafka_published;
        bool kafka_ok = l->kafka_ok;
        char note[sizeof(l->redis_note)];
        snprintf(note, sizeof(note), "%s", l->redis_note);
        pthread_mutex_unlock(&l->lock);
        /* The loop's published state; asking Kafka from this thread only
         * until the loop publishes it (listener_publish_state). */
        if (!kafka_published)
            kafka_ok = l->kafka_ready != NULL && l->kafka_ready(l->opaque);
        char body[160];
        snprintf(body, sizeof(body), "kafka %s\nredis %s\n",
                 kafka_ok ? "ok" : "unreachable",
                 !redis_ok         ? "unreachable"
                 : note[0] != '\0' ? note
                                   : "ok");
        bool ready = kafka_ok && redis_ok && note[0] == '\0';
        return listener_reply(conn, ready ? 200 : 503, body, "text/plain");
    }
    if (strcmp(url, "/metrics") == 0) {
        pthread_mutex_lock(&l->lock);
        char *text = xstrdup(l->metrics ? l->metrics : "");
        pthread_mutex_unlock(&l->lock);
        enum MHD_Result r =
            listener_reply(conn, 200, text, "text/plain; version=0.0.4");
        free(text);
        return r;
    }
    return listener_reply(conn, 404, "not found\n", "text/plain");
}

int listener_parse_addr(struct sockaddr_storage *out, const char *s, char *host,
                        size_t host_size)
{
    const char *colon, *h = s;
    size_t hlen;

    memset(out, 0, sizeof(*out));
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        /* An IPv6 address needs its brackets: "::1:8080" is ambiguous. */
        colon = strchr(s, ':');
        if (colon == NULL || strchr(colon + 1, ':') != NULL)
            return -1;
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen >= host_size)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno != 0 || end == colon + 1 || *end != '\0' || port < 0 ||
        port > 65535)
        return -1;
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        return 0;
    }
    return -1;
}

/* Starts one daemon on `listen` ("v4:port" or "[v6]:port"). */
static int listener_port_start(struct listener_port *lp, const char *setting,
                               const char *listen, unsigned max_conns,
                               unsigned per_ip, unsigned timeout_s,
                               char *errstr, size_t errstr_size)
{
    struct sockaddr_storage addr;
    char host[64];

    if (listener_parse_addr(&addr, listen, host, sizeof(host)) != 0) {
        snprintf(errstr, errstr_size,
                 "%s: \"%s\" is not IPv4-address:port or [IPv6-address]:port",
                 setting, listen);
        return -1;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                     MHD_ALLOW_SUSPEND_RESUME;
    if (addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&addr;
        /* "[::]" takes IPv4 too where the host allows (dual stack). */
        flags |= IN6_IS_ADDR_UNSPECIFIED(&v6->sin6_addr) ? MHD_USE_DUAL_STACK
                                                         : MHD_USE_IPv6;
    }
    lp->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, listener_handler, lp, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&addr, MHD_OPTION_URI_LOG_CALLBACK, listener_uri_cb,
        lp->l, MHD_OPTION_NOTIFY_COMPLETED, listener_completed_cb, lp->l,
        MHD_OPTION_CONNECTION_TIMEOUT, timeout_s, MHD_OPTION_CONNECTION_LIMIT,
        max_conns, MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip, MHD_OPTION_END);
    if (lp->daemon == NULL) {
        snprintf(errstr, errstr_size, "%s: cannot listen on %s", setting,
                 listen);
        return -1;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(lp->daemon, MHD_DAEMON_INFO_BIND_PORT);
    lp->port = info != NULL ? (unsigned)info->port : 0;
    log_info("listener: %s listening on %s%s%s:%u",
             lp->role == ROLE_ADMIN    ? "admin"
             : lp->role == ROLE_PUBLIC ? "webhooks"
                                       : "webhooks and admin",
             addr.ss_family == AF_INET6 ? "[" : "", host,
             addr.ss_family == AF_INET6 ? "]" : "", lp->port);
    return 0;
}

int listener_start(struct listener **out, const struct config *cfg,
                   const struct accounts *accounts,
                   listener_probe_fn *kafka_ready, void *opaque, char *errstr,
                   size_t errstr_size)
{
    struct listener *l = xcalloc(1, sizeof(*l));
    bool split = cfg->admin_listen != NULL && cfg->admin_listen[0] != '\0';

    l->accounts = accounts;
    l->kafka_ready = kafka_ready;
    l->opaque = opaque;
    l->inbox_tail = &l->inbox;
    l->pipefd[0] = l->pipefd[1] = -1;
    l->stall_ms = cfg->health_stall_ms > 0 ? cfg->health_stall_ms : 10000;
    atomic_store(&l->heartbeat_ms, listener_now_ms());
    pthread_mutex_init(&l->lock, NULL);
    l->pub.l = l;
    l->pub.role = split ? ROLE_PUBLIC : ROLE_ALL;
    l->admin.l = l;
    l->admin.role = ROLE_ADMIN;

    if (pipe(l->pipefd) != 0) {
        snprintf(errstr, errstr_size, "pipe: %s", strerror(errno));
        goto fail;
    }
    for (int i = 0; i < 2; i++)
        fcntl(l->pipefd[i], F_SETFL, O_NONBLOCK);
    unsigned timeout_s =
        cfg->http_conn_timeout_s > 0 ? (unsigned)cfg->http_conn_timeout_s : 10;
    if (listener_port_start(&l->pub, "KURIR_HTTP_LISTEN", cfg->http_listen,
                            LISTENER_MAX_CONNS, LISTENER_MAX_PER_IP, timeout_s,
                            errstr, errstr_size) != 0)
        goto fail;
    l->daemon = l->pub.daemon;
    if (split &&
        listener_port_start(&l->admin, "KURIR_ADMIN_LISTEN", cfg->admin_listen,
                            LISTENER_ADMIN_CONNS, LISTENER_ADMIN_CONNS,
                            timeout_s, errstr, errstr_size) != 0)
        goto fail;
    *out = l;
    return 0;

fail:
    listener_stop(l);
    return -1;
}

unsigned listener_port(const struct listener *l, bool admin)
{
    if (admin && l->admin.daemon != NULL)
        return l->admin.port;
    return l->pub.port;
}

void listener_heartbeat(struct listener *l)
{
    atomic_store(&l->heartbeat_ms, listener_now_ms());
}

int listener_wake_fd(const struct listener *l)
{
    return l->pipefd[0];
}

struct hook *listener_take(struct listener *l)
{
    char buf[64];

    pthread_mutex_lock(&l->lock);
    struct hook *h = l->inbox;
    if (h != NULL) {
        l->inbox = h->next;
        if (l->inbox == NULL) {
            l->inbox_tail = &l->inbox;
            while (read(l->pipefd[0], buf, sizeof(buf)) > 0)
                ;
        }
        h->next = l->taken;
        l->taken = h;
        h->handed_ms = listener_now_ms();
    }
    pthread_mutex_unlock(&l->lock);
    return h;
}

size_t listener_expire(struct listener *l)
{
    int64_t now = listener_now_ms();
    size_t n = 0;

    pthread_mutex_lock(&l->lock);
    for (struct hook *h = l->taken; h != NULL; h = h->next) {
        if (h->expired || now - h->handed_ms < LISTENER_HOOK_WAIT_MS)
            continue;
        struct request *req = h->req;
        h->expired = true;
        req->hook = NULL; /* the loop keeps h; the request answers alone */
        req->expired = true;
        req->answered = true;
        l->suspended--;
        MHD_resume_connection(h->conn);
        h->conn = NULL;
        h->req = NULL;
        n++;
    }
    pthread_mutex_unlock(&l->lock);
    if (n > 0)
        log_warn("listener: %zu callback(s) waited %d ms for Kafka; answered "
                 "503, the provider sends them again",
                 n, LISTENER_HOOK_WAIT_MS);
    return n;
}

size_t listener_suspended(struct listener *l)
{
    pthread_mutex_lock(&l->lock);
    size_t n = l->suspended;
    pthread_mutex_unlock(&l->lock);
    return n;
}

/* Removes h from the taken list; lock held. */
static void listener_untake(struct listener *l, struct hook *h)
{
    for (struct hook **pp = &l->taken; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == h) {
            *pp = h->next;
            return;
        }
    }
}

void hook_answer(struct listener *l, struct hook *h, int status,
                 const char *body, const char *content_type)
{
    struct MHD_Connection *conn = h->conn;
    struct request *req = h->req;

    pthread_mutex_lock(&l->lock);
    listener_untake(l, h);
    bool expired = h->expired;
    if (!expired)
        l->suspended--;
    pthread_mutex_unlock(&l->lock);
    if (expired) { /* answered already; nothing refers to it any more */
        hook_free(h);
        return;
    }
    h->answer_status = status;
    /* The answer may already be the hook's own (hooks.c stores the codec's
     * answer there while Kafka takes the events): no overlapping copy. */
    if (body != h->answer_body)
        snprintf(h->answer_body, sizeof(h->answer_body), "%s", body);
    h->answer_type = content_type;
    req->answered = true;
    MHD_resume_connection(conn);
}

void listener_publish_state(struct listener *l, const struct listener_state *st)
{
    char *copy = xstrdup(st->metrics != NULL ? st->metrics : "");

    /* The loop publishes once per turn: that is its heartbeat too. */
    listener_heartbeat(l);
    pthread_mutex_lock(&l->lock);
    l->redis_ok = st->redis_ok;
    snprintf(l->redis_note, sizeof(l->redis_note), "%s",
             st->redis_note != NULL ? st->redis_note : "");
    if (st->kafka_known) {
        l->kafka_published = true;
        l->kafka_ok = st->kafka_ok;
    }
    free(l->metrics);
    l->metrics = copy;
    pthread_mutex_unlock(&l->lock);
}

void listener_publish(struct listener *l, bool redis_ok, const char *metrics)
{
    struct listener_state st = {.redis_ok = redis_ok, .metrics = metrics};

    listener_publish_state(l, &st);
}

void listener_stop(struct listener *l)
{
    if (l == NULL)
        return;
    if (l->daemon != NULL) {
        for (;;) {
            pthread_mutex_lock(&l->lock);
            struct hook *h = l->taken ? l->taken : l->inbox;
            if (h == l->inbox && h != NULL) {
                l->inbox = h->next;
                if (l->inbox == NULL)
                    l->inbox_tail = &l->inbox;
                h->next = l->taken;
                l->taken = h;
            }
            pthread_mutex_unlock(&l->lock);
            if (h == NULL)
                break;
            hook_answer(l, h, 503, "shutting down", "text/plain");
        }
    }
    if (l->admin.daemon != NULL)
        MHD_stop_daemon(l->admin.daemon);
    if (l->pub.daemon != NULL)
        MHD_stop_daemon(l->pub.daemon);
    for (int i = 0; i < 2; i++)
        if (l->pipefd[i] >= 0)
            close(l->pipefd[i]);
    pthread_mutex_destroy(&l->lock);
    free(l->metrics);
    free(l);
}
