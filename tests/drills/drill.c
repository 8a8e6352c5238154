/* tests/drills/drill.c - the fault drills' harness. See drill.h. */
#include "tests/drills/drill.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "tests/support/metrics.h"
#include "tests/support/redisproc.h"

/* Read once per test process, then removed from the environment: kurir
 * refuses settings it does not know, and the children inherit ours. */
static void drill_topics_create(const struct drill *d,
                                const char *const *topics, size_t n,
                                const char *name, const char *value);

static int drill_long_flag = -1;
static char drill_results[512];

static void drill_env_once(void)
{
    if (drill_long_flag >= 0)
        return;
    const char *v = getenv("KURIR_DRILL_LONG");
    drill_long_flag = v != NULL && strcmp(v, "1") == 0;
    v = getenv("KURIR_DRILL_RESULTS");
    snprintf(drill_results, sizeof(drill_results), "%s", v ? v : "");
    unsetenv("KURIR_DRILL_LONG");
    unsetenv("KURIR_DRILL_RESULTS");
}

bool drill_long(void)
{
    drill_env_once();
    return drill_long_flag == 1;
}

size_t drill_size(size_t ci, size_t lng)
{
    return drill_long() ? lng : ci;
}

/* ------------------------------------------------------------------------
 * Processes
 * ---------------------------------------------------------------------- */

/* What every drill replica runs with: a dead member leaves the group in
 * 6 s (the broker's minimum session), a mark left by a dead replica counts
 * as abandoned after 4 s (above the 3 s request timeout). */
static const char *const drill_base_env[] = {
    "KURIR_KAFKA_PROP_SESSION_TIMEOUT_MS=6000",
    "KURIR_KAFKA_PROP_HEARTBEAT_INTERVAL_MS=500",
    "KURIR_MARK_STALE_MS=4000",
    "KURIR_HTTP_TIMEOUT_MS=3000",
    "KURIR_LOG_LEVEL=info",
    NULL,
};

void drill_replica(struct drill *d, size_t i, const char *const *extra)
{
    const char *env[40];
    size_t n = 0;

    cr_assert(lt(sz, i, (size_t)DRILL_MAX_REPLICAS));
    for (size_t k = 0; drill_base_env[k] != NULL; k++)
        env[n++] = drill_base_env[k];
    for (size_t k = 0; d->env != NULL && d->env[k] != NULL && n < 30; k++)
        env[n++] = d->env[k];
    if (d->final)
        env[n++] = "KURIR_REPORT_GIVE_UP_MS=" DRILL_GIVE_UP;
    for (size_t k = 0; extra != NULL && extra[k] != NULL && n < 39; k++)
        env[n++] = extra[k];
    env[n] = NULL;
    if (d->port[i] == 0)
        d->port[i] = support_free_port();
    stack_spawn_worker(&d->s, &d->rep[i], d->port[i], env);
    if (i >= d->nrep)
        d->nrep = i + 1;
}

void drill_kill(struct drill *d, size_t i)
{
    if (d->rep[i].pid > 0)
        support_stop(&d->rep[i], SIGKILL, 5000);
    d->rep[i].pid = 0;
}

bool drill_replica_gone(struct drill *d, size_t i)
{
    int st;

    if (d->rep[i].pid <= 0)
        return true;
    if (waitpid(d->rep[i].pid, &st, WNOHANG) != d->rep[i].pid)
        return false;
    d->rep[i].pid = 0;
    return true;
}

void drill_redis_start(struct drill *d, bool keep)
{
    char port[16], cmd[512];

    if (!keep) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'/*", d->redis_dir);
        cr_assert(eq(int, system(cmd), 0));
    }
    snprintf(port, sizeof(port), "%d", d->redis_port);
    /* AOF, fsync on every write: a SIGKILL loses nothing the drill wrote
     * (production's everysec may lose the last second: docs/redis.md). */
    char *extra[] = {"--port",
                     port,
                     "--appendonly",
                     "yes",
                     "--appendfsync",
                     "always",
                     "--save",
                     "",
                     NULL};
    redisproc_start(&d->redis, d->redis_dir, extra);
}

void drill_redis_stop(struct drill *d)
{
    if (d->redis.pid > 0)
        support_stop(&d->redis, SIGKILL, 5000);
    d->redis.pid = 0;
}

/* True when the broker at `brokers` answers a metadata request within
 * a second. */
static bool drill_kafka_answers(const char *brokers)
{
    char err[256];
    const struct rd_kafka_metadata *md;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof(err));
    rd_kafka_conf_set(conf, "log_level", "0", err, sizeof(err));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    cr_assert(rk != NULL, "metadata client: %s", err);
    bool ok =
        rd_kafka_metadata(rk, 1, NULL, &md, 1000) == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (ok) {
        ok = md->broker_cnt > 0;
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_destroy(rk);
    return ok;
}

