/* worker/metrics.c - labelled Prometheus counters, gauges and histograms. */
#include "worker/metrics.h"

#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "worker/xalloc.h"

enum metric_type {
    MT_COUNTER,
    MT_GAUGE,
    MT_HISTOGRAM,
};

struct metric_def {
    const char *name;
    enum metric_type type;
    const char *help;
    const char *labels[METRICS_MAX_LABELS]; /* NULL after the last */
};

/* Provider latency buckets, seconds: a local stand-in answers in a
 * millisecond, a provider in tens to hundreds, a timeout at 10 s. */
static const double latency_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                         0.5,   1,    2.5,   5,    10};
#define NBUCKETS (sizeof(latency_buckets) / sizeof(latency_buckets[0]))

static const struct metric_def defs[M_COUNT] = {
    [M_BUILD_INFO] = {"kurir_build_info",
                      MT_GAUGE,
                      "Always 1; the labels name the running build.",
                      {"version"}},
    [M_JOBS_CONSUMED] = {"kurir_jobs_consumed_total",
                         MT_COUNTER,
                         "Jobs consumed from Kafka, by topic and how they "
                         "ended (done, dlq, rejected, abandoned).",
                         {"topic", "outcome"}},
    [M_STATUS_EVENTS] = {"kurir_status_events_total",
                         MT_COUNTER,
                         "Status events published, by state.",
                         {"state"}},
    [M_PROVIDER_REQUESTS] = {"kurir_provider_requests_total",
                             MT_COUNTER,
                             "Provider HTTP requests by account, provider and "
                             "result class (2xx, 3xx, 4xx, 429, 5xx, error).",
                             {"account", "provider", "result"}},
    [M_PROVIDER_LATENCY] = {"kurir_provider_request_duration_seconds",
                            MT_HISTOGRAM,
                            "Provider HTTP request time, from start to the "
                            "last byte of the answer, by account.",
                            {"account"}},
    [M_PROVIDER_IN_FLIGHT] = {"kurir_provider_requests_in_flight",
                              MT_GAUGE,
                              "Provider HTTP requests open now.",
                              {NULL}},
    [M_RATELIMIT_WAITS] = {"kurir_ratelimit_waits_total",
                           MT_COUNTER,
                           "Times a send had to wait for its account's "
                           "token bucket.",
                           {"account"}},
    [M_RATELIMIT_TOKENS] = {"kurir_ratelimit_tokens_total",
                            MT_COUNTER,
                            "Tokens (message parts) taken from each account's "
                            "bucket.",
                            {"account"}},
    [M_SCHEDULED_BACKLOG] = {"kurir_scheduled_backlog",
                             MT_GAUGE,
                             "Sends held in Redis until their send_at.",
                             {NULL}},
    [M_RETRY_BACKLOG] = {"kurir_retry_backlog",
                         MT_GAUGE,
                         "Sends held in Redis until their next retry.",
                         {NULL}},
    [M_UNITS_IN_FLIGHT] = {"kurir_units_in_flight",
                           MT_GAUGE,
                           "Units of work in progress in this replica.",
                           {NULL}},
    [M_UNITS_PARKED] = {"kurir_units_parked",
                        MT_GAUGE,
                        "Units waiting in this replica, by cause (redis, "
                        "busy, ratelimit, schedule, redelivery, next, "
                        "callback, tokens, connection).",
                        {"cause"}},
    [M_KAFKA_LAG] = {"kurir_kafka_consumer_lag",
                     MT_GAUGE,
                     "Messages behind the end of each assigned partition "
                     "(librdkafka statistics).",
                     {"topic", "partition"}},
    [M_KAFKA_OLDEST_AGE] = {"kurir_kafka_oldest_unfinished_age_seconds",
                            MT_GAUGE,
                            "Age of the oldest consumed but unfinished offset "
                            "of each assigned partition.",
                            {"topic", "partition"}},
    [M_KAFKA_ASSIGNED] = {"kurir_kafka_partitions_assigned",
                          MT_GAUGE,
                          "Partitions of the job topics assigned to this "
                          "replica.",
                          {NULL}},
    [M_KAFKA_ERRORS] = {"kurir_kafka_errors_total",
                        MT_COUNTER,
                        "Errors librdkafka reported, by error name.",
                        {"kind"}},
    [M_KAFKA_BROKER_ERRORS] = {"kurir_kafka_broker_errors_total",
                               MT_COUNTER,
                               "Broker transmit, receive and request timeout "
                               "errors (librdkafka statistics), by client.",
                               {"client", "kind"}},
    [M_WEBHOOK_REQUESTS] = {"kurir_webhook_requests_total",
                            MT_COUNTER,
                            "Provider callbacks the loop answered, by answer "
                            "class (2xx, 4xx, 5xx).",
                            {"result"}},
    [M_REDIS_UP] = {"kurir_redis_up",
                    MT_GAUGE,
                    "1 when the last Redis call worked, else 0.",
                    {NULL}},
    [M_REDIS_ERRORS] = {"kurir_redis_errors_total",
                        MT_COUNTER,
                        "Redis calls that failed.",
                        {NULL}},
    [M_REDIS_ROUND_TRIPS] = {"kurir_redis_round_trips_total",
                             MT_COUNTER,
                             "Writes of the loop's Redis connection: each "
                             "carries every command the turn queued "
                             "(pipelined), so calls / round trips is the "
                             "batching.",
                             {NULL}},
    [M_REDIS_CALLS] = {"kurir_redis_calls_total",
                       MT_COUNTER,
                       "Commands and script calls the loop's Redis "
                       "connection sent.",
                       {NULL}},
    [M_REDIS_EPOCH_CHANGES] = {"kurir_redis_epoch_changes_total",
                               MT_COUNTER,
                               "Times Redis came back with another epoch "
                               "(restarted without its data, or failed over).",
                               {NULL}},
    [M_KAFKA_PAUSED] = {"kurir_kafka_consumer_paused",
                        MT_GAUGE,
                        "1 while this replica's partitions are paused (no "
                        "room for work, or Redis away); it still polls.",
                        {NULL}},
    [M_UNITS_DEFERRED] = {"kurir_units_deferred_total",
                          MT_COUNTER,
                          "Units whose rate-limit wait was too long to hold "
                          "in memory, stored in Redis until due, by account.",
                          {"account"}},
    [M_RATELIMIT_PENALTIES] = {"kurir_ratelimit_penalties_total",
                               MT_COUNTER,
                               "Retry-After answers charged to an account's "
                               "bucket (the whole fleet waits), by account.",
                               {"account"}},
    [M_EVENT_RETRIES] = {"kurir_event_retries_total",
                         MT_COUNTER,
                         "Events Kafka refused and kurir produced again, by "
                         "topic.",
                         {"topic"}},
    [M_WEBHOOK_SUSPENDED] = {"kurir_webhook_suspended",
                             MT_GAUGE,
                             "Provider callbacks waiting for their answer "
                             "(their events on Kafka).",
                             {NULL}},
    [M_WEBHOOK_EXPIRED] = {"kurir_webhook_expired_total",
                           MT_COUNTER,
                           "Provider callbacks answered 503 because their "
                           "events were not on Kafka in time (the provider "
                           "retries).",
                           {NULL}},
    [M_LEASES_LOST] = {"kurir_claim_leases_lost_total",
                       MT_COUNTER,
                       "Claimed scheduled sends or retries whose lease was "
                       "no longer this replica's when extended.",
                       {NULL}},
    [M_LOOP_IDLE] = {"kurir_loop_idle_seconds_total",
                     MT_COUNTER,
                     "Time the loop waited with nothing ready. Its rate is "
                     "the idle share of the loop's one thread: near 0 the "
                     "replica is saturated.",
                     {NULL}},
};

