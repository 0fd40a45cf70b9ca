#include "ps_policy.h"

#include <string.h>

#include "ps_plan.h"


/* The national data opt-out does not apply where the patient consented, the
 * law requires the disclosure, there is an overriding public interest, or the
 * data are anonymised in line with the ICO code. */
static int optout_exempt_basis(enum ps_common_law basis)
{
    return basis == PS_COMMON_LAW_EXPLICIT_CONSENT || basis == PS_COMMON_LAW_LEGAL_OBLIGATION ||
           basis == PS_COMMON_LAW_OVERRIDING_PUBLIC_INTEREST || basis == PS_COMMON_LAW_ANONYMISED;
}

static ps_err_t check_optout_and_escrow(const struct ps_policy_doc *doc,
                                        const struct ps_policy_destination *dst,
                                        struct ps_error *err)
{
    int direct = ps_plan_is_direct_care(dst);
    enum ps_common_law basis = dst->legal_basis.common_law;
    if (direct && dst->opt_out_written) {
        return ps_error_set_at(err, PS_ERR_CONFIG, doc->file, dst->line, dst->col,
                               "destination '%s': the national data opt-out never applies to "
                               "direct care (remove opt_out:)", dst->name);
    }
    if (!direct && dst->opt_out == PS_OPTOUT_MODE_EXEMPT && !optout_exempt_basis(basis)) {
        return ps_error_set_at(err, PS_ERR_CONFIG, doc->file, dst->line, dst->col,
                               "destination '%s': opt_out: exempt needs an exempt basis "
                               "(explicit_consent, legal_obligation, overriding_public_interest "
                               "or anonymised), not %s (remove opt_out: exempt)",
                               dst->name, ps_common_law_name(basis));
    }
    if (dst->escrow_public_key &&
        (direct || basis == PS_COMMON_LAW_ANONYMISED ||
         (dst->purpose != PS_PURPOSE_RISK_STRATIFICATION &&
          basis != PS_COMMON_LAW_EXPLICIT_CONSENT))) {
        return ps_error_set_at(err, PS_ERR_CONFIG, doc->file, dst->line, dst->col,
                               "destination '%s': escrow (re-identification) needs a pseudonymised "
                               "destination whose basis allows re-identification: purpose "
                               "risk_stratification, or explicit_consent (remove escrow:)",
                               dst->name);
    }
    return PS_OK;
}

static int may_link(const struct ps_policy_destination *a, const struct ps_policy_destination *b)
{
    for (size_t i = 0; i < a->may_link_count; i++) {
        if (strcmp(a->may_link_with[i], b->name) == 0) {
            return 1;
        }
    }
    return 0;
}

static ps_err_t check_links_exist(const struct ps_policy_doc *doc,
                                  const struct ps_policy_destination *dst, struct ps_error *err)
{
    for (size_t i = 0; i < dst->may_link_count; i++) {
        int found = 0;
        for (size_t j = 0; j < doc->destination_count; j++) {
            found |= strcmp(doc->destinations[j].name, dst->may_link_with[i]) == 0;
        }
        if (!found) {
            return ps_error_set_at(err, PS_ERR_CONFIG, doc->file, dst->line, dst->col,
                                   "destination '%s': may_link_with names '%s', which is not a "
                                   "destination of this policy", dst->name, dst->may_link_with[i]);
        }
    }
    return PS_OK;
}

static ps_err_t check_destination(const struct ps_policy_doc *doc,
                                  const struct ps_policy_destination *dst, struct ps_error *err)
{
    int direct = ps_plan_is_direct_care(dst);
    if (!direct && dst->legal_basis.common_law == PS_COMMON_LAW_IMPLIED_CONSENT) {
        ps_error_set_at(err, PS_ERR_CONFIG, doc->file, dst->line, dst->col,
                        "destination '%s': implied consent covers direct care only, not %s "
                        "(set legal_basis.common_law to the basis this flow really has, e.g. "
                        "s251_support or explicit_consent)",
                        dst->name, ps_purpose_name(dst->purpose));
        return PS_ERR_CONFIG;
    }
    if (!direct && dst->default_action != PS_ACTION_DROP) {
        ps_error_set_at(err, PS_ERR_CONFIG, doc->file, dst->line, dst->col,
                        "destination '%s': default must be drop for %s (name each field the "
                        "destination needs in rules)", dst->name, ps_purpose_name(dst->purpose));
        return PS_ERR_CONFIG;
    }
    enum ps_common_law basis = dst->legal_basis.common_law;
    if (!direct && basis != PS_COMMON_LAW_ANONYMISED &&
        (!dst->pseudonym_domain || !dst->pseudonym_domain[0])) {
        ps_error_set_at(err, PS_ERR_CONFIG, doc->file, dst->line, dst->col,
                        "destination '%s': %s needs a pseudonym_domain (add pseudonym_domain: "
                        "<name>, distinct from every other destination's)",
                        dst->name, ps_purpose_name(dst->purpose));
        return PS_ERR_CONFIG;
    }
    return check_optout_and_escrow(doc, dst, err);
}

