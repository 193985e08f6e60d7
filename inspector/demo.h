/*
 * hermes-inspector --demo: a multi-threaded workload in the inspector's own
 * process against its handle (demo.c), so that there is something to
 * watch right after the README's first command, on the in-process dict as
 * on a shared backend.
 */
#ifndef HERMES_INSPECTOR_DEMO_H
#define HERMES_INSPECTOR_DEMO_H

#include <stdbool.h>
#include <stddef.h>

#include <hermes/hermes.h>

typedef struct insp_demo insp_demo;

/*
 * Registers the demo's functions on h and starts its threads; on a shared
 * backend it first forks a second process that wants the hot key too.
 * Call before any other thread uses h (functions are registered first).
 * 0, or -1 with the reason in err.
 */
int insp_demo_start(insp_demo **out, hermes *h, char *err, size_t cap);

/* Waits until each demo function has answered a call (computed, or from
 * the cache an earlier run filled), at most timeout_ms; returns whether
 * they all did. */
bool insp_demo_wait_warm(insp_demo *d, unsigned timeout_ms);

/* Stops the threads (and the second process) and frees d.  NULL is fine.
 * The functions stay registered on the handle until it is closed. */
void insp_demo_stop(insp_demo *d);

#endif
