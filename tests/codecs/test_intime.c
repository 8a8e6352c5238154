/* tests/codecs/test_intime.c - the InTime codec against document 000.
 *
 * Golden requests are the document's own examples; answers are its error
 * tables. The data-driven cases live in fixtures/intime/; these tests cover
 * what a fixture cannot say (exact ISO-8859-1 bytes, every table row, hostile
 * XML, Swedish time against the system's time zone database). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>

#include "codecs/codec.h"
#include "codecs/job.h"
#include "codecs/swedish_time.h"
#include "tests/codecs/fixture_runner.h"

static struct account intime_acct = {
    .name = "shop-intime",
    .codec = &codec_intime,
    .base_url = "https://sms.intime.nu/api/1.0",
    .creds = {{"user", "shop"}, {"hash", "s3cr&t"}},
    .ncreds = 2,
    .default_sender = "Byggvaruh",
};

static char errstr[256];

static struct job *parse(const char *json, enum job_type type)
{
    struct job *job = NULL;
    char id[64];
    int ret = job_parse(&job, json, strlen(json), type, id, sizeof(id), errstr,
                        sizeof(errstr));

    cr_assert(eq(int, ret, 0), "job_parse: %s", errstr);
    return job;
}

/* Encodes a job and returns its single call's request in calls. */
static void encode_one(struct codec_calls *calls, const struct account *acct,
                       const struct job *job, int64_t now)
{
    int ret = codec_intime.encode(calls, acct, job, 0, job->nto, now, errstr,
                                  sizeof(errstr));

    cr_assert(eq(int, ret, 0), "encode: %s", errstr);
    cr_assert(eq(sz, calls->ncalls, 1));
}

static void assert_body(const struct http_request *req, const char *want)
{
    cr_assert(eq(sz, req->body_len, strlen(want)), "body:\n%.*s",
              (int)req->body_len, req->body);
    cr_assert(eq(int, memcmp(req->body, want, req->body_len), 0), "body:\n%.*s",
              (int)req->body_len, req->body);
}

Test(intime, create_matches_document_example)
{
    /* 000 "Skapa meddelande": its XML, with our transids and the body in
     * real ISO-8859-1 (\xe4 is ä). Groups make it a campaign create. */
    struct job *job =
        parse("{\"id\":\"j1\",\"account\":\"a\",\"action\":\"create\","
              "\"to\":[\"+46701234567\","
              "\"+46701234568\"],\"groups\":[\"1\"],\"from\":\"Byggvaruh\","
              "\"text\":\"Dina best\xc3\xa4llda varor har kommit. Mvh "
              "Byggvaruhuset\",\"send_at\":\"2012-01-13T13:41:00Z\"}",
              JOB_CAMPAIGN);
    struct account acct = intime_acct;
    struct codec_calls calls = {0};

    acct.callback_url = "http://www.kunden.se/cb/shop";
    encode_one(&calls, &acct, job, 1326000000);
    struct http_request *req = &calls.calls[0].req;
    cr_assert(eq(str, (char *)req->method, "POST"));
    cr_assert(eq(str, req->url,
                 "https://sms.intime.nu/api/1.0/message/create.ashx"
                 "?user=shop&hash=s3cr%26t"));
    cr_assert(eq(str, req->headers[0].name, "Content-Type"));
    cr_assert(eq(str, req->headers[0].value, "text/xml"));
    assert_body(req,
                "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n"
                "<message>\n"
                "  <flash>0</flash>\n"
                "  <multisms>0</multisms>\n"
                "  <senddate>2012-01-13T14:41:00</senddate>\n"
                "  <sendertitle>Byggvaruh</sendertitle>\n"
                "  <body>Dina best\xe4llda varor har kommit. Mvh "
                "Byggvaruhuset</body>\n"
                "  <statusurl>http://www.kunden.se/cb/shop/status</statusurl>\n"
                "  <checknix>0</checknix>\n"
                "  <anonymize>0</anonymize>\n"
                "  <recipients>\n"
                "    <recipient transid=\"j1:46701234567\">+46701234567"
                "</recipient>\n"
                "    <recipient transid=\"j1:46701234568\">+46701234568"
                "</recipient>\n"
                "  </recipients>\n"
                "  <groups>\n"
                "    <group groupid=\"1\" />\n"
                "  </groups>\n"
                "</message>\n");
    codec_calls_cleanup(&calls);
    job_free(job);
}

