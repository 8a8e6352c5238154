/* worker/plan.h - a job planned into units: the one planner of `kurir run`
 * and `kurir encode`.
 *
 * A unit is one provider call's worth of a job: a slice of job->to of at
 * most the provider's per-call limit (struct codec's send_ and
 * campaign_max_recipients), or, for a job without recipients (contact-sync,
 * a campaign cancel, a campaign sent to groups only), the whole job. A unit
 * is what kurir charges tokens for, marks, sends, records and retries; a
 * job has ended when all its units have. Pure: no I/O. */
#ifndef WORKER_PLAN_H
#define WORKER_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codecs/codec.h"

/* One unit: job->to[first .. first+count); count 0 for a job-level unit. */
struct plan_unit {
    size_t first;
    size_t count;
};

/* True for jobs whose recipients are sent to (sends, campaign creates
 * with `to`): their units carry recipients. */
bool plan_is_bulk(const struct job *job);

/* The most recipients one call may carry for this job on this provider
 * (codec_per_call: fewer for personal texts and some legacy sends). */
size_t plan_per_call(const struct account *acct, const struct job *job);

/* Removes repeated recipients from job->to (the first stays), so that no
 * unit carries a number twice and no two units share one. */
void plan_dedupe(struct job *job);

/* Swaps recipients i and j of the job (their params with them). */
void plan_swap(struct job *job, size_t i, size_t j);

/* The segments recipient i's text costs on this provider (its own rendered
 * text for a personal job); 1 for a job without text. */
unsigned plan_segments(const struct account *acct, const struct job *job,
                       size_t i);

/* The segments all of the job's recipients cost: what a unit charges. */
int64_t plan_charge(const struct account *acct, const struct job *job);

/* How many units the job has. */
size_t plan_count(const struct account *acct, const struct job *job);

/* Unit number i (0 <= i < plan_count). */
struct plan_unit plan_unit(const struct account *acct, const struct job *job,
                           size_t i);

/* Encodes unit `u` into `out` (appending its call, or a contact-sync
 * action's steps). `now` is Unix seconds. Returns 0, or -1 with errstr set
 * and nothing appended. */
int plan_encode(struct codec_calls *out, const struct account *acct,
                const struct job *job, struct plan_unit u, int64_t now,
                char *errstr, size_t errstr_size);

#endif /* WORKER_PLAN_H */
