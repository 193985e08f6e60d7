/*
 * The exact backend calls the core makes, asserted with cmocka's call
 * expectations on a mock backend: a cached read is one batched get, a cold
 * miss is get, lock, get, tag creation, set, unlock, and clean is one
 * batched delete.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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
    expect_value(strict_get, n, 2);
    expect_function_call(strict_lock);
    expect_function_call(strict_get);
    expect_value(strict_get, n, 2);
    expect_function_call(strict_set); /* its own record, over the copy */
    expect_value(strict_set, n, 1);
    expect_function_call(strict_unlock);
    call_with(fn, "two");
    expect_function_call(strict_get); /* and then a hit */
    expect_value(strict_get, n, 2);
    call_with(fn, "two");
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

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(tagged_hit_is_one_batched_get_of_entry_and_tags),
        T(untagged_hit_is_one_get_of_one_key),
        T(cold_tagged_miss_reads_locks_rereads_creates_tags_writes_unlocks),
        T(miss_with_existing_tags_creates_none),
        T(clean_is_one_batched_delete_of_tag_keys),
        T(invalidate_is_one_delete),
        T(record_under_another_key_is_a_miss_that_rewrites_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
