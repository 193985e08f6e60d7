/*
 * The HermesCache demo in C: three cached functions, one untagged, two
 * tagged, one with a custom key; then invalidation of single entries, of a
 * tag, and a flush, printing which calls were computed again.
 *
 *     quickstart [CONFIG]
 *
 * Without CONFIG it uses HERMES_CONFIG or the built-in dict backend.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <hermes/hermes.h>

static int computed; /* how many function bodies ran, to show hits */

HERMES_FUNC(int64_t, foo, int64_t, a, int64_t, b)
{
    computed++;
    return a * b;
}

HERMES_FUNC(int64_t, bar, int64_t, a, int64_t, b)
{
    computed++;
    int64_t r = 1;
    while (b-- > 0)
        r *= a;
    return r;
}

HERMES_FUNC(double, baz, int64_t, a, int64_t, b)
{
    computed++;
    return (a + b) / 2.0;
}

/* baz's custom key: "avg:<a>:<b>", stored as cache:entry:avg:<a>:<b>. */
static int baz_key(char *buf, size_t cap, int64_t a, int64_t b)
{
    return snprintf(buf, cap, "avg:%" PRId64 ":%" PRId64, a, b);
}

/* Calls all three and says which ones ran their body. */
static void call_all(const char *when)
{
    int before = computed;
    printf("%s\n", when);
    printf("  foo(2, 333) = %" PRId64 "\n", foo(2, 333));
    printf("  bar(2, 10) = %" PRId64 "\n", bar(2, 10));
    printf("  baz(2, 10) = %g\n", baz(2, 10));
    printf("  computed: %d of 3\n", computed - before);
}

int main(int argc, char **argv)
{
    hermes *cache;
    hermes_rc rc = hermes_open(&cache, argc > 1 ? argv[1] : NULL);
    if (rc != HERMES_OK) {
        fprintf(stderr, "quickstart: %s: %s\n", hermes_strerror(rc),
                hermes_errmsg(cache));
        hermes_close(cache);
        return 1;
    }
    printf("backend: %s %s\n", hermes_backend_name(cache),
           hermes_backend_version(cache));

    if ((rc = HERMES_REGISTER(cache, foo)) != HERMES_OK ||
        (rc = HERMES_REGISTER(cache, bar, .tags = HERMES_TAGS("math", "power"),
                              .ttl = 1200)) != HERMES_OK ||
        (rc = HERMES_REGISTER_KEYED(cache, baz, baz_key,
                                    .tags = HERMES_TAGS("math", "avg"))) !=
            HERMES_OK) {
        fprintf(stderr, "quickstart: register: %s: %s\n", hermes_strerror(rc),
                hermes_errmsg(cache));
        hermes_close(cache);
        return 1;
    }
    hermes_flush(cache); /* start from a clean slate on shared backends */

    call_all("first calls (computed):");
    call_all("second calls (cached):");

    foo_invalidate(2, 333);
    bar_invalidate(2, 10);
    baz_invalidate(2, 10);
    call_all("after invalidating each entry:");

    hermes_clean(cache, HERMES_TAGS("math"));
    call_all("after clean(math): bar and baz recompute, foo is cached:");

    hermes_flush(cache);
    call_all("after flush:");

    /* foo() always returns a value; foo_try() also says how it got it, so
     * that on_backend_error = fail or on_lock_timeout = fail can be
     * honoured by the caller. */
    int64_t v;
    rc = foo_try(2, 333, &v);
    if (rc == HERMES_OK)
        printf("foo_try(2, 333) = %" PRId64 "\n", v);
    else
        printf("foo_try(2, 333): %s: %s\n", hermes_strerror(rc),
               hermes_errmsg(cache));

    hermes_stats st;
    hermes_stats_get(cache, &st, sizeof st);
    printf("stats: %" PRIu64 " hits, %" PRIu64 " misses, %" PRIu64
           " computations, %" PRIu64 " backend errors\n",
           st.hits, st.misses, st.computations, st.backend_errors);
    hermes_close(cache);
    return 0;
}
