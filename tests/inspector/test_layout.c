/*
 * The inspector's screen without a terminal: the fixture model rendered to
 * a grid at 80x24 and at tiny sizes, read back as text.  The tests look
 * for what a user must see (each pane, each row's fields, the state of an
 * entry and the tag that moved, the garbage, the owner of a lock, a
 * process's counters, the selected row, dialogs), found by content and
 * compared field by field, not against a dump of the whole screen.
 */
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fixture.h"
#include "keys.h"
#include "layout.h"

typedef struct screen {
    insp_model m;
    insp_ui ui;
    insp_grid g;
} screen;

static void draw(screen *s)
{
    assert_int_equal(insp_grid_resize(&s->g, s->ui.w, s->ui.h), 0);
    insp_ui_sync(&s->ui, &s->m);
    insp_render(&s->m, &s->ui, FIX_NOW_MS, &s->g);
}

static screen *open_screen(int w, int h)
{
    screen *s = calloc(1, sizeof *s);
    assert_non_null(s);
    fixture_model(&s->m);
    insp_ui_init(&s->ui, w, h);
    draw(s);
    return s;
}

/* The detail view of the row of pane p whose identity is key. */
static void show_detail(screen *s, insp_pane p, const char *key)
{
    s->ui.mode = INSP_MODE_DETAIL;
    s->ui.detail_pane = p;
    snprintf(s->ui.detail_key, sizeof s->ui.detail_key, "%s", key);
    draw(s);
}

static void close_screen(screen *s)
{
    insp_grid_free(&s->g);
    insp_model_free(&s->m);
    free(s);
}

static void row(const screen *s, int y, char *buf, size_t cap)
{
    insp_grid_row(&s->g, y, buf, cap);
}

/* The text of the cells of rect r on row y. */
static void rect_row(const screen *s, insp_rect r, int y, char *buf, size_t cap)
{
    insp_grid_text(&s->g, r.x, y, r.w, buf, cap);
}

/*
 * Finds the row of pane p whose first field is first and splits it into
 * whitespace-separated fields; returns the screen line, or -1.
 */
static int find_fields(const screen *s, insp_pane p, const char *first,
                       char fields[][64], size_t *nf)
{
    insp_rect r = insp_layout_pane(s->g.w, s->g.h, s->ui.pane, p);
    for (int y = r.y; y < r.y + r.h; y++) {
        char line[512], *save = NULL;
        rect_row(s, r, y, line, sizeof line);
        *nf = 0;
        for (char *t = strtok_r(line, " ", &save); t && *nf < 16;
             t = strtok_r(NULL, " ", &save))
            snprintf(fields[(*nf)++], 64, "%s", t);
        if (*nf && strcmp(fields[0], first) == 0)
            return y;
    }
    return -1;
}

static bool screen_has(const screen *s, const char *text)
{
    for (int y = 0; y < s->g.h; y++) {
        char line[512];
        row(s, y, line, sizeof line);
        if (strstr(line, text))
            return true;
    }
    return false;
}

static insp_attr attr_at(const screen *s, int x, int y)
{
    const insp_cell *c = insp_grid_at(&s->g, x, y);
    assert_non_null(c);
    return (insp_attr)c->attr;
}

/* The x of text on line y, or -1. */
static int col_of(const screen *s, int y, const char *text)
{
    char line[512];
    row(s, y, line, sizeof line);
    const char *p = strstr(line, text);
    return p ? (int)(p - line) : -1;
}

static void at_80x24_every_pane_is_shown_with_its_row_count(void **state)
{
    screen *s = open_screen(80, 24);
    static const char *const heads[] = {"Tags 3", "Entries 6", "Garbage 4",
                                        "Locks 1", "Processes 2"};
    for (int p = 0; p < INSP_NPANES; p++) {
        insp_rect r = insp_layout_pane(80, 24, s->ui.pane, p);
        assert_true(r.h >= 2); /* a header and at least one row */
        char line[256];
        rect_row(s, r, r.y, line, sizeof line);
        assert_non_null(strstr(line, heads[p]));
        assert_true(r.y >= 1 && r.y + r.h <= 23); /* between title, status */
    }
    close_screen(s);
}

