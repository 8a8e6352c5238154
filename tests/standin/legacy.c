/* tests/standin/legacy.c - iP.1 SMS Gateway (legacy) stand-in: the URL call
 * GET /sendsms.aspx and the SOAP service /sendSms/sendSms.asmx.
 *
 * Both answer a bare integer: below 1000 a status code of Appendix A (001),
 * above 1000 the new SMS id. The SOAP service takes the element names
 * working clients use (konto, passwd, till, from, meddelande, prio for
 * "sms"; Konto, Passwd for "balans") in the ASMX default namespace
 * http://tempuri.org/ (an assumption, providers.md §2.2), SOAP 1.1 with a
 * matching SOAPAction or SOAP 1.2. Messages must be GSM 03.38 text (the URL
 * call's documented encoding); anything else is code 2. The document's
 * other SOAP functions are played from legacy_ops for accounts that allow
 * them (see there), statefully: a cancelled scheduled SMS never leaves,
 * Status and statusBundle report what was sent. */
#include "standin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libxml/parser.h>
#include <libxml/xmlerror.h>

#define LEGACY_NS        "http://tempuri.org/"
#define SOAP11_NS        "http://schemas.xmlsoap.org/soap/envelope/"
#define SOAP12_NS        "http://www.w3.org/2003/05/soap-envelope"
#define LEGACY_PART      152
#define LEGACY_MAX_PARTS 10

void legacy_set_final(struct msg *m, enum msg_state s)
{
    m->state = s;
    switch (s) {
    case MS_DELIVERED:
        m->code = 22;
        break;
    case MS_FAILED:
        m->code = 52;
        break;
    case MS_UNKNOWN:
        m->code = 21; /* delivered to the GSM network, nothing after */
        m->state = MS_PENDING;
        break;
    case MS_CANCELLED:
        m->code = 12;
        break;
    default:
        m->code = 0;
    }
}

/* The SOAP operations this stand-in plays, its own table (it shares no
 * code with codecs/): "sms" and "balans" are the names working clients
 * confirm and are always played; the others are the document's headings
 * (001), played only for accounts whose accounts-file entry has
 * "options": {"legacy_unconfirmed_soap": true} -- the setting under which
 * kurir sends them. For any other account they are unknown SOAPActions,
 * as they may well be at the real gateway. */
static const struct legacy_op {
    const char *name;
    bool confirmed;
} legacy_ops[] = {
    {"sms", true},        {"balans", true},
    {"FlashSMS", false},  {"TimedSMS", false},
    {"BundleSMS", false}, {"TimedBundleSMS", false},
    {"CancelSMS", false}, {"CancelBundleSMS", false},
    {"Status", false},    {"statusBundle", false},
    {"Tidpunkt", false},
};

/* Returns true when `name` is an operation this stand-in plays for acct. */
static bool legacy_op_known(const char *name, const struct account *acct)
{
    for (size_t i = 0; i < sizeof(legacy_ops) / sizeof(legacy_ops[0]); i++)
        if (strcmp(legacy_ops[i].name, name) == 0)
            return legacy_ops[i].confirmed ||
                   (acct != NULL && acct->unconfirmed_soap);
    return false;
}

static bool legacy_is_soap(const struct request *req)
{
    return strcasecmp(req->sub, "/sendSms/sendSms.asmx") == 0;
}

/* Returns the operation element inside the SOAP Body of req->doc, or NULL;
 * sets *soap12. */
static xmlNode *legacy_operation(const struct request *req, bool *soap12)
{
    xmlNode *env = req->doc ? xmlDocGetRootElement(req->doc) : NULL;

    if (env == NULL || env->ns == NULL ||
        strcmp((const char *)env->name, "Envelope") != 0)
        return NULL;
    *soap12 = strcmp((const char *)env->ns->href, SOAP12_NS) == 0;
    if (!*soap12 && strcmp((const char *)env->ns->href, SOAP11_NS) != 0)
        return NULL;
    for (xmlNode *b = env->children; b != NULL; b = b->next) {
        if (b->type != XML_ELEMENT_NODE ||
            strcmp((const char *)b->name, "Body") != 0)
            continue;
        for (xmlNode *op = b->children; op != NULL; op = op->next) {
            if (op->type == XML_ELEMENT_NODE)
                return op;
        }
    }
    return NULL;
}

