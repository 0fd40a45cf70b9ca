/*
 * ps_plan and ps_policy: how a destination's rules resolve per field (the
 * order documented in ps_plan.h), the derived schema, and the refusals made
 * at load. Policies are written to a temporary directory at test time so each
 * test shows its whole policy; expected lines are found in that text, so a
 * refusal is checked for the exact line it names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ps_plan.h"
#include "ps_policy.h"
#include "ps_policy_doc.h"
#include "ps_schema.h"
#include "ps_tag.h"

#define HL7_SCHEMA "schemas/hl7v2/hl7v2_event.avsc"
#define FHIR_SCHEMA "schemas/fhir/fhir_event.avsc"

static char tmpdir[64];
static int file_counter;
static struct ps_schema *hl7;
static struct ps_schema *fhir;

/* A secondary-use destination; %s is its common-law basis, then its rules. */
static const char planning_head[] =
    "version: 1\n"
    "destinations:\n"
    "  - name: plan-a\n"
    "    topic: plan.a\n"
    "    purpose: planning\n"
    "    legal_basis:\n"
    "      article6: legal_obligation\n"
    "      article9: health_social_care\n"
    "      common_law: %s\n"
    "    pseudonym_domain: plan-a\n"
    "    default: drop\n"
    "    rules:\n";

