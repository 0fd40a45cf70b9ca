/*
 * ps_audit and ps_avro_writer: the hand-written audit encoders against the
 * schema files. Every audit record and plan record is encoded, framed as it
 * goes on the audit topic, then decoded with schemas/audit/audit_record.avsc
 * or audit_plan.avsc by the same decoder the service uses for input, and its
 * readable JSON form compared whole, so every field's value, the field order
 * and the union branches are checked at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "ps_audit.h"
#include "ps_avro_writer.h"
#include "ps_buf.h"
#include "ps_codec.h"
#include "ps_error.h"
#include "ps_frame.h"
#include "ps_schema.h"
#include "ps_tag.h"

#define AUDIT_SCHEMA "schemas/audit/audit_record.avsc"
#define PLAN_SCHEMA "schemas/audit/audit_plan.avsc"

static struct ps_schema *audit_schema;
static struct ps_schema *plan_schema;
static struct ps_decoder *dec;

static void assert_ok(ps_err_t rc, const struct ps_error *err)
{
    if (rc != PS_OK) {
        fail_msg("%s: %s", ps_err_name(rc), err->msg);
    }
}

static int group_setup(void **state)
{
    (void)state;
    struct ps_error err = {0};
    if (ps_schema_load_file(AUDIT_SCHEMA, NULL, &audit_schema, &err) != PS_OK ||
        ps_schema_load_file(PLAN_SCHEMA, NULL, &plan_schema, &err) != PS_OK) {
        fprintf(stderr, "audit schemas: %s\n", err.msg);
        return -1;
    }
    return ps_decoder_new(NULL, &dec, &err) == PS_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    ps_decoder_destroy(dec);
    ps_schema_destroy(audit_schema);
    ps_schema_destroy(plan_schema);
    return 0;
}

/* buf holds a frame as it goes on the audit topic: parses it, decodes the
 * datum with schema and compares its JSON form with expected. */
static void check_decoded(const struct ps_schema *schema, const struct ps_buf *buf,
                          const char *expected)
{
    struct ps_error err = {0};
    struct ps_buf json;
    ps_buf_init(&json, 0);
    struct ps_frame frame;
    assert_ok(ps_frame_parse(buf->data, buf->len, &frame, &err), &err);
    assert_int_equal(frame.format, PS_FRAME_SINGLE_OBJECT);
    assert_true(frame.fingerprint == ps_schema_fingerprint(schema));
    struct ps_event *ev = NULL;
    assert_ok(ps_decoder_decode(dec, schema, frame.payload, frame.payload_len, &ev, &err), &err);
    assert_ok(ps_event_to_json(ev, &json, &err), &err);
    if (json.len != strlen(expected) || memcmp(json.data, expected, json.len) != 0) {
        fail_msg("decoded:\n%.*s\nexpected:\n%s", (int)json.len, (const char *)json.data,
                 expected);
    }
    ps_buf_free(&json);
}

static void check_round_trip(const struct ps_audit_record *rec, const char *expected)
{
    struct ps_error err = {0};
    struct ps_buf buf;
    ps_buf_init(&buf, 0);
    assert_ok(ps_frame_write_single_object(ps_schema_fingerprint(audit_schema), &buf), &err);
    assert_ok(ps_audit_encode(rec, &buf, &err), &err);
    check_decoded(audit_schema, &buf, expected);
    ps_buf_free(&buf);
}

static void check_plan_round_trip(const struct ps_audit_plan *plan, const char *expected)
{
    struct ps_error err = {0};
    struct ps_buf buf;
    ps_buf_init(&buf, 0);
    assert_ok(ps_frame_write_single_object(ps_schema_fingerprint(plan_schema), &buf), &err);
    assert_ok(ps_audit_plan_encode(plan, &buf, &err), &err);
    check_decoded(plan_schema, &buf, expected);
    ps_buf_free(&buf);
}

/* ---------------------------------------------------------------- schema */

