/*
 * The configuration parser: turns an INI file into the [hermes] settings
 * the core uses and keeps every other section verbatim, with line numbers,
 * for the plugin that owns it.
 *
 * Syntax: "[section]" headers, "key = value" lines, blank lines, and
 * comments on lines of their own starting with ';' or '#'.  Whitespace
 * around keys and values is trimmed; a value in double quotes keeps its
 * spaces and is taken literally between the outer quotes (no escapes).
 * Inline comments are NOT supported: a value is the rest of the line, so
 * "ttl = 60 ; a minute" is an error and "password = a;b#c" keeps its ';'
 * and '#'.  Passwords and socket paths may contain those characters, and a
 * loud error beats a value silently cut short.  CRLF line endings and a
 * UTF-8 byte order mark are accepted; lines have no length limit.
 *
 * Every error is HERMES_ECONFIG with "SOURCE:LINE: KEY: reason" in err (or
 * "SOURCE:LINE: reason" when no key is involved); running out of memory is
 * HERMES_ENOMEM.  The parser never leaves a half-filled hm_config behind.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"

#define DEFAULT_BACKEND "dict"
#define DEFAULT_TTL 3600
#define DEFAULT_PREFIX "cache"
#define DEFAULT_LOCK_TTL_MS 10000
#define DEFAULT_LOCK_WAIT_MS 5000
#define DEFAULT_LOCK_POLL_MS 50
#define MAX_LOCK_POLL_MS 60000
#define MAX_SETTING 2147483648u /* 2^31: the largest number any key takes */

/* The [hermes] keys, in the order the "known:" list of an error names them. */
enum hermes_key {
    K_BACKEND,
    K_TTL,
    K_PREFIX,
    K_PLUGIN_PATH,
    K_LOCK_TTL_MS,
    K_LOCK_WAIT_MS,
    K_LOCK_POLL_MS,
    K_ON_LOCK_TIMEOUT,
    K_ON_BACKEND_ERROR,
    K_LOG_LEVEL,
    K_LOG,
    K_EARLY_REFRESH,
    K_GRACE,
    K_STALE_IF_ERROR,
    K_PUBLISH_STATS,
    K_PUBLISH_INTERVAL_MS,
    K_COUNT
};

static const char *const hermes_keys[K_COUNT] = {
    "backend",
    "ttl",
    "prefix",
    "plugin_path",
    "lock_ttl_ms",
    "lock_wait_ms",
    "lock_poll_ms",
    "on_lock_timeout",
    "on_backend_error",
    "log_level",
    "log",
    "early_refresh",
    "grace",
    "stale_if_error",
    "publish_stats",
    "publish_interval_ms",
};

typedef struct parser {
    const char *source;
    size_t line; /* 0 for settings given in code */
    char *err;
    size_t errlen;
    hm_config cfg;
    int section;        /* 0 before any header, 1 in [hermes], 2 other */
    size_t current;     /* in a plugin section: its index in cfg.sections */
    bool hermes_seen;   /* a [hermes] header was read */
    bool seen[K_COUNT]; /* each [hermes] key that was set */
} parser;

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static void trim(const char **s, const char **e)
{
    while (*s < *e && is_blank(**s))
        (*s)++;
    while (*e > *s && is_blank((*e)[-1]))
        (*e)--;
}

/* Printable ASCII other than space, or any byte of a UTF-8 sequence: what
 * keys, prefixes and the like may contain (cache keys never hold spaces or
 * control characters). */
static int is_word_char(unsigned char c)
{
    return (c > 0x20 && c < 0x7f) || c >= 0x80;
}

static int is_word(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_word_char((unsigned char)s[i]))
            return 0;
    return 1;
}

/*
 * Writes n bytes of s into buf (len >= 8), control characters as \xNN,
 * shortened with "..." when they do not fit, NUL-terminated; returns the
 * length written.
 */
static size_t escape(const char *s, size_t n, char *buf, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (o + 8 > len) { /* room for "\xNN", "..." and NUL */
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (c < 0x20 || c == 0x7f) {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 15];
        } else {
            buf[o++] = (char)c;
        }
    }
    buf[o] = '\0';
    return o;
}

