/*
 * Size-versioned structs at the API boundary (see sized.h).
 */
#include <string.h>

#include "sized.h"

bool hm_sized_in(void *dst, size_t ours, const void *src, size_t size)
{
    const unsigned char *s = src;
    for (size_t i = ours; i < size; i++)
        if (s[i] != 0)
            return false;
    size_t n = size < ours ? size : ours;
    memcpy(dst, src, n);
    memset((unsigned char *)dst + n, 0, ours - n);
    return true;
}

void hm_sized_out(void *dst, size_t size, const void *src, size_t ours)
{
    size_t n = size < ours ? size : ours;
    memcpy(dst, src, n);
    if (size > ours)
        memset((unsigned char *)dst + ours, 0, size - ours);
}
