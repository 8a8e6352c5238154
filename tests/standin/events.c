/* tests/standin/events.c - the stand-in's clock: deliveries that fall due,
 * callbacks to kurir (with retries) and delayed answers.
 *
 * One thread owns a min-heap of timed events and a curl multi handle; other
 * threads push events and wake it with curl_multi_wakeup. Callbacks run
 * concurrently; one whose receiver does not answer what the provider expects
 * is tried again settings.retry_ms later, settings.max_tries times in all
 * (the real providers wait 10 or 30 minutes between tries; see
 * docs/standins.md). Lock order: standin->lock may be held when taking
 * events.lock, never the other way round. */
#include "standin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#define EVENTS_HISTORY_MAX 10000
#define EVENTS_ANSWER_MAX  4096

enum ev_kind { EV_DELIVER, EV_CALLBACK, EV_RESUME };

struct cb {
    struct callback_spec spec;
    int tries;
    struct sbuf answer;
    char errbuf[CURL_ERROR_SIZE];
    struct curl_slist *headers;
};

struct event {
    int64_t due;  /* monotonic ms */
    uint64_t seq; /* FIFO among equal due times */
    enum ev_kind kind;
    enum provider provider;
    char id[32];
    struct cb *cb;
    struct request *req;
};

struct events {
    pthread_t thread;
    pthread_mutex_t lock;
    struct event *heap;
    size_t len;
    size_t cap;
    uint64_t seq;
    CURLM *multi;
    bool stop;
    long in_flight;
    struct ptrvec active; /* CURL * in flight */
    json_t *history;
    long history_seq;
};

static bool ev_before(const struct event *a, const struct event *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

/* Pushes e; lock held. */
static void heap_push(struct events *ev, struct event *e)
{
    if (ev->len == ev->cap) {
        ev->cap = ev->cap ? ev->cap * 2 : 256;
        ev->heap = xrealloc(ev->heap, ev->cap * sizeof(*ev->heap));
    }
    e->seq = ev->seq++;
    size_t i = ev->len++;
    ev->heap[i] = *e;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!ev_before(&ev->heap[i], &ev->heap[parent]))
            break;
        struct event tmp = ev->heap[parent];
        ev->heap[parent] = ev->heap[i];
        ev->heap[i] = tmp;
        i = parent;
    }
}

/* Pops the earliest event into *out; lock held, heap not empty. */
static void heap_pop(struct events *ev, struct event *out)
{
    *out = ev->heap[0];
    ev->heap[0] = ev->heap[--ev->len];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < ev->len && ev_before(&ev->heap[l], &ev->heap[m]))
            m = l;
        if (r < ev->len && ev_before(&ev->heap[r], &ev->heap[m]))
            m = r;
        if (m == i)
            break;
        struct event tmp = ev->heap[m];
        ev->heap[m] = ev->heap[i];
        ev->heap[i] = tmp;
        i = m;
    }
}

static void events_push(struct events *ev, struct event *e)
{
    pthread_mutex_lock(&ev->lock);
    heap_push(ev, e);
    pthread_mutex_unlock(&ev->lock);
    curl_multi_wakeup(ev->multi);
}

void events_deliver(struct events *ev, enum provider p, const char *id,
                    int64_t due_ms)
{
    struct event e = {0};

    e.due = mono_ms() + (due_ms - now_ms());
    e.kind = EV_DELIVER;
    e.provider = p;
    snprintf(e.id, sizeof(e.id), "%s", id);
    events_push(ev, &e);
}

void events_callback(struct events *ev, struct callback_spec *spec)
{
    struct event e = {0};

    e.cb = xcalloc(1, sizeof(*e.cb));
    e.cb->spec = *spec;
    spec->url = NULL; /* now owned by the event */
    spec->body = NULL;
    e.due = mono_ms();
    e.kind = EV_CALLBACK;
    events_push(ev, &e);
}

void events_resume(struct events *ev, struct request *req, int delay_ms)
{
    struct event e = {0};

    e.due = mono_ms() + delay_ms;
    e.kind = EV_RESUME;
    e.req = req;
    events_push(ev, &e);
}

static void cb_free(struct cb *cb)
{
    free(cb->spec.url);
    free(cb->spec.body);
    sbuf_free(&cb->answer);
    curl_slist_free_all(cb->headers);
    free(cb);
}

static size_t cb_write(char *data, size_t size, size_t nmemb, void *opaque)
{
    struct cb *cb = opaque;
    size_t n = size * nmemb;

    if (cb->answer.len + n > EVENTS_ANSWER_MAX)
        return 0; /* an oversized answer is a wrong answer */
    sbuf_append(&cb->answer, data, n);
    return n;
}

