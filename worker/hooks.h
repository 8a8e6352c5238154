/* worker/hooks.h - provider callbacks, read on the loop thread.
 *
 * A callback's delivery reports become status events (job and recipient
 * come back in the provider's transid or reference; states only move
 * forward, checked in Redis) and its incoming messages become sms.replies
 * events. The provider gets its documented answer only once Kafka has every
 * event; if one cannot be kept it gets an error and retries. */
#ifndef WORKER_HOOKS_H
#define WORKER_HOOKS_H

#include <librdkafka/rdkafka.h>

#include "worker/listener.h"
#include "worker/worker.h"

/* Reads every callback waiting in the listener's inbox. */
void hooks_serve(struct worker *w);

/* Kafka acknowledged (or refused) one event of a callback. */
void hook_event_delivered(struct worker *w, struct hook *h,
                          rd_kafka_resp_err_t err);

#endif /* WORKER_HOOKS_H */
