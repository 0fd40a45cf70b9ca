/*
 * Confluent and single-object framing: parse, write, round trip, and every
 * malformed header we can think of.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <string.h>

#include "ps_buf.h"
#include "ps_frame.h"

static void test_confluent_parse(void **state)
{
    (void)state;
    const uint8_t bytes[] = {0x00, 0x00, 0x01, 0x02, 0x03, 0xAA, 0xBB};
    struct ps_frame frame;
    struct ps_error err;
    ps_error_clear(&err);
    assert_int_equal(ps_frame_parse(bytes, sizeof(bytes), &frame, &err), PS_OK);
    assert_int_equal(frame.format, PS_FRAME_CONFLUENT);
    assert_int_equal(frame.schema_id, 0x00010203);
    assert_ptr_equal(frame.payload, bytes + 5);
    assert_int_equal(frame.payload_len, 2);
}

static void test_confluent_high_id_and_empty_datum(void **state)
{
    (void)state;
    /* Big-endian, unsigned: FF FF FF FE is 4294967294, not -2. A datum may
     * be zero bytes long. */
    const uint8_t bytes[] = {0x00, 0xFF, 0xFF, 0xFF, 0xFE};
    struct ps_frame frame;
    assert_int_equal(ps_frame_parse(bytes, sizeof(bytes), &frame, NULL), PS_OK);
    assert_true(frame.schema_id == UINT32_C(4294967294));
    assert_int_equal(frame.payload_len, 0);
    assert_ptr_equal(frame.payload, bytes + 5);
}

static void test_single_object_parse(void **state)
{
    (void)state;
    const uint8_t bytes[] = {0xC3, 0x01, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x81, 0x2A};
    struct ps_frame frame;
    assert_int_equal(ps_frame_parse(bytes, sizeof(bytes), &frame, NULL), PS_OK);
    assert_int_equal(frame.format, PS_FRAME_SINGLE_OBJECT);
    /* Little-endian: the first fingerprint byte is the least significant. */
    assert_true(frame.fingerprint == UINT64_C(0x8102030405060708));
    assert_ptr_equal(frame.payload, bytes + 10);
    assert_int_equal(frame.payload_len, 1);
}

static void test_single_object_spec_fingerprint(void **state)
{
    (void)state;
    /* The fingerprint of "null" from the Avro test vectors
     * (7195948357588979594 = 0x63dd24e7cc258f8a), as Java writes it. */
    const uint8_t bytes[] = {0xC3, 0x01, 0x8a, 0x8f, 0x25, 0xcc, 0xe7, 0x24, 0xdd, 0x63};
    struct ps_frame frame;
    assert_int_equal(ps_frame_parse(bytes, sizeof(bytes), &frame, NULL), PS_OK);
    assert_true(frame.fingerprint == UINT64_C(7195948357588979594));
    assert_int_equal(frame.payload_len, 0);
}

static void expect_frame_error(const uint8_t *bytes, size_t len, ps_err_t want,
                               const char *fragment)
{
    struct ps_frame frame;
    memset(&frame, 0x5A, sizeof(frame));
    struct ps_frame before = frame;
    struct ps_error err;
    ps_error_clear(&err);
    assert_int_equal(ps_frame_parse(bytes, len, &frame, &err), want);
    assert_int_equal(err.code, want);
    /* Output untouched on failure. */
    assert_memory_equal(&frame, &before, sizeof(frame));
    if (!strstr(err.msg, fragment)) {
        fail_msg("message '%s' lacks '%s'", err.msg, fragment);
    }
}

