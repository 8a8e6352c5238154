/* codecs/ip1.c - the iP.1 REST API v2 codec (seed 002, providers.md §3).
 *
 * JSON over HTTPS with "Authorization: Bearer <api_key>". A send or a
 * campaign create is one POST /v2/batches carrying up to IP1_MAX_RECIPIENTS
 * numbers; iP.1 pushes delivery reports (deliveryReportUrl, which kurir
 * sets to the account's callback URL + "/status?token=...") and incoming
 * SMS (configured in iP.1's portal) to us, so nothing is polled. Pure: no
 * I/O, no logging, no clocks.
 *
 * Jobs:
 * - send / campaign create: POST /v2/batches {sender, recipients, body,
 *   type ("sms" or "flash"), datacoding ("gsm" when the text is GSM-7,
 *   else "ucs": iP.1's default is ucs, which would halve a GSM text's
 *   parts), priority (1 or 2, when given), deliveryWindows (when send_at is
 *   in the future: opens at send_at, closes 7 days later, as iP.1's sample
 *   does), deliveryReportUrl, reference (the job id, so delivery reports
 *   name their job: it comes back as status_update.transid), tags (the
 *   job's "reference", when given)};
 * - campaign cancel: encode() makes no call (the job names our create job);
 *   the worker cancels each batch it recorded with encode_poll(OP_CANCEL or
 *   OP_CAMPAIGN_CANCEL, batch id) -> DELETE /v2/batches/{id};
 * - contact-sync: contact-upsert POST /v2/contacts?sync (an array of contact
 *   documents; groups become labels), contact-delete DELETE
 *   /v2/contacts?properties[phoneNumber]=+<msisdn> (one per number),
 *   group-delete DELETE /v2/labels/{label}, blocklist-add PUT
 *   /v2/blacklist/{msisdn} (no body, as iP.1's sample), blocklist-remove
 *   DELETE /v2/blacklist/{msisdn}. iP.1 has no group-create (labels exist by
 *   use), no group member calls by number (its label calls take contact
 *   ids) and no reminders.
 *
 * Reads: encode_poll(OP_READ, "<path>[?query]") is GET /v2/<path> for the
 * batch, message, blacklist, contact and label resources; decode() puts the
 * JSON into data.
 *
 * Status codes map through ip1_statuses (data), with the first digit as
 * the fallback iP.1 documents: 1 in progress, 2 ended, 4 rejected, 5
 * error. A 2xx code not in the table is "unknown": the block says ended,
 * not how.
 *
 * Choices ([I] in providers.md): at most 500 numbers per batch (the v1
 * guidance; v2 states none); a job id longer than iP.1's 40-character
 * reference goes as codec_ip1_reference() makes it (its head, "~", a
 * hash), which the engine maps back; the answer to POST /v2/batches is read as
 * the batch document
 * ("id") or as an array of message documents (v1's shape), and a 2xx
 * answer without either is still accepted, as iP.1's own clients do; error
 * bodies are read as ASP.NET problem details (title, errors). */
#include "codecs/codec.h"
#include "codecs/reads.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codecs/util.h"

#define IP1_MAX_RECIPIENTS 500
#define IP1_BODY_MAX       2000 /* characters */
#define IP1_WINDOW_SECONDS (7 * 24 * 3600)
#define IP1_ALNUM \
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

/* call->step for contact-sync and reads, so decode() knows what it
 * asked. */
enum ip1_step {
    IP1_STEP_BATCH,
    IP1_STEP_CONTACTS,
    IP1_STEP_DELETE, /* a DELETE: 404 means already gone */
    IP1_STEP_READ,
};

/* v2 status codes (providers.md §3.6). */
static const struct ip1_status {
    int code;
    const char *name;
    enum sms_state state;
} ip1_statuses[] = {
    {101, "Accepted", STATE_SUBMITTED},
    {102, "Queued", STATE_SUBMITTED},
    {103, "Funded", STATE_SUBMITTED},
    {104, "Refunded", STATE_SUBMITTED},
    {110, "Sending", STATE_SUBMITTED},
    {111, "DeliveredToGateway", STATE_SUBMITTED},
    {112, "DeliveredToCarrier", STATE_SUBMITTED},
    {113, "DeliveredToGSM", STATE_SUBMITTED},
    {114, "QueuedAtGateway", STATE_SUBMITTED},
    {201, "DeliveredToHandset", STATE_DELIVERED},
    {202, "Expired", STATE_FAILED},
    {203, "Canceled", STATE_CANCELLED},
    {402, "InsufficientFunds", STATE_REJECTED},
    {403, "SenderRejected", STATE_REJECTED},
    {405, "RecipientRejected", STATE_REJECTED},
    {406, "GenericRejected", STATE_REJECTED},
    {407, "InvalidSender", STATE_REJECTED},
};

