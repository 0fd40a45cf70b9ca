#include "ps_policy_doc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ps_codeset_load.h"
#include "ps_tag.h"
#include "ps_yaml.h"

/* A policy is a few kilobytes; a megabyte is a mistake, not a policy. */
#define POLICY_MAX_BYTES (1024 * 1024)
#define POLICY_VERSION 1

#define N(table) (sizeof(table) / sizeof((table)[0]))

/* ------------------------------------------------------------ enum names */

static const cyaml_strval_t purpose_strvals[] = {
    {"direct_care", PS_PURPOSE_DIRECT_CARE},
    {"planning", PS_PURPOSE_PLANNING},
    {"commissioning", PS_PURPOSE_COMMISSIONING},
    {"research", PS_PURPOSE_RESEARCH},
    {"service_evaluation", PS_PURPOSE_SERVICE_EVALUATION},
    {"risk_stratification", PS_PURPOSE_RISK_STRATIFICATION},
};

static const cyaml_strval_t common_law_strvals[] = {
    {"implied_consent", PS_COMMON_LAW_IMPLIED_CONSENT},
    {"explicit_consent", PS_COMMON_LAW_EXPLICIT_CONSENT},
    {"s251_support", PS_COMMON_LAW_S251_SUPPORT},
    {"legal_obligation", PS_COMMON_LAW_LEGAL_OBLIGATION},
    {"overriding_public_interest", PS_COMMON_LAW_OVERRIDING_PUBLIC_INTEREST},
    {"anonymised", PS_COMMON_LAW_ANONYMISED},
};

static const cyaml_strval_t action_strvals[] = {
    {"keep", PS_ACTION_KEEP},
    {"drop", PS_ACTION_DROP},
    {"pseudonymise", PS_ACTION_PSEUDONYMISE},
    {"generalise", PS_ACTION_GENERALISE},
    {"redact", PS_ACTION_REDACT},
    {"date_shift", PS_ACTION_DATE_SHIFT},
};

/* A destination's default may only keep or drop: the other actions need a
 * field to act on. */
static const cyaml_strval_t default_strvals[] = {
    {"keep", PS_ACTION_KEEP},
    {"drop", PS_ACTION_DROP},
};

/* PS_GRAN_NONE has no name in YAML: it means "no 'to'". */
static const cyaml_strval_t granularity_strvals[] = {
    {"year", PS_GRAN_YEAR},
    {"year_month", PS_GRAN_YEAR_MONTH},
    {"district", PS_GRAN_POSTCODE_DISTRICT},
    {"sector", PS_GRAN_POSTCODE_SECTOR},
    {"age_band", PS_GRAN_AGE_BAND},
};

static const cyaml_strval_t optout_strvals[] = {
    {"apply", PS_OPTOUT_MODE_APPLY},
    {"exempt", PS_OPTOUT_MODE_EXEMPT},
};

static const char *const predicate_kind_names[] = {
    "event_type_in", "event_type_not_in", "codes_in", "field_present", "field_absent"};

_Static_assert(sizeof(purpose_strvals) / sizeof(purpose_strvals[0]) == PS_PURPOSE_COUNT,
               "every purpose has a name");
_Static_assert(sizeof(common_law_strvals) / sizeof(common_law_strvals[0]) ==
                   PS_COMMON_LAW_COUNT,
               "every common-law basis has a name");
_Static_assert(sizeof(action_strvals) / sizeof(action_strvals[0]) == PS_ACTION_COUNT,
               "every action has a name");
_Static_assert(sizeof(granularity_strvals) / sizeof(granularity_strvals[0]) ==
                   PS_GRAN_COUNT - 1,
               "every granularity but NONE has a name");

/* The tag names come from ps_tag, the one owner of the vocabulary; the table
 * libcyaml needs is filled from it once. */
static cyaml_strval_t tag_strvals[PS_TAG_COUNT];
static pthread_once_t tag_strvals_once = PTHREAD_ONCE_INIT;

static void tag_strvals_fill(void)
{
    const char *const *names = ps_tag_names();
    for (int i = 0; i < PS_TAG_COUNT; i++) {
        tag_strvals[i].str = names[i];
        tag_strvals[i].val = i;
    }
}

