/*
 * ps_codec: the readable JSON form both ways, reading events by node, and
 * hostile datums refused cleanly (every test runs under ASan/UBSan: a clean
 * error means no crash and no leak). All data is artificial: NHS numbers in
 * the 999 test range, made-up names.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ps_avro_internal.h"
#include "ps_codec.h"
#include "ps_schema.h"

#define HL7_SCHEMA "schemas/hl7v2/hl7v2_event.avsc"
#define FHIR_SCHEMA "schemas/fhir/fhir_event.avsc"

static const char *const hl7_adt_a01 =
    "{\"msh\":{\"message_control_id\":\"MSG00001\",\"sending_application\":\"PAS\","
    "\"sending_facility\":\"RXX01\",\"message_type\":\"ADT^A01\","
    "\"event_time\":\"2024-03-01T10:15:30.123Z\",\"version_id\":\"2.4\"},"
    "\"pid\":{\"nhs_number\":\"9990000018\",\"nhs_number_status\":\"01\","
    "\"local_identifiers\":[{\"id\":\"H1234567\",\"assigning_authority\":\"RXX\","
    "\"identifier_type\":\"MR\"}],"
    "\"name\":[{\"family\":\"Testperson\",\"given\":[\"Alexa\",\"Jo\"],\"prefix\":\"Ms\","
    "\"name_type\":\"L\"},{\"family\":\"Maidenname\",\"given\":[\"Alexa\"],\"prefix\":null,"
    "\"name_type\":\"M\"}],"
    "\"date_of_birth\":\"1980-02-29\",\"sex\":\"F\",\"ethnic_category\":\"A\","
    "\"address\":[{\"lines\":[\"1 Example Street\",\"Sampletown\"],\"city\":\"Leeds\","
    "\"county\":null,\"postcode\":\"LS1 4AP\",\"address_type\":\"H\"}],"
    "\"telecom\":[{\"use\":\"PRN\",\"equipment\":\"PH\",\"value\":\"01130000000\"}],"
    "\"date_of_death\":null,\"death_indicator\":false},"
    "\"pd1\":{\"gp_practice\":\"B00001\",\"gp_code\":\"G9999998\"},"
    "\"pv1\":{\"patient_class\":\"I\",\"ward\":\"WARD 7\",\"room\":null,\"bed\":\"12\","
    "\"admission_method\":\"21\",\"consultant_code\":\"C9999991\","
    "\"consultant_name\":\"Dr Example\",\"treatment_function_code\":\"300\","
    "\"visit_number\":\"V0000042\",\"admit_time\":\"2024-03-01T09:58:00.000Z\","
    "\"discharge_time\":null},"
    "\"nk1\":[{\"family\":\"Testperson\",\"given\":\"Sam\",\"relationship\":\"SPO\","
    "\"telecom\":null}],"
    "\"dg1\":[{\"coding_system\":\"I10\",\"code\":\"J18.9\",\"description\":\"Pneumonia\","
    "\"diagnosis_type\":\"A\",\"diagnosis_time\":\"2024-03-01T10:00:00.000Z\"}],"
    "\"mrg\":null,\"obr\":null,\"obx\":[]}";

static const char *const fhir_observation =
    "{\"id\":\"obs-1/_history/2\",\"resourceType\":\"Observation\","
    "\"lastUpdated\":\"2024-05-06T07:08:09.010Z\",\"source\":\"RYY\","
    "\"patient\":{\"id\":\"pat-77\",\"nhsNumber\":\"9990000026\","
    "\"nhsNumberVerificationStatus\":\"01\","
    "\"identifier\":[{\"system\":\"https://example.org/mrn\",\"value\":\"M000123\"}],"
    "\"name\":[{\"use\":\"official\",\"family\":\"Madeup\",\"given\":[\"Chris\"],"
    "\"prefix\":[\"Mx\"]}],"
    "\"telecom\":[{\"system\":\"email\",\"value\":\"chris@example.org\",\"use\":\"home\"}],"
    "\"gender\":\"unknown\",\"birthDate\":\"1975-07\",\"deceasedDateTime\":null,"
    "\"address\":[{\"use\":\"home\",\"line\":[\"2 Fictional Road\"],\"city\":\"York\","
    "\"district\":null,\"postalCode\":\"YO1 7HH\"}],"
    "\"generalPractitioner\":[{\"identifierSystem\":"
    "\"https://fhir.nhs.uk/Id/ods-organization-code\",\"identifierValue\":\"B00002\"}],"
    "\"ethnicCategory\":null},"
    "\"encounter\":null,"
    "\"observation\":{\"id\":\"obs-1\",\"status\":\"final\","
    "\"codeSystem\":\"http://snomed.info/sct\","
    "\"code\":\"271649006\",\"display\":\"Systolic blood pressure\",\"valueQuantity\":128.5,"
    "\"valueUnit\":\"mm[Hg]\",\"valueString\":null,\"interpretation\":\"N\","
    "\"effectiveDateTime\":\"2024-05-06T07:00:00.000Z\",\"note\":[\"seated\",\"left arm\"]}}";

/* A schema with the types the reference schemas lack. */
static const char *const misc_schema =
    "{\"type\":\"record\",\"name\":\"Misc\",\"namespace\":\"t\",\"fields\":["
    "{\"name\":\"b\",\"type\":\"bytes\"},"
    "{\"name\":\"fx\",\"type\":{\"type\":\"fixed\",\"name\":\"F2\",\"size\":2}},"
    "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"Colour\",\"symbols\":[\"RED\","
    "\"GREEN\"]}},"
    "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"long\"}},"
    "{\"name\":\"u\",\"type\":[\"null\",\"int\",\"string\","
    "{\"type\":\"array\",\"items\":\"int\"}]},"
    "{\"name\":\"f\",\"type\":\"float\"},"
    "{\"name\":\"opt\",\"type\":[{\"type\":\"int\",\"logicalType\":\"date\"},\"null\"]},"
    "{\"name\":\"flag\",\"type\":\"boolean\"}]}";

