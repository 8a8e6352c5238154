/* worker/events.c - the JSON of status and reply events. */
#include "worker/events.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "codecs/text.h"
#include "worker/xalloc.h"

/* The events are written by hand, not built with jansson: one growing
 * buffer instead of an object, a string and a node per field, on every
 * message (the profile of a drain had jansson's build and dump at 10 % of
 * the worker). The output is what json_dumps(JSON_COMPACT) gave, with one
 * difference: a string that is not UTF-8 (a provider's Latin-1 error text)
 * keeps its valid parts and shows U+FFFD for each bad byte, where jansson
 * dropped the field. */
struct jbuf {
    char *p;
    size_t len, cap;
};

static void jb_grow(struct jbuf *b, size_t n)
{
    if (b->len + n + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 512;
    while (cap < b->len + n + 1)
        cap *= 2;
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
}

static void jb_raw(struct jbuf *b, const char *s, size_t n)
{
    jb_grow(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* A JSON string, escaped as jansson escapes (no "\/"). */
static void jb_str(struct jbuf *b, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t n = strlen(str);

    jb_grow(b, n + 2);
    b->p[b->len++] = '"';
    for (size_t i = 0; i < n;) {
        size_t run = i;
        while (run < n && s[run] >= 0x20 && s[run] < 0x80 && s[run] != '"' &&
               s[run] != '\\')
            run++;
        if (run > i) {
            jb_raw(b, str + i, run - i);
            i = run;
            continue;
        }
        unsigned c = s[i];
        char esc[8];
        if (c >= 0x80) {
            uint32_t cp;
            size_t u = text_utf8_decode(&cp, s + i, n - i);
            if (u == 0) {
                jb_raw(b, "\xef\xbf\xbd", 3); /* U+FFFD */
                i++;
            } else {
                jb_raw(b, str + i, u);
                i += u;
            }
            continue;
        }
        switch (c) {
        case '"':
            jb_raw(b, "\\\"", 2);
            break;
        case '\\':
            jb_raw(b, "\\\\", 2);
            break;
        case '\b':
            jb_raw(b, "\\b", 2);
            break;
        case '\f':
            jb_raw(b, "\\f", 2);
            break;
        case '\n':
            jb_raw(b, "\\n", 2);
            break;
        case '\r':
            jb_raw(b, "\\r", 2);
            break;
        case '\t':
            jb_raw(b, "\\t", 2);
            break;
        default:
            snprintf(esc, sizeof(esc), "\\u%04X", c);
            jb_raw(b, esc, 6);
        }
        i++;
    }
    jb_raw(b, "\"", 1);
}

/* ,"name": then a string, or null when s is NULL or "". The first field
 * opens the object. */
static void jb_key(struct jbuf *b, const char *name)
{
    jb_raw(b, b->len == 0 ? "{\"" : ",\"", 2);
    jb_raw(b, name, strlen(name));
    jb_raw(b, "\":", 2);
}

static void jb_field(struct jbuf *b, const char *name, const char *s)
{
    jb_key(b, name);
    if (s != NULL && *s != '\0')
        jb_str(b, s);
    else
        jb_raw(b, "null", 4);
}

static void jb_int(struct jbuf *b, const char *name, int v)
{
    char num[16];

    jb_key(b, name);
    if (v > 0)
        jb_raw(b, num, (size_t)snprintf(num, sizeof(num), "%d", v));
    else
        jb_raw(b, "null", 4);
}

static char *jb_end(struct jbuf *b, size_t *len_out)
{
    jb_raw(b, "}", 1);
    *len_out = b->len;
    return b->p;
}

void event_now(char *out, size_t out_size)
{
    /* The second's text is kept: most events of a busy second share it. */
    static __thread time_t last_sec = -1;
    static __thread char last[24];
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != last_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        strftime(last, sizeof(last), "%Y-%m-%dT%H:%M:%S", &tm);
        last_sec = ts.tv_sec;
    }
    snprintf(out, out_size, "%s.%03ldZ", last, ts.tv_nsec / 1000000);
}

char *event_status_json(const struct status_event *ev, size_t *len_out)
{
    char at[40];
    struct jbuf b = {0};

    event_now(at, sizeof(at));
    jb_field(&b, "job_id", ev->job_id);
    jb_field(&b, "type", ev->type);
    jb_field(&b, "account", ev->account);
    jb_field(&b, "provider", ev->provider);
    jb_field(&b, "recipient", ev->recipient);
    jb_field(&b, "state", sms_state_name(ev->state));
    jb_field(&b, "provider_message_id", ev->provider_message_id);
    jb_field(&b, "provider_status", ev->provider_status);
    jb_int(&b, "segments", ev->segments);
    jb_int(&b, "attempt", ev->attempt);
    jb_field(&b, "reference", ev->reference);
    jb_key(&b, "error");
    if (ev->error_code != NULL && *ev->error_code != '\0') {
        jb_raw(&b, "{\"code\":", 8);
        jb_str(&b, ev->error_code);
        jb_raw(&b, ",\"message\":", 11);
        jb_str(&b, ev->error_message ? ev->error_message : "");
        jb_raw(&b, "}", 1);
    } else {
        jb_raw(&b, "null", 4);
    }
    jb_key(&b, "at");
    jb_str(&b, at);
    return jb_end(&b, len_out);
}

char *event_reply_json(const char *account, const char *provider,
                       const struct inbound_sms *reply, size_t *len_out)
{
    char at[40];
    struct jbuf b = {0};

    if (reply->received_at[0] == '\0')
        event_now(at, sizeof(at));
    jb_field(&b, "account", account);
    jb_field(&b, "provider", provider);
    jb_field(&b, "from", reply->from);
    jb_field(&b, "to", reply->to);
    jb_key(&b, "text");
    jb_str(&b, reply->text ? reply->text : "");
    jb_key(&b, "received_at");
    jb_str(&b, reply->received_at[0] ? reply->received_at : at);
    jb_field(&b, "provider_message_id", reply->provider_id);
    return jb_end(&b, len_out);
}
