/* tests/standin/jojka.c - Jojka REST API stand-in (/websms/api/...).
 *
 * Every call is a POST with a form body (url-encoded or multipart) carrying
 * API_key; answers are JSON. Errors are HTTP 200 with {"error": ["..."]}
 * (JSDK's reading of the API), an unknown or missing key included. State:
 * messages, campaigns, contacts and groups, the block list and replies
 * injected through /_standin/inbound. */
#include "standin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JOJKA_MAX_RECIPIENTS  1000
#define JOJKA_REPLY_WINDOW_MS (96LL * 3600 * 1000)

static void jojka_error(struct request *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void jojka_error(struct request *req, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    resp_json(&req->resp, 200, json_pack("{s:[s]}", "error", msg));
    standin->stats.provider_errors[PROV_JOJKA]++;
}

void jojka_error_answer(struct request *req, bool throttle)
{
    resp_json(&req->resp, 200,
              json_pack("{s:[s]}", "error",
                        throttle ? "Rate limit exceeded"
                                 : "Internal error, try again later"));
}

void jojka_set_final(struct msg *m, enum msg_state s)
{
    const char *status = "DELIVERED";

    m->state = s;
    if (s == MS_FAILED) {
        status = "ERROR";
    } else if (s == MS_UNKNOWN) {
        status = "SENT"; /* never gets a report */
        m->state = MS_PENDING;
    } else if (s == MS_CANCELLED) {
        status = "CANCELLED";
    } else if (s == MS_PENDING) {
        status = "SENT";
    }
    snprintf(m->status, sizeof(m->status), "%s", status);
}

void jojka_identify(struct request *req)
{
    if (req_form(req) != 0)
        return;
    req->acct =
        accounts_by_cred(&standin->accts, PROV_JOJKA,
                         kvlist_get(&req->form, "API_key", false), NULL);
}

/* Returns a form value, or NULL when absent or empty. */
static const char *jp(struct request *req, const char *name)
{
    const char *v = kvlist_get(&req->form, name, false);

    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* Copies a form msisdn, trimmed (the documents' own examples carry a space
 * after "msisdn="). Returns 0, or -1 having answered the error. */
static int jojka_msisdn(struct request *req, const char *name, char out[32])
{
    const char *v = jp(req, name);

    if (v == NULL) {
        jojka_error(req, "Missing parameter: %s", name);
        return -1;
    }
    snprintf(out, 32, "%s", v);
    trim(out);
    if (!is_msisdn(out)) {
        jojka_error(req, "Invalid msisdn: %s", out);
        return -1;
    }
    return 0;
}

/* from: pre-ordered or free text a-z A-Z 0-9 - _ (space and '.' too), at
 * most 11, or a number of at most 15 digits. */
static bool jojka_sender_ok(const char *s)
{
    size_t n = strlen(s);

    if (n >= 1 && n <= 15 && only_chars(s, "0123456789"))
        return true;
    return n >= 1 && n <= 11 &&
           only_chars(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXY"
                         "Z0123456789-_ .");
}

/* Checks msg and from. Returns 0, or -1 having answered the error. */
static int jojka_text(struct request *req, const char **msg,
                      struct text_count *tc)
{
    const char *from = jp(req, "from");

    *msg = jp(req, "msg");
    if (*msg == NULL) {
        jojka_error(req, "Missing parameter: msg");
        return -1;
    }
    if (from != NULL && !jojka_sender_ok(from)) {
        jojka_error(req, "Invalid sender: %s", from);
        return -1;
    }
    text_count(tc, *msg, strlen(*msg), false);
    return 0;
}

static struct msg *jojka_new_msg(struct request *req, const char *to,
                                 const char *msg, const struct text_count *tc,
                                 int64_t due_ms)
{
    struct msg *m = store_add(&standin->store, PROV_JOJKA, req->acct, to,
                              jp(req, "from"), msg);

    m->segments = tc->segments;
    m->ucs2 = !tc->gsm;
    if (state_blocked(acct_state(req->acct), to) != NULL) {
        jojka_set_final(m, MS_FAILED);
        return m;
    }
    if (due_ms > now_ms()) {
        m->due_ms = due_ms;
        m->state = MS_SCHEDULED;
        snprintf(m->status, sizeof(m->status), "SENDING");
    } else {
        jojka_set_final(m, MS_PENDING);
    }
    schedule_delivery(m);
    return m;
}

static void jojka_send(struct request *req)
{
    char to[32];
    const char *msg;
    struct text_count tc;

    if (jojka_msisdn(req, "to", to) != 0 || jojka_text(req, &msg, &tc) != 0)
        return;
    if (req_gate_send(req, tc.segments))
        return;
    struct msg *m = jojka_new_msg(req, to, msg, &tc, 0);
    resp_json(&req->resp, 200, json_pack("{s:s}", "message_id", m->id));
}

/* Adds each part of a ';'-separated list (trimmed, non-empty) to out. */
static void jojka_split(struct ptrvec *out, const char *list)
{
    const char *p = list;

    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, ';');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char *part = trim(xstrndup(p, n));
        if (part[0] != '\0')
            ptrvec_push(out, part);
        else
            free(part);
        p = end ? end + 1 : NULL;
    }
}

