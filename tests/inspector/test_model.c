/*
 * The inspector's model without a backend: staleness counted per tag,
 * garbage in total and per function, contention summed over processes,
 * percentiles of the lock-wait histogram, tag changes tracked across
 * snapshots, filters and sort orders.
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
#include "model.h"

static const insp_tag *tag(const insp_model *m, const char *name)
{
    for (size_t i = 0; i < m->ntags; i++)
        if (strcmp(m->tags[i].name, name) == 0)
            return &m->tags[i];
    fail_msg("no tag %s", name);
    return NULL;
}

static const insp_entry *entry(const insp_model *m, const char *id)
{
    for (size_t i = 0; i < m->nentries; i++)
        if (strcmp(m->entries[i].id, id) == 0)
            return &m->entries[i];
    fail_msg("no entry %s", id);
    return NULL;
}

static void
each_tag_counts_the_entries_carrying_it_and_the_stale_ones(void **state)
{
    insp_model m;
    fixture_model(&m);
    assert_int_equal(tag(&m, "users")->entries, 3);
    assert_int_equal(tag(&m, "users")->stale, 2);
    assert_int_equal(tag(&m, "feed")->entries, 1); /* referenced by id */
    assert_int_equal(tag(&m, "feed")->stale, 1);
    assert_int_equal(tag(&m, "products")->entries, 2);
    assert_int_equal(tag(&m, "products")->stale, 0); /* expired != stale */
    insp_model_free(&m);
}

static void
resolving_names_tags_known_only_by_id_and_the_tag_that_moved(void **state)
{
    insp_model m;
    fixture_model(&m);
    const insp_entry *e = entry(&m, "h3");
    assert_string_equal(e->tags[1].name, "feed");
    assert_true(e->tags[1].present);
    assert_int_equal(e->tags[1].current, 0x200);
    assert_int_equal(e->tags[0].current, e->tags[0].stored); /* users same */
    assert_string_equal(e->moved, "feed");
    assert_string_equal(entry(&m, "h2")->moved, "users");
    assert_null(entry(&m, "h1")->moved); /* fresh: nothing moved */
    insp_model_free(&m);
}

static void a_tag_whose_key_is_gone_is_not_present_for_its_entries(void **state)
{
    insp_model m;
    insp_model_init(&m);
    assert_non_null(insp_model_add_tag(&m, "gone", NULL, 9, 0));
    insp_entry *e = insp_model_add_entry(&m, "k", "f", "a", 1, INSP_STALE);
    assert_non_null(insp_entry_add_tag(e, "gone", 9, 0x55));
    assert_int_equal(insp_model_resolve(&m), 0);
    assert_false(e->tags[0].present);
    assert_string_equal(e->moved, "gone");
    assert_true(m.tags[0].gone);
    insp_model_free(&m);
}

static void
garbage_is_the_stale_entries_and_bytes_in_total_and_per_function(void **state)
{
    insp_model m;
    fixture_model(&m);
    assert_int_equal(m.total.entries, 6);
    assert_int_equal(m.total.bytes, 730);
    assert_int_equal(m.total.stale, 2);
    assert_int_equal(m.total.stale_bytes, 500);
    assert_int_equal(m.ngarbage, 4);
    /* most wasted bytes first */
    assert_string_equal(m.garbage[0].function, "user_feed");
    assert_int_equal(m.garbage[0].stale_bytes, 300);
    assert_string_equal(m.garbage[1].function, "user_profile");
    assert_int_equal(m.garbage[1].entries, 2);
    assert_int_equal(m.garbage[1].stale, 1);
    assert_int_equal(m.garbage[1].bytes, 300);
    assert_int_equal(m.garbage[1].stale_bytes, 200);
    assert_int_equal(m.garbage[2].stale, 0);
    insp_model_free(&m);
}

static void entries_are_counted_by_state(void **state)
{
    insp_model m;
    fixture_model(&m);
    assert_int_equal(m.by_state[INSP_FRESH], 2);
    assert_int_equal(m.by_state[INSP_STALE], 2);
    assert_int_equal(m.by_state[INSP_EXPIRED], 1);
    assert_int_equal(m.by_state[INSP_FOREIGN], 0);
    assert_int_equal(m.by_state[INSP_CORRUPT], 1);
    assert_string_equal(insp_state_name(INSP_FOREIGN), "foreign");
    insp_model_free(&m);
}

