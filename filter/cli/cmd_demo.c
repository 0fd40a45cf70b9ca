/*
 * pseudostream demo: the whole path in one process on the embedded broker,
 * with artificial patients, then one event beside what each destination
 * received, and the counts.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cli_decode.h"
#include "ps_generate.h"
#include "ps_log.h"
#include "ps_nhs.h"
#include "ps_pipeline.h"
#include "ps_runtime.h"
#include "ps_schema.h"
#include "ps_secret.h"
#include "ps_synth.h"
#include "ps_time.h"

#define DEMO_INPUT "hospital.events"
#define DEMO_DLQ "pseudostream.dead-letter"
#define DEMO_AUDIT "pseudostream.audit"
#define DEMO_SEED 1
#define DEMO_PATIENTS 400
#define DEMO_COLUMN 25

struct demo {
    struct ps_kafka_broker *broker;
    const char *bootstraps;
    char dir[64];
    char config[128];
    char keyring[128];
    char optout[128];
    size_t opted_out;
    long events;
    struct ps_runtime *rt;
    struct ps_pipeline_stats stats;
};

static void demo_help(void)
{
    printf("usage: pseudostream demo [--events N]\n\n"
           "Starts the embedded development broker, generates N artificial events (default\n"
           "3000, with a few malformed ones), runs the filter with policy/demo.yaml until\n"
           "they are through, then prints one input event beside what each destination\n"
           "received, and a count per destination. Nothing leaves this process.\n");
}

static ps_err_t write_file(const char *path, mode_t mode, const char *text, struct ps_error *err)
{
    FILE *fp = fopen(path, "w");
    if (!fp) {
        return ps_error_set(err, PS_ERR_IO, "cannot write %s", path);
    }
    fchmod(fileno(fp), mode);
    fputs(text, fp);
    fclose(fp);
    return PS_OK;
}

/* The demo's national data opt-out state, in the form NHS England's service
 * returns it: the numbers cleared for use. One patient in twenty is left out,
 * i.e. has opted out. */
static ps_err_t write_optout(struct demo *demo, struct ps_error *err)
{
    struct ps_synth *synth = NULL;
    struct ps_synth_options so = {.seed = DEMO_SEED, .patients = DEMO_PATIENTS};
    ps_err_t rc = ps_synth_new(&so, &synth, err);
    FILE *fp = rc == PS_OK ? fopen(demo->optout, "w") : NULL;
    if (rc == PS_OK && !fp) {
        rc = ps_error_set(err, PS_ERR_IO, "cannot write %s", demo->optout);
    }
    for (size_t i = 0; fp && i < ps_synth_patient_count(synth); i++) {
        if (i % 20 == 7) {
            demo->opted_out++;
        } else {
            fprintf(fp, "%s,\n", ps_synth_nhs_number(synth, i));
        }
    }
    if (fp) {
        fclose(fp);
    }
    ps_synth_destroy(synth);
    return rc;
}

/* A throw-away keyring and a configuration pointing at the demo policy. */
static ps_err_t write_setup(struct demo *demo, struct ps_error *err)
{
    char secret[PS_SECRET_B64_MAX], text[4096], hl7[1024], fhir[1024], policy[1024];
    snprintf(demo->dir, sizeof(demo->dir), "/tmp/pseudostream-demo-XXXXXX");
    if (!mkdtemp(demo->dir)) {
        return ps_error_set(err, PS_ERR_IO, "cannot create a folder in /tmp");
    }
    snprintf(demo->keyring, sizeof(demo->keyring), "%s/keyring.yaml", demo->dir);
    snprintf(demo->config, sizeof(demo->config), "%s/config.yaml", demo->dir);
    snprintf(demo->optout, sizeof(demo->optout), "%s/optout-cleared.dat", demo->dir);
    ps_err_t rc = ps_secret_new_b64(secret, err);
    if (rc != PS_OK) {
        return rc;
    }
    snprintf(text, sizeof(text),
             "# throw-away demo keyring\nkeys:\n  - id: 1\n    not_before: "
             "\"2020-01-01T00:00:00Z\"\n    secret: \"%s\"\n", secret);
    rc = write_file(demo->keyring, 0600, text, err);
    memset(secret, 0, sizeof(secret));
    memset(text, 0, sizeof(text));
    if (rc != PS_OK) {
        return rc;
    }
    if ((rc = write_optout(demo, err)) != PS_OK) {
        return rc;
    }
    cli_data_path("schemas/hl7v2/hl7v2_event.avsc", hl7, sizeof(hl7));
    cli_data_path("schemas/fhir/fhir_event.avsc", fhir, sizeof(fhir));
    cli_data_path("policy/demo.yaml", policy, sizeof(policy));
    snprintf(text, sizeof(text),
             "kafka:\n  bootstrap_servers: \"%s\"\n  group_id: pseudostream-demo\n"
             "  transactional_id: pseudostream-demo-0\ninput:\n  topics: [%s]\n"
             "dead_letter_topic: %s\naudit_topic: %s\n"
             "opt_out:\n  file: \"%s\"\n  form: cleared\n  max_age_hours: 24\n"
             "schemas:\n  - file: \"%s\"\n    id: %d\n"
             "  - file: \"%s\"\n    id: %d\npolicy: \"%s\"\nkeyring: \"%s\"\n"
             "delivery:\n  mode: transactional\n  batch_max_events: 2000\n"
             "  transaction_interval_ms: 200\nlog_level: warn\n",
             demo->bootstraps, DEMO_INPUT, DEMO_DLQ, DEMO_AUDIT, demo->optout, hl7,
             CLI_HL7V2_SCHEMA_ID, fhir,
             CLI_FHIR_SCHEMA_ID, policy, demo->keyring);
    return write_file(demo->config, 0644, text, err);
}

