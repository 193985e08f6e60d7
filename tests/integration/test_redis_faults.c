/*
 * Fault injection against a real redis-server (started by the test):
 *
 *  - the campaign: 8 threads make tagged cached calls whose correct value
 *    is known (a pure function of the arguments and of a per-tag
 *    generation that the cleaner bumps before every hermes_clean()), while
 *    the server is killed and restarted, stopped with SIGSTOP and resumed,
 *    and filled to maxmemory under noeviction.  Every value must be right
 *    and fresh, no call may take longer than the bound the README states,
 *    and caching must resume after every fault;
 *  - a lock holder killed with SIGKILL in the middle of its computation:
 *    another process waits no longer than lock_wait_ms, and the lock is
 *    free again no later than lock_ttl_ms after it was taken.
 *
 * The counts are printed, so a CI log shows what was exercised.
 */
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
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
#include "redis_server.h"

/* The settings of the campaign, and the bound they imply (README,
 * "Failure guarantees"): a call takes at most lock_wait_ms + 2 x
 * (connect_timeout_ms + command_timeout_ms) besides its own computation. */
#define LOCK_WAIT_MS 300
#define LOCK_TTL_MS 1000
#define CONNECT_TIMEOUT_MS 200
#define COMMAND_TIMEOUT_MS 200
#define CALL_BOUND_MS                                                          \
    (LOCK_WAIT_MS + 2 * (CONNECT_TIMEOUT_MS + COMMAND_TIMEOUT_MS))
/* Scheduling slack on a loaded 2-core machine under sanitizers: the bound
 * is about waiting, not CPU time. */
#define SLACK_MS 400

#define THREADS 8
/* Three rounds of: healthy, killed, healthy, stopped, healthy, full. */
#define ROUNDS 3
#define HEALTHY_MS 1000
#define FAULT_MS 1500
#define NTAGS 4
#define NARGS 50

static redis_server server;
static int test_pid;

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0)
        ;
}

static hermes *open_cache(const char *prefix, int lock_wait_ms, int lock_ttl_ms)
{
    char text[1024];
    hermes *c;

    snprintf(text, sizeof text,
             "[hermes]\nbackend = redis\nplugin_path = %s/plugins/redis\n"
             "prefix = %s%d\nlog_level = error\nlock_wait_ms = %d\n"
             "lock_ttl_ms = %d\nttl = 60\n"
             "[redis]\nport = %d\nconnect_timeout_ms = %d\n"
             "command_timeout_ms = %d\npool_size = 16\n",
             getenv("HERMES_TEST_BUILDDIR"), prefix, test_pid, lock_wait_ms,
             lock_ttl_ms, server.port, CONNECT_TIMEOUT_MS, COMMAND_TIMEOUT_MS);
    if (hermes_open_string(&c, text, "test") != HERMES_OK)
        fail_msg("open: %s", hermes_errmsg(c));
    return c;
}

/* A raw connection for the test's own commands, or NULL while the server
 * is down. */
static redisContext *raw(void)
{
    struct timeval tv = {1, 0};
    redisContext *r = redisConnectWithTimeout("127.0.0.1", server.port, tv);

    if (r && r->err) {
        redisFree(r);
        return NULL;
    }
    if (r)
        redisSetTimeout(r, tv);
    return r;
}

static void raw_cmd(const char *cmd)
{
    redisContext *r = raw();

    assert_non_null(r);
    redisReply *rep = redisCommand(r, cmd);
    assert_non_null(rep);
    if (rep->type == REDIS_REPLY_ERROR)
        fail_msg("%s: %s", cmd, rep->str);
    freeReplyObject(rep);
    redisFree(r);
}

/* ------------------------------------------------------------ campaign */

/* gen[t] changes before every clean of tag t; req[t] is the generation of
 * the last clean of t that succeeded: a value computed under an older
 * generation is stale from then on. */
static atomic_long gen[NTAGS], req[NTAGS];

typedef struct job {
    int tag;
    long arg;
} job;

static int compute_value(void *p, hermes_result *res)
{
    const job *j = p;
    char v[64];
    int n = snprintf(v, sizeof v, "t%d:a%ld:g%ld", j->tag, j->arg,
                     atomic_load(&gen[j->tag]));

    return hermes_result_set(res, v, (size_t)n) == HERMES_OK ? 0 : 1;
}

