/* worker/log.c - levelled one-line logger to stderr, text or JSON. */
#include "worker/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum log_level log_level = LL_INFO;
enum log_format log_format = LF_TEXT;

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

int log_format_parse(enum log_format *out, const char *name)
{
    if (strcmp(name, "text") == 0)
        *out = LF_TEXT;
    else if (strcmp(name, "json") == 0)
        *out = LF_JSON;
    else
        return -1;
    return 0;
}

/* Returns the length of the valid UTF-8 sequence at p (1..4), or 0. */
static size_t log_utf8_len(const unsigned char *p)
{
    size_t n;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        n = 2;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        n = 3;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        n = 4;
    else
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* Writes s as the body of a JSON string into out (always terminated, cut
 * at out_size); bytes that are not UTF-8 become '?'. */
static void log_json_escape(char *out, size_t out_size, const char *s)
{
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;

    while (*p != '\0' && o + 7 < out_size) {
        if (*p == '"' || *p == '\\') {
            out[o++] = '\\';
            out[o++] = (char)*p++;
        } else if (*p < 0x20) {
            o += (size_t)snprintf(out + o, out_size - o, "\\u%04x", *p++);
        } else {
            size_t n = log_utf8_len(p);
            if (n == 0) {
                out[o++] = '?';
                p++;
            } else {
                memcpy(out + o, p, n);
                o += n;
                p += n;
            }
        }
    }
    out[o] = '\0';
}

static void log_vwrite(enum log_level level, int err, const char *account,
                       const char *job_id, const char *fmt, va_list ap)
{
    static const char marks[] = "DIWE";
    static const char *const names[] = {"debug", "info", "warn", "error"};
    char line[1024];
    char stamp[32];
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    size_t n = 0;
    int got = vsnprintf(line, sizeof(line), fmt, ap);
    n = got < 0                      ? 0
        : (size_t)got < sizeof(line) ? (size_t)got
                                     : sizeof(line) - 1;
    if (err != 0)
        snprintf(line + n, sizeof(line) - n, ": %s", strerror(err));
    /* One line is the rule: fold any newline a message carries. */
    for (char *p = line; *p != '\0'; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';

    if (log_format == LF_JSON) {
        char msg[2 * sizeof(line)], acct[256], job[256];
        log_json_escape(msg, sizeof(msg), line);
        log_json_escape(acct, sizeof(acct), account ? account : "");
        log_json_escape(job, sizeof(job), job_id ? job_id : "");
        pthread_mutex_lock(&log_lock);
        fprintf(stderr,
                "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"msg\":\"%s\"%s%s%s"
                "%s%s%s}\n",
                stamp, ts.tv_nsec / 1000000, names[level], msg,
                account ? ",\"account\":\"" : "", account ? acct : "",
                account ? "\"" : "", job_id ? ",\"job_id\":\"" : "",
                job_id ? job : "", job_id ? "\"" : "");
        pthread_mutex_unlock(&log_lock);
        return;
    }
    pthread_mutex_lock(&log_lock);
    fprintf(stderr, "%s.%03ldZ %c %s%s%s%s%s\n", stamp, ts.tv_nsec / 1000000,
            marks[level], line, account ? " account=" : "",
            account ? account : "", job_id ? " job=" : "",
            job_id ? job_id : "");
    pthread_mutex_unlock(&log_lock);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vwrite(level, 0, NULL, NULL, fmt, ap);
    va_end(ap);
}

void log_errno(enum log_level level, int err, const char *fmt, ...)
{
    va_list ap;

    if (level < log_level)
        return;
    va_start(ap, fmt);
    log_vwrite(level, err, NULL, NULL, fmt, ap);
    va_end(ap);
}

void log_kv(enum log_level level, const char *account, const char *job_id,
            const char *fmt, ...)
{
    va_list ap;

    if (level < log_level)
        return;
    va_start(ap, fmt);
    log_vwrite(level, 0, account, job_id, fmt, ap);
    va_end(ap);
}

char *log_phone(char out[LOG_PHONE_MAX], const char *number)
{
    size_t len = strlen(number), digits = 0, o = 0;

    for (size_t i = 0; i < len; i++)
        digits += number[i] >= '0' && number[i] <= '9';
    for (size_t i = 0; i < len && o + 1 < LOG_PHONE_MAX; i++) {
        char c = number[i];
        if (c >= '0' && c <= '9') {
            out[o++] = digits > 3 ? '*' : c;
            digits--;
        } else {
            out[o++] = c == '+' ? '+' : '*';
        }
    }
    out[o] = '\0';
    return out;
}
