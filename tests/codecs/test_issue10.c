/* tests/codecs/test_issue10.c - what the engine of issue 10 stands on:
 * per-provider segment rules, one call per slice of codec_per_call()
 * recipients on every provider, personal texts, stop words, the iP.1
 * reference of long job ids and the read action names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>

#include "codecs/codec.h"
#include "codecs/job.h"
#include "codecs/text.h"

static char errstr[512];

/* ---------------------------------------------------------------- */
/* Accounts, one per provider, with what each codec needs. */

static struct account acct_of(const struct codec *c)
{
    struct account a = {0};

    a.name = "acct";
    a.codec = c;
    a.default_sender = "Shop";
    a.callback_url = "https://kurir.example/callbacks/acct";
    if (c == &codec_intime) {
        a.base_url = "https://sms.intime.nu/api/1.0";
        a.creds[0] = (struct account_cred){"user", "u"};
        a.creds[1] = (struct account_cred){"hash", "h"};
        a.ncreds = 2;
    } else if (c == &codec_ip1_legacy) {
        a.base_url = "https://web.smscom.se";
        a.creds[0] = (struct account_cred){"account", "ip1-1000"};
        a.creds[1] = (struct account_cred){"password", "k"};
        a.ncreds = 2;
        a.options.legacy_unconfirmed_soap = true; /* the whole SOAP set */
    } else if (c == &codec_ip1) {
        a.base_url = "https://api.ip1sms.com";
        a.creds[0] = (struct account_cred){"api_key", "k"};
        a.ncreds = 1;
    } else {
        a.base_url = "https://www.jojka.nu/websms/api";
        a.creds[0] = (struct account_cred){"api_key", "k"};
        a.ncreds = 1;
    }
    return a;
}

static struct job *parse_job(const char *json, enum job_type topic)
{
    struct job *job = NULL;
    char id[64];

    int ret = job_parse(&job, json, strlen(json), topic, id, sizeof(id), errstr,
                        sizeof(errstr));
    cr_assert(eq(int, ret, 0), "%s", errstr);
    return job;
}

/* Builds a job JSON with n recipients 4670000xxxx and `rest` after them. */
static char *many_to(size_t n, const char *head, const char *rest)
{
    size_t cap = strlen(head) + strlen(rest) + n * 16 + 64;
    char *s = malloc(cap);
    size_t len = (size_t)snprintf(s, cap, "%s\"to\":[", head);
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, cap - len, "%s\"4670%07zu\"",
                                i ? "," : "", i);
    snprintf(s + len, cap - len, "],%s}", rest);
    return s;
}

/* ---------------------------------------------------------------- */
/* Segment rules: the boundaries the documents give. */

/* Parameters go to a re-executed process, so they name codecs rather than
 * point at them. */
struct seg_case {
    char codec[16];
    char unit[8];
    size_t n;
    char tail[8];
    unsigned want;
};

