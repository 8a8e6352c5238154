/* codecs/job.c - parses and validates a kurir job (CONTRACT §4).
 *
 * One pass over the parsed document: each field is read by a small helper
 * that knows its JSON type and its rule, and the first problem found becomes
 * the one error line. JSON null counts as absent for optional fields.
 * Unknown fields are ignored, so producers may add their own.
 *
 * Choices written down here (CONTRACT leaves them open):
 * - a campaign cancel names the campaign by "campaign_id": the "id" of the
 *   campaign create job it cancels (the worker maps it to the provider's
 *   campaign or batch ids it recorded);
 * - "to", "msisdns" and "groups" may be one string or an array of strings;
 * - contact-delete takes "contacts" or "msisdns"; group-add-member and
 *   group-remove-member take "groups" and members as "contacts" or
 *   "msisdns";
 * - at most JOB_MAX_RECIPIENTS recipients, JOB_MAX_TEXT bytes of text and
 *   a JOB_MAX_ID-byte id;
 * - duplicate keys in an object are a JSON error. */
#include "codecs/job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JOB_MAX_RECIPIENTS  100000
#define JOB_MAX_PARAMS      16
#define JOB_MAX_PARAM_NAME  32
#define JOB_MAX_PARAM_VALUE 160
#define JOB_PARAM_NAME_CHARS \
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"

static const char *const type_names[] = {
    [JOB_SEND] = "send",
    [JOB_CAMPAIGN] = "campaign",
    [JOB_CONTACTS] = "contact-sync",
};

static const char *const action_names[] = {
    [ACTION_NONE] = "",
    [ACTION_CREATE] = "create",
    [ACTION_CANCEL] = "cancel",
    [ACTION_CONTACT_UPSERT] = "contact-upsert",
    [ACTION_CONTACT_DELETE] = "contact-delete",
    [ACTION_GROUP_CREATE] = "group-create",
    [ACTION_GROUP_DELETE] = "group-delete",
    [ACTION_GROUP_ADD_MEMBER] = "group-add-member",
    [ACTION_GROUP_REMOVE_MEMBER] = "group-remove-member",
    [ACTION_BLOCKLIST_ADD] = "blocklist-add",
    [ACTION_BLOCKLIST_REMOVE] = "blocklist-remove",
    [ACTION_REMINDER_ADD] = "reminder-add",
    [ACTION_REMINDER_EDIT] = "reminder-edit",
    [ACTION_LIST_GROUPS] = "list-groups",
    [ACTION_LIST_BLOCKLIST] = "list-blocklist",
    [ACTION_LIST_REMINDERS] = "list-reminders",
    [ACTION_EXPORT_CONTACTS] = "export-contacts",
    [ACTION_BALANCE] = "balance",
    [ACTION_MESSAGE_STATUS] = "message-status",
    [ACTION_CAMPAIGN_STATUS] = "campaign-status",
    [ACTION_CHECK_BLOCKLIST] = "check-blocklist",
    [ACTION_LIST_SENDERS] = "list-senders",
    [ACTION_REGISTER_SENDER] = "register-sender",
    [ACTION_CONTACT_UPDATE] = "contact-update",
    [ACTION_LABEL_ADD] = "label-add",
    [ACTION_BLOCKLIST_IMPORT] = "blocklist-import",
};

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

const char *job_type_name(enum job_type type)
{
    return (size_t)type < NELEMS(type_names) ? type_names[type] : "?";
}

const char *job_action_name(enum job_action action)
{
    return (size_t)action < NELEMS(action_names) ? action_names[action] : "?";
}

bool job_action_is_read(enum job_action action)
{
    switch (action) {
    case ACTION_LIST_GROUPS:
    case ACTION_LIST_BLOCKLIST:
    case ACTION_LIST_REMINDERS:
    case ACTION_EXPORT_CONTACTS:
    case ACTION_BALANCE:
    case ACTION_MESSAGE_STATUS:
    case ACTION_CAMPAIGN_STATUS:
    case ACTION_CHECK_BLOCKLIST:
    case ACTION_LIST_SENDERS:
    case ACTION_BLOCKLIST_IMPORT:
        return true;
    default:
        return false;
    }
}

