/* worker/failpoint.h - named points where a drill kills the worker.
 *
 * failpoint("after_mark") does nothing in a production build. Built with
 * the CMake option FAILPOINTS=ON (tests/run's build), it raises SIGKILL on
 * the process when KURIR_FAILPOINT names that point: "after_mark" kills at
 * its first hit, "after_mark:N" at its Nth. The drills (tests/drills/) use
 * it to stop a replica at an exact stage of a unit; docs/worker.md lists the
 * points. */
#ifndef WORKER_FAILPOINT_H
#define WORKER_FAILPOINT_H

#ifdef KURIR_FAILPOINTS
/* Kills the process with SIGKILL when KURIR_FAILPOINT names `name` and this
 * is the hit it counts to; otherwise returns. */
void failpoint_hit(const char *name);
#define failpoint(name) failpoint_hit(name)
#else
#define failpoint(name) ((void)0)
#endif

#endif /* WORKER_FAILPOINT_H */
