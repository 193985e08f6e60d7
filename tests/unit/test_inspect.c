/*
 * The inspection layer (core/inspect.h) and stats publication
 * (core/publish.h): key classification, lock tokens, the lock-wait
 * histogram and its percentiles, one verdict per entry state (fresh, stale
 * naming the moved tag, expired, foreign, corrupt), locks, published
 * counters per process and per function, and their expiry.  Built twice:
 * on the built-in dict, and with INSPECT_REDIS over a private
 * redis-server (tests/integration/test_inspect_redis).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../support/child_wait.h"
#include "inspect.h"
#include "internal.h"
#include "lock.h"
#include "mock_backend.h"
#include "publish.h"
#include "record.h"
#ifdef INSPECT_REDIS
#include "redis_server.h"
static redis_server server;
#endif

static hermes *h;

/* Opens a handle on the test's backend with extra [hermes] lines. */
static hermes *open_with(const char *extra)
{
    char text[1024];
    hermes *c = NULL;
#ifdef INSPECT_REDIS
    snprintf(text, sizeof text,
             "[hermes]\nbackend = redis\nplugin_path = %s/plugins/redis\n"
             "prefix = insp%ld\n%s\n[redis]\nport = %d\n",
             getenv("HERMES_TEST_BUILDDIR"), (long)getpid(), extra,
             server.port);
#else
    snprintf(text, sizeof text, "[hermes]\nprefix = insp\n%s\n", extra);
#endif
    hermes_rc rc = hermes_open_string(&c, text, "test");
    if (rc != HERMES_OK)
        fail_msg("open: %s", hermes_errmsg(c));
    return c;
}

static int setup(void **state)
{
    (void)state;
    h = open_with("");
    return hermes_flush(h) == HERMES_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    hermes_flush(h);
    hermes_close(h);
    h = NULL;
    return 0;
}

