/*
 * hermes-bench -w storm (storm.c): one hot entry with a short TTL and a
 * slow computation, called by many threads (and processes), with the
 * freshness features off and on in the same run (README "Freshness").
 */
#ifndef HERMES_BENCH_STORM_H
#define HERMES_BENCH_STORM_H

#include <hermes/hermes.h>

typedef struct storm_opts {
    unsigned procs;      /* processes (forked after open); 1: this one */
    unsigned threads;    /* per process */
    double seconds;      /* per mode and round */
    unsigned rounds;     /* of all modes, alternating */
    unsigned ttl_s;      /* of the entry */
    unsigned compute_ms; /* of the computation */
    size_t value_size;
} storm_opts;

/* Runs the storm on h and prints a table and the targets; 0 when every
 * target was met, 1 otherwise, -1 when it could not run. */
int storm_run(hermes *h, const storm_opts *o);

#endif
