#include "ps_explain.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ps_tag.h"

/* Writing goes through one sticky status, so the section builders read as
 * the document they write and the first failure is the one reported. */
struct md {
    struct ps_buf *out;
    ps_err_t rc;
};

static void md_printf(struct md *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void md_printf(struct md *m, const char *fmt, ...)
{
    if (m->rc != PS_OK) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        m->rc = PS_ERR_INVALID;
        return;
    }
    m->rc = ps_buf_reserve(m->out, (size_t)n + 1);
    if (m->rc != PS_OK) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf((char *)m->out->data + m->out->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    m->out->len += (size_t)n;
}

/* Text from the policy inside a table cell or a list item: a '|' would end
 * the cell and a newline the row, so both are escaped or folded. */
static void md_text(struct md *m, const char *text)
{
    for (const char *p = text ? text : ""; *p && m->rc == PS_OK; p++) {
        if (*p == '|') {
            md_printf(m, "\\|");
        } else if (*p == '\n' || *p == '\r') {
            md_printf(m, " ");
        } else {
            md_printf(m, "%c", *p);
        }
    }
}

static ps_err_t md_done(struct md *m, struct ps_error *err)
{
    if (m->rc == PS_OK) {
        return PS_OK;
    }
    return ps_error_set(err, m->rc, "explain: the text could not be written (%s)",
                        ps_err_name(m->rc));
}

/* "NHS_NUMBER, PII": the names of the tags in mask, for a table cell. */
static void tags_text(uint32_t mask, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int t = 0; t < PS_TAG_COUNT && n < size; t++) {
        if (mask & PS_TAG_BIT(t)) {
            n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? ", " : "",
                                  ps_tag_name((enum ps_tag)t));
        }
    }
}

static const char *granularity_text(enum ps_granularity to)
{
    switch (to) {
    case PS_GRAN_YEAR: return "year";
    case PS_GRAN_YEAR_MONTH: return "year_month";
    case PS_GRAN_AGE_BAND: return "age band";
    case PS_GRAN_POSTCODE_DISTRICT: return "district";
    case PS_GRAN_POSTCODE_SECTOR: return "sector";
    default: return "?";
    }
}

void ps_explain_receives(const struct ps_plan *plan, int node, char *buf, size_t size)
{
    const struct ps_schema_node *sn = ps_schema_node(plan->schema, node);
    const struct ps_plan_node *pn = &plan->nodes[node];
    /* The derived schema is what the destination can read: a path missing
     * from it is dropped, whatever the rule says. */
    if (!sn || ps_schema_find(ps_projection_schema(plan->projection), sn->path) < 0 ||
        pn->action == PS_ACTION_DROP) {
        snprintf(buf, size, "dropped");
        return;
    }
    switch (pn->action) {
    case PS_ACTION_KEEP:
        snprintf(buf, size, "clear");
        break;
    case PS_ACTION_PSEUDONYMISE:
        snprintf(buf, size, "pseudonym (%s)",
                 plan->dst->pseudonym_domain ? plan->dst->pseudonym_domain : "?");
        break;
    case PS_ACTION_GENERALISE:
        snprintf(buf, size, "generalised to %s", granularity_text(pn->to));
        break;
    case PS_ACTION_DATE_SHIFT:
        snprintf(buf, size, "date-shifted within \xC2\xB1%u days",
                 pn->rule ? (unsigned)pn->rule->window_days : PS_DATE_SHIFT_DEFAULT_DAYS);
        break;
    case PS_ACTION_REDACT:
        snprintf(buf, size, "redacted");
        break;
    default:
        snprintf(buf, size, "dropped");
        break;
    }
}

void ps_explain_decided_by(const struct ps_plan *plan, int node, char *buf, size_t size)
{
    const struct ps_policy_rule *rule = plan->nodes[node].rule;
    if (!rule) {
        snprintf(buf, size, "default");
        return;
    }
    if (rule->tag >= 0) {
        snprintf(buf, size, "tag %s, line %d%s", ps_tag_name((enum ps_tag)rule->tag), rule->line,
                 plan->nodes[node].inherited ? " (inherited)" : "");
    } else {
        snprintf(buf, size, "path %s, line %d%s", rule->path, rule->line,
                 plan->nodes[node].inherited ? " (inherited)" : "");
    }
}

