/*
 * ps_engine: one framed input event in, one decision per destination out,
 * with the demo policy (policy/demo.yaml) on the two reference schemas.
 *
 * Outputs are decoded with their derived schema and read back as JSON, so
 * the tests see what a destination would receive. The expected commissioning
 * token is the known answer of docs/pseudonym-vectors.json (computed with
 * Python's hmac from DESIGN.md section 6). All data is artificial: NHS
 * numbers in the 999 test range, made-up names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ps_audit.h"
#include "ps_codec.h"
#include "ps_engine.h"
#include "ps_frame.h"
#include "ps_keyring.h"
#include "ps_optout.h"
#include "ps_policy_doc.h"
#include "ps_registry.h"
#include "ps_schema.h"
#include "ps_synth.h"
#include "ps_time.h"

#define HL7_SCHEMA "schemas/hl7v2/hl7v2_event.avsc"
#define FHIR_SCHEMA "schemas/fhir/fhir_event.avsc"
#define SECRET "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define NOT_BEFORE INT64_C(1577836800000) /* 2020-01-01T00:00:00Z */

/* docs/pseudonym-vectors.json: 9990000018, domain "commissioning", key 1. */
#define TOKEN_COMM_9990000018 "1.azmjrzwnzcbxkehom6whk6y2u2tfu7ic"

#define WARD 0
#define COMM 1
#define RESEARCH 2

struct fixture {
    struct ps_registry *reg;
    struct ps_policy_doc *doc;
    struct ps_keyring *kr;
    struct ps_engine *engine;
    struct ps_engine_worker *worker;
    struct ps_optout *optout;
    struct ps_decoder *dec;
    const struct ps_schema *hl7;
    const struct ps_schema *fhir;
};

