/*
 * hermes-inspect-bench: what the inspection layer and stats publication
 * cost (README "Inspection and published statistics").
 *
 *   hermes-inspect-bench scan PLUGIN_DIR PORT [N] [ROUNDS]
 *       writes N (default 100000) tagged entries to the redis on PORT
 *       (prefix "ibench"), then times ROUNDS (default 5) hm_inspect_scan()
 *       calls of the whole prefix: keys per second, median and range.
 *   hermes-inspect-bench publish [PLUGIN_DIR PORT] [OPS] [ROUNDS]
 *       hits of one tagged entry through two handles on the same store,
 *       one publishing its stats (publish_interval_ms = 100, 50 times the
 *       default rate) and one not, in alternating rounds of OPS calls
 *       (default 200000; 20000 on redis): ns per hit of each and their
 *       ratio, median and range over ROUNDS (default 11).  Without a port,
 *       on the dict backend (PLUGIN_DIR is told from OPS by its "/").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handle.h"
#include "host.h"
#include "inspect.h"

static hermes *open_text(const char *dir, const char *port, const char *extra)
{
    char text[1024];
    hermes *h;
    if (port)
        snprintf(text, sizeof text,
                 "[hermes]\nbackend = redis\nplugin_path = %s\nprefix = "
                 "ibench\n%s\n[redis]\nport = %s\n",
                 dir, extra, port);
    else
        snprintf(text, sizeof text, "[hermes]\nprefix = ibench\n%s\n", extra);
    if (hermes_open_string(&h, text, "hermes-inspect-bench") != HERMES_OK) {
        fprintf(stderr, "open: %s\n", hermes_errmsg(h));
        exit(1);
    }
    return h;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *what, double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_d);
    printf("%s: median %.4g, range %.4g .. %.4g (%zu rounds)\n", what, v[n / 2],
           v[0], v[n - 1], n);
}

static int compute(void *arg, hermes_result *res)
{
    (void)arg;
    return hermes_result_set(res, "value", 5) != HERMES_OK;
}

static int scan_bench(const char *dir, const char *port, long n, int rounds)
{
    hermes *h = open_text(dir, port, "publish_stats = no");
    hermes_flush(h);
    for (long i = 0; i < n; i++) {
        char k[32];
        snprintf(k, sizeof k, "k%ld", i);
        if (hermes_set(h, k, "0123456789", 10,
                       HERMES_TAGS(i % 2 ? "odd" : "even", "all"),
                       0) != HERMES_OK) {
            fprintf(stderr, "set: %s\n", hermes_errmsg(h));
            return 1;
        }
    }
    double *kps = calloc((size_t)rounds, sizeof *kps);
    for (int r = 0; r < rounds; r++) {
        hm_snapshot *s;
        uint64_t t0 = hm_monotonic_ns();
        if (hm_inspect_scan(h, NULL, &s) != HERMES_OK) {
            fprintf(stderr, "scan: %s\n", hermes_errmsg(h));
            return 1;
        }
        double sec = (double)(hm_monotonic_ns() - t0) / 1e9;
        kps[r] = (double)s->nkeys / sec;
        if (r == 0)
            printf("# %zu keys (%zu entries, %zu tags), %.2f s\n", s->nkeys,
                   s->nentries, s->ntags, sec);
        hm_snapshot_free(s);
    }
    report("scan keys/s", kps, (size_t)rounds);
    free(kps);
    hermes_flush(h);
    hermes_close(h);
    return 0;
}

/* ns per hit of `ops` calls of fn. */
static double hits(hermes_fn *fn, long ops)
{
    uint64_t t0 = hm_monotonic_ns();
    for (long i = 0; i < ops; i++) {
        void *v;
        size_t len;
        if (hermes_call(fn, "a", 1, compute, NULL, &v, &len) != HERMES_OK)
            exit(1);
        hermes_free(v);
    }
    return (double)(hm_monotonic_ns() - t0) / (double)ops;
}

static int publish_bench(const char *dir, const char *port, long ops,
                         int rounds)
{
    hermes *on =
        open_text(dir, port, "publish_stats = yes\npublish_interval_ms = 100");
    hermes *off = open_text(dir, port, "publish_stats = no");
    hermes_fn *fon, *foff;
    hermes_fn_options o = HERMES_FN_OPTIONS(.tags = HERMES_TAGS("a", "b"));
    if (hermes_fn_register(on, "hit2", &o, &fon) != HERMES_OK ||
        hermes_fn_register(off, "hit2", &o, &foff) != HERMES_OK)
        return 1;
    hits(fon, 1000); /* the entry, and warm-up */
    hits(foff, 1000);
    double *ns_on = calloc((size_t)rounds, sizeof(double));
    double *ns_off = calloc((size_t)rounds, sizeof(double));
    double *ratio = calloc((size_t)rounds, sizeof(double));
    for (int r = 0; r < rounds; r++) {
        /* Alternating which goes first, so drift favours neither. */
        if (r % 2) {
            ns_on[r] = hits(fon, ops);
            ns_off[r] = hits(foff, ops);
        } else {
            ns_off[r] = hits(foff, ops);
            ns_on[r] = hits(fon, ops);
        }
        ratio[r] = ns_on[r] / ns_off[r];
    }
    printf("# backend %s, %ld hits per round and handle\n",
           hermes_backend_name(on), ops);
    report("ns per hit, publication on ", ns_on, (size_t)rounds);
    report("ns per hit, publication off", ns_off, (size_t)rounds);
    report("ratio on/off", ratio, (size_t)rounds);
    free(ns_on);
    free(ns_off);
    free(ratio);
    hermes_close(on);
    hermes_close(off);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "scan") == 0)
        return scan_bench(argv[2], argv[3], argc > 4 ? atol(argv[4]) : 100000,
                          argc > 5 ? atoi(argv[5]) : 5);
    if (argc >= 2 && strcmp(argv[1], "publish") == 0) {
        bool redis = argc >= 4 && strchr(argv[2], '/') != NULL;
        int a = redis ? 4 : 2;
        return publish_bench(redis ? argv[2] : NULL, redis ? argv[3] : NULL,
                             argc > a ? atol(argv[a])
                             : redis  ? 20000
                                      : 200000,
                             argc > a + 1 ? atoi(argv[a + 1]) : 11);
    }
    fprintf(stderr, "usage: hermes-inspect-bench scan PLUGIN_DIR PORT [N] "
                    "[ROUNDS]\n"
                    "       hermes-inspect-bench publish [PLUGIN_DIR PORT] "
                    "[OPS] [ROUNDS]\n");
    return 2;
}
