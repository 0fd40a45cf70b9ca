/*
 * Transactional faults on the embedded broker, injected the way librdkafka's
 * own tests do (tests/0105-transactions_mock.c): request errors pushed on the
 * mock cluster, a broker taken down and brought back, a slow coordinator, a
 * fenced producer. The pipeline runs in this process; a hook called when a
 * batch's outputs are produced and its transaction not yet committed puts
 * the fault exactly mid-transaction.
 *
 * Every test names the fault it injects and asserts no loss: every valid
 * input event is on the ward topic, every malformed one on the dead-letter
 * topic with a reason. The mock writes no transaction markers, so aborted
 * output stays visible and duplicates are allowed (DESIGN.md §10); exactly
 * once is checked against a real broker (deploy/compose/exactly-once-test.sh).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fault_harness.h"
#include "ps_generate.h"
#include "ps_log.h"

#define EVENTS 1500
#define MALFORMED_ROUNDS 3
#define BATCH 250
#define INTERVAL_MS 100
#define IDLE_MS 3000

struct scenario {
    struct fault_env env;
    struct ps_pipeline_stats *stats;
    uint64_t at_batch;              /* inject when this batch is produced */
    int injected;
    void (*inject)(struct scenario *sc);
    int32_t broker_id;              /* for broker faults */
    int restore_after_ms;           /* > 0: undo the broker fault after this */
    pthread_t restorer;
    int restorer_started;
    struct ps_kafka_producer *fencer;
};

static void setup_scenario(struct scenario *sc, int transactional)
{
    struct ps_error err = {0};
    memset(sc, 0, sizeof(*sc));
    sc->stats = calloc(1, sizeof(*sc->stats));
    assert_non_null(sc->stats);
    if (fault_env_setup(&sc->env, transactional, &err) != PS_OK) {
        fail_msg("setup: %s", err.msg);
    }
    if (fault_env_produce(&sc->env, EVENTS, MALFORMED_ROUNDS, 11, &err) != PS_OK) {
        fail_msg("produce: %s", err.msg);
    }
}

static void finish_scenario(struct scenario *sc, const char *name, int expect_aborts)
{
    struct ps_error err = {0};
    struct fault_report report;
    if (sc->restorer_started) {
        pthread_join(sc->restorer, NULL);
    }
    assert_int_equal(fault_env_check(&sc->env, &report, &err), PS_OK);
    fault_report_print(name, &report);
    fprintf(stderr, "[%s] transactions %llu, aborted %llu, commit retries %llu, producer "
            "restarts %llu, staged %llu (dropped %llu)\n", name,
            (unsigned long long)sc->stats->transactions, (unsigned long long)sc->stats->aborted,
            (unsigned long long)sc->stats->commit_retries,
            (unsigned long long)sc->stats->producer_restarts,
            (unsigned long long)sc->stats->staged, (unsigned long long)sc->stats->staged_dropped);
    /* Transactional: later batches were derived while earlier ones committed,
     * so every check below holds of the overlapped path too. */
    if (sc->env.transactional) {
        assert_true(sc->stats->staged > 0);
    }
    assert_true(sc->injected);
    assert_int_equal(report.inputs, EVENTS + MALFORMED_ROUNDS * PS_MALFORMED_COUNT);
    assert_int_equal(report.malformed, MALFORMED_ROUNDS * PS_MALFORMED_COUNT);
    assert_int_equal(report.missing_ward, 0);
    assert_int_equal(report.missing_dlq, 0);
    assert_int_equal(report.dlq_without_reason, 0);
    assert_true(report.audit_records >= report.inputs);
    if (expect_aborts) {
        assert_true(sc->stats->aborted + sc->stats->producer_restarts >= 1);
    } else {
        assert_int_equal(sc->stats->aborted, 0);
    }
    fault_env_teardown(&sc->env);
    free(sc->stats);
}

static void hook(void *opaque, enum ps_pipeline_point point, uint64_t batch)
{
    struct scenario *sc = opaque;
    if (point == PS_PIPELINE_BATCH_PRODUCED && batch == sc->at_batch && !sc->injected) {
        sc->injected = 1;
        sc->inject(sc);
    }
}

static void run_scenario(struct scenario *sc, ps_err_t expect)
{
    struct ps_error err = {0};
    ps_err_t rc = fault_env_run(&sc->env, BATCH, INTERVAL_MS, IDLE_MS, hook, sc, sc->stats, &err);
    if (rc != expect) {
        fail_msg("pipeline: expected %s, got %s: %s", ps_err_name(expect), ps_err_name(rc),
                 err.msg);
    }
}

/* ------------------------------------------- retriable coordinator errors */

static void push(struct scenario *sc, int api, size_t count, int kafka_error)
{
    struct ps_error err = {0};
    assert_int_equal(ps_kafka_broker_fail_requests(sc->env.broker, api, count, kafka_error, &err),
                     PS_OK);
}