/* Returns the text of the operation's child `name` (malloc'd) or NULL. */
static char *legacy_param(const xmlNode *op, const char *name)
{
    for (xmlNode *n = op->children; n != NULL; n = n->next) {
        if (n->type != XML_ELEMENT_NODE ||
            strcmp((const char *)n->name, name) != 0)
            continue;
        xmlChar *c = xmlNodeGetContent(n);
        char *s = xstrdup(c ? (const char *)c : "");
        xmlFree(c);
        return s;
    }
    return NULL;
}

void legacy_identify(struct request *req)
{
    if (!legacy_is_soap(req)) {
        req->acct = accounts_by_cred(&standin->accts, PROV_LEGACY,
                                     kvlist_get(&req->qargs, "acc", true),
                                     kvlist_get(&req->qargs, "pass", true));
        return;
    }
    if (strcmp(req->method, "POST") != 0 || req->body.len == 0)
        return;
    req->doc = xmlReadMemory(req->body.data, (int)req->body.len, NULL, NULL,
                             XML_PARSE_NONET | XML_PARSE_NOERROR |
                                 XML_PARSE_NOWARNING);
    bool soap12;
    xmlNode *op = legacy_operation(req, &soap12);
    if (op == NULL)
        return;
    bool balans = strcmp((const char *)op->name, "balans") == 0;
    char *acc = legacy_param(op, balans ? "Konto" : "konto");
    char *pass = legacy_param(op, balans ? "Passwd" : "passwd");
    req->acct = accounts_by_cred(&standin->accts, PROV_LEGACY, acc, pass);
    free(acc);
    free(pass);
}

/* from: 3-11 letters and digits, or 3-15 digits (001). */
static bool legacy_sender_ok(const char *s)
{
    size_t n = strlen(s);

    if (only_chars(s, "0123456789"))
        return n >= 3 && n <= 15;
    return n >= 3 && n <= 11 &&
           only_chars(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXY"
                         "Z0123456789");
}

/* Validates and performs one send, leaving at due_ms (0: now). Writes the
 * answer (status code or id) to out and returns the message, or NULL when
 * none was made (out is then a code, or "" when a gate answered). */
static struct msg *legacy_send(struct request *req, const char *acc,
                               const char *pass, const char *to,
                               const char *from, const char *msg,
                               const char *prio, int64_t due_ms, char out[32])
{
    struct text_count tc;
    long p = 1;

    if (acc == NULL || acc[0] == '\0' || pass == NULL || pass[0] == '\0') {
        snprintf(out, 32, "1");
        goto error;
    }
    if (req->acct == NULL) {
        snprintf(out, 32, "101");
        goto error;
    }
    if (to == NULL || !is_msisdn(to)) {
        snprintf(out, 32, "3");
        goto error;
    }
    if (from == NULL || !legacy_sender_ok(from) ||
        (prio != NULL && (parse_long(&p, prio) != 0 || p < 1 || p > 3))) {
        snprintf(out, 32, "110");
        goto error;
    }
    if (msg == NULL || msg[0] == '\0' || !utf8_valid(msg, strlen(msg))) {
        snprintf(out, 32, "2");
        goto error;
    }
    text_count(&tc, msg, strlen(msg), false);
    unsigned parts =
        tc.septets <= 160
            ? 1
            : (unsigned)((tc.septets + LEGACY_PART - 1) / LEGACY_PART);
    if (!tc.gsm || parts > LEGACY_MAX_PARTS) {
        snprintf(out, 32, "2");
        goto error;
    }
    if (req_gate_send(req, parts)) {
        out[0] = '\0';
        return NULL;
    }
    struct msg *m =
        store_add(&standin->store, PROV_LEGACY, req->acct, to, from, msg);
    m->segments = parts;
    m->priority = (int)p;
    m->code = 0;
    if (due_ms > now_ms()) {
        m->due_ms = due_ms;
        m->state = MS_SCHEDULED;
        m->code = 11; /* delayed delivery */
    }
    schedule_delivery(m);
    snprintf(out, 32, "%s", m->id);
    return m;

error:
    standin->stats.provider_errors[PROV_LEGACY]++;
    return NULL;
}

static void legacy_soap_answer(struct request *req, bool soap12,
                               unsigned status, const char *inner)
{
    struct sbuf b = {0};
    size_t len;

    sbuf_printf(&b,
                "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
                "<soap:Envelope xmlns:soap=\"%s\" "
                "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
                "xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\">"
                "<soap:Body>%s</soap:Body></soap:Envelope>",
                soap12 ? SOAP12_NS : SOAP11_NS, inner);
    char *s = sbuf_detach(&b, &len);
    resp_set(&req->resp, status,
             soap12 ? "application/soap+xml; charset=utf-8"
                    : "text/xml; charset=utf-8",
             s, len);
    free(s);
}

