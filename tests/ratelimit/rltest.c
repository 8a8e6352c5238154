/* tests/ratelimit/rltest.c - connection and clean-up helpers for the
 * ratelimit tests. See rltest.h. */
#include "tests/ratelimit/rltest.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/support/support.h"

void rltest_prefix(char *buf, size_t buf_size, const char *name)
{
    snprintf(buf, buf_size, "kt:%s:%ld", name, (long)getpid());
}

struct rconn *rltest_connect(const char *prefix)
{
    char url[300];
    char errstr[256];
    struct rconn *rc = NULL;
    struct rconn_opts opts = {.url = url, .prefix = prefix};

    snprintf(url, sizeof(url), "redis://%s/0", support_redis());
    int ret = rconn_new(&rc, &opts, errstr, sizeof(errstr));
    cr_assert(ret == 0, "rconn_new: %s", errstr);
    ret = rconn_ping(rc, errstr, sizeof(errstr));
    cr_assert(ret == 0, "ping: %s", errstr);
    return rc;
}

int64_t rltest_int(struct rconn *rc, int argc, const char **argv)
{
    char errstr[256];
    redisReply *reply = NULL;
    int64_t v = -1;

    int ret = rconn_command(&reply, rc, argc, argv, NULL, true, errstr,
                            sizeof(errstr));
    cr_assert(ret == 0, "%s: %s", argv[0], errstr);
    if (rconn_reply_i64(&v, reply) != 0)
        v = -1;
    freeReplyObject(reply);
    return v;
}

void rltest_cleanup(struct rconn *rc)
{
    char pattern[128];
    char cursor[32] = "0";
    char errstr[256];

    snprintf(pattern, sizeof(pattern), "%s:*", rconn_prefix(rc));
    do {
        const char *argv[] = {"SCAN",  cursor,  "MATCH",
                              pattern, "COUNT", "1000"};
        redisReply *reply = NULL;
        int ret = rconn_command(&reply, rc, 6, argv, NULL, true, errstr,
                                sizeof(errstr));
        cr_assert(ret == 0, "scan: %s", errstr);
        cr_assert(reply->type == REDIS_REPLY_ARRAY && reply->elements == 2);
        snprintf(cursor, sizeof(cursor), "%s", reply->element[0]->str);
        const redisReply *keys = reply->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            const char *del[] = {"DEL", keys->element[i]->str};
            rltest_int(rc, 2, del);
        }
        freeReplyObject(reply);
    } while (strcmp(cursor, "0") != 0);
}

int64_t rltest_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
