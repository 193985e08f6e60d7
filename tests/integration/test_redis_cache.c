/*
 * The cache over a real redis-server (started by the test): round trips
 * counted by the server itself, dogpile control across processes, and
 * failure: a server that is down, killed mid-run and restarted.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT */
#endif
#include <dlfcn.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
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

#include "../support/child_wait.h"
#include "keys.h"
#include "redis_server.h"

static redis_server server;

/*
 * Every send() of this thread, counted: the plugin writes each pipeline
 * with one send(), so a count of sends is a count of round trips.  The
 * test program is linked with -export-dynamic, so the plugin's calls reach
 * this definition, which passes them on to the next one (libc's, or a
 * sanitizer's).
 */
static _Thread_local long sends;

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
    static ssize_t (*_Atomic next)(int, const void *, size_t, int);
    ssize_t (*f)(int, const void *, size_t, int) = next;
    if (!f) {
        *(void **)&f = dlsym(RTLD_NEXT, "send");
        next = f;
    }
    sends++;
    return f(fd, buf, len, flags);
}
static hermes *h;
static hermes *h;
static int test_pid; /* names the prefix, the same in forked children */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static hermes *open_cache(const char *extra)
{
    char text[1024];
    hermes *c;
    snprintf(text, sizeof text,
             "[hermes]\nbackend = redis\nplugin_path = %s/plugins/redis\n"
             "prefix = it%d\nlog_level = error\n%s\n"
             "[redis]\nport = %d\nconnect_timeout_ms = 200\n"
             "command_timeout_ms = 500\n",
             getenv("HERMES_TEST_BUILDDIR"), test_pid, extra ? extra : "",
             server.port);
    hermes_rc rc = hermes_open_string(&c, text, "test");
    if (rc != HERMES_OK)
        fail_msg("open: %s", hermes_errmsg(c));
    return c;
}

static redisContext *raw(void)
{
    redisContext *r = redisConnect("127.0.0.1", server.port);
    assert_non_null(r);
    assert_int_equal(r->err, 0);
    return r;
}

/* Calls to the cached function, counted in redis so every process sees it. */
static int compute_counted(void *arg, hermes_result *res)
{
    int64_t *x = arg;
    redisContext *r = redisConnect("127.0.0.1", server.port);
    if (r && !r->err)
        freeReplyObject(redisCommand(r, "INCR computations"));
    if (r)
        redisFree(r);
    sleep_ms(100);
    char v[32];
    int n = snprintf(v, sizeof v, "v%lld", (long long)*x);
    return hermes_result_set(res, v, (size_t)n) == HERMES_OK ? 0 : 1;
}

/* Plain compute, for the fault test (no redis access of its own). */
static int compute_plain(void *arg, hermes_result *res)
{
    int64_t *x = arg;
    char v[32];
    int n = snprintf(v, sizeof v, "v%lld", (long long)*x);
    return hermes_result_set(res, v, (size_t)n) == HERMES_OK ? 0 : 1;
}

static int call(hermes_fn *fn, int64_t x, hermes_compute_fn compute)
{
    hermes_args a = HERMES_ARGS_INIT;
    hermes_args_int(&a, x);
    void *v;
    size_t n;
    hermes_rc rc = hermes_call(fn, hermes_args_data(&a), hermes_args_len(&a),
                               compute, &x, &v, &n);
    hermes_args_free(&a);
    if (rc != HERMES_OK)
        return -1;
    char want[32];
    snprintf(want, sizeof want, "v%lld", (long long)x);
    int ok = n == strlen(want) && memcmp(v, want, n) == 0;
    hermes_free(v);
    return ok ? 0 : -2;
}

static long long redis_int(redisContext *r, const char *cmd)
{
    redisReply *rep = redisCommand(r, cmd);
    assert_non_null(rep);
    long long v = rep->type == REDIS_REPLY_INTEGER  ? rep->integer
                  : rep->type == REDIS_REPLY_STRING ? atoll(rep->str)
                                                    : 0;
    freeReplyObject(rep);
    return v;
}

static int setup(void **state)
{
    redisContext *r = raw();
    freeReplyObject(redisCommand(r, "FLUSHALL"));
    redisFree(r);
    h = open_cache(NULL);
    return 0;
}

static int teardown(void **state)
{
    hermes_close(h);
    return 0;
}

static void tagged_hits_are_one_mget_each_and_nothing_else(void **state)
{
    hermes_fn *fn;
    hermes_fn_options o =
        HERMES_FN_OPTIONS(.tags = HERMES_TAGS("rock", "tree"));
    assert_int_equal(hermes_fn_register(h, "tagged", &o, &fn), HERMES_OK);
    assert_int_equal(call(fn, 1, compute_plain), 0); /* warm */
    redisContext *r = raw();
    freeReplyObject(redisCommand(r, "CONFIG RESETSTAT"));
    enum { N = 100 };
    for (int i = 0; i < N; i++)
        assert_int_equal(call(fn, 1, compute_plain), 0);
    redisReply *info = redisCommand(r, "INFO commandstats");
    assert_non_null(info);
    assert_int_equal(redis_info_calls(info->str, "mget"), N);
    assert_int_equal(redis_info_work_calls(info->str), N);
    freeReplyObject(info);
    redisFree(r);
}

