/*
 * A do-nothing backend plugin for the loader tests, compiled once per
 * defect: each -D flag below breaks the descriptor (or the entry point) in
 * one way, so every loader check has a real shared object to refuse.  With
 * no flag it is a valid plugin.  (The plugin built against ABI 1.0 is
 * abi_1_0.c, compiled against a frozen copy of that header.)
 *
 *   TP_NO_ENTRY      no hermes_backend_entry symbol at all
 *   TP_ENTRY_NULL    the entry returns NULL
 *   TP_BAD_MAJOR     ABI major one newer than the core's
 *   TP_NEWER_MINOR   ABI minor one newer than the core's
 *   TP_SMALL_SIZE    struct_size smaller than ABI 1.0's descriptor
 *   TP_BIG_SIZE      struct_size larger than the descriptor of the minor
 *                    it declares (the core's own)
 *   TP_BAD_NAME      a name outside [a-z0-9_]+
 *   TP_NULL_OP=TP_x  the mandatory operation x (TP_OPEN, TP_GET, ...) NULL
 *   TP_SCAN_NO_OP    HERMES_CAP_SCAN declared, scan NULL
 *   TP_UNRESOLVED    needs a symbol nothing defines, so dlopen fails
 */
#include <stddef.h>
#include <string.h>

#include <hermes/backend.h>

enum {
    TP_NONE,
    TP_OPEN,
    TP_CLOSE,
    TP_GET,
    TP_SET,
    TP_DEL,
    TP_LOCK,
    TP_UNLOCK,
    TP_FLUSH
};

#ifndef TP_NULL_OP
#define TP_NULL_OP TP_NONE
#endif
/* A compile-time choice, so the descriptor can stay const. */
#define OP(id, fn) (TP_NULL_OP == (id) ? NULL : (fn))

#if defined(TP_BAD_MAJOR)
#define ABI_MAJOR (HERMES_BACKEND_ABI_MAJOR + 1)
#else
#define ABI_MAJOR HERMES_BACKEND_ABI_MAJOR
#endif

#if defined(TP_NEWER_MINOR)
#define ABI_MINOR (HERMES_BACKEND_ABI_MINOR + 1)
#else
#define ABI_MINOR HERMES_BACKEND_ABI_MINOR
#endif

#if defined(TP_SMALL_SIZE)
#define STRUCT_SIZE (HERMES_BACKEND_SIZE_1_0 - sizeof(void *))
#elif defined(TP_BIG_SIZE)
#define STRUCT_SIZE (sizeof(hermes_backend) + sizeof(void *))
#else
#define STRUCT_SIZE sizeof(hermes_backend)
#endif

#if defined(TP_BAD_NAME)
#define NAME "Bad-Name"
#else
#define NAME "test"
#endif

#if defined(TP_SCAN_NO_OP)
#define CAPS HERMES_CAP_SCAN
#else
#define CAPS 0u
#endif

static int stub_open(const hermes_host *host, const hermes_kv *kv, size_t n,
                     void **state, hermes_open_error *err)
{
    *state = NULL;
    return HERMES_BE_OK;
}

static void stub_close(void *state)
{
}

static int stub_get(void *state, const hermes_bytes *keys, size_t n,
                    hermes_value_cb cb, void *arg)
{
    return HERMES_BE_OK;
}

static int stub_set(void *state, const hermes_item *items, size_t n,
                    hermes_value_cb cb, void *arg)
{
    return HERMES_BE_OK;
}

static int stub_del(void *state, const hermes_bytes *keys, size_t n)
{
    return HERMES_BE_OK;
}

static int stub_lock(void *state, hermes_bytes key, hermes_bytes token,
                     uint32_t ttl_ms, int *acquired)
{
    *acquired = 1;
    return HERMES_BE_OK;
}

static int stub_unlock(void *state, hermes_bytes key, hermes_bytes token,
                       int *released)
{
    *released = 1;
    return HERMES_BE_OK;
}

static int stub_flush(void *state, hermes_bytes prefix)
{
    return HERMES_BE_OK;
}

/* Unused by the TP_ENTRY_NULL variant, which never hands it out. */
__attribute__((unused)) static const hermes_backend desc = {
    .abi_major = ABI_MAJOR,
    .abi_minor = ABI_MINOR,
    .struct_size = (uint32_t)(STRUCT_SIZE),
    .name = NAME,
    .version = "0",
    .description = "loader test plugin",
    .caps = CAPS,
    .open = OP(TP_OPEN, stub_open),
    .close = OP(TP_CLOSE, stub_close),
    .get = OP(TP_GET, stub_get),
    .set = OP(TP_SET, stub_set),
    .del = OP(TP_DEL, stub_del),
    .lock = OP(TP_LOCK, stub_lock),
    .unlock = OP(TP_UNLOCK, stub_unlock),
    .flush = OP(TP_FLUSH, stub_flush),
};

#if defined(TP_UNRESOLVED)
/* Defined nowhere: the data relocation makes even a lazy dlopen fail, as
 * it does for a plugin built against a newer library than the one found. */
extern int hermes_test_no_such_symbol;
HERMES_BACKEND_EXPORT int *tp_unresolved;
int *tp_unresolved = &hermes_test_no_such_symbol;
#endif

#if defined(TP_NO_ENTRY)

/* Something to export, so that the module is a valid shared object. */
HERMES_BACKEND_EXPORT int not_a_hermes_plugin(void);
HERMES_BACKEND_EXPORT int not_a_hermes_plugin(void)
{
    return desc.abi_major;
}

#elif defined(TP_ENTRY_NULL)

HERMES_BACKEND_EXPORT const hermes_backend *hermes_backend_entry(void);
HERMES_BACKEND_EXPORT const hermes_backend *hermes_backend_entry(void)
{
    return NULL;
}

#else

HERMES_BACKEND_DEFINE(desc)

#endif
