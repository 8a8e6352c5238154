/* tests/worker/test_units.c - jobs larger than one provider call: planned
 * into units of at most the provider's per-call limit, fanned out over the
 * part topic, every recipient sent exactly once, and `kurir encode` printing
 * the same calls. Real Kafka, Redis, the stand-in and a kurir worker. */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "codecs/codec.h"
#include "tests/support/kafka.h"
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

TestSuite(units, .init = start_stack, .fini = stop_stack, .timeout = 280);

/* A job with n recipients 4670<offset+i>. */
static char *bulk_job(const char *head, size_t n, unsigned offset)
{
    size_t cap = strlen(head) + n * 16 + 64;
    char *json = malloc(cap);
    size_t len = (size_t)snprintf(json, cap, "%s, \"to\": [", head);

    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(json + len, cap - len, "%s\"4670%07u\"",
                                i ? "," : "", offset + (unsigned)i);
    snprintf(json + len, cap - len, "]}");
    return json;
}

/* Reads status events until `want` distinct recipients of `job` are in
 * `state`, or the deadline passes; returns how many were. */
static size_t wait_recipients(struct tk_reader *r, const char *job,
                              const char *state, size_t want, int timeout_ms)
{
    json_t *seen = json_object();
    int64_t deadline = support_now_ms() + timeout_ms;

    while (json_object_size(seen) < want && support_now_ms() < deadline) {
        rd_kafka_message_t *m = tk_reader_next(r, 500);
        if (m == NULL)
            continue;
        json_t *ev = json_loadb(m->payload, m->len, 0, NULL);
        const char *j = json_string_value(json_object_get(ev, "job_id"));
        const char *s = json_string_value(json_object_get(ev, "state"));
        const char *to = json_string_value(json_object_get(ev, "recipient"));
        if (j && s && to && strcmp(j, job) == 0 && strcmp(s, state) == 0)
            json_object_set_new(seen, to, json_true());
        json_decref(ev);
        rd_kafka_message_destroy(m);
    }
    size_t n = json_object_size(seen);
    json_decref(seen);
    return n;
}

/* The stand-in's messages of an account (caller decrefs). */
static json_t *standin_get(const char *what, const char *account)
{
    char url[160];
    struct support_http r;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/_standin/%s?account=%s",
             e.standin.port, what, account);
    cr_assert(eq(int, support_http(&r, "GET", url, NULL, NULL, 0), 0));
    json_t *all = json_loadb(r.body, r.body_len, 0, NULL);
    support_http_cleanup(&r);
    bool is_list = json_is_array(all);
    cr_assert(is_list, "stand-in %s: not a list", what);
    return all;
}

/* The account's requests that carry a number containing `needle` (sends,
 * not reply polls). */
static size_t count_sends(const char *account, const char *needle)
{
    json_t *reqs = standin_get("requests", account);
    size_t i, n = 0;
    json_t *m;

    json_array_foreach(reqs, i, m)
    {
        const char *body = json_string_value(json_object_get(m, "body"));
        const char *uri = json_string_value(json_object_get(m, "uri"));
        if ((body != NULL && strstr(body, needle) != NULL) ||
            (uri != NULL && strstr(uri, needle) != NULL))
            n++;
    }
    json_decref(reqs);
    return n;
}

/* How many requests `kurir encode` prints for the job. */
static size_t encode_calls(const char *account, const char *job)
{
    char path[128], cmd[640];

    snprintf(path, sizeof(path), "/tmp/%s-encode.json", e.uniq);
    FILE *f = fopen(path, "w");
    cr_assert(f != NULL);
    fputs(job, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd),
             "KURIR_PUBLIC_URL=http://127.0.0.1:%d %s encode --account %s "
             "--accounts %s < %s",
             e.kurir_port, support_env("KURIR_BIN"), account, e.kurir_accounts,
             path);
    FILE *p = popen(cmd, "r");
    cr_assert(p != NULL);
    char line[8192];
    size_t calls = 0;
    bool blank = true; /* a request line follows a blank line */
    while (fgets(line, sizeof(line), p) != NULL) {
        if (blank &&
            (strncmp(line, "POST ", 5) == 0 || strncmp(line, "GET ", 4) == 0))
            calls++;
        blank = line[0] == '\n';
    }
    cr_assert(eq(int, pclose(p), 0), "kurir encode failed");
    unlink(path);
    return calls;
}