static void legacy_fault(struct request *req, bool soap12, bool client,
                         const char *text)
{
    struct sbuf b = {0};

    if (soap12) {
        sbuf_printf(&b,
                    "<soap:Fault><soap:Code><soap:Value>soap:%s</soap:Value>"
                    "</soap:Code><soap:Reason><soap:Text xml:lang=\"en\">",
                    client ? "Sender" : "Receiver");
        sbuf_xml(&b, text);
        sbuf_puts(&b, "</soap:Text></soap:Reason></soap:Fault>");
    } else {
        sbuf_printf(&b,
                    "<soap:Fault><faultcode>soap:%s</faultcode>"
                    "<faultstring>",
                    client ? "Client" : "Server");
        sbuf_xml(&b, text);
        sbuf_puts(&b, "</faultstring><detail /></soap:Fault>");
    }
    char *inner = sbuf_detach(&b, NULL);
    legacy_soap_answer(req, soap12, 500, inner);
    free(inner);
    standin->stats.provider_errors[PROV_LEGACY]++;
}

void legacy_error_answer(struct request *req, bool throttle)
{
    (void)throttle; /* Appendix A has no throttle code: 42 internal error */
    if (legacy_is_soap(req)) {
        legacy_soap_answer(req, false, 200,
                           "<smsResponse xmlns=\"" LEGACY_NS "\">"
                           "<smsResult>42</smsResult></smsResponse>");
        return;
    }
    resp_set(&req->resp, 200, "text/html; charset=utf-8", "42", 2);
}

static void legacy_url(struct request *req)
{
    char out[32];
    const struct kvlist *q = &req->qargs;

    if (strcmp(req->method, "GET") != 0) {
        resp_printf(&req->resp, 405, "text/plain; charset=utf-8",
                    "Method Not Allowed");
        resp_header(&req->resp, "Allow", "GET");
        return;
    }
    legacy_send(req, kvlist_get(q, "acc", true), kvlist_get(q, "pass", true),
                kvlist_get(q, "to", true), kvlist_get(q, "from", true),
                kvlist_get(q, "msg", true), kvlist_get(q, "prio", true), 0,
                out);
    if (out[0] != '\0')
        resp_set(&req->resp, 200, "text/html; charset=utf-8", out, strlen(out));
}

/* sendAt counts Swedish wall-clock seconds (001): back to UTC. */
static int64_t legacy_swedish_to_utc(int64_t wall)
{
    time_t t = (time_t)wall;
    struct tm tm;
    gmtime_r(&t, &tm);
    int f[6] = {tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour,        tm.tm_min,     tm.tm_sec};
    return wall - stockholm_offset(f);
}

/* The legacy messages of acct with id `id`, or of bundle `id` when
 * bundle, into out (at most max). Returns how many. */
static size_t legacy_find(struct msg **out, size_t max,
                          const struct account *acct, const char *id,
                          bool bundle)
{
    size_t n = 0;

    for (size_t i = 0; i < standin->store.all.len && n < max; i++) {
        struct msg *m = standin->store.all.items[i];
        if (m->provider == PROV_LEGACY && m->acct == acct &&
            strcmp(bundle ? m->group_id : m->id, id) == 0)
            out[n++] = m;
    }
    return n;
}

/* Status, statusBundle, CancelSMS, CancelBundleSMS, Tidpunkt: reads and
 * cancels of what was sent. An unknown id is 110 (parameter error). */
