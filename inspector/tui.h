/*
 * The inspector's terminal front end (tui.c), the only part that knows
 * ncurses.  It gets models and carries out actions through the callbacks
 * below, so it knows nothing of the cache either.
 */
#ifndef HERMES_INSPECTOR_TUI_H
#define HERMES_INSPECTOR_TUI_H

#include <stdbool.h>
#include <stddef.h>

#include "model.h"

typedef struct insp_tui {
    void *arg;
    /* Replaces *m with a newer model if there is one; true if it did. */
    bool (*take)(void *arg, insp_model *m);
    void (*pause)(void *arg, bool paused);
    void (*kick)(void *arg); /* refresh as soon as possible */
    /* Actions: write what happened (or why not) to msg. */
    void (*invalidate)(void *arg, const char *tag, char *msg, size_t cap);
    void (*delete_entry)(void *arg, const char *key, char *msg, size_t cap);
    void (*flush)(void *arg, char *msg, size_t cap);
} insp_tui;

/*
 * Runs the screen until q or a signal, drawing *m (which take() replaces),
 * and restores the terminal.  Returns 0 after q, 128 + the signal's number
 * after SIGINT, SIGTERM, SIGHUP or SIGQUIT, -1 when the terminal cannot be
 * set up or memory runs out.
 */
int insp_tui_run(const insp_tui *t, insp_model *m);

#endif
