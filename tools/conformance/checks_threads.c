/*
 * hermes-conformance checks run from many threads at once: racing
 * set-if-absent creators agree on one winner, racing lockers get exactly
 * one lock, and a mixed workload on overlapping keys only ever reads back
 * values that were written, without errors.  Calls into a plugin without
 * HERMES_CAP_THREADSAFE are serialized by the wrappers, as the core does.
 */
#include "conformance.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEYCAP 256
#define NTHREADS 8

/* Runs fn(arg_i) on NTHREADS threads and waits for all of them. */
static void run_threads(void *(*fn)(void *), void *args, size_t argsize)
{
    pthread_t tid[NTHREADS];

    for (size_t i = 0; i < NTHREADS; i++)
        if (pthread_create(&tid[i], NULL, fn, (char *)args + i * argsize)) {
            fprintf(stderr, "hermes-conformance: cannot create a thread\n");
            exit(2);
        }
    for (size_t i = 0; i < NTHREADS; i++)
        pthread_join(tid[i], NULL);
}

/* ---------------------------------------------------- set-if-absent race */

enum { RACE_KEYS = 50 };

struct race {
    conf_ctx *c;
    pthread_barrier_t start; /* all threads hit each key together */
    char key[RACE_KEYS][KEYCAP];
    hermes_bytes keys[RACE_KEYS];
    char value[NTHREADS][32];
    int seen[NTHREADS][RACE_KEYS]; /* thread whose value was reported back;
                                      -1 none, -2 a value nobody wrote */
};

struct racer {
    struct race *r;
    int t;
};

/* The thread whose value v is, or -2. */
static int race_owner(const struct race *r, const void *v, size_t n)
{
    for (int t = 0; t < NTHREADS; t++)
        if (strlen(r->value[t]) == n && memcmp(r->value[t], v, n) == 0)
            return t;
    return -2;
}

static void *race_thread(void *arg)
{
    struct racer *me = arg;
    struct race *r = me->r;

    for (int k = 0; k < RACE_KEYS; k++) {
        hermes_item it = {r->keys[k], conf_str(r->value[me->t]), 0,
                          HERMES_SET_IF_ABSENT};
        conf_got g;

        conf_got_init(&g, 1);
        pthread_barrier_wait(&r->start);
        int st = conf_set(r->c, &it, 1, conf_got_cb, &g);

        if (st != HERMES_BE_OK)
            conf_fail(r->c, "thread %d, key %d: set-if-absent returned %s",
                      me->t, k, conf_status(st));
        else
            conf_got_check(r->c, &g, "set");
        r->seen[me->t][k] =
            g.slot[0].hits ? race_owner(r, g.slot[0].data, g.slot[0].len) : -1;
        conf_got_free(&g);
    }
    return NULL;
}

int check_set_if_absent_race(conf_ctx *c)
{
    struct race *r = conf_xmalloc(sizeof *r);
    struct racer racers[NTHREADS];
    int rc = CONF_PASS;

    memset(r, 0, sizeof *r);
    r->c = c;
    pthread_barrier_init(&r->start, NULL, NTHREADS);
    for (int k = 0; k < RACE_KEYS; k++)
        r->keys[k] = conf_key(c, r->key[k], KEYCAP, "race:%d", k);
    /* Distinct lengths as well as contents. */
    for (int t = 0; t < NTHREADS; t++) {
        snprintf(r->value[t], sizeof r->value[t], "racer-%d:%.*s", t, t,
                 "########");
        racers[t].r = r;
        racers[t].t = t;
    }
    run_threads(race_thread, racers, sizeof racers[0]);
    pthread_barrier_destroy(&r->start);

    for (int k = 0; k < RACE_KEYS && rc == CONF_PASS && !c->have_reason; k++) {
        int present, stored, differ = 0, first = -1;
        unsigned char *v;
        size_t len;

        if (conf_get1(c, r->keys[k], &present, &v, &len) != CONF_PASS) {
            rc = CONF_FAIL;
            break;
        }
        stored = present ? race_owner(r, v, len) : -1;
        free(v);
        if (stored < 0) {
            rc = conf_fail(c, "key %d holds %s after the race", k,
                           present ? "a value no thread wrote" : "nothing");
            break;
        }
        for (int t = 0; t < NTHREADS; t++)
            if (r->seen[t][k] != stored && differ++ == 0)
                first = t;
        if (differ)
            rc = conf_fail(c,
                           "%d of %d threads saw a different winner for "
                           "key %d (it holds racer-%d's value; thread %d "
                           "was told %s)",
                           differ, NTHREADS, k, stored, first,
                           r->seen[first][k] == -1 ? "nothing"
                           : r->seen[first][k] == -2
                               ? "a value nobody wrote"
                               : r->value[r->seen[first][k]]);
    }
    if (c->have_reason)
        rc = CONF_FAIL;
    free(r);
    return rc;
}

