/*
 * Errors that tell the truth: every error return of the public API leaves
 * a message that describes this failure (not an earlier one), every call
 * that returns a hermes_rc clears it on entry, so it is empty after a
 * success, and the message belongs to one thread and one handle.  Runs on
 * the recording mock over the dict backend, which can be made to fail
 * with a detail of the plugin's own (host->error_detail).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <hermes/hermes.h>

#include "mock_backend.h"

/* ------------------------------------------------------------ helpers */

static hermes *open_mock(const char *ini)
{
    hermes *h = NULL;
    hermes_rc rc = hermes_open_with(&h, ini, "test.ini", mock_backend());
    if (rc != HERMES_OK)
        fail_msg("open: %s: %s", hermes_strerror(rc), hermes_errmsg(h));
    return h;
}

/* Leaves a known, different message behind, so a check that a later
 * failure's message is "current" cannot pass on a stale one.  It touches
 * no backend, so it works while the mock fails. */
#define SENTINEL                                                               \
    "hermes_fn_register: function name 'sentinel name' must be non-empty and " \
    "without spaces or control characters"
static void leave_sentinel(hermes *h)
{
    hermes_fn *fn;
    assert_int_equal(hermes_fn_register(h, "sentinel name", NULL, &fn),
                     HERMES_EINVAL);
    assert_string_equal(hermes_errmsg(h), SENTINEL);
}

/* The call returned want and its message is non-empty, new, and says
 * `needle`. */
#define EXPECT_FAIL(h, call, want, needle)                                     \
    do {                                                                       \
        leave_sentinel(h);                                                     \
        hermes_rc rc_ = (call);                                                \
        assert_int_equal(rc_, (want));                                         \
        const char *m_ = hermes_errmsg(h);                                     \
        if (!*m_ || strcmp(m_, SENTINEL) == 0 || !strstr(m_, (needle)))        \
            fail_msg("%s: message '%s' does not say '%s'", #call, m_,          \
                     (needle));                                                \
    } while (0)

/* A success on h leaves no message. */
static void expect_clear(hermes *h)
{
    assert_int_equal(hermes_set(h, "ok-key", "v", 1, NULL, 0), HERMES_OK);
    assert_string_equal(hermes_errmsg(h), "");
}

static int compute_ok(void *arg, hermes_result *res)
{
    (void)arg;
    return hermes_result_set(res, "value", 5) != HERMES_OK;
}

static int compute_fails(void *arg, hermes_result *res)
{
    (void)arg;
    hermes_result_error(res, "the database is on fire");
    return 1;
}

static int key_fails(void *arg, char *buf, size_t cap)
{
    (void)arg;
    (void)buf;
    (void)cap;
    return -1;
}

static hermes_rc call(hermes_fn *fn, hermes_compute_fn compute, void *arg)
{
    void *v;
    size_t n;
    hermes_rc rc = hermes_call(fn, "a", 1, compute, arg, &v, &n);
    hermes_free(v);
    return rc;
}

/* -------------------------------------------------------- the handle */

static void open_errors(void **state)
{
    (void)state;
    hermes *h = NULL;
    assert_int_equal(hermes_open(NULL, NULL), HERMES_EINVAL);
    assert_non_null(strstr(hermes_errmsg(NULL), "hermes_open: out is NULL"));
    assert_int_equal(hermes_open_string(NULL, "", NULL), HERMES_EINVAL);
    assert_non_null(strstr(hermes_errmsg(NULL), "hermes_open_string"));
    assert_int_equal(hermes_open_defaults(NULL), HERMES_EINVAL);
    assert_non_null(strstr(hermes_errmsg(NULL), "hermes_open_defaults"));
    assert_int_equal(hermes_open_with(NULL, NULL, NULL, mock_backend()),
                     HERMES_EINVAL);
    assert_non_null(strstr(hermes_errmsg(NULL), "hermes_open_with"));

    assert_int_equal(hermes_open_string(&h, NULL, NULL), HERMES_EINVAL);
    assert_non_null(strstr(hermes_errmsg(h), "text is NULL"));
    hermes_close(h);
    assert_int_equal(hermes_open_with(&h, NULL, NULL, NULL), HERMES_EINVAL);
    assert_non_null(strstr(hermes_errmsg(h), "backend is NULL"));
    hermes_close(h);
    assert_int_equal(hermes_open_string(&h, "[hermes]\nttl = abc\n", "a.ini"),
                     HERMES_ECONFIG);
    assert_non_null(strstr(hermes_errmsg(h), "a.ini:2: ttl: not a number"));
    hermes_close(h);
    assert_int_equal(
        hermes_open_string(&h, "[hermes]\nbackend = nonesuch\n", "b.ini"),
        HERMES_EPLUGIN);
    assert_non_null(strstr(hermes_errmsg(h), "nonesuch"));
    hermes_close(h);
}

