#include "ps_plan.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ps_tag.h"

int ps_plan_is_direct_care(const struct ps_policy_destination *dst)
{
    return dst->purpose == PS_PURPOSE_DIRECT_CARE;
}

int ps_plan_applies_optout(const struct ps_policy_destination *dst)
{
    return !ps_plan_is_direct_care(dst) && dst->opt_out == PS_OPTOUT_MODE_APPLY &&
           dst->legal_basis.common_law != PS_COMMON_LAW_ANONYMISED;
}

static void plan_warn(struct ps_plan *plan, const struct ps_policy_doc *doc,
                      const struct ps_policy_rule *rule, const char *fmt, const char *path,
                      const char *extra)
{
    char msg[PS_ERROR_MSG_MAX], line[PS_ERROR_MSG_MAX + PS_ERROR_FILE_MAX + 64];
    char **grown = realloc(plan->warnings, (plan->warning_count + 1) * sizeof(*grown));
    if (!grown) {
        return; /* a warning lost to memory pressure is not worth failing the load */
    }
    plan->warnings = grown;
    snprintf(msg, sizeof(msg), fmt, path, extra ? extra : "");
    snprintf(line, sizeof(line), "%s:%d:%d: warning: destination '%s': %s", doc->file,
             rule ? rule->line : plan->dst->line, rule ? rule->col : plan->dst->col,
             plan->dst->name, msg);
    if ((plan->warnings[plan->warning_count] = strdup(line))) {
        plan->warning_count++;
    }
}

static int is_leaf(const struct ps_schema_node *node)
{
    return node->type != PS_TYPE_RECORD && node->type != PS_TYPE_ARRAY &&
           node->type != PS_TYPE_MAP;
}

/* An array's items (and a map's values) are the same field as the array. */
static uint32_t effective_tags(const struct ps_schema *schema, int index)
{
    const struct ps_schema_node *node = ps_schema_node(schema, index);
    uint32_t tags = node->tags;
    if (node->parent >= 0) {
        const struct ps_schema_node *parent = ps_schema_node(schema, node->parent);
        if (parent->type == PS_TYPE_ARRAY || parent->type == PS_TYPE_MAP) {
            tags |= effective_tags(schema, node->parent);
        }
    }
    return tags;
}

int ps_plan_is_leaf(const struct ps_schema_node *node)
{
    return is_leaf(node);
}

uint32_t ps_plan_field_tags(const struct ps_schema *schema, int index)
{
    return effective_tags(schema, index);
}

static ps_err_t rule_error(const struct ps_policy_doc *doc, const struct ps_policy_destination *dst,
                           const struct ps_policy_rule *rule, struct ps_error *err,
                           const char *fmt, const char *path, const char *extra)
{
    char msg[PS_ERROR_MSG_MAX];
    snprintf(msg, sizeof(msg), fmt, path, extra ? extra : "");
    int line = rule ? rule->line : dst->line;
    int col = rule ? rule->col : dst->col;
    return ps_error_set_at(err, PS_ERR_CONFIG, doc->file, line, col, "destination '%s': %s",
                           dst->name, msg);
}

static const struct ps_policy_rule *path_rule(const struct ps_policy_destination *dst,
                                              const char *path)
{
    for (size_t i = 0; i < dst->rule_count; i++) {
        if (dst->rules[i].path && strcmp(dst->rules[i].path, path) == 0) {
            return &dst->rules[i];
        }
    }
    return NULL;
}

static ps_err_t tag_rule(const struct ps_policy_doc *doc, const struct ps_policy_destination *dst,
                         const char *path, uint32_t tags, const struct ps_policy_rule **rule_p,
                         struct ps_error *err)
{
    const struct ps_policy_rule *specific = NULL, *pii = NULL;
    for (size_t i = 0; i < dst->rule_count; i++) {
        const struct ps_policy_rule *r = &dst->rules[i];
        if (r->tag < 0 || !(tags & PS_TAG_BIT(r->tag))) {
            continue;
        }
        if (r->tag == PS_TAG_PII) {
            pii = pii ? pii : r;
        } else if (!specific) {
            specific = r;
        } else if (specific->action != r->action || specific->to != r->to) {
            char both[96];
            snprintf(both, sizeof(both), "%s and %s", ps_tag_name(specific->tag),
                     ps_tag_name(r->tag));
            return rule_error(doc, dst, r, err,
                              "field '%s' has tags %s whose rules disagree "
                              "(add a rule with path: for this field)", path, both);
        }
    }
    *rule_p = specific ? specific : pii;
    return PS_OK;
}

