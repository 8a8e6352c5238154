/* tests/ratelimit/test_sched.c - scheduled sends and retries in Redis:
 * claims with leases, concurrent claimers, expiry, cancel, and the pure
 * backoff computation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "ratelimit/sched.h"
#include "tests/ratelimit/rltest.h"
#include "tests/support/support.h"

struct fixture {
    char prefix[64];
    struct rconn *rc;
    struct sched *s;
};

static void fixture_open(struct fixture *f, const char *name)
{
    char errstr[256];

    rltest_prefix(f->prefix, sizeof(f->prefix), name);
    f->rc = rltest_connect(f->prefix);
    int ret = sched_new(&f->s, f->rc, errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
}

static void fixture_close(struct fixture *f)
{
    rltest_cleanup(f->rc);
    sched_free(f->s);
    rconn_free(f->rc);
}

static enum sched_added add(struct sched *s, const char *id, const char *job,
                            const char *campaign, int64_t due_ms)
{
    enum sched_added added;
    char errstr[256];

    int ret = sched_add(&added, s, "acct", id, job, campaign, due_ms, id,
                        strlen(id), errstr, sizeof(errstr));
    cr_assert(ret == 0, "add %s: %s", id, errstr);
    return added;
}

static void claim(struct sched_entries *out, struct sched *s, size_t max,
                  int64_t lease_ms)
{
    char errstr[256];

    int ret =
        sched_claim(out, s, "acct", max, lease_ms, 0, errstr, sizeof(errstr));
    cr_assert(ret == 0, "claim: %s", errstr);
}

static bool ack(struct sched *s, const char *id, const char *token)
{
    char errstr[256];
    bool held = false;

    int ret = sched_ack(&held, s, "acct", id, token, errstr, sizeof(errstr));
    cr_assert(ret == 0, "ack: %s", errstr);
    return held;
}

Test(sched, add_claim_ack_binary_payload)
{
    struct fixture f;
    struct sched_entries got = {NULL, 0};
    enum sched_added added;
    char errstr[256];
    static const char payload[] = {'{', 0, '}', '\xff'};

    fixture_open(&f, "sched-basic");
    int ret =
        sched_add(&added, f.s, "acct", "j1", "j1", NULL, rltest_wall_ms() - 1,
                  payload, sizeof(payload), errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    cr_assert(added == SCHED_ADDED);
    cr_assert(add(f.s, "j1", "j1", NULL, 0) == SCHED_EXISTS);

    claim(&got, f.s, 10, 60000);
    cr_assert(got.n == 1);
    cr_assert_str_eq(got.v[0].id, "j1");
    cr_assert(got.v[0].payload_len == sizeof(payload) &&
              memcmp(got.v[0].payload, payload, sizeof(payload)) == 0);
    struct sched_entries again = {NULL, 0};
    claim(&again, f.s, 10, 60000);
    cr_assert(again.n == 0, "a leased entry was handed out twice");

    cr_assert(ack(f.s, "j1", got.v[0].token));
    cr_assert(!ack(f.s, "j1", got.v[0].token), "acked twice");
    /* A redelivered Kafka message re-adding a done entry changes nothing. */
    cr_assert(add(f.s, "j1", "j1", NULL, 0) == SCHED_EXISTS);
    claim(&again, f.s, 10, 60000);
    cr_assert(again.n == 0);
    sched_entries_cleanup(&got);
    fixture_close(&f);
}

Test(sched, claim_ahead_takes_only_what_falls_due_within_it)
{
    struct fixture f;
    struct sched_entries got = {NULL, 0};
    char errstr[256];
    int64_t now = rltest_wall_ms();

    fixture_open(&f, "sched-ahead");
    add(f.s, "soon", "soon", NULL, now + 2000);
    add(f.s, "later", "later", NULL, now + 60000);
    claim(&got, f.s, 10, 60000);
    cr_assert(got.n == 0, "claimed before due without looking ahead");
    int ret = sched_claim(&got, f.s, "acct", 10, 60000, 10000, errstr,
                          sizeof(errstr));
    cr_assert(ret == 0, "claim: %s", errstr);
    cr_assert(got.n == 1, "%zu claimed 10 s ahead", got.n);
    cr_assert_str_eq(got.v[0].id, "soon");
    sched_entries_cleanup(&got);
    fixture_close(&f);
}

