#include "ps_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ps_log.h"
#include "ps_yaml.h"

#define CONFIG_MAX_BYTES (1024 * 1024)

#define DEFAULT_GROUP_ID "pseudostream"
#define DEFAULT_DEAD_LETTER_TOPIC "pseudostream.dead-letter"
#define DEFAULT_LOG_LEVEL "info"

/* ---------------------------------------------------------------- schema */

/* The file as libcyaml loads it. Every number is text: libcyaml 1.3.1 reads
 * "30s" as 30, "010" as 8 and "9092abc" as 9092, so numbers are parsed
 * strictly here, where the position of the text is known. */
struct raw_kafka {
    char *bootstrap_servers;
    char *group_id;
    char *transactional_id;
};

struct raw_input {
    char **topics;
    unsigned topics_count;
};

struct raw_schema {
    char *file;
    char *id;
};

struct raw_limits {
    char *max_message_bytes;
    char *max_alloc_bytes;
    char *max_depth;
    char *max_items;
};

struct raw_delivery {
    int *mode;
    char *batch_max_events;
    char *transaction_interval_ms;
};

struct raw_config {
    struct raw_kafka *kafka;
    struct raw_input *input;
    char *dead_letter_topic;
    struct raw_schema *schemas;
    unsigned schemas_count;
    char *policy;
    char *keyring;
    struct raw_limits *limits;
    struct raw_delivery *delivery;
    int *log_level;
};

#define N(table) (sizeof(table) / sizeof((table)[0]))
#define STR_REQ CYAML_FLAG_POINTER
#define STR_OPT (CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL)
#define MAP_OPT (CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL)

static const cyaml_strval_t mode_strvals[] = {
    {"transactional", PS_DELIVERY_TRANSACTIONAL},
    {"at_least_once", PS_DELIVERY_AT_LEAST_ONCE},
};

static const cyaml_strval_t log_level_strvals[] = {
    {"debug", PS_LOG_DEBUG},
    {"info", PS_LOG_INFO},
    {"warn", PS_LOG_WARN},
    {"error", PS_LOG_ERROR},
};

/* kafka.properties is any librdkafka property, so libcyaml skips it and it is
 * read from the index, in the order written. */
static const cyaml_schema_field_t kafka_fields[] = {
    CYAML_FIELD_STRING_PTR("bootstrap_servers", STR_OPT, struct raw_kafka, bootstrap_servers, 1,
                           CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("group_id", STR_OPT, struct raw_kafka, group_id, 1, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("transactional_id", STR_OPT, struct raw_kafka, transactional_id, 1,
                           CYAML_UNLIMITED),
    CYAML_FIELD_IGNORE("properties", CYAML_FLAG_OPTIONAL),
    CYAML_FIELD_END};

static const cyaml_schema_value_t topic_entry = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 1, CYAML_UNLIMITED),
};

static const cyaml_schema_field_t input_fields[] = {
    CYAML_FIELD_SEQUENCE("topics", CYAML_FLAG_POINTER, struct raw_input, topics, &topic_entry, 1,
                         CYAML_UNLIMITED),
    CYAML_FIELD_END};

static const cyaml_schema_field_t schema_fields[] = {
    CYAML_FIELD_STRING_PTR("file", STR_REQ, struct raw_schema, file, 1, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("id", STR_OPT, struct raw_schema, id, 0, CYAML_UNLIMITED),
    CYAML_FIELD_END};

static const cyaml_schema_value_t schema_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_schema, schema_fields),
};