static void *job_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);

    if (p == NULL)
        abort();
    return p;
}

/* ------------------------------------------------------------------------ */
/* Field readers. Each returns 0 (the field is absent or good) or -1 with
 * errstr set. */

/* Reads optional string `key`; *out stays NULL when absent. An empty string
 * is an error: a field given empty is a producer's mistake. */
static int job_get_str(const char **out, size_t *len_out, json_t *root,
                       const char *key, char *errstr, size_t errstr_size)
{
    json_t *v = json_object_get(root, key);

    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        snprintf(errstr, errstr_size, "\"%s\" is not a string", key);
        return -1;
    }
    if (json_string_length(v) == 0) {
        snprintf(errstr, errstr_size, "\"%s\" is empty", key);
        return -1;
    }
    *out = json_string_value(v);
    if (len_out != NULL)
        *len_out = json_string_length(v);
    return 0;
}

static int job_need_str(const char **out, json_t *root, const char *key,
                        char *errstr, size_t errstr_size)
{
    if (job_get_str(out, NULL, root, key, errstr, errstr_size) != 0)
        return -1;
    if (*out == NULL) {
        snprintf(errstr, errstr_size, "missing \"%s\"", key);
        return -1;
    }
    return 0;
}

/* Returns the array (or the single string) at `key`, or NULL when absent,
 * with *n set to its element count; checks every element is a non-empty
 * string. Sets *bad when it is there but malformed. */
static json_t *job_str_list(json_t *root, const char *key, size_t *n, bool *bad,
                            char *errstr, size_t errstr_size)
{
    json_t *v = json_object_get(root, key);

    *bad = false;
    *n = 0;
    if (v == NULL || json_is_null(v))
        return NULL;
    if (json_is_string(v)) {
        *n = 1;
    } else if (json_is_array(v)) {
        *n = json_array_size(v);
        for (size_t i = 0; i < *n; i++) {
            json_t *e = json_array_get(v, i);
            if (!json_is_string(e) || json_string_length(e) == 0) {
                snprintf(errstr, errstr_size, "\"%s\"[%zu] is %s", key, i,
                         json_is_string(e) ? "empty" : "not a string");
                *bad = true;
                return NULL;
            }
        }
    } else {
        snprintf(errstr, errstr_size,
                 "\"%s\" must be a string or an array of strings", key);
        *bad = true;
        return NULL;
    }
    if (*n == 0) {
        snprintf(errstr, errstr_size, "\"%s\" is empty", key);
        *bad = true;
        return NULL;
    }
    return v;
}

static const char *job_list_at(json_t *v, size_t i)
{
    return json_is_string(v) ? json_string_value(v)
                             : json_string_value(json_array_get(v, i));
}

/* Reads a list of numbers at `key` into *out (one allocation: the pointer
 * array followed by the digits) and *n. Absent leaves *out NULL. */
static int job_get_numbers(char ***out, size_t *n, json_t *root,
                           const char *key, char *errstr, size_t errstr_size)
{
    bool bad;
    json_t *v = job_str_list(root, key, n, &bad, errstr, errstr_size);

    if (bad)
        return -1;
    if (v == NULL)
        return 0;
    if (*n > JOB_MAX_RECIPIENTS) {
        snprintf(errstr, errstr_size, "\"%s\" has %zu numbers, %d at most", key,
                 *n, JOB_MAX_RECIPIENTS);
        return -1;
    }
    size_t slot = MSISDN_MAX + 1;
    char **list = job_xcalloc(1, *n * (sizeof(char *) + slot));
    char *digits = (char *)(list + *n);
    for (size_t i = 0; i < *n; i++) {
        char why[96];
        list[i] = digits + i * slot;
        if (msisdn_normalise(list[i], job_list_at(v, i), why, sizeof(why)) !=
            0) {
            if (json_is_string(v))
                snprintf(errstr, errstr_size, "\"%s\": %s", key, why);
            else
                snprintf(errstr, errstr_size, "\"%s\"[%zu]: %s", key, i, why);
            free(list);
            return -1;
        }
    }
    *out = list;
    return 0;
}

