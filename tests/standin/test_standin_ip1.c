/* tests/standin/test_standin_ip1.c - the iP.1 REST v2 stand-in: batches
 * accepted and readable, ProblemDetails errors, per-number rejections,
 * delivery reports with retries, the black list, senders and incoming SMS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tests/standin/harness.h"
#include "tests/support/support.h"

TestSuite(ip1, .timeout = 60);

#define DOC_BATCH \
    "{\"sender\":\"iP1\",\"recipients\":[\"46701234567\"],\"body\":\"Hej\"}"

static json_t *post_batch(const char *body, long want_status)
{
    struct h_resp r;

    h_ip1(&r, "POST", "/v2/batches", body);
    cr_assert(r.status == want_status, "want %ld, got %ld: %s", want_status,
              r.status, r.body);
    json_t *root = h_body_json(&r);
    h_free(&r);
    return root;
}

/* GETs path and returns the parsed answer. */
static json_t *get(const char *path)
{
    struct h_resp r;

    h_ip1(&r, "GET", path, NULL);
    cr_assert(r.status == 200, "%s: %ld %s", path, r.status, r.body);
    json_t *root = h_body_json(&r);
    h_free(&r);
    return root;
}

/* The latest status code of the first message listed at path. */
static json_int_t latest_code(const char *path)
{
    json_t *l = get(path);
    json_t *st = json_object_get(json_array_get(l, 0), "statuses");
    json_int_t code = json_integer_value(
        json_object_get(json_array_get(st, json_array_size(st) - 1), "code"));

    json_decref(l);
    return code;
}

Test(ip1, doc_batch_is_created_and_its_messages_readable, .init = h_start,
     .fini = h_stop)
{
    struct h_resp r;
    char loc[128];

    h_ip1(&r, "POST", "/v2/batches", DOC_BATCH);
    cr_assert(r.status == 201, "status %ld: %s", r.status, r.body);
    json_t *batch = h_body_json(&r);
    const char *id = json_string_value(json_object_get(batch, "id"));
    cr_assert(id != NULL && strlen(id) == 24, "id %s", id ? id : "(none)");
    cr_assert(h_header(&r, "Location", loc, sizeof(loc)) != NULL);
    cr_assert(strstr(loc, id) != NULL);
    h_free(&r);

    char path[128];
    snprintf(path, sizeof(path), "/v2/batches/%s/messages", id);
    json_t *msgs = get(path);
    cr_assert(json_array_size(msgs) == 1);
    json_t *m = json_array_get(msgs, 0);
    cr_assert(strcmp(json_string_value(json_object_get(m, "recipient")),
                     "46701234567") == 0);
    cr_assert(strcmp(json_string_value(json_object_get(m, "batchId")), id) ==
              0);
    json_decref(msgs);

    /* It is delivered shortly: the latest status becomes 201. */
    bool delivered;
    POLL_UNTIL(delivered, latest_code(path) == 201, 3000);
    cr_assert(delivered);
    json_decref(batch);
}

Test(ip1, errors_are_problem_details, .init = h_start, .fini = h_stop)
{
    struct h_resp r;
    char *noauth[] = {"Content-Type: application/json", NULL};
    char *form[] = {"Authorization: Bearer ip1-key",
                    "Content-Type: application/x-www-form-urlencoded", NULL};

    h_must(&r, "POST", "/v2/batches", noauth, DOC_BATCH, strlen(DOC_BATCH));
    cr_assert(r.status == 401, "no key: %ld", r.status);
    h_free(&r);
    h_must(&r, "POST", "/v2/batches", form, DOC_BATCH, strlen(DOC_BATCH));
    cr_assert(r.status == 415, "form: %ld", r.status);
    h_free(&r);

    json_t *p = post_batch("{\"sender\":", 400);
    cr_assert(json_object_get(json_object_get(p, "errors"), "$") != NULL);
    cr_assert(json_integer_value(json_object_get(p, "status")) == 400);
    json_decref(p);

    p = post_batch("{\"recipients\":[\"46701234567\"],\"body\":\" \"}", 400);
    json_t *errors = json_object_get(p, "errors");
    cr_assert(json_object_get(errors, "sender") != NULL);
    cr_assert(json_object_get(errors, "body") != NULL);
    json_decref(p);

    p = post_batch("{\"sender\":\"ThisIsTooLong\",\"recipients\":"
                   "[\"46701234567\"],\"body\":\"Hej\"}",
                   400);
    cr_assert(json_object_get(json_object_get(p, "errors"), "sender") != NULL);
    json_decref(p);

    p = post_batch("{\"sender\":\"iP1\",\"recipients\":[\"46701234567\"],"
                   "\"body\":\"Hej \xf0\x9f\x98\x80\",\"datacoding\":\"gsm\"}",
                   400);
    json_decref(p);

    p = post_batch("{\"sender\":\"iP1\",\"recipients\":[\"46701234567\"],"
                   "\"body\":\"Hej\",\"deliveryWindows\":null}",
                   400);
    json_decref(p);

    h_ip1(&r, "GET", "/v2/batches/000000000000000000000000", NULL);
    cr_assert(r.status == 404, "unknown batch: %ld", r.status);
    h_free(&r);
}

