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

/* A status update parked on the loop's timers (its owner
 * OWNER_HOOK_RECORD) because the state it follows was not on Kafka yet:
 * recorded again when due, or dropped at shutdown. */
void hook_record_resume(struct worker *w, void *parked);
void hook_record_abandon(void *parked);

/* Kafka acknowledged (or refused) one event of a callback. */
void hook_event_delivered(struct worker *w, struct hook *h,
                          rd_kafka_resp_err_t err);

#endif /* WORKER_HOOKS_H */
