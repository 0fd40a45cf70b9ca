/*
 * ps_schema: the reference schemas load into the expected node tree, and the
 * schemas that would make decoding unsafe or policies ambiguous are refused
 * with a message naming the place.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ps_schema.h"
#include "ps_tag.h"

#define HL7_SCHEMA "schemas/hl7v2/hl7v2_event.avsc"
#define FHIR_SCHEMA "schemas/fhir/fhir_event.avsc"

static struct ps_schema *load_file(const char *path)
{
    struct ps_schema *schema = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    ps_err_t rc = ps_schema_load_file(path, NULL, &schema, &err);
    if (rc != PS_OK) {
        print_error("%s: %s\n", path, err.msg);
    }
    assert_int_equal(rc, PS_OK);
    return schema;
}

static const struct ps_schema_node *node_at(const struct ps_schema *schema, const char *path)
{
    int i = ps_schema_find(schema, path);
    if (i < 0) {
        print_error("no node %s\n", path);
    }
    assert_true(i >= 0);
    return ps_schema_node(schema, i);
}

/* Every node's links agree with each other. */
static void check_tree(const struct ps_schema *schema)
{
    size_t n = ps_schema_node_count(schema);
    const struct ps_schema_node *root = ps_schema_node(schema, 0);
    assert_int_equal(root->parent, -1);
    assert_int_equal(root->depth, 0);
    assert_string_equal(root->path, "");
    for (size_t i = 0; i < n; i++) {
        const struct ps_schema_node *node = ps_schema_node(schema, (int)i);
        int count = 0;
        for (int c = node->first_child; c >= 0; c = ps_schema_node(schema, c)->next_sibling) {
            assert_int_equal(ps_schema_node(schema, c)->parent, (int)i);
            assert_int_equal(ps_schema_node(schema, c)->depth, node->depth + 1);
            assert_true(c > (int)i);
            count++;
        }
        assert_int_equal(count, node->child_count);
        assert_int_equal(ps_schema_find(schema, node->path), (int)i);
    }
    assert_null(ps_schema_node(schema, (int)n));
    assert_null(ps_schema_node(schema, -1));
}

static void test_hl7v2_loads(void **state)
{
    (void)state;
    struct ps_schema *schema = load_file(HL7_SCHEMA);
    check_tree(schema);
    assert_string_equal(ps_schema_name(schema), "uk.nhs.pseudostream.hl7v2.Hl7v2Event");
    assert_string_equal(ps_schema_origin(schema), HL7_SCHEMA);
    assert_string_equal(ps_schema_attribute(schema, "pseudostream:event_time"),
                        "msh.event_time");
    assert_string_equal(ps_schema_attribute(schema, "pseudostream:subject"), "pid.nhs_number");
    assert_null(ps_schema_attribute(schema, "pseudostream:absent"));
    assert_null(ps_schema_attribute(schema, "fields"));
    assert_true(ps_schema_fingerprint(schema) != 0);
    assert_non_null(strstr(ps_schema_json(schema), "confluent:tags"));

    const struct ps_schema_node *n = node_at(schema, "msh.event_time");
    assert_int_equal(n->type, PS_TYPE_LONG);
    assert_int_equal(n->logical, PS_LOGICAL_TIMESTAMP_MILLIS);
    assert_int_equal(n->nullable, 0);
    assert_int_equal(n->tags, PS_TAG_BIT(PS_TAG_EVENT_DATE));
    assert_int_equal(n->depth, 2);

    n = node_at(schema, "pid.nhs_number");
    assert_int_equal(n->type, PS_TYPE_STRING);
    assert_int_equal(n->nullable, 1);
    assert_int_equal(n->tags, PS_TAG_BIT(PS_TAG_NHS_NUMBER) | PS_TAG_BIT(PS_TAG_PII));

    n = node_at(schema, "pid.name");
    assert_int_equal(n->type, PS_TYPE_ARRAY);
    assert_int_equal(n->child_count, 1);
    assert_int_equal(n->tags, PS_TAG_BIT(PS_TAG_PERSON_NAME) | PS_TAG_BIT(PS_TAG_PII));
    n = node_at(schema, "pid.name[]");
    assert_string_equal(n->name, "[]");
    assert_int_equal(n->type, PS_TYPE_RECORD);
    assert_int_equal(n->child_count, 4);
    assert_int_equal(n->tags, 0);
    n = node_at(schema, "pid.name[].family");
    assert_string_equal(n->name, "family");
    assert_int_equal(n->type, PS_TYPE_STRING);
    assert_int_equal(n->depth, 4);
    assert_int_equal(n->tags, PS_TAG_BIT(PS_TAG_PERSON_NAME) | PS_TAG_BIT(PS_TAG_PII));
    n = node_at(schema, "pid.name[].given[]");
    assert_int_equal(n->type, PS_TYPE_STRING);
    assert_int_equal(n->child_count, 0);

    n = node_at(schema, "pid.date_of_birth");
    assert_int_equal(n->type, PS_TYPE_INT);
    assert_int_equal(n->logical, PS_LOGICAL_DATE);
    assert_int_equal(n->nullable, 1);
    n = node_at(schema, "pid.death_indicator");
    assert_int_equal(n->type, PS_TYPE_BOOLEAN);
    n = node_at(schema, "pd1");
    assert_int_equal(n->type, PS_TYPE_RECORD);
    assert_int_equal(n->nullable, 1);
    n = node_at(schema, "pd1.gp_practice");
    assert_int_equal(n->tags, PS_TAG_BIT(PS_TAG_GP_PRACTICE));
    n = node_at(schema, "obx[].numeric_value");
    assert_int_equal(n->type, PS_TYPE_DOUBLE);
    assert_int_equal(n->nullable, 1);
    n = node_at(schema, "pid.address[].postcode");
    assert_int_equal(n->tags, PS_TAG_BIT(PS_TAG_POSTCODE) | PS_TAG_BIT(PS_TAG_PII));
    assert_int_equal(ps_schema_find(schema, "pid.nope"), -1);
    ps_schema_destroy(schema);
}

