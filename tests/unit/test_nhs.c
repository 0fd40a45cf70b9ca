/*
 * ps_nhs: normalisation and the modulus-11 check of NHS numbers.
 *
 * The valid numbers below were computed with python3 from the rule in
 * ps_nhs.h (weights 10..2, 11 - sum mod 11, 11 -> 0, 10 -> none), not with
 * this code. All numbers are from the 999 test range.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ps_nhs.h"

/* Valid numbers (python3: 999000001 -> 8, 999000002 -> 6, 999000005 -> 0,
 * 999123457 -> 8, 999424242 -> 3). */
static const char *const valid[] = {"9990000018", "9990000026", "9990000050", "9991234578",
                                    "9994242423"};

/* Nine-digit prefixes with no check digit (the remainder gives 10). */
static const char *const no_check[] = {"999000000", "999000014", "999123456"};

static void expect_valid(const char *input, const char *digits)
{
    char out[PS_NHS_DIGITS + 1];
    struct ps_error err;
    ps_error_clear(&err);
    memset(out, 'x', sizeof(out));
    ps_err_t rc = ps_nhs_normalise(input, strlen(input), out, &err);
    if (rc != PS_OK) {
        fail_msg("'%s' refused: %s", input, err.msg);
    }
    assert_string_equal(out, digits);
    assert_int_equal(err.code, PS_OK);
}

/* Refused with PS_ERR_NHS_INVALID, and the message repeats none of the input's
 * digits (as a run of three or more) nor the input itself. */
static void expect_invalid(const char *input, size_t len, const char *fragment)
{
    char out[PS_NHS_DIGITS + 1];
    struct ps_error err;
    ps_error_clear(&err);
    ps_err_t rc = ps_nhs_normalise(input, len, out, &err);
    if (rc != PS_ERR_NHS_INVALID) {
        fail_msg("'%.*s' gave %d, expected PS_ERR_NHS_INVALID", (int)len, input, (int)rc);
    }
    assert_int_equal(err.code, PS_ERR_NHS_INVALID);
    assert_true(err.msg[0] != '\0');
    if (fragment && !strstr(err.msg, fragment)) {
        fail_msg("message '%s' lacks '%s'", err.msg, fragment);
    }
    for (const char *p = err.msg; *p; p++) {
        if (*p >= '0' && *p <= '9' && p[1] >= '0' && p[1] <= '9' && p[2] >= '0' &&
            p[2] <= '9') {
            fail_msg("message '%s' has a run of digits", err.msg);
        }
    }
    if (len >= 3) {
        char copy[64];
        snprintf(copy, sizeof(copy), "%.*s", (int)len, input);
        assert_null(strstr(err.msg, copy));
    }
}

static void test_check_digit(void **state)
{
    (void)state;
    assert_int_equal(ps_nhs_check_digit("999000001"), 8);
    assert_int_equal(ps_nhs_check_digit("999000002"), 6);
    assert_int_equal(ps_nhs_check_digit("999000005"), 0); /* 11 becomes 0 */
    assert_int_equal(ps_nhs_check_digit("999123457"), 8);
    assert_int_equal(ps_nhs_check_digit("999424242"), 3);
    for (size_t i = 0; i < sizeof(no_check) / sizeof(no_check[0]); i++) {
        assert_int_equal(ps_nhs_check_digit(no_check[i]), -1);
    }
    assert_int_equal(ps_nhs_check_digit("99900000A"), -1);
}

static void test_valid_numbers(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        expect_valid(valid[i], valid[i]);
    }
}

static void test_separators_between_digits(void **state)
{
    (void)state;
    expect_valid("999 000 0018", "9990000018");
    expect_valid("999-000-0018", "9990000018");
    expect_valid("999 123-4578", "9991234578");
    expect_valid("9 9 9 4 2 4 2 4 2 3", "9994242423");
    /* Not NUL-terminated: only len bytes count. */
    char out[PS_NHS_DIGITS + 1];
    assert_int_equal(ps_nhs_normalise("9990000018999", 10, out, NULL), PS_OK);
    assert_string_equal(out, "9990000018");
}

static void test_leading_trailing_separators(void **state)
{
    (void)state;
    const char *bad[] = {" 9990000018", "-9990000018", "9990000018 ", "9990000018-",
                         " 999 000 0018 ", "999 000 0018\t"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_invalid(bad[i], strlen(bad[i]), NULL);
    }
}

static void test_wrong_length(void **state)
{
    (void)state;
    expect_invalid("999000001", 9, "ten digits");        /* nine digits */
    expect_invalid("999 000 001", 11, "ten digits");
    expect_invalid("99900000180", 11, "more than ten");  /* eleven digits */
    expect_invalid("999 000 0018 0", 14, "more than ten");
    expect_invalid("", 0, "ten digits");
}

static void test_letters_refused(void **state)
{
    (void)state;
    expect_invalid("999000001A", 10, "character");
    expect_invalid("A990000018", 10, "character");
    expect_invalid("999.000.0018", 12, "character");
    expect_invalid("999/000/0018", 12, "character");
    expect_invalid("999\0000000018", 11, "character");
    expect_invalid("９９９0000018", strlen("９９９0000018"), "character"); /* full-width digits */
}

