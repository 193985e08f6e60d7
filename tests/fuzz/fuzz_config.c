/*
 * Fuzz target: the config parser, from text (hm_config_parse) and from a
 * file (hm_config_load).  Input: one byte of options (bit 0: through a
 * file; bits 1-7: the size of the error buffer, 0 meaning a large one),
 * then the text.
 *
 * Properties: no crash, leak or overread; the result is OK, ECONFIG or
 * ENOMEM; an error message fits the buffer, is one line without control
 * bytes and starts with the source; a successful parse has every setting
 * and every section key and value set, line numbers in the text, and finds
 * each of its sections by name; parsing the same text again gives the same
 * answer.
 */
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

static char path[64];
static int fd = -1;

/* One scratch file per process, rewritten for every input. */
static bool scratch_file(void)
{
    if (fd >= 0)
        return true;
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/hermes-fuzz-config-XXXXXX",
             tmp && strlen(tmp) < 32 ? tmp : "/tmp");
    fd = mkstemp(path);
    if (fd < 0)
        return false;
    return true;
}

static void remove_scratch(void) __attribute__((destructor));
static void remove_scratch(void)
{
    if (fd >= 0) {
        close(fd);
        unlink(path);
    }
}

static size_t count_lines(const char *t, size_t n)
{
    size_t lines = 1;
    for (size_t i = 0; i < n; i++)
        lines += t[i] == '\n';
    return lines;
}

static void check_message(const char *err, size_t errlen, const char *source)
{
    size_t l = strnlen(err, errlen);
    FUZZ_CHECK(l < errlen);
    for (size_t i = 0; i < l; i++)
        FUZZ_CHECK((unsigned char)err[i] >= 0x20 &&
                   (unsigned char)err[i] != 0x7f);
    /* A message that fits names its source first. */
    size_t sl = strlen(source);
    if (errlen > sl + 1)
        FUZZ_CHECK(strncmp(err, source, l < sl ? l : sl) == 0);
}

static void check_config(const hm_config *cfg, size_t lines)
{
    FUZZ_CHECK(cfg->source && cfg->backend && cfg->prefix);
    FUZZ_CHECK(cfg->backend_line <= lines && cfg->prefix_line <= lines);
    FUZZ_CHECK(cfg->nsections == 0 || cfg->sections);
    for (size_t i = 0; i < cfg->nsections; i++) {
        const hm_section *s = &cfg->sections[i];
        FUZZ_CHECK(s->name && strcmp(s->name, "hermes") != 0);
        FUZZ_CHECK(s->line > 0 && s->line <= lines);
        FUZZ_CHECK(hm_config_section(cfg, s->name) == s);
        for (size_t k = 0; k < s->n; k++) {
            FUZZ_CHECK(s->kv[k].key && s->kv[k].value);
            FUZZ_CHECK(s->lines[k] > s->line && s->lines[k] <= lines);
            FUZZ_CHECK((size_t)s->kv[k].line == s->lines[k]);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    bool use_file = data[0] & 1;
    size_t errlen = data[0] >> 1;
    if (errlen == 0)
        errlen = 1024;
    const char *text_in = (const char *)data + 1;
    size_t n = size - 1;

    char *err = malloc(errlen), *err2 = malloc(errlen);
    FUZZ_CHECK(err && err2);
    memset(err, 'x', errlen);
    hm_config cfg, again;
    hermes_rc rc, rc2;
    const char *source;
    size_t lines;
    if (use_file) {
        if (!scratch_file() || ftruncate(fd, 0) != 0 ||
            pwrite(fd, text_in, n, 0) != (ssize_t)n) {
            free(err);
            free(err2);
            return 0;
        }
        source = path;
        lines = count_lines(text_in, n);
        rc = hm_config_load(path, &cfg, err, errlen);
        rc2 = hm_config_load(path, &again, err2, errlen);
    } else {
        /* The parser takes a C string: it sees the text up to a NUL. */
        char *text = malloc(n + 1);
        FUZZ_CHECK(text);
        memcpy(text, text_in, n);
        text[n] = '\0';
        source = "<fuzz>";
        lines = count_lines(text, strlen(text));
        rc = hm_config_parse(text, source, &cfg, err, errlen);
        rc2 = hm_config_parse(text, source, &again, err2, errlen);
        free(text);
    }
    FUZZ_CHECK(rc == rc2);
    if (rc == HERMES_OK) {
        FUZZ_CHECK(strcmp(cfg.source, source) == 0);
        check_config(&cfg, lines);
        FUZZ_CHECK(strcmp(cfg.backend, again.backend) == 0 &&
                   strcmp(cfg.prefix, again.prefix) == 0 &&
                   cfg.ttl == again.ttl && cfg.nsections == again.nsections);
        hm_config_free(&cfg);
        hm_config_free(&again);
    } else {
        FUZZ_CHECK(rc == HERMES_ECONFIG || rc == HERMES_ENOMEM);
        check_message(err, errlen, source);
        FUZZ_CHECK(strcmp(err, err2) == 0);
    }
    free(err);
    free(err2);
    return 0;
}