static struct ps_schema *load_file(const char *path)
{
    struct ps_schema *schema = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    assert_int_equal(ps_schema_load_file(path, NULL, &schema, &err), PS_OK);
    return schema;
}

static struct ps_schema *load_text(const char *json)
{
    struct ps_schema *schema = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    ps_err_t rc = ps_schema_load_json(json, "test", NULL, &schema, &err);
    if (rc != PS_OK) {
        print_error("%s\n", err.msg);
    }
    assert_int_equal(rc, PS_OK);
    return schema;
}

static void to_datum_len(const struct ps_schema *schema, const char *json, size_t len,
                         struct ps_buf *out)
{
    struct ps_error err;
    ps_error_clear(&err);
    ps_err_t rc = ps_codec_json_to_datum(schema, json, len, out, &err);
    if (rc != PS_OK) {
        print_error("%s\n", err.msg);
    }
    assert_int_equal(rc, PS_OK);
}

static void to_datum(const struct ps_schema *schema, const char *json, struct ps_buf *out)
{
    to_datum_len(schema, json, strlen(json), out);
}

/* Avro C writes the decoded value again: the same bytes as our encoder. */
static void check_avro_c_agrees(struct ps_event *ev, const struct ps_buf *datum)
{
    size_t size = 0;
    assert_int_equal(avro_value_sizeof(ps_event_avro(ev), &size), 0);
    assert_int_equal(size, datum->len);
    char *bytes = malloc(size + 1);
    avro_writer_t writer = avro_writer_memory(bytes, (int64_t)size + 1);
    assert_int_equal(avro_value_write(writer, ps_event_avro(ev)), 0);
    assert_int_equal(avro_writer_tell(writer), (int64_t)size);
    assert_memory_equal(bytes, datum->data, size);
    avro_writer_free(writer);
    free(bytes);
}

