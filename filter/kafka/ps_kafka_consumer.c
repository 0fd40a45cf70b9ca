/*
 * The consumer-group member and its batches.
 *
 * A batch keeps librdkafka's messages alive (the views point into them) and
 * the next offset of every partition it holds, which is what a transaction
 * or an at-least-once commit sends. Rebalances are only delivered inside
 * rd_kafka_consumer_poll, that is inside poll_batch; the batch under
 * construction then drops the messages of revoked partitions, so a batch
 * never carries work (or offsets) for a partition this member no longer owns.
 */
#include "ps_kafka_int.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ps_log.h"

struct kafka_batch_offset {
    const rd_kafka_topic_t *rkt; /* identity: one handle per topic per client */
    const char *topic;           /* borrowed from a message of the batch */
    int32_t partition;
    int64_t next;
};

struct ps_kafka_batch {
    rd_kafka_message_t **rkms;
    struct ps_kafka_message *msgs;
    size_t *hdr_first; /* index of each message's first header in hdrs */
    size_t count;
    size_t cap;
    struct ps_kafka_header *hdrs;
    size_t hdr_len;
    size_t hdr_cap;
    struct kafka_batch_offset *offsets;
    size_t offset_count;
    size_t offset_cap;
    size_t last_offset; /* offsets entry of the previous message: runs are common */
};

struct ps_kafka_consumer {
    rd_kafka_t *rk;
    atomic_int assigned; /* read by health checks from other threads */
    atomic_int lost;     /* partitions were lost since the last assignment */
    struct ps_kafka_batch *filling; /* batch under construction in poll_batch */
    ps_err_t cb_rc;                 /* failure inside the rebalance callback */
    char cb_msg[256];
    ps_kafka_revoke_fn on_revoke;
    void *on_revoke_opaque;
    unsigned long commit_failures;  /* asynchronous commits that failed */
};

/* ------------------------------------------------------------------ batch */

size_t ps_kafka_batch_count(const struct ps_kafka_batch *batch)
{
    return batch ? batch->count : 0;
}

const struct ps_kafka_message *ps_kafka_batch_message(const struct ps_kafka_batch *batch,
                                                      size_t i)
{
    if (!batch || i >= batch->count) {
        return NULL;
    }
    return &batch->msgs[i];
}

void ps_kafka_batch_destroy(struct ps_kafka_batch *batch)
{
    if (!batch) {
        return;
    }
    for (size_t i = 0; i < batch->count; i++) {
        rd_kafka_message_destroy(batch->rkms[i]);
    }
    free(batch->rkms);
    free(batch->msgs);
    free(batch->hdr_first);
    free(batch->hdrs);
    free(batch->offsets);
    free(batch);
}

rd_kafka_topic_partition_list_t *ps_kafka_batch_offsets(const struct ps_kafka_batch *batch)
{
    if (!batch || batch->offset_count == 0) {
        return NULL;
    }
    rd_kafka_topic_partition_list_t *list =
        rd_kafka_topic_partition_list_new((int)batch->offset_count);
    for (size_t i = 0; i < batch->offset_count; i++) {
        const struct kafka_batch_offset *off = &batch->offsets[i];
        rd_kafka_topic_partition_list_add(list, off->topic, off->partition)->offset = off->next;
    }
    return list;
}

static ps_err_t batch_grow(struct ps_kafka_batch *batch, size_t max)
{
    size_t cap = batch->cap ? batch->cap * 2 : 256;
    if (cap > max) {
        cap = max;
    }
    rd_kafka_message_t **rkms = realloc(batch->rkms, cap * sizeof(*rkms));
    if (!rkms) {
        return PS_ERR_NOMEM;
    }
    batch->rkms = rkms;
    struct ps_kafka_message *msgs = realloc(batch->msgs, cap * sizeof(*msgs));
    if (!msgs) {
        return PS_ERR_NOMEM;
    }
    batch->msgs = msgs;
    size_t *hdr_first = realloc(batch->hdr_first, cap * sizeof(*hdr_first));
    if (!hdr_first) {
        return PS_ERR_NOMEM;
    }
    batch->hdr_first = hdr_first;
    batch->cap = cap;
    return PS_OK;
}

