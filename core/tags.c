/*
 * The tag protocol (DESIGN.md "The tag protocol").
 *
 * An entry's key does not depend on tag versions; its record carries the
 * versions it was computed under.  A read is one batched get of the entry
 * and all its tags; it is a hit only when every stored version equals the
 * tag's current value.  Missing tags are created set-if-absent and the
 * winning value is read back in the same round trip, so two creators agree.
 * Writes carry the versions read before computing, so an invalidation that
 * lands during a computation leaves the new record stale at once.
 */
#include <stdlib.h>
#include <string.h>

#include "tags.h"

int hm_read_init(hm_read *rd, size_t ntags)
{
    /* Field by field (every field before small_found), as a memset of
     * them was a call, on every call. */
    rd->entry = NULL;
    rd->entry_len = 0;
    rd->dec = 0;
    rd->stale_tag = 0;
    rd->nomem = false;
    rd->tags_only = false;
    rd->key = (hermes_bytes){NULL, 0};
    rd->intact = false;
    rd->ntags = ntags;
    /* No tag found yet: the whole small array at once, a constant size the
     * compiler stores inline (a loop of ntags became a call to memset). */
    if (ntags <= sizeof rd->small_found) {
        memset(rd->small_found, 0, sizeof rd->small_found);
        rd->found = rd->small_found;
        rd->vids = rd->small_vids;
    } else {
        rd->found = calloc(ntags, sizeof *rd->found);
        rd->vids = malloc(ntags * sizeof *rd->vids);
        if (!rd->found || !rd->vids) {
            free(rd->found);
            free(rd->vids);
            rd->found = NULL;
            rd->vids = NULL;
            return -1;
        }
    }
    return 0;
}

/* The entries' frees are skipped when empty (a hit has moved its payload
 * out; a first read has none yet): a call into free() each, per hit. */
static void drop_entry(hm_read *rd)
{
    if (rd->entry) {
        free(rd->entry);
        rd->entry = NULL;
    }
}

void hm_read_free(hm_read *rd)
{
    drop_entry(rd);
    if (rd->found != rd->small_found) {
        free(rd->found);
        free(rd->vids);
    }
    rd->found = NULL;
    rd->vids = NULL;
}

/* A tag's value, of any length, is kept as its 64-bit id: it compares
 * equal exactly when the value is equal (but for a 2^-64 chance). */
static void set_version(hm_read *rd, size_t i, const void *v, size_t len)
{
    rd->vids[i] = hm_version_id(v, len);
    rd->found[i] = true;
}

/*
 * The entry's bytes, decoded and checked against the entry key while the
 * backend still holds them: only the payload, name and tag fields are
 * copied, so a hit copies its payload once and moves nothing.
 */
static void keep_entry(hm_read *rd, const unsigned char *value, size_t len)
{
    /* Decoded in place; its pointers are moved into entry below, or
     * cleared: none may outlive the backend's bytes. */
    hm_record *rec = &rd->rec;
    drop_entry(rd);
    rd->dec = rd->intact ? hm_record_decode_intact(value, len, rec)
                         : hm_record_decode(value, len, rd->key, rec);
    size_t pay = rd->dec == HM_RECORD_OK ? rec->payload_len : 0;
    size_t meta = rd->dec == HM_RECORD_OK
                      ? rec->name_len + HM_RECORD_TAG_SIZE * rec->ntags
                      : 0;
    rd->entry = malloc(pay + 1 + meta);
    if (!rd->entry || rd->dec != HM_RECORD_OK) {
        memset(rec, 0, sizeof *rec);
        if (!rd->entry) {
            rd->nomem = true;
            return;
        }
    }
    rd->entry_len = pay;
    rd->entry[pay] = '\0';
    if (rd->dec != HM_RECORD_OK)
        return;
    memcpy(rd->entry, rec->payload, pay);
    /* The name and the tags are adjacent in the record. */
    memcpy(rd->entry + pay + 1, rec->name, meta);
    rec->payload = rd->entry;
    rec->name = rd->entry + pay + 1;
    rec->tags_at = rec->name + rec->name_len;
}

