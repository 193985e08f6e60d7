/*
 * hermesctl - the operator's command for a Hermes cache: check that a
 * configuration opens, list the backend plugins the loader can see, clean
 * tags, flush the prefix, show the backend's own statistics and the
 * counters running processes publish, and list the tags, entries and locks
 * under the prefix with each entry's verdict (core/inspect.h).
 *
 * It links the core's convenience library (libhermes-core.la), not the
 * installed libhermes.so, because `plugins` and `stats` need what the
 * shared library does not export: the loader, the config parser and the
 * open backend behind a handle.  Output is plain text, one fact per line,
 * so that scripts can grep it; diagnostics go to stderr.
 *
 * Exit status: 0 success, 1 failure (message on stderr), 2 usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handle.h"
#include "inspect.h"
#include "loader.h"
#include "stats.h"

#ifndef HERMES_PLUGINDIR
#error "HERMES_PLUGINDIR (the installed plugin directory) must be defined"
#endif

#define EXIT_USAGE 2

static const char *progname = "hermesctl";

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s [-c CONFIG] COMMAND [ARGS]\n"
            "\n"
            "Commands:\n"
            "  check       parse the config, load the plugin, open the "
            "backend,\n"
            "              read one key\n"
            "  plugins     list the plugins on the search path, one per "
            "line:\n"
            "              STATUS NAME VERSION ABI PATH DESCRIPTION "
            "(tab-separated;\n"
            "              STATUS is ok, shadowed or error, and for error "
            "the last\n"
            "              field is the reason)\n"
            "  clean TAG...  invalidate every entry tagged with any TAG\n"
            "  flush       delete every key under the configured prefix\n"
            "  stats       the counters each running process publishes "
            "(with lock-wait\n"
            "              percentiles and per-function hits and misses), "
            "then the\n"
            "              backend's own statistics, \"name: value\" per "
            "line\n"
            "  tags        one line per tag: NAME VERSION ENTRIES STALE "
            "STALE_BYTES\n"
            "  entries     one line per entry: STATE FUNCTION SIZE TTL_S "
            "KEY WHY\n"
            "  locks       one line per held lock: ENTRY HOST:PID AGE_MS "
            "TTL_MS\n"
            "  explain KEY why entry KEY (whole key or the part after\n"
            "              PREFIX:entry:) is fresh, stale, expired, "
            "foreign or corrupt\n"
            "  version     versions of hermesctl, the library, the backend "
            "ABI and\n"
            "              each plugin on the search path\n"
            "  counters    the library's counters (hermes_stats), one per "
            "line:\n"
            "              NAME DESCRIPTION (tab-separated)\n"
            "\n"
            "Options:\n"
            "  -c, --config CONFIG  INI file (default: $HERMES_CONFIG, "
            "else the\n"
            "                       built-in defaults: the dict backend)\n"
            "  -h, --help           this text\n"
            "  -V, --version        as the version command\n"
            "\n"
            "Exit status: 0 success, 1 failure, 2 usage error.\n",
            progname);
}

/* The config file in effect: -c, else $HERMES_CONFIG, else none. */
static const char *config_path(const char *opt)
{
    const char *env = getenv("HERMES_CONFIG");
    if (opt)
        return opt;
    return env && *env ? env : NULL;
}

/* ------------------------------------------------------------- opening */

/* Opens the handle or explains why not, in the library's words (which
 * name FILE:LINE: KEY: for config and plugin errors alike). */
static hermes *open_or_report(const char *path)
{
    hermes *h = NULL;
    hermes_rc rc = hermes_open(&h, path);

    if (rc == HERMES_OK)
        return h;
    if (!h) {
        fprintf(stderr, "%s: %s\n", progname, hermes_strerror(rc));
        return NULL;
    }
    const char *msg = hermes_errmsg(h);
    fprintf(stderr, "%s: %s\n", progname, msg[0] ? msg : hermes_strerror(rc));
    hermes_close(h);
    return NULL;
}

