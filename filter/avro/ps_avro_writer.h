/*
 * ps_avro_writer: the Avro binary encoding's primitives, for layers that write
 * a fixed schema by hand (the audit record) and must not see avro.h.
 *
 * Each function appends to out and returns PS_OK, PS_ERR_LIMIT when out would
 * pass its maximum, or PS_ERR_NOMEM. A failed call may leave part of what it
 * meant to write (a multi-part value is not rolled back): a caller that wants
 * all or nothing saves out->len first and restores it on failure.
 *
 * The encodings (Avro 1.11 specification, "Binary Encoding"):
 *   int, long, enum index, union branch, array block count: zigzag varint;
 *   string, bytes: length as a long, then the bytes;
 *   union: the branch index as a long, then the branch's value;
 *   array: blocks of (count as a long, items), ended by a block of count 0.
 *
 * ps_avro_write_long and ps_avro_write_bytes are the ones the Avro layer
 * already shares internally (ps_avro_internal.h); the rest are built on them.
 * Stateless: safe from any thread with its own buffer.
 */
#ifndef PS_AVRO_WRITER_H
#define PS_AVRO_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "ps_buf.h"
#include "ps_error.h"

/* A long (or int, enum index, union branch index) as a zigzag varint. */
ps_err_t ps_avro_write_long(struct ps_buf *out, int64_t v);
/* len bytes of data, preceded by their length. */
ps_err_t ps_avro_write_bytes(struct ps_buf *out, const void *data, size_t len);

/* A NUL-terminated string (without its NUL). PS_ERR_INVALID for NULL. */
ps_err_t ps_avro_write_string(struct ps_buf *out, const char *s);

/* The branch index of a union; the caller writes the branch's value next. */
ps_err_t ps_avro_write_union_index(struct ps_buf *out, int index);
/* The branch index of a ["null", T] union (null first): 0 when !present,
 * else 1, after which the caller writes the T value. */
ps_err_t ps_avro_write_null_union(struct ps_buf *out, int present);
/* A ["null", "string"] union: null for NULL, else the string. */
ps_err_t ps_avro_write_optional_string(struct ps_buf *out, const char *s);

/* The header of an array (or map) block of count items; count 0 ends the
 * array, so an empty array is one call with 0. */
ps_err_t ps_avro_write_array_block(struct ps_buf *out, size_t count);
/* A whole array<string>: one block of count items, then the end. PS_ERR_INVALID
 * when an item is NULL, or items is NULL while count is not 0. */
ps_err_t ps_avro_write_string_array(struct ps_buf *out, const char *const *items, size_t count);

#endif
