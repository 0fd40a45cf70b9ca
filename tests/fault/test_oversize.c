/*
 * Fault: records larger than Kafka's message size limit. Before the fix a
 * derived record or dead letter above message.max.bytes failed its send
 * inside the transaction on every retry, so the batch was aborted and
 * retried forever and the stream stopped. Now an oversized derived record is
 * withheld from that destination (reason limit, audited) and an oversized
 * dead letter goes without its value (header pseudostream.value_omitted);
 * the stream goes on.
 */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fault_harness.h"
#include "ps_buf.h"
#include "ps_codec.h"
#include "ps_frame.h"
#include "ps_registry.h"
#include "ps_synth.h"

#define BIG 1010000 /* under the input cap (1 MiB), over Kafka's 1,000,000 */

/* A valid HL7v2 event whose MSH-12 carries BIG bytes: the ward (which keeps
 * it) gets a record too large for Kafka; the secondary-use destinations,
 * which drop it, do not. */
static void produce_big(struct fault_env *env, struct ps_kafka_producer *p)
{
    struct ps_synth *synth = NULL;
    struct ps_synth_options so = {.seed = 77, .patients = 10};
    struct ps_buf json, big, frame;
    enum ps_synth_family family;
    ps_buf_init(&json, 0);
    ps_buf_init(&big, 0);
    ps_buf_init(&frame, 0);
    assert_int_equal(ps_synth_new(&so, &synth, NULL), PS_OK);
    do {
        ps_buf_reset(&json);
        assert_int_equal(ps_synth_next(synth, &json, &family, NULL), PS_OK);
    } while (family != PS_SYNTH_HL7V2);
    /* The generator's buffer is not NUL-terminated: search and copy by length. */
    static const char version[] = "\"version_id\":\"2.4\"";
    const char *mark = memmem(json.data, json.len, version, sizeof(version) - 1);
    assert_non_null(mark);
    size_t head = (size_t)(mark - (const char *)json.data) + strlen("\"version_id\":\"");
    ps_buf_append(&big, json.data, head);
    for (size_t i = 0; i < BIG; i++) {
        ps_buf_append(&big, "x", 1);
    }
    ps_buf_append(&big, json.data + head + 3, json.len - head - 3);
    const struct ps_schema *schema = ps_registry_by_id(env->rt->reg, 1);
    assert_int_equal(ps_frame_write_confluent(1, &frame), PS_OK);
    assert_int_equal(ps_codec_json_to_datum(schema, (const char *)big.data, big.len, &frame,
                                            NULL), PS_OK);
    assert_true(frame.len > 1000000 && frame.len < 1048576);
    assert_int_equal(ps_kafka_producer_send(p, FAULT_INPUT, -1, "big", 3, frame.data, frame.len,
                                            NULL, 0, NULL), PS_OK);
    /* And undecodable garbage of the same size, for the dead-letter path. */
    memset(frame.data, 'g', frame.len);
    assert_int_equal(ps_kafka_producer_send(p, FAULT_INPUT, -1, "garbage", 7, frame.data,
                                            frame.len, NULL, 0, NULL), PS_OK);
    ps_synth_destroy(synth);
    ps_buf_free(&json);
    ps_buf_free(&big);
    ps_buf_free(&frame);
}

static void test_oversized_records_do_not_stop_the_stream(void **state)
{
    (void)state;
    struct fault_env env;
    struct ps_error err = {0};
    struct ps_kafka_producer *p = NULL;
    const struct ps_kafka_property big_ok[] = {{"message.max.bytes", "5000000"}};
    alarm(240); /* before the fix the run never went idle: fail, do not hang */
    assert_int_equal(fault_env_setup(&env, 1, &err), PS_OK);
    assert_int_equal(ps_kafka_producer_new(env.bootstraps, NULL, big_ok, 1, &p, &err), PS_OK);
    produce_big(&env, p);
    assert_int_equal(ps_kafka_producer_flush(p, 30000, &err), PS_OK);
    ps_kafka_producer_destroy(p);
    assert_int_equal(fault_env_produce(&env, 50, 0, 5, &err), PS_OK);

    struct ps_pipeline_stats *stats = calloc(1, sizeof(*stats));
    assert_int_equal(fault_env_run(&env, 100, 200, 3000, NULL, NULL, stats, &err), PS_OK);
    assert_int_equal(stats->consumed, 52);
    assert_int_equal(stats->dead_lettered, 1);
    /* destination 0 is the ward in policy/demo.yaml */
    assert_int_equal(stats->withheld_by_reason[0][PS_ERR_LIMIT], 1);
    assert_int_equal(stats->disclosed[0], 50);
    assert_int_equal(stats->audited, 52);
    assert_true(stats->transactions > 0);

    /* The dead letter is there, without its value, saying how long it was. */
    struct ps_kafka_reader *r = NULL;
    const struct ps_kafka_message *msg;
    int omitted = 0;
    assert_int_equal(ps_kafka_reader_new(env.bootstraps, FAULT_DLQ, NULL, 0, &r, &err), PS_OK);
    while (ps_kafka_reader_next(r, 5000, &msg, &err) == PS_OK) {
        for (size_t h = 0; h < msg->header_count; h++) {
            if (strcmp(msg->headers[h].name, "pseudostream.value_omitted") == 0) {
                omitted++;
                assert_null(msg->value);
            }
        }
    }
    ps_kafka_reader_destroy(r);
    assert_int_equal(omitted, 1);
    free(stats);
    fault_env_teardown(&env);
    alarm(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oversized_records_do_not_stop_the_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
