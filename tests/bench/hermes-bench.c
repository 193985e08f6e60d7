/*
 * hermes-bench - what a cached call costs compared with the bare store it
 * sits on, measured in the same run at the same thread count
 * (DESIGN.md "Measuring").
 *
 * Workloads: hit0, hit2, hit8 (a hit on an entry with 0, 2 or 8 tags) and
 * miss (every call a new argument: miss, lock, compute, store, unlock).
 * Every call goes through hermes_call() with the arguments encoded and
 * the key built inside the timed loop, because a real hit pays for both.
 * The baseline is one get of one key of the same size as a hit2 record:
 * for dict straight through the plugin ABI (desc->get on a state of our
 * own, copying the value into a malloc'ed buffer as the core does), for
 * redis a bare hiredis GET over one connection per thread (on a Redis
 * Cluster, to its first seed node, of keys that node serves), for
 * memcached a bare libmemcached memcached_get with one client (one
 * connection per server) per thread.  Each baseline is one struct
 * baseline_ops; on the network stores the targets are ratios of
 * alternating rounds (interleaved()), printed as their median and range.
 *
 * Each pass of a workload starts with a warm-up.  Throughput passes (the
 * best of -r counts) read no clock per operation: ops/s and the ratio to
 * the baseline come from them, because a clock read costs tens of ns, as
 * much as a dict lookup.  One latency pass then times every operation, or
 * one in N when there are many, for the percentiles.  Not run by `make
 * check`: timings never go in tests.
 *
 * Linked with libhermes-core.la for the dict descriptor, the config
 * parser and the argument hash used to shape baseline keys.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <libmemcached/memcached.h>

#include "dict.h"
#include "handle.h"
#include "host.h"
#include "keys.h"
#include "keyspace.h"
#include "record.h"
#include "stats.h"
#include "storm.h"
#include "wake.h"

#define NKEYS 1024 /* distinct arguments of a hit workload */
#define MAX_THREADS 256
#define MAX_THREAD_COUNTS 16
#define MAX_VALUE (16u << 20)
#define MAX_LAT_SAMPLES 1000000 /* per thread; beyond, sample 1 in N */
#define DICT_DEFAULT_OPS 200000
#define OTHER_DEFAULT_OPS 20000
#define DICT_DEFAULT_REPS 5
#define OTHER_DEFAULT_REPS 3

/* NULL-terminated, so that the whole list can go to hermes_clean(). */
static const char *const tag_names[9] = {
    "bench-t0", "bench-t1", "bench-t2", "bench-t3", "bench-t4",
    "bench-t5", "bench-t6", "bench-t7", NULL,
};

typedef enum kind { K_BASE, K_RAW2, K_HIT, K_MISS } kind;

typedef struct workload {
    const char *name;
    kind kind;
    size_t ntags;
    hermes_fn *fn;
} workload;

/* One line of results. */
typedef struct result {
    bool ran;
    unsigned threads;
    uint64_t ops, errors;
    double ops_per_s, ns_per_op; /* ns_per_op: one thread's cost of an op */
    uint64_t p50, p90, p99;
} result;

typedef struct redis_addr {
    const char *host, *socket, *password;
    int port, db;
    bool cluster; /* cluster = ...: the baseline is its first seed */
    char seed_host[256];
} redis_addr;

typedef struct bench bench;

/*
 * A raw client of the store the backend uses: the baseline.  open()
 * stores NKEYS keys of base_size bytes (an entry's TTL) and close()
 * removes them; connect() makes one thread's client (NULL: failed, said
 * on stderr) and get() reads key k through it, returning 1 when it
 * failed or the value had the wrong size.
 */
typedef struct baseline_ops {
    const char *name; /* the backend it measures */
    const char *what; /* for the header line */
    int (*open)(bench *b);
    void (*close)(bench *b);
    void *(*connect)(bench *b);
    void (*disconnect)(void *conn);
    int (*get)(bench *b, void *conn, uint64_t k);
    /* What a hit2 asks of the store, raw: key k and the two tag keys in
     * one batch (NULL: not measured).  Where hit2 misses its target, the
     * ratio of hit2 to this says how much is ours and how much is the
     * batch's own cost (more keys, several servers). */
    int (*get2)(bench *b, void *conn, uint64_t k);
    /* Targets (issues): dict compares best passes' cost per op (hit2 at
     * most cost_max x), the network stores alternating rounds: p50 at most
     * lat_max x at 1 thread, throughput at least tput_min x at 8 threads
     * and tput32_min x at 32 (0: none). */
    double cost_max, lat_max, tput_min, tput32_min;
} baseline_ops;

struct bench {
    hermes *h;
    const char *backend; /* "dict", "redis" or another name */
    size_t value_size;   /* payload of every cached value */
    size_t base_size;    /* baseline value: a hit2 record's size */
    uint32_t ttl_s;
    bool counters;             /* -v: print each workload's counters */
    uint64_t run_id;           /* makes miss arguments unique across runs */
    unsigned char *value;      /* value_size bytes of payload */
    unsigned char *base_value; /* base_size bytes for the baseline key */
    /* dict baseline: a state of our own behind the plugin ABI */
    const hermes_backend *desc;
    void *state;
    hermes_host host;
    hermes_bytes base_keys[NKEYS];
    /* the network stores' baseline keys, NUL-terminated */
    char store_keys[NKEYS][192];
    char tag_keys[2][192]; /* the keys of hit2's tags, for get2 */
    redis_addr redis;
    memcached_st *mc; /* a template the threads' clients clone */
    const baseline_ops *base;
};

typedef struct run run;

typedef struct worker {
    run *r;
    unsigned id;
    uint64_t ops, warmup, offset;
    uint64_t sample_every; /* 0: throughput pass, no per-op clock */
    uint64_t *lat;
    size_t nlat;
    uint64_t start_ns, end_ns, errors;
    void *conn; /* the baseline's client */
    pthread_t th;
} worker;

struct run {
    bench *b;
    const workload *w;
    int phase; /* folded into miss arguments: each pass its own */
    pthread_barrier_t go;
};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------- host for dict */

/* The baseline's dict gets the core's own clock and randomness (host.c),
 * so that a change there moves the baseline and the workloads alike: the
 * dict reads the clock on every hit of an entry with a TTL. */

static void host_log(void *ctx, int level, const char *msg)
{
    fprintf(stderr, "hermes-bench: dict baseline: %s\n", msg);
}

static uint64_t host_now_ms(void *ctx)
{
    return hm_now_ms();
}

static uint64_t host_monotonic_ns(void *ctx)
{
    return hm_monotonic_ns();
}

static int host_random(void *ctx, void *buf, size_t len)
{
    return hm_random(buf, len);
}

/* ------------------------------------------------------------ the ops */

typedef struct copy {
    void *p;
    size_t len;
} copy;

/* What the core's read callback does with a value: an owned copy. */
static void copy_value(void *arg, size_t index, const void *value, size_t len)
{
    copy *c = arg;
    free(c->p);
    c->p = malloc(len + 1);
    if (c->p) {
        memcpy(c->p, value, len);
        ((char *)c->p)[len] = '\0';
        c->len = len;
    }
}

static int compute_value(void *arg, hermes_result *res)
{
    const bench *b = arg;
    return hermes_result_set(res, b->value, b->value_size) == HERMES_OK ? 0
                                                                        : -1;
}

/* One operation; returns 1 when it failed. */
static int do_op(worker *wk, uint64_t i)
{
    run *r = wk->r;
    bench *b = r->b;
    uint64_t k = (wk->offset + i) & (NKEYS - 1);

    switch (r->w->kind) {
    case K_BASE:
        return b->base->get(b, wk->conn, k);
    case K_RAW2:
        return b->base->get2(b, wk->conn, k);
    case K_HIT: {
        hermes_args a = HERMES_ARGS_INIT;
        void *v;
        size_t len;
        hermes_args_uint(&a, k);
        hermes_rc rc =
            hermes_call(r->w->fn, hermes_args_data(&a), hermes_args_len(&a),
                        compute_value, b, &v, &len);
        hermes_free(v);
        hermes_args_free(&a);
        return rc != HERMES_OK || len != b->value_size;
    }
    case K_MISS: {
        hermes_args a = HERMES_ARGS_INIT;
        void *v;
        size_t len;
        hermes_args_uint(&a, b->run_id);
        hermes_args_int(&a, r->phase);
        hermes_args_uint(&a, wk->id);
        hermes_args_uint(&a, i);
        hermes_rc rc =
            hermes_call(r->w->fn, hermes_args_data(&a), hermes_args_len(&a),
                        compute_value, b, &v, &len);
        hermes_free(v);
        hermes_args_free(&a);
        return rc != HERMES_OK || len != b->value_size;
    }
    }
    return 1;
}

/* Unmeasured ops before each pass: a tenth of it, at least 100. */
static uint64_t warmup_ops(uint64_t per_thread)
{
    return per_thread / 10 < 100 ? 100 : per_thread / 10;
}

