/* tests/ratelimit/test_redis_edges.c - managed and self-run Redis set-ups:
 * an ACL user, Redis behind TLS through a stunnel sidecar, and Sentinel
 * following a failover. Each test starts its own redis-server, stunnel and
 * redis-sentinel (Debian's) on free loopback ports and stops them. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "ratelimit/rconn.h"
#include "tests/support/redisproc.h"
#include "tests/support/support.h"

#define STUNNEL "/usr/bin/stunnel4"
#define OPENSSL "/usr/bin/openssl"

static struct rconn *connect_url(const char *url, char *errstr, size_t size)
{
    struct rconn *rc = NULL;
    struct rconn_opts opts = {.url = url, .prefix = "edges"};

    int ret = rconn_new(&rc, &opts, errstr, size);
    cr_assert(ret == 0, "rconn_new: %s", errstr);
    return rc;
}

static bool cmd_ok(struct rconn *rc, int argc, const char **argv,
                   redisReply **out)
{
    char errstr[256];
    redisReply *reply = NULL;
    bool ok = rconn_command(&reply, rc, argc, argv, NULL, false, errstr,
                            sizeof(errstr)) == 0;
    if (out != NULL)
        *out = reply;
    else
        freeReplyObject(reply);
    return ok;
}

Test(redis_edges, acl_user_sends_auth_user_password)
{
    redisproc_need(REDIS_SERVER);
    char dir[256];
    redisproc_dir(dir, sizeof(dir), "acl");
    int port = support_free_port();
    char port_s[16];
    snprintf(port_s, sizeof(port_s), "%d", port);
    /* The default user is off: only the ACL user gets in. The password
     * holds '@' so the parse must use the last '@'. */
    char *extra[] = {"--port", port_s,  "--user", "default", "off",
                     "--user", "kurir", "on",     ">s3cr@t", "~*",
                     "&*",     "+@all", NULL};
    struct proc redis;
    redisproc_start(&redis, dir, extra);
    bool up;
    POLL_UNTIL(up, redisproc_answers(port), 10000);
    cr_assert(up, "redis-server not answering");

    char url[256], errstr[256];
    snprintf(url, sizeof(url), "redis://kurir:s3cr@t@127.0.0.1:%d/0", port);
    struct rconn *rc = connect_url(url, errstr, sizeof(errstr));
    int ret = rconn_ping(rc, errstr, sizeof(errstr));
    cr_assert(ret == 0, "ping as the ACL user: %s", errstr);
    redisReply *who = NULL;
    const char *argv[] = {"ACL", "WHOAMI"};
    cr_assert(cmd_ok(rc, 2, argv, &who));
    cr_assert(who->type == REDIS_REPLY_STRING &&
              strcmp(who->str, "kurir") == 0);
    freeReplyObject(who);
    rconn_free(rc);

    /* Without the user name (AUTH password only, the old behaviour) the
     * server refuses: the default user is off. */
    snprintf(url, sizeof(url), "redis://:s3cr@t@127.0.0.1:%d/0", port);
    rc = connect_url(url, errstr, sizeof(errstr));
    ret = rconn_ping(rc, errstr, sizeof(errstr));
    cr_assert(ret == -1, "AUTH without the user name got in");
    cr_assert(strstr(errstr, "s3cr") == NULL, "password in: %s", errstr);
    rconn_free(rc);
    support_stop(&redis, SIGTERM, 5000);
    redisproc_rmdir(dir);
}

