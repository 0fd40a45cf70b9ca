#include "ps_bench.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ps_audit.h"
#include "ps_buf.h"
#include "ps_codec.h"
#include "ps_frame.h"
#include "ps_kafka.h"
#include "ps_pipeline.h"
#include "ps_synth.h"
#include "ps_time.h"

struct encoded {
    uint8_t *data;
    size_t len;
    size_t patient;
};

static double clock_seconds(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static ps_err_t prepare(const struct ps_schema *hl7v2, uint32_t hl7v2_id,
                        const struct ps_schema *fhir, uint32_t fhir_id, size_t events,
                        struct encoded *out, size_t *bytes_p, struct ps_error *err)
{
    struct ps_synth *synth = NULL;
    struct ps_synth_options so = {.seed = 42, .patients = 2000};
    struct ps_buf json, frame;
    ps_buf_init(&json, 0);
    ps_buf_init(&frame, 0);
    ps_err_t rc = ps_synth_new(&so, &synth, err);
    for (size_t i = 0; rc == PS_OK && i < events; i++) {
        enum ps_synth_family family;
        ps_buf_reset(&json);
        ps_buf_reset(&frame);
        rc = ps_synth_next(synth, &json, &family, &out[i].patient);
        const struct ps_schema *schema = family == PS_SYNTH_FHIR ? fhir : hl7v2;
        if (rc == PS_OK) {
            rc = ps_frame_write_confluent(family == PS_SYNTH_FHIR ? fhir_id : hl7v2_id, &frame);
        }
        if (rc == PS_OK) {
            rc = ps_codec_json_to_datum(schema, (const char *)json.data, json.len, &frame, err);
        }
        if (rc == PS_OK && !(out[i].data = malloc(frame.len))) {
            rc = ps_error_set(err, PS_ERR_NOMEM, "out of memory");
        }
        if (rc == PS_OK) {
            memcpy(out[i].data, frame.data, frame.len);
            out[i].len = frame.len;
            *bytes_p += frame.len;
        }
    }
    ps_synth_destroy(synth);
    ps_buf_free(&json);
    ps_buf_free(&frame);
    return rc;
}

/* The audit record costs per event what it costs in the pipeline. */
static ps_err_t audit_one(const struct ps_engine *engine, struct ps_engine_worker *worker,
                          const struct ps_engine_output *outs, struct ps_audit_destination *ads,
                          struct ps_buf *buf, struct ps_error *err)
{
    const struct ps_engine_event *ev = ps_engine_worker_event(worker);
    size_t count = ps_engine_destination_count(engine);
    for (size_t d = 0; d < count; d++) {
        memset(&ads[d], 0, sizeof(ads[d]));
        ads[d].name = ps_engine_destination(engine, d)->name;
        ads[d].topic = ps_engine_destination(engine, d)->topic;
        if (outs[d].decision == PS_WITHHELD) {
            ads[d].decision = PS_AUDIT_WITHHELD;
            ads[d].reason = ps_err_name(outs[d].reason);
            ads[d].detail = outs[d].detail;
        } else {
            ads[d].plan_id = outs[d].audit_plan_id; /* the plan's record: once, not per event */
        }
    }
    struct ps_audit_record rec = {
        .event_id = ev->event_id, .event_type = ev->event_type,
        .event_time_ms = ev->event_time_ms, .source_topic = "bench", .source_partition = 0,
        .source_offset = 0, .policy_hash = ps_engine_policy_hash(engine), .key_id = ev->key_id,
        .opt_out_as_of_ms = -1, .subject = ev->subject, .destinations = ads,
        .destination_count = count, .processed_at_ms = 0};
    ps_buf_reset(buf);
    return ps_audit_encode(&rec, buf, err);
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static ps_err_t timed_loop(const struct ps_engine *engine, struct ps_engine_worker *worker,
                           const struct encoded *in, size_t events, size_t rounds,
                           struct ps_bench_engine_result *r, struct ps_error *err)
{
    size_t count = ps_engine_destination_count(engine);
    struct ps_audit_destination *ads = calloc(count + 1, sizeof(*ads));
    struct ps_buf audit;
    ps_buf_init(&audit, 0);
    ps_err_t rc = ads ? PS_OK : ps_error_set(err, PS_ERR_NOMEM, "out of memory");
    double cpu0 = clock_seconds(CLOCK_THREAD_CPUTIME_ID), wall0 = clock_seconds(CLOCK_MONOTONIC);
    double *rates = calloc(rounds + 1, sizeof(*rates));
    if (!rates && rc == PS_OK) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "out of memory");
    }
    for (size_t round = 0; rc == PS_OK && round < rounds; round++) {
        double round_cpu0 = clock_seconds(CLOCK_THREAD_CPUTIME_ID);
        size_t round_events0 = r->events;
        for (size_t i = 0; rc == PS_OK && i < events; i++) {
            const struct ps_engine_output *outs;
            struct ps_error why;
            if (ps_engine_process(worker, in[i].data, in[i].len, &outs, &why) != PS_OK) {
                continue; /* none expected: generated events all decode */
            }
            for (size_t d = 0; d < count; d++) {
                *(outs[d].decision == PS_DISCLOSED ? &r->disclosed : &r->withheld) += 1;
                r->bytes_out += outs[d].decision == PS_DISCLOSED ? outs[d].len : 0;
            }
            rc = audit_one(engine, worker, outs, ads, &audit, err);
            r->audit_bytes += audit.len;
            r->events++;
        }
        double round_cpu = clock_seconds(CLOCK_THREAD_CPUTIME_ID) - round_cpu0;
        rates[round] = round_cpu > 0 ? (double)(r->events - round_events0) / round_cpu : 0;
    }
    if (rc == PS_OK && rounds > 0) {
        qsort(rates, rounds, sizeof(*rates), compare_doubles);
        r->round_min = rates[0];
        r->round_max = rates[rounds - 1];
        r->round_median = rounds % 2 ? rates[rounds / 2]
                                     : (rates[rounds / 2 - 1] + rates[rounds / 2]) / 2;
    }
    free(rates);
    r->cpu_seconds = clock_seconds(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    r->wall_seconds = clock_seconds(CLOCK_MONOTONIC) - wall0;
    r->events_per_cpu_second = r->cpu_seconds > 0 ? (double)r->events / r->cpu_seconds : 0;
    ps_buf_free(&audit);
    free(ads);
    return rc;
}

ps_err_t ps_bench_engine(const struct ps_engine *engine, const struct ps_optout *optout,
                         const struct ps_schema *hl7v2, uint32_t hl7v2_id,
                         const struct ps_schema *fhir, uint32_t fhir_id, size_t events,
                         size_t rounds, struct ps_bench_engine_result *result,
                         struct ps_error *err)
{
    struct encoded *in = calloc(events + 1, sizeof(*in));
    struct ps_engine_worker *worker = NULL;
    memset(result, 0, sizeof(*result));
    ps_err_t rc = in ? prepare(hl7v2, hl7v2_id, fhir, fhir_id, events, in, &result->bytes_in, err)
                     : ps_error_set(err, PS_ERR_NOMEM, "out of memory");
    if (rc == PS_OK) {
        rc = ps_engine_worker_new(engine, NULL, &worker, err);
    }
    if (rc == PS_OK) {
        ps_engine_worker_set_optout(worker, optout, optout != NULL);
        rc = timed_loop(engine, worker, in, events, rounds, result, err);
    }
    ps_engine_worker_destroy(worker);
    for (size_t i = 0; in && i < events; i++) {
        free(in[i].data);
    }
    free(in);
    return rc;
}

/* ===================================================================== pipeline
 * The orchestrating process: broker, preload, feeds; each measured filter is
 * this program run again ("bench pipeline-run"), so getrusage in that process
 * is the filter's own CPU and memory and nothing else's. */

#define BENCH_TOPIC_MAX 64
#define BENCH_FEEDS 24          /* topics fed at a fixed rate: one per latency run */
#define BENCH_PRELOAD_POOL 20000
#define BENCH_PARTITION_BYTES (5.0 * 1024 * 1024) /* the mock cluster's retention */
#define BENCH_WAIT_MS 60000
#define BENCH_LATENCY_SECONDS 20.0
#define BENCH_SWEEP_EVENTS 300000
#define BENCH_RSS_SAMPLES PS_BENCH_RSS_MAX
#define BENCH_RSS_EVERY_MS 10000

struct bench_ctx {
    const struct ps_bench_pipeline_options *opt;
    const struct ps_engine *engine;
    char dir[256];
    char bootstraps[512];
    pid_t broker;
    struct encoded *pool;
    size_t pool_count;
    unsigned runs;
    unsigned feeds;
    struct ps_error *err;
};

static void bench_progress(const struct bench_ctx *bc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void bench_progress(const struct bench_ctx *bc, const char *fmt, ...)
{
    if (!bc->opt->progress) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vfprintf(bc->opt->progress, fmt, ap);
    va_end(ap);
    fputc('\n', bc->opt->progress);
    fflush(bc->opt->progress);
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Starts exe with argv, its output to log (appended). */
static ps_err_t bench_spawn(const char *exe, char *const argv[], const char *log, pid_t *pid_p,
                            struct ps_error *err)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log, O_WRONLY | O_CREAT | O_APPEND,
                                     0600);
    posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
    extern char **environ;
    int rc = posix_spawn(pid_p, exe, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        return ps_error_set(err, PS_ERR_IO, "cannot start %s: %s", exe, strerror(rc));
    }
    return PS_OK;
}

static int bench_file_line(const char *path, char *buf, size_t size)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        return 0;
    }
    int ok = fgets(buf, (int)size, fp) && strchr(buf, '\n');
    fclose(fp);
    if (ok) {
        buf[strcspn(buf, "\r\n")] = '\0';
    }
    return ok;
}

