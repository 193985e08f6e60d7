/*
 * What the tools (hermesctl, the benchmark, the conformance kit) may know
 * of an open handle: accessors, never struct hermes itself.
 */
#ifndef HERMES_CORE_HANDLE_H
#define HERMES_CORE_HANDLE_H

#include <hermes/backend.h>
#include <hermes/hermes.h>

#include "config.h"

/* The configuration the handle was opened with. */
const hm_config *hm_handle_config(const hermes *h);
/* The open backend's descriptor (NULL when the open failed). */
const hermes_backend *hm_handle_backend(const hermes *h);
/* The plugin file loaded, "(built-in)", "(linked)", or "?". */
const char *hm_handle_plugin_path(const hermes *h);
/* "<prefix>:entry:" */
const char *hm_handle_entry_prefix(const hermes *h);
/* "<prefix>:ns", the namespace key hermes_flush deletes, when the backend
 * cannot flush by prefix (HERMES_CAP_NO_PREFIX_FLUSH); else NULL. */
const char *hm_handle_ns_key(const hermes *h);

/* The backend's own stats (HERMES_CAP_STATS), serialized like every other
 * backend call.  Returns the plugin's hermes_be_status. */
int hm_be_stats(hermes *h, hermes_stat_cb cb, void *arg);
/* A backend status as text ("backend unreachable or timed out"), and its
 * name in HERMES_BE_STATUS_MAP ("IO"; NULL for a status not listed). */
const char *hm_be_status_str(int status);
const char *hm_be_status_name(int status);

#endif
