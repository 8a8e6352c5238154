/* tests/fuzz/fuzz_jojka_decode.c - the Jojka decoders on any answer. The
 * first byte picks the HTTP status (bits 0-2), the call answered (bits
 * 3-6) and a Retry-After (bit 7); the rest is the body. Each input goes
 * through decode() and, for poll calls, decode_poll(). */
#include "tests/fuzz/fuzz_common.h"

#define NCALLS 11

static struct account acct;
static struct job *jobs[5];
static struct codec_calls *calls[NCALLS];

static void fuzz_init(void)
{
    fuzz_account(&acct, &codec_jojka);
    jobs[0] = fuzz_job("{\"id\":\"s\",\"account\":\"a\",\"to\":"
                       "\"46709771337\",\"text\":\"hej\"}",
                       JOB_SEND);
    jobs[1] = fuzz_job("{\"id\":\"c\",\"account\":\"a\",\"action\":\"create\","
                       "\"to\":[\"46709771337\",\"46709966666\"],"
                       "\"groups\":[\"g\"],\"text\":\"hej\"}",
                       JOB_CAMPAIGN);
    jobs[2] = fuzz_job("{\"id\":\"k\",\"account\":\"a\",\"action\":"
                       "\"contact-upsert\",\"contacts\":[{\"msisdn\":"
                       "\"46709771337\",\"first_name\":\"A\"}]}",
                       JOB_CONTACTS);
    jobs[3] = fuzz_job("{\"id\":\"k\",\"account\":\"a\",\"action\":"
                       "\"blocklist-add\",\"msisdns\":[\"46709771337\"]}",
                       JOB_CONTACTS);
    jobs[4] = fuzz_job("{\"id\":\"k\",\"account\":\"a\",\"action\":"
                       "\"group-add-member\",\"groups\":[\"g\"],"
                       "\"msisdns\":[\"46709771337\"]}",
                       JOB_CONTACTS);
    for (size_t i = 0; i < 5; i++)
        calls[i] = fuzz_encode(&codec_jojka, &acct, jobs[i]);
    calls[5] = fuzz_poll(&codec_jojka, &acct, OP_POLL_STATUS, "116690255");
    calls[6] = fuzz_poll(&codec_jojka, &acct, OP_POLL_REPLIES, NULL);
    calls[7] = fuzz_poll(&codec_jojka, &acct, OP_CAMPAIGN_CANCEL, "1");
    calls[8] = fuzz_poll(&codec_jojka, &acct, OP_READ,
                         "get_campaign_recipients_status?campaign_id=1");
    calls[9] = fuzz_poll(&codec_jojka, &acct, OP_READ, "export_contacts_list");
    calls[10] = fuzz_poll(&codec_jojka, &acct, OP_READ,
                          "check_if_in_blocklist?msisdn=46709771337");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t job_of[NCALLS] = {0, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0};
    struct call_result res;
    struct callback_result cres;
    char errstr[256];

    if (calls[0] == NULL)
        fuzz_init();
    if (size < 1)
        return 0;
    size_t which = (data[0] >> 3 & 15) % NCALLS;
    struct http_response resp = {
        .status = fuzz_statuses[data[0] & 7],
        .content_type = "application/json",
        .retry_after = data[0] & 128 ? "30" : NULL,
        .body = (const char *)data + 1,
        .body_len = size - 1,
    };
    const struct codec_call *call = &calls[which]->calls[0];
    if (codec_jojka.decode(&res, &acct, jobs[job_of[which]], call, &resp,
                           errstr, sizeof(errstr)) == 0)
        call_result_cleanup(&res);
    if (which >= 5 && codec_jojka.decode_poll(&cres, &acct, call, &resp, errstr,
                                              sizeof(errstr)) == 0)
        callback_result_cleanup(&cres);
    return 0;
}
