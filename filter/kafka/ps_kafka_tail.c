/*
 * The topic tail: a consumer that follows every partition of one topic from
 * given offsets and never ends, with no group membership and no commits
 * (like the reader, it carries a throw-away group id only because
 * librdkafka's consumer queue needs one).
 *
 * It exists for state that is rebuilt from a compacted topic: a reader loads
 * the topic to its end at start-up, then a tail carries on from where the
 * reader stopped and is polled without blocking between batches, so live
 * updates arrive without a rebalance or a stall of the pipeline.
 */
#include "ps_kafka_int.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ps_log.h"

struct ps_kafka_tail {
    rd_kafka_t *rk;
    char *topic;
    int partition_count;
    rd_kafka_message_t *current;
    struct ps_kafka_message msg;
    struct ps_kafka_header *hdrs; /* reused for every message */
    size_t hdr_cap;
};

static atomic_uint tail_serial;

ps_err_t ps_kafka_tail_new(const char *bootstraps, const char *topic,
                           const struct ps_kafka_property *props, size_t prop_count,
                           const int64_t *start_offsets, size_t start_count,
                           struct ps_kafka_tail **tail_p, struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    rd_kafka_conf_t *conf = NULL;
    struct ps_kafka_tail *tail = NULL;
    int64_t *low = NULL;
    int64_t *high = NULL;
    rd_kafka_topic_partition_list_t *parts = NULL;

    if (!topic || !*topic || !tail_p || (prop_count && !props) || (start_count && !start_offsets)) {
        return ps_error_set(err, PS_ERR_INVALID, "tail: topic required");
    }
    tail = calloc(1, sizeof(*tail));
    if (!tail) {
        return ps_error_set(err, PS_ERR_NOMEM, "tail: out of memory");
    }
    tail->topic = strdup(topic);
    if (!tail->topic) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "tail: out of memory");
        goto cleanup;
    }

    /* Unique per process and tail: two tails must never share a group. */
    char group_id[96];
    snprintf(group_id, sizeof(group_id), "pseudostream-tail-%ld-%lld-%u", (long)getpid(),
             (long long)ps_kafka_now_ms(), atomic_fetch_add(&tail_serial, 1));
    const struct ps_kafka_kv defaults[] = {
        {"bootstrap.servers", bootstraps ? bootstraps : ""},
        {"client.id", "pseudostream-tail"},
        {"allow.auto.create.topics", "false"},
        {"fetch.wait.max.ms", "100"},
        /* A start offset below the log start (deleted meanwhile) restarts
         * the partition from what is left rather than skipping it. */
        {"auto.offset.reset", "earliest"},
    };
    const struct ps_kafka_kv guarded[] = {
        {"group.id", group_id},
        {"enable.auto.commit", "false"},
        {"isolation.level", "read_committed"},
        {"enable.partition.eof", "false"},
    };
    rc = ps_kafka_conf_build("tail", defaults, sizeof(defaults) / sizeof(defaults[0]), props,
                             prop_count, guarded, sizeof(guarded) / sizeof(guarded[0]), &conf,
                             err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    rc = ps_kafka_client_new(RD_KAFKA_CONSUMER, conf, "tail", &tail->rk, err);
    conf = NULL;
    if (rc != PS_OK) {
        goto cleanup;
    }
    rd_kafka_poll_set_consumer(tail->rk);

    rc = ps_kafka_topic_watermarks(tail->rk, topic, PS_KAFKA_LOOKUP_TIMEOUT_MS,
                                   &tail->partition_count, &low, &high, err);
    if (rc != PS_OK) {
        ps_error_prefix(err, "tail");
        goto cleanup;
    }
    parts = rd_kafka_topic_partition_list_new(tail->partition_count);
    for (int p = 0; p < tail->partition_count; p++) {
        int64_t start = (size_t)p < start_count ? start_offsets[p] : -1;
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset =
            start >= 0 ? start : RD_KAFKA_OFFSET_BEGINNING;
    }
    if (parts->cnt > 0) {
        rd_kafka_resp_err_t code = rd_kafka_assign(tail->rk, parts);
        if (code != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rc = ps_kafka_resp_err(code, "assign", err);
            ps_error_prefix(err, "tail: topic '%s'", topic);
            goto cleanup;
        }
    }
    *tail_p = tail;
    tail = NULL;

cleanup:
    if (parts) {
        rd_kafka_topic_partition_list_destroy(parts);
    }
    free(low);
    free(high);
    ps_kafka_tail_destroy(tail);
    return rc;
}

ps_err_t ps_kafka_tail_next(struct ps_kafka_tail *tail, int timeout_ms,
                            const struct ps_kafka_message **msg_p, struct ps_error *err)
{
    if (!tail || !msg_p || timeout_ms < 0) {
        return ps_error_set(err, PS_ERR_INVALID, "tail: bad arguments");
    }
    *msg_p = NULL;
    if (tail->current) {
        rd_kafka_message_destroy(tail->current);
        tail->current = NULL;
    }
    int64_t deadline = ps_kafka_now_ms() + timeout_ms;
    for (;;) {
        int wait = ps_kafka_remaining_ms(deadline);
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(tail->rk, wait);
        if (!rkm) {
            if (wait == 0) {
                return PS_OK; /* nothing yet: the normal case between updates */
            }
            continue;
        }
        if (rkm->err == RD_KAFKA_RESP_ERR__FATAL) {
            rd_kafka_message_destroy(rkm);
            ps_err_t rc = ps_kafka_fatal_check(tail->rk, "tail", err);
            return rc != PS_OK ? rc : ps_error_set(err, PS_ERR_KAFKA_FATAL, "tail: fatal error");
        }
        if (rkm->err) {
            /* Consumer errors other than fatal are retried by librdkafka
             * itself; they are worth a line, not a failure. */
            PS_WARN(PS_KAFKA_LOG, "tail_error", "tail: topic '%s' partition %d: %s", tail->topic,
                    (int)rkm->partition, rd_kafka_err2name(rkm->err));
            rd_kafka_message_destroy(rkm);
            continue;
        }
        size_t len = 0;
        size_t count = 0;
        if (ps_kafka_headers_append(rkm, &tail->hdrs, &tail->hdr_cap, &len, &count) != PS_OK) {
            rd_kafka_message_destroy(rkm);
            return ps_error_set(err, PS_ERR_NOMEM, "tail: out of memory");
        }
        tail->current = rkm;
        ps_kafka_message_view(rkm, &tail->msg);
        tail->msg.headers = count ? tail->hdrs : NULL;
        tail->msg.header_count = count;
        *msg_p = &tail->msg;
        return PS_OK;
    }
}

int ps_kafka_tail_partitions(const struct ps_kafka_tail *tail)
{
    return tail ? tail->partition_count : 0;
}

void ps_kafka_tail_destroy(struct ps_kafka_tail *tail)
{
    if (!tail) {
        return;
    }
    /* Messages hold references on the client: they go before it. */
    if (tail->current) {
        rd_kafka_message_destroy(tail->current);
    }
    if (tail->rk) {
        rd_kafka_consumer_close(tail->rk);
        rd_kafka_destroy(tail->rk);
    }
    free(tail->topic);
    free(tail->hdrs);
    free(tail);
}
