/* worker/loop.c - the single poll loop that ties Kafka, HTTP and tasks.
 *
 * One thread, one loop (STYLE §4.8): curl_multi_poll() waits on the
 * provider connections and on Kafka's wake-up pipe together, at most 100 ms
 * so that the stop flag and parked tasks are seen in time. Each turn:
 * serve the producer (delivery reports end tasks), consume jobs while there
 * is room, resume parked tasks that are due, drive HTTP. */
#include "worker/worker.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "worker/hooks.h"
#include "worker/log.h"
#include "worker/poll.h"
#include "worker/rbatch.h"
#include "worker/task.h"

/* How long /readyz answers 503 "redis came back empty" after the epoch
 * changed: long enough for every probe and alert to see it. */
#define WORKER_EMPTY_UNREADY_MS 120000
/* How often the epoch is read besides at every connect. */
#define WORKER_EPOCH_CHECK_MS 5000

volatile sig_atomic_t worker_stop;

static void worker_delivered(void *msg_opaque, rd_kafka_resp_err_t err,
                             void *opaque)
{
    struct worker *w = opaque;
    const enum event_owner *owner = msg_opaque;

    if (owner == NULL || w->closing)
        return;
    if (*owner == OWNER_TASK)
        task_event_delivered(msg_opaque, err);
    else if (*owner == OWNER_POLL)
        poll_event_delivered(msg_opaque, err);
    else
        hook_event_delivered(w, msg_opaque, err);
}

/* Reads Redis' persistence once it answers. A Redis that persists nothing
 * loses every schedule, retry, poll entry and send-once marker on a restart:
 * refused (returns -1 with errstr set) unless KURIR_REDIS_DURABILITY=warn.
 * Returns 0 when it persists, when only a warning is due, or when Redis did
 * not answer (checked again when it does). */
static int worker_check_durability(struct worker *w, char *errstr,
                                   size_t errstr_size)
{
    struct rconn_persistence p;
    char err[256];

    if (w->durability_checked)
        return 0;
    if (rconn_persistence(&p, w->redis, err, sizeof(err)) != 0)
        return 0;
    w->durability_checked = true;
    if (p.aof || p.rdb) {
        log_info("redis: persistence aof=%s rdb=%s (from %s)",
                 p.aof ? "yes" : "no",
                 p.rdb_known ? (p.rdb ? "yes" : "no") : "unknown", p.how);
        return 0;
    }
    if (!p.rdb_known) {
        /* A managed Redis refuses CONFIG; its snapshots and replicas are
         * the provider's, and INFO cannot tell them. */
        log_warn("redis: AOF is off and the RDB schedule cannot be read "
                 "(CONFIG refused); make sure this Redis persists "
                 "(docs/redis.md, \"Durability\")");
        return 0;
    }
    if (w->cfg->redis_durability_warn) {
        log_error("redis: persists nothing (appendonly no, save \"\"): a "
                  "restart loses every scheduled send, retry and send-once "
                  "marker; running anyway (KURIR_REDIS_DURABILITY=warn)");
        return 0;
    }
    snprintf(errstr, errstr_size,
             "redis: persists nothing (appendonly no, save \"\"): a restart "
             "would lose scheduled sends, retries and send-once markers; turn "
             "on AOF (appendonly yes) or set KURIR_REDIS_DURABILITY=warn");
    return -1;
}

/* Reports a Redis that came back empty: its epoch changed while this
 * replica held state in it. */
static void worker_note_epoch(struct worker *w)
{
    if (w->epoch.changes == w->epoch_changes)
        return;
    metrics_count(&w->metrics, M_REDIS_EPOCH_CHANGES, NULL,
                  w->epoch.changes - w->epoch_changes);
    w->epoch_changes = w->epoch.changes;
    w->redis_empty_until = worker_now_ms() + WORKER_EMPTY_UNREADY_MS;
    log_error("redis: came back empty (epoch %s, was %s): scheduled sends, "
              "retries, poll entries and send-once markers written before "
              "are lost; jobs redelivered now may be sent again "
              "(docs/redis.md, \"Durability\")",
              w->epoch.value, w->epoch.previous);
}

