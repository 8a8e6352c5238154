/* worker/listener.h - the HTTP listener at KURIR_HTTP_LISTEN: provider
 * callbacks, /healthz, /readyz and /metrics (CONTRACT §5).
 *
 * libmicrohttpd serves connections on its own thread. Health and metrics
 * are answered there from what the loop last published. A provider callback
 * (/callbacks/<account>/status or /inbound, with the account's token as
 * ?token=) is checked there, then handed to the loop as a struct hook and
 * its connection suspended; the loop reads it with the account's codec,
 * puts its events on Kafka and answers with hook_answer() once Kafka has
 * them, so the provider retries whatever kurir could not keep. */
#ifndef WORKER_LISTENER_H
#define WORKER_LISTENER_H

#include <stdbool.h>
#include <stddef.h>

#include "codecs/codec.h"
#include "worker/accounts.h"
#include "worker/config.h"

/* Who produced an event, so Kafka's acknowledgement finds its way back.
 * The first member of struct task and struct hook. */
enum event_owner {
    OWNER_TASK,
    OWNER_HOOK,
};

/* A provider callback travelling from the listener's thread to the loop
 * and back. */
struct hook {
    enum event_owner owner;     /* OWNER_HOOK; must stay first */
    const struct account *acct; /* the account named in the path */
    enum callback_kind kind;    /* status or inbound */
    struct http_inbound in;     /* method, query, content type, body */
    int pending_events;         /* loop: produced, not yet acknowledged */
    bool failed;                /* loop: an event could not be kept */
    int answer_status;          /* loop: what to answer once events are in */
    char answer_body[CODEC_ID_MAX];
    const char *answer_type;
    struct hook *next;      /* the inbox */
    void *conn;             /* the suspended connection */
    void *req;              /* its request state (listener.c) */
    char *query;            /* owned storage behind in.query */
    char *body;             /* owned storage behind in.body */
    char content_type[128]; /* storage behind in.content_type */
    char method[8];         /* storage behind in.method */
};

struct listener;

/* Answers a probe: is the named dependency reachable? Called from the
 * listener's thread. */
typedef bool listener_probe_fn(void *opaque);

/* Starts listening on cfg->http_listen ("host:port"; port 0 picks one).
 * `accounts` is borrowed and must outlive the listener. `kafka_ready` is
 * asked on /readyz (from the listener's thread). Logs "listening on
 * HOST:PORT". Returns 0 and sets *out, or -1 with errstr set. */
int listener_start(struct listener **out, const struct config *cfg,
                   const struct accounts *accounts,
                   listener_probe_fn *kafka_ready, void *opaque, char *errstr,
                   size_t errstr_size);

/* Returns a file descriptor that becomes readable when callbacks wait. */
int listener_wake_fd(const struct listener *l);

/* Returns the next waiting callback (the loop now owns it until
 * hook_answer), or NULL. Drains the wake-up descriptor. */
struct hook *listener_take(struct listener *l);

/* Answers a callback with status, body and content type, resumes its
 * connection and frees the hook. Callable from the loop thread only. */
void hook_answer(struct listener *l, struct hook *h, int status,
                 const char *body, const char *content_type);

/* Publishes what /readyz and /metrics report: whether Redis answered last
 * time, and the metrics text (copied, whatever its size). */
void listener_publish(struct listener *l, bool redis_ok, const char *metrics);

/* Answers every callback still waiting with 503 (the provider retries) and
 * stops the listener. listener_stop(NULL) does nothing. */
void listener_stop(struct listener *l);

#endif /* WORKER_LISTENER_H */
