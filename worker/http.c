/* worker/http.c - provider requests over one curl multi handle. */
#include "worker/http.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sys/epoll.h>
#include <unistd.h>

#include <curl/curl.h>

#include "worker/log.h"
#include "worker/worker.h"
#include "worker/xalloc.h"

/* Socket events taken per wait; more wait for the next turn. */
#define HTTP_READY_MAX 256

struct http {
    CURLM *multi;
    CURLSH *share; /* DNS cache shared by every handle */
    int epfd;      /* curl's sockets, as curl asks (CURLMOPT_SOCKETFUNCTION) */
    int64_t timer_ms; /* when curl wants its timeout action; -1: never */
    struct epoll_event ready[HTTP_READY_MAX]; /* from the last http_wait() */
    int nready;
    long timeout_ms;
    size_t in_flight;
    double done_seconds;     /* the transfer being reported, see http.h */
    struct http_xfer *xfers; /* in flight, for http_free() */
    CURL **idle;             /* easy handles kept for the next requests */
    size_t nidle, idle_cap;
    uint32_t *watch; /* per descriptor: HTTP_IN_SET | the events in the set */
    size_t nwatch;
    int *unwatch; /* removed by curl this turn: left at the turn's end */
    size_t nunwatch, unwatch_cap;
};

#define HTTP_IN_SET 0x80000000u

/* Easy handles kept between requests: creating one per request costs
 * allocations (and its caches) on every message. */
#define HTTP_IDLE_MAX 256

/* One transfer; owns everything curl needs to outlive http_submit(). */
struct http_xfer {
    CURL *easy;
    struct curl_slist *headers;
    char *body; /* request body copy */
    char *resp; /* response body, bounded */
    size_t resp_len;
    size_t resp_cap;
    bool too_big;
    char retry_after[64];
    char content_type[128];
    char errbuf[CURL_ERROR_SIZE];
    http_done_fn *done;
    void *opaque;
    int attempts;  /* times curl was about to send the request */
    bool replayed; /* curl would have sent it again: stopped instead */
    struct http_xfer *prev, *next;
};

/* CURLOPT_PREREQFUNCTION: called each time curl is about to send the
 * request. curl sends a request again by itself when a reused keep-alive
 * connection dies before any answer byte (lib/transfer.c, "Connection
 * died, retrying a fresh connect"), for a POST as for a GET. The first
 * copy may have reached the provider (a provider that took it and then
 * reset, a proxy), so a second is refused here: the request ends as an
 * error that may have been sent, and the engine records `unknown` instead
 * of sending twice (docs/worker.md, "Which answers are retried"). */
static int http_prereq_cb(void *opaque, char *conn_primary_ip,
                          char *conn_local_ip, int conn_primary_port,
                          int conn_local_port)
{
    struct http_xfer *x = opaque;
    (void)conn_primary_ip;
    (void)conn_local_ip;
    (void)conn_primary_port;
    (void)conn_local_port;

    if (++x->attempts > 1) {
        x->replayed = true;
        return CURL_PREREQFUNC_ABORT;
    }
    return CURL_PREREQFUNC_OK;
}

/* CURLMOPT_SOCKETFUNCTION: curl says which of its sockets to watch for
 * what; the epoll set follows. A kept-alive connection is removed when its
 * transfer ends and added again when the next one starts on it, mostly in
 * the same turn: a removal is only noted, and the descriptors still
 * unwanted when the turn ends leave the set then (http_unwatch), so
 * reusing a connection costs no epoll_ctl at all. */
static int http_socket_cb(CURL *easy, curl_socket_t s, int what, void *opaque,
                          void *socketp)
{
    struct http *http = opaque;
    (void)easy;
    (void)socketp;

    if (s < 0)
        return 0;
    size_t fd = (size_t)s;
    if (fd >= http->nwatch) {
        size_t n = http->nwatch ? http->nwatch : 64;
        while (n <= fd)
            n *= 2;
        http->watch = xrealloc(http->watch, n * sizeof(*http->watch));
        memset(http->watch + http->nwatch, 0,
               (n - http->nwatch) * sizeof(*http->watch));
        http->nwatch = n;
    }
    uint32_t want = 0;
    if (what & CURL_POLL_IN)
        want |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        want |= EPOLLOUT;
    uint32_t *st = &http->watch[fd];
    if (what == CURL_POLL_REMOVE) {
        if (*st & HTTP_IN_SET) {
            if (http->nunwatch == http->unwatch_cap) {
                http->unwatch_cap =
                    http->unwatch_cap ? http->unwatch_cap * 2 : 64;
                http->unwatch = xrealloc(
                    http->unwatch, http->unwatch_cap * sizeof(*http->unwatch));
            }
            http->unwatch[http->nunwatch++] = s;
            *st = HTTP_IN_SET; /* in the set, unwanted */
        }
        return 0;
    }
    if (*st == (HTTP_IN_SET | want))
        return 0;
    struct epoll_event ev = {.events = want, .data.fd = s};
    int op = (*st & HTTP_IN_SET) ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    /* A descriptor curl closed has left the set by itself, and its number
     * may be back as a new connection: then the other op is the right one. */
    if (epoll_ctl(http->epfd, op, s, &ev) != 0 &&
        epoll_ctl(http->epfd,
                  op == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s,
                  &ev) != 0) {
        log_error("http: cannot watch socket %d: %s", (int)s, strerror(errno));
        *st = 0;
        return 0;
    }
    *st = HTTP_IN_SET | want;
    return 0;
}

