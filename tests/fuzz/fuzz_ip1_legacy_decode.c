/* tests/fuzz/fuzz_ip1_legacy_decode.c - libFuzzer target: iP.1 legacy URL
 * and SOAP answers, status polls and incoming-SMS callbacks.
 *
 * The first byte picks the operation the answer is for (and the HTTP
 * status); the rest is the answer body, then also an incoming-SMS query.
 * Nothing may crash, leak or hang. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char cred1[] = "account", cred2[] = "password";
    static struct account acct;
    static const long statuses[] = {200, 200, 200, 500, 500, 429, 403, 0};
    char errstr[256];
    struct call_result res;
    struct callback_result cb;

    if (acct.name == NULL)
        fuzz_account_creds(&acct, &codec_ip1_legacy, cred1, cred2);
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    int step = (sel & 15) % 11; /* the codec's eleven operations */
    struct codec_call call = {
        .op = step == 7 || step == 8 ? OP_POLL_STATUS : OP_SEND,
        .step = step,
        .count = (size_t)(sel >> 6) + 1,
        .first = 123456,
    };
    struct http_response resp = {
        .status = statuses[(sel >> 4) & 7],
        .body = body,
        .body_len = len,
    };

    if (call.op == OP_POLL_STATUS) {
        if (codec_ip1_legacy.decode_poll(&cb, &acct, &call, &resp, errstr,
                                         sizeof(errstr)) == 0)
            callback_result_cleanup(&cb);
    } else if (codec_ip1_legacy.decode(&res, &acct, NULL, &call, &resp, errstr,
                                       sizeof(errstr)) == 0) {
        call_result_cleanup(&res);
    }

    char query[512];
    size_t qlen = len < sizeof(query) - 1 ? len : sizeof(query) - 1;
    memcpy(query, body, qlen);
    query[qlen] = '\0';
    struct http_inbound in = {.method = "GET", .query = query};
    codec_ip1_legacy.callback(&cb, &acct, CALLBACK_INBOUND, &in, errstr,
                              sizeof(errstr));
    callback_result_cleanup(&cb);
    return 0;
}
