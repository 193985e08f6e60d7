/*
 * The memcached plugin's reader of `lru_crawler metadump` replies (see
 * metadump.h).
 */
#include "metadump.h"

#include <string.h>

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* URL-decodes s[0..n) into out (at most MD_KEY_MAX bytes); -1 when it is
 * empty, too long or has a bad %XX. */
static int uri_decode(const char *s, size_t n, md_item *out)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '%') {
            int hi, lo;

            if (n - i < 3)
                return -1;
            hi = hexval((unsigned char)s[i + 1]);
            lo = hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        }
        if (o == MD_KEY_MAX)
            return -1;
        out->key[o++] = c;
    }
    if (o == 0)
        return -1;
    out->klen = o;
    return 0;
}

/* "-1" or a decimal Unix time of at most 12 digits; -1 when neither. */
static int parse_exp(const char *s, size_t n, int64_t *out)
{
    int64_t v = 0;

    if (n == 2 && s[0] == '-' && s[1] == '1') {
        *out = MD_EXP_NEVER;
        return 0;
    }
    if (n == 0 || n > 12)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int contains(const char *s, size_t n, const char *word)
{
    size_t w = strlen(word);

    for (size_t i = 0; i + w <= n; i++)
        if (memcmp(s + i, word, w) == 0)
            return 1;
    return 0;
}

static int starts(const char *line, size_t len, const char *word)
{
    size_t w = strlen(word);

    return len >= w && memcmp(line, word, w) == 0 &&
           (len == w || line[w] == ' ');
}

md_kind md_parse_line(const char *line, size_t len, md_item *out)
{
    int have_key = 0;

    if (len && line[len - 1] == '\r')
        len--;
    if (len == 3 && memcmp(line, "END", 3) == 0)
        return MD_END;
    /* No items to crawl: an empty server. */
    if (starts(line, len, "NOTSTARTED"))
        return MD_END;
    if (starts(line, len, "BUSY"))
        return MD_BUSY;
    /* Disabled crawler ("CLIENT_ERROR lru crawler disabled"), dumps not
     * allowed ("ERROR metadump not allowed"), or no such command. */
    if (starts(line, len, "CLIENT_ERROR") || starts(line, len, "ERROR"))
        return len == 5 || contains(line, len, "disabled") ||
                       contains(line, len, "not allowed")
                   ? MD_UNSUPPORTED
                   : MD_FAILED;
    if (starts(line, len, "BADCLASS"))
        return MD_BADCLASS;
    if (starts(line, len, "SERVER_ERROR"))
        return MD_FAILED;

    out->klen = 0;
    out->exp = MD_EXP_UNKNOWN;
    for (size_t i = 0; i < len;) {
        size_t end = i;

        while (end < len && line[end] != ' ')
            end++;
        const char *t = line + i;
        size_t tl = end - i;

        if (tl > 4 && memcmp(t, "key=", 4) == 0) {
            if (have_key || uri_decode(t + 4, tl - 4, out) != 0)
                return MD_SKIP;
            have_key = 1;
        } else if (tl > 4 && memcmp(t, "exp=", 4) == 0) {
            if (parse_exp(t + 4, tl - 4, &out->exp) != 0)
                return MD_SKIP;
        }
        i = end + 1;
    }
    return have_key ? MD_ITEM : MD_SKIP;
}

void md_reader_init(md_reader *r)
{
    r->len = 0;
    r->overlong = 0;
}

int md_feed(md_reader *r, const char *p, size_t n, md_line_fn fn, void *arg)
{
    while (n) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        int rc;

        if (r->overlong || r->len + take > sizeof r->buf) {
            r->overlong = 1;
            r->len = 0;
        } else {
            memcpy(r->buf + r->len, p, take);
            r->len += take;
        }
        if (!nl)
            return 0;
        p += take + 1;
        n -= take + 1;
        if (r->overlong) {
            r->overlong = 0;
            continue;
        }
        rc = fn(arg, r->buf, r->len);
        r->len = 0;
        if (rc)
            return rc;
    }
    return 0;
}
