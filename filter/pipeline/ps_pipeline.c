#include "ps_pipeline.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ps_audit.h"
#include "ps_buf.h"
#include "ps_fingerprint.h"
#include "ps_frame.h"
#include "ps_log.h"
#include "ps_time.h"

#define PS_HEADER_MAX 32
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
};

#define PS_RELOAD_CHECK_MS 5000
/* Kafka's default message.max.bytes (broker and producer): a record above it
 * fails its send on every retry. Headers and framing are allowed for. */
#define PS_PIPELINE_MAX_RECORD_BYTES 1000000
#define PS_RECORD_OVERHEAD 1024
#define PS_LAG_CHECK_MS 1000

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static size_t topic_index(const struct ps_pipeline_options *opt, const char *topic)
{
    for (size_t i = 0; i < opt->topic_count; i++) {
        if (strcmp(opt->topics[i], topic) == 0) {
            return i;
        }
    }
    return 0;
}

/* Once a poll-loop turn: liveness, transactions, assignment, rebalances, and
 * (every second) lag per input topic and the opt-out state's age. */
static void loop_metrics(struct pipeline *pl)
{
    struct ps_metrics *m = pl->opt->metrics;
    if (!m) {
        return;
    }
    ps_metrics_health_tick(m);
    /* Transactions are counted where they end; the metrics follow the counts. */
    ps_metrics_counter_add(m, PS_M_TXN_COMMITTED, 0,
                           pl->stats->transactions - pl->metrics_committed);
    ps_metrics_counter_add(m, PS_M_TXN_ABORTED, 0, pl->stats->aborted - pl->metrics_aborted);
    pl->metrics_committed = pl->stats->transactions;
    pl->metrics_aborted = pl->stats->aborted;
    int assigned = pl->consumer ? ps_kafka_consumer_assigned(pl->consumer) : 0;
    if (assigned != pl->last_assigned) {
        ps_metrics_counter_add(m, PS_M_REBALANCES, 0, 1);
        ps_metrics_gauge_set(m, PS_M_ASSIGNED_PARTITIONS, 0, assigned);
        pl->last_assigned = assigned;
    }
    int64_t now = ps_time_mono_ms();
    if (!pl->consumer || now - pl->lag_checked < PS_LAG_CHECK_MS) {
        return;
    }
    pl->lag_checked = now;
    for (size_t t = 0; t < pl->opt->topic_count; t++) {
        int64_t lag = 0;
        if (ps_kafka_consumer_lag(pl->consumer, pl->opt->topics[t], &lag, NULL) == PS_OK) {
            ps_metrics_gauge_set(m, PS_M_CONSUMER_LAG, t, lag);
        }
    }
    if (pl->opt->optout) {
        ps_metrics_optout_as_of_set(m, ps_optout_as_of(pl->opt->optout));
    }
}

/* Lineage and provenance headers: ours, never the input's, on secondary use. */
struct lineage {
    char source[300];
    char key_id[16];
    char reason[32];
    char error[PS_ERROR_MSG_MAX];
};

static size_t add_header(struct ps_kafka_header *h, size_t n, const char *name, const char *value)
{
    if (n < PS_HEADER_MAX) {
        h[n].name = name;
        h[n].value = value;
        h[n].len = strlen(value);
        n++;
    }
    return n;
}

static size_t copy_input_headers(struct ps_kafka_header *h, const struct ps_kafka_message *msg)
{
    size_t n = 0;
    for (size_t i = 0; i < msg->header_count && n < PS_HEADER_MAX - 8; i++) {
        h[n++] = msg->headers[i];
    }
    return n;
}

static void audit_fields(struct ps_audit_destination *ad, const struct ps_plan *plan)
{
    const struct ps_plan_fields *f = &plan->fields;
    ad->kept = f->kept;
    ad->kept_count = f->kept_count;
    ad->pseudonymised = f->pseudonymised;
    ad->pseudonymised_count = f->pseudonymised_count;
    ad->generalised = (const char *const *)f->generalised;
    ad->generalised_count = f->generalised_count;
    ad->dropped = f->dropped;
    ad->dropped_count = f->dropped_count;
}

/* One audit record per input event, in the same transaction as the outputs.
 * outs is NULL for a dead-lettered event. */
