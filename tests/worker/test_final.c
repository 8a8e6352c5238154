/* tests/worker/test_final.c - every send driven to a final state (issue
 * 10): each provider's own route to `delivered` (callback, webhook, status
 * read), a campaign's recipients, a cancel that stops a campaign in kurir
 * and at the provider, the give-up (`failed`, no_report), an `unknown`
 * settled by its report, and iP.1's hashed reference of a long job id
 * mapped back. Real Kafka, Redis, the stand-in and a kurir worker. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "tests/support/kafka.h"
#include "tests/support/support.h"
#include "tests/worker/stack.h"

/* The give-up of this stack: short, so a test sees it. */
#define GIVE_UP_MS 8000

static struct stack e;

/* An iP.1 account read by polling (no callback URL), Jojka and InTime
 * accounts, and an iP.1 legacy account with the unconfirmed operations
 * (status reads, timed bundles, cancels), all scheduling campaigns at the
 * provider; and a legacy account without the unconfirmed operations. */
static const char extra_accounts[] =
    " \"fin-ip1-poll\": {\"provider\": \"ip1\",\n"
    "  \"base_url\": \"http://127.0.0.1:@PORT@\",\n"
    "  \"credentials\": {\"api_key\": \"k-fin-poll\"},\n"
    "  \"rate_limit\": {\"per_second\": 100},\n"
    "  \"default_sender\": \"iP1\", \"webhook_token\": \"tok-fp\",\n"
    "  \"options\": {\"poll_statuses\": true, "
    "\"schedule_at_provider\": true}},\n"
    " \"fin-jojka-sched\": {\"provider\": \"jojka\",\n"
    "  \"base_url\": \"http://127.0.0.1:@PORT@/websms/api\",\n"
    "  \"credentials\": {\"api_key\": \"fin-key\"},\n"
    "  \"rate_limit\": {\"per_second\": 100},\n"
    "  \"default_sender\": \"Shop\",\n"
    "  \"options\": {\"schedule_at_provider\": true}},\n"
    " \"fin-legacy\": {\"provider\": \"ip1-legacy\",\n"
    "  \"base_url\": \"http://127.0.0.1:@PORT@\",\n"
    "  \"credentials\": {\"account\": \"ip1-7777\", \"password\": \"finpw\"},\n"
    "  \"rate_limit\": {\"per_second\": 100},\n"
    "  \"default_sender\": \"Shop\", \"webhook_token\": \"tok-fl\",\n"
    "  \"options\": {\"legacy_unconfirmed_soap\": true, "
    "\"schedule_at_provider\": true}},\n"
    " \"fin-intime-sched\": {\"provider\": \"intime\",\n"
    "  \"base_url\": \"http://127.0.0.1:@PORT@/api/1.0\",\n"
    "  \"credentials\": {\"user\": \"fin\", \"hash\": \"h-fin\"},\n"
    "  \"rate_limit\": {\"per_second\": 100},\n"
    "  \"default_sender\": \"Shop\", \"webhook_token\": \"tok-fi\",\n"
    "  \"options\": {\"schedule_at_provider\": true}},\n"
    " \"fin-legacy-plain\": {\"provider\": \"ip1-legacy\",\n"
    "  \"base_url\": \"http://127.0.0.1:@PORT@\",\n"
    "  \"credentials\": {\"account\": \"ip1-8888\", \"password\": "
    "\"plainpw\"},\n"
    "  \"rate_limit\": {\"per_second\": 100},\n"
    "  \"default_sender\": \"Shop\", \"webhook_token\": \"tok-fq\"},\n";

static const char *const extra_env[] = {"KURIR_REPORT_GIVE_UP_MS=8000",
                                        "KURIR_HTTP_TIMEOUT_MS=2000", NULL};

static void start_stack(void)
{
    stack_start_with(&e, support_redis(), extra_accounts, extra_env);
}

static void stop_stack(void)
{
    stack_stop(&e);
}

TestSuite(final, .init = start_stack, .fini = stop_stack, .timeout = 240);

/* Every status event a test read, in order. */
static json_t *events;

/* Reads what the reader has for up to ms into `events`. */
static void pump(struct tk_reader *r, int ms)
{
    static const char *const none[] = {"job_id", "\x01 none", NULL};
    json_t *x = tk_reader_wait_json(r, none, ms, events);

    json_decref(x);
}

static bool is(const json_t *ev, const char *key, const char *value)
{
    const char *v = json_string_value(json_object_get(ev, key));

    return value == NULL || (v != NULL && strcmp(v, value) == 0);
}

