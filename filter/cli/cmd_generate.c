/*
 * pseudostream generate: artificial events to a topic.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_schemas.h"
#include "ps_generate.h"
#include "ps_log.h"

static void generate_help(void)
{
    printf("usage: pseudostream generate -b BOOTSTRAPS -t TOPIC [-n COUNT] [options]\n\n"
           "Produces COUNT artificial events, a mix of HL7v2 (ADT A01/A02/A03/A04/A08/A40,\n"
           "ORU R01) and FHIR (Patient, Encounter, Observation), keyed by hospital number.\n"
           "Every patient is invented: NHS numbers from the 999 test range, made-up names,\n"
           "Ofcom drama telephone numbers, example.org e-mail.\n\n"
           "  -b, --bootstrap HOSTS     Kafka bootstrap servers\n"
           "  -t, --topic TOPIC         where to produce\n"
           "  -n, --count N             valid events (default 1000)\n"
           "  -c, --config FILE         take schemas and their ids from this service config\n"
           "                            (default: the reference schemas as ids 1 and 2)\n"
           "      --format F            confluent (default) or single_object\n"
           "      --malformed N         also N rounds of malformed input (bad frame, unknown\n"
           "                            schema id, truncated Avro, hostile array count)\n"
           "      --patients N          distinct patients (default 500)\n"
           "      --seed N              random seed (default 1)\n"
           "      --manifest FILE       write each patient's identifiers as JSON lines (for\n"
           "                            tests that search outputs for them)\n");
}

struct generate_args {
    const char *bootstraps, *topic, *config, *manifest;
    long count, malformed, patients, seed;
    int format;
};

static int parse_number(const char *text, long *out)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || v < 0) {
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, struct generate_args *a)
{
    static const struct option options[] = {
        {"bootstrap", required_argument, NULL, 'b'}, {"topic", required_argument, NULL, 't'},
        {"count", required_argument, NULL, 'n'},     {"config", required_argument, NULL, 'c'},
        {"format", required_argument, NULL, 'F'},    {"malformed", required_argument, NULL, 'm'},
        {"patients", required_argument, NULL, 'p'},  {"seed", required_argument, NULL, 's'},
        {"manifest", required_argument, NULL, 'M'},  {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c, bad = 0;
    while ((c = getopt_long(argc, argv, "b:t:n:c:h", options, NULL)) != -1) {
        switch (c) {
        case 'b': a->bootstraps = optarg; break;
        case 't': a->topic = optarg; break;
        case 'c': a->config = optarg; break;
        case 'M': a->manifest = optarg; break;
        case 'n': bad |= parse_number(optarg, &a->count); break;
        case 'm': bad |= parse_number(optarg, &a->malformed); break;
        case 'p': bad |= parse_number(optarg, &a->patients); break;
        case 's': bad |= parse_number(optarg, &a->seed); break;
        case 'F':
            a->format = ps_frame_format_parse(optarg);
            bad |= a->format < 0;
            break;
        case 'h': generate_help(); return 1;
        default: return cli_usage_error("generate", "unknown option");
        }
    }
    if (bad) {
        return cli_usage_error("generate", "a number or format is not valid");
    }
    if (!a->bootstraps || !a->topic) {
        return cli_usage_error("generate", "-b BOOTSTRAPS and -t TOPIC are required");
    }
    return 0;
}

int cmd_generate(int argc, char **argv)
{
    struct generate_args a = {.count = 1000, .patients = 500, .seed = 1,
                              .format = PS_FRAME_CONFLUENT};
    int usage = parse_args(argc, argv, &a);
    if (usage) {
        return usage == 1 ? CLI_EXIT_OK : usage;
    }
    ps_log_set_stream(stderr);
    struct ps_error err = {0};
    struct cli_schemas cs;
    if (cli_schemas_load(a.config, &cs, &err) != PS_OK) {
        return cli_fail(&err);
    }
    if (!cs.hl7v2 || !cs.fhir) {
        cli_schemas_free(&cs);
        return cli_usage_error("generate", "the configuration lacks the reference schemas");
    }
    FILE *manifest = a.manifest ? fopen(a.manifest, "w") : NULL;
    if (a.manifest && !manifest) {
        cli_schemas_free(&cs);
        return cli_usage_error("generate", "cannot write %s", a.manifest);
    }
    struct ps_generate_options opt = {
        .bootstraps = a.bootstraps, .topic = a.topic, .count = (size_t)a.count,
        .malformed_rounds = (size_t)a.malformed, .format = (enum ps_frame_format)a.format,
        .hl7v2 = cs.hl7v2, .fhir = cs.fhir, .hl7v2_id = cs.hl7v2_id, .fhir_id = cs.fhir_id,
        .seed = (uint64_t)a.seed, .patients = (uint32_t)a.patients, .manifest = manifest};
    struct ps_generate_stats stats;
    ps_err_t rc = ps_generate_run(&opt, &stats, &err);
    if (manifest) {
        fclose(manifest);
    }
    cli_schemas_free(&cs);
    if (rc != PS_OK) {
        return cli_fail(&err);
    }
    fprintf(stderr, "generated %zu events and %zu malformed messages to %s\n", stats.valid,
            stats.malformed, a.topic);
    return CLI_EXIT_OK;
}
