/*
 * The refusal rules of issue 3, one test each, and the record predicates.
 *
 * Each test writes a small policy at test time and checks the message and the
 * line it names (found in the policy's own text, so the test shows what it
 * refuses). Field rules are compiled against a small schema made here with one
 * field per tag of interest: the reference schemas carry no EMAIL field, and a
 * flat schema keeps each refusal about one field. Refusals that need no schema
 * come from ps_policy_check, the others from ps_plan_compile, as at start-up.
 *
 * The predicates run through the engine (ps_engine_process) on events encoded
 * from readable JSON, so the withhold decision tested is the one the pipeline
 * makes. All data is artificial: NHS numbers of the 999 test range.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ps_buf.h"
#include "ps_codec.h"
#include "ps_codeset_load.h"
#include "ps_engine.h"
#include "ps_frame.h"
#include "ps_keyring.h"
#include "ps_optout.h"
#include "ps_plan.h"
#include "ps_policy.h"
#include "ps_policy_doc.h"
#include "ps_registry.h"
#include "ps_schema.h"
#include "ps_time.h"

#define SECRET "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define NOT_BEFORE INT64_C(1577836800000) /* 2020-01-01T00:00:00Z */
#define SCHEMA_ID 7

/* One field per tag the rules speak of; event metadata for the engine. */
static const char schema_json[] =
    "{\"type\":\"record\",\"name\":\"RuleEvent\",\"namespace\":\"test.rules\","
    "\"pseudostream:event_id\":\"id\",\"pseudostream:event_type\":\"type\","
    "\"pseudostream:event_time\":\"when\",\"pseudostream:subject\":\"nhs\","
    "\"fields\":["
    "{\"name\":\"id\",\"type\":\"string\"},"
    "{\"name\":\"type\",\"type\":\"string\"},"
    "{\"name\":\"when\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"},"
    "\"confluent:tags\":[\"EVENT_DATE\"]},"
    "{\"name\":\"nhs\",\"type\":[\"null\",\"string\"],\"confluent:tags\":[\"NHS_NUMBER\",\"PII\"]},"
    "{\"name\":\"local_id\",\"type\":[\"null\",\"string\"],"
    "\"confluent:tags\":[\"LOCAL_ID\",\"PII\"]},"
    "{\"name\":\"name\",\"type\":[\"null\",\"string\"],"
    "\"confluent:tags\":[\"PERSON_NAME\",\"PII\"]},"
    "{\"name\":\"address\",\"type\":[\"null\",\"string\"],"
    "\"confluent:tags\":[\"ADDRESS\",\"PII\"]},"
    "{\"name\":\"postcode\",\"type\":[\"null\",\"string\"],"
    "\"confluent:tags\":[\"POSTCODE\",\"PII\"]},"
    "{\"name\":\"phone\",\"type\":[\"null\",\"string\"],\"confluent:tags\":[\"TELECOM\",\"PII\"]},"
    "{\"name\":\"email\",\"type\":[\"null\",\"string\"],\"confluent:tags\":[\"EMAIL\",\"PII\"]},"
    "{\"name\":\"dob\",\"type\":[\"null\",{\"type\":\"int\",\"logicalType\":\"date\"}],"
    "\"confluent:tags\":[\"BIRTH_DATE\"]},"
    "{\"name\":\"sex\",\"type\":[\"null\",\"string\"],\"confluent:tags\":[\"SEX\"]},"
    "{\"name\":\"note\",\"type\":[\"null\",\"string\"],\"confluent:tags\":[\"FREE_TEXT\"]},"
    "{\"name\":\"diagnoses\",\"type\":{\"type\":\"array\",\"items\":\"string\"},"
    "\"confluent:tags\":[\"DIAGNOSIS_CODE\"]},"
    "{\"name\":\"ward\",\"type\":[\"null\",\"string\"]}"
    "]}";

/* A restricted code set, written beside the policies (codesets/ is relative
 * to the policy file's folder). The dotted prefix checks that dots in the set
 * are ignored too. */
static const char codeset_yaml[] =
    "name: test_restricted\n"
    "system: ICD-10\n"
    "description: Artificial restricted category for tests.\n"
    "prefixes: [A54, b20, Z20.6]\n";

static char tmpdir[64];
static int file_counter;
static struct ps_schema *schema;     /* owned by the registry once added */
static struct ps_registry *reg;
static struct ps_keyring *kr;

