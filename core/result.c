/*
 * The result API: what a compute callback hands back to hermes_call().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "memo.h"

hermes_rc hm_result_set2(hermes_result *res, const void *a, size_t an,
                         const void *b, size_t bn)
{
    if (!res)
        return hm_error(NULL, HERMES_EINVAL, "hermes_result_set: res is NULL");
    if (!a && an)
        return hm_error(res->h, HERMES_EINVAL,
                        "hermes_result_set: p is NULL but n is %zu", an);
    if ((!b && bn) || bn >= SIZE_MAX || an > SIZE_MAX - 1 - bn)
        return hm_error(res->h, HERMES_EINVAL,
                        "hermes_result_set: a value of %zu + %zu bytes", an,
                        bn);
    unsigned char *d = malloc(an + bn + 1);
    if (!d) {
        res->nomem = true;
        return hm_error(res->h, HERMES_ENOMEM,
                        "hermes_result_set: out of memory for %zu bytes",
                        an + bn);
    }
    if (an)
        memcpy(d, a, an);
    if (bn)
        memcpy(d + an, b, bn);
    d[an + bn] = '\0';
    free(res->data);
    res->data = d;
    res->len = an + bn;
    res->set = true;
    return HERMES_OK;
}

hermes_rc hermes_result_set(hermes_result *res, const void *p, size_t n)
{
    hm_clear_error();
    return hm_result_set2(res, p, n, NULL, 0);
}

void hermes_result_nocache(hermes_result *res)
{
    if (res)
        res->nocache = true;
}

hermes_rc hermes_result_ttl(hermes_result *res, uint32_t ttl_seconds)
{
    hm_clear_error();
    if (!res)
        return hm_error(NULL, HERMES_EINVAL, "hermes_result_ttl: res is NULL");
    if (!hm_ttl_ok(ttl_seconds)) {
        /* Remembered, so that the call fails instead of storing the value
         * under a TTL nobody asked for. */
        res->bad_ttl = true;
        res->ttl = ttl_seconds;
        return hm_error(res->h, HERMES_EINVAL,
                        "hermes_result_ttl: " HM_TTL_RANGE,
                        (unsigned long)ttl_seconds, HERMES_TTL_MAX);
    }
    res->has_ttl = ttl_seconds != HERMES_TTL_DEFAULT;
    res->ttl = ttl_seconds;
    return HERMES_OK;
}

void hermes_result_error(hermes_result *res, const char *msg)
{
    if (res && msg) {
        free(res->errmsg);
        res->errmsg = strdup(msg);
    }
}