/* The fallback by first digit, for codes not in the table. */
static const struct ip1_block {
    int first_digit;
    const char *name;
    enum sms_state state;
} ip1_blocks[] = {
    {1, "Info", STATE_SUBMITTED},
    {2, "Ended", STATE_UNKNOWN},
    {4, "Rejection", STATE_REJECTED},
    {5, "Error", STATE_FAILED},
};

/* The resources OP_READ may GET, by their first path segment. */
static const char *const ip1_read_roots[] = {
    "batches", "blacklist", "contacts", "labels", "conversations", "me/senders",
};

static const char *const ip1_creds[] = {"api_key", NULL};

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------------ */
/* Requests. */

/* Appends a call `method` base_url + "/v2/" + path with auth headers;
 * `body` (taken, may be NULL) is JSON. Returns the call or NULL with errstr
 * set. */
static struct codec_call *
ip1_add_call(struct codec_calls *out, const struct account *acct,
             enum codec_op op, enum ip1_step step, const char *method,
             struct buf *path, char *body, char *errstr, size_t errstr_size)
{
    struct codec_call *call = codec_calls_add(out, op);
    const char *key = account_cred(acct, "api_key");

    if (call == NULL) {
        free(body);
        buf_cleanup(path);
        snprintf(errstr, errstr_size, "more than %d calls for one job",
                 CODEC_MAX_CALLS);
        return NULL;
    }
    struct buf url, auth;
    buf_init(&url);
    buf_init(&auth);
    buf_printf(&url, "%s/v2/%s", acct->base_url, path->data);
    buf_printf(&auth, "Bearer %s", key ? key : "");
    buf_cleanup(path);
    call->step = (int)step;
    call->req.method = method;
    call->req.url = buf_detach(&url, NULL);
    http_request_add_header(&call->req, "Authorization", auth.data);
    http_request_add_header(&call->req, "Accept", "application/json");
    if (body != NULL) {
        http_request_add_header(&call->req, "Content-Type", "application/json");
        call->req.body = body;
        call->req.body_len = strlen(body);
    }
    buf_cleanup(&auth);
    return call;
}

/* Serialises `root` (taken) compactly, keys in insertion order. */
static char *ip1_dump(json_t *root)
{
    char *s = json_dumps(root, JSON_COMPACT);

    json_decref(root);
    if (s == NULL)
        abort();
    return s;
}

/* Sets key to a new string value when s is not NULL. */
static void ip1_set_str(json_t *obj, const char *key, const char *s)
{
    if (s != NULL)
        json_object_set_new(obj, key, json_string(s));
}

/* ------------------------------------------------------------------------ */
/* check() */

static const char *ip1_sender(const struct account *acct, const struct job *job)
{
    return job->from ? job->from : acct->default_sender;
}

static int ip1_check_message(const struct account *acct, const struct job *job,
                             char *errstr, size_t errstr_size)
{
    const char *from = ip1_sender(acct, job);

    if (from == NULL) {
        snprintf(errstr, errstr_size,
                 "ip1 needs a sender: give \"from\" or the account's "
                 "default_sender");
        return -1;
    }
    size_t n = strlen(from);
    bool digits = text_only(from, "0123456789");
    if (digits ? n < 3 || n > 15 || from[0] == '0'
               : n < 3 || n > 11 || !text_only(from, IP1_ALNUM)) {
        snprintf(errstr, errstr_size,
                 "ip1 sender \"%.40s\" must be 3 to 11 of a-z A-Z 0-9, or 3 "
                 "to 15 digits not starting with 0",
                 from);
        return -1;
    }
    if (job->text_info.chars > IP1_BODY_MAX) {
        snprintf(errstr, errstr_size,
                 "text is %zu characters, ip1 takes %d at most",
                 job->text_info.chars, IP1_BODY_MAX);
        return -1;
    }
    if (text_only(job->text, " \t\r\n")) {
        snprintf(errstr, errstr_size, "ip1 refuses a text of only spaces");
        return -1;
    }
    if (job->priority > 2) {
        snprintf(errstr, errstr_size,
                 "ip1 priority is 1 (standard) or 2 (high), not %d",
                 job->priority);
        return -1;
    }
    if (job->ngroups > 0) {
        snprintf(errstr, errstr_size, "ip1 batches take numbers, not groups");
        return -1;
    }
    return 0;
}

