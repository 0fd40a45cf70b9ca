#include "ps_policy_doc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ps_tag.h"
#include "ps_yaml.h"

/* A policy is a few kilobytes; a megabyte is a mistake, not a policy. */
#define POLICY_MAX_BYTES (1024 * 1024)
#define POLICY_VERSION 1

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
};

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
    struct raw_rule *rules;
    unsigned rules_count;
};

struct raw_doc {
    char *version;
    struct raw_destination *destinations;
    unsigned destinations_count;
};

#define N(table) (sizeof(table) / sizeof((table)[0]))
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
    CYAML_FIELD_SEQUENCE("rules", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                         struct raw_destination, rules, &rule_value, 0, CYAML_UNLIMITED),
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
    {"action", "add action: keep, drop, pseudonymise, generalise or redact"},
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
                                "(add to: year, year_month, district or sector)",
                                di, ri);
    }
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
