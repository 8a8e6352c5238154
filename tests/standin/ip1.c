/* tests/standin/ip1.c - iP.1 REST API v2 stand-in (/v2/...).
 *
 * Bearer API key, JSON in and out, camelCase. Where the documents are silent
 * (providers.md §6) the choices are: POST /v2/batches answers 201 with the
 * batch document (24-hex "id") and a Location header; per-message ids come
 * from GET /v2/batches/{id}/messages; errors are ASP.NET ProblemDetails
 * ({"type","title","status","errors"}) with 400, 401, 403, 404, 415, 429.
 * Invalid recipient numbers and black-listed ones become messages with
 * status 405 (RecipientRejected), as IP1-SEND says, not request errors. */
#include "standin.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define IP1_BODY_MAX       2000
#define IP1_RECIPIENTS_MAX 10000
#define IP1_URL_MAX        2047
#define IP1_REFERENCE_MAX  40
#define IP1_PRICE          0.35

static void ip1_problem(struct request *req, unsigned status, const char *title,
                        json_t *errors)
{
    const char *type;

    switch (status) {
    case 400:
        type = "https://tools.ietf.org/html/rfc7231#section-6.5.1";
        break;
    case 401:
        type = "https://tools.ietf.org/html/rfc7235#section-3.1";
        break;
    case 403:
        type = "https://tools.ietf.org/html/rfc7231#section-6.5.3";
        break;
    case 404:
        type = "https://tools.ietf.org/html/rfc7231#section-6.5.4";
        break;
    case 415:
        type = "https://tools.ietf.org/html/rfc7231#section-6.5.13";
        break;
    case 429:
        type = "https://tools.ietf.org/html/rfc6585#section-4";
        break;
    default:
        type = "https://tools.ietf.org/html/rfc7231#section-6.6.1";
    }
    json_t *root = json_pack("{s:s, s:s, s:i}", "type", type, "title", title,
                             "status", (int)status);
    if (errors != NULL)
        json_object_set_new(root, "errors", errors);
    resp_json(&req->resp, status, root);
    snprintf(req->resp.content_type, sizeof(req->resp.content_type),
             "application/problem+json; charset=utf-8");
    standin->stats.provider_errors[PROV_IP1]++;
}

/* Adds message to errors[field]. */
static void add_error(json_t *errors, const char *field, const char *message)
{
    json_t *list = json_object_get(errors, field);

    if (list == NULL) {
        list = json_array();
        json_object_set_new(errors, field, list);
    }
    json_array_append_new(list, json_string(message));
}

static void ip1_validation(struct request *req, json_t *errors)
{
    ip1_problem(req, 400, "One or more validation errors occurred.", errors);
}

void ip1_error_answer(struct request *req, bool throttle)
{
    if (throttle)
        ip1_problem(req, 429, "Too Many Requests", NULL);
    else
        ip1_problem(req, 403, "Insufficient funds", NULL);
}

void ip1_set_final(struct msg *m, enum msg_state s)
{
    int code;

    m->state = s;
    switch (s) {
    case MS_DELIVERED:
        code = 201;
        break;
    case MS_FAILED:
        code = 202; /* Expired: ended without delivery */
        break;
    case MS_UNKNOWN:
        code = 113; /* on the GSM network; no report follows */
        m->state = MS_PENDING;
        break;
    case MS_CANCELLED:
        code = 203;
        break;
    case MS_REJECTED:
        code = 405;
        break;
    case MS_SCHEDULED:
        code = 102;
        break;
    default:
        code = 101;
    }
    m->code = code;
    if (m->n_hist < STATUS_HIST_MAX) {
        m->hist_at[m->n_hist] = now_ms();
        m->hist_code[m->n_hist++] = code;
    }
}

void ip1_identify(struct request *req)
{
    const char *auth = req_header(req, "Authorization");

    if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
        return;
    auth += 7;
    while (*auth == ' ')
        auth++;
    req->acct = accounts_by_cred(&standin->accts, PROV_IP1, auth, NULL);
}

/* Reads the JSON body. Returns it (new reference), or NULL having
 * answered 415 or 400. */
static json_t *ip1_body(struct request *req)
{
    char media[64];
    json_error_t jerr;

    req_media_type(req, media, sizeof(media));
    size_t n = strlen(media);
    if (strcmp(media, "application/json") != 0 &&
        !(n > 5 && strcmp(media + n - 5, "+json") == 0)) {
        ip1_problem(req, 415, "Unsupported Media Type", NULL);
        return NULL;
    }
    json_t *root = json_loadb(req->body.data ? req->body.data : "",
                              req->body.len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        char msg[300];
        json_t *errors = json_object();
        snprintf(msg, sizeof(msg),
                 "%s LineNumber: %d | BytePositionInLine: %d.", jerr.text,
                 jerr.line > 0 ? jerr.line - 1 : 0,
                 jerr.column > 0 ? jerr.column : 0);
        add_error(errors, "$", msg);
        ip1_validation(req, errors);
    }
    return root;
}

static void iso_now(char out[40], int64_t ms, bool zone)
{
    format_utc(out, 40, ms, "%Y-%m-%dT%H:%M:%S", true, zone ? "Z" : "");
}

/* ------------------------------------------------------------------------
 * Batches and messages
 * ---------------------------------------------------------------------- */