static int ip1_check(const struct account *acct, const struct job *job,
                     char *errstr, size_t errstr_size)
{
    size_t calls = 0;
    if (job->type == JOB_CONTACTS && job_action_is_read(job->action))
        return codec_check_read(&codec_ip1, job, errstr, errstr_size);

    switch (job->type) {
    case JOB_SEND:
        return ip1_check_message(acct, job, errstr, errstr_size);
    case JOB_CAMPAIGN:
        if (job->action == ACTION_CANCEL)
            return 0;
        return ip1_check_message(acct, job, errstr, errstr_size);
    case JOB_CONTACTS:
        break;
    }
    switch (job->action) {
    case ACTION_CONTACT_UPSERT:
        if (job->ncontacts == 0) {
            snprintf(errstr, errstr_size,
                     "ip1 takes \"contacts\", not a contacts_list_url");
            return -1;
        }
        calls = 1;
        break;
    case ACTION_CONTACT_DELETE:
    case ACTION_BLOCKLIST_ADD:
    case ACTION_BLOCKLIST_REMOVE:
        calls = job->ncontacts + job->nmsisdns;
        break;
    case ACTION_GROUP_DELETE:
        calls = job->ngroups;
        break;
    case ACTION_REGISTER_SENDER:
    case ACTION_CONTACT_UPDATE:
    case ACTION_LABEL_ADD:
        calls = 1;
        break;
    default:
        snprintf(errstr, errstr_size, "ip1 has no %s",
                 job_action_name(job->action));
        return -1;
    }
    return codec_check_ncalls("ip1", job, calls, errstr, errstr_size);
}

/* ------------------------------------------------------------------------ */
/* encode() */

bool codec_ip1_reference(char out[CODEC_IP1_REFERENCE_MAX + 1],
                         const char *job_id)
{
    size_t len = strlen(job_id), keep = CODEC_IP1_REFERENCE_KEEP;

    if (len <= CODEC_IP1_REFERENCE_MAX) {
        memcpy(out, job_id, len + 1);
        return false;
    }
    /* Cut on a UTF-8 character boundary. */
    while (keep > 0 && ((unsigned char)job_id[keep] & 0xc0) == 0x80)
        keep--;
    snprintf(out, CODEC_IP1_REFERENCE_MAX + 1, "%.*s~%016llx", (int)keep,
             job_id, (unsigned long long)util_hash64(job_id, len));
    return true;
}

static int ip1_encode_batch(struct codec_calls *out, const struct account *acct,
                            const struct job *job, size_t first, size_t count,
                            int64_t now, char *errstr, size_t errstr_size)
{
    enum codec_op op = job->type == JOB_SEND ? OP_SEND : OP_CAMPAIGN_CREATE;

    if (count == 0 || count > IP1_MAX_RECIPIENTS) {
        snprintf(errstr, errstr_size,
                 "ip1 takes 1 to %d numbers per batch, not %zu",
                 IP1_MAX_RECIPIENTS, count);
        return -1;
    }
    json_t *root = json_object();
    json_t *to = json_array();
    for (size_t i = first; i < first + count; i++)
        json_array_append_new(to, json_string(job->to[i]));
    ip1_set_str(root, "sender", ip1_sender(acct, job));
    json_object_set_new(root, "recipients", to);
    ip1_set_str(root, "body", job->text);
    ip1_set_str(root, "type", job->flash ? "flash" : "sms");
    ip1_set_str(root, "datacoding",
                job->text_info.coding == TEXT_GSM7 ? "gsm" : "ucs");
    if (job->priority > 0)
        json_object_set_new(root, "priority", json_integer(job->priority));
    if (job->send_at_ms > now * 1000) {
        char opens[32], closes[32];
        long long at = job->send_at_ms / 1000;
        util_format_utc(opens, sizeof(opens), at, "%Y-%m-%dT%H:%M:%SZ");
        util_format_utc(closes, sizeof(closes), at + IP1_WINDOW_SECONDS,
                        "%Y-%m-%dT%H:%M:%SZ");
        json_object_set_new(
            root, "deliveryWindows",
            json_pack("[{s:s,s:s}]", "opens", opens, "closes", closes));
    }
    char *report_url = account_callback_url(acct, "status");
    ip1_set_str(root, "deliveryReportUrl", report_url);
    free(report_url);
    char ref[CODEC_IP1_REFERENCE_MAX + 1];
    codec_ip1_reference(ref, job->id);
    ip1_set_str(root, "reference", ref);
    if (job->reference != NULL)
        json_object_set_new(root, "tags", json_pack("[s]", job->reference));

    struct buf path;
    buf_init(&path);
    buf_puts(&path, "batches");
    struct codec_call *call =
        ip1_add_call(out, acct, op, IP1_STEP_BATCH, "POST", &path,
                     ip1_dump(root), errstr, errstr_size);
    if (call == NULL)
        return -1;
    call->first = first;
    call->count = count;
    return 0;
}