Test(intime, immediate_send_omits_senddate_and_escapes_xml)
{
    struct job *job = parse(
        "{\"id\":\"j&2\",\"account\":\"a\",\"to\":\"46701234567\","
        "\"text\":\"a<b & "
        "\\\"c\\\"\\r\\n\",\"send_at\":\"2012-01-13T13:41:00Z\","
        "\"flash\":true,\"intime\":{\"checknix\":true,\"anonymize\":true}}",
        JOB_SEND);
    struct account acct = intime_acct;
    struct codec_calls calls = {0};

    acct.callback_url = "https://hooks.example/callbacks/shop";
    acct.webhook_token = "t/k n";
    encode_one(&calls, &acct, job, 1326462061); /* after send_at */
    assert_body(&calls.calls[0].req,
                "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n"
                "<message>\n"
                "  <flash>1</flash>\n"
                "  <multisms>0</multisms>\n"
                "  <sendertitle>Byggvaruh</sendertitle>\n"
                "  <body>a&lt;b &amp; &quot;c&quot;&#13;\n</body>\n"
                "  <statusurl>https://hooks.example/callbacks/shop/status"
                "?token=t%2Fk%20n</statusurl>\n"
                "  <checknix>1</checknix>\n"
                "  <anonymize>1</anonymize>\n"
                "  <recipients>\n"
                "    <recipient transid=\"j&amp;2:46701234567\">+46701234567"
                "</recipient>\n"
                "  </recipients>\n"
                "</message>\n");
    codec_calls_cleanup(&calls);
    job_free(job);
}

Test(intime, senddate_is_swedish_summer_time)
{
    struct job *job = parse("{\"id\":\"j\",\"account\":\"a\",\"to\":"
                            "\"46701234567\",\"text\":\"x\",\"send_at\":"
                            "\"2026-07-01T08:00:00Z\"}",
                            JOB_SEND);
    struct codec_calls calls = {0};

    encode_one(&calls, &intime_acct, job, 1700000000);
    cr_assert(ne(ptr,
                 strstr(calls.calls[0].req.body,
                        "<senddate>2026-07-01T10:00:00</senddate>"),
                 NULL));
    codec_calls_cleanup(&calls);
    job_free(job);
}

Test(intime, long_text_sets_multisms_and_counts_latin1)
{
    char json[2048], text[900];
    struct codec_calls calls = {0};

    /* 161 "é": two UTF-8 bytes each, one ISO-8859-1 character. */
    text[0] = '\0';
    for (int i = 0; i < 161; i++)
        strcat(text, "\xc3\xa9");
    snprintf(json, sizeof(json),
             "{\"id\":\"j\",\"account\":\"a\",\"to\":\"46701234567\","
             "\"text\":\"%s\"}",
             text);
    struct job *job = parse(json, JOB_SEND);
    encode_one(&calls, &intime_acct, job, 0);
    cr_assert(ne(ptr, strstr(calls.calls[0].req.body, "<multisms>1</multisms>"),
                 NULL));
    codec_calls_cleanup(&calls);
    job_free(job);
}

struct check_case {
    char json[1100];
    char want[120]; /* a substring of errstr, or "" when check passes */
};

static struct check_case *check_cases(size_t *n)
{
    static struct check_case cases[10];
    char text805[806], text161[162];

    memset(text805, 'a', 805);
    text805[805] = '\0';
    memset(text161, 'a', 161);
    text161[161] = '\0';
    size_t i = 0;
#define JOB(fmt, ...)                                                      \
    snprintf(cases[i].json, sizeof(cases[i].json),                         \
             "{\"id\":\"j\",\"account\":\"a\",\"to\":\"46701234567\"," fmt \
             "}",                                                          \
             __VA_ARGS__)
    JOB("\"text\":\"%s\"", "Hej \xe2\x82\xac"); /* € is not ISO-8859-1 */
    snprintf(cases[i++].want, 120, "U+20AC");
    JOB("\"text\":\"%s\"", text805);
    snprintf(cases[i++].want, 120, "allows 804");
    JOB("\"text\":\"%s\",\"flash\":true", text161);
    snprintf(cases[i++].want, 120, "flash text is 161");
    JOB("\"text\":\"x\",\"from\":\"%s\"", "\xc3\x85hus");
    snprintf(cases[i++].want, 120, "is not 1-11");
    JOB("\"text\":\"x\",\"from\":\"%s\"", "Byggvaruhuset");
    snprintf(cases[i++].want, 120, "is not 1-11");
    JOB("\"text\":\"x\",\"from\":\"%s\"", "4670123456789012");
    snprintf(cases[i++].want, 120, "is not 1-11");
    JOB("\"text\":\"x\",\"from\":\"%s\"", "A.b-c+d 1");
    snprintf(cases[i++].want, 120, "%s", "");
    JOB("\"text\":\"x\",\"from\":\"%s\"", "467012345678901");
    snprintf(cases[i++].want, 120, "%s", "");
    JOB("\"text\":\"%s\"", text805 + 1);
    snprintf(cases[i++].want, 120, "%s", "");
#undef JOB
    *n = i;
    return cases;
}