static const cyaml_schema_field_t limits_fields[] = {
    CYAML_FIELD_STRING_PTR("max_message_bytes", STR_OPT, struct raw_limits, max_message_bytes, 0,
                           CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("max_alloc_bytes", STR_OPT, struct raw_limits, max_alloc_bytes, 0,
                           CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("max_depth", STR_OPT, struct raw_limits, max_depth, 0,
                           CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("max_items", STR_OPT, struct raw_limits, max_items, 0,
                           CYAML_UNLIMITED),
    CYAML_FIELD_END};

static const cyaml_schema_field_t delivery_fields[] = {
    CYAML_FIELD_ENUM_PTR("mode", CYAML_FLAG_STRICT | CYAML_FLAG_OPTIONAL, struct raw_delivery,
                         mode, mode_strvals, N(mode_strvals)),
    CYAML_FIELD_STRING_PTR("batch_max_events", STR_OPT, struct raw_delivery, batch_max_events, 0,
                           CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("transaction_interval_ms", STR_OPT, struct raw_delivery,
                           transaction_interval_ms, 0, CYAML_UNLIMITED),
    CYAML_FIELD_END};

static const cyaml_schema_field_t config_fields[] = {
    CYAML_FIELD_MAPPING_PTR("kafka", MAP_OPT, struct raw_config, kafka, kafka_fields),
    CYAML_FIELD_MAPPING_PTR("input", CYAML_FLAG_POINTER, struct raw_config, input, input_fields),
    CYAML_FIELD_STRING_PTR("dead_letter_topic", STR_OPT, struct raw_config, dead_letter_topic, 1,
                           CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("schemas", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct raw_config,
                         schemas, &schema_entry, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("policy", STR_REQ, struct raw_config, policy, 1, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("keyring", STR_REQ, struct raw_config, keyring, 1, CYAML_UNLIMITED),
    CYAML_FIELD_MAPPING_PTR("limits", MAP_OPT, struct raw_config, limits, limits_fields),
    CYAML_FIELD_MAPPING_PTR("delivery", MAP_OPT, struct raw_config, delivery, delivery_fields),
    CYAML_FIELD_ENUM_PTR("log_level", CYAML_FLAG_STRICT | CYAML_FLAG_OPTIONAL, struct raw_config,
                         log_level, log_level_strvals, N(log_level_strvals)),
    CYAML_FIELD_END};

static const cyaml_schema_value_t config_value = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct raw_config, config_fields),
};

static const struct ps_yaml_hint config_hints[] = {
    {"input", "add input: with topics: [<topic name>, ...]"},
    {"topics", "add topics: [<topic name>, ...]"},
    {"policy", "add policy: <path of the disclosure policy file>"},
    {"keyring", "add keyring: <path of the keyring file>"},
    {"file", "add file: <path of the .avsc schema file>"},
    {NULL, NULL}};

static const struct ps_yaml_doc_type config_type = {
    .schema = &config_value,
    .hints = config_hints,
    .empty_fix = "write at least input:, policy: and keyring:",
};

/* --------------------------------------------------------------- helpers */

static void wipe_free(char *s)
{
    if (s) {
        ps_yaml_wipe(s, strlen(s));
        free(s);
    }
}

static ps_err_t dup_or_default(const char *value, const char *fallback, char **out_p,
                               struct ps_error *err)
{
    const char *src = value ? value : fallback;
    if (!src) {
        *out_p = NULL;
        return PS_OK;
    }
    *out_p = strdup(src);
    if (!*out_p) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory loading the configuration");
    }
    return PS_OK;
}

/* A path written in the file is taken relative to the file's folder, so a
 * configuration can be moved together with what it names. */
static ps_err_t resolve_path(const char *config_path, const char *rel, char **out_p,
                             struct ps_error *err)
{
    const char *slash = strrchr(config_path, '/');
    if (rel[0] == '/' || !slash) {
        return dup_or_default(rel, NULL, out_p, err);
    }
    size_t dir_len = (size_t)(slash - config_path) + 1; /* keeps the '/' */
    size_t rel_len = strlen(rel);
    char *out = malloc(dir_len + rel_len + 1);
    if (!out) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory loading the configuration");
    }
    memcpy(out, config_path, dir_len);
    memcpy(out + dir_len, rel, rel_len + 1);
    *out_p = out;
    return PS_OK;
}

static ps_err_t default_transactional_id(char **out_p, struct ps_error *err)
{
    char host[256];
    char id[300];
    if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0') {
        snprintf(host, sizeof(host), "0");
    }
    host[sizeof(host) - 1] = '\0';
    snprintf(id, sizeof(id), "pseudostream-%s", host);
    return dup_or_default(id, NULL, out_p, err);
}

struct number_rule {
    const char *section;
    const char *key;
    uint64_t min;
    uint64_t max;
    uint64_t example;
};

static ps_err_t parse_number(const struct ps_yaml_file *yf, const struct number_rule *rule,
                             const char *text, uint64_t *value_p, struct ps_error *err)
{
    if (!text) {
        return PS_OK; /* not written: the default stays */
    }
    if (ps_yaml_parse_uint(text, rule->min, rule->max, value_p) == 0) {
        return PS_OK;
    }
    const struct ps_ynode *node = ps_ynode_get(ps_ynode_get(ps_yaml_file_root(yf), rule->section),
                                               rule->key);
    return ps_yaml_error_at(yf, node, err,
                            "%s.%s must be a whole number from %llu to %llu in plain digits, "
                            "with no sign, unit or leading zero (e.g. %s: %llu)",
                            rule->section, rule->key, (unsigned long long)rule->min,
                            (unsigned long long)rule->max, rule->key,
                            (unsigned long long)rule->example);
}

static const struct number_rule rule_max_message_bytes = {"limits", "max_message_bytes", 1,
                                                           1000000000, 1048576};
static const struct number_rule rule_max_alloc_bytes = {"limits", "max_alloc_bytes", 1,
                                                         UINT64_C(1) << 40, 67108864};
static const struct number_rule rule_max_depth = {"limits", "max_depth", 1, 1024, 32};
static const struct number_rule rule_max_items = {"limits", "max_items", 1, UINT32_MAX, 100000};
static const struct number_rule rule_batch_max_events = {"delivery", "batch_max_events", 1,
                                                          1000000, 10000};
static const struct number_rule rule_transaction_interval_ms = {
    "delivery", "transaction_interval_ms", 1, 3600000, 500};

static ps_err_t read_numbers(const struct ps_yaml_file *yf, const struct raw_config *raw,
                             struct ps_config *conf, struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    uint64_t v = 0;
    if (raw->limits) {
        const struct raw_limits *l = raw->limits;
        if ((rc = parse_number(yf, &rule_max_message_bytes, l->max_message_bytes,
                               &conf->limits.max_message_bytes, err)) != PS_OK ||
            (rc = parse_number(yf, &rule_max_alloc_bytes, l->max_alloc_bytes,
                               &conf->limits.max_alloc_bytes, err)) != PS_OK ||
            (rc = parse_number(yf, &rule_max_items, l->max_items, &conf->limits.max_items,
                               err)) != PS_OK) {
            return rc;
        }
        v = conf->limits.max_depth;
        if ((rc = parse_number(yf, &rule_max_depth, l->max_depth, &v, err)) != PS_OK) {
            return rc;
        }
        conf->limits.max_depth = (uint32_t)v;
    }
    if (raw->delivery) {
        const struct raw_delivery *d = raw->delivery;
        if (d->mode) {
            conf->delivery.mode = (enum ps_delivery_mode)*d->mode;
        }
        v = conf->delivery.batch_max_events;
        if ((rc = parse_number(yf, &rule_batch_max_events, d->batch_max_events, &v, err)) !=
            PS_OK) {
            return rc;
        }
        conf->delivery.batch_max_events = (uint32_t)v;
        v = conf->delivery.transaction_interval_ms;
        if ((rc = parse_number(yf, &rule_transaction_interval_ms, d->transaction_interval_ms, &v,
                               err)) != PS_OK) {
            return rc;
        }
        conf->delivery.transaction_interval_ms = (uint32_t)v;
    }
    return PS_OK;
}

static ps_err_t read_schemas(const struct ps_yaml_file *yf, const struct raw_config *raw,
                             struct ps_config *conf, struct ps_error *err)
{
    const struct ps_ynode *yschemas = ps_ynode_get(ps_yaml_file_root(yf), "schemas");
    if (raw->schemas_count == 0) {
        return PS_OK;
    }
    conf->schemas = calloc(raw->schemas_count, sizeof(*conf->schemas));
    if (!conf->schemas) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory loading the configuration");
    }
    for (size_t i = 0; i < raw->schemas_count; i++) {
        struct ps_config_schema *s = &conf->schemas[i];
        uint64_t id = 0;
        conf->schema_count = i + 1;
        s->id = -1;
        ps_err_t rc = resolve_path(yf->path, raw->schemas[i].file, &s->file, err);
        if (rc != PS_OK) {
            return rc;
        }
        if (!raw->schemas[i].id) {
            continue;
        }
        /* Confluent schema ids are positive 32-bit integers. */
        if (ps_yaml_parse_uint(raw->schemas[i].id, 1, INT32_MAX, &id) != 0) {
            return ps_yaml_error_at(yf, ps_ynode_get(ps_ynode_item(yschemas, i), "id"), err,
                                    "schemas[%zu].id must be a whole number from 1 to %d in "
                                    "plain digits, with no sign, unit or leading zero "
                                    "(e.g. id: 1)",
                                    i, INT32_MAX);
        }
        s->id = (int64_t)id;
    }
    return PS_OK;
}

static ps_err_t property_put(struct ps_config *conf, const char *key, size_t key_len,
                             const char *value, struct ps_error *err)
{
    for (size_t i = 0; i < conf->kafka.property_count; i++) {
        struct ps_config_property *p = &conf->kafka.properties[i];
        if (strlen(p->key) == key_len && memcmp(p->key, key, key_len) == 0) {
            char *v = strdup(value);
            if (!v) {
                return ps_error_set(err, PS_ERR_NOMEM, "out of memory setting a property");
            }
            wipe_free(p->value);
            p->value = v;
            return PS_OK;
        }
    }
    struct ps_config_property *grown =
        realloc(conf->kafka.properties, (conf->kafka.property_count + 1) * sizeof(*grown));
    if (!grown) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory setting a property");
    }
    conf->kafka.properties = grown;
    struct ps_config_property *p = &grown[conf->kafka.property_count];
    p->key = strndup(key, key_len);
    p->value = strdup(value);
    if (!p->key || !p->value) {
        free(p->key);
        wipe_free(p->value);
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory setting a property");
    }
    conf->kafka.property_count++;
    return PS_OK;
}