static int setup(void **state)
{
    (void)state;
    struct ps_error err;
    ps_error_clear(&err);
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/ps_test_rules_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        return -1;
    }
    char path[128];
    snprintf(path, sizeof(path), "%s/codesets", tmpdir);
    if (mkdir(path, 0700) != 0) {
        return -1;
    }
    snprintf(path, sizeof(path), "%s/codesets/restricted.yaml", tmpdir);
    FILE *f = fopen(path, "w");
    if (!f || fputs(codeset_yaml, f) < 0 || fclose(f) != 0) {
        return -1;
    }
    struct ps_keyring_entry entry = {1, NOT_BEFORE, 0, SECRET};
    if (ps_crypto_init(&err) != PS_OK ||
        ps_schema_load_json(schema_json, "test_policy_rules", NULL, &schema, &err) != PS_OK ||
        ps_registry_new(&reg, &err) != PS_OK ||
        ps_registry_add(reg, schema, SCHEMA_ID, &err) != PS_OK ||
        ps_keyring_new(&entry, 1, "test", &kr, &err) != PS_OK) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char path[128];
    ps_keyring_destroy(kr);
    ps_registry_destroy(reg);
    for (int i = 0; i < file_counter; i++) {
        snprintf(path, sizeof(path), "%s/policy%d.yaml", tmpdir, i);
        unlink(path);
    }
    snprintf(path, sizeof(path), "%s/codesets/restricted.yaml", tmpdir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/codesets", tmpdir);
    rmdir(path);
    rmdir(tmpdir);
    return 0;
}

/* ------------------------------------------------------------- helpers */

/* One destination as YAML. extra goes after legal_basis (domain, opt_out,
 * may_link_with, withhold_when); rules is the body of rules: (may be ""). */
static void destination(char *out, size_t size, const char *name, const char *purpose,
                        const char *common_law, const char *extra, const char *rules)
{
    int direct = strcmp(purpose, "direct_care") == 0;
    snprintf(out, size,
             "  - name: %s\n"
             "    topic: %s.events\n"
             "    purpose: %s\n"
             "    legal_basis:\n"
             "      article6: %s\n"
             "      article9: health_social_care\n"
             "      common_law: %s\n"
             "%s"
             "    default: %s\n"
             "%s%s",
             name, name, purpose, direct ? "public_task" : "legal_obligation", common_law, extra,
             direct ? "keep" : "drop", rules[0] ? "    rules:\n" : "", rules);
}

static const char *write_policy(const char *text)
{
    static char path[128];
    snprintf(path, sizeof(path), "%s/policy%d.yaml", tmpdir, file_counter++);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
    return path;
}

static struct ps_policy_doc *load_text(const char *text)
{
    struct ps_policy_doc *doc = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    if (ps_policy_doc_load(write_policy(text), &doc, &err) != PS_OK) {
        fail_msg("policy does not load: %s:%d: %s\n%s", err.file, err.line, err.msg, text);
    }
    return doc;
}

/* "version: 1", then the destinations given (NULL-terminated). */
static void policy_text(char *out, size_t size, const char *first, ...)
{
    va_list ap;
    size_t n = (size_t)snprintf(out, size, "version: 1\ndestinations:\n");
    va_start(ap, first);
    for (const char *d = first; d && n < size; d = va_arg(ap, const char *)) {
        n += (size_t)snprintf(out + n, size - n, "%s", d);
    }
    va_end(ap);
    assert_true(n < size);
}

/* 1-based line of the first line of text containing needle. */
static int line_of(const char *text, const char *needle)
{
    const char *hit = strstr(text, needle);
    if (!hit) {
        fail_msg("'%s' is not in the policy text", needle);
    }
    int line = 1;
    for (const char *p = text; p < hit; p++) {
        line += *p == '\n';
    }
    return line;
}

static void assert_contains(const char *text, const char *want)
{
    if (!strstr(text, want)) {
        fail_msg("\n  '%s'\ndoes not contain\n  '%s'", text, want);
    }
}

/* ps_policy_check refuses text at the line holding needle, column col, with want. */
static void expect_check_error(const char *text, const char *needle, int col, const char *want)
{
    struct ps_policy_doc *doc = load_text(text);
    struct ps_error err;
    ps_error_clear(&err);
    assert_int_equal(ps_policy_check(doc, &err), PS_ERR_CONFIG);
    assert_string_equal(err.file, doc->file);
    assert_int_equal(err.line, line_of(text, needle));
    assert_int_equal(err.col, col);
    assert_contains(err.msg, want);
    ps_policy_doc_destroy(doc);
}

/* The policy passes ps_policy_check and every destination compiles. */
static void expect_ok(const char *text)
{
    struct ps_policy_doc *doc = load_text(text);
    struct ps_error err;
    ps_error_clear(&err);
    if (ps_policy_check(doc, &err) != PS_OK) {
        fail_msg("refused: %d: %s\n%s", err.line, err.msg, text);
    }
    for (size_t d = 0; d < doc->destination_count; d++) {
        struct ps_plan *plan = NULL;
        if (ps_plan_compile(doc, &doc->destinations[d], schema, &plan, &err) != PS_OK) {
            fail_msg("destination %zu refused: %d: %s\n%s", d, err.line, err.msg, text);
        }
        ps_plan_destroy(plan);
    }
    ps_policy_doc_destroy(doc);
}

/* The policy passes ps_policy_check; destination 0's plan is refused at the
 * line holding needle (a rule: column 9) with want. */