Test(intime, campaign_groups_must_be_ids)
{
    struct job *job = parse("{\"id\":\"j\",\"account\":\"a\",\"action\":"
                            "\"create\",\"groups\":[\"VIP\"],\"text\":\"x\"}",
                            JOB_CAMPAIGN);

    int ret = codec_intime.check(&intime_acct, job, errstr, sizeof(errstr));
    cr_assert(eq(int, ret, -1));
    cr_assert(ne(ptr, strstr(errstr, "not an InTime group id"), NULL), "%s",
              errstr);
    job_free(job);
}

Test(intime, check_applies_the_documents_rules)
{
    size_t n;
    struct check_case *cases = check_cases(&n);

    for (size_t i = 0; i < n; i++) {
        struct job *job = parse(cases[i].json, JOB_SEND);
        int ret = codec_intime.check(&intime_acct, job, errstr, sizeof(errstr));
        if (cases[i].want[0] == '\0') {
            cr_expect(eq(int, ret, 0), "case %zu: %s", i, errstr);
        } else {
            cr_expect(eq(int, ret, -1), "case %zu passed", i);
            cr_expect(ne(ptr, strstr(errstr, cases[i].want), NULL),
                      "case %zu: %s", i, errstr);
        }
        job_free(job);
    }
}

/* Decodes `body` (HTTP 200 unless status says otherwise) as the answer to
 * call `call`. */
static int decode(struct call_result *res, const struct codec_call *call,
                  long status, const char *body)
{
    struct http_response resp = {
        .status = status,
        .body = body,
        .body_len = strlen(body),
    };

    return codec_intime.decode(res, &intime_acct, NULL, call, &resp, errstr,
                               sizeof(errstr));
}

Test(intime, create_answer_maps_ids_to_recipients_in_order)
{
    struct codec_call call = {.op = OP_SEND, .step = 0, .count = 3};
    struct call_result res;

    int ret = decode(&res, &call, 200, "4510,4511,4512\r\n");
    cr_assert(eq(int, ret, 0), "%s", errstr);
    cr_assert(eq(int, res.outcome, CALL_ACCEPTED));
    cr_assert(eq(sz, res.nrecipients, 3));
    cr_assert(eq(str, res.recipients[0].provider_id, "4510"));
    cr_assert(eq(str, res.recipients[2].provider_id, "4512"));
    call_result_cleanup(&res);
}

struct error_row {
    int step;
    char answer[12];
    enum call_outcome outcome;
};

/* Every code of every "Felkoder" table in 000 (steps follow the codec's
 * endpoint order: create, delete, contacts, listgroups, addgroup,
 * deletegroup, nix list, addnix, deletenix, reminder list, add, edit). */
