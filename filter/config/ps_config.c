#include "ps_config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ps_http.h"
#include "ps_log.h"
#include "ps_time.h"
#include "ps_yaml.h"

#define CONFIG_MAX_BYTES (1024 * 1024)
/* A secret file holds a password or a PEM key: a few KiB at most. */
#define SECRET_FILE_MAX_BYTES (64 * 1024)
#define ENV_PREFIX "PSEUDOSTREAM_"
#define ENV_PROPERTY_PREFIX "PSEUDOSTREAM_KAFKA_PROPERTIES_"
#define FILE_SUFFIX "_file"

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

struct raw_optout {
    char *file;
    int *form;
    char *as_of;
    char *topic;
    char *max_age_hours;
};

struct raw_metrics {
    char *listen;
    char *health_timeout_ms;
};

struct raw_config {
    struct raw_kafka *kafka;
    char *audit_topic;
    char *escrow_topic;
    struct raw_optout *opt_out;
    struct raw_input *input;
    char *dead_letter_topic;
    struct raw_schema *schemas;
    unsigned schemas_count;
    char *policy;
    char *keyring;
    char *keyring_passphrase_file;
    struct raw_limits *limits;
    struct raw_delivery *delivery;
    struct raw_metrics *metrics;
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

static const cyaml_strval_t optout_form_strvals[] = {
    {"cleared", PS_CONFIG_OPTOUT_CLEARED},
    {"opted_out", PS_CONFIG_OPTOUT_OPTED_OUT},
};

static const cyaml_schema_field_t optout_fields[] = {
    CYAML_FIELD_STRING_PTR("file", STR_OPT, struct raw_optout, file, 1, CYAML_UNLIMITED),
    CYAML_FIELD_ENUM_PTR("form", CYAML_FLAG_STRICT | CYAML_FLAG_OPTIONAL, struct raw_optout, form,
                         optout_form_strvals, N(optout_form_strvals)),
    CYAML_FIELD_STRING_PTR("as_of", STR_OPT, struct raw_optout, as_of, 1, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("topic", STR_OPT, struct raw_optout, topic, 1, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("max_age_hours", STR_OPT, struct raw_optout, max_age_hours, 0,
                           CYAML_UNLIMITED),
    CYAML_FIELD_END};

static const cyaml_schema_field_t metrics_fields[] = {
    CYAML_FIELD_STRING_PTR("listen", STR_OPT, struct raw_metrics, listen, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("health_timeout_ms", STR_OPT, struct raw_metrics, health_timeout_ms, 0,
                           CYAML_UNLIMITED),
    CYAML_FIELD_END};

static const cyaml_schema_field_t config_fields[] = {
    CYAML_FIELD_STRING_PTR("audit_topic", STR_OPT, struct raw_config, audit_topic, 1,
                           CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("escrow_topic", STR_OPT, struct raw_config, escrow_topic, 1,
                           CYAML_UNLIMITED),
    CYAML_FIELD_MAPPING_PTR("opt_out", MAP_OPT, struct raw_config, opt_out, optout_fields),
    CYAML_FIELD_MAPPING_PTR("kafka", MAP_OPT, struct raw_config, kafka, kafka_fields),
    CYAML_FIELD_MAPPING_PTR("input", CYAML_FLAG_POINTER, struct raw_config, input, input_fields),
    CYAML_FIELD_STRING_PTR("dead_letter_topic", STR_OPT, struct raw_config, dead_letter_topic, 1,
                           CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("schemas", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct raw_config,
                         schemas, &schema_entry, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("policy", STR_REQ, struct raw_config, policy, 1, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("keyring", STR_REQ, struct raw_config, keyring, 1, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("keyring_passphrase_file", STR_OPT, struct raw_config,
                           keyring_passphrase_file, 1, CYAML_UNLIMITED),
    CYAML_FIELD_MAPPING_PTR("limits", MAP_OPT, struct raw_config, limits, limits_fields),
    CYAML_FIELD_MAPPING_PTR("delivery", MAP_OPT, struct raw_config, delivery, delivery_fields),
    CYAML_FIELD_MAPPING_PTR("metrics", MAP_OPT, struct raw_config, metrics, metrics_fields),
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
    "delivery", "transaction_interval_ms", 1, 3600000, 1000};
static const struct number_rule rule_health_timeout_ms = {"metrics", "health_timeout_ms", 1000,
                                                           3600000, 60000};

static const struct number_rule rule_optout_max_age = {"opt_out", "max_age_hours", 1, 8760,
                                                        168};

/* The opt-out source: a file (with its extract date) and/or a compacted topic. */
static ps_err_t read_optout(const struct ps_yaml_file *yf, const struct raw_optout *o,
                            struct ps_config *conf, struct ps_error *err)
{
    const struct ps_ynode *node = ps_ynode_get(ps_yaml_file_root(yf), "opt_out");
    uint64_t hours = rule_optout_max_age.example;
    ps_err_t rc = parse_number(yf, &rule_optout_max_age, o->max_age_hours, &hours, err);
    if (rc != PS_OK) {
        return rc;
    }
    if (!o->file && !o->topic) {
        return ps_yaml_error_at(yf, node, err,
                                "opt_out names no source (add file: <opt-out list> and/or "
                                "topic: <compacted topic>)");
    }
    if (o->as_of && ps_time_parse_iso(o->as_of, &conf->opt_out.as_of_ms) != PS_OK) {
        return ps_yaml_error_at(yf, ps_ynode_get(node, "as_of"), err,
                                "opt_out.as_of is not an ISO 8601 date or instant (e.g. as_of: "
                                "\"2026-11-20T06:00:00Z\": the date of the extract)");
    }
    conf->opt_out.configured = 1;
    conf->opt_out.max_age_hours = (uint32_t)hours;
    conf->opt_out.form = o->form ? (enum ps_config_optout_form)*o->form
                                 : PS_CONFIG_OPTOUT_CLEARED;
    if (o->file && (rc = resolve_path(yf->path, o->file, &conf->opt_out.file, err)) != PS_OK) {
        return rc;
    }
    return dup_or_default(o->topic, NULL, &conf->opt_out.topic, err);
}

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
    if (raw->metrics) {
        v = conf->metrics.health_timeout_ms;
        if ((rc = parse_number(yf, &rule_health_timeout_ms, raw->metrics->health_timeout_ms, &v,
                               err)) != PS_OK) {
            return rc;
        }
        conf->metrics.health_timeout_ms = (uint32_t)v;
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
                             const char *value, int secret, struct ps_error *err)
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
            p->secret = secret || ps_config_property_is_secret(p->key);
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
    p->secret = secret || ps_config_property_is_secret(p->key);
    conf->kafka.property_count++;
    return PS_OK;
}

int ps_config_property_is_secret(const char *key)
{
    static const char *const names[] = {"ssl.key.pem", "sasl.oauthbearer.config", "ssl_key"};
    if (!key) {
        return 0;
    }
    if (strstr(key, "password") || strstr(key, "secret")) {
        return 1;
    }
    for (size_t i = 0; i < N(names); i++) {
        if (strcmp(key, names[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Reads a secret from path: at most SECRET_FILE_MAX_BYTES, one trailing
 * newline (LF or CRLF) removed, no NUL byte, not empty. setting names the
 * setting in messages; the content never appears in one. */
static ps_err_t read_secret_file(const char *setting, const char *path, char **value_p,
                                 struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    char *buf = NULL;
    size_t len = 0;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return ps_error_set(err, PS_ERR_IO, "%s: cannot open %s: %s", setting, path,
                            strerror(errno));
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = ps_error_set(err, PS_ERR_IO, "%s: %s is not a regular file", setting, path);
        goto cleanup;
    }
    buf = malloc(SECRET_FILE_MAX_BYTES + 1);
    if (!buf) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "out of memory reading a secret file");
        goto cleanup;
    }
    for (;;) {
        ssize_t got = read(fd, buf + len, SECRET_FILE_MAX_BYTES + 1 - len);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            rc = ps_error_set(err, PS_ERR_IO, "%s: cannot read %s: %s", setting, path,
                              strerror(errno));
            goto cleanup;
        }
        if (got == 0) {
            break;
        }
        len += (size_t)got;
        if (len > SECRET_FILE_MAX_BYTES) {
            rc = ps_error_set(err, PS_ERR_CONFIG, "%s: %s is larger than %d bytes", setting, path,
                              SECRET_FILE_MAX_BYTES);
            goto cleanup;
        }
    }
    if (len > 0 && buf[len - 1] == '\n') {
        len--;
        if (len > 0 && buf[len - 1] == '\r') {
            len--;
        }
    }
    if (len == 0 || memchr(buf, '\0', len)) {
        rc = ps_error_set(err, PS_ERR_CONFIG, "%s: %s is %s", setting, path,
                          len == 0 ? "empty (write the secret in it)"
                                   : "not text (it holds a NUL byte)");
        goto cleanup;
    }
    buf[len] = '\0';
    *value_p = buf;
    buf = NULL;

cleanup:
    if (buf) {
        ps_yaml_wipe(buf, SECRET_FILE_MAX_BYTES + 1);
        free(buf);
    }
    close(fd);
    return rc;
}

/* key_len bytes of key name a property; a name ending in _file is the file
 * form: the property is the name without the suffix, its value read from the
 * file named by value. origin names where it came from in messages. */
static ps_err_t property_put_maybe_file(struct ps_config *conf, const char *origin,
                                        const char *key, size_t key_len, const char *value,
                                        struct ps_error *err)
{
    size_t suffix_len = strlen(FILE_SUFFIX);
    if (key_len > suffix_len && memcmp(key + key_len - suffix_len, FILE_SUFFIX, suffix_len) == 0) {
        char setting[300];
        char *secret = NULL;
        snprintf(setting, sizeof(setting), "%s %.*s", origin, (int)key_len, key);
        ps_err_t rc = read_secret_file(setting, value, &secret, err);
        if (rc != PS_OK) {
            return rc;
        }
        rc = property_put(conf, key, key_len - suffix_len, secret, 1, err);
        wipe_free(secret);
        return rc;
    }
    return property_put(conf, key, key_len, value, 0, err);
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
        ps_err_t rc = PS_OK;
        size_t key_len = strlen(key->text);
        size_t suffix_len = strlen(FILE_SUFFIX);
        if (key_len > suffix_len &&
            strcmp(key->text + key_len - suffix_len, FILE_SUFFIX) == 0) {
            /* Both forms of one property would leave the winner to the order
             * of the lines: refuse, naming both. */
            for (size_t j = 0; j < props->count; j++) {
                if (strlen(props->keys[j].text) == key_len - suffix_len &&
                    memcmp(props->keys[j].text, key->text, key_len - suffix_len) == 0) {
                    return ps_yaml_error_at(yf, key, err,
                                            "kafka.properties: '%s' and '%s' are both written "
                                            "(keep only one)",
                                            props->keys[j].text, key->text);
                }
            }
            char *path = NULL;
            char setting[300];
            if ((rc = resolve_path(yf->path, value->text, &path, err)) != PS_OK) {
                return rc;
            }
            snprintf(setting, sizeof(setting), "kafka.properties.%s", key->text);
            char *secret = NULL;
            rc = read_secret_file(setting, path, &secret, err);
            free(path);
            if (rc != PS_OK) {
                char msg[PS_ERROR_MSG_MAX];
                snprintf(msg, sizeof(msg), "%s", err ? err->msg : "");
                return ps_error_set_at(err, rc, yf->path, value->line, value->col, "%s", msg);
            }
            rc = property_put(conf, key->text, key_len - suffix_len, secret, 1, err);
            wipe_free(secret);
        } else {
            rc = property_put(conf, key->text, key_len, value->text, 0, err);
        }
        if (rc != PS_OK) {
            return rc;
        }
    }
    return PS_OK;
}

static int listen_ok(const char *listen)
{
    char host[64];
    uint16_t port = 0;
    return listen[0] == '\0' || ps_http_parse_listen(listen, host, sizeof(host), &port) == 0;
}

#define LISTEN_FIX "[host:]port with a numeric host (e.g. 0.0.0.0:9464, [::]:9464 or 9464), " \
                   "or \"\" for no operations port"

static ps_err_t read_metrics(const struct ps_yaml_file *yf, const struct raw_config *raw,
                             struct ps_config *conf, struct ps_error *err)
{
    const char *listen = raw->metrics ? raw->metrics->listen : NULL;
    if (!listen) {
        return PS_OK;
    }
    if (!listen_ok(listen)) {
        const struct ps_ynode *node =
            ps_ynode_get(ps_ynode_get(ps_yaml_file_root(yf), "metrics"), "listen");
        return ps_yaml_error_at(yf, node, err, "metrics.listen must be " LISTEN_FIX);
    }
    /* "" turns the port off (also from the environment, over a file's address). */
    return listen[0] ? dup_or_default(listen, NULL, &conf->metrics.listen, err) : PS_OK;
}

static ps_err_t read_passphrase(const struct ps_yaml_file *yf, const struct raw_config *raw,
                                struct ps_config *conf, struct ps_error *err)
{
    if (!raw->keyring_passphrase_file) {
        return PS_OK;
    }
    ps_err_t rc = resolve_path(yf->path, raw->keyring_passphrase_file,
                               &conf->keyring_passphrase_file, err);
    if (rc == PS_OK) {
        rc = read_secret_file("keyring_passphrase_file", conf->keyring_passphrase_file,
                              &conf->keyring_passphrase, err);
    }
    if (rc != PS_OK && err) {
        const struct ps_ynode *node = ps_ynode_get(ps_yaml_file_root(yf),
                                                   "keyring_passphrase_file");
        char msg[PS_ERROR_MSG_MAX];
        snprintf(msg, sizeof(msg), "%s", err->msg);
        if (node) {
            ps_error_set_at(err, rc, yf->path, node->line, node->col, "%s", msg);
        }
    }
    return rc;
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
    /* 1 s: docs/PERFORMANCE.md's sweep; p99 within twice the interval at
     * sustainable rates, and fewer commits than at 500 ms for the same load. */
    conf->delivery.transaction_interval_ms = 1000;
    conf->metrics.health_timeout_ms = 60000;

    if ((rc = dup_or_default(yf->path, NULL, &conf->file, err)) != PS_OK ||
        (rc = dup_or_default(k ? k->bootstrap_servers : NULL, NULL,
                             &conf->kafka.bootstrap_servers, err)) != PS_OK ||
        (rc = dup_or_default(k ? k->group_id : NULL, DEFAULT_GROUP_ID, &conf->kafka.group_id,
                             err)) != PS_OK ||
        (rc = dup_or_default(raw->dead_letter_topic, DEFAULT_DEAD_LETTER_TOPIC,
                             &conf->dead_letter_topic, err)) != PS_OK ||
        (rc = dup_or_default(raw->audit_topic, "pseudostream.audit", &conf->audit_topic, err)) !=
            PS_OK ||
        (rc = dup_or_default(raw->escrow_topic, "pseudostream.escrow", &conf->escrow_topic,
                             err)) != PS_OK ||
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
    if (raw->opt_out && (rc = read_optout(yf, raw->opt_out, conf, err)) != PS_OK) {
        return rc;
    }
    if ((rc = read_schemas(yf, raw, conf, err)) != PS_OK ||
        (rc = read_numbers(yf, raw, conf, err)) != PS_OK ||
        (rc = read_properties(yf, conf, err)) != PS_OK ||
        (rc = read_metrics(yf, raw, conf, err)) != PS_OK ||
        (rc = read_passphrase(yf, raw, conf, err)) != PS_OK) {
        return rc;
    }
    return PS_OK;
}

/* ------------------------------------------------------- settings table */

/* The one table of settings: the environment rule, the dump and
 * docs/CONFIGURATION.md all come from it, and ps_config_docs_write checks it
 * against the libcyaml schema above, so a key added to one and not the other
 * fails the docs test. */
enum setting_kind {
    SK_STRING,      /* char * at offset */
    SK_PATH,        /* char * at offset; relative to the file's folder (or the cwd, from env) */
    SK_NUMBER,      /* uint32_t or uint64_t at offset (width), checked by a number_rule */
    SK_MODE,        /* delivery.mode */
    SK_LOG_LEVEL,   /* log_level (kept as its name) */
    SK_TOPICS,      /* input.topics: a list; comma-separated in the environment */
    SK_PROPERTIES,  /* kafka.properties */
    SK_SCHEMA_FILE, /* schemas[].file */
    SK_SCHEMA_ID,   /* schemas[].id */
    SK_LISTEN,      /* metrics.listen */
    SK_PASSPHRASE,  /* keyring_passphrase_file: path at offset, content read */
    SK_OPTOUT_FORM, /* opt_out.form */
    SK_OPTOUT_AS_OF /* opt_out.as_of: int64_t ms at offset */
};

struct setting {
    const char *path;         /* as written in the file */
    enum setting_kind kind;
    size_t offset;            /* in struct ps_config, where the kind has one */
    int width;                /* SK_NUMBER: 4 or 8 bytes */
    const struct number_rule *number;
    const char *type;         /* for the docs */
    const char *default_text; /* for the docs */
    const char *doc;
};

#define AT(field) offsetof(struct ps_config, field)
#define NUM(field, rule)                                                                       \
    SK_NUMBER, AT(field), (int)sizeof(((struct ps_config *)0)->field), &(rule)

static const struct setting settings[] = {
    {"kafka.bootstrap_servers", SK_STRING, AT(kafka.bootstrap_servers), 0, NULL, "string",
     "none", "Kafka brokers, host:port[,host:port...]. `run -b` overrides it."},
    {"kafka.group_id", SK_STRING, AT(kafka.group_id), 0, NULL, "string", "`pseudostream`",
     "Consumer group of the replicas that share the input partitions."},
    {"kafka.transactional_id", SK_STRING, AT(kafka.transactional_id), 0, NULL, "string",
     "`pseudostream-<hostname>`",
     "Stable per replica (a StatefulSet's pod name): a restarted replica fences its "
     "predecessor's open transaction."},
    {"kafka.properties", SK_PROPERTIES, 0, 0, NULL, "map", "none",
     "librdkafka properties passed unchanged (TLS, SASL PLAIN/SCRAM/GSSAPI, timeouts). "
     "`<name>_file: PATH` reads a value from a file. Secret names print as [redacted]. "
     "Environment: `PSEUDOSTREAM_KAFKA_PROPERTIES_<NAME>`, see below."},
    {"input.topics", SK_TOPICS, 0, 0, NULL, "list of strings", "required",
     "Topics to consume. Environment: comma-separated."},
    {"dead_letter_topic", SK_STRING, AT(dead_letter_topic), 0, NULL, "string",
     "`pseudostream.dead-letter`",
     "Undecodable input, with its reason (identifiable zone: restrict its readers)."},
    {"audit_topic", SK_STRING, AT(audit_topic), 0, NULL, "string", "`pseudostream.audit`",
     "One audit record per input event: what each destination received or why not; and the plan records (field lists) they name."},
    {"escrow_topic", SK_STRING, AT(escrow_topic), 0, NULL, "string", "`pseudostream.escrow`",
     "Sealed escrow records (pseudonym to identifier) for authorised re-identification "
     "(docs/KEYRING.md)."},
    {"opt_out.file", SK_PATH, AT(opt_out.file), 0, NULL, "path", "none",
     "National data opt-out list, one NHS number per line (the MESH reply)."},
    {"opt_out.form", SK_OPTOUT_FORM, AT(opt_out.form), 0, NULL, "`cleared` or `opted_out`",
     "`cleared`", "Whether the list holds numbers cleared for use or opted-out numbers."},
    {"opt_out.as_of", SK_OPTOUT_AS_OF, AT(opt_out.as_of_ms), 0, NULL, "ISO 8601 date or instant",
     "the file's modification time", "Date of the extract; the state's age counts from it."},
    {"opt_out.topic", SK_STRING, AT(opt_out.topic), 0, NULL, "string", "none",
     "Compacted topic of live opt-out updates."},
    {"opt_out.max_age_hours", NUM(opt_out.max_age_hours, rule_optout_max_age), "number", "`168`",
     "An older opt-out state is unusable: secondary-use output is withheld (fail closed)."},
    {"schemas[].file", SK_SCHEMA_FILE, 0, 0, NULL, "path", "none",
     "An input `.avsc` schema. Not settable from the environment."},
    {"schemas[].id", SK_SCHEMA_ID, 0, 0, NULL, "number", "none",
     "Its Confluent schema id (1 to 2147483647)."},
    {"policy", SK_PATH, AT(policy_file), 0, NULL, "path", "required",
     "Disclosure policy (docs/POLICY.md)."},
    {"keyring", SK_PATH, AT(keyring_file), 0, NULL, "path", "required",
     "Keyring file, mode 0600 (docs/KEYRING.md)."},
    {"keyring_passphrase_file", SK_PASSPHRASE, AT(keyring_passphrase_file), 0, NULL,
     "path (secret)", "none",
     "File holding the keyring passphrase; only the file form exists, so the passphrase is never "
     "in the configuration or the environment."},
    {"limits.max_message_bytes", NUM(limits.max_message_bytes, rule_max_message_bytes), "number",
     "`1048576`", "Largest input message; larger ones are dead-lettered (`limit`)."},
    {"limits.max_alloc_bytes", NUM(limits.max_alloc_bytes, rule_max_alloc_bytes), "number",
     "`67108864`", "Most memory one event's decoding may take."},
    {"limits.max_depth", NUM(limits.max_depth, rule_max_depth), "number", "`32`",
     "Deepest nesting of a schema or datum."},
    {"limits.max_items", NUM(limits.max_items, rule_max_items), "number", "`100000`",
     "Most array items and map entries in one event."},
    {"delivery.mode", SK_MODE, 0, 0, NULL, "`transactional` or `at_least_once`",
     "`transactional`",
     "Exactly-once for read_committed readers, or an idempotent producer with offsets "
     "committed after delivery."},
    {"delivery.batch_max_events", NUM(delivery.batch_max_events, rule_batch_max_events), "number",
     "`10000`", "Most events in one batch (one transaction)."},
    {"delivery.transaction_interval_ms",
     NUM(delivery.transaction_interval_ms, rule_transaction_interval_ms), "number", "`1000`",
     "Longest a batch stays open before it is committed."},
    {"metrics.listen", SK_LISTEN, AT(metrics.listen), 0, NULL, "`[host:]port`",
     "none (no port)",
     "Address of /metrics, /healthz and /readyz, e.g. `0.0.0.0:9464`; `\"\"` turns it off."},
    {"metrics.health_timeout_ms", NUM(metrics.health_timeout_ms, rule_health_timeout_ms),
     "number", "`60000`", "/healthz fails when the poll loop has not ticked for this long."},
    {"log_level", SK_LOG_LEVEL, 0, 0, NULL, "`debug`, `info`, `warn` or `error`", "`info`",
     "Lowest level logged. `run --log-level` overrides it."},
};

/* Variables with the prefix that are not settings: the CLI's data folder, and
 * the keyring commands' passphrase (ps_passphrase.h), which `run` does not read. */
static const char *const env_not_settings[] = {"PSEUDOSTREAM_DATA_DIR",
                                               "PSEUDOSTREAM_KEYRING_PASSPHRASE"};

/* PSEUDOSTREAM_ + the path upper-cased, '.' as '_'; NULL for settings that
 * the environment cannot set (lists of mappings). */
static const char *setting_env_name(const struct setting *s, char *buf, size_t size)
{
    if (s->kind == SK_SCHEMA_FILE || s->kind == SK_SCHEMA_ID) {
        return NULL;
    }
    size_t n = (size_t)snprintf(buf, size, "%s", ENV_PREFIX);
    for (const char *p = s->path; *p && n + 1 < size; p++) {
        buf[n++] = *p == '.' ? '_' : (char)((*p >= 'a' && *p <= 'z') ? *p - 'a' + 'A' : *p);
    }
    buf[n < size ? n : size - 1] = '\0';
    if (s->kind == SK_PROPERTIES) {
        snprintf(buf + n, size - n, "_<NAME>");
    }
    return buf;
}

static char **field_str(struct ps_config *conf, const struct setting *s)
{
    return (char **)((char *)conf + s->offset);
}

static const char *field_cstr(const struct ps_config *conf, const struct setting *s)
{
    return *(char *const *)((const char *)conf + s->offset);
}

static uint64_t field_number(const struct ps_config *conf, const struct setting *s)
{
    const char *p = (const char *)conf + s->offset;
    if (s->width == 4) {
        uint32_t v;
        memcpy(&v, p, sizeof(v));
        return v;
    }
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/* ---------------------------------------------------------- environment */

static const char *env_lookup(const char *const *envp, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; envp[i]; i++) {
        if (strncmp(envp[i], name, len) == 0 && envp[i][len] == '=') {
            return envp[i] + len + 1;
        }
    }
    return NULL;
}

static ps_err_t env_replace(char **slot, const char *value, struct ps_error *err)
{
    char *copy = strdup(value);
    if (!copy) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory applying the environment");
    }
    free(*slot);
    *slot = copy;
    return PS_OK;
}

static ps_err_t env_topics(struct ps_config *conf, const char *var, const char *value,
                           struct ps_error *err)
{
    size_t count = 1;
    for (const char *p = value; *p; p++) {
        count += *p == ',';
    }
    char **topics = calloc(count, sizeof(*topics));
    if (!topics) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory applying the environment");
    }
    const char *start = value;
    for (size_t i = 0; i < count; i++) {
        const char *end = strchr(start, ',');
        size_t len = end ? (size_t)(end - start) : strlen(start);
        topics[i] = len ? strndup(start, len) : NULL;
        if (!topics[i]) {
            for (size_t j = 0; j < i; j++) {
                free(topics[j]);
            }
            free(topics);
            return len ? ps_error_set(err, PS_ERR_NOMEM, "out of memory applying the environment")
                       : ps_error_set(err, PS_ERR_CONFIG,
                                      "%s has an empty topic name (write topic,topic,...)", var);
        }
        start = end ? end + 1 : start + len;
    }
    for (size_t i = 0; i < conf->input_topic_count; i++) {
        free(conf->input_topics[i]);
    }
    free(conf->input_topics);
    conf->input_topics = topics;
    conf->input_topic_count = count;
    return PS_OK;
}

static int strval_index(const cyaml_strval_t *strvals, size_t count, const char *value)
{
    for (size_t i = 0; i < count; i++) {
        if (strcmp(strvals[i].str, value) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* Applies one setting's variable. Messages name the variable and the setting,
 * never the value (it may be a secret put in the wrong variable). */
static ps_err_t env_apply_setting(struct ps_config *conf, const struct setting *s,
                                  const char *var, const char *value, struct ps_error *err)
{
    uint64_t v = 0;
    int i = 0;
    if (s->kind != SK_LISTEN && value[0] == '\0') {
        return ps_error_set(err, PS_ERR_CONFIG, "%s (%s) is empty (unset it to keep the file's "
                            "value)", var, s->path);
    }
    if (strncmp(s->path, "opt_out.", 8) == 0) {
        conf->opt_out.configured = 1;
    }
    switch (s->kind) {
    case SK_STRING:
    case SK_PATH:
        return env_replace(field_str(conf, s), value, err);
    case SK_NUMBER:
        if (ps_yaml_parse_uint(value, s->number->min, s->number->max, &v) != 0) {
            return ps_error_set(err, PS_ERR_CONFIG,
                                "%s (%s) must be a whole number from %llu to %llu in plain "
                                "digits, with no sign, unit or leading zero (e.g. %s=%llu)",
                                var, s->path, (unsigned long long)s->number->min,
                                (unsigned long long)s->number->max, var,
                                (unsigned long long)s->number->example);
        }
        if (s->width == 4) {
            uint32_t v32 = (uint32_t)v;
            memcpy((char *)conf + s->offset, &v32, sizeof(v32));
        } else {
            memcpy((char *)conf + s->offset, &v, sizeof(v));
        }
        return PS_OK;
    case SK_MODE:
        if ((i = strval_index(mode_strvals, N(mode_strvals), value)) < 0) {
            return ps_error_set(err, PS_ERR_CONFIG, "%s (%s) must be transactional or "
                                "at_least_once", var, s->path);
        }
        conf->delivery.mode = (enum ps_delivery_mode)mode_strvals[i].val;
        return PS_OK;
    case SK_LOG_LEVEL:
        if ((i = strval_index(log_level_strvals, N(log_level_strvals), value)) < 0) {
            return ps_error_set(err, PS_ERR_CONFIG, "%s (%s) must be debug, info, warn or error",
                                var, s->path);
        }
        return env_replace(&conf->log_level, log_level_strvals[i].str, err);
    case SK_OPTOUT_FORM:
        if ((i = strval_index(optout_form_strvals, N(optout_form_strvals), value)) < 0) {
            return ps_error_set(err, PS_ERR_CONFIG, "%s (%s) must be cleared or opted_out", var,
                                s->path);
        }
        conf->opt_out.form = (enum ps_config_optout_form)optout_form_strvals[i].val;
        return PS_OK;
    case SK_OPTOUT_AS_OF:
        if (ps_time_parse_iso(value, &conf->opt_out.as_of_ms) != PS_OK) {
            return ps_error_set(err, PS_ERR_CONFIG, "%s (%s) is not an ISO 8601 date or instant "
                                "(e.g. 2026-11-20T06:00:00Z)", var, s->path);
        }
        return PS_OK;
    case SK_TOPICS:
        return env_topics(conf, var, value, err);
    case SK_LISTEN:
        if (!listen_ok(value)) {
            return ps_error_set(err, PS_ERR_CONFIG, "%s (%s) must be " LISTEN_FIX, var, s->path);
        }
        if (value[0] == '\0') {
            free(conf->metrics.listen);
            conf->metrics.listen = NULL;
            return PS_OK;
        }
        return env_replace(&conf->metrics.listen, value, err);
    case SK_PASSPHRASE: {
        char *secret = NULL;
        ps_err_t rc = read_secret_file(var, value, &secret, err);
        if (rc == PS_OK) {
            rc = env_replace(&conf->keyring_passphrase_file, value, err);
        }
        if (rc != PS_OK) {
            wipe_free(secret);
            return rc;
        }
        wipe_free(conf->keyring_passphrase);
        conf->keyring_passphrase = secret;
        return PS_OK;
    }
    case SK_PROPERTIES:
    case SK_SCHEMA_FILE:
    case SK_SCHEMA_ID:
        break;
    }
    return PS_OK;
}

/* PSEUDOSTREAM_KAFKA_PROPERTIES_SASL_PASSWORD_FILE -> sasl.password_file */
static ps_err_t env_apply_property(struct ps_config *conf, const char *var, size_t var_len,
                                   const char *value, struct ps_error *err)
{
    char key[256];
    const char *name = var + strlen(ENV_PROPERTY_PREFIX);
    size_t len = var_len - strlen(ENV_PROPERTY_PREFIX);
    size_t suffix_len = strlen(FILE_SUFFIX);
    int file_form = len > suffix_len && memcmp(name + len - suffix_len, "_FILE", suffix_len) == 0;
    size_t base_len = file_form ? len - suffix_len : len;
    if (base_len == 0 || len >= sizeof(key)) {
        return ps_error_set(err, PS_ERR_CONFIG, "%.*s names no kafka property (write "
                            "PSEUDOSTREAM_KAFKA_PROPERTIES_<NAME>, e.g. "
                            "PSEUDOSTREAM_KAFKA_PROPERTIES_SECURITY_PROTOCOL)",
                            (int)var_len, var);
    }
    for (size_t i = 0; i < base_len; i++) {
        char c = name[i];
        key[i] = c == '_' ? '.' : (char)((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
    }
    memcpy(key + base_len, FILE_SUFFIX, file_form ? suffix_len : 0);
    key[base_len + (file_form ? suffix_len : 0)] = '\0';
    char origin[300];
    snprintf(origin, sizeof(origin), "%.*s:", (int)var_len, var);
    return property_put_maybe_file(conf, origin, key, strlen(key), value, err);
}

static ps_err_t apply_env(struct ps_config *conf, const char *const *envp, struct ps_error *err)
{
    char name[128];
    ps_err_t rc = PS_OK;
    size_t prefix_len = strlen(ENV_PREFIX);

    /* First refuse what names nothing, so a typo is never silently ignored. */
    for (size_t i = 0; envp[i]; i++) {
        const char *eq = strchr(envp[i], '=');
        size_t len = eq ? (size_t)(eq - envp[i]) : strlen(envp[i]);
        int known = strncmp(envp[i], ENV_PREFIX, prefix_len) != 0 ||
                    strncmp(envp[i], ENV_PROPERTY_PREFIX, strlen(ENV_PROPERTY_PREFIX)) == 0;
        for (size_t j = 0; !known && j < N(env_not_settings); j++) {
            known = strlen(env_not_settings[j]) == len &&
                    memcmp(envp[i], env_not_settings[j], len) == 0;
        }
        for (size_t j = 0; !known && j < N(settings); j++) {
            const char *env = setting_env_name(&settings[j], name, sizeof(name));
            known = env && settings[j].kind != SK_PROPERTIES && strlen(env) == len &&
                    memcmp(envp[i], env, len) == 0;
        }
        if (!known) {
            return ps_error_set(err, PS_ERR_CONFIG,
                                "environment variable %.*s names no setting (the rule: "
                                "PSEUDOSTREAM_ + the setting's path upper-cased with '.' as '_'; "
                                "docs/CONFIGURATION.md lists them)",
                                (int)len, envp[i]);
        }
    }
    /* Settings in the table's order, then properties in the environment's. */
    for (size_t j = 0; j < N(settings); j++) {
        const char *env = setting_env_name(&settings[j], name, sizeof(name));
        const char *value = NULL;
        if (!env || settings[j].kind == SK_PROPERTIES || !(value = env_lookup(envp, env))) {
            continue;
        }
        if ((rc = env_apply_setting(conf, &settings[j], env, value, err)) != PS_OK) {
            return rc;
        }
    }
    for (size_t i = 0; envp[i]; i++) {
        const char *eq = strchr(envp[i], '=');
        if (eq && strncmp(envp[i], ENV_PROPERTY_PREFIX, strlen(ENV_PROPERTY_PREFIX)) == 0 &&
            (rc = env_apply_property(conf, envp[i], (size_t)(eq - envp[i]), eq + 1, err)) !=
                PS_OK) {
            return rc;
        }
    }
    if (conf->opt_out.configured && !conf->opt_out.file && !conf->opt_out.topic) {
        return ps_error_set(err, PS_ERR_CONFIG,
                            "opt_out names no source (set PSEUDOSTREAM_OPT_OUT_FILE and/or "
                            "PSEUDOSTREAM_OPT_OUT_TOPIC, or opt_out.file/topic in the file)");
    }
    return PS_OK;
}

/* ----------------------------------------------------------------- dump */

/* YAML double-quoted scalar: always quoted, so that no value changes type. */
static void dump_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            fprintf(out, "\\%c", c);
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(out, "\\x%02x", c);
        } else {
            fputc(c, out);
        }
    }
    fputc('"', out);
}

static void dump_key(FILE *out, const char *path, char *section, size_t section_size)
{
    const char *dot = strchr(path, '.');
    const char *bracket = strchr(path, '[');
    if (bracket && (!dot || bracket < dot)) {
        dot = NULL;
    }
    if (!dot) {
        section[0] = '\0';
        fprintf(out, "%s:", path);
        return;
    }
    size_t len = (size_t)(dot - path);
    if (strlen(section) != len || strncmp(section, path, len) != 0) {
        snprintf(section, section_size, "%.*s", (int)len, path);
        fprintf(out, "%s:\n", section);
    }
    fprintf(out, "  %s:", dot + 1);
}

static void dump_setting(const struct ps_config *conf, const struct setting *s, FILE *out,
                         char *section, size_t section_size)
{
    const char *str = NULL;
    char when[40];
    if (strncmp(s->path, "opt_out.", 8) == 0 && !conf->opt_out.configured) {
        return;
    }
    switch (s->kind) {
    case SK_STRING:
    case SK_PATH:
    case SK_LISTEN:
    case SK_PASSPHRASE:
        /* The passphrase's path is not secret; its content is never kept here. */
        if ((str = field_cstr(conf, s)) != NULL) {
            dump_key(out, s->path, section, section_size);
            fputc(' ', out);
            dump_str(out, str);
            fputc('\n', out);
        }
        break;
    case SK_NUMBER:
        dump_key(out, s->path, section, section_size);
        fprintf(out, " %llu\n", (unsigned long long)field_number(conf, s));
        break;
    case SK_MODE:
        dump_key(out, s->path, section, section_size);
        fprintf(out, " %s\n", mode_strvals[conf->delivery.mode].str);
        break;
    case SK_LOG_LEVEL:
        if (conf->log_level) {
            dump_key(out, s->path, section, section_size);
            fprintf(out, " %s\n", conf->log_level);
        }
        break;
    case SK_OPTOUT_FORM:
        dump_key(out, s->path, section, section_size);
        fprintf(out, " %s\n", optout_form_strvals[conf->opt_out.form].str);
        break;
    case SK_OPTOUT_AS_OF:
        if (conf->opt_out.as_of_ms != 0) {
            ps_time_format_iso(conf->opt_out.as_of_ms, when, sizeof(when));
            dump_key(out, s->path, section, section_size);
            fprintf(out, " \"%s\"\n", when);
        }
        break;
    case SK_TOPICS:
        dump_key(out, s->path, section, section_size);
        fputs(" [", out);
        for (size_t i = 0; i < conf->input_topic_count; i++) {
            fputs(i ? ", " : "", out);
            dump_str(out, conf->input_topics[i]);
        }
        fputs("]\n", out);
        break;
    case SK_PROPERTIES:
        if (conf->kafka.property_count == 0) {
            break;
        }
        dump_key(out, s->path, section, section_size);
        fputc('\n', out);
        for (size_t i = 0; i < conf->kafka.property_count; i++) {
            const struct ps_config_property *p = &conf->kafka.properties[i];
            fputs("    ", out);
            dump_str(out, p->key);
            fputs(": ", out);
            dump_str(out, p->secret ? "[redacted]" : p->value);
            fputc('\n', out);
        }
        break;
    case SK_SCHEMA_FILE:
        if (conf->schema_count == 0) {
            break;
        }
        section[0] = '\0';
        fputs("schemas:\n", out);
        for (size_t i = 0; i < conf->schema_count; i++) {
            fputs("  - file: ", out);
            dump_str(out, conf->schemas[i].file);
            fputc('\n', out);
            if (conf->schemas[i].id >= 0) {
                fprintf(out, "    id: %lld\n", (long long)conf->schemas[i].id);
            }
        }
        break;
    case SK_SCHEMA_ID:
        break; /* written with schemas[].file */
    }
}

ps_err_t ps_config_dump(const struct ps_config *conf, FILE *out, struct ps_error *err)
{
    char section[64] = "";
    if (!conf || !out) {
        return ps_error_set(err, PS_ERR_INVALID, "ps_config_dump: conf and out are required");
    }
    fputs("# pseudostream: the effective configuration (file, then PSEUDOSTREAM_* environment,\n"
          "# then -X); secrets are written [redacted].\n",
          out);
    for (size_t i = 0; i < N(settings); i++) {
        dump_setting(conf, &settings[i], out, section, sizeof(section));
    }
    if (ferror(out)) {
        return ps_error_set(err, PS_ERR_IO, "could not write the configuration dump");
    }
    return PS_OK;
}

/* ----------------------------------------------------------------- docs */

struct walk {
    const char *paths[128];
    char storage[128][96];
    size_t count;
};

static void walk_fields(const cyaml_schema_field_t *fields, const char *prefix, struct walk *w)
{
    for (const cyaml_schema_field_t *f = fields; f->key; f++) {
        char path[96];
        snprintf(path, sizeof(path), "%s%s", prefix, f->key);
        if (f->value.type == CYAML_MAPPING) {
            char next[96];
            snprintf(next, sizeof(next), "%s.", path);
            walk_fields(f->value.mapping.fields, next, w);
        } else if (f->value.type == CYAML_SEQUENCE &&
                   f->value.sequence.entry->type == CYAML_MAPPING) {
            char next[96];
            snprintf(next, sizeof(next), "%s[].", path);
            walk_fields(f->value.sequence.entry->mapping.fields, next, w);
        } else if (w->count < N(w->paths)) {
            snprintf(w->storage[w->count], sizeof(w->storage[0]), "%s", path);
            w->paths[w->count] = w->storage[w->count];
            w->count++;
        }
    }
}

static ps_err_t check_table(struct ps_error *err)
{
    static struct walk w;
    w.count = 0;
    walk_fields(config_fields, "", &w);
    for (size_t i = 0; i < w.count; i++) {
        size_t j = 0;
        while (j < N(settings) && strcmp(settings[j].path, w.paths[i]) != 0) {
            j++;
        }
        if (j == N(settings)) {
            return ps_error_set(err, PS_ERR_INVALID,
                                "the configuration key '%s' has no row in the settings table "
                                "(filter/config/ps_config.c)",
                                w.paths[i]);
        }
    }
    for (size_t j = 0; j < N(settings); j++) {
        size_t i = 0;
        while (i < w.count && strcmp(settings[j].path, w.paths[i]) != 0) {
            i++;
        }
        if (i == w.count) {
            return ps_error_set(err, PS_ERR_INVALID,
                                "the settings table's row '%s' is not a key of the libcyaml "
                                "schema (filter/config/ps_config.c)",
                                settings[j].path);
        }
    }
    return PS_OK;
}

ps_err_t ps_config_docs_write(FILE *out, struct ps_error *err)
{
    char env[128];
    ps_err_t rc = check_table(err);
    if (rc != PS_OK) {
        return rc;
    }
    fputs("# Configuration\n\n"
          "<!-- Generated by tests/tools/gen_config_docs from the settings table in\n"
          "     filter/config/ps_config.c; edit the table, then run\n"
          "     `cmake --build build --target config_docs`. A test fails when this file\n"
          "     differs from what the table generates. -->\n\n"
          "`pseudostream run -c FILE` reads one YAML file. Unknown keys are errors, reported with\n"
          "file:line:column; numbers are plain digits only (`30s`, `010`, `+5` and `1e3` are\n"
          "refused); relative paths are taken from the configuration file's folder.\n"
          "`pseudostream run -c FILE --dump-config` prints the effective configuration with\n"
          "every secret written `[redacted]`, and exits.\n\n"
          "## Precedence\n\n"
          "1. the file;\n"
          "2. the environment: **`PSEUDOSTREAM_` followed by the setting's path\n"
          "   upper-cased, with every `.` written `_`** (the only rule), e.g.\n"
          "   `PSEUDOSTREAM_KAFKA_BOOTSTRAP_SERVERS`, `PSEUDOSTREAM_DELIVERY_BATCH_MAX_EVENTS`;\n"
          "   lists are comma-separated; paths are taken\n"
          "   from the working directory. A `PSEUDOSTREAM_` variable that names no setting is an\n"
          "   error, so a typo is never ignored (the exceptions: `PSEUDOSTREAM_DATA_DIR`, read by\n"
          "   the CLI, and `PSEUDOSTREAM_KEYRING_PASSPHRASE`, read by the keyring commands);\n"
          "3. for librdkafka properties, `-X name=value` on the command line.\n\n"
          "## Secrets\n\n"
          "Any librdkafka property may be written `<name>_file: PATH` (in the file, as\n"
          "`PSEUDOSTREAM_KAFKA_PROPERTIES_<NAME>_FILE`, or as `-X <name>_file=PATH`): its value\n"
          "is read from PATH with one trailing newline removed, which is how Docker and\n"
          "Kubernetes mount secrets. Writing both `<name>` and `<name>_file` is an error. The\n"
          "keyring passphrase exists only in the file form (`keyring_passphrase_file`).\n"
          "Values read from files, and properties whose name holds `password` or `secret` (or is\n"
          "`ssl.key.pem`, `sasl.oauthbearer.config`), are wiped from memory when freed, never\n"
          "appear in an error message and are dumped as `[redacted]`.\n\n"
          "## Kafka properties from the environment\n\n"
          "`PSEUDOSTREAM_KAFKA_PROPERTIES_<NAME>`: NAME is lower-cased and each `_` read as `.`\n"
          "(no string-valued librdkafka property has `_` in its name); a final `_FILE` asks for\n"
          "the file form. `PSEUDOSTREAM_KAFKA_PROPERTIES_SASL_PASSWORD_FILE=/run/secrets/kafka`\n"
          "sets `sasl.password` from that file.\n\n"
          "## Settings\n\n"
          "| Setting | Environment | Type | Default | Description |\n"
          "|---|---|---|---|---|\n",
          out);
    for (size_t i = 0; i < N(settings); i++) {
        const struct setting *s = &settings[i];
        const char *name = setting_env_name(s, env, sizeof(env));
        fprintf(out, "| `%s` | %s%s%s | %s | %s | %s", s->path, name ? "`" : "",
                name ? name : "none", name ? "`" : "", s->type, s->default_text, s->doc);
        if (s->number) {
            fprintf(out, " From %llu to %llu.", (unsigned long long)s->number->min,
                    (unsigned long long)s->number->max);
        }
        fputs(" |\n", out);
    }
    fputs("\n## Example: SASL/SCRAM over TLS, secrets from files\n\n"
          "```yaml\n"
          "kafka:\n"
          "  bootstrap_servers: \"kafka-0.kafka:9093,kafka-1.kafka:9093\"\n"
          "  properties:\n"
          "    security.protocol: SASL_SSL\n"
          "    sasl.mechanism: SCRAM-SHA-512\n"
          "    sasl.username: pseudostream\n"
          "    sasl.password_file: /run/secrets/kafka/password\n"
          "    ssl.ca.location: /run/secrets/kafka/ca.crt\n"
          "metrics:\n"
          "  listen: \"0.0.0.0:9464\"\n"
          "```\n\n"
          "Debian's librdkafka has SASL PLAIN, SCRAM and GSSAPI (Kerberos) and TLS client\n"
          "certificates (`ssl.certificate.location`, `ssl.key.location`,\n"
          "`ssl.key.password_file`);\n"
          "it has no OIDC (`sasl.oauthbearer.method=oidc`).\n",
          out);
    if (ferror(out)) {
        return ps_error_set(err, PS_ERR_IO, "could not write the settings documentation");
    }
    return PS_OK;
}

ps_err_t ps_config_load(const char *path, struct ps_config **conf_p, struct ps_error *err)
{
    extern char **environ;
    return ps_config_load_env(path, (const char *const *)environ, conf_p, err);
}

ps_err_t ps_config_load_env(const char *path, const char *const *envp,
                            struct ps_config **conf_p, struct ps_error *err)
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
    if (envp && (rc = apply_env(conf, envp, err)) != PS_OK) {
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
    free(conf->audit_topic);
    free(conf->escrow_topic);
    free(conf->opt_out.file);
    free(conf->opt_out.topic);
    for (size_t i = 0; i < conf->schema_count; i++) {
        free(conf->schemas[i].file);
    }
    free(conf->schemas);
    free(conf->policy_file);
    free(conf->keyring_file);
    free(conf->keyring_passphrase_file);
    wipe_free(conf->keyring_passphrase);
    free(conf->metrics.listen);
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
    return property_put_maybe_file(conf, "-X", assignment, (size_t)(eq - assignment), eq + 1,
                                   err);
}
