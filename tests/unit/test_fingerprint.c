/*
 * Parsing Canonical Form and CRC-64-AVRO fingerprints.
 *
 * The known answers are the Avro project's own: share/test/data/schema-tests.txt
 * in apache/avro (cases 000 to 033, canonical forms and fingerprints, the
 * latter as Java signed longs, cross-checked there by the Java test suite).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ps_fingerprint.h"

struct vector {
    const char *input;
    const char *canonical;
    int has_fp;
    int64_t fp; /* as the Java long in schema-tests.txt */
};

static const struct vector avro_vectors[] = {
    /* 000-015: primitives, bare and as objects */
    {"\"null\"", "\"null\"", 1, INT64_C(7195948357588979594)},
    {"{\"type\":\"null\"}", "\"null\"", 0, 0},
    {"\"boolean\"", "\"boolean\"", 1, INT64_C(-6970731678124411036)},
    {"{\"type\":\"boolean\"}", "\"boolean\"", 0, 0},
    {"\"int\"", "\"int\"", 1, INT64_C(8247732601305521295)},
    {"{\"type\":\"int\"}", "\"int\"", 0, 0},
    {"\"long\"", "\"long\"", 1, INT64_C(-3434872931120570953)},
    {"{\"type\":\"long\"}", "\"long\"", 0, 0},
    {"\"float\"", "\"float\"", 1, INT64_C(5583340709985441680)},
    {"{\"type\":\"float\"}", "\"float\"", 0, 0},
    {"\"double\"", "\"double\"", 1, INT64_C(-8181574048448539266)},
    {"{\"type\":\"double\"}", "\"double\"", 0, 0},
    {"\"bytes\"", "\"bytes\"", 1, INT64_C(5746618253357095269)},
    {"{\"type\":\"bytes\"}", "\"bytes\"", 0, 0},
    {"\"string\"", "\"string\"", 1, INT64_C(-8142146995180207161)},
    {"{\"type\":\"string\"}", "\"string\"", 0, 0},
    /* 016-018: unions */
    {"[  ]", "[]", 1, INT64_C(-1241056759729112623)},
    {"[ \"int\"  ]", "[\"int\"]", 1, INT64_C(-5232228896498058493)},
    {"[ \"int\" , {\"type\":\"boolean\"} ]", "[\"int\",\"boolean\"]", 1,
     INT64_C(5392556393470105090)},
    /* 019-026: records, namespaces, stripped attributes */
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\"}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", 1, INT64_C(-4824392279771201922)},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", \"namespace\":\"x.y\"}",
     "{\"name\":\"x.y.foo\",\"type\":\"record\",\"fields\":[]}", 1, INT64_C(5916914534497305771)},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"a.b.foo\", \"namespace\":\"x.y\"}",
     "{\"name\":\"a.b.foo\",\"type\":\"record\",\"fields\":[]}", 1,
     INT64_C(-4616218487480524110)},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", \"doc\":\"Useful info\"}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", 1, INT64_C(-4824392279771201922)},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", \"aliases\":[\"foo\",\"bar\"]}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", 1, INT64_C(-4824392279771201922)},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", \"doc\":\"foo\", "
     "\"aliases\":[\"foo\",\"bar\"]}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", 1, INT64_C(-4824392279771201922)},
    {"{\"fields\":[{\"type\":{\"type\":\"boolean\"}, \"name\":\"f1\"}], \"type\":\"record\", "
     "\"name\":\"foo\"}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[{\"name\":\"f1\",\"type\":\"boolean\"}]}",
     1, INT64_C(7843277075252814651)},
    {"{ \"fields\":[{\"type\":\"boolean\", \"aliases\":[], \"name\":\"f1\", "
     "\"default\":\"true\"},\n"
     "            {\"order\":\"descending\",\"name\":\"f2\",\"doc\":\"Hello\",\"type\":\"int\"}],\n"
     "  \"type\":\"record\", \"name\":\"foo\"\n}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[{\"name\":\"f1\",\"type\":\"boolean\"},"
     "{\"name\":\"f2\",\"type\":\"int\"}]}",
     1, INT64_C(-4860222112080293046)},
    /* 027-030: enums and fixed */
    {"{\"type\":\"enum\", \"name\":\"foo\", \"symbols\":[\"A1\"]}",
     "{\"name\":\"foo\",\"type\":\"enum\",\"symbols\":[\"A1\"]}", 1,
     INT64_C(-6342190197741309591)},
    {"{\"namespace\":\"x.y.z\", \"type\":\"enum\", \"name\":\"foo\", \"doc\":\"foo bar\", "
     "\"symbols\":[\"A1\", \"A2\"]}",
     "{\"name\":\"x.y.z.foo\",\"type\":\"enum\",\"symbols\":[\"A1\",\"A2\"]}", 1,
     INT64_C(-4448647247586288245)},
    {"{\"name\":\"foo\",\"type\":\"fixed\",\"size\":15}",
     "{\"name\":\"foo\",\"type\":\"fixed\",\"size\":15}", 1, INT64_C(1756455273707447556)},
    {"{\"namespace\":\"x.y.z\", \"type\":\"fixed\", \"name\":\"foo\", \"doc\":\"foo bar\", "
     "\"size\":32}",
     "{\"name\":\"x.y.z.foo\",\"type\":\"fixed\",\"size\":32}", 1,
     INT64_C(-3064184465700546786)},
    /* 031-033: array, map, a recursive record */
    {"{ \"items\":{\"type\":\"null\"}, \"type\":\"array\"}",
     "{\"type\":\"array\",\"items\":\"null\"}", 1, INT64_C(-589620603366471059)},
    {"{ \"values\":\"string\", \"type\":\"map\"}", "{\"type\":\"map\",\"values\":\"string\"}", 1,
     INT64_C(-8732877298790414990)},
    {"  {\"name\":\"PigValue\",\"type\":\"record\",\n"
     "   \"fields\":[{\"name\":\"value\", \"type\":[\"null\", \"int\", \"long\", \"PigValue\"]}]}",
     "{\"name\":\"PigValue\",\"type\":\"record\",\"fields\":[{\"name\":\"value\",\"type\":"
     "[\"null\",\"int\",\"long\",\"PigValue\"]}]}",
     1, INT64_C(-1759257747318642341)},
};

