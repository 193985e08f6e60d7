/*
 * Starts, joins, reshards and stops a private Redis Cluster for tests (see
 * redis_cluster.h).  Every wait polls a condition the nodes report
 * themselves (CLUSTER INFO, CLUSTER SLOTS, INFO replication).
 */
#include "redis_cluster.h"
#include "server_proc.h"

#include <hiredis/hiredis.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

static const char install_hint[] =
    "install it (Debian/Ubuntu: apt-get install redis-server, which brings "
    "redis-cli) or point HERMES_REDIS_CLI at the binary";

/* A port whose cluster bus port (+10000) is free too. */
static int cluster_port(void)
{
    for (int attempt = 0; attempt < 200; attempt++) {
        unsigned r = 0;

        if (getrandom(&r, sizeof r, 0) != sizeof r)
            r = (unsigned)rand();
        int port = 20000 + (int)(r % 25000);
        if (sp_port_free(port) && sp_port_free(port + 10000))
            return port;
    }
    return -1;
}

redisContext *redis_cluster_connect(const redis_cluster *c, int i)
{
    struct timeval tv = {1, 0};
    redisContext *r = redisConnectWithTimeout("127.0.0.1", c->node[i].port, tv);

    if (r && !r->err && redisSetTimeout(r, tv) == REDIS_OK)
        return r;
    if (r)
        redisFree(r);
    return NULL;
}

/* The text reply of a command on node i (malloc'ed), or NULL. */
static char *text_of(const redis_cluster *c, int i, const char *cmd)
{
    redisContext *r = redis_cluster_connect(c, i);
    redisReply *rep;
    char *out = NULL;

    if (!r)
        return NULL;
    rep = redisCommand(r, cmd);
    if (rep &&
        (rep->type == REDIS_REPLY_STRING || rep->type == REDIS_REPLY_STATUS))
        out = strndup(rep->str, rep->len);
    if (rep)
        freeReplyObject(rep);
    redisFree(r);
    return out;
}

void redis_cluster_seeds(const redis_cluster *c, int count, char *buf,
                         size_t size)
{
    size_t off = 0;

    buf[0] = '\0';
    if (count <= 0 || count > c->n)
        count = c->n;
    for (int i = 0; i < count && off < size; i++) {
        int w = snprintf(buf + off, size - off, "%s127.0.0.1:%d", i ? ", " : "",
                         c->node[i].port);
        if (w < 0)
            break;
        off += (size_t)w;
    }
}

int redis_cluster_is_master(redis_cluster *c, int i)
{
    char *t = text_of(c, i, "INFO replication");
    int m = t && strstr(t, "role:master") != NULL;

    free(t);
    return m;
}

/* A string fingerprint of node i's CLUSTER SLOTS: "start-end:port ...". */
static int slots_fingerprint(const redis_cluster *c, int i, char *buf,
                             size_t size)
{
    redisContext *r = redis_cluster_connect(c, i);
    redisReply *rep;
    size_t off = 0;
    int ok = 0;

    buf[0] = '\0';
    if (!r)
        return -1;
    rep = redisCommand(r, "CLUSTER SLOTS");
    if (rep && rep->type == REDIS_REPLY_ARRAY) {
        ok = 1;
        /* Ranges come in no fixed order: sort them by start, naively. */
        for (long long next = 0; next < 16384 && ok;) {
            size_t k;
            for (k = 0; k < rep->elements; k++)
                if (rep->element[k]->element[0]->integer == next)
                    break;
            if (k == rep->elements) {
                ok = 0;
                break;
            }
            redisReply *e = rep->element[k];
            int w = snprintf(buf + off, size - off, "%lld-%lld:%lld ", next,
                             e->element[1]->integer,
                             e->element[2]->element[1]->integer);
            if (w < 0 || (size_t)w >= size - off) {
                ok = 0;
                break;
            }
            off += (size_t)w;
            next = e->element[1]->integer + 1;
        }
    }
    if (rep)
        freeReplyObject(rep);
    redisFree(r);
    return ok ? 0 : -1;
}

