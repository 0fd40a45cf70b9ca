/*
 * Unit tests for ps_stage: records staged while a commit runs come out of
 * ps_stage_send exactly as they went in (topic, key, value, header names and
 * values, NULL kept apart from empty), in order, after the callers' buffers
 * were reused; reset keeps the storage; bad records are refused whole.
 * Sent through a producer to the in-process mock broker and read back.
 * All data is artificial.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ps_error.h"
#include "ps_kafka.h"
#include "ps_log.h"
#include "ps_stage.h"

#define RECORDS 300

static struct ps_kafka_broker *broker;

static int setup(void **state)
{
    (void)state;
    struct ps_error err = {0};
    ps_log_set_level(PS_LOG_WARN);
    if (ps_kafka_broker_new(1, &broker, &err) != PS_OK ||
        ps_kafka_broker_topic_create(broker, "stage.one", 1, &err) != PS_OK ||
        ps_kafka_broker_topic_create(broker, "stage.two", 1, &err) != PS_OK) {
        fprintf(stderr, "broker: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ps_kafka_broker_destroy(broker);
    return 0;
}

/* Record i: alternating topics; every 7th without key, every 11th without
 * value, every 13th with an empty value; 0 to 3 headers, one a null header. */
static void record(int i, char *key, char *value, struct ps_kafka_header *h, size_t *n)
{
    snprintf(key, 32, "key-%d", i);
    snprintf(value, 64, "value %d of the stage test", i);
    *n = (size_t)(i % 4);
    static const char *names[] = {"pseudostream.lineage", "x-trace", "x-empty"};
    for (size_t j = 0; j < *n; j++) {
        h[j].name = names[j];
        h[j].value = j == 2 ? NULL : (j == 0 ? value : "t");
        h[j].len = j == 2 ? 0 : strlen(h[j].value);
    }
}

static void stage_records(struct ps_stage *stage, int first)
{
    struct ps_error err = {0};
    for (int i = first; i < first + RECORDS; i++) {
        char key[32], value[64];
        struct ps_kafka_header h[3];
        size_t n = 0;
        record(i, key, value, h, &n);
        assert_int_equal(ps_stage_add(stage, i % 2 ? "stage.two" : "stage.one",
                                      i % 7 == 0 ? NULL : key, i % 7 == 0 ? 0 : strlen(key),
                                      i % 11 == 0 ? NULL : value,
                                      i % 11 == 0 ? 0 : (i % 13 == 0 ? 0 : strlen(value)), h, n,
                                      &err),
                         PS_OK);
        /* The caller's buffers are reused at once. */
        memset(key, 'X', sizeof(key));
        memset(value, 'X', sizeof(value));
    }
}

/* Reads topic back and checks every record staged for it, in order. */
static void check_topic(const char *topic, int first)
{
    struct ps_error err = {0};
    struct ps_kafka_reader *reader = NULL;
    assert_int_equal(ps_kafka_reader_new(ps_kafka_broker_bootstraps(broker), topic, NULL, 0,
                                         &reader, &err),
                     PS_OK);
    int i = first + (strcmp(topic, "stage.two") == 0 ? 1 : 0);
    int seen = 0;
    for (;;) {
        const struct ps_kafka_message *msg = NULL;
        ps_err_t rc = ps_kafka_reader_next(reader, 5000, &msg, &err);
        if (rc == PS_ERR_STOPPED) {
            break;
        }
        assert_int_equal(rc, PS_OK);
        if (msg->offset < (first == 0 ? 0 : RECORDS / 2)) {
            continue; /* the first round's records, checked before */
        }
        char key[32], value[64];
        struct ps_kafka_header h[3];
        size_t n = 0;
        record(i, key, value, h, &n);
        if (i % 7 == 0) {
            assert_null(msg->key);
        } else {
            assert_int_equal(msg->key_len, strlen(key));
            assert_memory_equal(msg->key, key, msg->key_len);
        }
        if (i % 11 == 0) {
            assert_null(msg->value);
        } else if (i % 13 == 0) {
            assert_int_equal(msg->len, 0);
        } else {
            assert_int_equal(msg->len, strlen(value));
            assert_memory_equal(msg->value, value, msg->len);
        }
        assert_int_equal(msg->header_count, n);
        for (size_t j = 0; j < n; j++) {
            assert_string_equal(msg->headers[j].name, h[j].name);
            if (!h[j].value) {
                assert_null(msg->headers[j].value);
            } else {
                assert_int_equal(msg->headers[j].len, h[j].len);
                assert_memory_equal(msg->headers[j].value, h[j].value, h[j].len);
            }
        }
        i += 2;
        seen++;
    }
    assert_int_equal(seen, RECORDS / 2);
    ps_kafka_reader_destroy(reader);
}

