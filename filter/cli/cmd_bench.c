/*
 * pseudostream bench: measured figures for docs/PERFORMANCE.md.
 *
 *   bench engine        the pure engine on one thread, no broker
 *   bench pipeline      baseline and pseudostream on the embedded broker
 *   bench pipeline-run  (internal) one measured filter run, started by pipeline
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
           "                                 [--json FILE]\n"
           "       pseudostream bench pipeline [--events N] [--partitions P]\n"
           "                                   [--output-partitions P] [--batch N]\n"
           "                                   [--interval MS] [--latency-events N] [--rate R]\n"
           "                                   [--sweep]\n"
           "                                   [--policy FILE] [--json FILE]\n\n"
           "engine: takes N generated events (default 20000, encoded before the clock\n"
           "starts) R times (default 10) through the disclosure engine on one thread:\n"
           "frame, validated decode, every destination's plan with its transforms and\n"
           "pseudonyms, and the audit record. No broker. Prints events per CPU-second\n"
           "(= per core) and writes the same figures as JSON with --json.\n\n"
           "pipeline: starts the embedded broker in a process of its own, preloads N\n"
           "generated events (default 1000000) on P input partitions (--partitions,\n"
           "default 256; the broker keeps 5 MiB per partition; --output-partitions,\n"
           "default 16, for the outputs), and runs, each in a process of its own so its CPU\n"
           "and memory are measured alone: the baseline (the same pipeline copying every\n"
           "input unread to one topic per destination plus one for audit, in the same\n"
           "transactions) and pseudostream, first at full speed on the preloaded input,\n"
           "then fed at half that speed for the latency percentiles (input timestamp to\n"
           "the commit of its outputs; --latency-events, default 20 s worth). --batch and\n"
           "--interval set the transaction size (default 10000 events, 1000 ms: the service's\n"
           "defaults); --sweep\n"
           "adds the table of transaction interval and batch size against throughput and\n"
           "latency. --rate R feeds the latency runs at R events/s instead of half the\n"
           "maximum.\n");
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
    printf("  per round: median %.0f, lowest %.0f, highest %.0f events per CPU-second\n",
           r->round_median, r->round_min, r->round_max);
    printf("  %zu destination records written, %zu withheld\n", r->disclosed, r->withheld);
    if (r->events) {
        printf("  bytes per event: %.0f to the destinations, %.0f of audit record\n",
               (double)r->bytes_out / (double)r->events,
               (double)r->audit_bytes / (double)r->events);
    }
    FILE *fp = json ? fopen(json, "w") : NULL;
    if (fp) {
        fprintf(fp,
                "{\"benchmark\":\"engine\",\"events\":%zu,\"destinations\":%zu,"
                "\"cpu_seconds\":%.6f,\"wall_seconds\":%.6f,\"events_per_cpu_second\":%.1f,"
                "\"round_median\":%.1f,\"round_min\":%.1f,\"round_max\":%.1f,"
                "\"disclosed\":%zu,\"withheld\":%zu}\n",
                r->events, destinations, r->cpu_seconds, r->wall_seconds,
                r->events_per_cpu_second, r->round_median, r->round_min, r->round_max,
                r->disclosed, r->withheld);
        fclose(fp);
    }
}

static void json_run(FILE *fp, const char *name, const struct ps_bench_run *r, int comma)
{
    fprintf(fp,
            "\"%s\":{\"mode\":\"%s\",\"batch_max_events\":%zu,\"transaction_interval_ms\":%d,"
            "\"offered_rate\":%.1f,\"events\":%.0f,\"seconds\":%.3f,\"events_per_second\":%.1f,"
            "\"cpu_seconds\":%.3f,\"cpu_seconds_per_million\":%.3f,"
            "\"thread_cpu_seconds_per_million\":%.3f,\"events_per_transaction\":%.1f,"
            "\"commit_ms\":%.1f,"
            "\"peak_rss_mb\":%.1f,"
            "\"rss_first_commit_mb\":%.1f,\"rss_last_mb\":%.1f,\"latency_samples\":%.0f,"
            "\"latency_p50_ms\":%.1f,\"latency_p99_ms\":%.1f,\"latency_p999_ms\":%.1f,"
            "\"rss_every_10s_mb\":[",
            name, r->filter ? "pseudostream" : "baseline", r->batch_max_events,
            r->transaction_interval_ms, r->offered_rate, r->events, r->seconds,
            r->events_per_second, r->cpu_seconds, r->cpu_per_million,
            r->thread_cpu_per_million, r->mean_batch, r->commit_ms, r->peak_rss_mb,
            r->rss_early_mb, r->rss_last_mb, r->latency_samples, r->p50_ms, r->p99_ms,
            r->p999_ms);
    for (size_t i = 0; i < r->rss_count; i++) {
        fprintf(fp, "%s%.1f", i ? "," : "", r->rss_series_mb[i]);
    }
    fprintf(fp, "]}%s", comma ? "," : "");
}

static double ratio(double a, double b)
{
    return b > 0 ? a / b : 0;
}

/* A percentile row; "-" where the run measured no event (a feed too short to
 * outlast the first second after the first commit). */