/* Clean, flush and stats act on the store this process opens: for an
 * in-process backend that is a fresh, empty one nobody else sees, which
 * the operator should be told rather than left to wonder. */
static void note_if_private(const hermes *h, const char *consequence)
{
    if (!(hm_handle_backend(h)->caps & HERMES_CAP_SHARED))
        fprintf(stderr, "%s: note: backend %s is private to this process: %s\n",
                progname, hm_handle_backend(h)->name, consequence);
}

/* "(built-in)" and "(linked)" are already in parentheses. */
static void print_ok_line(const hermes *h)
{
    const char *path = hm_handle_plugin_path(h);
    if (path[0] == '(')
        printf("ok: backend %s %s %s\n", hm_handle_backend(h)->name,
               hm_handle_backend(h)->version, path);
    else
        printf("ok: backend %s %s (%s)\n", hm_handle_backend(h)->name,
               hm_handle_backend(h)->version, path);
}

static int cmd_check(const char *path)
{
    hermes *h = open_or_report(path);
    if (!h)
        return EXIT_FAILURE;
    /* Plugins connect lazily so that applications start while a server is
     * down; one read of a key nobody writes proves the store answers. */
    void *v = NULL;
    size_t len;
    hermes_rc rc = hermes_get(h, "hermesctl:check", NULL, &v, &len);
    hermes_free(v);
    if (rc != HERMES_OK && rc != HERMES_ENOTFOUND) {
        fprintf(stderr, "%s: backend %s (%s) opened but does not answer: %s\n",
                progname, hm_handle_backend(h)->name, hm_handle_plugin_path(h),
                hermes_errmsg(h));
        hermes_close(h);
        return EXIT_FAILURE;
    }
    print_ok_line(h);
    printf("config: %s\n", hm_handle_config(h)->source);
    printf("prefix: %s\n", hm_handle_config(h)->prefix);
    if (hm_handle_ns_key(h))
        printf("flush: through the namespace key %s (backend %s cannot "
               "delete by prefix)\n",
               hm_handle_ns_key(h), hm_handle_backend(h)->name);
    else
        printf("flush: deletes every key under '%s:'\n",
               hm_handle_config(h)->prefix);
    hermes_close(h);
    return EXIT_SUCCESS;
}

/* ------------------------------------------------------------- plugins */

/* Replaces tabs and control characters so that a field stays one field. */
static void put_field(const char *s, size_t n)
{
    for (size_t i = 0; i < n && s[i]; i++)
        putchar((unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i]);
}

/*
 * One line per plugin file: status, name, version, ABI, path, and the
 * description or the reason it does not load.  A "shadowed" file is one
 * that loading by name would never pick (the built-in dict, or the same
 * name earlier on the path): exactly what an operator wondering "why is
 * my plugin not used?" needs to see.
 */
static void print_plugin(void *arg, const char *path, const hermes_backend *d,
                         const char *err, int shadowed)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t blen = strlen(base);
    if (blen > 3 && (strcmp(base + blen - 3, ".la") == 0 ||
                     strcmp(base + blen - 3, ".so") == 0))
        blen -= 3;
    const char *status = err ? "error" : shadowed ? "shadowed" : "ok";
    fputs(status, stdout);
    putchar('\t');
    if (d)
        put_field(d->name, SIZE_MAX);
    else
        put_field(base, blen);
    putchar('\t');
    put_field(d ? d->version : "-", SIZE_MAX);
    if (d)
        printf("\t%u.%u\t", (unsigned)d->abi_major, (unsigned)d->abi_minor);
    else
        fputs("\t-\t", stdout);
    put_field(path, SIZE_MAX);
    putchar('\t');
    const char *text = err ? err : d->description;
    /* The loader's messages start with the path: no need twice. */
    size_t pl = strlen(path);
    if (err && strncmp(err, path, pl) == 0 && strncmp(err + pl, ": ", 2) == 0)
        text = err + pl + 2;
    put_field(text && *text ? text : "-", SIZE_MAX);
    putchar('\n');
}

