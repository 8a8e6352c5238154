/* tests/worker/test_sentinel_run.c - a worker on sentinel:// through a
 * failover: the primary is killed mid-run, Sentinel promotes the replica,
 * and every job still ends, each sent exactly once. The test runs its own
 * primary, replica and Sentinel (Debian's redis-server, redis-sentinel). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>

#include "tests/support/kafka.h"
#include "tests/support/redisproc.h"
#include "tests/support/support.h"
#include "tests/worker/stack.h"

#define NJOBS 12

static void produce_job(struct stack *e, int i)
{
    char id[32], json[256];
    snprintf(id, sizeof(id), "sr-%d", i);
    snprintf(json, sizeof(json),
             "{\"id\": \"%s\", \"account\": \"shop\", \"to\": "
             "[\"46701234567\"], \"text\": \"sentinel-run-%d-end\"}",
             id, i);
    stack_produce(e, e->topic_send, id, json);
}

/* Reads status events until every job has its `submitted`; counts them. */
static int wait_submitted(struct tk_reader *r, bool seen[NJOBS + 1],
                          int timeout_ms)
{
    int64_t deadline = support_now_ms() + timeout_ms;
    int n = 0;
    for (int i = 1; i <= NJOBS; i++)
        n += seen[i];
    while (n < NJOBS && support_now_ms() < deadline) {
        rd_kafka_message_t *m = tk_reader_next(r, 1000);
        if (m == NULL)
            continue;
        json_t *ev = json_loadb(m->payload, m->len, 0, NULL);
        const char *id = json_string_value(json_object_get(ev, "job_id"));
        const char *st = json_string_value(json_object_get(ev, "state"));
        int i = 0;
        if (id != NULL && st != NULL && strcmp(st, "submitted") == 0 &&
            sscanf(id, "sr-%d", &i) == 1 && i >= 1 && i <= NJOBS && !seen[i]) {
            seen[i] = true;
            n++;
        }
        json_decref(ev);
        rd_kafka_message_destroy(m);
    }
    return n;
}

Test(sentinel_run, failover_mid_run_loses_nothing_sends_nothing_twice,
     .timeout = 240)
{
    support_kafka();
    redisproc_need(REDIS_SERVER);
    redisproc_need(REDIS_SENTINEL);
    char dir[256], dir2[300];
    redisproc_dir(dir, sizeof(dir), "sentinel-run");
    snprintf(dir2, sizeof(dir2), "%s/replica", dir);
    cr_assert(mkdir(dir2, 0700) == 0);

    int p1 = support_free_port();
    char p1s[16];
    snprintf(p1s, sizeof(p1s), "%d", p1);
    char *primary_args[] = {"--port", p1s, NULL};
    struct proc primary, replica, sentinel;
    redisproc_start(&primary, dir, primary_args);
    bool ok;
    POLL_UNTIL(ok, redisproc_answers(p1), 10000);
    cr_assert(ok, "primary not up");
    int p2 = support_free_port();
    char p2s[16], replicaof[64];
    snprintf(p2s, sizeof(p2s), "%d", p2);
    snprintf(replicaof, sizeof(replicaof), "127.0.0.1 %d", p1);
    char *replica_args[] = {"--port", p2s, "--replicaof", replicaof, NULL};
    redisproc_start(&replica, dir2, replica_args);
    POLL_UNTIL(ok, redisproc_replica_linked(p2), 15000);
    cr_assert(ok, "replica not linked");
    int sp = support_free_port();
    redisproc_sentinel(&sentinel, dir, sp, p1);
    POLL_UNTIL(ok, redisproc_sentinel_ready(sp), 30000);
    cr_assert(ok, "sentinel not ready");

    char url[128];
    snprintf(url, sizeof(url), "sentinel://127.0.0.1:%d/mymaster", sp);
    struct stack e;
    stack_start(&e, url);
    struct tk_reader status;
    tk_reader_open(&status, e.brokers, e.topic_status);

    bool seen[NJOBS + 1] = {false};
    for (int i = 1; i <= NJOBS / 2; i++)
        produce_job(&e, i);
    int n = 0;
    int64_t deadline = support_now_ms() + 60000;
    while (n < NJOBS / 2 && support_now_ms() < deadline)
        n = wait_submitted(&status, seen, 1000);
    cr_assert(n == NJOBS / 2, "only %d of the first jobs sent", n);
    /* Markers written so far are on the replica before the primary dies. */
    redisReply *w = redisproc_cmd(p1, "WAIT 1 5000");
    cr_assert(w != NULL && w->integer == 1);
    freeReplyObject(w);

    /* The failover, mid-run: the rest is produced while Redis has no
     * primary. */
    support_stop(&primary, SIGKILL, 5000);
    for (int i = NJOBS / 2 + 1; i <= NJOBS; i++)
        produce_job(&e, i);
    POLL_UNTIL(ok, redisproc_master_port(sp) == p2, 30000);
    cr_assert(ok, "Sentinel did not promote the replica");

    n = wait_submitted(&status, seen, 90000);
    if (n != NJOBS)
        support_proc_log_dump(&e.kurir);
    cr_assert(n == NJOBS, "%d of %d jobs sent after the failover", n, NJOBS);
    for (int i = 1; i <= NJOBS; i++) {
        char needle[64];
        snprintf(needle, sizeof(needle), "sentinel-run-%d-end", i);
        int sends = stack_standin_count(&e, needle);
        cr_assert(sends == 1, "job sr-%d sent %d times", i, sends);
    }
    tk_reader_close(&status);
    stack_stop(&e);
    support_stop(&sentinel, SIGTERM, 5000);
    support_stop(&replica, SIGTERM, 5000);
    redisproc_rmdir(dir);
}