/* ------------------------------------------------------------ lock race */

enum { LOCK_KEYS = 20 };

struct lrace {
    conf_ctx *c;
    pthread_barrier_t start;
    char key[LOCK_KEYS][KEYCAP];
    hermes_bytes keys[LOCK_KEYS];
    int acquired[NTHREADS][LOCK_KEYS];
};

struct locker {
    struct lrace *r;
    int t;
};

static void *lock_thread(void *arg)
{
    struct locker *me = arg;
    struct lrace *r = me->r;
    char token[32];

    snprintf(token, sizeof token, "locker-%d", me->t);
    for (int k = 0; k < LOCK_KEYS; k++) {
        pthread_barrier_wait(&r->start);
        int st = conf_lock(r->c, r->keys[k], conf_str(token), 60000,
                           &r->acquired[me->t][k]);

        if (st != HERMES_BE_OK)
            conf_fail(r->c, "thread %d, key %d: lock returned %s", me->t, k,
                      conf_status(st));
    }
    return NULL;
}

int check_lock_race(conf_ctx *c)
{
    struct lrace *r = conf_xmalloc(sizeof *r);
    struct locker lockers[NTHREADS];
    int rc = CONF_PASS;

    memset(r, 0, sizeof *r);
    r->c = c;
    pthread_barrier_init(&r->start, NULL, NTHREADS);
    for (int k = 0; k < LOCK_KEYS; k++)
        r->keys[k] = conf_key(c, r->key[k], KEYCAP, "lockrace:%d", k);
    for (int t = 0; t < NTHREADS; t++) {
        lockers[t].r = r;
        lockers[t].t = t;
    }
    run_threads(lock_thread, lockers, sizeof lockers[0]);
    pthread_barrier_destroy(&r->start);
    for (int k = 0; k < LOCK_KEYS && !c->have_reason; k++) {
        int n = 0, winner = -1;

        for (int t = 0; t < NTHREADS; t++)
            if (r->acquired[t][k] == 1) {
                n++;
                winner = t;
            }
        if (n != 1) {
            rc = conf_fail(c,
                           "key %d: %d of %d racing threads acquired the "
                           "lock, want exactly 1",
                           k, n, NTHREADS);
            break;
        }
        char token[32];
        int released;

        snprintf(token, sizeof token, "locker-%d", winner);
        int st = conf_unlock(c, r->keys[k], conf_str(token), &released);

        if (st != HERMES_BE_OK || released != 1) {
            rc = conf_fail(c,
                           "key %d: the race winner's unlock returned %s, "
                           "released %d",
                           k, conf_status(st), released);
            break;
        }
    }
    if (c->have_reason)
        rc = CONF_FAIL;
    free(r);
    return rc;
}

/* ---------------------------------------------------------- concurrency */

enum { MIX_OPS = 2000, MIX_KEYS = 16, MIX_LOCKS = 4, MIX_VALUES = 8 };

/* Every value written comes from this table; lengths are distinct, so a
 * value read back is valid iff it equals the entry of its length. */
static const size_t mix_len[MIX_VALUES] = {0, 1, 7, 64, 300, 1000, 4000, 20000};