/* A direct-care destination that keeps by default. */
static const char care_head[] =
    "version: 1\n"
    "destinations:\n"
    "  - name: ward\n"
    "    topic: ward.events\n"
    "    purpose: direct_care\n"
    "    legal_basis:\n"
    "      article6: public_task\n"
    "      article9: health_social_care\n"
    "      common_law: implied_consent\n"
    "    pseudonym_domain: ward\n"
    "    default: keep\n"
    "    rules:\n";

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/ps_test_plan_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        return -1;
    }
    struct ps_error err;
    ps_error_clear(&err);
    if (ps_schema_load_file(HL7_SCHEMA, NULL, &hl7, &err) != PS_OK ||
        ps_schema_load_file(FHIR_SCHEMA, NULL, &fhir, &err) != PS_OK) {
        fprintf(stderr, "schema: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ps_schema_destroy(hl7);
    ps_schema_destroy(fhir);
    for (int i = 0; i < file_counter; i++) {
        char path[128];
        snprintf(path, sizeof(path), "%s/policy%d.yaml", tmpdir, i);
        unlink(path);
    }
    rmdir(tmpdir);
    return 0;
}

/* Writes text to a new file in the temp dir; returns its path (static). */
static const char *write_policy(const char *text)
{
    static char path[128];
    snprintf(path, sizeof(path), "%s/policy%d.yaml", tmpdir, file_counter++);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    return path;
}

static struct ps_policy_doc *load_text(const char *text)
{
    const char *path = write_policy(text);
    struct ps_policy_doc *doc = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    if (ps_policy_doc_load(path, &doc, &err) != PS_OK) {
        fail_msg("policy does not load: %s:%d: %s\n%s", err.file, err.line, err.msg, text);
    }
    return doc;
}

static struct ps_policy_doc *load_head(const char *head, const char *basis, const char *rules,
                                       char *text, size_t size)
{
    char h[1024];
    snprintf(h, sizeof(h), head, basis);
    snprintf(text, size, "%s%s", h, rules);
    return load_text(text);
}

/* 1-based line of the first line of text that contains needle. */
static int line_of(const char *text, const char *needle)
{
    const char *hit = strstr(text, needle);
    assert_non_null(hit);
    int line = 1;
    for (const char *p = text; p < hit; p++) {
        line += *p == '\n';
    }
    return line;
}

static struct ps_plan *compile_ok(const struct ps_policy_doc *doc, size_t d,
                                  const struct ps_schema *schema)
{
    struct ps_plan *plan = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    if (ps_plan_compile(doc, &doc->destinations[d], schema, &plan, &err) != PS_OK) {
        char line[1024];
        ps_error_format(&err, line, sizeof(line));
        fail_msg("compile: %s", line);
    }
    assert_non_null(plan);
    assert_ptr_equal(plan->schema, schema);
    assert_ptr_equal(plan->dst, &doc->destinations[d]);
    return plan;
}

static const struct ps_plan_node *node_of(const struct ps_plan *plan, const char *path)
{
    int i = ps_schema_find(plan->schema, path);
    if (i < 0) {
        fail_msg("no field '%s' in the input schema", path);
    }
    return &plan->nodes[i];
}

static enum ps_action action_of(const struct ps_plan *plan, const char *path)
{
    return node_of(plan, path)->action;
}

static const struct ps_schema *derived(const struct ps_plan *plan)
{
    const struct ps_schema *out = ps_projection_schema(plan->projection);
    assert_non_null(out);
    return out;
}

static const struct ps_schema_node *derived_node(const struct ps_plan *plan, const char *path)
{
    int i = ps_schema_find(derived(plan), path);
    if (i < 0) {
        fail_msg("no field '%s' in the derived schema", path);
    }
    return ps_schema_node(derived(plan), i);
}

static void expect_absent(const struct ps_plan *plan, const char *path)
{
    if (ps_schema_find(derived(plan), path) != -1) {
        fail_msg("'%s' should not exist in the derived schema", path);
    }
}

/* The message starts with want: the place and the reason; a fix hint added
 * at its end does not break the test. */
static void assert_msg_starts(const char *msg, const char *want)
{
    if (strncmp(msg, want, strlen(want)) != 0) {
        fail_msg("message\n  '%s'\ndoes not start with\n  '%s'", msg, want);
    }
}

/* ---- rule resolution ---- */

static void test_path_rule_beats_tag_rule(void **state)
{
    (void)state;
    char text[2048];
    struct ps_policy_doc *doc = load_head(planning_head, "s251_support",
                                          "      - tag: BIRTH_DATE\n"
                                          "        action: generalise\n"
                                          "        to: year\n"
                                          "      - path: pid.date_of_birth\n"
                                          "        action: drop\n"
                                          "      - tag: SEX\n"
                                          "        action: drop\n"
                                          "      - path: pid.sex\n"
                                          "        action: keep\n",
                                          text, sizeof(text));
    struct ps_plan *plan = compile_ok(doc, 0, hl7);
    const struct ps_plan_node *dob = node_of(plan, "pid.date_of_birth");
    assert_int_equal(dob->action, PS_ACTION_DROP);
    assert_non_null(dob->rule);
    assert_string_equal(dob->rule->path, "pid.date_of_birth");
    assert_int_equal(dob->inherited, 0);
    expect_absent(plan, "pid.date_of_birth");
    const struct ps_plan_node *sex = node_of(plan, "pid.sex");
    assert_int_equal(sex->action, PS_ACTION_KEEP);
    assert_string_equal(sex->rule->path, "pid.sex");
    assert_int_equal(derived_node(plan, "pid.sex")->type, PS_TYPE_STRING);
    /* The tag rule still applies where no path rule names the field. */
    assert_int_equal(action_of(plan, "pid.date_of_death"), PS_ACTION_DROP);
    ps_plan_destroy(plan);
    ps_policy_doc_destroy(doc);
}

static void test_specific_tag_beats_pii(void **state)
{
    (void)state;
    char text[2048];
    /* PII first in the file, so order is not what decides. */
    struct ps_policy_doc *doc = load_head(planning_head, "s251_support",
                                          "      - tag: PII\n"
                                          "        action: drop\n"
                                          "      - tag: NHS_NUMBER\n"
                                          "        action: pseudonymise\n"
                                          "      - tag: POSTCODE\n"
                                          "        action: generalise\n"
                                          "        to: sector\n",
                                          text, sizeof(text));
    struct ps_plan *plan = compile_ok(doc, 0, hl7);
    const struct ps_plan_node *nhs = node_of(plan, "pid.nhs_number");
    assert_int_equal(nhs->action, PS_ACTION_PSEUDONYMISE);
    assert_string_equal(nhs->kind, "nhs_number");
    assert_int_equal(nhs->rule->tag, PS_TAG_NHS_NUMBER);
    const struct ps_plan_node *pc = node_of(plan, "pid.address[].postcode");
    assert_int_equal(pc->action, PS_ACTION_GENERALISE);
    assert_int_equal(pc->to, PS_GRAN_POSTCODE_SECTOR);
    /* Fields with PII and no specific rule take the PII rule. */
    const struct ps_plan_node *family = node_of(plan, "pid.name[].family");
    assert_int_equal(family->action, PS_ACTION_DROP);
    assert_int_equal(family->rule->tag, PS_TAG_PII);
    assert_int_equal(action_of(plan, "pid.telecom[].value"), PS_ACTION_DROP);
    /* The same for the merged patient's NHS number. */
    assert_int_equal(action_of(plan, "mrg.prior_nhs_number"), PS_ACTION_PSEUDONYMISE);
    assert_string_equal(node_of(plan, "mrg.prior_nhs_number")->kind, "nhs_number");

    assert_int_equal(derived_node(plan, "pid.nhs_number")->type, PS_TYPE_STRING);
    assert_int_equal(derived_node(plan, "pid.address[].postcode")->type, PS_TYPE_STRING);
    expect_absent(plan, "pid.name");
    expect_absent(plan, "pid.address[].city");
    ps_plan_destroy(plan);
    ps_policy_doc_destroy(doc);
}

/* A record whose one field carries two specific tags. */
static const char two_tags_schema[] =
    "{\"type\":\"record\",\"name\":\"Two\",\"namespace\":\"test.plan\",\"fields\":["
    "{\"name\":\"who\",\"type\":\"string\",\"confluent:tags\":[\"LOCAL_ID\",\"CLINICIAN_ID\"]},"
    "{\"name\":\"when\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"},"
    "\"confluent:tags\":[\"EVENT_DATE\"]}]}";

