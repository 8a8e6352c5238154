/* worker/accounts.c - the accounts file, credentials resolved. */
#include "worker/accounts.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "worker/log.h"
#include "worker/xalloc.h"

/* A secret file may end with the newline an editor or `echo` added. */
static char *accounts_read_secret_file(const char *path, char *errstr,
                                       size_t errstr_size)
{
    FILE *f = fopen(path, "rb");
    char buf[4096];

    if (f == NULL) {
        snprintf(errstr, errstr_size, "cannot read %s: %s", path,
                 strerror(errno));
        return NULL;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return xstrdup(buf);
}

/* Resolves a credential reference; returns a malloc'd value or NULL with
 * errstr set (the message names the variable or file, never the value). */
static char *accounts_resolve(const char *ref, char *errstr, size_t errstr_size)
{
    if (strncmp(ref, "env:", 4) == 0) {
        const char *v = getenv(ref + 4);
        if (v == NULL) {
            snprintf(errstr, errstr_size, "environment variable %s is not set",
                     ref + 4);
            return NULL;
        }
        return xstrdup(v);
    }
    if (strncmp(ref, "file:", 5) == 0)
        return accounts_read_secret_file(ref + 5, errstr, errstr_size);
    return xstrdup(ref);
}

static void account_cleanup(struct account *a)
{
    free(a->name);
    free(a->base_url);
    for (size_t i = 0; i < a->ncreds; i++) {
        free(a->creds[i].name);
        if (a->creds[i].value != NULL) /* scrub secrets before free */
            memset(a->creds[i].value, 0, strlen(a->creds[i].value));
        free(a->creds[i].value);
    }
    free(a->default_sender);
    if (a->webhook_token != NULL)
        memset(a->webhook_token, 0, strlen(a->webhook_token));
    free(a->webhook_token);
    free(a->callback_url);
}

/* "options": {"legacy_unconfirmed_soap": bool, "poll_statuses": bool,
 * "schedule_at_provider": bool}. Absent is all false; an unknown option is
 * an error, so a typo does not pass silently. */
static int accounts_parse_options(struct account *a, const char *name,
                                  json_t *opts, char *errstr,
                                  size_t errstr_size)
{
    static const struct {
        const char *key;
        size_t offset;
    } known[] = {
        {"legacy_unconfirmed_soap",
         offsetof(struct account_options, legacy_unconfirmed_soap)},
        {"poll_statuses", offsetof(struct account_options, poll_statuses)},
        {"schedule_at_provider",
         offsetof(struct account_options, schedule_at_provider)},
    };
    const char *key;
    json_t *value;

    if (opts == NULL)
        return 0;
    if (!json_is_object(opts)) {
        snprintf(errstr, errstr_size,
                 "account %s: \"options\" must be an object", name);
        return -1;
    }
    json_object_foreach(opts, key, value)
    {
        size_t i = 0;
        while (i < sizeof(known) / sizeof(known[0]) &&
               strcmp(key, known[i].key) != 0)
            i++;
        if (i == sizeof(known) / sizeof(known[0])) {
            snprintf(errstr, errstr_size,
                     "account %s: unknown option \"%s\" "
                     "(legacy_unconfirmed_soap, poll_statuses, "
                     "schedule_at_provider)",
                     name, key);
            return -1;
        }
        if (!json_is_boolean(value)) {
            snprintf(errstr, errstr_size,
                     "account %s: option \"%s\" must be true or false", name,
                     key);
            return -1;
        }
        *(bool *)((char *)&a->options + known[i].offset) = json_is_true(value);
    }
    return 0;
}

static int accounts_parse_one(struct account *a, const char *name, json_t *obj,
                              const char *public_url, char *errstr,
                              size_t errstr_size)
{
    static const char *const known[] = {
        "provider",   "base_url",       "credentials",
        "rate_limit", "default_sender", "webhook_token",
        "standin",    "options",        NULL,
    };
    char err[256];
    const char *key;
    json_t *value;

    if (!json_is_object(obj)) {
        snprintf(errstr, errstr_size, "account %s: not an object", name);
        return -1;
    }
    json_object_foreach(obj, key, value)
    {
        size_t i = 0;
        while (known[i] != NULL && strcmp(known[i], key) != 0)
            i++;
        if (known[i] == NULL) {
            snprintf(errstr, errstr_size, "account %s: unknown field \"%s\"",
                     name, key);
            return -1;
        }
    }

    /* The name is in every Redis key of the account and in callback
     * paths: bounded, so a job id of JOB_MAX_ID bytes still fits. */
    if (strlen(name) > ACCOUNT_NAME_MAX) {
        snprintf(errstr, errstr_size,
                 "account %.40s...: the name is %zu bytes; at most %d", name,
                 strlen(name), ACCOUNT_NAME_MAX);
        return -1;
    }
    a->name = xstrdup(name);
    const char *provider = json_string_value(json_object_get(obj, "provider"));
    if (provider == NULL) {
        snprintf(errstr, errstr_size, "account %s: \"provider\" is missing",
                 name);
        return -1;
    }
    a->codec = codec_find(provider);
    if (a->codec == NULL) {
        snprintf(errstr, errstr_size,
                 "account %s: unknown provider \"%s\" (intime, ip1, "
                 "ip1-legacy or jojka)",
                 name, provider);
        return -1;
    }
    const char *base = json_string_value(json_object_get(obj, "base_url"));
    if (base == NULL || (strncmp(base, "http://", 7) != 0 &&
                         strncmp(base, "https://", 8) != 0)) {
        snprintf(errstr, errstr_size,
                 "account %s: \"base_url\" must be an http(s) URL", name);
        return -1;
    }
    a->base_url = xstrdup(base);
    size_t blen = strlen(a->base_url);
    while (blen > 0 && a->base_url[blen - 1] == '/')
        a->base_url[--blen] = '\0';

    json_t *creds = json_object_get(obj, "credentials");
    if (!json_is_object(creds)) {
        snprintf(errstr, errstr_size,
                 "account %s: \"credentials\" must be an object", name);
        return -1;
    }
    json_object_foreach(creds, key, value)
    {
        if (a->ncreds == ACCOUNT_MAX_CREDS) {
            snprintf(errstr, errstr_size, "account %s: too many credentials",
                     name);
            return -1;
        }
        if (!json_is_string(value)) {
            snprintf(errstr, errstr_size,
                     "account %s: credential \"%s\" must be a string", name,
                     key);
            return -1;
        }
        char *v = accounts_resolve(json_string_value(value), err, sizeof(err));
        if (v == NULL) {
            snprintf(errstr, errstr_size, "account %s: credential \"%s\": %s",
                     name, key, err);
            return -1;
        }
        a->creds[a->ncreds].name = xstrdup(key);
        a->creds[a->ncreds].value = v;
        a->ncreds++;
    }
    for (size_t i = 0; a->codec->creds != NULL && a->codec->creds[i]; i++) {
        if (account_cred(a, a->codec->creds[i]) == NULL) {
            snprintf(errstr, errstr_size,
                     "account %s: %s needs credential \"%s\"", name,
                     a->codec->name, a->codec->creds[i]);
            return -1;
        }
    }

    json_t *rl = json_object_get(obj, "rate_limit");
    if (!json_is_object(rl)) {
        snprintf(errstr, errstr_size,
                 "account %s: \"rate_limit\" {\"per_second\", \"burst\"} is "
                 "missing",
                 name);
        return -1;
    }
    json_t *ps = json_object_get(rl, "per_second");
    json_t *burst = json_object_get(rl, "burst");
    if (!json_is_number(ps) || json_number_value(ps) <= 0) {
        snprintf(errstr, errstr_size,
                 "account %s: \"rate_limit.per_second\" must be a number > 0",
                 name);
        return -1;
    }
    a->per_second = json_number_value(ps);
    /* Without a burst the bucket holds a second's worth, and always room
     * for one segment: a slower rate still sends, now and then. */
    a->burst = a->per_second < 1 ? 1 : a->per_second;
    if (burst != NULL) {
        if (!json_is_number(burst) || json_number_value(burst) < 1) {
            snprintf(errstr, errstr_size,
                     "account %s: \"rate_limit.burst\" must be a number >= 1",
                     name);
            return -1;
        }
        a->burst = json_number_value(burst);
    }

    json_t *sender = json_object_get(obj, "default_sender");
    if (sender != NULL) {
        if (!json_is_string(sender)) {
            snprintf(errstr, errstr_size,
                     "account %s: \"default_sender\" must be a string", name);
            return -1;
        }
        a->default_sender = xstrdup(json_string_value(sender));
    }
    json_t *token = json_object_get(obj, "webhook_token");
    if (token != NULL) {
        if (!json_is_string(token)) {
            snprintf(errstr, errstr_size,
                     "account %s: \"webhook_token\" must be a string", name);
            return -1;
        }
        a->webhook_token =
            accounts_resolve(json_string_value(token), err, sizeof(err));
        if (a->webhook_token == NULL) {
            snprintf(errstr, errstr_size, "account %s: webhook_token: %s", name,
                     err);
            return -1;
        }
    }
    /* Without a token anyone who can reach the listener could finalise any
     * job with a forged report: a provider that calls back needs one. */
    if (a->codec->has_callbacks &&
        (a->webhook_token == NULL || a->webhook_token[0] == '\0')) {
        snprintf(errstr, errstr_size,
                 "account %s: \"webhook_token\" is required (%s sends "
                 "callbacks) and must not be empty",
                 name, a->codec->name);
        return -1;
    }
    if (accounts_parse_options(a, name, json_object_get(obj, "options"), errstr,
                               errstr_size) != 0)
        return -1;
    if (a->options.schedule_at_provider &&
        strcmp(a->codec->name, "ip1-legacy") == 0 &&
        !a->options.legacy_unconfirmed_soap) {
        snprintf(errstr, errstr_size,
                 "account %s: schedule_at_provider needs "
                 "legacy_unconfirmed_soap (the timed SOAP sends)",
                 name);
        return -1;
    }
    /* An account whose statuses are polled gives providers no callback
     * URL (iP.1 REST then sends no deliveryReportUrl). */
    if (public_url[0] != '\0' && !a->options.poll_statuses) {
        size_t n = strlen(public_url) + strlen(name) + 32;
        a->callback_url = xmalloc(n);
        snprintf(a->callback_url, n, "%s/callbacks/%s", public_url, name);
    }
    return 0;
}

/* Fills in s's file identity; returns 0, or -1 (errno set). */
static int accounts_stat(struct accounts_secret *s, struct stat *st)
{
    if (stat(s->path, st) != 0)
        return -1;
    return 0;
}

static bool accounts_same_file(const struct accounts_secret *s,
                               const struct stat *st)
{
    return s->dev == (unsigned long long)st->st_dev &&
           s->ino == (unsigned long long)st->st_ino &&
           s->size == (unsigned long long)st->st_size &&
           s->mtime_s == (long long)st->st_mtim.tv_sec &&
           s->mtime_ns == (long long)st->st_mtim.tv_nsec;
}

static void accounts_remember(struct accounts_secret *s, const struct stat *st)
{
    s->dev = (unsigned long long)st->st_dev;
    s->ino = (unsigned long long)st->st_ino;
    s->size = (unsigned long long)st->st_size;
    s->mtime_s = (long long)st->st_mtim.tv_sec;
    s->mtime_ns = (long long)st->st_mtim.tv_nsec;
}

/* Records every "file:" credential so accounts_refresh can re-read it. */
static void accounts_note_secrets(struct accounts *accounts, json_t *obj)
{
    for (size_t i = 0; i < accounts->count; i++) {
        struct account *a = &accounts->items[i];
        json_t *creds =
            json_object_get(json_object_get(obj, a->name), "credentials");
        for (size_t c = 0; c < a->ncreds; c++) {
            const char *ref =
                json_string_value(json_object_get(creds, a->creds[c].name));
            if (ref == NULL || strncmp(ref, "file:", 5) != 0)
                continue;
            accounts->secrets =
                xrealloc(accounts->secrets,
                         (accounts->nsecrets + 1) * sizeof(*accounts->secrets));
            struct accounts_secret *s =
                &accounts->secrets[accounts->nsecrets++];
            memset(s, 0, sizeof(*s));
            s->account = i;
            s->cred = c;
            s->path = xstrdup(ref + 5);
            struct stat st;
            if (accounts_stat(s, &st) == 0)
                accounts_remember(s, &st);
        }
    }
}

int accounts_refresh(struct accounts *accounts, int64_t now_ms)
{
    int changed = 0;

    if (accounts->nsecrets == 0 || (accounts->checked_ms != INT64_MIN &&
                                    now_ms - accounts->checked_ms < 1000))
        return 0;
    accounts->checked_ms = now_ms;
    for (size_t i = 0; i < accounts->nsecrets; i++) {
        struct accounts_secret *s = &accounts->secrets[i];
        struct account *a = &accounts->items[s->account];
        struct account_cred *cred = &a->creds[s->cred];
        struct stat st;
        char err[300];
        char *v = NULL;
        if (accounts_stat(s, &st) != 0) {
            snprintf(err, sizeof(err), "cannot stat %s: %s", s->path,
                     strerror(errno));
        } else if (accounts_same_file(s, &st)) {
            continue;
        } else {
            v = accounts_read_secret_file(s->path, err, sizeof(err));
            /* Caught between truncate and write: wait for the rest. */
            if (v != NULL && v[0] == '\0') {
                free(v);
                v = NULL;
                snprintf(err, sizeof(err), "%s is empty", s->path);
            }
        }
        if (v == NULL) {
            if (!s->failing)
                log_warn("accounts: %s credential %s: %s; keeping the old "
                         "value",
                         a->name, cred->name, err);
            s->failing = true;
            continue;
        }
        if (s->failing)
            log_info("accounts: %s credential %s readable again", a->name,
                     cred->name);
        s->failing = false;
        accounts_remember(s, &st);
        if (strcmp(v, cred->value) == 0) {
            memset(v, 0, strlen(v));
            free(v);
            continue;
        }
        memset(cred->value, 0, strlen(cred->value));
        free(cred->value);
        cred->value = v;
        changed++;
        log_info("accounts: %s credential %s re-read from %s", a->name,
                 cred->name, s->path);
    }
    return changed;
}

int accounts_parse(struct accounts **out, const char *json, size_t len,
                   const char *public_url, char *errstr, size_t errstr_size)
{
    struct accounts *accounts = xcalloc(1, sizeof(*accounts));
    json_error_t jerr;
    json_t *root = NULL;
    int ret = -1;

    root = json_loadb(json, len, 0, &jerr);
    if (root == NULL) {
        snprintf(errstr, errstr_size, "bad JSON at line %d column %d: %s",
                 jerr.line, jerr.column, jerr.text);
        goto out;
    }
    json_t *obj = json_object_get(root, "accounts");
    if (!json_is_object(obj)) {
        snprintf(errstr, errstr_size, "no \"accounts\" object");
        goto out;
    }
    accounts->items =
        xcalloc(json_object_size(obj) + 1, sizeof(*accounts->items));
    const char *name;
    json_t *value;
    json_object_foreach(obj, name, value)
    {
        struct account *a = &accounts->items[accounts->count++];
        if (accounts_parse_one(a, name, value, public_url, errstr,
                               errstr_size) != 0)
            goto out;
    }
    accounts_note_secrets(accounts, obj);
    accounts->checked_ms = INT64_MIN;
    *out = accounts;
    accounts = NULL;
    ret = 0;

out:
    json_decref(root);
    accounts_free(accounts);
    return ret;
}

int accounts_load(struct accounts **out, const char *path,
                  const char *public_url, char *errstr, size_t errstr_size)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    size_t len = 0;
    char err[384];
    int ret = -1;

    if (f == NULL) {
        snprintf(errstr, errstr_size, "accounts file %s: %s", path,
                 strerror(errno));
        return -1;
    }
    for (;;) {
        data = xrealloc(data, len + 65536);
        size_t n = fread(data + len, 1, 65536, f);
        len += n;
        if (n == 0)
            break;
        if (len > 16 * 1024 * 1024) {
            snprintf(errstr, errstr_size, "accounts file %s: over 16 MiB",
                     path);
            goto out;
        }
    }
    if (accounts_parse(out, data, len, public_url, err, sizeof(err)) != 0) {
        snprintf(errstr, errstr_size, "accounts file %s: %s", path, err);
        goto out;
    }
    ret = 0;

out:
    fclose(f);
    free(data);
    return ret;
}

const struct account *accounts_find(const struct accounts *accounts,
                                    const char *name)
{
    for (size_t i = 0; i < accounts->count; i++)
        if (strcmp(accounts->items[i].name, name) == 0)
            return &accounts->items[i];
    return NULL;
}

void accounts_free(struct accounts *accounts)
{
    if (accounts == NULL)
        return;
    for (size_t i = 0; i < accounts->count; i++)
        account_cleanup(&accounts->items[i]);
    for (size_t i = 0; i < accounts->nsecrets; i++)
        free(accounts->secrets[i].path);
    free(accounts->secrets);
    free(accounts->items);
    free(accounts);
}
