/*
 * ps_audit_trace: find one patient's audit records by recomputing their
 * audit-domain pseudonyms.
 *
 * Every record is decoded but only matches are turned into JSON, so nothing of
 * another patient's record ever reaches the output stream. The subject's
 * tokens and normalised number are wiped before returning: they link the
 * audit trail to a person.
 */
#include "ps_audit_trace.h"

#include <stdlib.h>
#include <string.h>

#include "ps_audit.h"
#include "ps_buf.h"
#include "ps_codec.h"
#include "ps_frame.h"
#include "ps_log.h"
#include "ps_nhs.h"
#include "ps_pseudonym.h"

/* How long the reader waits for the next message before the topic's end. */
#define TRACE_READ_TIMEOUT_MS 10000

struct trace_counts {
    size_t read;       /* messages on the topic */
    size_t foreign;    /* not single-object audit or plan records (tombstones included) */
    size_t undecodable;
    size_t matches;
};

/* AuditPlan records: every one on the topic (few: one per plan, repeated
 * hourly), and whether a matching record named it. */
struct trace_plan {
    char id[PS_AUDIT_PLAN_ID_MAX];
    char *json; /* its readable JSON form; the latest copy read */
    int named;
};

struct trace_plans {
    const struct ps_schema *schema;
    int id_node;
    int named_node; /* destinations[].plan in the audit record schema */
    struct trace_plan *items;
    size_t count;
    size_t cap;
};

static struct trace_plan *plans_find(struct trace_plans *plans, const char *id, size_t len)
{
    for (size_t i = 0; i < plans->count; i++) {
        if (strlen(plans->items[i].id) == len && memcmp(plans->items[i].id, id, len) == 0) {
            return &plans->items[i];
        }
    }
    return NULL;
}

/* A slot for plan id (new or existing); NULL when out of memory or too long. */
static struct trace_plan *plans_slot(struct trace_plans *plans, const char *id, size_t len)
{
    struct trace_plan *p = plans_find(plans, id, len);
    if (p || len >= PS_AUDIT_PLAN_ID_MAX) {
        return p;
    }
    if (plans->count == plans->cap) {
        size_t cap = plans->cap ? plans->cap * 2 : 16;
        struct trace_plan *items = realloc(plans->items, cap * sizeof(*items));
        if (!items) {
            return NULL;
        }
        plans->items = items;
        plans->cap = cap;
    }
    p = &plans->items[plans->count++];
    memset(p, 0, sizeof(*p));
    memcpy(p->id, id, len);
    return p;
}

static void plans_free(struct trace_plans *plans)
{
    for (size_t i = 0; i < plans->count; i++) {
        free(plans->items[i].json);
    }
    free(plans->items);
}

/* Keeps a plan record's JSON form by its id. */
static ps_err_t trace_plan_record(struct trace_plans *plans, const struct ps_event *ev,
                                  struct ps_buf *json, struct ps_error *err)
{
    struct ps_scalar id;
    if (ps_event_get(ev, plans->id_node, &id) != PS_OK || id.kind != PS_SCALAR_STRING ||
        id.len >= PS_AUDIT_PLAN_ID_MAX) {
        return PS_ERR_DECODE; /* not a plan this service wrote: counted, skipped */
    }
    struct trace_plan *p = plans_slot(plans, id.s, id.len);
    ps_buf_reset(json);
    ps_err_t rc = p ? ps_event_to_json(ev, json, err)
                    : ps_error_set(err, PS_ERR_NOMEM, "out of memory");
    char *copy = rc == PS_OK ? malloc(json->len + 1) : NULL;
    if (rc == PS_OK && !copy) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "out of memory");
    }
    if (rc == PS_OK) {
        memcpy(copy, json->data, json->len);
        copy[json->len] = '\0';
        free(p->json);
        p->json = copy;
    }
    return rc;
}

/* The plans a matching record names are printed after the records. */
static int trace_name_plan(void *opaque, const struct ps_scalar *value)
{
    struct trace_plans *plans = opaque;
    if (value->kind == PS_SCALAR_STRING) {
        struct trace_plan *p = plans_slot(plans, value->s, value->len);
        if (p) {
            p->named = 1;
        }
    }
    return 0;
}

