/* tests/codecs/test_ip1_legacy.c - the iP.1 legacy codec against document
 * 001.
 *
 * The golden requests and answers are data-driven cases in
 * fixtures/ip1-legacy/; these tests cover every row of the Appendix A and B
 * tables, the path a send takes, sendAt across summer time, and the limits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>

#include "codecs/codec.h"
#include "codecs/job.h"
#include "tests/codecs/fixture_runner.h"

static struct account legacy_acct = {
    .name = "shop-ip1",
    .codec = &codec_ip1_legacy,
    .base_url = "https://web.smscom.se",
    .creds = {{"account", "ip1-1000"}, {"password", "k&y"}},
    .ncreds = 2,
    .default_sender = "Shop",
    /* Most cases here play the document's whole SOAP set; the confirmed_*
     * fixtures play an account without it. */
    .options = {.legacy_unconfirmed_soap = true},
};

static char errstr[256];

static struct job *legacy_job(const char *json)
{
    struct job *job = NULL;
    char id[64];
    int ret = job_parse(&job, json, strlen(json), JOB_SEND, id, sizeof(id),
                        errstr, sizeof(errstr));

    cr_assert(eq(int, ret, 0), "job_parse: %s", errstr);
    return job;
}

Test(ip1_legacy, fixtures)
{
    int failed = fixture_run_provider("ip1-legacy");

    cr_assert(eq(int, failed, 0), "%d fixture cases failed", failed);
}

Test(ip1_legacy, url_call_matches_document_example)
{
    /* 001 "URL-anrop": http://web.smscom.se/sendsms.aspx?acc=ip1-1000&
     * pass=******&to=46730123456&from=ip1&msg=Test+SMS&prio=1 */
    struct job *job = legacy_job("{\"id\":\"m\",\"account\":\"a\",\"to\":"
                                 "\"46730123456\",\"from\":\"ip1\","
                                 "\"text\":\"Test SMS\",\"priority\":1}");
    struct codec_calls calls = {0};

    int ret = codec_ip1_legacy.encode(&calls, &legacy_acct, job, 0, 1, 0,
                                      errstr, sizeof(errstr));
    cr_assert(eq(int, ret, 0), "%s", errstr);
    cr_assert(eq(sz, calls.ncalls, 1));
    cr_assert(eq(str, (char *)calls.calls[0].req.method, "GET"));
    cr_assert(eq(str, calls.calls[0].req.url,
                 "https://web.smscom.se/sendsms.aspx?acc=ip1-1000&pass=k%26y"
                 "&to=46730123456&from=ip1&msg=Test+SMS&prio=1"));
    cr_assert(eq(ptr, calls.calls[0].req.body, NULL));
    codec_calls_cleanup(&calls);
    job_free(job);
}

struct path_case {
    char json[300];
    int64_t now;
    size_t ncalls;
    char first[200]; /* URL or SOAPAction of the first call */
    char body_has[80];
};

static const struct path_case path_cases[] = {
    {"{\"id\":\"m\",\"account\":\"a\",\"to\":\"46730123456\",\"text\":\"x\","
     "\"send_at\":\"2020-01-01T00:00:00Z\"}",
     1700000000, 1,
     "https://web.smscom.se/sendsms.aspx?acc=ip1-1000&pass=k%26y"
     "&to=46730123456&from=Shop&msg=x&prio=1",
     ""},
    {"{\"id\":\"m\",\"account\":\"a\",\"to\":[\"46730123456\",\"46730123457\","
     "\"46730123458\"],\"text\":\"x\",\"flash\":true}",
     0, 3, "\"http://tempuri.org/FlashSMS\"", "<till>46730123456</till>"},
    {"{\"id\":\"m\",\"account\":\"a\",\"to\":[\"46730123456\",\"46730123457\""
     "],\"text\":\"x\"}",
     0, 1, "\"http://tempuri.org/BundleSMS\"",
     "<till>46730123456,46730123457</till>"},
    /* 2026-03-29T01:00:00Z is the switch to CEST: +7200 from then on. */
    {"{\"id\":\"m\",\"account\":\"a\",\"to\":\"46730123456\",\"text\":\"x\","
     "\"send_at\":\"2026-03-29T00:59:59Z\"}",
     0, 1, "\"http://tempuri.org/TimedSMS\"", "<sendAt>1774749599</sendAt>"},
    {"{\"id\":\"m\",\"account\":\"a\",\"to\":\"46730123456\",\"text\":\"x\","
     "\"send_at\":\"2026-03-29T01:00:00Z\"}",
     0, 1, "\"http://tempuri.org/TimedSMS\"", "<sendAt>1774753200</sendAt>"},
    {"{\"id\":\"m\",\"account\":\"a\",\"to\":[\"46730123456\",\"46730123457\""
     "],\"text\":\"x\",\"send_at\":\"2026-10-25T01:00:00Z\"}",
     0, 1, "\"http://tempuri.org/TimedBundleSMS\"",
     "<sendAt>1792893600</sendAt>"}, /* back to CET: +3600 */
};

