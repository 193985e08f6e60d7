/*
 * The one-shot gate of gate.h, which in-process followers of a miss wait
 * on (flight.c).
 *
 * Why not a condition variable: the waiters of one leader wake from a
 * broadcast only to queue for the mutex the condition variable comes
 * with, held by the leader while it broadcasts: each then wakes the next
 * as it unlocks, one context switch after another.  Measured with 8
 * threads of a follower process on this project's 2-core machine, the
 * last of 7 followers returned a median 160-220 us after the leader
 * landed, each one 8-15 us (sometimes 150) after the one before.
 *
 * On Linux the gate is one futex word: open is a release store and one
 * FUTEX_WAKE of every waiter; a waiter sleeps in FUTEX_WAIT_BITSET, whose
 * absolute timeout is on CLOCK_MONOTONIC, while the word is 0, and leaves
 * as soon as it reads 1 (an acquire load), touching no lock.  The futex is
 * private to the process: a gate is never shared with another process (a
 * fork child forgets the parent's flights, fork.c).  Elsewhere a mutex
 * and a CLOCK_MONOTONIC condition variable do the same, less quickly.
 *
 * Lifetime: the caller keeps g alive until every waiter has returned
 * (flight.c counts references).  The opener's FUTEX_WAKE may come after a
 * waiter that saw the word change has left; the word is still there, so
 * the call only finds nobody to wake.
 */
#include <errno.h>
#include <limits.h>
#include <time.h>

#include "gate.h"

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#if defined(__linux__)

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int hm_gate_init(hm_gate *g)
{
    atomic_init(&g->open, 0);
    return 0;
}

void hm_gate_destroy(hm_gate *g)
{
    (void)g;
}

void hm_gate_open(hm_gate *g)
{
    atomic_store_explicit(&g->open, 1, memory_order_release);
    syscall(SYS_futex, &g->open, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

bool hm_gate_wait(hm_gate *g, uint64_t deadline_ns)
{
    struct timespec ts = {(time_t)(deadline_ns / 1000000000u),
                          (long)(deadline_ns % 1000000000u)};
    while (!atomic_load_explicit(&g->open, memory_order_acquire)) {
        if (mono_ns() >= deadline_ns)
            return false;
        /* Returns at once (EAGAIN) if the word is no longer 0; EINTR and
         * spurious returns look again; ETIMEDOUT is seen by the clock. */
        syscall(SYS_futex, &g->open, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, 0,
                &ts, NULL, FUTEX_BITSET_MATCH_ANY);
    }
    return true;
}

#else

int hm_gate_init(hm_gate *g)
{
    pthread_condattr_t ca;
    int rc = -1;
    atomic_init(&g->open, 0);
    if (pthread_condattr_init(&ca) != 0)
        return -1;
    /* Waits are bounded in monotonic time: a clock step must neither
     * release followers early nor keep them waiting. */
    if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
        pthread_mutex_init(&g->mu, NULL) == 0) {
        if (pthread_cond_init(&g->cv, &ca) == 0)
            rc = 0;
        else
            pthread_mutex_destroy(&g->mu);
    }
    pthread_condattr_destroy(&ca);
    return rc;
}

void hm_gate_destroy(hm_gate *g)
{
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

void hm_gate_open(hm_gate *g)
{
    pthread_mutex_lock(&g->mu);
    atomic_store_explicit(&g->open, 1, memory_order_release);
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

bool hm_gate_wait(hm_gate *g, uint64_t deadline_ns)
{
    struct timespec ts = {(time_t)(deadline_ns / 1000000000u),
                          (long)(deadline_ns % 1000000000u)};
    if (atomic_load_explicit(&g->open, memory_order_acquire))
        return true;
    pthread_mutex_lock(&g->mu);
    int rc = 0;
    while (!atomic_load_explicit(&g->open, memory_order_acquire) && rc == 0)
        rc = pthread_cond_timedwait(&g->cv, &g->mu, &ts);
    pthread_mutex_unlock(&g->mu);
    return atomic_load_explicit(&g->open, memory_order_acquire) != 0;
}

#endif
