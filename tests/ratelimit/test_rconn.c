/* tests/ratelimit/test_rconn.c - KURIR_REDIS_URL parsing, key design, and a
 * connection that fails fast while Redis is away and heals by itself. */
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "ratelimit/rconn.h"
#include "tests/ratelimit/rltest.h"
#include "tests/support/support.h"

Test(rconn, url_parse_accepts_documented_forms)
{
    struct rconn_url u;
    char errstr[256];
    int ret;

    ret = rconn_url_parse(&u, "redis://localhost", errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    cr_assert(!u.is_unix && strcmp(u.host, "localhost") == 0 &&
              u.port == 6379 && u.db == 0 && u.password[0] == '\0');

    ret = rconn_url_parse(&u, "redis://:s%40cret@10.0.0.1:6380/3", errstr,
                          sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    cr_assert(strcmp(u.host, "10.0.0.1") == 0 && u.port == 6380 && u.db == 3 &&
              strcmp(u.password, "s@cret") == 0);

    ret = rconn_url_parse(&u, "redis://user:pw@[::1]:7000/", errstr,
                          sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    cr_assert(strcmp(u.host, "::1") == 0 && u.port == 7000 && u.db == 0 &&
              strcmp(u.password, "pw") == 0);

    ret = rconn_url_parse(&u, "unix:/run/redis.sock", errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    cr_assert(u.is_unix && strcmp(u.path, "/run/redis.sock") == 0);

    ret = rconn_url_parse(&u, "unix:///run/redis.sock", errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    cr_assert(u.is_unix && strcmp(u.path, "/run/redis.sock") == 0);
}

Test(rconn, url_parse_rejects_bad_urls_without_leaking_password)
{
    static const char *const bad[] = {
        "http://localhost",
        "redis://",
        "redis://h:0",
        "redis://h:99999",
        "redis://h:12ab",
        "redis://h/x",
        "redis://h/-1",
        "unix:relative.sock",
        "redis://:xyzzy@h?db=1",
        "redis://:%zz@h",
        "redis://:xyzzy@h:notaport",
        "redis://[::1",
        "",
    };
    struct rconn_url u;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char errstr[256] = "";
        int ret = rconn_url_parse(&u, bad[i], errstr, sizeof(errstr));
        cr_assert(ret == -1, "accepted \"%s\"", bad[i]);
        cr_assert(errstr[0] != '\0' && strstr(errstr, "xyzzy") == NULL,
                  "\"%s\" -> \"%s\"", bad[i], errstr);
    }
}

Test(rconn, key_puts_account_in_hash_tag_and_refuses_braces)
{
    struct rconn *rc = NULL;
    struct rconn_opts opts = {
        .url = "redis://127.0.0.1:1", .prefix = "p", .connect_timeout_ms = 200};
    char key[RCONN_KEY_MAX];
    char errstr[256];
    char long_id[600];
    int ret;

    ret = rconn_new(&rc, &opts, errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    ret = rconn_key(key, sizeof(key), rc, "shop", "mk", "job-1", errstr,
                    sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    cr_assert_str_eq(key, "p:{shop}:mk:job-1");
    ret = rconn_key(key, sizeof(key), rc, "sh{op", "mk", NULL, errstr,
                    sizeof(errstr));
    cr_assert(ret == -1);
    ret =
        rconn_key(key, sizeof(key), rc, "", "mk", NULL, errstr, sizeof(errstr));
    cr_assert(ret == -1);
    memset(long_id, 'x', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    ret = rconn_key(key, sizeof(key), rc, "shop", "mk", long_id, errstr,
                    sizeof(errstr));
    cr_assert(ret == -1);
    rconn_free(rc);
}

Test(rconn, new_refuses_prefix_with_braces)
{
    struct rconn *rc = NULL;
    struct rconn_opts opts = {.url = "redis://127.0.0.1:1", .prefix = "{x}"};
    char errstr[256];

    int ret = rconn_new(&rc, &opts, errstr, sizeof(errstr));
    cr_assert(ret == -1 && rc == NULL);
}

Test(rconn, unreachable_redis_fails_fast_with_backoff)
{
    struct rconn *rc = NULL;
    struct rconn_opts opts = {
        .url = "redis://127.0.0.1:1", .prefix = "p", .backoff_min_ms = 2000};
    char errstr[256];
    int ret;

    ret = rconn_new(&rc, &opts, errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    cr_assert(!rconn_is_up(rc));
    ret = rconn_ping(rc, errstr, sizeof(errstr));
    cr_assert(ret == -1);
    cr_assert(strstr(errstr, "redis") != NULL, "%s", errstr);
    /* Within the backoff no connect is tried: the call returns at once. */
    int64_t t0 = support_now_ms();
    ret = rconn_ping(rc, errstr, sizeof(errstr));
    int64_t took = support_now_ms() - t0;
    cr_assert(ret == -1);
    cr_assert(strstr(errstr, "next attempt in") != NULL, "%s", errstr);
    cr_assert(took < 50, "took %lld ms", (long long)took);
    rconn_free(rc);
}

Test(rconn, killed_connection_is_replaced_once)
{
    char prefix[64];
    char errstr[256];
    redisReply *reply = NULL;

    rltest_prefix(prefix, sizeof(prefix), "rconn-kill");
    struct rconn *rc = rltest_connect(prefix);
    struct rconn *admin = rltest_connect(prefix);
    const char *id_argv[] = {"CLIENT", "ID"};
    int64_t id = rltest_int(rc, 2, id_argv);
    char id_buf[24];
    const char *kill[] = {"CLIENT", "KILL", "ID",
                          rconn_i64(id_buf, sizeof(id_buf), id)};
    int64_t killed = rltest_int(admin, 4, kill);
    cr_assert(killed == 1);

    const char *ping[] = {"PING"};
    int ret =
        rconn_command(&reply, rc, 1, ping, NULL, true, errstr, sizeof(errstr));
    cr_assert(ret == 0, "ping after kill: %s", errstr);
    freeReplyObject(reply);
    rconn_free(admin);
    rconn_free(rc);
}

static int rconn_free_port(void)
{
    struct sockaddr_in addr = {.sin_family = AF_INET};
    socklen_t len = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(fd >= 0);
    cr_assert(bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0);
    cr_assert(getsockname(fd, (struct sockaddr *)&addr, &len) == 0);
    close(fd);
    return ntohs(addr.sin_port);
}

/* Starts redis-server with AOF (everysec) in `dir`, as every Redis kurir
 * runs against must persist; `extra` (NULL-ended, may be NULL) is added. */
static void rconn_start_redis_in(struct proc *p, int port, const char *dir,
                                 char *const *extra)
{
    char port_buf[16];
    bool ok;

    snprintf(port_buf, sizeof(port_buf), "%d", port);
    char *argv[24] = {"/usr/bin/redis-server",
                      "--port",
                      port_buf,
                      "--bind",
                      "127.0.0.1",
                      "--dir",
                      (char *)dir,
                      "--save",
                      "",
                      "--appendonly",
                      "yes",
                      "--appendfsync",
                      "everysec",
                      "--requirepass",
                      "pw-xyzzy",
                      NULL};
    size_t n = 15;
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 23; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    int ret = support_spawn(p, argv, NULL, false, 0);
    cr_assert(ret == 0, "cannot start redis-server");
    POLL_UNTIL(ok, support_proc_log_has(p, "Ready to accept connections"),
               10000);
    if (!ok)
        support_proc_log_dump(p);
    cr_assert(ok, "redis-server did not become ready");
}

/* A fresh directory for a server's files; removed by rconn_rmdir. */
static void rconn_tmpdir(char *dir, size_t size)
{
    snprintf(dir, size, "/tmp/kurir-rconn-XXXXXX");
    cr_assert(mkdtemp(dir) != NULL);
}

static void rconn_rmdir(const char *dir)
{
    char cmd[300];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert(system(cmd) == 0);
}

static char rconn_dir[64];

static void rconn_start_redis(struct proc *p, int port)
{
    if (rconn_dir[0] == '\0')
        rconn_tmpdir(rconn_dir, sizeof(rconn_dir));
    rconn_start_redis_in(p, port, rconn_dir, NULL);
}

/* KURIR_TEST_REDIS is not needed: this test runs its own server. */
Test(rconn, auth_select_down_and_back, .timeout = 60)
{
    struct proc srv;
    struct rconn *bad = NULL, *rc = NULL;
    char url[128];
    char errstr[256];
    redisReply *reply = NULL;
    bool ok;
    int ret;
    int port = rconn_free_port();
    static struct rconn_script script = {.src = "return ARGV[1] + 1"};
    const char *one[] = {"41"};

    rconn_start_redis(&srv, port);

    snprintf(url, sizeof(url), "redis://:wrong-pw@127.0.0.1:%d/2", port);
    struct rconn_opts bad_opts = {.url = url, .prefix = "p"};
    ret = rconn_new(&bad, &bad_opts, errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    ret = rconn_ping(bad, errstr, sizeof(errstr));
    cr_assert(ret == -1);
    cr_assert(strstr(errstr, "wrong-pw") == NULL, "%s", errstr);
    rconn_free(bad);

    snprintf(url, sizeof(url), "redis://:pw-xyzzy@127.0.0.1:%d/2", port);
    struct rconn_opts opts = {
        .url = url, .prefix = "p", .backoff_min_ms = 50, .backoff_max_ms = 200};
    ret = rconn_new(&rc, &opts, errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    const char *info[] = {"CLIENT", "INFO"};
    ret =
        rconn_command(&reply, rc, 2, info, NULL, true, errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    cr_assert(strstr(reply->str, " db=2 ") != NULL, "%s", reply->str);
    freeReplyObject(reply);
    reply = NULL;
    ret = rconn_eval(&reply, rc, &script, 0, 1, one, NULL, true, errstr,
                     sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    cr_assert(reply->type == REDIS_REPLY_INTEGER && reply->integer == 42);
    freeReplyObject(reply);
    reply = NULL;

    /* Redis goes away: calls fail quickly with a clear message. */
    support_stop(&srv, SIGTERM, 5000);
    int64_t t0 = support_now_ms();
    ret = rconn_ping(rc, errstr, sizeof(errstr));
    cr_assert(ret == -1);
    cr_assert(support_now_ms() - t0 < 1000);
    cr_assert(strstr(errstr, "redis") != NULL, "%s", errstr);
    cr_assert(!rconn_is_up(rc));

    /* It comes back (with an empty script cache): the connection heals
     * and the script is loaded again on NOSCRIPT. */
    rconn_start_redis(&srv, port);
    POLL_UNTIL(ok, rconn_ping(rc, errstr, sizeof(errstr)) == 0, 10000);
    cr_assert(ok, "no reconnect: %s", errstr);
    cr_assert(rconn_is_up(rc));
    ret = rconn_eval(&reply, rc, &script, 0, 1, one, NULL, true, errstr,
                     sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    cr_assert(reply->type == REDIS_REPLY_INTEGER && reply->integer == 42);
    freeReplyObject(reply);

    rconn_free(rc);
    support_stop(&srv, SIGTERM, 5000);
    rconn_rmdir(rconn_dir);
}

/* Issue 9 #4: the persistence settings are read (CONFIG, or INFO where
 * CONFIG is renamed away), and the epoch tells a Redis that restarted from
 * its AOF from one that came back empty. */
Test(rconn, persistence_and_epoch, .timeout = 60)
{
    struct proc srv;
    struct rconn *rc = NULL;
    struct rconn_epoch epoch = {0};
    struct rconn_persistence p;
    char dir[64], empty_dir[64], bare_dir[64], url[128], errstr[256];
    bool ok;
    int port = rconn_free_port();

    rconn_tmpdir(dir, sizeof(dir));
    rconn_tmpdir(empty_dir, sizeof(empty_dir));
    rconn_tmpdir(bare_dir, sizeof(bare_dir));
    rconn_start_redis_in(&srv, port, dir, NULL);
    snprintf(url, sizeof(url), "redis://:pw-xyzzy@127.0.0.1:%d/0", port);
    struct rconn_opts opts = {.url = url,
                              .prefix = "p",
                              .backoff_min_ms = 50,
                              .backoff_max_ms = 200,
                              .epoch = &epoch};
    int ret = rconn_new(&rc, &opts, errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    ret = rconn_persistence(&p, rc, errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    cr_assert(p.aof && !p.rdb && p.rdb_known);
    cr_assert(strcmp(p.how, "CONFIG") == 0);
    /* The connect read (and wrote) the epoch: no change yet. */
    cr_assert(strlen(epoch.value) == 32, "%s", epoch.value);
    cr_assert(epoch.changes == 0);
    char first[40];
    snprintf(first, sizeof(first), "%s", epoch.value);

    /* Restarted from its AOF: the same epoch. */
    support_stop(&srv, SIGKILL, 5000);
    rconn_start_redis_in(&srv, port, dir, NULL);
    POLL_UNTIL(ok, rconn_ping(rc, errstr, sizeof(errstr)) == 0, 10000);
    cr_assert(ok, "no reconnect: %s", errstr);
    ret = rconn_epoch_check(rc, errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    cr_assert(epoch.changes == 0);
    cr_assert(strcmp(epoch.value, first) == 0);

    /* Back empty (another directory): the reconnect sees a new epoch. */
    support_stop(&srv, SIGKILL, 5000);
    rconn_start_redis_in(&srv, port, empty_dir, NULL);
    POLL_UNTIL(ok, rconn_ping(rc, errstr, sizeof(errstr)) == 0, 10000);
    cr_assert(ok, "no reconnect: %s", errstr);
    cr_assert(epoch.changes == 1);
    cr_assert(strcmp(epoch.previous, first) == 0);
    cr_assert(strcmp(epoch.value, first) != 0);

    /* Nothing persisted, and CONFIG renamed away as on a managed Redis. */
    const char *off[] = {"CONFIG", "SET", "appendonly", "no"};
    redisReply *reply = NULL;
    ret =
        rconn_command(&reply, rc, 4, off, NULL, false, errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    freeReplyObject(reply);
    ret = rconn_persistence(&p, rc, errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    cr_assert(p.rdb_known && !p.aof && !p.rdb);
    support_stop(&srv, SIGTERM, 5000);
    char *const renamed[] = {"--rename-command", "CONFIG", "", NULL};
    rconn_start_redis_in(&srv, port, bare_dir, renamed);
    POLL_UNTIL(ok, rconn_ping(rc, errstr, sizeof(errstr)) == 0, 10000);
    cr_assert(ok, "no reconnect: %s", errstr);
    ret = rconn_persistence(&p, rc, errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    cr_assert(p.aof && !p.rdb_known);
    cr_assert(strcmp(p.how, "INFO") == 0);

    rconn_free(rc);
    support_stop(&srv, SIGTERM, 5000);
    rconn_rmdir(dir);
    rconn_rmdir(empty_dir);
    rconn_rmdir(bare_dir);
}

Test(rconn, url_parse_keeps_acl_user_and_sentinels)
{
    struct rconn_url u;
    char errstr[256];
    int ret;

    ret = rconn_url_parse(&u, "redis://app:p@ss@h:6380/1", errstr,
                          sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    cr_assert(strcmp(u.user, "app") == 0 && strcmp(u.password, "p@ss") == 0 &&
              strcmp(u.host, "h") == 0 && u.port == 6380 && u.db == 1);

    ret =
        rconn_url_parse(&u, "sentinel://u:pw@s1,[::1]:26380,s3:5000/mymaster/2",
                        errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    cr_assert(u.is_sentinel && u.nsentinels == 3 && u.db == 2);
    cr_assert(strcmp(u.master, "mymaster") == 0 && strcmp(u.user, "u") == 0 &&
              strcmp(u.password, "pw") == 0);
    cr_assert(strcmp(u.sentinels[0].host, "s1") == 0 &&
              u.sentinels[0].port == 26379);
    cr_assert(strcmp(u.sentinels[1].host, "::1") == 0 &&
              u.sentinels[1].port == 26380);
    cr_assert(u.sentinels[2].port == 5000);

    static const char *const bad[] = {"sentinel://s1", "sentinel:///m",
                                      "sentinel://s1:x/m", "sentinel://s1/"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ret = rconn_url_parse(&u, bad[i], errstr, sizeof(errstr));
        cr_assert(ret == -1, "%s accepted", bad[i]);
    }
}