static void test_two_specific_tags_disagree(void **state)
{
    (void)state;
    struct ps_schema *schema = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    assert_int_equal(ps_schema_load_json(two_tags_schema, "two-tags", NULL, &schema, &err),
                     PS_OK);
    char text[2048];
    struct ps_policy_doc *doc = load_head(planning_head, "s251_support",
                                          "      - tag: LOCAL_ID\n"
                                          "        action: pseudonymise\n"
                                          "      - tag: CLINICIAN_ID\n"
                                          "        action: drop\n",
                                          text, sizeof(text));
    struct ps_plan *plan = NULL;
    ps_error_clear(&err);
    assert_int_equal(ps_plan_compile(doc, &doc->destinations[0], schema, &plan, &err),
                     PS_ERR_CONFIG);
    assert_null(plan);
    assert_int_equal(err.code, PS_ERR_CONFIG);
    assert_string_equal(err.file, doc->file);
    assert_int_equal(err.line, line_of(text, "tag: CLINICIAN_ID"));
    assert_int_equal(err.col, 9);
    assert_msg_starts(err.msg, "destination 'plan-a': field 'who' has tags LOCAL_ID and "
                               "CLINICIAN_ID whose rules disagree (add a rule with path: for "
                               "this field)");
    ps_policy_doc_destroy(doc);

    /* Two tags whose rules agree are fine; a path rule settles a conflict. */
    doc = load_head(planning_head, "s251_support",
                    "      - tag: LOCAL_ID\n"
                    "        action: drop\n"
                    "      - tag: CLINICIAN_ID\n"
                    "        action: drop\n"
                    "      - tag: EVENT_DATE\n"
                    "        action: keep\n",
                    text, sizeof(text));
    plan = compile_ok(doc, 0, schema);
    assert_int_equal(action_of(plan, "who"), PS_ACTION_DROP);
    expect_absent(plan, "who");
    assert_true(ps_schema_find(derived(plan), "when") > 0);
    ps_plan_destroy(plan);
    ps_policy_doc_destroy(doc);

    doc = load_head(planning_head, "s251_support",
                    "      - tag: LOCAL_ID\n"
                    "        action: pseudonymise\n"
                    "      - tag: CLINICIAN_ID\n"
                    "        action: drop\n"
                    "      - path: who\n"
                    "        action: pseudonymise\n",
                    text, sizeof(text));
    plan = compile_ok(doc, 0, schema);
    assert_int_equal(action_of(plan, "who"), PS_ACTION_PSEUDONYMISE);
    /* The kind comes from the first specific tag of the field. */
    assert_string_equal(node_of(plan, "who")->kind, "local_id");
    ps_plan_destroy(plan);
    ps_policy_doc_destroy(doc);
    ps_schema_destroy(schema);
}

