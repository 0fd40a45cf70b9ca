/*
 * ps_pipeline_int: what the batch loop (ps_pipeline.c) and the per-event
 * records (ps_pipeline_event.c) share. Not part of the pipeline's interface.
 */
#ifndef PS_PIPELINE_INT_H
#define PS_PIPELINE_INT_H

#include <time.h>

#include "ps_audit.h"
#include "ps_buf.h"
#include "ps_pipeline.h"
#include "ps_stage.h"
#include "ps_task.h"

#define PS_HEADER_MAX 32
/* AuditPlan records: how many are remembered as published, and how often one
 * still in use is written again (docs/POLICY.md, audit records). */
#define PS_PLANS_TRACKED 256
#define PS_PLAN_REPUBLISH_MS (3600 * 1000)
/* Retriable commit or abort errors are retried this many times, sleeping
 * PS_RETRY_BACKOFF_MS doubled per attempt in between (0.1 s to 1.6 s), then
 * treated as an undecided transaction (the producer is recreated). */
#define PS_COMMIT_RETRIES 5
#define PS_RETRY_BACKOFF_MS 100
#define PS_TXN_TIMEOUT_MS 30000
#define PS_REWIND_RETRIES 3
/* Aborts (or at-least-once rewinds) in a row after which the producer is
 * recreated: librdkafka caches some errors per topic (an authorisation
 * failure fails every later send at once), and a new client starts clean. */
#define PS_ABORTS_BEFORE_RESTART 3

struct pipeline;

/* A transaction's commit, run on the committer task while the loop derives
 * the next batch. Written by the task while active and busy; read by the
 * loop only after ps_task_wait. */
struct commit_job {
    struct pipeline *pl;
    struct ps_kafka_batch *batch; /* owned while active */
    uint64_t batch_no;
    int active;                   /* started and not yet settled by the loop */
    int64_t stop_deadline;        /* the task's own view of the stop grace */
    ps_err_t rc;
    struct ps_error err;
};

struct pipeline {
    const struct ps_engine *engine;
    const struct ps_pipeline_options *opt;
    struct ps_pipeline_stats *stats;
    struct ps_kafka_consumer *consumer;
    struct ps_kafka_producer *producer;
    struct ps_engine_worker *worker;
    int transactional;
    uint64_t audit_fingerprint;
    struct ps_buf audit;
    struct ps_audit_destination *audit_dsts;
    int optout_stale_logged;
    int64_t reload_checked;
    uint64_t batch_no;       /* batches begun, for the fault hook and logs */
    int consecutive_aborts;  /* aborts or rewinds since the last good batch */
    int64_t stop_deadline;   /* monotonic ms by which to be gone; 0: no stop yet */
    int64_t lag_checked;
    int last_assigned;
    uint64_t metrics_committed;
    uint64_t metrics_aborted;
    const struct ps_kafka_batch *batch; /* the batch being worked on, for the settled hook */
    /* AuditPlan records on the audit topic, by plan id (publish_plan). */
    struct {
        char id[PS_AUDIT_PLAN_ID_MAX];
        const char *engine_id; /* the engine's copy of id last seen */
        int64_t at_ms;
    } published[PS_PLANS_TRACKED];
    size_t plans_published;
    /* Transactional mode: records derived while the previous commit runs. */
    struct ps_stage *stage;
    int staging;                        /* sends go to stage, not to the producer */
    struct ps_task *committer;
    struct commit_job job;
};

#define PS_RELOAD_CHECK_MS 5000
/* Kafka's default message.max.bytes (broker and producer): a record above it
 * fails its send on every retry. Headers and framing are allowed for. */
#define PS_PIPELINE_MAX_RECORD_BYTES 1000000
#define PS_RECORD_OVERHEAD 1024
/* Most bytes a batch stages while the previous transaction commits; past it
 * the loop waits for the commit and sends the rest directly. */
#define PS_STAGE_MAX_BYTES (64u * 1024 * 1024)
#define PS_LAG_CHECK_MS 1000
/* pseudostream_event_processing_seconds observes one event in this many. */
#define PS_EVENT_TIMING_SAMPLE 16

double ps_pipeline_seconds_since(const struct timespec *t0);
/* Index of topic among the input topics (for metric labels); 0 if absent. */
size_t ps_pipeline_topic_index(const struct ps_pipeline_options *opt, const char *topic);

/* One consumed message through the engine: its records to every destination
 * that may have them, its dead letter, its audit record (and any plan record
 * it names), its escrow records, all through the producer or, while
 * pl->staging, into pl->stage. Kafka error classes as ps_kafka_producer_send;
 * PS_ERR_KAFKA_ABORTABLE when the audit record cannot be made. */
ps_err_t ps_pipeline_process_message(struct pipeline *pl, const struct ps_kafka_message *msg,
                                     struct ps_error *err);

/* After a failed batch: the plan records it wrote may never have committed. */
void ps_pipeline_forget_plans(struct pipeline *pl);

#endif
