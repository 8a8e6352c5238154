/* tests/standin/control.c - the control endpoint under /_standin/.
 *
 * JSON in and out. Tests and the demo use it to read the record, inject
 * faults, enforce rate limits, inject incoming SMS, force statuses and read
 * the state; docs/standins.md lists every call. Control requests are not
 * recorded and never faulted. */
#include "standin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void control_error(struct request *req, unsigned status, const char *fmt,
                          ...) __attribute__((format(printf, 3, 4)));

static void control_error(struct request *req, unsigned status, const char *fmt,
                          ...)
{
    char msg[300];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    resp_json(&req->resp, status, json_pack("{s:s}", "error", msg));
}

/* Reads the JSON object body, or answers 400 and returns NULL. */
static json_t *control_body(struct request *req)
{
    json_error_t jerr;
    json_t *root = json_loadb(req->body.data ? req->body.data : "",
                              req->body.len, 0, &jerr);

    if (root == NULL) {
        control_error(req, 400, "bad JSON at line %d: %s", jerr.line,
                      jerr.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        control_error(req, 400, "the body must be a JSON object");
        return NULL;
    }
    return root;
}

static int provider_arg(struct request *req, const char *name)
{
    const char *p = kvlist_get(&req->qargs, name, false);

    return p != NULL ? provider_parse(p) : -1;
}

static void ok(struct request *req)
{
    resp_json(&req->resp, 200, json_pack("{s:b}", "ok", 1));
}

/* ------------------------------------------------------------------------
 * Faults
 * ---------------------------------------------------------------------- */

static json_t *fault_json(const struct fault *f)
{
    return json_pack(
        "{s:b, s:i, s:i, s:f, s:i, s:f, s:i, s:f, s:f, s:i,"
        " s:f, s:s?, s:i, s:b, s:I, s:s}",
        "on", f->on, "latency_min_ms", f->latency_min_ms, "latency_max_ms",
        f->latency_max_ms, "error_5xx", f->share_5xx, "status_5xx",
        (int)(f->status_5xx ? f->status_5xx : 500), "timeout", f->share_timeout,
        "hold_ms", f->hold_ms, "reset", f->share_reset, "throttle_429",
        f->share_429, "retry_after", f->retry_after, "provider_error",
        f->share_provider, "provider_body", f->provider_body, "provider_status",
        (int)f->provider_status, "process", f->process, "count",
        (json_int_t)f->remaining, "path", f->path);
}

static void fault_clear(struct fault *f)
{
    free(f->provider_body);
    memset(f, 0, sizeof(*f));
    f->retry_after = 1;
    f->remaining = -1;
}

static int share(json_t *root, const char *name, double *out, char *err,
                 size_t err_size)
{
    json_t *v = json_object_get(root, name);

    if (v == NULL)
        return 0;
    if (!json_is_number(v) || json_number_value(v) < 0 ||
        json_number_value(v) > 1) {
        snprintf(err, err_size, "%s must be a share between 0 and 1", name);
        return -1;
    }
    *out = json_number_value(v);
    return 0;
}

static int intval(json_t *root, const char *name, long min, long max, long *out,
                  char *err, size_t err_size)
{
    json_t *v = json_object_get(root, name);

    if (v == NULL)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min ||
        json_integer_value(v) > max) {
        snprintf(err, err_size, "%s must be an integer in %ld..%ld", name, min,
                 max);
        return -1;
    }
    *out = (long)json_integer_value(v);
    return 0;
}