ps_err_t ps_explain_table(const struct ps_plan *plan, struct ps_buf *out, struct ps_error *err)
{
    struct md m = {out, PS_OK};
    const struct ps_schema *schema = plan->schema;
    size_t counts[PS_ACTION_COUNT + 1] = {0};
    char tags[256], receives[128], decided[PS_ERROR_MSG_MAX];
    md_printf(&m, "### Fields of `%s`\n\n", ps_schema_name(schema));
    md_printf(&m, "| Field | Tags | Receives | Decided by |\n|---|---|---|---|\n");
    for (int i = 0; i < (int)ps_schema_node_count(schema); i++) {
        const struct ps_schema_node *node = ps_schema_node(schema, i);
        if (!ps_plan_is_leaf(node)) {
            continue;
        }
        tags_text(ps_plan_field_tags(schema, i), tags, sizeof(tags));
        ps_explain_receives(plan, i, receives, sizeof(receives));
        ps_explain_decided_by(plan, i, decided, sizeof(decided));
        counts[strcmp(receives, "dropped") == 0 ? PS_ACTION_COUNT : plan->nodes[i].action]++;
        md_printf(&m, "| `%s` | ", node->path);
        md_text(&m, tags);
        md_printf(&m, " | %s | ", receives);
        md_text(&m, decided);
        md_printf(&m, " |\n");
    }
    md_printf(&m,
              "\n%zu in clear, %zu pseudonymised, %zu generalised, %zu date-shifted, "
              "%zu redacted, %zu dropped.\n\n",
              counts[PS_ACTION_KEEP], counts[PS_ACTION_PSEUDONYMISE],
              counts[PS_ACTION_GENERALISE], counts[PS_ACTION_DATE_SHIFT],
              counts[PS_ACTION_REDACT], counts[PS_ACTION_COUNT]);
    return md_done(&m, err);
}

static const char *common_law_text(enum ps_common_law basis)
{
    switch (basis) {
    case PS_COMMON_LAW_IMPLIED_CONSENT:
        return "implied consent (the direct care team only)";
    case PS_COMMON_LAW_EXPLICIT_CONSENT:
        return "explicit consent of the patient";
    case PS_COMMON_LAW_S251_SUPPORT:
        return "section 251 support (NHS Act 2006; Confidentiality Advisory Group)";
    case PS_COMMON_LAW_LEGAL_OBLIGATION:
        return "a legal obligation (a statutory requirement or gateway)";
    case PS_COMMON_LAW_OVERRIDING_PUBLIC_INTEREST:
        return "overriding public interest";
    case PS_COMMON_LAW_ANONYMISED:
        return "anonymised in line with the ICO code (outside the duty)";
    default:
        return "?";
    }
}

static void write_optout(struct md *m, const struct ps_policy_destination *dst)
{
    md_printf(m, "- National data opt-out: ");
    if (ps_plan_is_direct_care(dst)) {
        md_printf(m, "does not apply (direct care)\n");
    } else if (dst->legal_basis.common_law == PS_COMMON_LAW_ANONYMISED) {
        md_printf(m, "does not apply (anonymised data)\n");
    } else if (!ps_plan_applies_optout(dst)) {
        md_printf(m, "exempt (common-law basis `%s`)\n",
                  ps_common_law_name(dst->legal_basis.common_law));
    } else {
        md_printf(m, "applies: a patient not cleared for secondary use is withheld; when the "
                     "opt-out state is not loaded or older than its maximum age, every record "
                     "is withheld (fail closed)\n");
    }
}

