/*
 * Fuzz target: the record decoder on arbitrary bytes, built with
 * core/record.c compiled -DHM_RECORD_NO_CHECKSUM so that the checksum always
 * passes and the fuzzer reaches the fields behind it.
 *
 * Properties: no crash or overread; a decoded record's name, tag list and
 * payload lie inside the input, in that order, the payload ending where
 * the checksum starts; hm_record_same_tags() and hm_record_stale_at()
 * agree with the record's own tags (hm_record_tag); and encoding the
 * decoded fields gives back the input byte for byte (but for the
 * checksum), so the decoder accepts nothing the encoder would not write.
 */
#include <string.h>

#include "fuzz.h"
#include "record.h"

#ifndef HM_RECORD_NO_CHECKSUM
#error "build core/record.c and this target with -DHM_RECORD_NO_CHECKSUM"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const hermes_bytes key = {"cache:entry:fuzz", 16};
    hm_record rec;
    if (hm_record_decode(data, size, key, &rec) != HM_RECORD_OK)
        return 0;
    const uint8_t *end = data + size;
    FUZZ_CHECK(size >= HM_RECORD_HEADER + HM_RECORD_TRAILER);
    FUZZ_CHECK(rec.name == data + HM_RECORD_HEADER);
    FUZZ_CHECK(rec.tags_at == rec.name + rec.name_len);
    FUZZ_CHECK(rec.payload == rec.tags_at + HM_RECORD_TAG_SIZE * rec.ntags);
    FUZZ_CHECK(rec.payload + rec.payload_len + HM_RECORD_TRAILER == end);
    FUZZ_CHECK(rec.ntags <= HM_RECORD_MAX_TAGS);
    FUZZ_CHECK(rec.flags <= HM_REC_NAME_IN_KEY);
    FUZZ_CHECK(!(rec.flags & HM_REC_NAME_IN_KEY) || rec.name_len == 0);

    uint32_t ids[HM_RECORD_MAX_TAGS + 1];
    uint64_t vers[HM_RECORD_MAX_TAGS + 1];
    for (size_t i = 0; i < rec.ntags; i++)
        hm_record_tag(&rec, i, &ids[i], &vers[i]);
    FUZZ_CHECK(hm_record_same_tags(&rec, rec.ntags, ids));
    FUZZ_CHECK(!hm_record_same_tags(&rec, rec.ntags + 1, ids));
    FUZZ_CHECK(hm_record_stale_at(&rec, vers) == 0);
    if (rec.ntags) {
        vers[rec.ntags - 1] ^= 1;
        FUZZ_CHECK(hm_record_stale_at(&rec, vers) == rec.ntags);
        vers[rec.ntags - 1] ^= 1;
    }
    FUZZ_CHECK(rec.ttl_s == 0 || hm_record_expiry_ms(&rec) > rec.created_ms);

    hm_record_in in = {
        .flags = rec.flags,
        .name = (const char *)rec.name,
        .name_len = rec.name_len,
        .ntags = rec.ntags,
        .tag_ids = ids,
        .version_ids = vers,
        .created_ms = rec.created_ms,
        .ttl_s = rec.ttl_s,
        .compute_us = rec.compute_us,
        .payload = rec.payload,
        .payload_len = rec.payload_len,
    };
    size_t len;
    unsigned char *again = hm_record_encode(&in, key, &len);
    FUZZ_CHECK(again);
    FUZZ_CHECK(len == size);
    FUZZ_CHECK(memcmp(again, data, size - HM_RECORD_TRAILER) == 0);
    free(again);
    return 0;
}
