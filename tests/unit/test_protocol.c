/*
 * The exact backend calls the core makes, asserted with cmocka's call
 * expectations on a mock backend: a cached read is one batched get, a cold
 * miss is get, lock, get, tag creation, set, unlock, and clean is one
 * batched delete.  A store that flushes by prefix sees nothing of the
 * namespace tag; one that cannot (HERMES_CAP_NO_PREFIX_FLUSH) finds its key
 * in the same get as the other tags, and a flush is one write of it.  The
 * mock is a store private to the handle (no HERMES_CAP_SHARED), so a hit
 * whose tag versions the function read at the current tag epoch gets its
 * entry alone (hm_tag_memo); the first read after a call that may have
 * changed a tag key names the tags again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <hermes/hermes.h>

#include "keyspace.h"
#include "mock_backend.h"

static hermes *h;

static int compute_42(void *arg, hermes_result *res)
{
    return hermes_result_set(res, "42", 2) == HERMES_OK ? 0 : 1;
}

static void call_once(hermes_fn *fn)
{
    void *v;
    size_t n;
    assert_int_equal(hermes_call(fn, "args", 4, compute_42, NULL, &v, &n),
                     HERMES_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(v, "42", 2);
    hermes_free(v);
}

static int setup(void **state)
{
    assert_int_equal(hermes_open_with(&h, NULL, NULL, mock_backend()),
                     HERMES_OK);
    return 0;
}

static int teardown(void **state)
{
    hermes_close(h);
    return 0;
}

static hermes_fn *reg(const char *name, const char *const *tags)
{
    hermes_fn *fn;
    hermes_fn_options o = HERMES_FN_OPTIONS(.tags = tags);
    assert_int_equal(hermes_fn_register(h, name, &o, &fn), HERMES_OK);
    return fn;
}

static void tagged_hit_is_one_batched_get_of_entry_and_tags(void **state)
{
    hermes_fn *fn = reg("tagged", HERMES_TAGS("rock", "tree"));
    call_once(fn); /* warm */
    mock_strict(mock_current(), true);
    expect_function_call(strict_get);
    expect_value(strict_get, n, 3); /* entry + 2 tags */
    call_once(fn);
    mock_strict(mock_current(), false);
}

static void untagged_hit_is_one_get_of_one_key(void **state)
{
    hermes_fn *fn = reg("simple", NULL);
    call_once(fn);
    mock_strict(mock_current(), true);
    expect_function_call(strict_get);
    expect_value(strict_get, n, 1);
    call_once(fn);
    mock_strict(mock_current(), false);
}

static void
cold_tagged_miss_reads_locks_rereads_creates_tags_writes_unlocks(void **state)
{
    hermes_fn *fn = reg("tagged", HERMES_TAGS("rock", "tree"));
    mock_strict(mock_current(), true);
    expect_function_call(strict_get);
    expect_value(strict_get, n, 3);
    expect_function_call(strict_lock);
    expect_function_call(strict_get);
    expect_value(strict_get, n, 3);
    expect_function_call(strict_set); /* both tags, set-if-absent, batched */
    expect_value(strict_set, n, 2);
    expect_function_call(strict_set); /* the record */
    expect_value(strict_set, n, 1);
    expect_function_call(strict_unlock);
    call_once(fn);
    mock_strict(mock_current(), false);
}

static void miss_with_existing_tags_creates_none(void **state)
{
    hermes_fn *a = reg("a", HERMES_TAGS("rock"));
    hermes_fn *b = reg("b", HERMES_TAGS("rock"));
    call_once(a); /* creates rock */
    mock_strict(mock_current(), true);
    expect_function_call(strict_get);
    expect_value(strict_get, n, 2);
    expect_function_call(strict_lock);
    expect_function_call(strict_get);
    expect_value(strict_get, n, 2);
    expect_function_call(strict_set); /* only the record */
    expect_value(strict_set, n, 1);
    expect_function_call(strict_unlock);
    call_once(b);
    mock_strict(mock_current(), false);
}

static void clean_is_one_batched_delete_of_tag_keys(void **state)
{
    mock_strict(mock_current(), true);
    expect_function_call(strict_del);
    expect_value(strict_del, n, 3);
    assert_int_equal(hermes_clean(h, HERMES_TAGS("a", "b", "c")), HERMES_OK);
    mock_strict(mock_current(), false);
}

