/*
 * A cached function declared in a header and defined in one file
 * (macros_shared.c), used from test_macros.c: the split HERMES_DECLARE /
 * HERMES_DEFINE exists for.  Six arguments, the most the macros take at
 * the time of writing, of six different kinds.
 */
#ifndef TESTS_MACROS_SHARED_H
#define TESTS_MACROS_SHARED_H

#include <stdbool.h>

#include <hermes/hermes.h>

HERMES_DECLARE(char *, describe, int, a, unsigned, b, double, c, const char *,
               d, char, e, bool, f);

/* How many times describe's body ran. */
extern int describe_runs;

#endif
