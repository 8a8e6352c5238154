/* tests/standin/intime.c - InTime Messenger HTTP XML API stand-in
 * (/api/1.0/...).
 *
 * user and hash in the query; the body an XML document whose prolog comes
 * first and declares iso-8859-1, and whose bytes are ISO-8859-1. Answers are
 * HTTP 200 with comma-separated ids or "<n>:ERROR<m>" (000), or, for XML
 * that is not well-formed, .NET XmlException text (providers.md §1.3).
 *
 * Stricter than the real service on purpose (docs/standins.md): bytes that
 * form UTF-8 sequences or C1 controls in a document declared ISO-8859-1 are
 * refused (1:ERROR1) instead of being delivered as mojibake, and so is a
 * Content-Type other than text/xml or application/xml (0:ERROR2). */
#include "standin.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/parser.h>
#include <libxml/xmlerror.h>

#define INTIME_SINGLE_MAX 160
#define INTIME_MULTI_MAX  804
#define INTIME_PART       134

static void intime_answer(struct request *req, const char *body)
{
    resp_set(&req->resp, 200, "text/plain; charset=utf-8", body, strlen(body));
    if (strstr(body, ":ERROR") != NULL)
        standin->stats.provider_errors[PROV_INTIME]++;
}

void intime_error_answer(struct request *req, bool throttle)
{
    (void)throttle; /* InTime documents no throttle answer */
    resp_set(&req->resp, 200, "text/plain; charset=utf-8", "2:ERROR1", 8);
}

void intime_set_final(struct msg *m, enum msg_state s)
{
    m->state = s;
    switch (s) {
    case MS_DELIVERED:
        m->code = 20;
        break;
    case MS_FAILED:
        m->code = 4;
        break;
    case MS_UNKNOWN:
        m->code = 21;
        break;
    default:
        m->code = -1;
    }
}

void intime_identify(struct request *req)
{
    req->acct = accounts_by_cred(&standin->accts, PROV_INTIME,
                                 kvlist_get(&req->qargs, "user", true),
                                 kvlist_get(&req->qargs, "hash", true));
}

/* ------------------------------------------------------------------------
 * Reading the XML body
 * ---------------------------------------------------------------------- */

/* Answers .NET XmlException text for a document that is not well-formed. */
static void intime_xml_exception(struct request *req, const char *what,
                                 int line, int pos)
{
    resp_printf(&req->resp, 200, "text/plain; charset=utf-8",
                "%s Line %d, position %d.", what, line, pos);
}

/* Returns the byte at (line, col) of body, or 0. */
static int intime_byte_at(const struct request *req, int line, int col)
{
    const char *p = req->body.data;
    const char *end = p + req->body.len;

    for (int l = 1; l < line && p < end; p++) {
        if (*p == '\n')
            l++;
    }
    p += col > 0 ? col - 1 : 0;
    return p < end ? (unsigned char)*p : 0;
}

/* Maps libxml2's last error to the XmlException .NET would raise. */
static void intime_parse_error(struct request *req)
{
    const xmlError *err = xmlGetLastError();
    int line = err ? err->line : 1;
    int pos = err ? err->int2 : 1;
    char what[200];

    switch (err ? err->code : 0) {
    case XML_ERR_NAME_REQUIRED:
    case XML_ERR_LT_IN_ATTRIBUTE:
    case XML_ERR_GT_REQUIRED:
    case XML_ERR_ATTRIBUTE_WITHOUT_VALUE:
    case XML_ERR_SPACE_REQUIRED:
    case XML_ERR_ENTITYREF_SEMICOL_MISSING: {
        int c = intime_byte_at(req, line, pos);
        snprintf(what, sizeof(what),
                 "Name cannot begin with the '%c' character, hexadecimal "
                 "value 0x%02X.",
                 isprint(c) ? c : '?', c);
        break;
    }
    case XML_ERR_TAG_NAME_MISMATCH:
        snprintf(what, sizeof(what),
                 "The start tag does not match the end tag.");
        break;
    case XML_ERR_UNDECLARED_ENTITY:
    case XML_WAR_UNDECLARED_ENTITY:
        snprintf(what, sizeof(what), "Reference to undeclared entity.");
        break;
    case XML_ERR_DOCUMENT_END:
        snprintf(what, sizeof(what), "There are multiple root elements.");
        break;
    case XML_ERR_TAG_NOT_FINISHED:
    case XML_ERR_DOCUMENT_EMPTY:
    case XML_ERR_LTSLASH_REQUIRED:
        snprintf(what, sizeof(what), "Unexpected end of file has occurred.");
        break;
    case XML_ERR_INVALID_CHAR:
        snprintf(what, sizeof(what),
                 "'.', hexadecimal value 0x00, is an invalid character.");
        break;
    default:
        snprintf(what, sizeof(what), "Data at the root level is invalid.");
    }
    intime_xml_exception(req, what, line, pos > 0 ? pos : 1);
}

