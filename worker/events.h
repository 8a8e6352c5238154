/* worker/events.h - the JSON of the events kurir publishes (CONTRACT §4). */
#ifndef WORKER_EVENTS_H
#define WORKER_EVENTS_H

#include <stddef.h>

#include "codecs/codec.h"

/* One change of one recipient's state (or of a job, recipient NULL).
 * Strings may be NULL (written as null) or "" (also null). */
struct status_event {
    const char *job_id;
    const char *type; /* "send", "campaign", "contact-sync" */
    const char *account;
    const char *provider;
    const char *recipient;
    enum sms_state state;
    const char *provider_message_id;
    const char *provider_status;
    int segments; /* 0: not written */
    int attempt;  /* 0: not written */
    const char *reference;
    const char *error_code; /* set for error states */
    const char *error_message;
};

/* Returns the event as compact JSON (malloc'd; caller frees), "at" set to
 * now. *len_out gets its length. */
char *event_status_json(const struct status_event *ev, size_t *len_out);

/* Returns an sms.replies event as compact JSON (malloc'd). */
char *event_reply_json(const char *account, const char *provider,
                       const struct inbound_sms *reply, size_t *len_out);

/* Formats the current UTC time as RFC 3339 with milliseconds. */
void event_now(char *out, size_t out_size);

#endif /* WORKER_EVENTS_H */
