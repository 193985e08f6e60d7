/*
 * The host (backend.h's struct hermes_host) that the plugin tests hand to
 * a plugin they open themselves: the real clocks and getrandom(), and the
 * test's own log function.  Header only: each test is one program.
 *
 *     static const hermes_host host = TEST_HOST(my_log);
 */
#ifndef HERMES_TEST_HOST_H
#define HERMES_TEST_HOST_H

#include <hermes/backend.h>

#include <stdint.h>
#include <sys/random.h>
#include <sys/types.h>
#include <time.h>

static inline uint64_t test_clock_ns(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t test_host_now_ms(void *ctx)
{
    (void)ctx;
    return test_clock_ns(CLOCK_REALTIME) / 1000000u;
}

static inline uint64_t test_host_monotonic_ns(void *ctx)
{
    (void)ctx;
    return test_clock_ns(CLOCK_MONOTONIC);
}

static inline int test_host_random(void *ctx, void *buf, size_t len)
{
    (void)ctx;
    return getrandom(buf, len, 0) == (ssize_t)len ? 0 : -1;
}

#define TEST_HOST(log_fn)                                                      \
    {                                                                          \
        .struct_size = sizeof(hermes_host), .log = (log_fn),                   \
        .now_ms = test_host_now_ms, .monotonic_ns = test_host_monotonic_ns,    \
        .random = test_host_random, .config_source = "<test>",                 \
    }

#endif /* HERMES_TEST_HOST_H */
