/* worker/failpoint.c - SIGKILL at a named point, for the drills. See
 * failpoint.h. Compiled only with FAILPOINTS=ON. */
#include "worker/failpoint.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The point KURIR_FAILPOINT names, read once; "" when none. The worker is
 * one thread, so the counter needs no lock. */
static char fp_name[64];
static long fp_left = -1; /* hits to go; -1: not read yet */

static void failpoint_load(void)
{
    const char *spec = getenv("KURIR_FAILPOINT");
    const char *colon;
    size_t len;

    fp_left = 0;
    if (spec == NULL || spec[0] == '\0')
        return;
    colon = strchr(spec, ':');
    len = colon != NULL ? (size_t)(colon - spec) : strlen(spec);
    if (len >= sizeof(fp_name))
        return;
    memcpy(fp_name, spec, len);
    fp_name[len] = '\0';
    fp_left = colon != NULL ? strtol(colon + 1, NULL, 10) : 1;
    if (fp_left < 1)
        fp_left = 1;
}

void failpoint_hit(const char *name)
{
    if (fp_left < 0)
        failpoint_load();
    if (fp_left == 0 || strcmp(name, fp_name) != 0)
        return;
    if (--fp_left > 0)
        return;
    /* One line a drill can wait for, then no cleanup at all. */
    fprintf(stderr, "failpoint: %s: killing myself\n", name);
    fflush(stderr);
    raise(SIGKILL);
}