/* Takes out of the set the sockets curl removed this turn and did not want
 * again. */
static void http_unwatch(struct http *http)
{
    for (size_t i = 0; i < http->nunwatch; i++) {
        int s = http->unwatch[i];
        if (http->watch[s] != HTTP_IN_SET)
            continue; /* wanted again meanwhile, or already out */
        epoll_ctl(http->epfd, EPOLL_CTL_DEL, s, NULL); /* closed: gone */
        http->watch[s] = 0;
    }
    http->nunwatch = 0;
}

/* CURLMOPT_TIMERFUNCTION: when curl next wants its timeout action. */
static int http_timer_cb(CURLM *multi, long timeout_ms, void *opaque)
{
    struct http *http = opaque;
    (void)multi;

    http->timer_ms = timeout_ms < 0 ? -1 : worker_now_ms() + timeout_ms;
    return 0;
}

struct http *http_new(const struct config *cfg, char *errstr,
                      size_t errstr_size)
{
    struct http *http = xcalloc(1, sizeof(*http));

    http->timer_ms = -1;
    http->epfd = epoll_create1(EPOLL_CLOEXEC);
    http->multi = curl_multi_init();
    http->share = curl_share_init();
    if (http->epfd < 0 || http->multi == NULL || http->share == NULL) {
        snprintf(errstr, errstr_size, "curl: cannot create multi handle");
        http_free(http);
        return NULL;
    }
    /* The socket interface: each turn acts on the sockets that are ready,
     * where curl_multi_perform() walked every transfer in flight. */
    curl_multi_setopt(http->multi, CURLMOPT_SOCKETFUNCTION, http_socket_cb);
    curl_multi_setopt(http->multi, CURLMOPT_SOCKETDATA, http);
    curl_multi_setopt(http->multi, CURLMOPT_TIMERFUNCTION, http_timer_cb);
    curl_multi_setopt(http->multi, CURLMOPT_TIMERDATA, http);
    curl_share_setopt(http->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_multi_setopt(http->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                      cfg->http_max_conns);
    curl_multi_setopt(http->multi, CURLMOPT_MAXCONNECTS,
                      cfg->http_max_conns * 4);
    /* HTTP/1.1 keep-alive connections are reused; no pipelining. */
    curl_multi_setopt(http->multi, CURLMOPT_PIPELINING, CURLPIPE_NOTHING);
    http->timeout_ms = cfg->http_timeout_ms;
    return http;
}

/* Keeps an easy handle for the next request, or frees it. */
static void http_put_easy(struct http *http, CURL *easy)
{
    if (http == NULL || http->nidle >= HTTP_IDLE_MAX) {
        curl_easy_cleanup(easy);
        return;
    }
    if (http->nidle == http->idle_cap) {
        http->idle_cap = http->idle_cap ? http->idle_cap * 2 : 16;
        http->idle = xrealloc(http->idle, http->idle_cap * sizeof(*http->idle));
    }
    http->idle[http->nidle++] = easy;
}

/* An easy handle as new: a kept one reset, or a fresh one. */
static CURL *http_get_easy(struct http *http)
{
    if (http->nidle == 0)
        return curl_easy_init();
    CURL *easy = http->idle[--http->nidle];
    curl_easy_reset(easy);
    return easy;
}

static void http_xfer_free(struct http *http, struct http_xfer *x)
{
    http_put_easy(http, x->easy);
    curl_slist_free_all(x->headers);
    free(x->body);
    free(x->resp);
    free(x);
}

void http_free(struct http *http)
{
    if (http == NULL)
        return;
    while (http->xfers != NULL) {
        struct http_xfer *x = http->xfers;
        http->xfers = x->next;
        curl_multi_remove_handle(http->multi, x->easy);
        http_xfer_free(NULL, x);
    }
    while (http->nidle > 0)
        curl_easy_cleanup(http->idle[--http->nidle]);
    free(http->idle);
    if (http->multi != NULL)
        curl_multi_cleanup(http->multi);
    if (http->share != NULL)
        curl_share_cleanup(http->share);
    if (http->epfd >= 0)
        close(http->epfd);
    free(http->watch);
    free(http->unwatch);
    free(http);
}

static size_t http_write_cb(char *ptr, size_t size, size_t nmemb, void *opaque)
{
    struct http_xfer *x = opaque;
    size_t n = size * nmemb;

    if (x->resp_len + n > HTTP_MAX_BODY) {
        x->too_big = true;
        return 0; /* curl fails the transfer with CURLE_WRITE_ERROR */
    }
    if (x->resp_len + n + 1 > x->resp_cap) {
        size_t cap = x->resp_cap ? x->resp_cap : 1024;
        while (cap < x->resp_len + n + 1)
            cap *= 2;
        x->resp = xrealloc(x->resp, cap);
        x->resp_cap = cap;
    }
    memcpy(x->resp + x->resp_len, ptr, n);
    x->resp_len += n;
    x->resp[x->resp_len] = '\0';
    return n;
}

static size_t http_header_cb(char *buf, size_t size, size_t nitems,
                             void *opaque)
{
    struct http_xfer *x = opaque;
    size_t n = size * nitems;
    static const char ra[] = "retry-after:";

    if (n > sizeof(ra) - 1 && strncasecmp(buf, ra, sizeof(ra) - 1) == 0) {
        const char *v = buf + sizeof(ra) - 1;
        size_t vlen = n - (sizeof(ra) - 1);
        while (vlen > 0 && (*v == ' ' || *v == '\t')) {
            v++;
            vlen--;
        }
        while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' ||
                            v[vlen - 1] == ' '))
            vlen--;
        if (vlen >= sizeof(x->retry_after))
            vlen = sizeof(x->retry_after) - 1;
        memcpy(x->retry_after, v, vlen);
        x->retry_after[vlen] = '\0';
    }
    return n;
}

