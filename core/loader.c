/*
 * The plugin loader: finds a backend by name or path, opens it with
 * libltdl, looks up its entry function and checks the descriptor against
 * the ABI this core speaks before anything else touches it.  "dict" is the
 * built-in backend and never comes from a file.
 *
 * libltdl keeps its error state (lt_dlerror) and handle list in globals
 * that are not thread-safe, so lt_dlinit runs once (pthread_once) and every
 * lt_* call, together with the lt_dlerror that reads its outcome, happens
 * under one mutex.  That mutex is the only global mutable state here.
 *
 * Every error names the file it is about (or, when nothing was found, every
 * place that was searched), so that an operator can fix it from the
 * message alone.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ltdl.h>

#include "dict.h"
#include "loader.h"

#ifndef HERMES_PLUGINDIR
#error "HERMES_PLUGINDIR (the installed plugin directory) must be defined"
#endif

#define BUILTIN_NAME "dict"
#define BUILTIN_PATH "(built-in)"

static pthread_once_t lt_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t lt_mutex = PTHREAD_MUTEX_INITIALIZER;
/* Written once inside lt_once, read-only afterwards. */
static char lt_init_error[256];

static void lt_setup(void)
{
    pthread_mutex_lock(&lt_mutex);
    if (lt_dlinit() != 0) {
        const char *e = lt_dlerror();
        snprintf(lt_init_error, sizeof lt_init_error, "lt_dlinit failed: %s",
                 e != NULL ? e : "unknown error");
    }
    pthread_mutex_unlock(&lt_mutex);
}

void hm_loader_lock(void)
{
    pthread_mutex_lock(&lt_mutex);
}

void hm_loader_unlock(void)
{
    pthread_mutex_unlock(&lt_mutex);
}

__attribute__((format(printf, 3, 4))) static hermes_rc
seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return HERMES_EPLUGIN;
}

