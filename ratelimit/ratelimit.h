/* ratelimit/ratelimit.h - token buckets in SMS segments, shared by every
 * replica through Redis.
 *
 * One bucket per provider account (`rate_limit` in the accounts file) and,
 * optionally, one per sender id within it; a take charges both at once. The
 * decision is one Lua script on Redis's own clock (TIME), so replicas never
 * trust their own clocks and the fleet as a whole admits at most
 * burst + rate x elapsed segments.
 *
 * Round trips are the cost, so a take may lease more tokens than it needs:
 * the surplus stays in this process and serves the next takes without a
 * round trip. The lease size adapts to demand (it doubles while leases run
 * out, halves when one expires unused) and is capped by a quarter of the
 * burst and by rate x lease_ms. Leased tokens left unused lease_ms after
 * they became usable are dropped, never returned: a token leaves the bucket
 * once and is used at most once, so the fleet bound holds; the only slack is
 * that a leased token may be spent up to lease_ms after Redis granted it.
 *
 * When the bucket is empty a take does not merely fail: it reserves tokens
 * ahead (the bucket goes into debt, GCRA-style) and answers how long until
 * they are paid for; after that wait the next take spends them without a
 * round trip. Reservations queue the replicas fairly, so a saturated fleet
 * costs about one round trip per lease, not one per refusal. A refusal
 * (only when the queue is over max_wait_ms deep) is remembered locally
 * until its wait has passed, so parked work does not poll Redis.
 *
 * A provider's own throttling answer (429, Retry-After, documented codes)
 * goes to ratelimit_penalize(): every replica is refused for that account
 * until the penalty ends.
 *
 * Not thread-safe: one struct ratelimit per struct rconn. */
#ifndef RATELIMIT_RATELIMIT_H
#define RATELIMIT_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "ratelimit/rconn.h"

/* Tuning; zero fields take the defaults. */
struct ratelimit_opts {
    int lease_ms;    /* how long leased tokens stay usable; default 100 */
    int max_lease;   /* tokens per round trip at most; default 1000; 1
                        turns leasing off (a round trip per take) */
    int max_wait_ms; /* reserve at most this far ahead; default 1000 */
};

/* What one take charges: the account's bucket and, when `sender` is not
 * NULL and sender_per_second > 0, that sender's bucket within the account. */
struct ratelimit_bucket {
    const char *account;      /* accounts-file name; no braces */
    double per_second;        /* segments per second (rate_limit) */
    double burst;             /* bucket size in segments, >= 1 */
    const char *sender;       /* NULL: the account bucket only */
    double sender_per_second; /* the sender bucket's rate */
    double sender_burst;      /* the sender bucket's size */
};

struct ratelimit;

/* Creates a rate limiter over `rc`, which is borrowed and must outlive it.
 * Returns 0 and sets *out (free with ratelimit_free); never fails today but
 * keeps the convention. */
int ratelimit_new(struct ratelimit **out, struct rconn *rc,
                  const struct ratelimit_opts *opts, char *errstr,
                  size_t errstr_size);

/* Frees the limiter and drops its leased tokens. ratelimit_free(NULL) does
 * nothing. */
void ratelimit_free(struct ratelimit *rl);

/* Tries to take `segments` tokens (>= 1) from the bucket(s) of `b`. Returns
 * 0 and sets *wait_ms to 0 when the send may go now, or to the number of
 * milliseconds (> 0) after which a new take will succeed or may succeed
 * (park the work, don't spin; tokens may be reserved for it meanwhile). Returns
 * -1 with errstr set when Redis is unreachable or failed, or when `segments`
 * exceeds a burst (such a message can never be admitted; a configuration
 * problem). Nothing is taken on -1. */
int ratelimit_take(struct ratelimit *rl, int64_t *wait_ms,
                   const struct ratelimit_bucket *b, unsigned segments,
                   char *errstr, size_t errstr_size);

/* ------------------------------------------------------------------------ */
/* The same take for a caller that queues Redis calls itself (the worker's
 * asynchronous connection): ratelimit_take_begin() decides locally; on
 * RL_ASK the caller sends ratelimit_take_script() with the arguments of
 * ratelimit_ask_build(), hands the reply (or NULL when none came) to
 * ratelimit_ask_done(), and takes again. One ask per lease is out at a
 * time: meanwhile takes of that lease answer RL_ASKING. */

enum ratelimit_step {
    RL_GO,     /* taken: send now */
    RL_WAIT,   /* wait *wait_ms, then take again */
    RL_ASK,    /* ask Redis (see above), then take again */
    RL_ASKING, /* an ask of this lease is out: take again after its reply */
};

/* One ask in flight. */
struct ratelimit_ask {
    size_t lease;     /* private: which lease */
    int64_t want;     /* private */
    int64_t need;     /* private */
    bool with_sender; /* the key count is 3 when true, else 2 */
    int64_t asked_ms; /* private */
};

struct rargv;

/* The local half of ratelimit_take(). Returns 0 with *step set (and *ask
 * on RL_ASK), or -1 with errstr set as ratelimit_take() does. */
int ratelimit_take_begin(struct ratelimit *rl, enum ratelimit_step *step,
                         int64_t *wait_ms, struct ratelimit_ask *ask,
                         const struct ratelimit_bucket *b, unsigned segments,
                         char *errstr, size_t errstr_size);

/* Appends an ask's keys and arguments. Returns 0, or -1 with errstr set. */
int ratelimit_ask_build(struct rargv *out, const char *prefix,
                        const struct ratelimit *rl,
                        const struct ratelimit_bucket *b,
                        const struct ratelimit_ask *ask, char *errstr,
                        size_t errstr_size);

/* The take script. */
struct rconn_script *ratelimit_take_script(void);

/* Applies an ask's reply (NULL: none came; nothing granted). Returns 0,
 * or -1 with errstr set. */
int ratelimit_ask_done(struct ratelimit *rl, const struct ratelimit_ask *ask,
                       const struct ratelimit_bucket *b,
                       const redisReply *reply, char *errstr,
                       size_t errstr_size);

/* Slows `account` down across the fleet: every take for it is refused for
 * `for_ms` milliseconds from now (Redis time). A longer penalty already in
 * place is kept. Also drops this process's leased tokens for the account.
 * Returns 0, or -1 with errstr set. */
int ratelimit_penalize(struct ratelimit *rl, const char *account,
                       int64_t for_ms, char *errstr, size_t errstr_size);

#endif /* RATELIMIT_RATELIMIT_H */