/* Index 0 is the entry, 1..ntags the tags. */
static void on_read_value(void *arg, size_t index, const void *value,
                          size_t len)
{
    hm_read *rd = arg;
    if (rd->tags_only)
        index++;
    if (index == 0)
        keep_entry(rd, value, len);
    else if (index <= rd->ntags)
        set_version(rd, index - 1, value, len);
}

/* One batched get of the entry and its tags, behind the lock when lock is
 * not NULL. */
static int read_batch(hermes *h, const hm_lock_ref *lock, int *acquired,
                      hermes_bytes entry_key, size_t ntags,
                      const hermes_bytes *tag_keys, hm_read *rd)
{
    hermes_bytes small[5], *keys = small;
    if (ntags + 1 > 5) {
        keys = malloc((ntags + 1) * sizeof *keys);
        if (!keys)
            return HERMES_BE_NOMEM;
    }
    keys[0] = entry_key;
    if (ntags)
        memcpy(keys + 1, tag_keys, ntags * sizeof *keys);
    rd->tags_only = entry_key.data == NULL;
    rd->key = entry_key;
    rd->intact = h->records_intact;
    drop_entry(rd);
    rd->entry_len = 0;
    for (size_t i = 0; i < ntags; i++)
        rd->found[i] = false;
    const hermes_bytes *from = rd->tags_only ? keys + 1 : keys;
    size_t n = rd->tags_only ? ntags : ntags + 1;
    int st = lock ? hm_be_lock_get(h, lock->key, lock->token, lock->ttl_ms,
                                   acquired, from, n, on_read_value, rd)
                  : hm_be_get(h, from, n, on_read_value, rd);
    if (keys != small)
        free(keys);
    if (st == HERMES_BE_OK && rd->nomem)
        st = HERMES_BE_NOMEM;
    return st;
}

int hm_read_entry(hermes *h, hermes_bytes entry_key, size_t ntags,
                  const hermes_bytes *tag_keys, hm_read *rd)
{
    return read_batch(h, NULL, NULL, entry_key, ntags, tag_keys, rd);
}

uint64_t hm_tag_epoch(hermes *h)
{
    return atomic_load_explicit(&h->tag_epoch, memory_order_acquire);
}

/* The versions memo holds for the current epoch, into rd's n tags (each
 * marked found: one loop, as a separate one became a call to memset);
 * false when it holds none (or a writer is filling it in), and then what
 * it left in rd counts for nothing: the full read that follows marks
 * every tag not found, and a version counts only where its tag was. */
static bool memo_read(hermes *h, hm_tag_memo *memo, size_t n, hm_read *rd)
{
    uint64_t seq = atomic_load_explicit(&memo->seq, memory_order_acquire);
    if (seq & 1)
        return false;
    /* Acquire loads keep the second load of seq after them (no fences:
     * ThreadSanitizer does not model them). */
    uint64_t epoch = atomic_load_explicit(&memo->epoch, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        rd->vids[i] =
            atomic_load_explicit(&memo->vids[i], memory_order_acquire);
        rd->found[i] = true;
    }
    return atomic_load_explicit(&memo->seq, memory_order_relaxed) == seq &&
           epoch == hm_tag_epoch(h);
}

void hm_tag_memo_keep(hermes *h, hm_tag_memo *memo, uint64_t epoch,
                      const hm_read *rd)
{
    if (!h->tags_private || rd->ntags == 0 || rd->ntags > HM_TAG_MEMO_MAX)
        return;
    for (size_t i = 0; i < rd->ntags; i++)
        if (!rd->found[i])
            return;
    uint64_t seq = atomic_load_explicit(&memo->seq, memory_order_relaxed);
    /* Another writer at it: its versions do as well as ours. */
    if ((seq & 1) || !atomic_compare_exchange_strong_explicit(
                         &memo->seq, &seq, seq + 1, memory_order_acquire,
                         memory_order_relaxed))
        return;
    /* Release stores: a reader that sees one sees seq odd as well. */
    atomic_store_explicit(&memo->epoch, epoch, memory_order_release);
    for (size_t i = 0; i < rd->ntags; i++)
        atomic_store_explicit(&memo->vids[i], rd->vids[i],
                              memory_order_release);
    atomic_store_explicit(&memo->seq, seq + 2, memory_order_release);
}

