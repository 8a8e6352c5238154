/* worker/log.h - levelled one-line logger to stderr.
 *
 * One line per event: `2026-08-23T10:15:02.123Z I consumer: assigned ...`.
 * Each line is written with one fprintf under a lock, so lines from
 * librdkafka's threads never interleave. Only worker/ logs. */
#ifndef WORKER_LOG_H
#define WORKER_LOG_H

enum log_level {
    LL_DEBUG,
    LL_INFO,
    LL_WARN,
    LL_ERROR,
};

/* The current level; lines below it are dropped before their arguments are
 * evaluated. */
extern enum log_level log_level;

/* Parses "debug", "info", "warn" or "error". Returns 0, or -1. */
int log_level_parse(enum log_level *out, const char *name);

/* Writes one line at `level`. Thread-safe. */
void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Writes one line with strerror(err) appended. Thread-safe. */
void log_errno(enum log_level level, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

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

#endif /* WORKER_LOG_H */
