/* codecs/text.c - GSM 03.38 / UCS-2 analysis, segment counts, MSISDNs and
 * Latin-1 transcoding, shared by every codec.
 *
 * text_analyse() runs for every job, so it makes one pass over the bytes,
 * allocates nothing and counts both codings at once: the GSM-7 septets (an
 * extension character costs two, ESC + code) and the UTF-16 units (a code
 * point above U+FFFF costs two, a surrogate pair). Parts are counted by
 * packing characters greedily into 153-septet / 67-unit parts, so an escape
 * pair or a surrogate pair is never split (3GPP TS 23.040 §9.2.3.24.1); a
 * text that fits 160 septets / 70 units is one part. Pure: no I/O. */
#include "codecs/text.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define GSM_SINGLE 160
#define GSM_PART   153
#define UCS_SINGLE 70
#define UCS_PART   67

/* Septets a code point costs in GSM 03.38: 1 basic table, 2 extension table
 * (ESC + code), 0 not encodable. Indexed by code point for U+0000..U+00FF;
 * the Greek capitals and the euro sign are handled in gsm_cost(). Both
 * U+00C7 (the standard's Ç) and U+00E7 (Unicode's corrected ç) map to code
 * 0x09, so both are accepted. */
static const uint8_t gsm_latin_cost[256] = {
    /* 0x00-0x1f: LF and CR are basic, FF is extension, the rest none. */
    ['\n'] = 1,
    ['\r'] = 1,
    ['\f'] = 2,
    /* 0x20-0x7f: printable ASCII is basic but for the backtick, which is
     * not encodable, and the characters of the extension table. */
    [' '] = 1,
    ['!'] = 1,
    ['"'] = 1,
    ['#'] = 1,
    ['$'] = 1,
    ['%'] = 1,
    ['&'] = 1,
    ['\''] = 1,
    ['('] = 1,
    [')'] = 1,
    ['*'] = 1,
    ['+'] = 1,
    [','] = 1,
    ['-'] = 1,
    ['.'] = 1,
    ['/'] = 1,
    ['0'] = 1,
    ['1'] = 1,
    ['2'] = 1,
    ['3'] = 1,
    ['4'] = 1,
    ['5'] = 1,
    ['6'] = 1,
    ['7'] = 1,
    ['8'] = 1,
    ['9'] = 1,
    [':'] = 1,
    [';'] = 1,
    ['<'] = 1,
    ['='] = 1,
    ['>'] = 1,
    ['?'] = 1,
    ['@'] = 1,
    ['A'] = 1,
    ['B'] = 1,
    ['C'] = 1,
    ['D'] = 1,
    ['E'] = 1,
    ['F'] = 1,
    ['G'] = 1,
    ['H'] = 1,
    ['I'] = 1,
    ['J'] = 1,
    ['K'] = 1,
    ['L'] = 1,
    ['M'] = 1,
    ['N'] = 1,
    ['O'] = 1,
    ['P'] = 1,
    ['Q'] = 1,
    ['R'] = 1,
    ['S'] = 1,
    ['T'] = 1,
    ['U'] = 1,
    ['V'] = 1,
    ['W'] = 1,
    ['X'] = 1,
    ['Y'] = 1,
    ['Z'] = 1,
    ['_'] = 1,
    ['a'] = 1,
    ['b'] = 1,
    ['c'] = 1,
    ['d'] = 1,
    ['e'] = 1,
    ['f'] = 1,
    ['g'] = 1,
    ['h'] = 1,
    ['i'] = 1,
    ['j'] = 1,
    ['k'] = 1,
    ['l'] = 1,
    ['m'] = 1,
    ['n'] = 1,
    ['o'] = 1,
    ['p'] = 1,
    ['q'] = 1,
    ['r'] = 1,
    ['s'] = 1,
    ['t'] = 1,
    ['u'] = 1,
    ['v'] = 1,
    ['w'] = 1,
    ['x'] = 1,
    ['y'] = 1,
    ['z'] = 1,
    ['['] = 2,
    ['\\'] = 2,
    [']'] = 2,
    ['^'] = 2,
    ['{'] = 2,
    ['|'] = 2,
    ['}'] = 2,
    ['~'] = 2,
    /* 0xa0-0xff: the Latin-1 letters and signs of the basic table. */
    [0xa1] = 1,
    /* ¡ */[0xa3] = 1,
    /* £ */[0xa4] = 1, /* ¤ */
    [0xa5] = 1,
    /* ¥ */[0xa7] = 1,
    /* § */[0xbf] = 1, /* ¿ */
    [0xc4] = 1,
    /* Ä */[0xc5] = 1,
    /* Å */[0xc6] = 1, /* Æ */
    [0xc7] = 1,
    /* Ç */[0xc9] = 1,
    /* É */[0xd1] = 1, /* Ñ */
    [0xd6] = 1,
    /* Ö */[0xd8] = 1,
    /* Ø */[0xdc] = 1, /* Ü */
    [0xdf] = 1,
    /* ß */[0xe0] = 1,
    /* à */[0xe4] = 1, /* ä */
    [0xe5] = 1,
    /* å */[0xe6] = 1,
    /* æ */[0xe7] = 1, /* ç */
    [0xe8] = 1,
    /* è */[0xe9] = 1,
    /* é */[0xec] = 1, /* ì */
    [0xf1] = 1,
    /* ñ */[0xf2] = 1,
    /* ò */[0xf6] = 1, /* ö */
    [0xf8] = 1,
    /* ø */[0xf9] = 1,
    /* ù */[0xfc] = 1, /* ü */
};

