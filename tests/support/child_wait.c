/* Bounded waits for a test's fork child (child_wait.h). */
#include "child_wait.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cw_print_stacks(const char *who, pid_t pid)
{
    char pidtext[24];
    snprintf(pidtext, sizeof pidtext, "%d", (int)pid);
    char *argv[] = {
        "gdb", "-nx", "-batch", "-p", pidtext, "-ex", "thread apply all bt",
        NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY,
                                     0);
    fprintf(stderr, "%s: the threads of process %d:\n", who, (int)pid);
    pid_t gdb;
    int rc = posix_spawnp(&gdb, "gdb", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    int status = 0;
    if (rc == 0 && waitpid(gdb, &status, 0) == gdb && WIFEXITED(status) &&
        WEXITSTATUS(status) != 127)
        return;
    fprintf(stderr, "%s: no stacks of process %d: gdb %s\n", who, (int)pid,
            rc ? strerror(rc) : "failed");
}

int cw_wait(const char *who, pid_t pid, int timeout_ms, int *status)
{
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        pid_t got = waitpid(pid, status, WNOHANG);
        if (got == pid)
            return 0;
        if (got < 0 && errno != EINTR) {
            fprintf(stderr, "%s: waitpid %d: %s\n", who, (int)pid,
                    strerror(errno));
            return -1;
        }
        if (mono_ms() >= deadline)
            break;
        struct timespec tick = {0, 1000000L}; /* polling, not a wait */
        nanosleep(&tick, NULL);
    }
    fprintf(stderr, "%s: child %d still running after %d ms: a hang\n", who,
            (int)pid, timeout_ms);
    cw_print_stacks(who, pid);
    kill(pid, SIGKILL);
    while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
    return -1;
}
