/* tests/worker/test_failsafe.c - issue 9's engine fixes end to end: poison
 * ids end in the DLQ, a long wait does not hold a unit's place, and a
 * replica whose places are all taken pauses its partitions and stays in
 * its group. A real Kafka broker, a kurir worker and the stand-in. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "tests/support/kafka.h"
#include "tests/support/metrics.h"
#include "tests/support/support.h"
#include "tests/worker/stack.h"

static struct stack e;

static void start_stack(void)
{
    stack_start(&e, support_redis());
}

static void stop_stack(void)
{
    stack_stop(&e);
}

TestSuite(failsafe, .init = start_stack, .fini = stop_stack, .timeout = 240);

/* Replaces the stack's worker with one that has `extra` settings. */
static void restart_worker(const char *const *extra)
{
    support_stop(&e.kurir, SIGTERM, 20000);
    e.kurir_port = support_free_port(); /* the old one may linger */
    stack_spawn_worker(&e, &e.kurir, e.kurir_port, extra);
}

static void standin_faults(const char *json)
{
    stack_standin_faults(&e, json);
}

/* Waits up to a minute for the event that puts `job` in `state` and
 * returns it (caller decrefs); fails the test, printing the worker's log,
 * when none comes. */
static json_t *wait_state(struct tk_reader *r, const char *job,
                          const char *state)
{
    const char *const want[] = {"job_id", job, "state", state, NULL};
    json_t *ev = tk_reader_wait_json(r, want, 60000, NULL);

    if (ev == NULL)
        support_proc_log_dump(&e.kurir);
    cr_assert(ne(ptr, ev, NULL), "%s never became %s", job, state);
    return ev;
}

/* Reads status events until n jobs named prefix0..prefix<n-1> were each
 * `submitted` or `delivered` (or, with maybe_unknown, `unknown`: a
 * provider that took too long), or the time is up; returns how many were. */
static int count_done(struct tk_reader *r, const char *prefix, int n,
                      bool maybe_unknown, int timeout_ms)
{
    bool *seen = calloc((size_t)n + 1, sizeof(*seen));
    int got = 0;
    int64_t deadline = support_now_ms() + timeout_ms;

    while (got < n && support_now_ms() < deadline) {
        rd_kafka_message_t *rkm = tk_reader_next(r, 1000);
        if (rkm == NULL)
            continue;
        json_t *ev = json_loadb(rkm->payload, rkm->len, 0, NULL);
        const char *id = json_string_value(json_object_get(ev, "job_id"));
        const char *st = json_string_value(json_object_get(ev, "state"));
        size_t plen = strlen(prefix);
        bool done =
            st != NULL &&
            (strcmp(st, "submitted") == 0 || strcmp(st, "delivered") == 0 ||
             (maybe_unknown && strcmp(st, "unknown") == 0));
        if (id != NULL && done && strncmp(id, prefix, plen) == 0) {
            long i = strtol(id + plen, NULL, 10);
            if (i >= 0 && i < n && !seen[i]) {
                seen[i] = true;
                got++;
            }
        }
        json_decref(ev);
        rd_kafka_message_destroy(rkm);
    }
    free(seen);
    return got;
}

/* Issue 9 #7: an id too long for Redis' keys goes to the DLQ with its
 * reason, and its `rejected` event carries the id as it came. */
