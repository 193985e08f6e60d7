/*
 * The memcached plugin's client pool (see pool.h).
 */
#include "pool.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * fork() while other threads use the pool: the child would inherit mu held
 * by a thread that does not exist there.  Every pool registers mu with the
 * plugin's fork registry (forklist.h), whose handlers hold it across the
 * fork; the child's hook empties the pool of the parent's clients
 * (check_fork_locked), so that a hit never calls getpid() (a system call)
 * to find out.  A client borrowed across the fork is known by its pid
 * when it comes back.  A pool is the plugin's only registered lock.
 */
/* A fork child's abandoned clients (see pool.h), kept reachable so that
 * leak checkers do not report what is kept on purpose.  A lock-free stack:
 * abandon() also runs in the child's hook, where a lock of its own might
 * be one that a parent thread held at the fork. */
static _Atomic(mc_client *) abandoned;

static void cv_init(mcpool *p)
{
    pthread_condattr_t a;

    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &a);
    pthread_condattr_destroy(&a);
}

/* A client of another process: never written to, never freed. */
static void abandon(mc_client *c)
{
    mc_client *top = atomic_load(&abandoned);
    do
        c->next = top;
    while (!atomic_compare_exchange_weak(&abandoned, &top, c));
}

static void free_client(mc_client *c)
{
    if (c->pid != getpid()) {
        abandon(c);
        return;
    }
    memcached_free(c->mc);
    for (uint32_t i = 0; i < c->nwires; i++)
        wire_close(&c->wires[i]);
    free(c->wires);
    free(c);
}

/* Called with mu held, by the fork child handler and at destroy.  In a
 * fork child the idle list holds the parent's connections and `live`
 * counts clients borrowed by parent threads that do not exist here: start
 * over with an empty pool. */
static void check_fork_locked(mcpool *p)
{
    pid_t me = getpid();
    mc_client *c;

    if (p->pid == me)
        return;
    while ((c = p->idle) != NULL) {
        p->idle = c->next;
        abandon(c);
    }
    p->live = 0;
    p->pid = me;
    /* The condition variable may count the parent's waiting threads, which
     * do not exist here; no thread of the child waits on it yet. */
    cv_init(p);
}

/* The child's hook (forklist.h). */
static void forked(void *self)
{
    check_fork_locked(self);
}

int mcpool_init(mcpool *p, const hermes_host *host, memcached_st *master,
                unsigned size, uint32_t wait_ms)
{
    memset(p, 0, sizeof *p);
    p->host = host;
    p->master = master;
    p->size = size ? size : 1;
    p->wait_ms = wait_ms;
    p->pid = getpid();
    pthread_mutex_init(&p->mu, NULL);
    cv_init(p);
    hm_forklist_add(&p->fork, &p->mu, forked, p);
    return HERMES_BE_OK;
}

void mcpool_destroy(mcpool *p)
{
    mc_client *c;

    if (!p->master)
        return;
    hm_forklist_remove(&p->fork);
    pthread_mutex_lock(&p->mu);
    check_fork_locked(p);
    while ((c = p->idle) != NULL) {
        p->idle = c->next;
        free_client(c);
    }
    pthread_mutex_unlock(&p->mu);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    memcached_free(p->master);
    memset(p, 0, sizeof *p);
}

static void deadline_after(struct timespec *ts, uint32_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

int mcpool_take(mcpool *p, mc_client **out)
{
    struct timespec until;
    int have_deadline = 0;
    mc_client *c;

    pthread_mutex_lock(&p->mu);
    for (;;) {
        if ((c = p->idle) != NULL) {
            p->idle = c->next;
            pthread_mutex_unlock(&p->mu);
            c->next = NULL;
            *out = c;
            return HERMES_BE_OK;
        }
        if (p->live < p->size)
            break;
        if (!have_deadline) {
            deadline_after(&until, p->wait_ms);
            have_deadline = 1;
        }
        if (pthread_cond_timedwait(&p->cv, &p->mu, &until) == ETIMEDOUT &&
            !p->idle) {
            pthread_mutex_unlock(&p->mu);
            return HERMES_BE_IO;
        }
    }
    /* Clone under mu: the template is read by one thread at a time. */
    c = calloc(1, sizeof *c);
    if (c)
        c->mc = memcached_clone(NULL, p->master);
    if (!c || !c->mc) {
        pthread_mutex_unlock(&p->mu);
        free(c);
        return HERMES_BE_NOMEM;
    }
    c->pid = p->pid;
    p->live++;
    pthread_mutex_unlock(&p->mu);
    *out = c;
    return HERMES_BE_OK;
}

/* Replies still owed by some server of this client. */
static int has_pending(memcached_st *mc)
{
    uint32_t n = memcached_server_count(mc);

    for (uint32_t i = 0; i < n; i++) {
        const memcached_instance_st *s =
            memcached_server_instance_by_position(mc, i);

        if (s && memcached_server_response_count(s) > 0)
            return 1;
    }
    return 0;
}

void mcpool_put(mcpool *p, mc_client *c, int failed)
{
    if (failed && c->pid == getpid() && has_pending(c->mc))
        memcached_quit(c->mc);
    pthread_mutex_lock(&p->mu);
    if (c->pid != p->pid) {
        /* Borrowed before a fork, returned in the child (a callback that
         * forked): it belongs to the parent. */
        pthread_mutex_unlock(&p->mu);
        abandon(c);
        return;
    }
    c->next = p->idle;
    p->idle = c;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}