int64_t drill_kafka_start(struct drill *d)
{
    char script[512], port[16], cport[16];
    int64_t t0 = support_now_ms();
    bool ok;

    snprintf(script, sizeof(script), "%s/tests/drills/kafka-broker",
             support_env("KURIR_SOURCE_DIR"));
    snprintf(port, sizeof(port), "%d", d->kafka_port);
    snprintf(cport, sizeof(cport), "%d", d->kafka_cport);
    char *argv[] = {script, d->kafka_dir, port, cport, NULL};
    cr_assert(eq(int, support_spawn(&d->kafka, argv, NULL, false, 0), 0),
              "kafka-broker did not start");
    POLL_UNTIL(ok, drill_kafka_answers(d->kafka_addr), 120000);
    if (!ok)
        support_proc_log_dump(&d->kafka);
    cr_assert(ok, "the drill's broker on %s never answered", d->kafka_addr);
    return support_now_ms() - t0;
}

void drill_kafka_stop(struct drill *d, int sig)
{
    if (d->kafka.pid > 0)
        support_stop(&d->kafka, sig, 30000);
    d->kafka.pid = 0;
}

void drill_start(struct drill *d, const char *name, const struct drill_opts *o)
{
    drill_env_once();
    d->name = name;
    d->s.brokers = support_kafka();
    d->want = json_object();
    d->events = json_object();
    d->dlqd = json_object();
    d->why = json_object();
    d->recovery_ms = -1;
    d->own_redis = o->own_redis;
    const char *redis = support_redis();
    if (o->own_redis) {
        redisproc_need(REDIS_SERVER);
        redisproc_dir(d->redis_dir, sizeof(d->redis_dir), name);
        d->redis_port = support_free_port();
        snprintf(d->redis_addr, sizeof(d->redis_addr), "127.0.0.1:%d",
                 d->redis_port);
        drill_redis_start(d, true);
        redis = d->redis_addr;
    }
    d->own_kafka = o->own_kafka;
    if (o->own_kafka) {
        redisproc_dir(d->kafka_dir, sizeof(d->kafka_dir), "kafka");
        d->kafka_port = support_free_port();
        do
            d->kafka_cport = support_free_port();
        while (d->kafka_cport == d->kafka_port);
        snprintf(d->kafka_addr, sizeof(d->kafka_addr), "127.0.0.1:%d",
                 d->kafka_port);
        drill_kafka_start(d);
    }
    d->env = o->env;
    d->final = o->final;
    struct stack_opts so = {.extra_accounts = o->extra_accounts,
                            .no_kurir = true};
    stack_start_opts(&d->s, redis, &so);
    if (o->own_kafka)
        d->s.brokers = d->kafka_addr; /* the replicas' and the drill's */
    /* Every topic before any client: no rebalance when one appears. */
    const char *const topics[] = {
        d->s.topic_send,   d->s.topic_campaign, d->s.topic_contacts,
        d->s.topic_status, d->s.topic_replies,  d->s.topic_dlq,
        d->s.topic_parts,  d->s.topic_latest,
    };
    drill_topics_create(d, topics, sizeof(topics) / sizeof(topics[0]), NULL,
                        NULL);
    tk_reader_open(&d->status, d->s.brokers, d->s.topic_status);
    tk_reader_open(&d->dlq, d->s.brokers, d->s.topic_dlq);
    for (size_t i = 0; i < o->replicas; i++)
        drill_replica(d, i, i == 0 ? o->env0 : NULL);
    d->t0 = support_now_ms();
}

void drill_stop(struct drill *d)
{
    for (size_t i = 0; i < DRILL_MAX_REPLICAS; i++)
        drill_kill(d, i);
    if (d->s.standin.pid > 0)
        stack_stop(&d->s);
    d->s.standin.pid = 0;
    if (d->own_redis) {
        drill_redis_stop(d);
        redisproc_rmdir(d->redis_dir);
        d->own_redis = false;
    }
    if (d->producer != NULL) {
        rd_kafka_flush(d->producer, 5000);
        rd_kafka_destroy(d->producer);
        d->producer = NULL;
    }
    if (d->status.rk != NULL) {
        tk_reader_close(&d->status);
        tk_reader_close(&d->dlq);
        d->status.rk = d->dlq.rk = NULL;
    }
    if (d->own_kafka) {
        drill_kafka_stop(d, SIGKILL);
        redisproc_rmdir(d->kafka_dir);
        d->own_kafka = false;
    }
    json_decref(d->want);
    json_decref(d->events);
    json_decref(d->dlqd);
    json_decref(d->why);
    d->want = d->events = d->dlqd = d->why = NULL;
}

