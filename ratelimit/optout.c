/* ratelimit/optout.c - the per-account opt-out set. */
#include "ratelimit/optout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The most numbers one SADD/SREM carries; more go in several commands. */
#define OPTOUT_CHUNK 1000

/* Runs `cmd key m...` over the numbers in chunks; adds the integer replies
 * to *count. */
static int optout_each(struct rconn *rc, const char *cmd, const char *account,
                       const char *const *msisdns, size_t n, size_t *count,
                       char *errstr, size_t errstr_size)
{
    char key[RCONN_KEY_MAX];
    const char *argv[OPTOUT_CHUNK + 2];
    size_t total = 0;

    if (rconn_key(key, sizeof(key), rc, account, OPTOUT_KIND, NULL, errstr,
                  errstr_size) != 0)
        return -1;
    for (size_t first = 0; first < n; first += OPTOUT_CHUNK) {
        size_t k = n - first < OPTOUT_CHUNK ? n - first : OPTOUT_CHUNK;
        redisReply *reply = NULL;
        int64_t v;
        argv[0] = cmd;
        argv[1] = key;
        for (size_t i = 0; i < k; i++)
            argv[2 + i] = msisdns[first + i];
        /* SADD and SREM may run twice: the set ends the same. */
        if (rconn_command(&reply, rc, (int)k + 2, argv, NULL, true, errstr,
                          errstr_size) != 0)
            return -1;
        int bad = rconn_reply_i64(&v, reply);
        freeReplyObject(reply);
        if (bad != 0 || v < 0) {
            snprintf(errstr, errstr_size, "redis: unexpected %s reply", cmd);
            return -1;
        }
        total += (size_t)v;
    }
    if (count != NULL)
        *count = total;
    return 0;
}

int optout_add(struct rconn *rc, const char *account,
               const char *const *msisdns, size_t n, size_t *added,
               char *errstr, size_t errstr_size)
{
    return optout_each(rc, "SADD", account, msisdns, n, added, errstr,
                       errstr_size);
}

int optout_remove(struct rconn *rc, const char *account,
                  const char *const *msisdns, size_t n, size_t *removed,
                  char *errstr, size_t errstr_size)
{
    return optout_each(rc, "SREM", account, msisdns, n, removed, errstr,
                       errstr_size);
}

int optout_has(struct rconn *rc, const char *account, const char *msisdn,
               bool *out, char *errstr, size_t errstr_size)
{
    size_t n;

    if (optout_each(rc, "SISMEMBER", account, &msisdn, 1, &n, errstr,
                    errstr_size) != 0)
        return -1;
    *out = n == 1;
    return 0;
}

int optout_count(struct rconn *rc, const char *account, size_t *out,
                 char *errstr, size_t errstr_size)
{
    char key[RCONN_KEY_MAX];
    const char *argv[2] = {"SCARD", key};
    redisReply *reply = NULL;
    int64_t v;

    if (rconn_key(key, sizeof(key), rc, account, OPTOUT_KIND, NULL, errstr,
                  errstr_size) != 0)
        return -1;
    if (rconn_command(&reply, rc, 2, argv, NULL, true, errstr, errstr_size) !=
        0)
        return -1;
    int bad = rconn_reply_i64(&v, reply);
    freeReplyObject(reply);
    if (bad != 0 || v < 0) {
        snprintf(errstr, errstr_size, "redis: unexpected SCARD reply");
        return -1;
    }
    *out = (size_t)v;
    return 0;
}
