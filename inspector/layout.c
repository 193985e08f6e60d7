/*
 * The inspector's screen (layout.h): pane geometry, tables fitted to their
 * width, the detail view, help, confirmation dialogs and the status line,
 * drawn from the model and the interaction state into a grid of cells.
 * Nothing here touches the terminal; every function is pure, save that
 * text is decoded by the LC_CTYPE locale (see put()).
 */
#include <langinfo.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wchar.h>

#include "layout.h"

/* ---------------------------------------------------------------- grid */

int insp_grid_resize(insp_grid *g, int w, int h)
{
    if (w < 0)
        w = 0;
    if (h < 0)
        h = 0;
    size_t n = (size_t)w * (size_t)h;
    insp_cell *c = realloc(g->cells, n ? n * sizeof *c : 1);
    if (!c)
        return -1;
    g->cells = c;
    g->w = w;
    g->h = h;
    for (size_t i = 0; i < n; i++)
        c[i] = (insp_cell){' ', INSP_A_NORMAL};
    return 0;
}

void insp_grid_free(insp_grid *g)
{
    free(g->cells);
    g->cells = NULL;
    g->w = g->h = 0;
}

const insp_cell *insp_grid_at(const insp_grid *g, int x, int y)
{
    if (x < 0 || y < 0 || x >= g->w || y >= g->h)
        return NULL;
    return &g->cells[(size_t)y * (size_t)g->w + (size_t)x];
}

