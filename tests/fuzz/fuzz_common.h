/* tests/fuzz/fuzz_common.h - what the codec fuzz targets share: a test
 * account, jobs parsed once, and the call list a job or poll encodes to.
 * Header-only so that each target stays one file plus one line in
 * tests/fuzz/CMakeLists.txt. */
#ifndef TESTS_FUZZ_FUZZ_COMMON_H
#define TESTS_FUZZ_FUZZ_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codecs/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An account with every optional field set, for `codec`. */
static inline void fuzz_account(struct account *acct, const struct codec *codec)
{
    static char name[] = "fuzz", url[] = "https://provider.example/api";
    static char key[] = "api_key", secret[] = "s3cret";
    static char sender[] = "Shop", token[] = "tok en";
    static char cb[] = "https://kurir.example/callbacks/fuzz";

    memset(acct, 0, sizeof(*acct));
    acct->name = name;
    acct->codec = codec;
    acct->base_url = url;
    acct->creds[0].name = key;
    acct->creds[0].value = secret;
    acct->ncreds = 1;
    acct->default_sender = sender;
    acct->webhook_token = token;
    acct->callback_url = cb;
}

/* The same for a codec whose credentials are two other names (InTime's
 * user/hash, iP.1 legacy's account/password); the names must be static. */
static inline void fuzz_account_creds(struct account *acct,
                                      const struct codec *codec, char *name1,
                                      char *name2)
{
    static char value[] = "s&cret";

    fuzz_account(acct, codec);
    acct->creds[0].name = name1;
    acct->creds[0].value = value;
    acct->creds[1].name = name2;
    acct->creds[1].value = value;
    acct->ncreds = 2;
}

/* Parses a job from a literal; aborts when the literal is wrong. */
static inline struct job *fuzz_job(const char *json, enum job_type type)
{
    struct job *job = NULL;
    char id[64], errstr[256];

    if (job_parse(&job, json, strlen(json), type, id, sizeof(id), errstr,
                  sizeof(errstr)) != 0)
        abort();
    return job;
}

/* Encodes `job` for `codec` into a new call list; aborts on failure. */
static inline struct codec_calls *fuzz_encode(const struct codec *codec,
                                              const struct account *acct,
                                              const struct job *job)
{
    struct codec_calls *calls = calloc(1, sizeof(*calls));
    char errstr[256];

    if (calls == NULL ||
        codec->encode(calls, acct, job, 0, job->nto, 1700000000, errstr,
                      sizeof(errstr)) != 0 ||
        calls->ncalls == 0)
        abort();
    return calls;
}

/* Encodes a poll or read for `codec` into a new call list; aborts on
 * failure. */
static inline struct codec_calls *fuzz_poll(const struct codec *codec,
                                            const struct account *acct,
                                            enum codec_op op, const char *id)
{
    struct codec_calls *calls = calloc(1, sizeof(*calls));
    char errstr[256];

    if (calls == NULL || codec->encode_poll(calls, acct, op, id, 1700000000,
                                            errstr, sizeof(errstr)) != 0)
        abort();
    return calls;
}

/* The HTTP statuses a decode target tries, picked by the first byte. */
static const long fuzz_statuses[8] = {200, 201, 204, 400, 401, 404, 429, 503};

#endif /* TESTS_FUZZ_FUZZ_COMMON_H */
