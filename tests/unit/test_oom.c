/*
 * Out-of-memory injection: a scripted sequence of API calls (open,
 * register, cached calls missing and hitting, invalidate, a string result
 * through HERMES_FUNC (name, name_try, name_invalidate), set/get/delete
 * with tags, clean, flush, close) runs once
 * per allocation N, failing the Nth allocation, and again failing every
 * allocation from the Nth on: on the built-in dict, and on a store that
 * cannot flush by prefix (the mock of HERMES_CAP_NO_PREFIX_FLUSH, whose
 * entries carry the namespace tag).
 *
 * The test is linked with -Wl,--wrap=malloc,calloc,realloc,strdup,strndup,
 * aligned_alloc,free (Makefile.am), so the wrappers below see every
 * allocation the core and the built-in dict make; libraries linked
 * dynamically (libc itself, cmocka) are not affected.  The wrappers also
 * count the blocks alive, so a leak fails the test even without ASan.
 *
 * Each run must: not crash; answer every call with HERMES_OK and the right
 * value, or with HERMES_ENOMEM, or with the documented fallback (a cached
 * call whose cache cannot be used computes directly and returns its value;
 * a get that cannot read is a miss, HERMES_ENOTFOUND); never return a value
 * from before a clean or flush that reported success; leave no block
 * allocated after hermes_close().
 *
 * To find the allocation behind a failure: OOM_N=N runs only the Nth in
 * the "failing allocation N" test, and OOM_TRACE=1 prints a backtrace of
 * every refused allocation (addr2line -f -e tests/unit/test_oom turns its
 * +0x offsets into functions and lines).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <execinfo.h>

#include <hermes/hermes.h>

#include "mock_backend.h"

/* ----------------------------------------------------------- injection */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
void *__wrap_aligned_alloc(size_t align, size_t n);
void __wrap_free(void *p);

enum { FAIL_NONE, FAIL_NTH, FAIL_FROM };
static int fail_mode;
static long fail_at;
static atomic_long allocs; /* allocation attempts since the run began */
static atomic_long live;   /* blocks allocated and not yet freed */
static atomic_long failed; /* allocations refused in this run */

static bool refuse(void)
{
    long n = atomic_fetch_add(&allocs, 1) + 1;
    bool no = (fail_mode == FAIL_NTH && n == fail_at) ||
              (fail_mode == FAIL_FROM && n >= fail_at);
    if (no)
        atomic_fetch_add(&failed, 1);
    if (no && getenv("OOM_TRACE")) {
        void *bt[8];
        int k = backtrace(bt, 8);
        backtrace_symbols_fd(bt, k, 2);
    }
    return no;
}

static void *counted(void *p)
{
    if (p)
        atomic_fetch_add(&live, 1);
    return p;
}

void *__wrap_malloc(size_t n)
{
    return refuse() ? NULL : counted(__real_malloc(n));
}

void *__wrap_calloc(size_t n, size_t size)
{
    return refuse() ? NULL : counted(__real_calloc(n, size));
}

void *__wrap_realloc(void *p, size_t n)
{
    if (refuse())
        return NULL;
    void *q = __real_realloc(p, n);
    if (!p)
        counted(q);
    return q;
}

char *__wrap_strdup(const char *s)
{
    return refuse() ? NULL : counted(__real_strdup(s));
}

char *__wrap_strndup(const char *s, size_t n)
{
    return refuse() ? NULL : counted(__real_strndup(s, n));
}

void *__wrap_aligned_alloc(size_t align, size_t n)
{
    return refuse() ? NULL : counted(__real_aligned_alloc(align, n));
}

void __wrap_free(void *p)
{
    if (p)
        atomic_fetch_sub(&live, 1);
    __real_free(p);
}

/* What the application itself allocates never fails: the test is about
 * the library's allocations. */
static char *app_strdup(const char *s)
{
    return counted(__real_strdup(s));
}

/* ---------------------------------------------------------- the script */

static int square_calls;

static int square(void *arg, hermes_result *res)
{
    int64_t x = *(const int64_t *)arg;
    square_calls++;
    int64_t y = x * x;
    return hermes_result_set(res, &y, sizeof y) == HERMES_OK ? 0 : 1;
}

HERMES_FUNC(char *, greet, int64_t, n)
{
    char buf[32];
    snprintf(buf, sizeof buf, "hello %lld", (long long)n);
    return app_strdup(buf);
}

typedef struct outcome {
    char what[160]; /* the first broken rule, or "" */
} outcome;

