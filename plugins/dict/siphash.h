/*
 * SipHash (Aumasson and Bernstein), a keyed 64-bit hash.  The dict backend
 * uses SipHash-1-3 keyed with random bytes drawn at open(), so that
 * nobody who picks the cache keys (often the application's users) can
 * predict which keys collide and degrade a shard to a linked list.
 * SipHash-2-4 is here only so tests can check the shared core against the
 * published test vectors.
 */
#ifndef HERMES_DICT_SIPHASH_H
#define HERMES_DICT_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* The 128-bit key, as the two little-endian words the algorithm uses. */
typedef struct hm_sipkey {
    uint64_t k0;
    uint64_t k1;
} hm_sipkey;

/* Builds the key from 16 bytes (bytes 0-7 are k0, little-endian). */
void hm_sipkey_init(hm_sipkey *key, const unsigned char bytes[16]);

/* SipHash-1-3 of len bytes at data (data may be NULL when len is 0). */
uint64_t hm_siphash13(const hm_sipkey *key, const void *data, size_t len);

/* SipHash-1-3 of the len_a bytes at a followed by the len_b at b: the same
 * as hm_siphash13() of the two joined (a key the dict stores in two parts). */
uint64_t hm_siphash13_2(const hm_sipkey *key, const void *a, size_t len_a,
                        const void *b, size_t len_b);

/* SipHash-2-4, the variant of the paper's test vectors. */
uint64_t hm_siphash24(const hm_sipkey *key, const void *data, size_t len);

#endif
