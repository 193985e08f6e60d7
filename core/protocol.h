/*
 * The tag protocol (tags.c) and dogpile control (dogpile.c), as used by the
 * memoized call and the direct-access API in hermes.c.
 */
#ifndef HERMES_CORE_PROTOCOL_H
#define HERMES_CORE_PROTOCOL_H

#include "internal.h"
#include "keys.h"
#include "record.h"

/* Tag versions are 16 random bytes in base64url: 22 characters, like the
 * hashes Python HermesCache stores.  Versions read back are opaque bytes of
 * any length up to HM_VERSION_MAX. */
#define HM_VERSION_LEN 22
#define HM_VERSION_MAX 255

typedef struct hm_version {
    bool found;
    uint8_t len;
    char data[HM_VERSION_MAX];
} hm_version;

/* What one batched read of an entry and its tags found. */
typedef struct hm_read {
    size_t ntags;
    hm_version *vers;     /* ntags slots */
    hermes_bytes *vbytes; /* the same, as hermes_bytes, for the record */
    unsigned char *entry; /* the entry's raw bytes (malloc'ed) or NULL */
    size_t entry_len;
    bool nomem;          /* copying a value ran out of memory */
    bool tags_only;      /* the batch had no entry key */
    hm_version small[4]; /* storage for up to 4 tags without malloc */
    hermes_bytes small_b[4];
} hm_read;

typedef enum hm_verdict {
    HM_HIT = 0,
    HM_ABSENT, /* no entry */
    HM_STALE,  /* entry computed under another version of a tag */
    HM_CORRUPT /* entry bytes that do not decode, or another tag list */
} hm_verdict;

int hm_read_init(hm_read *rd, size_t ntags);
void hm_read_free(hm_read *rd);

/*
 * One batched get of the entry key and the tag keys (only the tags when
 * entry_key.data is NULL).  Returns the backend status; on success rd holds
 * what was found.
 */
int hm_read_entry(hermes *h, hermes_bytes entry_key, size_t ntags,
                  const hermes_bytes *tag_keys, hm_read *rd);

/*
 * Judges what hm_read_entry found against the tag names.  On HM_HIT,
 * *payload and *len point into rd->entry.  A corrupt record is counted.
 */
hm_verdict hm_judge(hermes *h, hm_read *rd, const hermes_bytes *tags,
                    const void **payload, size_t *len);

/*
 * Creates every tag the read did not find, set-if-absent with a fresh
 * random version, and records in rd the version that won (one batched
 * round trip).  Returns the backend status.
 */
int hm_tags_ensure(hermes *h, size_t ntags, const hermes_bytes *tag_keys,
                   hm_read *rd);

/* Writes the record for payload under the versions in rd. */
int hm_write_entry(hermes *h, hermes_bytes entry_key, size_t ntags,
                   const char *const *tags, const hm_read *rd,
                   const void *payload, size_t len, uint32_t ttl_s,
                   uint32_t compute_us);

/* Builds "<prefix>:tag:<tag>" into b. */
void hm_tag_key(hermes *h, const char *tag, hm_buf *b);

/* ---------------------------------------------------------- dogpile.c */

typedef struct hm_outcome {
    hermes_rc rc;
    unsigned char *value; /* malloc'ed, NUL-terminated after len */
    size_t len;
    char *errmsg; /* for a failed computation, or NULL */
} hm_outcome;

int hm_flights_init(hm_flights *f);
void hm_flights_free(hm_flights *f);

/*
 * Joins the in-process computation of key.  Returns NULL when the caller is
 * the leader (it must call hm_flight_land) and a flight to wait on
 * otherwise.  *leader_flight receives the leader's flight.
 */
hm_flight *hm_flight_join(hermes *h, const char *key, size_t klen,
                          hm_flight **leader_flight);
/* The leader publishes its outcome (copied) and leaves the flight. */
void hm_flight_land(hermes *h, hm_flight *f, const hm_outcome *o);
/*
 * A follower waits until the leader lands or timeout_ns passes.  Returns 0
 * with a copy of the outcome in *o, or -1 on timeout.  Either way the
 * follower has left the flight.
 */
int hm_flight_wait(hermes *h, hm_flight *f, uint64_t timeout_ns, hm_outcome *o);

void hm_outcome_free(hm_outcome *o);

/* A lock owner token: "<host>:<pid>:<random>", unique per acquisition. */
void hm_lock_token(hermes *h, char *buf, size_t cap, size_t *len);

/* Jittered exponential backoff: the next sleep after `prev` ns. */
uint64_t hm_backoff_next(uint64_t prev_ns);

#endif
