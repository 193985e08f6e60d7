/*
 * The inspector's key handling as a state machine, without a terminal:
 * movement and scrolling, panes, the detail view, help, the filter, sort
 * orders, pause, and destructive keys that act only after confirmation.
 */
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

typedef struct world {
    insp_model m;
    insp_ui ui;
} world;

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    if (!w)
        return -1;
    fixture_model(&w->m);
    insp_ui_init(&w->ui, 80, 24);
    insp_ui_sync(&w->ui, &w->m);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    insp_model_free(&w->m);
    free(w);
    return 0;
}

static insp_action press(world *w, int key)
{
    return insp_keys_handle(&w->ui, &w->m, key);
}

static void type(world *w, const char *s)
{
    for (; *s; s++)
        assert_int_equal(press(w, *s).kind, INSP_ACT_NONE);
}

static const char *selected(const world *w)
{
    return w->ui.cur[w->ui.pane].key;
}

static void the_first_row_is_selected_at_start(void **state)
{
    world *w = *state;
    assert_int_equal(w->ui.pane, INSP_PANE_TAGS);
    assert_string_equal(selected(w), "feed");
}

static void arrows_home_and_end_move_and_stop_at_the_ends(void **state)
{
    world *w = *state;
    press(w, INSP_KEY_DOWN);
    assert_string_equal(selected(w), "products");
    press(w, INSP_KEY_DOWN);
    press(w, INSP_KEY_DOWN);
    assert_string_equal(selected(w), "users");
    press(w, INSP_KEY_HOME);
    assert_string_equal(selected(w), "feed");
    press(w, INSP_KEY_UP);
    assert_string_equal(selected(w), "feed");
    press(w, INSP_KEY_END);
    assert_string_equal(selected(w), "users");
}

static void page_keys_move_by_a_screen_and_scroll_it(void **state)
{
    world *w = *state;
    fixture_many_tags(&w->m, 40); /* 43 tags */
    insp_ui_sync(&w->ui, &w->m);
    size_t page = insp_layout_rows(80, 24, INSP_PANE_TAGS, INSP_PANE_TAGS);
    assert_true(page >= 2);
    press(w, INSP_KEY_PGDN);
    assert_int_equal(w->ui.cur[INSP_PANE_TAGS].sel, page);
    /* the selected row is the last visible one */
    assert_int_equal(w->ui.cur[INSP_PANE_TAGS].top, 1);
    press(w, INSP_KEY_END);
    assert_int_equal(w->ui.cur[INSP_PANE_TAGS].sel, 42);
    assert_int_equal(w->ui.cur[INSP_PANE_TAGS].top, 43 - page);
    press(w, INSP_KEY_PGUP);
    assert_int_equal(w->ui.cur[INSP_PANE_TAGS].sel, 42 - page);
    assert_int_equal(w->ui.cur[INSP_PANE_TAGS].top, 42 - page);
    press(w, INSP_KEY_HOME);
    assert_int_equal(w->ui.cur[INSP_PANE_TAGS].top, 0);
}

static void tab_cycles_through_the_panes_and_back(void **state)
{
    world *w = *state;
    static const insp_pane order[] = {INSP_PANE_ENTRIES, INSP_PANE_GARBAGE,
                                      INSP_PANE_LOCKS, INSP_PANE_PROCS,
                                      INSP_PANE_TAGS};
    for (size_t i = 0; i < 5; i++) {
        press(w, INSP_KEY_TAB);
        assert_int_equal(w->ui.pane, order[i]);
    }
    press(w, INSP_KEY_BTAB);
    assert_int_equal(w->ui.pane, INSP_PANE_PROCS);
    press(w, INSP_KEY_LEFT);
    assert_int_equal(w->ui.pane, INSP_PANE_LOCKS);
    press(w, INSP_KEY_RIGHT);
    assert_int_equal(w->ui.pane, INSP_PANE_PROCS);
    /* each pane keeps its own selection */
    press(w, INSP_KEY_DOWN);
    assert_string_equal(selected(w), "web2:77");
    press(w, INSP_KEY_TAB);
    assert_string_equal(selected(w), "feed");
}

