/* codecs/jojka.c - the Jojka REST API codec (seed 003, providers.md §4).
 *
 * Every call is a form POST to base_url + "/<endpoint>" whose body starts
 * with API_key and carries the parameters in the order the document's
 * examples show, UTF-8 and percent-encoded (a space is %20). Answers are
 * JSON; a JSON object with an "error" key is an error even with HTTP 200.
 * Pure: no I/O, no logging, no clocks.
 *
 * Jobs:
 * - send: one /send call per recipient (it takes one "to");
 * - campaign create: /add_campaign with up to 1000 numbers in to_msisdn and
 *   the groups in to_group (only with the first chunk, so a chunked
 *   campaign reaches each group once); "scheduled" from send_at when it is
 *   in the future;
 * - campaign cancel: encode() makes no call, because the job names our
 *   create job and Jojka wants its own campaign_id; the worker cancels
 *   each provider campaign it recorded with encode_poll(OP_CAMPAIGN_CANCEL,
 *   campaign_id) -> /cancel_campaign;
 * - contact-sync: contact-upsert is /add_contact for one contact and
 *   /import_contacts_list (CSV) for more; contact-delete /rm_contact,
 *   group-add-member /add_contact_to_group, group-remove-member
 *   /rm_contact_from_group (one call per number and group), blocklist-add
 *   /add_to_blocklist, blocklist-remove /rm_from_blocklist (one per
 *   number). Jojka has no group-create, group-delete or reminders.
 *
 * Polls and reads (encode_poll): OP_POLL_STATUS is /get_msg_status,
 * OP_POLL_REPLIES /fetch_replies (since_time in UTC; Jojka keeps 96 hours),
 * and OP_READ takes "endpoint" or "endpoint?name=value&..." as provider_id
 * for the read endpoints (export_contacts_list max/offset,
 * get_groups_from_msisdn msisdn, check_if_in_blocklist msisdn,
 * get_msg_ids_by_campaign_id campaign_id, get_campaign_recipients_status
 * campaign_id). decode() puts what a read returned into data;
 * decode_poll() turns get_msg_status, get_campaign_recipients_status and
 * fetch_replies answers into status updates and replies.
 *
 * Choices ([I] in providers.md): the sender rule is the document's (a-z A-Z
 * 0-9 - _, at most 11); Jojka documents no text limit, so kurir's job limit
 * is the only one; error texts are classified by the words in them (table
 * jojka_error_kinds); a reply has no provider id, so its id is made of the
 * sender and the time ("46709771337-20160531130006"). */
#include "codecs/codec.h"
#include "codecs/reads.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codecs/util.h"

#define JOJKA_CAMPAIGN_MAX 1000
#define JOJKA_SENDER_MAX   11
#define JOJKA_SENDER_CHARS \
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"

/* ------------------------------------------------------------------------ */
/* Endpoints and tables. */

enum jojka_ep {
    JOJKA_SEND,
    JOJKA_ADD_CAMPAIGN,
    JOJKA_CANCEL_CAMPAIGN,
    JOJKA_ADD_CONTACT,
    JOJKA_ADD_CONTACT_TO_GROUP,
    JOJKA_RM_CONTACT_FROM_GROUP,
    JOJKA_RM_CONTACT,
    JOJKA_IMPORT_CONTACTS_LIST,
    JOJKA_ADD_TO_BLOCKLIST,
    JOJKA_RM_FROM_BLOCKLIST,
    JOJKA_GET_MSG_STATUS,
    JOJKA_FETCH_REPLIES,
    /* Reads, reachable through OP_READ. */
    JOJKA_EXPORT_CONTACTS_LIST,
    JOJKA_GET_GROUPS_FROM_MSISDN,
    JOJKA_CHECK_IF_IN_BLOCKLIST,
    JOJKA_GET_MSG_IDS_BY_CAMPAIGN_ID,
    JOJKA_GET_CAMPAIGN_RECIPIENTS_STATUS,
};

/* Path of each endpoint, and for reads the parameters OP_READ may pass, in
 * the order they are sent. */