/* Every field, nested ones included, has a non-empty doc. */
static void check_docs(json_t *record)
{
    json_t *fields = json_object_get(record, "fields");
    assert_true(json_is_array(fields));
    size_t i;
    json_t *field;
    json_array_foreach(fields, i, field) {
        const char *doc = json_string_value(json_object_get(field, "doc"));
        if (!doc || !doc[0]) {
            fail_msg("field '%s' has no doc", json_string_value(json_object_get(field, "name")));
        }
        json_t *type = json_object_get(field, "type");
        if (json_is_object(type) && json_is_object(json_object_get(type, "items")) &&
            json_object_get(json_object_get(type, "items"), "fields")) {
            check_docs(json_object_get(type, "items"));
        }
    }
}

static void test_schema(void **state)
{
    (void)state;
    assert_string_equal(ps_schema_name(audit_schema), "uk.nhs.pseudostream.audit.AuditRecord");

    /* The record holds the struct's fields, in order, with these types. */
    static const struct {
        const char *path;
        enum ps_type type;
        enum ps_logical logical;
        int nullable;
    } expected[] = {
        {"event_id", PS_TYPE_STRING, PS_LOGICAL_NONE, 1},
        {"event_type", PS_TYPE_STRING, PS_LOGICAL_NONE, 1},
        {"event_time", PS_TYPE_LONG, PS_LOGICAL_TIMESTAMP_MILLIS, 1},
        {"source_topic", PS_TYPE_STRING, PS_LOGICAL_NONE, 0},
        {"source_partition", PS_TYPE_INT, PS_LOGICAL_NONE, 0},
        {"source_offset", PS_TYPE_LONG, PS_LOGICAL_NONE, 0},
        {"policy_hash", PS_TYPE_STRING, PS_LOGICAL_NONE, 0},
        {"key_id", PS_TYPE_LONG, PS_LOGICAL_NONE, 1},
        {"opt_out_as_of", PS_TYPE_LONG, PS_LOGICAL_TIMESTAMP_MILLIS, 1},
        {"subject", PS_TYPE_STRING, PS_LOGICAL_NONE, 1},
        {"dead_letter_reason", PS_TYPE_STRING, PS_LOGICAL_NONE, 1},
        {"destinations", PS_TYPE_ARRAY, PS_LOGICAL_NONE, 0},
        {"destinations[]", PS_TYPE_RECORD, PS_LOGICAL_NONE, 0},
        {"destinations[].name", PS_TYPE_STRING, PS_LOGICAL_NONE, 0},
        {"destinations[].topic", PS_TYPE_STRING, PS_LOGICAL_NONE, 0},
        {"destinations[].decision", PS_TYPE_ENUM, PS_LOGICAL_NONE, 0},
        {"destinations[].reason", PS_TYPE_STRING, PS_LOGICAL_NONE, 1},
        {"destinations[].detail", PS_TYPE_STRING, PS_LOGICAL_NONE, 1},
        {"destinations[].plan", PS_TYPE_STRING, PS_LOGICAL_NONE, 1},
        {"processed_at", PS_TYPE_LONG, PS_LOGICAL_TIMESTAMP_MILLIS, 0},
    };
    size_t count = sizeof(expected) / sizeof(expected[0]);
    assert_int_equal(ps_schema_node_count(audit_schema), count + 1);
    for (size_t i = 0; i < count; i++) {
        const struct ps_schema_node *node = ps_schema_node(audit_schema, (int)i + 1);
        assert_string_equal(node->path, expected[i].path);
        assert_int_equal(node->type, expected[i].type);
        assert_int_equal(node->logical, expected[i].logical);
        assert_int_equal(node->nullable, expected[i].nullable);
        /* Only the subject (a pseudonym: personal data) carries a tag. */
        if (strcmp(node->path, "subject") == 0) {
            assert_int_equal(node->tags, PS_TAG_BIT(PS_TAG_PII));
        } else {
            assert_int_equal(node->tags, 0);
        }
    }

    json_error_t jerr;
    json_t *doc = json_loads(ps_schema_json(audit_schema), 0, &jerr);
    assert_non_null(doc);
    check_docs(doc);
    json_t *subject = NULL;
    size_t i;
    json_t *field;
    json_array_foreach(json_object_get(doc, "fields"), i, field) {
        if (strcmp(json_string_value(json_object_get(field, "name")), "subject") == 0) {
            subject = field;
        }
    }
    assert_non_null(subject);
    assert_non_null(strstr(json_string_value(json_object_get(subject, "doc")),
                           "audit-domain pseudonym"));
    assert_non_null(strstr(json_string_value(json_object_get(subject, "doc")), PS_AUDIT_DOMAIN));
    json_decref(doc);

    /* The plan schema: documented everywhere, no field tagged (paths only). */
    assert_string_equal(ps_schema_name(plan_schema), "uk.nhs.pseudostream.audit.AuditPlan");
    doc = json_loads(ps_schema_json(plan_schema), 0, &jerr);
    assert_non_null(doc);
    check_docs(doc);
    json_decref(doc);
    for (int n = 1; n < (int)ps_schema_node_count(plan_schema); n++) {
        assert_int_equal(ps_schema_node(plan_schema, n)->tags, 0);
    }
    /* What the binary writes is what the files say. */
    assert_string_equal(ps_schema_json(audit_schema), ps_audit_schema_json);
    assert_string_equal(ps_schema_json(plan_schema), ps_audit_plan_schema_json);
}