const char *hm_config_escape(const char *s, char *buf, size_t len)
{
    if (len < 8) {
        if (len > 0)
            buf[0] = '\0';
        return buf;
    }
    escape(s, strlen(s), buf, len);
    return buf;
}

int hm_config_where(char *buf, size_t len, const char *source, size_t line)
{
    if (line == 0)
        return snprintf(buf, len, "%s", source);
    return snprintf(buf, len, "%s:%zu", source, line);
}

/*
 * Writes s as 'text' into buf (len >= 10) for an error message, escaping
 * control characters and shortening long values, so that a message is
 * always one readable line whatever the file holds.
 */
static const char *quote(const char *s, size_t n, char *buf, size_t len)
{
    size_t o = 1;

    buf[0] = '\'';
    o += escape(s, n, buf + 1, len - 2);
    buf[o++] = '\'';
    buf[o] = '\0';
    return buf;
}

/* Formats "SOURCE:LINE: [KEY: ]reason" into the caller's buffer (without
 * ":LINE" for settings given in code). */
static hermes_rc fail(parser *p, const char *key, const char *fmt, ...)
{
    if (p->err == NULL || p->errlen == 0)
        return HERMES_ECONFIG;
    int n = hm_config_where(p->err, p->errlen, p->source, p->line);
    if (n >= 0 && (size_t)n < p->errlen)
        n += snprintf(p->err + n, p->errlen - (size_t)n, ": ");
    if (key != NULL && n >= 0 && (size_t)n < p->errlen)
        n += snprintf(p->err + n, p->errlen - (size_t)n, "%s: ", key);
    if (n >= 0 && (size_t)n < p->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return HERMES_ECONFIG;
}

static hermes_rc nomem(parser *p)
{
    if (p->err != NULL && p->errlen > 0)
        snprintf(p->err, p->errlen, "%s: out of memory", p->source);
    return HERMES_ENOMEM;
}

/*
 * Makes room for one more element in an array of n elements whose capacity
 * is implicit: the smallest power of two >= max(n, 4).  hm_section has no
 * capacity field, and this keeps appends amortised O(1) without one.
 */
static int grow(void **arr, size_t n, size_t size)
{
    if (n != 0 && (n < 4 || (n & (n - 1)) != 0))
        return 0;
    size_t cap = n == 0 ? 4 : n * 2;
    if (cap > SIZE_MAX / size)
        return -1;
    void *q = realloc(*arr, cap * size);
    if (q == NULL)
        return -1;
    *arr = q;
    return 0;
}

static void free_section(hm_section *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free((char *)s->kv[i].key);
        free((char *)s->kv[i].value);
    }
    free(s->kv);
    free(s->lines);
    free(s->name);
}

void hm_config_free(hm_config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->nsections; i++)
        free_section(&cfg->sections[i]);
    free(cfg->sections);
    free(cfg->source);
    free(cfg->backend);
    free(cfg->prefix);
    free(cfg->plugin_path);
    memset(cfg, 0, sizeof *cfg);
}

static hermes_rc fill_defaults(hm_config *cfg, const char *source)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->source = strdup(source);
    cfg->backend = strdup(DEFAULT_BACKEND);
    cfg->prefix = strdup(DEFAULT_PREFIX);
    if (cfg->source == NULL || cfg->backend == NULL || cfg->prefix == NULL) {
        hm_config_free(cfg);
        return HERMES_ENOMEM;
    }
    cfg->ttl = DEFAULT_TTL;
    cfg->lock_ttl_ms = DEFAULT_LOCK_TTL_MS;
    cfg->lock_wait_ms = DEFAULT_LOCK_WAIT_MS;
    cfg->lock_poll_ms = DEFAULT_LOCK_POLL_MS;
    cfg->on_lock_timeout = HM_FALLBACK_COMPUTE;
    cfg->on_backend_error = HM_FALLBACK_COMPUTE;
    cfg->log_level = HERMES_LOG_WARN;
    cfg->early_refresh = HM_DEFAULT_EARLY_REFRESH;
    cfg->publish_stats = -1;
    cfg->publish_interval_ms = 5000;
    return HERMES_OK;
}

hermes_rc hm_config_defaults(hm_config *cfg)
{
    return fill_defaults(cfg, "<defaults>");
}

