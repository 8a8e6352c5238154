/* codecs/codec.h - the translation between kurir jobs and provider HTTP APIs.
 *
 * A codec turns a parsed job (codecs/job.h) into the exact HTTP requests a
 * provider documents, and turns the provider's answers, callbacks and poll
 * replies back into normalised results. Codecs are pure: no I/O, no logging,
 * no clocks (the caller passes "now" where a codec needs it). The link graph
 * enforces it: the codecs library links jansson and libxml2 only.
 *
 * One file per provider exports exactly one `const struct codec codec_<name>`;
 * registry.c lists them. */
#ifndef CODECS_CODEC_H
#define CODECS_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "codecs/job.h"

/* ------------------------------------------------------------------------ */
/* States (CONTRACT §4) in the order in which they may follow one another: a
 * send may be retried before a provider takes it, so retrying comes before
 * submitted; final states are final. */

enum sms_state {
    STATE_ACCEPTED,
    STATE_SCHEDULED,
    STATE_RETRYING,
    STATE_SUBMITTED,
    STATE_UNKNOWN,
    STATE_DELIVERED,
    STATE_FAILED,
    STATE_REJECTED,
    STATE_CANCELLED,
};

/* Returns the CONTRACT name of a state ("submitted", ...). */
const char *sms_state_name(enum sms_state state);

/* Returns true for delivered, failed, rejected and cancelled. */
bool sms_state_is_final(enum sms_state state);

/* ------------------------------------------------------------------------ */
/* Accounts: what a codec knows of one provider account. The worker fills it
 * from the accounts file (CONTRACT §3) with credentials already resolved. */

#define ACCOUNT_MAX_CREDS 4

struct account_cred {
    char *name;  /* "api_key", "user", "hash", "account", "password" */
    char *value; /* the resolved secret; never logged or printed */
};

struct account {
    char *name;                /* the key in the accounts file */
    const struct codec *codec; /* from "provider" */
    char *base_url;            /* no trailing slash */
    struct account_cred creds[ACCOUNT_MAX_CREDS];
    size_t ncreds;
    double per_second;    /* token bucket rate, segments per second */
    double burst;         /* token bucket size, segments */
    char *default_sender; /* used when a job has no "from"; may be NULL */
    char *webhook_token;  /* the ?token= on our callback URLs; may be NULL */
    char *callback_url;   /* KURIR_PUBLIC_URL/callbacks/<name>, or NULL
                             when no public URL is configured */
    struct account_options {
        /* "options": {"legacy_unconfirmed_soap": true}: lets the iP.1
         * legacy codec send the SOAP operations whose wire names no
         * working client confirms (docs/providers-choices.md). */
        bool legacy_unconfirmed_soap;
        /* "poll_statuses": the account gets no callback URL and kurir
         * reads its statuses instead (iP.1 REST message reads). */
        bool poll_statuses;
        /* "schedule_at_provider": a campaign create due later is handed
         * to the provider at once with its time (Jojka "scheduled", iP.1
         * deliveryWindows, ...), so a cancel stops it there. */
        bool schedule_at_provider;
    } options;
};

/* Returns the value of credential `name`, or NULL when the account has none.
 * The pointer is borrowed from the account. */
const char *account_cred(const struct account *acct, const char *name);

/* Returns the URL a provider should call back for `kind` ("status" or
 * "inbound"): callback_url + "/" + kind, with "?token=" and the
 * percent-encoded webhook_token when the account has one. malloc'd, the
 * caller frees it; NULL when the account has no callback_url. */
char *account_callback_url(const struct account *acct, const char *kind);

/* ------------------------------------------------------------------------ */
/* Requests. */

#define HTTP_MAX_HEADERS 8

struct http_header {
    char *name;
    char *value;
};

/* One HTTP request, owned by whoever holds it; http_request_cleanup() frees
 * the strings. `body` may hold bytes that are not UTF-8 (InTime's
 * ISO-8859-1), so its length is explicit. */
struct http_request {
    const char *method; /* static: "GET", "POST", ... */
    char *url;          /* absolute, query included */
    struct http_header headers[HTTP_MAX_HEADERS];
    size_t nheaders;
    char *body; /* NULL for no body */
    size_t body_len;
};

