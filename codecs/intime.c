/* codecs/intime.c - InTime Messenger HTTP XML API codec.
 *
 * Every call is a POST of an ISO-8859-1 XML document to
 * base_url/<area>/<name>.ashx?user=..&hash=.. (listings are GETs), answered
 * by a bare text body: comma-separated ids, or "<n>:ERROR<m>" from a table
 * that differs per endpoint. Status reports come back as a POST of
 * messageid, status and transid to the statusurl we give. Pure: no I/O, no
 * logging. Choices the document leaves open are listed under "InTime" in
 * docs/providers-choices.md. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "codecs/codec.h"
#include "codecs/reads.h"
#include "codecs/swedish_time.h"
#include "codecs/text.h"
#include "codecs/util.h"

/* Recipients per create call. The document names no limit; 1000 keeps the
 * XML near 60 KiB. */
#define INTIME_MAX_RECIPIENTS 1000
#define INTIME_MAX_BODY       160 /* one SMS, and any flash SMS */
#define INTIME_MAX_MULTI      804 /* multisms: 6 parts of 134 */
#define INTIME_MAX_ANSWER     (1024 * 1024)
/* transid is "<job id>:<msisdn>" and must fit CODEC_ID_MAX when it comes
 * back in a callback. */
#define INTIME_MAX_JOB_ID (CODEC_ID_MAX - 1 - 1 - MSISDN_MAX)

/* ======================== Endpoints and error table ===================== */

enum intime_endpoint {
    INTIME_CREATE,
    INTIME_DELETE,
    INTIME_CONTACT_ADD,
    INTIME_GROUP_LIST,
    INTIME_GROUP_ADD,
    INTIME_GROUP_DELETE,
    INTIME_NIX_LIST,
    INTIME_NIX_ADD,
    INTIME_NIX_DELETE,
    INTIME_REMINDER_LIST,
    INTIME_REMINDER_ADD,
    INTIME_REMINDER_EDIT,
};

#define EP(e)      (1u << (e))
#define INTIME_ANY 0u
#define INTIME_LISTS \
    (EP(INTIME_GROUP_LIST) | EP(INTIME_NIX_LIST) | EP(INTIME_REMINDER_LIST))

static const char *const intime_paths[] = {
    [INTIME_CREATE] = "message/create.ashx",
    [INTIME_DELETE] = "message/delete.ashx",
    [INTIME_CONTACT_ADD] = "contacts/add.ashx",
    [INTIME_GROUP_LIST] = "contacts/listgroups.ashx",
    [INTIME_GROUP_ADD] = "contacts/addgroup.ashx",
    [INTIME_GROUP_DELETE] = "contacts/deletegroup.ashx",
    [INTIME_NIX_LIST] = "nix/list.ashx",
    [INTIME_NIX_ADD] = "nix/addnix.ashx",
    [INTIME_NIX_DELETE] = "nix/deletenix.aspx", /* sic: .aspx in 000 */
    [INTIME_REMINDER_LIST] = "reminder/list.ashx",
    [INTIME_REMINDER_ADD] = "reminder/add.ashx",
    [INTIME_REMINDER_EDIT] = "reminder/edit.ashx",
};

/* One row of the document's "Felkoder" tables. The first row whose mask
 * holds the endpoint (or is INTIME_ANY) wins, so specific rows come first. */
struct intime_error {
    unsigned endpoints;
    const char *code;
    enum call_outcome outcome;
    const char *message;
};

static const struct intime_error intime_errors[] = {
    {INTIME_ANY, "0:ERROR1", CALL_AUTH, "user or hash missing from request"},
    {INTIME_ANY, "0:ERROR2", CALL_REJECTED, "XML empty or missing"},
    {INTIME_ANY, "0:ERROR3", CALL_AUTH, "user is not verified"},
    {EP(INTIME_CREATE), "1:ERROR1", CALL_REJECTED, "XML validation failed"},
    {EP(INTIME_CREATE), "1:ERROR2", CALL_REJECTED,
     "senddate is earlier than now"},
    {EP(INTIME_CREATE), "1:ERROR3", CALL_REJECTED,
     "recipients have a bad format"},
    {EP(INTIME_CREATE), "2:ERROR0", CALL_RETRY,
     "loading the user's block list failed"},
    {EP(INTIME_CREATE), "2:ERROR1", CALL_RETRY, "message could not be sent"},
    {EP(INTIME_CREATE), "2:ERROR2", CALL_REJECTED,
     "no recipients to send the message to"},
    {EP(INTIME_DELETE), "2:ERROR1", CALL_REJECTED,
     "cannot read the id from the XML"},
    {EP(INTIME_DELETE), "2:ERROR2", CALL_FAILED,
     "message could not be deleted"},
    {EP(INTIME_CONTACT_ADD), "1:ERROR1", CALL_REJECTED,
     "XML validation failed"},
    {EP(INTIME_CONTACT_ADD), "2:ERROR1", CALL_FAILED,
     "contact could not be created"},
    {EP(INTIME_CONTACT_ADD), "3:ERROR1", CALL_REJECTED,
     "contact has an invalid e-mail address"},
    {EP(INTIME_CONTACT_ADD), "3:ERROR2", CALL_REJECTED,
     "contact has an invalid mobile number"},
    {INTIME_LISTS, "2:ERROR1", CALL_ACCEPTED, "no data to return"},
    {EP(INTIME_GROUP_ADD), "2:ERROR1", CALL_FAILED,
     "no group could be created"},
    {EP(INTIME_GROUP_DELETE), "2:ERROR1", CALL_FAILED,
     "no group could be deleted"},
    {EP(INTIME_NIX_ADD), "2:ERROR1", CALL_FAILED,
     "block-list entries could not be created"},
    {EP(INTIME_NIX_DELETE), "2:ERROR1", CALL_FAILED,
     "numbers could not be removed from the block list"},
    {EP(INTIME_REMINDER_ADD), "2:ERROR1", CALL_FAILED,
     "reminders could not be created"},
    {EP(INTIME_REMINDER_EDIT), "2:ERROR1", CALL_FAILED,
     "reminders could not be changed"},
    {INTIME_ANY, "1:ERROR1", CALL_REJECTED, "cannot open the XML message"},
};

