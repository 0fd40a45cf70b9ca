/*
 * ps_reidentify on the embedded broker: escrow records sealed with
 * ps_escrow_seal, as the pipeline writes them, are opened for the tokens
 * asked for with the authority's key, and not with another key. Every NHS
 * number is from the 999 test range; tokens are made with a fixed artificial
 * secret.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ps_escrow.h"
#include "ps_kafka.h"
#include "ps_keyring.h"
#include "ps_log.h"
#include "ps_nhs.h"
#include "ps_pseudonym.h"
#include "ps_reidentify.h"

#define TOPIC_ONE "escrow.one"
#define TOPIC_TWO "escrow.two"
#define PATIENTS 20
#define DOMAIN "commissioning"

static struct ps_kafka_broker *broker;
static const char *bootstraps;
static FILE *log_file;

/* The authorities: a and b, and a stranger. */
static struct ps_escrow_secret *key_a, *key_b, *key_other;
static char nhs[PATIENTS][PS_NHS_DIGITS + 1];
static char tokens[PATIENTS][PS_TOKEN_MAX];

static void assert_ok_(ps_err_t rc, const struct ps_error *err, const char *file, int line)
{
    if (rc != PS_OK) {
        fprintf(stderr, "%s:%d: %s (%s)\n", file, line, err->msg, ps_err_name(rc));
    }
    _assert_int_equal(rc, PS_OK, file, line);
}
#define assert_ok(rc, err) assert_ok_((rc), (err), __FILE__, __LINE__)

static struct ps_escrow_secret *new_key(uint8_t seed)
{
    uint8_t raw[PS_ESCROW_KEY_BYTES];
    struct ps_escrow_secret *sk = NULL;
    struct ps_error err = {0};
    for (size_t i = 0; i < sizeof(raw); i++) {
        raw[i] = (uint8_t)(seed * 31 + i);
    }
    if (ps_escrow_secret_from_bytes(raw, &sk, &err) != PS_OK) {
        return NULL;
    }
    return sk;
}

/* Produces one escrow record per patient to topic, sealed to auth, plus a
 * record of another form and a tombstone, which readers must skip. */
static ps_err_t produce_escrow(const char *topic, const struct ps_escrow_authorities *auth,
                               struct ps_error *err)
{
    struct ps_kafka_producer *producer = NULL;
    struct ps_buf sealed;
    char key[PS_REIDENTIFY_KEY_MAX];
    ps_buf_init(&sealed, 0);
    ps_err_t rc = ps_kafka_producer_new(bootstraps, NULL, NULL, 0, &producer, err);
    for (size_t i = 0; rc == PS_OK && i < PATIENTS; i++) {
        rc = ps_escrow_seal(auth, nhs[i], strlen(nhs[i]), &sealed, err);
        snprintf(key, sizeof(key), "%s/%s", DOMAIN, tokens[i]);
        if (rc == PS_OK) {
            rc = ps_kafka_producer_send(producer, topic, -1, key, strlen(key), sealed.data,
                                        sealed.len, NULL, 0, err);
        }
    }
    if (rc == PS_OK) {
        rc = ps_kafka_producer_send(producer, topic, -1, "no-slash", 8, "x", 1, NULL, 0, err);
    }
    if (rc == PS_OK) {
        snprintf(key, sizeof(key), "%s/%s", DOMAIN, tokens[0]);
        rc = ps_kafka_producer_send(producer, topic, -1, key, strlen(key), NULL, 0, NULL, 0, err);
    }
    if (rc == PS_OK) {
        rc = ps_kafka_producer_flush(producer, 10000, err);
    }
    ps_kafka_producer_destroy(producer);
    ps_buf_free(&sealed);
    return rc;
}

