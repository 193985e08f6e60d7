/*
 * The near cache through the core, across two processes on one private
 * redis-server: process A holds tagged entries in its near cache
 * (near_cache = yes) and reads them; process B (its own handle, near
 * cache off) cleans one of the entry's tags, deletes the entry, or
 * overwrites it.  A's reads go on until one no longer returns the old
 * value; that read is timed against the moment B's call returned, over
 * many trials (the eviction window, printed as p50/p99/max), and no later
 * read may return the old value again.  No timing is asserted: the
 * window is reported, correctness is checked.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <hermes/hermes.h>
#include <hiredis/hiredis.h>

#include "../support/child_wait.h"
#include "handle.h"
#include "redis_server.h"

#define TRIALS 100 /* per kind of change */
#define DEADLINE_MS 10000

static redis_server server;
static int test_pid;

enum change { CLEAN_TAG, DELETE_ENTRY, OVERWRITE_ENTRY, NCHANGES };
static const char *const change_names[NCHANGES] = {
    "clean a tag", "delete the entry", "overwrite the entry"};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static hermes *open_cache(int near)
{
    char text[1024];
    hermes *c;

    snprintf(text, sizeof text,
             "[hermes]\nbackend = redis\nplugin_path = %s/plugins/redis\n"
             "prefix = nc%d\nlog_level = error\n"
             "[redis]\nport = %d\nnear_cache = %s\nnear_prefix = nc%d\n",
             getenv("HERMES_TEST_BUILDDIR"), test_pid, server.port,
             near ? "yes" : "no", test_pid);
    if (hermes_open_string(&c, text, "test") != HERMES_OK)
        fail_msg("open: %s", hermes_errmsg(c));
    return c;
}

typedef struct stat_find {
    const char *name;
    long long value;
} stat_find;

static void stat_cb(void *arg, const char *name, const char *value)
{
    stat_find *f = arg;

    if (strcmp(name, f->name) == 0)
        f->value = atoll(value);
}

static long long near_stat(hermes *h, const char *name)
{
    stat_find f = {name, -1};

    hm_be_stats(h, stat_cb, &f);
    return f.value;
}

static void names(char *key, size_t kcap, char tags[2][32], int change,
                  int trial)
{
    snprintf(key, kcap, "w%d.%d", change, trial);
    snprintf(tags[0], sizeof tags[0], "wt%d.%d.a", change, trial);
    snprintf(tags[1], sizeof tags[1], "wt%d.%d.b", change, trial);
}

/* 1 when the read returns "old", 0 when it does not (new or absent);
 * fails the test on an error. */
static int reads_old(hermes *h, const char *key, const char *const *tags)
{
    void *v;
    size_t n;
    hermes_rc rc = hermes_get(h, key, tags, &v, &n);

    if (rc == HERMES_ENOTFOUND)
        return 0;
    if (rc != HERMES_OK)
        fail_msg("get %s: %s", key, hermes_errmsg(h));
    int old = n == 3 && memcmp(v, "old", 3) == 0;
    hermes_free(v);
    return old;
}

/* Process B: one change per request on the pipe, then the time its call
 * returned. */
static void writer(int in, int out)
{
    hermes *h = open_cache(0);
    int req[2];

    while (read(in, req, sizeof req) == (ssize_t)sizeof req) {
        char key[64], tags[2][32];
        const char *tl[3];
        hermes_rc rc = HERMES_OK;

        names(key, sizeof key, tags, req[0], req[1]);
        tl[0] = tags[0];
        tl[1] = tags[1];
        tl[2] = NULL;
        switch (req[0]) {
        case CLEAN_TAG:
            rc = hermes_clean(h, HERMES_TAGS(tags[1]));
            break;
        case DELETE_ENTRY:
            rc = hermes_delete(h, key);
            break;
        case OVERWRITE_ENTRY:
            rc = hermes_set(h, key, "new", 3, tl, 0);
            break;
        }
        uint64_t t = rc == HERMES_OK ? now_ns() : 0;
        if (write(out, &t, sizeof t) != (ssize_t)sizeof t)
            break;
    }
    hermes_close(h);
    _exit(0);
}