static void free_strings(struct ptrvec *v)
{
    for (size_t i = 0; i < v->len; i++)
        free(v->items[i]);
    ptrvec_free(v);
}

static bool has_string(const struct ptrvec *v, const char *s)
{
    for (size_t i = 0; i < v->len; i++) {
        if (strcmp(v->items[i], s) == 0)
            return true;
    }
    return false;
}

static struct batch *jojka_campaign(struct request *req)
{
    const char *id = jp(req, "campaign_id");
    struct batch *b = id ? table_get(&standin->store.batches, id) : NULL;

    if (id == NULL) {
        jojka_error(req, "Missing parameter: campaign_id");
        return NULL;
    }
    if (b == NULL || b->acct != req->acct) {
        jojka_error(req, "Unknown campaign_id: %s", id);
        return NULL;
    }
    return b;
}

static void jojka_add_campaign(struct request *req)
{
    struct ptrvec numbers = {0}, groups = {0}, to = {0};
    struct acct_state *st = acct_state(req->acct);
    const char *msg;
    const char *sched = jp(req, "scheduled");
    struct text_count tc;
    int64_t due = 0;

    jojka_split(&numbers, jp(req, "to_msisdn"));
    jojka_split(&groups, jp(req, "to_group"));
    if (numbers.len == 0 && groups.len == 0) {
        jojka_error(req, "Missing parameter: to_msisdn or to_group");
        goto out;
    }
    if (numbers.len > JOJKA_MAX_RECIPIENTS) {
        jojka_error(req, "Too many recipients in to_msisdn: %zu (max %d)",
                    numbers.len, JOJKA_MAX_RECIPIENTS);
        goto out;
    }
    if (jojka_text(req, &msg, &tc) != 0)
        goto out;
    if (sched != NULL) {
        int f[6];
        if (parse_datetime(f, sched, ' ') != 0) {
            jojka_error(req, "Invalid scheduled: %s (YYYY-MM-DD hh:mm:ss)",
                        sched);
            goto out;
        }
        due = civil_to_unix(f[0], f[1], f[2], f[3], f[4], f[5]) * 1000;
    }
    for (size_t i = 0; i < numbers.len; i++) {
        if (!is_msisdn(numbers.items[i])) {
            jojka_error(req, "Invalid msisdn: %s",
                        (const char *)numbers.items[i]);
            goto out;
        }
        if (!has_string(&to, numbers.items[i]))
            ptrvec_push(&to, xstrdup(numbers.items[i]));
    }
    for (size_t g = 0; g < groups.len; g++) {
        const char *name = groups.items[g];
        bool all = strcmp(name, "all") == 0;
        if (!all && state_group(st, name, false) == NULL) {
            jojka_error(req, "Unknown group: %s", name);
            goto out;
        }
        for (size_t i = 0; i < st->contacts.len; i++) {
            struct contact *c = st->contacts.items[i];
            if (c->deleted || (!all && !contact_in_group(c, name)) ||
                has_string(&to, c->msisdn))
                continue;
            ptrvec_push(&to, xstrdup(c->msisdn));
        }
    }
    if (to.len == 0) {
        jojka_error(req, "No recipients");
        goto out;
    }
    if (req_gate_send(req, (unsigned)(to.len * tc.segments)))
        goto out;

    struct batch *b = xcalloc(1, sizeof(*b));
    snprintf(b->id, sizeof(b->id), "%ld", standin->store.next_campaign++);
    b->acct = req->acct;
    b->name = xstrdup(jp(req, "name") ? jp(req, "name") : "");
    b->created_ms = now_ms();
    for (size_t i = 0; i < to.len; i++) {
        struct msg *m = jojka_new_msg(req, to.items[i], msg, &tc, due);
        snprintf(m->group_id, sizeof(m->group_id), "%s", b->id);
        ptrvec_push(&b->msgs, m);
    }
    store_add_batch(&standin->store, b);
    ptrvec_push(&st->batches, b);
    resp_json(&req->resp, 200, json_pack("{s:s}", "campaign_id", b->id));

out:
    free_strings(&numbers);
    free_strings(&groups);
    free_strings(&to);
}

