/*
 * The value record, format 2: what an entry key holds.  A small header,
 * the tags the value was computed under, the payload and a checksum that
 * also covers the entry key, so a record is valid only under the key it
 * was written for.  Anything that does not decode is a miss.
 *
 * Layout (integers little-endian):
 *
 *   off        size   field
 *   0          1      magic 'H' (0x48)
 *   1          1      format: 2
 *   2          1      flags: bit 0 HM_REC_NAME_IN_KEY; any other bit set
 *                     makes the record undecodable
 *   3          1      T, the number of tags (0-255)
 *   4          1      L, the length of the function's name (0-255)
 *   5          6      creation time, ms since the Unix epoch (u48)
 *   11         4      TTL in seconds (u32, 0 = no expiry): the record's
 *                     logical expiry is creation + TTL
 *   15         4      compute time of the value in microseconds (u32)
 *   19         L      the cached function's name
 *   19+L       12*T   per tag, in the order of the sorted tag list:
 *                       u32 tag id: hm_tag_id(name), the low 32 bits of
 *                           XXH3-64 of the tag's name
 *                       u64 version id: hm_version_id(value), XXH3-64 of
 *                           the bytes the tag key held when the value's
 *                           computation started
 *   19+L+12T   P      the payload: every byte up to the checksum
 *   end-4      4      checksum: the low 32 bits of XXH3-64, seeded with
 *                     XXH3-64 of the entry key, of every byte before it
 *
 * So a record costs 23 + L + 12*T bytes beyond its payload: 47 for a
 * function with 2 tags whose name is in its key.
 *
 * The function that wrote a record: with HM_REC_NAME_IN_KEY (and L = 0),
 * the key's own, "<prefix>:entry:<escaped name>:<arghash>", i.e. the text
 * between "<prefix>:entry:" and the key's last ':'; else the L bytes of the
 * name (a custom key or a key hashed to fit the backend); L = 0 without the
 * flag is a hermes_set() record, written by no function.
 *
 * Verdicts a reader draws (tags.h): the entry is fresh when every version
 * id equals the id of its tag's current value; stale at tag i when the
 * i-th differs or the tag is gone; foreign when the record was written
 * for another tag list (the tag ids differ: a redeploy changed the tags)
 * or by another function, or in another format (HRM1, format 1, or a newer
 * one).  Tag ids let a reader that knows candidate names (scanned tag
 * keys, registered functions) say which tag moved.
 */
#ifndef HERMES_CORE_RECORD_H
#define HERMES_CORE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hermes/backend.h>

#define HM_RECORD_MAGIC 'H'
#define HM_RECORD_FORMAT 2
#define HM_RECORD_HEADER 19
#define HM_RECORD_TAG_SIZE 12
#define HM_RECORD_TRAILER 4
#define HM_RECORD_MAX_TAGS 255
#define HM_RECORD_MAX_NAME 255
#define HM_RECORD_MAX_CREATED ((UINT64_C(1) << 48) - 1)

/* The function's name is the entry key's (see above). */
#define HM_REC_NAME_IN_KEY 0x01u

/* The 32-bit id of a tag name and the 64-bit id of a tag's value. */
uint32_t hm_tag_id(const void *name, size_t len);
uint64_t hm_version_id(const void *value, size_t len);

typedef struct hm_record_in {
    unsigned flags;   /* HM_REC_NAME_IN_KEY or 0 */
    const char *name; /* the function's name (name_len bytes) or NULL */
    size_t name_len;
    size_t ntags;
    const uint32_t *tag_ids;     /* hm_tag_id() of each tag, sorted order */
    const uint64_t *version_ids; /* the versions read before computing */
    uint64_t created_ms;
    uint32_t ttl_s; /* 0 = no expiry */
    uint32_t compute_us;
    const void *payload;
    size_t payload_len;
} hm_record_in;

/* The size of a record with these fields. */
size_t hm_record_size(size_t name_len, size_t ntags, size_t payload_len);

/* Encodes a record for entry key `key` into a malloc'ed buffer; NULL when
 * out of memory or a field does not fit its width. */
unsigned char *hm_record_encode(const hm_record_in *in, hermes_bytes key,
                                size_t *len);

typedef struct hm_record {
    unsigned flags;
    uint64_t created_ms;
    uint32_t ttl_s;
    uint32_t compute_us;
    const unsigned char *name; /* name_len bytes (0: see flags) */
    size_t name_len;
    size_t ntags;
    const unsigned char *tags_at; /* HM_RECORD_TAG_SIZE bytes per tag */
    const unsigned char *payload;
    size_t payload_len;
    uint32_t checksum; /* with created_ms, tells two records apart */
} hm_record;

/* hm_record_decode() results. */
#define HM_RECORD_OK 0
#define HM_RECORD_CORRUPT                                                      \
    (-1)                         /* damaged, truncated, not a record, or       \
                                    written for another key */
#define HM_RECORD_OTHER_FORMAT 1 /* a record of format 1 or a newer one */

/*
 * Decodes and verifies p (n bytes) as the record of entry key `key`.
 * Returns HM_RECORD_OK (out filled, pointing into p), HM_RECORD_CORRUPT or
 * HM_RECORD_OTHER_FORMAT.
 */
int hm_record_decode(const void *p, size_t n, hermes_bytes key, hm_record *out);

/*
 * hm_record_decode() without the checksum, for bytes that are known to be
 * the very record this handle wrote under the key they were read from:
 * those of the built-in dict (hermes.records_intact), which lives in this
 * process, is private to the handle and is written by nothing else.  Every
 * length is still checked against n, so bytes that are not a record of
 * this format still decode as HM_RECORD_CORRUPT or HM_RECORD_OTHER_FORMAT,
 * never past the buffer.
 */
int hm_record_decode_intact(const void *p, size_t n, hm_record *out);

/* The i-th tag of a decoded record (i < rec->ntags). */
void hm_record_tag(const hm_record *rec, size_t i, uint32_t *tag_id,
                   uint64_t *version_id);

/* Whether the record was written for exactly these tag ids, in order. */
bool hm_record_same_tags(const hm_record *rec, size_t ntags,
                         const uint32_t *tag_ids);

/* For a record of the same tag list: 0 when every version id equals
 * version_ids[i], else 1 + the index of the first that differs. */
size_t hm_record_stale_at(const hm_record *rec, const uint64_t *version_ids);

/*
 * Both checks of a hit in one walk: false when the record was not written
 * for exactly these tag ids, in order.  Else *missing is the index of the
 * first tag not found (found[i] false) and *moved that of the first whose
 * version id differs from vids[i]; each is left alone when there is none.
 */
bool hm_record_tags_check(const hm_record *rec, size_t ntags,
                          const uint32_t *tag_ids, const bool *found,
                          const uint64_t *vids, size_t *missing, size_t *moved);

/* The logical expiry, ms since the epoch; 0 = never. */
uint64_t hm_record_expiry_ms(const hm_record *rec);

#endif