typedef struct counts {
    long calls, wrong, stale, failed;
    uint64_t slowest_ms;
} counts;

typedef struct worker {
    hermes_fn **fns;
    atomic_int *stop;
    unsigned seed;
    counts c;
} worker;

static void *work(void *p)
{
    worker *w = p;

    while (!atomic_load(w->stop)) {
        job j = {(int)(rand_r(&w->seed) % NTAGS),
                 (long)(rand_r(&w->seed) % NARGS)};
        long fresh = atomic_load(&req[j.tag]);
        hermes_args a = HERMES_ARGS_INIT;
        void *v;
        size_t n;
        uint64_t t0 = now_ms(), took;

        hermes_args_int(&a, j.arg);
        hermes_rc rc = hermes_call(w->fns[j.tag], a.data, a.len, compute_value,
                                   &j, &v, &n);
        took = now_ms() - t0;
        hermes_args_free(&a);
        long newest = atomic_load(&gen[j.tag]);
        w->c.calls++;
        if (took > w->c.slowest_ms)
            w->c.slowest_ms = took;
        if (rc != HERMES_OK) {
            w->c.failed++;
            continue;
        }
        int tag;
        long arg, g;
        char tail;
        char text[64];
        snprintf(text, sizeof text, "%.*s", (int)(n < 63 ? n : 63),
                 (const char *)v);
        hermes_free(v);
        if (sscanf(text, "t%d:a%ld:g%ld%c", &tag, &arg, &g, &tail) != 3 ||
            tag != j.tag || arg != j.arg || g > newest) {
            w->c.wrong++;
            fprintf(stderr, "wrong value %s for t%d a%ld\n", text, j.tag,
                    j.arg);
        } else if (g < fresh) {
            w->c.stale++;
            fprintf(stderr, "stale value %s: tag cleaned at generation %ld\n",
                    text, fresh);
        }
    }
    return NULL;
}

typedef struct cleaner {
    hermes *h;
    atomic_int *stop;
    long cleans, clean_failures;
} cleaner;

static void *clean_loop(void *p)
{
    cleaner *c = p;
    unsigned seed = 7;
    char name[16];

    while (!atomic_load(c->stop)) {
        int t = (int)(rand_r(&seed) % NTAGS);
        /* Bump first: a computation that starts from here on yields the
         * new generation, even one racing with the clean itself. */
        long g = atomic_fetch_add(&gen[t], 1) + 1;

        snprintf(name, sizeof name, "t%d", t);
        if (hermes_clean(c->h, HERMES_TAGS(name)) == HERMES_OK) {
            long cur = atomic_load(&req[t]);
            while (cur < g && !atomic_compare_exchange_weak(&req[t], &cur, g))
                ;
            c->cleans++;
        } else {
            c->clean_failures++;
        }
        sleep_ms(25);
    }
    return NULL;
}

static uint64_t hits(hermes *h)
{
    hermes_stats s;

    hermes_stats_get(h, &s, sizeof s);
    return s.hits;
}

/* Does the cache store and read back a new value now? */
static int stores_again(hermes *h)
{
    static int n;
    char key[32], want[32];
    void *v = NULL;
    size_t len = 0;
    int ok;

    n++;
    snprintf(key, sizeof key, "probe:%d", n);
    snprintf(want, sizeof want, "value %d", n);
    if (hermes_set(h, key, want, strlen(want), NULL, 60) != HERMES_OK)
        return 0;
    if (hermes_get(h, key, NULL, &v, &len) != HERMES_OK)
        return 0;
    ok = len == strlen(want) && memcmp(v, want, len) == 0;
    hermes_free(v);
    return ok;
}

/* Waits until caching works again after a fault: a new value is stored
 * and read back, and the workers' calls hit again.  Returns how long that
 * took, or fails the test after 6 s (the backoff is capped at 2 s). */
static uint64_t wait_caching(hermes *h, const char *after)
{
    uint64_t t0 = now_ms(), base = hits(h);

    while (!stores_again(h) || hits(h) < base + 100) {
        if (now_ms() - t0 > 6000)
            fail_msg("caching did not resume within 6 s after %s", after);
        sleep_ms(5);
    }
    print_message("caching resumed %" PRIu64 " ms after %s\n", now_ms() - t0,
                  after);
    return now_ms() - t0;
}

