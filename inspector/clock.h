/*
 * The inspector's clocks (clock.c): the model, layout and key handling
 * never read one; their callers pass "now".
 */
#ifndef HERMES_INSPECTOR_CLOCK_H
#define HERMES_INSPECTOR_CLOCK_H

#include <stdint.h>

/* Wall clock, ms since the Unix epoch (what snapshots' times are in). */
int64_t insp_wall_ms(void);
/* Sleeps ms, resuming after a signal. */
void insp_sleep_ms(unsigned ms);

#endif