/* Property values may be passwords (sasl.password): messages name the key and
 * its place, never the value. */
static ps_err_t read_properties(const struct ps_yaml_file *yf, struct ps_config *conf,
                                struct ps_error *err)
{
    const struct ps_ynode *props =
        ps_ynode_get(ps_ynode_get(ps_yaml_file_root(yf), "kafka"), "properties");
    if (!props) {
        return PS_OK;
    }
    if (props->kind != PS_YNODE_MAP) {
        if (props->kind == PS_YNODE_SCALAR && props->text && props->text[0] == '\0') {
            return PS_OK; /* "properties:" with nothing under it */
        }
        return ps_yaml_error_at(yf, props, err,
                                "kafka.properties must be a mapping of librdkafka property names "
                                "to values (e.g. security.protocol: SSL)");
    }
    for (size_t i = 0; i < props->count; i++) {
        const struct ps_ynode *key = &props->keys[i];
        const struct ps_ynode *value = &props->items[i];
        if (!key->text || key->text[0] == '\0') {
            return ps_yaml_error_at(yf, key, err,
                                    "kafka.properties has an empty property name "
                                    "(write a librdkafka property such as client.id)");
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(props->keys[j].text, key->text) == 0) {
                return ps_yaml_error_at(yf, key, err,
                                        "kafka.properties: '%s' is written twice (keep only one)",
                                        key->text);
            }
        }
        if (value->kind != PS_YNODE_SCALAR || !value->text) {
            return ps_yaml_error_at(yf, value, err,
                                    "kafka.properties.%s must be a single value, not a list or "
                                    "mapping (librdkafka takes text)",
                                    key->text);
        }
        ps_err_t rc = property_put(conf, key->text, strlen(key->text), value->text, err);
        if (rc != PS_OK) {
            return rc;
        }
    }
    return PS_OK;
}

