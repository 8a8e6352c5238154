/* tests/support/schema.c - see schema.h. */
#include "tests/support/schema.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

int schema_check(const char *name, json_t *docs)
{
    const char *src = getenv("KURIR_SOURCE_DIR");
    char cmd[4096];

    if (!json_is_array(docs) || src == NULL || *src == '\0')
        return -1;
    if (json_array_size(docs) == 0)
        return 0;
    /* The validator's report goes to stderr, where Criterion shows it. */
    int n = snprintf(cmd, sizeof(cmd), "'%s/tests/schemas/validate' '%s' 1>&2",
                     src, name);
    if (n < 0 || (size_t)n >= sizeof(cmd))
        return -1;
    /* A validator that refused its arguments has closed the pipe: a write
     * then fails instead of killing the test. */
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    FILE *p = popen(cmd, "w");
    if (p == NULL) {
        signal(SIGPIPE, old);
        return -1;
    }
    size_t i;
    json_t *doc;
    json_array_foreach(docs, i, doc)
    {
        json_dumpf(doc, p, JSON_COMPACT);
        fputc('\n', p);
    }
    int st = pclose(p);
    signal(SIGPIPE, old);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    switch (WEXITSTATUS(st)) {
    case 0:
        return 0;
    case 1:
        return 1;
    default:
        return -1;
    }
}
