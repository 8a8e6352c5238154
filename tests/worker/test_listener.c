/* tests/worker/test_listener.c - /healthz from the loop's heartbeat, the
 * admin listener, IPv6, and a slow client cut by the idle timeout. Real
 * sockets on loopback; the test itself plays the loop. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/support/support.h"
#include "worker/config.h"
#include "worker/listener.h"

static bool kafka_yes(void *opaque)
{
    (void)opaque;
    return true;
}

/* Starts a listener with the settings in env (NULL-ended). */
static struct listener *start(struct config *cfg, char **env)
{
    char errstr[256];
    int ret = config_load(cfg, env, errstr, sizeof(errstr));
    cr_assert(ret == 0, "config: %s", errstr);
    struct listener *l = NULL;
    ret =
        listener_start(&l, cfg, NULL, kafka_yes, NULL, errstr, sizeof(errstr));
    cr_assert(ret == 0, "listener_start: %s", errstr);
    return l;
}

static long get(const char *host, unsigned port, const char *path)
{
    char url[128];
    struct support_http r;

    snprintf(url, sizeof(url), "http://%s:%u%s", host, port, path);
    if (support_http_timeout(&r, "GET", url, NULL, NULL, 0, 2000) != 0)
        return -1;
    long status = r.status;
    support_http_cleanup(&r);
    return status;
}

Test(listener, healthz_fails_when_the_loop_stops_beating)
{
    struct config cfg;
    char *env[] = {"KURIR_HTTP_LISTEN=127.0.0.1:0", "KURIR_HEALTH_STALL_MS=300",
                   NULL};
    struct listener *l = start(&cfg, env);
    unsigned port = listener_port(l, false);

    /* The loop turning: a beat before each probe. */
    for (int i = 0; i < 5; i++) {
        listener_heartbeat(l);
        cr_assert(get("127.0.0.1", port, "/healthz") == 200);
    }
    /* The loop stuck: this thread stops calling listener_heartbeat (as a
     * loop blocked in a call would) while libmicrohttpd's thread goes on.
     * Within the threshold (plus polling) /healthz turns 503, and the
     * listener still answers every request. */
    int64_t stuck_at = support_now_ms();
    bool failed;
    POLL_UNTIL(failed, get("127.0.0.1", port, "/healthz") == 503, 3000);
    cr_assert(failed, "/healthz stayed 200 with the loop stuck");
    int64_t took = support_now_ms() - stuck_at;
    cr_assert(took >= 300 && took < 1500, "503 after %lld ms", (long long)took);
    cr_assert(get("127.0.0.1", port, "/metrics") == 200,
              "the listener stopped answering");
    /* The loop comes back: healthy again at once. */
    struct listener_state st = {.redis_ok = true,
                                .kafka_known = true,
                                .kafka_ok = false,
                                .metrics = "m 1\n"};
    listener_publish_state(l, &st);
    cr_assert(get("127.0.0.1", port, "/healthz") == 200);
    /* /readyz is the published state, not a probe from this thread. */
    cr_assert(get("127.0.0.1", port, "/readyz") == 503);
    st.kafka_ok = true;
    listener_publish_state(l, &st);
    cr_assert(get("127.0.0.1", port, "/readyz") == 200);
    listener_stop(l);
    config_cleanup(&cfg);
}

Test(listener, admin_listener_takes_health_and_metrics)
{
    struct config cfg;
    char *env[] = {"KURIR_HTTP_LISTEN=127.0.0.1:0",
                   "KURIR_ADMIN_LISTEN=127.0.0.1:0", NULL};
    struct listener *l = start(&cfg, env);
    unsigned pub = listener_port(l, false), admin = listener_port(l, true);
    cr_assert(pub != admin && pub != 0 && admin != 0);
    struct listener_state st = {.redis_ok = true,
                                .kafka_known = true,
                                .kafka_ok = true,
                                .metrics = "m 1\n"};
    listener_publish_state(l, &st);

    static const char *const admin_paths[] = {"/healthz", "/readyz",
                                              "/metrics"};
    for (size_t i = 0; i < 3; i++) {
        cr_assert(get("127.0.0.1", admin, admin_paths[i]) == 200, "%s",
                  admin_paths[i]);
        cr_assert(get("127.0.0.1", pub, admin_paths[i]) == 404,
                  "%s on the public listener", admin_paths[i]);
    }
    /* Callbacks stay on the public listener (404 here: no such account),
     * and are not served on the admin one. */
    cr_assert(get("127.0.0.1", pub, "/callbacks/x/status") == 404);
    cr_assert(get("127.0.0.1", admin, "/callbacks/x/status") == 404);
    listener_stop(l);
    config_cleanup(&cfg);
}