static ps_err_t bench_broker_start(struct bench_ctx *bc, struct ps_error *err)
{
    const struct ps_bench_pipeline_options *opt = bc->opt;
    char specs[BENCH_TOPIC_MAX][300];
    char *argv[2 * BENCH_TOPIC_MAX + 8];
    char bootfile[300], log[300];
    size_t n = 0, t = 0;
    argv[n++] = "pseudostream";
    argv[n++] = "broker";
    argv[n++] = "--brokers";
    argv[n++] = "1";
    /* Input must fit the mock's 5 MiB per partition (it prunes the oldest
     * beyond that); outputs are never read back, so pruning them costs
     * nothing, and fewer partitions let the producer batch as it would on a
     * real cluster's output topics. */
    const char *fixed[] = {"bench.in", "bench.deadletter", "bench.audit", "bench.escrow"};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        snprintf(specs[t], sizeof(specs[t]), "%s:%d", fixed[i],
                 i == 0 ? opt->partitions : opt->output_partitions);
        argv[n++] = "--topic";
        argv[n++] = specs[t++];
    }
    /* Every topic exists before anyone writes: one the mock creates on demand
     * has few partitions, and its 5 MiB each would not hold a feed. */
    for (int k = 1; k <= BENCH_FEEDS; k++) {
        snprintf(specs[t], sizeof(specs[t]), "bench.feed.%d:%d", k, opt->partitions);
        argv[n++] = "--topic";
        argv[n++] = specs[t++];
    }
    size_t dsts = ps_engine_destination_count(bc->engine);
    for (size_t d = 0; d <= dsts && t + 2 < BENCH_TOPIC_MAX; d++) {
        if (d < dsts) {
            snprintf(specs[t], sizeof(specs[t]), "%s:%d",
                     ps_engine_destination(bc->engine, d)->topic, opt->output_partitions);
            argv[n++] = "--topic";
            argv[n++] = specs[t++];
        }
        snprintf(specs[t], sizeof(specs[t]), "bench.base.%zu:%d", d, opt->output_partitions);
        argv[n++] = "--topic";
        argv[n++] = specs[t++];
    }
    snprintf(bootfile, sizeof(bootfile), "%s/bootstrap", bc->dir);
    snprintf(log, sizeof(log), "%s/broker.log", bc->dir);
    argv[n++] = "--bootstrap-file";
    argv[n++] = bootfile;
    argv[n] = NULL;
    ps_err_t rc = bench_spawn(opt->exe, argv, log, &bc->broker, err);
    for (int64_t waited = 0; rc == PS_OK; waited += 50) {
        if (bench_file_line(bootfile, bc->bootstraps, sizeof(bc->bootstraps))) {
            return PS_OK;
        }
        if (waited > BENCH_WAIT_MS || waitpid(bc->broker, NULL, WNOHANG) == bc->broker) {
            bc->broker = 0;
            return ps_error_set(err, PS_ERR_IO, "the broker did not start (see %s)", log);
        }
        sleep_ms(50);
    }
    return rc;
}

