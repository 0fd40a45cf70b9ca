/*
 * ps_audit_trace on the in-process mock cluster: audit records of three
 * artificial patients (NHS numbers from the 999 test range), written under
 * two keyring entries, plus a dead-letter record, a message that is not an
 * audit record and an audit record cut short. A trace must print exactly the
 * chosen patient's records, under both keys, and nothing of anyone else's; its
 * log lines must carry counts only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ps_audit.h"
#include "ps_audit_trace.h"
#include "ps_buf.h"
#include "ps_error.h"
#include "ps_fingerprint.h"
#include "ps_frame.h"
#include "ps_kafka.h"
#include "ps_keyring.h"
#include "ps_log.h"
#include "ps_nhs.h"
#include "ps_pseudonym.h"
#include "ps_schema.h"

#define AUDIT_SCHEMA "schemas/audit/audit_record.avsc"
#define TOPIC "pseudostream.audit"
#define PATIENTS 3
#define KEY2_FROM_MS 1704067200000 /* 2024-01-01T00:00:00Z */

/* Artificial secrets for artificial data. */
static const struct ps_keyring_entry keys[] = {
    {.id = 1, .not_before_ms = 1577836800000, /* 2020-01-01 */
     .secret_b64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="},
    {.id = 2, .not_before_ms = KEY2_FROM_MS,
     .secret_b64 = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="},
};

/* Each patient's audit records: event id and event time (which picks the key). */
static const struct {
    int patient;
    const char *event_id;
    int64_t event_time_ms;
} events[] = {
    {0, "evt-p0-a", 1600000000000}, {1, "evt-p1-a", 1600000000001},
    {2, "evt-p2-a", 1600000000002}, {0, "evt-p0-b", 1650000000000},
    {1, "evt-p1-b", 1710000000000}, {0, "evt-p0-c", 1710000000000},
    {2, "evt-p2-b", 1720000000000},
};
#define EVENT_COUNT (sizeof(events) / sizeof(events[0]))

static struct ps_kafka_broker *broker;
static const char *bootstraps;
static struct ps_keyring *kr;
static struct ps_schema *audit_schema;
static FILE *log_file;
static char nhs[PATIENTS + 1][PS_NHS_DIGITS + 1]; /* the last one has no records */
static char tokens[PATIENTS + 1][2][PS_TOKEN_MAX];  /* per patient, per key */

static void assert_ok(ps_err_t rc, const struct ps_error *err)
{
    if (rc != PS_OK) {
        fail_msg("%s: %s", ps_err_name(rc), err->msg);
    }
}

#define PLAN_NAMED "00ff00ff00ff00ff/research/0000000000000001"
#define PLAN_OTHER "00ff00ff00ff00ff/other/0000000000000001"

/* One framed plan record, as the pipeline writes it beside the records. */
static void append_plan(struct ps_buf *buf, const char *plan_id)
{
    static const char *const kept[] = {"msh.message_type"};
    static const char *const pseudonymised[] = {"pid.nhs_number"};
    const struct ps_audit_plan plan = {
        .plan_id = plan_id, .policy_hash = "00ff00ff00ff00ff", .destination = "research",
        .topic = "research.events", .input_schema = "test.Event", .input_fingerprint = 1,
        .kept = kept, .kept_count = 1, .pseudonymised = pseudonymised,
        .pseudonymised_count = 1};
    struct ps_error err = {0};
    uint64_t fingerprint = 0;
    assert_ok(ps_fingerprint_schema(ps_audit_plan_schema_json, &fingerprint, &err), &err);
    assert_ok(ps_frame_write_single_object(fingerprint, buf), &err);
    assert_ok(ps_audit_plan_encode(&plan, buf, &err), &err);
}

/* One framed audit record of an event, as the pipeline will write it. */
static void append_record(struct ps_buf *buf, const char *event_id, int64_t event_time_ms,
                          int64_t key_id, const char *subject, const char *dead_letter_reason)
{
    const struct ps_audit_destination dests[] = {
        {.name = "research", .topic = "research.events", .decision = PS_AUDIT_DISCLOSED,
         .plan_id = PLAN_NAMED},
        {.name = "icb", .topic = "commissioning.events", .decision = PS_AUDIT_WITHHELD,
         .reason = "opt_out"},
    };
    const struct ps_audit_record rec = {
        .event_id = event_id,
        .event_type = event_id ? "ADT^A01" : NULL,
        .event_time_ms = event_time_ms,
        .source_topic = "hospital.events",
        .source_partition = 1,
        .source_offset = 42,
        .policy_hash = "00ff",
        .key_id = key_id,
        .opt_out_as_of_ms = -1,
        .subject = subject,
        .dead_letter_reason = dead_letter_reason,
        .destinations = dead_letter_reason ? NULL : dests,
        .destination_count = dead_letter_reason ? 0 : 2,
        .processed_at_ms = 1720000000000,
    };
    struct ps_error err = {0};
    assert_ok(ps_frame_write_single_object(ps_schema_fingerprint(audit_schema), buf), &err);
    assert_ok(ps_audit_encode(&rec, buf, &err), &err);
}

static void send_value(struct ps_kafka_producer *producer, const void *key, size_t key_len,
                 const void *value, size_t len)
{
    struct ps_error err = {0};
    assert_ok(ps_kafka_producer_send(producer, TOPIC, -1, key, key_len, value, len, NULL, 0,
                                     &err), &err);
}

static int group_setup(void **state)
{
    (void)state;
    /* A hang in the broker or the reader must fail the run, not stall it. */
    alarm(120);
    struct ps_error err = {0};
    log_file = tmpfile();
    if (!log_file || ps_crypto_init(&err) != PS_OK ||
        ps_keyring_new(keys, 2, "test", &kr, &err) != PS_OK ||
        ps_schema_load_file(AUDIT_SCHEMA, NULL, &audit_schema, &err) != PS_OK ||
        ps_kafka_broker_new(1, &broker, &err) != PS_OK) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    ps_log_set_stream(log_file);
    ps_log_set_level(PS_LOG_INFO);
    bootstraps = ps_kafka_broker_bootstraps(broker);

    /* The subjects' audit pseudonyms, computed here independently of the trace. */
    struct ps_pseudonymiser *p = NULL;
    if (ps_pseudonymiser_new(kr, PS_AUDIT_DOMAIN, &p, &err) != PS_OK) {
        return -1;
    }
    for (uint32_t i = 0; i <= PATIENTS; i++) {
        ps_nhs_make_test_number(100 + 37 * i, nhs[i]);
        for (uint32_t k = 0; k < 2; k++) {
            if (ps_pseudonymise_with_key(p, k + 1, "nhs_number", nhs[i], PS_NHS_DIGITS,
                                         tokens[i][k], &err) != PS_OK) {
                ps_pseudonymiser_destroy(p);
                return -1;
            }
        }
    }
    ps_pseudonymiser_destroy(p);
    return ps_kafka_broker_topic_create(broker, TOPIC, 3, &err) == PS_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    ps_kafka_broker_destroy(broker);
    ps_schema_destroy(audit_schema);
    ps_keyring_destroy(kr);
    ps_log_set_stream(stderr);
    if (log_file) {
        fclose(log_file);
    }
    return 0;
}

static void produce_topic(void)
{
    struct ps_error err = {0};
    struct ps_kafka_producer *producer = NULL;
    struct ps_buf buf;
    ps_buf_init(&buf, 0);
    assert_ok(ps_kafka_producer_new(bootstraps, NULL, NULL, 0, &producer, &err), &err);
    /* The plan the records name, written twice (as after an hour), and one
     * nobody names. */
    for (int i = 0; i < 3; i++) {
        ps_buf_reset(&buf);
        append_plan(&buf, i == 1 ? PLAN_OTHER : PLAN_NAMED);
        send_value(producer, "plan", 4, buf.data, buf.len);
    }
    for (size_t e = 0; e < EVENT_COUNT; e++) {
        int key = events[e].event_time_ms >= KEY2_FROM_MS ? 1 : 0;
        const char *subject = tokens[events[e].patient][key];
        ps_buf_reset(&buf);
        append_record(&buf, events[e].event_id, events[e].event_time_ms, key + 1, subject, NULL);
        send_value(producer, subject, strlen(subject), buf.data, buf.len);
    }
    /* A dead letter: no subject at all. */
    ps_buf_reset(&buf);
    append_record(&buf, NULL, -1, -1, NULL, "frame");
    send_value(producer, NULL, 0, buf.data, buf.len);
    /* Not an audit record: another framing, then a tombstone. */
    send_value(producer, NULL, 0, "\x00\x00\x00\x00\x01" "abc", 8);
    send_value(producer, "k", 1, NULL, 0);
    /* An audit record cut short, whose subject is patient 0's: it cannot be
     * read, so it is skipped and counted, not printed. */
    ps_buf_reset(&buf);
    append_record(&buf, "evt-p0-cut", 1600000000000, 1, tokens[0][0], NULL);
    send_value(producer, NULL, 0, buf.data, buf.len - 3);
    assert_ok(ps_kafka_producer_flush(producer, 10000, &err), &err);
    ps_kafka_producer_destroy(producer);
    ps_buf_free(&buf);
}

/* Runs a trace of nhs_number into a fresh stream; returns its text (malloc'd). */
static char *trace(const char *nhs_number, size_t *matches_p, ps_err_t expect)
{
    struct ps_error err = {0};
    FILE *out = tmpfile();
    assert_non_null(out);
    ps_err_t rc = ps_audit_trace(bootstraps, TOPIC, NULL, 0, audit_schema, kr, nhs_number, out,
                                 matches_p, &err);
    if (rc != expect) {
        fail_msg("trace: %s (%s), expected %s", ps_err_name(rc), err.msg, ps_err_name(expect));
    }
    long size = ftell(out);
    assert_true(size >= 0);
    char *text = calloc(1, (size_t)size + 1);
    assert_non_null(text);
    rewind(out);
    assert_int_equal(fread(text, 1, (size_t)size, out), (size_t)size);
    fclose(out);
    return text;
}

static size_t count_lines(const char *text)
{
    size_t n = 0;
    for (const char *p = text; *p; p++) {
        n += *p == '\n';
    }
    return n;
}

/* Nothing of any other patient: neither their pseudonyms nor their events. */
static void assert_only_patient(const char *text, int patient)
{
    for (int i = 0; i <= PATIENTS; i++) {
        for (int k = 0; k < 2; k++) {
            if (i != patient && strstr(text, tokens[i][k])) {
                fail_msg("patient %d's pseudonym in patient %d's trace", i, patient);
            }
        }
        char prefix[16];
        snprintf(prefix, sizeof(prefix), "evt-p%d-", i);
        if (i != patient && strstr(text, prefix)) {
            fail_msg("patient %d's event in patient %d's trace", i, patient);
        }
        assert_null(strstr(text, nhs[i]));
    }
    assert_null(strstr(text, "\"dead_letter_reason\":\"frame\""));
    assert_null(strstr(text, "evt-p0-cut"));
}

static void test_trace(void **state)
{
    (void)state;
    produce_topic();

    /* Patient 0: two records under key 1, one under key 2. */
    size_t matches = 99;
    char *text = trace(nhs[0], &matches, PS_OK);
    assert_int_equal(matches, 3);
    assert_int_equal(count_lines(text), 4); /* three records, then their plan once */
    assert_non_null(strstr(text, "\"event_id\":\"evt-p0-a\""));
    assert_non_null(strstr(text, "\"event_id\":\"evt-p0-b\""));
    assert_non_null(strstr(text, "\"event_id\":\"evt-p0-c\""));
    char field[128];
    snprintf(field, sizeof(field), "\"subject\":\"%s\"", tokens[0][0]);
    assert_non_null(strstr(text, field));
    snprintf(field, sizeof(field), "\"subject\":\"%s\"", tokens[0][1]);
    assert_non_null(strstr(text, field));
    /* Whole records: every line is one object holding the decision detail,
     * naming the plan; the last line is that plan, with its field lists. */
    const char *line = text;
    for (int n = 0; n < 3; n++, line = strchr(line, '\n') + 1) {
        assert_int_equal(line[0], '{');
        assert_non_null(strstr(line, "\"destinations\":[{\"name\":\"research\""));
        assert_non_null(strstr(line, "\"plan\":\"" PLAN_NAMED "\""));
    }
    assert_true(strncmp(line, "{\"plan_id\":\"" PLAN_NAMED "\"", 13 + strlen(PLAN_NAMED)) == 0);
    assert_non_null(strstr(line, "\"pseudonymised\":[\"pid.nhs_number\"]"));
    assert_null(strstr(text, PLAN_OTHER));
    assert_non_null(strstr(text, "\"reason\":\"opt_out\""));
    assert_only_patient(text, 0);
    free(text);

    /* Written with spaces, as people do: the same patient. */
    char spaced[16];
    snprintf(spaced, sizeof(spaced), "%.3s %.3s %.4s", nhs[0], nhs[0] + 3, nhs[0] + 6);
    text = trace(spaced, &matches, PS_OK);
    assert_int_equal(matches, 3);
    free(text);

    /* Patients 1 and 2: one record under each key. */
    for (int i = 1; i < PATIENTS; i++) {
        text = trace(nhs[i], &matches, PS_OK);
        assert_int_equal(matches, 2);
        assert_int_equal(count_lines(text), 3);
        assert_only_patient(text, i);
        free(text);
    }

    /* A patient with no records: nothing at all. */
    text = trace(nhs[PATIENTS], &matches, PS_OK);
    assert_int_equal(matches, 0);
    assert_string_equal(text, "");
    free(text);

    /* Log lines: the skipped messages counted, no number, no pseudonym. */
    fflush(log_file);
    long size = ftell(log_file);
    assert_true(size > 0);
    char *log = calloc(1, (size_t)size + 1);
    assert_non_null(log);
    rewind(log_file);
    assert_int_equal(fread(log, 1, (size_t)size, log_file), (size_t)size);
    assert_non_null(strstr(log, "\"code\":\"trace_skipped\""));
    assert_non_null(strstr(log, "3 of 14 messages skipped (2 not audit records, 1 undecodable)"));
    assert_null(strstr(log, "trace_plan_missing"));
    for (int i = 0; i <= PATIENTS; i++) {
        assert_null(strstr(log, nhs[i]));
        assert_null(strstr(log, tokens[i][0]));
        assert_null(strstr(log, tokens[i][1]));
    }
    assert_null(strstr(log, "evt-p"));
    free(log);
}

/* A plan record whose id is longer than any this service writes (someone
 * else's, or damaged) is skipped and counted; it once failed the whole trace
 * as out of memory. */
static void test_trace_skips_overlong_plan_id(void **state)
{
    (void)state;
    char id[PS_AUDIT_PLAN_ID_MAX + 40];
    memset(id, 'p', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    struct ps_error err = {0};
    struct ps_kafka_producer *producer = NULL;
    struct ps_buf buf;
    ps_buf_init(&buf, 0);
    append_plan(&buf, id);
    assert_ok(ps_kafka_producer_new(bootstraps, NULL, NULL, 0, &producer, &err), &err);
    send_value(producer, "plan", 4, buf.data, buf.len);
    assert_ok(ps_kafka_producer_flush(producer, 10000, &err), &err);
    ps_kafka_producer_destroy(producer);
    ps_buf_free(&buf);

    size_t matches = 0;
    char *text = trace(nhs[0], &matches, PS_OK);
    assert_int_equal(matches, 3);
    assert_null(strstr(text, id));
    free(text);
}

static void test_trace_errors(void **state)
{
    (void)state;
    struct ps_error err = {0};
    size_t matches = 99;
    FILE *out = tmpfile();
    assert_non_null(out);

    /* A number failing modulus 11 is refused before any broker is asked, and
     * the message does not repeat it. */
    char bad[PS_NHS_DIGITS + 1];
    memcpy(bad, nhs[0], sizeof(bad));
    bad[9] = (char)('0' + (bad[9] - '0' + 1) % 10);
    assert_int_equal(ps_audit_trace("127.0.0.1:1", TOPIC, NULL, 0, audit_schema, kr, bad, out,
                                    &matches, &err),
                     PS_ERR_NHS_INVALID);
    assert_null(strstr(err.msg, bad));
    assert_int_equal(ps_audit_trace(bootstraps, TOPIC, NULL, 0, audit_schema, kr, "", out,
                                    &matches, &err),
                     PS_ERR_NHS_INVALID);

    assert_int_equal(ps_audit_trace(NULL, TOPIC, NULL, 0, audit_schema, kr, nhs[0], out,
                                    &matches, &err),
                     PS_ERR_INVALID);
    assert_int_equal(ps_audit_trace(bootstraps, TOPIC, NULL, 0, audit_schema, NULL, nhs[0], out,
                                    &matches, &err),
                     PS_ERR_INVALID);
    assert_int_equal(ps_audit_trace(bootstraps, TOPIC, NULL, 1, audit_schema, kr, nhs[0], out,
                                    &matches, &err),
                     PS_ERR_INVALID);

    /* Another schema is not an audit record schema. */
    struct ps_schema *hl7 = NULL;
    assert_ok(ps_schema_load_file("schemas/hl7v2/hl7v2_event.avsc", NULL, &hl7, &err), &err);
    assert_int_equal(ps_audit_trace(bootstraps, TOPIC, NULL, 0, hl7, kr, nhs[0], out, &matches,
                                    &err),
                     PS_ERR_SCHEMA);
    ps_schema_destroy(hl7);

    /* Bad Kafka properties come back from the reader. */
    const struct ps_kafka_property props[] = {{"no.such.property", "1"}};
    assert_int_equal(ps_audit_trace(bootstraps, TOPIC, props, 1, audit_schema, kr, nhs[0], out,
                                    &matches, &err),
                     PS_ERR_CONFIG);

    /* Nothing was written and the count was left alone. */
    assert_int_equal(ftell(out), 0);
    assert_int_equal(matches, 99);
    fclose(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trace),
        cmocka_unit_test(test_trace_skips_overlong_plan_id),
        cmocka_unit_test(test_trace_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
