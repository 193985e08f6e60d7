/*
 * The cache over two private memcached servers (started by the test):
 * round trips counted by the servers themselves, keys spread over both,
 * dogpile control across processes, Python's flags, and failure: one of
 * the two servers killed, restarted and stopped (SIGSTOP) while threads
 * make calls whose right value is known.
 */
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
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <hermes/hermes.h>

#include "../support/child_wait.h"
#include "handle.h"
#include "internal.h"
#include "memcached_server.h"

static memcached_server srv[2];
static hermes *h;
static int test_pid;
static int g_prefix;             /* a fresh prefix per test: nothing to flush */
static atomic_int *computations; /* shared with forked children */
/* Calls of the children that failed open (a backend error or a lock wait
 * that ran out), each of which may compute once more by design. */
static atomic_int *fallbacks;
static atomic_int *lock_waits; /* waits for another process's lock */
static atomic_int *notified;   /* of those, ended by a release notice */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* extra: lines for [hermes]; mc_extra: lines for [memcached]. */
static hermes *open_cache_with(const char *extra, const char *mc_extra)
{
    char text[1024];
    hermes *c;
    snprintf(text, sizeof text,
             "[hermes]\nbackend = memcached\nplugin_path = "
             "%s/plugins/memcached\nprefix = mc%d-%d\n%s\n"
             "[memcached]\nservers = 127.0.0.1:%d, 127.0.0.1:%d\n"
             "connect_timeout_ms = 200\npoll_timeout_ms = 200\n"
             "retry_timeout_s = 1\n%s\n",
             getenv("HERMES_TEST_BUILDDIR"), test_pid, g_prefix,
             extra ? extra : "", srv[0].port, srv[1].port,
             mc_extra ? mc_extra : "");
    hermes_rc rc = hermes_open_string(&c, text, "test");
    if (rc != HERMES_OK)
        fail_msg("open: %s", hermes_errmsg(c));
    return c;
}

static hermes *open_cache(const char *extra)
{
    return open_cache_with(extra, NULL);
}

static int compute_counted(void *arg, hermes_result *res)
{
    int64_t *x = arg;
    atomic_fetch_add(computations, 1);
    sleep_ms(100);
    char v[32];
    int n = snprintf(v, sizeof v, "v%lld", (long long)*x);
    return hermes_result_set(res, v, (size_t)n) == HERMES_OK ? 0 : 1;
}

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
    hermes_rc rc = hermes_call(fn, a.data, a.len, compute, &x, &v, &n);
    hermes_args_free(&a);
    if (rc != HERMES_OK)
        return -1;
    char want[32];
    snprintf(want, sizeof want, "v%lld", (long long)x);
    int ok = n == strlen(want) && memcmp(v, want, n) == 0;
    hermes_free(v);
    return ok ? 0 : -2;
}

static long long total(const char *stat)
{
    long long t = 0;
    for (int i = 0; i < 2; i++) {
        long long v = memcached_server_stat(&srv[i], stat);
        assert_true(v >= 0);
        t += v;
    }
    return t;
}

static void mget_count(void *arg, const char *name, const char *value)
{
    if (strcmp(name, "multi_gets") == 0)
        *(long long *)arg = atoll(value);
}

static long long plugin_multi_gets(void)
{
    long long n = -1;
    assert_int_equal(hm_be_stats(h, mget_count, &n), HERMES_BE_OK);
    return n;
}

static int setup(void **state)
{
    g_prefix++;
    h = open_cache(NULL);
    return 0;
}

static int teardown(void **state)
{
    hermes_close(h);
    return 0;
}

/* Everything memcached counts besides gets. */
static long long other_commands(void)
{
    static const char *const names[] = {
        "cmd_set",       "cmd_flush", "cmd_touch",   "delete_hits",
        "delete_misses", "incr_hits", "incr_misses", "decr_hits",
        "decr_misses",   "cas_hits",  "cas_misses",  "cas_badval",
    };
    long long t = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        t += total(names[i]);
    return t;
}

