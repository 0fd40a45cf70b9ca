/*
 * ps_config: the service configuration. Numbers are the trap here: libcyaml
 * 1.3.1 would read "30s" as 30, "010" as 8 and "9092abc" as 9092, so each of
 * those must be refused with its position and the fix.
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

#include "ps_config.h"

#define DATA "tests/unit/data/config/"

static void expect_error(const char *path, const char *expected)
{
    struct ps_error err;
    struct ps_config *conf = NULL;
    char line[PS_ERROR_MSG_MAX + PS_ERROR_FILE_MAX + 32];
    ps_error_clear(&err);
    ps_err_t rc = ps_config_load(path, &conf, &err);
    ps_error_format(&err, line, sizeof(line));
    assert_string_equal(line, expected);
    assert_int_equal(rc, PS_ERR_CONFIG);
    assert_null(conf);
}

static void test_good(void **state)
{
    (void)state;
    struct ps_error err;
    struct ps_config *conf = NULL;
    ps_error_clear(&err);
    assert_int_equal(ps_config_load(DATA "good.yaml", &conf, &err), PS_OK);
    assert_string_equal(conf->file, DATA "good.yaml");
    assert_string_equal(conf->kafka.bootstrap_servers, "localhost:9092");
    assert_string_equal(conf->kafka.group_id, "test-group");
    assert_string_equal(conf->kafka.transactional_id, "test-0");

    /* Passed through unchanged and in the order written. */
    assert_int_equal(conf->kafka.property_count, 4);
    assert_string_equal(conf->kafka.properties[0].key, "security.protocol");
    assert_string_equal(conf->kafka.properties[0].value, "SASL_SSL");
    assert_string_equal(conf->kafka.properties[1].key, "sasl.mechanism");
    assert_string_equal(conf->kafka.properties[2].key, "sasl.password");
    assert_string_equal(conf->kafka.properties[2].value, "not-a-real-password");
    assert_string_equal(conf->kafka.properties[3].key, "message.timeout.ms");
    assert_string_equal(conf->kafka.properties[3].value, "30000");

    assert_int_equal(conf->input_topic_count, 2);
    assert_string_equal(conf->input_topics[0], "hl7v2.events");
    assert_string_equal(conf->input_topics[1], "fhir.events");
    assert_string_equal(conf->dead_letter_topic, "test.dead-letter");

    /* Relative paths are resolved against the configuration's folder. */
    assert_int_equal(conf->schema_count, 2);
    assert_string_equal(conf->schemas[0].file, DATA "../../../../schemas/hl7v2/hl7v2_event.avsc");
    assert_int_equal(conf->schemas[0].id, 1);
    assert_string_equal(conf->schemas[1].file, "/opt/schemas/fhir_event.avsc");
    assert_int_equal(conf->schemas[1].id, -1);
    assert_string_equal(conf->policy_file, DATA "../policy/good.yaml");
    assert_string_equal(conf->keyring_file, DATA "../keyring/good.yaml");
    assert_int_equal(access(conf->policy_file, R_OK), 0);
    assert_int_equal(access(conf->schemas[0].file, R_OK), 0);

    assert_int_equal(conf->limits.max_message_bytes, 2097152);
    assert_int_equal(conf->limits.max_alloc_bytes, 134217728);
    assert_int_equal(conf->limits.max_depth, 16);
    assert_int_equal(conf->limits.max_items, 5000);
    assert_int_equal(conf->delivery.mode, PS_DELIVERY_AT_LEAST_ONCE);
    assert_int_equal(conf->delivery.batch_max_events, 500);
    assert_int_equal(conf->delivery.transaction_interval_ms, 250);
    assert_string_equal(conf->log_level, "debug");
    ps_config_destroy(conf);
}

