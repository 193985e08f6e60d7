/*
 * The redis plugin's read batcher (plugins/redis/batch.c, batch_reads =
 * yes) against a private redis-server: concurrent reads share a write,
 * and every guarantee of a read holds for a batched one.
 *
 * The batcher is driven directly, on a pool of its own, so that the test
 * can watch its queue (rbatch_counters) while the server is stopped with
 * SIGSTOP: 8 threads read at once, RBATCH_FLIGHTS of them are sent and the
 * others are seen queued before the server resumes.  Every send() of the
 * process is counted (the pool writes each pipeline with one send()).
 * Then: a hung server fails every queued and flying caller within
 * command_timeout_ms of its call; a connection dropped under a flight
 * fails that flight alone and the queue goes out on a new connection; a
 * fork child reads on its own while the parent's queue waits.  The last
 * test goes through the plugin's ABI: the config key and the counters.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <hermes/backend.h>
#include <hiredis/hiredis.h>

#include "../support/child_wait.h"
#include "../support/redis_server.h"
#include "batch.h"
#include "pool.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Defined by HERMES_BACKEND_DEFINE in plugins/redis/redis.c. */
const hermes_backend *hermes_backend_entry(void);

#define THREADS 8
#define QUEUED (THREADS - RBATCH_FLIGHTS)
/* How long the test waits for a condition before failing: generous, it
 * is a bound for a stuck test, not a measurement. */
#define WAIT_MS 10000
/* command_timeout_ms of the hung-server test, and the scheduling slack of
 * a loaded 2-core machine under sanitizers on top of it. */
#define HUNG_TIMEOUT_MS 1000
#define SLACK_MS 400
/* A slow server's reply: more than half of command_timeout_ms, so that a
 * read queued behind one such reply gets its own after more than
 * command_timeout_ms from its call. */
#define SLOW_MS 600

static redis_server server;
static redisContext *admin; /* the test's own connection (no send()) */

/* Every send() of the process: the plugin code is linked into this
 * program, so its calls reach this definition first. */
static atomic_long sends;

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
    static ssize_t (*_Atomic next)(int, const void *, size_t, int);
    ssize_t (*f)(int, const void *, size_t, int) = next;

    if (!f) {
        *(void **)&f = dlsym(RTLD_NEXT, "send");
        next = f;
    }
    atomic_fetch_add(&sends, 1);
    return f(fd, buf, len, flags);
}

/* ------------------------------------------------------- fake host */

static _Thread_local char detail[256]; /* the failure reason, per thread */

static void host_log(void *ctx, int level, const char *msg)
{
    (void)ctx;
    if (getenv("HERMES_TEST_VERBOSE"))
        fprintf(stderr, "plugin log [%d]: %s\n", level, msg);
}

static void host_detail(void *ctx, const char *msg)
{
    (void)ctx;
    snprintf(detail, sizeof detail, "%s", msg);
}

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t host_now_ms(void *ctx)
{
    (void)ctx;
    return clock_ns(CLOCK_REALTIME) / 1000000u;
}

static uint64_t host_monotonic_ns(void *ctx)
{
    (void)ctx;
    return clock_ns(CLOCK_MONOTONIC);
}

static const hermes_host host = {
    .struct_size = sizeof(hermes_host),
    .log = host_log,
    .now_ms = host_now_ms,
    .monotonic_ns = host_monotonic_ns,
    .config_source = "<test>",
    .error_detail = host_detail,
};

