/*
 * Unit tests of the configuration parser (core/config.c): the defaults,
 * every [hermes] key, plugin sections kept verbatim, the INI syntax it
 * accepts, and the exact "SOURCE:LINE: KEY: reason" of each error.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#define KNOWN                                                                  \
    "(known: backend, ttl, prefix, plugin_path, lock_ttl_ms, lock_wait_ms, "   \
    "lock_poll_ms, on_lock_timeout, on_backend_error, log_level, log, "        \
    "early_refresh, "                                                          \
    "grace, stale_if_error, publish_stats, publish_interval_ms)"

/* Parses text as "app.ini", failing the test with the message on error. */
static void parse_ok(const char *text, hm_config *cfg)
{
    char err[512] = "";
    hermes_rc rc = hm_config_parse(text, "app.ini", cfg, err, sizeof err);
    if (rc != HERMES_OK)
        fail_msg("unexpected error %d: %s", (int)rc, err);
}

/* Parses text as "app.ini" and expects HERMES_ECONFIG with exactly want,
 * and a config left with nothing to free. */
static void parse_fails(const char *text, const char *want)
{
    char err[512] = "";
    hm_config cfg;
    memset(&cfg, 0x5a, sizeof cfg);
    hermes_rc rc = hm_config_parse(text, "app.ini", &cfg, err, sizeof err);
    assert_int_equal(rc, HERMES_ECONFIG);
    assert_string_equal(err, want);
    assert_null(cfg.source);
    assert_null(cfg.backend);
    assert_null(cfg.sections);
}

