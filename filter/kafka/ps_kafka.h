/*
 * ps_kafka: the only place librdkafka is seen. Consumer-group member,
 * transactional (or idempotent) producer, a plain topic reader, and the
 * embedded development broker (librdkafka's mock cluster).
 *
 * Error classes follow librdkafka's transactional API and stay distinct:
 *   PS_ERR_KAFKA_RETRIABLE  retry the same call;
 *   PS_ERR_KAFKA_ABORTABLE  abort the transaction, rewind, carry on;
 *   PS_ERR_KAFKA_FATAL      stop the process (fencing included);
 *   PS_ERR_TIMEOUT          the call timed out (callers recreate the producer).
 * Anything librdkafka reports without a class is PS_ERR_KAFKA_FATAL.
 *
 * librdkafka's logs are routed through ps_log (component "kafka"). No payload
 * ever reaches a log line: only topics, partitions, offsets and error names.
 *
 * Properties are passed to rd_kafka_conf_set unchanged, in order, after our
 * defaults, except those our guarantees depend on (enable.auto.commit,
 * isolation.level, transactional.id, enable.idempotence, group.id) which are
 * set last and logged when a property tried to change them.
 */
#ifndef PS_KAFKA_H
#define PS_KAFKA_H

#include <stddef.h>
#include <stdint.h>

#include "ps_error.h"

struct ps_kafka_property {
    const char *key;
    const char *value;
};

struct ps_kafka_header {
    const char *name;
    const void *value;
    size_t len;
};

/* One consumed message; every pointer is borrowed from its batch. */
struct ps_kafka_message {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;            /* -1 when absent */
    const void *key;                 /* may be NULL */
    size_t key_len;
    const void *value;               /* may be NULL (tombstone) */
    size_t len;
    struct ps_kafka_header *headers; /* header_count entries */
    size_t header_count;
};

/* ------------------------------------------------------------------ broker */

struct ps_kafka_broker;

/* Starts an embedded mock cluster of broker_count brokers on loopback. */
ps_err_t ps_kafka_broker_new(int broker_count, struct ps_kafka_broker **broker_p,
                             struct ps_error *err);
/* "127.0.0.1:port,..." owned by the broker. */
const char *ps_kafka_broker_bootstraps(const struct ps_kafka_broker *broker);
/* Creates a topic (replication: min(3, brokers)). Existing topic: PS_OK. */
ps_err_t ps_kafka_broker_topic_create(struct ps_kafka_broker *broker, const char *topic,
                                      int partitions, struct ps_error *err);
/* Stops the cluster. NULL is a no-op. */
void ps_kafka_broker_destroy(struct ps_kafka_broker *broker);

/* Fault injection for tests: the next count requests with Kafka API key
 * api_key (Produce 0, Fetch 1, Metadata 3, OffsetCommit 8, OffsetFetch 9,
 * FindCoordinator 10, JoinGroup 11, Heartbeat 12, SyncGroup 14,
 * InitProducerId 22, AddPartitionsToTxn 24, AddOffsetsToTxn 25, EndTxn 26,
 * TxnOffsetCommit 28), to whichever broker, fail with the Kafka protocol
 * error code kafka_error (e.g. 15 COORDINATOR_NOT_AVAILABLE, 90
 * PRODUCER_FENCED). count at most 1000. */
ps_err_t ps_kafka_broker_fail_requests(struct ps_kafka_broker *broker, int api_key, size_t count,
                                       int kafka_error, struct ps_error *err);
/* Drops failures injected for api_key that no request has consumed yet (an
 * injected error for a request that is never sent waits for the next one). */
void ps_kafka_broker_clear_failures(struct ps_kafka_broker *broker, int api_key);

/* Fault injection for tests: broker broker_id (1..count) stops answering
 * (its connections are closed and new ones refused) when down is non-zero,
 * and comes back when it is zero. */
ps_err_t ps_kafka_broker_set_down(struct ps_kafka_broker *broker, int32_t broker_id, int down,
                                  struct ps_error *err);
/* Fault injection for tests: every response of broker broker_id is delayed by
 * rtt_ms (0 removes the delay). */
