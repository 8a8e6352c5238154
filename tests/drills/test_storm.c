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
 * cleared (the storm is over) and the rest must end final (those left
 * `unknown` by the storm with `failed`, `no_report`, once reports are
 * given up on). */
static void storm(const char *name, const char *faults)
{
    struct drill_opts o = {.replicas = 2, .final = true};
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
    /* Watched until final: the stored retry is claimable early, but its
     * markers stay this unit's until Kafka has its `retrying`, so a claim
     * finds them busy and its `submitted` cannot overtake it. */
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

/* Adds `n` contacts to the Jojka address book of bulk-jojka, in `group`
 * (the stand-in's own API, as a customer would fill it). */
static void group_members(const char *group, size_t n)
{
    char url[160], body[256];
    char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded", NULL};

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/websms/api/add_contact",
             d.s.standin.port);
    for (size_t j = 0; j < n; j++) {
        struct support_http r;
        snprintf(body, sizeof(body),
                 "API_key=bulk-key&msisdn=4675%07zu&name=m%zu&group=%s", j, j,
                 group);
        cr_assert(eq(
            int, support_http(&r, "POST", url, hdrs, body, strlen(body)), 0));
        bool ok = r.status == 200 && strstr(r.body, "error") == NULL;
        cr_assert(ok, "add_contact: HTTP %ld %s", r.status, r.body);
        support_http_cleanup(&r);
    }
}

/* The states the job-level recipient ("") of job `id` went through. */
static json_t *job_states(const char *id)
{
    return json_object_get(json_object_get(d.events, id), "");
}

static bool job_had(const char *id, const char *state)
{
    size_t i;
    json_t *s;

    json_array_foreach(job_states(id), i, s)
    {
        if (strcmp(json_string_value(s), state) == 0)
            return true;
    }
    return false;
}

/* Issue 9 #2 under a storm: campaigns sent only to a group (no `to`) are
 * one job-level call each; every call times out after the stand-in acted
 * on it. Each group member gets each campaign once, every campaign ends
 * `unknown` (maybe sent), and none is called again, during the storm or
 * after. */
Test(storm, group_only_campaign_timeouts_are_not_retried)
{
    struct drill_opts o = {.replicas = 2, .final = true};
    size_t members = drill_size(20, 200), n = drill_size(3, 20);
    char id[160], json[512];
    bool ok;

    drill_start(&d, "group-only campaigns, every answer lost", &o);
    group_members("storm", members);
    drill_standin(&d, "POST", "faults",
                  "{\"provider\": \"jojka\", \"path\": "
                  "\"/websms/api/add_campaign\", \"timeout\": 1.0, "
                  "\"hold_ms\": 1500, \"process\": true}");
    for (size_t j = 0; j < n; j++) {
        snprintf(id, sizeof(id), "%s-grp-%zu", d.s.uniq, j);
        snprintf(json, sizeof(json),
                 "{\"id\": \"%s\", \"account\": \"bulk-jojka\", \"action\": "
                 "\"create\", \"name\": \"storm %zu\", \"groups\": "
                 "[\"storm\"], \"text\": \"group storm %zu\"}",
                 id, j, j);
        drill_job(&d, d.s.topic_campaign, id, json, NULL, 0);
    }
    cr_expect(eq(sz, drill_collect(&d, 60000), 0),
              "the group campaigns did not settle in the storm");
    /* Given time to retry (a retry comes within seconds), none is. */
    POLL_UNTIL(ok, drill_standin_requests(&d, "/websms/api/add_campaign") > n,
               8000);
    cr_expect(not(ok), "a group campaign was called again");
    drill_standin(&d, "DELETE", "faults", NULL);
    drill_fault_over(&d);
    drill_finish(&d, 30000, "groups only, 100% timeouts after acting");

    json_t *msgs = drill_messages(&d, "bulk-jojka");
    cr_expect(eq(sz, json_array_size(msgs), members * n),
              "%zu messages for %zu members x %zu campaigns",
              json_array_size(msgs), members, n);
    json_decref(msgs);
    size_t calls = drill_standin_requests(&d, "/websms/api/add_campaign");
    cr_expect(eq(sz, calls, n), "%zu calls for %zu campaigns", calls, n);
    for (size_t j = 0; j < n; j++) {
        snprintf(id, sizeof(id), "%s-grp-%zu", d.s.uniq, j);
        cr_expect(job_had(id, "unknown"), "%s never ended unknown", id);
        cr_expect(not(job_had(id, "retrying")), "%s was retried", id);
    }
}