static void test_defaults(void **state)
{
    (void)state;
    struct ps_error err;
    struct ps_config *conf = NULL;
    ps_error_clear(&err);
    assert_int_equal(ps_config_load(DATA "minimal.yaml", &conf, &err), PS_OK);
    assert_null(conf->kafka.bootstrap_servers);
    assert_string_equal(conf->kafka.group_id, "pseudostream");
    assert_true(strncmp(conf->kafka.transactional_id, "pseudostream-", 13) == 0);
    assert_true(strlen(conf->kafka.transactional_id) > 13);
    assert_int_equal(conf->kafka.property_count, 0);
    assert_null(conf->kafka.properties);
    assert_int_equal(conf->input_topic_count, 1);
    assert_string_equal(conf->dead_letter_topic, "pseudostream.dead-letter");
    assert_int_equal(conf->schema_count, 0);
    assert_string_equal(conf->policy_file, DATA "policy.yaml");
    assert_string_equal(conf->keyring_file, "/etc/pseudostream/keyring.yaml");
    assert_int_equal(conf->limits.max_message_bytes, 1048576);
    assert_int_equal(conf->limits.max_alloc_bytes, 67108864);
    assert_int_equal(conf->limits.max_depth, 32);
    assert_int_equal(conf->limits.max_items, 100000);
    assert_int_equal(conf->delivery.mode, PS_DELIVERY_TRANSACTIONAL);
    assert_int_equal(conf->delivery.batch_max_events, 10000);
    assert_int_equal(conf->delivery.transaction_interval_ms, 500);
    assert_string_equal(conf->log_level, "info");
    ps_config_destroy(conf);
}

static void test_numbers_are_strict(void **state)
{
    (void)state;
    expect_error(DATA "bad_number_unit.yaml",
                 DATA "bad_number_unit.yaml:5:28: delivery.transaction_interval_ms must be a "
                      "whole number from 1 to 3600000 in plain digits, with no sign, unit or "
                      "leading zero (e.g. transaction_interval_ms: 500)");
    expect_error(DATA "bad_number_octal.yaml",
                 DATA "bad_number_octal.yaml:5:14: limits.max_depth must be a whole number from "
                      "1 to 1024 in plain digits, with no sign, unit or leading zero "
                      "(e.g. max_depth: 32)");
    expect_error(DATA "bad_number_suffix.yaml",
                 DATA "bad_number_suffix.yaml:6:22: limits.max_message_bytes must be a whole "
                      "number from 1 to 1000000000 in plain digits, with no sign, unit or "
                      "leading zero (e.g. max_message_bytes: 1048576)");
    expect_error(DATA "bad_number_negative.yaml",
                 DATA "bad_number_negative.yaml:5:21: delivery.batch_max_events must be a whole "
                      "number from 1 to 1000000 in plain digits, with no sign, unit or leading "
                      "zero (e.g. batch_max_events: 10000)");
    expect_error(DATA "bad_number_range.yaml",
                 DATA "bad_number_range.yaml:5:14: limits.max_depth must be a whole number from "
                      "1 to 1024 in plain digits, with no sign, unit or leading zero "
                      "(e.g. max_depth: 32)");
    expect_error(DATA "bad_schema_id.yaml",
                 DATA "bad_schema_id.yaml:8:9: schemas[1].id must be a whole number from 1 to "
                      "2147483647 in plain digits, with no sign, unit or leading zero "
                      "(e.g. id: 1)");
}

static void test_form_errors(void **state)
{
    (void)state;
    expect_error(DATA "bad_unknown_key.yaml",
                 DATA "bad_unknown_key.yaml:6:3: unknown key 'max_dept' in limits (expected one "
                      "of: max_message_bytes, max_alloc_bytes, max_depth, max_items)");
    expect_error(DATA "bad_mode.yaml",
                 DATA "bad_mode.yaml:5:9: unknown mode 'exactly_once' in delivery.mode "
                      "(expected one of: transactional, at_least_once)");
    expect_error(DATA "missing_policy.yaml",
                 DATA "missing_policy.yaml:1:1: the file has no 'policy' "
                      "(add policy: <path of the disclosure policy file>)");
    expect_error(DATA "bad_topics_empty.yaml",
                 DATA "bad_topics_empty.yaml:2:11: input.topics is empty "
                      "(add at least one entry)");
}

/* Property values may be passwords: errors name the key, never the value. */
static void test_properties_errors(void **state)
{
    (void)state;
    struct ps_error err;
    struct ps_config *conf = NULL;
    expect_error(DATA "bad_properties.yaml",
                 DATA "bad_properties.yaml:7:5: kafka.properties: 'sasl.password' is written "
                      "twice (keep only one)");
    expect_error(DATA "bad_property_value.yaml",
                 DATA "bad_property_value.yaml:6:24: kafka.properties.bootstrap.servers must be "
                      "a single value, not a list or mapping (librdkafka takes text)");
    ps_error_clear(&err);
    assert_int_equal(ps_config_load(DATA "bad_properties.yaml", &conf, &err), PS_ERR_CONFIG);
    assert_null(strstr(err.msg, "not-a-real-password"));
}

