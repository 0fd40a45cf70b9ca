/*
 * The shared set-up of the in-process fault tests (fault_harness.h).
 */
#include "fault_harness.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ps_generate.h"
#include "ps_log.h"
#include "ps_registry.h"

static const char *const topics[][2] = {
    {FAULT_INPUT, "6"},          {FAULT_WARD, "6"},  {"commissioning.events", "6"},
    {"research.events", "6"},    {FAULT_DLQ, "3"},   {FAULT_AUDIT, "6"},
    {"pseudostream.escrow", "3"}, {"pseudostream.opt-out", "1"},
};

void fault_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static ps_err_t write_file(const char *path, const char *text, struct ps_error *err)
{
    FILE *fp = fopen(path, "w");
    if (!fp) {
        return ps_error_set(err, PS_ERR_IO, "%s: cannot write", path);
    }
    fputs(text, fp);
    fclose(fp);
    return PS_OK;
}

ps_err_t fault_env_setup(struct fault_env *env, int transactional, struct ps_error *err)
{
    char path[192];
    char text[4096];
    const char *src = getenv("PS_SOURCE_DIR") ? getenv("PS_SOURCE_DIR") : PS_SOURCE_DIR;
    memset(env, 0, sizeof(*env));
    env->transactional = transactional;
    snprintf(env->dir, sizeof(env->dir), "/tmp/pseudostream-fault-XXXXXX");
    if (!mkdtemp(env->dir)) {
        return ps_error_set(err, PS_ERR_IO, "mkdtemp failed");
    }
    ps_err_t rc = ps_kafka_broker_new(3, &env->broker, err);
    if (rc != PS_OK) {
        return rc;
    }
    env->bootstraps = ps_kafka_broker_bootstraps(env->broker);
    for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
        rc = ps_kafka_broker_topic_create(env->broker, topics[i][0], atoi(topics[i][1]), err);
        if (rc != PS_OK) {
            return rc;
        }
    }
    /* A fixed, artificial secret. */
    snprintf(path, sizeof(path), "%s/keyring.yaml", env->dir);
    rc = write_file(path,
                    "keys:\n  - id: 1\n    not_before: \"2020-01-01T00:00:00Z\"\n"
                    "    secret: \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"\n",
                    err);
    if (rc != PS_OK) {
        return rc;
    }
    chmod(path, 0600);
    /* An empty cleared list: secondary use receives nothing (fail closed);
     * the ward (direct care) receives every valid event, which is what the
     * no-loss checks count. */
    snprintf(path, sizeof(path), "%s/optout.dat", env->dir);
    rc = write_file(path, "", err);
    if (rc != PS_OK) {
        return rc;
    }
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char as_of[32];
    strftime(as_of, sizeof(as_of), "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(text, sizeof(text),
             "kafka:\n"
             "  bootstrap_servers: \"%s\"\n"
             "  group_id: pseudostream-fault\n"
             "  transactional_id: pseudostream-fault-0\n"
             "  properties:\n"
             "    session.timeout.ms: \"6000\"\n"
             "    heartbeat.interval.ms: \"500\"\n"
             "input:\n"
             "  topics: [" FAULT_INPUT "]\n"
             "dead_letter_topic: " FAULT_DLQ "\n"
             "audit_topic: " FAULT_AUDIT "\n"
             "opt_out:\n"
             "  file: \"%s/optout.dat\"\n"
             "  form: cleared\n"
             "  as_of: \"%s\"\n"
             "  max_age_hours: 24\n"
             "schemas:\n"
             "  - file: \"%s/schemas/hl7v2/hl7v2_event.avsc\"\n"
             "    id: 1\n"
             "  - file: \"%s/schemas/fhir/fhir_event.avsc\"\n"
             "    id: 2\n"
             "policy: \"%s/policy/demo.yaml\"\n"
             "keyring: \"%s/keyring.yaml\"\n"
             "delivery:\n"
             "  mode: %s\n"
             "  batch_max_events: 500\n"
             "  transaction_interval_ms: 200\n",
             env->bootstraps, env->dir, as_of, src, src, src, env->dir,
             transactional ? "transactional" : "at_least_once");
    snprintf(env->config, sizeof(env->config), "%s/config.yaml", env->dir);
    rc = write_file(env->config, text, err);
    if (rc != PS_OK) {
        return rc;
    }
    return ps_runtime_open(env->config, NULL, 0, &env->rt, err);
}