const hm_section *hm_config_section(const hm_config *cfg, const char *name)
{
    if (cfg == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < cfg->nsections; i++)
        if (strcmp(cfg->sections[i].name, name) == 0)
            return &cfg->sections[i];
    return NULL;
}

/* A number in min..max; the value is all digits after an optional sign. */
static hermes_rc set_number(parser *p, const char *key, const char *v,
                            uint32_t min, uint32_t max, uint32_t *out)
{
    char q[80];
    const char *s = v;
    int negative = 0;

    if (*s == '+' || *s == '-')
        negative = *s++ == '-';
    if (*s == '\0')
        return fail(p, key, "not a number: %s",
                    quote(v, strlen(v), q, sizeof q));
    uint64_t n = 0;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return fail(p, key, "not a number: %s",
                        quote(v, strlen(v), q, sizeof q));
        if (n <= max) /* saturate: anything past max is out of range */
            n = n * 10 + (uint64_t)(*s - '0');
    }
    if ((negative && n != 0) || n < min || n > max)
        return fail(p, key, "out of range %u..%u: %s", (unsigned)min,
                    (unsigned)max, quote(v, strlen(v), q, sizeof q));
    *out = (uint32_t)n;
    return HERMES_OK;
}

/* A decimal number 0..max ("1", "0.5", ".25"), read without strtod: the
 * application's locale must not change what a file means. */
static hermes_rc set_decimal(parser *p, const char *key, const char *v,
                             double max, double *out)
{
    char q[80];
    const char *s = v;
    double n = 0, scale = 1;
    bool digits = false, dot = false;

    for (; *s != '\0'; s++) {
        if (*s == '.' && !dot) {
            dot = true;
            continue;
        }
        if (*s < '0' || *s > '9')
            return fail(p, key, "not a number: %s",
                        quote(v, strlen(v), q, sizeof q));
        digits = true;
        if (dot)
            n += (scale /= 10) * (*s - '0');
        else if (n <= max) /* saturate: anything past max is out of range */
            n = n * 10 + (*s - '0');
    }
    if (!digits)
        return fail(p, key, "not a number: %s",
                    quote(v, strlen(v), q, sizeof q));
    if (n > max)
        return fail(p, key, "out of range 0..%g: %s", max,
                    quote(v, strlen(v), q, sizeof q));
    *out = n;
    return HERMES_OK;
}

static hermes_rc set_bool(parser *p, const char *key, const char *v, bool *out)
{
    char q[80];

    if (strcasecmp(v, "yes") == 0)
        *out = true;
    else if (strcasecmp(v, "no") == 0)
        *out = false;
    else
        return fail(p, key, "expected yes or no: %s",
                    quote(v, strlen(v), q, sizeof q));
    return HERMES_OK;
}

static hermes_rc set_fallback(parser *p, const char *key, const char *v,
                              hm_fallback *out)
{
    char q[80];

    if (strcasecmp(v, "compute") == 0)
        *out = HM_FALLBACK_COMPUTE;
    else if (strcasecmp(v, "fail") == 0)
        *out = HM_FALLBACK_FAIL;
    else
        return fail(p, key, "expected compute or fail: %s",
                    quote(v, strlen(v), q, sizeof q));
    return HERMES_OK;
}

static hermes_rc set_log_level(parser *p, const char *key, const char *v,
                               int *out)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    static const int levels[] = {HERMES_LOG_ERROR, HERMES_LOG_WARN,
                                 HERMES_LOG_INFO, HERMES_LOG_DEBUG};
    char q[80];

    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(v, names[i]) == 0) {
            *out = levels[i];
            return HERMES_OK;
        }
    }
    return fail(p, key, "expected error, warn, info or debug: %s",
                quote(v, strlen(v), q, sizeof q));
}

/* Replaces *slot with a copy of v (NULL for an empty v when allowed). */
static hermes_rc set_string(parser *p, char **slot, const char *v,
                            int empty_is_null)
{
    char *copy = NULL;

    if (!(empty_is_null && *v == '\0')) {
        copy = strdup(v);
        if (copy == NULL)
            return nomem(p);
    }
    free(*slot);
    *slot = copy;
    return HERMES_OK;
}

