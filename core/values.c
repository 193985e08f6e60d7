/*
 * The library's side of the HERMES_FUNC macros: their calls, and their
 * scalar and string values, stored as a one-byte type tag followed by the
 * value (integers and doubles as 8 bytes little-endian, strings as their
 * bytes).  A payload of another type or size is refused, so the macro
 * wrapper computes directly instead of misreading it.
 */
#include <stdlib.h>
#include <string.h>

#include <hermes/hermes.h>

#include "memo.h"

#define NOT_REGISTERED                                                         \
    "the cached function is not registered (HERMES_REGISTER), or its "         \
    "handle was closed"

hermes_rc hermes__call(hermes_fn *fn, hermes_args *enc,
                       hermes_compute_fn compute, void *pack, void **value,
                       size_t *len)
{
    hermes_rc rc;
    *value = NULL;
    *len = 0;
    hm_clear_error();
    if (!fn) /* not registered, or the handle was closed */
        rc = hm_error(NULL, HERMES_EINVAL, NOT_REGISTERED);
    else if (enc->failed)
        rc = hm_error(fn->h, HERMES_ENOMEM,
                      "%s: out of memory encoding the arguments", fn->name);
    else
        rc = hermes_call(fn, enc->data, enc->len, compute, pack, value, len);
    hermes_args_free(enc);
    return rc;
}

hermes_rc hermes__invalidate(hermes_fn *fn, hermes_args *enc, void *pack)
{
    hermes_rc rc;
    hm_clear_error();
    if (!fn)
        rc = hm_error(NULL, HERMES_EINVAL, NOT_REGISTERED);
    else if (enc->failed)
        rc = hm_error(fn->h, HERMES_ENOMEM,
                      "%s: out of memory encoding the arguments", fn->name);
    else
        rc = hermes_invalidate(fn, enc->data, enc->len, pack);
    hermes_args_free(enc);
    return rc;
}

enum { VAL_INT = 'i', VAL_DOUBLE = 'd', VAL_STR = 's', VAL_NULL = 'n' };

static int put_u64(hermes_result *r, unsigned char type, uint64_t v)
{
    unsigned char b[9];
    b[0] = type;
    for (int i = 0; i < 8; i++)
        b[1 + i] = (unsigned char)(v >> (8 * i));
    return hermes_result_set(r, b, sizeof b) == HERMES_OK ? 0 : -1;
}

int hermes__put_i64(hermes_result *r, int64_t v)
{
    return put_u64(r, VAL_INT, (uint64_t)v);
}

int hermes__put_dbl(hermes_result *r, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return put_u64(r, VAL_DOUBLE, bits);
}

int hermes__put_cstr(hermes_result *r, const char *s)
{
    if (!s) {
        /* NULL is returned to the callers, never stored (Hermes never
         * caches None). */
        unsigned char t = VAL_NULL;
        hermes_result_nocache(r);
        return hermes_result_set(r, &t, 1) == HERMES_OK ? 0 : -1;
    }
    /* One allocation; when it fails, hermes_call() reports HERMES_ENOMEM. */
    unsigned char t = VAL_STR;
    int rc = hm_result_set2(r, &t, 1, s, strlen(s)) == HERMES_OK ? 0 : -1;
    /* The wrapper owns strings computed by the function body. */
    free((void *)s);
    return rc;
}

static int get_u64(const void *p, size_t n, unsigned char type, uint64_t *v)
{
    const unsigned char *b = p;
    if (!b || n != 9 || b[0] != type)
        return -1;
    *v = 0;
    for (int i = 0; i < 8; i++)
        *v |= (uint64_t)b[1 + i] << (8 * i);
    return 0;
}

int hermes__get_cstr(const void *p, size_t n, void *out)
{
    const unsigned char *b = p;
    if (!b || n < 1)
        return -1;
    if (b[0] == VAL_NULL && n == 1) {
        *(char **)out = NULL;
        return 0;
    }
    if (b[0] != VAL_STR || memchr(b + 1, '\0', n - 1))
        return -1;
    char *s = malloc(n);
    if (!s)
        return -1;
    memcpy(s, b + 1, n - 1);
    s[n - 1] = '\0';
    *(char **)out = s;
    return 0;
}

int hermes__get_dbl(const void *p, size_t n, void *out)
{
    uint64_t bits;
    if (get_u64(p, n, VAL_DOUBLE, &bits) != 0)
        return -1;
    memcpy(out, &bits, sizeof(double));
    return 0;
}

int hermes__get_flt(const void *p, size_t n, void *out)
{
    double d;
    if (hermes__get_dbl(p, n, &d) != 0)
        return -1;
    *(float *)out = (float)d;
    return 0;
}

#define GET_INT(fname, type)                                                   \
    int fname(const void *p, size_t n, void *out)                              \
    {                                                                          \
        uint64_t v;                                                            \
        if (get_u64(p, n, VAL_INT, &v) != 0)                                   \
            return -1;                                                         \
        *(type *)out = (type)(int64_t)v;                                       \
        return 0;                                                              \
    }

GET_INT(hermes__get_sc, signed char)
GET_INT(hermes__get_s, short)
GET_INT(hermes__get_i, int)
GET_INT(hermes__get_l, long)
GET_INT(hermes__get_ll, long long)
GET_INT(hermes__get_uc, unsigned char)
GET_INT(hermes__get_us, unsigned short)
GET_INT(hermes__get_ui, unsigned int)
GET_INT(hermes__get_ul, unsigned long)
GET_INT(hermes__get_ull, unsigned long long)
GET_INT(hermes__get_b, _Bool)