static void latency_row(const char *label, const struct ps_bench_run *bl,
                        const struct ps_bench_run *fl, double b, double f)
{
    char bs[32] = "-", fs[32] = "-";
    if (bl->latency_samples > 0) {
        snprintf(bs, sizeof(bs), "%.0f", b);
    }
    if (fl->latency_samples > 0) {
        snprintf(fs, sizeof(fs), "%.0f", f);
    }
    printf("%-36s %14s %14s\n", label, bs, fs);
}

static void report_pipeline(const struct ps_bench_pipeline_result *r, const char *json)
{
    const struct ps_bench_run *b = &r->base_max, *f = &r->filter_max;
    const struct ps_bench_run *bl = &r->base_latency, *fl = &r->filter_latency;
    printf("pipeline: %zu events (%.0f bytes on average, %zu to %zu), %d input and %d output\n"
           "  partitions, %zu destinations + audit, transactions of at most %zu events or "
           "%d ms\n",
           r->events, r->mean_bytes, r->min_bytes, r->max_bytes, r->partitions,
           r->output_partitions,
           r->destinations, f->batch_max_events, f->transaction_interval_ms);
    printf("%-36s %14s %14s %8s\n", "", "baseline", "pseudostream", "ratio");
    printf("%-36s %14.0f %14.0f %8.2f\n", "throughput (input events/s)", b->events_per_second,
           f->events_per_second, ratio(f->events_per_second, b->events_per_second));
    printf("%-36s %14.2f %14.2f %8.2f\n", "CPU seconds per million events", b->cpu_per_million,
           f->cpu_per_million, ratio(f->cpu_per_million, b->cpu_per_million));
    printf("%-36s %14.2f %14.2f %8.2f\n", "  of which the polling thread",
           b->thread_cpu_per_million, f->thread_cpu_per_million,
           ratio(f->thread_cpu_per_million, b->thread_cpu_per_million));
    printf("%-36s %14.0f %14.0f\n", "events per transaction", b->mean_batch, f->mean_batch);
    printf("%-36s %14.0f %14.0f\n", "commit, last send to committed (ms)", b->commit_ms,
           f->commit_ms);
    printf("%-36s %14.0f %14.0f %8.2f\n", "peak resident memory (MB)", b->peak_rss_mb,
           f->peak_rss_mb, ratio(f->peak_rss_mb, b->peak_rss_mb));
    printf("%-36s %14.0f %14.0f\n", "latency run: offered events/s", bl->offered_rate,
           fl->offered_rate);
    printf("%-36s %14.0f %14.0f\n", "  events measured", bl->latency_samples,
           fl->latency_samples);
    printf("%-36s %14.0f %14.0f\n", "  events per transaction", bl->mean_batch,
           fl->mean_batch);
    printf("%-36s %14.0f %14.0f\n", "  commit, last send to committed (ms)", bl->commit_ms,
           fl->commit_ms);
    latency_row("  latency p50 (ms)", bl, fl, bl->p50_ms, fl->p50_ms);
    latency_row("  latency p99 (ms)", bl, fl, bl->p99_ms, fl->p99_ms);
    latency_row("  latency p99.9 (ms)", bl, fl, bl->p999_ms, fl->p999_ms);
    printf("%-36s %14.0f %14.0f\n", "  resident memory, first commit (MB)", bl->rss_early_mb,
           fl->rss_early_mb);
    printf("%-36s %14.0f %14.0f\n", "  resident memory, last commit (MB)", bl->rss_last_mb,
           fl->rss_last_mb);
    if (fl->rss_count > 1) {
        printf("pseudostream resident memory every 10 s of the fixed-rate run (MB):");
        for (size_t i = 0; i < fl->rss_count; i++) {
            printf(" %.0f", fl->rss_series_mb[i]);
        }
        printf("\n");
    }
    if (r->sweep_count) {
        printf("\ntrade-off (pseudostream): maximum rate on %.0f preloaded events; latency at "
               "%.0f events/s\n", r->sweep[0].events, r->sweep[0].offered_rate);
        printf("%12s %10s %12s %12s %10s %10s %10s %10s\n", "interval ms", "batch",
               "events/s", "CPU s/M ev", "commit ms", "p50 ms", "p99 ms", "p99.9 ms");
        for (size_t i = 0; i < r->sweep_count; i++) {
            const struct ps_bench_run *s = &r->sweep[i];
            printf("%12d %10zu %12.0f %12.2f %10.0f %10.0f %10.0f %10.0f\n",
                   s->transaction_interval_ms, s->batch_max_events, s->events_per_second,
                   s->cpu_per_million, s->commit_ms, s->p50_ms, s->p99_ms, s->p999_ms);
        }
    }
    FILE *fp = json ? fopen(json, "w") : NULL;
    if (fp) {
        fprintf(fp, "{\"benchmark\":\"pipeline\",\"events\":%zu,\"mean_bytes\":%.1f,"
                "\"min_bytes\":%zu,\"max_bytes\":%zu,\"partitions\":%d,"
                "\"output_partitions\":%d,\"destinations\":%zu,",
                r->events, r->mean_bytes, r->min_bytes, r->max_bytes, r->partitions,
                r->output_partitions,
                r->destinations);
        json_run(fp, "baseline", b, 1);
        json_run(fp, "pseudostream", f, 1);
        json_run(fp, "baseline_latency", bl, 1);
        json_run(fp, "pseudostream_latency", fl, 1);
        fprintf(fp, "\"ratio_throughput\":%.3f,\"ratio_cpu\":%.3f,\"sweep\":[",
                ratio(f->events_per_second, b->events_per_second),
                ratio(f->cpu_per_million, b->cpu_per_million));
        for (size_t i = 0; i < r->sweep_count; i++) {
            fprintf(fp, "{");
            json_run(fp, "run", &r->sweep[i], 0);
            fprintf(fp, "}%s", i + 1 < r->sweep_count ? "," : "");
        }
        fprintf(fp, "]}\n");
        fclose(fp);
    }
}