/* Calls on a handle whose open failed are refused with a message that
 * says why the handle is unusable; the open's reason stays readable. */
static void calls_on_a_failed_handle(void **state)
{
    (void)state;
    hermes *h = NULL;
    hermes_fn *fn;
    void *v;
    size_t n;
    assert_int_equal(hermes_open_string(&h, "[hermes]\nttl = abc\n", "c.ini"),
                     HERMES_ECONFIG);
    const char *why = "c.ini:2: ttl: not a number";
    assert_non_null(strstr(hermes_errmsg(h), why));
    assert_int_equal(hermes_get(h, "k", NULL, &v, &n), HERMES_EINVAL);
    assert_non_null(strstr(hermes_errmsg(h), "hermes_get: the handle failed"));
    assert_non_null(strstr(hermes_errmsg(h), why));
    assert_int_equal(hermes_set(h, "k", "v", 1, NULL, 0), HERMES_EINVAL);
    assert_non_null(strstr(hermes_errmsg(h), "hermes_set: the handle failed"));
    assert_int_equal(hermes_delete(h, "k"), HERMES_EINVAL);
    assert_non_null(strstr(hermes_errmsg(h), "hermes_delete"));
    assert_int_equal(hermes_clean(h, HERMES_TAGS("t")), HERMES_EINVAL);
    assert_non_null(strstr(hermes_errmsg(h), "hermes_clean"));
    assert_int_equal(hermes_flush(h), HERMES_EINVAL);
    assert_non_null(strstr(hermes_errmsg(h), "hermes_flush"));
    assert_int_equal(hermes_fn_register(h, "f", NULL, &fn), HERMES_EINVAL);
    assert_non_null(strstr(hermes_errmsg(h), "hermes_fn_register"));
    hermes_close(h);
}

static void calls_on_a_null_handle(void **state)
{
    (void)state;
    hermes_fn *fn;
    void *v;
    size_t n;
    assert_int_equal(hermes_get(NULL, "k", NULL, &v, &n), HERMES_EINVAL);
    assert_string_equal(hermes_errmsg(NULL), "hermes_get: the handle is NULL");
    assert_int_equal(hermes_set(NULL, "k", "v", 1, NULL, 0), HERMES_EINVAL);
    assert_string_equal(hermes_errmsg(NULL), "hermes_set: the handle is NULL");
    assert_int_equal(hermes_delete(NULL, "k"), HERMES_EINVAL);
    assert_string_equal(hermes_errmsg(NULL),
                        "hermes_delete: the handle is NULL");
    assert_int_equal(hermes_clean(NULL, NULL), HERMES_EINVAL);
    assert_string_equal(hermes_errmsg(NULL),
                        "hermes_clean: the handle is NULL");
    assert_int_equal(hermes_flush(NULL), HERMES_EINVAL);
    assert_string_equal(hermes_errmsg(NULL),
                        "hermes_flush: the handle is NULL");
    assert_int_equal(hermes_fn_register(NULL, "f", NULL, &fn), HERMES_EINVAL);
    assert_string_equal(hermes_errmsg(NULL),
                        "hermes_fn_register: the handle is NULL");
    assert_int_equal(call(NULL, compute_ok, NULL), HERMES_EINVAL);
    assert_string_equal(hermes_errmsg(NULL), "hermes_call: fn is NULL");
    assert_int_equal(hermes_invalidate(NULL, "a", 1, NULL), HERMES_EINVAL);
    assert_string_equal(hermes_errmsg(NULL), "hermes_invalidate: fn is NULL");
    assert_int_equal(hermes_result_set(NULL, "a", 1), HERMES_EINVAL);
    assert_string_equal(hermes_errmsg(NULL), "hermes_result_set: res is NULL");
}

/* ------------------------------------------------------- registration */

