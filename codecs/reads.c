/* codecs/reads.c - read actions of the contacts topic, per provider, and
 * the one shape their results take.
 *
 * A read job ({"type": "contact-sync", "action": "list-groups", ...}) is
 * one call, built by the provider's own encode_poll() from a route in the
 * table below, and its answer is decoded by the provider's decode() (or
 * decode_poll() for status reads) and then normalised to
 *
 *     {"items": [...], "page": N, "last_page": true|false}
 *
 * in call_result.data (docs/reads.md lists the items of each kind). A
 * provider without a route for an action refuses the job in check() with
 * a line naming the actions it has. Pure: no I/O. */
#include "codecs/reads.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codecs/util.h"

#define READ_PAGE_SIZE 1000 /* items per page where kurir pages */

/* How the answer becomes items. */
enum read_items {
    ITEMS_DATA,    /* data is the array, or one object = one item */
    ITEMS_KEY,     /* data[key] is the array */
    ITEMS_UPDATES, /* status updates (decode_poll) become items */
    ITEMS_BLOCKED, /* {"on_blocklist"|"in_blocklist": bool}: one item */
};

/* What the spec's one argument is. */
enum read_arg {
    ARG_NONE,
    ARG_ID,     /* job->provider_id */
    ARG_MSISDN, /* job->msisdns[0] (exactly one) */
    ARG_PAGE,   /* offset and max of the page asked for */
};

struct read_route {
    const char *provider;
    enum job_action action;
    enum codec_op op;
    const char *spec; /* encode_poll's "what"; "{}" stands for the arg */
    enum read_arg arg;
    enum read_items items;
    const char *key; /* ITEMS_KEY */
    bool paged;      /* kurir pages it (page size READ_PAGE_SIZE) */
};

static const struct read_route read_routes[] = {
    /* InTime (000): the three list endpoints. */
    {"intime", ACTION_LIST_GROUPS, OP_READ, "groups", ARG_NONE, ITEMS_DATA,
     NULL, false},
    {"intime", ACTION_LIST_BLOCKLIST, OP_READ, "nix", ARG_NONE, ITEMS_DATA,
     NULL, false},
    {"intime", ACTION_BLOCKLIST_IMPORT, OP_READ, "nix", ARG_NONE, ITEMS_DATA,
     NULL, false},
    {"intime", ACTION_LIST_REMINDERS, OP_READ, "reminders", ARG_NONE,
     ITEMS_DATA, NULL, false},
    /* iP.1 legacy (001): balans is confirmed; Status and statusBundle
     * need options.legacy_unconfirmed_soap (the codec says so). */
    {"ip1-legacy", ACTION_BALANCE, OP_READ, "balance", ARG_NONE, ITEMS_DATA,
     NULL, false},
    {"ip1-legacy", ACTION_MESSAGE_STATUS, OP_POLL_STATUS, "{}", ARG_ID,
     ITEMS_UPDATES, NULL, false},
    {"ip1-legacy", ACTION_CAMPAIGN_STATUS, OP_POLL_STATUS, "bundle:{}", ARG_ID,
     ITEMS_UPDATES, NULL, false},
    /* iP.1 REST v2 (002, providers.md §3). */
    {"ip1", ACTION_CAMPAIGN_STATUS, OP_READ, "batches/{}/messages", ARG_ID,
     ITEMS_DATA, NULL, false},
    {"ip1", ACTION_MESSAGE_STATUS, OP_READ, "batches/{}", ARG_ID, ITEMS_DATA,
     NULL, false},
    {"ip1", ACTION_LIST_BLOCKLIST, OP_READ, "blacklist", ARG_NONE, ITEMS_DATA,
     NULL, false},
    {"ip1", ACTION_BLOCKLIST_IMPORT, OP_READ, "blacklist", ARG_NONE, ITEMS_DATA,
     NULL, false},
    {"ip1", ACTION_CHECK_BLOCKLIST, OP_READ, "blacklist/{}", ARG_MSISDN,
     ITEMS_DATA, NULL, false},
    {"ip1", ACTION_EXPORT_CONTACTS, OP_READ, "contacts", ARG_NONE, ITEMS_DATA,
     NULL, false},
    {"ip1", ACTION_LIST_GROUPS, OP_READ, "contacts/meta", ARG_NONE, ITEMS_KEY,
     "labels", false},
    {"ip1", ACTION_LIST_SENDERS, OP_READ, "me/senders", ARG_NONE, ITEMS_DATA,
     NULL, false},
    /* Jojka (003). */
    {"jojka", ACTION_EXPORT_CONTACTS, OP_READ,
     "export_contacts_list?max=1000&offset={}", ARG_PAGE, ITEMS_KEY, "export",
     true},
    {"jojka", ACTION_CAMPAIGN_STATUS, OP_READ,
     "get_campaign_recipients_status?campaign_id={}", ARG_ID, ITEMS_DATA, NULL,
     false},
    {"jojka", ACTION_MESSAGE_STATUS, OP_POLL_STATUS, "{}", ARG_ID,
     ITEMS_UPDATES, NULL, false},
    {"jojka", ACTION_CHECK_BLOCKLIST, OP_READ,
     "check_if_in_blocklist?msisdn={}", ARG_MSISDN, ITEMS_BLOCKED, NULL, false},
    {"jojka", ACTION_LIST_GROUPS, OP_READ, "get_groups_from_msisdn?msisdn={}",
     ARG_MSISDN, ITEMS_KEY, "groups", false},
};