static int group_setup(void **state)
{
    (void)state;
    alarm(120);
    struct ps_error err = {0};
    log_file = tmpfile();
    if (!log_file) {
        return -1;
    }
    ps_log_set_stream(log_file);
    if (ps_kafka_broker_new(1, &broker, &err) != PS_OK) {
        fprintf(stderr, "broker: %s\n", err.msg);
        return -1;
    }
    bootstraps = ps_kafka_broker_bootstraps(broker);
    key_a = new_key(1);
    key_b = new_key(2);
    key_other = new_key(3);
    if (!key_a || !key_b || !key_other) {
        return -1;
    }

    /* Tokens as the stream makes them: the artificial secret S1 of
     * docs/PSEUDONYMS.md, key id 1. */
    struct ps_keyring_entry entry = {.id = 1, .not_before_ms = 0,
                                     .secret_b64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="};
    struct ps_keyring *kr = NULL;
    struct ps_pseudonymiser *p = NULL;
    ps_err_t rc = ps_keyring_new(&entry, 1, "test", &kr, &err);
    if (rc == PS_OK) {
        rc = ps_pseudonymiser_new(kr, DOMAIN, &p, &err);
    }
    for (size_t i = 0; rc == PS_OK && i < PATIENTS; i++) {
        ps_nhs_make_test_number((uint32_t)(1000 + i * 7), nhs[i]);
        rc = ps_pseudonymise(p, 1, "nhs_number", nhs[i], strlen(nhs[i]), tokens[i], NULL, &err);
    }
    ps_pseudonymiser_destroy(p);
    ps_keyring_destroy(kr);

    struct ps_escrow_authorities one = {.count = 1};
    struct ps_escrow_authorities two = {.count = 2};
    ps_escrow_secret_public(key_a, one.pk[0]);
    ps_escrow_secret_public(key_a, two.pk[0]);
    ps_escrow_secret_public(key_b, two.pk[1]);
    if (rc == PS_OK) {
        rc = ps_kafka_broker_topic_create(broker, TOPIC_ONE, 3, &err);
    }
    if (rc == PS_OK) {
        rc = ps_kafka_broker_topic_create(broker, TOPIC_TWO, 3, &err);
    }
    if (rc == PS_OK) {
        rc = produce_escrow(TOPIC_ONE, &one, &err);
    }
    if (rc == PS_OK) {
        rc = produce_escrow(TOPIC_TWO, &two, &err);
    }
    if (rc != PS_OK) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    ps_escrow_secret_destroy(key_a);
    ps_escrow_secret_destroy(key_b);
    ps_escrow_secret_destroy(key_other);
    ps_kafka_broker_destroy(broker);
    ps_log_set_stream(stderr);
    if (log_file) {
        fclose(log_file);
    }
    return 0;
}

/* Asks for patients 0, 5 and 19 (the last with its domain), and a token
 * that has no record. */
static void run(const char *topic, const struct ps_escrow_secret *const *keys, size_t count,
                struct ps_reidentify_result results[4])
{
    struct ps_error err = {0};
    static char qualified[PS_REIDENTIFY_KEY_MAX];
    snprintf(qualified, sizeof(qualified), "%s/%s", DOMAIN, tokens[19]);
    const char *asked[4] = {tokens[0], tokens[5], qualified,
                            "1.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    struct ps_reidentify_options opt = {.bootstraps = bootstraps, .topic = topic, .keys = keys,
                                        .key_count = count, .tokens = asked, .token_count = 4};
    assert_ok(ps_reidentify_run(&opt, results, &err), &err);
}

static void test_right_key(void **state)
{
    (void)state;
    struct ps_reidentify_result results[4];
    const struct ps_escrow_secret *keys[] = {key_a};
    run(TOPIC_ONE, keys, 1, results);
    assert_int_equal(results[0].status, PS_REIDENTIFY_OPENED);
    assert_string_equal(results[0].value, nhs[0]);
    assert_string_equal(results[0].domain, DOMAIN);
    assert_int_equal(results[1].status, PS_REIDENTIFY_OPENED);
    assert_string_equal(results[1].value, nhs[5]);
    assert_int_equal(results[2].status, PS_REIDENTIFY_OPENED);
    assert_string_equal(results[2].value, nhs[19]);
    assert_int_equal(results[3].status, PS_REIDENTIFY_NOT_FOUND);
    assert_null(results[3].value);
    ps_reidentify_results_free(results, 4);
    assert_null(results[0].value);
}

static void test_wrong_key(void **state)
{
    (void)state;
    struct ps_reidentify_result results[4];
    const struct ps_escrow_secret *keys[] = {key_other};
    run(TOPIC_ONE, keys, 1, results);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(results[i].status, PS_REIDENTIFY_SEALED);
        assert_null(results[i].value);
    }
    assert_int_equal(results[3].status, PS_REIDENTIFY_NOT_FOUND);
    ps_reidentify_results_free(results, 4);
}

static void test_two_authorities(void **state)
{
    (void)state;
    struct ps_reidentify_result results[4];
    const struct ps_escrow_secret *both[] = {key_b, key_a};
    run(TOPIC_TWO, both, 2, results);
    assert_int_equal(results[0].status, PS_REIDENTIFY_OPENED);
    assert_string_equal(results[0].value, nhs[0]);
    assert_string_equal(results[2].value, nhs[19]);
    ps_reidentify_results_free(results, 4);

    /* Either authority alone cannot. */
    const struct ps_escrow_secret *only_a[] = {key_a};
    run(TOPIC_TWO, only_a, 1, results);
    assert_int_equal(results[0].status, PS_REIDENTIFY_SEALED);
    ps_reidentify_results_free(results, 4);
    const struct ps_escrow_secret *only_b[] = {key_b};
    run(TOPIC_TWO, only_b, 1, results);
    assert_int_equal(results[1].status, PS_REIDENTIFY_SEALED);
    assert_null(results[1].value);
    ps_reidentify_results_free(results, 4);
}

static void test_log_has_no_identifier(void **state)
{
    (void)state;
    /* Whatever the Kafka layer logged during the runs above: no identifier. */
    fflush(log_file);
    rewind(log_file);
    char line[4096];
    while (fgets(line, sizeof(line), log_file)) {
        for (size_t i = 0; i < PATIENTS; i++) {
            assert_null(strstr(line, nhs[i]));
        }
    }
}

static void test_bad_options(void **state)
{
    (void)state;
    struct ps_error err = {0};
    struct ps_reidentify_result results[1];
    const char *asked[] = {"1.x"};
    const struct ps_escrow_secret *keys[] = {key_a, key_b, key_other};
    struct ps_reidentify_options opt = {.bootstraps = bootstraps, .topic = TOPIC_ONE,
                                        .keys = keys, .key_count = 3, .tokens = asked,
                                        .token_count = 1};
    assert_int_equal(ps_reidentify_run(&opt, results, &err), PS_ERR_INVALID);
    opt.key_count = 0;
    assert_int_equal(ps_reidentify_run(&opt, results, &err), PS_ERR_INVALID);
    assert_int_equal(ps_reidentify_run(NULL, results, &err), PS_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_right_key),       cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_two_authorities), cmocka_unit_test(test_log_has_no_identifier),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
