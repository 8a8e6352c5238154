/* codecs/util.c - buffers, URL/form/XML encoding, libxml2 error text.
 *
 * Everything here is small and allocation-light; out of memory aborts, as
 * everywhere in kurir (STYLE §4.3.8): a codec that cannot grow a buffer of a
 * few kilobytes has nothing sensible left to do. */
#include "codecs/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/xmlerror.h>

static void *util_xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size);

    if (q == NULL) {
        fprintf(stderr, "out of memory allocating %zu bytes\n", size);
        abort();
    }
    return q;
}

void buf_init(struct buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void buf_cleanup(struct buf *b)
{
    free(b->data);
    buf_init(b);
}

static void buf_reserve(struct buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;

    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    b->data = util_xrealloc(b->data, cap);
    b->cap = cap;
}

void buf_append(struct buf *b, const void *data, size_t len)
{
    buf_reserve(b, len);
    if (len > 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void buf_puts(struct buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static bool util_is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
           c == '~';
}

void buf_append_urlenc(struct buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";

    buf_reserve(b, len * 3);
    char *p = b->data + b->len;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (util_is_unreserved(c)) {
            *p++ = (char)c;
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    b->len = (size_t)(p - b->data);
    b->data[b->len] = '\0';
}

void buf_add_param(struct buf *b, const char *name, const char *value)
{
    if (value == NULL)
        return;
    if (b->len > 0)
        buf_append(b, "&", 1);
    buf_puts(b, name);
    buf_append(b, "=", 1);
    buf_append_urlenc(b, value, strlen(value));
}

void buf_append_xml(struct buf *b, const char *s, size_t len)
{
    size_t start = 0;

    for (size_t i = 0; i < len; i++) {
        const char *esc;
        switch (s[i]) {
        case '&':
            esc = "&amp;";
            break;
        case '<':
            esc = "&lt;";
            break;
        case '>':
            esc = "&gt;";
            break;
        case '"':
            esc = "&quot;";
            break;
        case '\'':
            esc = "&apos;";
            break;
        default:
            continue;
        }
        buf_append(b, s + start, i - start);
        buf_puts(b, esc);
        start = i + 1;
    }
    buf_append(b, s + start, len - start);
}

char *buf_detach(struct buf *b, size_t *len_out)
{
    if (b->data == NULL)
        buf_reserve(b, 0);
    b->data[b->len] = '\0';
    char *data = b->data;
    if (len_out != NULL)
        *len_out = b->len;
    buf_init(b);
    return data;
}

static int util_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Finds the raw (still encoded) value of `name`; sets *vlen. */
static const char *form_find(const char *form, size_t len, const char *name,
                             size_t *vlen)
{
    size_t nlen = strlen(name);
    size_t i = 0;

    while (i < len) {
        size_t end = i;
        while (end < len && form[end] != '&')
            end++;
        const char *eq = memchr(form + i, '=', end - i);
        size_t klen = eq ? (size_t)(eq - (form + i)) : end - i;
        if (klen == nlen && memcmp(form + i, name, nlen) == 0) {
            const char *v = eq ? eq + 1 : form + end;
            *vlen = (size_t)(form + end - v);
            return v;
        }
        i = end + 1;
    }
    return NULL;
}

/* Decodes len bytes of a form value into out (room for len + 1 bytes);
 * returns the decoded length. A malformed %XX is kept literally. */
static size_t form_decode(char *out, const char *v, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        if (v[i] == '+') {
            out[n++] = ' ';
        } else if (v[i] == '%' && i + 2 < len && util_hexval(v[i + 1]) >= 0 &&
                   util_hexval(v[i + 2]) >= 0) {
            out[n++] =
                (char)(util_hexval(v[i + 1]) * 16 + util_hexval(v[i + 2]));
            i += 2;
        } else {
            out[n++] = v[i];
        }
    }
    out[n] = '\0';
    return n;
}

int form_get(char *out, size_t out_size, const char *form, size_t len,
             const char *name, char *errstr, size_t errstr_size)
{
    size_t vlen;
    const char *v = form ? form_find(form, len, name, &vlen) : NULL;

    if (v == NULL)
        return -1;
    char *tmp = util_xrealloc(NULL, vlen + 1);
    size_t n = form_decode(tmp, v, vlen);
    if (n + 1 > out_size) {
        if (errstr != NULL)
            snprintf(errstr, errstr_size, "\"%s\" is longer than %zu bytes",
                     name, out_size - 1);
        free(tmp);
        return -1;
    }
    memcpy(out, tmp, n + 1);
    free(tmp);
    return 0;
}

char *form_get_dup(const char *form, size_t len, const char *name)
{
    size_t vlen;
    const char *v = form ? form_find(form, len, name, &vlen) : NULL;

    if (v == NULL)
        return NULL;
    char *out = util_xrealloc(NULL, vlen + 1);
    form_decode(out, v, vlen);
    return out;
}

void util_xml_errstr(char *errstr, size_t errstr_size)
{
    const xmlError *xerr = xmlGetLastError();

    if (xerr == NULL || xerr->message == NULL) {
        snprintf(errstr, errstr_size, "bad XML");
        return;
    }
    int n = snprintf(errstr, errstr_size, "bad XML at line %d: %s", xerr->line,
                     xerr->message);
    /* libxml2 ends its messages with a newline; one line is the rule. */
    if (n > 0) {
        size_t len = strlen(errstr);
        while (len > 0 && (errstr[len - 1] == '\n' || errstr[len - 1] == ' '))
            errstr[--len] = '\0';
    }
}

void util_format_utc(char *out, size_t out_size, long long unix_seconds,
                     const char *fmt)
{
    time_t t = (time_t)unix_seconds;
    struct tm tm;

    gmtime_r(&t, &tm);
    /* The format is the caller's literal; -Wformat=2 cannot see through. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    size_t n = strftime(out, out_size, fmt, &tm);
#pragma GCC diagnostic pop
    if (n == 0 && out_size > 0)
        out[0] = '\0';
}

void util_strlcpy(char *dst, const char *src, size_t dst_size)
{
    if (dst_size == 0)
        return;
    size_t n = strlen(src);
    if (n >= dst_size)
        n = dst_size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

bool util_json_id(char *out, size_t out_size, const json_t *obj,
                  const char *key)
{
    json_t *v = json_object_get(obj, key);

    if (json_is_string(v) && json_string_length(v) > 0) {
        util_strlcpy(out, json_string_value(v), out_size);
        return true;
    }
    if (json_is_integer(v)) {
        snprintf(out, out_size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return true;
    }
    return false;
}

uint64_t util_hash64(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;

    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}