static uint64_t now_ms(void)
{
    return clock_ns(CLOCK_MONOTONIC) / 1000000u;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ------------------------------------------------------- the readers */

typedef struct fixture {
    rpool pool;
    rbatch *batch;
} fixture;

static void fixture_open_db(fixture *fx, uint32_t command_timeout_ms, int db)
{
    rpool_settings s = {
        .host = "127.0.0.1",
        .port = server.port,
        .connect_timeout_ms = 1000,
        .command_timeout_ms = command_timeout_ms,
        .size = 32,
        .max_value_bytes = 1u << 20,
        .db = db,
    };

    assert_int_equal(rpool_init(&fx->pool, &host, &s), HERMES_BE_OK);
    fx->batch = rbatch_new(&fx->pool);
    assert_non_null(fx->batch);
}

static void fixture_open(fixture *fx, uint32_t command_timeout_ms)
{
    fixture_open_db(fx, command_timeout_ms, 0);
}

static int read_now(fixture *fx, int id);
static void fill_keys(void);

/* fixture_open(), the keys set and one read done: a connection is idle. */
static void fixture_open_warm(fixture *fx, uint32_t command_timeout_ms)
{
    fixture_open(fx, command_timeout_ms);
    fill_keys();
    assert_int_equal(read_now(fx, 0), HERMES_BE_OK);
}

static void fixture_close(fixture *fx)
{
    rbatch_free(fx->batch);
    rpool_destroy(&fx->pool);
}

static rbatch_counts counts(fixture *fx)
{
    rbatch_counts c;

    rbatch_counters(fx->batch, &c);
    return c;
}

/* What a reader asks: MGET of its own key and a shared one; the same
 * with a shape its reply does not fit (refused); or BLPOP of a key that
 * stays empty for SLOW_MS (a reply that takes that long to come, while
 * the server answers everyone else at once). */
enum { R_MGET, R_REFUSED, R_SLOW };

/* One reader. */
typedef struct reader {
    fixture *fx;
    int id;
    int kind; /* R_* */
    pthread_t th;
    int rc;
    char value[64]; /* its key's value, "" when nil or failed */
    char why[256];  /* its error detail */
    uint64_t took_ms;
} reader;

static void *read_one(void *arg)
{
    reader *r = arg;
    char key[32], secs[16];
    const char *argv[3] = {"MGET", key, "batch:shared"};
    size_t lens[3] = {4, 0, 12};
    rpool_shape shape = rpool_array(&r->fx->pool, 2);
    redisReply *reply = NULL;
    uint64_t t0 = now_ms();

    lens[1] = (size_t)snprintf(key, sizeof key, "batch:k%d", r->id);
    if (r->kind == R_REFUSED)
        shape.bulk = 2; /* "value-N" is longer */
    if (r->kind == R_SLOW) {
        argv[0] = "BLPOP";
        lens[0] = 5;
        argv[2] = secs;
        lens[2] = (size_t)snprintf(secs, sizeof secs, "%.3f", SLOW_MS / 1e3);
        snprintf(key, sizeof key, "batch:empty");
        lens[1] = strlen(key);
    }
    detail[0] = '\0';
    r->rc = rbatch_read(r->fx->batch, 3, argv, lens, &shape, "MGET", &reply);
    r->took_ms = now_ms() - t0;
    snprintf(r->why, sizeof r->why, "%s", detail);
    r->value[0] = '\0';
    if (r->rc == HERMES_BE_OK) {
        if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
            reply->element[0]->type == REDIS_REPLY_STRING)
            snprintf(r->value, sizeof r->value, "%s", reply->element[0]->str);
        freeReplyObject(reply);
    }
    return NULL;
}

/* The value every reader must see for its key. */
static void expected(int id, char *buf, size_t cap)
{
    snprintf(buf, cap, "value-%d", id);
}

static void fill_keys(void)
{
    for (int i = 0; i < THREADS + 1; i++) {
        char v[32];
        redisReply *r;

        expected(i, v, sizeof v);
        r = redisCommand(admin, "SET batch:k%d %s", i, v);
        assert_non_null(r);
        freeReplyObject(r);
    }
}

static void start_readers(fixture *fx, reader *rs, int n)
{
    for (int i = 0; i < n; i++) {
        rs[i] = (reader){.fx = fx, .id = i};
        assert_int_equal(pthread_create(&rs[i].th, NULL, read_one, &rs[i]), 0);
    }
}

static void wait_flights(fixture *fx, uint64_t n);
static void wait_queued(fixture *fx, uint64_t q);

/* Readers of kinds[i] in a known order: the first RBATCH_FLIGHTS fly
 * (each in a write of its own), the others queue in turn. */
static void start_in_order(fixture *fx, reader *rs, const int *kinds)
{
    uint64_t f0 = counts(fx).flights;

    for (int i = 0; i < THREADS; i++) {
        rs[i] = (reader){.fx = fx, .id = i, .kind = kinds[i]};
        assert_int_equal(pthread_create(&rs[i].th, NULL, read_one, &rs[i]), 0);
        if (i < (int)RBATCH_FLIGHTS)
            wait_flights(fx, f0 + (uint64_t)i + 1);
        else
            wait_queued(fx, (uint64_t)(i + 1) - RBATCH_FLIGHTS);
    }
}

static void join_readers(reader *rs, int n)
{
    for (int i = 0; i < n; i++)
        pthread_join(rs[i].th, NULL);
}

