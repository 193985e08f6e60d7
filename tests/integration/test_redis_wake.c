/*
 * Lock-release notices on redis (ABI 1.3 wait_unlock, plugins/redis/wait.c)
 * against a private redis-server: callers in other processes waiting for
 * a lock are woken by the holder's unlock (the library's lock_notified
 * counter says a notice ended their wait, not a poll); after CLIENT KILL
 * of the listener's connection they are woken again; with the server
 * stopped they still return within the lock-wait bound, computing
 * directly; lock_notify = no waits by polling as before; a fork child
 * listens on a connection of its own.
 *
 * The leader is this process, inside its compute callback: it starts the
 * followers and waits until the server shows them waiting (subscribed to
 * the lock's channel, PUBSUB NUMSUB, and their second attempt at the lock
 * made, INFO commandstats) before it returns and so releases the lock.
 */
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
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

static redis_server server;
static int test_pid; /* names the prefix, the same in forked children */

/* The lock key of the entry with the custom key "wk" (custom_key). */
static char lock_key[64];

/* Followers that must be woken read again only when told (lock_poll_ms
 * past lock_wait_ms): a notice that does not come makes them time out
 * and compute, which fails the test.  So their attempts are exactly
 * counted too: one that finds the lock held, one when their listener has
 * subscribed (it cannot tell whether it missed a release before that). */
#define LOCK_WAIT_MS "20000"
#define NOTIFIED_ONLY "lock_poll_ms = 60000"

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static hermes *open_cache(const char *hermes_extra, const char *redis_extra)
{
    char text[1024];
    hermes *c;
    snprintf(text, sizeof text,
             "[hermes]\nbackend = redis\nplugin_path = %s/plugins/redis\n"
             "prefix = wk%d\nlog_level = error\npublish_stats = no\n"
             "%s\n%s\n"
             "[redis]\nport = %d\nconnect_timeout_ms = 200\n"
             "command_timeout_ms = 200\n%s\n",
             getenv("HERMES_TEST_BUILDDIR"), test_pid,
             hermes_extra && strstr(hermes_extra, "lock_wait_ms")
                 ? ""
                 : "lock_wait_ms = " LOCK_WAIT_MS,
             hermes_extra ? hermes_extra : "", server.port,
             redis_extra ? redis_extra : "");
    hermes_rc rc = hermes_open_string(&c, text, "test");
    if (rc != HERMES_OK) {
        fprintf(stderr, "open: %s\n", hermes_errmsg(c));
        hermes_close(c);
        return NULL;
    }
    return c;
}

static redisContext *raw(void)
{
    redisContext *r = redisConnect("127.0.0.1", server.port);
    if (!r || r->err) {
        fprintf(stderr, "raw connect failed\n");
        abort();
    }
    return r;
}

static long long numsub(redisContext *r)
{
    redisReply *rep = redisCommand(r, "PUBSUB NUMSUB %s", lock_key);
    long long n = -1;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[1]->type == REDIS_REPLY_INTEGER)
        n = rep->element[1]->integer;
    freeReplyObject(rep);
    return n;
}

/* Calls of SET so far: every attempt at the lock is one SET NX PX. */
static long long set_calls(redisContext *r)
{
    redisReply *rep = redisCommand(r, "INFO commandstats");
    long long n = -1;
    const char *p = rep && rep->type == REDIS_REPLY_STRING
                        ? strstr(rep->str, "cmdstat_set:calls=")
                        : NULL;
    if (p)
        n = atoll(p + 18);
    freeReplyObject(rep);
    return n;
}

/* Waits (up to 20 s) until the lock has at least subs subscribers and SET
 * was called at least sets times; false on timeout. */
static bool wait_for(redisContext *r, long long subs, long long sets)
{
    uint64_t deadline = now_ms() + 20000;
    while (numsub(r) < subs || set_calls(r) < sets) {
        if (now_ms() > deadline) {
            fprintf(stderr,
                    "waited 20 s for %lld subscribers (have %lld) "
                    "and %lld SETs (have %lld)\n",
                    subs, numsub(r), sets, set_calls(r));
            return false;
        }
        sleep_ms(1);
    }
    return true;
}

