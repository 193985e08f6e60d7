/*
 * The library writes to stderr only when asked (log = stderr), hands its
 * log lines to the application's function (hermes_set_log), filters them
 * by log_level and rate-limits them.  The failures logged are the mock
 * backend's, with a detail of its own.
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
#include <unistd.h>

#include <cmocka.h>

#include <hermes/hermes.h>

#include "mock_backend.h"

static hermes *open_mock(const char *ini)
{
    hermes *h = NULL;
    hermes_rc rc = hermes_open_with(&h, ini, "test.ini", mock_backend());
    if (rc != HERMES_OK)
        fail_msg("open: %s: %s", hermes_strerror(rc), hermes_errmsg(h));
    return h;
}

/* One failing backend call, computed directly (on_backend_error =
 * compute): a success for the caller, one warning in the log. */
static int compute_ok(void *arg, hermes_result *res)
{
    (void)arg;
    return hermes_result_set(res, "v", 1) != HERMES_OK;
}

static void fail_once(hermes *h, hermes_fn *fn)
{
    void *v;
    size_t n;
    assert_int_equal(hermes_call(fn, "a", 1, compute_ok, NULL, &v, &n),
                     HERMES_OK);
    hermes_free(v);
}

/* stderr captured in a temporary file while fn(h) runs. */
typedef struct capture {
    int saved;
    FILE *f;
} capture;

static void capture_start(capture *c)
{
    fflush(stderr);
    c->f = tmpfile();
    assert_non_null(c->f);
    c->saved = dup(STDERR_FILENO);
    assert_true(c->saved >= 0);
    assert_true(dup2(fileno(c->f), STDERR_FILENO) >= 0);
}

/* Restores stderr and returns what was written (malloc'ed). */
static char *capture_end(capture *c)
{
    fflush(stderr);
    assert_true(dup2(c->saved, STDERR_FILENO) >= 0);
    close(c->saved);
    long n = ftell(c->f);
    assert_true(n >= 0);
    char *text = calloc(1, (size_t)n + 1);
    assert_non_null(text);
    rewind(c->f);
    assert_int_equal(fread(text, 1, (size_t)n, c->f), (size_t)n);
    fclose(c->f);
    return text;
}

/* Lines received by the application's function. */
#define MAX_LINES 256
typedef struct lines {
    pthread_mutex_t mu;
    int n, levels[MAX_LINES];
    char text[MAX_LINES][256];
} lines;

static void collect(void *arg, int level, const char *msg)
{
    lines *l = arg;
    pthread_mutex_lock(&l->mu);
    if (l->n < MAX_LINES) {
        l->levels[l->n] = level;
        snprintf(l->text[l->n], sizeof l->text[0], "%s", msg);
        l->n++;
    }
    pthread_mutex_unlock(&l->mu);
}

static void quiet_by_default(void **state)
{
    (void)state;
    capture c;
    capture_start(&c);
    hermes *h = open_mock(NULL);
    hermes_fn *fn;
    assert_int_equal(hermes_fn_register(h, "f", NULL, &fn), HERMES_OK);
    mock_fail_all(mock_current(), HERMES_BE_IO);
    fail_once(h, fn);
    hermes_close(h);
    h = open_mock("[hermes]\nlog = none\nlog_level = debug\n");
    assert_int_equal(hermes_fn_register(h, "f", NULL, &fn), HERMES_OK);
    mock_fail_all(mock_current(), HERMES_BE_IO);
    fail_once(h, fn);
    hermes_close(h);
    char *text = capture_end(&c);
    assert_string_equal(text, "");
    free(text);
}

static void stderr_when_asked(void **state)
{
    (void)state;
    capture c;
    capture_start(&c);
    hermes *h = open_mock("[hermes]\nlog = stderr\n");
    hermes_fn *fn;
    assert_int_equal(hermes_fn_register(h, "f", NULL, &fn), HERMES_OK);
    mock_fail_all(mock_current(), HERMES_BE_IO);
    mock_fail_detail(mock_current(), "connect: Connection refused");
    fail_once(h, fn);
    hermes_close(h);
    char *text = capture_end(&c);
    assert_string_equal(text, "hermes: warning: dict get failed: backend "
                              "unreachable or timed out: connect: Connection "
                              "refused\n");
    free(text);
}

