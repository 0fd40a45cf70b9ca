/*
 * ps_explain: the DPIA tables say, for every leaf, what the destination
 * receives and which rule decided, from the compiled plan. One policy here
 * uses every treatment on the reference HL7v2 schema, so each "Receives" text
 * is checked once; the document's shape (headings, rows, escaping) is what
 * the integration test's parser relies on.
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

#include "ps_buf.h"
#include "ps_explain.h"
#include "ps_plan.h"
#include "ps_policy.h"
#include "ps_policy_doc.h"
#include "ps_schema.h"

#define HL7_SCHEMA "schemas/hl7v2/hl7v2_event.avsc"
#define FHIR_SCHEMA "schemas/fhir/fhir_event.avsc"

static const char policy_text[] =
    "version: 1\n"
    "destinations:\n"
    "  - name: study\n"
    "    topic: study.events\n"
    "    purpose: research\n"
    "    legal_basis:\n"
    "      article6: public_task\n"
    "      article9: research\n"
    "      common_law: s251_support\n"
    "      reference: \"CAG 1|2 (test)\"\n"
    "    pseudonym_domain: study-a\n"
    "    default: drop\n"
    "    withhold_when:\n"
    "      - event_type_in: [ADT^A08]\n"
    "      - field_absent: pv1.ward\n"
    "    rules:\n"
    "      - tag: NHS_NUMBER\n"             /* line 17 */
    "        action: pseudonymise\n"
    "      - tag: BIRTH_DATE\n"             /* line 19 */
    "        action: generalise\n"
    "        to: age_band\n"
    "      - path: pid.date_of_death\n"     /* line 22 */
    "        action: generalise\n"
    "        to: year\n"
    "      - tag: POSTCODE\n"               /* line 25 */
    "        action: generalise\n"
    "        to: sector\n"
    "      - tag: EVENT_DATE\n"             /* line 28 */
    "        action: date_shift\n"
    "        window_days: 30\n"
    "      - path: pv1.admit_time\n"        /* line 31 */
    "        action: generalise\n"
    "        to: year_month\n"
    "      - tag: FREE_TEXT\n"              /* line 34 */
    "        action: redact\n"
    "      - path: dg1\n"                   /* line 36 */
    "        action: keep\n"
    "      - tag: SEX\n"                    /* line 38 */
    "        action: keep\n"
    "  - name: ward\n"
    "    topic: ward.events\n"
    "    purpose: direct_care\n"
    "    legal_basis: {article6: public_task, article9: health_social_care, "
    "common_law: implied_consent}\n"
    "    default: keep\n"
    "    rules:\n"
    "      - path: nk1\n"
    "        action: drop\n";

static char dir[] = "/tmp/ps_test_explain_XXXXXX";
static char path[128];
static struct ps_schema *hl7;
static struct ps_schema *fhir;
static struct ps_policy_doc *doc;
static struct ps_plan *plan;   /* study on HL7v2 */

