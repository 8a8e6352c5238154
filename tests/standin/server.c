/* tests/standin/server.c - the HTTP side of the stand-in: libmicrohttpd
 * glue, routing by prefix, the record, faults and rate limits.
 *
 * A request is read whole (bounded by settings.max_body), then processed in
 * one go under standin->lock: route, identify the account, charge its rate
 * limit, roll the faults, let the provider answer, record. Latency and
 * timeouts suspend the connection; the events thread resumes it, so a held
 * answer never blocks the polling thread. */
#include "standin.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <microhttpd.h>

static struct MHD_Daemon *daemon_handle;

/* ------------------------------------------------------------------------
 * Responses and request helpers
 * ---------------------------------------------------------------------- */

void resp_set(struct response *r, unsigned status, const char *ctype,
              const char *body, size_t len)
{
    free(r->body);
    r->status = status;
    r->body = xstrndup(body, len);
    r->body_len = len;
    snprintf(r->content_type, sizeof(r->content_type), "%s", ctype);
}

void resp_printf(struct response *r, unsigned status, const char *ctype,
                 const char *fmt, ...)
{
    va_list ap;
    char small[512];

    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n < sizeof(small)) {
        resp_set(r, status, ctype, small, (size_t)n);
        return;
    }
    char *big = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    resp_set(r, status, ctype, big, (size_t)n);
    free(big);
}

void resp_json(struct response *r, unsigned status, json_t *root)
{
    char *s = json_dumps(root, JSON_COMPACT | JSON_ENCODE_ANY |
                                   JSON_REAL_PRECISION(10));

    resp_set(r, status, "application/json; charset=utf-8", s ? s : "null",
             s ? strlen(s) : 4);
    free(s);
    json_decref(root);
}

void resp_header(struct response *r, const char *name, const char *value)
{
    kvlist_add(&r->headers, name, value, strlen(value));
}

const char *req_header(const struct request *req, const char *name)
{
    return kvlist_get(&req->headers, name, true);
}

void req_media_type(const struct request *req, char *out, size_t out_size)
{
    const char *ct = req_header(req, "Content-Type");
    size_t n = 0;

    if (ct == NULL) {
        out[0] = '\0';
        return;
    }
    while (*ct == ' ')
        ct++;
    for (; ct[n] != '\0' && ct[n] != ';' && ct[n] != ' ' && n + 1 < out_size;
         n++)
        out[n] = (char)tolower((unsigned char)ct[n]);
    out[n] = '\0';
}

struct form_ctx {
    struct kvlist *form;
    char last_key[256];
};

static enum MHD_Result form_iter(void *cls, enum MHD_ValueKind kind,
                                 const char *key, const char *filename,
                                 const char *content_type,
                                 const char *transfer_encoding,
                                 const char *data, uint64_t off, size_t size)
{
    struct form_ctx *ctx = cls;
    struct kvlist *l = ctx->form;

    (void)kind;
    (void)filename;
    (void)content_type;
    (void)transfer_encoding;
    if (off > 0 && l->len > 0 && strcmp(ctx->last_key, key) == 0) {
        struct kv *kv = &l->items[l->len - 1];
        kv->value = xrealloc(kv->value, kv->value_len + size + 1);
        memcpy(kv->value + kv->value_len, data, size);
        kv->value_len += size;
        kv->value[kv->value_len] = '\0';
        return MHD_YES;
    }
    kvlist_add(l, key, data ? data : "", data ? size : 0);
    snprintf(ctx->last_key, sizeof(ctx->last_key), "%s", key);
    return MHD_YES;
}

int req_form(struct request *req)
{
    char media[64];

    if (req->form_parsed)
        return 0;
    req_media_type(req, media, sizeof(media));
    if (strcmp(media, "application/x-www-form-urlencoded") == 0) {
        kvlist_parse_form(&req->form, req->body.data ? req->body.data : "",
                          req->body.len);
    } else if (strcmp(media, "multipart/form-data") == 0) {
        struct form_ctx ctx = {.form = &req->form};
        struct MHD_PostProcessor *pp =
            MHD_create_post_processor(req->conn, 65536, form_iter, &ctx);
        if (pp == NULL)
            return -1;
        enum MHD_Result ok = MHD_post_process(
            pp, req->body.data ? req->body.data : "", req->body.len);
        MHD_destroy_post_processor(pp);
        if (ok != MHD_YES)
            return -1;
    } else {
        return -1;
    }
    req->form_parsed = true;
    return 0;
}

