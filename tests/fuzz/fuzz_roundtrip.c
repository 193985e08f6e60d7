/*
 * Fuzz target: the record round trip.  The input describes a record (tags
 * with their versions, times, payload); it is encoded, decoded, and every
 * field must come back as it went in.  A truncated record, and one with a
 * byte after its end, must not decode.
 *
 * Input: u8 tag count (0..31), then per tag a name and a version (length
 * byte + bytes; a name is cut at its first NUL, as the encoder takes C
 * strings), u64 created_ms, u32 compute_us, and the rest as the payload.
 */
#include <string.h>

#include "fuzz.h"
#include "record.h"

#define MAX_TAGS 31

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
    size_t ntags = fuzz_byte(&in) % (MAX_TAGS + 1);
    char *tags[MAX_TAGS];
    hermes_bytes vers[MAX_TAGS];
    for (size_t i = 0; i < ntags; i++) {
        size_t l;
        const uint8_t *p = fuzz_bytes(&in, 255, &l);
        l = strnlen((const char *)p, l);
        tags[i] = malloc(l + 1);
        FUZZ_CHECK(tags[i]);
        memcpy(tags[i], p, l);
        tags[i][l] = '\0';
        p = fuzz_bytes(&in, 255, &l);
        vers[i] = (hermes_bytes){p, l};
    }
    hm_record_in rin = {
        .ntags = ntags,
        .tags = (const char *const *)tags,
        .versions = vers,
        .created_ms = take(&in, 8),
        .compute_us = (uint32_t)take(&in, 4),
        .payload = in.p,
        .payload_len = in.n,
    };
    size_t len;
    unsigned char *enc = hm_record_encode(&rin, &len);
    FUZZ_CHECK(enc);

    hm_record rec;
    FUZZ_CHECK(hm_record_decode(enc, len, &rec) == 0);
    FUZZ_CHECK(rec.created_ms == rin.created_ms);
    FUZZ_CHECK(rec.compute_us == rin.compute_us);
    FUZZ_CHECK(rec.ntags == ntags);
    FUZZ_CHECK(rec.payload_len == rin.payload_len);
    FUZZ_CHECK(memcmp(rec.payload, rin.payload, rin.payload_len) == 0);
    const unsigned char *cur = rec.tags_at;
    hermes_bytes names[MAX_TAGS];
    for (size_t i = 0; i < ntags; i++) {
        hermes_bytes name, ver;
        FUZZ_CHECK(hm_record_next_tag(&rec, &cur, &name, &ver) == 0);
        FUZZ_CHECK(name.len == strlen(tags[i]) &&
                   memcmp(name.data, tags[i], name.len) == 0);
        FUZZ_CHECK(ver.len == vers[i].len &&
                   (!ver.len || memcmp(ver.data, vers[i].data, ver.len) == 0));
        names[i] = (hermes_bytes){tags[i], strlen(tags[i])};
    }
    hermes_bytes name, ver;
    FUZZ_CHECK(hm_record_next_tag(&rec, &cur, &name, &ver) != 0);
    FUZZ_CHECK(hm_record_stale_at(&rec, ntags, names, vers) == 0);

    /* Damaged lengths do not decode: one byte short, one byte extra. */
    hm_record other;
    FUZZ_CHECK(hm_record_decode(enc, len - 1, &other) != 0);
    unsigned char *longer = malloc(len + 1);
    FUZZ_CHECK(longer);
    memcpy(longer, enc, len);
    longer[len] = 0;
    FUZZ_CHECK(hm_record_decode(longer, len + 1, &other) != 0);
    free(longer);

    free(enc);
    for (size_t i = 0; i < ntags; i++)
        free(tags[i]);
    return 0;
}
