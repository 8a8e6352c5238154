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
