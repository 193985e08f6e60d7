/*
 * The library's version at run time: the values of <hermes/version.h> as
 * this library was built, for a program to compare with the header it was
 * compiled against.
 */
#include <hermes/hermes.h>

unsigned long hermes_version_number(void)
{
    return HERMES_VERSION_NUMBER;
}

const char *hermes_version(void)
{
    return HERMES_VERSION;
}