static void *worker_main(void *arg)
{
    worker *wk = arg;
    run *r = wk->r;
    uint64_t e = 0;

    /* Warm-up indices follow the measured ones, so that a miss workload
     * never measures an argument the warm-up already stored. */
    for (uint64_t i = 0; i < wk->warmup; i++)
        do_op(wk, wk->ops + i);
    pthread_barrier_wait(&r->go);
    wk->start_ns = mono_ns();
    if (wk->sample_every == 0) {
        for (uint64_t i = 0; i < wk->ops; i++)
            e += (uint64_t)do_op(wk, i);
    } else {
        for (uint64_t i = 0; i < wk->ops; i++) {
            if (i % wk->sample_every == 0) {
                uint64_t t0 = mono_ns();
                e += (uint64_t)do_op(wk, i);
                wk->lat[wk->nlat++] = mono_ns() - t0;
            } else {
                e += (uint64_t)do_op(wk, i);
            }
        }
    }
    wk->end_ns = mono_ns();
    wk->errors = e;
    return NULL;
}

/* --------------------------------------------------------------- runs */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t percentile(const uint64_t *v, size_t n, unsigned pct)
{
    if (n == 0)
        return 0;
    size_t rank = (n * pct + 99) / 100; /* nearest rank, 1-based */
    return v[rank ? rank - 1 : 0];
}

static redisContext *redis_connect(const redis_addr *a)
{
    struct timeval tv = {5, 0};
    redisContext *c = a->socket ? redisConnectUnixWithTimeout(a->socket, tv)
                                : redisConnectWithTimeout(a->host, a->port, tv);
    if (!c || c->err) {
        fprintf(stderr, "hermes-bench: redis %s: %s\n",
                a->socket ? a->socket : a->host,
                c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    redisReply *rep = NULL;
    if (a->password)
        rep = redisCommand(c, "AUTH %s", a->password);
    if (!a->password || (rep && rep->type != REDIS_REPLY_ERROR)) {
        if (rep)
            freeReplyObject(rep);
        rep = redisCommand(c, "SELECT %d", a->db);
    }
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "hermes-bench: redis: %s\n",
                rep ? rep->str : c->errstr);
        if (rep)
            freeReplyObject(rep);
        redisFree(c);
        return NULL;
    }
    freeReplyObject(rep);
    return c;
}

/*
 * Runs one pass of w on n threads: ops in total, split evenly.  With
 * latency set, every op (or one in N) is timed into per-thread arrays.
 */
static int run_pass(bench *b, const workload *w, unsigned n, uint64_t ops,
                    int phase, bool latency, result *res)
{
    worker *wk = calloc(n, sizeof *wk);
    run r = {.b = b, .w = w, .phase = phase};
    uint64_t per = ops / n ? ops / n : 1;
    int rc = -1;
    unsigned started = 0;

    if (!wk)
        return -1;
    pthread_barrier_init(&r.go, NULL, n);
    for (unsigned t = 0; t < n; t++) {
        wk[t].r = &r;
        wk[t].id = t;
        wk[t].ops = per;
        wk[t].warmup = warmup_ops(per);
        /* Threads start at different keys so they do not march in step. */
        wk[t].offset = (uint64_t)t * NKEYS / n;
        if (latency) {
            wk[t].sample_every =
                per > MAX_LAT_SAMPLES
                    ? (per + MAX_LAT_SAMPLES - 1) / MAX_LAT_SAMPLES
                    : 1;
            wk[t].lat =
                malloc((per / wk[t].sample_every + 1) * sizeof(uint64_t));
            if (!wk[t].lat)
                goto out;
        }
        if ((w->kind == K_BASE || w->kind == K_RAW2) && b->base->connect &&
            !(wk[t].conn = b->base->connect(b)))
            goto out;
    }
    for (; started < n; started++)
        if (pthread_create(&wk[started].th, NULL, worker_main, &wk[started]) !=
            0)
            break;
    if (started < n) {
        /* The barrier waits for n; it can never open.  Give up loudly. */
        fprintf(stderr, "hermes-bench: cannot start %u threads\n", n);
        exit(EXIT_FAILURE);
    }
    for (unsigned t = 0; t < n; t++)
        pthread_join(wk[t].th, NULL);

    uint64_t first = UINT64_MAX, last = 0, errors = 0;
    size_t nlat = 0;
    for (unsigned t = 0; t < n; t++) {
        first = wk[t].start_ns < first ? wk[t].start_ns : first;
        last = wk[t].end_ns > last ? wk[t].end_ns : last;
        errors += wk[t].errors;
        nlat += wk[t].nlat;
    }
    double secs = (double)(last - first) / 1e9;
    res->threads = n;
    res->errors = errors;
    res->ops = per * n;
    if (!latency) {
        res->ops_per_s = secs > 0 ? (double)res->ops / secs : 0;
        res->ns_per_op = res->ops_per_s > 0 ? 1e9 * n / res->ops_per_s : 0;
    } else {
        uint64_t *all = malloc((nlat ? nlat : 1) * sizeof *all);
        if (!all)
            goto out;
        size_t o = 0;
        for (unsigned t = 0; t < n; t++) {
            memcpy(all + o, wk[t].lat, wk[t].nlat * sizeof *all);
            o += wk[t].nlat;
        }
        qsort(all, nlat, sizeof *all, cmp_u64);
        res->p50 = percentile(all, nlat, 50);
        res->p90 = percentile(all, nlat, 90);
        res->p99 = percentile(all, nlat, 99);
        free(all);
    }
    rc = 0;
out:
    for (unsigned t = 0; t < n; t++) {
        free(wk[t].lat);
        if (wk[t].conn)
            b->base->disconnect(wk[t].conn);
    }
    pthread_barrier_destroy(&r.go);
    free(wk);
    return rc;
}

/* Stored values a miss workload left behind: in-process ones go with a
 * flush, on a shared server only our own entries are deleted. */
static void miss_cleanup(bench *b, const workload *w, unsigned n, uint64_t ops,
                         int phase)
{
    uint64_t per = ops / n ? ops / n : 1;
    uint64_t warm = warmup_ops(per);

    if (!(hm_handle_backend(b->h)->caps & HERMES_CAP_SHARED)) {
        hermes_flush(b->h);
        return;
    }
    for (unsigned t = 0; t < n; t++) {
        for (uint64_t i = 0; i < per + warm; i++) {
            hermes_args a = HERMES_ARGS_INIT;
            hermes_args_uint(&a, b->run_id);
            hermes_args_int(&a, phase);
            hermes_args_uint(&a, t);
            hermes_args_uint(&a, i);
            hermes_invalidate(w->fn, hermes_args_data(&a), hermes_args_len(&a),
                              NULL);
            hermes_args_free(&a);
        }
    }
}

/* Makes every hit argument present before the warm-up. */
static void populate(bench *b, const workload *w)
{
    for (uint64_t k = 0; k < NKEYS; k++) {
        hermes_args a = HERMES_ARGS_INIT;
        void *v;
        size_t len;
        hermes_args_uint(&a, k);
        hermes_call(w->fn, hermes_args_data(&a), hermes_args_len(&a),
                    compute_value, b, &v, &len);
        hermes_free(v);
        hermes_args_free(&a);
    }
}

/*
 * The best of reps throughput passes (the one least disturbed by other
 * processes: a dict pass lasts milliseconds, one preemption skews it),
 * then one latency pass for the percentiles.
 */
