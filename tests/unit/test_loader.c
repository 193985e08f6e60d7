/*
 * Unit tests of the plugin loader (core/loader.c): the built-in dict, the
 * search order for a bare name, loading by path, and the refusal, with a
 * message naming the file, of every broken plugin in tests/plugins (built
 * as libtool modules by `make check`; HERMES_TEST_BUILDDIR locates them).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hermes/hermes.h>

#include "core/loader.h"
#include "dict.h"

static char builddir[512];
static char plugdir[560]; /* BUILDDIR/tests/plugins */
static char dictdir[560]; /* BUILDDIR/plugins/dict */

static int group_setup(void **state)
{
    const char *b = getenv("HERMES_TEST_BUILDDIR");
    if (b == NULL || *b == '\0') {
        fprintf(stderr, "HERMES_TEST_BUILDDIR is not set; run via make "
                        "check\n");
        return -1;
    }
    snprintf(builddir, sizeof builddir, "%s", b);
    snprintf(plugdir, sizeof plugdir, "%s/tests/plugins", builddir);
    snprintf(dictdir, sizeof dictdir, "%s/plugins/dict", builddir);
    /* The developer's own setting must not change what the tests find. */
    unsetenv("HERMES_PLUGIN_PATH");
    return 0;
}

static int reset_env(void **state)
{
    unsetenv("HERMES_PLUGIN_PATH");
    return 0;
}

/* Loads spec, failing the test with the loader's message on error. */
static void load_ok(const char *spec, const char *plugin_path, hm_plugin *p)
{
    char err[1024] = "";
    hermes_rc rc = hm_plugin_load(spec, plugin_path, p, err, sizeof err);
    if (rc != HERMES_OK)
        fail_msg("loading %s: error %d: %s", spec, (int)rc, err);
}

/* Loads tests/plugins/NAME.la by path and expects HERMES_EPLUGIN with
 * "PATH: " followed by want. */
static void refused(const char *name, const char *want)
{
    char path[1400], err[1024] = "", full[2600];
    hm_plugin p;

    snprintf(path, sizeof path, "%s/%s.la", plugdir, name);
    hermes_rc rc = hm_plugin_load(path, NULL, &p, err, sizeof err);
    assert_int_equal(rc, HERMES_EPLUGIN);
    snprintf(full, sizeof full, "%s: %s", path, want);
    assert_string_equal(err, full);
    assert_null(p.dl);
    assert_null(p.desc);
    assert_null(p.path);
}

