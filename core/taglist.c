/*
 * Tag lists (taglist.h): validation, sorting, de-duplication and the tag
 * keys, in one place for registered functions and direct access.  Any
 * non-empty string is a tag; hm_tag_key() makes a key of it.
 */
#include <stdlib.h>
#include <string.h>

#include "keyspace.h"
#include "record.h"
#include "taglist.h"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void hm_taglist_free(hm_taglist *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->names ? t->names[i] : NULL);
        free(t->keys ? (void *)t->keys[i].data : NULL);
    }
    free(t->names);
    free(t->bytes);
    free(t->keys);
    free(t->ids);
    memset(t, 0, sizeof *t);
}

hermes_rc hm_taglist_build(hermes *h, const char *const *in, hm_taglist *t)
{
    size_t cnt = 0;
    memset(t, 0, sizeof *t);
    for (; in && in[cnt]; cnt++)
        if (!*in[cnt])
            return hm_error(h, HERMES_EINVAL,
                            "tag %zu of the list is empty: a tag is any "
                            "non-empty string",
                            cnt + 1);
    if (cnt == 0)
        return HERMES_OK;
    const char **sorted = malloc(cnt * sizeof *sorted);
    t->names = calloc(cnt, sizeof *t->names);
    t->bytes = calloc(cnt, sizeof *t->bytes);
    t->keys = calloc(cnt, sizeof *t->keys);
    t->ids = calloc(cnt, sizeof *t->ids);
    if (!sorted || !t->names || !t->bytes || !t->keys || !t->ids)
        goto nomem;
    memcpy(sorted, in, cnt * sizeof *sorted);
    qsort(sorted, cnt, sizeof *sorted, cmp_str);
    hm_buf b;
    hm_buf_init(&b);
    for (size_t i = 0; i < cnt; i++) {
        if (t->n > 0 && strcmp(t->names[t->n - 1], sorted[i]) == 0)
            continue;
        size_t len = strlen(sorted[i]);
        hm_tag_key(h, sorted[i], &b);
        char *name = strdup(sorted[i]);
        char *key = b.failed ? NULL : malloc(b.len + 1);
        if (!name || !key) {
            free(name);
            free(key);
            hm_buf_free(&b);
            goto nomem;
        }
        memcpy(key, b.data, b.len + 1);
        t->names[t->n] = name;
        t->bytes[t->n] = (hermes_bytes){name, len};
        t->keys[t->n] = (hermes_bytes){key, b.len};
        t->ids[t->n] = hm_tag_id(name, len);
        t->n++;
    }
    hm_buf_free(&b);
    free(sorted);
    return HERMES_OK;
nomem:
    free(sorted);
    hm_taglist_free(t);
    return hm_error(h, HERMES_ENOMEM, "out of memory for a tag list");
}
