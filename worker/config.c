/* worker/config.c - table-driven settings from the environment. */
#include "worker/config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/xalloc.h"

enum config_type {
    CONF_STR,
    CONF_INT,
};

enum config_flags {
    CONF_SECRET = 1 << 0, /* printed as *** */
    CONF_URL = 1 << 1,    /* a URL whose password part is masked */
};

struct config_entry {
    const char *name;
    enum config_type type;
    int flags;
    size_t offset;
    const char *def;
    long min, max; /* CONF_INT range */
    const char *help;
};

#define STR(field) CONF_STR, 0, offsetof(struct config, field)
#define INT(field) CONF_INT, 0, offsetof(struct config, field)

static const struct config_entry entries[] = {
    {"KURIR_KAFKA_BROKERS", STR(kafka_brokers), "127.0.0.1:9092", 0, 0,
     "Kafka bootstrap servers"},
    {"KURIR_KAFKA_GROUP", STR(kafka_group), "kurir", 0, 0,
     "Kafka consumer group id"},
    {"KURIR_REDIS_URL", CONF_STR, CONF_URL, offsetof(struct config, redis_url),
     "redis://127.0.0.1:6379/0", 0, 0,
     "redis://[:password@]host:port/db or unix:/path"},
    {"KURIR_ACCOUNTS", STR(accounts_path), "/etc/kurir/accounts.json", 0, 0,
     "the accounts file"},
    {"KURIR_HTTP_LISTEN", STR(http_listen), "0.0.0.0:8080", 0, 0,
     "webhooks, /healthz, /readyz, /metrics"},
    {"KURIR_PUBLIC_URL", STR(public_url), "", 0, 0,
     "external base URL of the webhook listener"},
    {"KURIR_TOPIC_SEND", STR(topic_send), "sms.send", 0, 0, "send jobs"},
    {"KURIR_TOPIC_CAMPAIGN", STR(topic_campaign), "sms.campaign", 0, 0,
     "campaign jobs"},
    {"KURIR_TOPIC_CONTACTS", STR(topic_contacts), "sms.contacts", 0, 0,
     "contact-sync jobs"},
    {"KURIR_TOPIC_STATUS", STR(topic_status), "sms.status", 0, 0,
     "status events"},
    {"KURIR_TOPIC_REPLIES", STR(topic_replies), "sms.replies", 0, 0,
     "incoming messages"},
    {"KURIR_TOPIC_DLQ", STR(topic_dlq), "sms.dlq", 0, 0,
     "jobs that cannot be processed"},
    {"KURIR_LOG_LEVEL", STR(log_level_name), "info", 0, 0,
     "debug, info, warn or error"},
    {"KURIR_LOG_FORMAT", STR(log_format_name), "text", 0, 0,
     "text, or json: one object per line for log collectors"},
    {"KURIR_MAX_IN_FLIGHT", INT(max_in_flight), "512", 1, 100000,
     "jobs in progress at once in this replica"},
    {"KURIR_HTTP_TIMEOUT_MS", INT(http_timeout_ms), "10000", 100, 600000,
     "provider request timeout"},
    {"KURIR_HTTP_MAX_CONNS", INT(http_max_conns), "64", 1, 10000,
     "connections per provider host"},
    {"KURIR_SHUTDOWN_GRACE_MS", INT(shutdown_grace_ms), "20000", 0, 600000,
     "time to finish in-flight work on SIGTERM"},
    {"KURIR_RETRY_HORIZON_S", INT(retry_horizon_s), "3600", 1, 604800,
     "how long a send is retried before it fails"},
    {"KURIR_POLL_INTERVAL_MS", INT(poll_interval_ms), "5000", 100, 3600000,
     "how often providers without webhooks are polled"},
};

#define PROP_PREFIX "KURIR_KAFKA_PROP_"

#define NENTRIES (sizeof(entries) / sizeof(entries[0]))

