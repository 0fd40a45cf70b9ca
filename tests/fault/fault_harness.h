/*
 * fault_harness: the in-process set-up every fault test shares. An embedded
 * broker (librdkafka's mock cluster, 3 brokers) with the integration tests'
 * topics, a throw-away keyring and opt-out list, a service configuration
 * with the demo policy, generated input, the pipeline run in this process
 * with a fault hook, and the no-loss check that reads every topic back.
 *
 * The mock writes no transaction markers and drops transactional offsets
 * (DESIGN.md §10), so what the checks assert is at-least-once: every input
 * event reaches every destination it should, nothing is lost; duplicates are
 * allowed and counted.
 */
#ifndef FAULT_HARNESS_H
#define FAULT_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "ps_error.h"
#include "ps_kafka.h"
#include "ps_pipeline.h"
#include "ps_runtime.h"

/* Kafka API keys and protocol error codes used for fault injection. */
#define FAULT_API_PRODUCE 0
#define FAULT_API_ADD_PARTITIONS_TO_TXN 24
#define FAULT_API_ADD_OFFSETS_TO_TXN 25
#define FAULT_API_END_TXN 26
#define FAULT_API_TXN_OFFSET_COMMIT 28
#define FAULT_KERR_NOT_COORDINATOR 16
#define FAULT_KERR_COORDINATOR_NOT_AVAILABLE 15
#define FAULT_KERR_COORDINATOR_LOAD_IN_PROGRESS 14
#define FAULT_KERR_TOPIC_AUTHORIZATION_FAILED 29
#define FAULT_KERR_CONCURRENT_TRANSACTIONS 51
#define FAULT_KERR_PRODUCER_FENCED 90

#define FAULT_INPUT "hospital.events"
#define FAULT_WARD "ward.dashboard"
#define FAULT_DLQ "pseudostream.dead-letter"
#define FAULT_AUDIT "pseudostream.audit"

struct fault_env {
    char dir[64];                    /* temporary folder, removed at teardown */
    char config[128];
    struct ps_kafka_broker *broker;
    const char *bootstraps;
    struct ps_runtime *rt;
    int transactional;
    int commit_timeout_ms;           /* passed to the pipeline (0: its default) */
};

/* Starts a broker, writes keyring, opt-out list and configuration
 * (delivery.mode transactional or at_least_once) and opens the runtime. */
ps_err_t fault_env_setup(struct fault_env *env, int transactional, struct ps_error *err);
void fault_env_teardown(struct fault_env *env);

/* Produces count generated events (Confluent framing, seed), with
 * malformed_rounds rounds of malformed messages among them. */
ps_err_t fault_env_produce(struct fault_env *env, size_t count, size_t malformed_rounds,
                           uint64_t seed, struct ps_error *err);

/* Produces one raw message (value may be NULL: a message with no value). */
ps_err_t fault_env_produce_raw(struct fault_env *env, const char *key, const void *value,
                               size_t len, struct ps_error *err);

/* Runs the pipeline in this thread until idle for idle_ms, with the fault
 * hook (NULL for none). batch_max and interval_ms shape the batches. */
ps_err_t fault_env_run(struct fault_env *env, size_t batch_max, int interval_ms, int idle_ms,
                       void (*hook)(void *, enum ps_pipeline_point, uint64_t), void *opaque,
                       struct ps_pipeline_stats *stats, struct ps_error *err);

/* What the topics hold after a run, against the input. */
struct fault_report {
    size_t inputs;          /* input messages */
    size_t malformed;       /* of which keyed "malformed" (generated garbage) */
    size_t missing_ward;    /* valid inputs with no ward record */
    size_t missing_dlq;     /* malformed inputs with no dead-letter record */
    size_t ward_records;
    size_t dlq_records;
    size_t dlq_without_reason;
    size_t audit_records;   /* one per input event processed (more with duplicates) */
    size_t duplicates;      /* records beyond the first per (topic, source) */
};

/* Reads the input, ward, dead-letter and audit topics back. An input counts
 * as "malformed" when its key is "malformed" or starts with "poison". */
ps_err_t fault_env_check(struct fault_env *env, struct fault_report *report,
                         struct ps_error *err);

/* Calls fn for every record of topic (from the beginning to the end). */
ps_err_t fault_env_read(struct fault_env *env, const char *topic,
                        void (*fn)(void *opaque, const struct ps_kafka_message *msg),
                        void *opaque, struct ps_error *err);

/* The value of header name of msg, or NULL. */
const struct ps_kafka_header *fault_header(const struct ps_kafka_message *msg, const char *name);

/* Prints the report on one line (for the test's log). */
void fault_report_print(const char *name, const struct fault_report *report);

/* Milliseconds sleep. */
void fault_sleep_ms(int ms);

#endif