static void the_title_names_backend_prefix_and_stale_count(void **state)
{
    screen *s = open_screen(80, 24);
    char line[256];
    row(s, 0, line, sizeof line);
    assert_non_null(strstr(line, "hermes-inspector"));
    assert_non_null(strstr(line, "redis:cache"));
    assert_non_null(strstr(line, "6 entries"));
    assert_non_null(strstr(line, "2 stale (500B)"));
    assert_non_null(strstr(line, "1 locks"));
    close_screen(s);
}

static void tags_show_version_entries_stale_and_when_they_changed(void **state)
{
    screen *s = open_screen(80, 24);
    char f[16][64];
    size_t n;
    assert_true(find_fields(s, INSP_PANE_TAGS, "users", f, &n) > 0);
    assert_int_equal(n, 5);
    assert_string_equal(f[1], "Vusers00"); /* the version, shortened */
    assert_string_equal(f[2], "3");        /* entries */
    assert_string_equal(f[3], "2");        /* stale */
    assert_string_equal(f[4], "-");        /* no change seen yet */
    assert_true(find_fields(s, INSP_PANE_TAGS, "products", f, &n) > 0);
    assert_string_equal(f[2], "2");
    assert_string_equal(f[3], "0");
    close_screen(s);
}

/* The screen with tag 0 named name, in the LC_CTYPE locale loc. */
static screen *named_tag_screen(const char *loc, const char *name)
{
    if (!setlocale(LC_CTYPE, loc))
        fail_msg("locale %s is not available", loc);
    screen *s = calloc(1, sizeof *s);
    assert_non_null(s);
    fixture_model(&s->m);
    free(s->m.tags[0].name);
    s->m.tags[0].name = strdup(name);
    assert_non_null(s->m.tags[0].name);
    insp_ui_init(&s->ui, 80, 24);
    draw(s);
    return s;
}

/* The x of the first cell of pane p's row y after its first field. */
static void expect_version_column(const screen *s, int y, int x)
{
    insp_rect r = insp_layout_pane(s->g.w, s->g.h, s->ui.pane, INSP_PANE_TAGS);
    int col = r.x;
    while (col < r.x + r.w && insp_grid_at(&s->g, col, y)->ch != 'V')
        col++;
    assert_int_equal(col, x);
}

static void utf8_names_take_one_cell_a_character_in_a_utf8_locale(void **state)
{
    /* café 日本: 4 + 1 + 2 x 2 cells, 11 bytes */
    screen *s =
        named_tag_screen("C.UTF-8", "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac");
    char f[16][64];
    size_t n;
    int y = find_fields(s, INSP_PANE_TAGS, "caf\xc3\xa9", f, &n);
    assert_true(y > 0);
    assert_string_equal(f[1], "\xe6\x97\xa5\xe6\x9c\xac");
    assert_string_equal(f[2], "Vusers00");
    int x = col_of(s, y, "caf"); /* bytes before it are ASCII */
    assert_int_equal(insp_grid_at(&s->g, x + 3, y)->ch, 0xe9);
    assert_int_equal(insp_grid_at(&s->g, x + 5, y)->ch, 0x65e5);
    assert_int_equal(insp_grid_at(&s->g, x + 6, y)->ch, INSP_CELL_CONT);
    assert_int_equal(insp_grid_at(&s->g, x + 7, y)->ch, 0x672c);
    assert_int_equal(insp_grid_at(&s->g, x + 8, y)->ch, INSP_CELL_CONT);
    /* the columns after it stay where an ASCII name leaves them */
    int yf = find_fields(s, INSP_PANE_TAGS, "feed", f, &n);
    assert_true(yf > 0);
    int xv = 0;
    while (insp_grid_at(&s->g, xv, yf)->ch != 'V')
        xv++;
    expect_version_column(s, y, xv);
    close_screen(s);

    /* control characters, invalid UTF-8 and a lone continuation byte:
     * one '?' a byte */
    s = named_tag_screen("C.UTF-8", "a\x01\xff\x80\xe6\x97z");
    y = find_fields(s, INSP_PANE_TAGS, "a?????z", f, &n);
    assert_true(y > 0);
    close_screen(s);
    setlocale(LC_CTYPE, "C");
}

static void beyond_ascii_is_a_question_mark_a_byte_in_the_c_locale(void **state)
{
    screen *s = named_tag_screen("C", "caf\xc3\xa9");
    char f[16][64];
    size_t n;
    assert_true(find_fields(s, INSP_PANE_TAGS, "caf??", f, &n) > 0);
    assert_string_equal(f[1], "Vusers00");
    close_screen(s);
}

