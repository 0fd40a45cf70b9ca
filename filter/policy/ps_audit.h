/*
 * ps_audit: one audit record per input event (schemas/audit/audit_record.avsc),
 * written in the same transaction as the outputs, so an information-governance
 * lead can show what went where, when and why.
 *
 * No identifier in clear: the patient appears only as a pseudonym in the
 * dedicated audit domain ("pseudostream-audit"), which `audit trace` can
 * recompute from the keyring for a subject access request.
 */
#ifndef PS_AUDIT_H
#define PS_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "ps_buf.h"
#include "ps_error.h"

#define PS_AUDIT_DOMAIN "pseudostream-audit"

enum ps_audit_decision {
    PS_AUDIT_DISCLOSED = 0,
    PS_AUDIT_WITHHELD = 1
};

/* What one destination got of one event. Which fields it got is not repeated
 * in every record: plan_id names the AuditPlan record (below) that lists them,
 * written on the same topic. Borrowed. */
struct ps_audit_destination {
    const char *name;
    const char *topic;
    enum ps_audit_decision decision;
    const char *reason;              /* WITHHELD: ps_err_name() or "opt_out", "predicate" ...; else NULL */
    const char *detail;              /* WITHHELD: field path or rule, never a value; may be NULL */
    const char *plan_id;             /* DISCLOSED: the plan applied (required); WITHHELD: NULL */
};

/* Which fields one destination receives of one input schema under one policy
 * version (schemas/audit/audit_plan.avsc). Borrowed. */
struct ps_audit_plan {
    const char *plan_id;             /* ps_audit_plan_id() */
    const char *policy_hash;
    const char *destination;
    const char *topic;
    const char *input_schema;        /* full name */
    uint64_t input_fingerprint;
    const char *const *kept;         /* paths of leaves in clear */
    size_t kept_count;
    const char *const *pseudonymised;
    size_t pseudonymised_count;
    const char *const *generalised;  /* "path:granularity", e.g. "pid.date_of_birth:year" */
    size_t generalised_count;
    const char *const *dropped;
    size_t dropped_count;
};

/* Longest plan id: 16 + '/' + destination name (at most 128) + '/' + 16 + NUL. */
#define PS_AUDIT_PLAN_ID_MAX 164

/* Writes "<first 16 characters of policy_hash>/<destination>/<fingerprint as
 * 16 hex digits>" to out (PS_AUDIT_PLAN_ID_MAX bytes). PS_ERR_INVALID for a
 * missing argument, an empty policy hash or a destination name too long. */
ps_err_t ps_audit_plan_id(const char *policy_hash, const char *destination, uint64_t fingerprint,
                          char out[PS_AUDIT_PLAN_ID_MAX], struct ps_error *err);

struct ps_audit_record {
    const char *event_id;            /* NULL when the event could not be decoded */
    const char *event_type;          /* NULL likewise */
    int64_t event_time_ms;           /* -1 when unknown */
    const char *source_topic;
    int32_t source_partition;
    int64_t source_offset;
    const char *policy_hash;
    int64_t key_id;                  /* keyring entry used, -1 when none */
    int64_t opt_out_as_of_ms;        /* -1 when no opt-out state is configured */
    const char *subject;             /* audit-domain pseudonym, NULL when none */
    const char *dead_letter_reason;  /* set when the event went to the dead-letter topic */
    const struct ps_audit_destination *destinations;
    size_t destination_count;
    int64_t processed_at_ms;
};

/* Appends the record as an Avro datum of schemas/audit/audit_record.avsc (no
 * frame: callers add the single-object header with the schema's fingerprint).
 * event_time_ms, key_id and opt_out_as_of_ms of -1 are written as null.
 * PS_ERR_INVALID, naming the field, when source_topic, policy_hash or a
 * destination's name or topic is NULL, a decision is neither value, a
 * WITHHELD destination has no reason or has a plan, a DISCLOSED one has a
 * reason or detail or no plan, or key_id is outside
 * -1..UINT32_MAX; PS_ERR_LIMIT past out's maximum; PS_ERR_NOMEM. On failure
 * out is as it was. Borrows everything; thread-safe with distinct buffers. */
ps_err_t ps_audit_encode(const struct ps_audit_record *rec, struct ps_buf *out,
                         struct ps_error *err);

/* Appends the plan as an Avro datum of schemas/audit/audit_plan.avsc (no
 * frame). PS_ERR_INVALID, naming the field, for a missing string or a list
 * with a count but no items or a NULL item; PS_ERR_LIMIT, PS_ERR_NOMEM. On
 * failure out is as it was. */
ps_err_t ps_audit_plan_encode(const struct ps_audit_plan *plan, struct ps_buf *out,
                              struct ps_error *err);

/* The audit schemas' JSON text (schemas/audit/audit_record.avsc and
 * audit_plan.avsc, compiled in by the build), for their fingerprints and for
 * tools that decode the topic. */
extern const char ps_audit_schema_json[];
extern const char ps_audit_plan_schema_json[];

#endif
