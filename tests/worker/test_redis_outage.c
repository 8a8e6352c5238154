/* tests/worker/test_redis_outage.c - Redis goes away and comes back: the
 * worker fails closed (nothing sent without a marker and a token, /readyz
 * says so) and resumes by itself, losing nothing. The test runs its own
 * redis-server, since it stops it. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "tests/support/kafka.h"
#include "tests/support/metrics.h"
#include "tests/support/redisproc.h"
#include "tests/support/support.h"
#include "tests/worker/stack.h"

static struct stack e;
static struct proc redis;
static int redis_port;
static char redis_addr[32];

static char redis_dir[256];   /* its AOF: a restart keeps the state */
static char redis_empty[256]; /* another directory: a restart loses it */

/* Starts redis-server with AOF (everysec) in `dir`. */
static void redis_start_in(const char *dir)
{
    char port[16];

    snprintf(port, sizeof(port), "%d", redis_port);
    char *const extra[] = {"--port", port, NULL};
    redisproc_start(&redis, dir, extra);
    bool up;
    POLL_UNTIL(up, support_proc_log_has(&redis, "Ready to accept"), 10000);
    cr_assert(up, "redis-server not ready");
}

static void redis_start(void)
{
    redis_start_in(redis_dir);
}

static void setup(void)
{
    support_kafka(); /* skips (or fails) without a broker */
    redis_port = support_free_port();
    snprintf(redis_addr, sizeof(redis_addr), "127.0.0.1:%d", redis_port);
    redisproc_dir(redis_dir, sizeof(redis_dir), "outage");
    redisproc_dir(redis_empty, sizeof(redis_empty), "outage-empty");
    redis_start();
    stack_start(&e, redis_addr);
}

static void teardown(void)
{
    stack_stop(&e);
    support_stop(&redis, SIGTERM, 5000);
    redisproc_rmdir(redis_dir);
    redisproc_rmdir(redis_empty);
}

/* GETs /readyz; returns its status, and its body into body (may be
 * NULL). */
static long readyz_body(char *body, size_t body_size)
{
    char url[96];
    struct support_http r;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/readyz", e.kurir_port);
    if (support_http(&r, "GET", url, NULL, NULL, 0) != 0)
        return 0;
    long status = r.status;
    if (body != NULL)
        snprintf(body, body_size, "%s", r.body);
    support_http_cleanup(&r);
    return status;
}

static long readyz(void)
{
    char url[96];
    struct support_http r;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/readyz", e.kurir_port);
    if (support_http(&r, "GET", url, NULL, NULL, 0) != 0)
        return 0;
    long status = r.status;
    support_http_cleanup(&r);
    return status;
}

TestSuite(outage, .init = setup, .fini = teardown, .timeout = 240);

/* The units parked because Redis is away (/metrics). */
static double redis_parked(void)
{
    char *page = support_metrics_scrape(e.kurir_port);
    double v = support_metric(page, "kurir_units_parked", "cause=\"redis\"");
    free(page);
    return v;
}

Test(outage, redis_away_means_nothing_sent_then_resume)
{
    struct tk_reader status;
    bool ok;

    tk_reader_open(&status, e.brokers, e.topic_status);
    POLL_UNTIL(ok, readyz() == 200, 60000);
    cr_assert(ok, "never ready");

    support_stop(&redis, SIGKILL, 5000);
    POLL_UNTIL(ok, readyz() == 503, 30000);
    cr_assert(ok, "/readyz did not notice Redis was gone");

    stack_produce(&e, e.topic_send, "outage-1",
                  "{\"id\": \"outage-1\", \"account\": \"shop\", \"to\": "
                  "[\"46701234567\"], \"text\": \"after the outage\"}");
    /* While Redis is away the job waits: no marker, no token, no send. */
    static const char *const want[] = {"job_id", "outage-1", "state",
                                       "submitted", NULL};
    json_t *ev = tk_reader_wait_json(&status, want, 3000, NULL);
    cr_assert(eq(ptr, ev, NULL), "sent while Redis was away");
    cr_assert(eq(int, stack_standin_count(&e, "after%20the%20outage"), 0));

    redis_start();
    ev = tk_reader_wait_json(&status, want, 60000, NULL);
    if (ev == NULL)
        support_proc_log_dump(&e.kurir);
    cr_assert(ne(ptr, ev, NULL), "the job was not sent once Redis was back");
    json_decref(ev);
    cr_assert(eq(int, stack_standin_count(&e, "after%20the%20outage"), 1));
    POLL_UNTIL(ok, readyz() == 200, 30000);
    cr_assert(ok, "/readyz did not recover");
    tk_reader_close(&status);
}

/* Issue 9 #4: Redis restarted from its AOF keeps everything (nothing to
 * report); Redis back empty is noticed by its epoch: one line, a metric,
 * and /readyz 503 naming it for a while. */
