/* worker/config.h - the worker's settings, from the environment only.
 *
 * One table in config.c lists every KURIR_* variable with its type, default
 * and meaning (CONTRACT §2). An unknown KURIR_* variable or a bad value stops
 * start-up with one line naming it. After config_load() the config is passed
 * down as `const struct config *`; modules never call getenv themselves. */
#ifndef WORKER_CONFIG_H
#define WORKER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "worker/log.h"

struct config_prop {
    char *name; /* librdkafka property, e.g. "security.protocol" */
    char *value;
};

struct config {
    char *kafka_brokers;             /* KURIR_KAFKA_BROKERS */
    char *kafka_group;               /* KURIR_KAFKA_GROUP */
    struct config_prop *kafka_props; /* KURIR_KAFKA_PROP_<NAME> */
    size_t nkafka_props;
    char *redis_url;             /* KURIR_REDIS_URL */
    char *redis_durability_name; /* KURIR_REDIS_DURABILITY */
    bool redis_durability_warn;  /* warn, not refuse, without persistence */
    char *accounts_path;         /* KURIR_ACCOUNTS */
    char *http_listen;           /* KURIR_HTTP_LISTEN, host:port */
    char *admin_listen;          /* KURIR_ADMIN_LISTEN; "" = on http_listen */
    long health_stall_ms;        /* KURIR_HEALTH_STALL_MS */
    long http_conn_timeout_s;    /* KURIR_HTTP_CONN_TIMEOUT_S */
    char *public_url;            /* KURIR_PUBLIC_URL; "" when unset */
    char *topic_send;            /* KURIR_TOPIC_SEND */
    char *topic_campaign;        /* KURIR_TOPIC_CAMPAIGN */
    char *topic_contacts;        /* KURIR_TOPIC_CONTACTS */
    char *topic_status;          /* KURIR_TOPIC_STATUS */
    char *topic_replies;         /* KURIR_TOPIC_REPLIES */
    char *topic_dlq;             /* KURIR_TOPIC_DLQ */
    char *topic_parts;           /* KURIR_TOPIC_PARTS */
    char *topic_latest;          /* KURIR_TOPIC_LATEST */
    char *topic_results;         /* KURIR_TOPIC_RESULTS */
    char *stop_words;            /* KURIR_STOP_WORDS, comma-separated */
    char *log_level_name;        /* KURIR_LOG_LEVEL */
    enum log_level log_level;    /* parsed from log_level_name */
    char *log_format_name;       /* KURIR_LOG_FORMAT */
    enum log_format log_format;  /* parsed from log_format_name */
    long max_in_flight;          /* KURIR_MAX_IN_FLIGHT: jobs at once */
    long http_timeout_ms;        /* KURIR_HTTP_TIMEOUT_MS */
    long http_max_conns;         /* KURIR_HTTP_MAX_CONNS: per provider host */
    long shutdown_grace_ms;      /* KURIR_SHUTDOWN_GRACE_MS */
    long retry_horizon_s;        /* KURIR_RETRY_HORIZON_S */
    long poll_interval_ms;       /* KURIR_POLL_INTERVAL_MS: Jojka polling */
    long report_give_up_ms;      /* KURIR_REPORT_GIVE_UP_MS: no_report after */
    long mark_stale_ms;          /* KURIR_MARK_STALE_MS: abandoned marks */
    long claim_lease_ms;         /* KURIR_CLAIM_LEASE_MS: claimed entries */
};

/* Loads the config from `envp` (a NULL-ended "NAME=value" list, e.g.
 * environ). Returns 0 and fills *cfg; on error returns -1 with errstr naming
 * the variable. Free with config_cleanup() either way. */
int config_load(struct config *cfg, char *const *envp, char *errstr,
                size_t errstr_size);

/* Frees what config_load() allocated. */
void config_cleanup(struct config *cfg);

/* Logs the effective config at info level, one line per variable, with
 * secrets (passwords in URLs, SASL/TLS secrets) masked as ***. */
void config_log(const struct config *cfg);

/* Writes `url` into out as config_log() prints it: the password part of the
 * userinfo (which ends at the last '@' before the path) replaced by ***. */
void config_mask_url_for_log(char *out, size_t out_size, const char *url);

/* Prints the table (name, default, meaning) for `kurir --help`. */
void config_print_help(void);

#endif /* WORKER_CONFIG_H */