static void a_changed_or_gone_tag_says_so(void **state)
{
    screen *s = open_screen(80, 24);
    s->m.tags[0].changed_ms = FIX_NOW_MS - 2000;
    s->m.tags[1].gone = true;
    draw(s);
    char f[16][64];
    size_t n;
    int y = find_fields(s, INSP_PANE_TAGS, "users", f, &n);
    assert_true(y > 0);
    assert_string_equal(f[4], "2.0s");
    assert_int_equal(attr_at(s, col_of(s, y, "2.0s"), y), INSP_A_CHANGED);
    assert_true(find_fields(s, INSP_PANE_TAGS, "feed", f, &n) > 0);
    assert_string_equal(f[1], "(gone)");
    close_screen(s);
}

static void
entries_show_function_key_state_size_ttl_tags_and_moved_tag(void **state)
{
    screen *s = open_screen(80, 24);
    char f[16][64];
    size_t n;
    /* stale entries sort first */
    insp_rect r = insp_layout_pane(80, 24, s->ui.pane, INSP_PANE_ENTRIES);
    int y = find_fields(s, INSP_PANE_ENTRIES, "user_feed", f, &n);
    assert_int_equal(y, r.y + 1);
    assert_int_equal(n, 7);
    assert_string_equal(f[1], "h3");
    assert_string_equal(f[2], "stale");
    assert_string_equal(f[3], "300B");
    assert_string_equal(f[4], "-"); /* no TTL */
    assert_string_equal(f[5], "users,feed");
    assert_string_equal(f[6], "feed"); /* the tag that moved */
    assert_int_equal(attr_at(s, col_of(s, y, "stale"), y), INSP_A_STALE);
    assert_true(find_fields(s, INSP_PANE_ENTRIES, "report", f, &n) > 0);
    assert_string_equal(f[2], "corrupt");
    y = find_fields(s, INSP_PANE_ENTRIES, "product", f, &n); /* h4 */
    assert_string_equal(f[1], "h4");
    assert_string_equal(f[2], "fresh");
    assert_int_equal(attr_at(s, col_of(s, y, "fresh"), y), INSP_A_FRESH);
    assert_string_equal(f[4], "30s");
    close_screen(s);
}

static void garbage_shows_the_total_then_functions_by_wasted_bytes(void **state)
{
    screen *s = open_screen(80, 24);
    char f[16][64];
    size_t n;
    int yt = find_fields(s, INSP_PANE_GARBAGE, "total", f, &n);
    assert_true(yt > 0);
    assert_string_equal(f[1], "6");    /* entries */
    assert_string_equal(f[2], "2");    /* stale */
    assert_string_equal(f[3], "730B"); /* bytes */
    assert_string_equal(f[4], "500B"); /* wasted */
    int y1 = find_fields(s, INSP_PANE_GARBAGE, "user_feed", f, &n);
    assert_string_equal(f[4], "300B");
    int y2 = find_fields(s, INSP_PANE_GARBAGE, "user_profile", f, &n);
    assert_string_equal(f[1], "2");
    assert_string_equal(f[2], "1");
    assert_string_equal(f[4], "200B");
    assert_true(yt < y1 && y1 < y2);
    close_screen(s);
}

static void locks_show_entry_owner_age_and_ttl(void **state)
{
    screen *s = open_screen(80, 24);
    char f[16][64];
    size_t n;
    assert_true(find_fields(s, INSP_PANE_LOCKS, "report:h6", f, &n) > 0);
    assert_int_equal(n, 4);
    assert_string_equal(f[1], "web1:4242");
    assert_string_equal(f[2], "1.5s");
    assert_string_equal(f[3], "8.5s");
    close_screen(s);
}