/* A line of an INFO-style text ("name:value"), cut at its end, into buf. */
static const char *info_line(const char *text, const char *name, char *buf,
                             size_t size)
{
    const char *at = text ? strstr(text, name) : NULL;
    size_t n = 0;

    if (!at)
        return snprintf(buf, size, "%s?", name), buf;
    while (at[n] && at[n] != '\r' && at[n] != '\n')
        n++;
    snprintf(buf, size, "%.*s", (int)n, at);
    return buf;
}

/*
 * Every running node: state ok, all slots, the same map; replicas synced.
 * When not, why (cap bytes) names the first node that is not and what it
 * reports, for the message of a wait that ran out.
 */
static int all_ok(redis_cluster *c, char *why, size_t cap)
{
    char first[4096], fp[4096], a[64], b[64];
    int have_first = 0;

    for (int i = 0; i < c->n; i++) {
        if (c->node[i].pid <= 0)
            continue;
        char *info = text_of(c, i, "CLUSTER INFO");
        int ok = info && strstr(info, "cluster_state:ok") &&
                 strstr(info, "cluster_slots_assigned:16384");
        if (!ok)
            snprintf(why, cap, "node %d (port %d): %s, %s", i, c->node[i].port,
                     info_line(info, "cluster_state:", a, sizeof a),
                     info_line(info, "cluster_slots_assigned:", b, sizeof b));
        free(info);
        if (!ok)
            return 0;
        char *repl = text_of(c, i, "INFO replication");
        ok = repl && (strstr(repl, "role:master") ||
                      strstr(repl, "master_link_status:up"));
        if (!ok)
            snprintf(why, cap, "node %d (port %d): %s, %s", i, c->node[i].port,
                     info_line(repl, "role:", a, sizeof a),
                     info_line(repl, "master_link_status:", b, sizeof b));
        free(repl);
        if (!ok)
            return 0;
        if (slots_fingerprint(c, i, have_first ? fp : first, sizeof first) !=
            0) {
            snprintf(why, cap, "node %d (port %d): no full CLUSTER SLOTS", i,
                     c->node[i].port);
            return 0;
        }
        if (have_first && strcmp(first, fp) != 0) {
            snprintf(why, cap,
                     "node %d (port %d) maps the slots as '%.900s', the "
                     "first running node as '%.900s'",
                     i, c->node[i].port, fp, first);
            return 0;
        }
        have_first = 1;
    }
    if (!have_first)
        snprintf(why, cap, "no node running");
    return have_first;
}

int redis_cluster_wait_ok(redis_cluster *c, int timeout_ms)
{
    long long until = sp_mono_ms() + timeout_ms;
    char why[2048] = "";

    while (!all_ok(c, why, sizeof why)) {
        if (sp_mono_ms() > until) {
            fprintf(stderr, "redis_cluster: not ok within %d ms: %s\n",
                    timeout_ms, why);
            return -1;
        }
        sp_sleep_ms(20);
    }
    return 0;
}

static const char *cli_binary(void)
{
    const char *p = getenv("HERMES_REDIS_CLI");

    return (p && *p) ? p : "redis-cli";
}

/* Runs redis-cli --cluster create, its output into the first node's
 * directory; 0 when it exits 0. */
static int create(redis_cluster *c)
{
    char ports[REDIS_CLUSTER_MAX][32], reps[16], log[160];
    const char *argv[REDIS_CLUSTER_MAX + 8];
    int argc = 0, status;
    pid_t pid;

    argv[argc++] = cli_binary();
    argv[argc++] = "--cluster";
    argv[argc++] = "create";
    for (int i = 0; i < c->n; i++) {
        snprintf(ports[i], sizeof ports[i], "127.0.0.1:%d", c->node[i].port);
        argv[argc++] = ports[i];
    }
    snprintf(reps, sizeof reps, "%d", c->replicas);
    argv[argc++] = "--cluster-replicas";
    argv[argc++] = reps;
    argv[argc++] = "--cluster-yes";
    argv[argc] = NULL;
    snprintf(log, sizeof log, "%s/create.log", c->node[0].dir);
    fflush(NULL);
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        unlink(log);
        return 0;
    }
    fprintf(stderr,
            "redis_cluster: ERROR: %s --cluster create failed "
            "(status %d); %s; its output:\n",
            argv[0], WIFEXITED(status) ? WEXITSTATUS(status) : -1,
            install_hint);
    FILE *f = fopen(log, "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f))
            fputs(line, stderr);
        fclose(f);
    }
    unlink(log);
    return -1;
}

