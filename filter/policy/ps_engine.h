/*
 * ps_engine: the disclosure engine. Bytes of one input event in, one decision
 * per destination out: withheld (with the reason), or the bytes that
 * destination may receive and the key to send them under.
 *
 * Pure: no Kafka. An engine holds every (schema, destination) plan, compiled
 * once at start-up, and one pseudonymiser per domain; it is immutable and
 * shared by the workers. A worker holds what one thread needs per event
 * (decoder, buffers) and is not thread-safe.
 *
 * Per event, for each destination:
 *   - the event is decoded once (frame, schema, validated Avro);
 *   - for anything but direct care (and anonymised output), the subject's NHS
 *     number must be valid (it is pseudonymised into the record key, so
 *     per-patient order is kept), and the event must carry its own time (it
 *     chooses the key);
 *   - where the national data opt-out applies, the patient must be cleared in
 *     a fresh opt-out state (stale or missing state withholds: fail closed);
 *   - no withhold_when condition of the destination may match;
 *   - the destination's plan writes its derived record; any failure withholds
 *     the record from that destination only, with the reason: fail closed,
 *     never passed on untransformed.
 * An event that cannot be decoded at all is reported by ps_engine_process's
 * return code, for the dead-letter topic.
 */
#ifndef PS_ENGINE_H
#define PS_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "ps_codec.h"
#include "ps_error.h"
#include "ps_keyring.h"
#include "ps_optout.h"
#include "ps_plan.h"
#include "ps_policy_doc.h"
#include "ps_registry.h"

enum ps_disclosure {
    PS_DISCLOSED = 0,
    PS_WITHHELD = 1
};

struct ps_engine_output {
    enum ps_disclosure decision;
    ps_err_t reason;          /* WITHHELD: PS_ERR_NHS_INVALID, PS_ERR_NO_KEY, ... */
    char detail[200];         /* WITHHELD: names the field, never a value */
    const uint8_t *value;     /* DISCLOSED: single-object framed datum */
    size_t len;
    const char *key;          /* DISCLOSED to secondary use: the subject's pseudonym;
                                 NULL for direct care (the input key is kept) */
    size_t key_len;
    uint32_t key_id;          /* keyring entry used, 0 when none */
    const struct ps_plan *plan; /* the plan applied (its field lists feed the audit) */
    const char *audit_plan_id;  /* the plan's id in audit records (ps_audit_plan_id) */
    const uint8_t *audit_plan;  /* the plan's AuditPlan record, single-object framed (owned
                                   by the engine): written to the audit topic once */
    size_t audit_plan_len;
};

/* A sealed identifier for the escrow topic (key "<domain>/<token>", value the
 * identifier sealed to the destination's re-identification authorities). */
struct ps_engine_escrow {
    const char *key;
    size_t key_len;
    const uint8_t *value;
    size_t len;
};

/* What the audit needs of the event itself; borrowed until the next call. */
struct ps_engine_event {
    const struct ps_schema *schema;
    const char *event_id;     /* "" when the schema names none */
    const char *event_type;   /* "" likewise */
    int64_t event_time_ms;    /* -1 when the event carries no time */
    const char *subject;      /* the subject's pseudonym in the audit domain, or NULL */
    int64_t key_id;           /* key of the audit pseudonym, -1 when none */
};

struct ps_engine;
struct ps_engine_worker;

/* Compiles every plan. doc, reg and kr are borrowed and must outlive the
 * engine. policy_hash identifies the policy (hex) in output headers.
 * PS_ERR_CONFIG with the policy file, line and the fix. */
ps_err_t ps_engine_new(const struct ps_policy_doc *doc, const char *policy_hash,
                       const struct ps_registry *reg, const struct ps_keyring *kr,
                       struct ps_engine **engine_p, struct ps_error *err);
/* NULL is a no-op. */
void ps_engine_destroy(struct ps_engine *engine);

size_t ps_engine_destination_count(const struct ps_engine *engine);
const struct ps_policy_destination *ps_engine_destination(const struct ps_engine *engine,
                                                          size_t i);
const char *ps_engine_policy_hash(const struct ps_engine *engine);
/* The plan of destination d for a schema of the registry; NULL if unknown. */
const struct ps_plan *ps_engine_plan(const struct ps_engine *engine, const struct ps_schema *schema,
                                     size_t d);

/* limits may be NULL for the defaults. */
ps_err_t ps_engine_worker_new(const struct ps_engine *engine, const struct ps_codec_limits *limits,
                              struct ps_engine_worker **worker_p, struct ps_error *err);
/* NULL is a no-op. */
void ps_engine_worker_destroy(struct ps_engine_worker *worker);

/* Processes one input message value. On PS_OK, *outputs_p points to
 * ps_engine_destination_count() outputs, borrowed until the next call.
 * Otherwise the event is undecodable (PS_ERR_EMPTY, PS_ERR_FRAME,
 * PS_ERR_SCHEMA_UNKNOWN, PS_ERR_DECODE, PS_ERR_LIMIT): dead-letter it. */
ps_err_t ps_engine_process(struct ps_engine_worker *worker, const void *data, size_t len,
                           const struct ps_engine_output **outputs_p, struct ps_error *err);

/* The schema of the last event processed successfully (NULL before). */
const struct ps_schema *ps_engine_worker_schema(const struct ps_engine_worker *worker);

/* The last event processed successfully (NULL before). */
const struct ps_engine_event *ps_engine_worker_event(const struct ps_engine_worker *worker);

/* The opt-out state the next events are judged against (borrowed; NULL: none
 * loaded) and whether it is fresh; the pipeline sets it before each batch.
 * Destinations the opt-out applies to are withheld unless both hold. */
void ps_engine_worker_set_optout(struct ps_engine_worker *worker, const struct ps_optout *optout,
                                 int fresh);

/* Withholds destination d's output of the last event after the fact (the
 * pipeline found it cannot be delivered, e.g. too large for Kafka); detail
 * names the cause, never a value. The record counts as withheld in the audit. */
void ps_engine_worker_withhold(struct ps_engine_worker *worker, size_t d, ps_err_t reason,
                               const char *detail);

/* The escrow records the last event produced (sealed once per patient and
 * domain: a (domain, token) pair already escrowed by this worker is not sealed
 * again). Borrowed until the next call. */
const struct ps_engine_escrow *ps_engine_worker_escrow(const struct ps_engine_worker *worker,
                                                       size_t *count_p);
/* Forgets what was escrowed, so it is sealed again: after an aborted
 * transaction, whose escrow records never became visible. */
void ps_engine_worker_escrow_reset(struct ps_engine_worker *worker);

/* 1 when any destination needs the national data opt-out state. */
int ps_engine_needs_optout(const struct ps_engine *engine);

#endif
