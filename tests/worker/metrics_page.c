/* tests/worker/metrics_page.c - prints a /metrics page with every metric of
 * the registry given a sample, for tests/deploy/check: promtool checks the
 * page, and the dashboard's and alert rules' expressions may only name
 * metrics the page defines. */
#include <stdio.h>

#include "worker/metrics.h"

int main(void)
{
    struct metrics m;

    metrics_init(&m, KURIR_VERSION);
    metrics_count(&m, M_JOBS_CONSUMED, ML("sms.send", "done"), 12);
    metrics_count(&m, M_JOBS_CONSUMED, ML("sms.send", "dlq"), 1);
    metrics_count(&m, M_STATUS_EVENTS, ML("submitted"), 11);
    metrics_count(&m, M_STATUS_EVENTS, ML("delivered"), 9);
    metrics_count(&m, M_PROVIDER_REQUESTS, ML("shop", "jojka", "2xx"), 11);
    metrics_count(&m, M_PROVIDER_REQUESTS, ML("shop", "jojka", "5xx"), 1);
    metrics_observe(&m, M_PROVIDER_LATENCY, ML("shop"), 0.042);
    metrics_set(&m, M_PROVIDER_IN_FLIGHT, NULL, 3);
    metrics_count(&m, M_RATELIMIT_WAITS, ML("shop"), 2);
    metrics_count(&m, M_RATELIMIT_TOKENS, ML("shop"), 12);
    metrics_set(&m, M_SCHEDULED_BACKLOG, NULL, 4);
    metrics_set(&m, M_RETRY_BACKLOG, NULL, 1);
    metrics_set(&m, M_UNITS_IN_FLIGHT, NULL, 3);
    metrics_set(&m, M_UNITS_PARKED, ML("ratelimit"), 2);
    metrics_set(&m, M_KAFKA_LAG, ML("sms.send", "0"), 17);
    metrics_set(&m, M_KAFKA_OLDEST_AGE, ML("sms.send", "0"), 0.8);
    metrics_set(&m, M_KAFKA_ASSIGNED, NULL, 1);
    metrics_count(&m, M_KAFKA_ERRORS, ML("_TRANSPORT"), 1);
    metrics_set(&m, M_KAFKA_BROKER_ERRORS, ML("consumer", "tx"), 0);
    metrics_set(&m, M_WEBHOOK_REQUESTS, ML("2xx"), 5);
    metrics_set(&m, M_REDIS_UP, NULL, 1);
    metrics_count(&m, M_REDIS_ERRORS, NULL, 0);
    metrics_count(&m, M_REDIS_EPOCH_CHANGES, NULL, 0);
    fputs(metrics_render(&m), stdout);
    metrics_free(&m);
    return 0;
}
