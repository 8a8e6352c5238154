/* tests/standin/accounts.c - reads kurir's accounts file for the stand-in.
 *
 * Same format kurir reads (CONTRACT §3): credential values "env:NAME" come
 * from the environment, "file:/path" from a file (trailing white space
 * dropped, as a mounted Secret often ends in a newline), anything else as it
 * stands. An optional "standin" object per account carries what the real
 * provider keeps in its portal: "inbound_url", "number", "senders". */
#include "standin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const provider_names[PROV_COUNT] = {
    [PROV_INTIME] = "intime",
    [PROV_IP1] = "ip1",
    [PROV_LEGACY] = "ip1-legacy",
    [PROV_JOJKA] = "jojka",
};

const char *provider_name(enum provider p)
{
    return provider_names[p];
}

int provider_parse(const char *name)
{
    for (int p = 0; p < PROV_COUNT; p++) {
        if (strcmp(provider_names[p], name) == 0)
            return p;
    }
    return -1;
}

/* Resolves a credential value. Returns a malloc'd string or NULL with
 * errstr set. */
static char *accounts_resolve(const char *acct, const char *field,
                              const char *value, char *errstr,
                              size_t errstr_size)
{
    if (strncmp(value, "env:", 4) == 0) {
        const char *v = getenv(value + 4);
        if (v == NULL) {
            snprintf(errstr, errstr_size,
                     "account %s: %s: environment variable %s is not set", acct,
                     field, value + 4);
            return NULL;
        }
        return xstrdup(v);
    }
    if (strncmp(value, "file:", 5) == 0) {
        FILE *f = fopen(value + 5, "rb");
        struct sbuf b = {0};
        char chunk[512];
        size_t n;
        if (f == NULL) {
            snprintf(errstr, errstr_size, "account %s: %s: cannot open %s",
                     acct, field, value + 5);
            return NULL;
        }
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && b.len < 65536)
            sbuf_append(&b, chunk, n);
        fclose(f);
        char *s = sbuf_detach(&b, NULL);
        return trim(s);
    }
    return xstrdup(value);
}

static int accounts_cred(char **out, const char *acct, json_t *creds,
                         const char *field, char *errstr, size_t errstr_size)
{
    json_t *v = json_object_get(creds, field);

    if (!json_is_string(v)) {
        snprintf(errstr, errstr_size,
                 "account %s: credentials.%s missing or not a string", acct,
                 field);
        return -1;
    }
    *out = accounts_resolve(acct, field, json_string_value(v), errstr,
                            errstr_size);
    return *out == NULL ? -1 : 0;
}

