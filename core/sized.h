/*
 * Structs that cross the API carry the size the caller was compiled with
 * (hermes_fn_options.size, the size argument of hermes_stats_get).  These
 * two helpers are the only place that reads or writes one, so the rule is
 * the same everywhere: fields are only ever appended; a newer library reads
 * an older caller's prefix and treats the missing fields as zero; an older
 * library refuses a newer caller's struct whose unknown tail is not zero
 * (the technique of Linux's openat2/clone3), and writes only what fits.
 */
#ifndef HERMES_CORE_SIZED_H
#define HERMES_CORE_SIZED_H

#include <stdbool.h>
#include <stddef.h>

/* Copies a caller's struct of `size` bytes into ours (`ours` bytes),
 * zero-filling what the caller's is too short to hold.  False when the
 * caller's struct is longer and its extra bytes are not all zero. */
bool hm_sized_in(void *dst, size_t ours, const void *src, size_t size);

/* Writes our struct into a caller's of `size` bytes: at most size bytes,
 * and zeroes the caller's bytes beyond ours. */
void hm_sized_out(void *dst, size_t size, const void *src, size_t ours);

#endif