static int setup(void **state)
{
    (void)state;
    struct ps_error err;
    ps_error_clear(&err);
    if (!mkdtemp(dir)) {
        return -1;
    }
    snprintf(path, sizeof(path), "%s/policy.yaml", dir);
    FILE *f = fopen(path, "w");
    if (!f || fputs(policy_text, f) < 0 || fclose(f) != 0) {
        return -1;
    }
    if (ps_schema_load_file(HL7_SCHEMA, NULL, &hl7, &err) != PS_OK ||
        ps_schema_load_file(FHIR_SCHEMA, NULL, &fhir, &err) != PS_OK ||
        ps_policy_doc_load(path, &doc, &err) != PS_OK || ps_policy_check(doc, &err) != PS_OK ||
        ps_plan_compile(doc, &doc->destinations[0], hl7, &plan, &err) != PS_OK) {
        fprintf(stderr, "setup: %d: %s\n", err.line, err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ps_plan_destroy(plan);
    ps_policy_doc_destroy(doc);
    ps_schema_destroy(hl7);
    ps_schema_destroy(fhir);
    unlink(path);
    rmdir(dir);
    return 0;
}

static void expect_row(const char *field, const char *receives, const char *decided)
{
    char got[256];
    int node = ps_schema_find(hl7, field);
    if (node < 0) {
        fail_msg("no field '%s'", field);
    }
    ps_explain_receives(plan, node, got, sizeof(got));
    if (strcmp(got, receives) != 0) {
        fail_msg("'%s' receives '%s', expected '%s'", field, got, receives);
    }
    ps_explain_decided_by(plan, node, got, sizeof(got));
    if (strcmp(got, decided) != 0) {
        fail_msg("'%s' decided by '%s', expected '%s'", field, got, decided);
    }
}

static void test_receives_and_decided_by(void **state)
{
    (void)state;
    expect_row("pid.nhs_number", "pseudonym (study-a)", "tag NHS_NUMBER, line 17");
    expect_row("mrg.prior_nhs_number", "pseudonym (study-a)", "tag NHS_NUMBER, line 17");
    expect_row("pid.date_of_birth", "generalised to age band", "tag BIRTH_DATE, line 19");
    expect_row("pid.date_of_death", "generalised to year", "path pid.date_of_death, line 22");
    expect_row("pid.address[].postcode", "generalised to sector", "tag POSTCODE, line 25");
    expect_row("msh.event_time", "date-shifted within \xC2\xB1" "30 days",
               "tag EVENT_DATE, line 28");
    expect_row("pv1.admit_time", "generalised to year_month", "path pv1.admit_time, line 31");
    expect_row("obx[].comment", "redacted", "tag FREE_TEXT, line 34");
    expect_row("dg1[].coding_system", "clear", "path dg1, line 36 (inherited)");
    expect_row("dg1[].diagnosis_time", "date-shifted within \xC2\xB1" "30 days",
               "tag EVENT_DATE, line 28");
    expect_row("pid.sex", "clear", "tag SEX, line 38");
    expect_row("pid.name[].family", "dropped", "default");
    expect_row("pv1.ward", "dropped", "default");
}

static void test_direct_care_table(void **state)
{
    (void)state;
    struct ps_plan *ward = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    assert_int_equal(ps_plan_compile(doc, &doc->destinations[1], hl7, &ward, &err), PS_OK);
    struct ps_buf out;
    ps_buf_init(&out, 0);
    assert_int_equal(ps_explain_table(ward, &out, &err), PS_OK);
    assert_int_equal(ps_buf_append(&out, "", 1), PS_OK);
    const char *text = (const char *)out.data;
    assert_non_null(strstr(text, "### Fields of `uk.nhs.pseudostream.hl7v2.Hl7v2Event`\n\n"
                                 "| Field | Tags | Receives | Decided by |\n|---|---|---|---|\n"
                                 "| `msh.message_control_id` |  | clear | default |\n"));
    assert_non_null(strstr(text, "| `pid.nhs_number` | NHS_NUMBER, PII | clear | default |\n"));
    assert_non_null(strstr(text, "| `nk1[].family` | PERSON_NAME, PII | dropped | "
                                 "path nk1, line 46 (inherited) |\n"));
    /* Every leaf of the schema has a row. */
    size_t rows = 0, leaves = 0;
    for (const char *p = strstr(text, "| `"); p; p = strstr(p + 1, "\n| `")) {
        rows++;
    }
    for (int i = 0; i < (int)ps_schema_node_count(hl7); i++) {
        enum ps_type t = ps_schema_node(hl7, i)->type;
        leaves += t != PS_TYPE_RECORD && t != PS_TYPE_ARRAY && t != PS_TYPE_MAP;
    }
    assert_int_equal(rows, leaves);
    assert_non_null(strstr(text, "\n64 in clear, 0 pseudonymised, 0 generalised, "
                                 "0 date-shifted, 0 redacted, 4 dropped.\n"));
    ps_buf_free(&out);
    ps_plan_destroy(ward);
}

static void test_whole_document(void **state)
{
    (void)state;
    const struct ps_schema *schemas[] = {hl7, fhir};
    struct ps_buf out;
    struct ps_error err;
    ps_error_clear(&err);
    ps_buf_init(&out, 0);
    assert_int_equal(ps_explain_policy(doc, "abc123", schemas, 2, &out, &err), PS_OK);
    assert_int_equal(ps_buf_append(&out, "", 1), PS_OK);
    const char *text = (const char *)out.data;
    assert_non_null(strstr(text, "- Policy SHA-256: `abc123`\n"));
    assert_non_null(strstr(text, "## Destination `study`\n\n- Topic: `study.events`\n"));
    assert_non_null(strstr(text, "## Destination `ward`\n\n- Topic: `ward.events`\n"));
    /* A '|' in the policy's text cannot break the Markdown. */
    assert_non_null(strstr(text, "- Approval reference: CAG 1\\|2 (test)\n"));
    assert_non_null(strstr(text, "- National data opt-out: applies"));
    assert_non_null(strstr(text, "- National data opt-out: does not apply (direct care)"));
    assert_non_null(strstr(text, "- the event type is one of: `ADT^A08` (`event_type_in`, "
                                 "line 14)\n"));
    assert_non_null(strstr(text, "- field `pv1.ward` has no value (`field_absent`, line 15)\n"));
    assert_non_null(strstr(text, "### Fields of `uk.nhs.pseudostream.fhir.FhirEvent`"));
    assert_non_null(strstr(text, "| `patient.birthDate` | BIRTH_DATE | generalised to age band "
                                 "| tag BIRTH_DATE, line 19 |\n"));
    size_t tables = 0;
    for (const char *p = strstr(text, "### Fields of"); p; p = strstr(p + 1, "### Fields of")) {
        tables++;
    }
    assert_int_equal(tables, 4);
    size_t full = out.len;
    ps_buf_free(&out);

    /* A buffer too small fails with PS_ERR_LIMIT, not a truncated table. */
    ps_buf_init(&out, full / 2);
    assert_int_equal(ps_explain_policy(doc, NULL, schemas, 2, &out, &err), PS_ERR_LIMIT);
    assert_int_equal(err.code, PS_ERR_LIMIT);
    ps_buf_free(&out);
}

static void test_refused_plan(void **state)
{
    (void)state;
    /* explain compiles what it explains: a refused plan is an error, with its line. */
    char bad_path[160];
    snprintf(bad_path, sizeof(bad_path), "%s/bad.yaml", dir);
    FILE *f = fopen(bad_path, "w");
    assert_non_null(f);
    fputs("version: 1\ndestinations:\n  - name: p\n    topic: p.events\n    purpose: planning\n"
          "    legal_basis: {article6: public_task, article9: health_social_care, "
          "common_law: legal_obligation}\n    pseudonym_domain: p\n    rules:\n"
          "      - tag: PERSON_NAME\n        action: keep\n", f);
    assert_int_equal(fclose(f), 0);
    struct ps_policy_doc *d = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    assert_int_equal(ps_policy_doc_load(bad_path, &d, &err), PS_OK);
    const struct ps_schema *schemas[] = {hl7};
    struct ps_buf out;
    ps_buf_init(&out, 0);
    assert_int_equal(ps_explain_policy(d, NULL, schemas, 1, &out, &err), PS_ERR_CONFIG);
    assert_string_equal(err.file, bad_path);
    assert_int_equal(err.line, 9);
    assert_non_null(
        strstr(err.msg, "field 'pid.name[].family' (PERSON_NAME) would leave in clear"));
    ps_buf_free(&out);
    ps_policy_doc_destroy(d);
    unlink(bad_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_receives_and_decided_by),
        cmocka_unit_test(test_direct_care_table),
        cmocka_unit_test(test_whole_document),
        cmocka_unit_test(test_refused_plan),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