/* A fresh directory under /tmp for files the test makes up. */
static void make_tempdir(char *dir, size_t len)
{
    snprintf(dir, len, "/tmp/hermes-test-loader-XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static void remove_tempdir(const char *dir, const char *const *names)
{
    char path[512];
    for (; *names != NULL; names++) {
        snprintf(path, sizeof path, "%s/%s", dir, *names);
        unlink(path);
    }
    rmdir(dir);
}

static void builtin_dict_loads(void **state)
{
    hm_plugin p;
    load_ok("dict", NULL, &p);
    assert_null(p.dl);
    /* The core's copy of the built-in descriptor, like any plugin's. */
    assert_ptr_equal(p.desc, &p.copy);
    assert_memory_equal(p.desc, hm_dict_backend(), sizeof(hermes_backend));
    assert_string_equal(p.desc->name, "dict");
    assert_string_equal(p.path, "(built-in)");
    hm_plugin_unload(&p);
    assert_null(p.path);
}

static void dict_name_is_builtin_even_with_module_on_path(void **state)
{
    hm_plugin p;
    load_ok("dict", dictdir, &p);
    assert_null(p.dl);
    assert_string_equal(p.path, "(built-in)");
    hm_plugin_unload(&p);
}

static void dict_module_loads_by_absolute_path(void **state)
{
    char path[1400];
    hm_plugin p;

    snprintf(path, sizeof path, "%s/dict.la", dictdir);
    load_ok(path, NULL, &p);
    assert_non_null(p.dl);
    assert_string_equal(p.path, path);
    assert_string_equal(p.desc->name, "dict");
    /* A separate copy of the code, not the built-in descriptor. */
    assert_ptr_not_equal(p.desc, hm_dict_backend());
    hm_plugin_unload(&p);
    assert_null(p.dl);
}

static void dict_module_loads_by_name_as_so(void **state)
{
    /* "dict" always means the built-in, so the module is reached by name
     * through a link under another name to the shared object libtool
     * built. */
    char dir[64], target[1400], link[128];
    hm_plugin p;

    make_tempdir(dir, sizeof dir);
    snprintf(target, sizeof target, "%s/.libs/dict.so", dictdir);
    snprintf(link, sizeof link, "%s/mydict.so", dir);
    assert_int_equal(symlink(target, link), 0);
    load_ok("mydict", dir, &p);
    assert_string_equal(p.path, link);
    assert_string_equal(p.desc->name, "dict");
    hm_plugin_unload(&p);
    remove_tempdir(dir, (const char *const[]){"mydict.so", NULL});
}

static void plugin_loads_by_name_from_plugin_path(void **state)
{
    char path[1400], search[1400];
    hm_plugin p;

    snprintf(search, sizeof search, "/nonexistent/hermes:%s/", plugdir);
    snprintf(path, sizeof path, "%s/good.la", plugdir);
    load_ok("good", search, &p);
    assert_non_null(p.dl);
    assert_string_equal(p.path, path);
    assert_string_equal(p.desc->name, "test");
    hm_plugin_unload(&p);
}

static void plugin_loads_by_name_from_env_path(void **state)
{
    char path[1400], env[1400];
    hm_plugin p;

    snprintf(env, sizeof env, "/nonexistent/hermes::%s", plugdir);
    setenv("HERMES_PLUGIN_PATH", env, 1);
    snprintf(path, sizeof path, "%s/good.la", plugdir);
    load_ok("good", "/nonexistent/other", &p);
    assert_string_equal(p.path, path);
    hm_plugin_unload(&p);
}

static void plugin_path_comes_before_env_path(void **state)
{
    char dir[64], target[1400], link[128];
    hm_plugin p;

    make_tempdir(dir, sizeof dir);
    snprintf(target, sizeof target, "%s/.libs/dict.so", dictdir);
    snprintf(link, sizeof link, "%s/good.so", dir);
    assert_int_equal(symlink(target, link), 0);
    setenv("HERMES_PLUGIN_PATH", plugdir, 1); /* also has a good.la */
    load_ok("good", dir, &p);
    assert_string_equal(p.path, link);
    assert_string_equal(p.desc->name, "dict");
    hm_plugin_unload(&p);
    remove_tempdir(dir, (const char *const[]){"good.so", NULL});
}

static void la_is_tried_before_so_and_reported_when_broken(void **state)
{
    char dir[64], target[1400], link[128], want[256], err[1024] = "";
    hm_plugin p;

    make_tempdir(dir, sizeof dir);
    snprintf(target, sizeof target, "%s/.libs/dict.so", dictdir);
    snprintf(link, sizeof link, "%s/x.so", dir);
    assert_int_equal(symlink(target, link), 0);
    write_file(dir, "x.la", "not a libtool file\n");
    assert_int_equal(hm_plugin_load("x", dir, &p, err, sizeof err),
                     HERMES_EPLUGIN);
    snprintf(want, sizeof want, "%s/x.la: cannot load: ", dir);
    assert_memory_equal(err, want, strlen(want));
    remove_tempdir(dir, (const char *const[]){"x.so", "x.la", NULL});
}

static void not_found_lists_every_place_it_looked(void **state)
{
    char err[1024] = "";
    hm_plugin p;

    setenv("HERMES_PLUGIN_PATH", "/nonexistent/c", 1);
    assert_int_equal(hm_plugin_load("nope", "/nonexistent/a:/nonexistent/b/",
                                    &p, err, sizeof err),
                     HERMES_EPLUGIN);
    assert_string_equal(err, "plugin 'nope' not found; looked in: "
                             "/nonexistent/a/nope.{la,so}, "
                             "/nonexistent/b/nope.{la,so}, "
                             "/nonexistent/c/nope.{la,so}, " HERMES_PLUGINDIR
                             "/nope.{la,so}");
    assert_null(p.desc);
}

static void missing_file_by_path_cannot_load(void **state)
{
    char err[1024] = "";
    hm_plugin p;
    assert_int_equal(
        hm_plugin_load("/nonexistent/x.so", NULL, &p, err, sizeof err),
        HERMES_EPLUGIN);
    assert_memory_equal(err, "/nonexistent/x.so: cannot load: ", 32);
}

static void text_file_named_so_cannot_load_with_reason(void **state)
{
    char dir[64], want[256], err[1024] = "";
    hm_plugin p;

    make_tempdir(dir, sizeof dir);
    write_file(dir, "x.so", "this is not an ELF file\n");
    assert_int_equal(hm_plugin_load("x", dir, &p, err, sizeof err),
                     HERMES_EPLUGIN);
    snprintf(want, sizeof want, "%s/x.so: cannot load: ", dir);
    assert_memory_equal(err, want, strlen(want));
    /* The loader's own reason follows, not an empty or generic text. */
    assert_true(strlen(err) > strlen(want));
    assert_null(strstr(err, "unknown error"));
    assert_null(strstr(err, "file not found")); /* it is there */
    assert_null(p.dl);
    remove_tempdir(dir, (const char *const[]){"x.so", NULL});
}

static void unresolved_symbol_reports_dlopen_reason(void **state)
{
    char want[700], err[1024] = "";
    hm_plugin p;

    assert_int_equal(hm_plugin_load("unresolved", plugdir, &p, err, sizeof err),
                     HERMES_EPLUGIN);
    snprintf(want, sizeof want, "%s/unresolved.la: cannot load: ", plugdir);
    assert_memory_equal(err, want, strlen(want));
    assert_non_null(
        strstr(err, "undefined symbol: hermes_test_no_such_symbol"));
}

static void junk_la_file_is_not_a_libtool_module(void **state)
{
    char dir[64], want[256], err[1024] = "";
    hm_plugin p;

    make_tempdir(dir, sizeof dir);
    write_file(dir, "x.la", "not a libtool file\n");
    assert_int_equal(hm_plugin_load("x", dir, &p, err, sizeof err),
                     HERMES_EPLUGIN);
    snprintf(want, sizeof want,
             "%s/x.la: cannot load: not a libtool module (no dlname)", dir);
    assert_string_equal(err, want);
    remove_tempdir(dir, (const char *const[]){"x.la", NULL});
}

static void no_entry_symbol_is_refused(void **state)
{
    refused("no_entry", "no hermes_backend_entry symbol: not a Hermes plugin");
}

static void entry_returning_null_is_refused(void **state)
{
    refused("entry_null", "hermes_backend_entry returned NULL");
}

static void newer_abi_major_is_refused(void **state)
{
    char want[128];
    snprintf(want, sizeof want, "ABI major %d, this core speaks %d",
             HERMES_BACKEND_ABI_MAJOR + 1, HERMES_BACKEND_ABI_MAJOR);
    refused("bad_major", want);
}

static void newer_abi_minor_is_refused(void **state)
{
    char want[128];
    snprintf(want, sizeof want,
             "ABI %d.%d is newer than this core's %d.%d (upgrade Hermes, or "
             "rebuild the plugin against this SDK)",
             HERMES_BACKEND_ABI_MAJOR, HERMES_BACKEND_ABI_MINOR + 1,
             HERMES_BACKEND_ABI_MAJOR, HERMES_BACKEND_ABI_MINOR);
    refused("newer_minor", want);
}

static void too_small_struct_size_is_refused(void **state)
{
    char want[128];
    snprintf(want, sizeof want,
             "descriptor struct_size %zu smaller than ABI 1.0's %zu",
             HERMES_BACKEND_SIZE_1_0 - sizeof(void *), HERMES_BACKEND_SIZE_1_0);
    refused("small_size", want);
}

/* A minor this core knows with a larger descriptor than that minor has:
 * the fields past ours cannot be the ones we would read. */
static void too_large_struct_size_is_refused(void **state)
{
    char want[256];
    snprintf(want, sizeof want,
             "descriptor struct_size %zu larger than ABI %d.%d's %zu, "
             "although it says ABI %d.%d",
             sizeof(hermes_backend) + sizeof(void *), HERMES_BACKEND_ABI_MAJOR,
             HERMES_BACKEND_ABI_MINOR, sizeof(hermes_backend),
             HERMES_BACKEND_ABI_MAJOR, HERMES_BACKEND_ABI_MINOR);
    refused("big_size", want);
}

static void null_mandatory_operation_is_refused(void **state)
{
    static const char *const ops[] = {"open", "get", "unlock", "flush"};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        char name[32], want[128];
        snprintf(name, sizeof name, "null_%s", ops[i]);
        snprintf(want, sizeof want, "mandatory operation '%s' is NULL", ops[i]);
        refused(name, want);
    }
}

static void scan_capability_without_scan_is_refused(void **state)
{
    refused("scan_no_op",
            "declares HERMES_CAP_SCAN but operation 'scan' is NULL");
}

static void bad_name_is_refused(void **state)
{
    refused("bad_name", "descriptor has no valid name");
}

/* The plugin built against the frozen 1.0 header loads as it is, and the
 * core keeps a copy of exactly its fields. */
static void plugin_built_against_abi_1_0_loads(void **state)
{
    char path[1400];
    hm_plugin p;

    snprintf(path, sizeof path, "%s/abi_1_0.la", plugdir);
    load_ok(path, NULL, &p);
    assert_int_equal(p.desc->abi_major, 1);
    assert_int_equal(p.desc->abi_minor, 0);
    assert_int_equal(p.desc->struct_size, HERMES_BACKEND_SIZE_1_0);
    assert_ptr_equal(p.desc, &p.copy);
    assert_string_equal(p.desc->name, "abi_1_0");
    assert_null(p.desc->scan);
    assert_null(p.desc->stats);
    hm_plugin_unload(&p);
}

static int compute_one(void *arg, hermes_result *res)
{
    (*(int *)arg)++;
    return hermes_result_set(res, "computed", 8) != HERMES_OK;
}

/* The cache works through a 1.0 plugin: direct set and get with a tag,
 * clean, a memoized miss (lock, compute, store, unlock) then a hit,
 * delete, flush. */
static void cache_works_through_an_abi_1_0_plugin(void **state)
{
    char ini[1600];
    snprintf(ini, sizeof ini, "[hermes]\nbackend = %s/abi_1_0.la\n", plugdir);
    hermes *h;
    hermes_rc rc = hermes_open_string(&h, ini, "abi_1_0.ini");
    if (rc != HERMES_OK)
        fail_msg("open: %s", hermes_errmsg(h));
    assert_string_equal(hermes_backend_name(h), "abi_1_0");

    const char *const tags[] = {"t", NULL};
    void *v;
    size_t len;
    assert_int_equal(hermes_set(h, "k", "value", 5, tags, 60), HERMES_OK);
    assert_int_equal(hermes_get(h, "k", tags, &v, &len), HERMES_OK);
    assert_int_equal(len, 5);
    assert_memory_equal(v, "value", 5);
    hermes_free(v);
    assert_int_equal(hermes_clean(h, tags), HERMES_OK);
    assert_int_equal(hermes_get(h, "k", tags, &v, &len), HERMES_ENOTFOUND);

    hermes_fn *fn;
    int computed = 0;
    assert_int_equal(hermes_fn_register(h, "f", NULL, &fn), HERMES_OK);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(
            hermes_call(fn, "a", 1, compute_one, &computed, &v, &len),
            HERMES_OK);
        assert_memory_equal(v, "computed", 8);
        hermes_free(v);
    }
    hermes_stats st;
    assert_int_equal(hermes_stats_get(h, &st, sizeof st), HERMES_OK);
    assert_int_equal(computed, 1);
    assert_int_equal(st.hits, 2); /* the direct get, then the call's */
    assert_int_equal(st.lock_acquired, 1);
    assert_int_equal(st.backend_errors, 0);

    assert_int_equal(hermes_set(h, "k", "v", 1, NULL, 0), HERMES_OK);
    assert_int_equal(hermes_delete(h, "k"), HERMES_OK);
    assert_int_equal(hermes_get(h, "k", NULL, &v, &len), HERMES_ENOTFOUND);
    assert_int_equal(hermes_flush(h), HERMES_OK);
    assert_int_equal(hermes_call(fn, "a", 1, compute_one, &computed, &v, &len),
                     HERMES_OK);
    hermes_free(v);
    assert_int_equal(computed, 2); /* flushed, so computed again */
    hermes_close(h);
}