/* The status values of the status callback ("Ta emot status"). */
struct intime_status {
    int code;
    enum sms_state state;
    const char *message;
};

static const struct intime_status intime_statuses[] = {
    {0, STATE_FAILED, "not delivered: bad message or phone number"},
    {1, STATE_FAILED,
     "not delivered: not approved by the message service "
     "provider"},
    {2, STATE_FAILED, "not delivered: bad parameter in the XML"},
    {3, STATE_FAILED, "not delivered: stopped in the operator's network"},
    {4, STATE_FAILED, "not delivered: unknown reason"},
    {20, STATE_DELIVERED, "delivered and acknowledged by the handset"},
    {21, STATE_UNKNOWN, "unknown status, no receipt received"},
};

/* ============================== Documents =============================== */

static const char intime_prolog[] =
    "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n";

/* Appends UTF-8 text XML-escaped; a CR is written as a character reference
 * so that XML line-end normalisation cannot drop it. */
static void intime_xml_text(struct buf *b, const char *s)
{
    const char *cr;

    while ((cr = strchr(s, '\r')) != NULL) {
        buf_append_xml(b, s, (size_t)(cr - s));
        buf_puts(b, "&#13;");
        s = cr + 1;
    }
    buf_append_xml(b, s, strlen(s));
}

/* Appends "<indent><name>text</name>\n". */
static void intime_element(struct buf *b, int indent, const char *name,
                           const char *text)
{
    buf_printf(b, "%*s<%s>", indent, "", name);
    intime_xml_text(b, text);
    buf_printf(b, "</%s>\n", name);
}

/* The numbers the document shows: "+46..." in recipients. We use E.164
 * with "+" everywhere (contacts, block list, reminders too). */
static void intime_number(char out[MSISDN_MAX + 2], const char *msisdn)
{
    snprintf(out, MSISDN_MAX + 2, "+%s", msisdn);
}

static bool intime_is_digits(const char *s, size_t max)
{
    size_t n = strlen(s);

    return n > 0 && n <= max && text_only(s, "0123456789");
}

/* Text must be XML 1.0 characters: no C0 controls but TAB, LF, CR. */
static int intime_check_chars(const char *what, const char *s, char *errstr,
                              size_t errstr_size)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r') {
            snprintf(errstr, errstr_size,
                     "%s holds control character U+%04X, which XML cannot "
                     "carry",
                     what, *p);
            return -1;
        }
    }
    return 0;
}

/* Converts a finished UTF-8 document to the ISO-8859-1 body of req. */
static int intime_set_body(struct http_request *req, struct buf *doc,
                           char *errstr, size_t errstr_size)
{
    char *latin1 = NULL;
    size_t len = 0;

    if (text_to_latin1(&latin1, &len, doc->data, doc->len, errstr,
                       errstr_size) != 0)
        return -1;
    req->body = latin1;
    req->body_len = len;
    return 0;
}

/* Returns 0 when the account has both credentials, else -1 with errstr. */
static int intime_has_creds(const struct account *acct, char *errstr,
                            size_t errstr_size)
{
    if (account_cred(acct, "user") != NULL &&
        account_cred(acct, "hash") != NULL)
        return 0;
    snprintf(errstr, errstr_size,
             "account %s lacks credential \"user\" or \"hash\"", acct->name);
    return -1;
}

/* Fills call->req for an endpoint: POST of `doc` or, for listings, a GET
 * with `extra_query` appended. */
static int intime_request(struct codec_call *call, const struct account *acct,
                          enum intime_endpoint ep, struct buf *doc,
                          const char *extra_query, char *errstr,
                          size_t errstr_size)
{
    struct buf url;

    if (intime_has_creds(acct, errstr, errstr_size) != 0)
        return -1;
    call->step = (int)ep;
    if (doc != NULL) {
        if (intime_set_body(&call->req, doc, errstr, errstr_size) != 0)
            return -1;
        call->req.method = "POST";
        http_request_add_header(&call->req, "Content-Type", "text/xml");
    } else {
        call->req.method = "GET";
    }
    buf_init(&url);
    buf_printf(&url, "%s/%s?", acct->base_url, intime_paths[ep]);
    struct buf query;
    buf_init(&query);
    buf_add_param(&query, "user", account_cred(acct, "user"));
    buf_add_param(&query, "hash", account_cred(acct, "hash"));
    if (extra_query != NULL)
        buf_puts(&query, extra_query);
    buf_append(&url, query.data, query.len);
    buf_cleanup(&query);
    call->req.url = buf_detach(&url, NULL);
    return 0;
}

/* Optional per-job InTime flags: {"intime": {"checknix": true,
 * "anonymize": true}} in the job document. */
static bool intime_flag(const struct job *job, const char *name)
{
    json_t *opts = job->root ? json_object_get(job->root, "intime") : NULL;

    return json_is_true(json_object_get(opts, name));
}

static const char *intime_sender(const struct account *acct,
                                 const struct job *job)
{
    return job->from != NULL ? job->from : acct->default_sender;
}

/* Builds the message/create.ashx document for job->to[first, first+count);
 * groups ride with the first chunk only. */
