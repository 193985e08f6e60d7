/*
 * hermes-conformance checks of the descriptor, open() and the key/value
 * operations (get, set, set-if-absent, TTLs, delete, flush, scan, stats),
 * one behaviour per function, each on its own keys under the run prefix.
 */
#include "conformance.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEYCAP 256

/* ---------------------------------------------------- descriptor, open */

static int valid_name(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return 0;
    return 1;
}

/* A spec without '/' and without a file extension is a name the loader
 * searched for: the descriptor must carry the same name, or users would
 * write `backend = x` and then have to configure a section [y]. */
static int spec_is_name(const char *spec)
{
    size_t n = strlen(spec);

    if (strchr(spec, '/'))
        return 0;
    return !(n > 3 && (strcmp(spec + n - 3, ".so") == 0 ||
                       strcmp(spec + n - 3, ".la") == 0));
}

int check_descriptor(conf_ctx *c)
{
    const hermes_backend *d = c->be;
    const uint32_t known = HERMES_CAP_THREADSAFE | HERMES_CAP_SCAN |
                           HERMES_CAP_STATS | HERMES_CAP_SHARED |
                           HERMES_CAP_NO_PREFIX_FLUSH;

    if (d->abi_major != HERMES_BACKEND_ABI_MAJOR)
        return conf_fail(c, "abi_major is %u, want %u", d->abi_major,
                         HERMES_BACKEND_ABI_MAJOR);
    if (d->abi_minor > HERMES_BACKEND_ABI_MINOR)
        return conf_fail(c, "abi_minor %u is newer than this suite's %u",
                         d->abi_minor, HERMES_BACKEND_ABI_MINOR);
    if (d->struct_size < HERMES_BACKEND_SIZE_1_0)
        return conf_fail(c, "struct_size %u is smaller than ABI 1.0's %zu",
                         d->struct_size, (size_t)HERMES_BACKEND_SIZE_1_0);
    if (d->struct_size > sizeof(hermes_backend))
        return conf_fail(c, "struct_size %u is larger than ABI %u.%u's %zu",
                         d->struct_size, HERMES_BACKEND_ABI_MAJOR,
                         HERMES_BACKEND_ABI_MINOR, sizeof(hermes_backend));
    if (!valid_name(d->name))
        return conf_fail(c, "name %s%s%s is not [a-z0-9_]+",
                         d->name ? "\"" : "", d->name ? d->name : "NULL",
                         d->name ? "\"" : "");
    if (spec_is_name(c->spec) && strcmp(c->spec, d->name) != 0)
        return conf_fail(c,
                         "loaded as \"%s\" but the descriptor is named "
                         "\"%s\"",
                         c->spec, d->name);
    if (!d->version || !*d->version)
        return conf_fail(c, "version is %s", d->version ? "empty" : "NULL");
    if (!d->description)
        return conf_fail(c, "description is NULL");
    if (strchr(d->description, '\n'))
        return conf_fail(c, "description is not one line");
    if (d->caps & ~known)
        return conf_fail(c, "caps has unknown bits 0x%x", d->caps & ~known);
    if ((d->caps & HERMES_CAP_NO_PREFIX_FLUSH) && d->abi_minor < 1)
        return conf_fail(c, "caps has HERMES_CAP_NO_PREFIX_FLUSH (ABI 1.1) "
                            "but abi_minor is 0: the core would ignore it and "
                            "expect flush() to delete by prefix");
    if (!d->open || !d->close || !d->get || !d->set || !d->del || !d->lock ||
        !d->unlock || !d->flush)
        return conf_fail(c, "a mandatory operation is NULL");
    if (!(d->caps & HERMES_CAP_SCAN) != !d->scan)
        return conf_fail(c, "%s",
                         d->scan ? "scan is set but caps lacks HERMES_CAP_SCAN"
                                 : "caps has HERMES_CAP_SCAN but scan is NULL");
    if (!(d->caps & HERMES_CAP_STATS) != !d->stats)
        return conf_fail(c, "%s",
                         d->stats
                             ? "stats is set but caps lacks HERMES_CAP_STATS"
                             : "caps has HERMES_CAP_STATS but stats is NULL");
    conf_note(c, "name %s, version %s, caps 0x%x, max_key_len %u", d->name,
              d->version, d->caps, d->max_key_len);
    return CONF_PASS;
}

/* One open() with the unknown key "hconf_no_such_key = value" in the
 * middle of the real section: it must fail with INVALID naming it. */
static int rejects_unknown_key(conf_ctx *c, const char *value)
{
    /* The unknown key goes in the middle of the real section, so that a
     * plugin always answering index 0 or n-1 is caught when it can be. */
    size_t n = c->nkv + 1, bad = (c->nkv + 1) / 2;
    hermes_kv *kv = conf_xmalloc(n * sizeof *kv);
    hermes_open_error err;
    void *state = NULL;

    for (size_t i = 0, j = 0; i < n; i++) {
        if (i == bad) {
            kv[i].key = "hconf_no_such_key";
            kv[i].value = value;
            kv[i].line = 0;
        } else {
            kv[i] = c->kv[j++];
        }
    }
    memset(&err, 0, sizeof err);
    err.kv_index = -7; /* neither -1 nor an index: "never written" */
    int st = c->be->open(&c->host, kv, n, &state, &err);

    free(kv);
    if (st == HERMES_BE_OK) {
        c->be->close(state);
        return conf_fail(c,
                         "open accepted the unknown key "
                         "\"hconf_no_such_key = %s\"",
                         value);
    }
    if (st != HERMES_BE_INVALID)
        return conf_fail(c, "open returned %s, want INVALID", conf_status(st));
    if (err.kv_index != (int)bad)
        return conf_fail(c,
                         "err->kv_index is %d, want %zu (the unknown "
                         "key)",
                         err.kv_index, bad);
    if (!memchr(err.msg, 0, sizeof err.msg))
        return conf_fail(c, "err->msg is not NUL-terminated");
    if (!err.msg[0])
        return conf_fail(c, "err->msg is empty");
    conf_note(c, "open said: %s", err.msg);
    return CONF_PASS;
}

