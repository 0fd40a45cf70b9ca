/*
 * ps_project: derived schemas and the direct encoder. The encoder's output is
 * checked against Avro C: decoded with the derived schema, values compared,
 * and written again by avro_value_write to the same bytes; an all-KEEP plan
 * must reproduce the input bytes exactly. Artificial data only.
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
#include "ps_project.h"
#include "ps_schema.h"
#include "ps_tag.h"
#include "ps_time.h"

#define HL7_SCHEMA "schemas/hl7v2/hl7v2_event.avsc"
#define FHIR_SCHEMA "schemas/fhir/fhir_event.avsc"
#define OUT_NS "uk.nhs.pseudostream.out.research"

static const char *const hl7_adt =
    "{\"msh\":{\"message_control_id\":\"MSG00002\",\"sending_application\":\"PAS\","
    "\"sending_facility\":\"RXX01\",\"message_type\":\"ADT^A01\","
    "\"event_time\":\"2024-03-01T10:15:30.123Z\",\"version_id\":\"2.4\"},"
    "\"pid\":{\"nhs_number\":\"9990000018\",\"nhs_number_status\":\"01\","
    "\"local_identifiers\":[{\"id\":\"H1234567\",\"assigning_authority\":\"RXX\","
    "\"identifier_type\":\"MR\"}],"
    "\"name\":[{\"family\":\"Testperson\",\"given\":[\"Alexa\",\"Jo\"],\"prefix\":\"Ms\","
    "\"name_type\":\"L\"}],"
    "\"date_of_birth\":\"1980-02-29\",\"sex\":\"F\",\"ethnic_category\":\"A\","
    "\"address\":[{\"lines\":[\"1 Example Street\"],\"city\":\"Leeds\",\"county\":null,"
    "\"postcode\":\"LS1 4AP\",\"address_type\":\"H\"}],"
    "\"telecom\":[],\"date_of_death\":null,\"death_indicator\":null},"
    "\"pd1\":null,"
    "\"pv1\":{\"patient_class\":\"I\",\"ward\":\"WARD 7\",\"admit_time\":"
    "\"2024-03-01T09:58:00.000Z\"},"
    "\"nk1\":[{\"family\":\"Testperson\",\"given\":\"Sam\"}],"
    "\"dg1\":[{\"coding_system\":\"I10\",\"code\":\"J18.9\"},{\"coding_system\":\"SCT\","
    "\"code\":\"233604007\"}],"
    "\"obx\":[{\"value_type\":\"NM\",\"code\":\"8867-4\",\"code_system\":\"LN\","
    "\"numeric_value\":72.0,\"units\":\"/min\"}]}";

struct fixture {
    struct ps_schema *in;
    struct ps_decoder *dec;
    struct ps_buf datum;
    struct ps_event *ev;
    struct ps_project_field *spec;
};

static void fixture_open(struct fixture *fx, const char *schema_path, const char *json)
{
    struct ps_error err;
    ps_error_clear(&err);
    memset(fx, 0, sizeof(*fx));
    assert_int_equal(ps_schema_load_file(schema_path, NULL, &fx->in, &err), PS_OK);
    assert_int_equal(ps_decoder_new(NULL, &fx->dec, &err), PS_OK);
    ps_buf_init(&fx->datum, 0);
    ps_err_t rc = ps_codec_json_to_datum(fx->in, json, strlen(json), &fx->datum, &err);
    if (rc != PS_OK) {
        print_error("%s\n", err.msg);
    }
    assert_int_equal(rc, PS_OK);
    assert_int_equal(ps_decoder_decode(fx->dec, fx->in, fx->datum.data, fx->datum.len, &fx->ev,
                                       &err), PS_OK);
    fx->spec = calloc(ps_schema_node_count(fx->in), sizeof(*fx->spec));
}

static void fixture_close(struct fixture *fx)
{
    free(fx->spec);
    ps_buf_free(&fx->datum);
    ps_decoder_destroy(fx->dec);
    ps_schema_destroy(fx->in);
}

static struct ps_project_field *field(struct fixture *fx, const char *path)
{
    int i = ps_schema_find(fx->in, path);
    if (i < 0) {
        print_error("no node %s\n", path);
    }
    assert_true(i >= 0);
    return &fx->spec[i];
}

/* Decodes out with the derived schema and has Avro C write it back. */
static struct ps_event *decode_output(struct ps_decoder *dec, const struct ps_schema *schema,
                                      const struct ps_buf *out)
{
    struct ps_event *ev = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    ps_err_t rc = ps_decoder_decode(dec, schema, out->data, out->len, &ev, &err);
    if (rc != PS_OK) {
        print_error("%s\n", err.msg);
    }
    assert_int_equal(rc, PS_OK);
    size_t size = 0;
    assert_int_equal(avro_value_sizeof(ps_event_avro(ev), &size), 0);
    assert_int_equal(size, out->len);
    char *bytes = malloc(size + 1);
    avro_writer_t writer = avro_writer_memory(bytes, (int64_t)size + 1);
    assert_int_equal(avro_value_write(writer, ps_event_avro(ev)), 0);
    assert_memory_equal(bytes, out->data, size);
    avro_writer_free(writer);
    free(bytes);
    return ev;
}

