/* tests/worker/test_redis_outage.c - Redis goes away and comes back: the
 * worker fails closed (nothing sent without a marker and a token, /readyz
 * says so) and resumes by itself, losing nothing. The test runs its own
 * redis-server, since it stops it. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "tests/support/kafka.h"
#include "tests/support/support.h"
#include "tests/worker/stack.h"

static struct stack e;
static struct proc redis;
static int redis_port;
static char redis_addr[32];

static void redis_start(void)
{
    char port[16];

    snprintf(port, sizeof(port), "%d", redis_port);
    char *argv[] = {"/usr/bin/redis-server",
                    "--port",
                    port,
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    NULL};
    int ret = support_spawn(&redis, argv, NULL, false, 0);
    cr_assert(eq(int, ret, 0), "redis-server did not start");
    bool up;
    POLL_UNTIL(up, support_proc_log_has(&redis, "Ready to accept"), 10000);
    cr_assert(up, "redis-server not ready");
}

static void setup(void)
{
    support_kafka(); /* skips (or fails) without a broker */
    redis_port = support_free_port();
    snprintf(redis_addr, sizeof(redis_addr), "127.0.0.1:%d", redis_port);
    redis_start();
    stack_start(&e, redis_addr);
}

static void teardown(void)
{
    stack_stop(&e);
    support_stop(&redis, SIGTERM, 5000);
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