/* The specific tag a pseudonym's kind comes from when a path rule asks for it. */
static int kind_tag(uint32_t tags)
{
    for (int t = 0; t < PS_TAG_COUNT; t++) {
        if (t != PS_TAG_PII && (tags & PS_TAG_BIT(t))) {
            return t;
        }
    }
    return -1;
}

static int date_like(const struct ps_schema_node *node)
{
    return node->type == PS_TYPE_STRING ||
           (node->type == PS_TYPE_INT && node->logical == PS_LOGICAL_DATE) ||
           (node->type == PS_TYPE_LONG && (node->logical == PS_LOGICAL_TIMESTAMP_MILLIS ||
                                           node->logical == PS_LOGICAL_TIMESTAMP_MICROS));
}

/* Checks that a transform suits a leaf and fills the projection entry. */
static ps_err_t leaf_spec(const struct ps_policy_doc *doc, const struct ps_policy_destination *dst,
                          const struct ps_schema_node *node, uint32_t tags,
                          struct ps_plan_node *pn, struct ps_project_field *spec,
                          struct ps_error *err)
{
    const char *path = node->path;
    int is_string = node->type == PS_TYPE_STRING;
    memset(spec, 0, sizeof(*spec));
    switch (pn->action) {
    case PS_ACTION_KEEP:
        spec->op = PS_PROJECT_KEEP;
        return PS_OK;
    case PS_ACTION_DROP:
        spec->op = PS_PROJECT_DROP;
        return PS_OK;
    case PS_ACTION_PSEUDONYMISE: {
        if (!is_string) {
            return rule_error(doc, dst, pn->rule, err,
                              "pseudonymise needs a string field, '%s' is not one%s", path, NULL);
        }
        int tag = pn->rule && pn->rule->tag >= 0 && pn->rule->tag != PS_TAG_PII
                      ? pn->rule->tag : kind_tag(tags);
        if (tag < 0) {
            return rule_error(doc, dst, pn->rule, err,
                              "field '%s' has no tag to name its pseudonym kind "
                              "(tag the field in its schema)%s", path, NULL);
        }
        if (!dst->pseudonym_domain) {
            return rule_error(doc, dst, pn->rule, err,
                              "pseudonymising '%s' needs a pseudonym_domain%s", path, NULL);
        }
        pn->kind = ps_tag_kind(tag);
        spec->op = PS_PROJECT_MAP;
        spec->out_type = PS_TYPE_STRING;
        spec->out_doc = "pseudonym: key id, '.', base32 HMAC-SHA256 (DESIGN.md section 6)";
        return PS_OK;
    }
    case PS_ACTION_GENERALISE:
        spec->op = PS_PROJECT_MAP;
        spec->out_tags = tags & ~PS_TAG_BIT(PS_TAG_PII);
        if (pn->to == PS_GRAN_YEAR || pn->to == PS_GRAN_YEAR_MONTH) {
            if (!date_like(node)) {
                return rule_error(doc, dst, pn->rule, err,
                                  "generalise to a year or month needs a date, timestamp or "
                                  "ISO text field, '%s' is not one%s", path, NULL);
            }
            spec->out_type = pn->to == PS_GRAN_YEAR ? PS_TYPE_INT : PS_TYPE_STRING;
            spec->out_doc = pn->to == PS_GRAN_YEAR ? "generalised to the year"
                                                   : "generalised to YYYY-MM";
            return PS_OK;
        }
        if (pn->to == PS_GRAN_AGE_BAND) {
            if (!date_like(node)) {
                return rule_error(doc, dst, pn->rule, err,
                                  "generalise to an age band needs a birth date field, '%s' is "
                                  "not a date%s", path, NULL);
            }
            spec->out_type = PS_TYPE_STRING;
            spec->out_tags = 0;
            spec->out_doc = "age band at the event's time (5-year bands, 90+)";
            return PS_OK;
        }
        if (pn->to == PS_GRAN_POSTCODE_DISTRICT || pn->to == PS_GRAN_POSTCODE_SECTOR) {
            if (!is_string) {
                return rule_error(doc, dst, pn->rule, err,
                                  "generalise to a postcode district or sector needs a string "
                                  "field, '%s' is not one%s", path, NULL);
            }
            spec->out_type = PS_TYPE_STRING;
            spec->out_doc = pn->to == PS_GRAN_POSTCODE_DISTRICT
                                ? "generalised to the postcode district"
                                : "generalised to the postcode sector";
            return PS_OK;
        }
        return rule_error(doc, dst, pn->rule, err,
                          "generalise of '%s' needs 'to:' (year, year_month, district, "
                          "sector)%s", path, NULL);
    case PS_ACTION_DATE_SHIFT:
        if (!date_like(node)) {
            return rule_error(doc, dst, pn->rule, err,
                              "date_shift needs a date, timestamp or ISO text field, '%s' is "
                              "not one%s", path, NULL);
        }
        if (!dst->pseudonym_domain) {
            return rule_error(doc, dst, pn->rule, err,
                              "date_shift of '%s' needs a pseudonym_domain (the shift is derived "
                              "from the patient's pseudonym)%s", path, NULL);
        }
        spec->op = PS_PROJECT_MAP;
        spec->out_type = node->type;
        spec->out_logical = node->logical;
        spec->out_tags = tags & ~PS_TAG_BIT(PS_TAG_PII);
        spec->out_doc = "shifted by a per-patient offset (intervals between events survive)";
        return PS_OK;
    case PS_ACTION_REDACT:
        if (!is_string) {
            return rule_error(doc, dst, pn->rule, err,
                              "redact needs a string field, '%s' is not one%s", path, NULL);
        }
        spec->op = PS_PROJECT_MAP;
        spec->out_type = PS_TYPE_STRING;
        spec->out_doc = "redacted";
        return PS_OK;
    default:
        return rule_error(doc, dst, pn->rule, err, "unknown action on '%s'%s", path, NULL);
    }
}

