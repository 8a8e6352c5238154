/* ratelimit/rargv.h - the arguments of one Redis call, built up piece by
 * piece: what the blocking rconn and the asynchronous aredis both send.
 * A module builds a call's arguments once (keys, then ARGV) and either
 * runs it at once or queues it; the strings it adds are copied. */
#ifndef RATELIMIT_RARGV_H
#define RATELIMIT_RARGV_H

#include <stddef.h>
#include <stdint.h>

struct rargv {
    const char **v; /* the arguments: copies, freed by rargv_cleanup */
    size_t *len;
    size_t n, cap;
};

/* Appends a copy of len bytes at s. */
void rargv_add(struct rargv *a, const char *s, size_t len);

/* Appends a copy of a NUL-terminated string. */
void rargv_adds(struct rargv *a, const char *s);

/* Appends an integer in decimal. */
void rargv_addi(struct rargv *a, int64_t v);

/* Frees the copies and empties the list. */
void rargv_cleanup(struct rargv *a);

#endif /* RATELIMIT_RARGV_H */