/* Produces count events from the pool to topic; rate > 0 paces them (in
 * bursts of a millisecond's worth) and stops early once stop_file exists. */
static ps_err_t bench_feed(struct bench_ctx *bc, const char *topic, size_t count, double rate,
                           size_t *sent_p, struct ps_error *err)
{
    struct ps_kafka_producer *producer = NULL;
    ps_err_t rc = ps_kafka_producer_new(bc->bootstraps, NULL, NULL, 0, &producer, err);
    int64_t t0 = ps_time_mono_ms();
    size_t i = 0;
    for (; rc == PS_OK && i < count; i++) {
        if (rate > 0 && i % 64 == 0) {
            int64_t due = t0 + (int64_t)((double)i * 1000.0 / rate);
            int64_t now = ps_time_mono_ms();
            if (due > now) {
                sleep_ms(due - now);
            }
        }
        const struct encoded *e = &bc->pool[i % bc->pool_count];
        char key[32];
        int klen = snprintf(key, sizeof(key), "patient-%zu", e->patient);
        rc = ps_kafka_producer_send(producer, topic, -1, key, (size_t)klen, e->data, e->len,
                                    NULL, 0, err);
    }
    if (rc == PS_OK) {
        rc = ps_kafka_producer_flush(producer, BENCH_WAIT_MS, err);
    }
    ps_kafka_producer_destroy(producer);
    *sent_p = i;
    return rc;
}