static const struct jojka_endpoint {
    const char *path;
    bool is_read;
    const char *params[2];
} jojka_endpoints[] = {
    [JOJKA_SEND] = {"send", false, {NULL}},
    [JOJKA_ADD_CAMPAIGN] = {"add_campaign", false, {NULL}},
    [JOJKA_CANCEL_CAMPAIGN] = {"cancel_campaign", false, {NULL}},
    [JOJKA_ADD_CONTACT] = {"add_contact", false, {NULL}},
    [JOJKA_ADD_CONTACT_TO_GROUP] = {"add_contact_to_group", false, {NULL}},
    [JOJKA_RM_CONTACT_FROM_GROUP] = {"rm_contact_from_group", false, {NULL}},
    [JOJKA_RM_CONTACT] = {"rm_contact", false, {NULL}},
    [JOJKA_IMPORT_CONTACTS_LIST] = {"import_contacts_list", false, {NULL}},
    [JOJKA_ADD_TO_BLOCKLIST] = {"add_to_blocklist", false, {NULL}},
    [JOJKA_RM_FROM_BLOCKLIST] = {"rm_from_blocklist", false, {NULL}},
    [JOJKA_GET_MSG_STATUS] = {"get_msg_status", false, {NULL}},
    [JOJKA_FETCH_REPLIES] = {"fetch_replies", false, {NULL}},
    [JOJKA_EXPORT_CONTACTS_LIST] = {"export_contacts_list",
                                    true,
                                    {"max", "offset"}},
    [JOJKA_GET_GROUPS_FROM_MSISDN] = {"get_groups_from_msisdn",
                                      true,
                                      {"msisdn", NULL}},
    [JOJKA_CHECK_IF_IN_BLOCKLIST] = {"check_if_in_blocklist",
                                     true,
                                     {"msisdn", NULL}},
    [JOJKA_GET_MSG_IDS_BY_CAMPAIGN_ID] = {"get_msg_ids_by_campaign_id",
                                          true,
                                          {"campaign_id", NULL}},
    [JOJKA_GET_CAMPAIGN_RECIPIENTS_STATUS] = {"get_campaign_recipients_status",
                                              true,
                                              {"campaign_id", NULL}},
};

#define JOJKA_NENDPOINTS (sizeof(jojka_endpoints) / sizeof(jojka_endpoints[0]))

/* Delivery statuses (get_msg_status, get_campaign_recipients_status). A
 * status not listed is failed: the document names only these. */
static const struct jojka_status {
    const char *status;
    enum sms_state state;
} jojka_statuses[] = {
    {"SENDING", STATE_SUBMITTED}, {"SENDING_OK", STATE_SUBMITTED},
    {"SENT", STATE_SUBMITTED},    {"DELIVERED", STATE_DELIVERED},
    {"ERROR", STATE_FAILED},
};

/* What an "error" text means, by a word in it (case-insensitive); the first
 * match wins, no match is CALL_REJECTED. Jojka does not document its error
 * texts: these are guesses [I]. */
static const struct jojka_error_kind {
    const char *word;
    enum call_outcome outcome;
    const char *code;
} jojka_error_kinds[] = {
    {"api_key", CALL_AUTH, "auth"},     {"api key", CALL_AUTH, "auth"},
    {"apikey", CALL_AUTH, "auth"},      {"unauthori", CALL_AUTH, "auth"},
    {"credit", CALL_FAILED, "funds"},   {"balance", CALL_FAILED, "funds"},
    {"saldo", CALL_FAILED, "funds"},    {"funds", CALL_FAILED, "funds"},
    {"try again", CALL_RETRY, "later"}, {"later", CALL_RETRY, "later"},
};

static const char *const jojka_creds[] = {"api_key", NULL};

/* ------------------------------------------------------------------------ */
/* Requests. */

/* Starts a form body with the API key. */
static void jojka_body_init(struct buf *b, const struct account *acct)
{
    const char *key = account_cred(acct, "api_key");

    buf_init(b);
    buf_add_param(b, "API_key", key ? key : "");
}

/* Appends the call that posts body `b` (taken) to endpoint `ep`. Returns
 * the call, or NULL with errstr set when the list is full. */
static struct codec_call *jojka_add_call(struct codec_calls *out,
                                         const struct account *acct,
                                         enum codec_op op, enum jojka_ep ep,
                                         struct buf *b, char *errstr,
                                         size_t errstr_size)
{
    struct codec_call *call = codec_calls_add(out, op);

    if (call == NULL) {
        buf_cleanup(b);
        snprintf(errstr, errstr_size, "more than %d calls for one job",
                 CODEC_MAX_CALLS);
        return NULL;
    }
    struct buf url;
    buf_init(&url);
    buf_printf(&url, "%s/%s", acct->base_url, jojka_endpoints[ep].path);
    call->step = (int)ep;
    call->req.method = "POST";
    call->req.url = buf_detach(&url, NULL);
    http_request_add_header(&call->req, "Content-Type",
                            "application/x-www-form-urlencoded");
    call->req.body = buf_detach(b, &call->req.body_len);
    return call;
}

/* Appends `n` strings joined by ';' as parameter `name`. */
static void jojka_add_list(struct buf *b, const char *name,
                           const char *const *items, size_t n)
{
    struct buf joined;

    buf_init(&joined);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            buf_append(&joined, ";", 1);
        buf_puts(&joined, items[i]);
    }
    buf_add_param(b, name, joined.data ? joined.data : "");
    buf_cleanup(&joined);
}

