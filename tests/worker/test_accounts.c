/* tests/worker/test_accounts.c - the accounts file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "codecs/job.h"
#include "worker/accounts.h"

static int parse(struct accounts **out, const char *json, char *errstr,
                 size_t errstr_size)
{
    return accounts_parse(out, json, strlen(json), "https://hooks.example",
                          errstr, errstr_size);
}

Test(accounts, contract_example_loads_with_env_secrets)
{
    static const char json[] =
        "{\"accounts\": {\"shop-jojka\": {\"provider\": \"jojka\","
        " \"base_url\": \"https://www.jojka.nu/websms/api/\","
        " \"credentials\": {\"api_key\": \"env:TEST_SHOP_KEY\"},"
        " \"rate_limit\": {\"per_second\": 10, \"burst\": 20},"
        " \"default_sender\": \"Shop\","
        " \"webhook_token\": \"env:TEST_HOOK\"}}}";
    struct accounts *accounts = NULL;
    char errstr[256];

    setenv("TEST_SHOP_KEY", "k-123", 1);
    setenv("TEST_HOOK", "h-456", 1);
    int ret = parse(&accounts, json, errstr, sizeof(errstr));
    cr_assert(eq(int, ret, 0), "%s", errstr);
    const struct account *a = accounts_find(accounts, "shop-jojka");
    cr_assert(ne(ptr, (void *)a, NULL));
    cr_assert(eq(str, (char *)a->codec->name, "jojka"));
    cr_assert(eq(str, a->base_url, "https://www.jojka.nu/websms/api"));
    cr_assert(eq(str, (char *)account_cred(a, "api_key"), "k-123"));
    cr_assert(eq(str, a->webhook_token, "h-456"));
    cr_assert(
        eq(str, a->callback_url, "https://hooks.example/callbacks/shop-jojka"));
    cr_assert(eq(dbl, a->per_second, 10.0));
    cr_assert(eq(dbl, a->burst, 20.0));
    cr_assert(eq(ptr, (void *)accounts_find(accounts, "other"), NULL));
    accounts_free(accounts);
}

Test(accounts, file_secret_loses_its_newline)
{
    char path[] = "/tmp/kurir-secret-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("s3cret\n", f);
    fclose(f);
    char json[512];
    snprintf(json, sizeof(json),
             "{\"accounts\": {\"a\": {\"provider\": \"ip1\", \"base_url\":"
             " \"https://api.ip1sms.com\", \"credentials\": {\"api_key\":"
             " \"file:%s\"}, \"rate_limit\": {\"per_second\": 5},"
             " \"webhook_token\": \"t\"}}}",
             path);
    struct accounts *accounts = NULL;
    char errstr[256];

    int ret = parse(&accounts, json, errstr, sizeof(errstr));
    unlink(path);
    cr_assert(eq(int, ret, 0), "%s", errstr);
    const struct account *a = accounts_find(accounts, "a");
    cr_assert(eq(str, (char *)account_cred(a, "api_key"), "s3cret"));
    cr_assert(eq(dbl, a->burst, 5.0), "burst defaults to the rate");
    accounts_free(accounts);
}

Test(accounts, errors_name_account_and_field_never_the_secret)
{
    static const char *cases[][2] = {
        {"{\"accounts\": {\"x\": {\"provider\": \"nope\", \"base_url\": "
         "\"https://a\", \"credentials\": {}, \"rate_limit\": "
         "{\"per_second\": 1}}}}",
         "unknown provider \"nope\""},
        {"{\"accounts\": {\"x\": {\"provider\": \"jojka\", \"base_url\": "
         "\"https://a\", \"credentials\": {\"api_key\": \"env:NOPE_UNSET\"}, "
         "\"rate_limit\": {\"per_second\": 1}}}}",
         "NOPE_UNSET is not set"},
        {"{\"accounts\": {\"x\": {\"provider\": \"jojka\", \"base_url\": "
         "\"ftp://a\", \"credentials\": {}, \"rate_limit\": "
         "{\"per_second\": 1}}}}",
         "base_url"},
        {"{\"accounts\": {\"x\": {\"provider\": \"jojka\", \"base_url\": "
         "\"https://a\", \"credentials\": {\"api_key\": \"hunter2\"}, "
         "\"rate_limit\": {\"per_second\": 0}}}}",
         "per_second"},
        {"{\"accounts\": {\"x\": {\"provider\": \"jojka\", \"base_url\": "
         "\"https://a\", \"credentials\": {\"api_key\": \"hunter2\"}, "
         "\"rate_limit\": {\"per_second\": 1}, \"colour\": 1}}}",
         "unknown field \"colour\""},
        {"{\"accounts\": [", "bad JSON"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct accounts *accounts = NULL;
        char errstr[256];
        int ret = parse(&accounts, cases[i][0], errstr, sizeof(errstr));
        cr_assert(eq(int, ret, -1), "case %zu accepted", i);
        cr_assert(ne(ptr, strstr(errstr, cases[i][1]), NULL), "case %zu: %s", i,
                  errstr);
        cr_assert(eq(ptr, strstr(errstr, "hunter2"), NULL), "%s", errstr);
    }
}

Test(accounts, options)
{
    static const char head[] =
        "{\"accounts\": {\"old\": {\"provider\": \"ip1-legacy\","
        " \"base_url\": \"https://web.smscom.se\","
        " \"credentials\": {\"account\": \"ip1-1\", \"password\": \"p\"},"
        " \"webhook_token\": \"t\", \"rate_limit\": {\"per_second\": 1}";
    char json[512], errstr[256];
    struct accounts *accounts = NULL;

    snprintf(json, sizeof(json), "%s}}}", head);
    cr_assert(eq(int, parse(&accounts, json, errstr, sizeof(errstr)), 0), "%s",
              errstr);
    cr_assert(
        not(accounts_find(accounts, "old")->options.legacy_unconfirmed_soap));
    accounts_free(accounts);

    snprintf(json, sizeof(json),
             "%s, \"options\": {\"legacy_unconfirmed_soap\": true}}}}", head);
    cr_assert(eq(int, parse(&accounts, json, errstr, sizeof(errstr)), 0), "%s",
              errstr);
    cr_assert(accounts_find(accounts, "old")->options.legacy_unconfirmed_soap);
    accounts_free(accounts);

    /* Polled statuses: no callback URL is given to the provider, even with
     * a public URL. */
    snprintf(json, sizeof(json),
             "%s, \"options\": {\"legacy_unconfirmed_soap\": true, "
             "\"poll_statuses\": true, \"schedule_at_provider\": true}}}}",
             head);
    cr_assert(
        eq(int,
           accounts_parse(&accounts, json, strlen(json),
                          "https://kurir.example", errstr, sizeof(errstr)),
           0),
        "%s", errstr);
    cr_assert(accounts_find(accounts, "old")->options.poll_statuses);
    cr_assert(accounts_find(accounts, "old")->options.schedule_at_provider);
    cr_assert(eq(ptr, accounts_find(accounts, "old")->callback_url, NULL));
    accounts_free(accounts);

    static const char *const bad[][2] = {
        {"\"options\": {\"legacy_unconfirmed_soap\": 1}",
         "account old: option \"legacy_unconfirmed_soap\" must be true or "
         "false"},
        {"\"options\": {\"legacy_soap\": true}",
         "account old: unknown option \"legacy_soap\" "
         "(legacy_unconfirmed_soap, poll_statuses, schedule_at_provider)"},
        {"\"options\": {\"schedule_at_provider\": true}",
         "account old: schedule_at_provider needs legacy_unconfirmed_soap "
         "(the timed SOAP sends)"},
        {"\"options\": []", "account old: \"options\" must be an object"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(json, sizeof(json), "%s, %s}}}", head, bad[i][0]);
        accounts = NULL;
        cr_assert(eq(int, parse(&accounts, json, errstr, sizeof(errstr)), -1));
        cr_assert(eq(str, errstr, (char *)bad[i][1]));
    }
}

