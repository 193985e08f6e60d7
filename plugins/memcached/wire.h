/*
 * The memcached plugin's own connections to one server, for the commands
 * libmemcached does not speak (`lru_crawler metadump`, the meta commands
 * of batched writes).  Blocking calls bounded by the plugin's timeouts:
 * connect by connect_ms, every wait for the socket by poll_ms.  Writes use
 * MSG_NOSIGNAL, so a closed peer never raises SIGPIPE.  Errors are
 * described in the caller's buffer ("connect: Connection refused").
 */
#ifndef HERMES_MEMCACHED_WIRE_H
#define HERMES_MEMCACHED_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct mc_wire {
    int fd;
    uint32_t poll_ms;
    uint64_t retry_at_ns; /* batch.c: no new connection before (monotonic) */
    char err[128];        /* why the last call failed */
} mc_wire;

/* Connects to host:port, or to the unix socket path host when port is 0.
 * Returns 0, or -1 with w->err set (w->fd is then -1). */
int wire_open(mc_wire *w, const char *host, unsigned port, uint32_t connect_ms,
              uint32_t poll_ms);
/* Sends all n bytes; 0, or -1 with w->err set. */
int wire_send(mc_wire *w, const void *p, size_t n);
/* Reads what is there, up to n bytes, waiting at most poll_ms for it:
 * the count, 0 at end of stream, or -1 with w->err set. */
ssize_t wire_recv(mc_wire *w, void *buf, size_t n);
void wire_close(mc_wire *w);

#endif /* HERMES_MEMCACHED_WIRE_H */
