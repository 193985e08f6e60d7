/*
 * A tag list as the core keeps it: the caller's tags sorted and
 * de-duplicated, with their lengths and their tag keys built once.  Used by
 * registered functions (fn.c) and by the direct-access calls (direct.c).
 */
#ifndef HERMES_CORE_TAGLIST_H
#define HERMES_CORE_TAGLIST_H

#include "internal.h"

/* struct hm_taglist is defined in internal.h (hermes_fn holds one). */

/*
 * Builds t from a NULL-terminated list (NULL means no tags).  Returns
 * HERMES_EINVAL (message set) for an invalid tag, HERMES_ENOMEM, or
 * HERMES_OK; on failure t is empty and needs no free.  The list of the
 * tags themselves, as hermes_clean() deletes them.
 */
hermes_rc hm_taglist_build(hermes *h, const char *const *tags, hm_taglist *t);

/*
 * The tag list of an entry: as hm_taglist_build, and on a backend that
 * cannot flush by prefix (h->ns_key set) the namespace tag first, so that
 * hermes_flush() can invalidate every entry by deleting one key.  The
 * namespace tag is named "" (no user tag can be: a tag is non-empty, and
 * "" sorts first, so the list stays sorted), has the tag id of "" in
 * records, and its key is "<prefix>:ns", outside "<prefix>:tag:" where
 * every user tag's key lives.  t->ns says it is there.
 */
hermes_rc hm_taglist_build_entry(hermes *h, const char *const *tags,
                                 hm_taglist *t);

/* For the message of a tag list too long: why the limit is one less. */
static inline const char *hm_ns_note(const hermes *h)
{
    return h->ns_key ? " on this backend (its entries also carry the "
                       "namespace tag of hermes_flush)"
                     : "";
}

/* The number of tags the caller gave: t->n without the namespace tag. */
static inline size_t hm_taglist_user(const hm_taglist *t)
{
    return t->n - t->ns;
}
void hm_taglist_free(hm_taglist *t);

#endif