static void jojka_campaign_ids(struct request *req)
{
    struct batch *b = jojka_campaign(req);

    if (b == NULL)
        return;
    json_t *arr = json_array();
    for (size_t i = 0; i < b->msgs.len; i++)
        json_array_append_new(
            arr, json_string(((struct msg *)b->msgs.items[i])->id));
    resp_json(&req->resp, 200, arr);
}

static void jojka_campaign_status(struct request *req)
{
    struct batch *b = jojka_campaign(req);

    if (b == NULL)
        return;
    json_t *arr = json_array();
    for (size_t i = 0; i < b->msgs.len; i++) {
        struct msg *m = b->msgs.items[i];
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "receiver",
                                             m->recipient, "message_id", m->id,
                                             "status", m->status));
    }
    resp_json(&req->resp, 200, arr);
}

static void jojka_cancel_campaign(struct request *req)
{
    struct batch *b = jojka_campaign(req);
    size_t cancelled = 0;

    if (b == NULL)
        return;
    if (b->cancelled) {
        jojka_error(req, "Campaign already cancelled: %s", b->id);
        return;
    }
    for (size_t i = 0; i < b->msgs.len; i++) {
        struct msg *m = b->msgs.items[i];
        if (m->state == MS_SCHEDULED) {
            jojka_set_final(m, MS_CANCELLED);
            cancelled++;
        }
    }
    if (cancelled == 0) {
        jojka_error(req, "Campaign already sent: %s", b->id);
        return;
    }
    b->cancelled = true;
    resp_json(&req->resp, 200, json_pack("{s:s}", "successes", "done"));
}

static void jojka_msg_status(struct request *req)
{
    const char *id = jp(req, "msg_id");
    struct msg *m = id ? store_find(&standin->store, PROV_JOJKA, id) : NULL;

    if (id == NULL) {
        jojka_error(req, "Missing parameter: msg_id");
        return;
    }
    if (m == NULL || m->acct != req->acct) {
        jojka_error(req, "Unknown msg_id: %s", id);
        return;
    }
    resp_json(&req->resp, 200, json_pack("[s]", m->status));
}

