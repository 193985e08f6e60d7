/*
 * Redis Cluster routing (see cluster.h): seeds, the node table, the slot
 * map and its refresh from CLUSTER SLOTS, and the executor that sends a
 * batch to all of its nodes before reading any reply.
 */
#include "cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Longest host name accepted from the config or from a server. */
#define HOST_MAX 255

/* A CLUSTER SLOTS reply: one range per element (at most one per slot),
 * each [start, end, master, replicas...], a node [ip, port, id, {meta}]
 * (the metadata, redis 7, is an array in RESP2): four levels.  Its size
 * is bounded by what 16384 ranges of a few nodes take, and anything
 * larger is refused before it is allocated (pool.h, rpool_shape). */
static const rpool_shape slots_shape = {RSLOT_COUNT, 4, HOST_MAX + 1,
                                        16u << 20};

/* Commands of a batch up to this many run without allocating. */
#define SMALL_BATCH 16

/* ----------------------------------------------------------- logging */

void rcl_log(rcluster *cl, int level, const char *fmt, ...)
{
    char msg[512];
    int off;
    va_list ap;

    if (!cl->host || !cl->host->log)
        return;
    off = snprintf(msg, sizeof msg, "redis cluster: ");
    va_start(ap, fmt);
    vsnprintf(msg + off, sizeof msg - (size_t)off, fmt, ap);
    va_end(ap);
    cl->host->log(cl->host->ctx, level, msg);
    if (level <= HERMES_LOG_WARN && HERMES_HOST_HAS(cl->host, error_detail) &&
        cl->host->error_detail)
        cl->host->error_detail(cl->host->ctx, msg);
}

/* ------------------------------------------------------------- seeds */

/* Splits "host:port" or "[v6]:port" of length len; 0 or -1. */
static int split_endpoint(const char *s, size_t len, const char **host,
                          size_t *hlen, int *port)
{
    size_t colon, i;
    long v = 0;

    if (len > 0 && s[0] == '[') {
        for (i = 1; i < len && s[i] != ']'; i++)
            ;
        if (i >= len || i + 1 >= len || s[i + 1] != ':')
            return -1;
        *host = s + 1;
        *hlen = i - 1;
        colon = i + 1;
    } else {
        for (colon = len; colon > 0 && s[colon - 1] != ':'; colon--)
            ;
        if (colon == 0)
            return -1;
        colon--;
        *host = s;
        *hlen = colon;
    }
    if (*hlen == 0 || *hlen > HOST_MAX || colon + 1 >= len)
        return -1;
    for (i = colon + 1; i < len; i++) {
        if (s[i] < '0' || s[i] > '9' || v > 65535)
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > 65535)
        return -1;
    for (i = 0; i < *hlen; i++)
        if ((unsigned char)(*host)[i] <= ' ' || (*host)[i] == 0x7f ||
            (*host)[i] == ',')
            return -1;
    *port = (int)v;
    return 0;
}

void rcl_free_seeds(rcl_seed *seeds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(seeds[i].host);
}

int rcl_parse_seeds(const char *text, rcl_seed *seeds, size_t *n, char *why,
                    size_t why_size)
{
    const char *p = text ? text : "";

    *n = 0;
    for (;;) {
        const char *start, *end, *host;
        size_t hlen;
        int port;

        while (*p == ' ' || *p == '\t')
            p++;
        start = p;
        while (*p && *p != ',')
            p++;
        end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (end == start || split_endpoint(start, (size_t)(end - start), &host,
                                           &hlen, &port) != 0) {
            snprintf(why, why_size,
                     "'%.*s' is not host:port (a list of seed nodes, "
                     "comma-separated)",
                     (int)(end - start > 64 ? 64 : end - start), start);
            goto fail;
        }
        if (*n == RCL_MAX_SEEDS) {
            snprintf(why, why_size, "more than %d seed nodes", RCL_MAX_SEEDS);
            goto fail;
        }
        seeds[*n].host = strndup(host, hlen);
        if (!seeds[*n].host) {
            snprintf(why, why_size, "out of memory");
            goto fail;
        }
        seeds[*n].port = port;
        (*n)++;
        if (*p == '\0')
            return 0;
        p++; /* the comma */
    }
fail:
    rcl_free_seeds(seeds, *n);
    *n = 0;
    return -1;
}