static double result_value(const char *path, const char *name)
{
    FILE *fp = fopen(path, "r");
    char line[8192], key[64];
    double v = 0, found = 0;
    while (fp && fgets(line, sizeof(line), fp)) {
        if (sscanf(line, "%63s %lf", key, &v) == 2 && strcmp(key, name) == 0) {
            found = v;
        }
    }
    if (fp) {
        fclose(fp);
    }
    return found;
}

/* The "rss_series_kb" line, as MB, into series (at most max). */
static size_t result_series(const char *path, double *series, size_t max)
{
    FILE *fp = fopen(path, "r");
    static char line[BENCH_RSS_SAMPLES * 24];
    size_t n = 0;
    while (fp && fgets(line, sizeof(line), fp)) {
        if (strncmp(line, "rss_series_kb", 13) != 0) {
            continue;
        }
        char *p = line + 13, *end = NULL;
        for (double v = strtod(p, &end); end != p && n < max; v = strtod(p, &end)) {
            series[n++] = v / 1024.0;
            p = end;
        }
    }
    if (fp) {
        fclose(fp);
    }
    return n;
}

static void read_result(const char *path, struct ps_bench_run *run)
{
    run->events = result_value(path, "events");
    run->seconds = result_value(path, "seconds");
    run->events_per_second = run->seconds > 0 ? run->events / run->seconds : 0;
    run->cpu_seconds = result_value(path, "cpu_seconds");
    run->cpu_per_million = run->events > 0 ? run->cpu_seconds * 1e6 / run->events : 0;
    run->peak_rss_mb = result_value(path, "peak_rss_kb") / 1024.0;
    run->rss_early_mb = result_value(path, "rss_early_kb") / 1024.0;
    run->rss_last_mb = result_value(path, "rss_last_kb") / 1024.0;
    run->latency_samples = result_value(path, "latency_samples");
    run->p50_ms = result_value(path, "p50_ms");
    run->p99_ms = result_value(path, "p99_ms");
    run->p999_ms = result_value(path, "p999_ms");
    run->thread_cpu_per_million = run->events > 0
                                      ? result_value(path, "thread_cpu_seconds") * 1e6 /
                                            run->events
                                      : 0;
    double batches = result_value(path, "batches");
    run->mean_batch = batches > 0 ? run->events / batches : 0;
    run->commit_ms = result_value(path, "commit_ms");
    run->rss_count = result_series(path, run->rss_series_mb, PS_BENCH_RSS_MAX);
}

/* One filter run in its own process: on preloaded input (rate 0: reads
 * `expect` events as fast as it can) or fed at `rate` from a topic of its own. */