static void cb_start(struct events *ev, struct cb *cb)
{
    CURL *easy = curl_easy_init();
    int timeout;

    pthread_mutex_lock(&standin->lock);
    timeout = standin->settings.callback_timeout_ms;
    standin->stats.callbacks_sent++;
    pthread_mutex_unlock(&standin->lock);
    cb->tries++;
    sbuf_free(&cb->answer);
    cb->errbuf[0] = '\0';
    curl_slist_free_all(cb->headers);
    cb->headers = NULL;
    curl_easy_setopt(easy, CURLOPT_URL, cb->spec.url);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)timeout);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "kurir-standin");
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, cb->errbuf);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, cb_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, cb);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, cb);
    if (strcmp(cb->spec.method, "POST") == 0) {
        char ctype[128];
        snprintf(ctype, sizeof(ctype), "Content-Type: %s",
                 cb->spec.content_type);
        cb->headers = curl_slist_append(cb->headers, ctype);
        cb->headers = curl_slist_append(cb->headers, "Expect:");
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, cb->headers);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS,
                         cb->spec.body ? cb->spec.body : "");
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long)cb->spec.body_len);
    }
    curl_multi_add_handle(ev->multi, easy);
    pthread_mutex_lock(&ev->lock);
    ptrvec_push(&ev->active, easy);
    ev->in_flight++;
    pthread_mutex_unlock(&ev->lock);
}

/* Returns whether the receiver answered what the provider expects. */
static bool cb_taken(const struct cb *cb, CURLcode result, long status)
{
    if (result != CURLE_OK || status != 200)
        return false;
    switch (cb->spec.expect) {
    case CB_EXPECT_200:
        return true;
    case CB_EXPECT_OK:
        return cb->answer.len == 2 && memcmp(cb->answer.data, "OK", 2) == 0;
    case CB_EXPECT_BODY: {
        char *copy =
            xstrndup(cb->answer.data ? cb->answer.data : "", cb->answer.len);
        bool same = strcmp(trim(copy), cb->spec.expect_body) == 0;
        free(copy);
        return same;
    }
    }
    return false;
}

static void cb_done(struct events *ev, CURL *easy, CURLcode result)
{
    struct cb *cb;
    long status = 0;
    int retry_ms, max_tries;

    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&cb);
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(ev->multi, easy);
    curl_easy_cleanup(easy);
    pthread_mutex_lock(&ev->lock);
    for (size_t i = 0; i < ev->active.len; i++) {
        if (ev->active.items[i] == easy) {
            ev->active.items[i] = ev->active.items[--ev->active.len];
            break;
        }
    }
    ev->in_flight--;
    pthread_mutex_unlock(&ev->lock);

    bool ok = cb_taken(cb, result, status);
    pthread_mutex_lock(&standin->lock);
    retry_ms = standin->settings.retry_ms;
    max_tries = standin->settings.max_tries;
    if (ok)
        standin->stats.callbacks_ok++;
    else
        standin->stats.callbacks_failed++;
    if (!ok && cb->tries >= max_tries)
        standin->stats.callbacks_given_up++;
    pthread_mutex_unlock(&standin->lock);

    json_t *entry = json_pack(
        "{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:i, s:s#, s:b}", "seq",
        (json_int_t)++ev->history_seq, "provider",
        provider_name(cb->spec.provider), "account", cb->spec.account, "kind",
        cb->spec.kind, "msg_id", cb->spec.msg_id, "method", cb->spec.method,
        "url", cb->spec.url, "try", cb->tries, "at_ms", (json_int_t)now_ms(),
        "status", (int)status, "answer", cb->answer.data ? cb->answer.data : "",
        utf8_valid(cb->answer.data ? cb->answer.data : "", cb->answer.len)
            ? (int)cb->answer.len
            : 0,
        "ok", ok);
    if (cb->spec.body != NULL)
        json_object_set_new(entry, "body",
                            json_stringn(cb->spec.body, cb->spec.body_len));
    if (result != CURLE_OK)
        json_object_set_new(entry, "error",
                            json_string(cb->errbuf[0]
                                            ? cb->errbuf
                                            : curl_easy_strerror(result)));
    pthread_mutex_lock(&ev->lock);
    json_array_append_new(ev->history, entry);
    if (json_array_size(ev->history) > EVENTS_HISTORY_MAX)
        json_array_remove(ev->history, 0);
    if (!ok && cb->tries < max_tries) {
        struct event e = {0};
        e.due = mono_ms() + retry_ms;
        e.kind = EV_CALLBACK;
        e.cb = cb;
        heap_push(ev, &e);
        cb = NULL;
    }
    pthread_mutex_unlock(&ev->lock);
    if (cb != NULL)
        cb_free(cb);
}

