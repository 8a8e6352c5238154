/* tests/standin/util.c - buffers, tables, form decoding, text counting and
 * time for the stand-in.
 *
 * Written apart from codecs/ on purpose (the stand-in must not share the
 * codec's logic): GSM 03.38 membership and segment counts are taken from
 * 3GPP TS 23.038/23.040 as providers.md §5 sums them up. */
#include "standin.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ------------------------------------------------------------------------
 * Memory and buffers
 * ---------------------------------------------------------------------- */

static void oom(void)
{
    fputs("kurir-standin: out of memory\n", stderr);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (p == NULL)
        oom();
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    if (p == NULL)
        oom();
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);

    if (q == NULL)
        oom();
    return q;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);

    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static void sbuf_reserve(struct sbuf *b, size_t more)
{
    if (b->len + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

void sbuf_append(struct sbuf *b, const void *data, size_t len)
{
    sbuf_reserve(b, len);
    if (len > 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void sbuf_puts(struct sbuf *b, const char *s)
{
    sbuf_append(b, s, strlen(s));
}

void sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    sbuf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sbuf_xml(struct sbuf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '&':
            sbuf_puts(b, "&amp;");
            break;
        case '<':
            sbuf_puts(b, "&lt;");
            break;
        case '>':
            sbuf_puts(b, "&gt;");
            break;
        case '"':
            sbuf_puts(b, "&quot;");
            break;
        default:
            sbuf_append(b, s, 1);
        }
    }
}

void sbuf_urlenc(struct sbuf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            sbuf_append(b, s, 1);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            sbuf_append(b, esc, 3);
        }
    }
}

char *sbuf_detach(struct sbuf *b, size_t *len_out)
{
    char *p = b->data;

    if (p == NULL)
        p = xcalloc(1, 1);
    if (len_out != NULL)
        *len_out = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

void sbuf_free(struct sbuf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void ptrvec_push(struct ptrvec *v, void *p)
{
    if (v->len == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 8;
        v->items = xrealloc(v->items, v->cap * sizeof(*v->items));
    }
    v->items[v->len++] = p;
}

void ptrvec_free(struct ptrvec *v)
{
    free(v->items);
    v->items = NULL;
    v->len = 0;
    v->cap = 0;
}

/* ------------------------------------------------------------------------
 * Hash table (open addressing, FNV-1a)
 * ---------------------------------------------------------------------- */

static size_t table_hash(const char *key)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *key != '\0'; key++) {
        h ^= (unsigned char)*key;
        h *= 1099511628211ULL;
    }
    return (size_t)h;
}

static size_t table_slot(const struct table *t, const char *key)
{
    size_t i = table_hash(key) & (t->cap - 1);

    while (t->keys[i] != NULL && strcmp(t->keys[i], key) != 0)
        i = (i + 1) & (t->cap - 1);
    return i;
}

void *table_get(const struct table *t, const char *key)
{
    if (t->cap == 0)
        return NULL;
    return t->vals[table_slot(t, key)];
}

static void table_grow(struct table *t)
{
    struct table bigger = {0};

    bigger.cap = t->cap ? t->cap * 2 : 64;
    bigger.keys = xcalloc(bigger.cap, sizeof(*bigger.keys));
    bigger.vals = xcalloc(bigger.cap, sizeof(*bigger.vals));
    for (size_t i = 0; i < t->cap; i++) {
        if (t->keys[i] == NULL)
            continue;
        size_t j = table_slot(&bigger, t->keys[i]);
        bigger.keys[j] = t->keys[i];
        bigger.vals[j] = t->vals[i];
        bigger.len++;
    }
    free(t->keys);
    free(t->vals);
    *t = bigger;
}

void table_put(struct table *t, const char *key, void *val)
{
    if ((t->len + 1) * 4 >= t->cap * 3)
        table_grow(t);
    size_t i = table_slot(t, key);
    if (t->keys[i] == NULL) {
        t->keys[i] = xstrdup(key);
        t->len++;
    }
    t->vals[i] = val;
}

