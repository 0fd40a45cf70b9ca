/*
 * ps_audit_lists_encode: a destination's four path lists encoded once (as the
 * engine does per plan) must give the very bytes ps_audit_encode writes when
 * it encodes them itself, and bad lists are refused alike.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "ps_audit.h"
#include "ps_buf.h"

static const char *const kept[] = {"msh.message_type", "pid.sex", "dg1[].code"};
static const char *const pseudonymised[] = {"pid.nhs_number"};
static const char *const generalised[] = {"pid.date_of_birth:year", "pid.postcode:district"};

static void encode(const struct ps_audit_destination *dsts, size_t n, struct ps_buf *out)
{
    struct ps_audit_record rec = {
        .event_id = "MSG1", .event_type = "ADT^A01", .event_time_ms = 1767225600000LL,
        .source_topic = "in", .source_partition = 3, .source_offset = 42,
        .policy_hash = "abcd", .key_id = 1, .opt_out_as_of_ms = -1, .subject = "1.aaaa",
        .destinations = dsts, .destination_count = n, .processed_at_ms = 1767225600001LL};
    struct ps_error err;
    ps_error_clear(&err);
    assert_int_equal(ps_audit_encode(&rec, out, &err), PS_OK);
}

static void test_pre_encoded_lists_are_identical(void **state)
{
    (void)state;
    struct ps_audit_destination dsts[3] = {
        {.name = "ward", .topic = "ward.t", .decision = PS_AUDIT_DISCLOSED, .kept = kept,
         .kept_count = 3},
        {.name = "comm", .topic = "comm.t", .decision = PS_AUDIT_DISCLOSED, .kept = kept,
         .kept_count = 2, .pseudonymised = pseudonymised, .pseudonymised_count = 1,
         .generalised = generalised, .generalised_count = 2, .dropped = kept + 2,
         .dropped_count = 1},
        {.name = "research", .topic = "r.t", .decision = PS_AUDIT_WITHHELD,
         .reason = "predicate", .detail = "withhold_when[0]"},
    };
    struct ps_buf plain, pre, lists[3];
    ps_buf_init(&plain, 0);
    ps_buf_init(&pre, 0);
    encode(dsts, 3, &plain);
    struct ps_error err;
    for (int d = 0; d < 3; d++) {
        ps_buf_init(&lists[d], 0);
        assert_int_equal(ps_audit_lists_encode(&dsts[d], &lists[d], &err), PS_OK);
        dsts[d].lists_avro = lists[d].data;
        dsts[d].lists_avro_len = lists[d].len;
    }
    /* The lists themselves are no longer read. */
    dsts[0].kept = NULL;
    dsts[0].kept_count = 7;
    encode(dsts, 3, &pre);
    assert_int_equal(plain.len, pre.len);
    assert_memory_equal(plain.data, pre.data, plain.len);
    /* An empty destination's lists are four empty arrays. */
    assert_int_equal(lists[2].len, 4);
    assert_memory_equal(lists[2].data, "\0\0\0\0", 4);
    for (int d = 0; d < 3; d++) {
        ps_buf_free(&lists[d]);
    }
    ps_buf_free(&plain);
    ps_buf_free(&pre);
}

static void test_bad_lists_refused(void **state)
{
    (void)state;
    const char *const holes[] = {"a", NULL};
    struct ps_audit_destination dst = {.name = "x", .topic = "t", .kept = holes,
                                       .kept_count = 2};
    struct ps_buf out;
    ps_buf_init(&out, 0);
    struct ps_error err;
    assert_int_equal(ps_audit_lists_encode(&dst, &out, &err), PS_ERR_INVALID);
    assert_int_equal(out.len, 0);
    dst.kept = NULL;
    assert_int_equal(ps_audit_lists_encode(&dst, &out, &err), PS_ERR_INVALID);
    assert_int_equal(ps_audit_lists_encode(NULL, &out, &err), PS_ERR_INVALID);
    ps_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pre_encoded_lists_are_identical),
        cmocka_unit_test(test_bad_lists_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