static ps_err_t audit(struct pipeline *pl, const struct ps_kafka_message *msg,
                      const struct ps_engine_output *outs, const char *dead_reason,
                      struct ps_error *err)
{
    const struct ps_engine_event *ev = outs ? ps_engine_worker_event(pl->worker) : NULL;
    size_t count = outs ? ps_engine_destination_count(pl->engine) : 0;
    int64_t key_id = ev ? ev->key_id : -1;
    for (size_t d = 0; d < count; d++) {
        struct ps_audit_destination *ad = &pl->audit_dsts[d];
        const struct ps_policy_destination *dst = ps_engine_destination(pl->engine, d);
        memset(ad, 0, sizeof(*ad));
        ad->name = dst->name;
        ad->topic = dst->topic;
        ad->decision = outs[d].decision == PS_DISCLOSED ? PS_AUDIT_DISCLOSED : PS_AUDIT_WITHHELD;
        if (outs[d].decision == PS_WITHHELD) {
            ad->reason = ps_err_name(outs[d].reason);
            ad->detail = outs[d].detail;
        } else if (outs[d].plan) {
            audit_fields(ad, outs[d].plan);
            ad->lists_avro = outs[d].audit_lists; /* the same lists, encoded once */
            ad->lists_avro_len = outs[d].audit_lists_len;
        }
        if (outs[d].key_id && key_id < 0) {
            key_id = outs[d].key_id;
        }
    }
    struct ps_audit_record rec = {
        .event_id = ev ? ev->event_id : NULL, .event_type = ev ? ev->event_type : NULL,
        .event_time_ms = ev ? ev->event_time_ms : -1, .source_topic = msg->topic,
        .source_partition = msg->partition, .source_offset = msg->offset,
        .policy_hash = ps_engine_policy_hash(pl->engine), .key_id = key_id,
        .opt_out_as_of_ms = pl->opt->optout ? ps_optout_as_of(pl->opt->optout) : -1,
        .subject = ev ? ev->subject : NULL, .dead_letter_reason = dead_reason,
        .destinations = pl->audit_dsts, .destination_count = count,
        .processed_at_ms = ps_time_now_ms()};
    ps_buf_reset(&pl->audit);
    ps_err_t rc = ps_frame_write_single_object(pl->audit_fingerprint, &pl->audit);
    if (rc == PS_OK) {
        rc = ps_audit_encode(&rec, &pl->audit, err);
    }
    if (rc != PS_OK) {
        /* An event without its audit record must not commit: abort the batch. */
        ps_error_prefix(err, "audit record");
        return PS_ERR_KAFKA_ABORTABLE;
    }
    struct ps_kafka_header h[1] = {{"pseudostream.policy", ps_engine_policy_hash(pl->engine),
                                    strlen(ps_engine_policy_hash(pl->engine))}};
    pl->stats->audited++;
    return ps_kafka_producer_send(pl->producer, pl->opt->audit_topic, -1,
                                  ev && ev->subject ? ev->subject : NULL,
                                  ev && ev->subject ? strlen(ev->subject) : 0, pl->audit.data,
                                  pl->audit.len, h, 1, err);
}

static ps_err_t dead_letter(struct pipeline *pl, const struct ps_kafka_message *msg,
                            const struct ps_error *why, struct lineage *lin, struct ps_error *err)
{
    struct ps_kafka_header h[PS_HEADER_MAX];
    size_t n = copy_input_headers(h, msg);
    snprintf(lin->reason, sizeof(lin->reason), "%s", ps_err_name(why->code));
    snprintf(lin->error, sizeof(lin->error), "%s", why->msg);
    n = add_header(h, n, "pseudostream.reason", lin->reason);
    n = add_header(h, n, "pseudostream.error", lin->error);
    n = add_header(h, n, "pseudostream.source", lin->source);
    pl->stats->dead_lettered++;
    if ((unsigned)why->code < 64) {
        pl->stats->dead_lettered_by_reason[why->code]++;
    }
    /* A value larger than Kafka takes would fail the transaction on every
     * retry: the dead letter then goes without it, saying how long it was
     * (the input stays on its own topic, at the offset named by source). */
    const void *value = msg->value;
    size_t len = msg->len;
    char omitted[32];
    if (len + msg->key_len + PS_RECORD_OVERHEAD > PS_PIPELINE_MAX_RECORD_BYTES) {
        snprintf(omitted, sizeof(omitted), "%zu", len);
        n = add_header(h, n, "pseudostream.value_omitted", omitted);
        value = NULL;
        len = 0;
    }
    return ps_kafka_producer_send(pl->producer, pl->opt->dead_letter_topic, -1, msg->key,
                                  msg->key_len, value, len, h, n, err);
}

