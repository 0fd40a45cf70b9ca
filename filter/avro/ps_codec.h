/*
 * ps_codec: decoding Avro datums safely, reading decoded events, and the
 * readable JSON form.
 *
 * Avro C 1.11 is not safe on hostile input (a truncated string leaks its
 * declared length, a tiny message can claim hundreds of megabytes of items, a
 * deep datum can overflow the stack). So every datum is first walked by a
 * validator of our own against the schema: it checks every length and count
 * against the bytes that remain, the nesting depth and the item budget, and
 * only a datum that passes is handed to Avro C. Avro C's allocations are also
 * counted per message (avro_set_allocator) and capped.
 *
 * The validator's walk also records where every field's encoding lies (the
 * tape, ps_avro_internal.h), so one pass over the bytes is the whole decode:
 * leaves are read from the event's own copy of the datum, and a projection
 * copies kept fields' bytes as they are. Avro C decodes a datum only when its
 * value is asked for (the JSON form) or when its encoding is not canonical
 * (several array blocks, a map, an over-long varint), and remains the
 * reference the tape is tested against (tests/unit/test_fastpath.c).
 *
 * A decoder holds one reusable event (tape, datum copy, Avro value) per
 * schema. It is not thread-safe: one decoder per thread.
 *
 * The readable JSON form (used by `consume`, `policy preview` and the
 * generator) is plain JSON: records are objects, arrays arrays, a union of
 * null and a type is null or the value, enums and strings are strings, bytes
 * are strings (ISO-8859-1 code points), "date" is "YYYY-MM-DD" and
 * "timestamp-millis" is "YYYY-MM-DDThh:mm:ss.fffZ".
 */
#ifndef PS_CODEC_H
#define PS_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "ps_buf.h"
#include "ps_error.h"
#include "ps_scalar.h"
#include "ps_schema.h"

struct ps_codec_limits {
    size_t max_message_bytes; /* datum size cap (default 1 MiB) */
    size_t max_alloc_bytes;   /* memory one message's decode may take: Avro C's
                                 allocations, or on the tape its string and bytes
                                 values and its entries (default 64 MiB) */
    int max_depth;            /* nesting depth cap of a datum (default 32) */
    size_t max_items;         /* total array/map items per datum (default 100000) */
};

/* Fills limits with the defaults above. */
void ps_codec_limits_default(struct ps_codec_limits *limits);

struct ps_decoder;
struct ps_event;

/* limits may be NULL for the defaults. */
ps_err_t ps_decoder_new(const struct ps_codec_limits *limits, struct ps_decoder **dec_p,
                        struct ps_error *err);
/* NULL is a no-op. */
void ps_decoder_destroy(struct ps_decoder *dec);

/* Decodes a datum (no frame) written with schema. On success *ev_p is
 * borrowed from the decoder and stays valid until the next decode of the same
 * schema on this decoder or its destruction. PS_ERR_LIMIT when a cap is passed,
 * PS_ERR_DECODE when the bytes do not match the schema (including trailing
 * bytes). Error messages name the path and the cap, never a value. */
ps_err_t ps_decoder_decode(struct ps_decoder *dec, const struct ps_schema *schema,
                           const void *datum, size_t len, struct ps_event **ev_p,
                           struct ps_error *err);

const struct ps_schema *ps_event_schema(const struct ps_event *ev);

/* Called for each occurrence of a leaf; return non-zero to stop the walk. */
typedef int (*ps_event_visit_fn)(void *opaque, const struct ps_scalar *value);

/* Visits every occurrence of leaf node `node` (one per item of each enclosing
 * array); a null optional value is visited as PS_SCALAR_NULL; an absent
 * enclosing optional record visits nothing. Strings point into the event.
 * PS_ERR_INVALID when node is not a leaf of the event's schema. */
ps_err_t ps_event_visit(const struct ps_event *ev, int node, ps_event_visit_fn fn, void *opaque);

/* The first occurrence of leaf node `node`; PS_SCALAR_NULL when there is none. */
ps_err_t ps_event_get(const struct ps_event *ev, int node, struct ps_scalar *value_p);

/* Appends the readable JSON form of the event (one line, no newline) to out. */
ps_err_t ps_event_to_json(const struct ps_event *ev, struct ps_buf *out, struct ps_error *err);

/* Encodes the readable JSON form of a record (len bytes) as an Avro datum of
 * schema, appended to out. Missing optional fields are null, missing arrays
 * empty; a missing required field or a value of the wrong type is
 * PS_ERR_DECODE naming the path. Not for the hot path. */
ps_err_t ps_codec_json_to_datum(const struct ps_schema *schema, const char *json, size_t len,
                                struct ps_buf *out, struct ps_error *err);

#endif