Test(ip1, bad_and_blacklisted_numbers_become_rejected_messages, .init = h_start,
     .fini = h_stop)
{
    struct h_resp r;

    h_ip1(&r, "PUT", "/v2/blacklist/46701111111", NULL);
    cr_assert(r.status == 200, "PUT blacklist: %ld %s", r.status, r.body);
    h_free(&r);
    json_t *entry = get("/v2/blacklist/46701111111");
    cr_assert(json_object_get(entry, "created") != NULL);
    json_decref(entry);

    json_t *b =
        post_batch("{\"sender\":\"iP1\",\"recipients\":[\"+46701234567\""
                   ",\"46701111111\",\"46702222222\"],\"body\":\"Hej\"}",
                   201);
    char path[128];
    snprintf(path, sizeof(path), "/v2/batches/%s/messages",
             json_string_value(json_object_get(b, "id")));
    json_t *msgs = get(path);
    cr_assert(json_array_size(msgs) == 3);
    for (size_t i = 0; i < 2; i++) {
        json_t *st = json_object_get(json_array_get(msgs, i), "statuses");
        cr_assert(json_integer_value(
                      json_object_get(json_array_get(st, 0), "code")) == 405,
                  "message %zu not rejected", i);
    }
    json_decref(msgs);
    json_decref(b);

    h_ip1(&r, "DELETE", "/v2/blacklist/46701111111", NULL);
    cr_assert(r.status == 200);
    h_free(&r);
    h_ip1(&r, "GET", "/v2/blacklist/46701111111", NULL);
    cr_assert(r.status == 404);
    h_free(&r);
}

Test(ip1, delivery_report_is_posted_and_retried_until_200, .init = h_start,
     .fini = h_stop)
{
    struct receiver *rv = recv_start(RECV_200, 2);
    char body[512];

    snprintf(body, sizeof(body),
             "{\"sender\":\"iP1\",\"recipients\":[\"46701234567\"],"
             "\"body\":\"Hej\",\"deliveryReportUrl\":\"%s\","
             "\"reference\":\"order-1\"}",
             recv_url(rv));
    json_t *b = post_batch(body, 201);
    recv_wait(rv, 3, 5000);
    json_t *call = recv_call(rv, 2);
    json_error_t jerr;
    json_t *dlr =
        json_loads(json_string_value(json_object_get(call, "body")), 0, &jerr);
    cr_assert(dlr != NULL);
    cr_assert(strcmp(json_string_value(json_object_get(dlr, "batchId")),
                     json_string_value(json_object_get(b, "id"))) == 0);
    cr_assert(json_integer_value(json_object_get(dlr, "code")) == 201);
    cr_assert(strcmp(json_string_value(json_object_get(dlr, "reference")),
                     "order-1") == 0);
    cr_assert(strlen(json_string_value(json_object_get(dlr, "id"))) == 24);
    json_decref(dlr);
    json_decref(call);
    json_decref(b);
    recv_stop(rv);
}

