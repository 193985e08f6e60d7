/*
 * Unit tests of opening a handle (core/handle.c) from a file, text or
 * settings given in code: every failure names where it comes from
 * ("FILE:LINE: KEY: reason"), plugin messages are escaped, sections are
 * checked against the backend and the search path, a relative plugin_path
 * follows the config file, and a prefix too long for the backend's key
 * limit is refused; options given in code.  Also: hermes_get reports its
 * own out-of-memory as HERMES_ENOMEM.  malloc, calloc, realloc and strdup
 * are wrapped (-Wl,--wrap=...) so that a test can make the Nth allocation
 * of the core fail.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "handle.h"
#include "mock_backend.h"

static char builddir[512];
static char plugdir[560]; /* BUILDDIR/tests/plugins: good.la and others */

/* ---------------------------------------------------- malloc injection */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);

/* When armed, the malloc_countdown-th allocation from now fails (1 = the
 * next); counts every allocation either way. */
static int malloc_armed;
static long malloc_countdown, malloc_calls;

static int inject(void)
{
    malloc_calls++;
    return malloc_armed && --malloc_countdown == 0;
}

void *__wrap_malloc(size_t n)
{
    return inject() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return inject() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    return inject() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    return inject() ? NULL : __real_strdup(s);
}

/* ------------------------------------------------------------- helpers */

static int group_setup(void **state)
{
    const char *b = getenv("HERMES_TEST_BUILDDIR");
    if (b == NULL || *b == '\0') {
        fprintf(stderr, "HERMES_TEST_BUILDDIR is not set; run via make "
                        "check\n");
        return -1;
    }
    snprintf(builddir, sizeof builddir, "%s", b);
    snprintf(plugdir, sizeof plugdir, "%s/tests/plugins", builddir);
    unsetenv("HERMES_PLUGIN_PATH");
    unsetenv("HERMES_CONFIG");
    return 0;
}

/* Fails the test unless msg contains want. */
static void contains(const char *msg, const char *want)
{
    if (strstr(msg, want) == NULL)
        fail_msg("message '%s' lacks '%s'", msg, want);
}

/* hermes_open_string(text, "app.ini") fails with rc and a message that
 * contains want. */
static void string_fails(const char *text, hermes_rc rc, const char *want)
{
    hermes *h;
    hermes_rc got = hermes_open_string(&h, text, "app.ini");
    assert_non_null(h);
    if (got != rc)
        fail_msg("rc %d, expected %d: %s", (int)got, (int)rc, hermes_errmsg(h));
    contains(hermes_errmsg(h), want);
    hermes_close(h);
}

static void string_opens(const char *text)
{
    hermes *h;
    hermes_rc rc = hermes_open_string(&h, text, "app.ini");
    if (rc != HERMES_OK)
        fail_msg("open failed (%d): %s", (int)rc, hermes_errmsg(h));
    hermes_close(h);
}