static void test_crc64_empty_is_the_seed(void **state)
{
    (void)state;
    /* With no bytes the fingerprint is the spec's EMPTY: the prepended one bit. */
    assert_true(ps_fingerprint_crc64("", 0) == UINT64_C(0xc15d213aa4d7a795));
}

static void test_avro_project_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(avro_vectors) / sizeof(avro_vectors[0]); i++) {
        const struct vector *v = &avro_vectors[i];
        struct ps_error err;
        ps_error_clear(&err);
        char *pcf = NULL;
        ps_err_t rc = ps_fingerprint_canonical(v->input, &pcf, &err);
        if (rc != PS_OK) {
            fail_msg("case %03zu: %s", i, err.msg);
        }
        if (strcmp(pcf, v->canonical) != 0) {
            fail_msg("case %03zu: got %s, want %s", i, pcf, v->canonical);
        }
        uint64_t fp = 0;
        assert_int_equal(ps_fingerprint_schema(v->input, &fp, &err), PS_OK);
        assert_true(fp == ps_fingerprint_crc64(pcf, strlen(pcf)));
        if (v->has_fp && fp != (uint64_t)v->fp) {
            fail_msg("case %03zu: fingerprint %016llx, want %016llx", i, (unsigned long long)fp,
                     (unsigned long long)(uint64_t)v->fp);
        }
        free(pcf);
    }
}

/* Worked out by hand from the spec's seven rules. It exercises what the
 * reference vectors do not: nested namespaces, a nested definition with its
 * own namespace, a later reference by short name, logical types and custom
 * attributes on types and fields, a \u escape in a name (STRINGS), a quoted
 * size with a leading zero (INTEGERS). */
