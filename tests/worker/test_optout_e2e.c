/* tests/worker/test_optout_e2e.c - opt-out through `kurir run`: stop-word
 * replies (an iP.1 callback, a Jojka reply poll), block-list jobs and a
 * block-list import fill the account's opt-out set, and later sends to
 * those numbers end `rejected` (opted_out) without a provider request. And
 * personalised campaigns: the stand-in's record shows each recipient's own
 * text. A real Kafka broker, Redis, a kurir worker and the stand-ins. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "ratelimit/optout.h"
#include "tests/support/kafka.h"
#include "tests/support/support.h"
#include "tests/worker/stack.h"

static struct stack e;
static json_t *seen; /* every event read so far, of any topic */

static void start_stack(void)
{
    stack_start(&e, support_redis());
    seen = json_array();
}

static void stop_stack(void)
{
    stack_stop(&e);
    json_decref(seen);
}

TestSuite(optout, .init = start_stack, .fini = stop_stack, .timeout = 240);
TestSuite(personal, .init = start_stack, .fini = stop_stack, .timeout = 240);

/* Waits for an event of reader r with key = value and key2 = value2. */
static json_t *wait_for(struct tk_reader *r, const char *key, const char *value,
                        const char *key2, const char *value2)
{
    const char *const want[] = {key, value, key2, value2, NULL};
    json_t *ev = tk_reader_wait_kept(r, seen, want, 60000);

    if (ev == NULL)
        support_proc_log_dump(&e.kurir);
    cr_assert(ev != NULL, "no event with %s=%s, %s=%s", key, value, key2,
              value2);
    return ev;
}

/* Waits for one recipient of a job to reach `state`. */
static json_t *wait_recipient(struct tk_reader *status, const char *job,
                              const char *recipient, const char *state)
{
    const char *const want[] = {"job_id", job,   "recipient", recipient,
                                "state",  state, NULL};
    json_t *ev = tk_reader_wait_kept(status, seen, want, 60000);

    if (ev == NULL)
        support_proc_log_dump(&e.kurir);
    cr_assert(ev != NULL, "%s/%s is not %s", job, recipient, state);
    return ev;
}

/* Waits for the event that ends `recipient` of `job` rejected because it
 * opted out. */
static void wait_opted_out(struct tk_reader *status, const char *job,
                           const char *recipient)
{
    json_t *ev = wait_recipient(status, job, recipient, "rejected");
    json_t *err = json_object_get(ev, "error");

    cr_assert(eq(str, (char *)json_string_value(json_object_get(err, "code")),
                 "opted_out"),
              "%s/%s", job, recipient);
    json_decref(ev);
}

static void standin_post(const char *path, const char *body)
{
    char url[160];
    struct support_http r;
    char *hdrs[] = {"Content-Type: application/json", NULL};

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", e.standin.port, path);
    int ret = support_http(&r, "POST", url, hdrs, body, strlen(body));
    cr_assert(eq(int, ret, 0), "POST %s", path);
    cr_assert(r.status >= 200 && r.status < 300, "POST %s: %d %s", path,
              r.status, r.body);
    support_http_cleanup(&r);
}

static struct rconn *redis_open(void)
{
    char url[300], errstr[256];
    struct rconn *rc;

    snprintf(url, sizeof(url), "redis://%s/0", support_redis());
    struct rconn_opts o = {.url = url, .prefix = "kurir"};
    int ret = rconn_new(&rc, &o, errstr, sizeof(errstr));
    cr_assert(eq(int, ret, 0), "%s", errstr);
    return rc;
}

static bool opted_out(struct rconn *rc, const char *account, const char *m)
{
    char errstr[256];
    bool on = false;

    int ret = optout_has(rc, account, m, &on, errstr, sizeof(errstr));
    cr_assert(eq(int, ret, 0), "%s", errstr);
    return on;
}

/* A STOP reply by iP.1 callback and an AVREGISTRERA reply by Jojka's reply
 * poll: each sender is opted out (an event says so), and the next send to
 * it is rejected without a provider request while the other recipient of
 * the same unit is sent. A reply that only holds a stop word among others
 * changes nothing. */
