/*
 * ps_explain: a disclosure policy as the data-flow tables of a DPIA, in
 * Markdown (`pseudostream policy explain`).
 *
 * For each destination: its purpose, its legal basis (UK GDPR Article 6(1)
 * basis, Article 9(2) condition, common-law basis and approval reference),
 * whether the national data opt-out applies, its pseudonym domain and the
 * conditions under which a record is withheld (with each code set's name and
 * description); then, per input schema, a table of every leaf field:
 *
 *   | Field | Tags | Receives | Decided by |
 *   | `pid.date_of_birth` | BIRTH_DATE | generalised to year | tag BIRTH_DATE, line 54 |
 *
 * "Receives" is one of: clear; pseudonym (DOMAIN); generalised to year,
 * year_month, age band, district or sector; date-shifted within ±N days;
 * redacted; dropped. It is read from the compiled plan and its derived schema
 * (the same objects the engine applies), so the table cannot say one thing
 * while the stream does another: a field absent from the derived schema is
 * "dropped" whatever the rules say. "Decided by" names the rule (tag or path,
 * its line, and "inherited" when it was an enclosing record's keep or drop) or
 * "default".
 *
 * The text is meant to be checked against what `consume` shows on each topic
 * (tests/integration/test_policy_explain.sh does so field by field), so its
 * shape is stable: a destination starts with "## Destination `NAME`", its
 * topic is on a line "- Topic: `TOPIC`", a table starts after
 * "### Fields of `SCHEMA`" and each row has four cells, the path in backticks.
 *
 * Pure: no files, no Kafka, no keys. Thread-safe with distinct buffers.
 */
#ifndef PS_EXPLAIN_H
#define PS_EXPLAIN_H

#include <stddef.h>

#include "ps_buf.h"
#include "ps_error.h"
#include "ps_plan.h"
#include "ps_policy_doc.h"
#include "ps_schema.h"

/* Writes the whole document for doc on the input schemas (schema_count of
 * them) to out: a title naming the policy file (and policy_hash, the policy
 * file's SHA-256 in hex, when not NULL), then every destination. Compiles
 * each (destination, schema) plan with ps_plan_compile; the policy should
 * have passed ps_policy_check first (explain describes, it does not judge).
 * Errors: the first plan's PS_ERR_CONFIG (file, line, column, fix);
 * PS_ERR_LIMIT past out's maximum; PS_ERR_NOMEM. On failure out may hold
 * part of the text. */
ps_err_t ps_explain_policy(const struct ps_policy_doc *doc, const char *policy_hash,
                           const struct ps_schema *const *schemas, size_t schema_count,
                           struct ps_buf *out, struct ps_error *err);

/* Writes one destination's section: its header, withhold conditions, the
 * warnings of its plans (deduplicated) and one table per plan. plans[i] must
 * be dst's plan for some schema. Errors as ps_buf_append. */
ps_err_t ps_explain_destination(const struct ps_policy_doc *doc,
                                const struct ps_policy_destination *dst,
                                const struct ps_plan *const *plans, size_t plan_count,
                                struct ps_buf *out, struct ps_error *err);

/* Writes the field table of one plan (the "### Fields of" heading, the
 * header row and one row per leaf of the input schema, in schema order). */
ps_err_t ps_explain_table(const struct ps_plan *plan, struct ps_buf *out, struct ps_error *err);

/* What the destination receives of leaf `node` of the plan's input schema,
 * as in the table ("clear", "pseudonym (research-cohort-a)", "generalised to
 * age band", "date-shifted within ±180 days", "redacted", "dropped"), into
 * buf (NUL-terminated, truncated to size). */
void ps_explain_receives(const struct ps_plan *plan, int node, char *buf, size_t size);

/* The rule that decided leaf `node`, as in the table ("tag NHS_NUMBER, line
 * 54", "path nk1, line 23 (inherited)", "default"), into buf. */
void ps_explain_decided_by(const struct ps_plan *plan, int node, char *buf, size_t size);

#endif
