/*
 * The memcached plugin's scan (see scan.h).
 */
#include "scan.h"

#include "metadump.h"
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct pending {
    char key[MD_KEY_MAX];
    size_t klen;
    int64_t exp;
    char *value; /* the copy read for it, or NULL */
    size_t vlen;
    int state; /* 0 waiting, 1 read, 2 missing */
} pending;

typedef struct scan_ctx {
    const mc_scan_env *env;
    hermes_bytes prefix;
    hermes_scan_cb cb;
    void *arg;
    const char *server; /* "host:port", for messages */
    pending items[SCAN_BATCH];
    size_t n;
    int status;   /* of this server */
    int done;     /* END seen */
    int badclass; /* the server does not know the dump asked for */
    int busy;     /* its crawler runs another dump */
    int stopped;  /* the callback asked to stop */
    char why[256];
} scan_ctx;

static int scan_fail(scan_ctx *s, int status, const char *fmt, const char *a,
                     size_t alen)
{
    if (s->status == HERMES_BE_OK) {
        s->status = status;
        snprintf(s->why, sizeof s->why, fmt, s->server, (int)alen, a);
    }
    return 1;
}

/* The TTL left, without the padding the plugin added when it stored the
 * key (never more than what the key was given); 1 ms when less is left
 * of the padding alone. */
static int64_t ttl_of(const scan_ctx *s, int64_t exp)
{
    int64_t now, left;

    if (exp == MD_EXP_NEVER)
        return -1;
    if (exp == MD_EXP_UNKNOWN)
        return -2;
    now = (int64_t)s->env->host->now_ms(s->env->host->ctx);
    left = exp * 1000 - now - (int64_t)s->env->ttl_pad_ms;
    return left > 0 ? left : 1;
}

/* Reads the values of the waiting keys in one multi-get, within the
 * budget, then reports those read.  Keys whose values did not fit wait
 * for the next round; each round reads at least one. */
static int flush_pending(scan_ctx *s)
{
    const char *keys[SCAN_BATCH];
    size_t lens[SCAN_BATCH], used = 0;
    memcached_result_st res, *r;
    memcached_return_t rc, frc = MEMCACHED_SUCCESS;
    mc_client *cl;
    int st;

    if (s->n == 0)
        return 0;
    for (size_t i = 0; i < s->n; i++) {
        keys[i] = s->items[i].key;
        lens[i] = s->items[i].klen;
        s->items[i].state = 2;
    }
    if ((st = mcpool_take(s->env->pool, &cl)) != HERMES_BE_OK)
        return scan_fail(s, st, "%s: no pooled client came free%.*s", "", 0);
    rc = memcached_mget(cl->mc, keys, lens, s->n);
    memcached_result_create(cl->mc, &res);
    while ((r = memcached_fetch_result(cl->mc, &res, &frc)) != NULL) {
        const char *k = memcached_result_key_value(r);
        size_t kl = memcached_result_key_length(r), vl;

        for (size_t i = 0; i < s->n; i++) {
            pending *p = &s->items[i];

            if (p->state != 2 || p->klen != kl || memcmp(p->key, k, kl) != 0)
                continue;
            vl = memcached_result_length(r);
            if (used && used + vl > SCAN_BUDGET) {
                p->state = 0; /* next round */
                break;
            }
            p->value = malloc(vl ? vl : 1);
            if (!p->value) {
                p->state = 0;
                break;
            }
            memcpy(p->value, memcached_result_value(r), vl);
            p->vlen = vl;
            p->state = 1;
            used += vl;
            break;
        }
    }
    memcached_result_free(&res);
    if (rc == MEMCACHED_SUCCESS &&
        memcached_failed(memcached_last_error(cl->mc)))
        rc = memcached_last_error(cl->mc);
    if (rc != MEMCACHED_SUCCESS) {
        const char *m = memcached_last_error_message(cl->mc);
        scan_fail(s, HERMES_BE_IO, "%s: reading values: %.*s", m ? m : "",
                  m ? strlen(m) : 0);
    }
    mcpool_put(s->env->pool, cl, rc != MEMCACHED_SUCCESS);
    if (used == 0 && rc == MEMCACHED_SUCCESS)
        for (size_t i = 0; i < s->n; i++)
            if (s->items[i].state == 0)
                s->items[i].state = 2; /* out of memory: give up on it */

    /* Report, then keep only the keys that wait for the next round. */
    size_t keep = 0;
    for (size_t i = 0; i < s->n; i++) {
        pending *p = &s->items[i];

        if (p->state == 1) {
            if (!s->stopped && rc == MEMCACHED_SUCCESS &&
                s->cb(s->arg, p->key, p->klen, p->value, p->vlen,
                      ttl_of(s, p->exp)) != 0)
                s->stopped = 1;
            free(p->value);
            p->value = NULL;
        } else if (p->state == 0 && rc == MEMCACHED_SUCCESS) {
            if (keep != i)
                s->items[keep] = *p;
            keep++;
        }
    }
    s->n = keep;
    return s->stopped || s->status != HERMES_BE_OK;
}

