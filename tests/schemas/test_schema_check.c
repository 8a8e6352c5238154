/* tests/schemas/test_schema_check.c - schema_check(), the hook the
 * end-to-end tests feed the events they read back from Kafka. */
#include <criterion/criterion.h>
#include <jansson.h>

#include "tests/support/schema.h"

static json_t *status_event(const char *state, const char *error_code)
{
    json_t *e = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:n, s:n, s:i, s:i, s:n, s:s}",
        "job_id", "order-1", "type", "send", "account", "shop-jojka",
        "provider", "jojka", "recipient", "46701234567", "state", state,
        "provider_message_id", "provider_status", "segments", 1, "attempt", 1,
        "reference", "at", "2026-11-23T10:15:02.123Z");
    json_object_set_new(
        e, "error",
        error_code != NULL
            ? json_pack("{s:s, s:s}", "code", error_code, "message", "why")
            : json_null());
    return e;
}

Test(schema_check, valid_events_pass)
{
    json_t *events = json_array();

    json_array_append_new(events, status_event("submitted", NULL));
    json_array_append_new(events, status_event("failed", "no_answer"));
    cr_assert_eq(schema_check("status", events), 0);
    json_decref(events);
}

Test(schema_check, an_unknown_state_fails)
{
    json_t *events = json_array();

    json_array_append_new(events, status_event("submitted", NULL));
    json_array_append_new(events, status_event("sent", NULL));
    cr_assert_eq(schema_check("status", events), 1);
    json_decref(events);
}

Test(schema_check, a_failure_without_an_error_fails)
{
    json_t *events = json_array();

    json_array_append_new(events, status_event("failed", NULL));
    cr_assert_eq(schema_check("status", events), 1);
    json_decref(events);
}

Test(schema_check, dlq_headers_and_bad_names)
{
    json_t *maps =
        json_pack("[{s:s, s:s, s:s, s:s}]", "kurir-error", "missing \"to\"",
                  "kurir-source-topic", "sms.send", "kurir-source-partition",
                  "0", "kurir-source-offset", "12");

    cr_assert_eq(schema_check("dlq-headers", maps), 0);
    cr_assert_eq(schema_check("no-such-schema", maps), -1);
    json_decref(maps);
}