/* Checks one recipient's "params": an object of at most JOB_MAX_PARAMS
 * string values, keys being placeholder names, each value at most
 * JOB_MAX_PARAM_VALUE bytes of valid UTF-8. */
static int job_check_params(json_t *params, char *errstr, size_t errstr_size)
{
    const char *key;
    json_t *v;

    if (!json_is_object(params)) {
        snprintf(errstr, errstr_size, "\"params\" is not an object");
        return -1;
    }
    if (json_object_size(params) > JOB_MAX_PARAMS) {
        snprintf(errstr, errstr_size, "\"params\" has %zu entries, %d at most",
                 json_object_size(params), JOB_MAX_PARAMS);
        return -1;
    }
    json_object_foreach(params, key, v)
    {
        size_t klen = strlen(key);
        struct text_info info;
        char why[96];

        if (klen == 0 || klen > JOB_MAX_PARAM_NAME ||
            strspn(key, JOB_PARAM_NAME_CHARS) != klen) {
            snprintf(errstr, errstr_size,
                     "\"params\" key \"%.40s\" is not 1-%d of a-z A-Z 0-9 _",
                     key, JOB_MAX_PARAM_NAME);
            return -1;
        }
        if (!json_is_string(v)) {
            snprintf(errstr, errstr_size, "\"params\".%s is not a string", key);
            return -1;
        }
        if (json_string_length(v) > JOB_MAX_PARAM_VALUE) {
            snprintf(errstr, errstr_size,
                     "\"params\".%s is %zu bytes, %d at most", key,
                     json_string_length(v), JOB_MAX_PARAM_VALUE);
            return -1;
        }
        if (text_analyse(&info, json_string_value(v), json_string_length(v),
                         why, sizeof(why)) != 0) {
            snprintf(errstr, errstr_size, "\"params\".%s: %s", key, why);
            return -1;
        }
    }
    return 0;
}

/* Reads "to": one number, or an array whose entries are numbers or
 * {"msisdn": "...", "params": {...}} objects, mixed. Fills job->to, and
 * job->params (one borrowed object or NULL per recipient) when any entry
 * carries params. */
static int job_get_to(struct job *job, char *errstr, size_t errstr_size)
{
    json_t *v = json_object_get(job->root, "to");
    size_t n;

    if (v == NULL || json_is_null(v) || json_is_string(v))
        return job_get_numbers(&job->to, &job->nto, job->root, "to", errstr,
                               errstr_size);
    if (!json_is_array(v)) {
        snprintf(errstr, errstr_size,
                 "\"to\" must be a string or an array of numbers and "
                 "{\"msisdn\", \"params\"} objects");
        return -1;
    }
    n = json_array_size(v);
    if (n == 0) {
        snprintf(errstr, errstr_size, "\"to\" is empty");
        return -1;
    }
    if (n > JOB_MAX_RECIPIENTS) {
        snprintf(errstr, errstr_size, "\"to\" has %zu numbers, %d at most", n,
                 JOB_MAX_RECIPIENTS);
        return -1;
    }
    size_t slot = MSISDN_MAX + 1;
    char **list = job_xcalloc(1, n * (sizeof(char *) + slot));
    char *digits = (char *)(list + n);
    json_t **params = NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i), *num = e, *p = NULL;
        char why[160];

        list[i] = digits + i * slot;
        if (json_is_object(e)) {
            num = json_object_get(e, "msisdn");
            p = json_object_get(e, "params");
            if (json_is_null(p))
                p = NULL;
            if (!json_is_string(num)) {
                snprintf(errstr, errstr_size,
                         "\"to\"[%zu]: missing \"msisdn\" string", i);
                goto fail;
            }
            if (p != NULL && job_check_params(p, why, sizeof(why)) != 0) {
                snprintf(errstr, errstr_size, "\"to\"[%zu]: %s", i, why);
                goto fail;
            }
        } else if (!json_is_string(e)) {
            snprintf(errstr, errstr_size,
                     "\"to\"[%zu] is neither a number string nor an object", i);
            goto fail;
        }
        if (msisdn_normalise(list[i], json_string_value(num), why,
                             sizeof(why)) != 0) {
            snprintf(errstr, errstr_size, "\"to\"[%zu]: %s", i, why);
            goto fail;
        }
        if (p != NULL) {
            if (params == NULL)
                params = job_xcalloc(n, sizeof(*params));
            params[i] = p;
        }
    }
    job->to = list;
    job->nto = n;
    job->params = params;
    return 0;

