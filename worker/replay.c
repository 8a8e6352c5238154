/* worker/replay.c - `kurir replay`. See replay.h. */
#include "worker/replay.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "worker/dlq.h"
#include "worker/xalloc.h"

#define REPLAY_MAX_PARTITIONS 1024

static int replay_parse_i64(int64_t *out, const char *s, int64_t min)
{
    char *end;

    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min)
        return -1;
    *out = v;
    return 0;
}

int replay_parse_args(struct replay_opts *o, int argc, char **argv,
                      char *errstr, size_t errstr_size)
{
    memset(o, 0, sizeof(*o));
    o->partition = -1;
    o->from_offset = -1;
    o->to_offset = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t n;
        if (strcmp(a, "--dry-run") == 0) {
            o->dry_run = 1;
            continue;
        }
        if (v == NULL) {
            snprintf(errstr, errstr_size, "replay: unknown argument %s", a);
            return -1;
        }
        i++;
        if (strcmp(a, "--id") == 0) {
            o->id = v;
        } else if (strcmp(a, "--partition") == 0 &&
                   replay_parse_i64(&n, v, 0) == 0 && n < INT32_MAX) {
            o->partition = (int32_t)n;
        } else if (strcmp(a, "--from-offset") == 0 &&
                   replay_parse_i64(&n, v, 0) == 0) {
            o->from_offset = n;
        } else if (strcmp(a, "--to-offset") == 0 &&
                   replay_parse_i64(&n, v, 0) == 0) {
            o->to_offset = n;
        } else if (strcmp(a, "--max") == 0 && replay_parse_i64(&n, v, 1) == 0) {
            o->max = (long)n;
        } else {
            snprintf(errstr, errstr_size, "replay: bad argument %s %s", a, v);
            return -1;
        }
    }
    return 0;
}

static rd_kafka_conf_t *replay_conf(const struct config *cfg, bool consumer,
                                    char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256];

    struct {
        const char *name, *value;
    } base[] = {
        {"bootstrap.servers", cfg->kafka_brokers},
        {consumer ? "group.id" : "client.id",
         consumer ? "kurir-replay" : "kurir-replay"},
        {consumer ? "enable.auto.commit" : "enable.idempotence",
         consumer ? "false" : "true"},
    };
    if (consumer && rd_kafka_conf_set(conf, "enable.partition.eof", "true", err,
                                      sizeof(err)) != RD_KAFKA_CONF_OK)
        goto fail;
    for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
        if (rd_kafka_conf_set(conf, base[i].name, base[i].value, err,
                              sizeof(err)) != RD_KAFKA_CONF_OK)
            goto fail;
    for (size_t i = 0; i < cfg->nkafka_props; i++)
        if (rd_kafka_conf_set(conf, cfg->kafka_props[i].name,
                              cfg->kafka_props[i].value, err,
                              sizeof(err)) != RD_KAFKA_CONF_OK)
            goto fail;
    return conf;

fail:
    snprintf(errstr, errstr_size, "kafka: %s", err);
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* Returns header `name` of h as a malloc'd string, or NULL. */
static char *replay_header(rd_kafka_headers_t *h, const char *name)
{
    const void *v;
    size_t size;

    if (h == NULL ||
        rd_kafka_header_get_last(h, name, &v, &size) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        v == NULL)
        return NULL;
    char *s = xmalloc(size + 1);
    memcpy(s, v, size);
    s[size] = '\0';
    return s;
}

/* True when the entry is job `id`: its key, or its JSON "id". */
static bool replay_is_job(const rd_kafka_message_t *m, const char *id)
{
    if (m->key != NULL && m->key_len == strlen(id) &&
        memcmp(m->key, id, m->key_len) == 0)
        return true;
    json_t *doc = json_loadb(m->payload, m->len, 0, NULL);
    const char *got = json_string_value(json_object_get(doc, "id"));
    bool same = got != NULL && strcmp(got, id) == 0;
    json_decref(doc);
    return same;
}

struct replay_part {
    int32_t id;
    int64_t end; /* stop before this offset */
    bool done;
};

/* Sends one entry back. Returns 0, or -1 (printed). */
static int replay_one(rd_kafka_t *producer, rd_kafka_message_t *m, FILE *out,
                      bool dry_run)
{
    rd_kafka_headers_t *h = NULL;
    int ret = -1;

    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR)
        h = NULL;
    char *topic = replay_header(h, "kurir-source-topic");
    char *error = replay_header(h, "kurir-error");
    fprintf(out, "%s [%d] @%lld -> %s: %s%s\n", rd_kafka_topic_name(m->rkt),
            (int)m->partition, (long long)m->offset, topic ? topic : "?",
            dry_run ? "would replay" : "replaying",
            error ? "" : " (no kurir-error header)");
    if (topic == NULL) {
        fprintf(out, "  skipped: no kurir-source-topic header\n");
        goto out;
    }
    if (dry_run) {
        ret = 0;
        goto out;
    }
    size_t n = h != NULL ? rd_kafka_header_cnt(h) : 0;
    rd_kafka_headers_t *copy = rd_kafka_headers_new(n);
    for (size_t i = 0; i < n; i++) {
        const char *name;
        const void *value;
        size_t size;
        if (rd_kafka_header_get_all(h, i, &name, &value, &size) !=
            RD_KAFKA_RESP_ERR_NO_ERROR)
            break;
        if (!dlq_is_kurir_header(name))
            rd_kafka_header_add(copy, name, -1, value,
                                value ? (ssize_t)size : 0);
    }
    rd_kafka_resp_err_t err = rd_kafka_producev(
        producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(m->key, m->key_len),
        RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_HEADERS(copy),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_headers_destroy(copy);
        fprintf(out, "  not sent: %s\n", rd_kafka_err2str(err));
        goto out;
    }
    ret = 0;