static ps_err_t deliver(struct pipeline *pl, const struct ps_kafka_message *msg, size_t d,
                        const struct ps_engine_output *out, struct lineage *lin,
                        struct ps_error *err)
{
    const struct ps_policy_destination *dst = ps_engine_destination(pl->engine, d);
    struct ps_kafka_header h[PS_HEADER_MAX];
    size_t n = 0;
    const void *key = out->key;
    size_t key_len = out->key_len;
    if (ps_plan_is_direct_care(dst)) {
        n = copy_input_headers(h, msg);
        key = msg->key;
        key_len = msg->key_len;
    }
    snprintf(lin->key_id, sizeof(lin->key_id), "%" PRIu32, out->key_id);
    n = add_header(h, n, "pseudostream.policy", ps_engine_policy_hash(pl->engine));
    /* Lineage names the identifiable input record: anonymised output must not
     * carry a way back to it, nor a key id that says it was pseudonymised. */
    if (dst->legal_basis.common_law != PS_COMMON_LAW_ANONYMISED) {
        n = add_header(h, n, "pseudostream.key_id", lin->key_id);
        n = add_header(h, n, "pseudostream.source", lin->source);
    }
    return ps_kafka_producer_send(pl->producer, dst->topic, -1, key, key_len, out->value, out->len,
                                  h, n, err);
}

/* At debug level, one line per event: where it came from and what each
 * destination got, with withholding reasons (which name fields, never values). */
static void log_decisions(struct pipeline *pl, const struct lineage *lin,
                          const struct ps_engine_output *outs)
{
    char line[1024];
    size_t n = 0;
    line[0] = '\0';
    for (size_t d = 0; d < ps_engine_destination_count(pl->engine) && n < sizeof(line); d++) {
        const struct ps_policy_destination *dst = ps_engine_destination(pl->engine, d);
        int w = outs[d].decision == PS_DISCLOSED
                    ? snprintf(line + n, sizeof(line) - n, "%s%s: disclosed", n ? "; " : "",
                               dst->name)
                    : snprintf(line + n, sizeof(line) - n, "%s%s: withheld (%s: %s)",
                               n ? "; " : "", dst->name, ps_err_name(outs[d].reason),
                               outs[d].detail);
        n += w > 0 ? (size_t)w : 0;
    }
    const struct ps_schema *schema = ps_engine_worker_schema(pl->worker);
    PS_DEBUG("pipeline", "event", "%s (%s): %s", lin->source,
             schema ? ps_schema_name(schema) : "?", line);
}

/* Sealed identifiers go out in the same transaction as the records whose
 * tokens they open; the escrow topic is compacted on "<domain>/<token>". */
static ps_err_t escrow(struct pipeline *pl, struct ps_error *err)
{
    size_t count = 0;
    const struct ps_engine_escrow *records = ps_engine_worker_escrow(pl->worker, &count);
    for (size_t i = 0; i < count; i++) {
        ps_err_t rc = ps_kafka_producer_send(pl->producer, pl->opt->escrow_topic, -1,
                                             records[i].key, records[i].key_len, records[i].value,
                                             records[i].len, NULL, 0, err);
        if (rc != PS_OK) {
            return rc;
        }
        pl->stats->escrowed++;
    }
    return PS_OK;
}

/* The benchmark's baseline: the same consumer, producer, transactions and
 * fan-out, with the input's bytes copied unread to every pass-through topic. */
static ps_err_t pass_through(struct pipeline *pl, const struct ps_kafka_message *msg,
                             struct ps_error *err)
{
    const struct ps_pipeline_options *opt = pl->opt;
    pl->stats->consumed++;
    for (size_t t = 0; t < opt->passthrough_count; t++) {
        ps_err_t rc = ps_kafka_producer_send(pl->producer, opt->passthrough_topics[t], -1,
                                             msg->key, msg->key_len, msg->value, msg->len, NULL,
                                             0, err);
        if (rc != PS_OK) {
            return rc;
        }
    }
    return PS_OK;
}

