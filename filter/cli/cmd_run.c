/*
 * pseudostream run: the filter.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ps_log.h"
#include "ps_runtime.h"

#define RUN_MAX_PROPS 128

static void run_help(void)
{
    printf("usage: pseudostream run -c CONFIG [-X key=value]... [--exit-when-idle MS]\n\n"
           "Consumes the configured input topics as a consumer-group member and, for each\n"
           "batch, in one Kafka transaction: writes each destination's derived records,\n"
           "dead-letters undecodable input with its reason, and commits the input offsets.\n"
           "Logs are JSON lines on stdout. Exits 0 on SIGINT/SIGTERM, 2 on a bad\n"
           "configuration, policy or keyring, 3 on a fatal Kafka error (fencing).\n\n"
           "  -c, --config FILE         service configuration (YAML; docs/ARCHITECTURE.md)\n"
           "  -X key=value              librdkafka property, after those of the file\n"
           "  -b, --bootstrap HOSTS     override kafka.bootstrap_servers\n"
           "      --exit-when-idle MS   stop once no input came for MS milliseconds\n"
           "      --log-level LEVEL     debug, info, warn or error (default: the config's)\n");
}

struct run_args {
    const char *config, *bootstrap, *log_level;
    const char *props[RUN_MAX_PROPS];
    size_t prop_count;
    long idle_ms;
};

static int parse_args(int argc, char **argv, struct run_args *a)
{
    static const struct option options[] = {{"config", required_argument, NULL, 'c'},
                                            {"bootstrap", required_argument, NULL, 'b'},
                                            {"exit-when-idle", required_argument, NULL, 'i'},
                                            {"log-level", required_argument, NULL, 'l'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "c:b:X:h", options, NULL)) != -1) {
        switch (c) {
        case 'c': a->config = optarg; break;
        case 'b': a->bootstrap = optarg; break;
        case 'l': a->log_level = optarg; break;
        case 'X':
            if (a->prop_count == RUN_MAX_PROPS) {
                return cli_usage_error("run", "too many -X options");
            }
            a->props[a->prop_count++] = optarg;
            break;
        case 'i':
            a->idle_ms = strtol(optarg, &end, 10);
            if (*end || a->idle_ms <= 0) {
                return cli_usage_error("run", "--exit-when-idle takes milliseconds");
            }
            break;
        case 'h': run_help(); return 1;
        default: return cli_usage_error("run", "unknown option");
        }
    }
    if (!a->config) {
        return cli_usage_error("run", "-c CONFIG is required");
    }
    return 0;
}

int cmd_run(int argc, char **argv)
{
    struct run_args a = {0};
    int usage = parse_args(argc, argv, &a);
    if (usage) {
        return usage == 1 ? CLI_EXIT_OK : usage;
    }
    struct ps_error err = {0};
    struct ps_runtime *rt = NULL;
    if (ps_runtime_open(a.config, a.props, a.prop_count, &rt, &err) != PS_OK) {
        return cli_fail(&err);
    }
    int level = ps_log_level_parse(a.log_level ? a.log_level : rt->conf->log_level);
    ps_log_set_level(level >= 0 ? (enum ps_log_level)level : PS_LOG_INFO);
    cli_signals_install();
    struct ps_pipeline_options opt;
    ps_runtime_pipeline_options(rt, &opt);
    if (a.bootstrap) {
        opt.bootstraps = a.bootstrap;
    }
    opt.stop = &cli_stop;
    opt.idle_exit_ms = (int)a.idle_ms;
    PS_INFO("run", "started", "policy %.16s, %zu destinations, %s mode", rt->policy_hash,
            ps_engine_destination_count(rt->engine),
            opt.transactional_id ? "transactional" : "at-least-once");
    struct ps_pipeline_stats *stats = calloc(1, sizeof(*stats));
    ps_err_t rc = stats ? ps_pipeline_run(rt->engine, &opt, stats, &err) : PS_ERR_NOMEM;
    for (size_t d = 0; stats && d < ps_engine_destination_count(rt->engine); d++) {
        PS_INFO("run", "destination_totals", "destination '%s': %" PRIu64 " disclosed, %" PRIu64
                " withheld", ps_engine_destination(rt->engine, d)->name, stats->disclosed[d],
                stats->withheld[d]);
    }
    free(stats);
    ps_runtime_close(rt);
    return rc == PS_OK ? CLI_EXIT_OK : cli_fail(&err);
}
