/*
 * Argument encoding (hermes_args): a sequence of (type byte, payload) where
 * every variable-length payload carries its length, so distinct argument
 * lists never encode to the same bytes.  keyspace.c hashes the encoding.
 */
#include <stdlib.h>
#include <string.h>

#include <hermes/hermes.h>

#include "internal.h"

enum {
    ARG_INT = 'i',
    ARG_UINT = 'u',
    ARG_DOUBLE = 'd',
    ARG_STR = 's',
    ARG_NULL = 'n',
    ARG_BYTES = 'b'
};

/* Marks a failed: the partial encoding is dropped, so that no caller can
 * hash it as if it were a shorter argument list. */
static hermes_rc args_fail(hermes_args *a)
{
    if (a->data && a->data != a->inline_)
        free(a->data);
    a->data = NULL;
    a->len = HERMES_ARGS_FAILED;
    a->cap = 0;
    a->failed = 1;
    return hm_error(NULL, HERMES_ENOMEM,
                    "hermes_args: out of memory: the encoding is dropped");
}

/* Every append comes here: it clears the thread's message like every
 * call that returns a hermes_rc (messages are about no handle). */
static hermes_rc args_put(hermes_args *a, const void *p, size_t n)
{
    hm_clear_error();
    if (!a)
        return hm_error(NULL, HERMES_EINVAL, "hermes_args: a is NULL");
    if (a->failed)
        return hm_error(NULL, HERMES_ENOMEM,
                        "hermes_args: an earlier append failed (out of "
                        "memory); the encoding stays failed until "
                        "hermes_args_free");
    if (!a->data) {
        a->data = a->inline_;
        a->cap = sizeof a->inline_;
        a->len = 0;
    }
    if (n > SIZE_MAX / 2 - a->len) /* the doubling below would overflow */
        return args_fail(a);
    if (a->len + n > a->cap) {
        size_t cap = a->cap * 2;
        while (cap < a->len + n)
            cap *= 2;
        unsigned char *q =
            a->data == a->inline_ ? malloc(cap) : realloc(a->data, cap);
        if (!q)
            return args_fail(a);
        if (a->data == a->inline_)
            memcpy(q, a->inline_, a->len);
        a->data = q;
        a->cap = cap;
    }
    memcpy(a->data + a->len, p, n);
    a->len += n;
    return HERMES_OK;
}

/* The type byte, then v little-endian: on a little-endian host one store
 * (the byte loop was not unrolled, and cost more than the hash of it). */
static hermes_rc args_put_u64(hermes_args *a, unsigned char type, uint64_t v)
{
    unsigned char b[9];
    b[0] = type;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(b + 1, &v, sizeof v);
#else
    for (int i = 0; i < 8; i++)
        b[1 + i] = (unsigned char)(v >> (8 * i));
#endif
    return args_put(a, b, sizeof b);
}

static hermes_rc args_put_blob(hermes_args *a, unsigned char type,
                               const void *p, size_t n)
{
    hermes_rc rc = args_put_u64(a, type, (uint64_t)n);
    return rc == HERMES_OK ? args_put(a, p, n) : rc;
}

hermes_rc hermes_args_int(hermes_args *a, int64_t v)
{
    return args_put_u64(a, ARG_INT, (uint64_t)v);
}

hermes_rc hermes_args_uint(hermes_args *a, uint64_t v)
{
    return args_put_u64(a, ARG_UINT, v);
}

hermes_rc hermes_args_double(hermes_args *a, double v)
{
    uint64_t bits;
    if (v == 0)
        v = 0; /* -0.0 and 0.0 compare equal: one key */
    memcpy(&bits, &v, sizeof bits);
    return args_put_u64(a, ARG_DOUBLE, bits);
}

hermes_rc hermes_args_str(hermes_args *a, const char *s)
{
    if (!s) {
        unsigned char t = ARG_NULL;
        return args_put(a, &t, 1);
    }
    return args_put_blob(a, ARG_STR, s, strlen(s));
}

hermes_rc hermes_args_bytes(hermes_args *a, const void *p, size_t n)
{
    if (!p && n) {
        if (a)
            args_fail(a);
        return hm_error(NULL, HERMES_EINVAL,
                        "hermes_args_bytes: p is NULL but n is %zu", n);
    }
    return args_put_blob(a, ARG_BYTES, p, n);
}

void hermes_args_free(hermes_args *a)
{
    if (!a)
        return;
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

/* Accessors, so callers need not name the struct's members. */
const void *hermes_args_data(const hermes_args *a)
{
    return a->data;
}

size_t hermes_args_len(const hermes_args *a)
{
    return a->len;
}

int hermes_args_failed(const hermes_args *a)
{
    return a->failed;
}