static bool have_ipv6_loopback(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6,
                             .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

    if (fd >= 0)
        close(fd);
    return ok;
}

Test(listener, ipv6_addresses)
{
    if (!have_ipv6_loopback())
        cr_skip_test("no IPv6 loopback (::1) on this host");
    struct config cfg;
    char *env[] = {"KURIR_HTTP_LISTEN=[::1]:0", "KURIR_ADMIN_LISTEN=[::]:0",
                   NULL};
    struct listener *l = start(&cfg, env);
    listener_heartbeat(l);
    unsigned admin = listener_port(l, true);
    cr_assert(get("[::1]", listener_port(l, false), "/callbacks/x/status") ==
              404);
    cr_assert(get("[::1]", admin, "/healthz") == 200);
    /* "[::]" is dual-stack: IPv4 reaches it too. */
    cr_assert(get("127.0.0.1", admin, "/healthz") == 200);
    listener_stop(l);
    config_cleanup(&cfg);

    struct sockaddr_storage ss;
    char host[64];
    cr_assert(listener_parse_addr(&ss, "[::1]:8080", host, sizeof(host)) == 0);
    cr_assert(ss.ss_family == AF_INET6 && strcmp(host, "::1") == 0);
    cr_assert(listener_parse_addr(&ss, "::1:8080", host, sizeof(host)) == -1);
    cr_assert(listener_parse_addr(&ss, "[::1]8080", host, sizeof(host)) == -1);
}

Test(listener, slow_client_is_cut_and_blocks_no_one, .timeout = 30)
{
    struct config cfg;
    char *env[] = {"KURIR_HTTP_LISTEN=127.0.0.1:0",
                   "KURIR_HTTP_CONN_TIMEOUT_S=1", NULL};
    struct listener *l = start(&cfg, env);
    unsigned port = listener_port(l, false);
    listener_heartbeat(l);

    /* A slowloris: opens a connection and dribbles a request header a
     * byte at a time, then falls silent mid-header. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    cr_assert(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    const char *part = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    for (const char *p = part; *p; p++)
        cr_assert(write(fd, p, 1) == 1);
    int64_t silent_at = support_now_ms();

    /* Others are served meanwhile. */
    for (int i = 0; i < 3; i++)
        cr_assert(get("127.0.0.1", port, "/healthz") == 200);

    /* The server closes the silent connection after its idle timeout. */
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int n = poll(&pfd, 1, 5000);
    cr_assert(n == 1, "the slow connection was not closed within 5 s");
    char buf[256];
    ssize_t got = read(fd, buf, sizeof(buf));
    cr_assert(got <= 0 || strncmp(buf, "HTTP/1.1 4", 10) == 0,
              "unexpected answer to a half request");
    int64_t took = support_now_ms() - silent_at;
    cr_assert(took >= 900 && took < 4000, "cut after %lld ms", (long long)took);
    close(fd);
    listener_stop(l);
    config_cleanup(&cfg);
}

/* Sends a raw HTTP request on a fresh connection; returns the socket. */
static int send_raw(unsigned port, const char *request)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    cr_assert(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    size_t len = strlen(request);
    cr_assert(write(fd, request, len) == (ssize_t)len);
    return fd;
}

/* Issue 9 #12: a callback whose events never reach Kafka is answered 503
 * after LISTENER_HOOK_WAIT_MS, so callbacks cannot pile up while Kafka is
 * away; the loop's late answer only frees it. */
