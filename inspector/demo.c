/*
 * The demo workload (demo.h): cached functions sharing tags, called by
 * worker threads of the inspector's own process, so that the dict backend,
 * which lives in this process, can be watched too.  A hot report (slow to
 * compute, wanted by every worker) makes callers coalesce on one
 * computation, and on a shared backend a second process forked at the
 * start (before any thread exists) wants it too, so its lock is contended.
 * A background invalidator cleans one tag after another, so entries turn
 * stale, garbage grows, and the workers recompute it away.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hermes/backend.h>

#include "clock.h"
#include "demo.h"
#include "handle.h"

#define DEMO_WORKERS 4
#define DEMO_CHILD_WORKERS 2
#define DEMO_INVALIDATE_MS 2500
#define DEMO_PAUSE_MS 15 /* between a worker's calls */

static const char *const t_users[] = {"users", NULL};
static const char *const t_feed[] = {"users", "feed", NULL};
static const char *const t_products[] = {"products", NULL};
static const char *const t_price[] = {"products", "pricing", NULL};
static const char *const t_report[] = {"reports", "users", NULL};
/* cleaned in turn by the invalidator */
static const char *const cleaned[] = {"feed", "pricing", "users", "products",
                                      "reports"};

typedef struct demo_fn {
    const char *name;
    const char *const *tags;
    uint32_t ttl;        /* seconds */
    unsigned compute_ms; /* how long a computation takes */
    size_t bytes;        /* how big its value is */
    unsigned nargs;      /* how many argument values it is called with */
} demo_fn;

static const demo_fn fns[] = {
    {"user_profile", t_users, 300, 2, 300, 40},
    {"user_feed", t_feed, 120, 8, 2000, 20},
    {"product", t_products, 600, 1, 500, 30},
    {"price", t_price, 60, 1, 64, 30},
    {"report", t_report, 300, 250, 8000, 1}, /* the hot key */
};
#define NFNS (sizeof fns / sizeof *fns)
#define HOT (NFNS - 1)

struct insp_demo {
    hermes *h;
    hermes_fn *fn[NFNS];
    atomic_uint answered[NFNS]; /* calls answered, per function */
    pthread_t threads[DEMO_WORKERS + 1];
    size_t nthreads;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* stop, and the first answer of each */
    bool stop;
    pid_t child; /* the second process on a shared backend, or 0 */
};

struct compute_arg {
    insp_demo *d;
    size_t f;
    unsigned arg;
};

static int compute(void *arg, hermes_result *res)
{
    struct compute_arg *c = arg;
    const demo_fn *f = &fns[c->f];
    insp_sleep_ms(f->compute_ms);
    char *v = malloc(f->bytes);
    if (!v) {
        hermes_result_error(res, "out of memory");
        return 1;
    }
    int n = snprintf(v, f->bytes, "%s(%u) ", f->name, c->arg);
    for (size_t i = n > 0 ? (size_t)n : 0; i < f->bytes; i++)
        v[i] = (char)('a' + i % 26);
    int rc = hermes_result_set(res, v, f->bytes) != HERMES_OK;
    free(v);
    return rc;
}

static void call(insp_demo *d, size_t f, unsigned arg)
{
    hermes_args a = HERMES_ARGS_INIT;
    struct compute_arg c = {d, f, arg};
    void *v = NULL;
    size_t len;
    if (hermes_args_uint(&a, arg) == HERMES_OK &&
        hermes_call(d->fn[f], a.data, a.len, compute, &c, &v, &len) ==
            HERMES_OK) {
        hermes_free(v);
        if (atomic_fetch_add(&d->answered[f], 1) == 0) {
            pthread_mutex_lock(&d->mu);
            pthread_cond_broadcast(&d->cv);
            pthread_mutex_unlock(&d->mu);
        }
    }
    hermes_args_free(&a);
}

/* The CLOCK_REALTIME time ms from now, for pthread_cond_timedwait. */
static struct timespec after_ms(unsigned ms)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000;
    if (t.tv_nsec >= 1000000000) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000;
    }
    return t;
}

/* Waits ms or until stop; returns whether to go on. */
static bool wait_or_stop(insp_demo *d, unsigned ms)
{
    struct timespec until = after_ms(ms);
    pthread_mutex_lock(&d->mu);
    while (!d->stop && pthread_cond_timedwait(&d->cv, &d->mu, &until) == 0)
        ;
    bool go = !d->stop;
    pthread_mutex_unlock(&d->mu);
    return go;
}