static int run_workload(bench *b, const workload *w, unsigned n, uint64_t ops,
                        unsigned reps, bool latency, int *phase, result *res)
{
    hermes_stats s0, s1;
    result pass;
    uint64_t errors = 0;

    memset(res, 0, sizeof *res);
    if (w->kind == K_HIT)
        populate(b, w);
    hermes_stats_get(b->h, &s0, sizeof s0);
    for (unsigned i = 0; i < reps; i++) {
        int p = (*phase)++;
        memset(&pass, 0, sizeof pass);
        if (run_pass(b, w, n, ops, p, false, &pass) != 0)
            return -1;
        if (w->kind == K_MISS)
            miss_cleanup(b, w, n, ops, p);
        errors += pass.errors;
        if (pass.ops_per_s > res->ops_per_s)
            *res = pass;
    }
    int p = (*phase)++;
    memset(&pass, 0, sizeof pass);
    if (latency && run_pass(b, w, n, ops, p, true, &pass) != 0)
        return -1;
    if (latency && w->kind == K_MISS)
        miss_cleanup(b, w, n, ops, p);
    hermes_stats_get(b->h, &s1, sizeof s1);
    res->p50 = pass.p50;
    res->p90 = pass.p90;
    res->p99 = pass.p99;
    res->errors = errors + pass.errors;
    res->ran = true;
    if (s1.backend_errors != s0.backend_errors)
        fprintf(stderr,
                "hermes-bench: warning: %s: %" PRIu64 " backend errors "
                "(calls that failed open are not cache hits)\n",
                w->name, s1.backend_errors - s0.backend_errors);
    if (b->counters && w->fn) {
        printf("# %s at %u thread%s counted:\n", w->name, n, n == 1 ? "" : "s");
        hm_stats_print(stdout, "#   ", &s1, &s0);
    }
    if (w->kind == K_HIT && s1.misses != s0.misses)
        fprintf(stderr,
                "hermes-bench: warning: %s had %" PRIu64 " misses: not a pure "
                "hit workload (store too small? evictions?)\n",
                w->name, s1.misses - s0.misses);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/*
 * A workload against another measured in alternating passes, the median
 * over rounds: on loopback a round trip's time drifts by a factor of two
 * within seconds, and on a shared machine a dict pass's by as much, so two
 * measurements taken minutes apart compare the machine's moods, not the
 * code.  R_P50 is the ratio of medians (p50 of w over p50 of base),
 * R_THROUGHPUT of throughputs (w / base), R_NS_EACH the difference in one
 * thread's cost per op divided by per (the cost of each extra tag).
 */
#define RATIO_ROUNDS 7
typedef enum ratio_kind { R_P50, R_THROUGHPUT, R_NS_EACH } ratio_kind;
static int interleaved(bench *b, const workload *base, const workload *w,
                       unsigned n, uint64_t ops, ratio_kind rk, double per,
                       int *phase, double *median)
{
    double r[RATIO_ROUNDS], vw[RATIO_ROUNDS], vb[RATIO_ROUNDS];
    bool latency = rk == R_P50;
    for (int i = 0; i < RATIO_ROUNDS; i++) {
        result rb, rw;
        memset(&rb, 0, sizeof rb);
        memset(&rw, 0, sizeof rw);
        /* ABAB... then BABA...: neither side always runs first. */
        const workload *first = i % 2 ? w : base, *second = i % 2 ? base : w;
        result *r1 = i % 2 ? &rw : &rb, *r2 = i % 2 ? &rb : &rw;
        if (run_pass(b, first, n, ops, (*phase)++, latency, r1) != 0 ||
            run_pass(b, second, n, ops, (*phase)++, latency, r2) != 0)
            return -1;
        vw[i] = latency ? (double)rw.p50 : rw.ops_per_s;
        vb[i] = latency ? (double)rb.p50 : rb.ops_per_s;
        if (rk == R_NS_EACH)
            r[i] = (rw.ns_per_op - rb.ns_per_op) / per;
        else
            r[i] = vb[i] > 0 ? vw[i] / vb[i] : 0;
    }
    qsort(r, RATIO_ROUNDS, sizeof *r, cmp_double);
    qsort(vw, RATIO_ROUNDS, sizeof *vw, cmp_double);
    qsort(vb, RATIO_ROUNDS, sizeof *vb, cmp_double);
    printf("# %s against %s, %s, %u thread%s, %d alternating rounds sorted:",
           w->name, base->name,
           rk == R_P50          ? "p50 ratio"
           : rk == R_THROUGHPUT ? "throughput ratio"
                                : "ns per extra tag",
           n, n == 1 ? "" : "s", RATIO_ROUNDS);
    for (int i = 0; i < RATIO_ROUNDS; i++)
        printf(" %.2f", r[i]);
    printf("\n# median %.2f (range %.2f-%.2f)", r[RATIO_ROUNDS / 2], r[0],
           r[RATIO_ROUNDS - 1]);
    if (rk != R_NS_EACH)
        printf("; %s median %.0f %s (%.0f-%.0f), %s %.0f (%.0f-%.0f)", w->name,
               vw[RATIO_ROUNDS / 2], latency ? "ns" : "ops/s", vw[0],
               vw[RATIO_ROUNDS - 1], base->name, vb[RATIO_ROUNDS / 2], vb[0],
               vb[RATIO_ROUNDS - 1]);
    printf("\n");
    *median = r[RATIO_ROUNDS / 2];
    return 0;
}

static void print_result(const char *name, const result *r, const result *base)
{
    printf("%-8s %3u thr %9" PRIu64 " ops %11.0f ops/s  p50 %7" PRIu64
           "  p90 %7" PRIu64 "  p99 %7" PRIu64 " ns",
           name, r->threads, r->ops, r->ops_per_s, r->p50, r->p90, r->p99);
    if (base && base->ran && base->ns_per_op > 0)
        printf("  x%.2f of baseline", r->ns_per_op / base->ns_per_op);
    else
        printf("  (no baseline)");
    if (r->errors)
        printf("  ERRORS %" PRIu64, r->errors);
    putchar('\n');
}

/* ----------------------------------------------------------- baselines */

/* The record a hit2 entry holds, byte for byte in size (record.h). */
static size_t hit2_record_size(size_t value_size)
{
    /* Argument-hashed keys hold the function's name: none in the record. */
    return hm_record_size(0, 2, value_size);
}

static int dict_baseline_open(bench *b)
{
    const hm_section *sec = hm_config_section(hm_handle_config(b->h), "dict");
    hermes_open_error oe;

    b->desc = hm_dict_backend();
    b->host = (hermes_host){
        .struct_size = sizeof b->host,
        .log = host_log,
        .now_ms = host_now_ms,
        .monotonic_ns = host_monotonic_ns,
        .random = host_random,
        .config_source = hm_handle_config(b->h)->source,
    };
    memset(&oe, 0, sizeof oe);
    if (b->desc->open(&b->host, sec ? sec->kv : NULL, sec ? sec->n : 0,
                      &b->state, &oe) != HERMES_BE_OK) {
        fprintf(stderr, "hermes-bench: dict baseline: %s\n", oe.msg);
        return -1;
    }
    /* Keys shaped like entry keys: "<prefix>:entry:<name>:<22 chars>". */
    for (uint64_t k = 0; k < NKEYS; k++) {
        char hash[HM_HASH_B64_LEN];
        hm_hash128_b64(&k, sizeof k, hash);
        size_t len = strlen(hm_handle_entry_prefix(b->h)) +
                     sizeof "bench.base:" + HM_HASH_B64_LEN;
        char *key = malloc(len);
        if (!key)
            return -1;
        snprintf(key, len, "%sbench.base:%.*s", hm_handle_entry_prefix(b->h),
                 HM_HASH_B64_LEN, hash);
        b->base_keys[k] = (hermes_bytes){key, strlen(key)};
        /* Same TTL as an entry (clamped as the core does): the store then
         * reads its clock on a hit in both cases. */
        uint64_t ttl_ms = (uint64_t)b->ttl_s * 1000u;
        hermes_item it = {.key = b->base_keys[k],
                          .value = {b->base_value, b->base_size},
                          .ttl_ms = ttl_ms > UINT32_MAX ? UINT32_MAX
                                                        : (uint32_t)ttl_ms};
        if (b->desc->set(b->state, &it, 1, NULL, NULL) != HERMES_BE_OK) {
            fprintf(stderr, "hermes-bench: dict baseline: set failed\n");
            return -1;
        }
    }
    return 0;
}

static void dict_baseline_close(bench *b)
{
    for (size_t k = 0; k < NKEYS; k++)
        free((void *)b->base_keys[k].data);
    if (b->state)
        b->desc->close(b->state);
}

static int dict_baseline_get(bench *b, void *conn, uint64_t k)
{
    copy c = {NULL, 0};
    int st = b->desc->get(b->state, &b->base_keys[k], 1, copy_value, &c);
    int bad = st != HERMES_BE_OK || !c.p || c.len != b->base_size;
    (void)conn;
    free(c.p);
    return bad;
}

/* The network stores' baseline keys: "<prefix>bench.base:<k>". */
static int store_keys_init(bench *b)
{
    for (unsigned k = 0; k < NKEYS; k++) {
        int len = snprintf(b->store_keys[k], sizeof b->store_keys[k],
                           "%sbench.base:%u", hm_handle_entry_prefix(b->h), k);
        if (len < 0 || (size_t)len >= sizeof b->store_keys[k]) {
            fprintf(stderr, "hermes-bench: baseline: prefix too long\n");
            return -1;
        }
    }
    for (int t = 0; t < 2; t++) {
        hm_buf kb;
        hm_buf_init(&kb);
        hm_tag_key(b->h, tag_names[t], &kb);
        snprintf(b->tag_keys[t], sizeof b->tag_keys[t], "%.*s", (int)kb.len,
                 kb.data);
        hm_buf_free(&kb);
    }
    return 0;
}

/* The server of the config's [redis] section, for bare hiredis clients. */
static void redis_addr_of(bench *b)
{
    const hm_section *sec = hm_config_section(hm_handle_config(b->h), "redis");

    b->redis = (redis_addr){.host = "127.0.0.1", .port = 6379};
    for (size_t i = 0; sec && i < sec->n; i++) {
        const char *k = sec->kv[i].key, *v = sec->kv[i].value;
        if (strcmp(k, "host") == 0)
            b->redis.host = v;
        else if (strcmp(k, "port") == 0)
            b->redis.port = atoi(v);
        else if (strcmp(k, "socket") == 0)
            b->redis.socket = v;
        else if (strcmp(k, "password") == 0 && *v)
            b->redis.password = v;
        else if (strcmp(k, "db") == 0)
            b->redis.db = atoi(v);
        else if (strcmp(k, "cluster") == 0) {
            /* A raw GET on one node (the first seed) of the cluster. */
            while (*v == ' ' || *v == '[')
                v++;
            const char *colon = NULL;
            for (const char *c = v; *c && *c != ','; c++)
                if (*c == ':')
                    colon = c;
            size_t n = colon ? (size_t)(colon - v) : 0;
            if (n > 0 && v[n - 1] == ']')
                n--;
            if (colon && n < sizeof b->redis.seed_host) {
                memcpy(b->redis.seed_host, v, n);
                b->redis.seed_host[n] = '\0';
                b->redis.host = b->redis.seed_host;
                b->redis.port = atoi(colon + 1);
                b->redis.cluster = true;
            }
        }
    }
}

/* wake's raw mode: a connection like the raw GET baseline's. */
static redisContext *wake_raw_connect(void *arg)
{
    return redis_connect(&((bench *)arg)->redis);
}

static void *redis_baseline_connect(bench *b)
{
    return redis_connect(&b->redis);
}

static void redis_baseline_disconnect(void *conn)
{
    redisFree(conn);
}

static int redis_baseline_open(bench *b)
{
    redis_addr_of(b);
    if (store_keys_init(b) != 0)
        return -1;
    redisContext *c = redis_connect(&b->redis);
    if (!c)
        return -1;
    int rc = 0;
    for (unsigned k = 0, alt = 0; k < NKEYS && rc == 0; k++) {
        /* On a cluster, keys of the node connected to: others answer
         * MOVED, and are tried again under another name. */
        if (alt > 0) {
            char *tilde = strchr(b->store_keys[k], '~');
            size_t len = tilde ? (size_t)(tilde - b->store_keys[k])
                               : strlen(b->store_keys[k]);
            int w = snprintf(b->store_keys[k] + len,
                             sizeof b->store_keys[k] - len, "~%u", alt);
            if (w < 0 || (size_t)w >= sizeof b->store_keys[k] - len) {
                fprintf(stderr, "hermes-bench: baseline: prefix too long\n");
                rc = -1;
                break;
            }
        }
        /* An entry's TTL, so the server does the same expiry work. */
        redisReply *rep =
            b->ttl_s
                ? redisCommand(c, "SET %s %b EX %u", b->store_keys[k],
                               b->base_value, b->base_size, (unsigned)b->ttl_s)
                : redisCommand(c, "SET %s %b", b->store_keys[k], b->base_value,
                               b->base_size);
        if (b->redis.cluster && rep && rep->type == REDIS_REPLY_ERROR &&
            strncmp(rep->str, "MOVED ", 6) == 0 && alt < 100000) {
            freeReplyObject(rep);
            alt++;
            k--;
            continue;
        }
        alt = 0;
        if (!rep || rep->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "hermes-bench: redis baseline: SET: %s\n",
                    rep ? rep->str : c->errstr);
            rc = -1;
        }
        if (rep)
            freeReplyObject(rep);
    }
    redisFree(c);
    return rc;
}

