/*
 * The memcached plugin's batched writes: the plain sets and the deletes of
 * one set() or del() go out as one pipelined request per server, over the
 * client's own connection to it (wire.h), every command before any reply
 * is read, so a batch costs one round trip however many servers and keys
 * it touches.  libmemcached sends one command and waits for its reply per
 * key, and its buffered mode drops the replies it reads behind the next
 * command, errors included; here each command's reply line ("STORED",
 * "DELETED", "NOT_FOUND", "SERVER_ERROR object too large for cache", ...)
 * is read in order and judged, and the server's own words are kept for
 * the failure's detail.
 *
 * Placement is libmemcached's (memcached_generate_hash on the client), so
 * a key is written to the server its reads go to.  The text commands used
 * (set, delete) are memcached's oldest, understood by every version.
 *
 * A server that failed (connect, send, or no reply within poll_timeout_ms)
 * is not tried again for retry_timeout_s: its commands fail at once with
 * HERMES_BE_IO while the others' go through.
 */
#ifndef HERMES_MEMCACHED_BATCH_H
#define HERMES_MEMCACHED_BATCH_H

#include "pool.h"

#include <time.h>

/* One command: a set of value (exp: memcached's expiration) or, with
 * value NULL, a delete. */
typedef struct mc_cmd {
    const char *key;
    size_t klen;
    const char *value;
    size_t vlen;
    time_t exp;
    int status; /* out: HERMES_BE_OK or the command's failure */
} mc_cmd;

typedef struct mc_batch_env {
    const hermes_host *host;
    uint32_t connect_ms, poll_ms, retry_s;
} mc_batch_env;

/*
 * Runs the n commands, each server's in array order, and sets every
 * status.  Returns the first failure (or HERMES_BE_OK), with why naming
 * the server and what it said; *sent counts the pipelined requests
 * written (one per server involved).
 */
int mc_batch_run(mc_client *cl, const mc_batch_env *env, mc_cmd *cmds, size_t n,
                 char *why, size_t whylen, unsigned *sent);

#endif /* HERMES_MEMCACHED_BATCH_H */