/* Formats Unix seconds the way Jojka takes times: UTC "YYYY-MM-DD
 * hh:mm:ss". */
static void jojka_format_time(char out[20], long long secs)
{
    util_format_utc(out, 20, secs, "%Y-%m-%d %H:%M:%S");
}

/* Writes a contact's name ("first last", either alone) into out. */
static void jojka_contact_name(char *out, size_t out_size,
                               const struct contact *ct)
{
    snprintf(out, out_size, "%s%s%s", ct->first_name ? ct->first_name : "",
             ct->first_name && ct->last_name ? " " : "",
             ct->last_name ? ct->last_name : "");
}

/* ------------------------------------------------------------------------ */
/* check() */

static int jojka_check_sender(const struct account *acct, const struct job *job,
                              char *errstr, size_t errstr_size)
{
    const char *from = job->from ? job->from : acct->default_sender;

    if (from != NULL && (strlen(from) > JOJKA_SENDER_MAX ||
                         !text_only(from, JOJKA_SENDER_CHARS))) {
        snprintf(errstr, errstr_size,
                 "jojka sender \"%.40s\" must be 1 to %d of a-z A-Z 0-9 - _",
                 from, JOJKA_SENDER_MAX);
        return -1;
    }
    if (job->flash) {
        snprintf(errstr, errstr_size, "jojka has no flash messages");
        return -1;
    }
    return 0;
}

/* A value in import_contacts_list's CSV may not hold its separators. */
static int jojka_check_csv_field(const char *s, size_t contact, char *errstr,
                                 size_t errstr_size)
{
    if (s != NULL && strpbrk(s, ",;\r\n") != NULL) {
        snprintf(errstr, errstr_size,
                 "\"contacts\"[%zu]: jojka's contact list cannot carry \",\" "
                 "\";\" or line breaks in \"%.40s\"",
                 contact, s);
        return -1;
    }
    return 0;
}

static int jojka_check_contacts(const struct job *job, char *errstr,
                                size_t errstr_size)
{
    size_t members = job->ncontacts + job->nmsisdns;
    size_t calls = 0;

    switch (job->action) {
    case ACTION_CONTACT_UPSERT:
        for (size_t i = 0; i < job->ncontacts; i++) {
            const struct contact *ct = &job->contacts[i];
            if (ct->first_name == NULL && ct->last_name == NULL) {
                snprintf(errstr, errstr_size,
                         "\"contacts\"[%zu]: jojka needs a first_name or "
                         "last_name",
                         i);
                return -1;
            }
            /* One contact goes to add_contact, whose groups are ';'
             * separated; more go to the CSV import. */
            const char *seps = job->ncontacts == 1 ? ";" : ",;\r\n";
            for (size_t g = 0; g < ct->ngroups; g++) {
                if (strpbrk(ct->groups[g], seps) != NULL) {
                    snprintf(errstr, errstr_size,
                             "\"contacts\"[%zu]: jojka group names cannot "
                             "hold \"%s\"",
                             i, job->ncontacts == 1 ? ";" : ", ; or breaks");
                    return -1;
                }
            }
            if (job->ncontacts > 1 &&
                (jojka_check_csv_field(ct->first_name, i, errstr,
                                       errstr_size) != 0 ||
                 jojka_check_csv_field(ct->last_name, i, errstr, errstr_size) !=
                     0))
                return -1;
        }
        calls = 1;
        break;
    case ACTION_CONTACT_DELETE:
    case ACTION_BLOCKLIST_ADD:
    case ACTION_BLOCKLIST_REMOVE:
        calls = members;
        break;
    case ACTION_GROUP_ADD_MEMBER:
    case ACTION_GROUP_REMOVE_MEMBER:
        calls = members * job->ngroups;
        break;
    default:
        snprintf(errstr, errstr_size, "jojka has no %s",
                 job_action_name(job->action));
        return -1;
    }
    return codec_check_ncalls("jojka", job, calls, errstr, errstr_size);
}

