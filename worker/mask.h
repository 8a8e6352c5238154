/* worker/mask.h - hiding an account's secrets in text shown to people.
 *
 * `kurir encode` prints the requests a job would make; the secrets in them
 * (api_key, hash, password) must not reach a terminal or a log, while the
 * names that say which account a request uses (user, account) must. A
 * secret can stand in a request in any of the encodings the codecs use, so
 * each is masked raw, percent-encoded (%20), form-encoded (+ for a space)
 * and XML-escaped (&amp; ...). */
#ifndef WORKER_MASK_H
#define WORKER_MASK_H

#include <stdbool.h>
#include <stddef.h>

#include "codecs/codec.h"

/* Returns true for the credential names whose values are secrets:
 * everything but "user" and "account", so a new credential is a secret
 * until said otherwise. */
bool mask_cred_is_secret(const char *name);

/* Returns a malloc'd, NUL-terminated copy of text[0..len) (the caller
 * frees it) with every secret of acct, in each of its encodings, replaced
 * by "***" wherever it stands as a whole token (not inside a longer run
 * of letters and digits, so a short secret is not found inside a word).
 * Sets *out_len when out_len is not NULL. Never NULL. */
char *mask_secrets(const struct account *acct, const char *text, size_t len,
                   size_t *out_len);

#endif /* WORKER_MASK_H */