/* The keys under the test's prefix, sorted, one per line. */
static void keys_under_prefix(redisContext *r, char *out, size_t cap)
{
    redisReply *rep = redisCommand(r, "KEYS it%d:*", test_pid);
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
    out[0] = '\0';
    char *sorted[16];
    assert_true(rep->elements <= 16);
    for (size_t i = 0; i < rep->elements; i++)
        sorted[i] = rep->element[i]->str;
    for (size_t i = 1; i < rep->elements; i++)
        for (size_t j = i; j > 0 && strcmp(sorted[j - 1], sorted[j]) > 0; j--) {
            char *t = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    for (size_t i = 0; i < rep->elements; i++)
        snprintf(out + strlen(out), cap - strlen(out), "%s\n", sorted[i]);
    freeReplyObject(rep);
}

/* Redis deletes by prefix: no namespace key is written or read, and a
 * flush is SCAN and UNLINK, leaving nothing under the prefix. */
static void flush_by_prefix_writes_no_namespace_key(void **state)
{
    hermes_fn *fn;
    hermes_fn_options o =
        HERMES_FN_OPTIONS(.tags = HERMES_TAGS("rock", "tree"));
    assert_int_equal(hermes_fn_register(h, "tagged", &o, &fn), HERMES_OK);
    assert_int_equal(call(fn, 1, compute_plain), 0);
    assert_int_equal(hermes_set(h, "d", "v", 1, NULL, HERMES_TTL_DEFAULT),
                     HERMES_OK);
    redisContext *r = raw();
    char keys[2048], want[2048];
    keys_under_prefix(r, keys, sizeof keys);
    hermes_args a = HERMES_ARGS_INIT;
    hermes_args_int(&a, 1);
    char hash[HM_HASH_B64_LEN + 1] = {0};
    hm_hash128_b64(hermes_args_data(&a), hermes_args_len(&a), hash);
    hermes_args_free(&a);
    snprintf(want, sizeof want,
             "it%d:entry:d\nit%d:entry:tagged:%s\nit%d:tag:rock\n"
             "it%d:tag:tree\n",
             test_pid, test_pid, hash, test_pid, test_pid);
    assert_string_equal(keys, want);
    freeReplyObject(redisCommand(r, "CONFIG RESETSTAT"));
    assert_int_equal(hermes_flush(h), HERMES_OK);
    redisReply *info = redisCommand(r, "INFO commandstats");
    assert_non_null(info);
    assert_int_equal(redis_info_calls(info->str, "set"), 0);
    assert_true(redis_info_calls(info->str, "scan") >= 1);
    freeReplyObject(info);
    keys_under_prefix(r, keys, sizeof keys);
    assert_string_equal(keys, "");
    redisFree(r);
}

/*
 * A cold miss is three round trips: the read that misses, the lock taken
 * with the entry read again, the record written with the lock released
 * (issue 11).  Counted by the server (five commands: two MGETs, the lock's
 * and the record's SET, one unlock script, which runs a GET, a DEL and the
 * PUBLISH of the release for waiters in other processes) and by the
 * plugin's writes.
 */
static void a_cold_miss_is_three_round_trips(void **state)
{
    hermes_fn *fn;
    hermes_fn_options o =
        HERMES_FN_OPTIONS(.tags = HERMES_TAGS("rock", "tree"));
    assert_int_equal(hermes_fn_register(h, "cold3", &o, &fn), HERMES_OK);
    /* Creates the tags and the connection; the lock and write of this
     * one are no different from those of the miss counted below. */
    assert_int_equal(call(fn, 1, compute_plain), 0);
    redisContext *r = raw();
    freeReplyObject(redisCommand(r, "CONFIG RESETSTAT"));
    long before = sends;
    assert_int_equal(call(fn, 2, compute_plain), 0);
    long trips = sends - before;
    redisReply *info = redisCommand(r, "INFO commandstats");
    assert_non_null(info);
    assert_int_equal(redis_info_calls(info->str, "mget"), 2);
    assert_int_equal(redis_info_calls(info->str, "set"), 2);
    assert_int_equal(redis_info_calls(info->str, "evalsha") +
                         redis_info_calls(info->str, "eval"),
                     1);
    /* The script's own GET, DEL and PUBLISH count as commands too. */
    assert_int_equal(redis_info_calls(info->str, "get"), 1);
    assert_int_equal(redis_info_calls(info->str, "del"), 1);
    assert_int_equal(redis_info_calls(info->str, "publish"), 1);
    assert_int_equal(redis_info_work_calls(info->str), 8);
    freeReplyObject(info);
    redisFree(r);
    assert_int_equal(trips, 3);
    /* And the entry is there: the next call is a hit, one MGET. */
    before = sends;
    assert_int_equal(call(fn, 2, compute_plain), 0);
    assert_int_equal(sends - before, 1);
}

typedef struct worker {
    hermes *h;
    hermes_fn *fn;
    pthread_barrier_t *b;
    int ok;
} worker;

static void *worker_call(void *p)
{
    worker *w = p;
    pthread_barrier_wait(w->b);
    w->ok = call(w->fn, 7, compute_counted) == 0;
    return NULL;
}

/* In a child: 8 threads call the cold function at once. */
static int crowd_in_child(int start_fd)
{
    hermes *c = open_cache("lock_wait_ms = 10000\n");
    hermes_fn *fn;
    if (hermes_fn_register(c, "cold", NULL, &fn) != HERMES_OK)
        return 2;
    char go;
    if (read(start_fd, &go, 1) != 1) /* all processes start together */
        return 3;
    pthread_barrier_t b;
    pthread_barrier_init(&b, NULL, 8);
    pthread_t t[8];
    worker w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (worker){c, fn, &b, 0};
        pthread_create(&t[i], NULL, worker_call, &w[i]);
    }
    int bad = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        bad += !w[i].ok;
    }
    hermes_close(c);
    return bad ? 1 : 0;
}