/* What a call is for; decode() switches on it. Codecs may use any value. */
enum codec_op {
    OP_SEND, /* a send to job->to[first .. first+count) */
    OP_CAMPAIGN_CREATE,
    OP_CAMPAIGN_CANCEL,
    OP_CANCEL,       /* cancel one scheduled provider message/batch */
    OP_CONTACTS,     /* any contact-sync action */
    OP_POLL_STATUS,  /* poll the status of one provider message */
    OP_POLL_REPLIES, /* poll incoming messages */
    OP_READ,         /* any other read (lists, balances) */
};

/* One HTTP exchange a job needs. A send or campaign slice of at most
 * codec_per_call() recipients is exactly one call; a contact-sync action
 * may need several steps. They are made in
 * order; a failed call stops the rest. */
struct codec_call {
    struct http_request req;
    enum codec_op op;
    int step;     /* codec-private: which step of an action */
    size_t first; /* OP_SEND, OP_CAMPAIGN_CREATE: the recipients */
    size_t count; /* carried, as indexes into job->to */
};

#define CODEC_MAX_CALLS 64

struct codec_calls {
    struct codec_call calls[CODEC_MAX_CALLS];
    size_t ncalls;
};

/* Appends a call with an empty request and returns it, or NULL when the list
 * is full. */
struct codec_call *codec_calls_add(struct codec_calls *calls, enum codec_op op);

/* Frees every request in the list and empties it. */
void codec_calls_cleanup(struct codec_calls *calls);

/* Frees the calls after the first `n` and keeps those: how an encode() that
 * fails part-way leaves the list as it found it. */
void codec_calls_truncate(struct codec_calls *calls, size_t n);

/* Checks that a contact-sync job needing `ncalls` calls fits one job
 * (CODEC_MAX_CALLS). Returns 0, or -1 with errstr naming `provider`. */
int codec_check_ncalls(const char *provider, const struct job *job,
                       size_t ncalls, char *errstr, size_t errstr_size);

/* Frees the strings of a request and zeroes it. */
void http_request_cleanup(struct http_request *req);

/* Adds a header to a request (copies both strings). Asserts there is room. */
void http_request_add_header(struct http_request *req, const char *name,
                             const char *value);

/* ------------------------------------------------------------------------ */
/* Results. */

/* A provider's answer: the worker fills it from curl, tests from files. */
struct http_response {
    long status;              /* HTTP status; 0 when there was no answer */
    const char *content_type; /* may be NULL */
    const char *retry_after;  /* the Retry-After header, or NULL */
    int64_t now_ms;           /* wall clock when the answer came (Unix ms), so a
                                 Retry-After HTTP date becomes a delay; 0 = unknown */
    const char *body;         /* not NUL-terminated in general */
    size_t body_len;
};

/* How a call went. Outcomes are values, not errors (STYLE §4.3). */
enum call_outcome {
    CALL_ACCEPTED, /* the provider took it */
    CALL_RETRY,    /* try again later: 5xx, 429, timeouts, "try later" */
    CALL_REJECTED, /* the request is wrong and will stay wrong */
    CALL_FAILED,   /* the provider refused for good (funds, delivery) */
    CALL_AUTH,     /* credentials refused: an operator must act */
};

#define CODEC_ID_MAX     80
#define CODEC_STATUS_MAX 48
#define CODEC_CODE_MAX   48
#define CODEC_TEXT_MAX   200

/* One recipient's result inside a call. */
struct recipient_result {
    enum call_outcome outcome;
    char provider_id[CODEC_ID_MAX];         /* the provider's message id */
    char provider_status[CODEC_STATUS_MAX]; /* as the provider said it */
    char error_code[CODEC_CODE_MAX];        /* set unless accepted */
    char error_message[CODEC_TEXT_MAX];
};

/* The normalised result of one call. `recipients` has one entry per
 * recipient the call carried (call->count) for sends, none otherwise. A
 * provider id that covers the whole call (a batch or campaign) is in
 * `provider_id`; each recipient's own id, where the provider gives one, in
 * its entry. `data` holds what a read returned (lists, statuses), owned. */
struct call_result {
    enum call_outcome outcome;
    int retry_after_ms; /* a hint for CALL_RETRY; 0: none */
    char provider_id[CODEC_ID_MAX];
    char provider_status[CODEC_STATUS_MAX];
    char error_code[CODEC_CODE_MAX];
    char error_message[CODEC_TEXT_MAX];
    struct recipient_result *recipients; /* owned; NULL when count is 0 */
    size_t nrecipients;
    json_t *data; /* owned; NULL when none */
};

/* Frees what a call_result owns and zeroes it. */
void call_result_cleanup(struct call_result *res);

