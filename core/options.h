/*
 * Settings given in code (hermes_options): what handle.c reads to open a
 * handle from them.
 */
#ifndef HERMES_CORE_OPTIONS_H
#define HERMES_CORE_OPTIONS_H

#include <hermes/hermes.h>

#include "config.h"

/* How settings given in code are named in messages. */
#define HM_OPTIONS_SOURCE "<options>"

/* The settings, in the order they were first set; valid until the next
 * hermes_options_set() or hermes_options_free(). */
const hm_setting *hm_options_settings(const hermes_options *o, size_t *n);

#endif
