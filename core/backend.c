/*
 * Calls into the backend plugin.  One place serializes plugins that are not
 * thread-safe, counts failures for the stats and logs them (rate-limited by
 * the host logger), so the protocol code above reads as the protocol.
 */
#include "internal.h"

const char *hm_be_status_str(int status)
{
    switch (status) {
    case HERMES_BE_OK:
        return "ok";
    case HERMES_BE_IO:
        return "backend unreachable or timed out";
    case HERMES_BE_NOMEM:
        return "backend out of memory";
    case HERMES_BE_TOOBIG:
        return "key or value too large for the backend";
    case HERMES_BE_INVALID:
        return "invalid request";
    case HERMES_BE_PROTOCOL:
        return "unexpected answer from the backend";
    case HERMES_BE_UNSUPPORTED:
        return "operation not supported by the backend";
    default:
        return "unknown backend status";
    }
}

static void be_enter(hermes *h)
{
    hm_be_detail_clear();
    if (h->be_serialize)
        pthread_mutex_lock(&h->be_mu);
}

static int be_leave(hermes *h, int status, const char *op)
{
    if (h->be_serialize)
        pthread_mutex_unlock(&h->be_mu);
    if (status != HERMES_BE_OK) {
        HM_COUNT(h, backend_errors, 1);
        const char *detail = hm_be_detail();
        hm_log(h, HERMES_LOG_WARN, "%s %s failed: %s%s%s", h->be->name, op,
               hm_be_status_str(status), *detail ? ": " : "", detail);
    }
    return status;
}

int hm_be_get(hermes *h, const hermes_bytes *keys, size_t n, hermes_value_cb cb,
              void *arg)
{
    be_enter(h);
    return be_leave(h, h->be->get(h->be_state, keys, n, cb, arg), "get");
}

int hm_be_set(hermes *h, const hermes_item *items, size_t n, hermes_value_cb cb,
              void *arg)
{
    be_enter(h);
    return be_leave(h, h->be->set(h->be_state, items, n, cb, arg), "set");
}

int hm_be_del(hermes *h, const hermes_bytes *keys, size_t n)
{
    be_enter(h);
    return be_leave(h, h->be->del(h->be_state, keys, n), "delete");
}

int hm_be_lock(hermes *h, hermes_bytes key, hermes_bytes token, uint32_t ttl_ms,
               int *acquired)
{
    be_enter(h);
    *acquired = 0;
    return be_leave(h, h->be->lock(h->be_state, key, token, ttl_ms, acquired),
                    "lock");
}

int hm_be_unlock(hermes *h, hermes_bytes key, hermes_bytes token, int *released)
{
    be_enter(h);
    *released = 0;
    return be_leave(h, h->be->unlock(h->be_state, key, token, released),
                    "unlock");
}

int hm_be_flush(hermes *h, hermes_bytes prefix)
{
    be_enter(h);
    return be_leave(h, h->be->flush(h->be_state, prefix), "flush");
}

int hm_be_stats(hermes *h, hermes_stat_cb cb, void *arg)
{
    if (!h->be->stats)
        return HERMES_BE_UNSUPPORTED;
    be_enter(h);
    return be_leave(h, h->be->stats(h->be_state, cb, arg), "stats");
}
