/* tests/standin/test_standin_control.c - the control endpoint: the record,
 * faults (5xx, 429, resets, timeouts, latency, provider errors), rate limits
 * and their violations, forced statuses, stats and a prompt shutdown. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tests/standin/harness.h"
#include "tests/support/support.h"

TestSuite(control, .init = h_start, .fini = h_stop, .timeout = 60);

#define SEND_FORM "API_key=foobar&to=46709771337&msg=hi"

/* Sends one Jojka message; returns the HTTP status, or -1 for no answer. */
static long send_one(long timeout_ms)
{
    struct h_resp r;
    char *headers[] = {"Content-Type: application/x-www-form-urlencoded", NULL};

    if (h_call(&r, "POST", "/websms/api/send", headers, SEND_FORM,
               strlen(SEND_FORM), timeout_ms) != 0)
        return -1;
    long status = r.status;
    h_free(&r);
    return status;
}

Test(control, record_keeps_method_path_headers_and_body)
{
    struct h_resp r;
    char *headers[] = {"Content-Type: text/xml", "X-Probe: 1", NULL};

    cr_assert(send_one(5000) == 200);
    /* A body that is not UTF-8 comes back in base64. */
    h_must(&r, "POST", "/api/1.0/message/create.ashx?user=ituser&hash=secret",
           headers, "\xff\xfe", 2);
    h_free(&r);
    json_t *rec = h_control("GET", "/requests", NULL);
    cr_assert(json_array_size(rec) == 2, "%zu recorded", json_array_size(rec));
    json_t *a = json_array_get(rec, 0);
    cr_assert(strcmp(json_string_value(json_object_get(a, "method")), "POST") ==
              0);
    cr_assert(strcmp(json_string_value(json_object_get(a, "path")),
                     "/websms/api/send") == 0);
    cr_assert(
        strcmp(json_string_value(json_object_get(a, "body")), SEND_FORM) == 0);
    cr_assert(strcmp(json_string_value(json_object_get(a, "account")), "jo") ==
              0);
    cr_assert(json_integer_value(json_object_get(a, "time_ms")) > 0);
    json_t *b = json_array_get(rec, 1);
    cr_assert(strcmp(json_string_value(json_object_get(b, "body_encoding")),
                     "base64") == 0);
    cr_assert(strcmp(json_string_value(json_object_get(b, "body")), "//4=") ==
              0);
    cr_assert(strcmp(json_string_value(json_object_get(
                         json_object_get(b, "headers"), "x-probe")),
                     "1") == 0);
    cr_assert(strcmp(json_string_value(json_object_get(b, "query")),
                     "user=ituser&hash=secret") == 0);
    json_decref(rec);

    json_decref(h_control("DELETE", "/requests", NULL));
    rec = h_control("GET", "/requests", NULL);
    cr_assert(json_array_size(rec) == 0);
    json_decref(rec);
}

Test(control, error_5xx_for_a_count_then_normal)
{
    json_decref(h_control("POST", "/faults",
                          "{\"error_5xx\":1,\"status_5xx\":503,\"count\":2}"));
    cr_assert(send_one(5000) == 503);
    cr_assert(send_one(5000) == 503);
    cr_assert(send_one(5000) == 200);
}

Test(control, throttle_429_carries_retry_after)
{
    struct h_resp r;
    char *headers[] = {"Authorization: Bearer ip1-key",
                       "Content-Type: application/json", NULL};
    char ra[16];

    json_decref(h_control("POST", "/faults",
                          "{\"provider\":\"ip1\",\"throttle_429\":1,"
                          "\"retry_after\":7}"));
    h_must(&r, "GET", "/v2/batches", headers, NULL, 0);
    cr_assert(r.status == 429);
    cr_assert(h_header(&r, "Retry-After", ra, sizeof(ra)) != NULL);
    cr_assert(strcmp(ra, "7") == 0);
    h_free(&r);
    /* Only iP.1 was faulted. */
    cr_assert(send_one(5000) == 200);
}

Test(control, reset_and_timeout_give_no_answer)
{
    json_decref(h_control("POST", "/faults", "{\"reset\":1,\"count\":1}"));
    cr_assert(send_one(5000) == -1);
    json_decref(h_control("POST", "/faults",
                          "{\"timeout\":1,\"hold_ms\":300,\"count\":1}"));
    int64_t t0 = support_now_ms();
    cr_assert(send_one(5000) == -1);
    cr_assert(support_now_ms() - t0 >= 300, "answered early");
    cr_assert(send_one(5000) == 200);
    /* Nothing was sent for the faulted requests. */
    json_t *msgs = h_control("GET", "/messages", NULL);
    cr_assert(json_array_size(msgs) == 1);
    json_decref(msgs);
}

