/* tests/worker/test_log.c - log lines in both formats, read back from a
 * captured stderr. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/support/support.h"
#include "worker/log.h"

static char capture_path[] = "/tmp/kurir-log-XXXXXX";
static int saved_stderr = -1;

/* Points stderr at a temporary file until capture_end(). */
static void capture_begin(void)
{
    int fd = mkstemp(capture_path);
    cr_assert(fd >= 0);
    fflush(stderr);
    saved_stderr = dup(2);
    cr_assert(dup2(fd, 2) == 2);
    close(fd);
}

/* Restores stderr and returns what was written (malloc'd). */
static char *capture_end(void)
{
    size_t len;

    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    char *text = support_read_file(capture_path, &len);
    unlink(capture_path);
    cr_assert(ne(ptr, text, NULL));
    return text;
}

Test(log, json_lines_carry_fields)
{
    log_format = LF_JSON;
    log_level = LL_INFO;
    capture_begin();
    log_info_kv("shop", "j-1", "task: submitted %d of %d", 2, 3);
    log_info("plain \"quoted\"\nnext\x01 \xff end");
    log_debug("dropped below the level");
    log_errno(LL_WARN, 2, "open %s", "/x");
    char *text = capture_end();

    char *save = NULL;
    char *line = strtok_r(text, "\n", &save);
    json_error_t jerr;
    json_t *o = json_loads(line, 0, &jerr);
    cr_assert(ne(ptr, o, NULL), "%s: %s", line, jerr.text);
    cr_assert(eq(str, (char *)json_string_value(json_object_get(o, "level")),
                 "info"));
    cr_assert(eq(str, (char *)json_string_value(json_object_get(o, "msg")),
                 "task: submitted 2 of 3"));
    cr_assert(eq(str, (char *)json_string_value(json_object_get(o, "account")),
                 "shop"));
    cr_assert(eq(str, (char *)json_string_value(json_object_get(o, "job_id")),
                 "j-1"));
    const char *ts = json_string_value(json_object_get(o, "time"));
    cr_assert(ne(ptr, (void *)ts, NULL));
    cr_assert(eq(sz, strlen(ts), strlen("2026-08-23T10:15:02.123Z")), "%s", ts);
    json_decref(o);

    /* Quotes, newlines, control bytes and bad UTF-8 stay one valid line. */
    line = strtok_r(NULL, "\n", &save);
    o = json_loads(line, 0, &jerr);
    cr_assert(ne(ptr, o, NULL), "%s: %s", line, jerr.text);
    cr_assert(eq(str, (char *)json_string_value(json_object_get(o, "msg")),
                 "plain \"quoted\" next\x01 ? end"));
    cr_assert(eq(ptr, json_object_get(o, "account"), NULL));
    json_decref(o);

    line = strtok_r(NULL, "\n", &save);
    o = json_loads(line, 0, &jerr);
    cr_assert(ne(ptr, o, NULL), "%s: %s", line, jerr.text);
    cr_assert(eq(str, (char *)json_string_value(json_object_get(o, "level")),
                 "warn"));
    cr_assert(eq(str, (char *)json_string_value(json_object_get(o, "msg")),
                 "open /x: No such file or directory"));
    json_decref(o);
    cr_assert(eq(ptr, strtok_r(NULL, "\n", &save), NULL));
    free(text);
}

Test(log, text_lines_keep_their_shape)
{
    log_format = LF_TEXT;
    log_level = LL_INFO;
    capture_begin();
    log_info("listener: listening on %s", "127.0.0.1:1");
    log_warn_kv("shop", NULL, "poll: %s", "timeout");
    char *text = capture_end();
    char *second = strchr(text, '\n');
    cr_assert(ne(ptr, second, NULL));
    *second++ = '\0';
    cr_assert(eq(int, text[4], '-'));
    cr_assert(
        ne(ptr, strstr(text, "Z I listener: listening on 127.0.0.1:1"), NULL),
        "%s", text);
    cr_assert(ne(ptr, strstr(second, "Z W poll: timeout account=shop\n"), NULL),
              "%s", second);
    free(text);
}

Test(log, formats_parse)
{
    enum log_format f;

    cr_assert(eq(int, log_format_parse(&f, "json"), 0));
    cr_assert(eq(int, (int)f, (int)LF_JSON));
    cr_assert(eq(int, log_format_parse(&f, "text"), 0));
    cr_assert(eq(int, (int)f, (int)LF_TEXT));
    cr_assert(eq(int, log_format_parse(&f, "xml"), -1));
}

Test(log, phone_numbers_keep_three_digits)
{
    char buf[LOG_PHONE_MAX];

    cr_assert(eq(str, log_phone(buf, "+46701234567"), "+********567"));
    cr_assert(eq(str, log_phone(buf, "0701-23 45 67"), "*********5*67"));
    cr_assert(eq(str, log_phone(buf, "12"), "12"));
    /* Longer than the buffer: cut, never overrun. */
    char big[100];
    memset(big, '9', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cr_assert(eq(sz, strlen(log_phone(buf, big)), (size_t)LOG_PHONE_MAX - 1));
}
