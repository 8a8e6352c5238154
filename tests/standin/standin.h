/* tests/standin/standin.h - the provider stand-in's internals.
 *
 * kurir-standin is one libmicrohttpd server that plays InTime, iP.1 legacy,
 * iP.1 REST v2 and Jojka on one port, each under its own path prefix. It
 * validates requests the way the providers' documents describe, keeps the
 * state reads must agree with, calls back as the providers do, misbehaves on
 * demand and records every request. It shares no code with the codecs
 * library on purpose: a stand-in that shared the codec's logic would hide its
 * bugs.
 *
 * Threads: libmicrohttpd's polling thread runs every request handler; the
 * events thread (events.c) runs deliveries, callbacks and delayed answers.
 * Everything in struct standin except the record and the event queue is
 * guarded by standin.lock; the handlers take it around all their work. */
#ifndef TESTS_STANDIN_STANDIN_H
#define TESTS_STANDIN_STANDIN_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libxml/tree.h>

struct MHD_Connection;
struct events;

enum provider { PROV_INTIME, PROV_IP1, PROV_LEGACY, PROV_JOJKA, PROV_COUNT };

/* Returns the accounts-file name of a provider ("intime", "ip1",
 * "ip1-legacy", "jojka"). */
const char *provider_name(enum provider p);

/* Returns the provider called `name`, or -1. */
int provider_parse(const char *name);

/* ------------------------------------------------------------------------
 * Small utilities (util.c)
 * ---------------------------------------------------------------------- */

/* A growable byte buffer, NUL-terminated after any append. Out of memory
 * aborts. */
struct sbuf {
    char *data;
    size_t len;
    size_t cap;
};

