/*
 * The producer: transactional (one transaction per input batch, offsets
 * included) or idempotent (at-least-once mode).
 *
 * In at-least-once mode nothing waits per batch: each message carries the id
 * of its batch's epoch as its opaque, delivery reports count the epoch's
 * outstanding messages down, and the input offsets of the leading epochs
 * whose messages are all acknowledged are committed asynchronously. Waiting
 * for a flush and committing synchronously per batch was measured at a
 * quarter of the throughput (feasibility.md §2).
 *
 * Delivery reports run on the thread that polls, flushes, commits or aborts,
 * which is the one thread that owns the producer, so the counters below need
 * no lock.
 */
#include "ps_kafka_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ps_log.h"

/* Serving delivery reports every so many sends keeps the report queue (which
 * holds the reported messages, payload copies included) small between
 * commits. */
#define PRODUCER_POLL_EVERY 1000

/* One batch's worth of at-least-once output. */
struct producer_epoch {
    uint64_t id;
    size_t outstanding;        /* sent, not yet reported */
    int failed;                /* a delivery of this epoch failed */
    int sealed;                /* no more sends; offsets attached */
    rd_kafka_t *consumer_rk;   /* commits go through the consumer's handle */
    rd_kafka_topic_partition_list_t *offsets; /* NULL: the batch held none */
};

struct ps_kafka_producer {
    rd_kafka_t *rk;
    int transactional;
    int offsets_sent;                  /* this transaction's offsets are in it */
    unsigned long sends;
    unsigned long failed;              /* failed deliveries since the last flush */
    rd_kafka_resp_err_t first_failure; /* reason of the first of them */
    /* At-least-once epochs, oldest first; ids are consecutive, so the epoch
     * of a delivery report is found by subtraction. */
    struct producer_epoch epochs[PS_KAFKA_EPOCHS_MAX + 1];
    size_t epoch_count;
    uint64_t next_epoch;               /* id of the next epoch (ids start at 1) */
    int epoch_open;                    /* the newest epoch takes sends */
};

static struct producer_epoch *producer_epoch_find(struct ps_kafka_producer *producer,
                                                  uint64_t id)
{
    if (id == 0 || producer->epoch_count == 0 || id < producer->epochs[0].id) {
        return NULL;
    }
    uint64_t index = id - producer->epochs[0].id;
    return index < producer->epoch_count ? &producer->epochs[index] : NULL;
}

static void producer_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    (void)rk;
    struct ps_kafka_producer *producer = opaque;
    /* The epoch may have been discarded after a rewind: then the report
     * concerns output whose input is being read again, and changes nothing. */
    struct producer_epoch *epoch =
        producer_epoch_find(producer, (uint64_t)(uintptr_t)rkm->_private);
    if (epoch) {
        if (epoch->outstanding > 0) {
            epoch->outstanding--;
        }
        if (rkm->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            epoch->failed = 1;
        }
    }
    /* Purged messages are those of an aborted transaction: the abort
     * already settled them, they are not delivery failures. */
    if (rkm->err == RD_KAFKA_RESP_ERR_NO_ERROR || rkm->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
        rkm->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
        return;
    }
    if (producer->failed == 0) {
        producer->first_failure = rkm->err;
        /* One line per failure run, not per message: a broker outage fails
         * every queued message. Topic and partition only, never content. */
        PS_WARN(PS_KAFKA_LOG, "delivery_failed", "delivery to topic '%s' partition %d: %s",
                rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "?", (int)rkm->partition,
                rd_kafka_err2name(rkm->err));
    }
    producer->failed++;
}

