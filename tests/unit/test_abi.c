/*
 * The versioned API: structs that cross it carry their size, so an older
 * caller's struct is never overflowed and an option a library cannot honor
 * is refused rather than ignored.  And the vocabularies listed once: the
 * counters' table the printers use, the backend statuses' names, and the
 * one mapping of a backend status to the hermes_rc every call returns.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <hermes/backend.h>
#include <hermes/hermes.h>

#include "handle.h"
#include "internal.h"
#include "mock_backend.h"
#include "stats.h"

static int compute(void *arg, hermes_result *res)
{
    return hermes_result_set(res, "v", 1) != HERMES_OK;
}

/* A handle with one miss, one hit and one computation counted. */
static hermes *busy_handle(void)
{
    hermes *h;
    hermes_fn *fn;
    assert_int_equal(hermes_open_defaults(&h), HERMES_OK);
    assert_int_equal(hermes_fn_register(h, "f", NULL, &fn), HERMES_OK);
    for (int i = 0; i < 2; i++) {
        void *v;
        size_t n;
        assert_int_equal(hermes_call(fn, "k", 1, compute, NULL, &v, &n),
                         HERMES_OK);
        hermes_free(v);
    }
    return h;
}

/* An older caller's hermes_stats (a prefix of today's) is written exactly
 * up to its own size, never beyond. */
static void stats_never_write_past_the_callers_size(void **state)
{
    hermes *h = busy_handle();
    size_t old = offsetof(hermes_stats, stale);
    unsigned char buf[sizeof(hermes_stats) + 16];
    memset(buf, 0xA5, sizeof buf);
    assert_int_equal(hermes_stats_get(h, (hermes_stats *)(void *)buf, old),
                     HERMES_OK);
    for (size_t i = old; i < sizeof buf; i++)
        assert_int_equal(buf[i], 0xA5);
    uint64_t hits, misses;
    memcpy(&hits, buf + offsetof(hermes_stats, hits), sizeof hits);
    memcpy(&misses, buf + offsetof(hermes_stats, misses), sizeof misses);
    assert_int_equal(hits, 1);
    assert_int_equal(misses, 1);
    hermes_close(h);
}

/* A newer caller's larger struct: ours is filled, the tail zeroed. */
static void stats_zero_what_this_library_does_not_know(void **state)
{
    hermes *h = busy_handle();
    struct {
        hermes_stats s;
        uint64_t newer[4];
    } big;
    memset(&big, 0xA5, sizeof big);
    assert_int_equal(hermes_stats_get(h, &big.s, sizeof big), HERMES_OK);
    assert_int_equal(big.s.computations, 1);
    for (int i = 0; i < 4; i++)
        assert_int_equal(big.newer[i], 0);
    hermes_close(h);
}

static void stats_refuse_null(void **state)
{
    hermes *h = busy_handle();
    hermes_stats s;
    assert_int_equal(hermes_stats_get(NULL, &s, sizeof s), HERMES_EINVAL);
    assert_int_equal(hermes_stats_get(h, NULL, sizeof s), HERMES_EINVAL);
    hermes_close(h);
}

/* Every counter of the list is a field, in list order, and is filled. */
static void stats_struct_follows_the_list(void **state)
{
    size_t n = 0;
#define COUNT(name, text) n++;
    HERMES_STATS_MAP(COUNT)
#undef COUNT
    assert_int_equal(sizeof(hermes_stats), n * sizeof(uint64_t));
    size_t i = 0;
#define AT(name, text)                                                         \
    assert_int_equal(offsetof(hermes_stats, name), i++ * sizeof(uint64_t));    \
    assert_true(strlen(text) > 0);
    HERMES_STATS_MAP(AT)
#undef AT
}

static void options_without_size_are_refused(void **state)
{
    hermes *h;
    hermes_fn *fn;
    assert_int_equal(hermes_open_defaults(&h), HERMES_OK);
    hermes_fn_options o;
    memset(&o, 0, sizeof o);
    o.ttl = 5;
    assert_int_equal(hermes_fn_register(h, "f", &o, &fn), HERMES_EINVAL);
    assert_non_null(strstr(hermes_errmsg(h), "HERMES_FN_OPTIONS"));
    hermes_fn_options ok = HERMES_FN_OPTIONS(.ttl = 5);
    assert_int_equal(ok.size, sizeof(hermes_fn_options));
    assert_int_equal(hermes_fn_register(h, "f", &ok, &fn), HERMES_OK);
    hermes_close(h);
}

/* A newer header's struct: its unknown tail is accepted when zero (the
 * caller did not use the new option) and refused when set. */