/* The first event read of job (and recipient, NULL: any) in state. */
static json_t *find(const char *job, const char *recipient, const char *state)
{
    for (size_t i = 0; i < json_array_size(events); i++) {
        json_t *ev = json_array_get(events, i);
        if (is(ev, "job_id", job) && is(ev, "recipient", recipient) &&
            is(ev, "state", state))
            return ev;
    }
    return NULL;
}

/* Waits up to timeout_ms for that event; returns it (borrowed) or NULL
 * with the worker's log printed. */
static json_t *await_event(struct tk_reader *r, const char *job,
                           const char *recipient, const char *state,
                           int timeout_ms)
{
    int64_t deadline = support_now_ms() + timeout_ms;
    json_t *ev;

    while ((ev = find(job, recipient, state)) == NULL &&
           support_now_ms() < deadline)
        pump(r, 200);
    if (ev == NULL)
        support_proc_log_dump(&e.kurir);
    return ev;
}

static void open_events(struct tk_reader *r)
{
    events = json_array();
    tk_reader_open(r, e.brokers, e.topic_status);
}

static void close_events(struct tk_reader *r)
{
    tk_reader_close(r);
    json_decref(events);
    events = NULL;
}

static void send_one(const char *id, const char *account, const char *to)
{
    char job[512];

    snprintf(job, sizeof(job),
             "{\"id\": \"%s\", \"account\": \"%s\", \"to\": [\"%s\"], "
             "\"text\": \"final %s\"}",
             id, account, to, id);
    stack_produce(&e, e.topic_send, id, job);
}

/* The stand-in's messages of an account, as JSON (caller decrefs). */
static json_t *standin_messages(const char *account)
{
    char url[160];
    struct support_http r;

    snprintf(url, sizeof(url),
             "http://127.0.0.1:%d/_standin/messages?account=%s", e.standin_port,
             account);
    cr_assert(eq(int, support_http(&r, "GET", url, NULL, NULL, 0), 0));
    json_t *all = json_loadb(r.body, r.body_len, 0, NULL);
    support_http_cleanup(&r);
    bool list = json_is_array(all);
    cr_assert(list, "the stand-in's messages are not a list");
    return all;
}

static void future_stamp(char *out, size_t out_size, int seconds)
{
    time_t t = time(NULL) + seconds;
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, out_size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Each provider's own route: InTime's status callback, iP.1's delivery
 * report webhook, iP.1 REST's message read (an account without a callback
 * URL), the legacy gateway's Status read (with the setting), Jojka's
 * get_msg_status. */
Test(final, every_provider_reaches_delivered_by_its_own_route)
{
    static const char *const sends[][3] = {
        {"fin-1-intime", "hooks-intime", "46701110001"},
        {"fin-1-ip1hook", "hooks-ip1", "46701110002"},
        {"fin-1-ip1poll", "fin-ip1-poll", "46701110003"},
        {"fin-1-legacy", "fin-legacy", "46701110004"},
        {"fin-1-jojka", "shop", "46701110005"},
    };
    struct tk_reader status;

    open_events(&status);
    for (size_t i = 0; i < sizeof(sends) / sizeof(sends[0]); i++)
        send_one(sends[i][0], sends[i][1], sends[i][2]);
    for (size_t i = 0; i < sizeof(sends) / sizeof(sends[0]); i++) {
        json_t *ev =
            await_event(&status, sends[i][0], sends[i][2], "delivered", 60000);
        cr_assert(ne(ptr, ev, NULL), "%s (%s) never delivered", sends[i][0],
                  sends[i][1]);
        cr_assert(is(ev, "account", sends[i][1]));
        cr_assert(is(ev, "type", "send"));
    }
    /* The polled iP.1 account gave the provider no webhook: its delivered
     * came from a read. */
    json_t *msgs = standin_messages("fin-ip1-poll");
    cr_assert(ge(sz, json_array_size(msgs), 1));
    json_t *cb = json_object_get(json_array_get(msgs, 0), "callback_url");
    bool no_hook = cb == NULL || json_is_null(cb);
    cr_assert(no_hook, "the polled iP.1 account gave a webhook");
    json_decref(msgs);
    cr_assert(gt(int, stack_standin_count(&e, "messages?limit=1000"), 0),
              "the polled iP.1 batch was never read");
    close_events(&status);
}

/* A campaign's recipients reach `delivered` on every route, and their
 * events say "campaign". */