int hm_read_entry_memo(hermes *h, hm_tag_memo *memo, hermes_bytes entry_key,
                       hm_read *rd)
{
    if (!h->tags_private || rd->ntags == 0 || rd->ntags > HM_TAG_MEMO_MAX ||
        !memo_read(h, memo, rd->ntags, rd))
        return -1;
    return read_batch(h, NULL, NULL, entry_key, 0, NULL, rd);
}

int hm_lock_read_entry(hermes *h, const hm_lock_ref *lock, int *acquired,
                       hermes_bytes entry_key, size_t ntags,
                       const hermes_bytes *tag_keys, hm_read *rd)
{
    *acquired = 0;
    if (!HERMES_BACKEND_HAS_OP(h->be, lock_get))
        return HERMES_BE_UNSUPPORTED;
    return read_batch(h, lock, acquired, entry_key, ntags, tag_keys, rd);
}

/* Whether the record was written by owner (any writer for a direct read). */
static bool same_owner(const hm_record *rec, const hm_owner *owner)
{
    if (!owner->name)
        return true;
    bool in_key = rec->flags & HM_REC_NAME_IN_KEY;
    if (in_key != owner->name_in_key)
        return false;
    return in_key || (rec->name_len == owner->name_len &&
                      memcmp(rec->name, owner->name, owner->name_len) == 0);
}

void hm_count_verdict(hermes *h, hm_verdict v)
{
    if (v == HM_STALE)
        HM_COUNT(h, stale, 1);
    else if (v == HM_FOREIGN)
        HM_COUNT(h, foreign, 1);
    else if (v == HM_CORRUPT)
        HM_COUNT(h, corrupt, 1);
}

hm_verdict hm_judge(hermes *h, hm_read *rd, const hm_owner *owner,
                    const hm_taglist *tags)
{
    (void)h;
    if (!rd->entry)
        return HM_ABSENT;
    if (rd->dec == HM_RECORD_CORRUPT)
        return HM_CORRUPT;
    if (rd->dec != HM_RECORD_OK || !same_owner(&rd->rec, owner))
        return HM_FOREIGN;
    /* One walk over the record's tags: the tag list must be the
     * function's (else foreign); stale at the first tag that is gone, else
     * at the first whose version moved. */
    size_t missing = SIZE_MAX, moved = SIZE_MAX;
    if (!hm_record_tags_check(&rd->rec, tags->n, tags->ids, rd->found, rd->vids,
                              &missing, &moved))
        return HM_FOREIGN;
    if (missing != SIZE_MAX || moved != SIZE_MAX) {
        rd->stale_tag = missing != SIZE_MAX ? missing : moved;
        return HM_STALE;
    }
    return HM_HIT;
}

int hm_version_new(unsigned char out[HM_VERSION_LEN])
{
    static const unsigned char head[13] = {0x80, 0x04, 0x95, 26, 0,    0, 0,
                                           0,    0,    0,    0,  0x8c, 22};
    _Static_assert(sizeof head + HM_HASH_B64_LEN + 2 == HM_VERSION_LEN,
                   "a pickled 22-character str is 37 bytes");
    unsigned char raw[16];
    if (hm_random(raw, sizeof raw) != 0)
        return -1;
    memcpy(out, head, sizeof head);
    hm_b64url(raw, sizeof raw, (char *)out + sizeof head);
    out[sizeof head + 22] = 0x94;
    out[sizeof head + 23] = 0x2e;
    return 0;
}

typedef struct ensure_ctx {
    hm_read *rd;
    size_t *slot; /* item index -> tag index */
    size_t n;     /* items */
} ensure_ctx;

static void on_tag_winner(void *arg, size_t index, const void *value,
                          size_t len)
{
    ensure_ctx *c = arg;
    if (index < c->n) /* a faulty plugin must not make us write anywhere */
        set_version(c->rd, c->slot[index], value, len);
}

