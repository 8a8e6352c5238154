/* tests/worker/test_config.c - settings from the environment. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "worker/config.h"

Test(config, defaults_follow_the_contract)
{
    char *env[] = {"PATH=/bin", NULL};
    struct config cfg;
    char errstr[256];

    int ret = config_load(&cfg, env, errstr, sizeof(errstr));
    cr_assert(eq(int, ret, 0), "%s", errstr);
    cr_assert(eq(str, cfg.kafka_brokers, "127.0.0.1:9092"));
    cr_assert(eq(str, cfg.kafka_group, "kurir"));
    cr_assert(eq(str, cfg.redis_url, "redis://127.0.0.1:6379/0"));
    cr_assert(eq(str, cfg.accounts_path, "/etc/kurir/accounts.json"));
    cr_assert(eq(str, cfg.http_listen, "0.0.0.0:8080"));
    cr_assert(eq(str, cfg.topic_send, "sms.send"));
    cr_assert(eq(str, cfg.topic_campaign, "sms.campaign"));
    cr_assert(eq(str, cfg.topic_contacts, "sms.contacts"));
    cr_assert(eq(str, cfg.topic_status, "sms.status"));
    cr_assert(eq(str, cfg.topic_replies, "sms.replies"));
    cr_assert(eq(str, cfg.topic_dlq, "sms.dlq"));
    cr_assert(eq(int, (int)cfg.log_level, (int)LL_INFO));
    config_cleanup(&cfg);
}

Test(config, results_topic_and_stop_words)
{
    char *env[] = {"PATH=/bin", NULL};
    char *set[] = {"KURIR_TOPIC_RESULTS=shop.results",
                   "KURIR_STOP_WORDS=SLUTA,NEJ", NULL};
    struct config cfg;
    char errstr[256];

    int ret = config_load(&cfg, env, errstr, sizeof(errstr));
    cr_assert(eq(int, ret, 0), "%s", errstr);
    cr_assert(eq(str, cfg.topic_results, "sms.results"));
    cr_assert(eq(str, cfg.stop_words, "STOP,STOPP,AVREGISTRERA"));
    config_cleanup(&cfg);
    ret = config_load(&cfg, set, errstr, sizeof(errstr));
    cr_assert(eq(int, ret, 0), "%s", errstr);
    cr_assert(eq(str, cfg.topic_results, "shop.results"));
    cr_assert(eq(str, cfg.stop_words, "SLUTA,NEJ"));
    config_cleanup(&cfg);
}

Test(config, unknown_variable_is_named)
{
    char *env[] = {"KURIR_KAFKA_BROKER=x:1", NULL};
    struct config cfg;
    char errstr[256];

    int ret = config_load(&cfg, env, errstr, sizeof(errstr));
    cr_assert(eq(int, ret, -1));
    cr_assert(ne(ptr, strstr(errstr, "KURIR_KAFKA_BROKER"), NULL), "%s",
              errstr);
    config_cleanup(&cfg);
}

Test(config, bad_values_are_named)
{
    static char *cases[][2] = {
        {"KURIR_LOG_LEVEL=loud", "KURIR_LOG_LEVEL"},
        {"KURIR_LOG_FORMAT=xml", "KURIR_LOG_FORMAT"},
        {"KURIR_MAX_IN_FLIGHT=lots", "KURIR_MAX_IN_FLIGHT"},
        {"KURIR_MAX_IN_FLIGHT=0", "KURIR_MAX_IN_FLIGHT"},
        {"KURIR_REDIS_URL=http://x", "KURIR_REDIS_URL"},
        {"KURIR_HTTP_LISTEN=8080", "KURIR_HTTP_LISTEN"},
        {"KURIR_PUBLIC_URL=ftp://x", "KURIR_PUBLIC_URL"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *env[] = {cases[i][0], NULL};
        struct config cfg;
        char errstr[256];
        int ret = config_load(&cfg, env, errstr, sizeof(errstr));
        cr_assert(eq(int, ret, -1), "%s accepted", cases[i][0]);
        cr_assert(ne(ptr, strstr(errstr, cases[i][1]), NULL), "%s", errstr);
        config_cleanup(&cfg);
    }
}

Test(config, kafka_properties_pass_through)
{
    char *env[] = {"KURIR_KAFKA_PROP_SECURITY_PROTOCOL=SASL_SSL",
                   "KURIR_KAFKA_PROP_SASL_PASSWORD=hunter2",
                   "KURIR_PUBLIC_URL=https://hooks.example.com/", NULL};
    struct config cfg;
    char errstr[256];

    int ret = config_load(&cfg, env, errstr, sizeof(errstr));
    cr_assert(eq(int, ret, 0), "%s", errstr);
    cr_assert(eq(sz, cfg.nkafka_props, 2));
    cr_assert(eq(str, cfg.kafka_props[0].name, "security.protocol"));
    cr_assert(eq(str, cfg.kafka_props[0].value, "SASL_SSL"));
    cr_assert(eq(str, cfg.kafka_props[1].name, "sasl.password"));
    cr_assert(eq(str, cfg.public_url, "https://hooks.example.com"));
    config_cleanup(&cfg);
}

Test(config, kubernetes_service_links_are_ignored)
{
    /* What a Service named "kurir" (and one named "kurir-admin") injects
     * into every pod of its namespace. */
    char *env[] = {"KURIR_SERVICE_HOST=10.96.0.12",
                   "KURIR_SERVICE_PORT=8080",
                   "KURIR_SERVICE_PORT_HTTP=8080",
                   "KURIR_PORT=tcp://10.96.0.12:8080",
                   "KURIR_PORT_8080_TCP=tcp://10.96.0.12:8080",
                   "KURIR_PORT_8080_TCP_PROTO=tcp",
                   "KURIR_PORT_8080_TCP_PORT=8080",
                   "KURIR_PORT_8080_TCP_ADDR=10.96.0.12",
                   "KURIR_ADMIN_SERVICE_HOST=10.96.0.13",
                   "KURIR_ADMIN_PORT_9090_UDP=udp://10.96.0.13:9090",
                   "KURIR_KAFKA_GROUP=g1",
                   NULL};
    struct config cfg;
    char errstr[256];

    int ret = config_load(&cfg, env, errstr, sizeof(errstr));
    cr_assert(eq(int, ret, 0), "%s", errstr);
    cr_assert(eq(str, cfg.kafka_group, "g1"));
    config_cleanup(&cfg);
}

