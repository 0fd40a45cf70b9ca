/*
 * The plain topic reader (opt-out topic, checkers, CLI dumps): every
 * partition from the beginning to the high watermark it had when the reader
 * was created. No group membership and no commits: the group id librdkafka
 * insists on is a throw-away one.
 *
 * The end of a partition is seen either on its last message (offset + 1 ==
 * high watermark) or on a partition-EOF event at or past the watermark; the
 * second covers a real broker's transaction markers, which take offsets but
 * are never delivered as messages.
 */
#include "ps_kafka_int.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ps_log.h"

struct ps_kafka_reader {
    rd_kafka_t *rk;
    char *topic;
    int partition_count;
    int64_t *high;  /* end offset of each partition at creation */
    uint8_t *done;  /* partition reached its end */
    int remaining;  /* partitions not yet done */
    rd_kafka_message_t *current;
    struct ps_kafka_message msg;
    struct ps_kafka_header *hdrs; /* reused for every message */
    size_t hdr_cap;
};

static atomic_uint reader_serial;

static void reader_mark_done(struct ps_kafka_reader *reader, int32_t partition)
{
    if (partition >= 0 && partition < reader->partition_count && !reader->done[partition]) {
        reader->done[partition] = 1;
        reader->remaining--;
    }
}

ps_err_t ps_kafka_reader_new(const char *bootstraps, const char *topic,
                             const struct ps_kafka_property *props, size_t prop_count,
                             struct ps_kafka_reader **reader_p, struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    rd_kafka_conf_t *conf = NULL;
    struct ps_kafka_reader *reader = NULL;
    int64_t *low = NULL;
    rd_kafka_topic_partition_list_t *parts = NULL;

    if (!topic || !*topic || !reader_p || (prop_count && !props)) {
        return ps_error_set(err, PS_ERR_INVALID, "reader: topic required");
    }
    reader = calloc(1, sizeof(*reader));
    if (!reader) {
        return ps_error_set(err, PS_ERR_NOMEM, "reader: out of memory");
    }
    reader->topic = strdup(topic);
    if (!reader->topic) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "reader: out of memory");
        goto cleanup;
    }

    /* Unique per process and reader: two readers must never share a group. */
    char group_id[96];
    snprintf(group_id, sizeof(group_id), "pseudostream-reader-%ld-%lld-%u", (long)getpid(),
             (long long)ps_kafka_now_ms(), atomic_fetch_add(&reader_serial, 1));
    const struct ps_kafka_kv defaults[] = {
        {"bootstrap.servers", bootstraps ? bootstraps : ""},
        {"client.id", "pseudostream-reader"},
        {"allow.auto.create.topics", "false"},
        {"queued.min.messages", "1000000"},
        {"queued.max.messages.kbytes", "262144"},
        {"fetch.wait.max.ms", "50"},
    };
    /* enable.partition.eof is how the end is seen past transaction markers. */
    const struct ps_kafka_kv guarded[] = {
        {"group.id", group_id},
        {"enable.auto.commit", "false"},
        {"isolation.level", "read_committed"},
        {"enable.partition.eof", "true"},
    };
    rc = ps_kafka_conf_build("reader", defaults, sizeof(defaults) / sizeof(defaults[0]), props,
                             prop_count, guarded, sizeof(guarded) / sizeof(guarded[0]), &conf,
                             err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    rc = ps_kafka_client_new(RD_KAFKA_CONSUMER, conf, "reader", &reader->rk, err);
    conf = NULL;
    if (rc != PS_OK) {
        goto cleanup;
    }
    rd_kafka_poll_set_consumer(reader->rk);

    rc = ps_kafka_topic_watermarks(reader->rk, topic, PS_KAFKA_LOOKUP_TIMEOUT_MS,
                                   &reader->partition_count, &low, &reader->high, err);
    if (rc != PS_OK) {
        ps_error_prefix(err, "reader");
        goto cleanup;
    }
    reader->done = calloc((size_t)reader->partition_count, sizeof(*reader->done));
    if (!reader->done) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "reader: out of memory");
        goto cleanup;
    }
    parts = rd_kafka_topic_partition_list_new(reader->partition_count);
    for (int p = 0; p < reader->partition_count; p++) {
        if (reader->high[p] <= low[p]) {
            reader->done[p] = 1;
            continue;
        }
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
        reader->remaining++;
    }
    if (parts->cnt > 0) {
        rd_kafka_resp_err_t code = rd_kafka_assign(reader->rk, parts);
        if (code != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rc = ps_kafka_resp_err(code, "assign", err);
            ps_error_prefix(err, "reader: topic '%s'", topic);
            goto cleanup;
        }
    }
    *reader_p = reader;
    reader = NULL;

cleanup:
    if (parts) {
        rd_kafka_topic_partition_list_destroy(parts);
    }
    free(low);
    ps_kafka_reader_destroy(reader);
    return rc;
}

