/*
 * Result codes in words, and the per-handle, per-thread detail message
 * behind hermes_errmsg().  The message lives in thread-specific storage so
 * that two threads failing on one handle never see each other's text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define HM_ERRMSG_SIZE 1024

const char *hermes_strerror(hermes_rc rc)
{
    switch (rc) {
#define HM_RC_CASE(name, value, text)                                        \
    case HERMES_##name:                                                      \
        return text;
        HERMES_RC_MAP(HM_RC_CASE)
#undef HM_RC_CASE
    }
    return "unknown error code";
}

int hm_errkey_init(hermes *h)
{
    if (pthread_key_create(&h->errkey, free) != 0)
        return -1;
    h->errkey_ok = true;
    return 0;
}

void hm_errkey_free(hermes *h)
{
    if (!h->errkey_ok)
        return;
    /* Other threads' buffers are freed by the key's destructor when those
     * threads exit; this thread's is freed here. */
    free(pthread_getspecific(h->errkey));
    pthread_setspecific(h->errkey, NULL);
    pthread_key_delete(h->errkey);
    h->errkey_ok = false;
}

static char *hm_errbuf(const hermes *h)
{
    if (!h->errkey_ok)
        return NULL;
    char *buf = pthread_getspecific(h->errkey);
    if (!buf) {
        buf = calloc(1, HM_ERRMSG_SIZE);
        if (!buf || pthread_setspecific(h->errkey, buf) != 0) {
            free(buf);
            return NULL;
        }
    }
    return buf;
}

hermes_rc hm_error(const hermes *h, hermes_rc rc, const char *fmt, ...)
{
    char *buf = hm_errbuf(h);
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
    char *buf = h->errkey_ok ? pthread_getspecific(h->errkey) : NULL;
    if (buf)
        buf[0] = '\0';
}

const char *hermes_errmsg(const hermes *h)
{
    if (!h)
        return "out of memory";
    if (h->failed)
        return h->open_err;
    const char *buf = h->errkey_ok ? pthread_getspecific(h->errkey) : NULL;
    return buf ? buf : "";
}

void hermes_free(void *p)
{
    free(p);
}