static ps_err_t convert(const struct ps_yaml_file *yf, const struct raw_config *raw,
                        struct ps_config *conf, struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    const struct raw_kafka *k = raw->kafka;

    conf->limits.max_message_bytes = 1048576;
    conf->limits.max_alloc_bytes = 67108864;
    conf->limits.max_depth = 32;
    conf->limits.max_items = 100000;
    conf->delivery.mode = PS_DELIVERY_TRANSACTIONAL;
    conf->delivery.batch_max_events = 10000;
    conf->delivery.transaction_interval_ms = 500;

    if ((rc = dup_or_default(yf->path, NULL, &conf->file, err)) != PS_OK ||
        (rc = dup_or_default(k ? k->bootstrap_servers : NULL, NULL,
                             &conf->kafka.bootstrap_servers, err)) != PS_OK ||
        (rc = dup_or_default(k ? k->group_id : NULL, DEFAULT_GROUP_ID, &conf->kafka.group_id,
                             err)) != PS_OK ||
        (rc = dup_or_default(raw->dead_letter_topic, DEFAULT_DEAD_LETTER_TOPIC,
                             &conf->dead_letter_topic, err)) != PS_OK ||
        (rc = dup_or_default(raw->log_level ? log_level_strvals[*raw->log_level].str : NULL,
                             DEFAULT_LOG_LEVEL, &conf->log_level, err)) != PS_OK ||
        (rc = resolve_path(yf->path, raw->policy, &conf->policy_file, err)) != PS_OK ||
        (rc = resolve_path(yf->path, raw->keyring, &conf->keyring_file, err)) != PS_OK) {
        return rc;
    }
    if (k && k->transactional_id) {
        rc = dup_or_default(k->transactional_id, NULL, &conf->kafka.transactional_id, err);
    } else {
        rc = default_transactional_id(&conf->kafka.transactional_id, err);
    }
    if (rc != PS_OK) {
        return rc;
    }

    conf->input_topics = calloc(raw->input->topics_count, sizeof(*conf->input_topics));
    if (!conf->input_topics) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory loading the configuration");
    }
    for (size_t i = 0; i < raw->input->topics_count; i++) {
        conf->input_topic_count = i + 1;
        if ((rc = dup_or_default(raw->input->topics[i], NULL, &conf->input_topics[i], err)) !=
            PS_OK) {
            return rc;
        }
    }
    if ((rc = read_schemas(yf, raw, conf, err)) != PS_OK ||
        (rc = read_numbers(yf, raw, conf, err)) != PS_OK ||
        (rc = read_properties(yf, conf, err)) != PS_OK) {
        return rc;
    }
    return PS_OK;
}