static void inject_end_txn(struct scenario *sc)
{
    /* The commit's EndTxn meets three retriable coordinator errors in a row. */
    push(sc, FAULT_API_END_TXN, 1, FAULT_KERR_COORDINATOR_NOT_AVAILABLE);
    push(sc, FAULT_API_END_TXN, 1, FAULT_KERR_CONCURRENT_TRANSACTIONS);
    push(sc, FAULT_API_END_TXN, 1, FAULT_KERR_NOT_COORDINATOR);
}

static void fault_retriable_end_txn(void **state)
{
    (void)state;
    struct scenario sc;
    setup_scenario(&sc, 1);
    sc.at_batch = 2;
    sc.inject = inject_end_txn;
    run_scenario(&sc, PS_OK);
    finish_scenario(&sc, "EndTxn COORDINATOR_NOT_AVAILABLE, CONCURRENT_TRANSACTIONS, "
                         "NOT_COORDINATOR", 0);
}

static void inject_add_partitions(struct scenario *sc)
{
    /* The next transaction's first AddPartitionsToTxn meets three retriable
     * errors (the outputs of this batch already registered theirs). */
    push(sc, FAULT_API_ADD_PARTITIONS_TO_TXN, 1, FAULT_KERR_COORDINATOR_LOAD_IN_PROGRESS);
    push(sc, FAULT_API_ADD_PARTITIONS_TO_TXN, 1, FAULT_KERR_CONCURRENT_TRANSACTIONS);
    push(sc, FAULT_API_ADD_PARTITIONS_TO_TXN, 1, FAULT_KERR_COORDINATOR_NOT_AVAILABLE);
}

static void fault_retriable_add_partitions(void **state)
{
    (void)state;
    struct scenario sc;
    setup_scenario(&sc, 1);
    sc.at_batch = 1;
    sc.inject = inject_add_partitions;
    run_scenario(&sc, PS_OK);
    finish_scenario(&sc, "AddPartitionsToTxn COORDINATOR_LOAD_IN_PROGRESS, "
                         "CONCURRENT_TRANSACTIONS, COORDINATOR_NOT_AVAILABLE", 0);
}

static void inject_txn_offset_commit(struct scenario *sc)
{
    /* The offsets sent with this batch's transaction meet retriable errors
     * at the group coordinator, and AddOffsetsToTxn one at the transaction
     * coordinator. */
    push(sc, FAULT_API_ADD_OFFSETS_TO_TXN, 1, FAULT_KERR_CONCURRENT_TRANSACTIONS);
    push(sc, FAULT_API_TXN_OFFSET_COMMIT, 1, FAULT_KERR_COORDINATOR_LOAD_IN_PROGRESS);
    push(sc, FAULT_API_TXN_OFFSET_COMMIT, 1, FAULT_KERR_COORDINATOR_NOT_AVAILABLE);
}

static void fault_retriable_txn_offset_commit(void **state)
{
    (void)state;
    struct scenario sc;
    setup_scenario(&sc, 1);
    sc.at_batch = 2;
    sc.inject = inject_txn_offset_commit;
    run_scenario(&sc, PS_OK);
    finish_scenario(&sc, "TxnOffsetCommit COORDINATOR_LOAD_IN_PROGRESS, "
                         "COORDINATOR_NOT_AVAILABLE; AddOffsetsToTxn CONCURRENT_TRANSACTIONS", 0);
}

/* ------------------------------------------------ abortable produce error */

static void inject_produce_error(struct scenario *sc)
{
    /* The batch's outputs are queued, some maybe sent: the next Produce
     * request fails with a permanent error, which makes the transaction
     * abortable. */
    push(sc, FAULT_API_PRODUCE, 1, FAULT_KERR_TOPIC_AUTHORIZATION_FAILED);
}

static void fault_abortable_produce(void **state)
{
    (void)state;
    struct scenario sc;
    setup_scenario(&sc, 1);
    sc.at_batch = 2;
    sc.inject = inject_produce_error;
    run_scenario(&sc, PS_OK);
    finish_scenario(&sc, "Produce TOPIC_AUTHORIZATION_FAILED mid-batch", 1);
}

static void fault_at_least_once_produce(void **state)
{
    (void)state;
    struct scenario sc;
    setup_scenario(&sc, 0);
    sc.at_batch = 2;
    sc.inject = inject_produce_error;
    run_scenario(&sc, PS_OK);
    finish_scenario(&sc, "at-least-once: Produce TOPIC_AUTHORIZATION_FAILED mid-batch", 1);
}

/* --------------------------------------------------- leader down and back */

static void *restore_broker(void *opaque)
{
    struct scenario *sc = opaque;
    struct ps_error err = {0};
    fault_sleep_ms(sc->restore_after_ms);
    if (ps_kafka_broker_set_down(sc->env.broker, sc->broker_id, 0, &err) != PS_OK) {
        fprintf(stderr, "restore: %s\n", err.msg);
    }
    if (ps_kafka_broker_set_rtt(sc->env.broker, sc->broker_id, 0, &err) != PS_OK) {
        fprintf(stderr, "restore: %s\n", err.msg);
    }
    return NULL;
}

