/* tests/worker/stack.h - a kurir worker process with topics of its own,
 * the provider stand-in, and the accounts both read, for end-to-end tests
 * against the real Kafka and a Redis.
 *
 * Accounts: Jojka "shop" (the stand-in knows its key), Jojka "stale" (the
 * stand-in refuses its key), InTime "hooks-intime" (status callbacks) and
 * iP.1 "hooks-ip1" (delivery reports, incoming SMS). */
#ifndef TESTS_WORKER_STACK_H
#define TESTS_WORKER_STACK_H

#include <stdbool.h>

#include "tests/support/support.h"

struct stack {
    char uniq[64];
    char topic_send[96], topic_campaign[96], topic_contacts[96];
    char topic_status[96], topic_replies[96], topic_dlq[96];
    char topic_parts[96], topic_latest[112], topic_results[96];
    char standin_accounts[128];
    char kurir_accounts[128];
    int standin_port;
    int kurir_port;
    struct proc standin;
    struct proc kurir;
    const char *brokers;
    char redis[256];            /* host:port, or a whole URL (sentinel://...) */
    const char *extra_accounts; /* from stack_opts */
};

/* What stack_start_opts() may change (zero: stack_start's defaults). */
struct stack_opts {
    const char *extra_accounts;   /* more accounts, each ending in ",\n";
                                     "@PORT@" is the stand-in's port */
    const char *const *kurir_env; /* the first worker's extra environment */
    bool no_kurir;                /* start no worker (the test does) */
};

/* Starts the stand-in and a kurir worker using Redis at `redis`
 * (host:port, or a whole KURIR_REDIS_URL such as sentinel://...), with topics
 * named after a fresh unique prefix. Fails the test when either does not start.
 */
void stack_start(struct stack *s, const char *redis);
/* The same with `o` (NULL: as stack_start). */
void stack_start_opts(struct stack *s, const char *redis,
                      const struct stack_opts *o);

/* stack_start with more accounts for both files (NULL: none; JSON members
 * "name": {...}, each followed by a comma, @PORT@ standing for the
 * stand-in's port) and more "NAME=value" for the first worker (NULL: none;
 * NULL-ended). */
void stack_start_with(struct stack *s, const char *redis,
                      const char *extra_accounts, const char *const *extra_env);

/* Starts another kurir replica `p` of the same group and topics, listening
 * on `port`, with `extra` (NULL or a NULL-ended list of "NAME=value")
 * added to its environment. */
void stack_spawn_worker(const struct stack *s, struct proc *p, int port,
                        const char *const *extra);

/* stack_spawn_worker() without waiting for it to listen: for a worker
 * expected to refuse to start (see support_proc_log_has, support_stop). */
void stack_spawn_worker_nowait(const struct stack *s, struct proc *p, int port,
                               const char *const *extra);

/* Stops both (kurir with SIGKILL if it still runs) and removes the files. */
void stack_stop(struct stack *s);

/* Produces a job to `topic` and waits until Kafka has it. */
void stack_produce(const struct stack *s, const char *topic, const char *key,
                   const char *json);

/* Sets the stand-in's faults (docs/standins.md, "Faults") to `json`. */
void stack_standin_faults(const struct stack *s, const char *json);

/* Counts the stand-in's recorded requests whose text contains `needle`. */
int stack_standin_count(const struct stack *s, const char *needle);

#endif /* TESTS_WORKER_STACK_H */