static void test_staged_records_sent_as_added(void **state)
{
    (void)state;
    struct ps_error err = {0};
    struct ps_stage *stage = NULL;
    struct ps_kafka_producer *producer = NULL;
    assert_int_equal(ps_stage_new(&stage, &err), PS_OK);
    assert_int_equal(ps_stage_count(stage), 0);
    assert_int_equal(ps_kafka_producer_new(ps_kafka_broker_bootstraps(broker), NULL, NULL, 0,
                                           &producer, &err),
                     PS_OK);

    stage_records(stage, 0);
    assert_int_equal(ps_stage_count(stage), RECORDS);
    size_t bytes = ps_stage_bytes(stage);
    assert_true(bytes > RECORDS * 20);
    assert_int_equal(ps_stage_send(stage, producer, &err), PS_OK);
    assert_int_equal(ps_kafka_producer_flush(producer, 10000, &err), PS_OK);
    check_topic("stage.one", 0);
    check_topic("stage.two", 0);

    /* Reset forgets the records and keeps going with new ones. */
    ps_stage_reset(stage);
    assert_int_equal(ps_stage_count(stage), 0);
    assert_int_equal(ps_stage_bytes(stage), 0);
    assert_int_equal(ps_stage_send(stage, producer, &err), PS_OK); /* nothing */
    stage_records(stage, RECORDS);
    assert_int_equal(ps_stage_send(stage, producer, &err), PS_OK);
    assert_int_equal(ps_kafka_producer_flush(producer, 10000, &err), PS_OK);
    check_topic("stage.one", RECORDS);
    check_topic("stage.two", RECORDS);

    ps_kafka_producer_destroy(producer);
    ps_stage_destroy(stage);
}

static void test_bad_records_refused_whole(void **state)
{
    (void)state;
    struct ps_error err = {0};
    struct ps_stage *stage = NULL;
    assert_int_equal(ps_stage_new(&stage, &err), PS_OK);
    struct ps_kafka_header h[PS_STAGE_HEADERS_MAX + 1];
    for (size_t i = 0; i <= PS_STAGE_HEADERS_MAX; i++) {
        h[i] = (struct ps_kafka_header){"h", "v", 1};
    }
    assert_int_equal(ps_stage_add(stage, NULL, "k", 1, "v", 1, NULL, 0, &err), PS_ERR_INVALID);
    assert_int_equal(ps_stage_add(stage, "t", "k", 1, "v", 1, h, PS_STAGE_HEADERS_MAX + 1, &err),
                     PS_ERR_INVALID);
    assert_int_equal(ps_stage_add(stage, "t", "k", 1, "v", 1, NULL, 1, &err), PS_ERR_INVALID);
    h[1].name = NULL;
    assert_int_equal(ps_stage_add(stage, "t", "k", 1, "v", 1, h, 2, &err), PS_ERR_INVALID);
    assert_int_equal(ps_stage_count(stage), 0);
    assert_int_equal(ps_stage_bytes(stage), 0); /* nothing half-added */
    assert_int_equal(ps_stage_add(stage, "t", "k", 1, "v", 1, h, 1, &err), PS_OK);
    assert_int_equal(ps_stage_count(stage), 1);
    ps_stage_destroy(stage);
    ps_stage_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_staged_records_sent_as_added),
        cmocka_unit_test(test_bad_records_refused_whole),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