static void register_errors(void **state)
{
    (void)state;
    hermes *h = open_mock(NULL);
    hermes_fn *fn, *again;
    EXPECT_FAIL(h, hermes_fn_register(h, "f", NULL, NULL), HERMES_EINVAL,
                "out is NULL");
    EXPECT_FAIL(h, hermes_fn_register(h, NULL, NULL, &fn), HERMES_EINVAL,
                "function name NULL");
    EXPECT_FAIL(h, hermes_fn_register(h, "with space", NULL, &fn),
                HERMES_EINVAL, "'with space' must be non-empty");
    hermes_fn_options bad = HERMES_FN_OPTIONS(.tags = HERMES_TAGS("ok", ""));
    EXPECT_FAIL(h, hermes_fn_register(h, "g", &bad, &fn), HERMES_EINVAL,
                "tag 2 of the list is empty");
    assert_int_equal(hermes_fn_register(h, "f", NULL, &fn), HERMES_OK);
    assert_string_equal(hermes_errmsg(h), "");
    EXPECT_FAIL(h, hermes_fn_register(h, "f", NULL, &again), HERMES_EEXIST,
                "function 'f' is already registered");
    hermes_close(h);
}

/* The bug: one failed registration left its message behind for every
 * later call, successful ones included. */
static void a_success_clears_the_message(void **state)
{
    (void)state;
    hermes *h = open_mock(NULL);
    hermes_fn *fn, *again;
    void *v;
    size_t n;
    assert_int_equal(hermes_fn_register(h, "f", NULL, &fn), HERMES_OK);
    assert_int_equal(hermes_fn_register(h, "f", NULL, &again), HERMES_EEXIST);
    assert_string_not_equal(hermes_errmsg(h), "");
    assert_int_equal(call(fn, compute_ok, NULL), HERMES_OK);
    assert_string_equal(hermes_errmsg(h), "");

    assert_int_equal(hermes_fn_register(h, "f", NULL, &again), HERMES_EEXIST);
    assert_int_equal(hermes_set(h, "k", "v", 1, NULL, 0), HERMES_OK);
    assert_string_equal(hermes_errmsg(h), "");
    assert_int_equal(hermes_fn_register(h, "f", NULL, &again), HERMES_EEXIST);
    assert_int_equal(hermes_get(h, "k", NULL, &v, &n), HERMES_OK);
    hermes_free(v);
    assert_string_equal(hermes_errmsg(h), "");
    assert_int_equal(hermes_fn_register(h, "f", NULL, &again), HERMES_EEXIST);
    assert_int_equal(hermes_delete(h, "k"), HERMES_OK);
    assert_string_equal(hermes_errmsg(h), "");
    assert_int_equal(hermes_fn_register(h, "f", NULL, &again), HERMES_EEXIST);
    assert_int_equal(hermes_clean(h, HERMES_TAGS("t")), HERMES_OK);
    assert_string_equal(hermes_errmsg(h), "");
    assert_int_equal(hermes_fn_register(h, "f", NULL, &again), HERMES_EEXIST);
    assert_int_equal(hermes_invalidate(fn, "a", 1, NULL), HERMES_OK);
    assert_string_equal(hermes_errmsg(h), "");
    assert_int_equal(hermes_fn_register(h, "f", NULL, &again), HERMES_EEXIST);
    assert_int_equal(hermes_flush(h), HERMES_OK);
    assert_string_equal(hermes_errmsg(h), "");
    hermes_close(h);
}

/* -------------------------------------------------------- hermes_call */

/* A compute callback whose own library calls fail: the message of the
 * outer call is what remains. */
static int compute_with_failing_calls(void *arg, hermes_result *res)
{
    hermes *h = arg;
    void *v;
    size_t n;
    if (hermes_get(h, "absent", NULL, &v, &n) != HERMES_ENOTFOUND)
        return 1;
    if (hermes_result_set(res, NULL, 3) != HERMES_EINVAL)
        return 1;
    if (!strstr(hermes_errmsg(h), "hermes_result_set: p is NULL but n is 3"))
        return 1;
    return hermes_result_set(res, "x", 1) != HERMES_OK;
}

