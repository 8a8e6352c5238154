/* tests/bench/bench_ratelimit.c - rate-limit decisions per second and Redis
 * round trips per 1,000 sends, against a real redis-server.
 *
 *     bench_ratelimit [host:port] [seconds] [processes]
 *
 * The Redis address defaults to $KURIR_TEST_REDIS, then 127.0.0.1:6379.
 * Three runs, each with `processes` forked replicas sharing one bucket:
 *   open      a bucket far above demand: the cost of a decision;
 *   saturated a bucket of 2,000 segments/s, burst 200, that every replica
 *             hammers: round trips while demand exceeds the rate, and the
 *             admitted total against burst + rate x elapsed;
 * each with leases (the default) and without (max_lease = 1). Keys live
 * under "bench:<pid>" and are deleted at the end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ratelimit/ratelimit.h"

struct bench_result {
    int64_t decisions; /* takes answered */
    int64_t admitted;  /* segments admitted */
    int64_t round_trips;
    int64_t errors;
};

static int64_t bench_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void bench_sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* One replica: takes one segment at a time until the deadline, parking for
 * the returned wait. Writes its result to fd and exits. */
static void bench_child(const char *url, const char *prefix,
                        const struct ratelimit_bucket *b, int max_lease,
                        int64_t deadline_us, int fd)
{
    struct rconn_opts opts = {.url = url, .prefix = prefix};
    struct ratelimit_opts ro = {.max_lease = max_lease};
    struct bench_result res = {0, 0, 0, 0};
    struct rconn *rc = NULL;
    struct ratelimit *rl = NULL;
    char errstr[256];

    if (rconn_new(&rc, &opts, errstr, sizeof(errstr)) != 0 ||
        ratelimit_new(&rl, rc, &ro, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "bench: %s\n", errstr);
        _exit(2);
    }
    uint64_t rt0 = rconn_round_trips(rc);
    for (;;) {
        int64_t now = bench_now_us();
        int64_t wait;
        if (now >= deadline_us)
            break;
        if (ratelimit_take(rl, &wait, b, 1, errstr, sizeof(errstr)) != 0) {
            res.errors++;
            continue;
        }
        res.decisions++;
        if (wait == 0) {
            res.admitted++;
            continue;
        }
        if (wait * 1000 > deadline_us - now)
            wait = (deadline_us - now) / 1000 + 1;
        bench_sleep_ms(wait);
    }
    res.round_trips = (int64_t)(rconn_round_trips(rc) - rt0);
    if (write(fd, &res, sizeof(res)) != sizeof(res))
        _exit(3);
    ratelimit_free(rl);
    rconn_free(rc);
    _exit(0);
}

static int bench_run(const char *label, const char *url, const char *prefix,
                     const struct ratelimit_bucket *b, int max_lease,
                     int seconds, int procs)
{
    struct bench_result sum = {0, 0, 0, 0};
    int fds[2];
    int failed = 0;

    if (pipe(fds) != 0)
        return -1;
    /* Children connect in their first milliseconds; the bucket starts at
     * their first take, so the bound below is generous by that much. */
    int64_t start = bench_now_us();
    int64_t deadline = start + (int64_t)seconds * 1000000;
    for (int i = 0; i < procs; i++) {
        pid_t pid = fork();
        if (pid < 0)
            return -1;
        if (pid == 0)
            bench_child(url, prefix, b, max_lease, deadline, fds[1]);
    }
    close(fds[1]);
    for (int i = 0; i < procs; i++) {
        struct bench_result r;
        if (read(fds[0], &r, sizeof(r)) != sizeof(r)) {
            failed = 1;
            break;
        }
        sum.decisions += r.decisions;
        sum.admitted += r.admitted;
        sum.round_trips += r.round_trips;
        sum.errors += r.errors;
    }
    close(fds[0]);
    for (int i = 0; i < procs; i++) {
        int status;
        if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            failed = 1;
    }
    if (failed) {
        fprintf(stderr, "bench: a replica failed\n");
        return -1;
    }
    double elapsed = (double)(bench_now_us() - start) / 1e6;
    double bound = b->burst + b->per_second * elapsed;
    printf("%-22s %2d proc  %9.0f decisions/s  %9.0f sends/s  "
           "%8.1f round trips/1000 sends  admitted %lld / bound %.0f "
           "(%.1f%%)  errors %lld\n",
           label, procs, (double)sum.decisions / elapsed,
           (double)sum.admitted / elapsed,
           sum.admitted > 0
               ? 1000.0 * (double)sum.round_trips / (double)sum.admitted
               : 0.0,
           (long long)sum.admitted, bound, 100.0 * (double)sum.admitted / bound,
           (long long)sum.errors);
    fflush(stdout);
    return 0;
}

/* Deletes the keys the runs made. */
static void bench_cleanup(const char *url, const char *prefix,
                          const char *const *accounts, size_t n)
{
    struct rconn_opts opts = {.url = url, .prefix = prefix};
    struct rconn *rc = NULL;
    char errstr[256];

    if (rconn_new(&rc, &opts, errstr, sizeof(errstr)) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        char tb[RCONN_KEY_MAX], pen[RCONN_KEY_MAX];
        redisReply *reply = NULL;
        if (rconn_key(tb, sizeof(tb), rc, accounts[i], "tb", NULL, errstr,
                      sizeof(errstr)) != 0 ||
            rconn_key(pen, sizeof(pen), rc, accounts[i], "penalty", NULL,
                      errstr, sizeof(errstr)) != 0)
            continue;
        const char *argv[] = {"DEL", tb, pen};
        if (rconn_command(&reply, rc, 3, argv, NULL, true, errstr,
                          sizeof(errstr)) == 0)
            freeReplyObject(reply);
    }
    rconn_free(rc);
}

int main(int argc, char **argv)
{
    const char *env = getenv("KURIR_TEST_REDIS");
    const char *addr = argc > 1                      ? argv[1]
                       : env != NULL && *env != '\0' ? env
                                                     : "127.0.0.1:6379";
    int seconds = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 3;
    int procs = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 4;
    static const char *const accounts[] = {"open-lease", "open-nolease",
                                           "sat-lease", "sat-nolease"};
    char url[300], prefix[64];
    int ret = 0;

    if (seconds < 1 || procs < 1) {
        fprintf(stderr, "usage: bench_ratelimit [host:port] [seconds] "
                        "[processes]\n");
        return 2;
    }
    snprintf(url, sizeof(url), "redis://%s/0", addr);
    snprintf(prefix, sizeof(prefix), "bench:%ld", (long)getpid());
    struct ratelimit_bucket open_b = {.per_second = 1e9, .burst = 1e8};
    struct ratelimit_bucket sat_b = {.per_second = 2000, .burst = 200};

    printf("redis %s, %d s per run\n", addr, seconds);
    open_b.account = accounts[0];
    ret |= bench_run("open, leased", url, prefix, &open_b, 0, seconds, procs);
    open_b.account = accounts[1];
    ret |= bench_run("open, unleased", url, prefix, &open_b, 1, seconds, procs);
    sat_b.account = accounts[2];
    ret |=
        bench_run("saturated, leased", url, prefix, &sat_b, 0, seconds, procs);
    sat_b.account = accounts[3];
    ret |= bench_run("saturated, unleased", url, prefix, &sat_b, 1, seconds,
                     procs);
    bench_cleanup(url, prefix, accounts, 4);
    return ret == 0 ? 0 : 1;
}
