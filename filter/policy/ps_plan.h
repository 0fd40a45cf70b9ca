/*
 * ps_plan: one destination's compiled plan for one input schema.
 *
 * Compiling resolves, once per (schema, destination), what happens to every
 * field, so nothing is looked up per event. For each node of the schema:
 *
 *   1. a rule naming the node's path wins;
 *   2. else a rule naming one of the node's own tags (an array's items count
 *      as carrying their array's tags); specific tags win over the class tag
 *      PII; two specific tags whose rules disagree are an error;
 *   3. else the nearest ancestor's rule, if it keeps or drops (a transform
 *      applies only to the fields that carry its tag or path: pseudonymising
 *      an address must not pseudonymise the address-type code beside it);
 *   4. else the destination's default (drop, for anything but direct care).
 *
 * A record or array is kept when any field below it is kept, else dropped,
 * so the derived schema has no empty shells. The output schema is derived
 * from the input schema and these decisions (ps_project.h).
 *
 * Compiling also checks what can only be checked against a schema: that a
 * transform suits the field's type, that a path rule names a field, and that
 * no direct identifier leaves in clear for a destination other than direct
 * care without explicit consent or section 251 support, and that a
 * destination claiming "anonymised" keeps no pseudonym and no quasi-identifier
 * at full precision. Errors name the policy file, the rule's line and column,
 * and the field path. Choices that are legal but worth a second look (a birth
 * date kept to the day for secondary use, free text for secondary use, a
 * direct-care destination that names nothing it does not need) are warnings.
 */
#ifndef PS_PLAN_H
#define PS_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "ps_error.h"
#include "ps_policy_doc.h"
#include "ps_project.h"
#include "ps_schema.h"

/* What happens to one node, and why. */
struct ps_plan_node {
    enum ps_action action;         /* KEEP, DROP, PSEUDONYMISE, GENERALISE, REDACT */
    enum ps_granularity to;        /* GENERALISE only */
    const char *kind;              /* PSEUDONYMISE only: the tag's kind ("nhs_number") */
    const struct ps_policy_rule *rule; /* the rule that decided, NULL for the default */
    int inherited;                 /* decided by an ancestor's rule */
};

/* A withhold_when condition bound to this schema's nodes. */
struct ps_plan_predicate {
    const struct ps_policy_predicate *pred; /* borrowed from the policy */
    int *nodes;                          /* the leaves it reads (codes, field, event type) */
    size_t node_count;                   /* 0: the schema lacks the field */
};

/* The audit's account of a plan: leaf paths by what the destination gets. */
struct ps_plan_fields {
    const char **kept;                   /* paths borrowed from the schema */
    size_t kept_count;
    const char **pseudonymised;
    size_t pseudonymised_count;
    char **generalised;                  /* "path:granularity" (owned), date shifts "path:date_shift" */
    size_t generalised_count;
    const char **dropped;
    size_t dropped_count;
};

struct ps_plan {
    const struct ps_schema *schema;      /* borrowed */
    const struct ps_policy_destination *dst; /* borrowed */
    struct ps_plan_node *nodes;          /* one per schema node */
    struct ps_projection *projection;    /* owned */
    int subject_node;                    /* node of the subject's NHS number, or -1 */
    int time_node;                       /* node of the event time, or -1 */
    int id_node;                         /* node of the event id, or -1 */
    int type_node;                       /* node of the event type, or -1 */
    struct ps_plan_predicate *predicates; /* one per dst->predicates */
    struct ps_plan_fields fields;
    char **warnings;                     /* "file:line:col: message", owned */
    size_t warning_count;
};

/* Compiles dst's plan for schema. Both must outlive the plan.
 * out_namespace names the derived schema's namespace. */
ps_err_t ps_plan_compile(const struct ps_policy_doc *doc, const struct ps_policy_destination *dst,
                         const struct ps_schema *schema, struct ps_plan **plan_p,
                         struct ps_error *err);
/* NULL is a no-op. */
void ps_plan_destroy(struct ps_plan *plan);

/* 1 for the purpose whose common-law basis is implied consent. */
int ps_plan_is_direct_care(const struct ps_policy_destination *dst);

/* 1 for a node that holds a value (not a record, list or map). */
int ps_plan_is_leaf(const struct ps_schema_node *node);
/* A field's tags as plans see them: its own, and an array's items carry the
 * array's (the same field). */
uint32_t ps_plan_field_tags(const struct ps_schema *schema, int index);

/* 1 when the national data opt-out applies to the destination: anything but
 * direct care, unless the policy exempts it (which ps_policy_check allows only
 * with an exempt basis). */
int ps_plan_applies_optout(const struct ps_policy_destination *dst);

#endif