static void lines_go_to_the_application(void **state)
{
    (void)state;
    lines l = {.mu = PTHREAD_MUTEX_INITIALIZER};
    capture c;
    capture_start(&c);
    /* With a function set, log = stderr does not print either. */
    hermes *h = open_mock("[hermes]\nlog = stderr\n");
    hermes_fn *fn;
    assert_int_equal(hermes_set_log(h, collect, &l), HERMES_OK);
    assert_int_equal(hermes_fn_register(h, "f", NULL, &fn), HERMES_OK);
    mock_fail_all(mock_current(), HERMES_BE_IO);
    mock_fail_detail(mock_current(), "READONLY");
    fail_once(h, fn);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.levels[0], HERMES_LOG_WARN);
    assert_string_equal(l.text[0], "dict get failed: backend unreachable or "
                                   "timed out: READONLY");
    /* Back to the config's choice: stderr. */
    assert_int_equal(hermes_set_log(h, NULL, NULL), HERMES_OK);
    fail_once(h, fn);
    assert_int_equal(l.n, 1);
    hermes_close(h);
    char *text = capture_end(&c);
    assert_non_null(strstr(text, "hermes: warning: dict get failed"));
    free(text);
}

static void log_level_filters(void **state)
{
    (void)state;
    lines l = {.mu = PTHREAD_MUTEX_INITIALIZER};
    hermes *h = open_mock("[hermes]\nlog_level = error\n");
    hermes_fn *fn;
    assert_int_equal(hermes_set_log(h, collect, &l), HERMES_OK);
    assert_int_equal(hermes_fn_register(h, "f", NULL, &fn), HERMES_OK);
    mock_fail_all(mock_current(), HERMES_BE_IO);
    fail_once(h, fn);
    assert_int_equal(l.n, 0); /* a warning, below error */
    hermes_close(h);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* At most 10 lines a second; the rest are summarized. */
static void the_rate_limiter_stays(void **state)
{
    (void)state;
    lines l = {.mu = PTHREAD_MUTEX_INITIALIZER};
    hermes *h = open_mock(NULL);
    hermes_fn *fn;
    assert_int_equal(hermes_set_log(h, collect, &l), HERMES_OK);
    assert_int_equal(hermes_fn_register(h, "f", NULL, &fn), HERMES_OK);
    mock_fail_all(mock_current(), HERMES_BE_IO);
    for (int i = 0; i < 100; i++)
        fail_once(h, fn);
    /* 100 failures took far less than a second, so they span at most two
     * one-second windows. */
    pthread_mutex_lock(&l.mu);
    int burst = l.n;
    pthread_mutex_unlock(&l.mu);
    assert_true(burst >= 10 && burst <= 21);
    /* A failure in a later window first reports the suppressed ones. */
    int found = -1, polls = 0;
    uint64_t t0 = now_ms();
    while (found < 0 && now_ms() - t0 < 5000) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
        fail_once(h, fn);
        polls++;
        pthread_mutex_lock(&l.mu);
        for (int i = 0; i < l.n; i++)
            if (strstr(l.text[i], "similar messages suppressed"))
                found = i;
        pthread_mutex_unlock(&l.mu);
    }
    assert_true(found >= 0);
    assert_int_equal(l.levels[found], HERMES_LOG_WARN);
    unsigned count = 0;
    assert_int_equal(sscanf(l.text[found], "%u similar", &count), 1);
    /* Each failure is either a line or counted in a summary. */
    assert_true(count >= 1 && count <= (unsigned)(100 + polls - burst));
    hermes_close(h);
}

static void config_and_argument_errors(void **state)
{
    (void)state;
    hermes *h;
    assert_int_equal(hermes_open_string(&h, "[hermes]\nlog = loud\n", "l.ini"),
                     HERMES_ECONFIG);
    assert_string_equal(hermes_errmsg(h),
                        "l.ini:2: log: expected stderr or none: 'loud'");
    assert_int_equal(hermes_set_log(h, collect, NULL), HERMES_EINVAL);
    assert_non_null(strstr(hermes_errmsg(h), "hermes_set_log: the handle"));
    hermes_close(h);
    assert_int_equal(hermes_set_log(NULL, collect, NULL), HERMES_EINVAL);
    assert_string_equal(hermes_errmsg(NULL),
                        "hermes_set_log: the handle is NULL");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(quiet_by_default),
        cmocka_unit_test(stderr_when_asked),
        cmocka_unit_test(lines_go_to_the_application),
        cmocka_unit_test(log_level_filters),
        cmocka_unit_test(the_rate_limiter_stays),
        cmocka_unit_test(config_and_argument_errors),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