/* A descriptor linked into the application follows the same rule: the
 * core reads a copy, never the caller's bytes past struct_size. */
static void linked_descriptor_is_copied_up_to_its_size(void **state)
{
    hermes *h;
    hermes_backend full = *hm_dict_backend();
    const char *changed = "changed";
    /* On the heap at exactly the 1.0 size, so ASan sees any read past;
     * filled as bytes (a hermes_backend is larger now, and gcc -O2 refuses
     * a member access through a pointer to too small an object). */
    unsigned char *d = malloc(HERMES_BACKEND_SIZE_1_0);
    assert_non_null(d);
    full.struct_size = HERMES_BACKEND_SIZE_1_0;
    memcpy(d, &full, HERMES_BACKEND_SIZE_1_0);
    assert_int_equal(hermes_open_with(&h, NULL, "linked.ini",
                                      (const hermes_backend *)(void *)d),
                     HERMES_OK);
    /* the core kept its own copy */
    memcpy(d + offsetof(hermes_backend, name), &changed, sizeof changed);
    assert_string_equal(hermes_backend_name(h), "dict");
    assert_int_equal(hermes_set(h, "k", "v", 1, NULL, 0), HERMES_OK);
    hermes_close(h);
    free(d);
}

/* Descriptor checks that need no file: a valid base, then one defect. */
static int op_open(const hermes_host *h, const hermes_kv *kv, size_t n,
                   void **s, hermes_open_error *e)
{
    return HERMES_BE_OK;
}

