/* worker/echo.c - the headers of a job that its events carry back. */
#include "worker/echo.h"

#include <stdlib.h>
#include <string.h>

bool echo_wanted(const char *name)
{
    return strcmp(name, "traceparent") == 0 ||
           strcmp(name, "tracestate") == 0 ||
           strncmp(name, "kurir-echo-", 11) == 0;
}

/* Keeps one header when it is echoed and fits. */
static void echo_add(json_t *obj, const char *name, const void *value,
                     size_t len)
{
    if (!echo_wanted(name) || value == NULL || len > ECHO_VALUE_MAX ||
        json_object_size(obj) >= ECHO_MAX)
        return;
    json_t *v = json_stringn((const char *)value, len);
    if (v != NULL) /* NULL: not UTF-8; such a value is dropped */
        json_object_set_new(obj, name, v);
}

static char *echo_dump(json_t *obj)
{
    char *s = json_object_size(obj) > 0 ? json_dumps(obj, JSON_COMPACT) : NULL;

    json_decref(obj);
    return s;
}

char *echo_from_message(const rd_kafka_message_t *rkm)
{
    rd_kafka_headers_t *hdrs = NULL;
    const char *name;
    const void *value;
    size_t len;

    if (rd_kafka_message_headers(rkm, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return NULL;
    json_t *obj = json_object();
    for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &len) ==
                       RD_KAFKA_RESP_ERR_NO_ERROR;
         i++)
        echo_add(obj, name, value, len);
    return echo_dump(obj);
}

char *echo_from_json(const json_t *src)
{
    const char *name;
    json_t *v;

    if (!json_is_object(src))
        return NULL;
    json_t *obj = json_object();
    json_object_foreach((json_t *)src, name, v)
    {
        if (json_is_string(v))
            echo_add(obj, name, json_string_value(v), json_string_length(v));
    }
    return echo_dump(obj);
}

rd_kafka_headers_t *echo_headers(const char *json)
{
    const char *name;
    json_t *v;

    if (json == NULL)
        return NULL;
    json_t *obj = json_loads(json, 0, NULL);
    if (!json_is_object(obj) || json_object_size(obj) == 0) {
        json_decref(obj);
        return NULL;
    }
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(json_object_size(obj));
    json_object_foreach(obj, name, v)
    {
        if (json_is_string(v))
            rd_kafka_header_add(hdrs, name, -1, json_string_value(v),
                                (ssize_t)json_string_length(v));
    }
    json_decref(obj);
    return hdrs;
}