static const struct error_row error_rows[] = {
    {0, "0:ERROR1", CALL_AUTH},     {0, "0:ERROR2", CALL_REJECTED},
    {0, "0:ERROR3", CALL_AUTH},     {0, "1:ERROR1", CALL_REJECTED},
    {0, "1:ERROR2", CALL_REJECTED}, {0, "1:ERROR3", CALL_REJECTED},
    {0, "2:ERROR0", CALL_RETRY},    {0, "2:ERROR1", CALL_RETRY},
    {0, "2:ERROR2", CALL_REJECTED}, {1, "1:ERROR1", CALL_REJECTED},
    {1, "2:ERROR1", CALL_REJECTED}, {1, "2:ERROR2", CALL_FAILED},
    {2, "1:ERROR1", CALL_REJECTED}, {2, "2:ERROR1", CALL_FAILED},
    {2, "3:ERROR1", CALL_REJECTED}, {2, "3:ERROR2", CALL_REJECTED},
    {3, "0:ERROR3", CALL_AUTH},     {3, "2:ERROR1", CALL_ACCEPTED},
    {4, "2:ERROR1", CALL_FAILED},   {5, "1:ERROR1", CALL_REJECTED},
    {5, "2:ERROR1", CALL_FAILED},   {6, "2:ERROR1", CALL_ACCEPTED},
    {7, "2:ERROR1", CALL_FAILED},   {8, "2:ERROR1", CALL_FAILED},
    {9, "2:ERROR1", CALL_ACCEPTED}, {10, "2:ERROR1", CALL_FAILED},
    {11, "2:ERROR1", CALL_FAILED},  {11, "0:ERROR1", CALL_AUTH},
    {0, "9:ERROR9", CALL_FAILED},
};

ParameterizedTestParameters(intime, error_table)
{
    return cr_make_param_array(struct error_row, (void *)error_rows,
                               sizeof(error_rows) / sizeof(error_rows[0]));
}

ParameterizedTest(const struct error_row *row, intime, error_table)
{
    struct codec_call call = {.op = row->step == 0 ? OP_SEND : OP_CONTACTS,
                              .step = row->step,
                              .count = row->step == 0 ? 2 : 0};
    struct call_result res;

    int ret = decode(&res, &call, 200, row->answer);
    cr_assert(eq(int, ret, 0), "%s", errstr);
    cr_assert(eq(int, res.outcome, row->outcome), "%d %s", row->step,
              row->answer);
    cr_assert(eq(str, res.provider_status, (char *)row->answer));
    if (row->outcome != CALL_ACCEPTED)
        cr_assert(eq(str, res.error_code, (char *)row->answer));
    call_result_cleanup(&res);
}

Test(intime, exception_text_is_unreadable_and_http_errors_classify)
{
    struct codec_call call = {.op = OP_SEND, .count = 1};
    struct call_result res;

    int ret = decode(&res, &call, 200,
                     "System.Xml.XmlException: Name cannot begin with the "
                     "'<' character");
    cr_assert(eq(int, ret, -1));
    cr_assert(ne(ptr, strstr(errstr, "Name cannot begin"), NULL), "%s", errstr);
    ret = decode(&res, &call, 503, "busy");
    cr_assert(eq(int, ret, 0));
    cr_assert(eq(int, res.outcome, CALL_RETRY));
    call_result_cleanup(&res);
    ret = decode(&res, &call, 403, "");
    cr_assert(eq(int, res.outcome, CALL_AUTH));
    call_result_cleanup(&res);
    ret = decode(&res, &call, 200, "45,x");
    cr_assert(eq(int, ret, -1));
}

Test(intime, delete_matches_document_and_checks_the_answered_id)
{
    struct codec_calls calls = {0};
    struct call_result res;

    int ret = codec_intime.encode_poll(&calls, &intime_acct, OP_CANCEL,
                                       "1234567", 0, errstr, sizeof(errstr));
    cr_assert(eq(int, ret, 0), "%s", errstr);
    cr_assert(eq(str, calls.calls[0].req.url,
                 "https://sms.intime.nu/api/1.0/message/delete.ashx"
                 "?user=shop&hash=s3cr%26t"));
    assert_body(&calls.calls[0].req,
                "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n"
                "<message>\n"
                "  <messageid>1234567</messageid>\n"
                "</message>\n");
    ret = decode(&res, &calls.calls[0], 200, "1234567");
    cr_assert(eq(int, res.outcome, CALL_ACCEPTED));
    call_result_cleanup(&res);
    ret = decode(&res, &calls.calls[0], 200, "7654321");
    cr_assert(eq(int, res.outcome, CALL_FAILED));
    call_result_cleanup(&res);
    ret = decode(&res, &calls.calls[0], 200, "2:ERROR2");
    cr_assert(eq(int, res.outcome, CALL_FAILED));
    call_result_cleanup(&res);
    codec_calls_cleanup(&calls);
    ret = codec_intime.encode_poll(&calls, &intime_acct, OP_CANCEL, "12a", 0,
                                   errstr, sizeof(errstr));
    cr_assert(eq(int, ret, -1));
    cr_assert(eq(sz, calls.ncalls, 0));
}