#define NROUTES (sizeof(read_routes) / sizeof(read_routes[0]))

static const struct read_route *read_route_find(const struct codec *c,
                                                enum job_action action)
{
    for (size_t i = 0; i < NROUTES; i++)
        if (read_routes[i].action == action &&
            strcmp(read_routes[i].provider, c->name) == 0)
            return &read_routes[i];
    return NULL;
}

/* The read actions `c` has, comma-separated, into out. */
static void read_list(char *out, size_t out_size, const struct codec *c)
{
    size_t n = 0;

    out[0] = '\0';
    for (size_t i = 0; i < NROUTES && n < out_size; i++)
        if (strcmp(read_routes[i].provider, c->name) == 0 &&
            strstr(out, job_action_name(read_routes[i].action)) == NULL)
            n += (size_t)snprintf(out + n, out_size - n, "%s%s", n ? ", " : "",
                                  job_action_name(read_routes[i].action));
}

bool codec_has_read(const struct codec *c, enum job_action action)
{
    return read_route_find(c, action) != NULL;
}

int codec_check_read(const struct codec *c, const struct job *job, char *errstr,
                     size_t errstr_size)
{
    const struct read_route *r = read_route_find(c, job->action);

    if (r == NULL) {
        char list[200];
        read_list(list, sizeof(list), c);
        snprintf(errstr, errstr_size, "%s has no %s read; it has: %s", c->name,
                 job_action_name(job->action), list);
        return -1;
    }
    if (r->arg == ARG_ID && job->provider_id == NULL) {
        snprintf(errstr, errstr_size, "%s on %s needs \"provider_id\"",
                 job_action_name(job->action), c->name);
        return -1;
    }
    if (r->arg == ARG_MSISDN && job->nmsisdns != 1) {
        snprintf(errstr, errstr_size,
                 "%s on %s reads one number: give \"msisdns\" one",
                 job_action_name(job->action), c->name);
        return -1;
    }
    if (r->arg == ARG_ID &&
        strpbrk(job->provider_id, "/?&#%= \"<>\\") != NULL) {
        snprintf(errstr, errstr_size,
                 "\"provider_id\" \"%.40s\" holds characters no provider id "
                 "has",
                 job->provider_id);
        return -1;
    }
    if (job->page > 1 && !r->paged) {
        snprintf(errstr, errstr_size,
                 "%s on %s is one page; page %d does not exist",
                 job_action_name(job->action), c->name, job->page);
        return -1;
    }
    return 0;
}

int codec_encode_read(struct codec_calls *out, const struct codec *c,
                      const struct account *acct, const struct job *job,
                      char *errstr, size_t errstr_size)
{
    const struct read_route *r = read_route_find(c, job->action);
    char what[160], arg[32];
    const char *a = "";

    if (codec_check_read(c, job, errstr, errstr_size) != 0)
        return -1;
    if (c->encode_poll == NULL) {
        snprintf(errstr, errstr_size, "%s cannot read", c->name);
        return -1;
    }
    switch (r->arg) {
    case ARG_ID:
        a = job->provider_id;
        break;
    case ARG_MSISDN:
        a = job->msisdns[0];
        break;
    case ARG_PAGE:
        snprintf(arg, sizeof(arg), "%d",
                 (job->page > 1 ? job->page - 1 : 0) * READ_PAGE_SIZE);
        a = arg;
        break;
    case ARG_NONE:
        break;
    }
    const char *hole = strstr(r->spec, "{}");
    if (hole == NULL)
        snprintf(what, sizeof(what), "%s", r->spec);
    else
        snprintf(what, sizeof(what), "%.*s%s%s", (int)(hole - r->spec), r->spec,
                 a, hole + 2);
    return c->encode_poll(out, acct, r->op, what, 0, errstr, errstr_size);
}