static void jojka_fetch_replies(struct request *req)
{
    struct acct_state *st = acct_state(req->acct);
    const char *from = jp(req, "from_msisdn");
    const char *since = jp(req, "since_time");
    int64_t floor_s = (now_ms() - JOJKA_REPLY_WINDOW_MS) / 1000;

    if (since != NULL) {
        int f[6];
        if (parse_datetime(f, since, ' ') != 0) {
            jojka_error(req, "Invalid since_time: %s (YYYY-MM-DD hh:mm:ss)",
                        since);
            return;
        }
        int64_t s = civil_to_unix(f[0], f[1], f[2], f[3], f[4], f[5]) + 1;
        if (s > floor_s)
            floor_s = s;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < st->replies.len; i++) {
        struct reply *r = st->replies.items[i];
        char at[32];
        if (r->at_ms / 1000 < floor_s ||
            (from != NULL && strcmp(from, r->from) != 0))
            continue;
        format_utc(at, sizeof(at), r->at_ms, "%Y-%m-%d %H:%M:%S", false, "");
        json_array_append_new(arr,
                              json_pack("{s:s, s:s, s:s}", "inserted", at,
                                        "sender", r->from, "message", r->text));
    }
    resp_json(&req->resp, 200, arr);
}

static struct group *jojka_group(struct acct_state *st, const char *name)
{
    struct group *g = state_group(st, name, false);

    if (g == NULL) {
        g = xcalloc(1, sizeof(*g));
        snprintf(g->id, sizeof(g->id), "%ld", standin->store.next_small++);
        g->name = xstrdup(name);
        ptrvec_push(&st->groups, g);
    }
    return g;
}

/* Creates or updates a contact; groups is a ';'-separated list or NULL. */
static void jojka_upsert(struct acct_state *st, const char *msisdn,
                         const char *name, struct ptrvec *groups)
{
    struct contact *c = state_contact_by_msisdn(st, msisdn);

    if (c == NULL) {
        c = xcalloc(1, sizeof(*c));
        snprintf(c->id, sizeof(c->id), "%ld", standin->store.next_small++);
        snprintf(c->msisdn, sizeof(c->msisdn), "%s", msisdn);
        ptrvec_push(&st->contacts, c);
    }
    free(c->first);
    c->first = xstrdup(name);
    for (size_t i = 0; groups != NULL && i < groups->len; i++) {
        jojka_group(st, groups->items[i]);
        if (!contact_in_group(c, groups->items[i]))
            ptrvec_push(&c->groups, xstrdup(groups->items[i]));
    }
}

static void jojka_add_contact(struct request *req)
{
    char msisdn[32];
    const char *name = jp(req, "name");
    struct ptrvec groups = {0};

    if (jojka_msisdn(req, "msisdn", msisdn) != 0)
        return;
    if (name == NULL) {
        jojka_error(req, "Missing parameter: name");
        return;
    }
    jojka_split(&groups, jp(req, "group"));
    jojka_upsert(acct_state(req->acct), msisdn, name, &groups);
    free_strings(&groups);
    resp_json(&req->resp, 200, json_pack("{s:s}", "msisdn", msisdn));
}

/* Finds the contact named by the msisdn parameter, or answers the error. */
static struct contact *jojka_contact(struct request *req, char msisdn[32])
{
    if (jojka_msisdn(req, "msisdn", msisdn) != 0)
        return NULL;
    struct contact *c = state_contact_by_msisdn(acct_state(req->acct), msisdn);
    if (c == NULL)
        jojka_error(req, "Unknown contact: %s", msisdn);
    return c;
}

static void jojka_contact_group(struct request *req, bool add)
{
    char msisdn[32];
    struct contact *c = jojka_contact(req, msisdn);
    const char *group = jp(req, "group");

    if (c == NULL)
        return;
    if (group == NULL) {
        jojka_error(req, "Missing parameter: group");
        return;
    }
    if (add) {
        jojka_group(acct_state(req->acct), group);
        if (!contact_in_group(c, group))
            ptrvec_push(&c->groups, xstrdup(group));
    } else {
        for (size_t i = 0; i < c->groups.len; i++) {
            if (strcmp(c->groups.items[i], group) == 0) {
                free(c->groups.items[i]);
                c->groups.items[i] = c->groups.items[--c->groups.len];
                break;
            }
        }
    }
    resp_json(&req->resp, 200,
              json_pack("{s:s, s:s}", "msisdn", msisdn, "group", group));
}

