/* tests/ratelimit/rltest.h - what the ratelimit tests share: a connection
 * to the test Redis under a key prefix of their own, and clean-up.
 *
 * Each test uses a prefix "kt:<name>:<pid>" so tests can share one Redis;
 * rltest_cleanup() deletes every key under it. */
#ifndef TESTS_RATELIMIT_RLTEST_H
#define TESTS_RATELIMIT_RLTEST_H

#include <stddef.h>
#include <stdint.h>

#include "ratelimit/rconn.h"

/* Writes the test's key prefix "kt:<name>:<pid>" into buf. */
void rltest_prefix(char *buf, size_t buf_size, const char *name);

/* Connects to the test Redis (support_redis(), which skips the test when
 * there is none) under `prefix`; fails the test on error. */
struct rconn *rltest_connect(const char *prefix);

/* Runs a command given as NUL-terminated strings and returns its integer
 * reply (or -1 for nil / non-integer); fails the test on error. */
int64_t rltest_int(struct rconn *rc, int argc, const char **argv);

/* Deletes every key under the connection's prefix. */
void rltest_cleanup(struct rconn *rc);

/* Wall-clock Unix milliseconds (what scheduled times are in). */
int64_t rltest_wall_ms(void);

#endif /* TESTS_RATELIMIT_RLTEST_H */
