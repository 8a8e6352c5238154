/* tests/drills/test_kafka.c - a status topic that refuses kurir's writes
 * (its max.message.bytes below any event), then accepts them again: no job
 * may be lost meanwhile, and once the topic takes events every job settles
 * without a replica being restarted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "tests/drills/drill.h"

static struct drill d;

static void teardown(void)
{
    drill_stop(&d);
}

TestSuite(kafka, .fini = teardown, .timeout = 180);

/* Runs one admin call on a fresh client and waits for its result. */
static rd_kafka_event_t *admin_wait(rd_kafka_t *rk, rd_kafka_queue_t *q,
                                    rd_kafka_event_type_t type)
{
    for (int i = 0; i < 300; i++) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 100);
        if (ev == NULL)
            continue;
        if (rd_kafka_event_type(ev) == type)
            return ev;
        rd_kafka_event_destroy(ev);
    }
    (void)rk;
    return NULL;
}

/* Creates `topic` (4 partitions) with max.message.bytes `max`, or sets it
 * on the topic that exists (create == false, or it is there already). */
static void topic_max_bytes(const char *topic, const char *max, bool create)
{
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", d.s.brokers, err, sizeof(err));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    cr_assert(rk != NULL, "admin client: %s", err);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_event_t *ev;
    const char *what = NULL;
    char why[512] = "";
    bool exists = false;

    if (create) {
        rd_kafka_NewTopic_t *nt =
            rd_kafka_NewTopic_new(topic, 4, 1, err, sizeof(err));
        cr_assert(nt != NULL, "%s", err);
        rd_kafka_NewTopic_set_config(nt, "max.message.bytes", max);
        rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
        ev = admin_wait(rk, q, RD_KAFKA_EVENT_CREATETOPICS_RESULT);
        rd_kafka_NewTopic_destroy(nt);
        what = "create";
    } else {
        rd_kafka_ConfigResource_t *cr =
            rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
        rd_kafka_ConfigResource_set_config(cr, "max.message.bytes", max);
        rd_kafka_AlterConfigs(rk, &cr, 1, NULL, q);
        ev = admin_wait(rk, q, RD_KAFKA_EVENT_ALTERCONFIGS_RESULT);
        rd_kafka_ConfigResource_destroy(cr);
        what = "alter";
    }
    bool ok = ev != NULL && rd_kafka_event_error(ev) == 0;
    if (ev != NULL && !ok)
        snprintf(why, sizeof(why), "%s", rd_kafka_event_error_string(ev));
    if (ev != NULL && ok && create) {
        size_t n;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(
                rd_kafka_event_CreateTopics_result(ev), &n);
        for (size_t i = 0; i < n; i++) {
            rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
            if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                exists = true;
            } else if (e != 0) {
                ok = false;
                snprintf(why, sizeof(why), "%s",
                         rd_kafka_topic_result_error_string(res[i]));
            }
        }
    }
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    cr_assert(ok, "%s topic %s: %s", what, topic, ev ? why : "no answer");
    if (exists) /* a reader's subscription made it first */
        topic_max_bytes(topic, max, false);
}

Test(kafka, status_topic_refuses_then_accepts)
{
    struct drill_opts o = {.replicas = 0};
    size_t n = drill_size(20, 500);
    bool ok;

    drill_start(&d, "status topic refuses writes, then accepts", &o);
    /* Before any replica: the topic exists and takes 64-byte messages. */
    topic_max_bytes(d.s.topic_status, "64", true);
    drill_replica(&d, 0, NULL);
    drill_replica(&d, 1, NULL);
    for (size_t j = 0; j < n; j++) {
        char id[128], num[32], json[512];
        snprintf(id, sizeof(id), "%s-refused-%zu", d.s.uniq, j);
        snprintf(num, sizeof(num), "4678%07zu", j);
        snprintf(json, sizeof(json),
                 "{\"id\": \"%s\", \"account\": \"bulk-jojka\", \"to\": "
                 "[\"%s\"], \"text\": \"refused %zu\"}",
                 id, num, j);
        char *one[] = {num};
        drill_job(&d, d.s.topic_send, id, json, one, 1);
    }
    /* The sends happen; their events cannot be kept. */
    POLL_UNTIL(ok, stack_standin_count(&d.s, "refused") >= (int)n, 30000);
    cr_expect(ok, "the sends did not reach the provider");
    cr_expect(eq(sz, drill_collect(&d, 3000), n),
              "events arrived on a topic that refuses them");

    topic_max_bytes(d.s.topic_status, "1048588", false);
    drill_fault_over(&d);
    drill_finish(&d, 90000, "max.message.bytes 64, then 1 MB; no restart");
}