static void aggregating_twice_gives_the_same_numbers(void **state)
{
    insp_model m;
    fixture_model(&m);
    assert_int_equal(insp_model_aggregate(&m), 0);
    assert_int_equal(m.total.stale_bytes, 500);
    assert_int_equal(m.ngarbage, 4);
    assert_int_equal(tag(&m, "users")->stale, 2);
    assert_int_equal(m.contention.contended, 15);
    insp_model_free(&m);
}

static void contention_is_summed_over_processes(void **state)
{
    insp_model m;
    fixture_model(&m);
    const insp_contention *c = &m.contention;
    assert_int_equal(c->acquired, 90);
    assert_int_equal(c->contended, 15);
    assert_int_equal(c->timeouts, 1);
    assert_int_equal(c->coalesced, 20);
    assert_int_equal(c->wait_hist[3], 5);
    assert_int_equal(c->wait_hist[4], 3);
    /* 15 waits: 5 < 8 us, 3 < 16 us, 5 < 1024 us, 2 < 32768 us; the 8th
     * is under 16 us, the 14th and 15th under 32768 us */
    assert_int_equal(c->p50_us, 16);
    assert_int_equal(c->p90_us, 32768);
    assert_int_equal(c->p99_us, 32768);
    insp_model_free(&m);
}

static void percentiles_are_bucket_upper_bounds_by_nearest_rank(void **state)
{
    uint64_t h[INSP_HIST_BUCKETS] = {0};
    assert_int_equal(insp_hist_percentile(h, INSP_HIST_BUCKETS, 50), 0);
    h[0] = 1;
    assert_int_equal(insp_hist_percentile(h, INSP_HIST_BUCKETS, 99), 1);
    h[0] = 0;
    h[2] = 50;  /* [2, 4) us */
    h[10] = 50; /* [512, 1024) us */
    assert_int_equal(insp_hist_percentile(h, INSP_HIST_BUCKETS, 50), 4);
    assert_int_equal(insp_hist_percentile(h, INSP_HIST_BUCKETS, 51), 1024);
    assert_int_equal(insp_hist_percentile(h, INSP_HIST_BUCKETS, 100), 1024);
    assert_int_equal(insp_hist_percentile(h, INSP_HIST_BUCKETS, 1), 4);
}

static void the_last_bucket_reports_its_lower_bound(void **state)
{
    uint64_t h[INSP_HIST_BUCKETS] = {0};
    h[INSP_HIST_BUCKETS - 1] = 7;
    assert_int_equal(insp_hist_percentile(h, INSP_HIST_BUCKETS, 50),
                     (uint64_t)1 << (INSP_HIST_BUCKETS - 2));
}

static void waits_fall_in_log2_buckets(void **state)
{
    assert_int_equal(insp_hist_bucket(0), 0);
    assert_int_equal(insp_hist_bucket(1), 1);
    assert_int_equal(insp_hist_bucket(2), 2);
    assert_int_equal(insp_hist_bucket(3), 2);
    assert_int_equal(insp_hist_bucket(4), 3);
    assert_int_equal(insp_hist_bucket(1023), 10);
    assert_int_equal(insp_hist_bucket(1024), 11);
    assert_int_equal(insp_hist_bucket(UINT64_MAX), INSP_HIST_BUCKETS - 1);
}

/* A snapshot of the fixture's tags at time t, users at version vid. */
static void snapshot(insp_model *m, int64_t t, const char *users_version,
                     uint64_t vid)
{
    insp_model_init(m);
    m->taken_ms = t;
    if (users_version)
        assert_non_null(insp_model_add_tag(m, "users", users_version, 1, vid));
    assert_non_null(insp_model_add_tag(m, "feed", "F", 2, 0x200));
    insp_entry *e = insp_model_add_entry(m, "k", "f", "a", 1, INSP_FRESH);
    assert_non_null(insp_entry_add_tag(e, NULL, 1, 0x100));
}

static void the_first_snapshot_has_seen_no_change(void **state)
{
    insp_model a;
    snapshot(&a, 1000, "U1", 0x100);
    assert_int_equal(insp_model_track(&a, NULL, 1000), 0);
    assert_int_equal(a.tags[0].changed_ms, 0);
    insp_model_free(&a);
}

static void
a_new_version_is_a_change_and_an_unchanged_tag_keeps_its_time(void **state)
{
    insp_model a, b, c;
    snapshot(&a, 1000, "U1", 0x100);
    snapshot(&b, 2000, "U2", 0x101);
    assert_int_equal(insp_model_track(&b, &a, 2000), 0);
    assert_int_equal(tag(&b, "users")->changed_ms, 2000);
    assert_int_equal(tag(&b, "feed")->changed_ms, 0);
    snapshot(&c, 3000, "U2", 0x101);
    assert_int_equal(insp_model_track(&c, &b, 3000), 0);
    assert_int_equal(tag(&c, "users")->changed_ms, 2000);
    insp_model_free(&a);
    insp_model_free(&b);
    insp_model_free(&c);
}