/* ------------------------------------------------------------------------
 * Topics
 * ---------------------------------------------------------------------- */

/* A client for admin calls and the queue their results come on. */
static rd_kafka_t *drill_admin_new(const struct drill *d, rd_kafka_queue_t **q)
{
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    rd_kafka_conf_set(conf, "bootstrap.servers", d->s.brokers, err,
                      sizeof(err));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    cr_assert(rk != NULL, "admin client: %s", err);
    *q = rd_kafka_queue_new(rk);
    return rk;
}

/* Waits for an admin call's result event (up to 30 s). */
static rd_kafka_event_t *drill_admin_wait(rd_kafka_queue_t *q,
                                          rd_kafka_event_type_t type)
{
    for (int i = 0; i < 300; i++) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 100);
        if (ev == NULL)
            continue;
        if (rd_kafka_event_type(ev) == type)
            return ev;
        rd_kafka_event_destroy(ev);
    }
    return NULL;
}

/* Creates the topics (4 partitions; `name`=`value` set when not NULL);
 * topics already there are left as they are. */
static void drill_topics_create(const struct drill *d,
                                const char *const *topics, size_t n,
                                const char *name, const char *value)
{
    char err[256];
    rd_kafka_queue_t *q;
    rd_kafka_t *rk = drill_admin_new(d, &q);
    rd_kafka_NewTopic_t *nt[16];
    cr_assert(le(sz, n, (size_t)16));
    for (size_t i = 0; i < n; i++) {
        nt[i] = rd_kafka_NewTopic_new(topics[i], 4, 1, err, sizeof(err));
        cr_assert(nt[i] != NULL, "%s", err);
        if (name != NULL)
            rd_kafka_NewTopic_set_config(nt[i], name, value);
    }
    rd_kafka_CreateTopics(rk, nt, n, NULL, q);
    rd_kafka_event_t *ev =
        drill_admin_wait(q, RD_KAFKA_EVENT_CREATETOPICS_RESULT);
    char why[512] = "no answer";
    bool ok = ev != NULL && rd_kafka_event_error(ev) == 0;
    if (ev != NULL && !ok)
        snprintf(why, sizeof(why), "%s", rd_kafka_event_error_string(ev));
    if (ok) {
        size_t nres;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(
                rd_kafka_event_CreateTopics_result(ev), &nres);
        for (size_t i = 0; i < nres; i++) {
            rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
            if (e != 0 && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                ok = false;
                snprintf(why, sizeof(why), "%s: %s",
                         rd_kafka_topic_result_name(res[i]),
                         rd_kafka_topic_result_error_string(res[i]));
            }
        }
    }
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    for (size_t i = 0; i < n; i++)
        rd_kafka_NewTopic_destroy(nt[i]);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    cr_assert(ok, "creating topics: %s", why);
}

/* True when the broker describes `topic`'s config `name` as `value`. */
static bool drill_topic_has(const struct drill *d, const char *topic,
                            const char *name, const char *value)
{
    rd_kafka_queue_t *q;
    rd_kafka_t *rk = drill_admin_new(d, &q);
    rd_kafka_ConfigResource_t *cr =
        rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    bool has = false;

    rd_kafka_DescribeConfigs(rk, &cr, 1, NULL, q);
    rd_kafka_event_t *ev =
        drill_admin_wait(q, RD_KAFKA_EVENT_DESCRIBECONFIGS_RESULT);
    if (ev != NULL && rd_kafka_event_error(ev) == 0) {
        size_t nres, nconf;
        const rd_kafka_ConfigResource_t **res =
            rd_kafka_DescribeConfigs_result_resources(
                rd_kafka_event_DescribeConfigs_result(ev), &nres);
        for (size_t i = 0; i < nres; i++) {
            const rd_kafka_ConfigEntry_t **c =
                rd_kafka_ConfigResource_configs(res[i], &nconf);
            for (size_t k = 0; k < nconf; k++) {
                const char *v = rd_kafka_ConfigEntry_value(c[k]);
                if (strcmp(rd_kafka_ConfigEntry_name(c[k]), name) == 0 &&
                    v != NULL && strcmp(v, value) == 0)
                    has = true;
            }
        }
    }
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    rd_kafka_ConfigResource_destroy(cr);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return has;
}