static int jojka_check(const struct account *acct, const struct job *job,
                       char *errstr, size_t errstr_size)
{
    if (job->type == JOB_CONTACTS && job_action_is_read(job->action))
        return codec_check_read(&codec_jojka, job, errstr, errstr_size);
    switch (job->type) {
    case JOB_SEND:
        return jojka_check_sender(acct, job, errstr, errstr_size);
    case JOB_CAMPAIGN:
        if (job->action == ACTION_CANCEL)
            return 0;
        for (size_t i = 0; i < job->ngroups; i++) {
            if (strchr(job->groups[i], ';') != NULL) {
                snprintf(errstr, errstr_size,
                         "\"groups\"[%zu]: jojka group names cannot hold "
                         "\";\"",
                         i);
                return -1;
            }
        }
        return jojka_check_sender(acct, job, errstr, errstr_size);
    case JOB_CONTACTS:
        return jojka_check_contacts(job, errstr, errstr_size);
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* encode() */

static int jojka_encode_send(struct codec_calls *out,
                             const struct account *acct, const struct job *job,
                             size_t first, size_t count, char *errstr,
                             size_t errstr_size)
{
    const char *from = job->from ? job->from : acct->default_sender;

    for (size_t i = first; i < first + count; i++) {
        struct buf b;
        jojka_body_init(&b, acct);
        buf_add_param(&b, "to", job->to[i]);
        buf_add_param(&b, "msg", job->text);
        buf_add_param(&b, "from", from);
        struct codec_call *call = jojka_add_call(out, acct, OP_SEND, JOJKA_SEND,
                                                 &b, errstr, errstr_size);
        if (call == NULL)
            return -1;
        call->first = i;
        call->count = 1;
    }
    return 0;
}

static int jojka_encode_campaign(struct codec_calls *out,
                                 const struct account *acct,
                                 const struct job *job, size_t first,
                                 size_t count, int64_t now, char *errstr,
                                 size_t errstr_size)
{
    if (job->action == ACTION_CANCEL)
        return 0; /* see the file comment */
    if (count > JOJKA_CAMPAIGN_MAX) {
        snprintf(errstr, errstr_size,
                 "jojka takes %d numbers per campaign call, not %zu",
                 JOJKA_CAMPAIGN_MAX, count);
        return -1;
    }
    if (count == 0 && (first > 0 || job->ngroups == 0)) {
        snprintf(errstr, errstr_size, "a campaign call with no recipients");
        return -1;
    }

    struct buf b;
    jojka_body_init(&b, acct);
    if (count > 0)
        jojka_add_list(&b, "to_msisdn", (const char *const *)job->to + first,
                       count);
    if (first == 0 && job->ngroups > 0)
        jojka_add_list(&b, "to_group", job->groups, job->ngroups);
    buf_add_param(&b, "msg", job->text);
    buf_add_param(&b, "from", job->from ? job->from : acct->default_sender);
    if (job->send_at_ms > now * 1000) {
        char when[20];
        jojka_format_time(when, job->send_at_ms / 1000);
        buf_add_param(&b, "scheduled", when);
    }
    buf_add_param(&b, "name", job->name);
    struct codec_call *call =
        jojka_add_call(out, acct, OP_CAMPAIGN_CREATE, JOJKA_ADD_CAMPAIGN, &b,
                       errstr, errstr_size);
    if (call == NULL)
        return -1;
    call->first = first;
    call->count = count;
    return 0;
}

/* One call with API_key and "msisdn" (and "group" when not NULL). */
static int jojka_encode_member(struct codec_calls *out,
                               const struct account *acct, enum jojka_ep ep,
                               const char *msisdn, const char *group,
                               char *errstr, size_t errstr_size)
{
    struct buf b;

    jojka_body_init(&b, acct);
    buf_add_param(&b, "msisdn", msisdn);
    buf_add_param(&b, "group", group);
    return jojka_add_call(out, acct, OP_CONTACTS, ep, &b, errstr, errstr_size)
               ? 0
               : -1;
}

static int jojka_encode_upsert(struct codec_calls *out,
                               const struct account *acct,
                               const struct job *job, char *errstr,
                               size_t errstr_size)
{
    struct buf b, csv;
    char name[256];

    jojka_body_init(&b, acct);
    if (job->contacts_list_url != NULL) {
        /* import_contacts_list fetches the CSV itself (003). */
        buf_add_param(&b, "contacts_list_url", job->contacts_list_url);
        return jojka_add_call(out, acct, OP_CONTACTS,
                              JOJKA_IMPORT_CONTACTS_LIST, &b, errstr,
                              errstr_size)
                   ? 0
                   : -1;
    }
    if (job->ncontacts == 1) {
        const struct contact *ct = &job->contacts[0];
        jojka_contact_name(name, sizeof(name), ct);
        buf_add_param(&b, "msisdn", ct->msisdn);
        buf_add_param(&b, "name", name);
        if (ct->ngroups > 0)
            jojka_add_list(&b, "group", ct->groups, ct->ngroups);
        return jojka_add_call(out, acct, OP_CONTACTS, JOJKA_ADD_CONTACT, &b,
                              errstr, errstr_size)
                   ? 0
                   : -1;
    }
    /* msisdn;name;group1;group2... one contact a line. */
    buf_init(&csv);
    for (size_t i = 0; i < job->ncontacts; i++) {
        const struct contact *ct = &job->contacts[i];
        jojka_contact_name(name, sizeof(name), ct);
        buf_printf(&csv, "%s%s;%s", i > 0 ? "\n" : "", ct->msisdn, name);
        for (size_t g = 0; g < ct->ngroups; g++)
            buf_printf(&csv, ";%s", ct->groups[g]);
    }
    buf_add_param(&b, "contacts_list", csv.data);
    buf_cleanup(&csv);
    return jojka_add_call(out, acct, OP_CONTACTS, JOJKA_IMPORT_CONTACTS_LIST,
                          &b, errstr, errstr_size)
               ? 0
               : -1;
}

static int jojka_encode_contacts(struct codec_calls *out,
                                 const struct account *acct,
                                 const struct job *job, char *errstr,
                                 size_t errstr_size)
{
    enum jojka_ep ep;
    bool per_group = false;

    switch (job->action) {
    case ACTION_CONTACT_UPSERT:
        return jojka_encode_upsert(out, acct, job, errstr, errstr_size);
    case ACTION_CONTACT_DELETE:
        ep = JOJKA_RM_CONTACT;
        break;
    case ACTION_BLOCKLIST_ADD:
        ep = JOJKA_ADD_TO_BLOCKLIST;
        break;
    case ACTION_BLOCKLIST_REMOVE:
        ep = JOJKA_RM_FROM_BLOCKLIST;
        break;
    case ACTION_GROUP_ADD_MEMBER:
        ep = JOJKA_ADD_CONTACT_TO_GROUP;
        per_group = true;
        break;
    case ACTION_GROUP_REMOVE_MEMBER:
        ep = JOJKA_RM_CONTACT_FROM_GROUP;
        per_group = true;
        break;
    default:
        snprintf(errstr, errstr_size, "jojka has no %s",
                 job_action_name(job->action));
        return -1;
    }
    /* The numbers: the contacts' and then the msisdns'. */
    size_t n = job->ncontacts + job->nmsisdns;
    size_t ngroups = per_group ? job->ngroups : 1;
    for (size_t i = 0; i < n; i++) {
        const char *msisdn = i < job->ncontacts
                                 ? job->contacts[i].msisdn
                                 : job->msisdns[i - job->ncontacts];
        for (size_t g = 0; g < ngroups; g++) {
            if (jojka_encode_member(out, acct, ep, msisdn,
                                    per_group ? job->groups[g] : NULL, errstr,
                                    errstr_size) != 0)
                return -1;
        }
    }
    return 0;
}

static int jojka_encode_one(struct codec_calls *out, const struct account *acct,
                            const struct job *job, size_t first, size_t count,
                            int64_t now, char *errstr, size_t errstr_size)
{
    size_t start = out->ncalls;
    int ret = -1;

    switch (job->type) {
    case JOB_SEND:
        ret = jojka_encode_send(out, acct, job, first, count, errstr,
                                errstr_size);
        break;
    case JOB_CAMPAIGN:
        ret = jojka_encode_campaign(out, acct, job, first, count, now, errstr,
                                    errstr_size);
        break;
    case JOB_CONTACTS:
        ret = jojka_encode_contacts(out, acct, job, errstr, errstr_size);
        break;
    }
    if (ret != 0)
        codec_calls_truncate(out, start);
    return ret;
}

/* One slice, one call: see codec_encode_slice(). */
static int jojka_encode(struct codec_calls *out, const struct account *acct,
                        const struct job *job, size_t first, size_t count,
                        int64_t now, char *errstr, size_t errstr_size)
{
    return codec_encode_slice(&codec_jojka, jojka_encode_one, out, acct, job,
                              first, count, now, errstr, errstr_size);
}

/* ------------------------------------------------------------------------ */
/* Answers. */

/* Case-insensitive substring search. */
static bool jojka_has_word(const char *s, const char *word)
{
    size_t n = strlen(word);

    for (; *s != '\0'; s++) {
        size_t i = 0;
        while (i < n && s[i] != '\0' &&
               tolower((unsigned char)s[i]) == (unsigned char)word[i])
            i++;
        if (i == n)
            return true;
    }
    return false;
}

/* Copies the text of an "error" value: a string, or the first string in an
 * array or object (JSDK reads current($data['error'])), or the JSON. */
static void jojka_error_text(char *out, size_t out_size, json_t *err)
{
    json_t *first = NULL;

    if (json_is_array(err) && json_array_size(err) > 0) {
        first = json_array_get(err, 0);
    } else if (json_is_object(err)) {
        void *it = json_object_iter(err);
        first = it ? json_object_iter_value(it) : NULL;
    }
    if (json_is_string(err)) {
        util_strlcpy(out, json_string_value(err), out_size);
    } else if (json_is_string(first)) {
        util_strlcpy(out, json_string_value(first), out_size);
    } else {
        char *dump = json_dumps(err, JSON_COMPACT | JSON_ENCODE_ANY);
        util_strlcpy(out, dump ? dump : "error", out_size);
        free(dump);
    }
}

/* Reads an answer body as JSON, or NULL. */
static json_t *jojka_load(const struct http_response *resp, char *errstr,
                          size_t errstr_size)
{
    json_error_t jerr;
    json_t *root = json_loadb(resp->body ? resp->body : "", resp->body_len,
                              JSON_DECODE_ANY, &jerr);

    if (root == NULL)
        snprintf(errstr, errstr_size,
                 "jojka answered HTTP %ld with bad JSON at line %d column "
                 "%d: %s",
                 resp->status, jerr.line, jerr.column, jerr.text);
    return root;
}

/* Sets res from a JSON "error" answer. */
static void jojka_set_provider_error(struct call_result *res, json_t *err)
{
    char text[CODEC_TEXT_MAX];

    jojka_error_text(text, sizeof(text), err);
    for (size_t i = 0;
         i < sizeof(jojka_error_kinds) / sizeof(jojka_error_kinds[0]); i++) {
        const struct jojka_error_kind *k = &jojka_error_kinds[i];
        if (jojka_has_word(text, k->word)) {
            call_result_set_error(res, k->outcome, k->code, "%s", text);
            return;
        }
    }
    call_result_set_error(res, CALL_REJECTED, "provider_error", "%s", text);
}

static int jojka_decode(struct call_result *out, const struct account *acct,
                        const struct job *job, const struct codec_call *call,
                        const struct http_response *resp, char *errstr,
                        size_t errstr_size)
{
    size_t nrec =
        call->op == OP_SEND || call->op == OP_CAMPAIGN_CREATE ? call->count : 0;
    json_t *root = NULL;
    int ret = -1;

    (void)acct;
    (void)job;
    memset(out, 0, sizeof(*out));
    if (call_result_from_status(out, resp))
        goto done;
    root = jojka_load(resp, errstr, errstr_size);
    json_t *err = json_is_object(root) ? json_object_get(root, "error") : NULL;
    if (err != NULL) {
        jojka_set_provider_error(out, err);
        goto done;
    }
    if (resp->status < 200 || resp->status > 299) {
        call_result_set_error(out, CALL_REJECTED, "http_status",
                              "jojka answered HTTP %ld", resp->status);
        goto done;
    }
    if (root == NULL)
        goto out;

    out->outcome = CALL_ACCEPTED;
    switch ((enum jojka_ep)call->step) {
    case JOJKA_SEND:
        if (nrec != 1 ||
            !util_json_id(out->provider_id, sizeof(out->provider_id), root,
                          "message_id")) {
            snprintf(errstr, errstr_size,
                     "jojka answer to send has no \"message_id\"");
            goto out;
        }
        call_result_spread(out, nrec);
        util_strlcpy(out->recipients[0].provider_id, out->provider_id,
                     sizeof(out->recipients[0].provider_id));
        out->provider_id[0] = '\0';
        ret = 0;
        goto out;
    case JOJKA_ADD_CAMPAIGN:
        if (!util_json_id(out->provider_id, sizeof(out->provider_id), root,
                          "campaign_id")) {
            snprintf(errstr, errstr_size,
                     "jojka answer to add_campaign has no \"campaign_id\"");
            goto out;
        }
        break;
    default:
        if (call->op == OP_READ || call->op == OP_POLL_STATUS ||
            call->op == OP_POLL_REPLIES) {
            out->data = root;
            root = NULL;
        }
        break;
    }

done:
    call_result_spread(out, nrec);
    ret = 0;
out:
    json_decref(root);
    if (ret != 0)
        call_result_cleanup(out);
    return ret;
}

/* ------------------------------------------------------------------------ */
/* Polls and reads. */

static int jojka_encode_read(struct codec_calls *out,
                             const struct account *acct, const char *spec,
                             char *errstr, size_t errstr_size)
{
    const char *q = strchr(spec, '?');
    size_t plen = q ? (size_t)(q - spec) : strlen(spec);
    size_t ep = 0;

    while (ep < JOJKA_NENDPOINTS &&
           !(jojka_endpoints[ep].is_read &&
             strlen(jojka_endpoints[ep].path) == plen &&
             memcmp(jojka_endpoints[ep].path, spec, plen) == 0))
        ep++;
    if (ep == JOJKA_NENDPOINTS) {
        snprintf(errstr, errstr_size, "jojka has no read \"%.*s\"",
                 (int)(plen > 60 ? 60 : plen), spec);
        return -1;
    }

    struct buf b;
    jojka_body_init(&b, acct);
    for (size_t i = 0; i < 2 && jojka_endpoints[ep].params[i]; i++) {
        const char *name = jojka_endpoints[ep].params[i];
        char *value = q ? form_get_dup(q + 1, strlen(q + 1), name) : NULL;
        buf_add_param(&b, name, value);
        free(value);
    }
    return jojka_add_call(out, acct, OP_READ, (enum jojka_ep)ep, &b, errstr,
                          errstr_size)
               ? 0
               : -1;
}

static int jojka_encode_poll(struct codec_calls *out,
                             const struct account *acct, enum codec_op op,
                             const char *provider_id, int64_t since,
                             char *errstr, size_t errstr_size)
{
    struct buf b;

    if (op != OP_POLL_REPLIES && (provider_id == NULL || *provider_id == 0)) {
        snprintf(errstr, errstr_size, "jojka poll without a provider id");
        return -1;
    }
    switch (op) {
    case OP_POLL_STATUS:
        jojka_body_init(&b, acct);
        buf_add_param(&b, "msg_id", provider_id);
        return jojka_add_call(out, acct, op, JOJKA_GET_MSG_STATUS, &b, errstr,
                              errstr_size)
                   ? 0
                   : -1;
    case OP_POLL_REPLIES:
        jojka_body_init(&b, acct);
        if (since > 0) {
            char when[20];
            jojka_format_time(when, since);
            buf_add_param(&b, "since_time", when);
        }
        return jojka_add_call(out, acct, op, JOJKA_FETCH_REPLIES, &b, errstr,
                              errstr_size)
                   ? 0
                   : -1;
    case OP_CAMPAIGN_CANCEL:
    case OP_CANCEL:
        jojka_body_init(&b, acct);
        buf_add_param(&b, "campaign_id", provider_id);
        return jojka_add_call(out, acct, OP_CAMPAIGN_CANCEL,
                              JOJKA_CANCEL_CAMPAIGN, &b, errstr, errstr_size)
                   ? 0
                   : -1;
    case OP_READ:
        return jojka_encode_read(out, acct, provider_id, errstr, errstr_size);
    default:
        snprintf(errstr, errstr_size, "jojka cannot poll that");
        return -1;
    }
}

static enum sms_state jojka_state(const char *status)
{
    for (size_t i = 0; i < sizeof(jojka_statuses) / sizeof(jojka_statuses[0]);
         i++)
        if (strcmp(status, jojka_statuses[i].status) == 0)
            return jojka_statuses[i].state;
    return STATE_FAILED;
}

/* Fills one update; `status` must be a string. */
static void jojka_update(struct status_update *u, const char *id,
                         const char *recipient, const char *status)
{
    util_strlcpy(u->provider_id, id, sizeof(u->provider_id));
    util_strlcpy(u->recipient, recipient, sizeof(u->recipient));
    util_strlcpy(u->provider_status, status, sizeof(u->provider_status));
    u->state = jojka_state(status);
    if (u->state == STATE_FAILED) {
        util_strlcpy(u->error_code, status, sizeof(u->error_code));
        snprintf(u->error_message, sizeof(u->error_message), "jojka reports %s",
                 status);
    }
}

static void *jojka_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);

    if (p == NULL)
        abort();
    return p;
}