int check_open_rejects_unknown_key(conf_ctx *c)
{
    /* An empty value ("key =") is legal input, never NULL. */
    if (rejects_unknown_key(c, "1") != CONF_PASS ||
        rejects_unknown_key(c, "") != CONF_PASS)
        return CONF_FAIL;
    return CONF_PASS;
}

/*
 * Each open() makes a state of its own: two are independent stores unless
 * the plugin declares HERMES_CAP_SHARED (then both see one store), and
 * closing one leaves the other working.
 */
int check_two_states(conf_ctx *c)
{
    hermes_open_error err;
    void *b = NULL;
    char kb[KEYCAP];
    hermes_bytes k = conf_key(c, kb, sizeof kb, "states:k");
    int shared = (c->be->caps & HERMES_CAP_SHARED) != 0;
    conf_got g;

    memset(&err, 0, sizeof err);
    err.kv_index = -1;
    int st = c->be->open(&c->host, c->kv, c->nkv, &b, &err);

    if (st != HERMES_BE_OK)
        return conf_fail(c, "a second open returned %s: %.256s",
                         conf_status(st), err.msg);
    if (b == c->state) {
        c->be->close(b);
        return conf_fail(c, "a second open returned the first one's state");
    }
    int rc = conf_put(c, k, "from A", 6, 0);

    if (rc == CONF_PASS) {
        /* Called directly: only this thread uses state b. */
        conf_got_init(&g, 1);
        st = c->be->get(b, &k, 1, conf_got_cb, &g);
        if (st != HERMES_BE_OK)
            rc = conf_fail(c, "get through the second state returned %s",
                           conf_status(st));
        else if (shared && !conf_got_is(&g, 0, "from A", 6))
            rc = conf_fail(c, "HERMES_CAP_SHARED is set, but a key set "
                              "through one state is not seen through another");
        else if (!shared && g.slot[0].hits)
            rc = conf_fail(c, "a key set through one state is seen through "
                              "another (a global store? set "
                              "HERMES_CAP_SHARED if the store is shared)");
        conf_got_free(&g);
    }
    c->be->close(b);
    if (rc != CONF_PASS)
        return rc;
    return conf_expect(c, k, "from A", 6,
                       "the first state, after the second "
                       "was closed");
}

int check_open(conf_ctx *c)
{
    return conf_open(c);
}

/* ----------------------------------------------------------- get, set */

int check_get_missing(conf_ctx *c)
{
    char kb[KEYCAP];

    return conf_expect_absent(c, conf_key(c, kb, sizeof kb, "missing:1"),
                              "a key never set");
}

int check_set_get_binary(conf_ctx *c)
{
    static const unsigned char tail[] = {0x00, 0x01, 'k',  0x00,
                                         0xff, 0x80, 0x7f, 0x00};
    unsigned char key[KEYCAP], value[256 + 4];
    size_t klen =
        (size_t)snprintf((char *)key, sizeof key, "%sbin:", c->prefix);

    memcpy(key + klen, tail, sizeof tail);
    klen += sizeof tail;
    /* Every byte value, framed by NULs, so that strlen-based code shows. */
    value[0] = 0;
    for (size_t i = 0; i < 256; i++)
        value[i + 1] = (unsigned char)i;
    value[257] = 0;
    value[258] = 'z';
    value[259] = 0;
    hermes_bytes k = conf_bytes(key, klen);

    if (conf_put(c, k, value, sizeof value, 0) != CONF_PASS)
        return CONF_FAIL;
    if (conf_expect(c, k, value, sizeof value, "binary key and value") !=
        CONF_PASS)
        return CONF_FAIL;
    /* The same key cut at its first NUL is another key. */
    return conf_expect_absent(
        c,
        conf_bytes(key,
                   (size_t)((unsigned char *)memchr(key + 1, 0, klen) - key)),
        "the binary key cut at its first NUL");
}

int check_empty_value(conf_ctx *c)
{
    char kb[KEYCAP];
    hermes_bytes k = conf_key(c, kb, sizeof kb, "empty");

    if (conf_put(c, k, "", 0, 0) != CONF_PASS)
        return CONF_FAIL;
    return conf_expect(c, k, "", 0, "a 0-byte value (present, not missing)");
}

int check_long_key(conf_ctx *c)
{
    size_t len = 1024;
    int limited = c->be->max_key_len && c->be->max_key_len < 1024;

    if (limited)
        len = c->be->max_key_len;
    if (len <= c->prefix_len + 1)
        return conf_fail(c, "max_key_len %u is too short for any real key",
                         c->be->max_key_len);
    /* Two keys of the same length differing only in their last byte: a
     * plugin that truncates or hashes carelessly mixes them up. */
    char *a = conf_xmalloc(len), *b = conf_xmalloc(len);
    int rc = CONF_FAIL;

    memcpy(a, c->prefix, c->prefix_len);
    for (size_t i = c->prefix_len; i < len; i++)
        a[i] = (char)('a' + i % 26);
    memcpy(b, a, len);
    a[len - 1] = 'A';
    b[len - 1] = 'B';
    hermes_bytes ka = conf_bytes(a, len), kb = conf_bytes(b, len);

    if (conf_put(c, ka, "value A", 7, 0) == CONF_PASS &&
        conf_put(c, kb, "value B", 7, 0) == CONF_PASS &&
        conf_expect(c, ka, "value A", 7, "the first long key") == CONF_PASS &&
        conf_expect(c, kb, "value B", 7, "the second long key") == CONF_PASS)
        rc = CONF_PASS;
    free(a);
    free(b);
    if (rc == CONF_PASS && limited)
        return conf_skip(c, "max_key_len is %u < 1024; %zu-byte keys work",
                         c->be->max_key_len, len);
    return rc;
}