static void options_newer_than_the_library(void **state)
{
    hermes *h;
    hermes_fn *fn;
    assert_int_equal(hermes_open_defaults(&h), HERMES_OK);
    struct {
        hermes_fn_options o;
        uint64_t newer;
    } big;
    memset(&big, 0, sizeof big);
    big.o.size = sizeof big;
    big.o.tags = HERMES_TAGS("t");
    assert_int_equal(hermes_fn_register(h, "zero_tail", &big.o, &fn),
                     HERMES_OK);
    big.newer = 1;
    assert_int_equal(hermes_fn_register(h, "set_tail", &big.o, &fn),
                     HERMES_EINVAL);
    assert_non_null(strstr(hermes_errmsg(h), "does not know"));
    hermes_close(h);
}

/* An older header's struct (only size and tags): the rest reads as zero,
 * nothing beyond its size is read. */
static void options_older_than_the_library(void **state)
{
    hermes *h;
    hermes_fn *fn;
    assert_int_equal(hermes_open_defaults(&h), HERMES_OK);
    struct old_options { /* the first fields of today's, nothing else */
        size_t size;
        const char *const *tags;
    };
    assert_int_equal(offsetof(hermes_fn_options, tags),
                     offsetof(struct old_options, tags));
    /* On the heap at its own size, so ASan catches any read past it. */
    struct old_options *o = malloc(sizeof *o);
    assert_non_null(o);
    o->size = sizeof *o;
    o->tags = HERMES_TAGS("t");
    assert_int_equal(
        hermes_fn_register(h, "old", (const hermes_fn_options *)(void *)o, &fn),
        HERMES_OK);
    free(o);
    void *v;
    size_t n;
    assert_int_equal(hermes_call(fn, "k", 1, compute, NULL, &v, &n), HERMES_OK);
    hermes_free(v);
    hermes_close(h);
}

static void args_accessors_read_the_encoding(void **state)
{
    hermes_args b = HERMES_ARGS_INIT;
    assert_false(hermes_args_failed(&b));
    hermes_args_int(&b, 1);
    hermes_args_str(&b, "ab");
    assert_false(hermes_args_failed(&b));
    assert_int_equal(hermes_args_len(&b), 9 + 9 + 2);
    assert_memory_equal((const char *)hermes_args_data(&b) + 18, "ab", 2);
    hermes_args_free(&b);
}

/* The printers' table has one row per counter, in the struct's order, and
 * reads each counter where the struct holds it. */