static void expect_compile_error(const char *text, const char *needle, const char *want)
{
    struct ps_policy_doc *doc = load_text(text);
    struct ps_error err;
    ps_error_clear(&err);
    if (ps_policy_check(doc, &err) != PS_OK) {
        fail_msg("refused before compiling: %d: %s", err.line, err.msg);
    }
    struct ps_plan *plan = NULL;
    assert_int_equal(ps_plan_compile(doc, &doc->destinations[0], schema, &plan, &err),
                     PS_ERR_CONFIG);
    assert_null(plan);
    assert_string_equal(err.file, doc->file);
    assert_int_equal(err.line, line_of(text, needle));
    assert_int_equal(err.col, 9);
    assert_contains(err.msg, want);
    ps_policy_doc_destroy(doc);
}

/* ------------------------------------------------------ refusal rules */

static void test_implied_consent_only_for_direct_care(void **state)
{
    (void)state;
    static const char *const purposes[] = {"planning", "commissioning", "research",
                                           "service_evaluation", "risk_stratification"};
    char d1[1024], d2[1024], text[4096], want[256];
    for (size_t i = 0; i < sizeof(purposes) / sizeof(purposes[0]); i++) {
        destination(d1, sizeof(d1), "ward", "direct_care", "implied_consent", "", "");
        destination(d2, sizeof(d2), "flow", purposes[i], "implied_consent",
                    "    pseudonym_domain: flow\n", "");
        policy_text(text, sizeof(text), d1, d2, NULL);
        snprintf(want, sizeof(want),
                 "destination 'flow': implied consent covers direct care only, not %s",
                 purposes[i]);
        expect_check_error(text, "name: flow", 5, want);
    }
    /* The direct care team alone is fine. */
    destination(d1, sizeof(d1), "ward", "direct_care", "implied_consent", "",
                "      - tag: PERSON_NAME\n        action: keep\n");
    policy_text(text, sizeof(text), d1, NULL);
    expect_ok(text);
}

struct identifier {
    const char *tag;
    const char *field;
};

static const struct identifier identifiers[] = {
    {"NHS_NUMBER", "nhs"},   {"LOCAL_ID", "local_id"}, {"PERSON_NAME", "name"},
    {"ADDRESS", "address"},  {"POSTCODE", "postcode"}, {"TELECOM", "phone"},
    {"EMAIL", "email"},
};

static void test_direct_identifier_in_clear(void **state)
{
    (void)state;
    char dst[1024], text[4096], rules[256], needle[64], want[256];
    for (size_t i = 0; i < sizeof(identifiers) / sizeof(identifiers[0]); i++) {
        const struct identifier *id = &identifiers[i];
        snprintf(rules, sizeof(rules), "      - tag: %s\n        action: keep\n", id->tag);
        snprintf(needle, sizeof(needle), "tag: %s", id->tag);
        snprintf(want, sizeof(want),
                 "destination 'planners': field '%s' (%s) would leave in clear; for this "
                 "purpose and legal basis pseudonymise, generalise or drop it",
                 id->field, id->tag);
        /* Planning on a legal obligation: refused. */
        destination(dst, sizeof(dst), "planners", "planning", "legal_obligation",
                    "    pseudonym_domain: planners\n", rules);
        policy_text(text, sizeof(text), dst, NULL);
        expect_compile_error(text, needle, want);

        /* Section 251 support (and explicit consent) set the duty of
         * confidentiality aside: allowed, and the field is in the output. */
        static const char *const lifting[] = {"s251_support", "explicit_consent"};
        for (size_t b = 0; b < 2; b++) {
            destination(dst, sizeof(dst), "planners", "planning", lifting[b],
                        "    pseudonym_domain: planners\n", rules);
            policy_text(text, sizeof(text), dst, NULL);
            struct ps_policy_doc *doc = load_text(text);
            struct ps_plan *plan = NULL;
            struct ps_error err;
            ps_error_clear(&err);
            assert_int_equal(ps_policy_check(doc, &err), PS_OK);
            if (ps_plan_compile(doc, &doc->destinations[0], schema, &plan, &err) != PS_OK) {
                fail_msg("%s kept on %s refused: %s", id->tag, lifting[b], err.msg);
            }
            int node = ps_schema_find(schema, id->field);
            assert_int_equal(plan->nodes[node].action, PS_ACTION_KEEP);
            assert_true(ps_schema_find(ps_projection_schema(plan->projection), id->field) > 0);
            ps_plan_destroy(plan);
            ps_policy_doc_destroy(doc);
        }
    }
    /* A postcode generalised to its district or sector is not "in full". */
    destination(dst, sizeof(dst), "planners", "planning", "legal_obligation",
                "    pseudonym_domain: planners\n",
                "      - tag: POSTCODE\n        action: generalise\n        to: district\n"
                "      - tag: NHS_NUMBER\n        action: pseudonymise\n");
    policy_text(text, sizeof(text), dst, NULL);
    expect_ok(text);
    destination(dst, sizeof(dst), "planners", "planning", "legal_obligation",
                "    pseudonym_domain: planners\n",
                "      - tag: POSTCODE\n        action: generalise\n        to: sector\n");
    policy_text(text, sizeof(text), dst, NULL);
    expect_ok(text);
    /* The class tag PII names every direct identifier at once. */
    destination(dst, sizeof(dst), "planners", "planning", "legal_obligation",
                "    pseudonym_domain: planners\n", "      - tag: PII\n        action: keep\n");
    policy_text(text, sizeof(text), dst, NULL);
    expect_compile_error(text, "tag: PII", "field 'nhs' (NHS_NUMBER) would leave in clear");
}

