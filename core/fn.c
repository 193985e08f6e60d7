/*
 * Registering cached functions: name, tags, TTL and key function, kept on
 * the handle until hermes_close().
 */
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "record.h"
#include "sized.h"
#include "taglist.h"

/* A function name: non-empty, no spaces or control characters. */
static bool name_ok(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == 0x7f)
            return false;
    return true;
}

/* The caller's options (NULL for none), read by their size (sized.h). */
static hermes_rc options_in(hermes *h, const char *name,
                            const hermes_fn_options *opts, hermes_fn_options *o)
{
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    if (!opts)
        return HERMES_OK;
    if (opts->size == 0)
        return hm_error(h, HERMES_EINVAL,
                        "register %s: hermes_fn_options.size is not set "
                        "(initialize it with HERMES_FN_OPTIONS(...))",
                        name);
    if (!hm_sized_in(o, sizeof *o, opts, opts->size))
        return hm_error(h, HERMES_EINVAL,
                        "register %s: hermes_fn_options sets fields this "
                        "library (%s) does not know",
                        name, HERMES_VERSION);
    o->size = sizeof *o;
    return HERMES_OK;
}

/* The freshness fields: 0 (the handle's), off, or a value in range. */
static hermes_rc fresh_options(hermes *h, const char *name,
                               const hermes_fn_options *o)
{
    double b = o->early_refresh;
    if (!(b >= 0 && b <= HM_MAX_EARLY_REFRESH) && b != HERMES_EARLY_REFRESH_OFF)
        return hm_error(h, HERMES_EINVAL,
                        "register %s: early_refresh %g: 0 (the handle's), "
                        "HERMES_EARLY_REFRESH_OFF or up to %g",
                        name, b, HM_MAX_EARLY_REFRESH);
    if (o->grace > HERMES_TTL_MAX && o->grace != HERMES_GRACE_NONE)
        return hm_error(h, HERMES_EINVAL,
                        "register %s: grace %lu s: at most %u s, or "
                        "HERMES_GRACE_NONE",
                        name, (unsigned long)o->grace, HERMES_TTL_MAX);
    if (o->stale_if_error != 0 && o->stale_if_error != HERMES_YES &&
        o->stale_if_error != HERMES_NO)
        return hm_error(h, HERMES_EINVAL,
                        "register %s: stale_if_error %d: 0 (the handle's), "
                        "HERMES_YES or HERMES_NO",
                        name, o->stale_if_error);
    return HERMES_OK;
}

