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