void fault_env_teardown(struct fault_env *env)
{
    char cmd[128];
    ps_runtime_close(env->rt);
    env->rt = NULL;
    ps_kafka_broker_destroy(env->broker);
    env->broker = NULL;
    if (env->dir[0] && !getenv("PS_KEEP_TMP")) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", env->dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "could not remove %s\n", env->dir);
        }
    }
}

ps_err_t fault_env_produce(struct fault_env *env, size_t count, size_t malformed_rounds,
                           uint64_t seed, struct ps_error *err)
{
    const struct ps_registry *reg = env->rt->reg;
    struct ps_generate_options opt = {
        .bootstraps = env->bootstraps,
        .topic = FAULT_INPUT,
        .count = count,
        .malformed_rounds = malformed_rounds,
        .format = PS_FRAME_CONFLUENT,
        .hl7v2 = ps_registry_by_id(reg, 1),
        .fhir = ps_registry_by_id(reg, 2),
        .hl7v2_id = 1,
        .fhir_id = 2,
        .seed = seed,
        .patients = 200,
    };
    struct ps_generate_stats stats;
    return ps_generate_run(&opt, &stats, err);
}

ps_err_t fault_env_produce_raw(struct fault_env *env, const char *key, const void *value,
                               size_t len, struct ps_error *err)
{
    struct ps_kafka_producer *producer = NULL;
    ps_err_t rc = ps_kafka_producer_new(env->bootstraps, NULL, NULL, 0, &producer, err);
    if (rc == PS_OK) {
        rc = ps_kafka_producer_send(producer, FAULT_INPUT, -1, key, strlen(key), value, len,
                                    NULL, 0, err);
    }
    if (rc == PS_OK) {
        rc = ps_kafka_producer_flush(producer, 10000, err);
    }
    ps_kafka_producer_destroy(producer);
    return rc;
}

ps_err_t fault_env_run(struct fault_env *env, size_t batch_max, int interval_ms, int idle_ms,
                       void (*hook)(void *, enum ps_pipeline_point, uint64_t), void *opaque,
                       struct ps_pipeline_stats *stats, struct ps_error *err)
{
    struct ps_pipeline_options opt;
    ps_runtime_pipeline_options(env->rt, &opt);
    opt.batch_max_events = batch_max;
    opt.transaction_interval_ms = interval_ms;
    opt.idle_exit_ms = idle_ms;
    opt.fault_hook = hook;
    opt.fault_opaque = opaque;
    opt.commit_timeout_ms = env->commit_timeout_ms;
    return ps_pipeline_run(env->rt->engine, &opt, stats, err);
}

/* ------------------------------------------------------------ checking */

struct strset {
    char **v;
    size_t n;
    size_t cap;
};

static int strset_add(struct strset *set, const char *s, size_t len)
{
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 1024;
        char **v = realloc(set->v, cap * sizeof(*v));
        if (!v) {
            return -1;
        }
        set->v = v;
        set->cap = cap;
    }
    set->v[set->n] = strndup(s, len);
    return set->v[set->n++] ? 0 : -1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts and removes duplicates; returns how many were removed. */
static size_t strset_finish(struct strset *set)
{
    if (set->n == 0) {
        return 0;
    }
    qsort(set->v, set->n, sizeof(*set->v), cmp_str);
    size_t kept = 1;
    for (size_t i = 1; i < set->n; i++) {
        if (strcmp(set->v[i], set->v[kept - 1]) == 0) {
            free(set->v[i]);
            continue;
        }
        set->v[kept++] = set->v[i];
    }
    size_t removed = set->n - kept;
    set->n = kept;
    return removed;
}

static int strset_has(const struct strset *set, const char *s)
{
    return set->n && bsearch(&s, set->v, set->n, sizeof(*set->v), cmp_str) != NULL;
}

static void strset_free(struct strset *set)
{
    for (size_t i = 0; i < set->n; i++) {
        free(set->v[i]);
    }
    free(set->v);
    memset(set, 0, sizeof(*set));
}

const struct ps_kafka_header *fault_header(const struct ps_kafka_message *msg, const char *name)
{
    for (size_t i = 0; i < msg->header_count; i++) {
        if (strcmp(msg->headers[i].name, name) == 0) {
            return &msg->headers[i];
        }
    }
    return NULL;
}

