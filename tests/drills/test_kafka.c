/* tests/drills/test_kafka.c - the Kafka broker restarted mid-run (a broker
 * of the drill's own: tests/run's shared one is never stopped), and a
 * status topic that refuses kurir's writes (its max.message.bytes below any
 * event), then accepts them again.
 *
 * The restart: two replicas work through sends the provider answers after
 * 1 s; the broker is stopped (SIGTERM, its controlled shutdown) with calls
 * in flight and more jobs queued at the drill's producer, held down,
 * started again on the same port and data; then the same with SIGKILL.
 * Every job settles, none is sent twice, no state moves back, and both
 * replicas recover by themselves, never restarted.
 *
 * The refusing topic: a
 * message too large for its topic is a refusal no retry can mend
 * (docs/worker.md, "When Kafka is away"): each job goes to the DLQ with
 * the reason, so none is lost or stuck; once the topic takes events again,
 * new jobs settle on it without a replica being restarted. (Refusals that
 * pass, such as a broker away, are produced again: worker.test_kafka_refusal
 * and the broker-restart drill.) */
#include <signal.h>
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

TestSuite(kafka, .fini = teardown, .timeout = 300);

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

/* `n` sends queued at the drill's producer (delivered when the broker
 * takes them), numbers from `base`. */
static void queue_sends(const char *tag, size_t n, unsigned base)
{
    char num[32];

    for (size_t j = 0; j < n; j++) {
        snprintf(num, sizeof(num), "4672%07u", base + (unsigned)j);
        drill_send_async(&d, "bulk-jojka", tag, j, num, NULL);
    }
}

/* One restart: sends in flight, the broker stopped with `sig` and held
 * down while more are queued (no replica may exit meanwhile), started
 * again. Returns how long the broker took to answer again (ms). */
static int64_t restart(int sig, const char *tag, size_t n, unsigned base,
                       pid_t pids[2])
{
    size_t before = drill_standin_requests(&d, "/websms/api/send");
    bool ok;

    queue_sends(tag, n, base);
    drill_flush(&d);
    POLL_UNTIL(ok,
               drill_standin_requests(&d, "/websms/api/send") >= before + n / 4,
               30000);
    cr_assert(ok, "%s: the sends did not reach the provider", tag);
    drill_kafka_stop(&d, sig);
    /* More jobs while the broker is away: the producer holds them. */
    char more[32];
    snprintf(more, sizeof(more), "%s-down", tag);
    queue_sends(more, n, base + 100000);
    POLL_UNTIL(ok, drill_replica_gone(&d, 0) || drill_replica_gone(&d, 1),
               8000);
    cr_assert(not(ok), "%s: a replica exited while the broker was away", tag);
    int64_t ms = drill_kafka_start(&d);
    drill_fault_over(&d);
    drill_flush(&d);
    for (size_t i = 0; i < 2; i++)
        cr_assert(eq(int, d.rep[i].pid, pids[i]), "replica %zu was restarted",
                  i);
    return ms;
}

Test(kafka, broker_restarted_mid_run)
{
    /* Final states: a recipient whose tracking was lost with the broker
     * would stay `submitted`. */
    struct drill_opts o = {.replicas = 2, .own_kafka = true, .final = true};
    size_t n = drill_size(30, 500);
    char note[256];

    drill_start(&d, "kafka broker restarted (TERM, then KILL)", &o);
    drill_wait_group(&d);
    pid_t pids[2] = {d.rep[0].pid, d.rep[1].pid};
    drill_standin(&d, "POST", "faults",
                  "{\"provider\": \"jojka\", \"path\": \"/websms/api/send\", "
                  "\"latency\": 1000}");

    int64_t term_ms = restart(SIGTERM, "term", n, 0, pids);
    size_t left = drill_collect(&d, 90000);
    cr_expect(eq(sz, left, 0), "after the SIGTERM restart, %zu unsettled",
              left);
    int64_t term_rec = d.recovery_ms;
    /* drill_finish asserts the SIGKILL phase; this one is told apart. A
     * job redelivered after the SIGKILL waits for its first owner's
     * unpublished `submitted` rather than saying it again after the
     * owner's copy and its `delivered` (worker/task.c). */
    cr_expect(eq(sz, d.regressions, 0), "after the SIGTERM restart: %s",
              d.first_regression);

    int64_t kill_ms = restart(SIGKILL, "kill", n, 200000, pids);
    snprintf(note, sizeof(note),
             "2 replicas, %zu+%zu jobs a restart; broker back in %.1f s "
             "(TERM), %.1f s (KILL); recovery after TERM %.1f s",
             n, n, (double)term_ms / 1000.0, (double)kill_ms / 1000.0,
             (double)term_rec / 1000.0);
    drill_finish(&d, 120000, note);
    for (size_t i = 0; i < 2; i++)
        cr_expect(not(drill_replica_gone(&d, i)), "replica %zu exited", i);
}
