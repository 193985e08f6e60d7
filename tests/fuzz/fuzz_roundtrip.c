/*
 * Fuzz target: the record round trip.  The input describes a record (an
 * entry key, a function name, tags, times, payload); it is encoded,
 * decoded, and every field must come back as it went in.  A truncated
 * record, one with a byte after its end, and one read under another key
 * must not decode.
 *
 * Input: flags byte (bit 0: name in key), the entry key and the name
 * (length byte + bytes each), u8 tag count, then per tag a u32 tag id and
 * a u64 version id, u48 created_ms, u32 ttl_s, u32 compute_us, and the
 * rest as the payload.
 */
#include <string.h>

#include "fuzz.h"
#include "record.h"

static uint64_t take(fuzz_in *in, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)fuzz_byte(in) << (8 * i);
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size};
    unsigned flags = fuzz_byte(&in) & HM_REC_NAME_IN_KEY;
    size_t klen, nlen;
    const uint8_t *kp = fuzz_bytes(&in, 255, &klen);
    const uint8_t *np = fuzz_bytes(&in, 255, &nlen);
    if (flags)
        nlen = 0;
    size_t ntags = fuzz_byte(&in);
    uint32_t ids[HM_RECORD_MAX_TAGS];
    uint64_t vers[HM_RECORD_MAX_TAGS];
    for (size_t i = 0; i < ntags; i++) {
        ids[i] = (uint32_t)take(&in, 4);
        vers[i] = take(&in, 8);
    }
    hermes_bytes key = {kp, klen};
    hm_record_in rin = {
        .flags = flags,
        .name = (const char *)np,
        .name_len = nlen,
        .ntags = ntags,
        .tag_ids = ids,
        .version_ids = vers,
        .created_ms = take(&in, 6),
        .ttl_s = (uint32_t)take(&in, 4),
        .compute_us = (uint32_t)take(&in, 4),
        .payload = in.p,
        .payload_len = in.n,
    };
    size_t len;
    unsigned char *enc = hm_record_encode(&rin, key, &len);
    FUZZ_CHECK(enc);
    FUZZ_CHECK(len == hm_record_size(nlen, ntags, rin.payload_len));

    hm_record rec;
    FUZZ_CHECK(hm_record_decode(enc, len, key, &rec) == HM_RECORD_OK);
    FUZZ_CHECK(rec.flags == flags);
    FUZZ_CHECK(rec.name_len == nlen &&
               (!nlen || memcmp(rec.name, np, nlen) == 0));
    FUZZ_CHECK(rec.created_ms == rin.created_ms);
    FUZZ_CHECK(rec.ttl_s == rin.ttl_s);
    FUZZ_CHECK(rec.compute_us == rin.compute_us);
    FUZZ_CHECK(rec.ntags == ntags);
    FUZZ_CHECK(rec.payload_len == rin.payload_len);
    FUZZ_CHECK(!rin.payload_len ||
               memcmp(rec.payload, rin.payload, rin.payload_len) == 0);
    for (size_t i = 0; i < ntags; i++) {
        uint32_t id;
        uint64_t ver;
        hm_record_tag(&rec, i, &id, &ver);
        FUZZ_CHECK(id == ids[i] && ver == vers[i]);
    }
    FUZZ_CHECK(hm_record_same_tags(&rec, ntags, ids));
    FUZZ_CHECK(hm_record_stale_at(&rec, vers) == 0);

    /* Damaged lengths do not decode: one byte short, one byte extra. */
    hm_record other;
    FUZZ_CHECK(hm_record_decode(enc, len - 1, key, &other) != HM_RECORD_OK);
    unsigned char *longer = malloc(len + 1);
    FUZZ_CHECK(longer);
    memcpy(longer, enc, len);
    longer[len] = 0;
    FUZZ_CHECK(hm_record_decode(longer, len + 1, key, &other) != HM_RECORD_OK);
    free(longer);
    /* Nor does the record under another key (one byte more). */
    unsigned char k2[256];
    memcpy(k2, kp, klen);
    k2[klen] = 'x';
    hermes_bytes moved = {k2, klen + 1};
    FUZZ_CHECK(hm_record_decode(enc, len, moved, &other) != HM_RECORD_OK);

    free(enc);
    return 0;
}
