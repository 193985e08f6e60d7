/*
 * Clocks and randomness (host.c), for the core and the tools.  The same
 * functions are handed to plugins through struct hermes_host.
 */
#ifndef HERMES_CORE_HOST_H
#define HERMES_CORE_HOST_H

#include <stddef.h>
#include <stdint.h>

/* Wall-clock milliseconds since the epoch. */
uint64_t hm_now_ms(void);
/* The same from the kernel's coarse clock (a tick's resolution, a few ms;
 * a fraction of the cost): for decisions on every hit (fresh.c). */
uint64_t hm_now_ms_coarse(void);
/* Monotonic nanoseconds. */
uint64_t hm_monotonic_ns(void);
/* Fills buf from the kernel's random source; 0 or -1. */
int hm_random(void *buf, size_t len);
/* Sleeps ns nanoseconds, resuming after signals. */
void hm_sleep_ns(uint64_t ns);

/* A uniform draw in (0, 1] for decisions that need no secrecy (XFetch): a
 * per-thread generator seeded from the kernel, reseeded in a forked child
 * so that parent and child do not draw alike. */
double hm_draw_unit(void);
/* fork.c's child handler: every thread's generator reseeds. */
void hm_host_forked(void);

/*
 * The test seam: replaces the wall clock that hm_now_ms() reads (records'
 * creation times, freshness decisions, lock tokens) and the source of
 * hm_draw_unit(), process-wide, so tests decide expiry and XFetch exactly
 * instead of sleeping.  Either function may be NULL (the real one then);
 * t NULL restores both.  *t must stay valid while it is installed; a
 * forked child inherits it (put the clock in shared memory to move it
 * from the parent).  Internal: not exported from libhermes.so.
 */
typedef struct hm_test_host {
    uint64_t (*now_ms)(void *ctx);
    double (*unit)(void *ctx); /* in (0, 1] */
    void *ctx;
} hm_test_host;
void hm_test_host_set(const hm_test_host *t);

#endif