/* ---------------------------------------------------------------- records */

static const char *const research_kept[] = {"msh.message_type", "obx[].value"};
static const char *const research_pseudonymised[] = {"pid.nhs_number"};
static const char *const research_generalised[] = {"pid.date_of_birth:year",
                                                   "pid.address.postcode:district"};
static const char *const research_dropped[] = {"pid.name[].family", "pid.name[].given",
                                               "nte[].comment"};

#define PLAN_WARD "9f86d081884c7d65/ward/5eedc0dedfacade1"
#define PLAN_RESEARCH "9f86d081884c7d65/research/5eedc0dedfacade1"

static void test_disclosed(void **state)
{
    (void)state;
    const struct ps_audit_destination dests[] = {
        {.name = "ward", .topic = "ward.dashboard", .decision = PS_AUDIT_DISCLOSED,
         .plan_id = PLAN_WARD},
        {.name = "research", .topic = "research.events", .decision = PS_AUDIT_DISCLOSED,
         .plan_id = PLAN_RESEARCH},
        {.name = "icb", .topic = "commissioning.events", .decision = PS_AUDIT_WITHHELD,
         .reason = "predicate", .detail = "dg1[].code in \"restricted\""},
    };
    const struct ps_audit_record rec = {
        .event_id = "MSG00042",
        .event_type = "ADT^A01",
        .event_time_ms = 1700000000123,
        .source_topic = "hospital.events",
        .source_partition = 7,
        .source_offset = 123456789012,
        .policy_hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        .key_id = 2,
        .opt_out_as_of_ms = 1699999000000,
        .subject = "2.abcdefghijklmnopqrstuvwxyz234567",
        .dead_letter_reason = NULL,
        .destinations = dests,
        .destination_count = 3,
        .processed_at_ms = 1700000001000,
    };
    check_round_trip(
        &rec,
        "{\"event_id\":\"MSG00042\",\"event_type\":\"ADT^A01\","
        "\"event_time\":\"2023-11-14T22:13:20.123Z\",\"source_topic\":\"hospital.events\","
        "\"source_partition\":7,\"source_offset\":123456789012,"
        "\"policy_hash\":\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\","
        "\"key_id\":2,\"opt_out_as_of\":\"2023-11-14T21:56:40.000Z\","
        "\"subject\":\"2.abcdefghijklmnopqrstuvwxyz234567\",\"dead_letter_reason\":null,"
        "\"destinations\":["
        "{\"name\":\"ward\",\"topic\":\"ward.dashboard\",\"decision\":\"DISCLOSED\","
        "\"reason\":null,\"detail\":null,\"plan\":\"" PLAN_WARD "\"},"
        "{\"name\":\"research\",\"topic\":\"research.events\",\"decision\":\"DISCLOSED\","
        "\"reason\":null,\"detail\":null,\"plan\":\"" PLAN_RESEARCH "\"},"
        "{\"name\":\"icb\",\"topic\":\"commissioning.events\",\"decision\":\"WITHHELD\","
        "\"reason\":\"predicate\",\"detail\":\"dg1[].code in \\\"restricted\\\"\","
        "\"plan\":null}],"
        "\"processed_at\":\"2023-11-14T22:13:21.000Z\"}");
}