static void i_asks_before_invalidating_the_selected_tag(void **state)
{
    world *w = *state;
    press(w, INSP_KEY_END); /* users */
    insp_action a = press(w, 'i');
    assert_int_equal(a.kind, INSP_ACT_NONE);
    assert_int_equal(w->ui.mode, INSP_MODE_CONFIRM);
    assert_string_equal(w->ui.pending.target, "users");
    a = press(w, 'y');
    assert_int_equal(a.kind, INSP_ACT_INVALIDATE);
    assert_string_equal(a.target, "users");
    assert_int_equal(w->ui.mode, INSP_MODE_MAIN);
}

static void any_other_answer_cancels(void **state)
{
    world *w = *state;
    static const int answers[] = {'n', INSP_KEY_ESC, INSP_KEY_ENTER, 'q'};
    for (size_t i = 0; i < 4; i++) {
        press(w, 'i');
        insp_action a = press(w, answers[i]);
        assert_int_equal(a.kind, INSP_ACT_NONE);
        assert_int_equal(w->ui.mode, INSP_MODE_MAIN);
        assert_string_equal(w->ui.status, "cancelled");
    }
}

static void i_outside_the_tags_pane_explains_itself(void **state)
{
    world *w = *state;
    press(w, INSP_KEY_TAB);
    assert_int_equal(press(w, 'i').kind, INSP_ACT_NONE);
    assert_int_equal(w->ui.mode, INSP_MODE_MAIN);
    assert_non_null(strstr(w->ui.status, "Tags pane"));
}

static void x_deletes_the_selected_entry_after_confirmation(void **state)
{
    world *w = *state;
    assert_int_equal(press(w, 'x').kind, INSP_ACT_NONE);
    assert_non_null(strstr(w->ui.status, "Entries pane"));
    press(w, INSP_KEY_TAB);
    press(w, INSP_KEY_DOWN); /* stale first: h3, then h2 */
    press(w, 'x');
    assert_int_equal(w->ui.mode, INSP_MODE_CONFIRM);
    insp_action a = press(w, 'Y');
    assert_int_equal(a.kind, INSP_ACT_DELETE);
    assert_string_equal(a.target, "cache:entry:user_profile:h2");
}

static void shift_f_flushes_after_confirmation_from_any_pane(void **state)
{
    world *w = *state;
    press(w, INSP_KEY_TAB);
    press(w, INSP_KEY_TAB);
    press(w, 'F');
    assert_int_equal(w->ui.mode, INSP_MODE_CONFIRM);
    assert_int_equal(press(w, 'y').kind, INSP_ACT_FLUSH);
    assert_int_equal(press(w, 'f').kind, INSP_ACT_NONE); /* lower case: no */
    assert_int_equal(w->ui.mode, INSP_MODE_MAIN);
}

static void enter_opens_the_detail_and_esc_closes_it(void **state)
{
    world *w = *state;
    press(w, INSP_KEY_TAB);
    press(w, INSP_KEY_ENTER);
    assert_int_equal(w->ui.mode, INSP_MODE_DETAIL);
    assert_int_equal(w->ui.detail_pane, INSP_PANE_ENTRIES);
    assert_string_equal(w->ui.detail_key, "cache:entry:user_feed:h3");
    press(w, INSP_KEY_DOWN); /* scrolls the detail, not the pane */
    assert_int_equal(w->ui.detail_top, 1);
    assert_string_equal(selected(w), "cache:entry:user_feed:h3");
    press(w, INSP_KEY_ESC);
    assert_int_equal(w->ui.mode, INSP_MODE_MAIN);
}

