/* worker/kafka.c - job consumer and event producer (librdkafka). */
#include "worker/kafka.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "worker/clock.h"
#include "worker/log.h"
#include "worker/metrics.h"
#include "worker/offsets.h"
#include "worker/xalloc.h"

/* A refused event waiting to be produced again: a copy of what the
 * delivery report carried. */
struct kafka_retry {
    enum kafka_topic topic;
    char *key;
    size_t key_len;
    char *value;
    size_t len;
    rd_kafka_headers_t *headers; /* owned; NULL when none */
    void *msg_opaque;            /* the producer's owner, unchanged */
    int64_t due_ms;              /* monotonic */
    struct kafka_retry *next;
};

/* Backoff of refused events: doubling from the first to the last. */
#define KAFKA_RETRY_MIN_MS 250
#define KAFKA_RETRY_MAX_MS 30000

struct kafka {
    rd_kafka_t *consumer;
    rd_kafka_t *producer;
    rd_kafka_queue_t *cqueue;                /* the consumer's single queue */
    rd_kafka_queue_t *pqueue;                /* the producer's main queue */
    rd_kafka_topic_t *topics[KAFKA_NTOPICS]; /* by enum kafka_topic */
    int pipefd[2]; /* wake-up pipe: [0] read, [1] write */
    struct offsets *offsets;
    kafka_delivered_fn *delivered;
    void *opaque;
    struct metrics *metrics; /* NULL until kafka_set_metrics */
    bool fatal;
    bool closed;
    bool paused;                     /* every assigned partition is paused */
    bool brokers_down;               /* error_cb said all brokers are down */
    bool ready;                      /* the last readiness check's answer */
    int64_t next_ready_ms;           /* when to check readiness again */
    struct kafka_retry *retries;     /* refused events, oldest first */
    struct kafka_retry **retry_tail; /* where the next one goes */
    int retry_backoff_ms;            /* 0 after a delivery went through */
    rd_kafka_resp_err_t last_err;    /* of the last failed produce */
    uint64_t refused_unlogged;       /* refusals since the last line */
    int64_t refused_logged_ms;       /* when the last line was */
};

/* Called from librdkafka's threads: must only log. */
static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                         const char *buf)
{
    enum log_level ll = level <= LOG_ERR       ? LL_ERROR
                        : level <= LOG_WARNING ? LL_WARN
                        : level <= LOG_INFO    ? LL_INFO
                                               : LL_DEBUG;
    if (ll >= log_level)
        log_msg(ll, "kafka: %s %s: %s", rd_kafka_name(rk), fac, buf);
}

/* librdkafka's statistics (statistics.interval.ms): consumer lag and
 * broker errors for /metrics. Served on the loop thread. */
static int kafka_stats_cb(rd_kafka_t *rk, char *json, size_t json_len,
                          void *opaque)
{
    struct kafka *k = opaque;

    (void)rk;
    (void)json_len;
    if (k->metrics != NULL)
        metrics_read_rdkafka_stats(k->metrics, json);
    return 0; /* librdkafka frees json */
}

/* Called from the thread serving the client's queue: the loop thread. */
static void kafka_error_cb(rd_kafka_t *rk, int err, const char *reason,
                           void *opaque)
{
    struct kafka *k = opaque;

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[512];
        rd_kafka_fatal_error(rk, buf, sizeof(buf));
        log_error("kafka: fatal: %s", buf);
        k->fatal = true;
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        /* Not ready until a readiness check reaches a broker again. */
        k->brokers_down = true;
        k->ready = false;
    }
    if (k->metrics != NULL)
        metrics_count(k->metrics, M_KAFKA_ERRORS,
                      ML(rd_kafka_err2name((rd_kafka_resp_err_t)err)), 1);
    /* Brokers going away and coming back is routine; librdkafka retries. */
    log_warn("kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err),
             reason);
}

bool kafka_err_is_permanent(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
           err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE ||
           err == RD_KAFKA_RESP_ERR_INVALID_RECORD ||
           err == RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE ||
           err == RD_KAFKA_RESP_ERR_INVALID_MSG;
}

