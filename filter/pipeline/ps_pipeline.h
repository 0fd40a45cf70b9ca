/*
 * ps_pipeline: the batch loop that joins the layers (DESIGN.md §2).
 *
 * One consumed batch is one Kafka transaction holding every destination's
 * output, the dead-letter records and the input offsets: either all move
 * together or none do. Per input message:
 *   - undecodable input goes to the dead-letter topic (identifiable zone) with
 *     the input's key, value and headers and our reason headers;
 *   - every destination that may receive it gets its derived record: direct
 *     care under the input key with the input headers; secondary use under the
 *     subject's pseudonym with only our header (PS_LINEAGE_HEADER: input
 *     topic/partition/offset, policy hash, key id);
 *   - a withheld record is counted by reason;
 *   - one audit record (ps_audit.h) says what every destination got and why.
 * Between batches the opt-out feed is polled and the state's freshness
 * judged: stale state withholds from the destinations it applies to, with an
 * alarm log line when it turns stale and when it recovers.
 * Errors (librdkafka's classes, docs/DELIVERY.md): a retriable commit error is
 * retried with back-off, a bounded number of times; an abortable error aborts
 * the transaction and rewinds the consumer to its committed offsets; a commit
 * or abort that times out leaves the transaction undecided, so the producer
 * is destroyed and recreated (init_transactions settles the old transaction)
 * and the consumer rewound; a fatal error (fencing included) ends the loop
 * with PS_ERR_KAFKA_FATAL for the process to exit non-zero. A transaction is
 * never begun while the previous one is undecided. Partitions lost while a
 * batch is open abort it.
 *
 * A commit runs on a thread of its own (ps_task) while the loop polls the
 * next batch and derives it into a stage (ps_stage); the staged records are
 * sent once that commit has settled and the next transaction has begun, or
 * dropped with the batch if it failed. A revoke waits for a commit in flight.
 *
 * In at-least-once mode (no transactions) the producer is idempotent and
 * nothing waits per batch: a batch's offsets are committed asynchronously
 * once its outputs and those of every earlier batch are acknowledged; a
 * failed delivery rewinds the consumer (duplicates, never loss).
 *
 * Stop (*stop, from SIGTERM/SIGINT): the open batch is finished (committed)
 * or aborted within shutdown_grace_ms, then the group is left.
 */
#ifndef PS_PIPELINE_H
#define PS_PIPELINE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "ps_codec.h"
#include "ps_engine.h"
#include "ps_error.h"
#include "ps_kafka.h"
#include "ps_metrics.h"
#include "ps_optout.h"
#include "ps_optout_feed.h"

#define PS_PIPELINE_MAX_DESTINATIONS 64
/* The one header of every derived record (docs/WIRE-FORMAT.md):
 * "source=<topic>/<partition>/<offset>;policy=<sha-256 hex>;key_id=<n>", or
 * "policy=<sha-256 hex>" alone on anonymised output. */
#define PS_LINEAGE_HEADER "pseudostream.lineage"

/* Keyring reload between batches (a batch uses one keyring view): on
 * *requested (SIGHUP) or when changed() says the file changed (checked every
 * few seconds), fn builds a new engine; the pipeline moves its worker to it and
 * calls release() to free the old one. */
struct ps_pipeline_reload {
    volatile sig_atomic_t *requested;     /* set by SIGHUP; cleared when served */
    void *opaque;
    ps_err_t (*fn)(void *opaque, const struct ps_engine **engine_p, struct ps_error *err);
    int (*changed)(void *opaque);
    void (*release)(void *opaque);
};

/* Points of a batch's life at which a test may inject a fault. */
enum ps_pipeline_point {
    PS_PIPELINE_BATCH_PRODUCED = 1, /* every output sent, transaction not yet committed */
    PS_PIPELINE_BATCH_SETTLED       /* committed (or, at-least-once, sealed) */
};