fail:
    free(list);
    free(params);
    return -1;
}

/* Reads a list of names (groups) at `key` into an owned array of borrowed
 * strings. */
static int job_get_names(const char ***out, size_t *n, json_t *root,
                         const char *key, char *errstr, size_t errstr_size)
{
    bool bad;
    json_t *v = job_str_list(root, key, n, &bad, errstr, errstr_size);

    if (bad)
        return -1;
    if (v == NULL)
        return 0;
    const char **list = job_xcalloc(*n, sizeof(*list));
    for (size_t i = 0; i < *n; i++)
        list[i] = job_list_at(v, i);
    *out = list;
    return 0;
}

/* Reads two-digit (or `width`-digit) decimal at s; -1 when not digits. */
static int job_digits(const char *s, int width)
{
    int v = 0;

    for (int i = 0; i < width; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t job_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Parses an RFC 3339 date-time ("2026-11-24T08:00:00Z", fractions and
 * +hh:mm / -hh:mm offsets allowed) to Unix milliseconds. */
static int job_parse_time(int64_t *out, const char *s)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    size_t len = strlen(s);

    if (len < 20 || s[4] != '-' || s[7] != '-' ||
        (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':')
        return -1;
    int year = job_digits(s, 4), mon = job_digits(s + 5, 2);
    int day = job_digits(s + 8, 2), hour = job_digits(s + 11, 2);
    int min = job_digits(s + 14, 2), sec = job_digits(s + 17, 2);
    if (year < 0 || mon < 1 || mon > 12 || day < 1 || day > mdays[mon - 1] ||
        hour < 0 || hour > 23 || min < 0 || min > 59 || sec < 0 || sec > 60)
        return -1;
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (mon == 2 && day == 29 && !leap)
        return -1;

    const char *p = s + 19;
    int ms = 0;
    if (*p == '.') {
        p++;
        int ndig = 0;
        while (*p >= '0' && *p <= '9') {
            if (ndig < 3)
                ms = ms * 10 + (*p - '0');
            ndig++;
            p++;
        }
        if (ndig == 0)
            return -1;
        for (; ndig < 3; ndig++)
            ms *= 10;
    }
    int offset_min = 0;
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
        offset_min = 0;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int oh = job_digits(p + 1, 2), om = job_digits(p + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return -1;
        offset_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
    } else {
        return -1;
    }
    int64_t secs = job_days_from_civil(year, mon, day) * 86400 + hour * 3600 +
                   min * 60 + sec - offset_min * 60;
    *out = secs * 1000 + ms;
    return 0;
}

static int job_get_contacts(struct job *job, char *errstr, size_t errstr_size)
{
    json_t *v = json_object_get(job->root, "contacts");

    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_array(v) || json_array_size(v) == 0) {
        snprintf(errstr, errstr_size, "\"contacts\" %s",
                 json_is_array(v) ? "is empty" : "is not an array");
        return -1;
    }
    size_t n = json_array_size(v);
    if (n > JOB_MAX_RECIPIENTS) {
        snprintf(errstr, errstr_size,
                 "\"contacts\" has %zu entries, %d at "
                 "most",
                 n, JOB_MAX_RECIPIENTS);
        return -1;
    }
    /* The contacts, then their numbers, in one allocation. */
    size_t slot = MSISDN_MAX + 1;
    job->contacts = job_xcalloc(1, n * (sizeof(struct contact) + slot));
    char *digits = (char *)(job->contacts + n);
    job->ncontacts = n;
    for (size_t i = 0; i < n; i++) {
        json_t *c = json_array_get(v, i);
        struct contact *ct = &job->contacts[i];
        char why[160];
        const char *msisdn = NULL;

        if (!json_is_object(c)) {
            snprintf(errstr, errstr_size,
                     "\"contacts\"[%zu] is not an "
                     "object",
                     i);
            return -1;
        }
        if (job_need_str(&msisdn, c, "msisdn", why, sizeof(why)) != 0 ||
            msisdn_normalise(digits + i * slot, msisdn, why, sizeof(why)) !=
                0 ||
            job_get_str(&ct->first_name, NULL, c, "first_name", why,
                        sizeof(why)) != 0 ||
            job_get_str(&ct->last_name, NULL, c, "last_name", why,
                        sizeof(why)) != 0 ||
            job_get_str(&ct->email, NULL, c, "email", why, sizeof(why)) != 0 ||
            job_get_names(&ct->groups, &ct->ngroups, c, "groups", why,
                          sizeof(why)) != 0) {
            snprintf(errstr, errstr_size, "\"contacts\"[%zu]: %s", i, why);
            return -1;
        }
        ct->msisdn = digits + i * slot;
        json_t *extra = json_object_get(c, "extra");
        if (extra != NULL && !json_is_null(extra) && !json_is_object(extra) &&
            !json_is_string(extra)) {
            snprintf(errstr, errstr_size,
                     "\"contacts\"[%zu]: \"extra\" is neither an object nor "
                     "a string",
                     i);
            return -1;
        }
        ct->extra =
            json_is_object(extra) || json_is_string(extra) ? extra : NULL;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Placeholders: "{name}" where name is 1-32 of a-z A-Z 0-9 _; "{{" is a
 * literal "{". Any other "{" is literal text. Only a job where some
 * recipient carries "params" is rendered, so the text of a job without
 * params goes out as written, braces and all. */

/* If text[i..len) begins a placeholder, returns its total length ("{" to
 * "}") and sets *name and *name_len; else returns 0. */
static size_t job_placeholder_at(const char *text, size_t len, size_t i,
                                 const char **name, size_t *name_len)
{
    size_t j = i + 1;

    if (text[i] != '{')
        return 0;
    while (j < len && j - i - 1 < JOB_MAX_PARAM_NAME &&
           strchr(JOB_PARAM_NAME_CHARS, text[j]) != NULL && text[j] != '\0')
        j++;
    if (j == i + 1 || j >= len || text[j] != '}')
        return 0;
    *name = text + i + 1;
    *name_len = j - i - 1;
    return j - i + 1;
}

/* Looks up a placeholder's value in a recipient's params (NULL: none). */
static json_t *job_param(json_t *params, const char *name, size_t name_len)
{
    char key[JOB_MAX_PARAM_NAME + 1];

    if (params == NULL || name_len > JOB_MAX_PARAM_NAME)
        return NULL;
    memcpy(key, name, name_len);
    key[name_len] = '\0';
    return json_object_get(params, key);
}

bool job_is_personal(const struct job *job)
{
    return job->params != NULL && job->text != NULL;
}

int job_render_text(const struct job *job, size_t i, char *buf, size_t size,
                    size_t *len_out, char *errstr, size_t errstr_size)
{
    const char *t = job->text;
    size_t len = job->text_len, n = 0;
    json_t *params =
        job->params != NULL && i < job->nto ? job->params[i] : NULL;

    for (size_t k = 0; k < len;) {
        const char *name;
        size_t name_len, take = 1;
        const char *piece = t + k;
        size_t piece_len = 1;

        if (job->params != NULL && t[k] == '{' && k + 1 < len &&
            t[k + 1] == '{') {
            take = 2; /* "{{": a literal "{" */
        } else if (job->params != NULL &&
                   (take = job_placeholder_at(t, len, k, &name, &name_len)) >
                       0) {
            json_t *v = job_param(params, name, name_len);
            if (v == NULL) {
                snprintf(errstr, errstr_size,
                         "recipient %zu has no value for placeholder "
                         "\"{%.*s}\"",
                         i, (int)name_len, name);
                return -1;
            }
            piece = json_string_value(v);
            piece_len = json_string_length(v);
        } else {
            take = 1;
        }
        if (n + piece_len + 1 > size) {
            snprintf(errstr, errstr_size,
                     "recipient %zu's text is longer than %zu bytes", i,
                     size - 1);
            return -1;
        }
        memcpy(buf + n, piece, piece_len);
        n += piece_len;
        k += take;
    }
    buf[n] = '\0';
    if (len_out != NULL)
        *len_out = n;
    return 0;
}

/* For a job with params: renders every recipient's text once, so that an
 * unknown placeholder or a rendered text over JOB_MAX_TEXT bytes is a
 * validation error now rather than a failed send later. */
static int job_check_placeholders(struct job *job, char *errstr,
                                  size_t errstr_size)
{
    if (!job_is_personal(job))
        return 0;
    char *buf = job_xcalloc(1, JOB_MAX_TEXT + 1);
    int ret = 0;
    for (size_t i = 0; i < job->nto && ret == 0; i++) {
        size_t n;
        struct text_info info;
        ret = job_render_text(job, i, buf, JOB_MAX_TEXT + 1, &n, errstr,
                              errstr_size);
        if (ret == 0)
            ret = text_analyse(&info, buf, n, errstr, errstr_size);
    }
    free(buf);
    return ret;
}

/* ------------------------------------------------------------------------ */
/* The job kinds. */

static int job_parse_text(struct job *job, bool required, char *errstr,
                          size_t errstr_size)
{
    if (job_get_str(&job->text, &job->text_len, job->root, "text", errstr,
                    errstr_size) != 0)
        return -1;
    if (job->text == NULL) {
        if (!required)
            return 0;
        snprintf(errstr, errstr_size, "missing \"text\"");
        return -1;
    }
    if (job->text_len > JOB_MAX_TEXT) {
        snprintf(errstr, errstr_size, "text is %zu bytes, %d at most",
                 job->text_len, JOB_MAX_TEXT);
        return -1;
    }
    return text_analyse(&job->text_info, job->text, job->text_len, errstr,
                        errstr_size);
}

/* The fields a send and a campaign create share. */
static int job_parse_message(struct job *job, char *errstr, size_t errstr_size)
{
    json_t *root = job->root;
    const char *send_at = NULL;

    if (job_get_to(job, errstr, errstr_size) != 0 ||
        job_get_str(&job->from, NULL, root, "from", errstr, errstr_size) != 0 ||
        job_parse_text(job, true, errstr, errstr_size) != 0 ||
        job_get_str(&send_at, NULL, root, "send_at", errstr, errstr_size) !=
            0 ||
        job_get_str(&job->reference, NULL, root, "reference", errstr,
                    errstr_size) != 0)
        return -1;
    if (send_at != NULL && job_parse_time(&job->send_at_ms, send_at) != 0) {
        snprintf(errstr, errstr_size, "\"send_at\": not an RFC 3339 time");
        return -1;
    }

    json_t *v = json_object_get(root, "flash");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_boolean(v)) {
            snprintf(errstr, errstr_size, "\"flash\" is not true or false");
            return -1;
        }
        job->flash = json_is_true(v);
    }
    v = json_object_get(root, "priority");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > 9) {
            snprintf(errstr, errstr_size,
                     "\"priority\" is not an integer from 0 to 9");
            return -1;
        }
        job->priority = (int)json_integer_value(v);
    }
    return job_check_placeholders(job, errstr, errstr_size);
}