static void op_close(void *s)
{
}

static int op_get(void *s, const hermes_bytes *k, size_t n, hermes_value_cb cb,
                  void *a)
{
    return HERMES_BE_OK;
}

static int op_set(void *s, const hermes_item *it, size_t n, hermes_value_cb cb,
                  void *a)
{
    return HERMES_BE_OK;
}

static int op_del(void *s, const hermes_bytes *k, size_t n)
{
    return HERMES_BE_OK;
}

static int op_lock(void *s, hermes_bytes k, hermes_bytes t, uint32_t ttl,
                   int *acq)
{
    return HERMES_BE_OK;
}

static int op_unlock(void *s, hermes_bytes k, hermes_bytes t, int *rel)
{
    return HERMES_BE_OK;
}

static int op_flush(void *s, hermes_bytes p)
{
    return HERMES_BE_OK;
}

static hermes_backend valid_desc(void)
{
    hermes_backend d = {
        .abi_major = HERMES_BACKEND_ABI_MAJOR,
        .abi_minor = HERMES_BACKEND_ABI_MINOR,
        .struct_size = sizeof(hermes_backend),
        .name = "x_1",
        .version = "1",
        .open = op_open,
        .close = op_close,
        .get = op_get,
        .set = op_set,
        .del = op_del,
        .lock = op_lock,
        .unlock = op_unlock,
        .flush = op_flush,
    };
    return d;
}