static ps_err_t process_message(struct pipeline *pl, const struct ps_kafka_message *msg,
                                struct ps_error *err)
{
    if (pl->opt->passthrough_count > 0) {
        return pass_through(pl, msg, err);
    }
    struct lineage lin;
    const struct ps_engine_output *outs;
    struct ps_error why = {0};
    snprintf(lin.source, sizeof(lin.source), "%s/%" PRId32 "/%" PRId64, msg->topic,
             msg->partition, msg->offset);
    struct ps_metrics *m = pl->opt->metrics;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pl->stats->consumed++;
    ps_metrics_counter_add(m, PS_M_CONSUMED, topic_index(pl->opt, msg->topic), 1);
    ps_err_t rc = msg->value ? ps_engine_process(pl->worker, msg->value, msg->len, &outs, &why)
                             : ps_error_set(&why, PS_ERR_EMPTY, "message has no value");
    ps_metrics_observe(m, PS_M_EVENT_SECONDS, seconds_since(&t0));
    if (rc != PS_OK) {
        ps_metrics_counter_add(m, PS_M_DEAD_LETTERED, (size_t)why.code, 1);
        rc = dead_letter(pl, msg, &why, &lin, err);
        return rc == PS_OK ? audit(pl, msg, NULL, ps_err_name(why.code), err) : rc;
    }
    rc = escrow(pl, err);
    if (rc != PS_OK) {
        return rc;
    }
    if (ps_log_get_level() <= PS_LOG_DEBUG) {
        log_decisions(pl, &lin, outs);
    }
    size_t count = ps_engine_destination_count(pl->engine);
    for (size_t d = 0; d < count; d++) {
        if (outs[d].decision == PS_DISCLOSED &&
            outs[d].len + outs[d].key_len + PS_RECORD_OVERHEAD > PS_PIPELINE_MAX_RECORD_BYTES) {
            /* Never retried forever, never passed on cut: withheld, audited. */
            ps_engine_worker_withhold(pl->worker, d, PS_ERR_LIMIT,
                                      "derived record larger than Kafka's message size limit");
        }
        if (outs[d].decision == PS_WITHHELD) {
            pl->stats->withheld[d]++;
            pl->stats->withheld_by_reason[d][(unsigned)outs[d].reason % 64]++;
            ps_metrics_counter_add2(m, PS_M_WITHHELD, d, (size_t)outs[d].reason, 1);
            continue;
        }
        rc = deliver(pl, msg, d, &outs[d], &lin, err);
        if (rc != PS_OK) {
            return rc;
        }
        pl->stats->disclosed[d]++;
        ps_metrics_counter_add(m, PS_M_PRODUCED, d, 1);
    }
    return audit(pl, msg, outs, NULL, err);
}

/* ------------------------------------------------------------- delivery
 * librdkafka's transactional pattern (examples/transactions.c): retriable
 * errors are retried, abortable ones abort and rewind, fatal ones stop; a
 * commit or abort that times out leaves the transaction undecided, and the
 * producer is recreated before anything else begins. */

/* Notes a stop request: from now on every Kafka call is bounded by the grace. */
static int stopping(struct pipeline *pl)
{
    const struct ps_pipeline_options *opt = pl->opt;
    if (pl->stop_deadline == 0 && opt->stop && *opt->stop) {
        int grace = opt->shutdown_grace_ms > 0 ? opt->shutdown_grace_ms : PS_TXN_TIMEOUT_MS;
        pl->stop_deadline = ps_time_mono_ms() + grace;
        PS_INFO("pipeline", "stopping", "stop requested: finishing the open batch within %d ms",
                grace);
    }
    return pl->stop_deadline != 0;
}

/* Timeout of one commit, abort or init_transactions call. */
static int call_timeout(struct pipeline *pl)
{
    int timeout = pl->opt->commit_timeout_ms > 0 ? pl->opt->commit_timeout_ms : PS_TXN_TIMEOUT_MS;
    if (stopping(pl)) {
        int64_t left = pl->stop_deadline - ps_time_mono_ms();
        /* Past the grace, one short attempt still tells commit from abort. */
        if (left < 100) {
            left = 100;
        }
        if (left < timeout) {
            timeout = (int)left;
        }
    }
    return timeout;
}

