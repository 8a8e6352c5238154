/* tests/fuzz/fuzz_ip1_decode.c - the iP.1 REST v2 decoders on any bytes.
 * The first byte picks the HTTP status (bits 0-2), the call answered or
 * the callback (bits 3-6) and a Retry-After (bit 7); the rest is the body
 * of the answer or of the callback. */
#include "tests/fuzz/fuzz_common.h"

#define NCALLS 5

static struct account acct;
static struct job *jobs[3];
static struct codec_calls *calls[NCALLS];

static void fuzz_init(void)
{
    fuzz_account(&acct, &codec_ip1);
    jobs[0] = fuzz_job("{\"id\":\"s\",\"account\":\"a\",\"to\":"
                       "[\"46709771337\",\"46701234567\"],\"text\":\"hej\"}",
                       JOB_SEND);
    jobs[1] = fuzz_job("{\"id\":\"k\",\"account\":\"a\",\"action\":"
                       "\"contact-upsert\",\"contacts\":[{\"msisdn\":"
                       "\"46709771337\",\"first_name\":\"A\"}]}",
                       JOB_CONTACTS);
    jobs[2] = fuzz_job("{\"id\":\"k\",\"account\":\"a\",\"action\":"
                       "\"blocklist-remove\",\"msisdns\":[\"46709771337\"]}",
                       JOB_CONTACTS);
    for (size_t i = 0; i < 3; i++)
        calls[i] = fuzz_encode(&codec_ip1, &acct, jobs[i]);
    calls[3] = fuzz_poll(&codec_ip1, &acct, OP_CANCEL, "b-1");
    calls[4] = fuzz_poll(&codec_ip1, &acct, OP_READ, "batches/b-1/messages");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t job_of[NCALLS] = {0, 1, 2, 0, 0};
    struct call_result res;
    struct callback_result cres;
    char errstr[256];

    if (calls[0] == NULL)
        fuzz_init();
    if (size < 1)
        return 0;
    size_t which = (data[0] >> 3 & 15) % (NCALLS + 2);
    const char *body = (const char *)data + 1;
    if (which >= NCALLS) {
        struct http_inbound in = {
            .method = data[0] & 128 ? "POST" : "PUT",
            .query = "token=tok%20en",
            .content_type = "application/json",
            .body = body,
            .body_len = size - 1,
        };
        codec_ip1.callback(&cres, &acct,
                           which == NCALLS ? CALLBACK_STATUS : CALLBACK_INBOUND,
                           &in, errstr, sizeof(errstr));
        callback_result_cleanup(&cres);
        return 0;
    }
    struct http_response resp = {
        .status = fuzz_statuses[data[0] & 7],
        .content_type = "application/json",
        .retry_after = data[0] & 128 ? "7" : NULL,
        .body = body,
        .body_len = size - 1,
    };
    if (codec_ip1.decode(&res, &acct, jobs[job_of[which]],
                         &calls[which]->calls[0], &resp, errstr,
                         sizeof(errstr)) == 0)
        call_result_cleanup(&res);
    return 0;
}