static void test_malformed_frames(void **state)
{
    (void)state;
    const uint8_t empty[1] = {0};
    expect_frame_error(empty, 0, PS_ERR_EMPTY, "empty");
    expect_frame_error(NULL, 0, PS_ERR_EMPTY, "empty");

    const uint8_t wrong_magic[] = {0x7B, 0x22, 0x6E, 0x22, 0x3A, 0x31, 0x7D};
    expect_frame_error(wrong_magic, sizeof(wrong_magic), PS_ERR_FRAME, "neither");
    const uint8_t one_byte_wrong[] = {0x01};
    expect_frame_error(one_byte_wrong, 1, PS_ERR_FRAME, "neither");

    const uint8_t confluent_short[] = {0x00, 0x00, 0x00, 0x01};
    for (size_t len = 1; len <= sizeof(confluent_short); len++) {
        expect_frame_error(confluent_short, len, PS_ERR_FRAME, "Confluent header cut short");
    }

    const uint8_t single_short[] = {0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7};
    for (size_t len = 1; len <= sizeof(single_short); len++) {
        expect_frame_error(single_short, len, PS_ERR_FRAME, "single-object header cut short");
    }

    const uint8_t c3_wrong_second[] = {0xC3, 0x02, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    expect_frame_error(c3_wrong_second, sizeof(c3_wrong_second), PS_ERR_FRAME, "version 1");
    const uint8_t c3_zero_second[] = {0xC3, 0x00, 1, 2, 3, 4, 5, 6, 7, 8};
    expect_frame_error(c3_zero_second, sizeof(c3_zero_second), PS_ERR_FRAME, "version 1");
    /* Reversed marker bytes are not single-object either. */
    const uint8_t reversed[] = {0x01, 0xC3, 1, 2, 3, 4, 5, 6, 7, 8};
    expect_frame_error(reversed, sizeof(reversed), PS_ERR_FRAME, "neither");
}

static void test_error_names_no_payload_byte(void **state)
{
    (void)state;
    /* A payload of recognisable bytes: the message must not show any of
     * them, in hex or as text. */
    const uint8_t payload[] = {'9', '4', '3', '4', '7', '6', '5', '9', '1', '9'};
    struct ps_frame frame;
    struct ps_error err;
    ps_error_clear(&err);
    assert_int_equal(ps_frame_parse(payload, sizeof(payload), &frame, &err), PS_ERR_FRAME);
    assert_null(strstr(err.msg, "39"));
    assert_null(strstr(err.msg, "943"));
    assert_null(strstr(err.msg, "0x"));
}

static void test_invalid_arguments(void **state)
{
    (void)state;
    const uint8_t bytes[] = {0x00, 0, 0, 0, 1};
    struct ps_frame frame;
    assert_int_equal(ps_frame_parse(bytes, sizeof(bytes), NULL, NULL), PS_ERR_INVALID);
    assert_int_equal(ps_frame_parse(NULL, 5, &frame, NULL), PS_ERR_INVALID);
    assert_int_equal(ps_frame_write_confluent(1, NULL), PS_ERR_INVALID);
    assert_int_equal(ps_frame_write_single_object(1, NULL), PS_ERR_INVALID);
}

static void test_write_confluent(void **state)
{
    (void)state;
    struct ps_buf buf;
    ps_buf_init(&buf, 0);
    assert_int_equal(ps_frame_write_confluent(0x01020304, &buf), PS_OK);
    const uint8_t want[] = {0x00, 0x01, 0x02, 0x03, 0x04};
    assert_int_equal(buf.len, sizeof(want));
    assert_memory_equal(buf.data, want, sizeof(want));

    /* The header is appended: a datum written after it follows it. */
    assert_int_equal(ps_buf_append(&buf, "\x02", 1), PS_OK);
    struct ps_frame frame;
    assert_int_equal(ps_frame_parse(buf.data, buf.len, &frame, NULL), PS_OK);
    assert_int_equal(frame.schema_id, 0x01020304);
    assert_int_equal(frame.payload_len, 1);
    assert_int_equal(frame.payload[0], 0x02);
    ps_buf_free(&buf);
}

static void test_write_single_object(void **state)
{
    (void)state;
    struct ps_buf buf;
    ps_buf_init(&buf, 0);
    assert_int_equal(ps_frame_write_single_object(UINT64_C(7195948357588979594), &buf), PS_OK);
    const uint8_t want[] = {0xC3, 0x01, 0x8a, 0x8f, 0x25, 0xcc, 0xe7, 0x24, 0xdd, 0x63};
    assert_int_equal(buf.len, sizeof(want));
    assert_memory_equal(buf.data, want, sizeof(want));
    ps_buf_free(&buf);
}

static void test_round_trip(void **state)
{
    (void)state;
    const uint32_t ids[] = {0, 1, 255, 256, 65536, 0x7FFFFFFF, 0xFFFFFFFF};
    const uint64_t fps[] = {0, 1, UINT64_C(0xc15d213aa4d7a795), UINT64_C(0xFFFFFFFFFFFFFFFF),
                            UINT64_C(0x0100000000000000)};
    struct ps_buf buf;
    ps_buf_init(&buf, 0);
    struct ps_frame frame;
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        ps_buf_reset(&buf);
        assert_int_equal(ps_frame_write_confluent(ids[i], &buf), PS_OK);
        assert_int_equal(ps_frame_parse(buf.data, buf.len, &frame, NULL), PS_OK);
        assert_int_equal(frame.format, PS_FRAME_CONFLUENT);
        assert_true(frame.schema_id == ids[i]);
    }
    for (size_t i = 0; i < sizeof(fps) / sizeof(fps[0]); i++) {
        ps_buf_reset(&buf);
        assert_int_equal(ps_frame_write_single_object(fps[i], &buf), PS_OK);
        assert_int_equal(ps_frame_parse(buf.data, buf.len, &frame, NULL), PS_OK);
        assert_int_equal(frame.format, PS_FRAME_SINGLE_OBJECT);
        assert_true(frame.fingerprint == fps[i]);
    }
    ps_buf_free(&buf);
}