void drill_topic_config(const struct drill *d, const char *topic,
                        const char *name, const char *value)
{
    char why[512] = "no answer";
    const char *const one[] = {topic};

    drill_topics_create(d, one, 1, name, value);
    rd_kafka_queue_t *q;
    rd_kafka_t *rk = drill_admin_new(d, &q);
    rd_kafka_ConfigResource_t *cr =
        rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    rd_kafka_ConfigResource_set_config(cr, name, value);
    rd_kafka_AlterConfigs(rk, &cr, 1, NULL, q);
    rd_kafka_event_t *ev =
        drill_admin_wait(q, RD_KAFKA_EVENT_ALTERCONFIGS_RESULT);
    bool ok = ev != NULL && rd_kafka_event_error(ev) == 0;
    if (ev != NULL && !ok)
        snprintf(why, sizeof(why), "%s", rd_kafka_event_error_string(ev));
    if (ok) {
        /* The topic's own answer: a value the broker refuses. */
        size_t nres;
        const rd_kafka_ConfigResource_t **res =
            rd_kafka_AlterConfigs_result_resources(
                rd_kafka_event_AlterConfigs_result(ev), &nres);
        for (size_t i = 0; i < nres; i++) {
            if (rd_kafka_ConfigResource_error(res[i]) == 0)
                continue;
            ok = false;
            snprintf(why, sizeof(why), "%s",
                     rd_kafka_ConfigResource_error_string(res[i]));
        }
    }
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    rd_kafka_ConfigResource_destroy(cr);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    cr_assert(ok, "topic %s: setting %s=%s: %s", topic, name, value, why);
    /* The broker applies it a moment after answering. */
    POLL_UNTIL(ok, drill_topic_has(d, topic, name, value), 10000);
    cr_assert(ok, "topic %s: %s never became %s", topic, name, value);
}

/* How many partitions of `topic` replica i holds now, from its log's
 * "assigned"/"revoked" lines. */
static int drill_assigned(const struct drill *d, size_t i, const char *topic)
{
    FILE *f = fopen(d->rep[i].log_path, "r");
    char line[1024], want[160];
    int n = 0;

    if (f == NULL)
        return 0;
    snprintf(want, sizeof(want), "topic=%s partition=", topic);
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strstr(line, want) == NULL)
            continue;
        if (strstr(line, "kafka: assigned ") != NULL)
            n++;
        else if (strstr(line, "kafka: revoked ") != NULL ||
                 strstr(line, "kafka: lost ") != NULL)
            n--;
    }
    fclose(f);
    return n;
}

static bool drill_group_whole(const struct drill *d)
{
    int total = 0;

    for (size_t i = 0; i < d->nrep; i++) {
        if (d->rep[i].pid <= 0)
            continue;
        int n = drill_assigned(d, i, d->s.topic_send);
        if (n == 0)
            return false; /* every replica holds some */
        total += n;
    }
    return total == 4;
}

void drill_wait_group(const struct drill *d)
{
    bool ok;

    POLL_UNTIL(ok, drill_group_whole(d), 60000);
    cr_assert(ok, "the replicas never shared the send topic's partitions");
}

/* ------------------------------------------------------------------------
 * Jobs and events
 * ---------------------------------------------------------------------- */

void drill_expect(struct drill *d, const char *id, char *const *to, size_t n)
{
    json_t *list = json_array();

    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, json_string(to[i]));
    if (n == 0)
        json_array_append_new(list, json_string(""));
    json_object_set_new(d->want, id, list);
}

void drill_job(struct drill *d, const char *topic, const char *id,
               const char *json, char *const *to, size_t n)
{
    drill_expect(d, id, to, n);
    tk_produce(d->s.brokers, topic, id, json, strlen(json));
}

/* The drill producer's delivery reports: a job Kafka refused is counted
 * and its error kept (drill_flush() fails the test on any). */
static void drill_delivered(rd_kafka_t *rk, const rd_kafka_message_t *m,
                            void *opaque)
{
    struct drill *d = opaque;

    (void)rk;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    if (d->refused++ == 0)
        snprintf(d->refused_why, sizeof(d->refused_why), "%s",
                 rd_kafka_err2str(m->err));
}

void drill_job_async_key(struct drill *d, const char *topic, const char *key,
                         const char *id, const char *json, char *const *to,
                         size_t n)
{
    char err[256];

    if (d->producer == NULL) {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "bootstrap.servers", d->s.brokers, err,
                          sizeof(err));
        rd_kafka_conf_set(conf, "linger.ms", "5", err, sizeof(err));
        /* Room for the poison drill's 2 MB jobs (the topic decides). */
        rd_kafka_conf_set(conf, "message.max.bytes", "8000000", err,
                          sizeof(err));
        rd_kafka_conf_set_dr_msg_cb(conf, drill_delivered);
        rd_kafka_conf_set_opaque(conf, d);
        d->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        cr_assert(d->producer != NULL, "producer: %s", err);
    }
    drill_expect(d, id, to, n);
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            d->producer, RD_KAFKA_V_TOPIC(topic),
            RD_KAFKA_V_KEY(key, strlen(key)),
            RD_KAFKA_V_VALUE((void *)json, strlen(json)),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            cr_assert(e == RD_KAFKA_RESP_ERR_NO_ERROR, "produce: %s",
                      rd_kafka_err2str(e));
            break;
        }
        rd_kafka_poll(d->producer, 10);
    }
    rd_kafka_poll(d->producer, 0);
}