/* Reads the epoch every WORKER_EPOCH_CHECK_MS on the asynchronous
 * connection (two small commands), and reports a change. */
static void worker_check_epoch(struct worker *w)
{
    int64_t now = worker_now_ms();

    if (now >= w->next_epoch_check_ms) {
        w->next_epoch_check_ms = now + WORKER_EPOCH_CHECK_MS;
        aredis_epoch_check(w->aredis);
    }
    worker_note_epoch(w);
}

int worker_init(struct worker *w, const struct config *cfg, char *errstr,
                size_t errstr_size)
{
    memset(w, 0, sizeof(*w));
    w->cfg = cfg;
    metrics_init(&w->metrics, KURIR_VERSION);
    if (accounts_load(&w->accounts, cfg->accounts_path, cfg->public_url, errstr,
                      errstr_size) != 0 ||
        poll_check_accounts(w->accounts, errstr, errstr_size) != 0)
        goto fail;
    w->http = http_new(cfg, errstr, errstr_size);
    if (w->http == NULL)
        goto fail;
    struct rconn_opts ropts = {
        .url = cfg->redis_url, .prefix = "kurir", .epoch = &w->epoch};
    if (rconn_new(&w->redis, &ropts, errstr, errstr_size) != 0 ||
        ratelimit_new(&w->ratelimit, w->redis, NULL, errstr, errstr_size) !=
            0 ||
        marker_new(&w->marker, w->redis, errstr, errstr_size) != 0 ||
        sched_new(&w->sched, w->redis, errstr, errstr_size) != 0)
        goto fail;
    /* The hot path's connection comes back within a second of Redis. */
    struct rconn_opts aopts = ropts;
    aopts.backoff_max_ms = 1000;
    if (aredis_new(&w->aredis, &aopts, errstr, errstr_size) != 0)
        goto fail;
    /* Marks name their owner: host, process and a start time, so a
     * restarted process with the same pid is another owner. */
    char host[32] = "";
    gethostname(host, sizeof(host) - 1);
    snprintf(w->owner, sizeof(w->owner), "%s.%d.%lld", host, (int)getpid(),
             (long long)worker_wall_ms());
    char rerr[256];
    w->redis_ok = rconn_ping(w->redis, rerr, sizeof(rerr)) == 0;
    if (!w->redis_ok)
        log_error("redis: %s; waiting for it before taking work", rerr);
    if (worker_check_durability(w, errstr, errstr_size) != 0)
        goto fail;
    if (kafka_new(&w->kafka, cfg, worker_delivered, w, errstr, errstr_size) !=
        0)
        goto fail;
    kafka_set_metrics(w->kafka, &w->metrics);
    /* No probe: /readyz answers from what the loop publishes, never by
     * asking Kafka on the listener's thread. */
    if (listener_start(&w->listener, cfg, w->accounts, NULL, NULL, errstr,
                       errstr_size) != 0)
        goto fail;
    return 0;

fail:
    worker_cleanup(w);
    return -1;
}

void worker_cleanup(struct worker *w)
{
    w->closing = true;
    http_free(w->http);
    kafka_free(w->kafka, 0);
    listener_stop(w->listener);
    /* Redis callbacks see `closing` and leave their owners alone; the
     * owners are freed after. */
    rbatch_fail_all(w);
    aredis_free(w->aredis);
    task_free_all(w);
    poll_free_all(w);
    sched_free(w->sched);
    marker_free(w->marker);
    ratelimit_free(w->ratelimit);
    rconn_free(w->redis);
    accounts_free(w->accounts);
    metrics_free(&w->metrics);
    memset(w, 0, sizeof(*w));
}

/* Resumes parked tasks (and callbacks' status updates) whose time has
 * come: those due when the turn began (one parked again meanwhile waits
 * for the next turn). */
static void worker_resume_due(struct worker *w)
{
    int64_t now = worker_now_ms();
    void *due[256];
    size_t budget = park_count(&w->parking);

    while (budget > 0) {
        size_t n =
            park_take_due(&w->parking, now, due, budget < 256 ? budget : 256);
        if (n == 0)
            break;
        budget -= n;
        for (size_t i = 0; i < n; i++) {
            if (*(const enum event_owner *)due[i] == OWNER_TASK)
                task_resume(due[i]);
            else
                hook_record_resume(w, due[i]);
        }
    }
}

