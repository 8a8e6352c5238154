/* worker/encode.c - `kurir encode`: a dry run of the codecs. */
#include "worker/encode.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "codecs/job.h"
#include "codecs/util.h"
#include "worker/mask.h"
#include "worker/plan.h"

/* Which kind of job the bytes hold: their "type", a send without one. */
static enum job_type encode_job_type(const char *buf, size_t len)
{
    json_t *root = json_loadb(buf, len, 0, NULL);
    const char *type = json_string_value(json_object_get(root, "type"));
    enum job_type jt = JOB_SEND;

    if (type != NULL && strcmp(type, "campaign") == 0)
        jt = JOB_CAMPAIGN;
    else if (type != NULL && strcmp(type, "contact-sync") == 0)
        jt = JOB_CONTACTS;
    json_decref(root);
    return jt;
}

/* Appends s to b with the account's secrets masked (worker/mask.h). */
static void encode_masked(struct buf *b, const struct account *acct,
                          const char *s, size_t len)
{
    size_t n;
    char *masked = mask_secrets(acct, s, len, &n);

    buf_append(b, masked, n);
    free(masked);
}

int encode_job(FILE *out, FILE *err, const struct account *acct,
               const char *buf, size_t len, long long now)
{
    struct job *job = NULL;
    struct codec_calls calls = {0};
    struct buf b;
    char id[128];
    char errstr[512];
    int ret = 2;

    buf_init(&b);
    if (job_parse(&job, buf, len, encode_job_type(buf, len), id, sizeof(id),
                  errstr, sizeof(errstr)) != 0) {
        fprintf(err, "kurir: job: %s\n", errstr);
        goto out;
    }
    const struct codec *codec = acct->codec;
    if (codec->encode == NULL) {
        fprintf(err, "kurir: provider %s is not supported yet\n", codec->name);
        goto out;
    }
    if (codec->check != NULL &&
        codec->check(acct, job, errstr, sizeof(errstr)) != 0) {
        fprintf(err, "kurir: job %s: %s\n", job->id, errstr);
        goto out;
    }
    /* The planner `kurir run` uses: one unit, one call. */
    plan_dedupe(job);
    size_t nunits = plan_count(acct, job);
    for (size_t u = 0; u < nunits; u++) {
        if (plan_encode(&calls, acct, job, plan_unit(acct, job, u), now, errstr,
                        sizeof(errstr)) != 0) {
            fprintf(err, "kurir: job %s: %s\n", job->id, errstr);
            goto out;
        }
        for (size_t i = 0; i < calls.ncalls; i++) {
            const struct http_request *req = &calls.calls[i].req;
            buf_printf(&b, "%s ", req->method);
            encode_masked(&b, acct, req->url, strlen(req->url));
            buf_puts(&b, "\n");
            for (size_t h = 0; h < req->nheaders; h++) {
                buf_printf(&b, "%s: ", req->headers[h].name);
                encode_masked(&b, acct, req->headers[h].value,
                              strlen(req->headers[h].value));
                buf_puts(&b, "\n");
            }
            buf_puts(&b, "\n");
            if (req->body != NULL)
                encode_masked(&b, acct, req->body, req->body_len);
            buf_puts(&b, "\n\n");
        }
        codec_calls_cleanup(&calls);
    }
    fwrite(b.data ? b.data : "", 1, b.len, out);
    ret = 0;

out:
    codec_calls_cleanup(&calls);
    buf_cleanup(&b);
    job_free(job);
    return ret;
}
