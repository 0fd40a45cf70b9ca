/*
 * ps_policy_doc: a disclosure policy as written in YAML, loaded with libcyaml.
 *
 * This is the policy's text in C structures, checked only for form (known
 * keys, known enum values, required fields, numbers). Meaning (legal bases,
 * purposes, which fields may leave in clear) is checked by the policy layer,
 * which reports its findings at the line and column recorded here.
 *
 *   version: 1
 *   destinations:
 *     - name: commissioning
 *       topic: commissioning.events
 *       purpose: planning
 *       legal_basis:
 *         article6: legal_obligation        # UK GDPR Article 6(1) basis
 *         article9: health_social_care      # UK GDPR Article 9(2) condition
 *         common_law: s251_support
 *         reference: "CAG 1-23(b)/2026"     # approval reference, where there is one
 *       pseudonym_domain: commissioning
 *       default: drop                       # for fields no rule names
 *       rules:
 *         - tag: NHS_NUMBER
 *           action: pseudonymise
 *         - path: pid.date_of_birth
 *           action: generalise
 *           to: year
 *
 * Errors name the file, line and column and say what to change, e.g.
 *   policy/demo.yaml:14:17: unknown action 'hash' (expected one of: keep, drop,
 *   pseudonymise, generalise, redact)
 */
#ifndef PS_POLICY_DOC_H
#define PS_POLICY_DOC_H

#include <stddef.h>
#include <stdint.h>

#include "ps_error.h"

enum ps_purpose {
    PS_PURPOSE_DIRECT_CARE = 0,
    PS_PURPOSE_PLANNING,
    PS_PURPOSE_COMMISSIONING,
    PS_PURPOSE_RESEARCH,
    PS_PURPOSE_SERVICE_EVALUATION,
    PS_PURPOSE_RISK_STRATIFICATION,
    PS_PURPOSE_COUNT
};

enum ps_common_law {
    PS_COMMON_LAW_IMPLIED_CONSENT = 0,
    PS_COMMON_LAW_EXPLICIT_CONSENT,
    PS_COMMON_LAW_S251_SUPPORT,
    PS_COMMON_LAW_LEGAL_OBLIGATION,
    PS_COMMON_LAW_OVERRIDING_PUBLIC_INTEREST,
    PS_COMMON_LAW_ANONYMISED,
    PS_COMMON_LAW_COUNT
};

enum ps_action {
    PS_ACTION_KEEP = 0,
    PS_ACTION_DROP,
    PS_ACTION_PSEUDONYMISE,
    PS_ACTION_GENERALISE,
    PS_ACTION_REDACT,
    PS_ACTION_COUNT
};

enum ps_granularity {
    PS_GRAN_NONE = 0,
    PS_GRAN_YEAR,
    PS_GRAN_YEAR_MONTH,
    PS_GRAN_POSTCODE_DISTRICT,
    PS_GRAN_POSTCODE_SECTOR,
    PS_GRAN_COUNT
};

/* Names as written in YAML ("direct_care", "s251_support", "pseudonymise",
 * "year_month", "district"). */
const char *ps_purpose_name(enum ps_purpose v);
const char *ps_common_law_name(enum ps_common_law v);
const char *ps_action_name(enum ps_action v);
const char *ps_granularity_name(enum ps_granularity v);

struct ps_policy_rule {
    int tag;                         /* enum ps_tag, or -1 when the rule names a path */
    char *path;                      /* field path, or NULL when the rule names a tag */
    enum ps_action action;
    enum ps_granularity to;          /* GENERALISE only; PS_GRAN_NONE otherwise */
    int line, col;                   /* of the rule's mapping in the file */
};

struct ps_legal_basis {
    char *article6;                  /* e.g. "public_task", "legal_obligation" */
    char *article9;                  /* e.g. "health_social_care" */
    enum ps_common_law common_law;
    char *reference;                 /* approval reference (CAG, REC), may be NULL */
};

struct ps_policy_destination {
    char *name;
    char *topic;
    enum ps_purpose purpose;
    struct ps_legal_basis legal_basis;
    char *pseudonym_domain;          /* may be NULL (direct care) */
    enum ps_action default_action;   /* KEEP or DROP; DROP unless written */
    struct ps_policy_rule *rules;
    size_t rule_count;
    int line, col;                   /* of the destination's mapping */
};

struct ps_policy_doc {
    char *file;                      /* path the document was loaded from */
    unsigned version;
    struct ps_policy_destination *destinations;
    size_t destination_count;
};

/* Loads and checks the form of a policy file. Every error names file, line,
 * column and the fix. */
ps_err_t ps_policy_doc_load(const char *path, struct ps_policy_doc **doc_p,
                            struct ps_error *err);
/* NULL is a no-op. */
void ps_policy_doc_destroy(struct ps_policy_doc *doc);

#endif