static void call_errors(void **state)
{
    (void)state;
    hermes *h = open_mock("[hermes]\non_backend_error = fail\n");
    hermes_fn *fn, *keyed;
    void *v;
    size_t n;
    assert_int_equal(hermes_fn_register(h, "f", NULL, &fn), HERMES_OK);
    hermes_fn_options ko = HERMES_FN_OPTIONS(.key = key_fails);
    assert_int_equal(hermes_fn_register(h, "keyed", &ko, &keyed), HERMES_OK);

    EXPECT_FAIL(h, hermes_call(fn, "a", 1, NULL, NULL, &v, &n), HERMES_EINVAL,
                "hermes_call f: compute is NULL");
    EXPECT_FAIL(h, hermes_call(fn, "a", 1, compute_ok, NULL, NULL, &n),
                HERMES_EINVAL, "value is NULL");
    EXPECT_FAIL(h, hermes_call(fn, "a", 1, compute_ok, NULL, &v, NULL),
                HERMES_EINVAL, "len is NULL");
    EXPECT_FAIL(h, hermes_call(fn, NULL, 1, compute_ok, NULL, &v, &n),
                HERMES_EINVAL, "args is NULL but args_len is not 0");
    EXPECT_FAIL(h, call(keyed, compute_ok, NULL), HERMES_EINVAL,
                "keyed: the key function failed");
    EXPECT_FAIL(h, call(fn, compute_fails, NULL), HERMES_ECOMPUTE,
                "f: the database is on fire");

    assert_int_equal(call(fn, compute_with_failing_calls, h), HERMES_OK);
    assert_string_equal(hermes_errmsg(h), "");

    mock_fail_all(mock_current(), HERMES_BE_IO);
    EXPECT_FAIL(h, call(fn, compute_ok, NULL), HERMES_EBACKEND,
                "f: backend dict: backend unreachable or timed out");
    mock_fail_detail(mock_current(), "connect: Connection refused");
    EXPECT_FAIL(h, call(fn, compute_ok, NULL), HERMES_EBACKEND,
                "backend unreachable or timed out: connect: Connection "
                "refused");
    mock_fail_detail(mock_current(), NULL);
    mock_fail_all(mock_current(), 0);
    expect_clear(h);
    hermes_close(h);
}

/* on_backend_error = compute: the call succeeds, and says nothing. */
static void a_computed_fallback_is_a_success(void **state)
{
    (void)state;
    hermes *h = open_mock(NULL);
    hermes_fn *fn;
    assert_int_equal(hermes_fn_register(h, "f", NULL, &fn), HERMES_OK);
    mock_fail_all(mock_current(), HERMES_BE_IO);
    mock_fail_detail(mock_current(), "timed out");
    leave_sentinel(h);
    assert_int_equal(call(fn, compute_ok, NULL), HERMES_OK);
    assert_string_equal(hermes_errmsg(h), "");
    hermes_close(h);
}

/* ETIMEOUT: another thread computes the entry until this caller's wait
 * (lock_wait_ms = 20, on_lock_timeout = fail) is over. */
typedef struct slow {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started, release;
} slow;

static int compute_slow(void *arg, hermes_result *res)
{
    slow *s = arg;
    pthread_mutex_lock(&s->mu);
    s->started = 1;
    pthread_cond_broadcast(&s->cv);
    while (!s->release)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    return hermes_result_set(res, "slow", 4) != HERMES_OK;
}

typedef struct leader_arg {
    hermes_fn *fn;
    slow *s;
    hermes_rc rc;
} leader_arg;

static void *leader(void *p)
{
    leader_arg *a = p;
    a->rc = call(a->fn, compute_slow, a->s);
    return NULL;
}

static void timeout_error(void **state)
{
    (void)state;
    hermes *h =
        open_mock("[hermes]\nlock_wait_ms = 20\non_lock_timeout = fail\n");
    hermes_fn *fn;
    assert_int_equal(hermes_fn_register(h, "f", NULL, &fn), HERMES_OK);
    slow s = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    leader_arg la = {fn, &s, HERMES_EINVAL};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, leader, &la), 0);
    pthread_mutex_lock(&s.mu);
    while (!s.started)
        pthread_cond_wait(&s.cv, &s.mu);
    pthread_mutex_unlock(&s.mu);
    EXPECT_FAIL(h, call(fn, compute_ok, NULL), HERMES_ETIMEOUT,
                "f: waited 20 ms for another caller's computation");
    pthread_mutex_lock(&s.mu);
    s.release = 1;
    pthread_cond_broadcast(&s.cv);
    pthread_mutex_unlock(&s.mu);
    pthread_join(t, NULL);
    assert_int_equal(la.rc, HERMES_OK);
    hermes_close(h);
}

static void invalidate_errors(void **state)
{
    (void)state;
    hermes *h = open_mock(NULL);
    hermes_fn *fn;
    assert_int_equal(hermes_fn_register(h, "f", NULL, &fn), HERMES_OK);
    EXPECT_FAIL(h, hermes_invalidate(fn, NULL, 2, NULL), HERMES_EINVAL,
                "hermes_invalidate f: args is NULL");
    mock_fail_all(mock_current(), HERMES_BE_IO);
    mock_fail_detail(mock_current(), "READONLY You can't write");
    EXPECT_FAIL(h, hermes_invalidate(fn, "a", 1, NULL), HERMES_EBACKEND,
                "invalidate f: backend unreachable or timed out: READONLY");
    mock_fail_all(mock_current(), 0);
    mock_fail_detail(mock_current(), NULL);
    expect_clear(h);
    hermes_close(h);
}

