/*
 * Shared by the fuzz targets: each target defines LLVMFuzzerTestOneInput()
 * and is linked either with libFuzzer (tests/fuzz/run.sh, clang) or with
 * replay.c (make check, any compiler), which feeds it the checked-in corpus
 * and every past crash input.  A target reports a broken property with
 * FUZZ_CHECK, which aborts whatever NDEBUG says, so both drivers see it.
 */
#ifndef HERMES_TESTS_FUZZ_H
#define HERMES_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__,          \
                    __LINE__, #cond);                                          \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* Reads fuzz input front to back; reads past the end yield zeros. */
typedef struct fuzz_in {
    const uint8_t *p;
    size_t n;
} fuzz_in;

static inline unsigned fuzz_byte(fuzz_in *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

/* Up to max bytes (a length byte first); *len is set, the bytes are not
 * copied. */
static inline const uint8_t *fuzz_bytes(fuzz_in *in, size_t max, size_t *len)
{
    size_t l = fuzz_byte(in) % (max + 1);
    if (l > in->n)
        l = in->n;
    const uint8_t *p = in->p;
    in->p += l;
    in->n -= l;
    *len = l;
    return p;
}

#endif
