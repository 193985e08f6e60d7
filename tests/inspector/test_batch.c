/*
 * Batch output without a backend: the fixture model as JSON (parsed back
 * by python3 in the end-to-end tests; here the fields a script relies on
 * and the escaping of names that are not plain text) and as text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "batch.h"
#include "fixture.h"

static char *print(const insp_model *m, bool json)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    if (json)
        insp_print_json(f, m);
    else
        insp_print_text(f, m, FIX_NOW_MS);
    assert_int_equal(fclose(f), 0);
    return buf;
}

static void has(const char *text, const char *want)
{
    if (!strstr(text, want))
        fail_msg("missing %s in:\n%s", want, text);
}

static void json_has_the_fields_scripts_read(void **state)
{
    insp_model m;
    fixture_model(&m);
    char *j = print(&m, true);
    has(j, "{\"schema\":1,\"backend\":\"redis\",\"prefix\":\"cache\",");
    has(j, "\"states\":{\"fresh\":2,\"stale\":2,\"expired\":1,\"foreign\":0,"
           "\"corrupt\":1}");
    has(j, "{\"name\":\"users\",\"version\":\"Vusers0000000000000000\","
           "\"version_id\":\"0000000000000100\",\"gone\":false,"
           "\"entries\":3,\"stale\":2,\"changed_ms\":null}");
    has(j, "\"key\":\"cache:entry:user_feed:h3\",\"function\":\"user_feed\","
           "\"id\":\"h3\",\"state\":\"stale\",\"size\":300,"
           "\"ttl_left_ms\":null");
    has(j, "\"moved\":\"feed\",\"reason\":null,\"tags\":[{\"name\":\"users\","
           "\"stored\":\"0000000000000100\",\"current\":\"0000000000000100\","
           "\"moved\":false},{\"name\":\"feed\",\"stored\":"
           "\"00000000000001ff\",\"current\":\"0000000000000200\","
           "\"moved\":true}]");
    has(j, "\"garbage\":{\"entries\":6,\"bytes\":730,\"stale\":2,"
           "\"stale_bytes\":500,\"functions\":[{\"function\":\"user_feed\"");
    has(j, "\"locks\":[{\"entry\":\"report:h6\",\"host\":\"web1\","
           "\"pid\":4242,\"age_ms\":1500,\"ttl_left_ms\":8500}]");
    has(j, "\"lock_contended\":12,\"lock_timeouts\":1,\"backend_errors\":0,"
           "\"wait_p50_us\":1024,\"wait_p90_us\":32768,\"wait_p99_us\":32768,"
           "\"wait_histogram\":[{\"below_us\":8,\"count\":5},");
    has(j, "\"functions\":[{\"name\":\"user_profile\",\"hits\":600,"
           "\"misses\":40}]");
    has(j, "\"contention\":{\"acquired\":90,\"contended\":15,");
    assert_int_equal(j[strlen(j) - 1], '\n');
    free(j);
    insp_model_free(&m);
}

static void json_escapes_quotes_backslashes_and_control_bytes(void **state)
{
    insp_model m;
    insp_model_init(&m);
    assert_non_null(insp_model_add_tag(&m, "a\"b\\c\n\x01", "v", 1, 1));
    char *j = print(&m, true);
    has(j, "\"name\":\"a\\\"b\\\\c\\n\\u0001\"");
    has(j, "\"backend\":null");
    free(j);
    insp_model_free(&m);
}

static void json_keeps_utf8_and_replaces_invalid_bytes(void **state)
{
    insp_model m;
    insp_model_init(&m);
    /* é, a CJK character, an emoji; then a lone continuation byte, a
     * truncated sequence, an overlong '/', a surrogate, 0xff */
    assert_non_null(insp_model_add_tag(
        &m,
        "caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80|\x80|\xe6\x97|"
        "\xc0\xaf|\xed\xa0\x80|\xff",
        "v", 1, 1));
    char *j = print(&m, true);
    has(j, "\"name\":\"caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80|\\ufffd|"
           "\\ufffd\\ufffd|\\ufffd\\ufffd|\\ufffd\\ufffd\\ufffd|"
           "\\ufffd\"");
    free(j);
    insp_model_free(&m);
}

static void text_prints_every_row_of_every_pane(void **state)
{
    insp_model m;
    fixture_model(&m);
    fixture_many_tags(&m, 30); /* more than a screen */
    char *t = print(&m, false);
    has(t, "hermes-inspector redis:cache at ");
    has(t, "36 entries: 32 fresh, 2 stale, 1 expired, 0 foreign, 1 corrupt");
    has(t, "garbage 2 stale entries, 500B; 1 locks");
    has(t, "\nTags 33 ");
    has(t, "\nt029 ");
    has(t, "\nuser_feed ");
    has(t, "\nreport:h6 ");
    has(t, "\nweb2:77 ");
    has(t, "contention: 15 of 90 lock acquisitions contended");
    free(t);
    insp_model_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_has_the_fields_scripts_read),
        cmocka_unit_test(json_escapes_quotes_backslashes_and_control_bytes),
        cmocka_unit_test(json_keeps_utf8_and_replaces_invalid_bytes),
        cmocka_unit_test(text_prints_every_row_of_every_pane),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