/* ------------------------------------------------------------------------
 * Rate limits
 * ---------------------------------------------------------------------- */

static void error_answer(enum provider p, struct request *req, bool throttle)
{
    switch (p) {
    case PROV_INTIME:
        intime_error_answer(req, throttle);
        break;
    case PROV_IP1:
        ip1_error_answer(req, throttle);
        break;
    case PROV_LEGACY:
        legacy_error_answer(req, throttle);
        break;
    case PROV_JOJKA:
        jojka_error_answer(req, throttle);
        break;
    default:
        break;
    }
}

static bool gate(struct request *req, double cost, enum limit_unit unit)
{
    struct account *a = req->acct;
    struct limit *l = a != NULL ? &a->limit : NULL;

    if (l == NULL || !l->on || l->unit != unit || cost <= 0)
        return false;
    int64_t now = mono_ms();
    l->tokens += (double)(now - l->last_ms) / 1000.0 * l->per_second;
    if (l->tokens > l->burst)
        l->tokens = l->burst;
    l->last_ms = now;
    if (l->tokens >= cost) {
        l->tokens -= cost;
        return false;
    }

    struct violation *v = xcalloc(1, sizeof(*v));
    v->at_ms = now_ms();
    snprintf(v->account, sizeof(v->account), "%s", a->name);
    v->provider = a->provider;
    snprintf(v->path, sizeof(v->path), "%s", req->path);
    v->cost = cost;
    v->tokens = l->tokens;
    ptrvec_push(&standin->violations, v);
    standin->stats.throttled[a->provider]++;
    req->fault = "throttled";

    if (l->provider_answer) {
        error_answer(a->provider, req, true);
    } else {
        char secs[16];
        double wait =
            l->per_second > 0 ? (cost - l->tokens) / l->per_second : 1.0;
        snprintf(secs, sizeof(secs), "%d", (int)ceil(wait < 1 ? 1 : wait));
        if (a->provider == PROV_IP1) {
            ip1_error_answer(req, true);
        } else {
            resp_printf(&req->resp, 429, "text/plain; charset=utf-8",
                        "Too Many Requests");
        }
        req->resp.status = 429;
        resp_header(&req->resp, "Retry-After", secs);
    }
    return true;
}

bool req_gate_request(struct request *req)
{
    return gate(req, 1, LIMIT_REQUESTS);
}

bool req_gate_send(struct request *req, unsigned segments)
{
    return gate(req, segments, LIMIT_SEGMENTS);
}

/* ------------------------------------------------------------------------
 * The record
 * ---------------------------------------------------------------------- */

int record_init(struct record *rec, size_t size)
{
    pthread_mutex_init(&rec->lock, NULL);
    rec->size = size ? size : 1;
    rec->ring = xcalloc(rec->size, sizeof(*rec->ring));
    rec->next_seq = 1;
    return 0;
}

static void record_entry_free(struct record_entry *e)
{
    free(e->method);
    free(e->uri);
    free(e->path);
    free(e->query);
    kvlist_free(&e->headers);
    free(e->body);
    memset(e, 0, sizeof(*e));
}