/* The config without opening its backend: for the plugin search path. */
static int load_config(const char *path, hm_config *cfg)
{
    char err[1024];
    hermes_rc rc = path ? hm_config_load(path, cfg, err, sizeof err)
                        : hm_config_defaults(cfg);
    if (rc != HERMES_OK) {
        fprintf(stderr, "%s: %s\n", progname,
                rc == HERMES_ENOMEM ? "out of memory" : err);
        return -1;
    }
    return 0;
}

static int cmd_plugins(const char *path)
{
    hm_config cfg;
    if (load_config(path, &cfg) != 0)
        return EXIT_FAILURE;
    hm_plugin_list(cfg.plugin_path, print_plugin, NULL);
    hm_config_free(&cfg);
    return EXIT_SUCCESS;
}

/* "plugin NAME VERSION ABI M.N PATH" for each plugin loading by name
 * would pick; the others are `plugins`' business. */
static void print_plugin_version(void *arg, const char *path,
                                 const hermes_backend *d, const char *err,
                                 int shadowed)
{
    if (!d || shadowed)
        return;
    fputs("plugin ", stdout);
    put_field(d->name, SIZE_MAX);
    putchar(' ');
    put_field(d->version, SIZE_MAX);
    printf(" ABI %u.%u ", (unsigned)d->abi_major, (unsigned)d->abi_minor);
    put_field(path, SIZE_MAX);
    putchar('\n');
}

/* The versions an operator asks for when something does not load: this
 * program's, the library's, the plugin ABI it speaks, each plugin's. */
static int cmd_version(const char *path)
{
    printf("hermesctl %s\n", HERMES_VERSION);
    printf("library %s (0x%06lx)\n", hermes_version(), hermes_version_number());
    printf("backend ABI %d.%d\n", HERMES_BACKEND_ABI_MAJOR,
           HERMES_BACKEND_ABI_MINOR);
    hm_config cfg;
    if (load_config(path, &cfg) != 0)
        return EXIT_FAILURE;
    hm_plugin_list(cfg.plugin_path, print_plugin_version, NULL);
    hm_config_free(&cfg);
    return EXIT_SUCCESS;
}

/* ------------------------------------------------- clean, flush, stats */

static int cmd_clean(const char *path, char **tags)
{
    hermes *h = open_or_report(path);
    if (!h)
        return EXIT_FAILURE;
    size_t n = 0;
    while (tags[n])
        n++;
    note_if_private(h, "no other process sees this clean");
    hermes_rc rc = hermes_clean(h, (const char *const *)tags);
    if (rc != HERMES_OK) {
        fprintf(stderr, "%s: clean: %s\n", progname,
                hermes_errmsg(h)[0] ? hermes_errmsg(h) : hermes_strerror(rc));
        hermes_close(h);
        return EXIT_FAILURE;
    }
    printf("ok: cleaned %zu tag%s\n", n, n == 1 ? "" : "s");
    hermes_close(h);
    return EXIT_SUCCESS;
}

static int cmd_flush(const char *path)
{
    hermes *h = open_or_report(path);
    if (!h)
        return EXIT_FAILURE;
    note_if_private(h, "no other process sees this flush");
    hermes_rc rc = hermes_flush(h);
    if (rc != HERMES_OK) {
        fprintf(stderr, "%s: %s\n", progname,
                hermes_errmsg(h)[0] ? hermes_errmsg(h) : hermes_strerror(rc));
        hermes_close(h);
        return EXIT_FAILURE;
    }
    if (hm_handle_ns_key(h))
        printf("ok: invalidated every entry under '%s:' (backend %s cannot "
               "delete by prefix: the namespace key %s has a new version; the "
               "old entries stay until overwritten, expired or evicted)\n",
               hm_handle_config(h)->prefix, hm_handle_backend(h)->name,
               hm_handle_ns_key(h));
    else
        printf("ok: flushed every key under '%s:'\n",
               hm_handle_config(h)->prefix);
    hermes_close(h);
    return EXIT_SUCCESS;
}

