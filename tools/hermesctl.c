/*
 * hermesctl - the operator's command for a Hermes cache: check that a
 * configuration opens, list the backend plugins the loader can see, clean
 * tags, flush the prefix and show the backend's own statistics.
 *
 * It links the library's objects (libhermes-internal.la) rather than the
 * installed libhermes.so, because `plugins` and `stats` need what the
 * shared library does not export: the loader, the config parser and the
 * open backend behind a handle.  Output is plain text, one fact per line,
 * so that scripts can grep it; diagnostics go to stderr.
 *
 * Exit status: 0 success, 1 failure (message on stderr), 2 usage error.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

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
            "  stats       the backend's own statistics, \"name: value\" "
            "per line\n"
            "\n"
            "Options:\n"
            "  -c, --config CONFIG  INI file (default: $HERMES_CONFIG, "
            "else the\n"
            "                       built-in defaults: the dict backend)\n"
            "  -h, --help           this text\n"
            "  -V, --version        the library version\n"
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

/*
 * Opens the handle or explains why not.  A plugin error does not say which
 * line of the config chose the plugin, so it gets "FILE:LINE: backend: "
 * in front, like every other config error.
 */
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
    const hm_config *cfg = &h->cfg;
    if (rc == HERMES_EPLUGIN && cfg->backend_line > 0 && cfg->source &&
        strncmp(msg, cfg->source, strlen(cfg->source)) != 0)
        fprintf(stderr, "%s: %s:%d: backend: %s\n", progname, cfg->source,
                cfg->backend_line, msg);
    else
        fprintf(stderr, "%s: %s\n", progname,
                msg[0] ? msg : hermes_strerror(rc));
    hermes_close(h);
    return NULL;
}

/* Clean, flush and stats act on the store this process opens: for an
 * in-process backend that is a fresh, empty one nobody else sees, which
 * the operator should be told rather than left to wonder. */
static void note_if_private(const hermes *h, const char *consequence)
{
    if (!(h->be->caps & HERMES_CAP_SHARED))
        fprintf(stderr, "%s: note: backend %s is private to this process: %s\n",
                progname, h->be->name, consequence);
}

/* "(built-in)" and "(linked)" are already in parentheses. */
static void print_ok_line(const hermes *h)
{
    const char *path = h->plugin.path ? h->plugin.path : "?";
    if (path[0] == '(')
        printf("ok: backend %s %s %s\n", h->be->name, h->be->version, path);
    else
        printf("ok: backend %s %s (%s)\n", h->be->name, h->be->version, path);
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
                progname, h->be->name, h->plugin.path, hermes_errmsg(h));
        hermes_close(h);
        return EXIT_FAILURE;
    }
    print_ok_line(h);
    printf("config: %s\n", h->cfg.source);
    printf("prefix: %s\n", h->cfg.prefix);
    hermes_close(h);
    return EXIT_SUCCESS;
}

/* ------------------------------------------------------------- plugins */

typedef struct strv {
    char **v;
    size_t n;
} strv;

static void strv_free(strv *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

static int strv_add(strv *s, const char *p, size_t n)
{
    char **v = realloc(s->v, (s->n + 1) * sizeof *v);
    if (!v)
        return -1;
    s->v = v;
    if (!(s->v[s->n] = strndup(p, n)))
        return -1;
    s->n++;
    return 0;
}

static int strv_has(const strv *s, const char *p)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], p) == 0)
            return 1;
    return 0;
}

/* Components of a colon-separated list, trailing slashes dropped, in the
 * order loader.c searches them. */
