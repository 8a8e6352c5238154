/* tests/codecs/test_job.c - job parsing and validation (codecs/job.h): one
 * clear error line per problem, and the fields of good jobs. */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>

#include "codecs/job.h"

static int parse(struct job **job, const char *json, enum job_type topic,
                 char *id, char *errstr)
{
    return job_parse(job, json, strlen(json), topic, id, 64, errstr, 256);
}

struct bad_job {
    enum job_type topic;
    char json[320];
    char id[16];
    char error[128];
};

ParameterizedTestParameters(job, errors)
{
    static struct bad_job cases[] = {
        {JOB_SEND, "{\"id\": x}", "",
         "bad JSON at line 1 column 8: invalid "
         "token near 'x'"},
        {JOB_SEND, "[1]", "", "a job must be a JSON object"},
        {JOB_SEND, "{\"id\":\"a\",\"id\":\"b\"}", "",
         "bad JSON at line 1 column 14: duplicate object key near '\"id\"'"},
        {JOB_SEND,
         "{\"account\":\"a\",\"to\":[\"46701234567\"],\"text\":\"x\"}", "",
         "missing \"id\""},
        {JOB_SEND, "{\"id\":7}", "", "\"id\" is not a string"},
        {JOB_SEND, "{\"id\":\"j1\",\"to\":[\"46701234567\"],\"text\":\"x\"}",
         "j1", "missing \"account\""},
        {JOB_SEND, "{\"id\":\"j1\",\"account\":\"a\",\"text\":\"x\"}", "j1",
         "missing \"to\""},
        {JOB_SEND, "{\"id\":\"j1\",\"account\":\"a\",\"to\":[]}", "j1",
         "\"to\" is empty"},
        {JOB_SEND, "{\"id\":\"j1\",\"account\":\"a\",\"to\":{}}", "j1",
         "\"to\" must be a string or an array of numbers and "
         "{\"msisdn\", \"params\"} objects"},
        {JOB_SEND,
         "{\"id\":\"j1\",\"account\":\"a\",\"to\":[\"46701234567\",\"4670\"],"
         "\"text\":\"x\"}",
         "j1", "\"to\"[1]: number too short (4 digits, 8 at least)"},
        {JOB_SEND,
         "{\"id\":\"j1\",\"account\":\"a\",\"to\":[\"46701234567\", 5]}", "j1",
         "\"to\"[1] is neither a number string nor an object"},
        {JOB_SEND, "{\"id\":\"j1\",\"account\":\"a\",\"to\":\"0701234567\"}",
         "j1",
         "\"to\": number starts with 0: give it with its country "
         "code"},
        {JOB_SEND, "{\"id\":\"j1\",\"account\":\"a\",\"to\":\"46701234567\"}",
         "j1", "missing \"text\""},
        {JOB_SEND,
         "{\"id\":\"j1\",\"account\":\"a\",\"to\":\"46701234567\",\"text\":"
         "\"\"}",
         "j1", "\"text\" is empty"},
        {JOB_SEND,
         "{\"id\":\"j1\",\"account\":\"a\",\"to\":\"46701234567\",\"text\":"
         "\"x\",\"send_at\":\"2026-11-24 08:00\"}",
         "j1", "\"send_at\": not an RFC 3339 time"},
        {JOB_SEND,
         "{\"id\":\"j1\",\"account\":\"a\",\"to\":\"46701234567\",\"text\":"
         "\"x\",\"send_at\":\"2026-02-29T08:00:00Z\"}",
         "j1", "\"send_at\": not an RFC 3339 time"},
        {JOB_SEND,
         "{\"id\":\"j1\",\"account\":\"a\",\"to\":\"46701234567\",\"text\":"
         "\"x\",\"send_at\":\"2026-11-24T08:00:00\"}",
         "j1", "\"send_at\": not an RFC 3339 time"},
        {JOB_SEND,
         "{\"id\":\"j1\",\"account\":\"a\",\"to\":\"46701234567\",\"text\":"
         "\"x\",\"flash\":1}",
         "j1", "\"flash\" is not true or false"},
        {JOB_SEND,
         "{\"id\":\"j1\",\"account\":\"a\",\"to\":\"46701234567\",\"text\":"
         "\"x\",\"priority\":\"high\"}",
         "j1", "\"priority\" is not an integer from 0 to 9"},
        {JOB_SEND, "{\"id\":\"j1\",\"type\":\"campaign\"}", "j1",
         "\"type\" \"campaign\" contradicts topic type send"},
        {JOB_CONTACTS, "{\"id\":\"j1\",\"type\":\"send\"}", "j1",
         "\"type\" \"send\" contradicts topic type contact-sync"},
        {JOB_SEND, "{\"id\":\"j1\",\"type\":\"fax\"}", "j1",
         "unknown type \"fax\""},
        {JOB_CAMPAIGN, "{\"id\":\"c1\",\"account\":\"a\",\"action\":\"x\"}",
         "c1", "unknown action \"x\" for a campaign job"},
        {JOB_CAMPAIGN, "{\"id\":\"c1\",\"account\":\"a\"}", "c1",
         "missing \"action\""},
        {JOB_CAMPAIGN,
         "{\"id\":\"c1\",\"account\":\"a\",\"action\":\"create\",\"text\":"
         "\"x\"}",
         "c1", "missing \"to\" or \"groups\""},
        {JOB_CAMPAIGN,
         "{\"id\":\"c2\",\"account\":\"a\",\"action\":\"cancel\"}", "c2",
         "missing \"campaign_id\""},
        {JOB_CONTACTS,
         "{\"id\":\"k1\",\"account\":\"a\",\"action\":\"create\"}", "k1",
         "unknown action \"create\" for a contact-sync job"},
        {JOB_CONTACTS,
         "{\"id\":\"k1\",\"account\":\"a\",\"action\":\"contact-upsert\"}",
         "k1",
         "missing \"contacts\" or \"contacts_list_url\" for "
         "contact-upsert"},
        {JOB_CONTACTS,
         "{\"id\":\"k1\",\"account\":\"a\",\"action\":\"contact-upsert\","
         "\"contacts\":[{\"msisdn\":\"46701234567\"},{\"name\":\"x\"}]}",
         "k1", "\"contacts\"[1]: missing \"msisdn\""},
        {JOB_CONTACTS,
         "{\"id\":\"k1\",\"account\":\"a\",\"action\":\"contact-upsert\","
         "\"contacts\":[{\"msisdn\":\"46701234567\",\"groups\":[1]}]}",
         "k1", "\"contacts\"[0]: \"groups\"[0] is not a string"},
        {JOB_CONTACTS,
         "{\"id\":\"k1\",\"account\":\"a\",\"action\":\"blocklist-add\"}", "k1",
         "missing \"msisdns\" for blocklist-add"},
        {JOB_CONTACTS,
         "{\"id\":\"k1\",\"account\":\"a\",\"action\":\"blocklist-add\","
         "\"msisdns\":[\"46701234567\",\"abc\"]}",
         "k1",
         "\"msisdns\"[1]: number has a character that is not a "
         "digit: 'a'"},
        {JOB_CONTACTS,
         "{\"id\":\"k1\",\"account\":\"a\",\"action\":\"group-add-member\","
         "\"groups\":[\"g\"]}",
         "k1", "missing \"contacts\" or \"msisdns\" for group-add-member"},
        {JOB_CONTACTS,
         "{\"id\":\"k1\",\"account\":\"a\",\"action\":\"reminder-add\"}", "k1",
         "missing \"reminders\" for reminder-add"},
    };
    return cr_make_param_array(struct bad_job, cases,
                               sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad_job *c, job, errors)
{
    struct job *job = NULL;
    char id[64] = "?", errstr[256] = "";

    int ret = parse(&job, c->json, c->topic, id, errstr);
    cr_assert(eq(int, ret, -1), "parsed: %s", c->json);
    cr_expect(eq(str, errstr, c->error));
    cr_expect(eq(str, id, c->id));
    cr_expect(job == NULL);
}

Test(job, send_fields)
{
    const char *json =
        "{ \"id\": \"order-1001-shipped\", \"account\": \"shop-jojka\","
        " \"to\": [\"+46701234567\", \"0046709771337\"],"
        " \"from\": \"Shop\", \"text\": \"Din order har skickats\","
        " \"send_at\": \"2026-11-24T08:00:00Z\", \"flash\": false,"
        " \"priority\": 1, \"reference\": \"order-1001\" }";
    struct job *job = NULL;
    char id[64], errstr[256] = "";

    int ret = parse(&job, json, JOB_SEND, id, errstr);
    cr_assert(eq(int, ret, 0), "%s", errstr);
    cr_expect(eq(int, job->type, JOB_SEND));
    cr_expect(eq(str, (char *)job->id, "order-1001-shipped"));
    cr_expect(eq(str, (char *)job->account, "shop-jojka"));
    cr_assert(eq(sz, job->nto, 2));
    cr_expect(eq(str, job->to[0], "46701234567"));
    cr_expect(eq(str, job->to[1], "46709771337"));
    cr_expect(eq(str, (char *)job->from, "Shop"));
    cr_expect(eq(sz, job->text_len, 22));
    cr_expect(eq(int, job->text_info.coding, TEXT_GSM7));
    cr_expect(eq(uint, job->text_info.segments, 1));
    cr_expect(eq(i64, job->send_at_ms, 1795507200000LL));
    cr_expect(eq(int, job->priority, 1));
    cr_expect(eq(str, (char *)job->reference, "order-1001"));
    job_free(job);
}

struct time_case {
    char in[40];
    long long ms;
};

ParameterizedTestParameters(job, send_at)
{
    static struct time_case cases[] = {
        {"1970-01-01T00:00:00Z", 0},
        {"2026-11-24T08:00:00Z", 1795507200000LL},
        {"2026-11-24t08:00:00z", 1795507200000LL},
        {"2026-11-24T09:00:00+01:00", 1795507200000LL},
        {"2026-11-24T03:30:00-04:30", 1795507200000LL},
        {"2026-11-24T08:00:00.5Z", 1795507200500LL},
        {"2026-11-24T08:00:00.123456Z", 1795507200123LL},
        {"2024-02-29T00:00:00Z", 1709164800000LL},
    };
    return cr_make_param_array(struct time_case, cases,
                               sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct time_case *c, job, send_at)
{
    char json[256], id[64], errstr[256] = "";
    struct job *job = NULL;

    snprintf(json, sizeof(json),
             "{\"id\":\"t\",\"account\":\"a\",\"to\":\"46701234567\","
             "\"text\":\"x\",\"send_at\":\"%s\"}",
             c->in);
    int ret = parse(&job, json, JOB_SEND, id, errstr);
    cr_assert(eq(int, ret, 0), "%s: %s", c->in, errstr);
    cr_expect(eq(i64, job->send_at_ms, c->ms), "%s", c->in);
    job_free(job);
}

Test(job, limits)
{
    /* 10001 bytes of text. */
    size_t n = 10001;
    char *json = malloc(n + 128);
    char id[64], errstr[256] = "";
    struct job *job = NULL;

    int w = snprintf(json, 128,
                     "{\"id\":\"t\",\"account\":\"a\",\"to\":\"46701234567\","
                     "\"text\":\"");
    memset(json + w, 'a', n);
    strcpy(json + w + n, "\"}");
    int ret = parse(&job, json, JOB_SEND, id, errstr);
    cr_assert(eq(int, ret, -1));
    cr_expect(eq(str, errstr, "text is 10001 bytes, 10000 at most"));
    free(json);
}

/* Issue 9 #7: an id too long for Redis' keys is refused at parse (the
 * DLQ), never parked. */
Test(job, id_over_the_limit)
{
    char json[1024], big[JOB_MAX_ID + 2], id[64], errstr[256] = "";
    struct job *job = NULL;

    memset(big, 'i', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    snprintf(json, sizeof(json),
             "{\"id\":\"%s\",\"account\":\"a\",\"to\":\"46701234567\","
             "\"text\":\"hej\"}",
             big);
    int ret = parse(&job, json, JOB_SEND, id, errstr);
    cr_assert(eq(int, ret, -1));
    cr_expect(eq(str, errstr, "\"id\" is 257 bytes; at most 256"));
    big[JOB_MAX_ID] = '\0';
    snprintf(json, sizeof(json),
             "{\"id\":\"%s\",\"account\":\"a\",\"to\":\"46701234567\","
             "\"text\":\"hej\"}",
             big);
    ret = parse(&job, json, JOB_SEND, id, errstr);
    cr_assert(eq(int, ret, 0), "%s", errstr);
    job_free(job);
}

Test(job, too_many_recipients)
{
    size_t n = 100001;
    char *json = malloc(n * 16 + 128);
    char id[64], errstr[256] = "";
    struct job *job = NULL;

    size_t w = (size_t)sprintf(json, "{\"id\":\"t\",\"account\":\"a\","
                                     "\"text\":\"x\",\"to\":[");
    for (size_t i = 0; i < n; i++)
        w += (size_t)sprintf(json + w, "%s\"46701234567\"", i ? "," : "");
    strcpy(json + w, "]}");
    int ret = parse(&job, json, JOB_SEND, id, errstr);
    cr_assert(eq(int, ret, -1));
    cr_expect(eq(str, errstr, "\"to\" has 100001 numbers, 100000 at most"));
    free(json);
}

Test(job, campaign_and_contacts)
{
    const char *camp =
        "{\"id\":\"c1\",\"account\":\"a\",\"type\":\"campaign\","
        "\"action\":\"create\",\"name\":\"spring\",\"groups\":[\"all\"],"
        "\"text\":\"Rea! \\u20ac\"}";
    const char *contacts =
        "{\"id\":\"k1\",\"account\":\"a\",\"action\":\"contact-upsert\","
        "\"contacts\":[{\"msisdn\":\"+46709771337\",\"first_name\":"
        "\"Lilleman\",\"groups\":[\"Utvecklare\",\"Jojka personal\"],"
        "\"extra\":{\"k\":1}}]}";
    struct job *job = NULL;
    char id[64], errstr[256] = "";

    int ret = parse(&job, camp, JOB_CAMPAIGN, id, errstr);
    cr_assert(eq(int, ret, 0), "%s", errstr);
    cr_expect(eq(int, job->action, ACTION_CREATE));
    cr_expect(eq(sz, job->nto, 0));
    cr_assert(eq(sz, job->ngroups, 1));
    cr_expect(eq(str, (char *)job->groups[0], "all"));
    cr_expect(eq(str, (char *)job->name, "spring"));
    cr_expect(eq(sz, job->text_info.units, 7));
    cr_expect(eq(str, (char *)job_action_name(job->action), "create"));
    job_free(job);

    ret = parse(&job, contacts, JOB_CONTACTS, id, errstr);
    cr_assert(eq(int, ret, 0), "%s", errstr);
    cr_expect(eq(int, job->action, ACTION_CONTACT_UPSERT));
    cr_assert(eq(sz, job->ncontacts, 1));
    cr_expect(eq(str, (char *)job->contacts[0].msisdn, "46709771337"));
    cr_expect(eq(str, (char *)job->contacts[0].first_name, "Lilleman"));
    cr_expect(job->contacts[0].last_name == NULL);
    cr_expect(eq(sz, job->contacts[0].ngroups, 2));
    cr_expect(job->contacts[0].extra != NULL);
    cr_expect(eq(str, (char *)job_type_name(job->type), "contact-sync"));
    job_free(job);
}