static ps_err_t batch_track_offset(struct ps_kafka_batch *batch, const rd_kafka_message_t *rkm)
{
    struct kafka_batch_offset *off = NULL;
    if (batch->offset_count > 0) {
        off = &batch->offsets[batch->last_offset];
        if (off->rkt != rkm->rkt || off->partition != rkm->partition) {
            off = NULL;
            for (size_t i = 0; i < batch->offset_count; i++) {
                if (batch->offsets[i].rkt == rkm->rkt &&
                    batch->offsets[i].partition == rkm->partition) {
                    off = &batch->offsets[i];
                    batch->last_offset = i;
                    break;
                }
            }
        }
    }
    if (!off) {
        if (batch->offset_count == batch->offset_cap) {
            size_t cap = batch->offset_cap ? batch->offset_cap * 2 : 16;
            struct kafka_batch_offset *offsets = realloc(batch->offsets, cap * sizeof(*offsets));
            if (!offsets) {
                return PS_ERR_NOMEM;
            }
            batch->offsets = offsets;
            batch->offset_cap = cap;
        }
        batch->last_offset = batch->offset_count++;
        off = &batch->offsets[batch->last_offset];
        off->rkt = rkm->rkt;
        off->topic = rd_kafka_topic_name(rkm->rkt);
        off->partition = rkm->partition;
        off->next = -1;
    }
    if (rkm->offset + 1 > off->next) {
        off->next = rkm->offset + 1;
    }
    return PS_OK;
}

/* Takes rkm into the batch (on PS_OK only). */
static ps_err_t batch_add(struct ps_kafka_batch *batch, size_t max, rd_kafka_message_t *rkm)
{
    if (batch->count == batch->cap && batch_grow(batch, max) != PS_OK) {
        return PS_ERR_NOMEM;
    }
    size_t hdr_count = 0;
    size_t first = batch->hdr_len;
    if (ps_kafka_headers_append(rkm, &batch->hdrs, &batch->hdr_cap, &batch->hdr_len,
                                &hdr_count) != PS_OK) {
        return PS_ERR_NOMEM;
    }
    if (batch_track_offset(batch, rkm) != PS_OK) {
        batch->hdr_len = first;
        return PS_ERR_NOMEM;
    }
    struct ps_kafka_message *msg = &batch->msgs[batch->count];
    ps_kafka_message_view(rkm, msg);
    msg->header_count = hdr_count;
    batch->hdr_first[batch->count] = first;
    batch->rkms[batch->count] = rkm;
    batch->count++;
    return PS_OK;
}

/* Header views are pointed at the pool only once it stops moving. */
static void batch_finish(struct ps_kafka_batch *batch)
{
    for (size_t i = 0; i < batch->count; i++) {
        struct ps_kafka_message *msg = &batch->msgs[i];
        msg->headers = msg->header_count ? &batch->hdrs[batch->hdr_first[i]] : NULL;
    }
}