static ps_err_t bench_run(struct bench_ctx *bc, struct ps_bench_run *run, size_t expect,
                          size_t feed, struct ps_error *err)
{
    const struct ps_bench_pipeline_options *opt = bc->opt;
    unsigned id = ++bc->runs;
    char group[64], topic[64], batch[32], interval[32], expect_s[32], result[300], ready[300];
    char done[300], log[300];
    snprintf(group, sizeof(group), "bench-%u", id);
    snprintf(topic, sizeof(topic), "%s", run->offered_rate > 0 ? "" : "bench.in");
    if (run->offered_rate > 0) {
        if (bc->feeds >= BENCH_FEEDS) {
            return ps_error_set(err, PS_ERR_INVALID, "more fixed-rate runs than feed topics");
        }
        snprintf(topic, sizeof(topic), "bench.feed.%u", ++bc->feeds);
    }
    snprintf(batch, sizeof(batch), "%zu", run->batch_max_events);
    snprintf(interval, sizeof(interval), "%d", run->transaction_interval_ms);
    snprintf(expect_s, sizeof(expect_s), "%zu", run->offered_rate > 0 ? (size_t)0 : expect);
    snprintf(result, sizeof(result), "%s/run%u.result", bc->dir, id);
    snprintf(ready, sizeof(ready), "%s/run%u.ready", bc->dir, id);
    snprintf(done, sizeof(done), "%s/run%u.done", bc->dir, id);
    snprintf(log, sizeof(log), "%s/run%u.log", bc->dir, id);
    char *argv[32];
    size_t n = 0;
    argv[n++] = "pseudostream";
    argv[n++] = "bench";
    argv[n++] = "pipeline-run";
    argv[n++] = "--bootstrap";
    argv[n++] = bc->bootstraps;
    argv[n++] = "--topic";
    argv[n++] = topic;
    argv[n++] = "--group";
    argv[n++] = group;
    argv[n++] = "--mode";
    argv[n++] = run->filter ? "filter" : "baseline";
    argv[n++] = "--batch";
    argv[n++] = batch;
    argv[n++] = "--interval";
    argv[n++] = interval;
    argv[n++] = "--expect";
    argv[n++] = expect_s;
    argv[n++] = "--ready-file";
    argv[n++] = ready;
    argv[n++] = "--done-file";
    argv[n++] = done;
    argv[n++] = "--result-file";
    argv[n++] = result;
    if (opt->policy) {
        argv[n++] = "--policy";
        argv[n++] = (char *)opt->policy;
    }
    argv[n] = NULL;
    bench_progress(bc, "bench: %s, %s (batch %zu, interval %d ms)...",
                   run->filter ? "pseudostream" : "baseline",
                   run->offered_rate > 0 ? "fixed rate" : "maximum rate", run->batch_max_events,
                   run->transaction_interval_ms);
    pid_t pid = 0;
    ps_err_t rc = bench_spawn(opt->exe, argv, log, &pid, err);
    if (rc == PS_OK && run->offered_rate > 0) {
        /* A trickle until the filter has joined and committed once, so the
         * group join neither counts as latency nor leaves a backlog behind;
         * the filter measures only what was produced a second after that. */
        size_t sent = 0, total = 0;
        char line[64];
        int64_t started = ps_time_mono_ms();
        while (rc == PS_OK && !bench_file_line(ready, line, sizeof(line))) {
            rc = bench_feed(bc, topic, 10, 0, &sent, err);
            total += sent;
            sleep_ms(100);
            if (ps_time_mono_ms() - started > BENCH_WAIT_MS ||
                waitpid(pid, NULL, WNOHANG) == pid) {
                rc = ps_error_set(err, PS_ERR_IO, "the filter run did not start (see %s)", log);
                pid = 0;
            }
        }
        if (rc == PS_OK) {
            rc = bench_feed(bc, topic, feed, run->offered_rate, &sent, err);
            total += sent;
        }
        FILE *fp = fopen(done, "w");
        if (fp) {
            fprintf(fp, "%zu\n", total);
            fclose(fp);
        }
    }
    int status = 0;
    if (pid > 0 && waitpid(pid, &status, 0) == pid && rc == PS_OK &&
        (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
        rc = ps_error_set(err, PS_ERR_IO, "the filter run failed (see %s)", log);
    }
    if (rc == PS_OK) {
        read_result(result, run);
    }
    return rc;
}

static ps_err_t bench_preload(struct bench_ctx *bc, const struct ps_schema *hl7v2,
                              uint32_t hl7v2_id, const struct ps_schema *fhir, uint32_t fhir_id,
                              struct ps_bench_pipeline_result *res, struct ps_error *err)
{
    const struct ps_bench_pipeline_options *opt = bc->opt;
    size_t bytes = 0;
    bc->pool_count = opt->events < BENCH_PRELOAD_POOL ? opt->events : BENCH_PRELOAD_POOL;
    bc->pool = calloc(bc->pool_count + 1, sizeof(*bc->pool));
    if (!bc->pool) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory");
    }
    ps_err_t rc = prepare(hl7v2, hl7v2_id, fhir, fhir_id, bc->pool_count, bc->pool, &bytes, err);
    if (rc != PS_OK) {
        return rc;
    }
    res->min_bytes = SIZE_MAX;
    for (size_t i = 0; i < bc->pool_count; i++) {
        res->min_bytes = bc->pool[i].len < res->min_bytes ? bc->pool[i].len : res->min_bytes;
        res->max_bytes = bc->pool[i].len > res->max_bytes ? bc->pool[i].len : res->max_bytes;
    }
    res->mean_bytes = (double)bytes / (double)bc->pool_count;
    /* Keyed by patient, so partitions fill unevenly: leave a third spare. */
    double per_partition = res->mean_bytes * (double)opt->events / opt->partitions;
    if (per_partition > BENCH_PARTITION_BYTES * 2 / 3) {
        return ps_error_set(err, PS_ERR_INVALID, "%zu events of %.0f bytes do not fit %d "
                            "partitions of the embedded broker (5 MiB each): raise --partitions",
                            opt->events, res->mean_bytes, opt->partitions);
    }
    bench_progress(bc, "bench: preloading %zu events (%.0f bytes on average, %zu to %zu)...",
                   opt->events, res->mean_bytes, res->min_bytes, res->max_bytes);
    size_t sent = 0;
    return bench_feed(bc, "bench.in", opt->events, 0, &sent, err);
}

static size_t latency_feed(const struct ps_bench_pipeline_options *opt, double rate)
{
    if (opt->latency_events) {
        return opt->latency_events;
    }
    size_t n = (size_t)(rate * BENCH_LATENCY_SECONDS);
    return n < opt->events ? n : opt->events;
}

