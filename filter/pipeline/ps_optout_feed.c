#include "ps_optout_feed.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ps_keyed_hash.h"
#include "ps_log.h"
#include "ps_time.h"

/*
 * Catch-up uses a ps_kafka_reader (the end is fixed when it is created), and
 * records, per partition, the offset after the last record it delivered. The
 * live tail then starts at exactly those offsets, so nothing produced between
 * the reader's creation and the tail's is missed. A partition the reader
 * delivered nothing from is followed from its beginning: it was empty or
 * held only aborted records and markers, which read_committed hides again.
 * Records of one key share a partition and are applied in partition order,
 * so the last word on each number wins however often a prefix is replayed.
 */

#define FEED_LOG "optout"
/* Partition ids come from the broker; anything this large is not a real
 * opt-out topic and must not size an allocation. */
#define FEED_MAX_PARTITIONS 100000

struct ps_optout_feed {
    char *bootstraps;
    char *topic;
    struct ps_kafka_property *props; /* owned copies */
    size_t prop_count;
    struct ps_optout *optout;        /* borrowed */
    struct ps_kafka_tail *tail;      /* set once caught up */
    int64_t *next_offsets;           /* per partition; -1 when nothing seen */
    size_t partition_count;
    struct ps_optout_feed_stats stats;
    ps_err_t broken; /* set when poll lost a record: the tail is past it */
};

static ps_err_t feed_track(struct ps_optout_feed *feed, int32_t partition, int64_t offset,
                           struct ps_error *err)
{
    if (partition < 0 || partition >= FEED_MAX_PARTITIONS) {
        return ps_error_set(err, PS_ERR_LIMIT, "partition %d out of range", (int)partition);
    }
    size_t p = (size_t)partition;
    if (p >= feed->partition_count) {
        int64_t *grown = realloc(feed->next_offsets, (p + 1) * sizeof(*grown));
        if (!grown) {
            return ps_error_set(err, PS_ERR_NOMEM, "out of memory");
        }
        for (size_t i = feed->partition_count; i <= p; i++) {
            grown[i] = -1;
        }
        feed->next_offsets = grown;
        feed->partition_count = p + 1;
    }
    if (offset + 1 > feed->next_offsets[p]) {
        feed->next_offsets[p] = offset + 1;
    }
    return PS_OK;
}

/* Applies one record to the state. Only resource failures are errors: a bad
 * key is counted, never reported with its content. */
static ps_err_t feed_apply(struct ps_optout_feed *feed, const struct ps_kafka_message *msg,
                           struct ps_error *err)
{
    ps_err_t rc = feed_track(feed, msg->partition, msg->offset, err);
    if (rc != PS_OK) {
        return rc;
    }
    if (!msg->key || msg->key_len == 0) {
        feed->stats.invalid++;
        return PS_OK;
    }
    int listed = msg->value != NULL;
    if (listed) {
        rc = ps_optout_add(feed->optout, msg->key, msg->key_len, err);
    } else {
        rc = ps_optout_remove(feed->optout, msg->key, msg->key_len, err);
    }
    if (rc == PS_ERR_NHS_INVALID) {
        feed->stats.invalid++;
        ps_error_clear(err);
        return PS_OK;
    }
    if (rc != PS_OK) {
        return rc;
    }
    if (listed) {
        feed->stats.added++;
    } else {
        feed->stats.removed++;
    }
    if (msg->timestamp_ms > 0) {
        int64_t now = ps_time_now_ms();
        ps_optout_set_as_of(feed->optout, msg->timestamp_ms < now ? msg->timestamp_ms : now);
    }
    return PS_OK;
}

ps_err_t ps_optout_feed_new(const char *bootstraps, const char *topic,
                            const struct ps_kafka_property *props, size_t prop_count,
                            struct ps_optout *optout, struct ps_optout_feed **feed_p,
                            struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    struct ps_optout_feed *feed = NULL;

    if (!bootstraps || !topic || !*topic || !optout || !feed_p || (prop_count && !props)) {
        return ps_error_set(err, PS_ERR_INVALID, "opt-out feed: missing argument");
    }
    feed = calloc(1, sizeof(*feed));
    if (!feed) {
        return ps_error_set(err, PS_ERR_NOMEM, "opt-out feed: out of memory");
    }
    feed->optout = optout;
    feed->bootstraps = strdup(bootstraps);
    feed->topic = strdup(topic);
    if (!feed->bootstraps || !feed->topic) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "opt-out feed: out of memory");
        goto cleanup;
    }
    if (prop_count) {
        feed->props = calloc(prop_count, sizeof(*feed->props));
        if (!feed->props) {
            rc = ps_error_set(err, PS_ERR_NOMEM, "opt-out feed: out of memory");
            goto cleanup;
        }
        for (size_t i = 0; i < prop_count; i++) {
            if (!props[i].key || !props[i].value) {
                rc = ps_error_set(err, PS_ERR_INVALID, "opt-out feed: property %zu incomplete",
                                  i);
                goto cleanup;
            }
            feed->prop_count = i + 1;
            feed->props[i].key = strdup(props[i].key);
            feed->props[i].value = strdup(props[i].value);
            if (!feed->props[i].key || !feed->props[i].value) {
                rc = ps_error_set(err, PS_ERR_NOMEM, "opt-out feed: out of memory");
                goto cleanup;
            }
        }
    }
    *feed_p = feed;
    feed = NULL;