/* "Anonymised in line with the ICO code": no pseudonym (pseudonymised data is
 * personal data) and no quasi-identifier at full precision. Sex and ethnic
 * category are categorical already and may stay. */
static ps_err_t check_anonymised(const struct ps_policy_doc *doc,
                                 const struct ps_policy_destination *dst,
                                 const struct ps_schema_node *node, uint32_t tags,
                                 const struct ps_plan_node *pn, struct ps_error *err)
{
    if (pn->action == PS_ACTION_PSEUDONYMISE) {
        return rule_error(doc, dst, pn->rule, err,
                          "claims anonymised but pseudonymises '%s'; pseudonymised data is "
                          "personal data (drop the field, or change the legal basis)%s",
                          node->path, NULL);
    }
    if (pn->action != PS_ACTION_KEEP && pn->action != PS_ACTION_DATE_SHIFT) {
        return PS_OK;
    }
    for (int t = 0; t < PS_TAG_COUNT; t++) {
        if ((tags & PS_TAG_BIT(t)) && ps_tag_class_of(t) == PS_TAG_CLASS_QUASI &&
            t != PS_TAG_SEX && t != PS_TAG_ETHNICITY) {
            return rule_error(doc, dst, pn->rule, err,
                              "claims anonymised but keeps quasi-identifier '%s' (%s) at full "
                              "precision (generalise or drop it)", node->path, ps_tag_name(t));
        }
    }
    return PS_OK;
}

/* Caldicott and common law: a direct identifier leaves in clear only for the
 * direct care team, or on explicit consent or section 251 support. */
static ps_err_t check_clear_identifier(const struct ps_policy_doc *doc,
                                       const struct ps_policy_destination *dst,
                                       const struct ps_schema_node *node, uint32_t tags,
                                       const struct ps_plan_node *pn, struct ps_error *err)
{
    enum ps_common_law basis = dst->legal_basis.common_law;
    if (basis == PS_COMMON_LAW_ANONYMISED) {
        ps_err_t rc = check_anonymised(doc, dst, node, tags, pn, err);
        if (rc != PS_OK) {
            return rc;
        }
    }
    if (ps_plan_is_direct_care(dst) || pn->action != PS_ACTION_KEEP ||
        basis == PS_COMMON_LAW_EXPLICIT_CONSENT || basis == PS_COMMON_LAW_S251_SUPPORT) {
        return PS_OK;
    }
    for (int t = 0; t < PS_TAG_COUNT; t++) {
        if ((tags & PS_TAG_BIT(t)) &&
            (ps_tag_class_of(t) == PS_TAG_CLASS_DIRECT || t == PS_TAG_POSTCODE)) {
            return rule_error(doc, dst, pn->rule, err,
                              "field '%s' (%s) would leave in clear; for this purpose and "
                              "legal basis pseudonymise, generalise or drop it",
                              node->path, ps_tag_name(t));
        }
    }
    return PS_OK;
}

