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

/* Builds the direct-access key "<prefix>:entry:<key>" (key escaped). */
hermes_rc hm_direct_key(hermes *h, const char *key, hm_buf *entry);

/* Builds "<prefix>:tag:<tag>" into b (reset first); b->failed on ENOMEM. */
void hm_tag_key(hermes *h, const char *tag, hm_buf *b);

#endif
