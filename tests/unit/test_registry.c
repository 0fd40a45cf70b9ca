/*
 * The schema registry: adding, finding by id and fingerprint, resolving
 * frames, refusing clashes, and who owns what (ASan's leak check is the
 * judge of ownership: every path below must leave nothing behind).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ps_buf.h"
#include "ps_frame.h"
#include "ps_registry.h"
#include "ps_schema.h"

#define SCHEMA_A                                                                               \
    "{\"type\":\"record\",\"name\":\"A\",\"namespace\":\"test\",\"fields\":["                  \
    "{\"name\":\"nhs_number\",\"type\":\"string\"}]}"
/* A with a tag on its field: the same canonical form, so the same
 * fingerprint, but a different schema for the disclosure engine. */
#define SCHEMA_A_TAGGED                                                                        \
    "{\"type\":\"record\",\"name\":\"A\",\"namespace\":\"test\",\"fields\":["                  \
    "{\"name\":\"nhs_number\",\"type\":\"string\",\"confluent:tags\":[\"NHS_NUMBER\",\"PII\"]}]}"
#define SCHEMA_B                                                                               \
    "{\"type\":\"record\",\"name\":\"B\",\"namespace\":\"test\",\"fields\":["                  \
    "{\"name\":\"n\",\"type\":\"long\"}]}"
#define SCHEMA_C                                                                               \
    "{\"type\":\"record\",\"name\":\"C\",\"namespace\":\"test\",\"fields\":["                  \
    "{\"name\":\"flag\",\"type\":\"boolean\"}]}"

static struct ps_schema *load(const char *json)
{
    struct ps_schema *schema = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    if (ps_schema_load_json(json, "test", NULL, &schema, &err) != PS_OK) {
        fail_msg("schema did not load: %s", err.msg);
    }
    return schema;
}

static struct ps_registry *registry_new(void)
{
    struct ps_registry *reg = NULL;
    assert_int_equal(ps_registry_new(&reg, NULL), PS_OK);
    assert_non_null(reg);
    return reg;
}

static void test_empty_registry(void **state)
{
    (void)state;
    ps_registry_destroy(NULL);
    struct ps_registry *reg = registry_new();
    assert_int_equal(ps_registry_count(reg), 0);
    assert_null(ps_registry_at(reg, 0));
    assert_int_equal(ps_registry_id_at(reg, 0), -1);
    assert_null(ps_registry_by_id(reg, 1));
    assert_null(ps_registry_by_fingerprint(reg, 1));
    struct ps_frame frame = {.format = PS_FRAME_CONFLUENT, .schema_id = 1};
    const struct ps_schema *schema = NULL;
    struct ps_error err;
    assert_int_equal(ps_registry_resolve(reg, &frame, &schema, &err), PS_ERR_SCHEMA_UNKNOWN);
    assert_null(schema);
    ps_registry_destroy(reg);
}