static void redis_baseline_close(bench *b)
{
    redisContext *c = redis_connect(&b->redis);
    for (unsigned k = 0; c && k < NKEYS; k++) {
        redisReply *rep = redisCommand(c, "DEL %s", b->store_keys[k]);
        if (rep)
            freeReplyObject(rep);
    }
    if (c)
        redisFree(c);
}

static int redis_baseline_get2(bench *b, void *conn, uint64_t k)
{
    redisReply *rep = redisCommand(conn, "MGET %s %s %s", b->store_keys[k],
                                   b->tag_keys[0], b->tag_keys[1]);
    int bad = !rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
              rep->element[0]->type != REDIS_REPLY_STRING;
    if (rep)
        freeReplyObject(rep);
    return bad;
}

static int redis_baseline_get(bench *b, void *conn, uint64_t k)
{
    redisReply *rep = redisCommand(conn, "GET %s", b->store_keys[k]);
    int bad = !rep || rep->type != REDIS_REPLY_STRING ||
              (size_t)rep->len != b->base_size;
    if (rep)
        freeReplyObject(rep);
    return bad;
}

/*
 * One `servers` entry of the [memcached] section (host:port, [v6]:port,
 * host, or a unix socket path, each perhaps with /?weight) added to mc.
 */
static int mc_add_server(memcached_st *mc, const char *e, size_t len)
{
    char buf[512], *host = buf, *port = NULL, *w;
    if (len >= sizeof buf)
        return -1;
    memcpy(buf, e, len);
    buf[len] = '\0';
    if ((w = strstr(buf, "/?")) != NULL)
        *w = '\0';
    if (buf[0] == '/')
        return memcached_server_add_unix_socket(mc, buf) == MEMCACHED_SUCCESS
                   ? 0
                   : -1;
    if (buf[0] == '[' && (w = strchr(buf, ']')) != NULL) {
        host = buf + 1;
        *w = '\0';
        port = w[1] == ':' ? w + 2 : NULL;
    } else if ((port = strrchr(buf, ':')) != NULL) {
        *port++ = '\0';
    }
    return memcached_server_add(mc, host,
                                port ? (in_port_t)atoi(port) : 11211) ==
                   MEMCACHED_SUCCESS
               ? 0
               : -1;
}

/*
 * The pool of the config's [memcached] section, as a template for bare
 * libmemcached clients: its servers and protocol, libmemcached's
 * defaults otherwise (what a program calling memcached_get gets).
 */
static int mc_baseline_open(bench *b)
{
    const hm_section *sec =
        hm_config_section(hm_handle_config(b->h), "memcached");
    const char *servers = "127.0.0.1:11211";
    bool binary = false;

    for (size_t i = 0; sec && i < sec->n; i++) {
        if (strcmp(sec->kv[i].key, "servers") == 0)
            servers = sec->kv[i].value;
        else if (strcmp(sec->kv[i].key, "protocol") == 0)
            binary = strcmp(sec->kv[i].value, "binary") == 0;
    }
    if (store_keys_init(b) != 0 || !(b->mc = memcached_create(NULL)))
        return -1;
    for (const char *v = servers; *v;) {
        v += strspn(v, ", \t");
        size_t len = strcspn(v, ", \t");
        if (len && mc_add_server(b->mc, v, len) != 0) {
            fprintf(stderr,
                    "hermes-bench: memcached baseline: bad server "
                    "'%.*s'\n",
                    (int)len, v);
            return -1;
        }
        v += len;
    }
    memcached_behavior_set(b->mc, MEMCACHED_BEHAVIOR_BINARY_PROTOCOL, binary);
    for (unsigned k = 0; k < NKEYS; k++) {
        memcached_return_t rc = memcached_set(
            b->mc, b->store_keys[k], strlen(b->store_keys[k]),
            (const char *)b->base_value, b->base_size, (time_t)b->ttl_s, 0);
        if (rc != MEMCACHED_SUCCESS) {
            fprintf(stderr, "hermes-bench: memcached baseline: set: %s\n",
                    memcached_last_error_message(b->mc));
            return -1;
        }
    }
    return 0;
}

static void mc_baseline_close(bench *b)
{
    for (unsigned k = 0; b->mc && k < NKEYS; k++)
        memcached_delete(b->mc, b->store_keys[k], strlen(b->store_keys[k]), 0);
    memcached_free(b->mc);
    b->mc = NULL;
}

static void *mc_baseline_connect(bench *b)
{
    return memcached_clone(NULL, b->mc);
}

static void mc_baseline_disconnect(void *conn)
{
    memcached_free(conn);
}

static int mc_baseline_get(bench *b, void *conn, uint64_t k)
{
    size_t len = 0;
    uint32_t flags;
    memcached_return_t rc;
    char *v = memcached_get(conn, b->store_keys[k], strlen(b->store_keys[k]),
                            &len, &flags, &rc);
    int bad = !v || rc != MEMCACHED_SUCCESS || len != b->base_size;
    free(v);
    return bad;
}

/* The plugin's clients are pool_size (default 8) clients of one
 * connection per server; the baseline's are one per thread: say when the
 * counts differ, as the throughput ratio then compares unlike things. */
static void mc_pool_note(bench *b, const unsigned *threads, size_t n)
{
    const hm_section *sec =
        hm_config_section(hm_handle_config(b->h), "memcached");
    unsigned pool = 8;
    for (size_t i = 0; sec && i < sec->n; i++)
        if (strcmp(sec->kv[i].key, "pool_size") == 0)
            pool = (unsigned)atoi(sec->kv[i].value);
    printf("# memcached: %u servers, pool_size %u\n",
           memcached_server_count(b->mc), pool);
    for (size_t i = 0; i < n; i++)
        if (threads[i] > pool)
            printf("# note: %u threads share %u pooled clients, the "
                   "baseline has %u\n",
                   threads[i], pool, threads[i]);
}

/* The keys of a hit2 read: with the namespace key where the core reads
 * one (a store that cannot delete by prefix). */