static void check_accepts_valid_descriptor(void **state)
{
    hermes_backend d = valid_desc();
    char err[256] = "";
    assert_int_equal(hm_plugin_check(&d, "x.so", err, sizeof err), HERMES_OK);
}

static void check_refuses_null_version(void **state)
{
    hermes_backend d = valid_desc();
    char err[256] = "";
    d.version = NULL;
    assert_int_equal(hm_plugin_check(&d, "x.so", err, sizeof err),
                     HERMES_EPLUGIN);
    assert_string_equal(err, "x.so: descriptor has no version");
}

static void check_refuses_stats_capability_without_stats(void **state)
{
    hermes_backend d = valid_desc();
    char err[256] = "";
    d.caps = HERMES_CAP_STATS;
    assert_int_equal(hm_plugin_check(&d, "x.so", err, sizeof err),
                     HERMES_EPLUGIN);
    assert_string_equal(
        err, "x.so: declares HERMES_CAP_STATS but operation 'stats' is NULL");
}

static void check_refuses_empty_and_uppercase_names(void **state)
{
    static const char *const names[] = {"", "Redis", "a-b", "a b"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        hermes_backend d = valid_desc();
        char err[256] = "";
        d.name = names[i];
        assert_int_equal(hm_plugin_check(&d, "x.so", err, sizeof err),
                         HERMES_EPLUGIN);
        assert_string_equal(err, "x.so: descriptor has no valid name");
    }
}