Test(config, lookalikes_of_service_links_still_stop_start_up)
{
    /* Names shaped like links whose values are not: a typo or a real
     * setting that does not exist, so start-up must stop. */
    static char *cases[] = {
        "KURIR_HTTP_PORT=8080",         /* a link _PORT is a tcp:// URL */
        "KURIR_SERVICE_PORT=http",      /* a link port is a number */
        "KURIR_PORT_8080_TCP=8080",     /* a link URL */
        "KURIR_PORT_8080_HTTP=tcp://x", /* not a protocol */
        "KURIR_REDIS_HOST=10.0.0.1",    /* not _SERVICE_HOST */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *env[] = {cases[i], NULL};
        struct config cfg;
        char errstr[256];
        int ret = config_load(&cfg, env, errstr, sizeof(errstr));
        cr_assert(eq(int, ret, -1), "%s accepted", cases[i]);
        cr_assert(ne(ptr, strstr(errstr, "unknown setting"), NULL), "%s",
                  errstr);
        config_cleanup(&cfg);
    }
}

Test(config, url_password_with_at_is_masked_whole)
{
    static const char *cases[][2] = {
        {"redis://app:p@ss@word@redis.example:6380/2",
         "redis://app:***@redis.example:6380/2"},
        {"redis://:s3cr@t@h:6379/0", "redis://:***@h:6379/0"},
        {"sentinel://u:a@b@s1:26379,s2:26379/mymaster",
         "sentinel://u:***@s1:26379,s2:26379/mymaster"},
        {"redis://h:6379/0", "redis://h:6379/0"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[256];
        config_mask_url_for_log(out, sizeof(out), cases[i][0]);
        cr_assert(eq(str, out, (char *)cases[i][1]));
        cr_assert(eq(ptr, strstr(out, "ss"), NULL), "%s", out);
    }
}
