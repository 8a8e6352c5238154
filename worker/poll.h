/* worker/poll.h - statuses and replies of providers without webhooks
 * (Jojka), fetched by polling; see poll.c for the Redis side. */
#ifndef WORKER_POLL_H
#define WORKER_POLL_H

#include <stdbool.h>

#include <librdkafka/rdkafka.h>

#include "codecs/codec.h"
#include "worker/worker.h"

/* Returns true for providers kurir polls (those without webhooks). */
bool poll_wanted(const struct codec *codec);

/* Remembers a submitted message of a polling provider so its status is
 * polled until final, asynchronously: returns 0 when the ZADD was queued
 * (fn is then called once with its reply), 1 when there is nothing to
 * track (no provider id). */
int poll_track(struct worker *w, const struct account *acct, const char *pid,
               const char *job, const char *recipient, aredis_fn *fn,
               void *privdata);

/* Claims and starts the polls that are due, a few times a second at most.
 * Loop thread only. */
void poll_serve(struct worker *w);

/* Kafka acknowledged (or refused) one event of a status poll. */
void poll_event_delivered(struct pollreq *p, rd_kafka_resp_err_t err);

/* Frees the poll requests still alive (their transfers already gone). */
void poll_free_all(struct worker *w);

#endif /* WORKER_POLL_H */
