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

#include <stdint.h>

#include "ps_avro_writer.h"

/* A ["null", "long"] union (timestamp-millis or key id) where -1 means null. */
static ps_err_t audit_write_optional_long(struct ps_buf *out, int64_t v)
{
    ps_err_t rc = ps_avro_write_null_union(out, v != -1);
    return rc == PS_OK && v != -1 ? ps_avro_write_long(out, v) : rc;
}

static ps_err_t audit_check_list(const char *const *items, size_t count, size_t d,
                                 const char *name, struct ps_error *err)
{
    if (count > 0 && !items) {
        return ps_error_set(err, PS_ERR_INVALID, "audit record: destination %zu: %s: %zu "
                            "paths but no list", d, name, count);
    }
    for (size_t i = 0; i < count; i++) {
        if (!items[i]) {
            return ps_error_set(err, PS_ERR_INVALID, "audit record: destination %zu: %s: path "
                                "%zu is missing", d, name, i);
        }
    }
    return PS_OK;
}

static ps_err_t audit_check_lists(const struct ps_audit_destination *dst, size_t d,
                                  struct ps_error *err);

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
        ps_err_t rc = audit_check_lists(dst, d, err);
        if (rc != PS_OK) {
            return rc;
        }
    }
    return PS_OK;
}

static ps_err_t audit_write_lists(const struct ps_audit_destination *dst, struct ps_buf *out)
{
    if (dst->lists_avro) {
        return ps_buf_append(out, dst->lists_avro, dst->lists_avro_len);
    }
    ps_err_t rc = ps_avro_write_string_array(out, dst->kept, dst->kept_count);
    if (rc == PS_OK) {
        rc = ps_avro_write_string_array(out, dst->pseudonymised, dst->pseudonymised_count);
    }
    if (rc == PS_OK) {
        rc = ps_avro_write_string_array(out, dst->generalised, dst->generalised_count);
    }
    if (rc == PS_OK) {
        rc = ps_avro_write_string_array(out, dst->dropped, dst->dropped_count);
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
    return rc == PS_OK ? audit_write_lists(dst, out) : rc;
}

static ps_err_t audit_check_lists(const struct ps_audit_destination *dst, size_t d,
                                  struct ps_error *err)
{
    if (dst->lists_avro) {
        return PS_OK; /* checked when they were encoded */
    }
    ps_err_t rc = audit_check_list(dst->kept, dst->kept_count, d, "kept", err);
    if (rc == PS_OK) {
        rc = audit_check_list(dst->pseudonymised, dst->pseudonymised_count, d,
                              "pseudonymised", err);
    }
    if (rc == PS_OK) {
        rc = audit_check_list(dst->generalised, dst->generalised_count, d, "generalised", err);
    }
    if (rc == PS_OK) {
        rc = audit_check_list(dst->dropped, dst->dropped_count, d, "dropped", err);
    }
    return rc;
}

ps_err_t ps_audit_lists_encode(const struct ps_audit_destination *dst, struct ps_buf *out,
                               struct ps_error *err)
{
    if (!dst || !out) {
        return ps_error_set(err, PS_ERR_INVALID, "ps_audit_lists_encode: missing argument");
    }
    struct ps_audit_destination lists = *dst;
    lists.lists_avro = NULL;
    ps_err_t rc = audit_check_lists(&lists, 0, err);
    if (rc != PS_OK) {
        return rc;
    }
    size_t start = out->len;
    rc = audit_write_lists(&lists, out);
    if (rc != PS_OK) {
        out->len = start;
        return ps_error_set(err, rc, "audit record: encoding failed (%s)", ps_err_name(rc));
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