static void check_reports_major_before_size(void **state)
{
    /* A future major may have any layout: nothing past the header is
     * trusted, not even struct_size's meaning. */
    hermes_backend d = valid_desc();
    char err[256] = "";
    d.abi_major = 2;
    d.struct_size = 4;
    d.name = NULL;
    assert_int_equal(hm_plugin_check(&d, "x.so", err, sizeof err),
                     HERMES_EPLUGIN);
    assert_string_equal(err, "x.so: ABI major 2, this core speaks 1");
}

typedef struct listing {
    int calls;
    int builtin_first;
    int good_ok;
    int bad_major_err;
    int dict_module_shadowed;
    int dict_module_unshadowed;
    int ok_without_desc; /* err NULL but desc NULL: must never happen */
} listing;

static void list_cb(void *arg, const char *path, const hermes_backend *desc,
                    const char *err, int shadowed)
{
    listing *l = arg;
    const char *base = strrchr(path, '/');
    base = base != NULL ? base + 1 : path;

    if (l->calls++ == 0)
        l->builtin_first = strcmp(path, "(built-in)") == 0 && err == NULL &&
                           desc != NULL && strcmp(desc->name, "dict") == 0;
    if (err == NULL && desc == NULL)
        l->ok_without_desc = 1;
    if (strncmp(path, plugdir, strlen(plugdir)) == 0 &&
        path[strlen(plugdir)] == '/') {
        if (strcmp(base, "good.la") == 0 && err == NULL && !shadowed &&
            strcmp(desc->name, "test") == 0)
            l->good_ok++;
        if (strcmp(base, "bad_major.la") == 0 && err != NULL &&
            strstr(err, ": ABI major 2, this core speaks 1") != NULL)
            l->bad_major_err++;
    }
    if (strcmp(base, "dict.la") == 0 || strcmp(base, "dict.so") == 0) {
        if (shadowed)
            l->dict_module_shadowed = 1;
        else
            l->dict_module_unshadowed = 1;
    }
}

static void plugin_list_finds_builtin_and_test_plugins(void **state)
{
    char search[1700];
    listing l;

    memset(&l, 0, sizeof l);
    snprintf(search, sizeof search, "%s:%s:%s", dictdir, plugdir, plugdir);
    hm_plugin_list(search, list_cb, &l);
    assert_true(l.builtin_first);
    assert_int_equal(l.good_ok, 1);       /* once, though listed twice */
    assert_int_equal(l.bad_major_err, 1); /* reported with its reason */
    assert_true(l.dict_module_shadowed);  /* listed, but the built-in wins */
    assert_false(l.dict_module_unshadowed);
    assert_false(l.ok_without_desc);
    assert_true(l.calls >= 15);
}

/* How often each of x, y, z was listed, and z's second listing. */
typedef struct twice {
    int x, y, z, z_shadowed;
    char x_path[600];
} twice;

static void twice_cb(void *arg, const char *path, const hermes_backend *desc,
                     const char *err, int shadowed)
{
    twice *t = arg;
    const char *base = strrchr(path, '/');
    base = base != NULL ? base + 1 : path;
    if (strncmp(base, "x.", 2) == 0) {
        t->x++;
        snprintf(t->x_path, sizeof t->x_path, "%s", path);
    }
    t->y += strncmp(base, "y.", 2) == 0;
    if (strncmp(base, "z.", 2) == 0) {
        t->z++;
        t->z_shadowed += shadowed;
    }
}

/* libtool installs NAME.la and NAME.so side by side: one plugin, listed
 * once (as the .la, which loading by name picks).  The same name in a
 * later directory is still listed, as shadowed. */
