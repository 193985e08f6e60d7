/*
 * The terminal (tui.h): the only ncurses code.  The loop is htop's: take
 * the newest model if the refresher has one, draw if anything changed,
 * read a key with a short timeout, handle KEY_RESIZE.  Everything drawn
 * comes from insp_render()'s grid; every key goes through
 * insp_keys_handle().  Colour only when the terminal has it and NO_COLOR
 * is unset or empty; without it attributes (reverse, bold, underline)
 * carry the same distinctions.  Characters beyond ASCII (a UTF-8 locale's,
 * see layout.h) are drawn as wide characters: main() sets LC_CTYPE from
 * the environment.  The terminal is restored on q, on
 * SIGINT/SIGTERM/SIGHUP/SIGQUIT and on every error return.
 */
#include <curses.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "keys.h"
#include "layout.h"
#include "tui.h"

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
    got_signal = sig;
}

/* No SA_RESTART: a signal interrupts getch() so the loop sees it at once. */
static void catch_signals(void)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        sigaction(sigs[i], &sa, NULL);
}

/* ncurses attributes per insp_attr, with and without colour. */
static attr_t attrs[INSP_NATTRS];

static void setup_attrs(void)
{
    const char *nc = getenv("NO_COLOR");
    bool colour = has_colors() && !(nc && *nc);
    static const attr_t plain[INSP_NATTRS] = {
        [INSP_A_TITLE] = A_REVERSE | A_BOLD,
        [INSP_A_HEADER] = A_UNDERLINE,
        [INSP_A_FOCUS] = A_REVERSE,
        [INSP_A_SORTED] = A_REVERSE | A_BOLD | A_UNDERLINE,
        [INSP_A_SELECT] = A_REVERSE,
        [INSP_A_STALE] = A_BOLD,
        [INSP_A_EXPIRED] = A_DIM,
        [INSP_A_BAD] = A_BOLD | A_UNDERLINE,
        [INSP_A_CHANGED] = A_BOLD | A_STANDOUT,
        [INSP_A_DIM] = A_DIM,
        [INSP_A_STATUS] = A_REVERSE,
        [INSP_A_DIALOG] = A_REVERSE | A_BOLD,
    };
    memcpy(attrs, plain, sizeof attrs);
    if (!colour || start_color() == ERR)
        return;
    use_default_colors();
    /* pair, foreground, background (-1: the terminal's default) */
    static const struct {
        insp_attr a;
        short fg, bg;
        attr_t extra;
    } pairs[] = {
        {INSP_A_TITLE, COLOR_WHITE, COLOR_BLUE, A_BOLD},
        {INSP_A_HEADER, COLOR_BLACK, COLOR_WHITE, 0},
        {INSP_A_FOCUS, COLOR_BLACK, COLOR_CYAN, 0},
        {INSP_A_SORTED, COLOR_BLACK, COLOR_GREEN, A_BOLD},
        {INSP_A_SELECT, COLOR_BLACK, COLOR_CYAN, A_BOLD},
        {INSP_A_FRESH, COLOR_GREEN, -1, 0},
        {INSP_A_STALE, COLOR_YELLOW, -1, A_BOLD},
        {INSP_A_EXPIRED, COLOR_BLUE, -1, A_BOLD},
        {INSP_A_BAD, COLOR_RED, -1, A_BOLD},
        {INSP_A_CHANGED, COLOR_MAGENTA, -1, A_BOLD},
        {INSP_A_DIM, COLOR_CYAN, -1, 0},
        {INSP_A_STATUS, COLOR_BLACK, COLOR_CYAN, 0},
        {INSP_A_DIALOG, COLOR_WHITE, COLOR_RED, A_BOLD},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
        short n = (short)(i + 1);
        if (n >= COLOR_PAIRS || init_pair(n, pairs[i].fg, pairs[i].bg) == ERR)
            continue;
        attrs[pairs[i].a] = COLOR_PAIR(n) | pairs[i].extra;
    }
}