ps_err_t ps_kafka_reader_next(struct ps_kafka_reader *reader, int timeout_ms,
                              const struct ps_kafka_message **msg_p, struct ps_error *err)
{
    if (!reader || !msg_p || timeout_ms < 0) {
        return ps_error_set(err, PS_ERR_INVALID, "reader: bad arguments");
    }
    if (reader->current) {
        rd_kafka_message_destroy(reader->current);
        reader->current = NULL;
    }
    int64_t deadline = ps_kafka_now_ms() + timeout_ms;
    for (;;) {
        if (reader->remaining == 0) {
            return ps_error_set(err, PS_ERR_STOPPED, "reader: end of topic '%s'", reader->topic);
        }
        int wait = ps_kafka_remaining_ms(deadline);
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(reader->rk, wait);
        if (!rkm) {
            if (wait == 0) {
                return ps_error_set(err, PS_ERR_TIMEOUT,
                                    "reader: topic '%s': nothing within %d ms, %d partition(s) "
                                    "not at their end",
                                    reader->topic, timeout_ms, reader->remaining);
            }
            continue;
        }
        int32_t p = rkm->partition;
        int known = p >= 0 && p < reader->partition_count;
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (known && rkm->offset >= reader->high[p]) {
                reader_mark_done(reader, p);
            }
            rd_kafka_message_destroy(rkm);
            continue;
        }
        if (rkm->err == RD_KAFKA_RESP_ERR__FATAL) {
            rd_kafka_message_destroy(rkm);
            ps_err_t rc = ps_kafka_fatal_check(reader->rk, "reader", err);
            return rc != PS_OK ? rc : ps_error_set(err, PS_ERR_KAFKA_FATAL, "reader: fatal error");
        }
        if (rkm->err) {
            PS_WARN(PS_KAFKA_LOG, "reader_error", "reader: topic '%s' partition %d: %s",
                    reader->topic, (int)p, rd_kafka_err2name(rkm->err));
            rd_kafka_message_destroy(rkm);
            continue;
        }
        /* Messages past the end (produced after creation) are not ours. */
        if (!known || reader->done[p] || rkm->offset >= reader->high[p]) {
            rd_kafka_message_destroy(rkm);
            continue;
        }
        if (rkm->offset + 1 >= reader->high[p]) {
            reader_mark_done(reader, p);
        }
        size_t len = 0;
        size_t count = 0;
        if (ps_kafka_headers_append(rkm, &reader->hdrs, &reader->hdr_cap, &len, &count) !=
            PS_OK) {
            rd_kafka_message_destroy(rkm);
            return ps_error_set(err, PS_ERR_NOMEM, "reader: out of memory");
        }
        reader->current = rkm;
        ps_kafka_message_view(rkm, &reader->msg);
        reader->msg.headers = count ? reader->hdrs : NULL;
        reader->msg.header_count = count;
        *msg_p = &reader->msg;
        return PS_OK;
    }
}

void ps_kafka_reader_destroy(struct ps_kafka_reader *reader)
{
    if (!reader) {
        return;
    }
    /* Messages hold references on the client: they go before it. */
    if (reader->current) {
        rd_kafka_message_destroy(reader->current);
    }
    if (reader->rk) {
        rd_kafka_consumer_close(reader->rk);
        rd_kafka_destroy(reader->rk);
    }
    free(reader->topic);
    free(reader->high);
    free(reader->done);
    free(reader->hdrs);
    free(reader);
}

ps_err_t ps_kafka_topic_count(const char *bootstraps, const char *topic, int64_t *count_p,
                              struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_t *rk = NULL;
    int64_t *low = NULL;
    int64_t *high = NULL;
    int partition_count = 0;

    if (!topic || !*topic || !count_p) {
        return ps_error_set(err, PS_ERR_INVALID, "topic count: topic required");
    }
    /* A producer handle: the lightest client that can ask for metadata and
     * watermarks; it never produces. */
    const struct ps_kafka_kv defaults[] = {
        {"bootstrap.servers", bootstraps ? bootstraps : ""},
        {"client.id", "pseudostream-count"},
        {"allow.auto.create.topics", "false"}, /* counting must not create */
    };
    rc = ps_kafka_conf_build("topic count", defaults, sizeof(defaults) / sizeof(defaults[0]),
                             NULL, 0, NULL, 0, &conf, err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    rc = ps_kafka_client_new(RD_KAFKA_PRODUCER, conf, "topic count", &rk, err);
    conf = NULL;
    if (rc != PS_OK) {
        goto cleanup;
    }
    rc = ps_kafka_topic_watermarks(rk, topic, PS_KAFKA_LOOKUP_TIMEOUT_MS, &partition_count, &low,
                                   &high, err);
    if (rc != PS_OK) {
        ps_error_prefix(err, "topic count");
        goto cleanup;
    }
    int64_t count = 0;
    for (int p = 0; p < partition_count; p++) {
        if (high[p] > low[p]) {
            count += high[p] - low[p];
        }
    }
    *count_p = count;

cleanup:
    if (rk) {
        rd_kafka_destroy(rk);
    }
    free(low);
    free(high);
    return rc;
}