static void test_ancestor_keep_drop_inherited(void **state)
{
    (void)state;
    char text[2048];
    /* Direct care keeping by default, dropping the next of kin by path. */
    struct ps_policy_doc *doc = load_head(care_head, "", "      - path: nk1\n"
                                                         "        action: drop\n",
                                          text, sizeof(text));
    struct ps_plan *plan = compile_ok(doc, 0, hl7);
    const struct ps_plan_node *rel = node_of(plan, "nk1[].relationship");
    assert_int_equal(rel->action, PS_ACTION_DROP);
    assert_int_equal(rel->inherited, 1);
    assert_string_equal(rel->rule->path, "nk1");
    assert_int_equal(action_of(plan, "nk1[].family"), PS_ACTION_DROP);
    assert_int_equal(action_of(plan, "nk1"), PS_ACTION_DROP);
    expect_absent(plan, "nk1");
    /* Everything else keeps the default. */
    const struct ps_plan_node *fam = node_of(plan, "pid.name[].family");
    assert_int_equal(fam->action, PS_ACTION_KEEP);
    assert_null(fam->rule);
    assert_int_equal(fam->inherited, 0);
    assert_int_equal(derived_node(plan, "pid.name[].family")->type, PS_TYPE_STRING);
    assert_true(ps_schema_find(derived(plan), "pid.telecom[].value") > 0);
    ps_plan_destroy(plan);
    ps_policy_doc_destroy(doc);

    /* Secondary use: keep a segment by path, drop its free text by tag. */
    doc = load_head(planning_head, "s251_support",
                    "      - path: obx\n"
                    "        action: keep\n"
                    "      - tag: FREE_TEXT\n"
                    "        action: drop\n",
                    text, sizeof(text));
    plan = compile_ok(doc, 0, hl7);
    const struct ps_plan_node *code = node_of(plan, "obx[].code");
    assert_int_equal(code->action, PS_ACTION_KEEP);
    assert_int_equal(code->inherited, 1);
    assert_int_equal(action_of(plan, "obx[].numeric_value"), PS_ACTION_KEEP);
    assert_int_equal(action_of(plan, "obx[].comment"), PS_ACTION_DROP);
    assert_int_equal(action_of(plan, "obx[].text_value"), PS_ACTION_DROP);
    assert_int_equal(derived_node(plan, "obx[].numeric_value")->type, PS_TYPE_DOUBLE);
    expect_absent(plan, "obx[].comment");
    expect_absent(plan, "obx[].text_value");
    expect_absent(plan, "pid"); /* nothing of the patient is named */
    expect_absent(plan, "msh");
    ps_plan_destroy(plan);
    ps_policy_doc_destroy(doc);
}

static void test_ancestor_transform_not_inherited(void **state)
{
    (void)state;
    char text[2048];
    struct ps_policy_doc *doc = load_head(care_head, "", "      - tag: ADDRESS\n"
                                                         "        action: pseudonymise\n",
                                          text, sizeof(text));
    struct ps_plan *plan = compile_ok(doc, 0, hl7);
    /* The fields carrying the tag are pseudonymised... */
    const struct ps_plan_node *city = node_of(plan, "pid.address[].city");
    assert_int_equal(city->action, PS_ACTION_PSEUDONYMISE);
    assert_string_equal(city->kind, "address");
    assert_int_equal(action_of(plan, "pid.address[].county"), PS_ACTION_PSEUDONYMISE);
    assert_int_equal(action_of(plan, "pid.address[].lines[]"), PS_ACTION_PSEUDONYMISE);
    /* ...the untagged code beside them keeps the default, and so does the
     * postcode, which carries POSTCODE, not ADDRESS. */
    const struct ps_plan_node *type = node_of(plan, "pid.address[].address_type");
    assert_int_equal(type->action, PS_ACTION_KEEP);
    assert_null(type->rule);
    assert_int_equal(type->inherited, 0);
    assert_int_equal(action_of(plan, "pid.address[].postcode"), PS_ACTION_KEEP);
    /* The structure itself is kept, not transformed. */
    assert_int_equal(action_of(plan, "pid.address"), PS_ACTION_KEEP);
    assert_int_equal(derived_node(plan, "pid.address[].address_type")->type, PS_TYPE_STRING);
    assert_int_equal(derived_node(plan, "pid.address[].city")->type, PS_TYPE_STRING);
    ps_plan_destroy(plan);
    ps_policy_doc_destroy(doc);

    /* The same under a default of drop: the code beside is dropped. */
    doc = load_head(planning_head, "s251_support",
                    "      - tag: ADDRESS\n"
                    "        action: pseudonymise\n",
                    text, sizeof(text));
    plan = compile_ok(doc, 0, hl7);
    assert_int_equal(action_of(plan, "pid.address[].city"), PS_ACTION_PSEUDONYMISE);
    assert_int_equal(action_of(plan, "pid.address[].address_type"), PS_ACTION_DROP);
    expect_absent(plan, "pid.address[].address_type");
    assert_true(ps_schema_find(derived(plan), "pid.address[].city") > 0);
    ps_plan_destroy(plan);
    ps_policy_doc_destroy(doc);
}