static void control_faults_set(struct request *req)
{
    json_t *root = control_body(req);
    struct fault f = {0};
    char err[128] = "";
    long n;

    if (root == NULL)
        return;
    const char *prov = json_string_value(json_object_get(root, "provider"));
    int p = prov != NULL ? provider_parse(prov) : PROV_COUNT;
    if (p < 0) {
        control_error(req, 400, "unknown provider %s", prov);
        goto out;
    }
    f.on = true;
    f.retry_after = 1;
    f.remaining = -1;
    json_t *lat = json_object_get(root, "latency");
    if (json_is_integer(lat)) {
        f.latency_min_ms = f.latency_max_ms = (int)json_integer_value(lat);
    } else if (json_is_object(lat)) {
        const char *dist = json_string_value(json_object_get(lat, "dist"));
        long lo = 0, hi = 0, ms = 0;
        if (intval(lat, "ms", 0, 600000, &ms, err, sizeof(err)) != 0 ||
            intval(lat, "min_ms", 0, 600000, &lo, err, sizeof(err)) != 0 ||
            intval(lat, "max_ms", 0, 600000, &hi, err, sizeof(err)) != 0)
            goto bad;
        if (dist == NULL || strcmp(dist, "fixed") == 0) {
            f.latency_min_ms = f.latency_max_ms = (int)(ms ? ms : hi);
        } else if (strcmp(dist, "uniform") == 0 && lo <= hi) {
            f.latency_min_ms = (int)lo;
            f.latency_max_ms = (int)hi;
        } else {
            snprintf(err, sizeof(err),
                     "latency.dist must be fixed (ms) or uniform "
                     "(min_ms <= max_ms)");
            goto bad;
        }
    } else if (lat != NULL) {
        snprintf(err, sizeof(err), "latency must be ms or an object");
        goto bad;
    }
    if (share(root, "error_5xx", &f.share_5xx, err, sizeof(err)) != 0 ||
        share(root, "timeout", &f.share_timeout, err, sizeof(err)) != 0 ||
        share(root, "reset", &f.share_reset, err, sizeof(err)) != 0 ||
        share(root, "throttle_429", &f.share_429, err, sizeof(err)) != 0 ||
        share(root, "provider_error", &f.share_provider, err, sizeof(err)) != 0)
        goto bad;
    if (f.share_5xx + f.share_timeout + f.share_reset + f.share_429 +
            f.share_provider >
        1.0000001) {
        snprintf(err, sizeof(err), "the shares add up to more than 1");
        goto bad;
    }
    n = 500;
    if (intval(root, "status_5xx", 500, 599, &n, err, sizeof(err)) != 0)
        goto bad;
    f.status_5xx = (unsigned)n;
    n = 1;
    if (intval(root, "retry_after", 0, 86400, &n, err, sizeof(err)) != 0)
        goto bad;
    f.retry_after = (int)n;
    n = 0;
    if (intval(root, "hold_ms", 0, 3600000, &n, err, sizeof(err)) != 0)
        goto bad;
    f.hold_ms = (int)n;
    n = -1;
    if (intval(root, "count", -1, 1L << 40, &n, err, sizeof(err)) != 0)
        goto bad;
    f.remaining = n;
    n = 0;
    if (intval(root, "provider_status", 0, 599, &n, err, sizeof(err)) != 0)
        goto bad;
    f.provider_status = (unsigned)n;
    f.process = json_is_true(json_object_get(root, "process"));
    const char *path = json_string_value(json_object_get(root, "path"));
    if (path != NULL && strlen(path) >= sizeof(f.path)) {
        snprintf(err, sizeof(err), "path must be under %zu bytes",
                 sizeof(f.path));
        goto bad;
    }
    if (path != NULL)
        snprintf(f.path, sizeof(f.path), "%s", path);
    const char *body =
        json_string_value(json_object_get(root, "provider_body"));
    if (body != NULL)
        f.provider_body = xstrdup(body);
    json_t *seed = json_object_get(root, "seed");
    if (json_is_integer(seed))
        rng_seed((uint64_t)json_integer_value(seed));
    fault_clear(&standin->faults[p]);
    standin->faults[p] = f;
    resp_json(&req->resp, 200, fault_json(&standin->faults[p]));
    goto out;

bad:
    control_error(req, 400, "%s", err);
out:
    json_decref(root);
}

