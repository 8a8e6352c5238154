/* codecs/ip1_legacy.c - iP.1 SMS Gateway (deprecated) codec: URL call and
 * SOAP web service.
 *
 * A plain, immediate send to one recipient is the URL call, a GET of
 * base_url/sendsms.aspx answered by a bare number (below 1000 a status code
 * from Appendix A, above an SMS id). Everything the URL call cannot do --
 * flash, scheduled and multi-recipient (bundle) sends, cancels, status and
 * balance -- is a SOAP 1.1 POST to base_url/sendSms/sendSms.asmx; MMS go to
 * base_url/mms/mms.asmx. Incoming SMS arrive as a GET we answer with a bare
 * "OK". Pure: no I/O, no logging. The choices the document leaves open
 * (SOAP namespace and operation names above all) are listed under "iP.1
 * legacy" in docs/providers-choices.md. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "codecs/codec.h"
#include "codecs/reads.h"
#include "codecs/swedish_time.h"
#include "codecs/text.h"
#include "codecs/util.h"

#define IP1L_MAX_RECIPIENTS 500    /* per bundle; the document names none */
#define IP1L_SINGLE         160    /* GSM-7 septets in one SMS */
#define IP1L_PART           152    /* per part of a long SMS (001) */
#define IP1L_MAX_PARTS      10     /* our cap; the document names none */
#define IP1L_MMS_MAX        300000 /* decoded bytes of all MMS files */
#define IP1L_MAX_ANSWER     (1024 * 1024)
#define IP1L_NS             "http://tempuri.org/"
#define IP1L_BUNDLE_PREFIX  "bundle:"

/* 001: 160 characters in one SMS, long ones "uppdelade I flera
 * meddelanden upp till 152 tecken", and a newline "räknas alltså som tre
 * tecken" (it goes as %0a). UCS-2 is not carried; 70/67 for the record. */
static const struct segment_rule ip1l_segments = {
    .gsm_single = IP1L_SINGLE,
    .gsm_part = IP1L_PART,
    .ucs_single = 70,
    .ucs_part = 67,
    .newline_cost = 3,
    .chars = false,
};

/* ========================= Operations and codes ========================= */

/* What a call is, kept in codec_call.step. */
enum ip1l_step {
    IP1L_URL,   /* sendsms.aspx */
    IP1L_FLASH, /* the SOAP operations ... */
    IP1L_TIMED,
    IP1L_BUNDLE,
    IP1L_TIMED_BUNDLE,
    IP1L_CANCEL_BUNDLE,
    IP1L_CANCEL_SMS,
    IP1L_STATUS,
    IP1L_STATUS_BUNDLE,
    IP1L_BALANCE,
    IP1L_MMS,         /* mms.asmx */
    IP1L_SMS,         /* sendSms.asmx again: the one confirmed send operation */
    IP1L_TIDPUNKT,    /* when a scheduled SMS goes */
    IP1L_BESKRIVNING, /* the text of a status code */
    IP1L_STATUS_MMS,  /* mms.asmx: the status of one MMS */
};

/* The SOAP operations, one table. `confirmed`: a working client uses the
 * name against the live service (providers.md §2.2: "sms" and "balans").
 * The other names follow the document's headings, which give no wire
 * names; they are sent only when the account's
 * options.legacy_unconfirmed_soap allows it, and live here so that one
 * edit fixes them. The stand-in plays the same set from its own table. */
static const struct ip1l_op {
    const char *name;
    bool confirmed;
} ip1l_ops[] = {
    [IP1L_URL] = {NULL, true}, /* the URL call: documented, not SOAP */
    [IP1L_FLASH] = {"FlashSMS", false},
    [IP1L_TIMED] = {"TimedSMS", false},
    [IP1L_BUNDLE] = {"BundleSMS", false},
    [IP1L_TIMED_BUNDLE] = {"TimedBundleSMS", false},
    [IP1L_CANCEL_BUNDLE] = {"CancelBundleSMS", false},
    [IP1L_CANCEL_SMS] = {"CancelSMS", false},
    [IP1L_STATUS] = {"Status", false},
    [IP1L_STATUS_BUNDLE] = {"statusBundle", false},
    [IP1L_BALANCE] = {"balans", true},
    [IP1L_MMS] = {"sendMMS", false},
    [IP1L_SMS] = {"sms", true},
    [IP1L_TIDPUNKT] = {"Tidpunkt", false},
    [IP1L_BESKRIVNING] = {"Beskrivning", false},
    [IP1L_STATUS_MMS] = {"statusMMS", false},
};

/* Returns 0 when `acct` may send `step`; else -1 with errstr saying what
 * setting would allow it. */
static int ip1l_allowed(const struct account *acct, enum ip1l_step step,
                        char *errstr, size_t errstr_size)
{
    if (ip1l_ops[step].confirmed || acct->options.legacy_unconfirmed_soap)
        return 0;
    snprintf(errstr, errstr_size,
             "the iP.1 legacy SOAP operation %s is unconfirmed (no working "
             "client uses its name); set \"options\": "
             "{\"legacy_unconfirmed_soap\": true} on account %s to send it",
             ip1l_ops[step].name, acct->name ? acct->name : "?");
    return -1;
}

/* A status code of Appendix A (SMS) or B (MMS): what it means as the answer
 * to a call, and as the state of a message a Status poll returns.
 * `call_error` marks codes that describe our call, not the message. */
struct ip1l_code {
    int code;
    const char *name;
    enum call_outcome outcome;
    enum sms_state state;
    bool call_error;
};

