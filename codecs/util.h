/* codecs/util.h - small helpers the codecs share: a growable byte buffer,
 * URL/form encoding and decoding, XML escaping, and error text from libxml2.
 * Pure: no I/O. */
#ifndef CODECS_UTIL_H
#define CODECS_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* A growable buffer, always NUL-terminated after the first append. Out of
 * memory aborts (the buffers are small and bounded by the job). */
struct buf {
    char *data;
    size_t len;
    size_t cap;
};

void buf_init(struct buf *b);
void buf_cleanup(struct buf *b);
void buf_append(struct buf *b, const void *data, size_t len);
void buf_puts(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends s percent-encoded for a URL query or form value: unreserved bytes
 * (A-Z a-z 0-9 - . _ ~) as they are, every other byte as %XX; so a space is
 * %20 (the form the Jojka and iP.1 documents show). */
void buf_append_urlenc(struct buf *b, const char *s, size_t len);

/* Appends "&name=value" (no "&" when the buffer is empty), value encoded. A
 * NULL value appends nothing. */
void buf_add_param(struct buf *b, const char *name, const char *value);

/* Appends s with & < > " ' escaped for XML text or attributes. */
void buf_append_xml(struct buf *b, const char *s, size_t len);

/* Returns the buffer's bytes, malloc'd and NUL-terminated, and resets the
 * buffer; *len_out (when not NULL) gets the length. Never NULL. */
char *buf_detach(struct buf *b, size_t *len_out);

/* Looks up `name` in an application/x-www-form-urlencoded string (also a URL
 * query) of `len` bytes and decodes its value ('+' is a space, %XX a byte)
 * into out, NUL-terminated. Returns 0 when found, -1 when absent; a value
 * longer than out_size - 1 bytes is an error (-1 with errstr set) too, so
 * callers treat -1 as "not usable". errstr may be NULL. */
int form_get(char *out, size_t out_size, const char *form, size_t len,
             const char *name, char *errstr, size_t errstr_size);

/* Same as form_get, but returns the decoded value malloc'd (caller frees),
 * or NULL when absent. */
char *form_get_dup(const char *form, size_t len, const char *name);

/* Copies libxml2's last error into errstr as "bad XML at line N: msg", with
 * the trailing newline libxml2 adds removed. */
void util_xml_errstr(char *errstr, size_t errstr_size);

/* Formats Unix seconds as UTC in strftime format fmt. */
void util_format_utc(char *out, size_t out_size, long long unix_seconds,
                     const char *fmt);

/* Reads member `key` of JSON object `obj` into out when it is a non-empty
 * string or an integer (providers send ids as either). Returns true when
 * found, false when absent or of another kind. */
bool util_json_id(char *out, size_t out_size, const json_t *obj,
                  const char *key);

/* Returns the 64-bit FNV-1a hash of len bytes: a stable, short fingerprint
 * (reply ids, long references), not a secret. */
uint64_t util_hash64(const void *data, size_t len);

/* Copies src into a fixed array, truncating; always NUL-terminates. */
void util_strlcpy(char *dst, const char *src, size_t dst_size);

#endif /* CODECS_UTIL_H */
