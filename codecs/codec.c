/* codecs/codec.c - what every codec shares: state names, accounts' credential
 * look-up, and the lifetimes of requests, call lists and results. */
#include "codecs/codec.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codecs/reads.h"
#include "codecs/util.h"

static const char *const state_names[] = {
    [STATE_ACCEPTED] = "accepted",   [STATE_SCHEDULED] = "scheduled",
    [STATE_SUBMITTED] = "submitted", [STATE_RETRYING] = "retrying",
    [STATE_UNKNOWN] = "unknown",     [STATE_DELIVERED] = "delivered",
    [STATE_FAILED] = "failed",       [STATE_REJECTED] = "rejected",
    [STATE_CANCELLED] = "cancelled",
};

const char *sms_state_name(enum sms_state state)
{
    assert((size_t)state < sizeof(state_names) / sizeof(state_names[0]));
    return state_names[state];
}

bool sms_state_is_final(enum sms_state state)
{
    return state >= STATE_DELIVERED;
}

const char *account_cred(const struct account *acct, const char *name)
{
    for (size_t i = 0; i < acct->ncreds; i++)
        if (strcmp(acct->creds[i].name, name) == 0)
            return acct->creds[i].value;
    return NULL;
}

static char *codec_xstrdup(const char *s)
{
    char *p = strdup(s);

    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        abort();
    }
    return p;
}

struct codec_call *codec_calls_add(struct codec_calls *calls, enum codec_op op)
{
    if (calls->ncalls == CODEC_MAX_CALLS)
        return NULL;
    struct codec_call *call = &calls->calls[calls->ncalls++];
    memset(call, 0, sizeof(*call));
    call->op = op;
    return call;
}

void http_request_cleanup(struct http_request *req)
{
    free(req->url);
    for (size_t i = 0; i < req->nheaders; i++) {
        free(req->headers[i].name);
        free(req->headers[i].value);
    }
    free(req->body);
    memset(req, 0, sizeof(*req));
}

void codec_calls_cleanup(struct codec_calls *calls)
{
    for (size_t i = 0; i < calls->ncalls; i++)
        http_request_cleanup(&calls->calls[i].req);
    calls->ncalls = 0;
}

void http_request_add_header(struct http_request *req, const char *name,
                             const char *value)
{
    assert(req->nheaders < HTTP_MAX_HEADERS);
    req->headers[req->nheaders].name = codec_xstrdup(name);
    req->headers[req->nheaders].value = codec_xstrdup(value);
    req->nheaders++;
}

void call_result_cleanup(struct call_result *res)
{
    free(res->recipients);
    json_decref(res->data);
    memset(res, 0, sizeof(*res));
}

void call_result_set_error(struct call_result *res, enum call_outcome outcome,
                           const char *code, const char *fmt, ...)
{
    va_list ap;

    res->outcome = outcome;
    util_strlcpy(res->error_code, code, sizeof(res->error_code));
    va_start(ap, fmt);
    vsnprintf(res->error_message, sizeof(res->error_message), fmt, ap);
    va_end(ap);
}

