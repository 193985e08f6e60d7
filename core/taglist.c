/*
 * Tag lists (taglist.h): validation, sorting, de-duplication and the tag
 * keys, in one place for registered functions and direct access.  Any
 * non-empty string is a tag; hm_tag_key() makes a key of it.  An entry's
 * list may start with the namespace tag (taglist.h).
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

/* Appends the tag `name` with key `key` (both copied); -1 when out of
 * memory. */
static int add_tag(hm_taglist *t, const char *name, const hm_buf *key)
{
    size_t len = strlen(name);
    char *n = strdup(name), *k = key->failed ? NULL : malloc(key->len + 1);
    if (!n || !k) {
        free(n);
        free(k);
        return -1;
    }
    memcpy(k, key->data, key->len + 1);
    t->names[t->n] = n;
    t->bytes[t->n] = (hermes_bytes){n, len};
    t->keys[t->n] = (hermes_bytes){k, key->len};
    t->ids[t->n] = hm_tag_id(n, len);
    t->n++;
    return 0;
}

static hermes_rc build(hermes *h, const char *const *in, bool ns, hm_taglist *t)
{
    size_t cnt = 0;
    memset(t, 0, sizeof *t);
    for (; in && in[cnt]; cnt++)
        if (!*in[cnt])
            return hm_error(h, HERMES_EINVAL,
                            "tag %zu of the list is empty: a tag is any "
                            "non-empty string",
                            cnt + 1);
    if (cnt + ns == 0)
        return HERMES_OK;
    const char **sorted = malloc((cnt + 1) * sizeof *sorted);
    t->names = calloc(cnt + ns, sizeof *t->names);
    t->bytes = calloc(cnt + ns, sizeof *t->bytes);
    t->keys = calloc(cnt + ns, sizeof *t->keys);
    t->ids = calloc(cnt + ns, sizeof *t->ids);
    if (!sorted || !t->names || !t->bytes || !t->keys || !t->ids)
        goto nomem;
    if (cnt)
        memcpy(sorted, in, cnt * sizeof *sorted);
    qsort(sorted, cnt, sizeof *sorted, cmp_str);
    hm_buf b;
    hm_buf_init(&b);
    if (ns) {
        hm_buf_adds(&b, h->ns_key);
        if (add_tag(t, "", &b) != 0) {
            hm_buf_free(&b);
            goto nomem;
        }
        t->ns = true;
    }
    for (size_t i = 0; i < cnt; i++) {
        if (t->n > t->ns && strcmp(t->names[t->n - 1], sorted[i]) == 0)
            continue;
        hm_tag_key(h, sorted[i], &b);
        if (add_tag(t, sorted[i], &b) != 0) {
            hm_buf_free(&b);
            goto nomem;
        }
    }
    hm_buf_free(&b);
    free(sorted);
    return HERMES_OK;
nomem:
    free(sorted);
    hm_taglist_free(t);
    return hm_error(h, HERMES_ENOMEM, "out of memory for a tag list");
}

hermes_rc hm_taglist_build(hermes *h, const char *const *in, hm_taglist *t)
{
    return build(h, in, false, t);
}

hermes_rc hm_taglist_build_entry(hermes *h, const char *const *in,
                                 hm_taglist *t)
{
    return build(h, in, h->ns_key != NULL, t);
}