static void test_add_and_find(void **state)
{
    (void)state;
    struct ps_registry *reg = registry_new();
    struct ps_schema *a = load(SCHEMA_A);
    struct ps_schema *b = load(SCHEMA_B);
    struct ps_schema *c = load(SCHEMA_C);
    const struct ps_schema *a_ref = a;
    const struct ps_schema *b_ref = b;
    const struct ps_schema *c_ref = c;
    uint64_t fp_a = ps_schema_fingerprint(a);
    uint64_t fp_c = ps_schema_fingerprint(c);

    struct ps_error err;
    ps_error_clear(&err);
    assert_int_equal(ps_registry_add(reg, a, 1, &err), PS_OK);
    a = NULL;
    assert_int_equal(ps_registry_add(reg, b, 0xFFFFFFFF, &err), PS_OK);
    b = NULL;
    /* Any negative id means "no id". */
    assert_int_equal(ps_registry_add(reg, c, -7, &err), PS_OK);
    c = NULL;

    assert_int_equal(ps_registry_count(reg), 3);
    assert_ptr_equal(ps_registry_at(reg, 0), a_ref);
    assert_ptr_equal(ps_registry_at(reg, 2), c_ref);
    assert_null(ps_registry_at(reg, 3));
    assert_int_equal(ps_registry_id_at(reg, 0), 1);
    assert_true(ps_registry_id_at(reg, 1) == INT64_C(0xFFFFFFFF));
    assert_int_equal(ps_registry_id_at(reg, 2), -1);

    assert_ptr_equal(ps_registry_by_id(reg, 1), a_ref);
    assert_ptr_equal(ps_registry_by_id(reg, 0xFFFFFFFF), b_ref);
    assert_null(ps_registry_by_id(reg, 2));
    /* Schemas with an id are found by fingerprint too. */
    assert_ptr_equal(ps_registry_by_fingerprint(reg, fp_a), a_ref);
    assert_ptr_equal(ps_registry_by_fingerprint(reg, fp_c), c_ref);
    assert_null(ps_registry_by_fingerprint(reg, fp_a ^ 1));
    assert_string_equal(ps_schema_name(ps_registry_by_fingerprint(reg, fp_c)), "test.C");
    ps_registry_destroy(reg);
}

static void test_resolve_frames(void **state)
{
    (void)state;
    struct ps_registry *reg = registry_new();
    struct ps_schema *a = load(SCHEMA_A);
    struct ps_schema *c = load(SCHEMA_C);
    const struct ps_schema *a_ref = a;
    const struct ps_schema *c_ref = c;
    uint64_t fp_c = ps_schema_fingerprint(c);
    assert_int_equal(ps_registry_add(reg, a, 42, NULL), PS_OK);
    a = NULL;
    assert_int_equal(ps_registry_add(reg, c, -1, NULL), PS_OK);
    c = NULL;

    /* From bytes on the wire, as the pipeline does it. */
    struct ps_buf buf;
    ps_buf_init(&buf, 64);
    struct ps_frame frame;
    const struct ps_schema *schema = NULL;
    struct ps_error err;
    ps_error_clear(&err);

    assert_int_equal(ps_frame_write_confluent(42, &buf), PS_OK);
    assert_int_equal(ps_frame_parse(buf.data, buf.len, &frame, &err), PS_OK);
    assert_int_equal(ps_registry_resolve(reg, &frame, &schema, &err), PS_OK);
    assert_ptr_equal(schema, a_ref);

    ps_buf_reset(&buf);
    assert_int_equal(ps_frame_write_single_object(fp_c, &buf), PS_OK);
    assert_int_equal(ps_frame_parse(buf.data, buf.len, &frame, &err), PS_OK);
    assert_int_equal(ps_registry_resolve(reg, &frame, &schema, &err), PS_OK);
    assert_ptr_equal(schema, c_ref);

    /* Unknown id and unknown fingerprint; the output stays as it was. */
    schema = NULL;
    ps_buf_reset(&buf);
    assert_int_equal(ps_frame_write_confluent(43, &buf), PS_OK);
    assert_int_equal(ps_frame_parse(buf.data, buf.len, &frame, &err), PS_OK);
    assert_int_equal(ps_registry_resolve(reg, &frame, &schema, &err), PS_ERR_SCHEMA_UNKNOWN);
    assert_int_equal(err.code, PS_ERR_SCHEMA_UNKNOWN);
    assert_non_null(strstr(err.msg, "id 43"));
    assert_null(schema);

    ps_buf_reset(&buf);
    assert_int_equal(ps_frame_write_single_object(fp_c ^ 0x8000000000000000u, &buf), PS_OK);
    assert_int_equal(ps_frame_parse(buf.data, buf.len, &frame, &err), PS_OK);
    assert_int_equal(ps_registry_resolve(reg, &frame, &schema, &err), PS_ERR_SCHEMA_UNKNOWN);
    assert_non_null(strstr(err.msg, "fingerprint"));
    assert_null(schema);

    /* A schema without an id cannot be named by a Confluent frame. */
    struct ps_frame by_id = {.format = PS_FRAME_CONFLUENT, .schema_id = 0};
    assert_int_equal(ps_registry_resolve(reg, &by_id, &schema, &err), PS_ERR_SCHEMA_UNKNOWN);

    struct ps_frame bogus = {.format = (enum ps_frame_format)0};
    assert_int_equal(ps_registry_resolve(reg, &bogus, &schema, &err), PS_ERR_INVALID);
    assert_int_equal(ps_registry_resolve(reg, NULL, &schema, &err), PS_ERR_INVALID);
    assert_int_equal(ps_registry_resolve(reg, &frame, NULL, &err), PS_ERR_INVALID);
    assert_int_equal(ps_registry_resolve(NULL, &frame, &schema, &err), PS_ERR_INVALID);

    ps_buf_free(&buf);
    ps_registry_destroy(reg);
}