static void stats_table_follows_the_list(void **state)
{
    assert_int_equal(hm_stat_nfields, sizeof(hermes_stats) / sizeof(uint64_t));
    size_t i = 0;
    hermes_stats s;
    memset(&s, 0, sizeof s);
#define ROW(field, desc)                                                       \
    assert_string_equal(hm_stat_fields[i].name, #field);                       \
    assert_string_equal(hm_stat_fields[i].text, desc);                         \
    assert_int_equal(hm_stat_fields[i].offset, offsetof(hermes_stats, field)); \
    s.field = 1000 + i;                                                        \
    assert_int_equal(hm_stat_value(&s, &hm_stat_fields[i]), 1000 + i);         \
    i++;
    HERMES_STATS_MAP(ROW)
#undef ROW
}

/* hm_stats_print writes every counter, or what moved since a snapshot. */
static void stats_printer_prints_every_counter(void **state)
{
    hermes *h = busy_handle();
    hermes_stats s0, s1;
    memset(&s0, 0, sizeof s0);
    assert_int_equal(hermes_stats_get(h, &s1, sizeof s1), HERMES_OK);
    s0.hits = 1;
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    assert_non_null(f);
    hm_stats_print(f, "> ", &s1, &s0);
    assert_int_equal(fclose(f), 0);
    size_t lines = 0;
    for (const char *c = text; *c; c++)
        lines += *c == '\n';
    assert_int_equal(lines, hm_stat_nfields);
    assert_non_null(strstr(text, "> hits: 0\n"));   /* 1 hit minus 1 */
    assert_non_null(strstr(text, "> misses: 1\n")); /* 1 miss minus 0 */
    assert_non_null(strstr(text, "> foreign: 0\n"));
    free(text);
    hermes_close(h);
}

/* Every status of the list has its name and text; an unknown one none. */
static void backend_status_names_come_from_the_list(void **state)
{
    size_t n = 0;
#define NAMED(name, value, text)                                               \
    assert_int_equal(HERMES_BE_##name, value);                                 \
    assert_string_equal(hm_be_status_name(value), #name);                      \
    assert_string_equal(hm_be_status_str(value), text);                        \
    n++;
    HERMES_BE_STATUS_MAP(NAMED)
#undef NAMED
    assert_int_equal(n, 7);
    assert_null(hm_be_status_name(99));
    assert_null(hm_be_status_name(-1));
    assert_string_equal(hm_be_status_str(99), "unknown backend status");
}

/* What each status means to the application, written out once more here
 * so that a change to the mapping must change this table too. */
static const struct {
    int status;
    hermes_rc op, open;
} status_rc[] = {
    {HERMES_BE_IO, HERMES_EBACKEND, HERMES_EBACKEND},
    {HERMES_BE_NOMEM, HERMES_ENOMEM, HERMES_ENOMEM},
    {HERMES_BE_TOOBIG, HERMES_ETOOBIG, HERMES_ETOOBIG},
    {HERMES_BE_INVALID, HERMES_EINVAL, HERMES_ECONFIG},
    {HERMES_BE_PROTOCOL, HERMES_EBACKEND, HERMES_EBACKEND},
    {HERMES_BE_UNSUPPORTED, HERMES_EBACKEND, HERMES_EBACKEND},
    {99, HERMES_EBACKEND, HERMES_EBACKEND}, /* a status from a newer ABI */
};
#define NSTATUS (sizeof status_rc / sizeof status_rc[0])

static int compute_unused(void *arg, hermes_result *res)
{
    fail_msg("computed although on_backend_error = fail");
    return 1;
}

/* Every public call that meets a backend failure returns the same code
 * for the same status: get, set, delete, clean, flush (by prefix, and
 * through the namespace key of a store that cannot), invalidate and the
 * cached call (with on_backend_error = fail). */
static void every_call_maps_a_status_the_same_way(void **state)
{
    hermes *h, *ns;
    hermes_fn *fn;
    hermes_backend no_prefix = *mock_backend();
    no_prefix.caps |= HERMES_CAP_NO_PREFIX_FLUSH;
    assert_int_equal(hermes_open_with(&ns, NULL, "abi.ini", &no_prefix),
                     HERMES_OK);
    mock_state *mns = mock_current();
    assert_int_equal(hermes_open_with(&h, "[hermes]\non_backend_error = fail\n",
                                      "abi.ini", mock_backend()),
                     HERMES_OK);
    assert_int_equal(hermes_fn_register(h, "f", NULL, &fn), HERMES_OK);
    mock_state *m = mock_current();
    for (size_t i = 0; i < NSTATUS; i++) {
        int st = status_rc[i].status;
        hermes_rc want = status_rc[i].op;
        void *v = NULL;
        size_t len;
        assert_int_equal(hm_be_rc(st, false), want);
        mock_fail_all(m, st);
        mock_fail_all(mns, st);
        hermes_rc got[] = {
            hermes_flush(ns),
            hermes_get(h, "k", NULL, &v, &len),
            hermes_set(h, "k", "v", 1, NULL, 0),
            hermes_delete(h, "k"),
            hermes_clean(h, HERMES_TAGS("t")),
            hermes_flush(h),
            hermes_invalidate(fn, "a", 1, NULL),
            hermes_call(fn, "a", 1, compute_unused, NULL, &v, &len),
        };
        mock_fail_all(m, 0);
        mock_fail_all(mns, 0);
        for (size_t j = 0; j < sizeof got / sizeof got[0]; j++)
            if (got[j] != want)
                fail_msg("status %d, call %zu: %s, expected %s", st, j,
                         hermes_strerror(got[j]), hermes_strerror(want));
    }
    hermes_close(h);
    hermes_close(ns);
}

static int open_status;
static int open_failing(const hermes_host *host, const hermes_kv *kv, size_t n,
                        void **state, hermes_open_error *err)
{
    return open_status;
}

/* open() is mapped by the same function: only INVALID reads differently,
 * because open's only arguments are the config section. */
static void open_maps_a_status_the_same_way(void **state)
{
    hermes_backend d = *mock_backend();
    d.open = open_failing;
    for (size_t i = 0; i < NSTATUS; i++) {
        hermes *h;
        open_status = status_rc[i].status;
        assert_int_equal(hm_be_rc(open_status, true), status_rc[i].open);
        assert_int_equal(hermes_open_with(&h, NULL, "abi.ini", &d),
                         status_rc[i].open);
        assert_non_null(strstr(hermes_errmsg(h), "failed to open"));
        hermes_close(h);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stats_never_write_past_the_callers_size),
        cmocka_unit_test(stats_zero_what_this_library_does_not_know),
        cmocka_unit_test(stats_refuse_null),
        cmocka_unit_test(stats_struct_follows_the_list),
        cmocka_unit_test(options_without_size_are_refused),
        cmocka_unit_test(options_newer_than_the_library),
        cmocka_unit_test(options_older_than_the_library),
        cmocka_unit_test(args_accessors_read_the_encoding),
        cmocka_unit_test(stats_table_follows_the_list),
        cmocka_unit_test(stats_printer_prints_every_counter),
        cmocka_unit_test(backend_status_names_come_from_the_list),
        cmocka_unit_test(every_call_maps_a_status_the_same_way),
        cmocka_unit_test(open_maps_a_status_the_same_way),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