ParameterizedTestParameters(issue10, segments)
{
    static struct seg_case cases[] = {
        /* InTime: 160 characters, then parts of 134, 6 at most (804). */
        {"intime", "a", 160, "", 1},
        {"intime", "a", 161, "", 2},
        {"intime", "a", 268, "", 2},
        {"intime", "a", 269, "", 3},
        {"intime", "a", 804, "", 6},
        /* InTime counts characters: "{" is one, not an escape pair. */
        {"intime", "{", 160, "", 1},
        /* Legacy: 160, then parts of 152; a newline counts three. */
        {"ip1-legacy", "a", 160, "", 1},
        {"ip1-legacy", "a", 161, "", 2},
        {"ip1-legacy", "a", 304, "", 2},
        {"ip1-legacy", "a", 305, "", 3},
        {"ip1-legacy", "a", 157, "\n", 1}, /* 157 + 3 = 160 */
        {"ip1-legacy", "a", 158, "\n", 2}, /* 161 */
        /* The others: 3GPP's 160/153 and 70/67. */
        {"ip1", "a", 160, "", 1},
        {"ip1", "a", 161, "", 2},
        {"ip1", "a", 306, "", 2},
        {"ip1", "a", 307, "", 3},
        {"ip1", "a", 158, "\n", 1},       /* a newline is one septet */
        {"jojka", "\xd0\x96", 70, "", 1}, /* Ж: UCS-2 */
        {"jojka", "\xd0\x96", 71, "", 2},
        {"jojka", "\xd0\x96", 134, "", 2},
        {"jojka", "\xd0\x96", 135, "", 3},
        {"jojka", "{", 80, "", 1}, /* 160 septets */
        {"jojka", "{", 81, "", 2}, /* 162: escape pairs */
        {"jojka", "a", 0, "", 1},  /* empty text: one SMS */
    };
    return cr_make_param_array(struct seg_case, cases,
                               sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct seg_case *c, issue10, segments)
{
    const struct codec *codec = codec_find(c->codec);
    size_t ul = strlen(c->unit), cap = ul * c->n + 8;
    char *s = malloc(cap);
    size_t len = 0;
    for (size_t i = 0; i < c->n; i++, len += ul)
        memcpy(s + len, c->unit, ul);
    memcpy(s + len, c->tail, strlen(c->tail) + 1);
    len += strlen(c->tail);
    cr_assert(eq(uint, codec_segments(codec, s, len), c->want),
              "%s: %zu x %s + %zu", c->codec, c->n, c->unit, strlen(c->tail));
    free(s);
}

Test(issue10, segments_of_bad_utf8_are_zero)
{
    cr_assert(eq(uint, codec_segments(&codec_ip1, "a\xff", 2), 0));
    cr_assert(eq(uint, text_segments(&segment_rule_gsm, "a\0b", 3), 0));
}

/* ---------------------------------------------------------------- */
/* One call per slice: 2.5 x the per-call limit in slices gives 3 calls,
 * each within the limit, on every provider and job kind. */

struct slice_case {
    char codec[16];
    enum job_type topic;
    char head[64];
    char rest[120];
    size_t per_call;
};

ParameterizedTestParameters(issue10, slices)
{
    static struct slice_case cases[] = {
        {"intime", JOB_SEND, "{\"id\":\"s\",\"account\":\"a\",",
         "\"text\":\"Hej\"", 1000},
        {"intime", JOB_CAMPAIGN,
         "{\"id\":\"c\",\"account\":\"a\",\"action\":\"create\",",
         "\"text\":\"Hej\"", 1000},
        {"ip1", JOB_SEND, "{\"id\":\"s\",\"account\":\"a\",",
         "\"text\":\"Hej\"", 500},
        {"ip1", JOB_CAMPAIGN,
         "{\"id\":\"c\",\"account\":\"a\",\"action\":\"create\",",
         "\"text\":\"Hej\"", 500},
        {"ip1-legacy", JOB_SEND, "{\"id\":\"s\",\"account\":\"a\",",
         "\"text\":\"Hej\"", 500},
        {"ip1-legacy", JOB_SEND, "{\"id\":\"s\",\"account\":\"a\",",
         "\"text\":\"Hej\",\"flash\":true", 1},
        {"ip1-legacy", JOB_CAMPAIGN,
         "{\"id\":\"c\",\"account\":\"a\",\"action\":\"create\",",
         "\"text\":\"Hej\"", 500},
        {"jojka", JOB_SEND, "{\"id\":\"s\",\"account\":\"a\",",
         "\"text\":\"Hej\"", 1},
        {"jojka", JOB_CAMPAIGN,
         "{\"id\":\"c\",\"account\":\"a\",\"action\":\"create\",",
         "\"text\":\"Hej\"", 1000},
    };
    return cr_make_param_array(struct slice_case, cases,
                               sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct slice_case *c, issue10, slices)
{
    const struct codec *codec = codec_find(c->codec);
    struct account acct = acct_of(codec);
    size_t n = c->per_call == 1 ? 3 : c->per_call * 5 / 2;
    char *json = many_to(n, c->head, c->rest);
    struct job *job = parse_job(json, c->topic);
    struct codec_calls *calls = calloc(1, sizeof(*calls));
    size_t per = codec_per_call(codec, &acct, job);

    cr_assert(eq(sz, per, c->per_call), "%s", codec->name);
    for (size_t first = 0; first < job->nto; first += per) {
        size_t count = job->nto - first < per ? job->nto - first : per;
        size_t before = calls->ncalls;
        int ret = codec->encode(calls, &acct, job, first, count, 1700000000,
                                errstr, sizeof(errstr));
        cr_assert(eq(int, ret, 0), "%s: %s", codec->name, errstr);
        cr_assert(eq(sz, calls->ncalls, before + 1), "%s", codec->name);
        cr_assert(le(sz, calls->calls[before].count, per));
        cr_assert(eq(sz, calls->calls[before].first, first));
    }
    cr_assert(eq(sz, calls->ncalls, 3), "%s", codec->name);

    /* One more than the limit is refused, clearly, with nothing added. */
    size_t before = calls->ncalls;
    int ret = codec->encode(calls, &acct, job, 0, per + 1, 1700000000, errstr,
                            sizeof(errstr));
    cr_assert(eq(int, ret, -1), "%s", codec->name);
    cr_assert(ne(ptr, strstr(errstr, "recipients per call"), NULL), "%s",
              errstr);
    cr_assert(eq(sz, calls->ncalls, before));

    codec_calls_cleanup(calls);
    free(calls);
    job_free(job);
    free(json);
}

/* Without the unconfirmed SOAP set, a legacy bundle becomes one confirmed
 * "sms" call per recipient, and flash is refused by check(). */
Test(issue10, legacy_confirmed_only)
{
    struct account acct = acct_of(&codec_ip1_legacy);
    acct.options.legacy_unconfirmed_soap = false;
    char *json =
        many_to(3, "{\"id\":\"s\",\"account\":\"a\",", "\"text\":\"Hej\"");
    struct job *job = parse_job(json, JOB_SEND);
    struct codec_calls calls = {0};

    cr_assert(eq(sz, codec_per_call(&codec_ip1_legacy, &acct, job), 1));
    for (size_t i = 0; i < 3; i++)
        cr_assert(
            eq(int,
               codec_ip1_legacy.encode(&calls, &acct, job, i, 1, 1700000000,
                                       errstr, sizeof(errstr)),
               0),
            "%s", errstr);
    cr_assert(eq(sz, calls.ncalls, 3));
    for (size_t i = 0; i < 3; i++)
        cr_assert(
            ne(ptr, strstr(calls.calls[i].req.body, "<sms xmlns="), NULL));
    codec_calls_cleanup(&calls);
    job_free(job);
    free(json);

    job = parse_job("{\"id\":\"f\",\"account\":\"a\",\"to\":\"46701234567\","
                    "\"text\":\"x\",\"flash\":true}",
                    JOB_SEND);
    cr_assert(eq(
        int, codec_ip1_legacy.check(&acct, job, errstr, sizeof(errstr)), -1));
    cr_assert(ne(ptr, strstr(errstr, "FlashSMS is unconfirmed"), NULL));
    job_free(job);
}

/* ---------------------------------------------------------------- */
/* Personal texts. */

static const char personal_job[] =
    "{\"id\":\"p1\",\"account\":\"a\",\"text\":\"Hej {name}, {{x} {when}\","
    "\"to\":[{\"msisdn\":\"+46701234567\",\"params\":{\"name\":\"Anna\","
    "\"when\":\"idag\"}},{\"msisdn\":\"46701234568\",\"params\":{\"name\":"
    "\"\xc3\x85sa\",\"when\":\"imorgon\"}}]}";

Test(issue10, render_per_recipient)
{
    struct job *job = parse_job(personal_job, JOB_SEND);
    char buf[128];
    size_t n;

    cr_assert(job_is_personal(job));
    cr_assert(eq(sz, job->nto, 2));
    cr_assert(eq(str, job->to[0], "46701234567"));
    cr_assert(eq(
        int,
        job_render_text(job, 0, buf, sizeof(buf), &n, errstr, sizeof(errstr)),
        0));
    cr_assert(eq(str, buf, "Hej Anna, {x} idag"));
    cr_assert(eq(sz, n, strlen(buf)));
    cr_assert(eq(
        int,
        job_render_text(job, 1, buf, sizeof(buf), &n, errstr, sizeof(errstr)),
        0));
    cr_assert(eq(str, buf, "Hej \xc3\x85sa, {x} imorgon"));
    /* A buffer too small is an error, not a cut text. */
    cr_assert(eq(
        int, job_render_text(job, 1, buf, 8, &n, errstr, sizeof(errstr)), -1));
    job_free(job);
}

Test(issue10, text_without_params_is_sent_as_written)
{
    struct job *job = parse_job("{\"id\":\"p\",\"account\":\"a\",\"to\":"
                                "[\"46701234567\"],\"text\":\"{name} {{\"}",
                                JOB_SEND);
    char buf[64];

    cr_assert(not(job_is_personal(job)));
    cr_assert(eq(
        int,
        job_render_text(job, 0, buf, sizeof(buf), NULL, errstr, sizeof(errstr)),
        0));
    cr_assert(eq(str, buf, "{name} {{"));
    job_free(job);
}

struct bad_params {
    char json[260];
    char error[120];
};

ParameterizedTestParameters(issue10, bad_params)
{
    static struct bad_params cases[] = {
        {"{\"id\":\"p\",\"account\":\"a\",\"text\":\"Hej {name}\",\"to\":["
         "\"46701234567\",{\"msisdn\":\"46701234568\",\"params\":{\"name\":"
         "\"B\"}}]}",
         "recipient 0 has no value for placeholder \"{name}\""},
        {"{\"id\":\"p\",\"account\":\"a\",\"text\":\"Hej {nme}\",\"to\":["
         "{\"msisdn\":\"46701234568\",\"params\":{\"name\":\"B\"}}]}",
         "recipient 0 has no value for placeholder \"{nme}\""},
        {"{\"id\":\"p\",\"account\":\"a\",\"text\":\"x\",\"to\":[{\"msisdn\":"
         "\"46701234568\",\"params\":{\"n\":5}}]}",
         "\"to\"[0]: \"params\".n is not a string"},
        {"{\"id\":\"p\",\"account\":\"a\",\"text\":\"x\",\"to\":[{\"msisdn\":"
         "\"46701234568\",\"params\":[]}]}",
         "\"to\"[0]: \"params\" is not an object"},
        {"{\"id\":\"p\",\"account\":\"a\",\"text\":\"x\",\"to\":[{\"msisdn\":"
         "\"46701234568\",\"params\":{\"a b\":\"x\"}}]}",
         "\"to\"[0]: \"params\" key \"a b\" is not 1-32 of a-z A-Z 0-9 _"},
        {"{\"id\":\"p\",\"account\":\"a\",\"text\":\"x\",\"to\":[{\"params\":"
         "{}}]}",
         "\"to\"[0]: missing \"msisdn\" string"},
        {"{\"id\":\"p\",\"account\":\"a\",\"text\":\"x\",\"to\":[{\"msisdn\":"
         "\"4670\"}]}",
         "\"to\"[0]: number too short (4 digits, 8 at least)"},
    };
    return cr_make_param_array(struct bad_params, cases,
                               sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad_params *c, issue10, bad_params)
{
    struct job *job = NULL;
    char id[64];

    int ret = job_parse(&job, c->json, strlen(c->json), JOB_SEND, id,
                        sizeof(id), errstr, sizeof(errstr));
    cr_assert(eq(int, ret, -1));
    cr_assert(eq(str, errstr, c->error));
}

Test(issue10, params_are_bounded)
{
    char json[4096];
    size_t len = (size_t)snprintf(json, sizeof(json),
                                  "{\"id\":\"p\",\"account\":\"a\",\"text\":"
                                  "\"x\",\"to\":[{\"msisdn\":\"46701234567\","
                                  "\"params\":{");
    for (int i = 0; i < 17; i++)
        len += (size_t)snprintf(json + len, sizeof(json) - len,
                                "%s\"k%d\":\"v\"", i ? "," : "", i);
    snprintf(json + len, sizeof(json) - len, "}}]}");
    struct job *job = NULL;
    char id[64];
    cr_assert(eq(int,
                 job_parse(&job, json, strlen(json), JOB_SEND, id, sizeof(id),
                           errstr, sizeof(errstr)),
                 -1));
    cr_assert(
        eq(str, errstr, "\"to\"[0]: \"params\" has 17 entries, 16 at most"));
}

/* Every provider sends a personal job one recipient per call, each call
 * carrying that recipient's own text. */
ParameterizedTestParameters(issue10, personal_encode)
{
    static struct seg_case codecs[] = {
        {"intime", "", 0, "", 0},
        {"ip1", "", 0, "", 0},
        {"ip1-legacy", "", 0, "", 0},
        {"jojka", "", 0, "", 0},
    };
    return cr_make_param_array(struct seg_case, codecs, 4);
}

ParameterizedTest(struct seg_case *cp, issue10, personal_encode)
{
    const struct codec *c = codec_find(cp->codec);
    struct account acct = acct_of(c);
    struct job *job = parse_job(personal_job, JOB_SEND);
    struct codec_calls calls = {0};

    cr_assert(eq(sz, codec_per_call(c, &acct, job), 1));
    for (size_t i = 0; i < job->nto; i++)
        cr_assert(eq(int,
                     c->encode(&calls, &acct, job, i, 1, 1700000000, errstr,
                               sizeof(errstr)),
                     0),
                  "%s: %s", c->name, errstr);
    cr_assert(eq(sz, calls.ncalls, 2));
    /* The name lands in the request in the provider's own encoding: plain
     * ASCII "Anna" in every one; Åsa as UTF-8, Latin-1 or escaped. */
    for (size_t i = 0; i < 2; i++) {
        const struct http_request *r = &calls.calls[i].req;
        const char *hay = r->body != NULL ? r->body : r->url;
        cr_assert(ne(ptr, strstr(hay, i == 0 ? "Anna" : "imorgon"), NULL),
                  "%s call %zu: %s", c->name, i, hay);
        cr_assert(eq(ptr, strstr(hay, "{name}"), NULL), "%s", c->name);
    }
    cr_assert(eq(
        int,
        c->encode(&calls, &acct, job, 0, 2, 1700000000, errstr, sizeof(errstr)),
        -1));
    codec_calls_cleanup(&calls);
    job_free(job);
}

/* ---------------------------------------------------------------- */
/* Stop words. */

Test(issue10, stop_words)
{
    static const char *const yes[] = {"STOP", "stop", " Stopp\n",
                                      "\tavregistrera\r\n", "STOPP"};
    static const char *const no[] = {"STOP please", "stopper", "",     "  ",
                                     "NO STOP",     "S TOP",   "STOP."};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        cr_assert(text_is_stop_word(yes[i], NULL), "\"%s\"", yes[i]);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        cr_assert(not(text_is_stop_word(no[i], NULL)), "\"%s\"", no[i]);
    static const char *const own[] = {"SLUTA", NULL};
    cr_assert(text_is_stop_word("sluta", own));
    cr_assert(not(text_is_stop_word("STOP", own)));
}

/* ---------------------------------------------------------------- */
/* iP.1 references. */

Test(issue10, ip1_reference)
{
    char ref[CODEC_IP1_REFERENCE_MAX + 1], again[CODEC_IP1_REFERENCE_MAX + 1];
    const char *forty = "0123456789012345678901234567890123456789";

    cr_assert(not(codec_ip1_reference(ref, forty)));
    cr_assert(eq(str, ref, (char *)forty));

    const char *longer = "order-2026-12-01-customer-1234567-reminder-3";
    cr_assert(codec_ip1_reference(ref, longer));
    cr_assert(le(sz, strlen(ref), CODEC_IP1_REFERENCE_MAX));
    cr_assert(eq(int, strncmp(ref, longer, CODEC_IP1_REFERENCE_KEEP), 0));
    cr_assert(eq(chr, ref[CODEC_IP1_REFERENCE_KEEP], '~'));
    codec_ip1_reference(again, longer);
    cr_assert(eq(str, ref, again)); /* stable across retries */
    const char *other = "order-2026-12-01-customer-1234567-reminder-4";
    codec_ip1_reference(again, other);
    cr_assert(ne(str, ref, again)); /* same head, other id */

    /* Not cut inside a UTF-8 character: "å" is two bytes at 22-23. */
    const char *utf = "aaaaaaaaaaaaaaaaaaaaaa\xc3\xa5xxxxxxxxxxxxxxxxxxxxxxxxx";
    codec_ip1_reference(ref, utf);
    cr_assert(eq(chr, ref[22], '~'), "%s", ref);
}

/* ---------------------------------------------------------------- */
/* Read actions and the contacts topic's new fields. */

Test(issue10, read_actions_parse)
{
    static const char *const reads[] = {
        "list-groups", "list-blocklist", "list-reminders",  "export-contacts",
        "balance",     "list-senders",   "blocklist-import"};
    for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
        char json[160];
        snprintf(json, sizeof(json),
                 "{\"id\":\"r\",\"account\":\"a\",\"action\":\"%s\","
                 "\"page\":2}",
                 reads[i]);
        struct job *job = parse_job(json, JOB_CONTACTS);
        cr_assert(
            eq(str, (char *)job_action_name(job->action), (char *)reads[i]));
        cr_assert(job_action_is_read(job->action));
        cr_assert(eq(int, job->page, 2));
        job_free(job);
    }
    struct job *job =
        parse_job("{\"id\":\"r\",\"account\":\"a\",\"action\":"
                  "\"message-status\",\"provider_id\":\"116690855\"}",
                  JOB_CONTACTS);
    cr_assert(eq(str, (char *)job->provider_id, "116690855"));
    job_free(job);

    struct bad_params bad[] = {
        {"{\"id\":\"r\",\"account\":\"a\",\"action\":\"campaign-status\"}",
         "missing \"provider_id\" for campaign-status"},
        {"{\"id\":\"r\",\"account\":\"a\",\"action\":\"check-blocklist\"}",
         "missing \"msisdns\" for check-blocklist"},
        {"{\"id\":\"r\",\"account\":\"a\",\"action\":\"register-sender\"}",
         "missing \"from\" (the sender to register) for register-sender"},
        {"{\"id\":\"r\",\"account\":\"a\",\"action\":\"label-add\","
         "\"groups\":\"vip\"}",
         "missing \"contact_ids\" for label-add"},
        {"{\"id\":\"r\",\"account\":\"a\",\"action\":\"contact-update\","
         "\"contacts\":[{\"msisdn\":\"46701234567\"}]}",
         "missing \"provider_id\" (the provider's contact id) for "
         "contact-update"},
        {"{\"id\":\"r\",\"account\":\"a\",\"action\":\"contact-upsert\","
         "\"contacts_list_url\":\"http://x\"}",
         "\"contacts_list_url\" is not an https:// URL"},
        {"{\"id\":\"r\",\"account\":\"a\",\"action\":\"balance\",\"page\":0}",
         "\"page\" is not an integer from 1 to 1000000"},
        {"{\"id\":\"r\",\"account\":\"a\",\"action\":\"list-everything\"}",
         "unknown action \"list-everything\" for a contact-sync job"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct job *j = NULL;
        char id[64];
        cr_assert(
            eq(int,
               job_parse(&j, bad[i].json, strlen(bad[i].json), JOB_CONTACTS, id,
                         sizeof(id), errstr, sizeof(errstr)),
               -1));
        cr_assert(eq(str, errstr, bad[i].error));
    }
}

Test(issue10, extra_in_both_shapes)
{
    struct job *job = parse_job(
        "{\"id\":\"c\",\"account\":\"a\",\"action\":\"contact-upsert\","
        "\"contacts\":[{\"msisdn\":\"46701234567\",\"extra\":"
        "\"Ledningsgrupp\"},{\"msisdn\":\"46701234568\",\"extra\":"
        "{\"extrafield\":\"VD\"}}]}",
        JOB_CONTACTS);
    struct account acct = acct_of(&codec_intime);
    struct codec_calls calls = {0};

    cr_assert(eq(int, json_typeof(job->contacts[0].extra), JSON_STRING));
    cr_assert(eq(int, json_typeof(job->contacts[1].extra), JSON_OBJECT));
    cr_assert(eq(int,
                 codec_intime.encode(&calls, &acct, job, 0, 0, 1700000000,
                                     errstr, sizeof(errstr)),
                 0),
              "%s", errstr);
    cr_assert(ne(ptr,
                 strstr(calls.calls[0].req.body,
                        "<extrafield>Ledningsgrupp</extrafield>"),
                 NULL));
    cr_assert(ne(ptr,
                 strstr(calls.calls[0].req.body, "<extrafield>VD</extrafield>"),
                 NULL));
    codec_calls_cleanup(&calls);

    acct = acct_of(&codec_ip1);
    cr_assert(eq(int,
                 codec_ip1.encode(&calls, &acct, job, 0, 0, 1700000000, errstr,
                                  sizeof(errstr)),
                 0),
              "%s", errstr);
    cr_assert(
        ne(ptr,
           strstr(calls.calls[0].req.body, "\"extrafield\":\"Ledningsgrupp\""),
           NULL),
        "%s", calls.calls[0].req.body);
    codec_calls_cleanup(&calls);
    job_free(job);

    struct job *bad = NULL;
    char id[64];
    const char *j = "{\"id\":\"c\",\"account\":\"a\",\"action\":"
                    "\"contact-upsert\",\"contacts\":[{\"msisdn\":"
                    "\"46701234567\",\"extra\":5}]}";
    cr_assert(eq(int,
                 job_parse(&bad, j, strlen(j), JOB_CONTACTS, id, sizeof(id),
                           errstr, sizeof(errstr)),
                 -1));
    cr_assert(eq(str, errstr,
                 "\"contacts\"[0]: \"extra\" is neither an object nor a "
                 "string"));
}

/* ---------------------------------------------------------------- */
/* Every action of issue 10 on every provider: check() takes it, or
 * refuses it with one line that names it. */

struct action_case {
    char codec[16];
    char json[200];
    bool supported;
};

ParameterizedTestParameters(issue10, actions_everywhere)
{
#define A(p, body, ok)                                                \
    {                                                                 \
        p, "{\"id\":\"a\",\"account\":\"a\",\"action\":" body "}", ok \
    }
#define ALL4(body, it, ip, leg, jo)                                        \
    A("intime", body, it), A("ip1", body, ip), A("ip1-legacy", body, leg), \
        A("jojka", body, jo)
    static struct action_case cases[] = {
        ALL4("\"list-groups\",\"msisdns\":\"46701234567\"", true, true, false,
             true),
        ALL4("\"list-blocklist\"", true, true, false, false),
        ALL4("\"list-reminders\"", true, false, false, false),
        ALL4("\"export-contacts\"", false, true, false, true),
        ALL4("\"balance\"", false, false, true, false),
        ALL4("\"message-status\",\"provider_id\":\"123456789\"", false, true,
             true, true),
        ALL4("\"campaign-status\",\"provider_id\":\"287359\"", false, true,
             true, true),
        ALL4("\"check-blocklist\",\"msisdns\":\"46701234567\"", false, true,
             false, true),
        ALL4("\"list-senders\"", false, true, false, false),
        ALL4("\"register-sender\",\"from\":\"Shop\"", false, true, false,
             false),
        ALL4("\"contact-update\",\"provider_id\":\"c1\",\"contacts\":"
             "[{\"msisdn\":\"46701234567\",\"first_name\":\"A\"}]",
             false, true, false, false),
        ALL4("\"label-add\",\"groups\":\"vip\",\"contact_ids\":[\"c1\"]", false,
             true, false, false),
        ALL4("\"blocklist-import\"", true, true, false, false),
    };
#undef ALL4
#undef A
    return cr_make_param_array(struct action_case, cases,
                               sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct action_case *c, issue10, actions_everywhere)
{
    const struct codec *codec = codec_find(c->codec);
    struct account acct = acct_of(codec);
    struct job *job = parse_job(c->json, JOB_CONTACTS);
    struct codec_calls calls = {0};

    errstr[0] = '\0';
    int ret = codec->check(&acct, job, errstr, sizeof(errstr));
    if (c->supported) {
        cr_assert(eq(int, ret, 0), "%s %s: %s", c->codec,
                  job_action_name(job->action), errstr);
        ret = codec->encode(&calls, &acct, job, 0, 0, 1700000000, errstr,
                            sizeof(errstr));
        cr_assert(eq(int, ret, 0), "%s %s: %s", c->codec,
                  job_action_name(job->action), errstr);
        cr_assert(eq(sz, calls.ncalls, 1));
    } else {
        cr_assert(eq(int, ret, -1), "%s %s was taken", c->codec,
                  job_action_name(job->action));
        cr_assert(ne(ptr, strstr(errstr, job_action_name(job->action)), NULL),
                  "%s: %s", c->codec, errstr);
    }
    codec_calls_cleanup(&calls);
    job_free(job);
}
