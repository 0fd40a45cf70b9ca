#include "ps_bench.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ps_audit.h"
#include "ps_buf.h"
#include "ps_codec.h"
#include "ps_frame.h"
#include "ps_synth.h"

struct encoded {
    uint8_t *data;
    size_t len;
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
        rc = ps_synth_next(synth, &json, &family, NULL);
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
        const struct ps_plan_fields *f = &outs[d].plan->fields;
        memset(&ads[d], 0, sizeof(ads[d]));
        ads[d].name = ps_engine_destination(engine, d)->name;
        ads[d].topic = ps_engine_destination(engine, d)->topic;
        if (outs[d].decision == PS_WITHHELD) {
            ads[d].decision = PS_AUDIT_WITHHELD;
            ads[d].reason = ps_err_name(outs[d].reason);
            ads[d].detail = outs[d].detail;
        } else {
            ads[d].kept = f->kept;
            ads[d].kept_count = f->kept_count;
            ads[d].pseudonymised = f->pseudonymised;
            ads[d].pseudonymised_count = f->pseudonymised_count;
            ads[d].generalised = (const char *const *)f->generalised;
            ads[d].generalised_count = f->generalised_count;
            ads[d].dropped = f->dropped;
            ads[d].dropped_count = f->dropped_count;
            ads[d].lists_avro = outs[d].audit_lists;
            ads[d].lists_avro_len = outs[d].audit_lists_len;
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
    for (size_t round = 0; rc == PS_OK && round < rounds; round++) {
        for (size_t i = 0; rc == PS_OK && i < events; i++) {
            const struct ps_engine_output *outs;
            struct ps_error why;
            if (ps_engine_process(worker, in[i].data, in[i].len, &outs, &why) != PS_OK) {
                continue; /* none expected: generated events all decode */
            }
            for (size_t d = 0; d < count; d++) {
                *(outs[d].decision == PS_DISCLOSED ? &r->disclosed : &r->withheld) += 1;
            }
            rc = audit_one(engine, worker, outs, ads, &audit, err);
            r->events++;
        }
    }
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
