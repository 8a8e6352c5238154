/* tests/drills/test_storm.c - provider storms through the stand-in's fault
 * injection (docs/standins.md, "Faults"): 20 % 5xx, timeouts and connection
 * resets after the provider acted, 429 with a short Retry-After, 429 with a
 * 24 h one on one provider while another keeps flowing, and a provider that
 * hangs. Every job settles, none is sent twice (a maybe-sent answer is
 * `unknown`, never retried), the replicas stay alive and in their group. */
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

TestSuite(storm, .fini = teardown, .timeout = 180);

/* `n` one-recipient sends of `account`, numbers from `base`; `expect`
 * false produces them without an expectation. */
static void sends(const char *account, const char *tag, size_t n, unsigned base,
                  bool expect)
{
    char num[32];

    for (size_t j = 0; j < n; j++) {
        snprintf(num, sizeof(num), "4674%07u", base + (unsigned)j);
        drill_send(&d, account, tag, j, num, NULL, expect);
    }
}

/* One storm: the faults for Jojka, n sends through them, then the faults
 * cleared (the storm is over) and the rest must settle. */
static void storm(const char *name, const char *faults)
{
    struct drill_opts o = {.replicas = 2};
    size_t n = drill_size(100, 2000);
    bool ok;

    drill_start(&d, name, &o);
    drill_standin(&d, "POST", "faults", faults);
    sends("bulk-jojka", "storm", n, 0, true);
    drill_collect(&d, drill_long() ? 60000 : 15000);
    for (size_t i = 0; i < d.nrep; i++) {
        POLL_UNTIL(ok, drill_get(&d, i, "/healthz", NULL) == 200, 5000);
        cr_expect(ok, "%s: replica %zu not healthy in the storm", name, i);
    }
    drill_standin(&d, "DELETE", "faults", NULL);
    drill_fault_over(&d);
    drill_finish(&d, 90000, faults);
}

Test(storm, error_5xx_20pct)
{
    storm("storm 20% 5xx",
          "{\"provider\": \"jojka\", \"path\": \"/websms/api/send\", "
          "\"error_5xx\": 0.2, "
          "\"status_5xx\": 502, \"seed\": 3}");
}

Test(storm, timeouts_after_acting)
{
    storm("storm 20% timeouts (acted)",
          "{\"provider\": \"jojka\", \"path\": \"/websms/api/send\", "
          "\"timeout\": 0.2, \"hold_ms\": 5000, "
          "\"process\": true, \"seed\": 4}");
}

Test(storm, resets_after_acting)
{
    storm("storm 20% resets (acted)",
          "{\"provider\": \"jojka\", \"path\": \"/websms/api/send\", "
          "\"reset\": "
          "0.2, \"process\": true, \"seed\": 5}");
}

Test(storm, throttle_429_short)
{
    storm("storm 20% 429, Retry-After 1 s",
          "{\"provider\": \"jojka\", \"path\": \"/websms/api/send\", "
          "\"throttle_429\": 0.2, "
          "\"retry_after\": 1, \"seed\": 6}");
}

Test(storm, hanging_provider)
{
    storm("provider hangs (answers after 10 min)",
          "{\"provider\": \"jojka\", \"path\": \"/websms/api/send\", "
          "\"latency\": 600000}");
}

/* A 24 h Retry-After on iP.1 parks every iP.1 unit; with in-flight room for
 * fewer than are parked and a 10 s max.poll.interval.ms, the replica must
 * stay in its group and Jojka's jobs keep flowing. */
Test(storm, throttle_429_24h_parks_without_leaving_the_group)
{
    static const char *const env[] = {
        "KURIR_MAX_IN_FLIGHT=16", "KURIR_KAFKA_PROP_MAX_POLL_INTERVAL_MS=10000",
        NULL};
    struct drill_opts o = {.replicas = 1, .env = env};

    drill_start(&d, "429 Retry-After 24 h on one provider", &o);
    drill_standin(&d, "POST", "faults",
                  "{\"provider\": \"ip1\", \"throttle_429\": 1.0, "
                  "\"retry_after\": 86400}");
    /* Parked for a day: produced, not expected to settle here. */
    sends("bulk-ip1", "held", 40, 5000, false);
    sends("bulk-jojka", "flow1", 20, 1000, true);
    cr_expect(eq(sz, drill_collect(&d, 30000), 0),
              "Jojka did not flow beside the parked iP.1 units");
    /* Twice max.poll.interval.ms with every in-flight place parked: the
     * poll loop must go on (librdkafka says when it did not). */
    bool left;
    POLL_UNTIL(left, support_proc_log_has(&d.rep[0], "maximum poll interval"),
               21000);
    cr_expect(not(left), "the replica left its group (max.poll.interval.ms)");
    drill_fault_over(&d);
    sends("bulk-jojka", "flow2", 20, 2000, true);
    drill_finish(&d, 30000, "iP.1 parked 24 h, Jojka flowing; in group");
}
