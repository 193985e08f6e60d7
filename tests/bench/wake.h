/*
 * hermes-bench -w wake (wake.c): how soon followers in other processes
 * get a value after its leader wrote it, woken by the store's release
 * notice (redis lock_notify = yes) against polling (lock_notify = no), in
 * alternating rounds of the same run.
 */
#ifndef HERMES_BENCH_WAKE_H
#define HERMES_BENCH_WAKE_H

#include <hermes/hermes.h>
#include <hiredis/hiredis.h>

typedef struct wake_opts {
    const char *config;  /* the -c file, reread with lock_notify set */
    unsigned procs;      /* follower processes */
    unsigned threads;    /* follower threads per process */
    unsigned misses;     /* per mode and round */
    unsigned rounds;     /* of both modes, alternating */
    unsigned compute_ms; /* of the leader's computation */
    /* A bare hiredis connection to the config's server (raw mode), or
     * NULL. */
    redisContext *(*raw_connect)(void *arg);
    void *raw_arg;
} wake_opts;

/* Runs the rounds on h (the leader's handle) and prints them and the
 * summary; 0 when the target was met, 1 when not, -1 when it could not
 * run. */
int wake_run(hermes *h, const wake_opts *o);

#endif
