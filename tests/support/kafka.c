/* tests/support/kafka.c - a test's own Kafka client. */
#include "tests/support/kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/support/schema.h"
#include "tests/support/support.h"

void tk_unique(char *out, size_t out_size)
{
    static unsigned seq;
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(out, out_size, "t%dx%lx%u", (int)getpid(),
             (unsigned long)(ts.tv_sec * 1000 + ts.tv_nsec / 1000000) &
                 0xffffff,
             seq++);
}

static rd_kafka_conf_t *tk_conf(const char *brokers)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256];

    cr_assert(rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err,
                                sizeof(err)) == RD_KAFKA_CONF_OK,
              "%s", err);
    return conf;
}

void tk_produce(const char *brokers, const char *topic, const char *key,
                const void *value, size_t len)
{
    tk_produce_headers(brokers, topic, key, value, len, NULL);
}

void tk_produce_headers(const char *brokers, const char *topic, const char *key,
                        const void *value, size_t len,
                        const char *const *headers)
{
    char err[256];
    rd_kafka_t *rk =
        rd_kafka_new(RD_KAFKA_PRODUCER, tk_conf(brokers), err, sizeof(err));
    rd_kafka_headers_t *hdrs = NULL;

    cr_assert(rk != NULL, "producer: %s", err);
    if (headers != NULL) {
        hdrs = rd_kafka_headers_new(4);
        for (size_t i = 0; headers[i] != NULL && headers[i + 1] != NULL; i += 2)
            rd_kafka_header_add(hdrs, headers[i], -1, headers[i + 1], -1);
    }
    rd_kafka_resp_err_t kerr = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
        RD_KAFKA_V_VALUE((void *)value, len),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
        RD_KAFKA_V_END);
    cr_assert(kerr == RD_KAFKA_RESP_ERR_NO_ERROR, "produce: %s",
              rd_kafka_err2str(kerr));
    kerr = rd_kafka_flush(rk, 30000);
    cr_assert(kerr == RD_KAFKA_RESP_ERR_NO_ERROR, "flush: %s",
              rd_kafka_err2str(kerr));
    rd_kafka_destroy(rk);
}

/* The docs/schemas/ name of the events on `topic`, by its last part. */
static const char *tk_schema_of(const char *topic)
{
    static const char *const names[][2] = {
        {".status", "status"},
        {".replies", "reply"},
        {".results", "results"},
        {".latest", "latest"},
    };
    size_t len = strlen(topic);

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t n = strlen(names[i][0]);
        if (len >= n && strcmp(topic + len - n, names[i][0]) == 0)
            return names[i][1];
    }
    return NULL;
}

/* The events of open readers, reachable from here: a test that fails
 * before closing its reader does not also report them as leaked. */
static json_t *tk_reads[32];

static void tk_reads_keep(json_t *read, bool keep)
{
    for (size_t i = 0; i < sizeof(tk_reads) / sizeof(tk_reads[0]); i++) {
        if (keep ? tk_reads[i] == NULL : tk_reads[i] == read) {
            tk_reads[i] = keep ? read : NULL;
            return;
        }
    }
}

void tk_reader_open(struct tk_reader *r, const char *brokers, const char *topic)
{
    rd_kafka_conf_t *conf = tk_conf(brokers);
    char err[256];
    char group[64];

    snprintf(r->topic, sizeof(r->topic), "%s", topic);
    r->schema = tk_schema_of(topic);
    r->read = r->schema != NULL ? json_array() : NULL;
    if (r->read != NULL)
        tk_reads_keep(r->read, true);

    tk_unique(group, sizeof(group));
    rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err));
    rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", err, sizeof(err));
    rd_kafka_conf_set(conf, "allow.auto.create.topics", "true", err,
                      sizeof(err));
    r->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    cr_assert(r->rk != NULL, "consumer: %s", err);
    rd_kafka_poll_set_consumer(r->rk);
    rd_kafka_topic_partition_list_t *subs =
        rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(subs, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t kerr = rd_kafka_subscribe(r->rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    cr_assert(kerr == RD_KAFKA_RESP_ERR_NO_ERROR, "subscribe: %s",
              rd_kafka_err2str(kerr));
}

void tk_reader_close(struct tk_reader *r)
{
    if (r->rk == NULL)
        return;
    rd_kafka_consumer_close(r->rk);
    rd_kafka_destroy(r->rk);
    r->rk = NULL;
    if (r->read != NULL) {
        int bad = schema_check(r->schema, r->read);
        size_t n = json_array_size(r->read);
        tk_reads_keep(r->read, false);
        json_decref(r->read);
        r->read = NULL;
        cr_assert(bad == 0,
                  "%zu event(s) read from %s: %s docs/schemas/ (schema %s; "
                  "the validator's lines are above)",
                  n, r->topic,
                  bad < 0 ? "could not check them against" : "do not all match",
                  r->schema);
    }
}

rd_kafka_message_t *tk_reader_next(struct tk_reader *r, int timeout_ms)
{
    int64_t deadline = support_now_ms() + timeout_ms;

    for (;;) {
        int64_t left = deadline - support_now_ms();
        if (left <= 0)
            return NULL;
        rd_kafka_message_t *rkm =
            rd_kafka_consumer_poll(r->rk, left > 200 ? 200 : (int)left);
        if (rkm == NULL)
            continue;
        if (rkm->err == RD_KAFKA_RESP_ERR_NO_ERROR)
            return rkm;
        /* Topic not yet created and the like: keep waiting. */
        rd_kafka_message_destroy(rkm);
    }
}

static bool tk_matches(json_t *ev, const char *const *want)
{
    for (size_t i = 0; want[i] != NULL; i += 2) {
        json_t *v = json_object_get(ev, want[i]);
        if (!json_is_string(v) || strcmp(json_string_value(v), want[i + 1]))
            return false;
    }
    return true;
}

json_t *tk_reader_wait_json(struct tk_reader *r, const char *const *want,
                            int timeout_ms, json_t *seen)
{
    int64_t deadline = support_now_ms() + timeout_ms;

    for (;;) {
        int64_t left = deadline - support_now_ms();
        if (left <= 0)
            return NULL;
        rd_kafka_message_t *rkm = tk_reader_next(r, (int)left);
        if (rkm == NULL)
            return NULL;
        json_t *ev = json_loadb(rkm->payload, rkm->len, 0, NULL);
        rd_kafka_message_destroy(rkm);
        if (ev == NULL)
            continue;
        if (r->read != NULL)
            json_array_append(r->read, ev);
        if (tk_matches(ev, want))
            return ev;
        if (seen != NULL)
            json_array_append(seen, ev);
        json_decref(ev);
    }
}

json_t *tk_reader_wait_kept(struct tk_reader *r, json_t *kept,
                            const char *const *want, int timeout_ms)
{
    size_t i;
    json_t *ev;

    json_array_foreach(kept, i, ev)
    {
        if (tk_matches(ev, want))
            return json_incref(ev);
    }
    ev = tk_reader_wait_json(r, want, timeout_ms, kept);
    if (ev != NULL)
        json_array_append(kept, ev);
    return ev;
}

char *tk_header(const rd_kafka_message_t *rkm, const char *name)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *value;
    size_t size;

    if (rd_kafka_message_headers(rkm, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return NULL;
    if (rd_kafka_header_get_last(hdrs, name, &value, &size) !=
        RD_KAFKA_RESP_ERR_NO_ERROR)
        return NULL;
    char *s = malloc(size + 1);
    cr_assert(s != NULL);
    memcpy(s, value, size);
    s[size] = '\0';
    return s;
}
