/*
 * The inspector's screen as a pure function: a model and the interaction
 * state are drawn into a grid of character cells with attributes, which
 * tui.c copies to the terminal and the tests read as text.  The layout
 * divides the screen among the panes (all of them from 80x24 up, only the
 * focused one on smaller screens), fits each table's columns to its width
 * (dropping the least important ones first), and draws the detail view,
 * the help, confirmation dialogs and the status line over it.
 */
#ifndef HERMES_INSPECTOR_LAYOUT_H
#define HERMES_INSPECTOR_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "keys.h"
#include "model.h"

/* What a cell means; tui.c turns it into a colour or a video attribute. */
typedef enum insp_attr {
    INSP_A_NORMAL,
    INSP_A_TITLE,   /* the top line */
    INSP_A_HEADER,  /* a pane's column headers */
    INSP_A_FOCUS,   /* the focused pane's column headers */
    INSP_A_SORTED,  /* the header of the column a pane is sorted by */
    INSP_A_SELECT,  /* the selected row of the focused pane */
    INSP_A_FRESH,   /* an entry's state, by state */
    INSP_A_STALE,   /* also stale counts and garbage */
    INSP_A_EXPIRED, /* also gone tags */
    INSP_A_BAD,     /* foreign and corrupt entries, errors */
    INSP_A_CHANGED, /* a tag that changed a moment ago */
    INSP_A_DIM,     /* separators, "no rows" */
    INSP_A_STATUS,  /* the bottom line */
    INSP_A_DIALOG,  /* help and confirmation boxes */
    INSP_NATTRS
} insp_attr;

/*
 * A cell holds one printable character, as a Unicode code point: text is
 * decoded by the LC_CTYPE locale, so a UTF-8 locale shows UTF-8 names as
 * they are and any other (the C locale) shows printable ASCII; whatever
 * cannot be shown (control characters, invalid UTF-8, characters of no
 * width) is drawn as '?'.  A character two cells wide fills the next cell
 * with INSP_CELL_CONT, which is drawn as nothing.
 */
#define INSP_CELL_CONT 0u
typedef struct insp_cell {
    uint32_t ch;
    unsigned char attr;
} insp_cell;

typedef struct insp_grid {
    int w, h;
    insp_cell *cells; /* h rows of w cells */
} insp_grid;

/* Sizes g to w x h (either may be 0), blank. 0, or -1 out of memory. */
int insp_grid_resize(insp_grid *g, int w, int h);
void insp_grid_free(insp_grid *g);
/* The text of w cells of row y from x, UTF-8, trailing blanks cut, as
 * much as fits in cap bytes (4 a cell is always enough). */
void insp_grid_text(const insp_grid *g, int x, int y, int w, char *buf,
                    size_t cap);
/* insp_grid_text() of the whole row y. */
void insp_grid_row(const insp_grid *g, int y, char *buf, size_t cap);
const insp_cell *insp_grid_at(const insp_grid *g, int x, int y);

/* A rectangle of the screen; h 0 when a pane is not shown. */
typedef struct insp_rect {
    int x, y, w, h;
} insp_rect;

/* The whole layout from this size up; below it only the focused pane. */
#define INSP_FULL_W 80
#define INSP_FULL_H 24

/* Where pane p goes on a w x h screen with focus focused: header line
 * included. */
insp_rect insp_layout_pane(int w, int h, insp_pane focus, insp_pane p);
/* How many data rows pane p shows (its height minus the header), 0 hidden. */
size_t insp_layout_rows(int w, int h, insp_pane focus, insp_pane p);
/* Data rows of the detail view. */
size_t insp_layout_detail_rows(int h);

/*
 * Draws the whole screen for the model and ui into g (already sized to
 * ui->w x ui->h; a grid of another size is drawn at its own size).
 * now_ms is the wall clock for ages ("3 s ago").
 */
void insp_render(const insp_model *m, const insp_ui *ui, int64_t now_ms,
                 insp_grid *g);

/*
 * The lines of the detail view of ui's detail row, each written to
 * out(arg, attr, text); returns how many (0 when the row is gone).  Shared
 * by the screen and by tests.
 */
size_t insp_detail_lines(const insp_model *m, const insp_ui *ui, int64_t now_ms,
                         void (*out)(void *arg, insp_attr a, const char *text),
                         void *arg);

/*
 * Pane p as a table of every row of its view (ui's filter and sort), width
 * columns wide, one out(arg, line) per line: the header, then the rows.
 * The batch text output prints the screen's tables this way.
 */
void insp_render_table(const insp_model *m, const insp_ui *ui, insp_pane p,
                       int width, int64_t now_ms,
                       void (*out)(void *arg, const char *line), void *arg);

/* Human forms shared with the batch output: 1.2k, 3.4M; 12 KiB; 3.2 s. */
void insp_fmt_count(uint64_t n, char *buf, size_t cap);
void insp_fmt_bytes(uint64_t n, char *buf, size_t cap);
void insp_fmt_ms(int64_t ms, char *buf, size_t cap);
void insp_fmt_us(uint64_t us, char *buf, size_t cap);

#endif