static void intime_message_doc(struct buf *b, const struct account *acct,
                               const struct job *job, size_t first,
                               size_t count, size_t latin1_len, int64_t now)
{
    const char *sender = intime_sender(acct, job);

    buf_puts(b, intime_prolog);
    buf_puts(b, "<message>\n");
    intime_element(b, 2, "flash", job->flash ? "1" : "0");
    intime_element(b, 2, "multisms", latin1_len > INTIME_MAX_BODY ? "1" : "0");
    if (job->send_at_ms > 0 && job->send_at_ms / 1000 > now) {
        char date[32];
        swedish_time_format(date, sizeof(date), job->send_at_ms / 1000);
        intime_element(b, 2, "senddate", date);
    }
    if (sender != NULL)
        intime_element(b, 2, "sendertitle", sender);
    intime_element(b, 2, "body", job->text);
    if (acct->callback_url != NULL) {
        struct buf url;
        buf_init(&url);
        buf_printf(&url, "%s/status", acct->callback_url);
        if (acct->webhook_token != NULL) {
            buf_puts(&url, "?token=");
            buf_append_urlenc(&url, acct->webhook_token,
                              strlen(acct->webhook_token));
        }
        intime_element(b, 2, "statusurl", url.data);
        buf_cleanup(&url);
    }
    intime_element(b, 2, "checknix", intime_flag(job, "checknix") ? "1" : "0");
    intime_element(b, 2, "anonymize",
                   intime_flag(job, "anonymize") ? "1" : "0");
    if (count > 0) {
        buf_puts(b, "  <recipients>\n");
        for (size_t i = first; i < first + count; i++) {
            char number[MSISDN_MAX + 2];
            intime_number(number, job->to[i]);
            buf_puts(b, "    <recipient transid=\"");
            buf_append_xml(b, job->id, strlen(job->id));
            buf_printf(b, ":%s\">%s</recipient>\n", job->to[i], number);
        }
        buf_puts(b, "  </recipients>\n");
    }
    if (first == 0 && job->ngroups > 0) {
        buf_puts(b, "  <groups>\n");
        for (size_t i = 0; i < job->ngroups; i++)
            buf_printf(b, "    <group groupid=\"%s\" />\n", job->groups[i]);
        buf_puts(b, "  </groups>\n");
    }
    buf_puts(b, "</message>\n");
}

/* ============================ Contact sync ============================== */

/* Builds <contacts> for contact-upsert. type: 1 SMS contact, 3 SMS and
 * e-mail contact (when an e-mail is given). */
static int intime_contacts_doc(struct buf *b, const struct job *job,
                               char *errstr, size_t errstr_size)
{
    if (job->ncontacts == 0) {
        snprintf(errstr, errstr_size, "contact-upsert needs \"contacts\"");
        return -1;
    }
    buf_puts(b, intime_prolog);
    buf_puts(b, "<contacts>\n");
    for (size_t i = 0; i < job->ncontacts; i++) {
        const struct contact *c = &job->contacts[i];
        char number[MSISDN_MAX + 2];
        /* "extra" is InTime's own string, or {"extrafield": "..."}. */
        json_t *extra = json_is_string(c->extra)
                            ? c->extra
                            : json_object_get(c->extra, "extrafield");

        if (json_is_object(c->extra) &&
            (json_object_size(c->extra) > 1 ||
             (json_object_size(c->extra) == 1 && !json_is_string(extra)))) {
            snprintf(errstr, errstr_size,
                     "contact %s: InTime keeps one string "
                     "extra.extrafield and nothing else",
                     c->msisdn);
            return -1;
        }
        intime_number(number, c->msisdn);
        buf_puts(b, "  <contact>\n");
        intime_element(b, 4, "type", c->email != NULL ? "3" : "1");
        intime_element(b, 4, "firstname", c->first_name ? c->first_name : "");
        intime_element(b, 4, "lastname", c->last_name ? c->last_name : "");
        intime_element(b, 4, "email", c->email ? c->email : "");
        intime_element(b, 4, "mobile", number);
        if (json_is_string(extra))
            intime_element(b, 4, "extrafield", json_string_value(extra));
        buf_puts(b, "    <groups>\n");
        for (size_t g = 0; g < c->ngroups; g++) {
            if (!intime_is_digits(c->groups[g], 10)) {
                snprintf(errstr, errstr_size,
                         "contact %s: group \"%.40s\" is not an InTime group "
                         "id (digits)",
                         c->msisdn, c->groups[g]);
                return -1;
            }
            buf_printf(b, "      <group groupid=\"%s\" />\n", c->groups[g]);
        }
        buf_puts(b, "    </groups>\n");
        buf_puts(b, "  </contact>\n");
    }
    buf_puts(b, "</contacts>\n");
    return 0;
}

/* group-create: <addgroups>; group-delete: <deletegroups> by id. */
static int intime_groups_doc(struct buf *b, const struct job *job, bool create,
                             char *errstr, size_t errstr_size)
{
    if (job->ngroups == 0) {
        snprintf(errstr, errstr_size, "%s needs \"groups\"",
                 job_action_name(job->action));
        return -1;
    }
    buf_puts(b, intime_prolog);
    buf_puts(b, create ? "<addgroups>\n" : "<deletegroups>\n");
    buf_puts(b, "  <groups>\n");
    for (size_t i = 0; i < job->ngroups; i++) {
        const char *g = job->groups[i];
        if (create) {
            buf_puts(b, "    <group groupname=\"");
            buf_append_xml(b, g, strlen(g));
            buf_puts(b, "\" />\n");
        } else if (intime_is_digits(g, 10)) {
            buf_printf(b,
                       "    <group groupid=\"%s\" deletecontacts=\"false\" "
                       "/>\n",
                       g);
        } else {
            snprintf(errstr, errstr_size,
                     "group \"%.40s\" is not an InTime group id (digits)", g);
            return -1;
        }
    }
    buf_puts(b, "  </groups>\n");
    buf_puts(b, create ? "</addgroups>\n" : "</deletegroups>\n");
    return 0;
}

/* blocklist-add / blocklist-remove: <addnixentries> / <deletenixentries>. */
static int intime_nix_doc(struct buf *b, const struct job *job, bool add,
                          char *errstr, size_t errstr_size)
{
    const char *root = add ? "addnixentries" : "deletenixentries";

    if (job->nmsisdns == 0) {
        snprintf(errstr, errstr_size, "%s needs \"msisdns\"",
                 job_action_name(job->action));
        return -1;
    }
    buf_puts(b, intime_prolog);
    buf_printf(b, "<%s>\n  <nixentries>\n", root);
    for (size_t i = 0; i < job->nmsisdns; i++) {
        char number[MSISDN_MAX + 2];
        intime_number(number, job->msisdns[i]);
        buf_printf(b, "    <nixentry mobile=\"%s\" />\n", number);
    }
    buf_printf(b, "  </nixentries>\n</%s>\n", root);
    return 0;
}

/* The reminder fields, in the document's order; `edit` marks the fields of
 * reminder/edit.ashx only. */
enum intime_field_kind {
    INTIME_FIELD_TEXT,
    INTIME_FIELD_DATE,
    INTIME_FIELD_MOBILE,
    INTIME_FIELD_ID,
    INTIME_FIELD_BOOL,
};