/* "2016-05-31 13:00:06" (UTC) to "2016-05-31T13:00:06Z" and to the digits
 * "20160531130006"; false when it is not that shape. */
static bool jojka_parse_time(char rfc[21], char digits[15], const char *s)
{
    static const char shape[] = "dddd-dd-dd dd:dd:dd";
    size_t nd = 0;

    if (strlen(s) != sizeof(shape) - 1)
        return false;
    for (size_t i = 0; shape[i] != '\0'; i++) {
        bool is_digit = s[i] >= '0' && s[i] <= '9';
        if (shape[i] == 'd' ? !is_digit : s[i] != shape[i])
            return false;
        if (is_digit)
            digits[nd++] = s[i];
    }
    digits[nd] = '\0';
    snprintf(rfc, 21, "%.10sT%.8sZ", s, s + 11);
    return true;
}

static int jojka_decode_replies(struct callback_result *out, json_t *root,
                                char *errstr, size_t errstr_size)
{
    if (!json_is_array(root)) {
        snprintf(errstr, errstr_size, "jojka replies are not a JSON array");
        return -1;
    }
    size_t n = json_array_size(root);
    if (n > CODEC_MAX_EVENTS)
        n = CODEC_MAX_EVENTS;
    out->replies = jojka_calloc(n, sizeof(*out->replies));
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(root, i);
        const char *inserted =
            json_string_value(json_object_get(e, "inserted"));
        const char *sender = json_string_value(json_object_get(e, "sender"));
        const char *message = json_string_value(json_object_get(e, "message"));
        char digits[15];
        struct inbound_sms *r = &out->replies[out->nreplies];

        if (sender == NULL || message == NULL) {
            snprintf(errstr, errstr_size,
                     "jojka reply %zu lacks \"sender\" or \"message\"", i);
            return -1;
        }
        util_strlcpy(r->from, sender, sizeof(r->from));
        digits[0] = '\0';
        if (inserted == NULL ||
            !jojka_parse_time(r->received_at, digits, inserted))
            digits[0] = '\0';
        /* Jojka gives replies no id: everything it does give, so that two
         * replies from one sender in one second stay two. Only the same
         * text from the same number in the same second is one reply. */
        snprintf(r->provider_id, sizeof(r->provider_id), "%.24s-%s-%016llx",
                 sender, digits,
                 (unsigned long long)util_hash64(message, strlen(message)));
        r->text = strdup(message);
        if (r->text == NULL)
            abort();
        out->nreplies++;
    }
    return 0;
}

