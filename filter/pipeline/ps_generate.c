#include "ps_generate.h"

#include <string.h>

#include "ps_buf.h"
#include "ps_codec.h"
#include "ps_log.h"
#include "ps_synth.h"

struct generator {
    const struct ps_generate_options *opt;
    struct ps_kafka_producer *producer;
    struct ps_buf json;
    struct ps_buf frame;
};

static ps_err_t frame_header(const struct ps_generate_options *opt, const struct ps_schema *schema,
                             uint32_t id, struct ps_buf *out)
{
    if (opt->format == PS_FRAME_SINGLE_OBJECT) {
        return ps_frame_write_single_object(ps_schema_fingerprint(schema), out);
    }
    return ps_frame_write_confluent(id, out);
}

static ps_err_t send(struct generator *g, const char *key, const void *value, size_t len,
                     const char *mrn, struct ps_error *err)
{
    struct ps_kafka_header headers[2] = {
        {"hl7.sending_facility", "RR8", 3},
        {"patient.mrn", mrn, strlen(mrn)},
    };
    return ps_kafka_producer_send(g->producer, g->opt->topic, -1, key, strlen(key), value, len,
                                  headers, 2, err);
}

/* Encodes one synthetic event; local_id receives the patient's hospital number. */
static ps_err_t encode_event(struct generator *g, struct ps_synth *synth, char *local_id,
                             size_t size, struct ps_error *err)
{
    enum ps_synth_family family;
    size_t patient;
    ps_buf_reset(&g->json);
    ps_buf_reset(&g->frame);
    ps_err_t rc = ps_synth_next(synth, &g->json, &family, &patient);
    if (rc != PS_OK) {
        return ps_error_set(err, rc, "could not generate an event");
    }
    const struct ps_schema *schema = family == PS_SYNTH_FHIR ? g->opt->fhir : g->opt->hl7v2;
    uint32_t id = family == PS_SYNTH_FHIR ? g->opt->fhir_id : g->opt->hl7v2_id;
    rc = frame_header(g->opt, schema, id, &g->frame);
    if (rc == PS_OK) {
        rc = ps_codec_json_to_datum(schema, (const char *)g->json.data, g->json.len, &g->frame,
                                    err);
    }
    snprintf(local_id, size, "%s", ps_synth_local_id(synth, patient));
    return rc;
}

static ps_err_t send_malformed(struct generator *g, struct ps_synth *synth, enum ps_malformed kind,
                               struct ps_error *err)
{
    char local_id[16];
    struct ps_buf *b = &g->frame;
    ps_err_t rc = PS_OK;
    switch (kind) {
    case PS_MALFORMED_BAD_FRAME:
        ps_buf_reset(b);
        rc = ps_buf_append_str(b, "MSH|^~\\&|PAS|RR8|not Avro at all");
        break;
    case PS_MALFORMED_UNKNOWN_SCHEMA:
        rc = encode_event(g, synth, local_id, sizeof(local_id), err);
        if (rc == PS_OK) {
            b->data[0] = 0;
            memcpy(b->data + 1, "\x00\x00\x03\xe7", 4); /* Confluent id 999 */
        }
        break;
    case PS_MALFORMED_TRUNCATED:
        rc = encode_event(g, synth, local_id, sizeof(local_id), err);
        b->len = b->len / 2;
        break;
    case PS_MALFORMED_HOSTILE_COUNT: {
        /* msh: five one-letter strings and event_time 0; pid: two null unions;
         * then local_identifiers claims 50,000,000 records and the bytes end. */
        static const uint8_t datum[] = {0x02, 'M', 0x02, 'P', 0x02, 'R', 0x02, 'A', 0x00,
                                        0x02, '2', 0x00, 0x00, 0x80, 0xc2, 0xd7, 0x2f};
        ps_buf_reset(b);
        rc = frame_header(g->opt, g->opt->hl7v2, g->opt->hl7v2_id, b);
        if (rc == PS_OK) {
            rc = ps_buf_append(b, datum, sizeof(datum));
        }
        break;
    }
    default:
        break;
    }
    if (rc != PS_OK) {
        return rc;
    }
    return send(g, "malformed", b->data, b->len, "unknown", err);
}

static ps_err_t write_manifest(const struct ps_generate_options *opt, struct ps_synth *synth)
{
    struct ps_buf line;
    ps_buf_init(&line, 0);
    for (size_t i = 0; opt->manifest && i < ps_synth_patient_count(synth); i++) {
        ps_buf_reset(&line);
        if (ps_synth_manifest(synth, i, &line) == PS_OK) {
            fprintf(opt->manifest, "%.*s\n", (int)line.len, (const char *)line.data);
        }
    }
    ps_buf_free(&line);
    return PS_OK;
}

static ps_err_t generate_all(struct generator *g, struct ps_synth *synth,
                             struct ps_generate_stats *stats, struct ps_error *err)
{
    const struct ps_generate_options *opt = g->opt;
    size_t total = opt->count + opt->malformed_rounds * PS_MALFORMED_COUNT;
    size_t every = opt->malformed_rounds ? total / (opt->malformed_rounds + 1) : 0;
    ps_err_t rc = PS_OK;
    for (size_t i = 0; rc == PS_OK && stats->valid < opt->count; i++) {
        /* Malformed rounds are spread through the stream, valid events around them. */
        if (every && i > 0 && i % every == 0 &&
            stats->malformed < opt->malformed_rounds * PS_MALFORMED_COUNT) {
            for (int k = 0; rc == PS_OK && k < PS_MALFORMED_COUNT; k++) {
                rc = send_malformed(g, synth, (enum ps_malformed)k, err);
                stats->malformed++;
            }
            continue;
        }
        char local_id[16];
        rc = encode_event(g, synth, local_id, sizeof(local_id), err);
        if (rc == PS_OK) {
            rc = send(g, local_id, g->frame.data, g->frame.len, local_id, err);
            stats->valid++;
        }
    }
    while (rc == PS_OK && stats->malformed < opt->malformed_rounds * PS_MALFORMED_COUNT) {
        rc = send_malformed(g, synth, (enum ps_malformed)(stats->malformed % PS_MALFORMED_COUNT),
                            err);
        stats->malformed++;
    }
    return rc;
}

ps_err_t ps_generate_run(const struct ps_generate_options *opt, struct ps_generate_stats *stats,
                         struct ps_error *err)
{
    struct generator g = {.opt = opt};
    struct ps_synth *synth = NULL;
    struct ps_synth_options so = {.seed = opt->seed, .patients = opt->patients};
    memset(stats, 0, sizeof(*stats));
    ps_buf_init(&g.json, 0);
    ps_buf_init(&g.frame, 0);
    ps_err_t rc = ps_synth_new(&so, &synth, err);
    if (rc == PS_OK) {
        rc = ps_kafka_producer_new(opt->bootstraps, NULL, NULL, 0, &g.producer, err);
    }
    if (rc == PS_OK) {
        rc = generate_all(&g, synth, stats, err);
    }
    if (rc == PS_OK) {
        rc = ps_kafka_producer_flush(g.producer, 60000, err);
    }
    if (rc == PS_OK) {
        rc = write_manifest(opt, synth);
    }
    ps_kafka_producer_destroy(g.producer);
    ps_synth_destroy(synth);
    ps_buf_free(&g.json);
    ps_buf_free(&g.frame);
    return rc;
}
