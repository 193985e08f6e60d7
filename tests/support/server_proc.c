/*
 * Child server processes for tests (see server_proc.h).
 */
#include "server_proc.h"

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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *sp_binary(const char *env, const char *dflt)
{
    const char *p = getenv(env);

    return (p && *p) ? p : dflt;
}

int sp_binary_exists(const char *name)
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

/* Binds a TCP socket to 127.0.0.1:port (0: any) and returns the port it
 * got, or -1. */
static int bind_loopback(int port)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    int fd, got = -1;

    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &alen) == 0)
        got = ntohs(a.sin_port);
    close(fd);
    return got;
}

int sp_free_port(void)
{
    return bind_loopback(0);
}

int sp_port_free(int port)
{
    return port > 0 && bind_loopback(port) == port;
}

void sp_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

long long sp_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sp_log_mentions(const char *path, const char *text)
{
    char buf[8192];
    ssize_t n;
    int fd = open(path, O_RDONLY);

    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return strstr(buf, text) != NULL;
}

void sp_dump_log(const char *who, const char *path)
{
    char buf[2048];
    ssize_t n;
    off_t size;
    int fd = open(path, O_RDONLY);

    if (fd < 0)
        return;
    size = lseek(fd, 0, SEEK_END);
    lseek(fd, size > (off_t)sizeof buf ? size - (off_t)sizeof buf : 0,
          SEEK_SET);
    n = read(fd, buf, sizeof buf);
    close(fd);
    if (n > 0) {
        fprintf(stderr, "%s: end of %s:\n", who, path);
        fwrite(buf, 1, (size_t)n, stderr);
        fputc('\n', stderr);
    }
}

/* In the child: die with the test, even if it crashes before stopping
 * us; stdin and stdout on /dev/null, stderr where the launch says. */
static void exec_child(const sp_launch *l)
{
    int fd = open("/dev/null", O_RDWR);

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        if (fd > 2)
            close(fd);
    }
    if (l->stderr_path) {
        fd = open(l->stderr_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 2);
            close(fd);
        }
    }
    execvp(l->argv[0], (char *const *)l->argv);
    fprintf(stderr, "%s: cannot run %s: %s; %s\n", l->who, l->argv[0],
            strerror(errno), l->install_hint);
    _exit(127);
}

int sp_spawn(const sp_launch *l, pid_t *pid_out)
{
    int waited, status;
    pid_t pid;

    unlink(l->log_path);
    fflush(NULL); /* do not let the child inherit and flush our buffers */
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "%s: fork: %s\n", l->who, strerror(errno));
        return -1;
    }
    if (pid == 0)
        exec_child(l);
    *pid_out = pid;
    for (waited = 0; waited < l->timeout_ms; waited += 10) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
            *pid_out = 0;
            if (sp_log_mentions(l->log_path, l->port_taken))
                return 1;
            fprintf(stderr, "%s: %s exited at start (status %d) on port %d\n",
                    l->who, l->argv[0],
                    WIFEXITED(status) ? WEXITSTATUS(status) : -1, l->port);
            sp_dump_log(l->who, l->log_path);
            return -1;
        }
        if (l->answers(l->arg))
            return 0;
        sp_sleep_ms(10);
    }
    fprintf(stderr, "%s: %s did not answer on port %d within %d ms\n", l->who,
            l->argv[0], l->port, l->timeout_ms);
    sp_dump_log(l->who, l->log_path);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    *pid_out = 0;
    return -1;
}

void sp_terminate(pid_t *pid, int sig)
{
    if (*pid <= 0)
        return;
    kill(*pid, sig);
    kill(*pid, SIGCONT);
    while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
        ;
    *pid = 0;
}
