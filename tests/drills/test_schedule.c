/* tests/drills/test_schedule.c - schedule precision: sends due over a few
 * seconds, each `send_at` to the millisecond; every one must arrive, and the
 * lateness between `send_at` and the provider's request (the stand-in's
 * record) is printed, p50 and p99. CI: 300 sends over 3 s, two replicas
 * (ASan: the figure means little). tests/bench/schedule runs the benchmark
 * size, 50,000 over 30 s on a release build (KURIR_DRILL_LONG=1); goal
 * p99 <= 100 ms. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "tests/drills/drill.h"

static struct drill d;

static void teardown(void)
{
    drill_stop(&d);
}

TestSuite(schedule, .fini = teardown, .timeout = 300);

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

Test(schedule, sends_arrive_when_due)
{
    struct drill_opts o = {.replicas = 2};
    size_t n = drill_size(300, 50000);
    int64_t spread = drill_long() ? 30000 : 3000;
    /* Time to produce them all before the first is due. */
    int64_t lead = drill_long() ? 20000 : 5000;

    drill_start(&d,
                drill_long() ? "schedule 50,000 over 30 s"
                             : "schedule 300 over 3 s",
                &o);
    int64_t start = wall_ms() + lead;
    json_t *due = json_object(); /* recipient -> due ms */
    for (size_t j = 0; j < n; j++) {
        char id[128], num[32], json[512], at[48];
        int64_t when = start + (int64_t)j * spread / (int64_t)n;
        drill_rfc3339_ms(at, sizeof(at), when);
        snprintf(id, sizeof(id), "%s-due-%zu", d.s.uniq, j);
        snprintf(num, sizeof(num), "4679%07zu", j);
        snprintf(json, sizeof(json),
                 "{\"id\": \"%s\", \"account\": \"bulk-jojka\", \"to\": "
                 "[\"%s\"], \"text\": \"due %zu\", \"send_at\": \"%s\"}",
                 id, num, j, at);
        char *one[] = {num};
        drill_job_async(&d, d.s.topic_send, id, json, one, 1);
        json_object_set_new(due, num, json_integer(when));
    }
    drill_flush(&d);
    int64_t produced = wall_ms();
    cr_expect(lt(i64, produced, start), "producing took past the first due "
                                        "time: the figure is meaningless");
    drill_fault_over(&d);
    drill_collect(&d, (int)(lead + spread + 60000));

    json_t *msgs = drill_messages(&d, "bulk-jojka");
    size_t nm = json_array_size(msgs), k = 0;
    int64_t *late = calloc(nm + 1, sizeof(*late));
    size_t early = 0;
    for (size_t i = 0; i < nm; i++) {
        json_t *m = json_array_get(msgs, i);
        json_t *w = json_object_get(
            due, json_string_value(json_object_get(m, "recipient")));
        if (w == NULL)
            continue;
        int64_t l = json_integer_value(json_object_get(m, "created_ms")) -
                    json_integer_value(w);
        if (l < 0)
            early++;
        late[k++] = l;
    }
    json_decref(msgs);
    json_decref(due);
    qsort(late, k, sizeof(*late), cmp_i64);
    char note[192];
    snprintf(note, sizeof(note),
             "%zu of %zu at the provider; lateness p50 %lld ms, p99 %lld ms, "
             "max %lld ms; %zu early",
             k, n, k ? (long long)late[k / 2] : -1LL,
             k ? (long long)late[k * 99 / 100] : -1LL,
             k ? (long long)late[k - 1] : -1LL, early);
    free(late);
    fprintf(stderr, "schedule precision: %s\n", note);
    drill_finish(&d, 10000, note);
    cr_expect(eq(sz, k, n), "%s", note);
    cr_expect(eq(sz, early, 0), "sent before send_at: %s", note);
}
