/* tests/fuzz/fuzz_intime_decode.c - libFuzzer target: InTime answers and
 * status callbacks.
 *
 * The first byte picks the endpoint the answer is for (and the HTTP
 * status); the rest is the answer body, then also a callback's form body
 * and query. Nothing may crash, leak or hang. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char cred1[] = "user", cred2[] = "hash";
    static struct account acct;
    static const long statuses[] = {200, 200, 200, 500, 429, 403, 404, 0};
    char errstr[256];
    struct call_result res;
    struct callback_result cb;

    if (acct.name == NULL)
        fuzz_account_creds(&acct, &codec_intime, cred1, cred2);
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    struct codec_call call = {
        .op = (sel & 15) == 0   ? OP_SEND
              : (sel & 15) == 1 ? OP_CANCEL
                                : OP_CONTACTS,
        .step = (sel & 15) % 12,
        .count = (sel & 15) == 0 ? (size_t)(sel >> 4) + 1 : 0,
        .first = 1234567,
    };
    struct http_response resp = {
        .status = statuses[(sel >> 4) & 7],
        .body = body,
        .body_len = len,
    };

    if (codec_intime.decode(&res, &acct, NULL, &call, &resp, errstr,
                            sizeof(errstr)) == 0)
        call_result_cleanup(&res);

    /* The same bytes as a status callback: form body, then query. */
    char query[512];
    size_t qlen = len < sizeof(query) - 1 ? len : sizeof(query) - 1;
    memcpy(query, body, qlen);
    query[qlen] = '\0';
    struct http_inbound in = {
        .method = "POST",
        .query = (sel & 1) ? query : NULL,
        .body = body,
        .body_len = (sel & 1) ? 0 : len,
    };
    codec_intime.callback(&cb, &acct, CALLBACK_STATUS, &in, errstr,
                          sizeof(errstr));
    callback_result_cleanup(&cb);
    return 0;
}