static void test_set_property(void **state)
{
    (void)state;
    struct ps_error err;
    struct ps_config *conf = NULL;
    ps_error_clear(&err);
    assert_int_equal(ps_config_load(DATA "good.yaml", &conf, &err), PS_OK);

    /* Replaces in place, keeping the order. */
    assert_int_equal(ps_config_set_property(conf, "sasl.mechanism=SCRAM-SHA-512", &err), PS_OK);
    assert_int_equal(conf->kafka.property_count, 4);
    assert_string_equal(conf->kafka.properties[1].value, "SCRAM-SHA-512");

    /* Adds at the end; only the first '=' splits. */
    assert_int_equal(ps_config_set_property(conf, "ssl.key.password=a=b", &err), PS_OK);
    assert_int_equal(conf->kafka.property_count, 5);
    assert_string_equal(conf->kafka.properties[4].key, "ssl.key.password");
    assert_string_equal(conf->kafka.properties[4].value, "a=b");

    assert_int_equal(ps_config_set_property(conf, "client.id=", &err), PS_OK);
    assert_string_equal(conf->kafka.properties[5].value, "");

    assert_int_equal(ps_config_set_property(conf, "secret-without-equals", &err), PS_ERR_CONFIG);
    assert_string_equal(err.msg, "-X takes key=value, with no '=' here "
                                 "(e.g. -X security.protocol=SSL)");
    assert_null(strstr(err.msg, "secret-without-equals"));
    assert_int_equal(ps_config_set_property(conf, "=value", &err), PS_ERR_CONFIG);
    assert_string_equal(err.msg, "-X takes key=value, with no key before '=' here "
                                 "(e.g. -X security.protocol=SSL)");
    assert_int_equal(conf->kafka.property_count, 6);
    assert_int_equal(ps_config_set_property(NULL, "a=b", &err), PS_ERR_INVALID);
    ps_config_destroy(conf);
}

static void test_set_property_on_empty(void **state)
{
    (void)state;
    struct ps_error err;
    struct ps_config *conf = NULL;
    ps_error_clear(&err);
    assert_int_equal(ps_config_load(DATA "minimal.yaml", &conf, &err), PS_OK);
    assert_int_equal(ps_config_set_property(conf, "bootstrap.servers=localhost:9092", &err),
                     PS_OK);
    assert_int_equal(ps_config_set_property(conf, "bootstrap.servers=localhost:9093", &err),
                     PS_OK);
    assert_int_equal(conf->kafka.property_count, 1);
    assert_string_equal(conf->kafka.properties[0].value, "localhost:9093");
    ps_config_destroy(conf);
}

/* A configuration given by absolute path resolves against its own folder. */
static void test_absolute_config_path(void **state)
{
    (void)state;
    char dir[] = "/tmp/ps_test_config_XXXXXX";
    char path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/c.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("input: {topics: [a]}\npolicy: p.yaml\nkeyring: sub/k.yaml\n", f);
    fclose(f);

    struct ps_error err;
    struct ps_config *conf = NULL;
    char expected[96];
    ps_error_clear(&err);
    assert_int_equal(ps_config_load(path, &conf, &err), PS_OK);
    snprintf(expected, sizeof(expected), "%s/p.yaml", dir);
    assert_string_equal(conf->policy_file, expected);
    snprintf(expected, sizeof(expected), "%s/sub/k.yaml", dir);
    assert_string_equal(conf->keyring_file, expected);
    ps_config_destroy(conf);
    unlink(path);
    rmdir(dir);
}

static void test_io_and_null(void **state)
{
    (void)state;
    struct ps_error err;
    struct ps_config *conf = NULL;
    char line[PS_ERROR_MSG_MAX + PS_ERROR_FILE_MAX + 32];
    ps_error_clear(&err);
    assert_int_equal(ps_config_load(DATA "no_such_file.yaml", &conf, &err), PS_ERR_IO);
    ps_error_format(&err, line, sizeof(line));
    assert_string_equal(line, DATA "no_such_file.yaml: cannot open: No such file or directory");
    assert_null(conf);
    assert_int_equal(ps_config_load(DATA, &conf, &err), PS_ERR_IO);
    assert_int_equal(ps_config_load(NULL, &conf, &err), PS_ERR_INVALID);
    ps_config_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_numbers_are_strict),
        cmocka_unit_test(test_form_errors),
        cmocka_unit_test(test_properties_errors),
        cmocka_unit_test(test_set_property),
        cmocka_unit_test(test_set_property_on_empty),
        cmocka_unit_test(test_absolute_config_path),
        cmocka_unit_test(test_io_and_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