void sbuf_append(struct sbuf *b, const void *data, size_t len);
void sbuf_puts(struct sbuf *b, const char *s);
void sbuf_printf(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends s with & < > " escaped for XML. */
void sbuf_xml(struct sbuf *b, const char *s);
/* Appends s percent-encoded (unreserved bytes kept). */
void sbuf_urlenc(struct sbuf *b, const char *s);
/* Returns the bytes (malloc'd, never NULL) and empties the buffer. */
char *sbuf_detach(struct sbuf *b, size_t *len_out);
void sbuf_free(struct sbuf *b);

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
/* Copies n bytes and a NUL. */
char *xstrndup(const char *s, size_t n);

/* A growable array of pointers. */
struct ptrvec {
    void **items;
    size_t len;
    size_t cap;
};

void ptrvec_push(struct ptrvec *v, void *p);
/* Frees the array (not the items). */
void ptrvec_free(struct ptrvec *v);

/* A string-keyed hash table of pointers. A NULL value reads as absent, so
 * table_put(t, key, NULL) deletes. Keys are copied. */
struct table {
    char **keys;
    void **vals;
    size_t cap;
    size_t len;
};

void *table_get(const struct table *t, const char *key);
void table_put(struct table *t, const char *key, void *val);
void table_free(struct table *t);

/* One name=value pair, both decoded and NUL-terminated. */
struct kv {
    char *name;
    char *value;
    size_t value_len;
};

struct kvlist {
    struct kv *items;
    size_t len;
    size_t cap;
};

/* Appends a copy of name and value (value_len bytes). */
void kvlist_add(struct kvlist *l, const char *name, const char *value,
                size_t value_len);
/* Parses an application/x-www-form-urlencoded string or URL query ('+' is
 * a space, %XX a byte; a malformed escape is kept as it stands). */
void kvlist_parse_form(struct kvlist *l, const char *s, size_t len);
/* Returns the first value named `name` (compared without case when nocase),
 * or NULL. */
const char *kvlist_get(const struct kvlist *l, const char *name, bool nocase);
void kvlist_free(struct kvlist *l);

/* Percent-decodes s into a malloc'd string; '+' becomes a space when
 * plus_is_space. */
char *url_decode(const char *s, size_t len, bool plus_is_space,
                 size_t *len_out);

/* Returns true when the len bytes are valid UTF-8 without NUL bytes. */
bool utf8_valid(const char *s, size_t len);

/* Decodes one UTF-8 code point at *p (valid input assumed) and advances. */
uint32_t utf8_next(const char **p);

/* How a text fares on the air interface. */
struct text_count {
    bool gsm;          /* every character is in GSM 03.38 (basic or ext.) */
    size_t chars;      /* code points */
    size_t septets;    /* GSM-7 septets, extension characters counted 2 */
    size_t utf16;      /* UTF-16 code units */
    unsigned segments; /* with 160/153 (GSM) or 70/67 (UCS-2) */
};

/* Counts valid UTF-8 text. When force_ucs2 the segments are UCS-2 ones even
 * for GSM text. */
void text_count(struct text_count *out, const char *utf8, size_t len,
                bool force_ucs2);

/* Returns true when s is an MSISDN: 8 to 15 digits, not starting with 0. */
bool is_msisdn(const char *s);

/* Returns true when every byte of s is in `allowed`. */
bool only_chars(const char *s, const char *allowed);

/* Returns true when s is an absolute http:// or https:// URL with a host. */
bool is_http_url(const char *s);

/* Trims ASCII white space at both ends, in place; returns s. */
char *trim(char *s);

/* Wall-clock milliseconds since the Unix epoch. */
int64_t now_ms(void);
/* Monotonic milliseconds. */
int64_t mono_ms(void);

/* Converts a civil date and time in UTC to seconds since the epoch. */
int64_t civil_to_unix(int y, int mo, int d, int h, int mi, int s);

/* Parses "YYYY-MM-DD?hh:mm:ss" where ? is `sep` (exactly that shape) into
 * its fields. Returns 0, or -1 when the text is not that shape or a field is
 * out of range. */
int parse_datetime(int f[6], const char *s, char sep);

/* Parses ISO 8601 "YYYY-MM-DDThh:mm:ss[.fff][Z|+hh:mm|-hh:mm]" (no zone
 * means UTC) into epoch milliseconds. Returns 0 or -1. */
int parse_iso8601(int64_t *out_ms, const char *s);

/* Returns the UTC offset in seconds of Swedish local time (CET/CEST) at the
 * given local civil time. */
int stockholm_offset(const int f[6]);

/* Formats epoch ms in UTC with strftime format fmt; when millis, appends
 * ".mmm" and, after it, the text `suffix` (may be ""). */
void format_utc(char *out, size_t out_size, int64_t ms, const char *fmt,
                bool millis, const char *suffix);

/* A 24-hex-digit id, unique within the process (ObjectId-like). */
void hex_id(char out[25]);

/* A uniformly distributed double in [0, 1) (thread-safe). */
double rng_unit(void);

/* Seeds rng_unit. */
void rng_seed(uint64_t seed);

/* Parses a whole base-10 integer. Returns 0 or -1. */
int parse_long(long *out, const char *s);

/* ------------------------------------------------------------------------
 * Accounts (accounts.c)
 * ---------------------------------------------------------------------- */

/* A rate limit on one account: a token bucket. */
enum limit_unit {
    LIMIT_REQUESTS, /* every request costs 1 */
    LIMIT_SEGMENTS  /* a send costs recipients x segments, the rest 0 */
};

struct limit {
    bool on;
    double per_second;
    double burst;
    double tokens;
    int64_t last_ms; /* monotonic time of the last refill */
    enum limit_unit unit;
    bool provider_answer; /* answer the provider's own throttle code */
};

struct account {
    char *name;
    enum provider provider;
    char *key1;            /* intime user, legacy account, api_key */
    char *key2;            /* intime hash, legacy password, or NULL */
    char *webhook_token;   /* may be NULL */
    char *inbound_url;     /* standin.inbound_url, may be NULL */
    char *number;          /* standin.number: our virtual number */
    char *owner;           /* "ip1-NNNNN", for iP.1 documents */
    struct ptrvec senders; /* standin.senders (char *); empty = any */
    bool senders_set;      /* standin.senders was given */
    bool unconfirmed_soap; /* options.legacy_unconfirmed_soap: play the
                              legacy SOAP operations beyond sms/balans */
    struct limit limit;
    struct acct_state *st; /* provider state, see state.c */
};

struct accounts {
    struct account *items;
    size_t len;
};

/* Loads the accounts file (CONTRACT §3 plus the optional "standin" object).
 * Returns 0, or -1 with errstr set. */
int accounts_load(struct accounts *out, const char *path, char *errstr,
                  size_t errstr_size);

/* Returns the account of provider p whose credentials are k1 (and k2 when
 * the provider has two), or NULL. */
struct account *accounts_by_cred(const struct accounts *a, enum provider p,
                                 const char *k1, const char *k2);

/* Returns the account called name, or NULL. */
struct account *accounts_by_name(const struct accounts *a, const char *name);

void accounts_free(struct accounts *a);

/* ------------------------------------------------------------------------
 * Messages and per-account state (state.c)
 * ---------------------------------------------------------------------- */

enum msg_state {
    MS_SCHEDULED,
    MS_PENDING, /* handed on, no final report yet */
    MS_DELIVERED,
    MS_FAILED,
    MS_UNKNOWN, /* final, outcome unknown (InTime 21) */
    MS_CANCELLED,
    MS_REJECTED /* refused at submission (iP.1 per-number rules) */
};

const char *msg_state_name(enum msg_state s);

#define STATUS_HIST_MAX 8

struct msg {
    char id[32];
    enum provider provider;
    struct account *acct;
    char recipient[32];
    char *sender;
    char *text;
    char *transid;      /* InTime */
    char *callback_url; /* InTime statusurl, iP.1 deliveryReportUrl */
    char *reference;    /* iP.1 */
    char group_id[32];  /* iP.1 batch, Jojka campaign */
    int64_t created_ms;
    int64_t due_ms; /* when it leaves (scheduled sends) */
    int64_t modified_ms;
    enum msg_state state;
    int code;        /* native status: InTime, iP.1, legacy */
    char status[16]; /* native status: Jojka */
    unsigned segments;
    bool flash;
    bool ucs2;
    int priority;
    int64_t hist_at[STATUS_HIST_MAX]; /* iP.1 status history */
    int hist_code[STATUS_HIST_MAX];
    size_t n_hist;
};

struct contact {
    char id[32];
    char msisdn[32];
    char *first;
    char *last;
    char *email;
    char *extra;
    int type;
    struct ptrvec groups; /* char * group names or ids */
    json_t *doc;          /* iP.1 contact document */
    bool deleted;
};

struct group {
    char id[32];
    char *name;
    bool deleted;
};

struct listed { /* a block-list entry */
    char id[32];
    char msisdn[32];
    int64_t created_ms;
    bool deleted;
};

struct reply {
    int64_t at_ms;
    char from[32];
    char *text;
};

struct acct_state {
    struct ptrvec contacts;  /* struct contact * */
    struct ptrvec groups;    /* struct group * */
    struct ptrvec blocked;   /* struct listed * */
    struct ptrvec reminders; /* json_t * InTime reminder objects */
    struct ptrvec replies;   /* struct reply * (Jojka) */
    struct ptrvec batches;   /* struct batch * or struct campaign * */
};

/* An iP.1 batch or a Jojka campaign: a group of messages. */
struct batch {
    char id[32];
    struct account *acct;
    json_t *doc;        /* iP.1 batch document (without live fields) */
    char *name;         /* Jojka campaign name */
    struct ptrvec msgs; /* struct msg * */
    int64_t created_ms;
    bool cancelled;
};

/* Every message, by provider and id. */
struct store {
    struct table by_id[PROV_COUNT];
    struct ptrvec all;    /* struct msg *, creation order */
    struct table batches; /* id -> struct batch * */
    long next_intime;
    long next_legacy;
    long next_campaign;
    long next_small; /* contacts, groups, block list, reminders */
};

void store_init(struct store *s);
void store_free(struct store *s);

/* Creates a message with a new id and the given fields (strings copied,
 * NULLs allowed), registers it and returns it (borrowed). */
struct msg *store_add(struct store *s, enum provider p, struct account *acct,
                      const char *recipient, const char *sender,
                      const char *text);

/* Returns the message of provider p (or any provider when p < 0) with that
 * id, or NULL. */
struct msg *store_find(struct store *s, int p, const char *id);

/* Registers a batch (ownership moves to the store). */
void store_add_batch(struct store *s, struct batch *b);

/* Returns the per-account state, created on first use. */
struct acct_state *acct_state(struct account *a);

void acct_state_free(struct acct_state *st);

/* Returns the account's live (not deleted) contact with that msisdn, or
 * NULL. */
struct contact *state_contact_by_msisdn(struct acct_state *st,
                                        const char *msisdn);
/* Returns the live group with that name (or id when by_id), or NULL. */
struct group *state_group(struct acct_state *st, const char *key, bool by_id);
/* Returns the live block-list entry for msisdn, or NULL. */
struct listed *state_blocked(struct acct_state *st, const char *msisdn);

/* Returns true when contact c is in the group called or numbered `g`. */
bool contact_in_group(const struct contact *c, const char *g);

/* Frees a contact. */
void contact_free(struct contact *c);

/* ------------------------------------------------------------------------
 * Requests, responses and the server (server.c)
 * ---------------------------------------------------------------------- */

struct response {
    unsigned status;
    char *body; /* malloc'd */
    size_t body_len;
    char content_type[96];
    struct kvlist headers; /* extra headers */
};

/* Sets the response: status, content type and a copy of len bytes. */
void resp_set(struct response *r, unsigned status, const char *ctype,
              const char *body, size_t len);
/* Sets a text response formatted from fmt. */
void resp_printf(struct response *r, unsigned status, const char *ctype,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Sets a JSON response from root (reference stolen). */
void resp_json(struct response *r, unsigned status, json_t *root);
/* Adds a response header. */
void resp_header(struct response *r, const char *name, const char *value);

enum req_phase {
    RP_READING,
    RP_WAITING, /* suspended until the events thread resumes it */
    RP_ANSWER,
    RP_DROP, /* close without an answer */
    RP_RESET /* close with a TCP reset */
};

struct request {
    struct MHD_Connection *conn;
    char *uri; /* raw request-target */
    char *method;
    char *path;            /* decoded path */
    char *query;           /* raw query (after '?'), "" when none */
    struct kvlist qargs;   /* decoded query */
    struct kvlist headers; /* as received */
    struct sbuf body;
    bool too_big;
    int64_t at_ms;        /* wall clock when the request arrived */
    int provider;         /* -1 for control and unknown paths */
    const char *sub;      /* path below the provider's prefix */
    struct account *acct; /* when its credentials matched */
    struct kvlist form;   /* parsed form body (Jojka) */
    bool form_parsed;
    xmlDoc *doc;       /* parsed XML body (legacy SOAP) */
    const char *fault; /* fault applied, or NULL */
    enum req_phase phase;
    enum req_phase after; /* the phase once a held request resumes */
    int delay_ms;         /* how long to hold it */
    bool control;
    struct response resp;
};

/* Returns the named request header (case-insensitive) or NULL. */
const char *req_header(const struct request *req, const char *name);

/* Returns the media type of the Content-Type header lower-cased without
 * parameters into out ("" when absent). */
void req_media_type(const struct request *req, char *out, size_t out_size);

/* Parses the form body (url-encoded or multipart) once into req->form.
 * Returns 0, or -1 when the body is not a form. */
int req_form(struct request *req);

/* Rate limiting: call after authenticating. req_gate_request charges one
 * request (requests unit), req_gate_send charges `segments` (segments
 * unit). Each returns true when the request is over the account's limit:
 * the violation is recorded and req->resp holds the throttle answer; the
 * caller must then answer without acting. */
bool req_gate_request(struct request *req);
bool req_gate_send(struct request *req, unsigned segments);

/* The tunable timings (settings endpoint and command line). */
struct settings {
    int delivery_ms; /* from accepted (or due) to final status */
    int retry_ms;    /* between callback attempts */
    int max_tries;   /* callback attempts */
    int callback_timeout_ms;
    int hold_ms;     /* how long a "timeout" fault holds */
    size_t max_body; /* request body limit */
};

/* One fault setting (global or per provider). Shares are in [0, 1]. */
struct fault {
    bool on;
    int latency_min_ms; /* uniform in [min, max]; fixed when equal */
    int latency_max_ms;
    double share_5xx;
    double share_timeout;
    double share_reset;
    double share_429;
    double share_provider;
    int retry_after;     /* seconds, for 429 */
    unsigned status_5xx; /* the 5xx status to answer (500) */
    int hold_ms;         /* timeouts: 0 = settings.hold_ms */
    bool process;        /* act on timed-out / reset requests anyway */
    long remaining;      /* faults left to inject; -1 = unlimited */
    char *provider_body; /* overrides the provider error answer */
    unsigned provider_status;
    char path[64]; /* only requests whose path starts so; "" = all */
};

struct violation {
    int64_t at_ms;
    char account[64];
    enum provider provider;
    char path[96];
    double cost;
    double tokens;
};

struct stats {
    long requests[PROV_COUNT];
    long answered_2xx[PROV_COUNT];
    long answered_other[PROV_COUNT];
    long provider_errors[PROV_COUNT]; /* documented error answers */
    long faults[PROV_COUNT];
    long throttled[PROV_COUNT];
    long unknown_paths;
    long control;
    long callbacks_sent;
    long callbacks_ok;
    long callbacks_failed;
    long callbacks_given_up;
};

/* The record: a ring of the last N requests. */
struct record_entry {
    long seq;
    int64_t at_ms;
    int provider;
    char *method;
    char *uri;
    char *path;
    char *query;
    struct kvlist headers;
    char *body;
    size_t body_len;
    char account[64];
    unsigned status;
    char fault[16];
};

struct record {
    pthread_mutex_t lock;
    struct record_entry *ring;
    size_t size;
    long next_seq;
};

struct standin {
    pthread_mutex_t lock; /* everything below but record/events */
    struct accounts accts;
    struct settings settings;
    struct fault faults[PROV_COUNT + 1]; /* [PROV_COUNT] = global */
    char *inbound_default[PROV_COUNT];   /* --callback-inbound-<p> */
    struct store store;
    struct ptrvec violations; /* struct violation * */
    struct stats stats;
    struct record record;
    struct events *events;
    int64_t started_ms;
    bool stopping; /* no more held answers */
};

/* The one stand-in of the process. */
extern struct standin *standin;

/* Records a finished request (copies what it needs). */
void record_add(struct record *rec, const struct request *req);
/* Returns the record as a JSON array (filters: provider, account, since
 * sequence number, path prefix). */
json_t *record_json(struct record *rec, int provider, const char *account,
                    long since, const char *path_prefix);
void record_clear(struct record *rec);
int record_init(struct record *rec, size_t size);
void record_free(struct record *rec);

/* Starts the HTTP server on host:port (port 0 picks one). Returns 0 and
 * the bound port, or -1 with errstr set. */
int server_start(const char *host, int port, int threads, int *bound_port,
                 char *errstr, size_t errstr_size);
/* Resumes held connections and stops the server. */
void server_stop(void);
/* Resumes a suspended request (any thread). */
void server_resume(struct request *req);

/* ------------------------------------------------------------------------
 * Providers and the control endpoint
 * ---------------------------------------------------------------------- */

/* Each fills req->resp for a request under its prefix. Called with
 * standin->lock held. */
void intime_handle(struct request *req);
void legacy_handle(struct request *req);
void ip1_handle(struct request *req);
void jojka_handle(struct request *req);

/* Finds the account from the credentials a provider request carries
 * (cheap; no validation). Sets req->acct or leaves it NULL. */
void intime_identify(struct request *req);
void legacy_identify(struct request *req);
void ip1_identify(struct request *req);
void jojka_identify(struct request *req);

/* The provider's own answer for a generic failure (fault "provider") and
 * for throttling (rate-limit answer "provider"). */
void intime_error_answer(struct request *req, bool throttle);
void legacy_error_answer(struct request *req, bool throttle);
void ip1_error_answer(struct request *req, bool throttle);
void jojka_error_answer(struct request *req, bool throttle);

/* Sets the native status of a message from its state and outcome (used by
 * deliveries and forced statuses). Each provider's table. */
void intime_set_final(struct msg *m, enum msg_state s);
void ip1_set_final(struct msg *m, enum msg_state s);
void legacy_set_final(struct msg *m, enum msg_state s);
void jojka_set_final(struct msg *m, enum msg_state s);

/* Parses a provider-native status value into a state and native code.
 * Returns 0 or -1 when the value is not one of the provider's. */
int native_status(enum provider p, const json_t *v, enum msg_state *state,
                  int *code, char status[16]);

/* Builds the status callback a message's new state calls for (InTime
 * statusurl, iP.1 deliveryReportUrl), if any, and queues it. Lock held. */
void provider_status_callback(struct msg *m);

/* Sends an injected incoming SMS the provider's way. Returns 0, or -1 with
 * errstr set. Lock held. */
int provider_inbound(struct account *a, const char *from, const char *to,
                     const char *text, char *errstr, size_t errstr_size);

/* Handles /_standin/... Lock held. */
void control_handle(struct request *req);

/* ------------------------------------------------------------------------
 * Events: deliveries, callbacks, delayed answers (events.c)
 * ---------------------------------------------------------------------- */

/* What the receiver of a callback must answer for it to count as taken. */
enum cb_expect {
    CB_EXPECT_200,  /* iP.1: 200 */
    CB_EXPECT_BODY, /* InTime: 200 and the message id as body */
    CB_EXPECT_OK    /* iP.1 legacy: 200 and the bare "OK" */
};

struct callback_spec {
    enum provider provider;
    char account[64];
    char kind[16]; /* "status" or "inbound" */
    char msg_id[32];
    const char *method; /* "GET" or "POST" */
    char *url;          /* malloc'd; ownership moves to events */
    char *body;         /* malloc'd or NULL; ownership moves */
    size_t body_len;
    const char *content_type;
    enum cb_expect expect;
    char expect_body[64];
};

/* Starts the events thread. Returns NULL with errstr set on failure. */
struct events *events_start(char *errstr, size_t errstr_size);
/* Stops the thread and resumes every held answer; events pushed later are
 * kept but never run. */
void events_stop(struct events *ev);
/* Frees what is queued or in flight (after the server stopped). */
void events_free(struct events *ev);

/* Queues a delivery of message (provider, id) at due_ms (wall clock). */
void events_deliver(struct events *ev, enum provider p, const char *id,
                    int64_t due_ms);
/* Queues a callback now; takes ownership of spec->url and spec->body. */
void events_callback(struct events *ev, struct callback_spec *spec);
/* Resumes req after delay_ms. */
void events_resume(struct events *ev, struct request *req, int delay_ms);
/* Resumes every request still waiting (shutdown). */
void events_resume_all(struct events *ev);
/* The callback history as JSON (each attempt). */
json_t *events_history(struct events *ev);
void events_clear_history(struct events *ev);
/* Number of callbacks queued or in flight. */
long events_pending(struct events *ev);

/* Applies a due delivery: moves the message to its final state and queues
 * the callback. Called by the events thread (takes the lock). */
void deliver_message(enum provider p, const char *id);

/* Decides the outcome a recipient's number asks for (ends in 99 → failed,
 * 98 → unknown, else delivered). */
enum msg_state outcome_for(const char *recipient);

/* Queues the delivery of a message that just became pending or scheduled. */
void schedule_delivery(struct msg *m);

#endif /* TESTS_STANDIN_STANDIN_H */
