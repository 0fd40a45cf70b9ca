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
    assert_int_equal(conf->delivery.transaction_interval_ms, 1000);
    assert_string_equal(conf->log_level, "info");
    ps_config_destroy(conf);
}

static void test_numbers_are_strict(void **state)
{
    (void)state;
    expect_error(DATA "bad_number_unit.yaml",
                 DATA "bad_number_unit.yaml:5:28: delivery.transaction_interval_ms must be a "
                      "whole number from 1 to 3600000 in plain digits, with no sign, unit or "
                      "leading zero (e.g. transaction_interval_ms: 1000)");
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

/* ------------------------------------------------ operations (issue 6) */

/* Loads path with envp (NULL-terminated) and expects success. */
static struct ps_config *load_env_ok(const char *path, const char *const *envp)
{
    struct ps_error err;
    struct ps_config *conf = NULL;
    ps_error_clear(&err);
    ps_err_t rc = ps_config_load_env(path, envp, &conf, &err);
    if (rc != PS_OK) {
        print_error("%s\n", err.msg);
    }
    assert_int_equal(rc, PS_OK);
    return conf;
}

static void expect_env_error(const char *const *envp, const char *expected)
{
    struct ps_error err;
    struct ps_config *conf = NULL;
    ps_error_clear(&err);
    assert_int_equal(ps_config_load_env(DATA "good.yaml", envp, &conf, &err), PS_ERR_CONFIG);
    assert_string_equal(err.msg, expected);
    assert_null(conf);
}

static const char *property(const struct ps_config *conf, const char *key)
{
    for (size_t i = 0; i < conf->kafka.property_count; i++) {
        if (strcmp(conf->kafka.properties[i].key, key) == 0) {
            return conf->kafka.properties[i].value;
        }
    }
    return NULL;
}

/* Rule: an unknown key is an error, in the file and in the environment. */
static void test_unknown_key(void **state)
{
    (void)state;
    expect_error(DATA "bad_unknown_key.yaml",
                 DATA "bad_unknown_key.yaml:6:3: unknown key 'max_dept' in limits (expected one "
                      "of: max_message_bytes, max_alloc_bytes, max_depth, max_items)");
    const char *const typo[] = {"PATH=/usr/bin", "PSEUDOSTREAM_DELIVERY_BATCH_MAX_EVENT=5", NULL};
    expect_env_error(typo, "environment variable PSEUDOSTREAM_DELIVERY_BATCH_MAX_EVENT names no "
                           "setting (the rule: PSEUDOSTREAM_ + the setting's path upper-cased "
                           "with '.' as '_'; docs/CONFIGURATION.md lists them)");
    /* Lists of mappings have no variable; the CLI's own variable is not a setting. */
    const char *const schemas[] = {"PSEUDOSTREAM_SCHEMAS=x", NULL};
    expect_env_error(schemas, "environment variable PSEUDOSTREAM_SCHEMAS names no setting (the "
                              "rule: PSEUDOSTREAM_ + the setting's path upper-cased with '.' as "
                              "'_'; docs/CONFIGURATION.md lists them)");
    const char *const data_dir[] = {"PSEUDOSTREAM_DATA_DIR=/usr/share/pseudostream", NULL};
    ps_config_destroy(load_env_ok(DATA "good.yaml", data_dir));
}

/* Rule: numbers are plain digits within range, in the file and the environment. */
static void test_bad_number(void **state)
{
    (void)state;
    expect_error(DATA "bad_health_timeout.yaml",
                 DATA "bad_health_timeout.yaml:6:22: metrics.health_timeout_ms must be a whole "
                      "number from 1000 to 3600000 in plain digits, with no sign, unit or "
                      "leading zero (e.g. health_timeout_ms: 60000)");
    static const char *const bad[] = {"PSEUDOSTREAM_DELIVERY_BATCH_MAX_EVENTS=10k",
                                      "PSEUDOSTREAM_DELIVERY_BATCH_MAX_EVENTS=010",
                                      "PSEUDOSTREAM_DELIVERY_BATCH_MAX_EVENTS=-1",
                                      "PSEUDOSTREAM_DELIVERY_BATCH_MAX_EVENTS=1000001",
                                      "PSEUDOSTREAM_DELIVERY_BATCH_MAX_EVENTS= 5"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *const envp[] = {bad[i], NULL};
        expect_env_error(envp, "PSEUDOSTREAM_DELIVERY_BATCH_MAX_EVENTS "
                               "(delivery.batch_max_events) must be a whole number from 1 to "
                               "1000000 in plain digits, with no sign, unit or leading zero "
                               "(e.g. PSEUDOSTREAM_DELIVERY_BATCH_MAX_EVENTS=10000)");
    }
    const char *const mode[] = {"PSEUDOSTREAM_DELIVERY_MODE=exactly_once", NULL};
    expect_env_error(mode, "PSEUDOSTREAM_DELIVERY_MODE (delivery.mode) must be transactional or "
                           "at_least_once");
    const char *const empty[] = {"PSEUDOSTREAM_KAFKA_GROUP_ID=", NULL};
    expect_env_error(empty, "PSEUDOSTREAM_KAFKA_GROUP_ID (kafka.group_id) is empty (unset it to "
                            "keep the file's value)");
    const char *const topics[] = {"PSEUDOSTREAM_INPUT_TOPICS=a,,b", NULL};
    expect_env_error(topics, "PSEUDOSTREAM_INPUT_TOPICS has an empty topic name (write "
                             "topic,topic,...)");
    expect_error(DATA "bad_metrics_listen.yaml",
                 DATA "bad_metrics_listen.yaml:6:11: metrics.listen must be [host:]port with a "
                      "numeric host (e.g. 0.0.0.0:9464, [::]:9464 or 9464), or \"\" for no "
                      "operations port");
}

/* Rule: a secret may come from a file, and its text appears in no message. */
static void test_secret_via_file(void **state)
{
    (void)state;
    struct ps_error err;
    struct ps_config *conf = load_env_ok(DATA "secret_file.yaml", NULL);
    /* Read relative to the configuration's folder, one trailing newline removed. */
    assert_string_equal(property(conf, "sasl.password"), "file-secret-kafka");
    assert_null(property(conf, "sasl.password_file"));
    assert_true(conf->kafka.properties[3].secret);
    assert_false(conf->kafka.properties[2].secret); /* sasl.username */
    assert_string_equal(conf->keyring_passphrase, "file-secret-passphrase");
    assert_string_equal(conf->keyring_passphrase_file, DATA "secrets/keyring_passphrase");
    assert_string_equal(conf->metrics.listen, "0.0.0.0:9464");
    assert_int_equal(conf->metrics.health_timeout_ms, 30000);

    /* -X takes the file form too, relative to the working directory. */
    ps_error_clear(&err);
    assert_int_equal(ps_config_set_property(conf, "ssl.key.password_file=" DATA
                                                   "secrets/kafka_password", &err), PS_OK);
    assert_string_equal(property(conf, "ssl.key.password"), "file-secret-kafka");
    assert_int_equal(ps_config_set_property(conf, "ssl.key.password_file=" DATA
                                                   "secrets/no_such_file", &err), PS_ERR_IO);
    assert_string_equal(err.msg, "-X ssl.key.password_file: cannot open " DATA
                                 "secrets/no_such_file: No such file or directory");
    ps_config_destroy(conf);

    expect_error(DATA "bad_secret_both.yaml",
                 DATA "bad_secret_both.yaml:8:5: kafka.properties: 'sasl.password' and "
                      "'sasl.password_file' are both written (keep only one)");
    struct ps_config *none = NULL;
    char line[PS_ERROR_MSG_MAX + PS_ERROR_FILE_MAX + 32];
    ps_error_clear(&err);
    assert_int_equal(ps_config_load_env(DATA "bad_secret_missing.yaml", NULL, &none, &err),
                     PS_ERR_IO);
    ps_error_format(&err, line, sizeof(line));
    assert_string_equal(line, DATA "bad_secret_missing.yaml:7:28: "
                              "kafka.properties.ssl.key.password_file: cannot open " DATA
                              "secrets/no_such_file: No such file or directory");
    expect_error(DATA "bad_secret_empty.yaml",
                 DATA "bad_secret_empty.yaml:5:26: keyring_passphrase_file: " DATA
                      "secrets/empty is empty (write the secret in it)");

    /* From the environment: the variable's _FILE form. */
    const char *const envp[] = {"PSEUDOSTREAM_KAFKA_PROPERTIES_SSL_KEY_PASSWORD_FILE=" DATA
                                "secrets/kafka_password",
                                "PSEUDOSTREAM_KEYRING_PASSPHRASE_FILE=" DATA
                                "secrets/kafka_password",
                                NULL};
    conf = load_env_ok(DATA "minimal.yaml", envp);
    assert_string_equal(property(conf, "ssl.key.password"), "file-secret-kafka");
    assert_true(conf->kafka.properties[0].secret);
    assert_string_equal(conf->keyring_passphrase, "file-secret-kafka");
    ps_config_destroy(conf);
}

/* Rule: the environment beats the file, and -X beats both for Kafka properties. */
static void test_env_precedence(void **state)
{
    (void)state;
    struct ps_error err;
    const char *const envp[] = {
        "HOME=/root",
        "PSEUDOSTREAM_KAFKA_BOOTSTRAP_SERVERS=broker-a:9093,broker-b:9093",
        "PSEUDOSTREAM_KAFKA_TRANSACTIONAL_ID=pseudostream-2",
        "PSEUDOSTREAM_KAFKA_PROPERTIES_SASL_MECHANISM=SCRAM-SHA-256",
        "PSEUDOSTREAM_KAFKA_PROPERTIES_CLIENT_ID=filter",
        "PSEUDOSTREAM_INPUT_TOPICS=a.events,b.events,c.events",
        "PSEUDOSTREAM_DELIVERY_BATCH_MAX_EVENTS=42",
        "PSEUDOSTREAM_DELIVERY_MODE=transactional",
        "PSEUDOSTREAM_LIMITS_MAX_ALLOC_BYTES=1024",
        "PSEUDOSTREAM_METRICS_LISTEN=127.0.0.1:9000",
        "PSEUDOSTREAM_LOG_LEVEL=warn",
        "PSEUDOSTREAM_POLICY=/etc/pseudostream/policy.yaml",
        NULL};
    struct ps_config *conf = load_env_ok(DATA "good.yaml", envp);
    assert_string_equal(conf->kafka.bootstrap_servers, "broker-a:9093,broker-b:9093");
    assert_string_equal(conf->kafka.transactional_id, "pseudostream-2");
    assert_string_equal(conf->kafka.group_id, "test-group"); /* not in the environment */
    assert_string_equal(property(conf, "sasl.mechanism"), "SCRAM-SHA-256");
    assert_string_equal(property(conf, "client.id"), "filter");
    assert_string_equal(property(conf, "security.protocol"), "SASL_SSL");
    assert_int_equal(conf->input_topic_count, 3);
    assert_string_equal(conf->input_topics[2], "c.events");
    assert_int_equal(conf->delivery.batch_max_events, 42);
    assert_int_equal(conf->delivery.transaction_interval_ms, 250);
    assert_int_equal(conf->delivery.mode, PS_DELIVERY_TRANSACTIONAL);
    assert_int_equal(conf->limits.max_alloc_bytes, 1024);
    assert_string_equal(conf->metrics.listen, "127.0.0.1:9000");
    assert_string_equal(conf->log_level, "warn");
    assert_string_equal(conf->policy_file, "/etc/pseudostream/policy.yaml");

    /* -X after loading: beats the environment's value. */
    ps_error_clear(&err);
    assert_int_equal(ps_config_set_property(conf, "sasl.mechanism=GSSAPI", &err), PS_OK);
    assert_string_equal(property(conf, "sasl.mechanism"), "GSSAPI");
    ps_config_destroy(conf);

    /* "" turns the operations port off over the file's address. */
    const char *const off[] = {"PSEUDOSTREAM_METRICS_LISTEN=", NULL};
    conf = load_env_ok(DATA "secret_file.yaml", off);
    assert_null(conf->metrics.listen);
    ps_config_destroy(conf);

    /* Without the environment the file's values stand. */
    conf = load_env_ok(DATA "good.yaml", NULL);
    assert_string_equal(conf->kafka.bootstrap_servers, "localhost:9092");
    assert_null(conf->metrics.listen);
    assert_int_equal(conf->metrics.health_timeout_ms, 60000);
    ps_config_destroy(conf);
}

/* Rule: the dump shows the effective configuration and no secret's text. */
static void test_redacted_dump(void **state)
{
    (void)state;
    struct ps_error err;
    char *text = NULL;
    size_t len = 0;
    const char *const envp[] = {"PSEUDOSTREAM_KAFKA_PROPERTIES_SSL_KEY_PASSWORD=env-secret-value",
                                "PSEUDOSTREAM_DELIVERY_BATCH_MAX_EVENTS=77", NULL};
    struct ps_config *conf = load_env_ok(DATA "good.yaml", envp);
    ps_error_clear(&err);
    assert_int_equal(ps_config_set_property(conf, "sasl.oauthbearer.client.secret=x-secret-value",
                                            &err), PS_OK);
    assert_int_equal(ps_config_set_property(conf, "ssl.key.pem=pem-secret-value", &err), PS_OK);
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    assert_int_equal(ps_config_dump(conf, out, &err), PS_OK);
    fclose(out);
    assert_null(strstr(text, "not-a-real-password"));
    assert_null(strstr(text, "env-secret-value"));
    assert_null(strstr(text, "x-secret-value"));
    assert_null(strstr(text, "pem-secret-value"));
    assert_non_null(strstr(text, "    \"sasl.password\": \"[redacted]\"\n"));
    assert_non_null(strstr(text, "    \"ssl.key.password\": \"[redacted]\"\n"));
    assert_non_null(strstr(text, "    \"security.protocol\": \"SASL_SSL\"\n"));
    assert_non_null(strstr(text, "kafka:\n  bootstrap_servers: \"localhost:9092\"\n"));
    assert_non_null(strstr(text, "input:\n  topics: [\"hl7v2.events\", \"fhir.events\"]\n"));
    assert_non_null(strstr(text, "schemas:\n  - file: \"" DATA
                                 "../../../../schemas/hl7v2/hl7v2_event.avsc\"\n    id: 1\n"));
    assert_non_null(strstr(text, "delivery:\n  mode: at_least_once\n  batch_max_events: 77\n"));
    assert_non_null(strstr(text, "\nlog_level: debug\n"));
    free(text);
    ps_config_destroy(conf);

    /* Secrets read from files: neither content shows; the passphrase's path may. */
    conf = load_env_ok(DATA "secret_file.yaml", NULL);
    text = NULL;
    out = open_memstream(&text, &len);
    assert_int_equal(ps_config_dump(conf, out, &err), PS_OK);
    fclose(out);
    assert_null(strstr(text, "file-secret-kafka"));
    assert_null(strstr(text, "file-secret-passphrase"));
    assert_non_null(strstr(text, "keyring_passphrase_file: \"" DATA
                                 "secrets/keyring_passphrase\"\n"));
    assert_non_null(strstr(text, "metrics:\n  listen: \"0.0.0.0:9464\"\n"
                                 "  health_timeout_ms: 30000\n"));
    free(text);
    ps_config_destroy(conf);
    assert_int_equal(ps_config_dump(NULL, stdout, &err), PS_ERR_INVALID);
}

/* The settings table agrees with the libcyaml schema (else docs cannot be made). */
static void test_docs_table(void **state)
{
    (void)state;
    struct ps_error err;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    ps_error_clear(&err);
    assert_int_equal(ps_config_docs_write(out, &err), PS_OK);
    fclose(out);
    assert_non_null(strstr(text, "| `delivery.batch_max_events` | "
                                 "`PSEUDOSTREAM_DELIVERY_BATCH_MAX_EVENTS` |"));
    assert_non_null(strstr(text, "| `kafka.properties` | `PSEUDOSTREAM_KAFKA_PROPERTIES_<NAME>` |"));
    free(text);
    assert_true(ps_config_property_is_secret("sasl.password"));
    assert_true(ps_config_property_is_secret("ssl.keystore.password"));
    assert_true(ps_config_property_is_secret("ssl.key.pem"));
    assert_false(ps_config_property_is_secret("ssl.key.location"));
    assert_false(ps_config_property_is_secret(NULL));
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
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_bad_number),
        cmocka_unit_test(test_secret_via_file),
        cmocka_unit_test(test_env_precedence),
        cmocka_unit_test(test_redacted_dump),
        cmocka_unit_test(test_docs_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