Test(sched, future_entries_wait_until_due_in_order)
{
    struct fixture f;
    struct sched_entries got = {NULL, 0};
    int64_t now = rltest_wall_ms();
    bool ok;

    fixture_open(&f, "sched-due");
    add(f.s, "later", "later", NULL, now + 300);
    add(f.s, "b", "b", NULL, now - 1000);
    add(f.s, "a", "a", NULL, now - 2000);
    claim(&got, f.s, 10, 60000);
    cr_assert(got.n == 2, "claimed %zu", got.n);
    cr_assert_str_eq(got.v[0].id, "a");
    cr_assert_str_eq(got.v[1].id, "b");
    sched_entries_cleanup(&got);
    POLL_UNTIL(ok, (claim(&got, f.s, 10, 60000), got.n == 1), 3000);
    cr_assert(ok, "the future entry never came due");
    cr_assert(rltest_wall_ms() >= now + 300, "claimed before it was due");
    cr_assert_str_eq(got.v[0].id, "later");
    sched_entries_cleanup(&got);
    fixture_close(&f);
}

Test(sched, expired_lease_is_reclaimed_with_new_token)
{
    struct fixture f;
    struct sched_entries first = {NULL, 0}, second = {NULL, 0};
    bool ok;

    fixture_open(&f, "sched-lease");
    add(f.s, "e1", "e1", NULL, 0);
    claim(&first, f.s, 10, 200);
    cr_assert(first.n == 1);
    /* The holder "dies": no ack. Once the lease ends it comes back. */
    POLL_UNTIL(ok, (claim(&second, f.s, 10, 60000), second.n == 1), 3000);
    cr_assert(ok, "expired lease was not reclaimed");
    cr_assert_str_eq(second.v[0].id, "e1");
    cr_assert_str_neq(second.v[0].token, first.v[0].token);
    cr_assert(!ack(f.s, "e1", first.v[0].token), "old holder could ack");
    cr_assert(ack(f.s, "e1", second.v[0].token));
    sched_entries_cleanup(&first);
    sched_entries_cleanup(&second);
    fixture_close(&f);
}

/* Issue 9 #9: a worker extends every claim it still works on in one
 * script: their leases move on, a claim lost meanwhile is not counted and
 * not extended, and an acked one is gone. */
