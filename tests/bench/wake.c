/*
 * The follower wake-up (issue 11, target 3): this process leads a miss of
 * a fresh entry whose computation takes compute_ms, while followers in
 * other processes (procs x threads) call the same entry and wait for it.
 * A follower's latency is the time from the end of the leader's
 * computation (the record write and unlock start then) to the return of
 * its own call, on CLOCK_MONOTONIC, which the processes share.  Two
 * modes, alternating by round (the order swapping every round), with the
 * followers' config the -c file's with [redis] lock_notify set:
 *
 *   poll    lock_notify = no: followers poll the lock with the jittered
 *           backoff from 1 ms to lock_poll_ms (the baseline)
 *   notify  lock_notify = yes: the lock's release is published and the
 *           followers' listener wakes them (plugins/redis/wait.c)
 *   raw     the floor of that path on this machine and server, without
 *           the library: the leader pipelines SET value + EVALSHA of an
 *           unlock script like the plugin's (GET, DEL, PUBLISH); one
 *           follower thread per process SUBSCRIBEs the lock's channel
 *           and, on the message, GETs the value, in bare hiredis
 *   hop     one wake-up between two processes on this machine, without
 *           the server: after the same compute_ms the leader writes a
 *           byte to a pipe that one follower thread per process is
 *           blocked reading.  A notice makes at least two such hops
 *           (leader to server, server to follower; raw makes four); on a
 *           virtual machine whose idle vCPUs halt, a hop after idling
 *           costs far more than one back to back, and this shows how
 *           much
 *
 * Each round prints, per mode, p50/p99/max over every follower call of
 * its misses, and what the followers' stats moved: misses in which a
 * notice ended a follower's wait for the lock (lock_notified), and
 * computations (0 unless a wait failed open).  The summary gives the
 * median and range over rounds, and the target: notify p99 <= 1 ms.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host.h"
#include "wake.h"

#define MAX_PROCS 16
#define MAX_THREADS 64
#define MAX_MISSES 1000
#define WARMUP 2 /* misses per mode and round before those measured */
#define MAX_FOLLOWERS (MAX_PROCS * MAX_THREADS)

enum { POLL, NOTIFY, RAW, HOP, NMODES };
static const char *const mode_name[NMODES] = {"poll", "notify", "raw", "hop"};

/* Shared with the follower processes. */
typedef struct shm {
    /* Per miss: the end of the leader's computation, the follower calls
     * that returned, how many waits for its lock a notice ended. */
    _Atomic uint64_t written[MAX_MISSES + WARMUP];
    atomic_uint done[MAX_MISSES + WARMUP];
    atomic_uint notified_in[MAX_MISSES + WARMUP];
    uint64_t lat[MAX_MISSES + WARMUP][MAX_FOLLOWERS];
    atomic_uint errors;
    _Atomic uint64_t computations, timeouts;
} shm;

typedef struct run {
    const wake_opts *o;
    shm *s;
    uint64_t id; /* of this run: every entry is a fresh one */
    unsigned round, mode;
} run;

