/*
 * ps_time: civil dates and day counts, ISO 8601 parsing and formatting.
 *
 * Expected day counts and instants were computed with python3's datetime
 * (proleptic Gregorian, UTC), not with this code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ps_time.h"

struct civil {
    int y, m, d;
    int64_t days;
};

static const struct civil known[] = {
    {1970, 1, 1, 0},
    {1969, 12, 31, -1},
    {1900, 3, 1, -25508},   /* after 1900's non-leap February */
    {2000, 2, 29, 11016},   /* 2000 is a leap year (divisible by 400) */
    {2026, 11, 23, 20780},
    {1600, 3, 1, -135080},
    {1, 1, 1, -719162},
};

static void test_known_days(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        const struct civil *c = &known[i];
        assert_int_equal(ps_time_civil_to_days(c->y, c->m, c->d), c->days);
        int y = 0, m = 0, d = 0;
        ps_time_days_to_civil(c->days, &y, &m, &d);
        assert_int_equal(y, c->y);
        assert_int_equal(m, c->m);
        assert_int_equal(d, c->d);
    }
    /* 1900 is not a leap year: 1900-02-28 is followed by 1900-03-01. */
    assert_int_equal(ps_time_civil_to_days(1900, 2, 28), -25509);
}

static int days_in_month(int y, int m)
{
    static const int len[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 ? 28 + leap : len[m - 1];
}

static void test_round_trip_sweep(void **state)
{
    (void)state;
    /* Day by day across 1899..2101, both sides of the epoch: each day is the
     * civil successor of the one before, and maps back to its count. */
    int64_t start = ps_time_civil_to_days(1899, 1, 1);
    int64_t end = ps_time_civil_to_days(2101, 12, 31);
    int py = 1898, pm = 12, pd = 31;
    for (int64_t days = start; days <= end; days++) {
        int y, m, d;
        ps_time_days_to_civil(days, &y, &m, &d);
        int ny = py, nm = pm, nd = pd + 1;
        if (nd > days_in_month(py, pm)) {
            nd = 1;
            if (++nm > 12) {
                nm = 1;
                ny++;
            }
        }
        if (y != ny || m != nm || d != nd) {
            fail_msg("day %lld is %04d-%02d-%02d, expected %04d-%02d-%02d", (long long)days, y,
                     m, d, ny, nm, nd);
        }
        assert_int_equal(ps_time_civil_to_days(y, m, d), days);
        py = y;
        pm = m;
        pd = d;
    }
    /* Far from the epoch, in both directions. */
    for (int64_t days = -3000000; days <= 3000000; days += 99991) {
        int y, m, d;
        ps_time_days_to_civil(days, &y, &m, &d);
        assert_int_equal(ps_time_civil_to_days(y, m, d), days);
    }
}

static void expect_iso(const char *text, int64_t want)
{
    int64_t ms = 42;
    ps_err_t rc = ps_time_parse_iso(text, &ms);
    if (rc != PS_OK) {
        fail_msg("'%s' refused (%d)", text, (int)rc);
    }
    if (ms != want) {
        fail_msg("'%s' gave %lld, expected %lld", text, (long long)ms, (long long)want);
    }
}

static void test_parse_iso(void **state)
{
    (void)state;
    expect_iso("2026-11-23T15:00:00Z", INT64_C(1795446000000));
    expect_iso("2026-11-23T15:00Z", INT64_C(1795446000000));
    expect_iso("2026-11-23T15:00:00+01:00", INT64_C(1795442400000));
    expect_iso("2026-11-23T15:00:00-05:30", INT64_C(1795465800000));
    expect_iso("2026-11-23T00:00:00+00:00", INT64_C(1795392000000));
    expect_iso("2000-02-29T12:34:56.789+14:00", INT64_C(951777296789));
    expect_iso("1970-01-01T00:00:00Z", 0);
    expect_iso("1969-12-31T23:59:59.999Z", -1);
    expect_iso("1900-03-01T00:00:00Z", INT64_C(-2203891200000));
}

static void test_parse_fractions(void **state)
{
    (void)state;
    expect_iso("2026-11-23T15:00:00.123Z", INT64_C(1795446000123));
    expect_iso("2026-11-23T15:00:00.1Z", INT64_C(1795446000100));
    expect_iso("2026-11-23T15:00:00.05Z", INT64_C(1795446000050));
    /* Beyond milliseconds: truncated, not rounded. */
    expect_iso("2026-11-23T15:00:00.123999Z", INT64_C(1795446000123));
    expect_iso("2026-11-23T15:00:00.999999999Z", INT64_C(1795446000999));
}

static void test_parse_date_only(void **state)
{
    (void)state;
    expect_iso("2026-11-23", INT64_C(1795392000000));
    expect_iso("1970-01-01", 0);
    expect_iso("2000-02-29", INT64_C(11016) * 86400000);
    expect_iso("1900-03-01", INT64_C(-25508) * 86400000);
}

static void test_parse_rejects_garbage(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "2026",
        "2026-11",
        "26-11-23",
        "2026/11/23",
        "2026-1-23",
        "2026-11-3",
        "2026-00-10",
        "2026-13-01",
        "2026-11-00",
        "2026-11-32",
        "2026-11-23T",
        "2026-11-23T15",
        "2026-11-23T15:00",          /* a time needs its zone */
        "2026-11-23T15:00:00",
        "2026-11-23T15:00:00.Z",     /* a dot needs digits */
        "2026-11-23T24:00:00Z",
        "2026-11-23T15:60:00Z",
        "2026-11-23T15:00:61Z",
        "2026-11-23 15:00:00Z",
        "2026-11-23t15:00:00Z",
        "2026-11-23T15:00:00z",
        "2026-11-23T15:00:00+0100",
        "2026-11-23T15:00:00+01",
        "2026-11-23T15:00:00Z ",
        "2026-11-23Z",
        "2026-11-23x",
        " 2026-11-23",
        "abcd-ef-gh",
        "yesterday",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = 4242;
        ps_err_t rc = ps_time_parse_iso(bad[i], &ms);
        if (rc != PS_ERR_INVALID) {
            fail_msg("'%s' gave %d (ms %lld), expected PS_ERR_INVALID", bad[i], (int)rc,
                     (long long)ms);
        }
        assert_int_equal(ms, 4242); /* untouched on failure */
    }
    int64_t ms = 7;
    assert_int_equal(ps_time_parse_iso(NULL, &ms), PS_ERR_INVALID);
    assert_int_equal(ms, 7);
}

