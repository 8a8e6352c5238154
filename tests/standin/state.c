/* tests/standin/state.c - what the stand-in remembers: messages, batches,
 * per-account address books and block lists, and how a message's life ends
 * (delivery outcome, status callbacks, incoming SMS).
 *
 * Outcome by number (documented in docs/standins.md): a recipient ending in
 * 99 is not delivered, one ending in 98 never gets a definite answer, every
 * other one is delivered settings.delivery_ms after it leaves. */
#include "standin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[] = {
    [MS_SCHEDULED] = "scheduled", [MS_PENDING] = "pending",
    [MS_DELIVERED] = "delivered", [MS_FAILED] = "failed",
    [MS_UNKNOWN] = "unknown",     [MS_CANCELLED] = "cancelled",
    [MS_REJECTED] = "rejected",
};

const char *msg_state_name(enum msg_state s)
{
    return state_names[s];
}

/* ------------------------------------------------------------------------
 * Store
 * ---------------------------------------------------------------------- */

void store_init(struct store *s)
{
    memset(s, 0, sizeof(*s));
    s->next_intime = 4510;
    s->next_legacy = 1000001;
    s->next_campaign = 287359;
    s->next_small = 1;
}

static void msg_free(struct msg *m)
{
    free(m->sender);
    free(m->text);
    free(m->transid);
    free(m->callback_url);
    free(m->reference);
    free(m);
}

static void batch_free(struct batch *b)
{
    json_decref(b->doc);
    free(b->name);
    ptrvec_free(&b->msgs);
    free(b);
}

void store_free(struct store *s)
{
    for (size_t i = 0; i < s->all.len; i++)
        msg_free(s->all.items[i]);
    ptrvec_free(&s->all);
    for (int p = 0; p < PROV_COUNT; p++)
        table_free(&s->by_id[p]);
    for (size_t i = 0; i < s->batches.cap; i++) {
        if (s->batches.vals[i] != NULL)
            batch_free(s->batches.vals[i]);
    }
    table_free(&s->batches);
}

struct msg *store_add(struct store *s, enum provider p, struct account *acct,
                      const char *recipient, const char *sender,
                      const char *text)
{
    struct msg *m = xcalloc(1, sizeof(*m));

    switch (p) {
    case PROV_INTIME:
        snprintf(m->id, sizeof(m->id), "%ld", s->next_intime++);
        break;
    case PROV_LEGACY:
        snprintf(m->id, sizeof(m->id), "%ld", s->next_legacy++);
        break;
    default:
        hex_id(m->id);
    }
    m->provider = p;
    m->acct = acct;
    snprintf(m->recipient, sizeof(m->recipient), "%s",
             recipient != NULL ? recipient : "");
    m->sender = sender != NULL ? xstrdup(sender) : NULL;
    m->text = text != NULL ? xstrdup(text) : NULL;
    m->created_ms = now_ms();
    m->due_ms = m->created_ms;
    m->modified_ms = m->created_ms;
    m->state = MS_PENDING;
    m->priority = 1;
    m->segments = 1;
    table_put(&s->by_id[p], m->id, m);
    ptrvec_push(&s->all, m);
    return m;
}

struct msg *store_find(struct store *s, int p, const char *id)
{
    if (p >= 0)
        return table_get(&s->by_id[p], id);
    for (int q = 0; q < PROV_COUNT; q++) {
        struct msg *m = table_get(&s->by_id[q], id);
        if (m != NULL)
            return m;
    }
    return NULL;
}

void store_add_batch(struct store *s, struct batch *b)
{
    table_put(&s->batches, b->id, b);
}

/* ------------------------------------------------------------------------
 * Per-account state
 * ---------------------------------------------------------------------- */

struct acct_state *acct_state(struct account *a)
{
    if (a->st == NULL)
        a->st = xcalloc(1, sizeof(*a->st));
    return a->st;
}

void contact_free(struct contact *c)
{
    free(c->first);
    free(c->last);
    free(c->email);
    free(c->extra);
    for (size_t i = 0; i < c->groups.len; i++)
        free(c->groups.items[i]);
    ptrvec_free(&c->groups);
    json_decref(c->doc);
    free(c);
}

