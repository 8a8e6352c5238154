/* worker/http.h - provider requests over one curl multi handle.
 *
 * http_submit() starts a request and returns at once; http_wait() sleeps
 * until one of curl's sockets, curl's timer or one of the extra file
 * descriptors (Kafka's wake-up pipe, Redis) has something; http_perform()
 * acts on the sockets that were ready (curl's socket interface: the cost of
 * a turn follows the transfers that moved, not those in flight) and calls
 * each ended request's done callback exactly once, on the loop thread.
 * Connections are kept alive and reused per provider host. Every response body
 * is bounded by HTTP_MAX_BODY: a larger one fails the request. */
#ifndef WORKER_HTTP_H
#define WORKER_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "codecs/codec.h"
#include "worker/config.h"

#define HTTP_MAX_BODY (256 * 1024)

struct http;

/* The end of a request. `resp` is borrowed for the call's duration; when no
 * answer came (timeout, refused connection) resp->status is 0 and `error`
 * says why; otherwise error is NULL. `maybe_sent` tells, when no answer
 * came, whether the provider may have received the request all the same
 * (false only when curl never started sending it): only then is a retry
 * safe from double sends. */
typedef void http_done_fn(const struct http_response *resp, const char *error,
                          bool maybe_sent, void *opaque);

/* Returns a new client, or NULL with errstr set. */
struct http *http_new(const struct config *cfg, char *errstr,
                      size_t errstr_size);

/* Frees the client, aborting transfers without calling their callbacks.
 * http_free(NULL) does nothing. */
void http_free(struct http *http);

/* Starts `req` (borrowed only for this call: everything is copied). Returns
 * 0, or -1 with errstr set (done is then not called). */
int http_submit(struct http *http, const struct http_request *req,
                http_done_fn *done, void *opaque, char *errstr,
                size_t errstr_size);

/* A descriptor to wait on beside the transfers: events and revents are
 * poll(2) bits (POLLIN, POLLOUT). */
struct http_waitfd {
    int fd;
    short events;
    short revents; /* out */
};

#define HTTP_MAX_WAITFDS 4

/* Waits up to timeout_ms for transfer activity or for one of the `nfds`
 * descriptors in `fds` (at most HTTP_MAX_WAITFDS) to be ready; sets each
 * one's revents. */
void http_wait(struct http *http, struct http_waitfd *fds, unsigned nfds,
               int timeout_ms);

/* Drives transfers and calls the callbacks of those that ended. */
void http_perform(struct http *http);

/* Called from a done callback: returns how long the transfer being
 * reported took, in seconds, from its start (name lookup, connect) to its
 * end (last byte, error or timeout); for
 * kurir_provider_request_duration_seconds. Outside a callback it returns
 * the last reported transfer's time. */
double http_done_seconds(const struct http *http);

/* Returns the number of requests in flight. */
size_t http_in_flight(const struct http *http);

#endif /* WORKER_HTTP_H */
