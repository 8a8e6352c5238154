/* codecs/swedish_time.c - Swedish local time from the EU summer-time rule.
 *
 * Day counting is plain calendar arithmetic from 1970-01-01 (a Thursday);
 * gmtime_r() then breaks the shifted time down without consulting TZ. */
#include "codecs/swedish_time.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static bool swedish_time_is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d, for y >= 1970. */
static int64_t swedish_time_days(int64_t y, int m, int d)
{
    static const int before[12] = {0,   31,  59,  90,  120, 151,
                                   181, 212, 243, 273, 304, 334};
    int64_t prev = y - 1;
    int64_t leaps = prev / 4 - prev / 100 + prev / 400 -
                    (1969 / 4 - 1969 / 100 + 1969 / 400);
    int64_t days = 365 * (y - 1970) + leaps + before[m - 1] + d - 1;

    if (m > 2 && swedish_time_is_leap(y))
        days++;
    return days;
}

/* Unix time of 01:00 UTC on the last Sunday of month m (31 days long). */
static int64_t swedish_time_switch(int64_t y, int m)
{
    int64_t last = swedish_time_days(y, m, 31);
    int64_t sunday = last - (last + 4) % 7; /* 1970-01-01: wday 4 */

    return sunday * 86400 + 3600;
}

int swedish_time_offset(int64_t utc)
{
    struct tm tm;
    time_t t = (time_t)utc;

    if (gmtime_r(&t, &tm) == NULL)
        return 3600;
    int64_t year = (int64_t)tm.tm_year + 1900;
    if (year < 1970)
        return 3600;
    if (utc >= swedish_time_switch(year, 3) &&
        utc < swedish_time_switch(year, 10))
        return 7200;
    return 3600;
}

void swedish_time_format(char *out, size_t out_size, int64_t utc)
{
    struct tm tm;
    time_t t = (time_t)(utc + swedish_time_offset(utc));

    if (gmtime_r(&t, &tm) == NULL ||
        strftime(out, out_size, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        if (out_size > 0)
            out[0] = '\0';
    }
}

/* Reads exactly n digits at *p into *v and advances *p. */
static bool swedish_time_digits(const char **p, int n, int *v)
{
    int value = 0;

    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        value = value * 10 + (c - '0');
    }
    *p += n;
    *v = value;
    return true;
}

int swedish_time_localise(char *out, size_t out_size, const char *in,
                          char *errstr, size_t errstr_size)
{
    static const int mdays[12] = {31, 29, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31};
    const char *p = in;
    int y, mo, d, h, mi, s = 0;

    if (!swedish_time_digits(&p, 4, &y) || *p++ != '-' ||
        !swedish_time_digits(&p, 2, &mo) || *p++ != '-' ||
        !swedish_time_digits(&p, 2, &d) || (*p != 'T' && *p != ' '))
        goto bad;
    p++;
    if (!swedish_time_digits(&p, 2, &h) || *p++ != ':' ||
        !swedish_time_digits(&p, 2, &mi))
        goto bad;
    if (*p == ':') {
        p++;
        if (!swedish_time_digits(&p, 2, &s))
            goto bad;
    }
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
        (mo == 2 && d == 29 && !swedish_time_is_leap(y)) || h > 23 || mi > 59 ||
        s > 59)
        goto bad;

    int64_t local =
        swedish_time_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
    if (*p == '\0') {
        snprintf(out, out_size, "%04d-%02d-%02dT%02d:%02d:%02d", y, mo, d, h,
                 mi, s);
        return 0;
    }

    int64_t utc = local;
    if (*p == 'Z' && p[1] == '\0') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om;
        p++;
        if (!swedish_time_digits(&p, 2, &oh) || *p++ != ':' ||
            !swedish_time_digits(&p, 2, &om) || *p != '\0' || oh > 23 ||
            om > 59)
            goto bad;
        utc = local - sign * (oh * 3600 + om * 60);
    } else {
        goto bad;
    }
    swedish_time_format(out, out_size, utc);
    return 0;

bad:
    snprintf(errstr, errstr_size,
             "bad date-time \"%.40s\": want YYYY-MM-DDTHH:MM:SS", in);
    return -1;
}