Test(outage, redis_back_empty_is_said_loudly)
{
    char body[256] = "";
    bool ok;

    POLL_UNTIL(ok, readyz_body(NULL, 0) == 200, 60000);
    cr_assert(ok, "never ready");
    support_stop(&redis, SIGKILL, 5000);
    redis_start(); /* from its AOF */
    POLL_UNTIL(ok, readyz_body(NULL, 0) == 200, 30000);
    cr_assert(ok, "not ready after a restart from the AOF");
    cr_assert(not(support_proc_log_has(&e.kurir, "came back empty")));

    support_stop(&redis, SIGKILL, 5000);
    redis_start_in(redis_empty);
    POLL_UNTIL(ok, support_proc_log_has(&e.kurir, "came back empty"), 30000);
    if (!ok)
        support_proc_log_dump(&e.kurir);
    cr_assert(ok, "no line said Redis came back empty");
    POLL_UNTIL(ok,
               readyz_body(body, sizeof(body)) == 503 &&
                   strstr(body, "redis came back empty") != NULL,
               10000);
    cr_assert(ok, "/readyz: %s", body);
    char *page = support_metrics_scrape(e.kurir_port);
    double changes =
        support_metric(page, "kurir_redis_epoch_changes_total", "");
    free(page);
    cr_assert(eq(dbl, changes, 1.0));
}

/* Issue 9 #4: a Redis that persists nothing is refused at start-up, in one
 * line, unless KURIR_REDIS_DURABILITY=warn says to run anyway. */
Test(outage, redis_without_persistence_is_refused)
{
    struct proc other;
    bool ok;

    freeReplyObject(redisproc_cmd(redis_port, "CONFIG SET appendonly no"));
    stack_spawn_worker_nowait(&e, &other, support_free_port(), NULL);
    int status = 0;
    POLL_UNTIL(ok, waitpid(other.pid, &status, WNOHANG) == other.pid, 30000);
    if (!ok) {
        support_stop(&other, SIGKILL, 5000);
        support_proc_log_dump(&other);
    }
    cr_assert(ok, "started on a Redis that persists nothing");
    other.pid = 0;
    cr_assert(support_proc_log_has(&other, "persists nothing"));
    bool refused = WIFEXITED(status) && WEXITSTATUS(status) != 0;
    cr_assert(refused, "status %d", status);
    cr_assert(support_proc_log_has(&other, "KURIR_REDIS_DURABILITY=warn"));

    static const char *const warn[] = {"KURIR_REDIS_DURABILITY=warn", NULL};
    stack_spawn_worker(&e, &other, support_free_port(), warn);
    cr_assert(support_proc_log_has(&other, "running anyway"));
    support_stop(&other, SIGTERM, 10000);
    freeReplyObject(redisproc_cmd(redis_port, "CONFIG SET appendonly yes"));
}

/* Issue 9 #1: Redis goes away while the provider holds the call: the
 * accepted answer cannot be recorded, the unit keeps it and records it
 * again when Redis is back, and the call is never made a second time. */
Test(outage, redis_away_after_the_provider_accepted_sends_once)
{
    struct tk_reader status;
    bool ok;

    tk_reader_open(&status, e.brokers, e.topic_status);
    POLL_UNTIL(ok, readyz() == 200, 60000);
    cr_assert(ok, "never ready");
    stack_standin_faults(&e, "{\"provider\": \"jojka\", \"latency\": 3000}");
    stack_produce(&e, e.topic_send, "rec-1",
                  "{\"id\": \"rec-1\", \"account\": \"shop\", \"to\": "
                  "[\"46701234567\"], \"text\": \"record me\"}");
    POLL_UNTIL(ok, stack_standin_count(&e, "record%20me") == 1, 30000);
    cr_assert(ok, "the call never reached the stand-in");
    support_stop(&redis, SIGKILL, 5000);
    /* The answer comes while Redis is away; the recording waits. */
    POLL_UNTIL(ok, readyz() == 503, 30000);
    cr_assert(ok);
    static const char *const want[] = {"job_id", "rec-1", "state", "submitted",
                                       NULL};
    json_t *ev = tk_reader_wait_json(&status, want, 5000, NULL);
    cr_assert(eq(ptr, ev, NULL), "published before it was recorded");
    /* ... and says why: parked for Redis (/metrics). */
    double parked = 0;
    POLL_UNTIL(ok, (parked = redis_parked()) >= 1, 10000);
    if (!ok)
        support_proc_log_dump(&e.kurir);
    cr_assert(ok, "kurir_units_parked{cause=\"redis\"} stayed %g", parked);
    redis_start();
    ev = tk_reader_wait_json(&status, want, 60000, NULL);
    if (ev == NULL)
        support_proc_log_dump(&e.kurir);
    cr_assert(ne(ptr, ev, NULL), "never recorded once Redis was back");
    json_decref(ev);
    cr_assert(eq(int, stack_standin_count(&e, "record%20me"), 1),
              "the call was made again");
    tk_reader_close(&status);
}