void acct_state_free(struct acct_state *st)
{
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->contacts.len; i++)
        contact_free(st->contacts.items[i]);
    for (size_t i = 0; i < st->groups.len; i++) {
        struct group *g = st->groups.items[i];
        free(g->name);
        free(g);
    }
    for (size_t i = 0; i < st->blocked.len; i++)
        free(st->blocked.items[i]);
    for (size_t i = 0; i < st->reminders.len; i++)
        json_decref(st->reminders.items[i]);
    for (size_t i = 0; i < st->replies.len; i++) {
        struct reply *r = st->replies.items[i];
        free(r->text);
        free(r);
    }
    ptrvec_free(&st->contacts);
    ptrvec_free(&st->groups);
    ptrvec_free(&st->blocked);
    ptrvec_free(&st->reminders);
    ptrvec_free(&st->replies);
    ptrvec_free(&st->batches); /* the batches belong to the store */
    free(st);
}

struct contact *state_contact_by_msisdn(struct acct_state *st,
                                        const char *msisdn)
{
    for (size_t i = 0; i < st->contacts.len; i++) {
        struct contact *c = st->contacts.items[i];
        if (!c->deleted && strcmp(c->msisdn, msisdn) == 0)
            return c;
    }
    return NULL;
}

struct group *state_group(struct acct_state *st, const char *key, bool by_id)
{
    for (size_t i = 0; i < st->groups.len; i++) {
        struct group *g = st->groups.items[i];
        if (!g->deleted && strcmp(by_id ? g->id : g->name, key) == 0)
            return g;
    }
    return NULL;
}

struct listed *state_blocked(struct acct_state *st, const char *msisdn)
{
    for (size_t i = 0; i < st->blocked.len; i++) {
        struct listed *l = st->blocked.items[i];
        if (!l->deleted && strcmp(l->msisdn, msisdn) == 0)
            return l;
    }
    return NULL;
}

bool contact_in_group(const struct contact *c, const char *g)
{
    for (size_t i = 0; i < c->groups.len; i++) {
        if (strcmp(c->groups.items[i], g) == 0)
            return true;
    }
    return false;
}

/* ------------------------------------------------------------------------
 * Deliveries
 * ---------------------------------------------------------------------- */

enum msg_state outcome_for(const char *recipient)
{
    size_t n = strlen(recipient);

    if (n >= 2 && strcmp(recipient + n - 2, "99") == 0)
        return MS_FAILED;
    if (n >= 2 && strcmp(recipient + n - 2, "98") == 0)
        return MS_UNKNOWN;
    return MS_DELIVERED;
}

void schedule_delivery(struct msg *m)
{
    int64_t due = m->due_ms > now_ms() ? m->due_ms : now_ms();

    events_deliver(standin->events, m->provider, m->id,
                   due + standin->settings.delivery_ms);
}

static void set_final(struct msg *m, enum msg_state s)
{
    switch (m->provider) {
    case PROV_INTIME:
        intime_set_final(m, s);
        break;
    case PROV_IP1:
        ip1_set_final(m, s);
        break;
    case PROV_LEGACY:
        legacy_set_final(m, s);
        break;
    case PROV_JOJKA:
        jojka_set_final(m, s);
        break;
    default:
        break;
    }
    m->modified_ms = now_ms();
}

void deliver_message(enum provider p, const char *id)
{
    pthread_mutex_lock(&standin->lock);
    struct msg *m = store_find(&standin->store, (int)p, id);
    if (m != NULL && (m->state == MS_PENDING || m->state == MS_SCHEDULED)) {
        set_final(m, outcome_for(m->recipient));
        provider_status_callback(m);
    }
    pthread_mutex_unlock(&standin->lock);
}

/* ------------------------------------------------------------------------
 * Native statuses
 * ---------------------------------------------------------------------- */

