/*
 * Shared plumbing of the Kafka layer: configuration with guarded properties,
 * librdkafka's logs through ps_log, and the mapping of librdkafka's error
 * classes onto ps_err_t.
 */
#include "ps_kafka_int.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ps_log.h"
#include "ps_time.h"

/* Deprecated spellings librdkafka still accepts for a guarded property: a
 * caller could otherwise change a guarantee through the back door. */
static const struct ps_kafka_kv kafka_aliases[] = {
    {"auto.commit.enable", "enable.auto.commit"},
};

static const char *kafka_canonical_key(const char *key)
{
    for (size_t i = 0; i < sizeof(kafka_aliases) / sizeof(kafka_aliases[0]); i++) {
        if (strcmp(key, kafka_aliases[i].key) == 0) {
            return kafka_aliases[i].value;
        }
    }
    return key;
}

/* librdkafka logs with syslog levels from its own threads; ps_log is
 * thread-safe, so lines go straight through. Its log lines carry names,
 * states and error strings, never message payloads. */
static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    enum ps_log_level ps_level;
    if (level <= 3) {
        ps_level = PS_LOG_ERROR;
    } else if (level == 4) {
        ps_level = PS_LOG_WARN;
    } else if (level <= 6) {
        ps_level = PS_LOG_INFO;
    } else {
        ps_level = PS_LOG_DEBUG;
    }
    /* We ask every topic reader not to create topics; brokers older than
     * Kafka 0.11 (and the development broker) cannot honour that and say so
     * on every connection. It changes nothing we rely on. */
    if (fac && strcmp(fac, "AUTOCREATE") == 0) {
        ps_level = PS_LOG_DEBUG;
    }
    if (ps_level < ps_log_get_level()) {
        return;
    }
    /* The facility becomes the log code, which ps_log wants as [a-z0-9_.]. */
    char code[32];
    size_t n = 0;
    for (const char *c = fac ? fac : ""; *c && n + 1 < sizeof(code); c++) {
        char ch = *c;
        if (ch >= 'A' && ch <= 'Z') {
            ch = (char)(ch - 'A' + 'a');
        } else if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.')) {
            ch = '_';
        }
        code[n++] = ch;
    }
    code[n] = '\0';
    ps_log_write(ps_level, PS_KAFKA_LOG, n ? code : "rdkafka", "%s: %s",
                 rk ? rd_kafka_name(rk) : "rdkafka", buf);
}

static ps_err_t kafka_conf_set(rd_kafka_conf_t *conf, const char *role, const char *key,
                               const char *value, struct ps_error *err)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, key, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        return ps_error_set(err, PS_ERR_CONFIG, "%s property '%s': %s", role, key, errstr);
    }
    return PS_OK;
}

ps_err_t ps_kafka_conf_build(const char *role, const struct ps_kafka_kv *defaults,
                             size_t default_count, const struct ps_kafka_property *props,
                             size_t prop_count, const struct ps_kafka_kv *guarded,
                             size_t guarded_count, rd_kafka_conf_t **conf_p,
                             struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        return ps_error_set(err, PS_ERR_NOMEM, "%s: out of memory", role);
    }
    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);

    for (size_t i = 0; i < default_count; i++) {
        rc = kafka_conf_set(conf, role, defaults[i].key, defaults[i].value, err);
        if (rc != PS_OK) {
            goto cleanup;
        }
    }
    for (size_t i = 0; i < prop_count; i++) {
        if (!props[i].key || !props[i].value) {
            rc = ps_error_set(err, PS_ERR_INVALID, "%s property %zu: key and value required",
                              role, i);
            goto cleanup;
        }
        const char *key = kafka_canonical_key(props[i].key);
        const struct ps_kafka_kv *guard = NULL;
        for (size_t g = 0; g < guarded_count; g++) {
            if (strcmp(key, guarded[g].key) == 0) {
                guard = &guarded[g];
                break;
            }
        }
        if (guard) {
            /* The value is not logged: only the key says what was refused. */
            if (!guard->value || strcmp(props[i].value, guard->value) != 0) {
                PS_WARN(PS_KAFKA_LOG, "property_guarded",
                        "%s property '%s' ignored: pseudostream sets it", role, props[i].key);
            }
            continue;
        }
        rc = kafka_conf_set(conf, role, props[i].key, props[i].value, err);
        if (rc != PS_OK) {
            goto cleanup;
        }
    }
    for (size_t g = 0; g < guarded_count; g++) {
        if (!guarded[g].value) {
            continue;
        }
        rc = kafka_conf_set(conf, role, guarded[g].key, guarded[g].value, err);
        if (rc != PS_OK) {
            goto cleanup;
        }
    }
    *conf_p = conf;
    conf = NULL;