static ps_err_t start(struct demo *demo, struct ps_error *err)
{
    ps_err_t rc = ps_kafka_broker_new(3, &demo->broker, err);
    if (rc != PS_OK) {
        return rc;
    }
    demo->bootstraps = ps_kafka_broker_bootstraps(demo->broker);
    rc = write_setup(demo, err);
    if (rc == PS_OK) {
        rc = ps_runtime_open(demo->config, NULL, 0, &demo->rt, err);
    }
    const char *topics[] = {DEMO_INPUT, DEMO_DLQ, DEMO_AUDIT};
    for (size_t i = 0; rc == PS_OK && i < 3; i++) {
        rc = ps_kafka_broker_topic_create(demo->broker, topics[i], 6, err);
    }
    for (size_t d = 0; rc == PS_OK && d < ps_engine_destination_count(demo->rt->engine); d++) {
        rc = ps_kafka_broker_topic_create(
            demo->broker, ps_engine_destination(demo->rt->engine, d)->topic, 6, err);
    }
    return rc;
}

static ps_err_t generate(struct demo *demo, struct ps_error *err)
{
    struct cli_schemas cs;
    ps_err_t rc = cli_schemas_load(demo->config, &cs, err);
    if (rc != PS_OK) {
        return rc;
    }
    struct ps_generate_options opt = {
        .bootstraps = demo->bootstraps, .topic = DEMO_INPUT, .count = (size_t)demo->events,
        .malformed_rounds = 2, .format = PS_FRAME_CONFLUENT, .hl7v2 = cs.hl7v2, .fhir = cs.fhir,
        .hl7v2_id = cs.hl7v2_id, .fhir_id = cs.fhir_id, .seed = DEMO_SEED,
        .patients = DEMO_PATIENTS};
    struct ps_generate_stats stats;
    rc = ps_generate_run(&opt, &stats, err);
    if (rc == PS_OK) {
        printf("generated %zu artificial events and %zu malformed messages on '%s'\n",
               stats.valid, stats.malformed, DEMO_INPUT);
    }
    cli_schemas_free(&cs);
    return rc;
}

static ps_err_t filter(struct demo *demo, struct ps_error *err)
{
    struct ps_pipeline_options opt;
    ps_runtime_pipeline_options(demo->rt, &opt);
    opt.stop = &cli_stop;
    opt.idle_exit_ms = 2500;
    ps_err_t rc = ps_runtime_optout_catch_up(demo->rt, opt.bootstraps, 60000, err);
    if (rc != PS_OK) {
        return rc;
    }
    printf("running the filter (policy/demo.yaml, one transaction per batch) ...\n");
    fflush(stdout);
    return ps_pipeline_run(demo->rt->engine, &opt, &demo->stats, err);
}

static void format_scalar(const struct ps_schema_node *node, const struct ps_scalar *v,
                          char *buf, size_t size)
{
    switch (v->kind) {
    case PS_SCALAR_NULL:
        snprintf(buf, size, "null");
        break;
    case PS_SCALAR_BOOL:
        snprintf(buf, size, "%s", v->i ? "true" : "false");
        break;
    case PS_SCALAR_INT:
        if (node->logical == PS_LOGICAL_DATE) {
            ps_time_format_date(v->i, buf, size);
        } else if (node->logical == PS_LOGICAL_TIMESTAMP_MILLIS) {
            ps_time_format_iso(v->i, buf, size);
        } else {
            snprintf(buf, size, "%" PRId64, v->i);
        }
        break;
    case PS_SCALAR_DOUBLE:
        snprintf(buf, size, "%g", v->d);
        break;
    case PS_SCALAR_STRING:
        snprintf(buf, size, "%.*s", (int)v->len, v->s);
        break;
    }
    if (strlen(buf) > DEMO_COLUMN - 1) {
        strcpy(buf + DEMO_COLUMN - 4, "...");
    }
}

