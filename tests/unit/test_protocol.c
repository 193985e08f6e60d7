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
    hermes_fn_options o = {.tags = tags};
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