static struct ps_schema *load_schema(const char *path)
{
    struct ps_schema *schema = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    if (ps_schema_load_file(path, NULL, &schema, &err) != PS_OK) {
        fprintf(stderr, "%s: %s\n", path, err.msg);
    }
    return schema;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct ps_error err;
    ps_error_clear(&err);
    if (!f || ps_crypto_init(&err) != PS_OK || ps_registry_new(&f->reg, &err) != PS_OK) {
        return -1;
    }
    struct ps_schema *hl7 = load_schema(HL7_SCHEMA);
    struct ps_schema *fhir = load_schema(FHIR_SCHEMA);
    if (!hl7 || !fhir || ps_registry_add(f->reg, hl7, 1, &err) != PS_OK ||
        ps_registry_add(f->reg, fhir, 2, &err) != PS_OK) {
        fprintf(stderr, "registry: %s\n", err.msg);
        return -1;
    }
    f->hl7 = hl7;
    f->fhir = fhir;
    struct ps_keyring_entry entry = {1, NOT_BEFORE, 0, SECRET};
    if (ps_policy_doc_load("policy/demo.yaml", &f->doc, &err) != PS_OK ||
        ps_keyring_new(&entry, 1, "test", &f->kr, &err) != PS_OK ||
        ps_engine_new(f->doc, "0123abcd", f->reg, f->kr, &f->engine, &err) != PS_OK ||
        ps_engine_worker_new(f->engine, NULL, &f->worker, &err) != PS_OK ||
        ps_decoder_new(NULL, &f->dec, &err) != PS_OK ||
        ps_optout_new(PS_OPTOUT_OPTED_OUT, &f->optout, &err) != PS_OK) {
        fprintf(stderr, "setup: %s:%d: %s\n", err.file, err.line, err.msg);
        return -1;
    }
    /* The demo's secondary-use destinations apply the national data opt-out:
     * a fresh state in which nobody has opted out (9994242423 is added and
     * removed by the opt-out test). */
    ps_optout_set_as_of(f->optout, ps_time_now_ms());
    ps_engine_worker_set_optout(f->worker, f->optout, 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    ps_decoder_destroy(f->dec);
    ps_engine_worker_destroy(f->worker);
    ps_optout_destroy(f->optout);
    ps_engine_destroy(f->engine);
    ps_keyring_destroy(f->kr);
    ps_policy_doc_destroy(f->doc);
    ps_registry_destroy(f->reg);
    free(f);
    return 0;
}

/* A hand-written ADT^A01. nhs is the JSON of the NHS number ("\"...\"" or null). */
static void hl7_event(char *out, size_t size, const char *nhs, const char *when,
                      const char *msg_id)
{
    snprintf(out, size,
             "{\"msh\":{\"message_control_id\":\"%s\",\"sending_application\":\"PAS\","
             "\"sending_facility\":\"RXX01\",\"message_type\":\"ADT^A01\","
             "\"event_time\":\"%s\",\"version_id\":\"2.4\"},"
             "\"pid\":{\"nhs_number\":%s,\"nhs_number_status\":\"01\","
             "\"local_identifiers\":[{\"id\":\"H7654321\",\"assigning_authority\":\"RXX\","
             "\"identifier_type\":\"MR\"}],"
             "\"name\":[{\"family\":\"Quillondale\",\"given\":[\"Mabliss\"],\"prefix\":null,"
             "\"name_type\":\"L\"}],"
             "\"date_of_birth\":\"1970-03-15\",\"sex\":\"F\",\"ethnic_category\":\"A\","
             "\"address\":[{\"lines\":[\"7 Imaginary Close\"],\"city\":\"Elderholt\","
             "\"county\":null,\"postcode\":\"LS1 4AB\",\"address_type\":\"H\"}],"
             "\"telecom\":[{\"use\":\"PRN\",\"equipment\":\"CP\",\"value\":\"07700 900123\"}],"
             "\"date_of_death\":null,\"death_indicator\":false},"
             "\"pd1\":{\"gp_practice\":\"B86001\",\"gp_code\":\"G7000001\"},"
             "\"pv1\":{\"patient_class\":\"I\",\"ward\":\"W14\",\"room\":null,\"bed\":\"B03\","
             "\"admission_method\":\"21\",\"consultant_code\":\"C7000002\","
             "\"consultant_name\":\"Dr Fenwick\",\"treatment_function_code\":\"300\","
             "\"visit_number\":\"V000000042\",\"admit_time\":\"%s\",\"discharge_time\":null},"
             "\"nk1\":[{\"family\":\"Quillondale\",\"given\":\"Perrin\",\"relationship\":\"SPO\","
             "\"telecom\":\"07700 900456\"}],"
             "\"dg1\":[{\"coding_system\":\"I10\",\"code\":\"J18.9\",\"description\":"
             "\"Pneumonia, unspecified\",\"diagnosis_type\":\"W\",\"diagnosis_time\":\"%s\"}],"
             "\"mrg\":null,\"obr\":null,\"obx\":[]}",
             msg_id, when, nhs, when, when);
}

/* Encodes JSON for a schema and frames it with a Confluent id. */
static void frame_event(const struct ps_schema *schema, uint32_t id, const char *json,
                        struct ps_buf *out)
{
    struct ps_error err;
    ps_error_clear(&err);
    ps_buf_reset(out);
    assert_int_equal(ps_frame_write_confluent(id, out), PS_OK);
    if (ps_codec_json_to_datum(schema, json, strlen(json), out, &err) != PS_OK) {
        fail_msg("encode: %s", err.msg);
    }
}

static const struct ps_engine_output *process(struct fixture *f, const struct ps_buf *in)
{
    const struct ps_engine_output *outs = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    if (ps_engine_process(f->worker, in->data, in->len, &outs, &err) != PS_OK) {
        fail_msg("process: %s", err.msg);
    }
    assert_non_null(outs);
    return outs;
}

/* Decodes a single-object frame with schema into its readable JSON form. */
static json_t *decode_frame(struct fixture *f, const struct ps_schema *schema, const void *data,
                            size_t len, const char *what)
{
    struct ps_frame frame;
    assert_int_equal(ps_frame_parse(data, len, &frame, NULL), PS_OK);
    assert_int_equal(frame.format, PS_FRAME_SINGLE_OBJECT);
    assert_true(frame.fingerprint == ps_schema_fingerprint(schema));
    struct ps_event *ev = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    if (ps_decoder_decode(f->dec, schema, frame.payload, frame.payload_len, &ev, &err) !=
        PS_OK) {
        fail_msg("%s does not decode: %s", what, err.msg);
    }
    struct ps_buf text;
    ps_buf_init(&text, 0);
    assert_int_equal(ps_event_to_json(ev, &text, &err), PS_OK);
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)text.data, text.len, 0, &jerr);
    ps_buf_free(&text);
    assert_non_null(doc);
    return doc;
}

/* Decodes a disclosed output with its destination's derived schema. */
static json_t *decode_output(struct fixture *f, const struct ps_schema *input, size_t d,
                             const struct ps_engine_output *out)
{
    const struct ps_plan *plan = ps_engine_plan(f->engine, input, d);
    assert_non_null(plan);
    assert_int_equal(out->decision, PS_DISCLOSED);
    return decode_frame(f, ps_projection_schema(plan->projection), out->value, out->len,
                        "a destination's output");
}

/* A value by dotted path, array items by "[n]" written as ".n". */
static json_t *jget(json_t *doc, const char *path)
{
    char copy[256];
    snprintf(copy, sizeof(copy), "%s", path);
    json_t *cur = doc;
    char *save = NULL;
    for (char *part = strtok_r(copy, ".", &save); part && cur;
         part = strtok_r(NULL, ".", &save)) {
        if (json_is_array(cur)) {
            cur = json_array_get(cur, (size_t)atoi(part));
        } else {
            cur = json_object_get(cur, part);
        }
    }
    return cur;
}

