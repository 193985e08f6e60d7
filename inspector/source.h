/*
 * Where the inspector's models come from: the core's inspection layer
 * (core/inspect.h) scans the keys under a handle's prefix into a snapshot,
 * which insp_from_snapshot() turns into a model.  The refresher does that
 * on a thread of its own every interval, so that a long scan never stalls
 * the screen: the UI thread takes the newest finished model when it is
 * ready.  Actions (invalidate a tag, delete an entry, flush) go through
 * the library on the caller's thread.
 */
#ifndef HERMES_INSPECTOR_SOURCE_H
#define HERMES_INSPECTOR_SOURCE_H

#include <stdbool.h>
#include <stddef.h>

#include <hermes/hermes.h>

#include "inspect.h"
#include "model.h"

/* The tag name a model shows for a tag key whose name is not known. */
const char *insp_tag_display_name(const hm_insp_tag *t);

/*
 * Fills m (initialised by the caller) from snapshot s: backend and prefix
 * name the handle.  Tags, entries (their tags by name or id), locks and
 * the processes that published counters.  0, or -1 out of memory.
 */
int insp_from_snapshot(insp_model *m, const hm_snapshot *s, const char *backend,
                       const char *prefix);

/*
 * One refresh: scans h into *out (initialised here), tracks tag changes
 * against prev (may be NULL: the first snapshot), resolves and
 * aggregates.  On failure out->error says why and the rest is empty;
 * returns the scan's result.
 */
hermes_rc insp_refresh(hermes *h, const insp_model *prev, insp_model *out);

typedef struct insp_refresher insp_refresher;

/* Starts a refresher thread scanning h every interval_ms (the first scan
 * at once).  0, or -1 (errno) when the thread cannot start. */
int insp_refresher_start(insp_refresher **out, hermes *h, unsigned interval_ms);

/*
 * Replaces *m with the newest finished model, if one came since the last
 * take (the old one is freed); a failed refresh keeps *m's rows and sets
 * its error.  Returns whether *m changed.  Never blocks on a scan.
 */
bool insp_refresher_take(insp_refresher *r, insp_model *m);

/* Whether a scan is running now, and how many keys it has seen. */
bool insp_refresher_scanning(insp_refresher *r, size_t *keys);

/* Paused: no scans until resumed or kicked. */
void insp_refresher_pause(insp_refresher *r, bool paused);
/* Scan again as soon as the current scan (if any) ends. */
void insp_refresher_kick(insp_refresher *r);
/* Cancels a running scan, joins the thread, frees r.  NULL is fine. */
void insp_refresher_stop(insp_refresher *r);

/*
 * The actions, through the library: invalidate a tag (hermes_clean; a tag
 * known only by its hashed key has that key deleted, which is what
 * hermes_clean does), delete an entry's key exactly as scanned, flush the
 * prefix.  On failure msg (cap bytes) says why; on success what was done.
 */
hermes_rc insp_act_invalidate(hermes *h, const char *tag, char *msg,
                              size_t cap);
hermes_rc insp_act_delete(hermes *h, const char *key, char *msg, size_t cap);
hermes_rc insp_act_flush(hermes *h, char *msg, size_t cap);

#endif