/* One "key = value" line of [hermes]: v is the unquoted value. */
static hermes_rc hermes_setting(parser *p, const char *key, const char *v)
{
    hm_config *c = &p->cfg;
    char q[80];
    int k;

    for (k = 0; k < K_COUNT; k++)
        if (strcmp(key, hermes_keys[k]) == 0)
            break;
    if (k == K_COUNT) {
        char known[256];
        size_t o = 0;
        for (int i = 0; i < K_COUNT; i++)
            o += (size_t)snprintf(known + o, sizeof known - o, "%s%s",
                                  i ? ", " : "", hermes_keys[i]);
        return fail(p, key, "unknown key in [hermes] (known: %s)", known);
    }
    if (p->seen[k])
        return fail(p, NULL, "duplicate key '%s' in [hermes]", key);
    p->seen[k] = true;

    switch (k) {
    case K_BACKEND:
        if (*v == '\0')
            return fail(p, key, "empty value");
        c->backend_line = p->line;
        return set_string(p, &c->backend, v, 0);
    case K_TTL:
        /* 0 means "the handle's ttl" everywhere in the API, so it cannot
         * also mean "no expiry" here. */
        if (strcmp(v, "forever") == 0) {
            c->ttl = HERMES_TTL_FOREVER;
            return HERMES_OK;
        }
        if (strcmp(v, "0") == 0)
            return fail(p, key,
                        "0 is not a TTL (for no expiry write 'forever')");
        return set_number(p, key, v, 1, HERMES_TTL_MAX, &c->ttl);
    case K_PREFIX:
        /* No ':' either: with prefixes "app" and "app:v2" on one server,
         * flushing "app:" would delete the other application's keys. */
        if (!is_word(v, strlen(v)) || strpbrk(v, ":%#"))
            return fail(p, key,
                        "must be non-empty, without spaces, control "
                        "characters, ':', '%%' or '#': %s",
                        quote(v, strlen(v), q, sizeof q));
        c->prefix_line = p->line;
        return set_string(p, &c->prefix, v, 0);
    case K_PLUGIN_PATH:
        return set_string(p, &c->plugin_path, v, 1);
    case K_LOCK_TTL_MS:
        return set_number(p, key, v, 1, MAX_SETTING, &c->lock_ttl_ms);
    case K_LOCK_WAIT_MS:
        return set_number(p, key, v, 0, MAX_SETTING, &c->lock_wait_ms);
    case K_LOCK_POLL_MS:
        return set_number(p, key, v, 1, MAX_LOCK_POLL_MS, &c->lock_poll_ms);
    case K_ON_LOCK_TIMEOUT:
        return set_fallback(p, key, v, &c->on_lock_timeout);
    case K_ON_BACKEND_ERROR:
        return set_fallback(p, key, v, &c->on_backend_error);
    case K_EARLY_REFRESH:
        return set_decimal(p, key, v, HM_MAX_EARLY_REFRESH, &c->early_refresh);
    case K_GRACE:
        return set_number(p, key, v, 0, HERMES_TTL_MAX, &c->grace);
    case K_STALE_IF_ERROR:
        return set_bool(p, key, v, &c->stale_if_error);
    case K_PUBLISH_STATS:
        if (strcasecmp(v, "yes") == 0)
            c->publish_stats = 1;
        else if (strcasecmp(v, "no") == 0)
            c->publish_stats = 0;
        else if (strcasecmp(v, "auto") == 0)
            c->publish_stats = -1;
        else
            return fail(p, key, "expected yes, no or auto: %s",
                        quote(v, strlen(v), q, sizeof q));
        return HERMES_OK;
    case K_PUBLISH_INTERVAL_MS:
        /* Its TTL is three intervals, in a 32-bit count of ms. */
        return set_number(p, key, v, 100, 3600000, &c->publish_interval_ms);
    case K_LOG:
        if (strcasecmp(v, "stderr") == 0)
            c->log_stderr = true;
        else if (strcasecmp(v, "none") == 0)
            c->log_stderr = false;
        else
            return fail(p, key, "expected stderr or none: %s",
                        quote(v, strlen(v), q, sizeof q));
        return HERMES_OK;
    default:
        return set_log_level(p, key, v, &c->log_level);
    }
}