static void backoff(int attempt)
{
    int64_t ms = (int64_t)PS_RETRY_BACKOFF_MS << (attempt < 4 ? attempt : 4);
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void fault_point(struct pipeline *pl, enum ps_pipeline_point point)
{
    if (pl->opt->fault_hook) {
        pl->opt->fault_hook(pl->opt->fault_opaque, point, pl->batch_no);
    }
    if (point == PS_PIPELINE_BATCH_SETTLED && pl->opt->settled_hook && pl->batch) {
        pl->opt->settled_hook(pl->opt->settled_opaque, pl->batch);
    }
}

/* Seeks the consumer back to the committed offsets, retrying transient
 * failures: carrying on past a failed rewind would skip the aborted input. */
static ps_err_t rewind_consumer(struct pipeline *pl, struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    for (int attempt = 0; attempt < PS_REWIND_RETRIES; attempt++) {
        rc = ps_kafka_consumer_rewind(pl->consumer, err);
        if (rc == PS_OK || rc == PS_ERR_KAFKA_FATAL) {
            break;
        }
        backoff(attempt);
    }
    return rc;
}

/* After a commit or abort timed out (or kept failing) the outcome is unknown
 * here, and librdkafka 2.0.2 may not find its coordinator again (its
 * CHANGELOG, #4970). A new producer with the same transactional.id runs
 * init_transactions, which makes the broker finish the old transaction
 * either way; after that the committed offsets are the truth, so the
 * consumer is rewound to them. */
static ps_err_t restart_producer(struct pipeline *pl, struct ps_error *err)
{
    const struct ps_pipeline_options *opt = pl->opt;
    pl->stats->producer_restarts++;
    PS_WARN("pipeline", "producer_restart", "recreating the producer: %s", err ? err->msg : "");
    ps_engine_worker_escrow_reset(pl->worker);
    ps_kafka_producer_purge(pl->producer);
    ps_kafka_producer_destroy(pl->producer);
    pl->producer = NULL;
    ps_err_t rc = ps_kafka_producer_new(opt->bootstraps, opt->transactional_id, opt->props,
                                        opt->prop_count, &pl->producer, err);
    for (int attempt = 0; rc == PS_OK && pl->transactional; attempt++) {
        rc = ps_kafka_producer_init_transactions(pl->producer, call_timeout(pl), err);
        if ((rc != PS_ERR_KAFKA_RETRIABLE && rc != PS_ERR_TIMEOUT) ||
            attempt + 1 >= PS_COMMIT_RETRIES || stopping(pl)) {
            break;
        }
        backoff(attempt);
    }
    return rc == PS_OK ? rewind_consumer(pl, err) : rc;
}

static ps_err_t commit_batch(struct pipeline *pl, const struct ps_kafka_batch *batch,
                             struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    for (int attempt = 0;; attempt++) {
        /* Partitions taken away without a revoke may already be processed by
         * their new owner: this batch's work for them must not commit. */
        if (ps_kafka_consumer_assignment_lost(pl->consumer)) {
            return ps_error_set(err, PS_ERR_KAFKA_ABORTABLE,
                                "partitions were lost while the batch was open");
        }
        rc = ps_kafka_producer_commit(pl->producer, pl->consumer, batch, call_timeout(pl), err);
        if (rc != PS_ERR_KAFKA_RETRIABLE || attempt + 1 >= PS_COMMIT_RETRIES) {
            break;
        }
        pl->stats->commit_retries++;
        PS_WARN("pipeline", "commit_retry", "transaction commit will be retried: %s",
                err ? err->msg : "");
        backoff(attempt);
    }
    /* Still retriable after the retries: undecided, like a timeout. */
    return rc == PS_ERR_KAFKA_RETRIABLE ? PS_ERR_TIMEOUT : rc;
}

/* An abortable error: abort, rewind to the committed offsets, carry on. */
static ps_err_t abort_batch(struct pipeline *pl, struct ps_error *err)
{
    pl->stats->aborted++;
    PS_WARN("pipeline", "transaction_abort", "aborting the transaction and rewinding: %s",
            err ? err->msg : "");
    /* The aborted escrow records never became visible: seal them again. */
    ps_engine_worker_escrow_reset(pl->worker);
    /* A fault that outlives the abort would otherwise spin: back off. */
    if (pl->consecutive_aborts > 0) {
        backoff(pl->consecutive_aborts - 1);
    }
    pl->consecutive_aborts++;
    ps_err_t rc = PS_OK;
    for (int attempt = 0;; attempt++) {
        rc = ps_kafka_producer_abort(pl->producer, call_timeout(pl), err);
        if (rc != PS_ERR_KAFKA_RETRIABLE || attempt + 1 >= PS_COMMIT_RETRIES) {
            break;
        }
        backoff(attempt);
    }
    if (rc == PS_ERR_KAFKA_RETRIABLE || rc == PS_ERR_TIMEOUT ||
        (rc == PS_OK && pl->consecutive_aborts >= PS_ABORTS_BEFORE_RESTART)) {
        return restart_producer(pl, err);
    }
    return rc == PS_OK ? rewind_consumer(pl, err) : rc;
}

/* At-least-once: a delivery failed, so nothing from that batch on may be
 * committed. Forget the pending batches and read from the committed offsets
 * again (their outputs that did arrive are duplicated, nothing is lost). */
static ps_err_t rewind_at_least_once(struct pipeline *pl, struct ps_error *err)
{
    pl->stats->aborted++;
    PS_WARN("pipeline", "delivery_rewind", "a delivery failed, rewinding: %s",
            err ? err->msg : "");
    ps_engine_worker_escrow_reset(pl->worker);
    ps_kafka_producer_epochs_discard(pl->producer);
    if (pl->consecutive_aborts > 0) {
        backoff(pl->consecutive_aborts - 1);
    }
    if (++pl->consecutive_aborts >= PS_ABORTS_BEFORE_RESTART) {
        return restart_producer(pl, err);
    }
    return rewind_consumer(pl, err);
}

/* Revoke hook (inside poll_batch): in at-least-once mode, commit what is
 * acknowledged while the partitions are still ours; lost partitions may
 * already be someone else's, so their pending batches are forgotten. No
 * transaction is ever open here: a batch commits before the next poll. */
static void on_revoke(void *opaque, int lost)
{
    struct pipeline *pl = opaque;
    if (pl->transactional || !pl->producer) {
        return;
    }
    if (lost) {
        ps_kafka_producer_epochs_discard(pl->producer);
        return;
    }
    struct ps_error err = {0};
    /* A failure stays pending in the producer and makes the loop rewind
     * before it processes anything else. */
    if (ps_kafka_producer_settle(pl->producer, call_timeout(pl), 1, &err) != PS_OK) {
        PS_WARN("pipeline", "revoke_settle", "on revoke: %s", err.msg);
    }
}

static ps_err_t run_batch_at_least_once(struct pipeline *pl, struct ps_kafka_batch *batch,
                                        struct ps_error *err)
{
    ps_err_t rc = ps_kafka_producer_epoch_open(pl->producer, err);
    for (size_t i = 0; rc == PS_OK && i < ps_kafka_batch_count(batch); i++) {
        rc = process_message(pl, ps_kafka_batch_message(batch, i), err);
    }
    if (rc == PS_OK) {
        fault_point(pl, PS_PIPELINE_BATCH_PRODUCED);
        rc = ps_kafka_producer_epoch_seal(pl->producer, pl->consumer, batch, call_timeout(pl),
                                          err);
    }
    /* Too many batches unacknowledged: the broker is slow or away. Deliveries
     * end in success or, after message.timeout.ms, failure; wait for either. */
    while (rc == PS_ERR_TIMEOUT && !stopping(pl)) {
        rc = ps_kafka_producer_settle(pl->producer, 1000, 0, err);
        if (rc == PS_OK && ps_kafka_producer_epochs_pending(pl->producer) >= PS_KAFKA_EPOCHS_MAX) {
            rc = PS_ERR_TIMEOUT;
        }
    }
    if (rc == PS_OK || rc == PS_ERR_TIMEOUT) {
        pl->consecutive_aborts = 0;
        pl->stats->transactions++;
        fault_point(pl, PS_PIPELINE_BATCH_SETTLED);
        return PS_OK;
    }
    if (rc == PS_ERR_KAFKA_ABORTABLE) {
        return rewind_at_least_once(pl, err);
    }
    return rc;
}

/* Between batches: a new keyring view, if one was asked for (SIGHUP) or the
 * file changed. The worker moves to the new engine only here, so a batch
 * always uses one view; a keyring that does not load leaves the old view. */
static void maybe_reload(struct pipeline *pl)
{
    const struct ps_pipeline_reload *r = &pl->opt->reload;
    int64_t now = ps_time_mono_ms();
    int asked = r->requested && *r->requested;
    if (!r->fn || (!asked && now - pl->reload_checked < PS_RELOAD_CHECK_MS)) {
        return;
    }
    pl->reload_checked = now;
    if (!asked && !(r->changed && r->changed(r->opaque))) {
        return;
    }
    if (r->requested) {
        *r->requested = 0;
    }
    const struct ps_engine *engine = NULL;
    struct ps_engine_worker *worker = NULL;
    struct ps_error err = {0};
    if (r->fn(r->opaque, &engine, &err) != PS_OK ||
        ps_engine_worker_new(engine, &pl->opt->limits, &worker, &err) != PS_OK) {
        char line[PS_ERROR_MSG_MAX + PS_ERROR_FILE_MAX + 32];
        ps_error_format(&err, line, sizeof(line));
        PS_ERROR("pipeline", "keyring_reload_failed",
                 "the keyring was not reloaded, the running one stays in use: %s", line);
        return;
    }
    ps_engine_worker_destroy(pl->worker);
    pl->worker = worker;
    pl->engine = engine;
    if (r->release) {
        r->release(r->opaque);
    }
    pl->stats->keyring_reloads++;
    PS_INFO("pipeline", "keyring_reloaded", "keyring reloaded; new events use the new view");
}

/* Between batches: take in live opt-out updates and judge the state's age. */
static void refresh_optout(struct pipeline *pl)
{
    const struct ps_pipeline_options *opt = pl->opt;
    maybe_reload(pl);
    if (!opt->optout) {
        ps_engine_worker_set_optout(pl->worker, NULL, 0);
        return;
    }
    struct ps_error err = {0};
    if (opt->optout_feed && ps_optout_feed_poll(opt->optout_feed, &err) != PS_OK) {
        PS_WARN("pipeline", "optout_feed_error", "opt-out updates could not be applied: %s",
                err.msg);
    }
    int fresh = ps_optout_fresh(opt->optout, ps_time_now_ms(), opt->optout_max_age_ms);
    if (!fresh && !pl->optout_stale_logged) {
        PS_ERROR("pipeline", "optout_stale",
                 "the national data opt-out state is older than %lld hours: destinations it "
                 "applies to receive nothing until it is refreshed",
                 (long long)(opt->optout_max_age_ms / 3600000));
    } else if (fresh && pl->optout_stale_logged) {
        PS_INFO("pipeline", "optout_fresh", "the national data opt-out state is fresh again");
    }
    pl->optout_stale_logged = !fresh;
    ps_engine_worker_set_optout(pl->worker, opt->optout, fresh);
}

static ps_err_t run_batch(struct pipeline *pl, struct ps_kafka_batch *batch, struct ps_error *err)
{
    refresh_optout(pl);
    pl->batch_no++;
    pl->batch = batch;
    if (!pl->transactional) {
        return run_batch_at_least_once(pl, batch, err);
    }
    ps_err_t rc = ps_kafka_producer_begin(pl->producer, err);
    if (rc != PS_OK) {
        return rc;
    }
    for (size_t i = 0; rc == PS_OK && i < ps_kafka_batch_count(batch); i++) {
        rc = process_message(pl, ps_kafka_batch_message(batch, i), err);
    }
    if (rc == PS_OK) {
        fault_point(pl, PS_PIPELINE_BATCH_PRODUCED);
        rc = commit_batch(pl, batch, err);
    }
    if (rc == PS_OK) {
        pl->consecutive_aborts = 0;
        pl->stats->transactions++;
        fault_point(pl, PS_PIPELINE_BATCH_SETTLED);
        return PS_OK;
    }
    switch (rc) {
    case PS_ERR_KAFKA_FATAL:
        /* The producer is unusable (fenced: another instance owns the
         * transactional.id now); nothing of this batch commits. */
        return rc;
    case PS_ERR_KAFKA_ABORTABLE:
        return abort_batch(pl, err);
    case PS_ERR_TIMEOUT:
        if (stopping(pl)) {
            /* No time left to recreate: the next init_transactions with this
             * transactional.id settles it, and the input is read again. */
            PS_WARN("pipeline", "shutdown_undecided",
                    "stopping with the last transaction undecided: %s", err ? err->msg : "");
            return PS_OK;
        }
        return restart_producer(pl, err);
    default: {
        /* Not a Kafka error (out of memory, ...): never leave the transaction
         * open behind us; the error still ends the loop. */
        struct ps_error abort_err = {0};
        if (ps_kafka_producer_abort(pl->producer, call_timeout(pl), &abort_err) != PS_OK) {
            PS_WARN("pipeline", "abort_failed", "abort after an error: %s", abort_err.msg);
        }
        return rc;
    }
    }
}

static ps_err_t open_clients(struct pipeline *pl, struct ps_error *err)
{
    const struct ps_pipeline_options *opt = pl->opt;
    ps_err_t rc = ps_kafka_consumer_new(opt->bootstraps, opt->group_id, opt->props,
                                        opt->prop_count, &pl->consumer, err);
    if (rc == PS_OK) {
        rc = ps_kafka_consumer_subscribe(pl->consumer, opt->topics, opt->topic_count, err);
    }
    if (rc == PS_OK) {
        rc = ps_kafka_producer_new(opt->bootstraps, opt->transactional_id, opt->props,
                                   opt->prop_count, &pl->producer, err);
    }
    if (rc == PS_OK && pl->transactional) {
        rc = ps_kafka_producer_init_transactions(pl->producer, call_timeout(pl), err);
    }
    if (rc == PS_OK) {
        ps_kafka_consumer_on_revoke(pl->consumer, on_revoke, pl);
    }
    if (rc == PS_OK) {
        rc = ps_engine_worker_new(pl->engine, &opt->limits, &pl->worker, err);
    }
    if (rc == PS_OK) {
        rc = ps_fingerprint_schema(ps_audit_schema_json, &pl->audit_fingerprint, err);
    }
    pl->audit_dsts = calloc(ps_engine_destination_count(pl->engine) + 1,
                            sizeof(*pl->audit_dsts));
    if (rc == PS_OK && !pl->audit_dsts) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "out of memory");
    }
    return rc;
}