static void processes_show_counters_and_wait_percentiles(void **state)
{
    screen *s = open_screen(80, 24);
    char f[16][64];
    size_t n;
    assert_true(find_fields(s, INSP_PANE_PROCS, "web1:4242", f, &n) > 0);
    assert_int_equal(n, 11);
    assert_string_equal(f[1], "900");   /* hits */
    assert_string_equal(f[2], "100");   /* misses */
    assert_string_equal(f[3], "80");    /* computations */
    assert_string_equal(f[4], "20");    /* coalesced */
    assert_string_equal(f[5], "80");    /* acquisitions */
    assert_string_equal(f[6], "12");    /* contended */
    assert_string_equal(f[7], "1.0ms"); /* p50: the 6th of 12 < 1024 us */
    assert_string_equal(f[8], "32ms");  /* p99 */
    assert_string_equal(f[9], "1");     /* timeouts */
    assert_string_equal(f[10], "0");    /* backend errors */
    close_screen(s);
}

static void the_selected_row_of_the_focused_pane_is_highlighted(void **state)
{
    screen *s = open_screen(80, 24);
    char f[16][64];
    size_t n;
    /* Tags sort by name: feed is first and selected */
    int y = find_fields(s, INSP_PANE_TAGS, "feed", f, &n);
    assert_int_equal(attr_at(s, 0, y), INSP_A_SELECT);
    assert_int_equal(attr_at(s, 30, y), INSP_A_SELECT);
    y = find_fields(s, INSP_PANE_TAGS, "products", f, &n);
    assert_int_equal(attr_at(s, 0, y), INSP_A_NORMAL);
    /* the focused pane's header is marked, the others' are not */
    insp_rect rt = insp_layout_pane(80, 24, s->ui.pane, INSP_PANE_TAGS);
    insp_rect re = insp_layout_pane(80, 24, s->ui.pane, INSP_PANE_ENTRIES);
    assert_int_equal(attr_at(s, rt.x + 20, rt.y), INSP_A_FOCUS);
    assert_int_equal(attr_at(s, re.x + 20, re.y), INSP_A_HEADER);
    /* the column each pane is sorted by: Tags by name, Entries by state */
    assert_int_equal(attr_at(s, rt.x, rt.y), INSP_A_SORTED);
    assert_int_equal(attr_at(s, col_of(s, re.y, "STATE"), re.y), INSP_A_SORTED);
    assert_int_equal(attr_at(s, col_of(s, re.y, "SIZE"), re.y), INSP_A_HEADER);
    close_screen(s);
}

static void the_status_line_lists_the_keys_or_a_message(void **state)
{
    screen *s = open_screen(80, 24);
    char line[256];
    row(s, 23, line, sizeof line);
    assert_non_null(strstr(line, "i invalidate"));
    assert_non_null(strstr(line, "? help"));
    snprintf(s->ui.status, sizeof s->ui.status, "tag users invalidated");
    draw(s);
    row(s, 23, line, sizeof line);
    assert_non_null(strstr(line, "tag users invalidated"));
    s->ui.status[0] = '\0';
    assert_int_equal(insp_model_set_str(&s->m.error, "connection refused"), 0);
    draw(s);
    row(s, 23, line, sizeof line);
    assert_non_null(strstr(line, "refresh failed: connection refused"));
    close_screen(s);
}

static void a_filter_shows_matching_rows_and_the_counts(void **state)
{
    screen *s = open_screen(80, 24);
    snprintf(s->ui.filter, sizeof s->ui.filter, "feed");
    draw(s);
    char f[16][64];
    size_t n;
    assert_true(screen_has(s, "Tags 1/3"));
    assert_true(find_fields(s, INSP_PANE_TAGS, "feed", f, &n) > 0);
    assert_int_equal(find_fields(s, INSP_PANE_TAGS, "users", f, &n), -1);
    assert_true(screen_has(s, "Entries 1/6"));
    assert_true(screen_has(s, "[/feed]"));
    snprintf(s->ui.filter, sizeof s->ui.filter, "zzz");
    draw(s);
    assert_true(screen_has(s, "(nothing matches the filter)"));
    close_screen(s);
}

static void
the_entry_detail_gives_header_fields_versions_and_verdict(void **state)
{
    screen *s = open_screen(80, 24);
    show_detail(s, INSP_PANE_ENTRIES, "cache:entry:user_feed:h3");
    assert_true(screen_has(s, "Entry cache:entry:user_feed:h3"));
    assert_true(screen_has(s, "function      user_feed"));
    assert_true(screen_has(s, "size          300 bytes"));
    assert_true(screen_has(s, "compute time  1.5ms"));
    assert_true(screen_has(s, "verdict       stale: a tag moved"));
    assert_true(screen_has(s, "moved tag     feed"));
    /* stored -> current per tag */
    assert_true(
        screen_has(s, "users            0000000000000100 -> 0000000000000100 "
                      "same"));
    assert_true(
        screen_has(s, "feed             00000000000001ff -> 0000000000000200 "
                      "MOVED"));
    /* the panes are not drawn under it */
    assert_false(screen_has(s, "Processes 2"));
    close_screen(s);
}