/* ------------------------------------------------------ direct access */

static void direct_errors(void **state)
{
    (void)state;
    hermes *h = open_mock(NULL);
    void *v;
    size_t n;
    EXPECT_FAIL(h, hermes_get(h, "k", NULL, NULL, &n), HERMES_EINVAL,
                "hermes_get: value is NULL");
    EXPECT_FAIL(h, hermes_get(h, "k", NULL, &v, NULL), HERMES_EINVAL,
                "hermes_get: len is NULL");
    EXPECT_FAIL(h, hermes_get(h, NULL, NULL, &v, &n), HERMES_EINVAL,
                "hermes_get: key is NULL");
    EXPECT_FAIL(h, hermes_get(h, "k", HERMES_TAGS(""), &v, &n), HERMES_EINVAL,
                "tag 1 of the list is empty");
    EXPECT_FAIL(h, hermes_get(h, "missing", NULL, &v, &n), HERMES_ENOTFOUND,
                "get missing: no entry");
    assert_int_equal(hermes_set(h, "tagged", "v", 1, HERMES_TAGS("t"), 0),
                     HERMES_OK);
    assert_int_equal(hermes_clean(h, HERMES_TAGS("t")), HERMES_OK);
    EXPECT_FAIL(h, hermes_get(h, "tagged", HERMES_TAGS("t"), &v, &n),
                HERMES_ENOTFOUND, "get tagged: a tag was cleaned");

    EXPECT_FAIL(h, hermes_set(h, "k", NULL, 3, NULL, 0), HERMES_EINVAL,
                "hermes_set: value is NULL but len is 3");
    EXPECT_FAIL(h, hermes_set(h, NULL, "v", 1, NULL, 0), HERMES_EINVAL,
                "hermes_set: key is NULL");
    EXPECT_FAIL(h, hermes_set(h, "k", "v", 1, HERMES_TAGS("a", ""), 0),
                HERMES_EINVAL, "tag 2 of the list is empty");
    EXPECT_FAIL(h, hermes_delete(h, NULL), HERMES_EINVAL,
                "hermes_delete: key is NULL");
    EXPECT_FAIL(h, hermes_clean(h, HERMES_TAGS("")), HERMES_EINVAL,
                "tag 1 of the list is empty");
    EXPECT_FAIL(h, hermes_clean(h, HERMES_TAGS(NULL)), HERMES_EINVAL,
                "clean: no tags given");
    expect_clear(h);
    hermes_close(h);
}

