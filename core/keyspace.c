/*
 * The key space of a handle: the entry keys of cached functions and of
 * direct access, and tag keys, each fitted to the backend's key length
 * (keys.h).  Lock keys are built by the lock protocol (lock.c).
 */
#include <stdlib.h>
#include <string.h>

#include "keyspace.h"

hermes_rc hm_entry_key(hermes_fn *fn, const void *args, size_t alen, void *arg,
                       hm_buf *entry)
{
    hermes *h = fn->h;
    size_t head = h->entry_prefix_len;
    if (!fn->key) {
        /* The hit path: one append of the whole key, its head made when
         * the function was. */
        char *k = hm_buf_append(entry, fn->key_head_len + HM_HASH_B64_LEN);
        if (!k)
            return HERMES_ENOMEM;
        memcpy(k, fn->key_head, fn->key_head_len);
        hm_hash128_b64(args, alen, k + fn->key_head_len);
    } else {
        hm_buf_add(entry, h->entry_prefix, head);
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
    }
    hm_key_fit(entry, head, h->be->max_key_len);
    return entry->failed ? HERMES_ENOMEM : HERMES_OK;
}

void hm_fn_owner(const hermes_fn *fn, const hm_buf *entry, hm_owner *o)
{
    /* '#' after the head appears only where hm_key_fit() hashed the key. */
    o->name = fn->name;
    o->name_len = fn->name_len;
    o->name_in_key = !fn->key && entry->data[fn->h->entry_prefix_len] != '#';
}

hermes_rc hm_direct_key(hermes *h, const char *key, hm_buf *entry)
{
    hm_buf_add(entry, h->entry_prefix, h->entry_prefix_len);
    size_t head = entry->len;
    hm_buf_add_escaped(entry, key, strlen(key));
    hm_key_fit(entry, head, h->be->max_key_len);
    return entry->failed ? HERMES_ENOMEM : HERMES_OK;
}

/*
 * A tag key is "<prefix>:tag:<tag>" with the tag verbatim, byte for byte the
 * key Python HermesCache uses (Mangler.nameTag), whenever the store can
 * hold it as is.  A tag holding a byte no key may hold (space, control
 * character, DEL), or too long for the backend, becomes
 * "<prefix>:tag:#<hash of the verbatim key>" instead.  Two different tags
 * therefore never share a key: verbatim keys differ because the tags do,
 * hashed ones because the hashed texts do; only a tag chosen to read
 * "#<that hash>" could meet a hashed one.
 */
void hm_tag_key(hermes *h, const char *tag, hm_buf *b)
{
    hm_buf_reset(b);
    hm_buf_adds(b, h->tag_prefix);
    size_t head = b->len, n = strlen(tag);
    hm_buf_add(b, tag, n);
    if (!hm_key_text_ok(tag, n))
        hm_key_hash(b, head);
    else
        hm_key_fit(b, head, h->be->max_key_len);
}