static int mc_baseline_get2(bench *b, void *conn, uint64_t k)
{
    const char *ns = hm_handle_ns_key(b->h);
    const char *keys[4] = {b->store_keys[k], b->tag_keys[0], b->tag_keys[1],
                           ns};
    size_t n = ns ? 4 : 3, lens[4];
    memcached_result_st res, *r;
    memcached_return_t rc;
    size_t found = 0;

    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(keys[i]);
    if (memcached_mget(conn, keys, lens, n) != MEMCACHED_SUCCESS)
        return 1;
    memcached_result_create(conn, &res);
    while ((r = memcached_fetch_result(conn, &res, &rc)) != NULL)
        found++;
    memcached_result_free(&res);
    return found != n;
}

/* A tagged hit on a Redis Cluster against one node's GET, from one
 * thread (issue 13), in place of the single server's lat_max. */
#define CLUSTER_LAT_MAX 1.2

static const baseline_ops baselines[] = {
    {.name = "dict",
     .what = "dict get through the plugin ABI, value copied",
     .open = dict_baseline_open,
     .close = dict_baseline_close,
     .get = dict_baseline_get,
     .cost_max = 2.5},
    {.name = "redis",
     .what = "hiredis GET, one connection per thread",
     .open = redis_baseline_open,
     .close = redis_baseline_close,
     .connect = redis_baseline_connect,
     .disconnect = redis_baseline_disconnect,
     .get = redis_baseline_get,
     .get2 = redis_baseline_get2,
     .lat_max = 1.1,
     .tput_min = 0.9,
     .tput32_min = 0.8},
    {.name = "memcached",
     .what = "libmemcached memcached_get, one client (a connection per "
             "server) per thread",
     .open = mc_baseline_open,
     .close = mc_baseline_close,
     .connect = mc_baseline_connect,
     .disconnect = mc_baseline_disconnect,
     .get = mc_baseline_get,
     .get2 = mc_baseline_get2,
     .lat_max = 1.1,
     .tput_min = 0.9},
};

/* ---------------------------------------------------------------- main */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: hermes-bench [-c CONFIG] [-w WORKLOAD] [-n OPS] "
            "[-t THREADS] [-s VALUE_SIZE] [-r REPS] [-p] [-v] [-d SECONDS] "
            "[-P PROCS]\n"
            "  -c CONFIG    INI file (default $HERMES_CONFIG, else the dict "
            "backend)\n"
            "  -w WORKLOAD  hit0, hit2, hit8, miss or baseline (default: "
            "all);\n"
            "               flush (redis): hermes_flush of OPS entries, "
            "alone and beside\n"
            "               10 OPS other keys, against UNLINKing them by "
            "name;\n"
            "               near (redis): the near cache's tagged hit against "
            "a bare GET\n"
            "               and the dict's, its miss against a hit without "
            "it\n"
            "               storm: one hot entry (TTL 1 s, a 50 ms "
            "computation) with\n"
            "               freshness off and on (README \"Freshness\");\n"
            "               wake (redis): followers in other processes "
            "woken by the\n"
            "               lock's release notice against polling, with "
            "the floors\n"
            "               of that path (raw: bare hiredis; hop: one pipe "
            "wake-up),\n"
            "               -n misses per mode and round (default 40), -r "
            "rounds\n"
            "               (default 5)\n"
            "  -d SECONDS   storm: seconds per mode and round (default 20)\n"
            "  -P PROCS     storm: processes, each with THREADS threads "
            "(default 1 with\n"
            "               8 threads; 4 with 4 threads on a shared "
            "backend);\n"
            "               wake: follower processes (default 1 with 8 "
            "threads)\n"
            "  -n OPS       operations per workload and pass, over all "
            "threads\n"
            "               (default %d for dict, %d otherwise)\n"
            "  -t THREADS   thread count, or a list such as 1,8 (default 1 "
            "for dict,\n"
            "               1,8 for redis and memcached)\n"
            "  -s SIZE      value size in bytes (default 64)\n"
            "  -r REPS      throughput passes per workload, the best "
            "counts\n"
            "               (default %d for dict, %d otherwise)\n"
            "  -p           for a profiler: with -w, run only that "
            "workload's\n"
            "               throughput passes (no baseline, no latency "
            "pass)\n"
            "  -v           after each workload, the library's counters "
            "it moved\n"
            "               (hermes_stats, a \"#   name: count\" line "
            "each)\n"
            "The baseline is a bare get of a value the size of a hit2 "
            "record;\n"
            "\"xR of baseline\" is the workload's cost per op divided by "
            "the baseline's.\n",
            DICT_DEFAULT_OPS, OTHER_DEFAULT_OPS, DICT_DEFAULT_REPS,
            OTHER_DEFAULT_REPS);
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_threads(const char *s, unsigned *v, size_t *n)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    *n = 0;
    for (char *save, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        uint64_t t;
        if (*n == MAX_THREAD_COUNTS || parse_u64(tok, 1, MAX_THREADS, &t) != 0)
            return -1;
        v[(*n)++] = (unsigned)t;
    }
    return *n ? 0 : -1;
}

/* The cost of the clock read every timed op pays, for the reader. */
/* ------------------------------------------------------- flush workload */

/* Stores n keys "<prefix><i>" with pipelined SETs; -1 on failure. */
static int redis_fill(redisContext *c, const char *prefix, uint64_t n)
{
    uint64_t sent = 0, read = 0;
    while (read < n) {
        while (sent < n && sent - read < 1000) {
            redisAppendCommand(c, "SET %s%" PRIu64 " v", prefix, sent);
            sent++;
        }
        while (read < sent) {
            redisReply *rep;
            if (redisGetReply(c, (void **)&rep) != REDIS_OK)
                return -1;
            freeReplyObject(rep);
            read++;
        }
    }
    return 0;
}

/* Deletes the keys redis_fill stored, in pipelined UNLINKs of 1000 keys
 * each: what deleting n keys costs when one knows them. */
static int redis_unlink_known(redisContext *c, const char *prefix, uint64_t n)
{
    enum { BATCH = 1000 };
    static char keys[BATCH][96];
    const char *argv[BATCH + 1];
    size_t lens[BATCH + 1];
    for (uint64_t i = 0; i < n;) {
        int k = 0;
        argv[0] = "UNLINK";
        lens[0] = 6;
        for (; k < BATCH && i < n; k++, i++) {
            int len =
                snprintf(keys[k], sizeof keys[k], "%s%" PRIu64, prefix, i);
            argv[k + 1] = keys[k];
            lens[k + 1] = (size_t)len;
        }
        redisReply *rep = redisCommandArgv(c, k + 1, argv, lens);
        if (!rep)
            return -1;
        freeReplyObject(rep);
    }
    return 0;
}

/* -------------------------------------------------------- near workload */

/*
 * -w near (redis): the near cache (near_cache = yes) against what it
 * competes with, in the same run: a tagged hit (2 tags) from the near
 * cache against a bare GET (target: at least 20x the throughput) and
 * against a tagged hit on the dict backend (at most 2x its cost), at each
 * thread count; a near miss (near_max_item_bytes below a record's size:
 * every read places its placeholders, goes to the server and fills the
 * tags but never the entry) against today's tagged hit
 * without the near cache (at most 1.1x); and the memory each held entry
 * costs.  The handles are the config's own settings with near_cache set
 * one way or the other (and near_prefix = the config's prefix).
 */
static hermes *open_variant(bench *b, const char *backend, const char *near,
                            const char *max_item)
{
    const hm_config *cfg = hm_handle_config(b->h);
    const hm_section *sec = hm_config_section(cfg, "redis");
    hermes_options *o = NULL;
    hermes *h = NULL;
    char ttl[16];

    snprintf(ttl, sizeof ttl, "%u", (unsigned)cfg->ttl);
    if (hermes_options_new(&o) != HERMES_OK)
        return NULL;
    hermes_options_set(o, NULL, "backend", backend);
    hermes_options_set(o, NULL, "prefix", cfg->prefix);
    hermes_options_set(o, NULL, "ttl", ttl);
    if (cfg->plugin_path)
        hermes_options_set(o, NULL, "plugin_path", cfg->plugin_path);
    if (strcmp(backend, "redis") == 0) {
        for (size_t i = 0; sec && i < sec->n; i++)
            if (strncmp(sec->kv[i].key, "near_", 5) != 0)
                hermes_options_set(o, "redis", sec->kv[i].key,
                                   sec->kv[i].value);
        hermes_options_set(o, "redis", "near_cache", near);
        hermes_options_set(o, "redis", "near_prefix", cfg->prefix);
        if (max_item)
            hermes_options_set(o, "redis", "near_max_item_bytes", max_item);
    }
    if (hermes_open_options(&h, o) != HERMES_OK) {
        fprintf(stderr, "hermes-bench: near: %s: %s\n", backend,
                h ? hermes_errmsg(h) : "out of memory");
        hermes_close(h);
        h = NULL;
    }
    hermes_options_free(o);
    return h;
}