struct contact_case {
    char json[600];
    char path[40];
    char body[900];
};

static const struct contact_case contact_cases[] = {
    {"{\"id\":\"c\",\"account\":\"a\",\"action\":\"contact-upsert\","
     "\"contacts\":[{\"msisdn\":\"4670112233\",\"first_name\":\"John\","
     "\"last_name\":\"Svensson\",\"email\":\"john.svensson@company.se\","
     "\"groups\":[\"1\",\"2\"],\"extra\":{\"extrafield\":"
     "\"Ledningsgrupp\"}}]}",
     "contacts/add.ashx",
     "<contacts>\n  <contact>\n    <type>3</type>\n"
     "    <firstname>John</firstname>\n    <lastname>Svensson</lastname>\n"
     "    <email>john.svensson@company.se</email>\n"
     "    <mobile>+4670112233</mobile>\n"
     "    <extrafield>Ledningsgrupp</extrafield>\n    <groups>\n"
     "      <group groupid=\"1\" />\n      <group groupid=\"2\" />\n"
     "    </groups>\n  </contact>\n</contacts>\n"},
    {"{\"id\":\"c\",\"account\":\"a\",\"action\":\"group-create\","
     "\"groups\":[\"Ny grupp\"]}",
     "contacts/addgroup.ashx",
     "<addgroups>\n  <groups>\n    <group groupname=\"Ny grupp\" />\n"
     "  </groups>\n</addgroups>\n"},
    {"{\"id\":\"c\",\"account\":\"a\",\"action\":\"group-delete\","
     "\"groups\":[\"1\"]}",
     "contacts/deletegroup.ashx",
     "<deletegroups>\n  <groups>\n"
     "    <group groupid=\"1\" deletecontacts=\"false\" />\n"
     "  </groups>\n</deletegroups>\n"},
    {"{\"id\":\"c\",\"account\":\"a\",\"action\":\"blocklist-add\","
     "\"msisdns\":[\"4670112233\",\"4670445566\"]}",
     "nix/addnix.ashx",
     "<addnixentries>\n  <nixentries>\n"
     "    <nixentry mobile=\"+4670112233\" />\n"
     "    <nixentry mobile=\"+4670445566\" />\n"
     "  </nixentries>\n</addnixentries>\n"},
    {"{\"id\":\"c\",\"account\":\"a\",\"action\":\"blocklist-remove\","
     "\"msisdns\":[\"4670112233\"]}",
     "nix/deletenix.aspx",
     "<deletenixentries>\n  <nixentries>\n"
     "    <nixentry mobile=\"+4670112233\" />\n"
     "  </nixentries>\n</deletenixentries>\n"},
    {"{\"id\":\"c\",\"account\":\"a\",\"action\":\"reminder-add\","
     "\"reminders\":[{\"appointmentdate\":\"2013-04-25T08:30:00\","
     "\"organizer_firstname\":\"Karl\",\"organizer_lastname\":\"Svensson\","
     "\"organizer_title\":\"En titel\",\"attendant_firstname\":"
     "\"F\xc3\xb6rnamn\",\"attendant_lastname\":\"Efternamn\","
     "\"attendant_mobile\":\"+4670334455\"}]}",
     "reminder/add.ashx",
     "<reminderappointments>\n  <reminderappointment>\n"
     "    <appointmentdate>2013-04-25T08:30:00</appointmentdate>\n"
     "    <organizer_firstname>Karl</organizer_firstname>\n"
     "    <organizer_lastname>Svensson</organizer_lastname>\n"
     "    <organizer_title>En titel</organizer_title>\n"
     "    <attendant_firstname>F\xf6rnamn</attendant_firstname>\n"
     "    <attendant_lastname>Efternamn</attendant_lastname>\n"
     "    <attendant_mobile>+4670334455</attendant_mobile>\n"
     "  </reminderappointment>\n</reminderappointments>\n"},
    {"{\"id\":\"c\",\"account\":\"a\",\"action\":\"reminder-edit\","
     "\"reminders\":[{\"appointmentid\":1472,\"appointmentdate\":"
     "\"2013-04-25T06:30:00Z\",\"active\":false}]}",
     "reminder/edit.ashx",
     "<reminderappointments>\n  <reminderappointment>\n"
     "    <appointmentid>1472</appointmentid>\n"
     "    <appointmentdate>2013-04-25T08:30:00</appointmentdate>\n"
     "    <active>false</active>\n"
     "  </reminderappointment>\n</reminderappointments>\n"},
};