static void test_id_taken_by_other_schema(void **state)
{
    (void)state;
    struct ps_registry *reg = registry_new();
    struct ps_schema *a = load(SCHEMA_A);
    struct ps_schema *b = load(SCHEMA_B);
    assert_int_equal(ps_registry_add(reg, a, 5, NULL), PS_OK);
    a = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    assert_int_equal(ps_registry_add(reg, b, 5, &err), PS_ERR_CONFIG);
    assert_int_equal(err.code, PS_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "id 5"));
    assert_non_null(strstr(err.msg, "test.A"));
    assert_int_equal(ps_registry_count(reg), 1);
    /* On failure the caller still owns b. */
    ps_schema_destroy(b);
    ps_registry_destroy(reg);
}

static void test_fingerprint_taken_by_other_schema(void **state)
{
    (void)state;
    struct ps_registry *reg = registry_new();
    struct ps_schema *a = load(SCHEMA_A);
    struct ps_schema *tagged = load(SCHEMA_A_TAGGED);
    assert_true(ps_schema_fingerprint(a) == ps_schema_fingerprint(tagged));
    assert_int_equal(ps_registry_add(reg, a, 1, NULL), PS_OK);
    a = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    /* Even under a new id: a single-object frame could not tell them apart. */
    assert_int_equal(ps_registry_add(reg, tagged, 2, &err), PS_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "fingerprint"));
    assert_int_equal(ps_registry_add(reg, tagged, -1, &err), PS_ERR_CONFIG);
    assert_int_equal(ps_registry_count(reg), 1);
    assert_null(ps_registry_by_id(reg, 2));
    ps_schema_destroy(tagged);
    ps_registry_destroy(reg);
}

