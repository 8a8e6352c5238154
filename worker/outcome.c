/* worker/outcome.c - record, then publish. */
#include "worker/outcome.h"

#include <stdlib.h>
#include <string.h>

#include "worker/log.h"
#include "worker/worker.h"
#include "worker/xalloc.h"

static void outcome_recorded(struct rbatch_req *req, const char *err)
{
    struct outcome *o = req->owner;
    struct worker *w = o->w;
    char errstr[256];

    if (w->closing)
        err = "shutting down";
    if (err != NULL) {
        o->done(o, err);
        return;
    }
    for (size_t i = 0; i < o->n; i++) {
        const struct marker_update_item *m = &o->mitems[i];
        struct outcome_item *it = &o->items[i];
        bool emit = m->advanced ||
                    (m->repeated && (it->emit_repeated || o->again));
        if (!emit || it->event == NULL)
            continue;
        if (kafka_produce(w->kafka, KAFKA_STATUS, o->job_id,
                          strlen(o->job_id), it->event, it->event_len, NULL,
                          o->owner, errstr, sizeof(errstr)) != 0) {
            log_error("outcome: %s job=%s", errstr, o->job_id);
            o->produce_failed = true;
            continue;
        }
        o->produced++;
        w->stats.events++;
    }
    o->done(o, NULL);
}

void outcome_record(struct worker *w, struct outcome *o)
{
    o->w = w;
    o->produced = 0;
    o->produce_failed = false;
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
        .is_begin = false,
        .account = o->account,
        .update = {o->job_id, o->mitems, o->n},
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