static const char *strval_name(const cyaml_strval_t *table, size_t count, int64_t v)
{
    for (size_t i = 0; i < count; i++) {
        if (table[i].val == v) {
            return table[i].str;
        }
    }
    return "?";
}

#define STRVAL_NAME(table, v) strval_name((table), sizeof(table) / sizeof((table)[0]), (v))

const char *ps_purpose_name(enum ps_purpose v)
{
    return STRVAL_NAME(purpose_strvals, v);
}

const char *ps_common_law_name(enum ps_common_law v)
{
    return STRVAL_NAME(common_law_strvals, v);
}

const char *ps_action_name(enum ps_action v)
{
    return STRVAL_NAME(action_strvals, v);
}

const char *ps_predicate_kind_name(enum ps_predicate_kind v)
{
    return (unsigned)v < N(predicate_kind_names) ? predicate_kind_names[v] : "?";
}

const char *ps_granularity_name(enum ps_granularity v)
{
    if (v == PS_GRAN_NONE) {
        return "none";
    }
    return STRVAL_NAME(granularity_strvals, v);
}

/* ---------------------------------------------------------------- schema */

/* The document as libcyaml loads it: optional values are pointers so that
 * "absent" can be told from the first enum value, and the version is text so
 * that it is parsed strictly here. */
struct raw_rule {
    int *tag;
    char *path;
    int action;
    int *to;
    char *window_days;
};

struct raw_codes_in {
    int *tag;
    char *path;
    char *codeset;
};

struct raw_predicate {
    char **event_type_in;
    unsigned event_type_in_count;
    char **event_type_not_in;
    unsigned event_type_not_in_count;
    struct raw_codes_in *codes_in;
    char *field_present;
    char *field_absent;
};

struct raw_escrow {
    char *public_key;
    char *second_public_key;
};

struct raw_legal_basis {
    char *article6;
    char *article9;
    int common_law;
    char *reference;
};

struct raw_destination {
    char *name;
    char *topic;
    int purpose;
    struct raw_legal_basis *legal_basis;
    char *pseudonym_domain;
    int *default_action;
    int *opt_out;
    char **may_link_with;
    unsigned may_link_with_count;
    struct raw_escrow *escrow;
    struct raw_rule *rules;
    unsigned rules_count;
    struct raw_predicate *withhold_when;
    unsigned withhold_when_count;
};

struct raw_doc {
    char *version;
    struct raw_destination *destinations;
    unsigned destinations_count;
};

#define STR_REQ CYAML_FLAG_POINTER
#define STR_OPT (CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL)
#define ENUM_REQ CYAML_FLAG_STRICT
#define ENUM_OPT (CYAML_FLAG_STRICT | CYAML_FLAG_OPTIONAL)

static const cyaml_schema_field_t rule_fields[] = {
    CYAML_FIELD_ENUM_PTR("tag", ENUM_OPT, struct raw_rule, tag, tag_strvals, PS_TAG_COUNT),
    CYAML_FIELD_STRING_PTR("path", STR_OPT, struct raw_rule, path, 1, CYAML_UNLIMITED),
    CYAML_FIELD_ENUM("action", ENUM_REQ, struct raw_rule, action, action_strvals,
                     N(action_strvals)),
    CYAML_FIELD_ENUM_PTR("to", ENUM_OPT, struct raw_rule, to, granularity_strvals,
                         N(granularity_strvals)),
    CYAML_FIELD_STRING_PTR("window_days", STR_OPT, struct raw_rule, window_days, 1,
                           CYAML_UNLIMITED),
    CYAML_FIELD_END};

static const cyaml_schema_value_t string_value = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 1, CYAML_UNLIMITED),
};