struct intime_field {
    const char *name;
    enum intime_field_kind kind;
    bool edit_only;
    bool required_add;
};

static const struct intime_field intime_reminder_fields[] = {
    {"appointmentid", INTIME_FIELD_ID, true, false},
    {"appointmentdate", INTIME_FIELD_DATE, false, true},
    {"organizer_firstname", INTIME_FIELD_TEXT, false, false},
    {"organizer_lastname", INTIME_FIELD_TEXT, false, false},
    {"organizer_title", INTIME_FIELD_TEXT, false, false},
    {"attendant_firstname", INTIME_FIELD_TEXT, false, false},
    {"attendant_lastname", INTIME_FIELD_TEXT, false, false},
    {"attendant_mobile", INTIME_FIELD_MOBILE, false, true},
    {"active", INTIME_FIELD_BOOL, true, false},
};

#define INTIME_NFIELDS \
    (sizeof(intime_reminder_fields) / sizeof(intime_reminder_fields[0]))

static const struct intime_field *intime_reminder_field(const char *name)
{
    for (size_t i = 0; i < INTIME_NFIELDS; i++) {
        if (strcmp(intime_reminder_fields[i].name, name) == 0)
            return &intime_reminder_fields[i];
    }
    return NULL;
}

/* Writes one reminder field's value (already checked to be present). */
static int intime_reminder_value(struct buf *b, const struct intime_field *f,
                                 json_t *value, size_t idx, char *errstr,
                                 size_t errstr_size)
{
    char text[64];

    switch (f->kind) {
    case INTIME_FIELD_TEXT:
        if (!json_is_string(value))
            goto bad;
        if (intime_check_chars(f->name, json_string_value(value), errstr,
                               errstr_size) != 0)
            return -1;
        intime_element(b, 4, f->name, json_string_value(value));
        return 0;
    case INTIME_FIELD_DATE:
        if (!json_is_string(value) ||
            swedish_time_localise(text, sizeof(text), json_string_value(value),
                                  errstr, errstr_size) != 0)
            goto bad;
        intime_element(b, 4, f->name, text);
        return 0;
    case INTIME_FIELD_MOBILE: {
        char msisdn[MSISDN_MAX + 1];
        char number[MSISDN_MAX + 2];
        if (!json_is_string(value) ||
            msisdn_normalise(msisdn, json_string_value(value), errstr,
                             errstr_size) != 0)
            goto bad;
        intime_number(number, msisdn);
        intime_element(b, 4, f->name, number);
        return 0;
    }
    case INTIME_FIELD_ID:
        if (json_is_integer(value) && json_integer_value(value) > 0) {
            snprintf(text, sizeof(text), "%" JSON_INTEGER_FORMAT,
                     json_integer_value(value));
        } else if (json_is_string(value) &&
                   intime_is_digits(json_string_value(value), 18)) {
            snprintf(text, sizeof(text), "%s", json_string_value(value));
        } else {
            goto bad;
        }
        intime_element(b, 4, f->name, text);
        return 0;
    case INTIME_FIELD_BOOL:
        if (!json_is_boolean(value))
            goto bad;
        intime_element(b, 4, f->name, json_is_true(value) ? "true" : "false");
        return 0;
    }
bad:
    snprintf(errstr, errstr_size, "reminders[%zu].%s: bad value", idx, f->name);
    return -1;
}

/* reminder-add / reminder-edit: job->reminders is an array of objects whose
 * keys are the document's element names. */
static int intime_reminders_doc(struct buf *b, const struct job *job, bool edit,
                                char *errstr, size_t errstr_size)
{
    size_t idx;
    json_t *r;

    if (!json_is_array(job->reminders) ||
        json_array_size(job->reminders) == 0) {
        snprintf(errstr, errstr_size, "%s needs \"reminders\"",
                 job_action_name(job->action));
        return -1;
    }
    buf_puts(b, intime_prolog);
    buf_puts(b, "<reminderappointments>\n");
    json_array_foreach(job->reminders, idx, r)
    {
        const char *key;
        json_t *value;

        if (!json_is_object(r)) {
            snprintf(errstr, errstr_size, "reminders[%zu] is not an object",
                     idx);
            return -1;
        }
        json_object_foreach(r, key, value)
        {
            const struct intime_field *f = intime_reminder_field(key);
            if (f == NULL || (f->edit_only && !edit)) {
                snprintf(errstr, errstr_size,
                         "reminders[%zu]: InTime has no field \"%.40s\" for "
                         "%s",
                         idx, key, job_action_name(job->action));
                return -1;
            }
        }
        buf_puts(b, "  <reminderappointment>\n");
        for (size_t i = 0; i < INTIME_NFIELDS; i++) {
            const struct intime_field *f = &intime_reminder_fields[i];
            json_t *v = json_object_get(r, f->name);
            bool required = edit ? f->kind == INTIME_FIELD_ID : f->required_add;
            if (v == NULL && required) {
                snprintf(errstr, errstr_size, "reminders[%zu] needs \"%s\"",
                         idx, f->name);
                return -1;
            }
            if (v == NULL || (f->edit_only && !edit))
                continue;
            if (intime_reminder_value(b, f, v, idx, errstr, errstr_size) != 0)
                return -1;
        }
        buf_puts(b, "  </reminderappointment>\n");
    }
    buf_puts(b, "</reminderappointments>\n");
    return 0;
}

