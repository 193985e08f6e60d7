/*
 * Argument encoding and key construction.
 *
 * Arguments are encoded as a sequence of (type byte, payload) where every
 * variable-length payload carries its length, so distinct argument lists
 * never encode to the same bytes.  Keys are then built from escaped names
 * and a 128-bit xxHash (XXH3) of those bytes, base64url-encoded like Python
 * HermesCache's 22-character hashes.
 */
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "keys.h"
#include <hermes/hermes.h>

/* ------------------------------------------------------------- hm_buf */

void hm_buf_init(hm_buf *b)
{
    b->data = b->inline_;
    b->len = 0;
    b->cap = sizeof b->inline_;
    b->failed = false;
    b->data[0] = '\0';
}

void hm_buf_free(hm_buf *b)
{
    if (b->data != b->inline_)
        free(b->data);
    hm_buf_init(b);
}

void hm_buf_reset(hm_buf *b)
{
    b->len = 0;
    b->data[0] = '\0';
}

static bool hm_buf_reserve(hm_buf *b, size_t extra)
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

/* ------------------------------------------------------------- hashing */

size_t hm_b64url(const unsigned char *in, size_t n, char *out)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
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

void hm_hash128_b64(const void *p, size_t n, char out[HM_HASH_B64_LEN])
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(p, n));
    hm_b64url(c.digest, sizeof c.digest, out);
}

void hm_key_fit(hm_buf *b, size_t head_len, uint32_t max_len)
{
    if (max_len == 0 || b->len <= max_len || b->failed)
        return;
    char h[HM_HASH_B64_LEN];
    hm_hash128_b64(b->data, b->len, h);
    b->len = head_len;
    hm_buf_add(b, "#", 1);
    hm_buf_add(b, h, sizeof h);
}

/* ---------------------------------------------------- argument encoding */

enum {
    ARG_INT = 'i',
    ARG_UINT = 'u',
    ARG_DOUBLE = 'd',
    ARG_STR = 's',
    ARG_NULL = 'n',
    ARG_BYTES = 'b'
};

static void args_put(hermes_args *a, const void *p, size_t n)
{
    if (a->failed)
        return;
    if (!a->data) {
        a->data = a->inline_;
        a->cap = sizeof a->inline_;
        a->len = 0;
    }
    if (a->len + n > a->cap) {
        size_t cap = a->cap * 2;
        while (cap < a->len + n)
            cap *= 2;
        unsigned char *q =
            a->data == a->inline_ ? malloc(cap) : realloc(a->data, cap);
        if (!q) {
            a->failed = 1;
            return;
        }
        if (a->data == a->inline_)
            memcpy(q, a->inline_, a->len);
        a->data = q;
        a->cap = cap;
    }
    memcpy(a->data + a->len, p, n);
    a->len += n;
}

static void args_put_u64(hermes_args *a, unsigned char type, uint64_t v)
{
    unsigned char b[9];
    b[0] = type;
    for (int i = 0; i < 8; i++)
        b[1 + i] = (unsigned char)(v >> (8 * i));
    args_put(a, b, sizeof b);
}

static void args_put_blob(hermes_args *a, unsigned char type, const void *p,
                          size_t n)
{
    args_put_u64(a, type, (uint64_t)n);
    args_put(a, p, n);
}

void hermes_args_int(hermes_args *a, int64_t v)
{
    args_put_u64(a, ARG_INT, (uint64_t)v);
}

void hermes_args_uint(hermes_args *a, uint64_t v)
{
    args_put_u64(a, ARG_UINT, v);
}

void hermes_args_double(hermes_args *a, double v)
{
    uint64_t bits;
    if (v == 0)
        v = 0; /* -0.0 and 0.0 compare equal: one key */
    memcpy(&bits, &v, sizeof bits);
    args_put_u64(a, ARG_DOUBLE, bits);
}

void hermes_args_str(hermes_args *a, const char *s)
{
    if (!s) {
        unsigned char t = ARG_NULL;
        args_put(a, &t, 1);
        return;
    }
    args_put_blob(a, ARG_STR, s, strlen(s));
}

void hermes_args_bytes(hermes_args *a, const void *p, size_t n)
{
    args_put_blob(a, ARG_BYTES, p, n);
}

void hermes_args_free(hermes_args *a)
{
    if (a->data && a->data != a->inline_)
        free(a->data);
    a->data = NULL;
    a->len = a->cap = 0;
    a->failed = 0;
}

/* Entry points used by the HERMES_FUNCn macros' _Generic selection. */
void hermes__args_cstr(hermes_args *a, const char *s)
{
    hermes_args_str(a, s);
}

void hermes__args_dbl(hermes_args *a, double v)
{
    hermes_args_double(a, v);
}

void hermes__args_u64(hermes_args *a, uint64_t v)
{
    hermes_args_uint(a, v);
}

void hermes__args_i64(hermes_args *a, int64_t v)
{
    hermes_args_int(a, v);
}
