/*
 * pseudostream run: the filter.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ps_http.h"
#include "ps_keyring.h"
#include "ps_log.h"
#include "ps_metrics.h"
#include "ps_runtime.h"
#include "ps_time.h"

#define RUN_MAX_PROPS 128

static void run_help(void)
{
    printf("usage: pseudostream run -c CONFIG [-X key=value]... [--exit-when-idle MS]\n\n"
           "Consumes the configured input topics as a consumer-group member and, for each\n"
           "batch, in one Kafka transaction: writes each destination's derived records,\n"
           "dead-letters undecodable input with its reason, and commits the input offsets.\n"
           "Logs are JSON lines on stdout. SIGHUP (or a change of the keyring file)\n"
           "reloads the keyring between batches. Exits 0 on SIGINT/SIGTERM, 2 on a bad\n"
           "configuration, policy or keyring, 3 on a fatal Kafka error (fencing).\n\n"
           "  -c, --config FILE         service configuration (YAML; docs/ARCHITECTURE.md)\n"
           "  -X key=value              librdkafka property, after those of the file\n"
           "  -b, --bootstrap HOSTS     override kafka.bootstrap_servers\n"
           "      --exit-when-idle MS   stop once no input came for MS milliseconds\n"
           "      --grace-ms MS         on SIGTERM/SIGINT, commit or abort the open batch and\n"
           "                            leave the group within MS milliseconds (default 30000;\n"
           "                            keep it below the orchestrator's kill timeout)\n"
           "      --log-level LEVEL     debug, info, warn or error (default: the config's)\n"
           "      --dump-config         print the effective configuration (file, environment,\n"
           "                            -X, -b) as YAML with secrets [redacted], and exit\n");
}

struct run_args {
    const char *config, *bootstrap, *log_level;
    const char *props[RUN_MAX_PROPS];
    size_t prop_count;
    long idle_ms;
    long grace_ms;
    int dump_config;
};

static int parse_args(int argc, char **argv, struct run_args *a)
{
    static const struct option options[] = {{"config", required_argument, NULL, 'c'},
                                            {"bootstrap", required_argument, NULL, 'b'},
                                            {"exit-when-idle", required_argument, NULL, 'i'},
                                            {"grace-ms", required_argument, NULL, 'g'},
                                            {"log-level", required_argument, NULL, 'l'},
                                            {"dump-config", no_argument, NULL, 'd'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "c:b:X:h", options, NULL)) != -1) {
        switch (c) {
        case 'c': a->config = optarg; break;
        case 'b': a->bootstrap = optarg; break;
        case 'l': a->log_level = optarg; break;
        case 'd': a->dump_config = 1; break;
        case 'X':
            if (a->prop_count == RUN_MAX_PROPS) {
                return cli_usage_error("run", "too many -X options");
            }
            a->props[a->prop_count++] = optarg;
            break;
        case 'g':
            a->grace_ms = strtol(optarg, &end, 10);
            if (*end || a->grace_ms <= 0 || a->grace_ms > 3600000) {
                return cli_usage_error("run", "--grace-ms takes milliseconds (1 to 3600000)");
            }
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

/* --dump-config: what run would use, without loading the policy or keyring,
 * so that it also works where those are not readable yet. */
static int dump_config(const struct run_args *a)
{
    struct ps_error err = {0};
    struct ps_config *conf = NULL;
    ps_err_t rc = ps_config_load(a->config, &conf, &err);
    for (size_t i = 0; rc == PS_OK && i < a->prop_count; i++) {
        rc = ps_config_set_property(conf, a->props[i], &err);
    }
    if (rc == PS_OK && a->bootstrap) {
        char *copy = strdup(a->bootstrap);
        rc = copy ? PS_OK : ps_error_set(&err, PS_ERR_NOMEM, "out of memory");
        if (copy) {
            free(conf->kafka.bootstrap_servers);
            conf->kafka.bootstrap_servers = copy;
        }
    }
    if (rc == PS_OK) {
        rc = ps_config_dump(conf, stdout, &err);
    }
    ps_config_destroy(conf);
    return rc == PS_OK ? CLI_EXIT_OK : cli_fail(&err);
}

/* The operations port (metrics.listen): the registry is labelled with the
 * configured topics and the policy's destinations, and the start-up facts
 * that readiness needs are set here; the batch loop counts and ticks. */