/* sender: 3-11 letters and digits, or a number of 3-15 digits not starting
 * with 0 (IP1-SEND, the official sample's regex). */
static bool ip1_sender_ok(const char *s)
{
    size_t n = strlen(s);

    if (only_chars(s, "0123456789"))
        return n >= 3 && n <= 15 && s[0] != '0';
    return n >= 3 && n <= 11 &&
           only_chars(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXY"
                         "Z0123456789");
}

static bool ip1_sender_registered(const struct account *a, const char *s)
{
    if (!a->senders_set)
        return true;
    for (size_t i = 0; i < a->senders.len; i++) {
        if (strcmp(a->senders.items[i], s) == 0)
            return true;
    }
    return false;
}

/* Parses an enum given as a case-insensitive string or an int. Returns the
 * index into names, or -1. */
static int ip1_enum(const json_t *v, const char *const names[2],
                    const int ints[2])
{
    for (int i = 0; i < 2; i++) {
        if (json_is_string(v) &&
            strcasecmp(json_string_value(v), names[i]) == 0)
            return i;
        if (json_is_integer(v) && json_integer_value(v) == ints[i])
            return i;
    }
    return -1;
}

/* Replaces {key} in body with the recipient's value or the default's. */
static char *ip1_template(const char *body, const json_t *mine,
                          const json_t *dflt)
{
    struct sbuf b = {0};
    const char *p = body;

    while (*p != '\0') {
        const char *close = *p == '{' ? strchr(p, '}') : NULL;
        if (close != NULL) {
            char *key = xstrndup(p + 1, (size_t)(close - p - 1));
            const char *v = json_string_value(json_object_get(mine, key));
            if (v == NULL)
                v = json_string_value(json_object_get(dflt, key));
            free(key);
            if (v != NULL) {
                sbuf_puts(&b, v);
                p = close + 1;
                continue;
            }
        }
        sbuf_append(&b, p++, 1);
    }
    return sbuf_detach(&b, NULL);
}

static int ip1_batch_status(const struct batch *b)
{
    bool all_final = true;
    int first = 101;

    for (size_t i = 0; i < b->msgs.len; i++) {
        const struct msg *m = b->msgs.items[i];
        if (i == 0)
            first = m->code;
        if (m->code < 200)
            all_final = false;
        if (m->code == 201 && all_final)
            first = 201;
    }
    if (b->cancelled)
        return 203;
    return all_final ? first : (first >= 200 ? 110 : first);
}

static json_t *ip1_batch_json(const struct batch *b, bool single)
{
    json_t *doc = json_deep_copy(b->doc);
    unsigned segments = 0;

    json_object_set_new(doc, "status", json_integer(ip1_batch_status(b)));
    if (!single)
        return doc;
    json_t *summary = json_object();
    for (size_t i = 0; i < b->msgs.len; i++) {
        const struct msg *m = b->msgs.items[i];
        char code[16];
        snprintf(code, sizeof(code), "%d", m->code);
        json_t *s = json_object_get(summary, code);
        if (s == NULL) {
            s = json_pack("{s:i, s:i}", "messages", 0, "sms", 0);
            json_object_set_new(summary, code, s);
        }
        json_object_set_new(
            s, "messages",
            json_integer(json_integer_value(json_object_get(s, "messages")) +
                         1));
        json_object_set_new(
            s, "sms",
            json_integer(json_integer_value(json_object_get(s, "sms")) +
                         m->segments));
        segments += m->segments;
    }
    json_object_set_new(doc, "messageSummary", summary);
    json_object_set_new(
        doc, "priceSummary",
        json_pack("{s:f, s:s, s:f}", "total", IP1_PRICE * segments, "currency",
                  "SEK", "average",
                  b->msgs.len ? IP1_PRICE * segments / (double)b->msgs.len
                              : 0.0));
    return doc;
}

static json_t *ip1_msg_json(const struct msg *m, bool history)
{
    char modified[40];
    json_t *statuses = json_array();
    size_t from = history || m->n_hist == 0 ? 0 : m->n_hist - 1;

    iso_now(modified, m->modified_ms, true);
    for (size_t i = from; i < m->n_hist; i++) {
        char at[40];
        iso_now(at, m->hist_at[i], true);
        json_array_append_new(statuses,
                              json_pack("{s:s, s:i, s:i}", "created", at,
                                        "code", m->hist_code[i], "duration",
                                        m->hist_code[i] >= 200 ? 1 : 0));
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:s,"
                     " s:i, s:f, s:s, s:o, s:s, s:s?, s:s, s:s}",
                     "id", m->id, "batchId", m->group_id, "owner",
                     m->acct->owner, "sender", m->sender ? m->sender : "",
                     "recipient", m->recipient, "body", m->text ? m->text : "",
                     "direction", "mt", "segments", (int)m->segments, "type",
                     m->flash ? "flash" : "sms", "datacoding",
                     m->ucs2 ? "ucs" : "gsm", "priority", m->priority, "price",
                     IP1_PRICE * m->segments, "currency", "SEK", "statuses",
                     statuses, "modified", modified, "reference", m->reference,
                     "mcc", "240", "mnc", "01");
}

/* Checks the optional fields of a batch request, adding to errors. Sets
 * *flash, *force_ucs, *priority, *opens_ms. */