static void test_plan(void **state)
{
    (void)state;
    const struct ps_audit_plan plan = {
        .plan_id = PLAN_RESEARCH,
        .policy_hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        .destination = "research",
        .topic = "research.events",
        .input_schema = "uk.nhs.example.Hl7v2Event",
        .input_fingerprint = UINT64_C(0x5eedc0dedfacade1),
        .kept = research_kept, .kept_count = 2,
        .pseudonymised = research_pseudonymised, .pseudonymised_count = 1,
        .generalised = research_generalised, .generalised_count = 2,
        .dropped = research_dropped, .dropped_count = 3};
    check_plan_round_trip(
        &plan,
        "{\"plan_id\":\"" PLAN_RESEARCH "\","
        "\"policy_hash\":\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\","
        "\"destination\":\"research\",\"topic\":\"research.events\","
        "\"input_schema\":\"uk.nhs.example.Hl7v2Event\","
        "\"input_fingerprint\":\"5eedc0dedfacade1\","
        "\"kept\":[\"msh.message_type\",\"obx[].value\"],"
        "\"pseudonymised\":[\"pid.nhs_number\"],"
        "\"generalised\":[\"pid.date_of_birth:year\",\"pid.address.postcode:district\"],"
        "\"dropped\":[\"pid.name[].family\",\"pid.name[].given\",\"nte[].comment\"]}");

    /* The id names the policy version, the destination and the input schema. */
    char id[PS_AUDIT_PLAN_ID_MAX];
    struct ps_error err = {0};
    assert_ok(ps_audit_plan_id(plan.policy_hash, "research", plan.input_fingerprint, id, &err),
              &err);
    assert_string_equal(id, PLAN_RESEARCH);
    assert_ok(ps_audit_plan_id(plan.policy_hash, "research", 1, id, &err), &err);
    assert_string_equal(id, "9f86d081884c7d65/research/0000000000000001");
    assert_ok(ps_audit_plan_id("abc", "research", 1, id, &err), &err);
    assert_string_equal(id, "abc/research/0000000000000001");
    assert_int_equal(ps_audit_plan_id("", "research", 1, id, &err), PS_ERR_INVALID);
    char long_name[200];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    assert_int_equal(ps_audit_plan_id(plan.policy_hash, long_name, 1, id, &err), PS_ERR_INVALID);
    long_name[PS_AUDIT_PLAN_ID_MAX - 35] = '\0';
    assert_ok(ps_audit_plan_id(plan.policy_hash, long_name, 1, id, &err), &err);
    assert_int_equal(strlen(id), PS_AUDIT_PLAN_ID_MAX - 1);

    /* Refusals name the field and leave the buffer as it was. */
    static const char *const one_null[] = {"a", NULL};
    struct {
        struct ps_audit_plan plan;
        const char *needle;
    } bad[8];
    for (size_t i = 0; i < 8; i++) {
        bad[i].plan = plan;
    }
    bad[0].plan.plan_id = NULL, bad[0].needle = "plan_id";
    bad[1].plan.policy_hash = NULL, bad[1].needle = "policy_hash";
    bad[2].plan.destination = NULL, bad[2].needle = "destination";
    bad[3].plan.input_schema = NULL, bad[3].needle = "input_schema";
    bad[4].plan.kept = NULL, bad[4].needle = "kept";
    bad[5].plan.dropped = one_null, bad[5].plan.dropped_count = 2, bad[5].needle = "dropped";
    bad[6].plan.generalised = NULL, bad[6].needle = "generalised";
    bad[7].plan.pseudonymised = one_null, bad[7].plan.pseudonymised_count = 2;
    bad[7].needle = "pseudonymised";
    for (size_t i = 0; i < 8; i++) {
        struct ps_buf buf;
        ps_buf_init(&buf, 0);
        assert_ok(ps_buf_append(&buf, "head", 4), &err);
        assert_int_equal(ps_audit_plan_encode(&bad[i].plan, &buf, &err), PS_ERR_INVALID);
        if (!strstr(err.msg, bad[i].needle)) {
            fail_msg("message '%s' does not name '%s'", err.msg, bad[i].needle);
        }
        assert_int_equal(buf.len, 4);
        ps_buf_free(&buf);
    }
}