Test(failsafe, a_long_id_goes_to_the_dlq)
{
    struct tk_reader status, dlq;
    char id[301], job[512];

    memset(id, 'L', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    snprintf(job, sizeof(job),
             "{\"id\": \"%s\", \"account\": \"shop\", \"to\": "
             "[\"46701234567\"], \"text\": \"hej\"}",
             id);
    tk_reader_open(&status, e.brokers, e.topic_status);
    tk_reader_open(&dlq, e.brokers, e.topic_dlq);
    stack_produce(&e, e.topic_send, "long", job);
    rd_kafka_message_t *rkm = tk_reader_next(&dlq, 60000);
    if (rkm == NULL)
        support_proc_log_dump(&e.kurir);
    cr_assert(ne(ptr, rkm, NULL), "no DLQ entry");
    char *why = tk_header(rkm, "kurir-error");
    cr_assert(ne(ptr, strstr(why, "at most 256"), NULL), "%s", why);
    free(why);
    rd_kafka_message_destroy(rkm);
    const char *const want[] = {"job_id", id, "state", "rejected", NULL};
    json_t *ev = tk_reader_wait_json(&status, want, 30000, NULL);
    cr_assert(ne(ptr, ev, NULL), "no rejected event with the whole id");
    json_decref(ev);
    tk_reader_close(&status);
    tk_reader_close(&dlq);
}

/* Reads the deferral counter and the units in flight; true once a unit
 * was deferred and none is in flight. */
static bool deferred_and_idle(double *deferred, double *in_flight)
{
    char *page = support_metrics_scrape(e.kurir_port);

    *deferred =
        support_metric(page, "kurir_units_deferred_total", "account=\"shop\"");
    *in_flight = support_metric(page, "kurir_units_in_flight", "");
    free(page);
    return *deferred >= 1 && *in_flight == 0;
}

/* Issue 9 #8: a provider's long Retry-After is charged to the account's
 * bucket; the next unit of that account then waits in Redis, not in one
 * of KURIR_MAX_IN_FLIGHT places. */
Test(failsafe, a_long_retry_after_frees_the_place)
{
    struct tk_reader status;
    bool ok;

    tk_reader_open(&status, e.brokers, e.topic_status);
    /* Every Jojka request, the reply polls included, is told to wait 8 s:
     * longer than a unit may park in memory (5 s). */
    standin_faults("{\"provider\": \"jojka\", \"throttle_429\": 1, "
                   "\"retry_after\": 8}");
    stack_produce(&e, e.topic_send, "ra-0",
                  "{\"id\": \"ra-0\", \"account\": \"shop\", \"to\": "
                  "[\"46701234567\"], \"text\": \"first\"}");
    json_decref(wait_state(&status, "ra-0", "retrying"));

    stack_produce(&e, e.topic_send, "ra-1",
                  "{\"id\": \"ra-1\", \"account\": \"shop\", \"to\": "
                  "[\"46701234568\"], \"text\": \"second\"}");
    POLL_UNTIL(ok,
               support_proc_log_has(&e.kurir, "job ra-1 waits") &&
                   support_proc_log_has(&e.kurir, "tokens in Redis"),
               30000);
    if (!ok)
        support_proc_log_dump(&e.kurir);
    cr_assert(ok, "ra-1 was held in memory");
    double deferred = 0, in_flight = -1;
    POLL_UNTIL(ok, deferred_and_idle(&deferred, &in_flight), 10000);
    cr_assert(ok, "deferred=%g in_flight=%g", deferred, in_flight);
    cr_assert(eq(int, stack_standin_count(&e, "second"), 0));

    /* The provider takes sends again: the retry and the deferred unit come
     * back from Redis when due and are each sent once. */
    standin_faults("{\"provider\": \"jojka\"}");
    int submitted = count_done(&status, "ra-", 2, false, 90000);
    if (submitted != 2)
        support_proc_log_dump(&e.kurir);
    cr_assert(eq(int, submitted, 2));
    cr_assert(eq(int, stack_standin_count(&e, "second"), 1));
    tk_reader_close(&status);
}

/* The jobs of the pause test: 5 held by InTime, the rest Jojka's. */
#define FULL_JOBS 205

/* Issue 9 #8: with every place taken by slow calls, the replica pauses its
 * partitions and keeps polling: it never overruns max.poll.interval.ms and
 * leaves its group, and every job ends once the calls return, none sent
 * twice and none of a full prefetch skipped at the resume. */

Test(failsafe, full_replica_pauses_and_stays_in_its_group)
{
    static const char *const extra[] = {
        "KURIR_MAX_IN_FLIGHT=2",
        "KURIR_HTTP_TIMEOUT_MS=30000",
        "KURIR_MARK_STALE_MS=60000",
        "KURIR_KAFKA_PROP_SESSION_TIMEOUT_MS=6000",
        "KURIR_KAFKA_PROP_MAX_POLL_INTERVAL_MS=7000",
        NULL};
    struct tk_reader status;
    char id[32], job[256];
    bool ok;

    restart_worker(extra);
    tk_reader_open(&status, e.brokers, e.topic_status);
    /* InTime holds the first five (no polls share its connections with the
     * sends); behind them, fast Jojka sends fill the prefetch while every
     * place is held: none may be skipped when the partitions resume. */
    standin_faults("{\"provider\": \"intime\", \"latency\": 8000}");
    for (int i = 0; i < FULL_JOBS; i++) {
        bool held = i < 5;
        char text[24];
        if (held)
            snprintf(text, sizeof(text), "full %d", i);
        else
            snprintf(text, sizeof(text), "pf%03d", i);
        snprintf(id, sizeof(id), "full-%d", i);
        snprintf(job, sizeof(job),
                 "{\"id\": \"%s\", \"account\": \"%s\", \"to\": "
                 "[\"46702%06d\"], \"text\": \"%s\"}",
                 id, held ? "bulk-intime" : "bulk-jojka", i, text);
        stack_produce(&e, e.topic_send, id, job);
    }
    POLL_UNTIL(ok, support_proc_log_has(&e.kurir, "consumption paused"), 60000);
    cr_assert(ok, "the consumer was never paused");
    int before = stack_standin_count(&e, "pf");
    fprintf(stderr, "full prefetch: %d of %d Jojka sends made at the pause\n",
            before, FULL_JOBS - 5);
    cr_expect(lt(int, before, FULL_JOBS - 5), "nothing was left to resume");
    /* Each job ends (a call the stand-in held too long may end unknown). */
    int done = count_done(&status, "full-", FULL_JOBS, true, 180000);
    if (done != FULL_JOBS)
        support_proc_log_dump(&e.kurir);
    cr_assert(eq(int, done, FULL_JOBS));
    cr_assert(support_proc_log_has(&e.kurir, "consumption resumed"));
    cr_assert(not(support_proc_log_has(&e.kurir, "maximum poll interval")),
              "the replica left its group");
    /* Jobs fetched again after a resume are not sent again. */
    for (int i = 0; i < 5; i++) {
        char text[32];
        snprintf(text, sizeof(text), "full %d", i); /* InTime's XML body */
        int sent = stack_standin_count(&e, text);
        cr_assert(eq(int, sent, 1), "\"%s\" sent %d times", text, sent);
    }
    for (int i = 5; i < FULL_JOBS; i++) {
        char text[32];
        snprintf(text, sizeof(text), "pf%03d", i);
        int sent = stack_standin_count(&e, text);
        cr_assert(eq(int, sent, 1), "\"%s\" sent %d times", text, sent);
    }
    tk_reader_close(&status);
}

/* Issue 9 #3: a 502 (a proxy's, after the provider may have taken the
 * request) ends `unknown` (maybe_sent) and is never sent again; #2: a
 * campaign sent only to groups whose answer never came ends `unknown` too,
 * not retried. */
Test(failsafe, maybe_sent_answers_end_unknown_and_are_not_repeated)
{
    struct tk_reader status;

    tk_reader_open(&status, e.brokers, e.topic_status);
    standin_faults("{\"provider\": \"jojka\", \"error_5xx\": 1, "
                   "\"status_5xx\": 502}");
    stack_produce(&e, e.topic_send, "m5",
                  "{\"id\": \"m5\", \"account\": \"shop\", \"to\": "
                  "[\"46701234567\"], \"text\": \"via a proxy\"}");
    json_t *ev = wait_state(&status, "m5", "unknown");
    json_t *err = json_object_get(ev, "error");
    cr_assert(eq(str, (char *)json_string_value(json_object_get(err, "code")),
                 "maybe_sent"));
    json_decref(ev);

    standin_faults("{\"provider\": \"jojka\", \"timeout\": 1, "
                   "\"hold_ms\": 1500, \"process\": true}");
    stack_produce(&e, e.topic_campaign, "grp-1",
                  "{\"id\": \"grp-1\", \"account\": \"shop\", \"action\": "
                  "\"create\", \"name\": \"vip\", \"groups\": [\"vip\"], "
                  "\"text\": \"to the group\"}");
    json_decref(wait_state(&status, "grp-1", "unknown"));
    /* Neither was sent again. */
    cr_assert(eq(int, stack_standin_count(&e, "via%20a%20proxy"), 1));
    cr_assert(eq(int, stack_standin_count(&e, "to%20the%20group"), 1));
    tk_reader_close(&status);
}

/* libcurl sends a request again by itself when a reused keep-alive
 * connection dies before any answer byte (finding 3): the provider that
 * took the first copy would get a second. The stand-in takes the request
 * and resets the connection; kurir must end the job `unknown`, once. */
Test(failsafe, a_reused_connection_that_dies_is_not_sent_again)
{
    struct tk_reader status;

    tk_reader_open(&status, e.brokers, e.topic_status);
    /* A first send leaves a kept-alive connection to the stand-in. */
    stack_produce(&e, e.topic_send, "keep-1",
                  "{\"id\": \"keep-1\", \"account\": \"shop\", \"to\": "
                  "[\"46701234598\"], \"text\": \"opens the connection\"}");
    json_decref(wait_state(&status, "keep-1", "submitted"));
    standin_faults("{\"provider\": \"jojka\", \"reset\": 1, "
                   "\"process\": true, \"count\": 1}");
    stack_produce(&e, e.topic_send, "reset-1",
                  "{\"id\": \"reset-1\", \"account\": \"shop\", \"to\": "
                  "[\"46701234598\"], \"text\": \"taken then reset\"}");
    json_t *ev = wait_state(&status, "reset-1", "unknown");
    const char *code = json_string_value(
        json_object_get(json_object_get(ev, "error"), "code"));
    cr_assert(eq(str, (char *)code, "no_answer"), "code %s", code);
    json_decref(ev);
    cr_assert(eq(int, stack_standin_count(&e, "taken%20then%20reset"), 1),
              "the provider got the request %d times",
              stack_standin_count(&e, "taken%20then%20reset"));
    tk_reader_close(&status);
}