static int custom_key(void *arg, char *buf, size_t cap)
{
    (void)arg;
    return snprintf(buf, cap, "wk");
}

static hermes_fn *register_fn(hermes *c)
{
    hermes_fn *fn = NULL;
    hermes_fn_options o = HERMES_FN_OPTIONS(.key = custom_key);
    if (hermes_fn_register(c, "f", &o, &fn) != HERMES_OK)
        return NULL;
    return fn;
}

static int compute_v7(void *arg, hermes_result *res)
{
    (void)arg;
    return hermes_result_set(res, "v7", 2) == HERMES_OK ? 0 : 1;
}

/* One call; 0 when it returned v7. */
static int call_fn(hermes_fn *fn, hermes_compute_fn compute, void *arg)
{
    void *v;
    size_t n;
    hermes_rc rc = hermes_call(fn, NULL, 0, compute, arg, &v, &n);
    if (rc != HERMES_OK)
        return -1;
    int ok = n == 2 && memcmp(v, "v7", 2) == 0;
    hermes_free(v);
    return ok ? 0 : -2;
}

/* --------------------------------------------------------- followers */

typedef struct follower {
    const char *hermes_extra, *redis_extra;
    int threads;
    int notified;      /* 1: must have been woken by a notice; 0: must not */
    int may_compute;   /* fail-open allowed (a stopped server) */
    uint64_t bound_ms; /* a call may take at most this; 0: no check */
} follower;

typedef struct fthread {
    hermes_fn *fn;
    int ok;
    uint64_t took_ms;
    pthread_t t;
} fthread;

static void *fthread_main(void *p)
{
    fthread *ft = p;
    uint64_t t0 = now_ms();
    ft->ok = call_fn(ft->fn, compute_v7, NULL) == 0;
    ft->took_ms = now_ms() - t0;
    return NULL;
}

/* A follower process: waits for the go byte (go_fd -1: none), then calls
 * fn from f->threads threads; c and fn are opened here when c is NULL.
 * Closes c.  Exit status 0, or what went wrong. */
static int follow(const follower *f, int go_fd, hermes *c, hermes_fn *fn)
{
    if (!c && (c = open_cache(f->hermes_extra, f->redis_extra)) != NULL)
        fn = register_fn(c);
    if (!fn)
        return 10;
    char go;
    if (go_fd >= 0 && read(go_fd, &go, 1) != 1)
        return 11;
    hermes_stats s0, s;
    hermes_stats_get(c, &s0, sizeof s0);
    fthread ft[8];
    int bad = 0;
    for (int i = 0; i < f->threads; i++) {
        ft[i] = (fthread){fn, 0, 0, 0};
        pthread_create(&ft[i].t, NULL, fthread_main, &ft[i]);
    }
    for (int i = 0; i < f->threads; i++) {
        pthread_join(ft[i].t, NULL);
        if (!ft[i].ok)
            bad = 12;
        if (f->bound_ms && ft[i].took_ms > f->bound_ms) {
            fprintf(stderr, "a call took %llu ms (bound %llu)\n",
                    (unsigned long long)ft[i].took_ms,
                    (unsigned long long)f->bound_ms);
            bad = 13;
        }
    }
    hermes_stats_get(c, &s, sizeof s);
    uint64_t notified = s.lock_notified - s0.lock_notified;
    if (!bad && !f->may_compute && s.computations != s0.computations)
        bad = 14;
    if (!bad && s.lock_timeouts != s0.lock_timeouts)
        bad = 15;
    if (!bad && (f->notified ? notified < 1 : notified != 0))
        bad = 16;
    if (!bad && s.lock_contended == s0.lock_contended)
        bad = 17; /* it never waited for the lock: the test is wrong */
    if (bad)
        fprintf(stderr,
                "follower %d: status %d: computations %llu, notified %llu, "
                "timeouts %llu, contended %llu\n",
                (int)getpid(), bad,
                (unsigned long long)(s.computations - s0.computations),
                (unsigned long long)notified,
                (unsigned long long)(s.lock_timeouts - s0.lock_timeouts),
                (unsigned long long)(s.lock_contended - s0.lock_contended));
    hermes_close(c);
    return bad;
}