Test(final, campaign_recipients_are_delivered)
{
    static const char *const camps[][2] = {
        {"fin-c-jojka", "shop"},        {"fin-c-ip1poll", "fin-ip1-poll"},
        {"fin-c-legacy", "fin-legacy"}, {"fin-c-intime", "hooks-intime"},
        {"fin-c-ip1hook", "hooks-ip1"},
    };
    static const char *const to[] = {"46702220001", "46702220002",
                                     "46702220003"};
    struct tk_reader status;
    char job[512];

    open_events(&status);
    for (size_t i = 0; i < sizeof(camps) / sizeof(camps[0]); i++) {
        snprintf(job, sizeof(job),
                 "{\"id\": \"%s\", \"account\": \"%s\", \"action\": "
                 "\"create\", \"name\": \"Rea\", \"to\": [\"%s\", \"%s\", "
                 "\"%s\"], \"text\": \"campaign %s\"}",
                 camps[i][0], camps[i][1], to[0], to[1], to[2], camps[i][0]);
        stack_produce(&e, e.topic_campaign, camps[i][0], job);
    }
    for (size_t i = 0; i < sizeof(camps) / sizeof(camps[0]); i++)
        for (size_t k = 0; k < 3; k++) {
            json_t *ev =
                await_event(&status, camps[i][0], to[k], "delivered", 60000);
            cr_assert(ne(ptr, ev, NULL), "%s: %s never delivered", camps[i][0],
                      to[k]);
            cr_assert(is(ev, "type", "campaign"), "%s: type %s", camps[i][0],
                      json_string_value(json_object_get(ev, "type")));
        }
    close_events(&status);
}

/* A cancel ends every recipient it stopped `cancelled`: those waiting in
 * kurir's schedule, and those a provider held until send_at (cancelled
 * there: the stand-in says so). */
Test(final, cancelled_scheduled_campaigns_end_cancelled)
{
    static const char *const camps[][3] = {
        /* job, account, where it waits */
        {"fin-x-kurir", "shop", "scheduled"},
        {"fin-x-jojka", "fin-jojka-sched", "submitted"},
        {"fin-x-ip1", "fin-ip1-poll", "submitted"},
        {"fin-x-intime", "fin-intime-sched", "submitted"},
        {"fin-x-legacy", "fin-legacy", "submitted"},
    };
    const size_t n = sizeof(camps) / sizeof(camps[0]);
    static const char *const to[] = {"46703330001", "46703330002"};
    struct tk_reader status;
    char job[512], stamp[32], id[64];

    open_events(&status);
    future_stamp(stamp, sizeof(stamp), 120);
    for (size_t i = 0; i < n; i++) {
        snprintf(job, sizeof(job),
                 "{\"id\": \"%s\", \"account\": \"%s\", \"action\": "
                 "\"create\", \"name\": \"Later\", \"to\": [\"%s\", \"%s\"], "
                 "\"text\": \"later\", \"send_at\": \"%s\"}",
                 camps[i][0], camps[i][1], to[0], to[1], stamp);
        stack_produce(&e, e.topic_campaign, camps[i][0], job);
    }
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < 2; k++)
            cr_assert(
                ne(ptr,
                   await_event(&status, camps[i][0], to[k], camps[i][2], 60000),
                   NULL),
                "%s: %s not %s", camps[i][0], to[k], camps[i][2]);
    for (size_t i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "%s-stop", camps[i][0]);
        snprintf(job, sizeof(job),
                 "{\"id\": \"%s\", \"account\": \"%s\", \"action\": "
                 "\"cancel\", \"campaign_id\": \"%s\"}",
                 id, camps[i][1], camps[i][0]);
        stack_produce(&e, e.topic_campaign, id, job);
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "%s-stop", camps[i][0]);
        cr_assert(
            ne(ptr, await_event(&status, id, NULL, "cancelled", 60000), NULL),
            "the cancel %s did not end cancelled", id);
        for (size_t k = 0; k < 2; k++) {
            json_t *ev =
                await_event(&status, camps[i][0], to[k], "cancelled", 30000);
            cr_assert(ne(ptr, ev, NULL), "%s: %s not cancelled", camps[i][0],
                      to[k]);
            cr_assert(is(ev, "type", "campaign"));
        }
    }
    /* At the provider: the held messages are cancelled, none sent. */
    for (size_t i = 1; i < n; i++) {
        json_t *msgs = standin_messages(camps[i][1]);
        size_t cancelled = 0;
        for (size_t k = 0; k < json_array_size(msgs); k++) {
            json_t *m = json_array_get(msgs, k);
            if (is(m, "text", "later"))
                cancelled += is(m, "state", "cancelled");
        }
        json_decref(msgs);
        cr_assert(eq(sz, cancelled, 2), "%s: %zu cancelled at the stand-in",
                  camps[i][1], cancelled);
    }
    /* Kurir's own schedule never sends its part. */
    cr_assert(eq(int, stack_standin_count(&e, "fin-x-kurir"), 0));
    close_events(&status);
}