static const char *hand_input =
    "{\n"
    "  \"type\": \"record\", \"name\": \"\\u0045vent\", \"namespace\": \"uk.nhs.test\",\n"
    "  \"doc\": \"an event\", \"confluent:tags\": [\"PII\"], \"pseudostream:event_time\": \"w\",\n"
    "  \"aliases\": [\"Old\"],\n"
    "  \"fields\": [\n"
    "    {\"name\": \"id\", \"type\": {\"type\": \"string\", \"logicalType\": \"uuid\"},\n"
    "     \"doc\": \"x\", \"confluent:tags\": [\"LOCAL_ID\", \"PII\"]},\n"
    "    {\"type\": {\"logicalType\": \"timestamp-millis\", \"type\": \"long\"}, \"name\": \"w\",\n"
    "     \"default\": 0, \"order\": \"ignore\"},\n"
    "    {\"name\": \"inner\", \"type\": {\"fields\": [\n"
    "        {\"name\": \"k\", \"type\": {\"type\": \"enum\", \"name\": \"Kind\",\n"
    "         \"namespace\": \"other.ns\", \"symbols\": [\"A\", \"B\"], \"default\": \"A\"}}\n"
    "      ], \"name\": \"Inner\", \"type\": \"record\"}},\n"
    "    {\"name\": \"again\", \"type\": \"Inner\"},\n"
    "    {\"name\": \"kind2\", \"type\": [\"null\", \"other.ns.Kind\"], \"default\": null},\n"
    "    {\"name\": \"h\", \"type\": {\"size\": \"016\", \"type\": \"fixed\",\n"
    "     \"name\": \"a.b.Hash\",\n"
    "     \"namespace\": \"ignored.ns\"}},\n"
    "    {\"name\": \"m\", \"type\": {\"type\": \"map\", \"values\": {\"type\": \"array\",\n"
    "     \"items\": \"a.b.Hash\"}}}\n"
    "  ]\n"
    "}\n";

static const char *hand_canonical =
    "{\"name\":\"uk.nhs.test.Event\",\"type\":\"record\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"string\"},"
    "{\"name\":\"w\",\"type\":\"long\"},"
    "{\"name\":\"inner\",\"type\":{\"name\":\"uk.nhs.test.Inner\",\"type\":\"record\",\"fields\":["
    "{\"name\":\"k\",\"type\":{\"name\":\"other.ns.Kind\",\"type\":\"enum\","
    "\"symbols\":[\"A\",\"B\"]}}]}},"
    "{\"name\":\"again\",\"type\":\"uk.nhs.test.Inner\"},"
    "{\"name\":\"kind2\",\"type\":[\"null\",\"other.ns.Kind\"]},"
    "{\"name\":\"h\",\"type\":{\"name\":\"a.b.Hash\",\"type\":\"fixed\",\"size\":16}},"
    "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":{\"type\":\"array\","
    "\"items\":\"a.b.Hash\"}}}]}";

static void test_hand_worked_record(void **state)
{
    (void)state;
    struct ps_error err;
    ps_error_clear(&err);
    char *pcf = NULL;
    ps_err_t rc = ps_fingerprint_canonical(hand_input, &pcf, &err);
    if (rc != PS_OK) {
        fail_msg("%s", err.msg);
    }
    assert_string_equal(pcf, hand_canonical);

    /* The canonical form is a fixed point, and the fingerprint is that of
     * its bytes. */
    char *again = NULL;
    assert_int_equal(ps_fingerprint_canonical(pcf, &again, &err), PS_OK);
    assert_string_equal(again, pcf);
    uint64_t fp_input = 0;
    uint64_t fp_pcf = 0;
    assert_int_equal(ps_fingerprint_schema(hand_input, &fp_input, &err), PS_OK);
    assert_int_equal(ps_fingerprint_schema(pcf, &fp_pcf, &err), PS_OK);
    assert_true(fp_input == fp_pcf);
    assert_true(fp_input == ps_fingerprint_crc64(hand_canonical, strlen(hand_canonical)));
    free(again);
    free(pcf);
}

/* The example in docs/WIRE-FORMAT.md: if this changes, the document is wrong. */
static void test_wire_format_doc_example(void **state)
{
    (void)state;
    const char *input = "{\"type\": \"record\", \"name\": \"Ping\", \"namespace\": \"demo\",\n"
                        " \"doc\": \"a tiny example\",\n"
                        " \"fields\": [{\"name\": \"nhs_number\", \"type\": \"string\",\n"
                        "             \"confluent:tags\": [\"NHS_NUMBER\", \"PII\"]},\n"
                        "            {\"name\": \"at\", \"type\": {\"type\": \"long\",\n"
                        "             \"logicalType\": \"timestamp-millis\"}}]}";
    char *pcf = NULL;
    uint64_t fp = 0;
    assert_int_equal(ps_fingerprint_canonical(input, &pcf, NULL), PS_OK);
    assert_string_equal(pcf, "{\"name\":\"demo.Ping\",\"type\":\"record\",\"fields\":["
                             "{\"name\":\"nhs_number\",\"type\":\"string\"},"
                             "{\"name\":\"at\",\"type\":\"long\"}]}");
    assert_int_equal(ps_fingerprint_schema(input, &fp, NULL), PS_OK);
    assert_true(fp == UINT64_C(0x3e07bca1db8879a4));
    free(pcf);
}

static const char *const allowed_keys[] = {"name", "type", "fields", "symbols", "items",
                                           "values", "size", NULL};
static const char *const key_order[] = {"name", "type", "fields", "symbols", "items",
                                        "values", "size", NULL};

static int key_rank(const char *key)
{
    for (int i = 0; key_order[i]; i++) {
        if (strcmp(key, key_order[i]) == 0) {
            return i;
        }
    }
    return -1;
}

/* Every object in a canonical form holds only the spec's keys. Ordering is
 * checked on the text, since a parsed object forgets it. */
static void check_keys(const json_t *node)
{
    if (json_is_object(node)) {
        const char *key;
        const json_t *value;
        json_object_foreach((json_t *)node, key, value)
        {
            int allowed = 0;
            for (int i = 0; allowed_keys[i]; i++) {
                allowed |= strcmp(key, allowed_keys[i]) == 0;
            }
            if (!allowed) {
                fail_msg("canonical form keeps attribute '%s'", key);
            }
            check_keys(value);
        }
    } else if (json_is_array(node)) {
        size_t i;
        const json_t *value;
        json_array_foreach((json_t *)node, i, value)
        {
            check_keys(value);
        }
    }
}

static void check_key_order(const char *pcf)
{
    /* The canonical form has no whitespace and its strings are names, so
     * each "<key>": follows a '{' or ',' and keys of one object appear in
     * rank order before a nested '{' resets the rank. */
    int rank[512];
    int depth = 0;
    rank[0] = -1;
    for (const char *p = pcf; *p; p++) {
        if (*p == '{') {
            assert_true(depth < 511);
            rank[++depth] = -1;
        } else if (*p == '}') {
            depth--;
        } else if (*p == '"' && (p[-1] == '{' || p[-1] == ',')) {
            const char *end = strchr(p + 1, '"');
            assert_non_null(end);
            if (end[1] == ':') {
                char key[16] = {0};
                size_t n = (size_t)(end - p - 1);
                assert_true(n < sizeof(key));
                memcpy(key, p + 1, n);
                int r = key_rank(key);
                assert_true(r > rank[depth]);
                rank[depth] = r;
            }
            p = end;
        }
    }
}

static char *read_file(const char *rel)
{
    const char *dir = getenv("PS_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir ? dir : ".", rel);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fail_msg("cannot open %s", path);
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)size + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)size, f), (size_t)size);
    text[size] = '\0';
    fclose(f);
    return text;
}