static void ip1_check_options(json_t *root, json_t *errors, bool *flash,
                              bool *force_ucs, bool *gsm_only, int *priority,
                              int64_t *opens_ms)
{
    static const char *const types[2] = {"sms", "flash"};
    static const int type_ints[2] = {0, 1};
    static const char *const codings[2] = {"gsm", "ucs"};
    static const int coding_ints[2] = {0, 2};
    json_t *v;

    v = json_object_get(root, "type");
    if (v != NULL && !json_is_null(v)) {
        int t = ip1_enum(v, types, type_ints);
        if (t < 0)
            add_error(errors, "type", "The type must be sms or flash.");
        *flash = t == 1;
    }
    v = json_object_get(root, "datacoding");
    if (v != NULL && !json_is_null(v)) {
        int c = ip1_enum(v, codings, coding_ints);
        if (c < 0)
            add_error(errors, "datacoding",
                      "The datacoding must be gsm or ucs.");
        *gsm_only = c == 0;
        *force_ucs = c == 1;
    }
    v = json_object_get(root, "priority");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > 2)
            add_error(errors, "priority", "The priority must be 1 or 2.");
        else
            *priority = (int)json_integer_value(v);
    }
    v = json_object_get(root, "deliveryWindows");
    if (v != NULL) {
        size_t i;
        json_t *w;
        if (!json_is_array(v))
            add_error(errors, "deliveryWindows",
                      "The deliveryWindows must be an array (not null).");
        json_array_foreach(v, i, w)
        {
            const char *o = json_string_value(json_object_get(w, "opens"));
            const char *c = json_string_value(json_object_get(w, "closes"));
            int64_t open_ms, close_ms;
            if (o == NULL || parse_iso8601(&open_ms, o) != 0 ||
                (c != NULL && parse_iso8601(&close_ms, c) != 0) ||
                (c != NULL && close_ms <= open_ms)) {
                add_error(errors, "deliveryWindows",
                          "Each window needs ISO 8601 opens and a later "
                          "closes.");
                continue;
            }
            if (i == 0 || open_ms < *opens_ms)
                *opens_ms = open_ms;
        }
    }
    v = json_object_get(root, "deliveryReportUrl");
    if (v != NULL && !json_is_null(v) &&
        (!json_is_string(v) || strlen(json_string_value(v)) > IP1_URL_MAX ||
         !is_http_url(json_string_value(v))))
        add_error(errors, "deliveryReportUrl",
                  "The deliveryReportUrl must be an absolute http(s) URL of "
                  "at most 2047 characters.");
    v = json_object_get(root, "reference");
    if (v != NULL && !json_is_null(v) &&
        (!json_is_string(v) || strlen(json_string_value(v)) < 1 ||
         strlen(json_string_value(v)) > IP1_REFERENCE_MAX))
        add_error(errors, "reference",
                  "The reference must be 1 to 40 characters.");
    v = json_object_get(root, "tags");
    if (v != NULL && !json_is_null(v)) {
        size_t i;
        json_t *t;
        bool ok = json_is_array(v);
        json_array_foreach(v, i, t) ok = ok && json_is_string(t);
        if (!ok)
            add_error(errors, "tags", "The tags must be an array of strings.");
    }
}