static void control_faults(struct request *req)
{
    const char *m = req->method;

    if (strcmp(m, "POST") == 0) {
        control_faults_set(req);
    } else if (strcmp(m, "DELETE") == 0) {
        for (int p = 0; p <= PROV_COUNT; p++)
            fault_clear(&standin->faults[p]);
        ok(req);
    } else {
        json_t *all = json_object();
        json_object_set_new(all, "global",
                            fault_json(&standin->faults[PROV_COUNT]));
        for (int p = 0; p < PROV_COUNT; p++)
            json_object_set_new(all, provider_name((enum provider)p),
                                fault_json(&standin->faults[p]));
        resp_json(&req->resp, 200, all);
    }
}

/* ------------------------------------------------------------------------
 * Rate limits and violations
 * ---------------------------------------------------------------------- */

static json_t *limit_json(const struct account *a)
{
    const struct limit *l = &a->limit;

    return json_pack("{s:s, s:b, s:f, s:f, s:s, s:s}", "account", a->name, "on",
                     l->on, "per_second", l->per_second, "burst", l->burst,
                     "unit",
                     l->unit == LIMIT_SEGMENTS ? "segments" : "requests",
                     "answer", l->provider_answer ? "provider" : "429");
}

static void control_rate_limit(struct request *req)
{
    if (strcmp(req->method, "DELETE") == 0) {
        for (size_t i = 0; i < standin->accts.len; i++)
            memset(&standin->accts.items[i].limit, 0,
                   sizeof(standin->accts.items[i].limit));
        ok(req);
        return;
    }
    if (strcmp(req->method, "POST") != 0) {
        json_t *all = json_array();
        for (size_t i = 0; i < standin->accts.len; i++)
            json_array_append_new(all, limit_json(&standin->accts.items[i]));
        resp_json(&req->resp, 200, all);
        return;
    }
    json_t *root = control_body(req);
    if (root == NULL)
        return;
    const char *name = json_string_value(json_object_get(root, "account"));
    struct account *a = name ? accounts_by_name(&standin->accts, name) : NULL;
    json_t *ps = json_object_get(root, "per_second");
    json_t *burst = json_object_get(root, "burst");
    const char *unit = json_string_value(json_object_get(root, "unit"));
    const char *answer = json_string_value(json_object_get(root, "answer"));
    if (a == NULL) {
        control_error(req, 400, "unknown account %s", name ? name : "(none)");
    } else if (ps == NULL || json_is_null(ps) ||
               (json_is_number(ps) && json_number_value(ps) == 0)) {
        memset(&a->limit, 0, sizeof(a->limit));
        resp_json(&req->resp, 200, limit_json(a));
    } else if (!json_is_number(ps) || json_number_value(ps) < 0 ||
               (burst != NULL &&
                (!json_is_number(burst) || json_number_value(burst) < 1)) ||
               (unit != NULL && strcmp(unit, "requests") != 0 &&
                strcmp(unit, "segments") != 0) ||
               (answer != NULL && strcmp(answer, "429") != 0 &&
                strcmp(answer, "provider") != 0)) {
        control_error(req, 400,
                      "want per_second > 0, burst >= 1, unit requests|"
                      "segments, answer 429|provider");
    } else {
        struct limit *l = &a->limit;
        l->on = true;
        l->per_second = json_number_value(ps);
        l->burst = burst ? json_number_value(burst) : l->per_second;
        if (l->burst < 1)
            l->burst = 1;
        l->tokens = l->burst;
        l->last_ms = mono_ms();
        l->unit = unit && strcmp(unit, "segments") == 0 ? LIMIT_SEGMENTS
                                                        : LIMIT_REQUESTS;
        l->provider_answer = answer && strcmp(answer, "provider") == 0;
        resp_json(&req->resp, 200, limit_json(a));
    }
    json_decref(root);
}

static void control_violations(struct request *req)
{
    if (strcmp(req->method, "DELETE") == 0) {
        for (size_t i = 0; i < standin->violations.len; i++)
            free(standin->violations.items[i]);
        standin->violations.len = 0;
        ok(req);
        return;
    }
    json_t *all = json_array();
    for (size_t i = 0; i < standin->violations.len; i++) {
        struct violation *v = standin->violations.items[i];
        json_array_append_new(
            all, json_pack("{s:I, s:s, s:s, s:s, s:f, s:f}", "time_ms",
                           (json_int_t)v->at_ms, "account", v->account,
                           "provider", provider_name(v->provider), "path",
                           v->path, "cost", v->cost, "tokens", v->tokens));
    }
    resp_json(&req->resp, 200, all);
}

