/*
 * ps_pipeline: the batch loop. What one event becomes is in
 * ps_pipeline_event.c; what both share in ps_pipeline_int.h.
 */
#include "ps_pipeline.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ps_fingerprint.h"
#include "ps_log.h"
#include "ps_pipeline_int.h"
#include "ps_time.h"

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

/* Timeout of one commit, abort or init_transactions call, given the stop
 * deadline (0: no stop requested). */
static int bounded_timeout(const struct ps_pipeline_options *opt, int64_t stop_deadline)
{
    int timeout = opt->commit_timeout_ms > 0 ? opt->commit_timeout_ms : PS_TXN_TIMEOUT_MS;
    if (stop_deadline) {
        int64_t left = stop_deadline - ps_time_mono_ms();
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

static int call_timeout(struct pipeline *pl)
{
    stopping(pl);
    return bounded_timeout(pl->opt, pl->stop_deadline);
}

/* The same on the committer task, which keeps its own deadline: the loop's
 * is the loop thread's to write. */
static int job_timeout(struct commit_job *job)
{
    const struct ps_pipeline_options *opt = job->pl->opt;
    if (job->stop_deadline == 0 && opt->stop && *opt->stop) {
        int grace = opt->shutdown_grace_ms > 0 ? opt->shutdown_grace_ms : PS_TXN_TIMEOUT_MS;
        job->stop_deadline = ps_time_mono_ms() + grace;
    }
    return bounded_timeout(opt, job->stop_deadline);
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
    ps_pipeline_forget_plans(pl);
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

/* Runs on the committer task: nothing here may touch what the loop thread
 * works on meanwhile (the worker, the stage, the loop's stop deadline). */
static ps_err_t commit_batch(struct commit_job *job, struct ps_error *err)
{
    struct pipeline *pl = job->pl;
    ps_err_t rc = PS_OK;
    for (int attempt = 0;; attempt++) {
        /* Partitions taken away without a revoke may already be processed by
         * their new owner: this batch's work for them must not commit. */
        if (ps_kafka_consumer_assignment_lost(pl->consumer)) {
            return ps_error_set(err, PS_ERR_KAFKA_ABORTABLE,
                                "partitions were lost while the batch was open");
        }
        rc = ps_kafka_producer_commit(pl->producer, pl->consumer, job->batch, job_timeout(job),
                                      err);
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
    ps_pipeline_forget_plans(pl);
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
    ps_pipeline_forget_plans(pl);
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
    if (pl->transactional) {
        /* The previous batch may still be committing, offsets included:
         * let it finish while the partitions are ours. Its outcome is dealt
         * with by the loop once the poll returns. */
        ps_task_wait(pl->committer);
        return;
    }
    if (!pl->producer) {
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
        rc = ps_pipeline_process_message(pl, ps_kafka_batch_message(batch, i), err);
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
    /* Plan ids are matched by the engine's pointers first: a new engine's
     * may reuse the old one's addresses. Its plans are written again. */
    ps_pipeline_forget_plans(pl);
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

/* What a failed transactional batch leads to, whether it failed while its
 * records were sent or when it was committed. PS_OK when the loop can go on
 * (the consumer then reads from the committed offsets again). */
static ps_err_t batch_failed(struct pipeline *pl, ps_err_t rc, struct ps_error *err)
{
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

/* The committer task's job: commit one batch (offsets included). */
static void commit_job_run(void *arg)
{
    struct commit_job *job = arg;
    const struct ps_pipeline_options *opt = job->pl->opt;
    ps_error_clear(&job->err);
    job->rc = commit_batch(job, &job->err);
    /* The benchmark's stopwatch stops when the outputs become visible, not
     * when the loop gets round to noticing. */
    if (job->rc == PS_OK && opt->settled_hook) {
        opt->settled_hook(opt->settled_opaque, job->batch);
    }
}

/* Waits for the commit of the previous batch, if one is running, and deals
 * with its outcome. *rewound is set when it failed and the consumer went back
 * to the committed offsets: whatever was polled since is to be dropped. */
static ps_err_t settle_commit(struct pipeline *pl, int *rewound, struct ps_error *err)
{
    struct commit_job *job = &pl->job;
    if (!job->active) {
        return PS_OK;
    }
    ps_task_wait(pl->committer);
    job->active = 0;
    ps_err_t rc = job->rc;
    if (rc == PS_OK) {
        pl->consecutive_aborts = 0;
        pl->stats->transactions++;
        if (pl->opt->fault_hook) {
            pl->opt->fault_hook(pl->opt->fault_opaque, PS_PIPELINE_BATCH_SETTLED, job->batch_no);
        }
    } else {
        if (err) {
            *err = job->err;
        }
        *rewound = 1;
        rc = batch_failed(pl, rc, err);
    }
    ps_kafka_batch_destroy(job->batch);
    job->batch = NULL;
    return rc;
}

/* A batch that failed before its transaction began (nothing of it was sent):
 * read it again from the committed offsets. */
static ps_err_t drop_staged(struct pipeline *pl, struct ps_error *err)
{
    ps_pipeline_forget_plans(pl);
    pl->stats->aborted++;
    PS_WARN("pipeline", "batch_dropped", "dropping the batch and rewinding: %s",
            err ? err->msg : "");
    ps_engine_worker_escrow_reset(pl->worker);
    return rewind_consumer(pl, err);
}

/*
 * Transactional: one batch, one transaction. While the previous batch's
 * transaction commits on the committer task (mostly waiting for the broker),
 * this batch is decoded and derived into the stage; once that commit has
 * settled this batch's transaction begins, the staged records are sent in
 * order, the rest of the batch is derived and sent directly, and its commit is
 * handed to the task. If the previous commit failed, this batch is dropped
 * with it (the consumer is rewound to the committed offsets, before both).
 * On success the batch belongs to the commit job (*batch_p is set to NULL).
 */
static ps_err_t run_batch_transactional(struct pipeline *pl, struct ps_kafka_batch **batch_p,
                                        struct ps_error *err)
{
    struct ps_kafka_batch *batch = *batch_p;
    size_t count = ps_kafka_batch_count(batch);
    size_t i = 0;
    ps_err_t rc = PS_OK;
    ps_stage_reset(pl->stage);
    pl->staging = 1;
    while (rc == PS_OK && i < count && ps_task_busy(pl->committer) &&
           ps_stage_bytes(pl->stage) < PS_STAGE_MAX_BYTES) {
        rc = ps_pipeline_process_message(pl, ps_kafka_batch_message(batch, i++), err);
    }
    pl->staging = 0;
    pl->stats->staged += i;

    int rewound = 0;
    struct ps_error settle_err;
    ps_error_clear(&settle_err);
    ps_err_t settled = settle_commit(pl, &rewound, &settle_err);
    if (settled != PS_OK || rewound) {
        pl->stats->staged_dropped += i;
        if (err) {
            *err = settle_err;
        }
        return settled;
    }
    if (rc != PS_OK) {
        return rc == PS_ERR_KAFKA_ABORTABLE ? drop_staged(pl, err) : rc;
    }
    rc = ps_kafka_producer_begin(pl->producer, err);
    if (rc != PS_OK) {
        return rc;
    }
    rc = ps_stage_send(pl->stage, pl->producer, err);
    while (rc == PS_OK && i < count) {
        rc = ps_pipeline_process_message(pl, ps_kafka_batch_message(batch, i++), err);
    }
    if (rc == PS_OK) {
        fault_point(pl, PS_PIPELINE_BATCH_PRODUCED);
        pl->job = (struct commit_job){.pl = pl, .batch = batch, .batch_no = pl->batch_no,
                                      .active = 1, .stop_deadline = pl->stop_deadline};
        rc = ps_task_start(pl->committer, commit_job_run, &pl->job, err);
        if (rc == PS_OK) {
            *batch_p = NULL;
            return PS_OK;
        }
        pl->job.active = 0;
        pl->job.batch = NULL;
    }
    return batch_failed(pl, rc, err);
}

static ps_err_t run_batch(struct pipeline *pl, struct ps_kafka_batch **batch_p,
                          struct ps_error *err)
{
    refresh_optout(pl);
    pl->batch_no++;
    pl->batch = *batch_p;
    if (!pl->transactional) {
        return run_batch_at_least_once(pl, *batch_p, err);
    }
    return run_batch_transactional(pl, batch_p, err);
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
    if (rc == PS_OK && pl->transactional) {
        rc = ps_stage_new(&pl->stage, err);
        if (rc == PS_OK) {
            rc = ps_task_new(&pl->committer, err);
        }
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
            rc = run_batch(&pl, &batch, err);
            ps_metrics_observe(opt->metrics, PS_M_BATCH_SECONDS, ps_pipeline_seconds_since(&t0));
            idle_since = ps_time_mono_ms();
        } else if (rc == PS_OK) {
            /* Nothing new: settle a commit still running, so its outcome is
             * dealt with (and counted) without waiting for more input. */
            int rewound = 0;
            rc = settle_commit(&pl, &rewound, err);
            if (idle_since == 0 && ps_kafka_consumer_assigned(pl.consumer)) {
                idle_since = ps_time_mono_ms(); /* idle time counts from the first assignment */
            }
        }
        ps_kafka_batch_destroy(batch);
        if (rc == PS_OK) {
            maybe_reload(&pl); /* an idle filter notices a new keyring too */
        }
        loop_metrics(&pl);
    }
    stopping(&pl);
    if (pl.job.active) {
        /* The last commit decides what the next run reads again. */
        int rewound = 0;
        struct ps_error settle_err;
        ps_error_clear(&settle_err);
        ps_err_t settled = settle_commit(&pl, &rewound, &settle_err);
        if (rc == PS_OK && settled != PS_OK) {
            rc = settled;
            if (err) {
                *err = settle_err;
            }
        }
    }
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
    ps_task_destroy(pl.committer); /* idle: every job was settled above */
    ps_stage_destroy(pl.stage);
    ps_engine_worker_destroy(pl.worker);
    ps_buf_free(&pl.audit);
    free(pl.audit_dsts);
    ps_kafka_producer_destroy(pl.producer);
    ps_kafka_consumer_destroy(pl.consumer);
    return rc;
}