static int partition_listed(const rd_kafka_topic_partition_list_t *parts, const char *topic,
                            int32_t partition)
{
    for (int i = 0; i < parts->cnt; i++) {
        if (parts->elems[i].partition == partition && strcmp(parts->elems[i].topic, topic) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Drops the messages and offsets of revoked partitions from the batch being
 * filled: the new owner starts from the committed offset, so keeping them
 * would process (and commit) work that is no longer ours. */
static void batch_drop_partitions(struct ps_kafka_batch *batch,
                                  const rd_kafka_topic_partition_list_t *parts)
{
    /* Offsets first: their topic names are borrowed from the messages. */
    size_t kept_off = 0;
    for (size_t i = 0; i < batch->offset_count; i++) {
        if (partition_listed(parts, batch->offsets[i].topic, batch->offsets[i].partition)) {
            continue;
        }
        batch->offsets[kept_off++] = batch->offsets[i];
    }
    batch->offset_count = kept_off;
    size_t kept = 0;
    for (size_t i = 0; i < batch->count; i++) {
        if (partition_listed(parts, batch->msgs[i].topic, batch->msgs[i].partition)) {
            rd_kafka_message_destroy(batch->rkms[i]);
            continue;
        }
        batch->rkms[kept] = batch->rkms[i];
        batch->msgs[kept] = batch->msgs[i];
        batch->hdr_first[kept] = batch->hdr_first[i];
        kept++;
    }
    batch->count = kept;
    batch->last_offset = 0;
}

/* --------------------------------------------------------------- consumer */

static void consumer_count_assigned(struct ps_kafka_consumer *consumer, rd_kafka_t *rk)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(rk, &parts) == RD_KAFKA_RESP_ERR_NO_ERROR && parts) {
        atomic_store(&consumer->assigned, parts->cnt);
    }
    /* A list from rd_kafka_assignment that is never destroyed holds partition
     * references and makes rd_kafka_destroy hang. */
    if (parts) {
        rd_kafka_topic_partition_list_destroy(parts);
    }
}

static void consumer_cb_fail(struct ps_kafka_consumer *consumer, const char *what,
                             rd_kafka_error_t *error)
{
    PS_ERROR(PS_KAFKA_LOG, "rebalance_failed", "%s: %s: %s", what, rd_kafka_error_name(error),
             rd_kafka_error_string(error));
    if (consumer->cb_rc == PS_OK) {
        consumer->cb_rc = PS_ERR_KAFKA_FATAL;
        snprintf(consumer->cb_msg, sizeof(consumer->cb_msg), "%s: %s: %s", what,
                 rd_kafka_error_name(error), rd_kafka_error_string(error));
    }
    rd_kafka_error_destroy(error);
}

static void consumer_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t code,
                                  rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct ps_kafka_consumer *consumer = opaque;
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;

    if (code == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        atomic_store(&consumer->lost, 0);
        PS_INFO(PS_KAFKA_LOG, "partitions_assigned", "%d partition(s) assigned (%s)",
                parts->cnt, cooperative ? "incremental" : "eager");
        if (cooperative) {
            error = rd_kafka_incremental_assign(rk, parts);
        } else {
            rd_kafka_resp_err_t rcode = rd_kafka_assign(rk, parts);
            if (rcode != RD_KAFKA_RESP_ERR_NO_ERROR) {
                error = rd_kafka_error_new(rcode, "%s", rd_kafka_err2str(rcode));
            }
        }
        if (error) {
            consumer_cb_fail(consumer, "assign", error);
        }
    } else {
        int lost = rd_kafka_assignment_lost(rk);
        if (lost) {
            atomic_store(&consumer->lost, 1);
            PS_WARN(PS_KAFKA_LOG, "partitions_lost", "%d partition(s) lost", parts->cnt);
        } else {
            PS_INFO(PS_KAFKA_LOG, "partitions_revoked", "%d partition(s) revoked", parts->cnt);
        }
        /* Settle what was done for these partitions while they are still
         * ours (librdkafka's pattern: commit on revoke, abort on lost). */
        if (consumer->on_revoke) {
            consumer->on_revoke(consumer->on_revoke_opaque, lost);
        }
        if (consumer->filling) {
            batch_drop_partitions(consumer->filling, parts);
        }
        if (cooperative) {
            error = rd_kafka_incremental_unassign(rk, parts);
        } else {
            rd_kafka_resp_err_t rcode = rd_kafka_assign(rk, NULL);
            if (rcode != RD_KAFKA_RESP_ERR_NO_ERROR) {
                error = rd_kafka_error_new(rcode, "%s", rd_kafka_err2str(rcode));
            }
        }
        if (error) {
            consumer_cb_fail(consumer, "unassign", error);
        }
    }
    consumer_count_assigned(consumer, rk);
}

/* Results of asynchronous commits (at-least-once mode). A failed commit loses
 * nothing: a later commit covers the same partitions, or a restart reads the
 * uncommitted part again. One line per failure run, not per commit. */
static void consumer_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t code,
                               rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    (void)rk;
    struct ps_kafka_consumer *consumer = opaque;
    if (code == RD_KAFKA_RESP_ERR_NO_ERROR && offsets) {
        for (int i = 0; i < offsets->cnt; i++) {
            if (offsets->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                code = offsets->elems[i].err;
                break;
            }
        }
    }
    if (code == RD_KAFKA_RESP_ERR_NO_ERROR || code == RD_KAFKA_RESP_ERR__NO_OFFSET) {
        consumer->commit_failures = 0;
        return;
    }
    if (consumer->commit_failures++ == 0) {
        PS_WARN(PS_KAFKA_LOG, "commit_failed",
                "offset commit failed (a later commit covers it): %s", rd_kafka_err2name(code));
    }
}