ParameterizedTestParameters(ip1_legacy, send_path)
{
    return cr_make_param_array(struct path_case, (void *)path_cases,
                               sizeof(path_cases) / sizeof(path_cases[0]));
}

ParameterizedTest(const struct path_case *c, ip1_legacy, send_path)
{
    struct job *job = legacy_job(c->json);
    struct codec_calls calls = {0};

    /* As the engine cuts it: codec_per_call() recipients per encode. */
    size_t per = codec_per_call(&codec_ip1_legacy, &legacy_acct, job);
    int ret = 0;
    for (size_t first = 0; first < job->nto && ret == 0; first += per) {
        size_t count = job->nto - first < per ? job->nto - first : per;
        ret = codec_ip1_legacy.encode(&calls, &legacy_acct, job, first, count,
                                      c->now, errstr, sizeof(errstr));
    }
    cr_assert(eq(int, ret, 0), "%s", errstr);
    cr_assert(eq(sz, calls.ncalls, c->ncalls));
    struct http_request *req = &calls.calls[0].req;
    if (req->body == NULL) {
        cr_assert(eq(str, req->url, (char *)c->first));
    } else {
        cr_assert(
            eq(str, req->url, "https://web.smscom.se/sendSms/sendSms.asmx"));
        cr_assert(eq(str, req->headers[1].name, "SOAPAction"));
        cr_assert(eq(str, req->headers[1].value, (char *)c->first));
        cr_assert(ne(ptr, strstr(req->body, c->body_has), NULL), "%s",
                  req->body);
    }
    codec_calls_cleanup(&calls);
    job_free(job);
}

struct code_row {
    int code;
    bool mms;
    enum call_outcome outcome;
};

/* Appendix A (SMS) and B (MMS), as the answer to a send. */
static const struct code_row code_rows[] = {
    {0, false, CALL_ACCEPTED},  {1, false, CALL_AUTH},
    {2, false, CALL_REJECTED},  {3, false, CALL_REJECTED},
    {4, false, CALL_FAILED},    {10, false, CALL_ACCEPTED},
    {11, false, CALL_ACCEPTED}, {12, false, CALL_FAILED},
    {21, false, CALL_ACCEPTED}, {22, false, CALL_ACCEPTED},
    {30, false, CALL_FAILED},   {41, false, CALL_REJECTED},
    {42, false, CALL_RETRY},    {43, false, CALL_FAILED},
    {50, false, CALL_FAILED},   {51, false, CALL_RETRY},
    {52, false, CALL_RETRY},    {100, false, CALL_FAILED},
    {101, false, CALL_AUTH},    {110, false, CALL_REJECTED},
    {999, false, CALL_FAILED},  {0, true, CALL_ACCEPTED},
    {1, true, CALL_AUTH},       {2, true, CALL_REJECTED},
    {3, true, CALL_REJECTED},   {4, true, CALL_FAILED},
    {11, true, CALL_ACCEPTED},  {21, true, CALL_ACCEPTED},
    {22, true, CALL_ACCEPTED},  {30, true, CALL_FAILED},
    {41, true, CALL_REJECTED},  {42, true, CALL_RETRY},
    {44, true, CALL_FAILED},    {45, true, CALL_FAILED},
    {50, true, CALL_FAILED},
};

ParameterizedTestParameters(ip1_legacy, appendix_codes)
{
    return cr_make_param_array(struct code_row, (void *)code_rows,
                               sizeof(code_rows) / sizeof(code_rows[0]));
}

ParameterizedTest(const struct code_row *row, ip1_legacy, appendix_codes)
{
    /* step 0 is the URL call, 10 the MMS operation. */
    struct codec_call call = {
        .op = OP_SEND, .step = row->mms ? 10 : 0, .count = 1};
    char body[600];
    struct call_result res;

    if (row->mms)
        snprintf(body, sizeof(body),
                 "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/"
                 "soap/envelope/\"><soap:Body><sendMMSResponse xmlns=\""
                 "http://tempuri.org/\"><sendMMSResult>%d</sendMMSResult>"
                 "</sendMMSResponse></soap:Body></soap:Envelope>",
                 row->code);
    else
        snprintf(body, sizeof(body), "%d\r\n", row->code);
    struct http_response resp = {
        .status = 200, .body = body, .body_len = strlen(body)};
    int ret = codec_ip1_legacy.decode(&res, &legacy_acct, NULL, &call, &resp,
                                      errstr, sizeof(errstr));
    cr_assert(eq(int, ret, 0), "%s", errstr);
    cr_assert(eq(int, res.outcome, row->outcome), "code %d", row->code);
    cr_assert(eq(sz, res.nrecipients, 1));
    cr_assert(eq(int, res.recipients[0].outcome, row->outcome));
    cr_assert(eq(str, res.recipients[0].provider_id, ""));
    call_result_cleanup(&res);
}

