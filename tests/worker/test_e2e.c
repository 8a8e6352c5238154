/* tests/worker/test_e2e.c - jobs travel the whole way: a real Kafka broker,
 * a kurir worker process, the provider stand-in, and the events read back
 * from Kafka. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

/* Waits up to timeout_ms for the event that puts job `job` in `state`;
 * returns it (caller decrefs) or NULL, with the worker's log printed. */
static json_t *wait_state(struct tk_reader *r, const char *job,
                          const char *state, int timeout_ms)
{
    const char *const want[] = {"job_id", job, "state", state, NULL};
    json_t *ev = tk_reader_wait_json(r, want, timeout_ms, NULL);

    if (ev == NULL && timeout_ms > 10000)
        support_proc_log_dump(&e.kurir);
    return ev;
}

TestSuite(e2e, .init = start_stack, .fini = stop_stack, .timeout = 240);

Test(e2e, send_job_is_submitted_and_provider_error_fails)
{
    struct tk_reader status;

    tk_reader_open(&status, e.brokers, e.topic_status);
    stack_produce(&e, e.topic_send, "order-1001",
                  "{\"id\": \"order-1001\", \"account\": \"shop\", "
                  "\"to\": [\"+46701234567\"], \"text\": \"Din order har "
                  "skickats\", \"reference\": \"ref-1001\"}");
    json_t *ev = wait_state(&status, "order-1001", "submitted", 90000);
    cr_assert(ne(ptr, ev, NULL), "no submitted event for order-1001");
    cr_assert(eq(str,
                 (char *)json_string_value(json_object_get(ev, "recipient")),
                 "46701234567"));
    cr_assert(eq(str,
                 (char *)json_string_value(json_object_get(ev, "provider")),
                 "jojka"));
    cr_assert(eq(str,
                 (char *)json_string_value(json_object_get(ev, "reference")),
                 "ref-1001"));
    const char *pid =
        json_string_value(json_object_get(ev, "provider_message_id"));
    cr_assert(ne(ptr, (void *)pid, NULL));
    cr_assert(gt(sz, strlen(pid), 0));
    cr_assert(
        eq(int, (int)json_integer_value(json_object_get(ev, "segments")), 1));
    json_decref(ev);

    /* The stand-in saw exactly the documented form request. */
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/_standin/requests",
             e.standin.port);
    struct support_http r;
    int ret = support_http(&r, "GET", url, NULL, NULL, 0);
    cr_assert(eq(int, ret, 0));
    cr_assert(ne(ptr, strstr(r.body, "/websms/api/send"), NULL), "%s", r.body);
    support_http_cleanup(&r);

    /* A key the provider refuses: failed, with the provider's words. */
    stack_produce(&e, e.topic_send, "stale-1",
                  "{\"id\": \"stale-1\", \"account\": \"stale\", "
                  "\"to\": [\"46701234567\"], \"text\": \"hej\"}");
    ev = wait_state(&status, "stale-1", "failed", 60000);
    cr_assert(ne(ptr, ev, NULL), "no failed event for stale-1");
    json_t *error = json_object_get(ev, "error");
    bool is_obj = json_is_object(error);
    cr_assert(is_obj, "error is not an object");
    cr_assert(ne(ptr,
                 (void *)json_string_value(json_object_get(error, "message")),
                 NULL));
    json_decref(ev);
    tk_reader_close(&status);

    /* SIGTERM: a clean stop. */
    int status_code = support_stop(&e.kurir, SIGTERM, 30000);
    bool clean = WIFEXITED(status_code) && WEXITSTATUS(status_code) == 0;
    cr_assert(clean, "kurir did not exit 0 on SIGTERM");
}

