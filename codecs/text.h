/* codecs/text.h - the rules every codec shares: numbers, text, segments.
 *
 * GSM 03.38 detection (basic table, extension characters counted as two
 * septets and never split across segments), UCS-2 otherwise (UTF-16 code
 * units, never splitting a surrogate pair), segment counts (160/153,
 * 70/67), MSISDN normalisation and Latin-1 transcoding. Pure. */
#ifndef CODECS_TEXT_H
#define CODECS_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum text_coding {
    TEXT_GSM7,
    TEXT_UCS2,
};

struct text_info {
    enum text_coding coding;
    size_t chars;      /* Unicode code points */
    size_t units;      /* GSM-7 septets (extension = 2) or UTF-16 units */
    unsigned segments; /* SMS parts needed; 1 for empty text */
};

#define MSISDN_MAX 15

/* How one provider bills a text: the units one SMS holds and the units each
 * part of a long SMS holds, per coding, and what a newline costs. A codec
 * keeps its rule in its table (struct codec.segments); codec_segments()
 * applies it. `chars` counts every character as one unit whatever the
 * coding (InTime bills "tecken", characters, not septets), so only the
 * gsm_* budgets apply then. */
struct segment_rule {
    unsigned gsm_single;   /* GSM-7 units in one SMS */
    unsigned gsm_part;     /* ... in each part of a long one */
    unsigned ucs_single;   /* UTF-16 units in one SMS */
    unsigned ucs_part;     /* ... in each part of a long one */
    unsigned newline_cost; /* units one LF costs; 0 for the coding's own */
    bool chars;            /* count characters, not septets/units */
};

/* 3GPP TS 23.040: 160/153 GSM-7 septets, 70/67 UTF-16 units. */
extern const struct segment_rule segment_rule_gsm;

/* Decodes one UTF-8 sequence at s[0..len) (len >= 1). Returns its length in
 * bytes and sets *cp, or 0 when it is not well-formed UTF-8: overlong
 * forms, surrogates and code points above U+10FFFF are refused. */
size_t text_utf8_decode(uint32_t *cp, const unsigned char *s, size_t len);

/* Returns the SMS parts `rule` bills for UTF-8 text (1 for empty text),
 * packing characters greedily so that no escape pair, surrogate pair or
 * multi-unit newline is split; 0 when the bytes are not valid UTF-8 or hold
 * a NUL (job_parse() refuses those). */
unsigned text_segments(const struct segment_rule *rule, const char *utf8,
                       size_t len);

/* Returns true when `text` is one of `words` alone: compared without
 * regard to ASCII case, with whitespace (space, tab, CR, LF) around it
 * allowed and nothing else. `words` is NULL-ended; NULL means the default
 * list text_stop_words. */
bool text_is_stop_word(const char *text, const char *const *words);

/* STOP, STOPP, AVREGISTRERA, NULL-ended. */
extern const char *const text_stop_words[];

/* Analyses UTF-8 text: which coding it needs, its length in that coding's
 * units and the number of SMS segments. Returns 0, or -1 with errstr set
 * when the bytes are not valid UTF-8 (or hold a NUL). */
int text_analyse(struct text_info *out, const char *utf8, size_t len,
                 char *errstr, size_t errstr_size);

/* Normalises a phone number to MSISDN digits: a leading "+" or "00" is
 * removed; what remains must be 8 to 15 digits not starting with 0. Writes
 * it NUL-terminated to out. Returns 0, or -1 with errstr naming the reason. */
int msisdn_normalise(char out[MSISDN_MAX + 1], const char *in, char *errstr,
                     size_t errstr_size);

/* Converts UTF-8 to ISO-8859-1 bytes. Returns 0 and sets *out (malloc'd,
 * NUL-terminated, caller frees) and *out_len. On error returns -1 with errstr
 * naming the characters ISO-8859-1 cannot carry (as U+XXXX), and sets
 * nothing. */
int text_to_latin1(char **out, size_t *out_len, const char *utf8, size_t len,
                   char *errstr, size_t errstr_size);

/* Converts ISO-8859-1 bytes to UTF-8. Returns a malloc'd NUL-terminated
 * string the caller frees (NULL only when allocation fails). */
char *text_from_latin1(const char *latin1, size_t len);

/* Returns true when every byte of the NUL-terminated string s is in the
 * set `allowed` (a NUL-terminated list of bytes). */
bool text_only(const char *s, const char *allowed);

#endif /* CODECS_TEXT_H */
