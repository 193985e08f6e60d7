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
#include <xxhash.h>

#include <hermes/hermes.h>

#include "keys.h"
#include "record.h"

static void hash_of(hermes_args *a, char out[HM_HASH_B64_LEN + 1])
{
    hm_hash128_b64(hermes_args_data(a), hermes_args_len(a), out);
    out[HM_HASH_B64_LEN] = '\0';
    hermes_args_free(a);
}

/* The hit path's encoder gives the characters of the byte-wise one. */
static void hash_text_is_base64url_of_the_canonical_hash(void **state)
{
    unsigned char in[64];
    for (size_t n = 0; n < sizeof in; n++) {
        in[n] = (unsigned char)(n * 37 + 11);
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits(in, n));
        char want[HM_HASH_B64_LEN + 1], got[HM_HASH_B64_LEN + 1];
        assert_int_equal(hm_b64url(c.digest, sizeof c.digest, want),
                         HM_HASH_B64_LEN);
        hm_hash128_b64(in, n, got);
        assert_memory_equal(got, want, HM_HASH_B64_LEN);
    }
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
    assert_false(hermes_args_failed(&a));
    assert_int_equal(hermes_args_len(&a), 2 * (9 + 999));
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

static const hermes_bytes sample_key = {"cache:entry:avg:2:10", 20};

static unsigned char *sample_record(size_t *n)
{
    uint32_t ids[] = {hm_tag_id("avg", 3), hm_tag_id("math", 4)};
    uint64_t vers[] = {hm_version_id("v1", 2), hm_version_id("v-two", 5)};
    hm_record_in in = {
        .name = "baz",
        .name_len = 3,
        .ntags = 2,
        .tag_ids = ids,
        .version_ids = vers,
        .created_ms = 1234,
        .ttl_s = 60,
        .compute_us = 56,
        .payload = "payload\0!",
        .payload_len = 9,
    };
    return hm_record_encode(&in, sample_key, n);
}

static void record_round_trips(void **state)
{
    size_t n;
    unsigned char *r = sample_record(&n);
    assert_int_equal(n, hm_record_size(3, 2, 9));
    hm_record rec;
    assert_int_equal(hm_record_decode(r, n, sample_key, &rec), HM_RECORD_OK);
    assert_int_equal(rec.created_ms, 1234);
    assert_int_equal(rec.ttl_s, 60);
    assert_int_equal(hm_record_expiry_ms(&rec), 1234 + 60000);
    assert_int_equal(rec.compute_us, 56);
    assert_int_equal(rec.flags, 0);
    assert_int_equal(rec.name_len, 3);
    assert_memory_equal(rec.name, "baz", 3);
    assert_int_equal(rec.payload_len, 9);
    assert_memory_equal(rec.payload, "payload\0!", 9);
    uint32_t ids[] = {hm_tag_id("avg", 3), hm_tag_id("math", 4)};
    uint32_t other_ids[] = {hm_tag_id("avg", 3), hm_tag_id("maths", 5)};
    uint64_t same[] = {hm_version_id("v1", 2), hm_version_id("v-two", 5)};
    uint64_t other[] = {hm_version_id("v1", 2), hm_version_id("v-3", 3)};
    assert_true(hm_record_same_tags(&rec, 2, ids));
    assert_false(hm_record_same_tags(&rec, 2, other_ids));
    assert_false(hm_record_same_tags(&rec, 1, ids));
    assert_int_equal(hm_record_stale_at(&rec, same), 0);
    assert_int_equal(hm_record_stale_at(&rec, other), 2); /* tag 1 moved */
    uint32_t id;
    uint64_t ver;
    hm_record_tag(&rec, 1, &id, &ver);
    assert_int_equal(id, ids[1]);
    assert_true(ver == same[1]);
    free(r);
}

static void record_is_bound_to_its_key(void **state)
{
    size_t n;
    unsigned char *r = sample_record(&n);
    hm_record rec;
    hermes_bytes moved = {"cache:entry:avg:2:11", 20};
    hermes_bytes other_prefix = {"other:entry:avg:2:10", 20};
    assert_int_equal(hm_record_decode(r, n, moved, &rec), HM_RECORD_CORRUPT);
    assert_int_equal(hm_record_decode(r, n, other_prefix, &rec),
                     HM_RECORD_CORRUPT);
    assert_int_equal(hm_record_decode(r, n, sample_key, &rec), HM_RECORD_OK);
    free(r);
}

