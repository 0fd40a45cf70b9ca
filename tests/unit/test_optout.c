/*
 * ps_optout: the national data opt-out state.
 *
 * Every number here is from the artificial 999 range. The fixed ones were
 * computed with python3 from the modulus-11 rule (9990001006, 9990001014,
 * ... are the valid numbers from 999000100 upwards); the bulk ones come from
 * ps_nhs_make_test_number.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ps_nhs.h"
#include "ps_optout.h"

/* Valid (python3). */
#define NHS_A "9990001006"
#define NHS_B "9990001014"
#define NHS_C "9990001022"
#define NHS_D "9990001030"
#define NHS_E "9990001049"
#define NHS_F "9990001057"
/* 999000100 with the wrong check digit. */
#define NHS_BAD_CHECK "9990001007"

#define BULK 100000

static void assert_ok(ps_err_t rc, const struct ps_error *err)
{
    if (rc != PS_OK) {
        fail_msg("%s: %s", ps_err_name(rc), err->msg);
    }
}

static int cleared(const struct ps_optout *optout, const char *nhs)
{
    return ps_optout_cleared(optout, nhs, strlen(nhs));
}

/* A message must never carry a run of three or more digits (a number or a
 * fragment of one); counts are written with fewer digits in these tests. */
static void assert_no_digit_run(const char *msg)
{
    for (const char *p = msg; *p; p++) {
        if (p[0] >= '0' && p[0] <= '9' && p[1] >= '0' && p[1] <= '9' && p[2] >= '0' &&
            p[2] <= '9') {
            fail_msg("message has a run of digits: %s", msg);
        }
    }
}