cleanup:
    if (conf) {
        rd_kafka_conf_destroy(conf);
    }
    return rc;
}

ps_err_t ps_kafka_client_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, const char *role,
                             rd_kafka_t **rk_p, struct ps_error *err)
{
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    if (!rk) {
        /* On failure the configuration is still ours. */
        rd_kafka_conf_destroy(conf);
        return ps_error_set(err, PS_ERR_CONFIG, "%s: %s", role, errstr);
    }
    *rk_p = rk;
    return PS_OK;
}

ps_err_t ps_kafka_error_take(rd_kafka_error_t *error, const char *what, struct ps_error *err)
{
    if (!error) {
        return PS_OK;
    }
    ps_err_t code;
    if (rd_kafka_error_is_fatal(error)) {
        code = PS_ERR_KAFKA_FATAL;
    } else if (rd_kafka_error_txn_requires_abort(error)) {
        code = PS_ERR_KAFKA_ABORTABLE;
    } else if (rd_kafka_error_code(error) == RD_KAFKA_RESP_ERR__TIMED_OUT) {
        code = PS_ERR_TIMEOUT;
    } else if (rd_kafka_error_is_retriable(error)) {
        code = PS_ERR_KAFKA_RETRIABLE;
    } else {
        code = PS_ERR_KAFKA_FATAL;
    }
    ps_error_set(err, code, "%s: %s: %s", what, rd_kafka_error_name(error),
                 rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
    return code;
}

ps_err_t ps_kafka_resp_err(rd_kafka_resp_err_t code, const char *what, struct ps_error *err)
{
    ps_err_t rc;
    switch (code) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return PS_OK;
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        rc = PS_ERR_TIMEOUT;
        break;
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_UNSTABLE_OFFSET_COMMIT:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
        rc = PS_ERR_KAFKA_RETRIABLE;
        break;
    default:
        rc = PS_ERR_KAFKA_FATAL;
        break;
    }
    return ps_error_set(err, rc, "%s: %s: %s", what, rd_kafka_err2name(code),
                        rd_kafka_err2str(code));
}

ps_err_t ps_kafka_fatal_check(rd_kafka_t *rk, const char *what, struct ps_error *err)
{
    char errstr[512];
    rd_kafka_resp_err_t code = rd_kafka_fatal_error(rk, errstr, sizeof(errstr));
    if (code == RD_KAFKA_RESP_ERR_NO_ERROR) {
        return PS_OK;
    }
    return ps_error_set(err, PS_ERR_KAFKA_FATAL, "%s: fatal %s: %s", what,
                        rd_kafka_err2name(code), errstr);
}

/* The coarse clock: deadlines here are hundreds of ms or more, and
 * poll_batch reads the clock twice per message. */
int64_t ps_kafka_now_ms(void)
{
    return ps_time_mono_coarse_ms();
}

int ps_kafka_remaining_ms(int64_t deadline)
{
    int64_t left = deadline - ps_kafka_now_ms();
    if (left < 0) {
        return 0;
    }
    return left > INT_MAX ? INT_MAX : (int)left;
}