void record_add(struct record *rec, const struct request *req)
{
    struct record_entry fresh = {0};

    /* Copy outside the record's lock; only the swap happens inside. */
    fresh.at_ms = req->at_ms;
    fresh.provider = req->provider;
    fresh.method = xstrdup(req->method);
    fresh.uri = xstrdup(req->uri);
    fresh.path = xstrdup(req->path);
    fresh.query = xstrdup(req->query);
    for (size_t i = 0; i < req->headers.len; i++)
        kvlist_add(&fresh.headers, req->headers.items[i].name,
                   req->headers.items[i].value,
                   req->headers.items[i].value_len);
    fresh.body = xstrndup(req->body.data ? req->body.data : "", req->body.len);
    fresh.body_len = req->body.len;
    if (req->acct != NULL)
        snprintf(fresh.account, sizeof(fresh.account), "%s", req->acct->name);
    fresh.status = req->phase == RP_DROP || req->phase == RP_RESET ||
                           (req->phase == RP_WAITING && req->after != RP_ANSWER)
                       ? 0
                       : req->resp.status;
    snprintf(fresh.fault, sizeof(fresh.fault), "%s",
             req->fault ? req->fault : "");

    pthread_mutex_lock(&rec->lock);
    fresh.seq = rec->next_seq++;
    struct record_entry *slot = &rec->ring[(size_t)fresh.seq % rec->size];
    struct record_entry old = *slot;
    *slot = fresh;
    pthread_mutex_unlock(&rec->lock);
    record_entry_free(&old);
}

