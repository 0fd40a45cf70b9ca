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
#include "ps_stage.h"
#include "ps_task.h"
#include "ps_time.h"

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

/* Kafka topic names are at most 249 characters; a policy hash is 64 hex. */
#define PS_TOPIC_NAME_MAX 249
#define PS_SOURCE_MAX (PS_TOPIC_NAME_MAX + 2 * 21 + 3)
#define PS_POLICY_HASH_MAX 64

/*
 * Lineage and provenance: ours, never the input's, on secondary use. One
 * header per derived record, pseudostream.lineage:
 *   "source=<topic>/<partition>/<offset>;policy=<policy sha-256>;key_id=<n>"
 * ("policy=<hash>" alone for anonymised output, which must not carry a way
 * back to the input nor a key id that says it was pseudonymised). One header
 * and not three: librdkafka allocates each header and frees it on another
 * thread, and `bench pipeline` measured ten headers an event at a third of
 * the filter's CPU (docs/PERFORMANCE.md). Dead letters keep their separate
 * reason, error and source headers.
 */
struct lineage {
    char source[PS_SOURCE_MAX];
    char header[sizeof("source=;policy=;key_id=") + PS_SOURCE_MAX + PS_POLICY_HASH_MAX + 11];
    size_t header_prefix; /* bytes of header up to "key_id="; 0: not built for this event */
    uint32_t header_key_id;
    char reason[32];
    char error[PS_ERROR_MSG_MAX];
};

/* Appends v in decimal at *p (room for 20 digits and a sign assumed). */
static char *put_decimal(char *p, int64_t v)
{
    char rev[20];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        rev[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) {
        *p++ = '-';
    }
    while (n) {
        *p++ = rev[--n];
    }
    return p;
}

static char *put_str(char *p, const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    memcpy(p, s, n);
    return p + n;
}

/* lin->source = "<topic>/<partition>/<offset>", once per event (snprintf
 * here showed in the profile). */
static void lineage_source(struct lineage *lin, const struct ps_kafka_message *msg)
{
    char *p = put_str(lin->source, msg->topic, PS_TOPIC_NAME_MAX);
    *p++ = '/';
    p = put_decimal(p, msg->partition);
    *p++ = '/';
    p = put_decimal(p, msg->offset);
    *p = '\0';
    lin->header_prefix = 0;
}

/* The pseudostream.lineage value for a record made with key_id (built once
 * per event, the key id rewritten only when it differs). */
static const char *lineage_header(struct lineage *lin, const char *policy_hash, uint32_t key_id)
{
    if (!lin->header_prefix) {
        char *p = put_str(lin->header, "source=", 8);
        p = put_str(p, lin->source, PS_SOURCE_MAX);
        p = put_str(p, ";policy=", 9);
        p = put_str(p, policy_hash, PS_POLICY_HASH_MAX);
        p = put_str(p, ";key_id=", 9);
        lin->header_prefix = (size_t)(p - lin->header);
        lin->header_key_id = key_id + 1; /* anything but key_id: written below */
    }
    if (lin->header_key_id != key_id) {
        *put_decimal(lin->header + lin->header_prefix, key_id) = '\0';
        lin->header_key_id = key_id;
    }
    return lin->header;
}

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

/* Every record leaves through here: to the producer, or, while the previous
 * transaction is committing, to the stage (sent once this batch's own
 * transaction has begun). */
static ps_err_t emit(struct pipeline *pl, const char *topic, const void *key, size_t key_len,
                     const void *value, size_t len, const struct ps_kafka_header *h, size_t n,
                     struct ps_error *err)
{
    if (pl->staging) {
        return ps_stage_add(pl->stage, topic, key, key_len, value, len, h, n, err);
    }
    return ps_kafka_producer_send(pl->producer, topic, -1, key, key_len, value, len, h, n, err);
}

/* The AuditPlan record an audit record names must be on the audit topic: it
 * goes out in the transaction of the first audit record that names it, again
 * after any batch failed (that transaction may have been the one), and again
 * once PS_PLAN_REPUBLISH_MS has passed, so that time-based retention of the
 * audit topic never leaves a record without its plan. */
static ps_err_t publish_plan(struct pipeline *pl, const struct ps_engine_output *out,
                             struct ps_error *err)
{
    int64_t now = ps_time_mono_ms();
    size_t i = 0;
    while (i < pl->plans_published &&
           strcmp(pl->published[i].id, out->audit_plan_id) != 0) {
        i++;
    }
    if (i < pl->plans_published && now - pl->published[i].at_ms < PS_PLAN_REPUBLISH_MS) {
        return PS_OK;
    }
    char key[sizeof("plan/") + PS_AUDIT_PLAN_ID_MAX];
    size_t id_len = strnlen(out->audit_plan_id, PS_AUDIT_PLAN_ID_MAX - 1);
    memcpy(key, "plan/", 5);
    memcpy(key + 5, out->audit_plan_id, id_len);
    ps_err_t rc = emit(pl, pl->opt->audit_topic, key, 5 + id_len, out->audit_plan,
                       out->audit_plan_len, NULL, 0, err);
    if (rc != PS_OK) {
        return rc;
    }
    if (i == pl->plans_published) {
        if (i == PS_PLANS_TRACKED) {
            i = 0; /* more plans than tracked: the oldest slot is reused */
        } else {
            pl->plans_published++;
        }
        memcpy(pl->published[i].id, out->audit_plan_id, id_len + 1);
    }
    pl->published[i].at_ms = now;
    pl->stats->plans_published++;
    return PS_OK;
}

