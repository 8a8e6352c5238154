/* worker/events.c - the JSON of status and reply events. */
#include "worker/events.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "worker/xalloc.h"

void event_now(char *out, size_t out_size)
{
    struct timespec ts;
    struct tm tm;
    char stamp[32];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, out_size, "%s.%03ldZ", stamp, ts.tv_nsec / 1000000);
}

static json_t *event_str(const char *s)
{
    return s != NULL && *s != '\0' ? json_string(s) : json_null();
}

static char *event_dump(json_t *root, size_t *len_out)
{
    char *s = json_dumps(root, JSON_COMPACT);

    if (s == NULL) /* only on out of memory or invalid UTF-8 */
        s = xstrdup("{}");
    json_decref(root);
    *len_out = strlen(s);
    return s;
}

char *event_status_json(const struct status_event *ev, size_t *len_out)
{
    char at[40];
    json_t *root = json_object();

    event_now(at, sizeof(at));
    json_object_set_new(root, "job_id", event_str(ev->job_id));
    json_object_set_new(root, "type", event_str(ev->type));
    json_object_set_new(root, "account", event_str(ev->account));
    json_object_set_new(root, "provider", event_str(ev->provider));
    json_object_set_new(root, "recipient", event_str(ev->recipient));
    json_object_set_new(root, "state", json_string(sms_state_name(ev->state)));
    json_object_set_new(root, "provider_message_id",
                        event_str(ev->provider_message_id));
    json_object_set_new(root, "provider_status",
                        event_str(ev->provider_status));
    json_object_set_new(root, "segments",
                        ev->segments > 0 ? json_integer(ev->segments)
                                         : json_null());
    json_object_set_new(root, "attempt",
                        ev->attempt > 0 ? json_integer(ev->attempt)
                                        : json_null());
    json_object_set_new(root, "reference", event_str(ev->reference));
    if (ev->error_code != NULL && *ev->error_code != '\0')
        json_object_set_new(
            root, "error",
            json_pack("{s:s, s:s}", "code", ev->error_code, "message",
                      ev->error_message ? ev->error_message : ""));
    else
        json_object_set_new(root, "error", json_null());
    json_object_set_new(root, "at", json_string(at));
    return event_dump(root, len_out);
}

char *event_reply_json(const char *account, const char *provider,
                       const struct inbound_sms *reply, size_t *len_out)
{
    char at[40];
    json_t *root = json_object();

    if (reply->received_at[0] == '\0')
        event_now(at, sizeof(at));
    json_object_set_new(root, "account", event_str(account));
    json_object_set_new(root, "provider", event_str(provider));
    json_object_set_new(root, "from", event_str(reply->from));
    json_object_set_new(root, "to", event_str(reply->to));
    json_object_set_new(root, "text",
                        json_string(reply->text ? reply->text : ""));
    json_object_set_new(
        root, "received_at",
        json_string(reply->received_at[0] ? reply->received_at : at));
    json_object_set_new(root, "provider_message_id",
                        event_str(reply->provider_id));
    return event_dump(root, len_out);
}