void drill_job_async(struct drill *d, const char *topic, const char *id,
                     const char *json, char *const *to, size_t n)
{
    drill_job_async_key(d, topic, id, id, json, to, n);
}

void drill_flush(struct drill *d)
{
    if (d->producer == NULL)
        return;
    rd_kafka_resp_err_t e = rd_kafka_flush(d->producer, 30000);
    cr_assert(e == RD_KAFKA_RESP_ERR_NO_ERROR, "flush: %s",
              rd_kafka_err2str(e));
    cr_assert(eq(sz, d->refused, 0), "Kafka refused %zu jobs: %s", d->refused,
              d->refused_why);
}

void drill_fault_over(struct drill *d)
{
    d->fault_end = support_now_ms();
}

/* Where a state stands in a recipient's life: a later event may repeat a
 * rank (events are at least once) but never go below the highest seen. */
static int drill_rank(const char *state)
{
    static const char *const order[] = {"accepted", "scheduled", "retrying",
                                        "submitted", "unknown"};

    for (int i = 0; i < 5; i++)
        if (strcmp(state, order[i]) == 0)
            return i;
    return 5; /* delivered, failed, rejected, cancelled */
}

static bool drill_final(const char *state)
{
    return drill_rank(state) == 5;
}

static bool drill_settled(const char *state)
{
    return drill_rank(state) >= 3;
}

static void drill_event(struct drill *d, const rd_kafka_message_t *m)
{
    json_t *ev = json_loadb(m->payload, m->len, 0, NULL);
    const char *job = json_string_value(json_object_get(ev, "job_id"));
    const char *state = json_string_value(json_object_get(ev, "state"));
    const char *to = json_string_value(json_object_get(ev, "recipient"));
    const char *code = json_string_value(
        json_object_get(json_object_get(ev, "error"), "code"));

    if (job == NULL || state == NULL) {
        json_decref(ev);
        return;
    }
    d->nevents++;
    if (to == NULL)
        to = "";
    json_t *per = json_object_get(d->events, job);
    if (per == NULL) {
        per = json_object();
        json_object_set_new(d->events, job, per);
    }
    json_t *states = json_object_get(per, to);
    if (states == NULL) {
        states = json_array();
        json_object_set_new(per, to, states);
    }
    size_t i;
    json_t *s;
    int top = -1;
    const char *final = NULL;
    json_array_foreach(states, i, s)
    {
        const char *prev = json_string_value(s);
        if (drill_rank(prev) > top)
            top = drill_rank(prev);
        if (drill_final(prev))
            final = prev;
    }
    bool back =
        drill_rank(state) < top || (final != NULL && strcmp(final, state) != 0);
    if (back) {
        if (final != NULL && drill_final(state))
            d->conflicts++;
        else
            d->regressions++;
        if (d->first_regression[0] == '\0')
            snprintf(d->first_regression, sizeof(d->first_regression),
                     "job %s recipient %s: %s after %s", job, to, state,
                     final != NULL ? final
                                   : json_string_value(json_array_get(
                                         states, json_array_size(states) - 1)));
    }
    json_array_append_new(states, json_string(state));
    char key[512];
    snprintf(key, sizeof(key), "%s/%s", job, to);
    json_object_set_new(d->why, key, json_string(code ? code : ""));
    json_decref(ev);
}

static void drill_dlq_entry(struct drill *d, const rd_kafka_message_t *m)
{
    char id[1024] = "";

    if (m->key != NULL && m->key_len > 0 && m->key_len < sizeof(id))
        snprintf(id, sizeof(id), "%.*s", (int)m->key_len, (const char *)m->key);
    if (id[0] == '\0') {
        json_t *job = json_loadb(m->payload, m->len, 0, NULL);
        const char *v = json_string_value(json_object_get(job, "id"));
        if (v != NULL)
            snprintf(id, sizeof(id), "%s", v);
        json_decref(job);
    }
    if (id[0] != '\0')
        json_object_set_new(d->dlqd, id, json_true());
}

/* True when the job has a job-level final event (rejected, failed) that
 * settles all its recipients, or a DLQ entry. */
static bool drill_job_closed(const struct drill *d, const char *job)
{
    if (json_object_get(d->dlqd, job) != NULL)
        return true;
    json_t *states = json_object_get(json_object_get(d->events, job), "");
    size_t i;
    json_t *s;
    json_array_foreach(states, i, s)
    {
        if (drill_final(json_string_value(s)))
            return true;
    }
    return false;
}

