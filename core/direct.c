/*
 * Direct access (get, set, delete under the entry namespace), clean and
 * flush.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fresh.h"
#include "keyspace.h"
#include "publish.h"
#include "taglist.h"
#include "tags.h"

/* --------------------------------------------------------- direct access */

/* Records of direct access name no function; a direct read takes a record
 * of any writer. */
static const hm_owner direct_owner = {NULL, 0, false};

/* A direct-access key "<prefix>:entry:<key>" and its sorted tags. */
typedef struct direct {
    hm_buf entry;
    hm_taglist tags;
    hm_read rd;
    bool rd_ok;
} direct;

static hermes_rc direct_init(hermes *h, direct *d, const char *op,
                             const char *key, const char *const *tags)
{
    memset(d, 0, sizeof *d);
    hm_buf_init(&d->entry);
    if (!key)
        return hm_error(h, HERMES_EINVAL, "hermes_%s: key is NULL", op);
    hermes_rc rc = hm_direct_key(h, key, &d->entry);
    if (rc == HERMES_OK)
        rc = hm_taglist_build_entry(h, tags, &d->tags);
    if (rc == HERMES_OK && d->tags.n > HM_RECORD_MAX_TAGS)
        rc = hm_error(h, HERMES_EINVAL,
                      "%s: %zu tags; an entry has at most %d%s", key,
                      hm_taglist_user(&d->tags),
                      HM_RECORD_MAX_TAGS - d->tags.ns, hm_ns_note(h));
    if (rc == HERMES_OK && hm_read_init(&d->rd, d->tags.n) != 0)
        rc = HERMES_ENOMEM;
    d->rd_ok = rc == HERMES_OK;
    if (rc == HERMES_ENOMEM)
        hm_error(h, rc, "%s %s: out of memory", op, key);
    return rc;
}

/* Why hermes_get found nothing to return. */
static const char *miss_reason(hm_verdict v, const direct *d)
{
    switch (v) {
    case HM_STALE:
        return d->tags.ns && d->rd.stale_tag == 0
                   ? "hermes_flush ran (or its namespace key was evicted) "
                     "since the value was set"
                   : "a tag was cleaned since the value was set";
    case HM_FOREIGN:
        return "the stored record was written for other tags or by "
               "another function";
    case HM_CORRUPT:
        return "the stored record does not decode";
    default:
        return "no entry";
    }
}

static void direct_free(direct *d)
{
    hm_taglist_free(&d->tags);
    if (d->rd_ok)
        hm_read_free(&d->rd);
    hm_buf_free(&d->entry);
}

hermes_rc hermes_get(hermes *h, const char *key, const char *const *tags,
                     void **value, size_t *len)
{
    HM_ENTER(h);
    hm_publish_tick(h);
    if (!value || !len)
        return hm_error(h, HERMES_EINVAL, "hermes_get: %s is NULL",
                        !value ? "value" : "len");
    *value = NULL;
    *len = 0;
    direct d;
    hermes_rc rc = direct_init(h, &d, "get", key, tags);
    if (rc == HERMES_OK) {
        int st = hm_read_entry(h, hm_bytes(d.entry.data, d.entry.len), d.tags.n,
                               d.tags.keys, &d.rd);
        hm_verdict v = HM_ABSENT;
        if (st == HERMES_BE_OK)
            v = hm_judge(h, &d.rd, &direct_owner, &d.tags);
        /* Past its TTL: still stored only for a function's grace. */
        if (v == HM_HIT && hm_record_expired(&d.rd.rec))
            v = HM_ABSENT;
        if (st != HERMES_BE_OK) {
            rc = hm_be_error(h, st, "get %s", key);
        } else if (v == HM_HIT) {
            *value = d.rd.entry;
            *len = d.rd.entry_len;
            d.rd.entry = NULL;
            HM_COUNT_HIT(h);
        } else {
            HM_COUNT(h, misses, 1);
            hm_count_verdict(h, v);
            rc = hm_error(h, HERMES_ENOTFOUND, "get %s: %s", key,
                          miss_reason(v, &d));
        }
    }
    direct_free(&d);
    return rc;
}

