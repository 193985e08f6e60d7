/*
 * Encoding and verification of the value record described in record.h.
 * Decoding never trusts a length: every field is bounds-checked against the
 * buffer and the checksum is verified, so foreign or truncated bytes are a
 * clean miss.
 */
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "record.h"

static void put16(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get16(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

unsigned char *hm_record_encode(const hm_record_in *in, size_t *len)
{
    if (in->ntags > HM_RECORD_MAX_TAG || in->payload_len > UINT32_MAX)
        return NULL;
    size_t n = HM_RECORD_HEADER + in->payload_len + 4;
    for (size_t i = 0; i < in->ntags; i++) {
        size_t nl = strlen(in->tags[i]), vl = in->versions[i].len;
        if (nl > HM_RECORD_MAX_TAG || vl > HM_RECORD_MAX_TAG)
            return NULL;
        n += 4 + nl + vl;
    }
    unsigned char *buf = malloc(n), *p = buf;
    if (!buf)
        return NULL;
    memcpy(p, HM_RECORD_MAGIC, 4);
    p[4] = HM_RECORD_FORMAT;
    p[5] = 0;
    put16(p + 6, (uint32_t)in->ntags);
    put64(p + 8, in->created_ms);
    put32(p + 16, in->compute_us);
    put32(p + 20, (uint32_t)in->payload_len);
    p += HM_RECORD_HEADER;
    for (size_t i = 0; i < in->ntags; i++) {
        size_t nl = strlen(in->tags[i]), vl = in->versions[i].len;
        put16(p, (uint32_t)nl);
        memcpy(p + 2, in->tags[i], nl);
        p += 2 + nl;
        put16(p, (uint32_t)vl);
        if (vl)
            memcpy(p + 2, in->versions[i].data, vl);
        p += 2 + vl;
    }
    if (in->payload_len)
        memcpy(p, in->payload, in->payload_len);
    p += in->payload_len;
    put32(p, (uint32_t)XXH3_64bits(buf, (size_t)(p - buf)));
    *len = n;
    return buf;
}

int hm_record_decode(const void *data, size_t n, hm_record *out)
{
    const unsigned char *p = data;
    if (n < HM_RECORD_HEADER + 4 || memcmp(p, HM_RECORD_MAGIC, 4) != 0 ||
        p[4] != HM_RECORD_FORMAT || p[5] != 0)
        return -1;
    size_t body = n - 4;
#ifndef HM_RECORD_NO_CHECKSUM /* tests/fuzz only: reach the fields */
    if (get32(p + body) != (uint32_t)XXH3_64bits(p, body))
        return -1;
#endif
    out->ntags = get16(p + 6);
    out->created_ms = get64(p + 8);
    out->compute_us = get32(p + 16);
    out->payload_len = get32(p + 20);
    out->tags_at = p + HM_RECORD_HEADER;
    /* Walk the tag list once to find the payload and prove it in bounds. */
    size_t off = HM_RECORD_HEADER;
    for (size_t i = 0; i < out->ntags; i++) {
        for (int field = 0; field < 2; field++) {
            if (body - off < 2)
                return -1;
            size_t l = get16(p + off);
            if (body - off - 2 < l)
                return -1;
            off += 2 + l;
        }
    }
    if (body - off != out->payload_len)
        return -1;
    out->payload = p + off;
    return 0;
}

int hm_record_next_tag(const hm_record *rec, const unsigned char **cursor,
                       hermes_bytes *name, hermes_bytes *version)
{
    const unsigned char *p = *cursor;
    if (p >= rec->payload)
        return -1;
    name->len = get16(p);
    name->data = p + 2;
    p += 2 + name->len;
    version->len = get16(p);
    version->data = p + 2;
    *cursor = p + 2 + version->len;
    return 0;
}

size_t hm_record_stale_at(const hm_record *rec, size_t ntags,
                          const hermes_bytes *names, const hermes_bytes *vers)
{
    if (rec->ntags != ntags)
        return 1;
    const unsigned char *cur = rec->tags_at;
    for (size_t i = 0; i < ntags; i++) {
        hermes_bytes name, ver;
        hm_record_next_tag(rec, &cur, &name, &ver);
        if (name.len != names[i].len ||
            memcmp(name.data, names[i].data, name.len) != 0 ||
            ver.len != vers[i].len ||
            (ver.len && memcmp(ver.data, vers[i].data, ver.len) != 0))
            return i + 1;
    }
    return 0;
}
