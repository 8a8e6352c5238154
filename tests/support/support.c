/* tests/support/support.c - services, child processes, deadlines and a small
 * HTTP client for the tests. See support.h. */
#include "tests/support/support.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <curl/curl.h>

extern char **environ;

static const char *support_service(const char *var, const char *what)
{
    const char *v = getenv(var);

    if (v != NULL && *v != '\0')
        return v;
    const char *req = getenv("KURIR_TEST_REQUIRE");
    if (req != NULL && strcmp(req, "1") == 0)
        cr_fatal("%s is not set: tests/run starts %s", var, what);
    cr_skip_test("%s is not set (run through tests/run to start %s)", var,
                 what);
    return NULL;
}

const char *support_redis(void)
{
    return support_service("KURIR_TEST_REDIS", "redis-server");
}

const char *support_kafka(void)
{
    return support_service("KURIR_TEST_KAFKA", "a Kafka broker");
}

const char *support_env(const char *name)
{
    const char *v = getenv(name);

    if (v == NULL || *v == '\0')
        cr_fatal("%s is not set (CTest sets it)", name);
    return v;
}

int support_free_port(void)
{
    /* Below Linux's ephemeral range (32768-60999): a port the kernel hands
     * out there can be taken by any outgoing connection (kurir's, Kafka's)
     * before the server that was to listen on it binds it. Ports are drawn
     * at random and checked bindable; two tests drawing the same port at
     * the same moment are the remaining (rare) race. */
    static bool seeded;
    if (!seeded) {
        srand((unsigned)getpid() ^ (unsigned)support_now_ms());
        seeded = true;
    }
    for (int attempt = 0; attempt < 1000; attempt++) {
        int port = 20000 + rand() % 12000;
        struct sockaddr_in addr = {.sin_family = AF_INET,
                                   .sin_port = htons((uint16_t)port)};
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        cr_assert(fd >= 0, "socket: %s", strerror(errno));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int r = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
        close(fd);
        if (r == 0)
            return port;
    }
    cr_assert(false, "no free port below the ephemeral range");
    return -1;
}

int64_t support_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void support_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

char *support_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    size_t n = 0, cap = 0;

    if (f == NULL)
        return NULL;
    for (;;) {
        if (cap - n < 4096) {
            cap = cap ? cap * 2 : 8192;
            data = realloc(data, cap + 1);
            cr_assert(data != NULL);
        }
        size_t got = fread(data + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    data[n] = '\0';
    if (len != NULL)
        *len = n;
    return data;
}

/* Returns the port of the first "listening on HOST:PORT" line, or 0. */
static int support_log_port(const char *path)
{
    char *log = support_read_file(path, NULL);
    int port = 0;

    if (log == NULL)
        return 0;
    const char *p = strstr(log, "listening on ");
    if (p != NULL) {
        const char *eol = strchr(p, '\n');
        const char *colon = NULL;
        for (const char *q = p; *q != '\0' && q != eol; q++)
            if (*q == ':')
                colon = q;
        if (colon != NULL && eol != NULL)
            port = (int)strtol(colon + 1, NULL, 10);
    }
    free(log);
    return port;
}

int support_spawn(struct proc *out, char *const argv[], char *const env[],
                  bool wait_listen, int timeout_ms)
{
    static unsigned seq;
    struct proc p = {0};

    snprintf(p.log_path, sizeof(p.log_path), "/tmp/kurir-test-%d-%u.log",
             (int)getpid(), seq++);
    /* Emptied before the fork: a file left by an earlier process with the
     * same pid must not be read for this child's "listening on" line. */
    int fd = open(p.log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert(fd >= 0, "%s: %s", p.log_path, strerror(errno));
    fflush(NULL);
    p.pid = fork();
    cr_assert(p.pid >= 0, "fork: %s", strerror(errno));
    if (p.pid == 0) {
        /* If the test dies (a CTest timeout kills it), so does the child:
         * no server outlives its test. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        /* The child sees the test's environment less the variables that
         * only tests know (kurir refuses unknown KURIR_* settings). */
        for (size_t i = 0; environ[i] != NULL;) {
            if (strncmp(environ[i], "KURIR_TEST_", 11) == 0 ||
                strncmp(environ[i], "KURIR_BIN=", 10) == 0 ||
                strncmp(environ[i], "KURIR_STANDIN=", 14) == 0 ||
                strncmp(environ[i], "KURIR_SOURCE_DIR=", 17) == 0) {
                char name[128];
                size_t n = strcspn(environ[i], "=");
                snprintf(name, sizeof(name), "%.*s", (int)n, environ[i]);
                unsetenv(name);
            } else {
                i++;
            }
        }
        for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
            char name[128];
            size_t n = strcspn(env[i], "=");
            snprintf(name, sizeof(name), "%.*s", (int)n, env[i]);
            setenv(name, env[i][n] ? env[i] + n + 1 : "", 1);
        }
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fd);
    if (wait_listen) {
        int64_t deadline = support_now_ms() + timeout_ms;
        while ((p.port = support_log_port(p.log_path)) == 0) {
            int status;
            if (waitpid(p.pid, &status, WNOHANG) == p.pid ||
                support_now_ms() > deadline) {
                fprintf(stderr, "%s did not start listening\n", argv[0]);
                support_proc_log_dump(&p);
                support_stop(&p, SIGKILL, 1000);
                return -1;
            }
            support_sleep_ms(10);
        }
    }
    *out = p;
    return 0;
}

int support_stop(struct proc *p, int sig, int timeout_ms)
{
    int status;

    if (p->pid <= 0)
        return -1;
    kill(p->pid, sig);
    int64_t deadline = support_now_ms() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(p->pid, &status, WNOHANG);
        if (r == p->pid)
            break;
        if (r < 0) {
            p->pid = 0;
            return -1;
        }
        if (support_now_ms() > deadline) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
            break;
        }
        support_sleep_ms(10);
    }
    p->pid = 0;
    return status;
}

