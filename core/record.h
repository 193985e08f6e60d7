/*
 * The value record: what an entry key holds.  A small versioned header
 * (magic, format, flags, creation time, measured compute time, the tag
 * names and the tag versions the value was computed under), the payload,
 * and a checksum.  Anything that does not decode is treated as a miss.
 *
 *   off  size  field
 *   0    4     magic "HRM1"
 *   4    1     format version (1)
 *   5    1     flags (none defined yet; unknown flags make it foreign)
 *   6    2     number of tags (LE)
 *   8    8     creation time, ms since the epoch (LE)
 *   16   4     compute time in microseconds (LE)
 *   20   4     payload length (LE)
 *   24   ...   per tag: u16 name length, name, u16 version length, version
 *   ...  n     payload
 *   end  4     low 32 bits of XXH3-64 of everything before it (LE)
 */
#ifndef HERMES_CORE_RECORD_H
#define HERMES_CORE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include <hermes/backend.h>

#define HM_RECORD_MAGIC "HRM1"
#define HM_RECORD_FORMAT 1
#define HM_RECORD_HEADER 24
#define HM_RECORD_MAX_TAG 65535

/* A tag version the core writes: the pickle of a 22-character str (see
 * hm_version_new in tags.h), 37 bytes.  Versions read back are opaque bytes
 * of any length, kept up to HM_VERSION_MAX (longer ones are hashed). */
#define HM_VERSION_LEN 37
#define HM_VERSION_MAX 255

typedef struct hm_record_in {
    size_t ntags;
    const char *const *tags;      /* names */
    const hermes_bytes *versions; /* the versions read before computing */
    uint64_t created_ms;
    uint32_t compute_us;
    const void *payload;
    size_t payload_len;
} hm_record_in;

/* Encodes a record into a malloc'ed buffer; NULL when out of memory or a
 * field does not fit its width. */
unsigned char *hm_record_encode(const hm_record_in *in, size_t *len);

typedef struct hm_record {
    uint64_t created_ms;
    uint32_t compute_us;
    size_t ntags;
    const unsigned char *tags_at; /* start of the tag list, for iteration */
    const unsigned char *payload;
    size_t payload_len;
} hm_record;

/* Decodes and verifies p (n bytes).  0 on success, -1 when corrupt or
 * foreign.  The result points into p. */
int hm_record_decode(const void *p, size_t n, hm_record *out);

/* Iterates the tag list: call with *cursor = rec->tags_at first; returns 0
 * and sets name/version, or -1 past the end. */
int hm_record_next_tag(const hm_record *rec, const unsigned char **cursor,
                       hermes_bytes *name, hermes_bytes *version);

/* Compares the record's tags with names[] and versions[]: 0 when the same
 * names in the same order with the same versions, else 1 + the index of the
 * first tag that differs (names differing: the list does not match). */
size_t hm_record_stale_at(const hm_record *rec, size_t ntags,
                          const hermes_bytes *names, const hermes_bytes *vers);

#endif
