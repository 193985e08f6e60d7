/*
 * Calls into the backend plugin.  One place serializes plugins that are not
 * thread-safe, counts failures for the stats and logs them (rate-limited by
 * the host logger), so the protocol code above reads as the protocol.
 */
#include <string.h>

#include "internal.h"

const char *hm_be_status_str(int status)
{
    switch (status) {
#define HM_BE_STATUS_TEXT(name, value, text)                                   \
    case HERMES_BE_##name:                                                     \
        return text;
        HERMES_BE_STATUS_MAP(HM_BE_STATUS_TEXT)
#undef HM_BE_STATUS_TEXT
    default:
        return "unknown backend status";
    }
}

const char *hm_be_status_name(int status)
{
    switch (status) {
#define HM_BE_STATUS_NAME(name, value, text)                                   \
    case HERMES_BE_##name:                                                     \
        return #name;
        HERMES_BE_STATUS_MAP(HM_BE_STATUS_NAME)
#undef HM_BE_STATUS_NAME
    default:
        return NULL;
    }
}

/*
 * The one translation of a plugin's status into the API's result, for
 * every operation and for open(): the caller sees what went wrong in its
 * own vocabulary whichever call met it.  INVALID is a bad argument; the
 * only arguments open() has are the config section, so there the
 * argument is a config key (HERMES_ECONFIG).  Anything the store did
 * (IO, PROTOCOL, UNSUPPORTED, or a status this core does not know) is
 * HERMES_EBACKEND.
 */
hermes_rc hm_be_rc(int status, bool at_open)
{
    switch (status) {
    case HERMES_BE_OK:
        return HERMES_OK;
    case HERMES_BE_NOMEM:
        return HERMES_ENOMEM;
    case HERMES_BE_TOOBIG:
        return HERMES_ETOOBIG;
    case HERMES_BE_INVALID:
        return at_open ? HERMES_ECONFIG : HERMES_EINVAL;
    default:
        return HERMES_EBACKEND;
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

/* Whether key is a tag key of h (or its namespace key). */
static bool is_tag_key(const hermes *h, hermes_bytes key)
{
    size_t tl = strlen(h->tag_prefix);
    return (key.len > tl && memcmp(key.data, h->tag_prefix, tl) == 0) ||
           (h->ns_key && key.len == strlen(h->ns_key) &&
            memcmp(key.data, h->ns_key, key.len) == 0);
}

/* After a call that may have changed tag keys of a private store: the
 * versions remembered before it are no longer to be trusted (tags.c). */
static void tags_moved(hermes *h)
{
    if (h->tags_private)
        atomic_fetch_add_explicit(&h->tag_epoch, 1, memory_order_release);
}

static void tags_moved_by(hermes *h, const hermes_item *items, size_t n)
{
    for (size_t i = 0; h->tags_private && i < n; i++) {
        if (is_tag_key(h, items[i].key)) {
            tags_moved(h);
            return;
        }
    }
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
    int st = be_leave(h, h->be->set(h->be_state, items, n, cb, arg), "set");
    tags_moved_by(h, items, n);
    return st;
}

int hm_be_del(hermes *h, const hermes_bytes *keys, size_t n)
{
    be_enter(h);
    int st = be_leave(h, h->be->del(h->be_state, keys, n), "delete");
    for (size_t i = 0; h->tags_private && i < n; i++) {
        if (is_tag_key(h, keys[i])) {
            tags_moved(h);
            break;
        }
    }
    return st;
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
    int st = h->be->flush(h->be_state, prefix);
    /* From a store without prefix deletion, UNSUPPORTED is no failure: the
     * namespace tag did the flush (hermes_flush). */
    bool fine = st == HERMES_BE_UNSUPPORTED && h->ns_key;
    be_leave(h, fine ? HERMES_BE_OK : st, "flush");
    tags_moved(h);
    return st;
}

int hm_be_lock_get(hermes *h, hermes_bytes key, hermes_bytes token,
                   uint32_t ttl_ms, int *acquired, const hermes_bytes *keys,
                   size_t n, hermes_value_cb cb, void *arg)
{
    *acquired = 0;
    if (!HERMES_BACKEND_HAS_OP(h->be, lock_get))
        return HERMES_BE_UNSUPPORTED;
    be_enter(h);
    return be_leave(h,
                    h->be->lock_get(h->be_state, key, token, ttl_ms, acquired,
                                    keys, n, cb, arg),
                    "lock and get");
}

int hm_be_set_unlock(hermes *h, const hermes_item *items, size_t n,
                     hermes_bytes key, hermes_bytes token, int *released)
{
    *released = 0;
    if (!HERMES_BACKEND_HAS_OP(h->be, set_unlock))
        return HERMES_BE_UNSUPPORTED;
    be_enter(h);
    int st = be_leave(
        h, h->be->set_unlock(h->be_state, items, n, key, token, released),
        "set and unlock");
    tags_moved_by(h, items, n);
    return st;
}

bool hm_be_can_wait_unlock(const hermes *h)
{
    return HERMES_BACKEND_HAS_OP(h->be, wait_unlock) &&
           (h->be->caps & HERMES_CAP_THREADSAFE);
}

int hm_be_wait_unlock(hermes *h, hermes_bytes key, uint64_t since_ns,
                      uint64_t until_ns, int *woken)
{
    *woken = 0;
    if (!hm_be_can_wait_unlock(h))
        return HERMES_BE_UNSUPPORTED;
    return h->be->wait_unlock(h->be_state, key, since_ns, until_ns, woken);
}

int hm_be_stats(hermes *h, hermes_stat_cb cb, void *arg)
{
    if (!h->be->stats)
        return HERMES_BE_UNSUPPORTED;
    be_enter(h);
    return be_leave(h, h->be->stats(h->be_state, cb, arg), "stats");
}

int hm_be_scan(hermes *h, hermes_bytes prefix, hermes_scan_cb cb, void *arg)
{
    if (!(h->be->caps & HERMES_CAP_SCAN) || !h->be->scan)
        return HERMES_BE_UNSUPPORTED;
    be_enter(h);
    return be_leave(h, h->be->scan(h->be_state, prefix, cb, arg), "scan");
}
