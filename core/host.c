/*
 * Host services: clocks, randomness and rate-limited logging, used by the
 * core and handed to plugins through struct hermes_host.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "internal.h"

/* At most this many log lines per second; the rest are counted and
 * summarized, so a dead backend cannot flood the log. */
#define HM_LOG_BURST 10

static _Atomic(const hm_test_host *) test_host;

void hm_test_host_set(const hm_test_host *t)
{
    atomic_store_explicit(&test_host, t, memory_order_release);
}

uint64_t hm_now_ms(void)
{
    const hm_test_host *t =
        atomic_load_explicit(&test_host, memory_order_acquire);
    if (t && t->now_ms)
        return t->now_ms(t->ctx);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t hm_now_ms_coarse(void)
{
    const hm_test_host *t =
        atomic_load_explicit(&test_host, memory_order_acquire);
    if (t && t->now_ms)
        return t->now_ms(t->ctx);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t hm_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int hm_random(void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Bumped in a forked child: a thread whose generator was seeded under an
 * older generation seeds again. */
static atomic_uint fork_generation;

void hm_host_forked(void)
{
    atomic_fetch_add_explicit(&fork_generation, 1, memory_order_relaxed);
}

typedef struct draw_state {
    bool seeded;
    unsigned generation;
    uint64_t s;
} draw_state;
static _Thread_local draw_state draw;

double hm_draw_unit(void)
{
    const hm_test_host *t =
        atomic_load_explicit(&test_host, memory_order_acquire);
    if (t && t->unit)
        return t->unit(t->ctx);
    unsigned g = atomic_load_explicit(&fork_generation, memory_order_relaxed);
    if (!draw.seeded || draw.generation != g) {
        if (hm_random(&draw.s, sizeof draw.s) != 0)
            draw.s ^= hm_monotonic_ns(); /* no secrecy needed, only spread */
        draw.seeded = true;
        draw.generation = g;
    }
    /* splitmix64 (Steele, Lea, Flood 2014): one add and a mix per draw. */
    uint64_t z = (draw.s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    z ^= z >> 31;
    /* The top 53 bits, plus one: (0, 1], never 0 (ln(0) is -inf). */
    return (double)((z >> 11) + 1) * 0x1p-53;
}

void hm_sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static const char *level_name(int level)
{
    switch (level) {
    case HERMES_LOG_ERROR:
        return "error";
    case HERMES_LOG_WARN:
        return "warning";
    case HERMES_LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

/* Where lines go: hermes_set_log's function, else stderr with log =
 * stderr, else nowhere. */
static bool log_wanted(const hermes *h, int level)
{
    return level <= h->cfg.log_level &&
           (h->cfg.log_stderr ||
            atomic_load_explicit(&h->logger.has_fn, memory_order_relaxed));
}

static void hm_log_msg(hermes *h, int level, const char *msg)
{
    uint64_t now = hm_now_ms() / 1000u;
    unsigned suppressed = 0;
    bool print;
    pthread_mutex_lock(&h->logger.mu);
    if (h->logger.window_ms != now) {
        suppressed = h->logger.suppressed;
        h->logger.window_ms = now;
        h->logger.used = 0;
        h->logger.suppressed = 0;
    }
    print = h->logger.used < HM_LOG_BURST;
    if (print)
        h->logger.used++;
    else
        h->logger.suppressed++;
    hermes_log_fn fn = h->logger.fn;
    void *arg = h->logger.arg;
    pthread_mutex_unlock(&h->logger.mu);
    /* The application's function runs with no lock of ours held. */
    char line[64];
    if (suppressed) {
        snprintf(line, sizeof line, "%u similar messages suppressed",
                 suppressed);
        if (fn)
            fn(arg, HERMES_LOG_WARN, line);
        else if (h->cfg.log_stderr)
            fprintf(stderr, "hermes: %s\n", line);
    }
    if (print) {
        if (fn)
            fn(arg, level, msg);
        else if (h->cfg.log_stderr)
            fprintf(stderr, "hermes: %s: %s\n", level_name(level), msg);
    }
}

void hm_log(hermes *h, int level, const char *fmt, ...)
{
    if (!log_wanted(h, level))
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    hm_log_msg(h, level, msg);
}

hermes_rc hermes_set_log(hermes *h, hermes_log_fn fn, void *arg)
{
    HM_ENTER(h);
    pthread_mutex_lock(&h->logger.mu);
    h->logger.fn = fn;
    h->logger.arg = fn ? arg : NULL;
    atomic_store(&h->logger.has_fn, fn != NULL);
    pthread_mutex_unlock(&h->logger.mu);
    return HERMES_OK;
}

static void host_log(void *ctx, int level, const char *msg)
{
    hermes *h = ctx;
    hm_log(h, level, "%s: %s", h->be ? h->be->name : "backend", msg);
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

/* ABI 1.1: the plugin's reason for the failure it is about to return. */
static void host_error_detail(void *ctx, const char *msg)
{
    hm_be_detail_set(msg);
}

void hm_host_init(hermes *h)
{
    h->host.struct_size = sizeof h->host;
    h->host.ctx = h;
    h->host.log = host_log;
    h->host.now_ms = host_now_ms;
    h->host.monotonic_ns = host_monotonic_ns;
    h->host.random = host_random;
    h->host.config_source = h->cfg.source;
    h->host.error_detail = host_error_detail;
}