/* Reads topic until a message whose lineage header names source; decodes it. */
static struct ps_event *find_by_source(struct demo *demo, struct cli_decoder *cd,
                                       const char *topic, const char *source)
{
    struct ps_kafka_reader *reader = NULL;
    struct ps_event *ev = NULL;
    const struct ps_kafka_message *msg;
    if (ps_kafka_reader_new(demo->bootstraps, topic, NULL, 0, &reader, NULL) != PS_OK) {
        return NULL;
    }
    while (!ev && ps_kafka_reader_next(reader, 5000, &msg, NULL) == PS_OK) {
        const char *src = NULL;
        size_t len = 0;
        if (ps_pipeline_output_source(msg, &src, &len) && len == strlen(source) &&
            memcmp(src, source, len) == 0) {
            cli_decoder_decode(cd, msg->value, msg->len, &ev, NULL);
        }
    }
    ps_kafka_reader_destroy(reader);
    return ev;
}

/* The first HL7v2 admission on the input topic of a patient with a valid NHS
 * number who has not opted out, so every destination received it. */
static struct ps_event *pick_input(struct demo *demo, struct cli_decoder *cd, char *source,
                                   size_t size)
{
    struct ps_kafka_reader *reader = NULL;
    struct ps_event *ev = NULL;
    const struct ps_kafka_message *msg;
    if (ps_kafka_reader_new(demo->bootstraps, DEMO_INPUT, NULL, 0, &reader, NULL) != PS_OK) {
        return NULL;
    }
    while (!ev && ps_kafka_reader_next(reader, 5000, &msg, NULL) == PS_OK) {
        struct ps_event *cand = NULL;
        struct ps_scalar type, nhs;
        char digits[PS_NHS_DIGITS + 1];
        if (cli_decoder_decode(cd, msg->value, msg->len, &cand, NULL) != PS_OK ||
            ps_event_schema(cand) != cd->schemas.hl7v2) {
            continue;
        }
        const struct ps_schema *schema = ps_event_schema(cand);
        ps_event_get(cand, ps_schema_find(schema, "msh.message_type"), &type);
        ps_event_get(cand, ps_schema_find(schema, "pid.nhs_number"), &nhs);
        if (type.len == 7 && memcmp(type.s, "ADT^A01", 7) == 0 && nhs.kind != PS_SCALAR_NULL &&
            ps_nhs_normalise(nhs.s, nhs.len, digits, NULL) == PS_OK &&
            ps_optout_cleared(demo->rt->optout, nhs.s, nhs.len)) {
            snprintf(source, size, "%s/%" PRId32 "/%" PRId64, msg->topic, msg->partition,
                     msg->offset);
            ev = cand;
        }
    }
    ps_kafka_reader_destroy(reader);
    return ev;
}

static void print_row(const char *path, char cells[][DEMO_COLUMN + 8], size_t count)
{
    printf("%-34.34s", path);
    for (size_t i = 0; i < count; i++) {
        printf(" %-*.*s", DEMO_COLUMN, DEMO_COLUMN, cells[i]);
    }
    printf("\n");
}

/* One row per field the input carries: its value, and what each destination got. */
static void print_side_by_side(struct demo *demo, struct ps_event *input,
                               struct ps_event **outputs, size_t count)
{
    const struct ps_schema *schema = ps_event_schema(input);
    char cells[1 + PS_PIPELINE_MAX_DESTINATIONS][DEMO_COLUMN + 8];
    snprintf(cells[0], sizeof(cells[0]), "input");
    for (size_t d = 0; d < count; d++) {
        snprintf(cells[d + 1], sizeof(cells[0]), "%s",
                 ps_engine_destination(demo->rt->engine, d)->name);
    }
    print_row("field", cells, count + 1);
    for (int i = 0; i < (int)ps_schema_node_count(schema); i++) {
        const struct ps_schema_node *node = ps_schema_node(schema, i);
        struct ps_scalar v;
        if (node->first_child >= 0 || ps_event_get(input, i, &v) != PS_OK ||
            v.kind == PS_SCALAR_NULL) {
            continue;
        }
        format_scalar(node, &v, cells[0], sizeof(cells[0]));
        for (size_t d = 0; d < count; d++) {
            const struct ps_schema *out_schema = outputs[d] ? ps_event_schema(outputs[d]) : NULL;
            int j = out_schema ? ps_schema_find(out_schema, node->path) : -1;
            if (!outputs[d]) {
                snprintf(cells[d + 1], sizeof(cells[0]), "(withheld)");
            } else if (j < 0) {
                snprintf(cells[d + 1], sizeof(cells[0]), "-");
            } else if (ps_event_get(outputs[d], j, &v) == PS_OK) {
                format_scalar(ps_schema_node(out_schema, j), &v, cells[d + 1], sizeof(cells[0]));
            }
        }
        print_row(node->path, cells, count + 1);
    }
}