/* The UTF-8 encoding of code point cp (< 0x110000) into out; its length. */
static size_t utf8_put(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

void insp_grid_text(const insp_grid *g, int x, int y, int w, char *buf,
                    size_t cap)
{
    size_t n = 0;
    if (cap == 0)
        return;
    for (int i = x < 0 ? 0 : x; y >= 0 && y < g->h && i < x + w && i < g->w;
         i++) {
        uint32_t cp = g->cells[(size_t)y * (size_t)g->w + (size_t)i].ch;
        char enc[4];
        size_t len = cp == INSP_CELL_CONT ? 0 : utf8_put(cp, enc);
        if (n + len + 1 > cap)
            break;
        memcpy(buf + n, enc, len);
        n += len;
    }
    while (n > 0 && buf[n - 1] == ' ')
        n--;
    buf[n] = '\0';
}

void insp_grid_row(const insp_grid *g, int y, char *buf, size_t cap)
{
    insp_grid_text(g, 0, y, g->w, buf, cap);
}

/*
 * The next character of text as cells: *cp and *width (1 or 2) of a
 * printable character the locale decodes, else '?' of width 1 for the
 * byte that does not start one (a control character, a byte of invalid
 * or truncated UTF-8, a character of no or unknown width, or any byte
 * above 0x7f in a locale whose codeset is not UTF-8, such as C).
 * Returns the bytes it took (>= 1).
 */
static size_t next_char(const char *text, uint32_t *cp, int *width)
{
    unsigned char b = (unsigned char)*text;
    *width = 1;
    if (b < 0x80) {
        *cp = b >= 0x20 && b < 0x7f ? b : '?';
        return 1;
    }
    if (strcmp(nl_langinfo(CODESET), "UTF-8") != 0) {
        *cp = '?';
        return 1;
    }
    mbstate_t st;
    memset(&st, 0, sizeof st);
    wchar_t wc;
    size_t n = mbrtowc(&wc, text, strnlen(text, MB_LEN_MAX), &st);
    int w = n == 0 || n > MB_LEN_MAX ? -1 : wcwidth(wc);
    if (w < 1 || w > 2 || (uint32_t)wc >= 0x110000) {
        *cp = '?';
        return 1;
    }
    *cp = (uint32_t)wc;
    *width = w;
    return n;
}

/* The cells text takes, as put() writes it. */
static int text_cells(const char *text)
{
    int cells = 0;
    while (*text) {
        uint32_t cp;
        int w;
        text += next_char(text, &cp, &w);
        cells += w;
    }
    return cells;
}

/* Writes text at (x, y), at most maxw cells, clipped to the grid; returns
 * the cells it took.  A character of width 2 takes its cell and the next
 * (INSP_CELL_CONT); one that would not fit whole ends the text there. */
static int put(insp_grid *g, int x, int y, int maxw, insp_attr a,
               const char *text)
{
    int n = 0;
    if (y < 0 || y >= g->h)
        return 0;
    while (*text && n < maxw && x + n < g->w) {
        uint32_t cp;
        int w;
        text += next_char(text, &cp, &w);
        if (n + w > maxw || x + n + w > g->w)
            break;
        for (int k = 0; k < w; k++, n++) {
            if (x + n < 0)
                continue;
            insp_cell *c =
                &g->cells[(size_t)y * (size_t)g->w + (size_t)(x + n)];
            c->ch = k == 0 ? cp : INSP_CELL_CONT;
            c->attr = (unsigned char)a;
        }
    }
    return n;
}

static int putf(insp_grid *g, int x, int y, int maxw, insp_attr a,
                const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int putf(insp_grid *g, int x, int y, int maxw, insp_attr a,
                const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return put(g, x, y, maxw, a, buf);
}

/* Paints w cells of row y from x with attribute a, keeping the text. */
static void paint(insp_grid *g, int x, int y, int w, insp_attr a)
{
    for (int i = 0; i < w; i++) {
        if (y < 0 || y >= g->h || x + i < 0 || x + i >= g->w)
            continue;
        g->cells[(size_t)y * (size_t)g->w + (size_t)(x + i)].attr =
            (unsigned char)a;
    }
}

static void blank(insp_grid *g, int x, int y, int w, int h, insp_attr a)
{
    for (int r = y; r < y + h; r++)
        for (int i = x; i < x + w; i++)
            if (r >= 0 && r < g->h && i >= 0 && i < g->w)
                g->cells[(size_t)r * (size_t)g->w + (size_t)i] =
                    (insp_cell){' ', (unsigned char)a};
}

/* ------------------------------------------------------------- formats */

void insp_fmt_count(uint64_t n, char *buf, size_t cap)
{
    if (n < 100000)
        snprintf(buf, cap, "%llu", (unsigned long long)n);
    else if (n < 10000000)
        snprintf(buf, cap, "%lluk", (unsigned long long)(n / 1000));
    else if (n < 10000000000ull)
        snprintf(buf, cap, "%lluM", (unsigned long long)(n / 1000000));
    else
        snprintf(buf, cap, "%lluG", (unsigned long long)(n / 1000000000));
}

void insp_fmt_bytes(uint64_t n, char *buf, size_t cap)
{
    static const char units[] = "KMGT";
    if (n < 1024) {
        snprintf(buf, cap, "%lluB", (unsigned long long)n);
        return;
    }
    double v = (double)n / 1024;
    size_t u = 0;
    while (v >= 1024 && u + 1 < sizeof units - 1) {
        v /= 1024;
        u++;
    }
    if (v < 10)
        snprintf(buf, cap, "%.1f%c", v, units[u]);
    else
        snprintf(buf, cap, "%.0f%c", v, units[u]);
}

void insp_fmt_ms(int64_t ms, char *buf, size_t cap)
{
    if (ms < 0)
        ms = 0;
    if (ms < 1000)
        snprintf(buf, cap, "%lldms", (long long)ms);
    else if (ms < 10000)
        snprintf(buf, cap, "%.1fs", (double)ms / 1000);
    else if (ms < 120000)
        snprintf(buf, cap, "%llds", (long long)(ms / 1000));
    else if (ms < 7200000)
        snprintf(buf, cap, "%lldm", (long long)(ms / 60000));
    else if (ms < 172800000)
        snprintf(buf, cap, "%lldh", (long long)(ms / 3600000));
    else
        snprintf(buf, cap, "%lldd", (long long)(ms / 86400000));
}

void insp_fmt_us(uint64_t us, char *buf, size_t cap)
{
    if (us < 1000)
        snprintf(buf, cap, "%lluus", (unsigned long long)us);
    else if (us < 10000)
        snprintf(buf, cap, "%.1fms", (double)us / 1000);
    else if (us < 1000000)
        snprintf(buf, cap, "%llums", (unsigned long long)(us / 1000));
    else
        snprintf(buf, cap, "%.1fs", (double)us / 1e6);
}

/* ------------------------------------------------------------ geometry */

static bool full_layout(int w, int h)
{
    return w >= INSP_FULL_W && h >= INSP_FULL_H;
}

insp_rect insp_layout_pane(int w, int h, insp_pane focus, insp_pane p)
{
    insp_rect r = {0, 0, 0, 0};
    if (w <= 0 || h <= 0 || (unsigned)p >= INSP_NPANES)
        return r;
    int top = h >= 3 ? 1 : 0;               /* the title line */
    int avail = h - top - (h >= 2 ? 1 : 0); /* minus the status line */
    if (!full_layout(w, h)) {
        if (p == focus)
            r = (insp_rect){0, top, w, avail};
        return r;
    }
    /* 22 rows at 24 lines: Tags|Garbage 7, Entries 7, Locks 4, Processes
     * 4; more lines go mostly to Entries. */
    int extra = avail - 22;
    int hb = 7 + extra / 4, hl = 4 + extra / 8, hp = 4 + extra / 8;
    int he = avail - hb - hl - hp;
    int half = w / 2;
    switch (p) {
    case INSP_PANE_TAGS:
        return (insp_rect){0, top, half, hb};
    case INSP_PANE_GARBAGE:
        return (insp_rect){half + 1, top, w - half - 1, hb};
    case INSP_PANE_ENTRIES:
        return (insp_rect){0, top + hb, w, he};
    case INSP_PANE_LOCKS:
        return (insp_rect){0, top + hb + he, w, hl};
    case INSP_PANE_PROCS:
        return (insp_rect){0, top + hb + he + hl, w, hp};
    default:
        return r;
    }
}

/* The garbage pane's first row is the total over all functions. */
static int fixed_rows(insp_pane p)
{
    return p == INSP_PANE_GARBAGE ? 1 : 0;
}

size_t insp_layout_rows(int w, int h, insp_pane focus, insp_pane p)
{
    insp_rect r = insp_layout_pane(w, h, focus, p);
    int rows = r.h - 1 - fixed_rows(p);
    return rows > 0 ? (size_t)rows : 0;
}

size_t insp_layout_detail_rows(int h)
{
    int top = h >= 3 ? 1 : 0;
    int rows = h - top - (h >= 2 ? 1 : 0);
    return rows > 0 ? (size_t)rows : 0;
}

/* -------------------------------------------------------------- tables */

#define MAX_COLS 12
#define CELL_MAX 160

typedef struct col {
    const char *title;
    int width; /* minimum */
    int flex;  /* share of the spare width, 0 fixed */
    int prio;  /* dropped first when the highest */
    bool right;
    int sort; /* the sort order this column shows, -1 none */
} col;

static const col tag_cols[] = {
    {"Tags", 8, 2, 0, false, 0},   {"VERSION", 8, 0, 3, false, -1},
    {"ENTRIES", 7, 0, 1, true, 2}, {"STALE", 5, 0, 0, true, 1},
    {"CHANGED", 7, 0, 2, true, 3},
};
static const col entry_cols[] = {
    {"Entries", 9, 1, 0, false, 2}, {"KEY", 8, 2, 3, false, 1},
    {"STATE", 7, 0, 0, false, 0},   {"SIZE", 6, 0, 4, true, 3},
    {"TTL", 6, 0, 5, true, 4},      {"TAGS", 6, 2, 6, false, -1},
    {"MOVED", 8, 1, 2, false, -1},
};
static const col garbage_cols[] = {
    {"Garbage", 8, 1, 0, false, 2}, {"ALL", 5, 0, 2, true, -1},
    {"STALE", 5, 0, 0, true, 1},    {"BYTES", 6, 0, 3, true, -1},
    {"WASTED", 6, 0, 1, true, 0},
};
static const col lock_cols[] = {
    {"Locks", 10, 3, 0, false, 1},
    {"OWNER", 10, 1, 1, false, -1},
    {"AGE", 6, 0, 2, true, 0},
    {"TTL", 6, 0, 3, true, -1},
};
static const col proc_cols[] = {
    {"Processes", 10, 1, 0, false, 3}, {"HITS", 6, 0, 1, true, 1},
    {"MISS", 6, 0, 1, true, 2},        {"COMP", 5, 0, 3, true, -1},
    {"COAL", 5, 0, 3, true, -1},       {"ACQ", 5, 0, 4, true, -1},
    {"CONT", 5, 0, 2, true, 0},        {"P50", 6, 0, 4, true, -1},
    {"P99", 6, 0, 2, true, -1},        {"TMO", 4, 0, 5, true, -1},
    {"ERR", 4, 0, 5, true, -1},
};

static const struct {
    const col *cols;
    size_t n;
} tables[INSP_NPANES] = {
    [INSP_PANE_TAGS] = {tag_cols, sizeof tag_cols / sizeof *tag_cols},
    [INSP_PANE_ENTRIES] = {entry_cols, sizeof entry_cols / sizeof *entry_cols},
    [INSP_PANE_GARBAGE] = {garbage_cols,
                           sizeof garbage_cols / sizeof *garbage_cols},
    [INSP_PANE_LOCKS] = {lock_cols, sizeof lock_cols / sizeof *lock_cols},
    [INSP_PANE_PROCS] = {proc_cols, sizeof proc_cols / sizeof *proc_cols},
};

/*
 * Fits the columns to width: drops the highest-priority-number columns
 * until the minimum widths and one blank between columns fit, then shares
 * the spare width among the flexible ones.  w[i] is 0 for a dropped column.
 */
static void fit(const col *cols, size_t n, int width, int *w)
{
    bool keep[MAX_COLS];
    int total = -1, kept = 0;
    for (size_t i = 0; i < n; i++) {
        keep[i] = true;
        total += cols[i].width + 1;
        kept++;
    }
    while (total > width && kept > 1) {
        size_t worst = 0;
        int wp = -1;
        for (size_t i = 0; i < n; i++)
            if (keep[i] && cols[i].prio >= wp) {
                wp = cols[i].prio;
                worst = i;
            }
        keep[worst] = false;
        total -= cols[worst].width + 1;
        kept--;
    }
    int spare = width - total, flex = 0;
    for (size_t i = 0; i < n; i++) {
        w[i] = keep[i] ? cols[i].width : 0;
        if (keep[i])
            flex += cols[i].flex;
    }
    if (spare < 0) { /* one column left, wider than the screen */
        for (size_t i = 0; i < n; i++)
            if (keep[i])
                w[i] = width > 0 ? width : 0;
        return;
    }
    int given = 0;
    size_t last = n;
    for (size_t i = 0; i < n && flex > 0; i++) {
        if (!keep[i] || cols[i].flex == 0)
            continue;
        int add = spare * cols[i].flex / flex;
        w[i] += add;
        given += add;
        last = i;
    }
    if (last < n)
        w[last] += spare - given;
}

/* The texts of one row of a pane, and the attribute of its state cell. */
typedef struct row_text {
    char cell[MAX_COLS][CELL_MAX];
    insp_attr attr[MAX_COLS];
} row_text;

static void ago(int64_t now, int64_t then, char *buf, size_t cap)
{
    if (then <= 0) {
        snprintf(buf, cap, "-");
        return;
    }
    insp_fmt_ms(now - then, buf, cap);
}

static void ttl_text(int64_t ttl, char *buf, size_t cap)
{
    if (ttl == INSP_NO_TTL)
        snprintf(buf, cap, "-");
    else
        insp_fmt_ms(ttl, buf, cap);
}

static insp_attr state_attr(insp_state s)
{
    switch (s) {
    case INSP_FRESH:
        return INSP_A_FRESH;
    case INSP_STALE:
        return INSP_A_STALE;
    case INSP_EXPIRED:
        return INSP_A_EXPIRED;
    default:
        return INSP_A_BAD;
    }
}

/* How long a tag change stays highlighted. */
#define CHANGED_HIGHLIGHT_MS 3000

static void tag_row(const insp_model *m, size_t i, int64_t now, row_text *t)
{
    const insp_tag *g = &m->tags[i];
    snprintf(t->cell[0], CELL_MAX, "%s", g->name);
    if (g->gone) {
        snprintf(t->cell[1], CELL_MAX, "(gone)");
        t->attr[1] = INSP_A_EXPIRED;
    } else {
        snprintf(t->cell[1], CELL_MAX, "%.8s", g->version);
    }
    snprintf(t->cell[2], CELL_MAX, "%zu", g->entries);
    snprintf(t->cell[3], CELL_MAX, "%zu", g->stale);
    if (g->stale)
        t->attr[3] = INSP_A_STALE;
    ago(now, g->changed_ms, t->cell[4], CELL_MAX);
    if (g->changed_ms > 0 && now - g->changed_ms < CHANGED_HIGHLIGHT_MS)
        t->attr[4] = t->attr[0] = INSP_A_CHANGED;
}

static void tags_text(const insp_entry *e, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t j = 0; j < e->ntags && n < cap; j++) {
        int k = snprintf(buf + n, cap - n, "%s%s", j ? "," : "",
                         e->tags[j].name ? e->tags[j].name : "?");
        if (k < 0)
            break;
        n += (size_t)k;
    }
}

static void entry_row(const insp_model *m, size_t i, int64_t now, row_text *t)
{
    const insp_entry *e = &m->entries[i];
    snprintf(t->cell[0], CELL_MAX, "%s", *e->function ? e->function : "-");
    snprintf(t->cell[1], CELL_MAX, "%s", *e->id ? e->id : e->key);
    snprintf(t->cell[2], CELL_MAX, "%s", insp_state_name(e->state));
    t->attr[2] = state_attr(e->state);
    insp_fmt_bytes(e->size, t->cell[3], CELL_MAX);
    ttl_text(e->ttl_left_ms, t->cell[4], CELL_MAX);
    tags_text(e, t->cell[5], CELL_MAX);
    snprintf(t->cell[6], CELL_MAX, "%s", e->moved ? e->moved : "");
    if (e->moved)
        t->attr[6] = INSP_A_STALE;
    (void)now;
}

static void garbage_cells(const insp_garbage *g, const char *name, row_text *t)
{
    snprintf(t->cell[0], CELL_MAX, "%s", name);
    snprintf(t->cell[1], CELL_MAX, "%zu", g->entries);
    snprintf(t->cell[2], CELL_MAX, "%zu", g->stale);
    insp_fmt_bytes(g->bytes, t->cell[3], CELL_MAX);
    insp_fmt_bytes(g->stale_bytes, t->cell[4], CELL_MAX);
    if (g->stale)
        t->attr[2] = t->attr[4] = INSP_A_STALE;
}

static void garbage_row(const insp_model *m, size_t i, int64_t now, row_text *t)
{
    const insp_garbage *g = &m->garbage[i];
    garbage_cells(g, *g->function ? g->function : "(hermes_set)", t);
    (void)now;
}

static void lock_row(const insp_model *m, size_t i, int64_t now, row_text *t)
{
    const insp_lock *l = &m->locks[i];
    snprintf(t->cell[0], CELL_MAX, "%s", l->entry);
    snprintf(t->cell[1], CELL_MAX, "%s:%ld", l->host, l->pid);
    if (l->age_ms < 0)
        snprintf(t->cell[2], CELL_MAX, "?");
    else
        insp_fmt_ms(l->age_ms, t->cell[2], CELL_MAX);
    ttl_text(l->ttl_left_ms, t->cell[3], CELL_MAX);
    (void)now;
}

static void proc_row(const insp_model *m, size_t i, int64_t now, row_text *t)
{
    const insp_proc *p = &m->procs[i];
    snprintf(t->cell[0], CELL_MAX, "%s:%ld", p->host, p->pid);
    const uint64_t v[] = {p->hits,      p->misses,        p->computations,
                          p->coalesced, p->lock_acquired, p->lock_contended};
    for (size_t k = 0; k < 6; k++)
        insp_fmt_count(v[k], t->cell[1 + k], CELL_MAX);
    uint64_t p50 = insp_hist_percentile(p->wait_hist, INSP_HIST_BUCKETS, 50);
    uint64_t p99 = insp_hist_percentile(p->wait_hist, INSP_HIST_BUCKETS, 99);
    if (p50)
        insp_fmt_us(p50, t->cell[7], CELL_MAX);
    else
        snprintf(t->cell[7], CELL_MAX, "-");
    if (p99)
        insp_fmt_us(p99, t->cell[8], CELL_MAX);
    else
        snprintf(t->cell[8], CELL_MAX, "-");
    insp_fmt_count(p->lock_timeouts, t->cell[9], CELL_MAX);
    insp_fmt_count(p->backend_errors, t->cell[10], CELL_MAX);
    if (p->lock_contended)
        t->attr[6] = INSP_A_STALE;
    if (p->lock_timeouts)
        t->attr[9] = INSP_A_BAD;
    if (p->backend_errors)
        t->attr[10] = INSP_A_BAD;
    (void)now;
}

typedef void (*row_fn)(const insp_model *m, size_t i, int64_t now, row_text *t);
static const row_fn row_fns[INSP_NPANES] = {
    tag_row, entry_row, garbage_row, lock_row, proc_row,
};

static void draw_cells(insp_grid *g, insp_rect r, int y, const col *cols,
                       size_t n, const int *w, const row_text *t,
                       insp_attr base)
{
    int x = r.x;
    paint(g, r.x, y, r.w, base);
    for (size_t i = 0; i < n; i++) {
        if (w[i] == 0)
            continue;
        const char *s = t->cell[i];
        int len = text_cells(s);
        int off = cols[i].right && len < w[i] ? w[i] - len : 0;
        insp_attr a = base == INSP_A_NORMAL && t->attr[i] ? t->attr[i] : base;
        put(g, x + off, y, w[i] - off, a, s);
        x += w[i] + 1;
    }
}

/* Draws one pane: the header line, then the visible rows of its view. */
static void draw_pane(const insp_model *m, const insp_ui *ui, int64_t now,
                      insp_pane p, insp_rect r, insp_grid *g)
{
    const col *cols = tables[p].cols;
    size_t n = tables[p].n;
    int w[MAX_COLS];
    bool focus = ui->pane == p;
    if (r.h <= 0 || r.w <= 0)
        return;
    fit(cols, n, r.w, w);

    size_t len = insp_pane_len(m, p), shown;
    const size_t *idx =
        insp_view_cached(m, p, ui->filter, ui->cur[p].sort, &shown);

    /* Header: the pane's name with its row count, then column names. */
    row_text *t = calloc(1, sizeof *t);
    if (!t)
        return;
    for (size_t i = 0; i < n; i++)
        snprintf(t->cell[i], CELL_MAX, "%s", cols[i].title);
    char nall[16], nshown[16];
    insp_fmt_count(len, nall, sizeof nall);
    insp_fmt_count(shown, nshown, sizeof nshown);
    if (ui->filter[0])
        snprintf(t->cell[0], CELL_MAX, "%s %s/%s", cols[0].title, nshown, nall);
    else
        snprintf(t->cell[0], CELL_MAX, "%s %s", cols[0].title, nall);
    insp_attr head = focus ? INSP_A_FOCUS : INSP_A_HEADER;
    draw_cells(g, r, r.y, cols, n, w, t, head);
    for (size_t i = 0, x = (size_t)r.x; i < n; i++) { /* the sort column */
        if (w[i] == 0)
            continue;
        if (cols[i].sort >= 0 && (size_t)cols[i].sort == ui->cur[p].sort)
            paint(g, (int)x, r.y, w[i], INSP_A_SORTED);
        x += (size_t)w[i] + 1;
    }

    int y = r.y + 1, end = r.y + r.h;
    if (p == INSP_PANE_GARBAGE && y < end) {
        memset(t, 0, sizeof *t);
        garbage_cells(&m->total, "total", t);
        draw_cells(g, r, y++, cols, n, w, t, INSP_A_NORMAL);
    }
    if (shown == 0 && y < end)
        put(g, r.x + 1, y, r.w - 1, INSP_A_DIM,
            ui->filter[0] ? "(nothing matches the filter)" : "(none)");
    for (size_t k = ui->cur[p].top; k < shown && y < end; k++, y++) {
        memset(t, 0, sizeof *t);
        row_fns[p](m, idx[k], now, t);
        bool sel = k == ui->cur[p].sel;
        draw_cells(g, r, y, cols, n, w, t,
                   sel && focus ? INSP_A_SELECT : INSP_A_NORMAL);
    }
    free(t);
}

/* ----------------------------------------------------------- the lines */

static void title_line(const insp_model *m, const insp_ui *ui, int64_t now,
                       insp_grid *g)
{
    char stale[16], age[16], right[48];
    insp_fmt_bytes(m->total.stale_bytes, stale, sizeof stale);
    ago(now, m->taken_ms, age, sizeof age);
    blank(g, 0, 0, g->w, 1, INSP_A_TITLE);
    int x = putf(g, 0, 0, g->w, INSP_A_TITLE,
                 " hermes-inspector  %s:%s  %zu entries, %zu stale (%s)"
                 "  %zu locks",
                 m->backend ? m->backend : "?", m->prefix ? m->prefix : "?",
                 m->nentries, m->by_state[INSP_STALE], stale, m->nlocks);
    /* right-aligned when it fits: the scan and how old it is */
    if (ui->paused)
        snprintf(right, sizeof right, "PAUSED ");
    else if (!m->taken_ms)
        snprintf(right, sizeof right, "scanning ");
    else
        snprintf(right, sizeof right, "%llu keys %s ago ",
                 (unsigned long long)m->keys_scanned, age);
    int len = (int)strlen(right);
    if (x + 2 + len <= g->w)
        put(g, g->w - len, 0, len, INSP_A_TITLE, right);
}

/* What fits in 80 columns; ? lists the rest (F, s, p). */
static const char hints[] =
    " Tab pane  Enter detail  i invalidate  x delete  / filter  ? help"
    "  q quit";

static void status_line(const insp_model *m, const insp_ui *ui, insp_grid *g)
{
    int y = g->h - 1;
    blank(g, 0, y, g->w, 1, INSP_A_STATUS);
    if (ui->mode == INSP_MODE_FILTER) {
        putf(g, 0, y, g->w, INSP_A_STATUS,
             " Filter: %s_   Enter keeps it, Esc cancels", ui->filter);
        return;
    }
    int x = 0;
    if (ui->filter[0])
        x += putf(g, x, y, g->w, INSP_A_STATUS, " [/%s]", ui->filter);
    if (ui->status[0])
        putf(g, x, y, g->w - x, INSP_A_STATUS, " %s", ui->status);
    else if (m->error)
        putf(g, x, y, g->w - x, INSP_A_BAD, " refresh failed: %s", m->error);
    else if (ui->mode == INSP_MODE_DETAIL)
        put(g, x, y, g->w - x, INSP_A_STATUS,
            " Esc back  Up/Down scroll  i invalidate tag  x delete entry"
            "  q quit");
    else
        put(g, x, y, g->w - x, INSP_A_STATUS, hints);
}

/* A box centred on the screen holding lines; clipped to small screens. */
static void dialog(insp_grid *g, const char *const *lines, size_t n)
{
    int bw = 0;
    for (size_t i = 0; i < n; i++)
        if ((int)strlen(lines[i]) > bw)
            bw = (int)strlen(lines[i]);
    bw += 4;
    if (bw > g->w)
        bw = g->w;
    int bh = (int)n + 2;
    if (bh > g->h)
        bh = g->h;
    int x = (g->w - bw) / 2, y = (g->h - bh) / 2;
    blank(g, x, y, bw, bh, INSP_A_DIALOG);
    for (int i = 0; i < bw; i++) {
        put(g, x + i, y, 1, INSP_A_DIALOG, "-");
        put(g, x + i, y + bh - 1, 1, INSP_A_DIALOG, "-");
    }
    for (int r = 0; r < bh; r++) {
        put(g, x, y + r, 1, INSP_A_DIALOG, r == 0 || r == bh - 1 ? "+" : "|");
        put(g, x + bw - 1, y + r, 1, INSP_A_DIALOG,
            r == 0 || r == bh - 1 ? "+" : "|");
    }
    for (size_t i = 0; i < n && (int)i + 1 < bh - 1; i++)
        put(g, x + 2, y + 1 + (int)i, bw - 4, INSP_A_DIALOG, lines[i]);
}

static const char *const help_lines[] = {
    "hermes-inspector keys",
    "",
    "Up/Down PgUp/PgDn Home/End  move in the pane",
    "Tab, Shift-Tab, Left/Right  next / previous pane",
    "Enter    detail of the selected row (Esc back)",
    "i        invalidate the selected tag (Tags pane)",
    "x        delete the selected entry (Entries pane)",
    "F        flush every key under the prefix",
    "/        filter rows by substring (Esc clears)",
    "s        next sort order of the pane",
    "p        pause / resume the refresh",
    "?        this help",
    "q        quit",
    "",
    "States: fresh, stale (a tag moved), expired, foreign (another",
    "function, tag list or format), corrupt.  Any key closes this.",
};

static size_t tag_entries_count(const insp_model *m, const char *tag)
{
    for (size_t i = 0; i < m->ntags; i++)
        if (strcmp(m->tags[i].name, tag) == 0)
            return m->tags[i].entries;
    return 0;
}

static void confirm_dialog(const insp_model *m, const insp_ui *ui, insp_grid *g)
{
    char l0[INSP_ROWKEY_MAX + 64], l1[160];
    const char *lines[4] = {l0, l1, "", "y: do it    any other key: cancel"};
    switch (ui->pending.kind) {
    case INSP_ACT_INVALIDATE:
        snprintf(l0, sizeof l0, "Invalidate tag '%s'?", ui->pending.target);
        snprintf(l1, sizeof l1,
                 "Its %zu entries turn stale; each is recomputed on its "
                 "next call.",
                 tag_entries_count(m, ui->pending.target));
        break;
    case INSP_ACT_DELETE:
        snprintf(l0, sizeof l0, "Delete entry '%s'?", ui->pending.target);
        snprintf(l1, sizeof l1, "Its next call recomputes it.");
        break;
    case INSP_ACT_FLUSH:
        snprintf(l0, sizeof l0, "Flush every key under prefix '%s'?",
                 m->prefix ? m->prefix : "");
        snprintf(l1, sizeof l1,
                 "%zu entries, %zu tags and %zu locks are deleted.",
                 m->nentries, m->ntags, m->nlocks);
        break;
    default:
        return;
    }
    dialog(g, lines, 4);
}

/* ---------------------------------------------------------- detail view */

struct emit {
    void (*out)(void *arg, insp_attr a, const char *text);
    void *arg;
    size_t n;
};

static void emit(struct emit *e, insp_attr a, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void emit(struct emit *e, insp_attr a, const char *fmt, ...)
{
    char buf[INSP_ROWKEY_MAX + 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    e->out(e->arg, a, buf);
    e->n++;
}

static void wall(int64_t ms, char *buf, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || !gmtime_r(&t, &tm) ||
        strftime(buf, cap, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(buf, cap, "unknown");
}

static void entry_detail(const insp_model *m, const insp_entry *e, int64_t now,
                         struct emit *o)
{
    char b1[32], b2[32];
    emit(o, INSP_A_HEADER, "Entry %s", e->key);
    emit(o, INSP_A_NORMAL, "  function      %s",
         *e->function ? e->function : "(none: a hermes_set() record)");
    emit(o, INSP_A_NORMAL, "  arguments     %s", e->id);
    insp_fmt_bytes(e->size, b1, sizeof b1);
    emit(o, INSP_A_NORMAL, "  size          %llu bytes (%s)",
         (unsigned long long)e->size, b1);
    wall(e->created_ms, b1, sizeof b1);
    ago(now, e->created_ms, b2, sizeof b2);
    emit(o, INSP_A_NORMAL, "  created       %s (%s ago)", b1, b2);
    ttl_text(e->ttl_left_ms, b1, sizeof b1);
    emit(o, INSP_A_NORMAL, "  TTL left      %s",
         e->ttl_left_ms == INSP_NO_TTL ? "no expiry" : b1);
    insp_fmt_us(e->compute_us, b1, sizeof b1);
    emit(o, INSP_A_NORMAL, "  compute time  %s", b1);
    emit(o, state_attr(e->state), "  verdict       %s: %s",
         insp_state_name(e->state),
         e->reason ? e->reason : insp_state_text(e->state));
    if (e->state == INSP_STALE)
        emit(o, INSP_A_STALE, "  moved tag     %s",
             e->moved ? e->moved : "(unknown)");
    emit(o, INSP_A_NORMAL, "%s", "");
    emit(o, INSP_A_HEADER, "Tags: stored version -> current version (%zu)",
         e->ntags);
    for (size_t j = 0; j < e->ntags; j++) {
        const insp_tag_ref *r = &e->tags[j];
        char cur[24];
        if (r->present)
            snprintf(cur, sizeof cur, "%016llx",
                     (unsigned long long)r->current);
        else
            snprintf(cur, sizeof cur, "(gone)");
        bool moved = !r->present || r->current != r->stored;
        emit(o, moved ? INSP_A_STALE : INSP_A_NORMAL,
             "  %-16s %016llx -> %-16s %s", r->name ? r->name : "?",
             (unsigned long long)r->stored, cur, moved ? "MOVED" : "same");
    }
    (void)m;
}

static void tag_detail(const insp_model *m, const insp_tag *t, int64_t now,
                       struct emit *o)
{
    char b[32];
    emit(o, INSP_A_HEADER, "Tag %s", t->name);
    emit(o, t->gone ? INSP_A_EXPIRED : INSP_A_NORMAL, "  version       %s",
         t->gone ? "(gone: its key was deleted, entries carrying it are "
                   "stale)"
                 : t->version);
    emit(o, INSP_A_NORMAL, "  version id    %016llx  tag id %08x",
         (unsigned long long)t->version_id, t->id);
    ago(now, t->changed_ms, b, sizeof b);
    emit(o, INSP_A_NORMAL, "  changed       %s%s", b,
         t->changed_ms ? " ago" : " (not since the inspector started)");
    emit(o, INSP_A_NORMAL, "  entries       %zu, %zu stale", t->entries,
         t->stale);
    emit(o, INSP_A_NORMAL, "%s", "");
    emit(o, INSP_A_HEADER, "Entries carrying it");
    for (size_t i = 0; i < m->nentries; i++) {
        const insp_entry *e = &m->entries[i];
        for (size_t j = 0; j < e->ntags; j++)
            if (e->tags[j].name && strcmp(e->tags[j].name, t->name) == 0) {
                emit(o, state_attr(e->state), "  %-8s %s",
                     insp_state_name(e->state), e->key);
                break;
            }
    }
}

static void proc_detail(const insp_proc *p, struct emit *o)
{
    emit(o, INSP_A_HEADER, "Process %s:%ld", p->host, p->pid);
    const struct {
        const char *name;
        uint64_t v;
    } c[] = {
        {"hits", p->hits},
        {"misses", p->misses},
        {"computations", p->computations},
        {"coalesced followers", p->coalesced},
        {"lock acquisitions", p->lock_acquired},
        {"contended acquisitions", p->lock_contended},
        {"lock wait timeouts", p->lock_timeouts},
        {"backend errors", p->backend_errors},
    };
    for (size_t i = 0; i < sizeof c / sizeof *c; i++)
        emit(o, INSP_A_NORMAL, "  %-24s %llu", c[i].name,
             (unsigned long long)c[i].v);
    char p50[16], p90[16], p99[16];
    insp_fmt_us(insp_hist_percentile(p->wait_hist, INSP_HIST_BUCKETS, 50), p50,
                sizeof p50);
    insp_fmt_us(insp_hist_percentile(p->wait_hist, INSP_HIST_BUCKETS, 90), p90,
                sizeof p90);
    insp_fmt_us(insp_hist_percentile(p->wait_hist, INSP_HIST_BUCKETS, 99), p99,
                sizeof p99);
    emit(o, INSP_A_NORMAL, "  lock wait p50 <= %s  p90 <= %s  p99 <= %s", p50,
         p90, p99);
    uint64_t most = 0;
    for (size_t b = 0; b < INSP_HIST_BUCKETS; b++)
        if (p->wait_hist[b] > most)
            most = p->wait_hist[b];
    for (size_t b = 0; b < INSP_HIST_BUCKETS; b++) {
        if (!p->wait_hist[b])
            continue;
        char hi[16], bar[41];
        insp_fmt_us((uint64_t)1 << b, hi, sizeof hi);
        size_t len = (size_t)(p->wait_hist[b] * 40 / most);
        memset(bar, '#', len ? len : 1);
        bar[len ? len : 1] = '\0';
        emit(o, INSP_A_NORMAL, "    < %-7s %8llu %s", hi,
             (unsigned long long)p->wait_hist[b], bar);
    }
    emit(o, INSP_A_NORMAL, "%s", "");
    emit(o, INSP_A_HEADER, "Per function: hits, misses (%zu)", p->nfns);
    for (size_t i = 0; i < p->nfns; i++)
        emit(o, INSP_A_NORMAL, "  %-24s %10llu %10llu", p->fns[i].name,
             (unsigned long long)p->fns[i].hits,
             (unsigned long long)p->fns[i].misses);
}

static void garbage_detail(const insp_model *m, const insp_garbage *g,
                           struct emit *o)
{
    char b1[16], b2[16];
    insp_fmt_bytes(g->stale_bytes, b1, sizeof b1);
    insp_fmt_bytes(g->bytes, b2, sizeof b2);
    emit(o, INSP_A_HEADER, "Function %s",
         *g->function ? g->function : "(hermes_set records)");
    emit(o, INSP_A_NORMAL, "  %zu entries (%s), %zu stale (%s wasted)",
         g->entries, b2, g->stale, b1);
    emit(o, INSP_A_NORMAL, "%s", "");
    emit(o, INSP_A_HEADER, "Stale entries");
    for (size_t i = 0; i < m->nentries; i++) {
        const insp_entry *e = &m->entries[i];
        if (e->state == INSP_STALE && strcmp(e->function, g->function) == 0)
            emit(o, INSP_A_STALE, "  %s (moved: %s)", e->key,
                 e->moved ? e->moved : "?");
    }
}

static void lock_detail(const insp_lock *l, struct emit *o)
{
    char age[16], ttl[16];
    if (l->age_ms < 0)
        snprintf(age, sizeof age, "unknown");
    else
        insp_fmt_ms(l->age_ms, age, sizeof age);
    ttl_text(l->ttl_left_ms, ttl, sizeof ttl);
    emit(o, INSP_A_HEADER, "Lock on %s", l->entry);
    emit(o, INSP_A_NORMAL, "  owner    %s, pid %ld", l->host, l->pid);
    emit(o, INSP_A_NORMAL, "  held     %s", age);
    emit(o, INSP_A_NORMAL, "  TTL left %s", ttl);
}

/* The model row a detail view shows, found by its identity. */
static bool detail_row(const insp_model *m, const insp_ui *ui, size_t *row)
{
    char key[INSP_ROWKEY_MAX];
    size_t n = insp_pane_len(m, ui->detail_pane);
    for (size_t i = 0; i < n; i++) {
        insp_row_key(m, ui->detail_pane, i, key, sizeof key);
        if (strcmp(key, ui->detail_key) == 0) {
            *row = i;
            return true;
        }
    }
    return false;
}

size_t insp_detail_lines(const insp_model *m, const insp_ui *ui, int64_t now_ms,
                         void (*out)(void *arg, insp_attr a, const char *text),
                         void *arg)
{
    struct emit o = {out, arg, 0};
    size_t i;
    if (!detail_row(m, ui, &i))
        return 0;
    switch (ui->detail_pane) {
    case INSP_PANE_TAGS:
        tag_detail(m, &m->tags[i], now_ms, &o);
        break;
    case INSP_PANE_ENTRIES:
        entry_detail(m, &m->entries[i], now_ms, &o);
        break;
    case INSP_PANE_GARBAGE:
        garbage_detail(m, &m->garbage[i], &o);
        break;
    case INSP_PANE_LOCKS:
        lock_detail(&m->locks[i], &o);
        break;
    case INSP_PANE_PROCS:
        proc_detail(&m->procs[i], &o);
        break;
    default:
        break;
    }
    return o.n;
}

struct detail_draw {
    insp_grid *g;
    size_t skip; /* lines scrolled away */
    int y, end;
};

static void detail_out(void *arg, insp_attr a, const char *text)
{
    struct detail_draw *d = arg;
    if (d->skip > 0) {
        d->skip--;
        return;
    }
    if (d->y < d->end)
        put(d->g, 0, d->y++, d->g->w, a, text);
}

static void draw_detail(const insp_model *m, const insp_ui *ui, int64_t now,
                        insp_grid *g)
{
    int top = g->h >= 3 ? 1 : 0;
    struct detail_draw d = {g, ui->detail_top, top,
                            top + (int)insp_layout_detail_rows(g->h)};
    if (insp_detail_lines(m, ui, now, detail_out, &d) == 0)
        put(g, 1, top, g->w - 1, INSP_A_DIM,
            "(this row is gone since the last refresh)");
}

void insp_render_table(const insp_model *m, const insp_ui *ui, insp_pane p,
                       int width, int64_t now_ms,
                       void (*out)(void *arg, const char *line), void *arg)
{
    insp_grid g = {0, 0, NULL};
    insp_ui all = *ui;
    int h = (int)insp_pane_len(m, p) + 2 + fixed_rows(p);
    all.pane = (insp_pane)((p + 1) % INSP_NPANES); /* nothing highlighted */
    all.cur[p].top = 0;
    if (width < 1 || insp_grid_resize(&g, width, h) != 0)
        return;
    draw_pane(m, &all, now_ms, p, (insp_rect){0, 0, width, h}, &g);
    size_t cap = (size_t)width * 4 + 1; /* UTF-8: up to 4 bytes a cell */
    char *line = malloc(cap);
    for (int y = 0; line && y < h; y++) {
        insp_grid_row(&g, y, line, cap);
        if (*line)
            out(arg, line);
    }
    free(line);
    insp_grid_free(&g);
}

/* --------------------------------------------------------------- render */

void insp_render(const insp_model *m, const insp_ui *ui, int64_t now_ms,
                 insp_grid *g)
{
    blank(g, 0, 0, g->w, g->h, INSP_A_NORMAL);
    if (g->w <= 0 || g->h <= 0)
        return;
    if (g->h >= 3)
        title_line(m, ui, now_ms, g);
    if (ui->mode == INSP_MODE_DETAIL) {
        draw_detail(m, ui, now_ms, g);
    } else {
        for (int p = 0; p < INSP_NPANES; p++) {
            insp_rect r = insp_layout_pane(g->w, g->h, ui->pane, p);
            draw_pane(m, ui, now_ms, p, r, g);
        }
        if (full_layout(g->w, g->h)) { /* the Tags | Garbage separator */
            insp_rect r =
                insp_layout_pane(g->w, g->h, ui->pane, INSP_PANE_TAGS);
            for (int y = r.y; y < r.y + r.h; y++)
                put(g, r.w, y, 1, INSP_A_DIM, "|");
        }
    }
    if (g->h >= 2)
        status_line(m, ui, g);
    if (ui->mode == INSP_MODE_HELP)
        dialog(g, help_lines, sizeof help_lines / sizeof *help_lines);
    else if (ui->mode == INSP_MODE_CONFIRM)
        confirm_dialog(m, ui, g);
}
