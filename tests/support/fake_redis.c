/*
 * The fake redis server of fake_redis.h: one thread, blocking-free sockets
 * driven by poll() with a short timeout so that fake_redis_stop() is
 * noticed promptly, and a minimal RESP request parser.
 */
#include "fake_redis.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define POLL_MS 20
#define MAX_ARGS 64

struct fake_redis {
    fake_redis_answer answer;
    void *arg;
    int listen_fd;
    int port;
    pthread_t thread;
    atomic_int stop;
    atomic_uint_fast64_t commands;
    atomic_uint_fast64_t connections;
    atomic_uint_fast64_t peak_rss;
};

uint64_t fake_redis_rss_now(void)
{
    unsigned long long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    if (!f)
        return 0;
    if (fscanf(f, "%llu %llu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

int fake_redis_send(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

uint64_t fake_redis_flood(fake_redis *f, int fd, const char *unit,
                          size_t unit_len, uint64_t limit)
{
    char chunk[64 * 1024];
    size_t fill = 0;
    uint64_t sent = 0, next_sample = 0;

    while (fill + unit_len <= sizeof chunk) {
        memcpy(chunk + fill, unit, unit_len);
        fill += unit_len;
    }
    while (sent < limit && !atomic_load(&f->stop)) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};

        if (sent >= next_sample) {
            uint64_t rss = fake_redis_rss_now();

            if (rss > atomic_load(&f->peak_rss))
                atomic_store(&f->peak_rss, rss);
            next_sample = sent + 256 * 1024;
        }
        if (poll(&pfd, 1, POLL_MS) <= 0)
            continue;
        if (pfd.revents & (POLLERR | POLLHUP))
            break;
        ssize_t w = send(fd, chunk, fill, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (w <= 0)
            break;
        sent += (uint64_t)w;
    }
    return sent;
}

/*
 * Parses one complete "*N\r\n$L\r\n...\r\n" command at buf[0..len).
 * Returns the bytes it takes, 0 when incomplete, -1 when malformed.
 * argv[i] point into buf, NUL-terminated in place (over the \r).
 */
static long parse_command(char *buf, size_t len, int *argc, char **argv,
                          size_t *lens)
{
    char *p = buf, *end = buf + len, *nl;
    long n, i;

    if (len == 0)
        return 0;
    if (*p != '*')
        return -1;
    nl = memchr(p, '\n', len);
    if (!nl)
        return 0;
    n = strtol(p + 1, NULL, 10);
    if (n <= 0 || n > MAX_ARGS)
        return -1;
    p = nl + 1;
    for (i = 0; i < n; i++) {
        long l;

        if (p >= end)
            return 0;
        if (*p != '$')
            return -1;
        nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return 0;
        l = strtol(p + 1, NULL, 10);
        if (l < 0)
            return -1;
        p = nl + 1;
        if ((size_t)(end - p) < (size_t)l + 2)
            return 0;
        argv[i] = p;
        lens[i] = (size_t)l;
        p[l] = '\0';
        p += l + 2;
    }
    *argc = (int)n;
    return (long)(p - buf);
}

static void serve(fake_redis *f, int fd)
{
    size_t cap = 64 * 1024, used = 0;
    char *buf = malloc(cap);

    if (!buf)
        return;
    while (!atomic_load(&f->stop)) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        ssize_t r;

        if (poll(&pfd, 1, POLL_MS) <= 0)
            continue;
        if (used == cap) {
            char *bigger = realloc(buf, cap * 2);

            if (!bigger)
                break;
            buf = bigger;
            cap *= 2;
        }
        r = recv(fd, buf + used, cap - used, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        used += (size_t)r;
        for (;;) {
            char *argv[MAX_ARGS];
            size_t lens[MAX_ARGS];
            int argc = 0;
            long took = parse_command(buf, used, &argc, argv, lens);

            if (took < 0)
                goto done;
            if (took == 0)
                break;
            atomic_fetch_add(&f->commands, 1);
            if (f->answer(f, fd, argc, argv, lens, f->arg) != 0)
                goto done;
            memmove(buf, buf + took, used - (size_t)took);
            used -= (size_t)took;
        }
    }
done:
    free(buf);
}

static void *server_main(void *arg)
{
    fake_redis *f = arg;

    while (!atomic_load(&f->stop)) {
        struct pollfd pfd = {.fd = f->listen_fd, .events = POLLIN};
        int fd;

        if (poll(&pfd, 1, POLL_MS) <= 0)
            continue;
        fd = accept(f->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        atomic_fetch_add(&f->connections, 1);
        serve(f, fd);
        close(fd);
    }
    return NULL;
}

fake_redis *fake_redis_start(fake_redis_answer answer, void *arg)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    fake_redis *f = calloc(1, sizeof *f);
    int one = 1;

    if (!f)
        return NULL;
    f->answer = answer;
    f->arg = arg;
    atomic_init(&f->stop, 0);
    atomic_init(&f->commands, 0);
    atomic_init(&f->connections, 0);
    atomic_init(&f->peak_rss, 0);
    f->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (f->listen_fd < 0)
        goto fail;
    setsockopt(f->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(f->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(f->listen_fd, 16) != 0 ||
        getsockname(f->listen_fd, (struct sockaddr *)&a, &alen) != 0)
        goto fail;
    f->port = ntohs(a.sin_port);
    if (pthread_create(&f->thread, NULL, server_main, f) != 0)
        goto fail;
    return f;
fail:
    fprintf(stderr, "fake_redis: cannot listen on loopback: %s\n",
            strerror(errno));
    if (f->listen_fd >= 0)
        close(f->listen_fd);
    free(f);
    return NULL;
}

int fake_redis_port(const fake_redis *f)
{
    return f->port;
}

uint64_t fake_redis_commands(const fake_redis *f)
{
    return atomic_load(&((fake_redis *)f)->commands);
}

uint64_t fake_redis_connections(const fake_redis *f)
{
    return atomic_load(&((fake_redis *)f)->connections);
}

uint64_t fake_redis_peak_rss(const fake_redis *f)
{
    return atomic_load(&((fake_redis *)f)->peak_rss);
}

void fake_redis_reset_peak_rss(fake_redis *f)
{
    atomic_store(&f->peak_rss, 0);
}

void fake_redis_stop(fake_redis *f)
{
    if (!f)
        return;
    atomic_store(&f->stop, 1);
    pthread_join(f->thread, NULL);
    close(f->listen_fd);
    free(f);
}