static void print_stat(void *arg, const char *name, const char *value)
{
    put_field(name, SIZE_MAX);
    fputs(": ", stdout);
    put_field(value, SIZE_MAX);
    putchar('\n');
}

/* ------------------------------------------------------- the views */

/* A scan of the prefix, or NULL after saying why. */
static hm_snapshot *snapshot_or_report(hermes *h)
{
    hm_snapshot *s = NULL;
    hermes_rc rc = hm_inspect_scan(h, NULL, &s);
    if (rc != HERMES_OK) {
        fprintf(stderr, "%s: %s\n", progname,
                hermes_errmsg(h)[0] ? hermes_errmsg(h) : hermes_strerror(rc));
        return NULL;
    }
    return s;
}

/* Opens, scans, calls view, closes: the shape of every view. */
static int run_view(const char *path, int (*view)(const hm_snapshot *, void *),
                    void *arg)
{
    hermes *h = open_or_report(path);
    if (!h)
        return EXIT_FAILURE;
    note_if_private(h, "this is a new, empty store");
    hm_snapshot *s = snapshot_or_report(h);
    int rc = s ? view(s, arg) : EXIT_FAILURE;
    hm_snapshot_free(s);
    hermes_close(h);
    return rc;
}

static void put_ttl_s(int64_t ttl_ms)
{
    if (ttl_ms == HM_TTL_NEVER)
        fputs("never", stdout);
    else if (ttl_ms < 0)
        fputs("?", stdout);
    else
        printf("%.1f", (double)ttl_ms / 1000.0);
}

static int view_tags(const hm_snapshot *s, void *arg)
{
    (void)arg;
    for (size_t i = 0; i < s->ntags; i++) {
        const hm_insp_tag *t = &s->tags[i];
        if (t->name)
            put_field(t->name, SIZE_MAX);
        else
            put_field(t->key, SIZE_MAX);
        printf("\t%s\t%zu\t%zu\t%llu\n", t->version_text, t->entries, t->stale,
               (unsigned long long)t->stale_bytes);
    }
    printf("total: %zu tags\n", s->ntags);
    return EXIT_SUCCESS;
}

/* Why an entry is in its state, in a few words (explain says more). */
static void put_why(const hm_insp_entry *e)
{
    if (e->state == HM_STATE_STALE) {
        const hm_insp_etag *t = &e->tags[e->stale_tag];
        fputs("tag ", stdout);
        if (t->name)
            put_field(t->name, SIZE_MAX);
        else
            printf("#%08lx", (unsigned long)t->tag_id);
        fputs(t->tag < 0 ? " gone" : " moved", stdout);
    } else if (e->state == HM_STATE_FOREIGN || e->state == HM_STATE_CORRUPT) {
        put_field(e->why ? e->why : "-", SIZE_MAX);
    } else {
        putchar('-');
    }
}

static int view_entries(const hm_snapshot *s, void *arg)
{
    (void)arg;
    for (size_t i = 0; i < s->nentries; i++) {
        const hm_insp_entry *e = &s->entries[i];
        printf("%s\t", hm_state_name(e->state));
        put_field(e->function ? e->function : "-", SIZE_MAX);
        printf("\t%zu\t", e->size);
        put_ttl_s(e->ttl_ms);
        putchar('\t');
        put_field(e->key, SIZE_MAX);
        putchar('\t');
        put_why(e);
        putchar('\n');
    }
    printf("total: %zu entries", s->nentries);
    for (int st = 0; st < HM_STATE_COUNT; st++)
        printf(", %s %zu (%llu bytes)", hm_state_name((hm_state)st),
               s->state_count[st], (unsigned long long)s->state_bytes[st]);
    putchar('\n');
    return EXIT_SUCCESS;
}