static void plugin_list_shows_la_and_so_of_one_plugin_once(void **state)
{
    char d1[64], d2[64], search[200], want[200];
    twice t;

    make_tempdir(d1, sizeof d1);
    make_tempdir(d2, sizeof d2);
    write_file(d1, "x.la", "junk\n");
    write_file(d1, "x.so", "junk\n");
    write_file(d1, "x.m.la", "junk\n"); /* sorts between x.la and x.so */
    write_file(d1, "y.so", "junk\n");
    write_file(d1, "z.la", "junk\n");
    write_file(d2, "z.so", "junk\n");
    memset(&t, 0, sizeof t);
    snprintf(search, sizeof search, "%s:%s", d1, d2);
    hm_plugin_list(search, twice_cb, &t);
    assert_int_equal(t.x, 2); /* x.la and x.m.la, not x.so */
    snprintf(want, sizeof want, "%s/x.m.la", d1);
    assert_string_equal(t.x_path, want);
    assert_int_equal(t.y, 1); /* a lone .so is listed */
    assert_int_equal(t.z, 2); /* once per directory */
    assert_int_equal(t.z_shadowed, 1);
    remove_tempdir(d1, (const char *const[]){"x.la", "x.so", "x.m.la", "y.so",
                                             "z.la", NULL});
    remove_tempdir(d2, (const char *const[]){"z.so", NULL});
}

static void unload_is_safe_on_empty_plugin(void **state)
{
    hm_plugin p;
    memset(&p, 0, sizeof p);
    hm_plugin_unload(&p);
    hm_plugin_unload(NULL);
    assert_null(p.path);
}

/* libltdl's error text is global: concurrent failures must each still
 * report their own file and reason. */
static void *load_many(void *arg)
{
    const char *dir = arg;
    char bad[1400], missing[128], err[1024], want[1500];
    long failures = 0;

    snprintf(bad, sizeof bad, "%s/bad_major.la", plugdir);
    snprintf(missing, sizeof missing, "%s/missing.so", dir);
    for (int i = 0; i < 100; i++) {
        hm_plugin p;
        if (hm_plugin_load("x", dir, &p, err, sizeof err) != HERMES_EPLUGIN ||
            strncmp(err, dir, strlen(dir)) != 0 ||
            strstr(err, "/x.so: cannot load: ") == NULL)
            failures++;
        if (hm_plugin_load(missing, NULL, &p, err, sizeof err) !=
                HERMES_EPLUGIN ||
            strncmp(err, missing, strlen(missing)) != 0)
            failures++;
        snprintf(want, sizeof want, "%s: ABI major 2, this core speaks 1", bad);
        if (hm_plugin_load(bad, NULL, &p, err, sizeof err) != HERMES_EPLUGIN ||
            strcmp(err, want) != 0)
            failures++;
        if (hm_plugin_load("good", plugdir, &p, err, sizeof err) != HERMES_OK)
            failures++;
        hm_plugin_unload(&p);
    }
    return (void *)failures;
}

static void concurrent_loads_report_their_own_errors(void **state)
{
    enum { NTHREADS = 4 };
    char dirs[NTHREADS][64];
    pthread_t t[NTHREADS];

    for (int i = 0; i < NTHREADS; i++) {
        make_tempdir(dirs[i], sizeof dirs[i]);
        write_file(dirs[i], "x.so", "not an ELF file\n");
    }
    for (int i = 0; i < NTHREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, load_many, dirs[i]), 0);
    long failures = 0;
    for (int i = 0; i < NTHREADS; i++) {
        void *r;
        assert_int_equal(pthread_join(t[i], &r), 0);
        failures += (long)r;
    }
    for (int i = 0; i < NTHREADS; i++)
        remove_tempdir(dirs[i], (const char *const[]){"x.so", NULL});
    assert_int_equal(failures, 0);
}

/* Loads spec and expects rc with a message starting with want. */
static void odd_spec_refused(const char *spec, const char *plugin_path,
                             hermes_rc rc, const char *want)
{
    char err[1024] = "";
    hm_plugin p;

    assert_int_equal(hm_plugin_load(spec, plugin_path, &p, err, sizeof err),
                     rc);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("spec '%s': message '%s' does not start with '%s'", spec, err,
                 want);
    assert_null(p.dl);
    assert_null(p.desc);
}

/* libltdl asserts (aborting the process) on a path with an empty last
 * component: such specs must be refused before they reach it. */