/* Returns true when the prolog (up to "?>") declares iso-8859-1. */
static bool intime_prolog_latin1(const char *body, size_t len)
{
    const char *end = memchr(body, '>', len);
    char prolog[256];

    if (end == NULL || (size_t)(end - body) >= sizeof(prolog))
        return false;
    memcpy(prolog, body, (size_t)(end - body));
    prolog[end - body] = '\0';
    const char *enc = strstr(prolog, "encoding");
    if (enc == NULL)
        return false;
    enc += 8;
    while (*enc == ' ')
        enc++;
    if (*enc++ != '=')
        return false;
    while (*enc == ' ')
        enc++;
    char quote = *enc++;
    if (quote != '"' && quote != '\'')
        return false;
    const char *close = strchr(enc, quote);
    return close != NULL && close - enc == 10 &&
           strncasecmp(enc, "iso-8859-1", 10) == 0;
}

/* Returns true when the bytes hold a C1 control or a UTF-8 multibyte
 * sequence: text encoded as something other than ISO-8859-1. */
static bool intime_not_latin1(const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] >= 0x80 && p[i] <= 0x9F)
            return true;
        if (p[i] >= 0xC2 && p[i] <= 0xF4 && i + 1 < len && p[i + 1] >= 0x80 &&
            p[i + 1] <= 0xBF)
            return true;
    }
    return false;
}

/* Parses the body into req->doc with root element `root`. Returns 0, or -1
 * having answered (empty: 0:ERROR2; not well-formed: exception text;
 * otherwise wrong: 1:ERROR1). */
static int intime_parse(struct request *req, const char *root)
{
    const char *body = req->body.data ? req->body.data : "";
    size_t len = req->body.len;
    char media[64];
    const char *ct = req_header(req, "Content-Type");
    size_t lead = 0;

    req_media_type(req, media, sizeof(media));
    while (lead < len && isspace((unsigned char)body[lead]))
        lead++;
    if (lead == len || (strcmp(media, "text/xml") != 0 &&
                        strcmp(media, "application/xml") != 0)) {
        intime_answer(req, "0:ERROR2");
        return -1;
    }
    const char *cs = ct != NULL ? strstr(ct, "charset=") : NULL;
    if (cs != NULL) {
        cs += 8;
        if (*cs == '"')
            cs++;
        if (strncasecmp(cs, "iso-8859-1", 10) != 0 &&
            strncasecmp(cs, "latin1", 6) != 0) {
            intime_answer(req, "1:ERROR1");
            return -1;
        }
    }
    if (strstr(body, "<!DOCTYPE") != NULL) {
        intime_xml_exception(
            req,
            "For security reasons DTD is prohibited in this XML document. "
            "To enable DTD processing set the DtdProcessing property on "
            "XmlReaderSettings to Parse.",
            1, 1);
        return -1;
    }
    bool bom = len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0;
    if (bom || (lead > 0 && strncmp(body + lead, "<?xml", 5) == 0)) {
        int line = 1, pos = 1;
        for (size_t i = 0; i < lead; i++) {
            if (body[i] == '\n') {
                line++;
                pos = 1;
            } else {
                pos++;
            }
        }
        intime_xml_exception(
            req,
            "Unexpected XML declaration. The XML declaration must be the "
            "first node in the document, and no white space characters are "
            "allowed to appear before it.",
            line, pos + 1);
        return -1;
    }
    if (body[lead] != '<') {
        intime_xml_exception(req, "Data at the root level is invalid.", 1, 1);
        return -1;
    }
    if (strncmp(body, "<?xml", 5) != 0 || !intime_prolog_latin1(body, len) ||
        intime_not_latin1((const unsigned char *)body, len)) {
        intime_answer(req, "1:ERROR1");
        return -1;
    }
    xmlResetLastError();
    req->doc = xmlReadMemory(body, (int)len, NULL, NULL,
                             XML_PARSE_NONET | XML_PARSE_NOERROR |
                                 XML_PARSE_NOWARNING);
    if (req->doc == NULL) {
        intime_parse_error(req);
        return -1;
    }
    xmlNode *r = xmlDocGetRootElement(req->doc);
    if (r == NULL || strcmp((const char *)r->name, root) != 0) {
        intime_answer(req, "1:ERROR1");
        return -1;
    }
    return 0;
}