/* One "key = value" line of a plugin section, kept as written. */
static hermes_rc plugin_setting(parser *p, char *key, char *v)
{
    hm_section *s = &p->cfg.sections[p->current];

    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->kv[i].key, key) == 0) {
            hermes_rc rc =
                fail(p, NULL, "duplicate key '%s' in [%s]", key, s->name);
            free(key);
            free(v);
            return rc;
        }
    }
    /* Both arrays have the capacity grow() implies for s->n, so a failed
     * second grow leaves them consistent. */
    if (grow((void **)&s->kv, s->n, sizeof *s->kv) != 0 ||
        grow((void **)&s->lines, s->n, sizeof *s->lines) != 0) {
        free(key);
        free(v);
        return nomem(p);
    }
    s->kv[s->n].key = key;
    s->kv[s->n].value = v;
    /* The ABI's line is an int: 0 ("not from a file") past INT_MAX. */
    s->kv[s->n].line = p->line <= INT_MAX ? (int)p->line : 0;
    s->lines[s->n] = p->line;
    s->n++;
    return HERMES_OK;
}

/*
 * Makes the section called ns (n bytes) the current one: [hermes], a new
 * plugin section, or, when reopen is set (settings given in code), one
 * that exists already; a file may name each section once.
 */
static hermes_rc enter_section(parser *p, const char *ns, size_t n, bool reopen)
{
    char q[80];

    if (n == 0)
        return fail(p, NULL, "empty section name");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)ns[i];
        if (c < 0x20 || c == 0x7f || c == '[' || c == ']')
            return fail(p, NULL, "invalid section name %s",
                        quote(ns, n, q, sizeof q));
    }

    if (n == 6 && memcmp(ns, "hermes", 6) == 0) {
        if (p->hermes_seen && !reopen)
            return fail(p, NULL, "duplicate section [hermes]");
        p->hermes_seen = true;
        p->section = 1;
        return HERMES_OK;
    }
    for (size_t i = 0; i < p->cfg.nsections; i++) {
        const char *name = p->cfg.sections[i].name;
        if (strlen(name) == n && memcmp(name, ns, n) == 0) {
            if (!reopen)
                return fail(p, NULL, "duplicate section [%s]", name);
            p->current = i;
            p->section = 2;
            return HERMES_OK;
        }
    }
    if (grow((void **)&p->cfg.sections, p->cfg.nsections,
             sizeof *p->cfg.sections) != 0)
        return nomem(p);
    hm_section *sec = &p->cfg.sections[p->cfg.nsections];
    memset(sec, 0, sizeof *sec);
    sec->name = strndup(ns, n);
    if (sec->name == NULL)
        return nomem(p);
    sec->line = p->line;
    p->current = p->cfg.nsections++;
    p->section = 2;
    return HERMES_OK;
}

/* A "[name]" line; s..e is the trimmed line, starting with '['. */
static hermes_rc section_header(parser *p, const char *s, const char *e)
{
    char q[80];
    const char *close = memchr(s, ']', (size_t)(e - s));

    if (close == NULL)
        return fail(p, NULL, "unterminated section header");
    if (close + 1 != e)
        return fail(p, NULL, "text after section header: %s",
                    quote(close + 1, (size_t)(e - close - 1), q, sizeof q));
    const char *ns = s + 1, *ne = close;
    trim(&ns, &ne);
    return enter_section(p, ns, (size_t)(ne - ns), false);
}

/* Whether the n bytes at k may be a key; when not, the error is set. */
static bool valid_key(parser *p, const char *k, size_t n)
{
    char q[80];

    if (is_word(k, n))
        return true;
    fail(p, NULL, "invalid key %s (no spaces or control characters)",
         quote(k, n, q, sizeof q));
    return false;
}

/* A key and its value in the current section; takes both strings. */
static hermes_rc setting(parser *p, char *key, char *v)
{
    if (p->section == 2)
        return plugin_setting(p, key, v); /* takes key and v */
    hermes_rc rc = hermes_setting(p, key, v);
    free(key);
    free(v);
    return rc;
}

