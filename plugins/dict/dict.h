/*
 * The dict backend's descriptor, for the core that has it built in
 * (backend = dict) and for tools and tests that drive it directly.  The
 * loadable module (plugins/dict/entry.c) exports the same descriptor as
 * hermes_backend_entry().
 */
#ifndef HERMES_PLUGIN_DICT_H
#define HERMES_PLUGIN_DICT_H

#include <hermes/backend.h>

const hermes_backend *hm_dict_backend(void);

#endif