static void test_pseudonym_domain_required(void **state)
{
    (void)state;
    static const char *const purposes[] = {"planning", "research", "service_evaluation",
                                           "risk_stratification"};
    char dst[1024], text[4096], want[256];
    for (size_t i = 0; i < sizeof(purposes) / sizeof(purposes[0]); i++) {
        destination(dst, sizeof(dst), "flow", purposes[i], "s251_support", "", "");
        policy_text(text, sizeof(text), dst, NULL);
        snprintf(want, sizeof(want),
                 "destination 'flow': %s needs a pseudonym_domain (add pseudonym_domain: "
                 "<name>, distinct from every other destination's)", purposes[i]);
        expect_check_error(text, "name: flow", 5, want);
    }
    /* Direct care does not pseudonymise, and needs none. */
    destination(dst, sizeof(dst), "ward", "direct_care", "implied_consent", "",
                "      - tag: EMAIL\n        action: drop\n");
    policy_text(text, sizeof(text), dst, NULL);
    expect_ok(text);
}

static void test_shared_domain_needs_may_link_with(void **state)
{
    (void)state;
    char a[1024], b[1024], text[4096];
    destination(a, sizeof(a), "commissioners", "planning", "s251_support",
                "    pseudonym_domain: shared\n", "");
    destination(b, sizeof(b), "evaluators", "service_evaluation", "s251_support",
                "    pseudonym_domain: shared\n", "");
    policy_text(text, sizeof(text), a, b, NULL);
    expect_check_error(text, "name: evaluators", 5,
                       "destinations 'commissioners' and 'evaluators' share pseudonym domain "
                       "'shared', so their records would link (give each its own domain, or "
                       "say may_link_with: [commissioners] if that linkage is intended and "
                       "lawful)");

    /* Saying so, from either side, allows it. */
    destination(b, sizeof(b), "evaluators", "service_evaluation", "s251_support",
                "    pseudonym_domain: shared\n    may_link_with: [commissioners]\n", "");
    policy_text(text, sizeof(text), a, b, NULL);
    expect_ok(text);
    destination(a, sizeof(a), "commissioners", "planning", "s251_support",
                "    pseudonym_domain: shared\n    may_link_with: [evaluators]\n", "");
    destination(b, sizeof(b), "evaluators", "service_evaluation", "s251_support",
                "    pseudonym_domain: shared\n", "");
    policy_text(text, sizeof(text), a, b, NULL);
    expect_ok(text);

    /* may_link_with must name a destination of the policy. */
    destination(b, sizeof(b), "evaluators", "service_evaluation", "s251_support",
                "    pseudonym_domain: shared\n    may_link_with: [comissioners]\n", "");
    policy_text(text, sizeof(text), a, b, NULL);
    expect_check_error(text, "name: evaluators", 5,
                       "destination 'evaluators': may_link_with names 'comissioners', which is "
                       "not a destination of this policy");
}

static void test_anonymised_keeps_nothing_identifying(void **state)
{
    (void)state;
    char dst[1024], text[4096];
    /* A pseudonym is personal data, not anonymous. */
    destination(dst, sizeof(dst), "open", "planning", "anonymised",
                "    pseudonym_domain: open\n",
                "      - tag: NHS_NUMBER\n        action: pseudonymise\n");
    policy_text(text, sizeof(text), dst, NULL);
    expect_compile_error(text, "tag: NHS_NUMBER",
                         "destination 'open': claims anonymised but pseudonymises 'nhs'; "
                         "pseudonymised data is personal data (drop the field, or change the "
                         "legal basis)");

    /* Quasi-identifiers at full precision. */
    destination(dst, sizeof(dst), "open", "planning", "anonymised", "",
                "      - tag: BIRTH_DATE\n        action: keep\n");
    policy_text(text, sizeof(text), dst, NULL);
    expect_compile_error(text, "tag: BIRTH_DATE",
                         "destination 'open': claims anonymised but keeps quasi-identifier "
                         "'dob' (BIRTH_DATE) at full precision (generalise or drop it)");
    destination(dst, sizeof(dst), "open", "planning", "anonymised", "",
                "      - tag: POSTCODE\n        action: keep\n");
    policy_text(text, sizeof(text), dst, NULL);
    expect_compile_error(text, "tag: POSTCODE",
                         "destination 'open': claims anonymised but keeps quasi-identifier "
                         "'postcode' (POSTCODE) at full precision (generalise or drop it)");
    /* A shifted date is still a date to the day. */
    destination(dst, sizeof(dst), "open", "planning", "anonymised",
                "    pseudonym_domain: open\n",
                "      - tag: EVENT_DATE\n        action: date_shift\n");
    policy_text(text, sizeof(text), dst, NULL);
    expect_compile_error(text, "tag: EVENT_DATE",
                         "claims anonymised but keeps quasi-identifier 'when' (EVENT_DATE)");

    /* Generalised, they may leave; sex is categorical already. */
    destination(dst, sizeof(dst), "open", "planning", "anonymised", "",
                "      - tag: BIRTH_DATE\n        action: generalise\n        to: age_band\n"
                "      - tag: POSTCODE\n        action: generalise\n        to: district\n"
                "      - tag: EVENT_DATE\n        action: generalise\n        to: year_month\n"
                "      - tag: SEX\n        action: keep\n"
                "      - tag: DIAGNOSIS_CODE\n        action: keep\n");
    policy_text(text, sizeof(text), dst, NULL);
    expect_ok(text);
    destination(dst, sizeof(dst), "open", "planning", "anonymised", "",
                "      - tag: BIRTH_DATE\n        action: generalise\n        to: year\n");
    policy_text(text, sizeof(text), dst, NULL);
    expect_ok(text);
}

