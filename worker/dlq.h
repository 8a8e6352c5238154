/* worker/dlq.h - the dead-letter copy of a job, and sending it back.
 *
 * A DLQ entry is the job's message as it came: the same value, the same key
 * and every original header, plus kurir's own headers saying why and from
 * where: kurir-error, kurir-source-topic, kurir-source-partition and
 * kurir-source-offset. `kurir replay` (replay.c) sends entries back to their
 * source topic with the original key and headers (the kurir-* ones
 * removed), byte for byte. */
#ifndef WORKER_DLQ_H
#define WORKER_DLQ_H

#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

/* The prefix of kurir's own DLQ headers. */
#define DLQ_HEADER_PREFIX "kurir-"

/* Returns new headers for the DLQ copy of `src`: every header of src except
 * earlier kurir-* ones (a replayed job failing again), in order, then
 * kurir-error (`error`), kurir-source-topic, -partition and -offset. The
 * caller passes them to the producer (which then owns them) or destroys
 * them. Produce the copy with src's key (rkm->key, rkm->key_len). */
rd_kafka_headers_t *dlq_headers(const rd_kafka_message_t *src,
                                const char *error);

/* Returns true when a header name is one of kurir's own (kurir-*). */
bool dlq_is_kurir_header(const char *name);

#endif /* WORKER_DLQ_H */
