/*
 * pseudostream bench: measured figures for docs/PERFORMANCE.md.
 *
 *   bench engine    the pure engine on one thread, no broker
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_schemas.h"
#include "ps_bench.h"
#include "ps_keyring.h"
#include "ps_log.h"
#include "ps_optout.h"
#include "ps_policy_doc.h"
#include "ps_secret.h"
#include "ps_time.h"

static void bench_help(void)
{
    printf("usage: pseudostream bench engine [--events N] [--rounds R] [--policy FILE]\n"
           "                                 [--json FILE]\n\n"
           "engine: takes N generated events (default 20000, encoded before the clock\n"
           "starts) R times (default 10) through the disclosure engine on one thread:\n"
           "frame, validated decode, every destination's plan with its transforms and\n"
           "pseudonyms, and the audit record. No broker. Prints events per CPU-second\n"
           "(= per core) and writes the same figures as JSON with --json.\n");
}

struct bench_setup {
    struct cli_schemas cs;
    struct ps_policy_doc *policy;
    struct ps_keyring *kr;
    struct ps_optout *optout;
    struct ps_engine *engine;
};

static ps_err_t setup(struct bench_setup *b, const char *policy_path, struct ps_error *err)
{
    char path[4096], secret[PS_SECRET_B64_MAX];
    if (!policy_path) {
        cli_data_path("policy/demo.yaml", path, sizeof(path));
        policy_path = path;
    }
    ps_err_t rc = cli_schemas_load(NULL, &b->cs, err);
    if (rc == PS_OK) {
        rc = ps_policy_doc_load(policy_path, &b->policy, err);
    }
    if (rc == PS_OK) {
        rc = ps_secret_new_b64(secret, err);
    }
    if (rc == PS_OK) {
        struct ps_keyring_entry entry = {.id = 1, .not_before_ms = 0, .secret_b64 = secret};
        rc = ps_keyring_new(&entry, 1, "bench", &b->kr, err);
    }
    /* Nobody opted out: every event is worked on by every destination. */
    if (rc == PS_OK && (rc = ps_optout_new(PS_OPTOUT_OPTED_OUT, &b->optout, err)) == PS_OK) {
        ps_optout_set_as_of(b->optout, ps_time_now_ms());
    }
    if (rc == PS_OK) {
        rc = ps_engine_new(b->policy, "bench", b->cs.reg, b->kr, &b->engine, err);
    }
    return rc;
}

static void teardown(struct bench_setup *b)
{
    ps_engine_destroy(b->engine);
    ps_optout_destroy(b->optout);
    ps_keyring_destroy(b->kr);
    ps_policy_doc_destroy(b->policy);
    cli_schemas_free(&b->cs);
}

static void report(const struct ps_bench_engine_result *r, size_t destinations, const char *json)
{
    printf("engine: %zu events (%zu destinations + audit), %.1f MB in\n", r->events,
           destinations, (double)r->bytes_in / 1e6);
    printf("  %.0f events per CPU-second (one core), %.2f us per event\n",
           r->events_per_cpu_second, r->events ? r->cpu_seconds * 1e6 / (double)r->events : 0);
    printf("  %zu destination records written, %zu withheld\n", r->disclosed, r->withheld);
    FILE *fp = json ? fopen(json, "w") : NULL;
    if (fp) {
        fprintf(fp,
                "{\"benchmark\":\"engine\",\"events\":%zu,\"destinations\":%zu,"
                "\"cpu_seconds\":%.6f,\"wall_seconds\":%.6f,\"events_per_cpu_second\":%.1f,"
                "\"disclosed\":%zu,\"withheld\":%zu}\n",
                r->events, destinations, r->cpu_seconds, r->wall_seconds,
                r->events_per_cpu_second, r->disclosed, r->withheld);
        fclose(fp);
    }
}

int cmd_bench(int argc, char **argv)
{
    static const struct option options[] = {{"events", required_argument, NULL, 'n'},
                                            {"rounds", required_argument, NULL, 'r'},
                                            {"policy", required_argument, NULL, 'p'},
                                            {"json", required_argument, NULL, 'j'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    long events = 20000, rounds = 10;
    const char *policy = NULL, *json = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "n:r:h", options, NULL)) != -1) {
        switch (c) {
        case 'n': events = atol(optarg); break;
        case 'r': rounds = atol(optarg); break;
        case 'p': policy = optarg; break;
        case 'j': json = optarg; break;
        case 'h': bench_help(); return CLI_EXIT_OK;
        default: return cli_usage_error("bench", "unknown option");
        }
    }
    if (optind != argc - 1 || strcmp(argv[optind], "engine") != 0) {
        return cli_usage_error("bench", "say which benchmark: engine");
    }
    if (events <= 0 || rounds <= 0) {
        return cli_usage_error("bench", "--events and --rounds must be positive");
    }
    ps_log_set_stream(stderr);
    ps_log_set_level(PS_LOG_WARN);
    struct ps_error err = {0};
    struct bench_setup b = {0};
    struct ps_bench_engine_result r;
    ps_err_t rc = ps_crypto_init(&err);
    if (rc == PS_OK) {
        rc = setup(&b, policy, &err);
    }
    if (rc == PS_OK) {
        rc = ps_bench_engine(b.engine, b.optout, b.cs.hl7v2, b.cs.hl7v2_id, b.cs.fhir,
                             b.cs.fhir_id, (size_t)events, (size_t)rounds, &r, &err);
    }
    if (rc == PS_OK) {
        report(&r, ps_engine_destination_count(b.engine), json);
    }
    teardown(&b);
    return rc == PS_OK ? CLI_EXIT_OK : cli_fail(&err);
}
