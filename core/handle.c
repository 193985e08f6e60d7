/*
 * The handle: opening (config, plugin, backend state), closing, and the
 * accessors the tools use instead of reading struct hermes.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dict.h"
#include "flight.h"
#include "fork.h"
#include "publish.h"
#include "handle.h"
#include "keys.h"
#include "options.h"
#include "taglist.h"

/* a and b in new memory, with `room` bytes more than they need. */
static char *concat_room(const char *a, const char *b, size_t room)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1 + room);
    if (s) {
        memcpy(s, a, la);
        memcpy(s + la, b, lb + 1);
    }
    return s;
}

static char *concat(const char *a, const char *b)
{
    return concat_room(a, b, 0);
}

static hermes *handle_new(void)
{
    hermes *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    pthread_mutex_init(&h->be_mu, NULL);
    pthread_mutex_init(&h->fns_mu, NULL);
    pthread_mutex_init(&h->logger.mu, NULL);
    hm_flights_init(&h->flights);
    h->id = hm_handle_id_next();
    h->cfg.log_level = HERMES_LOG_WARN;
    hm_fork_track(h);
    return h;
}

/* Marks the open failed with the message; a message too long for
 * open_err is cut short. */
HM_PRINTF(3, 4)
static hermes_rc open_failedf(hermes *h, hermes_rc rc, const char *fmt, ...)
{
    va_list ap;
    h->failed = true;
    va_start(ap, fmt);
    vsnprintf(h->open_err, sizeof h->open_err, fmt, ap);
    va_end(ap);
    return rc;
}

static hermes_rc open_failed(hermes *h, hermes_rc rc, const char *msg)
{
    return open_failedf(h, rc, "%s", msg);
}

/* The loader's message, behind "SOURCE:LINE: backend: " like every other
 * config error, since the backend key chose the file. */
static hermes_rc plugin_failed(hermes *h, hermes_rc rc, const char *why)
{
    char where[512];
    if (rc == HERMES_ENOMEM)
        return open_failed(h, rc, "out of memory");
    hm_config_where(where, sizeof where, h->cfg.source, h->cfg.backend_line);
    return open_failedf(h, rc, "%s: backend: %s", where, why);
}

/*
 * Every section is [hermes], the backend's own, or one of a plugin that
 * loading by name would find (so one file may hold the settings of
 * several backends): anything else is a typo ([redsi]) that would
 * otherwise be ignored without a word.
 */
static hermes_rc check_sections(hermes *h)
{
    char where[512];
    for (size_t i = 0; i < h->cfg.nsections; i++) {
        const hm_section *sec = &h->cfg.sections[i];
        if (strcmp(sec->name, h->be->name) == 0)
            continue;
        int found = hm_plugin_exists(sec->name, h->cfg.plugin_path);
        if (found < 0)
            return open_failed(h, HERMES_ENOMEM, "out of memory");
        if (found)
            continue;
        hm_config_where(where, sizeof where, h->cfg.source, sec->line);
        return open_failedf(h, HERMES_ECONFIG,
                            "%s: unknown section [%s]: not [hermes], the "
                            "backend's [%s], or a plugin on the search path",
                            where, sec->name, h->be->name);
    }
    return HERMES_OK;
}

/*
 * A key too long for the backend is replaced by "<prefix>:entry:#<hash>"
 * (the longest of the hashed forms); when even that does not fit, keys
 * would reach the backend over its limit, so the prefix is refused.
 */
static hermes_rc check_prefix(hermes *h)
{
    char where[512];
    size_t max = h->be->max_key_len, plen = strlen(h->cfg.prefix);
    size_t fixed = strlen(":entry:#") + HM_HASH_B64_LEN;
    if (max == 0 || plen + fixed <= max)
        return HERMES_OK;
    hm_config_where(where, sizeof where, h->cfg.source, h->cfg.prefix_line);
    if (max <= fixed)
        return open_failedf(h, HERMES_ECONFIG,
                            "%s: prefix: backend %s's key limit of %zu bytes "
                            "is too small for any prefix: hashed keys "
                            "('<prefix>:entry:#' and a %d-character hash) "
                            "need more than %zu",
                            where, h->be->name, max, HM_HASH_B64_LEN, fixed);
    return open_failedf(h, HERMES_ECONFIG,
                        "%s: prefix: '%s' is too long for backend %s's key "
                        "limit of %zu bytes: hashed keys ('<prefix>:entry:#' "
                        "and a %d-character hash) would take %zu; use at "
                        "most %zu characters",
                        where, h->cfg.prefix, h->be->name, max, HM_HASH_B64_LEN,
                        plen + fixed, max - fixed);
}