/* Keeps a refused event to produce again after the backoff. */
static void kafka_retry_later(struct kafka *k, const rd_kafka_message_t *rkm)
{
    struct kafka_retry *r = xcalloc(1, sizeof(*r));
    rd_kafka_headers_t *hdrs = NULL;

    for (int i = 0; i < KAFKA_NTOPICS; i++)
        if (k->topics[i] == rkm->rkt)
            r->topic = (enum kafka_topic)i;
    r->key_len = rkm->key_len;
    r->key = xmalloc(rkm->key_len + 1);
    if (rkm->key_len > 0)
        memcpy(r->key, rkm->key, rkm->key_len);
    r->len = rkm->len;
    r->value = xmalloc(rkm->len + 1);
    if (rkm->len > 0)
        memcpy(r->value, rkm->payload, rkm->len);
    if (rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR)
        r->headers = rd_kafka_headers_copy(hdrs);
    r->msg_opaque = rkm->_private;
    if (k->retry_backoff_ms == 0)
        k->retry_backoff_ms = KAFKA_RETRY_MIN_MS;
    else if (k->retry_backoff_ms < KAFKA_RETRY_MAX_MS / 2)
        k->retry_backoff_ms *= 2;
    else
        k->retry_backoff_ms = KAFKA_RETRY_MAX_MS;
    int64_t now = worker_now_ms();
    r->due_ms = now + k->retry_backoff_ms;
    *k->retry_tail = r;
    k->retry_tail = &r->next;
    if (k->metrics != NULL)
        metrics_count(k->metrics, M_EVENT_RETRIES,
                      ML(rd_kafka_topic_name(rkm->rkt)), 1);
    /* One line a second at most, however many events are refused. */
    k->refused_unlogged++;
    if (now - k->refused_logged_ms >= 1000) {
        log_error("kafka: %llu event(s) refused, the last to %s: %s; "
                  "producing them again in %d ms (their jobs wait, offsets "
                  "unstored)",
                  (unsigned long long)k->refused_unlogged,
                  rd_kafka_topic_name(rkm->rkt), rd_kafka_err2str(rkm->err),
                  k->retry_backoff_ms);
        k->refused_unlogged = 0;
        k->refused_logged_ms = now;
    }
}

static void kafka_retry_free(struct kafka_retry *r)
{
    if (r->headers != NULL)
        rd_kafka_headers_destroy(r->headers);
    free(r->key);
    free(r->value);
    free(r);
}

/* Produces the refused events whose backoff has run out, oldest first. */
static void kafka_retry_due(struct kafka *k)
{
    int64_t now = worker_now_ms();

    while (k->retries != NULL && k->retries->due_ms <= now) {
        struct kafka_retry *r = k->retries;
        rd_kafka_resp_err_t err =
            rd_kafka_producev(k->producer, RD_KAFKA_V_RKT(k->topics[r->topic]),
                              RD_KAFKA_V_KEY(r->key, r->key_len),
                              RD_KAFKA_V_VALUE(r->value, r->len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_HEADERS(r->headers),
                              RD_KAFKA_V_OPAQUE(r->msg_opaque), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            /* The local queue is full: the next turn tries again. */
            r->due_ms = now + KAFKA_RETRY_MIN_MS;
            return;
        }
        r->headers = NULL; /* Now owned by the producer. */
        k->retries = r->next;
        if (k->retries == NULL)
            k->retry_tail = &k->retries;
        kafka_retry_free(r);
    }
}

/* A refused event is produced again with backoff until Kafka takes it (an
 * ACL, a topic being created or a policy fixed: the job then ends and its
 * offset moves by itself); only a refusal no retry can change (the event
 * is too large) reaches the owner, with its error. */
static void kafka_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                        void *opaque)
{
    struct kafka *k = opaque;

    (void)rk;
    if (rkm->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        k->retry_backoff_ms = 0;
    } else if (!kafka_err_is_permanent(rkm->err) && !k->fatal) {
        kafka_retry_later(k, rkm);
        return;
    } else {
        log_error("kafka: event to %s refused for good: %s",
                  rd_kafka_topic_name(rkm->rkt), rd_kafka_err2str(rkm->err));
    }
    if (k->delivered != NULL)
        k->delivered(rkm->_private, rkm->err, k->opaque);
}