/* The backend's failures, each with the plugin's detail. */
static void direct_backend_errors(void **state)
{
    (void)state;
    hermes *h = open_mock(NULL);
    void *v;
    size_t n;
    mock_state *m = mock_current();
    mock_fail_detail(m, "NOAUTH Authentication required.");
#define BACKEND_FAIL(status, call_, want, needle)                              \
    do {                                                                       \
        leave_sentinel(h);                                                     \
        mock_fail_all(m, (status));                                            \
        hermes_rc rc_ = (call_);                                               \
        mock_fail_all(m, 0);                                                   \
        assert_int_equal(rc_, (want));                                         \
        const char *msg_ = hermes_errmsg(h);                                   \
        if (!strstr(msg_, (needle)) ||                                         \
            !strstr(msg_, ": NOAUTH Authentication required."))                \
            fail_msg("%s: message '%s' does not say '%s' and the detail",      \
                     #call_, msg_, (needle));                                  \
    } while (0)
    BACKEND_FAIL(HERMES_BE_IO, hermes_get(h, "k", NULL, &v, &n),
                 HERMES_EBACKEND, "get k: backend unreachable");
    BACKEND_FAIL(HERMES_BE_PROTOCOL, hermes_set(h, "k", "v", 1, NULL, 0),
                 HERMES_EBACKEND, "set k: unexpected answer");
    BACKEND_FAIL(HERMES_BE_TOOBIG, hermes_set(h, "k", "v", 1, NULL, 0),
                 HERMES_ETOOBIG, "set k: key or value too large");
    BACKEND_FAIL(HERMES_BE_IO, hermes_delete(h, "k"), HERMES_EBACKEND,
                 "delete k: backend unreachable");
    BACKEND_FAIL(HERMES_BE_IO, hermes_clean(h, HERMES_TAGS("t")),
                 HERMES_EBACKEND, "clean: backend unreachable");
    BACKEND_FAIL(HERMES_BE_IO, hermes_flush(h), HERMES_EBACKEND,
                 "flush: backend unreachable");
#undef BACKEND_FAIL
    /* A detail belongs to one failure: the next failure without one does
     * not repeat it. */
    mock_fail_detail(m, NULL);
    mock_fail_all(m, HERMES_BE_IO);
    assert_int_equal(hermes_flush(h), HERMES_EBACKEND);
    mock_fail_all(m, 0);
    assert_string_equal(hermes_errmsg(h),
                        "flush: backend unreachable or timed out");
    expect_clear(h);
    hermes_close(h);
}

/* ------------------------------------------- options, result, macros */

static void options_errors(void **state)
{
    (void)state;
    hermes_options *o;
    assert_int_equal(hermes_options_new(NULL), HERMES_EINVAL);
    assert_string_equal(hermes_errmsg(NULL), "hermes_options_new: out is NULL");
    assert_int_equal(hermes_options_new(&o), HERMES_OK);
    assert_string_equal(hermes_errmsg(NULL), "");
    assert_int_equal(hermes_options_set(NULL, NULL, "ttl", "1"), HERMES_EINVAL);
    assert_string_equal(hermes_errmsg(NULL),
                        "hermes_options_set: the options is NULL");
    assert_int_equal(hermes_options_set(o, NULL, NULL, "1"), HERMES_EINVAL);
    assert_string_equal(hermes_errmsg(NULL), "hermes_options_set: key is NULL");
    assert_int_equal(hermes_options_set(o, NULL, "ttl", "1"), HERMES_OK);
    assert_string_equal(hermes_errmsg(NULL), "");
    hermes_options_free(o);
}

static void args_errors(void **state)
{
    (void)state;
    hermes_args a = HERMES_ARGS_INIT;
    assert_int_equal(hermes_args_int(NULL, 1), HERMES_EINVAL);
    assert_string_equal(hermes_errmsg(NULL), "hermes_args: a is NULL");
    assert_int_equal(hermes_args_int(&a, 1), HERMES_OK);
    assert_string_equal(hermes_errmsg(NULL), "");
    assert_int_equal(hermes_args_bytes(&a, NULL, 4), HERMES_EINVAL);
    assert_string_equal(hermes_errmsg(NULL),
                        "hermes_args_bytes: p is NULL but n is 4");
    assert_int_equal(hermes_args_str(&a, "x"), HERMES_ENOMEM);
    assert_non_null(strstr(hermes_errmsg(NULL), "an earlier append failed"));
    hermes_args_free(&a);
    assert_int_equal(hermes_args_str(&a, "x"), HERMES_OK);
    assert_string_equal(hermes_errmsg(NULL), "");
    hermes_args_free(&a);
}

/* A compute callback's failing result call: the message says so at once. */
static int compute_bad_ttl(void *arg, hermes_result *res)
{
    hermes *h = arg;
    if (hermes_result_ttl(res, HERMES_TTL_MAX + 1) != HERMES_EINVAL)
        return 1;
    if (!strstr(hermes_errmsg(h), "hermes_result_ttl: "))
        return 1;
    return hermes_result_set(res, "x", 1) != HERMES_OK;
}

static void result_errors(void **state)
{
    (void)state;
    hermes *h = open_mock(NULL);
    hermes_fn *fn;
    assert_int_equal(hermes_fn_register(h, "f", NULL, &fn), HERMES_OK);
    assert_int_equal(hermes_result_ttl(NULL, 1), HERMES_EINVAL);
    assert_string_equal(hermes_errmsg(NULL), "hermes_result_ttl: res is NULL");
    /* The callback checks its own message; the call then fails on the TTL,
     * with a message of its own. */
    leave_sentinel(h);
    hermes_rc rc = call(fn, compute_bad_ttl, h);
    assert_int_not_equal(rc, HERMES_OK);
    assert_string_not_equal(hermes_errmsg(h), "");
    assert_string_not_equal(hermes_errmsg(h), SENTINEL);
    hermes_close(h);
}

HERMES_FUNC(int64_t, twice, int64_t, a)
{
    return 2 * a;
}

static void macro_errors(void **state)
{
    (void)state;
    int64_t out = 0;
    assert_int_equal(twice_try(2, &out), HERMES_EINVAL);
    assert_non_null(strstr(hermes_errmsg(NULL), "not registered"));
    assert_int_equal(twice_invalidate(2), HERMES_EINVAL);
    assert_non_null(strstr(hermes_errmsg(NULL), "not registered"));
    hermes *h = open_mock(NULL);
    assert_int_equal(HERMES_REGISTER(h, twice), HERMES_OK);
    assert_int_equal(twice_try(2, &out), HERMES_OK);
    assert_int_equal(out, 4);
    assert_string_equal(hermes_errmsg(h), "");
    assert_int_equal(HERMES_REGISTER(h, twice), HERMES_EEXIST);
    assert_non_null(strstr(hermes_errmsg(h), "'twice' is already registered"));
    hermes_close(h);
}

/* ------------------------------------------------ one slot, per handle */

static void the_message_belongs_to_its_handle(void **state)
{
    (void)state;
    hermes *a = open_mock(NULL), *b = open_mock(NULL);
    hermes_fn *fn;
    assert_int_equal(hermes_fn_register(a, "bad name", NULL, &fn),
                     HERMES_EINVAL);
    assert_string_not_equal(hermes_errmsg(a), "");
    assert_string_equal(hermes_errmsg(b), ""); /* not b's failure */
    /* One slot per thread: the next call, on any handle, clears it. */
    assert_int_equal(hermes_flush(b), HERMES_OK);
    assert_string_equal(hermes_errmsg(a), "");
    /* A handle opened where a closed one lived does not inherit its
     * message. */
    assert_int_equal(hermes_fn_register(a, "bad name", NULL, &fn),
                     HERMES_EINVAL);
    hermes_close(a);
    hermes *c = open_mock(NULL);
    assert_string_equal(hermes_errmsg(c), "");
    hermes_close(c);
    hermes_close(b);
}

typedef struct other {
    hermes *h;
    char seen[256];
    hermes_rc rc;
} other;

static void *fail_elsewhere(void *p)
{
    other *o = p;
    hermes_fn *fn;
    snprintf(o->seen, sizeof o->seen, "%s", hermes_errmsg(o->h));
    o->rc = hermes_fn_register(o->h, "", NULL, &fn);
    return NULL;
}

static void the_message_belongs_to_its_thread(void **state)
{
    (void)state;
    hermes *h = open_mock(NULL);
    leave_sentinel(h);
    other o = {h, "", HERMES_OK};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fail_elsewhere, &o), 0);
    pthread_join(t, NULL);
    assert_string_equal(o.seen, "");       /* not this thread's failure */
    assert_int_equal(o.rc, HERMES_EINVAL); /* it failed over there... */
    assert_string_equal(hermes_errmsg(h), SENTINEL); /* ...not here */
    hermes_close(h);
}