static int view_locks(const hm_snapshot *s, void *arg)
{
    (void)arg;
    for (size_t i = 0; i < s->nlocks; i++) {
        const hm_insp_lock *l = &s->locks[i];
        put_field(l->entry_key, SIZE_MAX);
        if (l->token_ok)
            printf("\t%s:%ld\t%lld\t", l->host, l->pid, (long long)l->age_ms);
        else
            fputs("\t?\t?\t", stdout);
        if (l->ttl_ms >= 0)
            printf("%lld\n", (long long)l->ttl_ms);
        else
            puts(l->ttl_ms == HM_TTL_NEVER ? "never" : "?");
    }
    printf("total: %zu locks\n", s->nlocks);
    return EXIT_SUCCESS;
}

static int view_explain(const hm_snapshot *s, void *arg)
{
    const char *key = arg;
    const hm_insp_entry *e = hm_snapshot_entry(s, key);
    if (!e) {
        fprintf(stderr, "%s: no entry '%s' under the prefix (%zu entries)\n",
                progname, key, s->nentries);
        return EXIT_FAILURE;
    }
    char *text = hm_inspect_explain(s, e);
    if (!text) {
        fprintf(stderr, "%s: out of memory\n", progname);
        return EXIT_FAILURE;
    }
    fputs(text, stdout);
    hermes_free(text);
    return EXIT_SUCCESS;
}

/* Each publishing process: its counters, wait percentiles, functions. */
static void print_procs(const hm_snapshot *s)
{
    for (size_t i = 0; i < s->nprocs; i++) {
        const hm_insp_proc *p = &s->procs[i];
        if (!p->ok) {
            printf("process ?: %s: %s\n", p->key, p->why ? p->why : "");
            continue;
        }
        printf("process %s:%ld: backend %s, published %.1f s ago, every %u "
               "ms\n",
               p->host, p->pid, p->backend,
               ((double)s->taken_ms - (double)p->published_ms) / 1000.0,
               (unsigned)p->interval_ms);
        hm_stats_print(stdout, "  ", &p->stats, NULL);
        static const double pct[] = {50, 90, 99};
        for (size_t j = 0; j < 3; j++)
            printf("  lock_wait_p%.0f_us: %llu\n", pct[j],
                   (unsigned long long)hm_lock_wait_percentile_us(p->lock_wait,
                                                                  pct[j]));
        for (size_t j = 0; j < p->nfns; j++) {
            fputs("  fn ", stdout);
            put_field(p->fns[j].name, SIZE_MAX);
            printf(": hits %llu, misses %llu, tags",
                   (unsigned long long)p->fns[j].hits,
                   (unsigned long long)p->fns[j].misses);
            for (size_t k = 0; k < p->fns[j].ntags; k++) {
                putchar(' ');
                put_field(p->fns[j].tags[k], SIZE_MAX);
            }
            putchar('\n');
        }
    }
}