void table_free(struct table *t)
{
    for (size_t i = 0; i < t->cap; i++)
        free(t->keys[i]);
    free(t->keys);
    free(t->vals);
    memset(t, 0, sizeof(*t));
}

/* ------------------------------------------------------------------------
 * Forms and queries
 * ---------------------------------------------------------------------- */

void kvlist_add(struct kvlist *l, const char *name, const char *value,
                size_t value_len)
{
    if (l->len == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->items = xrealloc(l->items, l->cap * sizeof(*l->items));
    }
    struct kv *kv = &l->items[l->len++];
    kv->name = xstrdup(name);
    kv->value = xstrndup(value, value_len);
    kv->value_len = value_len;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *url_decode(const char *s, size_t len, bool plus_is_space, size_t *len_out)
{
    char *out = xmalloc(len + 1);
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+' && plus_is_space) {
            out[n++] = ' ';
        } else if (s[i] == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 &&
                   hexval(s[i + 2]) >= 0) {
            out[n++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            out[n++] = s[i];
        }
    }
    out[n] = '\0';
    if (len_out != NULL)
        *len_out = n;
    return out;
}

void kvlist_parse_form(struct kvlist *l, const char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        size_t end = i;
        while (end < len && s[end] != '&')
            end++;
        if (end > i) {
            size_t eq = i;
            while (eq < end && s[eq] != '=')
                eq++;
            size_t nlen;
            size_t vlen = 0;
            char *name = url_decode(s + i, eq - i, true, &nlen);
            char *value =
                eq < end ? url_decode(s + eq + 1, end - eq - 1, true, &vlen)
                         : xstrdup("");
            kvlist_add(l, name, value, vlen);
            free(name);
            free(value);
        }
        i = end + 1;
    }
}

const char *kvlist_get(const struct kvlist *l, const char *name, bool nocase)
{
    for (size_t i = 0; i < l->len; i++) {
        bool same = nocase ? strcasecmp(l->items[i].name, name) == 0
                           : strcmp(l->items[i].name, name) == 0;
        if (same)
            return l->items[i].value;
    }
    return NULL;
}

void kvlist_free(struct kvlist *l)
{
    for (size_t i = 0; i < l->len; i++) {
        free(l->items[i].name);
        free(l->items[i].value);
    }
    free(l->items);
    memset(l, 0, sizeof(*l));
}

/* ------------------------------------------------------------------------
 * Text
 * ---------------------------------------------------------------------- */

bool utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        unsigned c = p[i];
        size_t n;
        uint32_t cp;
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + n >= len)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

uint32_t utf8_next(const char **pp)
{
    const unsigned char *p = (const unsigned char *)*pp;
    uint32_t cp;
    size_t n;

    if (p[0] < 0x80) {
        cp = p[0];
        n = 0;
    } else if (p[0] < 0xE0) {
        cp = p[0] & 0x1F;
        n = 1;
    } else if (p[0] < 0xF0) {
        cp = p[0] & 0x0F;
        n = 2;
    } else {
        cp = p[0] & 0x07;
        n = 3;
    }
    for (size_t k = 1; k <= n; k++)
        cp = (cp << 6) | (p[k] & 0x3F);
    *pp += n + 1;
    return cp;
}

/* GSM 03.38 basic table characters outside printable ASCII. */
static const uint32_t gsm_basic_extra[] = {
    0x00A3, 0x00A5, 0x00E8, 0x00E9, 0x00F9, 0x00EC, 0x00F2, 0x00C7,
    0x00E7, 0x00D8, 0x00F8, 0x00C5, 0x00E5, 0x0394, 0x03A6, 0x0393,
    0x039B, 0x03A9, 0x03A0, 0x03A8, 0x03A3, 0x0398, 0x039E, 0x00C6,
    0x00E6, 0x00DF, 0x00C9, 0x00A4, 0x00A1, 0x00C4, 0x00D6, 0x00D1,
    0x00DC, 0x00A7, 0x00BF, 0x00E4, 0x00F6, 0x00F1, 0x00FC, 0x00E0,
};