static int job_parse_send(struct job *job, char *errstr, size_t errstr_size)
{
    if (job_parse_message(job, errstr, errstr_size) != 0)
        return -1;
    if (job->to == NULL) {
        snprintf(errstr, errstr_size, "missing \"to\"");
        return -1;
    }
    return 0;
}

/* Looks up an action name in action_names from `first` to `last`. */
static int job_get_action(struct job *job, enum job_action first,
                          enum job_action last, char *errstr,
                          size_t errstr_size)
{
    const char *action = NULL;

    if (job_need_str(&action, job->root, "action", errstr, errstr_size) != 0)
        return -1;
    for (int a = first; a <= (int)last; a++) {
        if (strcmp(action, action_names[a]) == 0) {
            job->action = (enum job_action)a;
            return 0;
        }
    }
    snprintf(errstr, errstr_size, "unknown action \"%.40s\" for a %s job",
             action, job_type_name(job->type));
    return -1;
}

static int job_parse_campaign(struct job *job, char *errstr, size_t errstr_size)
{
    if (job_get_action(job, ACTION_CREATE, ACTION_CANCEL, errstr,
                       errstr_size) != 0)
        return -1;
    if (job->action == ACTION_CANCEL)
        return job_need_str(&job->campaign_id, job->root, "campaign_id", errstr,
                            errstr_size);

    if (job_parse_message(job, errstr, errstr_size) != 0 ||
        job_get_names(&job->groups, &job->ngroups, job->root, "groups", errstr,
                      errstr_size) != 0 ||
        job_get_str(&job->name, NULL, job->root, "name", errstr, errstr_size) !=
            0)
        return -1;
    if (job->to == NULL && job->groups == NULL) {
        snprintf(errstr, errstr_size, "missing \"to\" or \"groups\"");
        return -1;
    }
    return 0;
}