/* Encodes the ip1 fixture job for account "a" and returns whether the
 * request carried "Authorization: Bearer <key>". */
static bool encoded_with_key(const struct accounts *accounts, const char *key)
{
    static const char job_json[] =
        "{\"id\": \"r1\", \"account\": \"a\", \"to\": [\"46701234567\"],"
        " \"from\": \"Testnos\", \"text\": \"hi\"}";
    struct job *job = NULL;
    char id[64], errstr[256];
    int ret = job_parse(&job, job_json, strlen(job_json), JOB_SEND, id,
                        sizeof(id), errstr, sizeof(errstr));
    cr_assert(eq(int, ret, 0), "%s", errstr);
    const struct account *a = accounts_find(accounts, "a");
    struct codec_calls calls = {0};
    ret = a->codec->encode(&calls, a, job, 0, 1, 0, errstr, sizeof(errstr));
    cr_assert(eq(int, ret, 0), "%s", errstr);
    char want[128];
    snprintf(want, sizeof(want), "Bearer %s", key);
    bool found = false;
    const struct http_request *req = &calls.calls[0].req;
    for (size_t i = 0; i < req->nheaders; i++)
        if (strcmp(req->headers[i].name, "Authorization") == 0)
            found = strcmp(req->headers[i].value, want) == 0;
    codec_calls_cleanup(&calls);
    job_free(job);
    return found;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert(f != NULL);
    fputs(text, f);
    fclose(f);
}

