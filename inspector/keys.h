/*
 * The inspector's interaction state and its key handling: a pure state
 * machine from (state, model, key) to the next state and at most one action
 * for the caller to carry out against the cache (invalidate a tag, delete
 * an entry, flush the prefix, quit).  Keys arrive as insp_key codes, not
 * ncurses ones, so the tests drive it without a terminal; tui.c translates.
 */
#ifndef HERMES_INSPECTOR_KEYS_H
#define HERMES_INSPECTOR_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include "model.h"

/* Keys other than printable ASCII characters. */
enum insp_key {
    INSP_KEY_UP = 0x1000,
    INSP_KEY_DOWN,
    INSP_KEY_LEFT,
    INSP_KEY_RIGHT,
    INSP_KEY_PGUP,
    INSP_KEY_PGDN,
    INSP_KEY_HOME,
    INSP_KEY_END,
    INSP_KEY_ENTER,
    INSP_KEY_ESC,
    INSP_KEY_TAB,
    INSP_KEY_BTAB,
    INSP_KEY_BACKSPACE,
};

typedef enum insp_mode {
    INSP_MODE_MAIN,    /* the panes */
    INSP_MODE_DETAIL,  /* one row in full (Enter) */
    INSP_MODE_HELP,    /* the key list (?) */
    INSP_MODE_CONFIRM, /* "really?" before an action */
    INSP_MODE_FILTER,  /* typing the / filter */
} insp_mode;

typedef enum insp_act_kind {
    INSP_ACT_NONE,
    INSP_ACT_QUIT,
    INSP_ACT_INVALIDATE, /* target: a tag name */
    INSP_ACT_DELETE,     /* target: an entry's backend key */
    INSP_ACT_FLUSH,      /* everything under the prefix */
} insp_act_kind;

#define INSP_ROWKEY_MAX 512
#define INSP_FILTER_MAX 64
#define INSP_STATUS_MAX 160

typedef struct insp_action {
    insp_act_kind kind;
    char target[INSP_ROWKEY_MAX];
} insp_action;

/* Where each pane is: selected row (in the view), first row shown, sort. */
typedef struct insp_cursor {
    size_t sel;
    size_t top;
    size_t sort;
    char key[INSP_ROWKEY_MAX]; /* the selected row's identity */
    bool follow; /* the user picked it: a refresh keeps it on that row (at
                    the top, it stays at the top, as new rows come first) */
} insp_cursor;

typedef struct insp_ui {
    int w, h; /* the screen's size, which the layout divides */
    insp_pane pane;
    insp_mode mode;
    insp_mode back; /* the mode a confirmation returns to */
    insp_cursor cur[INSP_NPANES];
    char filter[INSP_FILTER_MAX];
    char filter_before[INSP_FILTER_MAX]; /* restored by Esc */
    bool paused;
    insp_action pending; /* what a confirmation asks about */
    /* the row a detail view shows, and how far it is scrolled */
    insp_pane detail_pane;
    char detail_key[INSP_ROWKEY_MAX];
    size_t detail_top;
    char status[INSP_STATUS_MAX]; /* one-shot message for the status line */
} insp_ui;

void insp_ui_init(insp_ui *ui, int w, int h);

/*
 * Handles one key: moves the selection, switches panes and modes, edits
 * the filter, and returns the action the key (or its confirmation) asks
 * for, INSP_ACT_NONE when it asks for none.
 */
insp_action insp_keys_handle(insp_ui *ui, const insp_model *m, int key);

/*
 * After a new model or a resize: finds each pane's selected row again by
 * its identity (else keeps its position, clamped), and scrolls so that it
 * is visible.
 */
void insp_ui_sync(insp_ui *ui, const insp_model *m);

/*
 * The view position of pane p's selected row, and its model index through
 * *row (false when the pane shows no row).
 */
bool insp_ui_selected(const insp_ui *ui, const insp_model *m, insp_pane p,
                      size_t *row);

#endif