Test(ip1, unregistered_sender_is_forbidden, .init = h_start, .fini = h_stop)
{
    struct h_resp r;
    char *headers[] = {"Authorization: Bearer ip1-key-registered",
                       "Content-Type: application/json", NULL};
    const char *bad = "{\"sender\":\"Other\",\"recipients\":[\"46701234567\"],"
                      "\"body\":\"Hej\"}";

    h_must(&r, "POST", "/v2/batches", headers, bad, strlen(bad));
    cr_assert(r.status == 403, "status %ld", r.status);
    h_free(&r);
    h_must(&r, "POST", "/v2/batches", headers, DOC_BATCH, strlen(DOC_BATCH));
    cr_assert(r.status == 201, "registered sender: %ld", r.status);
    h_free(&r);
}

Test(ip1, scheduled_batch_can_be_deleted_once, .init = h_start, .fini = h_stop)
{
    json_t *b =
        post_batch("{\"sender\":\"iP1\",\"recipients\":[\"46701234567\"]"
                   ",\"body\":\"Hej\",\"deliveryWindows\":[{\"opens\":"
                   "\"2099-01-01T08:00:00Z\"}]}",
                   201);
    char path[128];
    struct h_resp r;

    snprintf(path, sizeof(path), "/v2/batches/%s",
             json_string_value(json_object_get(b, "id")));
    h_ip1(&r, "DELETE", path, NULL);
    cr_assert(r.status == 200, "delete: %ld %s", r.status, r.body);
    h_free(&r);
    h_ip1(&r, "DELETE", path, NULL);
    cr_assert(r.status == 400, "second delete: %ld", r.status);
    h_free(&r);
    json_decref(b);
}

Test(ip1, incoming_sms_is_posted_as_a_message_document)
{
    struct receiver *rv = recv_start(RECV_200, 1);
    char *extra[] = {"--callback-inbound-ip1", (char *)recv_url(rv), NULL};

    h_start_args(extra);
    json_decref(h_control("POST", "/inbound",
                          "{\"account\":\"ip\",\"from\":\"46701234567\","
                          "\"text\":\"STOP\"}"));
    recv_wait(rv, 2, 5000);
    json_t *call = recv_call(rv, 1);
    json_error_t jerr;
    json_t *doc =
        json_loads(json_string_value(json_object_get(call, "body")), 0, &jerr);
    cr_assert(doc != NULL);
    cr_assert(strcmp(json_string_value(json_object_get(doc, "direction")),
                     "mo") == 0);
    cr_assert(strcmp(json_string_value(json_object_get(doc, "sender")),
                     "46701234567") == 0);
    cr_assert(strcmp(json_string_value(json_object_get(doc, "recipient")),
                     "46766861000") == 0);
    cr_assert(strcmp(json_string_value(json_object_get(doc, "body")), "STOP") ==
              0);
    json_decref(doc);
    json_decref(call);
    h_stop();
    recv_stop(rv);
}

/* GET /v2/contacts/meta counts the labels and properties of the address
 * book as written. */
Test(ip1, contacts_meta_counts_what_was_written, .init = h_start,
     .fini = h_stop)
{
    struct h_resp r;

    h_ip1(&r, "POST", "/v2/contacts?sync",
          "[{\"properties\":{\"phoneNumber\":\"+46701234567\","
          "\"firstName\":\"Anna\"},\"labels\":[\"vip\",\"Kunder\"]},"
          "{\"properties\":{\"phoneNumber\":\"+46701234568\"},"
          "\"labels\":[\"vip\"]}]");
    cr_assert(r.status == 201, "%ld %s", r.status, r.body);
    h_free(&r);
    json_t *meta = get("/v2/contacts/meta");
    cr_assert(json_integer_value(json_object_get(meta, "totalCount")) == 2);
    json_t *labels = json_object_get(meta, "labels");
    json_int_t vip = 0, kunder = 0;
    size_t i;
    json_t *l;
    json_array_foreach(labels, i, l)
    {
        const char *name = json_string_value(json_object_get(l, "labelName"));
        json_int_t n = json_integer_value(json_object_get(l, "usageCount"));
        if (strcmp(name, "vip") == 0)
            vip = n;
        else if (strcmp(name, "Kunder") == 0)
            kunder = n;
    }
    cr_assert(vip == 2 && kunder == 1, "vip %lld, Kunder %lld", (long long)vip,
              (long long)kunder);
    json_decref(meta);
}
