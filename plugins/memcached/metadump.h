/*
 * The memcached plugin's reader of `lru_crawler metadump` replies (memcached
 * 1.4.31 and later), the text the scan operation parses.  Everything here
 * is pure parsing of bytes a server sent, with fixed-size buffers, so a
 * hostile server can make it allocate nothing: a line longer than
 * MD_LINE_MAX is skipped whole, a key longer than memcached's 250 bytes or
 * badly URL-encoded makes its line skipped, any other malformed line is
 * skipped.  tests/fuzz/fuzz_metadump.c fuzzes it.
 *
 * A reply (to `lru_crawler metadump hash|all`) is one line per item,
 * "key=<URL-encoded key> exp=<Unix time or -1> la=... cas=... fetch=... cls=...
 * size=..." (fields in any order, unknown ones ignored), ended by "END"; or one
 * error line instead.
 */
#ifndef HERMES_MEMCACHED_METADUMP_H
#define HERMES_MEMCACHED_METADUMP_H

#include <stddef.h>
#include <stdint.h>

#define MD_KEY_MAX 250   /* memcached's KEY_MAX_LENGTH */
#define MD_LINE_MAX 2048 /* a 250-byte key fully encoded is 750 bytes */
#define MD_EXP_NEVER (-1)
#define MD_EXP_UNKNOWN (-2)

typedef enum md_kind {
    MD_ITEM,        /* one key: md_item filled */
    MD_END,         /* the dump is complete */
    MD_SKIP,        /* nothing of use: malformed, unknown, "OK" */
    MD_UNSUPPORTED, /* the server does not dump: crawler disabled, dumps
                       not allowed, or a server before 1.4.31 ("ERROR") */
    MD_BUSY,        /* another crawl runs; try again later */
    MD_BADCLASS,    /* the server does not know that dump (e.g. "hash"
                       before memcached 1.6.9) */
    MD_FAILED       /* any other error line */
} md_kind;

typedef struct md_item {
    unsigned char key[MD_KEY_MAX];
    size_t klen;
    int64_t exp; /* Unix time in s, MD_EXP_NEVER or MD_EXP_UNKNOWN */
} md_item;

/* Classifies one line (without its "\n" or "\r\n") and decodes an item. */
md_kind md_parse_line(const char *line, size_t len, md_item *out);

/* Splits a byte stream into lines in a fixed buffer. */
typedef struct md_reader {
    char buf[MD_LINE_MAX];
    size_t len;
    int overlong; /* discarding the rest of a line too long to keep */
} md_reader;

void md_reader_init(md_reader *r);

/* Called for each complete line of md_feed; a non-zero return stops the
 * feed and is returned by it. */
typedef int (*md_line_fn)(void *arg, const char *line, size_t len);

/* Feeds n bytes; returns 0, or what fn returned to stop. */
int md_feed(md_reader *r, const char *p, size_t n, md_line_fn fn, void *arg);

#endif /* HERMES_MEMCACHED_METADUMP_H */