/* A "key = value" line; s..e is the trimmed line. */
static hermes_rc key_value(parser *p, const char *s, const char *e)
{
    char q[80];
    const char *eq = memchr(s, '=', (size_t)(e - s));

    if (eq == NULL)
        return fail(p, NULL,
                    "expected 'key = value', '[section]' or a comment: %s",
                    quote(s, (size_t)(e - s), q, sizeof q));
    if (p->section == 0)
        return fail(p, NULL, "key outside any section");

    const char *ks = s, *ke = eq, *vs = eq + 1, *ve = e;
    trim(&ks, &ke);
    trim(&vs, &ve);
    if (ks == ke)
        return fail(p, NULL, "missing key before '='");
    if (!valid_key(p, ks, (size_t)(ke - ks)))
        return HERMES_ECONFIG;

    char *key = strndup(ks, (size_t)(ke - ks));
    if (key == NULL)
        return nomem(p);
    if (vs < ve && *vs == '"') {
        if (ve - vs < 2 || ve[-1] != '"') {
            hermes_rc rc = fail(p, key, "unterminated quoted value: %s",
                                quote(vs, (size_t)(ve - vs), q, sizeof q));
            free(key);
            return rc;
        }
        vs++;
        ve--;
    }
    char *v = strndup(vs, (size_t)(ve - vs));
    if (v == NULL) {
        free(key);
        return nomem(p);
    }

    return setting(p, key, v);
}

static hermes_rc parse_line(parser *p, const char *s, const char *e)
{
    trim(&s, &e);
    if (s == e || *s == ';' || *s == '#')
        return HERMES_OK;
    if (*s == '[')
        return section_header(p, s, e);
    return key_value(p, s, e);
}

/* A parser holding the defaults; on failure cfg is zeroed. */
static hermes_rc parser_init(parser *p, const char *source, hm_config *cfg,
                             char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->source = source;
    p->err = err;
    p->errlen = errlen;
    if (fill_defaults(&p->cfg, source) != HERMES_OK) {
        memset(cfg, 0, sizeof *cfg);
        return nomem(p);
    }
    return HERMES_OK;
}

/* Hands the parser's config to cfg when rc is HERMES_OK, else frees it. */
static hermes_rc parser_finish(parser *p, hermes_rc rc, hm_config *cfg)
{
    if (rc != HERMES_OK) {
        hm_config_free(&p->cfg);
        memset(cfg, 0, sizeof *cfg);
        return rc;
    }
    *cfg = p->cfg;
    return HERMES_OK;
}

hermes_rc hm_config_from_settings(const hm_setting *set, size_t n,
                                  const char *source, hm_config *cfg, char *err,
                                  size_t errlen)
{
    parser p;
    hermes_rc rc = parser_init(&p, source, cfg, err, errlen);
    if (rc != HERMES_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        const char *sec = set[i].section ? set[i].section : "hermes";
        rc = enter_section(&p, sec, strlen(sec), true);
        if (rc != HERMES_OK)
            break;
        if (set[i].key == NULL ||
            !valid_key(&p, set[i].key, strlen(set[i].key))) {
            rc = set[i].key == NULL ? fail(&p, NULL, "no key") : HERMES_ECONFIG;
            break;
        }
        if (set[i].value == NULL) {
            rc = fail(&p, set[i].key, "no value");
            break;
        }
        char *key = strdup(set[i].key), *v = strdup(set[i].value);
        if (key == NULL || v == NULL) {
            free(key);
            free(v);
            rc = nomem(&p);
            break;
        }
        rc = setting(&p, key, v);
    }
    return parser_finish(&p, rc, cfg);
}

/* Parses len bytes of text (which may hold no NUL) into cfg. */
static hermes_rc parse(const char *text, size_t len, const char *source,
                       hm_config *cfg, char *err, size_t errlen)
{
    parser p;
    hermes_rc rc = parser_init(&p, source, cfg, err, errlen);
    if (rc != HERMES_OK)
        return rc;

    const char *s = text, *end = text + len;
    if (len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
        s += 3;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *e = nl != NULL ? nl : end;
        p.line++;
        rc = parse_line(&p, s, e);
        if (rc != HERMES_OK)
            break;
        s = e + 1;
    }
    return parser_finish(&p, rc, cfg);
}

