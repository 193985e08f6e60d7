/*
 * fork() safety.  A child inherits every mutex in the state the parent's
 * threads left it in; one held by a thread that does not exist in the child
 * is held forever there.  So the core registers fork handlers (it is never
 * unloaded) that, before the fork, take the locks of every open handle and
 * of the plugin loader, and release them on both sides afterwards.  In the
 * child the in-process flights of other threads are forgotten: their
 * leaders do not exist there and nobody in the child waits for them.
 *
 * Backend state is each plugin's own: the built-in dict and the redis
 * plugin register handlers of their own (backend.h, "fork").  A plugin
 * that is not thread-safe is called under the handle's be_mu, which the
 * handlers take too, so such a plugin is never inside a call at the fork.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fork.h"
#include "loader.h"

static pthread_mutex_t fork_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static hermes *handles; /* every handle between open and close */

/* The order of a handle's locks: the one that may be held while another is
 * taken comes first (be_mu is held across a plugin call, which may log). */
static void lock_handle(hermes *h)
{
    pthread_mutex_lock(&h->be_mu);
    pthread_mutex_lock(&h->fns_mu);
    pthread_mutex_lock(&h->flights.mu);
    pthread_mutex_lock(&h->logger.mu);
}

static void unlock_handle(hermes *h)
{
    pthread_mutex_unlock(&h->logger.mu);
    pthread_mutex_unlock(&h->flights.mu);
    pthread_mutex_unlock(&h->fns_mu);
    pthread_mutex_unlock(&h->be_mu);
}

static void prepare(void)
{
    pthread_mutex_lock(&fork_mu);
    hm_loader_lock();
    for (hermes *h = handles; h; h = h->fork_next)
        lock_handle(h);
}

static void parent(void)
{
    for (hermes *h = handles; h; h = h->fork_next)
        unlock_handle(h);
    hm_loader_unlock();
    pthread_mutex_unlock(&fork_mu);
}

/*
 * A store private to the process (no HERMES_CAP_SHARED) is copied into the
 * child with the backend locks its other threads held: nobody in the child
 * will ever release them.  The child takes its locks under a name of its
 * own instead ("<prefix>:lock:<pid>:"), so it never waits for one.  Locks
 * in a shared store belong to live processes and are waited for as usual.
 *
 * The pid is written in place, into room the open left after the prefix
 * (HM_LOCK_PID_ROOM): nothing is allocated in the child handler, whose
 * process may hold an allocator's lock for a thread it does not have.
 */
static void rename_private_locks(hermes *h)
{
    if (!h->be || (h->be->caps & HERMES_CAP_SHARED) || !h->lock_prefix)
        return;
    char digits[HM_LOCK_PID_ROOM];
    size_t n = 0;
    for (unsigned long pid = (unsigned long)getpid(); n == 0 || pid; pid /= 10)
        digits[n++] = (char)('0' + pid % 10);
    char *at = h->lock_prefix + strlen(h->cfg.prefix) + sizeof ":lock:" - 1;
    while (n)
        *at++ = digits[--n];
    *at++ = ':';
    *at = '\0';
}

static void child(void)
{
    for (hermes *h = handles; h; h = h->fork_next) {
        rename_private_locks(h);
        /* The child publishes under its own pid at its next call. */
        if (atomic_load(&h->publish_due_ns))
            atomic_store(&h->publish_due_ns, 1);
        /* Leaked, not freed: a flight's condition variable may count
         * waiters that do not exist here, and destroying it could block. */
        memset(h->flights.buckets, 0, sizeof h->flights.buckets);
        unlock_handle(h);
    }
    hm_loader_unlock();
    hm_host_forked();
    pthread_mutex_unlock(&fork_mu);
}

static void setup(void)
{
    pthread_atfork(prepare, parent, child);
}

void hm_fork_track(hermes *h)
{
    pthread_once(&fork_once, setup);
    pthread_mutex_lock(&fork_mu);
    h->fork_prev = NULL;
    h->fork_next = handles;
    if (handles)
        handles->fork_prev = h;
    handles = h;
    pthread_mutex_unlock(&fork_mu);
}

void hm_fork_untrack(hermes *h)
{
    pthread_mutex_lock(&fork_mu);
    if (h->fork_prev)
        h->fork_prev->fork_next = h->fork_next;
    else if (handles == h)
        handles = h->fork_next;
    if (h->fork_next)
        h->fork_next->fork_prev = h->fork_prev;
    pthread_mutex_unlock(&fork_mu);
}