static const struct ip1l_code ip1l_sms_codes[] = {
    {0, "delivered to gateway", CALL_ACCEPTED, STATE_SUBMITTED, false},
    {1, "gateway login failed", CALL_AUTH, STATE_UNKNOWN, true},
    {2, "invalid message content", CALL_REJECTED, STATE_REJECTED, false},
    {3, "invalid phone number format", CALL_REJECTED, STATE_REJECTED, false},
    {4, "insufficient funds", CALL_FAILED, STATE_FAILED, false},
    {10, "received by the gateway", CALL_ACCEPTED, STATE_SUBMITTED, false},
    {11, "delayed delivery", CALL_ACCEPTED, STATE_SCHEDULED, false},
    {12, "delayed delivery cancelled", CALL_FAILED, STATE_CANCELLED, false},
    {21, "delivered to the GSM network", CALL_ACCEPTED, STATE_SUBMITTED, false},
    {22, "delivered to the phone", CALL_ACCEPTED, STATE_DELIVERED, false},
    {30, "insufficient funds", CALL_FAILED, STATE_FAILED, false},
    {41, "invalid message content", CALL_REJECTED, STATE_REJECTED, false},
    {42, "internal error", CALL_RETRY, STATE_FAILED, false},
    {43, "delivery failed", CALL_FAILED, STATE_FAILED, false},
    {50, "general delivery error", CALL_FAILED, STATE_FAILED, false},
    {51, "delivery to GSM network failed", CALL_RETRY, STATE_FAILED, false},
    {52, "delivery to phone failed", CALL_RETRY, STATE_FAILED, false},
    {100, "insufficient credits", CALL_FAILED, STATE_FAILED, false},
    {101, "wrong account credentials", CALL_AUTH, STATE_UNKNOWN, true},
    {110, "parameter error", CALL_REJECTED, STATE_UNKNOWN, true},
    {-1, NULL, CALL_FAILED, STATE_UNKNOWN, false},
};

static const struct ip1l_code ip1l_mms_codes[] = {
    {0, "delivered to gateway", CALL_ACCEPTED, STATE_SUBMITTED, false},
    {1, "gateway login failed", CALL_AUTH, STATE_UNKNOWN, true},
    {2, "invalid message content", CALL_REJECTED, STATE_REJECTED, false},
    {3, "invalid phone number format", CALL_REJECTED, STATE_REJECTED, false},
    {4, "insufficient funds", CALL_FAILED, STATE_FAILED, false},
    {11, "delayed delivery", CALL_ACCEPTED, STATE_SCHEDULED, false},
    {21, "delivered to the GSM network", CALL_ACCEPTED, STATE_SUBMITTED, false},
    {22, "delivered to the phone", CALL_ACCEPTED, STATE_DELIVERED, false},
    {30, "insufficient funds", CALL_FAILED, STATE_FAILED, false},
    {41, "invalid message content", CALL_REJECTED, STATE_REJECTED, false},
    {42, "internal error", CALL_RETRY, STATE_FAILED, false},
    {44, "delivery failed", CALL_FAILED, STATE_FAILED, false},
    {45, "invalid phone number", CALL_FAILED, STATE_FAILED, false},
    {50, "general delivery error", CALL_FAILED, STATE_FAILED, false},
    {-1, NULL, CALL_FAILED, STATE_UNKNOWN, false},
};

/* Returns the row of `code`, or the table's NULL-named sentinel. */
static const struct ip1l_code *ip1l_code_find(const struct ip1l_code *table,
                                              long code)
{
    while (table->name != NULL && table->code != code)
        table++;
    return table;
}

/* ============================== Requests ================================ */

/* Appends a form-style query value: space as "+" (the document's example
 * shows msg=Test+SMS), every other byte as util's percent-encoding. */
static void ip1l_query_value(struct buf *b, const char *s)
{
    const char *space;

    while ((space = strchr(s, ' ')) != NULL) {
        buf_append_urlenc(b, s, (size_t)(space - s));
        buf_puts(b, "+");
        s = space + 1;
    }
    buf_append_urlenc(b, s, strlen(s));
}

static void ip1l_query_param(struct buf *b, const char *name, const char *value)
{
    buf_printf(b, "%s%s=", b->len > 0 ? "&" : "", name);
    ip1l_query_value(b, value);
}

/* Starts a SOAP 1.1 envelope for `op`. */
static void ip1l_soap_begin(struct buf *b, const char *op)
{
    buf_puts(b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
                "<soap:Envelope "
                "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
                "xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" "
                "xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\">\n"
                "  <soap:Body>\n");
    buf_printf(b, "    <%s xmlns=\"" IP1L_NS "\">\n", op);
}

/* Appends "<name>value</name>"; a CR becomes a character reference so that
 * XML line-end handling keeps it. */
static void ip1l_soap_param(struct buf *b, const char *name, const char *value)
{
    buf_printf(b, "      <%s>", name);
    for (const char *cr; (cr = strchr(value, '\r')) != NULL; value = cr + 1) {
        buf_append_xml(b, value, (size_t)(cr - value));
        buf_puts(b, "&#13;");
    }
    buf_append_xml(b, value, strlen(value));
    buf_printf(b, "</%s>\n", name);
}

static void ip1l_soap_end(struct buf *b, const char *op)
{
    buf_printf(b, "    </%s>\n  </soap:Body>\n</soap:Envelope>\n", op);
}

/* Credentials, or -1 with errstr naming what is missing. */
static int ip1l_creds(const char **acc, const char **pass,
                      const struct account *acct, char *errstr,
                      size_t errstr_size)
{
    *acc = account_cred(acct, "account");
    *pass = account_cred(acct, "password");
    if (*acc == NULL || *pass == NULL) {
        snprintf(errstr, errstr_size,
                 "account %s lacks credential \"account\" or \"password\"",
                 acct->name);
        return -1;
    }
    return 0;
}

/* Turns a finished envelope into a POST to `path` for `step`. */
static void ip1l_soap_request(struct codec_call *call,
                              const struct account *acct, const char *path,
                              enum ip1l_step step, struct buf *env)
{
    char action[128];
    struct buf url;

    call->step = (int)step;
    call->req.method = "POST";
    buf_init(&url);
    buf_printf(&url, "%s%s", acct->base_url, path);
    call->req.url = buf_detach(&url, NULL);
    http_request_add_header(&call->req, "Content-Type",
                            "text/xml; charset=utf-8");
    snprintf(action, sizeof(action), "\"" IP1L_NS "%s\"", ip1l_ops[step].name);
    http_request_add_header(&call->req, "SOAPAction", action);
    call->req.body = buf_detach(env, &call->req.body_len);
}