static void ip1_create_batch(struct request *req)
{
    json_t *root = ip1_body(req);
    json_t *errors = json_object();
    json_t *recipients, *dflt = NULL;
    struct ptrvec numbers = {0}, bodies = {0};
    struct acct_state *st = acct_state(req->acct);
    bool flash = false, force_ucs = false, gsm_only = false;
    int priority = 1;
    int64_t opens_ms = 0;
    unsigned total_segments = 0;

    if (root == NULL)
        goto out;
    if (!json_is_object(root)) {
        add_error(errors, "$", "The request body must be a batch object.");
        goto invalid;
    }
    const char *sender = json_string_value(json_object_get(root, "sender"));
    const char *body = json_string_value(json_object_get(root, "body"));
    recipients = json_object_get(root, "recipients");
    if (sender == NULL)
        add_error(errors, "sender", "The sender field is required.");
    else if (!ip1_sender_ok(sender))
        add_error(errors, "sender",
                  "The sender must be 3-11 letters and digits or a number "
                  "of 3-15 digits.");
    char *trimmed = body ? trim(xstrdup(body)) : NULL;
    if (trimmed == NULL || trimmed[0] == '\0')
        add_error(errors, "body", "The body field is required.");
    free(trimmed);
    if (body != NULL) {
        struct text_count tc;
        text_count(&tc, body, strlen(body), false);
        if (tc.chars > IP1_BODY_MAX)
            add_error(errors, "body",
                      "The body must be at most 2000 characters.");
    }
    ip1_check_options(root, errors, &flash, &force_ucs, &gsm_only, &priority,
                      &opens_ms);

    if (json_is_array(recipients)) {
        size_t i;
        json_t *r;
        json_array_foreach(recipients, i, r)
        {
            if (!json_is_string(r)) {
                add_error(errors, "recipients",
                          "Each recipient must be a string.");
                break;
            }
            ptrvec_push(&numbers, (void *)json_string_value(r));
        }
    } else if (json_is_object(recipients)) {
        const char *key;
        json_t *r;
        dflt = json_object_get(recipients, "default");
        json_object_foreach(recipients, key, r)
        {
            if (strcmp(key, "default") != 0)
                ptrvec_push(&numbers, (void *)key);
        }
    } else {
        add_error(errors, "recipients", "The recipients field is required.");
    }
    if (recipients != NULL && numbers.len == 0)
        add_error(errors, "recipients", "At least one recipient is required.");
    if (numbers.len > IP1_RECIPIENTS_MAX)
        add_error(errors, "recipients", "At most 10000 recipients per batch.");
    if (json_object_size(errors) > 0)
        goto invalid;
    if (!ip1_sender_registered(req->acct, sender)) {
        ip1_problem(req, 403, "The sender is not registered to the account",
                    NULL);
        goto out;
    }
    for (size_t i = 0; i < numbers.len; i++) {
        const char *num = numbers.items[i];
        char *text =
            json_is_object(recipients)
                ? ip1_template(body, json_object_get(recipients, num), dflt)
                : xstrdup(body);
        struct text_count tc;
        text_count(&tc, text, strlen(text), force_ucs);
        if (gsm_only && !tc.gsm) {
            add_error(errors, "body",
                      "The body holds characters outside GSM 03.38 while "
                      "datacoding is gsm.");
            free(text);
            goto invalid;
        }
        if (is_msisdn(num))
            total_segments += tc.segments;
        ptrvec_push(&bodies, text);
    }
    if (req_gate_send(req, total_segments))
        goto out;

    struct batch *b = xcalloc(1, sizeof(*b));
    char created[40];
    hex_id(b->id);
    b->acct = req->acct;
    b->created_ms = now_ms();
    iso_now(created, b->created_ms, true);
    json_t *windows = json_object_get(root, "deliveryWindows");
    b->doc = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:b, s:O, s:O?, s:O?,"
        " s:O, s:s}",
        "id", b->id, "sender", sender, "body", body, "owner", req->acct->owner,
        "direction", "MT", "type", flash ? "flash" : "sms", "datacoding",
        force_ucs  ? "ucs"
        : gsm_only ? "gsm"
                   : "ucs",
        "priority", priority, "templated", json_is_object(recipients),
        "deliveryWindows", windows ? windows : json_array(),
        "deliveryReportUrl", json_object_get(root, "deliveryReportUrl"),
        "reference", json_object_get(root, "reference"), "tags",
        json_object_get(root, "tags") ? json_object_get(root, "tags")
                                      : json_array(),
        "created", created);
    if (windows == NULL) /* the json_array() above was borrowed by O */
        json_decref(json_object_get(b->doc, "deliveryWindows"));
    if (json_object_get(root, "tags") == NULL)
        json_decref(json_object_get(b->doc, "tags"));
    const char *url =
        json_string_value(json_object_get(root, "deliveryReportUrl"));
    const char *ref = json_string_value(json_object_get(root, "reference"));
    for (size_t i = 0; i < numbers.len; i++) {
        const char *num = numbers.items[i];
        const char *text = bodies.items[i];
        struct text_count tc;
        text_count(&tc, text, strlen(text), force_ucs);
        struct msg *m =
            store_add(&standin->store, PROV_IP1, req->acct, num, sender, text);
        snprintf(m->group_id, sizeof(m->group_id), "%s", b->id);
        m->segments = tc.segments;
        m->ucs2 = force_ucs || !tc.gsm;
        m->flash = flash;
        m->priority = priority;
        m->callback_url = url ? xstrdup(url) : NULL;
        m->reference = ref ? xstrdup(ref) : NULL;
        ip1_set_final(m, MS_PENDING); /* 101 Accepted */
        if (!is_msisdn(num) || state_blocked(st, num) != NULL) {
            ip1_set_final(m, MS_REJECTED);
            provider_status_callback(m);
        } else if (opens_ms > now_ms()) {
            m->due_ms = opens_ms;
            ip1_set_final(m, MS_SCHEDULED);
            schedule_delivery(m);
        } else {
            schedule_delivery(m);
        }
        ptrvec_push(&b->msgs, m);
    }
    store_add_batch(&standin->store, b);
    ptrvec_push(&st->batches, b);
    char location[64];
    snprintf(location, sizeof(location), "/v2/batches/%s", b->id);
    resp_json(&req->resp, 201, ip1_batch_json(b, true));
    resp_header(&req->resp, "Location", location);
    goto out;

invalid:
    ip1_validation(req, errors);
    errors = NULL;
out:
    json_decref(errors);
    json_decref(root);
    ptrvec_free(&numbers);
    for (size_t i = 0; i < bodies.len; i++)
        free(bodies.items[i]);
    ptrvec_free(&bodies);
}

