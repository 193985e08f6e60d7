/*
 * The key space of a handle (keyspace.c).
 */
#ifndef HERMES_CORE_KEYSPACE_H
#define HERMES_CORE_KEYSPACE_H

#include "internal.h"
#include "keys.h"

/*
 * Builds the entry key "<prefix>:entry:<name>:<arghash>" of a call (or
 * "<prefix>:entry:<custom>" from the function's key callback, which gets
 * arg).  HERMES_ENOMEM, HERMES_EINVAL (the key function failed; message
 * set) or HERMES_OK.
 */
hermes_rc hm_entry_key(hermes_fn *fn, const void *args, size_t alen, void *arg,
                       hm_buf *entry);

/* Who an entry belongs to, as its record says (record.h). */
typedef struct hm_owner {
    const char *name; /* the function's name, or NULL for direct access */
    size_t name_len;
    bool name_in_key; /* the key is "<prefix>:entry:<name>:<arghash>" */
} hm_owner;

/* The owner of fn's entry under key `entry` (built by hm_entry_key). */
void hm_fn_owner(const hermes_fn *fn, const hm_buf *entry, hm_owner *o);

/* Builds the direct-access key "<prefix>:entry:<key>" (key escaped). */
hermes_rc hm_direct_key(hermes *h, const char *key, hm_buf *entry);

/* Builds "<prefix>:tag:<tag>" into b (reset first); b->failed on ENOMEM. */
void hm_tag_key(hermes *h, const char *tag, hm_buf *b);

#endif