int redis_cluster_start(redis_cluster *c)
{
    static const char *const base[] = {"--cluster-enabled",
                                       "yes",
                                       "--cluster-config-file",
                                       "nodes.conf",
                                       "--cluster-node-timeout",
                                       NULL, /* timeout_arg */
                                       NULL};

    c->n = c->masters * (1 + c->replicas);
    if (c->masters < 3 || c->n > REDIS_CLUSTER_MAX) {
        fprintf(stderr, "redis_cluster: 3 to %d nodes\n", REDIS_CLUSTER_MAX);
        return -1;
    }
    snprintf(c->timeout_arg, sizeof c->timeout_arg, "%d",
             c->node_timeout_ms > 0 ? c->node_timeout_ms : 1000);
    for (int i = 0; i < c->n; i++) {
        int port = cluster_port(), rc = -1;

        memset(&c->node[i], 0, sizeof c->node[i]);
        for (int k = 0; base[k] || k == 5; k++)
            c->node[i].extra_args[k] = k == 5 ? c->timeout_arg : base[k];
        for (int attempt = 0; attempt < 3 && port > 0 && rc != 0; attempt++) {
            rc = redis_server_start_port(&c->node[i], port);
            if (rc != 0)
                port = cluster_port();
        }
        if (rc != 0) {
            c->n = i;
            redis_cluster_stop(c);
            return -1;
        }
    }
    if (create(c) != 0 || redis_cluster_wait_ok(c, 30000) != 0) {
        redis_cluster_stop(c);
        return -1;
    }
    return 0;
}

void redis_cluster_stop(redis_cluster *c)
{
    for (int i = 0; i < c->n; i++)
        redis_server_stop(&c->node[i]);
    c->n = 0;
}

int redis_cluster_owner(redis_cluster *c, int ask, unsigned slot)
{
    redisContext *r = redis_cluster_connect(c, ask);
    redisReply *rep;
    int owner = -1;

    if (!r)
        return -1;
    rep = redisCommand(r, "CLUSTER SLOTS");
    for (size_t k = 0;
         rep && rep->type == REDIS_REPLY_ARRAY && k < rep->elements; k++) {
        redisReply *e = rep->element[k];
        if ((unsigned)e->element[0]->integer <= slot &&
            slot <= (unsigned)e->element[1]->integer)
            for (int i = 0; i < c->n; i++)
                if (c->node[i].port == e->element[2]->element[1]->integer)
                    owner = i;
    }
    if (rep)
        freeReplyObject(rep);
    redisFree(r);
    return owner;
}

/* Sends a command on node i; 0 when it did not answer an error. */
static int ok_on(redis_cluster *c, int i, const char *fmt, ...)
{
    redisContext *r = redis_cluster_connect(c, i);
    redisReply *rep;
    va_list ap;
    int ok;

    if (!r)
        return -1;
    va_start(ap, fmt);
    rep = redisvCommand(r, fmt, ap);
    va_end(ap);
    ok = rep && rep->type != REDIS_REPLY_ERROR;
    if (rep && !ok)
        fprintf(stderr, "redis_cluster: node %d: %s\n", i, rep->str);
    if (rep)
        freeReplyObject(rep);
    redisFree(r);
    return ok ? 0 : -1;
}

/* Does every running node map slot to node `to`? */
static int slot_agreed(redis_cluster *c, unsigned slot, int to)
{
    for (int i = 0; i < c->n; i++)
        if (c->node[i].pid > 0 && redis_cluster_owner(c, i, slot) != to)
            return 0;
    return 1;
}