Test(redis_edges, tls_redis_through_stunnel_sidecar, .timeout = 60)
{
    redisproc_need(REDIS_SERVER);
    redisproc_need(STUNNEL);
    redisproc_need(OPENSSL);
    char dir[256], cmd[1024];
    redisproc_dir(dir, sizeof(dir), "tls");
    /* A self-signed certificate for "localhost", made here. */
    snprintf(cmd, sizeof(cmd),
             OPENSSL " req -x509 -newkey rsa:2048 -nodes -days 1 "
                     "-subj /CN=localhost -addext subjectAltName=DNS:localhost "
                     "-keyout '%s/key.pem' -out '%s/cert.pem' 2>/dev/null",
             dir, dir);
    cr_assert(system(cmd) == 0, "openssl could not make a certificate");

    int tls_port = support_free_port();
    char tls_port_s[16], cert[300], key[300];
    snprintf(tls_port_s, sizeof(tls_port_s), "%d", tls_port);
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    char *extra[] = {"--port",
                     "0",
                     "--tls-port",
                     tls_port_s,
                     "--tls-cert-file",
                     cert,
                     "--tls-key-file",
                     key,
                     "--tls-ca-cert-file",
                     cert,
                     "--tls-auth-clients",
                     "no",
                     NULL};
    struct proc redis;
    redisproc_start(&redis, dir, extra);

    /* stunnel in client mode: plain on loopback, TLS to Redis, the
     * server's certificate checked against our CA and host name. */
    int plain_port = support_free_port();
    char conf[300];
    snprintf(conf, sizeof(conf), "%s/stunnel.conf", dir);
    FILE *f = fopen(conf, "w");
    cr_assert(f != NULL);
    fprintf(f,
            "foreground = yes\n"
            "pid =\n"
            "[redis]\n"
            "client = yes\n"
            "accept = 127.0.0.1:%d\n"
            "connect = 127.0.0.1:%d\n"
            "verifyChain = yes\n"
            "CAfile = %s\n"
            "checkHost = localhost\n",
            plain_port, tls_port, cert);
    fclose(f);
    char *sargv[] = {STUNNEL, conf, NULL};
    struct proc stunnel;
    int ret = support_spawn(&stunnel, sargv, NULL, false, 0);
    cr_assert(ret == 0, "stunnel did not start");

    char url[256], errstr[256];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", plain_port);
    struct rconn *rc = connect_url(url, errstr, sizeof(errstr));
    bool up;
    POLL_UNTIL(up, rconn_ping(rc, errstr, sizeof(errstr)) == 0, 15000);
    if (!up) {
        support_proc_log_dump(&stunnel);
        support_proc_log_dump(&redis);
    }
    cr_assert(up, "no Redis through the sidecar: %s", errstr);
    const char *set[] = {"SET", "edges:tls", "over-tls"};
    cr_assert(cmd_ok(rc, 3, set, NULL));
    redisReply *got = NULL;
    const char *get[] = {"GET", "edges:tls"};
    cr_assert(cmd_ok(rc, 2, get, &got));
    cr_assert(got->type == REDIS_REPLY_STRING &&
              strcmp(got->str, "over-tls") == 0);
    freeReplyObject(got);
    rconn_free(rc);

    /* Plain Redis protocol straight to the TLS port gets nowhere: the
     * bytes above did go through TLS. */
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", tls_port);
    struct rconn_opts opts = {
        .url = url, .prefix = "edges", .command_timeout_ms = 300};
    ret = rconn_new(&rc, &opts, errstr, sizeof(errstr));
    cr_assert(ret == 0);
    ret = rconn_ping(rc, errstr, sizeof(errstr));
    cr_assert(ret == -1, "plain protocol worked on the TLS port");
    rconn_free(rc);

    support_stop(&stunnel, SIGTERM, 5000);
    support_stop(&redis, SIGTERM, 5000);
    redisproc_rmdir(dir);
}

/* INCR through rc; sets *v to the new value. */
static bool incr(struct rconn *rc, long long *v)
{
    redisReply *r = NULL;
    const char *argv[] = {"INCR", "edges:counter"};
    bool ok = cmd_ok(rc, 2, argv, &r);

    if (ok)
        *v = r->integer;
    freeReplyObject(r);
    return ok;
}