static size_t drill_unsettled(const struct drill *d, char *first,
                              size_t first_size)
{
    const char *job;
    json_t *list;
    size_t n = 0;

    json_object_foreach(d->want, job, list)
    {
        if (drill_job_closed(d, job))
            continue;
        json_t *per = json_object_get(d->events, job);
        size_t i;
        json_t *to;
        json_array_foreach(list, i, to)
        {
            json_t *states = json_object_get(per, json_string_value(to));
            const char *last = json_string_value(
                json_array_get(states, json_array_size(states) - 1));
            bool ok = false;
            size_t k;
            json_t *s;
            json_array_foreach(states, k, s)
            {
                const char *st = json_string_value(s);
                if (d->final ? drill_final(st) : drill_settled(st))
                    ok = true;
            }
            if (!ok && n++ < 5 && first != NULL) {
                size_t len = strlen(first);
                snprintf(first + len, first_size - len,
                         "%sjob %s recipient %s: %s", len ? "; " : "", job,
                         json_string_value(to), last ? last : "no event");
            }
        }
    }
    return n;
}

size_t drill_collect(struct drill *d, int timeout_ms)
{
    int64_t deadline = support_now_ms() + timeout_ms;
    size_t left = drill_unsettled(d, NULL, 0);
    int64_t settled_at = support_now_ms();

    while (left > 0 && support_now_ms() < deadline) {
        bool any = false;
        rd_kafka_message_t *m;
        while ((m = tk_reader_next(&d->status, 100)) != NULL) {
            drill_event(d, m);
            rd_kafka_message_destroy(m);
            any = true;
        }
        while ((m = tk_reader_next(&d->dlq, 20)) != NULL) {
            drill_dlq_entry(d, m);
            rd_kafka_message_destroy(m);
            any = true;
        }
        if (any) {
            left = drill_unsettled(d, NULL, 0);
            settled_at = support_now_ms();
        }
    }
    /* Late events (re-emitted, or a regression) come within a moment. */
    rd_kafka_message_t *m;
    while ((m = tk_reader_next(&d->status, 300)) != NULL) {
        drill_event(d, m);
        rd_kafka_message_destroy(m);
    }
    if (left == 0 && d->fault_end > 0)
        d->recovery_ms = settled_at - d->fault_end;
    return left;
}

/* ------------------------------------------------------------------------
 * The stand-in and the replicas' HTTP
 * ---------------------------------------------------------------------- */

void drill_standin(const struct drill *d, const char *method, const char *path,
                   const char *json)
{
    char url[256];
    struct support_http r;
    char *hdrs[] = {"Content-Type: application/json", NULL};

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/_standin/%s",
             d->s.standin.port, path);
    int ret = support_http(&r, method, url, json ? hdrs : NULL, json,
                           json ? strlen(json) : 0);
    cr_assert(eq(int, ret, 0), "stand-in %s %s: no answer", method, path);
    bool ok = r.status >= 200 && r.status < 300;
    cr_assert(ok, "stand-in %s %s: HTTP %ld %s", method, path, r.status,
              r.body);
    support_http_cleanup(&r);
}

long drill_get(const struct drill *d, size_t i, const char *path, char **body)
{
    char url[160];
    struct support_http r;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", d->port[i], path);
    if (support_http_timeout(&r, "GET", url, NULL, NULL, 0, 3000) != 0)
        return 0;
    long status = r.status;
    if (body != NULL)
        *body = strdup(r.body ? r.body : "");
    support_http_cleanup(&r);
    return status;
}

/* How many recipients hold `state` last (`ever` false) or had it at some
 * point (`ever` true), or (`twice`) had it more than once. */
static size_t drill_count(const struct drill *d, const char *state, bool ever,
                          bool twice)
{
    const char *job, *to;
    json_t *per, *states;
    size_t n = 0;

    json_object_foreach(d->events, job, per)
    {
        json_object_foreach(per, to, states)
        {
            size_t i, last = json_array_size(states) - 1;
            json_t *s;
            size_t had = 0;
            json_array_foreach(states, i, s)
            {
                if ((ever || twice || i == last) &&
                    strcmp(json_string_value(s), state) == 0)
                    had++;
            }
            n += twice ? had > 1 : had > 0;
        }
    }
    return n;
}

size_t drill_count_state(const struct drill *d, const char *state)
{
    return drill_count(d, state, false, false);
}

size_t drill_count_ever(const struct drill *d, const char *state)
{
    return drill_count(d, state, true, false);
}

size_t drill_count_repeated(const struct drill *d, const char *state)
{
    return drill_count(d, state, false, true);
}