/*
 * BUG (ps_time.c, ps_time_parse_iso): the day is only checked to be 1..31,
 * whatever the month, so "2026-02-30" and "2026-04-31" are accepted and
 * silently become 2026-03-02 and 2026-05-01, although ps_time.h promises
 * PS_ERR_INVALID "when the text is not such a date". Skipped until fixed.
 */
static void test_parse_rejects_impossible_day(void **state)
{
    (void)state;
    const char *bad[] = {"2026-02-29", "2026-02-30", "2026-04-31", "1900-02-29",
                         "2026-02-31T00:00:00Z"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = 0;
        if (ps_time_parse_iso(bad[i], &ms) != PS_ERR_INVALID) {
            fail_msg("'%s' accepted as %lld", bad[i], (long long)ms);
        }
    }
}

static void test_format_iso(void **state)
{
    (void)state;
    char buf[32];
    ps_time_format_iso(0, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    ps_time_format_iso(INT64_C(1795446000123), buf, sizeof(buf));
    assert_string_equal(buf, "2026-11-23T15:00:00.123Z");
    ps_time_format_iso(-1, buf, sizeof(buf));
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
    ps_time_format_iso(INT64_C(-86400000), buf, sizeof(buf));
    assert_string_equal(buf, "1969-12-31T00:00:00.000Z");
    ps_time_format_iso(INT64_C(-2203891200000), buf, sizeof(buf));
    assert_string_equal(buf, "1900-03-01T00:00:00.000Z");
    ps_time_format_iso(INT64_C(951777296789) + 14 * 3600000, buf, sizeof(buf));
    assert_string_equal(buf, "2000-02-29T12:34:56.789Z");

    /* Format and parse agree, both sides of the epoch. */
    for (int64_t ms = INT64_C(-3000000000000); ms <= INT64_C(3000000000000);
         ms += INT64_C(7777777) * 1000 + 777) {
        int64_t back = 0;
        ps_time_format_iso(ms, buf, sizeof(buf));
        assert_int_equal(strlen(buf), 24);
        assert_int_equal(ps_time_parse_iso(buf, &back), PS_OK);
        assert_int_equal(back, ms);
    }

    /* A short buffer is truncated, never overrun. */
    char small[11];
    memset(small, 'x', sizeof(small));
    ps_time_format_iso(0, small, sizeof(small));
    assert_string_equal(small, "1970-01-01");
}

static void test_format_date(void **state)
{
    (void)state;
    char buf[16];
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        char want[16];
        snprintf(want, sizeof(want), "%04d-%02d-%02d", known[i].y, known[i].m, known[i].d);
        ps_time_format_date(known[i].days, buf, sizeof(buf));
        assert_string_equal(buf, want);
    }
    ps_time_format_date(20780, buf, sizeof(buf));
    assert_string_equal(buf, "2026-11-23");
    ps_time_format_date(-25508, buf, sizeof(buf));
    assert_string_equal(buf, "1900-03-01");
    int64_t ms = 0;
    assert_int_equal(ps_time_parse_iso(buf, &ms), PS_OK);
    assert_int_equal(ms, INT64_C(-25508) * 86400000);
}

static void test_clocks(void **state)
{
    (void)state;
    int64_t now = ps_time_now_ms();
    /* After 2024-01-01 and before 2100-01-01. */
    assert_true(now > INT64_C(1704067200000));
    assert_true(now < INT64_C(4102444800000));
    int64_t a = ps_time_mono_ms();
    int64_t b = ps_time_mono_ms();
    assert_true(b >= a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_days),
        cmocka_unit_test(test_round_trip_sweep),
        cmocka_unit_test(test_parse_iso),
        cmocka_unit_test(test_parse_fractions),
        cmocka_unit_test(test_parse_date_only),
        cmocka_unit_test(test_parse_rejects_garbage),
        cmocka_unit_test(test_parse_rejects_impossible_day),
        cmocka_unit_test(test_format_iso),
        cmocka_unit_test(test_format_date),
        cmocka_unit_test(test_clocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