Test(e2e, bad_jobs_go_to_the_dlq_with_a_reason)
{
    struct tk_reader status, dlq;

    tk_reader_open(&status, e.brokers, e.topic_status);
    tk_reader_open(&dlq, e.brokers, e.topic_dlq);
    stack_produce(&e, e.topic_send, NULL, "{\"id\": \"broken\", ");
    stack_produce(&e, e.topic_send, "who-1",
                  "{\"id\": \"who-1\", \"account\": \"nobody\", "
                  "\"to\": [\"46701234567\"], \"text\": \"hej\"}");
    stack_produce(&e, e.topic_send, "num-1",
                  "{\"id\": \"num-1\", \"account\": \"shop\", "
                  "\"to\": [\"12\"], \"text\": \"hej\"}");

    int found = 0;
    bool bad_json = false, unknown = false, bad_number = false;
    while (found < 3) {
        rd_kafka_message_t *rkm = tk_reader_next(&dlq, 90000);
        if (rkm == NULL)
            support_proc_log_dump(&e.kurir);
        cr_assert(ne(ptr, rkm, NULL), "only %d DLQ entries", found);
        char *why = tk_header(rkm, "kurir-error");
        char *topic = tk_header(rkm, "kurir-source-topic");
        cr_assert(ne(ptr, why, NULL));
        cr_assert(eq(str, topic, e.topic_send));
        if (strstr(why, "JSON") && rkm->len == strlen("{\"id\": \"broken\", "))
            bad_json = true;
        if (strstr(why, "unknown account \"nobody\""))
            unknown = true;
        char *body = strndup(rkm->payload, rkm->len);
        if (strstr(body, "num-1") != NULL)
            bad_number = true;
        free(body);
        free(why);
        free(topic);
        rd_kafka_message_destroy(rkm);
        found++;
    }
    bool all = bad_json && unknown && bad_number;
    cr_assert(all, "json=%d account=%d number=%d", bad_json, unknown,
              bad_number);

    /* Events of different jobs may come in any order. */
    json_t *seen = json_array();
    static const char *const want[] = {"job_id", "who-1", "state", "rejected",
                                       NULL};
    json_t *ev = tk_reader_wait_json(&status, want, 30000, seen);
    cr_assert(ne(ptr, ev, NULL), "no rejected event for who-1");
    json_decref(ev);
    static const char *const want2[] = {"job_id", "num-1", "state", "rejected",
                                        NULL};
    bool num_seen = false;
    size_t i;
    json_t *old;
    json_array_foreach(seen, i, old)
    {
        const char *id = json_string_value(json_object_get(old, "job_id"));
        const char *st = json_string_value(json_object_get(old, "state"));
        if (id && st && !strcmp(id, "num-1") && !strcmp(st, "rejected"))
            num_seen = true;
    }
    if (!num_seen) {
        ev = tk_reader_wait_json(&status, want2, 30000, NULL);
        num_seen = ev != NULL;
        json_decref(ev);
    }
    cr_assert(num_seen, "no rejected event for num-1");
    json_decref(seen);
    tk_reader_close(&status);
    tk_reader_close(&dlq);
}

