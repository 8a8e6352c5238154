/* tests/support/kafka.h - a test's own Kafka client: produce jobs, read
 * events back, with deadlines. Uses the broker tests/run starts. */
#ifndef TESTS_SUPPORT_KAFKA_H
#define TESTS_SUPPORT_KAFKA_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

/* Writes a topic prefix unique to this process and moment into out, e.g.
 * "t1234x5678". Tests name their topics and groups after it. */
void tk_unique(char *out, size_t out_size);

/* Produces one message (key may be NULL) and waits for its delivery. */
void tk_produce(const char *brokers, const char *topic, const char *key,
                const void *value, size_t len);

/* The same with Kafka headers: `headers` is a NULL-ended list of name,
 * value strings (NULL: none). */
void tk_produce_headers(const char *brokers, const char *topic, const char *key,
                        const void *value, size_t len,
                        const char *const *headers);

/* A reader of one topic from its beginning. A reader of a topic named
 * "*.status", "*.replies", "*.results" or "*.latest" keeps every JSON event
 * tk_reader_wait_json() reads and checks them against docs/schemas/ when
 * it is closed (tests/support/schema.h): a test fails on an event that
 * does not match its schema. */
struct tk_reader {
    rd_kafka_t *rk;
    const char *schema; /* NULL: not checked */
    json_t *read;       /* the events read, for the check */
    char topic[128];
};

/* Starts reading `topic` (subscribes with a unique group). */
void tk_reader_open(struct tk_reader *r, const char *brokers,
                    const char *topic);
/* Closes the reader, after checking the events it read (see above). */
void tk_reader_close(struct tk_reader *r);

/* Waits up to timeout_ms for the next message; returns it (the caller
 * destroys it) or NULL. */
rd_kafka_message_t *tk_reader_next(struct tk_reader *r, int timeout_ms);

/* Reads JSON events until one matches every "key": "value" pair of `want`
 * (a NULL-ended list of key, value strings) or timeout_ms pass; returns the
 * matching event (caller decrefs) or NULL. Events that do not match are
 * appended to `seen` when it is not NULL. */
json_t *tk_reader_wait_json(struct tk_reader *r, const char *const *want,
                            int timeout_ms, json_t *seen);

/* The same for tests that wait for several jobs' events in any order:
 * the events in `kept` (a JSON array the caller owns) are looked at first,
 * and every event read is appended to it, the matching one included, so no
 * wait loses another's event. Returns a new reference to the first match,
 * or NULL after timeout_ms. */
json_t *tk_reader_wait_kept(struct tk_reader *r, json_t *kept,
                            const char *const *want, int timeout_ms);

/* Returns the value of header `name` of a message as a malloc'd string, or
 * NULL. */
char *tk_header(const rd_kafka_message_t *rkm, const char *name);

#endif /* TESTS_SUPPORT_KAFKA_H */
