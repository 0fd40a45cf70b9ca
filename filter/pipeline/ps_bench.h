/*
 * ps_bench: the engine micro-benchmark. Events are generated and encoded
 * before the clock starts; then each is taken through what the pipeline does
 * per event with no broker: frame, decode, every destination's plan, and the
 * audit record. Broker cost and engine cost are so seen apart.
 */
#ifndef PS_BENCH_H
#define PS_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "ps_engine.h"
#include "ps_error.h"
#include "ps_schema.h"

struct ps_bench_engine_result {
    size_t events;
    size_t disclosed;          /* destination records written */
    size_t withheld;
    size_t bytes_in;
    double cpu_seconds;        /* this thread's CPU time over the timed loop */
    double wall_seconds;
    double events_per_cpu_second;
};

/* Runs `events` generated events (pre-encoded, Confluent-framed with ids
 * hl7v2_id and fhir_id) through engine on one thread, `rounds` times over. */
ps_err_t ps_bench_engine(const struct ps_engine *engine, const struct ps_optout *optout,
                         const struct ps_schema *hl7v2, uint32_t hl7v2_id,
                         const struct ps_schema *fhir, uint32_t fhir_id, size_t events,
                         size_t rounds, struct ps_bench_engine_result *result,
                         struct ps_error *err);

#endif