#define BROKEN(o, ...)                                                         \
    do {                                                                       \
        if (!(o)->what[0])                                                     \
            snprintf((o)->what, sizeof(o)->what, __VA_ARGS__);                 \
    } while (0)

/* A cached call of square(x): OK with x*x (computed or cached), or ENOMEM. */
static void call_square(hermes_fn *fn, int64_t x, outcome *o, const char *step)
{
    void *v = NULL;
    size_t len = 0;
    hermes_rc rc = hermes_call(fn, &x, sizeof x, square, &x, &v, &len);
    if (rc == HERMES_OK) {
        int64_t y;
        if (!v || len != sizeof y)
            BROKEN(o, "%s: OK without the value", step);
        else if (memcpy(&y, v, sizeof y), y != x * x)
            BROKEN(o, "%s: wrong value", step);
    } else if (rc != HERMES_ENOMEM) {
        BROKEN(o, "%s: %s", step, hermes_strerror(rc));
    } else if (v) {
        BROKEN(o, "%s: a value with ENOMEM", step);
    }
    hermes_free(v);
}

static void call_greet(outcome *o, const char *step)
{
    char *s = greet(3);
    if (!s || strcmp(s, "hello 3") != 0)
        BROKEN(o, "%s: greet(3) gave '%s'", step, s ? s : "(null)");
    free(s);
}

/* hermes_get of key under tags: OK with want, ENOTFOUND, or ENOMEM. */
static hermes_rc get_value(hermes *h, const char *key, const char *want,
                           outcome *o, const char *step)
{
    void *v = NULL;
    size_t len = 0;
    hermes_rc rc = hermes_get(h, key, HERMES_TAGS("math"), &v, &len);
    if (rc == HERMES_OK) {
        if (!v || len != strlen(want) || memcmp(v, want, len) != 0)
            BROKEN(o, "%s: wrong value", step);
    } else if (rc != HERMES_ENOTFOUND && rc != HERMES_ENOMEM) {
        BROKEN(o, "%s: %s", step, hermes_strerror(rc));
    }
    hermes_free(v);
    return rc;
}

static void expect_ok_or_nomem(hermes_rc rc, outcome *o, const char *step)
{
    if (rc != HERMES_OK && rc != HERMES_ENOMEM)
        BROKEN(o, "%s: %s", step, hermes_strerror(rc));
}

/* The store of the script: the built-in dict (NULL) or a descriptor. */
static const hermes_backend *backend;

static void script(outcome *o)
{
    static const char conf[] =
        "[hermes]\nprefix = oom\nttl = 60\n[dict]\nshards = 2\n";
    hermes *h = NULL;
    hermes_rc rc = backend ? hermes_open_with(&h, conf, "<oom>", backend)
                           : hermes_open_string(&h, conf, "<oom>");
    expect_ok_or_nomem(rc, o, "open");
    if (rc != HERMES_OK) {
        if (h && !hermes_errmsg(h)[0])
            BROKEN(o, "open: no message");
        hermes_close(h);
        return;
    }
    hermes_fn *fn = NULL;
    hermes_fn_options opts =
        HERMES_FN_OPTIONS(.tags = HERMES_TAGS("math", "power"));
    rc = hermes_fn_register(h, "square", &opts, &fn);
    expect_ok_or_nomem(rc, o, "register");
    rc = HERMES_REGISTER(h, greet, .tags = HERMES_TAGS("words"));
    expect_ok_or_nomem(rc, o, "HERMES_REGISTER");
    /* Unregistered, name_try and name_invalidate are HERMES_EINVAL. */
    hermes_rc unreg = rc == HERMES_OK ? HERMES_ENOMEM : HERMES_EINVAL;

    if (fn) {
        int64_t x = 7;
        call_square(fn, x, o, "call (miss)");
        call_square(fn, x, o, "call (hit)");
        rc = hermes_invalidate(fn, &x, sizeof x, NULL);
        expect_ok_or_nomem(rc, o, "invalidate");
        call_square(fn, x, o, "call after invalidate");
    }
    call_greet(o, "greet (miss)");
    call_greet(o, "greet (hit)");
    char *s = NULL;
    rc = greet_try(3, &s);
    if (rc != unreg)
        expect_ok_or_nomem(rc, o, "greet_try");
    if (rc == HERMES_OK && (!s || strcmp(s, "hello 3") != 0))
        BROKEN(o, "greet_try: '%s'", s ? s : "(null)");
    free(s);
    rc = greet_invalidate(3);
    if (rc != unreg)
        expect_ok_or_nomem(rc, o, "greet_invalidate");

    rc = hermes_set(h, "k", "v0", 2, HERMES_TAGS("math"), 60);
    expect_ok_or_nomem(rc, o, "set");
    get_value(h, "k", "v0", o, "get");
    rc = hermes_delete(h, "k");
    expect_ok_or_nomem(rc, o, "delete");
    hermes_rc got = get_value(h, "k", "v0", o, "get after delete");
    if (rc == HERMES_OK && got == HERMES_OK)
        BROKEN(o, "get after delete: the deleted value");
    rc = hermes_set(h, "k", "v1", 2, HERMES_TAGS("math"), 60);
    expect_ok_or_nomem(rc, o, "set after delete");
    get_value(h, "k", "v1", o, "get");
    rc = hermes_clean(h, HERMES_TAGS("math"));
    expect_ok_or_nomem(rc, o, "clean");
    got = get_value(h, "k", "v1", o, "get after clean");
    if (rc == HERMES_OK && got == HERMES_OK)
        BROKEN(o, "get after clean: the value from before the clean");
    if (fn)
        call_square(fn, 7, o, "call after clean");
    call_greet(o, "greet after clean");

    rc = hermes_set(h, "k", "v2", 2, HERMES_TAGS("math"), 60);
    expect_ok_or_nomem(rc, o, "set again");
    rc = hermes_flush(h);
    expect_ok_or_nomem(rc, o, "flush");
    got = get_value(h, "k", "v2", o, "get after flush");
    if (rc == HERMES_OK && got == HERMES_OK)
        BROKEN(o, "get after flush: the value from before the flush");
    hermes_stats st;
    hermes_stats_get(h, &st, sizeof st);
    hermes_close(h);
}