/* Builds the document and endpoint of a contact-sync job. */
static int intime_contact_doc(struct buf *b, enum intime_endpoint *ep,
                              const struct job *job, char *errstr,
                              size_t errstr_size)
{
    switch (job->action) {
    case ACTION_CONTACT_UPSERT:
        *ep = INTIME_CONTACT_ADD;
        return intime_contacts_doc(b, job, errstr, errstr_size);
    case ACTION_GROUP_CREATE:
    case ACTION_GROUP_DELETE:
        *ep = job->action == ACTION_GROUP_CREATE ? INTIME_GROUP_ADD
                                                 : INTIME_GROUP_DELETE;
        return intime_groups_doc(b, job, job->action == ACTION_GROUP_CREATE,
                                 errstr, errstr_size);
    case ACTION_BLOCKLIST_ADD:
    case ACTION_BLOCKLIST_REMOVE:
        *ep = job->action == ACTION_BLOCKLIST_ADD ? INTIME_NIX_ADD
                                                  : INTIME_NIX_DELETE;
        return intime_nix_doc(b, job, job->action == ACTION_BLOCKLIST_ADD,
                              errstr, errstr_size);
    case ACTION_REMINDER_ADD:
    case ACTION_REMINDER_EDIT:
        *ep = job->action == ACTION_REMINDER_ADD ? INTIME_REMINDER_ADD
                                                 : INTIME_REMINDER_EDIT;
        return intime_reminders_doc(b, job, job->action == ACTION_REMINDER_EDIT,
                                    errstr, errstr_size);
    default:
        snprintf(errstr, errstr_size, "InTime has no %s action",
                 job_action_name(job->action));
        return -1;
    }
}

/* =============================== Checks ================================= */

/* Sender title: at most 11 of a-z A-Z 0-9 space . - + (no ÅÄÖ), or at most
 * 15 digits. */
static int intime_check_sender(const char *sender, char *errstr,
                               size_t errstr_size)
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyz"
                                "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .-+";
    size_t len = strlen(sender);

    if (intime_is_digits(sender, 15))
        return 0;
    if (len == 0 || len > 11 || !text_only(sender, alnum)) {
        snprintf(errstr, errstr_size,
                 "sender \"%.40s\" is not 1-11 of a-z A-Z 0-9 space . - + "
                 "or 1-15 digits",
                 sender);
        return -1;
    }
    return 0;
}

/* Checks a send or campaign create; sets *latin1_len to the text's length
 * in ISO-8859-1 characters. */
static int intime_check_message(const struct account *acct,
                                const struct job *job, size_t *latin1_len,
                                char *errstr, size_t errstr_size)
{
    const char *sender = intime_sender(acct, job);
    char *latin1 = NULL;
    size_t len = 0;

    if (strlen(job->id) > INTIME_MAX_JOB_ID) {
        snprintf(errstr, errstr_size,
                 "job id is longer than %d bytes, too long for InTime's "
                 "transid",
                 INTIME_MAX_JOB_ID);
        return -1;
    }
    if (job->text == NULL || job->text_len == 0) {
        snprintf(errstr, errstr_size, "text is empty");
        return -1;
    }
    if (intime_check_chars("text", job->text, errstr, errstr_size) != 0)
        return -1;
    if (text_to_latin1(&latin1, &len, job->text, job->text_len, errstr,
                       errstr_size) != 0)
        return -1;
    free(latin1);
    if (job->flash && len > INTIME_MAX_BODY) {
        snprintf(errstr, errstr_size,
                 "flash text is %zu characters; InTime allows %d", len,
                 INTIME_MAX_BODY);
        return -1;
    }
    if (len > INTIME_MAX_MULTI) {
        snprintf(errstr, errstr_size,
                 "text is %zu characters; InTime allows %d (6 SMS)", len,
                 INTIME_MAX_MULTI);
        return -1;
    }
    if (sender == NULL) {
        snprintf(errstr, errstr_size,
                 "InTime needs a sender: give the job a \"from\" or the "
                 "account a default_sender");
        return -1;
    }
    if (intime_check_sender(sender, errstr, errstr_size) != 0)
        return -1;
    if (job->nto == 0 && job->ngroups == 0) {
        snprintf(errstr, errstr_size, "no recipients and no groups");
        return -1;
    }
    for (size_t i = 0; i < job->ngroups; i++) {
        if (!intime_is_digits(job->groups[i], 10)) {
            snprintf(errstr, errstr_size,
                     "group \"%.40s\" is not an InTime group id (digits)",
                     job->groups[i]);
            return -1;
        }
    }
    *latin1_len = len;
    return 0;
}

static int intime_check(const struct account *acct, const struct job *job,
                        char *errstr, size_t errstr_size)
{
    size_t len;
    struct buf doc;
    enum intime_endpoint ep;
    int ret;
    if (job->type == JOB_CONTACTS && job_action_is_read(job->action))
        return codec_check_read(&codec_intime, job, errstr, errstr_size);

    if (intime_has_creds(acct, errstr, errstr_size) != 0)
        return -1;
    switch (job->type) {
    case JOB_SEND:
        return intime_check_message(acct, job, &len, errstr, errstr_size);
    case JOB_CAMPAIGN:
        if (job->action == ACTION_CANCEL)
            return 0;
        return intime_check_message(acct, job, &len, errstr, errstr_size);
    case JOB_CONTACTS:
        buf_init(&doc);
        ret = intime_contact_doc(&doc, &ep, job, errstr, errstr_size);
        if (ret == 0)
            ret = intime_check_chars("contact data", doc.data, errstr,
                                     errstr_size);
        if (ret == 0) {
            char *latin1 = NULL;
            ret = text_to_latin1(&latin1, &len, doc.data, doc.len, errstr,
                                 errstr_size);
            free(latin1);
        }
        buf_cleanup(&doc);
        return ret;
    }
    snprintf(errstr, errstr_size, "unknown job type");
    return -1;
}

/* =============================== Encode ================================= */

