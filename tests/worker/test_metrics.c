/* tests/worker/test_metrics.c - the metrics registry and its text format,
 * checked by promtool (Prometheus's own linter). */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/metrics.h"
#include "tests/support/support.h"
#include "worker/accounts.h"
#include "worker/config.h"
#include "worker/http.h"
#include "worker/listener.h"
#include "worker/metrics.h"
#include "worker/offsets.h"

/* Fills a registry the way a worker would after a short run. */
static void fill(struct metrics *m)
{
    metrics_count(m, M_JOBS_CONSUMED, ML("sms.send", "done"), 7);
    metrics_count(m, M_JOBS_CONSUMED, ML("sms.send", "dlq"), 1);
    metrics_count(m, M_STATUS_EVENTS, ML("submitted"), 6);
    metrics_count(m, M_STATUS_EVENTS, ML("delivered"), 4);
    metrics_count(m, M_PROVIDER_REQUESTS, ML("shop", "intime", "2xx"), 6);
    metrics_count(m, M_PROVIDER_REQUESTS, ML("shop", "intime", "5xx"), 1);
    metrics_observe(m, M_PROVIDER_LATENCY, ML("shop"), 0.004);
    metrics_observe(m, M_PROVIDER_LATENCY, ML("shop"), 0.3);
    metrics_observe(m, M_PROVIDER_LATENCY, ML("shop"), 60);
    metrics_count(m, M_RATELIMIT_WAITS, ML("shop"), 2);
    metrics_count(m, M_RATELIMIT_TOKENS, ML("shop"), 9);
    metrics_set(m, M_SCHEDULED_BACKLOG, NULL, 3);
    metrics_set(m, M_UNITS_PARKED, ML("ratelimit"), 2);
    metrics_set(m, M_KAFKA_OLDEST_AGE, ML("sms.send", "0"), 1.5);
    metrics_count(m, M_KAFKA_ERRORS, ML("_TRANSPORT"), 1);
    metrics_set(m, M_WEBHOOK_REQUESTS, ML("bad_token"), 1);
    metrics_set(m, M_REDIS_UP, NULL, 1);
}

Test(metrics, render_passes_promtool)
{
    struct metrics m;

    metrics_init(&m, "1.2.3");
    fill(&m);
    /* promtool also lints: no complaint at all, not just exit 0. */
    support_metrics_promtool(metrics_render(&m));
    metrics_free(&m);
}

Test(metrics, samples_are_labelled_and_counted)
{
    struct metrics m;

    metrics_init(&m, "1.2.3");
    fill(&m);
    metrics_count(&m, M_PROVIDER_REQUESTS, ML("shop", "intime", "2xx"), 2);
    const char *text = metrics_render(&m);
    cr_assert(
        ne(ptr, strstr(text, "kurir_build_info{version=\"1.2.3\"} 1\n"), NULL));
    cr_assert(ne(ptr,
                 strstr(text, "kurir_provider_requests_total{account=\"shop\","
                              "provider=\"intime\",result=\"2xx\"} 8\n"),
                 NULL),
              "%s", text);
    cr_assert(ne(ptr,
                 strstr(text, "# TYPE kurir_provider_request_duration_seconds "
                              "histogram\n"),
                 NULL));
    /* 0.004 and 0.3 fall in their buckets; 60 only in +Inf. */
    cr_assert(ne(ptr,
                 strstr(text, "kurir_provider_request_duration_seconds_bucket{"
                              "account=\"shop\",le=\"0.005\"} 1\n"),
                 NULL),
              "%s", text);
    cr_assert(ne(ptr,
                 strstr(text, "kurir_provider_request_duration_seconds_bucket{"
                              "account=\"shop\",le=\"10\"} 2\n"),
                 NULL),
              "%s", text);
    cr_assert(ne(ptr,
                 strstr(text, "kurir_provider_request_duration_seconds_bucket{"
                              "account=\"shop\",le=\"+Inf\"} 3\n"),
                 NULL),
              "%s", text);
    /* Unlabelled metrics show 0 before anything happened. */
    cr_assert(
        ne(ptr, strstr(text, "\nkurir_redis_epoch_changes_total 0\n"), NULL));
    cr_assert(
        eq(dbl,
           metrics_value(&m, M_PROVIDER_REQUESTS, ML("shop", "intime", "2xx")),
           8.0));
    cr_assert(eq(dbl, metrics_value(&m, M_PROVIDER_LATENCY, ML("shop")), 3.0));
    cr_assert(eq(dbl, metrics_value(&m, M_RATELIMIT_WAITS, ML("nobody")), -1));
    metrics_free(&m);
}