static void pin_leaders(struct scenario *sc)
{
    struct ps_error err = {0};
    /* Transaction coordinator on broker 1, the ward's partition leaders on
     * broker 2, input and group coordinator on broker 3: a fault on one
     * broker hits one role. */
    assert_int_equal(ps_kafka_broker_coordinator(sc->env.broker, "transaction",
                                                 "pseudostream-fault-0", 1, &err), PS_OK);
    assert_int_equal(ps_kafka_broker_coordinator(sc->env.broker, "group", "pseudostream-fault",
                                                 3, &err), PS_OK);
    for (int p = 0; p < 6; p++) {
        assert_int_equal(ps_kafka_broker_partition_leader(sc->env.broker, FAULT_WARD, p, 2, &err),
                         PS_OK);
        assert_int_equal(ps_kafka_broker_partition_leader(sc->env.broker, FAULT_INPUT, p, 3, &err),
                         PS_OK);
    }
}

static void inject_leader_down(struct scenario *sc)
{
    struct ps_error err = {0};
    assert_int_equal(ps_kafka_broker_set_down(sc->env.broker, sc->broker_id, 1, &err), PS_OK);
    assert_int_equal(pthread_create(&sc->restorer, NULL, restore_broker, sc), 0);
    sc->restorer_started = 1;
}

static void fault_leader_down(void **state)
{
    (void)state;
    struct scenario sc;
    setup_scenario(&sc, 1);
    pin_leaders(&sc);
    sc.at_batch = 2;
    sc.broker_id = 2;
    sc.restore_after_ms = 3000;
    sc.inject = inject_leader_down;
    run_scenario(&sc, PS_OK);
    finish_scenario(&sc, "ward partition leader (broker 2) down 3 s mid-transaction", 0);
}

/* ----------------------------------------- commit timeout: new producer */

static void inject_slow_coordinator(struct scenario *sc)
{
    struct ps_error err = {0};
    /* Every answer of the transaction coordinator takes 4 s while commits
     * may take 1.5 s: the commit times out undecided, and the producer must
     * be recreated before anything else begins. */
    assert_int_equal(ps_kafka_broker_set_rtt(sc->env.broker, sc->broker_id, 4000, &err), PS_OK);
    assert_int_equal(pthread_create(&sc->restorer, NULL, restore_broker, sc), 0);
    sc->restorer_started = 1;
}

static void fault_commit_timeout(void **state)
{
    (void)state;
    struct scenario sc;
    setup_scenario(&sc, 1);
    pin_leaders(&sc);
    sc.env.commit_timeout_ms = 1500;
    sc.at_batch = 2;
    sc.broker_id = 1;
    sc.restore_after_ms = 5000;
    sc.inject = inject_slow_coordinator;
    run_scenario(&sc, PS_OK);
    assert_true(sc.stats->producer_restarts >= 1);
    finish_scenario(&sc, "transaction coordinator 4 s round trip, commit timeout 1.5 s", 1);
}

/* ------------------------------------------------------------- fencing */

static void inject_fence(struct scenario *sc)
{
    struct ps_error err = {0};
    /* A second instance starts with the same transactional.id. A real
     * broker bumps the epoch and answers the old producer's EndTxn with
     * PRODUCER_FENCED; the 2.0.2 mock gives the newcomer a new producer id
     * instead, so that answer is injected. */
    assert_int_equal(ps_kafka_producer_new(sc->env.bootstraps, "pseudostream-fault-0", NULL, 0,
                                           &sc->fencer, &err), PS_OK);
    assert_int_equal(ps_kafka_producer_init_transactions(sc->fencer, 10000, &err), PS_OK);
    push(sc, FAULT_API_END_TXN, 1, FAULT_KERR_PRODUCER_FENCED);
}

static void fault_fenced(void **state)
{
    (void)state;
    struct scenario sc;
    setup_scenario(&sc, 1);
    sc.at_batch = 1;
    sc.inject = inject_fence;
    run_scenario(&sc, PS_ERR_KAFKA_FATAL);
    /* The fenced instance stopped without committing anything. */
    assert_int_equal(sc.stats->transactions, 0);
    ps_kafka_producer_destroy(sc.fencer);
    sc.fencer = NULL;
    /* The orchestrator restarts it: the input is processed in full. */
    ps_kafka_broker_clear_failures(sc.env.broker, FAULT_API_END_TXN);
    sc.at_batch = 0;
    run_scenario(&sc, PS_OK);
    assert_true(sc.stats->transactions >= 1);
    finish_scenario(&sc, "fenced by a second producer with the same transactional.id", 0);
}

int main(void)
{
    ps_log_set_level(PS_LOG_WARN);
    ps_log_set_stream(stderr);
    /* FAULT_ONLY=pattern runs the matching tests only. */
    if (getenv("FAULT_ONLY")) {
        cmocka_set_test_filter(getenv("FAULT_ONLY"));
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fault_retriable_end_txn),
        cmocka_unit_test(fault_retriable_add_partitions),
        cmocka_unit_test(fault_retriable_txn_offset_commit),
        cmocka_unit_test(fault_abortable_produce),
        cmocka_unit_test(fault_at_least_once_produce),
        cmocka_unit_test(fault_leader_down),
        cmocka_unit_test(fault_commit_timeout),
        cmocka_unit_test(fault_fenced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