/* Fillers written so far (filler:0 .. next_filler - 1). */
static long next_filler;
static redisContext *filler_conn;

/*
 * Fill the server to maxmemory (noeviction) with keys outside our prefix
 * until it refuses a write, then set maxmemory 1 MiB below what it holds:
 * a server just at its limit accepts a write whenever deletes or freed
 * buffers make a little room, and this one must refuse every write until
 * unfill().  Returns how many writes it refused while filling.
 */
static long fill_to_maxmemory(void)
{
    redisReply *rep;
    long refused = 0, i;
    /* Small fillers, so that the server ends up full to within one of
     * them: a large one could be refused for its own size. */
    static char blob[512];

    memset(blob, 'f', sizeof blob);
    if (!filler_conn) {
        filler_conn = raw();
        assert_non_null(filler_conn);
        rep = redisCommand(filler_conn, "INFO memory");
        assert_non_null(rep);
        const char *u = strstr(rep->str, "used_memory:");
        assert_non_null(u);
        long long used = atoll(u + 12);
        freeReplyObject(rep);
        freeReplyObject(redisCommand(filler_conn,
                                     "CONFIG SET maxmemory-policy noeviction"));
        rep = redisCommand(filler_conn, "CONFIG SET maxmemory %lld",
                           used + (4 << 20));
        assert_non_null(rep);
        freeReplyObject(rep);
    }
    for (i = 0; i < 100000 && refused == 0; i++) {
        rep = redisCommand(filler_conn, "SET filler:%ld %b", next_filler++,
                           blob, sizeof blob);
        assert_non_null(rep);
        if (rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "OOM", 3) == 0)
            refused++;
        freeReplyObject(rep);
    }
    assert_true(refused > 0);
    rep = redisCommand(filler_conn, "INFO memory");
    assert_non_null(rep);
    const char *u = strstr(rep->str, "used_memory:");
    assert_non_null(u);
    long long used = atoll(u + 12);
    freeReplyObject(rep);
    rep = redisCommand(filler_conn, "CONFIG SET maxmemory %lld",
                       used - (1 << 20));
    assert_non_null(rep);
    freeReplyObject(rep);
    return refused;
}

static void unfill(void)
{
    freeReplyObject(redisCommand(filler_conn, "CONFIG SET maxmemory 0"));
    for (long i = 0; i < next_filler; i++)
        freeReplyObject(redisCommand(filler_conn, "UNLINK filler:%ld", i));
    redisFree(filler_conn);
    filler_conn = NULL;
    next_filler = 0;
}