/* One provider: a job of 2.5 times its per-call limit. */
static void check_bulk(const char *account, const char *topic, const char *head,
                       const char *job_id, size_t limit, unsigned offset)
{
    size_t n = limit * 5 / 2;
    struct tk_reader status;
    char *job = bulk_job(head, n, offset);

    cr_assert(gt(sz, n, limit * 2), "the limit is too small to test");

    tk_reader_open(&status, e.brokers, e.topic_status);
    stack_produce(&e, topic, job_id, job);
    size_t got = wait_recipients(&status, job_id, "submitted", n, 150000);
    if (got < n)
        support_proc_log_dump(&e.kurir);
    cr_assert(eq(sz, got, n), "%s: %zu of %zu recipients submitted", account,
              got, n);
    tk_reader_close(&status);

    /* Every recipient exactly once at the provider. */
    json_t *msgs = standin_get("messages", account);
    json_t *by_to = json_object();
    json_t *by_batch = json_object();
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        const char *to = json_string_value(json_object_get(m, "recipient"));
        cr_assert(eq(ptr, json_object_get(by_to, to), NULL),
                  "%s: %s sent twice", account, to);
        json_object_set_new(by_to, to, json_true());
        const char *batch = json_string_value(json_object_get(m, "batch"));
        if (batch != NULL) {
            json_int_t c = json_integer_value(json_object_get(by_batch, batch));
            json_object_set_new(by_batch, batch, json_integer(c + 1));
        }
    }
    cr_assert(eq(sz, json_object_size(by_to), n), "%s: %zu messages", account,
              json_object_size(by_to));
    const char *key;
    json_t *count;
    json_object_foreach(by_batch, key, count)
    {
        cr_assert(le(sz, (size_t)json_integer_value(count), limit),
                  "%s: batch %s carried %lld", account, key,
                  (long long)json_integer_value(count));
    }
    json_decref(by_to);
    json_decref(by_batch);
    json_decref(msgs);

    /* Three provider calls, each answered (the account's other requests,
     * reply polls, carry none of the job's numbers). */
    json_t *reqs = standin_get("requests", account);
    size_t sends = 0;
    char needle[16];
    snprintf(needle, sizeof(needle), "4670%02u", offset / 100000);
    json_array_foreach(reqs, i, m)
    {
        const char *body = json_string_value(json_object_get(m, "body"));
        const char *uri = json_string_value(json_object_get(m, "uri"));
        if ((body == NULL || strstr(body, needle) == NULL) &&
            (uri == NULL || strstr(uri, needle) == NULL))
            continue;
        long st = (long)json_integer_value(json_object_get(m, "status"));
        cr_assert(st >= 200 && st < 300, "%s: a request was answered %ld",
                  account, st);
        sends++;
    }
    json_decref(reqs);
    cr_assert(eq(sz, sends, 3), "%s: %zu calls for %zu recipients", account,
              sends, n);

    /* kurir encode prints the same calls. */
    cr_assert(eq(sz, encode_calls(account, job), 3),
              "%s: kurir encode disagrees", account);
    free(job);
}

Test(units, jojka_campaign_of_two_and_a_half_calls)
{
    check_bulk("bulk-jojka", e.topic_campaign,
               "{\"id\": \"u-jojka\", \"type\": \"campaign\", "
               "\"account\": \"bulk-jojka\", "
               "\"action\": \"create\", \"name\": \"Bulk\", "
               "\"text\": \"Hej fran kampanjen\"",
               "u-jojka", 1000, 1000000);
}

Test(units, ip1_send_of_two_and_a_half_calls)
{
    check_bulk("bulk-ip1", e.topic_send,
               "{\"id\": \"u-ip1\", \"account\": \"bulk-ip1\", "
               "\"text\": \"Hej fran iP.1\"",
               "u-ip1", 500, 2000000);
}

Test(units, intime_send_of_two_and_a_half_calls)
{
    check_bulk("bulk-intime", e.topic_send,
               "{\"id\": \"u-intime\", \"account\": \"bulk-intime\", "
               "\"text\": \"Hej fran InTime\"",
               "u-intime", 1000, 3000000);
}

Test(units, legacy_send_of_two_and_a_half_calls)
{
    check_bulk("bulk-legacy", e.topic_send,
               "{\"id\": \"u-legacy\", \"account\": \"bulk-legacy\", "
               "\"text\": \"Hej fran iP.1 legacy\"",
               "u-legacy", codec_ip1_legacy.send_max_recipients, 4000000);
    /* (bulk-legacy allows the gateway's unconfirmed SOAP operations, so a
     * bundle is one BundleSMS call; without them it is one call a
     * recipient, docs/providers-choices.md.) */
}

