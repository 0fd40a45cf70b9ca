/*
 * pseudostream: one binary, with subcommands.
 */
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"demo", cmd_demo, "everything in one process on the embedded broker, with artificial data"},
    {"run", cmd_run, "the filter: consume, decide per destination, produce (needs -c CONFIG)"},
    {"broker", cmd_broker, "run the embedded development broker (librdkafka's mock cluster)"},
    {"generate", cmd_generate, "produce artificial HL7v2 and FHIR events to a topic"},
    {"bench", cmd_bench, "benchmarks (the engine alone, no broker)"},
    {"consume", cmd_consume, "decode a topic to one JSON object per line"},
    {"keyring", cmd_keyring, "create, extend, list and protect keyrings; authority key pairs"},
    {"pseudonymise", cmd_pseudonymise, "tokens for identifiers on stdin (batch linkage)"},
    {"reidentify", cmd_reidentify, "open escrow records for tokens with an authority's secret key"},
    {"audit", cmd_audit, "audit trail: print one patient's audit records (subject access)"},
    {"policy", cmd_policy, "check, explain (DPIA tables) and preview a disclosure policy"},
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: pseudostream COMMAND [OPTIONS]\n\n"
            "Reads Avro health events from Kafka and republishes, per destination, only what\n"
            "that destination's purpose and legal basis allow.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        fprintf(out, "  %-13s %s\n", commands[i].name, commands[i].summary);
    }
    fprintf(out, "\n'pseudostream COMMAND --help' describes each command.\n"
                 "pseudostream %s\n", PS_VERSION);
}

int main(int argc, char **argv)
{
    /* No fastbins: librdkafka allocates every produced message (over 1 KiB
     * with its payload) and frees it on another thread, and each such
     * allocation made glibc consolidate the fastbins first. Measured with
     * `bench pipeline` (docs/PERFORMANCE.md): 10-15 % more throughput. */
    mallopt(M_MXFAST, 0);
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("pseudostream %s\n", PS_VERSION);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            return commands[i].fn(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "pseudostream: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