/* How long the loop may sleep: until the next parked task, at most 100 ms. */
static int worker_wait_ms(const struct worker *w)
{
    int64_t wake = park_next_wake(&w->parking);
    if (wake == INT64_MAX)
        return 100;
    int64_t ms = wake - worker_now_ms();
    return ms < 0 ? 0 : ms > 100 ? 100 : (int)ms;
}

/* Claims scheduled sends and retries that are due, account by account,
 * while there is room; every 100 ms, each time what falls due within
 * WORKER_CLAIM_AHEAD_MS, so a send leaves at its time (its task waits the
 * rest on the loop's timers), not up to 100 ms after it. */
static void worker_claim_due(struct worker *w)
{
    int64_t now = worker_now_ms();
    char errstr[256];

    if (now < w->next_claim_ms)
        return;
    w->next_claim_ms = now + 100;
    for (size_t i = 0; i < w->accounts->count; i++) {
        size_t room = (size_t)w->cfg->max_in_flight - w->tasks;
        if (w->tasks >= (size_t)w->cfg->max_in_flight)
            return;
        const char *account = w->accounts->items[i].name;
        struct sched_entries due = {0};
        if (sched_claim(&due, w->sched, account, room, w->cfg->claim_lease_ms,
                        WORKER_CLAIM_AHEAD_MS, errstr, sizeof(errstr)) != 0) {
            metrics_count(&w->metrics, M_REDIS_ERRORS, NULL, 1);
            if (w->redis_ok)
                log_error("redis: claim: %s; not taking new work until it "
                          "is back",
                          errstr);
            w->redis_ok = false;
            return;
        }
        for (size_t j = 0; j < due.n; j++)
            task_start_entry(w, account, &due.v[j]);
        sched_entries_cleanup(&due);
    }
}

/* A claimed scheduled send or retry is this replica's for
 * KURIR_CLAIM_LEASE_MS (300 s); if the replica dies, another claims it
 * after the lease. Every lease/3, extends the leases of the claimed entries
 * still being worked on, so a long unit is never claimed again by another
 * replica. */
static void worker_extend_leases(struct worker *w)
{
    int64_t now = worker_now_ms();

    if (now < w->next_extend_ms)
        return;
    w->next_extend_ms = now + w->cfg->claim_lease_ms / 3;
    task_extend_leases(w, w->cfg->claim_lease_ms);
}

/* While Redis is away no new work is taken (fail closed); this checks
 * whether it is back. rconn spaces its reconnects, so this is cheap. */
static void worker_check_redis(struct worker *w)
{
    char errstr[256];

    if (w->redis_ok)
        return;
    if (rconn_ping(w->redis, errstr, sizeof(errstr)) == 0) {
        log_info("redis: reachable again; taking work");
        w->redis_ok = true;
        /* Not read yet when Redis was away at start-up. */
        if (worker_check_durability(w, errstr, sizeof(errstr)) != 0) {
            log_error("%s", errstr);
            w->fatal = true;
        }
    }
}

void worker_alive_key(char *buf, size_t buf_size, const struct worker *w,
                      const char *owner)
{
    snprintf(buf, buf_size, "%s:alive:%s", aredis_prefix(w->aredis), owner);
}

static void worker_alive_set(const redisReply *reply, const char *err,
                             void *privdata)
{
    (void)reply;
    (void)err; /* Redis away is said by the other calls */
    (void)privdata;
}

/* Counts one parked item by its cause (park_each). */
static void worker_count_parked(void *item, void *arg)
{
    size_t *parked = arg;

    if (*(const enum event_owner *)item == OWNER_TASK)
        parked[task_parked_for(item)]++;
    else
        parked[TASK_WAIT_N]++; /* a callback's update (worker/hooks.h) */
}

/* Once a second: refreshes this replica's alive key (worker.h), and
 * publishes health and metrics for the listener. */