ps_err_t ps_kafka_producer_new(const char *bootstraps, const char *transactional_id,
                               const struct ps_kafka_property *props, size_t prop_count,
                               struct ps_kafka_producer **producer_p, struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    rd_kafka_conf_t *conf = NULL;
    struct ps_kafka_producer *producer = NULL;

    if (!producer_p || (prop_count && !props) || (transactional_id && !*transactional_id)) {
        return ps_error_set(err, PS_ERR_INVALID, "producer: bad arguments");
    }
    producer = calloc(1, sizeof(*producer));
    if (!producer) {
        return ps_error_set(err, PS_ERR_NOMEM, "producer: out of memory");
    }
    producer->transactional = transactional_id != NULL;
    producer->next_epoch = 1;

    /* murmur2_random partitions keyed records as the Java client does, so
     * every client of a topic puts a patient's records on one partition. */
    const struct ps_kafka_kv defaults[] = {
        {"bootstrap.servers", bootstraps ? bootstraps : ""},
        {"client.id", "pseudostream"},
        {"partitioner", "murmur2_random"},
        {"linger.ms", "5"},
        {"batch.num.messages", "10000"},
        {"queue.buffering.max.messages", "1000000"},
        {"compression.codec", "none"},
    };
    /* transactional.id is guarded in both modes: NULL keeps a caller's
     * property from turning an idempotent producer transactional. */
    /* Transactional: the commit settles every message, so only failures
     * need a report, and successful messages are freed on librdkafka's own
     * thread instead of in rd_kafka_poll on ours. At-least-once counts every
     * acknowledgement per epoch, so it needs them all. Guarded either way. */
    const struct ps_kafka_kv guarded[] = {
        {"transactional.id", transactional_id},
        {"enable.idempotence", "true"},
        {"delivery.report.only.error", transactional_id ? "true" : "false"},
    };
    rc = ps_kafka_conf_build("producer", defaults, sizeof(defaults) / sizeof(defaults[0]), props,
                             prop_count, guarded, sizeof(guarded) / sizeof(guarded[0]), &conf,
                             err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, producer_dr_cb);
    rd_kafka_conf_set_opaque(conf, producer);
    rc = ps_kafka_client_new(RD_KAFKA_PRODUCER, conf, "producer", &producer->rk, err);
    conf = NULL;
    if (rc != PS_OK) {
        goto cleanup;
    }
    *producer_p = producer;
    producer = NULL;

cleanup:
    free(producer);
    return rc;
}

void ps_kafka_producer_destroy(struct ps_kafka_producer *producer)
{
    if (!producer) {
        return;
    }
    if (producer->rk) {
        rd_kafka_resp_err_t code = rd_kafka_flush(producer->rk, 10000);
        if (code != RD_KAFKA_RESP_ERR_NO_ERROR) {
            PS_WARN(PS_KAFKA_LOG, "producer_close", "producer close: %d message(s) not delivered",
                    rd_kafka_outq_len(producer->rk));
        }
        rd_kafka_destroy(producer->rk);
    }
    ps_kafka_producer_epochs_discard(producer);
    free(producer);
}

