/* tests/support/support.h - what the tests share: the services tests/run
 * starts, child processes that announce their port, deadlines, and a small
 * HTTP client.
 *
 * Services: tests/run exports KURIR_TEST_REDIS (host:port) and
 * KURIR_TEST_KAFKA (bootstrap servers). When one is unset a test that needs it
 * is skipped, unless KURIR_TEST_REQUIRE=1, when it fails instead. */
#ifndef TESTS_SUPPORT_SUPPORT_H
#define TESTS_SUPPORT_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Returns "host:port" of the test Redis, or skips (fails under
 * KURIR_TEST_REQUIRE=1) the current test. */
const char *support_redis(void);

/* Returns the test Kafka bootstrap servers, or skips (fails) the test. */
const char *support_kafka(void);

/* Returns the value of environment variable `name` (set by CTest, e.g.
 * KURIR_BIN, KURIR_STANDIN, FIXTURES); fails the test when unset. */
const char *support_env(const char *name);

/* Returns a TCP port on 127.0.0.1 that nothing listened on a moment ago. */
int support_free_port(void);

/* Monotonic milliseconds. */
int64_t support_now_ms(void);

/* Evaluates `cond` every 10 ms until it holds or `timeout_ms` pass; yields
 * its final value. Never a fixed sleep: it returns as soon as cond holds. */
/* Sets `ok` to whether `cond` came to hold within timeout_ms, evaluating it
 * every 10 ms. Never a fixed sleep: it stops as soon as cond holds.
 *     bool ok;
 *     POLL_UNTIL(ok, count_events() == 3, 5000);
 *     cr_assert(ok, "...");                                               */
#define POLL_UNTIL(ok, cond, timeout_ms)                          \
    do {                                                          \
        int64_t poll_deadline_ = support_now_ms() + (timeout_ms); \
        for (;;) {                                                \
            if (cond) {                                           \
                (ok) = true;                                      \
                break;                                            \
            }                                                     \
            if (support_now_ms() >= poll_deadline_) {             \
                (ok) = false;                                     \
                break;                                            \
            }                                                     \
            support_sleep_ms(10);                                 \
        }                                                         \
    } while (0)

/* Sleeps; only POLL_UNTIL uses it, between checks. */
void support_sleep_ms(int ms);

/* A child process. Its stdout and stderr go to `log_path` (in /tmp), which
 * support_proc_log() returns. */
struct proc {
    pid_t pid;
    int port; /* from its "listening on HOST:PORT" line */
    char log_path[256];
};

/* Starts argv[0] with argv and, added to the environment, `env` (NULL or a
 * NULL-ended list of "NAME=value"). When `wait_listen` is true, waits up to
 * timeout_ms for a line containing "listening on HOST:PORT" in its output
 * and sets out->port. Returns 0, or -1 (the child is then stopped and its
 * log printed to stderr). */
int support_spawn(struct proc *out, char *const argv[], char *const env[],
                  bool wait_listen, int timeout_ms);

/* Sends `sig` to the child, waits up to timeout_ms for it to exit (then
 * SIGKILL) and returns its exit status as waitpid gives it, or -1. */
int support_stop(struct proc *p, int sig, int timeout_ms);

/* Returns true when the child has written `needle` to its output. */
bool support_proc_log_has(const struct proc *p, const char *needle);

/* Prints the child's output to stderr (for failing tests). */
void support_proc_log_dump(const struct proc *p);

/* A loopback HTTP exchange (libcurl underneath). Body bytes may be
 * anything; `body` is NUL-terminated and malloc'd. */
struct support_http {
    long status;
    char *body;
    size_t body_len;
    char content_type[128];
    char headers[4096]; /* raw response header lines, cut at the size */
};

/* Makes one request. `headers` is NULL or a NULL-ended list of "Name: v".
 * Times out after 10 s. Returns 0 with *out filled (free with
 * support_http_cleanup), or -1 when
 * no answer came. */
int support_http(struct support_http *out, const char *method, const char *url,
                 char *const headers[], const char *body, size_t body_len);
/* The same with its own timeout: -1 also when no answer came within
 * timeout_ms. */
int support_http_timeout(struct support_http *out, const char *method,
                         const char *url, char *const headers[],
                         const char *body, size_t body_len, long timeout_ms);
void support_http_cleanup(struct support_http *r);

/* Reads a whole file (fixtures); returns malloc'd NUL-terminated bytes and
 * sets *len, or NULL. */
char *support_read_file(const char *path, size_t *len);

#endif /* TESTS_SUPPORT_SUPPORT_H */
