/* The definition of the cached function declared in macros_shared.h. */
#include <stdio.h>
#include <stdlib.h>

#include "macros_shared.h"

int describe_runs;

HERMES_DEFINE(char *, describe, int, a, unsigned, b, double, c, const char *, d,
              char, e, bool, f)
{
    describe_runs++;
    char *s = malloc(128);
    if (s)
        snprintf(s, 128, "%d %u %g %s %c %d", a, b, c, d ? d : "(null)", e,
                 (int)f);
    return s;
}
