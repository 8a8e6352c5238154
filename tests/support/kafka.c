/* tests/support/kafka.c - a test's own Kafka client. */
#include "tests/support/kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

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
    char err[256];
    rd_kafka_t *rk =
        rd_kafka_new(RD_KAFKA_PRODUCER, tk_conf(brokers), err, sizeof(err));

    cr_assert(rk != NULL, "producer: %s", err);
    rd_kafka_resp_err_t kerr = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
        RD_KAFKA_V_VALUE((void *)value, len),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    cr_assert(kerr == RD_KAFKA_RESP_ERR_NO_ERROR, "produce: %s",
              rd_kafka_err2str(kerr));
    kerr = rd_kafka_flush(rk, 30000);
    cr_assert(kerr == RD_KAFKA_RESP_ERR_NO_ERROR, "flush: %s",
              rd_kafka_err2str(kerr));
    rd_kafka_destroy(rk);
}

void tk_reader_open(struct tk_reader *r, const char *brokers, const char *topic)
{
    rd_kafka_conf_t *conf = tk_conf(brokers);
    char err[256];
    char group[64];

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
        if (tk_matches(ev, want))
            return ev;
        if (seen != NULL)
            json_array_append(seen, ev);
        json_decref(ev);
    }
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