/* Wait (bounded) until q callers of fx are queued: the others are sent. */
static void wait_queued(fixture *fx, uint64_t q)
{
    uint64_t t0 = now_ms();

    while (counts(fx).queued != q) {
        if (now_ms() - t0 > WAIT_MS)
            fail_msg("%llu callers queued after %d ms, expected %llu",
                     (unsigned long long)counts(fx).queued, WAIT_MS,
                     (unsigned long long)q);
        sleep_ms(1);
    }
}

/* Wait (bounded) until fx has sent n writes. */
static void wait_flights(fixture *fx, uint64_t n)
{
    uint64_t t0 = now_ms();

    while (counts(fx).flights < n) {
        if (now_ms() - t0 > WAIT_MS)
            fail_msg("%llu writes after %d ms, expected %llu",
                     (unsigned long long)counts(fx).flights, WAIT_MS,
                     (unsigned long long)n);
        sleep_ms(1);
    }
}

/* One read through fx by this thread: its status. */
static int read_now(fixture *fx, int id)
{
    reader r = {.fx = fx, .id = id};

    read_one(&r);
    return r.rc;
}

static long long mget_calls(void)
{
    redisReply *r = redisCommand(admin, "INFO commandstats");
    long long n;

    assert_non_null(r);
    n = redis_info_calls(r->str, "mget");
    freeReplyObject(r);
    return n;
}

static void stop_server(void)
{
    assert_int_equal(kill(server.pid, SIGSTOP), 0);
}

static void resume_server(void)
{
    assert_int_equal(kill(server.pid, SIGCONT), 0);
}

/* Every reader failed within command_timeout_ms (HUNG_TIMEOUT_MS) of its
 * call, with a reason, and none is left queued; then, once the server
 * answers again, a read succeeds (after the pool's backoff, if any). */
static void all_failed_in_time(fixture *fx, const reader *rs)
{
    uint64_t t0;

    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(rs[i].rc, HERMES_BE_IO);
        if (rs[i].took_ms > HUNG_TIMEOUT_MS + SLACK_MS)
            fail_msg("reader %d waited %llu ms (command_timeout_ms %d)", i,
                     (unsigned long long)rs[i].took_ms, HUNG_TIMEOUT_MS);
        if (!rs[i].why[0])
            fail_msg("reader %d failed without its reason: '%s'", i, rs[i].why);
    }
    assert_int_equal(counts(fx).queued, 0);
    t0 = now_ms();
    while (read_now(fx, 0) != HERMES_BE_OK) {
        if (now_ms() - t0 > WAIT_MS)
            fail_msg("no read succeeded %d ms after the server resumed",
                     WAIT_MS);
        sleep_ms(10);
    }
}

/* --------------------------------------------------------------- tests */

/* 8 concurrent reads: 2 flights sent at once, the 6 callers queued behind
 * them go out in one write, and every caller gets its own reply. */
static void concurrent_reads_share_a_write(void **state)
{
    fixture fx;
    reader rs[THREADS];
    long sends0, mgets0;

    (void)state;
    fixture_open(&fx, 5000);
    fill_keys();
    assert_int_equal(read_now(&fx, THREADS), HERMES_BE_OK); /* connects */
    mgets0 = mget_calls();
    sends0 = atomic_load(&sends);
    stop_server();
    start_readers(&fx, rs, THREADS);
    wait_queued(&fx, QUEUED);
    assert_int_equal(atomic_load(&sends) - sends0, RBATCH_FLIGHTS);
    resume_server();
    join_readers(rs, THREADS);
    for (int i = 0; i < THREADS; i++) {
        char v[32];

        expected(i, v, sizeof v);
        assert_int_equal(rs[i].rc, HERMES_BE_OK);
        assert_string_equal(rs[i].value, v);
    }
    /* One more write than flights: the queue went out in one. */
    assert_int_equal(atomic_load(&sends) - sends0, RBATCH_FLIGHTS + 1);
    assert_int_equal(counts(&fx).shared, QUEUED);
    /* One MGET per read, as without batching. */
    assert_int_equal(mget_calls() - mgets0, THREADS);
    fixture_close(&fx);
}