/* Copies at most n bytes of s. */
static char *metrics_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = xmalloc(len + 1);

    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

static size_t metrics_nlabels(enum metric_id id)
{
    size_t n = 0;
    while (n < METRICS_MAX_LABELS && defs[id].labels[n] != NULL)
        n++;
    return n;
}

void metrics_init(struct metrics *m, const char *version)
{
    memset(m, 0, sizeof(*m));
    metrics_set(m, M_BUILD_INFO, ML(version), 1);
}

static void metrics_series_free(struct metric_series *s)
{
    for (size_t i = 0; i < METRICS_MAX_LABELS; i++)
        free(s->labels[i]);
    free(s->buckets);
}

void metrics_clear(struct metrics *m, enum metric_id id)
{
    struct metric_family *f = &m->fam[id];

    for (size_t i = 0; i < f->nseries; i++)
        metrics_series_free(&f->series[i]);
    f->nseries = 0;
}

void metrics_free(struct metrics *m)
{
    for (size_t i = 0; i < M_COUNT; i++) {
        metrics_clear(m, (enum metric_id)i);
        free(m->fam[i].series);
    }
    free(m->text);
    memset(m, 0, sizeof(*m));
}

static bool metrics_labels_equal(const struct metric_series *s, size_t n,
                                 const char *const *labels)
{
    for (size_t i = 0; i < n; i++)
        if (strncmp(s->labels[i], labels[i], METRICS_MAX_LABEL) != 0)
            return false;
    return true;
}

