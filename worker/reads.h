/* worker/reads.h - the engine half of the read actions and of opt-out.
 *
 * Read actions (list-groups, list-blocklist, list-reminders,
 * export-contacts, balance, message-status, campaign-status,
 * check-blocklist, list-senders, blocklist-import; codecs/reads.h) run as
 * job-level calls of a contact-sync task. Each answer is decoded here into
 * a results event on the results topic (KURIR_TOPIC_RESULTS, keyed by job
 * id, one event per page); the task then ends as any job-level call does,
 * with its status event. Results events are the task's own, like its
 * status events: the job's offset moves only once Kafka has them all.
 *
 * Opt-out: numbers on an account's opt-out set (ratelimit/optout.h) are
 * never sent to: the send-once begin script answers MARKER_OPTED_OUT and
 * the unit ends them `rejected` with code `opted_out`. The set is filled
 * by stop-word replies (optout_on_reply), blocklist-add jobs and
 * blocklist-import reads, and emptied by blocklist-remove jobs. The writes
 * use the blocking Redis connection: they are rare. Loop thread only. */
#ifndef WORKER_READS_H
#define WORKER_READS_H

#include <stdbool.h>
#include <stddef.h>

#include "codecs/codec.h"

struct worker;

/* How many pages one read job follows. A read with more pages ends
 * `failed` (too_many_pages) after this many results events; a job with
 * "page" set to the next one reads on. */
#define READS_MAX_PAGES 100

/* Decodes the answer to call `call` of `job` in place of codec->decode()
 * (task.c calls it for every job-level answer): read actions through
 * codec_decode_read(), with their results event produced (`owner` gets
 * Kafka's acknowledgement; *produced counts it) and, for
 * blocklist-import, every number copied into the opt-out set; when the
 * provider has another page and READS_MAX_PAGES allows, job->page moves
 * on to it and *more is set: the caller encodes and calls again. For
 * blocklist-add and -remove, once the provider accepted the `last` call,
 * the numbers are added to or removed from the opt-out set. A Redis
 * failure there makes an accepted answer CALL_RETRY ("redis"): the job is
 * tried again later (all of it is safe to repeat). Returns 0 with *res
 * filled, or -1 with errstr set, as decode() does. */
int reads_decode(struct call_result *res, struct worker *w, void *owner,
                 const struct account *acct, struct job *job,
                 const struct codec_call *call, bool last,
                 const struct http_response *resp, const char *echo,
                 size_t *produced, bool *more, char *errstr,
                 size_t errstr_size);

/* Looks at an incoming reply: when its text is a stop word
 * (KURIR_STOP_WORDS, text_is_stop_word()), puts its sender on acct's
 * opt-out set and produces an `opted_out` event on the replies topic,
 * keyed by the sender, with `owner` (may be NULL: nothing waits) getting
 * Kafka's acknowledgement and *pending (may be NULL) counting it. Returns
 * 0 (also for replies that are no stop word), or -1 when Redis or Kafka
 * could not take it (logged; the caller has the reply sent again, or
 * loses only the opt-out). Callbacks (worker/hooks.c) and reply polls
 * (worker/poll.c) call it for each reply they publish. */
int optout_on_reply(struct worker *w, void *owner, const struct account *acct,
                    const struct inbound_sms *reply, int *pending);

#endif /* WORKER_READS_H */
