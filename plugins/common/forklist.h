/*
 * The fork registry of a plugin: every live object whose lock fork() must
 * not split.  A child inherits each mutex in the state the parent's
 * threads left it in, and one held by a thread that does not exist in the
 * child is held there forever.  So an object registers its lock here from
 * creation to destruction, and the registry's pthread_atfork() handlers
 * (installed once, at the first registration) hold every registered lock
 * across fork(): the child starts with each object unlocked and in a
 * state no thread was halfway through changing.
 *
 * Compiled into each plugin that uses it (plugins/common is not a
 * backend): every module has a registry of its own, so nothing here
 * crosses a module boundary.
 *
 * Around fork() (forklist.c):
 *  - prepare: the registry's own lock, then each object's lock, the newest
 *    registration first (as pthread_atfork() runs prepare handlers);
 *  - parent: each object's lock released, then the registry's;
 *  - child: the fork generation moves on; then, newest first, each
 *    object's child hook runs with its lock held and the lock is released;
 *    then the registry's.
 *
 * Lock order, which the callers keep:
 *  - An object whose lock is held while another registered lock is taken
 *    registers after that one (it is created after what it uses), so that
 *    prepare takes the locks in the order the code does.  Objects whose
 *    locks are never held together may register in any order.
 *  - hm_forklist_add() and hm_forklist_remove() are never called with a
 *    registered lock held: prepare holds the registry's lock while it
 *    waits for each object's.
 *
 * A child hook runs in the fork child before any other thread of it
 * exists, on an object whose other users were the parent's threads.  It
 * only forgets: it resets fields and initialises synchronisation objects
 * afresh, and never allocates, frees, waits or does I/O (what needs that
 * is marked there and done at the child's next call).
 *
 * Ownership: the object owns its entry (embedded in it); the registry
 * only links it, between hm_forklist_add() and hm_forklist_remove().
 */
#ifndef HERMES_PLUGINS_FORKLIST_H
#define HERMES_PLUGINS_FORKLIST_H

#include <pthread.h>

typedef struct hm_forklist_entry {
    pthread_mutex_t *mu;       /* held across fork() */
    void (*child)(void *self); /* NULL, or the child's reset (see above) */
    void *self;                /* the object, for child */
    struct hm_forklist_entry *prev, *next;
} hm_forklist_entry;

/* Registers the object self, whose lock is mu (initialised), with the
 * child hook child (may be NULL).  e stays linked until removed. */
void hm_forklist_add(hm_forklist_entry *e, pthread_mutex_t *mu,
                     void (*child)(void *self), void *self);

/* Unlinks e.  An entry never added (all zero) is left alone. */
void hm_forklist_remove(hm_forklist_entry *e);

/*
 * How many fork children the process descends from since the first
 * registration: it moves on in each child, so an object that stamps what
 * it opens with it knows a parent's socket by a differing number, one
 * load per call instead of a getpid() system call.  Written only in a
 * child before any other thread of it exists.  A process created without
 * the atfork handlers running (vfork, clone) must exec before using the
 * plugin, as POSIX demands anyway.
 */
unsigned hm_forklist_generation(void);

#endif /* HERMES_PLUGINS_FORKLIST_H */