static unsigned next_rand(unsigned *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

struct worker {
    insp_demo *d;
    unsigned seed;
};

static void work(insp_demo *d, unsigned seed)
{
    do {
        size_t f =
            next_rand(&seed) % 4 == 0 ? HOT : next_rand(&seed) % (NFNS - 1);
        /* skewed arguments: small ones are wanted more often */
        unsigned r = next_rand(&seed) % fns[f].nargs;
        call(d, f, r * r / fns[f].nargs);
    } while (wait_or_stop(d, DEMO_PAUSE_MS + next_rand(&seed) % 10));
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    work(w->d, w->seed);
    free(w);
    return NULL;
}

static void *invalidator_main(void *arg)
{
    insp_demo *d = arg;
    size_t i = 0;
    while (wait_or_stop(d, DEMO_INVALIDATE_MS)) {
        const char *tags[] = {cleaned[i++ % (sizeof cleaned / sizeof *cleaned)],
                              NULL};
        hermes_clean(d->h, tags);
    }
    return NULL;
}

static int start_thread(insp_demo *d, void *(*fn)(void *), void *arg)
{
    if (pthread_create(&d->threads[d->nthreads], NULL, fn, arg) != 0)
        return -1;
    d->nthreads++;
    return 0;
}

static volatile sig_atomic_t child_stop;

static void on_child_term(int sig)
{
    (void)sig;
    child_stop = 1;
}

/*
 * The second process: forked before any thread exists, it calls the hot
 * report from its own threads until its parent goes away.
 */
static void *child_worker(void *arg)
{
    insp_demo *d = arg;
    unsigned seed = (unsigned)getpid();
    while (!child_stop && getppid() != 1) {
        call(d, HOT, 0);
        insp_sleep_ms(DEMO_PAUSE_MS + next_rand(&seed) % 10);
    }
    return NULL;
}

static void child_main(insp_demo *d, pid_t parent)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_child_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(0);
    pthread_t t[DEMO_CHILD_WORKERS];
    size_t n = 0;
    for (; n < DEMO_CHILD_WORKERS; n++)
        if (pthread_create(&t[n], NULL, child_worker, d) != 0)
            break;
    for (size_t i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    hermes_close(d->h); /* retracts this process's published stats */
    _exit(0);
}

int insp_demo_start(insp_demo **out, hermes *h, char *err, size_t cap)
{
    insp_demo *d = calloc(1, sizeof *d);
    *out = NULL;
    if (!d) {
        snprintf(err, cap, "out of memory");
        return -1;
    }
    d->h = h;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    for (size_t i = 0; i < NFNS; i++) {
        atomic_init(&d->answered[i], 0);
        hermes_fn_options o =
            HERMES_FN_OPTIONS(.tags = fns[i].tags, .ttl = fns[i].ttl);
        hermes_rc rc = hermes_fn_register(h, fns[i].name, &o, &d->fn[i]);
        if (rc != HERMES_OK) {
            snprintf(err, cap, "demo: register %s: %s", fns[i].name,
                     hermes_errmsg(h));
            insp_demo_stop(d);
            return -1;
        }
    }
    /* A second process for cross-process lock contention, forked while
     * this one has no thread yet.  An in-process dict is not shared: a
     * child would only see its own copy. */
    const hermes_backend *be = hm_handle_backend(h);
    if (be && (be->caps & HERMES_CAP_SHARED)) {
        pid_t parent = getpid();
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0)
            child_main(d, parent);
        d->child = pid > 0 ? pid : 0;
    }
    for (unsigned i = 0; i < DEMO_WORKERS; i++) {
        struct worker *w = malloc(sizeof *w);
        if (w)
            *w = (struct worker){d, 0x9e3779b9u * (i + 1)};
        if (!w || start_thread(d, worker_main, w) != 0) {
            free(w);
            break;
        }
    }
    if (start_thread(d, invalidator_main, d) != 0 ||
        d->nthreads < DEMO_WORKERS + 1) {
        snprintf(err, cap, "demo: cannot start its threads");
        insp_demo_stop(d);
        return -1;
    }
    *out = d;
    return 0;
}

bool insp_demo_wait_warm(insp_demo *d, unsigned timeout_ms)
{
    struct timespec until = after_ms(timeout_ms);
    pthread_mutex_lock(&d->mu);
    bool warm = false;
    for (;;) {
        warm = true;
        for (size_t i = 0; i < NFNS; i++)
            warm = warm && atomic_load(&d->answered[i]) > 0;
        if (warm || pthread_cond_timedwait(&d->cv, &d->mu, &until) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&d->mu);
    return warm;
}

void insp_demo_stop(insp_demo *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    d->stop = true;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    for (size_t i = 0; i < d->nthreads; i++)
        pthread_join(d->threads[i], NULL);
    if (d->child > 0) {
        kill(d->child, SIGTERM);
        waitpid(d->child, NULL, 0);
    }
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    free(d);
}
