/*
 * The versioned API: structs that cross it carry their size, so an older
 * caller's struct is never overflowed and an option a library cannot honor
 * is refused rather than ignored.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <hermes/hermes.h>

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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