static void round_trip(const char *schema_path, const char *json)
{
    struct ps_schema *schema = load_file(schema_path);
    struct ps_decoder *dec = NULL;
    struct ps_event *ev = NULL;
    struct ps_error err;
    struct ps_buf datum, text, datum2;
    ps_buf_init(&datum, 0);
    ps_buf_init(&text, 0);
    ps_buf_init(&datum2, 0);
    assert_int_equal(ps_decoder_new(NULL, &dec, &err), PS_OK);

    to_datum(schema, json, &datum);
    assert_int_equal(ps_decoder_decode(dec, schema, datum.data, datum.len, &ev, &err), PS_OK);
    assert_ptr_equal(ps_event_schema(ev), schema);
    check_avro_c_agrees(ev, &datum);
    assert_int_equal(ps_event_to_json(ev, &text, &err), PS_OK);

    json_t *want = json_loads(json, 0, NULL);
    json_t *got = json_loadb((const char *)text.data, text.len, JSON_ALLOW_NUL, NULL);
    assert_non_null(got);
    if (!json_equal(want, got)) {
        print_error("got %.*s\n", (int)text.len, (const char *)text.data);
    }
    assert_true(json_equal(want, got));
    assert_null(memchr(text.data, '\n', text.len));

    assert_int_equal(text.data[text.len], '\0');
    to_datum_len(schema, (const char *)text.data, text.len, &datum2);
    assert_int_equal(datum2.len, datum.len);
    assert_memory_equal(datum2.data, datum.data, datum.len);

    json_decref(want);
    json_decref(got);
    ps_buf_free(&datum);
    ps_buf_free(&text);
    ps_buf_free(&datum2);
    ps_decoder_destroy(dec);
    ps_schema_destroy(schema);
}

static void test_round_trip_hl7v2(void **state)
{
    (void)state;
    round_trip(HL7_SCHEMA, hl7_adt_a01);
}

static void test_round_trip_fhir(void **state)
{
    (void)state;
    round_trip(FHIR_SCHEMA, fhir_observation);
}

static void test_round_trip_misc(void **state)
{
    (void)state;
    struct ps_schema *schema = load_text(misc_schema);
    const char *samples[] = {
        "{\"b\":\"a\\u00ff\\u0000z\",\"fx\":\"\\u00e9!\",\"e\":\"GREEN\",\"m\":{\"x\":-5,"
        "\"y\":1099511627776},\"u\":\"text\",\"f\":1.5,\"opt\":\"2000-01-01\",\"flag\":true}",
        "{\"b\":\"\",\"fx\":\"ab\",\"e\":\"RED\",\"m\":{},\"u\":[1,2,3],\"f\":-0.25,"
        "\"opt\":null,\"flag\":false}",
        "{\"b\":\"q\",\"fx\":\"ab\",\"e\":\"RED\",\"m\":{},\"u\":null,\"f\":0.0,"
        "\"opt\":\"1969-12-31\",\"flag\":false}",
        "{\"b\":\"q\",\"fx\":\"ab\",\"e\":\"RED\",\"m\":{},\"u\":-7,\"f\":0.0,"
        "\"opt\":null,\"flag\":false}",
    };
    struct ps_decoder *dec = NULL;
    struct ps_error err;
    assert_int_equal(ps_decoder_new(NULL, &dec, &err), PS_OK);
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        struct ps_buf datum, text;
        struct ps_event *ev = NULL;
        ps_buf_init(&datum, 0);
        ps_buf_init(&text, 0);
        to_datum(schema, samples[i], &datum);
        assert_int_equal(ps_decoder_decode(dec, schema, datum.data, datum.len, &ev, &err),
                         PS_OK);
        check_avro_c_agrees(ev, &datum);
        assert_int_equal(ps_event_to_json(ev, &text, &err), PS_OK);
        json_t *want = json_loads(samples[i], JSON_ALLOW_NUL, NULL);
        json_t *got = json_loadb((const char *)text.data, text.len, JSON_ALLOW_NUL, NULL);
        if (!json_equal(want, got)) {
            print_error("got %.*s\n", (int)text.len, (const char *)text.data);
        }
        assert_true(json_equal(want, got));
        json_decref(want);
        json_decref(got);
        ps_buf_free(&datum);
        ps_buf_free(&text);
    }
    ps_decoder_destroy(dec);
    ps_schema_destroy(schema);
}

struct collected {
    char text[8][32];
    int kinds[8];
    int count;
};

