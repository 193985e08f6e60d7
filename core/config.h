/*
 * The configuration: an INI file (or text, or built-in defaults) parsed
 * into the [hermes] settings the core uses and the raw sections handed to
 * plugins.  Every error names the source, the line and the key.
 */
#ifndef HERMES_CORE_CONFIG_H
#define HERMES_CORE_CONFIG_H

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

typedef struct hm_section {
    char *name;
    int line;      /* line of the "[name]" header */
    hermes_kv *kv; /* key/value strings are owned by the section */
    size_t n;
} hm_section;

typedef struct hm_config {
    char *source;          /* file path, or "<string>"/"<defaults>" */
    char *backend;         /* "dict", a plugin name, or a path to a .so/.la */
    int backend_line;      /* 0 when defaulted */
    uint32_t ttl;          /* default entry TTL, seconds (default 3600) */
    char *prefix;          /* key prefix (default "cache") */
    char *plugin_path;     /* colon-separated directories, or NULL */
    uint32_t lock_ttl_ms;  /* backend lock lifetime (default 10000) */
    uint32_t lock_wait_ms; /* longest wait for another's lock (default 5000) */
    hm_fallback on_lock_timeout;  /* default compute */
    hm_fallback on_backend_error; /* default compute */
    int log_level;                /* HERMES_LOG_* threshold (default warn) */
    hm_section *sections; /* every section but [hermes], in file order */
    size_t nsections;
} hm_config;

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
 * HERMES_ECONFIG with "PATH: strerror(errno)". */
hermes_rc hm_config_load(const char *path, hm_config *cfg, char *err,
                         size_t errlen);

/* The section called name, or NULL. */
const hm_section *hm_config_section(const hm_config *cfg, const char *name);

void hm_config_free(hm_config *cfg);

#endif
