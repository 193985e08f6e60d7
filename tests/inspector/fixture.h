/*
 * A hand-built inspector model shared by the model, layout and key tests:
 * three tags, six entries in every state, one lock, two processes (see
 * fixture.c for the numbers the tests assert).
 */
#ifndef HERMES_TEST_INSPECTOR_FIXTURE_H
#define HERMES_TEST_INSPECTOR_FIXTURE_H

#include "model.h"

#define FIX_NOW_MS 1800000000000LL

/* Fills m (initialised here) with the fixture, resolved and aggregated. */
void fixture_model(insp_model *m);

/* Adds n tags "tNNN" with one fresh entry each, for scrolling tests. */
void fixture_many_tags(insp_model *m, size_t n);

#endif