typedef struct stat_pick {
    const char *name;
    double value;
    bool print; /* -v: every near_* line */
} stat_pick;

static void pick_stat(void *arg, const char *name, const char *value)
{
    stat_pick *p = arg;

    if (p->print && strncmp(name, "near_", 5) == 0)
        printf("#   %s: %s\n", name, value);
    if (p->name && strcmp(name, p->name) == 0)
        p->value = atof(value);
}

/* One of the plugin's counters (stats()), or -1. */
static double plugin_stat(hermes *h, const char *name)
{
    stat_pick p = {name, -1, false};

    hm_be_stats(h, pick_stat, &p);
    return p.value;
}

static void plugin_near_stats(hermes *h, const char *what)
{
    stat_pick p = {NULL, -1, true};

    printf("# %s, the near cache's counters:\n", what);
    hm_be_stats(h, pick_stat, &p);
}

/* A hit2 workload on handle h (its own function, its own entries). */
static int near_workload(hermes *h, const char *name, workload *w)
{
    hermes_fn_options o = HERMES_FN_OPTIONS(.tags = NULL);
    const char *tags[3] = {tag_names[0], tag_names[1], NULL};

    o.tags = tags;
    *w = (workload){name, K_HIT, 2, NULL};
    if (hermes_fn_register(h, "bench.hit2", &o, &w->fn) != HERMES_OK) {
        fprintf(stderr, "hermes-bench: near: register: %s\n", hermes_errmsg(h));
        return -1;
    }
    return 0;
}

/* Waits (bounded) until h's near cache tracks, then reads every entry
 * of w twice: held, unless too big for it. */
static int near_warm(bench *b, hermes *h, workload *w)
{
    uint64_t until = mono_ns() + 10000000000ull;

    while (plugin_stat(h, "near_tracking") != 1) {
        populate(b, w);
        if (mono_ns() > until) {
            fprintf(stderr, "hermes-bench: near: tracking never came up\n");
            return -1;
        }
    }
    populate(b, w);
    populate(b, w);
    return 0;
}

/*
 * The price of broadcast tracking: every write under the prefix, by
 * anyone, reaches every near cache, whether it holds the key or not.  A
 * writer thread SETs keys no reader holds (as fast as one connection
 * goes) while near2 runs; alternating rounds with and without it give the
 * hit throughput's ratio and the invalidations received per second.
 */
typedef struct near_writer {
    bench *b;
    atomic_bool stop;
    uint64_t writes;
} near_writer;

static void *near_writer_main(void *arg)
{
    near_writer *nw = arg;
    redisContext *c = redis_connect(&nw->b->redis);
    char key[160];

    while (c && !atomic_load(&nw->stop)) {
        snprintf(key, sizeof key, "%sbench.other:%" PRIu64,
                 hm_handle_entry_prefix(nw->b->h), nw->writes % NKEYS);
        redisReply *rep = redisCommand(c, "SET %s x", key);
        if (!rep)
            break;
        freeReplyObject(rep);
        nw->writes++;
    }
    if (c)
        redisFree(c);
    return NULL;
}

static int near_under_writes(bench *b, hermes *hn, workload *near2,
                             uint64_t ops, int *phase)
{
    double r[RATIO_ROUNDS], rate[RATIO_ROUNDS];

    for (int i = 0; i < RATIO_ROUNDS; i++) {
        result quiet, busy;
        near_writer nw = {.b = b, .writes = 0};
        pthread_t th;

        memset(&quiet, 0, sizeof quiet);
        memset(&busy, 0, sizeof busy);
        if (run_pass(b, near2, 1, ops, (*phase)++, false, &quiet) != 0)
            return -1;
        atomic_init(&nw.stop, false);
        double inv0 = plugin_stat(hn, "near_invalidations");
        uint64_t t0 = mono_ns();
        if (pthread_create(&th, NULL, near_writer_main, &nw) != 0)
            return -1;
        int rc = run_pass(b, near2, 1, ops, (*phase)++, false, &busy);
        atomic_store(&nw.stop, true);
        pthread_join(th, NULL);
        double secs = (double)(mono_ns() - t0) / 1e9;
        if (rc != 0)
            return -1;
        r[i] = quiet.ops_per_s > 0 ? busy.ops_per_s / quiet.ops_per_s : 0;
        rate[i] = (plugin_stat(hn, "near_invalidations") - inv0) / secs;
    }
    qsort(r, RATIO_ROUNDS, sizeof *r, cmp_double);
    qsort(rate, RATIO_ROUNDS, sizeof *rate, cmp_double);
    printf("near2 while another client writes other keys under the prefix "
           "= %.2f of its throughput alone (range %.2f-%.2f), receiving "
           "%.0f invalidations/s (%.0f-%.0f), 1 thread\n",
           r[RATIO_ROUNDS / 2], r[0], r[RATIO_ROUNDS - 1],
           rate[RATIO_ROUNDS / 2], rate[0], rate[RATIO_ROUNDS - 1]);
    return 0;
}

static int run_near(bench *b, const unsigned *threads, size_t nthreads,
                    uint64_t ops, unsigned reps)
{
    hermes *hn = open_variant(b, "redis", "yes", NULL);
    /* Records (base_size bytes) are never held, tag versions (37 bytes)
     * are. */
    char below[24];
    snprintf(below, sizeof below, "%zu",
             b->base_size > 64 ? b->base_size - 1 : (size_t)63);
    hermes *hm = open_variant(b, "redis", "yes", below);
    hermes *hr = open_variant(b, "redis", "no", NULL);
    hermes *hd = open_variant(b, "dict", "no", NULL);
    workload base = {"baseline", K_BASE, 0, NULL};
    workload near2, nmiss2, redis2, dict2;
    int status = 1, phase = 0;

    if (!hn || !hm || !hr || !hd)
        goto out;
    if (near_workload(hn, "near2", &near2) != 0 ||
        near_workload(hm, "nmiss2", &nmiss2) != 0 ||
        near_workload(hr, "redis2", &redis2) != 0 ||
        near_workload(hd, "dict2", &dict2) != 0)
        goto out;
    b->base = &baselines[1];
    if (b->base->open(b) != 0) {
        b->base = NULL;
        goto out;
    }
    populate(b, &redis2);
    populate(b, &dict2);
    if (near_warm(b, hn, &near2) != 0 || near_warm(b, hm, &nmiss2) != 0)
        goto out;

    double entries = plugin_stat(hn, "near_entries");
    double bytes = plugin_stat(hn, "near_bytes");
    printf("# near: %.0f entries held in %.0f bytes: %.0f bytes per entry "
           "(a %zu-byte value in a %zu-byte record, its key and the two "
           "tags' share)\n",
           entries, bytes, entries > 0 ? bytes / entries : 0, b->value_size,
           b->base_size);

    for (size_t ti = 0; ti < nthreads; ti++) {
        unsigned n = threads[ti];
        result r[4];
        workload *all[4] = {&near2, &dict2, &redis2, &nmiss2};
        double x;

        for (int i = 0; i < 4; i++) {
            if (run_workload(b, all[i], n, ops, reps, true, &phase, &r[i]) != 0)
                goto out;
            print_result(all[i]->name, &r[i], NULL);
        }
        if (interleaved(b, &base, &near2, n, ops, R_THROUGHPUT, 1, &phase,
                        &x) != 0)
            goto out;
        printf("near2/raw GET throughput = %.1fx (target >= 20) at %u "
               "thread%s: %s\n",
               x, n, n == 1 ? "" : "s", x >= 20 ? "met" : "MISSED");
        if (interleaved(b, &dict2, &near2, n, ops, R_THROUGHPUT, 1, &phase,
                        &x) != 0)
            goto out;
        x = x > 0 ? 1 / x : 0;
        printf("near2 cost / dict2 cost = %.2f (target <= 2) at %u thread%s: "
               "%s\n",
               x, n, n == 1 ? "" : "s", x <= 2 ? "met" : "MISSED");
        double h0 = plugin_stat(hm, "near_hits");
        if (interleaved(b, &redis2, &nmiss2, n, ops,
                        n == 1 ? R_P50 : R_THROUGHPUT, 1, &phase, &x) != 0)
            goto out;
        if (n != 1)
            x = x > 0 ? 1 / x : 0;
        printf("near miss / hit2 without near cache = %.2f (%s, target <= "
               "1.1) at %u thread%s: %s\n",
               x, n == 1 ? "p50s" : "cost from throughputs", n,
               n == 1 ? "" : "s", x <= 1.1 ? "met" : "MISSED");
        double hits = plugin_stat(hm, "near_hits") - h0;
        if (hits > 0)
            printf("# WARNING: the near-miss handle had %.0f near hits\n",
                   hits);
        if (n == 1 && near_under_writes(b, hn, &near2, ops, &phase) != 0)
            goto out;
        if (b->counters) {
            plugin_near_stats(hn, "near2");
            plugin_near_stats(hm, "nmiss2");
        }
    }
    status = 0;
out:
    if (b->base)
        b->base->close(b);
    b->base = NULL;
    hermes_close(hn);
    hermes_close(hm);
    if (hr)
        hermes_clean(hr, tag_names);
    hermes_close(hr);
    hermes_close(hd);
    return status;
}