static int jojka_decode_statuses(struct callback_result *out,
                                 const struct codec_call *call, json_t *root,
                                 char *errstr, size_t errstr_size)
{
    if (call->step == JOJKA_GET_MSG_STATUS) {
        /* ["DELIVERED"], or the older {"status":"DELIVERED"}. */
        json_t *st = json_is_array(root) ? json_array_get(root, 0)
                                         : json_object_get(root, "status");
        char id[CODEC_ID_MAX];
        if (!json_is_string(st)) {
            snprintf(errstr, errstr_size,
                     "jojka status answer holds no status string");
            return -1;
        }
        if (form_get(id, sizeof(id), call->req.body, call->req.body_len,
                     "msg_id", NULL, 0) != 0)
            id[0] = '\0';
        out->updates = jojka_calloc(1, sizeof(*out->updates));
        out->nupdates = 1;
        jojka_update(&out->updates[0], id, "", json_string_value(st));
        return 0;
    }
    /* get_campaign_recipients_status: [{receiver, message_id, status}]. */
    if (!json_is_array(root)) {
        snprintf(errstr, errstr_size,
                 "jojka campaign statuses are not a JSON array");
        return -1;
    }
    size_t n = json_array_size(root);
    if (n > CODEC_MAX_EVENTS)
        n = CODEC_MAX_EVENTS;
    out->updates = jojka_calloc(n, sizeof(*out->updates));
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(root, i);
        char id[CODEC_ID_MAX];
        const char *receiver =
            json_string_value(json_object_get(e, "receiver"));
        const char *status = json_string_value(json_object_get(e, "status"));
        if (receiver == NULL || status == NULL ||
            !util_json_id(id, sizeof(id), e, "message_id")) {
            snprintf(errstr, errstr_size,
                     "jojka campaign status %zu lacks \"receiver\", "
                     "\"message_id\" or \"status\"",
                     i);
            return -1;
        }
        jojka_update(&out->updates[out->nupdates++], id, receiver, status);
    }
    return 0;
}