/* Loads the plugin (unless given a descriptor) and opens the backend. */
static hermes_rc open_backend(hermes *h, const hermes_backend *linked)
{
    char err[1024];
    hermes_rc rc;
    if (linked) {
        rc = hm_plugin_adopt(linked, "(linked)", &h->plugin, err, sizeof err);
        if (rc != HERMES_OK)
            return open_failed(h, rc,
                               rc == HERMES_ENOMEM ? "out of memory" : err);
    } else {
        rc = hm_plugin_load(h->cfg.backend, h->cfg.plugin_path, &h->plugin, err,
                            sizeof err);
        if (rc != HERMES_OK)
            return plugin_failed(h, rc, err);
    }
    h->be = h->plugin.desc;
    h->be_serialize = !(h->be->caps & HERMES_CAP_THREADSAFE);
    h->tags_private = !(h->be->caps & HERMES_CAP_SHARED);
    h->records_intact = h->plugin.builtin;
    atomic_init(&h->tag_epoch, 1);
    if ((rc = check_sections(h)) != HERMES_OK ||
        (rc = check_prefix(h)) != HERMES_OK) {
        h->be = NULL;
        return rc;
    }
    hm_host_init(h);

    h->entry_prefix = concat(h->cfg.prefix, ":entry:");
    h->tag_prefix = concat(h->cfg.prefix, ":tag:");
    h->lock_prefix = concat_room(h->cfg.prefix, ":lock:", HM_LOCK_PID_ROOM);
    /* A bit ABI 1.0 did not define means nothing from a 1.0 plugin. */
    if ((h->be->caps & HERMES_CAP_NO_PREFIX_FLUSH) && h->be->abi_minor >= 1 &&
        !(h->ns_key = concat(h->cfg.prefix, ":ns")))
        return open_failed(h, HERMES_ENOMEM, "out of memory");
    if (!h->entry_prefix || !h->tag_prefix || !h->lock_prefix)
        return open_failed(h, HERMES_ENOMEM, "out of memory");
    h->entry_prefix_len = strlen(h->entry_prefix);
    if (gethostname(h->hostname, sizeof h->hostname - 1) != 0)
        strcpy(h->hostname, "localhost");
    for (char *c = h->hostname; *c; c++)
        if (*c == ':' || *c <= ' ')
            *c = '_';

    const hm_section *sec = hm_config_section(&h->cfg, h->be->name);
    hermes_open_error oe;
    memset(&oe, 0, sizeof oe);
    oe.kv_index = -1;
    int st = h->be->open(&h->host, sec ? sec->kv : NULL, sec ? sec->n : 0,
                         &h->be_state, &oe);
    if (st == HERMES_BE_OK) {
        hm_publish_init(h);
        return HERMES_OK;
    }
    h->be_state = NULL;
    oe.msg[sizeof oe.msg - 1] = '\0';
    if (!oe.msg[0])
        snprintf(oe.msg, sizeof oe.msg, "%s", hm_be_status_str(st));
    /* The plugin may echo a value from the file: escape its control bytes
     * as the core's own messages do, whichever plugin wrote it. */
    char msg[sizeof oe.msg * 4], where[512];
    hm_config_escape(oe.msg, msg, sizeof msg);
    rc = hm_be_rc(st, true);
    if (sec && oe.kv_index >= 0 && (size_t)oe.kv_index < sec->n) {
        hm_config_where(where, sizeof where, h->cfg.source,
                        sec->lines[oe.kv_index]);
        return open_failedf(h, rc, "%s: %s: %s (backend %s, %s)", where,
                            sec->kv[oe.kv_index].key, msg, h->be->name,
                            h->plugin.path);
    }
    return open_failedf(h, rc, "%s: backend %s (%s) failed to open: %s",
                        h->cfg.source, h->be->name, h->plugin.path, msg);
}

/* Where the configuration comes from: a file, text, settings given in
 * code, or (all NULL) the defaults. */
typedef struct open_source {
    const char *path;
    const char *text, *name;
    const hermes_options *options;
} open_source;

