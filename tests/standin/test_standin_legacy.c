/* tests/standin/test_standin_legacy.c - the iP.1 legacy stand-in: the URL
 * call and the SOAP service accept the documented requests, answer the
 * Appendix A codes to bad ones, and incoming SMS are called back (GET) until
 * the receiver answers a bare "OK". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tests/standin/harness.h"
#include "tests/support/support.h"

TestSuite(legacy, .timeout = 60);

/* The documented example URL with one parameter replaced. */
static char *url_call(const char *query)
{
    struct h_resp r;
    char path[1024];

    snprintf(path, sizeof(path), "/sendsms.aspx?%s", query);
    h_must(&r, "GET", path, NULL, NULL, 0);
    cr_assert(r.status == 200, "status %ld", r.status);
    char *body = r.body;
    r.body = NULL;
    h_free(&r);
    return body;
}

static void expect_url(const char *query, const char *want)
{
    char *got = url_call(query);

    cr_assert(strcmp(got, want) == 0, "%s: want %s, got %s", query, want, got);
    free(got);
}

Test(legacy, url_doc_example_answers_an_id_over_1000, .init = h_start,
     .fini = h_stop)
{
    char *got = url_call("acc=ip1-1000&pass=leg-pass&to=46730123456&from=ip1"
                         "&msg=Test+SMS&prio=1");
    long id = strtol(got, NULL, 10);

    cr_assert(id > 1000, "got %s", got);
    free(got);
}

Test(legacy, url_errors_are_appendix_a_codes, .init = h_start, .fini = h_stop)
{
    expect_url("pass=leg-pass&to=46730123456&from=ip1&msg=Hej", "1");
    expect_url("acc=ip1-1000&pass=nope&to=46730123456&from=ip1&msg=Hej", "101");
    expect_url("acc=ip1-1000&pass=leg-pass&to=%2B46730123456&from=ip1&msg=Hej",
               "3");
    expect_url("acc=ip1-1000&pass=leg-pass&to=46730123456&from=ip1&msg=", "2");
    /* An emoji is not GSM 03.38 text. */
    expect_url("acc=ip1-1000&pass=leg-pass&to=46730123456&from=ip1"
               "&msg=Hej%F0%9F%98%80",
               "2");
    /* Latin-1 bytes are not UTF-8. */
    expect_url("acc=ip1-1000&pass=leg-pass&to=46730123456&from=ip1"
               "&msg=h%E4j",
               "2");
    expect_url("acc=ip1-1000&pass=leg-pass&to=46730123456"
               "&from=much-too-long-sender&msg=Hej",
               "110");
    expect_url("acc=ip1-1000&pass=leg-pass&to=46730123456&from=ip1&msg=Hej"
               "&prio=9",
               "110");
}

Test(legacy, soap_sms_is_accepted, .init = h_start, .fini = h_stop)
{
    size_t len;
    char *doc = h_fixture("legacy_sms_soap11.xml", &len);
    char *headers[] = {"Content-Type: text/xml; charset=utf-8",
                       "SOAPAction: \"http://tempuri.org/sms\"", NULL};
    struct h_resp r;

    h_must(&r, "POST", "/sendSms/sendSms.asmx", headers, doc, len);
    cr_assert(r.status == 200, "status %ld: %s", r.status, r.body);
    const char *res = strstr(r.body, "<smsResult>");
    cr_assert(res != NULL, "%s", r.body);
    cr_assert(strtol(res + 11, NULL, 10) > 1000, "%s", r.body);
    h_free(&r);

    json_t *msgs = h_control("GET", "/messages?provider=ip1-legacy", NULL);
    const char *text =
        json_string_value(json_object_get(json_array_get(msgs, 0), "text"));
    cr_assert(strcmp(text, "Test SMS \xc3\xa5\xc3\xa4\xc3\xb6") == 0, "%s",
              text);
    json_decref(msgs);
    free(doc);
}

Test(legacy, soap_wrong_action_and_bad_xml_are_faults, .init = h_start,
     .fini = h_stop)
{
    size_t len;
    char *doc = h_fixture("legacy_sms_soap11.xml", &len);
    char *wrong[] = {"Content-Type: text/xml; charset=utf-8",
                     "SOAPAction: \"http://tempuri.org/smsX\"", NULL};
    struct h_resp r;

    h_must(&r, "POST", "/sendSms/sendSms.asmx", wrong, doc, len);
    cr_assert(r.status == 500, "status %ld", r.status);
    cr_assert(strstr(r.body, "did not recognize the value of HTTP Header "
                             "SOAPAction") != NULL,
              "%s", r.body);
    h_free(&r);

    char *right[] = {"Content-Type: text/xml; charset=utf-8",
                     "SOAPAction: \"http://tempuri.org/sms\"", NULL};
    h_must(&r, "POST", "/sendSms/sendSms.asmx", right, "<soap:Envelope", 14);
    cr_assert(r.status == 500, "status %ld", r.status);
    cr_assert(strstr(r.body, "<faultcode>soap:Client</faultcode>") != NULL,
              "%s", r.body);
    h_free(&r);

    /* Wrong credentials inside a valid envelope: code 101 as the result. */
    char *bad = h_replace(doc, "leg-pass", "nope");
    h_must(&r, "POST", "/sendSms/sendSms.asmx", right, bad, strlen(bad));
    cr_assert(strstr(r.body, "<smsResult>101</smsResult>") != NULL, "%s",
              r.body);
    h_free(&r);
    free(bad);
    free(doc);
}

Test(legacy, inbound_is_called_back_until_ok)
{
    struct receiver *rv = recv_start(RECV_OK, 2);
    char *extra[] = {"--callback-inbound-ip1-legacy", (char *)recv_url(rv),
                     NULL};

    h_start_args(extra);
    json_t *ok =
        h_control("POST", "/inbound",
                  "{\"account\":\"leg\",\"from\":\"4673222222\","
                  "\"to\":\"46766861000\",\"text\":\"hej d\xc3\xa5\"}");
    json_decref(ok);
    recv_wait(rv, 3, 5000);
    for (int i = 0; i < 3; i++) {
        json_t *call = recv_call(rv, i);
        cr_assert(strcmp(json_string_value(json_object_get(call, "method")),
                         "GET") == 0);
        cr_assert(strcmp(json_string_value(json_object_get(call, "sender")),
                         "4673222222") == 0);
        cr_assert(strcmp(json_string_value(json_object_get(call, "text")),
                         "hej d\xc3\xa5") == 0);
        cr_assert(
            strcmp(json_string_value(json_object_get(call, "token")), "t") == 0,
            "the URL's own query is kept");
        cr_assert(json_object_get(call, "incsmsid") != NULL);
        json_decref(call);
    }
    json_t *hist = h_control("GET", "/callbacks", NULL);
    cr_assert(json_is_true(json_object_get(json_array_get(hist, 2), "ok")));
    json_decref(hist);
    h_stop();
    recv_stop(rv);
}
