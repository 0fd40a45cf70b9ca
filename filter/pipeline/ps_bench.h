/*
 * ps_bench: the benchmarks behind docs/PERFORMANCE.md.
 *
 * The engine micro-benchmark: events are generated and encoded before the
 * clock starts; then each is taken through what the pipeline does per event
 * with no broker: frame, decode, every destination's plan, and the audit
 * record. Broker cost and engine cost are so seen apart.
 *
 * The pipeline benchmark: the embedded broker runs in a process of its own
 * and every measured filter in another (this program run again), so the CPU
 * and memory figures are the filter's alone. Preloaded input is read at full
 * speed by the baseline (the same pipeline code copying each input, unread, to
 * as many topics as the policy has destinations plus one for audit) and by
 * pseudostream; then each is fed at a fixed rate of half its maximum for the
 * latency percentiles (input record timestamp to the commit of the
 * transaction holding its outputs).
 */
#ifndef PS_BENCH_H
#define PS_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ps_engine.h"
#include "ps_optout.h"
#include "ps_error.h"
#include "ps_schema.h"

struct ps_bench_engine_result {
    size_t events;
    size_t disclosed;          /* destination records written */
    size_t withheld;
    size_t bytes_in;
    size_t bytes_out;          /* destination records' values */
    size_t audit_bytes;        /* audit records' values */
    double cpu_seconds;        /* this thread's CPU time over the timed loop */
    double wall_seconds;
    double events_per_cpu_second; /* over all rounds */
    /* Per round (a shared virtual machine varies by 10-20 % from one second
     * to the next): the median and the range of the rounds' rates. */
    double round_median;
    double round_min;
    double round_max;
};

/* Runs `events` generated events (pre-encoded, Confluent-framed with ids
 * hl7v2_id and fhir_id) through engine on one thread, `rounds` times over. */
ps_err_t ps_bench_engine(const struct ps_engine *engine, const struct ps_optout *optout,
                         const struct ps_schema *hl7v2, uint32_t hl7v2_id,
                         const struct ps_schema *fhir, uint32_t fhir_id, size_t events,
                         size_t rounds, struct ps_bench_engine_result *result,
                         struct ps_error *err);

#define PS_BENCH_RSS_MAX 512

/* One measured filter run (in its own process). */
struct ps_bench_run {
    int filter;                  /* 0: the pass-through baseline, 1: pseudostream */
    size_t batch_max_events;
    int transaction_interval_ms;
    double offered_rate;         /* events/s produced while it ran; 0: preloaded input */
    double events;               /* events in the measured window */
    double seconds;
    double events_per_second;
    double cpu_seconds;          /* user + system of the filter process over the window */
    double cpu_per_million;      /* CPU seconds per million events */
    double thread_cpu_per_million; /* ... of the polling thread alone (the rest is
                                      librdkafka's threads) */
    double mean_batch;           /* events per transaction */
    double commit_ms;            /* mean time from a batch's last send to its commit */
    double peak_rss_mb;          /* the filter process's peak resident memory */
    double rss_early_mb;         /* resident memory at the first commit */
    double rss_last_mb;          /* ... and at the last (sampled every second) */
    double latency_samples;
    double p50_ms, p99_ms, p999_ms;
    double rss_series_mb[PS_BENCH_RSS_MAX]; /* resident memory every 10 s of the run */
    size_t rss_count;
};

#define PS_BENCH_SWEEP_MAX 12

struct ps_bench_pipeline_options {
    const char *exe;             /* this program: run as the broker and as each filter */
    const char *policy;          /* passed on to the filter runs; NULL: the demo policy */
    size_t events;               /* preloaded events (default 1,000,000) */
    int partitions;              /* of input topics (default 256: the mock keeps 5 MiB each) */
    int output_partitions;       /* of output topics (default 16) */
    size_t batch_max_events;     /* default 10000 */
    int transaction_interval_ms; /* default 500 */
    size_t latency_events;       /* fed at the fixed rate (0: 20 s worth, at most events) */
    double offered_rate;         /* the fixed rate (0: half of each one's maximum) */
    int sweep;                   /* also the transaction interval / batch size table */
    FILE *progress;              /* a line per phase, or NULL */
};

struct ps_bench_pipeline_result {
    size_t events;
    size_t destinations;
    int partitions;
    int output_partitions;
    double mean_bytes;
    size_t min_bytes, max_bytes;
    struct ps_bench_run base_max, filter_max, base_latency, filter_latency;
    struct ps_bench_run sweep[PS_BENCH_SWEEP_MAX];
    size_t sweep_count;
};

/* Runs the pipeline benchmark. engine gives the destination count (the
 * baseline's fan-out); hl7v2/fhir and their ids encode the input. */
ps_err_t ps_bench_pipeline(const struct ps_bench_pipeline_options *opt,
                           const struct ps_engine *engine, const struct ps_schema *hl7v2,
                           uint32_t hl7v2_id, const struct ps_schema *fhir, uint32_t fhir_id,
                           struct ps_bench_pipeline_result *result, struct ps_error *err);

/* One filter run, in the process ps_bench_pipeline started for it. */
struct ps_bench_worker_options {
    const char *bootstraps;
    const char *topic;
    const char *group;
    int filter;                  /* 0: pass-through baseline */
    size_t batch_max_events;
    int transaction_interval_ms;
    double expect;               /* stop once this many are committed (0: see done_file) */
    const char *ready_file;      /* written once the first batch committed (may be NULL) */
    const char *done_file;       /* holds the total to expect once the feed ended */
    const char *result_file;     /* "name value" lines */
};

ps_err_t ps_bench_pipeline_worker(const struct ps_engine *engine, struct ps_optout *optout,
                                  const struct ps_bench_worker_options *wo,
                                  struct ps_error *err);

#endif