static void test_keep_all_is_byte_exact(void **state)
{
    (void)state;
    const char *paths[] = {HL7_SCHEMA, FHIR_SCHEMA};
    const char *jsons[] = {hl7_adt,
                           "{\"id\":\"o/_history/1\",\"resourceType\":\"Patient\","
                           "\"lastUpdated\":0,\"source\":\"RYY\",\"patient\":{\"id\":\"p1\","
                           "\"nhsNumber\":\"9990000026\",\"name\":[{\"family\":\"Madeup\","
                           "\"given\":[\"Chris\"]}]},\"encounter\":{\"id\":\"e1\","
                           "\"status\":\"finished\",\"class\":\"AMB\",\"location\":[\"OPD\"]}}"};
    for (int k = 0; k < 2; k++) {
        struct fixture fx;
        struct ps_projection *proj = NULL;
        struct ps_error err;
        struct ps_buf out;
        fixture_open(&fx, paths[k], jsons[k]);
        ps_buf_init(&out, 0);
        assert_int_equal(ps_projection_new(fx.in, fx.spec, OUT_NS, &proj, &err), PS_OK);
        assert_int_equal(ps_projection_apply(proj, fx.ev, NULL, NULL, &out, &err), PS_OK);
        assert_int_equal(out.len, fx.datum.len);
        assert_memory_equal(out.data, fx.datum.data, out.len);
        const struct ps_schema *derived = ps_projection_schema(proj);
        assert_int_equal(ps_schema_node_count(derived), ps_schema_node_count(fx.in));
        const char *short_name = strrchr(ps_schema_name(fx.in), '.') + 1;
        char want[128];
        snprintf(want, sizeof(want), "%s.%s", OUT_NS, short_name);
        assert_string_equal(ps_schema_name(derived), want);
        for (size_t i = 0; i < ps_schema_node_count(fx.in); i++) {
            const struct ps_schema_node *a = ps_schema_node(fx.in, (int)i);
            const struct ps_schema_node *b = ps_schema_node(derived, (int)i);
            assert_string_equal(a->path, b->path);
            assert_int_equal(a->type, b->type);
            assert_int_equal(a->logical, b->logical);
            assert_int_equal(a->tags, b->tags);
            assert_int_equal(a->nullable, b->nullable);
        }
        /* Unchanged types are written once and referenced after. */
        assert_null(strstr(ps_schema_json(derived), "uk.nhs.pseudostream.hl7v2"));
        assert_null(strstr(ps_schema_json(derived), "uk.nhs.pseudostream.fhir\""));
        decode_output(fx.dec, derived, &out);
        ps_buf_free(&out);
        ps_projection_destroy(proj);
        fixture_close(&fx);
    }
}

struct map_state {
    int calls;
    int bad;
    char token[64];
    char iso[32];
};