int http_submit(struct http *http, const struct http_request *req,
                http_done_fn *done, void *opaque, char *errstr,
                size_t errstr_size)
{
    struct http_xfer *x = xcalloc(1, sizeof(*x));

    x->easy = http_get_easy(http);
    if (x->easy == NULL) {
        snprintf(errstr, errstr_size, "curl: cannot create easy handle");
        free(x);
        return -1;
    }
    x->done = done;
    x->opaque = opaque;
    for (size_t i = 0; i < req->nheaders; i++) {
        size_t n =
            strlen(req->headers[i].name) + strlen(req->headers[i].value) + 3;
        char *line = xmalloc(n);
        snprintf(line, n, "%s: %s", req->headers[i].name,
                 req->headers[i].value);
        x->headers = curl_slist_append(x->headers, line);
        free(line);
    }
    /* Providers answer at once; a 100-continue round trip only adds
     * latency. */
    x->headers = curl_slist_append(x->headers, "Expect:");

    CURL *easy = x->easy;
    curl_easy_setopt(easy, CURLOPT_URL, req->url);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, http->timeout_ms);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     http->timeout_ms < 5000 ? http->timeout_ms : 5000L);
    curl_easy_setopt(easy, CURLOPT_SHARE, http->share);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, http_write_cb);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, http_header_cb);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "kurir/" KURIR_VERSION);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_PREREQFUNCTION, http_prereq_cb);
    curl_easy_setopt(easy, CURLOPT_PREREQDATA, x);
    /* A connection idle longer than this is not reused: servers close idle
     * keep-alive connections (Apache after 5 s by default), and a request
     * sent into one that is closing is the case above. Busy connections
     * never get this old. */
    curl_easy_setopt(easy, CURLOPT_MAXAGE_CONN, 4L);
    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, req->method);
    if (req->body != NULL) {
        x->body = xmalloc(req->body_len + 1);
        memcpy(x->body, req->body, req->body_len);
        x->body[req->body_len] = '\0';
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, x->body);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)req->body_len);
    } else if (strcmp(req->method, "GET") == 0) {
        curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, NULL);
    }

    CURLMcode mresult = curl_multi_add_handle(http->multi, easy);
    if (mresult != CURLM_OK) {
        snprintf(errstr, errstr_size, "curl: %s", curl_multi_strerror(mresult));
        http_xfer_free(http, x);
        return -1;
    }
    http->in_flight++;
    x->next = http->xfers;
    if (x->next != NULL)
        x->next->prev = x;
    http->xfers = x;
    return 0;
}

