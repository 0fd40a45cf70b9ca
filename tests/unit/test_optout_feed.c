/*
 * ps_optout_feed on the in-process mock broker: catch-up loads a compacted
 * opt-out topic to its end, later records arrive through the non-blocking
 * poll, tombstones remove, bad keys are counted and never logged, and as_of
 * follows the records' timestamps.
 *
 * All NHS numbers are artificial (999 range, ps_nhs_make_test_number).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ps_kafka.h"
#include "ps_log.h"
#include "ps_nhs.h"
#include "ps_optout.h"
#include "ps_optout_feed.h"
#include "ps_time.h"

#define TOPIC "optout.updates"
#define TOPIC_EMPTY "optout.empty"
#define PARTITIONS 3
#define FIRST 300  /* numbers listed before catch-up */
#define SECOND 50  /* numbers listed after */

static struct ps_kafka_broker *test_broker;
static const char *bootstraps;
static FILE *log_file;
static char nums[FIRST + SECOND][PS_NHS_DIGITS + 1];

static void assert_ok(ps_err_t rc, const struct ps_error *err)
{
    if (rc != PS_OK) {
        fail_msg("%s: %s", ps_err_name(rc), err->msg);
    }
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int cleared(const struct ps_optout *optout, const char *nhs)
{
    return ps_optout_cleared(optout, nhs, strlen(nhs));
}

/* Sends key -> value (NULL: tombstone) by key partitioning. */
static void send(struct ps_kafka_producer *producer, const char *topic, const char *key,
                 const char *value)
{
    struct ps_error err = {0};
    assert_ok(ps_kafka_producer_send(producer, topic, -1, key, key ? strlen(key) : 0, value,
                                     value ? strlen(value) : 0, NULL, 0, &err),
              &err);
}

static void flush(struct ps_kafka_producer *producer)
{
    struct ps_error err = {0};
    assert_ok(ps_kafka_producer_flush(producer, 10000, &err), &err);
}

/* Polls the feed until its stats reach want (added + removed + invalid) or
 * 10 s passed. */
static void poll_until(struct ps_optout_feed *feed, uint64_t want)
{
    struct ps_error err = {0};
    struct ps_optout_feed_stats stats;
    for (int i = 0; i < 200; i++) {
        assert_ok(ps_optout_feed_poll(feed, &err), &err);
        ps_optout_feed_stats(feed, &stats);
        if (stats.added + stats.removed + stats.invalid >= want) {
            return;
        }
        sleep_ms(50);
    }
    fail_msg("feed stalled at %llu of %llu records",
             (unsigned long long)(stats.added + stats.removed + stats.invalid),
             (unsigned long long)want);
}

/* ------------------------------------------------------------- fixtures */

static int group_setup(void **state)
{
    (void)state;
    /* A hang in a destroy must fail the run, not stall it. */
    alarm(60);
    log_file = tmpfile();
    if (!log_file) {
        return -1;
    }
    ps_log_set_stream(log_file);
    ps_log_set_level(PS_LOG_DEBUG);
    struct ps_error err = {0};
    if (ps_kafka_broker_new(1, &test_broker, &err) != PS_OK) {
        fprintf(stderr, "broker: %s\n", err.msg);
        return -1;
    }
    bootstraps = ps_kafka_broker_bootstraps(test_broker);
    if (ps_kafka_broker_topic_create(test_broker, TOPIC, PARTITIONS, &err) != PS_OK ||
        ps_kafka_broker_topic_create(test_broker, TOPIC_EMPTY, PARTITIONS, &err) != PS_OK) {
        fprintf(stderr, "topic: %s\n", err.msg);
        return -1;
    }
    uint32_t serial = 4242;
    for (size_t i = 0; i < FIRST + SECOND; i++) {
        serial = ps_nhs_make_test_number(serial, nums[i]) + 1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    ps_kafka_broker_destroy(test_broker);
    test_broker = NULL;
    ps_log_set_stream(stderr);
    if (log_file) {
        fclose(log_file);
    }
    return 0;
}

/* ---------------------------------------------------------------- tests */

static void test_arguments(void **state)
{
    (void)state;
    struct ps_error err = {0};
    struct ps_optout *optout = NULL;
    struct ps_optout_feed *feed = NULL;
    assert_ok(ps_optout_new(PS_OPTOUT_CLEARED, &optout, &err), &err);
    assert_int_equal(ps_optout_feed_new(bootstraps, NULL, NULL, 0, optout, &feed, &err),
                     PS_ERR_INVALID);
    assert_int_equal(ps_optout_feed_new(bootstraps, TOPIC, NULL, 0, NULL, &feed, &err),
                     PS_ERR_INVALID);
    const struct ps_kafka_property half[] = {{"client.id", NULL}};
    assert_int_equal(ps_optout_feed_new(bootstraps, TOPIC, half, 1, optout, &feed, &err),
                     PS_ERR_INVALID);
    assert_null(feed);

    /* Polling before the state is loaded is a programming error. */
    assert_ok(ps_optout_feed_new(bootstraps, TOPIC, NULL, 0, optout, &feed, &err), &err);
    assert_int_equal(ps_optout_feed_caught_up(feed), 0);
    assert_int_equal(ps_optout_feed_poll(feed, &err), PS_ERR_INVALID);
    ps_optout_feed_destroy(feed);
    ps_optout_feed_destroy(NULL);

    struct ps_optout_feed_stats stats = {1, 1, 1};
    ps_optout_feed_stats(NULL, &stats);
    assert_int_equal(stats.added + stats.removed + stats.invalid, 0);
    assert_int_equal(ps_optout_feed_caught_up(NULL), 0);
    assert_int_equal(ps_optout_feed_poll(NULL, &err), PS_ERR_INVALID);
    ps_optout_destroy(optout);
}

static void test_catch_up_and_follow(void **state)
{
    (void)state;
    struct ps_error err = {0};
    struct ps_kafka_producer *producer = NULL;
    struct ps_optout *optout = NULL;
    struct ps_optout_feed *feed = NULL;

    /* Before start-up: FIRST numbers opted out, then every tenth withdrawn
     * (tombstone), plus records the feed must skip: a bad check digit, no
     * key, text. */
    int64_t t0 = ps_time_now_ms();
    assert_ok(ps_kafka_producer_new(bootstraps, NULL, NULL, 0, &producer, &err), &err);
    for (size_t i = 0; i < FIRST; i++) {
        send(producer, TOPIC, nums[i], "opted-out");
    }
    for (size_t i = 0; i < FIRST; i += 10) {
        send(producer, TOPIC, nums[i], NULL);
    }
    send(producer, TOPIC, "9990001007", "opted-out");
    send(producer, TOPIC, NULL, "opted-out");
    send(producer, TOPIC, "not a number", NULL);
    flush(producer);
    int64_t t1 = ps_time_now_ms();

    assert_ok(ps_optout_new(PS_OPTOUT_OPTED_OUT, &optout, &err), &err);
    assert_ok(ps_optout_feed_new(bootstraps, TOPIC, NULL, 0, optout, &feed, &err), &err);
    assert_ok(ps_optout_feed_catch_up(feed, 10000, &err), &err);
    assert_int_equal(ps_optout_feed_caught_up(feed), 1);

    /* Everything before the call is in. */
    struct ps_optout_feed_stats stats;
    ps_optout_feed_stats(feed, &stats);
    assert_int_equal(stats.added, FIRST);
    assert_int_equal(stats.removed, FIRST / 10);
    assert_int_equal(stats.invalid, 3);
    assert_int_equal(ps_optout_count(optout), FIRST - FIRST / 10);
    for (size_t i = 0; i < FIRST; i++) {
        assert_int_equal(cleared(optout, nums[i]), i % 10 == 0 ? 1 : 0);
    }
    assert_int_equal(cleared(optout, nums[FIRST]), 1);
    int64_t as_of_1 = ps_optout_as_of(optout);
    assert_true(as_of_1 >= t0 && as_of_1 <= t1);
    assert_int_equal(ps_optout_fresh(optout, ps_time_now_ms(), 60000), 1);

    /* Catching up twice is refused; nothing new: poll returns at once. */
    assert_int_equal(ps_optout_feed_catch_up(feed, 1000, &err), PS_ERR_INVALID);
    int64_t p0 = ps_time_mono_ms();
    assert_ok(ps_optout_feed_poll(feed, &err), &err);
    assert_true(ps_time_mono_ms() - p0 < 500);
    ps_optout_feed_stats(feed, &stats);
    assert_int_equal(stats.added + stats.removed + stats.invalid, FIRST + FIRST / 10 + 3);

    /* Live updates: new opt-outs, withdrawals of old ones, one re-listed,
     * an empty (but not null) value, which still lists. */
    sleep_ms(20);
    int64_t t2 = ps_time_now_ms();
    for (size_t i = FIRST; i < FIRST + SECOND; i++) {
        send(producer, TOPIC, nums[i], i == FIRST ? "" : "opted-out");
    }
    send(producer, TOPIC, nums[1], NULL);
    send(producer, TOPIC, nums[2], NULL);
    send(producer, TOPIC, nums[0], "opted-out again");
    send(producer, TOPIC, "999000100", "opted-out");
    flush(producer);
    int64_t t3 = ps_time_now_ms();
    poll_until(feed, FIRST + FIRST / 10 + 3 + SECOND + 4);

    ps_optout_feed_stats(feed, &stats);
    assert_int_equal(stats.added, FIRST + SECOND + 1);
    assert_int_equal(stats.removed, FIRST / 10 + 2);
    assert_int_equal(stats.invalid, 4);
    for (size_t i = FIRST; i < FIRST + SECOND; i++) {
        assert_int_equal(cleared(optout, nums[i]), 0);
    }
    assert_int_equal(cleared(optout, nums[0]), 0);
    assert_int_equal(cleared(optout, nums[1]), 1);
    assert_int_equal(cleared(optout, nums[2]), 1);
    assert_int_equal(cleared(optout, nums[3]), 0);
    assert_int_equal(ps_optout_count(optout), FIRST - FIRST / 10 + SECOND + 1 - 2);
    int64_t as_of_2 = ps_optout_as_of(optout);
    assert_true(as_of_2 >= t2 && as_of_2 <= t3);
    assert_true(as_of_2 > as_of_1);

    ps_optout_feed_destroy(feed);
    /* The state outlives its feed with what was applied. */
    assert_int_equal(cleared(optout, nums[FIRST + 1]), 0);

    /* A second state loaded from scratch agrees with the followed one: the
     * topic alone is the state. */
    struct ps_optout *again = NULL;
    assert_ok(ps_optout_new(PS_OPTOUT_OPTED_OUT, &again, &err), &err);
    assert_ok(ps_optout_feed_new(bootstraps, TOPIC, NULL, 0, again, &feed, &err), &err);
    assert_ok(ps_optout_feed_catch_up(feed, 10000, &err), &err);
    assert_int_equal(ps_optout_count(again), ps_optout_count(optout));
    for (size_t i = 0; i < FIRST + SECOND; i++) {
        assert_int_equal(cleared(again, nums[i]), cleared(optout, nums[i]));
    }
    assert_int_equal(ps_optout_as_of(again), as_of_2);
    ps_optout_feed_destroy(feed);
    ps_optout_destroy(again);
    ps_optout_destroy(optout);
    ps_kafka_producer_destroy(producer);
}

/* An empty topic (the cleared form: nothing cleared yet) catches up at once
 * and has no date; what arrives later is followed from each partition's
 * beginning. */
static void test_empty_topic(void **state)
{
    (void)state;
    struct ps_error err = {0};
    struct ps_optout *optout = NULL;
    struct ps_optout_feed *feed = NULL;
    struct ps_kafka_producer *producer = NULL;
    const struct ps_kafka_property props[] = {{"client.id", "optout-feed-test"}};

    assert_ok(ps_optout_new(PS_OPTOUT_CLEARED, &optout, &err), &err);
    assert_ok(ps_optout_feed_new(bootstraps, TOPIC_EMPTY, props, 1, optout, &feed, &err), &err);
    int64_t m0 = ps_time_mono_ms();
    assert_ok(ps_optout_feed_catch_up(feed, 10000, &err), &err);
    assert_true(ps_time_mono_ms() - m0 < 5000);
    assert_int_equal(ps_optout_count(optout), 0);
    assert_int_equal(ps_optout_as_of(optout), 0);
    assert_int_equal(ps_optout_fresh(optout, ps_time_now_ms(), 60000), 0);
    assert_int_equal(cleared(optout, nums[0]), 0);

    assert_ok(ps_kafka_producer_new(bootstraps, NULL, NULL, 0, &producer, &err), &err);
    for (size_t i = 0; i < 20; i++) {
        send(producer, TOPIC_EMPTY, nums[i], "cleared");
    }
    send(producer, TOPIC_EMPTY, nums[5], NULL);
    flush(producer);
    poll_until(feed, 21);
    assert_int_equal(ps_optout_count(optout), 19);
    assert_int_equal(cleared(optout, nums[0]), 1);
    assert_int_equal(cleared(optout, nums[5]), 0);
    assert_int_equal(ps_optout_fresh(optout, ps_time_now_ms(), 60000), 1);
    ps_optout_feed_destroy(feed);
    ps_optout_destroy(optout);
    ps_kafka_producer_destroy(producer);
}

/* Fetches failing: the end is not reached in time, which is a timeout; a
 * retry once the broker recovers starts over and loads everything. */
static void test_catch_up_timeout(void **state)
{
    (void)state;
    struct ps_error err = {0};
    struct ps_optout *optout = NULL;
    struct ps_optout_feed *feed = NULL;
    const int api_fetch = 1;
    const int not_leader = 6;
    assert_ok(ps_optout_new(PS_OPTOUT_OPTED_OUT, &optout, &err), &err);
    assert_ok(ps_optout_feed_new(bootstraps, TOPIC, NULL, 0, optout, &feed, &err), &err);
    assert_ok(ps_kafka_broker_fail_requests(test_broker, api_fetch, 1000, not_leader, &err),
              &err);
    int64_t m0 = ps_time_mono_ms();
    assert_int_equal(ps_optout_feed_catch_up(feed, 500, &err), PS_ERR_TIMEOUT);
    assert_true(ps_time_mono_ms() - m0 < 5000);
    assert_non_null(strstr(err.msg, TOPIC));
    assert_int_equal(ps_optout_feed_caught_up(feed), 0);
    ps_kafka_broker_clear_failures(test_broker, api_fetch);
    assert_ok(ps_optout_feed_catch_up(feed, 10000, &err), &err);
    assert_int_equal(ps_optout_count(optout), FIRST - FIRST / 10 + SECOND + 1 - 2);
    assert_int_equal(cleared(optout, nums[1]), 1);
    assert_int_equal(cleared(optout, nums[FIRST]), 0);
    ps_optout_feed_destroy(feed);
    ps_optout_destroy(optout);
}

/* A broker that never answers: catch-up fails (after the Kafka layer's
 * look-up limit) and names the topic. */
static void test_no_broker(void **state)
{
    (void)state;
    struct ps_error err = {0};
    struct ps_optout *optout = NULL;
    struct ps_optout_feed *feed = NULL;
    const struct ps_kafka_property props[] = {{"socket.connection.setup.timeout.ms", "1000"}};
    assert_ok(ps_optout_new(PS_OPTOUT_CLEARED, &optout, &err), &err);
    assert_ok(ps_optout_feed_new("127.0.0.1:1", TOPIC, props, 1, optout, &feed, &err), &err);
    int64_t m0 = ps_time_mono_ms();
    ps_err_t rc = ps_optout_feed_catch_up(feed, 2000, &err);
    assert_true(rc == PS_ERR_TIMEOUT || rc == PS_ERR_KAFKA_RETRIABLE || rc == PS_ERR_KAFKA_FATAL);
    assert_non_null(strstr(err.msg, TOPIC));
    assert_int_equal(ps_optout_feed_caught_up(feed), 0);
    /* Bounded by the watermark look-up of the Kafka layer. */
    assert_true(ps_time_mono_ms() - m0 < 15000);
    ps_optout_feed_destroy(feed);
    ps_optout_destroy(optout);
}

/* Runs last: no NHS number, nor any fragment of one, reached a log line. */
static void test_log_lines(void **state)
{
    (void)state;
    fflush(log_file);
    rewind(log_file);
    char line[4096];
    int caught_up = 0;
    while (fgets(line, sizeof(line), log_file)) {
        if (strstr(line, "\"code\":\"optout_caught_up\"")) {
            caught_up++;
        }
        for (size_t i = 0; i < FIRST + SECOND; i++) {
            assert_null(strstr(line, nums[i]));
        }
        assert_null(strstr(line, "999000100"));
        assert_null(strstr(line, "not a number"));
    }
    assert_true(caught_up >= 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_catch_up_and_follow),
        cmocka_unit_test(test_empty_topic),
        cmocka_unit_test(test_catch_up_timeout),
        cmocka_unit_test(test_no_broker),
        cmocka_unit_test(test_log_lines),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