/* -------------------------------------------------------------- nodes */

rcl_node *rcl_node_at(rcluster *cl, unsigned i)
{
    return i < RCL_MAX_NODES
               ? atomic_load_explicit(&cl->nodes[i], memory_order_acquire)
               : NULL;
}

unsigned rcl_node_count(rcluster *cl)
{
    return atomic_load_explicit(&cl->nnodes, memory_order_acquire);
}

static rcl_node *node_new(rcluster *cl, const char *host, size_t hlen, int port)
{
    rcl_node *nd = calloc(1, sizeof *nd);
    rpool_settings s = cl->base;

    if (!nd)
        return NULL;
    nd->host = strndup(host, hlen);
    nd->port = port;
    s.host = nd->host;
    s.port = port;
    if (!nd->host || rpool_init(&nd->pool, cl->host, &s) != HERMES_BE_OK) {
        free(nd->host);
        free(nd);
        return NULL;
    }
    return nd;
}

static void node_free(rcl_node *nd)
{
    rpool_destroy(&nd->pool);
    free(nd->host);
    free(nd);
}

static int node_is(const rcl_node *nd, const char *host, size_t hlen, int port)
{
    return nd->port == port && strlen(nd->host) == hlen &&
           memcmp(nd->host, host, hlen) == 0;
}

/*
 * The index of node host:port, added when new.  Lock-free: a new node is
 * published by a compare-and-swap into the first free entry, and the count
 * is moved on by whoever sees it lag.  RCL_NO_NODE when the table is full
 * or memory ran out.
 */
static uint16_t node_index(rcluster *cl, const char *host, size_t hlen,
                           int port)
{
    rcl_node *fresh = NULL;
    unsigned n, i;

    for (;;) {
        n = rcl_node_count(cl);
        for (i = 0; i < n; i++) {
            rcl_node *nd = rcl_node_at(cl, i);

            if (nd && node_is(nd, host, hlen, port)) {
                if (fresh)
                    node_free(fresh);
                return (uint16_t)i;
            }
        }
        if (n >= RCL_MAX_NODES) {
            if (fresh)
                node_free(fresh);
            rcl_log(cl, HERMES_LOG_ERROR,
                    "more than %d nodes seen: %.*s:%d not used", RCL_MAX_NODES,
                    (int)hlen, host, port);
            return RCL_NO_NODE;
        }
        if (rcl_node_at(cl, n)) { /* published, count not yet moved on */
            atomic_compare_exchange_strong(&cl->nnodes, &n, n + 1);
            continue;
        }
        if (!fresh && !(fresh = node_new(cl, host, hlen, port)))
            return RCL_NO_NODE;
        rcl_node *expected = NULL;
        if (atomic_compare_exchange_strong(&cl->nodes[n], &expected, fresh)) {
            atomic_compare_exchange_strong(&cl->nnodes, &n, n + 1);
            return (uint16_t)n;
        }
    }
}

int rcl_new(rcluster **out, const hermes_host *host, const rpool_settings *base,
            const rcl_seed *seeds, size_t nseeds)
{
    rcluster *cl = calloc(1, sizeof *cl);
    size_t i;

    if (!cl)
        return HERMES_BE_NOMEM;
    cl->host = host;
    cl->base = *base;
    cl->base.socket_path = NULL;
    cl->base.db = 0; /* a cluster has database 0 only */
    if (base->password && !(cl->password = strdup(base->password))) {
        free(cl);
        return HERMES_BE_NOMEM;
    }
    cl->base.password = cl->password;
    for (i = 0; i < RSLOT_COUNT; i++)
        atomic_init(&cl->owner[i], RCL_NO_NODE);
    for (i = 0; i < nseeds; i++)
        if (node_index(cl, seeds[i].host, strlen(seeds[i].host),
                       seeds[i].port) == RCL_NO_NODE) {
            rcl_free(cl);
            return HERMES_BE_NOMEM;
        }
    *out = cl;
    return HERMES_BE_OK;
}

