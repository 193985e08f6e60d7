/*
 * Result codes in words, and the calling thread's detail message behind
 * hermes_errmsg().
 *
 * One slot per thread for the whole library (C11 _Thread_local), not one
 * per handle: any number of handles report messages, nothing is allocated,
 * nothing can fail, and a thread that exits leaves nothing behind.  The
 * slot remembers which handle its message belongs to by the handle's id
 * (unique for the life of the process, so a handle allocated where a
 * closed one lived never inherits its message).  Every public call that
 * returns a hermes_rc clears the message on entry, a single store; a
 * failure writes it.  hermes_errmsg(h) returns it only when it belongs to
 * h, so one thread's message is never shown for another handle.
 *
 * The slot also holds the detail a plugin attached to the backend operation
 * running on this thread (host->error_detail, ABI 1.1), cleared before
 * every backend call and read right after a failed one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define HM_ERRMSG_SIZE 1024
#define HM_DETAIL_SIZE 256

typedef struct hm_errslot {
    uint64_t owner; /* id of the handle the message is about; 0: none */
    char msg[HM_ERRMSG_SIZE];
    char detail[HM_DETAIL_SIZE]; /* the plugin's, for the current call */
} hm_errslot;

/* Valid when hm_errflags_tls says so (internal.h). */
static _Thread_local hm_errslot hm_errslot_tls;
_Thread_local hm_errflags hm_errflags_tls;

/* Handle ids: 0 is "no handle", so they start at 1. */
static atomic_uint_fast64_t last_id;

uint64_t hm_handle_id_next(void)
{
    return atomic_fetch_add_explicit(&last_id, 1, memory_order_relaxed) + 1;
}

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

static hermes_rc verror(const hermes *h, hermes_rc rc, const char *fmt,
                        va_list ap)
{
    hm_errslot_tls.owner = h ? h->id : 0;
    vsnprintf(hm_errslot_tls.msg, sizeof hm_errslot_tls.msg, fmt, ap);
    hm_errflags_tls.msg = true;
    return rc;
}

hermes_rc hm_error(const hermes *h, hermes_rc rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(h, rc, fmt, ap);
    va_end(ap);
    return rc;
}

hermes_rc hm_be_error(const hermes *h, int status, const char *fmt, ...)
{
    char what[HM_ERRMSG_SIZE / 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const char *detail = hm_be_detail();
    return hm_error(h, hm_be_rc(status, false), "%s: %s%s%s", what,
                    hm_be_status_str(status), *detail ? ": " : "", detail);
}

hermes_rc hm_bad_handle(const hermes *h, const char *func)
{
    if (!h)
        return hm_error(NULL, HERMES_EINVAL, "%s: the handle is NULL", func);
    return hm_error(h, HERMES_EINVAL, "%s: the handle failed to open: %s", func,
                    h->open_err);
}

void hm_be_detail_set(const char *msg)
{
    if (!msg)
        msg = "";
    size_t n = strlen(msg);
    if (n >= sizeof hm_errslot_tls.detail)
        n = sizeof hm_errslot_tls.detail - 1;
    memcpy(hm_errslot_tls.detail, msg, n);
    hm_errslot_tls.detail[n] = '\0';
    hm_errflags_tls.detail = true;
}

const char *hm_be_detail(void)
{
    return hm_errflags_tls.detail ? hm_errslot_tls.detail : "";
}

const char *hermes_errmsg(const hermes *h)
{
    bool set = hm_errflags_tls.msg;
    if (!h)
        return set && hm_errslot_tls.owner == 0 ? hm_errslot_tls.msg : "";
    if (set && hm_errslot_tls.owner == h->id)
        return hm_errslot_tls.msg;
    if (h->failed)
        return h->open_err;
    return "";
}

void hermes_free(void *p)
{
    free(p);
}