/* ------------------------------------------------------------------------
 * Messages, statuses, inbound
 * ---------------------------------------------------------------------- */

static json_t *message_json(const struct msg *m)
{
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s, s:s?, s:s?, s:s, s:I, s:I, s:I, s:i, s:s?,"
        " s:s?, s:s?}",
        "id", m->id, "provider", provider_name(m->provider), "account",
        m->acct->name, "recipient", m->recipient, "sender", m->sender, "text",
        m->text, "state", msg_state_name(m->state), "created_ms",
        (json_int_t)m->created_ms, "due_ms", (json_int_t)m->due_ms,
        "modified_ms", (json_int_t)m->modified_ms, "segments", (int)m->segments,
        "transid", m->transid, "callback_url", m->callback_url, "reference",
        m->reference);

    if (m->provider == PROV_JOJKA)
        json_object_set_new(o, "status", json_string(m->status));
    else
        json_object_set_new(o, "status", json_integer(m->code));
    if (m->group_id[0] != '\0')
        json_object_set_new(o, "batch", json_string(m->group_id));
    return o;
}

static void control_messages(struct request *req)
{
    int p = provider_arg(req, "provider");
    const char *account = kvlist_get(&req->qargs, "account", false);
    const char *id = kvlist_get(&req->qargs, "id", false);
    const char *to = kvlist_get(&req->qargs, "recipient", false);
    json_t *all = json_array();

    for (size_t i = 0; i < standin->store.all.len; i++) {
        const struct msg *m = standin->store.all.items[i];
        if ((p >= 0 && (int)m->provider != p) ||
            (account != NULL && strcmp(m->acct->name, account) != 0) ||
            (id != NULL && strcmp(m->id, id) != 0) ||
            (to != NULL && strcmp(m->recipient, to) != 0))
            continue;
        json_array_append_new(all, message_json(m));
    }
    resp_json(&req->resp, 200, all);
}

static void control_status(struct request *req)
{
    json_t *root = control_body(req);
    enum msg_state state;
    int code = 0;
    char status[16] = "";

    if (root == NULL)
        return;
    const char *id = json_string_value(json_object_get(root, "id"));
    const char *prov = json_string_value(json_object_get(root, "provider"));
    const char *st = json_string_value(json_object_get(root, "state"));
    json_t *native = json_object_get(root, "status");
    struct msg *m =
        id ? store_find(&standin->store, prov ? provider_parse(prov) : -1, id)
           : NULL;
    if (m == NULL) {
        control_error(req, 404, "no message %s", id ? id : "(no id)");
        goto out;
    }
    if (native != NULL) {
        if (native_status(m->provider, native, &state, &code, status) != 0) {
            control_error(req, 400, "not a %s status",
                          provider_name(m->provider));
            goto out;
        }
        m->state = state;
        m->code = code;
        if (m->provider == PROV_JOJKA)
            snprintf(m->status, sizeof(m->status), "%s", status);
        if (m->provider == PROV_IP1 && m->n_hist < STATUS_HIST_MAX) {
            m->hist_at[m->n_hist] = now_ms();
            m->hist_code[m->n_hist++] = code;
        }
    } else {
        static const char *const names[] = {"delivered", "failed", "unknown",
                                            "cancelled", "pending"};
        static const enum msg_state states[] = {
            MS_DELIVERED, MS_FAILED, MS_UNKNOWN, MS_CANCELLED, MS_PENDING};
        size_t i;
        for (i = 0; st != NULL && i < 5 && strcmp(st, names[i]) != 0; i++)
            ;
        if (st == NULL || i == 5) {
            control_error(req, 400,
                          "want \"status\" (the provider's own value) or "
                          "\"state\": delivered|failed|unknown|cancelled|"
                          "pending");
            goto out;
        }
        switch (m->provider) {
        case PROV_INTIME:
            intime_set_final(m, states[i]);
            break;
        case PROV_IP1:
            ip1_set_final(m, states[i]);
            break;
        case PROV_LEGACY:
            legacy_set_final(m, states[i]);
            break;
        case PROV_JOJKA:
            jojka_set_final(m, states[i]);
            break;
        default:
            break;
        }
    }
    m->modified_ms = now_ms();
    provider_status_callback(m);
    resp_json(&req->resp, 200, message_json(m));
out:
    json_decref(root);
}