static int valid_name(const char *s)
{
    if (s == NULL || *s == '\0')
        return 0;
    for (; *s != '\0'; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return 0;
    return 1;
}

/*
 * The extension rule of <hermes/backend.h>, checked.  The order matters:
 * each check makes the next safe.  The first eight bytes (versions and
 * size) exist in every ABI, and no field past them is read before
 * struct_size is known to cover ABI 1.0.
 */
hermes_rc hm_plugin_check(const hermes_backend *d, const char *path, char *err,
                          size_t errlen)
{
    if (path == NULL)
        path = "(unknown)";
    if (d == NULL)
        return seterr(err, errlen, "%s: hermes_backend_entry returned NULL",
                      path);
    if (d->abi_major != HERMES_BACKEND_ABI_MAJOR)
        return seterr(err, errlen, "%s: ABI major %u, this core speaks %u",
                      path, (unsigned)d->abi_major,
                      (unsigned)HERMES_BACKEND_ABI_MAJOR);
    if (d->abi_minor > HERMES_BACKEND_ABI_MINOR)
        return seterr(err, errlen,
                      "%s: ABI %u.%u is newer than this core's "
                      "%u.%u (upgrade Hermes, or rebuild the plugin against "
                      "this SDK)",
                      path, (unsigned)d->abi_major, (unsigned)d->abi_minor,
                      (unsigned)HERMES_BACKEND_ABI_MAJOR,
                      (unsigned)HERMES_BACKEND_ABI_MINOR);
    if (d->struct_size < HERMES_BACKEND_SIZE_1_0)
        return seterr(err, errlen,
                      "%s: descriptor struct_size %u smaller than ABI 1.0's "
                      "%zu",
                      path, (unsigned)d->struct_size,
                      (size_t)HERMES_BACKEND_SIZE_1_0);
    /* Only a header that is not this ABI's makes a larger one with a
     * minor this core knows: its fields cannot be what we would read. */
    if (d->struct_size > sizeof(hermes_backend))
        return seterr(
            err, errlen,
            "%s: descriptor struct_size %u larger than ABI %u.%u's "
            "%zu, although it says ABI %u.%u",
            path, (unsigned)d->struct_size, (unsigned)HERMES_BACKEND_ABI_MAJOR,
            (unsigned)HERMES_BACKEND_ABI_MINOR, sizeof(hermes_backend),
            (unsigned)d->abi_major, (unsigned)d->abi_minor);
    if (!valid_name(d->name))
        return seterr(err, errlen, "%s: descriptor has no valid name", path);
    if (d->version == NULL)
        return seterr(err, errlen, "%s: descriptor has no version", path);

    const struct {
        const char *name;
        int missing;
    } ops[] = {
        {"open", d->open == NULL},     {"close", d->close == NULL},
        {"get", d->get == NULL},       {"set", d->set == NULL},
        {"del", d->del == NULL},       {"lock", d->lock == NULL},
        {"unlock", d->unlock == NULL}, {"flush", d->flush == NULL},
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (ops[i].missing)
            return seterr(err, errlen, "%s: mandatory operation '%s' is NULL",
                          path, ops[i].name);
    if ((d->caps & HERMES_CAP_SCAN) && d->scan == NULL)
        return seterr(err, errlen,
                      "%s: declares HERMES_CAP_SCAN but operation 'scan' is "
                      "NULL",
                      path);
    if ((d->caps & HERMES_CAP_STATS) && d->stats == NULL)
        return seterr(err, errlen,
                      "%s: declares HERMES_CAP_STATS but operation 'stats' "
                      "is NULL",
                      path);
    return HERMES_OK;
}

/* The value of a "key='value'" line of a libtool .la file, or NULL. */
static char *la_value(const char *line, const char *key)
{
    size_t k = strlen(key);
    if (strncmp(line, key, k) != 0 || line[k] != '=' || line[k + 1] != '\'')
        return NULL;
    const char *v = line + k + 2, *q = strchr(v, '\'');
    return q != NULL ? strndup(v, (size_t)(q - v)) : NULL;
}

/*
 * Why lt_dlopen failed on a file that exists.  libltdl tries each of its
 * loaders in turn and the last one overwrites dlopen's reason with "file
 * not found" (or leaves "unknown error" for a bad .la), which misleads
 * exactly when the file is there.  So find the shared object libltdl
 * would have opened (for a .la: libdir/dlname when installed, then
 * DIR/.libs/dlname and DIR/dlname, as libltdl does) and ask dlopen itself.
 * Writes nothing when no better reason is found.
 */
static void diagnose(const char *path, char *buf, size_t len)
{
    size_t n = strlen(path);
    char *so = NULL;

    if (n > 3 && strcmp(path + n - 3, ".la") == 0) {
        FILE *f = fopen(path, "r");
        char line[4096], *dlname = NULL, *libdir = NULL;
        int installed = 1; /* libtool's own default */
        if (f == NULL)
            return;
        while (fgets(line, sizeof line, f) != NULL) {
            char *v;
            if (dlname == NULL && (v = la_value(line, "dlname")) != NULL)
                dlname = v;
            else if (libdir == NULL && (v = la_value(line, "libdir")) != NULL)
                libdir = v;
            else if (strcmp(line, "installed=no\n") == 0)
                installed = 0;
        }
        fclose(f);
        if (dlname == NULL || *dlname == '\0') {
            snprintf(buf, len, "not a libtool module (no dlname)");
        } else {
            const char *slash = strrchr(path, '/');
            int dn = slash != NULL ? (int)(slash - path) : 1;
            const char *dir = slash != NULL ? path : ".";
            char cand[3][4096];
            int nc = 0;
            if (installed && libdir != NULL)
                snprintf(cand[nc++], sizeof cand[0], "%s/%s", libdir, dlname);
            if (!installed)
                snprintf(cand[nc++], sizeof cand[0], "%.*s/.libs/%s", dn, dir,
                         dlname);
            snprintf(cand[nc++], sizeof cand[0], "%.*s/%s", dn, dir, dlname);
            for (int i = 0; i < nc && so == NULL; i++)
                if (access(cand[i], F_OK) == 0)
                    so = strdup(cand[i]);
            if (so == NULL)
                snprintf(buf, len, "its shared object %s is missing", dlname);
        }
        free(dlname);
        free(libdir);
        if (so == NULL)
            return;
    } else {
        so = strdup(path);
        if (so == NULL)
            return;
    }

    /* Same flags as libltdl, so the same failure shows; dlerror is
     * per-thread in glibc, so no lock is needed for it. */
    void *h = dlopen(so, RTLD_LAZY | RTLD_LOCAL);
    if (h == NULL) {
        const char *e = dlerror();
        if (e != NULL)
            snprintf(buf, len, "%s", e);
    } else {
        dlclose(h);
    }
    free(so);
}

hermes_rc hm_plugin_adopt(const hermes_backend *d, const char *path,
                          hm_plugin *out, char *err, size_t errlen)
{
    hermes_rc rc = hm_plugin_check(d, path, err, errlen);
    if (rc != HERMES_OK)
        return rc;
    if (out->path == NULL && (out->path = strdup(path)) == NULL) {
        seterr(err, errlen, "%s: out of memory", path);
        return HERMES_ENOMEM;
    }
    /* The fields struct_size covers, and NULL or 0 for the rest. */
    memset(&out->copy, 0, sizeof out->copy);
    memcpy(&out->copy, d, d->struct_size);
    out->desc = &out->copy;
    return HERMES_OK;
}

static hermes_rc load_builtin(hm_plugin *out, char *err, size_t errlen)
{
    hermes_rc rc =
        hm_plugin_adopt(hm_dict_backend(), BUILTIN_PATH, out, err, errlen);
    out->builtin = rc == HERMES_OK;
    return rc;
}

/*
 * Refuses what is not a plugin file before libltdl sees it: libltdl
 * asserts (and aborts the process) on a path whose last component is
 * empty, such as "/" or "dir/", and would block in open() on a FIFO.  A
 * path that does not exist is left to lt_dlopen, whose message says so.
 */
static hermes_rc check_path(const char *path, char *err, size_t errlen)
{
    struct stat st;
    size_t n = strlen(path);

    if (n == 0)
        return seterr(err, errlen, "no backend given");
    if (path[n - 1] == '/')
        return seterr(err, errlen,
                      "%s: cannot load: ends in '/': a directory, not a "
                      "plugin file",
                      path);
    if (stat(path, &st) != 0)
        return HERMES_OK;
    if (S_ISDIR(st.st_mode))
        return seterr(err, errlen,
                      "%s: cannot load: is a directory, not a plugin file",
                      path);
    if (!S_ISREG(st.st_mode))
        return seterr(err, errlen, "%s: cannot load: not a regular file", path);
    return HERMES_OK;
}

/* Opens one file, finds its entry, validates the descriptor. */
static hermes_rc load_file(const char *path, hm_plugin *out, char *err,
                           size_t errlen)
{
    hermes_rc rc = check_path(path, err, errlen);
    if (rc != HERMES_OK)
        return rc;
    pthread_once(&lt_once, lt_setup);
    if (lt_init_error[0] != '\0')
        return seterr(err, errlen, "%s: cannot load: %s", path, lt_init_error);

    char *copy = strdup(path);
    if (copy == NULL) {
        seterr(err, errlen, "%s: out of memory", path);
        return HERMES_ENOMEM;
    }

    pthread_mutex_lock(&lt_mutex);
    /* Resident: lt_dlclose() leaves the module mapped.  A plugin's
     * thread-local variables would otherwise leave every thread that used
     * them a dynamic TLS block of an unloaded module, which LeakSanitizer
     * then reads at exit and crashes on ("Tracer caught signal 11",
     * test_inspect_redis under load); glibc's own NSS modules are never
     * unloaded either.  A module loaded again is the one already mapped. */
    lt_dladvise advise;
    lt_dlhandle h = NULL;
    if (lt_dladvise_init(&advise) == 0) {
        if (lt_dladvise_resident(&advise) == 0)
            h = lt_dlopenadvise(path, advise);
        lt_dladvise_destroy(&advise);
    }
    if (h == NULL) {
        /* Read the reason before another thread's call replaces it. */
        char reason[512];
        const char *e = lt_dlerror();
        snprintf(reason, sizeof reason, "%s", e != NULL ? e : "unknown error");
        pthread_mutex_unlock(&lt_mutex);
        if (access(path, F_OK) == 0)
            diagnose(path, reason, sizeof reason);
        free(copy);
        return seterr(err, errlen, "%s: cannot load: %s", path, reason);
    }
    void *sym = lt_dlsym(h, HERMES_BACKEND_ENTRY_SYMBOL);
    if (sym == NULL)
        lt_dlclose(h);
    pthread_mutex_unlock(&lt_mutex);
    if (sym == NULL) {
        free(copy);
        return seterr(err, errlen,
                      "%s: no " HERMES_BACKEND_ENTRY_SYMBOL
                      " symbol: not a Hermes plugin",
                      path);
    }

    /* POSIX guarantees a data pointer from dlsym converts to a function
     * pointer; the union says so without a cast ISO C frowns on. */
    union {
        void *p;
        hermes_backend_entry_fn fn;
    } entry;
    entry.p = sym;
    out->path = copy;
    rc = hm_plugin_adopt(entry.fn(), path, out, err, errlen);
    if (rc != HERMES_OK) {
        pthread_mutex_lock(&lt_mutex);
        lt_dlclose(h);
        pthread_mutex_unlock(&lt_mutex);
        free(copy);
        out->path = NULL;
        return rc;
    }
    out->dl = h;
    return HERMES_OK;
}

/* The directories searched for a bare name, in order. */
typedef struct dirlist {
    char **v;
    size_t n;
} dirlist;

static void dirlist_free(dirlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* Appends each non-empty component of a colon-separated list, without
 * trailing slashes so that messages show "dir/x.la", not "dir//x.la". */
static int dirlist_add(dirlist *l, const char *list)
{
    const char *s = list;

    while (s != NULL && *s != '\0') {
        const char *colon = strchr(s, ':');
        size_t n = colon != NULL ? (size_t)(colon - s) : strlen(s);
        while (n > 1 && s[n - 1] == '/')
            n--;
        if (n > 0) {
            char **v = realloc(l->v, (l->n + 1) * sizeof *v);
            if (v == NULL)
                return -1;
            l->v = v;
            if ((l->v[l->n] = strndup(s, n)) == NULL)
                return -1;
            l->n++;
        }
        s = colon != NULL ? colon + 1 : NULL;
    }
    return 0;
}

static int dirlist_build(dirlist *l, const char *plugin_path)
{
    l->v = NULL;
    l->n = 0;
    if (dirlist_add(l, plugin_path) != 0 ||
        dirlist_add(l, getenv("HERMES_PLUGIN_PATH")) != 0 ||
        dirlist_add(l, HERMES_PLUGINDIR) != 0) {
        dirlist_free(l);
        return -1;
    }
    return 0;
}

static char *join(const char *dir, const char *name, const char *ext)
{
    size_t n = strlen(dir) + strlen(name) + strlen(ext) + 2;
    char *p = malloc(n);
    if (p != NULL)
        snprintf(p, n, "%s/%s%s", dir, name, ext);
    return p;
}

/* The "not found" message: every candidate, so the operator sees where
 * the file should have been. */
static hermes_rc not_found(const char *name, const dirlist *l, char *err,
                           size_t errlen)
{
    if (err == NULL || errlen == 0)
        return HERMES_EPLUGIN;
    size_t o = 0;
    int n = snprintf(err, errlen, "plugin '%s' not found; looked in: ", name);
    for (size_t i = 0; n >= 0 && i < l->n; i++) {
        o += (size_t)n;
        if (o >= errlen)
            break;
        n = snprintf(err + o, errlen - o, "%s%s/%s.{la,so}", i ? ", " : "",
                     l->v[i], name);
    }
    return HERMES_EPLUGIN;
}

hermes_rc hm_plugin_load(const char *spec, const char *plugin_path,
                         hm_plugin *out, char *err, size_t errlen)
{
    static const char *const exts[] = {".la", ".so"};

    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (spec == NULL || *spec == '\0' || out == NULL) {
        seterr(err, errlen, "no backend given");
        return HERMES_EINVAL;
    }
    if (strcmp(spec, BUILTIN_NAME) == 0)
        return load_builtin(out, err, errlen);
    if (strcmp(spec, ".") == 0 || strcmp(spec, "..") == 0)
        return seterr(err, errlen,
                      "backend '%s' is a directory, not a plugin name or a "
                      "path to a .so/.la file",
                      spec);
    if (strchr(spec, '/') != NULL)
        return load_file(spec, out, err, errlen);

    dirlist l;
    if (dirlist_build(&l, plugin_path) != 0)
        goto nomem;
    for (size_t i = 0; i < l.n; i++) {
        for (size_t j = 0; j < 2; j++) {
            char *path = join(l.v[i], spec, exts[j]);
            if (path == NULL) {
                dirlist_free(&l);
                goto nomem;
            }
            /* Existence decides the search; whether it opens is the
             * answer, so a broken file is reported, not skipped. */
            if (access(path, F_OK) == 0) {
                hermes_rc rc = load_file(path, out, err, errlen);
                free(path);
                dirlist_free(&l);
                return rc;
            }
            free(path);
        }
    }
    hermes_rc rc = not_found(spec, &l, err, errlen);
    dirlist_free(&l);
    return rc;

nomem:
    seterr(err, errlen, "plugin '%s': out of memory", spec);
    return HERMES_ENOMEM;
}

int hm_plugin_exists(const char *name, const char *plugin_path)
{
    static const char *const exts[] = {".la", ".so"};
    dirlist l;
    int found = 0;

    if (strcmp(name, BUILTIN_NAME) == 0)
        return 1;
    if (*name == '\0' || strchr(name, '/') != NULL || strcmp(name, ".") == 0 ||
        strcmp(name, "..") == 0)
        return 0; /* never a plugin name, and never a path here */
    if (dirlist_build(&l, plugin_path) != 0)
        return -1;
    for (size_t i = 0; found == 0 && i < l.n; i++) {
        for (size_t j = 0; found == 0 && j < 2; j++) {
            char *path = join(l.v[i], name, exts[j]);
            if (path == NULL)
                found = -1;
            else if (access(path, F_OK) == 0)
                found = 1;
            free(path);
        }
    }
    dirlist_free(&l);
    return found;
}

void hm_plugin_unload(hm_plugin *p)
{
    if (p == NULL)
        return;
    if (p->dl != NULL) {
        pthread_mutex_lock(&lt_mutex);
        lt_dlclose((lt_dlhandle)p->dl);
        pthread_mutex_unlock(&lt_mutex);
    }
    free(p->path);
    memset(p, 0, sizeof *p);
}

/* A list of strings: file names of one directory, or names already seen. */
typedef struct strlist {
    char **v;
    size_t n;
} strlist;

static int strlist_add(strlist *l, const char *s, size_t n)
{
    char **v = realloc(l->v, (l->n + 1) * sizeof *v);
    if (v == NULL)
        return -1;
    l->v = v;
    if ((l->v[l->n] = strndup(s, n)) == NULL)
        return -1;
    l->n++;
    return 0;
}

static int strlist_has(const strlist *l, const char *s, size_t n)
{
    for (size_t i = 0; i < l->n; i++)
        if (strlen(l->v[i]) == n && memcmp(l->v[i], s, n) == 0)
            return 1;
    return 0;
}

static void strlist_free(strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The plugin files of one directory, sorted: "x.la" sorts before "x.so",
 * which is what makes .la win over .so within a directory. */
static int scan_dir(const char *dir, strlist *files)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0; /* a missing directory on the path is not an error */
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n > 3 && (strcmp(e->d_name + n - 3, ".la") == 0 ||
                      strcmp(e->d_name + n - 3, ".so") == 0))
            rc = strlist_add(files, e->d_name, n);
    }
    closedir(d);
    if (files->n > 1)
        qsort(files->v, files->n, sizeof *files->v, cmp_str);
    return rc;
}

void hm_plugin_list(const char *plugin_path, hm_plugin_list_cb cb, void *arg)
{
    char err[1024];
    const hermes_backend *d = hm_dict_backend();
    dirlist dirs;
    strlist seen = {NULL, 0};

    if (cb == NULL)
        return;
    if (hm_plugin_check(d, BUILTIN_PATH, err, sizeof err) == HERMES_OK)
        cb(arg, BUILTIN_PATH, d, NULL, 0);
    else
        cb(arg, BUILTIN_PATH, NULL, err, 0);

    /* "dict" always means the built-in, so a dict file on the path would
     * never be loaded by name: it is shadowed like any later duplicate. */
    if (strlist_add(&seen, BUILTIN_NAME, strlen(BUILTIN_NAME)) != 0 ||
        dirlist_build(&dirs, plugin_path) != 0) {
        strlist_free(&seen);
        return;
    }
    for (size_t i = 0; i < dirs.n; i++) {
        int again = 0;
        for (size_t k = 0; k < i && !again; k++)
            again = strcmp(dirs.v[i], dirs.v[k]) == 0;
        if (again)
            continue;
        strlist files = {NULL, 0};
        int ok = scan_dir(dirs.v[i], &files) == 0;
        for (size_t j = 0; ok && j < files.n; j++) {
            const char *name = files.v[j];
            size_t base = strlen(name) - 3;
            /* NAME.so next to NAME.la is the same plugin (libtool installs
             * both), and loading by name never picks it: list it once. */
            if (strcmp(name + base, ".so") == 0 && base + 4 <= sizeof err) {
                memcpy(err, name, base);
                memcpy(err + base, ".la", 4);
                if (strlist_has(&files, err, base + 3))
                    continue;
            }
            int shadowed = strlist_has(&seen, name, base);
            char *path = join(dirs.v[i], name, "");
            if (path == NULL ||
                (!shadowed && strlist_add(&seen, name, base) != 0)) {
                free(path);
                ok = 0;
                break;
            }
            hm_plugin p;
            memset(&p, 0, sizeof p);
            if (load_file(path, &p, err, sizeof err) == HERMES_OK) {
                cb(arg, path, p.desc, NULL, shadowed);
                hm_plugin_unload(&p);
            } else {
                cb(arg, path, NULL, err, shadowed);
            }
            free(path);
        }
        strlist_free(&files);
        if (!ok)
            break;
    }
    strlist_free(&seen);
    dirlist_free(&dirs);
}
