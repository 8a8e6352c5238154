/* tests/fuzz/fuzz_job.c - job_parse on any bytes, for every topic; what
 * parses is then checked and encoded by the Jojka and iP.1 codecs. */
#include "tests/fuzz/fuzz_common.h"

static void fuzz_codec(const struct codec *codec, const struct job *job)
{
    struct account acct;
    struct codec_calls *calls = calloc(1, sizeof(*calls));
    char errstr[256];

    fuzz_account(&acct, codec);
    if (codec->check(&acct, job, errstr, sizeof(errstr)) == 0) {
        size_t max = job->type == JOB_CAMPAIGN ? codec->campaign_max_recipients
                                               : codec->send_max_recipients;
        size_t count = job->nto < max ? job->nto : max;
        codec->encode(calls, &acct, job, 0, count, 1700000000, errstr,
                      sizeof(errstr));
    }
    codec_calls_cleanup(calls);
    free(calls);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum job_type types[] = {JOB_SEND, JOB_CAMPAIGN, JOB_CONTACTS};

    for (size_t t = 0; t < 3; t++) {
        struct job *job = NULL;
        char id[64], errstr[256];
        if (job_parse(&job, (const char *)data, size, types[t], id, sizeof(id),
                      errstr, sizeof(errstr)) != 0)
            continue;
        fuzz_codec(&codec_jojka, job);
        fuzz_codec(&codec_ip1, job);
        job_free(job);
    }
    return 0;
}