/* ============================ Job checks ================================ */

static const char *ip1l_sender(const struct account *acct,
                               const struct job *job)
{
    return job->from != NULL ? job->from : acct->default_sender;
}

static bool ip1l_is_digits(const char *s, size_t min, size_t max)
{
    size_t n = strlen(s);

    return n >= min && n <= max && text_only(s, "0123456789");
}

/* The job's optional "mms" object: {"files": ["<base64>", ...]}. */
static json_t *ip1l_mms(const struct job *job)
{
    return job->root != NULL ? json_object_get(job->root, "mms") : NULL;
}

/* Returns the decoded size of a base64 string, or -1 when it is not
 * base64 (standard alphabet, padded). */
static long ip1l_base64_size(const char *s)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   "abcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t len = strlen(s), pad = 0;

    if (len == 0 || len % 4 != 0)
        return -1;
    while (pad < 2 && s[len - 1 - pad] == '=')
        pad++;
    for (size_t i = 0; i < len - pad; i++) {
        if (s[i] == '\0' || strchr(alphabet, s[i]) == NULL)
            return -1;
    }
    return (long)(len / 4 * 3 - pad);
}

static int ip1l_check_mms(const struct job *job, const char *sender,
                          char *errstr, size_t errstr_size)
{
    json_t *files = json_object_get(ip1l_mms(job), "files");
    long total = 0;
    size_t i;
    json_t *f;

    if (!json_is_object(ip1l_mms(job)) || !json_is_array(files) ||
        json_array_size(files) == 0) {
        snprintf(errstr, errstr_size,
                 "mms needs \"files\": a list of base64 strings");
        return -1;
    }
    json_array_foreach(files, i, f)
    {
        long size =
            json_is_string(f) ? ip1l_base64_size(json_string_value(f)) : -1;
        if (size < 0) {
            snprintf(errstr, errstr_size, "mms.files[%zu] is not base64", i);
            return -1;
        }
        total += size;
    }
    if (total > IP1L_MMS_MAX) {
        snprintf(errstr, errstr_size,
                 "mms files are %ld bytes; iP.1 allows %d in all", total,
                 IP1L_MMS_MAX);
        return -1;
    }
    if (!ip1l_is_digits(sender, 3, 15)) {
        snprintf(errstr, errstr_size,
                 "an MMS sender must be a phone number (3-15 digits)");
        return -1;
    }
    if (job->flash || job->send_at_ms > 0) {
        snprintf(errstr, errstr_size, "an MMS cannot be flash or scheduled");
        return -1;
    }
    return 0;
}

/* Sender: 3-11 letters and digits, or 3-15 digits (a number with country
 * code). */
static int ip1l_check_sender(const char *sender, char *errstr,
                             size_t errstr_size)
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyz"
                                "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    size_t len;

    if (sender == NULL) {
        snprintf(errstr, errstr_size,
                 "iP.1 legacy needs a sender: no \"from\" and no "
                 "default_sender");
        return -1;
    }
    len = strlen(sender);
    if (ip1l_is_digits(sender, 3, 15) ||
        (len >= 3 && len <= 11 && text_only(sender, alnum)))
        return 0;
    snprintf(errstr, errstr_size,
             "sender \"%.40s\" is not 3-11 letters and digits or 3-15 digits",
             sender);
    return -1;
}

static int ip1l_check_text(const struct job *job, bool mms, char *errstr,
                           size_t errstr_size)
{
    struct text_info info;

    if (job->text == NULL || job->text_len == 0) {
        snprintf(errstr, errstr_size, "text is empty");
        return -1;
    }
    for (size_t i = 0; i < job->text_len; i++) {
        unsigned char c = (unsigned char)job->text[i];
        if (c < 0x20 && c != '\n' && c != '\r' && c != '\t') {
            snprintf(errstr, errstr_size, "text holds control character U+%04X",
                     c);
            return -1;
        }
    }
    if (text_analyse(&info, job->text, job->text_len, errstr, errstr_size) != 0)
        return -1;
    if (mms)
        return 0;
    if (info.coding != TEXT_GSM7) {
        snprintf(errstr, errstr_size,
                 "text needs UCS-2; the iP.1 legacy gateway carries GSM "
                 "03.38 text only");
        return -1;
    }
    size_t parts = text_segments(&ip1l_segments, job->text, job->text_len);
    if (job->flash && parts > 1) {
        snprintf(errstr, errstr_size,
                 "flash text needs %zu SMS; one holds %d characters, a "
                 "newline counting 3",
                 parts, IP1L_SINGLE);
        return -1;
    }
    if (parts > IP1L_MAX_PARTS) {
        snprintf(errstr, errstr_size,
                 "text needs %zu SMS; at most %d parts of %d", parts,
                 IP1L_MAX_PARTS, IP1L_PART);
        return -1;
    }
    return 0;
}

