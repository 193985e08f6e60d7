/*
 * A one-shot gate (gate.c): threads wait, with a deadline, until one
 * thread opens it; opening wakes every waiter at once, and a waiter needs
 * no lock to leave.
 */
#ifndef HERMES_CORE_GATE_H
#define HERMES_CORE_GATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct hm_gate {
    atomic_uint open; /* 0 until hm_gate_open, then 1 for good */
#if !defined(__linux__)
    pthread_mutex_t mu;
    pthread_cond_t cv;
#endif
} hm_gate;

/* 0, or -1 when the fallback's mutex or condition variable cannot be
 * made. */
int hm_gate_init(hm_gate *g);
void hm_gate_destroy(hm_gate *g);
/* Opens g and wakes every waiter.  Whatever the opener wrote before is
 * visible to a waiter that saw g open. */
void hm_gate_open(hm_gate *g);
/* Waits until g is open or CLOCK_MONOTONIC reaches deadline_ns; returns
 * whether it is open. */
bool hm_gate_wait(hm_gate *g, uint64_t deadline_ns);

#endif