ps_err_t ps_kafka_topic_watermarks(rd_kafka_t *rk, const char *topic, int timeout_ms,
                                   int *partition_count_p, int64_t **low_p, int64_t **high_p,
                                   struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    const struct rd_kafka_metadata *md = NULL;
    int64_t *low = NULL;
    int64_t *high = NULL;
    int64_t deadline = ps_kafka_now_ms() + timeout_ms;

    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (!rkt) {
        return ps_kafka_resp_err(rd_kafka_last_error(), "topic handle", err);
    }
    rd_kafka_resp_err_t code = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    /* The topic handle would hold a reference that delays rd_kafka_destroy. */
    rd_kafka_topic_destroy(rkt);
    if (code != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc = ps_kafka_resp_err(code, "metadata", err);
        goto cleanup;
    }
    if (md->topic_cnt != 1) {
        rc = ps_error_set(err, PS_ERR_KAFKA_RETRIABLE, "metadata: topic not returned");
        goto cleanup;
    }
    const struct rd_kafka_metadata_topic *mt = &md->topics[0];
    if (mt->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc = ps_kafka_resp_err(mt->err, "metadata", err);
        goto cleanup;
    }
    if (mt->partition_cnt <= 0) {
        rc = ps_error_set(err, PS_ERR_KAFKA_RETRIABLE, "metadata: topic has no partitions");
        goto cleanup;
    }
    int count = mt->partition_cnt;
    low = calloc((size_t)count, sizeof(*low));
    high = calloc((size_t)count, sizeof(*high));
    if (!low || !high) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "watermarks: out of memory");
        goto cleanup;
    }
    for (int i = 0; i < count; i++) {
        /* Kafka numbers partitions 0..n-1; anything else is a broken reply. */
        int32_t id = mt->partitions[i].id;
        if (id < 0 || id >= count) {
            rc = ps_error_set(err, PS_ERR_KAFKA_FATAL, "metadata: partition id %d of %d",
                              (int)id, count);
            goto cleanup;
        }
        code = rd_kafka_query_watermark_offsets(rk, topic, id, &low[id], &high[id],
                                                ps_kafka_remaining_ms(deadline));
        if (code != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rc = ps_kafka_resp_err(code, "watermarks", err);
            ps_error_prefix(err, "partition %d", (int)id);
            goto cleanup;
        }
    }
    *partition_count_p = count;
    *low_p = low;
    *high_p = high;
    low = NULL;
    high = NULL;

cleanup:
    if (rc != PS_OK) {
        ps_error_prefix(err, "topic '%s'", topic);
    }
    if (md) {
        rd_kafka_metadata_destroy(md);
    }
    free(low);
    free(high);
    return rc;
}

ps_err_t ps_kafka_headers_append(rd_kafka_message_t *rkm, struct ps_kafka_header **pool_p,
                                 size_t *cap_p, size_t *len_p, size_t *count_p)
{
    rd_kafka_headers_t *hdrs = NULL;
    *count_p = 0;
    if (rd_kafka_message_headers(rkm, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR || !hdrs) {
        return PS_OK;
    }
    size_t count = rd_kafka_header_cnt(hdrs);
    if (count == 0) {
        return PS_OK;
    }
    /* The header count is bounded by the fetched message's size, which
     * librdkafka already capped (fetch.max.bytes). */
    if (*len_p + count > *cap_p) {
        size_t cap = *cap_p ? *cap_p : 16;
        while (cap < *len_p + count) {
            cap *= 2;
        }
        struct ps_kafka_header *pool = realloc(*pool_p, cap * sizeof(*pool));
        if (!pool) {
            return PS_ERR_NOMEM;
        }
        *pool_p = pool;
        *cap_p = cap;
    }
    for (size_t i = 0; i < count; i++) {
        const char *name = NULL;
        const void *value = NULL;
        size_t size = 0;
        if (rd_kafka_header_get_all(hdrs, i, &name, &value, &size) !=
            RD_KAFKA_RESP_ERR_NO_ERROR) {
            break;
        }
        struct ps_kafka_header *hdr = &(*pool_p)[*len_p + *count_p];
        hdr->name = name;
        hdr->value = value;
        hdr->len = value ? size : 0;
        (*count_p)++;
    }
    *len_p += *count_p;
    return PS_OK;
}

void ps_kafka_message_view(rd_kafka_message_t *rkm, struct ps_kafka_message *msg)
{
    rd_kafka_timestamp_type_t tstype;
    msg->topic = rd_kafka_topic_name(rkm->rkt);
    msg->partition = rkm->partition;
    msg->offset = rkm->offset;
    msg->timestamp_ms = rd_kafka_message_timestamp(rkm, &tstype);
    msg->key = rkm->key;
    msg->key_len = rkm->key ? rkm->key_len : 0;
    msg->value = rkm->payload;
    msg->len = rkm->payload ? rkm->len : 0;
    msg->headers = NULL;
    msg->header_count = 0;
}