static ps_err_t ops_start(const struct ps_runtime *rt, struct ps_metrics **m_p,
                          struct ps_http **http_p, struct ps_error *err)
{
    const struct ps_config *conf = rt->conf;
    size_t dest_count = ps_engine_destination_count(rt->engine);
    const char *dests[PS_METRICS_MAX_LABELS];
    uint32_t key_id = 0;
    if (!conf->metrics.listen) {
        return PS_OK;
    }
    for (size_t d = 0; d < dest_count && d < PS_METRICS_MAX_LABELS; d++) {
        dests[d] = ps_engine_destination(rt->engine, d)->name;
    }
    struct ps_metrics_labels labels = {
        .topics = (const char *const *)conf->input_topics,
        .topic_count = conf->input_topic_count,
        .destinations = dests,
        .destination_count = dest_count,
    };
    ps_err_t rc = ps_metrics_new(&labels, m_p, err);
    if (rc != PS_OK) {
        return rc;
    }
    ps_metrics_keyring_loaded_set(*m_p, 1);
    ps_metrics_gauge_set(*m_p, PS_M_KEYRING_LOCKED, 0, ps_keyring_locked(rt->kr));
    if (ps_keyring_select(rt->kr, ps_time_now_ms(), &key_id, NULL) == PS_OK) {
        ps_metrics_gauge_set(*m_p, PS_M_KEYRING_KEY_ID, 0, key_id);
    }
    if (!conf->opt_out.configured) {
        ps_metrics_optout_loaded_set(*m_p, 1); /* nothing to wait for */
    }
    struct ps_http_options hopt = {.listen = conf->metrics.listen,
                                   .health_timeout_ms = conf->metrics.health_timeout_ms};
    rc = ps_http_start(&hopt, *m_p, http_p, err);
    if (rc != PS_OK) {
        ps_metrics_destroy(*m_p);
        *m_p = NULL;
        return rc;
    }
    PS_INFO("run", "ops_listening", "metrics, /healthz and /readyz on port %u",
            (unsigned)ps_http_port(*http_p));
    return PS_OK;
}

int cmd_run(int argc, char **argv)
{
    struct run_args a = {0};
    int usage = parse_args(argc, argv, &a);
    if (usage) {
        return usage == 1 ? CLI_EXIT_OK : usage;
    }
    if (a.dump_config) {
        return dump_config(&a);
    }
    struct ps_error err = {0};
    struct ps_runtime *rt = NULL;
    /* Before any secret is in memory: no core dumps, not dumpable. */
    if (ps_crypto_harden_process(&err) != PS_OK) {
        return cli_fail(&err);
    }
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
    opt.reload.requested = &cli_reload;
    opt.idle_exit_ms = (int)a.idle_ms;
    opt.shutdown_grace_ms = (int)a.grace_ms;
    ps_runtime_log_context(rt);
    PS_INFO("run", "started", "policy %.16s, %zu destinations, %s mode", rt->policy_hash,
            ps_engine_destination_count(rt->engine),
            opt.transactional_id ? "transactional" : "at-least-once");
    /* The operations port answers from here on: /healthz stays 503 until the
     * batch loop ticks, which a start-up probe allows for. */
    struct ps_metrics *metrics = NULL;
    struct ps_http *http = NULL;
    if (ops_start(rt, &metrics, &http, &err) != PS_OK) {
        ps_runtime_close(rt);
        return cli_fail(&err);
    }
    opt.metrics = metrics;
    /* No input is consumed before the opt-out state is loaded to the end of its topic. */
    ps_err_t rc = ps_runtime_optout_catch_up(rt, opt.bootstraps, 120000, &err);
    opt.optout_feed = rt->optout_feed;
    if (rc == PS_OK && rt->optout) {
        /* Loaded and caught up: readiness may pass; the batch loop keeps the
         * age current as live updates arrive. */
        ps_metrics_optout_as_of_set(metrics, ps_optout_as_of(rt->optout));
        ps_metrics_optout_loaded_set(metrics, 1);
    }
    struct ps_pipeline_stats *stats = calloc(1, sizeof(*stats));
    if (rc == PS_OK) {
        rc = stats ? ps_pipeline_run(rt->engine, &opt, stats, &err) : PS_ERR_NOMEM;
    }
    for (size_t d = 0; stats && d < ps_engine_destination_count(rt->engine); d++) {
        PS_INFO("run", "destination_totals", "destination '%s': %" PRIu64 " disclosed, %" PRIu64
                " withheld", ps_engine_destination(rt->engine, d)->name, stats->disclosed[d],
                stats->withheld[d]);
    }
    free(stats);
    ps_http_stop(http); /* before the registry it reads */
    ps_metrics_destroy(metrics);
    ps_runtime_close(rt);
    return rc == PS_OK ? CLI_EXIT_OK : cli_fail(&err);
}
