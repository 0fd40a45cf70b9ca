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
 *     subject's pseudonym with only our headers (policy hash, key id, lineage);
 *   - a withheld record is counted by reason;
 *   - one audit record (ps_audit.h) says what every destination got and why.
 * Between batches the opt-out feed is polled and the state's freshness
 * judged: stale state withholds from the destinations it applies to, with an
 * alarm log line when it turns stale and when it recovers.
 * Errors: a retriable commit is retried; an abortable error aborts the
 * transaction and rewinds the consumer to its committed offsets; a fatal error
 * ends the loop with PS_ERR_KAFKA_FATAL for the process to exit non-zero.
 *
 * In at-least-once mode (no transactions) the producer is idempotent and the
 * batch's offsets are committed after every output was acknowledged.
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
#include "ps_optout.h"
#include "ps_optout_feed.h"

#define PS_PIPELINE_MAX_DESTINATIONS 64

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
    struct ps_codec_limits limits;
};

struct ps_pipeline_stats {
    uint64_t consumed;
    uint64_t dead_lettered;
    uint64_t dead_lettered_by_reason[64];   /* indexed by ps_err_t */
    uint64_t transactions;
    uint64_t aborted;
    uint64_t disclosed[PS_PIPELINE_MAX_DESTINATIONS];
    uint64_t withheld[PS_PIPELINE_MAX_DESTINATIONS];
    uint64_t withheld_by_reason[PS_PIPELINE_MAX_DESTINATIONS][64]; /* by ps_err_t */
    uint64_t audited;
    uint64_t escrowed;
};

/* Runs until stopped, idle, or a fatal error. Stats are added to *stats. */
ps_err_t ps_pipeline_run(const struct ps_engine *engine, const struct ps_pipeline_options *opt,
                         struct ps_pipeline_stats *stats, struct ps_error *err);

#endif