/* One contact document: {"properties": {...}, "labels": [...]}. */
static json_t *ip1_contact_doc(const struct contact *ct)
{
    json_t *props = json_object();
    char phone[MSISDN_MAX + 2];

    snprintf(phone, sizeof(phone), "+%s", ct->msisdn);
    ip1_set_str(props, "phoneNumber", phone);
    ip1_set_str(props, "firstName", ct->first_name);
    ip1_set_str(props, "lastName", ct->last_name);
    ip1_set_str(props, "email", ct->email);
    if (json_is_string(ct->extra)) /* InTime's shape: one free field */
        ip1_set_str(props, "extrafield", json_string_value(ct->extra));
    if (json_is_object(ct->extra)) {
        const char *key;
        json_t *value;
        json_object_foreach(ct->extra, key, value)
        {
            if (json_object_get(props, key) == NULL)
                json_object_set(props, key, value);
        }
    }
    json_t *doc = json_pack("{s:o}", "properties", props);
    if (ct->ngroups > 0) {
        json_t *labels = json_array();
        for (size_t g = 0; g < ct->ngroups; g++)
            json_array_append_new(labels, json_string(ct->groups[g]));
        json_object_set_new(doc, "labels", labels);
    }
    return doc;
}

static int ip1_encode_contacts(struct codec_calls *out,
                               const struct account *acct,
                               const struct job *job, char *errstr,
                               size_t errstr_size)
{
    struct buf path;
    size_t n = job->ncontacts + job->nmsisdns;

    buf_init(&path);
    if (job->action == ACTION_CONTACT_UPSERT) {
        json_t *docs = json_array();
        for (size_t i = 0; i < job->ncontacts; i++)
            json_array_append_new(docs, ip1_contact_doc(&job->contacts[i]));
        buf_puts(&path, "contacts?sync");
        return ip1_add_call(out, acct, OP_CONTACTS, IP1_STEP_CONTACTS, "POST",
                            &path, ip1_dump(docs), errstr, errstr_size)
                   ? 0
                   : -1;
    }
    if (job->action == ACTION_REGISTER_SENDER) {
        /* PUT /v2/me/senders/{sender}, no body (IP1-SND). */
        buf_puts(&path, "me/senders/");
        buf_append_urlenc(&path, job->from, strlen(job->from));
        return ip1_add_call(out, acct, OP_CONTACTS, IP1_STEP_CONTACTS, "PUT",
                            &path, NULL, errstr, errstr_size)
                   ? 0
                   : -1;
    }
    if (job->action == ACTION_CONTACT_UPDATE) {
        /* PATCH /v2/contacts/{id} with the properties to change. */
        buf_puts(&path, "contacts/");
        buf_append_urlenc(&path, job->provider_id, strlen(job->provider_id));
        return ip1_add_call(out, acct, OP_CONTACTS, IP1_STEP_CONTACTS, "PATCH",
                            &path, ip1_dump(ip1_contact_doc(&job->contacts[0])),
                            errstr, errstr_size)
                   ? 0
                   : -1;
    }
    if (job->action == ACTION_LABEL_ADD) {
        /* POST /v2/labels/{label}/contacts with the contact ids (002). */
        json_t *ids = json_array();
        for (size_t i = 0; i < job->ncontact_ids; i++)
            json_array_append_new(ids, json_string(job->contact_ids[i]));
        buf_puts(&path, "labels/");
        buf_append_urlenc(&path, job->groups[0], strlen(job->groups[0]));
        buf_puts(&path, "/contacts");
        return ip1_add_call(out, acct, OP_CONTACTS, IP1_STEP_CONTACTS, "POST",
                            &path, ip1_dump(ids), errstr, errstr_size)
                   ? 0
                   : -1;
    }
    if (job->action == ACTION_GROUP_DELETE) {
        for (size_t g = 0; g < job->ngroups; g++) {
            buf_puts(&path, "labels/");
            buf_append_urlenc(&path, job->groups[g], strlen(job->groups[g]));
            if (ip1_add_call(out, acct, OP_CONTACTS, IP1_STEP_DELETE, "DELETE",
                             &path, NULL, errstr, errstr_size) == NULL)
                return -1;
        }
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        const char *msisdn = i < job->ncontacts
                                 ? job->contacts[i].msisdn
                                 : job->msisdns[i - job->ncontacts];
        const char *method = "DELETE";
        enum ip1_step step = IP1_STEP_DELETE;
        switch (job->action) {
        case ACTION_CONTACT_DELETE:
            buf_printf(&path, "contacts?properties[phoneNumber]=%%2B%s",
                       msisdn);
            break;
        case ACTION_BLOCKLIST_ADD:
            method = "PUT";
            step = IP1_STEP_CONTACTS;
            /* fall through */
        default: /* ACTION_BLOCKLIST_REMOVE; check() refused the rest */
            buf_printf(&path, "blacklist/%s", msisdn);
            break;
        }
        if (ip1_add_call(out, acct, OP_CONTACTS, step, method, &path, NULL,
                         errstr, errstr_size) == NULL)
            return -1;
    }
    return 0;
}

