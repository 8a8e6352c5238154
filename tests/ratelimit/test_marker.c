/* tests/ratelimit/test_marker.c - send-once markers and forward-only
 * recipient states against a real redis-server. */
#include <string.h>

#include <criterion/criterion.h>

#include "ratelimit/marker.h"
#include "ratelimit/optout.h"
#include "ratelimit/rargv.h"
#include "ratelimit/sched.h"
#include "tests/ratelimit/rltest.h"
#include "tests/support/support.h"

/* One replica: its own connection and marker store. */
struct replica {
    struct rconn *rc;
    struct marker *m;
};

static void replica_open(struct replica *r, const char *prefix)
{
    char errstr[256];

    r->rc = rltest_connect(prefix);
    int ret = marker_new(&r->m, r->rc, errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
}

static void replica_close(struct replica *r)
{
    marker_free(r->m);
    rconn_free(r->rc);
}

static void begin(struct replica *r, const char *job,
                  struct marker_begin_item *items, size_t n, int64_t stale_ms)
{
    char errstr[256];

    int ret = marker_begin(r->m, "acct", job, NULL, items, n, stale_ms, errstr,
                           sizeof(errstr));
    cr_assert(ret == 0, "begin: %s", errstr);
}

static void update(struct replica *r, const char *job,
                   struct marker_update_item *items, size_t n)
{
    char errstr[256];

    int ret =
        marker_update(r->m, "acct", job, items, n, errstr, sizeof(errstr));
    cr_assert(ret == 0, "update: %s", errstr);
}

/* A replica sends to three recipients: two accepted, one retryable failure.
 * The job is redelivered to another replica: only the failed one is sent
 * again, the others come back with their recorded outcome. */
Test(marker, redelivered_sent_job_is_not_resent)
{
    char prefix[64];
    struct replica a, b;
    struct marker_begin_item items[3] = {
        {.recipient = "46701"}, {.recipient = "46702"}, {.recipient = "46703"}};
    static const char ok_event[] = "{\"state\":\"submitted\"}\0bin";

    rltest_prefix(prefix, sizeof(prefix), "marker-resend");
    replica_open(&a, prefix);
    replica_open(&b, prefix);

    begin(&a, "job-1", items, 3, 60000);
    for (int i = 0; i < 3; i++)
        cr_assert(items[i].result == MARKER_NEW, "recipient %d", i);
    struct marker_update_item done[3] = {
        {.recipient = "46701",
         .op = MARKER_OP_DONE,
         .outcome = ok_event,
         .outcome_len = sizeof(ok_event),
         .state = "submitted"},
        {.recipient = "46702",
         .op = MARKER_OP_DONE,
         .outcome = ok_event,
         .outcome_len = sizeof(ok_event),
         .state = "submitted"},
        {.recipient = "46703", .op = MARKER_OP_CLEAR, .state = "retrying"},
    };
    update(&a, "job-1", done, 3);
    cr_assert(done[0].advanced && done[1].advanced && done[2].advanced);

    begin(&b, "job-1", items, 3, 60000);
    cr_assert(items[0].result == MARKER_DONE);
    cr_assert(items[1].result == MARKER_DONE);
    cr_assert(items[2].result == MARKER_NEW, "the retry may be sent");
    cr_assert(items[0].outcome_len == sizeof(ok_event) &&
                  memcmp(items[0].outcome, ok_event, sizeof(ok_event)) == 0,
              "recorded outcome not returned intact");
    marker_begin_cleanup(items, 3);
    cr_assert(items[0].outcome == NULL);

    rltest_cleanup(a.rc);
    replica_close(&a);
    replica_close(&b);
}

/* While a send is in flight elsewhere it is not sent again; once the marker
 * is older than stale_ms its replica is presumed dead and the marker is
 * taken over (the documented double-send window). */
Test(marker, in_flight_is_busy_until_stale)
{
    char prefix[64];
    struct replica a, b;
    struct marker_begin_item item = {.recipient = "46701"};
    bool ok;

    rltest_prefix(prefix, sizeof(prefix), "marker-stale");
    replica_open(&a, prefix);
    replica_open(&b, prefix);
    begin(&a, "job-2", &item, 1, 300);
    cr_assert(item.result == MARKER_NEW);
    begin(&b, "job-2", &item, 1, 300);
    cr_assert(item.result == MARKER_BUSY, "two replicas sending at once");
    POLL_UNTIL(ok,
               (begin(&b, "job-2", &item, 1, 300), item.result == MARKER_STALE),
               3000);
    cr_assert(ok, "a stale in-flight marker was never taken over");
    /* b now holds it: a third look is busy again. */
    begin(&a, "job-2", &item, 1, 300);
    cr_assert(item.result == MARKER_BUSY);
    rltest_cleanup(a.rc);
    replica_close(&a);
    replica_close(&b);
}

Test(marker, cancelled_job_is_not_sent_but_done_is_reported)
{
    char prefix[64];
    char errstr[256];
    struct replica a;
    struct sched *s = NULL;
    size_t removed;
    struct marker_begin_item items[2] = {{.recipient = "46701"},
                                         {.recipient = "46702"}};
    struct marker_update_item sent = {.recipient = "46701",
                                      .op = MARKER_OP_DONE,
                                      .outcome = "x",
                                      .outcome_len = 1};

    rltest_prefix(prefix, sizeof(prefix), "marker-cancel");
    replica_open(&a, prefix);
    begin(&a, "job-3", items, 1, 60000);
    update(&a, "job-3", &sent, 1);
    int ret = sched_new(&s, a.rc, errstr, sizeof(errstr));
    cr_assert(ret == 0);
    ret = sched_cancel(&removed, s, "acct", "camp-1", true, errstr,
                       sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);

    ret = marker_begin(a.m, "acct", "job-3", "camp-1", items, 2, 60000, errstr,
                       sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    cr_assert(items[0].result == MARKER_DONE);
    cr_assert(items[1].result == MARKER_CANCELLED);
    marker_begin_cleanup(items, 2);
    sched_free(s);
    rltest_cleanup(a.rc);
    replica_close(&a);
}

static bool advance(struct replica *r, const char *recipient, const char *state)
{
    struct marker_update_item it = {
        .recipient = recipient, .op = MARKER_OP_KEEP, .state = state};

    update(r, "job-4", &it, 1);
    return it.advanced;
}

Test(marker, states_only_move_forward)
{
    char prefix[64];
    char errstr[256];
    struct replica a;

    rltest_prefix(prefix, sizeof(prefix), "marker-state");
    replica_open(&a, prefix);
    cr_assert(advance(&a, "1", "accepted"));
    cr_assert(advance(&a, "1", "retrying"));
    cr_assert(advance(&a, "1", "retrying"), "a new attempt is an event");
    cr_assert(!advance(&a, "1", "scheduled"), "moved backwards");
    cr_assert(advance(&a, "1", "submitted"), "a retry that got through");
    cr_assert(!advance(&a, "1", "submitted"), "repeated a state");
    cr_assert(!advance(&a, "1", "retrying"), "retrying after submitted");
    cr_assert(advance(&a, "1", "delivered"));
    struct marker_update_item again = {
        .recipient = "1", .op = MARKER_OP_KEEP, .state = "delivered"};
    update(&a, "job-4", &again, 1);
    cr_assert(!again.advanced && again.repeated,
              "the same news again is a repeat");
    struct marker_update_item late = {
        .recipient = "1", .op = MARKER_OP_KEEP, .state = "submitted"};
    update(&a, "job-4", &late, 1);
    cr_assert(!late.advanced && !late.repeated, "late news is neither");
    cr_assert(!advance(&a, "1", "failed"), "final followed by final");
    cr_assert(!advance(&a, "1", "unknown"), "final followed");
    cr_assert(advance(&a, "2", "rejected"), "first state may be final");
    cr_assert(!advance(&a, "2", "accepted"));

    struct marker_update_item bad = {.recipient = "1", .state = "lost"};
    int ret =
        marker_update(a.m, "acct", "job-4", &bad, 1, errstr, sizeof(errstr));
    cr_assert(ret == -1 && strstr(errstr, "lost") != NULL, "%s", errstr);
    cr_assert(marker_state_rank("cancelled") == 6);
    cr_assert(marker_state_rank("nope") == 0);

    /* Everything written expires (7 days). */
    char key[RCONN_KEY_MAX];
    rconn_key(key, sizeof(key), a.rc, "acct", "mk", "job-4", errstr,
              sizeof(errstr));
    const char *pttl[] = {"PTTL", key};
    int64_t ttl = rltest_int(a.rc, 2, pttl);
    cr_assert(ttl > MARKER_TTL_MS - 60000 && ttl <= MARKER_TTL_MS, "ttl %lld",
              (long long)ttl);
    rltest_cleanup(a.rc);
    replica_close(&a);
}

/* Runs one batched update of `job` (what the worker's turn sends, with the
 * fields marker_update() leaves out). */
static void update_job(struct replica *r, struct marker_update_job *job)
{
    struct rargv args = {0};
    redisReply *reply = NULL;
    char errstr[256];

    int ret = marker_update_build(&args, rconn_prefix(r->rc), "acct", job, 1,
                                  errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    ret = rconn_eval(&reply, r->rc, marker_update_script(),
                     marker_update_nkeys(1), (int)args.n, args.v, args.len,
                     false, errstr, sizeof(errstr));
    cr_assert(ret == 0, "update: %s", errstr);
    ret = marker_update_read(reply, job, 1, errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    freeReplyObject(reply);
    rargv_cleanup(&args);
}

/* One update of recipient "1" of job-5 (type "send") recorded by
 * `recorder` (NULL: none); returns what the script answered for it. */
static struct marker_update_item update_by(struct replica *r, enum marker_op op,
                                           const char *state,
                                           const char *recorder)
{
    struct marker_update_item it = {.recipient = "1",
                                    .op = op,
                                    .outcome = "{}",
                                    .outcome_len = 2,
                                    .state = state};
    struct marker_update_job job = {"job-5", "send", &it,     1,
                                    false,   NULL,   recorder};

    update_job(r, &job);
    return it;
}

/* A gated update of recipient "1" of job-5. */
static struct marker_update_item gated(struct replica *r, const char *state)
{
    return update_by(r, MARKER_OP_GATED, state, NULL);
}

/* A done item names its recorder in the job's hash; other updates leave
 * it, so a redelivery can ask whether that replica still lives. */
Test(marker, done_names_its_recorder)
{
    char prefix[64], key[RCONN_KEY_MAX], errstr[256];
    struct replica a;

    rltest_prefix(prefix, sizeof(prefix), "marker-rec");
    replica_open(&a, prefix);
    rconn_key(key, sizeof(key), a.rc, "acct", "mk", "job-5", errstr,
              sizeof(errstr));
    const char *has[] = {"HEXISTS", key, MARKER_RECORDER};
    update_by(&a, MARKER_OP_KEEP, "accepted", "replica-a");
    cr_assert(rltest_int(a.rc, 3, has) == 0, "nothing done yet");
    update_by(&a, MARKER_OP_DONE, "submitted", "replica-a");
    cr_assert(rltest_int(a.rc, 3, has) == 1, "a done item names it");
    const char *eqa[] = {"EVAL",
                         "return redis.call('HGET', KEYS[1], ARGV[1]) == "
                         "ARGV[2] and 1 or 0",
                         "1",
                         key,
                         MARKER_RECORDER,
                         "replica-a"};
    cr_assert(rltest_int(a.rc, 6, eqa) == 1, "named replica-a");
    update_by(&a, MARKER_OP_GATED, "delivered", "replica-b");
    cr_assert(rltest_int(a.rc, 6, eqa) == 1, "a gated item is no record");
    rltest_cleanup(a.rc);
    replica_close(&a);
}

/* News from elsewhere (a callback, a redelivered job) goes by the
 * published set: it neither overtakes nor repeats a `submitted` that is
 * not on Kafka yet, and does not repeat one that is. */
Test(marker, gated_news_waits_for_what_is_published)
{
    char prefix[64];
    char errstr[256];
    struct replica a;

    rltest_prefix(prefix, sizeof(prefix), "marker-gate");
    replica_open(&a, prefix);
    struct marker_update_item g = gated(&a, "delivered");
    cr_assert(g.early && !g.advanced, "a report before any state recorded");
    struct marker_update_item it = {
        .recipient = "1", .op = MARKER_OP_KEEP, .state = "submitted"};
    update(&a, "job-5", &it, 1);
    cr_assert(it.advanced);

    g = gated(&a, "delivered");
    cr_assert(g.early && !g.advanced && !g.repeated,
              "a report overtook a submitted not on Kafka");
    g = gated(&a, "submitted");
    cr_assert(g.early && !g.repeated,
              "not yet published: its owner may still be publishing it");

    char key[RCONN_KEY_MAX];
    rconn_key(key, sizeof(key), a.rc, "acct", MARKER_PUBLISHED_SET, NULL,
              errstr, sizeof(errstr));
    const char *zadd[] = {"ZADD", key, "1", "job-5\t1\tsend"};
    rltest_int(a.rc, 4, zadd);
    g = gated(&a, "submitted");
    cr_assert(!g.repeated && !g.advanced && !g.early,
              "published: not said again");
    g = gated(&a, "delivered");
    cr_assert(g.advanced && !g.early, "published: the report goes on");
    g = gated(&a, "delivered");
    cr_assert(g.repeated, "a final state is not gated");
    rltest_cleanup(a.rc);
    replica_close(&a);
}

/* Runs one batched begin over `jobs` (what the worker's turn sends). */
static void begin_batch(struct replica *r, struct marker_begin_job *jobs,
                        size_t njobs)
{
    char errstr[256];
    struct rargv args = {0};
    redisReply *reply = NULL;

    int ret = marker_begin_build(&args, rconn_prefix(r->rc), "acct", jobs,
                                 njobs, 60000, errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    ret = rconn_eval(&reply, r->rc, marker_begin_script(),
                     marker_begin_nkeys(njobs), (int)args.n, args.v, args.len,
                     false, errstr, sizeof(errstr));
    cr_assert(ret == 0, "begin: %s", errstr);
    ret = marker_begin_read(reply, jobs, njobs, errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    freeReplyObject(reply);
    rargv_cleanup(&args);
}

/* One batch over jobs of which one is cancelled and one recipient opted
 * out: the batch asks cancels once for all, so each job must still get its
 * own answer; what is neither is marked (and only that). */
Test(marker, batch_answers_each_job_for_cancels_and_opt_outs)
{
    char prefix[64], errstr[256], key[RCONN_KEY_MAX];
    struct replica a;
    struct sched *s = NULL;
    size_t removed;
    const char *stop[] = {"46709"};

    rltest_prefix(prefix, sizeof(prefix), "marker-batch");
    replica_open(&a, prefix);
    cr_assert(sched_new(&s, a.rc, errstr, sizeof(errstr)) == 0);
    cr_assert(sched_cancel(&removed, s, "acct", "camp-x", true, errstr,
                           sizeof(errstr)) == 0,
              "%s", errstr);
    cr_assert(optout_add(a.rc, "acct", stop, 1, NULL, errstr, sizeof(errstr)) ==
                  0,
              "%s", errstr);

    struct marker_begin_item i1[2] = {{.recipient = "46701"},
                                      {.recipient = "46709"}};
    struct marker_begin_item i2[1] = {{.recipient = "46702"}};
    struct marker_begin_item i3[1] = {{.recipient = "46703"}};
    struct marker_begin_job jobs[3] = {
        {"job-b1", NULL, i1, 2, NULL, "r/1"},
        {"job-b2", "camp-x", i2, 1, NULL, "r/2"},
        {"job-b3", NULL, i3, 1, "{\"h\":1}", "r/3"},
    };
    begin_batch(&a, jobs, 3);
    cr_assert(i1[0].result == MARKER_NEW);
    cr_assert(i1[1].result == MARKER_OPTED_OUT);
    cr_assert(i2[0].result == MARKER_CANCELLED);
    cr_assert(i3[0].result == MARKER_NEW);

    rconn_key(key, sizeof(key), a.rc, "acct", "mk", "job-b1", errstr,
              sizeof(errstr));
    const char *opted[] = {"HEXISTS", key, "46709"};
    cr_assert(rltest_int(a.rc, 3, opted) == 0, "an opted-out number marked");
    const char *pttl1[] = {"PTTL", key};
    cr_assert(rltest_int(a.rc, 2, pttl1) > MARKER_TTL_MS - 60000,
              "a marked hash without its TTL");
    rconn_key(key, sizeof(key), a.rc, "acct", "mk", "job-b2", errstr,
              sizeof(errstr));
    const char *cxd[] = {"EXISTS", key};
    cr_assert(rltest_int(a.rc, 2, cxd) == 0, "a cancelled job marked");
    rconn_key(key, sizeof(key), a.rc, "acct", "mk", "job-b3", errstr,
              sizeof(errstr));
    const char *hdr[] = {"HEXISTS", key, "h:"};
    cr_assert(rltest_int(a.rc, 3, hdr) == 1, "the headers not kept");

    /* Begun again by its own unit: new; by another: busy. */
    begin_batch(&a, jobs, 3);
    cr_assert(i1[0].result == MARKER_NEW && i3[0].result == MARKER_NEW);
    jobs[0].owner = "r/9";
    begin_batch(&a, jobs, 1);
    cr_assert(i1[0].result == MARKER_BUSY);
    cr_assert(i1[1].result == MARKER_OPTED_OUT);
    sched_free(s);
    rltest_cleanup(a.rc);
    replica_close(&a);
}

/* A unit's outcome soon after its own begin leaves the hash's TTL (the
 * begin has just set it); any other write renews it. */
Test(marker, outcome_right_after_begin_keeps_the_ttl)
{
    char prefix[64], errstr[256], key[RCONN_KEY_MAX];
    struct replica a;

    rltest_prefix(prefix, sizeof(prefix), "marker-ttl");
    replica_open(&a, prefix);
    struct marker_begin_item item = {.recipient = "46701"};
    begin(&a, "job-t", &item, 1, 60000);
    cr_assert(item.result == MARKER_NEW);
    rconn_key(key, sizeof(key), a.rc, "acct", "mk", "job-t", errstr,
              sizeof(errstr));
    const char *shorten[] = {"PEXPIRE", key, "100000"};
    cr_assert(rltest_int(a.rc, 3, shorten) == 1);
    const char *pttl[] = {"PTTL", key};

    struct marker_update_item done = {.recipient = "46701",
                                      .op = MARKER_OP_DONE,
                                      .outcome = "x",
                                      .outcome_len = 1,
                                      .state = "submitted"};
    struct marker_update_job job = {"job-t", NULL, &done, 1,
                                    false,   NULL, NULL,  true};
    update_job(&a, &job);
    cr_assert(done.advanced);
    int64_t left = rltest_int(a.rc, 2, pttl);
    cr_assert(left > 0 && left <= 100000, "the TTL was renewed: %lld",
              (long long)left);

    struct marker_update_item later = {
        .recipient = "46701", .op = MARKER_OP_KEEP, .state = "delivered"};
    update(&a, "job-t", &later, 1);
    cr_assert(later.advanced);
    cr_assert(rltest_int(a.rc, 2, pttl) > MARKER_TTL_MS - 60000,
              "a later write did not renew the TTL");
    rltest_cleanup(a.rc);
    replica_close(&a);
}
