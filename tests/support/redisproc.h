/* tests/support/redisproc.h - redis-server, redis-sentinel and their state,
 * for tests that run their own (ACL, TLS, Sentinel failover). */
#ifndef TESTS_SUPPORT_REDISPROC_H
#define TESTS_SUPPORT_REDISPROC_H

#include <stdbool.h>
#include <stddef.h>

#include <hiredis/hiredis.h>

#include "tests/support/support.h"

#define REDIS_SERVER   "/usr/bin/redis-server"
#define REDIS_SENTINEL "/usr/bin/redis-sentinel"

/* Skips the test when `path` is not executable (fails it under
 * KURIR_TEST_REQUIRE=1). */
void redisproc_need(const char *path);

/* Makes a fresh scratch directory /tmp/kurir-<name>-<pid> into buf. */
void redisproc_dir(char *buf, size_t size, const char *name);

/* Removes a scratch directory. */
void redisproc_rmdir(const char *dir);

/* Starts redis-server on loopback, its files in `dir`, with `extra`
 * arguments (NULL-ended; include "--port", N). Fails the test if it does
 * not start. */
void redisproc_start(struct proc *p, const char *dir, char *const extra[]);

/* Starts redis-sentinel on `port` (files in dir) monitoring "mymaster" at
 * 127.0.0.1:primary_port with quorum 1, down after 2 s (with 1 s the test lost
 * its writes once on a loaded machine, most likely a spurious failover). */
void redisproc_sentinel(struct proc *p, const char *dir, int port,
                        int primary_port);

/* True when 127.0.0.1:port answers at all (NOAUTH counts). */
bool redisproc_answers(int port);

/* Runs one command over a fresh plain connection; the reply (free it) or
 * NULL. */
redisReply *redisproc_cmd(int port, const char *cmd);

/* True when the replica at `port` is linked to its primary. */
bool redisproc_replica_linked(int port);

/* True when the server at `port` has ROLE `role` ("master", "slave"). */
bool redisproc_role_is(int port, const char *role);

/* True when the Sentinel has good, fresh INFO from exactly one replica of
 * mymaster (it can promote it). */
bool redisproc_sentinel_ready(int sentinel_port);

/* The port the Sentinel gives for mymaster, or 0. */
int redisproc_master_port(int sentinel_port);

#endif /* TESTS_SUPPORT_REDISPROC_H */
