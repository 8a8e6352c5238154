/* tests/standin/harness.c - see harness.h. */
#include "tests/standin/harness.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>

#include <criterion/criterion.h>
#include <microhttpd.h>

#include "tests/support/support.h"

static struct proc standin_proc;

void h_start_args(char *const extra[])
{
    char accounts[512];
    char *argv[32] = {(char *)support_env("KURIR_STANDIN"),
                      "--listen",
                      "127.0.0.1:0",
                      "--accounts",
                      accounts,
                      "--delivery-ms",
                      "20",
                      "--retry-ms",
                      "100",
                      "--max-tries",
                      "4",
                      "--callback-timeout-ms",
                      "1000",
                      NULL};
    char *env[] = {"STANDIN_TEST_IT_HASH=secret", NULL};
    size_t n = 13;

    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    snprintf(accounts, sizeof(accounts), "%s/accounts.json",
             support_env("FIXTURES"));
    int ret = support_spawn(&standin_proc, argv, env, true, 10000);
    cr_assert(ret == 0, "kurir-standin did not start");
}

void h_start(void)
{
    h_start_args(NULL);
}

void h_stop(void)
{
    int status = support_stop(&standin_proc, SIGTERM, 5000);

    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        support_proc_log_dump(&standin_proc);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "kurir-standin did not exit 0 on SIGTERM (status %d)", status);
}

int h_port(void)
{
    return standin_proc.port;
}

int h_call(struct h_resp *r, const char *method, const char *path,
           char *const headers[], const char *body, size_t len, long timeout_ms)
{
    char url[4096];
    struct support_http resp;

    memset(r, 0, sizeof(*r));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", h_port(), path);
    if (support_http_timeout(&resp, method, url, headers, body, len,
                             timeout_ms) != 0)
        return -1;
    r->status = resp.status;
    r->body = resp.body; /* Now owned by r. */
    r->len = resp.body_len;
    memcpy(r->headers, resp.headers, sizeof(r->headers));
    return 0;
}

void h_must(struct h_resp *r, const char *method, const char *path,
            char *const headers[], const char *body, size_t len)
{
    int ret = h_call(r, method, path, headers, body, len, 10000);

    cr_assert(ret == 0, "%s %s: no answer", method, path);
}

const char *h_header(const struct h_resp *r, const char *name, char *out,
                     size_t out_size)
{
    size_t n = strlen(name);

    for (const char *line = r->headers; *line != '\0';) {
        const char *eol = strchr(line, '\n');
        if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ')
                v++;
            size_t vlen = strcspn(v, "\r\n");
            snprintf(out, out_size, "%.*s", (int)vlen, v);
            return out;
        }
        if (eol == NULL)
            break;
        line = eol + 1;
    }
    return NULL;
}

void h_free(struct h_resp *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

json_t *h_body_json(const struct h_resp *r)
{
    json_error_t jerr;
    json_t *root = json_loadb(r->body, r->len, JSON_DECODE_ANY, &jerr);

    cr_assert(root != NULL, "not JSON (%s): %s", jerr.text, r->body);
    return root;
}

json_t *h_control(const char *method, const char *path, const char *body)
{
    struct h_resp r;
    char full[1024];
    char *headers[] = {"Content-Type: application/json", NULL};

    snprintf(full, sizeof(full), "/_standin%s", path);
    h_must(&r, method, full, headers, body, body ? strlen(body) : 0);
    cr_assert(r.status == 200, "%s %s: %ld %s", method, full, r.status, r.body);
    json_t *root = h_body_json(&r);
    h_free(&r);
    return root;
}

void h_jojka(struct h_resp *r, const char *endpoint, const char *form)
{
    char path[256];
    char *headers[] = {"Content-Type: application/x-www-form-urlencoded", NULL};

    snprintf(path, sizeof(path), "/websms/api%s", endpoint);
    h_must(r, "POST", path, headers, form, strlen(form));
}

void h_intime(struct h_resp *r, const char *endpoint, const char *xml,
              size_t len)
{
    char path[256];
    char *headers[] = {"Content-Type: text/xml", NULL};

    snprintf(path, sizeof(path), "/api/1.0%s?user=ituser&hash=secret",
             endpoint);
    h_must(r, xml ? "POST" : "GET", path, headers, xml, len);
}

void h_ip1(struct h_resp *r, const char *method, const char *path,
           const char *json)
{
    char *headers[] = {"Authorization: Bearer ip1-key",
                       "Content-Type: application/json",
                       "Accept: application/json", NULL};

    h_must(r, method, path, headers, json, json ? strlen(json) : 0);
}

char *h_fixture(const char *name, size_t *len)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/%s", support_env("FIXTURES"), name);
    char *data = support_read_file(path, len);
    cr_assert(data != NULL, "cannot read %s", path);
    return data;
}

