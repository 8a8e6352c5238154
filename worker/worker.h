/* worker/worker.h - one worker process: what the loop and the tasks share.
 *
 * A worker owns the config, the accounts, the Kafka clients and the HTTP
 * client, and the tasks in progress. Everything runs on one thread (the
 * loop); the webhook listener hands its work over through the same loop. */
#ifndef WORKER_WORKER_H
#define WORKER_WORKER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "worker/accounts.h"
#include "worker/clock.h"
#include "worker/config.h"
#include "worker/http.h"
#include "worker/kafka.h"
#include "worker/listener.h"
#include "worker/metrics.h"
#include "worker/park.h"
#include "ratelimit/aredis.h"
#include "ratelimit/marker.h"
#include "ratelimit/ratelimit.h"
#include "ratelimit/rconn.h"
#include "ratelimit/sched.h"

struct task;
struct pollreq;

/* Emptied call lists kept for reuse. */
#define WORKER_CALLS_KEEP 128

/* How far ahead of their time scheduled entries are claimed (loop.c claims
 * every 100 ms); a unit taken early waits the rest parked (task.c). */
#define WORKER_CLAIM_AHEAD_MS 200
struct rbatch_req;

/* Counters for /metrics and the shutdown summary. */
struct worker_stats {
    uint64_t jobs;      /* messages consumed */
    uint64_t dlq;       /* sent to the DLQ */
    uint64_t requests;  /* provider requests made */
    uint64_t events;    /* events produced */
    uint64_t submitted; /* recipients a provider accepted */
    uint64_t failed;    /* recipients failed or rejected */
    uint64_t callbacks; /* provider callbacks read */
};

struct worker {
    const struct config *cfg;
    struct accounts *accounts;  /* owned */
    struct kafka *kafka;        /* owned */
    struct http *http;          /* owned */
    struct listener *listener;  /* owned: callbacks, health, metrics */
    int64_t next_publish_ms;    /* when to publish metrics again */
    struct rconn *redis;        /* owned: blocking Redis, for rare work */
    struct aredis *aredis;      /* owned: asynchronous Redis, hot path */
    char owner[64];             /* this replica's name on its marks */
    uint64_t task_seq;          /* tasks started, naming their marks */
    struct rbatch_req *rb_head; /* Redis work queued this turn */
    struct rbatch_req *rb_tail;
    struct ratelimit *ratelimit; /* owned: token buckets */
    struct marker *marker;       /* owned: send-once markers, states */
    struct sched *sched;         /* owned: scheduled sends, retries */
    bool redis_ok;               /* the last Redis call worked */
    struct rconn_epoch epoch;    /* Redis' epoch, read by both connections */
    uint64_t epoch_changes;      /* epoch.changes already reported */
    int64_t redis_empty_until;   /* /readyz says "came back empty" until */
    int64_t next_epoch_check_ms; /* when to read the epoch again */
    bool durability_checked;     /* Redis' persistence was read */
    bool fatal;                  /* stop: a check refused to go on */
    int64_t next_claim_ms;       /* when to look for due entries again */
    int64_t next_extend_ms;      /* when to extend the claims' leases */
    struct pollreq *polls;       /* poll requests in flight */
    size_t polls_in_flight;
    int64_t next_poll_ms;   /* when to look for due polls again */
    int64_t next_sweep_ms;  /* when to look for due give-ups again */
    size_t tasks;           /* tasks at work: KURIR_MAX_IN_FLIGHT bounds it */
    size_t finishing;       /* tasks ended, waiting only for Kafka's acks */
    int64_t full_since_ms;  /* every place taken since then; 0: not full */
    struct task *all;       /* every live task */
    struct parking parking; /* tasks waiting for a time (worker/park.h) */
    struct task *slot_head; /* tasks waiting for a connection place */
    struct task *slot_tail;
    struct task *tok_head; /* tasks waiting for a rate-limit ask */
    struct codec_calls *calls_free[WORKER_CALLS_KEEP]; /* emptied lists */
    size_t ncalls_free;
    size_t calls_active; /* tasks marked and calling */
    bool closing;        /* clients going away: ignore callbacks */
    struct worker_stats stats;
    struct metrics metrics; /* /metrics (worker/metrics.h) */
};

/* Set by the signal handler; the loop stops consuming when it is non-zero. */
extern volatile sig_atomic_t worker_stop;

/* Creates the worker's clients from cfg. Returns 0, or -1 with errstr set
 * (the worker is then cleaned up already). */
int worker_init(struct worker *w, const struct config *cfg, char *errstr,
                size_t errstr_size);

/* Runs until worker_stop is set, then shuts down gracefully: stops
 * consuming, finishes in-flight work until the grace deadline, flushes
 * events and commits offsets. Returns 0, or 1 on a fatal Kafka error. */
int worker_run(struct worker *w);

/* Each replica says it is alive once a second: key
 * "<prefix>:alive:<owner>" (its marks' name), expiring after
 * WORKER_ALIVE_TTL_MS. A redelivered job asks it of the replica that
 * recorded its states before saying them again (worker/task.c). */
#define WORKER_ALIVE_TTL_MS 5000

/* Formats the alive key of replica `owner` into buf. */
void worker_alive_key(char *buf, size_t buf_size, const struct worker *w,
                      const char *owner);

/* Frees what worker_init() created. */
void worker_cleanup(struct worker *w);

#endif /* WORKER_WORKER_H */