static int ip1l_check(const struct account *acct, const struct job *job,
                      char *errstr, size_t errstr_size)
{
    const char *acc, *pass;
    const char *sender = ip1l_sender(acct, job);
    bool mms = ip1l_mms(job) != NULL;
    if (job->type == JOB_CONTACTS && job_action_is_read(job->action))
        return codec_check_read(&codec_ip1_legacy, job, errstr, errstr_size);

    if (ip1l_creds(&acc, &pass, acct, errstr, errstr_size) != 0)
        return -1;
    if (job->type == JOB_CONTACTS) {
        snprintf(errstr, errstr_size,
                 "iP.1 legacy has no %s action: it keeps no contacts, "
                 "groups or block list",
                 job_action_name(job->action));
        return -1;
    }
    if (job->type == JOB_CAMPAIGN && job->action == ACTION_CANCEL)
        return 0;
    if (job->ngroups > 0) {
        snprintf(errstr, errstr_size, "iP.1 legacy has no groups");
        return -1;
    }
    if (job->nto == 0) {
        snprintf(errstr, errstr_size, "no recipients");
        return -1;
    }
    if (ip1l_check_sender(sender, errstr, errstr_size) != 0 ||
        ip1l_check_text(job, mms, errstr, errstr_size) != 0)
        return -1;
    if (mms && ip1l_check_mms(job, sender, errstr, errstr_size) != 0)
        return -1;
    if (job->priority < 0 || job->priority > 3) {
        snprintf(errstr, errstr_size, "priority %d is not 1-3", job->priority);
        return -1;
    }
    if (job->flash && job->send_at_ms > 0) {
        snprintf(errstr, errstr_size,
                 "iP.1 legacy cannot schedule a flash SMS");
        return -1;
    }
    if (job->flash && ip1l_allowed(acct, IP1L_FLASH, errstr, errstr_size) != 0)
        return -1;
    if (mms && ip1l_allowed(acct, IP1L_MMS, errstr, errstr_size) != 0)
        return -1;
    return 0;
}

/* ============================== Encode ================================== */

/* The URL call: one recipient, now. */
static void ip1l_encode_url(struct codec_call *call, const struct account *acct,
                            const struct job *job, const char *to,
                            const char *prio)
{
    struct buf url;

    buf_init(&url);
    ip1l_query_param(&url, "acc", account_cred(acct, "account"));
    ip1l_query_param(&url, "pass", account_cred(acct, "password"));
    ip1l_query_param(&url, "to", to);
    ip1l_query_param(&url, "from", ip1l_sender(acct, job));
    ip1l_query_param(&url, "msg", job->text);
    ip1l_query_param(&url, "prio", prio);
    struct buf full;
    buf_init(&full);
    buf_printf(&full, "%s/sendsms.aspx?%s", acct->base_url, url.data);
    buf_cleanup(&url);
    call->step = IP1L_URL;
    call->req.method = "GET";
    call->req.url = buf_detach(&full, NULL);
}

/* A SOAP send: `till` is one number or a comma-separated list. */
static void ip1l_encode_soap_send(struct codec_call *call,
                                  const struct account *acct,
                                  const struct job *job, enum ip1l_step step,
                                  const char *till, const char *prio,
                                  const char *send_at)
{
    const char *op = ip1l_ops[step].name;
    struct buf env;

    buf_init(&env);
    ip1l_soap_begin(&env, op);
    ip1l_soap_param(&env, "konto", account_cred(acct, "account"));
    ip1l_soap_param(&env, "passwd", account_cred(acct, "password"));
    if (step == IP1L_MMS) {
        size_t i;
        json_t *f;
        ip1l_soap_param(&env, "msg", job->text);
        ip1l_soap_param(&env, "to", till);
        ip1l_soap_param(&env, "from", ip1l_sender(acct, job));
        buf_puts(&env, "      <files>\n");
        json_array_foreach(json_object_get(ip1l_mms(job), "files"), i, f)
            buf_printf(&env, "        <string>%s</string>\n",
                       json_string_value(f));
        buf_puts(&env, "      </files>\n");
    } else {
        ip1l_soap_param(&env, "till", till);
        ip1l_soap_param(&env, "from", ip1l_sender(acct, job));
        ip1l_soap_param(&env, "meddelande", job->text);
        ip1l_soap_param(&env, "prio", prio);
        if (send_at != NULL)
            ip1l_soap_param(&env, "sendAt", send_at);
    }
    ip1l_soap_end(&env, op);
    ip1l_soap_request(call, acct,
                      step == IP1L_MMS ? "/mms/mms.asmx"
                                       : "/sendSms/sendSms.asmx",
                      step, &env);
    buf_cleanup(&env);
}

static int ip1l_encode_one(struct codec_calls *out, const struct account *acct,
                           const struct job *job, size_t first, size_t count,
                           int64_t now, char *errstr, size_t errstr_size)
{
    char prio[16], send_at[24];
    bool mms = ip1l_mms(job) != NULL;
    bool later = job->send_at_ms > 0 && job->send_at_ms / 1000 > now;

    if (job->type == JOB_CAMPAIGN && job->action == ACTION_CANCEL)
        return 0; /* cancels go by provider id: encode_poll(OP_CANCEL) */
    if (ip1l_check(acct, job, errstr, errstr_size) != 0)
        return -1;
    if (first > job->nto || count > job->nto - first || count == 0 ||
        count > IP1L_MAX_RECIPIENTS) {
        snprintf(errstr, errstr_size, "bad recipient range %zu+%zu", first,
                 count);
        return -1;
    }
    snprintf(prio, sizeof(prio), "%d", job->priority > 0 ? job->priority : 1);
    if (later) {
        /* sendAt counts Swedish wall-clock seconds ("Swedish time and
         * summer time must be counted in"). */
        int64_t at = job->send_at_ms / 1000;
        snprintf(send_at, sizeof(send_at), "%lld",
                 (long long)(at + swedish_time_offset(at)));
    }
    enum codec_op op = job->type == JOB_SEND ? OP_SEND : OP_CAMPAIGN_CREATE;
    enum ip1l_step step;
    if (mms)
        step = IP1L_MMS;
    else if (job->flash)
        step = IP1L_FLASH;
    else if (count > 1)
        step = later ? IP1L_TIMED_BUNDLE : IP1L_BUNDLE;
    else if (later)
        step = IP1L_TIMED;
    else if (job->nto > 1) /* one recipient of a bundle cut into singles */
        step = IP1L_SMS;
    else
        step = IP1L_URL;
    if (ip1l_allowed(acct, step, errstr, errstr_size) != 0)
        return -1;

    struct buf till;
    buf_init(&till);
    for (size_t i = first; i < first + count; i++)
        buf_printf(&till, "%s%s", i > first ? "," : "", job->to[i]);
    struct codec_call *call = codec_calls_add(out, op);
    if (call == NULL) {
        buf_cleanup(&till);
        snprintf(errstr, errstr_size, "too many calls for one job");
        return -1;
    }
    call->first = first;
    call->count = count;
    if (step == IP1L_URL)
        ip1l_encode_url(call, acct, job, till.data, prio);
    else
        ip1l_encode_soap_send(call, acct, job, step, till.data, prio,
                              later ? send_at : NULL);
    buf_cleanup(&till);
    return 0;
}

