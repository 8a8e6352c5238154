/* worker/plan.c - a job planned into units. */
#include "worker/plan.h"

#include <stdlib.h>
#include <string.h>

#include "worker/xalloc.h"

bool plan_is_bulk(const struct job *job)
{
    return job->nto > 0 &&
           (job->type == JOB_SEND ||
            (job->type == JOB_CAMPAIGN && job->action == ACTION_CREATE));
}

size_t plan_per_call(const struct account *acct, const struct job *job)
{
    size_t n = codec_per_call(acct->codec, acct, job);

    return n > 0 ? n : 1;
}

void plan_swap(struct job *job, size_t i, size_t j)
{
    char *to = job->to[i];

    job->to[i] = job->to[j];
    job->to[j] = to;
    if (job->params != NULL) {
        json_t *p = job->params[i];
        job->params[i] = job->params[j];
        job->params[j] = p;
    }
}

unsigned plan_segments(const struct account *acct, const struct job *job,
                       size_t i)
{
    char text[16384];
    char errstr[128];
    size_t len;

    if (job->text == NULL)
        return 1;
    if (job_is_personal(job) &&
        job_render_text(job, i, text, sizeof(text), &len, errstr,
                        sizeof(errstr)) == 0)
        return codec_segments(acct->codec, text, len);
    return codec_segments(acct->codec, job->text, job->text_len);
}

int64_t plan_charge(const struct account *acct, const struct job *job)
{
    if (!job_is_personal(job))
        return (int64_t)plan_segments(acct, job, 0) *
               (int64_t)(job->nto > 0 ? job->nto : 1);
    int64_t sum = 0;
    for (size_t i = 0; i < job->nto; i++)
        sum += plan_segments(acct, job, i);
    return sum;
}

/* FNV-1a over a NUL-terminated string. */
static uint64_t plan_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

void plan_dedupe(struct job *job)
{
    if (job->nto < 2)
        return;
    size_t cap = 16;
    while (cap < job->nto * 2)
        cap *= 2;
    const char **seen = xcalloc(cap, sizeof(*seen));
    size_t keep = 0;
    for (size_t i = 0; i < job->nto; i++) {
        char *r = job->to[i];
        size_t slot = (size_t)plan_hash(r) & (cap - 1);
        bool dup = false;
        while (seen[slot] != NULL) {
            if (strcmp(seen[slot], r) == 0) {
                dup = true;
                break;
            }
            slot = (slot + 1) & (cap - 1);
        }
        if (dup)
            continue;
        seen[slot] = r;
        /* The numbers live in one block the job owns: entries are
         * reordered, never freed. */
        plan_swap(job, i, keep++);
    }
    job->nto = keep;
    free(seen);
}

size_t plan_count(const struct account *acct, const struct job *job)
{
    if (!plan_is_bulk(job))
        return 1;
    size_t per = plan_per_call(acct, job);
    return (job->nto + per - 1) / per;
}

struct plan_unit plan_unit(const struct account *acct, const struct job *job,
                           size_t i)
{
    if (!plan_is_bulk(job))
        return (struct plan_unit){0, 0};
    size_t per = plan_per_call(acct, job);
    size_t first = i * per;
    size_t count = job->nto - first < per ? job->nto - first : per;
    return (struct plan_unit){first, count};
}

int plan_encode(struct codec_calls *out, const struct account *acct,
                const struct job *job, struct plan_unit u, int64_t now,
                char *errstr, size_t errstr_size)
{
    return acct->codec->encode(out, acct, job, u.first, u.count, now, errstr,
                               errstr_size);
}