static void call_with(hermes_fn *fn, const char *args)
{
    void *v;
    size_t n;
    assert_int_equal(
        hermes_call(fn, args, strlen(args), compute_42, NULL, &v, &n),
        HERMES_OK);
    hermes_free(v);
}

static void copy_out(void *arg, size_t index, const void *v, size_t n)
{
    hermes_bytes *b = arg;
    void *p = malloc(n);
    memcpy(p, v, n);
    b->data = p;
    b->len = n;
}

/* Copies the entry of fn(from) over the entry of fn(to), in the store. */
static void copy_entry(hermes_fn *fn, const char *from, const char *to)
{
    hm_buf kf, kt;
    hm_buf_init(&kf);
    hm_buf_init(&kt);
    assert_int_equal(hm_entry_key(fn, from, strlen(from), NULL, &kf),
                     HERMES_OK);
    assert_int_equal(hm_entry_key(fn, to, strlen(to), NULL, &kt), HERMES_OK);
    void *st;
    const hermes_backend *inner = mock_inner(mock_current(), &st);
    hermes_bytes k = {kf.data, kf.len}, v = {NULL, 0};
    assert_int_equal(inner->get(st, &k, 1, copy_out, &v), HERMES_BE_OK);
    assert_non_null(v.data);
    hermes_item it = {{kt.data, kt.len}, v, 0, 0};
    assert_int_equal(inner->set(st, &it, 1, NULL, NULL), HERMES_BE_OK);
    free((void *)v.data);
    hm_buf_free(&kf);
    hm_buf_free(&kt);
}

static void record_under_another_key_is_a_miss_that_rewrites_it(void **state)
{
    hermes_fn *fn = reg("moved", HERMES_TAGS("rock"));
    call_with(fn, "one");
    call_with(fn, "two");
    copy_entry(fn, "one", "two");
    mock_strict(mock_current(), true);
    expect_function_call(strict_get); /* the copy does not decode here */
    expect_value(strict_get, n, 1);
    expect_function_call(strict_get); /* no hit: read again in full */
    expect_value(strict_get, n, 2);
    expect_function_call(strict_lock);
    expect_function_call(strict_get);
    expect_value(strict_get, n, 2);
    expect_function_call(strict_set); /* its own record, over the copy */
    expect_value(strict_set, n, 1);
    expect_function_call(strict_unlock);
    call_with(fn, "two");
    expect_function_call(strict_get); /* and then a hit: the entry alone */
    expect_value(strict_get, n, 1);
    call_with(fn, "two");
    mock_strict(mock_current(), false);
}

static void
private_store_hit_reads_tags_only_after_they_may_have_moved(void **state)
{
    hermes_fn *fn = reg("memo", HERMES_TAGS("rock", "tree"));
    call_once(fn); /* a miss: creates the tags */
    call_once(fn); /* reads them (the creation moved the epoch) */
    mock_strict(mock_current(), true);
    expect_function_call(strict_get); /* entry alone */
    expect_value(strict_get, n, 1);
    call_once(fn);
    mock_strict(mock_current(), false);
    /* A write of another entry leaves the tags as they were. */
    call_with(fn, "other");
    mock_strict(mock_current(), true);
    expect_function_call(strict_get);
    expect_value(strict_get, n, 1);
    call_once(fn);
    mock_strict(mock_current(), false);
    /* Cleaning one tag: the next read names both, and misses. */
    assert_int_equal(hermes_clean(h, HERMES_TAGS("tree")), HERMES_OK);
    mock_strict(mock_current(), true);
    expect_function_call(strict_get);
    expect_value(strict_get, n, 3);
    expect_function_call(strict_lock);
    expect_function_call(strict_get);
    expect_value(strict_get, n, 3);
    expect_function_call(strict_set); /* tree's new version */
    expect_value(strict_set, n, 1);
    expect_function_call(strict_set); /* the record */
    expect_value(strict_set, n, 1);
    expect_function_call(strict_unlock);
    call_once(fn);
    mock_strict(mock_current(), false);
}

static void invalidate_is_one_delete(void **state)
{
    hermes_fn *fn = reg("simple", NULL);
    mock_strict(mock_current(), true);
    expect_function_call(strict_del);
    expect_value(strict_del, n, 1);
    assert_int_equal(hermes_invalidate(fn, "args", 4, NULL), HERMES_OK);
    mock_strict(mock_current(), false);
}