static int ip1_encode_one(struct codec_calls *out, const struct account *acct,
                          const struct job *job, size_t first, size_t count,
                          int64_t now, char *errstr, size_t errstr_size)
{
    size_t start = out->ncalls;
    int ret;

    if (job->type == JOB_CONTACTS)
        ret = ip1_encode_contacts(out, acct, job, errstr, errstr_size);
    else if (job->type == JOB_CAMPAIGN && job->action == ACTION_CANCEL)
        ret = 0; /* see the file comment */
    else
        ret = ip1_encode_batch(out, acct, job, first, count, now, errstr,
                               errstr_size);
    if (ret != 0)
        codec_calls_truncate(out, start);
    return ret;
}

/* One slice, one call: see codec_encode_slice(). */
static int ip1_encode(struct codec_calls *out, const struct account *acct,
                      const struct job *job, size_t first, size_t count,
                      int64_t now, char *errstr, size_t errstr_size)
{
    return codec_encode_slice(&codec_ip1, ip1_encode_one, out, acct, job, first,
                              count, now, errstr, errstr_size);
}

/* ------------------------------------------------------------------------ */
/* Answers. */

/* Finds a status code's name and state, by the table, else by block. */
static void ip1_status_of(int code, const char **name, enum sms_state *state)
{
    for (size_t i = 0; i < NELEMS(ip1_statuses); i++) {
        if (ip1_statuses[i].code == code) {
            *name = ip1_statuses[i].name;
            *state = ip1_statuses[i].state;
            return;
        }
    }
    for (size_t i = 0; i < NELEMS(ip1_blocks); i++) {
        if (ip1_blocks[i].first_digit == code / 100) {
            *name = ip1_blocks[i].name;
            *state = ip1_blocks[i].state;
            return;
        }
    }
    *name = "Unknown";
    *state = STATE_UNKNOWN;
}

/* Reads an int that may come as a number or a numeric string. */
static bool ip1_get_int(long long *out, json_t *v)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    if (json_is_string(v) && json_string_length(v) > 0) {
        char *end;
        *out = strtoll(json_string_value(v), &end, 10);
        return *end == '\0';
    }
    return false;
}

/* The text of an error body: problem details' title and first field
 * error, or a "message"/"error" string, or the start of the body. */
static void ip1_error_text(char *out, size_t out_size,
                           const struct http_response *resp)
{
    json_t *root =
        json_loadb(resp->body ? resp->body : "", resp->body_len, 0, NULL);
    const char *title = NULL, *detail = NULL;

    if (json_is_object(root)) {
        static const char *const keys[] = {"title", "message", "error",
                                           "error_description", "detail"};
        for (size_t i = 0; i < NELEMS(keys) && title == NULL; i++)
            title = json_string_value(json_object_get(root, keys[i]));
        json_t *errors = json_object_get(root, "errors");
        void *it = json_is_object(errors) ? json_object_iter(errors) : NULL;
        if (it != NULL) {
            json_t *v = json_object_iter_value(it);
            detail =
                json_string_value(json_is_array(v) ? json_array_get(v, 0) : v);
        }
    }
    if (title != NULL || detail != NULL) {
        snprintf(out, out_size, "%s%s%s", title ? title : "",
                 title && detail ? ": " : "", detail ? detail : "");
    } else {
        size_t n =
            resp->body_len < out_size - 1 ? resp->body_len : out_size - 1;
        snprintf(out, out_size, "%.*s", (int)n, resp->body ? resp->body : "");
        for (char *p = out; *p != '\0'; p++)
            if (*p == '\n' || *p == '\r')
                *p = ' ';
    }
    json_decref(root);
}

/* Reads the answer to POST /v2/batches: the batch document, or an array of
 * message documents whose "recipient" finds its entry. */
