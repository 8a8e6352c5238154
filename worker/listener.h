/* worker/listener.h - the HTTP listener at KURIR_HTTP_LISTEN: provider
 * callbacks, /healthz, /readyz and /metrics (CONTRACT §5). With
 * KURIR_ADMIN_LISTEN set, /healthz, /readyz and /metrics move to that
 * address and KURIR_HTTP_LISTEN serves only /callbacks/. Addresses are
 * "IPv4:port" or "[IPv6]:port" ("[::]" is dual-stack where the host
 * allows).
 *
 * /healthz answers from a heartbeat the loop writes each turn
 * (listener_heartbeat, or any publish): 503 once it is older than
 * KURIR_HEALTH_STALL_MS, so a hung loop fails liveness while this thread
 * still answers. Connections are bounded (count, per client address, idle
 * timeout KURIR_HTTP_CONN_TIMEOUT_S) and so are callbacks waiting for the
 * loop (503 beyond).
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
#include <stdint.h>
#include <sys/socket.h>

#include "codecs/codec.h"
#include "worker/accounts.h"
#include "worker/config.h"

/* Who produced an event, so Kafka's acknowledgement finds its way back,
 * or who waits on the loop's timers (worker/park.h): the first member of
 * struct task, struct hook, struct pollreq and a callback's status update
 * waiting to be recorded (worker/hooks.c). */
enum event_owner {
    OWNER_TASK,
    OWNER_HOOK,
    OWNER_POLL,
    OWNER_HOOK_RECORD,
};

/* A provider callback travelling from the listener's thread to the loop
 * and back. */
struct hook {
    enum event_owner owner;     /* OWNER_HOOK; must stay first */
    const struct account *acct; /* the account named in the path */
    enum callback_kind kind;    /* status or inbound */
    struct http_inbound in;     /* method, query, content type, body */
    int pending_events;         /* loop: produced, not yet acknowledged */
    int pending_records;        /* loop: being recorded in Redis */
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
    int64_t handed_ms;      /* monotonic: when it was handed to the loop */
    bool expired; /* answered 503 by listener_expire; the loop still owns
                   * it, and hook_answer() only frees it */
};

/* How long a callback may wait for its events to be on Kafka before
 * listener_expire() answers it 503 (the provider sends it again). */
#define LISTENER_HOOK_WAIT_MS 8000

struct listener;

/* Answers a probe: is the named dependency reachable? Called from the
 * listener's thread. */
typedef bool listener_probe_fn(void *opaque);

/* Starts listening on cfg->http_listen ("host:port"; port 0 picks one).
 * `accounts` is borrowed and must outlive the listener. `kafka_ready`
 * (may be NULL: not ready) answers /readyz, from the listener's thread,
 * only until the loop first publishes Kafka's state (kurir run passes NULL
 * and publishes from its first turn on). Logs "listening on
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

/* Answers 503 every callback the loop took more than LISTENER_HOOK_WAIT_MS
 * ago and has not answered (its events are not on Kafka yet), so callbacks
 * never pile up while Kafka is away; the loop keeps the hook until its
 * events are done and then calls hook_answer(), which only frees it.
 * Returns how many were answered now. Loop thread only. */
size_t listener_expire(struct listener *l);

/* Returns how many callbacks wait for an answer now. */
size_t listener_suspended(struct listener *l);

/* What the loop publishes for /readyz and /metrics. */
struct listener_state {
    bool redis_ok;          /* Redis answered last time */
    const char *redis_note; /* not NULL: Redis is not ready for this
                             * reason ("came back empty"), copied */
    bool kafka_known;       /* kafka_ok is set (else /readyz asks the probe) */
    bool kafka_ok;          /* Kafka is ready (kafka_is_ready, on the loop) */
    const char *metrics;    /* the metrics text, copied; NULL = "" */
};

/* Publishes the loop's state (copied) and beats the heartbeat. Loop thread;
 * once per turn. With kafka_known set, /readyz never calls Kafka from the
 * listener's thread. */
void listener_publish_state(struct listener *l,
                            const struct listener_state *st);

/* The old form of listener_publish_state (Kafka state not published):
 * kept until the loop moves to the struct. */
void listener_publish(struct listener *l, bool redis_ok, const char *metrics);

/* Records that the loop turned now (monotonic); /healthz fails when the
 * last beat is older than KURIR_HEALTH_STALL_MS. Any thread; lock-free. */
void listener_heartbeat(struct listener *l);

/* Returns the bound port of the webhook listener, or with `admin` of the
 * admin listener (the webhook one when there is none). */
unsigned listener_port(const struct listener *l, bool admin);

/* Parses "a.b.c.d:port" or "[v6]:port" into *out, the host part into
 * host. Returns 0, or -1 when it is neither. */
int listener_parse_addr(struct sockaddr_storage *out, const char *s, char *host,
                        size_t host_size);

/* Answers every callback still waiting with 503 (the provider retries) and
 * stops the listener. listener_stop(NULL) does nothing. */
void listener_stop(struct listener *l);

#endif /* WORKER_LISTENER_H */