static int collect(void *opaque, const struct ps_scalar *value)
{
    struct collected *c = opaque;
    if (c->count < 8) {
        c->kinds[c->count] = value->kind;
        if (value->kind == PS_SCALAR_STRING) {
            snprintf(c->text[c->count], sizeof(c->text[0]), "%.*s", (int)value->len, value->s);
        } else if (value->kind == PS_SCALAR_INT) {
            snprintf(c->text[c->count], sizeof(c->text[0]), "%lld", (long long)value->i);
        }
    }
    c->count++;
    return 0;
}

static int stop_at_first(void *opaque, const struct ps_scalar *value)
{
    (void)value;
    (*(int *)opaque)++;
    return 1;
}

static void test_visit_and_get(void **state)
{
    (void)state;
    struct ps_schema *schema = load_file(HL7_SCHEMA);
    struct ps_decoder *dec = NULL;
    struct ps_event *ev = NULL;
    struct ps_error err;
    struct ps_buf datum;
    ps_buf_init(&datum, 0);
    assert_int_equal(ps_decoder_new(NULL, &dec, &err), PS_OK);
    to_datum(schema, hl7_adt_a01, &datum);
    assert_int_equal(ps_decoder_decode(dec, schema, datum.data, datum.len, &ev, &err), PS_OK);

    struct collected c = {0};
    assert_int_equal(ps_event_visit(ev, ps_schema_find(schema, "pid.name[].given[]"), collect,
                                    &c), PS_OK);
    assert_int_equal(c.count, 3);
    assert_string_equal(c.text[0], "Alexa");
    assert_string_equal(c.text[1], "Jo");
    assert_string_equal(c.text[2], "Alexa");

    memset(&c, 0, sizeof(c));
    ps_event_visit(ev, ps_schema_find(schema, "pid.name[].prefix"), collect, &c);
    assert_int_equal(c.count, 2);
    assert_int_equal(c.kinds[0], PS_SCALAR_STRING);
    assert_int_equal(c.kinds[1], PS_SCALAR_NULL);

    /* mrg is absent: its leaves are not visited at all. */
    memset(&c, 0, sizeof(c));
    ps_event_visit(ev, ps_schema_find(schema, "mrg.prior_nhs_number"), collect, &c);
    assert_int_equal(c.count, 0);
    memset(&c, 0, sizeof(c));
    ps_event_visit(ev, ps_schema_find(schema, "obx[].code"), collect, &c);
    assert_int_equal(c.count, 0);

    int stops = 0;
    ps_event_visit(ev, ps_schema_find(schema, "pid.name[].given[]"), stop_at_first, &stops);
    assert_int_equal(stops, 1);

    struct ps_scalar v;
    assert_int_equal(ps_event_get(ev, ps_schema_find(schema, "pid.nhs_number"), &v), PS_OK);
    assert_int_equal(v.kind, PS_SCALAR_STRING);
    assert_int_equal(v.len, 10);
    assert_memory_equal(v.s, "9990000018", 10);
    assert_int_equal(ps_event_get(ev, ps_schema_find(schema, "msh.event_time"), &v), PS_OK);
    assert_int_equal(v.kind, PS_SCALAR_INT);
    assert_int_equal(v.i, INT64_C(1709288130123));
    assert_int_equal(ps_event_get(ev, ps_schema_find(schema, "pid.date_of_birth"), &v), PS_OK);
    assert_int_equal(v.i, 3711);
    assert_int_equal(ps_event_get(ev, ps_schema_find(schema, "pid.death_indicator"), &v), PS_OK);
    assert_int_equal(v.kind, PS_SCALAR_BOOL);
    assert_int_equal(v.i, 0);
    assert_int_equal(ps_event_get(ev, ps_schema_find(schema, "pv1.room"), &v), PS_OK);
    assert_int_equal(v.kind, PS_SCALAR_NULL);
    assert_int_equal(ps_event_get(ev, ps_schema_find(schema, "obr.service_code"), &v), PS_OK);
    assert_int_equal(v.kind, PS_SCALAR_NULL);

    assert_int_equal(ps_event_get(ev, ps_schema_find(schema, "pid"), &v), PS_ERR_INVALID);
    assert_int_equal(ps_event_get(ev, 0, &v), PS_ERR_INVALID);
    assert_int_equal(ps_event_get(ev, 100000, &v), PS_ERR_INVALID);
    assert_int_equal(ps_event_visit(ev, ps_schema_find(schema, "pid.name"), collect, &c),
                     PS_ERR_INVALID);

    ps_buf_free(&datum);
    ps_decoder_destroy(dec);
    ps_schema_destroy(schema);
}