static void *events_main(void *opaque)
{
    struct events *ev = opaque;

    for (;;) {
        struct ptrvec due = {0};
        int wait_ms = 1000;

        pthread_mutex_lock(&ev->lock);
        if (ev->stop) {
            pthread_mutex_unlock(&ev->lock);
            break;
        }
        int64_t now = mono_ms();
        while (ev->len > 0 && ev->heap[0].due <= now) {
            struct event *e = xmalloc(sizeof(*e));
            heap_pop(ev, e);
            ptrvec_push(&due, e);
        }
        if (ev->len > 0 && ev->heap[0].due - now < wait_ms)
            wait_ms = (int)(ev->heap[0].due - now);
        pthread_mutex_unlock(&ev->lock);

        for (size_t i = 0; i < due.len; i++) {
            struct event *e = due.items[i];
            switch (e->kind) {
            case EV_DELIVER:
                deliver_message(e->provider, e->id);
                break;
            case EV_CALLBACK:
                cb_start(ev, e->cb);
                break;
            case EV_RESUME:
                server_resume(e->req);
                break;
            }
            free(e);
        }
        ptrvec_free(&due);

        int running;
        CURLMsg *msg;
        int left;
        curl_multi_perform(ev->multi, &running);
        while ((msg = curl_multi_info_read(ev->multi, &left)) != NULL) {
            if (msg->msg == CURLMSG_DONE)
                cb_done(ev, msg->easy_handle, msg->data.result);
        }
        pthread_mutex_lock(&ev->lock);
        if (ev->in_flight > 0 && wait_ms > 20)
            wait_ms = 20;
        pthread_mutex_unlock(&ev->lock);
        curl_multi_poll(ev->multi, NULL, 0, wait_ms, NULL);
    }
    return NULL;
}

struct events *events_start(char *errstr, size_t errstr_size)
{
    struct events *ev = xcalloc(1, sizeof(*ev));

    pthread_mutex_init(&ev->lock, NULL);
    ev->multi = curl_multi_init();
    ev->history = json_array();
    if (ev->multi == NULL ||
        pthread_create(&ev->thread, NULL, events_main, ev) != 0) {
        snprintf(errstr, errstr_size, "cannot start the events thread");
        if (ev->multi != NULL)
            curl_multi_cleanup(ev->multi);
        json_decref(ev->history);
        pthread_mutex_destroy(&ev->lock);
        free(ev);
        return NULL;
    }
    return ev;
}

void events_resume_all(struct events *ev)
{
    pthread_mutex_lock(&ev->lock);
    for (size_t i = 0; i < ev->len; i++) {
        if (ev->heap[i].kind == EV_RESUME) {
            server_resume(ev->heap[i].req);
            ev->heap[i].kind = EV_DELIVER; /* spent */
            ev->heap[i].id[0] = '\0';
        }
    }
    pthread_mutex_unlock(&ev->lock);
}

void events_stop(struct events *ev)
{
    pthread_mutex_lock(&ev->lock);
    ev->stop = true;
    pthread_mutex_unlock(&ev->lock);
    curl_multi_wakeup(ev->multi);
    pthread_join(ev->thread, NULL);
    events_resume_all(ev);
}

void events_free(struct events *ev)
{
    if (ev == NULL)
        return;
    /* Abandon transfers in flight and whatever is still queued. */
    for (size_t i = 0; i < ev->active.len; i++) {
        CURL *easy = ev->active.items[i];
        struct cb *cb;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&cb);
        curl_multi_remove_handle(ev->multi, easy);
        curl_easy_cleanup(easy);
        cb_free(cb);
    }
    ptrvec_free(&ev->active);
    for (size_t i = 0; i < ev->len; i++) {
        if (ev->heap[i].kind == EV_CALLBACK)
            cb_free(ev->heap[i].cb);
    }
    free(ev->heap);
    curl_multi_cleanup(ev->multi);
    json_decref(ev->history);
    pthread_mutex_destroy(&ev->lock);
    free(ev);
}

json_t *events_history(struct events *ev)
{
    pthread_mutex_lock(&ev->lock);
    json_t *copy = json_deep_copy(ev->history);
    pthread_mutex_unlock(&ev->lock);
    return copy;
}

void events_clear_history(struct events *ev)
{
    pthread_mutex_lock(&ev->lock);
    json_array_clear(ev->history);
    pthread_mutex_unlock(&ev->lock);
}

long events_pending(struct events *ev)
{
    long n = 0;

    pthread_mutex_lock(&ev->lock);
    for (size_t i = 0; i < ev->len; i++) {
        if (ev->heap[i].kind == EV_CALLBACK)
            n++;
    }
    n += ev->in_flight;
    pthread_mutex_unlock(&ev->lock);
    return n;
}
