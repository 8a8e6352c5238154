/* worker/reads.c - read results on the results topic, and opt-out. */
#include "worker/reads.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "codecs/job.h"
#include "codecs/reads.h"
#include "codecs/text.h"
#include "ratelimit/optout.h"
#include "worker/echo.h"
#include "worker/events.h"
#include "worker/log.h"
#include "worker/worker.h"
#include "worker/xalloc.h"

/* The most stop words KURIR_STOP_WORDS may list. */
#define READS_MAX_STOP_WORDS 32

/* Produces one event on `topic` for `owner`; counts it in *produced. */
static int reads_produce(struct worker *w, void *owner, enum kafka_topic topic,
                         const char *key, json_t *ev, const char *echo,
                         size_t *produced)
{
    char errstr[256];
    char *value = json_dumps(ev, JSON_COMPACT);

    if (value == NULL) /* out of memory only */
        abort();
    int r =
        kafka_produce(w->kafka, topic, key, strlen(key), value, strlen(value),
                      echo_headers(echo), owner, errstr, sizeof(errstr));
    free(value);
    if (r != 0) {
        log_error("reads: %s key=%s", errstr, key);
        return -1;
    }
    (*produced)++;
    w->stats.events++;
    return 0;
}

/* The results event of one page (data: {"items", "page", "last_page"}),
 * or of a failed read (data NULL, error set). */
static json_t *reads_event(const struct account *acct, const struct job *job,
                           const json_t *data, const char *error_code,
                           const char *error_message)
{
    char at[40];
    json_t *items = json_object_get(data, "items");
    json_t *page = json_object_get(data, "page");

    event_now(at, sizeof(at));
    json_t *arr = items != NULL ? json_incref(items) : json_array();
    json_t *ev = json_pack(
        "{s:s, s:s, s:s, s:s, s:I, s:b, s:o, s:n, s:s}", "job_id", job->id,
        "account", acct->name, "provider", acct->codec->name, "action",
        job_action_name(job->action), "page",
        page != NULL ? json_integer_value(page)
                     : (json_int_t)(job->page > 0 ? job->page : 1),
        "last_page",
        data != NULL ? json_is_true(json_object_get(data, "last_page")) : 1,
        "items", arr, "error", "at", at);
    if (error_code != NULL)
        json_object_set_new(
            ev, "error",
            json_pack("{s:s, s:s}", "code", error_code, "message",
                      error_message != NULL ? error_message : ""));
    return ev;
}

/* Copies a block list page's numbers into the opt-out set. */
static int reads_import(struct worker *w, const struct account *acct,
                        const json_t *data, size_t *copied, char *errstr,
                        size_t errstr_size)
{
    json_t *items = json_object_get(data, "items");
    size_t n = json_array_size(items), k = 0;
    const char **msisdns = xcalloc(n + 1, sizeof(*msisdns));

    for (size_t i = 0; i < n; i++) {
        const char *m = json_string_value(
            json_object_get(json_array_get(items, i), "msisdn"));
        if (m != NULL && m[0] != '\0')
            msisdns[k++] = m;
    }
    int r =
        optout_add(w->redis, acct->name, msisdns, k, NULL, errstr, errstr_size);
    free(msisdns);
    *copied = k;
    return r;
}

/* The first page a read job asked for (its "page", else 1). */
static int reads_first_page(const struct job *job)
{
    json_int_t p = json_integer_value(json_object_get(job->root, "page"));

    return p > 1 ? (int)p : 1;
}

/* A read job's answer: decoded, published, and where the provider has
 * more, the next page asked for. */
static int reads_answer(struct call_result *res, struct worker *w, void *owner,
                        const struct account *acct, struct job *job,
                        const struct codec_call *call,
                        const struct http_response *resp, const char *echo,
                        size_t *produced, bool *more, char *errstr,
                        size_t errstr_size)
{
    char why[256];

    if (codec_decode_read(res, acct->codec, acct, job, call, resp, errstr,
                          errstr_size) != 0) {
        /* The status says failed (bad_answer); the results say why. */
        json_t *ev = reads_event(acct, job, NULL, "bad_answer", errstr);
        reads_produce(w, owner, KAFKA_RESULTS, job->id, ev, echo, produced);
        json_decref(ev);
        return -1;
    }
    if (res->outcome == CALL_RETRY)
        return 0; /* tried again later: no result yet */
    if (res->outcome != CALL_ACCEPTED) {
        json_t *ev =
            reads_event(acct, job, NULL, res->error_code, res->error_message);
        if (reads_produce(w, owner, KAFKA_RESULTS, job->id, ev, echo,
                          produced) != 0)
            call_result_set_error(res, CALL_RETRY, "kafka",
                                  "the results event could not be queued");
        json_decref(ev);
        return 0;
    }
    if (job->action == ACTION_BLOCKLIST_IMPORT) {
        size_t copied;
        if (reads_import(w, acct, res->data, &copied, why, sizeof(why)) != 0) {
            log_warn("reads: job %s: opt-out import: %s", job->id, why);
            call_result_set_error(res, CALL_RETRY, "redis",
                                  "the opt-out set could not be written: %s",
                                  why);
            return 0;
        }
        log_info("reads: job %s copied %zu blocked numbers of %s into the "
                 "opt-out set",
                 job->id, copied, acct->name);
    }
    json_t *ev = reads_event(acct, job, res->data, NULL, NULL);
    int r = reads_produce(w, owner, KAFKA_RESULTS, job->id, ev, echo, produced);
    json_decref(ev);
    if (r != 0) {
        call_result_set_error(res, CALL_RETRY, "kafka",
                              "the results event could not be queued");
        return 0;
    }
    if (json_is_true(json_object_get(res->data, "last_page")))
        return 0;
    int page = job->page > 0 ? job->page : 1;
    if (page - reads_first_page(job) + 1 >= READS_MAX_PAGES) {
        call_result_set_error(res, CALL_FAILED, "too_many_pages",
                              "read stopped after %d pages; ask again with "
                              "\"page\": %d",
                              READS_MAX_PAGES, page + 1);
        return 0;
    }
    job->page = page + 1;
    *more = true;
    return 0;
}