static ps_err_t decide_nodes(const struct ps_policy_doc *doc,
                             const struct ps_policy_destination *dst,
                             const struct ps_schema *schema, struct ps_plan_node *nodes,
                             const struct ps_policy_rule **passed, struct ps_error *err)
{
    size_t count = ps_schema_node_count(schema);
    for (size_t i = 0; i < count; i++) {
        const struct ps_schema_node *node = ps_schema_node(schema, (int)i);
        uint32_t tags = effective_tags(schema, (int)i);
        const struct ps_policy_rule *inherited = node->parent >= 0 ? passed[node->parent] : NULL;
        const struct ps_policy_rule *rule = path_rule(dst, node->path);
        if (rule && !is_leaf(node) && rule->action != PS_ACTION_KEEP &&
            rule->action != PS_ACTION_DROP) {
            return rule_error(doc, dst, rule, err,
                              "'%s' is a record or list: only keep or drop apply to it%s",
                              node->path, NULL);
        }
        if (!rule) {
            ps_err_t rc = tag_rule(doc, dst, node->path, tags, &rule, err);
            if (rc != PS_OK) {
                return rc;
            }
            /* A tag's transform acts on the leaves carrying the tag, not on the structure. */
            if (rule && !is_leaf(node) && rule->action != PS_ACTION_KEEP &&
                rule->action != PS_ACTION_DROP) {
                rule = NULL;
            }
        }
        struct ps_plan_node *pn = &nodes[i];
        memset(pn, 0, sizeof(*pn));
        if (rule) {
            pn->action = rule->action;
            pn->to = rule->to;
            pn->rule = rule;
        } else if (inherited) {
            pn->action = inherited->action;
            pn->rule = inherited;
            pn->inherited = 1;
        } else {
            pn->action = dst->default_action;
        }
        if (node->type == PS_TYPE_UNION && pn->action != PS_ACTION_KEEP &&
            pn->action != PS_ACTION_DROP) {
            return rule_error(doc, dst, pn->rule, err,
                              "'%s' is a union of several types: only keep or drop apply%s",
                              node->path, NULL);
        }
        passed[i] = (rule && (rule->action == PS_ACTION_KEEP || rule->action == PS_ACTION_DROP))
                        ? rule : inherited;
    }
    return PS_OK;
}

static void leaf_warnings(struct ps_plan *plan, const struct ps_policy_doc *doc,
                          const struct ps_schema_node *node, uint32_t tags,
                          const struct ps_plan_node *pn)
{
    if (ps_plan_is_direct_care(plan->dst) || pn->action != PS_ACTION_KEEP) {
        return;
    }
    if (tags & (PS_TAG_BIT(PS_TAG_BIRTH_DATE) | PS_TAG_BIT(PS_TAG_DEATH_DATE))) {
        plan_warn(plan, doc, pn->rule,
                  "'%s' is kept to the day for %s; year, year_month or age_band is usually "
                  "enough", node->path, ps_purpose_name(plan->dst->purpose));
    }
    if (tags & PS_TAG_BIT(PS_TAG_FREE_TEXT)) {
        plan_warn(plan, doc, pn->rule,
                  "free text '%s' can hold any identifier; drop or redact it for %s",
                  node->path, ps_purpose_name(plan->dst->purpose));
    }
}

static ps_err_t build_specs(const struct ps_policy_doc *doc, struct ps_plan *plan,
                            struct ps_project_field *spec, struct ps_error *err)
{
    const struct ps_policy_destination *dst = plan->dst;
    const struct ps_schema *schema = plan->schema;
    struct ps_plan_node *nodes = plan->nodes;
    int count = (int)ps_schema_node_count(schema);
    if (ps_plan_is_direct_care(dst) && dst->default_action == PS_ACTION_KEEP &&
        dst->rule_count == 0) {
        plan_warn(plan, doc, NULL,
                  "keeps every field and names nothing it does not need%s (Caldicott: use the "
                  "minimum necessary; add rules that drop what the team does not use)", "", NULL);
    }
    /* Leaves first; then structure, children before parents (reverse preorder). */
    for (int i = 0; i < count; i++) {
        const struct ps_schema_node *node = ps_schema_node(schema, i);
        if (!is_leaf(node)) {
            spec[i].op = PS_PROJECT_DROP;
            continue;
        }
        uint32_t tags = effective_tags(schema, i);
        ps_err_t rc = leaf_spec(doc, dst, node, tags, &nodes[i], &spec[i], err);
        if (rc == PS_OK) {
            rc = check_clear_identifier(doc, dst, node, tags, &nodes[i], err);
        }
        if (rc != PS_OK) {
            return rc;
        }
        leaf_warnings(plan, doc, node, tags, &nodes[i]);
    }
    for (int i = count - 1; i > 0; i--) {
        const struct ps_schema_node *node = ps_schema_node(schema, i);
        if (spec[i].op != PS_PROJECT_DROP && node->parent >= 0) {
            spec[node->parent].op = PS_PROJECT_KEEP;
        }
    }
    for (int i = 0; i < count; i++) {
        const struct ps_schema_node *node = ps_schema_node(schema, i);
        if (!is_leaf(node)) {
            nodes[i].action = spec[i].op == PS_PROJECT_KEEP ? PS_ACTION_KEEP : PS_ACTION_DROP;
        }
    }
    spec[0].op = PS_PROJECT_KEEP;
    return PS_OK;
}