/* Sets a call_result's error fields. */
void call_result_set_error(struct call_result *res, enum call_outcome outcome,
                           const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Classifies what the HTTP status of an answer decides on its own: no answer
 * (status 0), 429 and 5xx are CALL_RETRY (a Retry-After in seconds becomes
 * retry_after_ms), 401 and 403 CALL_AUTH. Returns true when it set res's
 * outcome and error fields, false when the body must decide. */
bool call_result_from_status(struct call_result *res,
                             const struct http_response *resp);

/* Parses an HTTP date (RFC 7231 §7.1.1.1: IMF-fixdate, and the obsolete
 * RFC 850 and asctime forms) into Unix milliseconds. Returns 0, or -1 when
 * `s` is none of them. */
int http_date_parse(int64_t *out_ms, const char *s);

/* Gives res `n` recipient entries, each with res's outcome and error fields
 * (the whole call went one way). Replaces any entries res had. */
void call_result_spread(struct call_result *res, size_t n);

/* ------------------------------------------------------------------------ */
/* Callbacks (provider -> us) and polled events. */

enum callback_kind {
    CALLBACK_STATUS,  /* /callbacks/<account>/status */
    CALLBACK_INBOUND, /* /callbacks/<account>/inbound */
};

/* An HTTP request a provider made to us. */
struct http_inbound {
    const char *method;
    const char *query;        /* raw, without '?'; may be NULL */
    const char *content_type; /* may be NULL */
    const char *body;
    size_t body_len;
};

/* A change of one message's state, from a callback or a poll. */
struct status_update {
    char provider_id[CODEC_ID_MAX];
    char provider_status[CODEC_STATUS_MAX];
    enum sms_state state;
    char recipient[24];         /* where the provider says; else "" */
    char transid[CODEC_ID_MAX]; /* our own id echoed back; else "" */
    char error_code[CODEC_CODE_MAX];
    char error_message[CODEC_TEXT_MAX];
};

/* An incoming message (CONTRACT §4 sms.replies). */
struct inbound_sms {
    char provider_id[CODEC_ID_MAX];
    char from[24];
    char to[24];
    char received_at[40]; /* RFC 3339 UTC, or "" when unknown */
    char *text;           /* owned, UTF-8 */
};

#define CODEC_MAX_EVENTS \
    1000 /* a Jojka campaign's recipients, all in one answer */

/* What a callback or a poll carried, and what to answer the provider. */
struct callback_result {
    struct status_update *updates; /* owned */
    size_t nupdates;
    struct inbound_sms *replies; /* owned */
    size_t nreplies;
    int answer_status;               /* HTTP status to answer with */
    char answer_body[CODEC_ID_MAX];  /* body to answer with */
    const char *answer_content_type; /* static */
};

/* Frees what a callback_result owns and zeroes it. */
void callback_result_cleanup(struct callback_result *res);

/* ------------------------------------------------------------------------ */
/* The codec. */

struct codec {
    const char *name;               /* the accounts file's "provider" */
    const char *const *creds;       /* required credential names, NULL-ended */
    size_t send_max_recipients;     /* recipients one send call may carry */
    size_t campaign_max_recipients; /* the same for a campaign create */
    bool has_callbacks;             /* provider pushes status or inbound */
    bool polls;                     /* statuses and replies must be polled */
    const struct segment_rule *segments; /* how the provider bills a text;
                                            NULL: segment_rule_gsm */

    /* Recipients one call may carry for this job, when that differs from
     * the send/campaign maximum above (flash or MMS one by one, ...);
     * NULL, or a return of 0, for the maximum. codec_per_call() is what
     * callers use. */
    size_t (*per_call)(const struct account *acct, const struct job *job);

    /* Checks a job against the provider's rules (sender id, text length and
     * alphabet, supported actions). Returns 0 when it can be sent; on error
     * returns -1 with errstr set to the reason. */
    int (*check)(const struct account *acct, const struct job *job,
                 char *errstr, size_t errstr_size);

    /* Appends to `out` the calls that carry job->to[first .. first+count)
     * (all of the job when it has no recipients). `now` is Unix seconds, for
     * providers whose requests carry times. Returns 0, or -1 with errstr set
     * and nothing appended. */
    int (*encode)(struct codec_calls *out, const struct account *acct,
                  const struct job *job, size_t first, size_t count,
                  int64_t now, char *errstr, size_t errstr_size);

    /* Classifies the answer to one call. Returns 0 with *out filled (the
     * outcome may be any of enum call_outcome); -1 with errstr set only when
     * the answer cannot be read at all, which the caller treats as
     * CALL_RETRY with state unknown. */
    int (*decode)(struct call_result *out, const struct account *acct,
                  const struct job *job, const struct codec_call *call,
                  const struct http_response *resp, char *errstr,
                  size_t errstr_size);

    /* Reads a callback the provider made. Returns 0 with *out filled,
     * answer included; -1 with errstr set when the request is not one the
     * provider sends (out->answer_* then hold the error answer). NULL when
     * the provider has no callbacks. */
    int (*callback)(struct callback_result *out, const struct account *acct,
                    enum callback_kind kind, const struct http_inbound *in,
                    char *errstr, size_t errstr_size);

    /* Builds a poll request: the status of `provider_id` (OP_POLL_STATUS)
     * or replies since `since` (Unix seconds, OP_POLL_REPLIES). NULL when
     * the provider pushes instead. */
    int (*encode_poll)(struct codec_calls *out, const struct account *acct,
                       enum codec_op op, const char *provider_id, int64_t since,
                       char *errstr, size_t errstr_size);

    /* Reads a poll answer into status updates or replies. */
    int (*decode_poll)(struct callback_result *out, const struct account *acct,
                       const struct codec_call *call,
                       const struct http_response *resp, char *errstr,
                       size_t errstr_size);
};

/* Returns the SMS parts provider `c` bills for the UTF-8 text (its
 * segment rule, text.h): what the engine charges tokens for and writes as
 * "segments", per rendered text for a personal job. 0 only for text
 * job_parse() would refuse. */
unsigned codec_segments(const struct codec *c, const char *utf8, size_t len);

/* Returns the most recipients one call of `c` may carry for `job` on
 * account `acct` (NULL: an account with no options): the
 * campaign or send maximum, less where the codec says (per_call), and 1
 * for a personal job (job_is_personal()), whose recipients each get their
 * own text. The engine cuts a job's recipients into slices of at most this
 * many; encode() makes exactly one call for each such slice and refuses a
 * bigger one. 0 for a contact-sync job, which is not cut. */
size_t codec_per_call(const struct codec *c, const struct account *acct,
                      const struct job *job);

/* Checks that job->to[first .. first+count) is a slice encode() may take
 * in one call: inside the job, not empty, at most codec_per_call().
 * Returns 0, or -1 with errstr set. */
int codec_check_slice(const struct codec *c, const struct account *acct,
                      const struct job *job, size_t first, size_t count,
                      char *errstr, size_t errstr_size);

/* A codec's encode() of one slice, as struct codec has it. */
typedef int codec_encode_fn(struct codec_calls *out, const struct account *acct,
                            const struct job *job, size_t first, size_t count,
                            int64_t now, char *errstr, size_t errstr_size);

/* What every codec's encode() does around its own `one`: for a send or
 * campaign create, checks the slice (codec_check_slice), hands `one` a
 * view of the job whose text is recipient `first`'s rendered text when the
 * job is personal, and checks `one` appended exactly one call. Contact-sync
 * jobs and campaign cancels go to `one` as they are. Returns what `one`
 * returned, or -1 with errstr set and nothing appended. */
int codec_encode_slice(const struct codec *c, codec_encode_fn *one,
                       struct codec_calls *out, const struct account *acct,
                       const struct job *job, size_t first, size_t count,
                       int64_t now, char *errstr, size_t errstr_size);

/* iP.1 REST's "reference" holds 40 characters; delivery reports echo it
 * (status_update.transid). A job id that fits goes as it is. A longer one
 * goes as its first CODEC_IP1_REFERENCE_KEEP bytes (cut on a character
 * boundary), "~" and the 16 hex digits of util_hash64(job id): stable, so
 * a retried send carries the same reference. Writes the reference to out
 * and returns true when it is not the job id itself: the engine must then
 * store reference -> job id (per account, as long as reports may come)
 * and read a report's transid through that mapping. */
#define CODEC_IP1_REFERENCE_MAX  40
#define CODEC_IP1_REFERENCE_KEEP 23
bool codec_ip1_reference(char out[CODEC_IP1_REFERENCE_MAX + 1],
                         const char *job_id);

/* Returns the codec for a provider name, or NULL. */
const struct codec *codec_find(const char *name);

/* The codecs, for tests and the registry. */
extern const struct codec codec_jojka;
extern const struct codec codec_intime;
extern const struct codec codec_ip1;
extern const struct codec codec_ip1_legacy;

#endif /* CODECS_CODEC_H */