static void kafka_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                               rd_kafka_topic_partition_list_t *parts,
                               void *opaque)
{
    struct kafka *k = opaque;
    bool cooperative =
        strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int i = 0; i < parts->cnt; i++)
            log_info("kafka: assigned topic=%s partition=%d",
                     parts->elems[i].topic, parts->elems[i].partition);
        if (cooperative) {
            rd_kafka_error_t *error = rd_kafka_incremental_assign(rk, parts);
            if (error != NULL) {
                log_error("kafka: assign: %s", rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
            }
        } else {
            rd_kafka_assign(rk, parts);
        }
        /* An assignment starts unpaused: a consumer with no room pauses
         * what it was just given too. */
        if (k->paused) {
            rd_kafka_resp_err_t perr = rd_kafka_pause_partitions(rk, parts);
            if (perr != RD_KAFKA_RESP_ERR_NO_ERROR)
                log_warn("kafka: pause assigned: %s", rd_kafka_err2str(perr));
        }
        return;
    }
    /* Revoked (or lost): offsets already stored are committed by the next
     * auto-commit or the close; jobs still running for these partitions end
     * without storing, and the new owner redelivers them. */
    for (int i = 0; i < parts->cnt; i++) {
        log_info("kafka: revoked topic=%s partition=%d", parts->elems[i].topic,
                 parts->elems[i].partition);
        offsets_forget(k->offsets, parts->elems[i].topic,
                       parts->elems[i].partition);
    }
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
        rd_kafka_commit(rk, NULL, 0);
    if (cooperative) {
        rd_kafka_error_t *error = rd_kafka_incremental_unassign(rk, parts);
        if (error != NULL)
            rd_kafka_error_destroy(error);
    } else {
        rd_kafka_assign(rk, NULL);
    }
}

static int kafka_conf_set(rd_kafka_conf_t *conf, const char *name,
                          const char *value, char *errstr, size_t errstr_size)
{
    char err[256];

    if (rd_kafka_conf_set(conf, name, value, err, sizeof(err)) !=
        RD_KAFKA_CONF_OK) {
        snprintf(errstr, errstr_size, "kafka property %s: %s", name, err);
        return -1;
    }
    return 0;
}

/* Builds a client configuration: our defaults, then the operator's
 * KURIR_KAFKA_PROP_* overrides. */