hermes_rc hermes_fn_register(hermes *h, const char *name,
                             const hermes_fn_options *opts, hermes_fn **out)
{
    HM_ENTER(h);
    if (!out)
        return hm_error(h, HERMES_EINVAL, "hermes_fn_register: out is NULL");
    *out = NULL;
    if (!name_ok(name))
        return hm_error(h, HERMES_EINVAL,
                        "hermes_fn_register: function name %s%s%s must be "
                        "non-empty and without spaces or control characters",
                        name ? "'" : "", name ? name : "NULL", name ? "'" : "");
    if (strlen(name) > HM_RECORD_MAX_NAME)
        return hm_error(h, HERMES_EINVAL,
                        "function name longer than %d bytes: its records "
                        "could not name it",
                        HM_RECORD_MAX_NAME);
    hermes_fn_options o;
    hermes_rc rc = options_in(h, name, opts, &o);
    if (rc != HERMES_OK)
        return rc;
    if (!hm_ttl_ok(o.ttl))
        return hm_error(h, HERMES_EINVAL, "register %s: " HM_TTL_RANGE, name,
                        (unsigned long)o.ttl, HERMES_TTL_MAX);
    if ((rc = fresh_options(h, name, &o)) != HERMES_OK)
        return rc;
    hermes_fn *fn = calloc(1, sizeof *fn);
    if (!fn)
        return hm_error(h, HERMES_ENOMEM, "register %s: out of memory", name);
    fn->h = h;
    fn->beta = o.early_refresh == 0 ? h->cfg.early_refresh
               : o.early_refresh == HERMES_EARLY_REFRESH_OFF ? 0
                                                             : o.early_refresh;
    fn->grace = o.grace == 0                   ? h->cfg.grace
                : o.grace == HERMES_GRACE_NONE ? 0
                                               : o.grace;
    fn->stale_if_error = o.stale_if_error == 0 ? h->cfg.stale_if_error
                                               : o.stale_if_error == HERMES_YES;
    fn->fresh = fn->beta > 0 || fn->grace > 0;
    rc = HERMES_ENOMEM;
    if (!(fn->name = strdup(name)))
        goto fail;
    hm_buf b;
    hm_buf_init(&b);
    hm_buf_add_escaped(&b, name, strlen(name));
    fn->ename = b.failed ? NULL : strdup(b.data);
    hm_buf_free(&b);
    if (!fn->ename)
        goto fail;
    fn->name_len = strlen(name);
    fn->ename_len = strlen(fn->ename);
    fn->key_head_len = h->entry_prefix_len + fn->ename_len + 1;
    if (!(fn->key_head = malloc(fn->key_head_len + 1)))
        goto fail;
    memcpy(fn->key_head, h->entry_prefix, h->entry_prefix_len);
    memcpy(fn->key_head + h->entry_prefix_len, fn->ename, fn->ename_len);
    fn->key_head[fn->key_head_len - 1] = ':';
    fn->key_head[fn->key_head_len] = '\0';
    fn->ttl = o.ttl;
    fn->key = o.key;
    if ((rc = hm_taglist_build_entry(h, o.tags, &fn->tags)) != HERMES_OK)
        goto fail;
    if (fn->tags.n > HM_RECORD_MAX_TAGS) {
        rc = hm_error(h, HERMES_EINVAL,
                      "%s: %zu tags; a cached function has at most %d%s", name,
                      hm_taglist_user(&fn->tags),
                      HM_RECORD_MAX_TAGS - fn->tags.ns, hm_ns_note(h));
        goto fail;
    }

    pthread_mutex_lock(&h->fns_mu);
    for (hermes_fn *f = h->fns; f; f = f->next) {
        if (strcmp(f->name, name) == 0) {
            pthread_mutex_unlock(&h->fns_mu);
            rc = hm_error(h, HERMES_EEXIST,
                          "function '%s' is already registered", name);
            goto fail;
        }
    }
    fn->next = atomic_load_explicit(&h->fns, memory_order_relaxed);
    atomic_store_explicit(&h->fns, fn, memory_order_release);
    pthread_mutex_unlock(&h->fns_mu);
    *out = fn;
    return HERMES_OK;
fail:
    hm_fn_free(fn);
    if (rc == HERMES_ENOMEM)
        hm_error(h, rc, "register %s: out of memory", name);
    return rc;
}

/*
 * For HERMES_REGISTER: the slot is the macro's static pointer.  It is set
 * only on success (a second registration leaves the first in place, key
 * function included: the macro records its key only on HERMES_OK) and
 * cleared by hermes_close(), so a cached function called after close
 * computes directly instead of touching freed memory.
 */
hermes_rc hermes__register(hermes *h, const char *name,
                           const hermes_fn_options *opts, hermes_key_fn key,
                           hermes_fn **slot)
{
    HM_ENTER(h);
    hermes_fn_options o;
    hermes_rc rc = options_in(h, name ? name : "?", opts, &o);
    if (rc != HERMES_OK)
        return rc;
    o.key = key;
    hermes_fn *fn;
    rc = hermes_fn_register(h, name, &o, &fn);
    if (rc == HERMES_OK) {
        fn->slot = slot;
        *slot = fn;
    }
    return rc;
}

hermes *hermes_fn_handle(const hermes_fn *fn)
{
    return fn ? fn->h : NULL;
}