static void test_record_dropped_when_all_below_dropped(void **state)
{
    (void)state;
    char text[2048];
    /* nk1 is kept by path, but every field below it is dropped. */
    struct ps_policy_doc *doc = load_head(planning_head, "s251_support",
                                          "      - tag: NHS_NUMBER\n"
                                          "        action: pseudonymise\n"
                                          "      - path: nk1\n"
                                          "        action: keep\n"
                                          "      - tag: PII\n"
                                          "        action: drop\n"
                                          "      - path: nk1[].relationship\n"
                                          "        action: drop\n",
                                          text, sizeof(text));
    struct ps_plan *plan = compile_ok(doc, 0, hl7);
    assert_int_equal(action_of(plan, "nk1"), PS_ACTION_DROP);
    assert_int_equal(action_of(plan, "nk1[]"), PS_ACTION_DROP);
    assert_int_equal(ps_schema_find(derived(plan), "nk1"), -1);
    assert_int_equal(ps_schema_find(derived(plan), "nk1[].relationship"), -1);
    /* msh has no kept field at all. */
    assert_int_equal(action_of(plan, "msh"), PS_ACTION_DROP);
    assert_int_equal(ps_schema_find(derived(plan), "msh"), -1);
    assert_int_equal(ps_schema_find(derived(plan), "pv1"), -1);
    /* pid is kept for its one kept field, and has nothing else. */
    assert_int_equal(action_of(plan, "pid"), PS_ACTION_KEEP);
    const struct ps_schema_node *pid = derived_node(plan, "pid");
    assert_int_equal(pid->type, PS_TYPE_RECORD);
    assert_int_equal(pid->child_count, 1);
    assert_int_equal(derived_node(plan, "pid.nhs_number")->type, PS_TYPE_STRING);
    assert_true(derived_node(plan, "pid.nhs_number")->nullable);
    /* The root is pid (and mrg, for the prior NHS number) only. */
    const struct ps_schema_node *root = ps_schema_node(derived(plan), 0);
    assert_int_equal(root->child_count, 2);
    ps_plan_destroy(plan);
    ps_policy_doc_destroy(doc);
}

/* ---- refusals at compile time ---- */

static void expect_compile_error(const char *text, const struct ps_policy_doc *doc,
                                 const struct ps_schema *schema, const char *rule_needle,
                                 const char *want_msg)
{
    struct ps_plan *plan = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    assert_int_equal(ps_plan_compile(doc, &doc->destinations[0], schema, &plan, &err),
                     PS_ERR_CONFIG);
    assert_null(plan);
    assert_int_equal(err.code, PS_ERR_CONFIG);
    assert_string_equal(err.file, doc->file);
    assert_int_equal(err.line, line_of(text, rule_needle));
    assert_int_equal(err.col, 9);
    assert_msg_starts(err.msg, want_msg);
}

