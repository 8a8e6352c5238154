/* tests/standin/test_standin_jojka.c - the Jojka stand-in accepts each
 * documented example body, answers {"error": [...]} to bad ones, and makes
 * statuses and replies visible to the polling endpoints. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tests/standin/harness.h"
#include "tests/support/support.h"

TestSuite(jojka, .init = h_start, .fini = h_stop, .timeout = 60);

/* POSTs form to endpoint and returns the parsed JSON answer (status 200). */
static json_t *call(const char *endpoint, const char *form)
{
    struct h_resp r;

    h_jojka(&r, endpoint, form);
    cr_assert(r.status == 200, "%s: %ld %s", endpoint, r.status, r.body);
    json_t *root = h_body_json(&r);
    h_free(&r);
    return root;
}

/* Asserts the answer is {"error": [...]} and frees it. */
static void expect_error(json_t *root, const char *what)
{
    json_t *err = json_object_get(root, "error");

    cr_assert(json_is_array(err) && json_array_size(err) == 1, "%s: no error",
              what);
    json_decref(root);
}

static const char *str(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));

    cr_assert(v != NULL, "no %s", key);
    return v;
}

/* Returns the status /get_msg_status gives for id (static buffer). */
static const char *msg_status(const char *id)
{
    static char status[32];
    char form[128];

    snprintf(form, sizeof(form), "API_key=foobar&msg_id=%s", id);
    json_t *root = call("/get_msg_status", form);
    snprintf(status, sizeof(status), "%s",
             json_string_value(json_array_get(root, 0)));
    json_decref(root);
    return status;
}

Test(jojka, send_doc_example_is_delivered)
{
    json_t *root = call("/send", "API_key=foobar&to=46709771337"
                                 "&msg=hello%20world");
    char id[64];

    snprintf(id, sizeof(id), "%s", str(root, "message_id"));
    json_decref(root);
    bool ok;
    POLL_UNTIL(ok, strcmp(msg_status(id), "DELIVERED") == 0, 3000);
    cr_assert(ok, "status %s", msg_status(id));
}

Test(jojka, unknown_or_missing_key_is_invalid_api_key)
{
    json_t *root = call("/send", "API_key=nope&to=46709771337&msg=hi");
    cr_assert(strcmp(json_string_value(
                         json_array_get(json_object_get(root, "error"), 0)),
                     "Invalid API key") == 0);
    json_decref(root);

    /* Without a form Content-Type (JSDK's omission) nothing is read. */
    struct h_resp r;
    char *headers[] = {"Content-Type:", NULL};
    const char *form = "API_key=foobar&to=46709771337&msg=hi";
    h_must(&r, "POST", "/websms/api/send", headers, form, strlen(form));
    cr_assert(strstr(r.body, "Invalid API key") != NULL, "%s", r.body);
    h_free(&r);

    /* Another account's message is not visible. */
    root = call("/send", "API_key=foobar&to=46709771337&msg=hi");
    char f[128];
    snprintf(f, sizeof(f), "API_key=other-key&msg_id=%s",
             str(root, "message_id"));
    json_decref(root);
    expect_error(call("/get_msg_status", f), "foreign message");
}

Test(jojka, send_validates_its_fields)
{
    expect_error(call("/send", "API_key=foobar&msg=hi"), "missing to");
    expect_error(call("/send", "API_key=foobar&to=%2B46709771337&msg=hi"),
                 "plus in to");
    expect_error(call("/send", "API_key=foobar&to=46709771337"), "no msg");
    expect_error(call("/send", "API_key=foobar&to=46709771337&msg=hi"
                               "&from=Way-too-long-name"),
                 "long from");
    expect_error(call("/send", "API_key=foobar&to=46709771337&msg=h%E4j"),
                 "not UTF-8");
}

/* Whether every recipient of the campaign in form has its final status:
 * ERROR for the number ending in 99, DELIVERED for the others. */
static bool campaign_settled(const char *form)
{
    json_t *st = call("/get_campaign_recipients_status", form);
    bool done = json_array_size(st) == 2;

    for (size_t i = 0; i < json_array_size(st) && done; i++) {
        json_t *e = json_array_get(st, i);
        const char *want = strcmp(str(e, "receiver"), "46709966699") == 0
                               ? "ERROR"
                               : "DELIVERED";
        done = strcmp(str(e, "status"), want) == 0;
    }
    json_decref(st);
    return done;
}

Test(jojka, campaign_doc_example_and_its_statuses)
{
    json_t *root = call("/add_campaign",
                        "API_key=foobar&to_msisdn=46709771337%3B46709966699"
                        "&msg=hello%20world&scheduled=2016-05-31%2013%3A37%3A00"
                        "&name=test+campaign");
    char form[128];

    snprintf(form, sizeof(form), "API_key=foobar&campaign_id=%s",
             str(root, "campaign_id"));
    json_decref(root);
    json_t *ids = call("/get_msg_ids_by_campaign_id", form);
    cr_assert(json_array_size(ids) == 2);
    json_decref(ids);

    /* 46709966699 ends in 99: it fails; the other is delivered. */
    bool ok;
    POLL_UNTIL(ok, campaign_settled(form), 3000);
    cr_assert(ok, "campaign statuses did not settle");
}