/* One slice, one call: see codec_encode_slice(). */
static int ip1l_encode(struct codec_calls *out, const struct account *acct,
                       const struct job *job, size_t first, size_t count,
                       int64_t now, char *errstr, size_t errstr_size)
{
    return codec_encode_slice(&codec_ip1_legacy, ip1l_encode_one, out, acct,
                              job, first, count, now, errstr, errstr_size);
}

/* Status and cancel of one SMS id (digits) or one bundle ("bundle:<id>"),
 * and OP_READ "balance". */
static int ip1l_encode_poll(struct codec_calls *out, const struct account *acct,
                            enum codec_op op, const char *id, int64_t since,
                            char *errstr, size_t errstr_size)
{
    const char *acc, *pass;
    bool bundle = false;
    enum ip1l_step step;
    struct codec_call *call;
    struct buf env;

    (void)since;
    if (ip1l_creds(&acc, &pass, acct, errstr, errstr_size) != 0)
        return -1;
    if (op == OP_READ && id != NULL && strcmp(id, "balance") == 0) {
        step = IP1L_BALANCE;
    } else if ((op == OP_READ && id != NULL &&
                (strncmp(id, "when:", 5) == 0 ||
                 strncmp(id, "describe:", 9) == 0)) ||
               (op == OP_POLL_STATUS && id != NULL &&
                strncmp(id, "mms:", 4) == 0)) {
        /* Tidpunkt (an SMS id), Beskrivning (a status code), status
         * MMS (an MMS id). */
        step = id[0] == 'w'   ? IP1L_TIDPUNKT
               : id[0] == 'd' ? IP1L_BESKRIVNING
                              : IP1L_STATUS_MMS;
        id = strchr(id, ':') + 1;
        if (!ip1l_is_digits(id, 1, 18)) {
            snprintf(errstr, errstr_size,
                     "iP.1 legacy %s takes digits, not \"%.40s\"",
                     ip1l_ops[step].name, id);
            return -1;
        }
    } else if (op == OP_POLL_STATUS || op == OP_CANCEL) {
        if (id != NULL &&
            strncmp(id, IP1L_BUNDLE_PREFIX, strlen(IP1L_BUNDLE_PREFIX)) == 0) {
            bundle = true;
            id += strlen(IP1L_BUNDLE_PREFIX);
        }
        if (id == NULL || !ip1l_is_digits(id, 1, 18)) {
            snprintf(errstr, errstr_size,
                     "iP.1 legacy ids are digits or bundle:<digits>");
            return -1;
        }
        if (op == OP_POLL_STATUS)
            step = bundle ? IP1L_STATUS_BUNDLE : IP1L_STATUS;
        else
            step = bundle ? IP1L_CANCEL_BUNDLE : IP1L_CANCEL_SMS;
    } else {
        snprintf(errstr, errstr_size,
                 "iP.1 legacy pushes incoming SMS; it can poll a status "
                 "(<id>, bundle:<id>, mms:<id>), cancel, or read "
                 "\"balance\", when:<id>, describe:<code>");
        return -1;
    }

    if (ip1l_allowed(acct, step, errstr, errstr_size) != 0)
        return -1;
    call = codec_calls_add(out, op);
    if (call == NULL) {
        snprintf(errstr, errstr_size, "too many calls");
        return -1;
    }
    if (step != IP1L_BALANCE) /* the id, for decode_poll's updates */
        call->first = (size_t)strtoull(id, NULL, 10);
    buf_init(&env);
    ip1l_soap_begin(&env, ip1l_ops[step].name);
    /* balans is confirmed with capitalised names; the others follow sms. */
    ip1l_soap_param(&env, step == IP1L_BALANCE ? "Konto" : "konto", acc);
    ip1l_soap_param(&env, step == IP1L_BALANCE ? "Passwd" : "passwd", pass);
    if (step == IP1L_STATUS)
        ip1l_soap_param(&env, "id", id);
    else if (step == IP1L_STATUS_BUNDLE)
        ip1l_soap_param(&env, "bundleID", id);
    else if (step == IP1L_CANCEL_BUNDLE)
        ip1l_soap_param(&env, "BundleID", id);
    else if (step == IP1L_CANCEL_SMS)
        ip1l_soap_param(&env, "smsID", id);
    else if (step == IP1L_TIDPUNKT) /* parameter names as 001 spells them */
        ip1l_soap_param(&env, "Id", id);
    else if (step == IP1L_BESKRIVNING)
        ip1l_soap_param(&env, "ID", id);
    else if (step == IP1L_STATUS_MMS)
        ip1l_soap_param(&env, "mmsId", id);
    ip1l_soap_end(&env, ip1l_ops[step].name);
    ip1l_soap_request(call, acct,
                      step == IP1L_STATUS_MMS ? "/mms/mms.asmx"
                                              : "/sendSms/sendSms.asmx",
                      step, &env);
    buf_cleanup(&env);
    return 0;
}

/* ============================== Answers ================================= */

/* Refuses any DTD before parsing, so no entity can be declared, let alone
 * expanded, and parses with the network off. */
static xmlDoc *ip1l_xml_read(const char *body, size_t len, char *errstr,
                             size_t errstr_size)
{
    xmlDoc *doc;

    if (len > IP1L_MAX_ANSWER) {
        snprintf(errstr, errstr_size, "answer of %zu bytes is too large", len);
        return NULL;
    }
    for (size_t i = 0; i + 2 <= len; i++) {
        if (body[i] == '<' && body[i + 1] == '!' &&
            (i + 2 == len || body[i + 2] != '-')) {
            if (i + 9 <= len && memcmp(body + i + 2, "[CDATA[", 7) == 0)
                continue;
            snprintf(errstr, errstr_size, "XML answer with a DTD refused");
            return NULL;
        }
    }
    doc = xmlReadMemory(body, (int)len, NULL, NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR |
                            XML_PARSE_NOWARNING);
    if (doc == NULL)
        util_xml_errstr(errstr, errstr_size);
    return doc;
}

