/* tests/drills/test_kafka.c - a status topic that refuses kurir's writes
 * (its max.message.bytes below any event), then accepts them again. A
 * message too large for its topic is a refusal no retry can mend
 * (docs/worker.md, "When Kafka is away"): each job goes to the DLQ with
 * the reason, so none is lost or stuck; once the topic takes events again,
 * new jobs settle on it without a replica being restarted. (Refusals that
 * pass, such as a broker away, are produced again: worker.test_kafka_refusal
 * and the broker-restart drill.) */
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

Test(kafka, status_topic_refuses_then_accepts)
{
    struct drill_opts o = {.replicas = 0};
    size_t n = drill_size(20, 500);
    bool ok;

    drill_start(&d, "status topic refuses writes, then accepts", &o);
    /* Before any replica: the topic exists and takes 64-byte messages. */
    drill_topic_config(&d, d.s.topic_status, "max.message.bytes", "64");
    drill_replica(&d, 0, NULL);
    drill_replica(&d, 1, NULL);
    for (size_t j = 0; j < n; j++) {
        char num[32];
        snprintf(num, sizeof(num), "4678%07zu", j);
        drill_send(&d, "bulk-jojka", "refused", j, num, NULL, true);
    }
    /* The sends happen; their events cannot be kept: every job ends on
     * the DLQ, with the refusal as its reason. */
    POLL_UNTIL(ok, stack_standin_count(&d.s, "refused") >= (int)n, 30000);
    cr_expect(ok, "the sends did not reach the provider");
    cr_expect(eq(sz, drill_collect(&d, 60000), 0),
              "jobs whose events the topic refused were neither on the DLQ "
              "nor settled");
    cr_expect(eq(sz, drill_count_ever(&d, "submitted"), 0),
              "events arrived on a topic that refuses them");

    drill_topic_config(&d, d.s.topic_status, "max.message.bytes", "1048588");
    drill_fault_over(&d);
    for (size_t j = 0; j < n; j++) {
        char num[32];
        snprintf(num, sizeof(num), "4679%07zu", j);
        drill_send(&d, "bulk-jojka", "accepted", j, num, NULL, true);
    }
    drill_finish(&d, 90000,
                 "max.message.bytes 64 (DLQ), then 1 MB; no restart");
}
