/* tests/drills/test_redis.c - the drill's own Redis (AOF) stopped and
 * started under load: stopped for 10 s while 64 slow provider calls are in
 * flight (nothing sent again), restarted with its AOF (nothing lost, the
 * scheduled sends too), restarted empty (kurir notices and says so). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "tests/drills/drill.h"
#include "tests/support/metrics.h"

static struct drill d;

static void teardown(void)
{
    drill_stop(&d);
}

TestSuite(redis, .fini = teardown, .timeout = 180);

/* `n` one-recipient sends of bulk-jojka, numbers from `base`; `send_at`
 * NULL or an RFC 3339 time. */
static void sends(const char *tag, size_t n, unsigned base, const char *send_at)
{
    char num[32], at[96] = "";

    if (send_at != NULL)
        snprintf(at, sizeof(at), ", \"send_at\": \"%s\"", send_at);
    for (size_t j = 0; j < n; j++) {
        snprintf(num, sizeof(num), "4673%07u", base + (unsigned)j);
        drill_send(&d, "bulk-jojka", tag, j, num, at, true);
    }
}

/* An RFC 3339 UTC time `secs` from now. */
static void rfc3339_in(char *out, size_t size, int secs)
{
    time_t t = time(NULL) + secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Requests the stand-in has seen on the Jojka send path. */
static size_t standin_sends(void)
{
    return drill_standin_requests(&d, "/websms/api/send");
}

/* Reads events for a moment; true once `n` recipients are `scheduled`. */
static bool scheduled_at_least(size_t n)
{
    drill_collect(&d, 100);
    return drill_count_ever(&d, "scheduled") >= n;
}

static bool all_ready(long want)
{
    for (size_t i = 0; i < d.nrep; i++)
        if (drill_get(&d, i, "/readyz", NULL) != want)
            return false;
    return true;
}

Test(redis, stopped_10s_with_64_slow_calls_in_flight)
{
    /* Room for the 2 s answers on a loaded machine: a timeout is `unknown`. */
    static const char *const env[] = {"KURIR_HTTP_TIMEOUT_MS=8000",
                                      "KURIR_MARK_STALE_MS=10000", NULL};
    struct drill_opts o = {.replicas = 2, .own_redis = true, .env = env};
    size_t n = 64;
    bool ok;

    drill_start(&d, "redis stopped 10 s, 64 slow calls", &o);
    drill_standin(&d, "POST", "faults",
                  "{\"provider\": \"jojka\", \"latency\": 2000}");
    /* The replicas' requests time out after 3 s: 2 s answers get through. */
    sends("slow", n, 0, NULL);
    POLL_UNTIL(ok, standin_sends() >= n, 30000);
    cr_assert(ok, "only %zu of %zu calls reached the provider", standin_sends(),
              n);

    drill_redis_stop(&d);
    /* Ten seconds without Redis: the answers come back meanwhile and
     * cannot be recorded. Not one call may be made again. */
    POLL_UNTIL(ok, standin_sends() > n, 10000);
    cr_assert(not(ok), "a call was made again while Redis was away");
    drill_redis_start(&d, true);
    drill_fault_over(&d);
    POLL_UNTIL(ok, all_ready(200), 30000);
    cr_expect(ok, "the replicas did not become ready again");
    drill_finish(&d, 60000, "2 replicas; jojka answers after 2 s");
    cr_expect(eq(sz, standin_sends(), n), "calls: %zu for %zu sends",
              standin_sends(), n);
}

Test(redis, restarted_with_aof_loses_nothing)
{
    struct drill_opts o = {.replicas = 2, .own_redis = true};
    char at[64];
    bool ok;
    size_t now = drill_size(200, 5000), later = drill_size(50, 500);

    drill_start(&d, "redis restarted with its AOF", &o);
    /* Due in 30 s: held in Redis when it dies, their offsets stored (a
     * loaded machine takes 15 s and more to get there). */
    rfc3339_in(at, sizeof(at), 30);
    sends("held", later, 100000, at);
    POLL_UNTIL(ok, scheduled_at_least(later), 30000);
    cr_assert(ok, "the held sends were not all scheduled");
    int64_t held_at = support_now_ms();
    sends("now", now, 0, NULL);
    drill_redis_stop(&d);
    POLL_UNTIL(ok, all_ready(503), 15000);
    cr_expect(ok, "/readyz did not say Redis was away");
    drill_redis_start(&d, true);
    drill_fault_over(&d);
    cr_expect(lt(i64, support_now_ms() - held_at, 25000),
              "Redis came back after the held sends were due: too slow to "
              "test them");
    drill_finish(&d, 90000, "incl. sends scheduled 30 s ahead");
    cr_expect(eq(sz, drill_count_state(&d, "scheduled"), 0));
}

/* True when replica 0's /readyz answers `want`; its body goes to buf. */
static bool readyz_is(long want, char *buf, size_t size)
{
    char *body = NULL;
    long st = drill_get(&d, 0, "/readyz", &body);

    snprintf(buf, size, "%ld %s", st, body != NULL ? body : "");
    free(body);
    return st == want;
}

static double epoch_changes(void)
{
    char *page = support_metrics_scrape(d.port[0]);
    double v = support_metric(page, "kurir_redis_epoch_changes_total", NULL);

    free(page);
    return v;
}

Test(redis, restarted_empty_is_noticed)
{
    static const char *const warn[] = {"KURIR_REDIS_DURABILITY=warn", NULL};
    struct drill_opts o = {.replicas = 1, .own_redis = true, .env = warn};
    char at[64];
    bool ok;

    drill_start(&d, "redis restarted empty", &o);
    /* State kurir holds: sends scheduled an hour ahead. */
    rfc3339_in(at, sizeof(at), 3600);
    sends("held", 5, 0, at);
    POLL_UNTIL(ok, scheduled_at_least(5), 30000);
    cr_assert(ok, "the held sends were not all scheduled");
    json_object_clear(d.want); /* lost with Redis: said, not settled */

    drill_redis_stop(&d);
    drill_redis_start(&d, false);
    drill_fault_over(&d);
    POLL_UNTIL(ok, support_proc_log_has(&d.rep[0], "came back empty"), 30000);
    cr_expect(ok, "no log line said Redis came back empty");
    /* /readyz and /metrics show what the loop published last: once a
     * second. */
    char body[512] = "";
    /* (Before that, while it reconnects, it may say "redis unreachable".) */
    POLL_UNTIL(ok,
               readyz_is(503, body, sizeof(body)) &&
                   strstr(body, "redis came back empty") != NULL,
               10000);
    cr_expect(ok, "/readyz after Redis came back empty said: %s", body);
    double changes = 0;
    POLL_UNTIL(ok, (changes = epoch_changes()) >= 1, 10000);
    cr_expect(ge(dbl, changes, 1.0), "kurir_redis_epoch_changes_total %g",
              changes);

    /* New work still flows once Redis is back, empty. */
    sends("after", 10, 1000, NULL);
    drill_finish(&d, 60000, "says so: log, metric, /readyz");
}