/* ------------------------------------------------------------ leader */

typedef struct leader leader;

/* What the leader does while it holds the lock, after starting the
 * followers: wait until they wait, and perhaps disturb them. */
typedef bool (*holding_fn)(redisContext *r, leader *l);

struct leader {
    int go_fd; /* write end: one byte per follower process */
    int nkids;
    pid_t kids[8];
    int status[8]; /* of a follower reaped while holding, else -1 */
    holding_fn holding;
    long long base_sets; /* SET calls before the followers started */
    bool ok;
};

static int compute_leading(void *arg, hermes_result *res)
{
    leader *l = arg;
    redisContext *r = raw();
    l->base_sets = set_calls(r);
    for (int i = 0; i < l->nkids; i++)
        if (write(l->go_fd, "g", 1) != 1)
            l->ok = false;
    if (l->ok)
        l->ok = l->holding(r, l);
    redisFree(r);
    return hermes_result_set(res, "v7", 2) == HERMES_OK ? 0 : 1;
}

/* Forks nkids followers running f, leads the entry through holding, and
 * checks that every follower exited 0. */
static void run(const follower *f, int nkids, holding_fn holding)
{
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    leader l = {
        .go_fd = pipefd[1], .nkids = nkids, .holding = holding, .ok = true};
    for (int i = 0; i < nkids; i++) {
        l.status[i] = -1;
        l.kids[i] = fork();
        assert_true(l.kids[i] >= 0);
        if (l.kids[i] == 0) {
            close(pipefd[1]);
            _exit(follow(f, pipefd[0], NULL, NULL));
        }
    }
    close(pipefd[0]);
    hermes *c = open_cache(NULL, NULL);
    assert_non_null(c);
    hermes_fn *fn = register_fn(c);
    assert_non_null(fn);
    assert_int_equal(call_fn(fn, compute_leading, &l), 0);
    close(pipefd[1]);
    int failed = 0;
    for (int i = 0; i < nkids; i++) {
        if (l.status[i] == -1)
            assert_int_equal(
                cw_wait("redis_wake", l.kids[i], CW_TIMEOUT_MS, &l.status[i]),
                0);
        if (!WIFEXITED(l.status[i]) || WEXITSTATUS(l.status[i]) != 0)
            failed++;
    }
    hermes_close(c);
    assert_true(l.ok);
    assert_int_equal(failed, 0);
}

/* Every follower process subscribed, and each made its second attempt
 * (after the one that found the lock held, the one that follows the
 * subscription's confirmation): now each waits for the notice. */
static bool crowd_waits(redisContext *r, leader *l)
{
    return wait_for(r, l->nkids, l->base_sets + 2 * l->nkids);
}

static int setup(void **state)
{
    (void)state;
    redisContext *r = raw();
    freeReplyObject(redisCommand(r, "FLUSHALL"));
    redisFree(r);
    return 0;
}

/* ------------------------------------------------------------- tests */

static void followers_in_other_processes_are_woken_by_the_release(void **state)
{
    (void)state;
    follower f = {.hermes_extra = NOTIFIED_ONLY, .threads = 2, .notified = 1};
    run(&f, 4, crowd_waits);
}

/* Waits (up to 20 s: the server's MONITOR stream then falls silent or a
 * read times out) until SET of the lock key came from n client
 * connections of other processes, seen through MONITOR. */
