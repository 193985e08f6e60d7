/*
 * fork() safety of open handles (fork.c).
 */
#ifndef HERMES_CORE_FORK_H
#define HERMES_CORE_FORK_H

#include "internal.h"

/* From open to close, so the fork handlers cover the handle's locks. */
void hm_fork_track(hermes *h);
void hm_fork_untrack(hermes *h);

#endif