static void format_1_records_are_another_format(void **state)
{
    /* A format-1 record as that version wrote it: "HRM1", format 1, no
     * flags, no tags, times, payload length 2, "hi", a checksum. */
    static const unsigned char v1[] = "HRM1\x01\x00\x00\x00"
                                      "\xd2\x04\0\0\0\0\0\0"
                                      "\x38\0\0\0\x02\0\0\0hi\x01\x02\x03\x04";
    hm_record rec;
    assert_int_equal(hm_record_decode(v1, sizeof v1 - 1, sample_key, &rec),
                     HM_RECORD_OTHER_FORMAT);
    /* And a newer format than ours. */
    size_t n;
    unsigned char *r = sample_record(&n);
    r[1] = HM_RECORD_FORMAT + 1;
    assert_int_equal(hm_record_decode(r, n, sample_key, &rec),
                     HM_RECORD_OTHER_FORMAT);
    free(r);
}

static void record_of_two_tags_costs_47_bytes_beyond_its_payload(void **state)
{
    /* A function whose name is in its key, 2 tags, 100 bytes. */
    uint32_t ids[2] = {1, 2};
    uint64_t vers[2] = {3, 4};
    char payload[100] = {0};
    hm_record_in in = {.flags = HM_REC_NAME_IN_KEY,
                       .ntags = 2,
                       .tag_ids = ids,
                       .version_ids = vers,
                       .created_ms = HM_RECORD_MAX_CREATED,
                       .ttl_s = UINT32_MAX,
                       .compute_us = UINT32_MAX,
                       .payload = payload,
                       .payload_len = sizeof payload};
    size_t n;
    unsigned char *r = hm_record_encode(&in, sample_key, &n);
    assert_non_null(r);
    assert_int_equal(n, 147);
    hm_record rec;
    assert_int_equal(hm_record_decode(r, n, sample_key, &rec), HM_RECORD_OK);
    assert_int_equal(rec.flags, HM_REC_NAME_IN_KEY);
    assert_int_equal(rec.name_len, 0);
    assert_true(rec.created_ms == HM_RECORD_MAX_CREATED);
    assert_int_equal(rec.ttl_s, UINT32_MAX);
    free(r);
    /* Fields that do not fit are refused, never cut. */
    in.created_ms = HM_RECORD_MAX_CREATED + 1;
    assert_null(hm_record_encode(&in, sample_key, &n));
    in.created_ms = 0;
    in.ntags = 256;
    assert_null(hm_record_encode(&in, sample_key, &n));
}

static void every_truncation_of_a_record_is_rejected(void **state)
{
    size_t n;
    unsigned char *r = sample_record(&n);
    hm_record rec;
    for (size_t len = 0; len < n; len++)
        assert_int_not_equal(hm_record_decode(r, len, sample_key, &rec),
                             HM_RECORD_OK);
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
            assert_int_not_equal(hm_record_decode(r, n, sample_key, &rec),
                                 HM_RECORD_OK);
            r[i] ^= (unsigned char)(1u << bit);
        }
    }
    assert_int_equal(hm_record_decode(r, n, sample_key, &rec), HM_RECORD_OK);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hash_text_is_base64url_of_the_canonical_hash),
        cmocka_unit_test(argument_boundaries_are_part_of_the_key),
        cmocka_unit_test(argument_types_are_part_of_the_key),
        cmocka_unit_test(equal_arguments_hash_equally_and_to_22_characters),
        cmocka_unit_test(long_argument_lists_grow_beyond_the_inline_buffer),
        cmocka_unit_test(escaping_removes_spaces_and_control_characters),
        cmocka_unit_test(long_keys_are_hashed_keeping_their_head),
        cmocka_unit_test(record_round_trips),
        cmocka_unit_test(record_is_bound_to_its_key),
        cmocka_unit_test(format_1_records_are_another_format),
        cmocka_unit_test(record_of_two_tags_costs_47_bytes_beyond_its_payload),
        cmocka_unit_test(every_truncation_of_a_record_is_rejected),
        cmocka_unit_test(every_single_bit_flip_of_a_record_is_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