static int bytes_contain(const uint8_t *data, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; n && i + n <= len; i++) {
        if (memcmp(data + i, needle, n) == 0) {
            return 1;
        }
    }
    return 0;
}

static void assert_token_shape(const char *key, size_t len)
{
    assert_non_null(key);
    assert_int_equal(len, 34);
    assert_int_equal(strlen(key), 34);
    assert_memory_equal(key, "1.", 2);
    for (size_t i = 2; i < len; i++) {
        char c = key[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7'))) {
            fail_msg("token '%s' has '%c' outside lower-case base32", key, c);
        }
    }
}

static void test_destinations(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(ps_engine_destination_count(f->engine), 3);
    assert_string_equal(ps_engine_destination(f->engine, WARD)->name, "ward-dashboard");
    assert_string_equal(ps_engine_destination(f->engine, COMM)->name, "commissioning");
    assert_string_equal(ps_engine_destination(f->engine, RESEARCH)->name, "research");
    assert_null(ps_engine_destination(f->engine, 3));
    assert_string_equal(ps_engine_policy_hash(f->engine), "0123abcd");
    assert_non_null(ps_engine_plan(f->engine, f->hl7, COMM));
    assert_null(ps_engine_plan(f->engine, f->hl7, 3));
}

static void test_valid_event_all_destinations(void **state)
{
    struct fixture *f = *state;
    char json[4096];
    struct ps_buf in;
    ps_buf_init(&in, 0);
    hl7_event(json, sizeof(json), "\"9990000018\"", "2026-03-01T10:00:00.000Z", "MSG0000001");
    frame_event(f->hl7, 1, json, &in);
    const struct ps_engine_output *outs = process(f, &in);
    assert_ptr_equal(ps_engine_worker_schema(f->worker), f->hl7);

    /* The ward: everything but the next of kin, under the input's key. */
    const struct ps_engine_output *ward = &outs[WARD];
    assert_int_equal(ward->decision, PS_DISCLOSED);
    assert_null(ward->key);
    assert_int_equal(ward->key_len, 0);
    assert_int_equal(ward->key_id, 0);
    json_t *doc = decode_output(f, f->hl7, WARD, ward);
    assert_string_equal(json_string_value(jget(doc, "pid.nhs_number")), "9990000018");
    assert_string_equal(json_string_value(jget(doc, "pid.name.0.family")), "Quillondale");
    assert_string_equal(json_string_value(jget(doc, "pid.address.0.postcode")), "LS1 4AB");
    assert_string_equal(json_string_value(jget(doc, "pid.date_of_birth")), "1970-03-15");
    assert_null(jget(doc, "nk1"));
    json_decref(doc);

    /* Commissioning: keyed and pseudonymised with the known answer. */
    const struct ps_engine_output *comm = &outs[COMM];
    assert_int_equal(comm->decision, PS_DISCLOSED);
    assert_int_equal(comm->reason, PS_OK);
    assert_token_shape(comm->key, comm->key_len);
    assert_string_equal(comm->key, TOKEN_COMM_9990000018);
    assert_int_equal(comm->key_id, 1);
    doc = decode_output(f, f->hl7, COMM, comm);
    assert_string_equal(json_string_value(jget(doc, "pid.nhs_number")), TOKEN_COMM_9990000018);
    assert_int_equal(json_integer_value(jget(doc, "pid.date_of_birth")), 1970);
    assert_true(json_is_integer(jget(doc, "pid.date_of_birth")));
    assert_string_equal(json_string_value(jget(doc, "pid.address.0.postcode")), "LS1");
    assert_string_equal(json_string_value(jget(doc, "pid.sex")), "F");
    assert_string_equal(json_string_value(jget(doc, "msh.message_type")), "ADT^A01");
    assert_string_equal(json_string_value(jget(doc, "msh.event_time")),
                        "2026-03-01T10:00:00.000Z");
    assert_string_equal(json_string_value(jget(doc, "dg1.0.code")), "J18.9");
    assert_null(jget(doc, "pid.name"));
    assert_null(jget(doc, "pid.telecom"));
    assert_null(jget(doc, "pid.local_identifiers"));
    assert_null(jget(doc, "pid.address.0.city"));
    assert_null(jget(doc, "nk1"));
    assert_null(jget(doc, "pv1.visit_number"));
    assert_null(jget(doc, "msh.message_control_id"));
    json_decref(doc);
    /* No identifying value in the bytes either. */
    const char *identifying[] = {"9990000018", "Quillondale", "Mabliss", "LS1 4AB",
                                 "07700 900123", "H7654321", "7 Imaginary Close", "Elderholt",
                                 "V000000042", "Perrin"};
    for (size_t i = 0; i < sizeof(identifying) / sizeof(identifying[0]); i++) {
        assert_false(bytes_contain(comm->value, comm->len, identifying[i]));
    }

    /* Research: its own domain, so its own token; no birth date or event time
     * at full precision (the demo generalises or shifts them). */
    const struct ps_engine_output *res = &outs[RESEARCH];
    assert_int_equal(res->decision, PS_DISCLOSED);
    assert_token_shape(res->key, res->key_len);
    assert_string_not_equal(res->key, comm->key);
    assert_int_equal(res->key_id, 1);
    doc = decode_output(f, f->hl7, RESEARCH, res);
    assert_string_equal(json_string_value(jget(doc, "pid.nhs_number")), res->key);
    json_t *dob = jget(doc, "pid.date_of_birth");
    assert_false(json_is_string(dob) && strcmp(json_string_value(dob), "1970-03-15") == 0);
    json_t *when = jget(doc, "msh.event_time");
    assert_false(json_is_string(when) &&
                 strcmp(json_string_value(when), "2026-03-01T10:00:00.000Z") == 0);
    assert_string_equal(json_string_value(jget(doc, "msh.message_type")), "ADT^A01");
    assert_null(jget(doc, "pid.address"));
    assert_null(jget(doc, "pid.name"));
    json_decref(doc);
    for (size_t i = 0; i < sizeof(identifying) / sizeof(identifying[0]); i++) {
        assert_false(bytes_contain(res->value, res->len, identifying[i]));
    }
    assert_false(bytes_contain(res->value, res->len, "1970-03-15"));
    ps_buf_free(&in);
}

