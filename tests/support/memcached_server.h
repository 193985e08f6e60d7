/*
 * Private memcached servers for tests and benchmarks: each started on a
 * free loopback port (TCP only, no UDP; memcached keeps nothing on disk),
 * and stopped again by the test.  Nothing here talks to a memcached the
 * developer may already run on 11211.
 *
 * The binary is $HERMES_MEMCACHED, or "memcached" on PATH.  When it is
 * missing or does not come up, memcached_server_start() says so on stderr
 * (with how to install it) and fails: a test must not pass silently
 * without a server.
 *
 * The server dies with the test process (PR_SET_PDEATHSIG), so a crashing
 * test leaves nothing behind; still, stop what you start.
 */
#ifndef HERMES_TEST_MEMCACHED_SERVER_H
#define HERMES_TEST_MEMCACHED_SERVER_H

#include <stdint.h>
#include <sys/types.h>

typedef struct memcached_server {
    /* Filled in by memcached_server_start(); read-only for the caller: */
    pid_t pid;    /* the server process, 0 when not running; tests may
                     SIGSTOP/SIGCONT it */
    int port;     /* TCP port on 127.0.0.1, kept across restarts */
    char log[64]; /* its stderr, for messages */
    /* Set by the caller before starting, or NULL: more arguments for
     * memcached (NULL-terminated, at most 8), e.g. "-o", "no_lru_crawler". */
    const char *const *extra_args;
} memcached_server;

/* Start a server (zero-initialise *s first).  Waits until it answers
 * "version", for up to 5 s.  Returns 0, or -1 after explaining the
 * failure on stderr. */
int memcached_server_start(memcached_server *s);

/* Stop it (SIGTERM, then wait).  Safe on a server that is not running. */
void memcached_server_stop(memcached_server *s);

/* Kill it at once (SIGKILL, then wait), as a crash would, keeping its
 * port for memcached_server_restart(). */
void memcached_server_kill(memcached_server *s);

/* Start it again, empty, on the same port.  Returns 0 or -1. */
int memcached_server_restart(memcached_server *s);

/* One counter of the server's own `stats` (cmd_get, get_hits,
 * curr_items, ...), read over a connection of its own.  Returns -1 when
 * the server does not answer within 2 s or has no such counter. */
long long memcached_server_stat(const memcached_server *s, const char *name);

/* Sends one raw command line (without "\r\n") and copies the reply's first
 * line into buf.  Returns 0, or -1 on no answer within 2 s. */
int memcached_server_command(const memcached_server *s, const char *line,
                             char *buf, size_t cap);

#endif /* HERMES_TEST_MEMCACHED_SERVER_H */