/* One status update as a read item. */
static json_t *read_update_item(const struct status_update *u)
{
    json_t *o = json_object();

    json_object_set_new(o, "provider_id", json_string(u->provider_id));
    json_object_set_new(o, "status", json_string(u->provider_status));
    json_object_set_new(o, "state", json_string(sms_state_name(u->state)));
    if (u->recipient[0] != '\0')
        json_object_set_new(o, "msisdn", json_string(u->recipient));
    if (u->error_code[0] != '\0')
        json_object_set_new(o, "error_code", json_string(u->error_code));
    return o;
}

/* Jojka's recipients-status rows ({receiver, message_id, status}) get
 * kurir's names beside the provider's: msisdn, provider_id, state. */
static void read_jojka_status_row(json_t *row)
{
    const char *st = json_string_value(json_object_get(row, "status"));
    json_t *rcv = json_object_get(row, "receiver");
    json_t *id = json_object_get(row, "message_id");

    if (json_is_string(rcv))
        json_object_set(row, "msisdn", rcv);
    if (json_is_string(id) || json_is_integer(id))
        json_object_set(row, "provider_id", id);
    if (st != NULL) {
        const char *state = strcmp(st, "DELIVERED") == 0 ? "delivered"
                            : strcmp(st, "ERROR") == 0   ? "failed"
                                                         : "submitted";
        json_object_set_new(row, "state", json_string(state));
    }
}

/* Number fields blocklist imports copy: each item gets "msisdn" in
 * kurir's form where the provider writes it otherwise (InTime's national
 * 07..., taken as Swedish). */
static void read_blocklist_msisdn(json_t *item)
{
    const char *m = json_string_value(json_object_get(item, "msisdn"));
    const char *mobile = json_string_value(json_object_get(item, "mobile"));
    char out[MSISDN_MAX + 1], why[64], tmp[40];

    if (m != NULL || mobile == NULL)
        return;
    if (mobile[0] == '0' && mobile[1] != '0') {
        snprintf(tmp, sizeof(tmp), "46%s", mobile + 1);
        mobile = tmp;
    }
    if (msisdn_normalise(out, mobile, why, sizeof(why)) == 0)
        json_object_set_new(item, "msisdn", json_string(out));
}

int codec_decode_read(struct call_result *out, const struct codec *c,
                      const struct account *acct, const struct job *job,
                      const struct codec_call *call,
                      const struct http_response *resp, char *errstr,
                      size_t errstr_size)
{
    const struct read_route *r = read_route_find(c, job->action);
    json_t *items = json_array();

    memset(out, 0, sizeof(*out));
    if (r == NULL) {
        json_decref(items);
        snprintf(errstr, errstr_size, "%s has no %s read", c->name,
                 job_action_name(job->action));
        return -1;
    }
    if (r->items == ITEMS_UPDATES) {
        struct callback_result cb = {0};
        if (call_result_from_status(out, resp)) {
            json_decref(items);
            return 0;
        }
        if (c->decode_poll == NULL ||
            c->decode_poll(&cb, acct, call, resp, errstr, errstr_size) != 0) {
            json_decref(items);
            callback_result_cleanup(&cb);
            return -1;
        }
        for (size_t i = 0; i < cb.nupdates; i++)
            json_array_append_new(items, read_update_item(&cb.updates[i]));
        callback_result_cleanup(&cb);
        out->outcome = CALL_ACCEPTED;
    } else {
        if (c->decode(out, acct, job, call, resp, errstr, errstr_size) != 0) {
            json_decref(items);
            return -1;
        }
        if (out->outcome != CALL_ACCEPTED) {
            json_decref(items);
            return 0;
        }
        json_t *d = out->data;
        if (r->items == ITEMS_KEY)
            d = json_object_get(d, r->key);
        if (r->items == ITEMS_BLOCKED) {
            json_t *b = json_object_get(d, "in_blocklist");
            if (b == NULL)
                b = json_object_get(d, "on_blocklist");
            json_array_append_new(items, json_pack("{s:s,s:b}", "msisdn",
                                                   job->msisdns[0], "blocked",
                                                   json_is_true(b)));
        } else if (json_is_array(d)) {
            json_array_extend(items, d);
        } else if (d != NULL && !json_is_null(d)) {
            json_array_append(items, d);
        }
    }
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item)
    {
        if (!json_is_object(item))
            continue;
        if (strcmp(c->name, "jojka") == 0 &&
            job->action == ACTION_CAMPAIGN_STATUS)
            read_jojka_status_row(item);
        if (job->action == ACTION_LIST_BLOCKLIST ||
            job->action == ACTION_BLOCKLIST_IMPORT)
            read_blocklist_msisdn(item);
    }
    int page = job->page > 0 ? job->page : 1;
    bool last = !r->paged || json_array_size(items) < READ_PAGE_SIZE;
    json_decref(out->data);
    out->data = json_pack("{s:o,s:i,s:b}", "items", items, "page", page,
                          "last_page", last);
    return 0;
}
