/*
 * A private redis-server for tests and benchmarks: started on a free
 * loopback port (and a unix socket in a private temporary directory),
 * without persistence, and stopped again by the test.  Nothing here talks
 * to a redis the developer may already run on 6379.
 *
 * The binary is $HERMES_REDIS_SERVER, or "redis-server" on PATH.  When it
 * is missing or does not come up, redis_server_start() says so on stderr
 * (with how to install it) and fails: a test must not pass silently
 * without a server.
 *
 * The server dies with the test process (PR_SET_PDEATHSIG), so a crashing
 * test leaves nothing behind; still, stop what you start.
 */
#ifndef HERMES_TEST_REDIS_SERVER_H
#define HERMES_TEST_REDIS_SERVER_H

#include <sys/types.h>

typedef struct redis_server {
    /* Optional, set before the first start: */
    const char *requirepass;   /* start with --requirepass <requirepass> */
    const char *extra_args[8]; /* more arguments, NULL-terminated
                                  (redis_cluster.h: --cluster-enabled) */

    /* Filled in by redis_server_start(); read-only for the caller: */
    pid_t pid;             /* the server process, 0 when not running;
                              tests may SIGSTOP/SIGCONT it */
    int port;              /* TCP port on 127.0.0.1, kept across restarts */
    char dir[64];          /* private temporary directory */
    char socket_path[128]; /* unix socket inside dir */
} redis_server;

/*
 * Start a server.  Zero-initialise *s (and set requirepass if wanted)
 * first.  Waits until it answers PING, for up to 5 s.  Returns 0, or -1
 * after explaining the failure on stderr.
 */
int redis_server_start(redis_server *s);

/* Start a server on the given port (the caller checked it is free, e.g.
 * with its cluster bus port); as redis_server_start() otherwise. */
int redis_server_start_port(redis_server *s, int port);

/* Stop it gracefully (SIGTERM, then wait) and remove its directory.  Safe
 * on a server that is not running. */
void redis_server_stop(redis_server *s);

/* Kill it at once (SIGKILL, then wait), as a crash would, keeping its port
 * and directory for redis_server_restart(). */
void redis_server_kill(redis_server *s);

/* Start it again on the same port (and socket path, unless it was
 * stopped with redis_server_stop()), stopping it first if it is still
 * running.  Returns 0 or -1 as redis_server_start(). */
int redis_server_restart(redis_server *s);

/* The calls of one command ("mget") in the text of INFO commandstats, 0
 * when absent. */
long long redis_info_calls(const char *info, const char *cmd);

/* The calls of every command in INFO commandstats except INFO, CONFIG (the
 * test's own) and REPLCONF (a replica's acknowledgements, once a second):
 * what the clients under test cost the server. */
long long redis_info_work_calls(const char *info);

#endif /* HERMES_TEST_REDIS_SERVER_H */