/* Answers a page of items (stolen array) with an RFC 5988 Link header. */
static void ip1_page(struct request *req, json_t *all, const char *path)
{
    const char *start_s = kvlist_get(&req->qargs, "start", false);
    const char *limit_s = kvlist_get(&req->qargs, "limit", false);
    const char *order = kvlist_get(&req->qargs, "order", false);
    long start = 0, limit = 50;
    json_t *errors = json_object();

    if (start_s != NULL && (parse_long(&start, start_s) != 0 || start < 0))
        add_error(errors, "start", "The start must be 0 or more.");
    if (limit_s != NULL &&
        (parse_long(&limit, limit_s) != 0 || limit < 1 || limit > 1000))
        add_error(errors, "limit", "The limit must be 1 to 1000.");
    if (order != NULL && strcasecmp(order, "ASC") != 0 &&
        strcasecmp(order, "DESC") != 0)
        add_error(errors, "order", "The order must be ASC or DESC.");
    if (json_object_size(errors) > 0) {
        json_decref(all);
        ip1_validation(req, errors);
        return;
    }
    json_decref(errors);
    size_t n = json_array_size(all);
    bool desc = order != NULL && strcasecmp(order, "DESC") == 0;
    json_t *page = json_array();
    for (long i = start; i < start + limit && (size_t)i < n; i++)
        json_array_append(
            page, json_array_get(all, desc ? n - 1 - (size_t)i : (size_t)i));
    json_decref(all);
    struct sbuf link = {0};
    long last = n > 0 ? (long)((n - 1) / (size_t)limit) * limit : 0;
    sbuf_printf(&link,
                "<%s?start=%ld&limit=%ld>; rel=\"self\", "
                "<%s?start=0&limit=%ld>; rel=\"first\", "
                "<%s?start=%ld&limit=%ld>; rel=\"last\"",
                path, start, limit, path, limit, path, last, limit);
    if (start + limit < (long)n)
        sbuf_printf(&link, ", <%s?start=%ld&limit=%ld>; rel=\"next\"", path,
                    start + limit, limit);
    if (start > 0)
        sbuf_printf(&link, ", <%s?start=%ld&limit=%ld>; rel=\"prev\"", path,
                    start > limit ? start - limit : 0, limit);
    resp_json(&req->resp, 200, page);
    resp_header(&req->resp, "Link", link.data);
    sbuf_free(&link);
}

static struct batch *ip1_find_batch(struct request *req, const char *id)
{
    struct batch *b = table_get(&standin->store.batches, id);

    if (b == NULL || b->acct != req->acct || b->doc == NULL) {
        ip1_problem(req, 404, "Not Found", NULL);
        return NULL;
    }
    return b;
}

static void ip1_batches(struct request *req, char **seg, size_t n)
{
    struct acct_state *st = acct_state(req->acct);
    bool get = strcmp(req->method, "GET") == 0;

    if (n == 2 && strcmp(req->method, "POST") == 0) {
        ip1_create_batch(req);
        return;
    }
    if (n == 2 && get) {
        json_t *all = json_array();
        for (size_t i = 0; i < st->batches.len; i++)
            json_array_append_new(all,
                                  ip1_batch_json(st->batches.items[i], false));
        ip1_page(req, all, "/v2/batches");
        return;
    }
    struct batch *b = n >= 3 ? ip1_find_batch(req, seg[2]) : NULL;
    if (b == NULL)
        return;
    if (n == 3 && get) {
        resp_json(&req->resp, 200, ip1_batch_json(b, true));
    } else if (n == 3 && strcmp(req->method, "DELETE") == 0) {
        size_t cancelled = 0;
        for (size_t i = 0; i < b->msgs.len; i++) {
            struct msg *m = b->msgs.items[i];
            if (m->state != MS_SCHEDULED)
                continue;
            ip1_set_final(m, MS_CANCELLED);
            m->modified_ms = now_ms();
            provider_status_callback(m);
            cancelled++;
        }
        if (cancelled == 0) {
            ip1_problem(req, 400, "Only a batch not yet sent can be deleted",
                        NULL);
            return;
        }
        b->cancelled = true;
        resp_json(&req->resp, 200, ip1_batch_json(b, true));
    } else if (n == 4 && get && strcmp(seg[3], "messages") == 0) {
        json_t *all = json_array();
        for (size_t i = 0; i < b->msgs.len; i++)
            json_array_append_new(all, ip1_msg_json(b->msgs.items[i], false));
        char path[96];
        snprintf(path, sizeof(path), "/v2/batches/%s/messages", b->id);
        ip1_page(req, all, path);
    } else if (n == 5 && get && strcmp(seg[3], "messages") == 0) {
        struct msg *m = store_find(&standin->store, PROV_IP1, seg[4]);
        if (m == NULL || strcmp(m->group_id, b->id) != 0) {
            ip1_problem(req, 404, "Not Found", NULL);
            return;
        }
        resp_json(&req->resp, 200, ip1_msg_json(m, true));
    } else {
        ip1_problem(req, 404, "Not Found", NULL);
    }
}

/* ------------------------------------------------------------------------
 * Blacklist and senders
 * ---------------------------------------------------------------------- */

static json_t *ip1_listed_json(const struct listed *l)
{
    char created[40];

    iso_now(created, l->created_ms, false);
    return json_pack("{s:s, s:s}", "msisdn", l->msisdn, "created", created);
}

