/*
 * ps_config: the service configuration, one YAML file read with libcyaml.
 *
 *   kafka:
 *     bootstrap_servers: "localhost:9092"
 *     group_id: pseudostream
 *     transactional_id: pseudostream-0     # stable per replica
 *     properties:                          # passed to librdkafka unchanged
 *       security.protocol: SASL_SSL
 *       sasl.password_file: /run/secrets/kafka-password   # <property>_file: read from a file
 *   input:
 *     topics: [hl7v2.events, fhir.events]
 *   dead_letter_topic: pseudostream.dead-letter
 *   schemas:                               # static id map (Confluent ids)
 *     - file: ../schemas/hl7v2/hl7v2_event.avsc
 *       id: 1
 *   policy: ../policy/demo.yaml
 *   keyring: keyring.yaml
 *   keyring_passphrase_file: /run/secrets/keyring-passphrase
 *   limits:
 *     max_message_bytes: 1048576
 *     max_depth: 32
 *     max_items: 100000
 *     max_alloc_bytes: 67108864
 *   delivery:
 *     mode: transactional                  # or at_least_once
 *     batch_max_events: 10000
 *     transaction_interval_ms: 1000
 *   metrics:
 *     listen: "0.0.0.0:9464"               # /metrics, /healthz, /readyz; absent: off
 *     health_timeout_ms: 60000
 *   log_level: info
 *
 * Relative file paths are resolved against the configuration file's folder.
 * Unknown keys are errors; numbers are checked strictly (libcyaml 1.3.1 reads
 * "30s" as 30 and "010" as 8, so numbers are read as text and parsed here).
 * Every error names file, line, column and the fix.
 *
 * Precedence: the file, then the environment, then -X (ps_config_set_property,
 * which the caller applies after loading). The environment rule is one rule:
 * a setting's path upper-cased, with '.' written '_', after PSEUDOSTREAM_:
 *
 *   delivery.batch_max_events      PSEUDOSTREAM_DELIVERY_BATCH_MAX_EVENTS
 *   kafka.properties.sasl.password PSEUDOSTREAM_KAFKA_PROPERTIES_SASL_PASSWORD
 *   kafka.properties.sasl.password_file
 *                                  PSEUDOSTREAM_KAFKA_PROPERTIES_SASL_PASSWORD_FILE
 *   input.topics                   PSEUDOSTREAM_INPUT_TOPICS (comma-separated)
 *
 * For kafka properties the name after PSEUDOSTREAM_KAFKA_PROPERTIES_ is
 * lower-cased and every '_' read as '.', except a final _FILE, which asks for
 * the file form (no string-valued librdkafka property has '_' in its name).
 * Paths from the environment are taken relative to the working directory. A
 * PSEUDOSTREAM_ variable that names no setting is an error (a typo would
 * otherwise be ignored), except PSEUDOSTREAM_DATA_DIR (the CLI's) and
 * PSEUDOSTREAM_KEYRING_PASSPHRASE (the keyring commands').
 *
 * Secrets: any kafka property may be written <name>_file: PATH (in the file,
 * the environment or -X) and is then read from PATH, with one trailing newline
 * removed (the Docker and Kubernetes secrets habit); the keyring passphrase is
 * read only from keyring_passphrase_file. Secret values are wiped when freed,
 * never repeated in an error message, and dumped as [redacted].
 *
 * docs/CONFIGURATION.md is generated from the settings table in ps_config.c
 * (ps_config_docs_write), which is checked against the libcyaml schema, so the
 * two cannot drift.
 */
#ifndef PS_CONFIG_H
#define PS_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ps_error.h"

enum ps_delivery_mode {
    PS_DELIVERY_TRANSACTIONAL = 0,
    PS_DELIVERY_AT_LEAST_ONCE
};

enum ps_config_optout_form {
    PS_CONFIG_OPTOUT_CLEARED = 0,     /* the list holds NHS numbers cleared for use */
    PS_CONFIG_OPTOUT_OPTED_OUT = 1    /* the list holds opted-out NHS numbers */
};

