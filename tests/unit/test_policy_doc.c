/*
 * ps_policy_doc: loading a disclosure policy's form. Every bad fixture is
 * checked for its exact file:line:col and message, since that one line is
 * all an operator sees when the service refuses to start.
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

#include "ps_policy_doc.h"
#include "ps_tag.h"

#define DATA "tests/unit/data/policy/"

static void expect_error(const char *path, ps_err_t code, const char *expected)
{
    struct ps_error err;
    struct ps_policy_doc *doc = NULL;
    char line[PS_ERROR_MSG_MAX + PS_ERROR_FILE_MAX + 32];
    ps_error_clear(&err);
    ps_err_t rc = ps_policy_doc_load(path, &doc, &err);
    ps_error_format(&err, line, sizeof(line));
    assert_string_equal(line, expected);
    assert_int_equal(rc, code);
    assert_int_equal(err.code, code);
    assert_null(doc);
    assert_null(strchr(line, '\n'));
}

static void test_good(void **state)
{
    (void)state;
    struct ps_error err;
    struct ps_policy_doc *doc = NULL;
    ps_error_clear(&err);
    assert_int_equal(ps_policy_doc_load(DATA "good.yaml", &doc, &err), PS_OK);
    assert_non_null(doc);
    assert_string_equal(doc->file, DATA "good.yaml");
    assert_int_equal(doc->version, 1);
    assert_int_equal(doc->destination_count, 2);

    const struct ps_policy_destination *care = &doc->destinations[0];
    assert_string_equal(care->name, "ward-care");
    assert_string_equal(care->topic, "care.events");
    assert_int_equal(care->purpose, PS_PURPOSE_DIRECT_CARE);
    assert_string_equal(care->legal_basis.article6, "public_task");
    assert_string_equal(care->legal_basis.article9, "health_social_care");
    assert_int_equal(care->legal_basis.common_law, PS_COMMON_LAW_IMPLIED_CONSENT);
    assert_null(care->legal_basis.reference);
    assert_null(care->pseudonym_domain);
    assert_int_equal(care->default_action, PS_ACTION_KEEP);
    assert_int_equal(care->line, 4);
    assert_int_equal(care->col, 5);
    assert_int_equal(care->rule_count, 1);
    assert_int_equal(care->rules[0].tag, PS_TAG_FREE_TEXT);
    assert_null(care->rules[0].path);
    assert_int_equal(care->rules[0].action, PS_ACTION_REDACT);
    assert_int_equal(care->rules[0].to, PS_GRAN_NONE);
    assert_int_equal(care->rules[0].line, 13);
    assert_int_equal(care->rules[0].col, 9);

    const struct ps_policy_destination *comm = &doc->destinations[1];
    assert_string_equal(comm->name, "commissioning");
    assert_int_equal(comm->purpose, PS_PURPOSE_COMMISSIONING);
    assert_int_equal(comm->legal_basis.common_law, PS_COMMON_LAW_S251_SUPPORT);
    assert_string_equal(comm->legal_basis.reference, "CAG 0-00(a)/TEST");
    assert_string_equal(comm->pseudonym_domain, "commissioning");
    assert_int_equal(comm->default_action, PS_ACTION_DROP); /* not written */
    assert_int_equal(comm->line, 15);
    assert_int_equal(comm->col, 5);
    assert_int_equal(comm->rule_count, 4);
    assert_int_equal(comm->rules[0].tag, PS_TAG_NHS_NUMBER);
    assert_int_equal(comm->rules[0].action, PS_ACTION_PSEUDONYMISE);
    assert_int_equal(comm->rules[0].line, 25);
    assert_int_equal(comm->rules[1].tag, -1);
    assert_string_equal(comm->rules[1].path, "pid.date_of_birth");
    assert_int_equal(comm->rules[1].action, PS_ACTION_GENERALISE);
    assert_int_equal(comm->rules[1].to, PS_GRAN_YEAR);
    assert_int_equal(comm->rules[1].line, 27);
    assert_int_equal(comm->rules[1].col, 9);
    assert_int_equal(comm->rules[2].tag, PS_TAG_POSTCODE);
    assert_int_equal(comm->rules[2].to, PS_GRAN_POSTCODE_DISTRICT);
    assert_int_equal(comm->rules[3].tag, PS_TAG_PII);
    assert_int_equal(comm->rules[3].action, PS_ACTION_DROP);
    assert_int_equal(comm->rules[3].line, 33);
    ps_policy_doc_destroy(doc);
}

static void test_bad_action(void **state)
{
    (void)state;
    expect_error(DATA "bad_action.yaml", PS_ERR_CONFIG,
                 DATA "bad_action.yaml:15:17: unknown action 'hash' in "
                      "destinations[1].rules[0].action (expected one of: keep, drop, "
                      "pseudonymise, generalise, redact, date_shift)");
}