/* One run: returns the allocations it attempted; fails the test with the
 * run's description on a broken rule or a leak. */
static long run(int mode, long n)
{
    fail_mode = mode;
    fail_at = n;
    atomic_store(&allocs, 0);
    atomic_store(&failed, 0);
    long before = atomic_load(&live);
    outcome o = {""};
    script(&o);
    fail_mode = FAIL_NONE;
    long leaked = atomic_load(&live) - before;
    const char *how = mode == FAIL_NTH    ? "failing allocation"
                      : mode == FAIL_FROM ? "failing every allocation from"
                                          : "no failure";
    if (o.what[0])
        fail_msg("%s %ld: %s", how, n, o.what);
    if (leaked != 0)
        fail_msg("%s %ld: %ld blocks leaked", how, n, leaked);
    return atomic_load(&allocs);
}

static long clean_run_allocs;

/* Each group of three runs on the store its state names (NULL: dict). */
static int use_backend(void **state)
{
    backend = *state;
    return 0;
}

static void the_script_allocates_and_passes_without_failures(void **state)
{
    (void)state;
    clean_run_allocs = run(FAIL_NONE, 0);
    print_message("the script makes %ld allocations\n", clean_run_allocs);
    /* open, register, calls, set/get, clean and flush all allocate. */
    assert_true(clean_run_allocs > 20);
    assert_int_equal(atomic_load(&failed), 0);
    /* And a second time: the count is a property of the script. */
    assert_int_equal(run(FAIL_NONE, 0), clean_run_allocs);
}

static void failing_the_nth_allocation_for_every_n(void **state)
{
    (void)state;
    assert_true(clean_run_allocs > 0);
    for (long n = 1; n <= clean_run_allocs + 1; n++)
        if (!getenv("OOM_N") || atol(getenv("OOM_N")) == n)
            run(FAIL_NTH, n);
}

static void failing_every_allocation_from_the_nth(void **state)
{
    (void)state;
    assert_true(clean_run_allocs > 0);
    for (long n = 1; n <= clean_run_allocs + 1; n++) {
        run(FAIL_FROM, n);
        assert_true(n > clean_run_allocs || atomic_load(&failed) > 0);
    }
}

int main(void)
{
#define ON(f, be)                                                              \
    {                                                                          \
#f, f, use_backend, NULL, (void *)(be)                                 \
    }
    const hermes_backend *ns = mock_backend_no_prefix_flush();
    const struct CMUnitTest tests[] = {
        ON(the_script_allocates_and_passes_without_failures, NULL),
        ON(failing_the_nth_allocation_for_every_n, NULL),
        ON(failing_every_allocation_from_the_nth, NULL),
        ON(the_script_allocates_and_passes_without_failures, ns),
        ON(failing_the_nth_allocation_for_every_n, ns),
        ON(failing_every_allocation_from_the_nth, ns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