Test(metrics, label_values_are_escaped_and_bounded)
{
    struct metrics m;
    char name[32];

    metrics_init(&m, "1");
    metrics_count(&m, M_RATELIMIT_WAITS, ML("a\"b\\c\nd"), 1);
    /* Far more label sets than allowed end in one "other" series. */
    for (int i = 0; i < 3 * METRICS_MAX_SERIES; i++) {
        snprintf(name, sizeof(name), "acct%d", i);
        metrics_count(&m, M_RATELIMIT_TOKENS, ML(name), 1);
    }
    const char *text = metrics_render(&m);
    cr_assert(ne(ptr,
                 strstr(text, "kurir_ratelimit_waits_total{account=\"a\\\"b\\\\"
                              "c\\nd\"} 1\n"),
                 NULL),
              "%s", text);
    double other = metrics_value(&m, M_RATELIMIT_TOKENS, ML("other"));
    cr_assert(eq(dbl, other, (double)(2 * METRICS_MAX_SERIES + 1)));
    size_t lines = 0;
    for (const char *p = text; (p = strstr(p, "kurir_ratelimit_tokens_total{"));
         p++)
        lines++;
    cr_assert(eq(sz, lines, (size_t)METRICS_MAX_SERIES));
    /* The page is far over the listener's old 2 KiB and still valid. */
    cr_assert(gt(sz, strlen(text), (size_t)8192));
    support_metrics_promtool(text);
    metrics_free(&m);
}

Test(metrics, rdkafka_statistics_give_lag_per_partition)
{
    struct metrics m;
    static const char stats[] =
        "{\"name\":\"rdkafka#consumer-1\",\"type\":\"consumer\","
        "\"brokers\":{\"b1\":{\"txerrs\":2,\"rxerrs\":1,\"req_timeouts\":0},"
        "\"b2\":{\"txerrs\":3,\"rxerrs\":0,\"req_timeouts\":4}},"
        "\"topics\":{\"sms.send\":{\"partitions\":{"
        "\"0\":{\"consumer_lag\":42},\"1\":{\"consumer_lag\":-1},"
        "\"-1\":{\"consumer_lag\":-1}}},"
        "\"sms.campaign\":{\"partitions\":{\"2\":{\"consumer_lag\":0}}}}}";
    static const char later[] =
        "{\"type\":\"consumer\",\"topics\":{\"sms.send\":{\"partitions\":{"
        "\"1\":{\"consumer_lag\":5}}}}}";

    metrics_init(&m, "1");
    cr_assert(eq(int, metrics_read_rdkafka_stats(&m, stats), 0));
    cr_assert(
        eq(dbl, metrics_value(&m, M_KAFKA_LAG, ML("sms.send", "0")), 42.0));
    cr_assert(eq(dbl, metrics_value(&m, M_KAFKA_LAG, ML("sms.send", "1")),
                 -1.0)); /* not assigned here: no series */
    cr_assert(
        eq(dbl, metrics_value(&m, M_KAFKA_LAG, ML("sms.campaign", "2")), 0.0));
    cr_assert(eq(dbl, metrics_value(&m, M_KAFKA_ASSIGNED, NULL), 2.0));
    cr_assert(eq(dbl,
                 metrics_value(&m, M_KAFKA_BROKER_ERRORS, ML("consumer", "tx")),
                 5.0));
    cr_assert(
        eq(dbl,
           metrics_value(&m, M_KAFKA_BROKER_ERRORS, ML("consumer", "timeout")),
           4.0));
    /* After a rebalance the revoked partitions' series are gone. */
    cr_assert(eq(int, metrics_read_rdkafka_stats(&m, later), 0));
    cr_assert(
        eq(dbl, metrics_value(&m, M_KAFKA_LAG, ML("sms.send", "0")), -1.0));
    cr_assert(
        eq(dbl, metrics_value(&m, M_KAFKA_LAG, ML("sms.send", "1")), 5.0));
    /* Not statistics: nothing changes. */
    cr_assert(eq(int, metrics_read_rdkafka_stats(&m, "not json"), -1));
    cr_assert(eq(int, metrics_read_rdkafka_stats(&m, "[1]"), -1));
    cr_assert(eq(dbl, metrics_value(&m, M_KAFKA_ASSIGNED, NULL), 1.0));
    metrics_free(&m);
}

