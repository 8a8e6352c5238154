/* worker/kafka.h - the worker's Kafka side: one consumer for the job topics
 * and one idempotent producer for the event topics.
 *
 * At-least-once: offsets are stored (enable.auto.offset.store=false, auto
 * commit on) only through kafka_done(), which the loop calls when a job has
 * ended and Kafka has acknowledged every event it produced; a watermark per
 * partition (worker/offsets.h) keeps stored offsets contiguous. The producer
 * never gives up on an event (message.timeout.ms=0): while Kafka is away
 * events wait in librdkafka's queue and their jobs' offsets stay unstored.
 *
 * Both clients wake the loop through one pipe (rd_kafka_queue_io_event_enable)
 * whose read end kafka_wake_fd() returns. All functions run on the loop
 * thread. */
#ifndef WORKER_KAFKA_H
#define WORKER_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "worker/config.h"

enum kafka_topic {
    KAFKA_STATUS,
    KAFKA_REPLIES,
    KAFKA_DLQ,
    KAFKA_PARTS,
    KAFKA_LATEST,
    KAFKA_RESULTS,
};

#define KAFKA_NTOPICS 6

struct kafka;

/* Called from kafka_serve() for each produced event once Kafka has it (err
 * 0) or has refused it for good (err set: kafka_err_is_permanent, or a
 * fatal producer error). Any other refusal (an ACL, an unknown topic, a
 * policy) is not reported: the event is produced again with backoff
 * (250 ms doubling to 30 s; kurir_event_retries_total, one log line a
 * second at most) until Kafka takes it. */
typedef void kafka_delivered_fn(void *msg_opaque, rd_kafka_resp_err_t err,
                                void *opaque);

/* Creates the consumer (subscribed to the three job topics and the part
 * topic) and the
 * producer. Returns 0 and sets *out, or -1 with errstr set. */
int kafka_new(struct kafka **out, const struct config *cfg,
              kafka_delivered_fn *delivered, void *opaque, char *errstr,
              size_t errstr_size);

struct metrics;

/* Gives the clients a metrics registry for their errors and statistics
 * (librdkafka's, every 15 s: consumer lag per partition). */
void kafka_set_metrics(struct kafka *k, struct metrics *m);

/* Writes the age of each partition's oldest unfinished offset. */
void kafka_read_metrics(struct kafka *k, struct metrics *m);

/* Returns the read end of the wake-up pipe. */
int kafka_wake_fd(const struct kafka *k);

/* Returns the next job message, or NULL when none is ready now. The caller
 * owns the message (rd_kafka_message_destroy) and must pass its coordinates
 * to kafka_done() when the job has ended. Errors the consumer reports are
 * logged here, not returned. */
rd_kafka_message_t *kafka_consume(struct kafka *k);

/* Marks a consumed message's job as ended; stores the partition's offset if
 * its watermark moved. */
void kafka_done(struct kafka *k, const char *topic, int32_t partition,
                int64_t offset);

/* Produces an event. `headers` (may be NULL) is owned by the call, even when
 * it fails. `msg_opaque` comes back through the delivered callback. Returns
 * 0, or -1 with errstr set (the event was not queued). */
int kafka_produce(struct kafka *k, enum kafka_topic topic, const char *key,
                  size_t key_len, const void *value, size_t len,
                  rd_kafka_headers_t *headers, void *msg_opaque, char *errstr,
                  size_t errstr_size);

/* Serves the producer: runs delivery callbacks, produces refused events
 * whose backoff ran out, drains the wake-up pipe. */
void kafka_serve(struct kafka *k);

/* Returns true for a refusal no retry can change: the event is too large
 * or malformed for the broker. */
bool kafka_err_is_permanent(rd_kafka_resp_err_t err);

/* Returns the error of the last kafka_produce() (0 after a success). */
rd_kafka_resp_err_t kafka_last_produce_err(const struct kafka *k);

/* Returns true once a fatal error has made the clients unusable. */
bool kafka_is_fatal(const struct kafka *k);

/* Returns true when the producer's queue is empty. */
bool kafka_idle(const struct kafka *k);

/* Returns true when Kafka answered a metadata request now (blocks up to
 * 500 ms). Thread-safe. */
bool kafka_is_ready(struct kafka *k);

/* How often kafka_ready_state() asks Kafka, and how long it waits. */
#define KAFKA_READY_CHECK_MS 5000
#define KAFKA_READY_WAIT_MS  100

/* Kafka's readiness for /readyz, as the loop knows it: asks for metadata
 * at most every KAFKA_READY_CHECK_MS (a fifth of it while not ready),
 * waiting up to KAFKA_READY_WAIT_MS, and otherwise returns the last answer;
 * false at once when librdkafka reports every broker down, or after a fatal
 * error. `now_ms` is monotonic. */
bool kafka_ready_state(struct kafka *k, int64_t now_ms);

/* Pauses every assigned partition (librdkafka stops fetching; what it had
 * fetched and not handed out is fetched again on resume), and keeps
 * partitions assigned later paused until kafka_resume_all(). The caller
 * keeps calling kafka_consume(), so the consumer serves rebalances and
 * stays in its group (max.poll.interval.ms) whatever is parked. `why` is
 * logged. Does nothing when already paused. */
void kafka_pause_all(struct kafka *k, const char *why);

/* Resumes every assigned partition. Does nothing when not paused. */
void kafka_resume_all(struct kafka *k);

/* Returns true while consumption is paused. */
bool kafka_is_paused(const struct kafka *k);

/* Stops consuming: commits stored offsets, leaves the group. Producing still
 * works until kafka_free(). */
void kafka_close_consumer(struct kafka *k);

/* Flushes events for up to timeout_ms, then destroys both clients.
 * kafka_free(NULL) does nothing. */
void kafka_free(struct kafka *k, int timeout_ms);

#endif /* WORKER_KAFKA_H */