ps_err_t ps_kafka_consumer_new(const char *bootstraps, const char *group_id,
                               const struct ps_kafka_property *props, size_t prop_count,
                               struct ps_kafka_consumer **consumer_p, struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    rd_kafka_conf_t *conf = NULL;
    struct ps_kafka_consumer *consumer = NULL;

    if (!group_id || !*group_id || !consumer_p || (prop_count && !props)) {
        return ps_error_set(err, PS_ERR_INVALID, "consumer: group id required");
    }
    consumer = calloc(1, sizeof(*consumer));
    if (!consumer) {
        return ps_error_set(err, PS_ERR_NOMEM, "consumer: out of memory");
    }
    atomic_init(&consumer->assigned, 0);
    atomic_init(&consumer->lost, 0);

    /* The queue thresholds hold well over a second of data: librdkafka 2.0.2
     * backs off fetching for a hard-coded second once they are exceeded. */
    const struct ps_kafka_kv defaults[] = {
        {"bootstrap.servers", bootstraps ? bootstraps : ""},
        {"client.id", "pseudostream"},
        {"partition.assignment.strategy", "cooperative-sticky"},
        {"auto.offset.reset", "earliest"},
        {"enable.auto.offset.store", "false"},
        {"queued.min.messages", "1000000"},
        {"queued.max.messages.kbytes", "262144"},
        {"fetch.wait.max.ms", "50"},
    };
    const struct ps_kafka_kv guarded[] = {
        {"group.id", group_id},
        {"enable.auto.commit", "false"},
        {"isolation.level", "read_committed"},
    };
    rc = ps_kafka_conf_build("consumer", defaults, sizeof(defaults) / sizeof(defaults[0]), props,
                             prop_count, guarded, sizeof(guarded) / sizeof(guarded[0]), &conf,
                             err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    rd_kafka_conf_set_rebalance_cb(conf, consumer_rebalance_cb);
    rd_kafka_conf_set_offset_commit_cb(conf, consumer_commit_cb);
    rd_kafka_conf_set_opaque(conf, consumer);
    rc = ps_kafka_client_new(RD_KAFKA_CONSUMER, conf, "consumer", &consumer->rk, err);
    conf = NULL;
    if (rc != PS_OK) {
        goto cleanup;
    }
    /* Errors and other events of the main queue come out of
     * rd_kafka_consumer_poll too instead of piling up unserved. */
    rd_kafka_poll_set_consumer(consumer->rk);
    *consumer_p = consumer;
    consumer = NULL;

cleanup:
    free(consumer);
    return rc;
}

ps_err_t ps_kafka_consumer_subscribe(struct ps_kafka_consumer *consumer,
                                     const char *const *topics, size_t count,
                                     struct ps_error *err)
{
    if (!consumer || !topics || count == 0 || count > INT32_MAX) {
        return ps_error_set(err, PS_ERR_INVALID, "consumer: topics required");
    }
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)count);
    for (size_t i = 0; i < count; i++) {
        if (!topics[i] || !*topics[i]) {
            rd_kafka_topic_partition_list_destroy(list);
            return ps_error_set(err, PS_ERR_INVALID, "consumer: empty topic name");
        }
        rd_kafka_topic_partition_list_add(list, topics[i], RD_KAFKA_PARTITION_UA);
    }
    rd_kafka_resp_err_t code = rd_kafka_subscribe(consumer->rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (code != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ps_kafka_resp_err(code, "subscribe", err);
        return ps_error_prefix(err, "consumer");
    }
    return PS_OK;
}

void ps_kafka_consumer_destroy(struct ps_kafka_consumer *consumer)
{
    if (!consumer) {
        return;
    }
    if (consumer->rk) {
        /* close leaves the group at once (the mock would otherwise wait a
         * session timeout before giving our partitions to others) and runs
         * the final revoke through the rebalance callback. */
        rd_kafka_resp_err_t code = rd_kafka_consumer_close(consumer->rk);
        if (code != RD_KAFKA_RESP_ERR_NO_ERROR) {
            PS_WARN(PS_KAFKA_LOG, "consumer_close", "consumer close: %s",
                    rd_kafka_err2name(code));
        }
        rd_kafka_destroy(consumer->rk);
    }
    free(consumer);
}

int ps_kafka_consumer_assigned(const struct ps_kafka_consumer *consumer)
{
    if (!consumer) {
        return 0;
    }
    return atomic_load(&((struct ps_kafka_consumer *)consumer)->assigned);
}

