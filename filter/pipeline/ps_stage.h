/*
 * ps_stage: derived records held back until their transaction can begin.
 *
 * A Kafka producer has one transaction at a time, and committing one is
 * mostly waiting (for the last produce requests and the coordinator). The
 * pipeline therefore decodes and derives the next batch meanwhile and keeps
 * its records here; once the previous commit has settled it begins the next
 * transaction and sends them, in the order they were added (so per-partition
 * order is that of the input). If the previous commit failed, the staged
 * records are dropped with the rest of the batch and read again.
 *
 * Everything added is copied (topic, key, value, header names and values),
 * so callers may reuse their buffers at once. One contiguous arena and one
 * record table, kept between batches: no allocation per record once warm.
 * Bounded by the caller (ps_stage_bytes); not thread-safe.
 */
#ifndef PS_STAGE_H
#define PS_STAGE_H

#include <stddef.h>

#include "ps_error.h"
#include "ps_kafka.h"

struct ps_stage;

ps_err_t ps_stage_new(struct ps_stage **stage_p, struct ps_error *err);
void ps_stage_destroy(struct ps_stage *stage);

/* Forgets every record, keeping the storage. */
void ps_stage_reset(struct ps_stage *stage);

size_t ps_stage_count(const struct ps_stage *stage);
/* Bytes held (arena and table), to bound a batch's staging. */
size_t ps_stage_bytes(const struct ps_stage *stage);

/* Copies one record in. key or value may be NULL (with length 0); a header
 * value may be NULL (a null header). PS_ERR_INVALID for a missing topic or
 * header name or more than PS_STAGE_HEADERS_MAX headers; PS_ERR_NOMEM. */
#define PS_STAGE_HEADERS_MAX 32
ps_err_t ps_stage_add(struct ps_stage *stage, const char *topic, const void *key, size_t key_len,
                      const void *value, size_t len, const struct ps_kafka_header *headers,
                      size_t header_count, struct ps_error *err);

/* Sends every record, in order, with ps_kafka_producer_send (inside the
 * caller's open transaction). Stops at the first error and returns it; the
 * stage is left as it was (the caller aborts and resets). */
ps_err_t ps_stage_send(const struct ps_stage *stage, struct ps_kafka_producer *producer,
                       struct ps_error *err);

#endif