static int cmd_stats(const char *path)
{
    hermes *h = open_or_report(path);
    if (!h)
        return EXIT_FAILURE;
    unsigned caps = hm_handle_backend(h)->caps;
    if (!(caps & (HERMES_CAP_STATS | HERMES_CAP_SCAN))) {
        fprintf(stderr,
                "%s: backend %s neither reports statistics nor lists the "
                "processes' published counters (no scan)\n",
                progname, hm_handle_backend(h)->name);
        hermes_close(h);
        return EXIT_FAILURE;
    }
    note_if_private(h, "these are the counters of a new, empty store");
    if (caps & HERMES_CAP_SCAN) {
        hm_snapshot *s = snapshot_or_report(h);
        if (!s) {
            hermes_close(h);
            return EXIT_FAILURE;
        }
        print_procs(s);
        hm_snapshot_free(s);
    } else {
        fprintf(stderr,
                "%s: note: backend %s cannot list keys: the processes' "
                "published counters are not shown\n",
                progname, hm_handle_backend(h)->name);
    }
    if (!(caps & HERMES_CAP_STATS)) {
        hermes_close(h);
        return EXIT_SUCCESS;
    }
    /* Called directly, not through backend.c: the same serialization rule
     * applies (the plugin may not be thread-safe). */
    int st = hm_be_stats(h, print_stat, NULL);
    if (st != HERMES_BE_OK) {
        fprintf(stderr, "%s: stats: backend %s: %s\n", progname,
                hm_handle_backend(h)->name, hm_be_status_str(st));
        hermes_close(h);
        return EXIT_FAILURE;
    }
    hermes_close(h);
    return EXIT_SUCCESS;
}

/* The vocabulary of hermes_stats, from the one list (HERMES_STATS_MAP). */
static int cmd_counters(void)
{
    for (size_t i = 0; i < hm_stat_nfields; i++)
        printf("%s\t%s\n", hm_stat_fields[i].name, hm_stat_fields[i].text);
    return EXIT_SUCCESS;
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL;
    bool version = false;
    int c;

    /* '+': options end at the command, so "clean -x" passes "-x" on. */
    while ((c = getopt_long(argc, argv, "+c:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'h':
            usage(stdout);
            return EXIT_SUCCESS;
        case 'V':
            version = true;
            break;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (version)
        return cmd_version(config_path(config));
    if (optind >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[optind];
    char **args = argv + optind + 1;
    int nargs = argc - optind - 1;
    const char *path = config_path(config);

    /* Line by line, so that with 2>&1 a note on stderr lands next to the
     * output it is about. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(cmd, "check") == 0 && nargs == 0)
        return cmd_check(path);
    if (strcmp(cmd, "plugins") == 0 && nargs == 0)
        return cmd_plugins(path);
    if (strcmp(cmd, "clean") == 0 && nargs > 0)
        return cmd_clean(path, args);
    if (strcmp(cmd, "flush") == 0 && nargs == 0)
        return cmd_flush(path);
    if (strcmp(cmd, "stats") == 0 && nargs == 0)
        return cmd_stats(path);
    if (strcmp(cmd, "counters") == 0 && nargs == 0)
        return cmd_counters();
    if (strcmp(cmd, "tags") == 0 && nargs == 0)
        return run_view(path, view_tags, NULL);
    if (strcmp(cmd, "entries") == 0 && nargs == 0)
        return run_view(path, view_entries, NULL);
    if (strcmp(cmd, "locks") == 0 && nargs == 0)
        return run_view(path, view_locks, NULL);
    if (strcmp(cmd, "explain") == 0 && nargs == 1)
        return run_view(path, view_explain, args[0]);
    if (strcmp(cmd, "version") == 0 && nargs == 0)
        return cmd_version(path);
    if (strcmp(cmd, "help") == 0) {
        usage(stdout);
        return EXIT_SUCCESS;
    }
    if (strcmp(cmd, "check") == 0 || strcmp(cmd, "plugins") == 0 ||
        strcmp(cmd, "clean") == 0 || strcmp(cmd, "flush") == 0 ||
        strcmp(cmd, "stats") == 0 || strcmp(cmd, "counters") == 0 ||
        strcmp(cmd, "version") == 0 || strcmp(cmd, "tags") == 0 ||
        strcmp(cmd, "entries") == 0 || strcmp(cmd, "locks") == 0 ||
        strcmp(cmd, "explain") == 0)
        fprintf(stderr, "%s: %s: wrong number of arguments\n", progname, cmd);
    else
        fprintf(stderr, "%s: unknown command '%s'\n", progname, cmd);
    usage(stderr);
    return EXIT_USAGE;
}