static const cyaml_schema_field_t codes_in_fields[] = {
    CYAML_FIELD_ENUM_PTR("tag", ENUM_OPT, struct raw_codes_in, tag, tag_strvals, PS_TAG_COUNT),
    CYAML_FIELD_STRING_PTR("path", STR_OPT, struct raw_codes_in, path, 1, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("codeset", STR_REQ, struct raw_codes_in, codeset, 1, CYAML_UNLIMITED),
    CYAML_FIELD_END};

static const cyaml_schema_field_t predicate_fields[] = {
    CYAML_FIELD_SEQUENCE("event_type_in", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                         struct raw_predicate, event_type_in, &string_value, 1, CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("event_type_not_in", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                         struct raw_predicate, event_type_not_in, &string_value, 1,
                         CYAML_UNLIMITED),
    CYAML_FIELD_MAPPING_PTR("codes_in", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                            struct raw_predicate, codes_in, codes_in_fields),
    CYAML_FIELD_STRING_PTR("field_present", STR_OPT, struct raw_predicate, field_present, 1,
                           CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("field_absent", STR_OPT, struct raw_predicate, field_absent, 1,
                           CYAML_UNLIMITED),
    CYAML_FIELD_END};

static const cyaml_schema_value_t predicate_value = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_predicate, predicate_fields),
};

static const cyaml_schema_field_t escrow_fields[] = {
    CYAML_FIELD_STRING_PTR("public_key", STR_REQ, struct raw_escrow, public_key, 1,
                           CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("second_public_key", STR_OPT, struct raw_escrow, second_public_key, 1,
                           CYAML_UNLIMITED),
    CYAML_FIELD_END};

static const cyaml_schema_value_t rule_value = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_rule, rule_fields),
};

static const cyaml_schema_field_t legal_basis_fields[] = {
    CYAML_FIELD_STRING_PTR("article6", STR_REQ, struct raw_legal_basis, article6, 1,
                           CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("article9", STR_REQ, struct raw_legal_basis, article9, 1,
                           CYAML_UNLIMITED),
    CYAML_FIELD_ENUM("common_law", ENUM_REQ, struct raw_legal_basis, common_law,
                     common_law_strvals, N(common_law_strvals)),
    CYAML_FIELD_STRING_PTR("reference", STR_OPT, struct raw_legal_basis, reference, 1,
                           CYAML_UNLIMITED),
    CYAML_FIELD_END};

static const cyaml_schema_field_t destination_fields[] = {
    CYAML_FIELD_STRING_PTR("name", STR_REQ, struct raw_destination, name, 1, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("topic", STR_REQ, struct raw_destination, topic, 1, CYAML_UNLIMITED),
    CYAML_FIELD_ENUM("purpose", ENUM_REQ, struct raw_destination, purpose, purpose_strvals,
                     N(purpose_strvals)),
    CYAML_FIELD_MAPPING_PTR("legal_basis", CYAML_FLAG_POINTER, struct raw_destination,
                            legal_basis, legal_basis_fields),
    CYAML_FIELD_STRING_PTR("pseudonym_domain", STR_OPT, struct raw_destination,
                           pseudonym_domain, 1, CYAML_UNLIMITED),
    CYAML_FIELD_ENUM_PTR("default", ENUM_OPT, struct raw_destination, default_action,
                         default_strvals, N(default_strvals)),
    CYAML_FIELD_ENUM_PTR("opt_out", ENUM_OPT, struct raw_destination, opt_out, optout_strvals,
                         N(optout_strvals)),
    CYAML_FIELD_SEQUENCE("may_link_with", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                         struct raw_destination, may_link_with, &string_value, 1,
                         CYAML_UNLIMITED),
    CYAML_FIELD_MAPPING_PTR("escrow", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                            struct raw_destination, escrow, escrow_fields),
    CYAML_FIELD_SEQUENCE("rules", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                         struct raw_destination, rules, &rule_value, 0, CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("withhold_when", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                         struct raw_destination, withhold_when, &predicate_value, 0,
                         CYAML_UNLIMITED),
    CYAML_FIELD_END};

static const cyaml_schema_value_t destination_value = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_destination, destination_fields),
};

static const cyaml_schema_field_t doc_fields[] = {
    CYAML_FIELD_STRING_PTR("version", STR_REQ, struct raw_doc, version, 1, CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("destinations", CYAML_FLAG_POINTER, struct raw_doc, destinations,
                         &destination_value, 1, CYAML_UNLIMITED),
    CYAML_FIELD_END};

static const cyaml_schema_value_t doc_value = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct raw_doc, doc_fields),
};