void ps_kafka_producer_purge(struct ps_kafka_producer *producer)
{
    if (!producer || !producer->rk) {
        return;
    }
    rd_kafka_resp_err_t code =
        rd_kafka_purge(producer->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    if (code != RD_KAFKA_RESP_ERR_NO_ERROR) {
        PS_WARN(PS_KAFKA_LOG, "producer_purge", "producer purge: %s", rd_kafka_err2name(code));
    }
    /* Serve the purged messages' reports now: they free the copies. */
    rd_kafka_poll(producer->rk, 0);
}

static ps_err_t producer_need_txn(struct ps_kafka_producer *producer, const char *what,
                                  struct ps_error *err)
{
    if (!producer) {
        return ps_error_set(err, PS_ERR_INVALID, "producer: %s without producer", what);
    }
    if (!producer->transactional) {
        return ps_error_set(err, PS_ERR_INVALID, "producer: %s needs a transactional producer",
                            what);
    }
    return PS_OK;
}

ps_err_t ps_kafka_producer_init_transactions(struct ps_kafka_producer *producer, int timeout_ms,
                                             struct ps_error *err)
{
    ps_err_t rc = producer_need_txn(producer, "init_transactions", err);
    if (rc != PS_OK) {
        return rc;
    }
    rc = ps_kafka_error_take(rd_kafka_init_transactions(producer->rk, timeout_ms),
                             "init_transactions", err);
    if (rc != PS_OK) {
        ps_error_prefix(err, "producer");
    }
    return rc;
}

ps_err_t ps_kafka_producer_begin(struct ps_kafka_producer *producer, struct ps_error *err)
{
    ps_err_t rc = producer_need_txn(producer, "begin", err);
    if (rc != PS_OK) {
        return rc;
    }
    rc = ps_kafka_error_take(rd_kafka_begin_transaction(producer->rk), "begin_transaction", err);
    if (rc != PS_OK) {
        ps_error_prefix(err, "producer");
    }
    producer->offsets_sent = 0;
    return rc;
}

/* Class of a synchronous produce failure. */
static ps_err_t producer_send_error(struct ps_kafka_producer *producer, const char *topic,
                                    rd_kafka_resp_err_t code, struct ps_error *err)
{
    ps_err_t rc;
    char fatal[256];
    if (code == RD_KAFKA_RESP_ERR__FATAL ||
        rd_kafka_fatal_error(producer->rk, fatal, sizeof(fatal)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc = ps_kafka_fatal_check(producer->rk, "send", err);
        if (rc == PS_OK) {
            rc = ps_error_set(err, PS_ERR_KAFKA_FATAL, "send: %s", rd_kafka_err2name(code));
        }
    } else if (producer->transactional || producer->epoch_open) {
        /* Whatever failed, this message is not in the transaction (or the
         * at-least-once batch): the batch must not commit without it. */
        rc = ps_error_set(err, PS_ERR_KAFKA_ABORTABLE, "send: %s: %s", rd_kafka_err2name(code),
                          rd_kafka_err2str(code));
    } else if (code == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
        /* A property of this record, not of the connection. */
        rc = ps_error_set(err, PS_ERR_LIMIT, "send: %s", rd_kafka_err2str(code));
    } else if (code == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ||
               code == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
               code == RD_KAFKA_RESP_ERR__INVALID_ARG) {
        rc = ps_error_set(err, PS_ERR_INVALID, "send: %s", rd_kafka_err2str(code));
    } else {
        rc = ps_error_set(err, PS_ERR_KAFKA_FATAL, "send: %s: %s", rd_kafka_err2name(code),
                          rd_kafka_err2str(code));
    }
    return ps_error_prefix(err, "producer: topic '%s'", topic);
}

ps_err_t ps_kafka_producer_send(struct ps_kafka_producer *producer, const char *topic,
                                int32_t partition, const void *key, size_t key_len,
                                const void *value, size_t len,
                                const struct ps_kafka_header *headers, size_t header_count,
                                struct ps_error *err)
{
    rd_kafka_headers_t *hdrs = NULL;

    if (!producer || !topic || !*topic || partition < -1 || (header_count && !headers)) {
        return ps_error_set(err, PS_ERR_INVALID, "producer: bad send arguments");
    }
    if (header_count) {
        hdrs = rd_kafka_headers_new(header_count);
        for (size_t i = 0; i < header_count; i++) {
            const struct ps_kafka_header *h = &headers[i];
            if (!h->name) {
                rd_kafka_headers_destroy(hdrs);
                return ps_error_set(err, PS_ERR_INVALID, "producer: header %zu has no name", i);
            }
            /* A NULL value is a null header, as Kafka allows. */
            rd_kafka_header_add(hdrs, h->name, -1, h->value, h->value ? (ssize_t)h->len : 0);
        }
    }

    /* The open epoch's id travels with the message to its delivery report. */
    struct producer_epoch *epoch =
        producer->epoch_open ? &producer->epochs[producer->epoch_count - 1] : NULL;
    void *tag = epoch ? (void *)(uintptr_t)epoch->id : NULL;
    rd_kafka_resp_err_t code;
    for (;;) {
        /* F_COPY: librdkafka copies key and value, so dropping const is safe. */
        code = rd_kafka_producev(
            producer->rk, RD_KAFKA_V_TOPIC(topic),
            RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
            RD_KAFKA_V_KEY(key, key ? key_len : 0),
            RD_KAFKA_V_VALUE((void *)value, value ? len : 0),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
            RD_KAFKA_V_OPAQUE(tag), RD_KAFKA_V_END);
        if (code != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            break;
        }
        /* The local queue is full: serving delivery reports frees room. The
         * headers stay ours until producev succeeds, so they are reused. */
        rd_kafka_poll(producer->rk, 100);
    }
    if (code != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (hdrs) {
            rd_kafka_headers_destroy(hdrs);
        }
        return producer_send_error(producer, topic, code, err);
    }
    if (epoch) {
        epoch->outstanding++;
    }
    if (++producer->sends % PRODUCER_POLL_EVERY == 0) {
        rd_kafka_poll(producer->rk, 0);
    }
    return PS_OK;
}

ps_err_t ps_kafka_producer_commit(struct ps_kafka_producer *producer,
                                  struct ps_kafka_consumer *consumer,
                                  const struct ps_kafka_batch *batch, int timeout_ms,
                                  struct ps_error *err)
{
    ps_err_t rc = producer_need_txn(producer, "commit", err);
    rd_kafka_topic_partition_list_t *offsets = NULL;
    rd_kafka_consumer_group_metadata_t *cgmd = NULL;

    if (rc != PS_OK) {
        return rc;
    }
    int64_t deadline = ps_kafka_now_ms() + timeout_ms;
    /* After a retriable error or a timeout the offsets may already be in the
     * transaction; librdkafka refuses them a second time once committing. */
    offsets = producer->offsets_sent ? NULL : ps_kafka_batch_offsets(batch);
    if (offsets) {
        rd_kafka_t *consumer_rk = ps_kafka_consumer_handle(consumer);
        cgmd = consumer_rk ? rd_kafka_consumer_group_metadata(consumer_rk) : NULL;
        if (!cgmd) {
            rc = ps_error_set(err, PS_ERR_INVALID, "offsets need a consumer-group member");
            goto cleanup;
        }
        int wait = timeout_ms < 0 ? -1 : ps_kafka_remaining_ms(deadline);
        rc = ps_kafka_error_take(
            rd_kafka_send_offsets_to_transaction(producer->rk, offsets, cgmd, wait),
            "send_offsets_to_transaction", err);
        if (rc != PS_OK) {
            goto cleanup;
        }
        producer->offsets_sent = 1;
    }
    int wait = timeout_ms < 0 ? -1 : ps_kafka_remaining_ms(deadline);
    rc = ps_kafka_error_take(rd_kafka_commit_transaction(producer->rk, wait),
                             "commit_transaction", err);
    if (rc == PS_OK) {
        /* The commit succeeded, so every message of it was delivered. */
        producer->failed = 0;
    }

cleanup:
    if (rc != PS_OK) {
        ps_error_prefix(err, "producer");
    }
    if (cgmd) {
        rd_kafka_consumer_group_metadata_destroy(cgmd);
    }
    if (offsets) {
        rd_kafka_topic_partition_list_destroy(offsets);
    }
    return rc;
}

ps_err_t ps_kafka_producer_abort(struct ps_kafka_producer *producer, int timeout_ms,
                                 struct ps_error *err)
{
    ps_err_t rc = producer_need_txn(producer, "abort", err);
    if (rc != PS_OK) {
        return rc;
    }
    rc = ps_kafka_error_take(rd_kafka_abort_transaction(producer->rk, timeout_ms),
                             "abort_transaction", err);
    if (rc != PS_OK) {
        return ps_error_prefix(err, "producer");
    }
    /* Failures of the aborted transaction's messages are settled by the abort. */
    producer->failed = 0;
    return PS_OK;
}

ps_err_t ps_kafka_producer_flush(struct ps_kafka_producer *producer, int timeout_ms,
                                 struct ps_error *err)
{
    if (!producer) {
        return ps_error_set(err, PS_ERR_INVALID, "producer: flush without producer");
    }
    rd_kafka_resp_err_t code = rd_kafka_flush(producer->rk, timeout_ms);
    ps_err_t rc = ps_kafka_fatal_check(producer->rk, "producer: flush", err);
    if (rc != PS_OK) {
        return rc;
    }
    if (code == RD_KAFKA_RESP_ERR__TIMED_OUT) {
        return ps_error_set(err, PS_ERR_TIMEOUT, "producer: flush: %d message(s) still in flight",
                            rd_kafka_outq_len(producer->rk));
    }
    if (code != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ps_kafka_resp_err(code, "flush", err);
        return ps_error_prefix(err, "producer");
    }
    if (producer->failed) {
        rc = ps_error_set(err, PS_ERR_KAFKA, "producer: %lu deliver%s failed since the last flush "
                          "(first: %s)", producer->failed, producer->failed == 1 ? "y" : "ies",
                          rd_kafka_err2name(producer->first_failure));
        producer->failed = 0;
        return rc;
    }
    return PS_OK;
}

/* ------------------------------------------------- at-least-once epochs */

ps_err_t ps_kafka_producer_epoch_open(struct ps_kafka_producer *producer, struct ps_error *err)
{
    if (!producer || producer->transactional || producer->epoch_open) {
        return ps_error_set(err, PS_ERR_INVALID,
                            "producer: an epoch needs an idempotent producer and no open epoch");
    }
    if (producer->epoch_count > PS_KAFKA_EPOCHS_MAX) {
        return ps_error_set(err, PS_ERR_INVALID, "producer: too many pending epochs");
    }
    struct producer_epoch *epoch = &producer->epochs[producer->epoch_count++];
    memset(epoch, 0, sizeof(*epoch));
    epoch->id = producer->next_epoch++;
    producer->epoch_open = 1;
    return PS_OK;
}

/* Commits the offsets of the first n epochs as one list (a partition's
 * offset is the highest of them: epochs are in consumption order). */
static void producer_epochs_commit(struct ps_kafka_producer *producer, size_t n, int sync)
{
    rd_kafka_topic_partition_list_t *merged = NULL;
    rd_kafka_t *consumer_rk = NULL;
    for (size_t e = 0; e < n; e++) {
        const rd_kafka_topic_partition_list_t *offsets = producer->epochs[e].offsets;
        if (!offsets) {
            continue;
        }
        consumer_rk = producer->epochs[e].consumer_rk;
        if (!merged) {
            merged = rd_kafka_topic_partition_list_copy(offsets);
            continue;
        }
        for (int i = 0; i < offsets->cnt; i++) {
            const rd_kafka_topic_partition_t *tp = &offsets->elems[i];
            rd_kafka_topic_partition_t *have =
                rd_kafka_topic_partition_list_find(merged, tp->topic, tp->partition);
            if (!have) {
                have = rd_kafka_topic_partition_list_add(merged, tp->topic, tp->partition);
                have->offset = tp->offset;
            } else if (tp->offset > have->offset) {
                have->offset = tp->offset;
            }
        }
    }
    if (merged && consumer_rk) {
        /* A failed commit loses nothing: a later one covers the same
         * partitions, or a restart reads the uncommitted part again. */
        rd_kafka_resp_err_t code = rd_kafka_commit(consumer_rk, merged, sync ? 0 : 1);
        if (code != RD_KAFKA_RESP_ERR_NO_ERROR) {
            PS_WARN(PS_KAFKA_LOG, "commit_failed",
                    "offset commit failed (a later commit covers it): %s",
                    rd_kafka_err2name(code));
        }
    }
    if (merged) {
        rd_kafka_topic_partition_list_destroy(merged);
    }
    for (size_t e = 0; e < n; e++) {
        if (producer->epochs[e].offsets) {
            rd_kafka_topic_partition_list_destroy(producer->epochs[e].offsets);
        }
    }
    memmove(&producer->epochs[0], &producer->epochs[n],
            (producer->epoch_count - n) * sizeof(producer->epochs[0]));
    producer->epoch_count -= n;
}

static size_t producer_epochs_sealed(const struct ps_kafka_producer *producer)
{
    return producer->epoch_count - (producer->epoch_open ? 1 : 0);
}

ps_err_t ps_kafka_producer_settle(struct ps_kafka_producer *producer, int timeout_ms, int sync,
                                  struct ps_error *err)
{
    if (!producer || producer->transactional) {
        return ps_error_set(err, PS_ERR_INVALID, "producer: settle needs an idempotent producer");
    }
    int64_t deadline = ps_kafka_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        rd_kafka_poll(producer->rk, 0);
        ps_err_t rc = ps_kafka_fatal_check(producer->rk, "producer", err);
        if (rc != PS_OK) {
            return rc;
        }
        size_t sealed = producer_epochs_sealed(producer);
        size_t n = 0;
        while (n < sealed && producer->epochs[n].outstanding == 0 && !producer->epochs[n].failed) {
            n++;
        }
        if (n > 0) {
            producer_epochs_commit(producer, n, sync);
            sealed -= n;
        }
        /* Failures anywhere pending stop the commits from there on; waiting
         * for the rest of that epoch would change nothing. */
        for (size_t e = 0; e < producer->epoch_count; e++) {
            if (producer->epochs[e].failed) {
                producer->failed = 0;
                return ps_error_set(err, PS_ERR_KAFKA_ABORTABLE,
                                    "producer: a delivery of batch epoch %llu failed (%s): "
                                    "its input is read again",
                                    (unsigned long long)producer->epochs[e].id,
                                    rd_kafka_err2name(producer->first_failure));
            }
        }
        if (sealed == 0) {
            return PS_OK;
        }
        int left = ps_kafka_remaining_ms(deadline);
        if (left == 0) {
            if (sync) {
                return ps_error_set(err, PS_ERR_TIMEOUT,
                                    "producer: %zu batch(es) not acknowledged in time", sealed);
            }
            return PS_OK;
        }
        rd_kafka_poll(producer->rk, left < 100 ? left : 100);
    }
}

ps_err_t ps_kafka_producer_epoch_seal(struct ps_kafka_producer *producer,
                                      struct ps_kafka_consumer *consumer,
                                      const struct ps_kafka_batch *batch, int timeout_ms,
                                      struct ps_error *err)
{
    if (!producer || !producer->epoch_open) {
        return ps_error_set(err, PS_ERR_INVALID, "producer: no open epoch to seal");
    }
    struct producer_epoch *epoch = &producer->epochs[producer->epoch_count - 1];
    epoch->offsets = ps_kafka_batch_offsets(batch);
    epoch->consumer_rk = ps_kafka_consumer_handle(consumer);
    if (epoch->offsets && !epoch->consumer_rk) {
        return ps_error_set(err, PS_ERR_INVALID, "producer: offsets need a consumer");
    }
    epoch->sealed = 1;
    producer->epoch_open = 0;
    /* Back-pressure: never more than PS_KAFKA_EPOCHS_MAX batches in flight. */
    int64_t deadline = ps_kafka_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        ps_err_t rc = ps_kafka_producer_settle(producer, 0, 0, err);
        if (rc != PS_OK || producer->epoch_count < PS_KAFKA_EPOCHS_MAX) {
            return rc;
        }
        int left = ps_kafka_remaining_ms(deadline);
        if (left == 0) {
            return ps_error_set(err, PS_ERR_TIMEOUT,
                                "producer: %zu batches waiting for acknowledgements",
                                producer->epoch_count);
        }
        rd_kafka_poll(producer->rk, left < 100 ? left : 100);
    }
}

void ps_kafka_producer_epochs_discard(struct ps_kafka_producer *producer)
{
    if (!producer) {
        return;
    }
    for (size_t e = 0; e < producer->epoch_count; e++) {
        if (producer->epochs[e].offsets) {
            rd_kafka_topic_partition_list_destroy(producer->epochs[e].offsets);
        }
    }
    producer->epoch_count = 0;
    producer->epoch_open = 0;
}

size_t ps_kafka_producer_epochs_pending(const struct ps_kafka_producer *producer)
{
    return producer ? producer_epochs_sealed(producer) : 0;
}