/* Writes text to a fresh temporary file; the caller unlinks path. */
static void write_temp(char path[64], const char *text, size_t len)
{
    snprintf(path, 64, "/tmp/ps-optout-test-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
}

/* ------------------------------------------------------------------ tests */

static void test_forms(void **state)
{
    (void)state;
    struct ps_error err = {0};
    struct ps_optout *optout = NULL;

    /* Cleared form: listed numbers are cleared, nothing else. */
    assert_ok(ps_optout_new(PS_OPTOUT_CLEARED, &optout, &err), &err);
    assert_int_equal(ps_optout_form(optout), PS_OPTOUT_CLEARED);
    assert_int_equal(ps_optout_count(optout), 0);
    assert_int_equal(cleared(optout, NHS_A), 0);
    assert_ok(ps_optout_add(optout, NHS_A, strlen(NHS_A), &err), &err);
    assert_int_equal(cleared(optout, NHS_A), 1);
    /* The same number in another notation is the same number. */
    assert_int_equal(cleared(optout, "999 000 1006"), 1);
    assert_int_equal(cleared(optout, "999-000-1006"), 1);
    assert_int_equal(cleared(optout, NHS_B), 0);
    assert_int_equal(cleared(optout, NHS_BAD_CHECK), 0);
    assert_int_equal(cleared(optout, ""), 0);
    assert_int_equal(ps_optout_cleared(optout, NULL, 0), 0);
    ps_optout_destroy(optout);
    optout = NULL;

    /* Opted-out form: listed numbers are withheld, other valid ones cleared,
     * invalid or missing ones never. */
    assert_ok(ps_optout_new(PS_OPTOUT_OPTED_OUT, &optout, &err), &err);
    assert_int_equal(ps_optout_form(optout), PS_OPTOUT_OPTED_OUT);
    assert_int_equal(cleared(optout, NHS_A), 1);
    assert_ok(ps_optout_add(optout, NHS_A, strlen(NHS_A), &err), &err);
    assert_int_equal(cleared(optout, NHS_A), 0);
    assert_int_equal(cleared(optout, "999 000 1006"), 0);
    assert_int_equal(cleared(optout, NHS_B), 1);
    assert_int_equal(cleared(optout, NHS_BAD_CHECK), 0);
    assert_int_equal(cleared(optout, "99900010"), 0);
    assert_int_equal(ps_optout_cleared(optout, NULL, 0), 0);
    ps_optout_destroy(optout);

    /* No state: nothing is cleared (fail closed). */
    assert_int_equal(ps_optout_cleared(NULL, NHS_A, strlen(NHS_A)), 0);
    assert_int_equal(ps_optout_count(NULL), 0);
    assert_int_equal(ps_optout_as_of(NULL), 0);
    assert_int_equal(ps_optout_fresh(NULL, 1000, 1000), 0);
    ps_optout_destroy(NULL);

    optout = NULL;
    assert_int_equal(ps_optout_new((enum ps_optout_form)7, &optout, &err), PS_ERR_INVALID);
    assert_null(optout);
    assert_int_equal(ps_optout_new(PS_OPTOUT_CLEARED, NULL, &err), PS_ERR_INVALID);
}

static void test_add_remove(void **state)
{
    (void)state;
    struct ps_error err = {0};
    struct ps_optout *optout = NULL;
    assert_ok(ps_optout_new(PS_OPTOUT_CLEARED, &optout, &err), &err);

    const char *nums[] = {NHS_A, NHS_B, NHS_C, NHS_D};
    for (size_t i = 0; i < 4; i++) {
        assert_ok(ps_optout_add(optout, nums[i], strlen(nums[i]), &err), &err);
    }
    /* Adding again (a replayed update) changes nothing. */
    assert_ok(ps_optout_add(optout, "999 000 1014", 12, &err), &err);
    assert_int_equal(ps_optout_count(optout), 4);

    assert_ok(ps_optout_remove(optout, NHS_B, strlen(NHS_B), &err), &err);
    assert_int_equal(ps_optout_count(optout), 3);
    assert_int_equal(cleared(optout, NHS_B), 0);
    assert_int_equal(cleared(optout, NHS_A), 1);
    assert_int_equal(cleared(optout, NHS_C), 1);
    assert_int_equal(cleared(optout, NHS_D), 1);
    /* Removing what is not held is fine (a tombstone replayed). */
    assert_ok(ps_optout_remove(optout, NHS_B, strlen(NHS_B), &err), &err);
    assert_ok(ps_optout_remove(optout, NHS_E, strlen(NHS_E), &err), &err);
    assert_int_equal(ps_optout_count(optout), 3);
    assert_ok(ps_optout_add(optout, NHS_B, strlen(NHS_B), &err), &err);
    assert_int_equal(cleared(optout, NHS_B), 1);
    assert_int_equal(ps_optout_count(optout), 4);

    /* Invalid numbers are refused, and the message repeats none of them. */
    const char *bad[] = {NHS_BAD_CHECK, "99900010061", "999000100", "999O001006", " 9990001006"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ps_error_clear(&err);
        assert_int_equal(ps_optout_add(optout, bad[i], strlen(bad[i]), &err), PS_ERR_NHS_INVALID);
        assert_true(err.msg[0] != '\0');
        assert_no_digit_run(err.msg);
        ps_error_clear(&err);
        assert_int_equal(ps_optout_remove(optout, bad[i], strlen(bad[i]), &err),
                         PS_ERR_NHS_INVALID);
        assert_no_digit_run(err.msg);
    }
    assert_int_equal(ps_optout_add(optout, NULL, 0, &err), PS_ERR_NHS_INVALID);
    assert_int_equal(ps_optout_add(NULL, NHS_A, 10, &err), PS_ERR_INVALID);
    assert_int_equal(ps_optout_remove(NULL, NHS_A, 10, &err), PS_ERR_INVALID);
    assert_int_equal(ps_optout_count(optout), 4);
    ps_optout_destroy(optout);
}

/* 100k numbers: growth from the smallest table, then removal of every third
 * (backward-shift deletion must keep every other probe path intact), then
 * re-adding them. */
static void test_bulk(void **state)
{
    (void)state;
    struct ps_error err = {0};
    struct ps_optout *optout = NULL;
    assert_ok(ps_optout_new(PS_OPTOUT_OPTED_OUT, &optout, &err), &err);

    static char nums[BULK][PS_NHS_DIGITS + 1];
    uint32_t serial = 0;
    for (size_t i = 0; i < BULK; i++) {
        serial = ps_nhs_make_test_number(serial, nums[i]) + 1;
        assert_ok(ps_optout_add(optout, nums[i], PS_NHS_DIGITS, &err), &err);
    }
    assert_int_equal(ps_optout_count(optout), BULK);
    /* A valid number never added is cleared in this form. */
    char other[PS_NHS_DIGITS + 1];
    ps_nhs_make_test_number(serial, other);
    assert_int_equal(cleared(optout, other), 1);
    for (size_t i = 0; i < BULK; i++) {
        assert_int_equal(cleared(optout, nums[i]), 0);
    }

    for (size_t i = 0; i < BULK; i += 3) {
        assert_ok(ps_optout_remove(optout, nums[i], PS_NHS_DIGITS, &err), &err);
    }
    size_t removed = (BULK + 2) / 3;
    assert_int_equal(ps_optout_count(optout), BULK - removed);
    for (size_t i = 0; i < BULK; i++) {
        assert_int_equal(cleared(optout, nums[i]), i % 3 == 0 ? 1 : 0);
    }
    for (size_t i = 0; i < BULK; i += 3) {
        assert_ok(ps_optout_add(optout, nums[i], PS_NHS_DIGITS, &err), &err);
    }
    assert_int_equal(ps_optout_count(optout), BULK);
    for (size_t i = 0; i < BULK; i++) {
        assert_int_equal(cleared(optout, nums[i]), 0);
    }

    /* No clear number in the table: no run of ten ASCII digits anywhere in
     * it (random digests hold one with odds of about 10^-8 for the whole
     * table), and exactly one non-zero slot per number held. */
    size_t size = 0;
    const uint8_t *table = ps_optout_table(optout, &size);
    assert_non_null(table);
    assert_true(size >= BULK * 16);
    size_t run = 0;
    size_t used = 0;
    static const uint8_t zero[16];
    for (size_t i = 0; i < size; i++) {
        run = table[i] >= '0' && table[i] <= '9' ? run + 1 : 0;
        assert_true(run < PS_NHS_DIGITS);
    }
    for (size_t s = 0; s < size / 16; s++) {
        if (memcmp(table + 16 * s, zero, 16) != 0) {
            used++;
        }
    }
    assert_int_equal(used, BULK);
    ps_optout_destroy(optout);

    size = 1;
    assert_null(ps_optout_table(NULL, &size));
    assert_int_equal(size, 0);
}

/* Two states made in one process use different keys: their tables cannot be
 * compared (nothing matches across processes either). */
static void test_keys_differ(void **state)
{
    (void)state;
    struct ps_error err = {0};
    struct ps_optout *a = NULL;
    struct ps_optout *b = NULL;
    assert_ok(ps_optout_new(PS_OPTOUT_CLEARED, &a, &err), &err);
    assert_ok(ps_optout_new(PS_OPTOUT_CLEARED, &b, &err), &err);
    assert_ok(ps_optout_add(a, NHS_A, 10, &err), &err);
    assert_ok(ps_optout_add(b, NHS_A, 10, &err), &err);
    size_t sa = 0;
    size_t sb = 0;
    const uint8_t *ta = ps_optout_table(a, &sa);
    const uint8_t *tb = ps_optout_table(b, &sb);
    assert_int_equal(sa, sb);
    static const uint8_t zero[16];
    const uint8_t *da = NULL;
    const uint8_t *db = NULL;
    for (size_t s = 0; s < sa / 16; s++) {
        if (memcmp(ta + 16 * s, zero, 16) != 0) {
            da = ta + 16 * s;
        }
        if (memcmp(tb + 16 * s, zero, 16) != 0) {
            db = tb + 16 * s;
        }
    }
    assert_non_null(da);
    assert_non_null(db);
    assert_memory_not_equal(da, db, 16);
    ps_optout_destroy(a);
    ps_optout_destroy(b);
}

static void test_load_file(void **state)
{
    (void)state;
    struct ps_error err = {0};
    struct ps_optout *optout = NULL;
    assert_ok(ps_optout_new(PS_OPTOUT_CLEARED, &optout, &err), &err);

    /* BOM, comments, CRLF, trailing commas (with spaces), blank lines,
     * grouped notation, and a last line with no line end. */
    static const char text[] = "\xEF\xBB\xBF" NHS_A ",\r\n"
                               "# a comment line\r\n"
                               "# a comment longer than any number line could be, which "
                               "is still a comment and not an invalid line\r\n"
                               "   # an indented comment\r\n"
                               "\r\n"
                               "  \t \r\n"
                               NHS_B " , \r\n"
                               "999 000 1022,\r\n"
                               "999-000-1030\n"
                               NHS_BAD_CHECK ",\r\n"         /* invalid: check digit */
                               "99900010,\r\n"               /* invalid: too short */
                               "9990001049,,\r\n"            /* invalid: two commas */
                               "abc\r\n"                     /* invalid: not a number */
                               "99900010579990001057999000105799900010579990001057999000105799"
                               "90001057\r\n"                /* invalid: longer than a line */
                               NHS_F;
    char path[64];
    write_temp(path, text, sizeof(text) - 1);
    size_t invalid = 99;
    ps_err_t rc = ps_optout_load_file(optout, path, &invalid, &err);
    assert_ok(rc, &err);
    assert_int_equal(invalid, 5);
    assert_int_equal(ps_optout_count(optout), 5);
    assert_int_equal(cleared(optout, NHS_A), 1);
    assert_int_equal(cleared(optout, NHS_B), 1);
    assert_int_equal(cleared(optout, NHS_C), 1);
    assert_int_equal(cleared(optout, NHS_D), 1);
    assert_int_equal(cleared(optout, NHS_E), 0);
    assert_int_equal(cleared(optout, NHS_F), 1);
    /* A second file adds to what is held; invalid_p may be NULL. */
    assert_ok(ps_optout_load_file(optout, path, NULL, &err), &err);
    assert_int_equal(ps_optout_count(optout), 5);
    unlink(path);

    /* An empty file loads nothing. */
    write_temp(path, "", 0);
    assert_ok(ps_optout_load_file(optout, path, &invalid, &err), &err);
    assert_int_equal(invalid, 0);
    unlink(path);

    /* Failures leave the state as it was and name the file, never a line. */
    ps_error_clear(&err);
    assert_int_equal(ps_optout_load_file(optout, "/nonexistent/optout.dat", &invalid, &err),
                     PS_ERR_IO);
    assert_non_null(strstr(err.msg, "/nonexistent/optout.dat"));
    /* A directory opens but cannot be read. */
    assert_int_equal(ps_optout_load_file(optout, "/tmp", &invalid, &err), PS_ERR_IO);
    assert_int_equal(ps_optout_count(optout), 5);
    assert_int_equal(ps_optout_load_file(NULL, "/tmp", &invalid, &err), PS_ERR_INVALID);
    assert_int_equal(ps_optout_load_file(optout, NULL, &invalid, &err), PS_ERR_INVALID);
    ps_optout_destroy(optout);
}

/* The example files shipped in policy/optout/ load as docs/OPTOUT.md says. */
static void test_example_files(void **state)
{
    (void)state;
    struct ps_error err = {0};
    const char *dir = getenv("PS_SOURCE_DIR");
    char path[1024];
    size_t invalid = 99;
    struct ps_optout *optout = NULL;

    assert_ok(ps_optout_new(PS_OPTOUT_CLEARED, &optout, &err), &err);
    snprintf(path, sizeof(path), "%s/policy/optout/cleared.example.dat", dir ? dir : ".");
    assert_ok(ps_optout_load_file(optout, path, &invalid, &err), &err);
    assert_int_equal(invalid, 0);
    assert_int_equal(ps_optout_count(optout), 8);
    assert_int_equal(cleared(optout, NHS_A), 1);
    assert_int_equal(cleared(optout, "9990009007"), 0);
    ps_optout_destroy(optout);

    assert_ok(ps_optout_new(PS_OPTOUT_OPTED_OUT, &optout, &err), &err);
    snprintf(path, sizeof(path), "%s/policy/optout/opted_out.example.dat", dir ? dir : ".");
    assert_ok(ps_optout_load_file(optout, path, &invalid, &err), &err);
    assert_int_equal(invalid, 0);
    assert_int_equal(ps_optout_count(optout), 4);
    assert_int_equal(cleared(optout, "9990009007"), 0);
    assert_int_equal(cleared(optout, NHS_A), 1);
    ps_optout_destroy(optout);
}

/* A file far larger than the reader's buffer: lines straddle reads. */
static void test_load_large_file(void **state)
{
    (void)state;
    struct ps_error err = {0};
    struct ps_optout *optout = NULL;
    size_t cap = (size_t)BULK * 16;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t len = 0;
    uint32_t serial = 500000;
    for (size_t i = 0; i < BULK; i++) {
        char nhs[PS_NHS_DIGITS + 1];
        serial = ps_nhs_make_test_number(serial, nhs) + 1;
        len += (size_t)snprintf(text + len, cap - len, "%s,\r\n", nhs);
    }
    char path[64];
    write_temp(path, text, len);
    free(text);
    assert_ok(ps_optout_new(PS_OPTOUT_OPTED_OUT, &optout, &err), &err);
    size_t invalid = 99;
    assert_ok(ps_optout_load_file(optout, path, &invalid, &err), &err);
    unlink(path);
    assert_int_equal(invalid, 0);
    assert_int_equal(ps_optout_count(optout), BULK);
    char nhs[PS_NHS_DIGITS + 1];
    ps_nhs_make_test_number(500000, nhs);
    assert_int_equal(cleared(optout, nhs), 0);
    ps_optout_destroy(optout);
}

static void test_freshness(void **state)
{
    (void)state;
    struct ps_error err = {0};
    struct ps_optout *optout = NULL;
    assert_ok(ps_optout_new(PS_OPTOUT_CLEARED, &optout, &err), &err);
    const int64_t day = 86400000;
    const int64_t t = 1780000000000; /* 2026-05-28 */

    /* No date yet: never fresh. */
    assert_int_equal(ps_optout_as_of(optout), 0);
    assert_int_equal(ps_optout_fresh(optout, t, 30 * day), 0);

    ps_optout_set_as_of(optout, t);
    assert_int_equal(ps_optout_as_of(optout), t);
    /* The newer date wins: an older extract never makes the state look newer
     * nor older. */
    ps_optout_set_as_of(optout, t - day);
    assert_int_equal(ps_optout_as_of(optout), t);
    ps_optout_set_as_of(optout, t + day);
    assert_int_equal(ps_optout_as_of(optout), t + day);

    assert_int_equal(ps_optout_fresh(optout, t + day, 30 * day), 1);
    assert_int_equal(ps_optout_fresh(optout, t + 31 * day, 30 * day), 1);
    assert_int_equal(ps_optout_fresh(optout, t + 31 * day + 1, 30 * day), 0);
    assert_int_equal(ps_optout_fresh(optout, t + day, -1), 0);
    /* Freshness is about the date only: it does not change membership. */
    assert_int_equal(cleared(optout, NHS_A), 0);
    ps_optout_destroy(optout);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_add_remove),
        cmocka_unit_test(test_bulk),
        cmocka_unit_test(test_keys_differ),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_example_files),
        cmocka_unit_test(test_load_large_file),
        cmocka_unit_test(test_freshness),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
