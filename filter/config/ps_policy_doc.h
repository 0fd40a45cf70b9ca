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
    PS_ACTION_DATE_SHIFT,
    PS_ACTION_COUNT
};

enum ps_granularity {
    PS_GRAN_NONE = 0,
    PS_GRAN_YEAR,
    PS_GRAN_YEAR_MONTH,
    PS_GRAN_POSTCODE_DISTRICT,
    PS_GRAN_POSTCODE_SECTOR,
    PS_GRAN_AGE_BAND,                /* 5-year bands at the event's time, top band 90+ */
    PS_GRAN_COUNT
};

/* Names as written in YAML ("direct_care", "s251_support", "pseudonymise",
 * "year_month", "district"). */
const char *ps_purpose_name(enum ps_purpose v);
const char *ps_common_law_name(enum ps_common_law v);
const char *ps_action_name(enum ps_action v);
const char *ps_granularity_name(enum ps_granularity v);

/* Whether the national data opt-out applies to a destination. */
enum ps_optout_mode {
    PS_OPTOUT_MODE_APPLY = 0,        /* the default for everything but direct care */
    PS_OPTOUT_MODE_EXEMPT = 1        /* only with an exempt basis (ps_policy.h) */
};

#define PS_DATE_SHIFT_DEFAULT_DAYS 180

struct ps_policy_rule {
    int tag;                         /* enum ps_tag, or -1 when the rule names a path */
    char *path;                      /* field path, or NULL when the rule names a tag */
    enum ps_action action;
    enum ps_granularity to;          /* GENERALISE only; PS_GRAN_NONE otherwise */
    uint32_t window_days;            /* DATE_SHIFT: shift within +-window_days */
    int line, col;                   /* of the rule's mapping in the file */
};

/* A code set: ICD-10 (or other) code prefixes of a restricted category,
 * from a file under policy/codesets/. Codes match by prefix, ignoring case
 * and the dot ("A54.0" matches "A54"). */
struct ps_codeset {
    char *file;
    char *name;
    char *system;
    char *description;
    char **prefixes;        /* folded: upper case, no dots or spaces */
    size_t *prefix_lens;    /* strlen of each, measured once */
    size_t prefix_count;
};

enum ps_predicate_kind {
    PS_PRED_EVENT_TYPE_IN = 0,       /* withhold when the event type is one of values */
    PS_PRED_EVENT_TYPE_NOT_IN,       /* withhold when it is none of values */
    PS_PRED_CODES_IN,                /* withhold when a code field matches the code set */
    PS_PRED_FIELD_PRESENT,           /* withhold when the field has a value */
    PS_PRED_FIELD_ABSENT             /* withhold when it has none */
};

/* withhold_when: one condition under which a record never reaches the destination. */
struct ps_policy_predicate {
    enum ps_predicate_kind kind;
    char **values;                   /* EVENT_TYPE_*: the event types */
    size_t value_count;
    int tag;                         /* CODES_IN: the code fields by tag, or -1 */
    char *path;                      /* CODES_IN by path, FIELD_*: the field */
    struct ps_codeset *codeset;      /* CODES_IN: owned */
    int line, col;
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
    enum ps_optout_mode opt_out;     /* APPLY unless written */
    int opt_out_written;             /* the policy said opt_out: explicitly */
    char **may_link_with;            /* destinations whose pseudonym domain it may share */
    size_t may_link_count;
    char *escrow_public_key;         /* re-identification authority's public key file, or NULL */
    char *escrow_second_public_key;  /* a second authority (both must take part), or NULL */
    struct ps_policy_rule *rules;
    size_t rule_count;
    struct ps_policy_predicate *predicates;
    size_t predicate_count;
    int line, col;                   /* of the destination's mapping */
};

struct ps_policy_doc {
    char *file;                      /* path the document was loaded from */
    unsigned version;
    struct ps_policy_destination *destinations;
    size_t destination_count;
};

const char *ps_predicate_kind_name(enum ps_predicate_kind v);

/* 1 when code matches one of the set's prefixes (case and dots ignored). */
int ps_codeset_match(const struct ps_codeset *set, const char *code, size_t len);

/* Loads and checks the form of a policy file, and every code set it names
 * (paths relative to the policy file's folder). Every error names file, line,
 * column and the fix. */
ps_err_t ps_policy_doc_load(const char *path, struct ps_policy_doc **doc_p,
                            struct ps_error *err);
/* NULL is a no-op. */
void ps_policy_doc_destroy(struct ps_policy_doc *doc);

#endif