static int jojka_decode_poll(struct callback_result *out,
                             const struct account *acct,
                             const struct codec_call *call,
                             const struct http_response *resp, char *errstr,
                             size_t errstr_size)
{
    json_t *root = NULL;
    int ret = -1;

    (void)acct;
    memset(out, 0, sizeof(*out));
    if (resp->status < 200 || resp->status > 299) {
        snprintf(errstr, errstr_size, "jojka answered HTTP %ld", resp->status);
        goto out;
    }
    root = jojka_load(resp, errstr, errstr_size);
    if (root == NULL)
        goto out;
    json_t *err = json_is_object(root) ? json_object_get(root, "error") : NULL;
    if (err != NULL) {
        char text[CODEC_TEXT_MAX];
        jojka_error_text(text, sizeof(text), err);
        snprintf(errstr, errstr_size, "jojka: %s", text);
        goto out;
    }
    switch (call->step) {
    case JOJKA_FETCH_REPLIES:
        ret = jojka_decode_replies(out, root, errstr, errstr_size);
        break;
    case JOJKA_GET_MSG_STATUS:
    case JOJKA_GET_CAMPAIGN_RECIPIENTS_STATUS:
        ret = jojka_decode_statuses(out, call, root, errstr, errstr_size);
        break;
    default:
        snprintf(errstr, errstr_size, "not a jojka poll call");
        break;
    }

out:
    json_decref(root);
    if (ret != 0)
        callback_result_cleanup(out);
    return ret;
}

const struct codec codec_jojka = {
    .name = "jojka",
    .creds = jojka_creds,
    .send_max_recipients = 1,
    .campaign_max_recipients = JOJKA_CAMPAIGN_MAX,
    .has_callbacks = false,
    .polls = true,
    .segments = &segment_rule_gsm, /* no rule documented: 3GPP's */
    .per_call = NULL,
    .check = jojka_check,
    .encode = jojka_encode,
    .decode = jojka_decode,
    .callback = NULL,
    .encode_poll = jojka_encode_poll,
    .decode_poll = jojka_decode_poll,
};