static void test_withheld(void **state)
{
    (void)state;
    /* No valid NHS number: no subject, no key; every secondary-use destination
     * withheld, direct care still served; no opt-out state configured. */
    const struct ps_audit_destination dests[] = {
        {.name = "ward", .topic = "ward.dashboard", .decision = PS_AUDIT_DISCLOSED,
         .plan_id = PLAN_WARD},
        {.name = "research", .topic = "research.events", .decision = PS_AUDIT_WITHHELD,
         .reason = "nhs_invalid", .detail = "pid.nhs_number"},
        {.name = "icb", .topic = "commissioning.events", .decision = PS_AUDIT_WITHHELD,
         .reason = "opt_out"},
    };
    const struct ps_audit_record rec = {
        .event_id = "",
        .event_type = "Observation",
        .event_time_ms = 1234,
        .source_topic = "fhir.events",
        .source_partition = 0,
        .source_offset = 0,
        .policy_hash = "00",
        .key_id = -1,
        .opt_out_as_of_ms = -1,
        .subject = NULL,
        .destinations = dests,
        .destination_count = 3,
        .processed_at_ms = 0,
    };
    check_round_trip(
        &rec,
        "{\"event_id\":\"\",\"event_type\":\"Observation\","
        "\"event_time\":\"1970-01-01T00:00:01.234Z\",\"source_topic\":\"fhir.events\","
        "\"source_partition\":0,\"source_offset\":0,\"policy_hash\":\"00\",\"key_id\":null,"
        "\"opt_out_as_of\":null,\"subject\":null,\"dead_letter_reason\":null,"
        "\"destinations\":["
        "{\"name\":\"ward\",\"topic\":\"ward.dashboard\",\"decision\":\"DISCLOSED\","
        "\"reason\":null,\"detail\":null,\"plan\":\"" PLAN_WARD "\"},"
        "{\"name\":\"research\",\"topic\":\"research.events\",\"decision\":\"WITHHELD\","
        "\"reason\":\"nhs_invalid\",\"detail\":\"pid.nhs_number\",\"plan\":null},"
        "{\"name\":\"icb\",\"topic\":\"commissioning.events\",\"decision\":\"WITHHELD\","
        "\"reason\":\"opt_out\",\"detail\":null,\"plan\":null}],"
        "\"processed_at\":\"1970-01-01T00:00:00.000Z\"}");
}