static void
tagged_calls_stay_right_and_bounded_through_kills_stops_and_full(void **state)
{
    /* Static: a failed assertion leaves this frame while the threads
     * still run. */
    static hermes_fn *fns[NTAGS];
    static atomic_int stop;
    static pthread_t th[THREADS], ct;
    static worker w[THREADS];
    static cleaner cl;
    hermes *h = open_cache("faults", LOCK_WAIT_MS, LOCK_TTL_MS);
    hermes_stats before, after;
    int kills = 0, stops = 0, fills = 0, round, t;
    long oom_refusals = 0;
    uint64_t t_start = now_ms(), slowest_resume = 0, r;

    (void)state;
    for (t = 0; t < NTAGS; t++) {
        char name[16], tag[16];
        snprintf(name, sizeof name, "f%d", t);
        snprintf(tag, sizeof tag, "t%d", t);
        hermes_fn_options o = HERMES_FN_OPTIONS(.tags = HERMES_TAGS(tag));
        assert_int_equal(hermes_fn_register(h, name, &o, &fns[t]), HERMES_OK);
        atomic_init(&gen[t], 1);
        atomic_init(&req[t], 0);
    }
    atomic_init(&stop, 0);
    cl = (cleaner){h, &stop, 0, 0};
    for (t = 0; t < THREADS; t++) {
        memset(&w[t], 0, sizeof w[t]);
        w[t].fns = fns;
        w[t].stop = &stop;
        w[t].seed = (unsigned)t * 7919u + 1;
        assert_int_equal(pthread_create(&th[t], NULL, work, &w[t]), 0);
    }
    assert_int_equal(pthread_create(&ct, NULL, clean_loop, &cl), 0);

    wait_caching(h, "start");
    for (round = 0; round < ROUNDS; round++) {
        sleep_ms(HEALTHY_MS);
        redis_server_kill(&server);
        kills++;
        sleep_ms(FAULT_MS);
        assert_int_equal(redis_server_restart(&server), 0);
        r = wait_caching(h, "a kill and restart");
        slowest_resume = r > slowest_resume ? r : slowest_resume;

        sleep_ms(HEALTHY_MS);
        kill(server.pid, SIGSTOP);
        stops++;
        sleep_ms(FAULT_MS);
        kill(server.pid, SIGCONT);
        r = wait_caching(h, "SIGSTOP and SIGCONT");
        slowest_resume = r > slowest_resume ? r : slowest_resume;

        sleep_ms(HEALTHY_MS);
        hermes_stats_get(h, &before, sizeof before);
        fills++;
        oom_refusals += fill_to_maxmemory();
        sleep_ms(FAULT_MS);
        hermes_stats_get(h, &after, sizeof after);
        /* Full indeed: writes were refused meanwhile, reads went on. */
        assert_false(stores_again(h));
        assert_true(after.backend_errors > before.backend_errors);
        assert_true(after.hits > before.hits);
        unfill();
        r = wait_caching(h, "maxmemory");
        slowest_resume = r > slowest_resume ? r : slowest_resume;
    }
    sleep_ms(500);
    atomic_store(&stop, 1);
    counts all = {0};
    for (t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        all.calls += w[t].c.calls;
        all.wrong += w[t].c.wrong;
        all.stale += w[t].c.stale;
        all.failed += w[t].c.failed;
        if (w[t].c.slowest_ms > all.slowest_ms)
            all.slowest_ms = w[t].c.slowest_ms;
    }
    pthread_join(ct, NULL);

    hermes_stats s;
    hermes_stats_get(h, &s, sizeof s);
    print_message(
        "campaign: %" PRIu64 " ms, %ld calls, %" PRIu64 " hits, %" PRIu64
        " misses, %" PRIu64 " computations, %" PRIu64 " backend errors, "
        "%" PRIu64 " lock timeouts, %ld cleans (%ld failed); faults: %d "
        "kills, %d stops, %d fills (%ld OOM refusals while filling); "
        "wrong %ld, stale %ld, failed %ld; slowest call %" PRIu64
        " ms (bound %d ms); slowest resume %" PRIu64 " ms\n",
        now_ms() - t_start, all.calls, s.hits, s.misses, s.computations,
        s.backend_errors, s.lock_timeouts, cl.cleans, cl.clean_failures, kills,
        stops, fills, oom_refusals, all.wrong, all.stale, all.failed,
        all.slowest_ms, CALL_BOUND_MS, slowest_resume);
    hermes_close(h);

    assert_int_equal(all.wrong, 0);
    assert_int_equal(all.stale, 0);
    /* on_backend_error = compute: every call returns its value. */
    assert_int_equal(all.failed, 0);
    assert_true(all.slowest_ms <= CALL_BOUND_MS + SLACK_MS);
    assert_true(s.backend_errors > 0);
    assert_true(cl.cleans > 0);
}

/* --------------------------------------------------- killed lock holder */

static int ready_fd = -1;

/* The child's computation: say "I hold the lock" and never finish. */
static int compute_forever(void *p, hermes_result *res)
{
    (void)p;
    (void)res;
    if (write(ready_fd, "L", 1) != 1)
        _exit(3);
    for (;;)
        pause();
}

static int compute_quick(void *p, hermes_result *res)
{
    (void)p;
    return hermes_result_set(res, "quick", 5) == HERMES_OK ? 0 : 1;
}

static hermes_rc call_slow(hermes_fn *fn, hermes_compute_fn compute, char *out,
                           size_t cap)
{
    hermes_args a = HERMES_ARGS_INIT;
    void *v;
    size_t n;

    hermes_args_int(&a, 42);
    hermes_rc rc = hermes_call(fn, a.data, a.len, compute, NULL, &v, &n);
    hermes_args_free(&a);
    if (rc == HERMES_OK) {
        snprintf(out, cap, "%.*s", (int)n, (const char *)v);
        hermes_free(v);
    }
    return rc;
}