static ps_err_t list_add(const char ***list, size_t *count, const char *item)
{
    const char **grown = realloc(*list, (*count + 1) * sizeof(*grown));
    if (!grown) {
        return PS_ERR_NOMEM;
    }
    grown[(*count)++] = item;
    *list = grown;
    return PS_OK;
}

/* The audit's account: every leaf by what the destination receives. */
static ps_err_t build_fields(struct ps_plan *plan, const struct ps_project_field *spec,
                             struct ps_error *err)
{
    struct ps_plan_fields *f = &plan->fields;
    ps_err_t rc = PS_OK;
    for (int i = 0; rc == PS_OK && i < (int)ps_schema_node_count(plan->schema); i++) {
        const struct ps_schema_node *node = ps_schema_node(plan->schema, i);
        const struct ps_plan_node *pn = &plan->nodes[i];
        if (!is_leaf(node)) {
            continue;
        }
        if (spec[i].op == PS_PROJECT_DROP) {
            rc = list_add(&f->dropped, &f->dropped_count, node->path);
        } else if (pn->action == PS_ACTION_KEEP) {
            rc = list_add(&f->kept, &f->kept_count, node->path);
        } else if (pn->action == PS_ACTION_PSEUDONYMISE) {
            rc = list_add(&f->pseudonymised, &f->pseudonymised_count, node->path);
        } else {
            char text[512];
            const char *how = pn->action == PS_ACTION_GENERALISE ? ps_granularity_name(pn->to)
                                                                 : ps_action_name(pn->action);
            snprintf(text, sizeof(text), "%s:%s", node->path, how);
            char *owned = strdup(text);
            rc = owned ? list_add((const char ***)&f->generalised, &f->generalised_count, owned)
                       : PS_ERR_NOMEM;
            if (rc != PS_OK) {
                free(owned);
            }
        }
    }
    return rc == PS_OK ? PS_OK : ps_error_set(err, rc, "out of memory compiling a plan");
}

static ps_err_t add_node(struct ps_plan_predicate *pp, int node)
{
    int *grown = realloc(pp->nodes, (pp->node_count + 1) * sizeof(*grown));
    if (!grown) {
        return PS_ERR_NOMEM;
    }
    grown[pp->node_count++] = node;
    pp->nodes = grown;
    return PS_OK;
}

/* Binds each withhold_when condition to the leaves of this schema it reads. */
static ps_err_t bind_predicate(const struct ps_policy_doc *doc, struct ps_plan *plan,
                               struct ps_plan_predicate *pp, struct ps_error *err)
{
    const struct ps_policy_predicate *pred = pp->pred;
    const struct ps_schema *schema = plan->schema;
    ps_err_t rc = PS_OK;
    if (pred->kind == PS_PRED_EVENT_TYPE_IN || pred->kind == PS_PRED_EVENT_TYPE_NOT_IN) {
        return plan->type_node >= 0 ? add_node(pp, plan->type_node) : PS_OK;
    }
    if (pred->kind == PS_PRED_CODES_IN && pred->tag >= 0) {
        for (int i = 0; rc == PS_OK && i < (int)ps_schema_node_count(schema); i++) {
            const struct ps_schema_node *node = ps_schema_node(schema, i);
            if (is_leaf(node) && node->type == PS_TYPE_STRING &&
                (effective_tags(schema, i) & PS_TAG_BIT(pred->tag))) {
                rc = add_node(pp, i);
            }
        }
        return rc;
    }
    int i = ps_schema_find(schema, pred->path);
    if (i < 0) {
        return PS_OK;
    }
    if (!is_leaf(ps_schema_node(schema, i))) {
        return ps_error_set_at(err, PS_ERR_CONFIG, doc->file, pred->line, pred->col,
                               "destination '%s': withhold_when names '%s', a record or list "
                               "(name one of its fields)", plan->dst->name, pred->path);
    }
    return add_node(pp, i);
}