/* String -> tagged token, date -> year, timestamp -> ISO text. */
static ps_err_t map_fields(void *opaque, int node, const struct ps_scalar *in,
                           struct ps_scalar *out_p, struct ps_error *err)
{
    struct map_state *ms = opaque;
    (void)err;
    ms->calls++;
    memset(out_p, 0, sizeof(*out_p));
    if (in->kind == PS_SCALAR_NULL) {
        out_p->kind = PS_SCALAR_NULL;
    } else if (ms->bad) {
        out_p->kind = PS_SCALAR_DOUBLE;
    } else if (in->kind == PS_SCALAR_STRING) {
        snprintf(ms->token, sizeof(ms->token), "tok-%d-%zu", node, in->len);
        out_p->kind = PS_SCALAR_STRING;
        out_p->s = ms->token;
        out_p->len = strlen(ms->token);
    } else if (in->kind == PS_SCALAR_INT && in->i < 100000) {
        int y, m, d;
        ps_time_days_to_civil(in->i, &y, &m, &d);
        out_p->kind = PS_SCALAR_INT;
        out_p->i = y;
    } else {
        ps_time_format_iso(in->i, ms->iso, sizeof(ms->iso));
        out_p->kind = PS_SCALAR_STRING;
        out_p->s = ms->iso;
        out_p->len = strlen(ms->iso);
    }
    return PS_OK;
}

static void plan_research(struct fixture *fx)
{
    field(fx, "pid.name")->op = PS_PROJECT_DROP;
    field(fx, "pid.address")->op = PS_PROJECT_DROP;
    field(fx, "pid.telecom")->op = PS_PROJECT_DROP;
    field(fx, "pid.local_identifiers")->op = PS_PROJECT_DROP;
    field(fx, "nk1")->op = PS_PROJECT_DROP;
    field(fx, "pv1.ward")->op = PS_PROJECT_DROP;
    *field(fx, "pid.nhs_number") = (struct ps_project_field){
        .op = PS_PROJECT_MAP, .out_type = PS_TYPE_STRING, .out_logical = PS_LOGICAL_NONE,
        .out_tags = PS_TAG_BIT(PS_TAG_NHS_NUMBER), .out_doc = "pseudonym of the NHS number"};
    *field(fx, "pid.date_of_birth") = (struct ps_project_field){
        .op = PS_PROJECT_MAP, .out_type = PS_TYPE_INT, .out_logical = PS_LOGICAL_NONE,
        .out_tags = PS_TAG_BIT(PS_TAG_BIRTH_DATE), .out_doc = "year of birth"};
    *field(fx, "msh.event_time") = (struct ps_project_field){
        .op = PS_PROJECT_MAP, .out_type = PS_TYPE_STRING, .out_logical = PS_LOGICAL_NONE,
        .out_tags = PS_TAG_BIT(PS_TAG_EVENT_DATE)};
    *field(fx, "dg1[].code") = (struct ps_project_field){
        .op = PS_PROJECT_MAP, .out_type = PS_TYPE_STRING, .out_tags = 0};
}