/* The subject's token under every keyring entry, PS_TOKEN_MAX bytes each. */
static ps_err_t trace_tokens(const struct ps_keyring *kr, const char nhs[PS_NHS_DIGITS + 1],
                             char **tokens_p, size_t *count_p, struct ps_error *err)
{
    struct ps_pseudonymiser *p = NULL;
    size_t count = ps_keyring_count(kr);
    char *tokens = calloc(count ? count : 1, PS_TOKEN_MAX);
    if (!tokens) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory");
    }
    ps_err_t rc = ps_pseudonymiser_new(kr, PS_AUDIT_DOMAIN, &p, err);
    for (size_t i = 0; rc == PS_OK && i < count; i++) {
        uint32_t id = 0;
        int64_t not_before_ms = 0;
        int retired = 0;
        /* Retired entries too: records written while they were current carry
         * their tokens. */
        ps_keyring_info(kr, i, &id, &not_before_ms, &retired);
        rc = ps_pseudonymise_with_key(p, id, "nhs_number", nhs, strlen(nhs),
                                      tokens + i * PS_TOKEN_MAX, err);
    }
    ps_pseudonymiser_destroy(p);
    if (rc != PS_OK) {
        explicit_bzero(tokens, (count ? count : 1) * PS_TOKEN_MAX);
        free(tokens);
        return rc;
    }
    *tokens_p = tokens;
    *count_p = count;
    return PS_OK;
}

static int trace_is_subject(const struct ps_scalar *subject, const char *tokens, size_t count)
{
    if (subject->kind != PS_SCALAR_STRING) {
        return 0;
    }
    for (size_t i = 0; i < count; i++) {
        const char *token = tokens + i * PS_TOKEN_MAX;
        if (strlen(token) == subject->len && memcmp(token, subject->s, subject->len) == 0) {
            return 1;
        }
    }
    return 0;
}

/* One message of the topic: written to out when it is the subject's record. */
static ps_err_t trace_message(const struct ps_kafka_message *msg,
                              const struct ps_schema *schema, int subject_node,
                              struct ps_decoder *dec, const char *tokens, size_t token_count,
                              struct trace_plans *plans, struct ps_buf *json, FILE *out,
                              struct trace_counts *counts, struct ps_error *err)
{
    struct ps_frame frame;
    struct ps_event *ev = NULL;
    struct ps_scalar subject;
    struct ps_error skip = {0};

    counts->read++;
    if (!msg->value || ps_frame_parse(msg->value, msg->len, &frame, &skip) != PS_OK ||
        frame.format != PS_FRAME_SINGLE_OBJECT) {
        counts->foreign++;
        return PS_OK;
    }
    if (frame.fingerprint == ps_schema_fingerprint(plans->schema)) {
        ps_err_t rc = ps_decoder_decode(dec, plans->schema, frame.payload, frame.payload_len,
                                        &ev, &skip);
        if (rc == PS_OK) {
            rc = trace_plan_record(plans, ev, json, err);
        }
        if (rc == PS_ERR_NOMEM) {
            return rc;
        }
        counts->undecodable += rc != PS_OK;
        return PS_OK;
    }
    if (frame.fingerprint != ps_schema_fingerprint(schema)) {
        counts->foreign++;
        return PS_OK;
    }
    if (ps_decoder_decode(dec, schema, frame.payload, frame.payload_len, &ev, &skip) != PS_OK ||
        ps_event_get(ev, subject_node, &subject) != PS_OK) {
        counts->undecodable++;
        return PS_OK;
    }
    if (!trace_is_subject(&subject, tokens, token_count)) {
        return PS_OK;
    }
    ps_buf_reset(json);
    ps_err_t rc = ps_event_to_json(ev, json, err);
    if (rc != PS_OK) {
        return ps_error_prefix(err, "audit topic '%s' partition %d offset %lld", msg->topic,
                               (int)msg->partition, (long long)msg->offset);
    }
    if (fprintf(out, "%.*s\n", (int)json->len, (const char *)json->data) < 0) {
        return ps_error_set(err, PS_ERR_IO, "could not write the trace");
    }
    if (plans->named_node >= 0) {
        ps_event_visit(ev, plans->named_node, trace_name_plan, plans);
    }
    counts->matches++;
    return PS_OK;
}

/* After the records: each plan they named, once; a named plan not found on
 * the topic (retention removed it) is said in a warning. */
static ps_err_t trace_print_plans(const struct trace_plans *plans, const char *topic, FILE *out,
                                  struct ps_error *err)
{
    size_t missing = 0;
    for (size_t i = 0; i < plans->count; i++) {
        const struct trace_plan *p = &plans->items[i];
        if (p->named && !p->json) {
            missing++;
        } else if (p->named && fprintf(out, "%s\n", p->json) < 0) {
            return ps_error_set(err, PS_ERR_IO, "could not write the trace");
        }
    }
    if (missing) {
        PS_WARN("audit", "trace_plan_missing", "audit topic '%s': %zu plan(s) named by the "
                "subject's records are not on the topic; which fields those disclosures held "
                "can be had from `policy explain` on the policy version named", topic, missing);
    }
    return PS_OK;
}