static int on_line(void *arg, const char *line, size_t len)
{
    scan_ctx *s = arg;
    md_item it;
    size_t mark = strlen(s->env->skip_mark);

    switch (md_parse_line(line, len, &it)) {
    case MD_ITEM:
        if (it.klen < s->prefix.len ||
            (s->prefix.len && memcmp(it.key, s->prefix.data, s->prefix.len)) ||
            (it.klen >= mark && memcmp(it.key, s->env->skip_mark, mark) == 0))
            return 0;
        memcpy(s->items[s->n].key, it.key, it.klen);
        s->items[s->n].klen = it.klen;
        s->items[s->n].exp = it.exp;
        s->items[s->n].value = NULL;
        s->n++;
        while (s->n == SCAN_BATCH)
            if (flush_pending(s))
                return 1;
        return 0;
    case MD_END:
        s->done = 1;
        return 1;
    case MD_BADCLASS:
        s->badclass = 1;
        return 1;
    case MD_UNSUPPORTED:
        return scan_fail(s, HERMES_BE_UNSUPPORTED,
                         "%s refuses `lru_crawler metadump` (\"%.*s\"): "
                         "memcached 1.4.31 or later with its LRU crawler "
                         "lists keys",
                         line, len > 80 ? 80 : len);
    case MD_BUSY:
        s->busy = 1;
        return 1;
    case MD_FAILED:
        return scan_fail(s, HERMES_BE_PROTOCOL,
                         "%s answered `lru_crawler metadump` with \"%.*s\"",
                         line, len > 80 ? 80 : len);
    case MD_SKIP:
        break;
    }
    return 0;
}

/*
 * Dumps one server with cmd and reports its keys under the prefix.
 * Returns -1 when the server does not know that dump (BADCLASS), 1 when
 * its crawler was busy with another dump, 0 otherwise.
 */
static int dump_server(scan_ctx *s, const char *host, unsigned port,
                       const char *cmd)
{
    md_reader rd;
    mc_wire w;
    char buf[16384];

    s->badclass = 0;
    s->busy = 0;
    s->done = 0;
    if (wire_open(&w, host, port, s->env->connect_ms, s->env->poll_ms) != 0 ||
        wire_send(&w, cmd, strlen(cmd)) != 0) {
        scan_fail(s, HERMES_BE_IO, "%s: %.*s", w.err, strlen(w.err));
        wire_close(&w);
        return 0;
    }
    md_reader_init(&rd);
    while (!s->done && !s->badclass && !s->busy && !s->stopped &&
           s->status == HERMES_BE_OK) {
        ssize_t got = wire_recv(&w, buf, sizeof buf);
        const char *why = got ? w.err : "closed the connection before END";

        if (got <= 0) {
            scan_fail(s, HERMES_BE_IO, "%s: %.*s", why, strlen(why));
            break;
        }
        md_feed(&rd, buf, (size_t)got, on_line, s);
    }
    /* The keys of the last lines, even after a failure of the dump. */
    while (s->n && !s->stopped && flush_pending(s) == 0)
        ;
    for (size_t i = 0; i < s->n; i++)
        free(s->items[i].value);
    s->n = 0;
    wire_close(&w);
    return s->badclass ? -1 : s->busy;
}

