/*
 * A frozen copy of the backend ABI 1.0 (<hermes/backend.h> as it was at
 * 1.0, comments cut down): what a plugin built against the 1.0 SDK was
 * compiled with.  Never edit it to follow the SDK: tests/plugins/abi_1_0.c
 * is built against this file alone, so that every later core proves it
 * still loads and uses a 1.0 plugin (the extension rule in backend.h).
 */
#ifndef HERMES_TEST_ABI_1_0_H
#define HERMES_TEST_ABI_1_0_H

#include <stddef.h>
#include <stdint.h>

#define HERMES_BACKEND_ABI_MAJOR 1
#define HERMES_BACKEND_ABI_MINOR 0
#define HERMES_BACKEND_ENTRY_SYMBOL "hermes_backend_entry"

typedef enum hermes_be_status {
    HERMES_BE_OK = 0,
    HERMES_BE_IO = 1,
    HERMES_BE_NOMEM = 2,
    HERMES_BE_TOOBIG = 3,
    HERMES_BE_INVALID = 4,
    HERMES_BE_PROTOCOL = 5,
    HERMES_BE_UNSUPPORTED = 6
} hermes_be_status;

#define HERMES_LOG_ERROR 0
#define HERMES_LOG_WARN 1
#define HERMES_LOG_INFO 2
#define HERMES_LOG_DEBUG 3

typedef struct hermes_host {
    uint32_t struct_size;
    void *ctx;
    void (*log)(void *ctx, int level, const char *msg);
    uint64_t (*now_ms)(void *ctx);
    uint64_t (*monotonic_ns)(void *ctx);
    int (*random)(void *ctx, void *buf, size_t len);
    const char *config_source;
} hermes_host;

typedef struct hermes_kv {
    const char *key;
    const char *value;
    int line;
} hermes_kv;

typedef struct hermes_open_error {
    char msg[256];
    int kv_index;
} hermes_open_error;

typedef struct hermes_bytes {
    const void *data;
    size_t len;
} hermes_bytes;

#define HERMES_SET_IF_ABSENT 0x1u

typedef struct hermes_item {
    hermes_bytes key;
    hermes_bytes value;
    uint32_t ttl_ms;
    uint32_t flags;
} hermes_item;

typedef void (*hermes_value_cb)(void *arg, size_t index, const void *value,
                                size_t len);
typedef int (*hermes_scan_cb)(void *arg, const void *key, size_t klen,
                              const void *value, size_t vlen, int64_t ttl_ms);
typedef void (*hermes_stat_cb)(void *arg, const char *name, const char *value);

#define HERMES_CAP_THREADSAFE 0x1u
#define HERMES_CAP_SCAN 0x2u
#define HERMES_CAP_STATS 0x4u
#define HERMES_CAP_SHARED 0x8u

typedef struct hermes_backend {
    uint16_t abi_major;
    uint16_t abi_minor;
    uint32_t struct_size;
    const char *name;
    const char *version;
    const char *description;
    uint32_t caps;
    uint32_t max_key_len;
    int (*open)(const hermes_host *host, const hermes_kv *kv, size_t n,
                void **state, hermes_open_error *err);
    void (*close)(void *state);
    int (*get)(void *state, const hermes_bytes *keys, size_t n,
               hermes_value_cb cb, void *arg);
    int (*set)(void *state, const hermes_item *items, size_t n,
               hermes_value_cb cb, void *arg);
    int (*del)(void *state, const hermes_bytes *keys, size_t n);
    int (*lock)(void *state, hermes_bytes key, hermes_bytes token,
                uint32_t ttl_ms, int *acquired);
    int (*unlock)(void *state, hermes_bytes key, hermes_bytes token,
                  int *released);
    int (*flush)(void *state, hermes_bytes prefix);
    int (*scan)(void *state, hermes_bytes prefix, hermes_scan_cb cb, void *arg);
    int (*stats)(void *state, hermes_stat_cb cb, void *arg);
} hermes_backend;

typedef const hermes_backend *(*hermes_backend_entry_fn)(void);

#define HERMES_BACKEND_EXPORT __attribute__((visibility("default")))

#endif