struct bench_args {
    long events, rounds, partitions, output_partitions, batch, interval, latency_events;
    int sweep, events_set;
    double rate;
    const char *policy, *json;
    struct ps_bench_worker_options wo;
    const char *mode;
};

static ps_err_t run_engine(struct bench_setup *b, const struct bench_args *a, struct ps_error *err)
{
    struct ps_bench_engine_result r;
    ps_err_t rc = ps_bench_engine(b->engine, b->optout, b->cs.hl7v2, b->cs.hl7v2_id, b->cs.fhir,
                                  b->cs.fhir_id, (size_t)a->events, (size_t)a->rounds, &r, err);
    if (rc == PS_OK) {
        report(&r, ps_engine_destination_count(b->engine), a->json);
    }
    return rc;
}

static ps_err_t run_pipeline(struct bench_setup *b, const struct bench_args *a, struct ps_error *err)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) {
        return ps_error_set(err, PS_ERR_IO, "cannot find this program's path");
    }
    exe[n] = '\0';
    struct ps_bench_pipeline_options opt = {
        .exe = exe, .policy = a->policy,
        .events = a->events_set ? (size_t)a->events : 1000000,
        .partitions = (int)a->partitions, .output_partitions = (int)a->output_partitions,
        .batch_max_events = (size_t)a->batch,
        .transaction_interval_ms = (int)a->interval,
        .latency_events = (size_t)a->latency_events, .offered_rate = a->rate,
        .sweep = a->sweep, .progress = stderr};
    struct ps_bench_pipeline_result *r = calloc(1, sizeof(*r));
    if (!r) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory");
    }
    ps_err_t rc = ps_bench_pipeline(&opt, b->engine, b->cs.hl7v2, b->cs.hl7v2_id, b->cs.fhir,
                                    b->cs.fhir_id, r, err);
    if (rc == PS_OK) {
        report_pipeline(r, a->json);
    }
    free(r);
    return rc;
}