static int intime_encode_one(struct codec_calls *out,
                             const struct account *acct, const struct job *job,
                             size_t first, size_t count, int64_t now,
                             char *errstr, size_t errstr_size)
{
    struct codec_call *call = NULL;
    struct buf doc;
    size_t len = 0;
    int ret = -1;

    buf_init(&doc);
    if (job->type == JOB_CAMPAIGN && job->action == ACTION_CANCEL) {
        /* InTime deletes by message id: the worker cancels each id it
         * recorded through encode_poll(OP_CANCEL); nothing to send here. */
        ret = 0;
        goto out;
    }
    if (intime_check(acct, job, errstr, errstr_size) != 0)
        goto out;

    enum intime_endpoint ep = INTIME_CREATE;
    enum codec_op op = OP_CONTACTS;
    if (job->type == JOB_CONTACTS) {
        if (intime_contact_doc(&doc, &ep, job, errstr, errstr_size) != 0)
            goto out;
    } else {
        if (first > job->nto || count > job->nto - first ||
            count > INTIME_MAX_RECIPIENTS) {
            snprintf(errstr, errstr_size, "bad recipient range %zu+%zu", first,
                     count);
            goto out;
        }
        intime_check_message(acct, job, &len, errstr, errstr_size);
        intime_message_doc(&doc, acct, job, first, count, len, now);
        op = job->type == JOB_SEND ? OP_SEND : OP_CAMPAIGN_CREATE;
    }

    call = codec_calls_add(out, op);
    if (call == NULL) {
        snprintf(errstr, errstr_size, "too many calls for one job");
        goto out;
    }
    call->first = first;
    call->count = job->type == JOB_CONTACTS ? 0 : count;
    if (intime_request(call, acct, ep, &doc, NULL, errstr, errstr_size) != 0)
        goto out;
    call = NULL;
    ret = 0;

out:
    if (call != NULL) { /* appended but unusable: take it back */
        http_request_cleanup(&call->req);
        out->ncalls--;
    }
    buf_cleanup(&doc);
    return ret;
}

/* One slice, one call: see codec_encode_slice(). */
static int intime_encode(struct codec_calls *out, const struct account *acct,
                         const struct job *job, size_t first, size_t count,
                         int64_t now, char *errstr, size_t errstr_size)
{
    return codec_encode_slice(&codec_intime, intime_encode_one, out, acct, job,
                              first, count, now, errstr, errstr_size);
}

/* Builds a cancel (message/delete.ashx of one numeric message id) or a
 * listing (OP_READ: "groups", "nix", "reminders" or "reminders:<id>"). */
static int intime_encode_poll(struct codec_calls *out,
                              const struct account *acct, enum codec_op op,
                              const char *what, int64_t since, char *errstr,
                              size_t errstr_size)
{
    struct codec_call *call = NULL;
    struct buf doc, extra;
    enum intime_endpoint ep;
    int ret = -1;

    (void)since;
    buf_init(&doc);
    buf_init(&extra);
    if (op == OP_CANCEL) {
        if (what == NULL || !intime_is_digits(what, 18)) {
            snprintf(errstr, errstr_size,
                     "InTime message ids are digits, not \"%.40s\"",
                     what ? what : "");
            goto out;
        }
        ep = INTIME_DELETE;
        buf_puts(&doc, intime_prolog);
        buf_puts(&doc, "<message>\n");
        intime_element(&doc, 2, "messageid", what);
        buf_puts(&doc, "</message>\n");
    } else if (op == OP_READ && what != NULL && strcmp(what, "groups") == 0) {
        ep = INTIME_GROUP_LIST;
    } else if (op == OP_READ && what != NULL && strcmp(what, "nix") == 0) {
        ep = INTIME_NIX_LIST;
    } else if (op == OP_READ && what != NULL &&
               strncmp(what, "reminders", 9) == 0 &&
               (what[9] == '\0' ||
                (what[9] == ':' && intime_is_digits(what + 10, 18)))) {
        ep = INTIME_REMINDER_LIST;
        if (what[9] == ':')
            buf_add_param(&extra, "&id", what + 10);
    } else {
        snprintf(errstr, errstr_size,
                 "InTime pushes statuses and has no inbound SMS; it can "
                 "cancel a message id or read groups, nix, reminders[:id]");
        goto out;
    }

    call = codec_calls_add(out, op);
    if (call == NULL) {
        snprintf(errstr, errstr_size, "too many calls");
        goto out;
    }
    if (op == OP_CANCEL)
        call->first = (size_t)strtoull(what, NULL, 10);
    if (intime_request(call, acct, ep, op == OP_CANCEL ? &doc : NULL,
                       extra.len > 0 ? extra.data : NULL, errstr,
                       errstr_size) != 0)
        goto out;
    call = NULL;
    ret = 0;

out:
    if (call != NULL) {
        http_request_cleanup(&call->req);
        out->ncalls--;
    }
    buf_cleanup(&extra);
    buf_cleanup(&doc);
    return ret;
}

/* =============================== Decode ================================= */

/* Copies at most 120 bytes of an answer into `out` as one printable line. */
static void intime_snippet(char *out, size_t out_size, const char *s,
                           size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len && i < 120 && n + 1 < out_size; i++) {
        unsigned char c = (unsigned char)s[i];
        out[n++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    if (out_size > 0)
        out[n] = '\0';
}

/* True when s (len bytes) is "<digit>:ERROR<digit>". */
static bool intime_is_error(const char *s, size_t len)
{
    return len == 8 && isdigit((unsigned char)s[0]) &&
           memcmp(s + 1, ":ERROR", 6) == 0 && isdigit((unsigned char)s[7]);
}

static const struct intime_error *intime_error_find(const char *code,
                                                    enum intime_endpoint ep)
{
    for (size_t i = 0; i < sizeof(intime_errors) / sizeof(intime_errors[0]);
         i++) {
        const struct intime_error *e = &intime_errors[i];
        if ((e->endpoints == INTIME_ANY || (e->endpoints & EP(ep)) != 0) &&
            strcmp(e->code, code) == 0)
            return e;
    }
    return NULL;
}

/* Parses "4510,4511,-1472" into a JSON array of integers. Returns NULL when
 * any token is not an integer. */
static json_t *intime_parse_ids(const char *s, size_t len)
{
    json_t *ids = json_array();
    const char *p = s, *end = s + len;

    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *tok_end = comma != NULL ? comma : end;
        char tok[24];

        while (p < tok_end && isspace((unsigned char)*p))
            p++;
        size_t n = (size_t)(tok_end - p);
        while (n > 0 && isspace((unsigned char)p[n - 1]))
            n--;
        if (n == 0 || n >= sizeof(tok))
            goto bad;
        memcpy(tok, p, n);
        tok[n] = '\0';
        size_t start = tok[0] == '-' ? 1 : 0;
        if (tok[start] == '\0' || !text_only(tok + start, "0123456789"))
            goto bad;
        errno = 0;
        long long v = strtoll(tok, NULL, 10);
        if (errno != 0)
            goto bad;
        json_array_append_new(ids, json_integer(v));
        if (comma == NULL)
            break;
        p = comma + 1;
        if (p == end) /* trailing comma, as in "GroupId,GroupId," */
            break;
    }
    if (json_array_size(ids) == 0)
        goto bad;
    return ids;
bad:
    json_decref(ids);
    return NULL;
}

