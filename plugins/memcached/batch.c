/*
 * The memcached plugin's batched writes (see batch.h).
 */
#include "batch.h"

#include "metadump.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The replies of one server's commands, read in order. */
typedef struct replies {
    mc_cmd *cmds;
    size_t *order; /* indexes into cmds of this server's commands */
    size_t n, next;
    int first;      /* the server's first failure */
    char said[256]; /* its words for it */
} replies;

static int judge(replies *r, const char *line, size_t len)
{
    mc_cmd *c = &r->cmds[r->order[r->next++]];
    int is_set = c->value != NULL;

#define IS(word) (len == sizeof word - 1 && memcmp(line, word, len) == 0)
    if ((is_set && IS("STORED")) ||
        (!is_set && (IS("DELETED") || IS("NOT_FOUND"))))
        c->status = HERMES_BE_OK;
    else if (len >= 29 &&
             memcmp(line, "SERVER_ERROR object too large", 29) == 0)
        c->status = HERMES_BE_TOOBIG;
    else
        c->status = HERMES_BE_PROTOCOL;
#undef IS
    if (c->status != HERMES_BE_OK && r->first == HERMES_BE_OK) {
        r->first = c->status;
        snprintf(r->said, sizeof r->said, "%.*s", (int)(len > 120 ? 120 : len),
                 line);
    }
    return 0;
}

static int on_reply(void *arg, const char *line, size_t len)
{
    replies *r = arg;

    if (len && line[len - 1] == '\r')
        len--;
    judge(r, line, len);
    return r->next == r->n;
}

/* Appends one command to a growing buffer; -1 when out of memory. */
static int append(char **buf, size_t *len, size_t *cap, const mc_cmd *c)
{
    char head[64];
    int hl;
    size_t need;

    if (c->value)
        hl = snprintf(head, sizeof head, " 0 %lld %zu\r\n", (long long)c->exp,
                      c->vlen);
    else
        hl = snprintf(head, sizeof head, "\r\n");
    need = 7 + c->klen + (size_t)hl + (c->value ? c->vlen + 2 : 0);
    if (*len + need > *cap) {
        size_t ncap = (*cap ? *cap * 2 : 4096);
        char *nb;

        while (ncap < *len + need)
            ncap *= 2;
        if (!(nb = realloc(*buf, ncap)))
            return -1;
        *buf = nb;
        *cap = ncap;
    }
    memcpy(*buf + *len, c->value ? "set " : "delete ", c->value ? 4 : 7);
    *len += c->value ? 4 : 7;
    memcpy(*buf + *len, c->key, c->klen);
    *len += c->klen;
    memcpy(*buf + *len, head, (size_t)hl);
    *len += (size_t)hl;
    if (c->value) {
        memcpy(*buf + *len, c->value, c->vlen);
        *len += c->vlen;
        memcpy(*buf + *len, "\r\n", 2);
        *len += 2;
    }
    return 0;
}

/* The client's connection to server i, opened when needed; NULL with why
 * set when the server is down or in its backoff. */
static mc_wire *wire_of(mc_client *cl, const mc_batch_env *env, uint32_t i,
                        char *why, size_t whylen)
{
    const memcached_instance_st *in =
        memcached_server_instance_by_position(cl->mc, i);
    const char *name = memcached_server_name(in);
    unsigned port = strcmp(memcached_server_type(in), "SOCKET") == 0
                        ? 0
                        : memcached_server_port(in);
    uint64_t now = env->host->monotonic_ns(env->host->ctx);
    mc_wire *w = &cl->wires[i];

    if (w->fd >= 0)
        return w;
    if (now < w->retry_at_ns) {
        snprintf(why, whylen, "%s:%u: failed, not retried for %u s", name, port,
                 env->retry_s);
        return NULL;
    }
    if (wire_open(w, name, port, env->connect_ms, env->poll_ms) != 0) {
        snprintf(why, whylen, "%s:%u: %s", name, port, w->err);
        w->retry_at_ns = now + env->retry_s * 1000000000ull;
        return NULL;
    }
    return w;
}

static void wire_failed(mc_wire *w, const mc_batch_env *env)
{
    wire_close(w);
    w->retry_at_ns =
        env->host->monotonic_ns(env->host->ctx) + env->retry_s * 1000000000ull;
}