Test(ip1_legacy, id_above_1000_is_accepted)
{
    struct codec_call call = {.op = OP_SEND, .step = 0, .count = 1};
    struct http_response resp = {.status = 200, .body = "1000", .body_len = 4};
    struct call_result res;

    int ret = codec_ip1_legacy.decode(&res, &legacy_acct, NULL, &call, &resp,
                                      errstr, sizeof(errstr));
    cr_assert(eq(int, ret, 0), "%s", errstr);
    cr_assert(eq(int, res.outcome, CALL_ACCEPTED));
    cr_assert(eq(str, res.recipients[0].provider_id, "1000"));
    call_result_cleanup(&res);
}

/* Runs check() on a send of `n` letters "a"; returns its result. */
static int check_letters(size_t n, bool flash)
{
    char json[2000], text[1600];

    memset(text, 'a', n);
    text[n] = '\0';
    snprintf(json, sizeof(json),
             "{\"id\":\"m\",\"account\":\"a\",\"to\":\"46730123456\","
             "\"text\":\"%s\",\"flash\":%s}",
             text, flash ? "true" : "false");
    struct job *job = legacy_job(json);
    int ret = codec_ip1_legacy.check(&legacy_acct, job, errstr, sizeof(errstr));
    job_free(job);
    return ret;
}

Test(ip1_legacy, text_limits_are_160_and_152_per_part)
{
    int ret = check_letters(1520, false); /* 10 parts of 152 */
    cr_assert(eq(int, ret, 0), "%s", errstr);

    ret = check_letters(1521, false);
    cr_assert(eq(int, ret, -1));
    cr_assert(ne(ptr, strstr(errstr, "needs 11 SMS"), NULL), "%s", errstr);

    ret = check_letters(160, true);
    cr_assert(eq(int, ret, 0), "%s", errstr);

    ret = check_letters(161, true);
    cr_assert(eq(int, ret, -1));
    cr_assert(ne(ptr, strstr(errstr, "flash text needs 2 SMS"), NULL), "%s",
              errstr);
}

Test(ip1_legacy, polls_reject_bad_ids_and_unknown_reads)
{
    struct codec_calls calls = {0};
    static const char *const ids[] = {"bundle:", "12x", "bundle:1;2", ""};

    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        int ret =
            codec_ip1_legacy.encode_poll(&calls, &legacy_acct, OP_POLL_STATUS,
                                         ids[i], 0, errstr, sizeof(errstr));
        cr_expect(eq(int, ret, -1), "id \"%s\"", ids[i]);
    }
    int ret = codec_ip1_legacy.encode_poll(
        &calls, &legacy_acct, OP_POLL_REPLIES, NULL, 0, errstr, sizeof(errstr));
    cr_assert(eq(int, ret, -1));
    cr_assert(eq(sz, calls.ncalls, 0));
}

Test(ip1_legacy, status_poll_with_call_error_is_unreadable)
{
    struct codec_calls calls = {0};
    struct callback_result res;
    static const char body[] =
        "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/"
        "envelope/\"><soap:Body><StatusResponse xmlns=\"http://tempuri.org/"
        "\"><StatusResult>101</StatusResult></StatusResponse></soap:Body>"
        "</soap:Envelope>";
    struct http_response resp = {
        .status = 200, .body = body, .body_len = sizeof(body) - 1};

    int ret = codec_ip1_legacy.encode_poll(&calls, &legacy_acct, OP_POLL_STATUS,
                                           "123456", 0, errstr, sizeof(errstr));
    cr_assert(eq(int, ret, 0), "%s", errstr);
    ret = codec_ip1_legacy.decode_poll(&res, &legacy_acct, &calls.calls[0],
                                       &resp, errstr, sizeof(errstr));
    cr_assert(eq(int, ret, -1));
    cr_assert(ne(ptr, strstr(errstr, "wrong account credentials"), NULL), "%s",
              errstr);
    codec_calls_cleanup(&calls);
}
