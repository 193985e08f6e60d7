/*
 * The memcached plugin's scan (HERMES_CAP_SCAN): every server of the pool
 * lists its keys with `lru_crawler metadump all` over a connection of our
 * own (wire.h; libmemcached has no such command), the reply is parsed by
 * metadump.c, and the keys under the prefix are read in batched multi-gets
 * through the pool, so each reported key comes with its value and TTL.
 *
 * memcached dumps keys only from 1.4.31 on, with its LRU crawler enabled
 * (the default since 1.5; `-o no_lru_crawler` turns it off) and dumps
 * allowed; elsewhere the scan returns HERMES_BE_UNSUPPORTED and says
 * which server refused and what it answered.  Other failures: a server
 * that cannot be reached or stops answering is HERMES_BE_IO, a crawler
 * busy with another dump (one at a time per server) HERMES_BE_IO too, an
 * error reply HERMES_BE_PROTOCOL.  The scan goes on with the other
 * servers and returns the first failure.
 *
 * Memory: each server's dump is read a line at a time in a fixed buffer;
 * at most SCAN_BATCH keys wait for their values, whose copies are kept
 * under SCAN_BUDGET bytes together (one value may be up to
 * max_value_bytes alone).  No lock and no pooled client is held while the
 * callback runs.  Keys the plugin stored hashed ("~h~...", keys memcached
 * cannot hold as they are) are not reported: their name is not
 * recoverable.
 */
#ifndef HERMES_MEMCACHED_SCAN_H
#define HERMES_MEMCACHED_SCAN_H

#include "pool.h"

#define SCAN_BATCH 64
#define SCAN_BUDGET (4u << 20)

typedef struct mc_scan_env {
    mcpool *pool;
    const hermes_host *host;
    uint32_t connect_ms, poll_ms;
    const char *skip_mark; /* keys starting with it are not reported */
    uint32_t ttl_pad_ms;   /* what the plugin adds to a TTL it stores */
} mc_scan_env;

/* Returns a hermes_be_status; on failure why says what went wrong,
 * naming the server. */
int mc_scan_pool(const mc_scan_env *env, hermes_bytes prefix, hermes_scan_cb cb,
                 void *arg, char *why, size_t whylen);

#endif /* HERMES_MEMCACHED_SCAN_H */
