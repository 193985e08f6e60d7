/*
 * Call semantics of the public API that used to be surprising (issue 7,
 * "Semantics fixed"): what an empty clean means, what a TTL of 0 means, and
 * what happens to an argument encoding that could not be built.  Runs on
 * the built-in dict backend.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <hermes/backend.h>
#include <hermes/hermes.h>

#include "mock_backend.h"

static hermes *h;

static int setup(void **state)
{
    (void)state;
    hermes_rc rc = hermes_open_string(&h, "[hermes]\n", "test");
    if (rc != HERMES_OK) {
        fprintf(stderr, "open: %s\n", hermes_errmsg(h));
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    hermes_close(h);
    h = NULL;
    return 0;
}

/* hermes_clean() with no tags is a mistake, not a request to do nothing or
 * to delete everything: the message names the call that deletes all. */
static void clean_without_tags_is_an_error_naming_flush(void **state)
{
    (void)state;
    const char *const none[] = {NULL};
    assert_int_equal(hermes_set(h, "k", "v", 1, HERMES_TAGS("t"), 0),
                     HERMES_OK);
    assert_int_equal(hermes_clean(h, NULL), HERMES_EINVAL);
    assert_non_null(strstr(hermes_errmsg(h), "hermes_flush"));
    assert_int_equal(hermes_clean(h, none), HERMES_EINVAL);
    assert_non_null(strstr(hermes_errmsg(h), "hermes_flush"));
    /* Nothing was invalidated by the refused calls. */
    void *v;
    size_t n;
    assert_int_equal(hermes_get(h, "k", HERMES_TAGS("t"), &v, &n), HERMES_OK);
    hermes_free(v);
    assert_int_equal(hermes_clean(h, HERMES_TAGS("t")), HERMES_OK);
    assert_int_equal(hermes_get(h, "k", HERMES_TAGS("t"), &v, &n),
                     HERMES_ENOTFOUND);
}

/* ----------------------------------------------------------------- TTLs */

/* A handle on the recording mock (over dict) with the given [hermes] ttl. */
static hermes *open_mock(const char *ttl)
{
    char text[128];
    snprintf(text, sizeof text, "[hermes]\nttl = %s\n", ttl);
    hermes *c;
    hermes_rc rc = hermes_open_with(&c, text, "test", mock_backend());
    if (rc != HERMES_OK)
        fail_msg("open: %s", hermes_errmsg(c));
    return c;
}

typedef struct ttl_probe {
    const char *key;
    int found;
    int64_t ttl_ms;
} ttl_probe;

static int probe_cb(void *arg, const void *key, size_t klen, const void *value,
                    size_t vlen, int64_t ttl_ms)
{
    (void)value;
    (void)vlen;
    ttl_probe *p = arg;
    if (klen == strlen(p->key) && memcmp(key, p->key, klen) == 0) {
        p->found = 1;
        p->ttl_ms = ttl_ms;
    }
    return 0;
}

/* The remaining TTL in ms the store holds for "cache:entry:<key>"; -1 for
 * no expiry, -3 when the entry is not there. */
static int64_t stored_ttl_ms(const char *key)
{
    char full[256];
    snprintf(full, sizeof full, "cache:entry:%s", key);
    void *st;
    const hermes_backend *be = mock_inner(mock_current(), &st);
    ttl_probe p = {full, 0, 0};
    hermes_bytes prefix = {full, strlen(full)};
    assert_int_equal(be->scan(st, prefix, probe_cb, &p), HERMES_BE_OK);
    return p.found ? p.ttl_ms : -3;
}

/* Within the second below ttl_s (the store counts down from the write). */
static void assert_ttl_about(const char *key, int64_t ttl_s)
{
    int64_t ms = stored_ttl_ms(key);
    if (ms > ttl_s * 1000 || ms < (ttl_s - 5) * 1000)
        fail_msg("%s: ttl %lld ms, want about %lld s", key, (long long)ms,
                 (long long)ttl_s);
}

typedef struct ttl_call {
    const char *key;
    uint32_t result_ttl; /* passed to hermes_result_ttl unless "unset" */
    int set_ttl;
    hermes_rc ttl_rc; /* what hermes_result_ttl returned */
    int runs;
} ttl_call;

static int ttl_compute(void *arg, hermes_result *res)
{
    ttl_call *t = arg;
    t->runs++;
    if (t->set_ttl)
        t->ttl_rc = hermes_result_ttl(res, t->result_ttl);
    return hermes_result_set(res, "v", 1) != HERMES_OK;
}

