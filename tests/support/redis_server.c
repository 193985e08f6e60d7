/*
 * Starts and stops private redis-server processes for tests (see
 * redis_server.h).  The server's log goes to a file in its directory, never
 * to our stdout, which belongs to the test harness.
 */
#include "redis_server.h"

#include <hiredis/hiredis.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_TIMEOUT_MS 5000

static const char install_hint[] =
    "install it (Debian/Ubuntu: apt-get install redis-server) or point "
    "HERMES_REDIS_SERVER at the binary";

static const char *server_binary(void)
{
    const char *p = getenv("HERMES_REDIS_SERVER");

    return (p && *p) ? p : "redis-server";
}

/* Is `name` something execvp() would run?  Checked up front so that a
 * missing binary gets a clear message instead of a timeout. */
static int binary_exists(const char *name)
{
    const char *path, *p, *end;
    char buf[4096];

    if (strchr(name, '/'))
        return access(name, X_OK) == 0;
    path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (p = path;; p = end + 1) {
        end = strchr(p, ':');
        if (!end)
            end = p + strlen(p);
        if (snprintf(buf, sizeof buf, "%.*s/%s", (int)(end - p), p, name) <
                (int)sizeof buf &&
            access(buf, X_OK) == 0)
            return 1;
        if (*end == '\0')
            return 0;
    }
}

/* A port nobody listens on right now: bind to port 0 and ask.  The port
 * could be taken again before redis binds it; start() retries then. */
static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    int fd, port = -1;

    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &alen) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Does the server answer at all?  An error reply (NOAUTH) counts. */
static int answers_ping(const redis_server *s)
{
    struct timeval tv = {0, 200000};
    redisContext *c;
    redisReply *r;
    int ok = 0;

    c = redisConnectWithTimeout("127.0.0.1", s->port, tv);
    if (c && !c->err && redisSetTimeout(c, tv) == REDIS_OK) {
        r = redisCommand(c, "PING");
        ok = r != NULL;
        if (r)
            freeReplyObject(r);
    }
    if (c)
        redisFree(c);
    return ok;
}

static void log_path(const redis_server *s, char *buf, size_t size)
{
    snprintf(buf, size, "%s/redis.log", s->dir);
}

/* Copy the end of the server's log to stderr, to explain a failure. */
static void dump_log(const redis_server *s)
{
    char path[128], buf[2048];
    ssize_t n;
    off_t size;
    int fd;

    log_path(s, path, sizeof path);
    fd = open(path, O_RDONLY);
    if (fd < 0)
        return;
    size = lseek(fd, 0, SEEK_END);
    lseek(fd, size > (off_t)sizeof buf ? size - (off_t)sizeof buf : 0,
          SEEK_SET);
    n = read(fd, buf, sizeof buf);
    close(fd);
    if (n > 0) {
        fprintf(stderr, "redis_server: end of %s:\n", path);
        fwrite(buf, 1, (size_t)n, stderr);
        fputc('\n', stderr);
    }
}

static int log_mentions(const redis_server *s, const char *text)
{
    char path[128], buf[8192];
    ssize_t n;
    int fd;

    log_path(s, path, sizeof path);
    fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return strstr(buf, text) != NULL;
}

static void exec_server(const redis_server *s, const char *bin)
{
    char port[16], logfile[128];
    const char *argv[32];
    int argc = 0, fd;

    /* Die with the test, even if it crashes before stopping us. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        if (fd > 2)
            close(fd);
    }
    snprintf(port, sizeof port, "%d", s->port);
    log_path(s, logfile, sizeof logfile);
    argv[argc++] = bin;
    argv[argc++] = "--port";
    argv[argc++] = port;
    argv[argc++] = "--bind";
    argv[argc++] = "127.0.0.1";
    argv[argc++] = "--save";
    argv[argc++] = "";
    argv[argc++] = "--appendonly";
    argv[argc++] = "no";
    argv[argc++] = "--daemonize";
    argv[argc++] = "no";
    argv[argc++] = "--unixsocket";
    argv[argc++] = s->socket_path;
    argv[argc++] = "--unixsocketperm";
    argv[argc++] = "700";
    argv[argc++] = "--dir";
    argv[argc++] = s->dir;
    argv[argc++] = "--logfile";
    argv[argc++] = logfile;
    if (s->requirepass) {
        argv[argc++] = "--requirepass";
        argv[argc++] = s->requirepass;
    }
    for (int i = 0; i < 8 && s->extra_args[i]; i++)
        argv[argc++] = s->extra_args[i];
    argv[argc] = NULL;
    execvp(bin, (char *const *)argv);
    fprintf(stderr, "redis_server: cannot run %s: %s; %s\n", bin,
            strerror(errno), install_hint);
    _exit(127);
}

/* One attempt on s->port.  Returns 0 when up, 1 when the port was taken
 * (worth another port), -1 on any other failure. */
static int start_once(redis_server *s, const char *bin)
{
    char path[128];
    int waited, status;
    pid_t pid;

    log_path(s, path, sizeof path);
    unlink(path);
    fflush(NULL); /* do not let the child inherit and flush our buffers */
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "redis_server: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0)
        exec_server(s, bin);
    s->pid = pid;
    for (waited = 0; waited < START_TIMEOUT_MS; waited += 10) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
            s->pid = 0;
            if (log_mentions(s, "Address already in use"))
                return 1;
            fprintf(stderr,
                    "redis_server: %s exited at start (status %d) on port "
                    "%d\n",
                    bin, WIFEXITED(status) ? WEXITSTATUS(status) : -1, s->port);
            dump_log(s);
            return -1;
        }
        if (answers_ping(s))
            return 0;
        sleep_ms(10);
    }
    fprintf(stderr,
            "redis_server: %s did not answer PING on port %d within "
            "%d ms\n",
            bin, s->port, START_TIMEOUT_MS);
    dump_log(s);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    s->pid = 0;
    return -1;
}