static bool is_elem(const xmlNode *n, const char *name)
{
    return n->type == XML_ELEMENT_NODE &&
           (name == NULL || strcmp((const char *)n->name, name) == 0);
}

static xmlNode *child(const xmlNode *parent, const char *name)
{
    for (xmlNode *n = parent->children; n != NULL; n = n->next) {
        if (is_elem(n, name))
            return n;
    }
    return NULL;
}

/* Returns the trimmed text of a node (malloc'd). */
static char *text_of(const xmlNode *n)
{
    xmlChar *c = xmlNodeGetContent(n);
    char *s = xstrdup(c ? (const char *)c : "");

    xmlFree(c);
    return trim(s);
}

/* Returns the text of child `name` (malloc'd), or NULL when absent. */
static char *child_text(const xmlNode *parent, const char *name)
{
    xmlNode *n = child(parent, name);

    return n != NULL ? text_of(n) : NULL;
}

/* Returns an attribute (malloc'd, trimmed), or NULL. */
static char *attr(const xmlNode *n, const char *name)
{
    xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
    char *s = v ? trim(xstrdup((const char *)v)) : NULL;

    xmlFree(v);
    return s;
}

/* Returns true when every element child of n is named in `names` (a
 * NULL-ended list). */
static bool only_children(const xmlNode *n, const char *const *names)
{
    for (xmlNode *c = n->children; c != NULL; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        size_t i;
        for (i = 0; names[i] != NULL; i++) {
            if (strcmp((const char *)c->name, names[i]) == 0)
                break;
        }
        if (names[i] == NULL)
            return false;
    }
    return true;
}

/* A flag element: absent → def; "0" or "1"; anything else → -1. */
static int flag(const xmlNode *parent, const char *name, int def)
{
    char *v = child_text(parent, name);
    int ret = def;

    if (v != NULL)
        ret = strcmp(v, "0") == 0 ? 0 : strcmp(v, "1") == 0 ? 1 : -1;
    free(v);
    return ret;
}

/* Normalises an InTime phone number (+46..., 0046..., 46..., national 07...)
 * to MSISDN digits. Returns 0 or -1. */
static int intime_number(char out[32], const char *in)
{
    if (in[0] == '+')
        in++;
    else if (strncmp(in, "00", 2) == 0)
        in += 2;
    else if (in[0] == '0') {
        size_t n = strlen(in);
        if (n < 8 || n > 11 || !only_chars(in, "0123456789"))
            return -1;
        snprintf(out, 32, "46%s", in + 1);
        return 0;
    }
    if (!is_msisdn(in))
        return -1;
    snprintf(out, 32, "%s", in);
    return 0;
}

/* sendertitle: at most 11 of a-z A-Z 0-9 space . - + (no ÅÄÖ), or at most
 * 15 digits. */
static bool intime_sender_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0)
        return false;
    if (only_chars(s, "0123456789"))
        return n <= 15;
    return n <= 11 && only_chars(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLM"
                                    "NOPQRSTUVWXYZ0123456789 .-+");
}

/* Appends UTF-8 text as ISO-8859-1 XML content (other characters as
 * numeric references). */
static void latin1_xml(struct sbuf *b, const char *utf8)
{
    const char *p = utf8;

    while (*p != '\0') {
        uint32_t cp = utf8_next(&p);
        if (cp == '&' || cp == '<' || cp == '>' || cp == '"' || cp > 0xFF) {
            sbuf_printf(b, "&#%u;", (unsigned)cp);
        } else {
            char c = (char)(unsigned char)cp;
            sbuf_append(b, &c, 1);
        }
    }
}

/* Starts a listing document with root element `root`. */
static void list_open(struct sbuf *b, const char *root)
{
    sbuf_printf(b,
                "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\r\n"
                "<%s>\r\n",
                root);
}

/* Closes a listing and answers it, or 2:ERROR1 (no data) when it holds no
 * item. */
static void list_answer(struct request *req, struct sbuf *b, const char *root,
                        bool any)
{
    size_t len;

    sbuf_printf(b, "</%s>", root);
    char *s = sbuf_detach(b, &len);
    if (any)
        resp_set(&req->resp, 200, "text/xml; charset=iso-8859-1", s, len);
    else
        intime_answer(req, "2:ERROR1");
    free(s);
}

/* Appends id to a comma-separated answer. */
static void add_id(struct sbuf *b, const char *id)
{
    if (b->len > 0)
        sbuf_puts(b, ",");
    sbuf_puts(b, id);
}

/* Answers the ids collected, or `none` when there are none. */
static void ids_or(struct request *req, struct sbuf *ids, const char *none)
{
    char *s = sbuf_detach(ids, NULL);

    intime_answer(req, s[0] != '\0' ? s : none);
    free(s);
}

