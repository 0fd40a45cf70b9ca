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

ps_err_t ps_policy_check(const struct ps_policy_doc *doc, struct ps_error *err);

#endif