static void a_detail_of_a_row_that_went_away_says_so(void **state)
{
    screen *s = open_screen(80, 24);
    show_detail(s, INSP_PANE_ENTRIES, "cache:entry:nope");
    assert_true(screen_has(s, "this row is gone"));
    close_screen(s);
}

static void the_process_detail_shows_percentiles_and_functions(void **state)
{
    screen *s = open_screen(80, 24);
    show_detail(s, INSP_PANE_PROCS, "web1:4242");
    assert_true(screen_has(s, "contended acquisitions   12"));
    assert_true(screen_has(s, "lock wait p50 <= 1.0ms  p90 <= 32ms"));
    assert_true(screen_has(s, "user_profile"));
    close_screen(s);
}

static void help_and_confirmation_are_boxes_over_the_panes(void **state)
{
    screen *s = open_screen(80, 24);
    s->ui.mode = INSP_MODE_HELP;
    draw(s);
    assert_true(screen_has(s, "hermes-inspector keys"));
    assert_true(screen_has(s, "i        invalidate the selected tag"));
    s->ui.mode = INSP_MODE_CONFIRM;
    s->ui.pending.kind = INSP_ACT_INVALIDATE;
    snprintf(s->ui.pending.target, sizeof s->ui.pending.target, "users");
    draw(s);
    assert_true(screen_has(s, "Invalidate tag 'users'?"));
    assert_true(screen_has(s, "Its 3 entries turn stale"));
    assert_true(screen_has(s, "y: do it"));
    int y = -1;
    for (int i = 0; i < 24 && y < 0; i++)
        if (col_of(s, i, "Invalidate tag") >= 0)
            y = i;
    assert_int_equal(attr_at(s, col_of(s, y, "Invalidate tag"), y),
                     INSP_A_DIALOG);
    s->ui.pending.kind = INSP_ACT_FLUSH;
    draw(s);
    assert_true(screen_has(s, "Flush every key under prefix 'cache'?"));
    close_screen(s);
}

static void at_20x5_only_the_focused_pane_is_shown(void **state)
{
    screen *s = open_screen(20, 5);
    char line[64];
    row(s, 0, line, sizeof line);
    assert_string_equal(line, " hermes-inspector  r"); /* cut at 20 */
    row(s, 1, line, sizeof line);
    assert_int_equal(strncmp(line, "Tags 3", 6), 0);
    char f[16][64];
    size_t n;
    assert_int_equal(find_fields(s, INSP_PANE_TAGS, "feed", f, &n), 2);
    assert_int_equal(attr_at(s, 0, 2), INSP_A_SELECT);
    assert_int_equal(find_fields(s, INSP_PANE_TAGS, "products", f, &n), 3);
    /* the columns that fit: the name and the stale count */
    assert_string_equal(f[n - 1], "0");
    assert_int_equal(attr_at(s, 0, 4), INSP_A_STATUS);
    assert_false(screen_has(s, "Entries"));
    /* Tab's pane replaces it */
    s->ui.pane = INSP_PANE_ENTRIES;
    draw(s);
    row(s, 1, line, sizeof line);
    assert_int_equal(strncmp(line, "Entries 6", 9), 0);
    assert_true(screen_has(s, "stale"));
    close_screen(s);
}

