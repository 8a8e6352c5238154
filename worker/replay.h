/* worker/replay.h - `kurir replay`: DLQ entries back to their source topic.
 *
 * Reads KURIR_TOPIC_DLQ from a start offset (each partition) up to the end
 * it had when the command started, and for each chosen entry produces its
 * value, its key and its headers (kurir-* removed) to the topic named by its
 * kurir-source-topic header. Then waits until Kafka has every copy and
 * exits. It commits nothing and joins no consumer group, so running it
 * twice sends twice: choose with --from-offset, --max and --id. */
#ifndef WORKER_REPLAY_H
#define WORKER_REPLAY_H

#include <stdint.h>
#include <stdio.h>

#include "worker/config.h"

struct replay_opts {
    int32_t partition;   /* -1: every partition */
    int64_t from_offset; /* -1: from the beginning */
    int64_t to_offset;   /* -1: to the end at start; else up to, excluded */
    long max;            /* 0: no limit */
    const char *id;      /* NULL, or only entries of this job id */
    int dry_run;         /* print what would be sent, send nothing */
};

/* Runs the replay with cfg's brokers, Kafka properties and DLQ topic,
 * printing one line per entry to `out`. Returns 0 when every chosen entry
 * was sent (or there was none), 1 when some could not be (each named on
 * out), or -1 with errstr set when the DLQ could not be read at all. */
int replay_run(const struct config *cfg, const struct replay_opts *opts,
               FILE *out, char *errstr, size_t errstr_size);

/* Parses replay's command line (argv[0] is "replay"). Returns 0, or -1 with
 * errstr naming the bad argument. */
int replay_parse_args(struct replay_opts *opts, int argc, char **argv,
                      char *errstr, size_t errstr_size);

#endif /* WORKER_REPLAY_H */