/* ------------------------------------------------------------------------
 * message/create.ashx and message/delete.ashx
 * ---------------------------------------------------------------------- */

struct intime_rcpt {
    char number[32];
    char *transid;
};

static void intime_create(struct request *req)
{
    static const char *const known[] = {
        "flash",      "multisms",  "senddate", "sendertitle",
        "body",       "statusurl", "checknix", "anonymize",
        "recipients", "groups",    NULL};
    xmlNode *msg, *list;
    char *senddate = NULL, *sender = NULL, *text = NULL, *url = NULL;
    struct intime_rcpt *rcpts = NULL;
    size_t n_rcpts = 0, cap = 0;
    int64_t due_ms = 0;
    struct acct_state *st = acct_state(req->acct);

    if (intime_parse(req, "message") != 0)
        return;
    msg = xmlDocGetRootElement(req->doc);
    int flash = flag(msg, "flash", -2);
    int multi = flag(msg, "multisms", -2);
    int checknix = flag(msg, "checknix", 0);
    int anonymize = flag(msg, "anonymize", 0);
    senddate = child_text(msg, "senddate");
    sender = child_text(msg, "sendertitle");
    text = child_text(msg, "body");
    url = child_text(msg, "statusurl");
    if (!only_children(msg, known) || flash < 0 || multi < 0 || checknix < 0 ||
        anonymize < 0 || sender == NULL || !intime_sender_ok(sender) ||
        text == NULL || text[0] == '\0' || (url != NULL && !is_http_url(url))) {
        intime_answer(req, "1:ERROR1");
        goto out;
    }
    struct text_count tc;
    text_count(&tc, text, strlen(text), false);
    size_t max = flash || !multi ? INTIME_SINGLE_MAX : INTIME_MULTI_MAX;
    if (tc.chars > max) {
        intime_answer(req, "1:ERROR1");
        goto out;
    }
    if (senddate != NULL) {
        int f[6];
        if (parse_datetime(f, senddate, 'T') != 0) {
            intime_answer(req, "1:ERROR1");
            goto out;
        }
        int64_t utc = civil_to_unix(f[0], f[1], f[2], f[3], f[4], f[5]) -
                      stockholm_offset(f);
        if (utc < now_ms() / 1000) {
            intime_answer(req, "1:ERROR2");
            goto out;
        }
        due_ms = utc * 1000;
    }

    list = child(msg, "recipients");
    for (xmlNode *n = list ? list->children : NULL; n != NULL; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        char *num = text_of(n);
        char norm[32];
        bool ok = is_elem(n, "recipient") && intime_number(norm, num) == 0;
        free(num);
        if (!ok) {
            intime_answer(req, "1:ERROR3");
            goto out;
        }
        if (n_rcpts == cap) {
            cap = cap ? cap * 2 : 16;
            rcpts = xrealloc(rcpts, cap * sizeof(*rcpts));
        }
        memcpy(rcpts[n_rcpts].number, norm, sizeof(norm));
        rcpts[n_rcpts++].transid = attr(n, "transid");
    }
    list = child(msg, "groups");
    for (xmlNode *n = list ? list->children : NULL; n != NULL; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        char *gid = is_elem(n, "group") ? attr(n, "groupid") : NULL;
        long id;
        if (gid == NULL || parse_long(&id, gid) != 0) {
            free(gid);
            intime_answer(req, "1:ERROR1");
            goto out;
        }
        for (size_t i = 0; i < st->contacts.len; i++) {
            struct contact *c = st->contacts.items[i];
            char norm[32];
            if (c->deleted || !contact_in_group(c, gid) || c->type == 2 ||
                intime_number(norm, c->msisdn) != 0)
                continue;
            if (checknix && state_blocked(st, norm) != NULL)
                continue;
            if (n_rcpts == cap) {
                cap = cap ? cap * 2 : 16;
                rcpts = xrealloc(rcpts, cap * sizeof(*rcpts));
            }
            memcpy(rcpts[n_rcpts].number, norm, sizeof(norm));
            rcpts[n_rcpts++].transid = NULL;
        }
        free(gid);
    }
    if (n_rcpts == 0) {
        intime_answer(req, "2:ERROR2");
        goto out;
    }
    unsigned parts =
        tc.chars <= INTIME_SINGLE_MAX
            ? 1
            : (unsigned)((tc.chars + INTIME_PART - 1) / INTIME_PART);
    if (req_gate_send(req, (unsigned)n_rcpts * parts))
        goto out;

    struct sbuf ids = {0};
    for (size_t i = 0; i < n_rcpts; i++) {
        struct msg *m = store_add(&standin->store, PROV_INTIME, req->acct,
                                  rcpts[i].number, sender, text);
        m->segments = parts;
        m->flash = flash == 1;
        m->code = -1;
        if (rcpts[i].transid != NULL)
            m->transid = xstrdup(rcpts[i].transid);
        if (url != NULL)
            m->callback_url = xstrdup(url);
        if (due_ms > 0) {
            m->due_ms = due_ms;
            m->state = MS_SCHEDULED;
        }
        schedule_delivery(m);
        add_id(&ids, m->id);
    }
    ids_or(req, &ids, "2:ERROR1");

out:
    for (size_t i = 0; i < n_rcpts; i++)
        free(rcpts[i].transid);
    free(rcpts);
    free(senddate);
    free(sender);
    free(text);
    free(url);
}