/* A lone caller is sent at once: one write per read, nothing shared. */
static void a_lone_caller_is_sent_alone(void **state)
{
    fixture fx;
    long sends0;

    (void)state;
    fixture_open(&fx, 5000);
    fill_keys();
    sends0 = atomic_load(&sends);
    for (int i = 0; i < 10; i++)
        assert_int_equal(read_now(&fx, i % THREADS), HERMES_BE_OK);
    assert_int_equal(atomic_load(&sends) - sends0, 10);
    assert_int_equal(counts(&fx).shared, 0);
    assert_int_equal(counts(&fx).flights, 10);
    fixture_close(&fx);
}

/* The server hangs: every caller, flying or queued, fails within
 * command_timeout_ms of its own call, with a reason; reads work again
 * once it answers. */
static void a_hung_server_bounds_every_caller(void **state)
{
    fixture fx;
    reader rs[THREADS];

    (void)state;
    fixture_open_warm(&fx, HUNG_TIMEOUT_MS);
    stop_server();
    start_readers(&fx, rs, THREADS);
    wait_queued(&fx, QUEUED);
    join_readers(rs, THREADS);
    resume_server();
    /* The pool backs off, then a read probes the server and succeeds. */
    all_failed_in_time(&fx, rs);
    fixture_close(&fx);
}

/* Shut down (as a dropped connection) every socket of this process to the
 * server but the test's own. */
static int drop_plugin_connections(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int dropped = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        struct sockaddr_in peer;
        socklen_t len = sizeof peer;

        if (fd <= 2 || fd == admin->fd || fd == dirfd(d))
            continue;
        if (getpeername(fd, (struct sockaddr *)&peer, &len) != 0 ||
            peer.sin_family != AF_INET || ntohs(peer.sin_port) != server.port)
            continue;
        shutdown(fd, SHUT_RDWR);
        dropped++;
    }
    closedir(d);
    return dropped;
}

/* The flights' connections drop while 6 callers are queued: the 2 flying
 * callers fail, the queue goes out on a new connection and succeeds, and
 * so does the next read. */
static void a_dropped_connection_fails_its_flight_only(void **state)
{
    fixture fx;
    reader rs[THREADS];
    int failed = 0;

    (void)state;
    fixture_open_warm(&fx, 5000);
    stop_server();
    start_readers(&fx, rs, THREADS);
    wait_queued(&fx, QUEUED);
    assert_int_equal(drop_plugin_connections(), RBATCH_FLIGHTS);
    /* The queue is resent before the server answers anything. */
    wait_queued(&fx, 0);
    resume_server();
    join_readers(rs, THREADS);
    for (int i = 0; i < THREADS; i++) {
        char v[32];

        if (rs[i].rc != HERMES_BE_OK) {
            failed++;
            assert_int_equal(rs[i].rc, HERMES_BE_IO);
            assert_true(rs[i].why[0] != '\0');
            continue;
        }
        expected(i, v, sizeof v);
        assert_string_equal(rs[i].value, v);
    }
    assert_int_equal(failed, RBATCH_FLIGHTS);
    assert_int_equal(read_now(&fx, 0), HERMES_BE_OK);
    fixture_close(&fx);
}

/*
 * The flights' connections drop when the queued callers have used half of
 * command_timeout_ms, and the server does not answer: the queue's reader
 * must connect again, and the connect's handshake (SELECT, db = 1) gets no
 * answer.  Every caller still fails within command_timeout_ms of its call:
 * the reconnect is bounded by the queued callers' deadline, not by a
 * command_timeout_ms of its own.  (The half is time made to pass on
 * purpose: without it the reconnect's own timeout would end in time.)
 */
static void a_reconnect_for_the_queue_ends_by_its_deadline(void **state)
{
    fixture fx;
    reader rs[THREADS];
    rpool_conn *c[RBATCH_FLIGHTS];

    (void)state;
    fixture_open_db(&fx, HUNG_TIMEOUT_MS, 1);
    /* Idle connections for both flights: they send without connecting. */
    for (int i = 0; i < (int)RBATCH_FLIGHTS; i++)
        assert_int_equal(rpool_take(&fx.pool, &c[i]), HERMES_BE_OK);
    for (int i = 0; i < (int)RBATCH_FLIGHTS; i++)
        rpool_put(&fx.pool, c[i]);
    stop_server();
    start_readers(&fx, rs, THREADS);
    wait_queued(&fx, QUEUED);
    sleep_ms(HUNG_TIMEOUT_MS / 2);
    assert_int_equal(drop_plugin_connections(), RBATCH_FLIGHTS);
    join_readers(rs, THREADS);
    resume_server();
    all_failed_in_time(&fx, rs);
    fixture_close(&fx);
}

