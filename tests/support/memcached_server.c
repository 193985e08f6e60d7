/*
 * Starts and stops private memcached processes for tests (see
 * memcached_server.h).  The server's stderr goes to a file, never to our
 * stdout, which belongs to the test harness.
 */
#include "memcached_server.h"
#include "server_proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define START_TIMEOUT_MS 5000

static const char install_hint[] =
    "install it (Debian/Ubuntu: apt-get install memcached) or point "
    "HERMES_MEMCACHED at the binary";

static int connect_to(const memcached_server *s, int timeout_ms)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)s->port);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends line + "\r\n" and reads until the reply ends with `end` (or, when
 * end is NULL, with one line).  Returns the reply's length, -1 on error. */
static long exchange(const memcached_server *s, const char *line,
                     const char *end, char *buf, size_t cap)
{
    char out[512];
    size_t got = 0;
    int n, fd = connect_to(s, 2000);

    if (fd < 0)
        return -1;
    n = snprintf(out, sizeof out, "%s\r\n", line);
    if (n <= 0 || (size_t)n >= sizeof out ||
        send(fd, out, (size_t)n, MSG_NOSIGNAL) != n) {
        close(fd);
        return -1;
    }
    while (got + 1 < cap) {
        ssize_t r = recv(fd, buf + got, cap - 1 - got, 0);

        if (r <= 0)
            break;
        got += (size_t)r;
        buf[got] = '\0';
        if (end ? (got >= strlen(end) &&
                   strcmp(buf + got - strlen(end), end) == 0)
                : strstr(buf, "\r\n") != NULL) {
            close(fd);
            return (long)got;
        }
    }
    close(fd);
    return -1;
}

int memcached_server_command(const memcached_server *s, const char *line,
                             char *buf, size_t cap)
{
    char reply[4096];

    if (exchange(s, line, NULL, reply, sizeof reply) < 0)
        return -1;
    reply[strcspn(reply, "\r\n")] = '\0';
    snprintf(buf, cap, "%s", reply);
    return 0;
}

long long memcached_server_stat(const memcached_server *s, const char *name)
{
    static char reply[16384]; /* a test's own thread; not reentrant */
    char pat[96];
    const char *p;

    if (exchange(s, "stats", "END\r\n", reply, sizeof reply) < 0)
        return -1;
    snprintf(pat, sizeof pat, "STAT %s ", name);
    p = strstr(reply, pat);
    if (!p)
        return -1;
    return strtoll(p + strlen(pat), NULL, 10);
}

static int answers(const void *arg)
{
    char buf[128];

    return memcached_server_command(arg, "version", buf, sizeof buf) == 0 &&
           strncmp(buf, "VERSION", 7) == 0;
}

/* One attempt on s->port: 0 when up, 1 when the port was taken, -1 on
 * any other failure. */
static int start_once(memcached_server *s, const char *bin)
{
    char port[16];
    const char *argv[24];
    int argc = 0;

    snprintf(port, sizeof port, "%d", s->port);
    argv[argc++] = bin;
    argv[argc++] = "-p";
    argv[argc++] = port;
    argv[argc++] = "-l";
    argv[argc++] = "127.0.0.1";
    argv[argc++] = "-U";
    argv[argc++] = "0";
    argv[argc++] = "-m";
    argv[argc++] = "64";
    argv[argc++] = "-t";
    argv[argc++] = "2";
    if (geteuid() == 0) { /* memcached refuses root without -u */
        argv[argc++] = "-u";
        argv[argc++] = "root";
    }
    for (int i = 0; s->extra_args && s->extra_args[i] && i < 8; i++)
        argv[argc++] = s->extra_args[i];
    argv[argc] = NULL;

    sp_launch l = {.who = "memcached_server",
                   .argv = argv,
                   .stderr_path = s->log,
                   .log_path = s->log,
                   .port_taken = "already in use",
                   .install_hint = install_hint,
                   .port = s->port,
                   .answers = answers,
                   .arg = s,
                   .timeout_ms = START_TIMEOUT_MS};
    return sp_spawn(&l, &s->pid);
}

static int start(memcached_server *s, int keep_port)
{
    const char *bin = sp_binary("HERMES_MEMCACHED", "memcached");

    if (!sp_binary_exists(bin)) {
        fprintf(stderr,
                "memcached_server: ERROR: no memcached binary \"%s\" found; "
                "the memcached tests need one: %s\n",
                bin, install_hint);
        return -1;
    }
    for (int attempt = 0; attempt < 5; attempt++) {
        int rc;

        if (!keep_port || s->port == 0)
            s->port = sp_free_port();
        if (s->port <= 0) {
            fprintf(stderr, "memcached_server: no free port: %s\n",
                    strerror(errno));
            return -1;
        }
        snprintf(s->log, sizeof s->log, "/tmp/hermes-memcached-%d.log",
                 s->port);
        rc = start_once(s, bin);
        if (rc == 0)
            return 0;
        if (rc < 0 || keep_port)
            break;
    }
    fprintf(stderr, "memcached_server: ERROR: could not start %s (%s)\n", bin,
            install_hint);
    return -1;
}

int memcached_server_start(memcached_server *s)
{
    return start(s, 0);
}

void memcached_server_stop(memcached_server *s)
{
    sp_terminate(&s->pid, SIGTERM);
    if (s->log[0])
        unlink(s->log);
}

void memcached_server_kill(memcached_server *s)
{
    sp_terminate(&s->pid, SIGKILL);
}

int memcached_server_restart(memcached_server *s)
{
    sp_terminate(&s->pid, SIGTERM);
    return start(s, 1);
}
