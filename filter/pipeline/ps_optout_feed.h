/*
 * ps_optout_feed: keeps a national data opt-out state (ps_optout.h) current
 * from a compacted Kafka topic.
 *
 * Topic format: key = an NHS number (ten digits; spaces or hyphens between
 * the groups are accepted as ps_nhs_normalise accepts them); a non-null value
 * (any content, empty included) = the number is listed (cleared for use, or
 * opted out, as the state's form says); a null value (tombstone) = no longer
 * listed. A record whose key is missing or not a valid NHS number is counted
 * and skipped, never logged. The state's as_of follows the newest timestamp
 * of an applied record, but never past the wall clock: a record stamped in
 * the future vouches only for now.
 *
 * Start-up: ps_optout_feed_catch_up reads the topic from the beginning to its
 * end as it is at the call (blocking); the filter must not consume input
 * before it returns PS_OK. After that, ps_optout_feed_poll applies whatever
 * has arrived since, without blocking, between batches.
 *
 * The feed borrows the state and writes to it; neither is thread-safe: one
 * thread polls the feed and reads the state (the pipeline's loop).
 */
#ifndef PS_OPTOUT_FEED_H
#define PS_OPTOUT_FEED_H

#include <stddef.h>
#include <stdint.h>

#include "ps_error.h"
#include "ps_kafka.h"
#include "ps_optout.h"

/* Most records one ps_optout_feed_poll applies, so that a flood of updates
 * delays a batch by a bounded time; the rest come with the next poll. */
#define PS_OPTOUT_FEED_POLL_MAX 10000

struct ps_optout_feed;

struct ps_optout_feed_stats {
    uint64_t added;   /* records with a value applied */
    uint64_t removed; /* tombstones applied */
    uint64_t invalid; /* records skipped: key missing or not a valid NHS number */
};

/* Creates a feed of topic into optout (borrowed: it must outlive the feed).
 * bootstraps, topic and props are copied. Nothing is read until catch_up.
 * PS_ERR_INVALID for a missing argument. */
ps_err_t ps_optout_feed_new(const char *bootstraps, const char *topic,
                            const struct ps_kafka_property *props, size_t prop_count,
                            struct ps_optout *optout, struct ps_optout_feed **feed_p,
                            struct ps_error *err);
/* Closes the Kafka clients. The state keeps what was applied. NULL is a no-op. */
void ps_optout_feed_destroy(struct ps_optout_feed *feed);

/* Applies the whole topic, from the beginning to the end it has now, then
 * starts following it. timeout_ms bounds the reading; finding the topic's
 * partitions and ends before it may take up to the Kafka layer's own look-up
 * limit (10 s) more when the broker is away. PS_ERR_TIMEOUT when the end was
 * not reached in time, PS_ERR_KAFKA_* from the Kafka layer (RETRIABLE when
 * the topic does not exist), PS_ERR_NOMEM or PS_ERR_LIMIT from the state.
 * On failure the state holds part of the topic: the caller must not start
 * consuming; calling catch_up again starts over from the beginning
 * (replaying in order is harmless). PS_ERR_INVALID once caught up. */
ps_err_t ps_optout_feed_catch_up(struct ps_optout_feed *feed, int timeout_ms,
                                 struct ps_error *err);

/* Applies the records that arrived since (at most PS_OPTOUT_FEED_POLL_MAX),
 * without blocking. PS_ERR_INVALID before catch_up succeeded;
 * PS_ERR_KAFKA_FATAL when the live consumer failed for good; PS_ERR_NOMEM or
 * PS_ERR_LIMIT when the state could not take a record, after which every
 * later poll fails with the same code (a record was lost: re-create the
 * feed and catch up into a new state). After any of these the state stops
 * moving and its as_of ages until it is no longer fresh. */
ps_err_t ps_optout_feed_poll(struct ps_optout_feed *feed, struct ps_error *err);

/* 1 once catch_up has succeeded. */
int ps_optout_feed_caught_up(const struct ps_optout_feed *feed);

/* Counts since the feed was created (all zero for NULL). */
void ps_optout_feed_stats(const struct ps_optout_feed *feed,
                          struct ps_optout_feed_stats *stats_p);

#endif
