/* tests/drills/test_kill.c - a replica killed with SIGKILL at each stage of
 * a unit (worker/failpoint.h): after marking, after the provider's answer,
 * after recording, before the offset is stored; for single sends (Jojka,
 * one recipient a call), multi-recipient sends (iP.1, many a call) and a
 * campaign (Jojka). The killed replica comes back and a second joins; every
 * recipient must end final (delivered, or `failed` once reports are given
 * up on), nothing be sent twice, no state move backwards. */
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

TestSuite(kill, .fini = teardown, .timeout = 150);

enum kind { SINGLE, MULTI, CAMPAIGN };

/* Produces the kind's jobs; returns how many. */
static size_t kill_jobs(enum kind kind)
{
    char id[128], json[65536];
    char *to[512];
    char nums[512][32];

    for (size_t i = 0; i < 512; i++) {
        snprintf(nums[i], sizeof(nums[i]), "4670%07zu", 1000 + i);
        to[i] = nums[i];
    }
    if (kind == SINGLE) {
        size_t n = drill_size(30, 2000);
        for (size_t j = 0; j < n; j++) {
            char num[32];
            snprintf(num, sizeof(num), "4671%07zu", j);
            drill_send(&d, "bulk-jojka", "single", j, num, NULL, true);
        }
        return n;
    }
    size_t per = kind == MULTI ? 20 : drill_size(300, 500);
    size_t njobs = kind == MULTI ? drill_size(8, 100) : 1;
    for (size_t j = 0; j < njobs; j++) {
        size_t len;
        if (kind == MULTI) {
            snprintf(id, sizeof(id), "%s-multi-%zu", d.s.uniq, j);
            len = (size_t)snprintf(json, sizeof(json),
                                   "{\"id\": \"%s\", \"account\": "
                                   "\"bulk-ip1\", \"text\": \"multi %zu\", "
                                   "\"to\": [",
                                   id, j);
        } else {
            snprintf(id, sizeof(id), "%s-campaign-%zu", d.s.uniq, j);
            len = (size_t)snprintf(json, sizeof(json),
                                   "{\"id\": \"%s\", \"account\": "
                                   "\"bulk-jojka\", \"action\": \"create\", "
                                   "\"name\": \"drill\", \"text\": "
                                   "\"campaign %zu\", \"to\": [",
                                   id, j);
        }
        char *mine[512];
        for (size_t i = 0; i < per; i++) {
            /* Each job its own recipients. */
            snprintf(nums[i], sizeof(nums[i]), "4672%03u%04u",
                     (unsigned)(j % 1000), (unsigned)(i % 10000));
            mine[i] = nums[i];
            len += (size_t)snprintf(json + len, sizeof(json) - len, "%s\"%s\"",
                                    i ? "," : "", nums[i]);
        }
        snprintf(json + len, sizeof(json) - len, "]}");
        drill_job(&d, kind == MULTI ? d.s.topic_send : d.s.topic_campaign, id,
                  json, mine, per);
    }
    (void)to;
    return njobs;
}

static void kill_at(const char *stage, enum kind kind)
{
    static const char *const kinds[] = {"single", "multi", "campaign"};
    char name[64], fp[64], note[128];
    bool ok;

    snprintf(name, sizeof(name), "kill %s, %s", stage, kinds[kind]);
    /* The second hit: the first unit is under way (marked, or sent) when
     * the replica dies with another. A campaign is one unit here. */
    snprintf(fp, sizeof(fp), "KURIR_FAILPOINT=%s:%d", stage,
             kind == CAMPAIGN ? 1 : 2);
    const char *const env0[] = {fp, NULL};
    /* Every recipient to a final state: one nobody follows any more (a
     * redelivery that did not track what it said again) stays
     * `submitted` and fails the drill. */
    struct drill_opts o = {.replicas = 1, .env0 = env0, .final = true};
    drill_start(&d, name, &o);

    kill_jobs(kind);
    POLL_UNTIL(ok, drill_replica_gone(&d, 0), 60000);
    if (!ok)
        support_proc_log_dump(&d.rep[0]);
    cr_assert(ok, "%s: the failpoint never killed the replica", name);
    bool said = support_proc_log_has(&d.rep[0], "failpoint: ");
    cr_assert(said, "%s: the replica died, but not at its failpoint", name);
    drill_fault_over(&d);

    /* As Kubernetes would: the pod restarts; a second replica is there. */
    drill_replica(&d, 0, NULL);
    drill_replica(&d, 1, NULL);
    snprintf(note, sizeof(note), "2 replicas after the kill (%s)", fp + 16);
    drill_finish(&d, 90000, note);
}

Test(kill, after_mark_single)
{
    kill_at("after_mark", SINGLE);
}
Test(kill, after_mark_multi)
{
    kill_at("after_mark", MULTI);
}
Test(kill, after_mark_campaign)
{
    kill_at("after_mark", CAMPAIGN);
}
Test(kill, after_accept_single)
{
    kill_at("after_accept", SINGLE);
}
Test(kill, after_accept_multi)
{
    kill_at("after_accept", MULTI);
}
Test(kill, after_accept_campaign)
{
    kill_at("after_accept", CAMPAIGN);
}
Test(kill, after_record_single)
{
    kill_at("after_record", SINGLE);
}
Test(kill, after_record_multi)
{
    kill_at("after_record", MULTI);
}
Test(kill, after_record_campaign)
{
    kill_at("after_record", CAMPAIGN);
}
Test(kill, before_ack_single)
{
    kill_at("before_ack", SINGLE);
}
Test(kill, before_ack_multi)
{
    kill_at("before_ack", MULTI);
}
Test(kill, before_ack_campaign)
{
    kill_at("before_ack", CAMPAIGN);
}