static void test_fhir_loads(void **state)
{
    (void)state;
    struct ps_schema *schema = load_file(FHIR_SCHEMA);
    check_tree(schema);
    assert_string_equal(ps_schema_name(schema), "uk.nhs.pseudostream.fhir.FhirEvent");
    assert_string_equal(ps_schema_attribute(schema, "pseudostream:event_time"), "lastUpdated");
    const struct ps_schema_node *n = node_at(schema, "lastUpdated");
    assert_int_equal(n->logical, PS_LOGICAL_TIMESTAMP_MILLIS);
    assert_int_equal(n->depth, 1);
    n = node_at(schema, "patient.address[].postalCode");
    assert_int_equal(n->tags, PS_TAG_BIT(PS_TAG_POSTCODE) | PS_TAG_BIT(PS_TAG_PII));
    n = node_at(schema, "patient.name[].prefix[]");
    assert_int_equal(n->type, PS_TYPE_STRING);
    n = node_at(schema, "observation.effectiveDateTime");
    assert_int_equal(n->logical, PS_LOGICAL_TIMESTAMP_MILLIS);
    assert_int_equal(n->nullable, 1);
    n = node_at(schema, "observation.note");
    assert_int_equal(n->tags, PS_TAG_BIT(PS_TAG_FREE_TEXT));
    n = node_at(schema, "encounter");
    assert_int_equal(n->nullable, 1);
    assert_int_equal(n->child_count, 8);
    ps_schema_destroy(schema);
}