static void paint(const insp_grid *g)
{
    for (int y = 0; y < g->h; y++) {
        move(y, 0);
        for (int x = 0; x < g->w; x++) {
            const insp_cell *c = insp_grid_at(g, x, y);
            /* In the bottom-right cell the cursor cannot advance: addch()
             * returns ERR, but (scrolling being off) the cell is written,
             * and refresh() puts it on the screen without scrolling.  Left
             * out, that cell kept what an earlier frame had there. */
            if (c->ch == INSP_CELL_CONT)
                continue; /* the wide character before took this cell */
            if (c->ch < 0x80) {
                (void)addch((chtype)c->ch | attrs[c->attr]);
                continue;
            }
            wchar_t wc[2] = {(wchar_t)c->ch, L'\0'};
            cchar_t cc;
            attr_t at = attrs[c->attr];
            if (setcchar(&cc, wc, at & ~A_COLOR, (short)PAIR_NUMBER(at),
                         NULL) == OK)
                (void)add_wch(&cc);
            else
                (void)addch((chtype)'?' | at);
        }
    }
    refresh();
}

static int key_of(int ch)
{
    switch (ch) {
    case KEY_UP:
        return INSP_KEY_UP;
    case KEY_DOWN:
        return INSP_KEY_DOWN;
    case KEY_LEFT:
        return INSP_KEY_LEFT;
    case KEY_RIGHT:
        return INSP_KEY_RIGHT;
    case KEY_PPAGE:
        return INSP_KEY_PGUP;
    case KEY_NPAGE:
        return INSP_KEY_PGDN;
    case KEY_HOME:
        return INSP_KEY_HOME;
    case KEY_END:
        return INSP_KEY_END;
    case KEY_ENTER:
    case '\n':
    case '\r':
        return INSP_KEY_ENTER;
    case 27:
        return INSP_KEY_ESC;
    case '\t':
        return INSP_KEY_TAB;
    case KEY_BTAB:
        return INSP_KEY_BTAB;
    case KEY_BACKSPACE:
    case 127:
    case 8:
        return INSP_KEY_BACKSPACE;
    default:
        return ch;
    }
}

/* Carries out an action; what happened goes to the status line. */
static void act(const insp_tui *t, insp_ui *ui, const insp_action *a)
{
    switch (a->kind) {
    case INSP_ACT_INVALIDATE:
        t->invalidate(t->arg, a->target, ui->status, sizeof ui->status);
        break;
    case INSP_ACT_DELETE:
        t->delete_entry(t->arg, a->target, ui->status, sizeof ui->status);
        break;
    case INSP_ACT_FLUSH:
        t->flush(t->arg, ui->status, sizeof ui->status);
        break;
    default:
        return;
    }
    t->kick(t->arg); /* show what it did at once */
}

int insp_tui_run(const insp_tui *t, insp_model *m)
{
    insp_ui ui;
    insp_grid g = {0, 0, NULL};
    int rc = 0;

    got_signal = 0;
    catch_signals();
    if (!initscr())
        return -1;
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    set_escdelay(25);
    curs_set(0);
    timeout(100); /* getch waits at most this long for a key */
    setup_attrs();

    insp_ui_init(&ui, COLS, LINES);
    bool dirty = true, quit = false;
    int64_t drawn = 0;
    while (!quit && !got_signal) {
        if (t->take(t->arg, m)) {
            insp_ui_sync(&ui, m);
            dirty = true;
        }
        int64_t now = insp_wall_ms();
        if (dirty || now - drawn >= 1000) { /* ages move every second */
            if (insp_grid_resize(&g, ui.w, ui.h) != 0) {
                rc = -1;
                break;
            }
            insp_render(m, &ui, now, &g);
            paint(&g);
            drawn = now;
            dirty = false;
        }
        int ch = getch();
        if (ch == ERR)
            continue;
        dirty = true;
        if (ch == KEY_RESIZE) {
            ui.w = COLS;
            ui.h = LINES;
            /* Repaint every cell: what the terminal shows after a resize
             * (cropped, or a frame drawn for the size before) is not what
             * ncurses believes it shows. */
            clearok(curscr, TRUE);
            insp_ui_sync(&ui, m);
            continue;
        }
        bool paused = ui.paused;
        insp_action a = insp_keys_handle(&ui, m, key_of(ch));
        if (ui.paused != paused)
            t->pause(t->arg, ui.paused);
        if (a.kind == INSP_ACT_QUIT)
            quit = true;
        else
            act(t, &ui, &a);
    }
    insp_grid_free(&g);
    endwin();
    return rc == 0 && got_signal ? 128 + got_signal : rc;
}
