/*
 * Poison input on the embedded broker: a malformed-input corpus, one message
 * of each kind, sent with valid events before and after it, must go entirely
 * to the dead-letter topic with distinct reasons, while the valid events flow
 * to their destinations and the pipeline neither crashes nor loops.
 *
 * Faults injected (the corpus): an empty message, a wrong magic byte, an
 * unknown Confluent schema id, an unknown single-object fingerprint, a
 * truncated string, a negative length, a huge array count, deep nesting (a
 * run of bytes that each open one more level) and a valid frame of the wrong
 * schema (a FHIR datum under the HL7v2 id). Each is keyed "poison-<kind>".
 *
 * Every dead-letter record carries pseudostream.reason (the error code's
 * name) and pseudostream.error (the message). The (reason, error) pairs of
 * the nine kinds must all differ, and no error text may repeat any byte run
 * of the input (a canary string planted in the payloads).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fault_harness.h"
#include "ps_generate.h"
#include "ps_log.h"

#define CANARY "CANARY9434"
#define KINDS 9

static const char *const kind_names[KINDS] = {
    "empty", "wrong-magic", "unknown-schema-id", "unknown-fingerprint", "truncated-string",
    "negative-length", "huge-array-count", "deep-nesting", "wrong-schema",
};

struct found {
    uint8_t fhir[65536];  /* datum of a FHIR event, taken from the input */
    size_t fhir_len;
    char reason[KINDS][64];
    char error[KINDS][512];
    size_t seen[KINDS];
};

static void find_fhir(void *opaque, const struct ps_kafka_message *msg)
{
    struct found *f = opaque;
    static const uint8_t fhir_id[5] = {0, 0, 0, 0, 2};
    if (f->fhir_len == 0 && msg->value && msg->len > 5 && msg->len - 5 <= sizeof(f->fhir) &&
        memcmp(msg->value, fhir_id, 5) == 0) {
        f->fhir_len = msg->len - 5;
        memcpy(f->fhir, (const uint8_t *)msg->value + 5, f->fhir_len);
    }
}

static void collect_dlq(void *opaque, const struct ps_kafka_message *msg)
{
    struct found *f = opaque;
    for (int k = 0; k < KINDS; k++) {
        char key[64];
        snprintf(key, sizeof(key), "poison-%s", kind_names[k]);
        if (!msg->key || msg->key_len != strlen(key) || memcmp(msg->key, key, msg->key_len) != 0) {
            continue;
        }
        const struct ps_kafka_header *reason = fault_header(msg, "pseudostream.reason");
        const struct ps_kafka_header *error = fault_header(msg, "pseudostream.error");
        if (f->seen[k]++ == 0) {
            snprintf(f->reason[k], sizeof(f->reason[k]), "%.*s",
                     reason ? (int)reason->len : 0, reason ? (const char *)reason->value : "");
            snprintf(f->error[k], sizeof(f->error[k]), "%.*s", error ? (int)error->len : 0,
                     error ? (const char *)error->value : "");
        }
    }
}

static void send_kind(struct fault_env *env, int k, const uint8_t *value, size_t len)
{
    char key[64];
    struct ps_error err = {0};
    snprintf(key, sizeof(key), "poison-%s", kind_names[k]);
    if (fault_env_produce_raw(env, key, value, len, &err) != PS_OK) {
        fail_msg("produce %s: %s", key, err.msg);
    }
}

static size_t frame_id(uint8_t *buf, uint32_t id)
{
    buf[0] = 0;
    buf[1] = (uint8_t)(id >> 24);
    buf[2] = (uint8_t)(id >> 16);
    buf[3] = (uint8_t)(id >> 8);
    buf[4] = (uint8_t)id;
    return 5;
}