static void args_of(const run *r, unsigned miss, hermes_args *a)
{
    memset(a, 0, sizeof *a); /* HERMES_ARGS_INIT, in place */
    hermes_args_uint(a, r->id);
    hermes_args_uint(a, r->round);
    hermes_args_uint(a, r->mode);
    hermes_args_uint(a, miss);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* --------------------------------------------------------- followers */

static int compute_follower(void *arg, hermes_result *res)
{
    (void)arg; /* a follower computes only when its wait failed open */
    return hermes_result_set(res, "v", 1) == HERMES_OK ? 0 : 1;
}

typedef struct fproc {
    const run *r;
    hermes_fn *fn;
    unsigned first; /* this process's first follower index */
    pthread_mutex_t mu;
    pthread_cond_t cv;   /* the threads': a miss to call, or quit */
    pthread_cond_t done; /* the process's: every call returned */
    int miss;            /* the miss to call, -1 before the first */
    bool quit;
    unsigned returned; /* calls of this process's threads that returned */
    unsigned want;     /* returned when the last of this miss's is in */
} fproc;

typedef struct fthread {
    fproc *p;
    unsigned index;
    pthread_t t;
} fthread;

static void *fthread_main(void *arg)
{
    fthread *ft = arg;
    fproc *p = ft->p;
    shm *s = p->r->s;
    int seen = -1;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->quit && p->miss == seen)
            pthread_cond_wait(&p->cv, &p->mu);
        bool quit = p->quit;
        int miss = seen = p->miss;
        pthread_mutex_unlock(&p->mu);
        if (quit)
            return NULL;
        hermes_args a;
        args_of(p->r, (unsigned)miss, &a);
        void *v;
        size_t len;
        hermes_rc rc =
            hermes_call(p->fn, hermes_args_data(&a), hermes_args_len(&a),
                        compute_follower, NULL, &v, &len);
        uint64_t t = mono_ns();
        hermes_args_free(&a);
        if (rc != HERMES_OK || len != 1) {
            /* The first failure of a mode's run says why on stderr. */
            if (atomic_fetch_add(&s->errors, 1) == 0)
                fprintf(stderr, "hermes-bench: wake: a follower's call: %s\n",
                        rc != HERMES_OK ? hermes_strerror(rc)
                                        : "a value of another length");
        }
        hermes_free(v);
        uint64_t w = atomic_load(&s->written[miss]);
        s->lat[miss][ft->index] = w && t > w ? t - w : 0;
        /* Only the last call's return wakes anyone: a broadcast on cv
         * with every return woke the threads already back, which then
         * took the 2 cores from followers still to be woken. */
        pthread_mutex_lock(&p->mu);
        if (++p->returned == p->want)
            pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->mu);
    }
}

/* The -c file with lock_notify = yes or no in [redis] (any lock_notify
 * line it had is dropped); NULL when it cannot be read.  Free it. */
static char *config_text(const char *path, bool notify)
{
    FILE *f = path ? fopen(path, "r") : NULL;
    size_t cap = 4096, len = 0;
    char *out = malloc(cap), line[4096];
    bool section = false;
    if ((path && !f) || !out) {
        if (f)
            fclose(f);
        free(out);
        return NULL;
    }
    const char *set = notify ? "lock_notify = yes\n" : "lock_notify = no\n";
    out[0] = '\0';
    while (f && fgets(line, sizeof line, f)) {
        const char *l = line + strspn(line, " \t");
        if (strncmp(l, "lock_notify", 11) == 0)
            continue;
        size_t need = len + strlen(line) + strlen(set) + 32;
        if (need > cap) {
            char *bigger = realloc(out, cap = need * 2);
            if (!bigger) {
                fclose(f);
                free(out);
                return NULL;
            }
            out = bigger;
        }
        len += (size_t)sprintf(out + len, "%s", line);
        if (strncmp(l, "[redis]", 7) == 0) {
            if (line[strlen(line) - 1] != '\n')
                len += (size_t)sprintf(out + len, "\n");
            len += (size_t)sprintf(out + len, "%s", set);
            section = true;
        }
    }
    if (f)
        fclose(f);
    if (!section) {
        char *bigger = realloc(out, len + 64);
        if (!bigger) {
            free(out);
            return NULL;
        }
        out = bigger;
        sprintf(out + len, "\n[redis]\n%s", set);
    }
    return out;
}

/* One follower process: its handle, its threads, one call each per miss
 * (the miss number comes down the pipe). */