/* A pthread key per handle capped handles at PTHREAD_KEYS_MAX (1024), and
 * past it messages were silently gone. */
#define MANY_HANDLES 1100
static void many_handles_all_report(void **state)
{
    (void)state;
    hermes **hs = calloc(MANY_HANDLES, sizeof *hs);
    assert_non_null(hs);
    for (int i = 0; i < MANY_HANDLES; i++) {
        assert_int_equal(hermes_open_defaults(&hs[i]), HERMES_OK);
        hermes_fn *fn;
        assert_int_equal(hermes_fn_register(hs[i], "", NULL, &fn),
                         HERMES_EINVAL);
        if (!strstr(hermes_errmsg(hs[i]), "function name ''"))
            fail_msg("handle %d: message '%s'", i, hermes_errmsg(hs[i]));
    }
    for (int i = 0; i < MANY_HANDLES; i++)
        hermes_close(hs[i]);
    free(hs);
}

/* ------------------------------------------------------------ recursion */

typedef struct rec {
    hermes_fn *self, *other;
    hermes_rc inner;
    char msg[256];
    int depth;
} rec;

/* f(a) calls f(a) again. */
static int compute_direct(void *arg, hermes_result *res)
{
    rec *r = arg;
    if (r->depth++ > 2)
        return 1; /* would recurse for ever: the test fails below */
    r->inner = call(r->self, compute_direct, r);
    snprintf(r->msg, sizeof r->msg, "%s",
             hermes_errmsg(hermes_fn_handle(r->self)));
    return hermes_result_set(res, "d", 1) != HERMES_OK;
}