/* A block-list job the provider accepted: kurir's opt-out set follows. */
static void reads_blocklist(struct call_result *res, struct worker *w,
                            const struct account *acct, const struct job *job)
{
    char errstr[256];
    size_t changed = 0;
    const char *const *m = (const char *const *)job->msisdns;
    bool add = job->action == ACTION_BLOCKLIST_ADD;
    int r = add ? optout_add(w->redis, acct->name, m, job->nmsisdns, &changed,
                             errstr, sizeof(errstr))
                : optout_remove(w->redis, acct->name, m, job->nmsisdns,
                                &changed, errstr, sizeof(errstr));

    if (r != 0) {
        log_warn("reads: job %s: opt-out set: %s", job->id, errstr);
        call_result_set_error(res, CALL_RETRY, "redis",
                              "the opt-out set could not be written: %s",
                              errstr);
        return;
    }
    log_info("reads: job %s %s %zu numbers %s the opt-out set of %s", job->id,
             add ? "put" : "took", changed, add ? "on" : "off", acct->name);
}

int reads_decode(struct call_result *res, struct worker *w, void *owner,
                 const struct account *acct, struct job *job,
                 const struct codec_call *call, bool last,
                 const struct http_response *resp, const char *echo,
                 size_t *produced, bool *more, char *errstr, size_t errstr_size)
{
    *more = false;
    if (job->type == JOB_CONTACTS && job_action_is_read(job->action))
        return reads_answer(res, w, owner, acct, job, call, resp, echo,
                            produced, more, errstr, errstr_size);
    if (acct->codec->decode(res, acct, job, call, resp, errstr, errstr_size) !=
        0)
        return -1;
    if (last && res->outcome == CALL_ACCEPTED &&
        (job->action == ACTION_BLOCKLIST_ADD ||
         job->action == ACTION_BLOCKLIST_REMOVE))
        reads_blocklist(res, w, acct, job);
    return 0;
}

/* Splits KURIR_STOP_WORDS ("STOP,STOPP,AVREGISTRERA") into words[], held
 * in buf. Returns how many. */
static size_t reads_stop_words(const char *list, char *buf, size_t buf_size,
                               const char **words, size_t max)
{
    size_t n = 0;

    snprintf(buf, buf_size, "%s", list);
    for (char *p = buf; *p != '\0' && n + 1 < max;) {
        char *comma = strchr(p, ',');
        if (comma != NULL)
            *comma = '\0';
        while (*p == ' ')
            p++;
        char *end = p + strlen(p);
        while (end > p && end[-1] == ' ')
            *--end = '\0';
        if (*p != '\0')
            words[n++] = p;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    words[n] = NULL;
    return n;
}

int optout_on_reply(struct worker *w, void *owner, const struct account *acct,
                    const struct inbound_sms *reply, int *pending)
{
    char buf[512], errstr[256], at[40];
    const char *words[READS_MAX_STOP_WORDS + 1];
    size_t produced = 0;
    const char *from = reply->from;

    if (reply->text == NULL || from[0] == '\0' ||
        reads_stop_words(w->cfg->stop_words, buf, sizeof(buf), words,
                         READS_MAX_STOP_WORDS + 1) == 0 ||
        !text_is_stop_word(reply->text, words))
        return 0;
    if (optout_add(w->redis, acct->name, &from, 1, NULL, errstr,
                   sizeof(errstr)) != 0) {
        log_error("reads: opt-out of a reply to %s: %s", acct->name, errstr);
        return -1;
    }
    event_now(at, sizeof(at));
    json_t *ev = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s*, s:s}", "type", "opted_out",
        "account", acct->name, "provider", acct->codec->name, "msisdn", from,
        "source", "reply", "text", reply->text, "provider_message_id",
        reply->provider_id[0] != '\0' ? reply->provider_id : NULL, "at", at);
    int r = reads_produce(w, owner, KAFKA_REPLIES, from, ev, NULL, &produced);
    json_decref(ev);
    if (pending != NULL)
        *pending += (int)produced;
    log_info("reads: a stop word put a number on the opt-out set of %s",
             acct->name);
    return r;
}
