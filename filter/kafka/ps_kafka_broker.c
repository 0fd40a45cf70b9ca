/*
 * The embedded development broker: librdkafka's mock cluster, which speaks
 * the Kafka protocol on loopback sockets. Its gaps in librdkafka 2.0.2 (no
 * transaction markers, transactional offsets dropped) are in DESIGN.md §10.
 */
#include "ps_kafka_int.h"

#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka_mock.h>

#include "ps_log.h"

struct ps_kafka_broker {
    rd_kafka_t *rk; /* book-keeping handle the cluster lives on; sends nothing */
    rd_kafka_mock_cluster_t *mcluster;
    char *bootstraps;
    int broker_count;
};

ps_err_t ps_kafka_broker_new(int broker_count, struct ps_kafka_broker **broker_p,
                             struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    rd_kafka_conf_t *conf = NULL;
    struct ps_kafka_broker *broker = NULL;

    if (broker_count < 1 || broker_count > 32 || !broker_p) {
        return ps_error_set(err, PS_ERR_INVALID, "broker: count %d not in 1..32", broker_count);
    }
    broker = calloc(1, sizeof(*broker));
    if (!broker) {
        return ps_error_set(err, PS_ERR_NOMEM, "broker: out of memory");
    }
    broker->broker_count = broker_count;

    /* The handle only anchors the cluster and never sends anything, so it
     * has no bootstrap servers; client.id makes its few log lines
     * recognisable. */
    static const struct ps_kafka_kv defaults[] = {
        {"client.id", "pseudostream-broker"},
        {"log.connection.close", "false"},
    };
    rc = ps_kafka_conf_build("broker", defaults, sizeof(defaults) / sizeof(defaults[0]), NULL, 0,
                             NULL, 0, &conf, err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    rc = ps_kafka_client_new(RD_KAFKA_PRODUCER, conf, "broker", &broker->rk, err);
    conf = NULL;
    if (rc != PS_OK) {
        goto cleanup;
    }
    broker->mcluster = rd_kafka_mock_cluster_new(broker->rk, broker_count);
    if (!broker->mcluster) {
        rc = ps_error_set(err, PS_ERR_IO, "broker: mock cluster could not start");
        goto cleanup;
    }
    const char *bootstraps = rd_kafka_mock_cluster_bootstraps(broker->mcluster);
    broker->bootstraps = strdup(bootstraps ? bootstraps : "");
    if (!broker->bootstraps) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "broker: out of memory");
        goto cleanup;
    }
    PS_INFO(PS_KAFKA_LOG, "broker_started", "embedded broker: %d broker(s) at %s", broker_count,
            broker->bootstraps);
    *broker_p = broker;
    broker = NULL;

cleanup:
    ps_kafka_broker_destroy(broker);
    return rc;
}

const char *ps_kafka_broker_bootstraps(const struct ps_kafka_broker *broker)
{
    return broker ? broker->bootstraps : NULL;
}

ps_err_t ps_kafka_broker_topic_create(struct ps_kafka_broker *broker, const char *topic,
                                      int partitions, struct ps_error *err)
{
    if (!broker || !topic || !*topic || partitions < 1) {
        return ps_error_set(err, PS_ERR_INVALID, "broker: topic and partitions >= 1 required");
    }
    int replication = broker->broker_count < 3 ? broker->broker_count : 3;
    rd_kafka_resp_err_t code =
        rd_kafka_mock_topic_create(broker->mcluster, topic, partitions, replication);
    if (code == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        return PS_OK;
    }
    if (code != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ps_kafka_resp_err(code, "create", err);
        return ps_error_prefix(err, "broker: topic '%s'", topic);
    }
    return PS_OK;
}

ps_err_t ps_kafka_broker_fail_requests(struct ps_kafka_broker *broker, int api_key, size_t count,
                                       int kafka_error, struct ps_error *err)
{
    if (!broker || api_key < 0 || api_key > INT16_MAX || count == 0 || count > 1000) {
        return ps_error_set(err, PS_ERR_INVALID, "broker: bad fault injection arguments");
    }
    rd_kafka_resp_err_t *codes = malloc(count * sizeof(*codes));
    if (!codes) {
        return ps_error_set(err, PS_ERR_NOMEM, "broker: out of memory");
    }
    for (size_t i = 0; i < count; i++) {
        codes[i] = (rd_kafka_resp_err_t)kafka_error;
    }
    rd_kafka_mock_push_request_errors_array(broker->mcluster, (int16_t)api_key, count, codes);
    free(codes);
    return PS_OK;
}