static void x_in_an_entry_detail_deletes_that_entry(void **state)
{
    world *w = *state;
    press(w, INSP_KEY_TAB);
    press(w, INSP_KEY_ENTER);
    press(w, 'x');
    assert_int_equal(w->ui.mode, INSP_MODE_CONFIRM);
    insp_action a = press(w, 'y');
    assert_int_equal(a.kind, INSP_ACT_DELETE);
    assert_string_equal(a.target, "cache:entry:user_feed:h3");
    /* the entry is gone: back to the panes */
    assert_int_equal(w->ui.mode, INSP_MODE_MAIN);
}

static void i_in_a_tag_detail_returns_to_the_detail(void **state)
{
    world *w = *state;
    press(w, INSP_KEY_ENTER);
    press(w, 'i');
    insp_action a = press(w, 'y');
    assert_int_equal(a.kind, INSP_ACT_INVALIDATE);
    assert_string_equal(a.target, "feed");
    assert_int_equal(w->ui.mode, INSP_MODE_DETAIL); /* watch it change */
}

static void slash_filters_as_you_type_enter_keeps_esc_restores(void **state)
{
    world *w = *state;
    press(w, '/');
    assert_int_equal(w->ui.mode, INSP_MODE_FILTER);
    type(w, "usx");
    press(w, INSP_KEY_BACKSPACE);
    type(w, "e");
    assert_string_equal(w->ui.filter, "use");
    assert_string_equal(selected(w), "users"); /* the only match */
    press(w, INSP_KEY_ENTER);
    assert_int_equal(w->ui.mode, INSP_MODE_MAIN);
    assert_string_equal(w->ui.filter, "use");
    /* q while typing is a letter, not quit */
    press(w, '/');
    assert_int_equal(press(w, 'q').kind, INSP_ACT_NONE);
    assert_string_equal(w->ui.filter, "useq");
    press(w, INSP_KEY_ESC);
    assert_string_equal(w->ui.filter, "use");
    /* Esc in the panes clears it */
    press(w, INSP_KEY_ESC);
    assert_string_equal(w->ui.filter, "");
}

static void s_cycles_sort_orders_and_the_selection_follows_its_row(void **state)
{
    world *w = *state;
    press(w, INSP_KEY_END); /* users, last by name */
    press(w, 's');
    assert_int_equal(w->ui.cur[INSP_PANE_TAGS].sort, 1);
    assert_non_null(strstr(w->ui.status, "sorted by stale"));
    assert_string_equal(selected(w), "users");
    assert_int_equal(w->ui.cur[INSP_PANE_TAGS].sel, 0); /* most stale */
    for (size_t i = 1; i < insp_sort_count(INSP_PANE_TAGS); i++)
        press(w, 's');
    assert_int_equal(w->ui.cur[INSP_PANE_TAGS].sort, 0);
}

static void p_pauses_and_resumes(void **state)
{
    world *w = *state;
    press(w, 'p');
    assert_true(w->ui.paused);
    press(w, 'p');
    assert_false(w->ui.paused);
}

static void question_mark_shows_help_and_any_key_closes_it(void **state)
{
    world *w = *state;
    press(w, '?');
    assert_int_equal(w->ui.mode, INSP_MODE_HELP);
    assert_int_equal(press(w, INSP_KEY_DOWN).kind, INSP_ACT_NONE);
    assert_int_equal(w->ui.mode, INSP_MODE_MAIN);
    assert_string_equal(selected(w), "feed"); /* the key did nothing else */
    press(w, '?');
    assert_int_equal(press(w, 'q').kind, INSP_ACT_QUIT);
}

static void q_quits_from_the_panes_and_the_detail(void **state)
{
    world *w = *state;
    assert_int_equal(press(w, 'q').kind, INSP_ACT_QUIT);
    press(w, INSP_KEY_ENTER);
    assert_int_equal(press(w, 'q').kind, INSP_ACT_QUIT);
}

