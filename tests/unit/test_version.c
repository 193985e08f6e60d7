/*
 * One version, written once in configure.ac: the header's macros, the
 * library's run-time answer and every plugin built with it say the same
 * thing.  Linked with libhermes.la, the shared library a program loads,
 * and told configure's version on the command line (CONFIGURE_VERSION).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <hermes/hermes.h>

#ifndef CONFIGURE_VERSION
#error "CONFIGURE_VERSION (configure's PACKAGE_VERSION) must be defined"
#endif

static void header_says_configures_version(void **state)
{
    char parts[64];
    snprintf(parts, sizeof parts, "%d.%d.%d", HERMES_VERSION_MAJOR,
             HERMES_VERSION_MINOR, HERMES_VERSION_PATCH);
    assert_string_equal(HERMES_VERSION, CONFIGURE_VERSION);
    assert_string_equal(parts, CONFIGURE_VERSION);
}

static void number_is_0xMMmmpp(void **state)
{
    unsigned long want = ((unsigned long)HERMES_VERSION_MAJOR << 16) |
                         ((unsigned long)HERMES_VERSION_MINOR << 8) |
                         (unsigned long)HERMES_VERSION_PATCH;
    assert_int_equal(HERMES_VERSION_NUMBER, want);
    /* Usable by the preprocessor, as callers will use it. */
#if HERMES_VERSION_NUMBER < 0 || HERMES_VERSION_NUMBER > 0xFFFFFF
    fail_msg("HERMES_VERSION_NUMBER out of range");
#endif
    assert_true(HERMES_VERSION_AT_LEAST(
        HERMES_VERSION_MAJOR, HERMES_VERSION_MINOR, HERMES_VERSION_PATCH));
    assert_false(HERMES_VERSION_AT_LEAST(
        HERMES_VERSION_MAJOR, HERMES_VERSION_MINOR, HERMES_VERSION_PATCH + 1));
    assert_false(HERMES_VERSION_AT_LEAST(HERMES_VERSION_MAJOR + 1, 0, 0));
    assert_true(HERMES_VERSION_AT_LEAST(0, 0, 0));
}

static void library_says_the_headers_version(void **state)
{
    assert_int_equal(hermes_version_number(), HERMES_VERSION_NUMBER);
    assert_string_equal(hermes_version(), HERMES_VERSION);
}

/* The plugin's own version, as a handle on it reports it. */
static void expect_plugin_version(const char *name, const char *section)
{
    const char *dir = getenv("HERMES_TEST_PLUGIN_DIR");
    if (!dir)
        fail_msg("HERMES_TEST_PLUGIN_DIR is not set");
    char ini[1024];
    snprintf(ini, sizeof ini, "[hermes]\nbackend = %s\nplugin_path = %s/%s\n%s",
             name, dir, name, section);
    hermes *h;
    hermes_rc rc = hermes_open_string(&h, ini, "version.ini");
    if (rc != HERMES_OK)
        fail_msg("open %s: %s", name, hermes_errmsg(h));
    assert_string_equal(hermes_backend_name(h), name);
    assert_string_equal(hermes_backend_version(h), HERMES_VERSION);
    hermes_close(h);
}

static void plugins_say_the_librarys_version(void **state)
{
    hermes *h;
    assert_int_equal(hermes_open_defaults(&h), HERMES_OK);
    assert_string_equal(hermes_backend_name(h), "dict");
    assert_string_equal(hermes_backend_version(h), HERMES_VERSION);
    hermes_close(h);
    /* Neither connects in open(), so no server is needed. */
    expect_plugin_version("dict", "");
    expect_plugin_version("redis", "");
    expect_plugin_version("memcached", "[memcached]\nservers = 127.0.0.1:1\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(header_says_configures_version),
        cmocka_unit_test(number_is_0xMMmmpp),
        cmocka_unit_test(library_says_the_headers_version),
        cmocka_unit_test(plugins_say_the_librarys_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