static void jojka_rm_contact(struct request *req)
{
    char msisdn[32];
    struct contact *c = jojka_contact(req, msisdn);

    if (c == NULL)
        return;
    c->deleted = true;
    resp_json(&req->resp, 200, json_pack("{s:s}", "successes", "done"));
}

static void jojka_groups_of(struct request *req)
{
    char msisdn[32];
    struct contact *c = jojka_contact(req, msisdn);

    if (c == NULL)
        return;
    json_t *arr = json_array();
    for (size_t i = 0; i < c->groups.len; i++) {
        struct group *g =
            state_group(acct_state(req->acct), c->groups.items[i], false);
        long id;
        if (g != NULL && parse_long(&id, g->id) == 0)
            json_array_append_new(arr, json_integer(id));
    }
    resp_json(&req->resp, 200, json_pack("{s:o}", "groups", arr));
}

static void jojka_import(struct request *req)
{
    const char *list = jp(req, "contacts_list");
    struct acct_state *st = acct_state(req->acct);
    size_t line_no = 0;

    if (list == NULL) {
        jojka_error(req, jp(req, "contacts_list_url")
                             ? "contacts_list_url cannot be fetched here; "
                               "send contacts_list"
                             : "Missing parameter: contacts_list or "
                               "contacts_list_url");
        return;
    }
    /* Validate every line before storing any. */
    for (int pass = 0; pass < 2; pass++) {
        const char *p = list;
        line_no = 0;
        while (*p != '\0') {
            const char *end = strchr(p, '\n');
            size_t n = end ? (size_t)(end - p) : strlen(p);
            char *line = trim(xstrndup(p, n));
            struct ptrvec fields = {0};
            line_no++;
            for (char *c = line; *c != '\0'; c++) {
                if (*c == ',')
                    *c = ';';
            }
            jojka_split(&fields, line);
            free(line);
            p = end ? end + 1 : p + n;
            if (fields.len == 0) {
                free_strings(&fields);
                continue;
            }
            if (!is_msisdn(fields.items[0])) {
                jojka_error(req, "Invalid msisdn on line %zu: %s", line_no,
                            (const char *)fields.items[0]);
                free_strings(&fields);
                return;
            }
            if (pass == 1) {
                struct ptrvec groups = {0};
                for (size_t i = 2; i < fields.len; i++)
                    ptrvec_push(&groups, fields.items[i]);
                jojka_upsert(st, fields.items[0],
                             fields.len > 1 ? fields.items[1] : "", &groups);
                ptrvec_free(&groups);
            }
            free_strings(&fields);
        }
    }
    resp_json(&req->resp, 200, json_pack("{s:s}", "successes", "done"));
}

static void jojka_export(struct request *req)
{
    const char *max_s = jp(req, "max");
    const char *off_s = jp(req, "offset");
    long max = 100, offset = 0;
    struct acct_state *st = acct_state(req->acct);

    if ((max_s != NULL &&
         (parse_long(&max, max_s) != 0 || max < 1 || max > 10000)) ||
        (off_s != NULL && (parse_long(&offset, off_s) != 0 || offset < 0))) {
        jojka_error(req, "Invalid max or offset (max 1..10000, offset >= 0)");
        return;
    }
    json_t *arr = json_array();
    long seen = 0;
    for (size_t i = 0;
         i < st->contacts.len && json_array_size(arr) < (size_t)max; i++) {
        struct contact *c = st->contacts.items[i];
        if (c->deleted || seen++ < offset)
            continue;
        json_t *groups = json_array();
        for (size_t g = 0; g < c->groups.len; g++)
            json_array_append_new(groups, json_string(c->groups.items[g]));
        json_array_append_new(
            arr, json_pack("{s:s, s:s, s:o}", "msisdn", c->msisdn, "name",
                           c->first ? c->first : "", "groups", groups));
    }
    resp_json(&req->resp, 200, json_pack("{s:o}", "export", arr));
}