int redis_cluster_move_slot(redis_cluster *c, unsigned slot, int to,
                            int per_step)
{
    int from = redis_cluster_owner(c, to, slot);
    char *from_id, *to_id;
    int rc = -1;

    if (from < 0)
        return -1;
    if (from == to)
        return 0;
    from_id = text_of(c, from, "CLUSTER MYID");
    to_id = text_of(c, to, "CLUSTER MYID");
    if (!from_id || !to_id)
        goto out;
    if (ok_on(c, to, "CLUSTER SETSLOT %u IMPORTING %s", slot, from_id) ||
        ok_on(c, from, "CLUSTER SETSLOT %u MIGRATING %s", slot, to_id))
        goto out;
    for (;;) {
        redisContext *r = redis_cluster_connect(c, from);
        redisReply *keys;
        if (!r)
            goto out;
        keys = redisCommand(r, "CLUSTER GETKEYSINSLOT %u %d", slot, per_step);
        if (!keys || keys->type != REDIS_REPLY_ARRAY) {
            if (keys)
                freeReplyObject(keys);
            redisFree(r);
            goto out;
        }
        size_t n = keys->elements;
        if (n > 0) {
            const char *argv[8 + 1000];
            size_t lens[8 + 1000];
            char port[16];
            int argc = 0;
            snprintf(port, sizeof port, "%d", c->node[to].port);
            argv[argc] = "MIGRATE", lens[argc++] = 7;
            argv[argc] = "127.0.0.1", lens[argc++] = 9;
            argv[argc] = port, lens[argc++] = strlen(port);
            argv[argc] = "", lens[argc++] = 0;
            argv[argc] = "0", lens[argc++] = 1;
            argv[argc] = "5000", lens[argc++] = 4;
            argv[argc] = "KEYS", lens[argc++] = 4;
            for (size_t k = 0; k < n && k < 1000; k++) {
                argv[argc] = keys->element[k]->str;
                lens[argc++] = keys->element[k]->len;
            }
            redisReply *m = redisCommandArgv(r, argc, argv, lens);
            int bad = !m || m->type == REDIS_REPLY_ERROR;
            if (bad)
                fprintf(stderr, "redis_cluster: MIGRATE: %s\n",
                        m ? m->str : r->errstr);
            if (m)
                freeReplyObject(m);
            if (bad) {
                freeReplyObject(keys);
                redisFree(r);
                goto out;
            }
        }
        freeReplyObject(keys);
        redisFree(r);
        if (n == 0)
            break;
    }
    /* The new owner first, then the old one, then every other master. */
    if (ok_on(c, to, "CLUSTER SETSLOT %u NODE %s", slot, to_id) ||
        ok_on(c, from, "CLUSTER SETSLOT %u NODE %s", slot, to_id))
        goto out;
    for (int i = 0; i < c->n; i++)
        if (i != to && i != from && c->node[i].pid > 0 &&
            redis_cluster_is_master(c, i))
            ok_on(c, i, "CLUSTER SETSLOT %u NODE %s", slot, to_id);
    /* Gossip settles a slot's owner by config epoch: after moves back to
     * back, the old owner's claim can win over the new one's.  Until
     * every running node maps the slot to `to`, the new owner claims it
     * again, with an epoch above all (CLUSTER BUMPEPOCH), each second
     * that gossip alone did not settle it. */
    long long until = sp_mono_ms() + 10000, claim_at = sp_mono_ms() + 1000;
    while (!slot_agreed(c, slot, to)) {
        if (sp_mono_ms() < claim_at) {
            sp_sleep_ms(20);
            continue;
        }
        claim_at = sp_mono_ms() + 1000;
        if (sp_mono_ms() > until) {
            fprintf(stderr,
                    "redis_cluster: slot %u: the nodes do not agree that "
                    "node %d owns it after 10 s\n",
                    slot, to);
            goto out;
        }
        ok_on(c, to, "CLUSTER BUMPEPOCH");
        ok_on(c, to, "CLUSTER SETSLOT %u NODE %s", slot, to_id);
    }
    rc = 0;
out:
    if (rc != 0)
        fprintf(stderr,
                "redis_cluster: moving slot %u from node %d to %d "
                "failed\n",
                slot, from, to);
    free(from_id);
    free(to_id);
    return rc;
}