/* Every output names its plan; the plan's AuditPlan record (made once by the
 * engine) decodes with schemas/audit/audit_plan.avsc to exactly the plan's
 * field lists, and its id says policy version, destination and input schema. */
static void test_audit_plans(void **state)
{
    struct fixture *f = *state;
    char json[4096];
    struct ps_buf in;
    ps_buf_init(&in, 0);
    hl7_event(json, sizeof(json), "\"9990000018\"", "2026-03-01T10:00:00.000Z", "MSG0000001");
    frame_event(f->hl7, 1, json, &in);
    const struct ps_engine_output *outs = process(f, &in);
    struct ps_schema *plan_schema = load_schema("schemas/audit/audit_plan.avsc");
    assert_non_null(plan_schema);
    const char *hash = ps_engine_policy_hash(f->engine);
    for (size_t d = 0; d < ps_engine_destination_count(f->engine); d++) {
        const struct ps_plan *plan = ps_engine_plan(f->engine, f->hl7, d);
        char want_id[PS_AUDIT_PLAN_ID_MAX];
        assert_int_equal(ps_audit_plan_id(hash, plan->dst->name, ps_schema_fingerprint(f->hl7),
                                          want_id, NULL),
                         PS_OK);
        assert_string_equal(outs[d].audit_plan_id, want_id);
        assert_int_equal(strncmp(want_id, hash, strnlen(hash, 16)), 0);

        json_t *doc = decode_frame(f, plan_schema, outs[d].audit_plan, outs[d].audit_plan_len,
                                   "a plan record");
        assert_string_equal(json_string_value(json_object_get(doc, "plan_id")), want_id);
        assert_string_equal(json_string_value(json_object_get(doc, "policy_hash")), hash);
        assert_string_equal(json_string_value(json_object_get(doc, "destination")),
                            plan->dst->name);
        assert_string_equal(json_string_value(json_object_get(doc, "input_schema")),
                            ps_schema_name(f->hl7));
        const struct ps_plan_fields *pf = &plan->fields;
        const struct {
            const char *name;
            const char *const *items;
            size_t count;
        } lists[] = {{"kept", pf->kept, pf->kept_count},
                     {"pseudonymised", pf->pseudonymised, pf->pseudonymised_count},
                     {"generalised", (const char *const *)pf->generalised,
                      pf->generalised_count},
                     {"dropped", pf->dropped, pf->dropped_count}};
        size_t total = 0;
        for (size_t l = 0; l < 4; l++) {
            json_t *arr = json_object_get(doc, lists[l].name);
            assert_int_equal(json_array_size(arr), lists[l].count);
            for (size_t i = 0; i < lists[l].count; i++) {
                assert_string_equal(json_string_value(json_array_get(arr, i)), lists[l].items[i]);
            }
            total += lists[l].count;
        }
        assert_true(total > 10); /* every leaf of the event schema is somewhere */
        json_decref(doc);
    }
    ps_schema_destroy(plan_schema);
    ps_buf_free(&in);
}