static void test_same_schema_again(void **state)
{
    (void)state;
    struct ps_registry *reg = registry_new();
    struct ps_schema *a1 = load(SCHEMA_A);
    struct ps_schema *a2 = load(SCHEMA_A);
    struct ps_schema *a3 = load(SCHEMA_A);
    struct ps_schema *a4 = load(SCHEMA_A);
    const struct ps_schema *a1_ref = a1;
    const struct ps_schema *a3_ref = a3;
    assert_int_equal(ps_registry_add(reg, a1, 7, NULL), PS_OK);
    a1 = NULL;
    /* The same text under the same id: success, nothing new, and the copy is
     * the registry's to free (ASan checks it is freed). */
    assert_int_equal(ps_registry_add(reg, a2, 7, NULL), PS_OK);
    a2 = NULL;
    assert_int_equal(ps_registry_count(reg), 1);
    /* The same text under a second id: both ids resolve. */
    assert_int_equal(ps_registry_add(reg, a3, 8, NULL), PS_OK);
    a3 = NULL;
    assert_int_equal(ps_registry_count(reg), 2);
    assert_ptr_equal(ps_registry_by_id(reg, 7), a1_ref);
    assert_ptr_equal(ps_registry_by_id(reg, 8), a3_ref);
    /* Without an id: already found by fingerprint, nothing new. */
    assert_int_equal(ps_registry_add(reg, a4, -1, NULL), PS_OK);
    a4 = NULL;
    assert_int_equal(ps_registry_count(reg), 2);
    ps_registry_destroy(reg);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    struct ps_registry *reg = registry_new();
    struct ps_schema *a = load(SCHEMA_A);
    const struct ps_schema *a_ref = a;
    struct ps_error err;
    ps_error_clear(&err);
    assert_int_equal(ps_registry_new(NULL, &err), PS_ERR_INVALID);
    assert_int_equal(ps_registry_add(NULL, a, 1, &err), PS_ERR_INVALID);
    assert_int_equal(ps_registry_add(reg, NULL, 1, &err), PS_ERR_INVALID);
    /* Confluent ids are four bytes. */
    assert_int_equal(ps_registry_add(reg, a, INT64_C(0x100000000), &err), PS_ERR_CONFIG);
    assert_int_equal(ps_registry_count(reg), 0);
    assert_int_equal(ps_registry_add(reg, a, 1, &err), PS_OK);
    /* Handing over what the registry already owns is refused, whatever the
     * id, and leaves it owned once. */
    assert_int_equal(ps_registry_add(reg, a, 2, &err), PS_ERR_INVALID);
    assert_int_equal(ps_registry_add(reg, a, 1, &err), PS_ERR_INVALID);
    a = NULL;
    assert_int_equal(ps_registry_count(reg), 1);
    assert_ptr_equal(ps_registry_by_id(reg, 1), a_ref);
    ps_registry_destroy(reg);
}

static void test_reference_schemas(void **state)
{
    (void)state;
    const char *dir = getenv("PS_SOURCE_DIR");
    char hl7[1024];
    char fhir[1024];
    snprintf(hl7, sizeof(hl7), "%s/schemas/hl7v2/hl7v2_event.avsc", dir ? dir : ".");
    snprintf(fhir, sizeof(fhir), "%s/schemas/fhir/fhir_event.avsc", dir ? dir : ".");
    struct ps_registry *reg = registry_new();
    struct ps_schema *s1 = NULL;
    struct ps_schema *s2 = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    if (ps_schema_load_file(hl7, NULL, &s1, &err) != PS_OK ||
        ps_schema_load_file(fhir, NULL, &s2, &err) != PS_OK) {
        fail_msg("%s", err.msg);
    }
    uint64_t fp1 = ps_schema_fingerprint(s1);
    uint64_t fp2 = ps_schema_fingerprint(s2);
    assert_true(fp1 != fp2);
    assert_int_equal(ps_registry_add(reg, s1, 1, &err), PS_OK);
    s1 = NULL;
    assert_int_equal(ps_registry_add(reg, s2, -1, &err), PS_OK);
    s2 = NULL;
    assert_string_equal(ps_schema_name(ps_registry_by_id(reg, 1)),
                        "uk.nhs.pseudostream.hl7v2.Hl7v2Event");
    assert_string_equal(ps_schema_name(ps_registry_by_fingerprint(reg, fp1)),
                        "uk.nhs.pseudostream.hl7v2.Hl7v2Event");
    assert_string_equal(ps_schema_name(ps_registry_by_fingerprint(reg, fp2)),
                        "uk.nhs.pseudostream.fhir.FhirEvent");
    ps_registry_destroy(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_registry),
        cmocka_unit_test(test_add_and_find),
        cmocka_unit_test(test_resolve_frames),
        cmocka_unit_test(test_id_taken_by_other_schema),
        cmocka_unit_test(test_fingerprint_taken_by_other_schema),
        cmocka_unit_test(test_same_schema_again),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_reference_schemas),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