/* Returns the septets cp costs in GSM-7 (1 or 2), or 0 when it has none. */
static int gsm_septets(uint32_t cp)
{
    if (cp == '\n' || cp == '\r')
        return 1;
    if (cp == 0x0C || cp == '^' || cp == '{' || cp == '}' || cp == '\\' ||
        cp == '[' || cp == '~' || cp == ']' || cp == '|' || cp == 0x20AC)
        return 2;
    if ((cp >= 0x20 && cp <= 0x5F) || (cp >= 'a' && cp <= 'z'))
        return 1;
    for (size_t i = 0; i < sizeof(gsm_basic_extra) / sizeof(*gsm_basic_extra);
         i++) {
        if (gsm_basic_extra[i] == cp)
            return 1;
    }
    return 0;
}

void text_count(struct text_count *out, const char *utf8, size_t len,
                bool force_ucs2)
{
    const char *p = utf8;
    const char *end = utf8 + len;
    unsigned gsm_parts = 1, ucs_parts = 1;
    size_t gsm_fill = 0, ucs_fill = 0;

    memset(out, 0, sizeof(*out));
    out->gsm = true;
    while (p < end) {
        uint32_t cp = utf8_next(&p);
        int sept = gsm_septets(cp);
        size_t units = cp > 0xFFFF ? 2 : 1;
        out->chars++;
        out->utf16 += units;
        if (sept == 0)
            out->gsm = false;
        out->septets += sept ? (size_t)sept : 1;
        /* Greedy packing into concatenated parts: an escape pair or a
         * surrogate pair never straddles two parts. */
        if (gsm_fill + (size_t)(sept ? sept : 1) > 153) {
            gsm_parts++;
            gsm_fill = 0;
        }
        gsm_fill += (size_t)(sept ? sept : 1);
        if (ucs_fill + units > 67) {
            ucs_parts++;
            ucs_fill = 0;
        }
        ucs_fill += units;
    }
    if (out->gsm && !force_ucs2)
        out->segments = out->septets <= 160 ? 1 : gsm_parts;
    else
        out->segments = out->utf16 <= 70 ? 1 : ucs_parts;
}

bool is_msisdn(const char *s)
{
    size_t n = strlen(s);

    if (n < 8 || n > 15 || s[0] == '0')
        return false;
    return only_chars(s, "0123456789");
}

bool only_chars(const char *s, const char *allowed)
{
    for (; *s != '\0'; s++) {
        if (strchr(allowed, *s) == NULL)
            return false;
    }
    return true;
}

bool is_http_url(const char *s)
{
    const char *host;

    if (strncmp(s, "http://", 7) == 0)
        host = s + 7;
    else if (strncmp(s, "https://", 8) == 0)
        host = s + 8;
    else
        return false;
    if (*host == '\0' || *host == '/' || *host == ':')
        return false;
    for (const char *p = s; *p != '\0'; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7F)
            return false;
    }
    return true;
}

char *trim(char *s)
{
    size_t n = strlen(s);
    size_t start = 0;

    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    while (start < n && isspace((unsigned char)s[start]))
        start++;
    memmove(s, s + start, n - start + 1);
    return s;
}