static void test_opt_out_exempt_needs_exempt_basis(void **state)
{
    (void)state;
    char dst[1024], text[4096];
    destination(dst, sizeof(dst), "planners", "planning", "s251_support",
                "    pseudonym_domain: planners\n    opt_out: exempt\n", "");
    policy_text(text, sizeof(text), dst, NULL);
    expect_check_error(text, "name: planners", 5,
                       "destination 'planners': opt_out: exempt needs an exempt basis "
                       "(explicit_consent, legal_obligation, overriding_public_interest or "
                       "anonymised), not s251_support (remove opt_out: exempt)");

    static const char *const exempt[] = {"legal_obligation", "explicit_consent",
                                         "overriding_public_interest"};
    for (size_t i = 0; i < sizeof(exempt) / sizeof(exempt[0]); i++) {
        destination(dst, sizeof(dst), "planners", "planning", exempt[i],
                    "    pseudonym_domain: planners\n    opt_out: exempt\n", "");
        policy_text(text, sizeof(text), dst, NULL);
        expect_ok(text);
        struct ps_policy_doc *doc = load_text(text);
        assert_false(ps_plan_applies_optout(&doc->destinations[0]));
        ps_policy_doc_destroy(doc);
    }
    /* Unless exempted, the opt-out applies to secondary use... */
    destination(dst, sizeof(dst), "planners", "planning", "legal_obligation",
                "    pseudonym_domain: planners\n", "");
    policy_text(text, sizeof(text), dst, NULL);
    struct ps_policy_doc *doc = load_text(text);
    assert_true(ps_plan_applies_optout(&doc->destinations[0]));
    ps_policy_doc_destroy(doc);
    /* ...and never to direct care, which may not even name it. */
    destination(dst, sizeof(dst), "ward", "direct_care", "implied_consent",
                "    opt_out: apply\n", "");
    policy_text(text, sizeof(text), dst, NULL);
    expect_check_error(text, "name: ward", 5,
                       "destination 'ward': the national data opt-out never applies to direct "
                       "care (remove opt_out:)");
}

/* Compiles destination 0 and returns its warnings joined by newlines. */
static void warnings_of(const char *text, char *out, size_t size, const char **file_p)
{
    struct ps_policy_doc *doc = load_text(text);
    struct ps_plan *plan = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    assert_int_equal(ps_policy_check(doc, &err), PS_OK);
    if (ps_plan_compile(doc, &doc->destinations[0], schema, &plan, &err) != PS_OK) {
        fail_msg("refused: %s", err.msg);
    }
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < plan->warning_count && n < size; i++) {
        n += (size_t)snprintf(out + n, size - n, "%s\n", plan->warnings[i]);
    }
    static char file[128];
    snprintf(file, sizeof(file), "%s", doc->file);
    *file_p = file;
    ps_plan_destroy(plan);
    ps_policy_doc_destroy(doc);
}

static void test_warnings(void **state)
{
    (void)state;
    char dst[1024], text[4096], got[4096], want[512];
    const char *file;
    /* A birth date to the day for planning: legal, worth a second look. */
    destination(dst, sizeof(dst), "planners", "planning", "s251_support",
                "    pseudonym_domain: planners\n",
                "      - tag: NHS_NUMBER\n        action: pseudonymise\n"
                "      - tag: BIRTH_DATE\n        action: keep\n");
    policy_text(text, sizeof(text), dst, NULL);
    warnings_of(text, got, sizeof(got), &file);
    snprintf(want, sizeof(want),
             "%s:%d:9: warning: destination 'planners': 'dob' is kept to the day for planning; "
             "year, year_month or age_band is usually enough\n",
             file, line_of(text, "tag: BIRTH_DATE"));
    assert_string_equal(got, want);

    /* Free text for research. */
    destination(dst, sizeof(dst), "study", "research", "s251_support",
                "    pseudonym_domain: study\n",
                "      - tag: FREE_TEXT\n        action: keep\n");
    policy_text(text, sizeof(text), dst, NULL);
    warnings_of(text, got, sizeof(got), &file);
    snprintf(want, sizeof(want),
             "%s:%d:9: warning: destination 'study': free text 'note' can hold any identifier; "
             "drop or redact it for research\n",
             file, line_of(text, "tag: FREE_TEXT"));
    assert_string_equal(got, want);

    /* Generalised or redacted, no warning. */
    destination(dst, sizeof(dst), "study", "research", "s251_support",
                "    pseudonym_domain: study\n",
                "      - tag: FREE_TEXT\n        action: redact\n"
                "      - tag: BIRTH_DATE\n        action: generalise\n        to: year\n");
    policy_text(text, sizeof(text), dst, NULL);
    warnings_of(text, got, sizeof(got), &file);
    assert_string_equal(got, "");

    /* Direct care keeping everything, naming nothing: Caldicott's minimum. */
    destination(dst, sizeof(dst), "ward", "direct_care", "implied_consent", "", "");
    policy_text(text, sizeof(text), dst, NULL);
    warnings_of(text, got, sizeof(got), &file);
    assert_contains(got, "warning: destination 'ward': keeps every field and names nothing it "
                         "does not need");
}