static int split_path(strv *out, const char *list)
{
    for (const char *s = list; s && *s;) {
        const char *colon = strchr(s, ':');
        size_t n = colon ? (size_t)(colon - s) : strlen(s);
        while (n > 1 && s[n - 1] == '/')
            n--;
        if (n > 0 && strv_add(out, s, n) != 0)
            return -1;
        s = colon ? colon + 1 : NULL;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replaces tabs and control characters so that a field stays one field. */
static void put_field(const char *s)
{
    for (; s && *s; s++)
        putchar((unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s);
}

static void print_plugin(const char *status, const char *name,
                         const hermes_backend *d, const char *path,
                         const char *text)
{
    fputs(status, stdout);
    putchar('\t');
    put_field(d ? d->name : name);
    putchar('\t');
    put_field(d ? d->version : "-");
    if (d)
        printf("\t%u.%u\t", (unsigned)d->abi_major, (unsigned)d->abi_minor);
    else
        fputs("\t-\t", stdout);
    put_field(path);
    putchar('\t');
    put_field(text && *text ? text : "-");
    putchar('\n');
}

/*
 * Loads one file and prints its line.  A name already seen (the built-in
 * dict, or the same name earlier on the path) is "shadowed": loading by
 * name would never pick this file, which is exactly what an operator
 * wondering "why is my plugin not used?" needs to see.
 */
static void list_file(const char *path, const char *name, strv *seen)
{
    char err[1024];
    hm_plugin p;
    hermes_rc rc = hm_plugin_load(path, NULL, &p, err, sizeof err);

    if (rc != HERMES_OK) {
        /* The loader's messages start with the path: no need twice. */
        const char *reason = err;
        size_t pl = strlen(path);
        if (strncmp(err, path, pl) == 0 && strncmp(err + pl, ": ", 2) == 0)
            reason = err + pl + 2;
        print_plugin("error", name, NULL, path, reason);
        return;
    }
    const char *desc = p.desc->description ? p.desc->description : "";
    print_plugin(strv_has(seen, name) ? "shadowed" : "ok", name, p.desc, path,
                 desc);
    hm_plugin_unload(&p);
}

static int list_dir(const char *dir, strv *seen)
{
    strv files = {NULL, 0};
    DIR *d = opendir(dir);
    struct dirent *e;

    if (!d)
        return 0; /* a missing directory on the path is not an error */
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n > 3 &&
            (strcmp(e->d_name + n - 3, ".la") == 0 ||
             strcmp(e->d_name + n - 3, ".so") == 0) &&
            strv_add(&files, e->d_name, n) != 0) {
            closedir(d);
            strv_free(&files);
            return -1;
        }
    }
    closedir(d);
    /* Sorted, "x.la" comes before "x.so": the loader's preference. */
    if (files.n > 1)
        qsort(files.v, files.n, sizeof *files.v, cmp_str);
    for (size_t i = 0; i < files.n; i++) {
        const char *f = files.v[i];
        size_t flen = strlen(f);
        size_t plen = strlen(dir) + 1 + flen + 1;
        char *path = malloc(plen);
        char *name = strndup(f, flen - 3);
        if (!path || !name) {
            free(path);
            free(name);
            strv_free(&files);
            return -1;
        }
        snprintf(path, plen, "%s/%s", dir, f);
        list_file(path, name, seen);
        int rc = strv_has(seen, name) ? 0 : strv_add(seen, name, flen - 3);
        free(path);
        free(name);
        if (rc != 0) {
            strv_free(&files);
            return -1;
        }
    }
    strv_free(&files);
    return 0;
}

static int cmd_plugins(const char *path)
{
    hm_config cfg;
    char err[1024];
    hermes_rc rc = path ? hm_config_load(path, &cfg, err, sizeof err)
                        : hm_config_defaults(&cfg);
    if (rc != HERMES_OK) {
        fprintf(stderr, "%s: %s\n", progname,
                rc == HERMES_ENOMEM ? "out of memory" : err);
        return EXIT_FAILURE;
    }

    strv dirs = {NULL, 0}, seen = {NULL, 0};
    int status = EXIT_SUCCESS;
    const hermes_backend *builtin = hm_dict_backend();
    if (hm_plugin_check(builtin, "(built-in)", err, sizeof err) == HERMES_OK)
        print_plugin("ok", "dict", builtin, "(built-in)", builtin->description);
    else
        print_plugin("error", "dict", NULL, "(built-in)", err);
    if (strv_add(&seen, "dict", 4) != 0 ||
        split_path(&dirs, cfg.plugin_path) != 0 ||
        split_path(&dirs, getenv("HERMES_PLUGIN_PATH")) != 0 ||
        split_path(&dirs, HERMES_PLUGINDIR) != 0)
        goto nomem;
    for (size_t i = 0; i < dirs.n; i++) {
        /* The same directory twice on the path adds nothing. */
        int dup = 0;
        for (size_t j = 0; j < i && !dup; j++)
            dup = strcmp(dirs.v[i], dirs.v[j]) == 0;
        if (!dup && list_dir(dirs.v[i], &seen) != 0)
            goto nomem;
    }
    goto out;
nomem:
    fprintf(stderr, "%s: out of memory\n", progname);
    status = EXIT_FAILURE;
out:
    strv_free(&dirs);
    strv_free(&seen);
    hm_config_free(&cfg);
    return status;
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
    printf("ok: flushed every key under '%s:'\n", h->cfg.prefix);
    hermes_close(h);
    return EXIT_SUCCESS;
}

static void print_stat(void *arg, const char *name, const char *value)
{
    put_field(name);
    fputs(": ", stdout);
    put_field(value);
    putchar('\n');
}

static int cmd_stats(const char *path)
{
    hermes *h = open_or_report(path);
    if (!h)
        return EXIT_FAILURE;
    if (!(h->be->caps & HERMES_CAP_STATS)) {
        fprintf(stderr, "%s: backend %s does not report statistics\n", progname,
                h->be->name);
        hermes_close(h);
        return EXIT_FAILURE;
    }
    note_if_private(h, "these are the counters of a new, empty store");
    /* Called directly, not through backend.c: the same serialization rule
     * applies (the plugin may not be thread-safe). */
    if (h->be_serialize)
        pthread_mutex_lock(&h->be_mu);
    int st = h->be->stats(h->be_state, print_stat, NULL);
    if (h->be_serialize)
        pthread_mutex_unlock(&h->be_mu);
    if (st != HERMES_BE_OK) {
        fprintf(stderr, "%s: stats: backend %s: %s\n", progname, h->be->name,
                hm_be_status_str(st));
        hermes_close(h);
        return EXIT_FAILURE;
    }
    hermes_close(h);
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
            printf("hermesctl %s\n", HERMES_VERSION);
            return EXIT_SUCCESS;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
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
    if (strcmp(cmd, "help") == 0) {
        usage(stdout);
        return EXIT_SUCCESS;
    }
    if (strcmp(cmd, "check") == 0 || strcmp(cmd, "plugins") == 0 ||
        strcmp(cmd, "clean") == 0 || strcmp(cmd, "flush") == 0 ||
        strcmp(cmd, "stats") == 0)
        fprintf(stderr, "%s: %s: wrong number of arguments\n", progname, cmd);
    else
        fprintf(stderr, "%s: unknown command '%s'\n", progname, cmd);
    usage(stderr);
    return EXIT_USAGE;
}
