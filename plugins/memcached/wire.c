/*
 * The memcached plugin's own connections to one server (see wire.h).
 */
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int fail(mc_wire *w, const char *what, int err)
{
    snprintf(w->err, sizeof w->err, "%s: %s", what,
             err ? strerror(err) : "timed out");
    return -1;
}

/* Waits until fd is ready for events; 0, or -1 with w->err set. */
static int wait_fd(mc_wire *w, int fd, short events, uint32_t ms,
                   const char *what)
{
    struct pollfd p = {.fd = fd, .events = events};
    int n;

    do
        n = poll(&p, 1, (int)ms);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return fail(w, what, errno);
    if (n == 0)
        return fail(w, what, 0);
    return 0;
}

/* One non-blocking connect to addr, finished within ms. */
static int connect_one(mc_wire *w, const struct sockaddr *addr, socklen_t len,
                       int family, uint32_t ms)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int err = 0;
    socklen_t elen = sizeof err;

    if (fd < 0)
        return fail(w, "socket", errno);
    if (connect(fd, addr, len) != 0) {
        if (errno != EINPROGRESS) {
            fail(w, "connect", errno);
            close(fd);
            return -1;
        }
        if (wait_fd(w, fd, POLLOUT, ms, "connect") != 0 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err) {
            if (err)
                fail(w, "connect", err);
            close(fd);
            return -1;
        }
    }
    if (family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    w->fd = fd;
    return 0;
}

int wire_open(mc_wire *w, const char *host, unsigned port, uint32_t connect_ms,
              uint32_t poll_ms)
{
    w->fd = -1;
    w->poll_ms = poll_ms;
    w->err[0] = '\0';
    if (port == 0) {
        struct sockaddr_un un = {.sun_family = AF_UNIX};

        if (strlen(host) >= sizeof un.sun_path)
            return fail(w, "connect", ENAMETOOLONG);
        memcpy(un.sun_path, host, strlen(host) + 1);
        return connect_one(w, (struct sockaddr *)&un, sizeof un, AF_UNIX,
                           connect_ms);
    }

    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
    char pbuf[16];
    int rc;

    snprintf(pbuf, sizeof pbuf, "%u", port);
    if ((rc = getaddrinfo(host, pbuf, &hints, &res)) != 0) {
        snprintf(w->err, sizeof w->err, "resolve %.60s: %s", host,
                 gai_strerror(rc));
        return -1;
    }
    rc = -1;
    for (ai = res; ai && rc != 0; ai = ai->ai_next)
        rc = connect_one(w, ai->ai_addr, ai->ai_addrlen, ai->ai_family,
                         connect_ms);
    freeaddrinfo(res);
    return rc;
}

int wire_send(mc_wire *w, const void *p, size_t n)
{
    const char *c = p;

    while (n) {
        ssize_t k = send(w->fd, c, n, MSG_NOSIGNAL);

        if (k > 0) {
            c += k;
            n -= (size_t)k;
        } else if (k < 0 && errno == EINTR) {
            continue;
        } else if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (wait_fd(w, w->fd, POLLOUT, w->poll_ms, "send") != 0)
                return -1;
        } else {
            return fail(w, "send", k < 0 ? errno : EPIPE);
        }
    }
    return 0;
}

ssize_t wire_recv(mc_wire *w, void *buf, size_t n)
{
    for (;;) {
        ssize_t k = recv(w->fd, buf, n, 0);

        if (k >= 0)
            return k;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return fail(w, "recv", errno);
        if (wait_fd(w, w->fd, POLLIN, w->poll_ms, "recv") != 0)
            return -1;
    }
}

void wire_close(mc_wire *w)
{
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
}