json_t *drill_messages(const struct drill *d, const char *account)
{
    char url[200];
    struct support_http r;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/_standin/messages%s%s",
             d->s.standin.port, account ? "?account=" : "",
             account ? account : "");
    /* 100,000 messages (the poison drill) take the stand-in a while. */
    cr_assert(
        eq(int, support_http_timeout(&r, "GET", url, NULL, NULL, 0, 120000), 0),
        "stand-in messages: no answer in 120 s");
    json_t *msgs = json_loadb(r.body, r.body_len, 0, NULL);
    support_http_cleanup(&r);
    bool is_list = json_is_array(msgs);
    cr_assert(is_list, "stand-in messages: not a list");
    return msgs;
}

/* drill_send()'s job: its id into id[160], its JSON into json[1024]. */
static void drill_send_json(const struct drill *d, char *id, char *json,
                            const char *account, const char *tag, size_t j,
                            const char *num, const char *extra)
{
    snprintf(id, 160, "%s-%s-%zu", d->s.uniq, tag, j);
    snprintf(json, 1024,
             "{\"id\": \"%s\", \"account\": \"%s\", \"to\": [\"%s\"], "
             "\"text\": \"%s %zu\"%s}",
             id, account, num, tag, j, extra ? extra : "");
}

void drill_send(struct drill *d, const char *account, const char *tag, size_t j,
                const char *num, const char *extra, bool expect)
{
    char id[160], json[1024];

    drill_send_json(d, id, json, account, tag, j, num, extra);
    char *one[] = {(char *)num};
    if (expect)
        drill_job(d, d->s.topic_send, id, json, one, 1);
    else
        tk_produce(d->s.brokers, d->s.topic_send, id, json, strlen(json));
}

void drill_send_async(struct drill *d, const char *account, const char *tag,
                      size_t j, const char *num, const char *extra)
{
    char id[160], json[1024];

    drill_send_json(d, id, json, account, tag, j, num, extra);
    char *one[] = {(char *)num};
    drill_job_async(d, d->s.topic_send, id, json, one, 1);
}

void drill_rfc3339_ms(char *out, size_t size, int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char base[32];
    gmtime_r(&t, &tm);
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, size, "%s.%03dZ", base, (int)(ms % 1000));
}

void drill_send_at(char *out, size_t size, int64_t in_ms)
{
    struct timespec ts;
    char at[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    drill_rfc3339_ms(at, sizeof(at),
                     (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + in_ms);
    snprintf(out, size, ", \"send_at\": \"%s\"", at);
}

size_t drill_standin_requests(const struct drill *d, const char *path)
{
    char url[256];
    struct support_http r;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/_standin/requests?path=%s",
             d->s.standin.port, path);
    if (support_http(&r, "GET", url, NULL, NULL, 0) != 0)
        return 0;
    json_t *all = json_loadb(r.body, r.body_len, 0, NULL);
    support_http_cleanup(&r);
    size_t n = json_array_size(all);
    json_decref(all);
    return n;
}

double drill_metric_sum(const struct drill *d, const char *name,
                        const char *labels)
{
    double sum = 0;

    for (size_t i = 0; i < d->nrep; i++) {
        if (d->rep[i].pid <= 0)
            continue;
        char *page = support_metrics_scrape(d->port[i]);
        sum += support_metric(page, name, labels);
        free(page);
    }
    return sum;
}

/* Prints the stand-in's record of the requests carrying `needle`: when,
 * what was answered, which fault (for a drill that found a duplicate). */
static void drill_print_requests(const struct drill *d, const char *needle)
{
    char url[160];
    struct support_http r;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/_standin/requests",
             d->s.standin.port);
    if (needle == NULL || support_http(&r, "GET", url, NULL, NULL, 0) != 0)
        return;
    json_t *all = json_loadb(r.body, r.body_len, 0, NULL);
    support_http_cleanup(&r);
    size_t i;
    json_t *q;
    json_array_foreach(all, i, q)
    {
        const char *body = json_string_value(json_object_get(q, "body"));
        const char *uri = json_string_value(json_object_get(q, "uri"));
        if ((body == NULL || strstr(body, needle) == NULL) &&
            (uri == NULL || strstr(uri, needle) == NULL))
            continue;
        const char *fault = json_string_value(json_object_get(q, "fault"));
        fprintf(stderr, "  request %s at %lld ms: HTTP %lld, fault %s\n",
                uri ? uri : "?",
                (long long)json_integer_value(json_object_get(q, "time_ms")),
                (long long)json_integer_value(json_object_get(q, "status")),
                fault ? fault : "none");
    }
    json_decref(all);
}

/* The stand-in's messages, counted per recipient and text: how many were
 * sent more than once, and of those how many inside the window (the
 * recipient's last event says `interrupted`). */