static ps_err_t bench_sweep(struct bench_ctx *bc, struct ps_bench_pipeline_result *res,
                            struct ps_error *err)
{
    static const struct {
        int interval;
        size_t batch;
    } grid[] = {{100, 10000}, {250, 10000}, {500, 10000}, {1000, 10000}, {2000, 10000},
                {500, 1000}, {500, 100000}, {1000, 100000}};
    const struct ps_bench_pipeline_options *opt = bc->opt;
    double rate = opt->offered_rate > 0 ? opt->offered_rate
                                        : res->filter_max.events_per_second / 2;
    size_t expect = opt->events < BENCH_SWEEP_EVENTS ? opt->events : BENCH_SWEEP_EVENTS;
    ps_err_t rc = PS_OK;
    for (size_t g = 0; rc == PS_OK && g < sizeof(grid) / sizeof(grid[0]); g++) {
        struct ps_bench_run *r = &res->sweep[res->sweep_count++];
        struct ps_bench_run lat = {.filter = 1, .batch_max_events = grid[g].batch,
                                   .transaction_interval_ms = grid[g].interval,
                                   .offered_rate = rate};
        *r = (struct ps_bench_run){.filter = 1, .batch_max_events = grid[g].batch,
                                   .transaction_interval_ms = grid[g].interval};
        rc = bench_run(bc, r, expect, 0, err);
        if (rc == PS_OK) {
            rc = bench_run(bc, &lat, 0, latency_feed(opt, rate) / 2, err);
        }
        r->offered_rate = rate;
        r->latency_samples = lat.latency_samples;
        r->p50_ms = lat.p50_ms;
        r->p99_ms = lat.p99_ms;
        r->p999_ms = lat.p999_ms;
    }
    return rc;
}

ps_err_t ps_bench_pipeline(const struct ps_bench_pipeline_options *opt,
                           const struct ps_engine *engine, const struct ps_schema *hl7v2,
                           uint32_t hl7v2_id, const struct ps_schema *fhir, uint32_t fhir_id,
                           struct ps_bench_pipeline_result *res, struct ps_error *err)
{
    struct bench_ctx bc = {.opt = opt, .engine = engine, .err = err};
    memset(res, 0, sizeof(*res));
    res->events = opt->events;
    res->partitions = opt->partitions;
    res->output_partitions = opt->output_partitions;
    res->destinations = ps_engine_destination_count(engine);
    const char *tmp = getenv("TMPDIR");
    snprintf(bc.dir, sizeof(bc.dir), "%s/pseudostream-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(bc.dir)) {
        return ps_error_set(err, PS_ERR_IO, "cannot create a work directory: %s",
                            strerror(errno));
    }
    bench_progress(&bc, "bench: work directory %s", bc.dir);
    ps_err_t rc = bench_broker_start(&bc, err);
    if (rc == PS_OK) {
        rc = bench_preload(&bc, hl7v2, hl7v2_id, fhir, fhir_id, res, err);
    }
    struct ps_bench_run *runs[] = {&res->base_max, &res->filter_max};
    for (int f = 0; rc == PS_OK && f < 2; f++) {
        *runs[f] = (struct ps_bench_run){.filter = f, .batch_max_events = opt->batch_max_events,
                                         .transaction_interval_ms = opt->transaction_interval_ms};
        rc = bench_run(&bc, runs[f], opt->events, 0, err);
    }
    struct ps_bench_run *lats[] = {&res->base_latency, &res->filter_latency};
    for (int f = 0; rc == PS_OK && f < 2; f++) {
        /* A run too short to measure (a smoke test) is fed at a modest rate. */
        double rate = opt->offered_rate > 0 ? opt->offered_rate
                                            : runs[f]->events_per_second / 2;
        *lats[f] = (struct ps_bench_run){.filter = f, .batch_max_events = opt->batch_max_events,
                                         .transaction_interval_ms = opt->transaction_interval_ms,
                                         .offered_rate = rate >= 100 ? rate : 1000};
        rc = bench_run(&bc, lats[f], 0, latency_feed(opt, lats[f]->offered_rate), err);
    }
    if (rc == PS_OK && opt->sweep) {
        rc = bench_sweep(&bc, res, err);
    }
    if (bc.broker > 0) {
        kill(bc.broker, SIGTERM);
        waitpid(bc.broker, NULL, 0);
    }
    for (size_t i = 0; bc.pool && i < bc.pool_count; i++) {
        free(bc.pool[i].data);
    }
    free(bc.pool);
    return rc;
}

/* ====================================================================== worker
 * One filter run: the real pipeline (or its pass-through mode), measured from
 * the first committed batch to the last, so the group join is not counted. */

#define LATENCY_BUCKETS 120000 /* 1 ms buckets up to two minutes */