/*
 * -w flush (redis): n entries under the handle's prefix, then hermes_flush
 * timed on a database holding only them, and again with 10 n keys of
 * another application beside them; the baseline is UNLINKing the same n
 * keys by name.  Alternating rounds; medians and ranges.
 */
static int run_flush(bench *b, uint64_t n, unsigned rounds)
{
    char mine[80], other[80];
    double alone[16], crowded[16], base[16];
    redis_addr_of(b);
    redisContext *c = redis_connect(&b->redis);
    if (!c)
        return 1;
    snprintf(mine, sizeof mine,
             "%sbench.flush:%08x:", hm_handle_entry_prefix(b->h),
             (unsigned)b->run_id);
    snprintf(other, sizeof other, "bench-other-app:%08x:", (unsigned)b->run_id);
    if (rounds > 16)
        rounds = 16;
    for (unsigned r = 0; r < rounds; r++) {
        uint64_t t0;
        if (redis_fill(c, mine, n) != 0)
            goto fail;
        t0 = mono_ns();
        if (hermes_flush(b->h) != HERMES_OK)
            goto fail;
        alone[r] = (double)(mono_ns() - t0) / 1e6;

        if (redis_fill(c, mine, n) != 0 || redis_fill(c, other, 10 * n) != 0)
            goto fail;
        t0 = mono_ns();
        if (hermes_flush(b->h) != HERMES_OK)
            goto fail;
        crowded[r] = (double)(mono_ns() - t0) / 1e6;
        if (redis_unlink_known(c, other, 10 * n) != 0)
            goto fail;

        if (redis_fill(c, mine, n) != 0)
            goto fail;
        t0 = mono_ns();
        if (redis_unlink_known(c, mine, n) != 0)
            goto fail;
        base[r] = (double)(mono_ns() - t0) / 1e6;
        printf("flush round %u: %" PRIu64 " keys: alone %.1f ms, beside "
               "%" PRIu64 " others %.1f ms, UNLINK by name %.1f ms\n",
               r + 1, n, alone[r], 10 * n, crowded[r], base[r]);
    }
    qsort(alone, rounds, sizeof alone[0], cmp_double);
    qsort(crowded, rounds, sizeof crowded[0], cmp_double);
    qsort(base, rounds, sizeof base[0], cmp_double);
    printf("flush median of %u rounds: alone %.1f ms (%.1f-%.1f), beside "
           "10x others %.1f ms (%.1f-%.1f), UNLINK by name %.1f ms "
           "(%.1f-%.1f)\n",
           rounds, alone[rounds / 2], alone[0], alone[rounds - 1],
           crowded[rounds / 2], crowded[0], crowded[rounds - 1],
           base[rounds / 2], base[0], base[rounds - 1]);
    redisFree(c);
    return 0;
fail:
    fprintf(stderr, "hermes-bench: flush: %s\n",
            c->err ? c->errstr : "hermes_flush failed");
    redisFree(c);
    return 1;
}

static double clock_cost_ns(void)
{
    uint64_t t0 = mono_ns();
    for (int i = 0; i < 100000; i++)
        (void)mono_ns();
    return (double)(mono_ns() - t0) / 100000;
}