static rd_kafka_conf_t *kafka_conf(struct kafka *k, const struct config *cfg,
                                   const char *const *defaults, char *errstr,
                                   size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    if (kafka_conf_set(conf, "bootstrap.servers", cfg->kafka_brokers, errstr,
                       errstr_size) != 0)
        goto fail;
    for (size_t i = 0; defaults[i] != NULL; i += 2)
        if (kafka_conf_set(conf, defaults[i], defaults[i + 1], errstr,
                           errstr_size) != 0)
            goto fail;
    for (size_t i = 0; i < cfg->nkafka_props; i++)
        if (kafka_conf_set(conf, cfg->kafka_props[i].name,
                           cfg->kafka_props[i].value, errstr, errstr_size) != 0)
            goto fail;
    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
    rd_kafka_conf_set_stats_cb(conf, kafka_stats_cb);
    rd_kafka_conf_set_error_cb(conf, kafka_error_cb);
    rd_kafka_conf_set_opaque(conf, k);
    return conf;

fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

int kafka_new(struct kafka **out, const struct config *cfg,
              kafka_delivered_fn *delivered, void *opaque, char *errstr,
              size_t errstr_size)
{
    static const char *const consumer_defaults[] = {
        "enable.auto.offset.store",
        "false",
        "enable.auto.commit",
        "true",
        "auto.commit.interval.ms",
        "1000",
        "auto.offset.reset",
        "earliest",
        "allow.auto.create.topics",
        "true",
        /* Range assigns each topic's partitions on their own, so every
         * replica gets its share of each topic; cooperative-sticky balances
         * only the total over all topics, and one replica could own every
         * send partition while another idles. */
        "partition.assignment.strategy",
        "range",
        "enable.partition.eof",
        "false",
        "statistics.interval.ms",
        "15000",
        /* A job topic created after start-up is seen within seconds. */
        "topic.metadata.refresh.interval.ms",
        "2000",
        /* The consumer's prefetch, over all its partitions (librdkafka
         * counts the one consumer queue they feed): 20,000 jobs and at
         * most 16 MiB. It must hold a second of work: once it is over
         * either bound, librdkafka before 2.2 (Debian's is 2.0.2)
         * fetches again only up to a second later, however soon the loop
         * has taken it (2.2 made that wait fetch.queue.backoff.ms). At
         * 2,000 the loop starved for ~0.5 s of every 1.5 s and drained
         * 13,500 msg/s; at 20,000, 15,900-19,300 (tests/bench/compare
         * 100000). With librdkafka's 100,000, a backlog of small jobs was
         * prefetched whole: 58 MiB of a replica's 73 MiB at start-up. */
        "queued.min.messages",
        "20000",
        /* Fetched in pieces of 256 KiB a partition (librdkafka's default is
         * 1 MiB): a fetched buffer lives until the last job in it is done,
         * and with 1 MiB pieces a replica's peak RSS was 64-66 MiB, with
         * these 57 (the same drain). A larger job still comes whole: the
         * broker returns at least one message. */
        "fetch.message.max.bytes",
        "262144",
        "queued.max.messages.kbytes",
        "16384",
        "client.id",
        "kurir",
        NULL,
    };
    static const char *const producer_defaults[] = {
        "enable.idempotence",
        "true",
        "acks",
        "all",
        /* Status events wait up to 100 ms to leave in large batches: the
         * broker's CPU goes with the number of requests, not of events
         * (tests/bench/compare: a third of its CPU per message at 10 ms).
         * A unit waiting only for its acknowledgements gives up its
         * KURIR_MAX_IN_FLIGHT place meanwhile. */
        "linger.ms",
        "100",
        "batch.num.messages",
        "10000",
        "message.timeout.ms",
        "0",
        "compression.type",
        "lz4",
        /* Back to a returning broker within a second (librdkafka waits up
         * to 10 s): a job redelivered meanwhile waits for this replica's
         * events rather than saying them again (worker/task.c). */
        "reconnect.backoff.max.ms",
        "1000",
        "client.id",
        "kurir",
        NULL,
    };
    struct kafka *k = xcalloc(1, sizeof(*k));
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_topic_partition_list_t *subs = NULL;
    char err[512];
    int ret = -1;

    k->pipefd[0] = k->pipefd[1] = -1;
    k->retry_tail = &k->retries;
    k->offsets = offsets_new();
    k->delivered = delivered;
    k->opaque = opaque;
    if (pipe(k->pipefd) != 0) {
        snprintf(errstr, errstr_size, "pipe: %s", strerror(errno));
        goto out;
    }
    for (int i = 0; i < 2; i++)
        fcntl(k->pipefd[i], F_SETFL, O_NONBLOCK);

    conf = kafka_conf(k, cfg, consumer_defaults, errstr, errstr_size);
    if (conf == NULL)
        goto out;
    if (kafka_conf_set(conf, "group.id", cfg->kafka_group, errstr,
                       errstr_size) != 0)
        goto out;
    rd_kafka_conf_set_rebalance_cb(conf, kafka_rebalance_cb);
    k->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (k->consumer == NULL) {
        snprintf(errstr, errstr_size, "kafka consumer: %s", err);
        goto out;
    }
    conf = NULL; /* Now owned by k->consumer. */
    rd_kafka_poll_set_consumer(k->consumer);
    k->cqueue = rd_kafka_queue_get_consumer(k->consumer);
    rd_kafka_queue_io_event_enable(k->cqueue, k->pipefd[1], "c", 1);

    conf = kafka_conf(k, cfg, producer_defaults, errstr, errstr_size);
    if (conf == NULL)
        goto out;
    rd_kafka_conf_set_dr_msg_cb(conf, kafka_dr_cb);
    k->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (k->producer == NULL) {
        snprintf(errstr, errstr_size, "kafka producer: %s", err);
        goto out;
    }
    conf = NULL; /* Now owned by k->producer. */
    k->pqueue = rd_kafka_queue_get_main(k->producer);
    rd_kafka_queue_io_event_enable(k->pqueue, k->pipefd[1], "p", 1);

    const char *names[] = {cfg->topic_status, cfg->topic_replies,
                           cfg->topic_dlq,    cfg->topic_parts,
                           cfg->topic_latest, cfg->topic_results};
    for (int i = 0; i < KAFKA_NTOPICS; i++)
        k->topics[i] = rd_kafka_topic_new(k->producer, names[i], NULL);

    subs = rd_kafka_topic_partition_list_new(4);
    rd_kafka_topic_partition_list_add(subs, cfg->topic_send,
                                      RD_KAFKA_PARTITION_UA);
    rd_kafka_topic_partition_list_add(subs, cfg->topic_campaign,
                                      RD_KAFKA_PARTITION_UA);
    rd_kafka_topic_partition_list_add(subs, cfg->topic_contacts,
                                      RD_KAFKA_PARTITION_UA);
    rd_kafka_topic_partition_list_add(subs, cfg->topic_parts,
                                      RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t kerr = rd_kafka_subscribe(k->consumer, subs);
    if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errstr, errstr_size, "kafka subscribe: %s",
                 rd_kafka_err2str(kerr));
        goto out;
    }
    *out = k;
    k = NULL;
    ret = 0;

out:
    if (subs != NULL)
        rd_kafka_topic_partition_list_destroy(subs);
    if (conf != NULL) /* librdkafka destructors are not NULL-safe. */
        rd_kafka_conf_destroy(conf);
    kafka_free(k, 0);
    return ret;
}

