/* worker/encode.h - `kurir encode`: the requests a job would produce, sent
 * nowhere. */
#ifndef WORKER_ENCODE_H
#define WORKER_ENCODE_H

#include <stdio.h>

#include "worker/accounts.h"

/* Encodes the job in `buf` (`len` bytes) for `acct` and prints every
 * request to `out` (method and URL, headers, a blank line, the body, a blank
 * line), credentials masked as ***. On a validation error prints one line to
 * `err` and returns 2; returns 0 otherwise. `now` is Unix seconds. */
int encode_job(FILE *out, FILE *err, const struct account *acct,
               const char *buf, size_t len, long long now);

#endif /* WORKER_ENCODE_H */
