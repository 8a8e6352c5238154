/* tests/worker/test_encode.c - `kurir encode`, the dry run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "worker/accounts.h"
#include "worker/encode.h"

static const char accounts_json[] =
    "{\"accounts\": {\"shop\": {\"provider\": \"jojka\","
    " \"base_url\": \"https://www.jojka.nu/websms/api\","
    " \"credentials\": {\"api_key\": \"foobar\"},"
    " \"rate_limit\": {\"per_second\": 10}}}}";

struct run {
    int ret;
    char *out;
    char *err;
};

static struct run run_encode(const char *job)
{
    struct accounts *accounts = NULL;
    char errstr[256];
    struct run r = {0};
    size_t out_len, err_len;

    int ret = accounts_parse(&accounts, accounts_json, strlen(accounts_json),
                             "", errstr, sizeof(errstr));
    cr_assert(eq(int, ret, 0), "%s", errstr);
    FILE *out = open_memstream(&r.out, &out_len);
    FILE *err = open_memstream(&r.err, &err_len);
    r.ret = encode_job(out, err, accounts_find(accounts, "shop"), job,
                       strlen(job), 1763900000);
    fclose(out);
    fclose(err);
    accounts_free(accounts);
    return r;
}

Test(encode, jojka_document_example_with_key_masked)
{
    struct run r = run_encode("{\"id\": \"j1\", \"account\": \"shop\", "
                              "\"to\": [\"+46709771337\"], "
                              "\"text\": \"hello world\"}");

    cr_assert(eq(int, r.ret, 0), "%s", r.err);
    cr_assert(ne(ptr,
                 strstr(r.out, "POST https://www.jojka.nu/websms/api/send\n"),
                 NULL),
              "%s", r.out);
    cr_assert(
        ne(ptr,
           strstr(r.out, "\n\nAPI_key=***&to=46709771337&msg=hello%20world\n"),
           NULL),
        "%s", r.out);
    cr_assert(eq(ptr, strstr(r.out, "foobar"), NULL), "secret printed");
    free(r.out);
    free(r.err);
}

Test(encode, invalid_job_is_one_line_and_exit_2)
{
    struct run r = run_encode("{\"id\": \"j2\", \"account\": \"shop\", "
                              "\"to\": [\"12\"], \"text\": \"hi\"}");

    cr_assert(eq(int, r.ret, 2));
    cr_assert(eq(str, r.out, ""));
    cr_assert(ne(ptr, strchr(r.err, '\n'), NULL));
    cr_assert(eq(ptr, strchr(r.err, '\n'), r.err + strlen(r.err) - 1),
              "not exactly one line: %s", r.err);
    free(r.out);
    free(r.err);
}

/* The user name is shown (it says which account a request uses); the
 * hash, a secret, is not. Before issue 10 the user was masked too. */
Test(encode, masks_secrets_shows_user)
{
    static const char json[] =
        "{\"accounts\": {\"in\": {\"provider\": \"intime\","
        " \"base_url\": \"https://sms.intime.nu/api/1.0\","
        " \"credentials\": {\"user\": \"u\", \"hash\": \"s3cr3t\"},"
        " \"default_sender\": \"Shop\", \"webhook_token\": \"t\","
        " \"rate_limit\": {\"per_second\": 10}}}}";
    static const char job[] = "{\"id\": \"m1\", \"account\": \"in\", \"to\": "
                              "[\"46701234567\"], \"text\": \"hej\"}";
    struct accounts *accounts = NULL;
    char errstr[256];
    char *out = NULL, *err = NULL;
    size_t out_len, err_len;

    int ret = accounts_parse(&accounts, json, strlen(json), "", errstr,
                             sizeof(errstr));
    cr_assert(eq(int, ret, 0), "%s", errstr);
    FILE *fo = open_memstream(&out, &out_len);
    FILE *fe = open_memstream(&err, &err_len);
    ret = encode_job(fo, fe, accounts_find(accounts, "in"), job, strlen(job),
                     1763900000);
    fclose(fo);
    fclose(fe);
    cr_assert(eq(int, ret, 0), "%s", err);
    cr_assert(ne(ptr, strstr(out, "create.ashx?user=u&hash=***\n"), NULL), "%s",
              out);
    cr_assert(eq(ptr, strstr(out, "s3cr3t"), NULL));
    free(out);
    free(err);
    accounts_free(accounts);
}

/* Issue 9 #13: a legacy password with a space and XML-special characters
 * is masked in every encoding kurir encode prints (the URL call's
 * form-encoding, the SOAP body's XML escaping), and the account id stays
 * readable. */
Test(encode, legacy_password_with_space_and_xml_is_masked)
{
    static const char json[] =
        "{\"accounts\": {\"leg\": {\"provider\": \"ip1-legacy\","
        " \"base_url\": \"https://web.smscom.se\","
        " \"credentials\": {\"account\": \"ip1-1234\", \"password\": "
        "\"p w<&>\\\"'x\"},"
        " \"default_sender\": \"Shop\", \"webhook_token\": \"t\","
        " \"rate_limit\": {\"per_second\": 10}}}}";
    static const char *const jobs[] = {
        "{\"id\": \"m1\", \"account\": \"leg\", \"to\": [\"46701234567\"], "
        "\"text\": \"hej\"}",
        "{\"id\": \"m2\", \"account\": \"leg\", \"to\": [\"46701234567\", "
        "\"46701234568\"], \"text\": \"hej\"}",
    };
    static const char *const forms[] = {"p w<&>",       "p%20w%3C%26%3E",
                                        "p+w%3C%26%3E", "p w&lt;&amp;&gt;",
                                        "w%3C",         "&amp;&gt;"};
    struct accounts *accounts = NULL;
    char errstr[256];

    int ret = accounts_parse(&accounts, json, strlen(json), "", errstr,
                             sizeof(errstr));
    cr_assert(eq(int, ret, 0), "%s", errstr);
    for (size_t j = 0; j < sizeof(jobs) / sizeof(jobs[0]); j++) {
        char *out = NULL, *err = NULL;
        size_t out_len, err_len;
        FILE *fo = open_memstream(&out, &out_len);
        FILE *fe = open_memstream(&err, &err_len);
        ret = encode_job(fo, fe, accounts_find(accounts, "leg"), jobs[j],
                         strlen(jobs[j]), 1763900000);
        fclose(fo);
        fclose(fe);
        cr_assert(eq(int, ret, 0), "%s", err);
        for (size_t f = 0; f < sizeof(forms) / sizeof(forms[0]); f++)
            cr_assert(eq(ptr, strstr(out, forms[f]), NULL),
                      "job %zu shows %s:\n%s", j, forms[f], out);
        cr_assert(ne(ptr, strstr(out, "ip1-1234"), NULL), "%s", out);
        cr_assert(ne(ptr, strstr(out, "***"), NULL), "%s", out);
        free(out);
        free(err);
    }
    accounts_free(accounts);
}