/* Walking the hash table (memcached 1.6.9 and later) visits every item
 * once; walking the LRUs ("all") can miss items that move between them
 * while the crawler passes (a test saw one of 40 fresh keys missed), so
 * it is only the fallback. */
static void scan_server(scan_ctx *s, const char *host, unsigned port)
{
    const hermes_host *h = s->env->host;
    uint64_t until = h->monotonic_ns(h->ctx) + s->env->poll_ms * 1000000ull;
    const char *cmd = "lru_crawler metadump hash\r\n";

    for (;;) {
        int r = dump_server(s, host, port, cmd);

        if (r == -1 && strstr(cmd, "hash")) {
            cmd = "lru_crawler metadump all\r\n";
        } else if (r == -1) {
            scan_fail(s, HERMES_BE_PROTOCOL,
                      "%s refuses `lru_crawler metadump all` (BADCLASS)%.*s",
                      "", 0);
            return;
        } else if (r == 1) {
            /* One dump at a time per server: another client's, or the
             * rest of one whose reader went away (a scan stopped early),
             * which ends soon.  Wait for it up to poll_timeout_ms. */
            struct timespec pause = {0, 10 * 1000000L};

            if (h->monotonic_ns(h->ctx) >= until) {
                scan_fail(s, HERMES_BE_IO,
                          "%s: the LRU crawler stayed busy with another "
                          "dump%.*s",
                          "", 0);
                return;
            }
            nanosleep(&pause, NULL);
        } else {
            return;
        }
    }
}

typedef struct server_addr {
    char host[256];
    unsigned port; /* 0: a unix socket path */
} server_addr;

int mc_scan_pool(const mc_scan_env *env, hermes_bytes prefix, hermes_scan_cb cb,
                 void *arg, char *why, size_t whylen)
{
    server_addr *servers;
    uint32_t count;
    mc_client *cl;
    int first = HERMES_BE_OK, st;
    scan_ctx *s;

    why[0] = '\0';
    /* The servers' addresses, from a pooled client. */
    if ((st = mcpool_take(env->pool, &cl)) != HERMES_BE_OK) {
        snprintf(why, whylen, "no pooled client came free");
        return st;
    }
    count = memcached_server_count(cl->mc);
    servers = calloc(count ? count : 1, sizeof *servers);
    for (uint32_t i = 0; servers && i < count; i++) {
        const memcached_instance_st *in =
            memcached_server_instance_by_position(cl->mc, i);

        snprintf(servers[i].host, sizeof servers[i].host, "%s",
                 memcached_server_name(in));
        servers[i].port = strcmp(memcached_server_type(in), "SOCKET") == 0
                              ? 0
                              : memcached_server_port(in);
    }
    mcpool_put(env->pool, cl, 0);
    s = calloc(1, sizeof *s);
    if (!servers || !s) {
        free(servers);
        free(s);
        snprintf(why, whylen, "out of memory");
        return HERMES_BE_NOMEM;
    }
    for (uint32_t i = 0; i < count && !s->stopped; i++) {
        char name[300];

        if (servers[i].port)
            snprintf(name, sizeof name, "%s:%u", servers[i].host,
                     servers[i].port);
        else
            snprintf(name, sizeof name, "%s", servers[i].host);
        s->env = env;
        s->prefix = prefix;
        s->cb = cb;
        s->arg = arg;
        s->server = name;
        s->status = HERMES_BE_OK;
        scan_server(s, servers[i].host, servers[i].port);
        if (s->status != HERMES_BE_OK && first == HERMES_BE_OK) {
            first = s->status;
            snprintf(why, whylen, "%s", s->why);
        }
    }
    free(servers);
    free(s);
    return first;
}