ps_err_t ps_config_load(const char *path, struct ps_config **conf_p, struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    struct ps_yaml_file *yf = NULL;
    struct raw_config *raw = NULL;
    struct ps_config *conf = NULL;

    if (!path || !conf_p) {
        return ps_error_set(err, PS_ERR_INVALID, "ps_config_load: path and conf_p are required");
    }
    rc = ps_yaml_file_open(path, CONFIG_MAX_BYTES, PS_YAML_KEEP_VALUES | PS_YAML_WIPE, &yf, err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    rc = ps_yaml_file_load(yf, &config_type, (void **)&raw, err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    conf = calloc(1, sizeof(*conf));
    if (!conf) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "out of memory loading %s", path);
        goto cleanup;
    }
    rc = convert(yf, raw, conf, err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    *conf_p = conf;
    conf = NULL;

cleanup:
    ps_config_destroy(conf);
    ps_yaml_file_free_data(yf, &config_type, raw);
    ps_yaml_file_destroy(yf);
    return rc;
}

void ps_config_destroy(struct ps_config *conf)
{
    if (!conf) {
        return;
    }
    free(conf->file);
    free(conf->kafka.bootstrap_servers);
    free(conf->kafka.group_id);
    free(conf->kafka.transactional_id);
    for (size_t i = 0; i < conf->kafka.property_count; i++) {
        free(conf->kafka.properties[i].key);
        wipe_free(conf->kafka.properties[i].value);
    }
    free(conf->kafka.properties);
    for (size_t i = 0; i < conf->input_topic_count; i++) {
        free(conf->input_topics[i]);
    }
    free(conf->input_topics);
    free(conf->dead_letter_topic);
    for (size_t i = 0; i < conf->schema_count; i++) {
        free(conf->schemas[i].file);
    }
    free(conf->schemas);
    free(conf->policy_file);
    free(conf->keyring_file);
    free(conf->log_level);
    free(conf);
}

ps_err_t ps_config_set_property(struct ps_config *conf, const char *assignment,
                                struct ps_error *err)
{
    if (!conf || !assignment) {
        return ps_error_set(err, PS_ERR_INVALID, "ps_config_set_property: conf and assignment "
                                                 "are required");
    }
    /* The text is not repeated: it may hold a password. */
    const char *eq = strchr(assignment, '=');
    if (!eq) {
        return ps_error_set(err, PS_ERR_CONFIG,
                            "-X takes key=value, with no '=' here "
                            "(e.g. -X security.protocol=SSL)");
    }
    if (eq == assignment) {
        return ps_error_set(err, PS_ERR_CONFIG,
                            "-X takes key=value, with no key before '=' here "
                            "(e.g. -X security.protocol=SSL)");
    }
    return property_put(conf, assignment, (size_t)(eq - assignment), eq + 1, err);
}
