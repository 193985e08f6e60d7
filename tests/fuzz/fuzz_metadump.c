/*
 * Fuzz target: the memcached plugin's reader of `lru_crawler metadump`
 * replies (plugins/memcached/metadump.c), the text a server sends the
 * scan.  The input is the reply stream; its first byte chooses the chunk
 * sizes it arrives in.
 *
 * Properties: no crash, leak or overread; every item has a key of 1 to 250
 * bytes and an expiry that is a time, "never" or "unknown"; and the stream
 * read in chunks yields exactly the lines, items and keys it yields read
 * in one piece (a line split across reads is neither lost nor doubled).
 */
#include <string.h>

#include "fuzz.h"
#include "metadump.h"

typedef struct seen {
    uint64_t lines, items, hash; /* hash: FNV-1a over kinds and keys */
} seen;

static void mix(seen *s, const void *p, size_t n)
{
    const unsigned char *c = p;

    for (size_t i = 0; i < n; i++)
        s->hash = (s->hash ^ c[i]) * 1099511628211u;
}

static int on_line(void *arg, const char *line, size_t len)
{
    seen *s = arg;
    md_item it;
    md_kind k;

    FUZZ_CHECK(len <= MD_LINE_MAX);
    memset(&it, 0xa5, sizeof it);
    k = md_parse_line(line, len, &it);
    s->lines++;
    mix(s, &k, sizeof k);
    if (k == MD_ITEM) {
        FUZZ_CHECK(it.klen >= 1 && it.klen <= MD_KEY_MAX);
        FUZZ_CHECK(it.exp >= 0 || it.exp == MD_EXP_NEVER ||
                   it.exp == MD_EXP_UNKNOWN);
        s->items++;
        mix(s, it.key, it.klen);
        mix(s, &it.exp, sizeof it.exp);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static md_reader whole_r, chunk_r; /* 2 KiB each: off the stack */
    seen whole = {0, 0, 14695981039346656037u}, chunked = whole;
    unsigned step;

    if (size == 0)
        return 0;
    step = data[0] % 64 + 1;
    data++;
    size--;

    md_reader_init(&whole_r);
    FUZZ_CHECK(md_feed(&whole_r, (const char *)data, size, on_line, &whole) ==
               0);
    md_reader_init(&chunk_r);
    for (size_t off = 0; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        FUZZ_CHECK(md_feed(&chunk_r, (const char *)data + off, n, on_line,
                           &chunked) == 0);
    }
    FUZZ_CHECK(whole.lines == chunked.lines);
    FUZZ_CHECK(whole.items == chunked.items);
    FUZZ_CHECK(whole.hash == chunked.hash);
    return 0;
}