static void intime_delete(struct request *req)
{
    if (intime_parse(req, "message") != 0)
        return;
    char *id = child_text(xmlDocGetRootElement(req->doc), "messageid");
    long n;
    if (id == NULL || parse_long(&n, id) != 0) {
        intime_answer(req, "2:ERROR1");
        free(id);
        return;
    }
    struct msg *m = store_find(&standin->store, PROV_INTIME, id);
    if (m == NULL || m->acct != req->acct || m->state != MS_SCHEDULED) {
        intime_answer(req, "2:ERROR2");
    } else {
        intime_set_final(m, MS_CANCELLED);
        intime_answer(req, m->id);
    }
    free(id);
}

/* ------------------------------------------------------------------------
 * Contacts and groups
 * ---------------------------------------------------------------------- */

static bool email_ok(const char *s)
{
    const char *at = strchr(s, '@');

    return at != NULL && at != s && strchr(at + 1, '@') == NULL &&
           strchr(at + 1, '.') != NULL && at[1] != '.' &&
           s[strlen(s) - 1] != '.' && strchr(s, ' ') == NULL;
}

static void intime_contacts_add(struct request *req)
{
    struct acct_state *st = acct_state(req->acct);
    struct sbuf ids = {0};
    int pass;

    if (intime_parse(req, "contacts") != 0)
        return;
    xmlNode *root = xmlDocGetRootElement(req->doc);
    /* Validate all contacts first, then store them. */
    for (pass = 0; pass < 2; pass++) {
        for (xmlNode *n = root->children; n != NULL; n = n->next) {
            if (n->type != XML_ELEMENT_NODE)
                continue;
            if (!is_elem(n, "contact")) {
                intime_answer(req, "1:ERROR1");
                goto out;
            }
            char *type_s = child_text(n, "type");
            char *email = child_text(n, "email");
            char *mobile = child_text(n, "mobile");
            long type = 0;
            char norm[32] = "";
            const char *err = NULL;
            if (type_s == NULL || parse_long(&type, type_s) != 0 || type < 1 ||
                type > 3)
                err = "1:ERROR1";
            else if ((type >= 2 || (email != NULL && email[0] != '\0')) &&
                     (email == NULL || !email_ok(email)))
                err = "3:ERROR1";
            else if ((type != 2 || (mobile != NULL && mobile[0] != '\0')) &&
                     (mobile == NULL || intime_number(norm, mobile) != 0))
                err = "3:ERROR2";
            if (err != NULL || pass == 0) {
                free(type_s);
                free(email);
                free(mobile);
                if (err != NULL) {
                    intime_answer(req, err);
                    goto out;
                }
                continue;
            }
            struct contact *c =
                norm[0] ? state_contact_by_msisdn(st, norm) : NULL;
            if (c == NULL) {
                c = xcalloc(1, sizeof(*c));
                snprintf(c->id, sizeof(c->id), "%ld",
                         standin->store.next_small++);
                snprintf(c->msisdn, sizeof(c->msisdn), "%s", norm);
                ptrvec_push(&st->contacts, c);
            }
            c->type = (int)type;
            free(c->first);
            free(c->last);
            free(c->email);
            free(c->extra);
            c->first = child_text(n, "firstname");
            c->last = child_text(n, "lastname");
            c->email = email;
            c->extra = child_text(n, "extrafield");
            free(type_s);
            free(mobile);
            xmlNode *groups = child(n, "groups");
            for (xmlNode *g = groups ? groups->children : NULL; g != NULL;
                 g = g->next) {
                char *gid = is_elem(g, "group") ? attr(g, "groupid") : NULL;
                if (gid != NULL && !contact_in_group(c, gid))
                    ptrvec_push(&c->groups, gid);
                else
                    free(gid);
            }
            add_id(&ids, c->id);
        }
    }
    ids_or(req, &ids, "2:ERROR1");

out:
    sbuf_free(&ids);
}