static int accounts_one(struct account *a, const char *name, json_t *entry,
                        char *errstr, size_t errstr_size)
{
    static const char *const fields[PROV_COUNT][2] = {
        [PROV_INTIME] = {"user", "hash"},
        [PROV_IP1] = {"api_key", NULL},
        [PROV_LEGACY] = {"account", "password"},
        [PROV_JOJKA] = {"api_key", NULL},
    };
    json_t *creds = json_object_get(entry, "credentials");
    json_t *extra = json_object_get(entry, "standin");
    json_t *token = json_object_get(entry, "webhook_token");
    const char *prov = json_string_value(json_object_get(entry, "provider"));
    int p = prov != NULL ? provider_parse(prov) : -1;

    a->name = xstrdup(name);
    if (p < 0) {
        snprintf(errstr, errstr_size, "account %s: unknown provider %s", name,
                 prov != NULL ? prov : "(none)");
        return -1;
    }
    a->provider = (enum provider)p;
    if (!json_is_object(creds)) {
        snprintf(errstr, errstr_size, "account %s: credentials missing", name);
        return -1;
    }
    if (accounts_cred(&a->key1, name, creds, fields[p][0], errstr,
                      errstr_size) != 0)
        return -1;
    if (fields[p][1] != NULL &&
        accounts_cred(&a->key2, name, creds, fields[p][1], errstr,
                      errstr_size) != 0)
        return -1;
    if (json_is_string(token)) {
        a->webhook_token =
            accounts_resolve(name, "webhook_token", json_string_value(token),
                             errstr, errstr_size);
        if (a->webhook_token == NULL)
            return -1;
    }
    if (extra != NULL && !json_is_object(extra)) {
        snprintf(errstr, errstr_size, "account %s: standin must be an object",
                 name);
        return -1;
    }
    const char *url = json_string_value(json_object_get(extra, "inbound_url"));
    const char *number = json_string_value(json_object_get(extra, "number"));
    json_t *senders = json_object_get(extra, "senders");
    if (url != NULL)
        a->inbound_url = xstrdup(url);
    a->unconfirmed_soap = json_is_true(json_object_get(
        json_object_get(entry, "options"), "legacy_unconfirmed_soap"));
    a->number = xstrdup(number != NULL ? number : "46700000000");
    if (json_is_array(senders)) {
        size_t i;
        json_t *s;
        a->senders_set = true;
        json_array_foreach(senders, i, s)
        {
            if (json_is_string(s))
                ptrvec_push(&a->senders, xstrdup(json_string_value(s)));
        }
    }
    char owner[32];
    uint32_t h = 2166136261u;
    for (const char *c = name; *c != '\0'; c++)
        h = (h ^ (unsigned char)*c) * 16777619u;
    snprintf(owner, sizeof(owner), "ip1-%05u", (unsigned)(h % 90000 + 10000));
    a->owner = xstrdup(owner);
    return 0;
}

int accounts_load(struct accounts *out, const char *path, char *errstr,
                  size_t errstr_size)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    struct accounts accts = {0};
    int ret = -1;

    if (root == NULL) {
        snprintf(errstr, errstr_size, "%s: bad JSON at line %d: %s", path,
                 jerr.line, jerr.text);
        goto out;
    }
    json_t *map = json_object_get(root, "accounts");
    if (!json_is_object(map)) {
        snprintf(errstr, errstr_size, "%s: no \"accounts\" object", path);
        goto out;
    }
    accts.items = xcalloc(json_object_size(map), sizeof(*accts.items));
    const char *name;
    json_t *entry;
    json_object_foreach(map, name, entry)
    {
        if (accounts_one(&accts.items[accts.len++], name, entry, errstr,
                         errstr_size) != 0)
            goto out;
    }
    *out = accts;
    accts.items = NULL;
    accts.len = 0;
    ret = 0;

out:
    accounts_free(&accts);
    json_decref(root);
    return ret;
}

struct account *accounts_by_cred(const struct accounts *a, enum provider p,
                                 const char *k1, const char *k2)
{
    if (k1 == NULL)
        return NULL;
    for (size_t i = 0; i < a->len; i++) {
        struct account *acct = &a->items[i];
        if (acct->provider != p || strcmp(acct->key1, k1) != 0)
            continue;
        if (acct->key2 != NULL && (k2 == NULL || strcmp(acct->key2, k2) != 0))
            continue;
        return acct;
    }
    return NULL;
}

struct account *accounts_by_name(const struct accounts *a, const char *name)
{
    for (size_t i = 0; i < a->len; i++) {
        if (strcmp(a->items[i].name, name) == 0)
            return &a->items[i];
    }
    return NULL;
}

void accounts_free(struct accounts *a)
{
    for (size_t i = 0; i < a->len; i++) {
        struct account *acct = &a->items[i];
        free(acct->name);
        free(acct->key1);
        free(acct->key2);
        free(acct->webhook_token);
        free(acct->inbound_url);
        free(acct->number);
        free(acct->owner);
        for (size_t k = 0; k < acct->senders.len; k++)
            free(acct->senders.items[k]);
        ptrvec_free(&acct->senders);
        acct_state_free(acct->st);
    }
    free(a->items);
    a->items = NULL;
    a->len = 0;
}