static void legacy_soap_query(struct request *req, bool soap12, xmlNode *op,
                              const char *name)
{
    static const char *const id_param[][2] = {
        {"Status", "id"},       {"statusBundle", "bundleID"},
        {"CancelSMS", "smsID"}, {"CancelBundleSMS", "BundleID"},
        {"Tidpunkt", "Id"},
    };
    const char *pname = "id";
    for (size_t i = 0; i < sizeof(id_param) / sizeof(id_param[0]); i++)
        if (strcmp(id_param[i][0], name) == 0)
            pname = id_param[i][1];
    char *id = legacy_param(op, pname);
    bool bundle = strstr(name, "Bundle") != NULL;
    struct msg *found[1000];
    size_t n = id != NULL && req->acct != NULL
                   ? legacy_find(found, 1000, req->acct, id, bundle)
                   : 0;
    struct sbuf b = {0};

    sbuf_printf(&b, "<%sResponse xmlns=\"" LEGACY_NS "\"><%sResult>", name,
                name);
    if (req->acct == NULL) {
        sbuf_puts(&b, "101");
    } else if (n == 0) {
        sbuf_puts(&b, strcmp(name, "Tidpunkt") == 0 ? "0" : "110");
    } else if (strcmp(name, "Status") == 0) {
        sbuf_printf(&b, "%d", found[0]->code);
    } else if (strcmp(name, "statusBundle") == 0) {
        for (size_t i = 0; i < n; i++)
            sbuf_printf(&b,
                        "<sms><id>%s</id><status>%d</status><number>%s"
                        "</number></sms>",
                        found[i]->id, found[i]->code, found[i]->recipient);
    } else if (strcmp(name, "Tidpunkt") == 0) {
        if (found[0]->state == MS_SCHEDULED) {
            char when[32];
            int64_t at = found[0]->due_ms / 1000;
            time_t t = (time_t)at;
            struct tm tm;
            gmtime_r(&t, &tm);
            int f[6] = {tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                        tm.tm_hour,        tm.tm_min,     tm.tm_sec};
            /* f is UTC; the offset of that instant is near enough. */
            t = (time_t)(at + stockholm_offset(f));
            gmtime_r(&t, &tm);
            strftime(when, sizeof(when), "%Y-%m%d %H:%M:%S", &tm);
            sbuf_puts(&b, when);
        } else {
            sbuf_puts(&b, "0");
        }
    } else { /* CancelSMS, CancelBundleSMS */
        int answer = -1;
        for (size_t i = 0; i < n; i++) {
            struct msg *m = found[i];
            if (m->state == MS_SCHEDULED) {
                legacy_set_final(m, MS_CANCELLED);
                m->modified_ms = now_ms();
                answer = 0;
            } else if (answer != 0) {
                answer = m->code; /* 12 when cancelled before */
            }
        }
        sbuf_printf(&b, "%d", answer);
    }
    sbuf_printf(&b, "</%sResult></%sResponse>", name, name);
    char *inner = sbuf_detach(&b, NULL);
    legacy_soap_answer(req, soap12, 200, inner);
    free(inner);
    free(id);
}

