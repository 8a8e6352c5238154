/* tests/worker/test_rand.c - replicas draw different retry jitter. */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "worker/rand.h"

/* Draws 8 numbers in a fresh child process (a replica starting) and
 * returns them through a pipe. */
static void draw_in_child(uint32_t out[8])
{
    int fds[2];
    cr_assert(pipe(fds) == 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        uint32_t v[8];
        for (int i = 0; i < 8; i++)
            v[i] = worker_rand32();
        ssize_t n = write(fds[1], v, sizeof(v));
        _exit(n == (ssize_t)sizeof(v) ? 0 : 1);
    }
    close(fds[1]);
    ssize_t n = read(fds[0], out, 8 * sizeof(uint32_t));
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    cr_assert(n == (ssize_t)(8 * sizeof(uint32_t)) && WIFEXITED(status) &&
              WEXITSTATUS(status) == 0);
}

Test(rand, two_processes_draw_different_sequences)
{
    /* Criterion's test process has not drawn yet, so each child seeds on
     * its own first draw, as each replica does. */
    uint32_t a[8], b[8];
    draw_in_child(a);
    draw_in_child(b);
    cr_assert(memcmp(a, b, sizeof(a)) != 0,
              "two processes drew the same sequence");
}

Test(rand, a_fixed_seed_repeats_and_values_spread)
{
    uint32_t first[4];
    worker_rand_seed(42);
    for (int i = 0; i < 4; i++)
        first[i] = worker_rand32();
    worker_rand_seed(42);
    for (int i = 0; i < 4; i++)
        cr_assert(worker_rand32() == first[i]);

    /* Both halves of the range come up: no stuck high bit. */
    int high = 0;
    for (int i = 0; i < 1000; i++)
        high += worker_rand32() >> 31;
    cr_assert(high > 400 && high < 600, "high bit set %d/1000 times", high);
}
