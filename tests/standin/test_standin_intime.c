/* tests/standin/test_standin_intime.c - the InTime stand-in accepts the
 * documented requests, answers each documented error to the matching bad
 * request, and calls the status URL back with retries. */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tests/standin/harness.h"
#include "tests/support/support.h"

TestSuite(intime, .init = h_start, .fini = h_stop, .timeout = 60);

static bool matches(const char *s, const char *pattern)
{
    regex_t re;
    int ret = regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB);

    cr_assert(ret == 0);
    ret = regexec(&re, s, 0, NULL, 0);
    regfree(&re);
    return ret == 0;
}

/* The documented create example, with senddate taken out (its 2012 date is
 * in the past) or replaced. */
static char *create_xml(const char *senddate)
{
    char *doc = h_fixture("intime_create.xml", NULL);
    char line[96];

    if (senddate != NULL)
        snprintf(line, sizeof(line), "<senddate>%s</senddate>", senddate);
    else
        line[0] = '\0';
    char *out =
        h_replace(doc, "<senddate>2012-01-13T14:41:00</senddate>", line);
    free(doc);
    return out;
}

/* Sends xml to create.ashx and returns the answer body (malloc'd). */
static char *create(const char *xml)
{
    struct h_resp r;

    h_intime(&r, "/message/create.ashx", xml, strlen(xml));
    cr_assert(r.status == 200, "status %ld", r.status);
    char *body = r.body;
    r.body = NULL;
    h_free(&r);
    return body;
}

static void expect_create(const char *xml, const char *want)
{
    char *got = create(xml);

    cr_assert(strcmp(got, want) == 0, "want %s, got %s", want, got);
    free(got);
}

Test(intime, create_doc_example_answers_one_id_per_recipient)
{
    char *xml = create_xml(NULL);
    char *got = create(xml);

    cr_assert(matches(got, "^[0-9]+,[0-9]+$"), "got %s", got);
    free(got);
    free(xml);
}

Test(intime, create_doc_example_as_printed_is_past_date_error)
{
    char *xml = create_xml("2012-01-13T14:41:00");

    expect_create(xml, "1:ERROR2");
    free(xml);
}

Test(intime, create_without_credentials_is_error_0_1)
{
    struct h_resp r;
    char *xml = create_xml(NULL);
    char *headers[] = {"Content-Type: text/xml", NULL};

    h_must(&r, "POST", "/api/1.0/message/create.ashx?user=ituser", headers, xml,
           strlen(xml));
    cr_assert(strcmp(r.body, "0:ERROR1") == 0, "got %s", r.body);
    h_free(&r);
    free(xml);
}

Test(intime, create_with_wrong_hash_is_error_0_3)
{
    struct h_resp r;
    char *xml = create_xml(NULL);
    char *headers[] = {"Content-Type: text/xml", NULL};

    h_must(&r, "POST", "/api/1.0/message/create.ashx?user=ituser&hash=nope",
           headers, xml, strlen(xml));
    cr_assert(strcmp(r.body, "0:ERROR3") == 0, "got %s", r.body);
    h_free(&r);
    free(xml);
}

Test(intime, create_with_empty_body_is_error_0_2)
{
    expect_create("", "0:ERROR2");
}

Test(intime, create_with_bad_sender_is_error_1_1)
{
    char *xml = create_xml(NULL);
    /* ÅÄÖ are not allowed in sendertitle (000). */
    char *bad = h_replace(xml, "Byggvaruh<",
                          "Bygg\xc4"
                          "<");

    expect_create(bad, "1:ERROR1");
    free(bad);
    free(xml);
}

Test(intime, create_with_bad_recipient_is_error_1_3)
{
    char *xml = create_xml(NULL);
    char *bad = h_replace(xml, "+46701234567", "+46-70-123");

    expect_create(bad, "1:ERROR3");
    free(bad);
    free(xml);
}