void callback_result_cleanup(struct callback_result *res)
{
    for (size_t i = 0; i < res->nreplies; i++)
        free(res->replies[i].text);
    free(res->replies);
    free(res->updates);
    memset(res, 0, sizeof(*res));
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (Howard Hinnant's days_from_civil). */
static int64_t codec_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int codec_month(const char *s)
{
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr",
                                         "May", "Jun", "Jul", "Aug",
                                         "Sep", "Oct", "Nov", "Dec"};
    for (int i = 0; i < 12; i++)
        if (strncmp(s, months[i], 3) == 0)
            return i + 1;
    return 0;
}

int http_date_parse(int64_t *out_ms, const char *s)
{
    char wday[16], mon[4], zone[4];
    int d, y, hh, mm, ss, n = 0;

    /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
    if (sscanf(s, "%3s, %2d %3s %4d %2d:%2d:%2d %3s%n", wday, &d, mon, &y, &hh,
               &mm, &ss, zone, &n) == 8 &&
        s[n] == '\0' && strcmp(zone, "GMT") == 0) {
        /* nothing more */
    } else if (sscanf(s, "%15[A-Za-z], %2d-%3s-%2d %2d:%2d:%2d %3s%n", wday, &d,
                      mon, &y, &hh, &mm, &ss, zone, &n) == 8 &&
               s[n] == '\0' && strcmp(zone, "GMT") == 0) {
        /* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"; codecs have no
         * clock, so 70-99 are 19xx and 00-69 are 20xx. */
        y += y < 70 ? 2000 : 1900;
    } else if (sscanf(s, "%3s %3s %2d %2d:%2d:%2d %4d%n", wday, mon, &d, &hh,
                      &mm, &ss, &y, &n) == 7 &&
               s[n] == '\0') {
        /* asctime: "Sun Nov  6 08:49:37 1994" */
    } else {
        return -1;
    }
    int m = codec_month(mon);
    if (m == 0 || strlen(mon) != 3 || d < 1 || d > 31 || hh > 23 || mm > 59 ||
        ss > 60 || hh < 0 || mm < 0 || ss < 0 || y < 1970 || y > 9999)
        return -1;
    int64_t secs =
        codec_days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss;
    *out_ms = secs * 1000;
    return 0;
}

bool call_result_from_status(struct call_result *res,
                             const struct http_response *resp)
{
    long st = resp->status;

    if (st == 0 || st == 429 || (st >= 500 && st <= 599)) {
        if (st == 0)
            call_result_set_error(res, CALL_RETRY, "no_answer",
                                  "no answer from the provider");
        else
            call_result_set_error(res, CALL_RETRY, "http_status",
                                  "provider answered HTTP %ld", st);
        const char *ra = resp->retry_after;
        int64_t at_ms;
        if (ra != NULL && *ra >= '0' && *ra <= '9') {
            char *end;
            long secs = strtol(ra, &end, 10);
            if (*end == '\0' && secs >= 0 && secs <= 86400)
                res->retry_after_ms = (int)(secs * 1000);
        } else if (ra != NULL && resp->now_ms > 0 &&
                   http_date_parse(&at_ms, ra) == 0) {
            /* An HTTP date: the delay from now, a past date meaning at
             * once (0 keeps the default backoff, so 1 ms). */
            int64_t delay = at_ms - resp->now_ms;
            if (delay <= 0)
                delay = 1;
            if (delay <= 86400 * 1000LL)
                res->retry_after_ms = (int)delay;
        }
        return true;
    }
    if (st == 401 || st == 403) {
        call_result_set_error(res, CALL_AUTH, "http_status",
                              "provider refused the credentials (HTTP %ld)",
                              st);
        return true;
    }
    return false;
}

void call_result_spread(struct call_result *res, size_t n)
{
    free(res->recipients);
    res->recipients = NULL;
    res->nrecipients = n;
    if (n == 0)
        return;
    res->recipients = calloc(n, sizeof(*res->recipients));
    if (res->recipients == NULL) {
        fprintf(stderr, "out of memory\n");
        abort();
    }
    for (size_t i = 0; i < n; i++) {
        struct recipient_result *r = &res->recipients[i];
        r->outcome = res->outcome;
        util_strlcpy(r->error_code, res->error_code, sizeof(r->error_code));
        util_strlcpy(r->error_message, res->error_message,
                     sizeof(r->error_message));
    }
}

char *account_callback_url(const struct account *acct, const char *kind)
{
    struct buf url;

    if (acct->callback_url == NULL)
        return NULL;
    buf_init(&url);
    buf_printf(&url, "%s/%s", acct->callback_url, kind);
    if (acct->webhook_token != NULL) {
        buf_puts(&url, "?token=");
        buf_append_urlenc(&url, acct->webhook_token,
                          strlen(acct->webhook_token));
    }
    return buf_detach(&url, NULL);
}

void codec_calls_truncate(struct codec_calls *calls, size_t n)
{
    for (size_t i = n; i < calls->ncalls; i++)
        http_request_cleanup(&calls->calls[i].req);
    if (n < calls->ncalls)
        calls->ncalls = n;
}

int codec_check_ncalls(const char *provider, const struct job *job,
                       size_t ncalls, char *errstr, size_t errstr_size)
{
    if (ncalls <= CODEC_MAX_CALLS)
        return 0;
    snprintf(errstr, errstr_size,
             "%s needs %zu calls for this %s, %d at most in one job", provider,
             ncalls, job_action_name(job->action), CODEC_MAX_CALLS);
    return -1;
}

unsigned codec_segments(const struct codec *c, const char *utf8, size_t len)
{
    return text_segments(c->segments != NULL ? c->segments : &segment_rule_gsm,
                         utf8, len);
}

size_t codec_per_call(const struct codec *c, const struct account *acct,
                      const struct job *job)
{
    size_t max;

    if (job->type == JOB_CONTACTS)
        return 0;
    max = job->type == JOB_CAMPAIGN ? c->campaign_max_recipients
                                    : c->send_max_recipients;
    if (c->per_call != NULL) {
        size_t own = c->per_call(acct, job);
        if (own > 0 && own < max)
            max = own;
    }
    if (job_is_personal(job))
        max = 1;
    return max;
}

int codec_check_slice(const struct codec *c, const struct account *acct,
                      const struct job *job, size_t first, size_t count,
                      char *errstr, size_t errstr_size)
{
    size_t max = codec_per_call(c, acct, job);

    if (first > job->nto || count > job->nto - first) {
        snprintf(errstr, errstr_size,
                 "recipients %zu+%zu are outside the job's %zu", first, count,
                 job->nto);
        return -1;
    }
    if (count == 0 && job->nto > 0) {
        snprintf(errstr, errstr_size, "no recipients in the slice");
        return -1;
    }
    if (count > max) {
        snprintf(errstr, errstr_size,
                 "%s carries at most %zu recipients per call for this job, "
                 "not %zu: cut the job with codec_per_call()",
                 c->name, max, count);
        return -1;
    }
    return 0;
}

int codec_encode_slice(const struct codec *c, codec_encode_fn *one,
                       struct codec_calls *out, const struct account *acct,
                       const struct job *job, size_t first, size_t count,
                       int64_t now, char *errstr, size_t errstr_size)
{
    size_t start = out->ncalls;
    struct job view;
    char *text = NULL;
    int ret;

    if (job->type == JOB_CONTACTS && job_action_is_read(job->action))
        return codec_encode_read(out, c, acct, job, errstr, errstr_size);
    if (job->type == JOB_CONTACTS ||
        (job->type == JOB_CAMPAIGN && job->action == ACTION_CANCEL))
        return one(out, acct, job, first, count, now, errstr, errstr_size);
    if (codec_check_slice(c, acct, job, first, count, errstr, errstr_size) != 0)
        return -1;
    if (job_is_personal(job) && count == 1) {
        size_t n;
        text = malloc(JOB_MAX_TEXT + 1);
        if (text == NULL) {
            fprintf(stderr, "out of memory\n");
            abort();
        }
        view = *job;
        if (job_render_text(job, first, text, JOB_MAX_TEXT + 1, &n, errstr,
                            errstr_size) != 0 ||
            text_analyse(&view.text_info, text, n, errstr, errstr_size) != 0) {
            free(text);
            return -1;
        }
        view.text = text;
        view.text_len = n;
        job = &view;
    }
    ret = one(out, acct, job, first, count, now, errstr, errstr_size);
    if (ret == 0 && out->ncalls != start + 1) {
        snprintf(errstr, errstr_size,
                 "%s encoded %zu calls for one slice of %zu recipients",
                 c->name, out->ncalls - start, count);
        codec_calls_truncate(out, start);
        ret = -1;
    }
    free(text);
    return ret;
}