static void odd_paths_are_refused_without_aborting(void **state)
{
    char dir[64], spec[600], want[700];

    odd_spec_refused("/", NULL, HERMES_EPLUGIN,
                     "/: cannot load: ends in '/': a directory");
    odd_spec_refused("//", NULL, HERMES_EPLUGIN,
                     "//: cannot load: ends in '/': a directory");
    odd_spec_refused(".", NULL, HERMES_EPLUGIN,
                     "backend '.' is a directory, not a plugin name");
    odd_spec_refused("..", NULL, HERMES_EPLUGIN,
                     "backend '..' is a directory, not a plugin name");
    odd_spec_refused("", NULL, HERMES_EINVAL, "no backend given");
    odd_spec_refused("./", NULL, HERMES_EPLUGIN,
                     "./: cannot load: ends in '/'");
    odd_spec_refused("/tmp/.", NULL, HERMES_EPLUGIN,
                     "/tmp/.: cannot load: is a directory");
    odd_spec_refused("/tmp/..", NULL, HERMES_EPLUGIN,
                     "/tmp/..: cannot load: is a directory");
    /* A directory, with and without a trailing slash. */
    snprintf(want, sizeof want, "%s: cannot load: is a directory", dictdir);
    odd_spec_refused(dictdir, NULL, HERMES_EPLUGIN, want);
    snprintf(spec, sizeof spec, "%s/", dictdir);
    snprintf(want, sizeof want, "%s: cannot load: ends in '/'", spec);
    odd_spec_refused(spec, NULL, HERMES_EPLUGIN, want);
    /* A real plugin file followed by a slash is not that file. */
    snprintf(spec, sizeof spec, "%s/dict.la/", dictdir);
    snprintf(want, sizeof want, "%s: cannot load: ends in '/'", spec);
    odd_spec_refused(spec, NULL, HERMES_EPLUGIN, want);
    /* A directory named like a plugin on the search path, and a FIFO
     * (which would block dlopen's open() forever). */
    make_tempdir(dir, sizeof dir);
    snprintf(spec, sizeof spec, "%s/x.la", dir);
    assert_int_equal(mkdir(spec, 0700), 0);
    snprintf(want, sizeof want, "%s/x.la: cannot load: is a directory", dir);
    odd_spec_refused("x", dir, HERMES_EPLUGIN, want);
    rmdir(spec);
    snprintf(spec, sizeof spec, "%s/y.so", dir);
    assert_int_equal(mkfifo(spec, 0600), 0);
    snprintf(want, sizeof want, "%s/y.so: cannot load: not a regular file",
             dir);
    odd_spec_refused("y", dir, HERMES_EPLUGIN, want);
    remove_tempdir(dir, (const char *const[]){"y.so", NULL});
}

#define T(f) cmocka_unit_test_teardown(f, reset_env)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(builtin_dict_loads),
        T(dict_name_is_builtin_even_with_module_on_path),
        T(dict_module_loads_by_absolute_path),
        T(dict_module_loads_by_name_as_so),
        T(plugin_loads_by_name_from_plugin_path),
        T(plugin_loads_by_name_from_env_path),
        T(plugin_path_comes_before_env_path),
        T(la_is_tried_before_so_and_reported_when_broken),
        T(not_found_lists_every_place_it_looked),
        T(missing_file_by_path_cannot_load),
        T(text_file_named_so_cannot_load_with_reason),
        T(unresolved_symbol_reports_dlopen_reason),
        T(junk_la_file_is_not_a_libtool_module),
        T(no_entry_symbol_is_refused),
        T(entry_returning_null_is_refused),
        T(newer_abi_major_is_refused),
        T(newer_abi_minor_is_refused),
        T(too_small_struct_size_is_refused),
        T(too_large_struct_size_is_refused),
        T(null_mandatory_operation_is_refused),
        T(scan_capability_without_scan_is_refused),
        T(bad_name_is_refused),
        T(plugin_built_against_abi_1_0_loads),
        T(cache_works_through_an_abi_1_0_plugin),
        T(linked_descriptor_is_copied_up_to_its_size),
        T(check_accepts_valid_descriptor),
        T(check_refuses_null_version),
        T(check_refuses_stats_capability_without_stats),
        T(check_refuses_empty_and_uppercase_names),
        T(check_reports_major_before_size),
        T(plugin_list_finds_builtin_and_test_plugins),
        T(unload_is_safe_on_empty_plugin),
        T(concurrent_loads_report_their_own_errors),
        T(odd_paths_are_refused_without_aborting),
        T(plugin_list_shows_la_and_so_of_one_plugin_once),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
