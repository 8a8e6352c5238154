/* worker/log.c - levelled one-line logger to stderr. */
#include "worker/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum log_level log_level = LL_INFO;

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

int log_level_parse(enum log_level *out, const char *name)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

static void log_vwrite(enum log_level level, int err, const char *fmt,
                       va_list ap)
{
    static const char marks[] = "DIWE";
    char line[1024];
    char stamp[32];
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    vsnprintf(line, sizeof(line), fmt, ap);
    /* One line is the rule: fold any newline a message carries. */
    for (char *p = line; *p != '\0'; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    pthread_mutex_lock(&log_lock);
    if (err != 0)
        fprintf(stderr, "%s.%03ldZ %c %s: %s\n", stamp, ts.tv_nsec / 1000000,
                marks[level], line, strerror(err));
    else
        fprintf(stderr, "%s.%03ldZ %c %s\n", stamp, ts.tv_nsec / 1000000,
                marks[level], line);
    pthread_mutex_unlock(&log_lock);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vwrite(level, 0, fmt, ap);
    va_end(ap);
}

void log_errno(enum log_level level, int err, const char *fmt, ...)
{
    va_list ap;

    if (level < log_level)
        return;
    va_start(ap, fmt);
    log_vwrite(level, err, fmt, ap);
    va_end(ap);
}
