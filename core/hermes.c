/*
 * The handle and the public API: opening (config, plugin, backend state),
 * registering cached functions, the memoized call, direct access, clean,
 * flush and stats.
 *
 * A memoized call is: one batched read of the entry and its tags; on a hit,
 * done.  On a miss, in-process followers wait for one leader; the leader
 * takes the backend lock (polling with backoff while another process holds
 * it, bounded by lock_wait_ms), reads again, creates missing tags, computes,
 * writes the record under the versions it read, and unlocks.  A failing
 * backend never fails the call: the value is computed directly unless the
 * configuration says otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "protocol.h"

struct hermes_result {
    unsigned char *data;
    size_t len;
    bool set;
    bool nocache;
    bool has_ttl;
    uint32_t ttl;
    char *errmsg;
};

/* ----------------------------------------------------------- open/close */

static char *concat(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    if (s) {
        memcpy(s, a, la);
        memcpy(s + la, b, lb + 1);
    }
    return s;
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
    hm_errkey_init(h);
    h->cfg.log_level = HERMES_LOG_WARN;
    return h;
}

static hermes_rc open_failed(hermes *h, hermes_rc rc, const char *msg)
{
    h->failed = true;
    snprintf(h->open_err, sizeof h->open_err, "%s", msg);
    return rc;
}

/* Loads the plugin (unless given a descriptor) and opens the backend. */
static hermes_rc open_backend(hermes *h, const hermes_backend *linked)
{
    char err[1024];
    hermes_rc rc;
    if (linked) {
        rc = hm_plugin_check(linked, "(linked)", err, sizeof err);
        h->plugin.desc = linked;
        h->plugin.path = strdup("(linked)");
        if (rc == HERMES_OK && !h->plugin.path)
            rc = HERMES_ENOMEM;
    } else {
        rc = hm_plugin_load(h->cfg.backend, h->cfg.plugin_path, &h->plugin, err,
                            sizeof err);
    }
    if (rc != HERMES_OK)
        return open_failed(h, rc, rc == HERMES_ENOMEM ? "out of memory" : err);
    h->be = h->plugin.desc;
    h->be_serialize = !(h->be->caps & HERMES_CAP_THREADSAFE);
    hm_host_init(h);

    h->entry_prefix = concat(h->cfg.prefix, ":entry:");
    h->tag_prefix = concat(h->cfg.prefix, ":tag:");
    h->lock_prefix = concat(h->cfg.prefix, ":lock:");
    if (!h->entry_prefix || !h->tag_prefix || !h->lock_prefix)
        return open_failed(h, HERMES_ENOMEM, "out of memory");
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
    if (st == HERMES_BE_OK)
        return HERMES_OK;
    h->be_state = NULL;
    oe.msg[sizeof oe.msg - 1] = '\0';
    if (!oe.msg[0])
        snprintf(oe.msg, sizeof oe.msg, "%s", hm_be_status_str(st));
    if (sec && oe.kv_index >= 0 && (size_t)oe.kv_index < sec->n)
        snprintf(err, sizeof err, "%s:%d: %s: %s (backend %s, %s)",
                 h->cfg.source, sec->kv[oe.kv_index].line,
                 sec->kv[oe.kv_index].key, oe.msg, h->be->name, h->plugin.path);
    else
        snprintf(err, sizeof err, "%s: backend %s (%s) failed to open: %s",
                 h->cfg.source, h->be->name, h->plugin.path, oe.msg);
    return open_failed(h,
                       st == HERMES_BE_NOMEM     ? HERMES_ENOMEM
                       : st == HERMES_BE_INVALID ? HERMES_ECONFIG
                                                 : HERMES_EBACKEND,
                       err);
}