static char *base64(const char *data, size_t len)
{
    static const char tbl[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = (const unsigned char *)data;
    char *out = xmalloc((len + 2) / 3 * 4 + 1);
    size_t o = 0;

    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? tbl[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

static json_t *record_entry_json(const struct record_entry *e)
{
    json_t *headers = json_object();
    char *lower;

    for (size_t i = 0; i < e->headers.len; i++) {
        lower = xstrdup(e->headers.items[i].name);
        for (char *c = lower; *c != '\0'; c++)
            *c = (char)tolower((unsigned char)*c);
        json_t *v = json_stringn(e->headers.items[i].value,
                                 e->headers.items[i].value_len);
        json_object_set_new(headers, lower, v ? v : json_string("?"));
        free(lower);
    }
    json_t *o = json_pack(
        "{s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:o, s:i, s:s, s:s}", "seq",
        (json_int_t)e->seq, "time_ms", (json_int_t)e->at_ms, "provider",
        e->provider >= 0 ? provider_name((enum provider)e->provider) : "",
        "method", e->method, "uri", e->uri, "path", e->path, "query", e->query,
        "headers", headers, "status", (int)e->status, "account", e->account,
        "fault", e->fault);
    if (utf8_valid(e->body, e->body_len)) {
        json_object_set_new(o, "body", json_stringn(e->body, e->body_len));
        json_object_set_new(o, "body_encoding", json_string("utf-8"));
    } else {
        char *b64 = base64(e->body, e->body_len);
        json_object_set_new(o, "body", json_string(b64));
        json_object_set_new(o, "body_encoding", json_string("base64"));
        free(b64);
    }
    return o;
}

json_t *record_json(struct record *rec, int provider, const char *account,
                    long since, const char *path_prefix)
{
    json_t *arr = json_array();

    pthread_mutex_lock(&rec->lock);
    long first = rec->next_seq - (long)rec->size;
    if (first < 1)
        first = 1;
    if (since + 1 > first)
        first = since + 1;
    for (long seq = first; seq < rec->next_seq; seq++) {
        const struct record_entry *e = &rec->ring[(size_t)seq % rec->size];
        if (e->seq != seq)
            continue;
        if (provider >= 0 && e->provider != provider)
            continue;
        if (account != NULL && strcmp(e->account, account) != 0)
            continue;
        if (path_prefix != NULL &&
            strncmp(e->path, path_prefix, strlen(path_prefix)) != 0)
            continue;
        json_array_append_new(arr, record_entry_json(e));
    }
    pthread_mutex_unlock(&rec->lock);
    return arr;
}

void record_clear(struct record *rec)
{
    pthread_mutex_lock(&rec->lock);
    for (size_t i = 0; i < rec->size; i++)
        record_entry_free(&rec->ring[i]);
    pthread_mutex_unlock(&rec->lock);
}

void record_free(struct record *rec)
{
    record_clear(rec);
    free(rec->ring);
    pthread_mutex_destroy(&rec->lock);
}

/* ------------------------------------------------------------------------
 * Routing and faults
 * ---------------------------------------------------------------------- */

/* Returns the provider serving path (setting *sub), or -1. IIS serves
 * InTime and iP.1 legacy, so their paths match without case. */
static int route(const char *path, const char **sub)
{
    if (strncmp(path, "/websms/api/", 12) == 0) {
        *sub = path + 11;
        return PROV_JOJKA;
    }
    if (strncasecmp(path, "/api/1.0/", 9) == 0) {
        *sub = path + 8;
        return PROV_INTIME;
    }
    if (strncmp(path, "/v2/", 4) == 0 || strcmp(path, "/v2") == 0) {
        *sub = path;
        return PROV_IP1;
    }
    if (strcasecmp(path, "/sendsms.aspx") == 0 ||
        strcasecmp(path, "/sendSms/sendSms.asmx") == 0) {
        *sub = path;
        return PROV_LEGACY;
    }
    return -1;
}

static void identify(struct request *req)
{
    switch (req->provider) {
    case PROV_INTIME:
        intime_identify(req);
        break;
    case PROV_IP1:
        ip1_identify(req);
        break;
    case PROV_LEGACY:
        legacy_identify(req);
        break;
    case PROV_JOJKA:
        jojka_identify(req);
        break;
    default:
        break;
    }
}

static void dispatch(struct request *req)
{
    switch (req->provider) {
    case PROV_INTIME:
        intime_handle(req);
        break;
    case PROV_IP1:
        ip1_handle(req);
        break;
    case PROV_LEGACY:
        legacy_handle(req);
        break;
    case PROV_JOJKA:
        jojka_handle(req);
        break;
    default:
        break;
    }
}

enum fault_kind { FK_NONE, FK_RESET, FK_TIMEOUT, FK_5XX, FK_429, FK_PROVIDER };

/* Rolls the dice for one request; sets *latency_ms. */
static enum fault_kind fault_roll(struct fault *f, int *latency_ms)
{
    *latency_ms = 0;
    if (!f->on || f->remaining == 0)
        return FK_NONE;
    if (f->latency_max_ms > 0) {
        int span = f->latency_max_ms - f->latency_min_ms;
        *latency_ms =
            f->latency_min_ms + (span > 0 ? (int)(rng_unit() * (span + 1)) : 0);
    }
    double shares[] = {f->share_reset, f->share_timeout, f->share_5xx,
                       f->share_429, f->share_provider};
    double total = 0;
    for (size_t i = 0; i < 5; i++)
        total += shares[i];
    if (total <= 0) {
        if (*latency_ms > 0 && f->remaining > 0)
            f->remaining--;
        return FK_NONE;
    }
    double u = rng_unit();
    double acc = 0;
    for (size_t i = 0; i < 5; i++) {
        acc += shares[i];
        if (shares[i] > 0 && u < acc) {
            if (f->remaining > 0)
                f->remaining--;
            return (enum fault_kind)(i + 1);
        }
    }
    return FK_NONE;
}

/* Processes a complete request. Lock held. */
static void server_process(struct request *req)
{
    const struct settings *set = &standin->settings;
    int latency = 0;
    enum fault_kind kind = FK_NONE;
    /* Declared before the first goto: "done" reads it for timeouts. */
    struct fault *f = NULL;

    req->phase = RP_ANSWER;
    if (strncmp(req->path, "/_standin/", 10) == 0 ||
        strcmp(req->path, "/_standin") == 0) {
        req->control = true;
        standin->stats.control++;
        control_handle(req);
        return;
    }
    req->provider = route(req->path, &req->sub);
    if (req->provider < 0) {
        standin->stats.unknown_paths++;
        resp_printf(&req->resp, 404, "text/plain; charset=utf-8", "Not Found");
        goto done;
    }
    standin->stats.requests[req->provider]++;
    if (req->too_big) {
        resp_printf(&req->resp, 413, "text/plain; charset=utf-8",
                    "Request Entity Too Large");
        goto done;
    }
    identify(req);
    if (req->acct != NULL && req_gate_request(req))
        goto done;

    f = &standin->faults[req->provider];
    if (!f->on)
        f = &standin->faults[PROV_COUNT];
    /* A fault for one path (e.g. the sends) leaves the others alone. */
    if (f->path[0] == '\0' || strncmp(req->path, f->path, strlen(f->path)) == 0)
        kind = fault_roll(f, &latency);
    if (kind != FK_NONE)
        standin->stats.faults[req->provider]++;
    switch (kind) {
    case FK_NONE:
        dispatch(req);
        break;
    case FK_RESET:
    case FK_TIMEOUT:
        if (f->process)
            dispatch(req);
        req->fault = kind == FK_RESET ? "reset" : "timeout";
        break;
    case FK_5XX:
        req->fault = "5xx";
        resp_printf(&req->resp, f->status_5xx ? f->status_5xx : 500,
                    "text/html; charset=utf-8",
                    "<html><body><h1>%u Server Error</h1></body></html>",
                    f->status_5xx ? f->status_5xx : 500);
        break;
    case FK_429: {
        char secs[16];
        req->fault = "429";
        snprintf(secs, sizeof(secs), "%d", f->retry_after);
        if (req->provider == PROV_IP1)
            ip1_error_answer(req, true);
        else
            resp_printf(&req->resp, 429, "text/plain; charset=utf-8",
                        "Too Many Requests");
        req->resp.status = 429;
        resp_header(&req->resp, "Retry-After", secs);
        break;
    }
    case FK_PROVIDER:
        req->fault = "provider";
        if (f->provider_body != NULL)
            resp_set(&req->resp, f->provider_status ? f->provider_status : 200,
                     "text/plain; charset=utf-8", f->provider_body,
                     strlen(f->provider_body));
        else
            error_answer((enum provider)req->provider, req, false);
        break;
    }

done:
    if (req->provider >= 0) {
        if (kind == FK_RESET || kind == FK_TIMEOUT)
            ; /* no answer at all */
        else if (req->resp.status >= 200 && req->resp.status < 300)
            standin->stats.answered_2xx[req->provider]++;
        else
            standin->stats.answered_other[req->provider]++;
    }
    req->after = kind == FK_RESET     ? RP_RESET
                 : kind == FK_TIMEOUT ? RP_DROP
                                      : RP_ANSWER;
    req->delay_ms = latency;
    if (kind == FK_TIMEOUT)
        req->delay_ms += f->hold_ms > 0 ? f->hold_ms : set->hold_ms;
    if (req->delay_ms > 0 && !standin->stopping)
        req->phase = RP_WAITING;
    else
        req->phase = req->after;
    record_add(&standin->record, req);
}

/* ------------------------------------------------------------------------
 * libmicrohttpd callbacks
 * ---------------------------------------------------------------------- */

static void *server_uri_log(void *cls, const char *uri,
                            struct MHD_Connection *conn)
{
    struct request *req = xcalloc(1, sizeof(*req));

    (void)cls;
    req->conn = conn;
    req->uri = xstrdup(uri);
    req->provider = -1;
    req->phase = RP_READING;
    return req;
}

static enum MHD_Result server_header(void *cls, enum MHD_ValueKind kind,
                                     const char *key, const char *value)
{
    struct request *req = cls;

    (void)kind;
    kvlist_add(&req->headers, key, value ? value : "",
               value ? strlen(value) : 0);
    return MHD_YES;
}

static void server_begin(struct request *req, const char *method)
{
    const char *q = strchr(req->uri, '?');
    size_t plen = q ? (size_t)(q - req->uri) : strlen(req->uri);

    req->method = xstrdup(method);
    req->at_ms = now_ms();
    req->path = url_decode(req->uri, plen, false, NULL);
    req->query = xstrdup(q ? q + 1 : "");
    kvlist_parse_form(&req->qargs, req->query, strlen(req->query));
    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, server_header, req);
}

static enum MHD_Result server_answer(struct MHD_Connection *conn,
                                     struct request *req)
{
    struct response *r = &req->resp;

    if (req->phase == RP_RESET) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (info != NULL) {
            struct linger lin = {.l_onoff = 1, .l_linger = 0};
            setsockopt(info->connect_fd, SOL_SOCKET, SO_LINGER, &lin,
                       sizeof(lin));
        }
        return MHD_NO;
    }
    if (req->phase == RP_DROP)
        return MHD_NO;
    struct MHD_Response *mr = MHD_create_response_from_buffer(
        r->body_len, r->body, MHD_RESPMEM_MUST_COPY);
    if (mr == NULL)
        return MHD_NO;
    if (r->content_type[0] != '\0')
        MHD_add_response_header(mr, "Content-Type", r->content_type);
    for (size_t i = 0; i < r->headers.len; i++)
        MHD_add_response_header(mr, r->headers.items[i].name,
                                r->headers.items[i].value);
    enum MHD_Result ret =
        MHD_queue_response(conn, r->status ? r->status : 500, mr);
    MHD_destroy_response(mr);
    return ret;
}

static enum MHD_Result server_access(void *cls, struct MHD_Connection *conn,
                                     const char *url, const char *method,
                                     const char *version,
                                     const char *upload_data,
                                     size_t *upload_data_size, void **req_cls)
{
    struct request *req = *req_cls;

    (void)cls;
    (void)url;
    (void)version;
    if (req->phase == RP_WAITING) {
        req->phase = req->after;
        return server_answer(conn, req);
    }
    if (req->phase != RP_READING)
        return server_answer(conn, req);
    if (req->method == NULL) {
        server_begin(req, method);
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t max = standin->settings.max_body;
        if (req->body.len + *upload_data_size > max)
            req->too_big = true;
        else
            sbuf_append(&req->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }

    pthread_mutex_lock(&standin->lock);
    server_process(req);
    bool hold = req->phase == RP_WAITING;
    if (hold) {
        MHD_suspend_connection(conn);
        events_resume(standin->events, req, req->delay_ms);
    }
    pthread_mutex_unlock(&standin->lock);
    if (hold)
        return MHD_YES;
    return server_answer(conn, req);
}

static void server_completed(void *cls, struct MHD_Connection *conn,
                             void **req_cls,
                             enum MHD_RequestTerminationCode toe)
{
    struct request *req = *req_cls;

    (void)cls;
    (void)conn;
    (void)toe;
    if (req == NULL)
        return;
    free(req->uri);
    free(req->method);
    free(req->path);
    free(req->query);
    kvlist_free(&req->qargs);
    kvlist_free(&req->headers);
    sbuf_free(&req->body);
    kvlist_free(&req->form);
    if (req->doc != NULL)
        xmlFreeDoc(req->doc);
    free(req->resp.body);
    kvlist_free(&req->resp.headers);
    free(req);
    *req_cls = NULL;
}

void server_resume(struct request *req)
{
    MHD_resume_connection(req->conn);
}

int server_start(const char *host, int port, int threads, int *bound_port,
                 char *errstr, size_t errstr_size)
{
    struct sockaddr_in addr = {0};
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                     MHD_ALLOW_SUSPEND_RESUME;

    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        snprintf(errstr, errstr_size, "--listen: bad IPv4 address %s", host);
        return -1;
    }
    daemon_handle =
        MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, server_access, NULL,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                         MHD_OPTION_URI_LOG_CALLBACK, server_uri_log, NULL,
                         MHD_OPTION_NOTIFY_COMPLETED, server_completed, NULL,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
                         MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
                         MHD_OPTION_THREAD_POOL_SIZE,
                         (unsigned)(threads > 1 ? threads : 0), MHD_OPTION_END);
    if (daemon_handle == NULL) {
        snprintf(errstr, errstr_size, "cannot listen on %s:%d", host, port);
        return -1;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(daemon_handle, MHD_DAEMON_INFO_BIND_PORT);
    *bound_port = info != NULL ? info->port : port;
    return 0;
}

void server_stop(void)
{
    if (daemon_handle != NULL)
        MHD_stop_daemon(daemon_handle);
    daemon_handle = NULL;
}
