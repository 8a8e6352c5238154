/* tests/ratelimit/test_ratelimit.c - fleet-wide token buckets against a
 * real redis-server: burst and refill, leases, sender buckets, penalties,
 * and several processes hammering one bucket. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "ratelimit/ratelimit.h"
#include "tests/ratelimit/rltest.h"
#include "tests/support/support.h"

struct fixture {
    char prefix[64];
    struct rconn *rc;
    struct ratelimit *rl;
};

static void fixture_open(struct fixture *f, const char *name,
                         const struct ratelimit_opts *opts)
{
    char errstr[256];

    rltest_prefix(f->prefix, sizeof(f->prefix), name);
    f->rc = rltest_connect(f->prefix);
    int ret = ratelimit_new(&f->rl, f->rc, opts, errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
}

static void fixture_close(struct fixture *f)
{
    rltest_cleanup(f->rc);
    ratelimit_free(f->rl);
    rconn_free(f->rc);
}

/* Takes and returns the wait; fails the test on -1. */
static int64_t take(struct ratelimit *rl, const struct ratelimit_bucket *b,
                    unsigned segments)
{
    char errstr[256];
    int64_t wait = -1;

    int ret = ratelimit_take(rl, &wait, b, segments, errstr, sizeof(errstr));
    cr_assert(ret == 0, "take: %s", errstr);
    return wait;
}

Test(ratelimit, burst_then_refusal_with_wait_then_refill)
{
    struct fixture f;
    struct ratelimit_bucket b = {
        .account = "acct", .per_second = 10, .burst = 5};
    bool ok;

    fixture_open(&f, "rl-burst", NULL);
    for (int i = 0; i < 5; i++) {
        int64_t wait = take(f.rl, &b, 1);
        cr_assert(wait == 0, "take %d refused (wait %lld)", i, (long long)wait);
    }
    int64_t wait = take(f.rl, &b, 1);
    cr_assert(wait > 0 && wait <= 101, "wait %lld", (long long)wait);
    /* Refused again without asking Redis while the wait runs. */
    uint64_t rt = rconn_round_trips(f.rc);
    wait = take(f.rl, &b, 1);
    cr_assert(wait > 0 && rconn_round_trips(f.rc) == rt);
    POLL_UNTIL(ok, take(f.rl, &b, 1) == 0, 1000);
    cr_assert(ok, "the bucket did not refill");
    fixture_close(&f);
}

Test(ratelimit, segments_are_charged_not_messages)
{
    struct fixture f;
    struct ratelimit_bucket b = {
        .account = "acct", .per_second = 1, .burst = 6};

    fixture_open(&f, "rl-seg", NULL);
    int64_t wait = take(f.rl, &b, 4);
    cr_assert(wait == 0);
    wait = take(f.rl, &b, 2);
    cr_assert(wait == 0);
    wait = take(f.rl, &b, 1); /* 6 segments in 2 messages: empty */
    cr_assert(wait > 0, "a 7th segment passed a burst of 6");
    fixture_close(&f);
}

Test(ratelimit, message_larger_than_burst_is_an_error)
{
    struct fixture f;
    struct ratelimit_bucket b = {
        .account = "acct", .per_second = 10, .burst = 3};
    char errstr[256];
    int64_t wait;

    fixture_open(&f, "rl-big", NULL);
    int ret = ratelimit_take(f.rl, &wait, &b, 4, errstr, sizeof(errstr));
    cr_assert(ret == -1);
    cr_assert(strstr(errstr, "burst") != NULL, "%s", errstr);
    fixture_close(&f);
}

Test(ratelimit, leases_cut_round_trips)
{
    struct fixture f;
    struct ratelimit_bucket b = {
        .account = "acct", .per_second = 100000, .burst = 10000};

    fixture_open(&f, "rl-lease", NULL);
    uint64_t rt = rconn_round_trips(f.rc);
    for (int i = 0; i < 1000; i++) {
        int64_t wait = take(f.rl, &b, 1);
        cr_assert(wait == 0);
    }
    uint64_t used = rconn_round_trips(f.rc) - rt;
    /* Leases grow 1, 2, 4 ... up to burst/4: far below one per send. */
    cr_assert(used < 50, "%llu round trips for 1000 sends",
              (unsigned long long)used);
    fixture_close(&f);
}

