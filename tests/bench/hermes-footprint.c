/*
 * hermes-footprint - what one cached entry costs in memory on the dict
 * backend: stores N entries (default 10^6) of a V-byte value (default 100)
 * under T tags (default 2) through hermes_call(), exactly as a cached
 * function would, and reports the growth of the process's resident set per
 * entry and its ratio to the payload.
 *
 *   hermes-footprint [-n ENTRIES] [-v VALUE_BYTES] [-t TAGS]
 *
 * The dict's memory limit is lifted (max_bytes = 0) so that nothing is
 * evicted.  RSS comes from /proc/self/statm, read before the first entry
 * and after the last.  Not run by `make check`: it is a measurement.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hermes/hermes.h>

static const char *const all_tags[] = {"footprint-a", "footprint-b",
                                       "footprint-c", "footprint-d", NULL};

static long rss_bytes(void)
{
    long size, resident;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    int got = fscanf(f, "%ld %ld", &size, &resident);
    fclose(f);
    return got == 2 ? resident * sysconf(_SC_PAGESIZE) : -1;
}

typedef struct fill {
    size_t len;
    unsigned long long i;
} fill;

static int compute(void *arg, hermes_result *res)
{
    fill *f = arg;
    char *v = malloc(f->len ? f->len : 1);
    if (!v)
        return 1;
    for (size_t k = 0; k < f->len; k++)
        v[k] = (char)('a' + (f->i + k) % 26);
    hermes_rc rc = hermes_result_set(res, v, f->len);
    free(v);
    return rc != HERMES_OK;
}

static unsigned long arg_of(const char *s, const char *what)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*s == '\0' || *end != '\0') {
        fprintf(stderr, "hermes-footprint: %s: not a number: '%s'\n", what, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    unsigned long n = 1000000, vlen = 100, ntags = 2;
    int opt;
    while ((opt = getopt(argc, argv, "n:v:t:")) != -1) {
        if (opt == 'n')
            n = arg_of(optarg, "-n");
        else if (opt == 'v')
            vlen = arg_of(optarg, "-v");
        else if (opt == 't')
            ntags = arg_of(optarg, "-t");
        else {
            fprintf(stderr, "usage: hermes-footprint [-n ENTRIES] "
                            "[-v VALUE_BYTES] [-t TAGS (0-4)]\n");
            return 2;
        }
    }
    if (ntags > 4 || n == 0 || vlen == 0) {
        fprintf(stderr, "hermes-footprint: need -n > 0, -v > 0, -t 0-4\n");
        return 2;
    }
    hermes *h;
    if (hermes_open_string(&h, "[dict]\nmax_bytes = 0\n", "footprint") !=
        HERMES_OK) {
        fprintf(stderr, "hermes-footprint: %s\n", hermes_errmsg(h));
        hermes_close(h);
        return 1;
    }
    const char *tags[5] = {NULL};
    for (unsigned long t = 0; t < ntags; t++)
        tags[t] = all_tags[t];
    hermes_fn *fn;
    hermes_fn_options o = HERMES_FN_OPTIONS(.tags = tags);
    if (hermes_fn_register(h, "footprint", &o, &fn) != HERMES_OK) {
        fprintf(stderr, "hermes-footprint: %s\n", hermes_errmsg(h));
        hermes_close(h);
        return 1;
    }
    long before = rss_bytes();
    fill f = {vlen, 0};
    for (f.i = 0; f.i < n; f.i++) {
        hermes_args a = HERMES_ARGS_INIT;
        hermes_args_int(&a, (int64_t)f.i);
        void *v;
        size_t len;
        hermes_rc rc = hermes_call(fn, hermes_args_data(&a),
                                   hermes_args_len(&a), compute, &f, &v, &len);
        hermes_args_free(&a);
        if (rc != HERMES_OK) {
            fprintf(stderr, "hermes-footprint: call %llu: %s\n", f.i,
                    hermes_errmsg(h));
            hermes_close(h);
            return 1;
        }
        hermes_free(v);
    }
    long after = rss_bytes();
    hermes_stats s;
    hermes_stats_get(h, &s, sizeof s);
    if (before < 0 || after < 0 || s.computations != n) {
        fprintf(stderr,
                "hermes-footprint: could not measure (rss %ld -> %ld, "
                "%llu computations)\n",
                before, after, (unsigned long long)s.computations);
        hermes_close(h);
        return 1;
    }
    double per = (double)(after - before) / (double)n;
    printf("entries %lu  value %lu B  tags %lu  rss %+ld B  %.1f B/entry  "
           "x%.2f of the payload\n",
           n, vlen, ntags, after - before, per, per / (double)vlen);
    hermes_close(h);
    return 0;
}