static void
a_cleaned_tag_stays_listed_as_gone_while_entries_carry_it(void **state)
{
    insp_model a, b, c;
    snapshot(&a, 1000, "U1", 0x100);
    snapshot(&b, 2000, NULL, 0); /* users' key deleted */
    assert_int_equal(insp_model_track(&b, &a, 2000), 0);
    const insp_tag *t = tag(&b, "users");
    assert_true(t->gone);
    assert_int_equal(t->changed_ms, 2000);
    assert_int_equal(insp_model_resolve(&b), 0);
    assert_string_equal(b.entries[0].tags[0].name, "users");
    assert_false(b.entries[0].tags[0].present);
    /* still gone a second later: the change keeps its time */
    snapshot(&c, 3000, NULL, 0);
    assert_int_equal(insp_model_track(&c, &b, 3000), 0);
    assert_int_equal(tag(&c, "users")->changed_ms, 2000);
    insp_model_free(&a);
    insp_model_free(&b);
    insp_model_free(&c);
}

static void a_cleaned_tag_no_entry_carries_is_dropped(void **state)
{
    insp_model a, b;
    snapshot(&a, 1000, "U1", 0x100);
    insp_model_init(&b);
    b.taken_ms = 2000;
    assert_int_equal(insp_model_track(&b, &a, 2000), 0);
    assert_int_equal(b.ntags, 0);
    insp_model_free(&a);
    insp_model_free(&b);
}

static void a_tag_created_after_the_first_snapshot_is_a_change(void **state)
{
    insp_model a, b;
    snapshot(&a, 1000, NULL, 0);
    snapshot(&b, 2000, "U9", 0x999);
    assert_int_equal(insp_model_track(&b, &a, 2000), 0);
    assert_int_equal(tag(&b, "users")->changed_ms, 2000);
    insp_model_free(&a);
    insp_model_free(&b);
}

static void names_of(const insp_model *m, insp_pane p, const char *filter,
                     size_t sort, char *out, size_t cap)
{
    size_t idx[64], n = insp_view(m, p, filter, sort, idx);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char key[128];
        insp_row_key(m, p, idx[i], key, sizeof key);
        size_t len = strlen(out);
        snprintf(out + len, cap - len, "%s%s", i ? " " : "", key);
    }
}

static void the_filter_is_a_case_insensitive_substring(void **state)
{
    insp_model m;
    char got[512];
    fixture_model(&m);
    names_of(&m, INSP_PANE_TAGS, "USE", 0, got, sizeof got);
    assert_string_equal(got, "users");
    /* entries match by key, function, state or tag */
    names_of(&m, INSP_PANE_ENTRIES, "feed", 1, got, sizeof got);
    assert_string_equal(got, "cache:entry:user_feed:h3");
    names_of(&m, INSP_PANE_ENTRIES, "Users", 1, got, sizeof got);
    assert_string_equal(got, "cache:entry:user_feed:h3 "
                             "cache:entry:user_profile:h1 "
                             "cache:entry:user_profile:h2");
    names_of(&m, INSP_PANE_ENTRIES, "expired", 1, got, sizeof got);
    assert_string_equal(got, "cache:entry:product:h5");
    names_of(&m, INSP_PANE_PROCS, "4242", 0, got, sizeof got);
    assert_string_equal(got, "web1:4242");
    names_of(&m, INSP_PANE_LOCKS, "nothing", 0, got, sizeof got);
    assert_string_equal(got, "");
    names_of(&m, INSP_PANE_TAGS, "", 0, got, sizeof got);
    assert_string_equal(got, "feed products users");
    insp_model_free(&m);
}