int parse_long(long *out, const char *s)
{
    char *end;

    if (*s == '\0' || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

/* ------------------------------------------------------------------------
 * Time
 * ---------------------------------------------------------------------- */

int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Days since 1970-01-01 of a civil date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int64_t civil_to_unix(int y, int mo, int d, int h, int mi, int s)
{
    return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : days[m - 1];
}

/* Reads exactly n digits. */
static int read_digits(const char **p, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int parse_fields(int f[6], const char **pp, char sep)
{
    const char *p = *pp;

    if (read_digits(&p, 4, &f[0]) != 0 || *p++ != '-' ||
        read_digits(&p, 2, &f[1]) != 0 || *p++ != '-' ||
        read_digits(&p, 2, &f[2]) != 0 || *p++ != sep ||
        read_digits(&p, 2, &f[3]) != 0 || *p++ != ':' ||
        read_digits(&p, 2, &f[4]) != 0 || *p++ != ':' ||
        read_digits(&p, 2, &f[5]) != 0)
        return -1;
    if (f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > days_in_month(f[0], f[1]) ||
        f[3] > 23 || f[4] > 59 || f[5] > 59)
        return -1;
    *pp = p;
    return 0;
}

int parse_datetime(int f[6], const char *s, char sep)
{
    const char *p = s;

    if (parse_fields(f, &p, sep) != 0 || *p != '\0')
        return -1;
    return 0;
}

int parse_iso8601(int64_t *out_ms, const char *s)
{
    const char *p = s;
    int f[6];
    int ms = 0;
    int offset = 0;

    if (parse_fields(f, &p, 'T') != 0)
        return -1;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (isdigit((unsigned char)*p)) {
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
            digits++;
            p++;
        }
        if (digits == 0)
            return -1;
        for (; digits < 3; digits++)
            ms *= 10;
    }
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        int hh, mm;
        p++;
        if (read_digits(&p, 2, &hh) != 0 || *p++ != ':' ||
            read_digits(&p, 2, &mm) != 0 || hh > 23 || mm > 59)
            return -1;
        offset = sign * (hh * 3600 + mm * 60);
    }
    if (*p != '\0')
        return -1;
    *out_ms =
        (civil_to_unix(f[0], f[1], f[2], f[3], f[4], f[5]) - offset) * 1000 +
        ms;
    return 0;
}

/* Epoch seconds of 01:00 UTC on the last Sunday of month m of year y. */
static int64_t last_sunday_0100(int y, int m)
{
    int64_t d = days_from_civil(y, m, days_in_month(y, m));
    int64_t weekday = ((d % 7) + 7 + 4) % 7; /* 1970-01-01 was a Thursday */

    return (d - weekday) * 86400 + 3600;
}

int stockholm_offset(const int f[6])
{
    int64_t as_cet = civil_to_unix(f[0], f[1], f[2], f[3], f[4], f[5]) - 3600;

    if (as_cet >= last_sunday_0100(f[0], 3) &&
        as_cet < last_sunday_0100(f[0], 10))
        return 7200;
    return 3600;
}

void format_utc(char *out, size_t out_size, int64_t ms, const char *fmt,
                bool millis, const char *suffix)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&secs, &tm);
    /* The formats are the callers' literals. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    size_t n = strftime(out, out_size, fmt, &tm);
#pragma GCC diagnostic pop
    if (millis && n < out_size)
        snprintf(out + n, out_size - n, ".%03d%s", (int)(ms % 1000), suffix);
}

/* ------------------------------------------------------------------------
 * Ids and randomness
 * ---------------------------------------------------------------------- */

static pthread_mutex_t rng_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint64_t id_counter;

void rng_seed(uint64_t seed)
{
    pthread_mutex_lock(&rng_lock);
    rng_state = seed ? seed : 0x9E3779B97F4A7C15ULL;
    pthread_mutex_unlock(&rng_lock);
}

static uint64_t rng_next_locked(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

double rng_unit(void)
{
    pthread_mutex_lock(&rng_lock);
    uint64_t v = rng_next_locked();
    pthread_mutex_unlock(&rng_lock);
    return (double)(v >> 11) / 9007199254740992.0;
}

void hex_id(char out[25])
{
    pthread_mutex_lock(&rng_lock);
    uint64_t n = ++id_counter;
    pthread_mutex_unlock(&rng_lock);
    snprintf(out, 25, "%08lx%010llx%06lx",
             (unsigned long)(now_ms() / 1000) & 0xFFFFFFFFUL,
             (unsigned long long)(0x5374616e64ULL), /* "Stand" */
             (unsigned long)(n & 0xFFFFFF));
}
