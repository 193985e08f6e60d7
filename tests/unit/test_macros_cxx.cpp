/*
 * <hermes/hermes.h> from C++: the plain API, and the macro layer with its
 * C++ side (overloads instead of _Generic, options as a C++20 designated
 * initializer).  Built with -std=c++20 -pedantic -Wall -Wextra -Werror
 * (Makefile.am) on the built-in dict backend.
 */
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <setjmp.h>

/* cmocka 1.1 declares some of its functions (print_error) without C linkage
 * when included from C++. */
extern "C" {
#include <cmocka.h>
}

#include <hermes/hermes.h>

static int runs;

HERMES_FUNC(int64_t, mul, int64_t, a, int64_t, b)
{
    runs++;
    return a * b;
}

HERMES_FUNC(char *, greet, const char *, who, unsigned short, n, bool, loud)
{
    runs++;
    char *s = static_cast<char *>(std::malloc(64));
    if (s)
        std::snprintf(s, 64, "%s %s x%u", loud ? "HELLO" : "hello", who, n);
    return s;
}

HERMES_FUNC(double, pi)
{
    return runs++, 3.25;
}

static int mul_key(char *buf, size_t cap, int64_t a, int64_t b)
{
    return std::snprintf(buf, cap, "mul:%lld:%lld", (long long)a, (long long)b);
}

static const char *const math_tags[] = {"math", nullptr};

static hermes *open_dict()
{
    hermes *h = nullptr;
    if (hermes_open_string(&h, "[hermes]\n", "test") != HERMES_OK)
        fail_msg("open: %s", hermes_errmsg(h));
    return h;
}

static void macros_cache_in_cxx(void **)
{
    hermes *h = open_dict();
    runs = 0;
    assert_int_equal(
        HERMES_REGISTER_KEYED(h, mul, mul_key, .tags = math_tags, .ttl = 60),
        HERMES_OK);
    assert_int_equal(HERMES_REGISTER(h, greet), HERMES_OK);
    assert_int_equal(HERMES_REGISTER(h, pi, .ttl = 5, .early_refresh = 2,
                                     .grace = 10, .stale_if_error = HERMES_NO),
                     HERMES_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(mul(6, 7), 42);
        char *g = greet("ada", 2, true);
        assert_string_equal(g, "HELLO ada x2");
        std::free(g);
        assert_true(pi() == 3.25);
    }
    assert_int_equal(runs, 3);
    void *v = nullptr;
    size_t n = 0;
    assert_int_equal(hermes_get(h, "mul:6:7", math_tags, &v, &n), HERMES_OK);
    hermes_free(v);
    int64_t out = 0;
    assert_int_equal(mul_try(6, 7, &out), HERMES_OK);
    assert_int_equal(out, 42);
    assert_int_equal(hermes_clean(h, math_tags), HERMES_OK);
    assert_int_equal(mul(6, 7), 42);
    assert_int_equal(runs, 4);
    assert_int_equal(greet_invalidate("ada", 2, true), HERMES_OK);
    std::free(greet("ada", 2, true));
    assert_int_equal(runs, 5);
    hermes_close(h);
}

static int compute_twice(void *arg, hermes_result *res)
{
    int x = *static_cast<int *>(arg);
    runs++;
    char v[16];
    int len = std::snprintf(v, sizeof v, "%d", 2 * x);
    return hermes_result_set(res, v, static_cast<size_t>(len)) != HERMES_OK;
}

static void plain_api_works_in_cxx(void **)
{
    hermes *h = open_dict();
    hermes_fn *fn = nullptr;
    hermes_fn_options opt = {};
    opt.size = sizeof opt;
    opt.tags = math_tags;
    assert_int_equal(hermes_fn_register(h, "twice", &opt, &fn), HERMES_OK);
    runs = 0;
    for (int i = 0; i < 2; i++) {
        hermes_args a = HERMES_ARGS_INIT;
        hermes_args_int(&a, 21);
        int x = 21;
        void *v = nullptr;
        size_t n = 0;
        assert_int_equal(hermes_call(fn, hermes_args_data(&a),
                                     hermes_args_len(&a), compute_twice, &x, &v,
                                     &n),
                         HERMES_OK);
        hermes_args_free(&a);
        assert_int_equal(n, 2);
        assert_memory_equal(v, "42", 2);
        hermes_free(v);
    }
    assert_int_equal(runs, 1);
    hermes_close(h);
}

int main()
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(macros_cache_in_cxx),
        cmocka_unit_test(plain_api_works_in_cxx),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
