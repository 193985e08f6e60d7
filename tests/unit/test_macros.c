/*
 * The decorator-style macro layer (HERMES_FUNC, HERMES_DECLARE /
 * HERMES_DEFINE, HERMES_REGISTER[_KEYED]) on the built-in dict backend.
 * Compiled with -std=c11 -pedantic -Wall -Wextra -Werror (Makefile.am), so
 * the header's C layer builds cleanly in strict ISO C; test_macros_cxx.cpp
 * does the same for C++.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <hermes/hermes.h>

#include "macros_shared.h"
#include "mock_backend.h"

static hermes *h;

static hermes *open_text(const char *text)
{
    hermes *c;
    hermes_rc rc = hermes_open_string(&c, text, "test");
    if (rc != HERMES_OK)
        fail_msg("open: %s", hermes_errmsg(c));
    return c;
}

static int setup(void **state)
{
    (void)state;
    h = open_text("[hermes]\n");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    hermes_close(h);
    h = NULL;
    return 0;
}

static int runs;

HERMES_FUNC(int, answer)
{
    runs++;
    return 42;
}

HERMES_FUNC(int64_t, mul, int64_t, a, int64_t, b)
{
    runs++;
    return a * b;
}

static int key_one(char *buf, size_t cap, int64_t a, int64_t b)
{
    return snprintf(buf, cap, "one:%lld:%lld", (long long)a, (long long)b);
}

static int key_two(char *buf, size_t cap, int64_t a, int64_t b)
{
    return snprintf(buf, cap, "two:%lld:%lld", (long long)a, (long long)b);
}

static const char *null_when; /* maybe's body returns NULL for this one */

HERMES_FUNC(char *, maybe, const char *, who)
{
    runs++;
    if (null_when && strcmp(who, null_when) == 0)
        return NULL;
    size_t n = strlen(who) + 3;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "<%s>", who);
    return s;
}

/* Is there an entry under the direct key <prefix>:entry:<key>? */
static bool stored(const char *key)
{
    void *v;
    size_t n;
    hermes_rc rc = hermes_get(h, key, NULL, &v, &n);
    hermes_free(v);
    return rc == HERMES_OK;
}

