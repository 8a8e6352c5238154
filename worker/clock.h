/* worker/clock.h - the worker's two clocks. */
#ifndef WORKER_CLOCK_H
#define WORKER_CLOCK_H

#include <stdint.h>

/* Monotonic milliseconds: for waits and timeouts within one process. */
int64_t worker_now_ms(void);

/* The same clock in microseconds: for measuring short spans. */
int64_t worker_now_us(void);

/* Wall-clock Unix milliseconds: for times kept in Redis and shared by
 * replicas (send_at, retry horizons, poll times). */
int64_t worker_wall_ms(void);

#endif /* WORKER_CLOCK_H */