static void ip1_blacklist(struct request *req, char **seg, size_t n)
{
    struct acct_state *st = acct_state(req->acct);
    const char *m = req->method;
    const char *msisdn = n == 3 ? seg[2] : NULL;

    if (n == 2 && strcmp(m, "GET") == 0) {
        json_t *all = json_array();
        for (size_t i = 0; i < st->blocked.len; i++) {
            struct listed *l = st->blocked.items[i];
            if (!l->deleted)
                json_array_append_new(all, ip1_listed_json(l));
        }
        ip1_page(req, all, "/v2/blacklist");
        return;
    }
    json_t *root = NULL;
    if (n == 2 && strcmp(m, "POST") == 0) {
        root = ip1_body(req);
        if (root == NULL)
            return;
        msisdn = json_string_value(json_object_get(root, "msisdn"));
        if (msisdn == NULL)
            msisdn = json_string_value(json_object_get(root, "phone"));
        if (msisdn == NULL)
            msisdn = json_string_value(json_object_get(root, "Phone"));
    } else if (n != 3) {
        ip1_problem(req, 404, "Not Found", NULL);
        return;
    }
    if (msisdn == NULL || !is_msisdn(msisdn)) {
        json_t *errors = json_object();
        add_error(errors, "msisdn",
                  "The msisdn must be 8 to 15 digits with country code.");
        ip1_validation(req, errors);
        json_decref(root);
        return;
    }
    struct listed *l = state_blocked(st, msisdn);
    bool add = strcmp(m, "PUT") == 0 || strcmp(m, "POST") == 0;
    if (add) {
        bool fresh = l == NULL;
        if (fresh) {
            l = xcalloc(1, sizeof(*l));
            snprintf(l->msisdn, sizeof(l->msisdn), "%s", msisdn);
            ptrvec_push(&st->blocked, l);
        }
        l->created_ms = now_ms();
        resp_json(&req->resp, fresh && strcmp(m, "POST") == 0 ? 201 : 200,
                  ip1_listed_json(l));
    } else if (l == NULL) {
        ip1_problem(req, 404, "Not Found", NULL);
    } else if (strcmp(m, "GET") == 0) {
        resp_json(&req->resp, 200, ip1_listed_json(l));
    } else if (strcmp(m, "DELETE") == 0) {
        l->deleted = true;
        resp_json(&req->resp, 200, ip1_listed_json(l));
    } else {
        ip1_problem(req, 404, "Not Found", NULL);
    }
    json_decref(root);
}

static void ip1_senders(struct request *req, char **seg, size_t n)
{
    struct account *a = req->acct;
    char created[40];
    const char *m = req->method;

    iso_now(created, standin->started_ms, false);
    if (n == 3 && strcmp(m, "GET") == 0) {
        json_t *all = json_array();
        for (size_t i = 0; i < a->senders.len; i++)
            json_array_append_new(all,
                                  json_pack("{s:s, s:s}", "sender",
                                            (const char *)a->senders.items[i],
                                            "created", created));
        resp_json(&req->resp, 200, all);
        return;
    }
    if (n != 4) {
        ip1_problem(req, 404, "Not Found", NULL);
        return;
    }
    size_t i;
    for (i = 0; i < a->senders.len; i++) {
        if (strcmp(a->senders.items[i], seg[3]) == 0)
            break;
    }
    if (strcmp(m, "PUT") == 0) {
        if (!ip1_sender_ok(seg[3])) {
            json_t *errors = json_object();
            add_error(errors, "sender",
                      "The sender must be 3-11 letters and digits or a "
                      "number of 3-15 digits.");
            ip1_validation(req, errors);
            return;
        }
        if (i == a->senders.len)
            ptrvec_push(&a->senders, xstrdup(seg[3]));
    } else if (i == a->senders.len) {
        ip1_problem(req, 404, "Not Found", NULL);
        return;
    } else if (strcmp(m, "DELETE") == 0) {
        free(a->senders.items[i]);
        a->senders.items[i] = a->senders.items[--a->senders.len];
    } else if (strcmp(m, "GET") != 0) {
        ip1_problem(req, 404, "Not Found", NULL);
        return;
    }
    resp_json(&req->resp, 200,
              json_pack("{s:s, s:s}", "sender", seg[3], "created", created));
}

/* ------------------------------------------------------------------------
 * Contacts and labels
 * ---------------------------------------------------------------------- */

/* Validates a contact document; returns its phone number as MSISDN digits
 * in out, or -1 (errors filled under prefix). */
static int ip1_contact_check(const json_t *c, json_t *errors, size_t index,
                             char out[32])
{
    char field[64];
    json_t *props = json_object_get(c, "properties");
    const char *phone =
        json_string_value(json_object_get(props, "phoneNumber"));

    snprintf(field, sizeof(field), "[%zu].properties.phoneNumber", index);
    if (!json_is_object(c) || !json_is_object(props)) {
        snprintf(field, sizeof(field), "[%zu].properties", index);
        add_error(errors, field, "The properties object is required.");
        return -1;
    }
    if (phone == NULL || phone[0] != '+' || !is_msisdn(phone + 1)) {
        add_error(errors, field,
                  "The phoneNumber must be E.164 with a leading +.");
        return -1;
    }
    json_t *labels = json_object_get(c, "labels");
    if (labels != NULL && !json_is_array(labels)) {
        snprintf(field, sizeof(field), "[%zu].labels", index);
        add_error(errors, field, "The labels must be an array of strings.");
        return -1;
    }
    snprintf(out, 32, "%s", phone + 1);
    return 0;
}

static struct contact *ip1_contact_by_id(struct acct_state *st, const char *id)
{
    for (size_t i = 0; i < st->contacts.len; i++) {
        struct contact *c = st->contacts.items[i];
        if (!c->deleted && strcmp(c->id, id) == 0)
            return c;
    }
    return NULL;
}