ps_err_t ps_audit_trace(const char *bootstraps, const char *topic,
                        const struct ps_kafka_property *props, size_t prop_count,
                        const struct ps_schema *schema, const struct ps_keyring *kr,
                        const char *nhs_number, FILE *out, size_t *matches_p,
                        struct ps_error *err)
{
    char nhs[PS_NHS_DIGITS + 1] = "";
    char *tokens = NULL;
    size_t token_count = 0;
    struct ps_decoder *dec = NULL;
    struct ps_kafka_reader *reader = NULL;
    struct trace_counts counts = {0};
    int subject_node = -1;
    struct ps_schema *plan_schema = NULL;
    struct trace_plans plans = {0};
    struct ps_buf json;
    ps_buf_init(&json, 0);

    ps_err_t rc = PS_OK;
    if (!bootstraps || !topic || !schema || !kr || !nhs_number || !out ||
        (prop_count > 0 && !props)) {
        rc = ps_error_set(err, PS_ERR_INVALID, "ps_audit_trace: missing argument");
        goto cleanup;
    }
    subject_node = ps_schema_find(schema, "subject");
    if (subject_node < 0 || ps_schema_node(schema, subject_node)->type != PS_TYPE_STRING) {
        rc = ps_error_set(err, PS_ERR_SCHEMA, "schema '%s' is not an audit record schema: it "
                          "has no string field 'subject'", ps_schema_origin(schema));
        goto cleanup;
    }
    /* Checked here, before any broker is contacted, so a mistyped number is a
     * usage error and not an empty trace. */
    rc = ps_nhs_normalise(nhs_number, strlen(nhs_number), nhs, err);
    if (rc == PS_OK) {
        rc = trace_tokens(kr, nhs, &tokens, &token_count, err);
    }
    if (rc == PS_OK) {
        rc = ps_schema_load_json(ps_audit_plan_schema_json, "audit_plan.avsc", NULL, &plan_schema,
                                 err);
    }
    if (rc == PS_OK) {
        plans.schema = plan_schema;
        plans.id_node = ps_schema_find(plan_schema, "plan_id");
        plans.named_node = ps_schema_find(schema, "destinations[].plan");
        rc = ps_decoder_new(NULL, &dec, err);
    }
    if (rc == PS_OK) {
        rc = ps_kafka_reader_new(bootstraps, topic, props, prop_count, &reader, err);
    }
    while (rc == PS_OK) {
        const struct ps_kafka_message *msg = NULL;
        rc = ps_kafka_reader_next(reader, TRACE_READ_TIMEOUT_MS, &msg, err);
        if (rc == PS_OK) {
            rc = trace_message(msg, schema, subject_node, dec, tokens, token_count, &plans,
                               &json, out, &counts, err);
        }
    }
    if (rc == PS_ERR_STOPPED) {
        ps_error_clear(err);
        rc = trace_print_plans(&plans, topic, out, err);
    }
    if (rc == PS_OK) {
        rc = fflush(out) == 0 && !ferror(out)
                 ? PS_OK : ps_error_set(err, PS_ERR_IO, "could not write the trace");
    }
    if (rc == PS_OK && (counts.foreign > 0 || counts.undecodable > 0)) {
        /* A record that could not be read may be the subject's: say so, so
         * that nobody takes an incomplete trace for a complete one. */
        PS_WARN("audit", "trace_skipped", "audit topic '%s': %zu of %zu messages skipped (%zu "
                "not audit records, %zu undecodable); the trace may be incomplete", topic,
                counts.foreign + counts.undecodable, counts.read, counts.foreign,
                counts.undecodable);
    }
    if (rc == PS_OK && matches_p) {
        *matches_p = counts.matches;
    }

cleanup:
    ps_kafka_reader_destroy(reader);
    ps_decoder_destroy(dec);
    ps_schema_destroy(plan_schema);
    plans_free(&plans);
    ps_buf_free(&json);
    if (tokens) {
        explicit_bzero(tokens, (token_count ? token_count : 1) * PS_TOKEN_MAX);
        free(tokens);
    }
    explicit_bzero(nhs, sizeof(nhs));
    return rc;
}