/* Depth-first search for the first element whose local name is `name`. */
static xmlNode *ip1l_find(xmlNode *node, const char *name, int depth)
{
    for (; node != NULL && depth < 32; node = node->next) {
        if (node->type != XML_ELEMENT_NODE)
            continue;
        if (strcmp((const char *)node->name, name) == 0)
            return node;
        xmlNode *found = ip1l_find(node->children, name, depth + 1);
        if (found != NULL)
            return found;
    }
    return NULL;
}

/* Copies an element's text, trimmed, into out. */
static void ip1l_text(char *out, size_t out_size, xmlNode *node)
{
    xmlChar *text = node != NULL ? xmlNodeGetContent(node) : NULL;
    const char *s = text != NULL ? (const char *)text : "";

    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    if (n >= out_size)
        n = out_size - 1;
    memcpy(out, s, n);
    out[n] = '\0';
    xmlFree(text);
}

/* Parses a whole answer as a number: sets *value and returns true. */
static bool ip1l_number(const char *s, long long *value)
{
    char *end;

    if (!ip1l_is_digits(s, 1, 18))
        return false;
    *value = strtoll(s, &end, 10);
    return *end == '\0';
}

/* Makes the result of a send or cancel from a code below 1000. */
static void ip1l_code_result(struct call_result *out,
                             const struct ip1l_code *table, long long code,
                             size_t nrecipients)
{
    const struct ip1l_code *c = ip1l_code_find(table, (long)code);
    char num[24];

    snprintf(num, sizeof(num), "%lld", code);
    snprintf(out->provider_status, sizeof(out->provider_status), "%s", num);
    if (c->name == NULL)
        call_result_set_error(out, CALL_FAILED, num,
                              "undocumented iP.1 status code");
    else if (c->outcome == CALL_ACCEPTED)
        out->outcome = CALL_ACCEPTED;
    else
        call_result_set_error(out, c->outcome, num, "%s", c->name);
    call_result_spread(out, nrecipients);
    for (size_t i = 0; i < out->nrecipients; i++)
        snprintf(out->recipients[i].provider_status,
                 sizeof(out->recipients[i].provider_status), "%s", num);
}

/* Classifies a SOAP Fault: soap:Client faults are our request's fault. */
static void ip1l_fault(struct call_result *out, xmlNode *fault,
                       const struct codec_call *call)
{
    char code[64], text[CODEC_TEXT_MAX];

    ip1l_text(code, sizeof(code), ip1l_find(fault->children, "faultcode", 0));
    ip1l_text(text, sizeof(text), ip1l_find(fault->children, "faultstring", 0));
    for (char *p = text; *p; p++) {
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    }
    call_result_set_error(
        out, strstr(code, "Client") != NULL ? CALL_REJECTED : CALL_RETRY,
        "soap_fault", "%s", text[0] ? text : code);
    util_strlcpy(out->provider_status, code, sizeof(out->provider_status));
    call_result_spread(out, call->count);
}

/* Reads a SOAP answer: fills `value` with the text of <op>Result and sets
 * *result to it, or classifies a Fault into out (*result stays NULL).
 * Returns -1 with errstr when the answer is neither. */
static int ip1l_soap_answer(struct call_result *out, xmlDoc **doc_out,
                            xmlNode **result, const struct codec_call *call,
                            const struct http_response *resp, char *errstr,
                            size_t errstr_size)
{
    char name[64];
    xmlDoc *doc =
        ip1l_xml_read(resp->body ? resp->body : "",
                      resp->body ? resp->body_len : 0, errstr, errstr_size);

    *result = NULL;
    if (doc == NULL) {
        /* An HTML error page or nothing: let the HTTP status speak. */
        if (call_result_from_status(out, resp)) {
            call_result_spread(out, call->count);
            return 0;
        }
        return -1;
    }
    *doc_out = doc;
    xmlNode *root = xmlDocGetRootElement(doc);
    xmlNode *fault = ip1l_find(root, "Fault", 0);
    if (fault != NULL) {
        ip1l_fault(out, fault, call);
        return 0;
    }
    if (call_result_from_status(out, resp)) {
        call_result_spread(out, call->count);
        return 0;
    }
    snprintf(name, sizeof(name), "%sResult", ip1l_ops[call->step].name);
    *result = ip1l_find(root, name, 0);
    if (*result == NULL) {
        snprintf(errstr, errstr_size, "SOAP answer without <%s>", name);
        return -1;
    }
    return 0;
}

/* One status update from a Status code. */
static int ip1l_update(struct status_update *u, const char *id,
                       const char *code_text, const struct ip1l_code *table,
                       char *errstr, size_t errstr_size)
{
    long long code;

    if (!ip1l_number(code_text, &code)) {
        snprintf(errstr, errstr_size, "status \"%.40s\" is not a code",
                 code_text);
        return -1;
    }
    const struct ip1l_code *c = ip1l_code_find(table, (long)code);
    if (c->call_error) {
        snprintf(errstr, errstr_size, "status query refused: %lld %s", code,
                 c->name);
        return -1;
    }
    snprintf(u->provider_id, sizeof(u->provider_id), "%s", id);
    snprintf(u->provider_status, sizeof(u->provider_status), "%lld", code);
    u->state = c->name != NULL ? c->state : STATE_UNKNOWN;
    if (u->state == STATE_FAILED || u->state == STATE_REJECTED) {
        snprintf(u->error_code, sizeof(u->error_code), "%lld", code);
        snprintf(u->error_message, sizeof(u->error_message), "%s", c->name);
    }
    return 0;
}

