/* tests/standin/test_standin_legacy.c - the iP.1 legacy stand-in: the URL
 * call and the SOAP service accept the documented requests, answer the
 * Appendix A codes to bad ones, and incoming SMS are called back (GET) until
 * the receiver answers a bare "OK". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* One SOAP 1.1 call of `op` with the inner parameters `params`; returns
 * the text of <opResult> (malloc'd), or the whole body on a fault. */
static char *soap_call(const char *op, const char *params)
{
    char body[2048], action[96];
    struct h_resp r;

    snprintf(body, sizeof(body),
             "<?xml version=\"1.0\" encoding=\"utf-8\"?><soap:Envelope "
             "xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\">"
             "<soap:Body><%s xmlns=\"http://tempuri.org/\">%s</%s>"
             "</soap:Body></soap:Envelope>",
             op, params, op);
    snprintf(action, sizeof(action), "SOAPAction: \"http://tempuri.org/%s\"",
             op);
    char *headers[] = {"Content-Type: text/xml; charset=utf-8", action, NULL};
    h_must(&r, "POST", "/sendSms/sendSms.asmx", headers, body, strlen(body));
    char open[64];
    snprintf(open, sizeof(open), "<%sResult>", op);
    const char *at = strstr(r.body, open);
    char *out;
    if (at == NULL) {
        out = r.body;
        r.body = NULL;
    } else {
        char close[64];
        snprintf(close, sizeof(close), "</%sResult>", op);
        at += strlen(open);
        const char *end = strstr(at, close);
        out = strndup(at, end ? (size_t)(end - at) : strlen(at));
    }
    h_free(&r);
    return out;
}

#define LEGALL "<konto>ip1-2000</konto><passwd>all-pass</passwd>"

/* The document's other functions are unknown to an account without the
 * setting, as kurir never sends them there. */
Test(legacy, unconfirmed_operations_need_the_setting, .init = h_start,
     .fini = h_stop)
{
    char *got = soap_call("Status", "<konto>ip1-1000</konto><passwd>leg-pass"
                                    "</passwd><id>1001</id>");
    cr_assert(strstr(got, "did not recognize the value of HTTP Header "
                          "SOAPAction") != NULL,
              "%s", got);
    free(got);
    got = soap_call("Status", LEGALL "<id>999999</id>");
    cr_assert(strcmp(got, "110") == 0, "unknown id: %s", got);
    free(got);
}

/* A scheduled bundle is readable, cancellable once, and stays cancelled. */
Test(legacy, scheduled_bundle_is_cancelled_and_reads_say_so, .init = h_start,
     .fini = h_stop)
{
    char params[512];
    snprintf(params, sizeof(params),
             LEGALL "<till>46730123456,46730123457</till><from>Shop</from>"
                    "<meddelande>Imorgon</meddelande><prio>1</prio>"
                    "<sendAt>%lld</sendAt>",
             (long long)(time(NULL) + 3 * 86400));
    char *bid = soap_call("TimedBundleSMS", params);
    cr_assert(strtol(bid, NULL, 10) > 1000, "%s", bid);

    snprintf(params, sizeof(params), LEGALL "<bundleID>%s</bundleID>", bid);
    char *st = soap_call("statusBundle", params);
    cr_assert(strstr(st, "<status>11</status>") != NULL, "%s", st);
    cr_assert(strstr(st, "<number>46730123457</number>") != NULL, "%s", st);
    free(st);

    snprintf(params, sizeof(params), LEGALL "<BundleID>%s</BundleID>", bid);
    char *c = soap_call("CancelBundleSMS", params);
    cr_assert(strcmp(c, "0") == 0, "%s", c);
    free(c);
    c = soap_call("CancelBundleSMS", params);
    cr_assert(strcmp(c, "12") == 0, "a second cancel: %s", c);
    free(c);

    json_t *msgs = h_control("GET", "/messages?provider=ip1-legacy", NULL);
    cr_assert(json_array_size(msgs) == 2, "%zu", json_array_size(msgs));
    for (size_t i = 0; i < 2; i++) {
        json_t *m = json_array_get(msgs, i);
        cr_assert(strcmp(json_string_value(json_object_get(m, "state")),
                         "cancelled") == 0);
        char sp[128];
        snprintf(sp, sizeof(sp), LEGALL "<id>%s</id>",
                 json_string_value(json_object_get(m, "id")));
        char *one = soap_call("Status", sp);
        cr_assert(strcmp(one, "12") == 0, "%s", one);
        free(one);
        snprintf(sp, sizeof(sp), LEGALL "<Id>%s</Id>",
                 json_string_value(json_object_get(m, "id")));
        one = soap_call("Tidpunkt", sp);
        cr_assert(strcmp(one, "0") == 0, "no longer scheduled: %s", one);
        free(one);
    }
    json_decref(msgs);
    free(bid);
}

/* An immediate bundle and a flash SMS are delivered; Status follows. */
Test(legacy, bundle_and_flash_are_delivered, .init = h_start, .fini = h_stop)
{
    char *bid = soap_call("BundleSMS",
                          LEGALL "<till>46730123456,46730123458</till>"
                                 "<from>Shop</from><meddelande>Nu</meddelande>"
                                 "<prio>1</prio>");
    cr_assert(strtol(bid, NULL, 10) > 1000, "%s", bid);
    char *fid = soap_call("FlashSMS", LEGALL
                          "<till>46730123459</till><from>Shop</from>"
                          "<meddelande>Blixt</meddelande><prio>1</prio>");
    cr_assert(strtol(fid, NULL, 10) > 1000, "%s", fid);
    char params[256];
    snprintf(params, sizeof(params), LEGALL "<bundleID>%s</bundleID>", bid);
    bool ok;
    char *st = NULL;
    POLL_UNTIL(ok,
               (free(st), st = soap_call("statusBundle", params),
                strstr(st, "<status>0</status>") == NULL &&
                    strstr(st, "<status>11</status>") == NULL),
               5000);
    cr_assert(ok, "%s", st);
    cr_assert(strstr(st, "<status>22</status>") != NULL, "%s", st);
    free(st);
    snprintf(params, sizeof(params), LEGALL "<id>%s</id>", fid);
    char *one = NULL;
    POLL_UNTIL(
        ok,
        (free(one), one = soap_call("Status", params), strcmp(one, "22") == 0),
        5000);
    cr_assert(ok, "%s", one);
    free(one);
    free(bid);
    free(fid);
}
