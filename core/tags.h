/*
 * The tag protocol (tags.c): reading an entry with its tags, judging it,
 * creating tags and writing records, as used by the memoized call (memo.c)
 * and direct access (direct.c).
 */
#ifndef HERMES_CORE_TAGS_H
#define HERMES_CORE_TAGS_H

#include "internal.h"
#include "keys.h"
#include "keyspace.h"
#include "record.h"

/*
 * What one batched read of an entry and its tags found.  The entry's record
 * is decoded as the backend hands it over, and only what a reader needs is
 * copied out of it, in one allocation: the payload first (so that a hit
 * hands the buffer on as it is), a NUL, then the name and tag fields that
 * rec points into.
 */
typedef struct hm_read {
    size_t ntags;
    bool *found;          /* ntags: the tag key exists */
    uint64_t *vids;       /* ntags: hm_version_id() of its value when found */
    unsigned char *entry; /* malloc'ed when the entry key exists, else NULL:
                             its payload when dec is HM_RECORD_OK */
    size_t entry_len;     /* the payload's length */
    int dec;              /* hm_record_decode() of the entry's bytes */
    size_t stale_tag;     /* on HM_STALE: the index of the tag that moved */
    bool nomem;           /* copying a value ran out of memory */
    bool tags_only;       /* the batch had no entry key */
    hermes_bytes key;     /* the entry key the record must be bound to */
    bool intact;          /* the store is the handle's own: its bytes are
                             what it wrote (hm_record_decode_intact) */
    /* hm_read_init() sets every field above one by one: a new one needs
     * its line there. */
    bool small_found[8]; /* storage for up to 8 tags without malloc */
    uint64_t small_vids[8];
    hm_record rec; /* the entry's header when dec is HM_RECORD_OK; its
                      payload, name and tags point into entry */
} hm_read;

typedef enum hm_verdict {
    HM_HIT = 0,
    HM_ABSENT,  /* no entry */
    HM_STALE,   /* computed under another version of a tag (stale_tag) */
    HM_FOREIGN, /* written for another tag list, by another function, or
                   in another record format: a miss, counted as foreign */
    HM_CORRUPT  /* bytes that do not decode as a record of this key */
} hm_verdict;

int hm_read_init(hm_read *rd, size_t ntags);

/* Counts the verdict of a call's first read of a miss (stale, foreign or
 * corrupt), once per call however often the entry is read again. */
void hm_count_verdict(hermes *h, hm_verdict v);
void hm_read_free(hm_read *rd);

/*
 * One batched get of the entry key and the tag keys (only the tags when
 * entry_key.data is NULL).  Returns the backend status; on success rd holds
 * what was found.
 */
int hm_read_entry(hermes *h, hermes_bytes entry_key, size_t ntags,
                  const hermes_bytes *tag_keys, hm_read *rd);

/*
 * As hm_read_entry() for a function's entry, but on a private store whose
 * tag versions memo holds at the current epoch, only the entry is read and
 * the versions come from memo (internal.h, "hm_tag_memo"): returns -1, rd
 * untouched, when memo cannot answer.  A full read's versions, all found,
 * go into memo with hm_tag_memo_keep(), at the epoch loaded before it
 * (hm_tag_epoch()).
 */
int hm_read_entry_memo(hermes *h, hm_tag_memo *memo, hermes_bytes entry_key,
                       hm_read *rd);
uint64_t hm_tag_epoch(hermes *h);
void hm_tag_memo_keep(hermes *h, hm_tag_memo *memo, uint64_t epoch,
                      const hm_read *rd);

/* A lock held by the caller: key and owner token. */
typedef struct hm_lock_ref {
    hermes_bytes key, token;
    uint32_t ttl_ms;
} hm_lock_ref;

/*
 * Takes the lock (*acquired says whether) and reads as hm_read_entry()
 * does, in one round trip (the backend's lock_get, ABI 1.2); the read is
 * made whether or not the lock was taken.  HERMES_BE_UNSUPPORTED when the
 * backend lacks lock_get.
 */
int hm_lock_read_entry(hermes *h, const hm_lock_ref *lock, int *acquired,
                       hermes_bytes entry_key, size_t ntags,
                       const hermes_bytes *tag_keys, hm_read *rd);

/*
 * Judges what hm_read_entry found against the owner (the function reading
 * it, or a direct read: any writer) and its tags.  On HM_HIT the payload is
 * rd->entry (rd->entry_len bytes, NUL-terminated), which the caller may
 * take over.
 */
hm_verdict hm_judge(hermes *h, hm_read *rd, const hm_owner *owner,
                    const hm_taglist *tags);

/*
 * A new tag version, in the bytes Python HermesCache reads back: 16 random
 * bytes in base64url (22 characters, the length of HermesCache's own md5
 * hashes), stored as the pickle of that str.  HermesCache stores every
 * value with pickle.dumps() and its default protocol, 4 on Python 3.8 to
 * 3.13, which every Python 3.4+ reads; a tag version is 37 bytes:
 *
 *   80 04           PROTO 4
 *   95 <u64 LE 26>  FRAME of the 26 bytes that follow
 *   8c 16 <22 B>    SHORT_BINUNICODE, the 22 characters
 *   94              MEMOIZE
 *   2e              STOP
 *
 * Writes HM_VERSION_LEN bytes to out; -1 when no random bytes were had.
 */
#define HM_VERSION_LEN 37
int hm_version_new(unsigned char out[HM_VERSION_LEN]);

/*
 * Creates every tag the read did not find, set-if-absent with a fresh
 * random version, and records in rd the version that won (one batched
 * round trip).  Returns the backend status.
 */
int hm_tags_ensure(hermes *h, size_t ntags, const hermes_bytes *tag_keys,
                   hm_read *rd);

/* A lock to release together with a write (hm_write_entry): done is set
 * when the write's round trip carried the unlock, which the caller then
 * does not send again (one that failed leaves the lock to its TTL). */
typedef struct hm_unlock {
    hm_lock_ref lock;
    bool done;
} hm_unlock;

/* Writes the record of owner for payload under the versions in rd; ttl_s is
 * resolved (1..HERMES_TTL_MAX seconds or HERMES_TTL_FOREVER), anything else
 * is HERMES_BE_INVALID.  The record says ttl_s; the backend keeps it
 * grace_s longer (capped at the longest TTL a backend takes), so that the
 * old value is there to serve while it is recomputed (fresh.c).  With un,
 * and a backend that has set_unlock (ABI 1.2), the lock is released in the
 * same round trip and un->done set; otherwise releasing it is left to the
 * caller. */
int hm_write_entry(hermes *h, hermes_bytes entry_key, const hm_owner *owner,
                   const hm_taglist *tags, const hm_read *rd,
                   const void *payload, size_t len, uint32_t ttl_s,
                   uint32_t grace_s, uint32_t compute_us, hm_unlock *un);

#endif