cleanup:
    ps_optout_feed_destroy(feed);
    return rc;
}

void ps_optout_feed_destroy(struct ps_optout_feed *feed)
{
    if (!feed) {
        return;
    }
    ps_kafka_tail_destroy(feed->tail);
    for (size_t i = 0; i < feed->prop_count; i++) {
        /* Properties may hold credentials (sasl.password): the copies are
         * cleared before they go back to the allocator. */
        if (feed->props[i].value) {
            ps_keyed_hash_wipe((char *)feed->props[i].value, strlen(feed->props[i].value));
        }
        free((char *)feed->props[i].key);
        free((char *)feed->props[i].value);
    }
    free(feed->props);
    free(feed->next_offsets);
    free(feed->bootstraps);
    free(feed->topic);
    free(feed);
}

ps_err_t ps_optout_feed_catch_up(struct ps_optout_feed *feed, int timeout_ms,
                                 struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    struct ps_kafka_reader *reader = NULL;

    if (!feed || timeout_ms < 0) {
        return ps_error_set(err, PS_ERR_INVALID, "opt-out feed: bad arguments");
    }
    if (feed->tail) {
        return ps_error_set(err, PS_ERR_INVALID, "opt-out topic '%s': already caught up",
                            feed->topic);
    }
    /* A retry starts over: offsets seen by a failed attempt are forgotten so
     * that the tail cannot skip what this attempt has not applied. */
    feed->partition_count = 0;
    int64_t deadline = ps_time_mono_ms() + timeout_ms;
    struct ps_optout_feed_stats before = feed->stats;

    rc = ps_kafka_reader_new(feed->bootstraps, feed->topic, feed->props, feed->prop_count,
                             &reader, err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    for (;;) {
        int64_t left = deadline - ps_time_mono_ms();
        int wait = left <= 0 ? 0 : left < INT32_MAX ? (int)left : INT32_MAX;
        const struct ps_kafka_message *msg = NULL;
        rc = ps_kafka_reader_next(reader, wait, &msg, err);
        if (rc == PS_ERR_STOPPED) {
            rc = PS_OK;
            ps_error_clear(err);
            break;
        }
        if (rc != PS_OK) {
            goto cleanup;
        }
        rc = feed_apply(feed, msg, err);
        if (rc != PS_OK) {
            goto cleanup;
        }
    }
    /* The reader goes before the tail starts: no need for two clients. */
    ps_kafka_reader_destroy(reader);
    reader = NULL;
    rc = ps_kafka_tail_new(feed->bootstraps, feed->topic, feed->props, feed->prop_count,
                           feed->next_offsets, feed->partition_count, &feed->tail, err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    PS_INFO(FEED_LOG, "optout_caught_up",
            "opt-out topic '%s' loaded: %" PRIu64 " listed, %" PRIu64 " removed, %" PRIu64
            " invalid key(s) skipped; %zu number(s) held",
            feed->topic, feed->stats.added - before.added, feed->stats.removed - before.removed,
            feed->stats.invalid - before.invalid, ps_optout_count(feed->optout));

cleanup:
    ps_kafka_reader_destroy(reader);
    if (rc != PS_OK) {
        ps_error_prefix(err, "opt-out topic '%s'", feed->topic);
    }
    return rc;
}

ps_err_t ps_optout_feed_poll(struct ps_optout_feed *feed, struct ps_error *err)
{
    if (!feed) {
        return ps_error_set(err, PS_ERR_INVALID, "opt-out feed: missing argument");
    }
    if (!feed->tail) {
        return ps_error_set(err, PS_ERR_INVALID, "opt-out topic '%s': poll before catch-up",
                            feed->topic);
    }
    if (feed->broken != PS_OK) {
        return ps_error_set(err, feed->broken, "opt-out topic '%s': an update could not be "
                            "applied earlier; the feed must be re-created", feed->topic);
    }
    for (int i = 0; i < PS_OPTOUT_FEED_POLL_MAX; i++) {
        const struct ps_kafka_message *msg = NULL;
        ps_err_t rc = ps_kafka_tail_next(feed->tail, 0, &msg, err);
        if (rc == PS_OK && !msg) {
            break;
        }
        if (rc == PS_OK) {
            rc = feed_apply(feed, msg, err);
            /* The tail has moved past this record and will not offer it
             * again: carrying on would silently miss it (an opt-out let
             * through), so the feed stops here for good and the state ages
             * until it is no longer fresh. */
            if (rc != PS_OK) {
                feed->broken = rc;
            }
        }
        if (rc != PS_OK) {
            return ps_error_prefix(err, "opt-out topic '%s'", feed->topic);
        }
    }
    return PS_OK;
}

int ps_optout_feed_caught_up(const struct ps_optout_feed *feed)
{
    return feed && feed->tail ? 1 : 0;
}

void ps_optout_feed_stats(const struct ps_optout_feed *feed,
                          struct ps_optout_feed_stats *stats_p)
{
    if (!stats_p) {
        return;
    }
    if (!feed) {
        memset(stats_p, 0, sizeof(*stats_p));
        return;
    }
    *stats_p = feed->stats;
}
