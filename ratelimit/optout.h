/* ratelimit/optout.h - the per-account opt-out set: numbers that asked not
 * to get messages (a stop-word reply, a block-list job, a block-list
 * import).
 *
 * Key: P:{A}:optout, a set of MSISDNs (digits), in the account's hash slot,
 * permanent (an opt-out lasts until a blocklist-remove job takes it back).
 * The hot path never calls these: the send-once begin script
 * (ratelimit/marker.c) checks the set in the same script call that marks a
 * unit's recipients. These blocking calls are for the rare writers (reply
 * handling, block-list jobs) and for tests and tools. */
#ifndef RATELIMIT_OPTOUT_H
#define RATELIMIT_OPTOUT_H

#include <stdbool.h>
#include <stddef.h>

#include "ratelimit/rconn.h"

/* The key kind under an account: P:{A}:optout. */
#define OPTOUT_KIND "optout"

/* Adds n numbers to account's opt-out set (already there: no change).
 * Returns 0 and sets *added (may be NULL) to how many were new, or -1 with
 * errstr set. Safe to repeat. */
int optout_add(struct rconn *rc, const char *account,
               const char *const *msisdns, size_t n, size_t *added,
               char *errstr, size_t errstr_size);

/* Removes n numbers from account's opt-out set. Returns 0 and sets
 * *removed (may be NULL), or -1 with errstr set. Safe to repeat. */
int optout_remove(struct rconn *rc, const char *account,
                  const char *const *msisdns, size_t n, size_t *removed,
                  char *errstr, size_t errstr_size);

/* Sets *out to whether msisdn is on account's opt-out set. Returns 0, or
 * -1 with errstr set. */
int optout_has(struct rconn *rc, const char *account, const char *msisdn,
               bool *out, char *errstr, size_t errstr_size);

/* Sets *out to how many numbers account's opt-out set holds. Returns 0, or
 * -1 with errstr set. */
int optout_count(struct rconn *rc, const char *account, size_t *out,
                 char *errstr, size_t errstr_size);

#endif /* RATELIMIT_OPTOUT_H */
