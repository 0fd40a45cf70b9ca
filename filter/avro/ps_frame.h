/*
 * ps_frame: the two framings Kafka users put around an Avro datum.
 *
 *   Confluent:      00 | schema id (4 bytes, big-endian)       | datum
 *   single-object:  C3 01 | CRC-64-AVRO fingerprint (8 bytes, LE) | datum
 *
 * Parsing never copies: the frame points into the caller's bytes.
 */
#ifndef PS_FRAME_H
#define PS_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "ps_buf.h"
#include "ps_error.h"

enum ps_frame_format {
    PS_FRAME_CONFLUENT = 1,
    PS_FRAME_SINGLE_OBJECT = 2
};

struct ps_frame {
    enum ps_frame_format format;
    uint32_t schema_id;     /* Confluent only */
    uint64_t fingerprint;   /* single-object only */
    const uint8_t *payload; /* points into the parsed bytes */
    size_t payload_len;
};

/* Parses the frame at data. PS_ERR_EMPTY for zero bytes; PS_ERR_FRAME when the
 * magic bytes are neither framing's or the header is cut short. */
ps_err_t ps_frame_parse(const void *data, size_t len, struct ps_frame *frame_p,
                        struct ps_error *err);

/* Appends the header of a frame (no datum) to out. */
ps_err_t ps_frame_write_confluent(uint32_t schema_id, struct ps_buf *out);
ps_err_t ps_frame_write_single_object(uint64_t fingerprint, struct ps_buf *out);

/* "confluent" / "single_object"; parse returns -1 for an unknown name. */
const char *ps_frame_format_name(enum ps_frame_format format);
int ps_frame_format_parse(const char *name);

#endif