Test(intime, create_without_recipients_is_error_2_2)
{
    char *xml = create_xml(NULL);
    char *a = h_replace(xml,
                        "<recipient transid=\"12345678\">+46701234567"
                        "</recipient>",
                        "");
    char *b = h_replace(a,
                        "<recipient transid=\"12345679\">+46701234568"
                        "</recipient>",
                        "");

    expect_create(b, "2:ERROR2"); /* group 1 has no members */
    free(b);
    free(a);
    free(xml);
}

Test(intime, create_with_body_over_160_without_multisms_is_error_1_1)
{
    char *xml = create_xml(NULL);
    char text[200];
    memset(text, 'a', 161);
    text[161] = '\0';
    char *bad = h_replace(xml,
                          "Dina best\xe4llda varor har kommit. Mvh "
                          "Byggvaruhuset",
                          text);

    expect_create(bad, "1:ERROR1");
    char *multi = h_replace(bad, "<multisms>0", "<multisms>1");
    char *got = create(multi);
    cr_assert(matches(got, "^[0-9]+,[0-9]+$"), "multisms: got %s", got);
    free(got);
    free(multi);
    free(bad);
    free(xml);
}

Test(intime, create_with_utf8_bytes_in_latin1_document_is_error_1_1)
{
    char *xml = create_xml(NULL);
    /* "ä" as UTF-8 in a document declared iso-8859-1: the INTSDK bug. */
    char *bad = h_replace(xml, "best\xe4llda", "best\xc3\xa4llda");

    expect_create(bad, "1:ERROR1");
    free(bad);
    free(xml);
}

Test(intime, create_with_utf8_prolog_is_error_1_1)
{
    char *xml = create_xml(NULL);
    char *bad = h_replace(xml, "iso-8859-1", "utf-8");

    expect_create(bad, "1:ERROR1");
    free(bad);
    free(xml);
}

Test(intime, create_with_newline_before_prolog_is_xml_exception)
{
    char *xml = create_xml(NULL);
    size_t n = strlen(xml);
    char *bad = malloc(n + 2);
    bad[0] = '\n';
    memcpy(bad + 1, xml, n + 1);
    char *got = create(bad);

    cr_assert(strncmp(got, "Unexpected XML declaration.", 27) == 0, "got %s",
              got);
    cr_assert(strstr(got, "ERROR") == NULL);
    free(got);
    free(bad);
    free(xml);
}

Test(intime, create_with_garbage_is_data_at_root_level)
{
    expect_create("hello", "Data at the root level is invalid. Line 1, "
                           "position 1.");
}

Test(intime, create_with_unclosed_tag_is_xml_exception_not_error_code)
{
    char *got = create("<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n"
                       "<message><body>x</message>");

    cr_assert(strstr(got, "Line 2") != NULL, "got %s", got);
    cr_assert(strstr(got, "ERROR") == NULL, "got %s", got);
    free(got);
}

Test(intime, create_with_doctype_is_refused)
{
    char *got = create("<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n"
                       "<!DOCTYPE message [<!ENTITY x \"y\">]>"
                       "<message>&x;</message>");

    cr_assert(strncmp(got, "For security reasons DTD is prohibited", 38) == 0,
              "got %s", got);
    free(got);
}

Test(intime, create_with_form_content_type_is_error_0_2)
{
    struct h_resp r;
    char *xml = create_xml(NULL);
    char *headers[] = {"Content-Type: application/x-www-form-urlencoded", NULL};

    h_must(&r, "POST", "/api/1.0/message/create.ashx?user=ituser&hash=secret",
           headers, xml, strlen(xml));
    cr_assert(strcmp(r.body, "0:ERROR2") == 0, "got %s", r.body);
    h_free(&r);
    free(xml);
}