static const struct ps_yaml_hint doc_hints[] = {
    {"version", "add version: 1"},
    {"destinations", "add destinations: with at least one destination"},
    {"name", "add name: <short name of the destination>"},
    {"topic", "add topic: <kafka topic name>"},
    {"purpose", "add purpose: direct_care, planning, commissioning, research, "
                "service_evaluation or risk_stratification"},
    {"legal_basis", "add legal_basis: with article6, article9 and common_law"},
    {"article6", "add article6: <UK GDPR Article 6(1) basis, e.g. public_task>"},
    {"article9", "add article9: <UK GDPR Article 9(2) condition, e.g. health_social_care>"},
    {"common_law", "add common_law: implied_consent, explicit_consent, s251_support, "
                   "legal_obligation, overriding_public_interest or anonymised"},
    {"action", "add action: keep, drop, pseudonymise, generalise, redact or date_shift"},
    {"codeset", "add codeset: <code set file, e.g. codesets/hiv.yaml>"},
    {"public_key", "add public_key: <file with the authority's base64 public key>"},
    {NULL, NULL}};

static const struct ps_yaml_doc_type doc_type = {
    .schema = &doc_value,
    .hints = doc_hints,
    .empty_fix = "write version: 1 and destinations:",
};

/* ------------------------------------------------------------ conversion */

static char *dup_opt(const char *s, int *oom)
{
    if (!s) {
        return NULL;
    }
    char *d = strdup(s);
    if (!d) {
        *oom = 1;
    }
    return d;
}

static ps_err_t convert_rule(const struct ps_yaml_file *yf, const struct ps_ynode *ynode,
                             size_t di, size_t ri, const struct raw_rule *raw,
                             struct ps_policy_rule *rule, struct ps_error *err)
{
    int oom = 0;
    if (raw->tag && raw->path) {
        return ps_yaml_error_at(yf, ynode, err,
                                "destinations[%zu].rules[%zu] names both a tag and a path "
                                "(keep one: a rule names a tag or a path)",
                                di, ri);
    }
    if (!raw->tag && !raw->path) {
        return ps_yaml_error_at(yf, ynode, err,
                                "destinations[%zu].rules[%zu] names neither a tag nor a path "
                                "(add tag: <TAG> or path: <field path>)",
                                di, ri);
    }
    if (raw->action == PS_ACTION_GENERALISE && !raw->to) {
        return ps_yaml_error_at(yf, ynode, err,
                                "destinations[%zu].rules[%zu] generalises but has no 'to' "
                                "(add to: year, year_month, age_band, district or sector)",
                                di, ri);
    }
    uint64_t window = PS_DATE_SHIFT_DEFAULT_DAYS;
    if (raw->window_days && raw->action != PS_ACTION_DATE_SHIFT) {
        return ps_yaml_error_at(yf, ps_ynode_key(ynode, "window_days"), err,
                                "destinations[%zu].rules[%zu].window_days is only for action: "
                                "date_shift (remove it or change the action)", di, ri);
    }
    if (raw->window_days && ps_yaml_parse_uint(raw->window_days, 1, 3650, &window) != 0) {
        return ps_yaml_error_at(yf, ps_ynode_get(ynode, "window_days"), err,
                                "destinations[%zu].rules[%zu].window_days must be a whole number "
                                "of days from 1 to 3650 (e.g. window_days: 180)", di, ri);
    }
    rule->window_days = (uint32_t)window;
    if (raw->action != PS_ACTION_GENERALISE && raw->to) {
        return ps_yaml_error_at(yf, ps_ynode_key(ynode, "to"), err,
                                "destinations[%zu].rules[%zu].to is only for action: generalise "
                                "(remove 'to' or change the action)",
                                di, ri);
    }
    rule->tag = raw->tag ? *raw->tag : -1;
    rule->path = dup_opt(raw->path, &oom);
    rule->action = (enum ps_action)raw->action;
    rule->to = raw->to ? (enum ps_granularity)*raw->to : PS_GRAN_NONE;
    rule->line = ynode ? ynode->line : 0;
    rule->col = ynode ? ynode->col : 0;
    if (oom) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory loading %s", yf->path);
    }
    return PS_OK;
}