static void ip1_decode_batch(struct call_result *out, const struct job *job,
                             const struct codec_call *call,
                             const struct http_response *resp)
{
    json_t *root =
        json_loadb(resp->body ? resp->body : "", resp->body_len, 0, NULL);
    long long status;

    call_result_spread(out, call->count);
    if (json_is_object(root)) {
        util_json_id(out->provider_id, sizeof(out->provider_id), root, "id");
        if (ip1_get_int(&status, json_object_get(root, "status")))
            snprintf(out->provider_status, sizeof(out->provider_status), "%lld",
                     status);
    }
    for (size_t i = 0; json_is_array(root) && i < json_array_size(root); i++) {
        json_t *m = json_array_get(root, i);
        const char *to = json_string_value(json_object_get(m, "recipient"));
        for (size_t r = 0; to != NULL && r < call->count; r++) {
            struct recipient_result *rr = &out->recipients[r];
            if (strcmp(job->to[call->first + r], to) == 0 &&
                rr->provider_id[0] == '\0') {
                util_json_id(rr->provider_id, sizeof(rr->provider_id), m, "id");
                break;
            }
        }
    }
    json_decref(root);
}

static int ip1_decode(struct call_result *out, const struct account *acct,
                      const struct job *job, const struct codec_call *call,
                      const struct http_response *resp, char *errstr,
                      size_t errstr_size)
{
    bool is_batch = call->op == OP_SEND || call->op == OP_CAMPAIGN_CREATE;
    char text[CODEC_TEXT_MAX];

    (void)acct;
    memset(out, 0, sizeof(*out));
    if (call_result_from_status(out, resp)) {
        /* keep the class; the provider's words help the operator */
    } else if (resp->status == 404 && call->step == IP1_STEP_DELETE) {
        out->outcome = CALL_ACCEPTED; /* already gone */
    } else if (resp->status < 200 || resp->status > 299) {
        ip1_error_text(text, sizeof(text), resp);
        call_result_set_error(
            out, resp->status == 402 ? CALL_FAILED : CALL_REJECTED,
            "http_status", "ip1 answered HTTP %ld: %s", resp->status, text);
    } else if (is_batch) {
        out->outcome = CALL_ACCEPTED;
        ip1_decode_batch(out, job, call, resp);
        return 0;
    } else if (call->step == IP1_STEP_READ) {
        json_error_t jerr;
        out->data = json_loadb(resp->body ? resp->body : "", resp->body_len,
                               JSON_DECODE_ANY, &jerr);
        if (out->data == NULL) {
            snprintf(errstr, errstr_size,
                     "ip1 answered a read with bad JSON at line %d column "
                     "%d: %s",
                     jerr.line, jerr.column, jerr.text);
            return -1;
        }
        out->outcome = CALL_ACCEPTED;
    } else {
        out->outcome = CALL_ACCEPTED;
    }
    call_result_spread(out, is_batch ? call->count : 0);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Reads and cancels. */

static int ip1_encode_poll(struct codec_calls *out, const struct account *acct,
                           enum codec_op op, const char *provider_id,
                           int64_t since, char *errstr, size_t errstr_size)
{
    struct buf path;

    (void)since;
    if (provider_id == NULL || *provider_id == '\0') {
        snprintf(errstr, errstr_size, "ip1 needs an id or a path for that");
        return -1;
    }
    buf_init(&path);
    if (op == OP_CANCEL || op == OP_CAMPAIGN_CANCEL) {
        buf_puts(&path, "batches/");
        buf_append_urlenc(&path, provider_id, strlen(provider_id));
        return ip1_add_call(out, acct, op, IP1_STEP_DELETE, "DELETE", &path,
                            NULL, errstr, errstr_size)
                   ? 0
                   : -1;
    }
    if (op != OP_READ) {
        snprintf(errstr, errstr_size,
                 "ip1 pushes statuses and replies: nothing to poll");
        return -1;
    }
    size_t path_len = strcspn(provider_id, "?");
    bool known = false;
    for (size_t i = 0; i < NELEMS(ip1_read_roots); i++) {
        size_t n = strlen(ip1_read_roots[i]);
        known = known || (strncmp(ip1_read_roots[i], provider_id, n) == 0 &&
                          strchr("/?", provider_id[n]) != NULL);
    }
    /* The path may hold ids, not dots or escapes; the query is passed on
     * as it is, minus what would break the URL. */
    bool clean = strspn(provider_id, IP1_ALNUM "/_-") == path_len &&
                 strpbrk(provider_id, " #\"<>\\^`{|}\r\n") == NULL;
    if (!known || !clean) {
        snprintf(errstr, errstr_size, "ip1 has no read \"%.60s\"", provider_id);
        return -1;
    }
    buf_puts(&path, provider_id);
    return ip1_add_call(out, acct, OP_READ, IP1_STEP_READ, "GET", &path, NULL,
                        errstr, errstr_size)
               ? 0
               : -1;
}

/* ------------------------------------------------------------------------ */
/* Callbacks. */

static void *ip1_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);

    if (p == NULL)
        abort();
    return p;
}

