/*
 * What the tests' private servers (redis_server.h, memcached_server.h,
 * redis_cluster.h) have in common: finding the binary, a free loopback
 * port, starting a child that dies with the test and waiting until it
 * answers, reading its log to explain a failure, and stopping it.
 *
 * Messages go to stderr, each starting with the caller's `who` (such as
 * "redis_server"), never to stdout, which belongs to the test harness.
 */
#ifndef HERMES_TEST_SERVER_PROC_H
#define HERMES_TEST_SERVER_PROC_H

#include <stddef.h>
#include <sys/types.h>

/* $env when set and not empty, else dflt. */
const char *sp_binary(const char *env, const char *dflt);

/* Is `name` something execvp() would run?  Checked before starting, so
 * that a missing binary gets a clear message instead of a timeout. */
int sp_binary_exists(const char *name);

/* A TCP port on 127.0.0.1 that nobody listens on right now (bind to port
 * 0 and ask), or -1.  It could be taken again before the server binds it:
 * sp_spawn() says when that happened, so that the caller can try again. */
int sp_free_port(void);

/* Can port be bound on 127.0.0.1 right now? */
int sp_port_free(int port);

/* Sleeps ms milliseconds, through signals. */
void sp_sleep_ms(long ms);

/* CLOCK_MONOTONIC in milliseconds. */
long long sp_mono_ms(void);

/* Does the file at path contain text in its first 8 KiB? */
int sp_log_mentions(const char *path, const char *text);

/* Copies the last 2 KiB of the file at path to stderr, after a line
 * naming it. */
void sp_dump_log(const char *who, const char *path);

/* How to start one server. */
typedef struct sp_launch {
    const char *who;          /* prefix of messages */
    const char *const *argv;  /* argv[0] is the binary; NULL-terminated */
    const char *stderr_path;  /* the child's stderr, or NULL: ours */
    const char *log_path;     /* where the server logs (may be stderr_path) */
    const char *port_taken;   /* what its log says when the port is taken */
    const char *install_hint; /* how to get the binary */
    int port;                 /* for messages */
    int (*answers)(const void *arg); /* 1 once the server serves */
    const void *arg;
    int timeout_ms; /* how long it may take to answer */
} sp_launch;

/*
 * Forks and execs l->argv (the child dies with the test process, its
 * stdin and stdout on /dev/null), then waits until l->answers() says yes.
 * Returns 0 with *pid set when it answers; 1 when it exited at start
 * because the port was taken (worth another port); -1 on anything else,
 * after saying why on stderr (with the end of its log) and killing it.
 */
int sp_spawn(const sp_launch *l, pid_t *pid);

/* Sends sig to *pid (then SIGCONT, since a test may have stopped it with
 * SIGSTOP and a stopped process never acts), waits for it and sets *pid
 * to 0.  Nothing when *pid is 0. */
void sp_terminate(pid_t *pid, int sig);

#endif /* HERMES_TEST_SERVER_PROC_H */
