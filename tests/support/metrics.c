/* tests/support/metrics.c - scrape, promtool, read a sample. See metrics.h. */
#include "tests/support/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "tests/support/support.h"

char *support_metrics_scrape(int port)
{
    struct support_http r;
    char url[64];

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
    cr_assert(eq(int, support_http(&r, "GET", url, NULL, NULL, 0), 0),
              "no answer from %s", url);
    cr_assert(eq(long, r.status, 200L), "%s answered %ld", url, r.status);
    char *page = r.body;
    r.body = NULL;
    support_http_cleanup(&r);
    return page;
}

void support_metrics_promtool(const char *page)
{
    char path[] = "/tmp/kurir-metrics-XXXXXX";
    char cmd[128], out[8192];

    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        const char *req = getenv("KURIR_TEST_REQUIRE");
        cr_assert(req == NULL || strcmp(req, "1") != 0,
                  "promtool is not installed (apt-get install prometheus)");
        cr_skip_test("promtool is not installed");
    }
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    size_t len = strlen(page);
    cr_assert(eq(long, (long)write(fd, page, len), (long)len));
    close(fd);
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
    FILE *p = popen(cmd, "r");
    cr_assert(p != NULL);
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    unlink(path);
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && n == 0;
    cr_assert(ok, "promtool check metrics (status %d):\n%s", status, out);
}

double support_metric(const char *page, const char *name, const char *labels)
{
    char want[512];

    if (labels != NULL && labels[0] != '\0')
        snprintf(want, sizeof(want), "%s{%s} ", name, labels);
    else
        snprintf(want, sizeof(want), "%s ", name);
    size_t wl = strlen(want);
    for (const char *line = page; *line != '\0';) {
        if (strncmp(line, want, wl) == 0)
            return strtod(line + wl, NULL);
        const char *nl = strchr(line, '\n');
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    return 0;
}