/* Copies an iP.1 time ("2019-11-01T16:32:18.253", zone often left out:
 * UTC) as RFC 3339 with a Z when it has no zone. */
static void ip1_time(char *out, size_t out_size, const char *s)
{
    size_t n = strlen(s);

    if (n < 19 || s[4] != '-' || s[10] != 'T' || n + 2 > out_size) {
        out[0] = '\0';
        return;
    }
    bool zoned = s[n - 1] == 'Z' || s[n - 6] == '+' || s[n - 6] == '-';
    snprintf(out, out_size, "%s%s", s, zoned ? "" : "Z");
}

/* One delivery report into u; false when it lacks an id or a code. */
static bool ip1_report(struct status_update *u, json_t *dlr)
{
    long long code;
    const char *name;

    if (!json_is_object(dlr) ||
        !(util_json_id(u->provider_id, sizeof(u->provider_id), dlr, "id") ||
          util_json_id(u->provider_id, sizeof(u->provider_id), dlr,
                       "messageId")) ||
        !ip1_get_int(&code, json_object_get(dlr, "code")) || code < 0 ||
        code > 999)
        return false;
    ip1_status_of((int)code, &name, &u->state);
    snprintf(u->provider_status, sizeof(u->provider_status), "%lld", code);
    const char *to = json_string_value(json_object_get(dlr, "recipient"));
    util_strlcpy(u->recipient, to ? to : "", sizeof(u->recipient));
    const char *ref = json_string_value(json_object_get(dlr, "reference"));
    util_strlcpy(u->transid, ref ? ref : "", sizeof(u->transid));
    if (u->state == STATE_FAILED || u->state == STATE_REJECTED ||
        u->state == STATE_CANCELLED) {
        snprintf(u->error_code, sizeof(u->error_code), "%lld", code);
        util_strlcpy(u->error_message, name, sizeof(u->error_message));
    }
    return true;
}

/* One incoming message into r; false when it lacks what a reply needs. */
static bool ip1_inbound(struct inbound_sms *r, json_t *msg)
{
    const char *from = json_string_value(json_object_get(msg, "sender"));
    const char *to = json_string_value(json_object_get(msg, "recipient"));
    const char *body = json_string_value(json_object_get(msg, "body"));
    const char *at = json_string_value(json_object_get(msg, "created"));

    if (from == NULL || body == NULL ||
        !util_json_id(r->provider_id, sizeof(r->provider_id), msg, "id"))
        return false;
    if (at == NULL) {
        json_t *st = json_array_get(json_object_get(msg, "statuses"), 0);
        at = json_string_value(json_object_get(st, "created"));
    }
    if (at == NULL)
        at = json_string_value(json_object_get(msg, "modified"));
    util_strlcpy(r->from, from, sizeof(r->from));
    util_strlcpy(r->to, to ? to : "", sizeof(r->to));
    ip1_time(r->received_at, sizeof(r->received_at), at ? at : "");
    r->text = strdup(body);
    if (r->text == NULL)
        abort();
    return true;
}

static int ip1_callback(struct callback_result *out, const struct account *acct,
                        enum callback_kind kind, const struct http_inbound *in,
                        char *errstr, size_t errstr_size)
{
    json_error_t jerr;
    json_t *root = NULL;
    int ret = -1;

    (void)acct;
    memset(out, 0, sizeof(*out));
    out->answer_content_type = "text/plain";
    if (strcmp(in->method, "POST") != 0) {
        snprintf(errstr, errstr_size, "ip1 posts its callbacks, not %.8s",
                 in->method);
        out->answer_status = 405;
        goto out;
    }
    root = json_loadb(in->body ? in->body : "", in->body_len, 0, &jerr);
    if (root == NULL) {
        snprintf(errstr, errstr_size, "bad JSON at line %d column %d: %s",
                 jerr.line, jerr.column, jerr.text);
        out->answer_status = 400;
        goto out;
    }
    /* One document, or (to be lenient) an array of them. */
    size_t n = json_is_array(root) ? json_array_size(root) : 1;
    if (n == 0 || n > CODEC_MAX_EVENTS) {
        snprintf(errstr, errstr_size, "ip1 callback with %zu documents", n);
        out->answer_status = 400;
        goto out;
    }
    if (kind == CALLBACK_STATUS)
        out->updates = ip1_calloc(n, sizeof(*out->updates));
    else
        out->replies = ip1_calloc(n, sizeof(*out->replies));
    for (size_t i = 0; i < n; i++) {
        json_t *doc = json_is_array(root) ? json_array_get(root, i) : root;
        bool ok = kind == CALLBACK_STATUS
                      ? ip1_report(&out->updates[out->nupdates++], doc)
                      : ip1_inbound(&out->replies[out->nreplies++], doc);
        if (!ok) {
            snprintf(errstr, errstr_size,
                     kind == CALLBACK_STATUS
                         ? "ip1 delivery report without an id or a code"
                         : "ip1 incoming SMS without an id, sender or body");
            out->answer_status = 400;
            goto out;
        }
    }
    out->answer_status = 200;
    ret = 0;

out:
    json_decref(root);
    if (ret != 0) {
        int status = out->answer_status;
        callback_result_cleanup(out);
        out->answer_status = status;
        out->answer_content_type = "text/plain";
        util_strlcpy(out->answer_body, "bad request", sizeof(out->answer_body));
    }
    return ret;
}