ParameterizedTestParameters(intime, contact_sync_matches_document)
{
    return cr_make_param_array(struct contact_case, (void *)contact_cases,
                               sizeof(contact_cases) /
                                   sizeof(contact_cases[0]));
}

ParameterizedTest(const struct contact_case *c, intime,
                  contact_sync_matches_document)
{
    struct job *job = parse(c->json, JOB_CONTACTS);
    struct codec_calls calls = {0};
    char want[1000], url[200];

    encode_one(&calls, &intime_acct, job, 0);
    snprintf(url, sizeof(url),
             "https://sms.intime.nu/api/1.0/%s?user=shop&hash=s3cr%%26t",
             c->path);
    cr_assert(eq(str, calls.calls[0].req.url, url));
    snprintf(want, sizeof(want),
             "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n%s", c->body);
    assert_body(&calls.calls[0].req, want);
    codec_calls_cleanup(&calls);
    job_free(job);
}

Test(intime, unsupported_and_bad_contact_actions_are_rejected)
{
    static const char *const jobs[] = {
        "{\"id\":\"c\",\"account\":\"a\",\"action\":\"contact-delete\","
        "\"msisdns\":[\"4670112233\"]}",
        "{\"id\":\"c\",\"account\":\"a\",\"action\":\"reminder-add\","
        "\"reminders\":[{\"appointmentdate\":\"2013-04-25T08:30:00\","
        "\"attendant_mobile\":\"4670334455\",\"active\":true}]}",
        "{\"id\":\"c\",\"account\":\"a\",\"action\":\"reminder-edit\","
        "\"reminders\":[{\"active\":false}]}",
        "{\"id\":\"c\",\"account\":\"a\",\"action\":\"reminder-add\","
        "\"reminders\":[{\"appointmentdate\":\"25/4\","
        "\"attendant_mobile\":\"4670334455\"}]}",
    };
    static const char *const want[] = {
        "InTime has no contact-delete action",
        "no field \"active\"",
        "needs \"appointmentid\"",
        "appointmentdate",
    };

    for (size_t i = 0; i < sizeof(jobs) / sizeof(jobs[0]); i++) {
        struct job *job = parse(jobs[i], JOB_CONTACTS);
        int ret = codec_intime.check(&intime_acct, job, errstr, sizeof(errstr));
        cr_expect(eq(int, ret, -1), "job %zu passed", i);
        cr_expect(ne(ptr, strstr(errstr, want[i]), NULL), "job %zu: %s", i,
                  errstr);
        job_free(job);
    }
}

Test(intime, reminder_edit_negative_ids_fail)
{
    struct codec_call call = {.op = OP_CONTACTS, .step = 11};
    struct call_result res;

    int ret = decode(&res, &call, 200, "1471,-1472,-1473");
    cr_assert(eq(int, ret, 0), "%s", errstr);
    cr_assert(eq(int, res.outcome, CALL_FAILED));
    cr_assert(ne(ptr, strstr(res.error_message, "1472,1473"), NULL), "%s",
              res.error_message);
    cr_assert(eq(sz, json_array_size(json_object_get(res.data, "ids")), 3));
    call_result_cleanup(&res);
}

Test(intime, listings_become_json)
{
    struct codec_calls calls = {0};
    struct call_result res;

    int ret =
        codec_intime.encode_poll(&calls, &intime_acct, OP_READ, "reminders:101",
                                 0, errstr, sizeof(errstr));
    cr_assert(eq(int, ret, 0), "%s", errstr);
    cr_assert(eq(str, (char *)calls.calls[0].req.method, "GET"));
    cr_assert(eq(str, calls.calls[0].req.url,
                 "https://sms.intime.nu/api/1.0/reminder/list.ashx"
                 "?user=shop&hash=s3cr%26t&id=101"));
    codec_calls_cleanup(&calls);

    ret = codec_intime.encode_poll(&calls, &intime_acct, OP_READ, "groups", 0,
                                   errstr, sizeof(errstr));
    cr_assert(eq(int, ret, 0), "%s", errstr);
    ret = decode(&res, &calls.calls[0], 200,
                 "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n"
                 "<groups>\n  <group groupid=\"1\">Grupp nummer 1</group>\n"
                 "  <group groupid=\"2\">Gr\xe4ns</group>\n</groups>");
    cr_assert(eq(int, ret, 0), "%s", errstr);
    char *dump = json_dumps(res.data, JSON_COMPACT);
    cr_assert(eq(str, dump,
                 "[{\"groupid\":\"1\",\"name\":\"Grupp nummer 1\"},"
                 "{\"groupid\":\"2\",\"name\":\"Gr\xc3\xa4ns\"}]"));
    free(dump);
    call_result_cleanup(&res);
    codec_calls_cleanup(&calls);
}