Test(listener, suspended_callback_times_out, .timeout = 40)
{
    struct config cfg;
    struct accounts *accounts = NULL;
    char errstr[256];
    static const char json[] =
        "{\"accounts\": {\"in\": {\"provider\": \"intime\", \"base_url\": "
        "\"https://a\", \"credentials\": {\"user\": \"u\", \"hash\": \"h\"}, "
        "\"rate_limit\": {\"per_second\": 1}, \"webhook_token\": \"t\"}}}";
    int ret = accounts_parse(&accounts, json, strlen(json), "", errstr,
                             sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    char *env[] = {"KURIR_HTTP_LISTEN=127.0.0.1:0", NULL};
    ret = config_load(&cfg, env, errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    struct listener *l = NULL;
    ret =
        listener_start(&l, &cfg, accounts, NULL, NULL, errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    unsigned port = listener_port(l, false);
    listener_heartbeat(l);

    /* An empty token never matches. */
    int bad = send_raw(port, "GET /callbacks/in/status?token= HTTP/1.1\r\n"
                             "Host: x\r\nConnection: close\r\n\r\n");
    char buf[512] = "";
    struct pollfd bpfd = {.fd = bad, .events = POLLIN};
    cr_assert(poll(&bpfd, 1, 5000) == 1);
    cr_assert(read(bad, buf, sizeof(buf) - 1) > 0);
    cr_assert(strncmp(buf, "HTTP/1.1 403", 12) == 0, "%s", buf);
    close(bad);

    int fd = send_raw(port, "GET /callbacks/in/status?token=t&x=1 HTTP/1.1\r\n"
                            "Host: x\r\nConnection: close\r\n\r\n");
    struct hook *h = NULL;
    bool ok;
    POLL_UNTIL(ok, (h = listener_take(l)) != NULL, 5000);
    cr_assert(ok, "the callback never reached the loop");
    cr_assert(listener_suspended(l) == 1);
    int64_t t0 = support_now_ms();
    POLL_UNTIL(ok, listener_expire(l) == 1, LISTENER_HOOK_WAIT_MS + 5000);
    cr_assert(ok, "the suspended callback never timed out");
    cr_assert(support_now_ms() - t0 >= LISTENER_HOOK_WAIT_MS - 1000);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    cr_assert(poll(&pfd, 1, 5000) == 1, "no answer after the expiry");
    memset(buf, 0, sizeof(buf));
    cr_assert(read(fd, buf, sizeof(buf) - 1) > 0);
    cr_assert(strncmp(buf, "HTTP/1.1 503", 12) == 0, "%s", buf);
    close(fd);
    cr_assert(listener_suspended(l) == 0);
    /* The loop's answer comes late: it only frees the hook. */
    hook_answer(l, h, 200, "ok", "text/plain");
    cr_assert(listener_suspended(l) == 0);
    listener_stop(l);
    accounts_free(accounts);
    config_cleanup(&cfg);
}

/* Issue 9 #12: /readyz answers from the loop's published state only: not
 * ready before the first publish, then whatever the loop said, with the
 * reason Redis is not ready. */
Test(listener, readyz_from_published_state)
{
    struct config cfg;
    char errstr[256];
    char *env[] = {"KURIR_HTTP_LISTEN=127.0.0.1:0", NULL};
    int ret = config_load(&cfg, env, errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    struct listener *l = NULL;
    ret = listener_start(&l, &cfg, NULL, NULL, NULL, errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    unsigned port = listener_port(l, false);

    cr_assert(get("127.0.0.1", port, "/readyz") == 503);
    struct listener_state st = {
        .redis_ok = true, .kafka_known = true, .kafka_ok = true};
    listener_publish_state(l, &st);
    cr_assert(get("127.0.0.1", port, "/readyz") == 200);
    st.redis_note = "came back empty";
    listener_publish_state(l, &st);
    char url[96];
    struct support_http r;
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/readyz", port);
    ret = support_http(&r, "GET", url, NULL, NULL, 0);
    cr_assert(ret == 0);
    cr_assert(r.status == 503);
    cr_assert(strstr(r.body, "redis came back empty") != NULL, "%s", r.body);
    support_http_cleanup(&r);
    st.kafka_ok = false;
    st.redis_note = NULL;
    listener_publish_state(l, &st);
    cr_assert(get("127.0.0.1", port, "/readyz") == 503);
    listener_stop(l);
    config_cleanup(&cfg);
}