static unsigned gsm_cost(uint32_t cp)
{
    if (cp < 256)
        return gsm_latin_cost[cp];
    switch (cp) {
    case 0x0393: /* Γ */
    case 0x0394: /* Δ */
    case 0x0398: /* Θ */
    case 0x039b: /* Λ */
    case 0x039e: /* Ξ */
    case 0x03a0: /* Π */
    case 0x03a3: /* Σ */
    case 0x03a6: /* Φ */
    case 0x03a8: /* Ψ */
    case 0x03a9: /* Ω */
        return 1;
    case 0x20ac: /* € */
        return 2;
    default:
        return 0;
    }
}

size_t text_utf8_decode(uint32_t *cp, const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t v, min;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2, v = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3, v = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

/* Decodes the code point at s[*i] and advances *i past it. Returns 0, or -1
 * with errstr naming the byte where the UTF-8 goes wrong. */
static int text_next(uint32_t *cp, const unsigned char *s, size_t len,
                     size_t *i, char *errstr, size_t errstr_size)
{
    size_t n = text_utf8_decode(cp, s + *i, len - *i);

    if (n == 0) {
        snprintf(errstr, errstr_size, "text is not valid UTF-8 at byte %zu",
                 *i);
        return -1;
    }
    *i += n;
    return 0;
}

/* Greedy packing of characters into parts of `part` units: a character that
 * does not fit in what is left of the current part starts the next. */
struct packer {
    size_t parts; /* parts begun */
    size_t fill;  /* units in the last part */
};

static void packer_add(struct packer *p, unsigned cost, size_t part)
{
    if (p->parts == 0 || p->fill + cost > part) {
        p->parts++;
        p->fill = 0;
    }
    p->fill += cost;
}

int text_analyse(struct text_info *out, const char *utf8, size_t len,
                 char *errstr, size_t errstr_size)
{
    const unsigned char *s = (const unsigned char *)utf8;
    struct packer gsm = {0, 0}, ucs = {0, 0};
    size_t chars = 0, septets = 0, units = 0;
    bool is_gsm = true;

    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t at = i;

        if (text_next(&cp, s, len, &i, errstr, errstr_size) != 0)
            return -1;
        if (cp == 0) {
            snprintf(errstr, errstr_size, "text holds a NUL at byte %zu", at);
            return -1;
        }
        chars++;
        unsigned ucost = cp > 0xffff ? 2 : 1;
        units += ucost;
        packer_add(&ucs, ucost, UCS_PART);
        if (is_gsm) {
            unsigned gcost = gsm_cost(cp);
            if (gcost == 0) {
                is_gsm = false;
            } else {
                septets += gcost;
                packer_add(&gsm, gcost, GSM_PART);
            }
        }
    }

    out->chars = chars;
    if (is_gsm) {
        out->coding = TEXT_GSM7;
        out->units = septets;
        out->segments = septets <= GSM_SINGLE ? 1 : (unsigned)gsm.parts;
    } else {
        out->coding = TEXT_UCS2;
        out->units = units;
        out->segments = units <= UCS_SINGLE ? 1 : (unsigned)ucs.parts;
    }
    return 0;
}

const struct segment_rule segment_rule_gsm = {
    .gsm_single = GSM_SINGLE,
    .gsm_part = GSM_PART,
    .ucs_single = UCS_SINGLE,
    .ucs_part = UCS_PART,
    .newline_cost = 0,
    .chars = false,
};

unsigned text_segments(const struct segment_rule *rule, const char *utf8,
                       size_t len)
{
    const unsigned char *s = (const unsigned char *)utf8;
    struct packer gsm = {0, 0}, ucs = {0, 0};
    size_t septets = 0, units = 0;
    bool is_gsm = true;

    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = text_utf8_decode(&cp, s + i, len - i);

        if (n == 0 || cp == 0)
            return 0;
        i += n;
        unsigned ucost = cp > 0xffff ? 2 : 1;
        unsigned gcost = gsm_cost(cp);
        if (rule->chars)
            ucost = gcost = 1;
        if (cp == '\n' && rule->newline_cost > 0)
            ucost = gcost = rule->newline_cost;
        units += ucost;
        packer_add(&ucs, ucost, rule->chars ? rule->gsm_part : rule->ucs_part);
        if (is_gsm && !rule->chars && gcost == 0)
            is_gsm = false;
        if (is_gsm) {
            septets += gcost;
            packer_add(&gsm, gcost, rule->gsm_part);
        }
    }
    if (rule->chars)
        return units <= rule->gsm_single || ucs.parts == 0
                   ? 1
                   : (unsigned)ucs.parts;
    if (is_gsm)
        return septets <= rule->gsm_single || gsm.parts == 0
                   ? 1
                   : (unsigned)gsm.parts;
    return units <= rule->ucs_single || ucs.parts == 0 ? 1
                                                       : (unsigned)ucs.parts;
}