/*
 * The value limit is learnt, not declared: sizes double from
 * VALUE_PROBE_MIN until the plugin answers TOOBIG (or VALUE_PROBE_MAX is
 * stored), then a bisection finds the largest size it stores.  Values up
 * to that limit must come back intact; one byte more must be TOOBIG, must
 * not leave the key's old value readable, and must not stop the rest of
 * its batch.  A store refusing VALUE_PROBE_MIN is too small for a cache.
 */
#define VALUE_PROBE_MIN ((size_t)64 << 10)
#define VALUE_PROBE_MAX ((size_t)16 << 20)

/* A pattern that does not repeat on any power-of-two period short of the
 * whole value, so that misplaced chunks show. */
static void fill_pattern(unsigned char *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (unsigned char)((i * 2654435761u) >> 13 ^ i >> 20);
}

/* Sets key to the first n bytes of v; *st gets the status.  Fails the
 * check on a status other than OK and TOOBIG. */
static int try_size(conf_ctx *c, hermes_bytes k, const unsigned char *v,
                    size_t n, int *st)
{
    hermes_item it = {k, conf_bytes(v, n), 0, 0};

    *st = conf_set(c, &it, 1, NULL, NULL);
    if (*st != HERMES_BE_OK && *st != HERMES_BE_TOOBIG)
        return conf_fail(c,
                         "set of a %zu-byte value returned %s, want OK "
                         "or TOOBIG",
                         n, conf_status(*st));
    return CONF_PASS;
}

/* Fails unless key holds exactly the first n bytes of v. */
static int expect_big(conf_ctx *c, hermes_bytes k, const unsigned char *v,
                      size_t n)
{
    int present, rc = CONF_FAIL;
    unsigned char *got;
    size_t len;

    if (conf_get1(c, k, &present, &got, &len) != CONF_PASS)
        return CONF_FAIL;
    if (!present) {
        conf_fail(c, "get reported nothing after a set of %zu bytes", n);
    } else if (len != n) {
        conf_fail(c, "get reported %zu bytes after a set of %zu", len, n);
    } else if (n && memcmp(got, v, n) != 0) {
        size_t i = 0;

        while (got[i] == v[i])
            i++;
        conf_fail(c, "a %zu-byte value differs from byte %zu on", n, i);
    } else {
        rc = CONF_PASS;
    }
    free(got);
    return rc;
}

/* Past the limit: the refused overwrite and the batch around it. */
static int check_toobig(conf_ctx *c, const unsigned char *v, size_t limit)
{
    char kb[4][KEYCAP];
    hermes_bytes k = conf_key(c, kb[0], KEYCAP, "big:limit");
    int st;

    if (conf_put(c, k, "old", 3, 0) != CONF_PASS)
        return CONF_FAIL;
    if (try_size(c, k, v, limit + 1, &st) != CONF_PASS)
        return CONF_FAIL;
    if (st != HERMES_BE_TOOBIG)
        return conf_fail(c,
                         "a %zu-byte value was stored once but %zu bytes "
                         "(the limit) plus 1 now returned %s, want TOOBIG",
                         limit, limit, conf_status(st));
    if (conf_expect_absent(c, k,
                           "after an overwrite refused as TOOBIG (the old "
                           "value must not stay readable)") != CONF_PASS)
        return CONF_FAIL;

    /* Every item of a batch is attempted, around a refused one too. */
    hermes_item items[3] = {
        {conf_key(c, kb[1], KEYCAP, "big:before"), conf_str("before"), 0, 0},
        {conf_key(c, kb[2], KEYCAP, "big:refused"), conf_bytes(v, limit + 1), 0,
         0},
        {conf_key(c, kb[3], KEYCAP, "big:after"), conf_str("after"), 0, 0},
    };

    if (conf_put(c, items[2].key, "old", 3, 0) != CONF_PASS ||
        conf_put(c, items[1].key, "old", 3, 0) != CONF_PASS)
        return CONF_FAIL;
    st = conf_set(c, items, 3, NULL, NULL);
    if (st != HERMES_BE_TOOBIG)
        return conf_fail(c,
                         "a batch with a value of the limit plus 1 in the "
                         "middle returned %s, want TOOBIG",
                         conf_status(st));
    if (conf_expect(c, items[0].key, "before", 6,
                    "the item before a TOOBIG one in its batch") != CONF_PASS ||
        conf_expect(c, items[2].key, "after", 5,
                    "the item after a TOOBIG one in its batch (every item "
                    "is attempted)") != CONF_PASS ||
        conf_expect_absent(c, items[1].key,
                           "the TOOBIG item of a batch (the old value must "
                           "not stay readable)") != CONF_PASS)
        return CONF_FAIL;
    return CONF_PASS;
}

int check_value_limit(conf_ctx *c)
{
    unsigned char *v = conf_xmalloc(VALUE_PROBE_MAX + 1);
    char kb[KEYCAP];
    hermes_bytes k = conf_key(c, kb, sizeof kb, "big");
    size_t ok = 0, refused = 0;
    int st, rc = CONF_FAIL;

    fill_pattern(v, VALUE_PROBE_MAX + 1);
    for (size_t n = VALUE_PROBE_MIN; n <= VALUE_PROBE_MAX; n *= 2) {
        if (try_size(c, k, v, n, &st) != CONF_PASS)
            goto out;
        if (st == HERMES_BE_TOOBIG) {
            refused = n;
            break;
        }
        if (expect_big(c, k, v, n) != CONF_PASS)
            goto out;
        ok = n;
    }
    if (refused && !ok) {
        conf_fail(c,
                  "a %zu-byte value was refused as TOOBIG; a cache store "
                  "takes at least %zu KiB",
                  refused, VALUE_PROBE_MIN >> 10);
        goto out;
    }
    if (!refused) {
        conf_note(c, "values up to %zu MiB work; no limit below",
                  VALUE_PROBE_MAX >> 20);
        rc = CONF_PASS;
        goto out;
    }
    /* ok is stored, refused is not: bisect to the exact limit. */
    while (refused - ok > 1) {
        size_t mid = ok + (refused - ok) / 2;

        if (try_size(c, k, v, mid, &st) != CONF_PASS)
            goto out;
        if (st == HERMES_BE_OK)
            ok = mid;
        else
            refused = mid;
    }
    conf_note(c, "the largest value stored is %zu bytes", ok);
    if (try_size(c, k, v, ok, &st) != CONF_PASS)
        goto out;
    if (st != HERMES_BE_OK) {
        conf_fail(c,
                  "a %zu-byte value was stored once but %s the second time "
                  "(the limit must not depend on what the store holds)",
                  ok, conf_status(st));
        goto out;
    }
    if (expect_big(c, k, v, ok) == CONF_PASS)
        rc = check_toobig(c, v, ok);
out:
    free(v);
    return rc;
}

