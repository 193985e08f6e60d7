/*
 * Encoding and verification of the value record described in record.h.
 * Decoding never trusts a length: every field is bounds-checked against the
 * buffer and the checksum, seeded with the entry key, is verified, so
 * foreign, truncated or moved bytes are a clean miss.
 */
#include <stdlib.h>
#include <string.h>

/* The header's own inline build (a supported use of libxxhash's header):
 * a hit hashes a few short inputs, where the call into the shared library
 * and its dispatch cost as much as the hashing. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "record.h"

static void put_le(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* The tag fields, read on every hit: one load each where the host is
 * little-endian, as the record is. */
static uint32_t get_le32(const unsigned char *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
#else
    return (uint32_t)get_le(p, 4);
#endif
}

static uint64_t get_le64(const unsigned char *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
#else
    return get_le(p, 8);
#endif
}

uint32_t hm_tag_id(const void *name, size_t len)
{
    return (uint32_t)XXH3_64bits(name, len);
}

uint64_t hm_version_id(const void *value, size_t len)
{
    return XXH3_64bits(value, len);
}

/* The checksum of body (n bytes) as the record of key. */
static uint32_t checksum(const void *body, size_t n, hermes_bytes key)
{
    return (uint32_t)XXH3_64bits_withSeed(body, n,
                                          XXH3_64bits(key.data, key.len));
}

size_t hm_record_size(size_t name_len, size_t ntags, size_t payload_len)
{
    return HM_RECORD_HEADER + name_len + HM_RECORD_TAG_SIZE * ntags +
           payload_len + HM_RECORD_TRAILER;
}

unsigned char *hm_record_encode(const hm_record_in *in, hermes_bytes key,
                                size_t *len)
{
    if (in->ntags > HM_RECORD_MAX_TAGS || in->name_len > HM_RECORD_MAX_NAME ||
        in->flags > HM_REC_NAME_IN_KEY ||
        in->created_ms > HM_RECORD_MAX_CREATED ||
        in->payload_len > SIZE_MAX / 2)
        return NULL;
    size_t n = hm_record_size(in->name_len, in->ntags, in->payload_len);
    unsigned char *buf = malloc(n), *p = buf;
    if (!buf)
        return NULL;
    p[0] = HM_RECORD_MAGIC;
    p[1] = HM_RECORD_FORMAT;
    p[2] = (unsigned char)in->flags;
    p[3] = (unsigned char)in->ntags;
    p[4] = (unsigned char)in->name_len;
    put_le(p + 5, in->created_ms, 6);
    put_le(p + 11, in->ttl_s, 4);
    put_le(p + 15, in->compute_us, 4);
    p += HM_RECORD_HEADER;
    if (in->name_len)
        memcpy(p, in->name, in->name_len);
    p += in->name_len;
    for (size_t i = 0; i < in->ntags; i++) {
        put_le(p, in->tag_ids[i], 4);
        put_le(p + 4, in->version_ids[i], 8);
        p += HM_RECORD_TAG_SIZE;
    }
    if (in->payload_len)
        memcpy(p, in->payload, in->payload_len);
    p += in->payload_len;
    put_le(p, checksum(buf, (size_t)(p - buf), key), 4);
    *len = n;
    return buf;
}

static int decode(const void *data, size_t n, const hermes_bytes *key,
                  hm_record *out)
{
    const unsigned char *p = data;
    /* Format 1 began "HRM1"; a newer format keeps the magic. */
    if (n >= 4 && memcmp(p, "HRM1", 4) == 0)
        return HM_RECORD_OTHER_FORMAT;
    if (n >= 2 && p[0] == HM_RECORD_MAGIC && p[1] > HM_RECORD_FORMAT &&
        p[1] < 32)
        return HM_RECORD_OTHER_FORMAT;
    if (n < HM_RECORD_HEADER + HM_RECORD_TRAILER || p[0] != HM_RECORD_MAGIC ||
        p[1] != HM_RECORD_FORMAT || p[2] > HM_REC_NAME_IN_KEY)
        return HM_RECORD_CORRUPT;
    size_t body = n - HM_RECORD_TRAILER;
    out->flags = p[2];
    out->ntags = p[3];
    out->name_len = p[4];
    /* The name is the key's or there is none: no stored name. */
    if ((out->flags & HM_REC_NAME_IN_KEY) && out->name_len)
        return HM_RECORD_CORRUPT;
    size_t fixed =
        HM_RECORD_HEADER + out->name_len + HM_RECORD_TAG_SIZE * out->ntags;
    if (body < fixed)
        return HM_RECORD_CORRUPT;
#ifndef HM_RECORD_NO_CHECKSUM /* tests/fuzz only: reach the fields */
    if (key && get_le(p + body, 4) != checksum(p, body, *key))
        return HM_RECORD_CORRUPT;
#else
    (void)key;
#endif
    /* Read on every hit: whole loads, not a byte at a time. */
    out->created_ms = get_le32(p + 5) | (uint64_t)get_le(p + 9, 2) << 32;
    out->ttl_s = get_le32(p + 11);
    out->compute_us = get_le32(p + 15);
    out->checksum = get_le32(p + body);
    out->name = p + HM_RECORD_HEADER;
    out->tags_at = out->name + out->name_len;
    out->payload = p + fixed;
    out->payload_len = body - fixed;
    return HM_RECORD_OK;
}

int hm_record_decode(const void *data, size_t n, hermes_bytes key,
                     hm_record *out)
{
    return decode(data, n, &key, out);
}

int hm_record_decode_intact(const void *data, size_t n, hm_record *out)
{
    return decode(data, n, NULL, out);
}

void hm_record_tag(const hm_record *rec, size_t i, uint32_t *tag_id,
                   uint64_t *version_id)
{
    const unsigned char *t = rec->tags_at + HM_RECORD_TAG_SIZE * i;
    *tag_id = get_le32(t);
    *version_id = get_le64(t + 4);
}

bool hm_record_same_tags(const hm_record *rec, size_t ntags,
                         const uint32_t *tag_ids)
{
    if (rec->ntags != ntags)
        return false;
    for (size_t i = 0; i < ntags; i++) {
        const unsigned char *t = rec->tags_at + HM_RECORD_TAG_SIZE * i;
        if (get_le32(t) != tag_ids[i])
            return false;
    }
    return true;
}

size_t hm_record_stale_at(const hm_record *rec, const uint64_t *version_ids)
{
    for (size_t i = 0; i < rec->ntags; i++) {
        const unsigned char *t = rec->tags_at + HM_RECORD_TAG_SIZE * i;
        if (get_le64(t + 4) != version_ids[i])
            return i + 1;
    }
    return 0;
}

bool hm_record_tags_check(const hm_record *rec, size_t ntags,
                          const uint32_t *tag_ids, const bool *found,
                          const uint64_t *vids, size_t *missing, size_t *moved)
{
    if (rec->ntags != ntags)
        return false;
    const unsigned char *t = rec->tags_at;
    for (size_t i = 0; i < ntags; i++, t += HM_RECORD_TAG_SIZE) {
        if (get_le32(t) != tag_ids[i])
            return false;
        if (!found[i]) {
            if (*missing > i)
                *missing = i;
        } else if (get_le64(t + 4) != vids[i] && *moved > i) {
            *moved = i;
        }
    }
    return true;
}

uint64_t hm_record_expiry_ms(const hm_record *rec)
{
    return rec->ttl_s ? rec->created_ms + (uint64_t)rec->ttl_s * 1000u : 0;
}
