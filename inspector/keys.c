/*
 * Key handling (keys.h): a state machine over insp_ui.  Movement keys act
 * on the focused pane's filtered, sorted view; the selection is held by the
 * row's identity so that a refresh that reorders rows keeps it on the same
 * tag or entry.  Destructive keys (i, x, F) only open a confirmation; the
 * action comes back to the caller when the user answers y.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "layout.h"

void insp_ui_init(insp_ui *ui, int w, int h)
{
    memset(ui, 0, sizeof *ui);
    ui->w = w;
    ui->h = h;
    ui->pane = INSP_PANE_TAGS;
    ui->mode = INSP_MODE_MAIN;
}

static void status(insp_ui *ui, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void status(insp_ui *ui, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ui->status, sizeof ui->status, fmt, ap);
    va_end(ap);
}

/* The pane's view: model indices in display order (the model's cache);
 * NULL out of memory. */
static const size_t *view_of(const insp_ui *ui, const insp_model *m,
                             insp_pane p, size_t *n)
{
    return insp_view_cached(m, p, ui->filter, ui->cur[p].sort, n);
}

/* Puts pane p's selection at view position pos and keeps it visible. */
static void place(insp_ui *ui, const insp_model *m, insp_pane p,
                  const size_t *idx, size_t n, size_t pos)
{
    insp_cursor *c = &ui->cur[p];
    size_t rows = insp_layout_rows(ui->w, ui->h, ui->pane, p);
    if (n == 0) {
        c->sel = c->top = 0;
        c->key[0] = '\0';
        return;
    }
    if (pos >= n)
        pos = n - 1;
    c->sel = pos;
    insp_row_key(m, p, idx[pos], c->key, sizeof c->key);
    if (rows == 0)
        rows = 1;
    if (c->sel < c->top)
        c->top = c->sel;
    else if (c->sel >= c->top + rows)
        c->top = c->sel - rows + 1;
    if (c->top + rows > n) /* no blank rows below the last one */
        c->top = n > rows ? n - rows : 0;
}

void insp_ui_sync(insp_ui *ui, const insp_model *m)
{
    for (int p = 0; p < INSP_NPANES; p++) {
        size_t n, pos = ui->cur[p].sel;
        const size_t *idx = view_of(ui, m, p, &n);
        if (!idx)
            continue;
        char key[INSP_ROWKEY_MAX];
        for (size_t k = 0; k < n && ui->cur[p].follow && ui->cur[p].key[0];
             k++) {
            insp_row_key(m, p, idx[k], key, sizeof key);
            if (strcmp(key, ui->cur[p].key) == 0) {
                pos = k;
                break;
            }
        }
        place(ui, m, p, idx, n, pos);
    }
}

bool insp_ui_selected(const insp_ui *ui, const insp_model *m, insp_pane p,
                      size_t *row)
{
    size_t n;
    const size_t *idx = view_of(ui, m, p, &n);
    bool ok = idx && ui->cur[p].sel < n;
    if (ok)
        *row = idx[ui->cur[p].sel];
    return ok;
}

/* Up, Down, PgUp, PgDn, Home, End in the focused pane. */
static bool move(insp_ui *ui, const insp_model *m, int key)
{
    insp_pane p = ui->pane;
    size_t n, pos = ui->cur[p].sel;
    size_t page = insp_layout_rows(ui->w, ui->h, p, p);
    if (page == 0)
        page = 1;
    switch (key) {
    case INSP_KEY_UP:
        pos = pos ? pos - 1 : 0;
        break;
    case INSP_KEY_DOWN:
        pos++;
        break;
    case INSP_KEY_PGUP:
        pos = pos > page ? pos - page : 0;
        break;
    case INSP_KEY_PGDN:
        pos += page;
        break;
    case INSP_KEY_HOME:
        pos = 0;
        break;
    case INSP_KEY_END:
        pos = SIZE_MAX;
        break;
    default:
        return false;
    }
    const size_t *idx = view_of(ui, m, p, &n);
    if (idx)
        place(ui, m, p, idx, n, pos);
    ui->cur[p].follow = ui->cur[p].sel > 0;
    return true;
}

static void ask(insp_ui *ui, insp_act_kind kind, const char *target)
{
    ui->pending.kind = kind;
    snprintf(ui->pending.target, sizeof ui->pending.target, "%s",
             target ? target : "");
    ui->back = ui->mode;
    ui->mode = INSP_MODE_CONFIRM;
}

/* The selected row's identity in pane p (in a detail view: its row). */
static bool target(const insp_ui *ui, const insp_model *m, insp_pane p,
                   char *key, size_t cap)
{
    size_t row;
    if (ui->mode == INSP_MODE_DETAIL) {
        if (ui->detail_pane != p)
            return false;
        snprintf(key, cap, "%s", ui->detail_key);
        return true;
    }
    if (ui->pane != p || !insp_ui_selected(ui, m, p, &row))
        return false;
    insp_row_key(m, p, row, key, cap);
    return true;
}

static insp_action none(void)
{
    insp_action a;
    a.kind = INSP_ACT_NONE;
    a.target[0] = '\0';
    return a;
}

static insp_action confirm_key(insp_ui *ui, int key)
{
    insp_action a = none();
    if (key == 'y' || key == 'Y') {
        a = ui->pending;
    } else {
        status(ui, "cancelled");
    }
    ui->mode = ui->back == INSP_MODE_DETAIL && a.kind != INSP_ACT_DELETE
                   ? INSP_MODE_DETAIL
                   : INSP_MODE_MAIN;
    ui->pending = none();
    return a;
}

