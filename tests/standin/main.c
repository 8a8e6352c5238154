/* tests/standin/main.c - kurir-standin: command line, start-up, shutdown.
 *
 *   kurir-standin --listen 127.0.0.1:0 --accounts FILE
 *                 [--callback-inbound-<provider> URL ...] [options]
 *
 * Prints exactly one line "listening on HOST:PORT" on stdout once it accepts
 * connections, then runs until SIGTERM or SIGINT and exits 0. */
#include "standin.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <libxml/parser.h>

struct standin *standin;

static void usage(FILE *f)
{
    fputs("usage: kurir-standin --accounts FILE [--listen HOST:PORT]\n"
          "       [--callback-inbound-ip1 URL] "
          "[--callback-inbound-ip1-legacy URL]\n"
          "       [--record N] [--threads N] [--delivery-ms MS] "
          "[--retry-ms MS]\n"
          "       [--max-tries N] [--callback-timeout-ms MS] [--hold-ms MS]\n"
          "       [--max-body BYTES] [--seed N]\n"
          "Plays InTime (/api/1.0/), iP.1 REST (/v2/), iP.1 legacy\n"
          "(/sendsms.aspx, /sendSms/sendSms.asmx) and Jojka (/websms/api/)\n"
          "on one port; control endpoint under /_standin/. See "
          "docs/standins.md.\n",
          f);
}

static int int_arg(const char *opt, const char *value, long min, long max,
                   long *out)
{
    if (value == NULL || parse_long(out, value) != 0 || *out < min ||
        *out > max) {
        fprintf(stderr, "kurir-standin: %s wants a number in %ld..%ld\n", opt,
                min, max);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct standin sd;
    const char *listen = "127.0.0.1:0";
    const char *accounts = NULL;
    long record_size = 10000, threads = 1, seed = 1;
    char errstr[512];
    char host[64];
    int port = 0, bound = 0;
    sigset_t sigs;
    int sig;

    standin = &sd;
    pthread_mutex_init(&sd.lock, NULL);
    sd.settings.delivery_ms = 50;
    sd.settings.retry_ms = 200;
    sd.settings.max_tries = 10;
    sd.settings.callback_timeout_ms = 2000;
    sd.settings.hold_ms = 30000;
    sd.settings.max_body = 8 * 1024 * 1024;
    for (int p = 0; p <= PROV_COUNT; p++) {
        sd.faults[p].retry_after = 1;
        sd.faults[p].remaining = -1;
    }

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (v == NULL) {
            fprintf(stderr, "kurir-standin: %s wants a value\n", a);
            return 2;
        }
        i++;
        if (strcmp(a, "--listen") == 0) {
            listen = v;
        } else if (strcmp(a, "--accounts") == 0) {
            accounts = v;
        } else if (strncmp(a, "--callback-inbound-", 19) == 0) {
            int p = provider_parse(a + 19);
            if (p < 0) {
                fprintf(stderr, "kurir-standin: unknown provider in %s\n", a);
                return 2;
            }
            free(sd.inbound_default[p]);
            sd.inbound_default[p] = xstrdup(v);
        } else if (strcmp(a, "--record") == 0) {
            if (int_arg(a, v, 1, 10000000, &record_size) != 0)
                return 2;
        } else if (strcmp(a, "--threads") == 0) {
            if (int_arg(a, v, 1, 64, &threads) != 0)
                return 2;
        } else if (strcmp(a, "--delivery-ms") == 0) {
            if (int_arg(a, v, 0, 86400000, &n) != 0)
                return 2;
            sd.settings.delivery_ms = (int)n;
        } else if (strcmp(a, "--retry-ms") == 0) {
            if (int_arg(a, v, 0, 86400000, &n) != 0)
                return 2;
            sd.settings.retry_ms = (int)n;
        } else if (strcmp(a, "--max-tries") == 0) {
            if (int_arg(a, v, 1, 1000, &n) != 0)
                return 2;
            sd.settings.max_tries = (int)n;
        } else if (strcmp(a, "--callback-timeout-ms") == 0) {
            if (int_arg(a, v, 1, 600000, &n) != 0)
                return 2;
            sd.settings.callback_timeout_ms = (int)n;
        } else if (strcmp(a, "--hold-ms") == 0) {
            if (int_arg(a, v, 0, 3600000, &n) != 0)
                return 2;
            sd.settings.hold_ms = (int)n;
        } else if (strcmp(a, "--max-body") == 0) {
            if (int_arg(a, v, 1024, 1L << 30, &n) != 0)
                return 2;
            sd.settings.max_body = (size_t)n;
        } else if (strcmp(a, "--seed") == 0) {
            if (int_arg(a, v, 0, 0x7FFFFFFFL, &seed) != 0)
                return 2;
        } else {
            fprintf(stderr, "kurir-standin: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (accounts == NULL) {
        fputs("kurir-standin: --accounts FILE is required\n", stderr);
        return 2;
    }
    const char *colon = strrchr(listen, ':');
    long lport;
    if (colon == NULL || (size_t)(colon - listen) >= sizeof(host) ||
        parse_long(&lport, colon + 1) != 0 || lport < 0 || lport > 65535) {
        fprintf(stderr, "kurir-standin: --listen wants HOST:PORT, got %s\n",
                listen);
        return 2;
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    port = (int)lport;

    if (accounts_load(&sd.accts, accounts, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "kurir-standin: %s\n", errstr);
        return 2;
    }
    rng_seed((uint64_t)seed);
    store_init(&sd.store);
    record_init(&sd.record, (size_t)record_size);
    sd.started_ms = now_ms();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    xmlInitParser();

    /* Threads started from here inherit the blocked signals; main waits. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    sd.events = events_start(errstr, sizeof(errstr));
    if (sd.events == NULL || server_start(host, port, (int)threads, &bound,
                                          errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "kurir-standin: %s\n", errstr);
        return 1;
    }
    printf("listening on %s:%d\n", host, bound);
    fflush(stdout);

    while (sigwait(&sigs, &sig) != 0)
        ;

    pthread_mutex_lock(&sd.lock);
    sd.stopping = true;
    pthread_mutex_unlock(&sd.lock);
    events_stop(sd.events);
    server_stop();
    events_free(sd.events);

    store_free(&sd.store);
    accounts_free(&sd.accts);
    record_free(&sd.record);
    for (size_t i = 0; i < sd.violations.len; i++)
        free(sd.violations.items[i]);
    ptrvec_free(&sd.violations);
    for (int p = 0; p <= PROV_COUNT; p++)
        free(sd.faults[p].provider_body);
    for (int p = 0; p < PROV_COUNT; p++)
        free(sd.inbound_default[p]);
    xmlCleanupParser();
    curl_global_cleanup();
    pthread_mutex_destroy(&sd.lock);
    return 0;
}