int main(int argc, char **argv)
{
    const char *config = getenv("HERMES_CONFIG"), *only = NULL;
    uint64_t ops = 0, vsize = 64, reps = 0;
    unsigned threads[MAX_THREAD_COUNTS];
    size_t nthreads = 0;
    bool profile = false, counters = false;
    int c;

    if (config && !*config)
        config = NULL;
    uint64_t procs = 0;
    double seconds = 20;
    while ((c = getopt(argc, argv, "c:w:n:t:s:r:pvhd:P:")) != -1) {
        switch (c) {
        case 'd': {
            char *end;
            seconds = strtod(optarg, &end);
            if (*end || !(seconds > 0 && seconds <= 3600)) {
                fprintf(stderr, "hermes-bench: -d: 0 to 3600 seconds: %s\n",
                        optarg);
                return 2;
            }
            break;
        }
        case 'P':
            if (parse_u64(optarg, 1, 64, &procs) != 0) {
                fprintf(stderr, "hermes-bench: -P: 1 to 64: %s\n", optarg);
                return 2;
            }
            break;
        case 'c':
            config = optarg;
            break;
        case 'w':
            only = optarg;
            break;
        case 'n':
            if (parse_u64(optarg, 1, UINT64_MAX / 2, &ops) != 0) {
                fprintf(stderr, "hermes-bench: -n: not a count: %s\n", optarg);
                return 2;
            }
            break;
        case 't':
            if (parse_threads(optarg, threads, &nthreads) != 0) {
                fprintf(stderr,
                        "hermes-bench: -t: counts from 1 to %d, "
                        "comma-separated: %s\n",
                        MAX_THREADS, optarg);
                return 2;
            }
            break;
        case 's':
            if (parse_u64(optarg, 1, MAX_VALUE, &vsize) != 0) {
                fprintf(stderr, "hermes-bench: -s: 1 to %u bytes: %s\n",
                        MAX_VALUE, optarg);
                return 2;
            }
            break;
        case 'r':
            if (parse_u64(optarg, 1, 1000, &reps) != 0) {
                fprintf(stderr, "hermes-bench: -r: 1 to 1000: %s\n", optarg);
                return 2;
            }
            break;
        case 'p':
            profile = true;
            break;
        case 'v':
            counters = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    uint64_t rounds = reps ? reps : 1; /* storm: -r is its rounds */
    unsigned storm_threads = nthreads ? threads[0] : 0;
    wake_opts wo = {
        .config = config ? config : getenv("HERMES_CONFIG"),
        .procs = procs ? (unsigned)procs : 1,
        .threads = nthreads ? threads[0] : 8,
        .misses = ops ? (unsigned)(ops < 1000 ? ops : 1000) : 40,
        .rounds = reps ? (unsigned)reps : 5,
        .compute_ms = 30,
    };

    bench b;
    memset(&b, 0, sizeof b);
    hermes_rc rc = hermes_open(&b.h, config);
    if (rc != HERMES_OK) {
        fprintf(stderr, "hermes-bench: %s\n",
                b.h ? hermes_errmsg(b.h) : hermes_strerror(rc));
        hermes_close(b.h);
        return 1;
    }
    b.backend = hermes_backend_name(b.h);
    bool is_dict = strcmp(b.backend, "dict") == 0;
    bool is_redis = strcmp(b.backend, "redis") == 0;
    const baseline_ops *base = NULL;
    for (size_t i = 0; i < sizeof baselines / sizeof baselines[0]; i++)
        if (strcmp(b.backend, baselines[i].name) == 0)
            base = &baselines[i];
    bool networked = base && base->lat_max > 0;
    if (!ops)
        ops = is_dict ? DICT_DEFAULT_OPS : OTHER_DEFAULT_OPS;
    if (!reps)
        reps = is_dict ? DICT_DEFAULT_REPS : OTHER_DEFAULT_REPS;
    if (!nthreads) {
        threads[nthreads++] = 1;
        if (networked)
            threads[nthreads++] = 8;
    }
    b.value_size = vsize;
    b.counters = counters;
    b.base_size = hit2_record_size(vsize);
    b.ttl_s = hm_handle_config(b.h)->ttl;
    b.value = malloc(vsize);
    b.base_value = malloc(b.base_size);
    if (!b.value || !b.base_value ||
        hm_random(&b.run_id, sizeof b.run_id) != 0) {
        fprintf(stderr, "hermes-bench: out of memory or randomness\n");
        free(b.value);
        free(b.base_value);
        hermes_close(b.h);
        return 1;
    }
    memset(b.value, 'x', vsize);
    memset(b.base_value, 'v', b.base_size);

    workload wl[] = {
        {"baseline", K_BASE, 0, NULL},
        {"hit0", K_HIT, 0, NULL},
        {"hit2", K_HIT, 2, NULL},
        {"hit8", K_HIT, 8, NULL},
        {"miss", K_MISS, 2, NULL},
        /* Not run on its own: only beside hit2, whose tags it reads. */
        {"raw2", K_RAW2, 0, NULL},
    };
    const size_t nwl = sizeof wl / sizeof wl[0];
    bool have_base =
        base && !(profile && only && strcmp(only, "baseline") != 0);
    int status = 0;

    if (only && strcmp(only, "storm") == 0) {
        bool shared = hm_handle_backend(b.h)->caps & HERMES_CAP_SHARED;
        storm_opts so = {
            .procs = procs    ? (unsigned)procs
                     : shared ? 4
                              : 1,
            .seconds = seconds,
            .rounds = (unsigned)rounds,
            .ttl_s = 1,
            .compute_ms = 50,
            .value_size = vsize,
        };
        so.threads = storm_threads ? storm_threads : so.procs > 1 ? 4 : 8;
        status = storm_run(b.h, &so) == 0 ? 0 : 1;
        hermes_close(b.h);
        free(b.value);
        free(b.base_value);
        return status;
    }
    if (only && strcmp(only, "wake") == 0) {
        if (strcmp(hermes_backend_name(b.h), "redis") == 0) {
            redis_addr_of(&b);
            wo.raw_connect = wake_raw_connect;
            wo.raw_arg = &b;
        }
        status = wake_run(b.h, &wo) == 0 ? 0 : 1;
        hermes_close(b.h);
        free(b.value);
        free(b.base_value);
        return status;
    }
    if (only && strcmp(only, "near") == 0) {
        status = is_redis ? run_near(&b, threads, nthreads, ops, reps) : 2;
        if (!is_redis)
            fprintf(stderr, "hermes-bench: -w near needs redis\n");
        hermes_close(b.h);
        free(b.value);
        free(b.base_value);
        return status;
    }
    if (only && strcmp(only, "flush") == 0) {
        status = is_redis ? run_flush(&b, ops, reps < 5 ? 5 : reps) : 2;
        if (!is_redis)
            fprintf(stderr, "hermes-bench: -w flush needs redis\n");
        hermes_close(b.h);
        free(b.value);
        free(b.base_value);
        return status;
    }
    if (only) {
        size_t i;
        for (i = 0; i < nwl && strcmp(wl[i].name, only) != 0; i++)
            ;
        if (i == nwl || wl[i].kind == K_RAW2) {
            fprintf(stderr, "hermes-bench: -w: unknown workload '%s'\n", only);
            usage(stderr);
            hermes_close(b.h);
            free(b.value);
            free(b.base_value);
            return 2;
        }
    }
    for (size_t i = 1; i < nwl && wl[i].kind != K_RAW2; i++) {
        hermes_fn_options o = HERMES_FN_OPTIONS(.tags = NULL);
        const char *tags[9] = {NULL};
        char name[32];
        for (size_t t = 0; t < wl[i].ntags; t++)
            tags[t] = tag_names[t];
        o.tags = tags;
        snprintf(name, sizeof name, "bench.%s", wl[i].name);
        if (hermes_fn_register(b.h, name, &o, &wl[i].fn) != HERMES_OK) {
            fprintf(stderr, "hermes-bench: register %s: %s\n", name,
                    hermes_errmsg(b.h));
            status = 1;
            goto done;
        }
    }
    if (have_base) {
        b.base = base;
        if (base->open(&b) != 0) {
            status = 1;
            goto done;
        }
    }

    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    printf("# hermes-bench: backend %s %s, %ld CPUs, value %zu bytes, "
           "baseline value %zu bytes\n",
           b.backend, hermes_backend_version(b.h), ncpu, b.value_size,
           b.base_size);
    printf("# ops/s: best of %" PRIu64 " passes of %" PRIu64
           " ops; baseline: %s; latencies include one clock read (%.0f ns)\n",
           reps, ops, base ? base->what : "none for this backend",
           clock_cost_ns());
    if (networked && strcmp(b.backend, "memcached") == 0)
        mc_pool_note(&b, threads, nthreads);

    result res[MAX_THREAD_COUNTS][6];
    memset(res, 0, sizeof res);
    int phase = 0;
    for (size_t ti = 0; ti < nthreads; ti++) {
        for (size_t i = 0; i < nwl; i++) {
            bool wanted =
                !only || strcmp(only, wl[i].name) == 0 || (i == 0 && have_base);
            if (!wanted || (i == 0 && !have_base) || wl[i].kind == K_RAW2)
                continue;
            if (run_workload(&b, &wl[i], threads[ti], ops, reps, !profile,
                             &phase, &res[ti][i]) != 0) {
                fprintf(stderr, "hermes-bench: %s failed to run\n", wl[i].name);
                status = 1;
                goto done;
            }
            print_result(wl[i].name, &res[ti][i], i ? &res[ti][0] : NULL);
            fflush(stdout);
            if (res[ti][i].errors)
                status = 1;
        }
    }

    /*
     * The targets (baseline_ops), each re-measured in alternating passes
     * (see interleaved()): the figures above come from passes far apart in
     * time.  Dict: a tagged hit at most cost_max ABI gets, each tag beyond
     * at most 35 ns.  Redis and memcached: a hit's latency at most lat_max
     * raw gets from one thread, throughput at least tput_min of raw at 8
     * threads (and redis 0.8 at 32).
     */
    for (size_t ti = 0; have_base && base->cost_max > 0 && ti < nthreads;
         ti++) {
        double x, tag;
        if (!res[ti][2].ran || !res[ti][0].ran)
            continue;
        /* The miss workload flushed the store behind it. */
        populate(&b, &wl[2]);
        if (res[ti][3].ran)
            populate(&b, &wl[3]);
        if (interleaved(&b, &wl[0], &wl[2], threads[ti], ops, R_THROUGHPUT, 1,
                        &phase, &x) != 0) {
            status = 1;
            goto done;
        }
        x = x > 0 ? 1 / x : 0; /* cost, not speed */
        printf("hit2/baseline = %.2f (target <= %.1f) at %u thread%s: %s\n", x,
               base->cost_max, threads[ti], threads[ti] == 1 ? "" : "s",
               x <= base->cost_max ? "met" : "MISSED");
        if (!res[ti][3].ran)
            continue;
        if (interleaved(&b, &wl[2], &wl[3], threads[ti], ops, R_NS_EACH,
                        (double)(wl[3].ntags - wl[2].ntags), &phase,
                        &tag) != 0) {
            status = 1;
            goto done;
        }
        printf("each tag beyond 2 = %.1f ns (hit8 - hit2) / 6 (target <= 35) "
               "at %u thread%s: %s\n",
               tag, threads[ti], threads[ti] == 1 ? "" : "s",
               tag <= 35 ? "met" : "MISSED");
    }
    /* On a Redis Cluster the baseline is one node's GET and the target
     * is issue 13's: a hit at most 1.2x its latency from one thread, and
     * nothing for throughput (issue 11's apply to one server). */
    double lat_max = b.redis.cluster ? CLUSTER_LAT_MAX
                     : base          ? base->lat_max
                                     : 0;
    for (size_t ti = 0; have_base && networked && ti < nthreads; ti++) {
        unsigned n = threads[ti];
        double x, want = b.redis.cluster ? 0
                         : n == 8        ? base->tput_min
                                         : base->tput32_min;
        if (!res[ti][2].ran || !res[ti][0].ran)
            continue;
        populate(&b, &wl[2]);
        if (interleaved(&b, &wl[0], &wl[2], n, ops,
                        n == 1 ? R_P50 : R_THROUGHPUT, 1, &phase, &x) != 0) {
            status = 1;
            goto done;
        }
        if (n == 1)
            printf("hit2 latency ratio = %.2f (median of %d alternating "
                   "rounds of p50s, target <= %.1f%s): %s\n",
                   x, RATIO_ROUNDS, lat_max,
                   b.redis.cluster ? " on a Redis Cluster, against one "
                                     "node's GET"
                                   : "",
                   x <= lat_max ? "met" : "MISSED");
        else if ((n == 8 || n == 32) && want > 0)
            printf("%u-thread throughput ratio = %.2f (target >= %.1f): %s\n",
                   n, x, want, x >= want ? "met" : "MISSED");
        else if (b.redis.cluster)
            printf("%u-thread throughput ratio = %.2f (no target on a "
                   "Redis Cluster)\n",
                   n, x);
        else
            printf("%u-thread throughput ratio = %.2f (no target at %u "
                   "threads)\n",
                   n, x, n);
        /* How much of that is the batch itself (three keys, perhaps on
         * several servers) rather than the cache's work around it. */
        if (!base->get2)
            continue;
        if (interleaved(&b, &wl[5], &wl[2], n, ops,
                        n == 1 ? R_P50 : R_THROUGHPUT, 1, &phase, &x) != 0) {
            status = 1;
            goto done;
        }
        printf("hit2 against the same batch raw (raw2: its entry and tag "
               "keys in one %s) = %.2f (%s)\n",
               strcmp(base->name, "redis") == 0 ? "MGET" : "memcached_mget", x,
               n == 1 ? "p50s" : "throughputs");
    }

done:
    if (b.base)
        b.base->close(&b);
    if (hm_handle_backend(b.h)->caps & HERMES_CAP_SHARED) {
        /* Our hit entries and tags on the shared server. */
        for (size_t i = 1; i < nwl; i++) {
            for (uint64_t k = 0; wl[i].fn && wl[i].kind == K_HIT && k < NKEYS;
                 k++) {
                hermes_args a = HERMES_ARGS_INIT;
                hermes_args_uint(&a, k);
                hermes_invalidate(wl[i].fn, hermes_args_data(&a),
                                  hermes_args_len(&a), NULL);
                hermes_args_free(&a);
            }
        }
        hermes_clean(b.h, tag_names);
    }
    hermes_close(b.h);
    free(b.value);
    free(b.base_value);
    return status;
}