static hermes_rc open_common(hermes **out, open_source src,
                             const hermes_backend *linked)
{
    const char *path = src.path, *text = src.text, *source = src.name;
    hermes *h = handle_new();
    *out = h;
    if (!h)
        return hm_error(NULL, HERMES_ENOMEM, "out of memory for a new handle");
    char err[1024];
    hermes_rc rc;
    if (src.options) {
        size_t n;
        const hm_setting *set = hm_options_settings(src.options, &n);
        rc = hm_config_from_settings(set, n, HM_OPTIONS_SOURCE, &h->cfg, err,
                                     sizeof err);
    } else if (path)
        rc = hm_config_load(path, &h->cfg, err, sizeof err);
    else if (text)
        rc = hm_config_parse(text, source ? source : "<string>", &h->cfg, err,
                             sizeof err);
    else
        rc = hm_config_defaults(&h->cfg);
    if (rc != HERMES_OK) {
        hm_config_defaults(&h->cfg); /* so close() has a consistent cfg */
        return open_failed(h, rc, rc == HERMES_ENOMEM ? "out of memory" : err);
    }
    return open_backend(h, linked);
}

/* The start of every hermes_open*(): out is where the handle goes. */
#define OPEN_ENTER(out)                                                        \
    do {                                                                       \
        hm_clear_error();                                                      \
        if (!(out))                                                            \
            return hm_error(NULL, HERMES_EINVAL, "%s: out is NULL", __func__); \
    } while (0)

hermes_rc hermes_open(hermes **out, const char *path)
{
    OPEN_ENTER(out);
    if (!path) {
        const char *env = getenv("HERMES_CONFIG");
        if (env && *env)
            path = env;
    }
    return open_common(out, (open_source){.path = path}, NULL);
}

/* A failed handle for bad arguments, so that *out is set as documented. */
static hermes_rc open_invalid(hermes **out, const char *why)
{
    hermes *h = handle_new();
    *out = h;
    if (!h)
        return hm_error(NULL, HERMES_ENOMEM, "out of memory for a new handle");
    open_failed(h, HERMES_EINVAL, why);
    return HERMES_EINVAL;
}

hermes_rc hermes_open_string(hermes **out, const char *text, const char *source)
{
    OPEN_ENTER(out);
    if (!text)
        return open_invalid(out, "hermes_open_string: text is NULL");
    return open_common(out, (open_source){.text = text, .name = source}, NULL);
}

hermes_rc hermes_open_defaults(hermes **out)
{
    OPEN_ENTER(out);
    return open_common(out, (open_source){0}, NULL);
}

hermes_rc hermes_open_with(hermes **out, const char *text, const char *source,
                           const hermes_backend *backend)
{
    OPEN_ENTER(out);
    if (!backend)
        return open_invalid(out, "hermes_open_with: backend is NULL");
    return open_common(out, (open_source){.text = text, .name = source},
                       backend);
}

hermes_rc hermes_open_options(hermes **out, const hermes_options *options)
{
    OPEN_ENTER(out);
    if (!options)
        return open_invalid(out, "hermes_open_options: options is NULL");
    return open_common(out, (open_source){.options = options}, NULL);
}

void hm_fn_free(hermes_fn *fn)
{
    hm_taglist_free(&fn->tags);
    free(fn->name);
    free(fn->ename);
    free(fn->key_head);
    free(fn);
}

void hermes_close(hermes *h)
{
    if (!h)
        return;
    hm_fork_untrack(h);
    if (!h->failed && h->be && h->be_state)
        hm_publish_retract(h);
    for (hermes_fn *fn = h->fns, *next; fn; fn = next) {
        next = fn->next;
        if (fn->slot && *fn->slot == fn)
            *fn->slot = NULL;
        hm_fn_free(fn);
    }
    if (h->be && h->be_state)
        h->be->close(h->be_state);
    hm_plugin_unload(&h->plugin);
    hm_config_free(&h->cfg);
    free(h->entry_prefix);
    free(h->tag_prefix);
    free(h->lock_prefix);
    free(h->ns_key);
    hm_flights_free(&h->flights);
    pthread_mutex_destroy(&h->be_mu);
    pthread_mutex_destroy(&h->fns_mu);
    pthread_mutex_destroy(&h->logger.mu);
    free(h);
}

const char *hermes_backend_name(const hermes *h)
{
    return h && h->be ? h->be->name : "";
}

const char *hermes_backend_version(const hermes *h)
{
    return h && h->be ? h->be->version : "";
}

const hm_config *hm_handle_config(const hermes *h)
{
    return &h->cfg;
}

const hermes_backend *hm_handle_backend(const hermes *h)
{
    return h->be;
}

const char *hm_handle_plugin_path(const hermes *h)
{
    return h->plugin.path ? h->plugin.path : "?";
}

const char *hm_handle_entry_prefix(const hermes *h)
{
    return h->entry_prefix;
}

const char *hm_handle_ns_key(const hermes *h)
{
    return h->ns_key;
}
