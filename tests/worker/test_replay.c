/* tests/worker/test_replay.c - the DLQ copy keeps key and headers, and
 * `kurir replay` sends it back to its source topic byte for byte. Real
 * Kafka (KURIR_TEST_KAFKA from tests/run). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <criterion/criterion.h>

#include "tests/support/kafka.h"
#include "tests/support/support.h"
#include "tests/worker/stack.h"
#include "worker/dlq.h"

static rd_kafka_t *producer(const char *brokers)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256];
    cr_assert(rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err,
                                sizeof(err)) == RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    cr_assert(rk != NULL, "%s", err);
    return rk;
}

/* Produces value with key and headers (taken) and waits for it. */
static void produce(rd_kafka_t *rk, const char *topic, const void *key,
                    size_t key_len, const char *value, rd_kafka_headers_t *h)
{
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_len),
        RD_KAFKA_V_VALUE((void *)value, strlen(value)), RD_KAFKA_V_HEADERS(h),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    cr_assert(err == RD_KAFKA_RESP_ERR_NO_ERROR, "%s", rd_kafka_err2str(err));
    cr_assert(rd_kafka_flush(rk, 30000) == RD_KAFKA_RESP_ERR_NO_ERROR);
}

static size_t header_count(const rd_kafka_message_t *m, const char *name)
{
    rd_kafka_headers_t *h = NULL;
    size_t n = 0;
    const void *v;
    size_t size;

    if (rd_kafka_message_headers((rd_kafka_message_t *)m, &h) != 0)
        return 0;
    while (rd_kafka_header_get(h, n, name, &v, &size) == 0)
        n++;
    return n;
}

static const char job[] = "{\"id\": \"j-7\", \"account\": \"nope\", "
                          "\"to\": [\"46701234567\"], \"text\": \"hej\"}";
static const char key[] = "\x01tenant-9"; /* keys may be binary */

Test(dlq, copy_keeps_every_original_header, .timeout = 120)
{
    const char *brokers = support_kafka();
    char prefix[64], topic[96];
    tk_unique(prefix, sizeof(prefix));
    snprintf(topic, sizeof(topic), "%s.send", prefix);
    rd_kafka_t *rk = producer(brokers);
    rd_kafka_headers_t *h = rd_kafka_headers_new(3);
    rd_kafka_header_add(h, "traceparent", -1, "00-abc-01", -1);
    rd_kafka_header_add(h, "tenant", -1, "9", -1);
    rd_kafka_header_add(h, "kurir-error", -1, "an earlier one", -1);
    produce(rk, topic, key, sizeof(key) - 1, job, h);
    rd_kafka_destroy(rk);

    struct tk_reader r;
    tk_reader_open(&r, brokers, topic);
    rd_kafka_message_t *m = tk_reader_next(&r, 60000);
    cr_assert(m != NULL, "the job did not come back");
    rd_kafka_headers_t *d = dlq_headers(m, "unknown account nope");
    const void *v;
    size_t size;
    cr_assert(rd_kafka_header_get_last(d, "traceparent", &v, &size) == 0 &&
              size == 9 && memcmp(v, "00-abc-01", 9) == 0);
    cr_assert(rd_kafka_header_get_last(d, "tenant", &v, &size) == 0);
    cr_assert(rd_kafka_header_get_last(d, "kurir-error", &v, &size) == 0 &&
              size == strlen("unknown account nope"));
    size_t n_err = 0;
    while (rd_kafka_header_get(d, n_err, "kurir-error", &v, &size) == 0)
        n_err++;
    cr_assert(n_err == 1, "the earlier kurir-error stays: %zu", n_err);
    cr_assert(rd_kafka_header_get_last(d, "kurir-source-topic", &v, &size) ==
                  0 &&
              size == strlen(topic) && memcmp(v, topic, size) == 0);
    cr_assert(rd_kafka_header_get_last(d, "kurir-source-offset", &v, &size) ==
                  0 &&
              size == 1 && memcmp(v, "0", 1) == 0);
    cr_assert(rd_kafka_header_cnt(d) == 6);
    rd_kafka_headers_destroy(d);
    rd_kafka_message_destroy(m);
    tk_reader_close(&r);
}

