/* worker/log.h - levelled one-line logger to stderr.
 *
 * One line per event. In the text format (KURIR_LOG_FORMAT=text, the
 * default):
 *
 *   2026-08-23T10:15:02.123Z I consumer: assigned ... account=shop job=j-1
 *
 * In the JSON format (KURIR_LOG_FORMAT=json), one object per line for log
 * collectors, keys in this order, account and job_id only when given:
 *
 *   {"time":"2026-08-23T10:15:02.123Z","level":"info",
 *    "msg":"consumer: assigned ...","account":"shop","job_id":"j-1"}
 *
 * Each line is written with one fprintf under a lock, so lines from
 * librdkafka's threads never interleave. Only worker/ logs.
 *
 * What never goes into a line at info level or above: credentials (the
 * config masks them), a full phone number (log_phone() keeps the last three
 * digits), a message text. */
#ifndef WORKER_LOG_H
#define WORKER_LOG_H

#include <stddef.h>

enum log_level {
    LL_DEBUG,
    LL_INFO,
    LL_WARN,
    LL_ERROR,
};

enum log_format {
    LF_TEXT,
    LF_JSON,
};

/* The current level; lines below it are dropped before their arguments are
 * evaluated. */
extern enum log_level log_level;

/* The current format; set once at start-up, before other threads run. */
extern enum log_format log_format;

/* Parses "debug", "info", "warn" or "error". Returns 0, or -1. */
int log_level_parse(enum log_level *out, const char *name);

/* Parses "text" or "json". Returns 0, or -1. */
int log_format_parse(enum log_format *out, const char *name);

/* Writes one line at `level`. Thread-safe. */
void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Writes one line with strerror(err) appended. Thread-safe. */
void log_errno(enum log_level level, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes one line about an account's or a job's work: `account` and
 * `job_id` (either may be NULL) become fields of their own, so collectors
 * can filter by them. Thread-safe. */
void log_kv(enum log_level level, const char *account, const char *job_id,
            const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A phone number fit for a log line: all but the last three digits become
 * '*' ("+46701234567" -> "+********567"). Returns out. */
#define LOG_PHONE_MAX 40
char *log_phone(char out[LOG_PHONE_MAX], const char *number);

#define log_debug(...)                      \
    do {                                    \
        if (log_level <= LL_DEBUG)          \
            log_msg(LL_DEBUG, __VA_ARGS__); \
    } while (0)
#define log_info(...)                      \
    do {                                   \
        if (log_level <= LL_INFO)          \
            log_msg(LL_INFO, __VA_ARGS__); \
    } while (0)
#define log_warn(...)                      \
    do {                                   \
        if (log_level <= LL_WARN)          \
            log_msg(LL_WARN, __VA_ARGS__); \
    } while (0)
#define log_error(...) log_msg(LL_ERROR, __VA_ARGS__)

/* log_kv at a level, its arguments unevaluated below the current level:
 *   log_info_kv(acct->name, job->id, "task: submitted %zu", n);          */
#define log_info_kv(account, job_id, ...)                      \
    do {                                                       \
        if (log_level <= LL_INFO)                              \
            log_kv(LL_INFO, (account), (job_id), __VA_ARGS__); \
    } while (0)
#define log_warn_kv(account, job_id, ...)                      \
    do {                                                       \
        if (log_level <= LL_WARN)                              \
            log_kv(LL_WARN, (account), (job_id), __VA_ARGS__); \
    } while (0)
#define log_error_kv(account, job_id, ...) \
    log_kv(LL_ERROR, (account), (job_id), __VA_ARGS__)

#endif /* WORKER_LOG_H */