int check_get_batch(conf_ctx *c)
{
    enum { N = 10 };
    char kbuf[N][KEYCAP], vbuf[N][64];
    hermes_bytes keys[N];
    conf_got g;
    int rc = CONF_PASS;

    /* Keys 1, 4 and 7 are never set; values differ in length too. */
    for (size_t i = 0; i < N; i++) {
        keys[i] = conf_key(c, kbuf[i], KEYCAP, "batch:%zu", i);
        snprintf(vbuf[i], sizeof vbuf[i], "value %zu %.*s", i, (int)(i * 4),
                 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        if (i % 3 != 1 &&
            conf_put(c, keys[i], vbuf[i], strlen(vbuf[i]), 0) != CONF_PASS)
            return CONF_FAIL;
    }
    conf_got_init(&g, N);
    int st = conf_get(c, keys, N, conf_got_cb, &g);

    if (st != HERMES_BE_OK)
        rc = conf_fail(c, "batched get returned %s", conf_status(st));
    else if (conf_got_check(c, &g, "get") != CONF_PASS)
        rc = CONF_FAIL;
    for (size_t i = 0; i < N && rc == CONF_PASS; i++) {
        if (i % 3 == 1 && g.slot[i].hits)
            rc = conf_fail(c, "index %zu (never set) reported as %s", i,
                           conf_show(g.slot[i].data, g.slot[i].len));
        else if (i % 3 != 1 && !g.slot[i].hits)
            rc = conf_fail(c, "index %zu (set) not reported", i);
        else if (i % 3 != 1 && !conf_got_is(&g, i, vbuf[i], strlen(vbuf[i])))
            rc = conf_fail(c, "index %zu reported %s, want %s", i,
                           conf_show(g.slot[i].data, g.slot[i].len),
                           conf_show(vbuf[i], strlen(vbuf[i])));
    }
    conf_got_free(&g);
    return rc;
}

/* A key repeated in one batch: get reports every index, set applies the
 * items in order, set-if-absent lets the first win, del is no error. */
int check_batch_duplicates(conf_ctx *c)
{
    char kb[4][KEYCAP];
    hermes_bytes k1 = conf_key(c, kb[0], KEYCAP, "dup:1"),
                 k2 = conf_key(c, kb[1], KEYCAP, "dup:missing"),
                 k3 = conf_key(c, kb[2], KEYCAP, "dup:set"),
                 k4 = conf_key(c, kb[3], KEYCAP, "dup:ifabsent");
    hermes_bytes keys[4] = {k1, k2, k1, k1};
    conf_got g;
    int rc = CONF_PASS;

    if (conf_put(c, k1, "one", 3, 0) != CONF_PASS ||
        conf_get_all(c, keys, 4, &g) != CONF_PASS)
        return CONF_FAIL;
    for (size_t i = 0; i < 4 && rc == CONF_PASS; i++)
        if (i != 1 && !conf_got_is(&g, i, "one", 3))
            rc = conf_fail(c,
                           "get of [k, missing, k, k]: index %zu reported "
                           "%s, want 3 bytes \"one\" at every index of k",
                           i,
                           g.slot[i].hits
                               ? conf_show(g.slot[i].data, g.slot[i].len)
                               : "nothing");
    if (rc == CONF_PASS && g.slot[1].hits)
        rc = conf_fail(c, "get of [k, missing, k, k]: the missing key was "
                          "reported");
    conf_got_free(&g);
    if (rc != CONF_PASS)
        return rc;

    hermes_item plain[3] = {{k3, conf_str("first"), 0, 0},
                            {k3, conf_str("second"), 0, 0},
                            {k3, conf_str("last"), 0, 0}};
    int st = conf_set(c, plain, 3, NULL, NULL);

    if (st != HERMES_BE_OK)
        return conf_fail(c, "set of one key three times returned %s",
                         conf_status(st));
    if (conf_expect(c, k3, "last", 4,
                    "one key set three times in a batch (the last wins)") !=
        CONF_PASS)
        return CONF_FAIL;

    hermes_item ia[2] = {{k4, conf_str("a"), 0, HERMES_SET_IF_ABSENT},
                         {k4, conf_str("b"), 0, HERMES_SET_IF_ABSENT}};

    conf_got_init(&g, 2);
    st = conf_set(c, ia, 2, conf_got_cb, &g);
    if (st != HERMES_BE_OK)
        rc = conf_fail(c, "set-if-absent of one key twice returned %s",
                       conf_status(st));
    else if (conf_got_check(c, &g, "set") != CONF_PASS)
        rc = CONF_FAIL;
    else if (!conf_got_is(&g, 0, "a", 1) || !conf_got_is(&g, 1, "a", 1))
        rc = conf_fail(c,
                       "set-if-absent of one key twice in a batch must "
                       "report the first item's value at both indexes, got "
                       "%s and %s",
                       g.slot[0].hits ? conf_show(g.slot[0].data, g.slot[0].len)
                                      : "nothing",
                       g.slot[1].hits ? conf_show(g.slot[1].data, g.slot[1].len)
                                      : "nothing");
    conf_got_free(&g);
    if (rc != CONF_PASS ||
        conf_expect(c, k4, "a", 1, "set-if-absent of one key twice") !=
            CONF_PASS)
        return CONF_FAIL;

    hermes_bytes twice[2] = {k1, k1};

    st = conf_del(c, twice, 2);
    if (st != HERMES_BE_OK)
        return conf_fail(c, "delete of one key twice returned %s",
                         conf_status(st));
    return conf_expect_absent(c, k1, "a key deleted twice in a batch");
}

int check_overwrite(conf_ctx *c)
{
    char kb[KEYCAP], longv[200];
    hermes_bytes k = conf_key(c, kb, sizeof kb, "overwrite");

    memset(longv, 'L', sizeof longv);
    if (conf_put(c, k, longv, sizeof longv, 0) != CONF_PASS ||
        conf_put(c, k, "new", 3, 0) != CONF_PASS)
        return CONF_FAIL;
    if (conf_expect(c, k, "new", 3,
                    "a 200-byte value overwritten by 3 bytes") != CONF_PASS)
        return CONF_FAIL;
    if (conf_put(c, k, longv, sizeof longv, 0) != CONF_PASS)
        return CONF_FAIL;
    return conf_expect(c, k, longv, sizeof longv,
                       "a 3-byte value overwritten by 200 bytes");
}

/* One set-if-absent of key = value; the value reported back is left in
 * g (slot 0), initialized here and freed by the caller. */
static int set_if_absent(conf_ctx *c, hermes_bytes key, const char *value,
                         uint32_t ttl_ms, conf_got *g)
{
    hermes_item it = {key, conf_str(value), ttl_ms, HERMES_SET_IF_ABSENT};

    conf_got_init(g, 1);
    int st = conf_set(c, &it, 1, conf_got_cb, g);

    if (st != HERMES_BE_OK)
        return conf_fail(c, "set-if-absent returned %s", conf_status(st));
    return conf_got_check(c, g, "set");
}

/* Fails unless slot 0 of g reports value; what names the situation. */
static int reported(conf_ctx *c, const conf_got *g, const char *value,
                    const char *what)
{
    if (!g->slot[0].hits)
        return conf_fail(c,
                         "%s: the callback did not report the value the "
                         "key holds",
                         what);
    if (!conf_got_is(g, 0, value, strlen(value)))
        return conf_fail(c, "%s: the callback reported %s, want %s", what,
                         conf_show(g->slot[0].data, g->slot[0].len),
                         conf_show(value, strlen(value)));
    return CONF_PASS;
}

int check_set_if_absent(conf_ctx *c)
{
    char kb[KEYCAP], kb2[KEYCAP], kb3[KEYCAP];
    hermes_bytes k = conf_key(c, kb, sizeof kb, "sia:key");
    conf_got g;
    int rc;

    rc = set_if_absent(c, k, "first", 0, &g);
    if (rc == CONF_PASS)
        rc = reported(c, &g, "first", "the creator");
    conf_got_free(&g);
    if (rc != CONF_PASS)
        return rc;
    rc = set_if_absent(c, k, "second", 0, &g);
    if (rc == CONF_PASS)
        rc = reported(c, &g, "first", "the loser");
    conf_got_free(&g);
    if (rc != CONF_PASS)
        return rc;
    /* Without a callback the loser still must not overwrite. */
    hermes_item lone = {k, conf_str("third"), 0, HERMES_SET_IF_ABSENT};
    int st = conf_set(c, &lone, 1, NULL, NULL);

    if (st != HERMES_BE_OK)
        return conf_fail(c, "set-if-absent without a callback returned %s",
                         conf_status(st));
    if (conf_expect(c, k, "first", 5, "after two losing set-if-absent") !=
        CONF_PASS)
        return CONF_FAIL;

    /* In a mixed batch, the callback reports only the flagged items. */
    hermes_item items[3] = {
        {conf_key(c, kb2, sizeof kb2, "sia:plain"), conf_str("plain"), 0, 0},
        {k, conf_str("fourth"), 0, HERMES_SET_IF_ABSENT},
        {conf_key(c, kb3, sizeof kb3, "sia:new"), conf_str("new"), 0,
         HERMES_SET_IF_ABSENT},
    };

    conf_got_init(&g, 3);
    st = conf_set(c, items, 3, conf_got_cb, &g);
    rc = CONF_PASS;
    if (st != HERMES_BE_OK)
        rc = conf_fail(c, "mixed batch set returned %s", conf_status(st));
    else if (conf_got_check(c, &g, "set") != CONF_PASS)
        rc = CONF_FAIL;
    else if (g.slot[0].hits)
        rc = conf_fail(c, "mixed batch: the callback reported the plain "
                          "item (index 0)");
    else if (!conf_got_is(&g, 1, "first", 5))
        rc = conf_fail(c,
                       "mixed batch: index 1 (existing key) reported %s, "
                       "want 5 bytes \"first\"",
                       g.slot[1].hits ? conf_show(g.slot[1].data, g.slot[1].len)
                                      : "nothing");
    else if (!conf_got_is(&g, 2, "new", 3))
        rc = conf_fail(c,
                       "mixed batch: index 2 (new key) reported %s, want "
                       "3 bytes \"new\"",
                       g.slot[2].hits ? conf_show(g.slot[2].data, g.slot[2].len)
                                      : "nothing");
    conf_got_free(&g);
    if (rc != CONF_PASS)
        return rc;
    if (conf_expect(c, items[0].key, "plain", 5, "mixed batch, plain item") !=
            CONF_PASS ||
        conf_expect(c, k, "first", 5, "mixed batch, existing key") !=
            CONF_PASS ||
        conf_expect(c, items[2].key, "new", 3, "mixed batch, new key") !=
            CONF_PASS)
        return CONF_FAIL;
    return CONF_PASS;
}

/* ---------------------------------------------------------------- TTL */

/* One attempt of the check below on keys of its own; sets *again when a
 * key was gone early with the wall clock moved ahead meanwhile. */
static int ttl_expiry_once(conf_ctx *c, int attempt, int *again)
{
    enum { N = 2 };
    char kb[N][KEYCAP], pb[KEYCAP];
    hermes_bytes keys[N] = {
        conf_key(c, kb[0], KEYCAP, "ttl:expiring:%d", attempt),
        conf_key(c, kb[1], KEYCAP, "ttl:recreated:%d", attempt)};
    hermes_bytes kp = conf_key(c, pb, sizeof pb, "ttl:persisted:%d", attempt);
    uint64_t began[N], done[N], gone[N] = {0, 0};
    int64_t wall0 = conf_wall_offset_us();

    for (size_t i = 0; i < N; i++) {
        began[i] = conf_now_us();
        if (conf_put(c, keys[i], "short-lived", 11, CONF_TTL_MS) != CONF_PASS)
            return CONF_FAIL;
        done[i] = conf_now_us();
    }
    if (conf_put(c, kp, "short-lived", 11, CONF_TTL_MS) != CONF_PASS ||
        conf_put(c, kp, "forever", 7, 0) != CONF_PASS)
        return CONF_FAIL;
    /* The system time is set a day ahead: TTLs must not follow it. */
    atomic_store(&c->wall_skew_ms, CONF_WALL_SKEW_MS);

    /* Watch both keys until they are gone: each must be present in every
     * get that ends before its TTL ran out and absent from every get that
     * begins c->ttl_late_ms after its set returned. */
    while (!gone[0] || !gone[1]) {
        conf_got g;
        uint64_t t0 = conf_now_us();

        if (conf_get_all(c, keys, N, &g) != CONF_PASS)
            return CONF_FAIL;
        uint64_t t1 = conf_now_us();

        for (size_t i = 0; i < N; i++) {
            if (gone[i])
                continue;
            if (!g.slot[i].hits && t1 < began[i] + CONF_TTL_MS * 1000u) {
                conf_got_free(&g);
                if ((*again = conf_wall_explains(c, wall0, began[i], t1,
                                                 CONF_TTL_MS, attempt)))
                    return CONF_FAIL;
                return conf_fail(
                    c,
                    "a key set with a %u ms TTL was gone %llu ms after its "
                    "set began (early expiry: a TTL rounds up, never down; "
                    "the wall clock moved %+lld ms against the monotonic one "
                    "meanwhile)",
                    CONF_TTL_MS, (unsigned long long)(t1 - began[i]) / 1000u,
                    (long long)(conf_wall_offset_us() - wall0) / 1000);
            }
            if (g.slot[i].hits &&
                t0 > done[i] +
                         (uint64_t)(CONF_TTL_MS + c->ttl_late_ms) * 1000u) {
                conf_got_free(&g);
                return conf_fail(c,
                                 "a key set with a %u ms TTL was still "
                                 "present %llu ms after its set returned "
                                 "(allowed: %u ms)",
                                 CONF_TTL_MS,
                                 (unsigned long long)(t0 - done[i]) / 1000u,
                                 CONF_TTL_MS + c->ttl_late_ms);
            }
            if (!g.slot[i].hits)
                gone[i] = t1;
        }
        conf_got_free(&g);
        if (!gone[0] || !gone[1])
            conf_sleep_ms(20);
    }
    conf_note(c, "a %u ms TTL key lived %llu to %llu ms", CONF_TTL_MS,
              (unsigned long long)(gone[0] - done[0]) / 1000u,
              (unsigned long long)(gone[0] - began[0]) / 1000u);
    if (conf_expect(c, kp, "forever", 7,
                    "a TTL key overwritten with ttl 0, after the TTL") !=
        CONF_PASS)
        return CONF_FAIL;

    /* An expired key is absent for set-if-absent too. */
    conf_got g;
    int rc = set_if_absent(c, keys[1], "recreated", 0, &g);

    if (rc == CONF_PASS)
        rc = reported(c, &g, "recreated", "set-if-absent over an expired key");
    conf_got_free(&g);
    return rc;
}

int check_ttl_expiry(conf_ctx *c)
{
    int again = 0, rc;

    /* Each attempt starts with the real system time (an attempt sets it a
     * day ahead). */
    for (int attempt = 1;; attempt++) {
        atomic_store(&c->wall_skew_ms, 0);
        rc = ttl_expiry_once(c, attempt, &again);
        if (!again)
            return rc;
        again = 0;
    }
}

/* ------------------------------------------------------ delete, flush */

int check_delete(conf_ctx *c)
{
    char kb[4][KEYCAP];
    hermes_bytes keys[4] = {
        conf_key(c, kb[0], KEYCAP, "del:a"),
        conf_key(c, kb[1], KEYCAP, "del:never-set"),
        conf_key(c, kb[2], KEYCAP, "del:b"),
        conf_key(c, kb[3], KEYCAP, "del:c"),
    };

    for (size_t i = 0; i < 4; i++)
        if (i != 1 && conf_put(c, keys[i], "doomed", 6, 0) != CONF_PASS)
            return CONF_FAIL;
    int st = conf_del(c, keys, 4);

    if (st != HERMES_BE_OK)
        return conf_fail(c, "delete of 3 keys and a missing one returned %s",
                         conf_status(st));
    for (size_t i = 0; i < 4; i++)
        if (conf_expect_absent(c, keys[i], "after a batched delete") !=
            CONF_PASS)
            return CONF_FAIL;
    st = conf_del(c, &keys[1], 1);
    if (st != HERMES_BE_OK)
        return conf_fail(c, "delete of a missing key returned %s",
                         conf_status(st));
    return CONF_PASS;
}

/* The keys outside a flushed prefix still hold "kept". */
static int expect_kept(conf_ctx *c, const hermes_bytes *kept, size_t n,
                       const char *after)
{
    for (size_t i = 0; i < n; i++) {
        char what[KEYCAP + 128];

        snprintf(what, sizeof what, "key \"%.*s\" outside the prefix, after %s",
                 (int)kept[i].len, (const char *)kept[i].data, after);
        if (conf_expect(c, kept[i], "kept", 4, what) != CONF_PASS)
            return CONF_FAIL;
    }
    return CONF_PASS;
}

int check_flush_prefix(conf_ctx *c)
{
    /* The flushed prefix holds glob and regex metacharacters: a backend
     * that matches with a pattern (redis SCAN MATCH, KEYS) must escape
     * them.  Survivors include a glob match, the prefix minus its last
     * byte and the prefix appearing in the middle of a key. */
    char fp[KEYCAP], k[8][KEYCAP];
    hermes_bytes pre = conf_key(c, fp, sizeof fp, "flush:a*b?[c]\\.+:");
    hermes_bytes gone[3] = {
        conf_key(c, k[0], KEYCAP, "flush:a*b?[c]\\.+:1"),
        conf_key(c, k[1], KEYCAP, "flush:a*b?[c]\\.+:2"),
        pre,
    };
    hermes_bytes kept[4] = {
        conf_key(c, k[2], KEYCAP, "flush:aXXbYc.+:1"),
        conf_key(c, k[3], KEYCAP, "flush:a*b?[c]\\.+"),
        conf_key(c, k[4], KEYCAP, "flush:z:%s", fp),
        conf_key(c, k[5], KEYCAP, "flush:z:1"),
    };
    hermes_bytes lock = conf_key(c, k[6], KEYCAP, "flush:a*b?[c]\\.+:lock");
    int acquired, released;

    for (size_t i = 0; i < 3; i++)
        if (conf_put(c, gone[i], "gone", 4, i == 1 ? 60000 : 0) != CONF_PASS)
            return CONF_FAIL;
    for (size_t i = 0; i < 4; i++)
        if (conf_put(c, kept[i], "kept", 4, 0) != CONF_PASS)
            return CONF_FAIL;
    int st = conf_lock(c, lock, conf_str("flush-owner"), 60000, &acquired);

    if (st != HERMES_BE_OK || acquired != 1)
        return conf_fail(c, "lock of a fresh key returned %s, acquired %d",
                         conf_status(st), acquired);
    int no_prefix = (c->be->caps & HERMES_CAP_NO_PREFIX_FLUSH) != 0;

    st = conf_flush(c, pre);
    /* A store that cannot delete by prefix answers UNSUPPORTED and deletes
     * nothing (the core flushes through its namespace key), or, when its
     * configuration allows more (memcached's flush_all), OK with every key
     * under the prefix gone and maybe others. */
    if (no_prefix && st == HERMES_BE_UNSUPPORTED) {
        conf_note(c, "flush: UNSUPPORTED (HERMES_CAP_NO_PREFIX_FLUSH): the "
                     "core flushes through its namespace key");
        conf_del(c, gone, 3);
        conf_unlock(c, lock, conf_str("flush-owner"), &released);
    }
    if (no_prefix && st == HERMES_BE_UNSUPPORTED)
        return expect_kept(c, kept, 4, "a flush that answered UNSUPPORTED");
    if (st != HERMES_BE_OK)
        return conf_fail(c, "flush returned %s%s", conf_status(st),
                         st == HERMES_BE_UNSUPPORTED
                             ? " (a store that cannot delete by prefix "
                               "declares HERMES_CAP_NO_PREFIX_FLUSH)"
                             : "");
    for (size_t i = 0; i < 3; i++)
        if (conf_expect_absent(c, gone[i], "a key under the flushed prefix") !=
            CONF_PASS)
            return CONF_FAIL;
    if (!no_prefix && expect_kept(c, kept, 4, "the flush") != CONF_PASS)
        return CONF_FAIL;
    st = conf_lock(c, lock, conf_str("after-flush"), 60000, &acquired);
    if (st != HERMES_BE_OK)
        return conf_fail(c, "lock after flush returned %s", conf_status(st));
    if (acquired != 1)
        return conf_fail(c, "a lock under the flushed prefix survived the "
                            "flush");
    conf_unlock(c, lock, conf_str("after-flush"), &released);
    return CONF_PASS;
}

/* --------------------------------------------------------- scan, stats */

typedef struct scan_seen {
    size_t n, cap, stop_after;
    struct {
        char *key, *value;
        size_t klen, vlen;
        int64_t ttl;
    } * item;
} scan_seen;

static int scan_cb(void *arg, const void *key, size_t klen, const void *value,
                   size_t vlen, int64_t ttl_ms)
{
    scan_seen *s = arg;

    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        void *p = realloc(s->item, s->cap * sizeof *s->item);

        if (!p) {
            fprintf(stderr, "hermes-conformance: out of memory\n");
            exit(2);
        }
        s->item = p;
    }
    s->item[s->n].key = conf_xmalloc(klen);
    s->item[s->n].value = conf_xmalloc(vlen);
    if (klen)
        memcpy(s->item[s->n].key, key, klen);
    if (vlen)
        memcpy(s->item[s->n].value, value, vlen);
    s->item[s->n].klen = klen;
    s->item[s->n].vlen = vlen;
    s->item[s->n].ttl = ttl_ms;
    s->n++;
    return s->stop_after && s->n >= s->stop_after;
}

