/*
 * SipHash, written from the description in "SipHash: a fast short-input
 * PRF" (Aumasson, Bernstein, 2012): four 64-bit words of state, c
 * SipRounds per 8-byte message word, a last word holding the leftover
 * bytes and the length, then d SipRounds.  Byte order is fixed to little
 * endian by the algorithm, so words are assembled byte by byte and the
 * result is the same on every host.
 */
#include "siphash.h"

static inline uint64_t rotl(uint64_t x, unsigned b)
{
    return (x << b) | (x >> (64 - b));
}

static inline uint64_t load_le64(const unsigned char *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
           (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
           (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

void hm_sipkey_init(hm_sipkey *key, const unsigned char bytes[16])
{
    key->k0 = load_le64(bytes);
    key->k1 = load_le64(bytes + 8);
}

#define SIPROUND(v0, v1, v2, v3)                                               \
    do {                                                                       \
        v0 += v1;                                                              \
        v1 = rotl(v1, 13);                                                     \
        v1 ^= v0;                                                              \
        v0 = rotl(v0, 32);                                                     \
        v2 += v3;                                                              \
        v3 = rotl(v3, 16);                                                     \
        v3 ^= v2;                                                              \
        v0 += v3;                                                              \
        v3 = rotl(v3, 21);                                                     \
        v3 ^= v0;                                                              \
        v2 += v1;                                                              \
        v1 = rotl(v1, 17);                                                     \
        v1 ^= v2;                                                              \
        v2 = rotl(v2, 32);                                                     \
    } while (0)

/* Inlined into both variants so c and d become constants and the round
 * loops unroll; the dict's get() pays for one of these per key. */
static inline uint64_t siphash(const hm_sipkey *key, const void *data,
                               size_t len, int c, int d)
{
    /* The constants are "somepseudorandomlygeneratedbytes" in ASCII. */
    uint64_t v0 = key->k0 ^ 0x736f6d6570736575ull;
    uint64_t v1 = key->k1 ^ 0x646f72616e646f6dull;
    uint64_t v2 = key->k0 ^ 0x6c7967656e657261ull;
    uint64_t v3 = key->k1 ^ 0x7465646279746573ull;
    const unsigned char *p = data;
    size_t off;
    uint64_t m;
    int i;

    for (off = 0; len - off >= 8; off += 8) {
        m = load_le64(p + off);
        v3 ^= m;
        for (i = 0; i < c; i++)
            SIPROUND(v0, v1, v2, v3);
        v0 ^= m;
    }

    /* The last word carries the length mod 256 in its top byte.  p is
     * advanced only when bytes remain, as data may be NULL when len is 0. */
    m = (uint64_t)len << 56;
    if (len & 7)
        p += off;
    switch (len & 7) {
    case 7:
        m |= (uint64_t)p[6] << 48;
        /* fall through */
    case 6:
        m |= (uint64_t)p[5] << 40;
        /* fall through */
    case 5:
        m |= (uint64_t)p[4] << 32;
        /* fall through */
    case 4:
        m |= (uint64_t)p[3] << 24;
        /* fall through */
    case 3:
        m |= (uint64_t)p[2] << 16;
        /* fall through */
    case 2:
        m |= (uint64_t)p[1] << 8;
        /* fall through */
    case 1:
        m |= (uint64_t)p[0];
        break;
    default:
        break;
    }
    v3 ^= m;
    for (i = 0; i < c; i++)
        SIPROUND(v0, v1, v2, v3);
    v0 ^= m;

    v2 ^= 0xff;
    for (i = 0; i < d; i++)
        SIPROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t hm_siphash13(const hm_sipkey *key, const void *data, size_t len)
{
    return siphash(key, data, len, 1, 3);
}

uint64_t hm_siphash24(const hm_sipkey *key, const void *data, size_t len)
{
    return siphash(key, data, len, 2, 4);
}

/* Byte i of a followed by b. */
static unsigned char byte_of2(const unsigned char *a, size_t alen,
                              const unsigned char *b, size_t i)
{
    return i < alen ? a[i] : b[i - alen];
}

uint64_t hm_siphash13_2(const hm_sipkey *key, const void *a, size_t alen,
                        const void *b, size_t blen)
{
    uint64_t v0 = key->k0 ^ 0x736f6d6570736575ull;
    uint64_t v1 = key->k1 ^ 0x646f72616e646f6dull;
    uint64_t v2 = key->k0 ^ 0x6c7967656e657261ull;
    uint64_t v3 = key->k1 ^ 0x7465646279746573ull;
    const unsigned char *pa = a, *pb = b;
    size_t len = alen + blen, off;
    uint64_t m;

    /* The rare paths (a table growing) call this: byte by byte is enough. */
    for (off = 0; len - off >= 8; off += 8) {
        m = 0;
        for (unsigned i = 0; i < 8; i++)
            m |= (uint64_t)byte_of2(pa, alen, pb, off + i) << (8 * i);
        v3 ^= m;
        SIPROUND(v0, v1, v2, v3);
        v0 ^= m;
    }
    m = (uint64_t)len << 56;
    for (unsigned i = 0; off + i < len; i++)
        m |= (uint64_t)byte_of2(pa, alen, pb, off + i) << (8 * i);
    v3 ^= m;
    SIPROUND(v0, v1, v2, v3);
    v0 ^= m;
    v2 ^= 0xff;
    for (int i = 0; i < 3; i++)
        SIPROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}