/* f(a) calls g(a), which calls f(a). */
static int compute_g(void *arg, hermes_result *res);
static int compute_f(void *arg, hermes_result *res)
{
    rec *r = arg;
    if (r->depth++ > 4)
        return 1;
    hermes_rc rc = call(r->other, compute_g, r);
    return rc == HERMES_OK ? hermes_result_set(res, "f", 1) != HERMES_OK : 1;
}

static int compute_g(void *arg, hermes_result *res)
{
    rec *r = arg;
    r->inner = call(r->self, compute_f, r);
    snprintf(r->msg, sizeof r->msg, "%s",
             hermes_errmsg(hermes_fn_handle(r->self)));
    return hermes_result_set(res, "g", 1) != HERMES_OK;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* With a wait of 60 s, a stall would show; the bound is far below it. */
static void direct_recursion_fails_at_once(void **state)
{
    (void)state;
    hermes *h = open_mock("[hermes]\nlock_wait_ms = 60000\n");
    rec r = {0};
    assert_int_equal(hermes_fn_register(h, "f", NULL, &r.self), HERMES_OK);
    uint64_t t0 = now_ms();
    assert_int_equal(call(r.self, compute_direct, &r), HERMES_OK);
    assert_true(now_ms() - t0 < 10000);
    assert_int_equal(r.depth, 1);
    assert_int_equal(r.inner, HERMES_ERECURSIVE);
    assert_non_null(strstr(r.msg, "f: called from the compute callback of f"));
    /* The entry was computed and stored once; a new call is a hit. */
    assert_int_equal(call(r.self, compute_direct, &r), HERMES_OK);
    assert_int_equal(r.depth, 1);
    hermes_close(h);
}

static void indirect_recursion_fails_at_once(void **state)
{
    (void)state;
    hermes *h = open_mock("[hermes]\nlock_wait_ms = 60000\n");
    rec r = {0};
    assert_int_equal(hermes_fn_register(h, "f", NULL, &r.self), HERMES_OK);
    assert_int_equal(hermes_fn_register(h, "g", NULL, &r.other), HERMES_OK);
    uint64_t t0 = now_ms();
    assert_int_equal(call(r.self, compute_f, &r), HERMES_OK);
    assert_true(now_ms() - t0 < 10000);
    assert_int_equal(r.depth, 1);
    assert_int_equal(r.inner, HERMES_ERECURSIVE);
    assert_non_null(strstr(r.msg, "f: called from the compute callback of g"));
    assert_string_equal(hermes_strerror(HERMES_ERECURSIVE),
                        "cached function called from its own computation");
    hermes_close(h);
}

/* Another entry of the same function is not recursion. */
static int compute_other_arg(void *arg, hermes_result *res)
{
    rec *r = arg;
    void *v;
    size_t n;
    if (r->depth++ == 0) {
        r->inner = hermes_call(r->self, "b", 1, compute_other_arg, r, &v, &n);
        hermes_free(v);
    }
    return hermes_result_set(res, "o", 1) != HERMES_OK;
}

static void another_entry_is_not_recursion(void **state)
{
    (void)state;
    hermes *h = open_mock(NULL);
    rec r = {0};
    assert_int_equal(hermes_fn_register(h, "f", NULL, &r.self), HERMES_OK);
    assert_int_equal(call(r.self, compute_other_arg, &r), HERMES_OK);
    assert_int_equal(r.inner, HERMES_OK);
    assert_int_equal(r.depth, 2);
    hermes_close(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(open_errors),
        cmocka_unit_test(calls_on_a_failed_handle),
        cmocka_unit_test(calls_on_a_null_handle),
        cmocka_unit_test(register_errors),
        cmocka_unit_test(a_success_clears_the_message),
        cmocka_unit_test(call_errors),
        cmocka_unit_test(a_computed_fallback_is_a_success),
        cmocka_unit_test(timeout_error),
        cmocka_unit_test(invalidate_errors),
        cmocka_unit_test(direct_errors),
        cmocka_unit_test(direct_backend_errors),
        cmocka_unit_test(options_errors),
        cmocka_unit_test(args_errors),
        cmocka_unit_test(result_errors),
        cmocka_unit_test(macro_errors),
        cmocka_unit_test(the_message_belongs_to_its_handle),
        cmocka_unit_test(the_message_belongs_to_its_thread),
        cmocka_unit_test(many_handles_all_report),
        cmocka_unit_test(direct_recursion_fails_at_once),
        cmocka_unit_test(indirect_recursion_fails_at_once),
        cmocka_unit_test(another_entry_is_not_recursion),
    };
    return cmocka_run_group_tests_name("errors", tests, NULL, NULL);
}