Test(redis_edges, sentinel_failover_is_followed, .timeout = 90)
{
    redisproc_need(REDIS_SERVER);
    redisproc_need(REDIS_SENTINEL);
    char dir[256];
    redisproc_dir(dir, sizeof(dir), "sentinel");
    char dir2[300];
    snprintf(dir2, sizeof(dir2), "%s/replica", dir);
    cr_assert(mkdir(dir2, 0700) == 0);

    int p1 = support_free_port(), p2 = support_free_port();
    char p1s[16], p2s[16];
    snprintf(p1s, sizeof(p1s), "%d", p1);
    snprintf(p2s, sizeof(p2s), "%d", p2);
    char *primary_args[] = {"--port", p1s, NULL};
    char replicaof[64];
    snprintf(replicaof, sizeof(replicaof), "127.0.0.1 %d", p1);
    char *replica_args[] = {"--port", p2s, "--replicaof", replicaof, NULL};
    struct proc primary, replica;
    redisproc_start(&primary, dir, primary_args);
    redisproc_start(&replica, dir2, replica_args);
    bool ok;
    POLL_UNTIL(ok, redisproc_replica_linked(p2), 15000);
    cr_assert(ok, "primary and replica not up");

    int sp = support_free_port();
    struct proc sentinel;
    redisproc_sentinel(&sentinel, dir, sp, p1);
    POLL_UNTIL(ok, redisproc_sentinel_ready(sp), 20000);
    cr_assert(ok, "sentinel did not find the replica");

    /* The first Sentinel listed is down: the next one is asked. */
    int dead = support_free_port();
    char url[256], errstr[256];
    snprintf(url, sizeof(url), "sentinel://127.0.0.1:%d,127.0.0.1:%d/mymaster",
             dead, sp);
    struct rconn *rc = connect_url(url, errstr, sizeof(errstr));
    long long v = 0;
    cr_assert(redisproc_master_port(sp) == p1 &&
                  redisproc_role_is(p1, "master"),
              "a failover before the test made one");
    for (int i = 1; i <= 5; i++) {
        cr_assert(incr(rc, &v), "INCR before the failover");
        cr_assert(v == i, "INCR gave %lld, not %d", v, i);
    }
    /* The writes are on the replica before the primary goes. */
    redisReply *w = redisproc_cmd(p1, "WAIT 1 5000");
    cr_assert(w != NULL && w->type == REDIS_REPLY_INTEGER && w->integer == 1);
    freeReplyObject(w);
    cr_assert(redisproc_master_port(sp) == p1, "a failover before the kill");

    /* The primary dies (SIGKILL: no goodbye). Sentinel sees it down after
     * down-after-milliseconds and promotes the replica; meanwhile calls
     * fail fast and rconn asks Sentinel again at each reconnect. */
    support_stop(&primary, SIGKILL, 5000);
    cr_assert(!incr(rc, &v), "INCR succeeded with the primary dead");
    POLL_UNTIL(
        ok, redisproc_master_port(sp) == p2 && redisproc_role_is(p2, "master"),
        30000);
    cr_assert(ok, "the failover did not happen");

    /* rconn follows: commands succeed again, on the new primary, and the
     * count went on from where it was (nothing lost, nothing doubled). */
    long long next = 0;
    POLL_UNTIL(ok, incr(rc, &next), 30000);
    cr_assert(ok, "rconn did not follow the failover");
    if (next != 6) {
        support_proc_log_dump(&sentinel);
        support_proc_log_dump(&replica);
    }
    cr_assert(next == 6, "counter after the failover: %lld", next);
    redisReply *g = redisproc_cmd(p2, "GET edges:counter");
    cr_assert(g != NULL, "GET on the new primary: no answer");
    cr_assert(g->type == REDIS_REPLY_STRING && strcmp(g->str, "6") == 0,
              "GET on the new primary: type %d %s", g->type,
              g->str != NULL ? g->str : "");
    freeReplyObject(g);

    rconn_free(rc);
    support_stop(&sentinel, SIGTERM, 5000);
    support_stop(&replica, SIGTERM, 5000);
    redisproc_rmdir(dir);
}