static void ip1_contact_set(struct request *req, struct contact *c,
                            const json_t *doc, const char *msisdn)
{
    json_t *labels = json_object_get(doc, "labels");

    json_decref(c->doc);
    c->doc = json_pack("{s:s, s:s, s:O, s:O}", "id", c->id, "ownerId",
                       req->acct->owner, "properties",
                       json_object_get(doc, "properties"), "labels",
                       labels ? labels : json_array());
    if (labels == NULL)
        json_decref(json_object_get(c->doc, "labels"));
    snprintf(c->msisdn, sizeof(c->msisdn), "%s", msisdn);
}

static bool ip1_contact_matches(const struct request *req,
                                const struct contact *c)
{
    const char *label = kvlist_get(&req->qargs, "labels", false);
    const char *phone =
        kvlist_get(&req->qargs, "properties[phoneNumber]", false);

    if (phone != NULL &&
        strcmp(phone,
               json_string_value(json_object_get(
                   json_object_get(c->doc, "properties"), "phoneNumber"))) != 0)
        return false;
    if (label != NULL) {
        size_t i;
        json_t *l;
        bool found = false;
        json_array_foreach(json_object_get(c->doc, "labels"), i, l)
        {
            found = found || strcmp(json_string_value(l), label) == 0;
        }
        return found;
    }
    return true;
}

static void ip1_contacts_post(struct request *req)
{
    struct acct_state *st = acct_state(req->acct);
    json_t *root = ip1_body(req);
    json_t *errors = json_object();
    char(*numbers)[32] = NULL;
    size_t i;
    json_t *c;

    if (root == NULL)
        goto out;
    if (!json_is_array(root)) {
        add_error(errors, "$", "The body must be an array of contacts.");
        ip1_validation(req, errors);
        errors = NULL;
        goto out;
    }
    numbers = xcalloc(json_array_size(root) + 1, sizeof(*numbers));
    json_array_foreach(root, i, c) ip1_contact_check(c, errors, i, numbers[i]);
    if (json_object_size(errors) > 0) {
        ip1_validation(req, errors);
        errors = NULL;
        goto out;
    }
    json_t *created = json_array();
    json_array_foreach(root, i, c)
    {
        struct contact *k = state_contact_by_msisdn(st, numbers[i]);
        if (k == NULL) {
            k = xcalloc(1, sizeof(*k));
            hex_id(k->id);
            ptrvec_push(&st->contacts, k);
        }
        ip1_contact_set(req, k, c, numbers[i]);
        json_array_append(created, k->doc);
    }
    /* Asynchronous import by default (202, as iP.1's own plugin expects);
     * ?sync makes it 201. */
    resp_json(&req->resp,
              kvlist_get(&req->qargs, "sync", false) != NULL ? 201 : 202,
              created);

out:
    free(numbers);
    json_decref(errors);
    json_decref(root);
}

/* GET /v2/contacts/meta: how many contacts hold each label and each
 * property, from the address book as written. */
static void ip1_contacts_meta(struct request *req, struct acct_state *st)
{
    json_t *labels = json_object(), *props = json_object();
    size_t total = 0;

    for (size_t i = 0; i < st->contacts.len; i++) {
        struct contact *c = st->contacts.items[i];
        size_t k;
        json_t *l;
        const char *key;
        json_t *v;
        if (c->deleted)
            continue;
        total++;
        json_array_foreach(json_object_get(c->doc, "labels"), k, l)
        {
            const char *name = json_string_value(l);
            if (name != NULL)
                json_object_set_new(
                    labels, name,
                    json_integer(
                        json_integer_value(json_object_get(labels, name)) + 1));
        }
        json_object_foreach(json_object_get(c->doc, "properties"), key, v)
        {
            (void)v;
            json_object_set_new(
                props, key,
                json_integer(json_integer_value(json_object_get(props, key)) +
                             1));
        }
    }
    json_t *out = json_pack("{s:I, s:[], s:[]}", "totalCount",
                            (json_int_t)total, "labels", "properties");
    const char *key;
    json_t *v;
    json_object_foreach(labels, key, v) json_array_append_new(
        json_object_get(out, "labels"),
        json_pack("{s:s, s:O}", "labelName", key, "usageCount", v));
    json_object_foreach(props, key, v) json_array_append_new(
        json_object_get(out, "properties"),
        json_pack("{s:s, s:O}", "propertyName", key, "usageCount", v));
    json_decref(labels);
    json_decref(props);
    resp_json(&req->resp, 200, out);
}