static void test_spaced_nhs_number_same_token(void **state)
{
    struct fixture *f = *state;
    char json[4096];
    struct ps_buf in;
    ps_buf_init(&in, 0);
    hl7_event(json, sizeof(json), "\"999 000 0018\"", "2026-04-01T00:00:00.000Z", "MSG0000002");
    frame_event(f->hl7, 1, json, &in);
    const struct ps_engine_output *outs = process(f, &in);
    assert_int_equal(outs[COMM].decision, PS_DISCLOSED);
    assert_string_equal(outs[COMM].key, TOKEN_COMM_9990000018);
    ps_buf_free(&in);
}

static void expect_withheld_from_secondary(struct fixture *f, const char *nhs, const char *when,
                                           ps_err_t reason, const char *absent)
{
    char json[4096];
    struct ps_buf in;
    ps_buf_init(&in, 0);
    hl7_event(json, sizeof(json), nhs, when, "MSG0000003");
    frame_event(f->hl7, 1, json, &in);
    const struct ps_engine_output *outs = process(f, &in);
    assert_int_equal(outs[WARD].decision, PS_DISCLOSED);
    assert_null(outs[WARD].key);
    assert_true(outs[WARD].len > 0);
    for (size_t d = COMM; d <= RESEARCH; d++) {
        const struct ps_engine_output *o = &outs[d];
        assert_int_equal(o->decision, PS_WITHHELD);
        if (o->reason != reason) {
            fail_msg("destination %zu withheld for %s (%s), expected %s", d,
                     ps_err_name(o->reason), o->detail, ps_err_name(reason));
        }
        assert_null(o->value);
        assert_int_equal(o->len, 0);
        assert_null(o->key);
        assert_int_equal(o->key_len, 0);
        assert_true(o->detail[0] != '\0');
        if (absent) {
            assert_null(strstr(o->detail, absent));
        }
    }
    ps_buf_free(&in);
}

static void test_invalid_nhs_number_withheld(void **state)
{
    struct fixture *f = *state;
    /* Wrong check digit; a prefix with no check digit; none at all. */
    expect_withheld_from_secondary(f, "\"9990000019\"", "2026-03-01T10:00:00.000Z",
                                   PS_ERR_NHS_INVALID, "9990000019");
    expect_withheld_from_secondary(f, "\"9990000000\"", "2026-03-01T10:00:00.000Z",
                                   PS_ERR_NHS_INVALID, "9990000000");
    expect_withheld_from_secondary(f, "\"999000001\"", "2026-03-01T10:00:00.000Z",
                                   PS_ERR_NHS_INVALID, "999000001");
    expect_withheld_from_secondary(f, "null", "2026-03-01T10:00:00.000Z", PS_ERR_NHS_INVALID,
                                   NULL);
    expect_withheld_from_secondary(f, "\"\"", "2026-03-01T10:00:00.000Z", PS_ERR_NHS_INVALID,
                                   NULL);
}

static void test_event_before_first_key_withheld(void **state)
{
    struct fixture *f = *state;
    expect_withheld_from_secondary(f, "\"9990000018\"", "2019-06-01T09:00:00.000Z",
                                   PS_ERR_NO_KEY, "9990000018");
    /* One millisecond before not_before, and exactly at it. */
    expect_withheld_from_secondary(f, "\"9990000018\"", "2019-12-31T23:59:59.999Z",
                                   PS_ERR_NO_KEY, NULL);
    char json[4096];
    struct ps_buf in;
    ps_buf_init(&in, 0);
    hl7_event(json, sizeof(json), "\"9990000018\"", "2020-01-01T00:00:00.000Z", "MSG0000004");
    frame_event(f->hl7, 1, json, &in);
    const struct ps_engine_output *outs = process(f, &in);
    assert_int_equal(outs[COMM].decision, PS_DISCLOSED);
    assert_string_equal(outs[COMM].key, TOKEN_COMM_9990000018);
    ps_buf_free(&in);
}

static void expect_undecodable(struct fixture *f, const void *data, size_t len, ps_err_t want1,
                               ps_err_t want2)
{
    const struct ps_engine_output *outs = (const void *)&outs; /* sentinel */
    const struct ps_engine_output *sentinel = outs;
    struct ps_error err;
    ps_error_clear(&err);
    ps_err_t rc = ps_engine_process(f->worker, data, len, &outs, &err);
    if (rc != want1 && rc != want2) {
        fail_msg("process gave %s (%s), expected %s or %s", ps_err_name(rc), err.msg,
                 ps_err_name(want1), ps_err_name(want2));
    }
    assert_int_equal(err.code, rc);
    assert_ptr_equal(outs, sentinel); /* no outputs for a dead letter */
}

