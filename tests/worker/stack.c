/* tests/worker/stack.c - a kurir worker with its own topics, the provider
 * stand-in and their accounts, for end-to-end tests. See stack.h. */
#include "tests/worker/stack.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "tests/support/kafka.h"

static void stack_write_file(const char *path, const char *text)
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
static void stack_write_accounts(const struct stack *s, const char *path,
                                 bool for_standin)
{
    char json[16384];
    char extra[8192] = "";
    int sp = s->standin_port, kp = s->kurir_port;

    /* The test's own accounts, with the stand-in's port put in. */
    for (const char *p = s->extra_accounts; p != NULL && *p != '\0';) {
        const char *at = strstr(p, "@PORT@");
        size_t len = strlen(extra);
        if (at == NULL) {
            snprintf(extra + len, sizeof(extra) - len, "%s", p);
            break;
        }
        snprintf(extra + len, sizeof(extra) - len, "%.*s%d", (int)(at - p), p,
                 sp);
        p = at + 6;
    }
    cr_assert(lt(sz, strlen(extra), sizeof(extra) - 1), "accounts too long");
    snprintf(json, sizeof(json),
             "{\"accounts\": {\n"
             "%s"
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
             "hooks-ip1/inbound?token=tok-p\"}},\n"
             " \"bulk-jojka\": {\"provider\": \"jojka\",\n"
             "  \"base_url\": \"http://127.0.0.1:%d/websms/api\",\n"
             "  \"credentials\": {\"api_key\": \"bulk-key\"},\n"
             "  \"rate_limit\": {\"per_second\": 100000},\n"
             "  \"default_sender\": \"Shop\"},\n"
             " \"bulk-intime\": {\"provider\": \"intime\",\n"
             "  \"base_url\": \"http://127.0.0.1:%d/api/1.0\",\n"
             "  \"credentials\": {\"user\": \"bulk\", \"hash\": \"h-2\"},\n"
             "  \"rate_limit\": {\"per_second\": 100000},\n"
             "  \"default_sender\": \"Shop\", \"webhook_token\": \"tok-bi\"},\n"
             " \"bulk-ip1\": {\"provider\": \"ip1\",\n"
             "  \"base_url\": \"http://127.0.0.1:%d\",\n"
             "  \"credentials\": {\"api_key\": \"k-bulk\"},\n"
             "  \"rate_limit\": {\"per_second\": 100000},\n"
             "  \"default_sender\": \"iP1\", \"webhook_token\": \"tok-bp\"},\n"
             " \"bulk-legacy\": {\"provider\": \"ip1-legacy\",\n"
             "  \"base_url\": \"http://127.0.0.1:%d\",\n"
             "  \"credentials\": {\"account\": \"ip1-1234\", "
             "\"password\": \"bulkpw\"},\n"
             "  \"rate_limit\": {\"per_second\": 100000},\n"
             "  \"default_sender\": \"Shop\", \"webhook_token\": \"tok-bl\",\n"
             "  \"options\": {\"legacy_unconfirmed_soap\": true}},\n"
             " \"slow-jojka\": {\"provider\": \"jojka\",\n"
             "  \"base_url\": \"http://127.0.0.1:%d/websms/api\",\n"
             "  \"credentials\": {\"api_key\": \"slow-key\"},\n"
             "  \"rate_limit\": {\"per_second\": 3000, \"burst\": 1000},\n"
             "  \"default_sender\": \"Shop\"}\n"
             "}}\n",
             extra, sp,
             for_standin
                 ? ""
                 : " \"stale\": {\"provider\": \"jojka\",\n"
                   "  \"base_url\": \"http://127.0.0.1:0/websms/api\",\n"
                   "  \"credentials\": {\"api_key\": \"revoked-key\"},\n"
                   "  \"rate_limit\": {\"per_second\": 100}},\n",
             sp, sp, kp, sp, sp, sp, sp, sp);
    if (!for_standin) {
        /* "stale" talks to the same stand-in. */
        char *p = strstr(json, "127.0.0.1:0/");
        char port[8];
        snprintf(port, sizeof(port), "%d", sp);
        cr_assert(p != NULL);
        memmove(p + 10 + strlen(port), p + 11, strlen(p + 11) + 1);
        memcpy(p + 10, port, strlen(port));
    }
    stack_write_file(path, json);
}

void stack_start(struct stack *s, const char *redis)
{
    stack_start_opts(s, redis, NULL);
}

void stack_start_with(struct stack *s, const char *redis,
                      const char *extra_accounts, const char *const *extra_env)
{
    const struct stack_opts o = {.extra_accounts = extra_accounts,
                                 .kurir_env = extra_env};
    stack_start_opts(s, redis, &o);
}

