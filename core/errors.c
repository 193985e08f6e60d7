/*
 * Result codes in words, and the per-handle, per-thread detail message
 * behind hermes_errmsg().  The message lives in thread-specific storage so
 * that two threads failing on one handle never see each other's text.
 *
 * Each handle owns one pthread key (so at most PTHREAD_KEYS_MAX, 1024 on
 * Linux, handles can report messages at once) and a list of the buffers
 * its threads created: a thread that exits frees its own buffer through
 * the key's destructor, and hermes_close() frees the rest, since deleting
 * a key runs no destructors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define HM_ERRMSG_SIZE 1024

typedef struct hm_errbuf {
    hermes *h;
    struct hm_errbuf *prev, *next;
    char msg[HM_ERRMSG_SIZE];
} hm_errbuf;

const char *hermes_strerror(hermes_rc rc)
{
    switch (rc) {
#define HM_RC_CASE(name, value, text)                                          \
    case HERMES_##name:                                                        \
        return text;
        HERMES_RC_MAP(HM_RC_CASE)
#undef HM_RC_CASE
    }
    return "unknown error code";
}

static void errbuf_unlink(hm_errbuf *b)
{
    if (b->prev)
        b->prev->next = b->next;
    else
        b->h->errbufs = b->next;
    if (b->next)
        b->next->prev = b->prev;
}

/* Runs when a thread that has a message on a still-open handle exits. */
static void errbuf_destroy(void *p)
{
    hm_errbuf *b = p;
    hermes *h = b->h;
    pthread_mutex_lock(&h->err_mu);
    errbuf_unlink(b);
    pthread_mutex_unlock(&h->err_mu);
    free(b);
}

int hm_errkey_init(hermes *h)
{
    if (pthread_mutex_init(&h->err_mu, NULL) != 0)
        return -1;
    if (pthread_key_create(&h->errkey, errbuf_destroy) != 0) {
        pthread_mutex_destroy(&h->err_mu);
        return -1;
    }
    h->errkey_ok = true;
    return 0;
}

void hm_errkey_free(hermes *h)
{
    if (!h->errkey_ok)
        return;
    pthread_key_delete(h->errkey);
    for (hm_errbuf *b = h->errbufs, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    h->errbufs = NULL;
    pthread_mutex_destroy(&h->err_mu);
    h->errkey_ok = false;
}

static char *hm_errbuf_get(const hermes *ch)
{
    hermes *h = (hermes *)ch; /* the buffer list is bookkeeping, not state */
    if (!h->errkey_ok)
        return NULL;
    hm_errbuf *b = pthread_getspecific(h->errkey);
    if (!b) {
        b = calloc(1, sizeof *b);
        if (!b)
            return NULL;
        b->h = h;
        if (pthread_setspecific(h->errkey, b) != 0) {
            free(b);
            return NULL;
        }
        pthread_mutex_lock(&h->err_mu);
        b->next = h->errbufs;
        if (b->next)
            b->next->prev = b;
        h->errbufs = b;
        pthread_mutex_unlock(&h->err_mu);
    }
    return b->msg;
}

hermes_rc hm_error(const hermes *h, hermes_rc rc, const char *fmt, ...)
{
    char *buf = hm_errbuf_get(h);
    if (buf) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, HM_ERRMSG_SIZE, fmt, ap);
        va_end(ap);
    }
    return rc;
}

void hm_clear_error(const hermes *h)
{
    hm_errbuf *b = h->errkey_ok ? pthread_getspecific(h->errkey) : NULL;
    if (b)
        b->msg[0] = '\0';
}

const char *hermes_errmsg(const hermes *h)
{
    if (!h)
        return "out of memory";
    if (h->failed)
        return h->open_err;
    const hm_errbuf *b = h->errkey_ok ? pthread_getspecific(h->errkey) : NULL;
    return b ? b->msg : "";
}

void hermes_free(void *p)
{
    free(p);
}