int cmd_bench(int argc, char **argv)
{
    enum { O_PARTITIONS = 256, O_OUT_PARTITIONS, O_RATE, O_BATCH, O_INTERVAL, O_LATENCY, O_SWEEP, O_BOOTSTRAP, O_TOPIC,
           O_GROUP, O_MODE, O_EXPECT, O_READY, O_DONE, O_RESULT };
    static const struct option options[] = {{"events", required_argument, NULL, 'n'},
                                            {"rounds", required_argument, NULL, 'r'},
                                            {"policy", required_argument, NULL, 'p'},
                                            {"json", required_argument, NULL, 'j'},
                                            {"partitions", required_argument, NULL, O_PARTITIONS},
                                            {"output-partitions", required_argument, NULL,
                                             O_OUT_PARTITIONS},
                                            {"rate", required_argument, NULL, O_RATE},
                                            {"batch", required_argument, NULL, O_BATCH},
                                            {"interval", required_argument, NULL, O_INTERVAL},
                                            {"latency-events", required_argument, NULL, O_LATENCY},
                                            {"sweep", no_argument, NULL, O_SWEEP},
                                            {"bootstrap", required_argument, NULL, O_BOOTSTRAP},
                                            {"topic", required_argument, NULL, O_TOPIC},
                                            {"group", required_argument, NULL, O_GROUP},
                                            {"mode", required_argument, NULL, O_MODE},
                                            {"expect", required_argument, NULL, O_EXPECT},
                                            {"ready-file", required_argument, NULL, O_READY},
                                            {"done-file", required_argument, NULL, O_DONE},
                                            {"result-file", required_argument, NULL, O_RESULT},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    struct bench_args a = {.events = 20000, .rounds = 10, .partitions = 256,
                           .output_partitions = 16, .batch = 10000, .interval = 1000};
    int c;
    while ((c = getopt_long(argc, argv, "n:r:h", options, NULL)) != -1) {
        switch (c) {
        case 'n': a.events = atol(optarg); a.events_set = 1; break;
        case 'r': a.rounds = atol(optarg); break;
        case 'p': a.policy = optarg; break;
        case 'j': a.json = optarg; break;
        case O_PARTITIONS: a.partitions = atol(optarg); break;
        case O_OUT_PARTITIONS: a.output_partitions = atol(optarg); break;
        case O_RATE: a.rate = atof(optarg); break;
        case O_BATCH: a.batch = atol(optarg); break;
        case O_INTERVAL: a.interval = atol(optarg); break;
        case O_LATENCY: a.latency_events = atol(optarg); break;
        case O_SWEEP: a.sweep = 1; break;
        case O_BOOTSTRAP: a.wo.bootstraps = optarg; break;
        case O_TOPIC: a.wo.topic = optarg; break;
        case O_GROUP: a.wo.group = optarg; break;
        case O_MODE: a.mode = optarg; break;
        case O_EXPECT: a.wo.expect = atof(optarg); break;
        case O_READY: a.wo.ready_file = optarg; break;
        case O_DONE: a.wo.done_file = optarg; break;
        case O_RESULT: a.wo.result_file = optarg; break;
        case 'h': bench_help(); return CLI_EXIT_OK;
        default: return cli_usage_error("bench", "unknown option");
        }
    }
    const char *which = optind == argc - 1 ? argv[optind] : "";
    int engine = strcmp(which, "engine") == 0;
    int pipeline = strcmp(which, "pipeline") == 0;
    int worker = strcmp(which, "pipeline-run") == 0;
    if (!engine && !pipeline && !worker) {
        return cli_usage_error("bench", "say which benchmark: engine or pipeline");
    }
    if (a.events <= 0 || a.rounds <= 0 || a.partitions <= 0 || a.output_partitions <= 0 ||
        a.batch <= 0 ||
        a.interval <= 0 || a.latency_events < 0 || a.rate < 0) {
        return cli_usage_error("bench", "--events, --rounds, --partitions, --batch and "
                               "--interval must be positive");
    }
    if (worker && (!a.wo.bootstraps || !a.wo.topic || !a.wo.group || !a.mode ||
                   !a.wo.result_file)) {
        return cli_usage_error("bench", "pipeline-run is started by bench pipeline");
    }
    ps_log_set_stream(stderr);
    ps_log_set_level(PS_LOG_WARN);
    struct ps_error err = {0};
    struct bench_setup b = {0};
    ps_err_t rc = ps_crypto_init(&err);
    if (rc == PS_OK) {
        rc = setup(&b, a.policy, &err);
    }
    if (rc == PS_OK && engine) {
        rc = run_engine(&b, &a, &err);
    } else if (rc == PS_OK && pipeline) {
        rc = run_pipeline(&b, &a, &err);
    } else if (rc == PS_OK) {
        a.wo.filter = strcmp(a.mode, "filter") == 0;
        a.wo.batch_max_events = (size_t)a.batch;
        a.wo.transaction_interval_ms = (int)a.interval;
        rc = ps_bench_pipeline_worker(b.engine, b.optout, &a.wo, &err);
    }
    teardown(&b);
    return rc == PS_OK ? CLI_EXIT_OK : cli_fail(&err);
}