hermes_rc hm_config_parse(const char *text, const char *source, hm_config *cfg,
                          char *err, size_t errlen)
{
    if (source == NULL)
        source = "<string>";
    if (text == NULL || cfg == NULL) {
        if (cfg != NULL)
            memset(cfg, 0, sizeof *cfg);
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: no configuration text", source);
        return HERMES_EINVAL;
    }
    return parse(text, strlen(text), source, cfg, err, errlen);
}

/* strerror is not thread-safe, and hermes_open may run in many threads. */
static const char *errno_text(int e, char *buf, size_t len)
{
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
    return strerror_r(e, buf, len);
#else
    if (strerror_r(e, buf, len) != 0)
        snprintf(buf, len, "error %d", e);
    return buf;
#endif
}

/*
 * Makes each relative directory of plugin_path relative to the directory
 * of the config file at path, which is what a reader of the file expects
 * (and what keeps working when the program runs from elsewhere).  A file
 * named without a '/' is in the current directory: nothing changes.
 * Returns -1 when memory runs out.
 */
static int resolve_plugin_path(hm_config *cfg, const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *pp = cfg->plugin_path;
    if (pp == NULL || slash == NULL)
        return 0;
    size_t dlen = slash == path ? 1 : (size_t)(slash - path);
    size_t nrel = 0;
    for (const char *c = pp;; c++) {
        nrel += *c != '\0' && *c != ':' && *c != '/';
        if ((c = strchr(c, ':')) == NULL)
            break;
    }
    if (nrel == 0)
        return 0;
    size_t cap = strlen(pp) + nrel * (dlen + 1) + 1;
    char *out = malloc(cap), *o = out;
    if (out == NULL)
        return -1;
    for (const char *c = pp;;) {
        const char *colon = strchr(c, ':');
        size_t n = colon != NULL ? (size_t)(colon - c) : strlen(c);
        if (n > 0 && *c != '/') {
            memcpy(o, path, dlen);
            o += dlen;
            if (o[-1] != '/')
                *o++ = '/';
        }
        memcpy(o, c, n);
        o += n;
        if (colon == NULL)
            break;
        *o++ = ':';
        c = colon + 1;
    }
    *o = '\0';
    free(cfg->plugin_path);
    cfg->plugin_path = out;
    return 0;
}

hermes_rc hm_config_load(const char *path, hm_config *cfg, char *err,
                         size_t errlen)
{
    char ebuf[128];

    if (path == NULL || cfg == NULL) {
        if (cfg != NULL)
            memset(cfg, 0, sizeof *cfg);
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "no configuration file given");
        return HERMES_EINVAL;
    }
    memset(cfg, 0, sizeof *cfg);

    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        int e = errno;
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: %s", path,
                     errno_text(e, ebuf, sizeof ebuf));
        return HERMES_ECONFIG;
    }

    /* Read the whole file, whatever its size, doubling the buffer. */
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    int read_errno = 0;
    while (buf != NULL) {
        if (len == cap) {
            char *q = cap <= SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
            if (q == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = q;
            cap *= 2;
        }
        errno = 0;
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f))
                read_errno = errno != 0 ? errno : EIO;
            break;
        }
    }
    fclose(f);
    if (buf == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: out of memory", path);
        return HERMES_ENOMEM;
    }
    if (read_errno != 0) {
        free(buf);
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: %s", path,
                     errno_text(read_errno, ebuf, sizeof ebuf));
        return HERMES_ECONFIG;
    }

    /* A NUL would silently end a line early: name it instead. */
    const char *nul = memchr(buf, '\0', len);
    if (nul != NULL) {
        size_t line = 1;
        for (const char *c = buf; c < nul; c++)
            line += *c == '\n';
        free(buf);
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s:%zu: NUL byte in file", path, line);
        return HERMES_ECONFIG;
    }

    hermes_rc rc = parse(buf, len, path, cfg, err, errlen);
    free(buf);
    if (rc == HERMES_OK && resolve_plugin_path(cfg, path) != 0) {
        hm_config_free(cfg);
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: out of memory", path);
        return HERMES_ENOMEM;
    }
    return rc;
}