/* Finds or makes the series for `labels`. */
static struct metric_series *
metrics_series(struct metrics *m, enum metric_id id, const char *const *labels)
{
    static const char *const other[METRICS_MAX_LABELS + 1] = {"other", "other",
                                                              "other", NULL};
    struct metric_family *f = &m->fam[id];
    size_t n = metrics_nlabels(id);

    /* The call gives exactly the table's label values. */
    assert(n == 0 ? labels == NULL || labels[0] == NULL
                  : labels != NULL && labels[n] == NULL);
    for (size_t i = 0; i < n; i++)
        assert(labels[i] != NULL);

    for (;;) {
        for (size_t i = 0; i < f->nseries; i++)
            if (metrics_labels_equal(&f->series[i], n, labels))
                return &f->series[i];
        if (f->nseries < METRICS_MAX_SERIES - 1 || labels == other)
            break;
        labels = other; /* over the bound: one catch-all series */
    }
    if (f->nseries == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 8;
        f->series = xrealloc(f->series, f->cap * sizeof(*f->series));
    }
    struct metric_series *s = &f->series[f->nseries++];
    memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < n; i++)
        s->labels[i] = metrics_strndup(labels[i], METRICS_MAX_LABEL);
    if (defs[id].type == MT_HISTOGRAM)
        s->buckets = xcalloc(NBUCKETS, sizeof(*s->buckets));
    return s;
}

void metrics_count(struct metrics *m, enum metric_id id,
                   const char *const *labels, double n)
{
    assert(defs[id].type != MT_HISTOGRAM);
    metrics_series(m, id, labels)->value += n;
}

void metrics_set(struct metrics *m, enum metric_id id,
                 const char *const *labels, double v)
{
    assert(defs[id].type != MT_HISTOGRAM);
    metrics_series(m, id, labels)->value = v;
}

void metrics_observe(struct metrics *m, enum metric_id id,
                     const char *const *labels, double v)
{
    assert(defs[id].type == MT_HISTOGRAM);
    struct metric_series *s = metrics_series(m, id, labels);
    s->count++;
    s->value += v;
    for (size_t i = 0; i < NBUCKETS; i++) {
        if (v <= latency_buckets[i]) {
            s->buckets[i]++;
            break;
        }
    }
}

double metrics_value(const struct metrics *m, enum metric_id id,
                     const char *const *labels)
{
    const struct metric_family *f = &m->fam[id];
    size_t n = metrics_nlabels(id);

    for (size_t i = 0; i < f->nseries; i++)
        if (metrics_labels_equal(&f->series[i], n, labels))
            return defs[id].type == MT_HISTOGRAM ? (double)f->series[i].count
                                                 : f->series[i].value;
    return -1;
}

/* Appends to the render buffer; grows it as needed. */
static void metrics_printf(struct metrics *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void metrics_printf(struct metrics *m, const char *fmt, ...)
{
    va_list ap;

    for (;;) {
        size_t room = m->text_cap - m->text_len;
        va_start(ap, fmt);
        int n = vsnprintf(m->text + m->text_len, room, fmt, ap);
        va_end(ap);
        assert(n >= 0);
        if ((size_t)n < room) {
            m->text_len += (size_t)n;
            return;
        }
        m->text_cap = m->text_cap * 2 + (size_t)n + 1;
        m->text = xrealloc(m->text, m->text_cap);
    }
}

/* Appends a label value escaped as the text format wants: \\, \" and \n. */
static void metrics_put_label(struct metrics *m, const char *name,
                              const char *value)
{
    char buf[METRICS_MAX_LABEL * 2 + 1];
    size_t o = 0;

    for (const char *p = value; *p != '\0'; p++) {
        if (*p == '\\' || *p == '"') {
            buf[o++] = '\\';
            buf[o++] = *p;
        } else if (*p == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else {
            buf[o++] = *p;
        }
    }
    buf[o] = '\0';
    metrics_printf(m, "%s=\"%s\"", name, buf);
}

/* Appends `{a="x",b="y"` plus `extra` (e.g. `le="0.5"`) and `}`; nothing
 * when there are no labels at all. */
static void metrics_put_labels(struct metrics *m, enum metric_id id,
                               const struct metric_series *s, const char *extra)
{
    size_t n = metrics_nlabels(id);

    if (n == 0 && extra == NULL)
        return;
    metrics_printf(m, "{");
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            metrics_printf(m, ",");
        metrics_put_label(m, defs[id].labels[i], s->labels[i]);
    }
    if (extra != NULL)
        metrics_printf(m, "%s%s", n > 0 ? "," : "", extra);
    metrics_printf(m, "}");
}

/* Prints a sample value: integers without a fraction, others with enough
 * digits to read back. */
static void metrics_put_value(struct metrics *m, double v)
{
    if (v == (double)(long long)v && v > -1e15 && v < 1e15)
        metrics_printf(m, " %lld\n", (long long)v);
    else
        metrics_printf(m, " %.9g\n", v);
}

const char *metrics_render(struct metrics *m)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};

    m->text_len = 0;
    if (m->text_cap == 0) {
        m->text_cap = 8192;
        m->text = xmalloc(m->text_cap);
    }
    m->text[0] = '\0';
    for (size_t i = 0; i < M_COUNT; i++) {
        enum metric_id id = (enum metric_id)i;
        const struct metric_def *d = &defs[id];
        const struct metric_family *f = &m->fam[id];
        metrics_printf(m, "# HELP %s %s\n# TYPE %s %s\n", d->name, d->help,
                       d->name, types[d->type]);
        /* A metric without labels always has its one sample: a dashboard
         * then sees 0 rather than nothing. */
        if (f->nseries == 0 && metrics_nlabels(id) == 0 &&
            d->type != MT_HISTOGRAM)
            metrics_printf(m, "%s 0\n", d->name);
        for (size_t j = 0; j < f->nseries; j++) {
            const struct metric_series *s = &f->series[j];
            if (d->type != MT_HISTOGRAM) {
                metrics_printf(m, "%s", d->name);
                metrics_put_labels(m, id, s, NULL);
                metrics_put_value(m, s->value);
                continue;
            }
            uint64_t cum = 0;
            char le[48];
            for (size_t b = 0; b < NBUCKETS; b++) {
                cum += s->buckets[b];
                snprintf(le, sizeof(le), "le=\"%g\"", latency_buckets[b]);
                metrics_printf(m, "%s_bucket", d->name);
                metrics_put_labels(m, id, s, le);
                metrics_printf(m, " %llu\n", (unsigned long long)cum);
            }
            metrics_printf(m, "%s_bucket", d->name);
            metrics_put_labels(m, id, s, "le=\"+Inf\"");
            metrics_printf(m, " %llu\n", (unsigned long long)s->count);
            metrics_printf(m, "%s_sum", d->name);
            metrics_put_labels(m, id, s, NULL);
            metrics_put_value(m, s->value);
            metrics_printf(m, "%s_count", d->name);
            metrics_put_labels(m, id, s, NULL);
            metrics_printf(m, " %llu\n", (unsigned long long)s->count);
        }
    }
    return m->text;
}