static void drill_duplicates(const struct drill *d, size_t *dups,
                             size_t *inside, size_t *sent, char *first,
                             size_t first_size)
{
    json_t *msgs = drill_messages(d, NULL);
    json_t *count = json_object();
    size_t i;
    json_t *m;
    *dups = *inside = 0;
    *sent = json_array_size(msgs);
    json_array_foreach(msgs, i, m)
    {
        char key[2048];
        snprintf(key, sizeof(key), "%s\t%s",
                 json_string_value(json_object_get(m, "recipient")),
                 json_string_value(json_object_get(m, "text")));
        json_int_t c = json_integer_value(json_object_get(count, key)) + 1;
        json_object_set_new(count, key, json_integer(c));
        if (c != 2)
            continue;
        /* Was it in the window? Its recipient is `interrupted`. */
        const char *to = json_string_value(json_object_get(m, "recipient"));
        bool in = false;
        const char *k;
        json_t *code;
        json_object_foreach(d->why, k, code)
        {
            const char *slash = strrchr(k, '/');
            if (slash != NULL && to != NULL && strcmp(slash + 1, to) == 0 &&
                strcmp(json_string_value(code), "interrupted") == 0)
                in = true;
        }
        if (in) {
            (*inside)++;
        } else if ((*dups)++ == 0) {
            snprintf(first, first_size, "%s sent twice", key);
            drill_print_requests(d, to);
        }
    }
    json_decref(count);
    json_decref(msgs);
}

static void drill_states(const struct drill *d, char *out, size_t size)
{
    static const char *const states[] = {"submitted", "delivered", "failed",
                                         "rejected",  "cancelled", "unknown",
                                         "retrying",  "scheduled", "accepted"};
    size_t len = 0;

    out[0] = '\0';
    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
        size_t n = drill_count_state(d, states[i]);
        if (n > 0 && len < size)
            len += (size_t)snprintf(out + len, size - len, "%s%s %zu",
                                    len ? ", " : "", states[i], n);
    }
    size_t ndlq = json_object_size(d->dlqd);
    if (ndlq > 0 && len < size)
        snprintf(out + len, size - len, "%sdlq %zu", len ? ", " : "", ndlq);
}

/* Prints how many recipients ended with each error code (for the log). */
static void drill_print_codes(const struct drill *d)
{
    json_t *by = json_object();
    const char *k;
    json_t *code;

    json_object_foreach(d->why, k, code)
    {
        const char *c = json_string_value(code);
        if (c[0] == '\0')
            continue;
        json_int_t n = json_integer_value(json_object_get(by, c));
        json_object_set_new(by, c, json_integer(n + 1));
    }
    json_object_foreach(by, k, code)
    {
        fprintf(stderr, "  error code %s: %lld\n", k,
                (long long)json_integer_value(code));
    }
    json_decref(by);
}

void drill_finish(struct drill *d, int timeout_ms, const char *note)
{
    char first[512] = "", dupfirst[2100] = "", states[256];
    size_t dups, inside, sent;

    size_t left = drill_collect(d, timeout_ms);
    drill_unsettled(d, first, sizeof(first));
    drill_duplicates(d, &dups, &inside, &sent, dupfirst, sizeof(dupfirst));
    drill_states(d, states, sizeof(states));

    char recovery[32];
    if (d->recovery_ms >= 0)
        snprintf(recovery, sizeof(recovery), "%.1f s",
                 (double)d->recovery_ms / 1000.0);
    else
        snprintf(recovery, sizeof(recovery), left ? "never" : "-");
    char line[1024];
    snprintf(line, sizeof(line),
             "%s\t%zu\t%s\t%zu (%zu in the window)\t%zu\t%s\t%s\n", d->name,
             json_object_size(d->want), states, dups + inside, inside,
             d->regressions + d->conflicts, recovery, note ? note : "");
    fprintf(stderr, "drill %s", line);
    drill_print_codes(d);
    if (drill_results[0] != '\0') {
        FILE *f = fopen(drill_results, "a");
        if (f != NULL) {
            fputs(line, f);
            fclose(f);
        }
    }
    if (left > 0 || dups > 0 || d->regressions + d->conflicts > 0)
        for (size_t i = 0; i < d->nrep; i++)
            if (d->rep[i].pid > 0)
                support_proc_log_dump(&d->rep[i]);
    cr_expect(eq(sz, left, 0), "%s: %zu recipients never settled (%s)", d->name,
              left, first);
    cr_expect(eq(sz, dups, 0), "%s: %zu sent twice outside the window (%s)",
              d->name, dups, dupfirst);
    cr_expect(eq(sz, d->regressions, 0), "%s: a state moved backwards: %s",
              d->name, d->first_regression);
    cr_expect(eq(sz, d->conflicts, 0), "%s: two final states: %s", d->name,
              d->first_regression);
}