static void test_named_type_reuse(void **state)
{
    (void)state;
    const char *json =
        "{\"type\":\"record\",\"name\":\"E\",\"namespace\":\"a.b\",\"fields\":["
        "{\"name\":\"home\",\"type\":{\"type\":\"record\",\"name\":\"Addr\",\"fields\":["
        "{\"name\":\"line\",\"type\":\"string\",\"confluent:tags\":[\"ADDRESS\"]}]}},"
        "{\"name\":\"work\",\"type\":[\"null\",\"Addr\"]},"
        "{\"name\":\"old\",\"type\":{\"type\":\"array\",\"items\":\"a.b.Addr\"}},"
        "{\"name\":\"kind\",\"type\":{\"type\":\"enum\",\"name\":\"K\",\"symbols\":[\"X\"]}},"
        "{\"name\":\"k2\",\"type\":\"K\"},"
        "{\"name\":\"either\",\"type\":[\"string\",\"int\"]},"
        "{\"name\":\"tail\",\"type\":[\"long\",\"null\"]},"
        "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"int\"}}]}";
    struct ps_schema *schema = NULL;
    struct ps_error err;
    assert_int_equal(ps_schema_load_json(json, "reuse", NULL, &schema, &err), PS_OK);
    check_tree(schema);
    assert_string_equal(ps_schema_name(schema), "a.b.E");
    assert_int_equal(node_at(schema, "work")->nullable, 1);
    assert_int_equal(node_at(schema, "work.line")->tags, PS_TAG_BIT(PS_TAG_ADDRESS));
    assert_int_equal(node_at(schema, "old[].line")->type, PS_TYPE_STRING);
    assert_int_equal(node_at(schema, "k2")->type, PS_TYPE_ENUM);
    assert_int_equal(node_at(schema, "either")->type, PS_TYPE_UNION);
    assert_int_equal(node_at(schema, "either")->child_count, 0);
    assert_int_equal(node_at(schema, "tail")->nullable, 1);
    assert_int_equal(node_at(schema, "tail")->type, PS_TYPE_LONG);
    assert_int_equal(node_at(schema, "m{}")->type, PS_TYPE_INT);
    assert_int_equal(node_at(schema, "m")->type, PS_TYPE_MAP);
    ps_schema_destroy(schema);
}

static void expect_refused(const char *json, ps_err_t code, const char *needle,
                           const char *needle2)
{
    struct ps_schema *schema = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    ps_err_t rc = ps_schema_load_json(json, "test.avsc", NULL, &schema, &err);
    assert_int_equal(rc, code);
    assert_null(schema);
    char line[1024];
    ps_error_format(&err, line, sizeof(line));
    if (!strstr(line, needle) || (needle2 && !strstr(line, needle2))) {
        print_error("message: %s\n", line);
    }
    assert_non_null(strstr(line, needle));
    if (needle2) {
        assert_non_null(strstr(line, needle2));
    }
}

static void test_refuses_recursion(void **state)
{
    (void)state;
    expect_refused("{\"type\":\"record\",\"name\":\"N\",\"fields\":["
                   "{\"name\":\"v\",\"type\":\"int\"},"
                   "{\"name\":\"next\",\"type\":[\"null\",\"N\"]}]}",
                   PS_ERR_SCHEMA, "recursive", "'next'");
    /* Recursion hidden in an opaque union and through a second type. */
    expect_refused("{\"type\":\"record\",\"name\":\"A\",\"fields\":["
                   "{\"name\":\"b\",\"type\":{\"type\":\"record\",\"name\":\"B\",\"fields\":["
                   "{\"name\":\"a\",\"type\":[\"int\",\"string\",\"A\"]}]}}]}",
                   PS_ERR_SCHEMA, "recursive", "test.avsc");
}

static void test_refuses_depth(void **state)
{
    (void)state;
    char json[8192];
    size_t n = 0;
    for (int i = 0; i < 40; i++) {
        n += (size_t)snprintf(json + n, sizeof(json) - n,
                              "{\"type\":\"record\",\"name\":\"R%d\",\"fields\":[{\"name\":\"f\","
                              "\"type\":", i);
    }
    n += (size_t)snprintf(json + n, sizeof(json) - n, "\"int\"");
    for (int i = 0; i < 40; i++) {
        n += (size_t)snprintf(json + n, sizeof(json) - n, "}]}");
    }
    expect_refused(json, PS_ERR_SCHEMA, "deeper than the limit (32)", NULL);

    struct ps_schema *schema = NULL;
    struct ps_schema_limits limits = {.max_depth = 64};
    assert_int_equal(ps_schema_load_json(json, "deep", &limits, &schema, NULL), PS_OK);
    ps_schema_destroy(schema);
}