/* Writes len bytes to a new file under /tmp; path receives its name. */
static void write_temp(char *path, size_t pathlen, const char *data, size_t len)
{
    snprintf(path, pathlen, "/tmp/hermes-test-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
}

static void defaults_are_the_documented_ones(void **state)
{
    hm_config cfg;
    assert_int_equal(hm_config_defaults(&cfg), HERMES_OK);
    assert_string_equal(cfg.source, "<defaults>");
    assert_string_equal(cfg.backend, "dict");
    assert_int_equal(cfg.backend_line, 0);
    assert_int_equal(cfg.ttl, 3600);
    assert_string_equal(cfg.prefix, "cache");
    assert_null(cfg.plugin_path);
    assert_int_equal(cfg.lock_ttl_ms, 10000);
    assert_int_equal(cfg.lock_wait_ms, 5000);
    assert_int_equal(cfg.on_lock_timeout, HM_FALLBACK_COMPUTE);
    assert_int_equal(cfg.on_backend_error, HM_FALLBACK_COMPUTE);
    assert_int_equal(cfg.log_level, HERMES_LOG_WARN);
    assert_int_equal(cfg.nsections, 0);
    hm_config_free(&cfg);
}

static void empty_text_gives_defaults_named_string(void **state)
{
    hm_config cfg;
    char err[128];
    assert_int_equal(hm_config_parse("", NULL, &cfg, err, sizeof err),
                     HERMES_OK);
    assert_string_equal(cfg.source, "<string>");
    assert_string_equal(cfg.backend, "dict");
    assert_int_equal(cfg.ttl, 3600);
    hm_config_free(&cfg);
}

static void full_valid_file_loads(void **state)
{
    static const char text[] = "; Hermes settings\n"
                               "[hermes]\n"
                               "backend = redis\n"
                               "ttl = 600\n"
                               "prefix = myapp\n"
                               "plugin_path = /opt/a:/opt/b\n"
                               "lock_ttl_ms = 2000\n"
                               "lock_wait_ms = 0\n"
                               "on_lock_timeout = fail\n"
                               "on_backend_error = fail\n"
                               "log_level = debug\n"
                               "\n"
                               "[redis]\n"
                               "host = 127.0.0.1\n"
                               "port = 6379\n"
                               "db = 1\n";
    char path[64], err[512] = "";
    hm_config cfg;

    write_temp(path, sizeof path, text, sizeof text - 1);
    hermes_rc rc = hm_config_load(path, &cfg, err, sizeof err);
    unlink(path);
    if (rc != HERMES_OK)
        fail_msg("%s", err);
    assert_string_equal(cfg.source, path);
    assert_string_equal(cfg.backend, "redis");
    assert_int_equal(cfg.backend_line, 3);
    assert_int_equal(cfg.ttl, 600);
    assert_string_equal(cfg.prefix, "myapp");
    assert_string_equal(cfg.plugin_path, "/opt/a:/opt/b");
    assert_int_equal(cfg.lock_ttl_ms, 2000);
    assert_int_equal(cfg.lock_wait_ms, 0);
    assert_int_equal(cfg.on_lock_timeout, HM_FALLBACK_FAIL);
    assert_int_equal(cfg.on_backend_error, HM_FALLBACK_FAIL);
    assert_int_equal(cfg.log_level, HERMES_LOG_DEBUG);
    assert_int_equal(cfg.nsections, 1);
    assert_string_equal(cfg.sections[0].name, "redis");
    assert_int_equal(cfg.sections[0].n, 3);
    hm_config_free(&cfg);
}

static void backend_is_parsed(void **state)
{
    hm_config cfg;
    parse_ok("[hermes]\n\nbackend = /opt/x/memcached.so\n", &cfg);
    assert_string_equal(cfg.backend, "/opt/x/memcached.so");
    assert_int_equal(cfg.backend_line, 3);
    hm_config_free(&cfg);
}

/* ttl = forever is no expiry; 0 means "the handle's ttl" in the API, so
 * here it is an error pointing at forever. */
static void ttl_is_parsed(void **state)
{
    hm_config cfg;
    parse_ok("[hermes]\nttl = 1\n", &cfg);
    assert_int_equal(cfg.ttl, 1);
    hm_config_free(&cfg);
    parse_ok("[hermes]\nttl = forever\n", &cfg);
    assert_int_equal(cfg.ttl, HERMES_TTL_FOREVER);
    hm_config_free(&cfg);
    parse_fails("[hermes]\nttl = 0\n",
                "app.ini:2: ttl: 0 is not a TTL (for no expiry write "
                "'forever')");
}

/* The longest TTL a backend can be given (32-bit milliseconds) is accepted;
 * one second more is refused, not shortened. */
static void ttl_accepts_up_to_the_longest_a_backend_holds(void **state)
{
    hm_config cfg;
    parse_ok("[hermes]\nttl = 4294967\n", &cfg);
    assert_int_equal(cfg.ttl, HERMES_TTL_MAX);
    hm_config_free(&cfg);
    parse_fails("[hermes]\nttl = 4294968\n",
                "app.ini:2: ttl: out of range 1..4294967: '4294968'");
}

static void prefix_is_parsed(void **state)
{
    hm_config cfg;
    parse_ok("[hermes]\nprefix = app_v2\n", &cfg);
    assert_string_equal(cfg.prefix, "app_v2");
    hm_config_free(&cfg);
}

static void plugin_path_is_parsed(void **state)
{
    hm_config cfg;
    parse_ok("[hermes]\nplugin_path = /a/b:/c\n", &cfg);
    assert_string_equal(cfg.plugin_path, "/a/b:/c");
    hm_config_free(&cfg);
}

static void lock_ttl_ms_is_parsed(void **state)
{
    hm_config cfg;
    parse_ok("[hermes]\nlock_ttl_ms = 1\n", &cfg);
    assert_int_equal(cfg.lock_ttl_ms, 1);
    hm_config_free(&cfg);
}

static void lock_wait_ms_is_parsed(void **state)
{
    hm_config cfg;
    parse_ok("[hermes]\nlock_wait_ms = 250\n", &cfg);
    assert_int_equal(cfg.lock_wait_ms, 250);
    hm_config_free(&cfg);
}

static void lock_poll_ms_is_parsed_and_bounded(void **state)
{
    hm_config cfg;
    parse_ok("[hermes]\n", &cfg);
    assert_int_equal(cfg.lock_poll_ms, 50);
    hm_config_free(&cfg);
    parse_ok("[hermes]\nlock_poll_ms = 60000\n", &cfg);
    assert_int_equal(cfg.lock_poll_ms, 60000);
    hm_config_free(&cfg);
    parse_fails("[hermes]\nlock_poll_ms = 0\n",
                "app.ini:2: lock_poll_ms: out of range 1..60000: '0'");
}

static void on_lock_timeout_is_parsed(void **state)
{
    hm_config cfg;
    parse_ok("[hermes]\non_lock_timeout = fail\n", &cfg);
    assert_int_equal(cfg.on_lock_timeout, HM_FALLBACK_FAIL);
    assert_int_equal(cfg.on_backend_error, HM_FALLBACK_COMPUTE);
    hm_config_free(&cfg);
}

static void on_backend_error_is_parsed(void **state)
{
    hm_config cfg;
    parse_ok("[hermes]\non_backend_error = fail\n", &cfg);
    assert_int_equal(cfg.on_backend_error, HM_FALLBACK_FAIL);
    assert_int_equal(cfg.on_lock_timeout, HM_FALLBACK_COMPUTE);
    hm_config_free(&cfg);
}

static void log_level_is_parsed(void **state)
{
    static const struct {
        const char *text;
        int level;
    } cases[] = {
        {"[hermes]\nlog_level = error\n", HERMES_LOG_ERROR},
        {"[hermes]\nlog_level = warn\n", HERMES_LOG_WARN},
        {"[hermes]\nlog_level = info\n", HERMES_LOG_INFO},
        {"[hermes]\nlog_level = debug\n", HERMES_LOG_DEBUG},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hm_config cfg;
        parse_ok(cases[i].text, &cfg);
        assert_int_equal(cfg.log_level, cases[i].level);
        hm_config_free(&cfg);
    }
}

static void plugin_sections_are_kept_with_line_numbers(void **state)
{
    hm_config cfg;
    parse_ok("[redis]\n"
             "host = 10.0.0.1\n"
             "\n"
             "port=6380\n"
             "[hermes]\n"
             "ttl = 5\n"
             "[memcached]\n"
             "  servers   =   a:11211 b:11211  \n",
             &cfg);
    assert_int_equal(cfg.nsections, 2);

    const hm_section *r = hm_config_section(&cfg, "redis");
    assert_non_null(r);
    assert_int_equal(r->line, 1);
    assert_int_equal(r->n, 2);
    assert_string_equal(r->kv[0].key, "host");
    assert_string_equal(r->kv[0].value, "10.0.0.1");
    assert_int_equal(r->kv[0].line, 2);
    assert_string_equal(r->kv[1].key, "port");
    assert_string_equal(r->kv[1].value, "6380");
    assert_int_equal(r->kv[1].line, 4);

    const hm_section *m = hm_config_section(&cfg, "memcached");
    assert_ptr_equal(m, &cfg.sections[1]);
    assert_int_equal(m->line, 7);
    assert_string_equal(m->kv[0].key, "servers");
    assert_string_equal(m->kv[0].value, "a:11211 b:11211");
    assert_int_equal(m->kv[0].line, 8);
    hm_config_free(&cfg);
}

static void hermes_section_is_not_kept_for_plugins(void **state)
{
    hm_config cfg;
    parse_ok("[hermes]\nttl = 5\n", &cfg);
    assert_int_equal(cfg.nsections, 0);
    assert_null(hm_config_section(&cfg, "hermes"));
    assert_null(hm_config_section(&cfg, "redis"));
    hm_config_free(&cfg);
}

static void quoted_values_keep_their_spaces(void **state)
{
    hm_config cfg;
    parse_ok("[redis]\n"
             "password = \"  two words  \"\n"
             "empty = \"\"\n"
             "inner = \"say \"hi\"\"\n"
             "[hermes]\n"
             "plugin_path = \"/opt/my plugins\"\n",
             &cfg);
    const hm_section *r = hm_config_section(&cfg, "redis");
    assert_string_equal(r->kv[0].value, "  two words  ");
    assert_string_equal(r->kv[1].value, "");
    assert_string_equal(r->kv[2].value, "say \"hi\"");
    assert_string_equal(cfg.plugin_path, "/opt/my plugins");
    hm_config_free(&cfg);
}

static void unterminated_quote_is_an_error(void **state)
{
    parse_fails("[redis]\npassword = \"abc\n",
                "app.ini:2: password: unterminated quoted value: '\"abc'");
}

static void comments_and_blank_lines_are_ignored(void **state)
{
    hm_config cfg;
    parse_ok("# a comment\n"
             "; another\n"
             "\n"
             "   \t\n"
             "[hermes]\n"
             "   ; indented comment\n"
             "ttl = 7\n"
             "#ttl = 8\n"
             "[redis]\n"
             "# nothing here\n",
             &cfg);
    assert_int_equal(cfg.ttl, 7);
    assert_int_equal(hm_config_section(&cfg, "redis")->n, 0);
    hm_config_free(&cfg);
}

static void inline_comment_is_part_of_the_value(void **state)
{
    hm_config cfg;
    parse_ok("[redis]\npassword = a;b # c\n", &cfg);
    assert_string_equal(cfg.sections[0].kv[0].value, "a;b # c");
    hm_config_free(&cfg);
    parse_fails("[hermes]\nttl = 60 ; a minute\n",
                "app.ini:2: ttl: not a number: '60 ; a minute'");
}

static void unknown_key_error_names_file_line_and_key(void **state)
{
    static const char text[] = "[hermes]\nttl = 1\ncolour = blue\n";
    char path[64], err[512] = "", want[600];
    hm_config cfg;

    write_temp(path, sizeof path, text, sizeof text - 1);
    hermes_rc rc = hm_config_load(path, &cfg, err, sizeof err);
    unlink(path);
    assert_int_equal(rc, HERMES_ECONFIG);
    snprintf(want, sizeof want, "%s:3: colour: unknown key in [hermes] " KNOWN,
             path);
    assert_string_equal(err, want);
    assert_null(cfg.backend);
}

static void bad_number_is_an_error(void **state)
{
    parse_fails("[hermes]\nttl = abc\n", "app.ini:2: ttl: not a number: 'abc'");
}

static void empty_number_is_an_error(void **state)
{
    parse_fails("[hermes]\nlock_wait_ms =\n",
                "app.ini:2: lock_wait_ms: not a number: ''");
}

static void number_out_of_range_is_an_error(void **state)
{
    parse_fails("[hermes]\nttl = 2147483649\n",
                "app.ini:2: ttl: out of range 1..4294967: '2147483649'");
    parse_fails("[hermes]\nttl = -1\n",
                "app.ini:2: ttl: out of range 1..4294967: '-1'");
    parse_fails("[hermes]\nlock_ttl_ms = 0\n",
                "app.ini:2: lock_ttl_ms: out of range 1..2147483648: '0'");
    parse_fails("[hermes]\nlock_wait_ms = 99999999999999999999999\n",
                "app.ini:2: lock_wait_ms: out of range 0..2147483648: "
                "'99999999999999999999999'");
}

/* Freshness defaults: early_refresh 1 (XFetch's beta), no grace, no
 * stale-if-error; each settable, each error naming file, line and key. */
static void freshness_keys_are_parsed(void **state)
{
    hm_config cfg;
    parse_ok("[hermes]\n", &cfg);
    assert_true(cfg.early_refresh == 1.0);
    assert_int_equal(cfg.grace, 0);
    assert_false(cfg.stale_if_error);
    hm_config_free(&cfg);
    parse_ok("[hermes]\nearly_refresh = 0.25\ngrace = 30\n"
             "stale_if_error = yes\n",
             &cfg);
    assert_true(cfg.early_refresh == 0.25);
    assert_int_equal(cfg.grace, 30);
    assert_true(cfg.stale_if_error);
    hm_config_free(&cfg);
    parse_ok("[hermes]\nearly_refresh = 0\nstale_if_error = NO\n", &cfg);
    assert_true(cfg.early_refresh == 0);
    assert_false(cfg.stale_if_error);
    hm_config_free(&cfg);
    parse_ok("[hermes]\nearly_refresh = 2.\n", &cfg);
    assert_true(cfg.early_refresh == 2.0);
    hm_config_free(&cfg);
    parse_fails("[hermes]\nearly_refresh = 1,5\n",
                "app.ini:2: early_refresh: not a number: '1,5'");
    parse_fails("[hermes]\nearly_refresh = -1\n",
                "app.ini:2: early_refresh: not a number: '-1'");
    parse_fails("[hermes]\nearly_refresh = .\n",
                "app.ini:2: early_refresh: not a number: '.'");
    parse_fails("[hermes]\nearly_refresh = 101\n",
                "app.ini:2: early_refresh: out of range 0..100: '101'");
    parse_fails("[hermes]\ngrace = soon\n",
                "app.ini:2: grace: not a number: 'soon'");
    parse_fails("[hermes]\n\ngrace = 4294968\n",
                "app.ini:3: grace: out of range 0..4294967: '4294968'");
    parse_fails("[hermes]\nstale_if_error = maybe\n",
                "app.ini:2: stale_if_error: expected yes or no: 'maybe'");
}

/* The same keys given in code: same checks, "<options>" for the place. */
static void freshness_keys_in_code(void **state)
{
    hm_setting ok[] = {{NULL, "grace", "5"},
                       {NULL, "early_refresh", "3"},
                       {"hermes", "stale_if_error", "yes"}};
    hm_config cfg;
    char err[256] = "";
    assert_int_equal(
        hm_config_from_settings(ok, 3, "<options>", &cfg, err, sizeof err),
        HERMES_OK);
    assert_int_equal(cfg.grace, 5);
    assert_true(cfg.early_refresh == 3.0);
    assert_true(cfg.stale_if_error);
    hm_config_free(&cfg);
    hm_setting bad[] = {{NULL, "grace", "-5"}};
    assert_int_equal(
        hm_config_from_settings(bad, 1, "<options>", &cfg, err, sizeof err),
        HERMES_ECONFIG);
    assert_string_equal(err, "<options>: grace: out of range 0..4294967: '-5'");
}

static void bad_fallback_value_is_an_error(void **state)
{
    parse_fails("[hermes]\non_lock_timeout = maybe\n",
                "app.ini:2: on_lock_timeout: expected compute or fail: "
                "'maybe'");
    parse_fails("[hermes]\non_backend_error = retry\n",
                "app.ini:2: on_backend_error: expected compute or fail: "
                "'retry'");
}

static void bad_log_level_is_an_error(void **state)
{
    parse_fails("[hermes]\nlog_level = loud\n",
                "app.ini:2: log_level: expected error, warn, info or debug: "
                "'loud'");
}

static void bad_prefix_is_an_error(void **state)
{
    parse_fails("[hermes]\nprefix = \"my app\"\n",
                "app.ini:2: prefix: must be non-empty, without spaces, control "
                "characters, ':', '%' or '#': 'my app'");
    parse_fails("[hermes]\nprefix =\n",
                "app.ini:2: prefix: must be non-empty, without spaces, control "
                "characters, ':', '%' or '#': ''");
    /* "app" and "app:v2" would share "app:" on a server: flushing one
     * would delete the other's keys. */
    parse_fails("[hermes]\nprefix = app:v2\n",
                "app.ini:2: prefix: must be non-empty, without spaces, control "
                "characters, ':', '%' or '#': 'app:v2'");
}

static void empty_backend_is_an_error(void **state)
{
    parse_fails("[hermes]\nbackend =\n", "app.ini:2: backend: empty value");
}

static void duplicate_key_is_an_error(void **state)
{
    parse_fails("[redis]\nhost = a\nport = 1\n\nport = 2\n",
                "app.ini:5: duplicate key 'port' in [redis]");
}

static void duplicate_hermes_key_is_an_error(void **state)
{
    parse_fails("[hermes]\nttl = 1\nttl = 2\n",
                "app.ini:3: duplicate key 'ttl' in [hermes]");
}

static void duplicate_section_is_an_error(void **state)
{
    parse_fails("[redis]\nhost = a\n[hermes]\n[redis]\n",
                "app.ini:4: duplicate section [redis]");
    parse_fails("[hermes]\n[hermes]\n",
                "app.ini:2: duplicate section [hermes]");
}

static void key_outside_section_is_an_error(void **state)
{
    parse_fails("; header comment\nttl = 5\n[hermes]\n",
                "app.ini:2: key outside any section");
}

static void unterminated_header_is_an_error(void **state)
{
    parse_fails("[hermes]\nttl = 1\n\n\n[redis\n",
                "app.ini:5: unterminated section header");
}

static void text_after_header_is_an_error(void **state)
{
    parse_fails("[redis] ; the cache\n",
                "app.ini:1: text after section header: ' ; the cache'");
}

static void empty_section_name_is_an_error(void **state)
{
    parse_fails("[  ]\n", "app.ini:1: empty section name");
}

static void line_without_equals_is_an_error(void **state)
{
    parse_fails("[redis]\nhost\n",
                "app.ini:2: expected 'key = value', '[section]' or a comment: "
                "'host'");
}

static void missing_key_is_an_error(void **state)
{
    parse_fails("[redis]\n= 5\n", "app.ini:2: missing key before '='");
}

static void key_with_space_is_an_error(void **state)
{
    parse_fails("[redis]\nmy host = a\n",
                "app.ini:2: invalid key 'my host' (no spaces or control "
                "characters)");
}

static void error_message_escapes_control_characters(void **state)
{
    parse_fails("[hermes]\nttl = 1\x1b[2J\n",
                "app.ini:2: ttl: not a number: '1\\x1b[2J'");
}

static void missing_file_error_names_the_path(void **state)
{
    char err[256] = "";
    hm_config cfg;
    hermes_rc rc = hm_config_load("/tmp/hermes-test-no-such-dir/app.ini", &cfg,
                                  err, sizeof err);
    assert_int_equal(rc, HERMES_ECONFIG);
    assert_string_equal(err, "/tmp/hermes-test-no-such-dir/app.ini: "
                             "No such file or directory");
    assert_null(cfg.backend);
}

static void directory_error_names_the_path(void **state)
{
    char err[256] = "";
    hm_config cfg;
    assert_int_equal(hm_config_load("/tmp", &cfg, err, sizeof err),
                     HERMES_ECONFIG);
    assert_string_equal(err, "/tmp: Is a directory");
}

static void crlf_line_endings_are_accepted(void **state)
{
    static const char text[] = "\xef\xbb\xbf[hermes]\r\n"
                               "ttl = 42\r\n"
                               "\r\n"
                               "; comment\r\n"
                               "[redis]\r\n"
                               "host = h\r\n"
                               "password = \"a b\"\r\n";
    char path[64], err[512] = "";
    hm_config cfg;

    write_temp(path, sizeof path, text, sizeof text - 1);
    hermes_rc rc = hm_config_load(path, &cfg, err, sizeof err);
    unlink(path);
    if (rc != HERMES_OK)
        fail_msg("%s", err);
    assert_int_equal(cfg.ttl, 42);
    const hm_section *r = hm_config_section(&cfg, "redis");
    assert_int_equal(r->line, 5);
    assert_string_equal(r->kv[0].value, "h");
    assert_string_equal(r->kv[1].value, "a b");
    assert_int_equal(r->kv[1].line, 7);
    hm_config_free(&cfg);
}

static void large_file_with_long_lines_loads(void **state)
{
    /* No fixed line or file limit: 20000 keys and one 200 KB value. */
    enum { NKEYS = 20000, LONG = 200000 };
    size_t cap = (size_t)NKEYS * 32 + LONG + 64, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    len += (size_t)snprintf(text + len, cap - len, "[big]\nlong = ");
    memset(text + len, 'x', LONG);
    len += LONG;
    text[len++] = '\n';
    for (int i = 0; i < NKEYS; i++)
        len += (size_t)snprintf(text + len, cap - len, "k%d = %d\n", i, i);

    char path[64], err[512] = "";
    hm_config cfg;
    write_temp(path, sizeof path, text, len);
    free(text);
    hermes_rc rc = hm_config_load(path, &cfg, err, sizeof err);
    unlink(path);
    if (rc != HERMES_OK)
        fail_msg("%s", err);
    const hm_section *s = hm_config_section(&cfg, "big");
    assert_int_equal(s->n, NKEYS + 1);
    assert_int_equal(strlen(s->kv[0].value), LONG);
    assert_string_equal(s->kv[NKEYS].key, "k19999");
    assert_int_equal(s->kv[NKEYS].line, NKEYS + 2);
    hm_config_free(&cfg);
}

static void nul_byte_in_file_is_an_error(void **state)
{
    static const char text[] = "[hermes]\nttl = 1\0\n";
    char path[64], err[512] = "", want[600];
    hm_config cfg;

    write_temp(path, sizeof path, text, sizeof text - 1);
    hermes_rc rc = hm_config_load(path, &cfg, err, sizeof err);
    unlink(path);
    assert_int_equal(rc, HERMES_ECONFIG);
    snprintf(want, sizeof want, "%s:2: NUL byte in file", path);
    assert_string_equal(err, want);
}

/* Line numbers are size_t end to end (a file of 2^31 lines must not
 * report negative ones); a line past INT_MAX formats as itself. */
static void line_numbers_are_size_t(void **state)
{
    hm_config cfg;
    char buf[64];

    parse_ok("[hermes]\nbackend = dict\nprefix = p\n[x]\nk = v\n", &cfg);
    assert_true(_Generic(cfg.backend_line, size_t : 1, default : 0));
    assert_true(_Generic(cfg.prefix_line, size_t : 1, default : 0));
    assert_true(_Generic(cfg.sections[0].line, size_t : 1, default : 0));
    assert_true(_Generic(cfg.sections[0].lines[0], size_t : 1, default : 0));
    assert_int_equal(cfg.backend_line, 2);
    assert_int_equal(cfg.prefix_line, 3);
    assert_int_equal(cfg.sections[0].lines[0], 5);
    assert_int_equal(cfg.sections[0].kv[0].line, 5);
    hm_config_free(&cfg);
    hm_config_where(buf, sizeof buf, "big.ini", (size_t)INT_MAX + 2);
    assert_string_equal(buf, "big.ini:2147483649");
    hm_config_where(buf, sizeof buf, "<options>", 0);
    assert_string_equal(buf, "<options>");
}

/* Loads text from DIR/app.ini and returns the plugin_path it yields. */
static void plugin_path_from(const char *dir, const char *value, char *out,
                             size_t outlen)
{
    char path[256], text[512], err[512] = "";
    hm_config cfg;

    snprintf(path, sizeof path, "%s/app.ini", dir);
    snprintf(text, sizeof text, "[hermes]\nplugin_path = %s\n", value);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    if (hm_config_load(path, &cfg, err, sizeof err) != HERMES_OK)
        fail_msg("%s", err);
    snprintf(out, outlen, "%s", cfg.plugin_path);
    hm_config_free(&cfg);
    unlink(path);
}

static void relative_plugin_path_is_relative_to_the_file(void **state)
{
    char dir[64], got[512], want[512];

    snprintf(dir, sizeof dir, "/tmp/hermes-test-config-XXXXXX");
    assert_non_null(mkdtemp(dir));
    plugin_path_from(dir, "plugins", got, sizeof got);
    snprintf(want, sizeof want, "%s/plugins", dir);
    assert_string_equal(got, want);
    /* Absolute ones stay, empty ones stay empty, each relative one moves. */
    plugin_path_from(dir, "a:/abs/b::../c:", got, sizeof got);
    snprintf(want, sizeof want, "%s/a:/abs/b::%s/../c:", dir, dir);
    assert_string_equal(got, want);
    plugin_path_from(dir, "/only/absolute", got, sizeof got);
    assert_string_equal(got, "/only/absolute");
    rmdir(dir);
    /* Text has no directory: as written (relative to the process). */
    hm_config cfg;
    parse_ok("[hermes]\nplugin_path = plugins\n", &cfg);
    assert_string_equal(cfg.plugin_path, "plugins");
    hm_config_free(&cfg);
}

static void free_is_safe_twice(void **state)
{
    hm_config cfg;
    parse_ok("[redis]\nhost = a\n", &cfg);
    hm_config_free(&cfg);
    hm_config_free(&cfg);
    assert_null(cfg.sections);
    hm_config_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_are_the_documented_ones),
        cmocka_unit_test(line_numbers_are_size_t),
        cmocka_unit_test(relative_plugin_path_is_relative_to_the_file),
        cmocka_unit_test(empty_text_gives_defaults_named_string),
        cmocka_unit_test(full_valid_file_loads),
        cmocka_unit_test(backend_is_parsed),
        cmocka_unit_test(ttl_is_parsed),
        cmocka_unit_test(ttl_accepts_up_to_the_longest_a_backend_holds),
        cmocka_unit_test(prefix_is_parsed),
        cmocka_unit_test(plugin_path_is_parsed),
        cmocka_unit_test(lock_ttl_ms_is_parsed),
        cmocka_unit_test(lock_wait_ms_is_parsed),
        cmocka_unit_test(lock_poll_ms_is_parsed_and_bounded),
        cmocka_unit_test(on_lock_timeout_is_parsed),
        cmocka_unit_test(on_backend_error_is_parsed),
        cmocka_unit_test(log_level_is_parsed),
        cmocka_unit_test(plugin_sections_are_kept_with_line_numbers),
        cmocka_unit_test(hermes_section_is_not_kept_for_plugins),
        cmocka_unit_test(quoted_values_keep_their_spaces),
        cmocka_unit_test(unterminated_quote_is_an_error),
        cmocka_unit_test(comments_and_blank_lines_are_ignored),
        cmocka_unit_test(inline_comment_is_part_of_the_value),
        cmocka_unit_test(unknown_key_error_names_file_line_and_key),
        cmocka_unit_test(bad_number_is_an_error),
        cmocka_unit_test(empty_number_is_an_error),
        cmocka_unit_test(number_out_of_range_is_an_error),
        cmocka_unit_test(freshness_keys_are_parsed),
        cmocka_unit_test(freshness_keys_in_code),
        cmocka_unit_test(bad_fallback_value_is_an_error),
        cmocka_unit_test(bad_log_level_is_an_error),
        cmocka_unit_test(bad_prefix_is_an_error),
        cmocka_unit_test(empty_backend_is_an_error),
        cmocka_unit_test(duplicate_key_is_an_error),
        cmocka_unit_test(duplicate_hermes_key_is_an_error),
        cmocka_unit_test(duplicate_section_is_an_error),
        cmocka_unit_test(key_outside_section_is_an_error),
        cmocka_unit_test(unterminated_header_is_an_error),
        cmocka_unit_test(text_after_header_is_an_error),
        cmocka_unit_test(empty_section_name_is_an_error),
        cmocka_unit_test(line_without_equals_is_an_error),
        cmocka_unit_test(missing_key_is_an_error),
        cmocka_unit_test(key_with_space_is_an_error),
        cmocka_unit_test(error_message_escapes_control_characters),
        cmocka_unit_test(missing_file_error_names_the_path),
        cmocka_unit_test(directory_error_names_the_path),
        cmocka_unit_test(crlf_line_endings_are_accepted),
        cmocka_unit_test(large_file_with_long_lines_loads),
        cmocka_unit_test(nul_byte_in_file_is_an_error),
        cmocka_unit_test(free_is_safe_twice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