Test(sched, extend_many_moves_only_the_held_leases)
{
    struct fixture f;
    struct sched_entries got = {NULL, 0}, other = {NULL, 0};
    char errstr[256], key[RCONN_KEY_MAX];
    size_t held = 0;

    fixture_open(&f, "sched-extend-many");
    add(f.s, "m1", "m1", NULL, 0);
    add(f.s, "m2", "m2", NULL, 0);
    add(f.s, "m3", "m3", NULL, 0);
    claim(&got, f.s, 10, 1000);
    cr_assert(got.n == 3);
    const char *ids[3], *tokens[3];
    for (size_t i = 0; i < 3; i++) {
        ids[i] = got.v[i].id;
        tokens[i] = got.v[i].token;
    }
    tokens[2] = "not-ours"; /* a claim another replica took over */
    int ret = sched_extend_many(&held, f.s, "acct", ids, tokens, 3, 60000,
                                errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    cr_assert(held == 2, "held %zu", held);
    rconn_key(key, sizeof(key), f.rc, "acct", "sched:lease", NULL, errstr,
              sizeof(errstr));
    for (size_t i = 0; i < 3; i++) {
        const char *score[] = {"ZSCORE", key, ids[i]};
        int64_t lease_end = rltest_int(f.rc, 3, score);
        if (i < 2)
            cr_assert(lease_end > rltest_wall_ms() + 50000,
                      "lease of %s not extended", ids[i]);
        else
            cr_assert(lease_end < rltest_wall_ms() + 2000,
                      "a lost claim was extended");
    }
    /* Past the first lease, only the one not extended is claimed again. */
    bool ok;
    POLL_UNTIL(ok, (claim(&other, f.s, 10, 60000), other.n > 0), 5000);
    cr_assert(ok && other.n == 1);
    cr_assert_str_eq(other.v[0].id, ids[2]);
    cr_assert(ack(f.s, ids[0], tokens[0]));
    ret = sched_extend_many(&held, f.s, "acct", ids, tokens, 1, 60000, errstr,
                            sizeof(errstr));
    cr_assert(ret == 0 && held == 0, "an acked claim was extended");
    sched_entries_cleanup(&got);
    sched_entries_cleanup(&other);
    fixture_close(&f);
}

Test(sched, extend_and_retry_need_the_current_token)
{
    struct fixture f;
    struct sched_entries got = {NULL, 0}, again = {NULL, 0};
    char errstr[256];
    bool held;
    int ret;

    fixture_open(&f, "sched-retry");
    add(f.s, "r1", "r1", NULL, 0);
    claim(&got, f.s, 10, 100);
    ret = sched_extend(&held, f.s, "acct", "r1", got.v[0].token, 60000, errstr,
                       sizeof(errstr));
    cr_assert(ret == 0 && held, "%s", errstr);
    const char *score[] = {"ZSCORE", "", "r1"};
    char key[RCONN_KEY_MAX];
    rconn_key(key, sizeof(key), f.rc, "acct", "sched:lease", NULL, errstr,
              sizeof(errstr));
    score[1] = key;
    int64_t lease_end = rltest_int(f.rc, 3, score);
    cr_assert(lease_end > rltest_wall_ms() + 50000, "lease not extended");
    ret = sched_extend(&held, f.s, "acct", "r1", "bogus", 60000, errstr,
                       sizeof(errstr));
    cr_assert(ret == 0 && !held);

    /* Retry in the past with a new payload: claimable again at once. */
    ret = sched_retry(&held, f.s, "acct", "r1", got.v[0].token, 0, "attempt 2",
                      9, errstr, sizeof(errstr));
    cr_assert(ret == 0 && held, "%s", errstr);
    cr_assert(!ack(f.s, "r1", got.v[0].token), "old token survived retry");
    claim(&again, f.s, 10, 60000);
    cr_assert(again.n == 1);
    cr_assert_str_eq(again.v[0].payload, "attempt 2");
    /* Retry far ahead: not claimable now. */
    ret = sched_retry(&held, f.s, "acct", "r1", again.v[0].token,
                      rltest_wall_ms() + 3600000, NULL, 0, errstr,
                      sizeof(errstr));
    cr_assert(ret == 0 && held, "%s", errstr);
    sched_entries_cleanup(&again);
    claim(&again, f.s, 10, 60000);
    cr_assert(again.n == 0);
    sched_entries_cleanup(&got);
    fixture_close(&f);
}

Test(sched, cancel_removes_exactly_the_job_or_campaign)
{
    struct fixture f;
    struct sched_entries got = {NULL, 0};
    char errstr[256];
    size_t removed;
    bool cancelled;
    int64_t later = rltest_wall_ms() + 3600000;
    int ret;

    fixture_open(&f, "sched-cancel");
    add(f.s, "A/1", "A", NULL, later);
    add(f.s, "A/2", "A", NULL, later);
    add(f.s, "A/3", "A", NULL, 0);
    add(f.s, "B/1", "B", NULL, later);
    add(f.s, "B/2", "B", NULL, 0);
    for (int i = 1; i <= 4; i++) {
        char id[16], job[16];
        snprintf(job, sizeof(job), "C%d", i);
        snprintf(id, sizeof(id), "C%d/1", i);
        add(f.s, id, job, "C", later);
    }
    claim(&got, f.s, 1, 60000); /* A/3 is in flight, leased */
    cr_assert(got.n == 1);
    cr_assert_str_eq(got.v[0].id, "A/3");

    ret =
        sched_cancel(&removed, f.s, "acct", "A", false, errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    cr_assert(removed == 3, "removed %zu of job A", removed);
    cr_assert(!ack(f.s, "A/3", got.v[0].token), "a cancelled entry acked");
    ret =
        sched_cancel(&removed, f.s, "acct", "C", true, errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    cr_assert(removed == 4, "removed %zu of campaign C", removed);
    ret =
        sched_cancel(&removed, f.s, "acct", "A", false, errstr, sizeof(errstr));
    cr_assert(ret == 0 && removed == 0, "cancel is not idempotent");

    /* B is untouched. */
    sched_entries_cleanup(&got);
    claim(&got, f.s, 10, 60000);
    cr_assert(got.n == 1);
    cr_assert_str_eq(got.v[0].id, "B/2");
    const char *card[] = {"HLEN", ""};
    char key[RCONN_KEY_MAX];
    rconn_key(key, sizeof(key), f.rc, "acct", "sched:data", NULL, errstr,
              sizeof(errstr));
    card[1] = key;
    cr_assert(rltest_int(f.rc, 2, card) == 2, "B/1 and B/2 must remain");

    /* The markers: late adds are refused, and checks see them. */
    cr_assert(add(f.s, "A/4", "A", NULL, 0) == SCHED_CANCELLED);
    cr_assert(add(f.s, "C9/1", "C9", "C", 0) == SCHED_CANCELLED);
    ret = sched_is_cancelled(&cancelled, f.s, "acct", "C2", "C", errstr,
                             sizeof(errstr));
    cr_assert(ret == 0 && cancelled);
    ret = sched_is_cancelled(&cancelled, f.s, "acct", "B", NULL, errstr,
                             sizeof(errstr));
    cr_assert(ret == 0 && !cancelled);
    sched_entries_cleanup(&got);
    fixture_close(&f);
}

/* Children claim in small batches until nothing is left and report every
 * id they got; no id may come twice. */
Test(sched, concurrent_claimers_never_share_an_entry, .timeout = 60)
{
    enum { NPROC = 4, NENTRIES = 300 };
    struct fixture f;
    int out[2];
    pid_t pids[NPROC];
    int seen[NENTRIES] = {0};

    fixture_open(&f, "sched-race");
    for (int i = 0; i < NENTRIES; i++) {
        char id[16];
        snprintf(id, sizeof(id), "%d", i);
        add(f.s, id, id, NULL, 0);
    }
    cr_assert(pipe(out) == 0);
    for (int p = 0; p < NPROC; p++) {
        pids[p] = fork();
        cr_assert(pids[p] >= 0);
        if (pids[p] != 0)
            continue;
        char url[300], errstr[256];
        struct rconn *rc = NULL;
        struct sched *s = NULL;
        struct rconn_opts opts = {.url = url, .prefix = f.prefix};
        snprintf(url, sizeof(url), "redis://%s/0", support_redis());
        if (rconn_new(&rc, &opts, errstr, sizeof(errstr)) != 0 ||
            sched_new(&s, rc, errstr, sizeof(errstr)) != 0)
            _exit(2);
        for (;;) {
            struct sched_entries got = {NULL, 0};
            bool held;
            if (sched_claim(&got, s, "acct", 3, 60000, 0, errstr,
                            sizeof(errstr)) != 0)
                _exit(3);
            if (got.n == 0)
                break;
            for (size_t i = 0; i < got.n; i++) {
                int id = (int)strtol(got.v[i].id, NULL, 10);
                if (sched_ack(&held, s, "acct", got.v[i].id, got.v[i].token,
                              errstr, sizeof(errstr)) != 0 ||
                    !held || write(out[1], &id, sizeof(id)) != sizeof(id))
                    _exit(4);
            }
            sched_entries_cleanup(&got);
        }
        sched_free(s);
        rconn_free(rc);
        _exit(0);
    }
    close(out[1]);
    int id, total = 0;
    while (read(out[0], &id, sizeof(id)) == sizeof(id)) {
        cr_assert(id >= 0 && id < NENTRIES);
        cr_assert(seen[id] == 0, "entry %d handed out twice", id);
        seen[id]++;
        total++;
    }
    close(out[0]);
    for (int p = 0; p < NPROC; p++) {
        int status;
        waitpid(pids[p], &status, 0);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "claimer %d failed", p);
    }
    cr_assert(total == NENTRIES, "claimed %d of %d", total, NENTRIES);
    fixture_close(&f);
}

Test(sched, backoff_grows_with_jitter_and_respects_horizon)
{
    struct sched_backoff p = {
        .base_ms = 1000, .cap_ms = 60000, .horizon_ms = 100000};
    int64_t due;

    cr_assert(sched_backoff_delay_ms(&p, 1, 0) == 500);
    cr_assert(sched_backoff_delay_ms(&p, 1, 500) == 1000);
    cr_assert(sched_backoff_delay_ms(&p, 4, 0) == 4000);
    cr_assert(sched_backoff_delay_ms(&p, 4, 4000) == 8000);
    cr_assert(sched_backoff_delay_ms(&p, 40, 0) == 30000, "cap");
    cr_assert(sched_backoff_delay_ms(&p, 40, 0xffffffffu) <= 60000);
    for (uint32_t r = 0; r < 1000; r += 7) {
        int64_t d = sched_backoff_delay_ms(&p, 3, r * 2654435761u);
        cr_assert(d >= 2000 && d <= 4000, "attempt 3 gave %lld", (long long)d);
    }
    bool ok = sched_backoff_next(&due, &p, 0, 10000, 2, 0, 0);
    cr_assert(ok && due == 11000);
    ok = sched_backoff_next(&due, &p, 0, 10000, 2, 5000, 0);
    cr_assert(ok && due == 15000, "Retry-After is honoured");
    ok = sched_backoff_next(&due, &p, 0, 95000, 5, 0, 0);
    cr_assert(!ok, "a retry past the horizon was scheduled");
}

/* A cancel hands back what it removed (so its recipients can be told),
 * leased entries included; a second cancel finds nothing. */
Test(sched, cancel_take_returns_the_removed_entries)
{
    struct fixture f;
    struct sched_entries got = {0}, taken = {0};
    char errstr[256];
    int64_t later = 4102444800000LL; /* 2100 */

    fixture_open(&f, "sched-take");
    add(f.s, "T1/1", "T1", "T", later);
    add(f.s, "T2/1", "T2", "T", 0);
    add(f.s, "U1/1", "U1", "U", later);
    claim(&got, f.s, 10, 60000); /* T2/1 is leased */
    cr_assert(got.n == 1);
    int ret = sched_cancel_take(&taken, f.s, "acct", "T", true, errstr,
                                sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    cr_assert(taken.n == 2, "took %zu of campaign T", taken.n);
    for (size_t i = 0; i < taken.n; i++) {
        bool known = strcmp(taken.v[i].id, "T1/1") == 0 ||
                     strcmp(taken.v[i].id, "T2/1") == 0;
        cr_assert(known, "took %s", taken.v[i].id);
        /* add() stores the id as the payload. */
        cr_assert_str_eq(taken.v[i].payload, taken.v[i].id);
        cr_assert(taken.v[i].payload_len == strlen(taken.v[i].id));
    }
    sched_entries_cleanup(&taken);
    ret = sched_cancel_take(&taken, f.s, "acct", "T", true, errstr,
                            sizeof(errstr));
    cr_assert(ret == 0 && taken.n == 0, "a second cancel took %zu", taken.n);
    sched_entries_cleanup(&taken);
    sched_entries_cleanup(&got);
    fixture_close(&f);
}
