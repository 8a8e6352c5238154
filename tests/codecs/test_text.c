/* tests/codecs/test_text.c - GSM 03.38 / UCS-2 analysis, segments, MSISDN
 * normalisation and Latin-1 transcoding (codecs/text.h). */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>

#include "codecs/text.h"

/* Builds `n` copies of the UTF-8 string `unit` after `prefix`. */
static char *repeat(const char *prefix, const char *unit, size_t n,
                    const char *suffix)
{
    size_t len = strlen(prefix) + strlen(unit) * n + strlen(suffix) + 1;
    char *s = malloc(len);
    strcpy(s, prefix);
    for (size_t i = 0; i < n; i++)
        strcat(s, unit);
    strcat(s, suffix);
    return s;
}

struct seg_case {
    char prefix[16];
    char unit[16];
    size_t n;
    char suffix[64];
    enum text_coding coding;
    size_t chars;
    size_t units;
    unsigned segments;
};

ParameterizedTestParameters(text, segments)
{
    static struct seg_case cases[] = {
        {"", "", 0, "", TEXT_GSM7, 0, 0, 1},
        {"", "a", 1, " world", TEXT_GSM7, 7, 7, 1},
        {"", "a", 160, "", TEXT_GSM7, 160, 160, 1},
        {"", "a", 161, "", TEXT_GSM7, 161, 161, 2},
        {"", "a", 306, "", TEXT_GSM7, 306, 306, 2},
        {"", "a", 307, "", TEXT_GSM7, 307, 307, 3},
        /* Swedish letters are basic-table septets. */
        {"", "\xc3\xa5\xc3\xa4\xc3\xb6\xc3\x85\xc3\x84\xc3\x96", 1, "",
         TEXT_GSM7, 6, 6, 1},
        /* The euro sign and [ ] are extension characters: two septets. */
        {"", "\xe2\x82\xac", 1, "[]", TEXT_GSM7, 3, 6, 1},
        {"", "{", 80, "", TEXT_GSM7, 80, 160, 1},
        {"", "{", 81, "", TEXT_GSM7, 81, 162, 2},
        /* 152 + ESC pair + 152 = 306 septets: two parts by division, but
         * the pair cannot straddle parts 1 and 2, so it takes three. */
        {"", "a", 152,
         "\xe2\x82\xac"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         TEXT_GSM7, 192, 193, 2},
        /* Both forms of GSM code 0x09 (Ç and ç). */
        {"", "\xc3\x87\xc3\xa7", 1, "", TEXT_GSM7, 2, 2, 1},
        /* The backtick is not GSM: the whole text goes UCS-2. */
        {"", "a", 100, "`", TEXT_UCS2, 101, 101, 2},
        {"", "\xd0\xb6", 70, "", TEXT_UCS2, 70, 70, 1},
        {"", "\xd0\xb6", 71, "", TEXT_UCS2, 71, 71, 2},
        {"", "\xd0\xb6", 134, "", TEXT_UCS2, 134, 134, 2},
        {"", "\xd0\xb6", 135, "", TEXT_UCS2, 135, 135, 3},
        /* An emoji is a surrogate pair: one character, two units. */
        {"", "\xf0\x9f\x98\x80", 1, "", TEXT_UCS2, 1, 2, 1},
        {"", "\xf0\x9f\x98\x80", 35, "", TEXT_UCS2, 35, 70, 1},
        {"", "\xf0\x9f\x98\x80", 36, "", TEXT_UCS2, 36, 72, 2},
        /* 66 + pair + 66 = 134 units: two parts by division, three when
         * the pair is not split. */
        {"\xf0\x9f\x98\x80", "\xd0\xb6", 66, "", TEXT_UCS2, 67, 68, 1},
    };
    return cr_make_param_array(struct seg_case, cases,
                               sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct seg_case *c, text, segments)
{
    char *s = repeat(c->prefix, c->unit, c->n, c->suffix);
    struct text_info info;
    char errstr[128] = "";

    int ret = text_analyse(&info, s, strlen(s), errstr, sizeof(errstr));
    cr_assert(eq(int, ret, 0), "%s", errstr);
    cr_expect(eq(int, info.coding, c->coding), "coding of %zu x %s", c->n,
              c->unit);
    cr_expect(eq(sz, info.chars, c->chars));
    cr_expect(eq(sz, info.units, c->units));
    cr_expect(eq(uint, info.segments, c->segments), "segments of %zu x %s",
              c->n, c->unit);
    free(s);
}

Test(text, escape_pair_never_split)
{
    /* 152 a, then an ESC pair that does not fit part 1, then 152 a. */
    char *s = repeat("", "a", 152, "\xe2\x82\xac");
    char *t = repeat(s, "a", 152, "");
    struct text_info info;
    char errstr[128];

    int ret = text_analyse(&info, t, strlen(t), errstr, sizeof(errstr));
    cr_assert(eq(int, ret, 0));
    cr_expect(eq(sz, info.units, 306));
    cr_expect(eq(uint, info.segments, 3));
    free(s);
    free(t);
}

Test(text, surrogate_pair_never_split)
{
    char *s = repeat("", "\xd0\xb6", 66, "\xf0\x9f\x98\x80");
    char *t = repeat(s, "\xd0\xb6", 66, "");
    struct text_info info;
    char errstr[128];

    int ret = text_analyse(&info, t, strlen(t), errstr, sizeof(errstr));
    cr_assert(eq(int, ret, 0));
    cr_expect(eq(sz, info.units, 134));
    cr_expect(eq(uint, info.segments, 3));
    free(s);
    free(t);
}

struct bad_utf8 {
    char bytes[8];
    size_t len;
    char error[64];
};

ParameterizedTestParameters(text, bad_utf8)
{
    static struct bad_utf8 cases[] = {
        {"a\xff", 2, "text is not valid UTF-8 at byte 1"},
        {"\xc0\xaf", 2, "text is not valid UTF-8 at byte 0"}, /* overlong */
        {"\xed\xa0\x80", 3,
         "text is not valid UTF-8 at byte 0"}, /* surrogate */
        {"\xf4\x90\x80\x80", 4, "text is not valid UTF-8 at byte 0"},
        {"ab\xe2\x82", 4, "text is not valid UTF-8 at byte 2"}, /* cut */
        {"a\0b", 3, "text holds a NUL at byte 1"},
    };
    return cr_make_param_array(struct bad_utf8, cases,
                               sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct bad_utf8 *c, text, bad_utf8)
{
    struct text_info info;
    char errstr[128] = "";

    int ret = text_analyse(&info, c->bytes, c->len, errstr, sizeof(errstr));
    cr_assert(eq(int, ret, -1));
    cr_expect(eq(str, errstr, c->error));
}

struct msisdn_case {
    char in[32];
    int ret;
    char out[64];
};

ParameterizedTestParameters(text, msisdn)
{
    static struct msisdn_case cases[] = {
        {"46701234567", 0, "46701234567"},
        {"+46701234567", 0, "46701234567"},
        {"0046701234567", 0, "46701234567"},
        {"12345678", 0, "12345678"},
        {"123456789012345", 0, "123456789012345"},
        {"0701234567", -1,
         "number starts with 0: give it with its country code"},
        {"+4670123", -1, "number too short (7 digits, 8 at least)"},
        {"1234567890123456", -1, "number too long (16 digits, 15 at most)"},
        {"46 70 123 45 67", -1,
         "number has a character that is not a digit: ' '"},
        {"+46-70", -1, "number has a character that is not a digit: '-'"},
        {"", -1, "number is empty"},
        {"+", -1, "number is empty"},
        {"00", -1, "number is empty"},
        {"++46701234567", -1,
         "number has a character that is not a digit: '+'"},
    };
    return cr_make_param_array(struct msisdn_case, cases,
                               sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct msisdn_case *c, text, msisdn)
{
    char out[MSISDN_MAX + 1] = "";
    char errstr[128] = "";

    int ret = msisdn_normalise(out, c->in, errstr, sizeof(errstr));
    cr_assert(eq(int, ret, c->ret), "%s: %s", c->in, errstr);
    cr_expect(eq(str, ret == 0 ? out : errstr, c->out));
}

Test(text, latin1_round_trip)
{
    const char *utf8 = "Hej \xc3\xa5\xc3\xa4\xc3\xb6 \xc3\x85\xc3\x84\xc3\x96!";
    char *latin1 = NULL;
    size_t len = 0;
    char errstr[128];

    int ret = text_to_latin1(&latin1, &len, utf8, strlen(utf8), errstr,
                             sizeof(errstr));
    cr_assert(eq(int, ret, 0), "%s", errstr);
    cr_expect(eq(sz, len, 12));
    cr_expect(eq(str, latin1, "Hej \xe5\xe4\xf6 \xc5\xc4\xd6!"));
    char *back = text_from_latin1(latin1, len);
    cr_expect(eq(str, back, (char *)utf8));
    free(back);
    free(latin1);
}

Test(text, latin1_names_what_it_cannot_carry)
{
    const char *utf8 = "5 \xe2\x82\xac, \xe2\x98\x83 and 5 \xe2\x82\xac";
    char *latin1 = NULL;
    size_t len = 0;
    char errstr[128] = "";

    int ret = text_to_latin1(&latin1, &len, utf8, strlen(utf8), errstr,
                             sizeof(errstr));
    cr_assert(eq(int, ret, -1));
    cr_expect(eq(str, errstr,
                 "text has characters ISO-8859-1 cannot carry: U+20AC, "
                 "U+2603"));
    cr_expect(latin1 == NULL);
}

Test(text, only)
{
    cr_expect(text_only("Shop-1_x", "abcdefghijklmnopqrstuvwxyz"
                                    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"));
    cr_expect(not(text_only("Shop 1", "abcdefghijklmnopqrstuvwxyz"
                                      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")));
    cr_expect(text_only("", "abc"));
}
