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
     "redis://[user:password@]host:port/db, "
     "sentinel://[user:password@]host:port[,host:port...]/master[/db] "
     "or unix:/path"},
    {"KURIR_REDIS_DURABILITY", STR(redis_durability_name), "require", 0, 0,
     "require: refuse to start on a Redis that persists nothing (no AOF, no "
     "RDB save); warn: start anyway with a loud warning (tests, a managed "
     "Redis whose persistence cannot be read)"},
    {"KURIR_ACCOUNTS", STR(accounts_path), "/etc/kurir/accounts.json", 0, 0,
     "the accounts file"},
    {"KURIR_HTTP_LISTEN", STR(http_listen), "0.0.0.0:8080", 0, 0,
     "webhooks, and /healthz, /readyz, /metrics unless KURIR_ADMIN_LISTEN "
     "is set; IPv4:port or [IPv6]:port"},
    {"KURIR_ADMIN_LISTEN", STR(admin_listen), "", 0, 0,
     "/healthz, /readyz, /metrics on their own host:port ([::]:9090 for "
     "IPv6); unset: on KURIR_HTTP_LISTEN"},
    {"KURIR_HEALTH_STALL_MS", INT(health_stall_ms), "10000", 100, 3600000,
     "/healthz fails when the loop has not turned for this long"},
    {"KURIR_HTTP_CONN_TIMEOUT_S", INT(http_conn_timeout_s), "10", 1, 3600,
     "webhook listener: idle connections are closed after this"},
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
    {"KURIR_TOPIC_PARTS", STR(topic_parts), "sms.parts", 0, 0,
     "provider-sized parts of large jobs, read by the same group"},
    {"KURIR_TOPIC_LATEST", STR(topic_latest), "sms.status.latest", 0, 0,
     "each recipient's latest state, keyed job/recipient (compacted)"},
    {"KURIR_TOPIC_RESULTS", STR(topic_results), "sms.results", 0, 0,
     "results of read actions (contact-sync lists, statuses), keyed by job "
     "id, one event per page"},
    {"KURIR_STOP_WORDS", STR(stop_words), "STOP,STOPP,AVREGISTRERA", 0, 0,
     "comma-separated words that, alone in a reply (any case), put its "
     "sender on the account's opt-out set; empty: none"},
    {"KURIR_LOG_LEVEL", STR(log_level_name), "info", 0, 0,
     "debug, info, warn or error"},
    {"KURIR_LOG_FORMAT", STR(log_format_name), "text", 0, 0,
     "text, or json: one object per line for log collectors"},
    {"KURIR_MAX_IN_FLIGHT", INT(max_in_flight), "1024", 1, 100000,
     "jobs in progress at once in this replica"},
    {"KURIR_HTTP_TIMEOUT_MS", INT(http_timeout_ms), "10000", 100, 600000,
     "provider request timeout"},
    {"KURIR_HTTP_MAX_CONNS", INT(http_max_conns), "256", 1, 10000,
     "connections per provider host"},
    {"KURIR_SHUTDOWN_GRACE_MS", INT(shutdown_grace_ms), "20000", 0, 600000,
     "time to finish in-flight work on SIGTERM"},
    {"KURIR_RETRY_HORIZON_S", INT(retry_horizon_s), "3600", 1, 604800,
     "how long a send is retried before it fails"},
    {"KURIR_POLL_INTERVAL_MS", INT(poll_interval_ms), "5000", 100, 3600000,
     "how often providers without webhooks are polled"},
    {"KURIR_REPORT_GIVE_UP_MS", INT(report_give_up_ms), "259200000", 1000,
     2592000000L,
     "how long a submitted or unknown recipient waits for a report or a "
     "status read before it ends failed (no_report)"},
    {"KURIR_MARK_STALE_MS", INT(mark_stale_ms), "120000", 1000, 3600000,
     "a send-once mark older than this was left by a replica that died; "
     "keep it above KURIR_HTTP_TIMEOUT_MS"},
    {"KURIR_CLAIM_LEASE_MS", INT(claim_lease_ms), "300000", 3000, 86400000,
     "a claimed scheduled send or retry is this replica's for this long, "
     "extended every third of it while its unit runs; another replica "
     "claims it only after a lease runs out (this one died)"},
};