Test(intime, status_callback_arrives_and_is_retried_until_answered)
{
    struct receiver *rv = recv_start(RECV_ECHO_ID, 2);
    char *xml = create_xml(NULL);
    char *xml2 =
        h_replace(xml, "http://www.kunden.se/status.php", recv_url(rv));
    char *one = h_replace(xml2,
                          "<recipient transid=\"12345679\">+46701234568"
                          "</recipient>",
                          "<recipient>+46701234599</recipient>");
    char *ids = create(one);
    char first[32];

    snprintf(first, sizeof(first), "%.*s", (int)strcspn(ids, ","), ids);
    /* Two wrong answers, then the right one: three tries for the first
     * recipient; none for the second (no transid). */
    recv_wait(rv, 3, 5000);
    for (int i = 0; i < 3; i++) {
        json_t *call = recv_call(rv, i);
        char want[96];
        snprintf(want, sizeof(want), "messageid=%s&status=20&transid=12345678",
                 first);
        cr_assert(strcmp(json_string_value(json_object_get(call, "method")),
                         "POST") == 0);
        cr_assert(
            strcmp(json_string_value(json_object_get(call, "body")), want) == 0,
            "got %s", json_string_value(json_object_get(call, "body")));
        json_decref(call);
    }
    json_t *hist = h_control("GET", "/callbacks", NULL);
    cr_assert(json_array_size(hist) == 3);
    cr_assert(json_is_false(json_object_get(json_array_get(hist, 0), "ok")));
    cr_assert(json_is_true(json_object_get(json_array_get(hist, 2), "ok")));
    json_decref(hist);
    recv_stop(rv);
    free(ids);
    free(one);
    free(xml2);
    free(xml);
}

Test(intime, number_ending_99_is_not_delivered)
{
    struct receiver *rv = recv_start(RECV_ECHO_ID, 0);
    char *xml = create_xml(NULL);
    char *a = h_replace(xml, "http://www.kunden.se/status.php", recv_url(rv));
    char *b = h_replace(a, "+46701234568", "+46701234599");
    char *ids = create(b);

    recv_wait(rv, 2, 5000);
    bool saw_fail = false;
    for (int i = 0; i < 2; i++) {
        json_t *call = recv_call(rv, i);
        const char *body = json_string_value(json_object_get(call, "body"));
        if (strstr(body, "transid=12345679") != NULL)
            saw_fail = strstr(body, "status=4&") != NULL;
        json_decref(call);
    }
    cr_assert(saw_fail, "the 99 number was reported delivered");
    recv_stop(rv);
    free(ids);
    free(b);
    free(a);
    free(xml);
}

Test(intime, delete_cancels_a_scheduled_message_once)
{
    char *xml = create_xml("2099-01-13T14:41:00");
    char *ids = create(xml);
    char first[32];
    snprintf(first, sizeof(first), "%.*s", (int)strcspn(ids, ","), ids);
    char *doc = h_fixture("intime_delete.xml", NULL);
    char *del = h_replace(doc, "1234567", first);
    struct h_resp r;

    h_intime(&r, "/message/delete.ashx", del, strlen(del));
    cr_assert(strcmp(r.body, first) == 0, "got %s", r.body);
    h_free(&r);
    h_intime(&r, "/message/delete.ashx", del, strlen(del));
    cr_assert(strcmp(r.body, "2:ERROR2") == 0, "got %s", r.body);
    h_free(&r);
    h_intime(&r, "/message/delete.ashx", doc, strlen(doc));
    cr_assert(strcmp(r.body, "2:ERROR2") == 0, "unknown id: got %s", r.body);
    h_free(&r);

    char path[64];
    snprintf(path, sizeof(path), "/messages?id=%s", first);
    json_t *msgs = h_control("GET", path, NULL);
    const char *state =
        json_string_value(json_object_get(json_array_get(msgs, 0), "state"));
    cr_assert(strcmp(state, "cancelled") == 0, "state %s", state);
    json_decref(msgs);
    free(del);
    free(doc);
    free(ids);
    free(xml);
}

/* Posts a fixture to an endpoint and returns the answer body. */
static char *post_fixture(const char *endpoint, const char *fixture)
{
    size_t len;
    char *doc = h_fixture(fixture, &len);
    struct h_resp r;

    h_intime(&r, endpoint, doc, len);
    free(doc);
    char *body = r.body;
    r.body = NULL;
    h_free(&r);
    return body;
}