static void sort_orders_put_the_interesting_rows_first(void **state)
{
    insp_model m;
    char got[512];
    fixture_model(&m);
    assert_string_equal(insp_sort_name(INSP_PANE_TAGS, 1), "stale");
    names_of(&m, INSP_PANE_TAGS, NULL, 1, got, sizeof got);
    assert_string_equal(got, "users feed products");
    names_of(&m, INSP_PANE_TAGS, NULL, 2, got, sizeof got); /* entries */
    assert_string_equal(got, "users products feed");
    /* entries: stale first (ties by key), then fresh, expired, corrupt */
    names_of(&m, INSP_PANE_ENTRIES, NULL, 0, got, sizeof got);
    assert_string_equal(got, "cache:entry:user_feed:h3 "
                             "cache:entry:user_profile:h2 "
                             "cache:entry:product:h4 "
                             "cache:entry:user_profile:h1 "
                             "cache:entry:product:h5 "
                             "cache:entry:report:h6");
    assert_string_equal(insp_sort_name(INSP_PANE_ENTRIES, 3), "size");
    names_of(&m, INSP_PANE_ENTRIES, "user", 3, got, sizeof got);
    assert_string_equal(got, "cache:entry:user_feed:h3 "
                             "cache:entry:user_profile:h2 "
                             "cache:entry:user_profile:h1");
    /* ttl: soonest first, no TTL last */
    names_of(&m, INSP_PANE_ENTRIES, "product", 4, got, sizeof got);
    assert_string_equal(got, "cache:entry:product:h5 cache:entry:product:h4");
    names_of(&m, INSP_PANE_PROCS, NULL, 0, got, sizeof got);
    assert_string_equal(got, "web1:4242 web2:77");
    insp_model_free(&m);
}

static void an_unknown_sort_falls_back_to_the_default(void **state)
{
    insp_model m;
    char a[512], b[512];
    fixture_model(&m);
    names_of(&m, INSP_PANE_TAGS, NULL, 0, a, sizeof a);
    names_of(&m, INSP_PANE_TAGS, NULL, 99, b, sizeof b);
    assert_string_equal(a, b);
    assert_string_equal(insp_sort_name(INSP_PANE_TAGS, 99), "");
    insp_model_free(&m);
}

static void
a_cached_view_is_the_view_until_filter_sort_or_rows_change(void **state)
{
    insp_model m;
    size_t n, fresh[64];
    fixture_model(&m);
    const size_t *a = insp_view_cached(&m, INSP_PANE_TAGS, "", 1, &n);
    assert_int_equal(n, insp_view(&m, INSP_PANE_TAGS, "", 1, fresh));
    assert_memory_equal(a, fresh, n * sizeof *fresh);
    assert_ptr_equal(insp_view_cached(&m, INSP_PANE_TAGS, NULL, 1, &n), a);
    a = insp_view_cached(&m, INSP_PANE_TAGS, "feed", 1, &n);
    assert_int_equal(n, 1);
    assert_string_equal(m.tags[a[0]].name, "feed");
    a = insp_view_cached(&m, INSP_PANE_TAGS, "feed", 0, &n);
    assert_int_equal(n, 1);
    fixture_many_tags(&m, 3); /* rows added: computed again */
    a = insp_view_cached(&m, INSP_PANE_TAGS, "", 0, &n);
    assert_int_equal(n, 6);
    assert_string_equal(m.tags[a[5]].name, "users");
    insp_model_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            each_tag_counts_the_entries_carrying_it_and_the_stale_ones),
        cmocka_unit_test(
            resolving_names_tags_known_only_by_id_and_the_tag_that_moved),
        cmocka_unit_test(
            a_tag_whose_key_is_gone_is_not_present_for_its_entries),
        cmocka_unit_test(
            garbage_is_the_stale_entries_and_bytes_in_total_and_per_function),
        cmocka_unit_test(entries_are_counted_by_state),
        cmocka_unit_test(aggregating_twice_gives_the_same_numbers),
        cmocka_unit_test(contention_is_summed_over_processes),
        cmocka_unit_test(percentiles_are_bucket_upper_bounds_by_nearest_rank),
        cmocka_unit_test(the_last_bucket_reports_its_lower_bound),
        cmocka_unit_test(waits_fall_in_log2_buckets),
        cmocka_unit_test(the_first_snapshot_has_seen_no_change),
        cmocka_unit_test(
            a_new_version_is_a_change_and_an_unchanged_tag_keeps_its_time),
        cmocka_unit_test(
            a_cleaned_tag_stays_listed_as_gone_while_entries_carry_it),
        cmocka_unit_test(a_cleaned_tag_no_entry_carries_is_dropped),
        cmocka_unit_test(a_tag_created_after_the_first_snapshot_is_a_change),
        cmocka_unit_test(the_filter_is_a_case_insensitive_substring),
        cmocka_unit_test(sort_orders_put_the_interesting_rows_first),
        cmocka_unit_test(an_unknown_sort_falls_back_to_the_default),
        cmocka_unit_test(
            a_cached_view_is_the_view_until_filter_sort_or_rows_change),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
