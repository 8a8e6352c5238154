/* tests/drills/test_poison.c - poison input: jobs that must end rejected
 * (a status event or a DLQ entry, never a park loop), a slowloris client
 * against the listener while /healthz keeps answering, and forged provider
 * callbacks (403, no event). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "tests/drills/drill.h"

static struct drill d;

static void teardown(void)
{
    drill_stop(&d);
}

TestSuite(poison, .fini = teardown, .timeout = 180);

/* An account whose bucket can never hold a 3-segment message: a second's
 * worth of 0.5 tokens, the burst 1. */
static const char tiny_account[] =
    " \"tiny-rate\": {\"provider\": \"jojka\",\n"
    "  \"base_url\": \"http://127.0.0.1:@PORT@/websms/api\",\n"
    "  \"credentials\": {\"api_key\": \"tiny-key\"},\n"
    "  \"rate_limit\": {\"per_second\": 0.5}},\n";

/* Good jobs after the poison, on every partition: none may be held. */
static void good_jobs(const char *tag, size_t n)
{
    char num[32];

    for (size_t j = 0; j < n; j++) {
        snprintf(num, sizeof(num), "4676%07zu", j);
        drill_send(&d, "bulk-jojka", tag, j, num, NULL, true);
    }
}

Test(poison, jobs_end_rejected_and_hold_nothing)
{
    struct drill_opts o = {.replicas = 2, .extra_accounts = tiny_account};
    char id[1024], json[16384];

    drill_start(&d, "poison jobs", &o);

    /* An id over the Redis key budget. */
    size_t len = (size_t)snprintf(id, sizeof(id), "%s-long-", d.s.uniq);
    memset(id + len, 'x', 600);
    id[len + 600] = '\0';
    snprintf(json, sizeof(json),
             "{\"id\": \"%s\", \"account\": \"bulk-jojka\", \"to\": "
             "[\"46760000001\"], \"text\": \"long id\"}",
             id);
    drill_job(&d, d.s.topic_send, id, json, NULL, 0);

    /* Nested JSON, 4,000 arrays deep, in a field and as the whole job. */
    snprintf(id, sizeof(id), "%s-nested", d.s.uniq);
    len = (size_t)snprintf(json, sizeof(json),
                           "{\"id\": \"%s\", \"account\": \"bulk-jojka\", "
                           "\"to\": [\"46760000002\"], \"text\": \"x\", "
                           "\"reference\": ",
                           id);
    for (int i = 0; i < 4000; i++)
        json[len++] = '[';
    for (int i = 0; i < 4000; i++)
        json[len++] = ']';
    snprintf(json + len, sizeof(json) - len, "}");
    drill_job(&d, d.s.topic_send, id, json, NULL, 0);
    snprintf(id, sizeof(id), "%s-deep", d.s.uniq);
    memset(json, '[', 6000);
    memset(json + 6000, ']', 6000);
    json[12000] = '\0';
    drill_job(&d, d.s.topic_send, id, json, NULL, 0);

    /* Not JSON at all; an unknown account; a text the account's bucket
     * can never pay for. */
    snprintf(id, sizeof(id), "%s-garbage", d.s.uniq);
    drill_job(&d, d.s.topic_send, id, "\x01\x02 not json {", NULL, 0);
    snprintf(id, sizeof(id), "%s-noaccount", d.s.uniq);
    snprintf(json, sizeof(json),
             "{\"id\": \"%s\", \"account\": \"no-such-account\", \"to\": "
             "[\"46760000003\"], \"text\": \"x\"}",
             id);
    drill_job(&d, d.s.topic_send, id, json, NULL, 0);
    snprintf(id, sizeof(id), "%s-tiny", d.s.uniq);
    len = (size_t)snprintf(json, sizeof(json),
                           "{\"id\": \"%s\", \"account\": \"tiny-rate\", "
                           "\"to\": [\"46760000004\"], \"text\": \"",
                           id);
    memset(json + len, 'a', 400); /* three segments */
    snprintf(json + len + 400, sizeof(json) - len - 400, "\"}");
    char *tiny_to[] = {"46760000004"};
    drill_job(&d, d.s.topic_send, id, json, tiny_to, 1);

    good_jobs("good", 16);
    drill_fault_over(&d);
    drill_finish(&d, 60000,
                 "long id, nested JSON, not JSON, unknown account, "
                 "3 segments on a 0.5/s bucket");
}

static long http_status(const char *method, const char *url, const char *body,
                        const char *ctype)
{
    char hdr[128];
    snprintf(hdr, sizeof(hdr), "Content-Type: %s", ctype);
    char *hdrs[] = {hdr, NULL};
    struct support_http r;

    if (support_http(&r, method, url, hdrs, body, body ? strlen(body) : 0) != 0)
        return 0;
    long st = r.status;
    support_http_cleanup(&r);
    return st;
}