/* Converts an element tree to JSON: an element with element children is an
 * object (attributes included), a leaf is its text. */
static json_t *intime_xml_json(xmlNode *node, int depth)
{
    bool has_children = false;

    for (xmlNode *c = node->children; c != NULL; c = c->next) {
        if (c->type == XML_ELEMENT_NODE)
            has_children = true;
    }
    if (!has_children && node->properties == NULL) {
        xmlChar *text = xmlNodeGetContent(node);
        json_t *s = json_string(text != NULL ? (const char *)text : "");
        xmlFree(text);
        return s != NULL ? s : json_string("");
    }
    json_t *obj = json_object();
    for (xmlAttr *a = node->properties; a != NULL; a = a->next) {
        xmlChar *v = xmlNodeGetContent((xmlNode *)a);
        json_object_set_new(obj, (const char *)a->name,
                            json_string(v ? (const char *)v : ""));
        xmlFree(v);
    }
    if (!has_children) {
        xmlChar *text = xmlNodeGetContent(node);
        json_object_set_new(obj, "name",
                            json_string(text ? (const char *)text : ""));
        xmlFree(text);
    }
    for (xmlNode *c = node->children; c != NULL && depth < 8; c = c->next) {
        if (c->type == XML_ELEMENT_NODE)
            json_object_set_new(obj, (const char *)c->name,
                                intime_xml_json(c, depth + 1));
    }
    return obj;
}

/* Reads a listing (<groups>, <nixentries>, <reminderappointments>) into a
 * JSON array, one entry per child element. DTDs are refused outright, so
 * entity expansion cannot happen; the network is never touched. */
static int intime_parse_list(json_t **out, const char *body, size_t len,
                             char *errstr, size_t errstr_size)
{
    xmlDoc *doc = NULL;
    int ret = -1;

    for (size_t i = 0; i + 9 <= len; i++) {
        if (body[i] == '<' && body[i + 1] == '!' &&
            memcmp(body + i + 2, "DOCTYPE", 7) == 0) {
            snprintf(errstr, errstr_size, "XML answer with a DTD refused");
            goto out;
        }
    }
    doc = xmlReadMemory(body, (int)len, NULL, NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR |
                            XML_PARSE_NOWARNING);
    if (doc == NULL) {
        util_xml_errstr(errstr, errstr_size);
        goto out;
    }
    xmlNode *root = xmlDocGetRootElement(doc);
    if (root == NULL) {
        snprintf(errstr, errstr_size, "XML answer without a root element");
        goto out;
    }
    json_t *list = json_array();
    for (xmlNode *c = root->children; c != NULL; c = c->next) {
        if (c->type == XML_ELEMENT_NODE)
            json_array_append_new(list, intime_xml_json(c, 0));
    }
    *out = list;
    ret = 0;
out:
    xmlFreeDoc(doc);
    return ret;
}

/* Classifies an answer by its HTTP status alone; false when the body must
 * decide (2xx). */
static bool intime_http_outcome(struct call_result *out,
                                const struct http_response *resp)
{
    if (call_result_from_status(out, resp))
        return true;
    if (resp->status >= 200 && resp->status < 300)
        return false;
    call_result_set_error(out, CALL_REJECTED, "http_status",
                          "InTime answered HTTP %ld", resp->status);
    return true;
}

/* Fills per-recipient results of a create from the id list. */
static void intime_send_ids(struct call_result *out,
                            const struct codec_call *call, json_t *ids)
{
    out->outcome = CALL_ACCEPTED;
    call_result_spread(out, call->count);
    for (size_t i = 0; i < call->count; i++) {
        struct recipient_result *r = &out->recipients[i];
        json_t *id = json_array_get(ids, i);
        r->outcome = CALL_ACCEPTED;
        if (id != NULL) {
            snprintf(r->provider_id, sizeof(r->provider_id),
                     "%" JSON_INTEGER_FORMAT, json_integer_value(id));
            snprintf(r->provider_status, sizeof(r->provider_status), "OK");
        } else {
            /* Fewer ids than recipients: taken, but untrackable. */
            snprintf(r->provider_status, sizeof(r->provider_status), "no-id");
        }
    }
}

/* Sets the result of a contact-sync or cancel answer from its id list. */
static void intime_other_ids(struct call_result *out,
                             const struct codec_call *call, json_t *ids)
{
    size_t i;
    json_t *id;
    struct buf failed;

    buf_init(&failed);
    json_array_foreach(ids, i, id)
    {
        if (json_integer_value(id) < 0)
            buf_printf(&failed, "%s%" JSON_INTEGER_FORMAT,
                       failed.len ? "," : "", -json_integer_value(id));
    }
    out->data = json_pack("{s:O}", "ids", ids);
    if (call->op == OP_CANCEL &&
        (json_array_size(ids) != 1 ||
         (size_t)json_integer_value(json_array_get(ids, 0)) != call->first)) {
        call_result_set_error(out, CALL_FAILED, "unexpected-id",
                              "delete answered another id");
    } else if (failed.len > 0) {
        call_result_set_error(out, CALL_FAILED, "negative-id",
                              "InTime could not change %.150s", failed.data);
    } else {
        out->outcome = CALL_ACCEPTED;
        if (json_array_size(ids) == 1)
            snprintf(out->provider_id, sizeof(out->provider_id),
                     "%" JSON_INTEGER_FORMAT,
                     json_integer_value(json_array_get(ids, 0)));
    }
    buf_cleanup(&failed);
}

