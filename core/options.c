/*
 * Configuration in code: a list of (section, key, value) strings that
 * hermes_open_options() hands to the config parser's own checks
 * (hm_config_from_settings), so that code and file offer the same settings
 * with the same messages.  Setting a key again replaces its value in place;
 * a NULL value removes it.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "options.h"

struct hermes_options {
    hm_setting *v; /* section, key and value are owned copies */
    size_t n, cap;
};

hermes_rc hermes_options_new(hermes_options **out)
{
    hm_clear_error();
    if (!out)
        return hm_error(NULL, HERMES_EINVAL, "hermes_options_new: out is NULL");
    *out = calloc(1, sizeof **out);
    return *out ? HERMES_OK
                : hm_error(NULL, HERMES_ENOMEM,
                           "hermes_options_new: out of memory");
}

static void setting_free(hm_setting *s)
{
    free((char *)s->section);
    free((char *)s->key);
    free((char *)s->value);
}

void hermes_options_free(hermes_options *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->n; i++)
        setting_free(&o->v[i]);
    free(o->v);
    free(o);
}

static hermes_rc nomem(const char *section, const char *key)
{
    return hm_error(NULL, HERMES_ENOMEM,
                    "hermes_options_set [%s] %s: out of memory", section, key);
}

hermes_rc hermes_options_set(hermes_options *o, const char *section,
                             const char *key, const char *value)
{
    hm_clear_error();
    if (!o || !key)
        return hm_error(NULL, HERMES_EINVAL, "hermes_options_set: %s is NULL",
                        !o ? "the options" : "key");
    if (!section)
        section = "hermes";
    size_t i = 0;
    while (i < o->n &&
           (strcmp(o->v[i].section, section) != 0 || strcmp(o->v[i].key, key)))
        i++;
    if (!value) { /* remove, keeping the order of the others */
        if (i < o->n) {
            setting_free(&o->v[i]);
            memmove(&o->v[i], &o->v[i + 1], (o->n - i - 1) * sizeof *o->v);
            o->n--;
        }
        return HERMES_OK;
    }
    char *copy = strdup(value);
    if (!copy)
        return nomem(section, key);
    if (i < o->n) {
        free((char *)o->v[i].value);
        o->v[i].value = copy;
        return HERMES_OK;
    }
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 8;
        hm_setting *v = realloc(o->v, cap * sizeof *v);
        if (!v) {
            free(copy);
            return nomem(section, key);
        }
        o->v = v;
        o->cap = cap;
    }
    hm_setting *s = &o->v[o->n];
    s->section = strdup(section);
    s->key = strdup(key);
    s->value = copy;
    if (!s->section || !s->key) {
        setting_free(s);
        return nomem(section, key);
    }
    o->n++;
    return HERMES_OK;
}

const hm_setting *hm_options_settings(const hermes_options *o, size_t *n)
{
    *n = o ? o->n : 0;
    return o ? o->v : NULL;
}
