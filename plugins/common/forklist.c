/*
 * The fork registry (forklist.h): one list of entries under one mutex,
 * and the three pthread_atfork() handlers that walk it.  The handlers
 * allocate nothing and call nothing but the entries' locks and child
 * hooks.  glibc drops the handlers if the module is unloaded (plugins are
 * loaded resident, so it is not).
 */
#include "forklist.h"

static pthread_mutex_t list_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static hm_forklist_entry *head; /* newest first */
static unsigned generation;

static void prepare(void)
{
    pthread_mutex_lock(&list_mu);
    for (hm_forklist_entry *e = head; e; e = e->next)
        pthread_mutex_lock(e->mu);
}

static void parent(void)
{
    for (hm_forklist_entry *e = head; e; e = e->next)
        pthread_mutex_unlock(e->mu);
    pthread_mutex_unlock(&list_mu);
}

static void child(void)
{
    generation++;
    for (hm_forklist_entry *e = head; e; e = e->next) {
        if (e->child)
            e->child(e->self);
        pthread_mutex_unlock(e->mu);
    }
    pthread_mutex_unlock(&list_mu);
}

static void install(void)
{
    pthread_atfork(prepare, parent, child);
}

void hm_forklist_add(hm_forklist_entry *e, pthread_mutex_t *mu,
                     void (*hook)(void *self), void *self)
{
    pthread_once(&once, install);
    e->mu = mu;
    e->child = hook;
    e->self = self;
    pthread_mutex_lock(&list_mu);
    e->prev = NULL;
    e->next = head;
    if (head)
        head->prev = e;
    head = e;
    pthread_mutex_unlock(&list_mu);
}

void hm_forklist_remove(hm_forklist_entry *e)
{
    pthread_mutex_lock(&list_mu);
    if (e->prev)
        e->prev->next = e->next;
    else if (head == e)
        head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    e->prev = e->next = NULL;
    pthread_mutex_unlock(&list_mu);
}

unsigned hm_forklist_generation(void)
{
    return generation;
}