static void jojka_blocklist(struct request *req, int op)
{
    char msisdn[32];
    struct acct_state *st = acct_state(req->acct);

    if (jojka_msisdn(req, "msisdn", msisdn) != 0)
        return;
    struct listed *l = state_blocked(st, msisdn);
    if (op == 0 && l == NULL) {
        l = xcalloc(1, sizeof(*l));
        snprintf(l->id, sizeof(l->id), "%ld", standin->store.next_small++);
        snprintf(l->msisdn, sizeof(l->msisdn), "%s", msisdn);
        l->created_ms = now_ms();
        ptrvec_push(&st->blocked, l);
    } else if (op == 1 && l != NULL) {
        l->deleted = true;
    }
    if (op <= 1) {
        resp_json(&req->resp, 200, json_pack("{s:s}", "successes", "done"));
        return;
    }
    /* The Swedish table names /check_if_on_blocklist with "on_blocklist",
     * the English PDF /check_if_in_blocklist with "in_blocklist". */
    resp_json(&req->resp, 200,
              json_pack("{s:b}", op == 2 ? "in_blocklist" : "on_blocklist",
                        l != NULL));
}

void jojka_handle(struct request *req)
{
    const char *ep = req->sub;

    if (strcmp(req->method, "POST") != 0) {
        resp_json(&req->resp, 405, json_pack("{s:[s]}", "error", "Use POST"));
        resp_header(&req->resp, "Allow", "POST");
        return;
    }
    req_form(req);
    if (req->acct == NULL) {
        jojka_error(req, "Invalid API key");
        return;
    }
    for (size_t i = 0; i < req->form.len; i++) {
        if (!utf8_valid(req->form.items[i].value,
                        req->form.items[i].value_len)) {
            jojka_error(req, "Parameter %s is not UTF-8",
                        req->form.items[i].name);
            return;
        }
    }
    if (strcmp(ep, "/send") == 0)
        jojka_send(req);
    else if (strcmp(ep, "/add_campaign") == 0)
        jojka_add_campaign(req);
    else if (strcmp(ep, "/get_msg_ids_by_campaign_id") == 0)
        jojka_campaign_ids(req);
    else if (strcmp(ep, "/get_campaign_recipients_status") == 0)
        jojka_campaign_status(req);
    else if (strcmp(ep, "/cancel_campaign") == 0)
        jojka_cancel_campaign(req);
    else if (strcmp(ep, "/get_msg_status") == 0)
        jojka_msg_status(req);
    else if (strcmp(ep, "/fetch_replies") == 0)
        jojka_fetch_replies(req);
    else if (strcmp(ep, "/add_contact") == 0)
        jojka_add_contact(req);
    else if (strcmp(ep, "/add_contact_to_group") == 0)
        jojka_contact_group(req, true);
    else if (strcmp(ep, "/rm_contact_from_group") == 0)
        jojka_contact_group(req, false);
    else if (strcmp(ep, "/rm_contact") == 0)
        jojka_rm_contact(req);
    else if (strcmp(ep, "/get_groups_from_msisdn") == 0)
        jojka_groups_of(req);
    else if (strcmp(ep, "/import_contacts_list") == 0)
        jojka_import(req);
    else if (strcmp(ep, "/export_contacts_list") == 0)
        jojka_export(req);
    else if (strcmp(ep, "/add_to_blocklist") == 0)
        jojka_blocklist(req, 0);
    else if (strcmp(ep, "/rm_from_blocklist") == 0)
        jojka_blocklist(req, 1);
    else if (strcmp(ep, "/check_if_in_blocklist") == 0)
        jojka_blocklist(req, 2);
    else if (strcmp(ep, "/check_if_on_blocklist") == 0)
        jojka_blocklist(req, 3);
    else
        resp_json(&req->resp, 404,
                  json_pack("{s:[s]}", "error", "Unknown endpoint"));
}
