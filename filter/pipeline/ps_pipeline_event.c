/*
 * ps_pipeline_event: the records one consumed event becomes: every
 * destination's derived record with its lineage header, the dead letter of an
 * undecodable one, its audit record and the plan records that names, its
 * escrow records; or, for the benchmark's baseline, plain copies.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ps_frame.h"
#include "ps_log.h"
#include "ps_pipeline_int.h"
#include "ps_time.h"

double ps_pipeline_seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

size_t ps_pipeline_topic_index(const struct ps_pipeline_options *opt, const char *topic)
{
    for (size_t i = 0; i < opt->topic_count; i++) {
        if (strcmp(opt->topics[i], topic) == 0) {
            return i;
        }
    }
    return 0;
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
    /* Asked for every disclosure of every event: a coarse clock, and the
     * engine's own id pointer before any string comparison (a reloaded
     * engine has new pointers to the same ids). */
    int64_t now = ps_time_mono_coarse_ms();
    size_t i = 0;
    while (i < pl->plans_published && pl->published[i].engine_id != out->audit_plan_id &&
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
            i = 0; /* more plans than tracked (never with a sane policy): reuse a slot */
        } else {
            pl->plans_published++;
        }
        memcpy(pl->published[i].id, out->audit_plan_id, id_len + 1);
    }
    pl->published[i].engine_id = out->audit_plan_id;
    pl->published[i].at_ms = now;
    pl->stats->plans_published++;
    return PS_OK;
}

/* After a failed batch: what it published may never have committed. */
void ps_pipeline_forget_plans(struct pipeline *pl)
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

ps_err_t ps_pipeline_process_message(struct pipeline *pl, const struct ps_kafka_message *msg,
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
    ps_metrics_counter_add(m, PS_M_CONSUMED, ps_pipeline_topic_index(pl->opt, msg->topic), 1);
    ps_err_t rc = msg->value ? ps_engine_process(pl->worker, msg->value, msg->len, &outs, &why)
                             : ps_error_set(&why, PS_ERR_EMPTY, "message has no value");
    if (timed) {
        ps_metrics_observe(m, PS_M_EVENT_SECONDS, ps_pipeline_seconds_since(&t0));
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