static void test_bad_unknown_key(void **state)
{
    (void)state;
    expect_error(DATA "bad_unknown_key.yaml", PS_ERR_CONFIG,
                 DATA "bad_unknown_key.yaml:10:5: unknown key 'topik' in destinations[0] "
                      "(expected one of: name, topic, purpose, legal_basis, pseudonym_domain, "
                      "default, opt_out, may_link_with, escrow, rules, withhold_when)");
}

static void test_missing_topic(void **state)
{
    (void)state;
    expect_error(DATA "missing_topic.yaml", PS_ERR_CONFIG,
                 DATA "missing_topic.yaml:5:5: destinations[0] has no 'topic' "
                      "(add topic: <kafka topic name>)");
}

static void test_bad_unknown_tag(void **state)
{
    (void)state;
    expect_error(DATA "bad_unknown_tag.yaml", PS_ERR_CONFIG,
                 DATA "bad_unknown_tag.yaml:12:14: unknown tag 'NHS_NUMBR' in "
                      "destinations[0].rules[1].tag (expected one of: NHS_NUMBER, LOCAL_ID, "
                      "PERSON_NAME, ADDRESS, POSTCODE, TELECOM, EMAIL, BIRTH_DATE, DEATH_DATE, "
                      "EVENT_DATE, SEX, ETHNICITY, GP_PRACTICE, CLINICIAN_ID, FREE_TEXT, "
                      "DIAGNOSIS_CODE, PROCEDURE_CODE, PII)");
}

static void test_tag_and_path(void **state)
{
    (void)state;
    expect_error(DATA "bad_tag_and_path.yaml", PS_ERR_CONFIG,
                 DATA "bad_tag_and_path.yaml:10:9: destinations[0].rules[0] names both a tag "
                      "and a path (keep one: a rule names a tag or a path)");
    expect_error(DATA "bad_no_tag_or_path.yaml", PS_ERR_CONFIG,
                 DATA "bad_no_tag_or_path.yaml:12:9: destinations[0].rules[1] names neither a "
                      "tag nor a path (add tag: <TAG> or path: <field path>)");
}

static void test_generalise_to(void **state)
{
    (void)state;
    expect_error(DATA "bad_generalise_no_to.yaml", PS_ERR_CONFIG,
                 DATA "bad_generalise_no_to.yaml:10:9: destinations[0].rules[0] generalises "
                      "but has no 'to' (add to: year, year_month, age_band, district or sector)");
    expect_error(DATA "bad_to_without_generalise.yaml", PS_ERR_CONFIG,
                 DATA "bad_to_without_generalise.yaml:12:9: destinations[0].rules[0].to is only "
                      "for action: generalise (remove 'to' or change the action)");
}

/* Without CYAML_FLAG_STRICT libcyaml 1.3.1 would take "purpose: 3" as research. */
static void test_enum_is_strict(void **state)
{
    (void)state;
    expect_error(DATA "bad_purpose_int.yaml", PS_ERR_CONFIG,
                 DATA "bad_purpose_int.yaml:6:14: unknown purpose '3' in destinations[0].purpose "
                      "(expected one of: direct_care, planning, commissioning, research, "
                      "service_evaluation, risk_stratification)");
    expect_error(DATA "bad_default.yaml", PS_ERR_CONFIG,
                 DATA "bad_default.yaml:8:14: unknown default 'pseudonymise' in "
                      "destinations[0].default (expected one of: keep, drop)");
}

static void test_form_errors(void **state)
{
    (void)state;
    expect_error(DATA "bad_syntax.yaml", PS_ERR_CONFIG,
                 DATA "bad_syntax.yaml:5:1: YAML syntax error: found a tab character that "
                      "violates indentation while scanning a plain scalar (indent with spaces, "
                      "not tabs)");
    expect_error(DATA "bad_version.yaml", PS_ERR_CONFIG,
                 DATA "bad_version.yaml:1:10: unsupported policy version (write version: 1)");
    expect_error(DATA "bad_alias.yaml", PS_ERR_CONFIG,
                 DATA "bad_alias.yaml:3:11: anchors and aliases (&name, *name) are not allowed "
                      "(write the value out in full)");
    expect_error(DATA "bad_duplicate.yaml", PS_ERR_CONFIG,
                 DATA "bad_duplicate.yaml:6:5: 'topic' is written twice in destinations[0] "
                      "(keep only one)");
    expect_error(DATA "bad_empty_destinations.yaml", PS_ERR_CONFIG,
                 DATA "bad_empty_destinations.yaml:2:15: destinations is empty "
                      "(add at least one entry)");
    expect_error(DATA "bad_rules_scalar.yaml", PS_ERR_CONFIG,
                 DATA "bad_rules_scalar.yaml:7:12: destinations[0].rules must be a list "
                      "('- ' items), not a single value");
    expect_error(DATA "empty.yaml", PS_ERR_CONFIG,
                 DATA "empty.yaml: the file is empty (write version: 1 and destinations:)");
    expect_error(DATA "no_such_file.yaml", PS_ERR_IO,
                 DATA "no_such_file.yaml: cannot open: No such file or directory");
}