/* One decoder, two schemas, values reused across records. */
static void test_decoder_reuse(void **state)
{
    (void)state;
    struct ps_schema *hl7 = load_file(HL7_SCHEMA);
    struct ps_schema *fhir = load_file(FHIR_SCHEMA);
    struct ps_decoder *dec = NULL;
    struct ps_event *ev = NULL;
    struct ps_error err;
    struct ps_buf a, b;
    ps_buf_init(&a, 0);
    ps_buf_init(&b, 0);
    to_datum(hl7, hl7_adt_a01, &a);
    to_datum(fhir, fhir_observation, &b);
    assert_int_equal(ps_decoder_new(NULL, &dec, &err), PS_OK);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(ps_decoder_decode(dec, hl7, a.data, a.len, &ev, &err), PS_OK);
        assert_ptr_equal(ps_event_schema(ev), hl7);
        assert_int_equal(ps_decoder_decode(dec, fhir, b.data, b.len, &ev, &err), PS_OK);
        assert_ptr_equal(ps_event_schema(ev), fhir);
    }
    check_avro_c_agrees(ev, &b);
    ps_buf_free(&a);
    ps_buf_free(&b);
    ps_decoder_destroy(dec);
    ps_schema_destroy(hl7);
    ps_schema_destroy(fhir);
}

static void expect_refused(struct ps_decoder *dec, const struct ps_schema *schema,
                           const void *data, size_t len, ps_err_t code, const char *needle)
{
    struct ps_event *ev = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    ps_err_t rc = ps_decoder_decode(dec, schema, data, len, &ev, &err);
    if (rc != code || !strstr(err.msg, needle)) {
        print_error("rc %d: %s\n", rc, err.msg);
    }
    assert_int_equal(rc, code);
    assert_null(ev);
    assert_non_null(strstr(err.msg, needle));
    /* Messages name places, never values. */
    assert_null(strstr(err.msg, "999"));
    assert_null(strstr(err.msg, "Testperson"));
}

static void test_malformed_hl7v2(void **state)
{
    (void)state;
    struct ps_schema *hl7 = load_file(HL7_SCHEMA);
    struct ps_schema *fhir = load_file(FHIR_SCHEMA);
    struct ps_decoder *dec = NULL;
    struct ps_error err;
    struct ps_buf datum, other;
    ps_buf_init(&datum, 0);
    ps_buf_init(&other, 0);
    to_datum(hl7, hl7_adt_a01, &datum);
    to_datum(fhir, fhir_observation, &other);
    assert_int_equal(ps_decoder_new(NULL, &dec, &err), PS_OK);

    expect_refused(dec, hl7, "", 0, PS_ERR_DECODE, "field 'msh.message_control_id': datum ends");
    expect_refused(dec, hl7, NULL, 0, PS_ERR_DECODE, "datum ends early");
    /* Truncated inside a string: the declared length passes the end. */
    expect_refused(dec, hl7, datum.data, 5, PS_ERR_DECODE,
                   "'msh.message_control_id': length beyond the end");
    for (size_t cut = 0; cut < datum.len; cut++) {
        struct ps_event *ev = NULL;
        assert_int_not_equal(ps_decoder_decode(dec, hl7, datum.data, cut, &ev, &err), PS_OK);
    }
    /* Trailing garbage. */
    uint8_t *longer = malloc(datum.len + 3);
    memcpy(longer, datum.data, datum.len);
    memcpy(longer + datum.len, "\x02xy", 3);
    expect_refused(dec, hl7, longer, datum.len + 3, PS_ERR_DECODE, "3 trailing bytes");
    free(longer);
    /* A valid datum of another schema. */
    struct ps_event *ev = NULL;
    ps_err_t rc = ps_decoder_decode(dec, hl7, other.data, other.len, &ev, &err);
    assert_true(rc == PS_ERR_DECODE || rc == PS_ERR_LIMIT);
    rc = ps_decoder_decode(dec, fhir, datum.data, datum.len, &ev, &err);
    assert_true(rc == PS_ERR_DECODE || rc == PS_ERR_LIMIT);
    /* Every single byte flipped: no crash, no leak, and decode still works after. */
    for (size_t i = 0; i < datum.len; i++) {
        uint8_t saved = datum.data[i];
        datum.data[i] ^= 0xff;
        ps_decoder_decode(dec, hl7, datum.data, datum.len, &ev, &err);
        datum.data[i] = saved;
    }
    assert_int_equal(ps_decoder_decode(dec, hl7, datum.data, datum.len, &ev, &err), PS_OK);
    check_avro_c_agrees(ev, &datum);

    ps_buf_free(&datum);
    ps_buf_free(&other);
    ps_decoder_destroy(dec);
    ps_schema_destroy(hl7);
    ps_schema_destroy(fhir);
}

