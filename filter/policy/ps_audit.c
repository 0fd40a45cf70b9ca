/*
 * ps_audit: the audit record written by hand in Avro's binary encoding.
 *
 * The schema (schemas/audit/audit_record.avsc) is fixed and small, and a record
 * is written for every input event inside the batch transaction, so going
 * through a generic Avro value would cost an allocation-heavy detour for
 * nothing. The field order below is the schema's; test_audit decodes what this
 * writes with the schema file, so the two cannot drift apart unnoticed.
 */
#include "ps_audit.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ps_avro_writer.h"

/* A ["null", "long"] union (timestamp-millis or key id) where -1 means null. */
static ps_err_t audit_write_optional_long(struct ps_buf *out, int64_t v)
{
    ps_err_t rc = ps_avro_write_null_union(out, v != -1);
    return rc == PS_OK && v != -1 ? ps_avro_write_long(out, v) : rc;
}

static ps_err_t audit_check_list(const char *const *items, size_t count, const char *name,
                                 struct ps_error *err)
{
    if (count > 0 && !items) {
        return ps_error_set(err, PS_ERR_INVALID, "audit plan: %s: %zu paths but no list", name,
                            count);
    }
    for (size_t i = 0; i < count; i++) {
        if (!items[i]) {
            return ps_error_set(err, PS_ERR_INVALID, "audit plan: %s: path %zu is missing", name,
                                i);
        }
    }
    return PS_OK;
}

/* Everything the encoder would otherwise stop half-way on, checked first so
 * that a refused record leaves no trace in out. */
static ps_err_t audit_check(const struct ps_audit_record *rec, struct ps_error *err)
{
    if (!rec->source_topic || !rec->policy_hash) {
        return ps_error_set(err, PS_ERR_INVALID, "audit record: %s is missing",
                            rec->source_topic ? "policy_hash" : "source_topic");
    }
    if (rec->key_id < -1 || rec->key_id > (int64_t)UINT32_MAX) {
        return ps_error_set(err, PS_ERR_INVALID, "audit record: key_id is out of range");
    }
    if (rec->destination_count > 0 && !rec->destinations) {
        return ps_error_set(err, PS_ERR_INVALID, "audit record: %zu destinations but no list",
                            rec->destination_count);
    }
    for (size_t d = 0; d < rec->destination_count; d++) {
        const struct ps_audit_destination *dst = &rec->destinations[d];
        if (!dst->name || !dst->topic) {
            return ps_error_set(err, PS_ERR_INVALID, "audit record: destination %zu: %s is "
                                "missing", d, dst->name ? "topic" : "name");
        }
        if (dst->decision != PS_AUDIT_DISCLOSED && dst->decision != PS_AUDIT_WITHHELD) {
            return ps_error_set(err, PS_ERR_INVALID, "audit record: destination '%s': decision "
                                "is neither DISCLOSED nor WITHHELD", dst->name);
        }
        /* A withheld event without a reason explains nothing, and a disclosed
         * one with a reason contradicts itself: both would mislead a reader of
         * the audit trail, so neither is written. */
        if (dst->decision == PS_AUDIT_WITHHELD && !dst->reason) {
            return ps_error_set(err, PS_ERR_INVALID, "audit record: destination '%s': withheld "
                                "without a reason", dst->name);
        }
        if (dst->decision == PS_AUDIT_DISCLOSED && (dst->reason || dst->detail)) {
            return ps_error_set(err, PS_ERR_INVALID, "audit record: destination '%s': disclosed "
                                "with a withhold reason", dst->name);
        }
        /* What a disclosure contained is its plan: without one the record
         * would not say which fields went. */
        if ((dst->decision == PS_AUDIT_DISCLOSED) != (dst->plan_id != NULL)) {
            return ps_error_set(err, PS_ERR_INVALID, "audit record: destination '%s': %s",
                                dst->name, dst->plan_id ? "withheld with a plan"
                                                        : "disclosed without a plan");
        }
    }
    return PS_OK;
}

static ps_err_t audit_write_lists(const struct ps_audit_plan *plan, struct ps_buf *out)
{
    ps_err_t rc = ps_avro_write_string_array(out, plan->kept, plan->kept_count);
    if (rc == PS_OK) {
        rc = ps_avro_write_string_array(out, plan->pseudonymised, plan->pseudonymised_count);
    }
    if (rc == PS_OK) {
        rc = ps_avro_write_string_array(out, plan->generalised, plan->generalised_count);
    }
    if (rc == PS_OK) {
        rc = ps_avro_write_string_array(out, plan->dropped, plan->dropped_count);
    }
    return rc;
}

static ps_err_t audit_write_destination(const struct ps_audit_destination *dst,
                                        struct ps_buf *out)
{
    ps_err_t rc = ps_avro_write_string(out, dst->name);
    if (rc == PS_OK) {
        rc = ps_avro_write_string(out, dst->topic);
    }
    if (rc == PS_OK) {
        /* Enum index: the symbols are listed in the schema in enum order. */
        rc = ps_avro_write_long(out, (int64_t)dst->decision);
    }
    if (rc == PS_OK) {
        rc = ps_avro_write_optional_string(out, dst->reason);
    }
    if (rc == PS_OK) {
        rc = ps_avro_write_optional_string(out, dst->detail);
    }
    return rc == PS_OK ? ps_avro_write_optional_string(out, dst->plan_id) : rc;
}

