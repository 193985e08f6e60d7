/*
 * Keys and records: argument encoding is unambiguous, hashes are stable,
 * escaping keeps keys free of spaces and control characters, long keys are
 * hashed to fit, and records round-trip and reject any damage.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <hermes/hermes.h>

#include "keys.h"
#include "record.h"

static void hash_of(hermes_args *a, char out[HM_HASH_B64_LEN + 1])
{
    hm_hash128_b64(a->data, a->len, out);
    out[HM_HASH_B64_LEN] = '\0';
    hermes_args_free(a);
}

static void argument_boundaries_are_part_of_the_key(void **state)
{
    hermes_args a = HERMES_ARGS_INIT, b = HERMES_ARGS_INIT;
    char ha[23], hb[23];
    hermes_args_str(&a, "1");
    hermes_args_str(&a, "ab");
    hermes_args_str(&b, "1a");
    hermes_args_str(&b, "b");
    hash_of(&a, ha);
    hash_of(&b, hb);
    assert_string_not_equal(ha, hb);
}

static void argument_types_are_part_of_the_key(void **state)
{
    hermes_args a = HERMES_ARGS_INIT, b = HERMES_ARGS_INIT,
                c = HERMES_ARGS_INIT, d = HERMES_ARGS_INIT;
    char h[4][23];
    hermes_args_int(&a, 1);
    hermes_args_str(&b, "1");
    hermes_args_double(&c, 1.0);
    hermes_args_str(&d, NULL);
    hash_of(&a, h[0]);
    hash_of(&b, h[1]);
    hash_of(&c, h[2]);
    hash_of(&d, h[3]);
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++)
            assert_string_not_equal(h[i], h[j]);
}

static void equal_arguments_hash_equally_and_to_22_characters(void **state)
{
    hermes_args a = HERMES_ARGS_INIT, b = HERMES_ARGS_INIT;
    char ha[23], hb[23];
    hermes_args_int(&a, -5);
    hermes_args_double(&a, -0.0);
    hermes_args_int(&b, -5);
    hermes_args_double(&b, 0.0);
    hash_of(&a, ha);
    hash_of(&b, hb);
    assert_string_equal(ha, hb);
    assert_int_equal(strlen(ha), 22);
    assert_null(strpbrk(ha, "+/="));
}

static void long_argument_lists_grow_beyond_the_inline_buffer(void **state)
{
    hermes_args a = HERMES_ARGS_INIT;
    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    hermes_args_str(&a, big);
    hermes_args_str(&a, big);
    assert_false(a.failed);
    assert_int_equal(a.len, 2 * (9 + 999));
    hermes_args_free(&a);
}

static void escaping_removes_spaces_and_control_characters(void **state)
{
    hm_buf b;
    hm_buf_init(&b);
    hm_buf_add_escaped(&b, "a b\n%c:d#", 9);
    assert_string_equal(b.data, "a%20b%0A%25c:d%23");
    hm_buf_free(&b);
}

static void long_keys_are_hashed_keeping_their_head(void **state)
{
    hm_buf b, c;
    hm_buf_init(&b);
    hm_buf_init(&c);
    hm_buf_adds(&b, "cache:entry:");
    hm_buf_adds(&c, "cache:entry:");
    for (int i = 0; i < 300; i++) {
        hm_buf_add(&b, "k", 1);
        hm_buf_add(&c, i == 299 ? "j" : "k", 1);
    }
    hm_key_fit(&b, 12, 250);
    hm_key_fit(&c, 12, 250);
    assert_true(b.len <= 250);
    assert_memory_equal(b.data, "cache:entry:#", 13);
    assert_string_not_equal(b.data, c.data);
    hm_buf_free(&b);
    hm_buf_free(&c);
}

static unsigned char *sample_record(size_t *n)
{
    const char *tags[] = {"avg", "math"};
    hermes_bytes vers[] = {{"v1", 2}, {"version-two", 11}};
    hm_record_in in = {2, tags, vers, 1234, 56, "payload\0!", 9};
    return hm_record_encode(&in, n);
}

static void record_round_trips(void **state)
{
    size_t n;
    unsigned char *r = sample_record(&n);
    hm_record rec;
    assert_int_equal(hm_record_decode(r, n, &rec), 0);
    assert_int_equal(rec.created_ms, 1234);
    assert_int_equal(rec.compute_us, 56);
    assert_int_equal(rec.payload_len, 9);
    assert_memory_equal(rec.payload, "payload\0!", 9);
    hermes_bytes tags[] = {{"avg", 3}, {"math", 4}};
    hermes_bytes same[] = {{"v1", 2}, {"version-two", 11}};
    hermes_bytes other[] = {{"v1", 2}, {"version-3", 9}};
    assert_int_equal(hm_record_stale_at(&rec, 2, tags, same), 0);
    assert_int_equal(hm_record_stale_at(&rec, 2, tags, other), 2);
    free(r);
}

static void every_truncation_of_a_record_is_rejected(void **state)
{
    size_t n;
    unsigned char *r = sample_record(&n);
    hm_record rec;
    for (size_t len = 0; len < n; len++)
        assert_int_equal(hm_record_decode(r, len, &rec), -1);
    free(r);
}

static void every_single_bit_flip_of_a_record_is_rejected(void **state)
{
    size_t n;
    unsigned char *r = sample_record(&n);
    hm_record rec;
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            r[i] ^= (unsigned char)(1u << bit);
            assert_int_equal(hm_record_decode(r, n, &rec), -1);
            r[i] ^= (unsigned char)(1u << bit);
        }
    }
    assert_int_equal(hm_record_decode(r, n, &rec), 0);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(argument_boundaries_are_part_of_the_key),
        cmocka_unit_test(argument_types_are_part_of_the_key),
        cmocka_unit_test(equal_arguments_hash_equally_and_to_22_characters),
        cmocka_unit_test(long_argument_lists_grow_beyond_the_inline_buffer),
        cmocka_unit_test(escaping_removes_spaces_and_control_characters),
        cmocka_unit_test(long_keys_are_hashed_keeping_their_head),
        cmocka_unit_test(record_round_trips),
        cmocka_unit_test(every_truncation_of_a_record_is_rejected),
        cmocka_unit_test(every_single_bit_flip_of_a_record_is_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