static ps_err_t check_pair(const struct ps_policy_doc *doc, const struct ps_policy_destination *a,
                           const struct ps_policy_destination *b, struct ps_error *err)
{
    if (strcmp(a->name, b->name) == 0) {
        return ps_error_set_at(err, PS_ERR_CONFIG, doc->file, b->line, b->col,
                               "destination name '%s' is used twice (rename one)", b->name);
    }
    if (strcmp(a->topic, b->topic) == 0) {
        return ps_error_set_at(err, PS_ERR_CONFIG, doc->file, b->line, b->col,
                               "destinations '%s' and '%s' write to the same topic (give each "
                               "its own topic)", a->name, b->name);
    }
    if (a->pseudonym_domain && b->pseudonym_domain &&
        strcmp(a->pseudonym_domain, b->pseudonym_domain) == 0 && !may_link(a, b) &&
        !may_link(b, a)) {
        return ps_error_set_at(err, PS_ERR_CONFIG, doc->file, b->line, b->col,
                               "destinations '%s' and '%s' share pseudonym domain '%s', so "
                               "their records would link (give each its own domain, or say "
                               "may_link_with: [%s] if that linkage is intended and lawful)",
                               a->name, b->name, b->pseudonym_domain, a->name);
    }
    return PS_OK;
}

ps_err_t ps_policy_check(const struct ps_policy_doc *doc, struct ps_error *err)
{
    if (doc->destination_count == 0) {
        return ps_error_set_at(err, PS_ERR_CONFIG, doc->file, 1, 1,
                               "policy has no destinations (add a destinations: list)");
    }
    for (size_t i = 0; i < doc->destination_count; i++) {
        ps_err_t rc = check_destination(doc, &doc->destinations[i], err);
        if (rc == PS_OK) {
            rc = check_links_exist(doc, &doc->destinations[i], err);
        }
        for (size_t j = 0; rc == PS_OK && j < i; j++) {
            rc = check_pair(doc, &doc->destinations[j], &doc->destinations[i], err);
        }
        if (rc != PS_OK) {
            return rc;
        }
    }
    return PS_OK;
}

static int path_exists(const struct ps_registry *reg, const char *path)
{
    for (size_t s = 0; path && s < ps_registry_count(reg); s++) {
        if (ps_schema_find(ps_registry_at(reg, s), path) >= 0) {
            return 1;
        }
    }
    return !path;
}

size_t ps_policy_check_paths(const struct ps_policy_doc *doc, const struct ps_registry *reg,
                             ps_policy_report_fn fn, void *opaque)
{
    size_t found = 0;
    for (size_t d = 0; d < doc->destination_count; d++) {
        const struct ps_policy_destination *dst = &doc->destinations[d];
        for (size_t r = 0; r < dst->rule_count; r++) {
            const struct ps_policy_rule *rule = &dst->rules[r];
            if (!path_exists(reg, rule->path)) {
                struct ps_error err = {0};
                ps_error_set_at(&err, PS_ERR_CONFIG, doc->file, rule->line, rule->col,
                                "destination '%s': path '%s' names no field of any schema "
                                "(paths look like pid.date_of_birth or pid.address[].postcode)",
                                dst->name, rule->path);
                fn(opaque, &err);
                found++;
            }
        }
        for (size_t p = 0; p < dst->predicate_count; p++) {
            const struct ps_policy_predicate *pred = &dst->predicates[p];
            if (!path_exists(reg, pred->path)) {
                struct ps_error err = {0};
                ps_error_set_at(&err, PS_ERR_CONFIG, doc->file, pred->line, pred->col,
                                "destination '%s': withhold_when names '%s', which is no "
                                "field of any schema", dst->name, pred->path);
                fn(opaque, &err);
                found++;
            }
        }
    }
    return found;
}