struct worker_state {
    const struct ps_bench_worker_options *wo;
    volatile sig_atomic_t stop;
    double committed;        /* events committed so far */
    double window_events;    /* ... after the first batch */
    int64_t t_first, t_last; /* monotonic ms: first and last commit */
    double cpu_first, cpu_last;
    double thread_first, thread_last; /* the polling thread's own CPU (engine, sends) */
    double batches;                   /* committed after the first */
    int64_t produced_at;              /* monotonic ms: the open batch's outputs all sent */
    double commit_ms_sum;             /* time from all sent to committed, summed */
    int64_t ready_ms;        /* wall clock: first commit; latency counts after it */
    double expect;
    uint64_t *latency;       /* LATENCY_BUCKETS + 1 (the last: beyond) */
    uint64_t samples;
    long rss_early_kb, rss_last_kb;
    int64_t rss_checked;
    long rss_series[BENCH_RSS_SAMPLES]; /* every BENCH_RSS_EVERY_MS of the run */
    size_t rss_count;
    int64_t rss_sampled;
    clockid_t poll_clock; /* CPU clock of the thread running the pipeline loop */
};

static double process_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* The polling thread's CPU, read from whichever thread calls (the settled
 * hook runs on the pipeline's commit thread). */
static double thread_cpu_seconds(const struct worker_state *ws)
{
    struct timespec ts;
    clock_gettime(ws->poll_clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long resident_kb(void)
{
    long size = 0, resident = 0;
    FILE *fp = fopen("/proc/self/statm", "r");
    if (fp) {
        if (fscanf(fp, "%ld %ld", &size, &resident) != 2) {
            resident = 0;
        }
        fclose(fp);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* The pipeline's fault points double as the benchmark's stopwatch: how long
 * a commit takes once everything is sent. */
static void worker_point(void *opaque, enum ps_pipeline_point point, uint64_t batch)
{
    (void)batch;
    struct worker_state *ws = opaque;
    if (point == PS_PIPELINE_BATCH_PRODUCED) {
        ws->produced_at = ps_time_mono_ms();
    }
}

static void worker_settled(void *opaque, const struct ps_kafka_batch *batch)
{
    struct worker_state *ws = opaque;
    const struct ps_bench_worker_options *wo = ws->wo;
    size_t count = ps_kafka_batch_count(batch);
    int64_t now_ms = ps_time_now_ms();
    int64_t mono = ps_time_mono_ms();
    ws->committed += (double)count;
    ws->t_last = mono;
    ws->commit_ms_sum += (double)(mono - ws->produced_at);
    if (ws->t_first == 0) {
        ws->t_first = mono;
        ws->cpu_first = process_cpu_seconds();
        ws->thread_first = thread_cpu_seconds(ws);
        ws->ready_ms = now_ms;
        ws->rss_early_kb = resident_kb();
        FILE *fp = wo->ready_file ? fopen(wo->ready_file, "w") : NULL;
        if (fp) {
            fprintf(fp, "%" PRId64 "\n", now_ms);
            fclose(fp);
        }
    } else {
        ws->window_events += (double)count;
        ws->cpu_last = process_cpu_seconds();
        ws->thread_last = thread_cpu_seconds(ws);
        ws->batches++;
    }
    for (size_t i = 0; i < count; i++) {
        const struct ps_kafka_message *msg = ps_kafka_batch_message(batch, i);
        if (msg->timestamp_ms >= ws->ready_ms + 1000) {
            int64_t lat = now_ms - msg->timestamp_ms;
            ws->latency[lat < 0 ? 0 : lat < LATENCY_BUCKETS ? lat : LATENCY_BUCKETS]++;
            ws->samples++;
        }
    }
    /* A tenth into the window and then every second: resident memory. */
    if (mono - ws->rss_checked >= 1000) {
        ws->rss_checked = mono;
        ws->rss_last_kb = resident_kb();
        if (mono - ws->rss_sampled >= BENCH_RSS_EVERY_MS && ws->rss_count < BENCH_RSS_SAMPLES) {
            ws->rss_sampled = mono;
            ws->rss_series[ws->rss_count++] = ws->rss_last_kb;
        }
    }
    char line[64];
    if (ws->expect == 0 && wo->done_file && bench_file_line(wo->done_file, line, sizeof(line))) {
        ws->expect = atof(line);
    }
    if (ws->expect > 0 && ws->committed >= ws->expect) {
        ws->stop = 1;
    }
}

static double latency_percentile(const struct worker_state *ws, double q)
{
    uint64_t want = (uint64_t)((double)ws->samples * q), seen = 0;
    for (size_t b = 0; b <= LATENCY_BUCKETS; b++) {
        seen += ws->latency[b];
        if (seen > want) {
            return (double)b;
        }
    }
    return (double)LATENCY_BUCKETS;
}

ps_err_t ps_bench_pipeline_worker(const struct ps_engine *engine, struct ps_optout *optout,
                                  const struct ps_bench_worker_options *wo,
                                  struct ps_error *err)
{
    struct worker_state ws = {.wo = wo, .expect = wo->expect};
    ws.latency = calloc(LATENCY_BUCKETS + 1, sizeof(*ws.latency));
    struct ps_pipeline_stats *stats = calloc(1, sizeof(*stats));
    if (!ws.latency || !stats) {
        free(ws.latency);
        free(stats);
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory");
    }
    char txn[128];
    snprintf(txn, sizeof(txn), "%s-txn", wo->group);
    const char *topics[] = {wo->topic};
    char base[PS_PIPELINE_MAX_DESTINATIONS + 1][32];
    const char *base_topics[PS_PIPELINE_MAX_DESTINATIONS + 1];
    size_t dsts = ps_engine_destination_count(engine);
    for (size_t d = 0; d <= dsts && d <= PS_PIPELINE_MAX_DESTINATIONS; d++) {
        snprintf(base[d], sizeof(base[d]), "bench.base.%zu", d);
        base_topics[d] = base[d];
    }
    struct ps_pipeline_options po = {
        .bootstraps = wo->bootstraps,
        .group_id = wo->group,
        .transactional_id = txn,
        .topics = topics,
        .topic_count = 1,
        .dead_letter_topic = "bench.deadletter",
        .audit_topic = "bench.audit",
        .escrow_topic = "bench.escrow",
        .optout = ps_engine_needs_optout(engine) ? optout : NULL,
        .optout_max_age_ms = 24 * 3600 * 1000LL,
        .batch_max_events = wo->batch_max_events,
        .transaction_interval_ms = wo->transaction_interval_ms,
        .idle_exit_ms = BENCH_WAIT_MS,
        .stop = &ws.stop,
        .passthrough_topics = wo->filter ? NULL : base_topics,
        .passthrough_count = wo->filter ? 0 : dsts + 1,
        .settled_hook = worker_settled,
        .settled_opaque = &ws,
        .fault_hook = worker_point,
        .fault_opaque = &ws,
    };
    ps_codec_limits_default(&po.limits);
    if (pthread_getcpuclockid(pthread_self(), &ws.poll_clock) != 0) {
        ws.poll_clock = CLOCK_THREAD_CPUTIME_ID;
    }
    double cpu_start = process_cpu_seconds();
    int64_t t_start = ps_time_mono_ms();
    ps_err_t rc = ps_pipeline_run(engine, &po, stats, err);
    if (ws.window_events == 0) {
        /* One batch only (a smoke run): the whole run, group join included. */
        ws.window_events = ws.committed;
        ws.t_first = t_start;
        ws.cpu_first = cpu_start;
        ws.cpu_last = process_cpu_seconds();
        ws.thread_first = 0;
        ws.thread_last = 0;
        ws.batches = 1;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    FILE *fp = rc == PS_OK ? fopen(wo->result_file, "w") : NULL;
    if (rc == PS_OK && !fp) {
        rc = ps_error_set(err, PS_ERR_IO, "cannot write %s: %s", wo->result_file,
                          strerror(errno));
    }
    if (fp) {
        fprintf(fp, "events %.0f\nseconds %.6f\ncpu_seconds %.6f\npeak_rss_kb %ld\n"
                "rss_early_kb %ld\nrss_last_kb %ld\nlatency_samples %" PRIu64 "\n"
                "p50_ms %.1f\np99_ms %.1f\np999_ms %.1f\nconsumed %" PRIu64 "\n"
                "dead_lettered %" PRIu64 "\nthread_cpu_seconds %.6f\nbatches %.0f\n"
                "commit_ms %.1f\n",
                ws.window_events, ws.t_last > ws.t_first ? (ws.t_last - ws.t_first) / 1e3 : 0,
                ws.cpu_last - ws.cpu_first, ru.ru_maxrss, ws.rss_early_kb, ws.rss_last_kb,
                ws.samples, latency_percentile(&ws, 0.50), latency_percentile(&ws, 0.99),
                latency_percentile(&ws, 0.999), stats->consumed, stats->dead_lettered,
                ws.thread_last - ws.thread_first, ws.batches,
                ws.committed > 0 ? ws.commit_ms_sum / (ws.batches + 1) : 0);
        fprintf(fp, "rss_series_kb");
        for (size_t i = 0; i < ws.rss_count; i++) {
            fprintf(fp, " %ld", ws.rss_series[i]);
        }
        fprintf(fp, "\n");
        fclose(fp);
    }
    free(ws.latency);
    free(stats);
    return rc;
}