/* Sums one integer field over every broker of a statistics document. */
static double metrics_sum_brokers(json_t *brokers, const char *field)
{
    const char *key;
    json_t *b;
    double sum = 0;

    json_object_foreach(brokers, key, b)
    {
        json_t *v = json_object_get(b, field);
        if (json_is_integer(v))
            sum += (double)json_integer_value(v);
    }
    return sum;
}

int metrics_read_rdkafka_stats(struct metrics *m, const char *json)
{
    json_error_t jerr;
    json_t *root = json_loads(json, 0, &jerr);
    const char *type;

    if (root == NULL || !json_is_object(root) ||
        (type = json_string_value(json_object_get(root, "type"))) == NULL) {
        json_decref(root);
        return -1;
    }
    bool consumer = strcmp(type, "consumer") == 0;
    json_t *brokers = json_object_get(root, "brokers");
    if (json_is_object(brokers)) {
        static const char *const fields[][2] = {
            {"txerrs", "tx"}, {"rxerrs", "rx"}, {"req_timeouts", "timeout"}};
        for (size_t i = 0; i < 3; i++)
            metrics_set(m, M_KAFKA_BROKER_ERRORS, ML(type, fields[i][1]),
                        metrics_sum_brokers(brokers, fields[i][0]));
    }
    json_t *topics = json_object_get(root, "topics");
    if (consumer && json_is_object(topics)) {
        const char *tname, *pname;
        json_t *t, *p;
        double assigned = 0;
        metrics_clear(m, M_KAFKA_LAG);
        json_object_foreach(topics, tname, t)
        {
            json_t *parts = json_object_get(t, "partitions");
            json_object_foreach(parts, pname, p)
            {
                /* "-1" is librdkafka's internal unassigned partition; a
                 * partition not assigned here has no consumer_lag (-1). */
                json_t *lag = json_object_get(p, "consumer_lag");
                if (strcmp(pname, "-1") == 0 || !json_is_integer(lag) ||
                    json_integer_value(lag) < 0)
                    continue;
                metrics_set(m, M_KAFKA_LAG, ML(tname, pname),
                            (double)json_integer_value(lag));
                assigned++;
            }
        }
        metrics_set(m, M_KAFKA_ASSIGNED, NULL, assigned);
    }
    json_decref(root);
    return 0;
}

const char *metrics_http_class(long status)
{
    if (status == 429)
        return "429";
    if (status >= 200 && status < 300)
        return "2xx";
    if (status >= 300 && status < 400)
        return "3xx";
    if (status >= 400 && status < 500)
        return "4xx";
    if (status >= 500 && status < 600)
        return "5xx";
    return "error";
}
