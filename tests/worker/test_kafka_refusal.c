/* tests/worker/test_kafka_refusal.c - an event Kafka refuses is produced
 * again until Kafka takes it; only a refusal no retry can change reaches
 * its owner (worker/kafka.h). Against librdkafka's mock cluster, which
 * injects the broker's refusals. */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "tests/support/support.h"
#include "worker/config.h"
#include "worker/kafka.h"
#include "worker/metrics.h"

/* The Kafka protocol's key of Produce requests. */
#define API_PRODUCE 0

static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mock;
static struct config cfg;
static struct metrics metrics;
static struct kafka *kafka;

struct delivered {
    int calls;
    rd_kafka_resp_err_t err;
};

static void on_delivered(void *msg_opaque, rd_kafka_resp_err_t err,
                         void *opaque)
{
    struct delivered *d = msg_opaque;

    (void)opaque;
    d->calls++;
    d->err = err;
}

static void setup(void)
{
    char errstr[512], brokers[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof(errstr));
    mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    cr_assert(ne(ptr, mock_rk, NULL), "%s", errstr);
    mock = rd_kafka_mock_cluster_new(mock_rk, 1);
    cr_assert(ne(ptr, mock, NULL));
    rd_kafka_mock_topic_create(mock, "st", 1, 1);
    snprintf(brokers, sizeof(brokers), "KURIR_KAFKA_BROKERS=%s",
             rd_kafka_mock_cluster_bootstraps(mock));
    char *envp[] = {brokers, "KURIR_TOPIC_STATUS=st",
                    "KURIR_KAFKA_PROP_TOPIC_METADATA_REFRESH_INTERVAL_MS=500",
                    NULL};
    int ret = config_load(&cfg, envp, errstr, sizeof(errstr));
    cr_assert(eq(int, ret, 0), "%s", errstr);
    metrics_init(&metrics, "test");
    ret = kafka_new(&kafka, &cfg, on_delivered, NULL, errstr, sizeof(errstr));
    cr_assert(eq(int, ret, 0), "%s", errstr);
    kafka_set_metrics(kafka, &metrics);
}

static void teardown(void)
{
    kafka_free(kafka, 0);
    metrics_free(&metrics);
    config_cleanup(&cfg);
    rd_kafka_mock_cluster_destroy(mock);
    rd_kafka_destroy(mock_rk);
}

TestSuite(refusal, .init = setup, .fini = teardown, .timeout = 60);

static void produce(struct delivered *d)
{
    char errstr[256];
    int ret = kafka_produce(kafka, KAFKA_STATUS, "job", 3, "{}", 2, NULL, d,
                            errstr, sizeof(errstr));
    cr_assert(eq(int, ret, 0), "%s", errstr);
}

/* Serves the producer until the event's owner heard of it. */
static bool serve_until_delivered(const struct delivered *d, int timeout_ms)
{
    bool done;

    POLL_UNTIL(done, (kafka_serve(kafka), d->calls > 0), timeout_ms);
    return done;
}

/* Issue 9 #5: a topic that refuses writes (an ACL) and then takes them:
 * the event is produced again until it is in, and the owner hears once,
 * of success. */
Test(refusal, refused_event_is_produced_again_until_taken)
{
    struct delivered d = {0};

    rd_kafka_mock_push_request_errors(
        mock, API_PRODUCE, 3, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
        RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
        RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    produce(&d);
    bool done = serve_until_delivered(&d, 30000);
    cr_assert(done, "the event never got in");
    cr_assert(eq(int, d.calls, 1));
    cr_assert(eq(int, d.err, RD_KAFKA_RESP_ERR_NO_ERROR), "%s",
              rd_kafka_err2str(d.err));
    double retries = metrics_value(&metrics, M_EVENT_RETRIES, ML("st"));
    cr_assert(eq(dbl, retries, 3.0));
    cr_assert(kafka_idle(kafka));
}

/* A refusal no retry changes (too large) reaches the owner at once, so
 * the job can take its DLQ path. */
Test(refusal, too_large_reaches_the_owner)
{
    struct delivered d = {0};

    rd_kafka_mock_push_request_errors(mock, API_PRODUCE, 1,
                                      RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    produce(&d);
    bool done = serve_until_delivered(&d, 30000);
    cr_assert(done, "the owner never heard");
    cr_assert(eq(int, d.err, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE), "%s",
              rd_kafka_err2str(d.err));
    cr_assert(kafka_err_is_permanent(d.err));
    cr_assert(le(dbl, metrics_value(&metrics, M_EVENT_RETRIES, ML("st")), 0));
}