/* fork() while 6 callers are queued: the child's read does not join the
 * parent's queue or flights (it is sent at once, on a connection of its
 * own), and both processes get their replies once the server resumes. */
static void a_fork_child_reads_on_its_own(void **state)
{
    fixture fx;
    reader rs[THREADS];
    int status;
    pid_t kid;
    long sends0;

    (void)state;
    fixture_open_warm(&fx, 5000);
    sends0 = atomic_load(&sends);
    stop_server();
    start_readers(&fx, rs, THREADS);
    wait_queued(&fx, QUEUED);
    kid = fork();
    assert_true(kid >= 0);
    if (kid == 0) {
        reader r = {.fx = &fx, .id = THREADS};
        char v[32];

        alarm(30);
        if (counts(&fx).queued != 0)
            _exit(2);
        read_one(&r);
        expected(THREADS, v, sizeof v);
        _exit(r.rc == HERMES_BE_OK && strcmp(r.value, v) == 0 &&
                      atomic_load(&sends) - sends0 == RBATCH_FLIGHTS + 1
                  ? 0
                  : 1);
    }
    resume_server();
    assert_int_equal(cw_wait("redis_batch", kid, CW_TIMEOUT_MS, &status), 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    join_readers(rs, THREADS);
    for (int i = 0; i < THREADS; i++) {
        char v[32];

        expected(i, v, sizeof v);
        assert_int_equal(rs[i].rc, HERMES_BE_OK);
        assert_string_equal(rs[i].value, v);
    }
    fixture_close(&fx);
}

/*
 * A slow server: every flight's reply takes SLOW_MS (a BLPOP first in it
 * waits that long; the server answers the other connections at once),
 * more than half of command_timeout_ms.  The queued callers' flight is
 * sent when the first flight comes back, SLOW_MS after their calls, and
 * is answered SLOW_MS later: it is allowed command_timeout_ms from its
 * send, as a read sent alone is, so every caller gets its reply, within
 * twice command_timeout_ms of its call (queue, then flight).
 */
static void a_slow_server_answers_queued_reads(void **state)
{
    const int kinds[THREADS] = {R_SLOW, R_SLOW, R_SLOW, R_MGET,
                                R_MGET, R_MGET, R_MGET, R_MGET};
    fixture fx;
    reader rs[THREADS];

    (void)state;
    fixture_open_warm(&fx, HUNG_TIMEOUT_MS);
    start_in_order(&fx, rs, kinds);
    join_readers(rs, THREADS);
    for (int i = 0; i < THREADS; i++) {
        char v[32];

        if (rs[i].rc != HERMES_BE_OK)
            fail_msg("reader %d failed after %llu ms: %s", i,
                     (unsigned long long)rs[i].took_ms, rs[i].why);
        if (rs[i].took_ms > 2 * HUNG_TIMEOUT_MS + SLACK_MS)
            fail_msg("reader %d waited %llu ms (command_timeout_ms %d)", i,
                     (unsigned long long)rs[i].took_ms, HUNG_TIMEOUT_MS);
        if (kinds[i] != R_MGET)
            continue;
        expected(i, v, sizeof v);
        assert_string_equal(rs[i].value, v);
    }
    /* The queue went out in one write, after the two flights'. */
    assert_int_equal(counts(&fx).shared, QUEUED);
    fixture_close(&fx);
}

/*
 * A queued flight whose second reply is refused (too long for its
 * caller's shape): the first caller gets its reply, the second fails with
 * the refusal as its reason, and the ones after it, whose replies were
 * never read, fail saying so, not with the other caller's reason.
 */
static void a_refused_reply_is_its_callers_reason(void **state)
{
    const int kinds[THREADS] = {R_MGET, R_MGET, R_MGET, R_REFUSED,
                                R_MGET, R_MGET, R_MGET, R_MGET};
    fixture fx;
    reader rs[THREADS];
    char v[32];

    (void)state;
    fixture_open_warm(&fx, 5000);
    stop_server();
    start_in_order(&fx, rs, kinds);
    resume_server();
    join_readers(rs, THREADS);
    for (int i = 0; i < 3; i++) {
        expected(i, v, sizeof v);
        assert_int_equal(rs[i].rc, HERMES_BE_OK);
        assert_string_equal(rs[i].value, v);
    }
    assert_int_equal(rs[3].rc, HERMES_BE_PROTOCOL);
    assert_true(rs[3].why[0] != '\0');
    for (int i = 4; i < THREADS; i++) {
        assert_int_not_equal(rs[i].rc, HERMES_BE_OK);
        if (strcmp(rs[i].why, rs[3].why) == 0 ||
            !strstr(rs[i].why, "another read of its batch"))
            fail_msg("reader %d's reason: '%s' (the refused one's: '%s')", i,
                     rs[i].why, rs[3].why);
        assert_non_null(strstr(rs[i].why, rs[3].why));
    }
    fixture_close(&fx);
}

/* A write that fails (the connection was dropped while idle) is no write
 * in the counters: batch_writes counts the writes that sent reads. */
static void a_failed_write_is_not_counted(void **state)
{
    fixture fx;
    rbatch_counts c0;

    (void)state;
    fixture_open_warm(&fx, 5000);
    assert_true(drop_plugin_connections() >= 1); /* its idle one */
    c0 = counts(&fx);
    assert_int_equal(read_now(&fx, 0), HERMES_BE_IO);
    assert_int_equal(counts(&fx).flights, c0.flights);
    assert_int_equal(counts(&fx).reads, c0.reads + 1);
    assert_int_equal(read_now(&fx, 0), HERMES_BE_OK);
    assert_int_equal(counts(&fx).flights, c0.flights + 1);
    fixture_close(&fx);
}

/* The plugin: batch_reads takes yes or no, and its counters are in stats
 * only when it is on. */
typedef struct seen {
    int batch_reads;
    long long reads;
} seen;

static void stat_cb(void *arg, const char *name, const char *value)
{
    seen *s = arg;

    if (strcmp(name, "batch_reads") == 0) {
        s->batch_reads = 1;
        s->reads = atoll(value);
    }
}

static void ignore_value(void *arg, size_t i, const void *v, size_t len)
{
    (void)arg;
    (void)i;
    (void)v;
    (void)len;
}

static void *open_plugin(const char *batch_reads, int *rc, char *msg)
{
    const hermes_backend *be = hermes_backend_entry();
    char port[16];
    hermes_kv kv[2] = {{"port", port, 1}, {"batch_reads", batch_reads, 2}};
    hermes_open_error err;
    void *st = NULL;

    snprintf(port, sizeof port, "%d", server.port);
    *rc = be->open(&host, kv, batch_reads ? 2 : 1, &st, &err);
    snprintf(msg, 256, "%s", err.msg);
    return st;
}

static void the_config_key_turns_it_on_and_off(void **state)
{
    const hermes_backend *be = hermes_backend_entry();
    const char *modes[] = {NULL, "yes", "no"};
    char msg[256];
    int rc;

    (void)state;
    assert_null(open_plugin("maybe", &rc, msg));
    assert_int_equal(rc, HERMES_BE_INVALID);
    assert_non_null(strstr(msg, "batch_reads"));
    for (size_t m = 0; m < 3; m++) {
        void *st = open_plugin(modes[m], &rc, msg);
        hermes_bytes k = {"batch:k0", 8};
        seen s = {0, 0};

        assert_int_equal(rc, HERMES_BE_OK);
        assert_int_equal(be->get(st, &k, 1, ignore_value, NULL), HERMES_BE_OK);
        assert_int_equal(be->stats(st, stat_cb, &s), HERMES_BE_OK);
        assert_int_equal(s.batch_reads, m < 2);
        assert_int_equal(s.reads, m < 2 ? 1 : 0);
        be->close(st);
    }
}

static int setup(void **state)
{
    (void)state;
    if (redis_server_start(&server) != 0)
        return -1;
    admin = redisConnect("127.0.0.1", server.port);
    return admin && !admin->err ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    if (admin)
        redisFree(admin);
    redis_server_stop(&server);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(concurrent_reads_share_a_write),
        cmocka_unit_test(a_lone_caller_is_sent_alone),
        cmocka_unit_test(a_hung_server_bounds_every_caller),
        cmocka_unit_test(a_dropped_connection_fails_its_flight_only),
        cmocka_unit_test(a_reconnect_for_the_queue_ends_by_its_deadline),
        cmocka_unit_test(a_fork_child_reads_on_its_own),
        cmocka_unit_test(a_slow_server_answers_queued_reads),
        cmocka_unit_test(a_refused_reply_is_its_callers_reason),
        cmocka_unit_test(a_failed_write_is_not_counted),
        cmocka_unit_test(the_config_key_turns_it_on_and_off),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