void ps_kafka_broker_clear_failures(struct ps_kafka_broker *broker, int api_key)
{
    if (!broker || api_key < 0 || api_key > INT16_MAX) {
        return;
    }
    rd_kafka_mock_clear_request_errors(broker->mcluster, (int16_t)api_key);
}

static ps_err_t broker_check_id(const struct ps_kafka_broker *broker, int32_t broker_id,
                                struct ps_error *err)
{
    if (!broker || broker_id < 1 || broker_id > broker->broker_count) {
        return ps_error_set(err, PS_ERR_INVALID, "broker: no broker %d", (int)broker_id);
    }
    return PS_OK;
}

ps_err_t ps_kafka_broker_set_down(struct ps_kafka_broker *broker, int32_t broker_id, int down,
                                  struct ps_error *err)
{
    ps_err_t rc = broker_check_id(broker, broker_id, err);
    if (rc != PS_OK) {
        return rc;
    }
    rd_kafka_resp_err_t code = down ? rd_kafka_mock_broker_set_down(broker->mcluster, broker_id)
                                    : rd_kafka_mock_broker_set_up(broker->mcluster, broker_id);
    if (code != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ps_kafka_resp_err(code, down ? "set down" : "set up", err);
        return ps_error_prefix(err, "broker %d", (int)broker_id);
    }
    PS_INFO(PS_KAFKA_LOG, down ? "broker_down" : "broker_up", "embedded broker %d %s",
            (int)broker_id, down ? "down" : "up");
    return PS_OK;
}

ps_err_t ps_kafka_broker_set_rtt(struct ps_kafka_broker *broker, int32_t broker_id, int rtt_ms,
                                 struct ps_error *err)
{
    ps_err_t rc = broker_check_id(broker, broker_id, err);
    if (rc != PS_OK) {
        return rc;
    }
    if (rtt_ms < 0) {
        return ps_error_set(err, PS_ERR_INVALID, "broker: negative round-trip time");
    }
    rd_kafka_resp_err_t code = rd_kafka_mock_broker_set_rtt(broker->mcluster, broker_id, rtt_ms);
    if (code != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ps_kafka_resp_err(code, "set rtt", err);
        return ps_error_prefix(err, "broker %d", (int)broker_id);
    }
    return PS_OK;
}

ps_err_t ps_kafka_broker_partition_leader(struct ps_kafka_broker *broker, const char *topic,
                                          int32_t partition, int32_t broker_id,
                                          struct ps_error *err)
{
    ps_err_t rc = broker_check_id(broker, broker_id, err);
    if (rc != PS_OK) {
        return rc;
    }
    if (!topic || partition < 0) {
        return ps_error_set(err, PS_ERR_INVALID, "broker: topic and partition required");
    }
    rd_kafka_resp_err_t code =
        rd_kafka_mock_partition_set_leader(broker->mcluster, topic, partition, broker_id);
    if (code != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ps_kafka_resp_err(code, "set leader", err);
        return ps_error_prefix(err, "broker: topic '%s' partition %d", topic, (int)partition);
    }
    return PS_OK;
}

ps_err_t ps_kafka_broker_coordinator(struct ps_kafka_broker *broker, const char *kind,
                                     const char *key, int32_t broker_id, struct ps_error *err)
{
    ps_err_t rc = broker_check_id(broker, broker_id, err);
    if (rc != PS_OK) {
        return rc;
    }
    if (!kind || !key || (strcmp(kind, "group") != 0 && strcmp(kind, "transaction") != 0)) {
        return ps_error_set(err, PS_ERR_INVALID,
                            "broker: coordinator kind is 'group' or 'transaction'");
    }
    rd_kafka_resp_err_t code =
        rd_kafka_mock_coordinator_set(broker->mcluster, kind, key, broker_id);
    if (code != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ps_kafka_resp_err(code, "set coordinator", err);
        return ps_error_prefix(err, "broker: %s coordinator", kind);
    }
    return PS_OK;
}

void ps_kafka_broker_destroy(struct ps_kafka_broker *broker)
{
    if (!broker) {
        return;
    }
    if (broker->mcluster) {
        rd_kafka_mock_cluster_destroy(broker->mcluster);
    }
    if (broker->rk) {
        rd_kafka_destroy(broker->rk);
    }
    free(broker->bootstraps);
    free(broker);
}