static void tagged_hits_are_one_multiget_each_and_nothing_else(void **state)
{
    hermes_fn *fn;
    hermes_fn_options o =
        HERMES_FN_OPTIONS(.tags = HERMES_TAGS("rock", "tree"));
    assert_int_equal(hermes_fn_register(h, "tagged", &o, &fn), HERMES_OK);
    assert_int_equal(call(fn, 1, compute_plain), 0); /* warm */
    enum { N = 100 };
    long long gets0 = total("cmd_get"), hits0 = total("get_hits");
    long long other0 = other_commands(), mgets0 = plugin_multi_gets();
    for (int i = 0; i < N; i++)
        assert_int_equal(call(fn, 1, compute_plain), 0);
    /* N multi-gets of the entry, its two tags and the namespace key of
     * hermes_flush, all hits, no other command on either server. */
    assert_int_equal(plugin_multi_gets() - mgets0, N);
    assert_int_equal(total("cmd_get") - gets0, 4 * N);
    assert_int_equal(total("get_hits") - hits0, 4 * N);
    assert_int_equal(other_commands() - other0, 0);
    hermes_stats s;
    hermes_stats_get(h, &s, sizeof s);
    assert_true(s.hits >= N);
}

static void entries_spread_over_both_servers(void **state)
{
    hermes_fn *fn;
    assert_int_equal(hermes_fn_register(h, "spread", NULL, &fn), HERMES_OK);
    long long before[2];
    for (int i = 0; i < 2; i++)
        before[i] = memcached_server_stat(&srv[i], "curr_items");
    for (int i = 0; i < 200; i++)
        assert_int_equal(call(fn, i, compute_plain), 0);
    for (int i = 0; i < 2; i++) {
        long long grew =
            memcached_server_stat(&srv[i], "curr_items") - before[i];
        /* ketama over two equal servers: about half each */
        if (grew < 50)
            fail_msg("server %d got only %lld of 200 entries", i, grew);
    }
    for (int i = 0; i < 200; i++)
        assert_int_equal(call(fn, i, compute_plain), 0);
    hermes_stats s;
    hermes_stats_get(h, &s, sizeof s);
    assert_int_equal(s.computations, 200);
}

/* Whether `key` is on server i, by a raw get: "VALUE <key> ..." */
static bool raw_has(int i, const char *key)
{
    char cmd[300], reply[400], want[300];
    snprintf(cmd, sizeof cmd, "get %s", key);
    snprintf(want, sizeof want, "VALUE %s ", key);
    assert_int_equal(
        memcached_server_command(&srv[i], cmd, reply, sizeof reply), 0);
    return strncmp(reply, want, strlen(want)) == 0;
}

static hermes_fn *reg_on(hermes *c, const char *name, const char *const *tags)
{
    hermes_fn *fn;
    hermes_fn_options o = HERMES_FN_OPTIONS(.tags = tags);
    assert_int_equal(hermes_fn_register(c, name, &o, &fn), HERMES_OK);
    return fn;
}

static uint64_t computed_by(hermes *c)
{
    hermes_stats s;
    hermes_stats_get(c, &s, sizeof s);
    return s.computations;
}

static void expect_direct(hermes *c, const char *key, const char *want)
{
    void *v;
    size_t n;
    assert_int_equal(hermes_get(c, key, NULL, &v, &n), HERMES_OK);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(v, want, n);
    hermes_free(v);
}

/*
 * memcached cannot delete by prefix: hermes_flush gives the namespace key
 * a new version, so every entry of the prefix (cached functions, tagged or
 * not, and hermes_set entries) misses, while another prefix's entries and
 * another application's key on the same servers stay, and no flush_all
 * reaches the servers.  The stale entries are overwritten in place.
 */
