#include "ps_frame.h"

#include <string.h>

/*
 * Error messages here name the framing and the lengths involved, never a byte
 * of the message: even the first byte of a payload that is not ours to frame
 * may be the first byte of an identifier.
 */

#define CONFLUENT_MAGIC 0x00
#define CONFLUENT_HEADER_LEN 5
#define SINGLE_OBJECT_MAGIC0 0xC3
#define SINGLE_OBJECT_MAGIC1 0x01
#define SINGLE_OBJECT_HEADER_LEN 10

ps_err_t ps_frame_parse(const void *data, size_t len, struct ps_frame *frame_p,
                        struct ps_error *err)
{
    if (!frame_p || (!data && len > 0)) {
        return ps_error_set(err, PS_ERR_INVALID, "frame: bytes and output are required");
    }
    if (len == 0) {
        return ps_error_set(err, PS_ERR_EMPTY, "empty message");
    }
    const uint8_t *p = data;
    struct ps_frame frame;
    memset(&frame, 0, sizeof(frame));

    if (p[0] == CONFLUENT_MAGIC) {
        if (len < CONFLUENT_HEADER_LEN) {
            return ps_error_set(err, PS_ERR_FRAME,
                                "Confluent header cut short: %zu of %d bytes", len,
                                CONFLUENT_HEADER_LEN);
        }
        frame.format = PS_FRAME_CONFLUENT;
        frame.schema_id = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 |
                          (uint32_t)p[4];
        frame.payload = p + CONFLUENT_HEADER_LEN;
        frame.payload_len = len - CONFLUENT_HEADER_LEN;
    } else if (p[0] == SINGLE_OBJECT_MAGIC0) {
        if (len < 2) {
            return ps_error_set(err, PS_ERR_FRAME,
                                "single-object header cut short: %zu of %d bytes", len,
                                SINGLE_OBJECT_HEADER_LEN);
        }
        if (p[1] != SINGLE_OBJECT_MAGIC1) {
            /* C3 01 is format version 1, the only one the spec defines. */
            return ps_error_set(err, PS_ERR_FRAME,
                                "single-object marker is not followed by version 1");
        }
        if (len < SINGLE_OBJECT_HEADER_LEN) {
            return ps_error_set(err, PS_ERR_FRAME,
                                "single-object header cut short: %zu of %d bytes", len,
                                SINGLE_OBJECT_HEADER_LEN);
        }
        uint64_t fp = 0;
        for (int i = 9; i >= 2; i--) {
            fp = fp << 8 | p[i];
        }
        frame.format = PS_FRAME_SINGLE_OBJECT;
        frame.fingerprint = fp;
        frame.payload = p + SINGLE_OBJECT_HEADER_LEN;
        frame.payload_len = len - SINGLE_OBJECT_HEADER_LEN;
    } else {
        return ps_error_set(err, PS_ERR_FRAME,
                            "neither Confluent-framed (00) nor Avro single-object (C3 01)");
    }
    /* An Avro datum may be zero bytes long (a record with no fields), so an
     * empty payload after a whole header is a frame like any other. */
    *frame_p = frame;
    return PS_OK;
}

ps_err_t ps_frame_write_confluent(uint32_t schema_id, struct ps_buf *out)
{
    if (!out) {
        return PS_ERR_INVALID;
    }
    uint8_t header[CONFLUENT_HEADER_LEN] = {
        CONFLUENT_MAGIC,
        (uint8_t)(schema_id >> 24),
        (uint8_t)(schema_id >> 16),
        (uint8_t)(schema_id >> 8),
        (uint8_t)schema_id,
    };
    return ps_buf_append(out, header, sizeof(header));
}

ps_err_t ps_frame_write_single_object(uint64_t fingerprint, struct ps_buf *out)
{
    if (!out) {
        return PS_ERR_INVALID;
    }
    uint8_t header[SINGLE_OBJECT_HEADER_LEN] = {SINGLE_OBJECT_MAGIC0, SINGLE_OBJECT_MAGIC1};
    for (int i = 0; i < 8; i++) {
        header[2 + i] = (uint8_t)(fingerprint >> (8 * i));
    }
    return ps_buf_append(out, header, sizeof(header));
}

const char *ps_frame_format_name(enum ps_frame_format format)
{
    switch (format) {
    case PS_FRAME_CONFLUENT:
        return "confluent";
    case PS_FRAME_SINGLE_OBJECT:
        return "single_object";
    }
    return "unknown";
}

int ps_frame_format_parse(const char *name)
{
    if (!name) {
        return -1;
    }
    if (strcmp(name, "confluent") == 0) {
        return PS_FRAME_CONFLUENT;
    }
    if (strcmp(name, "single_object") == 0) {
        return PS_FRAME_SINGLE_OBJECT;
    }
    return -1;
}