/* ----------------------------------------------------------- predicates */

enum {
    BY_CODE = 0,    /* codes_in by tag */
    TYPE_IN,
    TYPE_NOT_IN,
    NOTE_PRESENT,
    WARD_ABSENT,
    PLANNERS,       /* secondary use: codes_in by path, opt-out applied */
    DST_COUNT
};

static const char predicate_policy[] =
    "version: 1\n"
    "destinations:\n"
    "  - name: by-code\n"
    "    topic: by-code.events\n"
    "    purpose: direct_care\n"
    "    legal_basis: {article6: public_task, article9: health_social_care, "
    "common_law: implied_consent}\n"
    "    default: keep\n"
    "    withhold_when:\n"
    "      - codes_in: {tag: DIAGNOSIS_CODE, codeset: codesets/restricted.yaml}\n"
    "  - name: type-in\n"
    "    topic: type-in.events\n"
    "    purpose: direct_care\n"
    "    legal_basis: {article6: public_task, article9: health_social_care, "
    "common_law: implied_consent}\n"
    "    default: keep\n"
    "    withhold_when:\n"
    "      - event_type_in: [ADT^A08, ADT^A40]\n"
    "  - name: type-not-in\n"
    "    topic: type-not-in.events\n"
    "    purpose: direct_care\n"
    "    legal_basis: {article6: public_task, article9: health_social_care, "
    "common_law: implied_consent}\n"
    "    default: keep\n"
    "    withhold_when:\n"
    "      - event_type_not_in: [ADT^A01, ADT^A03]\n"
    "  - name: note-present\n"
    "    topic: note-present.events\n"
    "    purpose: direct_care\n"
    "    legal_basis: {article6: public_task, article9: health_social_care, "
    "common_law: implied_consent}\n"
    "    default: keep\n"
    "    withhold_when:\n"
    "      - field_present: note\n"
    "  - name: ward-absent\n"
    "    topic: ward-absent.events\n"
    "    purpose: direct_care\n"
    "    legal_basis: {article6: public_task, article9: health_social_care, "
    "common_law: implied_consent}\n"
    "    default: keep\n"
    "    withhold_when:\n"
    "      - field_absent: ward\n"
    "  - name: planners\n"
    "    topic: planners.events\n"
    "    purpose: planning\n"
    "    legal_basis: {article6: legal_obligation, article9: health_social_care, "
    "common_law: s251_support}\n"
    "    pseudonym_domain: planners\n"
    "    default: drop\n"
    "    withhold_when:\n"
    "      - codes_in: {path: \"diagnoses[]\", codeset: codesets/restricted.yaml}\n"
    "    rules:\n"
    "      - tag: NHS_NUMBER\n"
    "        action: pseudonymise\n"
    "      - tag: DIAGNOSIS_CODE\n"
    "        action: keep\n";

struct engine_fixture {
    struct ps_policy_doc *doc;
    struct ps_engine *engine;
    struct ps_engine_worker *worker;
    struct ps_optout *optout;
    struct ps_buf in;
};

static void engine_open(struct engine_fixture *f, const char *text)
{
    struct ps_error err;
    ps_error_clear(&err);
    memset(f, 0, sizeof(*f));
    f->doc = load_text(text);
    if (ps_engine_new(f->doc, "00", reg, kr, &f->engine, &err) != PS_OK ||
        ps_engine_worker_new(f->engine, NULL, &f->worker, &err) != PS_OK ||
        ps_optout_new(PS_OPTOUT_OPTED_OUT, &f->optout, &err) != PS_OK) {
        fail_msg("engine: %d: %s", err.line, err.msg);
    }
    /* Nobody has opted out, and the state is fresh: only predicates withhold. */
    ps_optout_set_as_of(f->optout, ps_time_now_ms());
    ps_engine_worker_set_optout(f->worker, f->optout, 1);
    ps_buf_init(&f->in, 0);
}

static void engine_close(struct engine_fixture *f)
{
    ps_buf_free(&f->in);
    ps_optout_destroy(f->optout);
    ps_engine_worker_destroy(f->worker);
    ps_engine_destroy(f->engine);
    ps_policy_doc_destroy(f->doc);
}

