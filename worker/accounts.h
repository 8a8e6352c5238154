/* worker/accounts.h - the accounts file (CONTRACT §3).
 *
 * Loaded once at start-up into struct account values (codecs/codec.h) with
 * credentials resolved: `env:NAME` from the environment, `file:/path` from a
 * file (as a Kubernetes Secret mounts it), anything else as it stands. Jobs
 * name accounts; credentials never leave this table except into provider
 * requests. */
#ifndef WORKER_ACCOUNTS_H
#define WORKER_ACCOUNTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codecs/codec.h"

/* The longest account name, in bytes (it is in every Redis key of the
 * account and in its callback paths). */
#define ACCOUNT_NAME_MAX 64

/* A credential read from a file, and what the file looked like then. */
struct accounts_secret {
    size_t account, cred; /* items[account].creds[cred] */
    char *path;           /* after "file:" */
    unsigned long long dev, ino, size;
    long long mtime_s, mtime_ns;
    bool failing; /* the last re-read failed (logged once) */
};

struct accounts {
    struct account *items; /* owned */
    size_t count;
    struct accounts_secret *secrets; /* file: credentials, re-read */
    size_t nsecrets;
    int64_t checked_ms; /* last accounts_refresh look at the files */
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

/* Re-reads `file:` credentials whose file changed (another inode, size or
 * mtime: a rewritten file, or a Kubernetes Secret volume's "..data" symlink
 * swapped; the path is stat'ed, never a cached descriptor). Looks at most
 * once a second (`now_ms` monotonic; pass the loop's clock). A changed value
 * replaces the old one in place, so the next encoded request uses it and no
 * request ever sees none; a failed re-read keeps the old value and logs once
 * until it works again. Call on the loop thread only, between encodes (the
 * codecs borrow the values while they encode). webhook_token is not
 * re-read: the listener's thread reads it. Returns how many values
 * changed. */
int accounts_refresh(struct accounts *accounts, int64_t now_ms);

/* Frees the table. accounts_free(NULL) does nothing. */
void accounts_free(struct accounts *accounts);

#endif /* WORKER_ACCOUNTS_H */