/* A 20,000-recipient campaign (20 parts) on two replicas; one is killed
 * with SIGKILL while it sends. The other takes its parts over: every
 * recipient ends submitted, or unknown where the dead replica had it on
 * the wire (a documented window), and none reaches the provider twice. */
Test(units, campaign_survives_a_replica_killed_midway, .timeout = 400)
{
    static const char *const fast[] = {
        "KURIR_KAFKA_PROP_SESSION_TIMEOUT_MS=6000",
        "KURIR_HTTP_TIMEOUT_MS=3000",
        "KURIR_MARK_STALE_MS=5000",
        NULL,
    };
    const size_t n = 20000;
    struct proc b = {0};
    bool ok;

    /* Two replicas that notice a death within seconds. */
    support_stop(&e.kurir, SIGTERM, 20000);
    stack_spawn_worker(&e, &e.kurir, e.kurir_port, fast);
    stack_spawn_worker(&e, &b, support_free_port(), fast);
    char assigned[160];
    snprintf(assigned, sizeof(assigned), "assigned topic=%s", e.topic_parts);
    POLL_UNTIL(ok,
               support_proc_log_has(&e.kurir, assigned) &&
                   support_proc_log_has(&b, assigned),
               60000);
    cr_assert(ok, "the replicas did not share the part topic");

    struct tk_reader status;
    tk_reader_open(&status, e.brokers, e.topic_status);
    char *job = bulk_job("{\"id\": \"k-camp\", \"account\": \"slow-jojka\", "
                         "\"action\": \"create\", \"name\": \"Kill\", "
                         "\"text\": \"Hej igen\"",
                         n, 5000000);
    stack_produce(&e, e.topic_campaign, "k-camp", job);
    free(job);

    /* Kill the second replica once it has sent a part of its own. */
    POLL_UNTIL(ok, support_proc_log_has(&b, "job k-camp call 0 answered"),
               60000);
    cr_assert(ok, "the second replica sent no part");
    size_t before = count_sends("slow-jojka", "467050");
    kill(b.pid, SIGKILL);
    cr_assert(lt(sz, before, 20), "the campaign ended before the kill");

    /* Every recipient moves on: submitted, or unknown if it was in
     * flight at the kill. */
    json_t *state = json_object();
    int64_t deadline = support_now_ms() + 200000;
    size_t nsub = 0, nunk = 0;
    while (nsub + nunk < n && support_now_ms() < deadline) {
        rd_kafka_message_t *m = tk_reader_next(&status, 500);
        if (m == NULL)
            continue;
        json_t *ev = json_loadb(m->payload, m->len, 0, NULL);
        const char *j = json_string_value(json_object_get(ev, "job_id"));
        const char *s = json_string_value(json_object_get(ev, "state"));
        const char *to = json_string_value(json_object_get(ev, "recipient"));
        if (j && s && to && strcmp(j, "k-camp") == 0 &&
            json_object_get(state, to) == NULL &&
            (strcmp(s, "submitted") == 0 || strcmp(s, "unknown") == 0)) {
            json_object_set_new(state, to, json_string(s));
            *(strcmp(s, "submitted") == 0 ? &nsub : &nunk) += 1;
        }
        json_decref(ev);
        rd_kafka_message_destroy(m);
    }
    tk_reader_close(&status);
    json_decref(state);
    if (nsub + nunk < n)
        support_proc_log_dump(&e.kurir);
    cr_assert(eq(sz, nsub + nunk, n), "%zu submitted, %zu unknown of %zu", nsub,
              nunk, n);
    cr_assert(le(sz, nunk, 1000), "more than one part in the window: %zu",
              nunk);
    cr_log_info("kill drill: %zu submitted, %zu unknown (in flight at the "
                "kill)",
                nsub, nunk);

    /* None twice at the provider; the survivor sent parts too. */
    json_t *msgs = standin_get("messages", "slow-jojka");
    json_t *seen = json_object();
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        const char *to = json_string_value(json_object_get(m, "recipient"));
        cr_assert(eq(ptr, json_object_get(seen, to), NULL), "%s sent twice",
                  to);
        json_object_set_new(seen, to, json_true());
    }
    cr_assert(ge(sz, json_object_size(seen), nsub));
    json_decref(seen);
    json_decref(msgs);
    cr_assert(support_proc_log_has(&e.kurir, "job k-camp call 0 answered"),
              "the surviving replica sent no part");
    support_stop(&b, SIGKILL, 1000);
}