/* Writes the RFC 3339 UTC time `secs` from now; returns that time. */
static time_t future_stamp(char *out, size_t out_size, int secs)
{
    time_t due = time(NULL) + secs;
    struct tm tm;

    gmtime_r(&due, &tm);
    strftime(out, out_size, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return due;
}

/* Scrapes /metrics until jobs consumed with `labels` rose by `n` since the
 * page `since`, for up to 60 s; returns that page. */
static char *consumed_after(const char *since, const char *labels, double n)
{
    char *page = NULL;
    double jobs = 0;
    int64_t deadline = support_now_ms() + 60000;

    do {
        free(page);
        page = support_metrics_scrape(e.kurir_port);
        jobs = support_metric(page, "kurir_jobs_consumed_total", labels) -
               support_metric(since, "kurir_jobs_consumed_total", labels);
    } while (jobs < n && support_now_ms() < deadline);
    cr_assert(ge(dbl, jobs, n), "%g jobs consumed, not %g", jobs, n);
    return page;
}

/* The loop's idle time counts what it waits with nothing ready: a replica
 * without work counts a second of it within 30 s, and never more than the
 * time that passed. */
Test(e2e, loop_idle_time_follows_the_clock)
{
    char *first = support_metrics_scrape(e.kurir_port);
    int64_t t0 = support_now_ms();
    double idle = 0;
    char *page = NULL;

    do {
        free(page);
        page = support_metrics_scrape(e.kurir_port);
        idle = support_metric(page, "kurir_loop_idle_seconds_total", NULL) -
               support_metric(first, "kurir_loop_idle_seconds_total", NULL);
    } while (idle < 1.0 && support_now_ms() - t0 < 30000);
    /* The pages are published once a second: one more second of slack. */
    double passed = (double)(support_now_ms() - t0) / 1000.0 + 1.0;
    cr_assert(ge(dbl, idle, 1.0), "the idle loop counted %g s idle in %g s",
              idle, passed);
    cr_assert(le(dbl, idle, passed), "%g s idle counted in %g s", idle, passed);
    free(first);
    free(page);
}

Test(e2e, a_job_seen_twice_is_sent_once)
{
    struct tk_reader status;
    char labels[256];
    /* A number the stand-in never reports on: it stays submitted. */
    static const char job[] =
        "{\"id\": \"twice-1\", \"account\": \"shop\", \"to\": "
        "[\"46701234598\"], \"text\": \"only once please\"}";

    snprintf(labels, sizeof(labels), "topic=\"%s\",outcome=\"done\"",
             e.topic_send);
    char *start = support_metrics_scrape(e.kurir_port);
    tk_reader_open(&status, e.brokers, e.topic_status);
    stack_produce(&e, e.topic_send, "twice-1", job);
    json_t *first = wait_state(&status, "twice-1", "submitted", 90000);
    cr_assert(ne(ptr, first, NULL), "no submitted event for twice-1");
    json_decref(first);
    tk_reader_close(&status);
    /* Done once its `submitted` is on Kafka and tracked: a report may
     * follow it any moment. */
    char *before = consumed_after(start, labels, 1.0);

    /* The same job again: nothing is sent, and its `submitted` is not
     * said again, which could land after that report. */
    stack_produce(&e, e.topic_send, "twice-1", job);
    char *after = consumed_after(before, labels, 1.0);
    double said = support_metric(after, "kurir_status_events_total",
                                 "state=\"submitted\"") -
                  support_metric(before, "kurir_status_events_total",
                                 "state=\"submitted\"");
    cr_assert(eq(dbl, said, 0.0), "the second copy said `submitted` again");
    int sent = stack_standin_count(&e, "only%20once%20please");
    cr_assert(eq(int, sent, 1), "the provider got the job %d times", sent);
    free(start);
    free(before);
    free(after);
}

Test(e2e, a_job_seen_again_after_delivery_stays_delivered)
{
    struct tk_reader status;
    static const char job[] =
        "{\"id\": \"twice-2\", \"account\": \"shop\", \"to\": "
        "[\"46701234567\"], \"text\": \"delivered already\"}";

    tk_reader_open(&status, e.brokers, e.topic_status);
    stack_produce(&e, e.topic_send, "twice-2", job);
    json_t *ev = wait_state(&status, "twice-2", "delivered", 90000);
    cr_assert(ne(ptr, ev, NULL), "no delivered event for twice-2");
    json_decref(ev);

    /* Redelivered after its delivery report: `submitted` must not follow
     * `delivered`, and nothing is sent again. */
    stack_produce(&e, e.topic_send, "twice-2", job);
    ev = wait_state(&status, "twice-2", "submitted", 4000);
    cr_assert(eq(ptr, ev, NULL), "a state moved backwards");
    cr_assert(eq(int, stack_standin_count(&e, "delivered%20already"), 1));
    tk_reader_close(&status);
}

Test(e2e, a_send_due_later_waits_in_redis)
{
    struct tk_reader status;
    char job[512];
    char stamp[32];
    time_t due = future_stamp(stamp, sizeof(stamp), 6);
    snprintf(job, sizeof(job),
             "{\"id\": \"later-1\", \"account\": \"shop\", \"to\": "
             "[\"46701234567\"], \"text\": \"a bit later\", \"send_at\": "
             "\"%s\"}",
             stamp);
    tk_reader_open(&status, e.brokers, e.topic_status);
    stack_produce(&e, e.topic_send, "later-1", job);
    json_t *ev = wait_state(&status, "later-1", "scheduled", 90000);
    cr_assert(ne(ptr, ev, NULL), "no scheduled event for later-1");
    json_decref(ev);
    cr_assert(eq(int, stack_standin_count(&e, "a%20bit%20later"), 0),
              "sent before it was due");

    ev = wait_state(&status, "later-1", "submitted", 60000);
    cr_assert(ne(ptr, ev, NULL), "no submitted event for later-1");
    json_decref(ev);
    cr_assert(ge(i64, (int64_t)time(NULL), (int64_t)due), "sent too early");
    cr_assert(eq(int, stack_standin_count(&e, "a%20bit%20later"), 1));
    tk_reader_close(&status);
}

Test(e2e, delivery_callback_makes_the_send_delivered)
{
    struct tk_reader status;

    tk_reader_open(&status, e.brokers, e.topic_status);
    stack_produce(&e, e.topic_send, "cb-1",
                  "{\"id\": \"cb-1\", \"account\": \"hooks-intime\", "
                  "\"to\": [\"46701234567\"], \"text\": \"Hej åäö\"}");
    json_t *ev = wait_state(&status, "cb-1", "delivered", 90000);
    if (ev == NULL) {
        support_proc_log_dump(&e.kurir);
        support_proc_log_dump(&e.standin);
    }
    cr_assert(ne(ptr, ev, NULL), "no delivered event for cb-1");
    cr_assert(eq(str,
                 (char *)json_string_value(json_object_get(ev, "provider")),
                 "intime"));
    cr_assert(eq(str,
                 (char *)json_string_value(json_object_get(ev, "recipient")),
                 "46701234567"));
    json_decref(ev);

    /* InTime got the answer its document asks for (200 and the message
     * id), so it does not send the callback again. */
    char url[128];
    struct support_http r;
    snprintf(url, sizeof(url),
             "http://127.0.0.1:%d/_standin/callbacks?account=hooks-intime",
             e.standin_port);
    /* The stand-in notes the answer once it has it: shortly after kurir
     * published the event the test just read. */
    bool answered = false;
    r.body = NULL;
    POLL_UNTIL(answered,
               (support_http_cleanup(&r),
                support_http(&r, "GET", url, NULL, NULL, 0) == 0 &&
                    strstr(r.body, "\"ok\":true") != NULL),
               10000);
    cr_assert(answered, "the callback was never answered: %s",
              r.body ? r.body : "");
    cr_assert(eq(ptr, strstr(r.body, "\"ok\":false"), NULL),
              "a callback was refused: %s", r.body);
    support_http_cleanup(&r);
    tk_reader_close(&status);
}

Test(e2e, incoming_sms_becomes_a_reply_event)
{
    struct tk_reader replies;
    char url[128];
    struct support_http r;
    static const char inbound[] =
        "{\"account\": \"hooks-ip1\", \"from\": "
        "\"46701112233\", \"text\": \"Hej tillbaka\"}";

    tk_reader_open(&replies, e.brokers, e.topic_replies);
    /* The worker must be listening before the provider calls. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", e.kurir_port);
    bool up;
    POLL_UNTIL(up,
               support_http(&r, "GET", url, NULL, NULL, 0) == 0 &&
                   (support_http_cleanup(&r), true),
               30000);
    cr_assert(up, "kurir's listener did not answer");
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/_standin/inbound",
             e.standin_port);
    char *hdrs[] = {"Content-Type: application/json", NULL};
    int ret = support_http(&r, "POST", url, hdrs, inbound, strlen(inbound));
    cr_assert(eq(int, ret, 0));
    support_http_cleanup(&r);

    static const char *const want[] = {"from", "46701112233", "account",
                                       "hooks-ip1", NULL};
    json_t *ev = tk_reader_wait_json(&replies, want, 60000, NULL);
    cr_assert(ne(ptr, ev, NULL), "no reply event");
    cr_assert(eq(str, (char *)json_string_value(json_object_get(ev, "text")),
                 "Hej tillbaka"));
    cr_assert(eq(str,
                 (char *)json_string_value(json_object_get(ev, "provider")),
                 "ip1"));
    json_decref(ev);
    tk_reader_close(&replies);
}

Test(e2e, health_metrics_and_callback_tokens)
{
    char url[160];
    struct support_http r;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", e.kurir_port);
    bool up;
    POLL_UNTIL(up,
               support_http(&r, "GET", url, NULL, NULL, 0) == 0 &&
                   (support_http_cleanup(&r), true),
               30000);
    cr_assert(up, "kurir's listener did not answer");

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/readyz", e.kurir_port);
    bool ready;
    POLL_UNTIL(ready,
               support_http(&r, "GET", url, NULL, NULL, 0) == 0 &&
                   (r.status == 200 ? (support_http_cleanup(&r), true)
                                    : (support_http_cleanup(&r), false)),
               30000);
    cr_assert(ready, "/readyz never said ready");

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", e.kurir_port);
    int ret = support_http(&r, "GET", url, NULL, NULL, 0);
    cr_assert(eq(int, ret, 0));
    cr_assert(eq(long, r.status, 200L));
    cr_assert(ne(ptr, strstr(r.body, "kurir_build_info{"), NULL), "%s", r.body);
    support_http_cleanup(&r);

    /* A forged callback without the account's token is refused. */
    snprintf(url, sizeof(url),
             "http://127.0.0.1:%d/callbacks/hooks-intime/status?token=nope",
             e.kurir_port);
    char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    static const char form[] = "messageid=1&status=20&transid=x:46701234567";
    ret = support_http(&r, "POST", url, hdrs, form, strlen(form));
    cr_assert(eq(int, ret, 0));
    cr_assert(eq(long, r.status, 403L));
    support_http_cleanup(&r);
}

Test(e2e, a_cancelled_campaign_is_never_sent)
{
    struct tk_reader status;
    char job[512];
    char stamp[32];
    /* Far enough ahead that a slow group join does not make it due. */
    future_stamp(stamp, sizeof(stamp), 10);
    snprintf(job, sizeof(job),
             "{\"id\": \"camp-1\", \"account\": \"shop\", \"action\": "
             "\"create\", \"name\": \"Rea\", \"to\": [\"46701230001\", "
             "\"46701230002\"], \"text\": \"never sent\", \"send_at\": "
             "\"%s\"}",
             stamp);
    tk_reader_open(&status, e.brokers, e.topic_status);
    stack_produce(&e, e.topic_campaign, "camp-1", job);
    json_t *ev = wait_state(&status, "camp-1", "scheduled", 90000);
    cr_assert(ne(ptr, ev, NULL), "camp-1 was not scheduled");
    json_decref(ev);

    stack_produce(&e, e.topic_campaign, "camp-1-stop",
                  "{\"id\": \"camp-1-stop\", \"account\": \"shop\", "
                  "\"action\": \"cancel\", \"campaign_id\": \"camp-1\"}");
    ev = wait_state(&status, "camp-1-stop", "cancelled", 60000);
    cr_assert(ne(ptr, ev, NULL), "the cancel job did not end cancelled");
    json_decref(ev);

    /* Past the due time, nothing of the campaign reaches the provider. */
    ev = wait_state(&status, "camp-1", "submitted", 12000);
    cr_assert(eq(ptr, ev, NULL), "a cancelled campaign was sent");
    cr_assert(eq(int, stack_standin_count(&e, "never%20sent"), 0));
    tk_reader_close(&status);
}

Test(e2e, jojka_statuses_and_replies_are_polled)
{
    struct tk_reader status, replies;
    char url[128];
    struct support_http r;
    static const char inbound[] = "{\"account\": \"shop\", \"from\": "
                                  "\"46709771337\", \"text\": \"Sure\"}";

    tk_reader_open(&status, e.brokers, e.topic_status);
    tk_reader_open(&replies, e.brokers, e.topic_replies);
    stack_produce(&e, e.topic_send, "poll-1",
                  "{\"id\": \"poll-1\", \"account\": \"shop\", "
                  "\"to\": [\"46701234567\"], \"text\": \"polled\"}");
    json_t *ev = wait_state(&status, "poll-1", "delivered", 90000);
    cr_assert(ne(ptr, ev, NULL), "no delivered event for a Jojka send");
    cr_assert(eq(str,
                 (char *)json_string_value(json_object_get(ev, "provider")),
                 "jojka"));
    json_decref(ev);

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/_standin/inbound",
             e.standin_port);
    char *hdrs[] = {"Content-Type: application/json", NULL};
    int ret = support_http(&r, "POST", url, hdrs, inbound, strlen(inbound));
    cr_assert(eq(int, ret, 0));
    support_http_cleanup(&r);
    static const char *const reply[] = {"account", "shop", "from",
                                        "46709771337", NULL};
    ev = tk_reader_wait_json(&replies, reply, 60000, NULL);
    cr_assert(ne(ptr, ev, NULL), "no reply event from Jojka's replies");
    cr_assert(eq(str, (char *)json_string_value(json_object_get(ev, "text")),
                 "Sure"));
    json_decref(ev);
    /* Polled again and again, a reply is published once. */
    ev = tk_reader_wait_json(&replies, reply, 2000, NULL);
    cr_assert(eq(ptr, ev, NULL), "a reply was published twice");
    tk_reader_close(&status);
    tk_reader_close(&replies);
}