static void control_inbound(struct request *req)
{
    json_t *root = control_body(req);
    char err[256];

    if (root == NULL)
        return;
    const char *name = json_string_value(json_object_get(root, "account"));
    const char *from = json_string_value(json_object_get(root, "from"));
    const char *to = json_string_value(json_object_get(root, "to"));
    const char *text = json_string_value(json_object_get(root, "text"));
    struct account *a = name ? accounts_by_name(&standin->accts, name) : NULL;
    if (a == NULL || from == NULL || text == NULL) {
        control_error(req, 400,
                      "want account (known), from, text and "
                      "optionally to");
    } else if (provider_inbound(a, from, to ? to : a->number, text, err,
                                sizeof(err)) != 0) {
        control_error(req, 400, "%s", err);
    } else {
        ok(req);
    }
    json_decref(root);
}

/* ------------------------------------------------------------------------
 * Settings, stats, reset
 * ---------------------------------------------------------------------- */

static json_t *settings_json(void)
{
    const struct settings *s = &standin->settings;

    return json_pack("{s:i, s:i, s:i, s:i, s:i, s:I}", "delivery_ms",
                     s->delivery_ms, "retry_ms", s->retry_ms, "max_tries",
                     s->max_tries, "callback_timeout_ms",
                     s->callback_timeout_ms, "hold_ms", s->hold_ms, "max_body",
                     (json_int_t)s->max_body);
}

static void control_settings(struct request *req)
{
    static const struct {
        const char *name;
        long min, max;
        size_t off;
    } fields[] = {
        {"delivery_ms", 0, 86400000, offsetof(struct settings, delivery_ms)},
        {"retry_ms", 0, 86400000, offsetof(struct settings, retry_ms)},
        {"max_tries", 1, 1000, offsetof(struct settings, max_tries)},
        {"callback_timeout_ms", 1, 600000,
         offsetof(struct settings, callback_timeout_ms)},
        {"hold_ms", 0, 3600000, offsetof(struct settings, hold_ms)},
    };

    if (strcmp(req->method, "POST") == 0) {
        json_t *root = control_body(req);
        struct settings next = standin->settings;
        char err[128];
        if (root == NULL)
            return;
        for (size_t i = 0; i < sizeof(fields) / sizeof(*fields); i++) {
            long v = *(int *)((char *)&next + fields[i].off);
            if (intval(root, fields[i].name, fields[i].min, fields[i].max, &v,
                       err, sizeof(err)) != 0) {
                control_error(req, 400, "%s", err);
                json_decref(root);
                return;
            }
            *(int *)((char *)&next + fields[i].off) = (int)v;
        }
        standin->settings = next;
        json_decref(root);
    }
    resp_json(&req->resp, 200, settings_json());
}

static json_t *per_provider(const long *counts)
{
    json_t *o = json_object();

    for (int p = 0; p < PROV_COUNT; p++)
        json_object_set_new(o, provider_name((enum provider)p),
                            json_integer(counts[p]));
    return o;
}