static int intime_decode(struct call_result *out, const struct account *acct,
                         const struct job *job, const struct codec_call *call,
                         const struct http_response *resp, char *errstr,
                         size_t errstr_size)
{
    enum intime_endpoint ep = (enum intime_endpoint)call->step;
    const char *body = resp->body != NULL ? resp->body : "";
    size_t len = resp->body != NULL ? resp->body_len : 0;
    json_t *ids = NULL;
    int ret = -1;

    (void)acct;
    (void)job;
    memset(out, 0, sizeof(*out));
    if (intime_http_outcome(out, resp))
        return 0;
    if (len > INTIME_MAX_ANSWER) {
        snprintf(errstr, errstr_size, "answer of %zu bytes is too large", len);
        return -1;
    }
    /* Strip whitespace and a UTF-8 byte order mark. */
    if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0) {
        body += 3;
        len -= 3;
    }
    while (len > 0 && isspace((unsigned char)*body)) {
        body++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)body[len - 1]))
        len--;

    if (intime_is_error(body, len)) {
        char code[9];
        memcpy(code, body, 8);
        code[8] = '\0';
        const struct intime_error *e = intime_error_find(code, ep);
        snprintf(out->provider_status, sizeof(out->provider_status), "%s",
                 code);
        if (e != NULL && e->outcome == CALL_ACCEPTED) { /* empty listing */
            out->outcome = CALL_ACCEPTED;
            out->data = json_array();
        } else if (e != NULL) {
            call_result_set_error(out, e->outcome, code, "%s", e->message);
        } else {
            call_result_set_error(out, CALL_FAILED, code,
                                  "undocumented InTime error");
        }
        return 0;
    }

    if ((INTIME_LISTS & EP(ep)) != 0) {
        if (intime_parse_list(&out->data, body, len, errstr, errstr_size) != 0)
            goto out;
        out->outcome = CALL_ACCEPTED;
        ret = 0;
        goto out;
    }

    ids = intime_parse_ids(body, len);
    if (ids == NULL) {
        char snippet[128];
        intime_snippet(snippet, sizeof(snippet), body, len);
        snprintf(errstr, errstr_size, "unexpected InTime answer: %s", snippet);
        goto out;
    }
    if (call->op == OP_SEND || call->op == OP_CAMPAIGN_CREATE)
        intime_send_ids(out, call, ids);
    else
        intime_other_ids(out, call, ids);
    ret = 0;

out:
    json_decref(ids);
    if (ret != 0)
        call_result_cleanup(out);
    return ret;
}

/* ============================== Callback ================================ */

/* Reads one parameter from the form body, else from the query. */
static int intime_param(char *out, size_t out_size,
                        const struct http_inbound *in, const char *name)
{
    if (in->body != NULL && in->body_len > 0 &&
        form_get(out, out_size, in->body, in->body_len, name, NULL, 0) == 0)
        return 0;
    if (in->query != NULL && form_get(out, out_size, in->query,
                                      strlen(in->query), name, NULL, 0) == 0)
        return 0;
    return -1;
}

static int intime_callback(struct callback_result *out,
                           const struct account *acct, enum callback_kind kind,
                           const struct http_inbound *in, char *errstr,
                           size_t errstr_size)
{
    char messageid[CODEC_ID_MAX], status[16], transid[CODEC_ID_MAX];
    struct status_update *u;

    (void)acct;
    memset(out, 0, sizeof(*out));
    out->answer_content_type = "text/plain";
    if (kind != CALLBACK_STATUS) {
        out->answer_status = 404;
        snprintf(out->answer_body, sizeof(out->answer_body), "not found");
        snprintf(errstr, errstr_size, "InTime sends no inbound SMS");
        return -1;
    }
    if (intime_param(messageid, sizeof(messageid), in, "messageid") != 0 ||
        !intime_is_digits(messageid, 18) ||
        intime_param(status, sizeof(status), in, "status") != 0 ||
        !intime_is_digits(status, 3)) {
        out->answer_status = 400;
        snprintf(out->answer_body, sizeof(out->answer_body),
                 "bad status callback");
        snprintf(errstr, errstr_size,
                 "status callback without a numeric messageid and status");
        return -1;
    }
    if (intime_param(transid, sizeof(transid), in, "transid") != 0)
        transid[0] = '\0';

    u = calloc(1, sizeof(*u));
    if (u == NULL)
        abort();
    out->updates = u;
    out->nupdates = 1;
    snprintf(u->provider_id, sizeof(u->provider_id), "%s", messageid);
    snprintf(u->provider_status, sizeof(u->provider_status), "%s", status);
    snprintf(u->transid, sizeof(u->transid), "%s", transid);
    const char *colon = strrchr(transid, ':');
    if (colon != NULL && intime_is_digits(colon + 1, MSISDN_MAX))
        snprintf(u->recipient, sizeof(u->recipient), "%s", colon + 1);

    int code = (int)strtol(status, NULL, 10); /* 1-3 digits, checked */
    u->state = STATE_UNKNOWN;
    for (size_t i = 0; i < sizeof(intime_statuses) / sizeof(intime_statuses[0]);
         i++) {
        const struct intime_status *st = &intime_statuses[i];
        if (st->code != code)
            continue;
        u->state = st->state;
        if (st->state == STATE_FAILED) {
            snprintf(u->error_code, sizeof(u->error_code), "%d", code);
            snprintf(u->error_message, sizeof(u->error_message), "%s",
                     st->message);
        }
    }
    out->answer_status = 200;
    snprintf(out->answer_body, sizeof(out->answer_body), "%s", messageid);
    return 0;
}

/* ================================ Codec ================================= */

static const char *const intime_creds[] = {"user", "hash", NULL};

/* InTime bills characters: 160 in one SMS, 134 in each part of a
 * multi-SMS (000: "max 6 SMS med max 134 tecken"). */
static const struct segment_rule intime_segments = {
    .gsm_single = 160,
    .gsm_part = 134,
    .ucs_single = 160,
    .ucs_part = 134,
    .newline_cost = 0,
    .chars = true,
};

const struct codec codec_intime = {
    .name = "intime",
    .creds = intime_creds,
    .send_max_recipients = INTIME_MAX_RECIPIENTS,
    .campaign_max_recipients = INTIME_MAX_RECIPIENTS,
    .has_callbacks = true,
    .polls = false,
    .segments = &intime_segments,
    .per_call = NULL,
    .check = intime_check,
    .encode = intime_encode,
    .decode = intime_decode,
    .callback = intime_callback,
    .encode_poll = intime_encode_poll,
    .decode_poll = NULL,
};
