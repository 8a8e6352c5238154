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
#include "tests/support/support.h"

struct e2e {
    char uniq[64];
    char topic_send[96], topic_campaign[96], topic_contacts[96];
    char topic_status[96], topic_replies[96], topic_dlq[96];
    char standin_accounts[128];
    char kurir_accounts[128];
    int standin_port;
    int kurir_port;
    struct proc standin;
    struct proc kurir;
    const char *brokers;
};

static struct e2e e;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    cr_assert(f != NULL, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

/* The accounts: Jojka "shop" (the stand-in knows its key), Jojka "stale"
 * (it does not: the provider refuses), InTime "hooks-intime" (status
 * callbacks) and iP.1 "hooks-ip1" (delivery reports and incoming SMS). The
 * stand-in's own file lacks "stale". */
static void write_accounts(const char *path, bool for_standin)
{
    char json[4096];
    int sp = e.standin_port, kp = e.kurir_port;

    snprintf(json, sizeof(json),
             "{\"accounts\": {\n"
             " \"shop\": {\"provider\": \"jojka\",\n"
             "  \"base_url\": \"http://127.0.0.1:%d/websms/api\",\n"
             "  \"credentials\": {\"api_key\": \"e2e-key\"},\n"
             "  \"rate_limit\": {\"per_second\": 100, \"burst\": 100},\n"
             "  \"default_sender\": \"Shop\"},\n"
             "%s"
             " \"hooks-intime\": {\"provider\": \"intime\",\n"
             "  \"base_url\": \"http://127.0.0.1:%d/api/1.0\",\n"
             "  \"credentials\": {\"user\": \"e2e\", \"hash\": \"h-1\"},\n"
             "  \"rate_limit\": {\"per_second\": 100},\n"
             "  \"default_sender\": \"Shop\", \"webhook_token\": \"tok-i\"},\n"
             " \"hooks-ip1\": {\"provider\": \"ip1\",\n"
             "  \"base_url\": \"http://127.0.0.1:%d\",\n"
             "  \"credentials\": {\"api_key\": \"k-ip1\"},\n"
             "  \"rate_limit\": {\"per_second\": 100},\n"
             "  \"default_sender\": \"iP1\", \"webhook_token\": \"tok-p\",\n"
             "  \"standin\": {\"inbound_url\": \"http://127.0.0.1:%d/callbacks/"
             "hooks-ip1/inbound?token=tok-p\"}}\n"
             "}}\n",
             sp,
             for_standin
                 ? ""
                 : " \"stale\": {\"provider\": \"jojka\",\n"
                   "  \"base_url\": \"http://127.0.0.1:0/websms/api\",\n"
                   "  \"credentials\": {\"api_key\": \"revoked-key\"},\n"
                   "  \"rate_limit\": {\"per_second\": 100}},\n",
             sp, sp, kp);
    if (!for_standin) {
        /* "stale" talks to the same stand-in. */
        char *p = strstr(json, "127.0.0.1:0/");
        char port[8];
        snprintf(port, sizeof(port), "%d", sp);
        cr_assert(p != NULL);
        memmove(p + 10 + strlen(port), p + 11, strlen(p + 11) + 1);
        memcpy(p + 10, port, strlen(port));
    }
    write_file(path, json);
}

static void start_stack(void)
{
    e.brokers = support_kafka();
    tk_unique(e.uniq, sizeof(e.uniq));
    snprintf(e.topic_send, sizeof(e.topic_send), "%s.send", e.uniq);
    snprintf(e.topic_campaign, sizeof(e.topic_campaign), "%s.campaign", e.uniq);
    snprintf(e.topic_contacts, sizeof(e.topic_contacts), "%s.contacts", e.uniq);
    snprintf(e.topic_status, sizeof(e.topic_status), "%s.status", e.uniq);
    snprintf(e.topic_replies, sizeof(e.topic_replies), "%s.replies", e.uniq);
    snprintf(e.topic_dlq, sizeof(e.topic_dlq), "%s.dlq", e.uniq);
    e.standin_port = support_free_port();
    e.kurir_port = support_free_port();
    cr_assert(e.standin_port != e.kurir_port);

    snprintf(e.standin_accounts, sizeof(e.standin_accounts),
             "/tmp/%s-standin.json", e.uniq);
    write_accounts(e.standin_accounts, true);
    snprintf(e.kurir_accounts, sizeof(e.kurir_accounts), "/tmp/%s-kurir.json",
             e.uniq);
    write_accounts(e.kurir_accounts, false);

    char listen[32];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", e.standin_port);
    char *standin_argv[] = {(char *)support_env("KURIR_STANDIN"),
                            "--listen",
                            listen,
                            "--accounts",
                            e.standin_accounts,
                            NULL};
    int ret = support_spawn(&e.standin, standin_argv, NULL, true, 10000);
    cr_assert(eq(int, ret, 0), "stand-in did not start");

    static char env[16][160];
    char *envp[17];
    size_t n = 0;
#define ENV(...) \
    snprintf(env[n], sizeof(env[n]), __VA_ARGS__), envp[n] = env[n], n++
    ENV("KURIR_KAFKA_BROKERS=%s", e.brokers);
    ENV("KURIR_KAFKA_GROUP=%s-group", e.uniq);
    ENV("KURIR_ACCOUNTS=%s", e.kurir_accounts);
    ENV("KURIR_HTTP_LISTEN=127.0.0.1:%d", e.kurir_port);
    ENV("KURIR_PUBLIC_URL=http://127.0.0.1:%d", e.kurir_port);
    ENV("KURIR_TOPIC_SEND=%s", e.topic_send);
    ENV("KURIR_TOPIC_CAMPAIGN=%s", e.topic_campaign);
    ENV("KURIR_TOPIC_CONTACTS=%s", e.topic_contacts);
    ENV("KURIR_TOPIC_STATUS=%s", e.topic_status);
    ENV("KURIR_TOPIC_REPLIES=%s", e.topic_replies);
    ENV("KURIR_TOPIC_DLQ=%s", e.topic_dlq);
    ENV("KURIR_REDIS_URL=redis://%s/0", support_redis());
    ENV("KURIR_LOG_LEVEL=debug");
#undef ENV
    envp[n] = NULL;
    char *kurir_argv[] = {(char *)support_env("KURIR_BIN"), "run", NULL};
    ret = support_spawn(&e.kurir, kurir_argv, envp, true, 30000);
    cr_assert(eq(int, ret, 0), "kurir did not start");
}

static void stop_stack(void)
{
    if (e.kurir.pid > 0) {
        support_stop(&e.kurir, SIGKILL, 5000);
    }
    if (e.standin.pid > 0)
        support_stop(&e.standin, SIGTERM, 5000);
    unlink(e.standin_accounts);
    unlink(e.kurir_accounts);
}

static void produce_job(const char *topic, const char *key, const char *json)
{
    tk_produce(e.brokers, topic, key, json, strlen(json));
}

TestSuite(e2e, .init = start_stack, .fini = stop_stack, .timeout = 240);

Test(e2e, send_job_is_submitted_and_provider_error_fails)
{
    struct tk_reader status;

    tk_reader_open(&status, e.brokers, e.topic_status);
    produce_job(e.topic_send, "order-1001",
                "{\"id\": \"order-1001\", \"account\": \"shop\", "
                "\"to\": [\"+46701234567\"], \"text\": \"Din order har "
                "skickats\", \"reference\": \"ref-1001\"}");
    static const char *const want_ok[] = {"job_id", "order-1001", "state",
                                          "submitted", NULL};
    json_t *ev = tk_reader_wait_json(&status, want_ok, 90000, NULL);
    if (ev == NULL)
        support_proc_log_dump(&e.kurir);
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
    produce_job(e.topic_send, "stale-1",
                "{\"id\": \"stale-1\", \"account\": \"stale\", "
                "\"to\": [\"46701234567\"], \"text\": \"hej\"}");
    static const char *const want_fail[] = {"job_id", "stale-1", "state",
                                            "failed", NULL};
    ev = tk_reader_wait_json(&status, want_fail, 60000, NULL);
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
    produce_job(e.topic_send, NULL, "{\"id\": \"broken\", ");
    produce_job(e.topic_send, "who-1",
                "{\"id\": \"who-1\", \"account\": \"nobody\", "
                "\"to\": [\"46701234567\"], \"text\": \"hej\"}");
    produce_job(e.topic_send, "num-1",
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

/* Counts the stand-in's recorded requests whose text contains `needle`. */
static int standin_count(const char *needle)
{
    char url[128];
    struct support_http r;
    int n = 0;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/_standin/requests",
             e.standin.port);
    int ret = support_http(&r, "GET", url, NULL, NULL, 0);
    cr_assert(eq(int, ret, 0));
    for (const char *p = r.body; (p = strstr(p, needle)) != NULL;
         p += strlen(needle))
        n++;
    support_http_cleanup(&r);
    return n;
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

Test(e2e, a_job_seen_twice_is_sent_once)
{
    struct tk_reader status;
    static const char job[] =
        "{\"id\": \"twice-1\", \"account\": \"shop\", \"to\": "
        "[\"46701234567\"], \"text\": \"only once please\"}";

    tk_reader_open(&status, e.brokers, e.topic_status);
    produce_job(e.topic_send, "twice-1", job);
    static const char *const want[] = {"job_id", "twice-1", "state",
                                       "submitted", NULL};
    json_t *first = tk_reader_wait_json(&status, want, 90000, NULL);
    if (first == NULL)
        support_proc_log_dump(&e.kurir);
    cr_assert(ne(ptr, first, NULL), "no submitted event for twice-1");

    /* The same job again: its known status comes back, nothing is sent. */
    produce_job(e.topic_send, "twice-1", job);
    json_t *again = tk_reader_wait_json(&status, want, 60000, NULL);
    cr_assert(ne(ptr, again, NULL), "the known status was not re-emitted");
    cr_assert(eq(str,
                 (char *)json_string_value(
                     json_object_get(again, "provider_message_id")),
                 (char *)json_string_value(
                     json_object_get(first, "provider_message_id"))));
    int sent = standin_count("only%20once%20please");
    cr_assert(eq(int, sent, 1), "the provider got the job %d times", sent);
    json_decref(first);
    json_decref(again);
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
    produce_job(e.topic_send, "later-1", job);
    static const char *const sched[] = {"job_id", "later-1", "state",
                                        "scheduled", NULL};
    json_t *ev = tk_reader_wait_json(&status, sched, 90000, NULL);
    if (ev == NULL)
        support_proc_log_dump(&e.kurir);
    cr_assert(ne(ptr, ev, NULL), "no scheduled event for later-1");
    json_decref(ev);
    cr_assert(eq(int, standin_count("a%20bit%20later"), 0),
              "sent before it was due");

    static const char *const sub[] = {"job_id", "later-1", "state", "submitted",
                                      NULL};
    ev = tk_reader_wait_json(&status, sub, 60000, NULL);
    cr_assert(ne(ptr, ev, NULL), "no submitted event for later-1");
    json_decref(ev);
    cr_assert(ge(i64, (int64_t)time(NULL), (int64_t)due), "sent too early");
    cr_assert(eq(int, standin_count("a%20bit%20later"), 1));
    tk_reader_close(&status);
}

Test(e2e, delivery_callback_makes_the_send_delivered)
{
    struct tk_reader status;

    tk_reader_open(&status, e.brokers, e.topic_status);
    produce_job(e.topic_send, "cb-1",
                "{\"id\": \"cb-1\", \"account\": \"hooks-intime\", "
                "\"to\": [\"46701234567\"], \"text\": \"Hej åäö\"}");
    static const char *const want[] = {"job_id", "cb-1", "state", "delivered",
                                       NULL};
    json_t *ev = tk_reader_wait_json(&status, want, 90000, NULL);
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
    if (ev == NULL)
        support_proc_log_dump(&e.kurir);
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
    cr_assert(ne(ptr, strstr(r.body, "kurir_jobs_total "), NULL), "%s", r.body);
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
    future_stamp(stamp, sizeof(stamp), 3);
    snprintf(job, sizeof(job),
             "{\"id\": \"camp-1\", \"account\": \"shop\", \"action\": "
             "\"create\", \"name\": \"Rea\", \"to\": [\"46701230001\", "
             "\"46701230002\"], \"text\": \"never sent\", \"send_at\": "
             "\"%s\"}",
             stamp);
    tk_reader_open(&status, e.brokers, e.topic_status);
    produce_job(e.topic_campaign, "camp-1", job);
    static const char *const sched[] = {"job_id", "camp-1", "state",
                                        "scheduled", NULL};
    json_t *ev = tk_reader_wait_json(&status, sched, 90000, NULL);
    if (ev == NULL)
        support_proc_log_dump(&e.kurir);
    cr_assert(ne(ptr, ev, NULL), "camp-1 was not scheduled");
    json_decref(ev);

    produce_job(e.topic_campaign, "camp-1-stop",
                "{\"id\": \"camp-1-stop\", \"account\": \"shop\", "
                "\"action\": \"cancel\", \"campaign_id\": \"camp-1\"}");
    static const char *const cancelled[] = {"job_id", "camp-1-stop", "state",
                                            "cancelled", NULL};
    ev = tk_reader_wait_json(&status, cancelled, 60000, NULL);
    cr_assert(ne(ptr, ev, NULL), "the cancel job did not end cancelled");
    json_decref(ev);

    /* Past the due time, nothing of the campaign reaches the provider. */
    static const char *const sent[] = {"job_id", "camp-1", "state", "submitted",
                                       NULL};
    ev = tk_reader_wait_json(&status, sent, 6000, NULL);
    cr_assert(eq(ptr, ev, NULL), "a cancelled campaign was sent");
    cr_assert(eq(int, standin_count("never%20sent"), 0));
    tk_reader_close(&status);
}