static void test_dead_letter(void **state)
{
    (void)state;
    /* Undecodable input: nothing known of the event but where it came from;
     * no destination saw it. Extreme values of the numeric fields. */
    const struct ps_audit_record rec = {
        .event_id = NULL,
        .event_type = NULL,
        .event_time_ms = -1,
        .source_topic = "hospital.events",
        .source_partition = INT32_MAX,
        .source_offset = INT64_MAX,
        .policy_hash = "ab",
        .key_id = UINT32_MAX,
        .opt_out_as_of_ms = 1700000000123,
        .subject = NULL,
        .dead_letter_reason = "decode",
        .destinations = NULL,
        .destination_count = 0,
        .processed_at_ms = 1700000001000,
    };
    check_round_trip(
        &rec,
        "{\"event_id\":null,\"event_type\":null,\"event_time\":null,"
        "\"source_topic\":\"hospital.events\",\"source_partition\":2147483647,"
        "\"source_offset\":9223372036854775807,\"policy_hash\":\"ab\",\"key_id\":4294967295,"
        "\"opt_out_as_of\":\"2023-11-14T22:13:20.123Z\",\"subject\":null,"
        "\"dead_letter_reason\":\"decode\",\"destinations\":[],"
        "\"processed_at\":\"2023-11-14T22:13:21.000Z\"}");
}

/* ----------------------------------------------------------------- errors */

static void expect_refused(const struct ps_audit_record *rec, const char *needle)
{
    struct ps_error err = {0};
    struct ps_buf buf;
    ps_buf_init(&buf, 0);
    assert_ok(ps_buf_append(&buf, "head", 4), &err);
    assert_int_equal(ps_audit_encode(rec, &buf, &err), PS_ERR_INVALID);
    if (!strstr(err.msg, needle)) {
        fail_msg("message '%s' does not name '%s'", err.msg, needle);
    }
    /* Nothing of a refused record is left behind. */
    assert_int_equal(buf.len, 4);
    ps_buf_free(&buf);
}

static void test_refused(void **state)
{
    (void)state;
    struct ps_audit_destination dst = {.name = "research", .topic = "research.events",
                                       .decision = PS_AUDIT_DISCLOSED, .plan_id = PLAN_RESEARCH};
    struct ps_audit_record base = {.event_time_ms = -1, .source_topic = "t",
                                   .policy_hash = "h", .key_id = -1, .opt_out_as_of_ms = -1,
                                   .destinations = &dst, .destination_count = 1};
    struct ps_audit_record rec = base;
    struct ps_audit_destination d = dst;
    struct ps_error err = {0};

    assert_int_equal(ps_audit_encode(NULL, NULL, &err), PS_ERR_INVALID);

    rec.source_topic = NULL;
    expect_refused(&rec, "source_topic");
    rec = base;
    rec.policy_hash = NULL;
    expect_refused(&rec, "policy_hash");
    rec = base;
    rec.key_id = -2;
    expect_refused(&rec, "key_id");
    rec.key_id = (int64_t)UINT32_MAX + 1;
    expect_refused(&rec, "key_id");
    rec = base;
    rec.destinations = NULL;
    expect_refused(&rec, "destinations");

    rec = base;
    rec.destinations = &d;
    d.topic = NULL;
    expect_refused(&rec, "topic");
    d = dst;
    d.name = NULL;
    expect_refused(&rec, "name");
    d = dst;
    d.decision = (enum ps_audit_decision)7;
    expect_refused(&rec, "decision");
    d = dst;
    d.decision = PS_AUDIT_WITHHELD;
    expect_refused(&rec, "without a reason");
    d = dst;
    d.reason = "opt_out";
    expect_refused(&rec, "disclosed with");
    d = dst;
    d.detail = "pid.nhs_number";
    expect_refused(&rec, "disclosed with");
    d = dst;
    d.plan_id = NULL;
    expect_refused(&rec, "disclosed without a plan");
    d = dst;
    d.decision = PS_AUDIT_WITHHELD;
    d.reason = "opt_out";
    expect_refused(&rec, "withheld with a plan");

    /* Past the buffer's maximum: PS_ERR_LIMIT and the buffer as it was. */
    rec = base;
    for (size_t max = 1; max < 40; max++) {
        struct ps_buf buf;
        ps_buf_init(&buf, max);
        ps_err_t rc = ps_audit_encode(&rec, &buf, &err);
        if (rc == PS_OK) {
            assert_true(buf.len <= max);
        } else {
            assert_int_equal(rc, PS_ERR_LIMIT);
            assert_int_equal(buf.len, 0);
        }
        ps_buf_free(&buf);
    }
}