static void a_refresh_keeps_the_selection_on_the_same_row(void **state)
{
    world *w = *state;
    press(w, INSP_KEY_DOWN); /* products, second by name */
    /* a new snapshot where a tag sorting before it appeared */
    insp_model next;
    fixture_model(&next);
    assert_non_null(insp_model_add_tag(&next, "aardvark", "V", 77, 1));
    insp_ui_sync(&w->ui, &next);
    assert_string_equal(w->ui.cur[INSP_PANE_TAGS].key, "products");
    assert_int_equal(w->ui.cur[INSP_PANE_TAGS].sel, 2);
    insp_model_free(&next);
    /* and a snapshot where it is gone keeps the position, clamped */
    insp_model empty;
    insp_model_init(&empty);
    assert_non_null(insp_model_add_tag(&empty, "only", "V", 1, 1));
    insp_ui_sync(&w->ui, &empty);
    assert_int_equal(w->ui.cur[INSP_PANE_TAGS].sel, 0);
    assert_string_equal(w->ui.cur[INSP_PANE_TAGS].key, "only");
    insp_model_free(&empty);
}

static void a_selection_nobody_moved_stays_at_the_top(void **state)
{
    world *w = *state;
    insp_model next;
    fixture_model(&next);
    assert_non_null(insp_model_add_tag(&next, "aardvark", "V", 77, 1));
    insp_ui_sync(&w->ui, &next);
    assert_int_equal(w->ui.cur[INSP_PANE_TAGS].sel, 0);
    assert_string_equal(w->ui.cur[INSP_PANE_TAGS].key, "aardvark");
    /* Home after moving goes back to staying at the top */
    press(w, INSP_KEY_DOWN);
    press(w, INSP_KEY_HOME);
    insp_ui_sync(&w->ui, &w->m);
    assert_string_equal(w->ui.cur[INSP_PANE_TAGS].key, "feed");
    insp_model_free(&next);
}

static void keys_on_an_empty_pane_do_nothing_harmful(void **state)
{
    world *w = *state;
    insp_model empty;
    insp_model_init(&empty);
    insp_ui_sync(&w->ui, &empty);
    static const int keys[] = {
        INSP_KEY_DOWN, INSP_KEY_END, INSP_KEY_PGDN, INSP_KEY_ENTER,
        'i',           'x',          's',           INSP_KEY_UP};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        assert_int_equal(insp_keys_handle(&w->ui, &empty, keys[i]).kind,
                         INSP_ACT_NONE);
    assert_int_equal(w->ui.mode, INSP_MODE_MAIN);
    assert_int_equal(w->ui.cur[INSP_PANE_TAGS].sel, 0);
    insp_model_free(&empty);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(the_first_row_is_selected_at_start),
        T(arrows_home_and_end_move_and_stop_at_the_ends),
        T(page_keys_move_by_a_screen_and_scroll_it),
        T(tab_cycles_through_the_panes_and_back),
        T(i_asks_before_invalidating_the_selected_tag),
        T(any_other_answer_cancels),
        T(i_outside_the_tags_pane_explains_itself),
        T(x_deletes_the_selected_entry_after_confirmation),
        T(shift_f_flushes_after_confirmation_from_any_pane),
        T(enter_opens_the_detail_and_esc_closes_it),
        T(x_in_an_entry_detail_deletes_that_entry),
        T(i_in_a_tag_detail_returns_to_the_detail),
        T(slash_filters_as_you_type_enter_keeps_esc_restores),
        T(s_cycles_sort_orders_and_the_selection_follows_its_row),
        T(p_pauses_and_resumes),
        T(question_mark_shows_help_and_any_key_closes_it),
        T(q_quits_from_the_panes_and_the_detail),
        T(a_refresh_keeps_the_selection_on_the_same_row),
        T(a_selection_nobody_moved_stays_at_the_top),
        T(keys_on_an_empty_pane_do_nothing_harmful),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
