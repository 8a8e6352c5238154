/* worker/rand.c - a random source seeded per process. See rand.h. */
#include "worker/rand.h"

#include <stdbool.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static uint64_t rand_s[2];
static bool rand_seeded;

/* splitmix64: spreads a seed over the whole state. */
static uint64_t rand_mix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void worker_rand_seed(uint64_t seed)
{
    if (seed == 0) {
        struct timespec mono, wall;
        uint64_t sys = 0;
        clock_gettime(CLOCK_MONOTONIC, &mono);
        clock_gettime(CLOCK_REALTIME, &wall);
        if (getrandom(&sys, sizeof(sys), GRND_NONBLOCK) != (ssize_t)sizeof(sys))
            sys = 0;
        seed = sys ^ ((uint64_t)getpid() << 32) ^
               (uint64_t)mono.tv_nsec * 0x2545f4914f6cdd1dULL ^
               (uint64_t)wall.tv_sec ^ ((uint64_t)wall.tv_nsec << 20);
    }
    rand_s[0] = rand_mix(&seed);
    rand_s[1] = rand_mix(&seed);
    if (rand_s[0] == 0 && rand_s[1] == 0)
        rand_s[1] = 1;
    rand_seeded = true;
}

uint32_t worker_rand32(void)
{
    if (!rand_seeded)
        worker_rand_seed(0);
    uint64_t s1 = rand_s[0];
    const uint64_t s0 = rand_s[1];
    rand_s[0] = s0;
    s1 ^= s1 << 23;
    rand_s[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return (uint32_t)((rand_s[1] + s0) >> 32);
}
