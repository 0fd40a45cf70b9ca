#include "ps_pipeline.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ps_audit.h"
#include "ps_buf.h"
#include "ps_fingerprint.h"
#include "ps_frame.h"
#include "ps_log.h"
#include "ps_time.h"

#define PS_HEADER_MAX 32
#define PS_COMMIT_RETRIES 5
#define PS_TXN_TIMEOUT_MS 30000

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
};

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
    return ps_kafka_producer_send(pl->producer, pl->opt->dead_letter_topic, -1, msg->key,
                                  msg->key_len, msg->value, msg->len, h, n, err);
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
    n = add_header(h, n, "pseudostream.key_id", lin->key_id);
    n = add_header(h, n, "pseudostream.source", lin->source);
    return ps_kafka_producer_send(pl->producer, dst->topic, -1, key, key_len, out->value, out->len,
                                  h, n, err);
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

static ps_err_t process_message(struct pipeline *pl, const struct ps_kafka_message *msg,
                                struct ps_error *err)
{
    struct lineage lin;
    const struct ps_engine_output *outs;
    struct ps_error why = {0};
    snprintf(lin.source, sizeof(lin.source), "%s/%" PRId32 "/%" PRId64, msg->topic,
             msg->partition, msg->offset);
    pl->stats->consumed++;
    ps_err_t rc = msg->value ? ps_engine_process(pl->worker, msg->value, msg->len, &outs, &why)
                             : ps_error_set(&why, PS_ERR_EMPTY, "message has no value");
    if (rc != PS_OK) {
        rc = dead_letter(pl, msg, &why, &lin, err);
        return rc == PS_OK ? audit(pl, msg, NULL, ps_err_name(why.code), err) : rc;
    }
    rc = escrow(pl, err);
    if (rc != PS_OK) {
        return rc;
    }
    size_t count = ps_engine_destination_count(pl->engine);
    for (size_t d = 0; d < count; d++) {
        if (outs[d].decision == PS_WITHHELD) {
            pl->stats->withheld[d]++;
            pl->stats->withheld_by_reason[d][(unsigned)outs[d].reason % 64]++;
            continue;
        }
        rc = deliver(pl, msg, d, &outs[d], &lin, err);
        if (rc != PS_OK) {
            return rc;
        }
        pl->stats->disclosed[d]++;
    }
    return audit(pl, msg, outs, NULL, err);
}

static ps_err_t commit_batch(struct pipeline *pl, const struct ps_kafka_batch *batch,
                             struct ps_error *err)
{
    if (!pl->transactional) {
        ps_err_t rc = ps_kafka_producer_flush(pl->producer, PS_TXN_TIMEOUT_MS, err);
        return rc == PS_OK ? ps_kafka_consumer_commit(pl->consumer, batch, err) : rc;
    }
    ps_err_t rc = PS_ERR_KAFKA_RETRIABLE;
    for (int attempt = 0; attempt < PS_COMMIT_RETRIES && rc == PS_ERR_KAFKA_RETRIABLE; attempt++) {
        rc = ps_kafka_producer_commit(pl->producer, pl->consumer, batch, PS_TXN_TIMEOUT_MS, err);
        if (rc == PS_ERR_KAFKA_RETRIABLE) {
            PS_WARN("pipeline", "commit_retry", "transaction commit will be retried: %s",
                    err ? err->msg : "");
        }
    }
    return rc;
}

/* An abortable error: abort, rewind to the committed offsets, carry on. */
static ps_err_t abort_batch(struct pipeline *pl, struct ps_error *err)
{
    pl->stats->aborted++;
    PS_WARN("pipeline", "transaction_abort", "aborting the transaction and rewinding: %s",
            err ? err->msg : "");
    /* The aborted escrow records never became visible: seal them again. */
    ps_engine_worker_escrow_reset(pl->worker);
    ps_err_t rc = ps_kafka_producer_abort(pl->producer, PS_TXN_TIMEOUT_MS, err);
    if (rc == PS_OK) {
        rc = ps_kafka_consumer_rewind(pl->consumer, err);
    }
    return rc;
}

/* Between batches: take in live opt-out updates and judge the state's age. */
static void refresh_optout(struct pipeline *pl)
{
    const struct ps_pipeline_options *opt = pl->opt;
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
    ps_err_t rc = pl->transactional ? ps_kafka_producer_begin(pl->producer, err) : PS_OK;
    for (size_t i = 0; rc == PS_OK && i < ps_kafka_batch_count(batch); i++) {
        rc = process_message(pl, ps_kafka_batch_message(batch, i), err);
    }
    if (rc == PS_OK) {
        rc = commit_batch(pl, batch, err);
    }
    if (rc == PS_OK) {
        pl->stats->transactions++;
        return PS_OK;
    }
    if (rc == PS_ERR_KAFKA_ABORTABLE && pl->transactional) {
        return abort_batch(pl, err);
    }
    return rc;
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
        rc = ps_kafka_producer_init_transactions(pl->producer, PS_TXN_TIMEOUT_MS, err);
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
        if (rc == PS_OK && ps_kafka_batch_count(batch) > 0) {
            rc = run_batch(&pl, batch, err);
            idle_since = ps_time_mono_ms();
        } else if (rc == PS_OK && idle_since == 0 && ps_kafka_consumer_assigned(pl.consumer)) {
            idle_since = ps_time_mono_ms(); /* idle time counts from the first assignment */
        }
        ps_kafka_batch_destroy(batch);
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