static hm_snapshot *scan(void)
{
    hm_snapshot *s = NULL;
    hermes_rc rc = hm_inspect_scan(h, NULL, &s);
    if (rc != HERMES_OK)
        fail_msg("scan: %s", hermes_errmsg(h));
    assert_true(s->complete);
    return s;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A cached function: power(a, b) = a^b, counting its computations. */
static int computed;
static int compute_power(void *arg, hermes_result *res)
{
    const int *ab = arg;
    long long r = 1;
    for (int i = 0; i < ab[1]; i++)
        r *= ab[0];
    char text[32];
    computed++;
    int n = snprintf(text, sizeof text, "%lld", r);
    return hermes_result_set(res, text, (size_t)n) != HERMES_OK;
}

static void call_power(hermes_fn *fn, int a, int b)
{
    int ab[2] = {a, b};
    void *v;
    size_t n;
    assert_int_equal(hermes_call(fn, ab, sizeof ab, compute_power, ab, &v, &n),
                     HERMES_OK);
    hermes_free(v);
}

static hermes_fn *register_power(hermes *c, const char *name,
                                 const char *const *tags)
{
    hermes_fn *fn;
    hermes_fn_options o = HERMES_FN_OPTIONS(.tags = tags, .ttl = 600);
    assert_int_equal(hermes_fn_register(c, name, &o, &fn), HERMES_OK);
    return fn;
}

/* The snapshot's only entry of function name. */
static const hm_insp_entry *entry_of(const hm_snapshot *s, const char *name)
{
    const hm_insp_entry *found = NULL;
    for (size_t i = 0; i < s->nentries; i++)
        if (s->entries[i].function &&
            strcmp(s->entries[i].function, name) == 0) {
            assert_null(found);
            found = &s->entries[i];
        }
    assert_non_null(found);
    return found;
}

/* Writes raw bytes under "<prefix>:entry:<id>" with no expiry. */
static void put_raw(const char *id, const void *v, size_t n)
{
    char key[256];
    snprintf(key, sizeof key, "%s%s", hm_handle_entry_prefix(h), id);
    hermes_item it = {{key, strlen(key)}, {v, n}, 0, 0};
    assert_int_equal(hm_be_set(h, &it, 1, NULL, NULL), HERMES_BE_OK);
}

/* Writes a format-2 record for "<prefix>:entry:<id>" by function fname
 * (not in the key) with the given tag names and versions. */
static void put_record(const char *id, const char *fname, size_t ntags,
                       const char *const *tags, const uint64_t *vids,
                       uint64_t created_ms, uint32_t ttl_s)
{
    char key[256];
    uint32_t ids[8];
    snprintf(key, sizeof key, "%s%s", hm_handle_entry_prefix(h), id);
    for (size_t i = 0; i < ntags; i++)
        ids[i] = hm_tag_id(tags[i], strlen(tags[i]));
    hm_record_in in = {0,          fname, strlen(fname), ntags, ids, vids,
                       created_ms, ttl_s, 1500,          "v",   1};
    size_t len;
    unsigned char *rec =
        hm_record_encode(&in, (hermes_bytes){key, strlen(key)}, &len);
    assert_non_null(rec);
    put_raw(id, rec, len);
    free(rec);
}

/* ------------------------------------------------------------- pure */

static void keys_are_classified_by_their_kind(void **state)
{
    (void)state;
    static const struct {
        const char *key;
        hm_key_kind kind;
    } cases[] = {
        {"app:tag:users", HM_KEY_TAG},
        {"app:ns", HM_KEY_TAG}, /* the namespace tag */
        {"app:nsx", HM_KEY_UNKNOWN},
        {"app:entry:power:AAAAAAAAAAAAAAAAAAAAAA", HM_KEY_ENTRY},
        {"app:entry:avg:2:10", HM_KEY_ENTRY},
        {"app:lock:power:AAAAAAAAAAAAAAAAAAAAAA", HM_KEY_LOCK},
        {"app:stats:web1:42", HM_KEY_STATS},
        {"app:other:x", HM_KEY_UNKNOWN},
        {"app:tag:", HM_KEY_UNKNOWN}, /* nothing after the head */
        {"apps:tag:x", HM_KEY_UNKNOWN},
        {"app", HM_KEY_UNKNOWN},
        {"other:tag:x", HM_KEY_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hm_key_kind k =
            hm_inspect_classify("app", cases[i].key, strlen(cases[i].key));
        if (k != cases[i].kind)
            fail_msg("%s: %s, expected %s", cases[i].key, hm_key_kind_name(k),
                     hm_key_kind_name(cases[i].kind));
    }
}

static void lock_tokens_are_read_from_the_right(void **state)
{
    (void)state;
    hm_lock_owner o;
    const char *t = "web-1.example:4242:1764670000123:AbCdEfGhIjKl";
    assert_int_equal(hm_lock_token_parse(t, strlen(t), &o), 0);
    assert_string_equal(o.host, "web-1.example");
    assert_int_equal(o.pid, 4242);
    assert_true(o.taken_ms == UINT64_C(1764670000123));
    static const char *const bad[] = {"",        "a:b:c",  "h:x:1:r",
                                      "h:1:y:r", ":1:2:r", "h:1:2:"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (hm_lock_token_parse(bad[i], strlen(bad[i]), &o) != -1)
            fail_msg("'%s' parsed as a token", bad[i]);
    /* The library's own tokens parse as its host and pid. */
    char tok[128];
    size_t len;
    hm_lock_token(h, 1234567, tok, sizeof tok, &len);
    assert_int_equal(hm_lock_token_parse(tok, len, &o), 0);
    assert_int_equal(o.pid, getpid());
    assert_true(o.taken_ms == 1234567);
}

static void percentiles_are_read_off_log2_buckets(void **state)
{
    (void)state;
    uint64_t b[HM_LOCK_WAIT_BUCKETS] = {0};
    assert_true(hm_lock_wait_percentile_us(b, 50) == 0);
    b[0] = 1;   /* < 2 us */
    b[10] = 98; /* [1024, 2048) us */
    b[20] = 1;  /* [2^20, 2^21) us */
    assert_true(hm_lock_wait_percentile_us(b, 1) == 2);
    assert_true(hm_lock_wait_percentile_us(b, 50) == 2048);
    assert_true(hm_lock_wait_percentile_us(b, 99) == 2048);
    assert_true(hm_lock_wait_percentile_us(b, 100) == UINT64_C(2) << 20);
    b[HM_LOCK_WAIT_BUCKETS - 1] = 100; /* the open bucket: its lower bound */
    assert_true(hm_lock_wait_percentile_us(b, 100) == UINT64_C(1) << 23);
}

static void a_lock_wait_is_counted_in_its_bucket(void **state)
{
    (void)state;
    hm_count_lock_wait(h, 1500);    /* 1 us: bucket 0 */
    hm_count_lock_wait(h, 3000000); /* 3000 us: [2048, 4096) */
    hm_count_lock_wait(h, 3000000);
    hm_count_lock_wait(h, UINT64_C(9) << 40); /* beyond 2^23 us */
    hermes_stats s;
    assert_int_equal(hermes_stats_get(h, &s, sizeof s), HERMES_OK);
    assert_true(s.lock_wait_us_lt_2 == 1);
    assert_true(s.lock_wait_us_lt_4096 == 2);
    assert_true(s.lock_wait_us_ge_8388608 == 1);
    assert_true(s.lock_wait_ns == 1500 + 6000000 + (UINT64_C(9) << 40));
    uint64_t b[HM_LOCK_WAIT_BUCKETS];
    hm_stats_lock_wait(&s, b);
    assert_true(b[0] == 1 && b[11] == 2 && b[23] == 1);
    assert_true(hm_lock_wait_percentile_us(b, 50) == 4096);
}

/* ------------------------------------------------------------- scans */

static void a_backend_without_scan_is_a_clear_error(void **state)
{
    (void)state;
    hermes_backend d = *mock_backend();
    d.caps &= ~HERMES_CAP_SCAN;
    d.scan = NULL;
    hermes *c;
    assert_int_equal(hermes_open_with(&c, NULL, "test", &d), HERMES_OK);
    hm_snapshot *s = (hm_snapshot *)1;
    assert_int_equal(hm_inspect_scan(c, NULL, &s), HERMES_EBACKEND);
    assert_null(s);
    assert_non_null(strstr(hermes_errmsg(c), "no scan capability"));
    assert_non_null(strstr(hermes_errmsg(c), d.name));
    hermes_close(c);
}

/* A store that cannot flush at all: the namespace key does it. */
static int no_flush(void *state, hermes_bytes prefix)
{
    (void)state;
    (void)prefix;
    return HERMES_BE_UNSUPPORTED;
}

/* On a store that cannot flush by prefix every record starts with the
 * namespace tag "<prefix>:ns" (named ""), which a flush moves. */
static void the_namespace_tag_is_a_tag_a_flush_moves(void **state)
{
    (void)state;
    hermes_backend d = *mock_backend();
    d.caps |= HERMES_CAP_NO_PREFIX_FLUSH;
    d.flush = no_flush;
    hermes *c;
    assert_int_equal(
        hermes_open_with(&c, "[hermes]\nprefix = insp\n", "test", &d),
        HERMES_OK);
    hermes_fn *fn = register_power(c, "power", HERMES_TAGS("math"));
    call_power(fn, 2, 3);
    hm_snapshot *s;
    assert_int_equal(hm_inspect_scan(c, NULL, &s), HERMES_OK);
    const hm_insp_entry *e = entry_of(s, "power");
    assert_int_equal(e->state, HM_STATE_FRESH);
    assert_int_equal(e->ntags, 2);
    assert_string_equal(e->tags[0].name, "");
    assert_non_null(hm_snapshot_tag(s, ""));
    assert_string_equal(hm_snapshot_tag(s, "")->key, "insp:ns");
    hm_snapshot_free(s);
    assert_int_equal(hermes_flush(c), HERMES_OK);
    assert_int_equal(hm_inspect_scan(c, NULL, &s), HERMES_OK);
    e = entry_of(s, "power");
    assert_int_equal(e->state, HM_STATE_STALE);
    assert_int_equal(e->stale_tag, 0);
    char *why = hm_inspect_explain(s, e);
    assert_non_null(strstr(why, "namespace key"));
    hermes_free(why);
    hm_snapshot_free(s);
    hermes_close(c);
}

static void a_fresh_entry_is_decoded(void **state)
{
    (void)state;
    hermes_fn *fn = register_power(h, "power", HERMES_TAGS("math", "ints"));
    uint64_t before = hm_now_ms();
    call_power(fn, 2, 10);
    hm_snapshot *s = scan();
    assert_int_equal(s->nentries, 1);
    assert_int_equal(s->count[HM_KEY_ENTRY], 1);
    assert_int_equal(s->count[HM_KEY_TAG], 2);
    assert_int_equal(s->ntags, 2);
    const hm_insp_entry *e = entry_of(s, "power");
    assert_int_equal(e->state, HM_STATE_FRESH);
    assert_int_equal(e->format, 2);
    assert_int_equal(e->payload_len, 4); /* "1024" */
    assert_true(e->size > e->payload_len);
    assert_true(e->created_ms >= before && e->created_ms <= s->taken_ms);
    assert_int_equal(e->ttl_s, 600);
    assert_true(e->expiry_ms == e->created_ms + 600000);
    assert_true(e->ttl_ms > 590000 && e->ttl_ms <= 600000);
    assert_int_equal(e->ntags, 2);
    /* Tags in the record's order (sorted names), named and current. */
    assert_string_equal(e->tags[0].name, "ints");
    assert_string_equal(e->tags[1].name, "math");
    for (size_t i = 0; i < 2; i++) {
        assert_false(e->tags[i].moved);
        assert_true(e->tags[i].tag >= 0);
        assert_true(e->tags[i].stored_id == e->tags[i].current_id);
    }
    const hm_insp_tag *t = hm_snapshot_tag(s, "math");
    assert_non_null(t);
    assert_int_equal(t->entries, 1);
    assert_int_equal(t->stale, 0);
    assert_int_equal(strlen(t->version_text), 22); /* the pickled str */
    assert_true(s->state_count[HM_STATE_FRESH] == 1);
    assert_int_equal(s->nfuncs, 1);
    assert_string_equal(s->funcs[0].name, "power");
    assert_true(hm_snapshot_entry(s, e->id) == e);
    assert_true(hm_snapshot_entry(s, e->key) == e);
    hm_snapshot_free(s);
}

static void a_cleaned_tag_makes_its_entries_stale_naming_it(void **state)
{
    (void)state;
    hermes_fn *fn = register_power(h, "power", HERMES_TAGS("math", "ints"));
    call_power(fn, 2, 10);
    assert_int_equal(hermes_clean(h, HERMES_TAGS("math")), HERMES_OK);
    hm_snapshot *s = scan();
    const hm_insp_entry *e = entry_of(s, "power");
    assert_int_equal(e->state, HM_STATE_STALE);
    assert_int_equal(e->stale_tag, 1);
    const hm_insp_etag *t = &e->tags[e->stale_tag];
    /* Gone: named by the registered function's tag list. */
    assert_string_equal(t->name, "math");
    assert_int_equal(t->tag, -1);
    assert_true(t->moved);
    assert_false(e->tags[0].moved);
    char *why = hm_inspect_explain(s, e);
    assert_non_null(strstr(why, "state: stale: tag 'math' is gone"));
    assert_non_null(strstr(why, "tag 'ints': stored"));
    assert_non_null(strstr(why, "(same)"));
    hermes_free(why);
    hm_snapshot_free(s);

    /* Another call recreates the tag with a new version: moved. */
    call_power(fn, 3, 3);
    s = scan();
    assert_int_equal(s->nentries, 2);
    size_t stale = 0;
    for (size_t i = 0; i < s->nentries; i++) {
        const hm_insp_entry *x = &s->entries[i];
        if (x->state != HM_STATE_STALE)
            continue;
        stale++;
        const hm_insp_etag *m = &x->tags[x->stale_tag];
        assert_string_equal(m->name, "math");
        assert_true(m->tag >= 0);
        assert_true(m->stored_id != m->current_id);
        assert_true(m->current_id == s->tags[m->tag].version_id);
        why = hm_inspect_explain(s, x);
        assert_non_null(strstr(why, "state: stale: tag 'math' moved from"));
        assert_non_null(strstr(why, "(moved)"));
        hermes_free(why);
    }
    assert_int_equal(stale, 1);
    const hm_insp_tag *math = hm_snapshot_tag(s, "math");
    assert_int_equal(math->entries, 2);
    assert_int_equal(math->stale, 1);
    assert_true(math->stale_bytes > 0);
    assert_int_equal(hm_snapshot_tag(s, "ints")->stale, 0);
    assert_int_equal(s->state_count[HM_STATE_STALE], 1);
    assert_int_equal(s->funcs[0].count[HM_STATE_STALE], 1);
    assert_int_equal(s->funcs[0].count[HM_STATE_FRESH], 1);
    hm_snapshot_free(s);
}

static void an_entry_past_its_ttl_is_expired(void **state)
{
    (void)state;
    hermes_fn *fn = register_power(h, "power", HERMES_TAGS("math"));
    call_power(fn, 1, 1); /* creates the tag */
    hm_snapshot *s = scan();
    uint64_t vid = hm_snapshot_tag(s, "math")->version_id;
    hm_snapshot_free(s);
    const char *const tags[] = {"math"};
    /* Written 20 s ago for 10 s; the store keeps it (a grace period). */
    put_record("old", "power", 1, tags, &vid, hm_now_ms() - 20000, 10);
    s = scan();
    const hm_insp_entry *e = hm_snapshot_entry(s, "old");
    assert_non_null(e);
    assert_int_equal(e->state, HM_STATE_EXPIRED);
    assert_true(e->expired);
    assert_false(e->tags[0].moved);
    assert_int_equal(e->ttl_ms, HM_TTL_NEVER);
    hm_snapshot_free(s);
}

static void other_formats_and_tag_lists_are_foreign(void **state)
{
    (void)state;
    register_power(h, "power", HERMES_TAGS("math"));
    put_raw("v1", "HRM1\x01\x02\x03\x04", 8);
    const char *const tags[] = {"users"};
    uint64_t vid = 42;
    /* power's record, but for the tag list of an older deploy. */
    put_record("redeployed", "power", 1, tags, &vid, hm_now_ms(), 60);
    hm_snapshot *s = scan();
    const hm_insp_entry *e = hm_snapshot_entry(s, "v1");
    assert_int_equal(e->state, HM_STATE_FOREIGN);
    assert_int_equal(e->format, 1);
    assert_non_null(strstr(e->why, "format"));
    e = hm_snapshot_entry(s, "redeployed");
    assert_int_equal(e->state, HM_STATE_FOREIGN);
    assert_non_null(strstr(e->why, "tag list"));
    assert_string_equal(e->function, "power");
    /* A function nobody registered or published: judged by its tags. */
    put_record("unknown", "nobody", 1, tags, &vid, hm_now_ms(), 60);
    hm_snapshot_free(s);
    s = scan();
    assert_int_equal(hm_snapshot_entry(s, "unknown")->state, HM_STATE_STALE);
    hm_snapshot_free(s);
}

static void undecodable_records_are_corrupt(void **state)
{
    (void)state;
    put_raw("garbage", "not a record", 12);
    /* A valid record of one key, copied under another: its checksum
     * covers the key it was written for. */
    char key[256];
    snprintf(key, sizeof key, "%sthere", hm_handle_entry_prefix(h));
    hm_record_in in = {0, "f", 1, 0, NULL, NULL, hm_now_ms(), 60, 1, "v", 1};
    size_t len;
    unsigned char *rec =
        hm_record_encode(&in, (hermes_bytes){key, strlen(key)}, &len);
    assert_non_null(rec);
    put_raw("there", rec, len);
    put_raw("copied", rec, len);
    free(rec);
    hm_snapshot *s = scan();
    assert_int_equal(hm_snapshot_entry(s, "there")->state, HM_STATE_FRESH);
    const hm_insp_entry *e = hm_snapshot_entry(s, "copied");
    assert_int_equal(e->state, HM_STATE_CORRUPT);
    assert_int_equal(e->format, 2);
    e = hm_snapshot_entry(s, "garbage");
    assert_int_equal(e->state, HM_STATE_CORRUPT);
    assert_int_equal(e->format, -1);
    assert_non_null(e->why);
    assert_null(e->function);
    assert_int_equal(s->state_count[HM_STATE_CORRUPT], 2);
    char *why = hm_inspect_explain(s, e);
    assert_non_null(strstr(why, "state: corrupt: does not decode"));
    hermes_free(why);
    hm_snapshot_free(s);
}

static void held_locks_name_owner_age_and_ttl(void **state)
{
    (void)state;
    char lock[256], tok[128];
    size_t len;
    snprintf(lock, sizeof lock, "%s:lock:power:xyz",
             hm_handle_config(h)->prefix);
    uint64_t taken = hm_now_ms() - 1500;
    hm_lock_token(h, taken, tok, sizeof tok, &len);
    int acquired;
    assert_int_equal(hm_be_lock(h, (hermes_bytes){lock, strlen(lock)},
                                (hermes_bytes){tok, len}, 30000, &acquired),
                     HERMES_BE_OK);
    assert_true(acquired);
    hm_snapshot *s = scan();
    assert_int_equal(s->nlocks, 1);
    const hm_insp_lock *l = &s->locks[0];
    assert_string_equal(l->key, lock);
    char entry[256];
    snprintf(entry, sizeof entry, "%spower:xyz", hm_handle_entry_prefix(h));
    assert_string_equal(l->entry_key, entry);
    assert_true(l->token_ok);
    assert_int_equal(l->pid, getpid());
    assert_string_equal(l->host, h->hostname);
    assert_true(l->age_ms >= 1500 && l->age_ms < 60000);
    assert_true(l->ttl_ms > 20000 && l->ttl_ms <= 30000);
    hm_snapshot_free(s);
}

static void unknown_keys_under_the_prefix_are_listed(void **state)
{
    (void)state;
    char key[64];
    snprintf(key, sizeof key, "%s:mystery", hm_handle_config(h)->prefix);
    hermes_item it = {{key, strlen(key)}, {"x", 1}, 0, 0};
    assert_int_equal(hm_be_set(h, &it, 1, NULL, NULL), HERMES_BE_OK);
    hm_snapshot *s = scan();
    assert_int_equal(s->count[HM_KEY_UNKNOWN], 1);
    assert_int_equal(s->nunknown, 1);
    assert_string_equal(s->unknown[0], key);
    hm_snapshot_free(s);
}

/* Cancels after `stop_at` keys; counts calls. */
typedef struct prog {
    size_t calls, last, stop_at;
    bool monotonic;
} prog;

static int on_progress(void *arg, const hm_scan_progress *p)
{
    prog *g = arg;
    g->calls++;
    if (p->phase == HM_SCAN_WALK && p->keys < g->last)
        g->monotonic = false;
    g->last = p->keys;
    return g->stop_at && p->keys >= g->stop_at;
}

static void scans_report_progress_and_can_be_cancelled(void **state)
{
    (void)state;
    for (int i = 0; i < 2000; i++) {
        char k[32];
        snprintf(k, sizeof k, "k%d", i);
        assert_int_equal(hermes_set(h, k, "v", 1, NULL, 0), HERMES_OK);
    }
    prog g = {0, 0, 0, true};
    hm_scan_opts o = {sizeof o, on_progress, &g, 100, 0, 64};
    hm_snapshot *s;
    assert_int_equal(hm_inspect_scan(h, &o, &s), HERMES_OK);
    assert_int_equal(s->nentries, 2000);
    assert_true(s->complete);
    assert_true(g.calls >= 20);
    assert_true(g.monotonic);
    hm_snapshot_free(s);

    g = (prog){0, 0, 500, true};
    assert_int_equal(hm_inspect_scan(h, &o, &s), HERMES_OK);
    assert_false(s->complete);
    assert_true(s->nkeys >= 500 && s->nkeys < 2000);
    hm_snapshot_free(s);

    o.progress = NULL;
    o.max_keys = 300;
    assert_int_equal(hm_inspect_scan(h, &o, &s), HERMES_OK);
    assert_false(s->complete);
    assert_int_equal(s->nkeys, 300);
    hm_snapshot_free(s);
}

/* --------------------------------------------------------- publication */

/* The published record of pid in a new scan, or NULL. */
static const hm_insp_proc *proc_of(const hm_snapshot *s, long pid)
{
    for (size_t i = 0; i < s->nprocs; i++)
        if (s->procs[i].ok && s->procs[i].pid == pid)
            return &s->procs[i];
    return NULL;
}

/* Scans until pid's record shows `hits` hits of power (or, with hits
 * negative, until it is gone), for at most 10 s. */
static hm_snapshot *wait_for_proc(hermes *c, long pid, long hits)
{
    for (int i = 0; i < 1000; i++) {
        hm_snapshot *s;
        assert_int_equal(hm_inspect_scan(c, NULL, &s), HERMES_OK);
        const hm_insp_proc *p = proc_of(s, pid);
        if (hits < 0 && !p)
            return s;
        if (hits >= 0 && p && p->nfns > 0 && p->stats.hits == (uint64_t)hits)
            return s;
        hm_snapshot_free(s);
        /* A call moves publication on (it is written from calls only). */
        void *v;
        size_t n;
        hermes_get(c, "tick", NULL, &v, &n);
        sleep_ms(10);
    }
    fail_msg("pid %ld's stats did not %s within 10 s", pid,
             hits < 0 ? "expire" : "appear");
    return NULL;
}

static void published_counters_appear_per_process_and_function(void **state)
{
    (void)state;
    hermes *c = open_with("publish_stats = yes\npublish_interval_ms = 100");
    hermes_fn *p = register_power(c, "power", HERMES_TAGS("math", "ints"));
    hermes_fn *q = register_power(c, "square", NULL);
    for (int i = 0; i < 3; i++)
        call_power(p, 2, 5); /* 1 miss, 2 hits */
    call_power(q, 7, 2);     /* 1 miss */
    hm_snapshot *s = wait_for_proc(c, (long)getpid(), 2);
    const hm_insp_proc *pr = proc_of(s, (long)getpid());
    assert_string_equal(pr->host, c->hostname);
    assert_int_equal(pr->interval_ms, 100);
    assert_string_equal(pr->backend, hermes_backend_name(c));
    assert_true(pr->stats.misses >= 2); /* and the waits' gets of "tick" */
    assert_true(pr->published_ms <= s->taken_ms);
    assert_true(pr->ttl_ms > 0 && pr->ttl_ms <= 300);
    assert_int_equal(pr->nfns, 2);
    const hm_insp_fn *fp = NULL, *fq = NULL;
    for (size_t i = 0; i < pr->nfns; i++) {
        if (strcmp(pr->fns[i].name, "power") == 0)
            fp = &pr->fns[i];
        if (strcmp(pr->fns[i].name, "square") == 0)
            fq = &pr->fns[i];
    }
    assert_non_null(fp);
    assert_non_null(fq);
    assert_true(fp->hits == 2 && fp->misses == 1);
    assert_true(fq->hits == 0 && fq->misses == 1);
    assert_int_equal(fp->ntags, 2);
    assert_string_equal(fp->tags[0], "ints");
    assert_string_equal(fp->tags[1], "math");
    assert_int_equal(fq->ntags, 0);
    hm_snapshot_free(s);

    /* Publication stops: the record expires (its TTL is 3 intervals). */
    atomic_store(&c->publish_due_ns, 0);
    s = wait_for_proc(c, (long)getpid(), -1);
    hm_snapshot_free(s);
    hermes_close(c);
}

/* Threads calling at once: one of them writes each interval (the others
 * go on), and the published hits add up every thread's. */
typedef struct hammer {
    hermes_fn *fn;
    int calls;
} hammer;

static void *hammer_run(void *arg)
{
    hammer *m = arg;
    for (int i = 0; i < m->calls; i++) {
        int ab[2] = {2, 2};
        void *v;
        size_t n;
        if (hermes_call(m->fn, ab, sizeof ab, compute_power, ab, &v, &n) ==
            HERMES_OK)
            hermes_free(v);
        if (i % 50 == 0)
            sleep_ms(1);
    }
    return NULL;
}

static void threads_publish_once_per_interval(void **state)
{
    (void)state;
    hermes *c = open_with("publish_stats = yes\npublish_interval_ms = 100");
    hammer m = {register_power(c, "power", NULL), 2000};
    call_power(m.fn, 2, 2); /* the miss; 8000 hits follow */
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer_run, &m), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    hm_snapshot *s = wait_for_proc(c, (long)getpid(), 8000);
    const hm_insp_proc *p = proc_of(s, (long)getpid());
    assert_true(p->fns[0].hits == 8000 && p->fns[0].misses == 1);
    hm_snapshot_free(s);
    hermes_close(c);
}

static void publication_is_off_by_default_on_private_stores(void **state)
{
    (void)state;
    hermes *c = open_with("publish_interval_ms = 100");
#ifdef INSPECT_REDIS
    assert_true(atomic_load(&c->publish_due_ns) != 0);
#else
    assert_true(atomic_load(&c->publish_due_ns) == 0);
#endif
    hermes_close(c);
    c = open_with("publish_stats = no");
    assert_true(atomic_load(&c->publish_due_ns) == 0);
    hermes_close(c);
}

static void the_record_decodes_and_refuses_other_formats(void **state)
{
    (void)state;
    static const char text[] =
        "hermes-stats 1\nhost web1\npid 77\npublished_ms 5\ninterval_ms 9\n"
        "backend redis\nhits 3\nmisses 4\nlock_wait_us_lt_2048 6\n"
        "future_counter 8\nfuture line with words\n"
        "fn a%20b 1 2 t%25 u\nfn bad x y\n";
    hm_insp_proc p;
    memset(&p, 0, sizeof p);
    assert_int_equal(hm_publish_decode(text, sizeof text - 1, &p), 0);
    assert_true(p.ok);
    assert_string_equal(p.host, "web1");
    assert_int_equal(p.pid, 77);
    assert_true(p.published_ms == 5 && p.interval_ms == 9);
    assert_true(p.stats.hits == 3 && p.stats.misses == 4);
    assert_true(p.lock_wait[10] == 6);
    assert_int_equal(p.nfns, 1);
    assert_string_equal(p.fns[0].name, "a b");
    assert_int_equal(p.fns[0].ntags, 2);
    assert_string_equal(p.fns[0].tags[0], "t%");
    hm_publish_proc_free(&p);

    memset(&p, 0, sizeof p);
    assert_int_equal(hm_publish_decode("hermes-stats 2\nhost x\n", 22, &p), 0);
    assert_false(p.ok);
    assert_non_null(strstr(p.why, "format"));
    memset(&p, 0, sizeof p);
    assert_int_equal(hm_publish_decode("junk", 4, &p), 0);
    assert_false(p.ok);

    /* What a handle writes decodes to its own counters. */
    hm_buf b;
    hm_buf_init(&b);
    hm_publish_encode(h, 1234, &b);
    memset(&p, 0, sizeof p);
    assert_int_equal(hm_publish_decode(b.data, b.len, &p), 0);
    assert_true(p.ok);
    assert_int_equal(p.pid, getpid());
    assert_true(p.published_ms == 1234);
    hm_publish_proc_free(&p);
    hm_buf_free(&b);
}

#ifdef INSPECT_REDIS
/* A forked child publishes under its own pid, and its record outlives
 * it only by its TTL. */
static void a_forked_child_publishes_under_its_own_pid(void **state)
{
    (void)state;
    hermes *c = open_with("publish_stats = yes\npublish_interval_ms = 100");
    hermes_fn *p = register_power(c, "power", NULL);
    call_power(p, 2, 2);
    pid_t child = fork();
    if (child == 0) {
        /* Calls until its record is there, then dies without closing. */
        for (int i = 0; i < 1000; i++) {
            call_power(p, 2, 2);
            hm_snapshot *s;
            if (hm_inspect_scan(c, NULL, &s) == HERMES_OK) {
                bool seen = proc_of(s, (long)getpid()) != NULL;
                hm_snapshot_free(s);
                if (seen)
                    _exit(0);
            }
            sleep_ms(10);
        }
        _exit(1);
    }
    int status;
    assert_int_equal(cw_wait("inspect", child, CW_TIMEOUT_MS, &status), 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    hm_snapshot *s;
    assert_int_equal(hm_inspect_scan(c, NULL, &s), HERMES_OK);
    const hm_insp_proc *cp = proc_of(s, (long)child);
    /* Still there unless 300 ms passed; a child starts with the counters
     * it inherited (the parent's miss). */
    if (cp)
        assert_true(cp->stats.misses >= 1);
    hm_snapshot_free(s);
    s = wait_for_proc(c, (long)child, -1);
    hm_snapshot_free(s);
    hermes_close(c);
}

static int group_setup(void **state)
{
    (void)state;
    return redis_server_start(&server);
}

static int group_teardown(void **state)
{
    (void)state;
    redis_server_stop(&server);
    return 0;
}
#endif

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(keys_are_classified_by_their_kind),
        T(lock_tokens_are_read_from_the_right),
        T(percentiles_are_read_off_log2_buckets),
        T(a_lock_wait_is_counted_in_its_bucket),
        T(a_backend_without_scan_is_a_clear_error),
        T(a_fresh_entry_is_decoded),
        T(the_namespace_tag_is_a_tag_a_flush_moves),
        T(a_cleaned_tag_makes_its_entries_stale_naming_it),
        T(an_entry_past_its_ttl_is_expired),
        T(other_formats_and_tag_lists_are_foreign),
        T(undecodable_records_are_corrupt),
        T(held_locks_name_owner_age_and_ttl),
        T(unknown_keys_under_the_prefix_are_listed),
        T(scans_report_progress_and_can_be_cancelled),
        T(published_counters_appear_per_process_and_function),
        T(threads_publish_once_per_interval),
        T(publication_is_off_by_default_on_private_stores),
        T(the_record_decodes_and_refuses_other_formats),
#ifdef INSPECT_REDIS
        T(a_forked_child_publishes_under_its_own_pid),
#endif
    };
#ifdef INSPECT_REDIS
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
#else
    return cmocka_run_group_tests(tests, NULL, NULL);
#endif
}
