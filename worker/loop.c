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

/* A claimed scheduled send or retry is this replica's for this long; if the
 * replica dies, another claims it after the lease. Longer than any task
 * takes: a provider timeout plus rate-limit waits. */
#define WORKER_LEASE_MS 300000

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

/* Called from the listener's thread: librdkafka's metadata call is
 * thread-safe. */
static bool worker_kafka_ready(void *opaque)
{
    return kafka_is_ready(opaque);
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
    struct rconn_opts ropts = {.url = cfg->redis_url, .prefix = "kurir"};
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
    if (kafka_new(&w->kafka, cfg, worker_delivered, w, errstr, errstr_size) !=
        0)
        goto fail;
    kafka_set_metrics(w->kafka, &w->metrics);
    if (listener_start(&w->listener, cfg, w->accounts, worker_kafka_ready,
                       w->kafka, errstr, errstr_size) != 0)
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

/* Resumes parked tasks whose time has come: those due when the turn began
 * (a task parked again meanwhile waits for the next turn). */
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
        for (size_t i = 0; i < n; i++)
            task_resume(due[i]);
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
 * while there is room; at most every 100 ms. */
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
        if (sched_claim(&due, w->sched, account, room, WORKER_LEASE_MS, errstr,
                        sizeof(errstr)) != 0) {
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
    }
}

/* Publishes health and metrics for the listener, once a second. */
static void worker_publish(struct worker *w)
{
    int64_t now = worker_now_ms();
    struct metrics *m = &w->metrics;

    if (now < w->next_publish_ms)
        return;
    w->next_publish_ms = now + 1000;
    metrics_set(m, M_REDIS_UP, NULL, w->redis_ok && aredis_is_up(w->aredis));
    metrics_set(m, M_REDIS_ROUND_TRIPS, NULL,
                (double)aredis_round_trips(w->aredis));
    metrics_set(m, M_REDIS_CALLS, NULL, (double)aredis_commands(w->aredis));
    metrics_set(m, M_UNITS_IN_FLIGHT, NULL, (double)w->tasks);
    metrics_set(m, M_PROVIDER_IN_FLIGHT, NULL, (double)http_in_flight(w->http));
    metrics_set(m, M_UNITS_PARKED, ML("timer"),
                (double)park_count(&w->parking));
    size_t tok = 0, slot = 0;
    for (const struct task *t = w->tok_head; t != NULL; t = task_next_parked(t))
        tok++;
    for (const struct task *t = w->slot_head; t != NULL;
         t = task_next_parked(t))
        slot++;
    metrics_set(m, M_UNITS_PARKED, ML("tokens"), (double)tok);
    metrics_set(m, M_UNITS_PARKED, ML("connection"), (double)slot);
    kafka_read_metrics(w->kafka, m);
    struct listener_state st = {.redis_ok = w->redis_ok,
                                .metrics = metrics_render(m)};
    listener_publish_state(w->listener, &st);
}

static void worker_turn(struct worker *w, bool consume)
{
    listener_heartbeat(w->listener);
    accounts_refresh(w->accounts, worker_now_ms());
    kafka_serve(w->kafka);
    aredis_tick(w->aredis);
    worker_check_redis(w);
    consume = consume && w->redis_ok;
    if (consume) {
        worker_claim_due(w);
        poll_serve(w);
    }
    while (consume && w->tasks < (size_t)w->cfg->max_in_flight) {
        rd_kafka_message_t *rkm = kafka_consume(w->kafka);
        if (rkm == NULL)
            break;
        task_start(w, rkm);
    }
    hooks_serve(w);
    worker_resume_due(w);
    worker_publish(w);
    http_perform(w->http);
    /* Everything the turn asked of Redis leaves now, in one write. */
    rbatch_flush(w);
    aredis_flush(w->aredis);
    struct http_waitfd fds[3] = {
        {.fd = kafka_wake_fd(w->kafka), .events = POLLIN},
        {.fd = listener_wake_fd(w->listener), .events = POLLIN},
    };
    unsigned nfds = 2;
    if (aredis_waitfd(w->aredis, &fds[2].fd, &fds[2].events))
        nfds = 3;
    http_wait(w->http, fds, nfds, worker_wait_ms(w));
    if (nfds == 3 && fds[2].revents != 0)
        aredis_io(w->aredis, fds[2].revents);
    http_perform(w->http);
}

int worker_run(struct worker *w)
{
    log_info("worker: running group=%s brokers=%s", w->cfg->kafka_group,
             w->cfg->kafka_brokers);
    while (!worker_stop && !kafka_is_fatal(w->kafka))
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
    return kafka_is_fatal(w->kafka) ? 1 : 0;
}