Test(intime, address_book_examples_are_accepted_and_listed)
{
    char *got =
        post_fixture("/contacts/listgroups.ashx", "intime_addgroup.xml");
    /* listgroups takes no body; with no groups it answers "no data". */
    cr_assert(strcmp(got, "2:ERROR1") == 0, "got %s", got);
    free(got);

    got = post_fixture("/contacts/addgroup.ashx", "intime_addgroup.xml");
    cr_assert(matches(got, "^[0-9]+$"), "addgroup: %s", got);
    free(got);

    struct h_resp r;
    h_intime(&r, "/contacts/listgroups.ashx", NULL, 0);
    cr_assert(strstr(r.body, ">Ny grupp</group>") != NULL, "%s", r.body);
    cr_assert(strncmp(r.body, "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>",
                      43) == 0);
    h_free(&r);

    got = post_fixture("/contacts/add.ashx", "intime_contacts_add.xml");
    cr_assert(matches(got, "^[0-9]+$"), "contacts/add: %s", got);
    free(got);

    got = post_fixture("/contacts/deletegroup.ashx", "intime_deletegroup.xml");
    cr_assert(matches(got, "^1$"), "deletegroup: %s", got);
    free(got);
}

Test(intime, block_list_examples_are_accepted_and_listed)
{
    char *got = post_fixture("/nix/addnix.ashx", "intime_addnix.xml");
    cr_assert(matches(got, "^[0-9]+,[0-9]+$"), "addnix: %s", got);
    free(got);

    struct h_resp r;
    h_intime(&r, "/nix/list.ashx", NULL, 0);
    cr_assert(strstr(r.body, "<mobile>4670112233</mobile>") != NULL, "%s",
              r.body);
    h_free(&r);

    /* The document names deletenix.aspx, not .ashx. */
    got = post_fixture("/nix/deletenix.aspx", "intime_deletenix.xml");
    cr_assert(matches(got, "^[0-9]+,[0-9]+$"), "deletenix: %s", got);
    free(got);
    h_intime(&r, "/nix/deletenix.ashx", "x", 1);
    cr_assert(r.status == 404);
    h_free(&r);
    h_intime(&r, "/nix/list.ashx", NULL, 0);
    cr_assert(strcmp(r.body, "2:ERROR1") == 0, "%s", r.body);
    h_free(&r);
}

Test(intime, reminder_examples_are_accepted)
{
    char *id = post_fixture("/reminder/add.ashx", "intime_reminder_add.xml");
    cr_assert(matches(id, "^[0-9]+$"), "add: %s", id);

    struct h_resp r;
    char path[64];
    snprintf(path, sizeof(path), "/reminder/list.ashx");
    h_intime(&r, path, NULL, 0);
    cr_assert(strstr(r.body, "<attendant>") != NULL, "%s", r.body);
    cr_assert(strstr(r.body, "F\xf6rnamn") != NULL, "latin-1 out: %s", r.body);
    h_free(&r);

    /* Editing an unknown id answers it negated. */
    char *got = post_fixture("/reminder/edit.ashx", "intime_reminder_edit.xml");
    cr_assert(strcmp(got, "-1472") == 0, "edit unknown: %s", got);
    free(got);

    char *doc = h_fixture("intime_reminder_edit.xml", NULL);
    char *edit = h_replace(doc, "1472", id);
    h_intime(&r, "/reminder/edit.ashx", edit, strlen(edit));
    cr_assert(strcmp(r.body, id) == 0, "edit: %s", r.body);
    h_free(&r);
    /* Now inactive: a second edit is refused, negated. */
    h_intime(&r, "/reminder/edit.ashx", edit, strlen(edit));
    cr_assert(r.body[0] == '-', "edit inactive: %s", r.body);
    h_free(&r);
    free(edit);
    free(doc);
    free(id);
}