static void zero_arguments_are_cached(void **state)
{
    (void)state;
    runs = 0;
    assert_int_equal(answer(), 42); /* not registered: computes */
    assert_int_equal(HERMES_REGISTER(h, answer), HERMES_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(answer(), 42);
    assert_int_equal(runs, 2);
    assert_int_equal(answer_invalidate(), HERMES_OK);
    assert_int_equal(answer(), 42);
    assert_int_equal(runs, 3);
}

/* Six arguments, declared in a header and defined in another file. */
static void six_arguments_declared_in_a_header_are_cached(void **state)
{
    (void)state;
    describe_runs = 0;
    assert_int_equal(HERMES_REGISTER(h, describe, .tags = HERMES_TAGS("d")),
                     HERMES_OK);
    for (int i = 0; i < 3; i++) {
        char *s = describe(-1, 2, 2.5, "x", 'c', true);
        assert_non_null(s);
        assert_string_equal(s, "-1 2 2.5 x c 1");
        free(s);
    }
    assert_int_equal(describe_runs, 1);
    /* Each argument is part of the key. */
    char *s = describe(-1, 2, 2.5, "x", 'c', false);
    assert_string_equal(s, "-1 2 2.5 x c 0");
    free(s);
    s = describe(-1, 2, 2.5, NULL, 'c', true);
    assert_string_equal(s, "-1 2 2.5 (null) c 1");
    free(s);
    assert_int_equal(describe_runs, 3);
    s = NULL;
    assert_int_equal(describe_try(-1, 2, 2.5, "x", 'c', true, &s), HERMES_OK);
    assert_string_equal(s, "-1 2 2.5 x c 1");
    free(s);
    assert_int_equal(describe_runs, 3);
    assert_int_equal(hermes_clean(h, HERMES_TAGS("d")), HERMES_OK);
    free(describe(-1, 2, 2.5, "x", 'c', true));
    assert_int_equal(describe_runs, 4);
}

/* A second registration fails and changes nothing, key function included:
 * the entry stays under the first registration's key. */
static void failed_keyed_registration_keeps_the_first_key(void **state)
{
    (void)state;
    runs = 0;
    assert_int_equal(HERMES_REGISTER_KEYED(h, mul, key_one), HERMES_OK);
    assert_int_equal(HERMES_REGISTER_KEYED(h, mul, key_two), HERMES_EEXIST);
    assert_int_equal(HERMES_REGISTER(h, mul), HERMES_EEXIST);
    assert_int_equal(mul(3, 4), 12);
    assert_true(stored("one:3:4"));
    assert_false(stored("two:3:4"));
    assert_int_equal(mul(3, 4), 12);
    assert_int_equal(runs, 1);
}

/* A NULL string result reaches the caller and is not stored: the next call
 * runs the body again (Hermes never caches None). */
static void null_string_result_is_not_cached(void **state)
{
    (void)state;
    runs = 0;
    null_when = "nobody";
    assert_int_equal(HERMES_REGISTER(h, maybe), HERMES_OK);
    assert_null(maybe("nobody"));
    assert_null(maybe("nobody"));
    assert_int_equal(runs, 2);
    char *s = (char *)"untouched";
    assert_int_equal(maybe_try("nobody", &s), HERMES_OK);
    assert_null(s);
    assert_int_equal(runs, 3);
    /* A real string is cached as before. */
    s = maybe("ada");
    assert_string_equal(s, "<ada>");
    free(s);
    s = maybe("ada");
    assert_string_equal(s, "<ada>");
    free(s);
    assert_int_equal(runs, 4);
    null_when = NULL;
}

/* _try tells the truth where the plain form computes. */
static void try_reports_what_the_plain_form_hides(void **state)
{
    (void)state;
    int64_t v = -1;
    runs = 0;
    /* Not registered: EINVAL, nothing computed, *out untouched. */
    assert_int_equal(mul_try(2, 3, &v), HERMES_EINVAL);
    assert_int_equal(v, -1);
    assert_int_equal(runs, 0);
    assert_int_equal(mul_invalidate(2, 3), HERMES_EINVAL);
    /* The freshness options are the macro's options too; out of range is
     * refused like any option. */
    assert_int_equal(HERMES_REGISTER(h, mul, .ttl = 60, .grace = 4294968),
                     HERMES_EINVAL);
    assert_int_equal(HERMES_REGISTER(h, mul, .ttl = 60, .early_refresh = 0.5,
                                     .grace = 30, .stale_if_error = HERMES_YES),
                     HERMES_OK);
    assert_int_equal(mul_try(2, 3, &v), HERMES_OK);
    assert_int_equal(v, 6);
    v = 0;
    assert_int_equal(mul_try(2, 3, &v), HERMES_OK);
    assert_int_equal(v, 6);
    assert_int_equal(runs, 1);
    /* After close the function is detached again. */
    hermes_close(h);
    h = open_text("[hermes]\n");
    v = -1;
    assert_int_equal(mul_try(2, 3, &v), HERMES_EINVAL);
    assert_int_equal(v, -1);
    assert_int_equal(mul(2, 3), 6);
    assert_int_equal(runs, 2);
}

/* A failing backend with on_backend_error = fail: _try returns
 * HERMES_EBACKEND and computes nothing; the plain form computes. */
static void
try_fails_when_the_backend_fails_and_fail_is_configured(void **state)
{
    (void)state;
    hermes_close(h);
    hermes_rc rc = hermes_open_with(&h, "[hermes]\non_backend_error = fail\n",
                                    "test", mock_backend());
    if (rc != HERMES_OK)
        fail_msg("open: %s", hermes_errmsg(h));
    runs = 0;
    assert_int_equal(HERMES_REGISTER(h, mul), HERMES_OK);
    mock_fail_all(mock_current(), HERMES_BE_IO);
    int64_t v = -1;
    assert_int_equal(mul_try(5, 5, &v), HERMES_EBACKEND);
    assert_int_equal(v, -1);
    assert_int_equal(runs, 0);
    assert_int_equal(mul(5, 5), 25);
    assert_int_equal(runs, 1);
    mock_fail_all(mock_current(), 0);
}

/* Another process holds the entry's lock, with on_lock_timeout = fail:
 * _try returns HERMES_ETIMEOUT after lock_wait_ms and computes nothing; the
 * plain form computes. */
static void try_times_out_when_fail_is_configured(void **state)
{
    (void)state;
    hermes_close(h);
    hermes_rc rc = hermes_open_with(
        &h, "[hermes]\non_lock_timeout = fail\nlock_wait_ms = 50\n", "test",
        mock_backend());
    if (rc != HERMES_OK)
        fail_msg("open: %s", hermes_errmsg(h));
    assert_int_equal(HERMES_REGISTER_KEYED(h, mul, key_one), HERMES_OK);
    void *st;
    const hermes_backend *be = mock_inner(mock_current(), &st);
    const char *lock = "cache:lock:one:7:8";
    int acquired = 0;
    assert_int_equal(be->lock(st, (hermes_bytes){lock, strlen(lock)},
                              (hermes_bytes){"elsewhere:1:0:x", 15}, 60000,
                              &acquired),
                     HERMES_BE_OK);
    assert_int_equal(acquired, 1);
    runs = 0;
    int64_t v = -1;
    assert_int_equal(mul_try(7, 8, &v), HERMES_ETIMEOUT);
    assert_int_equal(v, -1);
    assert_int_equal(runs, 0);
    assert_int_equal(mul(7, 8), 56);
    assert_int_equal(runs, 1);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(zero_arguments_are_cached),
        T(six_arguments_declared_in_a_header_are_cached),
        T(failed_keyed_registration_keeps_the_first_key),
        T(null_string_result_is_not_cached),
        T(try_reports_what_the_plain_form_hides),
        T(try_fails_when_the_backend_fails_and_fail_is_configured),
        T(try_times_out_when_fail_is_configured),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
