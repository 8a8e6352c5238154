/* worker/echo.h - the headers of a job that its events carry back.
 *
 * A producer marks the headers it wants to see again on every status event
 * of a job (and its latest-state record): W3C `traceparent` and
 * `tracestate`, and any header named `kurir-echo-*` (a correlation id, a
 * request id). kurir keeps them with the job as a small JSON object of
 * name -> value (strings), in every stored copy (scheduled entries,
 * retries, parts) and in Redis for the events that come later (callbacks,
 * polls). */
#ifndef WORKER_ECHO_H
#define WORKER_ECHO_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

/* At most this many headers, each value at most ECHO_VALUE_MAX bytes, are
 * echoed; others are dropped. */
#define ECHO_MAX       8
#define ECHO_VALUE_MAX 512

/* True for a header name that is echoed. */
bool echo_wanted(const char *name);

/* The echoed headers of a consumed job as compact JSON (malloc'd), or
 * NULL when it has none. */
char *echo_from_message(const rd_kafka_message_t *rkm);

/* The same from a stored copy's "echo" object (NULL or not an object:
 * none). */
char *echo_from_json(const json_t *obj);

/* Kafka headers for one event from the JSON (NULL: none); owned by the
 * produce call that takes them. */
rd_kafka_headers_t *echo_headers(const char *json);

#endif /* WORKER_ECHO_H */