static int start(redis_server *s, int keep_port)
{
    const char *bin = server_binary();
    int attempt, rc;

    if (!binary_exists(bin)) {
        fprintf(stderr,
                "redis_server: ERROR: no redis-server binary \"%s\" found; "
                "the redis tests need one: %s\n",
                bin, install_hint);
        return -1;
    }
    if (!s->dir[0]) {
        strcpy(s->dir, "/tmp/hermes-redis-XXXXXX");
        if (!mkdtemp(s->dir)) {
            fprintf(stderr, "redis_server: mkdtemp: %s\n", strerror(errno));
            s->dir[0] = '\0';
            return -1;
        }
        snprintf(s->socket_path, sizeof s->socket_path, "%s/redis.sock",
                 s->dir);
    }
    for (attempt = 0; attempt < 5; attempt++) {
        if (!keep_port || s->port == 0)
            s->port = free_port();
        if (s->port <= 0) {
            fprintf(stderr, "redis_server: no free port: %s\n",
                    strerror(errno));
            return -1;
        }
        rc = start_once(s, bin);
        if (rc == 0)
            return 0;
        if (rc < 0 || keep_port)
            break;
    }
    fprintf(stderr, "redis_server: ERROR: could not start %s (%s)\n", bin,
            install_hint);
    return -1;
}

int redis_server_start(redis_server *s)
{
    return start(s, 0);
}

int redis_server_start_port(redis_server *s, int port)
{
    s->port = port;
    return start(s, 1);
}

static void terminate(redis_server *s, int sig)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, sig);
    /* A test may have paused it with SIGSTOP; a stopped process would
     * never act on the signal and waitpid() would hang. */
    kill(s->pid, SIGCONT);
    while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    s->pid = 0;
}

void redis_server_stop(redis_server *s)
{
    char path[160];

    terminate(s, SIGTERM);
    if (s->dir[0]) {
        log_path(s, path, sizeof path);
        unlink(path);
        unlink(s->socket_path);
        snprintf(path, sizeof path, "%s/dump.rdb", s->dir);
        unlink(path);
        snprintf(path, sizeof path, "%s/nodes.conf", s->dir);
        unlink(path);
        rmdir(s->dir);
        s->dir[0] = '\0';
        s->socket_path[0] = '\0';
    }
}

void redis_server_kill(redis_server *s)
{
    terminate(s, SIGKILL);
}

int redis_server_restart(redis_server *s)
{
    terminate(s, SIGTERM);
    return start(s, 1);
}

long long redis_info_calls(const char *info, const char *cmd)
{
    char needle[64];
    const char *p;

    snprintf(needle, sizeof needle, "cmdstat_%s:calls=", cmd);
    p = strstr(info, needle);
    return p ? atoll(p + strlen(needle)) : 0;
}

long long redis_info_work_calls(const char *info)
{
    long long total = 0;

    for (const char *p = strstr(info, "cmdstat_"); p;
         p = strstr(p + 1, "cmdstat_")) {
        if (strncmp(p, "cmdstat_info:", 13) == 0 ||
            strncmp(p, "cmdstat_config", 14) == 0 ||
            strncmp(p, "cmdstat_replconf:", 17) == 0)
            continue;
        const char *c = strstr(p, "calls=");
        if (c)
            total += atoll(c + 6);
    }
    return total;
}