static void test_undecodable_input(void **state)
{
    struct fixture *f = *state;
    const uint8_t garbage[] = {'{', '"', 'n', 'h', 's', '"', ':', '1', '}'};
    expect_undecodable(f, garbage, sizeof(garbage), PS_ERR_FRAME, PS_ERR_FRAME);
    expect_undecodable(f, garbage, 0, PS_ERR_EMPTY, PS_ERR_EMPTY);
    const uint8_t short_header[] = {0x00, 0x00, 0x00};
    expect_undecodable(f, short_header, sizeof(short_header), PS_ERR_FRAME, PS_ERR_FRAME);

    char json[4096];
    struct ps_buf in;
    ps_buf_init(&in, 0);
    hl7_event(json, sizeof(json), "\"9990000018\"", "2026-03-01T10:00:00.000Z", "MSG0000005");
    /* A schema id the registry does not know. */
    frame_event(f->hl7, 99, json, &in);
    expect_undecodable(f, in.data, in.len, PS_ERR_SCHEMA_UNKNOWN, PS_ERR_SCHEMA_UNKNOWN);
    /* A single-object frame with an unknown fingerprint. */
    struct ps_buf so;
    ps_buf_init(&so, 0);
    assert_int_equal(ps_frame_write_single_object(UINT64_C(0x1122334455667788), &so), PS_OK);
    assert_int_equal(ps_buf_append(&so, in.data + 5, in.len - 5), PS_OK);
    expect_undecodable(f, so.data, so.len, PS_ERR_SCHEMA_UNKNOWN, PS_ERR_SCHEMA_UNKNOWN);
    ps_buf_free(&so);

    /* The right id, the datum cut short at many points. */
    frame_event(f->hl7, 1, json, &in);
    for (size_t cut = 1; cut < in.len - 5; cut += 7) {
        expect_undecodable(f, in.data, in.len - cut, PS_ERR_DECODE, PS_ERR_LIMIT);
    }
    /* An empty datum. */
    expect_undecodable(f, in.data, 5, PS_ERR_DECODE, PS_ERR_LIMIT);
    /* Trailing bytes after a whole datum. */
    assert_int_equal(ps_buf_append(&in, "\x00\x00", 2), PS_OK);
    expect_undecodable(f, in.data, in.len, PS_ERR_DECODE, PS_ERR_LIMIT);

    /* The worker goes on after a dead letter. */
    frame_event(f->hl7, 1, json, &in);
    const struct ps_engine_output *outs = process(f, &in);
    assert_int_equal(outs[COMM].decision, PS_DISCLOSED);
    ps_buf_free(&in);
}

static void test_same_patient_same_token(void **state)
{
    struct fixture *f = *state;
    char json[4096];
    char comm_key[64], res_key[64];
    struct ps_buf in;
    ps_buf_init(&in, 0);
    hl7_event(json, sizeof(json), "\"9991234578\"", "2026-05-01T08:00:00.000Z", "MSG0000010");
    frame_event(f->hl7, 1, json, &in);
    const struct ps_engine_output *outs = process(f, &in);
    snprintf(comm_key, sizeof(comm_key), "%s", outs[COMM].key);
    snprintf(res_key, sizeof(res_key), "%s", outs[RESEARCH].key);
    /* docs/pseudonym-vectors.json: 9991234578 in commissioning. */
    assert_string_equal(comm_key, "1.diohihykpumygnbnsorciikk2usdux6d");

    /* A later event for the same patient, another message. */
    hl7_event(json, sizeof(json), "\"999-123-4578\"", "2026-09-30T23:00:00.000Z", "MSG0000011");
    frame_event(f->hl7, 1, json, &in);
    outs = process(f, &in);
    assert_string_equal(outs[COMM].key, comm_key);
    assert_string_equal(outs[RESEARCH].key, res_key);

    /* The same patient arriving as a FHIR Patient gets the same token too. */
    const char *fhir_json =
        "{\"id\":\"Patient/1/_history/1\",\"resourceType\":\"Patient\","
        "\"lastUpdated\":\"2026-06-01T12:00:00.000Z\",\"source\":\"RXX01\","
        "\"patient\":{\"id\":\"pat-1\",\"nhsNumber\":\"9991234578\",\"identifier\":[],"
        "\"name\":[{\"use\":\"official\",\"family\":\"Quillondale\",\"given\":[\"Mabliss\"],"
        "\"prefix\":[]}],\"telecom\":[],\"gender\":\"female\",\"birthDate\":\"1970-03\","
        "\"address\":[],\"generalPractitioner\":[]},"
        "\"encounter\":null,\"observation\":null}";
    frame_event(f->fhir, 2, fhir_json, &in);
    outs = process(f, &in);
    assert_ptr_equal(ps_engine_worker_schema(f->worker), f->fhir);
    assert_int_equal(outs[WARD].decision, PS_DISCLOSED);
    assert_null(outs[WARD].key);
    assert_int_equal(outs[COMM].decision, PS_DISCLOSED);
    assert_string_equal(outs[COMM].key, comm_key);
    assert_string_equal(outs[RESEARCH].key, res_key);
    json_t *doc = decode_output(f, f->fhir, COMM, &outs[COMM]);
    assert_string_equal(json_string_value(jget(doc, "patient.nhsNumber")), comm_key);
    assert_int_equal(json_integer_value(jget(doc, "patient.birthDate")), 1970);
    assert_null(jget(doc, "patient.name"));
    json_decref(doc);

    /* A different patient gets a different token. */
    hl7_event(json, sizeof(json), "\"9994242423\"", "2026-05-01T08:00:00.000Z", "MSG0000012");
    frame_event(f->hl7, 1, json, &in);
    outs = process(f, &in);
    assert_string_not_equal(outs[COMM].key, comm_key);
    assert_string_not_equal(outs[RESEARCH].key, res_key);
    ps_buf_free(&in);
}