Test(optout, stop_reply_then_send_is_rejected)
{
    struct tk_reader status, replies;

    tk_reader_open(&status, e.brokers, e.topic_status);
    tk_reader_open(&replies, e.brokers, e.topic_replies);
    standin_post("/_standin/inbound", "{\"account\": \"hooks-ip1\", \"from\": "
                                      "\"46705550201\", \"text\": \" Stop \"}");
    standin_post("/_standin/inbound",
                 "{\"account\": \"shop\", \"from\": \"46705550203\", "
                 "\"text\": \"avregistrera\"}");
    standin_post("/_standin/inbound",
                 "{\"account\": \"hooks-ip1\", \"from\": \"46705550205\", "
                 "\"text\": \"stop it please\"}");

    json_t *ev =
        wait_for(&replies, "type", "opted_out", "msisdn", "46705550201");
    cr_assert(eq(str, (char *)json_string_value(json_object_get(ev, "account")),
                 "hooks-ip1"));
    cr_assert(eq(str, (char *)json_string_value(json_object_get(ev, "source")),
                 "reply"));
    json_decref(ev);
    ev = wait_for(&replies, "type", "opted_out", "msisdn", "46705550203");
    cr_assert(eq(str, (char *)json_string_value(json_object_get(ev, "account")),
                 "shop"));
    json_decref(ev);
    /* The reply events themselves are there too. */
    json_decref(wait_for(&replies, "from", "46705550201", "text", " Stop "));
    json_decref(
        wait_for(&replies, "from", "46705550205", "text", "stop it please"));

    int before = stack_standin_count(&e, "46705550201");
    stack_produce(&e, e.topic_send, "o-ip1",
                  "{\"id\": \"o-ip1\", \"account\": \"hooks-ip1\", "
                  "\"to\": [\"46705550201\", \"46705550202\", "
                  "\"46705550205\"], \"text\": \"Rea!\"}");
    stack_produce(&e, e.topic_send, "o-jojka",
                  "{\"id\": \"o-jojka\", \"account\": \"shop\", "
                  "\"to\": [\"46705550203\"], \"text\": \"Rea!\"}");
    wait_opted_out(&status, "o-ip1", "46705550201");
    json_decref(wait_recipient(&status, "o-ip1", "46705550202", "submitted"));
    json_decref(wait_recipient(&status, "o-ip1", "46705550205", "submitted"));
    wait_opted_out(&status, "o-jojka", "46705550203");
    /* No provider request ever named the opted-out numbers. */
    cr_assert(eq(int, stack_standin_count(&e, "46705550201"), before));
    cr_assert(eq(int, stack_standin_count(&e, "46705550203"), 0));
    cr_assert(ge(int, stack_standin_count(&e, "46705550202"), 1));
    tk_reader_close(&replies);
    tk_reader_close(&status);
}

/* blocklist-import copies the provider's block list (written straight to
 * the stand-in, so kurir never saw it) into the opt-out set and publishes
 * it; a send to such a number is rejected; blocklist-remove takes it off
 * the set again, blocklist-add puts one on. */
Test(optout, blocklist_import_fills_the_set)
{
    struct tk_reader status, results;
    char url[160];
    struct support_http r;
    char *hdrs[] = {"Authorization: Bearer k-ip1", NULL};
    struct rconn *rc = redis_open();

    tk_reader_open(&status, e.brokers, e.topic_status);
    tk_reader_open(&results, e.brokers, e.topic_results);
    const char *nums[] = {"46705550301", "46705550302"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/v2/blacklist/%s",
                 e.standin.port, nums[i]);
        int ret = support_http(&r, "PUT", url, hdrs, NULL, 0);
        cr_assert(eq(int, ret, 0));
        cr_assert(r.status >= 200 && r.status < 300, "PUT: %d %s", r.status,
                  r.body);
        support_http_cleanup(&r);
        bool no1 = !opted_out(rc, "hooks-ip1", nums[i]);

        cr_assert(no1, "%s already", nums[i]);
    }

    stack_produce(&e, e.topic_contacts, "imp-1",
                  "{\"id\": \"imp-1\", \"account\": \"hooks-ip1\", "
                  "\"action\": \"blocklist-import\"}");
    json_t *ev =
        wait_for(&results, "job_id", "imp-1", "action", "blocklist-import");
    json_t *items = json_object_get(ev, "items");
    cr_assert(eq(sz, json_array_size(items), 2), "two numbers imported");
    json_decref(ev);
    json_decref(wait_for(&status, "job_id", "imp-1", "state", "delivered"));
    cr_assert(opted_out(rc, "hooks-ip1", "46705550301"));
    cr_assert(opted_out(rc, "hooks-ip1", "46705550302"));
    bool no2 = !opted_out(rc, "shop", "46705550301");

    cr_assert(no2, "per account");

    stack_produce(&e, e.topic_send, "imp-send",
                  "{\"id\": \"imp-send\", \"account\": \"hooks-ip1\", "
                  "\"to\": [\"46705550301\"], \"text\": \"hej\"}");
    wait_opted_out(&status, "imp-send", "46705550301");

    stack_produce(&e, e.topic_contacts, "imp-rm",
                  "{\"id\": \"imp-rm\", \"account\": \"hooks-ip1\", "
                  "\"action\": \"blocklist-remove\", "
                  "\"msisdns\": [\"46705550302\"]}");
    stack_produce(&e, e.topic_contacts, "imp-add",
                  "{\"id\": \"imp-add\", \"account\": \"hooks-intime\", "
                  "\"action\": \"blocklist-add\", "
                  "\"msisdns\": [\"46705550303\"]}");
    json_decref(wait_for(&status, "job_id", "imp-rm", "state", "delivered"));
    json_decref(wait_for(&status, "job_id", "imp-add", "state", "delivered"));
    bool no3 = !opted_out(rc, "hooks-ip1", "46705550302");

    cr_assert(no3, "still on the set");
    cr_assert(opted_out(rc, "hooks-intime", "46705550303"), "not on the set");
    rconn_free(rc);
    tk_reader_close(&results);
    tk_reader_close(&status);
}