Test(control, latency_holds_answers_without_blocking_others)
{
    json_decref(h_control("POST", "/faults",
                          "{\"provider\":\"jojka\",\"latency\":{\"dist\":"
                          "\"fixed\",\"ms\":300}}"));
    int64_t t0 = support_now_ms();
    cr_assert(send_one(5000) == 200);
    cr_assert(support_now_ms() - t0 >= 300, "no latency");
    /* Control answers are never delayed. */
    t0 = support_now_ms();
    json_decref(h_control("GET", "/stats", NULL));
    cr_assert(support_now_ms() - t0 < 300);
}

Test(control, provider_error_uses_the_provider_own_shape)
{
    struct h_resp r;

    json_decref(h_control("POST", "/faults",
                          "{\"provider\":\"jojka\",\"provider_error\":1}"));
    h_jojka(&r, "/send", SEND_FORM);
    cr_assert(r.status == 200);
    cr_assert(strstr(r.body, "\"error\"") != NULL, "%s", r.body);
    h_free(&r);
    json_decref(h_control("DELETE", "/faults", NULL));
    cr_assert(send_one(5000) == 200);
}

Test(control, rate_limit_records_violations)
{
    json_decref(h_control("POST", "/rate-limit",
                          "{\"account\":\"jo\",\"per_second\":0.5,"
                          "\"burst\":2}"));
    cr_assert(send_one(5000) == 200);
    cr_assert(send_one(5000) == 200);
    cr_assert(send_one(5000) == 429);
    json_t *v = h_control("GET", "/violations", NULL);
    cr_assert(json_array_size(v) == 1);
    cr_assert(strcmp(json_string_value(
                         json_object_get(json_array_get(v, 0), "account")),
                     "jo") == 0);
    json_decref(v);
    /* The other Jojka account is not limited. */
    struct h_resp r;
    h_jojka(&r, "/send", "API_key=other-key&to=46709771337&msg=hi");
    cr_assert(strstr(r.body, "message_id") != NULL, "%s", r.body);
    h_free(&r);

    /* Segments: a 2-part message costs 2. */
    json_decref(h_control("POST", "/rate-limit",
                          "{\"account\":\"jo\",\"per_second\":0.1,"
                          "\"burst\":3,\"unit\":\"segments\","
                          "\"answer\":\"provider\"}"));
    char form[512];
    char text[200];
    memset(text, 'a', 161);
    text[161] = '\0';
    snprintf(form, sizeof(form), "API_key=foobar&to=46709771337&msg=%s", text);
    h_jojka(&r, "/send", form);
    cr_assert(strstr(r.body, "message_id") != NULL, "%s", r.body);
    h_free(&r);
    h_jojka(&r, "/send", form);
    cr_assert(strstr(r.body, "Rate limit exceeded") != NULL, "%s", r.body);
    h_free(&r);
    v = h_control("GET", "/violations", NULL);
    cr_assert(json_array_size(v) == 2);
    json_decref(v);
}

Test(control, forced_status_and_stats)
{
    json_t *b = h_control("GET", "/stats", NULL);
    json_decref(b);
    json_decref(h_control("POST", "/settings", "{\"delivery_ms\":60000}"));
    struct h_resp r;
    h_jojka(&r, "/send", SEND_FORM);
    json_t *root = h_body_json(&r);
    h_free(&r);
    char body[160];
    snprintf(body, sizeof(body), "{\"id\":\"%s\",\"status\":\"ERROR\"}",
             json_string_value(json_object_get(root, "message_id")));
    json_t *m = h_control("POST", "/status", body);
    cr_assert(
        strcmp(json_string_value(json_object_get(m, "state")), "failed") == 0);
    json_decref(m);
    json_decref(root);
    json_t *s = h_control("GET", "/stats", NULL);
    cr_assert(json_integer_value(json_object_get(
                  json_object_get(s, "by_provider"), "jojka")) == 1);
    cr_assert(json_integer_value(json_object_get(s, "messages")) == 1);
    json_decref(s);

    /* Unknown control calls and bad bodies are clear errors. */
    h_must(&r, "POST", "/_standin/faults", NULL, "{\"error_5xx\":2}", 15);
    cr_assert(r.status == 400, "%ld", r.status);
    h_free(&r);
    h_must(&r, "GET", "/_standin/nope", NULL, NULL, 0);
    cr_assert(r.status == 404);
    h_free(&r);
}

Test(control, sigterm_while_answers_are_held_exits_promptly)
{
    json_decref(
        h_control("POST", "/faults", "{\"timeout\":1,\"hold_ms\":60000}"));
    cr_assert(send_one(200) == -1); /* the client gives up; still held */
    /* .fini sends SIGTERM and checks exit 0 within its deadline. */
}