static void
four_processes_of_eight_threads_compute_a_cold_key_once(void **state)
{
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t kids[4];
    for (int i = 0; i < 4; i++) {
        kids[i] = fork();
        assert_true(kids[i] >= 0);
        if (kids[i] == 0) {
            close(pipefd[1]);
            _exit(crowd_in_child(pipefd[0]));
        }
    }
    close(pipefd[0]);
    sleep_ms(300); /* let every child open its cache */
    assert_int_equal(write(pipefd[1], "gggg", 4), 4);
    close(pipefd[1]);
    for (int i = 0; i < 4; i++) {
        int status;
        assert_int_equal(
            cw_wait("redis_cache", kids[i], CW_TIMEOUT_MS, &status), 0);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    redisContext *r = raw();
    assert_int_equal(redis_int(r, "GET computations"), 1);
    redisFree(r);
}

static void
server_down_at_start_computes_then_caches_when_it_returns(void **state)
{
    redis_server_kill(&server);
    hermes_fn *fn;
    assert_int_equal(hermes_fn_register(h, "f", NULL, &fn), HERMES_OK);
    for (int i = 0; i < 5; i++)
        assert_int_equal(call(fn, i, compute_plain), 0);
    hermes_stats s;
    hermes_stats_get(h, &s, sizeof s);
    assert_true(s.backend_errors >= 1);
    assert_int_equal(s.computations, 5);
    assert_int_equal(redis_server_restart(&server), 0);
    /* Caching resumes by itself once the reconnect backoff passes. */
    int cached = 0;
    for (int i = 0; i < 60 && !cached; i++) {
        call(fn, 99, compute_plain);
        hermes_stats_get(h, &s, sizeof s);
        cached = s.hits > 0;
        sleep_ms(100);
    }
    assert_true(cached);
}

static void
every_call_is_right_while_the_server_is_killed_and_restarted(void **state)
{
    hermes_fn *fn;
    hermes_fn_options o = HERMES_FN_OPTIONS(.tags = HERMES_TAGS("t"));
    assert_int_equal(hermes_fn_register(h, "f", &o, &fn), HERMES_OK);
    int wrong = 0;
    for (int i = 0; i < 3000; i++) {
        if (i == 1000)
            redis_server_kill(&server);
        if (i == 2000)
            assert_int_equal(redis_server_restart(&server), 0);
        wrong += call(fn, i % 50, compute_plain) != 0;
    }
    assert_int_equal(wrong, 0);
    hermes_stats s;
    hermes_stats_get(h, &s, sizeof s);
    assert_true(s.backend_errors > 0);
    assert_true(s.hits > 0);
}

int main(void)
{
    test_pid = (int)getpid();
    if (redis_server_start(&server) != 0)
        return 1;
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(tagged_hits_are_one_mget_each_and_nothing_else),
        T(flush_by_prefix_writes_no_namespace_key),
        T(a_cold_miss_is_three_round_trips),
        T(four_processes_of_eight_threads_compute_a_cold_key_once),
        T(server_down_at_start_computes_then_caches_when_it_returns),
        T(every_call_is_right_while_the_server_is_killed_and_restarted),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    redis_server_stop(&server);
    return failed;
}