struct ps_config_property {
    char *key;
    char *value;
    int secret;                       /* 1: dumped as [redacted] (read from a file, or a
                                         name such as sasl.password) */
};

struct ps_config_schema {
    char *file;                       /* resolved path */
    int64_t id;                       /* Confluent id, -1 when not given */
};

struct ps_config {
    char *file;                       /* path loaded from; NULL for defaults */
    struct {
        char *bootstrap_servers;
        char *group_id;               /* default "pseudostream" */
        char *transactional_id;       /* default "pseudostream-<hostname>" */
        struct ps_config_property *properties;
        size_t property_count;
    } kafka;
    char **input_topics;
    size_t input_topic_count;
    char *dead_letter_topic;          /* default "pseudostream.dead-letter" */
    char *audit_topic;                /* default "pseudostream.audit" */
    char *escrow_topic;               /* default "pseudostream.escrow" */
    struct {
        int configured;               /* an opt_out section was written */
        char *file;                   /* resolved path, or NULL */
        enum ps_config_optout_form form; /* default cleared (the MESH reply) */
        int64_t as_of_ms;             /* the extract's date; 0: the file's mtime */
        char *topic;                  /* compacted topic of live updates, or NULL */
        uint32_t max_age_hours;       /* default 168 (a week) */
    } opt_out;
    struct ps_config_schema *schemas;
    size_t schema_count;
    char *policy_file;                /* resolved path */
    char *keyring_file;               /* resolved path */
    struct {
        uint64_t max_message_bytes;   /* default 1048576 */
        uint64_t max_alloc_bytes;     /* default 67108864 */
        uint32_t max_depth;           /* default 32 */
        uint64_t max_items;           /* default 100000 */
    } limits;
    struct {
        enum ps_delivery_mode mode;   /* default transactional */
        uint32_t batch_max_events;    /* default 10000 */
        uint32_t transaction_interval_ms; /* default 1000 */
    } delivery;
    char *keyring_passphrase_file;    /* resolved path, NULL when not given */
    char *keyring_passphrase;         /* its content (secret, wiped when freed); NULL */
    struct {
        char *listen;                 /* "host:port"; NULL: no operations port */
        uint32_t health_timeout_ms;   /* default 60000 */
    } metrics;
    char *log_level;                  /* default "info" */
};

/* Loads path, then applies the process environment (PSEUDOSTREAM_*).
 * PS_ERR_IO (the file, or a secret file), PS_ERR_CONFIG with file:line:col and
 * the fix (or the variable's name), PS_ERR_NOMEM. */
ps_err_t ps_config_load(const char *path, struct ps_config **conf_p, struct ps_error *err);

/* As ps_config_load with envp (an environ-style array, NULL-terminated) in
 * place of the process environment; envp NULL applies no environment. */
ps_err_t ps_config_load_env(const char *path, const char *const *envp,
                            struct ps_config **conf_p, struct ps_error *err);
/* NULL is a no-op. */
void ps_config_destroy(struct ps_config *conf);

/* Applies "-X key=value": adds or replaces a librdkafka property; a key
 * ending in _file reads the value from that file (relative to the working
 * directory). PS_ERR_CONFIG when there is no '=', PS_ERR_IO for the file. */
ps_err_t ps_config_set_property(struct ps_config *conf, const char *assignment,
                                struct ps_error *err);

/* 1 when a librdkafka property of this name holds a secret (sasl.password,
 * ssl.key.password, ssl.key.pem, any name with "password" or "secret"). */
int ps_config_property_is_secret(const char *key);

/* Writes the effective configuration as YAML (loadable, but every secret is
 * written "[redacted]"). PS_ERR_IO when out fails. */
ps_err_t ps_config_dump(const struct ps_config *conf, FILE *out, struct ps_error *err);

/* Writes docs/CONFIGURATION.md (Markdown) from the settings table. Fails with
 * PS_ERR_INVALID, naming the setting, when the table and the libcyaml schema
 * disagree: a setting without a row, or a row without a setting. */
ps_err_t ps_config_docs_write(FILE *out, struct ps_error *err);

#endif