int native_status(enum provider p, const json_t *v, enum msg_state *state,
                  int *code, char status[16])
{
    if (p == PROV_JOJKA) {
        static const char *const pending[] = {"SENT", "SENDING", "SENDING_OK"};
        const char *s = json_string_value(v);
        if (s == NULL)
            return -1;
        if (strcmp(s, "DELIVERED") == 0) {
            *state = MS_DELIVERED;
        } else if (strcmp(s, "ERROR") == 0) {
            *state = MS_FAILED;
        } else {
            size_t i;
            for (i = 0; i < 3 && strcmp(s, pending[i]) != 0; i++)
                ;
            if (i == 3)
                return -1;
            *state = MS_PENDING;
        }
        snprintf(status, 16, "%s", s);
        return 0;
    }
    if (!json_is_integer(v))
        return -1;
    int c = (int)json_integer_value(v);
    *code = c;
    switch (p) {
    case PROV_INTIME:
        if (c >= 0 && c <= 4)
            *state = MS_FAILED;
        else if (c == 20)
            *state = MS_DELIVERED;
        else if (c == 21)
            *state = MS_UNKNOWN;
        else
            return -1;
        return 0;
    case PROV_IP1:
        if (c >= 100 && c < 200)
            *state = MS_PENDING;
        else if (c == 201)
            *state = MS_DELIVERED;
        else if (c == 203)
            *state = MS_CANCELLED;
        else if (c >= 200 && c < 300)
            *state = MS_FAILED;
        else if (c >= 400 && c < 500)
            *state = MS_REJECTED;
        else if (c >= 500 && c < 600)
            *state = MS_FAILED;
        else
            return -1;
        return 0;
    case PROV_LEGACY:
        if (c == 0 || c == 10 || c == 11 || c == 21)
            *state = MS_PENDING;
        else if (c == 22)
            *state = MS_DELIVERED;
        else if (c == 12)
            *state = MS_CANCELLED;
        else if (c == 30 || (c >= 41 && c <= 43) || (c >= 50 && c <= 52))
            *state = MS_FAILED;
        else
            return -1;
        return 0;
    default:
        return -1;
    }
}

/* ------------------------------------------------------------------------
 * Callbacks
 * ---------------------------------------------------------------------- */

static void spec_init(struct callback_spec *spec, const struct account *a,
                      const char *kind, const char *msg_id)
{
    memset(spec, 0, sizeof(*spec));
    spec->provider = a->provider;
    snprintf(spec->account, sizeof(spec->account), "%s", a->name);
    snprintf(spec->kind, sizeof(spec->kind), "%s", kind);
    snprintf(spec->msg_id, sizeof(spec->msg_id), "%s", msg_id);
}

void provider_status_callback(struct msg *m)
{
    struct callback_spec spec;
    char created[40];

    if (m->callback_url == NULL)
        return;
    spec_init(&spec, m->acct, "status", m->id);
    if (m->provider == PROV_INTIME) {
        /* Only recipients given a transid get reports (000). */
        if (m->transid == NULL || m->state == MS_CANCELLED)
            return;
        struct sbuf b = {0};
        sbuf_printf(&b, "messageid=%s&status=%d&transid=", m->id, m->code);
        sbuf_urlenc(&b, m->transid);
        spec.method = "POST";
        spec.url = xstrdup(m->callback_url);
        spec.body = sbuf_detach(&b, &spec.body_len);
        spec.content_type = "application/x-www-form-urlencoded";
        spec.expect = CB_EXPECT_BODY;
        snprintf(spec.expect_body, sizeof(spec.expect_body), "%s", m->id);
        events_callback(standin->events, &spec);
        return;
    }
    if (m->provider != PROV_IP1)
        return;
    format_utc(created, sizeof(created), m->modified_ms, "%Y-%m-%dT%H:%M:%S",
               true, "Z");
    bool final = m->code >= 200;
    json_t *dlr = json_pack(
        "{s:s, s:s, s:s, s:i, s:i, s:s, s:i, s:f, s:s, s:s?}", "id", m->id,
        "batchId", m->group_id, "recipient", m->recipient, "code", m->code,
        "duration", final ? 1 : 0, "created", created, "segments",
        (int)m->segments, "price", 0.35 * m->segments, "currency", "sek",
        "reference", m->reference);
    spec.method = "POST";
    spec.url = xstrdup(m->callback_url);
    spec.body = json_dumps(dlr, JSON_COMPACT);
    spec.body_len = strlen(spec.body);
    spec.content_type = "application/json";
    spec.expect = CB_EXPECT_200;
    json_decref(dlr);
    events_callback(standin->events, &spec);
}