void kafka_set_metrics(struct kafka *k, struct metrics *m)
{
    k->metrics = m;
}

void kafka_read_metrics(struct kafka *k, struct metrics *m)
{
    offsets_read_metrics(k->offsets, m);
}

int kafka_wake_fd(const struct kafka *k)
{
    return k->pipefd[0];
}

static void kafka_drain_pipe(struct kafka *k)
{
    char buf[256];

    while (read(k->pipefd[0], buf, sizeof(buf)) > 0)
        ;
}

rd_kafka_message_t *kafka_consume(struct kafka *k)
{
    rd_kafka_message_t *rkm;

    if (k->closed)
        return NULL;
    while ((rkm = rd_kafka_consumer_poll(k->consumer, 0)) != NULL) {
        if (rkm->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            offsets_track(k->offsets, rd_kafka_topic_name(rkm->rkt),
                          rkm->partition, rkm->offset);
            return rkm;
        }
        /* Informational (STYLE §4.12): librdkafka recovers by itself. */
        log_warn("kafka: consumer: %s", rd_kafka_message_errstr(rkm));
        rd_kafka_message_destroy(rkm);
    }
    return NULL;
}

void kafka_done(struct kafka *k, const char *topic, int32_t partition,
                int64_t offset)
{
    int64_t store;

    if (!offsets_done(k->offsets, topic, partition, offset, &store))
        return;
    rd_kafka_topic_partition_list_t *parts =
        rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic, partition)->offset = store;
    rd_kafka_resp_err_t err = rd_kafka_offsets_store(k->consumer, parts);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        log_warn("kafka: store offset topic=%s partition=%d offset=%lld: %s",
                 topic, partition, (long long)store, rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(parts);
}