/* A recipient no report reaches ends `failed` (no_report) after the
 * give-up; a delivered one is never given up on. */
Test(final, no_report_after_the_give_up)
{
    struct tk_reader status;

    open_events(&status);
    send_one("fin-4-silent", "fin-legacy-plain", "46704440001");
    send_one("fin-4-heard", "shop", "46704440002");
    json_t *sub =
        await_event(&status, "fin-4-silent", "46704440001", "submitted", 60000);
    cr_assert(ne(ptr, sub, NULL), "the legacy send was not submitted");
    int64_t submitted_ms = support_now_ms();
    cr_assert(ne(
        ptr,
        await_event(&status, "fin-4-heard", "46704440002", "delivered", 60000),
        NULL));
    json_t *ev = await_event(&status, "fin-4-silent", "46704440001", "failed",
                             GIVE_UP_MS + 30000);
    cr_assert(ne(ptr, ev, NULL), "no give-up for a send without reports");
    cr_assert(is(json_object_get(ev, "error"), "code", "no_report"));
    cr_assert(ge(i64, support_now_ms() - submitted_ms, GIVE_UP_MS - 2000),
              "given up before its time");
    /* Past the give-up, the delivered send stays delivered. */
    pump(&status, 3000);
    cr_assert(eq(ptr, find("fin-4-heard", NULL, "failed"), NULL),
              "a delivered send was given up on");
    close_events(&status);
}

static void standin_post(const char *path, const char *body)
{
    char url[128];
    struct support_http r;
    char *hdrs[] = {"Content-Type: application/json", NULL};

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", e.standin_port, path);
    cr_assert(eq(int,
                 support_http(&r, body ? "POST" : "DELETE", url, hdrs, body,
                              body ? strlen(body) : 0),
                 0));
    cr_assert(lt(long, r.status, 300L), "%s: %s", path, r.body);
    support_http_cleanup(&r);
}

/* Sends job `id` to `account` while the stand-in takes the provider's
 * next request but never answers it (kurir times out: `unknown`), then
 * waits for `delivered`. */
static void unknown_then_delivered(const char *provider, const char *account,
                                   const char *id, const char *to,
                                   const char *why)
{
    struct tk_reader status;
    char fault[160], clear[64];

    open_events(&status);
    snprintf(fault, sizeof(fault),
             "{\"provider\": \"%s\", \"timeout\": 1, \"hold_ms\": 4000, "
             "\"process\": true, \"count\": 1}",
             provider);
    standin_post("/_standin/faults", fault);
    send_one(id, account, to);
    json_t *ev = await_event(&status, id, to, "unknown", 60000);
    snprintf(clear, sizeof(clear), "/_standin/faults?provider=%s", provider);
    standin_post(clear, NULL);
    cr_assert(ne(ptr, ev, NULL), "the timeout did not leave %s unknown", id);
    cr_assert(ne(ptr, await_event(&status, id, to, "delivered", 60000), NULL),
              "%s", why);
    close_events(&status);
}

/* A request the provider took but did not answer in time leaves the
 * recipient `unknown`; the provider's report, later, settles it. */
Test(final, unknown_is_settled_by_its_report)
{
    standin_post("/_standin/settings", "{\"delivery_ms\": 5000}");
    unknown_then_delivered("intime", "hooks-intime", "fin-5-unknown",
                           "46705550001",
                           "the report did not settle the unknown recipient");
}

/* iP.1 without a webhook: a send whose answer never came is found among
 * the account's batches by its reference, then read: the read settles the
 * `unknown` recipient. */
Test(final, unknown_is_settled_by_a_read)
{
    unknown_then_delivered("ip1", "fin-ip1-poll", "fin-6-unknown",
                           "46706660009",
                           "no read settled the unknown recipient");
    cr_assert(gt(int, stack_standin_count(&e, "order=DESC"), 0),
              "the batch was not looked for");
}

/* A job id over iP.1's 40 characters goes as its hashed reference; the
 * delivery report maps back to the whole id. */