/* A path written in the policy, relative to the policy file's folder. */
static char *resolve_relative(const char *policy_path, const char *path)
{
    const char *slash = strrchr(policy_path, '/');
    if (path[0] == '/' || !slash) {
        return strdup(path);
    }
    size_t dir = (size_t)(slash - policy_path) + 1;
    char *out = malloc(dir + strlen(path) + 1);
    if (out) {
        memcpy(out, policy_path, dir);
        strcpy(out + dir, path);
    }
    return out;
}

static ps_err_t copy_strings(char *const *in, unsigned count, char ***out_p, size_t *count_p)
{
    if (count == 0) {
        return PS_OK;
    }
    char **out = calloc(count, sizeof(*out));
    if (!out) {
        return PS_ERR_NOMEM;
    }
    *out_p = out;
    for (unsigned i = 0; i < count; i++) {
        *count_p = i + 1;
        if (!(out[i] = strdup(in[i]))) {
            return PS_ERR_NOMEM;
        }
    }
    return PS_OK;
}

static ps_err_t convert_codes_in(const struct ps_yaml_file *yf, const struct ps_ynode *ynode,
                                 size_t di, size_t pi, const struct raw_codes_in *raw,
                                 struct ps_policy_predicate *pred, struct ps_error *err)
{
    if ((raw->tag != NULL) == (raw->path != NULL)) {
        return ps_yaml_error_at(yf, ynode, err,
                                "destinations[%zu].withhold_when[%zu].codes_in names the code "
                                "field by tag or by path (write exactly one of them)", di, pi);
    }
    pred->kind = PS_PRED_CODES_IN;
    pred->tag = raw->tag ? *raw->tag : -1;
    if (raw->path && !(pred->path = strdup(raw->path))) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory loading %s", yf->path);
    }
    char *file = resolve_relative(yf->path, raw->codeset);
    if (!file) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory loading %s", yf->path);
    }
    ps_err_t rc = ps_codeset_load(file, &pred->codeset, err);
    free(file);
    if (rc != PS_OK) {
        const struct ps_ynode *at = ps_ynode_get(ynode, "codeset");
        char inner[PS_ERROR_MSG_MAX + PS_ERROR_FILE_MAX + 32];
        ps_error_format(err, inner, sizeof(inner));
        return ps_yaml_error_at(yf, at, err, "destinations[%zu].withhold_when[%zu]: code set: %s",
                                di, pi, inner);
    }
    return PS_OK;
}

static ps_err_t convert_predicate(const struct ps_yaml_file *yf, const struct ps_ynode *ynode,
                                  size_t di, size_t pi, const struct raw_predicate *raw,
                                  struct ps_policy_predicate *pred, struct ps_error *err)
{
    int kinds = (raw->event_type_in != NULL) + (raw->event_type_not_in != NULL) +
                (raw->codes_in != NULL) + (raw->field_present != NULL) +
                (raw->field_absent != NULL);
    pred->line = ynode ? ynode->line : 0;
    pred->col = ynode ? ynode->col : 0;
    pred->tag = -1;
    if (kinds != 1) {
        return ps_yaml_error_at(yf, ynode, err,
                                "destinations[%zu].withhold_when[%zu] must name exactly one "
                                "condition (event_type_in, event_type_not_in, codes_in, "
                                "field_present or field_absent)", di, pi);
    }
    ps_err_t rc = PS_OK;
    if (raw->codes_in) {
        return convert_codes_in(yf, ps_ynode_get(ynode, "codes_in"), di, pi, raw->codes_in, pred,
                                err);
    }
    if (raw->event_type_in || raw->event_type_not_in) {
        pred->kind = raw->event_type_in ? PS_PRED_EVENT_TYPE_IN : PS_PRED_EVENT_TYPE_NOT_IN;
        rc = raw->event_type_in
                 ? copy_strings(raw->event_type_in, raw->event_type_in_count, &pred->values,
                                &pred->value_count)
                 : copy_strings(raw->event_type_not_in, raw->event_type_not_in_count,
                                &pred->values, &pred->value_count);
    } else {
        pred->kind = raw->field_present ? PS_PRED_FIELD_PRESENT : PS_PRED_FIELD_ABSENT;
        pred->path = strdup(raw->field_present ? raw->field_present : raw->field_absent);
        rc = pred->path ? PS_OK : PS_ERR_NOMEM;
    }
    return rc == PS_OK ? PS_OK : ps_error_set(err, rc, "out of memory loading %s", yf->path);
}