/* Lock keys under our prefix: 1 while the holder's lock exists. */
static long long lock_keys(void)
{
    redisContext *r = raw();
    redisReply *rep;
    long long n;

    assert_non_null(r);
    rep = redisCommand(r, "KEYS locks%d:lock:*", test_pid);
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
    n = (long long)rep->elements;
    freeReplyObject(rep);
    redisFree(r);
    return n;
}

static void lock_of_a_killed_holder_blocks_nobody_past_its_bounds(void **state)
{
    enum { WAIT_MS = 400, TTL_MS = 1500 };
    int fds[2];
    char got = 0, value[16] = "";
    uint64_t taken, waited, freed;
    pid_t kid;
    int status;

    (void)state;
    raw_cmd("FLUSHALL");
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    kid = fork();
    assert_true(kid >= 0);
    if (kid == 0) {
        /* The holder: its own handle, its own connections. */
        hermes *c = open_cache("locks", WAIT_MS, TTL_MS);
        hermes_fn *fn;
        char out[16];

        close(fds[0]);
        ready_fd = fds[1];
        if (hermes_fn_register(c, "slow", NULL, &fn) != HERMES_OK)
            _exit(2);
        call_slow(fn, compute_forever, out, sizeof out);
        _exit(4); /* not reached */
    }
    close(fds[1]);
    /* The child computes only once it holds the lock. */
    assert_int_equal(read(fds[0], &got, 1), 1);
    taken = now_ms();
    close(fds[0]);
    assert_int_equal(got, 'L');
    assert_int_equal(lock_keys(), 1);
    kill(kid, SIGKILL);
    assert_int_equal(cw_wait("redis_faults", kid, CW_TIMEOUT_MS, &status), 0);
    assert_true(WIFSIGNALED(status));

    hermes *h = open_cache("locks", WAIT_MS, TTL_MS);
    hermes_fn *fn;
    assert_int_equal(hermes_fn_register(h, "slow", NULL, &fn), HERMES_OK);
    uint64_t t0 = now_ms();
    assert_int_equal(call_slow(fn, compute_quick, value, sizeof value),
                     HERMES_OK);
    waited = now_ms() - t0;
    assert_string_equal(value, "quick");
    hermes_stats s;
    hermes_stats_get(h, &s, sizeof s);
    assert_int_equal(s.lock_timeouts, 1); /* it did wait on the lock */

    /* The dead holder's lock expires by itself. */
    while (lock_keys() != 0) {
        if (now_ms() - taken > TTL_MS + 2000)
            fail_msg("the lock outlived its TTL by 2 s");
        sleep_ms(5);
    }
    freed = now_ms() - taken;
    print_message("killed holder: the next caller waited %" PRIu64
                  " ms (lock_wait_ms %d); the lock was free %" PRIu64
                  " ms after it was taken (lock_ttl_ms %d)\n",
                  waited, WAIT_MS, freed, TTL_MS);
    assert_true(waited >= WAIT_MS - 50);
    assert_true(waited <= WAIT_MS + 300);
    assert_true(freed <= TTL_MS + 100);

    /* And then the entry is computed under the lock and cached. */
    assert_int_equal(call_slow(fn, compute_quick, value, sizeof value),
                     HERMES_OK);
    assert_int_equal(call_slow(fn, compute_quick, value, sizeof value),
                     HERMES_OK);
    hermes_stats_get(h, &s, sizeof s);
    assert_int_equal(s.lock_acquired, 1);
    assert_true(s.hits >= 1);
    hermes_close(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            tagged_calls_stay_right_and_bounded_through_kills_stops_and_full),
        cmocka_unit_test(lock_of_a_killed_holder_blocks_nobody_past_its_bounds),
    };
    int failed;

    test_pid = (int)getpid();
    if (redis_server_start(&server) != 0)
        return 1;
    failed = cmocka_run_group_tests(tests, NULL, NULL);
    redis_server_stop(&server);
    return failed;
}