static void scan_seen_free(scan_seen *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->item[i].key);
        free(s->item[i].value);
    }
    free(s->item);
}

/* Checks what a scan of prefix reported against the n keys expected
 * (values vals, TTL set or not); every key must appear once. */
static int scan_verify(conf_ctx *c, const scan_seen *s, hermes_bytes *keys,
                       const char *const *vals, const uint32_t *ttls, size_t n)
{
    for (size_t i = 0; i < s->n; i++) {
        size_t j;

        for (j = 0; j < n; j++)
            if (keys[j].len == s->item[i].klen &&
                memcmp(keys[j].data, s->item[i].key, keys[j].len) == 0)
                break;
        if (j == n)
            return conf_fail(c,
                             "scan reported key %s, which is not under "
                             "the prefix or not live",
                             conf_show(s->item[i].key, s->item[i].klen));
        for (size_t k = 0; k < i; k++)
            if (s->item[k].klen == s->item[i].klen &&
                memcmp(s->item[k].key, s->item[i].key, s->item[i].klen) == 0)
                return conf_fail(c, "scan reported key %s twice",
                                 conf_show(s->item[i].key, s->item[i].klen));
        if (s->item[i].vlen != strlen(vals[j]) ||
            memcmp(s->item[i].value, vals[j], s->item[i].vlen) != 0)
            return conf_fail(c, "scan reported %s for key %s, want %s",
                             conf_show(s->item[i].value, s->item[i].vlen),
                             conf_show(keys[j].data, keys[j].len),
                             conf_show(vals[j], strlen(vals[j])));
        int64_t t = s->item[i].ttl;

        if (ttls[j] == 0 && t != -1 && t != -2)
            return conf_fail(c,
                             "scan reported ttl %lld for a key without "
                             "TTL, want -1 (or -2, unknown)",
                             (long long)t);
        if (ttls[j] && t != -2 && (t <= 0 || t > (int64_t)ttls[j]))
            return conf_fail(c,
                             "scan reported ttl %lld for a key with a "
                             "%u ms TTL",
                             (long long)t, ttls[j]);
    }
    if (s->n < n)
        return conf_fail(c, "scan reported %zu keys, want %zu", s->n, n);
    return CONF_PASS;
}