static ps_err_t convert_extras(const struct ps_yaml_file *yf, const struct ps_ynode *ynode,
                               size_t di, const struct raw_destination *raw,
                               struct ps_policy_destination *dest, struct ps_error *err)
{
    dest->opt_out = raw->opt_out ? (enum ps_optout_mode)*raw->opt_out : PS_OPTOUT_MODE_APPLY;
    dest->opt_out_written = raw->opt_out != NULL;
    if (copy_strings(raw->may_link_with, raw->may_link_with_count, &dest->may_link_with,
                     &dest->may_link_count) != PS_OK) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory loading %s", yf->path);
    }
    if (raw->escrow) {
        dest->escrow_public_key = resolve_relative(yf->path, raw->escrow->public_key);
        if (raw->escrow->second_public_key) {
            dest->escrow_second_public_key =
                resolve_relative(yf->path, raw->escrow->second_public_key);
        }
        if (!dest->escrow_public_key ||
            (raw->escrow->second_public_key && !dest->escrow_second_public_key)) {
            return ps_error_set(err, PS_ERR_NOMEM, "out of memory loading %s", yf->path);
        }
    }
    if (raw->withhold_when_count == 0) {
        return PS_OK;
    }
    dest->predicates = calloc(raw->withhold_when_count, sizeof(*dest->predicates));
    if (!dest->predicates) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory loading %s", yf->path);
    }
    const struct ps_ynode *ypreds = ps_ynode_get(ynode, "withhold_when");
    for (size_t pi = 0; pi < raw->withhold_when_count; pi++) {
        dest->predicate_count = pi + 1;
        ps_err_t rc = convert_predicate(yf, ps_ynode_item(ypreds, pi), di, pi,
                                        &raw->withhold_when[pi], &dest->predicates[pi], err);
        if (rc != PS_OK) {
            return rc;
        }
    }
    return PS_OK;
}

static ps_err_t convert_destination(const struct ps_yaml_file *yf, const struct ps_ynode *ynode,
                                    size_t di, const struct raw_destination *raw,
                                    struct ps_policy_destination *dest, struct ps_error *err)
{
    int oom = 0;
    dest->line = ynode ? ynode->line : 0;
    dest->col = ynode ? ynode->col : 0;
    dest->name = dup_opt(raw->name, &oom);
    dest->topic = dup_opt(raw->topic, &oom);
    dest->purpose = (enum ps_purpose)raw->purpose;
    dest->legal_basis.article6 = dup_opt(raw->legal_basis->article6, &oom);
    dest->legal_basis.article9 = dup_opt(raw->legal_basis->article9, &oom);
    dest->legal_basis.common_law = (enum ps_common_law)raw->legal_basis->common_law;
    dest->legal_basis.reference = dup_opt(raw->legal_basis->reference, &oom);
    dest->pseudonym_domain = dup_opt(raw->pseudonym_domain, &oom);
    dest->default_action = raw->default_action ? (enum ps_action)*raw->default_action
                                               : PS_ACTION_DROP;
    if (oom) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory loading %s", yf->path);
    }
    ps_err_t extras = convert_extras(yf, ynode, di, raw, dest, err);
    if (extras != PS_OK) {
        return extras;
    }
    if (raw->rules_count == 0) {
        return PS_OK;
    }
    dest->rules = calloc(raw->rules_count, sizeof(*dest->rules));
    if (!dest->rules) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory loading %s", yf->path);
    }
    const struct ps_ynode *yrules = ps_ynode_get(ynode, "rules");
    for (size_t ri = 0; ri < raw->rules_count; ri++) {
        /* Counted as it goes, so destroy frees exactly what was filled. */
        dest->rule_count = ri + 1;
        ps_err_t rc = convert_rule(yf, ps_ynode_item(yrules, ri), di, ri, &raw->rules[ri],
                                   &dest->rules[ri], err);
        if (rc != PS_OK) {
            return rc;
        }
    }
    return PS_OK;
}