static void show_event(struct demo *demo)
{
    struct cli_decoder cd;
    struct ps_error err = {0};
    char source[300];
    if (cli_decoder_open(demo->config, NULL, &cd, &err) != PS_OK) {
        cli_fail(&err);
        return;
    }
    struct ps_event *input = pick_input(demo, &cd, source, sizeof(source));
    size_t count = ps_engine_destination_count(demo->rt->engine);
    struct ps_event *outputs[PS_PIPELINE_MAX_DESTINATIONS] = {0};
    if (input) {
        for (size_t d = 0; d < count; d++) {
            outputs[d] = find_by_source(demo, &cd, ps_engine_destination(demo->rt->engine, d)->topic,
                                        source);
        }
        printf("\none event (%s) as it came in and as each destination received it\n"
               "('-' = the field does not exist in that destination's schema):\n\n", source);
        print_side_by_side(demo, input, outputs, count);
    }
    cli_decoder_close(&cd);
}

static void show_counts(struct demo *demo)
{
    const struct ps_pipeline_stats *st = &demo->stats;
    printf("\n%" PRIu64 " events consumed in %" PRIu64 " transactions\n", st->consumed,
           st->transactions);
    printf("%-16s %-24s %-14s %10s %10s\n", "destination", "topic", "purpose", "received",
           "withheld");
    for (size_t d = 0; d < ps_engine_destination_count(demo->rt->engine); d++) {
        const struct ps_policy_destination *dst = ps_engine_destination(demo->rt->engine, d);
        printf("%-16s %-24s %-14s %10" PRIu64 " %10" PRIu64 "\n", dst->name, dst->topic,
               ps_purpose_name(dst->purpose), st->disclosed[d], st->withheld[d]);
        for (int r = 0; r < 64; r++) {
            if (st->withheld_by_reason[d][r]) {
                printf("    withheld: %-39s %10" PRIu64 "\n", ps_err_name((ps_err_t)r),
                       st->withheld_by_reason[d][r]);
            }
        }
    }
    printf("%-16s %-24s %-14s %10" PRIu64 "\n", "dead-letter", DEMO_DLQ, "(identifiable)",
           st->dead_lettered);
    for (int r = 0; r < 64; r++) {
        if (st->dead_lettered_by_reason[r]) {
            printf("    reason %-20s %" PRIu64 "\n", ps_err_name((ps_err_t)r),
                   st->dead_lettered_by_reason[r]);
        }
    }
    printf("%-16s %-24s %-14s %10" PRIu64 "\n", "audit", DEMO_AUDIT, "(one per event)",
           st->audited);
    printf("\nSecondary-use records are keyed by the patient's pseudonym and carry no input key\n"
           "or header. Withheld: nhs_number_invalid = no valid NHS number (never pseudonymised);\n"
           "opt_out = %zu of %d patients opted out of the national data opt-out; predicate = a\n"
           "restricted-category diagnosis (policy/codesets/). Try: pseudostream broker,\n"
           "pseudostream generate, pseudostream run -c CONFIG, pseudostream consume.\n",
           demo->opted_out, DEMO_PATIENTS);
}

static void cleanup_dir(struct demo *demo)
{
    if (demo->dir[0]) {
        unlink(demo->keyring);
        unlink(demo->config);
        unlink(demo->optout);
        rmdir(demo->dir);
    }
}

int cmd_demo(int argc, char **argv)
{
    static const struct option options[] = {{"events", required_argument, NULL, 'n'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    struct demo *demo = calloc(1, sizeof(*demo));
    int c;
    if (!demo) {
        return CLI_EXIT_FAILURE;
    }
    demo->events = 3000;
    while ((c = getopt_long(argc, argv, "n:h", options, NULL)) != -1) {
        if (c == 'n') {
            demo->events = atol(optarg);
        } else {
            free(demo);
            if (c == 'h') {
                demo_help();
                return CLI_EXIT_OK;
            }
            return cli_usage_error("demo", "unknown option");
        }
    }
    ps_log_set_stream(stderr);
    ps_log_set_level(PS_LOG_WARN);
    cli_signals_install();
    struct ps_error err = {0};
    ps_err_t rc = start(demo, &err);
    if (rc == PS_OK) {
        rc = generate(demo, &err);
    }
    if (rc == PS_OK) {
        rc = filter(demo, &err);
    }
    if (rc == PS_OK) {
        show_event(demo);
        show_counts(demo);
    }
    ps_runtime_close(demo->rt);
    ps_kafka_broker_destroy(demo->broker);
    cleanup_dir(demo);
    free(demo);
    return rc == PS_OK ? CLI_EXIT_OK : cli_fail(&err);
}