static void test_drop_and_map(void **state)
{
    (void)state;
    struct fixture fx;
    struct ps_projection *proj = NULL;
    struct ps_error err;
    struct ps_buf out;
    struct map_state ms = {0};
    fixture_open(&fx, HL7_SCHEMA, hl7_adt);
    plan_research(&fx);
    ps_buf_init(&out, 0);
    ps_error_clear(&err);
    ps_err_t rc = ps_projection_new(fx.in, fx.spec, OUT_NS, &proj, &err);
    if (rc != PS_OK) {
        print_error("%s\n", err.msg);
    }
    assert_int_equal(rc, PS_OK);
    const struct ps_schema *derived = ps_projection_schema(proj);

    /* Dropped fields do not exist in the derived schema. */
    assert_int_equal(ps_schema_find(derived, "pid.name"), -1);
    assert_int_equal(ps_schema_find(derived, "pid.name[].family"), -1);
    assert_int_equal(ps_schema_find(derived, "nk1"), -1);
    assert_int_equal(ps_schema_find(derived, "pv1.ward"), -1);
    assert_true(ps_schema_find(derived, "pv1.room") >= 0);
    const struct ps_schema_node *n = ps_schema_node(derived, ps_schema_find(derived,
                                                                            "pid.nhs_number"));
    assert_int_equal(n->type, PS_TYPE_STRING);
    assert_int_equal(n->nullable, 1);
    assert_int_equal(n->tags, PS_TAG_BIT(PS_TAG_NHS_NUMBER));
    n = ps_schema_node(derived, ps_schema_find(derived, "pid.date_of_birth"));
    assert_int_equal(n->type, PS_TYPE_INT);
    assert_int_equal(n->logical, PS_LOGICAL_NONE);
    assert_int_equal(n->nullable, 1);
    n = ps_schema_node(derived, ps_schema_find(derived, "msh.event_time"));
    assert_int_equal(n->type, PS_TYPE_STRING);
    assert_int_equal(n->nullable, 0);
    assert_int_equal(n->tags, PS_TAG_BIT(PS_TAG_EVENT_DATE));
    n = ps_schema_node(derived, ps_schema_find(derived, "dg1[].code"));
    assert_int_equal(n->tags, 0);
    n = ps_schema_node(derived, ps_schema_find(derived, "pid.sex"));
    assert_int_equal(n->tags, PS_TAG_BIT(PS_TAG_SEX));
    const char *text = ps_schema_json(derived);
    assert_non_null(strstr(text, "\"doc\": \"year of birth\""));
    assert_non_null(strstr(text, "\"doc\": \"PID-8 (M, F, U, O)\""));
    assert_non_null(strstr(text, "\"namespace\": \"" OUT_NS "\""));
    assert_non_null(strstr(text, "\"pseudostream:event_time\": \"msh.event_time\""));
    assert_null(strstr(text, "uk.nhs.pseudostream.hl7v2"));
    assert_null(strstr(text, "\"XPN\""));
    assert_string_equal(ps_schema_name(derived), OUT_NS ".Hl7v2Event");

    rc = ps_projection_apply(proj, fx.ev, map_fields, &ms, &out, &err);
    if (rc != PS_OK) {
        print_error("%s\n", err.msg);
    }
    assert_int_equal(rc, PS_OK);
    assert_int_equal(ms.calls, 5);
    struct ps_event *ev = decode_output(fx.dec, derived, &out);
    struct ps_scalar v;
    ps_event_get(ev, ps_schema_find(derived, "pid.nhs_number"), &v);
    assert_int_equal(v.kind, PS_SCALAR_STRING);
    char want[32];
    snprintf(want, sizeof(want), "tok-%d-10", ps_schema_find(fx.in, "pid.nhs_number"));
    assert_int_equal(v.len, strlen(want));
    assert_memory_equal(v.s, want, v.len);
    ps_event_get(ev, ps_schema_find(derived, "pid.date_of_birth"), &v);
    assert_int_equal(v.kind, PS_SCALAR_INT);
    assert_int_equal(v.i, 1980);
    ps_event_get(ev, ps_schema_find(derived, "msh.event_time"), &v);
    assert_int_equal(v.kind, PS_SCALAR_STRING);
    assert_memory_equal(v.s, "2024-03-01T10:15:30.123Z", v.len);
    ps_event_get(ev, ps_schema_find(derived, "pid.sex"), &v);
    assert_memory_equal(v.s, "F", 1);
    ps_event_get(ev, ps_schema_find(derived, "pv1.admit_time"), &v);
    assert_int_equal(v.i, INT64_C(1709287080000));
    ps_event_get(ev, ps_schema_find(derived, "obx[].numeric_value"), &v);
    assert_true(v.d == 72.0);

    /* The readable form of the output carries no dropped or clear value. */
    struct ps_buf json;
    ps_buf_init(&json, 0);
    assert_int_equal(ps_event_to_json(ev, &json, &err), PS_OK);
    assert_null(strstr((const char *)json.data, "Testperson"));
    assert_null(strstr((const char *)json.data, "9990000018"));
    assert_null(strstr((const char *)json.data, "LS1 4AP"));
    assert_null(strstr((const char *)json.data, "WARD 7"));
    assert_non_null(strstr((const char *)json.data, "\"date_of_birth\":1980"));
    ps_buf_free(&json);

    /* Output is appended; a null optional input reaches the map function. */
    size_t first = out.len;
    ms.calls = 0;
    assert_int_equal(ps_projection_apply(proj, fx.ev, map_fields, &ms, &out, &err), PS_OK);
    assert_int_equal(out.len, 2 * first);
    assert_memory_equal(out.data, out.data + first, first);

    ps_buf_free(&out);
    ps_projection_destroy(proj);
    fixture_close(&fx);
}

static ps_err_t map_fails(void *opaque, int node, const struct ps_scalar *in,
                          struct ps_scalar *out_p, struct ps_error *err)
{
    (void)opaque;
    (void)node;
    (void)in;
    (void)out_p;
    return ps_error_set(err, PS_ERR_NHS_INVALID, "NHS number fails the check digit");
}

