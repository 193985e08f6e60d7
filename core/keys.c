/*
 * Key text: growable buffers, escaping of names into keys, the 128-bit
 * xxHash (XXH3) of encoded arguments, base64url-encoded like Python
 * HermesCache's 22-character hashes, and hashing of keys too long for the
 * backend.
 */
#include <stdlib.h>
#include <string.h>

/* The header's own inline build (a supported use of libxxhash's header):
 * a hit hashes a few short inputs, where the call into the shared library
 * and its dispatch cost as much as the hashing. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "keys.h"
#include <hermes/hermes.h>

/* ------------------------------------------------------------- hm_buf */

void hm_buf_reset(hm_buf *b)
{
    b->len = 0;
    b->data[0] = '\0';
}

bool hm_buf_reserve(hm_buf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap * 2;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = b->data == b->inline_ ? malloc(cap) : realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    if (b->data == b->inline_)
        memcpy(p, b->inline_, b->len + 1);
    b->data = p;
    b->cap = cap;
    return true;
}

void hm_buf_add(hm_buf *b, const void *p, size_t n)
{
    if (!hm_buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void hm_buf_adds(hm_buf *b, const char *s)
{
    hm_buf_add(b, s, strlen(s));
}

/* '#' is escaped so that it appears only where hm_key_fit() put it: a short
 * key can then never name the hashed form of a long one. */
static bool key_byte_ok(unsigned char c)
{
    return c > 0x20 && c != 0x7f && c != '%' && c != '#';
}

void hm_buf_add_escaped(hm_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        size_t run = i;
        while (run < n && key_byte_ok((unsigned char)s[run]))
            run++;
        hm_buf_add(b, s + i, run - i);
        if (run == n)
            break;
        unsigned char c = (unsigned char)s[run];
        char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
        hm_buf_add(b, esc, 3);
        i = run;
    }
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

char *hm_unescape(const char *s, size_t n, size_t *len)
{
    char *out = malloc(n + 1);
    size_t o = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%' && n - i > 2 && (hi = hex_digit(s[i + 1])) >= 0 &&
            (lo = hex_digit(s[i + 2])) >= 0) {
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    if (len)
        *len = o;
    return out;
}

/* ------------------------------------------------------------- hashing */

static const char b64url_tab[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t hm_b64url(const unsigned char *in, size_t n, char *out)
{
    const char *tab = b64url_tab;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v =
            (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
    }
    return o;
}

/*
 * Eight base64url characters of the 48 bits at the bottom of x, first
 * character in the low byte: each 6-bit value is put in a byte of its
 * own, and all eight are mapped to their characters at once (the byte
 * sums never carry: every byte stays below 256 and above 0).  From 'A'
 * + v, values from 26 on take 6 more ('a'), from 52 on 75 less ('0'),
 * 62 ('-') 13 less again, 63 ('_') 49 more.
 *
 * The values are spread in three halvings, each moving both halves of
 * every lane at once: the 24-bit halves into 32-bit lanes, the 12-bit
 * quarters into 16-bit lanes, the 6-bit values into bytes; the higher
 * half always goes to the lower lane, so the first character (the top
 * bits) lands in the low byte.  Fourteen operations where a shift and
 * mask per value took thirty.
 */
static inline uint64_t b64url_8(uint64_t x)
{
    const uint64_t ones = UINT64_C(0x0101010101010101);
    x &= UINT64_C(0xffffffffffff);
    uint64_t v = x >> 24 | (x & 0xffffff) << 32;
    v = (v >> 12 & UINT64_C(0x00000fff00000fff)) |
        (v & UINT64_C(0x00000fff00000fff)) << 16;
    v = (v >> 6 & UINT64_C(0x003f003f003f003f)) |
        (v & UINT64_C(0x003f003f003f003f)) << 8;
/* 1 in each byte whose value is at least k (k <= 63, values < 64). */
#define B64_AT_LEAST(k) ((((v + ones * (0x80 - (k))) & (ones * 0x80)) >> 7))
    uint64_t up = ones * 'A' + B64_AT_LEAST(26) * 6 + B64_AT_LEAST(63) * 49;
    uint64_t down = B64_AT_LEAST(52) * 75 + B64_AT_LEAST(62) * 13;
#undef B64_AT_LEAST
    return v + up - down;
}

/* The first n (<= 8) of those characters, in one or two stores. */
static inline void put_chars(char *out, uint64_t w, size_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(out, &w, n);
#else
    for (size_t i = 0; i < n; i++)
        out[i] = (char)(w >> (8 * i));
#endif
}

/*
 * The same characters as hm_b64url() of the hash's canonical (big-endian)
 * bytes, made straight from its two halves, eight at a time: every hit
 * builds its key with this, and a table lookup per character cost more
 * than the hash.  The 22 characters are the 128 bits followed by 4 zero
 * bits: 0-7 the high half's top 48 bits, 8-15 its last 16 and the low
 * half's first 32, 16-21 the low half's last 32 and the padding.
 */
void hm_hash128_b64(const void *p, size_t n, char out[HM_HASH_B64_LEN])
{
    XXH128_hash_t h = XXH3_128bits(p, n);
    put_chars(out, b64url_8(h.high64 >> 16), 8);
    put_chars(out + 8, b64url_8((h.high64 & 0xffff) << 32 | h.low64 >> 32), 8);
    put_chars(out + 16, b64url_8((h.low64 & 0xffffffffu) << 16), 6);
}

bool hm_key_text_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

void hm_key_hash(hm_buf *b, size_t head_len)
{
    if (b->failed)
        return;
    char h[HM_HASH_B64_LEN];
    hm_hash128_b64(b->data, b->len, h);
    b->len = head_len;
    hm_buf_add(b, "#", 1);
    hm_buf_add(b, h, sizeof h);
}

void hm_key_fit(hm_buf *b, size_t head_len, uint32_t max_len)
{
    if (max_len == 0 || b->len <= max_len)
        return;
    hm_key_hash(b, head_len);
}
