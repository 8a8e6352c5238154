/* tests/support/redisproc.c - redis-server and redis-sentinel for tests.
 * See redisproc.h. */
#include "tests/support/redisproc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

void redisproc_need(const char *path)
{
    if (access(path, X_OK) == 0)
        return;
    const char *req = getenv("KURIR_TEST_REQUIRE");
    if (req != NULL && strcmp(req, "1") == 0)
        cr_assert_fail("%s is missing (deploy/local/lib.sh stack_deps "
                       "installs it)",
                       path);
    cr_skip_test("%s is missing", path);
}

void redisproc_dir(char *buf, size_t size, const char *name)
{
    char cmd[512];

    snprintf(buf, size, "/tmp/kurir-%s-%ld", name, (long)getpid());
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'", buf, buf);
    cr_assert(system(cmd) == 0);
}

void redisproc_rmdir(const char *dir)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert(system(cmd) == 0);
}

bool redisproc_answers(int port)
{
    struct timeval tv = {0, 200000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    bool ok = false;

    if (c != NULL && c->err == 0) {
        redisSetTimeout(c, tv);
        redisReply *r = redisCommand(c, "PING");
        ok = r != NULL; /* NOAUTH counts: the server is up */
        freeReplyObject(r);
    }
    redisFree(c);
    return ok;
}

redisReply *redisproc_cmd(int port, const char *cmd)
{
    struct timeval tv = {6, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    redisReply *r = NULL;

    if (c != NULL && c->err == 0) {
        redisSetTimeout(c, tv);
        r = redisCommand(c, cmd);
    }
    redisFree(c);
    return r;
}

void redisproc_start(struct proc *p, const char *dir, char *const extra[])
{
    char *argv[32];
    int n = 0;

    argv[n++] = REDIS_SERVER;
    argv[n++] = "--dir";
    argv[n++] = (char *)dir;
    argv[n++] = "--bind";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--save";
    argv[n++] = "";
    argv[n++] = "--appendonly";
    argv[n++] = "yes";
    argv[n++] = "--appendfsync";
    argv[n++] = "everysec";
    for (int i = 0; extra[i] != NULL && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    int ret = support_spawn(p, argv, NULL, false, 0);
    cr_assert(ret == 0, "redis-server did not start");
}

void redisproc_sentinel(struct proc *p, const char *dir, int port,
                        int primary_port)
{
    char conf[300];

    snprintf(conf, sizeof(conf), "%s/sentinel.conf", dir);
    FILE *f = fopen(conf, "w");
    cr_assert(f != NULL);
    fprintf(f,
            "port %d\nbind 127.0.0.1\ndir %s\n"
            "sentinel monitor mymaster 127.0.0.1 %d 1\n"
            "sentinel down-after-milliseconds mymaster 2000\n"
            "sentinel failover-timeout mymaster 3000\n",
            port, dir, primary_port);
    fclose(f);
    char *argv[] = {REDIS_SENTINEL, conf, NULL};
    int ret = support_spawn(p, argv, NULL, false, 0);
    cr_assert(ret == 0, "redis-sentinel did not start");
}

int redisproc_master_port(int sentinel_port)
{
    redisReply *r = redisproc_cmd(sentinel_port,
                                  "SENTINEL get-master-addr-by-name mymaster");
    int port = 0;

    if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2)
        port = atoi(r->element[1]->str);
    freeReplyObject(r);
    return port;
}

bool redisproc_sentinel_ready(int sentinel_port)
{
    redisReply *r = redisproc_cmd(sentinel_port, "SENTINEL replicas mymaster");
    bool flags_ok = false, link_ok = false;

    if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
        const redisReply *kv = r->element[0];
        for (size_t i = 0; i + 1 < kv->elements; i += 2) {
            const char *k = kv->element[i]->str, *v = kv->element[i + 1]->str;
            if (strcmp(k, "flags") == 0)
                flags_ok = strcmp(v, "slave") == 0;
            if (strcmp(k, "master-link-status") == 0)
                link_ok = strcmp(v, "ok") == 0;
        }
    }
    freeReplyObject(r);
    return flags_ok && link_ok;
}

bool redisproc_role_is(int port, const char *role)
{
    redisReply *r = redisproc_cmd(port, "ROLE");
    bool ok = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
              strcmp(r->element[0]->str, role) == 0;

    freeReplyObject(r);
    return ok;
}

bool redisproc_replica_linked(int port)
{
    redisReply *r = redisproc_cmd(port, "ROLE");
    bool ok = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements >= 4 &&
              strcmp(r->element[0]->str, "slave") == 0 &&
              strcmp(r->element[3]->str, "connected") == 0;

    freeReplyObject(r);
    return ok;
}