int ps_kafka_consumer_assignment_lost(const struct ps_kafka_consumer *consumer)
{
    if (!consumer) {
        return 0;
    }
    /* The flag set by our callback, or librdkafka's own view: a session
     * timeout is known to the client before the callback runs. */
    struct ps_kafka_consumer *c = (struct ps_kafka_consumer *)consumer;
    return atomic_load(&c->lost) || rd_kafka_assignment_lost(c->rk);
}

void ps_kafka_consumer_on_revoke(struct ps_kafka_consumer *consumer, ps_kafka_revoke_fn fn,
                                 void *opaque)
{
    if (!consumer) {
        return;
    }
    consumer->on_revoke = fn;
    consumer->on_revoke_opaque = opaque;
}

rd_kafka_t *ps_kafka_consumer_handle(const struct ps_kafka_consumer *consumer)
{
    return consumer ? consumer->rk : NULL;
}

/* Handles a message that carries an error instead of data. Most consumer
 * errors are informational (librdkafka recovers by itself); only a fatal
 * one ends the batch. */
static ps_err_t consumer_message_error(struct ps_kafka_consumer *consumer,
                                       const rd_kafka_message_t *rkm, struct ps_error *err)
{
    if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        return PS_OK;
    }
    if (rkm->err == RD_KAFKA_RESP_ERR__FATAL) {
        ps_err_t rc = ps_kafka_fatal_check(consumer->rk, "consumer", err);
        if (rc == PS_OK) {
            rc = ps_error_set(err, PS_ERR_KAFKA_FATAL, "consumer: fatal error");
        }
        return rc;
    }
    if (rkm->rkt) {
        PS_WARN(PS_KAFKA_LOG, "consumer_error", "consumer: topic '%s' partition %d: %s",
                rd_kafka_topic_name(rkm->rkt), (int)rkm->partition, rd_kafka_err2name(rkm->err));
    } else {
        PS_WARN(PS_KAFKA_LOG, "consumer_error", "consumer: %s: %s", rd_kafka_err2name(rkm->err),
                rd_kafka_err2str(rkm->err));
    }
    return PS_OK;
}

ps_err_t ps_kafka_consumer_poll_batch(struct ps_kafka_consumer *consumer, size_t max,
                                      int timeout_ms, struct ps_kafka_batch **batch_p,
                                      struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    struct ps_kafka_batch *batch = NULL;

    if (!consumer || !batch_p || max == 0 || timeout_ms < 0) {
        return ps_error_set(err, PS_ERR_INVALID, "consumer: bad poll arguments");
    }
    batch = calloc(1, sizeof(*batch));
    if (!batch) {
        return ps_error_set(err, PS_ERR_NOMEM, "consumer: out of memory");
    }
    consumer->filling = batch;

    int64_t deadline = ps_kafka_now_ms() + timeout_ms;
    int started = 0;
    while (batch->count < max) {
        int wait = ps_kafka_remaining_ms(deadline);
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(consumer->rk, wait);
        if (consumer->cb_rc != PS_OK) {
            if (rkm) {
                rd_kafka_message_destroy(rkm);
            }
            rc = ps_error_set(err, consumer->cb_rc, "consumer: rebalance: %s", consumer->cb_msg);
            goto cleanup;
        }
        if (!rkm) {
            if (wait == 0) {
                break;
            }
            continue;
        }
        if (rkm->err) {
            rc = consumer_message_error(consumer, rkm, err);
            rd_kafka_message_destroy(rkm);
            if (rc != PS_OK) {
                goto cleanup;
            }
            continue;
        }
        if (!started) {
            /* The window runs from the first message, not from the call. */
            started = 1;
            deadline = ps_kafka_now_ms() + timeout_ms;
        }
        if (batch_add(batch, max, rkm) != PS_OK) {
            rd_kafka_message_destroy(rkm);
            rc = ps_error_set(err, PS_ERR_NOMEM, "consumer: out of memory");
            goto cleanup;
        }
        if (ps_kafka_remaining_ms(deadline) == 0) {
            break;
        }
    }
    batch_finish(batch);
    *batch_p = batch;
    batch = NULL;

cleanup:
    consumer->filling = NULL;
    ps_kafka_batch_destroy(batch);
    return rc;
}