static hermes_rc open_common(hermes **out, const char *path, const char *text,
                             const char *source, const hermes_backend *linked)
{
    hermes *h = handle_new();
    *out = h;
    if (!h)
        return HERMES_ENOMEM;
    char err[1024];
    hermes_rc rc;
    if (path)
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

hermes_rc hermes_open(hermes **out, const char *path)
{
    if (!out)
        return HERMES_EINVAL;
    if (!path) {
        const char *env = getenv("HERMES_CONFIG");
        if (env && *env)
            path = env;
    }
    return open_common(out, path, NULL, NULL, NULL);
}

/* A failed handle for bad arguments, so that *out is set as documented. */
static hermes_rc open_invalid(hermes **out, const char *why)
{
    hermes *h = handle_new();
    *out = h;
    if (!h)
        return HERMES_ENOMEM;
    open_failed(h, HERMES_EINVAL, why);
    return HERMES_EINVAL;
}

hermes_rc hermes_open_string(hermes **out, const char *text, const char *source)
{
    if (!out)
        return HERMES_EINVAL;
    if (!text)
        return open_invalid(out, "hermes_open_string: text is NULL");
    return open_common(out, NULL, text, source, NULL);
}

hermes_rc hermes_open_defaults(hermes **out)
{
    if (!out)
        return HERMES_EINVAL;
    return open_common(out, NULL, NULL, NULL, NULL);
}

hermes_rc hermes_open_with(hermes **out, const char *text, const char *source,
                           const hermes_backend *backend)
{
    if (!out)
        return HERMES_EINVAL;
    if (!backend)
        return open_invalid(out, "hermes_open_with: backend is NULL");
    return open_common(out, NULL, text, source, backend);
}

static void fn_free(hermes_fn *fn)
{
    for (size_t i = 0; i < fn->ntags; i++) {
        free(fn->tags ? fn->tags[i] : NULL);
        free(fn->tag_keys ? (void *)fn->tag_keys[i].data : NULL);
    }
    free(fn->tags);
    free(fn->tag_keys);
    free(fn->tag_names);
    free(fn->name);
    free(fn->ename);
    free(fn);
}

void hermes_close(hermes *h)
{
    if (!h)
        return;
    for (hermes_fn *fn = h->fns, *next; fn; fn = next) {
        next = fn->next;
        if (fn->slot && *fn->slot == fn)
            *fn->slot = NULL;
        fn_free(fn);
    }
    if (h->be && h->be_state)
        h->be->close(h->be_state);
    hm_plugin_unload(&h->plugin);
    hm_config_free(&h->cfg);
    free(h->entry_prefix);
    free(h->tag_prefix);
    free(h->lock_prefix);
    hm_flights_free(&h->flights);
    hm_errkey_free(h);
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

#define CHECK_HANDLE(h)                                                        \
    do {                                                                       \
        if (!(h) || (h)->failed)                                               \
            return HERMES_EINVAL;                                              \
    } while (0)

/* ----------------------------------------------------------- registration */

static bool name_ok(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == 0x7f)
            return false;
    return true;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted, de-duplicated copy of a NULL-terminated tag list. */
static hermes_rc tags_copy(hermes *h, const char *const *in, char ***out,
                           size_t *n)
{
    size_t cnt = 0;
    *out = NULL;
    *n = 0;
    while (in && in[cnt]) {
        if (!name_ok(in[cnt]))
            return hm_error(h, HERMES_EINVAL,
                            "tag '%s': tags must be non-empty and without "
                            "spaces or control characters",
                            in[cnt]);
        cnt++;
    }
    if (cnt == 0)
        return HERMES_OK;
    char **t = calloc(cnt, sizeof *t);
    if (!t)
        return HERMES_ENOMEM;
    for (size_t i = 0; i < cnt; i++)
        t[i] = (char *)in[i];
    qsort(t, cnt, sizeof *t, cmp_str);
    size_t u = 0;
    for (size_t i = 0; i < cnt; i++)
        if (u == 0 || strcmp(t[u - 1], t[i]) != 0)
            t[u++] = t[i];
    for (size_t i = 0; i < u; i++) {
        if (!(t[i] = strdup(t[i]))) {
            while (i > 0)
                free(t[--i]);
            free(t);
            return HERMES_ENOMEM;
        }
    }
    *out = t;
    *n = u;
    return HERMES_OK;
}

/* The tag names with their lengths, pointing into tags. */
static hermes_rc tag_names_build(char **tags, size_t n, hermes_bytes **out)
{
    *out = NULL;
    if (n == 0)
        return HERMES_OK;
    if (!(*out = calloc(n, sizeof **out)))
        return HERMES_ENOMEM;
    for (size_t i = 0; i < n; i++)
        (*out)[i] = (hermes_bytes){tags[i], strlen(tags[i])};
    return HERMES_OK;
}

static hermes_rc tag_keys_build(hermes *h, char **tags, size_t n,
                                hermes_bytes **out)
{
    *out = NULL;
    if (n == 0)
        return HERMES_OK;
    hermes_bytes *k = calloc(n, sizeof *k);
    if (!k)
        return HERMES_ENOMEM;
    hm_buf b;
    hm_buf_init(&b);
    for (size_t i = 0; i < n; i++) {
        hm_tag_key(h, tags[i], &b);
        char *s = b.failed ? NULL : strdup(b.data);
        if (!s) {
            for (size_t j = 0; j < i; j++)
                free((void *)k[j].data);
            free(k);
            hm_buf_free(&b);
            return HERMES_ENOMEM;
        }
        k[i].data = s;
        k[i].len = b.len;
    }
    hm_buf_free(&b);
    *out = k;
    return HERMES_OK;
}

hermes_rc hermes_fn_register(hermes *h, const char *name,
                             const hermes_fn_options *opts, hermes_fn **out)
{
    CHECK_HANDLE(h);
    if (!out || !name_ok(name))
        return hm_error(h, HERMES_EINVAL,
                        "function name must be non-empty and without spaces "
                        "or control characters");
    *out = NULL;
    hermes_fn *fn = calloc(1, sizeof *fn);
    if (!fn)
        return HERMES_ENOMEM;
    fn->h = h;
    hermes_rc rc = HERMES_ENOMEM;
    if (!(fn->name = strdup(name)))
        goto fail;
    hm_buf b;
    hm_buf_init(&b);
    hm_buf_add_escaped(&b, name, strlen(name));
    fn->ename = b.failed ? NULL : strdup(b.data);
    hm_buf_free(&b);
    if (!fn->ename)
        goto fail;
    if (opts) {
        fn->ttl = opts->ttl;
        fn->key = opts->key;
        if ((rc = tags_copy(h, opts->tags, &fn->tags, &fn->ntags)) != HERMES_OK)
            goto fail;
    }
    if ((rc = tag_keys_build(h, fn->tags, fn->ntags, &fn->tag_keys)) !=
            HERMES_OK ||
        (rc = tag_names_build(fn->tags, fn->ntags, &fn->tag_names)) !=
            HERMES_OK)
        goto fail;

    pthread_mutex_lock(&h->fns_mu);
    for (hermes_fn *f = h->fns; f; f = f->next) {
        if (strcmp(f->name, name) == 0) {
            pthread_mutex_unlock(&h->fns_mu);
            rc = hm_error(h, HERMES_EEXIST,
                          "function '%s' is already registered", name);
            goto fail;
        }
    }
    fn->next = h->fns;
    h->fns = fn;
    pthread_mutex_unlock(&h->fns_mu);
    *out = fn;
    return HERMES_OK;
fail:
    fn_free(fn);
    return rc;
}

/*
 * For HERMES_REGISTER: the slot is the macro's static pointer.  It is set
 * only on success (a second registration leaves the first in place) and
 * cleared by hermes_close(), so a cached function called after close
 * computes directly instead of touching freed memory.
 */
hermes_rc hermes__register(hermes *h, const char *name,
                           const hermes_fn_options *opts, hermes_fn **slot)
{
    hermes_fn *fn;
    hermes_rc rc = hermes_fn_register(h, name, opts, &fn);
    if (rc == HERMES_OK) {
        fn->slot = slot;
        *slot = fn;
    }
    return rc;
}

hermes *hermes_fn_handle(const hermes_fn *fn)
{
    return fn ? fn->h : NULL;
}

/* ------------------------------------------------------------------ keys */

/*
 * Builds the entry key "<prefix>:entry:<name>:<arghash>" (or
 * "<prefix>:entry:<custom>").
 */
static hermes_rc entry_key(hermes_fn *fn, const void *args, size_t alen,
                           void *arg, hm_buf *entry)
{
    hermes *h = fn->h;
    hm_buf_adds(entry, h->entry_prefix);
    size_t head = entry->len;
    if (fn->key) {
        char small[256], *k = small;
        int n = fn->key(arg, small, sizeof small);
        if (n >= 0 && (size_t)n >= sizeof small) {
            size_t want = (size_t)n;
            k = malloc(want + 1);
            if (!k)
                return HERMES_ENOMEM;
            n = fn->key(arg, k, want + 1);
            if (n >= 0 && (size_t)n != want)
                n = -1; /* the key changed between two calls */
        }
        if (n < 0 || memchr(k, '\0', (size_t)n) != NULL) {
            if (k != small)
                free(k);
            return hm_error(h, HERMES_EINVAL, "%s: the key function failed",
                            fn->name);
        }
        hm_buf_add_escaped(entry, k, (size_t)n);
        if (k != small)
            free(k);
    } else {
        char hash[HM_HASH_B64_LEN];
        hm_hash128_b64(args, alen, hash);
        hm_buf_adds(entry, fn->ename);
        hm_buf_add(entry, ":", 1);
        hm_buf_add(entry, hash, sizeof hash);
    }
    hm_key_fit(entry, head, h->be->max_key_len);
    return entry->failed ? HERMES_ENOMEM : HERMES_OK;
}

/* The lock key of an entry: the same suffix under "<prefix>:lock:".  Built
 * only on a miss; a hit never needs it. */
static hermes_rc lock_key(hermes *h, const hm_buf *entry, hm_buf *lock)
{
    size_t head = strlen(h->entry_prefix);
    hm_buf_adds(lock, h->lock_prefix);
    size_t lhead = lock->len;
    hm_buf_add(lock, entry->data + head, entry->len - head);
    hm_key_fit(lock, lhead, h->be->max_key_len);
    return lock->failed ? HERMES_ENOMEM : HERMES_OK;
}

static hermes_bytes buf_bytes(const hm_buf *b)
{
    return (hermes_bytes){b->data, b->len};
}

/* -------------------------------------------------------------- compute */

hermes_rc hermes_result_set(hermes_result *res, const void *p, size_t n)
{
    if (!res || (!p && n))
        return HERMES_EINVAL;
    unsigned char *d = malloc(n + 1);
    if (!d)
        return HERMES_ENOMEM;
    if (n)
        memcpy(d, p, n);
    d[n] = '\0';
    free(res->data);
    res->data = d;
    res->len = n;
    res->set = true;
    return HERMES_OK;
}

void hermes_result_nocache(hermes_result *res)
{
    if (res)
        res->nocache = true;
}

void hermes_result_ttl(hermes_result *res, uint32_t ttl_seconds)
{
    if (res) {
        res->has_ttl = true;
        res->ttl = ttl_seconds;
    }
}

void hermes_result_error(hermes_result *res, const char *msg)
{
    if (res && msg) {
        free(res->errmsg);
        res->errmsg = strdup(msg);
    }
}

/* The state of one memoized call. */
typedef struct call {
    hermes *h;
    hermes_fn *fn;
    hermes_compute_fn compute;
    void *arg;
    hm_buf entry, lock;
    hm_read rd;
    hm_verdict verdict; /* of the last read */
} call;

/*
 * Runs the compute callback into o.  Stores the result when store is set
 * and the callback allows it.  A callback that returns 0 without a value
 * produced an empty value.
 */
static void compute(call *c, bool store, hm_outcome *o)
{
    hermes *h = c->h;
    hermes_result res;
    memset(&res, 0, sizeof res);
    uint64_t t0 = hm_monotonic_ns();
    int failed = c->compute(c->arg, &res);
    uint64_t us = (hm_monotonic_ns() - t0) / 1000u;
    HM_COUNT(h, computations, 1);
    memset(o, 0, sizeof *o);
    if (failed) {
        HM_COUNT(h, compute_errors, 1);
        o->rc = HERMES_ECOMPUTE;
        o->errmsg = res.errmsg;
        free(res.data);
        return;
    }
    free(res.errmsg);
    if (!res.set && hermes_result_set(&res, "", 0) != HERMES_OK) {
        o->rc = HERMES_ENOMEM;
        return;
    }
    if (store && !res.nocache) {
        uint32_t ttl = res.has_ttl  ? res.ttl
                       : c->fn->ttl ? c->fn->ttl
                                    : h->cfg.ttl;
        hm_write_entry(h, buf_bytes(&c->entry), c->fn->ntags,
                       (const char *const *)c->fn->tags, &c->rd, res.data,
                       res.len, ttl,
                       us > UINT32_MAX ? UINT32_MAX : (uint32_t)us);
    }
    o->rc = HERMES_OK;
    o->value = res.data;
    o->len = res.len;
}

/* Reads entry and tags; on a hit moves the payload into o and returns 1.
 * The verdict is left in c->verdict. */
static int read_hit(call *c, int *status, hm_outcome *o)
{
    const void *payload;
    size_t len;
    *status = hm_read_entry(c->h, buf_bytes(&c->entry), c->fn->ntags,
                            c->fn->tag_keys, &c->rd);
    if (*status != HERMES_BE_OK)
        return 0;
    c->verdict = hm_judge(c->h, &c->rd, c->fn->tag_names, &payload, &len);
    if (c->verdict != HM_HIT)
        return 0;
    /* The payload ends the record but for the 4-byte checksum: slide it to
     * the front of the buffer we already own instead of copying it again. */
    unsigned char *buf = c->rd.entry;
    memmove(buf, payload, len);
    buf[len] = '\0';
    c->rd.entry = NULL;
    memset(o, 0, sizeof *o);
    o->value = buf;
    o->len = len;
    o->rc = HERMES_OK;
    return 1;
}

/* What a failing backend turns into, per on_backend_error. */
static void backend_failed(call *c, int status, hm_outcome *o)
{
    if (c->h->cfg.on_backend_error == HM_FALLBACK_FAIL) {
        memset(o, 0, sizeof *o);
        o->rc = HERMES_EBACKEND;
        o->errmsg = strdup(hm_be_status_str(status));
        return;
    }
    compute(c, false, o);
}

static void lock_timed_out(call *c, hm_outcome *o)
{
    HM_COUNT(c->h, lock_timeouts, 1);
    if (c->h->cfg.on_lock_timeout == HM_FALLBACK_FAIL) {
        memset(o, 0, sizeof *o);
        o->rc = HERMES_ETIMEOUT;
        return;
    }
    compute(c, false, o);
}

/*
 * The leader of a miss: take the backend lock or wait for its holder,
 * read again, create missing tags, compute, store, unlock.
 */
static void lead(call *c, hm_outcome *o)
{
    hermes *h = c->h;
    if (lock_key(h, &c->entry, &c->lock) != HERMES_OK) {
        memset(o, 0, sizeof *o);
        o->rc = HERMES_ENOMEM;
        return;
    }
    char token[128];
    size_t toklen;
    hm_lock_token(h, token, sizeof token, &toklen);
    hermes_bytes tok = {token, toklen};
    uint64_t start = hm_monotonic_ns(), waited_from = 0, backoff = 0;
    uint64_t deadline = start + (uint64_t)h->cfg.lock_wait_ms * 1000000u;
    int acquired = 0, st;

    for (;;) {
        st = hm_be_lock(h, buf_bytes(&c->lock), tok, h->cfg.lock_ttl_ms,
                        &acquired);
        if (st != HERMES_BE_OK) {
            backend_failed(c, st, o);
            return;
        }
        if (acquired) {
            HM_COUNT(h, lock_acquired, 1);
            break;
        }
        uint64_t now = hm_monotonic_ns();
        if (!waited_from) {
            waited_from = now;
            HM_COUNT(h, lock_contended, 1);
        }
        if (now >= deadline) {
            HM_COUNT(h, lock_wait_ns, now - waited_from);
            lock_timed_out(c, o);
            return;
        }
        backoff = hm_backoff_next(backoff);
        hm_sleep_ns(backoff < deadline - now ? backoff : deadline - now);
        int hit = read_hit(c, &st, o);
        if (hit || st != HERMES_BE_OK) {
            HM_COUNT(h, lock_wait_ns, hm_monotonic_ns() - waited_from);
            if (!hit)
                backend_failed(c, st, o);
            return;
        }
    }
    if (waited_from)
        HM_COUNT(h, lock_wait_ns, hm_monotonic_ns() - waited_from);

    /* Better to read twice than to compute twice: another process may have
     * stored the value between our miss and our lock. */
    if (!read_hit(c, &st, o)) {
        if (st == HERMES_BE_OK)
            st = hm_tags_ensure(h, c->fn->ntags, c->fn->tag_keys, &c->rd);
        compute(c, st == HERMES_BE_OK, o);
    }
    int released;
    hm_be_unlock(h, buf_bytes(&c->lock), tok, &released);
}

/* A miss: lead the computation or follow the one in flight. */
static void miss(call *c, hm_outcome *o)
{
    hermes *h = c->h;
    hm_flight *mine;
    hm_flight *f = hm_flight_join(h, c->entry.data, c->entry.len, &mine);
    if (f) {
        uint64_t t0 = hm_monotonic_ns();
        int got =
            hm_flight_wait(h, f, (uint64_t)h->cfg.lock_wait_ms * 1000000u, o);
        HM_COUNT(h, lock_wait_ns, hm_monotonic_ns() - t0);
        if (got == 0)
            HM_COUNT(h, coalesced, 1);
        else
            lock_timed_out(c, o);
        return;
    }
    lead(c, o);
    hm_flight_land(h, mine, o);
}

static hermes_rc deliver(call *c, hm_outcome *o, void **value, size_t *len)
{
    hermes_rc rc = o->rc;
    if (rc == HERMES_OK) {
        *value = o->value;
        *len = o->len;
        o->value = NULL;
    } else if (rc == HERMES_ECOMPUTE) {
        hm_error(c->h, rc, "%s: %s", c->fn->name,
                 o->errmsg ? o->errmsg : "the compute callback failed");
    } else if (rc == HERMES_ETIMEOUT) {
        hm_error(c->h, rc, "%s: waited %u ms for another caller's computation",
                 c->fn->name, c->h->cfg.lock_wait_ms);
    } else if (rc == HERMES_EBACKEND) {
        hm_error(c->h, rc, "%s: backend %s: %s", c->fn->name, c->h->be->name,
                 o->errmsg ? o->errmsg : "failed");
    } else {
        hm_error(c->h, rc, "%s: %s", c->fn->name, hermes_strerror(rc));
    }
    hm_outcome_free(o);
    return rc;
}

hermes_rc hermes_call(hermes_fn *fn, const void *args, size_t args_len,
                      hermes_compute_fn compute_fn, void *arg, void **value,
                      size_t *len)
{
    if (value)
        *value = NULL;
    if (len)
        *len = 0;
    if (!fn || !compute_fn || !value || !len || (!args && args_len))
        return HERMES_EINVAL;
    /* Field by field: zeroing the whole struct (key buffers, inline tag
     * versions) costs more than the rest of a hit's bookkeeping. */
    call c;
    c.h = fn->h;
    c.fn = fn;
    c.compute = compute_fn;
    c.arg = arg;
    c.verdict = HM_ABSENT;
    hm_outcome o;
    hm_buf_init(&c.entry);
    hm_buf_init(&c.lock);
    hermes_rc rc = entry_key(fn, args, args_len, arg, &c.entry);
    if (rc == HERMES_OK && hm_read_init(&c.rd, fn->ntags) != 0)
        rc = HERMES_ENOMEM;
    if (rc != HERMES_OK) {
        hm_buf_free(&c.entry);
        hm_buf_free(&c.lock);
        return rc == HERMES_ENOMEM ? hm_error(fn->h, rc, "out of memory") : rc;
    }
    int st;
    if (read_hit(&c, &st, &o)) {
        HM_COUNT(c.h, hits, 1);
    } else if (st != HERMES_BE_OK) {
        backend_failed(&c, st, &o);
    } else {
        HM_COUNT(c.h, misses, 1);
        if (c.verdict == HM_STALE)
            HM_COUNT(c.h, stale, 1);
        miss(&c, &o);
    }
    rc = deliver(&c, &o, value, len);
    hm_read_free(&c.rd);
    hm_buf_free(&c.entry);
    hm_buf_free(&c.lock);
    return rc;
}

hermes_rc hermes_invalidate(hermes_fn *fn, const void *args, size_t args_len,
                            void *arg)
{
    if (!fn || (!args && args_len))
        return HERMES_EINVAL;
    hm_buf entry;
    hm_buf_init(&entry);
    hermes_rc rc = entry_key(fn, args, args_len, arg, &entry);
    if (rc == HERMES_OK) {
        hermes_bytes k = buf_bytes(&entry);
        int st = hm_be_del(fn->h, &k, 1);
        if (st != HERMES_BE_OK)
            rc = hm_error(fn->h, HERMES_EBACKEND, "invalidate %s: %s", fn->name,
                          hm_be_status_str(st));
    }
    hm_buf_free(&entry);
    return rc;
}

/* --------------------------------------------------------- direct access */

/* A direct-access key "<prefix>:entry:<key>" and its sorted tags. */
typedef struct direct {
    hm_buf entry;
    char **tags;
    size_t ntags;
    hermes_bytes *tag_keys;
    hermes_bytes *tag_names;
    hm_read rd;
    bool rd_ok;
} direct;

static hermes_rc direct_init(hermes *h, direct *d, const char *key,
                             const char *const *tags)
{
    memset(d, 0, sizeof *d);
    hm_buf_init(&d->entry);
    if (!key)
        return HERMES_EINVAL;
    hm_buf_adds(&d->entry, h->entry_prefix);
    size_t head = d->entry.len;
    hm_buf_add_escaped(&d->entry, key, strlen(key));
    hm_key_fit(&d->entry, head, h->be->max_key_len);
    hermes_rc rc = tags_copy(h, tags, &d->tags, &d->ntags);
    if (rc == HERMES_OK)
        rc = tag_keys_build(h, d->tags, d->ntags, &d->tag_keys);
    if (rc == HERMES_OK)
        rc = tag_names_build(d->tags, d->ntags, &d->tag_names);
    if (rc == HERMES_OK && hm_read_init(&d->rd, d->ntags) != 0)
        rc = HERMES_ENOMEM;
    d->rd_ok = rc == HERMES_OK;
    if (rc == HERMES_OK && d->entry.failed)
        rc = HERMES_ENOMEM;
    return rc;
}

static void direct_free(direct *d)
{
    for (size_t i = 0; i < d->ntags; i++) {
        free(d->tags[i]);
        free(d->tag_keys ? (void *)d->tag_keys[i].data : NULL);
    }
    free(d->tags);
    free(d->tag_keys);
    free(d->tag_names);
    if (d->rd_ok)
        hm_read_free(&d->rd);
    hm_buf_free(&d->entry);
}

hermes_rc hermes_get(hermes *h, const char *key, const char *const *tags,
                     void **value, size_t *len)
{
    CHECK_HANDLE(h);
    if (!value || !len)
        return HERMES_EINVAL;
    *value = NULL;
    *len = 0;
    direct d;
    hermes_rc rc = direct_init(h, &d, key, tags);
    if (rc == HERMES_OK) {
        int st =
            hm_read_entry(h, buf_bytes(&d.entry), d.ntags, d.tag_keys, &d.rd);
        const void *payload;
        size_t plen;
        if (st != HERMES_BE_OK) {
            rc = hm_error(h, HERMES_EBACKEND, "get %s: %s", key,
                          hm_be_status_str(st));
        } else if (hm_judge(h, &d.rd, d.tag_names, &payload, &plen) == HM_HIT) {
            memmove(d.rd.entry, payload, plen);
            d.rd.entry[plen] = '\0';
            *value = d.rd.entry;
            *len = plen;
            d.rd.entry = NULL;
            HM_COUNT(h, hits, 1);
        } else {
            HM_COUNT(h, misses, 1);
            rc = HERMES_ENOTFOUND;
        }
    }
    direct_free(&d);
    return rc;
}

hermes_rc hermes_set(hermes *h, const char *key, const void *value, size_t len,
                     const char *const *tags, uint32_t ttl)
{
    CHECK_HANDLE(h);
    if (!value && len)
        return HERMES_EINVAL;
    direct d;
    hermes_rc rc = direct_init(h, &d, key, tags);
    if (rc == HERMES_OK) {
        int st = HERMES_BE_OK;
        if (d.ntags) {
            hermes_bytes none = {NULL, 0};
            st = hm_read_entry(h, none, d.ntags, d.tag_keys, &d.rd);
            if (st == HERMES_BE_OK)
                st = hm_tags_ensure(h, d.ntags, d.tag_keys, &d.rd);
        }
        if (st == HERMES_BE_OK)
            st = hm_write_entry(h, buf_bytes(&d.entry), d.ntags,
                                (const char *const *)d.tags, &d.rd, value, len,
                                ttl ? ttl : h->cfg.ttl, 0);
        if (st != HERMES_BE_OK)
            rc = hm_error(h,
                          st == HERMES_BE_TOOBIG  ? HERMES_ETOOBIG
                          : st == HERMES_BE_NOMEM ? HERMES_ENOMEM
                                                  : HERMES_EBACKEND,
                          "set %s: %s", key, hm_be_status_str(st));
    }
    direct_free(&d);
    return rc;
}

hermes_rc hermes_delete(hermes *h, const char *key)
{
    CHECK_HANDLE(h);
    direct d;
    hermes_rc rc = direct_init(h, &d, key, NULL);
    if (rc == HERMES_OK) {
        hermes_bytes k = buf_bytes(&d.entry);
        int st = hm_be_del(h, &k, 1);
        if (st != HERMES_BE_OK)
            rc = hm_error(h, HERMES_EBACKEND, "delete %s: %s", key,
                          hm_be_status_str(st));
    }
    direct_free(&d);
    return rc;
}

hermes_rc hermes_clean(hermes *h, const char *const *tags)
{
    CHECK_HANDLE(h);
    char **t;
    size_t n;
    hermes_bytes *keys;
    hermes_rc rc = tags_copy(h, tags, &t, &n);
    if (rc != HERMES_OK)
        return rc;
    rc = tag_keys_build(h, t, n, &keys);
    if (rc == HERMES_OK && n > 0) {
        int st = hm_be_del(h, keys, n);
        if (st != HERMES_BE_OK)
            rc =
                hm_error(h, HERMES_EBACKEND, "clean: %s", hm_be_status_str(st));
    }
    for (size_t i = 0; i < n; i++) {
        free(t[i]);
        free(keys ? (void *)keys[i].data : NULL);
    }
    free(t);
    free(keys);
    return rc;
}

hermes_rc hermes_flush(hermes *h)
{
    CHECK_HANDLE(h);
    char *prefix = concat(h->cfg.prefix, ":");
    if (!prefix)
        return HERMES_ENOMEM;
    int st = hm_be_flush(h, (hermes_bytes){prefix, strlen(prefix)});
    free(prefix);
    if (st != HERMES_BE_OK)
        return hm_error(h, HERMES_EBACKEND, "flush: %s", hm_be_status_str(st));
    return HERMES_OK;
}

/* ----------------------------------------------------------------- stats */

void hermes_stats_get(const hermes *h, hermes_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!h)
        return;
    hermes *m = (hermes *)h; /* atomics are read, never written, here */
#define LOAD(f) out->f = atomic_load_explicit(&m->stats.f, memory_order_relaxed)
    LOAD(hits);
    LOAD(misses);
    LOAD(stale);
    LOAD(computations);
    LOAD(compute_errors);
    LOAD(coalesced);
    LOAD(lock_acquired);
    LOAD(lock_contended);
    LOAD(lock_wait_ns);
    LOAD(lock_timeouts);
    LOAD(backend_errors);
    LOAD(corrupt);
#undef LOAD
}