static int should_stop(const struct ps_pipeline_options *opt, int64_t idle_since)
{
    if (opt->stop && *opt->stop) {
        return 1;
    }
    return opt->idle_exit_ms > 0 && idle_since > 0 &&
           ps_time_mono_ms() - idle_since >= opt->idle_exit_ms;
}

ps_err_t ps_pipeline_run(const struct ps_engine *engine, const struct ps_pipeline_options *opt,
                         struct ps_pipeline_stats *stats, struct ps_error *err)
{
    if (ps_engine_destination_count(engine) > PS_PIPELINE_MAX_DESTINATIONS) {
        return ps_error_set(err, PS_ERR_CONFIG, "at most %d destinations are supported",
                            PS_PIPELINE_MAX_DESTINATIONS);
    }
    struct pipeline pl = {.engine = engine, .opt = opt, .stats = stats,
                          .transactional = opt->transactional_id != NULL};
    ps_buf_init(&pl.audit, 0);
    ps_err_t rc = open_clients(&pl, err);
    int64_t idle_since = 0;
    while (rc == PS_OK && !should_stop(opt, idle_since)) {
        struct ps_kafka_batch *batch = NULL;
        rc = ps_kafka_consumer_poll_batch(pl.consumer, opt->batch_max_events,
                                          opt->transaction_interval_ms, &batch, err);
        /* At-least-once: commit what was acknowledged meanwhile; after a
         * failed delivery the batch just polled lies beyond input that must
         * be read again, so it is dropped and the consumer rewound. */
        if (rc == PS_OK && !pl.transactional) {
            rc = ps_kafka_producer_settle(pl.producer, 0, 0, err);
            if (rc == PS_ERR_KAFKA_ABORTABLE) {
                ps_kafka_batch_destroy(batch);
                batch = NULL;
                rc = rewind_at_least_once(&pl, err);
            }
        }
        if (rc == PS_OK && ps_kafka_batch_count(batch) > 0) {
            struct timespec t0;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            rc = run_batch(&pl, batch, err);
            ps_metrics_observe(opt->metrics, PS_M_BATCH_SECONDS, seconds_since(&t0));
            idle_since = ps_time_mono_ms();
        } else if (rc == PS_OK && idle_since == 0 && ps_kafka_consumer_assigned(pl.consumer)) {
            idle_since = ps_time_mono_ms(); /* idle time counts from the first assignment */
        }
        ps_kafka_batch_destroy(batch);
        if (rc == PS_OK) {
            maybe_reload(&pl); /* an idle filter notices a new keyring too */
        }
        loop_metrics(&pl);
    }
    stopping(&pl);
    if (pl.consumer) {
        /* The final revoke (consumer close) must not reach a producer that
         * is gone by then. */
        ps_kafka_consumer_on_revoke(pl.consumer, NULL, NULL);
    }
    if (rc == PS_OK && !pl.transactional && pl.producer) {
        /* Commit what is acknowledged; anything else is read again later. */
        struct ps_error settle_err = {0};
        if (ps_kafka_producer_settle(pl.producer, call_timeout(&pl), 1, &settle_err) != PS_OK) {
            PS_WARN("pipeline", "shutdown_settle", "at stop: %s", settle_err.msg);
        }
    }
    if (pl.stop_deadline && ps_time_mono_ms() >= pl.stop_deadline) {
        /* Out of grace: drop what is queued rather than wait for it. */
        ps_kafka_producer_purge(pl.producer);
    }
    if (rc == PS_OK) {
        PS_INFO("pipeline", "stopped", "consumed %" PRIu64 " events in %" PRIu64
                " transactions, %" PRIu64 " dead-lettered, %" PRIu64 " aborted",
                stats->consumed, stats->transactions, stats->dead_lettered, stats->aborted);
    }
    ps_engine_worker_destroy(pl.worker);
    ps_buf_free(&pl.audit);
    free(pl.audit_dsts);
    ps_kafka_producer_destroy(pl.producer);
    ps_kafka_consumer_destroy(pl.consumer);
    return rc;
}