static void test_pseudonymise_needs_string(void **state)
{
    (void)state;
    char text[2048];
    struct ps_policy_doc *doc = load_head(planning_head, "s251_support",
                                          "      - tag: NHS_NUMBER\n"
                                          "        action: pseudonymise\n"
                                          "      - path: pid.date_of_birth\n"
                                          "        action: pseudonymise\n",
                                          text, sizeof(text));
    expect_compile_error(text, doc, hl7, "path: pid.date_of_birth",
                         "destination 'plan-a': pseudonymise needs a string field, "
                         "'pid.date_of_birth' is not one");
    ps_policy_doc_destroy(doc);

    /* By tag, on a timestamp. */
    doc = load_head(planning_head, "s251_support",
                    "      - tag: EVENT_DATE\n"
                    "        action: pseudonymise\n",
                    text, sizeof(text));
    expect_compile_error(text, doc, hl7, "tag: EVENT_DATE",
                         "destination 'plan-a': pseudonymise needs a string field, "
                         "'msh.event_time' is not one");
    ps_policy_doc_destroy(doc);

    /* Generalising a string that is not a date to a year is accepted (ISO
     * text), but a postcode generalisation of a timestamp is not. */
    doc = load_head(planning_head, "s251_support",
                    "      - path: msh.event_time\n"
                    "        action: generalise\n"
                    "        to: district\n",
                    text, sizeof(text));
    expect_compile_error(text, doc, hl7, "path: msh.event_time",
                         "destination 'plan-a': generalise to a postcode district or sector "
                         "needs a string field, 'msh.event_time' is not one");
    ps_policy_doc_destroy(doc);

    /* A transform on a record by path. */
    doc = load_head(planning_head, "s251_support",
                    "      - path: pid\n"
                    "        action: redact\n",
                    text, sizeof(text));
    expect_compile_error(text, doc, hl7, "path: pid",
                         "destination 'plan-a': 'pid' is a record or list: only keep or drop "
                         "apply to it");
    ps_policy_doc_destroy(doc);
}

static void test_direct_identifier_in_clear(void **state)
{
    (void)state;
    char text[2048];
    const char *rules = "      - tag: NHS_NUMBER\n"
                        "        action: pseudonymise\n"
                        "      - tag: PERSON_NAME\n"
                        "        action: keep\n";
    /* Section 251 support and explicit consent allow it. */
    struct ps_policy_doc *doc = load_head(planning_head, "s251_support", rules, text,
                                          sizeof(text));
    struct ps_plan *plan = compile_ok(doc, 0, hl7);
    assert_int_equal(action_of(plan, "pid.name[].family"), PS_ACTION_KEEP);
    assert_int_equal(derived_node(plan, "pid.name[].family")->type, PS_TYPE_STRING);
    ps_plan_destroy(plan);
    ps_policy_doc_destroy(doc);
    doc = load_head(planning_head, "explicit_consent", rules, text, sizeof(text));
    plan = compile_ok(doc, 0, hl7);
    ps_plan_destroy(plan);
    ps_policy_doc_destroy(doc);

    /* A legal obligation as the common-law basis does not. */
    doc = load_head(planning_head, "legal_obligation", rules, text, sizeof(text));
    expect_compile_error(text, doc, hl7, "tag: PERSON_NAME",
                         "destination 'plan-a': field 'pid.name[].family' (PERSON_NAME) would "
                         "leave in clear; for this purpose and legal basis pseudonymise, "
                         "generalise or drop it");
    ps_policy_doc_destroy(doc);

    /* Nor does a kept postcode, nor an identifier kept by inheritance. */
    doc = load_head(planning_head, "overriding_public_interest",
                    "      - tag: POSTCODE\n"
                    "        action: keep\n",
                    text, sizeof(text));
    expect_compile_error(text, doc, hl7, "tag: POSTCODE",
                         "destination 'plan-a': field 'pid.address[].postcode' (POSTCODE) "
                         "would leave in clear; for this purpose and legal basis pseudonymise, "
                         "generalise or drop it");
    ps_policy_doc_destroy(doc);
    doc = load_head(planning_head, "legal_obligation",
                    "      - path: nk1\n"
                    "        action: keep\n",
                    text, sizeof(text));
    expect_compile_error(text, doc, hl7, "path: nk1",
                         "destination 'plan-a': field 'nk1[].family' (PERSON_NAME) would "
                         "leave in clear; for this purpose and legal basis pseudonymise, "
                         "generalise or drop it");
    ps_policy_doc_destroy(doc);

    /* Generalised, the postcode may leave on that basis. */
    doc = load_head(planning_head, "legal_obligation",
                    "      - tag: POSTCODE\n"
                    "        action: generalise\n"
                    "        to: district\n",
                    text, sizeof(text));
    plan = compile_ok(doc, 0, hl7);
    assert_int_equal(action_of(plan, "pid.address[].postcode"), PS_ACTION_GENERALISE);
    ps_plan_destroy(plan);
    ps_policy_doc_destroy(doc);
}