int check_scan(conf_ctx *c)
{
    enum { N = 5 };
    static const char *const vals[N] = {"zero", "", "two\x01", "three!",
                                        "four, with a TTL"};
    static const uint32_t ttls[N] = {0, 0, 0, 0, 60000};
    char sp[KEYCAP], kb[N + 4][KEYCAP];
    hermes_bytes keys[N];
    scan_seen s = {0};

    if (!(c->be->caps & HERMES_CAP_SCAN))
        return conf_skip(c, "the plugin does not declare HERMES_CAP_SCAN");
    hermes_bytes pre = conf_key(c, sp, sizeof sp, "scan:a:");

    for (size_t i = 0; i < N; i++) {
        keys[i] = conf_key(c, kb[i], KEYCAP, "scan:a:k%zu", i);
        if (conf_put(c, keys[i], vals[i], strlen(vals[i]), ttls[i]) !=
            CONF_PASS)
            return CONF_FAIL;
    }
    /* Not to be reported: siblings and an expired key under the prefix. */
    hermes_bytes expired = conf_key(c, kb[N + 2], KEYCAP, "scan:a:expired");
    if (conf_put(c, conf_key(c, kb[N], KEYCAP, "scan:b:k0"), "x", 1, 0) !=
            CONF_PASS ||
        conf_put(c, conf_key(c, kb[N + 1], KEYCAP, "scan:a"), "x", 1, 0) !=
            CONF_PASS ||
        conf_put(c, expired, "x", 1, 50) != CONF_PASS)
        return CONF_FAIL;
    /* Until get no longer finds the 50 ms key: it is not live then, and
     * scan must not report it either.  A store with whole-second expiry
     * keeps it a second or two; the ttl check judges how late is too
     * late, this one only waits for it (5 s at most). */
    for (unsigned waited = 0;; waited += 20) {
        unsigned char *v = NULL;
        size_t vlen;
        int present;

        if (conf_get1(c, expired, &present, &v, &vlen) != CONF_PASS)
            return CONF_FAIL;
        free(v);
        if (!present)
            break;
        if (waited > 5000)
            return conf_fail(c,
                             "a key with a 50 ms TTL was still present "
                             "after %u ms",
                             waited);
        conf_sleep_ms(20);
    }
    int st = conf_scan(c, pre, scan_cb, &s);
    int rc = CONF_PASS;

    if (st == HERMES_BE_UNSUPPORTED) {
        scan_seen_free(&s);
        return conf_skip(c, "scan returned UNSUPPORTED (refused by the store "
                            "in this configuration)");
    }
    if (st != HERMES_BE_OK)
        rc = conf_fail(c, "scan returned %s", conf_status(st));
    else
        rc = scan_verify(c, &s, keys, vals, ttls, N);
    scan_seen_free(&s);
    if (rc != CONF_PASS)
        return rc;

    /* A callback returning non-zero stops the scan, which is then OK. */
    memset(&s, 0, sizeof s);
    s.stop_after = 1;
    st = conf_scan(c, pre, scan_cb, &s);
    if (st != HERMES_BE_OK)
        rc = conf_fail(c, "scan stopped by its callback returned %s, want OK",
                       conf_status(st));
    else if (s.n != 1)
        rc = conf_fail(c,
                       "scan called its callback %zu times after it "
                       "returned non-zero the first time",
                       s.n - 1);
    scan_seen_free(&s);
    return rc;
}