static void send_corpus(struct fault_env *env, struct found *f)
{
    static uint8_t buf[200000];
    size_t n;

    /* An empty value (zero bytes). */
    send_kind(env, 0, (const uint8_t *)"", 0);

    /* Neither framing's magic bytes. */
    n = 0;
    buf[n++] = 0x07;
    memcpy(buf + n, CANARY, strlen(CANARY));
    send_kind(env, 1, buf, n + strlen(CANARY));

    /* A Confluent frame naming schema id 999. */
    n = frame_id(buf, 999);
    memcpy(buf + n, CANARY, strlen(CANARY));
    send_kind(env, 2, buf, n + strlen(CANARY));

    /* A single-object frame with a fingerprint nobody registered. */
    n = 0;
    buf[n++] = 0xc3;
    buf[n++] = 0x01;
    for (int i = 0; i < 8; i++) {
        buf[n++] = (uint8_t)(0x11 * (i + 1));
    }
    memcpy(buf + n, CANARY, strlen(CANARY));
    send_kind(env, 3, buf, n + strlen(CANARY));

    /* The first string claims 100 bytes; 10 follow. */
    n = frame_id(buf, 1);
    buf[n++] = 200; /* zigzag 100, one byte would be 0xc8 0x01 */
    buf[n - 1] = 0xc8;
    buf[n++] = 0x01;
    memcpy(buf + n, CANARY, strlen(CANARY));
    send_kind(env, 4, buf, n + strlen(CANARY));

    /* The first string's length is -5. */
    n = frame_id(buf, 1);
    buf[n++] = 0x09;
    memcpy(buf + n, CANARY, strlen(CANARY));
    send_kind(env, 5, buf, n + strlen(CANARY));

    /* msh: five one-letter strings and event_time 0; pid: two null unions;
     * then local_identifiers claims 50,000,000 records and the bytes end
     * (the generator's hostile count). */
    static const uint8_t hostile[] = {0x02, 'M', 0x02, 'P', 0x02, 'R', 0x02, 'A', 0x00,
                                      0x02, '2', 0x00, 0x00, 0x80, 0xc2, 0xd7, 0x2f};
    n = frame_id(buf, 1);
    memcpy(buf + n, hostile, sizeof(hostile));
    send_kind(env, 6, buf, n + sizeof(hostile));

    /* 100,000 bytes that each say "one item more, one level deeper" (0x02:
     * a block count of 1, a union branch 1, a length of 1). Schemas are
     * refused at load beyond the depth limit, so such a datum can only fail
     * as a decode error, never recurse. */
    n = frame_id(buf, 1);
    memset(buf + n, 0x02, 100000);
    send_kind(env, 7, buf, n + 100000);

    /* A well-formed FHIR datum framed with the HL7v2 schema's id. */
    assert_true(f->fhir_len > 0);
    n = frame_id(buf, 1);
    memcpy(buf + n, f->fhir, f->fhir_len);
    send_kind(env, 8, buf, n + f->fhir_len);
}

static void poison_corpus(void **state)
{
    (void)state;
    struct fault_env env;
    struct ps_error err = {0};
    struct fault_report report;
    struct found *f = calloc(1, sizeof(*f));
    struct ps_pipeline_stats *stats = calloc(1, sizeof(*stats));
    assert_non_null(f);
    assert_non_null(stats);
    if (fault_env_setup(&env, 1, &err) != PS_OK) {
        fail_msg("setup: %s", err.msg);
    }
    assert_int_equal(fault_env_produce(&env, 300, 0, 5, &err), PS_OK);
    assert_int_equal(fault_env_read(&env, FAULT_INPUT, find_fhir, f, &err), PS_OK);
    send_corpus(&env, f);
    assert_int_equal(fault_env_produce(&env, 300, 0, 6, &err), PS_OK);

    ps_err_t rc = fault_env_run(&env, 100, 100, 3000, NULL, NULL, stats, &err);
    if (rc != PS_OK) {
        fail_msg("pipeline: %s: %s", ps_err_name(rc), err.msg);
    }
    assert_int_equal(fault_env_check(&env, &report, &err), PS_OK);
    fault_report_print("poison corpus", &report);
    assert_int_equal(report.malformed, KINDS);
    assert_int_equal(report.missing_dlq, 0);
    assert_int_equal(report.missing_ward, 0);
    assert_int_equal(report.dlq_without_reason, 0);
    assert_int_equal(stats->aborted, 0);

    assert_int_equal(fault_env_read(&env, FAULT_DLQ, collect_dlq, f, &err), PS_OK);
    for (int k = 0; k < KINDS; k++) {
        fprintf(stderr, "  %-20s %-16s %s\n", kind_names[k], f->reason[k], f->error[k]);
        assert_true(f->seen[k] >= 1);
        assert_true(f->reason[k][0] != '\0');
        assert_true(f->error[k][0] != '\0');
        /* No error text repeats input bytes. */
        assert_null(strstr(f->error[k], "CANARY"));
        for (int j = 0; j < k; j++) {
            if (strcmp(f->reason[k], f->reason[j]) == 0 && strcmp(f->error[k], f->error[j]) == 0) {
                fail_msg("%s and %s have the same reason: %s %s", kind_names[j], kind_names[k],
                         f->reason[k], f->error[k]);
            }
        }
    }
    fault_env_teardown(&env);
    free(stats);
    free(f);
}

int main(void)
{
    ps_log_set_level(PS_LOG_WARN);
    ps_log_set_stream(stderr);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(poison_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