/* A producer's trace headers come back on every event of its job, the
 * callback's included, and the latest-state topic holds one record per
 * recipient with its final state. */
Test(e2e, trace_headers_echo_and_latest_state)
{
    static const char *const headers[] = {
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "kurir-echo-request",
        "req-77",
        "x-not-echoed",
        "secret",
        NULL,
    };
    static const char *const to[] = {"46701230001", "46701230002"};
    struct tk_reader status, latest;

    tk_reader_open(&status, e.brokers, e.topic_status);
    static const char job[] =
        "{\"id\": \"trace-1\", \"account\": \"hooks-intime\", \"to\": "
        "[\"46701230001\", \"46701230002\"], \"text\": \"Spara\"}";
    tk_produce_headers(e.brokers, e.topic_send, "trace-1", job, strlen(job),
                       headers);

    /* Every event of the job until both recipients are delivered. */
    size_t delivered = 0, events = 0;
    int64_t deadline = support_now_ms() + 90000;
    while (delivered < 2 && support_now_ms() < deadline) {
        rd_kafka_message_t *m = tk_reader_next(&status, 500);
        if (m == NULL)
            continue;
        json_t *ev = json_loadb(m->payload, m->len, 0, NULL);
        const char *j = json_string_value(json_object_get(ev, "job_id"));
        if (j != NULL && strcmp(j, "trace-1") == 0) {
            char *tp = tk_header(m, "traceparent");
            char *rq = tk_header(m, "kurir-echo-request");
            char *no = tk_header(m, "x-not-echoed");
            cr_assert(ne(ptr, tp, NULL), "an event without traceparent: %.*s",
                      (int)m->len, (const char *)m->payload);
            cr_assert(eq(str, tp, (char *)headers[1]));
            cr_assert(ne(ptr, rq, NULL));
            cr_assert(eq(str, rq, "req-77"));
            cr_assert(eq(ptr, no, NULL), "a header not marked was echoed");
            free(tp);
            free(rq);
            events++;
            const char *s = json_string_value(json_object_get(ev, "state"));
            if (s != NULL && strcmp(s, "delivered") == 0)
                delivered++;
        }
        json_decref(ev);
        rd_kafka_message_destroy(m);
    }
    if (delivered < 2)
        support_proc_log_dump(&e.kurir);
    cr_assert(eq(sz, delivered, 2), "both recipients delivered");
    cr_assert(ge(sz, events, 4), "submitted and delivered for each");
    tk_reader_close(&status);

    /* The latest state: one key per recipient, its last value final. */
    tk_reader_open(&latest, e.brokers, e.topic_latest);
    json_t *last = json_object();
    deadline = support_now_ms() + 30000;
    for (;;) {
        bool done = json_object_size(last) == 2;
        const char *key;
        json_t *v;
        json_object_foreach(last, key, v)
        {
            const char *s = json_string_value(json_object_get(v, "state"));
            done = done && s != NULL && strcmp(s, "delivered") == 0;
        }
        if (done || support_now_ms() >= deadline)
            break;
        rd_kafka_message_t *m = tk_reader_next(&latest, 500);
        if (m == NULL)
            continue;
        char mkey[128];
        snprintf(mkey, sizeof(mkey), "%.*s", (int)m->key_len,
                 (const char *)m->key);
        if (strncmp(mkey, "trace-1/", 8) == 0) {
            char *tp = tk_header(m, "traceparent");
            cr_assert(ne(ptr, tp, NULL), "a latest record without traceparent");
            free(tp);
            json_object_set_new(last, mkey,
                                json_loadb(m->payload, m->len, 0, NULL));
        }
        rd_kafka_message_destroy(m);
    }
    cr_assert(eq(sz, json_object_size(last), 2), "one key per recipient");
    for (size_t i = 0; i < 2; i++) {
        char key[64];
        snprintf(key, sizeof(key), "trace-1/%s", to[i]);
        json_t *v = json_object_get(last, key);
        cr_assert(ne(ptr, v, NULL), "no latest record for %s", key);
        cr_assert(eq(str,
                     (char *)json_string_value(json_object_get(v, "state")),
                     "delivered"));
    }
    json_decref(last);
    tk_reader_close(&latest);
}