ps_err_t ps_kafka_consumer_commit(struct ps_kafka_consumer *consumer,
                                  const struct ps_kafka_batch *batch, struct ps_error *err)
{
    if (!consumer) {
        return ps_error_set(err, PS_ERR_INVALID, "consumer: commit without consumer");
    }
    rd_kafka_topic_partition_list_t *offsets = ps_kafka_batch_offsets(batch);
    if (!offsets) {
        return PS_OK;
    }
    ps_err_t rc = PS_OK;
    rd_kafka_resp_err_t code = rd_kafka_commit(consumer->rk, offsets, 0);
    if (code == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int i = 0; i < offsets->cnt; i++) {
            if (offsets->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                code = offsets->elems[i].err;
                break;
            }
        }
    }
    if (code != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc = ps_kafka_resp_err(code, "commit", err);
        ps_error_prefix(err, "consumer");
    }
    rd_kafka_topic_partition_list_destroy(offsets);
    return rc;
}

ps_err_t ps_kafka_consumer_rewind(struct ps_kafka_consumer *consumer, struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    rd_kafka_topic_partition_list_t *offsets = NULL;

    if (!consumer) {
        return ps_error_set(err, PS_ERR_INVALID, "consumer: rewind without consumer");
    }
    rd_kafka_resp_err_t code = rd_kafka_assignment(consumer->rk, &offsets);
    if (code != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc = ps_kafka_resp_err(code, "assignment", err);
        goto cleanup;
    }
    if (offsets->cnt == 0) {
        goto cleanup;
    }
    code = rd_kafka_committed(consumer->rk, offsets, PS_KAFKA_LOOKUP_TIMEOUT_MS);
    if (code != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc = ps_kafka_resp_err(code, "committed offsets", err);
        goto cleanup;
    }
    for (int i = 0; i < offsets->cnt; i++) {
        /* No committed offset yet: the whole partition is unprocessed. Going
         * back to the beginning duplicates rather than loses, whatever
         * auto.offset.reset says. */
        if (offsets->elems[i].offset < 0) {
            offsets->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
        }
        offsets->elems[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
    }
    rc = ps_kafka_error_take(rd_kafka_seek_partitions(consumer->rk, offsets,
                                                      PS_KAFKA_LOOKUP_TIMEOUT_MS),
                             "seek", err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    for (int i = 0; i < offsets->cnt; i++) {
        if (offsets->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rc = ps_kafka_resp_err(offsets->elems[i].err, "seek", err);
            ps_error_prefix(err, "topic '%s' partition %d", offsets->elems[i].topic,
                            (int)offsets->elems[i].partition);
            goto cleanup;
        }
    }
    PS_INFO(PS_KAFKA_LOG, "consumer_rewound", "rewound %d partition(s) to committed offsets",
            offsets->cnt);

cleanup:
    if (rc != PS_OK) {
        ps_error_prefix(err, "consumer: rewind");
    }
    if (offsets) {
        rd_kafka_topic_partition_list_destroy(offsets);
    }
    return rc;
}

/* Lag as operators mean it: from the consumer's position to the last stable
 * offset (librdkafka keeps the LSO as the cached high watermark of a
 * read_committed consumer). librdkafka's own lag statistic goes stale under
 * transactional commits, so it is computed here from what the fetcher saw. */
ps_err_t ps_kafka_consumer_lag(struct ps_kafka_consumer *consumer, const char *topic,
                               int64_t *lag_p, struct ps_error *err)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_resp_err_t kerr = rd_kafka_assignment(consumer->rk, &parts);
    int64_t lag = 0;
    if (kerr == RD_KAFKA_RESP_ERR_NO_ERROR) {
        kerr = rd_kafka_position(consumer->rk, parts);
    }
    for (int i = 0; kerr == RD_KAFKA_RESP_ERR_NO_ERROR && i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &parts->elems[i];
        int64_t low = 0, high = 0;
        if (strcmp(p->topic, topic) != 0 || p->offset < 0 ||
            rd_kafka_get_watermark_offsets(consumer->rk, p->topic, p->partition, &low, &high) !=
                RD_KAFKA_RESP_ERR_NO_ERROR || high < 0) {
            continue;
        }
        lag += high > p->offset ? high - p->offset : 0;
    }
    /* Every list from rd_kafka_assignment must be destroyed, or
     * rd_kafka_destroy hangs. */
    if (parts) {
        rd_kafka_topic_partition_list_destroy(parts);
    }
    if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return ps_error_set(err, PS_ERR_KAFKA, "consumer lag: %s", rd_kafka_err2str(kerr));
    }
    *lag_p = lag;
    return PS_OK;
}
