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
 * HERMES_OK; on failure t is empty and needs no free.
 */
hermes_rc hm_taglist_build(hermes *h, const char *const *tags, hm_taglist *t);
void hm_taglist_free(hm_taglist *t);

#endif