Test(poison, forged_callbacks_are_refused)
{
    struct drill_opts o = {.replicas = 1};
    char url[256], body[512], job[128];

    drill_start(&d, "forged callbacks", &o);
    snprintf(job, sizeof(job), "%s-forged", d.s.uniq);
    /* An InTime status report naming a job (transid <job>:<msisdn>). */
    snprintf(body, sizeof(body),
             "<?xml version=\"1.0\"?><status><id>1</id><transid>%s:"
             "46701234567</transid><status>1</status></status>",
             job);
    static const char *const tokens[] = {"?token=wrong", "", "?token="};
    for (size_t i = 0; i < 3; i++) {
        snprintf(url, sizeof(url),
                 "http://127.0.0.1:%d/callbacks/hooks-intime/status%s",
                 d.port[0], tokens[i]);
        long st = http_status("POST", url, body, "text/xml");
        cr_expect(eq(long, st, 403), "callback %s: HTTP %ld", tokens[i], st);
    }
    /* An account without webhooks or without a token takes none. */
    snprintf(url, sizeof(url),
             "http://127.0.0.1:%d/callbacks/shop/status?token=", d.port[0]);
    long st = http_status("POST", url, body, "text/xml");
    cr_expect(ge(long, st, 400), "callback to shop: HTTP %ld", st);
    cr_expect(lt(long, st, 500), "callback to shop: HTTP %ld", st);

    good_jobs("after", 4);
    drill_finish(&d, 30000, "wrong, missing, empty token: 403");
    cr_expect(eq(ptr, json_object_get(d.events, job), NULL),
              "a forged callback made an event for %s", job);
}

/* Opens a connection to the replica's listener and sends the start of a
 * request; -1 when refused. */
static int slow_open(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        write(fd, "P", 1) != 1) {
        close(fd);
        return -1;
    }
    return fd;
}

