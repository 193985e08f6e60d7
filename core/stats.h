/*
 * The handle's counters as data, for the tools' printers (hermesctl, the
 * benchmark): one row per HERMES_STATS_MAP entry, generated from it like
 * the struct, the atomics and the snapshot, so a counter added to the list
 * is printed everywhere without touching a printer.
 */
#ifndef HERMES_CORE_STATS_H
#define HERMES_CORE_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <hermes/hermes.h>

typedef struct hm_stat_field {
    const char *name; /* the field's name: "hits" */
    const char *text; /* its description from the list */
    size_t offset;    /* offsetof(hermes_stats, name) */
} hm_stat_field;

/* Every counter, in list order (which is the struct's order). */
extern const hm_stat_field hm_stat_fields[];
extern const size_t hm_stat_nfields;

/* The value of counter f in s. */
uint64_t hm_stat_value(const hermes_stats *s, const hm_stat_field *f);

/* Writes "<indent><name>: <value>\n" for every counter of s, or of the
 * difference s - since when since is not NULL (what one run counted). */
void hm_stats_print(FILE *out, const char *indent, const hermes_stats *s,
                    const hermes_stats *since);

#endif
