/*
 * The result API: what a compute callback hands back to hermes_call().
 */
#include <stdlib.h>
#include <string.h>

#include "memo.h"

hermes_rc hermes_result_set(hermes_result *res, const void *p, size_t n)
{
    if (!res || (!p && n))
        return HERMES_EINVAL;
    unsigned char *d = malloc(n + 1);
    if (!d) {
        res->nomem = true;
        return HERMES_ENOMEM;
    }
    if (n)
        memcpy(d, p, n);
    d[n] = '\0';
    free(res->data);
    res->data = d;
    res->len = n;
    res->set = true;
    return HERMES_OK;
}

void hermes_result_nocache(hermes_result *res)
{
    if (res)
        res->nocache = true;
}

void hermes_result_ttl(hermes_result *res, uint32_t ttl_seconds)
{
    if (res) {
        res->has_ttl = true;
        res->ttl = ttl_seconds;
    }
}

void hermes_result_error(hermes_result *res, const char *msg)
{
    if (res && msg) {
        free(res->errmsg);
        res->errmsg = strdup(msg);
    }
}