Test(metrics, http_result_classes)
{
    cr_assert(eq(str, (char *)metrics_http_class(200), "2xx"));
    cr_assert(eq(str, (char *)metrics_http_class(204), "2xx"));
    cr_assert(eq(str, (char *)metrics_http_class(302), "3xx"));
    cr_assert(eq(str, (char *)metrics_http_class(404), "4xx"));
    cr_assert(eq(str, (char *)metrics_http_class(429), "429"));
    cr_assert(eq(str, (char *)metrics_http_class(503), "5xx"));
    cr_assert(eq(str, (char *)metrics_http_class(0), "error"));
}

static bool kafka_ready(void *opaque)
{
    (void)opaque;
    return true;
}

Test(metrics, listener_serves_a_large_page_whole)
{
    struct accounts none = {0};
    struct config cfg = {0};
    struct listener *l;
    struct metrics m;
    struct support_http r;
    char listen[64], url[128], errstr[256];

    int port = support_free_port();
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    cfg.http_listen = listen;
    cr_assert(eq(int,
                 listener_start(&l, &cfg, &none, kafka_ready, NULL, errstr,
                                sizeof(errstr)),
                 0),
              "%s", errstr);

    /* A page of ~100 KiB: fifty times the old fixed buffer. */
    metrics_init(&m, "1");
    char name[32];
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof(name), "account-%03d", i);
        metrics_observe(&m, M_PROVIDER_LATENCY, ML(name), 0.02);
    }
    const char *text = metrics_render(&m);
    cr_assert(gt(sz, strlen(text), (size_t)100000));
    listener_publish(l, true, text);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
    cr_assert(eq(int, support_http(&r, "GET", url, NULL, NULL, 0), 0));
    cr_assert(eq(long, r.status, 200L));
    cr_assert(eq(sz, r.body_len, strlen(text)));
    cr_assert(eq(int, memcmp(r.body, text, r.body_len), 0));
    support_http_cleanup(&r);

    /* The helpers an end-to-end test uses: scrape, promtool, one value. */
    char *page = support_metrics_scrape(port);
    support_metrics_promtool(page);
    cr_assert(
        eq(dbl,
           support_metric(page, "kurir_provider_request_duration_seconds_count",
                          "account=\"account-007\""),
           1.0));
    cr_assert(eq(dbl, support_metric(page, "kurir_redis_up", NULL), 0.0));
    cr_assert(eq(dbl, support_metric(page, "kurir_build_info", "version=\"1\""),
                 1.0));
    free(page);

    /* A callback for an unknown account is answered 404. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/callbacks/nobody/status",
             port);
    cr_assert(eq(int, support_http(&r, "POST", url, NULL, "x", 1), 0));
    cr_assert(eq(long, r.status, 404L));
    support_http_cleanup(&r);

    /* `kurir probe`, the image's HEALTHCHECK: 0 on /healthz, 1 on a 404. */
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s probe http://127.0.0.1:%d/healthz",
             support_env("KURIR_BIN"), port);
    cr_assert(eq(int, system(cmd), 0), "%s", cmd);
    snprintf(cmd, sizeof(cmd),
             "%s probe http://127.0.0.1:%d/nothing 2>/dev/null",
             support_env("KURIR_BIN"), port);
    int st = system(cmd);
    bool exited_1 = WIFEXITED(st) && WEXITSTATUS(st) == 1;
    cr_assert(exited_1, "%s: %d", cmd, st);
    listener_stop(l);
    metrics_free(&m);
}

