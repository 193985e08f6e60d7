/*
 * Call semantics of the public API that used to be surprising (issue 7,
 * "Semantics fixed"): what an empty clean means, what a TTL of 0 means, and
 * what happens to an argument encoding that could not be built.  Runs on
 * the built-in dict backend.
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

static hermes *h;

static int setup(void **state)
{
    (void)state;
    hermes_rc rc = hermes_open_string(&h, "[hermes]\n", "test");
    if (rc != HERMES_OK) {
        fprintf(stderr, "open: %s\n", hermes_errmsg(h));
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    hermes_close(h);
    h = NULL;
    return 0;
}

/* hermes_clean() with no tags is a mistake, not a request to do nothing or
 * to delete everything: the message names the call that deletes all. */
static void clean_without_tags_is_an_error_naming_flush(void **state)
{
    (void)state;
    const char *const none[] = {NULL};
    assert_int_equal(hermes_set(h, "k", "v", 1, HERMES_TAGS("t"), 0),
                     HERMES_OK);
    assert_int_equal(hermes_clean(h, NULL), HERMES_EINVAL);
    assert_non_null(strstr(hermes_errmsg(h), "hermes_flush"));
    assert_int_equal(hermes_clean(h, none), HERMES_EINVAL);
    assert_non_null(strstr(hermes_errmsg(h), "hermes_flush"));
    /* Nothing was invalidated by the refused calls. */
    void *v;
    size_t n;
    assert_int_equal(hermes_get(h, "k", HERMES_TAGS("t"), &v, &n), HERMES_OK);
    hermes_free(v);
    assert_int_equal(hermes_clean(h, HERMES_TAGS("t")), HERMES_OK);
    assert_int_equal(hermes_get(h, "k", HERMES_TAGS("t"), &v, &n),
                     HERMES_ENOTFOUND);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(clean_without_tags_is_an_error_naming_flush),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
