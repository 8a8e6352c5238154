/* tests/standin/harness.h - what the stand-in's own tests share: a running
 * kurir-standin, HTTP calls to it (with response headers) and a callback
 * receiver that answers right or wrong on demand. */
#ifndef TESTS_STANDIN_HARNESS_H
#define TESTS_STANDIN_HARNESS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* Starts kurir-standin on a free loopback port with fixtures/accounts.json
 * (short delivery and retry times); h_stop stops it and checks it exits 0.
 * Meant as a Criterion suite's .init and .fini. */
void h_start(void);
void h_stop(void);

/* Same as h_start with extra command-line arguments (NULL-ended). */
void h_start_args(char *const extra[]);

/* The stand-in's port. */
int h_port(void);

struct h_resp {
    long status;
    char *body; /* NUL-terminated, malloc'd */
    size_t len;
    char headers[4096]; /* raw response header lines */
};

/* Calls the stand-in: method, path (with query), NULL-ended extra header
 * lines, body (NULL for none). Returns 0, or -1 when no answer came (the
 * connection was closed, reset or timed out after timeout_ms). */
int h_call(struct h_resp *r, const char *method, const char *path,
           char *const headers[], const char *body, size_t len,
           long timeout_ms);

/* Same, but fails the test when no answer comes. */
void h_must(struct h_resp *r, const char *method, const char *path,
            char *const headers[], const char *body, size_t len);

/* Copies response header `name` (case-insensitive) into out; returns out,
 * or NULL when absent. */
const char *h_header(const struct h_resp *r, const char *name, char *out,
                     size_t out_size);

void h_free(struct h_resp *r);

/* Parses the response body as JSON; fails the test when it is not. */
json_t *h_body_json(const struct h_resp *r);

/* A control call: asserts status 200 and returns the parsed answer. */
json_t *h_control(const char *method, const char *path, const char *body);

/* Provider calls with the fixture accounts' credentials. */
void h_jojka(struct h_resp *r, const char *endpoint, const char *form);
void h_intime(struct h_resp *r, const char *endpoint, const char *xml,
              size_t len);
void h_ip1(struct h_resp *r, const char *method, const char *path,
           const char *json);

/* Returns the body of fixture file `name` (malloc'd) and its length. */
char *h_fixture(const char *name, size_t *len);

/* Returns s with the first occurrence of `from` replaced by `to`
 * (malloc'd); fails the test when `from` is absent. */
char *h_replace(const char *s, const char *from, const char *to);

/* A loopback HTTP server that records calls and answers them. */
enum recv_mode {
    RECV_200,    /* 200, empty body (iP.1) */
    RECV_OK,     /* 200 "OK" (iP.1 legacy inbound) */
    RECV_ECHO_ID /* 200 and the posted messageid (InTime) */
};

struct receiver;

/* Starts a receiver whose first `fail_first` calls get a wrong answer (500
 * for RECV_200, 200 "ERROR" otherwise). */
struct receiver *recv_start(enum recv_mode mode, int fail_first);
/* "http://127.0.0.1:PORT/cb?token=t" */
const char *recv_url(const struct receiver *rv);
int recv_count(struct receiver *rv);
/* Call i: {"method", "uri", "body"} (new reference). */
json_t *recv_call(struct receiver *rv, int i);
void recv_stop(struct receiver *rv);

/* Polls until `n` callbacks have arrived at rv, or fails the test. */
void recv_wait(struct receiver *rv, int n, int timeout_ms);

#endif /* TESTS_STANDIN_HARNESS_H */
