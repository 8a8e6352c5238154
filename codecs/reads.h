/* codecs/reads.h - the read actions of the contacts topic (list-groups,
 * list-blocklist, list-reminders, export-contacts, balance,
 * message-status, campaign-status, check-blocklist, list-senders,
 * blocklist-import) per provider, and their one result shape:
 * call_result.data = {"items": [...], "page": N, "last_page": bool}
 * (docs/reads.md). Pure. */
#ifndef CODECS_READS_H
#define CODECS_READS_H

#include <stdbool.h>

#include "codecs/codec.h"

/* Returns true when provider `c` has read `action`. */
bool codec_has_read(const struct codec *c, enum job_action action);

/* Checks a read job against provider `c`: the provider has the read, and
 * the job gives what it needs (provider_id, one msisdn, a page only where
 * kurir pages). Returns 0, or -1 with errstr set (naming the reads the
 * provider has when it lacks this one). Each codec's check() calls it for
 * read actions. */
int codec_check_read(const struct codec *c, const struct job *job, char *errstr,
                     size_t errstr_size);

/* Appends the one call read job `job` makes on provider `c` (through its
 * encode_poll()). Returns 0, or -1 with errstr set and nothing appended.
 * codec_encode_slice() calls it, so encode() does this for read jobs. */
int codec_encode_read(struct codec_calls *out, const struct codec *c,
                      const struct account *acct, const struct job *job,
                      char *errstr, size_t errstr_size);

/* Decodes the answer to a read job's call: the provider's decode() or
 * decode_poll(), then data normalised to {"items", "page", "last_page"}.
 * Returns 0 with *out filled (an outcome other than CALL_ACCEPTED has no
 * data), or -1 with errstr set when the answer cannot be read. The engine
 * calls this, not decode(), for a call of a read job. */
int codec_decode_read(struct call_result *out, const struct codec *c,
                      const struct account *acct, const struct job *job,
                      const struct codec_call *call,
                      const struct http_response *resp, char *errstr,
                      size_t errstr_size);

#endif /* CODECS_READS_H */
