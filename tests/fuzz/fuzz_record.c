/*
 * Fuzz target: the record decoder on arbitrary bytes, built with
 * core/record.c compiled -DHM_RECORD_NO_CHECKSUM so that the checksum always
 * passes and the fuzzer reaches the fields behind it.
 *
 * Properties: no crash or overread; a decoded record's payload and tag
 * list lie inside the input, the tag iterator yields exactly ntags tags
 * that end where the payload starts, hm_record_stale_at() agrees with the
 * record's own tags; and encoding the decoded fields gives back the input
 * byte for byte (but for the checksum), so the decoder accepts nothing the
 * encoder would not write.
 */
#include <string.h>

#include "fuzz.h"
#include "record.h"

#ifndef HM_RECORD_NO_CHECKSUM
#error "build core/record.c and this target with -DHM_RECORD_NO_CHECKSUM"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hm_record rec;
    if (hm_record_decode(data, size, &rec) != 0)
        return 0;
    const uint8_t *end = data + size;
    FUZZ_CHECK(rec.payload >= data && rec.payload <= end);
    FUZZ_CHECK(rec.payload_len <= (size_t)(end - rec.payload));
    FUZZ_CHECK(rec.tags_at >= data && rec.tags_at <= rec.payload);

    size_t n = 0;
    const unsigned char *cur = rec.tags_at;
    hermes_bytes name, ver;
    hermes_bytes *names = calloc(rec.ntags + 1, sizeof *names);
    hermes_bytes *vers = calloc(rec.ntags + 1, sizeof *vers);
    char **cnames = calloc(rec.ntags + 1, sizeof *cnames);
    FUZZ_CHECK(names && vers && cnames);
    while (hm_record_next_tag(&rec, &cur, &name, &ver) == 0) {
        FUZZ_CHECK(n < rec.ntags);
        FUZZ_CHECK((const uint8_t *)name.data >= data &&
                   (const uint8_t *)name.data + name.len <= rec.payload);
        FUZZ_CHECK((const uint8_t *)ver.data >= data &&
                   (const uint8_t *)ver.data + ver.len <= rec.payload);
        names[n] = name;
        vers[n] = ver;
        n++;
    }
    FUZZ_CHECK(n == rec.ntags);
    FUZZ_CHECK(cur == rec.payload);
    FUZZ_CHECK(hm_record_stale_at(&rec, n, names, vers) == 0);
    if (n)
        FUZZ_CHECK(hm_record_stale_at(&rec, n - 1, names, vers) != 0);

    /* Re-encode.  Tag names are C strings to the encoder: a name holding a
     * NUL cannot have been written by it. */
    int encodable = 1;
    for (size_t i = 0; i < n; i++) {
        if (memchr(names[i].data, '\0', names[i].len)) {
            encodable = 0;
            break;
        }
        cnames[i] = malloc(names[i].len + 1);
        FUZZ_CHECK(cnames[i]);
        memcpy(cnames[i], names[i].data, names[i].len);
        cnames[i][names[i].len] = '\0';
    }
    if (encodable) {
        hm_record_in in = {
            .ntags = n,
            .tags = (const char *const *)cnames,
            .versions = vers,
            .created_ms = rec.created_ms,
            .compute_us = rec.compute_us,
            .payload = rec.payload,
            .payload_len = rec.payload_len,
        };
        size_t len;
        unsigned char *again = hm_record_encode(&in, &len);
        FUZZ_CHECK(again);
        FUZZ_CHECK(len == size);
        FUZZ_CHECK(memcmp(again, data, size - 4) == 0);
        free(again);
    }
    for (size_t i = 0; i < n; i++)
        free(cnames[i]);
    free(cnames);
    free(names);
    free(vers);
    return 0;
}