Test(ratelimit, sender_bucket_limits_within_account)
{
    struct fixture f;
    struct ratelimit_bucket s = {.account = "acct",
                                 .per_second = 1000,
                                 .burst = 100,
                                 .sender = "Shop",
                                 .sender_per_second = 1,
                                 .sender_burst = 2};
    struct ratelimit_bucket t = s;
    struct ratelimit_bucket a = {
        .account = "acct", .per_second = 1000, .burst = 100};

    t.sender = "Other";
    fixture_open(&f, "rl-sender", NULL);
    cr_assert(take(f.rl, &s, 1) == 0);
    cr_assert(take(f.rl, &s, 1) == 0);
    cr_assert(take(f.rl, &s, 1) > 0, "sender bucket not enforced");
    cr_assert(take(f.rl, &t, 1) == 0, "other sender refused");
    cr_assert(take(f.rl, &a, 1) == 0, "account bucket refused");
    fixture_close(&f);
}

Test(ratelimit, penalty_slows_every_replica)
{
    struct fixture a, b;
    struct ratelimit_bucket bk = {
        .account = "acct", .per_second = 1000, .burst = 100};
    char errstr[256];
    bool ok;

    fixture_open(&a, "rl-penalty", NULL);
    fixture_open(&b, "rl-penalty", NULL);
    cr_assert(take(b.rl, &bk, 1) == 0);
    int ret = ratelimit_penalize(a.rl, "acct", 400, errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    /* b holds a lease from before; its leased tokens may still be spent
     * for up to lease_ms, then Redis refuses. */
    POLL_UNTIL(ok, take(b.rl, &bk, 1) > 0, 300);
    cr_assert(ok, "the other replica was not slowed down");
    int64_t wait = take(a.rl, &bk, 1);
    cr_assert(wait > 0 && wait <= 400, "wait %lld", (long long)wait);
    POLL_UNTIL(ok, take(b.rl, &bk, 1) == 0, 2000);
    cr_assert(ok, "the penalty did not end");
    ratelimit_free(b.rl);
    rconn_free(b.rc);
    fixture_close(&a);
}

Test(ratelimit, redis_down_is_an_error_not_a_grant)
{
    struct rconn *rc = NULL;
    struct ratelimit *rl = NULL;
    struct rconn_opts opts = {.url = "redis://127.0.0.1:1", .prefix = "p"};
    struct ratelimit_bucket b = {
        .account = "acct", .per_second = 10, .burst = 5};
    char errstr[256];
    int64_t wait = 12345;
    int ret;

    ret = rconn_new(&rc, &opts, errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    ret = ratelimit_new(&rl, rc, NULL, errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    ret = ratelimit_take(rl, &wait, &b, 1, errstr, sizeof(errstr));
    cr_assert(ret == -1 && wait == 12345);
    cr_assert(strstr(errstr, "redis") != NULL, "%s", errstr);
    ratelimit_free(rl);
    rconn_free(rc);
}

/* ------------------------------------------------------------------------ */
/* Several processes, one bucket. */

struct hammer_result {
    int64_t admitted; /* segments */
    int64_t takes;
    int64_t round_trips;
    int64_t errors;
};

static void hammer_sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* The child: waits for the start, then takes until the deadline, parking
 * for the returned wait as the worker does. Never returns. */
static void hammer_child(const char *prefix, const struct ratelimit_opts *o,
                         const struct ratelimit_bucket *b, int ready_fd,
                         int go_fd, int result_fd, unsigned seed)
{
    char url[300];
    char errstr[256];
    struct rconn *rc = NULL;
    struct ratelimit *rl = NULL;
    struct rconn_opts opts = {.url = url, .prefix = prefix};
    struct hammer_result res = {0, 0, 0, 0};
    int64_t deadline;

    snprintf(url, sizeof(url), "redis://%s/0", support_redis());
    if (rconn_new(&rc, &opts, errstr, sizeof(errstr)) != 0 ||
        ratelimit_new(&rl, rc, o, errstr, sizeof(errstr)) != 0)
        _exit(2);
    if (write(ready_fd, "r", 1) != 1 ||
        read(go_fd, &deadline, sizeof(deadline)) != sizeof(deadline))
        _exit(3);
    for (;;) {
        int64_t now = support_now_ms();
        int64_t wait;
        unsigned segments = seed == 0 ? 1 : 1 + rand_r(&seed) % 3;
        if (now >= deadline)
            break;
        res.takes++;
        if (ratelimit_take(rl, &wait, b, segments, errstr, sizeof(errstr)) !=
            0) {
            res.errors++;
            continue;
        }
        if (wait == 0)
            res.admitted += segments;
        else
            hammer_sleep_ms(wait < deadline - now ? wait : deadline - now);
    }
    res.round_trips = (int64_t)rconn_round_trips(rc);
    if (write(result_fd, &res, sizeof(res)) != sizeof(res))
        _exit(4);
    ratelimit_free(rl);
    rconn_free(rc);
    _exit(0);
}

static void hammer(const char *name, const struct ratelimit_opts *o,
                   bool mixed_segments)
{
    enum { NPROC = 4, DURATION_MS = 3000 };
    struct ratelimit_bucket b = {
        .account = "acct", .per_second = 400, .burst = 40};
    char prefix[64];
    int ready[2], go[2], result[2];
    pid_t pids[NPROC];
    struct hammer_result sum = {0, 0, 0, 0};
    char c;

    support_redis();
    rltest_prefix(prefix, sizeof(prefix), name);
    cr_assert(pipe(ready) == 0 && pipe(go) == 0 && pipe(result) == 0);
    for (int i = 0; i < NPROC; i++) {
        pids[i] = fork();
        cr_assert(pids[i] >= 0);
        if (pids[i] == 0)
            hammer_child(prefix, o, &b, ready[1], go[0], result[1],
                         mixed_segments ? 7u + (unsigned)i : 0);
    }
    for (int i = 0; i < NPROC; i++)
        cr_assert(read(ready[0], &c, 1) == 1, "a child failed to start");
    int64_t start = support_now_ms();
    int64_t deadline = start + DURATION_MS;
    for (int i = 0; i < NPROC; i++)
        cr_assert(write(go[1], &deadline, sizeof(deadline)) ==
                  sizeof(deadline));
    for (int i = 0; i < NPROC; i++) {
        struct hammer_result r;
        cr_assert(read(result[0], &r, sizeof(r)) == sizeof(r), "a child died");
        sum.admitted += r.admitted;
        sum.takes += r.takes;
        sum.round_trips += r.round_trips;
        sum.errors += r.errors;
    }
    int64_t end = support_now_ms();
    for (int i = 0; i < NPROC; i++) {
        int status;
        waitpid(pids[i], &status, 0);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    for (int i = 0; i < 2; i++) {
        close(ready[i]);
        close(go[i]);
        close(result[i]);
    }

    double max = b.burst + b.per_second * (double)(end - start) / 1000;
    double full = b.burst + b.per_second * DURATION_MS / 1000.0;
    cr_log_info("%s: admitted %lld segments in %lld ms (bound %.0f), "
                "%lld takes, %lld round trips, %lld errors",
                name, (long long)sum.admitted, (long long)(end - start), max,
                (long long)sum.takes, (long long)sum.round_trips,
                (long long)sum.errors);
    cr_assert(sum.errors == 0);
    cr_assert(sum.admitted <= max, "admitted %lld > bound %.0f",
              (long long)sum.admitted, max);
    cr_assert(sum.admitted >= 0.95 * full, "admitted %lld < 95%% of %.0f",
              (long long)sum.admitted, full);

    struct rconn *rc = rltest_connect(prefix);
    rltest_cleanup(rc);
    rconn_free(rc);
}

Test(ratelimit, processes_hammering_stay_within_bound_leased, .timeout = 60)
{
    hammer("rl-hammer-lease", NULL, false);
}

Test(ratelimit, processes_hammering_stay_within_bound_unleased, .timeout = 60)
{
    struct ratelimit_opts o = {.max_lease = 1};

    hammer("rl-hammer-nolease", &o, false);
}

Test(ratelimit, processes_hammering_mixed_segments, .timeout = 60)
{
    hammer("rl-hammer-mixed", NULL, true);
}
