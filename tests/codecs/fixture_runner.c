/* tests/codecs/fixture_runner.c - the data-driven codec case runner. See
 * fixture_runner.h for the layout of a case. Plain C (no Criterion), so
 * every provider's test file wraps it in one Test(). */
#include "tests/codecs/fixture_runner.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "codecs/reads.h"
#include "codecs/util.h"

#define FIXTURE_NOW      1700000000
#define FIXTURE_PATH_MAX 4096

static const char *const outcome_names[] = {
    [CALL_ACCEPTED] = "accepted", [CALL_RETRY] = "retry",
    [CALL_REJECTED] = "rejected", [CALL_FAILED] = "failed",
    [CALL_AUTH] = "auth",
};

/* ------------------------------------------------------------------------ */
/* Files. */

/* Joins dir and name into path; a path that does not fit is a broken
 * checkout, not a case to skip. */
static void fixture_path(char path[FIXTURE_PATH_MAX], const char *dir,
                         const char *name)
{
    if (snprintf(path, FIXTURE_PATH_MAX, "%s/%s", dir, name) >=
        FIXTURE_PATH_MAX) {
        fprintf(stderr, "fixture path too long: %s/%s\n", dir, name);
        abort();
    }
}

static char *fixture_read(const char *dir, const char *name, size_t *len)
{
    char path[FIXTURE_PATH_MAX];
    struct buf b;
    char chunk[4096];
    size_t got;

    fixture_path(path, dir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    buf_init(&b);
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_append(&b, chunk, got);
    fclose(f);
    return buf_detach(&b, len);
}

static json_t *fixture_json(const char *dir, const char *name)
{
    char path[FIXTURE_PATH_MAX];
    json_error_t jerr;

    fixture_path(path, dir, name);
    struct stat st;
    if (stat(path, &st) != 0)
        return NULL;
    json_t *root = json_load_file(path, 0, &jerr);
    if (root == NULL)
        fprintf(stderr, "%s: bad JSON at line %d: %s\n", path, jerr.line,
                jerr.text);
    return root;
}

static void fixture_write(const char *dir, const char *name, const char *data,
                          size_t len)
{
    char path[FIXTURE_PATH_MAX];

    fixture_path(path, dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return;
    fwrite(data, 1, len, f);
    fclose(f);
}

static void fixture_write_append_newline(const char *dir, const char *name)
{
    char path[FIXTURE_PATH_MAX];

    fixture_path(path, dir, name);
    FILE *f = fopen(path, "ab");
    if (f != NULL) {
        fputc('\n', f);
        fclose(f);
    }
}

static bool fixture_updating(void)
{
    const char *v = getenv("FIXTURES_UPDATE");
    return v != NULL && strcmp(v, "1") == 0;
}

/* ------------------------------------------------------------------------ */
/* Accounts. */

static char *fixture_dup(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? strdup(s) : NULL;
}

static void fixture_account_load(struct account *acct, json_t *root)
{
    memset(acct, 0, sizeof(*acct));
    acct->name = fixture_dup(root, "name");
    acct->base_url = fixture_dup(root, "base_url");
    acct->default_sender = fixture_dup(root, "default_sender");
    acct->webhook_token = fixture_dup(root, "webhook_token");
    acct->callback_url = fixture_dup(root, "callback_url");
    acct->options.legacy_unconfirmed_soap = json_is_true(json_object_get(
        json_object_get(root, "options"), "legacy_unconfirmed_soap"));
    const char *key;
    json_t *value;
    json_object_foreach(json_object_get(root, "credentials"), key, value)
    {
        if (acct->ncreds == ACCOUNT_MAX_CREDS || !json_is_string(value))
            continue;
        acct->creds[acct->ncreds].name = strdup(key);
        acct->creds[acct->ncreds].value = strdup(json_string_value(value));
        acct->ncreds++;
    }
}

static void fixture_account_cleanup(struct account *acct)
{
    free(acct->name);
    free(acct->base_url);
    free(acct->default_sender);
    free(acct->webhook_token);
    free(acct->callback_url);
    for (size_t i = 0; i < acct->ncreds; i++) {
        free(acct->creds[i].name);
        free(acct->creds[i].value);
    }
}

/* ------------------------------------------------------------------------ */
/* Results as JSON. */

static void fixture_set_str(json_t *obj, const char *key, const char *s)
{
    if (s != NULL && *s != '\0')
        json_object_set_new(obj, key, json_string(s));
}

json_t *fixture_call_json(const struct call_result *res)
{
    json_t *obj = json_object();

    json_object_set_new(obj, "outcome",
                        json_string(outcome_names[res->outcome]));
    if (res->retry_after_ms != 0)
        json_object_set_new(obj, "retry_after_ms",
                            json_integer(res->retry_after_ms));
    fixture_set_str(obj, "provider_id", res->provider_id);
    fixture_set_str(obj, "provider_status", res->provider_status);
    fixture_set_str(obj, "error_code", res->error_code);
    fixture_set_str(obj, "error_message", res->error_message);
    if (res->nrecipients > 0) {
        json_t *list = json_array();
        for (size_t i = 0; i < res->nrecipients; i++) {
            const struct recipient_result *r = &res->recipients[i];
            json_t *e = json_object();
            json_object_set_new(e, "outcome",
                                json_string(outcome_names[r->outcome]));
            fixture_set_str(e, "provider_id", r->provider_id);
            fixture_set_str(e, "provider_status", r->provider_status);
            fixture_set_str(e, "error_code", r->error_code);
            fixture_set_str(e, "error_message", r->error_message);
            json_array_append_new(list, e);
        }
        json_object_set_new(obj, "recipients", list);
    }
    if (res->data != NULL)
        json_object_set(obj, "data", res->data);
    return obj;
}

json_t *fixture_callback_json(const struct callback_result *res)
{
    json_t *obj = json_object();

    if (res->nupdates > 0) {
        json_t *list = json_array();
        for (size_t i = 0; i < res->nupdates; i++) {
            const struct status_update *u = &res->updates[i];
            json_t *e = json_object();
            fixture_set_str(e, "provider_id", u->provider_id);
            fixture_set_str(e, "provider_status", u->provider_status);
            json_object_set_new(e, "state",
                                json_string(sms_state_name(u->state)));
            fixture_set_str(e, "recipient", u->recipient);
            fixture_set_str(e, "transid", u->transid);
            fixture_set_str(e, "error_code", u->error_code);
            fixture_set_str(e, "error_message", u->error_message);
            json_array_append_new(list, e);
        }
        json_object_set_new(obj, "updates", list);
    }
    if (res->nreplies > 0) {
        json_t *list = json_array();
        for (size_t i = 0; i < res->nreplies; i++) {
            const struct inbound_sms *r = &res->replies[i];
            json_t *e = json_object();
            fixture_set_str(e, "provider_id", r->provider_id);
            fixture_set_str(e, "from", r->from);
            fixture_set_str(e, "to", r->to);
            fixture_set_str(e, "received_at", r->received_at);
            fixture_set_str(e, "text", r->text);
            json_array_append_new(list, e);
        }
        json_object_set_new(obj, "replies", list);
    }
    if (res->answer_status != 0)
        json_object_set_new(obj, "answer_status",
                            json_integer(res->answer_status));
    fixture_set_str(obj, "answer_body", res->answer_body);
    fixture_set_str(obj, "answer_content_type", res->answer_content_type);
    return obj;
}

static json_t *fixture_error_json(const char *errstr)
{
    return json_pack("{s:s}", "error", errstr);
}

/* ------------------------------------------------------------------------ */
/* HTTP files. */

/* A parsed .http file: first line, headers, body; pointers into `raw`. */
struct fixture_http {
    char *raw;
    char *first; /* "HTTP/1.1 200 OK" or "POST /path?q" */
    char *content_type;
    char *retry_after;
    const char *body;
    size_t body_len;
};

static int fixture_http_load(struct fixture_http *out, const char *dir,
                             const char *name)
{
    size_t len;

    memset(out, 0, sizeof(*out));
    out->raw = fixture_read(dir, name, &len);
    if (out->raw == NULL)
        return -1;
    char *p = out->raw, *end = out->raw + len;
    out->first = p;
    for (int lineno = 0; p < end; lineno++) {
        char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        char *next = eol < end ? eol + 1 : end;
        if (eol > p && eol[-1] == '\r')
            eol--;
        *eol = '\0';
        if (lineno > 0 && eol == p) { /* the blank line */
            p = next;
            break;
        }
        char *colon = lineno > 0 ? strchr(p, ':') : NULL;
        if (colon != NULL) {
            *colon = '\0';
            char *v = colon + 1;
            while (*v == ' ')
                v++;
            if (strcasecmp(p, "Content-Type") == 0)
                out->content_type = v;
            else if (strcasecmp(p, "Retry-After") == 0)
                out->retry_after = v;
        }
        p = next;
    }
    out->body = p;
    out->body_len = (size_t)(end - p);
    if (out->body_len > 0 && p[out->body_len - 1] == '\n')
        out->body_len--;
    return 0;
}

static void fixture_request_text(struct buf *b, const struct http_request *r)
{
    buf_printf(b, "%s %s\n", r->method, r->url);
    for (size_t i = 0; i < r->nheaders; i++)
        buf_printf(b, "%s: %s\n", r->headers[i].name, r->headers[i].value);
    buf_puts(b, "\n");
    buf_append(b, r->body ? r->body : "", r->body ? r->body_len : 0);
}

static void fixture_request_name(char *out, size_t out_size, size_t i)
{
    if (i == 0)
        snprintf(out, out_size, "request.http");
    else
        snprintf(out, out_size, "request%zu.http", i + 1);
}

/* Compares the calls with request*.http. */
static int fixture_check_requests(const struct codec_calls *calls,
                                  const char *dir)
{
    int ret = 0;
    size_t i;

    for (i = 0;; i++) {
        char name[32];
        size_t len;
        fixture_request_name(name, sizeof(name), i);
        char *want = fixture_read(dir, name, &len);
        if (i >= calls->ncalls) {
            if (want != NULL) {
                fprintf(stderr, "%s: %s expected, the codec made %zu calls\n",
                        dir, name, calls->ncalls);
                ret = -1;
            }
            free(want);
            break;
        }
        struct buf got;
        buf_init(&got);
        fixture_request_text(&got, &calls->calls[i].req);
        if (fixture_updating()) {
            fixture_write(dir, name, got.data, got.len);
        } else if (want == NULL) {
            fprintf(stderr, "%s: call %zu has no %s:\n%s\n", dir, i + 1, name,
                    got.data);
            ret = -1;
        } else {
            if (len > 0 && want[len - 1] == '\n' &&
                !(got.len > 0 && got.data[got.len - 1] == '\n'))
                len--;
            if (len != got.len || memcmp(want, got.data, len) != 0) {
                fprintf(stderr,
                        "%s: %s differs\n--- want\n%.*s\n--- got\n%s\n---\n",
                        dir, name, (int)len, want, got.data);
                ret = -1;
            }
        }
        buf_cleanup(&got);
        free(want);
    }
    return ret;
}

/* Compares `got` (taken) with result.json. */
static int fixture_check_result(json_t *got, const char *dir)
{
    int ret = 0;
    json_t *want = fixture_json(dir, "result.json");

    if (fixture_updating()) {
        char *s = json_dumps(got, JSON_INDENT(2) | JSON_SORT_KEYS);
        fixture_write(dir, "result.json", s, strlen(s));
        fixture_write_append_newline(dir, "result.json");
        free(s);
    } else if (want == NULL) {
        char *s = json_dumps(got, JSON_INDENT(2) | JSON_SORT_KEYS);
        fprintf(stderr, "%s: no result.json; the codec gave:\n%s\n", dir, s);
        free(s);
        ret = -1;
    } else if (!json_equal(want, got)) {
        char *w = json_dumps(want, JSON_INDENT(2) | JSON_SORT_KEYS);
        char *g = json_dumps(got, JSON_INDENT(2) | JSON_SORT_KEYS);
        fprintf(stderr, "%s: result differs\n--- want\n%s\n--- got\n%s\n", dir,
                w, g);
        free(w);
        free(g);
        ret = -1;
    }
    json_decref(want);
    json_decref(got);
    return ret;
}

/* ------------------------------------------------------------------------ */
/* Running a case. */

static int fixture_params_int(json_t *params, const char *key, int dflt)
{
    json_t *v = json_object_get(params, key);
    return json_is_integer(v) ? (int)json_integer_value(v) : dflt;
}

/* Decodes response.http against call `which`; returns the result JSON. */
static json_t *fixture_decode(const struct codec *codec,
                              const struct account *acct, const struct job *job,
                              const struct codec_calls *calls, size_t which,
                              bool poll, const struct fixture_http *rf)
{
    char errstr[512] = "";
    struct http_response resp = {0};
    const struct codec_call *call = &calls->calls[which];
    json_t *got;
    long status = 0;

    sscanf(rf->first, "HTTP/%*s %ld", &status);
    resp.status = status;
    resp.content_type = rf->content_type;
    resp.retry_after = rf->retry_after;
    resp.body = rf->body;
    resp.body_len = rf->body_len;
    if (poll) {
        struct callback_result cres;
        memset(&cres, 0, sizeof(cres));
        if (codec->decode_poll(&cres, acct, call, &resp, errstr,
                               sizeof(errstr)) != 0)
            got = fixture_error_json(errstr);
        else
            got = fixture_callback_json(&cres);
        callback_result_cleanup(&cres);
    } else {
        struct call_result res;
        memset(&res, 0, sizeof(res));
        /* A read job's answer is decoded and normalised as the engine
         * does it (codecs/reads.h). */
        int ret = job != NULL && job->type == JOB_CONTACTS &&
                          job_action_is_read(job->action)
                      ? codec_decode_read(&res, codec, acct, job, call, &resp,
                                          errstr, sizeof(errstr))
                      : codec->decode(&res, acct, job, call, &resp, errstr,
                                      sizeof(errstr));
        if (ret != 0)
            got = fixture_error_json(errstr);
        else
            got = fixture_call_json(&res);
        call_result_cleanup(&res);
    }
    return got;
}

static const struct {
    const char *name;
    enum codec_op op;
} fixture_poll_ops[] = {
    {"poll_status", OP_POLL_STATUS},
    {"poll_replies", OP_POLL_REPLIES},
    {"read", OP_READ},
    {"cancel", OP_CANCEL},
    {"campaign_cancel", OP_CAMPAIGN_CANCEL},
};

/* Encodes job.json or poll.json into calls; returns the error JSON when a
 * step failed, NULL when the calls are there. */
static json_t *fixture_encode(struct codec_calls *calls, struct job **job_out,
                              bool *poll_out, const struct codec *codec,
                              const struct account *acct, json_t *params,
                              const char *dir)
{
    char errstr[512] = "", id[128];
    size_t len;
    char *raw = fixture_read(dir, "job.json", &len);
    int64_t now = fixture_params_int(params, "now", FIXTURE_NOW);

    if (raw != NULL) {
        enum job_type topic = JOB_SEND;
        json_t *peek = json_loadb(raw, len, 0, NULL);
        const char *type = json_string_value(json_object_get(peek, "type"));
        if (type != NULL && strcmp(type, "campaign") == 0)
            topic = JOB_CAMPAIGN;
        else if (type != NULL && strcmp(type, "contact-sync") == 0)
            topic = JOB_CONTACTS;
        json_decref(peek);

        int ret = job_parse(job_out, raw, len, topic, id, sizeof(id), errstr,
                            sizeof(errstr));
        free(raw);
        if (ret != 0)
            return fixture_error_json(errstr);
        struct job *job = *job_out;
        if (codec->check(acct, job, errstr, sizeof(errstr)) != 0)
            return fixture_error_json(errstr);
        size_t first = (size_t)fixture_params_int(params, "first", 0);
        if (json_object_get(params, "count") != NULL) {
            size_t count = (size_t)fixture_params_int(params, "count", 0);
            if (codec->encode(calls, acct, job, first, count, now, errstr,
                              sizeof(errstr)) != 0)
                return fixture_error_json(errstr);
        } else {
            /* As the engine does: slices of codec_per_call(), one call
             * each (one slice when the job has no recipients). */
            size_t per = codec_per_call(codec, acct, job);
            do {
                size_t left = job->nto - first;
                size_t count = per > 0 && left > per ? per : left;
                if (codec->encode(calls, acct, job, first, count, now, errstr,
                                  sizeof(errstr)) != 0)
                    return fixture_error_json(errstr);
                first += count;
            } while (first < job->nto);
        }
        *poll_out = false;
        return NULL;
    }

    json_t *poll = fixture_json(dir, "poll.json");
    if (poll == NULL)
        return fixture_error_json("the case has no job.json or poll.json");
    const char *opname = json_string_value(json_object_get(poll, "op"));
    size_t k = 0;
    while (k < sizeof(fixture_poll_ops) / sizeof(fixture_poll_ops[0]) &&
           (opname == NULL || strcmp(opname, fixture_poll_ops[k].name) != 0))
        k++;
    json_t *err = NULL;
    if (k == sizeof(fixture_poll_ops) / sizeof(fixture_poll_ops[0])) {
        err = fixture_error_json("poll.json: unknown \"op\"");
    } else if (codec->encode_poll == NULL) {
        err = fixture_error_json("the codec has no encode_poll");
    } else {
        enum codec_op op = fixture_poll_ops[k].op;
        const char *decode =
            json_string_value(json_object_get(params, "decode"));
        *poll_out = decode ? strcmp(decode, "poll") == 0
                           : op == OP_POLL_STATUS || op == OP_POLL_REPLIES;
        if (codec->encode_poll(
                calls, acct, op,
                json_string_value(json_object_get(poll, "provider_id")),
                fixture_params_int(poll, "since", 0), errstr,
                sizeof(errstr)) != 0)
            err = fixture_error_json(errstr);
    }
    json_decref(poll);
    return err;
}

/* Runs inbound.http through codec->callback. */
static json_t *fixture_callback(const struct codec *codec,
                                const struct account *acct, const char *dir)
{
    struct fixture_http in;
    char errstr[512] = "";
    json_t *got;

    if (fixture_http_load(&in, dir, "inbound.http") != 0)
        return NULL;
    char *sp = strchr(in.first, ' ');
    char *path = sp ? sp + 1 : in.first;
    if (sp != NULL)
        *sp = '\0';
    char *query = strchr(path, '?');
    if (query != NULL)
        *query++ = '\0';
    size_t plen = strlen(path);
    enum callback_kind kind =
        plen >= 7 && strcmp(path + plen - 7, "/status") == 0 ? CALLBACK_STATUS
                                                             : CALLBACK_INBOUND;
    struct http_inbound hin = {
        .method = in.first,
        .query = query,
        .content_type = in.content_type,
        .body = in.body,
        .body_len = in.body_len,
    };
    struct callback_result res;
    memset(&res, 0, sizeof(res));
    if (codec->callback == NULL) {
        got = fixture_error_json("the codec has no callback");
    } else if (codec->callback(&res, acct, kind, &hin, errstr,
                               sizeof(errstr)) != 0) {
        /* The error answer is part of what is checked. */
        got = fixture_callback_json(&res);
        json_object_set_new(got, "error", json_string(errstr));
    } else {
        got = fixture_callback_json(&res);
    }
    callback_result_cleanup(&res);
    free(in.raw);
    return got;
}

int fixture_run_case(const struct codec *codec, const char *dir)
{
    char parent[FIXTURE_PATH_MAX];
    struct account acct;
    struct codec_calls *calls = calloc(1, sizeof(*calls));
    struct job *job = NULL;
    bool poll = false;
    int ret = -1;

    /* The account: the case's, else the provider directory's. */
    fixture_path(parent, dir, "..");
    json_t *aj = fixture_json(dir, "account.json");
    if (aj == NULL)
        aj = fixture_json(parent, "account.json");
    fixture_account_load(&acct, aj);
    acct.codec = codec;
    json_decref(aj);
    json_t *params = fixture_json(dir, "params.json");

    json_t *got = fixture_callback(codec, &acct, dir);
    if (got != NULL) {
        ret = fixture_check_result(got, dir);
        goto out;
    }
    got = fixture_encode(calls, &job, &poll, codec, &acct, params, dir);
    if (got != NULL) {
        ret = fixture_check_result(got, dir);
        goto out;
    }
    ret = fixture_check_requests(calls, dir);

    struct fixture_http rf;
    if (fixture_http_load(&rf, dir, "response.http") == 0) {
        size_t which = (size_t)fixture_params_int(params, "call", 0);
        if (which >= calls->ncalls) {
            fprintf(stderr, "%s: response.http for call %zu of %zu\n", dir,
                    which + 1, calls->ncalls);
            ret = -1;
        } else {
            got = fixture_decode(codec, &acct, job, calls, which, poll, &rf);
            if (fixture_check_result(got, dir) != 0)
                ret = -1;
        }
        free(rf.raw);
    }

out:
    json_decref(params);
    job_free(job);
    codec_calls_cleanup(calls);
    free(calls);
    fixture_account_cleanup(&acct);
    return ret;
}

static int fixture_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int fixture_run_provider(const char *provider)
{
    const char *root = getenv("FIXTURES");
    char dir[FIXTURE_PATH_MAX];
    char **names = NULL;
    size_t n = 0;

    fixture_path(dir, root ? root : "fixtures", provider);
    const struct codec *codec = codec_find(provider);
    DIR *d = opendir(dir);
    if (d == NULL || codec == NULL) {
        fprintf(stderr, "%s: %s\n", dir,
                d ? "no such codec" : "cannot open the fixture directory");
        if (d != NULL)
            closedir(d);
        return -1;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char path[FIXTURE_PATH_MAX];
        struct stat st;
        fixture_path(path, dir, de->d_name);
        if (de->d_name[0] == '.' || stat(path, &st) != 0 ||
            !S_ISDIR(st.st_mode))
            continue;
        names = realloc(names, (n + 1) * sizeof(*names));
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    if (n == 0) {
        fprintf(stderr, "%s: no cases\n", dir);
        return -1;
    }
    qsort(names, n, sizeof(*names), fixture_cmp);

    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        char path[FIXTURE_PATH_MAX];
        fixture_path(path, dir, names[i]);
        if (fixture_run_case(codec, path) != 0) {
            fprintf(stderr, "FAIL %s/%s\n", provider, names[i]);
            failed++;
        }
        free(names[i]);
    }
    free(names);
    fprintf(stderr, "%s: %zu cases, %d failed\n", provider, n, failed);
    return failed;
}