static int follower_main(const run *r, unsigned first, int fd)
{
    char *text = config_text(r->o->config, r->mode == NOTIFY);
    hermes *h = NULL;
    if (!text || hermes_open_string(&h, text, r->o->config) != HERMES_OK) {
        fprintf(stderr, "hermes-bench: wake: follower config: %s\n",
                h ? hermes_errmsg(h) : "cannot read it");
        free(text);
        hermes_close(h);
        return 1;
    }
    free(text);
    fproc p = {.r = r, .first = first, .miss = -1};
    hermes_fn_options fo = HERMES_FN_OPTIONS(.ttl = 60);
    if (hermes_fn_register(h, "bench.wake", &fo, &p.fn) != HERMES_OK) {
        hermes_close(h);
        return 1;
    }
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    pthread_cond_init(&p.done, NULL);
    fthread ft[MAX_THREADS];
    unsigned n = 0;
    for (; n < r->o->threads; n++) {
        ft[n] = (fthread){&p, first + n, 0};
        if (pthread_create(&ft[n].t, NULL, fthread_main, &ft[n]) != 0)
            break;
    }
    hermes_stats s0, s1, start;
    hermes_stats_get(h, &s0, sizeof s0);
    start = s0;
    int miss;
    unsigned calls = 0;
    while (read(fd, &miss, sizeof miss) == (ssize_t)sizeof miss) {
        pthread_mutex_lock(&p.mu);
        p.miss = miss;
        calls += n;
        p.want = calls;
        pthread_cond_broadcast(&p.cv);
        while (p.returned < calls)
            pthread_cond_wait(&p.done, &p.mu);
        pthread_mutex_unlock(&p.mu);
        /* Whether a notice ended this miss's wait for the lock. */
        hermes_stats_get(h, &s1, sizeof s1);
        atomic_fetch_add(&r->s->notified_in[miss],
                         (unsigned)(s1.lock_notified - s0.lock_notified));
        s0.lock_notified = s1.lock_notified;
        atomic_fetch_add(&r->s->done[miss], n);
    }
    pthread_mutex_lock(&p.mu);
    p.quit = true;
    pthread_cond_broadcast(&p.cv);
    pthread_mutex_unlock(&p.mu);
    for (unsigned i = 0; i < n; i++)
        pthread_join(ft[i].t, NULL);
    hermes_stats_get(h, &s1, sizeof s1);
    atomic_fetch_add(&r->s->computations, s1.computations - start.computations);
    atomic_fetch_add(&r->s->timeouts, s1.lock_timeouts - start.lock_timeouts);
    hermes_close(h);
    return n == r->o->threads ? 0 : 1;
}

/* --------------------------------------------------------------- raw */

static const char raw_unlock[] =
    "if redis.call('get',KEYS[1]) == ARGV[1] then "
    "redis.call('del',KEYS[1]) redis.pcall('publish',KEYS[1],'') "
    "return 1 else return 0 end";

static void raw_key(const run *r, int miss, const char *what, char *buf,
                    size_t cap)
{
    snprintf(buf, cap, "hermes-bench:wake:%s:%016" PRIx64 ":%u:%d", what, r->id,
             r->round, miss);
}

/* rep when it came and is of type, else NULL (rep freed). */
static redisReply *raw_reply(redisReply *rep, int type)
{
    if (rep && rep->type == type)
        return rep;
    if (rep)
        freeReplyObject(rep);
    return NULL;
}

/* A raw follower process: one thread, the notice's path in hiredis. */
static int raw_follower_main(const run *r, unsigned index, int fd)
{
    redisContext *sub = r->o->raw_connect(r->o->raw_arg);
    redisContext *get = r->o->raw_connect(r->o->raw_arg);
    shm *s = r->s;
    int miss, ok = sub && get;
    while (ok && read(fd, &miss, sizeof miss) == (ssize_t)sizeof miss) {
        char lock[128], val[128];
        raw_key(r, miss, "lock", lock, sizeof lock);
        raw_key(r, miss, "value", val, sizeof val);
        redisReply *rep = raw_reply(redisCommand(sub, "SUBSCRIBE %s", lock),
                                    REDIS_REPLY_ARRAY);
        ok = rep != NULL;
        if (rep)
            freeReplyObject(rep);
        /* Released before the subscription took: no message will come. */
        rep = ok ? redisCommand(get, "EXISTS %s", lock) : NULL;
        ok = ok && rep && rep->type == REDIS_REPLY_INTEGER;
        bool held = ok && rep->integer == 1;
        if (rep)
            freeReplyObject(rep);
        if (ok && held) {
            rep = NULL;
            ok = redisGetReply(sub, (void **)&rep) == REDIS_OK &&
                 (rep = raw_reply(rep, REDIS_REPLY_ARRAY)) != NULL;
            if (rep)
                freeReplyObject(rep);
            atomic_fetch_add(&s->notified_in[miss], 1);
        }
        rep = ok ? redisCommand(get, "GET %s", val) : NULL;
        uint64_t t = mono_ns();
        if (!rep || rep->type != REDIS_REPLY_STRING)
            atomic_fetch_add(&s->errors, 1);
        if (rep)
            freeReplyObject(rep);
        uint64_t w = atomic_load(&s->written[miss]);
        s->lat[miss][index] = w && t > w ? t - w : 0;
        rep = ok ? raw_reply(redisCommand(sub, "UNSUBSCRIBE %s", lock),
                             REDIS_REPLY_ARRAY)
                 : NULL;
        ok = ok && rep != NULL;
        if (rep)
            freeReplyObject(rep);
        atomic_fetch_add(&s->done[miss], 1);
    }
    if (sub)
        redisFree(sub);
    if (get)
        redisFree(get);
    return ok ? 0 : 1;
}