static void intime_listgroups(struct request *req)
{
    struct acct_state *st = acct_state(req->acct);
    struct sbuf b = {0};
    bool any = false;

    list_open(&b, "groups");
    for (size_t i = 0; i < st->groups.len; i++) {
        struct group *g = st->groups.items[i];
        if (g->deleted)
            continue;
        any = true;
        sbuf_printf(&b, "  <group groupid=\"%s\">", g->id);
        latin1_xml(&b, g->name);
        sbuf_puts(&b, "</group>\r\n");
    }
    list_answer(req, &b, "groups", any);
}

/* Iterates root/<list>/<item> elements, validating the shape. */
static xmlNode *items_of(struct request *req, const char *root,
                         const char *list)
{
    if (intime_parse(req, root) != 0)
        return NULL;
    xmlNode *l = child(xmlDocGetRootElement(req->doc), list);
    if (l == NULL) {
        intime_answer(req, "1:ERROR1");
        return NULL;
    }
    return l;
}

static void intime_addgroup(struct request *req)
{
    struct acct_state *st = acct_state(req->acct);
    struct sbuf ids = {0};
    xmlNode *l = items_of(req, "addgroups", "groups");

    if (l == NULL)
        return;
    for (xmlNode *n = l->children; n != NULL; n = n->next) {
        char *name = is_elem(n, "group") ? attr(n, "groupname") : NULL;
        if (name == NULL || name[0] == '\0') {
            free(name);
            continue;
        }
        struct group *g = xcalloc(1, sizeof(*g));
        snprintf(g->id, sizeof(g->id), "%ld", standin->store.next_small++);
        g->name = name;
        ptrvec_push(&st->groups, g);
        add_id(&ids, g->id);
    }
    ids_or(req, &ids, "2:ERROR1");
}

static void intime_deletegroup(struct request *req)
{
    struct acct_state *st = acct_state(req->acct);
    struct sbuf ids = {0};
    xmlNode *l = items_of(req, "deletegroups", "groups");

    if (l == NULL)
        return;
    for (xmlNode *n = l->children; n != NULL; n = n->next) {
        char *gid = is_elem(n, "group") ? attr(n, "groupid") : NULL;
        char *dc = is_elem(n, "group") ? attr(n, "deletecontacts") : NULL;
        struct group *g = gid ? state_group(st, gid, true) : NULL;
        if (g != NULL) {
            bool drop = dc != NULL && strcasecmp(dc, "true") == 0;
            g->deleted = true;
            for (size_t i = 0; i < st->contacts.len; i++) {
                struct contact *c = st->contacts.items[i];
                for (size_t k = 0; k < c->groups.len; k++) {
                    if (strcmp(c->groups.items[k], gid) != 0)
                        continue;
                    free(c->groups.items[k]);
                    c->groups.items[k] = c->groups.items[--c->groups.len];
                    c->deleted = c->deleted || drop;
                    break;
                }
            }
            add_id(&ids, g->id);
        }
        free(gid);
        free(dc);
    }
    ids_or(req, &ids, "2:ERROR1");
}

/* ------------------------------------------------------------------------
 * Block list ("nix")
 * ---------------------------------------------------------------------- */

static void intime_nix_list(struct request *req)
{
    struct acct_state *st = acct_state(req->acct);
    struct sbuf b = {0};
    bool any = false;

    list_open(&b, "nixentries");
    for (size_t i = 0; i < st->blocked.len; i++) {
        struct listed *l = st->blocked.items[i];
        if (l->deleted)
            continue;
        struct contact *c = state_contact_by_msisdn(st, l->msisdn);
        any = true;
        sbuf_printf(&b,
                    "  <nixentry>\r\n    <mobile>%s</mobile>\r\n"
                    "    <firstname>",
                    l->msisdn);
        latin1_xml(&b, c && c->first ? c->first : "");
        sbuf_puts(&b, "</firstname>\r\n    <lastname>");
        latin1_xml(&b, c && c->last ? c->last : "");
        sbuf_puts(&b, "</lastname>\r\n  </nixentry>\r\n");
    }
    list_answer(req, &b, "nixentries", any);
}

