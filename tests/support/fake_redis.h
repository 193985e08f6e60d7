/*
 * A fake redis server for tests of how the redis plugin survives broken or
 * hostile servers: a thread listening on a free loopback port that parses
 * the client's commands (RESP arrays of bulk strings) and lets the test
 * answer each one with whatever bytes it likes, including endless floods.
 *
 * It serves one connection at a time, in arrival order, which is all a
 * single-threaded test of the plugin needs.  Everything runs in the test's
 * process, so a flood can watch the process's own memory while it sends
 * (fake_redis_peak_rss()).
 */
#ifndef HERMES_TEST_FAKE_REDIS_H
#define HERMES_TEST_FAKE_REDIS_H

#include <stddef.h>
#include <stdint.h>

typedef struct fake_redis fake_redis;

/*
 * Answers one complete command (argv[0] is its name, e.g. "MGET"; the
 * arguments are binary-safe and NUL-terminated for convenience).  Write the
 * reply with fake_redis_send() or fake_redis_flood().  Return 0 to keep
 * the connection, non-zero to close it.  Runs on the server's thread.
 */
typedef int (*fake_redis_answer)(fake_redis *f, int fd, int argc, char **argv,
                                 const size_t *lens, void *arg);

/* Start listening; returns NULL after saying why on stderr. */
fake_redis *fake_redis_start(fake_redis_answer answer, void *arg);

/* The TCP port on 127.0.0.1. */
int fake_redis_port(const fake_redis *f);

/* Commands answered so far (all connections). */
uint64_t fake_redis_commands(const fake_redis *f);

/* Connections accepted so far. */
uint64_t fake_redis_connections(const fake_redis *f);

/* Stop the thread, close every socket and free f. */
void fake_redis_stop(fake_redis *f);

/* Send n bytes (never raises SIGPIPE).  Returns 0, or -1 once the client
 * has gone away. */
int fake_redis_send(int fd, const void *p, size_t n);

/*
 * Send unit again and again until the client closes the connection, the
 * server is stopped, or limit bytes were sent.  While flooding, samples the
 * process's resident memory (see fake_redis_peak_rss()).  Returns the bytes
 * sent.
 */
uint64_t fake_redis_flood(fake_redis *f, int fd, const char *unit,
                          size_t unit_len, uint64_t limit);

/* The highest resident set size (bytes) seen during floods, 0 before any. */
uint64_t fake_redis_peak_rss(const fake_redis *f);

/* Forget the peak, so that the next flood measures afresh. */
void fake_redis_reset_peak_rss(fake_redis *f);

/* The resident set size of this process now, in bytes. */
uint64_t fake_redis_rss_now(void);

#endif /* HERMES_TEST_FAKE_REDIS_H */