static void worker_publish(struct worker *w)
{
    int64_t now = worker_now_ms();
    struct metrics *m = &w->metrics;

    if (now < w->next_publish_ms)
        return;
    w->next_publish_ms = now + 1000;
    char alive[256], px[24];
    worker_alive_key(alive, sizeof(alive), w, w->owner);
    rconn_i64(px, sizeof(px), WORKER_ALIVE_TTL_MS);
    const char *set[] = {"SET", alive, "1", "PX", px};
    aredis_command(w->aredis, 5, set, NULL, worker_alive_set, NULL);
    metrics_set(m, M_REDIS_UP, NULL, w->redis_ok && aredis_is_up(w->aredis));
    metrics_set(m, M_REDIS_ROUND_TRIPS, NULL,
                (double)aredis_round_trips(w->aredis));
    metrics_set(m, M_REDIS_CALLS, NULL, (double)aredis_commands(w->aredis));
    metrics_set(m, M_UNITS_IN_FLIGHT, NULL, (double)w->tasks);
    metrics_set(m, M_PROVIDER_IN_FLIGHT, NULL, (double)http_in_flight(w->http));
    size_t parked[TASK_WAIT_N + 1] = {0}; /* by cause; callbacks last */
    park_each(&w->parking, worker_count_parked, parked);
    for (int c = 0; c < TASK_WAIT_N; c++)
        metrics_set(m, M_UNITS_PARKED, ML(task_wait_names[c]),
                    (double)parked[c]);
    metrics_set(m, M_UNITS_PARKED, ML("callback"), (double)parked[TASK_WAIT_N]);
    size_t tok = 0, slot = 0;
    for (const struct task *t = w->tok_head; t != NULL; t = task_next_parked(t))
        tok++;
    for (const struct task *t = w->slot_head; t != NULL;
         t = task_next_parked(t))
        slot++;
    metrics_set(m, M_UNITS_PARKED, ML("tokens"), (double)tok);
    metrics_set(m, M_UNITS_PARKED, ML("connection"), (double)slot);
    kafka_read_metrics(w->kafka, m);
    size_t expired = listener_expire(w->listener);
    if (expired > 0)
        metrics_count(m, M_WEBHOOK_EXPIRED, NULL, expired);
    metrics_set(m, M_WEBHOOK_SUSPENDED, NULL,
                (double)listener_suspended(w->listener));
    struct listener_state st = {
        .redis_ok = w->redis_ok,
        .kafka_known = true,
        .kafka_ok = kafka_ready_state(w->kafka, now),
        .redis_note = now < w->redis_empty_until ? "came back empty" : NULL,
        .metrics = metrics_render(m)};
    listener_publish_state(w->listener, &st);
}

/* Pauses the consumer's partitions when no more work can be taken (Redis
 * away, or every KURIR_MAX_IN_FLIGHT place taken for WORKER_PAUSE_AFTER_MS,
 * 5 s, well inside max.poll.interval.ms)
 * and resumes them once more than a quarter of the places is free again
 * (hysteresis: a resume refetches what the pause dropped from the
 * prefetch). The consumer keeps being polled while paused, so the replica
 * never leaves its group because its units are parked. A drain at full
 * speed fills the places every turn and frees some the next: pausing
 * there dropped and refetched the prefetch over and over (a 100,000-job
 * drain fell from 6,800 to 1,000 msg/s), so only places that stay taken
 * pause. */
#define WORKER_PAUSE_AFTER_MS 5000

static void worker_gate_consumer(struct worker *w, bool consume)
{
    size_t max = (size_t)w->cfg->max_in_flight;
    int64_t now = worker_now_ms();

    if (!consume)
        return;
    if (w->tasks < max)
        w->full_since_ms = 0;
    else if (w->full_since_ms == 0)
        w->full_since_ms = now;
    if (!kafka_is_paused(w->kafka)) {
        if (!w->redis_ok)
            kafka_pause_all(w->kafka, "redis away");
        else if (w->full_since_ms != 0 &&
                 now - w->full_since_ms >= WORKER_PAUSE_AFTER_MS)
            kafka_pause_all(w->kafka, "KURIR_MAX_IN_FLIGHT units in progress");
    } else if (w->redis_ok && w->tasks + max / 4 < max) {
        kafka_resume_all(w->kafka);
    }
    metrics_set(&w->metrics, M_KAFKA_PAUSED, NULL,
                kafka_is_paused(w->kafka) ? 1 : 0);
}