/* Encodes one event (diagnoses: JSON array text; note and ward: JSON values). */
static const struct ps_engine_output *run_event(struct engine_fixture *f, const char *type,
                                                const char *diagnoses, const char *note,
                                                const char *ward)
{
    char json[1024];
    struct ps_error err;
    ps_error_clear(&err);
    snprintf(json, sizeof(json),
             "{\"id\":\"EV1\",\"type\":\"%s\",\"when\":\"2026-03-01T10:00:00.000Z\","
             "\"nhs\":\"9990000018\",\"local_id\":\"H0000001\",\"name\":\"Testname\","
             "\"address\":\"1 Nowhere Lane\",\"postcode\":\"LS1 4AB\",\"phone\":\"07700 900000\","
             "\"email\":\"nobody@example.invalid\",\"dob\":\"1970-03-15\",\"sex\":\"F\","
             "\"note\":%s,\"diagnoses\":%s,\"ward\":%s}",
             type, note, diagnoses, ward);
    ps_buf_reset(&f->in);
    assert_int_equal(ps_frame_write_confluent(SCHEMA_ID, &f->in), PS_OK);
    if (ps_codec_json_to_datum(schema, json, strlen(json), &f->in, &err) != PS_OK) {
        fail_msg("encode: %s", err.msg);
    }
    const struct ps_engine_output *outs = NULL;
    if (ps_engine_process(f->worker, f->in.data, f->in.len, &outs, &err) != PS_OK) {
        fail_msg("process: %s", err.msg);
    }
    return outs;
}

/* W: withheld by a predicate; D: disclosed. One letter per destination. */
static void expect_decisions(const struct ps_engine_output *outs, const char *want,
                             const char *what)
{
    for (size_t d = 0; d < DST_COUNT; d++) {
        enum ps_disclosure dec = want[d] == 'W' ? PS_WITHHELD : PS_DISCLOSED;
        if (outs[d].decision != dec) {
            fail_msg("%s: destination %zu: %s (%s), expected %s", what, d,
                     outs[d].decision == PS_WITHHELD ? "withheld" : "disclosed",
                     outs[d].detail, dec == PS_WITHHELD ? "withheld" : "disclosed");
        }
        if (dec == PS_WITHHELD) {
            assert_int_equal(outs[d].reason, PS_ERR_PREDICATE);
        }
    }
}

