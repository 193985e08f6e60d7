/*
 * Key slots of Redis Cluster (see slot.h).  The CRC works four bits at a
 * time from a 16-entry table that the compiler computes from the
 * polynomial: two lookups per byte, no table to build at run time and no
 * state of any kind.
 */
#include "slot.h"

#define POLY 0x1021u

/* One bit of the CRC register x, shifted out through the polynomial. */
#define STEP(x) ((((x)&0x8000u) ? (((x) << 1) ^ POLY) : ((x) << 1)) & 0xffffu)
/* The register after four bits: the value of nibble n, shifted in at the
 * top, run through four steps. */
#define NIB(n) STEP(STEP(STEP(STEP((unsigned)(n) << 12))))

static const uint16_t nibble_table[16] = {
    NIB(0), NIB(1), NIB(2),  NIB(3),  NIB(4),  NIB(5),  NIB(6),  NIB(7),
    NIB(8), NIB(9), NIB(10), NIB(11), NIB(12), NIB(13), NIB(14), NIB(15),
};

uint16_t rslot_crc16(const void *data, size_t len)
{
    const unsigned char *p = data;
    unsigned crc = 0;

    for (size_t i = 0; i < len; i++) {
        crc = ((crc << 4) ^ nibble_table[(crc >> 12) ^ (p[i] >> 4)]) & 0xffffu;
        crc = ((crc << 4) ^ nibble_table[(crc >> 12) ^ (p[i] & 15u)]) & 0xffffu;
    }
    return (uint16_t)crc;
}

uint16_t rslot_of(const void *key, size_t len)
{
    const unsigned char *k = key;
    size_t open, close;

    for (open = 0; open < len && k[open] != '{'; open++)
        ;
    if (open < len) {
        for (close = open + 1; close < len && k[close] != '}'; close++)
            ;
        /* Only a non-empty tag counts: "{}" hashes the whole key. */
        if (close < len && close > open + 1)
            return rslot_crc16(k + open + 1, close - open - 1) &
                   (RSLOT_COUNT - 1);
    }
    return rslot_crc16(k, len) & (RSLOT_COUNT - 1);
}
