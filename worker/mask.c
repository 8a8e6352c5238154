/* worker/mask.c - hiding an account's secrets in text shown to people. */
#include "worker/mask.h"

#include <string.h>

#include "codecs/util.h"

#define MASK_FORMS 4 /* raw, %-encoded, form-encoded, XML-escaped */

bool mask_cred_is_secret(const char *name)
{
    return strcmp(name, "user") != 0 && strcmp(name, "account") != 0;
}

static bool mask_is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9');
}

/* Returns true when `v` (vlen bytes) stands at s[i] as a whole token. */
static bool mask_token_at(const char *s, size_t len, size_t i, const char *v,
                          size_t vlen)
{
    return vlen > 0 && vlen <= len - i && memcmp(s + i, v, vlen) == 0 &&
           (i == 0 || !mask_is_alnum(s[i - 1])) &&
           (i + vlen == len || !mask_is_alnum(s[i + vlen]));
}

/* The form-encoded spelling: percent-encoded, with "+" for a space. */
static void mask_form(struct buf *out, const char *v)
{
    struct buf pct;

    buf_init(&pct);
    buf_append_urlenc(&pct, v, strlen(v));
    for (size_t i = 0; i < pct.len; i++) {
        if (i + 2 < pct.len && memcmp(pct.data + i, "%20", 3) == 0) {
            buf_puts(out, "+");
            i += 2;
        } else {
            buf_append(out, pct.data + i, 1);
        }
    }
    buf_cleanup(&pct);
}

char *mask_secrets(const struct account *acct, const char *text, size_t len,
                   size_t *out_len)
{
    struct buf forms[ACCOUNT_MAX_CREDS][MASK_FORMS];
    struct buf b;

    buf_init(&b);
    for (size_t c = 0; c < acct->ncreds; c++) {
        const char *v = acct->creds[c].value;
        for (size_t f = 0; f < MASK_FORMS; f++)
            buf_init(&forms[c][f]);
        if (!mask_cred_is_secret(acct->creds[c].name))
            continue;
        buf_puts(&forms[c][0], v);
        buf_append_urlenc(&forms[c][1], v, strlen(v));
        mask_form(&forms[c][2], v);
        buf_append_xml(&forms[c][3], v, strlen(v));
    }
    for (size_t i = 0; i < len;) {
        size_t skip = 0;
        for (size_t c = 0; c < acct->ncreds && skip == 0; c++)
            for (size_t f = 0; f < MASK_FORMS && skip == 0; f++)
                if (mask_token_at(text, len, i, forms[c][f].data,
                                  forms[c][f].len))
                    skip = forms[c][f].len;
        if (skip > 0) {
            buf_puts(&b, "***");
            i += skip;
        } else {
            buf_append(&b, text + i, 1);
            i++;
        }
    }
    for (size_t c = 0; c < acct->ncreds; c++)
        for (size_t f = 0; f < MASK_FORMS; f++)
            buf_cleanup(&forms[c][f]);
    return buf_detach(&b, out_len);
}