static int ttl_key(void *arg, char *buf, size_t cap)
{
    return snprintf(buf, cap, "%s", ((ttl_call *)arg)->key);
}

static hermes_fn *reg_ttl(hermes *c, const char *name, uint32_t ttl)
{
    hermes_fn *fn;
    hermes_fn_options o = HERMES_FN_OPTIONS(.ttl = ttl, .key = ttl_key);
    hermes_rc rc = hermes_fn_register(c, name, &o, &fn);
    if (rc != HERMES_OK)
        fail_msg("register %s: %s", name, hermes_errmsg(c));
    return fn;
}

static hermes_rc call_ttl(hermes_fn *fn, ttl_call *t)
{
    void *v;
    size_t n;
    hermes_rc rc =
        hermes_call(fn, t->key, strlen(t->key), ttl_compute, t, &v, &n);
    hermes_free(v);
    return rc;
}

/* HERMES_TTL_DEFAULT (0) defers to the next level in every API that takes
 * a TTL; HERMES_TTL_FOREVER is no expiry. */
static void ttl_zero_means_the_default_everywhere(void **state)
{
    (void)state;
    hermes_close(h);
    h = open_mock("100");

    /* A function's 0: the handle's ttl. */
    ttl_call t = {.key = "f0"};
    assert_int_equal(call_ttl(reg_ttl(h, "f0", HERMES_TTL_DEFAULT), &t),
                     HERMES_OK);
    assert_ttl_about("f0", 100);

    /* A result's 0: the function's ttl, not "never". */
    ttl_call r0 = {.key = "r0", .set_ttl = 1, .result_ttl = 0};
    assert_int_equal(call_ttl(reg_ttl(h, "r0", 50), &r0), HERMES_OK);
    assert_int_equal(r0.ttl_rc, HERMES_OK);
    assert_ttl_about("r0", 50);

    /* hermes_set's 0: the handle's ttl. */
    assert_int_equal(hermes_set(h, "s0", "v", 1, NULL, 0), HERMES_OK);
    assert_ttl_about("s0", 100);

    /* Forever, at each level. */
    ttl_call rf = {.key = "rf", .set_ttl = 1, .result_ttl = HERMES_TTL_FOREVER};
    assert_int_equal(call_ttl(reg_ttl(h, "rf", 50), &rf), HERMES_OK);
    assert_int_equal(stored_ttl_ms("rf"), -1);
    ttl_call ff = {.key = "ff"};
    assert_int_equal(call_ttl(reg_ttl(h, "ff", HERMES_TTL_FOREVER), &ff),
                     HERMES_OK);
    assert_int_equal(stored_ttl_ms("ff"), -1);
    assert_int_equal(hermes_set(h, "sf", "v", 1, NULL, HERMES_TTL_FOREVER),
                     HERMES_OK);
    assert_int_equal(stored_ttl_ms("sf"), -1);

    /* The config's forever reaches a function's and hermes_set's 0. */
    hermes_close(h);
    h = open_mock("forever");
    ttl_call cf = {.key = "cf"};
    assert_int_equal(call_ttl(reg_ttl(h, "cf", HERMES_TTL_DEFAULT), &cf),
                     HERMES_OK);
    assert_int_equal(stored_ttl_ms("cf"), -1);
    assert_int_equal(hermes_set(h, "cs", "v", 1, NULL, 0), HERMES_OK);
    assert_int_equal(stored_ttl_ms("cs"), -1);
}

/* Backends hold 32-bit milliseconds: HERMES_TTL_MAX seconds is the longest
 * finite TTL, and one second more is an error wherever it is given, never
 * a shorter TTL. */