static void test_malformed_lengths_and_counts(void **state)
{
    (void)state;
    struct ps_schema *schema = load_text(
        "{\"type\":\"record\",\"name\":\"T\",\"fields\":[{\"name\":\"s\",\"type\":\"string\"},"
        "{\"name\":\"xs\",\"type\":{\"type\":\"array\",\"items\":\"int\"}},"
        "{\"name\":\"u\",\"type\":[\"null\",\"boolean\"]}]}");
    struct ps_decoder *dec = NULL;
    struct ps_error err;
    assert_int_equal(ps_decoder_new(NULL, &dec, &err), PS_OK);

    expect_refused(dec, schema, "\x01", 1, PS_ERR_DECODE, "field 's': negative length");
    expect_refused(dec, schema, "\x03", 1, PS_ERR_DECODE, "field 's': negative length");
    /* 1 000 000 declared, 3 present (Avro C 1.11.1 would leak the megabyte). */
    expect_refused(dec, schema, "\x80\x89\x7a" "abc", 6, PS_ERR_DECODE, "'s': length beyond");
    /* Array count 50 000 000 in 6 bytes. */
    expect_refused(dec, schema, "\x00\x80\xc2\xd7\x2f\x00", 6, PS_ERR_DECODE,
                   "field 'xs': block count larger than the remaining bytes");
    /* A negative block count carries a byte size, checked too. */
    expect_refused(dec, schema, "\x00\x03\x7f\x02\x00\x00", 6, PS_ERR_DECODE,
                   "'xs': block size beyond");
    expect_refused(dec, schema, "\x00\x02\x02\x00", 4, PS_ERR_DECODE, "'u': datum ends early");
    expect_refused(dec, schema, "\x00\x00\x04", 3, PS_ERR_DECODE,
                   "'u': union branch out of range");
    expect_refused(dec, schema, "\x00\x00\x02\x05", 4, PS_ERR_DECODE, "neither 0 nor 1");
    expect_refused(dec, schema, "\x00\x02\xff\xff\xff\xff\x7f\x00\x00", 9, PS_ERR_DECODE,
                   "'xs[]': int out of range");
    expect_refused(dec, schema,
                   "\x00\x02\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x00\x00", 15,
                   PS_ERR_DECODE, "too long");

    /* The negative-count form itself is fine: -2 items, 2 bytes, then 0. */
    struct ps_event *ev = NULL;
    assert_int_equal(ps_decoder_decode(dec, schema, "\x00\x03\x04\x02\x04\x00\x02\x01", 8, &ev,
                                       &err), PS_OK);
    struct ps_scalar v;
    assert_int_equal(ps_event_get(ev, ps_schema_find(schema, "xs[]"), &v), PS_OK);
    assert_int_equal(v.i, 1);
    assert_int_equal(ps_event_get(ev, ps_schema_find(schema, "u"), &v), PS_OK);
    assert_int_equal(v.kind, PS_SCALAR_BOOL);
    assert_int_equal(v.i, 1);

    ps_decoder_destroy(dec);
    ps_schema_destroy(schema);
}

