/* tests/worker/test_events.c - the status and reply events, written by
 * hand in worker/events.c, read back as JSON: every field and every escape
 * as jansson would have written it. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "worker/events.h"

static json_t *parse(const char *s, size_t len)
{
    json_error_t err;
    json_t *v = json_loadb(s, len, 0, &err);

    cr_assert_not_null(v, "not JSON (%s): %s", err.text, s);
    cr_assert_eq(strlen(s), len);
    return v;
}

static const char *str(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);

    cr_assert(json_is_string(v), "%s is not a string", k);
    return json_string_value(v);
}

Test(events, status_fields_and_nulls)
{
    struct status_event ev = {
        .job_id = "j-1",
        .type = "send",
        .account = "shop",
        .provider = "jojka",
        .recipient = "46701234567",
        .state = STATE_SUBMITTED,
        .provider_message_id = "",
        .segments = 2,
        .attempt = 0,
    };
    size_t len;
    char *s = event_status_json(&ev, &len);
    json_t *o = parse(s, len);

    cr_assert_str_eq(str(o, "job_id"), "j-1");
    cr_assert_str_eq(str(o, "state"), "submitted");
    cr_assert_str_eq(str(o, "recipient"), "46701234567");
    cr_assert(json_is_null(json_object_get(o, "provider_message_id")));
    cr_assert(json_is_null(json_object_get(o, "provider_status")));
    cr_assert(json_is_null(json_object_get(o, "attempt")));
    cr_assert(json_is_null(json_object_get(o, "reference")));
    cr_assert(json_is_null(json_object_get(o, "error")));
    cr_assert_eq(json_integer_value(json_object_get(o, "segments")), 2);
    const char *at = str(o, "at");
    cr_assert_eq(strlen(at), 24, "at: %s", at); /* 2026-12-02T02:30:00.123Z */
    cr_assert_eq(at[10], 'T');
    cr_assert_eq(at[23], 'Z');
    cr_assert_eq(json_object_size(o), 13);
    /* Compact, in the contract's field order, as before. */
    cr_assert(strncmp(s, "{\"job_id\":\"j-1\",\"type\":\"send\",", 30) == 0,
              "%s", s);
    json_decref(o);
    free(s);
}

Test(events, escapes_are_read_back)
{
    const char *hostile = "q\"uote\\back/slash\n\r\t\b\f\x01\x1f end åäö €";
    struct status_event ev = {
        .job_id = hostile,
        .state = STATE_FAILED,
        .error_code = "bad_answer",
        .error_message = hostile,
    };
    size_t len;
    char *s = event_status_json(&ev, &len);
    json_t *o = parse(s, len);

    cr_assert_str_eq(str(o, "job_id"), hostile);
    const json_t *e = json_object_get(o, "error");
    cr_assert_str_eq(str(e, "code"), "bad_answer");
    cr_assert_str_eq(str(e, "message"), hostile);
    cr_assert_not_null(strstr(s, "\\u0001"), "%s", s);
    cr_assert_not_null(strstr(s, "back/slash"), "no \\/ escape: %s", s);
    json_decref(o);
    free(s);
}

Test(events, bad_utf8_becomes_replacement_characters)
{
    /* Latin-1 "Ogiltig mottagare: å" from a provider, an overlong '/', a
     * lone continuation byte, a surrogate and a cut sequence. */
    const char *latin1 = "Ogiltig mottagare: \xe5";
    const char *bad[] = {latin1, "a\xc0\xafz", "\x80", "\xed\xa0\x80",
                         "end\xe2\x82"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct status_event ev = {.job_id = "j",
                                  .state = STATE_FAILED,
                                  .error_code = "x",
                                  .error_message = bad[i]};
        size_t len;
        char *s = event_status_json(&ev, &len);
        json_t *o = parse(s, len); /* jansson refuses bad UTF-8 */
        const char *m = str(json_object_get(o, "error"), "message");
        cr_assert_not_null(strstr(m, "\xef\xbf\xbd"), "case %zu: %s", i, m);
        json_decref(o);
        free(s);
    }
}

Test(events, reply)
{
    struct inbound_sms r = {0};
    snprintf(r.from, sizeof(r.from), "46701234567");
    snprintf(r.to, sizeof(r.to), "72456");
    r.text = (char *)"STOPP \"nu\"";
    size_t len;
    char *s = event_reply_json("shop", "ip1", &r, &len);
    json_t *o = parse(s, len);

    cr_assert_str_eq(str(o, "account"), "shop");
    cr_assert_str_eq(str(o, "from"), "46701234567");
    cr_assert_str_eq(str(o, "text"), "STOPP \"nu\"");
    cr_assert_eq(strlen(str(o, "received_at")), 24);
    cr_assert(json_is_null(json_object_get(o, "provider_message_id")));
    json_decref(o);
    free(s);
}