static void test_wrong_check_digit(void **state)
{
    (void)state;
    /* Each valid number with its check digit changed to every other value. */
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        char bad[PS_NHS_DIGITS + 1];
        memcpy(bad, valid[i], sizeof(bad));
        for (int d = 0; d < 10; d++) {
            if ('0' + d == valid[i][9]) {
                continue;
            }
            bad[9] = (char)('0' + d);
            expect_invalid(bad, 10, "modulus 11");
        }
    }
}

static void test_prefix_without_check_digit(void **state)
{
    (void)state;
    /* No tenth digit makes these valid: 999000000x, 999000014x, 999123456x. */
    for (size_t i = 0; i < sizeof(no_check) / sizeof(no_check[0]); i++) {
        for (int d = 0; d < 10; d++) {
            char bad[PS_NHS_DIGITS + 1];
            snprintf(bad, sizeof(bad), "%s%d", no_check[i], d);
            expect_invalid(bad, 10, "modulus 11");
        }
    }
}

/* An independent modulus-11 for the exhaustive sweep below. */
static int reference_check(uint32_t serial)
{
    char nine[10];
    snprintf(nine, sizeof(nine), "999%06u", (unsigned)serial);
    int sum = 0;
    for (int i = 0; i < 9; i++) {
        sum += (nine[i] - '0') * (10 - i);
    }
    int r = (11 - sum % 11) % 11;
    return r == 10 ? -1 : r;
}

static void test_make_test_number(void **state)
{
    (void)state;
    char out[PS_NHS_DIGITS + 1];
    /* Serial 0 has no check digit: moves to 1. */
    assert_int_equal(ps_nhs_make_test_number(0, out), 1);
    assert_string_equal(out, "9990000018");
    assert_int_equal(ps_nhs_make_test_number(1, out), 1);
    assert_string_equal(out, "9990000018");
    assert_int_equal(ps_nhs_make_test_number(2, out), 2);
    assert_string_equal(out, "9990000026");
    assert_int_equal(ps_nhs_make_test_number(14, out), 15);
    assert_int_equal(ps_nhs_make_test_number(123456, out), 123457);
    assert_string_equal(out, "9991234578");
    assert_int_equal(ps_nhs_make_test_number(424242, out), 424242);
    assert_string_equal(out, "9994242423");

    /* Every serial in steps: always ten digits, 999, valid, and the serial
     * used is the first one at or after the asked one that has a digit. */
    size_t skipped = 0;
    for (uint32_t serial = 0; serial < 1000000; serial += 7) {
        memset(out, 'x', sizeof(out));
        uint32_t used = ps_nhs_make_test_number(serial, out);
        uint32_t want = serial;
        while (reference_check(want) < 0) {
            want++;
        }
        if (used != want) {
            fail_msg("serial %u: used %u, expected %u", (unsigned)serial, (unsigned)used,
                     (unsigned)want);
        }
        skipped += used != serial;
        assert_int_equal(strlen(out), 10);
        assert_memory_equal(out, "999", 3);
        char nine[10];
        snprintf(nine, sizeof(nine), "999%06u", (unsigned)used);
        assert_memory_equal(out, nine, 9);
        assert_int_equal(out[9] - '0', reference_check(used));
        char norm[PS_NHS_DIGITS + 1];
        assert_int_equal(ps_nhs_normalise(out, 10, norm, NULL), PS_OK);
    }
    /* About one prefix in eleven has no check digit. */
    assert_true(skipped > 10000 && skipped < 15000);
}

static void test_make_test_number_wraps(void **state)
{
    (void)state;
    char out[PS_NHS_DIGITS + 1];
    /* The largest serial: use it or wrap to the start of the range. */
    uint32_t used = ps_nhs_make_test_number(999999, out);
    assert_true(used == 999999 || used < 10);
    assert_memory_equal(out, "999", 3);
    assert_int_equal(ps_nhs_normalise(out, 10, (char[PS_NHS_DIGITS + 1]){0}, NULL), PS_OK);
}

static void test_message_never_has_input(void **state)
{
    (void)state;
    /* Distinctive digit runs in every failing shape. */
    expect_invalid("9994242424", 10, NULL);
    expect_invalid("999424242", 9, NULL);
    expect_invalid("999424242377", 12, NULL);
    expect_invalid("999424242X", 10, NULL);
    expect_invalid("999 424 2423 ", 13, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_digit),
        cmocka_unit_test(test_valid_numbers),
        cmocka_unit_test(test_separators_between_digits),
        cmocka_unit_test(test_leading_trailing_separators),
        cmocka_unit_test(test_wrong_length),
        cmocka_unit_test(test_letters_refused),
        cmocka_unit_test(test_wrong_check_digit),
        cmocka_unit_test(test_prefix_without_check_digit),
        cmocka_unit_test(test_make_test_number),
        cmocka_unit_test(test_make_test_number_wraps),
        cmocka_unit_test(test_message_never_has_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