void rcl_free(rcluster *cl)
{
    if (!cl)
        return;
    for (unsigned i = 0; i < RCL_MAX_NODES; i++) {
        rcl_node *nd = rcl_node_at(cl, i);

        if (nd)
            node_free(nd);
    }
    free(cl->password);
    free(cl);
}

/* ---------------------------------------------------------- slot map */

static uint16_t owner_of(rcluster *cl, uint16_t slot)
{
    return atomic_load_explicit(&cl->owner[slot], memory_order_acquire);
}

static int is_int(const redisReply *r, long long lo, long long hi)
{
    return r->type == REDIS_REPLY_INTEGER && r->integer >= lo &&
           r->integer <= hi;
}

/*
 * Checks one CLUSTER SLOTS range and returns its master's address: an
 * empty ip means "the node you asked" (asked_host).  -1 when malformed.
 */
static int range_master(const redisReply *e, const char *asked_host,
                        const char **host, size_t *hlen, int *port)
{
    const redisReply *m;

    if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
        !is_int(e->element[0], 0, RSLOT_COUNT - 1) ||
        !is_int(e->element[1], e->element[0]->integer, RSLOT_COUNT - 1))
        return -1;
    m = e->element[2];
    if (m->type != REDIS_REPLY_ARRAY || m->elements < 2 ||
        m->element[0]->type != REDIS_REPLY_STRING ||
        m->element[0]->len > HOST_MAX || !is_int(m->element[1], 1, 65535))
        return -1;
    *host = m->element[0]->str;
    *hlen = m->element[0]->len;
    if (*hlen == 0) {
        *host = asked_host;
        *hlen = strlen(asked_host);
    }
    for (size_t i = 0; i < *hlen; i++)
        if ((unsigned char)(*host)[i] <= ' ' || (*host)[i] == 0x7f)
            return -1;
    *port = (int)m->element[1]->integer;
    return 0;
}

/* Applies a CLUSTER SLOTS reply from node `asked`: checked whole first,
 * so a malformed reply changes nothing. */
static int apply_slots(rcluster *cl, const rcl_node *asked, const redisReply *r)
{
    const char *host;
    size_t hlen, i, covered = 0;
    int port;
    uint16_t *map;

    if (r->type != REDIS_REPLY_ARRAY)
        return -1;
    for (i = 0; i < r->elements; i++)
        if (range_master(r->element[i], asked->host, &host, &hlen, &port))
            return -1;
    if (r->elements == 0)
        return -1;
    map = malloc(RSLOT_COUNT * sizeof *map);
    if (!map)
        return -1;
    for (i = 0; i < RSLOT_COUNT; i++)
        map[i] = RCL_NO_NODE;
    for (i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        uint16_t idx;

        range_master(e, asked->host, &host, &hlen, &port);
        idx = node_index(cl, host, hlen, port);
        if (idx == RCL_NO_NODE) {
            free(map);
            return -1;
        }
        for (long long s = e->element[0]->integer; s <= e->element[1]->integer;
             s++)
            map[s] = idx;
    }
    for (i = 0; i < RSLOT_COUNT; i++) {
        covered += map[i] != RCL_NO_NODE;
        atomic_store_explicit(&cl->owner[i], map[i], memory_order_release);
    }
    free(map);
    if (covered < RSLOT_COUNT)
        rcl_log(cl, HERMES_LOG_WARN,
                "%zu of %u slots have no master: their keys fail open",
                RSLOT_COUNT - covered, RSLOT_COUNT);
    return 0;
}