struct ps_pipeline_options {
    const char *bootstraps;
    const char *group_id;
    const char *transactional_id;          /* NULL: at-least-once mode */
    const struct ps_kafka_property *props; /* librdkafka pass-through */
    size_t prop_count;
    const char *const *topics;
    size_t topic_count;
    const char *dead_letter_topic;
    const char *audit_topic;               /* one audit record per input event */
    const char *escrow_topic;              /* sealed identifiers, for re-identification */
    struct ps_optout *optout;              /* NULL when no destination needs it */
    struct ps_optout_feed *optout_feed;    /* caught up already; polled between batches */
    int64_t optout_max_age_ms;
    size_t batch_max_events;
    int transaction_interval_ms;
    int idle_exit_ms;                      /* > 0: return after this long with no input */
    const volatile sig_atomic_t *stop;     /* set by a signal handler to stop */
    int shutdown_grace_ms;                 /* once *stop is set: finish or abort the open
                                            * batch and leave within this (0: 30 s) */
    int commit_timeout_ms;                 /* one commit or abort attempt (0: 30 s); after
                                            * a timeout the producer is recreated */
    /* Tests only (tests/fault): called at fixed points of every batch so a fault
     * can be injected at an exact moment. NULL in production. */
    void (*fault_hook)(void *opaque, enum ps_pipeline_point point, uint64_t batch);
    void *fault_opaque;
    /* Benchmarks only (pseudostream bench pipeline): with passthrough_count > 0
     * the engine is not used; every input's key and value are copied, unread,
     * to each of passthrough_topics inside the same transactions (the
     * baseline the filter is measured against). */
    const char *const *passthrough_topics;
    size_t passthrough_count;
    /* Benchmarks only: called once a batch's transaction has committed (at
     * least once: its outputs are sealed), with the batch; NULL in production. */
    void (*settled_hook)(void *opaque, const struct ps_kafka_batch *batch);
    void *settled_opaque;
    struct ps_pipeline_reload reload;      /* fn NULL: no reloading */
    struct ps_metrics *metrics;            /* NULL: no metrics */
    struct ps_codec_limits limits;
};

struct ps_pipeline_stats {
    uint64_t consumed;
    uint64_t dead_lettered;
    uint64_t dead_lettered_by_reason[64];   /* indexed by ps_err_t */
    uint64_t transactions;                  /* committed batches (at-least-once: sealed) */
    uint64_t aborted;                       /* aborted batches (at-least-once: rewinds) */
    uint64_t commit_retries;                /* retriable commit errors retried */
    uint64_t producer_restarts;             /* producers recreated after a timeout */
    uint64_t disclosed[PS_PIPELINE_MAX_DESTINATIONS];
    uint64_t withheld[PS_PIPELINE_MAX_DESTINATIONS];
    uint64_t withheld_by_reason[PS_PIPELINE_MAX_DESTINATIONS][64]; /* by ps_err_t */
    uint64_t audited;
    uint64_t escrowed;
    uint64_t keyring_reloads;
    uint64_t plans_published;               /* AuditPlan records written (ps_audit.h) */
    uint64_t staged;                        /* events derived while the previous commit ran */
    uint64_t staged_dropped;                /* ... dropped because that commit failed */
};

/* The input record a pipeline output came from, "<topic>/<partition>/<offset>":
 * the source= part of its PS_LINEAGE_HEADER (derived records) or its
 * pseudostream.source header (dead letters). Points into msg's header; 0 when
 * msg carries neither (anonymised output, someone else's record). */
int ps_pipeline_output_source(const struct ps_kafka_message *msg, const char **source_p,
                              size_t *len_p);

/* Runs until stopped, idle, or a fatal error. Stats are added to *stats. */
ps_err_t ps_pipeline_run(const struct ps_engine *engine, const struct ps_pipeline_options *opt,
                         struct ps_pipeline_stats *stats, struct ps_error *err);

#endif
