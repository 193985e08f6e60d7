/*
 * Fuzz target: key building, end to end through the public API.  A
 * recording backend (the dict underneath) declares a max_key_len taken
 * from the input and checks every key the core hands it; a few calls of
 * registered functions (argument-hashed or with a custom key, with or
 * without a tag) and direct get/set run on one handle.
 *
 * Input: u16 max_key_len (0..1023, 0 = no limit), a prefix (length byte +
 * bytes; empty = the default), then up to 8 calls, each: a kind byte
 * (bit 0: custom key, bit 1: one tag, bit 2: direct hermes_get/hermes_set
 * instead of a registered function), a name, a payload (the encoded
 * arguments, or the custom/direct key text) and a tag.
 *
 * Properties: every key reaching the backend is at most max_key_len bytes,
 * holds no space, control byte or DEL and starts with "<prefix>:"; two
 * calls get the same entry key exactly when they name the same entry, and
 * a call never returns a value computed for a call naming another one.
 * Two calls name the same entry when they are the same (name, arguments),
 * or have the same custom/direct key text, or (the one namespace entry
 * keys share, hermes.h) one's custom/direct text is "<name>:<arghash>" of
 * the other, with the name escaped as in every key.
 */
#include <stdbool.h>
#include <string.h>

#include <hermes/backend.h>
#include <hermes/hermes.h>

#include "config.h"
#include "fuzz.h"
#include "dict.h"
#include "keys.h"

#define MAX_CALLS 8

static uint32_t max_key_len;
static char prefix[300];
static size_t prefix_len;
static char entry_key[2048]; /* first entry key of the current call */
static size_t entry_key_len;
static bool entry_seen;

static void check_key(hermes_bytes k)
{
    const unsigned char *p = k.data;
    if (max_key_len)
        FUZZ_CHECK(k.len <= max_key_len);
    for (size_t i = 0; i < k.len; i++)
        FUZZ_CHECK(p[i] > 0x20 && p[i] != 0x7f);
    FUZZ_CHECK(k.len > prefix_len && memcmp(p, prefix, prefix_len) == 0 &&
               p[prefix_len] == ':');
}

static void check_keys(const hermes_bytes *k, size_t n)
{
    for (size_t i = 0; i < n; i++)
        check_key(k[i]);
}

static int rec_open(const hermes_host *host, const hermes_kv *kv, size_t n,
                    void **state, hermes_open_error *err)
{
    static const hermes_kv one_shard[] = {{"shards", "1", 0}};
    return hm_dict_backend()->open(host, one_shard, 1, state, err);
}

static void rec_close(void *st)
{
    hm_dict_backend()->close(st);
}

static int rec_get(void *st, const hermes_bytes *keys, size_t n,
                   hermes_value_cb cb, void *arg)
{
    check_keys(keys, n);
    static const char entry[] = ":entry:";
    if (!entry_seen && keys[0].len >= prefix_len + 7 &&
        memcmp((const char *)keys[0].data + prefix_len, entry, 7) == 0) {
        FUZZ_CHECK(keys[0].len <= sizeof entry_key);
        memcpy(entry_key, keys[0].data, keys[0].len);
        entry_key_len = keys[0].len;
        entry_seen = true;
    }
    return hm_dict_backend()->get(st, keys, n, cb, arg);
}

static int rec_set(void *st, const hermes_item *items, size_t n,
                   hermes_value_cb cb, void *arg)
{
    for (size_t i = 0; i < n; i++)
        check_key(items[i].key);
    return hm_dict_backend()->set(st, items, n, cb, arg);
}

static int rec_del(void *st, const hermes_bytes *keys, size_t n)
{
    check_keys(keys, n);
    return hm_dict_backend()->del(st, keys, n);
}

static int rec_lock(void *st, hermes_bytes key, hermes_bytes token,
                    uint32_t ttl_ms, int *acquired)
{
    check_key(key);
    return hm_dict_backend()->lock(st, key, token, ttl_ms, acquired);
}

static int rec_unlock(void *st, hermes_bytes key, hermes_bytes token,
                      int *released)
{
    check_key(key);
    return hm_dict_backend()->unlock(st, key, token, released);
}