static int job_parse_contacts(struct job *job, char *errstr, size_t errstr_size)
{
    json_t *root = job->root;

    if (job_get_action(job, ACTION_CONTACT_UPSERT, ACTION_BLOCKLIST_IMPORT,
                       errstr, errstr_size) != 0 ||
        job_get_str(&job->provider_id, NULL, root, "provider_id", errstr,
                    errstr_size) != 0 ||
        job_get_str(&job->from, NULL, root, "from", errstr, errstr_size) != 0 ||
        job_get_names(&job->contact_ids, &job->ncontact_ids, root,
                      "contact_ids", errstr, errstr_size) != 0 ||
        job_get_str(&job->contacts_list_url, NULL, root, "contacts_list_url",
                    errstr, errstr_size) != 0 ||
        job_get_contacts(job, errstr, errstr_size) != 0 ||
        job_get_numbers(&job->msisdns, &job->nmsisdns, root, "msisdns", errstr,
                        errstr_size) != 0 ||
        job_get_names(&job->groups, &job->ngroups, root, "groups", errstr,
                      errstr_size) != 0)
        return -1;

    json_t *reminders = json_object_get(root, "reminders");
    if (reminders != NULL && !json_is_null(reminders)) {
        if (!json_is_array(reminders) || json_array_size(reminders) == 0) {
            snprintf(errstr, errstr_size, "\"reminders\" %s",
                     json_is_array(reminders) ? "is empty" : "is not an array");
            return -1;
        }
        job->reminders = reminders;
    }

    json_t *page = json_object_get(root, "page");
    if (page != NULL && !json_is_null(page)) {
        if (!json_is_integer(page) || json_integer_value(page) < 1 ||
            json_integer_value(page) > 1000000) {
            snprintf(errstr, errstr_size,
                     "\"page\" is not an integer from 1 to 1000000");
            return -1;
        }
        job->page = (int)json_integer_value(page);
    }

    const char *need = NULL;
    bool members = job->contacts != NULL || job->msisdns != NULL;
    switch (job->action) {
    case ACTION_CONTACT_UPSERT:
        need = job->contacts || job->contacts_list_url
                   ? NULL
                   : "\"contacts\" or \"contacts_list_url\"";
        break;
    case ACTION_CONTACT_DELETE:
        need = members ? NULL : "\"contacts\" or \"msisdns\"";
        break;
    case ACTION_GROUP_CREATE:
    case ACTION_GROUP_DELETE:
        need = job->groups ? NULL : "\"groups\"";
        break;
    case ACTION_GROUP_ADD_MEMBER:
    case ACTION_GROUP_REMOVE_MEMBER:
        if (job->groups == NULL)
            need = "\"groups\"";
        else if (!members)
            need = "\"contacts\" or \"msisdns\"";
        break;
    case ACTION_BLOCKLIST_ADD:
    case ACTION_BLOCKLIST_REMOVE:
        need = job->msisdns ? NULL : "\"msisdns\"";
        break;
    case ACTION_REMINDER_ADD:
    case ACTION_REMINDER_EDIT:
        need = job->reminders ? NULL : "\"reminders\"";
        break;
    case ACTION_MESSAGE_STATUS:
    case ACTION_CAMPAIGN_STATUS:
        need = job->provider_id ? NULL : "\"provider_id\"";
        break;
    case ACTION_CHECK_BLOCKLIST:
        need = job->msisdns ? NULL : "\"msisdns\"";
        break;
    case ACTION_REGISTER_SENDER:
        need = job->from ? NULL : "\"from\" (the sender to register)";
        break;
    case ACTION_CONTACT_UPDATE:
        if (job->provider_id == NULL)
            need = "\"provider_id\" (the provider's contact id)";
        else if (job->ncontacts != 1)
            need = "one contact in \"contacts\"";
        break;
    case ACTION_LABEL_ADD:
        if (job->ngroups != 1)
            need = "one label in \"groups\"";
        else if (job->contact_ids == NULL)
            need = "\"contact_ids\"";
        break;
    default:
        break;
    }
    if (need != NULL) {
        snprintf(errstr, errstr_size, "missing %s for %s", need,
                 job_action_name(job->action));
        return -1;
    }
    if (job->contacts_list_url != NULL &&
        (strncmp(job->contacts_list_url, "https://", 8) != 0 ||
         strpbrk(job->contacts_list_url, " \t\r\n") != NULL)) {
        snprintf(errstr, errstr_size,
                 "\"contacts_list_url\" is not an https:// URL");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */

int job_parse(struct job **out, const char *buf, size_t len,
              enum job_type topic_type, char *id_out, size_t id_out_size,
              char *errstr, size_t errstr_size)
{
    struct job *job = NULL;
    json_error_t jerr;
    const char *type = NULL;
    int ret = -1;

    if (id_out_size > 0)
        id_out[0] = '\0';
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(errstr, errstr_size, "bad JSON at line %d column %d: %s",
                 jerr.line, jerr.column, jerr.text);
        goto out;
    }
    job = job_xcalloc(1, sizeof(*job));
    job->root = root;
    if (!json_is_object(root)) {
        snprintf(errstr, errstr_size, "a job must be a JSON object");
        goto out;
    }

    json_t *id = json_object_get(root, "id");
    if (json_is_string(id) && id_out_size > 0)
        snprintf(id_out, id_out_size, "%s", json_string_value(id));

    job->type = topic_type;
    if (job_get_str(&type, NULL, root, "type", errstr, errstr_size) != 0)
        goto out;
    if (type != NULL) {
        size_t t = 0;
        while (t < NELEMS(type_names) && strcmp(type, type_names[t]) != 0)
            t++;
        if (t == NELEMS(type_names)) {
            snprintf(errstr, errstr_size, "unknown type \"%.40s\"", type);
            goto out;
        }
        if (t != (size_t)topic_type) {
            snprintf(errstr, errstr_size,
                     "\"type\" \"%s\" contradicts topic type %s", type,
                     job_type_name(topic_type));
            goto out;
        }
    }
    if (job_need_str(&job->id, root, "id", errstr, errstr_size) != 0 ||
        job_need_str(&job->account, root, "account", errstr, errstr_size) != 0)
        goto out;
    if (strlen(job->id) > JOB_MAX_ID) {
        snprintf(errstr, errstr_size, "\"id\" is %zu bytes; at most %d",
                 strlen(job->id), JOB_MAX_ID);
        goto out;
    }

    switch (job->type) {
    case JOB_SEND:
        ret = job_parse_send(job, errstr, errstr_size);
        break;
    case JOB_CAMPAIGN:
        ret = job_parse_campaign(job, errstr, errstr_size);
        break;
    case JOB_CONTACTS:
        ret = job_parse_contacts(job, errstr, errstr_size);
        break;
    }
    if (ret != 0)
        goto out;

    *out = job;
    job = NULL;
    ret = 0;

out:
    job_free(job); /* frees root too, once the job holds it */
    return ret;
}

void job_free(struct job *job)
{
    if (job == NULL)
        return;
    free(job->to);
    free(job->params);
    free(job->groups);
    free(job->msisdns);
    free(job->contact_ids);
    for (size_t i = 0; i < job->ncontacts; i++)
        free(job->contacts[i].groups);
    free(job->contacts);
    json_decref(job->root);
    free(job);
}