Test(accounts, rotated_secret_volume_is_used_by_the_next_request)
{
    /* A Kubernetes Secret volume: <dir>/api_key -> ..data/api_key,
     * ..data -> ..2026_v1; an update writes ..2026_v2 and swaps ..data. */
    char dir[] = "/tmp/kurir-secretvol-XXXXXX";
    cr_assert(mkdtemp(dir) != NULL);
    char p[512], q[512];
    snprintf(p, sizeof(p), "%s/..v1", dir);
    cr_assert(mkdir(p, 0700) == 0);
    snprintf(p, sizeof(p), "%s/..v1/api_key", dir);
    write_file(p, "key-one\n");
    snprintf(p, sizeof(p), "%s/..data", dir);
    cr_assert(symlink("..v1", p) == 0);
    snprintf(p, sizeof(p), "%s/api_key", dir);
    cr_assert(symlink("..data/api_key", p) == 0);

    char json[768];
    snprintf(json, sizeof(json),
             "{\"accounts\": {\"a\": {\"provider\": \"ip1\", \"base_url\":"
             " \"https://api.ip1sms.com\", \"credentials\": {\"api_key\":"
             " \"file:%s/api_key\"}, \"rate_limit\": {\"per_second\": 5},"
             " \"webhook_token\": \"t\"}}}",
             dir);
    struct accounts *accounts = NULL;
    char errstr[256];
    int ret = parse(&accounts, json, errstr, sizeof(errstr));
    cr_assert(eq(int, ret, 0), "%s", errstr);
    cr_assert(encoded_with_key(accounts, "key-one"));
    cr_assert(eq(int, accounts_refresh(accounts, 1000), 0), "nothing changed");

    /* The rotation, as the kubelet does it. */
    snprintf(p, sizeof(p), "%s/..v2", dir);
    cr_assert(mkdir(p, 0700) == 0);
    snprintf(p, sizeof(p), "%s/..v2/api_key", dir);
    write_file(p, "key-two\n");
    snprintf(p, sizeof(p), "%s/..data_tmp", dir);
    cr_assert(symlink("..v2", p) == 0);
    snprintf(q, sizeof(q), "%s/..data", dir);
    cr_assert(rename(p, q) == 0);

    /* At most once a second: a look 500 ms later does not stat. */
    cr_assert(eq(int, accounts_refresh(accounts, 1500), 0));
    cr_assert(encoded_with_key(accounts, "key-one"));
    cr_assert(eq(int, accounts_refresh(accounts, 2000), 1));
    cr_assert(encoded_with_key(accounts, "key-two"),
              "the next request does not carry the rotated key");

    /* The file goes away: the old value stays, nothing breaks. */
    snprintf(p, sizeof(p), "%s/..data", dir);
    cr_assert(unlink(p) == 0);
    cr_assert(eq(int, accounts_refresh(accounts, 3000), 0));
    cr_assert(encoded_with_key(accounts, "key-two"));
    accounts_free(accounts);

    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert(system(cmd) == 0);
}

/* Issue 9 #11: a provider that calls back (InTime, iP.1, iP.1 legacy)
 * needs a non-empty token, or anyone could finalise any job with a forged
 * report; Jojka is polled and needs none. */
Test(accounts, callback_accounts_need_a_webhook_token)
{
    static const char *const refused[] = {
        "{\"accounts\": {\"in\": {\"provider\": \"intime\", \"base_url\": "
        "\"https://a\", \"credentials\": {\"user\": \"u\", \"hash\": \"h\"}, "
        "\"rate_limit\": {\"per_second\": 1}}}}",
        "{\"accounts\": {\"in\": {\"provider\": \"ip1\", \"base_url\": "
        "\"https://a\", \"credentials\": {\"api_key\": \"k\"}, "
        "\"rate_limit\": {\"per_second\": 1}, \"webhook_token\": \"\"}}}",
        "{\"accounts\": {\"in\": {\"provider\": \"ip1-legacy\", \"base_url\": "
        "\"https://a\", \"credentials\": {\"account\": \"a\", \"password\": "
        "\"p\"}, \"rate_limit\": {\"per_second\": 1}}}}",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        struct accounts *accounts = NULL;
        char errstr[256];
        int ret = parse(&accounts, refused[i], errstr, sizeof(errstr));
        cr_assert(eq(int, ret, -1), "case %zu accepted", i);
        cr_assert(
            ne(ptr, strstr(errstr, "account in: \"webhook_token\""), NULL),
            "case %zu: %s", i, errstr);
    }
    struct accounts *accounts = NULL;
    char errstr[256];
    int ret = parse(&accounts,
                    "{\"accounts\": {\"jo\": {\"provider\": \"jojka\", "
                    "\"base_url\": \"https://a\", \"credentials\": "
                    "{\"api_key\": \"k\"}, \"rate_limit\": {\"per_second\": "
                    "1}}}}",
                    errstr, sizeof(errstr));
    cr_assert(eq(int, ret, 0), "%s", errstr);
    accounts_free(accounts);
}

/* Issue 9 #7: a rate below one a second without a burst still lets a
 * token come (the bucket holds one), rather than parking every unit. */
Test(accounts, slow_rate_without_burst_can_send)
{
    struct accounts *accounts = NULL;
    char errstr[256];
    int ret = parse(&accounts,
                    "{\"accounts\": {\"jo\": {\"provider\": \"jojka\", "
                    "\"base_url\": \"https://a\", \"credentials\": "
                    "{\"api_key\": \"k\"}, \"rate_limit\": {\"per_second\": "
                    "0.2}}}}",
                    errstr, sizeof(errstr));
    cr_assert(eq(int, ret, 0), "%s", errstr);
    cr_assert(eq(dbl, accounts->items[0].burst, 1.0));
    accounts_free(accounts);
}