/* Reads the message documents of GET /v2/batches/{id}/messages (an
 * array, or one document) into status updates: each message's latest
 * status (the last of "statuses"), its recipient and reference. The
 * engine's status read for accounts without a callback URL. A batch
 * document (GET /v2/batches: no "recipient", a "reference") becomes an
 * update with the batch id, its reference as transid and no recipient:
 * how the engine finds the batch of a send whose answer never came. */
static int ip1_decode_poll(struct callback_result *out,
                           const struct account *acct,
                           const struct codec_call *call,
                           const struct http_response *resp, char *errstr,
                           size_t errstr_size)
{
    json_error_t jerr;
    json_t *root = NULL;
    int ret = -1;

    (void)acct;
    memset(out, 0, sizeof(*out));
    if (call->step != IP1_STEP_READ) {
        snprintf(errstr, errstr_size, "not an ip1 read");
        return -1;
    }
    if (resp->status < 200 || resp->status > 299) {
        snprintf(errstr, errstr_size, "ip1 answered HTTP %ld", resp->status);
        return -1;
    }
    root = json_loadb(resp->body ? resp->body : "", resp->body_len, 0, &jerr);
    if (root == NULL) {
        snprintf(errstr, errstr_size, "bad JSON at line %d column %d: %s",
                 jerr.line, jerr.column, jerr.text);
        return -1;
    }
    size_t n = json_is_array(root) ? json_array_size(root) : 1;
    if (n > CODEC_MAX_EVENTS) {
        snprintf(errstr, errstr_size, "ip1 read of %zu messages", n);
        goto out;
    }
    out->updates = ip1_calloc(n, sizeof(*out->updates));
    for (size_t i = 0; i < n; i++) {
        json_t *doc = json_is_array(root) ? json_array_get(root, i) : root;
        const char *ref = json_string_value(json_object_get(doc, "reference"));
        struct status_update *u = &out->updates[out->nupdates];
        if (json_object_get(doc, "recipient") == NULL && ref != NULL) {
            if (!util_json_id(u->provider_id, sizeof(u->provider_id), doc,
                              "id"))
                continue;
            util_strlcpy(u->transid, ref, sizeof(u->transid));
            u->state = STATE_SUBMITTED;
            out->nupdates++;
            continue;
        }
        json_t *st = json_object_get(doc, "statuses");
        json_t *last = json_array_get(st, json_array_size(st) - 1);
        long long code;
        if (!json_is_object(doc) || last == NULL ||
            !ip1_get_int(&code, json_object_get(last, "code")))
            continue; /* no status yet */
        /* The same reading as a delivery report's. */
        json_t *dlr = json_pack(
            "{s:O, s:I, s:O, s:O}", "id", json_object_get(doc, "id"), "code",
            (json_int_t)code, "recipient", json_object_get(doc, "recipient"),
            "reference", json_object_get(doc, "reference"));
        if (dlr == NULL) /* a field missing: not a message document */
            dlr = json_pack("{s:O, s:I}", "id", json_object_get(doc, "id"),
                            "code", (json_int_t)code);
        if (dlr != NULL && ip1_report(&out->updates[out->nupdates], dlr))
            out->nupdates++;
        json_decref(dlr);
    }
    ret = 0;

out:
    json_decref(root);
    if (ret != 0)
        callback_result_cleanup(out);
    return ret;
}

const struct codec codec_ip1 = {
    .name = "ip1",
    .creds = ip1_creds,
    .send_max_recipients = IP1_MAX_RECIPIENTS,
    .campaign_max_recipients = IP1_MAX_RECIPIENTS,
    .has_callbacks = true,
    .polls = false,
    .segments = &segment_rule_gsm, /* 160/153, 70/67 */
    .per_call = NULL,
    .check = ip1_check,
    .encode = ip1_encode,
    .decode = ip1_decode,
    .callback = ip1_callback,
    .encode_poll = ip1_encode_poll,
    .decode_poll = ip1_decode_poll,
};