Test(final, long_ip1_job_id_report_names_its_job)
{
    static const char id[] =
        "order-2026-12-02-customer-4711-shipment-notice-with-a-long-name";
    struct tk_reader status;

    cr_assert(gt(sz, strlen(id), 40));
    open_events(&status);
    send_one(id, "hooks-ip1", "46706660001");
    json_t *ev = await_event(&status, id, "46706660001", "delivered", 60000);
    cr_assert(ne(ptr, ev, NULL), "the report of a long job id lost its job");
    cr_assert(eq(ptr, find("", NULL, NULL), NULL),
              "an event with an empty job_id");
    json_t *msgs = standin_messages("hooks-ip1");
    bool hashed = false;
    for (size_t i = 0; i < json_array_size(msgs); i++) {
        const char *ref = json_string_value(
            json_object_get(json_array_get(msgs, i), "reference"));
        hashed = hashed ||
                 (ref != NULL && strchr(ref, '~') != NULL && strlen(ref) <= 40);
    }
    json_decref(msgs);
    cr_assert(hashed, "the stand-in never saw a hashed reference");
    close_events(&status);
}

/* InTime reports only by callback: an InTime account without a callback
 * URL stops start-up with one line. */
Test(final, intime_without_a_public_url_stops_start_up)
{
    char path[128], env_acc[192];
    struct proc p;

    snprintf(path, sizeof(path), "/tmp/%s-nourl.json", e.uniq);
    FILE *f = fopen(path, "w");
    cr_assert(f != NULL);
    fputs("{\"accounts\": {\"it\": {\"provider\": \"intime\", \"base_url\": "
          "\"http://127.0.0.1:1/api/1.0\", \"credentials\": {\"user\": \"u\", "
          "\"hash\": \"h\"}, \"rate_limit\": {\"per_second\": 1}, "
          "\"default_sender\": \"Shop\", \"webhook_token\": \"t\"}}}\n",
          f);
    fclose(f);
    snprintf(env_acc, sizeof(env_acc), "KURIR_ACCOUNTS=%s", path);
    char *env[] = {env_acc, "KURIR_HTTP_LISTEN=127.0.0.1:0", NULL};
    char *argv[] = {(char *)support_env("KURIR_BIN"), "run", NULL};
    cr_assert(eq(int, support_spawn(&p, argv, env, false, 10000), 0));
    bool said = false;
    POLL_UNTIL(said,
               support_proc_log_has(&p, "account it: InTime reports statuses "
                                        "only by callback"),
               10000);
    int st = support_stop(&p, SIGKILL, 5000);
    unlink(path);
    cr_assert(said, "no start-up error for InTime without a callback URL");
    cr_assert(ne(int, st, 0));
}

/* InTime cancels message by message: a campaign of more messages than one
 * call list holds (64) is cancelled in rounds, every one of them. */
Test(final, a_cancel_of_many_held_messages_cancels_them_all)
{
    enum { N = 70 };
    struct tk_reader status;
    char job[N * 20 + 512], stamp[32], to[N][24];
    size_t len;

    open_events(&status);
    future_stamp(stamp, sizeof(stamp), 120);
    len = (size_t)snprintf(job, sizeof(job),
                           "{\"id\": \"fin-m\", \"account\": "
                           "\"fin-intime-sched\", \"action\": \"create\", "
                           "\"name\": \"Many\", \"text\": \"many later\", "
                           "\"send_at\": \"%s\", \"to\": [",
                           stamp);
    for (unsigned i = 0; i < N; i++) {
        snprintf(to[i], sizeof(to[i]), "467077%05u", i);
        len += (size_t)snprintf(job + len, sizeof(job) - len, "%s\"%s\"",
                                i > 0 ? ", " : "", to[i]);
    }
    snprintf(job + len, sizeof(job) - len, "]}");
    stack_produce(&e, e.topic_campaign, "fin-m", job);
    for (int i = 0; i < N; i++)
        cr_assert(ne(ptr,
                     await_event(&status, "fin-m", to[i], "submitted", 60000),
                     NULL),
                  "%s not submitted", to[i]);
    stack_produce(&e, e.topic_campaign, "fin-m-stop",
                  "{\"id\": \"fin-m-stop\", \"account\": \"fin-intime-sched\", "
                  "\"action\": \"cancel\", \"campaign_id\": \"fin-m\"}");
    cr_assert(ne(ptr,
                 await_event(&status, "fin-m-stop", NULL, "cancelled", 60000),
                 NULL));
    for (int i = 0; i < N; i++)
        cr_assert(ne(ptr,
                     await_event(&status, "fin-m", to[i], "cancelled", 30000),
                     NULL),
                  "%s not cancelled", to[i]);
    json_t *msgs = standin_messages("fin-intime-sched");
    size_t cancelled = 0;
    for (size_t k = 0; k < json_array_size(msgs); k++) {
        json_t *m = json_array_get(msgs, k);
        cancelled += is(m, "text", "many later") && is(m, "state", "cancelled");
    }
    json_decref(msgs);
    cr_assert(eq(sz, cancelled, N), "%zu of %d cancelled at the stand-in",
              cancelled, N);
    close_events(&status);
}