typedef struct stats_seen {
    size_t n;
    int bad;
    int wrong_thread;
    pthread_t caller;
} stats_seen;

static void stats_cb(void *arg, const char *name, const char *value)
{
    stats_seen *s = arg;

    s->n++;
    if (!name || !*name || !value)
        s->bad = 1;
    if (!pthread_equal(s->caller, pthread_self()))
        s->wrong_thread = 1;
}

int check_stats(conf_ctx *c)
{
    stats_seen s = {0, 0, 0, pthread_self()};

    if (!(c->be->caps & HERMES_CAP_STATS))
        return conf_skip(c, "the plugin does not declare HERMES_CAP_STATS");
    int st = conf_stats(c, stats_cb, &s);

    if (st == HERMES_BE_UNSUPPORTED)
        return conf_skip(c, "stats returned UNSUPPORTED (refused by the "
                            "store in this configuration)");
    if (st != HERMES_BE_OK)
        return conf_fail(c, "stats returned %s", conf_status(st));
    if (s.wrong_thread)
        return conf_fail(c, "the stats callback ran on another thread than "
                            "the caller's");
    if (s.n == 0)
        return conf_fail(c, "stats reported no pair");
    if (s.bad)
        return conf_fail(c, "stats reported a NULL or empty name or a NULL "
                            "value");
    conf_note(c, "%zu statistics", s.n);
    return CONF_PASS;
}