/* ------------------------------------------------------------- flush */

static int computed;

static int compute_counted(void *arg, hermes_result *res)
{
    computed++;
    return compute_42(arg, res);
}

static void call_counted(hermes_fn *fn)
{
    void *v;
    size_t n;
    assert_int_equal(hermes_call(fn, "args", 4, compute_counted, NULL, &v, &n),
                     HERMES_OK);
    hermes_free(v);
}

static int setup_no_prefix_flush(void **state)
{
    assert_int_equal(
        hermes_open_with(&h, NULL, NULL, mock_backend_no_prefix_flush()),
        HERMES_OK);
    return 0;
}

static void
with_prefix_flush_a_read_names_only_the_entry_and_its_tags(void **state)
{
    hermes_fn *fn = reg("tagged", HERMES_TAGS("rock", "tree"));
    call_once(fn);
    call_once(fn);
    mock_state *m = mock_current();
    assert_non_null(strstr(mock_last_get_key(m, 0), "cache:entry:tagged:"));
    assert_string_equal(mock_last_get_key(m, 1), "cache:tag:rock");
    assert_string_equal(mock_last_get_key(m, 2), "cache:tag:tree");
    assert_null(mock_last_get_key(m, 3));
}

static void with_prefix_flush_an_untagged_set_is_one_write(void **state)
{
    mock_strict(mock_current(), true);
    expect_function_call(strict_set);
    expect_value(strict_set, n, 1);
    assert_int_equal(hermes_set(h, "k", "v", 1, NULL, HERMES_TTL_DEFAULT),
                     HERMES_OK);
    mock_strict(mock_current(), false);
}

static void with_prefix_flush_a_flush_is_one_flush_of_the_prefix(void **state)
{
    call_once(reg("simple", NULL));
    mock_reset_counts(mock_current());
    assert_int_equal(hermes_flush(h), HERMES_OK);
    mock_counts c = mock_get_counts(mock_current());
    assert_int_equal(c.flush, 1);
    assert_int_equal(c.get + c.set + c.del + c.lock + c.unlock, 0);
}

static void
without_prefix_flush_a_read_also_names_the_namespace_key(void **state)
{
    hermes_fn *fn = reg("tagged", HERMES_TAGS("rock", "tree"));
    call_once(fn); /* warm */
    hermes_bytes none = {"cache:tag:none", 14};
    assert_int_equal(hm_be_del(h, &none, 1), HERMES_BE_OK); /* a tag moved */
    mock_strict(mock_current(), true);
    expect_function_call(strict_get);
    expect_value(strict_get, n, 4); /* entry, namespace, 2 tags */
    call_once(fn);
    mock_strict(mock_current(), false);
    mock_state *m = mock_current();
    assert_string_equal(mock_last_get_key(m, 1), "cache:ns");
    assert_string_equal(mock_last_get_key(m, 2), "cache:tag:rock");
    assert_string_equal(mock_last_get_key(m, 3), "cache:tag:tree");
    hermes_fn *plain = reg("plain", NULL);
    call_once(plain);
    assert_int_equal(hm_be_del(h, &none, 1), HERMES_BE_OK);
    mock_strict(mock_current(), true);
    expect_function_call(strict_get);
    expect_value(strict_get, n, 2); /* entry, namespace */
    call_once(plain);
    mock_strict(mock_current(), false);
}

static void
without_prefix_flush_a_flush_is_one_write_of_the_namespace_key(void **state)
{
    call_once(reg("simple", NULL));
    mock_state *m = mock_current();
    mock_reset_counts(m);
    mock_strict(m, true);
    expect_function_call(strict_set);
    expect_value(strict_set, n, 1);
    assert_int_equal(hermes_flush(h), HERMES_OK);
    mock_strict(m, false);
    mock_counts c = mock_get_counts(m);
    assert_int_equal(c.flush, 1); /* answered UNSUPPORTED: nothing to add */
    assert_int_equal(c.get + c.del + c.lock + c.unlock, 0);
    hermes_stats st;
    hermes_stats_get(h, &st, sizeof st);
    assert_int_equal(st.backend_errors, 0);
}