static void test_refuses_zero_size_items(void **state)
{
    (void)state;
    expect_refused("{\"type\":\"record\",\"name\":\"T\",\"fields\":["
                   "{\"name\":\"n\",\"type\":{\"type\":\"array\",\"items\":\"null\"}}]}",
                   PS_ERR_SCHEMA, "zero bytes", "'n'");
    expect_refused("{\"type\":\"record\",\"name\":\"T\",\"fields\":["
                   "{\"name\":\"e\",\"type\":{\"type\":\"array\",\"items\":"
                   "{\"type\":\"record\",\"name\":\"Empty\",\"fields\":[]}}}]}",
                   PS_ERR_SCHEMA, "zero bytes", "'e'");
    expect_refused("{\"type\":\"record\",\"name\":\"T\",\"fields\":["
                   "{\"name\":\"z\",\"type\":{\"type\":\"map\",\"values\":"
                   "{\"type\":\"fixed\",\"name\":\"F0\",\"size\":0}}}]}",
                   PS_ERR_SCHEMA, "zero bytes", "'z'");
    expect_refused("{\"type\":\"record\",\"name\":\"T\",\"fields\":["
                   "{\"name\":\"u\",\"type\":[\"int\",{\"type\":\"array\",\"items\":"
                   "{\"type\":\"record\",\"name\":\"N\",\"fields\":[{\"name\":\"x\","
                   "\"type\":\"null\"}]}}]}]}",
                   PS_ERR_SCHEMA, "zero bytes", "'u'");
}

static void test_refuses_unknown_tag(void **state)
{
    (void)state;
    expect_refused("{\"type\":\"record\",\"name\":\"T\",\"fields\":["
                   "{\"name\":\"p\",\"type\":{\"type\":\"record\",\"name\":\"P\",\"fields\":["
                   "{\"name\":\"nhs\",\"type\":\"string\",\"confluent:tags\":[\"PII\","
                   "\"NHS_NUMBR\"]}]}}]}",
                   PS_ERR_SCHEMA, "test.avsc: field 'p.nhs': tag 2 is not in the vocabulary",
                   "NHS_NUMBER,LOCAL_ID,PERSON_NAME");
    expect_refused("{\"type\":\"record\",\"name\":\"T\",\"fields\":["
                   "{\"name\":\"s\",\"type\":\"string\",\"confluent:tags\":\"PII\"}]}",
                   PS_ERR_SCHEMA, "'s'", "must be an array");
}

static void test_refuses_bad_json(void **state)
{
    (void)state;
    struct ps_schema *schema = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    ps_err_t rc = ps_schema_load_json("{\"type\": \"record\",\n \"name\": }", "bad.avsc", NULL,
                                      &schema, &err);
    assert_int_equal(rc, PS_ERR_SCHEMA);
    assert_string_equal(err.file, "bad.avsc");
    assert_int_equal(err.line, 2);
    assert_true(err.col > 0);
    assert_non_null(strstr(err.msg, "invalid JSON"));

    expect_refused("[\"null\", \"int\"]", PS_ERR_SCHEMA, "must be a record", NULL);
    expect_refused("{\"type\":\"record\",\"name\":\"T\",\"fields\":["
                   "{\"name\":\"x\",\"type\":\"Nowhere\"}]}",
                   PS_ERR_SCHEMA, "unknown type", "'x'");
    expect_refused("{\"type\":\"record\",\"name\":\"T\",\"fields\":["
                   "{\"name\":\"x\",\"type\":\"strng\"}]}",
                   PS_ERR_SCHEMA, "'x'", NULL);

    ps_error_clear(&err);
    rc = ps_schema_load_file("schemas/does/not/exist.avsc", NULL, &schema, &err);
    assert_int_equal(rc, PS_ERR_IO);
    assert_string_equal(err.file, "schemas/does/not/exist.avsc");
    ps_schema_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hl7v2_loads),
        cmocka_unit_test(test_fhir_loads),
        cmocka_unit_test(test_named_type_reuse),
        cmocka_unit_test(test_refuses_recursion),
        cmocka_unit_test(test_refuses_depth),
        cmocka_unit_test(test_refuses_zero_size_items),
        cmocka_unit_test(test_refuses_unknown_tag),
        cmocka_unit_test(test_refuses_bad_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