static void check_reference_schema(const char *rel, const char *fullname)
{
    char *text = read_file(rel);
    struct ps_error err;
    ps_error_clear(&err);
    char *pcf = NULL;
    char *pcf2 = NULL;
    char *pcf_of_pcf = NULL;
    ps_err_t rc = ps_fingerprint_canonical(text, &pcf, &err);
    if (rc != PS_OK) {
        fail_msg("%s: %s", rel, err.msg);
    }
    assert_int_equal(ps_fingerprint_canonical(text, &pcf2, &err), PS_OK);
    assert_string_equal(pcf, pcf2);
    assert_int_equal(ps_fingerprint_canonical(pcf, &pcf_of_pcf, &err), PS_OK);
    assert_string_equal(pcf, pcf_of_pcf);

    assert_null(strpbrk(pcf, " \t\r\n"));
    assert_null(strstr(pcf, "confluent:"));
    assert_null(strstr(pcf, "pseudostream:"));
    assert_null(strstr(pcf, "logicalType"));
    json_error_t jerr;
    json_t *root = json_loads(pcf, 0, &jerr);
    assert_non_null(root);
    check_keys(root);
    assert_string_equal(json_string_value(json_object_get(root, "name")), fullname);
    json_decref(root);
    check_key_order(pcf);

    uint64_t fp1 = 0;
    uint64_t fp2 = 0;
    assert_int_equal(ps_fingerprint_schema(text, &fp1, &err), PS_OK);
    assert_int_equal(ps_fingerprint_schema(pcf, &fp2, &err), PS_OK);
    assert_true(fp1 == fp2);
    assert_true(fp1 == ps_fingerprint_crc64(pcf, strlen(pcf)));

    free(pcf_of_pcf);
    free(pcf2);
    free(pcf);
    free(text);
}