struct mix {
    conf_ctx *c;
    pthread_barrier_t start;
    unsigned char *value[MIX_VALUES];
    char key[MIX_KEYS][KEYCAP];
    hermes_bytes keys[MIX_KEYS];
    char lock[MIX_LOCKS][KEYCAP];
    hermes_bytes locks[MIX_LOCKS];
    atomic_int holders[MIX_LOCKS]; /* threads inside each lock right now */
    atomic_int stop;               /* set at the first failure */
    uint64_t seed;
};

struct mixer {
    struct mix *m;
    int t;
};

static int mix_valid(const struct mix *m, const void *v, size_t n)
{
    for (int i = 0; i < MIX_VALUES; i++)
        if (mix_len[i] == n)
            return n == 0 || memcmp(m->value[i], v, n) == 0;
    return 0;
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Fails the check (once) and asks every thread to stop. */
#define MIX_FAIL(m, ...)                                                       \
    do {                                                                       \
        conf_fail((m)->c, __VA_ARGS__);                                        \
        atomic_store(&(m)->stop, 1);                                           \
    } while (0)

static void mix_check_got(struct mix *m, int t, int op, conf_got *g,
                          const char *what)
{
    if (conf_got_check(m->c, g, what) != CONF_PASS) {
        atomic_store(&m->stop, 1);
        return;
    }
    for (size_t i = 0; i < g->n; i++)
        if (g->slot[i].hits && !mix_valid(m, g->slot[i].data, g->slot[i].len)) {
            MIX_FAIL(m,
                     "thread %d, op %d (%s): got %s, which no thread "
                     "wrote",
                     t, op, what, conf_show(g->slot[i].data, g->slot[i].len));
            return;
        }
}

static void mix_lock(struct mix *m, int t, int op, uint64_t r)
{
    int l = (int)(r % MIX_LOCKS), acquired, released;
    char token[32];

    snprintf(token, sizeof token, "mixer-%d", t);
    int st = conf_lock(m->c, m->locks[l], conf_str(token), 60000, &acquired);

    if (st != HERMES_BE_OK) {
        MIX_FAIL(m, "thread %d, op %d (lock): %s", t, op, conf_status(st));
        return;
    }
    if (acquired != 1)
        return;
    if (atomic_fetch_add(&m->holders[l], 1) != 0)
        MIX_FAIL(m,
                 "thread %d, op %d: acquired lock %d while another "
                 "thread held it",
                 t, op, l);
    sched_yield();
    atomic_fetch_sub(&m->holders[l], 1);
    st = conf_unlock(m->c, m->locks[l], conf_str(token), &released);
    if (st != HERMES_BE_OK || released != 1)
        MIX_FAIL(m,
                 "thread %d, op %d: unlock of its own lock returned %s, "
                 "released %d",
                 t, op, conf_status(st), released);
}

static void *mix_thread(void *arg)
{
    struct mixer *me = arg;
    struct mix *m = me->m;
    uint64_t s = m->seed ^ (0x9e3779b97f4a7c15u * (uint64_t)(me->t + 1));

    pthread_barrier_wait(&m->start);
    for (int op = 0; op < MIX_OPS && !atomic_load(&m->stop); op++) {
        uint64_t r = xorshift(&s);
        unsigned kind = (unsigned)(r % 100);
        hermes_bytes keys[4];
        hermes_item items[3];
        size_t n = 1 + (size_t)(r >> 8) % 3;
        conf_got g;
        int st;

        for (size_t i = 0; i < n; i++) {
            uint64_t x = xorshift(&s);
            int v = (int)(x % MIX_VALUES);

            keys[i] = m->keys[(x >> 8) % MIX_KEYS];
            items[i].key = keys[i];
            items[i].value = conf_bytes(m->value[v], mix_len[v]);
            items[i].ttl_ms = (x >> 16) % 4 == 0 ? 5000 : 0;
            items[i].flags = 0;
        }
        if (kind < 35) {
            conf_got_init(&g, n);
            st = conf_get(m->c, keys, n, conf_got_cb, &g);
            if (st != HERMES_BE_OK)
                MIX_FAIL(m, "thread %d, op %d (get): %s", me->t, op,
                         conf_status(st));
            else
                mix_check_got(m, me->t, op, &g, "get");
            conf_got_free(&g);
        } else if (kind < 65) {
            st = conf_set(m->c, items, n, NULL, NULL);
            if (st != HERMES_BE_OK)
                MIX_FAIL(m, "thread %d, op %d (set): %s", me->t, op,
                         conf_status(st));
        } else if (kind < 78) {
            for (size_t i = 0; i < n; i++)
                items[i].flags = (i + op) % 2 ? HERMES_SET_IF_ABSENT : 0;
            conf_got_init(&g, n);
            st = conf_set(m->c, items, n, conf_got_cb, &g);
            if (st != HERMES_BE_OK)
                MIX_FAIL(m, "thread %d, op %d (set-if-absent): %s", me->t, op,
                         conf_status(st));
            else
                mix_check_got(m, me->t, op, &g, "set-if-absent");
            for (size_t i = 0; i < n && st == HERMES_BE_OK; i++)
                if (!!g.slot[i].hits != !!items[i].flags)
                    MIX_FAIL(m,
                             "thread %d, op %d: the set callback %s item "
                             "%zu, which %s HERMES_SET_IF_ABSENT",
                             me->t, op, g.slot[i].hits ? "reported" : "skipped",
                             i, items[i].flags ? "has" : "lacks");
            conf_got_free(&g);
        } else if (kind < 88) {
            st = conf_del(m->c, keys, n);
            if (st != HERMES_BE_OK)
                MIX_FAIL(m, "thread %d, op %d (del): %s", me->t, op,
                         conf_status(st));
        } else {
            mix_lock(m, me->t, op, xorshift(&s));
        }
    }
    return NULL;
}

int check_concurrency(conf_ctx *c)
{
    struct mix *m = conf_xmalloc(sizeof *m);
    struct mixer mixers[NTHREADS];
    uint64_t t0 = conf_now_ms();

    memset(m, 0, sizeof *m);
    m->c = c;
    c->host.random(c->host.ctx, &m->seed, sizeof m->seed);
    m->seed |= 1; /* xorshift needs a non-zero state */
    pthread_barrier_init(&m->start, NULL, NTHREADS);
    for (int i = 0; i < MIX_VALUES; i++) {
        m->value[i] = conf_xmalloc(mix_len[i]);
        for (size_t j = 0; j < mix_len[i]; j++)
            m->value[i][j] = (unsigned char)(i * 37 + j * 13 + (j >> 8));
    }
    for (int k = 0; k < MIX_KEYS; k++)
        m->keys[k] = conf_key(c, m->key[k], KEYCAP, "mix:%d", k);
    for (int l = 0; l < MIX_LOCKS; l++) {
        m->locks[l] = conf_key(c, m->lock[l], KEYCAP, "mixlock:%d", l);
        atomic_init(&m->holders[l], 0);
    }
    atomic_init(&m->stop, 0);
    for (int t = 0; t < NTHREADS; t++) {
        mixers[t].m = m;
        mixers[t].t = t;
    }
    run_threads(mix_thread, mixers, sizeof mixers[0]);
    pthread_barrier_destroy(&m->start);

    /* What is left must still be valid. */
    if (!c->have_reason) {
        conf_got g;

        conf_got_init(&g, MIX_KEYS);
        int st = conf_get(c, m->keys, MIX_KEYS, conf_got_cb, &g);

        if (st != HERMES_BE_OK)
            conf_fail(c, "final get returned %s", conf_status(st));
        else
            mix_check_got(m, -1, MIX_OPS, &g, "final get");
        conf_got_free(&g);
    }
    for (int i = 0; i < MIX_VALUES; i++)
        free(m->value[i]);
    free(m);
    conf_note(c, "%d threads x %d ops in %llu ms", NTHREADS, MIX_OPS,
              (unsigned long long)(conf_now_ms() - t0));
    return c->have_reason ? CONF_FAIL : CONF_PASS;
}