static bool wait_setters(int n)
{
    redisContext *mon = raw();
    struct timeval tv = {20, 0};
    redisSetTimeout(mon, tv);
    redisReply *ok = redisCommand(mon, "MONITOR");
    bool good = ok && ok->type == REDIS_REPLY_STATUS;
    freeReplyObject(ok);
    char seen[8][64];
    int nseen = 0;
    char want[96];
    snprintf(want, sizeof want, "\"SET\" \"%s\"", lock_key);
    while (good && nseen < n) {
        redisReply *line = NULL;
        if (redisGetReply(mon, (void **)&line) != REDIS_OK || !line) {
            fprintf(stderr, "MONITOR: %s\n", mon->errstr);
            good = false;
            break;
        }
        const char *a =
            line->type == REDIS_REPLY_STATUS ? strchr(line->str, '[') : NULL;
        const char *b = a ? strchr(a, ']') : NULL;
        if (b && strstr(line->str, want) && b - a < 64) {
            char addr[64];
            snprintf(addr, sizeof addr, "%.*s", (int)(b - a), a);
            bool known = false;
            for (int i = 0; i < nseen; i++)
                known |= strcmp(seen[i], addr) == 0;
            if (!known && nseen < 8)
                snprintf(seen[nseen++], sizeof seen[0], "%s", addr);
        }
        freeReplyObject(line);
    }
    redisFree(mon);
    return good;
}

/* Each follower process tried the lock (SET NX from each one's own
 * connection: one thread, so one connection each; polling ones try again
 * and again, so a count of SETs says nothing), and nobody listens. */
static bool polls_and_no_listener(redisContext *r, leader *l)
{
    return wait_setters(l->nkids) && numsub(r) == 0;
}

static void with_lock_notify_no_followers_poll_as_before(void **state)
{
    (void)state;
    follower f = {.redis_extra = "lock_notify = no", .threads = 1};
    run(&f, 4, polls_and_no_listener);
}

static bool kill_listener(redisContext *r, leader *l)
{
    if (!crowd_waits(r, l))
        return false;
    redisReply *rep = redisCommand(r, "CLIENT KILL TYPE pubsub");
    bool killed = rep && rep->type == REDIS_REPLY_INTEGER && rep->integer >= 1;
    freeReplyObject(rep);
    if (!killed)
        return false;
    /* Subscribed again on a new connection, which woke the follower to
     * read again (its third attempt): it waits on the new subscription. */
    return wait_for(r, 1, l->base_sets + 3);
}

static void a_killed_listener_reconnects_and_still_wakes(void **state)
{
    (void)state;
    follower f = {.hermes_extra = NOTIFIED_ONLY, .threads = 1, .notified = 1};
    run(&f, 1, kill_listener);
}

/* The follower waits; the server stops; the follower must give up on the
 * store and compute directly within the bound, while the server is still
 * stopped (it is resumed only once the follower has exited). */
static bool stop_server(redisContext *r, leader *l)
{
    if (!crowd_waits(r, l))
        return false;
    kill(server.pid, SIGSTOP);
    int waited =
        cw_wait("redis_wake", l->kids[0], CW_TIMEOUT_MS, &l->status[0]);
    kill(server.pid, SIGCONT);
    return waited == 0;
}

static void a_stopped_server_keeps_the_lock_wait_bound(void **state)
{
    (void)state;
    /* lock_wait_ms + 2 x (connect + command timeout), plus slack for the
     * sanitizer builds, as test_redis_faults allows. */
    follower f = {.hermes_extra = "lock_wait_ms = 2000",
                  .threads = 1,
                  .may_compute = 1,
                  .bound_ms = 2000 + 2 * (200 + 200) + 1000};
    run(&f, 1, stop_server);
}

/* The fork test's leader: computes until told to release. */
typedef struct held {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool release;
    hermes_fn *fn;
    int ok;
    pthread_t t;
} held;

