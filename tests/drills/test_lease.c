/* tests/drills/test_lease.c - a unit that outlives its claim lease. Two
 * replicas with a 3 s KURIR_CLAIM_LEASE_MS claim scheduled sends that fall
 * due a few seconds after they are produced; the provider answers each
 * after 7 s, more than two leases. The replica that claimed a send extends
 * its lease every second (a third of it) while the call runs, so the other
 * replica never claims it again: each recipient is sent once, the stand-in
 * sees one request per send, no recipient's `submitted` is said twice (a
 * second claim finds the mark busy, waits for the first and says its
 * outcome again), and no replica finds a lease of its own taken
 * (kurir_claim_leases_lost_total). */
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

TestSuite(lease, .fini = teardown, .timeout = 180);

Test(lease, a_unit_outliving_its_lease_is_claimed_once)
{
    /* The call must be allowed to take 7 s; a mark is stale only after
     * the call's timeout, so a second claim would find it fresh: the
     * request count and the lost-lease counter say whether one happened. */
    static const char *const env[] = {"KURIR_CLAIM_LEASE_MS=3000",
                                      "KURIR_HTTP_TIMEOUT_MS=9000",
                                      "KURIR_MARK_STALE_MS=10000", NULL};
    struct drill_opts o = {.replicas = 2, .env = env};
    size_t n = drill_size(8, 64);
    char at[96], num[32];
    bool ok;

    drill_start(&d, "unit outlives its claim lease", &o);
    drill_wait_group(&d);
    drill_standin(&d, "POST", "faults",
                  "{\"provider\": \"jojka\", \"path\": \"/websms/api/send\", "
                  "\"latency\": 7000}");
    drill_send_at(at, sizeof(at), 4000);
    for (size_t j = 0; j < n; j++) {
        snprintf(num, sizeof(num), "4677%07zu", j);
        drill_send(&d, "bulk-jojka", "leased", j, num, at, true);
    }
    /* Every send is claimed and called; the calls are held 7 s. */
    POLL_UNTIL(ok, drill_standin_requests(&d, "/websms/api/send") >= n, 30000);
    cr_assert(ok, "only %zu of %zu scheduled sends reached the provider",
              drill_standin_requests(&d, "/websms/api/send"), n);
    drill_fault_over(&d);
    drill_finish(&d, 60000, "lease 3 s, answers after 7 s, 2 replicas");
    size_t calls = drill_standin_requests(&d, "/websms/api/send");
    cr_expect(eq(sz, calls, n), "%zu provider calls for %zu sends", calls, n);
    /* A second claim finds the recipient's mark busy, waits, then says
     * its recorded `submitted` again. */
    size_t again = drill_count_repeated(&d, "submitted");
    cr_expect(eq(sz, again, 0), "%zu sends were claimed again", again);
    double lost = drill_metric_sum(&d, "kurir_claim_leases_lost_total", NULL);
    cr_expect(eq(dbl, lost, 0.0), "%.0f claims were taken over", lost);
    for (size_t i = 0; i < d.nrep; i++)
        cr_expect(not(drill_replica_gone(&d, i)), "replica %zu exited", i);
}
