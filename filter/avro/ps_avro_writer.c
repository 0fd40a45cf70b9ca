/*
 * ps_avro_writer: public Avro binary primitives on top of the two the Avro
 * layer shares internally (ps_avro_util.c). Including both headers here makes
 * the compiler check that their declarations agree.
 */
#include "ps_avro_writer.h"

#include <string.h>

#include "ps_avro_internal.h"

ps_err_t ps_avro_write_string(struct ps_buf *out, const char *s)
{
    if (!s) {
        return PS_ERR_INVALID;
    }
    return ps_avro_write_bytes(out, s, strlen(s));
}

ps_err_t ps_avro_write_union_index(struct ps_buf *out, int index)
{
    if (index < 0) {
        return PS_ERR_INVALID;
    }
    return ps_avro_write_long(out, index);
}

ps_err_t ps_avro_write_null_union(struct ps_buf *out, int present)
{
    return ps_avro_write_long(out, present ? 1 : 0);
}

ps_err_t ps_avro_write_optional_string(struct ps_buf *out, const char *s)
{
    ps_err_t rc = ps_avro_write_null_union(out, s != NULL);
    return rc == PS_OK && s ? ps_avro_write_string(out, s) : rc;
}

ps_err_t ps_avro_write_array_block(struct ps_buf *out, size_t count)
{
    /* A count above INT64_MAX cannot be written as a long, nor exist in memory. */
    if (count > (size_t)INT64_MAX) {
        return PS_ERR_INVALID;
    }
    return ps_avro_write_long(out, (int64_t)count);
}

ps_err_t ps_avro_write_string_array(struct ps_buf *out, const char *const *items, size_t count)
{
    if (count > 0 && !items) {
        return PS_ERR_INVALID;
    }
    /* One block holding every item, as Avro C writes arrays; an empty array is
     * the end marker alone (a block of 0 items would be read as the end). */
    ps_err_t rc = count > 0 ? ps_avro_write_array_block(out, count) : PS_OK;
    for (size_t i = 0; rc == PS_OK && i < count; i++) {
        rc = ps_avro_write_string(out, items[i]);
    }
    return rc == PS_OK ? ps_avro_write_array_block(out, 0) : rc;
}