hermes_rc hermes_set(hermes *h, const char *key, const void *value, size_t len,
                     const char *const *tags, uint32_t ttl)
{
    HM_ENTER(h);
    hm_publish_tick(h);
    if (!value && len)
        return hm_error(h, HERMES_EINVAL,
                        "hermes_set: value is NULL but len is %zu", len);
    if (!hm_ttl_ok(ttl))
        return hm_error(h, HERMES_EINVAL, "set %s: " HM_TTL_RANGE,
                        key ? key : "(null)", (unsigned long)ttl,
                        HERMES_TTL_MAX);
    direct d;
    hermes_rc rc = direct_init(h, &d, "set", key, tags);
    if (rc == HERMES_OK) {
        int st = HERMES_BE_OK;
        if (d.tags.n) {
            hermes_bytes none = {NULL, 0};
            st = hm_read_entry(h, none, d.tags.n, d.tags.keys, &d.rd);
            if (st == HERMES_BE_OK)
                st = hm_tags_ensure(h, d.tags.n, d.tags.keys, &d.rd);
        }
        if (st == HERMES_BE_OK)
            st = hm_write_entry(h, hm_bytes(d.entry.data, d.entry.len),
                                &direct_owner, &d.tags, &d.rd, value, len,
                                ttl != HERMES_TTL_DEFAULT ? ttl : h->cfg.ttl, 0,
                                0, NULL);
        if (st != HERMES_BE_OK)
            rc = hm_be_error(h, st, "set %s", key);
    }
    direct_free(&d);
    return rc;
}

hermes_rc hermes_delete(hermes *h, const char *key)
{
    HM_ENTER(h);
    direct d;
    hermes_rc rc = direct_init(h, &d, "delete", key, NULL);
    if (rc == HERMES_OK) {
        hermes_bytes k = hm_bytes(d.entry.data, d.entry.len);
        int st = hm_be_del(h, &k, 1);
        if (st != HERMES_BE_OK)
            rc = hm_be_error(h, st, "delete %s", key);
    }
    direct_free(&d);
    return rc;
}

hermes_rc hermes_clean(hermes *h, const char *const *tags)
{
    HM_ENTER(h);
    /* Python's clean() with no tags empties the whole store; here that is
     * hermes_flush(), never an accident of an empty list. */
    if (!tags || !tags[0])
        return hm_error(h, HERMES_EINVAL,
                        "clean: no tags given (to delete every entry, call "
                        "hermes_flush)");
    hm_taglist t;
    hermes_rc rc = hm_taglist_build(h, tags, &t);
    if (rc == HERMES_OK) {
        int st = hm_be_del(h, t.keys, t.n);
        if (st != HERMES_BE_OK)
            rc = hm_be_error(h, st, "clean");
    }
    hm_taglist_free(&t);
    return rc;
}

/*
 * A new version of the namespace tag: every entry under the prefix was
 * written under an older one and is stale from now on.  Overwritten rather
 * than deleted, so that the callers right after a flush find the tag and
 * share their computations in-process as usual (an absent tag makes a
 * flight unshareable, memo.c); deleted when no random bytes are to be had.
 */
static int bump_namespace(hermes *h)
{
    unsigned char v[HM_VERSION_LEN];
    hermes_bytes ns = hm_bytes(h->ns_key, strlen(h->ns_key));
    if (hm_version_new(v) != 0)
        return hm_be_del(h, &ns, 1);
    hermes_item it = {ns, {v, sizeof v}, 0, 0}; /* tags never expire */
    return hm_be_set(h, &it, 1, NULL, NULL);
}

/*
 * On a backend that deletes by prefix, one flush() of "<prefix>:".  On one
 * that cannot (HERMES_CAP_NO_PREFIX_FLUSH), a new version of the namespace
 * tag every entry carries (taglist.h) makes them all stale at once; then
 * the plugin's flush() may add what its configuration allows (memcached's
 * flush_all), or answer HERMES_BE_UNSUPPORTED: nothing more to do.
 */
hermes_rc hermes_flush(hermes *h)
{
    HM_ENTER(h);
    if (h->ns_key) {
        int st = bump_namespace(h);
        if (st != HERMES_BE_OK)
            return hm_be_error(
                h, st, "flush: new version of the namespace key %s", h->ns_key);
    }
    hm_buf prefix;
    hm_buf_init(&prefix);
    hm_buf_adds(&prefix, h->cfg.prefix);
    hm_buf_add(&prefix, ":", 1);
    if (prefix.failed) {
        hm_buf_free(&prefix);
        return hm_error(h, HERMES_ENOMEM, "flush: out of memory");
    }
    int st = hm_be_flush(h, hm_bytes(prefix.data, prefix.len));
    hm_buf_free(&prefix);
    if (h->ns_key && st == HERMES_BE_UNSUPPORTED)
        st = HERMES_BE_OK;
    if (st != HERMES_BE_OK && h->ns_key)
        return hm_be_error(h, st,
                           "flush: every entry is invalidated (%s has a new "
                           "version), but the backend's own flush failed",
                           h->ns_key);
    if (st != HERMES_BE_OK)
        return hm_be_error(h, st, "flush");
    return HERMES_OK;
}
