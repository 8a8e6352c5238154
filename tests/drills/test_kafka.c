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
    /* The sends happen; their events cannot be kept. */
    POLL_UNTIL(ok, stack_standin_count(&d.s, "refused") >= (int)n, 30000);
    cr_expect(ok, "the sends did not reach the provider");
    cr_expect(eq(sz, drill_collect(&d, 3000), n),
              "events arrived on a topic that refuses them");

    drill_topic_config(&d, d.s.topic_status, "max.message.bytes", "1048588");
    drill_fault_over(&d);
    drill_finish(&d, 90000, "max.message.bytes 64, then 1 MB; no restart");
}