static void test_map_failures(void **state)
{
    (void)state;
    struct fixture fx;
    struct ps_projection *proj = NULL;
    struct ps_error err;
    struct ps_buf out;
    struct map_state ms = {.bad = 1};
    fixture_open(&fx, HL7_SCHEMA, hl7_adt);
    plan_research(&fx);
    ps_buf_init(&out, 0);
    ps_buf_append(&out, "abc", 3);
    assert_int_equal(ps_projection_new(fx.in, fx.spec, OUT_NS, &proj, &err), PS_OK);

    ps_error_clear(&err);
    assert_int_equal(ps_projection_apply(proj, fx.ev, map_fields, &ms, &out, &err),
                     PS_ERR_TRANSFORM);
    assert_int_equal(out.len, 3);
    assert_non_null(strstr(err.msg, "field 'msh.event_time'"));

    ps_error_clear(&err);
    assert_int_equal(ps_projection_apply(proj, fx.ev, map_fails, NULL, &out, &err),
                     PS_ERR_NHS_INVALID);
    assert_int_equal(out.len, 3);
    assert_string_equal(err.msg, "field 'msh.event_time': NHS number fails the check digit");

    assert_int_equal(ps_projection_apply(proj, fx.ev, NULL, NULL, &out, &err), PS_ERR_INVALID);

    /* An event of another schema is refused. */
    struct ps_buf small;
    ps_buf_init(&small, 4);
    ms.bad = 0;
    assert_int_equal(ps_projection_apply(proj, fx.ev, map_fields, &ms, &small, &err),
                     PS_ERR_LIMIT);
    assert_int_equal(small.len, 0);
    ps_buf_free(&small);

    ps_buf_free(&out);
    ps_projection_destroy(proj);
    fixture_close(&fx);
}

static void expect_invalid(struct fixture *fx, const char *needle)
{
    struct ps_projection *proj = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    assert_int_equal(ps_projection_new(fx->in, fx->spec, OUT_NS, &proj, &err), PS_ERR_INVALID);
    assert_null(proj);
    if (!strstr(err.msg, needle)) {
        print_error("%s\n", err.msg);
    }
    assert_non_null(strstr(err.msg, needle));
    memset(fx->spec, 0, ps_schema_node_count(fx->in) * sizeof(*fx->spec));
}

static void test_invalid_plans(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_open(&fx, HL7_SCHEMA, hl7_adt);
    fx.spec[0].op = PS_PROJECT_DROP;
    expect_invalid(&fx, "root record must be kept");
    *field(&fx, "pid") = (struct ps_project_field){.op = PS_PROJECT_MAP,
                                                   .out_type = PS_TYPE_STRING};
    expect_invalid(&fx, "field 'pid': only a scalar leaf");
    *field(&fx, "pid.sex") = (struct ps_project_field){.op = PS_PROJECT_MAP,
                                                       .out_type = PS_TYPE_DOUBLE};
    expect_invalid(&fx, "field 'pid.sex': a mapped field must become");
    field(&fx, "pid.name[]")->op = PS_PROJECT_DROP;
    expect_invalid(&fx, "field 'pid.name[]': items cannot be dropped");
    /* Under a dropped node the plan is not looked at. */
    field(&fx, "pid.name")->op = PS_PROJECT_DROP;
    field(&fx, "pid.name[]")->op = PS_PROJECT_DROP;
    struct ps_projection *proj = NULL;
    struct ps_error err;
    assert_int_equal(ps_projection_new(fx.in, fx.spec, OUT_NS, &proj, &err), PS_OK);
    ps_projection_destroy(proj);
    ps_projection_destroy(NULL);
    fixture_close(&fx);
}

/* A named type used twice: shared while the plan treats both uses alike,
 * split (Addr_2) when it does not. */
