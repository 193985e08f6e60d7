/*
 * hermes-conformance checks of a backend whose server goes away (run only
 * with --kill-cmd, and --restart-cmd for the second one): every operation
 * must fail with a status - not crash, not hang - and once the server is
 * back, operations must succeed again within seconds, without reopening
 * the plugin.  Each call runs on its own thread so that a hung call is
 * reported (and abandoned) instead of hanging the suite.
 */
#include "conformance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#define KEYCAP 256
#define OP_TIMEOUT_MS                                                          \
    10000 /* generous: a plugin's own timeouts are shorter                     \
           */
#define BACK_WITHIN_MS 5000

enum op {
    OP_GET,
    OP_SET,
    OP_SET_IF_ABSENT,
    OP_DEL,
    OP_LOCK,
    OP_UNLOCK,
    OP_FLUSH,
    OP_SCAN,
    OP_COUNT
};

static const char *const op_name[OP_COUNT] = {
    "get", "set", "set-if-absent", "del", "lock", "unlock", "flush", "scan"};

/* One call on its own thread.  Whoever of the caller and the thread
 * finishes last frees it, so an abandoned call can still complete. */
struct call {
    conf_ctx *c;
    enum op op;
    char key[KEYCAP];
    hermes_bytes k;
    int st;
    int done, abandoned;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static void ignore_value(void *arg, size_t index, const void *value, size_t len)
{
    (void)arg, (void)index, (void)value, (void)len;
}

static int ignore_scan(void *arg, const void *key, size_t klen,
                       const void *value, size_t vlen, int64_t ttl_ms)
{
    (void)arg, (void)key, (void)klen, (void)value, (void)vlen, (void)ttl_ms;
    return 0;
}

static void *call_thread(void *arg)
{
    struct call *k = arg;
    conf_ctx *c = k->c;
    hermes_bytes tok = conf_str("conformance-owner");
    hermes_item it = {k->k, conf_str("value"), 0,
                      k->op == OP_SET_IF_ABSENT ? HERMES_SET_IF_ABSENT : 0};
    int flag, st = HERMES_BE_OK;

    switch (k->op) {
    case OP_GET:
        st = conf_get(c, &k->k, 1, ignore_value, NULL);
        break;
    case OP_SET:
    case OP_SET_IF_ABSENT:
        st = conf_set(c, &it, 1, ignore_value, NULL);
        break;
    case OP_DEL:
        st = conf_del(c, &k->k, 1);
        break;
    case OP_LOCK:
        st = conf_lock(c, k->k, tok, 10000, &flag);
        break;
    case OP_UNLOCK:
        st = conf_unlock(c, k->k, tok, &flag);
        break;
    case OP_FLUSH:
        st = conf_flush(c, k->k);
        break;
    case OP_SCAN:
        st = conf_scan(c, k->k, ignore_scan, NULL);
        break;
    case OP_COUNT:
        break;
    }
    pthread_mutex_lock(&k->mu);
    k->st = st;
    k->done = 1;
    int abandoned = k->abandoned;

    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
    if (abandoned) {
        pthread_mutex_destroy(&k->mu);
        pthread_cond_destroy(&k->cv);
        free(k);
    }
    return NULL;
}

/*
 * Runs op on key (under the run prefix) for at most timeout_ms.  Returns 0
 * with the status in *st, or -1 when the call did not return in time: it
 * is then abandoned and c->hung is set, since close() must not be called
 * while a call is in flight.
 */
static int bounded(conf_ctx *c, enum op op, const char *key,
                   unsigned timeout_ms, int *st)
{
    struct call *k = conf_xmalloc(sizeof *k);
    pthread_t tid;
    struct timespec until;
    int rc = 0;

    memset(k, 0, sizeof *k);
    k->c = c;
    k->op = op;
    k->k = conf_key(c, k->key, sizeof k->key, "%s", key);
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->cv, NULL);
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    if (pthread_create(&tid, NULL, call_thread, k)) {
        fprintf(stderr, "hermes-conformance: cannot create a thread\n");
        exit(2);
    }
    pthread_detach(tid);
    pthread_mutex_lock(&k->mu);
    while (!k->done)
        if (pthread_cond_timedwait(&k->cv, &k->mu, &until) != 0)
            break;
    if (k->done) {
        *st = k->st;
    } else {
        k->abandoned = 1;
        c->hung = 1;
        rc = -1;
    }
    pthread_mutex_unlock(&k->mu);
    if (rc == 0) {
        pthread_mutex_destroy(&k->mu);
        pthread_cond_destroy(&k->cv);
        free(k);
    }
    return rc;
}