static int compute_held(void *arg, hermes_result *res)
{
    held *hd = arg;
    pthread_mutex_lock(&hd->mu);
    while (!hd->release)
        pthread_cond_wait(&hd->cv, &hd->mu);
    pthread_mutex_unlock(&hd->mu);
    return hermes_result_set(res, "v7", 2) == HERMES_OK ? 0 : 1;
}

static void *held_main(void *p)
{
    held *hd = p;
    hd->ok = call_fn(hd->fn, compute_held, hd) == 0;
    return NULL;
}

/*
 * A handle whose listener runs (a thread waits on it) is inherited by a
 * fork child, which waits through it too: the child must listen on a
 * connection and thread of its own (the parent's are not in it), and both
 * processes are woken by the one release.
 */
static void a_fork_child_listens_on_its_own_connection(void **state)
{
    (void)state;
#ifdef __SANITIZE_THREAD__
    /* Not under ThreadSanitizer, loudly: the child starts a thread (its
     * listener) after a fork of a process with threads, which glibc
     * supports but TSan does not (it dies: "starting new threads after
     * multi-threaded fork is not supported"; with die_after_fork=0 it
     * then fails on "dup thread with used id", glibc having given the new
     * thread the stack of one of the parent's, which TSan still counts as
     * alive).  The test runs in the plain and the ASan builds. */
    print_message("fork child's listener: skipped under TSan (it cannot "
                  "start threads after a multi-threaded fork)\n");
    skip();
#endif
    redisContext *r = raw();
    long long base = set_calls(r);
    hermes *hl = open_cache(NULL, NULL), *hf = open_cache(NOTIFIED_ONLY, NULL);
    assert_non_null(hl);
    assert_non_null(hf);
    held hd = {PTHREAD_MUTEX_INITIALIZER,
               PTHREAD_COND_INITIALIZER,
               false,
               register_fn(hl),
               0,
               0};
    hermes_fn *ffn = register_fn(hf);
    assert_non_null(hd.fn);
    assert_non_null(ffn);
    pthread_create(&hd.t, NULL, held_main, &hd);
    assert_true(wait_for(r, 0, base + 1)); /* the leader has the lock */
    hermes_stats s0, s;
    hermes_stats_get(hf, &s0, sizeof s0);
    fthread ft = {ffn, 0, 0, 0};
    pthread_create(&ft.t, NULL, fthread_main, &ft);
    assert_true(wait_for(r, 1, base + 3));

    follower f = {.threads = 1, .notified = 1};
    pid_t kid = fork();
    assert_true(kid >= 0);
    if (kid == 0)
        _exit(follow(&f, -1, hf, ffn));
    /* Two listeners now, and the child's second attempt made. */
    assert_true(wait_for(r, 2, base + 5));
    pthread_mutex_lock(&hd.mu);
    hd.release = true;
    pthread_cond_signal(&hd.cv);
    pthread_mutex_unlock(&hd.mu);
    pthread_join(hd.t, NULL);
    pthread_join(ft.t, NULL);
    int status;
    assert_int_equal(cw_wait("redis_wake", kid, CW_TIMEOUT_MS, &status), 0);
    hermes_stats_get(hf, &s, sizeof s);
    hermes_close(hf);
    hermes_close(hl);
    redisFree(r);
    assert_true(hd.ok);
    assert_true(ft.ok);
    assert_true(s.lock_notified > s0.lock_notified);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    test_pid = (int)getpid();
    snprintf(lock_key, sizeof lock_key, "wk%d:lock:wk", test_pid);
    if (redis_server_start(&server) != 0)
        return 1;
#define T(f) cmocka_unit_test_setup_teardown(f, setup, NULL)
    const struct CMUnitTest tests[] = {
        T(followers_in_other_processes_are_woken_by_the_release),
        T(with_lock_notify_no_followers_poll_as_before),
        T(a_killed_listener_reconnects_and_still_wakes),
        T(a_stopped_server_keeps_the_lock_wait_bound),
        T(a_fork_child_listens_on_its_own_connection),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    redis_server_stop(&server);
    return failed;
}