static ps_err_t bind_predicates(const struct ps_policy_doc *doc, struct ps_plan *plan,
                                struct ps_error *err)
{
    size_t n = plan->dst->predicate_count;
    if (n == 0) {
        return PS_OK;
    }
    plan->predicates = calloc(n, sizeof(*plan->predicates));
    if (!plan->predicates) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory compiling a plan");
    }
    for (size_t p = 0; p < n; p++) {
        plan->predicates[p].pred = &plan->dst->predicates[p];
        ps_err_t rc = bind_predicate(doc, plan, &plan->predicates[p], err);
        if (rc == PS_ERR_NOMEM) {
            return ps_error_set(err, rc, "out of memory compiling a plan");
        }
        if (rc != PS_OK) {
            return rc;
        }
    }
    return PS_OK;
}

static int attribute_node(const struct ps_schema *schema, const char *name)
{
    const char *path = ps_schema_attribute(schema, name);
    return path ? ps_schema_find(schema, path) : -1;
}

static void derived_namespace(const struct ps_policy_destination *dst, char *buf, size_t size)
{
    int n = snprintf(buf, size, "uk.nhs.pseudostream.derived.d_");
    for (const char *p = dst->name; *p && (size_t)n + 1 < size; p++) {
        buf[n++] = isalnum((unsigned char)*p) ? *p : '_';
    }
    buf[n] = '\0';
}

ps_err_t ps_plan_compile(const struct ps_policy_doc *doc, const struct ps_policy_destination *dst,
                         const struct ps_schema *schema, struct ps_plan **plan_p,
                         struct ps_error *err)
{
    size_t count = ps_schema_node_count(schema);
    struct ps_plan *plan = calloc(1, sizeof(*plan));
    const struct ps_policy_rule **passed = calloc(count, sizeof(*passed));
    struct ps_project_field *spec = calloc(count, sizeof(*spec));
    ps_err_t rc = PS_ERR_NOMEM;
    if (!plan || !passed || !spec || !(plan->nodes = calloc(count, sizeof(*plan->nodes)))) {
        ps_error_set(err, rc, "out of memory compiling destination '%s'", dst->name);
        goto cleanup;
    }
    plan->schema = schema;
    plan->dst = dst;
    rc = decide_nodes(doc, dst, schema, plan->nodes, passed, err);
    if (rc == PS_OK) {
        rc = build_specs(doc, plan, spec, err);
    }
    if (rc == PS_OK) {
        rc = build_fields(plan, spec, err);
    }
    if (rc == PS_OK) {
        char ns[160];
        derived_namespace(dst, ns, sizeof(ns));
        rc = ps_projection_new(schema, spec, ns, &plan->projection, err);
        if (rc != PS_OK) {
            ps_error_prefix(err, "destination '%s': schema '%s'", dst->name,
                            ps_schema_name(schema));
        }
    }
    if (rc != PS_OK) {
        goto cleanup;
    }
    plan->subject_node = attribute_node(schema, "pseudostream:subject");
    plan->time_node = attribute_node(schema, "pseudostream:event_time");
    plan->id_node = attribute_node(schema, "pseudostream:event_id");
    plan->type_node = attribute_node(schema, "pseudostream:event_type");
    rc = bind_predicates(doc, plan, err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    *plan_p = plan;
    plan = NULL;
cleanup:
    ps_plan_destroy(plan);
    free(passed);
    free(spec);
    return rc;
}

void ps_plan_destroy(struct ps_plan *plan)
{
    if (!plan) {
        return;
    }
    ps_projection_destroy(plan->projection);
    for (size_t p = 0; plan->predicates && p < plan->dst->predicate_count; p++) {
        free(plan->predicates[p].nodes);
    }
    free(plan->predicates);
    for (size_t i = 0; i < plan->fields.generalised_count; i++) {
        free(plan->fields.generalised[i]);
    }
    free(plan->fields.generalised);
    free(plan->fields.kept);
    free(plan->fields.pseudonymised);
    free(plan->fields.dropped);
    for (size_t i = 0; i < plan->warning_count; i++) {
        free(plan->warnings[i]);
    }
    free(plan->warnings);
    free(plan->nodes);
    free(plan);
}
