/*
 * Waiting for a test's fork child with a bound.  A child that hangs (on a
 * lock it inherited held, say) would otherwise hang the test, and the
 * whole suite with it, with nothing to tell where: here it is a failure
 * that shows the child's threads.
 *
 * Messages go to stderr, never to stdout, which belongs to the harness.
 */
#ifndef HERMES_TEST_CHILD_WAIT_H
#define HERMES_TEST_CHILD_WAIT_H

#include <sys/types.h>

/* A bound for a child's whole work that no correct child of the suite
 * comes near, even in a sanitizer build on a loaded machine. */
#define CW_TIMEOUT_MS 120000

/*
 * Waits up to timeout_ms for pid to end, and stores its wait status.
 * Returns 0 when it ended; -1 when it had not (its threads' stacks are
 * printed, it is killed and reaped, and *status says SIGKILL) or waitpid
 * failed (with a message naming who).
 */
int cw_wait(const char *who, pid_t pid, int timeout_ms, int *status);

/* The threads of the live process pid, as gdb sees them ("thread apply
 * all bt"), on stderr, after a line naming who.  gdb is optional: without
 * it a line says so. */
void cw_print_stacks(const char *who, pid_t pid);

#endif