int mc_batch_run(mc_client *cl, const mc_batch_env *env, mc_cmd *cmds, size_t n,
                 char *why, size_t whylen, unsigned *sent)
{
    uint32_t ns = memcached_server_count(cl->mc);
    uint32_t *srv = malloc(n * sizeof *srv);
    size_t *order = malloc(n * sizeof *order), *start, *count;
    int first = HERMES_BE_OK;
    replies *rep;

    why[0] = '\0';
    *sent = 0;
    start = calloc(ns + 1, sizeof *start);
    count = calloc(ns + 1, sizeof *count);
    rep = calloc(ns + 1, sizeof *rep);
    if (!cl->wires && ns) {
        cl->wires = calloc(ns, sizeof *cl->wires);
        if (cl->wires) {
            cl->nwires = ns;
            for (uint32_t i = 0; i < ns; i++)
                cl->wires[i].fd = -1;
        }
    }
    if (!srv || !order || !start || !count || !rep || !cl->wires || !ns) {
        free(srv);
        free(order);
        free(start);
        free(count);
        free(rep);
        snprintf(why, whylen, ns ? "out of memory" : "no server");
        return ns ? HERMES_BE_NOMEM : HERMES_BE_INVALID;
    }
    /* Each server's commands, in array order. */
    for (size_t i = 0; i < n; i++) {
        srv[i] = memcached_generate_hash(cl->mc, cmds[i].key, cmds[i].klen);
        if (srv[i] >= ns)
            srv[i] = 0;
        count[srv[i]]++;
        cmds[i].status = HERMES_BE_IO;
    }
    for (uint32_t s = 1; s < ns; s++)
        start[s] = start[s - 1] + count[s - 1];
    for (size_t i = 0; i < n; i++)
        order[start[srv[i]] + rep[srv[i]].n++] = i;

    /* Send every server its commands, then read every server's replies. */
    for (uint32_t s = 0; s < ns; s++) {
        replies *r = &rep[s];
        char *buf = NULL, msg[200];
        size_t len = 0, cap = 0;
        mc_wire *w;
        int ok = 1;

        r->cmds = cmds;
        r->order = order + start[s];
        r->first = HERMES_BE_OK;
        if (r->n == 0)
            continue;
        if (!(w = wire_of(cl, env, s, msg, sizeof msg))) {
            r->first = HERMES_BE_IO;
            snprintf(r->said, sizeof r->said, "%s", msg);
            r->n = 0; /* nothing to read */
            continue;
        }
        for (size_t k = 0; k < r->n && ok; k++)
            ok = append(&buf, &len, &cap, &cmds[r->order[k]]) == 0;
        if (!ok) {
            r->first = HERMES_BE_NOMEM;
            snprintf(r->said, sizeof r->said, "out of memory");
            r->n = 0;
        } else if (wire_send(w, buf, len) != 0) {
            r->first = HERMES_BE_IO;
            snprintf(r->said, sizeof r->said, "%s", w->err);
            wire_failed(w, env);
            r->n = 0;
        } else {
            (*sent)++;
        }
        free(buf);
    }
    for (uint32_t s = 0; s < ns; s++) {
        replies *r = &rep[s];
        mc_wire *w = &cl->wires[s];
        md_reader rd;
        char in[4096];

        md_reader_init(&rd);
        while (r->next < r->n) {
            ssize_t got = wire_recv(w, in, sizeof in);

            if (got <= 0) {
                snprintf(r->said, sizeof r->said, "%s",
                         got ? w->err : "closed the connection");
                r->first = HERMES_BE_IO;
                break;
            }
            /* Lines past the last reply are not read (a server that sends
             * them is confused); a line too long for a reply is skipped,
             * and the wait for the one missing ends in a timeout. */
            if (md_feed(&rd, in, (size_t)got, on_reply, r) != 0)
                break;
        }
        if (r->next < r->n)
            wire_failed(w, env); /* replies may still be owed */
        if (r->first != HERMES_BE_OK && first == HERMES_BE_OK) {
            const memcached_instance_st *in_ =
                memcached_server_instance_by_position(cl->mc, s);

            first = r->first;
            if (strstr(r->said, memcached_server_name(in_)))
                snprintf(why, whylen, "%s", r->said);
            else
                snprintf(why, whylen, "%s:%u: %s", memcached_server_name(in_),
                         (unsigned)memcached_server_port(in_), r->said);
        }
    }
    free(srv);
    free(order);
    free(start);
    free(count);
    free(rep);
    return first;
}