static void intime_nix_change(struct request *req, bool add)
{
    struct acct_state *st = acct_state(req->acct);
    struct sbuf ids = {0};
    xmlNode *l = add ? items_of(req, "addnixentries", "nixentries")
                     : items_of(req, "deletenixentries", "nixentries");

    if (l == NULL)
        return;
    for (xmlNode *n = l->children; n != NULL; n = n->next) {
        char *mobile = is_elem(n, "nixentry") ? attr(n, "mobile") : NULL;
        char norm[32];
        if (mobile == NULL || intime_number(norm, mobile) != 0) {
            free(mobile);
            continue;
        }
        free(mobile);
        struct listed *e = state_blocked(st, norm);
        if (add && e == NULL) {
            e = xcalloc(1, sizeof(*e));
            snprintf(e->id, sizeof(e->id), "%ld", standin->store.next_small++);
            snprintf(e->msisdn, sizeof(e->msisdn), "%s", norm);
            e->created_ms = now_ms();
            ptrvec_push(&st->blocked, e);
        } else if (!add && e != NULL) {
            e->deleted = true;
        } else if (!add) {
            continue;
        }
        add_id(&ids, e->id);
    }
    ids_or(req, &ids, "2:ERROR1");
}

/* ------------------------------------------------------------------------
 * Reminders
 * ---------------------------------------------------------------------- */

static const char *const reminder_fields[] = {
    "appointmentdate",     "organizer_firstname",
    "organizer_lastname",  "organizer_title",
    "attendant_firstname", "attendant_lastname",
    "attendant_mobile",    NULL};

static const char *rget(json_t *r, const char *k)
{
    const char *v = json_string_value(json_object_get(r, k));

    return v ? v : "";
}

static void intime_reminder_list(struct request *req)
{
    struct acct_state *st = acct_state(req->acct);
    const char *want = kvlist_get(&req->qargs, "id", true);
    struct sbuf b = {0};
    bool any = false;

    list_open(&b, "reminderappointments");
    for (size_t i = 0; i < st->reminders.len; i++) {
        json_t *r = st->reminders.items[i];
        long id = (long)json_integer_value(json_object_get(r, "id"));
        char ids[24], date[20];
        snprintf(ids, sizeof(ids), "%ld", id);
        if (want != NULL && want[0] != '\0' && strcmp(want, ids) != 0)
            continue;
        any = true;
        /* "2013-04-25T08:30:00" is listed as "2013-04-25 08:30". */
        snprintf(date, sizeof(date), "%.16s", rget(r, "appointmentdate"));
        if (strlen(date) > 10)
            date[10] = ' ';
        sbuf_printf(&b,
                    "  <reminderappointment>\r\n"
                    "    <appointmentId>%ld</appointmentId>\r\n"
                    "    <appointmentDate>%s</appointmentDate>\r\n"
                    "    <userId>1</userId>\r\n"
                    "    <userIdentity></userIdentity>\r\n"
                    "    <userAlias>standin</userAlias>\r\n"
                    "    <active>%s</active>\r\n"
                    "    <messageDate>%s</messageDate>\r\n"
                    "    <messageText></messageText>\r\n"
                    "    <organizer>\r\n      <title>",
                    id, date,
                    json_is_true(json_object_get(r, "active")) ? "true"
                                                               : "false",
                    date);
        latin1_xml(&b, rget(r, "organizer_title"));
        sbuf_puts(&b, "</title>\r\n      <firstname>");
        latin1_xml(&b, rget(r, "organizer_firstname"));
        sbuf_puts(&b, "</firstname>\r\n      <lastname>");
        latin1_xml(&b, rget(r, "organizer_lastname"));
        sbuf_puts(&b, "</lastname>\r\n    </organizer>\r\n    <attendant>\r\n"
                      "      <firstname>");
        latin1_xml(&b, rget(r, "attendant_firstname"));
        sbuf_puts(&b, "</firstname>\r\n      <lastname>");
        latin1_xml(&b, rget(r, "attendant_lastname"));
        sbuf_puts(&b, "</lastname>\r\n      <mobile>");
        latin1_xml(&b, rget(r, "attendant_mobile"));
        sbuf_puts(&b, "</mobile>\r\n    </attendant>\r\n"
                      "  </reminderappointment>\r\n");
    }
    list_answer(req, &b, "reminderappointments", any);
}

/* Copies the reminder fields present in n into r; checks date and mobile.
 * Returns 0 or -1. */
static int reminder_fill(json_t *r, const xmlNode *n)
{
    for (size_t i = 0; reminder_fields[i] != NULL; i++) {
        char *v = child_text(n, reminder_fields[i]);
        int f[6];
        char norm[32];
        if (v == NULL)
            continue;
        bool bad = (i == 0 && parse_datetime(f, v, 'T') != 0) ||
                   (i == 6 && intime_number(norm, v) != 0);
        if (!bad)
            json_object_set_new(r, reminder_fields[i], json_string(v));
        free(v);
        if (bad)
            return -1;
    }
    return 0;
}