/* The texts the stand-in recorded for account's messages to `recipient`. */
static bool standin_text(const char *account, const char *recipient,
                         const char *text)
{
    char url[200];
    struct support_http r;

    snprintf(url, sizeof(url),
             "http://127.0.0.1:%d/_standin/messages?account=%s&recipient=%s",
             e.standin.port, account, recipient);
    int ret = support_http(&r, "GET", url, NULL, NULL, 0);
    cr_assert(eq(int, ret, 0));
    json_t *msgs = json_loads(r.body, 0, NULL);
    support_http_cleanup(&r);
    bool found = false;
    size_t i;
    json_t *m;
    json_t *arr =
        json_is_array(msgs) ? msgs : json_object_get(msgs, "messages");
    json_array_foreach(arr, i, m)
    {
        const char *t = json_string_value(json_object_get(m, "text"));
        if (t != NULL && strcmp(t, text) == 0)
            found = true;
    }
    json_decref(msgs);
    return found;
}

/* A personalised campaign through `kurir run`, on iP.1 and on Jojka: each
 * recipient's message at the stand-in holds its own text. */
Test(personal, campaign_recipients_get_their_own_text)
{
    struct tk_reader status;

    tk_reader_open(&status, e.brokers, e.topic_status);
    stack_produce(&e, e.topic_campaign, "pc-ip1",
                  "{\"id\": \"pc-ip1\", \"account\": \"bulk-ip1\", "
                  "\"action\": \"create\", \"name\": \"Personlig\", "
                  "\"text\": \"Hej {name}, din tid {when}.\", \"to\": ["
                  "{\"msisdn\": \"46705550401\", \"params\": {\"name\": "
                  "\"Anna\", \"when\": \"09:00\"}}, "
                  "{\"msisdn\": \"46705550402\", \"params\": {\"name\": "
                  "\"Bo\", \"when\": \"10:30\"}}]}");
    stack_produce(&e, e.topic_campaign, "pc-jojka",
                  "{\"id\": \"pc-jojka\", \"account\": \"bulk-jojka\", "
                  "\"action\": \"create\", \"name\": \"Personlig\", "
                  "\"text\": \"Hej {name}!\", \"to\": ["
                  "{\"msisdn\": \"46705550403\", \"params\": {\"name\": "
                  "\"Cecilia\"}}, "
                  "{\"msisdn\": \"46705550404\", \"params\": {\"name\": "
                  "\"Dan\"}}]}");
    const char *done[][2] = {{"pc-ip1", "46705550401"},
                             {"pc-ip1", "46705550402"},
                             {"pc-jojka", "46705550403"},
                             {"pc-jojka", "46705550404"}};
    for (size_t i = 0; i < 4; i++)
        json_decref(
            wait_recipient(&status, done[i][0], done[i][1], "submitted"));
    cr_assert(
        standin_text("bulk-ip1", "46705550401", "Hej Anna, din tid 09:00."));
    cr_assert(
        standin_text("bulk-ip1", "46705550402", "Hej Bo, din tid 10:30."));
    cr_assert(standin_text("bulk-jojka", "46705550403", "Hej Cecilia!"));
    cr_assert(standin_text("bulk-jojka", "46705550404", "Hej Dan!"));
    /* And nobody got another's text or the template. */
    bool no4 =
        !standin_text("bulk-ip1", "46705550401", "Hej Bo, din tid 10:30.");

    cr_assert(no4);
    bool no5 = !standin_text("bulk-jojka", "46705550404", "Hej {name}!");

    cr_assert(no5);
    tk_reader_close(&status);
}