const char *const text_stop_words[] = {"STOP", "STOPP", "AVREGISTRERA", NULL};

static bool text_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

bool text_is_stop_word(const char *text, const char *const *words)
{
    const char *start = text, *end;

    if (words == NULL)
        words = text_stop_words;
    while (text_is_space(*start))
        start++;
    end = start + strlen(start);
    while (end > start && text_is_space(end[-1]))
        end--;
    size_t n = (size_t)(end - start);
    for (size_t i = 0; words[i] != NULL; i++)
        if (strlen(words[i]) == n && strncasecmp(start, words[i], n) == 0)
            return true;
    return false;
}

int msisdn_normalise(char out[MSISDN_MAX + 1], const char *in, char *errstr,
                     size_t errstr_size)
{
    const char *p = in;

    if (p[0] == '+')
        p++;
    else if (p[0] == '0' && p[1] == '0')
        p += 2;

    size_t n = strspn(p, "0123456789");
    if (p[n] != '\0') {
        unsigned char c = (unsigned char)p[n];
        if (c >= 0x20 && c < 0x7f)
            snprintf(errstr, errstr_size,
                     "number has a character that is not a digit: '%c'", c);
        else
            snprintf(errstr, errstr_size,
                     "number has a character that is not a digit: byte "
                     "0x%02x",
                     c);
        return -1;
    }
    if (n == 0) {
        snprintf(errstr, errstr_size, "number is empty");
        return -1;
    }
    if (p[0] == '0') {
        snprintf(errstr, errstr_size,
                 "number starts with 0: give it with its country code");
        return -1;
    }
    if (n < 8) {
        snprintf(errstr, errstr_size,
                 "number too short (%zu digits, 8 at "
                 "least)",
                 n);
        return -1;
    }
    if (n > MSISDN_MAX) {
        snprintf(errstr, errstr_size,
                 "number too long (%zu digits, %d at "
                 "most)",
                 n, MSISDN_MAX);
        return -1;
    }
    memcpy(out, p, n + 1);
    return 0;
}

/* How many characters text_to_latin1() names in its error, at most. */
#define LATIN1_MAX_NAMED 8

int text_to_latin1(char **out, size_t *out_len, const char *utf8, size_t len,
                   char *errstr, size_t errstr_size)
{
    const unsigned char *s = (const unsigned char *)utf8;
    uint32_t bad[LATIN1_MAX_NAMED];
    size_t nbad = 0, nout = 0;
    bool more = false;

    /* First pass: validate and find what Latin-1 cannot carry. */
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        if (text_next(&cp, s, len, &i, errstr, errstr_size) != 0)
            return -1;
        nout++;
        if (cp <= 0xff)
            continue;
        bool seen = false;
        for (size_t k = 0; k < nbad; k++)
            seen = seen || bad[k] == cp;
        if (seen)
            continue;
        if (nbad < LATIN1_MAX_NAMED)
            bad[nbad++] = cp;
        else
            more = true;
    }
    if (nbad > 0) {
        int w = snprintf(errstr, errstr_size,
                         "text has characters ISO-8859-1 cannot carry:");
        for (size_t k = 0; k < nbad && w >= 0 && (size_t)w < errstr_size; k++)
            w += snprintf(errstr + w, errstr_size - (size_t)w, "%s U+%04X",
                          k == 0 ? "" : ",", (unsigned)bad[k]);
        if (more && w >= 0 && (size_t)w < errstr_size)
            snprintf(errstr + w, errstr_size - (size_t)w, ", ...");
        return -1;
    }

    char *res = malloc(nout + 1);
    if (res == NULL)
        abort();
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp = 0; /* validated above, so always set */
        i += text_utf8_decode(&cp, s + i, len - i);
        res[o++] = (char)cp;
    }
    res[o] = '\0';
    *out = res;
    *out_len = o;
    return 0;
}

char *text_from_latin1(const char *latin1, size_t len)
{
    const unsigned char *s = (const unsigned char *)latin1;
    char *res = malloc(2 * len + 1);
    size_t o = 0;

    if (res == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < 0x80) {
            res[o++] = (char)s[i];
        } else {
            res[o++] = (char)(0xc0 | (s[i] >> 6));
            res[o++] = (char)(0x80 | (s[i] & 0x3f));
        }
    }
    res[o] = '\0';
    return res;
}

bool text_only(const char *s, const char *allowed)
{
    return s[strspn(s, allowed)] == '\0';
}