static void test_codeset_match(void **state)
{
    (void)state;
    struct ps_policy_doc *doc = load_text(predicate_policy);
    const struct ps_codeset *set = doc->destinations[BY_CODE].predicates[0].codeset;
    assert_non_null(set);
    assert_string_equal(set->name, "test_restricted");
    assert_string_equal(set->system, "ICD-10");
    assert_int_equal(set->prefix_count, 3);
    static const struct {
        const char *code;
        int match;
    } cases[] = {
        {"A54", 1},   {"A54.0", 1}, {"a54.0", 1},  {"A540", 1},   {"a 54 .1", 1},
        {"B20", 1},   {"b20.9", 1}, {"Z20.6", 1},  {"z206", 1},   {"Z20.61", 1},
        {"A5", 0},    {"A55", 0},   {"Z20", 0},    {"Z20.5", 0},  {"B2", 0},
        {"J18.9", 0}, {"", 0},      {"XA54", 0},   {".A54", 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = ps_codeset_match(set, cases[i].code, strlen(cases[i].code));
        if (got != cases[i].match) {
            fail_msg("'%s': match %d, expected %d", cases[i].code, got, cases[i].match);
        }
    }
    /* Only len bytes are read. */
    assert_int_equal(ps_codeset_match(set, "A54", 2), 0);
    ps_policy_doc_destroy(doc);
}

/* A prefix made only of dots and spaces folds to nothing and would match
 * every code, withholding everything: refused where it is written. */
static void test_codeset_empty_prefix_refused(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s/codesets/empty_prefix.yaml", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("name: bad\nsystem: ICD-10\nprefixes: [A54, \". .\"]\n", f);
    assert_int_equal(fclose(f), 0);
    struct ps_codeset *set = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    assert_int_equal(ps_codeset_load(path, &set, &err), PS_ERR_CONFIG);
    assert_null(set);
    assert_non_null(strstr(err.msg, "empty_prefix.yaml"));
    assert_non_null(strstr(err.msg, "prefixes[1]"));
    unlink(path);
}

static void test_predicates_in_engine(void **state)
{
    (void)state;
    struct engine_fixture f;
    engine_open(&f, predicate_policy);
    assert_int_equal(ps_engine_destination_count(f.engine), DST_COUNT);

    /*                                 type       diagnoses     note     ward   */
    expect_decisions(run_event(&f, "ADT^A01", "[\"J18.9\"]", "null", "\"W1\""), "DDDDDD",
                     "nothing matches");
    /* Codes match by prefix, whatever their dots and case, in any item. */
    expect_decisions(run_event(&f, "ADT^A01", "[\"J18.9\",\"a54.0\"]", "null", "\"W1\""),
                     "WDDDDW", "a54.0");
    expect_decisions(run_event(&f, "ADT^A01", "[\"Z206\"]", "null", "\"W1\""), "WDDDDW",
                     "Z206 against Z20.6");
    expect_decisions(run_event(&f, "ADT^A01", "[\"B20.1\"]", "null", "\"W1\""), "WDDDDW",
                     "B20.1 against b20");
    expect_decisions(run_event(&f, "ADT^A01", "[\"A5\",\"Z20\"]", "null", "\"W1\""), "DDDDDD",
                     "shorter than a prefix");
    expect_decisions(run_event(&f, "ADT^A01", "[]", "null", "\"W1\""), "DDDDDD", "no codes");
    /* event_type_in and event_type_not_in. */
    expect_decisions(run_event(&f, "ADT^A08", "[]", "null", "\"W1\""), "DWWDDD", "ADT^A08");
    expect_decisions(run_event(&f, "ADT^A40", "[]", "null", "\"W1\""), "DWWDDD", "ADT^A40");
    expect_decisions(run_event(&f, "ADT^A03", "[]", "null", "\"W1\""), "DDDDDD", "ADT^A03");
    expect_decisions(run_event(&f, "adt^a08", "[]", "null", "\"W1\""), "DDWDDD",
                     "event types compare exactly");
    /* MSH-9 with the message structure: whole components match, a prefix does not. */
    expect_decisions(run_event(&f, "ADT^A08^ADT_A01", "[]", "null", "\"W1\""), "DWWDDD",
                     "ADT^A08 with its message structure");
    expect_decisions(run_event(&f, "ADT^A081", "[]", "null", "\"W1\""), "DDWDDD",
                     "ADT^A081 is not ADT^A08");
    /* field_present and field_absent. */
    expect_decisions(run_event(&f, "ADT^A01", "[]", "\"seen today\"", "\"W1\""), "DDDWDD",
                     "note present");
    expect_decisions(run_event(&f, "ADT^A01", "[]", "null", "null"), "DDDDWD", "ward absent");
    expect_decisions(run_event(&f, "ADT^A08", "[\"A54\"]", "\"x\"", "null"), "WWWWWW",
                     "everything matches");

    /* The reason names the condition and its line, never the code. */
    const struct ps_engine_output *outs =
        run_event(&f, "ADT^A01", "[\"A54.0\"]", "null", "\"W1\"");
    char want[128];
    snprintf(want, sizeof(want), "withhold_when[0] (codes_in: test_restricted) at line %d",
             line_of(predicate_policy, "codes_in: {tag: DIAGNOSIS_CODE"));
    assert_string_equal(outs[BY_CODE].detail, want);
    assert_null(strstr(outs[BY_CODE].detail, "A54"));
    assert_null(outs[BY_CODE].value);
    assert_null(outs[PLANNERS].key);
    engine_close(&f);
}

static void test_predicate_binding_refusals(void **state)
{
    (void)state;
    /* codes_in by path names a leaf: the items of the list, not the list. */
    char text[sizeof(predicate_policy) + 64];
    snprintf(text, sizeof(text), "%s", predicate_policy);
    char *at = strstr(text, "\"diagnoses[]\"");
    assert_non_null(at);
    memcpy(at, "\"diagnoses\"  ", 13);
    struct ps_policy_doc *doc = load_text(text);
    struct ps_plan *plan = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    assert_int_equal(ps_plan_compile(doc, &doc->destinations[PLANNERS], schema, &plan, &err),
                     PS_ERR_CONFIG);
    assert_int_equal(err.line, line_of(text, "codes_in: {path:"));
    assert_contains(err.msg, "destination 'planners': withhold_when names 'diagnoses', a record "
                             "or list (name one of its fields)");
    ps_policy_doc_destroy(doc);

    /* A field no schema has is a typo: the engine refuses to start. */
    snprintf(text, sizeof(text), "%s", predicate_policy);
    at = strstr(text, "field_present: note");
    assert_non_null(at);
    memcpy(at, "field_present: nite", 19);
    doc = load_text(text);
    struct ps_engine *engine = NULL;
    assert_int_equal(ps_engine_new(doc, "00", reg, kr, &engine, &err), PS_ERR_CONFIG);
    assert_null(engine);
    assert_int_equal(err.line, line_of(text, "field_present: nite"));
    assert_contains(err.msg, "withhold_when names 'nite', which is no field of any schema");
    ps_policy_doc_destroy(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_implied_consent_only_for_direct_care),
        cmocka_unit_test(test_direct_identifier_in_clear),
        cmocka_unit_test(test_pseudonym_domain_required),
        cmocka_unit_test(test_shared_domain_needs_may_link_with),
        cmocka_unit_test(test_anonymised_keeps_nothing_identifying),
        cmocka_unit_test(test_opt_out_exempt_needs_exempt_basis),
        cmocka_unit_test(test_warnings),
        cmocka_unit_test(test_codeset_match),
        cmocka_unit_test(test_codeset_empty_prefix_refused),
        cmocka_unit_test(test_predicates_in_engine),
        cmocka_unit_test(test_predicate_binding_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