/* After a run, /metrics moved by the right amounts: three jobs consumed
 * and done, three submitted events, three provider requests answered 2xx;
 * and every line is valid for promtool. */
Test(e2e, metrics_move_by_the_jobs_run)
{
    struct tk_reader status;
    char labels[256];

    char *before = support_metrics_scrape(e.kurir_port);
    tk_reader_open(&status, e.brokers, e.topic_status);
    for (int i = 1; i <= 3; i++) {
        char id[32], job[256];
        snprintf(id, sizeof(id), "metric-%d", i);
        snprintf(job, sizeof(job),
                 "{\"id\": \"%s\", \"account\": \"shop\", \"to\": "
                 "[\"4670123456%d\"], \"text\": \"counted\"}",
                 id, i);
        stack_produce(&e, e.topic_send, id, job);
    }
    /* All three, in whatever order they come. */
    int seen = 0;
    int64_t until = support_now_ms() + 90000;
    while (seen != 7 && support_now_ms() < until) {
        rd_kafka_message_t *m = tk_reader_next(&status, 500);
        if (m == NULL)
            continue;
        json_t *ev = json_loadb(m->payload, m->len, 0, NULL);
        const char *j = json_string_value(json_object_get(ev, "job_id"));
        const char *st = json_string_value(json_object_get(ev, "state"));
        if (j != NULL && st != NULL && strncmp(j, "metric-", 7) == 0 &&
            strcmp(st, "submitted") == 0 && j[7] >= '1' && j[7] <= '3')
            seen |= 1 << (j[7] - '1');
        json_decref(ev);
        rd_kafka_message_destroy(m);
    }
    cr_assert(eq(int, seen, 7), "submitted events seen: mask %d", seen);
    tk_reader_close(&status);

    snprintf(labels, sizeof(labels), "topic=\"%s\",outcome=\"done\"",
             e.topic_send);
    double jobs = 0, submitted = 0, requests = 0;
    char *after = NULL;
    /* Wait for the next publish that has all three. */
    int64_t deadline = support_now_ms() + 10000;
    do {
        free(after);
        after = support_metrics_scrape(e.kurir_port);
        jobs = support_metric(after, "kurir_jobs_consumed_total", labels) -
               support_metric(before, "kurir_jobs_consumed_total", labels);
        submitted = support_metric(after, "kurir_status_events_total",
                                   "state=\"submitted\"") -
                    support_metric(before, "kurir_status_events_total",
                                   "state=\"submitted\"");
        requests = support_metric(after, "kurir_provider_requests_total",
                                  "account=\"shop\",provider=\"jojka\","
                                  "result=\"2xx\"") -
                   support_metric(before, "kurir_provider_requests_total",
                                  "account=\"shop\",provider=\"jojka\","
                                  "result=\"2xx\"");
    } while ((jobs < 3 || submitted < 3 || requests < 3) &&
             support_now_ms() < deadline);
    cr_assert(eq(dbl, jobs, 3.0), "jobs consumed moved by %g", jobs);
    cr_assert(eq(dbl, submitted, 3.0), "submitted events moved by %g",
              submitted);
    cr_assert(ge(dbl, requests, 3.0), "provider requests moved by %g",
              requests);
    support_metrics_promtool(after);
    free(before);
    free(after);
}
