/*
 * broken_lock - a deliberately defective backend for the conformance
 * suite's own test: the SDK's example memory store with one bug, an
 * unlock() that releases the lock whatever the token (the classic mistake
 * of deleting the lock key without checking its owner, which lets a
 * holder whose lock expired release its successor's).  hermes-conformance
 * must report "FAIL unlock_wrong_token" for it; everything else passes.
 *
 * The example is included whole (its functions are static) with its entry
 * function renamed, so this file only adds the defect and a descriptor.
 */
#define hermes_backend_entry memory_backend_entry_unused
#include "memory.c"
#undef hermes_backend_entry

/* The bug: delete the lock key without comparing its value to token. */
static int broken_unlock(void *state, hermes_bytes key, hermes_bytes token,
                         int *released)
{
    (void)token;
    *released = 0;
    int st = memory_del(state, &key, 1);

    if (st == HERMES_BE_OK)
        *released = 1;
    return st;
}

static const hermes_backend broken_backend = {
    .abi_major = HERMES_BACKEND_ABI_MAJOR,
    .abi_minor = HERMES_BACKEND_ABI_MINOR,
    .struct_size = sizeof(hermes_backend),
    .name = "broken_lock",
    .version = "0",
    .description = "test plugin: unlock ignores the owner token",
    .caps = HERMES_CAP_THREADSAFE | HERMES_CAP_SCAN | HERMES_CAP_STATS,
    .open = memory_open,
    .close = memory_close,
    .get = memory_get,
    .set = memory_set,
    .del = memory_del,
    .lock = memory_lock,
    .unlock = broken_unlock,
    .flush = memory_flush,
    .scan = memory_scan,
    .stats = memory_stats,
};

HERMES_BACKEND_DEFINE(broken_backend)
