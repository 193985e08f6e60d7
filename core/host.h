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
/* Monotonic nanoseconds. */
uint64_t hm_monotonic_ns(void);
/* Fills buf from the kernel's random source; 0 or -1. */
int hm_random(void *buf, size_t len);
/* Sleeps ns nanoseconds, resuming after signals. */
void hm_sleep_ns(uint64_t ns);

#endif