/* Generated events of both families: every one decodes, the ward sees each,
 * secondary use sees each with a valid NHS number under a stable per-patient
 * token, and never a patient's identifying value. */
static void test_synthetic_stream(void **state)
{
    struct fixture *f = *state;
    struct ps_synth_options opt = {.seed = 7, .patients = 40};
    struct ps_synth *synth = NULL;
    assert_int_equal(ps_synth_new(&opt, &synth, NULL), PS_OK);
    char tokens[40][64];
    memset(tokens, 0, sizeof(tokens));
    struct ps_buf json, in, manifest;
    ps_buf_init(&json, 0);
    ps_buf_init(&in, 0);
    ps_buf_init(&manifest, 0);
    size_t disclosed = 0, withheld = 0, predicate[2] = {0, 0};
    for (int i = 0; i < 400; i++) {
        enum ps_synth_family family;
        size_t patient;
        ps_buf_reset(&json);
        assert_int_equal(ps_synth_next(synth, &json, &family, &patient), PS_OK);
        assert_int_equal(ps_buf_append(&json, "", 1), PS_OK);
        const struct ps_schema *schema = family == PS_SYNTH_HL7V2 ? f->hl7 : f->fhir;
        frame_event(schema, family == PS_SYNTH_HL7V2 ? 1 : 2, (const char *)json.data, &in);
        const struct ps_engine_output *outs = process(f, &in);
        assert_int_equal(outs[WARD].decision, PS_DISCLOSED);
        assert_null(outs[WARD].key);

        ps_buf_reset(&manifest);
        assert_int_equal(ps_synth_manifest(synth, patient, &manifest), PS_OK);
        json_t *m = json_loadb((const char *)manifest.data, manifest.len, 0, NULL);
        assert_non_null(m);
        const char *nhs = json_string_value(json_object_get(m, "nhs_number"));
        assert_non_null(nhs);
        int has_valid = strstr((const char *)json.data, nhs) != NULL;
        for (size_t d = COMM; d <= RESEARCH; d++) {
            const struct ps_engine_output *o = &outs[d];
            if (!has_valid) {
                assert_int_equal(o->decision, PS_WITHHELD);
                assert_int_equal(o->reason, PS_ERR_NHS_INVALID);
                continue;
            }
            /* The demo withholds restricted diagnoses (withhold_when), which the
             * generator sometimes writes; anything else must be disclosed. A
             * merge (A40) names a prior NHS number, valid by construction. */
            if (o->decision == PS_WITHHELD && o->reason == PS_ERR_PREDICATE) {
                assert_int_equal(family, PS_SYNTH_HL7V2); /* dg1 only in HL7v2 */
                predicate[d - COMM]++;
                continue;
            }
            if (o->decision != PS_DISCLOSED) {
                fail_msg("event %d withheld from %zu: %s (%s)", i, d, ps_err_name(o->reason),
                         o->detail);
            }
            assert_token_shape(o->key, o->key_len);
            const char *keys[] = {"nhs_number", "family", "given", "postcode",
                                  "address_line", "phone", "landline", "email", "local_id",
                                  "fhir_id", "next_of_kin_family", "next_of_kin_phone",
                                  "merged_nhs_number", "merged_local_id"};
            for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
                const char *v = json_string_value(json_object_get(m, keys[k]));
                assert_non_null(v);
                if (bytes_contain(o->value, o->len, v)) {
                    fail_msg("event %d: destination %zu received the patient's %s", i, d,
                             keys[k]);
                }
            }
        }
        if (has_valid && outs[COMM].decision == PS_DISCLOSED) {
            disclosed++;
            if (tokens[patient][0]) {
                assert_string_equal(tokens[patient], outs[COMM].key);
            } else {
                snprintf(tokens[patient], sizeof(tokens[patient]), "%s", outs[COMM].key);
            }
        } else if (!has_valid) {
            withheld++;
        }
        json_decref(m);
    }
    /* About 2 in 100 events lack a valid number; a few carry a restricted
     * code, withheld from both secondary-use destinations alike. */
    assert_true(withheld > 0 && withheld < 20);
    assert_int_equal(predicate[0], predicate[1]);
    assert_true(predicate[0] < 40);
    assert_int_equal(disclosed + withheld + predicate[0], 400);
    /* Distinct patients, distinct tokens. */
    for (int a = 0; a < 40; a++) {
        for (int b = a + 1; b < 40; b++) {
            if (tokens[a][0] && tokens[b][0]) {
                assert_string_not_equal(tokens[a], tokens[b]);
            }
        }
    }
    ps_buf_free(&json);
    ps_buf_free(&in);
    ps_buf_free(&manifest);
    ps_synth_destroy(synth);
}