static void worker_turn(struct worker *w, bool consume)
{
    listener_heartbeat(w->listener);
    accounts_refresh(w->accounts, worker_now_ms());
    kafka_serve(w->kafka);
    aredis_tick(w->aredis);
    worker_check_redis(w);
    worker_check_epoch(w);
    if (consume && w->redis_ok) {
        worker_claim_due(w);
        worker_extend_leases(w);
        poll_serve(w);
    }
    worker_gate_consumer(w, consume);
    /* Paused, the consumer is still polled (rebalances, the group's
     * liveness); a message fetched before the pause is still taken. */
    while (consume && (w->tasks < (size_t)w->cfg->max_in_flight ||
                       kafka_is_paused(w->kafka))) {
        rd_kafka_message_t *rkm = kafka_consume(w->kafka);
        if (rkm == NULL)
            break;
        task_start(w, rkm);
    }
    hooks_serve(w);
    worker_resume_due(w);
    http_perform(w->http);
    /* Everything the turn asked of Redis leaves now, in one write. */
    rbatch_flush(w);
    aredis_flush(w->aredis);
    /* Sampled once the turn has settled: a retry that failed at once (Redis
     * away) is parked again by now. Sampled earlier, a unit retrying every
     * 500 ms could be caught between its timer and its retry at every
     * sample (both periods land on the same turns), and the gauges said
     * nothing was parked for Redis while one was. The alive key's SET
     * leaves as the loop waits (the socket is writable at once). */
    worker_publish(w);
    struct http_waitfd fds[3] = {
        {.fd = kafka_wake_fd(w->kafka), .events = POLLIN},
        {.fd = listener_wake_fd(w->listener), .events = POLLIN},
    };
    unsigned nfds = 2;
    if (aredis_waitfd(w->aredis, &fds[2].fd, &fds[2].events))
        nfds = 3;
    int64_t wait_us = worker_now_us();
    http_wait(w->http, fds, nfds, worker_wait_ms(w));
    metrics_count(&w->metrics, M_LOOP_IDLE, NULL,
                  (double)(worker_now_us() - wait_us) / 1e6);
    if (nfds == 3 && fds[2].revents != 0)
        aredis_io(w->aredis, fds[2].revents);
    http_perform(w->http);
}

int worker_run(struct worker *w)
{
    log_info("worker: running group=%s brokers=%s", w->cfg->kafka_group,
             w->cfg->kafka_brokers);
    while (!worker_stop && !w->fatal && !kafka_is_fatal(w->kafka))
        worker_turn(w, true);

    /* Graceful stop: no new jobs; in-flight requests finish until the
     * grace deadline; parked tasks (retries, rate-limit waits) are left to
     * the next owner, their offsets unstored. */
    log_info("worker: stopping tasks=%zu in_flight=%zu", w->tasks,
             http_in_flight(w->http));
    task_abandon_parked(w);
    int64_t deadline = worker_now_ms() + w->cfg->shutdown_grace_ms;
    while (http_in_flight(w->http) > 0 && worker_now_ms() < deadline &&
           !kafka_is_fatal(w->kafka))
        worker_turn(w, false);
    task_abandon_parked(w);
    /* Wait for the events of finished tasks so their offsets are stored
     * before the consumer commits on close. */
    while (w->tasks + w->finishing > 0 && worker_now_ms() < deadline &&
           !kafka_is_fatal(w->kafka))
        worker_turn(w, false);
    kafka_close_consumer(w->kafka);
    log_info("worker: stopped jobs=%llu requests=%llu submitted=%llu "
             "failed=%llu dlq=%llu events=%llu left=%zu",
             (unsigned long long)w->stats.jobs,
             (unsigned long long)w->stats.requests,
             (unsigned long long)w->stats.submitted,
             (unsigned long long)w->stats.failed,
             (unsigned long long)w->stats.dlq,
             (unsigned long long)w->stats.events, w->tasks + w->finishing);
    return kafka_is_fatal(w->kafka) || w->fatal ? 1 : 0;
}
