/*
 * Redis Cluster key slots: which of the 16384 hash slots a key belongs to,
 * computed exactly as redis does (the Cluster specification, "Keys
 * distribution model"): CRC16-XMODEM of the key modulo 16384, over only
 * the hash tag when the key has one.  The hash tag is what lies between
 * the first '{' and the first '}' after it, when that is not empty; so
 * "{user1000}.following" and "{user1000}.followers" share a slot, while
 * "foo{}{bar}" hashes whole and "foo{{bar}}zap" hashes "{bar".
 */
#ifndef HERMES_REDIS_SLOT_H
#define HERMES_REDIS_SLOT_H

#include <stddef.h>
#include <stdint.h>

#define RSLOT_COUNT 16384u

/* CRC16-XMODEM (polynomial 0x1021, initial value 0, no reflection). */
uint16_t rslot_crc16(const void *data, size_t len);

/* The cluster slot of key[0..len), 0..16383. */
uint16_t rslot_of(const void *key, size_t len);

#endif /* HERMES_REDIS_SLOT_H */