#define PROP_PREFIX "KURIR_KAFKA_PROP_"

/* True when [s, s+len) is one or more ASCII digits. */
static bool config_all_digits(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* True when `suffix` ends [name, name+len) and something precedes it. */
static bool config_ends_with(const char *name, size_t len, const char *suffix,
                             size_t *stem)
{
    size_t n = strlen(suffix);

    if (len <= n || memcmp(name + len - n, suffix, n) != 0)
        return false;
    *stem = len - n;
    return true;
}

/* True for a URL of a Kubernetes service-link *_PORT value. */
static bool config_is_link_url(const char *value)
{
    return strncmp(value, "tcp://", 6) == 0 ||
           strncmp(value, "udp://", 6) == 0 ||
           strncmp(value, "sctp://", 7) == 0;
}

/* Kubernetes injects, for each Service <NAME> of the namespace (upper-cased,
 * '-' as '_'), these variables into every pod:
 *     <NAME>_SERVICE_HOST=10.0.0.11
 *     <NAME>_SERVICE_PORT=8080, <NAME>_SERVICE_PORT_<PORTNAME>=8080
 *     <NAME>_PORT=tcp://10.0.0.11:8080
 *     <NAME>_PORT_8080_TCP=tcp://10.0.0.11:8080
 *     <NAME>_PORT_8080_TCP_PROTO=tcp, ..._PORT=8080, ..._ADDR=10.0.0.11
 * A Service named "kurir" or "kurir-..." makes them start with KURIR_. They
 * are recognised by name and value shape, so a mistyped real setting still
 * stops start-up. */
static bool config_is_service_link(const char *name, size_t len,
                                   const char *value)
{
    size_t stem;

    if (config_ends_with(name, len, "_SERVICE_HOST", &stem))
        return value[0] != '\0';
    if (config_ends_with(name, len, "_SERVICE_PORT", &stem))
        return config_all_digits(value, strlen(value));
    const char *sp = NULL;
    for (size_t i = 0; i + 14 <= len; i++)
        if (memcmp(name + i, "_SERVICE_PORT_", 14) == 0)
            sp = name + i;
    if (sp != NULL)
        return config_all_digits(value, strlen(value));
    if (config_ends_with(name, len, "_PORT", &stem) &&
        config_is_link_url(value))
        return true;

    /* <NAME>_PORT_<n>_<PROTO>[_PROTO|_PORT|_ADDR]: find "_PORT_<digits>_". */
    for (size_t i = 0; i + 6 < len; i++) {
        if (memcmp(name + i, "_PORT_", 6) != 0)
            continue;
        size_t d = i + 6, e = d;
        while (e < len && name[e] >= '0' && name[e] <= '9')
            e++;
        if (e == d || e >= len || name[e] != '_')
            continue;
        const char *proto = name + e + 1;
        size_t plen = len - (e + 1);
        static const char *const protos[] = {"TCP", "UDP", "SCTP"};
        for (size_t k = 0; k < 3; k++) {
            size_t n = strlen(protos[k]);
            if (plen < n || memcmp(proto, protos[k], n) != 0)
                continue;
            const char *tail = proto + n;
            size_t tlen = plen - n;
            if (tlen == 0)
                return config_is_link_url(value);
            if (tlen == 6 && memcmp(tail, "_PROTO", 6) == 0)
                return true;
            if (tlen == 5 && memcmp(tail, "_PORT", 5) == 0)
                return config_all_digits(value, strlen(value));
            if (tlen == 5 && memcmp(tail, "_ADDR", 5) == 0)
                return value[0] != '\0';
        }
    }
    return false;
}

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
#ifdef KURIR_FAILPOINTS
        /* worker/failpoint.h reads it; only a drill build knows it. */
        if (nlen == 15 && strncmp(kv, "KURIR_FAILPOINT", nlen) == 0)
            continue;
#endif
        const struct config_entry *e = config_entry_find(kv, nlen);
        if (e == NULL && config_is_service_link(kv, nlen, eq + 1))
            continue;
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
    if (strcmp(cfg->redis_durability_name, "require") == 0) {
        cfg->redis_durability_warn = false;
    } else if (strcmp(cfg->redis_durability_name, "warn") == 0) {
        cfg->redis_durability_warn = true;
    } else {
        snprintf(errstr, errstr_size,
                 "KURIR_REDIS_DURABILITY: \"%s\" is not require or warn",
                 cfg->redis_durability_name);
        return -1;
    }
    if (cfg->kafka_brokers[0] == '\0') {
        snprintf(errstr, errstr_size, "KURIR_KAFKA_BROKERS: is empty");
        return -1;
    }
    if (cfg->admin_listen[0] != '\0' &&
        strchr(cfg->admin_listen, ':') == NULL) {
        snprintf(errstr, errstr_size,
                 "KURIR_ADMIN_LISTEN: \"%s\" is not host:port",
                 cfg->admin_listen);
        return -1;
    }
    if (strchr(cfg->http_listen, ':') == NULL) {
        snprintf(errstr, errstr_size,
                 "KURIR_HTTP_LISTEN: \"%s\" is not host:port",
                 cfg->http_listen);
        return -1;
    }
    if (strncmp(cfg->redis_url, "redis://", 8) != 0 &&
        strncmp(cfg->redis_url, "sentinel://", 11) != 0 &&
        strncmp(cfg->redis_url, "unix:", 5) != 0) {
        snprintf(errstr, errstr_size,
                 "KURIR_REDIS_URL: not redis://host:port/db, "
                 "sentinel://host:port/master or unix:/path");
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
    /* A mark must outlive the request it guards, or a live replica's send
     * would look abandoned and be reported unknown. */
    if (cfg->mark_stale_ms <= cfg->http_timeout_ms) {
        snprintf(errstr, errstr_size,
                 "KURIR_MARK_STALE_MS: %ld must be above KURIR_HTTP_TIMEOUT_MS "
                 "(%ld)",
                 cfg->mark_stale_ms, cfg->http_timeout_ms);
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

/* Masks the password of a URL such as redis://user:secret@host:6379/0. The
 * userinfo ends at the LAST '@' before the path (a password may hold '@'),
 * and everything after the first ':' in it is masked. */
static void config_mask_url(char *out, size_t out_size, const char *url)
{
    const char *scheme = strstr(url, "://");

    if (scheme == NULL) {
        snprintf(out, out_size, "%s", url);
        return;
    }
    const char *auth = scheme + 3;
    const char *end = auth + strcspn(auth, "/?#");
    const char *at = NULL;
    for (const char *q = auth; q < end; q++)
        if (*q == '@')
            at = q;
    if (at == NULL) {
        snprintf(out, out_size, "%s", url);
        return;
    }
    const char *colon = memchr(auth, ':', (size_t)(at - auth));
    if (colon == NULL) {
        /* "redis://secret@host": a lone userinfo may be a password. */
        snprintf(out, out_size, "%.*s***%s", (int)(auth - url), url, at);
        return;
    }
    snprintf(out, out_size, "%.*s***%s", (int)(colon + 1 - url), url, at);
}

/* Writes the value of a URL setting as config_log() prints it, the password
 * masked. For tests and for other modules that log a URL. */
void config_mask_url_for_log(char *out, size_t out_size, const char *url)
{
    config_mask_url(out, out_size, url);
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
