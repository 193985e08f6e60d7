/*
 * The writer behind tests/sdk/hermesctl_views.sh: another process that
 * caches tagged entries through the public API, so that hermesctl's views
 * are checked against what a real application wrote.
 *
 *   write_entries CONFIG fill    power(2,10), power(3,3) tagged ints+math,
 *                                square(7) tagged math, and hermes_set of
 *                                "plain" (no tags); then exits
 *   write_entries CONFIG once    power(2,10) only
 *   write_entries CONFIG serve   the same registrations, then cube(3), an
 *                                untagged function, at once and every 20 ms
 *                                (so its counters and its functions' tag
 *                                lists are published) until its standard
 *                                input is readable or closed
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <poll.h>

#include <hermes/hermes.h>

static int compute(void *arg, hermes_result *res)
{
    const int *ab = arg;
    long long r = 1;
    char text[32];
    for (int i = 0; i < ab[1]; i++)
        r *= ab[0];
    int n = snprintf(text, sizeof text, "%lld", r);
    return hermes_result_set(res, text, (size_t)n) != HERMES_OK;
}

static int call(hermes_fn *fn, int a, int b)
{
    int ab[2] = {a, b};
    void *v;
    size_t n;
    hermes_rc rc = hermes_call(fn, ab, sizeof ab, compute, ab, &v, &n);
    hermes_free(v);
    return rc == HERMES_OK ? 0 : -1;
}

int main(int argc, char **argv)
{
    hermes *h;
    hermes_fn *power, *square, *cube;
    if (argc != 3) {
        fprintf(stderr, "usage: write_entries CONFIG fill|serve\n");
        return 2;
    }
    if (hermes_open(&h, argv[1]) != HERMES_OK) {
        fprintf(stderr, "write_entries: %s\n", hermes_errmsg(h));
        hermes_close(h);
        return 1;
    }
    hermes_fn_options po =
        HERMES_FN_OPTIONS(.tags = HERMES_TAGS("math", "ints"), .ttl = 600);
    hermes_fn_options so =
        HERMES_FN_OPTIONS(.tags = HERMES_TAGS("math"), .ttl = 600);
    if (hermes_fn_register(h, "power", &po, &power) != HERMES_OK ||
        hermes_fn_register(h, "square", &so, &square) != HERMES_OK ||
        hermes_fn_register(h, "cube", NULL, &cube) != HERMES_OK) {
        fprintf(stderr, "write_entries: %s\n", hermes_errmsg(h));
        return 1;
    }
    int bad = 0;
    if (strcmp(argv[2], "fill") == 0) {
        bad |= call(power, 2, 10) | call(power, 3, 3) | call(square, 7, 2);
        bad |= hermes_set(h, "plain", "v", 1, NULL, 0) != HERMES_OK;
    } else if (strcmp(argv[2], "once") == 0) {
        bad |= call(power, 2, 10);
    } else {
        struct pollfd in = {0, POLLIN, 0};
        bad |= call(cube, 3, 3);
        while (poll(&in, 1, 20) == 0)
            bad |= call(cube, 3, 3);
    }
    if (bad)
        fprintf(stderr, "write_entries: %s\n", hermes_errmsg(h));
    hermes_close(h);
    return bad ? 1 : 0;
}