/* Asks one node for the slot map; HERMES_BE_OK when it was applied. */
static int ask_slots(rcluster *cl, rcl_node *nd)
{
    const char *argv[2] = {"CLUSTER", "SLOTS"};
    size_t lens[2] = {7, 5};
    redisReply *r = NULL;
    rpool_conn *conn;
    int rc = rpool_take(&nd->pool, &conn);

    if (rc != HERMES_BE_OK)
        return rc;
    rc = rpool_append(&nd->pool, conn, 2, argv, lens);
    if (rc == HERMES_BE_OK)
        rc = rpool_read(&nd->pool, conn, 1, &r, &slots_shape, "CLUSTER SLOTS");
    rpool_put(&nd->pool, conn);
    if (rc != HERMES_BE_OK)
        return rc;
    if (apply_slots(cl, nd, r) != 0) {
        char q[128];

        atomic_fetch_add(&nd->pool.errors, 1);
        if (r->type == REDIS_REPLY_ERROR)
            rpool_log(&nd->pool, HERMES_LOG_ERROR, "CLUSTER SLOTS: %s",
                      rpool_quote(r->str, r->len, q, sizeof q));
        else
            rpool_log(&nd->pool, HERMES_LOG_ERROR,
                      "CLUSTER SLOTS: malformed or empty slot map");
        rc = HERMES_BE_PROTOCOL;
    }
    freeReplyObject(r);
    return rc;
}

/*
 * Waits while another thread's refresh runs, polling every 200 us: only
 * calls that know no node for their slot wait (the first calls of a
 * state), and a deadline instead of a lock means a fork child never waits
 * for a parent's thread that does not exist there for more than that
 * refresh's bound.
 */
static void wait_refresh(rcluster *cl, uint64_t now)
{
    struct timespec pause = {0, 200000};

    while (now < atomic_load(&cl->busy_until_ns)) {
        nanosleep(&pause, NULL);
        now = rpool_now_ns(&rcl_node_at(cl, 0)->pool);
    }
}

int rcl_refresh(rcluster *cl, int wait)
{
    uint64_t now = rpool_now_ns(&rcl_node_at(cl, 0)->pool);
    uint64_t at = atomic_load(&cl->refresh_at_ns);
    uint64_t budget =
        ((uint64_t)cl->base.connect_timeout_ms + cl->base.command_timeout_ms) *
        1000000u;
    unsigned n = rcl_node_count(cl), start, k;
    int rc = HERMES_BE_IO;

    /* One refresh at a time, at most one per RCL_REFRESH_MIN_MS.  The claim
     * is busy_until_ns itself, moved from a past time to the deadline of
     * this refresh, so that a caller finding the claim taken always finds
     * a deadline to wait for (with a separate claim, a waiter could look
     * between the two stores, see no refresh running and fail open with
     * no map).  Past that deadline, the bound below plus one more node's
     * timeouts, a waiter stops waiting even if the refresher never says it
     * is done, and another caller may claim it again (a fork child, say). */
    uint64_t busy = atomic_load(&cl->busy_until_ns);
    if (now < at || busy > now ||
        !atomic_compare_exchange_strong(&cl->busy_until_ns, &busy,
                                        now + 2 * budget)) {
        if (wait)
            wait_refresh(cl, now);
        return HERMES_BE_IO;
    }
    /* Another caller's refresh may have ended between our two reads. */
    if (now < atomic_load(&cl->refresh_at_ns)) {
        atomic_store(&cl->busy_until_ns, 0);
        return HERMES_BE_IO;
    }
    atomic_store(&cl->refresh_at_ns,
                 now + (uint64_t)RCL_REFRESH_MIN_MS * 1000000u);
    /* Start at another node each time, so that a dead one is not always
     * asked first; give up once one node's timeouts have passed. */
    start = atomic_fetch_add(&cl->next_asked, 1);
    for (k = 0; k < n; k++) {
        rcl_node *nd = rcl_node_at(cl, (start + k) % n);

        if (k > 0 && rpool_now_ns(&nd->pool) - now > budget)
            break;
        rc = ask_slots(cl, nd);
        if (rc == HERMES_BE_OK) {
            atomic_fetch_add(&cl->refreshes, 1);
            atomic_store(&cl->busy_until_ns, 0);
            return rc;
        }
    }
    atomic_store(&cl->busy_until_ns, 0);
    atomic_fetch_add(&cl->refresh_failures, 1);
    rcl_log(cl, HERMES_LOG_WARN,
            "no node answered CLUSTER SLOTS (asked %u of %u): slot map "
            "unchanged",
            k, n);
    return rc;
}