/* Runs kurir with args and env; returns its exit status. */
static int run_kurir(char *const argv[], char *const env[], struct proc *p)
{
    int ret = support_spawn(p, argv, env, false, 0);
    cr_assert(ret == 0);
    int status = -1;
    bool done;
    POLL_UNTIL(done, waitpid(p->pid, &status, WNOHANG) == p->pid, 90000);
    if (!done) {
        support_proc_log_dump(p);
        support_stop(p, SIGKILL, 1000);
        cr_assert_fail("kurir replay did not exit");
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(dlq, replay_sends_the_original_back, .timeout = 180)
{
    const char *brokers = support_kafka();
    char prefix[64], source[96], dlq[96];
    tk_unique(prefix, sizeof(prefix));
    snprintf(source, sizeof(source), "%s.send", prefix);
    snprintf(dlq, sizeof(dlq), "%s.dlq", prefix);

    /* Two DLQ entries shaped like kurir's: the job's bytes, its key, its
     * headers, and kurir's four. Only j-7 is replayed (--id). */
    rd_kafka_t *rk = producer(brokers);
    static const char *const ids[] = {"j-6", "j-7"};
    for (int i = 0; i < 2; i++) {
        rd_kafka_headers_t *h = rd_kafka_headers_new(6);
        rd_kafka_header_add(h, "traceparent", -1, "00-abc-01", -1);
        rd_kafka_header_add(h, "kurir-error", -1, "unknown account", -1);
        rd_kafka_header_add(h, "kurir-source-topic", -1, source, -1);
        rd_kafka_header_add(h, "kurir-source-partition", -1, "0", -1);
        rd_kafka_header_add(h, "kurir-source-offset", -1, "41", -1);
        char other[128];
        snprintf(other, sizeof(other), "{\"id\": \"%s\"}", ids[i]);
        produce(rk, dlq, key, sizeof(key) - 1, i == 1 ? job : other, h);
    }
    rd_kafka_destroy(rk);

    char brokers_env[256], dlq_env[160];
    snprintf(brokers_env, sizeof(brokers_env), "KURIR_KAFKA_BROKERS=%s",
             brokers);
    snprintf(dlq_env, sizeof(dlq_env), "KURIR_TOPIC_DLQ=%s", dlq);
    char *env[] = {brokers_env, dlq_env, NULL};
    char *argv[] = {(char *)support_env("KURIR_BIN"), "replay", "--id", "j-7",
                    NULL};
    struct proc p;
    int status = run_kurir(argv, env, &p);
    if (status != 0)
        support_proc_log_dump(&p);
    cr_assert(status == 0, "kurir replay exited %d", status);
    cr_assert(support_proc_log_has(&p, "replayed 1 entries"));

    struct tk_reader r;
    tk_reader_open(&r, brokers, source);
    rd_kafka_message_t *m = tk_reader_next(&r, 60000);
    cr_assert(m != NULL, "nothing arrived on %s", source);
    cr_assert(m->len == strlen(job) && memcmp(m->payload, job, m->len) == 0,
              "the value changed");
    cr_assert(m->key_len == sizeof(key) - 1 &&
                  memcmp(m->key, key, m->key_len) == 0,
              "the key changed");
    char *tp = tk_header(m, "traceparent");
    cr_assert(tp != NULL && strcmp(tp, "00-abc-01") == 0);
    free(tp);
    cr_assert(header_count(m, "kurir-error") == 0);
    cr_assert(header_count(m, "kurir-source-topic") == 0);
    rd_kafka_message_destroy(m);
    /* j-6 was not chosen. */
    m = tk_reader_next(&r, 2000);
    cr_assert(m == NULL, "an entry not chosen was replayed");
    tk_reader_close(&r);
}

Test(dlq, replayed_entry_is_then_sent, .timeout = 240)
{
    struct stack e;
    stack_start(&e, support_redis());
    struct tk_reader status;
    tk_reader_open(&status, e.brokers, e.topic_status);

    /* The DLQ entry of a job that named an account since added: "shop". */
    static const char fixed[] =
        "{\"id\": \"replay-1\", \"account\": \"shop\", \"to\": "
        "[\"46701234567\"], \"text\": \"replayed-and-sent\"}";
    rd_kafka_t *rk = producer(e.brokers);
    rd_kafka_headers_t *h = rd_kafka_headers_new(4);
    rd_kafka_header_add(h, "kurir-error", -1, "unknown account shop", -1);
    rd_kafka_header_add(h, "kurir-source-topic", -1, e.topic_send, -1);
    rd_kafka_header_add(h, "kurir-source-partition", -1, "0", -1);
    rd_kafka_header_add(h, "kurir-source-offset", -1, "0", -1);
    produce(rk, e.topic_dlq, "replay-1", 8, fixed, h);
    rd_kafka_destroy(rk);

    char brokers_env[256], dlq_env[160];
    snprintf(brokers_env, sizeof(brokers_env), "KURIR_KAFKA_BROKERS=%s",
             e.brokers);
    snprintf(dlq_env, sizeof(dlq_env), "KURIR_TOPIC_DLQ=%s", e.topic_dlq);
    char *env[] = {brokers_env, dlq_env, NULL};
    char *argv[] = {(char *)support_env("KURIR_BIN"), "replay", NULL};
    struct proc p;
    int st = run_kurir(argv, env, &p);
    cr_assert(st == 0, "kurir replay exited %d", st);

    static const char *const want[] = {"job_id", "replay-1", "state",
                                       "submitted", NULL};
    json_t *ev = tk_reader_wait_json(&status, want, 90000, NULL);
    if (ev == NULL)
        support_proc_log_dump(&e.kurir);
    cr_assert(ev != NULL, "the replayed job was not sent");
    json_decref(ev);
    cr_assert(stack_standin_count(&e, "replayed-and-sent") == 1);
    tk_reader_close(&status);
    stack_stop(&e);
}
