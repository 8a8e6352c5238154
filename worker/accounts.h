/* worker/accounts.h - the accounts file (CONTRACT §3).
 *
 * Loaded once at start-up into struct account values (codecs/codec.h) with
 * credentials resolved: `env:NAME` from the environment, `file:/path` from a
 * file (as a Kubernetes Secret mounts it), anything else as it stands. Jobs
 * name accounts; credentials never leave this table except into provider
 * requests. */
#ifndef WORKER_ACCOUNTS_H
#define WORKER_ACCOUNTS_H

#include <stddef.h>

#include "codecs/codec.h"

struct accounts {
    struct account *items; /* owned */
    size_t count;
};

/* Loads and checks the accounts file at `path`. `public_url` ("" when
 * unset) gives each account its callback_url, public_url/callbacks/<name>.
 * Returns 0 and sets *out; on error returns -1 with errstr naming the file,
 * the account and the field. */
int accounts_load(struct accounts **out, const char *path,
                  const char *public_url, char *errstr, size_t errstr_size);

/* Parses accounts from a JSON document in memory (accounts_load's core,
 * for tests). Same contract. */
int accounts_parse(struct accounts **out, const char *json, size_t len,
                   const char *public_url, char *errstr, size_t errstr_size);

/* Returns the account called `name`, borrowed, or NULL. */
const struct account *accounts_find(const struct accounts *accounts,
                                    const char *name);

/* Frees the table. accounts_free(NULL) does nothing. */
void accounts_free(struct accounts *accounts);

#endif /* WORKER_ACCOUNTS_H */
