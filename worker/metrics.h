/* worker/metrics.h - labelled Prometheus counters, gauges and histograms.
 *
 * One registry per worker, used on the loop thread only (no locks). Every
 * metric is a row of the table in metrics.c, named by an enum metric_id,
 * with a fixed list of label names. A call site is one line:
 *
 *   metrics_count(&w->metrics, M_PROVIDER_REQUESTS,
 *                 ML(acct->name, acct->codec->name, "2xx"), 1);
 *   metrics_observe(&w->metrics, M_PROVIDER_LATENCY, ML(acct->name), secs);
 *   metrics_set(&w->metrics, M_SCHEDULED_BACKLOG, NULL, (double)n);
 *
 * ML(...) builds the NULL-ended list of label values, in the order of the
 * metric's label names (see the table); a metric without labels takes NULL.
 * The number of values must match the table (asserted).
 *
 * Label values must come from bounded sets: account names, provider
 * (codec) names, topic names, partition numbers, states and result
 * classes. Never a phone number, a job id, a message text or anything a
 * caller on the network chose. As a guard, a metric keeps at most
 * METRICS_MAX_SERIES label sets; further ones are counted under the value
 * "other" for every label, and values are cut at METRICS_MAX_LABEL bytes.
 *
 * metrics_render() writes the Prometheus text exposition format (version
 * 0.0.4) with HELP and TYPE lines; its result goes to listener_publish().
 * Names follow Prometheus conventions: counters end in _total, durations
 * are in seconds and end in _seconds. */
#ifndef WORKER_METRICS_H
#define WORKER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_MAX_LABELS 3
#define METRICS_MAX_SERIES 256
#define METRICS_MAX_LABEL  64

/* The label values of one call, in the table's order. */
#define ML(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Every metric kurir exports. The table in metrics.c gives each its name,
 * type, help and label names (listed here after each id). */
enum metric_id {
    M_BUILD_INFO,          /* gauge: version; always 1 */
    M_JOBS_CONSUMED,       /* counter: topic, outcome */
    M_STATUS_EVENTS,       /* counter: state */
    M_PROVIDER_REQUESTS,   /* counter: account, provider, result */
    M_PROVIDER_LATENCY,    /* histogram (s): account */
    M_PROVIDER_IN_FLIGHT,  /* gauge: provider requests open now */
    M_RATELIMIT_WAITS,     /* counter: account */
    M_RATELIMIT_TOKENS,    /* counter: account */
    M_SCHEDULED_BACKLOG,   /* gauge: sends waiting for send_at */
    M_RETRY_BACKLOG,       /* gauge: sends waiting for a retry */
    M_UNITS_IN_FLIGHT,     /* gauge: units being worked on */
    M_UNITS_PARKED,        /* gauge: cause */
    M_KAFKA_LAG,           /* gauge: topic, partition */
    M_KAFKA_OLDEST_AGE,    /* gauge (s): topic, partition */
    M_KAFKA_ASSIGNED,      /* gauge: partitions assigned to this replica */
    M_KAFKA_ERRORS,        /* counter: kind */
    M_KAFKA_BROKER_ERRORS, /* counter: client, kind (from statistics) */
    M_WEBHOOK_REQUESTS,    /* counter: result */
    M_REDIS_UP,            /* gauge: 1 when the last Redis call worked */
    M_REDIS_ERRORS,        /* counter: Redis calls that failed */
    M_REDIS_ROUND_TRIPS,   /* counter: writes of the loop's connection */
    M_REDIS_CALLS,         /* counter: commands and scripts it sent */
    M_REDIS_EPOCH_CHANGES, /* counter: Redis restarts/failovers seen */
    M_KAFKA_PAUSED,        /* gauge: 1 while consumption is paused */
    M_UNITS_DEFERRED,      /* counter: account (long waits moved to Redis) */
    M_RATELIMIT_PENALTIES, /* counter: account (Retry-After charged) */
    M_EVENT_RETRIES,       /* counter: topic (refused events produced again) */
    M_WEBHOOK_SUSPENDED,   /* gauge: callbacks waiting for their answer */
    M_WEBHOOK_EXPIRED,     /* counter: callbacks answered 503 after a bound */
    M_LEASES_LOST,         /* counter: claimed entries whose lease was gone */
    M_LOOP_IDLE,           /* counter (s): the loop waited with nothing ready */
    M_COUNT
};

/* One label set of one metric. */
struct metric_series {
    char *labels[METRICS_MAX_LABELS]; /* owned copies */
    double value;                     /* counter or gauge; histogram sum */
    uint64_t count;                   /* histogram: observations */
    uint64_t *buckets;                /* histogram: per bucket, not summed */
};

struct metric_family {
    struct metric_series *series;
    size_t nseries;
    size_t cap;
};

struct metrics {
    struct metric_family fam[M_COUNT];
    char *text; /* the last render, owned */
    size_t text_len;
    size_t text_cap;
};

/* Readies an empty registry and sets kurir_build_info{version} to 1. */
void metrics_init(struct metrics *m, const char *version);

/* Frees every series and the rendered text. */
void metrics_free(struct metrics *m);

/* Adds n (a count, or seconds) to a counter (or a gauge). */
void metrics_count(struct metrics *m, enum metric_id id,
                   const char *const *labels, double n);

/* Sets a gauge; on a counter, sets its value from a source that counts by
 * itself (librdkafka, the listener), which must only grow. */
void metrics_set(struct metrics *m, enum metric_id id,
                 const char *const *labels, double v);

/* Records one observation (seconds for latencies) in a histogram. */
void metrics_observe(struct metrics *m, enum metric_id id,
                     const char *const *labels, double v);

/* Drops every series of a metric: for gauges whose label sets come and go
 * (partitions revoked), before setting the current ones. */
void metrics_clear(struct metrics *m, enum metric_id id);

/* Returns the value of a counter or gauge series (a histogram's count), or
 * -1 when the series does not exist. For tests and summaries. */
double metrics_value(const struct metrics *m, enum metric_id id,
                     const char *const *labels);

/* Renders every metric in the Prometheus text format. The text is owned by
 * the registry and valid until the next render or metrics_free(). */
const char *metrics_render(struct metrics *m);

/* Reads one librdkafka statistics document (the JSON passed to the
 * callback set with rd_kafka_conf_set_stats_cb when statistics.interval.ms
 * is set): from a consumer's, the lag of every assigned partition
 * (kurir_kafka_consumer_lag, replacing the previous set) and the number of
 * assigned partitions whose lag librdkafka knows (a partition assigned a
 * moment ago counts from its first fetch); from any client's, the brokers'
 * transmit, receive and timeout error counts, by client type. Returns 0, or -1
 * when `json` is not a statistics document (nothing changed). */
int metrics_read_rdkafka_stats(struct metrics *m, const char *json);

/* Returns the result class of an HTTP answer for M_PROVIDER_REQUESTS and
 * M_WEBHOOK_REQUESTS: "2xx", "3xx", "4xx", "429", "5xx", or "error" when no
 * answer came (status 0). */
const char *metrics_http_class(long status);

#endif /* WORKER_METRICS_H */