/* The raw leader's miss m: lock, start the followers, sleep, then the
 * value and the unlock in one pipeline.  -1 when the server failed. */
static int raw_lead(redisContext *c, const char *sha, const run *r, int m,
                    const int *fds)
{
    char lock[128], val[128];
    raw_key(r, m, "lock", lock, sizeof lock);
    raw_key(r, m, "value", val, sizeof val);
    redisReply *rep = raw_reply(redisCommand(c, "SET %s tok PX 60000", lock),
                                REDIS_REPLY_STATUS);
    if (!rep)
        return -1;
    freeReplyObject(rep);
    for (unsigned i = 0; i < r->o->procs; i++)
        if (write(fds[i], &m, sizeof m) != (ssize_t)sizeof m)
            return -1;
    hm_sleep_ns((uint64_t)r->o->compute_ms * 1000000u);
    atomic_store(&r->s->written[m], mono_ns());
    redisAppendCommand(c, "SET %s v PX 60000", val);
    redisAppendCommand(c, "EVALSHA %s 1 %s tok", sha, lock);
    int rc = 0;
    for (int i = 0; i < 2; i++) {
        rep = NULL;
        if (redisGetReply(c, (void **)&rep) != REDIS_OK || !rep ||
            rep->type == REDIS_REPLY_ERROR)
            rc = -1;
        if (rep)
            freeReplyObject(rep);
    }
    return rc;
}

/* --------------------------------------------------------------- hop */

/* A hop follower process: one thread blocked on the pipe. */
static int hop_follower_main(const run *r, unsigned index, int fd)
{
    shm *s = r->s;
    int miss;
    while (read(fd, &miss, sizeof miss) == (ssize_t)sizeof miss) {
        uint64_t t = mono_ns(), w = atomic_load(&s->written[miss]);
        s->lat[miss][index] = w && t > w ? t - w : 0;
        atomic_fetch_add(&s->done[miss], 1);
    }
    return 0;
}

/* The hop leader's miss m: idle as a computation would, then wake every
 * follower process.  -1 when a write failed. */
static int hop_lead(const run *r, int m, const int *fds)
{
    hm_sleep_ns((uint64_t)r->o->compute_ms * 1000000u);
    atomic_store(&r->s->written[m], mono_ns());
    for (unsigned i = 0; i < r->o->procs; i++)
        if (write(fds[i], &m, sizeof m) != (ssize_t)sizeof m)
            return -1;
    return 0;
}

/* ------------------------------------------------------------ leader */

typedef struct lead {
    const run *r;
    unsigned miss;
    int fds[MAX_PROCS];
    bool ok;
} lead;