int hm_tags_ensure(hermes *h, size_t ntags, const hermes_bytes *tag_keys,
                   hm_read *rd)
{
    size_t missing = 0;
    for (size_t i = 0; i < ntags; i++)
        missing += !rd->found[i];
    if (missing == 0)
        return HERMES_BE_OK;
    hermes_item *items = calloc(missing, sizeof *items);
    size_t *slot = calloc(missing, sizeof *slot);
    unsigned char(*fresh)[HM_VERSION_LEN] = calloc(missing, HM_VERSION_LEN);
    int st = HERMES_BE_NOMEM;
    if (!items || !slot || !fresh)
        goto out;
    size_t k = 0;
    for (size_t i = 0; i < ntags; i++) {
        if (rd->found[i])
            continue;
        if (hm_version_new(fresh[k]) != 0)
            goto out;
        items[k].key = tag_keys[i];
        items[k].value.data = fresh[k];
        items[k].value.len = HM_VERSION_LEN;
        items[k].ttl_ms = 0; /* tags never expire, as in Hermes */
        items[k].flags = HERMES_SET_IF_ABSENT;
        slot[k] = i;
        k++;
    }
    ensure_ctx c = {rd, slot, missing};
    st = hm_be_set(h, items, missing, on_tag_winner, &c);
    if (st == HERMES_BE_OK) {
        for (size_t i = 0; i < ntags; i++) {
            if (!rd->found[i]) {
                /* The plugin did not report the winner: a broken plugin.
                 * Failing open beats caching under an unknown version. */
                st = HERMES_BE_PROTOCOL;
                break;
            }
        }
    }
out:
    free(items);
    free(slot);
    free(fresh);
    return st;
}

int hm_write_entry(hermes *h, hermes_bytes entry_key, const hm_owner *owner,
                   const hm_taglist *tags, const hm_read *rd,
                   const void *payload, size_t len, uint32_t ttl_s,
                   uint32_t grace_s, uint32_t compute_us, hm_unlock *un)
{
    /* The API refuses TTLs between HERMES_TTL_MAX and HERMES_TTL_FOREVER,
     * so every TTL fits in milliseconds: nothing is silently shortened.
     * The record and the backend both say "no expiry" with 0. */
    if (ttl_s == HERMES_TTL_DEFAULT ||
        (ttl_s > HERMES_TTL_MAX && ttl_s != HERMES_TTL_FOREVER))
        return HERMES_BE_INVALID;
    if (ttl_s == HERMES_TTL_FOREVER)
        ttl_s = 0;
    hm_record_in in = {
        .flags = owner->name_in_key ? HM_REC_NAME_IN_KEY : 0,
        .name = owner->name_in_key ? NULL : owner->name,
        .name_len = owner->name_in_key ? 0 : owner->name_len,
        .ntags = tags->n,
        .tag_ids = tags->ids,
        .version_ids = rd->vids,
        .created_ms = hm_now_ms(),
        .ttl_s = ttl_s,
        .compute_us = compute_us,
        .payload = payload,
        .payload_len = len,
    };
    size_t rlen;
    unsigned char *rec = hm_record_encode(&in, entry_key, &rlen);
    if (!rec)
        return HERMES_BE_NOMEM;
    uint64_t keep_ms = ttl_s ? ((uint64_t)ttl_s + grace_s) * 1000u : 0;
    hermes_item item = {
        .key = entry_key,
        .value = {rec, rlen},
        .ttl_ms = keep_ms > UINT32_MAX ? UINT32_MAX : (uint32_t)keep_ms,
        .flags = 0,
    };
    int st, released;
    if (un && HERMES_BACKEND_HAS_OP(h->be, set_unlock)) {
        st = hm_be_set_unlock(h, &item, 1, un->lock.key, un->lock.token,
                              &released);
        un->done = true;
    } else {
        st = hm_be_set(h, &item, 1, NULL, NULL);
    }
    free(rec);
    return st;
}