static void flush_invalidates_every_entry_and_no_other_key(void **state)
{
    enum { N = 10 };
    hermes_fn *tagged = reg_on(h, "ftagged", HERMES_TAGS("rock"));
    hermes_fn *plain = reg_on(h, "fplain", NULL);
    int mine = g_prefix;
    g_prefix = 1000 + mine; /* another application's prefix */
    hermes *other = open_cache(NULL);
    g_prefix = mine;
    hermes_fn *theirs = reg_on(other, "fplain", NULL);
    char foreign[64], cmd[128], reply[64], their_key[128];
    snprintf(foreign, sizeof foreign, "foreign-%d", test_pid);
    snprintf(their_key, sizeof their_key, "mc%d-%d:entry:d", test_pid,
             1000 + mine);
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof cmd, "set %s 0 0 5\r\nalien", foreign);
        assert_int_equal(
            memcached_server_command(&srv[i], cmd, reply, sizeof reply), 0);
        assert_string_equal(reply, "STORED");
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(call(tagged, i, compute_plain), 0);
        assert_int_equal(call(plain, i, compute_plain), 0);
        assert_int_equal(call(theirs, i, compute_plain), 0);
    }
    assert_int_equal(hermes_set(h, "d", "mine", 4, NULL, HERMES_TTL_DEFAULT),
                     HERMES_OK);
    assert_int_equal(
        hermes_set(h, "dt", "mine", 4, HERMES_TAGS("rock"), HERMES_TTL_DEFAULT),
        HERMES_OK);
    assert_int_equal(
        hermes_set(other, "d", "theirs", 6, NULL, HERMES_TTL_DEFAULT),
        HERMES_OK);
    uint64_t mine0 = computed_by(h), theirs0 = computed_by(other);
    assert_int_equal(mine0, 2 * N);
    long long flushes0 = total("cmd_flush"), items0 = total("curr_items");

    assert_int_equal(hermes_flush(h), HERMES_OK);

    /* Through the servers: no flush_all; the foreign key on both servers
     * and the other prefix's entry are where they were. */
    assert_int_equal(total("cmd_flush"), flushes0);
    assert_true(raw_has(0, foreign) && raw_has(1, foreign));
    assert_int_equal(raw_has(0, their_key) + raw_has(1, their_key), 1);
    /* Through the library: the other prefix still hits... */
    for (int i = 0; i < N; i++)
        assert_int_equal(call(theirs, i, compute_plain), 0);
    assert_int_equal(computed_by(other), theirs0);
    expect_direct(other, "d", "theirs");
    /* ...and every entry of this one misses, then is cached again. */
    void *v;
    size_t n;
    assert_int_equal(hermes_get(h, "d", NULL, &v, &n), HERMES_ENOTFOUND);
    assert_int_equal(hermes_get(h, "dt", HERMES_TAGS("rock"), &v, &n),
                     HERMES_ENOTFOUND);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            assert_int_equal(call(tagged, i, compute_plain), 0);
            assert_int_equal(call(plain, i, compute_plain), 0);
        }
    }
    assert_int_equal(computed_by(h) - mine0, 2 * N);
    /* Recomputed entries overwrite the stale ones: the servers hold no
     * more items than before but for the released-lock markers of the
     * recomputations (2 s each). */
    assert_true(total("curr_items") - items0 <= 2 * N);
    hermes_close(other);
}

typedef struct worker {
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

static int crowd_in_child(int start_fd)
{
    hermes *c = open_cache("lock_wait_ms = 10000\n");
    hermes_fn *fn;
    if (hermes_fn_register(c, "cold", NULL, &fn) != HERMES_OK)
        return 2;
    char go;
    if (read(start_fd, &go, 1) != 1)
        return 3;
    pthread_barrier_t b;
    pthread_barrier_init(&b, NULL, 8);
    pthread_t t[8];
    worker w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (worker){fn, &b, 0};
        pthread_create(&t[i], NULL, worker_call, &w[i]);
    }
    int bad = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        bad += !w[i].ok;
    }
    hermes_stats st;
    hermes_stats_get(c, &st, sizeof st);
    atomic_fetch_add(fallbacks, (int)(st.backend_errors + st.lock_timeouts));
    atomic_fetch_add(lock_waits, (int)st.lock_contended);
    atomic_fetch_add(notified, (int)st.lock_notified);
    hermes_close(c);
    return bad ? 1 : 0;
}