static void make_tempdir(char *dir, size_t len)
{
    snprintf(dir, len, "/tmp/hermes-test-open-XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* ----------------------------------------------------- plugin messages */

static void unknown_plugin_names_file_line_and_backend(void **state)
{
    char dir[64], path[128], want[256];
    hermes *h;

    string_fails("[hermes]\nttl = 5\nbackend = nosuch\nplugin_path = "
                 "/nonexistent\n",
                 HERMES_EPLUGIN,
                 "app.ini:3: backend: plugin 'nosuch' not found; looked in: "
                 "/nonexistent/nosuch.{la,so}");
    /* From a file, through hermes_open(), the file's own name. */
    make_tempdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/app.ini", dir);
    write_text(path,
               "[hermes]\nbackend = nosuch\nplugin_path = /nonexistent\n");
    assert_int_equal(hermes_open(&h, path), HERMES_EPLUGIN);
    snprintf(want, sizeof want, "%s:2: backend: plugin 'nosuch' not found",
             path);
    assert_memory_equal(hermes_errmsg(h), want, strlen(want));
    hermes_close(h);
    unlink(path);
    rmdir(dir);
}

static void odd_backend_paths_name_file_line_and_backend(void **state)
{
    string_fails("[hermes]\nbackend = /\n", HERMES_EPLUGIN,
                 "app.ini:2: backend: /: cannot load: ends in '/'");
    string_fails("[hermes]\nbackend = //\n", HERMES_EPLUGIN,
                 "app.ini:2: backend: //: cannot load: ends in '/'");
    string_fails("[hermes]\nbackend = ..\n", HERMES_EPLUGIN,
                 "app.ini:2: backend: backend '..' is a directory");
    string_fails("[hermes]\nbackend = /tmp\n", HERMES_EPLUGIN,
                 "app.ini:2: backend: /tmp: cannot load: is a directory");
}

/* A plugin that echoes a value holding ESC and CR: the core escapes what
 * it puts in the message, whichever plugin wrote it. */
static void plugin_messages_have_control_bytes_escaped(void **state)
{
    hermes *h;
    assert_int_equal(hermes_open_string(&h,
                                        "[hermes]\n[dict]\nmax_bytes = "
                                        "\x1b[2Jred\rx\n",
                                        "app.ini"),
                     HERMES_ECONFIG);
    const char *msg = hermes_errmsg(h);
    contains(msg, "app.ini:3: max_bytes: max_bytes: not a size: "
                  "'\\x1b[2Jred\\x0dx'");
    for (const char *c = msg; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            fail_msg("control byte 0x%02x in '%s'", (unsigned char)*c, msg);
    hermes_close(h);
}

/* ------------------------------------------------------------ sections */

static void a_section_naming_no_plugin_is_reported(void **state)
{
    string_fails("[hermes]\nbackend = dict\n\n[redsi]\nhost = x\n",
                 HERMES_ECONFIG,
                 "app.ini:4: unknown section [redsi]: not [hermes], the "
                 "backend's [dict], or a plugin on the search path");
    /* The linked backend's own section is fine (the mock is called
     * dict). */
    hermes *h;
    assert_int_equal(
        hermes_open_with(&h, "[hermes]\n[dict]\n", "app.ini", mock_backend()),
        HERMES_OK);
    hermes_close(h);
    assert_int_equal(
        hermes_open_with(&h, "[hermes]\n[mokc]\n", "app.ini", mock_backend()),
        HERMES_ECONFIG);
    contains(hermes_errmsg(h), "app.ini:2: unknown section [mokc]");
    hermes_close(h);
}

static void sections_of_plugins_on_the_search_path_are_kept(void **state)
{
    char text[1024];

    /* good.la is on plugin_path: its section may sit in the file. */
    snprintf(text, sizeof text,
             "[hermes]\nplugin_path = %s\n[good]\nanything = 1\n", plugdir);
    string_opens(text);
    /* ... and on HERMES_PLUGIN_PATH. */
    setenv("HERMES_PLUGIN_PATH", plugdir, 1);
    string_opens("[hermes]\n[good]\nanything = 1\n");
    unsetenv("HERMES_PLUGIN_PATH");
    /* A section name that is a path is never a plugin. */
    snprintf(text, sizeof text, "[hermes]\n[%s/good]\n", plugdir);
    string_fails(text, HERMES_ECONFIG, "app.ini:2: unknown section [");
}

/* --------------------------------------------------------- plugin_path */

static void relative_plugin_path_follows_the_config_file(void **state)
{
    char dir[64], link[128], path[128], cwd[1024], want[256];
    hermes *h;

    make_tempdir(dir, sizeof dir);
    snprintf(link, sizeof link, "%s/plugs", dir);
    assert_int_equal(symlink(plugdir, link), 0);
    snprintf(path, sizeof path, "%s/app.ini", dir);
    write_text(path, "[hermes]\nbackend = good\nplugin_path = plugs\n");
    /* Run from elsewhere: the path is the file's, not the process's. */
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir("/"), 0);
    hermes_rc rc = hermes_open(&h, path);
    assert_int_equal(chdir(cwd), 0);
    if (rc != HERMES_OK)
        fail_msg("open failed: %s", hermes_errmsg(h));
    snprintf(want, sizeof want, "%s/plugs/good.la", dir);
    assert_string_equal(hm_handle_plugin_path(h), want);
    hermes_close(h);
    unlink(path);
    unlink(link);
    rmdir(dir);
}

/* -------------------------------------------------- prefix and key limit */

static void prefix_too_long_for_the_key_limit_is_refused(void **state)
{
    hermes *h;

    /* "<prefix>:entry:#" and 22 characters of hash: 30 + the prefix. */
    assert_int_equal(
        hermes_open_with(&h, "[hermes]\nttl = 1\nprefix = abcdefghijk\n",
                         "app.ini", mock_backend_maxkey(40)),
        HERMES_ECONFIG);
    contains(hermes_errmsg(h),
             "app.ini:3: prefix: 'abcdefghijk' is too long for backend dict's "
             "key limit of 40 bytes: hashed keys ('<prefix>:entry:#' and a "
             "22-character hash) would take 41; use at most 10 characters");
    hermes_close(h);
    /* The default prefix against a tiny limit: no line to name. */
    assert_int_equal(
        hermes_open_with(&h, "", "app.ini", mock_backend_maxkey(30)),
        HERMES_ECONFIG);
    contains(hermes_errmsg(h), "app.ini: prefix: backend dict's key limit of "
                               "30 bytes is too small for any prefix");
    hermes_close(h);
}

static void prefix_that_just_fits_keeps_every_key_in_the_limit(void **state)
{
    hermes *h;
    char longkey[200];

    hermes_rc rc = hermes_open_with(&h, "[hermes]\nprefix = abcdefghij\n",
                                    "app.ini", mock_backend_maxkey(40));
    if (rc != HERMES_OK)
        fail_msg("open failed: %s", hermes_errmsg(h));
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    assert_int_equal(hermes_set(h, longkey, "v", 1, HERMES_TAGS(longkey), 0),
                     HERMES_OK);
    void *v;
    size_t n;
    assert_int_equal(hermes_get(h, longkey, HERMES_TAGS(longkey), &v, &n),
                     HERMES_OK);
    hermes_free(v);
    assert_true(mock_get_counts(mock_current()).longest_key <= 40);
    hermes_close(h);
}

/* ------------------------------------------------- hermes_get and ENOMEM */

/* Every allocation of one hermes_get (5 tags: the batch of keys is
 * allocated too) is made to fail in turn: the answer is HERMES_ENOMEM,
 * never HERMES_EBACKEND, since the backend did nothing wrong. */
static void get_reports_its_own_out_of_memory_as_enomem(void **state)
{
    hermes *h;
    const char *const *tags = HERMES_TAGS("a", "b", "c", "d", "e");
    void *v;
    size_t n;

    assert_int_equal(hermes_open_with(&h, NULL, NULL, mock_backend()),
                     HERMES_OK);
    assert_int_equal(hermes_set(h, "k", "value", 5, tags, 0), HERMES_OK);
    malloc_calls = 0;
    assert_int_equal(hermes_get(h, "k", tags, &v, &n), HERMES_OK);
    hermes_free(v);
    long total = malloc_calls;
    assert_true(total > 0);
    int enomem = 0;
    for (long i = 1; i <= total; i++) {
        malloc_countdown = i;
        malloc_armed = 1;
        hermes_rc rc = hermes_get(h, "k", tags, &v, &n);
        malloc_armed = 0;
        if (rc == HERMES_OK) {
            hermes_free(v);
            continue;
        }
        if (rc != HERMES_ENOMEM)
            fail_msg("allocation %ld of %ld failed: rc %d (%s): %s", i, total,
                     (int)rc, hermes_strerror(rc), hermes_errmsg(h));
        enomem++;
    }
    assert_true(enomem > 0);
    hermes_close(h);
}

/* ------------------------------------------------- options given in code */

/* Opens o, expecting rc and a message containing want. */
static void options_fail(const hermes_options *o, hermes_rc rc,
                         const char *want)
{
    hermes *h;
    hermes_rc got = hermes_open_options(&h, o);
    assert_non_null(h);
    if (got != rc)
        fail_msg("rc %d, expected %d: %s", (int)got, (int)rc, hermes_errmsg(h));
    contains(hermes_errmsg(h), want);
    hermes_close(h);
}

/* A fresh options object with one setting. */
static hermes_options *one(const char *section, const char *key,
                           const char *value)
{
    hermes_options *o;
    assert_int_equal(hermes_options_new(&o), HERMES_OK);
    assert_int_equal(hermes_options_set(o, section, key, value), HERMES_OK);
    return o;
}

static void options_set_what_a_file_sets(void **state)
{
    hermes_options *o;
    hermes *h;

    assert_int_equal(hermes_options_new(&o), HERMES_OK);
    assert_int_equal(hermes_options_set(o, NULL, "ttl", "60"), HERMES_OK);
    assert_int_equal(hermes_options_set(o, "hermes", "prefix", "app"),
                     HERMES_OK);
    assert_int_equal(hermes_options_set(o, NULL, "on_lock_timeout", "fail"),
                     HERMES_OK);
    assert_int_equal(hermes_options_set(o, "dict", "shards", "4"), HERMES_OK);
    assert_int_equal(hermes_options_set(o, NULL, "ttl", "120"), HERMES_OK);
    hermes_rc rc = hermes_open_options(&h, o);
    if (rc != HERMES_OK)
        fail_msg("open failed: %s", hermes_errmsg(h));
    /* The options are copied: changing them now changes nothing. */
    assert_int_equal(hermes_options_set(o, NULL, "ttl", "7"), HERMES_OK);
    hermes_options_free(o);
    const hm_config *cfg = hm_handle_config(h);
    assert_string_equal(cfg->source, "<options>");
    assert_string_equal(cfg->backend, "dict");
    assert_int_equal(cfg->ttl, 120); /* set twice: the last value */
    assert_string_equal(cfg->prefix, "app");
    assert_int_equal(cfg->on_lock_timeout, HM_FALLBACK_FAIL);
    const hm_section *d = hm_config_section(cfg, "dict");
    assert_non_null(d);
    assert_int_equal(d->n, 1);
    assert_string_equal(d->kv[0].key, "shards");
    assert_string_equal(d->kv[0].value, "4");
    assert_int_equal(d->kv[0].line, 0); /* not from a file */
    /* It works as a cache. */
    void *v;
    size_t n;
    assert_int_equal(hermes_set(h, "k", "v", 1, NULL, 0), HERMES_OK);
    assert_int_equal(hermes_get(h, "k", NULL, &v, &n), HERMES_OK);
    hermes_free(v);
    hermes_close(h);
}

static void options_a_null_value_removes_the_key(void **state)
{
    hermes_options *o = one(NULL, "ttl", "soon");
    hermes *h;

    assert_int_equal(hermes_options_set(o, NULL, "ttl", NULL), HERMES_OK);
    assert_int_equal(hermes_options_set(o, NULL, "never_set", NULL), HERMES_OK);
    assert_int_equal(hermes_open_options(&h, o), HERMES_OK);
    assert_int_equal(hm_handle_config(h)->ttl, 3600);
    hermes_close(h);
    hermes_options_free(o);
}

static void options_errors_name_the_key(void **state)
{
    hermes_options *o;

    o = one(NULL, "ttl", "soon");
    options_fail(o, HERMES_ECONFIG, "<options>: ttl: not a number: 'soon'");
    hermes_options_free(o);
    o = one("hermes", "colour", "red");
    options_fail(o, HERMES_ECONFIG,
                 "<options>: colour: unknown key in [hermes] (known: ");
    hermes_options_free(o);
    o = one(NULL, "prefix", "a:b");
    options_fail(o, HERMES_ECONFIG, "<options>: prefix: must be non-empty");
    hermes_options_free(o);
    o = one(NULL, "backend", "");
    options_fail(o, HERMES_ECONFIG, "<options>: backend: empty value");
    hermes_options_free(o);
    o = one(NULL, "on_backend_error", "\x1b[31m");
    options_fail(o, HERMES_ECONFIG,
                 "<options>: on_backend_error: expected compute or fail: "
                 "'\\x1b[31m'");
    hermes_options_free(o);
    o = one(NULL, "bad key", "1");
    options_fail(o, HERMES_ECONFIG, "<options>: invalid key 'bad key'");
    hermes_options_free(o);
    o = one("a]b", "k", "1");
    options_fail(o, HERMES_ECONFIG, "<options>: invalid section name 'a]b'");
    hermes_options_free(o);
    /* Errors found after parsing name the key the same way. */
    o = one(NULL, "backend", "nosuch");
    assert_int_equal(hermes_options_set(o, NULL, "plugin_path", "/nonexistent"),
                     HERMES_OK);
    options_fail(o, HERMES_EPLUGIN,
                 "<options>: backend: plugin 'nosuch' not found; looked in: "
                 "/nonexistent/nosuch.{la,so}");
    hermes_options_free(o);
    o = one("dict", "colour", "blue");
    options_fail(o, HERMES_ECONFIG,
                 "<options>: colour: unknown key 'colour' (known: max_bytes, "
                 "shards)");
    hermes_options_free(o);
    o = one("redsi", "host", "x");
    options_fail(o, HERMES_ECONFIG, "<options>: unknown section [redsi]");
    hermes_options_free(o);
}

static void options_reject_null_arguments(void **state)
{
    hermes_options *o;
    hermes *h;

    assert_int_equal(hermes_options_new(NULL), HERMES_EINVAL);
    assert_int_equal(hermes_options_set(NULL, NULL, "ttl", "1"), HERMES_EINVAL);
    assert_int_equal(hermes_options_new(&o), HERMES_OK);
    assert_int_equal(hermes_options_set(o, NULL, NULL, "1"), HERMES_EINVAL);
    assert_int_equal(hermes_open_options(NULL, o), HERMES_EINVAL);
    assert_int_equal(hermes_open_options(&h, NULL), HERMES_EINVAL);
    contains(hermes_errmsg(h), "options is NULL");
    hermes_close(h);
    hermes_options_free(o);
    hermes_options_free(NULL);
}

/* Every allocation of building and setting options fails in turn: an
 * error, never a crash or a half-made setting (ASan checks for leaks). */
static void options_survive_out_of_memory(void **state)
{
    int failed = 0, done = 0;
    for (long i = 1; !done; i++) {
        hermes_options *o = NULL;
        malloc_countdown = i;
        malloc_armed = 1;
        hermes_rc rc = hermes_options_new(&o);
        for (int k = 0; rc == HERMES_OK && k < 12; k++) {
            char key[16];
            snprintf(key, sizeof key, "k%d", k % 10);
            rc = hermes_options_set(o, k & 1 ? "dict" : NULL, key, "v");
        }
        done = malloc_armed && malloc_countdown > 0; /* nothing failed */
        malloc_armed = 0;
        assert_true(rc == HERMES_OK || rc == HERMES_ENOMEM);
        failed += rc == HERMES_ENOMEM;
        hermes_options_free(o);
    }
    assert_true(failed > 10); /* 1 new, then 2 or 3 per new key, 1 reset */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unknown_plugin_names_file_line_and_backend),
        cmocka_unit_test(odd_backend_paths_name_file_line_and_backend),
        cmocka_unit_test(plugin_messages_have_control_bytes_escaped),
        cmocka_unit_test(a_section_naming_no_plugin_is_reported),
        cmocka_unit_test(sections_of_plugins_on_the_search_path_are_kept),
        cmocka_unit_test(relative_plugin_path_follows_the_config_file),
        cmocka_unit_test(prefix_too_long_for_the_key_limit_is_refused),
        cmocka_unit_test(prefix_that_just_fits_keeps_every_key_in_the_limit),
        cmocka_unit_test(get_reports_its_own_out_of_memory_as_enomem),
        cmocka_unit_test(options_set_what_a_file_sets),
        cmocka_unit_test(options_a_null_value_removes_the_key),
        cmocka_unit_test(options_errors_name_the_key),
        cmocka_unit_test(options_reject_null_arguments),
        cmocka_unit_test(options_survive_out_of_memory),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