struct timed {
    bool done;
    long status;
    double seconds;
    struct http *http;
};

static void timed_done(const struct http_response *resp, const char *error,
                       bool maybe_sent, void *opaque)
{
    struct timed *t = opaque;

    (void)error;
    (void)maybe_sent;
    t->done = true;
    t->status = resp->status;
    t->seconds = http_done_seconds(t->http);
}

Test(metrics, provider_request_time_reaches_the_done_callback)
{
    struct accounts none = {0};
    struct config cfg = {0};
    struct listener *l;
    char listen[64], url[128], errstr[256];

    int port = support_free_port();
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    cfg.http_listen = listen;
    cfg.http_timeout_ms = 5000;
    cfg.http_max_conns = 4;
    cr_assert(eq(int,
                 listener_start(&l, &cfg, &none, kafka_ready, NULL, errstr,
                                sizeof(errstr)),
                 0),
              "%s", errstr);
    struct http *http = http_new(&cfg, errstr, sizeof(errstr));
    cr_assert(ne(ptr, http, NULL), "%s", errstr);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", port);
    struct http_request req = {.method = "GET", .url = url};
    struct timed t = {.http = http, .seconds = -1};
    cr_assert(
        eq(int, http_submit(http, &req, timed_done, &t, errstr, sizeof(errstr)),
           0),
        "%s", errstr);
    int64_t deadline = support_now_ms() + 5000;
    while (!t.done && support_now_ms() < deadline) {
        http_wait(http, NULL, 0, 50);
        http_perform(http);
    }
    cr_assert(t.done);
    cr_assert(eq(long, t.status, 200L));
    /* A loopback answer: more than nothing, far less than the timeout. */
    cr_assert(gt(dbl, t.seconds, 0.0));
    cr_assert(lt(dbl, t.seconds, 5.0));
    http_free(http);
    listener_stop(l);
}

static double oldest_age(struct metrics *m, const struct offsets *o,
                         const char *topic, const char *part)
{
    offsets_read_metrics(o, m);
    return metrics_value(m, M_KAFKA_OLDEST_AGE, ML(topic, part));
}

Test(metrics, oldest_unfinished_offset_age_per_partition)
{
    struct metrics m;
    struct offsets *o = offsets_new();
    int64_t store;
    bool ok;

    metrics_init(&m, "1");
    offsets_track(o, "sms.send", 3, 10);
    offsets_track(o, "sms.send", 3, 11);
    offsets_track(o, "sms.campaign", 0, 5);
    /* The age grows while offset 10 is unfinished. */
    POLL_UNTIL(ok, oldest_age(&m, o, "sms.send", "3") >= 0.05, 5000);
    cr_assert(ok);
    cr_assert(lt(dbl, oldest_age(&m, o, "sms.send", "3"), 60.0));
    cr_assert(ge(dbl, oldest_age(&m, o, "sms.campaign", "0"), 0.0));
    /* Finished partitions report 0; forgotten ones disappear. */
    cr_assert(offsets_done(o, "sms.campaign", 0, 5, &store));
    cr_assert(offsets_done(o, "sms.send", 3, 11, &store) == false);
    cr_assert(offsets_done(o, "sms.send", 3, 10, &store));
    cr_assert(eq(dbl, oldest_age(&m, o, "sms.campaign", "0"), 0.0));
    cr_assert(eq(dbl, oldest_age(&m, o, "sms.send", "3"), 0.0));
    offsets_forget(o, "sms.campaign", 0);
    cr_assert(eq(dbl, oldest_age(&m, o, "sms.campaign", "0"), -1.0));
    offsets_free(o);
    metrics_free(&m);
}