ps_err_t ps_kafka_broker_set_rtt(struct ps_kafka_broker *broker, int32_t broker_id, int rtt_ms,
                                 struct ps_error *err);
/* Moves the leadership of a topic's partition to broker broker_id. */
ps_err_t ps_kafka_broker_partition_leader(struct ps_kafka_broker *broker, const char *topic,
                                          int32_t partition, int32_t broker_id,
                                          struct ps_error *err);
/* Pins the coordinator of a group ("group", group id) or of a transactional
 * producer ("transaction", transactional id) to broker broker_id. */
ps_err_t ps_kafka_broker_coordinator(struct ps_kafka_broker *broker, const char *kind,
                                     const char *key, int32_t broker_id, struct ps_error *err);

/* ---------------------------------------------------------------- consumer */

struct ps_kafka_consumer;
struct ps_kafka_batch;

/* A consumer-group member (auto commit off, read_committed, cooperative-sticky,
 * auto.offset.reset=earliest unless properties say otherwise). */
ps_err_t ps_kafka_consumer_new(const char *bootstraps, const char *group_id,
                               const struct ps_kafka_property *props, size_t prop_count,
                               struct ps_kafka_consumer **consumer_p, struct ps_error *err);
ps_err_t ps_kafka_consumer_subscribe(struct ps_kafka_consumer *consumer,
                                     const char *const *topics, size_t count,
                                     struct ps_error *err);
/* Leaves the group and destroys. NULL is a no-op. */
void ps_kafka_consumer_destroy(struct ps_kafka_consumer *consumer);

/* Number of partitions currently assigned. Safe from any thread. */
int ps_kafka_consumer_assigned(const struct ps_kafka_consumer *consumer);

/* Non-zero when the group took this member's partitions away without a
 * revoke (session timeout, fencing): work in flight for them must not
 * commit. Cleared by the next assignment. */
int ps_kafka_consumer_assignment_lost(const struct ps_kafka_consumer *consumer);

/* Called inside poll_batch, from the rebalance callback, before partitions
 * are revoked (lost is 0) or after they were lost (lost is 1), and before
 * they are given up: the place to settle what was done for them. NULL
 * removes the hook. The hook runs on the polling thread. */
typedef void (*ps_kafka_revoke_fn)(void *opaque, int lost);
void ps_kafka_consumer_on_revoke(struct ps_kafka_consumer *consumer, ps_kafka_revoke_fn fn,
                                 void *opaque);

/* Polls until max messages arrived or timeout_ms passed since the first one
 * (or since the call, while none came). The batch may hold zero messages.
 * The batch records the next offset of each partition it holds. Rebalances
 * happen inside this call: messages of partitions revoked or lost meanwhile
 * are dropped from the batch. PS_ERR_KAFKA_FATAL on a fatal consumer error.
 * Not thread-safe: one thread polls, processes and commits. */
ps_err_t ps_kafka_consumer_poll_batch(struct ps_kafka_consumer *consumer, size_t max,
                                      int timeout_ms, struct ps_kafka_batch **batch_p,
                                      struct ps_error *err);

size_t ps_kafka_batch_count(const struct ps_kafka_batch *batch);
const struct ps_kafka_message *ps_kafka_batch_message(const struct ps_kafka_batch *batch,
                                                      size_t i);
/* Releases the messages. NULL is a no-op. Every batch must be destroyed
 * before its consumer (its messages hold references on the client). */
void ps_kafka_batch_destroy(struct ps_kafka_batch *batch);

/* Commits the batch's next offsets synchronously (at-least-once mode). */
ps_err_t ps_kafka_consumer_commit(struct ps_kafka_consumer *consumer,
                                  const struct ps_kafka_batch *batch, struct ps_error *err);
/* Seeks every assigned partition back to its committed offset (after an abort). */
ps_err_t ps_kafka_consumer_rewind(struct ps_kafka_consumer *consumer, struct ps_error *err);

/* ---------------------------------------------------------------- producer */

struct ps_kafka_producer;

/* transactional_id NULL: an idempotent producer (at-least-once mode).
 * Otherwise a transactional producer; call init_transactions before use. */
ps_err_t ps_kafka_producer_new(const char *bootstraps, const char *transactional_id,
                               const struct ps_kafka_property *props, size_t prop_count,
                               struct ps_kafka_producer **producer_p, struct ps_error *err);