static void
four_processes_of_eight_threads_compute_a_cold_key_once(void **state)
{
    int pipefd[2];
    atomic_store(computations, 0);
    atomic_store(fallbacks, 0);
    atomic_store(lock_waits, 0);
    atomic_store(notified, 0);
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
    sleep_ms(200); /* let every child open its cache */
    assert_int_equal(write(pipefd[1], "gggg", 4), 4);
    close(pipefd[1]);
    for (int i = 0; i < 4; i++) {
        int status;
        assert_int_equal(
            cw_wait("memcached_cache", kids[i], CW_TIMEOUT_MS, &status), 0);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    /* Once, unless a server did not answer in time (poll_timeout_ms is
     * 200 ms; a loaded machine can miss it) and a call failed open. */
    int extra = atomic_load(computations) - 1;
    if (extra != 0) {
        print_message("cold key: %d extra computations, %d calls failed "
                      "open\n",
                      extra, atomic_load(fallbacks));
        assert_true(extra > 0 && extra <= atomic_load(fallbacks));
    }
    /* Memcached cannot notify a release (no wait_unlock): the processes
     * that found the lock held polled it. */
    assert_true(atomic_load(lock_waits) > 0);
    assert_int_equal(atomic_load(notified), 0);
}

/* What Python's memcached clients read back: flags 0 (plain bytes), and a
 * tag value that unpickles to a 22-character str. */
static void tag_keys_carry_python_flags_and_pickles(void **state)
{
    hermes_fn *fn;
    hermes_fn_options o = HERMES_FN_OPTIONS(.tags = HERMES_TAGS("py"));
    assert_int_equal(hermes_fn_register(h, "py", &o, &fn), HERMES_OK);
    assert_int_equal(call(fn, 1, compute_plain), 0);
    char cmd[160], reply[256];
    snprintf(cmd, sizeof cmd, "mg mc%d-%d:tag:py f v", test_pid, g_prefix);
    int found = 0;
    for (int i = 0; i < 2; i++) {
        if (memcached_server_command(&srv[i], cmd, reply, sizeof reply) != 0)
            continue;
        if (strncmp(reply, "VA ", 3) == 0) {
            found++;
            /* "VA <len> f0" */
            assert_non_null(strstr(reply, " f0"));
        }
    }
    assert_int_equal(found, 1);
    /* The bytes themselves, through Debian's python3 over a socket. */
    int port = 0;
    for (int i = 0; i < 2; i++)
        if (memcached_server_command(&srv[i], cmd, reply, sizeof reply) == 0 &&
            strncmp(reply, "VA ", 3) == 0)
            port = srv[i].port;
    char py[1024];
    snprintf(py, sizeof py,
             "python3 -c \"import socket,pickle\n"
             "s=socket.create_connection(('127.0.0.1',%d))\n"
             "s.sendall(b'get mc%d-%d:tag:py\\r\\n')\n"
             "d=b''\n"
             "while not d.endswith(b'END\\r\\n'): d+=s.recv(4096)\n"
             "h,rest=d.split(b'\\r\\n',1)\n"
             "f=int(h.split()[2]); n=int(h.split()[3])\n"
             "v=pickle.loads(rest[:n])\n"
             "assert f==0 and type(v) is str and len(v)==22, (f,v)\n"
             "print('ok')\"",
             port, test_pid, g_prefix);
    FILE *p = popen(py, "r");
    assert_non_null(p);
    char out[64] = "";
    if (!fgets(out, sizeof out, p))
        out[0] = '\0';
    int st = pclose(p);
    if (st != 0 || strncmp(out, "ok", 2) != 0)
        fail_msg("python3 could not read the tag (status %d, '%s'); "
                 "install python3",
                 st, out);
}

static void one_server_down_at_start_then_back(void **state)
{
    hermes_close(h);
    memcached_server_kill(&srv[1]);
    h = open_cache(NULL); /* opens with a server dead */
    hermes_fn *fn;
    assert_int_equal(hermes_fn_register(h, "f", NULL, &fn), HERMES_OK);
    for (int i = 0; i < 40; i++)
        assert_int_equal(call(fn, i, compute_plain), 0);
    hermes_stats s;
    hermes_stats_get(h, &s, sizeof s);
    assert_true(s.backend_errors >= 1);
    assert_int_equal(memcached_server_restart(&srv[1]), 0);
    /* After retry_timeout_s every key caches again. */
    uint64_t t0 = now_ms();
    int all_cached = 0;
    while (!all_cached && now_ms() - t0 < 5000) {
        hermes_stats a, b;
        for (int i = 0; i < 40; i++)
            call(fn, i, compute_plain);
        hermes_stats_get(h, &a, sizeof a);
        for (int i = 0; i < 40; i++)
            call(fn, i, compute_plain);
        hermes_stats_get(h, &b, sizeof b);
        all_cached = b.computations == a.computations;
        if (!all_cached)
            sleep_ms(100);
    }
    assert_true(all_cached);
}

/* ------------------------------------------------------------ faults */

#define FAULT_THREADS 4
#define FAULT_KEYS 64

static atomic_int gen, committed, stop_flag;
static atomic_int wrong, stale, failed_calls;
static atomic_llong slowest_ms, calls_made;

static int compute_gen(void *arg, hermes_result *res)
{
    int64_t *x = arg;
    char v[48];
    int n =
        snprintf(v, sizeof v, "v%lld:g%d", (long long)*x, atomic_load(&gen));
    return hermes_result_set(res, v, (size_t)n) == HERMES_OK ? 0 : 1;
}

static void *fault_worker(void *arg)
{
    hermes_fn *fn = arg;
    unsigned seed = (unsigned)(uintptr_t)pthread_self();
    while (!atomic_load(&stop_flag)) {
        int64_t x = rand_r(&seed) % FAULT_KEYS;
        int c0 = atomic_load(&committed);
        hermes_args a = HERMES_ARGS_INIT;
        hermes_args_int(&a, x);
        void *v;
        size_t n;
        uint64_t t0 = now_ms();
        hermes_rc rc = hermes_call(fn, a.data, a.len, compute_gen, &x, &v, &n);
        long long took = (long long)(now_ms() - t0);
        hermes_args_free(&a);
        atomic_fetch_add(&calls_made, 1);
        long long prev = atomic_load(&slowest_ms);
        while (took > prev &&
               !atomic_compare_exchange_weak(&slowest_ms, &prev, took))
            ;
        if (rc != HERMES_OK) {
            atomic_fetch_add(&failed_calls, 1);
            continue;
        }
        long long vx = -1;
        int vg = -1;
        char text[64];
        snprintf(text, sizeof text, "%.*s", (int)(n < 63 ? n : 63),
                 (const char *)v);
        hermes_free(v);
        if (sscanf(text, "v%lld:g%d", &vx, &vg) != 2 || vx != x)
            atomic_fetch_add(&wrong, 1);
        else if (vg < c0)
            atomic_fetch_add(&stale, 1);
    }
    return NULL;
}

/* Waits until a hit happens again (caching resumed), up to 5 s. */
static int caching_resumes(void)
{
    hermes_stats a, b;
    hermes_stats_get(h, &a, sizeof a);
    for (int i = 0; i < 100; i++) {
        sleep_ms(50);
        hermes_stats_get(h, &b, sizeof b);
        if (b.hits > a.hits + 50)
            return 1;
    }
    return 0;
}

static void clean_and_commit(void)
{
    int g = atomic_fetch_add(&gen, 1) + 1;
    if (hermes_clean(h, HERMES_TAGS("ft")) == HERMES_OK)
        atomic_store(&committed, g);
}

static void every_call_is_right_while_one_server_fails(void **state)
{
    hermes_close(h);
    h = open_cache("lock_wait_ms = 300\n");
    hermes_fn *fn;
    hermes_fn_options o = HERMES_FN_OPTIONS(.tags = HERMES_TAGS("ft", "other"));
    assert_int_equal(hermes_fn_register(h, "faulty", &o, &fn), HERMES_OK);
    atomic_store(&stop_flag, 0);
    pthread_t t[FAULT_THREADS];
    for (int i = 0; i < FAULT_THREADS; i++)
        pthread_create(&t[i], NULL, fault_worker, fn);
    int resumed = 0;
    for (int round = 0; round < 2; round++) {
        for (int s = 0; s < 2; s++) {
            memcached_server *victim = &srv[s];
            assert_true(caching_resumes());
            clean_and_commit();
            memcached_server_kill(victim); /* crash */
            sleep_ms(300);
            clean_and_commit();
            assert_int_equal(memcached_server_restart(victim), 0);
            resumed += caching_resumes();
            clean_and_commit();
            kill(victim->pid, SIGSTOP); /* hung */
            sleep_ms(1000);
            clean_and_commit();
            kill(victim->pid, SIGCONT);
            resumed += caching_resumes();
        }
    }
    atomic_store(&stop_flag, 1);
    for (int i = 0; i < FAULT_THREADS; i++)
        pthread_join(t[i], NULL);
    hermes_stats s;
    hermes_stats_get(h, &s, sizeof s);
    fprintf(stderr,
            "# faults: %lld calls, %llu hits, %llu backend errors, %d wrong, "
            "%d stale, %d failed, slowest %lld ms\n",
            (long long)atomic_load(&calls_made), (unsigned long long)s.hits,
            (unsigned long long)s.backend_errors, atomic_load(&wrong),
            atomic_load(&stale), atomic_load(&failed_calls),
            (long long)atomic_load(&slowest_ms));
    assert_int_equal(atomic_load(&wrong), 0);
    assert_int_equal(atomic_load(&stale), 0);
    assert_int_equal(atomic_load(&failed_calls), 0);
    assert_int_equal(resumed, 8);
    assert_true(s.backend_errors > 0);
    /* lock_wait_ms 300 + 2 x (connect 200 + poll 200), plus slack for
     * sanitizer builds on a loaded machine. */
    assert_true(atomic_load(&slowest_ms) < 1500);
}

/* A write the server refuses (a 2 MiB value; memcached's items are at
 * most 1 MiB, and the plugin allows 4) fails with the server's own words
 * in hermes_errmsg, from the plugin's error detail. */
static void a_refused_write_says_why_in_errmsg(void **state)
{
    (void)state;
    hermes *c = open_cache_with(NULL, "max_value_bytes = 4194304");
    size_t len = 2u << 20;
    char *big = malloc(len);

    assert_non_null(big);
    memset(big, 'z', len);
    assert_int_not_equal(hermes_set(c, "big", big, len, NULL, 0), HERMES_OK);
    if (!strstr(hermes_errmsg(c), "SERVER_ERROR object too large"))
        fail_msg("errmsg: %s", hermes_errmsg(c));
    /* The next call that works clears it. */
    assert_int_equal(hermes_set(c, "small", "s", 1, NULL, 0), HERMES_OK);
    assert_string_equal(hermes_errmsg(c), "");
    free(big);
    hermes_close(c);
}

int main(void)
{
    test_pid = (int)getpid();
    computations = mmap(NULL, 4 * sizeof *computations, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (computations == MAP_FAILED)
        return 1;
    fallbacks = computations + 1;
    lock_waits = computations + 2;
    notified = computations + 3;
    if (memcached_server_start(&srv[0]) != 0 ||
        memcached_server_start(&srv[1]) != 0)
        return 1;
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(tagged_hits_are_one_multiget_each_and_nothing_else),
        T(entries_spread_over_both_servers),
        T(flush_invalidates_every_entry_and_no_other_key),
        T(four_processes_of_eight_threads_compute_a_cold_key_once),
        T(tag_keys_carry_python_flags_and_pickles),
        T(one_server_down_at_start_then_back),
        T(every_call_is_right_while_one_server_fails),
        T(a_refused_write_says_why_in_errmsg),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    memcached_server_stop(&srv[0]);
    memcached_server_stop(&srv[1]);
    return failed;
}
