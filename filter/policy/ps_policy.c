#include "ps_policy.h"

#include <string.h>

#include "ps_plan.h"


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
    if (!direct && (!dst->pseudonym_domain || !dst->pseudonym_domain[0])) {
        ps_error_set_at(err, PS_ERR_CONFIG, doc->file, dst->line, dst->col,
                        "destination '%s': %s needs a pseudonym_domain (add pseudonym_domain: "
                        "<name>, distinct from every other destination's)",
                        dst->name, ps_purpose_name(dst->purpose));
        return PS_ERR_CONFIG;
    }
    return PS_OK;
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
        strcmp(a->pseudonym_domain, b->pseudonym_domain) == 0) {
        return ps_error_set_at(err, PS_ERR_CONFIG, doc->file, b->line, b->col,
                               "destinations '%s' and '%s' share pseudonym domain '%s', so "
                               "their records would link (give each its own domain)",
                               a->name, b->name, b->pseudonym_domain);
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
        for (size_t j = 0; rc == PS_OK && j < i; j++) {
            rc = check_pair(doc, &doc->destinations[j], &doc->destinations[i], err);
        }
        if (rc != PS_OK) {
            return rc;
        }
    }
    return PS_OK;
}
