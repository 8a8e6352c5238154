/* worker/outcome.c - record, then publish. */
#include "worker/outcome.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/echo.h"
#include "worker/log.h"
#include "worker/worker.h"
#include "worker/xalloc.h"

const char *outcome_event_recipient(const char *recipient)
{
    return strcmp(recipient, OUTCOME_JOB_LEVEL) == 0 ? NULL : recipient;
}

int outcome_publish(struct worker *w, void *owner, const char *job_id,
                    const char *recipient, const char *state, const char *value,
                    size_t len, const char *echo, size_t *produced)
{
    char key[CODEC_ID_MAX * 2 + 32];
    char errstr[256];
    int ret = 0;

    if (kafka_produce(w->kafka, KAFKA_STATUS, job_id, strlen(job_id), value,
                      len, echo_headers(echo), owner, errstr,
                      sizeof(errstr)) != 0) {
        log_error("outcome: %s job=%s", errstr, job_id);
        return -1;
    }
    (*produced)++;
    w->stats.events++;
    if (state != NULL)
        metrics_count(&w->metrics, M_STATUS_EVENTS, ML(state), 1);
    snprintf(key, sizeof(key), "%s/%s", job_id,
             recipient != NULL && recipient[0] != '\0' ? recipient
                                                       : OUTCOME_JOB_LEVEL);
    if (kafka_produce(w->kafka, KAFKA_LATEST, key, strlen(key), value, len,
                      echo_headers(echo), owner, errstr, sizeof(errstr)) != 0) {
        log_error("outcome: %s job=%s", errstr, job_id);
        ret = -1;
    } else {
        (*produced)++;
    }
    return ret;
}

static void outcome_recorded(struct rbatch_req *req, const char *err)
{
    struct outcome *o = req->owner;
    struct worker *w = o->w;
    if (w->closing)
        err = "shutting down";
    if (err != NULL) {
        free(req->update.headers_out);
        req->update.headers_out = NULL;
        o->done(o, err);
        return;
    }
    const char *echo = o->echo != NULL ? o->echo : req->update.headers_out;
    for (size_t i = 0; i < o->n; i++) {
        const struct marker_update_item *m = &o->mitems[i];
        struct outcome_item *it = &o->items[i];
        bool emit =
            m->advanced || (m->repeated && (it->emit_repeated || o->again));
        o->early += m->early;
        if (!emit || it->event == NULL)
            continue;
        const char *r = outcome_event_recipient(it->recipient);
        if (outcome_publish(w, o->owner, o->job_id, r, it->state, it->event,
                            it->event_len, echo, &o->produced) != 0)
            o->produce_failed = true;
    }
    free(req->update.headers_out);
    req->update.headers_out = NULL;
    o->done(o, NULL);
}

void outcome_record(struct worker *w, struct outcome *o)
{
    o->w = w;
    o->produced = 0;
    o->produce_failed = false;
    o->early = 0;
    free(o->mitems);
    o->mitems = xcalloc(o->n > 0 ? o->n : 1, sizeof(*o->mitems));
    for (size_t i = 0; i < o->n; i++) {
        const struct outcome_item *it = &o->items[i];
        o->mitems[i] = (struct marker_update_item){
            .recipient = it->recipient,
            .op = it->op,
            .outcome = it->event,
            .outcome_len = it->event_len,
            .state = it->state,
        };
    }
    o->req = (struct rbatch_req){
        .kind = RBATCH_UPDATE,
        .account = o->account,
        .update = {o->job_id, o->type, o->mitems, o->n,
                   o->want_echo && o->echo == NULL, NULL, w->owner,
                   o->ttl_fresh},
        .fn = outcome_recorded,
        .owner = o,
    };
    rbatch_queue(w, &o->req);
}

void outcome_cleanup(struct outcome *o)
{
    for (size_t i = 0; i < o->n; i++)
        free(o->items[i].event);
    free(o->items);
    free(o->mitems);
    o->items = NULL;
    o->mitems = NULL;
    o->n = 0;
}