static ps_err_t plan_check(const struct ps_audit_plan *plan, struct ps_error *err)
{
    const char *missing = !plan->plan_id       ? "plan_id"
                          : !plan->policy_hash ? "policy_hash"
                          : !plan->destination ? "destination"
                          : !plan->topic       ? "topic"
                          : !plan->input_schema ? "input_schema"
                                                : NULL;
    if (missing) {
        return ps_error_set(err, PS_ERR_INVALID, "audit plan: %s is missing", missing);
    }
    ps_err_t rc = audit_check_list(plan->kept, plan->kept_count, "kept", err);
    if (rc == PS_OK) {
        rc = audit_check_list(plan->pseudonymised, plan->pseudonymised_count, "pseudonymised",
                              err);
    }
    if (rc == PS_OK) {
        rc = audit_check_list(plan->generalised, plan->generalised_count, "generalised", err);
    }
    if (rc == PS_OK) {
        rc = audit_check_list(plan->dropped, plan->dropped_count, "dropped", err);
    }
    return rc;
}

ps_err_t ps_audit_plan_id(const char *policy_hash, const char *destination, uint64_t fingerprint,
                          char out[PS_AUDIT_PLAN_ID_MAX], struct ps_error *err)
{
    if (!policy_hash || !*policy_hash || !destination || !out) {
        return ps_error_set(err, PS_ERR_INVALID, "audit plan id: missing argument");
    }
    size_t hlen = strnlen(policy_hash, 16);
    size_t dlen = strlen(destination);
    if (16 + 1 + dlen + 1 + 16 + 1 > PS_AUDIT_PLAN_ID_MAX) {
        return ps_error_set(err, PS_ERR_INVALID, "audit plan id: destination name longer than "
                            "%d characters", PS_AUDIT_PLAN_ID_MAX - 35);
    }
    snprintf(out, PS_AUDIT_PLAN_ID_MAX, "%.*s/%s/%016" PRIx64, (int)hlen, policy_hash,
             destination, fingerprint);
    return PS_OK;
}

ps_err_t ps_audit_plan_encode(const struct ps_audit_plan *plan, struct ps_buf *out,
                              struct ps_error *err)
{
    if (!plan || !out) {
        return ps_error_set(err, PS_ERR_INVALID, "ps_audit_plan_encode: missing argument");
    }
    ps_err_t rc = plan_check(plan, err);
    if (rc != PS_OK) {
        return rc;
    }
    char fingerprint[17];
    snprintf(fingerprint, sizeof(fingerprint), "%016" PRIx64, plan->input_fingerprint);
    size_t start = out->len;
    const char *strings[] = {plan->plan_id, plan->policy_hash, plan->destination, plan->topic,
                             plan->input_schema, fingerprint};
    for (size_t i = 0; rc == PS_OK && i < sizeof(strings) / sizeof(strings[0]); i++) {
        rc = ps_avro_write_string(out, strings[i]);
    }
    if (rc == PS_OK) {
        rc = audit_write_lists(plan, out);
    }
    if (rc != PS_OK) {
        out->len = start;
        return ps_error_set(err, rc, "audit plan: encoding failed (%s)", ps_err_name(rc));
    }
    return PS_OK;
}

ps_err_t ps_audit_encode(const struct ps_audit_record *rec, struct ps_buf *out,
                         struct ps_error *err)
{
    if (!rec || !out) {
        return ps_error_set(err, PS_ERR_INVALID, "ps_audit_encode: missing argument");
    }
    ps_err_t rc = audit_check(rec, err);
    if (rc != PS_OK) {
        return rc;
    }
    size_t start = out->len;
    rc = ps_avro_write_optional_string(out, rec->event_id);
    if (rc == PS_OK) {
        rc = ps_avro_write_optional_string(out, rec->event_type);
    }
    if (rc == PS_OK) {
        rc = audit_write_optional_long(out, rec->event_time_ms);
    }
    if (rc == PS_OK) {
        rc = ps_avro_write_string(out, rec->source_topic);
    }
    if (rc == PS_OK) {
        rc = ps_avro_write_long(out, rec->source_partition);
    }
    if (rc == PS_OK) {
        rc = ps_avro_write_long(out, rec->source_offset);
    }
    if (rc == PS_OK) {
        rc = ps_avro_write_string(out, rec->policy_hash);
    }
    if (rc == PS_OK) {
        rc = audit_write_optional_long(out, rec->key_id);
    }
    if (rc == PS_OK) {
        rc = audit_write_optional_long(out, rec->opt_out_as_of_ms);
    }
    if (rc == PS_OK) {
        rc = ps_avro_write_optional_string(out, rec->subject);
    }
    if (rc == PS_OK) {
        rc = ps_avro_write_optional_string(out, rec->dead_letter_reason);
    }
    if (rc == PS_OK && rec->destination_count > 0) {
        rc = ps_avro_write_array_block(out, rec->destination_count);
    }
    for (size_t d = 0; rc == PS_OK && d < rec->destination_count; d++) {
        rc = audit_write_destination(&rec->destinations[d], out);
    }
    if (rc == PS_OK) {
        rc = ps_avro_write_array_block(out, 0);
    }
    if (rc == PS_OK) {
        rc = ps_avro_write_long(out, rec->processed_at_ms);
    }
    if (rc != PS_OK) {
        /* All or nothing: a half-written datum must not be framed and sent. */
        out->len = start;
        return ps_error_set(err, rc, "audit record: encoding failed (%s)", ps_err_name(rc));
    }
    return PS_OK;
}
