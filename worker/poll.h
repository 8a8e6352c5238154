/* worker/poll.h - following what was handed to a provider until it ends:
 * status polls of every provider that offers a status read, the give-up
 * that ends a recipient no report reached, the job kept under the
 * reference a provider echoes, the provider ids kept for a cancel, and the
 * replies of providers without webhooks (Jojka). See poll.c for the Redis
 * side. */
#ifndef WORKER_POLL_H
#define WORKER_POLL_H

#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "codecs/codec.h"
#include "worker/worker.h"

/* Returns true for providers whose replies kurir polls (those without
 * webhooks). */
bool poll_wanted(const struct codec *codec);

/* Returns true when kurir reads the statuses of `acct` itself: Jojka
 * always, iP.1 REST when the account has no callback URL, the iP.1 legacy
 * gateway when the account allows its unconfirmed SOAP operations. */
bool poll_reads_statuses(const struct account *acct);

/* Checks at start-up that every account can learn its statuses: an
 * account of a provider that only calls back (InTime) without a callback
 * URL cannot. Returns 0, or -1 with errstr set to one line. */
int poll_check_accounts(const struct accounts *accounts, char *errstr,
                        size_t errstr_size);

/* One recipient a provider was handed (or may have been). */
struct poll_item {
    const char *recipient;
    const char *pid; /* its provider id, or its unit's; NULL: none */
    bool unit_id;    /* pid names the whole call (a campaign, a batch) */
};

/* The end of a tracking: err NULL once Redis has it. */
typedef void poll_tracked_fn(void *privdata, const char *err);

/* Follows a unit's recipients once their outcome is recorded, on the
 * turn's batch (worker/rbatch.h: one script for the account's units of a
 * turn): each is awaited until final or the give-up time
 * (KURIR_REPORT_GIVE_UP_MS), polled where the account's statuses are read,
 * the job is kept under the reference the provider echoes (with its type;
 * a send echoed under its own id needs none), and, when
 * `provider_scheduled` (the provider holds the unit until send_at_ms), the
 * provider ids are kept for a cancel. Returns 0 when it was queued (fn is
 * then called once), 1 when there is nothing to follow. */
int poll_track_unit(struct worker *w, const struct account *acct,
                    const struct job *job, const struct poll_item *items,
                    size_t n, bool provider_scheduled, poll_tracked_fn *fn,
                    void *privdata);

/* The batch side (worker/rbatch.c): the script, its key count and its
 * arguments for njobs queued trackings of one account. */
struct poll_track_job;
struct rargv;
struct rconn_script *poll_track_script(void);
int poll_track_nkeys(size_t njobs);
int poll_track_build(struct rargv *out, struct worker *w, const char *account,
                     const struct poll_track_job *const *jobs, size_t njobs,
                     char *errstr, size_t errstr_size);

/* A unit handed over and waiting at the provider (for a cancel). */
struct poll_held {
    char *pid;         /* owned: the provider id to cancel */
    char **recipients; /* owned: who it carries */
    size_t n;
};

/* Reads what job `job_id` has waiting at the provider (units whose
 * send_at lies ahead), on the blocking connection. Returns 0 with *out and
 * *n set (free with poll_held_free), or -1 with errstr set. */
int poll_held_units(struct worker *w, const struct account *acct,
                    const char *job_id, struct poll_held **out, size_t *n,
                    char *errstr, size_t errstr_size);

/* Frees what poll_held_units returned. */
void poll_held_free(struct poll_held *held, size_t n);

/* What a provider's echoed reference stands for. */
struct poll_ref {
    char job[CODEC_ID_MAX]; /* the job id ("" when not found) */
    char type[16];          /* its type ("send" when not found) */
};

/* Looks a reference up asynchronously (GET); fn gets the reply, which
 * poll_ref_read turns into a poll_ref. Returns 0 (fn called once). */
int poll_ref_lookup(struct worker *w, const struct account *acct,
                    const char *reference, aredis_fn *fn, void *privdata);

/* Reads a lookup's reply: a kept job fills *out; none leaves the
 * reference as the job id and "send" as the type. */
void poll_ref_read(struct poll_ref *out, const char *reference,
                   const redisReply *reply);

/* Forgets that recipient of job is awaited (its state is final). */
void poll_awaited_done(struct worker *w, const struct account *acct,
                       const char *job, const char *recipient,
                       const char *type);

/* Claims and starts the polls and give-ups that are due, a few times a
 * second at most. Loop thread only. */
void poll_serve(struct worker *w);

/* Kafka acknowledged (or refused) one event of a status poll. */
void poll_event_delivered(struct pollreq *p, rd_kafka_resp_err_t err);

/* Frees the poll requests still alive (their transfers already gone). */
void poll_free_all(struct worker *w);

#endif /* WORKER_POLL_H */