/* Collects the input coordinates (lineage source) of every record of topic. */
static ps_err_t read_sources(struct fault_env *env, const char *topic, struct strset *set,
                             size_t *records_p, size_t *no_reason_p, struct ps_error *err)
{
    struct ps_kafka_reader *reader = NULL;
    ps_err_t rc = ps_kafka_reader_new(env->bootstraps, topic, NULL, 0, &reader, err);
    while (rc == PS_OK) {
        const struct ps_kafka_message *msg = NULL;
        rc = ps_kafka_reader_next(reader, 10000, &msg, err);
        if (rc != PS_OK) {
            break;
        }
        /* The audit topic's plan records (key plan/<id>) are not per event. */
        if (msg->key && msg->key_len > 5 && memcmp(msg->key, "plan/", 5) == 0) {
            continue;
        }
        (*records_p)++;
        const char *src = NULL;
        size_t src_len = 0;
        if (ps_pipeline_output_source(msg, &src, &src_len) &&
            strset_add(set, src, src_len) != 0) {
            rc = ps_error_set(err, PS_ERR_NOMEM, "out of memory");
        }
        const struct ps_kafka_header *reason = fault_header(msg, "pseudostream.reason");
        if (no_reason_p && (!reason || reason->len == 0)) {
            (*no_reason_p)++;
        }
    }
    ps_kafka_reader_destroy(reader);
    return rc == PS_ERR_STOPPED ? PS_OK : rc;
}

ps_err_t fault_env_check(struct fault_env *env, struct fault_report *report,
                         struct ps_error *err)
{
    struct strset ward = {0}, dlq = {0};
    struct ps_kafka_reader *reader = NULL;
    memset(report, 0, sizeof(*report));
    ps_err_t rc = read_sources(env, FAULT_WARD, &ward, &report->ward_records, NULL, err);
    if (rc == PS_OK) {
        rc = read_sources(env, FAULT_DLQ, &dlq, &report->dlq_records, &report->dlq_without_reason,
                          err);
    }
    if (rc == PS_OK) {
        struct strset audit = {0};
        rc = read_sources(env, FAULT_AUDIT, &audit, &report->audit_records, NULL, err);
        strset_free(&audit);
    }
    report->duplicates = strset_finish(&ward) + strset_finish(&dlq);
    if (rc == PS_OK) {
        rc = ps_kafka_reader_new(env->bootstraps, FAULT_INPUT, NULL, 0, &reader, err);
    }
    while (rc == PS_OK) {
        const struct ps_kafka_message *msg = NULL;
        rc = ps_kafka_reader_next(reader, 10000, &msg, err);
        if (rc != PS_OK) {
            break;
        }
        char source[300];
        snprintf(source, sizeof(source), "%s/%" PRId32 "/%" PRId64, msg->topic, msg->partition,
                 msg->offset);
        int bad = msg->key && ((msg->key_len == 9 && memcmp(msg->key, "malformed", 9) == 0) ||
                               (msg->key_len >= 6 && memcmp(msg->key, "poison", 6) == 0));
        report->inputs++;
        if (bad) {
            report->malformed++;
            report->missing_dlq += !strset_has(&dlq, source);
        } else {
            report->missing_ward += !strset_has(&ward, source);
        }
    }
    ps_kafka_reader_destroy(reader);
    strset_free(&ward);
    strset_free(&dlq);
    return rc == PS_ERR_STOPPED ? PS_OK : rc;
}

ps_err_t fault_env_read(struct fault_env *env, const char *topic,
                        void (*fn)(void *opaque, const struct ps_kafka_message *msg),
                        void *opaque, struct ps_error *err)
{
    struct ps_kafka_reader *reader = NULL;
    ps_err_t rc = ps_kafka_reader_new(env->bootstraps, topic, NULL, 0, &reader, err);
    while (rc == PS_OK) {
        const struct ps_kafka_message *msg = NULL;
        rc = ps_kafka_reader_next(reader, 10000, &msg, err);
        if (rc == PS_OK) {
            fn(opaque, msg);
        }
    }
    ps_kafka_reader_destroy(reader);
    return rc == PS_ERR_STOPPED ? PS_OK : rc;
}

void fault_report_print(const char *name, const struct fault_report *r)
{
    fprintf(stderr,
            "[%s] inputs %zu (malformed %zu); ward %zu records, %zu missing; dead letter %zu "
            "records, %zu missing, %zu without reason; audit %zu; duplicates %zu\n",
            name, r->inputs, r->malformed, r->ward_records, r->missing_ward, r->dlq_records,
            r->missing_dlq, r->dlq_without_reason, r->audit_records, r->duplicates);
}