/* Flushes (up to 10 s) and destroys. NULL is a no-op. */
void ps_kafka_producer_destroy(struct ps_kafka_producer *producer);
/* Drops every message queued or in flight (their delivery reports say
 * purged), so that a destroy right after does not wait for them: for a
 * producer whose transaction is undecided or whose grace ran out. NULL is a
 * no-op. */
void ps_kafka_producer_purge(struct ps_kafka_producer *producer);

ps_err_t ps_kafka_producer_init_transactions(struct ps_kafka_producer *producer, int timeout_ms,
                                             struct ps_error *err);
ps_err_t ps_kafka_producer_begin(struct ps_kafka_producer *producer, struct ps_error *err);

/* Produces a copy of key/value/headers. partition -1: by key (murmur2, as the
 * Java client). Synchronous failure inside a transaction is ABORTABLE. */
ps_err_t ps_kafka_producer_send(struct ps_kafka_producer *producer, const char *topic,
                                int32_t partition, const void *key, size_t key_len,
                                const void *value, size_t len,
                                const struct ps_kafka_header *headers, size_t header_count,
                                struct ps_error *err);

/* Sends the batch's offsets with the consumer's group metadata into the
 * transaction and commits it. batch may be NULL (nothing consumed).
 * PS_ERR_KAFKA_RETRIABLE and PS_ERR_TIMEOUT leave the transaction undecided:
 * call commit again (offsets already in the transaction are not sent twice),
 * or abort, or recreate the producer; never begin another transaction.
 * PS_ERR_KAFKA_ABORTABLE: abort. PS_ERR_KAFKA_FATAL (fencing included): stop. */
ps_err_t ps_kafka_producer_commit(struct ps_kafka_producer *producer,
                                  struct ps_kafka_consumer *consumer,
                                  const struct ps_kafka_batch *batch, int timeout_ms,
                                  struct ps_error *err);
ps_err_t ps_kafka_producer_abort(struct ps_kafka_producer *producer, int timeout_ms,
                                 struct ps_error *err);
/* Waits for every outstanding delivery (at-least-once mode). PS_ERR_KAFKA when
 * a delivery failed since the last flush. */
ps_err_t ps_kafka_producer_flush(struct ps_kafka_producer *producer, int timeout_ms,
                                 struct ps_error *err);

/* ----------------------------------------------- at-least-once: epochs
 * An idempotent producer (at-least-once mode) does not flush per batch:
 * every message sent between epoch_open and epoch_seal is tagged with the
 * epoch, and a sealed epoch's input offsets are committed (asynchronously)
 * once its outputs and those of every earlier epoch are acknowledged. */

/* Upper bound on epochs sealed and not yet committed; epoch_seal waits for
 * the oldest to settle when it is reached (back-pressure). */
#define PS_KAFKA_EPOCHS_MAX 16

/* Starts tagging sends with a new epoch. PS_ERR_INVALID on a transactional
 * producer or while an epoch is open. */
ps_err_t ps_kafka_producer_epoch_open(struct ps_kafka_producer *producer, struct ps_error *err);

/* Closes the open epoch and attaches a copy of the batch's next offsets (to be
 * committed through consumer, which must outlive the producer's epochs).
 * When PS_KAFKA_EPOCHS_MAX epochs are pending, waits up to timeout_ms for
 * the oldest to settle first. Errors as ps_kafka_producer_settle. */
ps_err_t ps_kafka_producer_epoch_seal(struct ps_kafka_producer *producer,
                                      struct ps_kafka_consumer *consumer,
                                      const struct ps_kafka_batch *batch, int timeout_ms,
                                      struct ps_error *err);

/* Serves delivery reports for up to timeout_ms (0: what is there) and
 * commits the offsets of every leading epoch whose outputs are all
 * acknowledged: asynchronously, or synchronously when sync is non-zero (at
 * shutdown and on revoke). With timeout_ms > 0 it returns early once no
 * epoch is pending. PS_ERR_KAFKA_ABORTABLE when a delivery of a pending
 * epoch failed: nothing from that epoch on is committed, and the caller
 * rewinds the consumer and calls epochs_discard. PS_ERR_KAFKA_FATAL on a
 * fatal producer error. PS_ERR_TIMEOUT when sync and epochs remain. */