static void no_size_crashes_or_writes_outside_the_grid(void **state)
{
    /* Every size up to 100x30, every mode: ASan sees any overflow. */
    screen *s = open_screen(1, 1);
    static const insp_mode modes[] = {INSP_MODE_MAIN, INSP_MODE_HELP,
                                      INSP_MODE_CONFIRM, INSP_MODE_DETAIL,
                                      INSP_MODE_FILTER};
    s->ui.pending.kind = INSP_ACT_DELETE;
    s->ui.detail_pane = INSP_PANE_ENTRIES;
    snprintf(s->ui.detail_key, sizeof s->ui.detail_key,
             "cache:entry:user_feed:h3");
    for (int w = 0; w <= 100; w++)
        for (int h = 0; h <= 30; h++)
            for (size_t k = 0; k < sizeof modes / sizeof *modes; k++) {
                s->ui.w = w;
                s->ui.h = h;
                s->ui.mode = modes[k];
                s->ui.pane = (insp_pane)((w + h) % INSP_NPANES);
                draw(s);
                assert_int_equal(s->g.w, w);
                assert_int_equal(s->g.h, h);
                if (w >= 10 && h >= 3 && modes[k] == INSP_MODE_MAIN) {
                    char line[128];
                    row(s, 1, line, sizeof line); /* the pane's header */
                    assert_true(strlen(line) > 0);
                }
            }
    close_screen(s);
}

static void below_80x24_the_layout_degrades_to_one_pane(void **state)
{
    for (int k = 0; k < 2; k++) {
        int w = k ? 79 : 80, h = k ? 24 : 23;
        screen *s = open_screen(w, h);
        int shown = 0;
        for (int p = 0; p < INSP_NPANES; p++)
            shown += insp_layout_pane(w, h, s->ui.pane, p).h > 0;
        assert_int_equal(shown, 1);
        assert_int_equal(insp_layout_rows(w, h, s->ui.pane, s->ui.pane),
                         (size_t)h - 3);
        close_screen(s);
    }
}

static void numbers_are_shortened_to_fit_their_columns(void **state)
{
    char b[32];
    insp_fmt_count(99999, b, sizeof b);
    assert_string_equal(b, "99999");
    insp_fmt_count(1234567, b, sizeof b);
    assert_string_equal(b, "1234k");
    insp_fmt_count(123456789, b, sizeof b);
    assert_string_equal(b, "123M");
    insp_fmt_bytes(1023, b, sizeof b);
    assert_string_equal(b, "1023B");
    insp_fmt_bytes(1536, b, sizeof b);
    assert_string_equal(b, "1.5K");
    insp_fmt_bytes(50u << 20, b, sizeof b);
    assert_string_equal(b, "50M");
    insp_fmt_ms(850, b, sizeof b);
    assert_string_equal(b, "850ms");
    insp_fmt_ms(90000, b, sizeof b);
    assert_string_equal(b, "90s");
    insp_fmt_ms(-5, b, sizeof b);
    assert_string_equal(b, "0ms");
    insp_fmt_us(1500, b, sizeof b);
    assert_string_equal(b, "1.5ms");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(at_80x24_every_pane_is_shown_with_its_row_count),
        cmocka_unit_test(the_title_names_backend_prefix_and_stale_count),
        cmocka_unit_test(tags_show_version_entries_stale_and_when_they_changed),
        cmocka_unit_test(a_changed_or_gone_tag_says_so),
        cmocka_unit_test(utf8_names_take_one_cell_a_character_in_a_utf8_locale),
        cmocka_unit_test(
            beyond_ascii_is_a_question_mark_a_byte_in_the_c_locale),
        cmocka_unit_test(
            entries_show_function_key_state_size_ttl_tags_and_moved_tag),
        cmocka_unit_test(
            garbage_shows_the_total_then_functions_by_wasted_bytes),
        cmocka_unit_test(locks_show_entry_owner_age_and_ttl),
        cmocka_unit_test(processes_show_counters_and_wait_percentiles),
        cmocka_unit_test(the_selected_row_of_the_focused_pane_is_highlighted),
        cmocka_unit_test(the_status_line_lists_the_keys_or_a_message),
        cmocka_unit_test(a_filter_shows_matching_rows_and_the_counts),
        cmocka_unit_test(
            the_entry_detail_gives_header_fields_versions_and_verdict),
        cmocka_unit_test(a_detail_of_a_row_that_went_away_says_so),
        cmocka_unit_test(the_process_detail_shows_percentiles_and_functions),
        cmocka_unit_test(help_and_confirmation_are_boxes_over_the_panes),
        cmocka_unit_test(at_20x5_only_the_focused_pane_is_shown),
        cmocka_unit_test(no_size_crashes_or_writes_outside_the_grid),
        cmocka_unit_test(below_80x24_the_layout_degrades_to_one_pane),
        cmocka_unit_test(numbers_are_shortened_to_fit_their_columns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
