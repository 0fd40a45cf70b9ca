/*
 * ps_policy: checks of a disclosure policy's meaning that need no schema.
 *
 * DESIGN.md §1 and §5 turned into refusals (each with the destination's line):
 *   - implied consent is the basis of direct care only;
 *   - a destination other than direct care must default to drop (Caldicott:
 *     the minimum necessary is an allow-list) and must name a pseudonym domain;
 *   - destination names and topics are unique, and no two destinations share
 *     a pseudonym domain (their pseudonyms would link) unless one says
 *     may_link_with the other;
 *   - a destination exempt from the national data opt-out has an exempt basis
 *     (explicit consent, legal obligation, overriding public interest,
 *     anonymised); direct care never names the opt-out;
 *   - escrow (re-identification) only for risk stratification or explicit
 *     consent, never for direct care or anonymised data;
 *   - a rule names a tag or a path, not both.
 * Field-level checks (identifiers in clear, transforms that do not suit a
 * field) need the schema and are made when plans are compiled (ps_plan.h).
 */
#ifndef PS_POLICY_H
#define PS_POLICY_H

#include "ps_error.h"
#include "ps_policy_doc.h"
#include "ps_registry.h"

ps_err_t ps_policy_check(const struct ps_policy_doc *doc, struct ps_error *err);

/* Receives one finding (PS_ERR_CONFIG with the policy file, line and column). */
typedef void (*ps_policy_report_fn)(void *opaque, const struct ps_error *err);

/* A rule or withhold_when path that names no field of any of the registry's
 * schemas is a typo, not a choice: reports each one to fn and returns how
 * many there were. */
size_t ps_policy_check_paths(const struct ps_policy_doc *doc, const struct ps_registry *reg,
                             ps_policy_report_fn fn, void *opaque);

#endif
