/* worker/rand.h - a random source seeded per process.
 *
 * Retry jitter must differ between replicas, or every replica retries in
 * lock-step after an outage. rand() without srand() gives every process the
 * same sequence; worker_rand32() is seeded on first use from getrandom()
 * (the pid and both clocks mixed in, and alone when getrandom fails).
 * Not for secrets. Loop thread only (no locking). */
#ifndef WORKER_RAND_H
#define WORKER_RAND_H

#include <stdint.h>

/* Returns the next 32 random bits (xorshift128+, seeded on first use). */
uint32_t worker_rand32(void);

/* Seeds the source again from `seed` (tests); 0 re-seeds from the system. */
void worker_rand_seed(uint64_t seed);

#endif /* WORKER_RAND_H */
