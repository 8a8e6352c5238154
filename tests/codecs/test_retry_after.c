/* tests/codecs/test_retry_after.c - Retry-After as delta-seconds and as an
 * HTTP date (RFC 7231 §7.1.3), turned into a delay from the answer's time. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "codecs/codec.h"

/* 1994-11-06T08:49:37Z, RFC 7231's example date, in Unix ms. */
#define EXAMPLE_MS 784111777000LL

Test(retry_after, http_date_forms_parse)
{
    static const char *const forms[] = {
        "Sun, 06 Nov 1994 08:49:37 GMT",  /* IMF-fixdate */
        "Sunday, 06-Nov-94 08:49:37 GMT", /* RFC 850 */
        "Sun Nov  6 08:49:37 1994",       /* asctime */
    };
    for (size_t i = 0; i < 3; i++) {
        int64_t ms = 0;
        int ret = http_date_parse(&ms, forms[i]);
        cr_assert(eq(int, ret, 0), "%s not parsed", forms[i]);
        cr_assert(eq(i64, ms, EXAMPLE_MS), "%s", forms[i]);
    }
    int64_t ms = 0;
    static const char *const bad[] = {"",
                                      "soon",
                                      "Sun, 06 Nov 1994 08:49:37 CET",
                                      "Sun, 06 Foo 1994 08:49:37 GMT",
                                      "Sun, 06 Nov 1994 25:49:37 GMT",
                                      "Sun, 06 Nov 1994 08:49:37 GMT trailing"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert(eq(int, http_date_parse(&ms, bad[i]), -1), "%s accepted",
                  bad[i]);
}

Test(retry_after, http_date_becomes_a_delay)
{
    struct call_result res = {0};
    struct http_response resp = {.status = 503,
                                 .retry_after = "Sun, 06 Nov 1994 08:50:07 GMT",
                                 .now_ms = EXAMPLE_MS};

    bool set = call_result_from_status(&res, &resp);
    cr_assert(set);
    cr_assert(eq(int, (int)res.outcome, (int)CALL_RETRY));
    cr_assert(eq(int, res.retry_after_ms, 30000));
    call_result_cleanup(&res);

    /* A date in the past: retry at once (1 ms, not "no hint"). */
    resp.now_ms = EXAMPLE_MS + 60000;
    set = call_result_from_status(&res, &resp);
    cr_assert(set);
    cr_assert(eq(int, res.retry_after_ms, 1));
    call_result_cleanup(&res);

    /* Without a clock the date cannot be used: no hint. */
    resp.now_ms = 0;
    set = call_result_from_status(&res, &resp);
    cr_assert(set);
    cr_assert(eq(int, res.retry_after_ms, 0));
    call_result_cleanup(&res);
}

Test(retry_after, delta_seconds_still_read)
{
    struct call_result res = {0};
    struct http_response resp = {
        .status = 429, .retry_after = "120", .now_ms = EXAMPLE_MS};

    bool set = call_result_from_status(&res, &resp);
    cr_assert(set);
    cr_assert(eq(int, res.retry_after_ms, 120000));
    call_result_cleanup(&res);
}