/* ----------------------------------------------------------------- writer */

static void expect_bytes(const struct ps_buf *buf, const char *hex)
{
    char got[256] = "";
    for (size_t i = 0; i < buf->len && 2 * i + 2 < sizeof(got); i++) {
        snprintf(got + 2 * i, 3, "%02x", buf->data[i]);
    }
    assert_string_equal(got, hex);
}

static void test_writer(void **state)
{
    (void)state;
    struct ps_buf buf;
    ps_buf_init(&buf, 0);

    /* Zigzag varints as the specification's examples, and both ends. */
    static const struct {
        int64_t v;
        const char *hex;
    } longs[] = {
        {0, "00"}, {-1, "01"}, {1, "02"}, {-2, "03"}, {2, "04"}, {-64, "7f"}, {64, "8001"},
        {8192, "808001"}, {INT64_MAX, "feffffffffffffffff01"},
        {INT64_MIN, "ffffffffffffffffff01"},
    };
    for (size_t i = 0; i < sizeof(longs) / sizeof(longs[0]); i++) {
        ps_buf_reset(&buf);
        assert_int_equal(ps_avro_write_long(&buf, longs[i].v), PS_OK);
        expect_bytes(&buf, longs[i].hex);
    }

    ps_buf_reset(&buf);
    assert_int_equal(ps_avro_write_string(&buf, "foo"), PS_OK);
    assert_int_equal(ps_avro_write_string(&buf, ""), PS_OK);
    assert_int_equal(ps_avro_write_string(&buf, NULL), PS_ERR_INVALID);
    expect_bytes(&buf, "06666f6f00");

    ps_buf_reset(&buf);
    assert_int_equal(ps_avro_write_optional_string(&buf, NULL), PS_OK);
    assert_int_equal(ps_avro_write_optional_string(&buf, "a"), PS_OK);
    assert_int_equal(ps_avro_write_null_union(&buf, 0), PS_OK);
    assert_int_equal(ps_avro_write_null_union(&buf, 5), PS_OK);
    assert_int_equal(ps_avro_write_union_index(&buf, 3), PS_OK);
    assert_int_equal(ps_avro_write_union_index(&buf, -1), PS_ERR_INVALID);
    expect_bytes(&buf, "000202610002" "06");

    /* An empty array is its end marker alone; a full one a single block. */
    static const char *const items[] = {"a", "bc"};
    ps_buf_reset(&buf);
    assert_int_equal(ps_avro_write_string_array(&buf, NULL, 0), PS_OK);
    assert_int_equal(ps_avro_write_string_array(&buf, items, 2), PS_OK);
    assert_int_equal(ps_avro_write_string_array(&buf, NULL, 1), PS_ERR_INVALID);
    expect_bytes(&buf, "00" "04" "0261" "046263" "00");

    ps_buf_reset(&buf);
    assert_int_equal(ps_avro_write_array_block(&buf, 3), PS_OK);
    assert_int_equal(ps_avro_write_array_block(&buf, 0), PS_OK);
    assert_int_equal(ps_avro_write_bytes(&buf, "\x01\xff", 2), PS_OK);
    expect_bytes(&buf, "0600" "0401ff");
    ps_buf_free(&buf);

    /* The maximum holds for every primitive. */
    ps_buf_init(&buf, 2);
    assert_int_equal(ps_avro_write_string(&buf, "abc"), PS_ERR_LIMIT);
    ps_buf_free(&buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema),      cmocka_unit_test(test_disclosed),
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_withheld),    cmocka_unit_test(test_dead_letter),
        cmocka_unit_test(test_refused),     cmocka_unit_test(test_writer),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
