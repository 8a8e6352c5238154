/* ratelimit/aredis.h - one asynchronous Redis connection for the loop.
 *
 * The hot path never waits on Redis: a call is queued with a callback
 * (hiredis' `{fn, privdata}` shape) and returns at once. Every call queued
 * during one loop turn leaves in one write when the loop calls
 * aredis_flush(), so a turn costs one round trip however many calls it
 * made (pipelining); replies come back in order through aredis_io().
 *
 * The loop owns the socket: aredis_waitfd() says which descriptor and
 * events to wait for beside the others, aredis_io() reads and writes when
 * they are ready, aredis_tick() enforces the command timeout and
 * reconnects with a backoff (100 ms doubling to 5 s). A command that waits
 * longer than command_timeout_ms breaks the connection: every queued
 * callback is then called once with reply NULL and an error, so callers
 * learn that the outcome of their call is unknown (it may or may not have
 * run) and retry what is safe to retry.
 *
 * Scripts are the same struct rconn_script values the blocking rconn uses:
 * EVALSHA once the SHA1 is known, EVAL with the source until then, and a
 * NOSCRIPT answer reloads the script and fails that call.
 *
 * Not thread-safe: the loop thread only. */
#ifndef RATELIMIT_AREDIS_H
#define RATELIMIT_AREDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "ratelimit/rconn.h"

struct aredis;

/* The end of one call: `reply` (borrowed for the call) and err NULL on a
 * reply that is not an error; reply NULL and err set otherwise (an error
 * reply, a lost connection, a timeout). Called exactly once, from
 * aredis_io(), aredis_tick() or aredis_free(). */
typedef void aredis_fn(const redisReply *reply, const char *err,
                       void *privdata);

/* Creates the connection from `opts` (as rconn_new takes them) and starts
 * connecting. Returns 0 and sets *out, or -1 with errstr set when the URL is
 * invalid. */
int aredis_new(struct aredis **out, const struct rconn_opts *opts, char *errstr,
               size_t errstr_size);

/* Queues a read of the epoch (rconn_opts.epoch; SET NX, GET) for the next
 * flush: the cheap periodic check. Does nothing without an epoch or while
 * disconnected (the next connect reads it anyway). */
void aredis_epoch_check(struct aredis *ar);

/* Fails every queued call (err "redis: shutting down") and frees the
 * connection. aredis_free(NULL) does nothing. */
void aredis_free(struct aredis *ar);

/* Queues one command. Returns 0; fn is then called exactly once. */
int aredis_command(struct aredis *ar, int argc, const char **argv,
                   const size_t *argvlen, aredis_fn *fn, void *privdata);

/* Queues a script with `nkeys` keys followed by the other arguments
 * (argvlen may be NULL for NUL-terminated strings). Returns 0; fn is then
 * called exactly once. */
int aredis_eval(struct aredis *ar, struct rconn_script *script, int nkeys,
                int argc, const char **argv, const size_t *argvlen,
                aredis_fn *fn, void *privdata);

/* Writes what the turn queued (one write for all of it). */
void aredis_flush(struct aredis *ar);

/* The descriptor to wait on and its events (POLLIN, POLLOUT bits); returns
 * false when there is none (connecting later). */
bool aredis_waitfd(const struct aredis *ar, int *fd, short *events);

/* Serves the socket after a wait: `revents` as poll(2) set them. */
void aredis_io(struct aredis *ar, short revents);

/* Enforces the command timeout and reconnects when due. Call every turn. */
void aredis_tick(struct aredis *ar);

/* True while connected and no call has failed since the last reply. */
bool aredis_is_up(const struct aredis *ar);

/* Calls queued and not yet answered. */
size_t aredis_pending(const struct aredis *ar);

/* Round trips (writes that carried at least one command) and commands
 * sent since creation: their ratio is the pipelining depth. */
uint64_t aredis_round_trips(const struct aredis *ar);
uint64_t aredis_commands(const struct aredis *ar);

/* The key prefix (borrowed). */
const char *aredis_prefix(const struct aredis *ar);

#endif /* RATELIMIT_AREDIS_H */