static int ip1l_decode(struct call_result *out, const struct account *acct,
                       const struct job *job, const struct codec_call *call,
                       const struct http_response *resp, char *errstr,
                       size_t errstr_size)
{
    enum ip1l_step step = (enum ip1l_step)call->step;
    xmlDoc *doc = NULL;
    xmlNode *result = NULL;
    char value[CODEC_ID_MAX];
    long long number;
    int ret = -1;

    (void)acct;
    (void)job;
    memset(out, 0, sizeof(*out));
    if (step == IP1L_STATUS || step == IP1L_STATUS_BUNDLE ||
        step == IP1L_STATUS_MMS) {
        snprintf(errstr, errstr_size, "status answers go to decode_poll");
        return -1;
    }
    if (step == IP1L_URL) {
        if (call_result_from_status(out, resp)) {
            call_result_spread(out, call->count);
            return 0;
        }
        const char *body = resp->body != NULL ? resp->body : "";
        size_t len = resp->body != NULL ? resp->body_len : 0, off = 0;
        while (off < len && isspace((unsigned char)body[off]))
            off++;
        while (len > off && isspace((unsigned char)body[len - 1]))
            len--;
        if (len - off >= sizeof(value))
            len = off + sizeof(value) - 1;
        memcpy(value, body + off, len - off);
        value[len - off] = '\0';
    } else {
        if (ip1l_soap_answer(out, &doc, &result, call, resp, errstr,
                             errstr_size) != 0)
            goto out;
        if (result == NULL) { /* classified by Fault or HTTP status */
            ret = 0;
            goto out;
        }
        ip1l_text(value, sizeof(value), result);
    }

    if (step == IP1L_BALANCE) {
        out->outcome = CALL_ACCEPTED;
        out->data = json_pack("{s:s}", "balance", value);
        ret = 0;
        goto out;
    }
    if (step == IP1L_TIDPUNKT) {
        /* "yyyy-mmdd hh:mm:ss", or 0: not scheduled or no such id. */
        out->outcome = CALL_ACCEPTED;
        out->data = strcmp(value, "0") == 0
                        ? json_pack("{s:n}", "send_at")
                        : json_pack("{s:s}", "send_at", value);
        ret = 0;
        goto out;
    }
    if (step == IP1L_BESKRIVNING) {
        out->outcome = CALL_ACCEPTED;
        out->data = json_pack("{s:s}", "description", value);
        ret = 0;
        goto out;
    }
    if (!ip1l_number(value, &number)) {
        snprintf(errstr, errstr_size, "unexpected iP.1 answer \"%.60s\"",
                 value);
        goto out;
    }
    const struct ip1l_code *table =
        step == IP1L_MMS ? ip1l_mms_codes : ip1l_sms_codes;
    if (step == IP1L_CANCEL_SMS || step == IP1L_CANCEL_BUNDLE) {
        /* 0 is done; 12 "delayed delivery cancelled" is done already. */
        if (number == 0 || number == 12)
            out->outcome = CALL_ACCEPTED;
        else
            ip1l_code_result(out, table, number, 0);
    } else if (number < 1000) {
        ip1l_code_result(out, table, number, call->count);
    } else {
        bool bundle = step == IP1L_BUNDLE || step == IP1L_TIMED_BUNDLE;
        out->outcome = CALL_ACCEPTED;
        snprintf(out->provider_id, sizeof(out->provider_id), "%s%lld",
                 bundle ? IP1L_BUNDLE_PREFIX : "", number);
        call_result_spread(out, call->count);
        for (size_t i = 0; i < out->nrecipients && !bundle; i++)
            snprintf(out->recipients[i].provider_id,
                     sizeof(out->recipients[i].provider_id), "%lld", number);
    }
    ret = 0;

out:
    xmlFreeDoc(doc);
    if (ret != 0)
        call_result_cleanup(out);
    return ret;
}

/* Case-insensitive "name is one of the words in list". */
static bool ip1l_name_is(const xmlChar *name, const char *const *list)
{
    for (; *list != NULL; list++) {
        if (strcasecmp((const char *)name, *list) == 0)
            return true;
    }
    return false;
}

/* Finds the first leaf element below node named like one of `names`. */
static xmlNode *ip1l_leaf(xmlNode *node, const char *const *names, int depth)
{
    for (xmlNode *c = node->children; c != NULL && depth < 8; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (ip1l_name_is(c->name, names))
            return c;
        xmlNode *found = ip1l_leaf(c, names, depth + 1);
        if (found != NULL)
            return found;
    }
    return NULL;
}

/* Reads a statusBundle result: one child per SMS, each holding an id and a
 * status code, and perhaps the number (element names are not documented;
 * see docs/providers-choices.md). */
static int ip1l_bundle_updates(struct callback_result *out, xmlNode *result,
                               char *errstr, size_t errstr_size)
{
    static const char *const id_names[] = {"id",    "smsid",     "sms_id",
                                           "msgid", "messageid", NULL};
    static const char *const status_names[] = {"status", "statuscode", "code",
                                               NULL};
    static const char *const number_names[] = {
        "number", "till", "to", "phone", "recipient", "mobile", NULL};
    size_t n = 0;

    for (xmlNode *c = result->children; c != NULL; c = c->next)
        n += c->type == XML_ELEMENT_NODE;
    if (n > CODEC_MAX_EVENTS) {
        snprintf(errstr, errstr_size,
                 "bundle status holds %zu SMS; at most "
                 "%d read",
                 n, CODEC_MAX_EVENTS);
        return -1;
    }
    out->updates = n > 0 ? calloc(n, sizeof(*out->updates)) : NULL;
    if (n > 0 && out->updates == NULL)
        abort();
    for (xmlNode *c = result->children; c != NULL; c = c->next) {
        char id[CODEC_ID_MAX], code[24], number[24];
        if (c->type != XML_ELEMENT_NODE)
            continue;
        ip1l_text(id, sizeof(id), ip1l_leaf(c, id_names, 0));
        ip1l_text(code, sizeof(code), ip1l_leaf(c, status_names, 0));
        ip1l_text(number, sizeof(number), ip1l_leaf(c, number_names, 0));
        struct status_update *u = &out->updates[out->nupdates];
        if (ip1l_update(u, id, code, ip1l_sms_codes, errstr, errstr_size) != 0)
            return -1;
        if (ip1l_is_digits(number, 8, 15))
            snprintf(u->recipient, sizeof(u->recipient), "%s", number);
        out->nupdates++;
    }
    return 0;
}