static void test_named_types_in_derived_schema(void **state)
{
    (void)state;
    const char *schema_json =
        "{\"type\":\"record\",\"name\":\"E\",\"namespace\":\"in.ns\",\"fields\":["
        "{\"name\":\"home\",\"type\":{\"type\":\"record\",\"name\":\"Addr\",\"fields\":["
        "{\"name\":\"line\",\"type\":\"string\",\"confluent:tags\":[\"ADDRESS\"]},"
        "{\"name\":\"postcode\",\"type\":[\"null\",\"string\"]}]}},"
        "{\"name\":\"work\",\"type\":[\"null\",\"Addr\"]},"
        "{\"name\":\"past\",\"type\":{\"type\":\"array\",\"items\":\"Addr\"}},"
        "{\"name\":\"colour\",\"type\":{\"type\":\"enum\",\"name\":\"C\","
        "\"symbols\":[\"R\",\"G\"]}},"
        "{\"name\":\"other\",\"type\":[\"int\",\"C\",\"Addr\"]},"
        "{\"name\":\"tally\",\"type\":{\"type\":\"map\",\"values\":\"C\"}}]}";
    const char *event =
        "{\"home\":{\"line\":\"1 A St\",\"postcode\":\"AB1 2CD\"},\"work\":null,"
        "\"past\":[{\"line\":\"2 B St\",\"postcode\":null}],\"colour\":\"G\","
        "\"other\":{\"line\":\"3 C St\",\"postcode\":\"EF3 4GH\"},\"tally\":{\"x\":\"R\"}}";
    struct ps_schema *in = NULL;
    struct ps_decoder *dec = NULL;
    struct ps_event *ev = NULL;
    struct ps_error err;
    struct ps_buf datum, out;
    ps_buf_init(&datum, 0);
    ps_buf_init(&out, 0);
    assert_int_equal(ps_schema_load_json(schema_json, "named", NULL, &in, &err), PS_OK);
    assert_int_equal(ps_decoder_new(NULL, &dec, &err), PS_OK);
    ps_err_t rc = ps_codec_json_to_datum(in, event, strlen(event), &datum, &err);
    if (rc != PS_OK) {
        print_error("%s\n", err.msg);
    }
    assert_int_equal(rc, PS_OK);
    assert_int_equal(ps_decoder_decode(dec, in, datum.data, datum.len, &ev, &err), PS_OK);
    struct ps_project_field *spec = calloc(ps_schema_node_count(in), sizeof(*spec));

    struct ps_projection *proj = NULL;
    assert_int_equal(ps_projection_new(in, spec, "out.ns", &proj, &err), PS_OK);
    const char *text = ps_schema_json(ps_projection_schema(proj));
    assert_non_null(strstr(text, "\"out.ns.Addr\""));
    assert_null(strstr(text, "Addr_2"));
    assert_null(strstr(text, "in.ns"));
    assert_int_equal(ps_projection_apply(proj, ev, NULL, NULL, &out, &err), PS_OK);
    assert_int_equal(out.len, datum.len);
    assert_memory_equal(out.data, datum.data, datum.len);
    decode_output(dec, ps_projection_schema(proj), &out);
    ps_projection_destroy(proj);

    spec[ps_schema_find(in, "work.postcode")].op = PS_PROJECT_DROP;
    spec[ps_schema_find(in, "past[].postcode")].op = PS_PROJECT_DROP;
    rc = ps_projection_new(in, spec, "out.ns", &proj, &err);
    if (rc != PS_OK) {
        print_error("%s\n", err.msg);
    }
    assert_int_equal(rc, PS_OK);
    const struct ps_schema *derived = ps_projection_schema(proj);
    text = ps_schema_json(derived);
    assert_non_null(strstr(text, "\"Addr_2\""));
    assert_non_null(strstr(text, "\"out.ns.Addr_2\""));
    assert_int_equal(ps_schema_find(derived, "work.postcode"), -1);
    assert_true(ps_schema_find(derived, "home.postcode") >= 0);
    ps_buf_reset(&out);
    assert_int_equal(ps_projection_apply(proj, ev, NULL, NULL, &out, &err), PS_OK);
    struct ps_event *oev = decode_output(dec, derived, &out);
    struct ps_scalar v;
    ps_event_get(oev, ps_schema_find(derived, "past[].line"), &v);
    assert_memory_equal(v.s, "2 B St", v.len);
    ps_event_get(oev, ps_schema_find(derived, "colour"), &v);
    assert_memory_equal(v.s, "G", v.len);
    ps_projection_destroy(proj);

    free(spec);
    ps_buf_free(&datum);
    ps_buf_free(&out);
    ps_decoder_destroy(dec);
    ps_schema_destroy(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keep_all_is_byte_exact),
        cmocka_unit_test(test_drop_and_map),
        cmocka_unit_test(test_map_failures),
        cmocka_unit_test(test_invalid_plans),
        cmocka_unit_test(test_named_types_in_derived_schema),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