static const struct config_entry *config_entry_find(const char *name,
                                                    size_t len)
{
    for (size_t i = 0; i < NENTRIES; i++)
        if (strlen(entries[i].name) == len &&
            memcmp(entries[i].name, name, len) == 0)
            return &entries[i];
    return NULL;
}

static int config_set(struct config *cfg, const struct config_entry *e,
                      const char *value, char *errstr, size_t errstr_size)
{
    char *base = (char *)cfg;

    if (e->type == CONF_STR) {
        char **field = (char **)(void *)(base + e->offset);
        free(*field);
        *field = xstrdup(value);
        return 0;
    }
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0') {
        snprintf(errstr, errstr_size, "%s: \"%s\" is not a whole number",
                 e->name, value);
        return -1;
    }
    if (v < e->min || v > e->max) {
        snprintf(errstr, errstr_size, "%s: %ld is outside %ld..%ld", e->name, v,
                 e->min, e->max);
        return -1;
    }
    *(long *)(void *)(base + e->offset) = v;
    return 0;
}

static int config_add_prop(struct config *cfg, const char *name, size_t len,
                           const char *value, char *errstr, size_t errstr_size)
{
    if (len == 0) {
        snprintf(errstr, errstr_size, "%s: names no property", PROP_PREFIX);
        return -1;
    }
    char *prop = xmalloc(len + 1);
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        prop[i] = c == '_' ? '.' : (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
    }
    prop[len] = '\0';
    cfg->kafka_props = xrealloc(
        cfg->kafka_props, (cfg->nkafka_props + 1) * sizeof(*cfg->kafka_props));
    cfg->kafka_props[cfg->nkafka_props].name = prop;
    cfg->kafka_props[cfg->nkafka_props].value = xstrdup(value);
    cfg->nkafka_props++;
    return 0;
}

int config_load(struct config *cfg, char *const *envp, char *errstr,
                size_t errstr_size)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < NENTRIES; i++)
        if (config_set(cfg, &entries[i], entries[i].def, errstr, errstr_size) !=
            0)
            return -1;

    for (size_t i = 0; envp[i] != NULL; i++) {
        const char *kv = envp[i];
        if (strncmp(kv, "KURIR_", 6) != 0)
            continue;
        const char *eq = strchr(kv, '=');
        if (eq == NULL)
            continue;
        size_t nlen = (size_t)(eq - kv);
        size_t plen = strlen(PROP_PREFIX);
        if (nlen >= plen && strncmp(kv, PROP_PREFIX, plen) == 0) {
            if (config_add_prop(cfg, kv + plen, nlen - plen, eq + 1, errstr,
                                errstr_size) != 0)
                return -1;
            continue;
        }
        const struct config_entry *e = config_entry_find(kv, nlen);
        if (e == NULL) {
            snprintf(errstr, errstr_size,
                     "unknown setting %.*s (see kurir --help)", (int)nlen, kv);
            return -1;
        }
        if (config_set(cfg, e, eq + 1, errstr, errstr_size) != 0)
            return -1;
    }

    if (log_level_parse(&cfg->log_level, cfg->log_level_name) != 0) {
        snprintf(errstr, errstr_size,
                 "KURIR_LOG_LEVEL: \"%s\" is not debug, info, warn or error",
                 cfg->log_level_name);
        return -1;
    }
    if (log_format_parse(&cfg->log_format, cfg->log_format_name) != 0) {
        snprintf(errstr, errstr_size,
                 "KURIR_LOG_FORMAT: \"%s\" is not text or json",
                 cfg->log_format_name);
        return -1;
    }
    if (cfg->kafka_brokers[0] == '\0') {
        snprintf(errstr, errstr_size, "KURIR_KAFKA_BROKERS: is empty");
        return -1;
    }
    if (strchr(cfg->http_listen, ':') == NULL) {
        snprintf(errstr, errstr_size,
                 "KURIR_HTTP_LISTEN: \"%s\" is not host:port",
                 cfg->http_listen);
        return -1;
    }
    if (strncmp(cfg->redis_url, "redis://", 8) != 0 &&
        strncmp(cfg->redis_url, "unix:", 5) != 0) {
        snprintf(errstr, errstr_size,
                 "KURIR_REDIS_URL: not redis://host:port/db or unix:/path");
        return -1;
    }
    if (cfg->public_url[0] != '\0' &&
        strncmp(cfg->public_url, "http://", 7) != 0 &&
        strncmp(cfg->public_url, "https://", 8) != 0) {
        snprintf(errstr, errstr_size,
                 "KURIR_PUBLIC_URL: \"%s\" is not an http(s) URL",
                 cfg->public_url);
        return -1;
    }
    /* A trailing slash would double up in callback URLs. */
    size_t plen = strlen(cfg->public_url);
    while (plen > 0 && cfg->public_url[plen - 1] == '/')
        cfg->public_url[--plen] = '\0';
    return 0;
}