void http_wait(struct http *http, struct http_waitfd *fds, unsigned nfds,
               int timeout_ms)
{
    struct pollfd pfds[HTTP_MAX_WAITFDS + 1];

    if (nfds > HTTP_MAX_WAITFDS)
        nfds = HTTP_MAX_WAITFDS;
    if (http->timer_ms >= 0) {
        int64_t left = http->timer_ms - worker_now_ms();
        if (left < timeout_ms)
            timeout_ms = left < 0 ? 0 : (int)left;
    }
    if (http->nready > 0)
        timeout_ms = 0; /* events left from the last wait */
    /* An epoll descriptor is readable while one of its sockets is ready. */
    pfds[0] = (struct pollfd){.fd = http->epfd, .events = POLLIN};
    for (unsigned i = 0; i < nfds; i++)
        pfds[i + 1] = (struct pollfd){.fd = fds[i].fd, .events = fds[i].events};
    if (poll(pfds, nfds + 1, timeout_ms) < 0) {
        for (unsigned i = 0; i < nfds; i++)
            fds[i].revents = 0;
        return;
    }
    for (unsigned i = 0; i < nfds; i++)
        fds[i].revents = pfds[i + 1].revents;
    if ((pfds[0].revents & POLLIN) && http->nready == 0) {
        int n = epoll_wait(http->epfd, http->ready, HTTP_READY_MAX, 0);
        http->nready = n > 0 ? n : 0;
    }
}

/* Hands curl the transfers that ended, each to its done callback. */
static void http_reap(struct http *http)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(http->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        struct http_xfer *x = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(http->multi, easy);
        http->in_flight--;
        if (x->prev != NULL)
            x->prev->next = x->next;
        else
            http->xfers = x->next;
        if (x->next != NULL)
            x->next->prev = x->prev;

        struct http_response resp = {0};
        const char *error = NULL;
        bool maybe_sent = true;
        if (result == CURLE_OK) {
            char *ct = NULL;
            curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &resp.status);
            curl_easy_getinfo(easy, CURLINFO_CONTENT_TYPE, &ct);
            if (ct != NULL) {
                snprintf(x->content_type, sizeof(x->content_type), "%s", ct);
                resp.content_type = x->content_type;
            }
            resp.retry_after = x->retry_after[0] ? x->retry_after : NULL;
            resp.now_ms = worker_wall_ms(); /* for an HTTP-date Retry-After */
            resp.body = x->resp ? x->resp : "";
            resp.body_len = x->resp_len;
        } else if (x->too_big) {
            error = "response body over the size limit";
        } else if (x->replayed) {
            /* The first copy went out on a connection that then died. */
            error = "the connection died after the request went out; not "
                    "sent again";
        } else {
            curl_off_t pretransfer = 0;
            curl_easy_getinfo(easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
            maybe_sent = pretransfer > 0;
            error = x->errbuf[0] ? x->errbuf : curl_easy_strerror(result);
        }
        curl_off_t total_us = 0;
        curl_easy_getinfo(easy, CURLINFO_TOTAL_TIME_T, &total_us);
        http->done_seconds = (double)total_us / 1e6;
        x->done(&resp, error, maybe_sent, x->opaque);
        http_xfer_free(http, x);
    }
}

void http_perform(struct http *http)
{
    int running;

    for (int i = 0; i < http->nready; i++) {
        const struct epoll_event *ev = &http->ready[i];
        int mask = 0;
        if (ev->events & EPOLLIN)
            mask |= CURL_CSELECT_IN;
        if (ev->events & EPOLLOUT)
            mask |= CURL_CSELECT_OUT;
        if (ev->events & (EPOLLERR | EPOLLHUP))
            mask |= CURL_CSELECT_ERR;
        curl_multi_socket_action(http->multi, ev->data.fd, mask, &running);
    }
    http->nready = 0;
    if (http->timer_ms >= 0 && http->timer_ms <= worker_now_ms()) {
        http->timer_ms = -1; /* curl sets the next one */
        curl_multi_socket_action(http->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    http_reap(http);
    http_unwatch(http);
}

size_t http_in_flight(const struct http *http)
{
    return http->in_flight;
}

double http_done_seconds(const struct http *http)
{
    return http->done_seconds;
}