static void test_limits(void **state)
{
    (void)state;
    struct ps_schema *schema = load_text(
        "{\"type\":\"record\",\"name\":\"T\",\"fields\":["
        "{\"name\":\"xs\",\"type\":{\"type\":\"array\",\"items\":\"int\"}},"
        "{\"name\":\"deep\",\"type\":{\"type\":\"array\",\"items\":{\"type\":\"array\","
        "\"items\":{\"type\":\"array\",\"items\":{\"type\":\"array\",\"items\":\"int\"}}}}},"
        "{\"name\":\"s\",\"type\":\"string\"}]}");
    struct ps_codec_limits limits;
    ps_codec_limits_default(&limits);
    assert_int_equal(limits.max_message_bytes, 1024 * 1024);
    assert_int_equal(limits.max_alloc_bytes, 64 * 1024 * 1024);
    assert_int_equal(limits.max_depth, 32);
    assert_int_equal(limits.max_items, 100000);
    limits.max_items = 10;
    limits.max_depth = 3;
    limits.max_message_bytes = 64;
    limits.max_alloc_bytes = 4096;
    struct ps_decoder *dec = NULL;
    struct ps_error err;
    assert_int_equal(ps_decoder_new(&limits, &dec, &err), PS_OK);

    struct ps_buf datum;
    ps_buf_init(&datum, 0);
    to_datum(schema, "{\"xs\":[1,2,3,4,5,6,7,8,9,10,11],\"deep\":[],\"s\":\"\"}", &datum);
    expect_refused(dec, schema, datum.data, datum.len, PS_ERR_LIMIT,
                   "field 'xs': more array or map items than the limit (10)");
    ps_buf_reset(&datum);
    to_datum(schema, "{\"xs\":[],\"deep\":[[[[1]]]],\"s\":\"\"}", &datum);
    expect_refused(dec, schema, datum.data, datum.len, PS_ERR_LIMIT,
                   "field 'deep[][][]': nesting deeper than the limit (3)");
    ps_buf_reset(&datum);
    to_datum(schema, "{\"xs\":[],\"deep\":[],\"s\":\"0123456789012345678901234567890123456789"
             "0123456789012345678901234567890123456789\"}", &datum);
    expect_refused(dec, schema, datum.data, datum.len, PS_ERR_LIMIT,
                   "datum larger than the limit (64 bytes)");
    ps_decoder_destroy(dec);

    /* The allocation cap turns what Avro C would allocate into a clean error. */
    limits.max_message_bytes = 1024 * 1024;
    limits.max_alloc_bytes = 64;
    assert_int_equal(ps_decoder_new(&limits, &dec, &err), PS_OK);
    ps_buf_reset(&datum);
    char json[400];
    snprintf(json, sizeof(json), "{\"xs\":[],\"deep\":[],\"s\":\"%0200d\"}", 7);
    to_datum(schema, json, &datum);
    expect_refused(dec, schema, datum.data, datum.len, PS_ERR_LIMIT,
                   "more memory than the limit (64 bytes)");
    ps_buf_reset(&datum);
    to_datum(schema, "{\"xs\":[1],\"deep\":[],\"s\":\"ok\"}", &datum);
    struct ps_event *ev = NULL;
    assert_int_equal(ps_decoder_decode(dec, schema, datum.data, datum.len, &ev, &err), PS_OK);

    ps_buf_free(&datum);
    ps_decoder_destroy(dec);
    ps_schema_destroy(schema);
}

static void expect_json_refused(const struct ps_schema *schema, const char *json,
                                const char *needle)
{
    struct ps_buf out;
    struct ps_error err;
    ps_buf_init(&out, 0);
    ps_buf_append(&out, "keep", 4);
    ps_error_clear(&err);
    ps_err_t rc = ps_codec_json_to_datum(schema, json, strlen(json), &out, &err);
    if (rc != PS_ERR_DECODE || !strstr(err.msg, needle)) {
        print_error("rc %d: %s\n", rc, err.msg);
    }
    assert_int_equal(rc, PS_ERR_DECODE);
    assert_non_null(strstr(err.msg, needle));
    assert_int_equal(out.len, 4);
    assert_null(strstr(err.msg, "Testperson"));
    ps_buf_free(&out);
}