static void test_national_data_opt_out(void **state)
{
    struct fixture *f = *state;
    char json[4096];
    struct ps_buf in;
    ps_buf_init(&in, 0);
    hl7_event(json, sizeof(json), "\"999 424 2423\"", "2026-03-01T10:00:00.000Z", "MSG0000020");
    frame_event(f->hl7, 1, json, &in);

    /* Opted out: withheld from secondary use, still disclosed to the ward. */
    assert_int_equal(ps_optout_add(f->optout, "9994242423", 10, NULL), PS_OK);
    const struct ps_engine_output *outs = process(f, &in);
    assert_int_equal(outs[WARD].decision, PS_DISCLOSED);
    for (size_t d = COMM; d <= RESEARCH; d++) {
        assert_int_equal(outs[d].decision, PS_WITHHELD);
        assert_int_equal(outs[d].reason, PS_ERR_OPT_OUT);
        assert_null(outs[d].value);
        assert_null(outs[d].key);
        assert_null(strstr(outs[d].detail, "4242423"));
    }
    assert_int_equal(ps_optout_remove(f->optout, "9994242423", 10, NULL), PS_OK);
    outs = process(f, &in);
    assert_int_equal(outs[COMM].decision, PS_DISCLOSED);
    assert_int_equal(outs[RESEARCH].decision, PS_DISCLOSED);

    /* A stale or missing state fails closed for secondary use only. */
    ps_engine_worker_set_optout(f->worker, f->optout, 0);
    outs = process(f, &in);
    assert_int_equal(outs[WARD].decision, PS_DISCLOSED);
    assert_int_equal(outs[COMM].reason, PS_ERR_OPT_OUT_STALE);
    assert_int_equal(outs[RESEARCH].reason, PS_ERR_OPT_OUT_STALE);
    ps_engine_worker_set_optout(f->worker, NULL, 1);
    outs = process(f, &in);
    assert_int_equal(outs[COMM].decision, PS_WITHHELD);
    assert_int_equal(outs[COMM].reason, PS_ERR_OPT_OUT_STALE);
    ps_engine_worker_set_optout(f->worker, f->optout, 1);
    ps_buf_free(&in);
}

static void test_engine_refuses_bad_policy(void **state)
{
    struct fixture *f = *state;
    /* A path that names no field of any schema is a typo. */
    char dir[] = "/tmp/ps_test_engine_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/typo.yaml", dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("version: 1\n"
          "destinations:\n"
          "  - name: ward\n"
          "    topic: ward.events\n"
          "    purpose: direct_care\n"
          "    legal_basis:\n"
          "      article6: public_task\n"
          "      article9: health_social_care\n"
          "      common_law: implied_consent\n"
          "    default: keep\n"
          "    rules:\n"
          "      - path: pid.date_of_brith\n"
          "        action: drop\n",
          fp);
    fclose(fp);
    struct ps_policy_doc *doc = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    assert_int_equal(ps_policy_doc_load(path, &doc, &err), PS_OK);
    struct ps_engine *engine = NULL;
    assert_int_equal(ps_engine_new(doc, "x", f->reg, f->kr, &engine, &err), PS_ERR_CONFIG);
    assert_null(engine);
    assert_string_equal(err.file, path);
    assert_int_equal(err.line, 12);
    assert_non_null(strstr(err.msg, "path 'pid.date_of_brith' names no field"));
    ps_policy_doc_destroy(doc);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_destinations),
        cmocka_unit_test(test_valid_event_all_destinations),
        cmocka_unit_test(test_audit_plans),
        cmocka_unit_test(test_spaced_nhs_number_same_token),
        cmocka_unit_test(test_invalid_nhs_number_withheld),
        cmocka_unit_test(test_event_before_first_key_withheld),
        cmocka_unit_test(test_undecodable_input),
        cmocka_unit_test(test_same_patient_same_token),
        cmocka_unit_test(test_synthetic_stream),
        cmocka_unit_test(test_national_data_opt_out),
        cmocka_unit_test(test_engine_refuses_bad_policy),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