bool support_proc_log_has(const struct proc *p, const char *needle)
{
    char *log = support_read_file(p->log_path, NULL);
    bool found = log != NULL && strstr(log, needle) != NULL;

    free(log);
    return found;
}

void support_proc_log_dump(const struct proc *p)
{
    char *log = support_read_file(p->log_path, NULL);

    fprintf(stderr, "---- %s ----\n%s\n---- end ----\n", p->log_path,
            log ? log : "(no output)");
    free(log);
}

struct support_body {
    char *data;
    size_t len;
};

static size_t support_write_cb(char *ptr, size_t size, size_t nmemb,
                               void *opaque)
{
    struct support_body *b = opaque;
    size_t n = size * nmemb;
    char *data = realloc(b->data, b->len + n + 1);

    if (data == NULL)
        return 0;
    memcpy(data + b->len, ptr, n);
    b->data = data;
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* Keeps the raw response header lines, as far as they fit. */
static size_t support_header_cb(char *ptr, size_t size, size_t nmemb,
                                void *opaque)
{
    struct support_http *r = opaque;
    size_t n = size * nmemb;
    size_t have = strlen(r->headers);

    if (have + n < sizeof(r->headers)) {
        memcpy(r->headers + have, ptr, n);
        r->headers[have + n] = '\0';
    }
    return n;
}

int support_http(struct support_http *out, const char *method, const char *url,
                 char *const headers[], const char *body, size_t body_len)
{
    return support_http_timeout(out, method, url, headers, body, body_len,
                                10000);
}

int support_http_timeout(struct support_http *out, const char *method,
                         const char *url, char *const headers[],
                         const char *body, size_t body_len, long timeout_ms)
{
    CURL *easy = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    struct support_body b = {0};
    int ret = -1;

    cr_assert(easy != NULL);
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
        hdrs = curl_slist_append(hdrs, headers[i]);
    /* No "Expect: 100-continue" round trip on large bodies. */
    hdrs = curl_slist_append(hdrs, "Expect:");
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, support_write_cb);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, support_header_cb);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, out);
    if (body != NULL) {
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long)body_len);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
    }
    if (curl_easy_perform(easy) != CURLE_OK)
        goto out;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &out->status);
    char *ct = NULL;
    curl_easy_getinfo(easy, CURLINFO_CONTENT_TYPE, &ct);
    if (ct != NULL)
        snprintf(out->content_type, sizeof(out->content_type), "%s", ct);
    if (b.data == NULL)
        b.data = calloc(1, 1);
    out->body = b.data;
    out->body_len = b.len;
    b.data = NULL;
    ret = 0;

out:
    free(b.data);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(easy);
    return ret;
}

void support_http_cleanup(struct support_http *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}