static void legacy_soap(struct request *req)
{
    char media[64];
    bool soap12 = false;

    if (strcmp(req->method, "GET") == 0) {
        resp_printf(&req->resp, 200, "text/html; charset=utf-8",
                    "<html><body><h1>sendSms</h1><p>kurir-standin: "
                    "operations sms, balans, and for accounts with "
                    "options.legacy_unconfirmed_soap FlashSMS, TimedSMS, "
                    "BundleSMS, TimedBundleSMS, CancelSMS, CancelBundleSMS, "
                    "Status, statusBundle, Tidpunkt (namespace " LEGACY_NS
                    ")</p></body></html>");
        return;
    }
    if (strcmp(req->method, "POST") != 0) {
        resp_printf(&req->resp, 405, "text/plain; charset=utf-8",
                    "Method Not Allowed");
        return;
    }
    req_media_type(req, media, sizeof(media));
    if (strcmp(media, "text/xml") != 0 &&
        strcmp(media, "application/soap+xml") != 0) {
        resp_printf(&req->resp, 415, "text/plain; charset=utf-8",
                    "Unsupported Media Type: use text/xml (SOAP 1.1) or "
                    "application/soap+xml (SOAP 1.2)");
        standin->stats.provider_errors[PROV_LEGACY]++;
        return;
    }
    soap12 = strcmp(media, "application/soap+xml") == 0;
    if (req->doc == NULL) {
        const xmlError *err = xmlGetLastError();
        char text[400];
        snprintf(text, sizeof(text),
                 "Server was unable to read request. ---> There is an error "
                 "in XML document (%d, %d). ---> %s",
                 err ? err->line : 1, err ? err->int2 : 1,
                 err && err->message ? err->message : "no document");
        char *nl = strchr(text, '\n');
        if (nl != NULL)
            *nl = '\0';
        legacy_fault(req, soap12, true, text);
        return;
    }
    bool is12 = false;
    xmlNode *op = legacy_operation(req, &is12);
    if (op == NULL || is12 != soap12) {
        legacy_fault(req, soap12, true,
                     "Server was unable to process request. ---> The SOAP "
                     "envelope, its namespace or its Body is missing or does "
                     "not match the Content-Type.");
        return;
    }
    const char *name = (const char *)op->name;
    bool known = op->ns != NULL &&
                 strcmp((const char *)op->ns->href, LEGACY_NS) == 0 &&
                 legacy_op_known(name, req->acct);
    if (!soap12) {
        /* SOAP 1.1 names the operation in SOAPAction too, quoted or not. */
        const char *action = req_header(req, "SOAPAction");
        char want[128];
        size_t n = action ? strlen(action) : 0;
        snprintf(want, sizeof(want), LEGACY_NS "%s", name);
        if (n >= 2 && action[0] == '"' && action[n - 1] == '"') {
            action++;
            n -= 2;
        }
        if (action == NULL || n != strlen(want) ||
            strncmp(action, want, n) != 0)
            known = false;
    }
    if (!known) {
        char text[256];
        const char *action = req_header(req, "SOAPAction");
        snprintf(text, sizeof(text),
                 "Server did not recognize the value of HTTP Header "
                 "SOAPAction: %s.",
                 action ? action : name);
        legacy_fault(req, soap12, true, text);
        return;
    }
    char inner[256];
    if (strcmp(name, "balans") == 0) {
        snprintf(inner, sizeof(inner),
                 "<balansResponse xmlns=\"" LEGACY_NS "\"><balansResult>%s"
                 "</balansResult></balansResponse>",
                 req->acct ? "1000" : "101");
        legacy_soap_answer(req, soap12, 200, inner);
        return;
    }
    if (strcmp(name, "sms") != 0 && strcmp(name, "FlashSMS") != 0 &&
        strcmp(name, "TimedSMS") != 0 && strcmp(name, "BundleSMS") != 0 &&
        strcmp(name, "TimedBundleSMS") != 0) {
        legacy_soap_query(req, soap12, op, name);
        return;
    }
    char *acc = legacy_param(op, "konto"), *pass = legacy_param(op, "passwd");
    char *to = legacy_param(op, "till"), *from = legacy_param(op, "from");
    char *msg = legacy_param(op, "meddelande");
    char *prio = legacy_param(op, "prio");
    char *send_at = legacy_param(op, "sendAt");
    bool bundle = strstr(name, "Bundle") != NULL;
    int64_t due_ms = 0;
    char out[32] = "";
    if (strstr(name, "Timed") != NULL) {
        long at;
        if (send_at == NULL || parse_long(&at, send_at) != 0 || at <= 0)
            snprintf(out, sizeof(out), "110");
        else
            due_ms = legacy_swedish_to_utc(at) * 1000;
    }
    if (out[0] == '\0' && bundle) {
        /* till is comma-separated; every number must be good. */
        char *list = xstrdup(to != NULL ? to : "");
        bool ok = list[0] != '\0';
        for (char *t = list, *sp; ok && (t = strtok_r(t, ",", &sp)) != NULL;
             t = NULL)
            ok = is_msisdn(t);
        free(list);
        if (!ok) {
            snprintf(out, sizeof(out), "3");
        } else {
            char bid[32], one[32];
            snprintf(bid, sizeof(bid), "%ld", standin->store.next_legacy++);
            list = xstrdup(to);
            for (char *t = list, *sp; (t = strtok_r(t, ",", &sp)) != NULL;
                 t = NULL) {
                struct msg *m = legacy_send(req, acc, pass, t, from, msg, prio,
                                            due_ms, one);
                if (m == NULL) { /* the first refusal answers for all */
                    snprintf(out, sizeof(out), "%s", one);
                    break;
                }
                snprintf(m->group_id, sizeof(m->group_id), "%s", bid);
            }
            free(list);
            if (out[0] == '\0')
                snprintf(out, sizeof(out), "%s", bid);
        }
    } else if (out[0] == '\0') {
        struct msg *m =
            legacy_send(req, acc, pass, to, from, msg, prio, due_ms, out);
        if (m != NULL && strcmp(name, "FlashSMS") == 0)
            m->flash = true;
    }
    if (out[0] != '\0') {
        snprintf(inner, sizeof(inner),
                 "<%sResponse xmlns=\"" LEGACY_NS "\"><%sResult>%s"
                 "</%sResult></%sResponse>",
                 name, name, out, name, name);
        legacy_soap_answer(req, soap12, 200, inner);
    }
    free(acc);
    free(pass);
    free(to);
    free(from);
    free(msg);
    free(prio);
    free(send_at);
}

void legacy_handle(struct request *req)
{
    if (legacy_is_soap(req))
        legacy_soap(req);
    else
        legacy_url(req);
}