static void test_json_errors(void **state)
{
    (void)state;
    struct ps_schema *hl7 = load_file(HL7_SCHEMA);
    expect_json_refused(hl7, "{\"msh\":", "invalid JSON at line 1");
    expect_json_refused(hl7, "{\"pid\":{}}", "field 'msh': missing required field");
    expect_json_refused(hl7, "{\"msh\":{\"message_control_id\":7}}",
                        "field 'msh.message_control_id': expected a string");
    expect_json_refused(hl7,
                        "{\"msh\":{\"message_control_id\":\"M\",\"sending_application\":\"A\","
                        "\"sending_facility\":\"F\",\"message_type\":\"ADT^A01\","
                        "\"event_time\":\"yesterday\",\"version_id\":\"2.4\"}}",
                        "field 'msh.event_time': not a valid date or instant");
    expect_json_refused(hl7,
                        "{\"msh\":{\"message_control_id\":\"M\",\"sending_application\":\"A\","
                        "\"sending_facility\":\"F\",\"message_type\":\"ADT^A01\","
                        "\"event_time\":0,\"version_id\":\"2.4\",\"extra\":1}}",
                        "field 'msh': an object has a member that is not in the schema");
    expect_json_refused(hl7,
                        "{\"msh\":{\"message_control_id\":\"M\",\"sending_application\":\"A\","
                        "\"sending_facility\":\"F\",\"message_type\":\"ADT^A01\","
                        "\"event_time\":0,\"version_id\":\"2.4\"},\"pid\":{\"name\":[{"
                        "\"family\":\"Testperson\",\"given\":\"Alexa\",\"name_type\":\"L\"}],"
                        "\"local_identifiers\":[],\"address\":[],\"telecom\":[]}}",
                        "field 'pid.name[].given': expected an array");

    /* Missing optional fields are null and missing arrays empty. */
    struct ps_buf out;
    struct ps_error err;
    ps_buf_init(&out, 0);
    const char *minimal =
        "{\"msh\":{\"message_control_id\":\"M\",\"sending_application\":\"A\","
        "\"sending_facility\":\"F\",\"message_type\":\"ADT^A01\","
        "\"event_time\":1,\"version_id\":\"2.4\"},\"pid\":{}}";
    assert_int_equal(ps_codec_json_to_datum(hl7, minimal, strlen(minimal), &out, &err), PS_OK);
    struct ps_decoder *dec = NULL;
    struct ps_event *ev = NULL;
    assert_int_equal(ps_decoder_new(NULL, &dec, &err), PS_OK);
    assert_int_equal(ps_decoder_decode(dec, hl7, out.data, out.len, &ev, &err), PS_OK);
    ps_buf_reset(&out);
    assert_int_equal(ps_event_to_json(ev, &out, &err), PS_OK);
    assert_non_null(strstr((const char *)out.data,
                           "\"event_time\":\"1970-01-01T00:00:00.001Z\""));
    assert_non_null(strstr((const char *)out.data, "\"nhs_number\":null"));
    assert_non_null(strstr((const char *)out.data, "\"nk1\":[]"));

    /* The output buffer's maximum is honoured. */
    struct ps_buf small;
    ps_buf_init(&small, 8);
    assert_int_equal(ps_codec_json_to_datum(hl7, minimal, strlen(minimal), &small, &err),
                     PS_ERR_LIMIT);
    assert_int_equal(small.len, 0);
    ps_buf_free(&small);

    ps_buf_free(&out);
    ps_decoder_destroy(dec);
    ps_schema_destroy(hl7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_hl7v2),
        cmocka_unit_test(test_round_trip_fhir),
        cmocka_unit_test(test_round_trip_misc),
        cmocka_unit_test(test_visit_and_get),
        cmocka_unit_test(test_decoder_reuse),
        cmocka_unit_test(test_malformed_hl7v2),
        cmocka_unit_test(test_malformed_lengths_and_counts),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_json_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