static int compute_leader(void *arg, hermes_result *res)
{
    lead *l = arg;
    int miss = (int)l->miss;
    for (unsigned i = 0; i < l->r->o->procs; i++)
        if (write(l->fds[i], &miss, sizeof miss) != (ssize_t)sizeof miss)
            l->ok = false;
    hm_sleep_ns((uint64_t)l->r->o->compute_ms * 1000000u);
    atomic_store(&l->r->s->written[l->miss], mono_ns());
    return hermes_result_set(res, "v", 1) == HERMES_OK ? 0 : 1;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

typedef struct figures {
    uint64_t p50, p99, max, notified, computations, timeouts, errors;
} figures;

/* One mode of one round: the followers forked, o->misses misses led. */
static int run_mode(hermes *h, hermes_fn *fn, run *r, figures *f)
{
    const wake_opts *o = r->o;
    shm *s = r->s;
    memset(s, 0, sizeof *s);
    lead l = {.r = r, .ok = true};
    bool raw = r->mode == RAW, hop = r->mode == HOP;
    redisContext *rc = raw ? o->raw_connect(o->raw_arg) : NULL;
    char sha[64] = "";
    if (raw) {
        redisReply *rep =
            rc ? raw_reply(redisCommand(rc, "SCRIPT LOAD %s", raw_unlock),
                           REDIS_REPLY_STRING)
               : NULL;
        if (rep)
            snprintf(sha, sizeof sha, "%s", rep->str);
        if (rep)
            freeReplyObject(rep);
        if (!rep) {
            if (rc)
                redisFree(rc);
            return -1;
        }
    }
    pid_t kids[MAX_PROCS];
    unsigned started = 0;
    fflush(stdout);
    for (; started < o->procs; started++) {
        int p[2];
        if (pipe(p) != 0)
            break;
        kids[started] = fork();
        if (kids[started] < 0) {
            close(p[0]);
            close(p[1]);
            break;
        }
        if (kids[started] == 0) {
            close(p[1]);
            for (unsigned i = 0; i < started; i++)
                close(l.fds[i]);
            _exit(raw   ? raw_follower_main(r, started, p[0])
                  : hop ? hop_follower_main(r, started, p[0])
                        : follower_main(r, started * o->threads, p[0]));
        }
        close(p[0]);
        l.fds[started] = p[1];
    }
    unsigned want = started * (raw || hop ? 1 : o->threads);
    /* The first WARMUP misses connect the followers' pools and listeners;
     * they are not counted. */
    for (unsigned m = 0; l.ok && started == o->procs && m < o->misses + WARMUP;
         m++) {
        hermes_args a;
        args_of(r, m, &a);
        void *v = NULL;
        size_t len;
        l.miss = m;
        if (raw) {
            if (raw_lead(rc, sha, r, (int)m, l.fds) != 0)
                l.ok = false;
        } else if (hop) {
            if (hop_lead(r, (int)m, l.fds) != 0)
                l.ok = false;
        } else if (hermes_call(fn, hermes_args_data(&a), hermes_args_len(&a),
                               compute_leader, &l, &v, &len) != HERMES_OK) {
            l.ok = false;
        }
        hermes_free(v);
        /* Every follower has its value before the next miss. */
        uint64_t give_up = mono_ns() + 30000000000u;
        while (atomic_load(&s->done[m]) < want && mono_ns() < give_up)
            hm_sleep_ns(200000);
        if (atomic_load(&s->done[m]) < want)
            l.ok = false;
        hermes_invalidate(fn, hermes_args_data(&a), hermes_args_len(&a), NULL);
        hermes_args_free(&a);
    }
    if (rc)
        redisFree(rc);
    for (unsigned i = 0; i < started; i++)
        close(l.fds[i]);
    for (unsigned i = 0; i < started; i++) {
        int st;
        waitpid(kids[i], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            l.ok = false;
    }
    if (!l.ok || started != o->procs)
        return -1;
    size_t n = (size_t)o->misses * want, k = 0;
    uint64_t *all = malloc(n * sizeof *all);
    if (!all)
        return -1;
    for (unsigned m = WARMUP; m < o->misses + WARMUP; m++)
        for (unsigned i = 0; i < want; i++)
            all[k++] = s->lat[m][i];
    qsort(all, n, sizeof *all, cmp_u64);
    f->p50 = all[n / 2];
    f->p99 = all[(size_t)((double)n * 0.99)];
    f->max = all[n - 1];
    free(all);
    f->notified = 0;
    for (unsigned m = WARMUP; m < o->misses + WARMUP; m++)
        f->notified += atomic_load(&s->notified_in[m]) > 0;
    f->computations = atomic_load(&s->computations);
    f->timeouts = atomic_load(&s->timeouts);
    f->errors = atomic_load(&s->errors);
    return 0;
}

static double median_of(double *v, unsigned n)
{
    for (unsigned i = 1; i < n; i++)
        for (unsigned j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* "median (min-max)" of one figure over the rounds, in us. */
static void print_spread(const char *what, const figures f[][NMODES],
                         unsigned rounds, unsigned mode, size_t offset)
{
    double v[64];
    for (unsigned i = 0; i < rounds; i++)
        v[i] = (double)*(const uint64_t *)((const char *)&f[i][mode] + offset) /
               1e3;
    double med = median_of(v, rounds);
    printf("  %s %.0f us (%.0f-%.0f)", what, med, v[0], v[rounds - 1]);
}

int wake_run(hermes *h, const wake_opts *o)
{
    if (o->procs < 1 || o->procs > MAX_PROCS || o->threads < 1 ||
        o->threads > MAX_THREADS || o->misses < 1 || o->misses > MAX_MISSES ||
        o->rounds < 1 || o->rounds > 64) {
        fprintf(stderr,
                "hermes-bench: wake: 1-%d processes of 1-%d threads, 1-%d "
                "misses (-n), 1-64 rounds (-r)\n",
                MAX_PROCS, MAX_THREADS, MAX_MISSES);
        return -1;
    }
    if (strcmp(hermes_backend_name(h), "redis") != 0) {
        fprintf(stderr, "hermes-bench: -w wake needs redis (lock_notify)\n");
        return -1;
    }
    hermes_fn *fn;
    hermes_fn_options fo = HERMES_FN_OPTIONS(.ttl = 60);
    if (hermes_fn_register(h, "bench.wake", &fo, &fn) != HERMES_OK) {
        fprintf(stderr, "hermes-bench: wake: %s\n", hermes_errmsg(h));
        return -1;
    }
    shm *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE,
                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (s == MAP_FAILED)
        return -1;
    run r = {.o = o, .s = s};
    hm_random(&r.id, sizeof r.id);
    printf("# wake: backend redis, %u follower process%s x %u threads, "
           "leader computes %u ms, %u misses per mode and round, %u "
           "rounds alternating; latency = a follower's return - the end "
           "of the leader's computation%s\n",
           o->procs, o->procs == 1 ? "" : "es", o->threads, o->compute_ms,
           o->misses, o->rounds,
           o->raw_connect ? "; raw: the same path in bare hiredis, 1 "
                            "follower thread per process; hop: one pipe "
                            "write to each follower process, no server"
                          : "");
    printf("# round mode     p50 us   p99 us   max us  notified  "
           "computed timeouts errors\n");
    static figures f[64][NMODES];
    int status = 0;
    unsigned nmodes = o->raw_connect ? NMODES : RAW;
    for (unsigned i = 0; i < o->rounds && status == 0; i++) {
        for (unsigned k = 0; k < nmodes; k++) {
            unsigned mode = (i + k) % nmodes; /* the order rotates */
            r.round = i;
            r.mode = mode;
            if (run_mode(h, fn, &r, &f[i][mode]) != 0) {
                fprintf(stderr, "hermes-bench: wake: %s failed to run\n",
                        mode_name[mode]);
                status = -1;
                break;
            }
            const figures *g = &f[i][mode];
            printf("%5u %-6s %8.1f %8.1f %8.1f %9" PRIu64 " %9" PRIu64
                   " %8" PRIu64 " %6" PRIu64 "\n",
                   i, mode_name[mode], g->p50 / 1e3, g->p99 / 1e3, g->max / 1e3,
                   g->notified, g->computations, g->timeouts, g->errors);
            fflush(stdout);
            if (g->errors) {
                /* The rounds not run would count as zeros below. */
                printf("wake: %" PRIu64 " calls of round %u (%s) failed: no "
                       "verdict\n",
                       g->errors, i, mode_name[mode]);
                status = 1;
                break;
            }
        }
    }
    if (status == 0) {
        double p99[64];
        for (unsigned m = 0; m < nmodes; m++) {
            printf("%s:", mode_name[m]);
            print_spread("p50", f, o->rounds, m, offsetof(figures, p50));
            print_spread("p99", f, o->rounds, m, offsetof(figures, p99));
            print_spread("max", f, o->rounds, m, offsetof(figures, max));
            printf("\n");
        }
        for (unsigned i = 0; i < o->rounds; i++)
            p99[i] = f[i][NOTIFY].p99 / 1e3;
        double med = median_of(p99, o->rounds);
        printf("notify p99 = %.0f us, median of %u rounds (target <= 1000 "
               "us): %s\n",
               med, o->rounds, med <= 1000 ? "met" : "MISSED");
        if (med > 1000)
            status = 1;
    }
    munmap(s, sizeof *s);
    return status;
}
