/*
 * ps_kafka_int: what the files of the Kafka layer share and nobody else sees.
 *
 * This header and the .c files beside it are the only places that include
 * rdkafka.h (STYLE.md: each third-party header belongs to one layer).
 */
#ifndef PS_KAFKA_INT_H
#define PS_KAFKA_INT_H

#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "ps_kafka.h"

/* Log component of every line this layer writes. */
#define PS_KAFKA_LOG "kafka"

/* How long internal blocking look-ups (metadata, watermarks, committed
 * offsets) may take when the public call has no timeout of its own. */
#define PS_KAFKA_LOOKUP_TIMEOUT_MS 10000

struct ps_kafka_kv {
    const char *key;
    const char *value;
};

/* Builds a configuration: defaults first, then the caller's properties in
 * order (skipping, with a warning, any key listed in guarded), then guarded
 * last. role names the client in messages ("consumer", "producer", ...).
 * Installs the log callback that routes librdkafka's logs to ps_log.
 * PS_ERR_CONFIG names the property librdkafka refused. */
ps_err_t ps_kafka_conf_build(const char *role, const struct ps_kafka_kv *defaults,
                             size_t default_count, const struct ps_kafka_property *props,
                             size_t prop_count, const struct ps_kafka_kv *guarded,
                             size_t guarded_count, rd_kafka_conf_t **conf_p,
                             struct ps_error *err);

/* Creates a client from conf (taken in every case) and names it in errors. */
ps_err_t ps_kafka_client_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, const char *role,
                             rd_kafka_t **rk_p, struct ps_error *err);

/* Maps a classified librdkafka error and destroys it: fatal, then abortable,
 * then timeout, then retriable; anything unclassified is fatal. */
ps_err_t ps_kafka_error_take(rd_kafka_error_t *error, const char *what, struct ps_error *err);

/* Maps a bare response code (no class available): timeouts to PS_ERR_TIMEOUT,
 * well-known transient group and coordinator codes to RETRIABLE, the rest
 * to FATAL. */
ps_err_t ps_kafka_resp_err(rd_kafka_resp_err_t code, const char *what, struct ps_error *err);

/* When rk is in a fatal state, fills err and returns PS_ERR_KAFKA_FATAL. */
ps_err_t ps_kafka_fatal_check(rd_kafka_t *rk, const char *what, struct ps_error *err);

/* Monotonic milliseconds. */
int64_t ps_kafka_now_ms(void);

/* Milliseconds left until deadline (never negative, capped at INT32_MAX). */
int ps_kafka_remaining_ms(int64_t deadline);

/* Partition count and per-partition watermarks of a topic (arrays indexed by
 * partition id, caller frees). PS_ERR_KAFKA_RETRIABLE when the topic is not
 * known to the cluster. */
ps_err_t ps_kafka_topic_watermarks(rd_kafka_t *rk, const char *topic, int timeout_ms,
                                   int *partition_count_p, int64_t **low_p, int64_t **high_p,
                                   struct ps_error *err);

/* Appends views of rkm's headers to the pool *pool_p (grown as needed;
 * entries [*len_p, *len_p + count) are the new ones) and returns the number
 * appended through count_p. Views borrow from rkm. */
ps_err_t ps_kafka_headers_append(rd_kafka_message_t *rkm, struct ps_kafka_header **pool_p,
                                 size_t *cap_p, size_t *len_p, size_t *count_p);

/* Fills a message view of rkm (headers left empty). */
void ps_kafka_message_view(rd_kafka_message_t *rkm, struct ps_kafka_message *msg);

/* The consumer's handle, for the producer's send_offsets_to_transaction. */
rd_kafka_t *ps_kafka_consumer_handle(const struct ps_kafka_consumer *consumer);

/* The batch's next offsets as a new list (caller destroys); NULL when the
 * batch holds no partition. */
rd_kafka_topic_partition_list_t *ps_kafka_batch_offsets(const struct ps_kafka_batch *batch);

#endif