Test(intime, hostile_xml_is_refused, .timeout = 10)
{
    struct codec_call call = {.op = OP_READ, .step = 6}; /* nix list */
    struct call_result res;
    static const char *const bodies[] = {
        "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [<!ENTITY lol \"lol\">"
        "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">"
        "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]>"
        "<nixentries><nixentry><mobile>&lol3;</mobile></nixentry>"
        "</nixentries>",
        "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM "
        "\"file:///etc/passwd\">]><nixentries><nixentry><mobile>&e;"
        "</mobile></nixentry></nixentries>",
        "<nixentries><nixentry>",
    };

    for (size_t i = 0; i < 3; i++) {
        int ret = decode(&res, &call, 200, bodies[i]);
        cr_expect(eq(int, ret, -1), "body %zu accepted", i);
    }
}

Test(intime, status_callback_answers_the_messageid)
{
    struct callback_result res;
    struct http_inbound in = {
        .method = "POST",
        .query = "token=abc",
        .content_type = "application/x-www-form-urlencoded",
        .body = "messageid=4510&status=20&transid=j1%3A46701234567",
    };

    in.body_len = strlen(in.body);
    int ret = codec_intime.callback(&res, &intime_acct, CALLBACK_STATUS, &in,
                                    errstr, sizeof(errstr));
    cr_assert(eq(int, ret, 0), "%s", errstr);
    cr_assert(eq(int, res.answer_status, 200));
    cr_assert(eq(str, res.answer_body, "4510"));
    cr_assert(eq(sz, res.nupdates, 1));
    cr_assert(eq(int, res.updates[0].state, STATE_DELIVERED));
    cr_assert(eq(str, res.updates[0].recipient, "46701234567"));
    cr_assert(eq(str, res.updates[0].transid, "j1:46701234567"));
    callback_result_cleanup(&res);

    /* The same in the query, and a failure status. */
    in.query = "token=abc&messageid=4511&status=3&transid=x%3A4670";
    in.body = "";
    in.body_len = 0;
    ret = codec_intime.callback(&res, &intime_acct, CALLBACK_STATUS, &in,
                                errstr, sizeof(errstr));
    cr_assert(eq(int, ret, 0), "%s", errstr);
    cr_assert(eq(int, res.updates[0].state, STATE_FAILED));
    cr_assert(eq(str, res.updates[0].error_code, "3"));
    callback_result_cleanup(&res);

    in.query = "token=abc&status=20";
    ret = codec_intime.callback(&res, &intime_acct, CALLBACK_STATUS, &in,
                                errstr, sizeof(errstr));
    cr_assert(eq(int, ret, -1));
    cr_assert(eq(int, res.answer_status, 400));
    callback_result_cleanup(&res);
}

Test(intime, swedish_time_agrees_with_the_tz_database)
{
    char want[32], got[32];

    setenv("TZ", "Europe/Stockholm", 1);
    tzset();
    /* Every 7 hours from 1997 to 2037 crosses every switch at some hour. */
    for (int64_t t = 852076800; t < 2114380800; t += 7 * 3600 + 1) {
        time_t tt = (time_t)t;
        struct tm tm;
        localtime_r(&tt, &tm);
        strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S", &tm);
        swedish_time_format(got, sizeof(got), t);
        if (strcmp(want, got) != 0)
            cr_assert(eq(str, got, want), "at %lld", (long long)t);
    }
}

Test(intime, fixtures)
{
    int failed = fixture_run_provider("intime");

    cr_assert(eq(int, failed, 0), "%d fixture cases failed", failed);
}