static int ip1l_decode_poll(struct callback_result *out,
                            const struct account *acct,
                            const struct codec_call *call,
                            const struct http_response *resp, char *errstr,
                            size_t errstr_size)
{
    struct call_result res;
    xmlDoc *doc = NULL;
    xmlNode *result = NULL;
    char value[24], id[CODEC_ID_MAX];
    int ret = -1;

    (void)acct;
    memset(out, 0, sizeof(*out));
    memset(&res, 0, sizeof(res));
    if (call->step != IP1L_STATUS && call->step != IP1L_STATUS_BUNDLE &&
        call->step != IP1L_STATUS_MMS) {
        snprintf(errstr, errstr_size, "not a status poll");
        return -1;
    }
    if (ip1l_soap_answer(&res, &doc, &result, call, resp, errstr,
                         errstr_size) != 0)
        goto out;
    if (result == NULL) {
        snprintf(errstr, errstr_size, "status poll failed: %s",
                 res.error_message);
        goto out;
    }
    if (call->step == IP1L_STATUS_BUNDLE) {
        ret = ip1l_bundle_updates(out, result, errstr, errstr_size);
        goto out;
    }
    out->updates = calloc(1, sizeof(*out->updates));
    if (out->updates == NULL)
        abort();
    snprintf(id, sizeof(id), "%zu", call->first);
    ip1l_text(value, sizeof(value), result);
    if (ip1l_update(&out->updates[0], id, value,
                    call->step == IP1L_STATUS_MMS ? ip1l_mms_codes
                                                  : ip1l_sms_codes,
                    errstr, errstr_size) != 0)
        goto out;
    out->nupdates = 1;
    ret = 0;

out:
    call_result_cleanup(&res);
    xmlFreeDoc(doc);
    if (ret != 0)
        callback_result_cleanup(out);
    return ret;
}

/* ============================== Callback ================================ */

/* Incoming SMS: GET ?incsmsid=&sender=&text=&to=, answered with a bare OK.
 * The text's charset is not documented: valid UTF-8 is taken as it is,
 * anything else as ISO-8859-1. */
static int ip1l_callback(struct callback_result *out,
                         const struct account *acct, enum callback_kind kind,
                         const struct http_inbound *in, char *errstr,
                         size_t errstr_size)
{
    const char *q = in->query != NULL ? in->query : "";
    size_t qlen = strlen(q);
    char id[CODEC_ID_MAX], sender[24], to[24];
    char *text = NULL;
    struct text_info info;
    char why[128];

    (void)acct;
    memset(out, 0, sizeof(*out));
    out->answer_content_type = "text/plain";
    if (kind != CALLBACK_INBOUND) {
        out->answer_status = 404;
        snprintf(out->answer_body, sizeof(out->answer_body), "not found");
        snprintf(errstr, errstr_size, "iP.1 legacy sends no status callbacks");
        return -1;
    }
    if (form_get(id, sizeof(id), q, qlen, "incsmsid", NULL, 0) != 0 ||
        id[0] == '\0' ||
        form_get(sender, sizeof(sender), q, qlen, "sender", NULL, 0) != 0 ||
        sender[0] == '\0') {
        out->answer_status = 400;
        snprintf(out->answer_body, sizeof(out->answer_body),
                 "missing incsmsid or sender");
        snprintf(errstr, errstr_size,
                 "incoming SMS without incsmsid or sender");
        return -1;
    }
    if (form_get(to, sizeof(to), q, qlen, "to", NULL, 0) != 0)
        to[0] = '\0';
    text = form_get_dup(q, qlen, "text");
    if (text == NULL) {
        text = strdup("");
    } else if (text_analyse(&info, text, strlen(text), why, sizeof(why)) != 0) {
        char *utf8 = text_from_latin1(text, strlen(text));
        free(text);
        text = utf8;
    }
    if (text == NULL)
        abort();

    out->replies = calloc(1, sizeof(*out->replies));
    if (out->replies == NULL)
        abort();
    out->nreplies = 1;
    struct inbound_sms *r = &out->replies[0];
    snprintf(r->provider_id, sizeof(r->provider_id), "%s", id);
    snprintf(r->from, sizeof(r->from), "%s", sender);
    snprintf(r->to, sizeof(r->to), "%s", to);
    r->text = text;
    out->answer_status = 200;
    snprintf(out->answer_body, sizeof(out->answer_body), "OK");
    return 0;
}

/* ================================ Codec ================================= */

static const char *const ip1l_creds_names[] = {"account", "password", NULL};

/* Flash and MMS go one recipient per call (FlashSMS and sendMMS take one
 * number); other sends a bundle where the account allows BundleSMS, else
 * one "sms" call per recipient. */
static size_t ip1l_per_call(const struct account *acct, const struct job *job)
{
    if (job->flash || ip1l_mms(job) != NULL)
        return 1;
    /* Without BundleSMS a bundle becomes confirmed single sends. */
    if (acct == NULL || !acct->options.legacy_unconfirmed_soap)
        return 1;
    return 0;
}

const struct codec codec_ip1_legacy = {
    .name = "ip1-legacy",
    .creds = ip1l_creds_names,
    .send_max_recipients = IP1L_MAX_RECIPIENTS,
    .campaign_max_recipients = IP1L_MAX_RECIPIENTS,
    .has_callbacks = true,
    .polls = true,
    .segments = &ip1l_segments,
    .per_call = ip1l_per_call,
    .check = ip1l_check,
    .encode = ip1l_encode,
    .decode = ip1l_decode,
    .callback = ip1l_callback,
    .encode_poll = ip1l_encode_poll,
    .decode_poll = ip1l_decode_poll,
};