ps_err_t ps_kafka_producer_settle(struct ps_kafka_producer *producer, int timeout_ms, int sync,
                                  struct ps_error *err);

/* Forgets every pending epoch (after a rewind: their input is read again).
 * Late delivery reports of their messages are ignored. */
void ps_kafka_producer_epochs_discard(struct ps_kafka_producer *producer);

/* Epochs sealed and not yet committed. */
size_t ps_kafka_producer_epochs_pending(const struct ps_kafka_producer *producer);

/* ------------------------------------------------------------------ reader */

struct ps_kafka_reader;

/* Reads a whole topic from the beginning to the high watermark of every
 * partition at the time of creation (no group, no commits).
 * enable.partition.eof is guarded too: it is how the end is seen past
 * transaction markers. PS_ERR_KAFKA_RETRIABLE when the topic is unknown
 * (the mock cluster creates any topic asked about instead). */
ps_err_t ps_kafka_reader_new(const char *bootstraps, const char *topic,
                             const struct ps_kafka_property *props, size_t prop_count,
                             struct ps_kafka_reader **reader_p, struct ps_error *err);
/* Next message (borrowed until the next call). PS_ERR_STOPPED at the end,
 * PS_ERR_TIMEOUT when nothing came in timeout_ms before the end. */
ps_err_t ps_kafka_reader_next(struct ps_kafka_reader *reader, int timeout_ms,
                              const struct ps_kafka_message **msg_p, struct ps_error *err);
/* NULL is a no-op. */
void ps_kafka_reader_destroy(struct ps_kafka_reader *reader);

/* Total messages between low and high watermarks across a topic's partitions
 * (on a real broker, transaction markers count too). */
ps_err_t ps_kafka_topic_count(const char *bootstraps, const char *topic, int64_t *count_p,
                              struct ps_error *err);

/* ------------------------------------------------------------------- tail
 * Added for the opt-out feed (issue 3); implemented in ps_kafka_tail.c.
 * Only appended: nothing above changed. */

struct ps_kafka_tail;

/* Follows every partition the topic has at creation, from start_offsets[p]
 * (the next offset to read; a negative value, or a partition p >=
 * start_count, means from the beginning), with no end, no group membership
 * and no commits: the live continuation of a ps_kafka_reader. A partition
 * added to the topic after creation is not followed. Guarded like the
 * reader (group.id, enable.auto.commit, isolation.level=read_committed,
 * enable.partition.eof=false). PS_ERR_KAFKA_RETRIABLE when the topic is
 * unknown; PS_ERR_CONFIG for a property librdkafka refuses. */
ps_err_t ps_kafka_tail_new(const char *bootstraps, const char *topic,
                           const struct ps_kafka_property *props, size_t prop_count,
                           const int64_t *start_offsets, size_t start_count,
                           struct ps_kafka_tail **tail_p, struct ps_error *err);
/* Next message, waiting at most timeout_ms; 0 returns at once with what has
 * already been fetched. PS_OK with *msg_p NULL when nothing came (the usual
 * case: this is not an error). The message is borrowed until the next call
 * or destroy. PS_ERR_KAFKA_FATAL on a fatal client error; other consumer
 * errors are logged and left to librdkafka's retries. Not thread-safe. */
ps_err_t ps_kafka_tail_next(struct ps_kafka_tail *tail, int timeout_ms,
                            const struct ps_kafka_message **msg_p, struct ps_error *err);
/* Number of partitions followed. */
int ps_kafka_tail_partitions(const struct ps_kafka_tail *tail);
/* NULL is a no-op. */
void ps_kafka_tail_destroy(struct ps_kafka_tail *tail);

/* ------------------------------------------------------------------- lag */

/* The consumer's lag on topic: over its assigned partitions, the last stable
 * offset (read_committed) minus the position; partitions with no position yet
 * count 0. For metrics and autoscaling. */
ps_err_t ps_kafka_consumer_lag(struct ps_kafka_consumer *consumer, const char *topic,
                               int64_t *lag_p, struct ps_error *err);

#endif
