/*
 * The "other process" of the inspector's end-to-end test: through the
 * public API only, it caches tagged entries whose shape the test knows,
 * holds one entry's lock by computing it until told to stop, keeps
 * publishing its counters, and writes its pid to READY_FILE when all that
 * is in place.  It never recomputes an entry, so after the inspector
 * invalidates a tag the entries carrying it stay stale.
 *
 *   profile(1..4)  tags alpha        100-byte values
 *   feed(1..3)     tags alpha, beta  200-byte values
 *   other(1..2)    tags gamma         50-byte values
 *   slow(0)        tags gamma        computing until SIGTERM: its lock held
 *
 * usage: writer CONFIG READY_FILE; exits 0 after SIGTERM or SIGINT.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hermes/hermes.h>

static const char *const alpha[] = {"alpha", NULL};
static const char *const alpha_beta[] = {"alpha", "beta", NULL};
static const char *const gamma_[] = {"gamma", NULL};

static volatile sig_atomic_t stop;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int slow_started, slow_stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int fill(void *arg, hermes_result *res)
{
    size_t n = *(const size_t *)arg;
    char buf[256];
    memset(buf, 'v', sizeof buf);
    return hermes_result_set(res, buf, n) != HERMES_OK;
}

/* Computes until main says stop: the entry's lock is held all along. */
static int slow(void *arg, hermes_result *res)
{
    pthread_mutex_lock(&mu);
    slow_started = 1;
    pthread_cond_broadcast(&cv);
    while (!slow_stop)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    return hermes_result_set(res, "done", 4) != HERMES_OK;
}

static int call(hermes_fn *fn, int64_t a, hermes_compute_fn compute, void *arg)
{
    hermes_args args = HERMES_ARGS_INIT;
    void *v = NULL;
    size_t len;
    hermes_rc rc = hermes_args_int(&args, a);
    if (rc == HERMES_OK)
        rc = hermes_call(fn, args.data, args.len, compute, arg, &v, &len);
    hermes_args_free(&args);
    hermes_free(v);
    return rc == HERMES_OK ? 0 : -1;
}

static void *slow_thread(void *arg)
{
    call(arg, 0, slow, NULL);
    return NULL;
}

static int reg(hermes *h, const char *name, const char *const *tags,
               hermes_fn **fn)
{
    hermes_fn_options o = HERMES_FN_OPTIONS(.tags = tags, .ttl = 600);
    if (hermes_fn_register(h, name, &o, fn) != HERMES_OK) {
        fprintf(stderr, "writer: register %s: %s\n", name, hermes_errmsg(h));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    hermes *h;
    hermes_fn *profile, *feed, *other, *slowfn;
    if (argc != 3) {
        fprintf(stderr, "usage: writer CONFIG READY_FILE\n");
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (hermes_open(&h, argv[1]) != HERMES_OK) {
        fprintf(stderr, "writer: %s\n", hermes_errmsg(h));
        hermes_close(h);
        return 1;
    }
    if (reg(h, "profile", alpha, &profile) ||
        reg(h, "feed", alpha_beta, &feed) || reg(h, "other", gamma_, &other) ||
        reg(h, "slow", gamma_, &slowfn))
        return 1;
    size_t n100 = 100, n200 = 200, n50 = 50;
    for (int64_t i = 1; i <= 4; i++)
        if (call(profile, i, fill, &n100))
            return 1;
    for (int64_t i = 1; i <= 3; i++)
        if (call(feed, i, fill, &n200))
            return 1;
    for (int64_t i = 1; i <= 2; i++)
        if (call(other, i, fill, &n50))
            return 1;
    pthread_t t;
    if (pthread_create(&t, NULL, slow_thread, slowfn) != 0)
        return 1;
    pthread_mutex_lock(&mu);
    while (!slow_started)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);

    FILE *f = fopen(argv[2], "w");
    if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0) {
        perror(argv[2]);
        return 1;
    }
    /* Reads keep the counters published (publication rides on calls). */
    const char *const none[] = {NULL};
    struct timespec tick = {0, 100 * 1000000};
    while (!stop) {
        void *v = NULL;
        size_t len;
        if (hermes_get(h, "heartbeat", none, &v, &len) == HERMES_OK)
            hermes_free(v);
        nanosleep(&tick, NULL);
    }
    pthread_mutex_lock(&mu);
    slow_stop = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    pthread_join(t, NULL);
    hermes_close(h);
    return 0;
}
