/* worker/dlq.c - the dead-letter copy of a job. See dlq.h. */
#include "worker/dlq.h"

#include <stdio.h>
#include <string.h>

bool dlq_is_kurir_header(const char *name)
{
    return strncmp(name, DLQ_HEADER_PREFIX, strlen(DLQ_HEADER_PREFIX)) == 0;
}

rd_kafka_headers_t *dlq_headers(const rd_kafka_message_t *src,
                                const char *error)
{
    rd_kafka_headers_t *orig = NULL;
    size_t n = 0;

    /* librdkafka's accessor takes a non-const message; it only reads. */
    if (rd_kafka_message_headers((rd_kafka_message_t *)src, &orig) !=
        RD_KAFKA_RESP_ERR_NO_ERROR)
        orig = NULL;
    if (orig != NULL)
        n = rd_kafka_header_cnt(orig);
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(n + 4);
    for (size_t i = 0; i < n; i++) {
        const char *name;
        const void *value;
        size_t size;
        if (rd_kafka_header_get_all(orig, i, &name, &value, &size) !=
            RD_KAFKA_RESP_ERR_NO_ERROR)
            break;
        if (dlq_is_kurir_header(name))
            continue;
        /* A NULL value is a header without a value: kept as such. */
        rd_kafka_header_add(hdrs, name, -1, value, value ? (ssize_t)size : 0);
    }
    char num[32];
    rd_kafka_header_add(hdrs, "kurir-error", -1, error, -1);
    rd_kafka_header_add(hdrs, "kurir-source-topic", -1,
                        rd_kafka_topic_name(src->rkt), -1);
    snprintf(num, sizeof(num), "%d", (int)src->partition);
    rd_kafka_header_add(hdrs, "kurir-source-partition", -1, num, -1);
    snprintf(num, sizeof(num), "%lld", (long long)src->offset);
    rd_kafka_header_add(hdrs, "kurir-source-offset", -1, num, -1);
    return hdrs;
}
