/* tests/ratelimit/test_optout.c - the opt-out set and the send-once begin
 * script's check of it, against a real redis-server. */
#include <string.h>

#include <criterion/criterion.h>

#include "ratelimit/marker.h"
#include "ratelimit/optout.h"
#include "tests/ratelimit/rltest.h"
#include "tests/support/support.h"

/* Numbers on the set come back MARKER_OPTED_OUT and are not marked; the
 * rest of the job is marked as usual; taking a number off lets it be sent;
 * a number done before keeps its done answer. */
Test(optout, begin_answers_opted_out_and_marks_the_rest)
{
    char prefix[64], errstr[256];
    struct marker *m;
    bool on;
    size_t n;

    rltest_prefix(prefix, sizeof(prefix), "optout-begin");
    struct rconn *rc = rltest_connect(prefix);
    int ret = marker_new(&m, rc, errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);

    const char *stop[] = {"46702", "46703"};
    ret = optout_add(rc, "acct", stop, 2, &n, errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    cr_assert(n == 2, "added %zu", n);
    ret = optout_add(rc, "acct", stop, 2, &n, errstr, sizeof(errstr));
    cr_assert(ret == 0 && n == 0, "a repeat adds nothing (%zu)", n);
    ret = optout_has(rc, "acct", "46702", &on, errstr, sizeof(errstr));
    cr_assert(ret == 0 && on, "46702 is on the set");
    ret = optout_has(rc, "other", "46702", &on, errstr, sizeof(errstr));
    cr_assert(ret == 0 && !on, "the set is per account");

    struct marker_begin_item items[3] = {
        {.recipient = "46701"}, {.recipient = "46702"}, {.recipient = "46703"}};
    ret = marker_begin(m, "acct", "job-1", NULL, items, 3, 60000, errstr,
                       sizeof(errstr));
    cr_assert(ret == 0, "begin: %s", errstr);
    cr_assert(items[0].result == MARKER_NEW, "46701: %d", items[0].result);
    cr_assert(items[1].result == MARKER_OPTED_OUT, "46702: %d",
              items[1].result);
    cr_assert(items[2].result == MARKER_OPTED_OUT, "46703: %d",
              items[2].result);
    marker_begin_cleanup(items, 3);

    /* 46701 is done; then it opts out too: done stays done. */
    static const char ev[] = "{\"state\":\"submitted\"}";
    struct marker_update_item done = {.recipient = "46701",
                                      .op = MARKER_OP_DONE,
                                      .outcome = ev,
                                      .outcome_len = sizeof(ev) - 1,
                                      .state = "submitted"};
    ret = marker_update(m, "acct", "job-1", &done, 1, errstr, sizeof(errstr));
    cr_assert(ret == 0, "update: %s", errstr);
    const char *first[] = {"46701"};
    ret = optout_add(rc, "acct", first, 1, NULL, errstr, sizeof(errstr));
    cr_assert(ret == 0, "%s", errstr);
    const char *back[] = {"46703"};
    ret = optout_remove(rc, "acct", back, 1, &n, errstr, sizeof(errstr));
    cr_assert(ret == 0 && n == 1, "removed %zu", n);
    ret = optout_count(rc, "acct", &n, errstr, sizeof(errstr));
    cr_assert(ret == 0 && n == 2, "the set holds %zu", n);

    ret = marker_begin(m, "acct", "job-1", NULL, items, 3, 60000, errstr,
                       sizeof(errstr));
    cr_assert(ret == 0, "begin: %s", errstr);
    cr_assert(items[0].result == MARKER_DONE, "46701: %d", items[0].result);
    cr_assert(items[1].result == MARKER_OPTED_OUT, "46702: %d",
              items[1].result);
    cr_assert(items[2].result == MARKER_NEW, "46703 was taken off: %d",
              items[2].result);
    marker_begin_cleanup(items, 3);
    marker_free(m);
    rconn_free(rc);
}