static ps_err_t convert_doc(const struct ps_yaml_file *yf, const struct raw_doc *raw,
                            struct ps_policy_doc *doc, struct ps_error *err)
{
    const struct ps_ynode *root = ps_yaml_file_root(yf);
    uint64_t version = 0;
    if (ps_yaml_parse_uint(raw->version, 0, UINT32_MAX, &version) != 0 ||
        version != POLICY_VERSION) {
        return ps_yaml_error_at(yf, ps_ynode_get(root, "version"), err,
                                "unsupported policy version (write version: %d)",
                                POLICY_VERSION);
    }
    doc->version = (unsigned)version;
    doc->destinations = calloc(raw->destinations_count, sizeof(*doc->destinations));
    if (!doc->destinations) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory loading %s", yf->path);
    }
    const struct ps_ynode *ydests = ps_ynode_get(root, "destinations");
    for (size_t di = 0; di < raw->destinations_count; di++) {
        doc->destination_count = di + 1;
        ps_err_t rc = convert_destination(yf, ps_ynode_item(ydests, di), di,
                                          &raw->destinations[di], &doc->destinations[di], err);
        if (rc != PS_OK) {
            return rc;
        }
    }
    return PS_OK;
}

ps_err_t ps_policy_doc_load(const char *path, struct ps_policy_doc **doc_p,
                            struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    struct ps_yaml_file *yf = NULL;
    struct raw_doc *raw = NULL;
    struct ps_policy_doc *doc = NULL;

    if (!path || !doc_p) {
        return ps_error_set(err, PS_ERR_INVALID, "ps_policy_doc_load: path and doc_p are required");
    }
    pthread_once(&tag_strvals_once, tag_strvals_fill);
    rc = ps_yaml_file_open(path, POLICY_MAX_BYTES, 0, &yf, err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    rc = ps_yaml_file_load(yf, &doc_type, (void **)&raw, err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    doc = calloc(1, sizeof(*doc));
    if (!doc || !(doc->file = strdup(path))) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "out of memory loading %s", path);
        goto cleanup;
    }
    rc = convert_doc(yf, raw, doc, err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    *doc_p = doc;
    doc = NULL;

cleanup:
    ps_policy_doc_destroy(doc);
    ps_yaml_file_free_data(yf, &doc_type, raw);
    ps_yaml_file_destroy(yf);
    return rc;
}

void ps_policy_doc_destroy(struct ps_policy_doc *doc)
{
    if (!doc) {
        return;
    }
    for (size_t di = 0; di < doc->destination_count; di++) {
        struct ps_policy_destination *dest = &doc->destinations[di];
        for (size_t ri = 0; ri < dest->rule_count; ri++) {
            free(dest->rules[ri].path);
        }
        free(dest->rules);
        for (size_t pi = 0; pi < dest->predicate_count; pi++) {
            struct ps_policy_predicate *pred = &dest->predicates[pi];
            for (size_t v = 0; v < pred->value_count; v++) {
                free(pred->values[v]);
            }
            free(pred->values);
            free(pred->path);
            ps_codeset_destroy(pred->codeset);
        }
        free(dest->predicates);
        for (size_t li = 0; li < dest->may_link_count; li++) {
            free(dest->may_link_with[li]);
        }
        free(dest->may_link_with);
        free(dest->escrow_public_key);
        free(dest->escrow_second_public_key);
        free(dest->name);
        free(dest->topic);
        free(dest->legal_basis.article6);
        free(dest->legal_basis.article9);
        free(dest->legal_basis.reference);
        free(dest->pseudonym_domain);
    }
    free(doc->destinations);
    free(doc->file);
    free(doc);
}
