/*
 * ps_generate: produce artificial events (ps_synth) to a topic, framed as
 * Kafka users frame Avro, plus optional malformed messages of each kind the
 * filter must dead-letter. Used by `generate`, `demo`, tests and benchmarks.
 *
 * Inputs are keyed by the patient's hospital number and carry an
 * identifying header, as interface engines often do, so tests can show that
 * neither reaches a secondary-use topic.
 */
#ifndef PS_GENERATE_H
#define PS_GENERATE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ps_error.h"
#include "ps_frame.h"
#include "ps_kafka.h"
#include "ps_schema.h"

/* The kinds of malformed input generated, one of each per round. */
enum ps_malformed {
    PS_MALFORMED_BAD_FRAME = 0,     /* neither framing's magic bytes */
    PS_MALFORMED_UNKNOWN_SCHEMA,    /* Confluent frame with an id nobody knows */
    PS_MALFORMED_TRUNCATED,         /* a valid event cut in half */
    PS_MALFORMED_HOSTILE_COUNT,     /* an array claiming 50 million items in a few bytes */
    PS_MALFORMED_COUNT
};

struct ps_generate_options {
    const char *bootstraps;
    const char *topic;
    size_t count;                    /* valid events */
    size_t malformed_rounds;         /* rounds of one malformed message of each kind */
    enum ps_frame_format format;
    const struct ps_schema *hl7v2;   /* the reference schemas */
    const struct ps_schema *fhir;
    uint32_t hl7v2_id;               /* Confluent ids of the two schemas */
    uint32_t fhir_id;
    uint64_t seed;
    uint32_t patients;
    FILE *manifest;                  /* NULL, or where each patient's identifiers go (JSON lines) */
};

struct ps_generate_stats {
    size_t valid;
    size_t malformed;
};

ps_err_t ps_generate_run(const struct ps_generate_options *opt, struct ps_generate_stats *stats,
                         struct ps_error *err);

#endif