static void without_prefix_flush_a_flush_invalidates_every_entry(void **state)
{
    hermes_fn *tagged = reg("tagged", HERMES_TAGS("rock"));
    hermes_fn *plain = reg("plain", NULL);
    assert_int_equal(hermes_set(h, "d", "1", 1, NULL, HERMES_TTL_DEFAULT),
                     HERMES_OK);
    assert_int_equal(
        hermes_set(h, "dt", "2", 1, HERMES_TAGS("rock"), HERMES_TTL_DEFAULT),
        HERMES_OK);
    computed = 0;
    for (int round = 0; round < 2; round++) {
        call_counted(tagged);
        call_counted(plain);
    }
    assert_int_equal(computed, 2);
    void *v;
    size_t n;
    assert_int_equal(hermes_get(h, "d", NULL, &v, &n), HERMES_OK);
    hermes_free(v);

    assert_int_equal(hermes_flush(h), HERMES_OK);
    assert_int_equal(hermes_get(h, "d", NULL, &v, &n), HERMES_ENOTFOUND);
    assert_non_null(strstr(hermes_errmsg(h), "hermes_flush ran"));
    assert_int_equal(hermes_get(h, "dt", HERMES_TAGS("rock"), &v, &n),
                     HERMES_ENOTFOUND);
    for (int round = 0; round < 2; round++) {
        call_counted(tagged);
        call_counted(plain);
    }
    assert_int_equal(computed, 4); /* each once more, then cached again */
    assert_int_equal(hermes_set(h, "d", "3", 1, NULL, HERMES_TTL_DEFAULT),
                     HERMES_OK);
    assert_int_equal(hermes_get(h, "d", NULL, &v, &n), HERMES_OK);
    assert_memory_equal(v, "3", 1);
    hermes_free(v);
}

static void without_prefix_flush_clean_leaves_the_namespace_key(void **state)
{
    mock_strict(mock_current(), true);
    expect_function_call(strict_del);
    expect_value(strict_del, n, 1);
    assert_int_equal(hermes_clean(h, HERMES_TAGS("a")), HERMES_OK);
    mock_strict(mock_current(), false);
}

static void without_prefix_flush_a_record_has_one_tag_more(void **state)
{
    hermes_fn *fn;
    static char names[255][16]; /* room for any int: -O1 checks */
    const char *tags[256];
    for (int i = 0; i < 255; i++) {
        snprintf(names[i], sizeof names[i], "t%d", i);
        tags[i] = names[i];
    }
    tags[255] = NULL;
    hermes_fn_options o = HERMES_FN_OPTIONS(.tags = tags);
    assert_int_equal(hermes_fn_register(h, "many", &o, &fn), HERMES_EINVAL);
    assert_non_null(strstr(hermes_errmsg(h), "at most 254"));
    assert_non_null(strstr(hermes_errmsg(h), "namespace tag"));
    tags[254] = NULL;
    assert_int_equal(hermes_fn_register(h, "many", &o, &fn), HERMES_OK);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
#define NS(f)                                                                  \
    cmocka_unit_test_setup_teardown(f, setup_no_prefix_flush, teardown)
    const struct CMUnitTest tests[] = {
        T(tagged_hit_is_one_batched_get_of_entry_and_tags),
        T(untagged_hit_is_one_get_of_one_key),
        T(cold_tagged_miss_reads_locks_rereads_creates_tags_writes_unlocks),
        T(miss_with_existing_tags_creates_none),
        T(clean_is_one_batched_delete_of_tag_keys),
        T(invalidate_is_one_delete),
        T(record_under_another_key_is_a_miss_that_rewrites_it),
        T(private_store_hit_reads_tags_only_after_they_may_have_moved),
        T(with_prefix_flush_a_read_names_only_the_entry_and_its_tags),
        T(with_prefix_flush_an_untagged_set_is_one_write),
        T(with_prefix_flush_a_flush_is_one_flush_of_the_prefix),
        NS(without_prefix_flush_a_read_also_names_the_namespace_key),
        NS(without_prefix_flush_a_flush_is_one_write_of_the_namespace_key),
        NS(without_prefix_flush_a_flush_invalidates_every_entry),
        NS(without_prefix_flush_clean_leaves_the_namespace_key),
        NS(without_prefix_flush_a_record_has_one_tag_more),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