static void test_reference_schemas(void **state)
{
    (void)state;
    check_reference_schema("schemas/hl7v2/hl7v2_event.avsc",
                           "uk.nhs.pseudostream.hl7v2.Hl7v2Event");
    check_reference_schema("schemas/fhir/fhir_event.avsc", "uk.nhs.pseudostream.fhir.FhirEvent");
}

static void test_tags_do_not_change_the_fingerprint(void **state)
{
    (void)state;
    const char *bare = "{\"type\":\"record\",\"name\":\"R\",\"fields\":"
                       "[{\"name\":\"n\",\"type\":\"string\"}]}";
    const char *tagged = "{\"type\":\"record\",\"name\":\"R\",\"fields\":"
                         "[{\"name\":\"n\",\"type\":\"string\","
                         "\"confluent:tags\":[\"NHS_NUMBER\",\"PII\"]}]}";
    const char *renamed = "{\"type\":\"record\",\"name\":\"R\",\"fields\":"
                          "[{\"name\":\"m\",\"type\":\"string\"}]}";
    uint64_t a = 0;
    uint64_t b = 0;
    uint64_t c = 0;
    assert_int_equal(ps_fingerprint_schema(bare, &a, NULL), PS_OK);
    assert_int_equal(ps_fingerprint_schema(tagged, &b, NULL), PS_OK);
    assert_int_equal(ps_fingerprint_schema(renamed, &c, NULL), PS_OK);
    assert_true(a == b);
    assert_true(a != c);
}

static void expect_schema_error(const char *input, const char *fragment)
{
    struct ps_error err;
    ps_error_clear(&err);
    char *pcf = (char *)"untouched";
    ps_err_t rc = ps_fingerprint_canonical(input, &pcf, &err);
    if (rc != PS_ERR_SCHEMA) {
        fail_msg("accepted %s (rc %d)", input, rc);
    }
    assert_string_equal(pcf, "untouched");
    assert_int_equal(err.code, PS_ERR_SCHEMA);
    if (!strstr(err.msg, fragment)) {
        fail_msg("message '%s' lacks '%s'", err.msg, fragment);
    }
    uint64_t fp = 42;
    assert_int_equal(ps_fingerprint_schema(input, &fp, NULL), PS_ERR_SCHEMA);
    assert_true(fp == 42);
}