size_t rcl_masters(rcluster *cl, uint16_t *out)
{
    unsigned char seen[RCL_MAX_NODES] = {0};
    size_t n = 0;
    int refreshed = 0;

    for (;;) {
        for (unsigned s = 0; s < RSLOT_COUNT; s++) {
            uint16_t o = owner_of(cl, (uint16_t)s);

            if (o != RCL_NO_NODE && !seen[o]) {
                seen[o] = 1;
                out[n++] = o;
            }
        }
        if (n > 0 || refreshed)
            return n;
        rcl_refresh(cl, 1);
        refreshed = 1;
    }
}

/* ---------------------------------------------------------- executor */

#define PENDING (-1)

/* One node's part of a round. */
typedef struct part {
    uint16_t node;
    int rc;
    rpool_conn *conn;
    size_t nreplies; /* replies expected */
    size_t next;     /* its next reply in replies[] */
} part;

/* Parses "MOVED 3999 host:port" or "ASK ..." (after the word): the slot
 * and the node; RCL_NO_NODE when malformed.  An empty host is the node
 * that answered. */
static uint16_t redirect_target(rcluster *cl, const rcl_node *from,
                                const char *s, size_t len, uint16_t *slot)
{
    const char *host, *sp = memchr(s, ' ', len);
    size_t hlen;
    long v = 0;
    int port;

    if (!sp || sp == s)
        return RCL_NO_NODE;
    for (const char *p = s; p < sp; p++) {
        if (*p < '0' || *p > '9' || v >= (long)RSLOT_COUNT)
            return RCL_NO_NODE;
        v = v * 10 + (*p - '0');
    }
    if (v >= (long)RSLOT_COUNT)
        return RCL_NO_NODE;
    sp++;
    len -= (size_t)(sp - s);
    if (len > 0 && sp[0] == ':') { /* ":port": the same host */
        char buf[HOST_MAX + 16];
        int n = snprintf(buf, sizeof buf, "%s%.*s", from->host, (int)len, sp);

        if (n < 0 || (size_t)n >= sizeof buf ||
            split_endpoint(buf, (size_t)n, &host, &hlen, &port) != 0)
            return RCL_NO_NODE;
        *slot = (uint16_t)v;
        return node_index(cl, host, hlen, port);
    }
    if (split_endpoint(sp, len, &host, &hlen, &port) != 0)
        return RCL_NO_NODE;
    *slot = (uint16_t)v;
    return node_index(cl, host, hlen, port);
}

static int starts(const redisReply *r, const char *word)
{
    size_t n = strlen(word);

    return r->len > n && memcmp(r->str, word, n) == 0;
}

/*
 * Looks at one reply: a redirection sends the command again in the next
 * round (when there is one), TRYAGAIN and CLUSTERDOWN fail it, anything
 * else is its answer.  Sets *refresh when the map looks out of date.
 */