static void intime_reminder_add(struct request *req)
{
    struct acct_state *st = acct_state(req->acct);
    struct sbuf ids = {0};

    if (intime_parse(req, "reminderappointments") != 0)
        return;
    xmlNode *root = xmlDocGetRootElement(req->doc);
    for (xmlNode *n = root->children; n != NULL; n = n->next) {
        if (!is_elem(n, "reminderappointment"))
            continue;
        json_t *r = json_object();
        if (reminder_fill(r, n) != 0 ||
            json_object_get(r, "appointmentdate") == NULL ||
            json_object_get(r, "attendant_mobile") == NULL) {
            json_decref(r);
            continue;
        }
        long id = standin->store.next_small++;
        char ids_s[24];
        json_object_set_new(r, "id", json_integer(id));
        json_object_set_new(r, "active", json_true());
        ptrvec_push(&st->reminders, r);
        snprintf(ids_s, sizeof(ids_s), "%ld", id);
        add_id(&ids, ids_s);
    }
    ids_or(req, &ids, "2:ERROR1");
}

static void intime_reminder_edit(struct request *req)
{
    struct acct_state *st = acct_state(req->acct);
    struct sbuf ids = {0};

    if (intime_parse(req, "reminderappointments") != 0)
        return;
    xmlNode *root = xmlDocGetRootElement(req->doc);
    for (xmlNode *n = root->children; n != NULL; n = n->next) {
        if (!is_elem(n, "reminderappointment"))
            continue;
        char *id_s = child_text(n, "appointmentid");
        char *active = child_text(n, "active");
        long id;
        char out[24];
        json_t *r = NULL;
        if (id_s == NULL || parse_long(&id, id_s) != 0) {
            free(id_s);
            free(active);
            continue;
        }
        for (size_t i = 0; i < st->reminders.len; i++) {
            json_t *c = st->reminders.items[i];
            if (json_integer_value(json_object_get(c, "id")) == id)
                r = c;
        }
        /* Only active reminders can change; others come back negative. */
        json_t *copy = r ? json_deep_copy(r) : NULL;
        if (r == NULL || !json_is_true(json_object_get(r, "active")) ||
            reminder_fill(copy, n) != 0) {
            snprintf(out, sizeof(out), "%ld", -id);
        } else {
            json_object_update(r, copy);
            if (active != NULL && strcasecmp(active, "false") == 0)
                json_object_set_new(r, "active", json_false());
            snprintf(out, sizeof(out), "%ld", id);
        }
        json_decref(copy);
        add_id(&ids, out);
        free(id_s);
        free(active);
    }
    ids_or(req, &ids, "2:ERROR1");
}

/* ------------------------------------------------------------------------
 * Dispatch
 * ---------------------------------------------------------------------- */

void intime_handle(struct request *req)
{
    static const struct {
        const char *path;
        void (*fn)(struct request *req);
    } routes[] = {
        {"/message/create.ashx", intime_create},
        {"/message/delete.ashx", intime_delete},
        {"/contacts/add.ashx", intime_contacts_add},
        {"/contacts/listgroups.ashx", intime_listgroups},
        {"/contacts/addgroup.ashx", intime_addgroup},
        {"/contacts/deletegroup.ashx", intime_deletegroup},
        {"/nix/list.ashx", intime_nix_list},
        {"/nix/addnix.ashx", NULL},
        {"/nix/deletenix.aspx", NULL},
        {"/reminder/list.ashx", intime_reminder_list},
        {"/reminder/add.ashx", intime_reminder_add},
        {"/reminder/edit.ashx", intime_reminder_edit},
    };
    size_t i;

    for (i = 0; i < sizeof(routes) / sizeof(*routes); i++) {
        if (strcasecmp(req->sub, routes[i].path) == 0)
            break;
    }
    if (i == sizeof(routes) / sizeof(*routes)) {
        resp_printf(&req->resp, 404, "text/html; charset=utf-8",
                    "<html><body><h2>The resource cannot be found.</h2>"
                    "</body></html>");
        return;
    }
    const char *user = kvlist_get(&req->qargs, "user", true);
    const char *hash = kvlist_get(&req->qargs, "hash", true);
    if (user == NULL || user[0] == '\0' || hash == NULL || hash[0] == '\0') {
        intime_answer(req, "0:ERROR1");
        return;
    }
    if (req->acct == NULL) {
        intime_answer(req, "0:ERROR3");
        return;
    }
    if (routes[i].fn != NULL)
        routes[i].fn(req);
    else
        intime_nix_change(req, strcasecmp(req->sub, "/nix/addnix.ashx") == 0);
}