/* Expands {account} and {token} in a default inbound URL template. */
static char *inbound_url(const struct account *a)
{
    const char *tpl = a->inbound_url != NULL
                          ? a->inbound_url
                          : standin->inbound_default[a->provider];
    struct sbuf b = {0};

    if (tpl == NULL)
        return NULL;
    while (*tpl != '\0') {
        if (strncmp(tpl, "{account}", 9) == 0) {
            sbuf_urlenc(&b, a->name);
            tpl += 9;
        } else if (strncmp(tpl, "{token}", 7) == 0) {
            sbuf_urlenc(&b, a->webhook_token ? a->webhook_token : "");
            tpl += 7;
        } else {
            sbuf_append(&b, tpl++, 1);
        }
    }
    return sbuf_detach(&b, NULL);
}

int provider_inbound(struct account *a, const char *from, const char *to,
                     const char *text, char *errstr, size_t errstr_size)
{
    struct callback_spec spec;
    char id[32];

    if (a->provider == PROV_INTIME) {
        snprintf(errstr, errstr_size, "InTime documents no incoming SMS");
        return -1;
    }
    if (a->provider == PROV_JOJKA) {
        struct reply *r = xcalloc(1, sizeof(*r));
        r->at_ms = now_ms();
        snprintf(r->from, sizeof(r->from), "%s", from);
        r->text = xstrdup(text);
        ptrvec_push(&acct_state(a)->replies, r);
        return 0;
    }
    char *url = inbound_url(a);
    if (url == NULL) {
        snprintf(errstr, errstr_size,
                 "account %s has no standin.inbound_url and no "
                 "--callback-inbound-%s was given",
                 a->name, provider_name(a->provider));
        return -1;
    }
    if (a->provider == PROV_LEGACY) {
        struct sbuf b = {0};
        snprintf(id, sizeof(id), "%ld", standin->store.next_legacy++);
        sbuf_puts(&b, url);
        sbuf_puts(&b, strchr(url, '?') != NULL ? "&" : "?");
        sbuf_printf(&b, "incsmsid=%s&sender=", id);
        sbuf_urlenc(&b, from);
        sbuf_puts(&b, "&text=");
        sbuf_urlenc(&b, text);
        sbuf_puts(&b, "&to=");
        sbuf_urlenc(&b, to);
        free(url);
        spec_init(&spec, a, "inbound", id);
        spec.method = "GET";
        spec.url = sbuf_detach(&b, NULL);
        spec.expect = CB_EXPECT_OK;
        events_callback(standin->events, &spec);
        return 0;
    }
    /* iP.1 REST: the message document, POSTed as JSON (IP1-IN). */
    struct text_count tc;
    char created[40];
    hex_id(id);
    text_count(&tc, text, strlen(text), false);
    format_utc(created, sizeof(created), now_ms(), "%Y-%m-%dT%H:%M:%S", true,
               "Z");
    json_t *doc = json_pack(
        "{s:s, s:n, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:i,"
        " s:[{s:s, s:i, s:i}], s:s, s:s, s:s}",
        "id", id, "batchId", "owner", a->owner, "sender", from, "recipient", to,
        "body", text, "direction", "mo", "segments", (int)tc.segments, "type",
        "sms", "datacoding", tc.gsm ? "gsm" : "ucs", "priority", 1, "statuses",
        "created", created, "code", 201, "duration", 0, "modified", created,
        "mcc", "240", "mnc", "01");
    spec_init(&spec, a, "inbound", id);
    spec.method = "POST";
    spec.url = url;
    spec.body = json_dumps(doc, JSON_COMPACT);
    spec.body_len = strlen(spec.body);
    spec.content_type = "application/json";
    spec.expect = CB_EXPECT_200;
    json_decref(doc);
    events_callback(standin->events, &spec);
    return 0;
}