/* Runs an operator-supplied shell command; fails the check unless it
 * exits with status 0. */
static int run_cmd(conf_ctx *c, const char *opt, const char *cmd)
{
    fflush(NULL);
    int ws = system(cmd);

    if (ws == -1)
        return conf_fail(c, "%s: cannot run \"%s\"", opt, cmd);
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
        return conf_fail(c, "%s \"%s\" exited with status %d", opt, cmd,
                         WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws));
    return CONF_PASS;
}

int check_server_gone(conf_ctx *c)
{
    int st;

    /* First make sure the server works, or the check proves nothing. */
    if (bounded(c, OP_SET, "gone:before", OP_TIMEOUT_MS, &st) < 0)
        return conf_fail(c, "set did not return within %d s before the kill",
                         OP_TIMEOUT_MS / 1000);
    if (st != HERMES_BE_OK)
        return conf_fail(c, "set returned %s before --kill-cmd ran",
                         conf_status(st));
    if (run_cmd(c, "--kill-cmd", c->kill_cmd) != CONF_PASS)
        return CONF_FAIL;
    for (int op = 0; op < OP_COUNT; op++) {
        if (op == OP_SCAN && !(c->be->caps & HERMES_CAP_SCAN))
            continue;
        uint64_t t0 = conf_now_ms();

        if (bounded(c, (enum op)op, "gone:key", OP_TIMEOUT_MS, &st) < 0) {
            conf_fail(c, "%s did not return within %d s with the server gone",
                      op_name[op], OP_TIMEOUT_MS / 1000);
            continue;
        }
        conf_note(c, "%s -> %s in %llu ms", op_name[op], conf_status(st),
                  (unsigned long long)(conf_now_ms() - t0));
        if (st == HERMES_BE_OK)
            conf_fail(c, "%s returned OK with the server gone", op_name[op]);
    }
    return c->have_reason ? CONF_FAIL : CONF_PASS;
}

int check_server_back(conf_ctx *c)
{
    if (run_cmd(c, "--restart-cmd", c->restart_cmd) != CONF_PASS)
        return CONF_FAIL;
    uint64_t t0 = conf_now_ms(), deadline = t0 + BACK_WITHIN_MS;
    const char *failing = "set";
    int st = HERMES_BE_IO;

    /* Retry until one set and get of a fresh value both succeed. */
    for (int attempt = 0;; attempt++) {
        uint64_t now = conf_now_ms();

        if (now >= deadline)
            break;
        unsigned left = (unsigned)(deadline - now);

        if (bounded(c, OP_SET, "back:key", left, &st) < 0)
            return conf_fail(c,
                             "set did not return within %u ms after "
                             "--restart-cmd",
                             left);
        failing = "set";
        if (st == HERMES_BE_OK) {
            char kb[KEYCAP];
            hermes_bytes k = conf_key(c, kb, sizeof kb, "back:key");
            conf_got g;

            /* Unbounded, but the set just went through. */
            conf_got_init(&g, 1);
            st = conf_get(c, &k, 1, conf_got_cb, &g);
            int ok = st == HERMES_BE_OK && conf_got_is(&g, 0, "value", 5);

            conf_got_free(&g);
            failing = "get";
            if (ok) {
                conf_note(c,
                          "operations succeed %llu ms after the restart "
                          "(%d retries)",
                          (unsigned long long)(conf_now_ms() - t0), attempt);
                return CONF_PASS;
            }
        }
        conf_sleep_ms(50);
    }
    return conf_fail(c,
                     "operations still fail %d s after --restart-cmd "
                     "(last: %s returned %s)",
                     BACK_WITHIN_MS / 1000, failing,
                     st == HERMES_BE_OK ? "a wrong value" : conf_status(st));
}
