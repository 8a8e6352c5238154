/* worker/poll.h - statuses and replies of providers without webhooks
 * (Jojka), fetched by polling; see poll.c for the Redis side. */
#ifndef WORKER_POLL_H
#define WORKER_POLL_H

#include <stdbool.h>

#include "codecs/codec.h"
#include "worker/worker.h"

/* Returns true for providers kurir polls (those without webhooks). */
bool poll_wanted(const struct codec *codec);

/* Remembers a submitted message of a polling provider so its status is
 * polled until final. Returns 0, or -1 when Redis failed (logged). */
int poll_track(struct worker *w, const struct account *acct, const char *pid,
               const char *job, const char *recipient);

/* Claims and starts the polls that are due, a few times a second at most.
 * Loop thread only. */
void poll_serve(struct worker *w);

/* Frees the poll requests still alive (their transfers already gone). */
void poll_free_all(struct worker *w);

#endif /* WORKER_POLL_H */