void config_cleanup(struct config *cfg)
{
    for (size_t i = 0; i < NENTRIES; i++) {
        if (entries[i].type != CONF_STR)
            continue;
        char **field = (char **)(void *)((char *)cfg + entries[i].offset);
        free(*field);
    }
    for (size_t i = 0; i < cfg->nkafka_props; i++) {
        free(cfg->kafka_props[i].name);
        free(cfg->kafka_props[i].value);
    }
    free(cfg->kafka_props);
    memset(cfg, 0, sizeof(*cfg));
}

/* Masks the password of a URL such as redis://:secret@host:6379/0. */
static void config_mask_url(char *out, size_t out_size, const char *url)
{
    const char *scheme = strstr(url, "://");
    const char *at = strchr(url, '@');

    if (scheme == NULL || at == NULL || at < scheme) {
        snprintf(out, out_size, "%s", url);
        return;
    }
    const char *colon = memchr(scheme + 3, ':', (size_t)(at - scheme - 3));
    if (colon == NULL) {
        snprintf(out, out_size, "%s", url);
        return;
    }
    snprintf(out, out_size, "%.*s***%s", (int)(colon + 1 - url), url, at);
}

static bool config_prop_is_secret(const char *name)
{
    return strstr(name, "password") != NULL || strstr(name, "secret") != NULL ||
           strstr(name, "key") != NULL || strstr(name, "token") != NULL ||
           strstr(name, "jaas") != NULL;
}

void config_log(const struct config *cfg)
{
    for (size_t i = 0; i < NENTRIES; i++) {
        const struct config_entry *e = &entries[i];
        const char *base = (const char *)cfg;
        if (e->type == CONF_INT) {
            log_info("config: %s=%ld", e->name,
                     *(const long *)(const void *)(base + e->offset));
            continue;
        }
        const char *v = *(char *const *)(const void *)(base + e->offset);
        char masked[512];
        if (e->flags & CONF_SECRET)
            snprintf(masked, sizeof(masked), "***");
        else if (e->flags & CONF_URL)
            config_mask_url(masked, sizeof(masked), v);
        else
            snprintf(masked, sizeof(masked), "%s", v);
        log_info("config: %s=%s", e->name, masked);
    }
    for (size_t i = 0; i < cfg->nkafka_props; i++)
        log_info("config: kafka %s=%s", cfg->kafka_props[i].name,
                 config_prop_is_secret(cfg->kafka_props[i].name)
                     ? "***"
                     : cfg->kafka_props[i].value);
}

void config_print_help(void)
{
    printf("Configuration (environment):\n");
    for (size_t i = 0; i < NENTRIES; i++)
        printf("  %-26s %s (default: %s)\n", entries[i].name, entries[i].help,
               entries[i].def[0] ? entries[i].def : "unset");
    printf("  %-26s passed to librdkafka as <name> (_ -> ., lower-cased)\n",
           PROP_PREFIX "<NAME>");
}