/* The tag table libcyaml sees is built from ps_tag_names(): every name loads
 * as its own enum value. */
static void test_every_tag_loads(void **state)
{
    (void)state;
    char path[] = "/tmp/ps_test_policy_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fprintf(f, "version: 1\ndestinations:\n  - name: all\n    topic: all.events\n"
               "    purpose: research\n    legal_basis: {article6: public_task, "
               "article9: research, common_law: explicit_consent}\n    rules:\n");
    for (int t = 0; t < PS_TAG_COUNT; t++) {
        fprintf(f, "      - {tag: %s, action: drop}\n", ps_tag_name((enum ps_tag)t));
    }
    fclose(f);

    struct ps_error err;
    struct ps_policy_doc *doc = NULL;
    ps_error_clear(&err);
    assert_int_equal(ps_policy_doc_load(path, &doc, &err), PS_OK);
    assert_int_equal(doc->destinations[0].rule_count, PS_TAG_COUNT);
    for (int t = 0; t < PS_TAG_COUNT; t++) {
        assert_int_equal(doc->destinations[0].rules[t].tag, t);
        assert_int_equal(doc->destinations[0].rules[t].line, 8 + t);
        assert_int_equal(doc->destinations[0].rules[t].col, 9);
    }
    ps_policy_doc_destroy(doc);
    unlink(path);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(ps_purpose_name(PS_PURPOSE_DIRECT_CARE), "direct_care");
    assert_string_equal(ps_purpose_name(PS_PURPOSE_RISK_STRATIFICATION), "risk_stratification");
    assert_string_equal(ps_common_law_name(PS_COMMON_LAW_S251_SUPPORT), "s251_support");
    assert_string_equal(ps_common_law_name(PS_COMMON_LAW_ANONYMISED), "anonymised");
    assert_string_equal(ps_action_name(PS_ACTION_PSEUDONYMISE), "pseudonymise");
    assert_string_equal(ps_action_name(PS_ACTION_REDACT), "redact");
    assert_string_equal(ps_granularity_name(PS_GRAN_NONE), "none");
    assert_string_equal(ps_granularity_name(PS_GRAN_YEAR_MONTH), "year_month");
    assert_string_equal(ps_granularity_name(PS_GRAN_POSTCODE_DISTRICT), "district");
    assert_string_equal(ps_granularity_name(PS_GRAN_POSTCODE_SECTOR), "sector");
    assert_string_equal(ps_purpose_name(PS_PURPOSE_COUNT), "?");
    assert_string_equal(ps_common_law_name(PS_COMMON_LAW_COUNT), "?");
    assert_string_equal(ps_action_name(PS_ACTION_COUNT), "?");
    assert_string_equal(ps_granularity_name(PS_GRAN_COUNT), "?");
    for (int v = 0; v < PS_PURPOSE_COUNT; v++) {
        assert_string_not_equal(ps_purpose_name((enum ps_purpose)v), "?");
    }
    for (int v = 0; v < PS_COMMON_LAW_COUNT; v++) {
        assert_string_not_equal(ps_common_law_name((enum ps_common_law)v), "?");
    }
    for (int v = 0; v < PS_ACTION_COUNT; v++) {
        assert_string_not_equal(ps_action_name((enum ps_action)v), "?");
    }
}

static void test_destroy_null(void **state)
{
    (void)state;
    ps_policy_doc_destroy(NULL);
    assert_int_equal(ps_policy_doc_load(DATA "good.yaml", NULL, NULL), PS_ERR_INVALID);
    /* A NULL error is allowed: the code alone comes back. */
    struct ps_policy_doc *doc = NULL;
    assert_int_equal(ps_policy_doc_load(DATA "bad_action.yaml", &doc, NULL), PS_ERR_CONFIG);
    assert_null(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_bad_action),
        cmocka_unit_test(test_bad_unknown_key),
        cmocka_unit_test(test_missing_topic),
        cmocka_unit_test(test_bad_unknown_tag),
        cmocka_unit_test(test_tag_and_path),
        cmocka_unit_test(test_generalise_to),
        cmocka_unit_test(test_enum_is_strict),
        cmocka_unit_test(test_form_errors),
        cmocka_unit_test(test_every_tag_loads),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_destroy_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
