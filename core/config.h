/*
 * The configuration: an INI file (or text, or built-in defaults) parsed
 * into the [hermes] settings the core uses and the raw sections handed to
 * plugins.  Every error names the source, the line and the key.
 */
#ifndef HERMES_CORE_CONFIG_H
#define HERMES_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hermes/backend.h>
#include <hermes/hermes.h>

/* What to do when a follower's wait for a lock reaches lock_wait_ms, and
 * when a backend operation fails. */
typedef enum hm_fallback {
    HM_FALLBACK_COMPUTE = 0, /* compute the value directly */
    HM_FALLBACK_FAIL = 1     /* return HERMES_ETIMEOUT / HERMES_EBACKEND */
} hm_fallback;

/* Line numbers are size_t throughout; 0 means "not from a file" (text
 * given in code has no lines to name). */
typedef struct hm_section {
    char *name;
    size_t line;   /* line of the "[name]" header */
    hermes_kv *kv; /* key/value strings are owned by the section; kv[i].line
                    * is an int for the plugin ABI (0 past INT_MAX) */
    size_t *lines; /* lines[i] is the line of kv[i] */
    size_t n;
} hm_section;

typedef struct hm_config {
    char *source;          /* file path, or "<string>"/"<defaults>" */
    char *backend;         /* "dict", a plugin name, or a path to a .so/.la */
    size_t backend_line;   /* 0 when defaulted or not from a file */
    uint32_t ttl;          /* default entry TTL: seconds (1..HERMES_TTL_MAX,
                              default 3600) or HERMES_TTL_FOREVER */
    char *prefix;          /* key prefix (default "cache") */
    size_t prefix_line;    /* 0 when defaulted or not from a file */
    char *plugin_path;     /* colon-separated directories, or NULL; from a
                            * file, relative ones are made relative to the
                            * file's directory */
    uint32_t lock_ttl_ms;  /* backend lock lifetime (default 10000) */
    uint32_t lock_wait_ms; /* longest wait for another's lock (default 5000) */
    uint32_t lock_poll_ms; /* longest pause between two attempts at a held
                              lock (default 50) */
    hm_fallback on_lock_timeout;  /* default compute */
    hm_fallback on_backend_error; /* default compute */
    int log_level;                /* HERMES_LOG_* threshold (default warn) */
    bool log_stderr;      /* log = stderr: lines go to stderr (default none) */
    double early_refresh; /* XFetch beta for functions that set none
                             (default HM_DEFAULT_EARLY_REFRESH; 0 = off) */
    uint32_t grace;       /* seconds of grace (default 0) */
    bool stale_if_error;  /* default no */
    int publish_stats;    /* publish_stats: 1 yes, 0 no, -1 auto (default:
                             yes for a backend with HERMES_CAP_SHARED) */
    uint32_t publish_interval_ms; /* default 5000 */
    hm_section *sections; /* every section but [hermes], in file order */
    size_t nsections;
} hm_config;

/* The default XFetch factor: the paper's optimum in expectation, and what
 * Symfony Cache uses (README "Freshness"). */
#define HM_DEFAULT_EARLY_REFRESH 1.0
/* The largest early_refresh accepted. */
#define HM_MAX_EARLY_REFRESH 100.0

/* Fills cfg with the built-in defaults (source "<defaults>"). */
hermes_rc hm_config_defaults(hm_config *cfg);

/*
 * Parses INI text.  Syntax: "[section]" headers, "key = value" lines,
 * comments starting with ';' or '#' on their own line, blank lines.  Keys
 * before any section, duplicate keys in a section, duplicate sections,
 * unknown keys in [hermes] and bad values are errors written to err as
 * "SOURCE:LINE: KEY: reason".  On error cfg holds nothing to free.
 */
hermes_rc hm_config_parse(const char *text, const char *source, hm_config *cfg,
                          char *err, size_t errlen);

/* Reads and parses the file at path; a file that cannot be read is
 * HERMES_ECONFIG with "PATH: strerror(errno)".  A relative directory in
 * plugin_path is taken relative to the directory holding the file. */
hermes_rc hm_config_load(const char *path, hm_config *cfg, char *err,
                         size_t errlen);

/* One setting given in code: section NULL means [hermes]. */
typedef struct hm_setting {
    const char *section;
    const char *key;
    const char *value;
} hm_setting;

/*
 * Builds cfg from n settings, each checked exactly as the same line of a
 * file would be (same keys, values and messages), in order.  A section may
 * be named any number of times, but a key only once per section.
 * Messages name the source instead of a file and line: "SOURCE: KEY:
 * reason".  Sections keep their first mention's order; lines are 0.
 */
hermes_rc hm_config_from_settings(const hm_setting *set, size_t n,
                                  const char *source, hm_config *cfg, char *err,
                                  size_t errlen);

/* Writes "SOURCE:LINE", or "SOURCE" when line is 0, like snprintf. */
int hm_config_where(char *buf, size_t len, const char *source, size_t line);

/* Copies s into buf (len >= 8) with control characters written as \xNN
 * and "..." when it is cut short, so that text from a file or a plugin
 * stays one readable line in a message.  Returns buf. */
const char *hm_config_escape(const char *s, char *buf, size_t len);

/* The section called name, or NULL. */
const hm_section *hm_config_section(const hm_config *cfg, const char *name);

void hm_config_free(hm_config *cfg);

#endif