static void test_write_respects_buffer_limit(void **state)
{
    (void)state;
    struct ps_buf buf;
    ps_buf_init(&buf, 8);
    assert_int_equal(ps_frame_write_confluent(7, &buf), PS_OK);
    /* Five more bytes would pass the maximum of 8: refused, buffer kept. */
    assert_int_equal(ps_frame_write_confluent(7, &buf), PS_ERR_LIMIT);
    assert_int_equal(buf.len, 5);
    ps_buf_reset(&buf);
    assert_int_equal(ps_frame_write_single_object(7, &buf), PS_ERR_LIMIT);
    assert_int_equal(buf.len, 0);
    ps_buf_free(&buf);
}

static void test_format_names(void **state)
{
    (void)state;
    assert_string_equal(ps_frame_format_name(PS_FRAME_CONFLUENT), "confluent");
    assert_string_equal(ps_frame_format_name(PS_FRAME_SINGLE_OBJECT), "single_object");
    assert_string_equal(ps_frame_format_name((enum ps_frame_format)99), "unknown");
    assert_int_equal(ps_frame_format_parse("confluent"), PS_FRAME_CONFLUENT);
    assert_int_equal(ps_frame_format_parse("single_object"), PS_FRAME_SINGLE_OBJECT);
    assert_int_equal(ps_frame_format_parse("single-object"), -1);
    assert_int_equal(ps_frame_format_parse("Confluent"), -1);
    assert_int_equal(ps_frame_format_parse(""), -1);
    assert_int_equal(ps_frame_format_parse(NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_confluent_parse),
        cmocka_unit_test(test_confluent_high_id_and_empty_datum),
        cmocka_unit_test(test_single_object_parse),
        cmocka_unit_test(test_single_object_spec_fingerprint),
        cmocka_unit_test(test_malformed_frames),
        cmocka_unit_test(test_error_names_no_payload_byte),
        cmocka_unit_test(test_invalid_arguments),
        cmocka_unit_test(test_write_confluent),
        cmocka_unit_test(test_write_single_object),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_write_respects_buffer_limit),
        cmocka_unit_test(test_format_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