out:
    free(topic);
    free(error);
    return ret;
}

static int replay_failed; /* delivery reports that failed */

static void replay_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m,
                         void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "kurir: replay: delivery to %s failed: %s\n",
                rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
        replay_failed++;
    }
}

int replay_run(const struct config *cfg, const struct replay_opts *o, FILE *out,
               char *errstr, size_t errstr_size)
{
    rd_kafka_t *consumer = NULL, *producer = NULL;
    rd_kafka_topic_partition_list_t *assign = NULL;
    const rd_kafka_metadata_t *md = NULL;
    struct replay_part *parts = NULL;
    size_t nparts = 0, chosen = 0, failed = 0;
    char err[256];
    int ret = -1;

    rd_kafka_conf_t *conf = replay_conf(cfg, true, errstr, errstr_size);
    if (conf == NULL)
        goto out;
    consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (consumer == NULL) {
        snprintf(errstr, errstr_size, "kafka: %s", err);
        goto out;
    }
    conf = replay_conf(cfg, false, errstr, errstr_size);
    if (conf == NULL)
        goto out;
    rd_kafka_conf_set_dr_msg_cb(conf, replay_dr_cb);
    producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (producer == NULL) {
        snprintf(errstr, errstr_size, "kafka: %s", err);
        goto out;
    }

    rd_kafka_topic_t *rkt = rd_kafka_topic_new(consumer, cfg->topic_dlq, NULL);
    rd_kafka_resp_err_t kerr = rd_kafka_metadata(consumer, 0, rkt, &md, 10000);
    rd_kafka_topic_destroy(rkt);
    if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1 ||
        md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errstr, errstr_size, "kafka: cannot read topic %s: %s",
                 cfg->topic_dlq,
                 rd_kafka_err2str(kerr != RD_KAFKA_RESP_ERR_NO_ERROR
                                      ? kerr
                                      : md->topics[0].err));
        goto out;
    }
    const rd_kafka_metadata_topic_t *t = &md->topics[0];
    parts = xcalloc((size_t)t->partition_cnt + 1, sizeof(*parts));
    assign = rd_kafka_topic_partition_list_new(t->partition_cnt);
    for (int i = 0; i < t->partition_cnt; i++) {
        int32_t p = t->partitions[i].id;
        if (o->partition >= 0 && p != o->partition)
            continue;
        int64_t lo, hi;
        kerr = rd_kafka_query_watermark_offsets(consumer, cfg->topic_dlq, p,
                                                &lo, &hi, 10000);
        if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(errstr, errstr_size, "kafka: %s [%d]: %s", cfg->topic_dlq,
                     (int)p, rd_kafka_err2str(kerr));
            goto out;
        }
        int64_t start = o->from_offset >= 0 ? o->from_offset : lo;
        int64_t end =
            o->to_offset >= 0 && o->to_offset < hi ? o->to_offset : hi;
        if (start < lo)
            start = lo;
        if (start >= end)
            continue;
        parts[nparts].id = p;
        parts[nparts].end = end;
        nparts++;
        rd_kafka_topic_partition_list_add(assign, cfg->topic_dlq, p)->offset =
            start;
    }
    if (o->partition >= 0 && nparts == 0 && assign->cnt == 0)
        fprintf(out, "nothing to replay in %s\n", cfg->topic_dlq);
    if (nparts > 0) {
        kerr = rd_kafka_assign(consumer, assign);
        if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(errstr, errstr_size, "kafka: assign: %s",
                     rd_kafka_err2str(kerr));
            goto out;
        }
    }
    size_t open = nparts;
    while (open > 0 && (o->max == 0 || (long)chosen < o->max)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(consumer, 10000);
        if (m == NULL) {
            snprintf(errstr, errstr_size,
                     "kafka: no message from %s for 10 s before its end",
                     cfg->topic_dlq);
            goto out;
        }
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            /* The end (gaps such as transaction markers may hide the
             * last offset): the partition is done. */
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                for (size_t i = 0; i < nparts; i++)
                    if (parts[i].id == m->partition && !parts[i].done) {
                        parts[i].done = true;
                        open--;
                    }
            } else {
                fprintf(stderr, "kurir: replay: %s\n",
                        rd_kafka_message_errstr(m));
            }
            rd_kafka_message_destroy(m);
            continue;
        }
        struct replay_part *rp = NULL;
        for (size_t i = 0; i < nparts; i++)
            if (parts[i].id == m->partition)
                rp = &parts[i];
        if (rp == NULL || rp->done || m->offset >= rp->end) {
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->offset + 1 >= rp->end) {
            rp->done = true;
            open--;
        }
        if (o->id == NULL || replay_is_job(m, o->id)) {
            chosen++;
            if (replay_one(producer, m, out, o->dry_run != 0) != 0)
                failed++;
        }
        rd_kafka_message_destroy(m);
        rd_kafka_poll(producer, 0);
    }
    kerr = rd_kafka_flush(producer, 30000);
    if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(out, "not every copy reached Kafka: %s\n",
                rd_kafka_err2str(kerr));
        failed++;
    }
    failed += (size_t)replay_failed;
    fprintf(out, "%s %zu entries of %s, %zu failed\n",
            o->dry_run ? "would replay" : "replayed", chosen - failed,
            cfg->topic_dlq, failed);
    ret = failed > 0 ? 1 : 0;

out:
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    if (assign != NULL)
        rd_kafka_topic_partition_list_destroy(assign);
    free(parts);
    if (consumer != NULL) {
        rd_kafka_consumer_close(consumer);
        rd_kafka_destroy(consumer);
    }
    if (producer != NULL)
        rd_kafka_destroy(producer);
    return ret;
}