Test(jojka, campaign_limits_and_cancel)
{
    /* 1001 numbers are over the documented 1000. */
    size_t cap = 1001 * 16 + 128;
    char *form = malloc(cap);
    size_t n = (size_t)snprintf(form, cap, "API_key=foobar&msg=hi&to_msisdn=");
    for (int i = 0; i < 1001; i++)
        n += (size_t)snprintf(form + n, cap - n, "%s4670%07d", i ? "%3B" : "",
                              i);
    expect_error(call("/add_campaign", form), "1001 recipients");
    free(form);
    expect_error(call("/add_campaign", "API_key=foobar&msg=hi"),
                 "no recipients");
    expect_error(call("/add_campaign", "API_key=foobar&msg=hi&to_group=nope"),
                 "unknown group");
    expect_error(call("/add_campaign", "API_key=foobar&msg=hi"
                                       "&to_msisdn=46709771337"
                                       "&scheduled=2099-01-01T10:00:00"),
                 "bad scheduled");

    json_t *root = call("/add_campaign", "API_key=foobar&msg=hi"
                                         "&to_msisdn=46709771337"
                                         "&scheduled=2099-01-01%2010:00:00");
    char f[128];
    snprintf(f, sizeof(f), "API_key=foobar&campaign_id=%s",
             str(root, "campaign_id"));
    json_decref(root);
    root = call("/cancel_campaign", f);
    cr_assert(strcmp(str(root, "successes"), "done") == 0);
    json_decref(root);
    expect_error(call("/cancel_campaign", f), "second cancel");
    root = call("/get_campaign_recipients_status", f);
    cr_assert(strcmp(str(json_array_get(root, 0), "status"), "CANCELLED") == 0);
    json_decref(root);
}

Test(jojka, contact_examples_keep_state)
{
    json_t *root = call("/add_contact", "API_key=foobar&msisdn=46709771337"
                                        "&name=Lilleman&group=Utvecklare%3B"
                                        "Jojka%20personal");
    cr_assert(strcmp(str(root, "msisdn"), "46709771337") == 0);
    json_decref(root);
    root = call("/add_contact_to_group",
                "API_key=foobar&msisdn=46709771337&group=gruppnamn2");
    cr_assert(strcmp(str(root, "group"), "gruppnamn2") == 0);
    json_decref(root);
    /* The document's own examples carry a space after "msisdn=". */
    root =
        call("/get_groups_from_msisdn", "API_key=foobar&msisdn= 46709771337");
    cr_assert(json_array_size(json_object_get(root, "groups")) == 3);
    json_decref(root);
    root = call("/import_contacts_list",
                "API_key=foobar&contacts_list=46709771337%3BLilleman%3B"
                "Utvecklare%3BJojka%20personal%0A46709966666%3BRutger%20"
                "Lindquist%3BVD");
    cr_assert(strcmp(str(root, "successes"), "done") == 0);
    json_decref(root);
    root = call("/export_contacts_list", "API_key=foobar");
    json_t *exp = json_object_get(root, "export");
    cr_assert(json_array_size(exp) == 2, "%zu contacts", json_array_size(exp));
    json_decref(root);
    root = call("/rm_contact_from_group",
                "API_key=foobar&msisdn=46709771337&group=Utvecklare");
    cr_assert(strcmp(str(root, "group"), "Utvecklare") == 0);
    json_decref(root);
    root = call("/rm_contact", "API_key=foobar&msisdn= 46709771337");
    json_decref(root);
    expect_error(
        call("/get_groups_from_msisdn", "API_key=foobar&msisdn=46709771337"),
        "removed contact");
    expect_error(call("/import_contacts_list",
                      "API_key=foobar&contacts_list=0701%3BBad"),
                 "bad import line");
}

Test(jojka, block_list_examples)
{
    json_t *root =
        call("/add_to_blocklist", "API_key=foobar&msisdn= 46709771337");
    cr_assert(strcmp(str(root, "successes"), "done") == 0);
    json_decref(root);
    root = call("/check_if_in_blocklist", "API_key=foobar&msisdn=46709771337");
    cr_assert(json_is_true(json_object_get(root, "in_blocklist")));
    json_decref(root);
    root = call("/check_if_on_blocklist", "API_key=foobar&msisdn=46709771337");
    cr_assert(json_is_true(json_object_get(root, "on_blocklist")));
    json_decref(root);

    /* A send to a blocked number ends in ERROR. */
    root = call("/send", "API_key=foobar&to=46709771337&msg=hi");
    char id[64];
    snprintf(id, sizeof(id), "%s", str(root, "message_id"));
    json_decref(root);
    cr_assert(strcmp(msg_status(id), "ERROR") == 0);

    root = call("/rm_from_blocklist", "API_key=foobar&msisdn=46709771337");
    json_decref(root);
    root = call("/check_if_in_blocklist", "API_key=foobar&msisdn=46709771337");
    cr_assert(json_is_false(json_object_get(root, "in_blocklist")));
    json_decref(root);
}

Test(jojka, injected_replies_are_fetched)
{
    json_decref(h_control("POST", "/inbound",
                          "{\"account\":\"jo\",\"from\":\"46709771337\","
                          "\"text\":\"Sure\"}"));
    json_decref(h_control("POST", "/inbound",
                          "{\"account\":\"jo\",\"from\":\"46709966666\","
                          "\"text\":\"Bacon\"}"));
    json_t *root = call("/fetch_replies", "API_key=foobar");
    cr_assert(json_array_size(root) == 2);
    cr_assert(strcmp(str(json_array_get(root, 0), "message"), "Sure") == 0);
    cr_assert(strlen(str(json_array_get(root, 0), "inserted")) == 19);
    json_decref(root);
    root = call("/fetch_replies", "API_key=foobar&from_msisdn=46709966666");
    cr_assert(json_array_size(root) == 1);
    json_decref(root);
    root = call("/fetch_replies",
                "API_key=foobar&since_time=2099-01-01%2000:00:00");
    cr_assert(json_array_size(root) == 0);
    json_decref(root);
    root = call("/fetch_replies", "API_key=other-key");
    cr_assert(json_array_size(root) == 0, "replies leak across accounts");
    json_decref(root);
}
