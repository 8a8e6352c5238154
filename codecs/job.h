/* codecs/job.h - a kurir job (CONTRACT §4), parsed and validated.
 *
 * job_parse() turns the bytes of one Kafka message into a struct job, or into
 * one clear error line. It checks what every provider agrees on (required
 * fields, MSISDN numbers, valid UTF-8, RFC 3339 times, known actions);
 * provider rules (sender ids, length limits) are the codec's check(). Pure:
 * no I/O. */
#ifndef CODECS_JOB_H
#define CODECS_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "codecs/text.h"

#define JOB_MAX_TEXT 10000 /* bytes of text, rendered or not */
/* The longest job id, in bytes: it names the job's Redis keys and entries,
 * which must fit (with the account name) in RCONN_KEY_MAX. */
#define JOB_MAX_ID 256

enum job_type {
    JOB_SEND,
    JOB_CAMPAIGN,
    JOB_CONTACTS,
};

enum job_action {
    ACTION_NONE,   /* sends have no action */
    ACTION_CREATE, /* campaign */
    ACTION_CANCEL, /* campaign */
    ACTION_CONTACT_UPSERT,
    ACTION_CONTACT_DELETE,
    ACTION_GROUP_CREATE,
    ACTION_GROUP_DELETE,
    ACTION_GROUP_ADD_MEMBER,
    ACTION_GROUP_REMOVE_MEMBER,
    ACTION_BLOCKLIST_ADD,
    ACTION_BLOCKLIST_REMOVE,
    ACTION_REMINDER_ADD,
    ACTION_REMINDER_EDIT,
    /* Reads and the later actions of issue 10 (docs/operations-table.md):
     * contacts-topic actions too. */
    ACTION_LIST_GROUPS,
    ACTION_LIST_BLOCKLIST,
    ACTION_LIST_REMINDERS,
    ACTION_EXPORT_CONTACTS,
    ACTION_BALANCE,
    ACTION_MESSAGE_STATUS,
    ACTION_CAMPAIGN_STATUS,
    ACTION_CHECK_BLOCKLIST,
    ACTION_LIST_SENDERS,
    ACTION_REGISTER_SENDER,
    ACTION_CONTACT_UPDATE,
    ACTION_LABEL_ADD,
    ACTION_BLOCKLIST_IMPORT,
};

struct contact {
    const char *msisdn;     /* normalised digits */
    const char *first_name; /* may be NULL */
    const char *last_name;  /* may be NULL */
    const char *email;      /* may be NULL */
    const char **groups;    /* owned array of borrowed strings */
    size_t ngroups;
    json_t *extra; /* borrowed: an object of custom fields, or a string
                      (InTime's one free field, the same as
                      {"extrafield": "..."}); NULL when absent */
};

/* A parsed job. Strings are borrowed from `root` (owned by the job) except
 * the normalised numbers, which the job owns. job_free() releases all. */
struct job {
    enum job_type type;
    enum job_action action;
    const char *id;      /* required; the idempotency key */
    const char *account; /* required */
    char **to;           /* normalised MSISDNs (digits only), owned */
    size_t nto;
    json_t **params;  /* per recipient: its "params" object (borrowed) or
                         NULL; the array is owned, NULL when no recipient
                         of the job carries params */
    const char *from; /* may be NULL: the account's default */
    const char *text; /* may be NULL for contact-sync and cancel */
    size_t text_len;
    struct text_info text_info; /* of text; zero when there is none */
    int64_t send_at_ms;         /* Unix ms; 0 when not given */
    bool flash;
    int priority;            /* 0 when not given */
    const char *reference;   /* may be NULL */
    const char *name;        /* campaign name; may be NULL */
    const char *campaign_id; /* campaign cancel: the create job's id */
    const char **groups;     /* owned array of borrowed strings */
    size_t ngroups;
    char **msisdns; /* normalised, owned (blocklist actions) */
    size_t nmsisdns;
    struct contact *contacts; /* owned */
    size_t ncontacts;
    json_t *reminders;        /* borrowed array or NULL (InTime) */
    const char *provider_id;  /* message-status, campaign-status: the
                                 provider's id; may be NULL */
    int page;                 /* reads: the page asked for, from 1; 0 when
                                 not given (the first) */
    const char **contact_ids; /* label-add: the provider's contact ids,
                                 owned array of borrowed strings */
    size_t ncontact_ids;
    const char *contacts_list_url; /* contact-upsert: an https URL of a
                                      CSV the provider fetches (Jojka) */
    json_t *root;                  /* owned: the parsed document */
};

/* Parses a job from `len` bytes of JSON. `topic_type` is the type of the
 * topic it arrived on; a "type" field that contradicts it is an error.
 * Returns 0 and sets *out to a new job the caller frees with job_free(). On
 * error returns -1 with errstr set to one line, and, when the document had a
 * readable string "id", copies it to id_out (else id_out is ""). */
int job_parse(struct job **out, const char *buf, size_t len,
              enum job_type topic_type, char *id_out, size_t id_out_size,
              char *errstr, size_t errstr_size);

/* Returns true when the job's text is rendered per recipient: some
 * recipient carries "params" (docs/personalisation.md). */
bool job_is_personal(const struct job *job);

/* Writes recipient i's text, NUL-terminated, to buf[0..size): the job's
 * text with each "{name}" replaced by the recipient's params.name and "{{"
 * by "{" when the job is personal, else the text as it is. Sets *len_out
 * (may be NULL) to its length in bytes. Returns 0, or -1 with errstr set
 * when a placeholder has no value or the text does not fit. job_parse()
 * has rendered every recipient once, so -1 means only a small buf. */
int job_render_text(const struct job *job, size_t i, char *buf, size_t size,
                    size_t *len_out, char *errstr, size_t errstr_size);

/* Frees a job and all it owns. job_free(NULL) does nothing. */
void job_free(struct job *job);

/* Returns true for the read actions (list-*, export-contacts, balance,
 * *-status, check-blocklist, blocklist-import): they change nothing at the
 * provider and their result is call_result.data. */
bool job_action_is_read(enum job_action action);

/* Returns "send", "campaign" or "contact-sync". */
const char *job_type_name(enum job_type type);

/* Returns the CONTRACT name of an action ("contact-upsert", ...). */
const char *job_action_name(enum job_action action);

#endif /* CODECS_JOB_H */