static void ttl_beyond_what_a_backend_holds_is_an_error(void **state)
{
    (void)state;
    hermes_close(h);
    h = open_mock("100");
    hermes_fn *fn;
    hermes_fn_options o =
        HERMES_FN_OPTIONS(.ttl = HERMES_TTL_MAX + 1, .key = ttl_key);
    assert_int_equal(hermes_fn_register(h, "long", &o, &fn), HERMES_EINVAL);
    assert_non_null(strstr(hermes_errmsg(h), "HERMES_TTL_FOREVER"));

    ttl_call t = {.key = "max"};
    assert_int_equal(call_ttl(reg_ttl(h, "max", HERMES_TTL_MAX), &t),
                     HERMES_OK);
    assert_ttl_about("max", HERMES_TTL_MAX);

    assert_int_equal(hermes_set(h, "s", "v", 1, NULL, HERMES_TTL_MAX + 1),
                     HERMES_EINVAL);
    assert_non_null(strstr(hermes_errmsg(h), "HERMES_TTL_FOREVER"));
    assert_int_equal(stored_ttl_ms("s"), -3);
    assert_int_equal(hermes_set(h, "s", "v", 1, NULL, HERMES_TTL_FOREVER - 1),
                     HERMES_EINVAL);
    assert_int_equal(stored_ttl_ms("s"), -3);

    /* From a compute callback: the call fails, nothing is stored, and the
     * next call computes again. */
    ttl_call r = {.key = "r", .set_ttl = 1, .result_ttl = HERMES_TTL_MAX + 1};
    hermes_fn *rf = reg_ttl(h, "r", 60);
    assert_int_equal(call_ttl(rf, &r), HERMES_EINVAL);
    assert_int_equal(r.ttl_rc, HERMES_EINVAL);
    assert_non_null(strstr(hermes_errmsg(h), "hermes_result_ttl"));
    assert_int_equal(stored_ttl_ms("r"), -3);
    r.result_ttl = 30;
    assert_int_equal(call_ttl(rf, &r), HERMES_OK);
    assert_int_equal(r.runs, 2);
    assert_ttl_about("r", 30);
}

/* ------------------------------------------------------ argument encoding */

static int encoded_runs;

static int encoded_compute(void *arg, hermes_result *res)
{
    (void)arg;
    encoded_runs++;
    return hermes_result_set(res, "one", 3) != HERMES_OK;
}

/* An append that fails says so, the encoding stays failed, and hermes_call
 * refuses it: the part encoded before the failure (here the encoding of
 * the one-argument list (1)) must not find that list's entry. */
static void failed_argument_encoding_is_refused(void **state)
{
    (void)state;
    hermes_fn *fn;
    assert_int_equal(hermes_fn_register(h, "enc", NULL, &fn), HERMES_OK);
    void *v;
    size_t n;
    hermes_args one = HERMES_ARGS_INIT;
    assert_int_equal(hermes_args_int(&one, 1), HERMES_OK);
    assert_int_equal(
        hermes_call(fn, one.data, one.len, encoded_compute, NULL, &v, &n),
        HERMES_OK);
    hermes_free(v);
    hermes_args_free(&one);
    assert_int_equal(encoded_runs, 1);

    hermes_args a = HERMES_ARGS_INIT;
    assert_int_equal(hermes_args_int(&a, 1), HERMES_OK);
    /* More than any allocation can hold: fails before reading the bytes. */
    assert_int_equal(hermes_args_bytes(&a, "x", SIZE_MAX / 2), HERMES_ENOMEM);
    assert_int_equal(hermes_args_int(&a, 2), HERMES_ENOMEM); /* stays failed */
    assert_int_equal(hermes_args_str(&a, "s"), HERMES_ENOMEM);
    assert_null(a.data);
    assert_true(a.len == HERMES_ARGS_FAILED);
    v = (void *)&a;
    assert_int_equal(
        hermes_call(fn, a.data, a.len, encoded_compute, NULL, &v, &n),
        HERMES_ENOMEM);
    assert_null(v);
    assert_non_null(strstr(hermes_errmsg(h), "argument encoding failed"));
    assert_int_equal(encoded_runs, 1);
    assert_int_equal(hermes_invalidate(fn, a.data, a.len, NULL), HERMES_ENOMEM);
    /* Freed, it is a fresh encoding again. */
    hermes_args_free(&a);
    assert_int_equal(hermes_args_int(&a, 1), HERMES_OK);
    assert_int_equal(
        hermes_call(fn, a.data, a.len, encoded_compute, NULL, &v, &n),
        HERMES_OK);
    hermes_free(v);
    hermes_args_free(&a);
    assert_int_equal(encoded_runs, 1);

    assert_int_equal(hermes_args_int(NULL, 1), HERMES_EINVAL);
    assert_int_equal(hermes_args_bytes(&a, NULL, 3), HERMES_EINVAL);
    hermes_args_free(&a);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(clean_without_tags_is_an_error_naming_flush),
        T(ttl_zero_means_the_default_everywhere),
        T(ttl_beyond_what_a_backend_holds_is_an_error),
        T(failed_argument_encoding_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
