/*
 * ps_config: the service configuration, one YAML file read with libcyaml.
 *
 *   kafka:
 *     bootstrap_servers: "localhost:9092"
 *     group_id: pseudostream
 *     transactional_id: pseudostream-0     # stable per replica
 *     properties:                          # passed to librdkafka unchanged
 *       security.protocol: SASL_SSL
 *   input:
 *     topics: [hl7v2.events, fhir.events]
 *   dead_letter_topic: pseudostream.dead-letter
 *   schemas:                               # static id map (Confluent ids)
 *     - file: ../schemas/hl7v2/hl7v2_event.avsc
 *       id: 1
 *   policy: ../policy/demo.yaml
 *   keyring: keyring.yaml
 *   limits:
 *     max_message_bytes: 1048576
 *     max_depth: 32
 *     max_items: 100000
 *     max_alloc_bytes: 67108864
 *   delivery:
 *     mode: transactional                  # or at_least_once
 *     batch_max_events: 10000
 *     transaction_interval_ms: 500
 *   log_level: info
 *
 * Relative file paths are resolved against the configuration file's folder.
 * Unknown keys are errors; numbers are checked strictly (libcyaml 1.3.1 reads
 * "30s" as 30 and "010" as 8, so numbers are read as text and parsed here).
 * Every error names file, line, column and the fix.
 */
#ifndef PS_CONFIG_H
#define PS_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "ps_error.h"

enum ps_delivery_mode {
    PS_DELIVERY_TRANSACTIONAL = 0,
    PS_DELIVERY_AT_LEAST_ONCE
};

struct ps_config_property {
    char *key;
    char *value;
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
        uint32_t transaction_interval_ms; /* default 500 */
    } delivery;
    char *log_level;                  /* default "info" */
};

/* Loads path. PS_ERR_IO, PS_ERR_CONFIG with file:line:col and the fix. */
ps_err_t ps_config_load(const char *path, struct ps_config **conf_p, struct ps_error *err);
/* NULL is a no-op. */
void ps_config_destroy(struct ps_config *conf);

/* Applies "-X key=value": adds or replaces a librdkafka property.
 * PS_ERR_CONFIG when there is no '='. */
ps_err_t ps_config_set_property(struct ps_config *conf, const char *assignment,
                                struct ps_error *err);

#endif
