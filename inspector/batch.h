/*
 * The inspector's batch mode: one model as text (--once) or JSON (--json),
 * then exit.  Pure printing; the schema is in hermes-inspector(1).
 */
#ifndef HERMES_INSPECTOR_BATCH_H
#define HERMES_INSPECTOR_BATCH_H

#include <stdint.h>
#include <stdio.h>

#include "model.h"

/* The JSON output's "schema"; raised when a field changes meaning (new
 * fields may appear without it). */
#define INSP_JSON_SCHEMA 1

void insp_print_text(FILE *out, const insp_model *m, int64_t now_ms);
void insp_print_json(FILE *out, const insp_model *m);

#endif