static void control_stats(struct request *req)
{
    const struct stats *s = &standin->stats;
    long total = 0;

    for (int p = 0; p < PROV_COUNT; p++)
        total += s->requests[p];
    json_t *o = json_pack(
        "{s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:I, s:I, s:I, s:I,"
        " s:{s:I, s:I, s:I, s:I, s:I}}",
        "uptime_ms", (json_int_t)(now_ms() - standin->started_ms), "requests",
        (json_int_t)total, "by_provider", per_provider(s->requests),
        "answered_2xx", per_provider(s->answered_2xx), "answered_other",
        per_provider(s->answered_other), "provider_errors",
        per_provider(s->provider_errors), "faults", per_provider(s->faults),
        "throttled", per_provider(s->throttled), "unknown_paths",
        (json_int_t)s->unknown_paths, "control", (json_int_t)s->control,
        "messages", (json_int_t)standin->store.all.len, "violations",
        (json_int_t)standin->violations.len, "recorded",
        (json_int_t)(standin->record.next_seq - 1), "callbacks", "sent",
        (json_int_t)s->callbacks_sent, "ok", (json_int_t)s->callbacks_ok,
        "failed", (json_int_t)s->callbacks_failed, "given_up",
        (json_int_t)s->callbacks_given_up, "pending",
        (json_int_t)events_pending(standin->events));
    resp_json(&req->resp, 200, o);
}

static void control_reset(struct request *req)
{
    /* Ids keep counting up: a delivery still queued for an old message must
     * never find a new one. */
    struct store old = standin->store;
    store_free(&standin->store);
    store_init(&standin->store);
    standin->store.next_intime = old.next_intime;
    standin->store.next_legacy = old.next_legacy;
    standin->store.next_campaign = old.next_campaign;
    standin->store.next_small = old.next_small;
    for (size_t i = 0; i < standin->accts.len; i++) {
        acct_state_free(standin->accts.items[i].st);
        standin->accts.items[i].st = NULL;
        memset(&standin->accts.items[i].limit, 0,
               sizeof(standin->accts.items[i].limit));
    }
    for (int p = 0; p <= PROV_COUNT; p++)
        fault_clear(&standin->faults[p]);
    for (size_t i = 0; i < standin->violations.len; i++)
        free(standin->violations.items[i]);
    standin->violations.len = 0;
    memset(&standin->stats, 0, sizeof(standin->stats));
    record_clear(&standin->record);
    events_clear_history(standin->events);
    ok(req);
}

void control_handle(struct request *req)
{
    const char *ep = req->path + strlen("/_standin");
    const char *m = req->method;
    bool get = strcmp(m, "GET") == 0;

    if (strcmp(ep, "/requests") == 0 && get) {
        const char *since_s = kvlist_get(&req->qargs, "since", false);
        long since = 0;
        if (since_s != NULL && parse_long(&since, since_s) != 0) {
            control_error(req, 400, "since must be a sequence number");
            return;
        }
        resp_json(&req->resp, 200,
                  record_json(&standin->record, provider_arg(req, "provider"),
                              kvlist_get(&req->qargs, "account", false), since,
                              kvlist_get(&req->qargs, "path", false)));
    } else if (strcmp(ep, "/requests") == 0 && strcmp(m, "DELETE") == 0) {
        record_clear(&standin->record);
        ok(req);
    } else if (strcmp(ep, "/faults") == 0) {
        control_faults(req);
    } else if (strcmp(ep, "/rate-limit") == 0) {
        control_rate_limit(req);
    } else if (strcmp(ep, "/violations") == 0) {
        control_violations(req);
    } else if (strcmp(ep, "/inbound") == 0 && strcmp(m, "POST") == 0) {
        control_inbound(req);
    } else if (strcmp(ep, "/status") == 0 && strcmp(m, "POST") == 0) {
        control_status(req);
    } else if (strcmp(ep, "/messages") == 0 && get) {
        control_messages(req);
    } else if (strcmp(ep, "/stats") == 0 && get) {
        control_stats(req);
    } else if (strcmp(ep, "/callbacks") == 0 && get) {
        resp_json(&req->resp, 200, events_history(standin->events));
    } else if (strcmp(ep, "/callbacks") == 0 && strcmp(m, "DELETE") == 0) {
        events_clear_history(standin->events);
        ok(req);
    } else if (strcmp(ep, "/settings") == 0) {
        control_settings(req);
    } else if (strcmp(ep, "/reset") == 0 && strcmp(m, "POST") == 0) {
        control_reset(req);
    } else {
        control_error(req, 404, "no control endpoint %s %s", m, req->path);
    }
}