/* ---- ps_policy_check ---- */

static void expect_check_error(const char *text, const char *dst_needle, const char *want_msg)
{
    struct ps_policy_doc *doc = load_text(text);
    struct ps_error err;
    ps_error_clear(&err);
    assert_int_equal(ps_policy_check(doc, &err), PS_ERR_CONFIG);
    assert_int_equal(err.code, PS_ERR_CONFIG);
    assert_string_equal(err.file, doc->file);
    assert_int_equal(err.line, line_of(text, dst_needle));
    assert_int_equal(err.col, 5);
    assert_msg_starts(err.msg, want_msg);
    ps_policy_doc_destroy(doc);
}

#define DST(name, topic, purpose, basis, extra)                                               \
    "  - name: " name "\n"                                                                     \
    "    topic: " topic "\n"                                                                   \
    "    purpose: " purpose "\n"                                                               \
    "    legal_basis:\n"                                                                       \
    "      article6: public_task\n"                                                            \
    "      article9: health_social_care\n"                                                     \
    "      common_law: " basis "\n" extra

static void test_policy_check_refusals(void **state)
{
    (void)state;
    const char *ok = "version: 1\ndestinations:\n"
        DST("ward", "ward.events", "direct_care", "implied_consent", "    default: keep\n")
        DST("study", "study.events", "research", "s251_support",
            "    pseudonym_domain: study\n");
    struct ps_policy_doc *doc = load_text(ok);
    struct ps_error err;
    ps_error_clear(&err);
    assert_int_equal(ps_policy_check(doc, &err), PS_OK);
    ps_policy_doc_destroy(doc);

    expect_check_error("version: 1\ndestinations:\n"
                       DST("ward", "ward.events", "direct_care", "implied_consent", "")
                       DST("study", "study.events", "research", "implied_consent",
                           "    pseudonym_domain: study\n"),
                       "name: study",
                       "destination 'study': implied consent covers direct care only, not "
                       "research (set legal_basis.common_law to the basis this flow really "
                       "has, e.g. s251_support or explicit_consent)");
    expect_check_error("version: 1\ndestinations:\n"
                       DST("plan", "plan.events", "planning", "s251_support",
                           "    pseudonym_domain: plan\n    default: keep\n"),
                       "name: plan",
                       "destination 'plan': default must be drop for planning (name each "
                       "field the destination needs in rules)");
    expect_check_error("version: 1\ndestinations:\n"
                       DST("plan", "plan.events", "planning", "s251_support", ""),
                       "name: plan",
                       "destination 'plan': planning needs a pseudonym_domain (add "
                       "pseudonym_domain: <name>, distinct from every other destination's)");
    expect_check_error("version: 1\ndestinations:\n"
                       DST("plan", "plan.events", "planning", "s251_support",
                           "    pseudonym_domain: shared\n")
                       DST("study", "study.events", "research", "explicit_consent",
                           "    pseudonym_domain: shared\n"),
                       "name: study",
                       "destinations 'plan' and 'study' share pseudonym domain 'shared', so "
                       "their records would link (give each its own domain");
    expect_check_error("version: 1\ndestinations:\n"
                       DST("plan", "plan.events", "planning", "s251_support",
                           "    pseudonym_domain: a\n")
                       DST("ward", "ward.events", "direct_care", "implied_consent", "")
                       DST("plan", "plan2.events", "research", "s251_support",
                           "    pseudonym_domain: b\n"),
                       "name: plan\n    topic: plan2",
                       "destination name 'plan' is used twice (rename one)");
    expect_check_error("version: 1\ndestinations:\n"
                       DST("plan", "same.events", "planning", "s251_support",
                           "    pseudonym_domain: a\n")
                       DST("study", "same.events", "research", "s251_support",
                           "    pseudonym_domain: b\n"),
                       "name: study",
                       "destinations 'plan' and 'study' write to the same topic (give each "
                       "its own topic)");
}

/* ---- the demo policy ---- */