char *h_replace(const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);

    cr_assert(at != NULL, "fixture lacks %s", from);
    size_t n = strlen(s) - strlen(from) + strlen(to);
    char *out = malloc(n + 1);
    cr_assert(out != NULL);
    snprintf(out, n + 1, "%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
    return out;
}

/* ------------------------------------------------------------------------
 * Callback receiver
 * ---------------------------------------------------------------------- */

struct receiver {
    struct MHD_Daemon *daemon;
    pthread_mutex_t lock;
    enum recv_mode mode;
    int fail_first;
    json_t *calls;
    char url[128];
};

struct recv_req {
    char *body;
    size_t len;
};

static enum MHD_Result recv_access(void *cls, struct MHD_Connection *conn,
                                   const char *url, const char *method,
                                   const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **req_cls)
{
    struct receiver *rv = cls;
    struct recv_req *rr = *req_cls;

    (void)version;
    if (rr == NULL) {
        *req_cls = calloc(1, sizeof(*rr));
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        rr->body = realloc(rr->body, rr->len + *upload_data_size + 1);
        memcpy(rr->body + rr->len, upload_data, *upload_data_size);
        rr->len += *upload_data_size;
        rr->body[rr->len] = '\0';
        *upload_data_size = 0;
        return MHD_YES;
    }

    pthread_mutex_lock(&rv->lock);
    int n = (int)json_array_size(rv->calls);
    json_t *call = json_pack("{s:s, s:s, s:s#}", "method", method, "path", url,
                             "body", rr->body ? rr->body : "", (int)rr->len);
    /* Keep the decoded query arguments the callbacks carry. */
    static const char *const args[] = {"incsmsid", "sender", "text", "to",
                                       "token"};
    for (size_t i = 0; i < sizeof(args) / sizeof(*args); i++) {
        const char *v =
            MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, args[i]);
        if (v != NULL)
            json_object_set_new(call, args[i], json_string(v));
    }
    json_array_append_new(rv->calls, call);
    bool fail = n < rv->fail_first;
    pthread_mutex_unlock(&rv->lock);

    char answer[128] = "";
    unsigned status = 200;
    if (fail && rv->mode == RECV_200) {
        status = 500;
    } else if (fail) {
        snprintf(answer, sizeof(answer), "ERROR");
    } else if (rv->mode == RECV_OK) {
        snprintf(answer, sizeof(answer), "OK");
    } else if (rv->mode == RECV_ECHO_ID && rr->body != NULL) {
        const char *id = strstr(rr->body, "messageid=");
        if (id != NULL)
            snprintf(answer, sizeof(answer), "%.*s", (int)strcspn(id + 10, "&"),
                     id + 10);
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        strlen(answer), answer, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void recv_done(void *cls, struct MHD_Connection *conn, void **req_cls,
                      enum MHD_RequestTerminationCode toe)
{
    struct recv_req *rr = *req_cls;

    (void)cls;
    (void)conn;
    (void)toe;
    if (rr != NULL) {
        free(rr->body);
        free(rr);
    }
    *req_cls = NULL;
}

struct receiver *recv_start(enum recv_mode mode, int fail_first)
{
    struct receiver *rv = calloc(1, sizeof(*rv));

    cr_assert(rv != NULL);
    pthread_mutex_init(&rv->lock, NULL);
    rv->mode = mode;
    rv->fail_first = fail_first;
    rv->calls = json_array();
    rv->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL,
        recv_access, rv, MHD_OPTION_NOTIFY_COMPLETED, recv_done, NULL,
        MHD_OPTION_END);
    cr_assert(rv->daemon != NULL, "cannot start the callback receiver");
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(rv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(rv->url, sizeof(rv->url), "http://127.0.0.1:%u/cb?token=t",
             (unsigned)info->port);
    return rv;
}

const char *recv_url(const struct receiver *rv)
{
    return rv->url;
}

int recv_count(struct receiver *rv)
{
    pthread_mutex_lock(&rv->lock);
    int n = (int)json_array_size(rv->calls);
    pthread_mutex_unlock(&rv->lock);
    return n;
}

json_t *recv_call(struct receiver *rv, int i)
{
    pthread_mutex_lock(&rv->lock);
    json_t *call = json_incref(json_array_get(rv->calls, (size_t)i));
    pthread_mutex_unlock(&rv->lock);
    return call;
}

void recv_wait(struct receiver *rv, int n, int timeout_ms)
{
    bool ok;

    POLL_UNTIL(ok, recv_count(rv) >= n, timeout_ms);
    cr_assert(ok, "%d callbacks wanted, %d arrived", n, recv_count(rv));
}

void recv_stop(struct receiver *rv)
{
    if (rv == NULL)
        return;
    MHD_stop_daemon(rv->daemon);
    json_decref(rv->calls);
    pthread_mutex_destroy(&rv->lock);
    free(rv);
}