static void take_reply(rcluster *cl, rcl_cmd *c, redisReply *r, int last,
                       int *refresh)
{
    rcl_node *from = rcl_node_at(cl, c->node);
    uint16_t slot = c->slot, to;
    int moved;

    if (r->type != REDIS_REPLY_ERROR ||
        !(starts(r, "MOVED ") || starts(r, "ASK ") || starts(r, "TRYAGAIN") ||
          starts(r, "CLUSTERDOWN"))) {
        c->reply = r;
        c->status = HERMES_BE_OK;
        return;
    }
    if (starts(r, "TRYAGAIN") || starts(r, "CLUSTERDOWN")) {
        char q[128];

        atomic_fetch_add(
            starts(r, "TRYAGAIN") ? &cl->tryagain : &cl->clusterdown, 1);
        rpool_log(&from->pool, HERMES_LOG_WARN, "%.*s: %s", (int)c->lens[0],
                  c->argv[0], rpool_quote(r->str, r->len, q, sizeof q));
        *refresh |= starts(r, "CLUSTERDOWN");
        c->status = HERMES_BE_IO;
        freeReplyObject(r);
        return;
    }
    moved = starts(r, "MOVED ");
    atomic_fetch_add(moved ? &cl->moved : &cl->ask, 1);
    to = redirect_target(cl, from, r->str + (moved ? 6 : 4),
                         r->len - (moved ? 6 : 4), &slot);
    if (to == RCL_NO_NODE) {
        char q[128];

        rpool_log(&from->pool, HERMES_LOG_ERROR, "bad redirection: %s",
                  rpool_quote(r->str, r->len, q, sizeof q));
        c->status = HERMES_BE_PROTOCOL;
    } else if (last) {
        rpool_log(&from->pool, HERMES_LOG_WARN,
                  "redirected twice for slot %u: failing this call",
                  (unsigned)slot);
        c->status = HERMES_BE_IO;
    } else {
        c->to = to;
        c->asking = !moved;
    }
    if (moved && to != RCL_NO_NODE) {
        atomic_store_explicit(&cl->owner[slot], to, memory_order_release);
        *refresh = 1;
    }
    freeReplyObject(r);
}

/*
 * One round: the pending commands go to their nodes (c->to), all written
 * before any reply is read.  parts[] and replies[] have room for n parts
 * and 2n replies.
 */
static void round_trip(rcluster *cl, rcl_cmd *cmds, size_t n, part *parts,
                       uint16_t *pidx, redisReply **replies,
                       const rpool_shape *shape, const char *what, int last,
                       int *refresh)
{
    size_t np = 0, i, p, base;
    uint64_t deadline = 0;
    const char *asking_argv[1] = {"ASKING"};
    const size_t asking_len[1] = {6};

    for (i = 0; i < n; i++) {
        if (cmds[i].status != PENDING)
            continue;
        for (p = 0; p < np && parts[p].node != cmds[i].to; p++)
            ;
        if (p == np)
            parts[np++] = (part){cmds[i].to, HERMES_BE_OK, NULL, 0, 0};
        pidx[i] = (uint16_t)p;
        cmds[i].node = cmds[i].to;
        parts[p].nreplies += 1u + cmds[i].asking;
    }
    for (p = 0; p < np; p++) {
        rcl_node *nd = rcl_node_at(cl, parts[p].node);

        parts[p].rc = rpool_take(&nd->pool, &parts[p].conn);
        if (parts[p].rc != HERMES_BE_OK)
            parts[p].conn = NULL;
    }
    for (i = 0; i < n; i++) {
        part *pt = &parts[pidx[i]];
        rpool *pool = &rcl_node_at(cl, pt->node)->pool;

        if (cmds[i].status != PENDING || pt->rc != HERMES_BE_OK)
            continue;
        if (cmds[i].asking)
            pt->rc = rpool_append(pool, pt->conn, 1, asking_argv, asking_len);
        if (pt->rc == HERMES_BE_OK)
            pt->rc = rpool_append(pool, pt->conn, cmds[i].argc, cmds[i].argv,
                                  cmds[i].lens);
    }
    for (p = 0; p < np; p++) {
        rpool *pool = &rcl_node_at(cl, parts[p].node)->pool;

        if (parts[p].rc != HERMES_BE_OK)
            continue;
        if (!deadline)
            deadline = rpool_deadline(pool);
        parts[p].rc = rpool_send(pool, parts[p].conn, deadline, what);
    }
    /* Every node has its requests: now the replies, in any node's time. */
    for (p = 0, base = 0; p < np; base += parts[p].nreplies, p++) {
        rpool *pool = &rcl_node_at(cl, parts[p].node)->pool;

        if (parts[p].rc == HERMES_BE_OK)
            parts[p].rc =
                rpool_read_until(pool, parts[p].conn, parts[p].nreplies,
                                 replies + base, shape, what, deadline);
        if (parts[p].conn)
            rpool_put(pool, parts[p].conn);
        parts[p].next = base;
        if (parts[p].rc != HERMES_BE_OK)
            *refresh = 1; /* a node failed: maybe it is gone */
    }
    for (i = 0; i < n; i++) {
        part *pt = &parts[pidx[i]];

        if (cmds[i].status != PENDING)
            continue;
        if (pt->rc != HERMES_BE_OK) {
            cmds[i].status = pt->rc;
            continue;
        }
        if (cmds[i].asking)
            freeReplyObject(replies[pt->next++]);
        cmds[i].asking = 0;
        take_reply(cl, &cmds[i], replies[pt->next++], last, refresh);
    }
}

