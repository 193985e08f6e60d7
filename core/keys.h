/*
 * Keys: unambiguous argument encoding (hermes_args), the 128-bit argument
 * hash, escaping of names into key text, and hashing of keys too long for
 * the backend.
 */
#ifndef HERMES_CORE_KEYS_H
#define HERMES_CORE_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Length of a base64url-encoded 128-bit hash without padding. */
#define HM_HASH_B64_LEN 22

/* A growable byte string with room for short keys inline. */
typedef struct hm_buf {
    char *data;
    size_t len, cap;
    bool failed; /* an append ran out of memory */
    char inline_[192];
} hm_buf;

/* Inline: every call sets up and frees two of these, hit or miss. */
static inline void hm_buf_init(hm_buf *b)
{
    b->data = b->inline_;
    b->len = 0;
    b->cap = sizeof b->inline_;
    b->failed = false;
    b->data[0] = '\0';
}

static inline void hm_buf_free(hm_buf *b)
{
    if (b->data != b->inline_)
        free(b->data);
    hm_buf_init(b);
}

void hm_buf_reset(hm_buf *b);
void hm_buf_add(hm_buf *b, const void *p, size_t n);
void hm_buf_adds(hm_buf *b, const char *s);
/* Makes room for extra more bytes and a NUL; false when out of memory
 * (b->failed, as after any earlier failure). */
bool hm_buf_reserve(hm_buf *b, size_t extra);
/* Appends n bytes for the caller to fill and returns where they start
 * (NUL-terminated after them), or NULL when out of memory (b->failed).
 * Inline, as every call's entry key is one of these. */
static inline char *hm_buf_append(hm_buf *b, size_t n)
{
    if ((b->failed || b->len + n + 1 > b->cap) && !hm_buf_reserve(b, n))
        return NULL;
    char *at = b->data + b->len;
    b->len += n;
    b->data[b->len] = '\0';
    return at;
}
/* Appends s with every byte that may not appear in a key (space, control
 * characters, DEL) and '%' and '#' written as %XX. */
void hm_buf_add_escaped(hm_buf *b, const char *s, size_t n);
/* The reverse: a malloc'ed, NUL-terminated copy of s (n bytes) with every
 * %XX decoded (anything else kept as is), its length in *len when len is
 * not NULL; NULL when out of memory. */
char *hm_unescape(const char *s, size_t n, size_t *len);

/* Writes the base64url (no padding) 128-bit hash of p into out[22]. */
void hm_hash128_b64(const void *p, size_t n, char out[HM_HASH_B64_LEN]);

/* Base64url without padding of n bytes into out (4*ceil(n/3) bytes at most);
 * returns the length written. */
size_t hm_b64url(const unsigned char *in, size_t n, char *out);

/* True when every byte of s can appear in a key as is: no space, control
 * character or DEL (bytes 0x21-0x7e and 0x80-0xff). */
bool hm_key_text_ok(const char *s, size_t n);

/* Replaces what follows the first head_len bytes of b with "#<hash of the
 * whole of b>" (22 characters of base64url). */
void hm_key_hash(hm_buf *b, size_t head_len);

/*
 * Fits key b to a backend that accepts at most max_len bytes (0 = any):
 * a longer key "<head><rest>" becomes "<head>#<hash of the whole key>",
 * where head is the first head_len bytes ("<prefix>:entry:"), so a prefix
 * flush still finds it (hm_key_hash).
 */
void hm_key_fit(hm_buf *b, size_t head_len, uint32_t max_len);

#endif