static void filter_key(insp_ui *ui, const insp_model *m, int key)
{
    size_t len = strlen(ui->filter);
    if (key == INSP_KEY_ENTER) {
        ui->mode = INSP_MODE_MAIN;
        return;
    }
    if (key == INSP_KEY_ESC) {
        snprintf(ui->filter, sizeof ui->filter, "%s", ui->filter_before);
        ui->mode = INSP_MODE_MAIN;
    } else if (key == INSP_KEY_BACKSPACE || key == 127 || key == 8) {
        if (len)
            ui->filter[len - 1] = '\0';
    } else if (key >= 0x20 && key < 0x7f && len + 1 < sizeof ui->filter) {
        ui->filter[len] = (char)key;
        ui->filter[len + 1] = '\0';
    }
    insp_ui_sync(ui, m); /* live: the panes follow the typing */
}

static void open_detail(insp_ui *ui, const insp_model *m)
{
    size_t row;
    if (!insp_ui_selected(ui, m, ui->pane, &row)) {
        status(ui, "nothing selected");
        return;
    }
    ui->detail_pane = ui->pane;
    insp_row_key(m, ui->pane, row, ui->detail_key, sizeof ui->detail_key);
    ui->detail_top = 0;
    ui->mode = INSP_MODE_DETAIL;
}

static void detail_key(insp_ui *ui, int key)
{
    size_t page = insp_layout_detail_rows(ui->h);
    switch (key) {
    case INSP_KEY_ESC:
    case INSP_KEY_ENTER:
    case INSP_KEY_LEFT:
    case INSP_KEY_BACKSPACE:
        ui->mode = INSP_MODE_MAIN;
        break;
    case INSP_KEY_UP:
        if (ui->detail_top)
            ui->detail_top--;
        break;
    case INSP_KEY_DOWN:
        ui->detail_top++;
        break;
    case INSP_KEY_PGUP:
        ui->detail_top = ui->detail_top > page ? ui->detail_top - page : 0;
        break;
    case INSP_KEY_PGDN:
        ui->detail_top += page;
        break;
    case INSP_KEY_HOME:
        ui->detail_top = 0;
        break;
    default:
        break;
    }
}

static void switch_pane(insp_ui *ui, const insp_model *m, int step)
{
    ui->pane = (insp_pane)((ui->pane + INSP_NPANES + step) % INSP_NPANES);
    insp_ui_sync(ui, m); /* on small screens the pane's height changed */
}

insp_action insp_keys_handle(insp_ui *ui, const insp_model *m, int key)
{
    char key_text[INSP_ROWKEY_MAX];
    ui->status[0] = '\0';
    switch (ui->mode) {
    case INSP_MODE_CONFIRM:
        return confirm_key(ui, key);
    case INSP_MODE_FILTER:
        filter_key(ui, m, key);
        return none();
    case INSP_MODE_HELP:
        ui->mode = INSP_MODE_MAIN;
        if (key == 'q') {
            insp_action a = none();
            a.kind = INSP_ACT_QUIT;
            return a;
        }
        return none();
    default:
        break;
    }

    switch (key) {
    case 'q':
    case 'Q': {
        insp_action a = none();
        a.kind = INSP_ACT_QUIT;
        return a;
    }
    case '?':
    case 'h':
        ui->mode = INSP_MODE_HELP;
        return none();
    case 'p':
        ui->paused = !ui->paused;
        status(ui,
               ui->paused ? "refresh paused (p resumes)" : "refresh resumed");
        return none();
    case 'F':
        ask(ui, INSP_ACT_FLUSH, NULL);
        return none();
    case 'i':
        if (target(ui, m, INSP_PANE_TAGS, key_text, sizeof key_text))
            ask(ui, INSP_ACT_INVALIDATE, key_text);
        else
            status(ui, "i invalidates a tag: select one in the Tags pane");
        return none();
    case 'x':
        if (target(ui, m, INSP_PANE_ENTRIES, key_text, sizeof key_text))
            ask(ui, INSP_ACT_DELETE, key_text);
        else
            status(ui, "x deletes an entry: select one in the Entries pane");
        return none();
    default:
        break;
    }

    if (ui->mode == INSP_MODE_DETAIL) {
        detail_key(ui, key);
        return none();
    }

    switch (key) {
    case INSP_KEY_TAB:
    case INSP_KEY_RIGHT:
        switch_pane(ui, m, 1);
        break;
    case INSP_KEY_BTAB:
    case INSP_KEY_LEFT:
        switch_pane(ui, m, -1);
        break;
    case INSP_KEY_ENTER:
        open_detail(ui, m);
        break;
    case '/':
        snprintf(ui->filter_before, sizeof ui->filter_before, "%s", ui->filter);
        ui->mode = INSP_MODE_FILTER;
        break;
    case INSP_KEY_ESC:
        if (ui->filter[0]) {
            ui->filter[0] = '\0';
            insp_ui_sync(ui, m);
            status(ui, "filter cleared");
        }
        break;
    case 's': {
        insp_cursor *c = &ui->cur[ui->pane];
        size_t n = insp_sort_count(ui->pane);
        c->sort = n ? (c->sort + 1) % n : 0;
        insp_ui_sync(ui, m);
        status(ui, "%s sorted by %s", insp_pane_title(ui->pane),
               insp_sort_name(ui->pane, c->sort));
        break;
    }
    default:
        move(ui, m, key);
        break;
    }
    return none();
}