static void ip1_contacts(struct request *req, char **seg, size_t n)
{
    struct acct_state *st = acct_state(req->acct);
    const char *m = req->method;

    if (n == 2 && strcmp(m, "POST") == 0) {
        ip1_contacts_post(req);
        return;
    }
    if (n == 2 && (strcmp(m, "GET") == 0 || strcmp(m, "DELETE") == 0)) {
        bool del = strcmp(m, "DELETE") == 0;
        json_t *all = json_array();
        for (size_t i = 0; i < st->contacts.len; i++) {
            struct contact *c = st->contacts.items[i];
            if (c->deleted || !ip1_contact_matches(req, c))
                continue;
            json_array_append(all, c->doc);
            c->deleted = c->deleted || del;
        }
        if (del)
            resp_json(&req->resp, 200, all);
        else
            ip1_page(req, all, "/v2/contacts");
        return;
    }
    if (n == 3 && strcmp(seg[2], "meta") == 0 && strcmp(m, "GET") == 0) {
        ip1_contacts_meta(req, st);
        return;
    }
    struct contact *c = n == 3 ? ip1_contact_by_id(st, seg[2]) : NULL;
    if (c == NULL) {
        ip1_problem(req, 404, "Not Found", NULL);
        return;
    }
    if (strcmp(m, "GET") == 0) {
        resp_json(&req->resp, 200, json_incref(c->doc));
    } else if (strcmp(m, "DELETE") == 0) {
        c->deleted = true;
        resp_json(&req->resp, 200, json_incref(c->doc));
    } else if (strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0) {
        json_t *root = ip1_body(req);
        json_t *errors = json_object();
        char msisdn[32];
        if (root == NULL) {
            json_decref(errors);
            return;
        }
        if (strcmp(m, "PATCH") == 0 && json_is_object(root)) {
            json_t *merged = json_deep_copy(c->doc);
            json_t *props = json_object_get(root, "properties");
            if (json_is_object(props))
                json_object_update(json_object_get(merged, "properties"),
                                   props);
            if (json_object_get(root, "labels") != NULL)
                json_object_set(merged, "labels",
                                json_object_get(root, "labels"));
            json_decref(root);
            root = merged;
        }
        if (ip1_contact_check(root, errors, 0, msisdn) != 0) {
            ip1_validation(req, errors);
            json_decref(root);
            return;
        }
        json_decref(errors);
        ip1_contact_set(req, c, root, msisdn);
        json_decref(root);
        resp_json(&req->resp, 200, json_incref(c->doc));
    } else {
        ip1_problem(req, 404, "Not Found", NULL);
    }
}

static void ip1_labels(struct request *req, char **seg, size_t n)
{
    struct acct_state *st = acct_state(req->acct);
    const char *label = n >= 3 ? seg[2] : NULL;
    json_t *ids = NULL;

    if (n == 4 && strcmp(seg[3], "contacts") == 0 &&
        strcmp(req->method, "POST") == 0) {
        ids = ip1_body(req);
        if (ids == NULL)
            return;
        if (!json_is_array(ids)) {
            json_t *errors = json_object();
            add_error(errors, "$", "The body must be an array of contact ids.");
            ip1_validation(req, errors);
            json_decref(ids);
            return;
        }
    } else if (!(n == 3 && strcmp(req->method, "DELETE") == 0)) {
        ip1_problem(req, 404, "Not Found", NULL);
        return;
    }
    long count = 0;
    for (size_t i = 0; i < st->contacts.len; i++) {
        struct contact *c = st->contacts.items[i];
        json_t *labels = json_object_get(c->doc, "labels");
        size_t k;
        json_t *l;
        bool wanted = false;
        if (c->deleted)
            continue;
        for (k = 0; ids != NULL && k < json_array_size(ids); k++)
            wanted =
                wanted ||
                (json_is_string(json_array_get(ids, k)) &&
                 strcmp(json_string_value(json_array_get(ids, k)), c->id) == 0);
        json_array_foreach(labels, k, l)
        {
            if (strcmp(json_string_value(l), label) == 0)
                break;
        }
        bool has = k < json_array_size(labels);
        if (ids == NULL && has)
            json_array_remove(labels, k);
        if (ids != NULL && wanted && !has)
            json_array_append_new(labels, json_string(label));
        if (ids != NULL && (wanted || has))
            count++;
    }
    json_decref(ids);
    resp_json(
        &req->resp, 200,
        json_pack("{s:s, s:i}", "labelName", label, "usageCount", (int)count));
}

/* ------------------------------------------------------------------------
 * Dispatch
 * ---------------------------------------------------------------------- */

void ip1_handle(struct request *req)
{
    char *copy = xstrdup(req->sub);
    char *seg[8];
    size_t n = 0;

    for (char *p = copy; *p != '\0' && n < 8;) {
        while (*p == '/')
            *p++ = '\0';
        if (*p == '\0')
            break;
        seg[n++] = p;
        while (*p != '\0' && *p != '/')
            p++;
    }
    if (req->acct == NULL) {
        ip1_problem(req, 401, "Unauthorized", NULL);
        resp_header(&req->resp, "WWW-Authenticate", "Bearer");
    } else if (n >= 2 && strcmp(seg[1], "batches") == 0) {
        ip1_batches(req, seg, n);
    } else if (n >= 2 && strcmp(seg[1], "blacklist") == 0) {
        ip1_blacklist(req, seg, n);
    } else if (n >= 3 && strcmp(seg[1], "me") == 0 &&
               strcmp(seg[2], "senders") == 0) {
        ip1_senders(req, seg, n);
    } else if (n >= 2 && strcmp(seg[1], "contacts") == 0) {
        ip1_contacts(req, seg, n);
    } else if (n >= 3 && strcmp(seg[1], "labels") == 0) {
        ip1_labels(req, seg, n);
    } else {
        ip1_problem(req, 404, "Not Found", NULL);
    }
    free(copy);
}