int kafka_produce(struct kafka *k, enum kafka_topic topic, const char *key,
                  size_t key_len, const void *value, size_t len,
                  rd_kafka_headers_t *headers, void *msg_opaque, char *errstr,
                  size_t errstr_size)
{
    rd_kafka_resp_err_t err = rd_kafka_producev(
        k->producer, RD_KAFKA_V_RKT(k->topics[topic]),
        RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE((void *)value, len),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers),
        RD_KAFKA_V_OPAQUE(msg_opaque), RD_KAFKA_V_END);

    k->last_err = err;
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* On failure the headers were not taken. */
        if (headers != NULL)
            rd_kafka_headers_destroy(headers);
        snprintf(errstr, errstr_size, "produce to %s: %s",
                 rd_kafka_topic_name(k->topics[topic]), rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

void kafka_serve(struct kafka *k)
{
    kafka_drain_pipe(k);
    rd_kafka_poll(k->producer, 0);
    kafka_retry_due(k);
}

rd_kafka_resp_err_t kafka_last_produce_err(const struct kafka *k)
{
    return k->last_err;
}

bool kafka_is_fatal(const struct kafka *k)
{
    return k->fatal;
}

bool kafka_idle(const struct kafka *k)
{
    return rd_kafka_outq_len(k->producer) == 0 && k->retries == NULL;
}

bool kafka_is_ready(struct kafka *k)
{
    const struct rd_kafka_metadata *md = NULL;

    if (k->fatal)
        return false;
    if (rd_kafka_metadata(k->producer, 0, NULL, &md, 500) !=
        RD_KAFKA_RESP_ERR_NO_ERROR)
        return false;
    bool ok = md->broker_cnt > 0;
    rd_kafka_metadata_destroy(md);
    return ok;
}

bool kafka_ready_state(struct kafka *k, int64_t now_ms)
{
    const struct rd_kafka_metadata *md = NULL;

    if (k->fatal)
        return false;
    if (now_ms < k->next_ready_ms)
        return k->ready;
    /* A broker that answers takes a round trip; one that is away costs
     * the loop at most KAFKA_READY_WAIT_MS once per check. */
    rd_kafka_resp_err_t err =
        rd_kafka_metadata(k->producer, 0, NULL, &md, KAFKA_READY_WAIT_MS);
    bool ok = err == RD_KAFKA_RESP_ERR_NO_ERROR && md->broker_cnt > 0;
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        rd_kafka_metadata_destroy(md);
    if (ok)
        k->brokers_down = false;
    k->ready = ok;
    /* Not ready (at start-up, or Kafka away): look again sooner. */
    k->next_ready_ms =
        now_ms + (ok ? KAFKA_READY_CHECK_MS : KAFKA_READY_CHECK_MS / 5);
    return ok;
}

/* Pauses or resumes every partition assigned now. */
static void kafka_set_paused(struct kafka *k, bool pause)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_resp_err_t err = rd_kafka_assignment(k->consumer, &parts);

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        log_warn("kafka: assignment: %s", rd_kafka_err2str(err));
        return;
    }
    err = pause ? rd_kafka_pause_partitions(k->consumer, parts)
                : rd_kafka_resume_partitions(k->consumer, parts);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        log_warn("kafka: %s: %s", pause ? "pause" : "resume",
                 rd_kafka_err2str(err));
    k->paused = pause;
    rd_kafka_topic_partition_list_destroy(parts);
}

void kafka_pause_all(struct kafka *k, const char *why)
{
    if (k->paused || k->closed)
        return;
    kafka_set_paused(k, true);
    log_info("kafka: consumption paused (%s); still polling, so this "
             "replica stays in its group",
             why);
}

void kafka_resume_all(struct kafka *k)
{
    if (!k->paused || k->closed)
        return;
    kafka_set_paused(k, false);
    log_info("kafka: consumption resumed");
}

bool kafka_is_paused(const struct kafka *k)
{
    return k->paused;
}

void kafka_close_consumer(struct kafka *k)
{
    if (k->closed)
        return;
    k->closed = true;
    rd_kafka_resp_err_t err = rd_kafka_consumer_close(k->consumer);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        log_warn("kafka: close consumer: %s", rd_kafka_err2str(err));
}

void kafka_free(struct kafka *k, int timeout_ms)
{
    if (k == NULL)
        return;
    if (k->producer != NULL) {
        rd_kafka_resp_err_t err = rd_kafka_flush(k->producer, timeout_ms);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
            log_error("kafka: %d events not delivered at exit",
                      rd_kafka_outq_len(k->producer));
    }
    while (k->retries != NULL) {
        struct kafka_retry *r = k->retries;
        k->retries = r->next;
        kafka_retry_free(r);
    }
    for (int i = 0; i < KAFKA_NTOPICS; i++)
        if (k->topics[i] != NULL)
            rd_kafka_topic_destroy(k->topics[i]);
    if (k->pqueue != NULL)
        rd_kafka_queue_destroy(k->pqueue);
    if (k->cqueue != NULL)
        rd_kafka_queue_destroy(k->cqueue);
    if (k->consumer != NULL) {
        if (!k->closed)
            rd_kafka_consumer_close(k->consumer);
        rd_kafka_destroy(k->consumer);
    }
    if (k->producer != NULL)
        rd_kafka_destroy(k->producer);
    for (int i = 0; i < 2; i++)
        if (k->pipefd[i] >= 0)
            close(k->pipefd[i]);
    offsets_free(k->offsets);
    free(k);
}