void stack_start_opts(struct stack *s, const char *redis,
                      const struct stack_opts *o)
{
    static const struct stack_opts none = {0};

    if (o == NULL)
        o = &none;
    s->extra_accounts = o->extra_accounts;
    s->brokers = support_kafka();
    snprintf(s->redis, sizeof(s->redis), "%s", redis);
    tk_unique(s->uniq, sizeof(s->uniq));
    snprintf(s->topic_send, sizeof(s->topic_send), "%s.send", s->uniq);
    snprintf(s->topic_campaign, sizeof(s->topic_campaign), "%s.campaign",
             s->uniq);
    snprintf(s->topic_contacts, sizeof(s->topic_contacts), "%s.contacts",
             s->uniq);
    snprintf(s->topic_status, sizeof(s->topic_status), "%s.status", s->uniq);
    snprintf(s->topic_replies, sizeof(s->topic_replies), "%s.replies", s->uniq);
    snprintf(s->topic_dlq, sizeof(s->topic_dlq), "%s.dlq", s->uniq);
    snprintf(s->topic_parts, sizeof(s->topic_parts), "%s.parts", s->uniq);
    snprintf(s->topic_latest, sizeof(s->topic_latest), "%s.status.latest",
             s->uniq);
    snprintf(s->topic_results, sizeof(s->topic_results), "%s.results", s->uniq);
    s->standin_port = support_free_port();
    s->kurir_port = support_free_port();
    cr_assert(s->standin_port != s->kurir_port);

    snprintf(s->standin_accounts, sizeof(s->standin_accounts),
             "/tmp/%s-standin.json", s->uniq);
    stack_write_accounts(s, s->standin_accounts, true);
    snprintf(s->kurir_accounts, sizeof(s->kurir_accounts), "/tmp/%s-kurir.json",
             s->uniq);
    stack_write_accounts(s, s->kurir_accounts, false);

    char listen[32];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", s->standin_port);
    char *standin_argv[] = {(char *)support_env("KURIR_STANDIN"),
                            "--listen",
                            listen,
                            "--accounts",
                            s->standin_accounts,
                            NULL};
    int ret = support_spawn(&s->standin, standin_argv, NULL, true, 10000);
    cr_assert(eq(int, ret, 0), "stand-in did not start");

    s->kurir.pid = 0;
    if (!o->no_kurir)
        stack_spawn_worker(s, &s->kurir, s->kurir_port, o->kurir_env);
}

static int stack_spawn(const struct stack *s, struct proc *p, int port,
                       const char *const *extra, bool wait_listen)
{
    char env[32][320];
    char *envp[33];
    size_t n = 0;
#define ENV(...) \
    snprintf(env[n], sizeof(env[n]), __VA_ARGS__), envp[n] = env[n], n++
    ENV("KURIR_KAFKA_BROKERS=%s", s->brokers);
    ENV("KURIR_KAFKA_GROUP=%s-group", s->uniq);
    ENV("KURIR_ACCOUNTS=%s", s->kurir_accounts);
    ENV("KURIR_HTTP_LISTEN=127.0.0.1:%d", port);
    ENV("KURIR_PUBLIC_URL=http://127.0.0.1:%d", port);
    ENV("KURIR_TOPIC_SEND=%s", s->topic_send);
    ENV("KURIR_TOPIC_CAMPAIGN=%s", s->topic_campaign);
    ENV("KURIR_TOPIC_CONTACTS=%s", s->topic_contacts);
    ENV("KURIR_TOPIC_STATUS=%s", s->topic_status);
    ENV("KURIR_TOPIC_REPLIES=%s", s->topic_replies);
    ENV("KURIR_TOPIC_DLQ=%s", s->topic_dlq);
    ENV("KURIR_TOPIC_PARTS=%s", s->topic_parts);
    ENV("KURIR_TOPIC_LATEST=%s", s->topic_latest);
    ENV("KURIR_TOPIC_RESULTS=%s", s->topic_results);
    if (strstr(s->redis, "://") != NULL) /* a whole URL: sentinel://... */
        ENV("KURIR_REDIS_URL=%s", s->redis);
    else
        ENV("KURIR_REDIS_URL=redis://%s/0", s->redis);
    ENV("KURIR_LOG_LEVEL=debug");
    ENV("KURIR_POLL_INTERVAL_MS=300");
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 32; i++)
        ENV("%s", extra[i]);
#undef ENV
    envp[n] = NULL;
    char *kurir_argv[] = {(char *)support_env("KURIR_BIN"), "run", NULL};
    return support_spawn(p, kurir_argv, envp, wait_listen, 30000);
}

void stack_spawn_worker(const struct stack *s, struct proc *p, int port,
                        const char *const *extra)
{
    int ret = stack_spawn(s, p, port, extra, true);
    cr_assert(eq(int, ret, 0), "kurir did not start");
}

void stack_spawn_worker_nowait(const struct stack *s, struct proc *p, int port,
                               const char *const *extra)
{
    int ret = stack_spawn(s, p, port, extra, false);
    cr_assert(eq(int, ret, 0), "kurir could not be run");
}

void stack_stop(struct stack *s)
{
    if (s->kurir.pid > 0) {
        support_stop(&s->kurir, SIGKILL, 5000);
    }
    if (s->standin.pid > 0)
        support_stop(&s->standin, SIGTERM, 5000);
    unlink(s->standin_accounts);
    unlink(s->kurir_accounts);
}

void stack_produce(const struct stack *s, const char *topic, const char *key,
                   const char *json)
{
    tk_produce(s->brokers, topic, key, json, strlen(json));
}

int stack_standin_count(const struct stack *s, const char *needle)
{
    char url[128];
    struct support_http r;
    int n = 0;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/_standin/requests",
             s->standin.port);
    int ret = support_http(&r, "GET", url, NULL, NULL, 0);
    cr_assert(eq(int, ret, 0));
    for (const char *p = r.body; (p = strstr(p, needle)) != NULL;
         p += strlen(needle))
        n++;
    support_http_cleanup(&r);
    return n;
}

void stack_standin_faults(const struct stack *s, const char *json)
{
    char url[96];
    struct support_http r;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/_standin/faults",
             s->standin_port);
    char *const headers[] = {"Content-Type: application/json", NULL};
    int ret = support_http(&r, "POST", url, headers, json, strlen(json));
    if (ret != 0)
        support_proc_log_dump(&s->standin);
    cr_assert(eq(int, ret, 0), "the stand-in did not answer %s", url);
    cr_assert(eq(long, r.status, 200), "%s", r.body);
    support_http_cleanup(&r);
}
