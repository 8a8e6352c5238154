/* worker/main.c - env -> config -> worker loop -> exit code; and the
 * `encode` dry run. Process exit happens only here. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <libxml/parser.h>

#include "worker/accounts.h"
#include "worker/config.h"
#include "worker/encode.h"
#include "worker/replay.h"
#include "worker/log.h"
#include "worker/worker.h"
#include "worker/xalloc.h"

#ifdef KURIR_WITH_JEMALLOC
/* jemalloc's settings, read when it starts (MALLOC_CONF in the environment
 * still overrides them). One arena and pages given back after a second:
 * the loop allocates on one thread, and with jemalloc's defaults (four
 * arenas a core, dirty pages kept 10 s) a replica's peak RSS during a
 * 100,000-job drain was 67-74 MiB; with these 49-50 MiB at the same CPU per
 * message (tests/bench/compare). */
const char *malloc_conf =
    "narenas:1,dirty_decay_ms:1000,muzzy_decay_ms:0,tcache_max:4096";
#endif

extern char **environ;

static void usage(FILE *f)
{
    fprintf(
        f, "usage: kurir run\n"
           "       kurir encode --account NAME [--accounts FILE] < job.json\n"
           "       kurir replay [--from-offset N] [--to-offset N] "
           "[--partition P]\n"
           "                    [--max N] [--id JOB] [--dry-run]\n"
           "       kurir probe [URL]\n"
           "       kurir --help | --version\n"
           "\n"
           "run     consume jobs from Kafka until SIGTERM or SIGINT\n"
           "encode  print the HTTP requests a job would produce, sending\n"
           "        nothing (credentials masked); exit 2 on an invalid job\n"
           "replay  send DLQ entries (KURIR_TOPIC_DLQ, to its end at start)\n"
           "        back to their kurir-source-topic with their original key\n"
           "        and headers; exit 1 when some could not be sent\n"
           "probe   GET URL (default: /healthz on KURIR_HTTP_LISTEN's port at\n"
           "        127.0.0.1); exit 0 on HTTP 200, else 1: a container\n"
           "        HEALTHCHECK without curl in the image\n"
           "\n");
}

static void xml_quiet(void *ctx, const char *msg, ...)
{
    (void)ctx;
    (void)msg;
}

static void on_signal(int sig)
{
    (void)sig;
    worker_stop = 1;
}

static int cmd_run(void)
{
    struct config cfg;
    struct worker w;
    char errstr[512];

    if (config_load(&cfg, environ, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "kurir: %s\n", errstr);
        config_cleanup(&cfg);
        return 2;
    }
    log_level = cfg.log_level;
    log_format = cfg.log_format;
    log_info("kurir %s starting", KURIR_VERSION);
    config_log(&cfg);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (worker_init(&w, &cfg, errstr, sizeof(errstr)) != 0) {
        log_error("kurir: %s", errstr);
        config_cleanup(&cfg);
        return 1;
    }
    int ret = worker_run(&w);
    worker_cleanup(&w);
    config_cleanup(&cfg);
    log_info("kurir: exit %d", ret);
    return ret;
}

static char *read_stdin(size_t *len)
{
    size_t cap = 65536, n = 0;
    char *buf = xmalloc(cap);

    for (;;) {
        size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (got == 0)
            break;
        if (n == cap)
            buf = xrealloc(buf, cap *= 2);
    }
    *len = n;
    return buf;
}

static int cmd_encode(int argc, char **argv)
{
    const char *account = NULL;
    const char *path = getenv("KURIR_ACCOUNTS");
    struct accounts *accounts = NULL;
    char errstr[512];

    if (path == NULL)
        path = "/etc/kurir/accounts.json";
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--account") == 0 && i + 1 < argc) {
            account = argv[++i];
        } else if (strcmp(argv[i], "--accounts") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else {
            fprintf(stderr, "kurir: encode: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (account == NULL) {
        fprintf(stderr, "kurir: encode: --account NAME is required\n");
        return 2;
    }
    /* Callback URLs as `kurir run` gives them to providers. */
    const char *public_url = getenv("KURIR_PUBLIC_URL");
    if (accounts_load(&accounts, path, public_url != NULL ? public_url : "",
                      errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "kurir: %s\n", errstr);
        return 2;
    }
    const struct account *acct = accounts_find(accounts, account);
    if (acct == NULL) {
        fprintf(stderr, "kurir: unknown account \"%s\" in %s\n", account, path);
        accounts_free(accounts);
        return 2;
    }
    size_t len;
    char *buf = read_stdin(&len);
    int ret = encode_job(stdout, stderr, acct, buf, len, (long long)time(NULL));
    free(buf);
    accounts_free(accounts);
    return ret;
}

static int cmd_replay(int argc, char **argv)
{
    struct config cfg;
    struct replay_opts opts;
    char errstr[512];
    int ret = 2;

    if (replay_parse_args(&opts, argc, argv, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "kurir: %s\n", errstr);
        return 2;
    }
    if (config_load(&cfg, environ, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "kurir: %s\n", errstr);
        goto out;
    }
    log_level = cfg.log_level;
    ret = replay_run(&cfg, &opts, stdout, errstr, sizeof(errstr));
    if (ret < 0) {
        fprintf(stderr, "kurir: replay: %s\n", errstr);
        ret = 1;
    }

out:
    config_cleanup(&cfg);
    return ret;
}

static size_t probe_discard(char *ptr, size_t size, size_t nmemb, void *opaque)
{
    (void)ptr;
    (void)opaque;
    return size * nmemb;
}

static int cmd_probe(int argc, char **argv)
{
    char url[256];

    if (argc > 3) {
        fprintf(stderr, "kurir: probe: one URL at most\n");
        return 2;
    }
    if (argc == 3) {
        snprintf(url, sizeof(url), "%s", argv[2]);
    } else {
        const char *listen = getenv("KURIR_HTTP_LISTEN");
        const char *colon = listen != NULL ? strrchr(listen, ':') : NULL;
        snprintf(url, sizeof(url), "http://127.0.0.1:%s/healthz",
                 colon != NULL ? colon + 1 : "8080");
    }
    CURL *easy = curl_easy_init();
    long status = 0;
    if (easy == NULL)
        return 1;
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, probe_discard);
    CURLcode result = curl_easy_perform(easy);
    if (result == CURLE_OK)
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(easy);
    if (status != 200) {
        fprintf(stderr, "kurir: probe %s: %s\n", url,
                result != CURLE_OK ? curl_easy_strerror(result) : "not 200");
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int ret;

    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("kurir %s\n", KURIR_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        config_print_help();
        return 0;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    xmlInitParser();
    /* libxml2 prints some errors even with XML_PARSE_NOERROR; the codecs
     * return them as values, and only the worker logs. */
    xmlSetGenericErrorFunc(NULL, xml_quiet);
    if (strcmp(argv[1], "run") == 0) {
        ret = cmd_run();
    } else if (strcmp(argv[1], "encode") == 0) {
        ret = cmd_encode(argc, argv);
    } else if (strcmp(argv[1], "replay") == 0) {
        ret = cmd_replay(argc - 1, argv + 1);
    } else if (strcmp(argv[1], "probe") == 0) {
        ret = cmd_probe(argc, argv);
    } else {
        fprintf(stderr, "kurir: unknown command %s\n", argv[1]);
        usage(stderr);
        ret = 2;
    }
    xmlCleanupParser();
    curl_global_cleanup();
    return ret;
}