static int rec_flush(void *st, hermes_bytes pfx)
{
    return hm_dict_backend()->flush(st, pfx);
}

static hermes_backend rec_backend = {
    .abi_major = HERMES_BACKEND_ABI_MAJOR,
    .abi_minor = HERMES_BACKEND_ABI_MINOR,
    .struct_size = sizeof(hermes_backend),
    .name = "fuzzkeys",
    .version = "1",
    .description = "the dict, checking every key",
    .caps = HERMES_CAP_THREADSAFE,
    .open = rec_open,
    .close = rec_close,
    .get = rec_get,
    .set = rec_set,
    .del = rec_del,
    .lock = rec_lock,
    .unlock = rec_unlock,
    .flush = rec_flush,
};

typedef struct call {
    const uint8_t *name, *payload;
    size_t name_len, payload_len;
    bool custom; /* the key is the payload text */
    char key[2048];
    size_t key_len;
    bool done;
} call;

static call calls[MAX_CALLS];

/* A NUL-terminated copy of up to 255 input bytes. */
static char *cstr(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    FUZZ_CHECK(s);
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* Bytes up to a NUL: what the core sees of a C string. */
static size_t text_len(const uint8_t *p, size_t n)
{
    return strnlen((const char *)p, n);
}

static bool same_text(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    an = text_len(a, an);
    return an == text_len(b, bn) && memcmp(a, b, an) == 0;
}

static bool same_call(const call *a, const call *b)
{
    if (a->custom != b->custom)
        return false;
    if (a->custom)
        return same_text(a->payload, a->payload_len, b->payload,
                         b->payload_len);
    return same_text(a->name, a->name_len, b->name, b->name_len) &&
           a->payload_len == b->payload_len &&
           memcmp(a->payload, b->payload, a->payload_len) == 0;
}

/* Whether custom call c's text is the "<name>:<arghash>" of hashed call a. */
static bool custom_names(const call *c, const call *a)
{
    hm_buf want;
    hm_buf_init(&want);
    hm_buf_add_escaped(&want, (const char *)a->name,
                       text_len(a->name, a->name_len));
    char hash[HM_HASH_B64_LEN];
    hm_hash128_b64(a->payload, a->payload_len, hash);
    hm_buf_add(&want, ":", 1);
    hm_buf_add(&want, hash, sizeof hash);
    hm_buf got;
    hm_buf_init(&got);
    hm_buf_add_escaped(&got, (const char *)c->payload,
                       text_len(c->payload, c->payload_len));
    FUZZ_CHECK(!want.failed && !got.failed);
    bool same =
        want.len == got.len && memcmp(want.data, got.data, got.len) == 0;
    hm_buf_free(&want);
    hm_buf_free(&got);
    return same;
}

static bool same_entry(const call *a, const call *b)
{
    if (a->custom != b->custom)
        return a->custom ? custom_names(a, b) : custom_names(b, a);
    return same_call(a, b);
}

typedef struct compute_arg {
    size_t index;
    const call *c;
} compute_arg;

static int compute(void *arg, hermes_result *res)
{
    const compute_arg *ca = arg;
    uint32_t v = (uint32_t)ca->index;
    return hermes_result_set(res, &v, sizeof v) == HERMES_OK ? 0 : 1;
}

static int custom_key(void *arg, char *buf, size_t cap)
{
    const compute_arg *ca = arg;
    size_t n = ca->c->payload_len;
    if (cap > 0) {
        size_t m = n < cap - 1 ? n : cap - 1;
        memcpy(buf, ca->c->payload, m);
        buf[m] = '\0';
    }
    return (int)n;
}

/* Checks that value v (a call index) was computed for a call naming the
 * same entry as c. */
static void check_value(const void *v, size_t len, const call *c)
{
    FUZZ_CHECK(len == sizeof(uint32_t));
    uint32_t i;
    memcpy(&i, v, sizeof i);
    FUZZ_CHECK(i < MAX_CALLS && calls[i].done);
    FUZZ_CHECK(same_entry(&calls[i], c));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size};
    max_key_len = fuzz_byte(&in);
    max_key_len |= (fuzz_byte(&in) & 3) << 8;
    rec_backend.max_key_len = max_key_len;
    size_t pl;
    const uint8_t *pp = fuzz_bytes(&in, 255, &pl);
    char text[400];
    if (pl) {
        snprintf(text, sizeof text, "[hermes]\nprefix = %.*s\n", (int)pl,
                 (const char *)pp);
    } else {
        snprintf(text, sizeof text, "[hermes]\n");
    }
    hermes *h;
    if (hermes_open_with(&h, text, "<fuzz>", &rec_backend) != HERMES_OK) {
        hermes_close(h);
        return 0;
    }
    /* The prefix the handle really uses: what the parser makes of it. */
    hm_config cfg;
    FUZZ_CHECK(hm_config_parse(text, "<fuzz>", &cfg, NULL, 0) == HERMES_OK);
    prefix_len = strlen(cfg.prefix);
    FUZZ_CHECK(prefix_len < sizeof prefix);
    memcpy(prefix, cfg.prefix, prefix_len);
    hm_config_free(&cfg);

    hermes_fn *fns[MAX_CALLS] = {0};
    char *names[MAX_CALLS] = {0};
    bool fn_custom[MAX_CALLS] = {0};
    size_t nfns = 0;
    memset(calls, 0, sizeof calls);
    for (size_t i = 0; i < MAX_CALLS && in.n; i++) {
        unsigned kind = fuzz_byte(&in);
        call *c = &calls[i];
        c->name = fuzz_bytes(&in, 255, &c->name_len);
        c->payload = fuzz_bytes(&in, 255, &c->payload_len);
        size_t tl;
        const uint8_t *tp = fuzz_bytes(&in, 255, &tl);
        compute_arg ca = {i, c};
        void *val = NULL;
        size_t len = 0;
        hermes_rc rc;
        entry_seen = false;
        if (kind & 4) {
            /* Direct access: the key is the text up to a NUL. */
            c->custom = true;
            char *key = cstr(c->payload, c->payload_len);
            rc = hermes_get(h, key, NULL, &val, &len);
            if (rc == HERMES_ENOTFOUND) {
                c->done = true;
                uint32_t v = (uint32_t)i;
                rc = hermes_set(h, key, &v, sizeof v, NULL, 0);
                FUZZ_CHECK(rc == HERMES_OK);
            } else {
                FUZZ_CHECK(rc == HERMES_OK);
                check_value(val, len, c);
                c->done = true;
            }
            free(key);
        } else {
            char *name = cstr(c->name, c->name_len);
            size_t f = 0;
            while (f < nfns && strcmp(names[f], name) != 0)
                f++;
            if (f == nfns) {
                char *tag = cstr(tp, tl);
                hermes_fn_options o = {
                    .size = sizeof o,
                    .tags =
                        (kind & 2) ? (const char *const[]){tag, NULL} : NULL,
                    .key = (kind & 1) ? custom_key : NULL,
                };
                rc = hermes_fn_register(h, name, &o, &fns[f]);
                free(tag);
                if (rc != HERMES_OK) {
                    FUZZ_CHECK(rc == HERMES_EINVAL);
                    free(name);
                    continue;
                }
                names[f] = name;
                fn_custom[f] = kind & 1;
                nfns++;
            } else {
                free(name);
            }
            c->custom = fn_custom[f];
            rc = hermes_call(fns[f], c->payload, c->payload_len, compute, &ca,
                             &val, &len);
            if (c->custom && memchr(c->payload, '\0', c->payload_len)) {
                FUZZ_CHECK(rc == HERMES_EINVAL); /* the key function failed */
                continue;
            }
            FUZZ_CHECK(rc == HERMES_OK);
            c->done = true;
            check_value(val, len, c);
        }
        hermes_free(val);
        FUZZ_CHECK(entry_seen);
        memcpy(c->key, entry_key, entry_key_len);
        c->key_len = entry_key_len;
        for (size_t j = 0; j < i; j++) {
            if (!calls[j].done)
                continue;
            bool same_key = calls[j].key_len == c->key_len &&
                            memcmp(calls[j].key, c->key, c->key_len) == 0;
            FUZZ_CHECK(same_key == same_entry(&calls[j], c));
        }
    }
    hermes_close(h);
    for (size_t f = 0; f < nfns; f++)
        free(names[f]);
    return 0;
}