/* What the server holds for the entry and its tags, for a failure. */
static const char *server_view(const char *key, const char *const *tags)
{
    static char out[512];
    redisContext *r = redisConnect("127.0.0.1", server.port);
    size_t o = 0;

    out[0] = '\0';
    for (int i = 0; r && !r->err && i < 3; i++) {
        char k[128];
        if (i == 0)
            snprintf(k, sizeof k, "nc%d:entry:%s", test_pid, key);
        else
            snprintf(k, sizeof k, "nc%d:tag:%s", test_pid, tags[i - 1]);
        redisReply *rep = redisCommand(r, "EXISTS %s", k);
        o += (size_t)snprintf(out + o, sizeof out - o, "%s=%lld ", k,
                              rep ? rep->integer : -1);
        if (rep)
            freeReplyObject(rep);
    }
    if (r)
        redisFree(r);
    return out;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, uint64_t *w, size_t n, size_t early)
{
    qsort(w, n, sizeof *w, cmp_u64);
    print_message("eviction window, %s: %zu trials, p50 %.1f us, p99 %.1f "
                  "us, max %.1f us (%zu seen before B's call returned)\n",
                  what, n, (double)w[n / 2] / 1e3,
                  (double)w[(n * 99 + 99) / 100 - 1] / 1e3,
                  (double)w[n - 1] / 1e3, early);
}

static void other_process_changes_reach_the_near_cache(void **state)
{
    (void)state;
    int to_b[2], from_b[2], status;
    static uint64_t all[NCHANGES * TRIALS], mine[TRIALS];
    size_t nall = 0, early_all = 0;

    assert_int_equal(pipe(to_b), 0);
    assert_int_equal(pipe(from_b), 0);
    pid_t kid = fork();
    assert_true(kid >= 0);
    if (kid == 0) {
        close(to_b[1]);
        close(from_b[0]);
        writer(to_b[0], from_b[1]);
    }
    close(to_b[0]);
    close(from_b[1]);

    hermes *h = open_cache(1);
    for (int c = 0; c < NCHANGES; c++) {
        size_t early = 0;

        for (int t = 0; t < TRIALS; t++) {
            char key[64], tags[2][32];
            const char *tl[3];

            names(key, sizeof key, tags, c, t);
            tl[0] = tags[0];
            tl[1] = tags[1];
            tl[2] = NULL;
            if (hermes_set(h, key, "old", 3, tl, 0) != HERMES_OK)
                fail_msg("set %s: %s", key, hermes_errmsg(h));
            /* Held: a read answered by the near cache. */
            uint64_t until = now_ns() + DEADLINE_MS * 1000000ull;
            for (;;) {
                long long h0 = near_stat(h, "near_hits");
                assert_true(reads_old(h, key, tl));
                if (near_stat(h, "near_hits") > h0)
                    break;
                if (now_ns() > until)
                    fail_msg("the entry was never held");
            }
            int req[2] = {c, t};
            assert_int_equal(write(to_b[1], req, sizeof req),
                             (ssize_t)sizeof req);
            /* The eviction came between the start of the last read that
             * returned the old value (a near hit, a microsecond) and the
             * start of the first that did not (which then goes to the
             * server): the latter is when A saw it. */
            uint64_t seen;
            until = now_ns() + DEADLINE_MS * 1000000ull;
            for (;;) {
                seen = now_ns();
                if (!reads_old(h, key, tl))
                    break;
                if (seen > until)
                    fail_msg("%s: A still reads the old value after %d ms",
                             change_names[c], DEADLINE_MS);
            }
            uint64_t returned;
            assert_int_equal(read(from_b[0], &returned, sizeof returned),
                             (ssize_t)sizeof returned);
            assert_true(returned != 0); /* B's call succeeded */
            /* Once gone, the old value never comes back. */
            for (int i = 0; i < 20; i++)
                if (reads_old(h, key, tl))
                    fail_msg("%s, trial %d: the old value came back at read "
                             "%d after it was gone (server: %s)",
                             change_names[c], t, i + 1, server_view(key, tl));
            if (seen < returned)
                early++;
            mine[t] = seen > returned ? seen - returned : 0;
            all[nall++] = mine[t];
        }
        early_all += early;
        report(change_names[c], mine, TRIALS, early);
    }
    report("all changes", all, nall, early_all);
    assert_true(near_stat(h, "near_invalidations") >= NCHANGES * TRIALS);
    hermes_close(h);
    close(to_b[1]);
    assert_int_equal(cw_wait("redis_near_cache", kid, CW_TIMEOUT_MS, &status),
                     0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(from_b[0]);
}

static int setup(void **state)
{
    (void)state;
    test_pid = (int)getpid();
    return redis_server_start(&server) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    redis_server_stop(&server);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(other_process_changes_reach_the_near_cache),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