int rcl_run(rcluster *cl, rcl_cmd *cmds, size_t n, const rpool_shape *shape,
            const char *what)
{
    part small_parts[SMALL_BATCH];
    uint16_t small_pidx[SMALL_BATCH];
    redisReply *small_replies[2 * SMALL_BATCH];
    part *parts = small_parts;
    uint16_t *pidx = small_pidx;
    redisReply **replies = small_replies;
    int refresh = 0, refreshed = 0, rc = HERMES_BE_OK;
    size_t i, round, pending;

    if (n > SMALL_BATCH) {
        parts = malloc(n * sizeof *parts);
        pidx = malloc(n * sizeof *pidx);
        replies = malloc(2 * n * sizeof *replies);
        if (!parts || !pidx || !replies) {
            free(parts);
            free(pidx);
            free(replies);
            for (i = 0; i < n; i++) {
                cmds[i].reply = NULL;
                cmds[i].status = HERMES_BE_NOMEM;
            }
            return HERMES_BE_NOMEM;
        }
    }
    for (i = 0; i < n; i++) {
        cmds[i].reply = NULL;
        cmds[i].status = PENDING;
        cmds[i].node = cmds[i].to = RCL_NO_NODE;
        cmds[i].asking = 0;
    }
    for (round = 0; round < 2; round++) {
        for (i = 0, pending = 0; i < n; i++) {
            if (cmds[i].status != PENDING)
                continue;
            if (cmds[i].to == RCL_NO_NODE)
                cmds[i].to = owner_of(cl, cmds[i].slot);
            /* No map yet (the first call), or a slot nobody serves. */
            if (cmds[i].to == RCL_NO_NODE && !refreshed) {
                refreshed = 1;
                rcl_refresh(cl, 1);
                cmds[i].to = owner_of(cl, cmds[i].slot);
            }
            if (cmds[i].to == RCL_NO_NODE) {
                cmds[i].status = HERMES_BE_IO;
                rcl_log(cl, HERMES_LOG_WARN,
                        "slot %u has no known master: failing open",
                        (unsigned)cmds[i].slot);
                continue;
            }
            pending++;
        }
        if (pending == 0)
            break;
        round_trip(cl, cmds, n, parts, pidx, replies, shape, what, round == 1,
                   &refresh);
    }
    if (parts != small_parts) {
        free(parts);
        free(pidx);
        free(replies);
    }
    if (refresh && !refreshed)
        rcl_refresh(cl, 0);
    for (i = 0; i < n; i++) {
        if (cmds[i].status == PENDING)
            cmds[i].status = HERMES_BE_IO;
        if (cmds[i].status != HERMES_BE_OK && rc == HERMES_BE_OK)
            rc = cmds[i].status;
    }
    return rc;
}
