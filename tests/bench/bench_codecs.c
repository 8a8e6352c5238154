/* tests/bench/bench_codecs.c - ns per job to parse, encode and decode, per
 * provider. Not a test: build it in a Release configuration and run it,
 *     cmake -B build-release -DCMAKE_BUILD_TYPE=Release
 *     cmake --build build-release --target bench_codecs
 *     build-release/tests/bench_codecs
 * Each row of `cases` is one provider's typical send: a job (one
 * recipient), the provider's answer to it, and its HTTP status; add a row
 * to measure another codec. Each figure is the mean over as many runs as
 * fit in BENCH_SECONDS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codecs/codec.h"

#define BENCH_SECONDS 0.5
#define BENCH_NOW     1700000000

static const struct bench_case {
    const char *provider;
    const char *job;
    long status;
    const char *answer;
    const char *creds[2]; /* credential names; none: "api_key" */
} cases[] = {
    {"jojka",
     "{\"id\":\"order-1001-shipped\",\"account\":\"shop\",\"to\":"
     "[\"46701234567\"],\"from\":\"Shop\",\"text\":\"Din order har "
     "skickats och kommer fram i morgon. Mvh Shop\",\"reference\":"
     "\"order-1001\"}",
     200, "{\"message_id\":\"116690855\"}"},
    {"ip1",
     "{\"id\":\"order-1001-shipped\",\"account\":\"shop\",\"to\":"
     "[\"46701234567\"],\"from\":\"Shop\",\"text\":\"Din order har "
     "skickats och kommer fram i morgon. Mvh Shop\",\"reference\":"
     "\"order-1001\"}",
     201,
     "{\"id\":\"5d9c5e8e7b1f3a0001c2d3e4\",\"sender\":\"Shop\",\"body\":"
     "\"Din order har skickats\",\"owner\":\"ip1-12345\",\"direction\":"
     "\"MT\",\"type\":\"SMS\",\"datacoding\":\"GSM\",\"priority\":1,"
     "\"status\":101,\"reference\":\"order-1001-shipped\",\"tags\":[]}"},
    {"intime",
     "{\"id\":\"order-1001-shipped\",\"account\":\"shop\",\"to\":"
     "[\"46701234567\"],\"from\":\"Shop\",\"text\":\"Din order har "
     "skickats och kommer fram i morgon. Mvh Shop\",\"reference\":"
     "\"order-1001\"}",
     200,
     "4510",
     {"user", "hash"}},
    {"ip1-legacy",
     "{\"id\":\"order-1001-shipped\",\"account\":\"shop\",\"to\":"
     "[\"46701234567\"],\"from\":\"Shop\",\"text\":\"Din order har "
     "skickats och kommer fram i morgon. Mvh Shop\",\"reference\":"
     "\"order-1001\"}",
     200,
     "123456789",
     {"account", "password"}},
};

static double bench_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bench_die(const char *what, const char *provider,
                      const char *errstr)
{
    fprintf(stderr, "bench_codecs: %s %s: %s\n", provider, what, errstr);
    exit(1);
}

/* Runs `body` in batches of 1000 until BENCH_SECONDS pass; ns per run. */
#define BENCH_LOOP(ns_out, body)                          \
    do {                                                  \
        double start_ = bench_now(), end_;                \
        long runs_ = 0;                                   \
        do {                                              \
            for (int k_ = 0; k_ < 1000; k_++) {           \
                body;                                     \
            }                                             \
            runs_ += 1000;                                \
            end_ = bench_now();                           \
        } while (end_ - start_ < BENCH_SECONDS);          \
        (ns_out) = (end_ - start_) * 1e9 / (double)runs_; \
    } while (0)

int main(void)
{
    static struct codec_calls calls;
    char errstr[256], id[64];

    printf("%-12s %12s %12s %12s\n", "provider", "parse ns", "encode ns",
           "decode ns");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct bench_case *c = &cases[i];
        const struct codec *codec = codec_find(c->provider);
        struct account acct = {0};
        char name[] = "shop", url[] = "https://provider.example";
        char key[] = "api_key", secret[] = "s3cret";
        char cb[] = "https://kurir.example/callbacks/shop", tok[] = "t";
        struct job *job = NULL;
        double parse_ns, encode_ns, decode_ns;
        size_t len = strlen(c->job);

        if (codec == NULL)
            bench_die("codec", c->provider, "not registered");
        acct.name = name;
        acct.codec = codec;
        acct.base_url = url;
        acct.creds[0].name = key;
        acct.creds[0].value = secret;
        acct.ncreds = 1;
        for (size_t k = 0; k < 2 && c->creds[k] != NULL; k++) {
            acct.creds[k].name = (char *)c->creds[k];
            acct.creds[k].value = secret;
            acct.ncreds = k + 1;
        }
        acct.callback_url = cb;
        acct.webhook_token = tok;

        BENCH_LOOP(parse_ns, {
            if (job_parse(&job, c->job, len, JOB_SEND, id, sizeof(id), errstr,
                          sizeof(errstr)) != 0)
                bench_die("job_parse", c->provider, errstr);
            job_free(job);
        });
        if (job_parse(&job, c->job, len, JOB_SEND, id, sizeof(id), errstr,
                      sizeof(errstr)) != 0)
            bench_die("job_parse", c->provider, errstr);

        BENCH_LOOP(encode_ns, {
            if (codec->check(&acct, job, errstr, sizeof(errstr)) != 0 ||
                codec->encode(&calls, &acct, job, 0, job->nto, BENCH_NOW,
                              errstr, sizeof(errstr)) != 0)
                bench_die("encode", c->provider, errstr);
            codec_calls_cleanup(&calls);
        });

        if (codec->encode(&calls, &acct, job, 0, job->nto, BENCH_NOW, errstr,
                          sizeof(errstr)) != 0)
            bench_die("encode", c->provider, errstr);
        struct http_response resp = {
            .status = c->status,
            .content_type = "application/json",
            .body = c->answer,
            .body_len = strlen(c->answer),
        };
        BENCH_LOOP(decode_ns, {
            struct call_result res;
            if (codec->decode(&res, &acct, job, &calls.calls[0], &resp, errstr,
                              sizeof(errstr)) != 0 ||
                res.outcome != CALL_ACCEPTED)
                bench_die("decode", c->provider, errstr);
            call_result_cleanup(&res);
        });
        codec_calls_cleanup(&calls);
        job_free(job);
        printf("%-12s %12.0f %12.0f %12.0f\n", c->provider, parse_ns, encode_ns,
               decode_ns);
    }
    return 0;
}