static void test_demo_policy_compiles(void **state)
{
    (void)state;
    struct ps_policy_doc *doc = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    assert_int_equal(ps_policy_doc_load("policy/demo.yaml", &doc, &err), PS_OK);
    assert_int_equal(ps_policy_check(doc, &err), PS_OK);
    assert_int_equal(doc->destination_count, 3);
    const struct ps_schema *schemas[] = {hl7, fhir};
    for (size_t s = 0; s < 2; s++) {
        for (size_t d = 0; d < doc->destination_count; d++) {
            struct ps_plan *plan = compile_ok(doc, d, schemas[s]);
            assert_int_equal(plan->subject_node,
                             ps_schema_find(schemas[s], s == 0 ? "pid.nhs_number"
                                                               : "patient.nhsNumber"));
            assert_true(plan->subject_node > 0);
            assert_true(plan->time_node > 0);
            assert_true(plan->id_node > 0);
            assert_true(plan->type_node > 0);
            ps_plan_destroy(plan);
        }
    }

    /* Commissioning's view of an HL7v2 event. */
    assert_string_equal(doc->destinations[1].name, "commissioning");
    struct ps_plan *plan = compile_ok(doc, 1, hl7);
    const struct ps_schema_node *nhs = derived_node(plan, "pid.nhs_number");
    assert_int_equal(nhs->type, PS_TYPE_STRING);
    assert_string_equal(node_of(plan, "pid.nhs_number")->kind, "nhs_number");
    const struct ps_schema_node *dob = derived_node(plan, "pid.date_of_birth");
    assert_int_equal(dob->type, PS_TYPE_INT);
    assert_int_equal(dob->logical, PS_LOGICAL_NONE); /* a year, not a date */
    assert_int_equal(derived_node(plan, "pid.address[].postcode")->type, PS_TYPE_STRING);
    assert_int_equal(node_of(plan, "pid.address[].postcode")->to, PS_GRAN_POSTCODE_DISTRICT);
    assert_int_equal(derived_node(plan, "pid.sex")->type, PS_TYPE_STRING);
    assert_int_equal(derived_node(plan, "msh.event_time")->logical,
                     PS_LOGICAL_TIMESTAMP_MILLIS);
    assert_true(ps_schema_find(derived(plan), "dg1[].code") > 0);
    assert_true(ps_schema_find(derived(plan), "obx[].numeric_value") > 0);
    expect_absent(plan, "pid.name");
    expect_absent(plan, "pid.telecom");
    expect_absent(plan, "pid.local_identifiers");
    expect_absent(plan, "pid.address[].city");
    expect_absent(plan, "pid.address[].lines");
    expect_absent(plan, "pv1.visit_number");
    expect_absent(plan, "pv1.consultant_name");
    expect_absent(plan, "nk1");
    expect_absent(plan, "obx[].comment");
    expect_absent(plan, "obx[].text_value");
    /* The derived schema is a schema of its own, in its own namespace. */
    assert_non_null(strstr(ps_schema_name(derived(plan)), "d_commissioning"));
    assert_true(ps_schema_fingerprint(derived(plan)) != ps_schema_fingerprint(hl7));
    ps_plan_destroy(plan);

    /* Commissioning's view of a FHIR event. */
    plan = compile_ok(doc, 1, fhir);
    assert_int_equal(derived_node(plan, "patient.nhsNumber")->type, PS_TYPE_STRING);
    assert_int_equal(derived_node(plan, "patient.birthDate")->type, PS_TYPE_INT);
    expect_absent(plan, "patient.name");
    expect_absent(plan, "patient.telecom");
    expect_absent(plan, "patient.id");
    ps_plan_destroy(plan);

    /* The ward sees names, not the next of kin. */
    plan = compile_ok(doc, 0, hl7);
    assert_true(ps_schema_find(derived(plan), "pid.name[].family") > 0);
    expect_absent(plan, "nk1");
    ps_plan_destroy(plan);
    ps_policy_doc_destroy(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_rule_beats_tag_rule),
        cmocka_unit_test(test_specific_tag_beats_pii),
        cmocka_unit_test(test_two_specific_tags_disagree),
        cmocka_unit_test(test_ancestor_keep_drop_inherited),
        cmocka_unit_test(test_ancestor_transform_not_inherited),
        cmocka_unit_test(test_record_dropped_when_all_below_dropped),
        cmocka_unit_test(test_pseudonymise_needs_string),
        cmocka_unit_test(test_direct_identifier_in_clear),
        cmocka_unit_test(test_policy_check_refusals),
        cmocka_unit_test(test_demo_policy_compiles),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