static void test_invalid_schemas(void **state)
{
    (void)state;
    expect_schema_error("{\"type\":", "not valid JSON");
    expect_schema_error("", "not valid JSON");
    expect_schema_error("\"nosuch\"", "unknown type 'nosuch'");
    expect_schema_error("42", "JSON string, object or array");
    expect_schema_error("{\"name\":\"x\"}", "no \"type\"");
    expect_schema_error("{\"type\":{\"type\":\"int\"}}", "no \"type\"");
    expect_schema_error("{\"type\":\"record\",\"fields\":[]}", "no \"name\"");
    expect_schema_error("{\"type\":\"record\",\"name\":\"r\"}", "no \"fields\"");
    expect_schema_error("{\"type\":\"record\",\"name\":\"r\",\"fields\":[{\"name\":\"a\"}]}",
                        "field 'a' has no \"type\"");
    expect_schema_error("{\"type\":\"record\",\"name\":\"r\",\"fields\":[{\"type\":\"int\"}]}",
                        "field 0 has no valid \"name\"");
    expect_schema_error("{\"type\":\"record\",\"name\":\"r\",\"fields\":["
                        "{\"name\":\"a\",\"type\":\"int\"},{\"name\":\"a\",\"type\":\"int\"}]}",
                        "appears twice");
    expect_schema_error("{\"type\":\"record\",\"name\":\"int\",\"fields\":[]}",
                        "may not be named");
    expect_schema_error("{\"type\":\"record\",\"name\":\"1r\",\"fields\":[]}", "not a valid");
    expect_schema_error("{\"type\":\"record\",\"name\":\"r\",\"namespace\":\"a..b\",\"fields\":[]}",
                        "invalid \"namespace\"");
    /* Defined twice, and a short-name reference looked up in the wrong
     * namespace: both are invalid Avro. */
    expect_schema_error("[{\"type\":\"fixed\",\"name\":\"f\",\"size\":1},"
                        "{\"type\":\"fixed\",\"name\":\"f\",\"size\":2}]",
                        "defined twice");
    expect_schema_error("{\"type\":\"record\",\"name\":\"r\",\"namespace\":\"n\",\"fields\":["
                        "{\"name\":\"a\",\"type\":{\"type\":\"enum\",\"name\":\"E\","
                        "\"namespace\":\"o\",\"symbols\":[\"X\"]}},"
                        "{\"name\":\"b\",\"type\":\"E\"}]}",
                        "unknown type 'n.E'");
    expect_schema_error("{\"type\":\"enum\",\"name\":\"e\",\"symbols\":[\"A\",\"A\"]}",
                        "appears twice");
    expect_schema_error("{\"type\":\"enum\",\"name\":\"e\",\"symbols\":[\"a-b\"]}",
                        "not a valid name");
    expect_schema_error("{\"type\":\"enum\",\"name\":\"e\"}", "no \"symbols\"");
    expect_schema_error("{\"type\":\"fixed\",\"name\":\"f\",\"size\":-1}", "valid \"size\"");
    expect_schema_error("{\"type\":\"fixed\",\"name\":\"f\",\"size\":\"1x\"}", "valid \"size\"");
    expect_schema_error("{\"type\":\"fixed\",\"name\":\"f\",\"size\":2147483649}",
                        "valid \"size\"");
    expect_schema_error("{\"type\":\"fixed\",\"name\":\"f\"}", "valid \"size\"");
    expect_schema_error("{\"type\":\"array\"}", "no \"items\"");
    expect_schema_error("{\"type\":\"map\"}", "no \"values\"");
    expect_schema_error("[\"null\",[\"int\"]]", "itself a union");
    /* Two "type" keys: which one a reader would honour is anybody's guess. */
    expect_schema_error("{\"type\":\"int\",\"type\":\"string\"}", "not valid JSON");
    /* The context of a nested failure travels up with it. */
    expect_schema_error("{\"type\":\"record\",\"name\":\"r\",\"fields\":["
                        "{\"name\":\"a\",\"type\":\"Missing\"}]}",
                        "record 'r': field 'a': unknown type 'Missing'");
}

static void test_deep_nesting_is_refused(void **state)
{
    (void)state;
    /* 300 nested arrays of int: valid Avro, but past the walk's cap. */
    size_t depth = 300;
    const char *open = "{\"type\":\"array\",\"items\":";
    size_t len = depth * (strlen(open) + 1) + 8;
    char *text = malloc(len);
    assert_non_null(text);
    text[0] = '\0';
    for (size_t i = 0; i < depth; i++) {
        strcat(text, open);
    }
    strcat(text, "\"int\"");
    for (size_t i = 0; i < depth; i++) {
        strcat(text, "}");
    }
    struct ps_error err;
    char *pcf = NULL;
    assert_int_equal(ps_fingerprint_canonical(text, &pcf, &err), PS_ERR_SCHEMA);
    assert_null(pcf);
    assert_non_null(strstr(err.msg, "deeper"));
    free(text);
}

static void test_invalid_arguments(void **state)
{
    (void)state;
    char *pcf = NULL;
    uint64_t fp = 0;
    struct ps_error err;
    assert_int_equal(ps_fingerprint_canonical(NULL, &pcf, &err), PS_ERR_INVALID);
    assert_int_equal(ps_fingerprint_canonical("\"int\"", NULL, &err), PS_ERR_INVALID);
    assert_int_equal(ps_fingerprint_schema(NULL, &fp, &err), PS_ERR_INVALID);
    assert_int_equal(ps_fingerprint_schema("\"int\"", NULL, &err), PS_ERR_INVALID);
    assert_null(pcf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc64_empty_is_the_seed),
        cmocka_unit_test(test_avro_project_vectors),
        cmocka_unit_test(test_hand_worked_record),
        cmocka_unit_test(test_wire_format_doc_example),
        cmocka_unit_test(test_reference_schemas),
        cmocka_unit_test(test_tags_do_not_change_the_fingerprint),
        cmocka_unit_test(test_invalid_schemas),
        cmocka_unit_test(test_deep_nesting_is_refused),
        cmocka_unit_test(test_invalid_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
