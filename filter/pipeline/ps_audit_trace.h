/*
 * ps_audit_trace: one patient's audit records, for a subject access request
 * (`pseudostream audit trace`).
 *
 * The audit topic names patients only by their pseudonym in the audit domain
 * (PS_AUDIT_DOMAIN, ps_audit.h). The trace recomputes the subject's token
 * under every keyring entry, retired ones included (a record carries the token
 * of the key that was current for its event), reads the audit topic from its
 * beginning to its current end, and writes the records whose subject is one
 * of those tokens, and nothing of any other record.
 */
#ifndef PS_AUDIT_TRACE_H
#define PS_AUDIT_TRACE_H

#include <stddef.h>
#include <stdio.h>

#include "ps_error.h"
#include "ps_kafka.h"
#include "ps_keyring.h"
#include "ps_schema.h"

/* Default name of the audit topic. */
#define PS_AUDIT_TOPIC_DEFAULT "pseudostream.audit"

/* Reads topic on bootstraps (props: librdkafka properties, prop_count
 * entries, may be NULL when 0) and writes to out, one line each, the readable
 * JSON form (ps_codec.h) of every audit record whose subject is nhs_number's
 * audit pseudonym under any entry of kr, then, once each, the AuditPlan
 * records those name (schemas/audit/audit_plan.avsc: which fields each
 * disclosure held; a named plan missing from the topic is said in a warning
 * log line). schema is the audit record schema
 * (schemas/audit/audit_record.avsc); a message is an audit record when it is
 * single-object framed with that schema's fingerprint, a plan record with the
 * plan schema's. Other messages, and records that do not decode, are skipped
 * and counted in a warning log line (counts only). *matches_p (may be NULL)
 * gets the number of audit records written.
 *
 * Errors: PS_ERR_INVALID for a missing argument; PS_ERR_NHS_INVALID when
 * nhs_number is not a valid NHS number (the message never repeats it);
 * PS_ERR_SCHEMA when schema has no optional string field "subject"; the
 * reader's Kafka errors and PS_ERR_TIMEOUT when the topic's end did not come
 * within 10 s of the last message; PS_ERR_IO when out could not be written.
 * Lines already written stay written. Blocking; not for the service's hot
 * path.
 */
ps_err_t ps_audit_trace(const char *bootstraps, const char *topic,
                        const struct ps_kafka_property *props, size_t prop_count,
                        const struct ps_schema *schema, const struct ps_keyring *kr,
                        const char *nhs_number, FILE *out, size_t *matches_p,
                        struct ps_error *err);

#endif