/* After a failed batch: what it published may never have committed. */
static void forget_published_plans(struct pipeline *pl)
{
    pl->plans_published = 0;
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
        } else {
            ps_err_t rc = publish_plan(pl, &outs[d], err);
            if (rc != PS_OK) {
                return rc;
            }
            ad->plan_id = outs[d].audit_plan_id;
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
        .processed_at_ms = ps_time_now_coarse_ms()};
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
    /* No header: the record itself names the policy (policy_hash). */
    pl->stats->audited++;
    return emit(pl, pl->opt->audit_topic, ev && ev->subject ? ev->subject : NULL,
                ev && ev->subject ? strlen(ev->subject) : 0, pl->audit.data, pl->audit.len, NULL,
                0, err);
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
    return emit(pl, pl->opt->dead_letter_topic, msg->key, msg->key_len, value, len, h, n, err);
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
    const char *policy = ps_engine_policy_hash(pl->engine);
    char anonymised[sizeof("policy=") + PS_POLICY_HASH_MAX];
    if (dst->legal_basis.common_law == PS_COMMON_LAW_ANONYMISED) {
        *put_str(put_str(anonymised, "policy=", 8), policy, PS_POLICY_HASH_MAX) = '\0';
        n = add_header(h, n, PS_LINEAGE_HEADER, anonymised);
    } else {
        n = add_header(h, n, PS_LINEAGE_HEADER, lineage_header(lin, policy, out->key_id));
    }
    return emit(pl, dst->topic, key, key_len, out->value, out->len, h, n, err);
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
        ps_err_t rc = emit(pl, pl->opt->escrow_topic, records[i].key, records[i].key_len,
                           records[i].value, records[i].len, NULL, 0, err);
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
        ps_err_t rc = emit(pl, opt->passthrough_topics[t], msg->key, msg->key_len, msg->value,
                           msg->len, NULL, 0, err);
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
    lineage_source(&lin, msg);
    struct ps_metrics *m = pl->opt->metrics;
    /* Two clock reads cost as much as a pseudonym on some virtual machines:
     * the histogram samples one event in PS_EVENT_TIMING_SAMPLE. */
    int timed = m && pl->stats->consumed % PS_EVENT_TIMING_SAMPLE == 0;
    struct timespec t0;
    if (timed) {
        clock_gettime(CLOCK_MONOTONIC, &t0);
    }
    pl->stats->consumed++;
    ps_metrics_counter_add(m, PS_M_CONSUMED, topic_index(pl->opt, msg->topic), 1);
    ps_err_t rc = msg->value ? ps_engine_process(pl->worker, msg->value, msg->len, &outs, &why)
                             : ps_error_set(&why, PS_ERR_EMPTY, "message has no value");
    if (timed) {
        ps_metrics_observe(m, PS_M_EVENT_SECONDS, seconds_since(&t0));
    }
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
    forget_published_plans(pl);
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
    forget_published_plans(pl);
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
    forget_published_plans(pl);
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
    forget_published_plans(pl);
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
        rc = process_message(pl, ps_kafka_batch_message(batch, i++), err);
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
        rc = process_message(pl, ps_kafka_batch_message(batch, i++), err);
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

int ps_pipeline_output_source(const struct ps_kafka_message *msg, const char **source_p,
                              size_t *len_p)
{
    for (size_t i = 0; msg && i < msg->header_count; i++) {
        const struct ps_kafka_header *h = &msg->headers[i];
        const char *v = h->value;
        if (!v) {
            continue;
        }
        if (strcmp(h->name, "pseudostream.source") == 0) {
            *source_p = v;
            *len_p = h->len;
            return 1;
        }
        /* source= comes first, up to the first ';' (topic names have none). */
        if (strcmp(h->name, PS_LINEAGE_HEADER) == 0 && h->len > 7 &&
            memcmp(v, "source=", 7) == 0) {
            const char *end = memchr(v + 7, ';', h->len - 7);
            *source_p = v + 7;
            *len_p = end ? (size_t)(end - (v + 7)) : h->len - 7;
            return 1;
        }
    }
    return 0;
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
            ps_metrics_observe(opt->metrics, PS_M_BATCH_SECONDS, seconds_since(&t0));
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