static void write_header(struct md *m, const struct ps_policy_doc *doc,
                         const struct ps_policy_destination *dst)
{
    int direct = ps_plan_is_direct_care(dst);
    const struct ps_legal_basis *lb = &dst->legal_basis;
    md_printf(m, "## Destination `%s`\n\n", dst->name);
    md_printf(m, "- Topic: `%s`\n", dst->topic);
    md_printf(m, "- Purpose: %s (%s)\n", ps_purpose_name(dst->purpose),
              direct ? "direct care" : "secondary use");
    md_printf(m, "- UK GDPR Article 6(1) basis: ");
    md_text(m, lb->article6);
    md_printf(m, "\n- UK GDPR Article 9(2) condition: ");
    md_text(m, lb->article9);
    md_printf(m, "\n- Common law duty of confidentiality: `%s`, %s\n",
              ps_common_law_name(lb->common_law), common_law_text(lb->common_law));
    md_printf(m, "- Approval reference: ");
    md_text(m, lb->reference ? lb->reference : "none given");
    md_printf(m, "\n");
    write_optout(m, dst);
    if (dst->pseudonym_domain) {
        md_printf(m, "- Pseudonym domain: `%s`", dst->pseudonym_domain);
        md_printf(m, "%s\n", direct ? "" : " (pseudonymised data is personal data, not "
                                           "anonymous)");
    } else {
        md_printf(m, "- Pseudonym domain: none\n");
    }
    if (dst->may_link_count) {
        md_printf(m, "- May link with (same domain, by the policy's choice):");
        for (size_t i = 0; i < dst->may_link_count; i++) {
            md_printf(m, "%s `%s`", i ? "," : "", dst->may_link_with[i]);
        }
        md_printf(m, "\n");
    }
    if (direct) {
        md_printf(m, "- Record key and headers: the input's, unchanged\n");
    } else if (lb->common_law == PS_COMMON_LAW_ANONYMISED) {
        md_printf(m, "- Record key: none; headers: pseudostream's only\n");
    } else {
        md_printf(m, "- Record key: the subject's pseudonym in domain `%s`; headers: "
                     "pseudostream's only\n", dst->pseudonym_domain ? dst->pseudonym_domain : "?");
    }
    md_printf(m, "- Fields no rule names: %s\n", dst->default_action == PS_ACTION_KEEP
                                                     ? "kept in clear (default: keep)"
                                                     : "dropped (default: drop)");
    if (dst->escrow_public_key) {
        md_printf(m, "- Re-identification: identifiers sealed to the authority's public key "
                     "in `");
        md_text(m, dst->escrow_public_key);
        md_printf(m, "`%s\n", dst->escrow_second_public_key ? " and a second authority's" : "");
    }
    md_printf(m, "- Defined at: %s:%d\n\n", doc->file, dst->line);
}

static void write_predicate(struct md *m, const struct ps_policy_predicate *pred)
{
    md_printf(m, "- ");
    switch (pred->kind) {
    case PS_PRED_EVENT_TYPE_IN:
    case PS_PRED_EVENT_TYPE_NOT_IN:
        md_printf(m, "the event type is %s of:",
                  pred->kind == PS_PRED_EVENT_TYPE_IN ? "one" : "none");
        for (size_t i = 0; i < pred->value_count; i++) {
            md_printf(m, "%s `", i ? "," : "");
            md_text(m, pred->values[i]);
            md_printf(m, "`");
        }
        break;
    case PS_PRED_CODES_IN:
        if (pred->tag >= 0) {
            md_printf(m, "a `%s` field", ps_tag_name((enum ps_tag)pred->tag));
        } else {
            md_printf(m, "field `%s`", pred->path);
        }
        md_printf(m, " holds a code of code set `%s` (", pred->codeset->name);
        md_text(m, pred->codeset->system);
        md_printf(m, ", %zu prefix%s, `", pred->codeset->prefix_count,
                  pred->codeset->prefix_count == 1 ? "" : "es");
        md_text(m, pred->codeset->file);
        md_printf(m, "`)");
        if (pred->codeset->description) {
            md_printf(m, ": ");
            md_text(m, pred->codeset->description);
        }
        break;
    case PS_PRED_FIELD_PRESENT:
        md_printf(m, "field `%s` has a value", pred->path);
        break;
    case PS_PRED_FIELD_ABSENT:
        md_printf(m, "field `%s` has no value", pred->path);
        break;
    }
    md_printf(m, " (`%s`, line %d)\n", ps_predicate_kind_name(pred->kind), pred->line);
}