Test(poison, slowloris_does_not_hold_the_listener)
{
    struct drill_opts o = {.replicas = 1};
    enum { SLOW = 200 };
    int fds[SLOW];
    size_t open = 0;
    int64_t worst = 0;

    drill_start(&d, "slowloris (200 conns, 1 B/s)", &o);
    for (size_t i = 0; i < SLOW; i++)
        if ((fds[i] = slow_open(d.port[0])) >= 0)
            open++;
    /* A byte a second on each for 12 s (past the 10 s idle timeout), and
     * /healthz asked in between: it must answer every time, quickly. */
    int64_t end = support_now_ms() + 12000, next = 0;
    size_t asked = 0, answered = 0;
    while (support_now_ms() < end) {
        if (support_now_ms() >= next) {
            for (size_t i = 0; i < SLOW; i++)
                if (fds[i] >= 0 && write(fds[i], "O", 1) != 1) {
                    close(fds[i]);
                    fds[i] = -1;
                }
            next = support_now_ms() + 1000;
        }
        int64_t t = support_now_ms();
        long st = drill_get(&d, 0, "/healthz", NULL);
        int64_t took = support_now_ms() - t;
        asked++;
        if (st == 200)
            answered++;
        if (took > worst)
            worst = took;
        support_sleep_ms(200);
    }
    for (size_t i = 0; i < SLOW; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    drill_fault_over(&d);
    good_jobs("after", 4);
    char note[128];
    snprintf(note, sizeof(note),
             "%zu slow conns; /healthz %zu/%zu answered, worst %lld ms", open,
             answered, asked, (long long)worst);
    drill_finish(&d, 30000, note);
    cr_expect(eq(sz, answered, asked), "%s", note);
    cr_expect(lt(i64, worst, 1000), "%s", note);
}

/* A one-recipient job of about `size` bytes: the bulk in `field` ("text",
 * limited to 10,000 bytes, or "note", a field kurir ignores). Caller
 * frees. */
static char *big_job(const char *id, const char *num, const char *field,
                     size_t size)
{
    char *json = malloc(size + 512);
    cr_assert(json != NULL);
    size_t len = (size_t)snprintf(
        json, 512,
        "{\"id\": \"%s\", \"account\": \"bulk-jojka\", \"to\": [\"%s\"], "
        "%s\"%s\": \"",
        id, num, strcmp(field, "text") == 0 ? "" : "\"text\": \"big note\", ",
        field);
    memset(json + len, 'a', size);
    snprintf(json + len + size, 512, "\"}");
    return json;
}

/* A job to `n` recipients (numbers from `base`), their numbers in *to
 * (caller frees both, and each number). */
static char *many_job(const char *id, size_t n, unsigned base, char ***to)
{
    size_t cap = n * 16 + 512, len;
    char *json = malloc(cap);
    *to = calloc(n, sizeof(**to));
    cr_assert(json != NULL && *to != NULL);
    len = (size_t)snprintf(json, cap,
                           "{\"id\": \"%s\", \"account\": \"bulk-jojka\", "
                           "\"text\": \"many %zu\", \"to\": [",
                           id, n);
    for (size_t i = 0; i < n; i++) {
        char num[32];
        snprintf(num, sizeof(num), "467%08u", base + (unsigned)i);
        (*to)[i] = strdup(num);
        len += (size_t)snprintf(json + len, cap - len, "%s\"%s\"", i ? "," : "",
                                num);
    }
    snprintf(json + len, cap - len, "]}");
    return json;
}

static void free_numbers(char **to, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(to[i]);
    free(to);
}

/* A good job behind `key`'s job on its partition: it must settle. */
static void good_behind(const char *key, size_t j)
{
    char id[160], json[512], num[32];

    snprintf(id, sizeof(id), "%s-behind-%zu", d.s.uniq, j);
    snprintf(num, sizeof(num), "4676900%04zu", j);
    snprintf(json, sizeof(json),
             "{\"id\": \"%s\", \"account\": \"bulk-jojka\", \"to\": "
             "[\"%s\"], \"text\": \"behind %zu\"}",
             id, num, j);
    char *one[] = {num};
    drill_job_async_key(&d, d.s.topic_send, key, id, json, one, 1);
}

/* Sizes at and past the limits (README, "Limits"): a 2 MB text (over
 * 10,000 bytes: rejected, a DLQ entry), a 2 MB job whose bulk is a field
 * kurir ignores (within the limits: sent once), 100,001 recipients
 * (rejected) and 100,000 (within: each sent once; CI: 5,000, as the
 * 100,000 take an ASan build about 5 min).
 * The send topic takes 4 MB messages (max.message.bytes); behind each a
 * good job on the same partition settles. */
Test(poison, sizes_2mb_and_100k_recipients, .timeout = 900)
{
    struct drill_opts o = {.replicas = 2};
    size_t big = 2 * 1024 * 1024, many = drill_size(5000, 100000);
    char id[160], **to;
    char *json;
    char *one[] = {"46768000001"};

    drill_start(&d, "poison sizes: 2 MB, 100,000 recipients", &o);
    drill_topic_config(&d, d.s.topic_send, "max.message.bytes", "4194304");

    snprintf(id, sizeof(id), "%s-bigtext", d.s.uniq);
    json = big_job(id, "46768000000", "text", big);
    drill_job_async(&d, d.s.topic_send, id, json, NULL, 0);
    free(json);
    good_behind(id, 0);

    snprintf(id, sizeof(id), "%s-bignote", d.s.uniq);
    json = big_job(id, one[0], "note", big);
    drill_job_async(&d, d.s.topic_send, id, json, one, 1);
    free(json);
    good_behind(id, 1);

    snprintf(id, sizeof(id), "%s-over", d.s.uniq);
    json = many_job(id, 100001, 0, &to);
    drill_job_async(&d, d.s.topic_send, id, json, NULL, 0);
    free(json);
    free_numbers(to, 100001);
    good_behind(id, 2);

    snprintf(id, sizeof(id), "%s-many", d.s.uniq);
    json = many_job(id, many, 200000, &to);
    drill_job_async(&d, d.s.topic_send, id, json, to, many);
    free(json);
    free_numbers(to, many);
    good_behind(id, 3);
    drill_flush(&d);
    drill_fault_over(&d);
    drill_finish(
        &d, drill_long() ? 720000 : 120000,
        "2 MB text (rejected), 2 MB job (sent), 100,001 "
        "recipients (rejected), 5,000/100,000 (sent); good jobs behind");

    /* The ones past a limit are rejected with a DLQ entry, never sent. */
    const char *const over[] = {"bigtext", "over"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(id, sizeof(id), "%s-%s", d.s.uniq, over[i]);
        cr_expect(json_object_get(d.dlqd, id) != NULL, "%s: no DLQ entry", id);
    }
    json_t *msgs = drill_messages(&d, "bulk-jojka");
    size_t want = many + 1 + 4; /* the 100,000, the 2 MB job, the good */
    cr_expect(eq(sz, json_array_size(msgs), want), "%zu messages, want %zu",
              json_array_size(msgs), want);
    json_decref(msgs);
    for (size_t i = 0; i < d.nrep; i++)
        cr_expect(not(drill_replica_gone(&d, i)), "replica %zu exited", i);
}