static void write_withhold(struct md *m, const struct ps_policy_destination *dst)
{
    int direct = ps_plan_is_direct_care(dst);
    int keyed = !direct && dst->legal_basis.common_law != PS_COMMON_LAW_ANONYMISED;
    int codesets = 0;
    md_printf(m, "### Withheld when\n\n");
    for (size_t p = 0; p < dst->predicate_count; p++) {
        write_predicate(m, &dst->predicates[p]);
        codesets |= dst->predicates[p].kind == PS_PRED_CODES_IN;
    }
    if (keyed) {
        md_printf(m, "- the subject's NHS number is missing or fails the modulus-11 check, or "
                     "the event has no time of its own (always, for a pseudonymised "
                     "destination)\n");
    }
    if (ps_plan_applies_optout(dst)) {
        md_printf(m, "- the patient is not cleared under the national data opt-out, or the "
                     "opt-out state is stale (always, while the opt-out applies)\n");
    }
    md_printf(m, "- a field cannot be transformed (the record is withheld, never passed on "
                 "untransformed)\n\n");
    if (codesets) {
        md_printf(m, "Code sets are ICD-10 prefixes matched ignoring case and dots; the "
                     "adopting organisation's Caldicott Guardian must review them before they "
                     "are relied on.\n\n");
    }
}

static void write_warnings(struct md *m, const struct ps_plan *const *plans, size_t plan_count)
{
    int any = 0;
    for (size_t p = 0; p < plan_count; p++) {
        for (size_t w = 0; w < plans[p]->warning_count; w++) {
            int seen = 0;
            /* The same tag rule warns once per schema; say it once. */
            for (size_t q = 0; q <= p && !seen; q++) {
                size_t end = q == p ? w : plans[q]->warning_count;
                for (size_t v = 0; v < end && !seen; v++) {
                    seen = strcmp(plans[q]->warnings[v], plans[p]->warnings[w]) == 0;
                }
            }
            if (seen) {
                continue;
            }
            if (!any) {
                md_printf(m, "### Warnings\n\n");
                any = 1;
            }
            md_printf(m, "- ");
            md_text(m, plans[p]->warnings[w]);
            md_printf(m, "\n");
        }
    }
    if (any) {
        md_printf(m, "\n");
    }
}

ps_err_t ps_explain_destination(const struct ps_policy_doc *doc,
                                const struct ps_policy_destination *dst,
                                const struct ps_plan *const *plans, size_t plan_count,
                                struct ps_buf *out, struct ps_error *err)
{
    struct md m = {out, PS_OK};
    write_header(&m, doc, dst);
    write_withhold(&m, dst);
    write_warnings(&m, plans, plan_count);
    ps_err_t rc = md_done(&m, err);
    for (size_t p = 0; rc == PS_OK && p < plan_count; p++) {
        rc = ps_explain_table(plans[p], out, err);
    }
    return rc;
}

ps_err_t ps_explain_policy(const struct ps_policy_doc *doc, const char *policy_hash,
                           const struct ps_schema *const *schemas, size_t schema_count,
                           struct ps_buf *out, struct ps_error *err)
{
    struct md m = {out, PS_OK};
    struct ps_plan **plans = calloc(schema_count + 1, sizeof(*plans));
    ps_err_t rc = PS_OK;
    if (!plans) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory explaining the policy");
    }
    md_printf(&m, "# Data flows of policy `%s`\n\n", doc->file);
    md_printf(&m, "What each destination receives of every input field, and why: the data-flow "
                  "table of a data protection impact assessment. Written by `pseudostream "
                  "policy explain` from the compiled plans the filter applies.\n\n");
    if (policy_hash) {
        md_printf(&m, "- Policy SHA-256: `%s`\n", policy_hash);
    }
    md_printf(&m, "- Input schemas:");
    for (size_t s = 0; s < schema_count; s++) {
        md_printf(&m, "%s `%s`", s ? "," : "", ps_schema_name(schemas[s]));
    }
    md_printf(&m, "\n- Destinations: %zu\n\n", doc->destination_count);
    rc = md_done(&m, err);
    for (size_t d = 0; rc == PS_OK && d < doc->destination_count; d++) {
        const struct ps_policy_destination *dst = &doc->destinations[d];
        for (size_t s = 0; rc == PS_OK && s < schema_count; s++) {
            rc = ps_plan_compile(doc, dst, schemas[s], &plans[s], err);
        }
        if (rc == PS_OK) {
            rc = ps_explain_destination(doc, dst, (const struct ps_plan *const *)plans,
                                        schema_count, out, err);
        }
        for (size_t s = 0; s < schema_count; s++) {
            ps_plan_destroy(plans[s]);
            plans[s] = NULL;
        }
    }
    free(plans);
    return rc;
}
