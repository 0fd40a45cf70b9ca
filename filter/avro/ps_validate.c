/*
 * ps_validate: the walk every datum passes before Avro C sees it.
 *
 * Avro C trusts lengths and counts (reliability.md §5): a declared string
 * length is allocated before the bytes are there, a block count of items that
 * encode in zero bytes is honoured, and recursion follows the datum. This walk
 * allocates nothing and checks, against the bytes that remain, every length
 * and every block count (a count can claim no more items than the remaining
 * bytes can hold at the item type's smallest encoding), plus the depth and the
 * total item budget. It follows the Avro C schema so that it covers opaque
 * unions too, and names the nearest node of our tree in its messages.
 */
#include "ps_avro_internal.h"

#include <string.h>

struct validate_ctx {
    const struct ps_schema *schema;
    const uint8_t *p;
    const uint8_t *end;
    const struct ps_codec_limits *limits;
    size_t items;
    struct ps_error *err;
};

static ps_err_t validate_fail(struct validate_ctx *vc, ps_err_t code, int at, const char *what)
{
    return ps_error_set(vc->err, code, "field '%s': %s", ps_avro_node_label(vc->schema, at),
                        what);
}

static ps_err_t validate_varint(struct validate_ctx *vc, int at, int64_t *v_p)
{
    uint64_t acc = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (vc->p >= vc->end) {
            return validate_fail(vc, PS_ERR_DECODE, at, "datum ends early");
        }
        uint8_t b = *vc->p++;
        if (shift == 63 && (b & 0x7e)) {
            break;
        }
        acc |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v_p = (int64_t)(acc >> 1) ^ -(int64_t)(acc & 1);
            return PS_OK;
        }
    }
    return validate_fail(vc, PS_ERR_DECODE, at, "variable-length integer too long");
}

static ps_err_t validate_skip(struct validate_ctx *vc, int at, int64_t n)
{
    if (n < 0) {
        return validate_fail(vc, PS_ERR_DECODE, at, "negative length");
    }
    if ((uint64_t)n > (uint64_t)(vc->end - vc->p)) {
        return validate_fail(vc, PS_ERR_DECODE, at, "length beyond the end of the datum");
    }
    vc->p += n;
    return PS_OK;
}

/* Fewest bytes a value of this schema can encode in (the schema load makes it
 * at least 1 for every array item and map value). */
static size_t validate_min_size(avro_schema_t s, int depth)
{
    if (depth > 64) {
        return 1;
    }
    if (is_avro_link(s)) {
        s = avro_schema_link_target(s);
    }
    switch (avro_typeof(s)) {
    case AVRO_NULL:
        return 0;
    case AVRO_FLOAT:
        return 4;
    case AVRO_DOUBLE:
        return 8;
    case AVRO_FIXED:
        return (size_t)avro_schema_fixed_size(s);
    case AVRO_RECORD: {
        size_t total = 0;
        size_t n = avro_schema_record_size(s);
        for (size_t i = 0; i < n; i++) {
            total += validate_min_size(avro_schema_record_field_get_by_index(s, (int)i),
                                       depth + 1);
        }
        return total;
    }
    default:
        return 1;
    }
}

static ps_err_t validate_value(struct validate_ctx *vc, avro_schema_t s, int node, int at,
                               int depth);

static ps_err_t validate_blocks(struct validate_ctx *vc, avro_schema_t s, int is_map, int node,
                                int at, int depth)
{
    avro_schema_t item = is_map ? avro_schema_map_values(s) : avro_schema_array_items(s);
    int child = node >= 0 ? vc->schema->nodes[node].first_child : -1;
    int child_at = child >= 0 ? child : at;
    size_t min = validate_min_size(item, 0) + (is_map ? 1 : 0);
    if (min == 0) {
        min = 1;
    }
    for (;;) {
        int64_t count = 0;
        ps_err_t rc = validate_varint(vc, at, &count);
        if (rc != PS_OK) {
            return rc;
        }
        if (count == 0) {
            return PS_OK;
        }
        if (count < 0) {
            if (count == INT64_MIN) {
                return validate_fail(vc, PS_ERR_DECODE, at, "invalid block count");
            }
            count = -count;
            int64_t block_bytes = 0;
            rc = validate_varint(vc, at, &block_bytes);
            if (rc == PS_OK && (block_bytes < 0 || block_bytes > vc->end - vc->p)) {
                rc = validate_fail(vc, PS_ERR_DECODE, at, "block size beyond the datum");
            }
            if (rc != PS_OK) {
                return rc;
            }
        }
        if ((uint64_t)count > (uint64_t)(vc->end - vc->p) / min) {
            return validate_fail(vc, PS_ERR_DECODE, at,
                                 "block count larger than the remaining bytes can hold");
        }
        if ((size_t)count > vc->limits->max_items - vc->items) {
            char what[96];
            snprintf(what, sizeof(what), "more array or map items than the limit (%zu)",
                     vc->limits->max_items);
            return validate_fail(vc, PS_ERR_LIMIT, at, what);
        }
        vc->items += (size_t)count;
        for (int64_t i = 0; i < count; i++) {
            if (is_map) {
                int64_t klen = 0;
                rc = validate_varint(vc, at, &klen);
                rc = rc == PS_OK ? validate_skip(vc, at, klen) : rc;
            }
            rc = rc == PS_OK ? validate_value(vc, item, child, child_at, depth + 1) : rc;
            if (rc != PS_OK) {
                return rc;
            }
        }
    }
}

static ps_err_t validate_union(struct validate_ctx *vc, avro_schema_t s, int node, int at,
                               int depth)
{
    int64_t index = 0;
    ps_err_t rc = validate_varint(vc, at, &index);
    if (rc != PS_OK) {
        return rc;
    }
    if (index < 0 || (uint64_t)index >= avro_schema_union_size(s)) {
        return validate_fail(vc, PS_ERR_DECODE, at, "union branch out of range");
    }
    /* A nullable node keeps its node for the non-null branch; an opaque union
     * has no nodes below it. */
    int keep = node >= 0 && vc->schema->nodes[node].nullable;
    return validate_value(vc, avro_schema_union_branch(s, (int)index), keep ? node : -1, at,
                          depth);
}

static ps_err_t validate_record(struct validate_ctx *vc, avro_schema_t s, int node, int at,
                                int depth)
{
    size_t n = avro_schema_record_size(s);
    const struct ps_schema_node *tn = node >= 0 ? &vc->schema->nodes[node] : NULL;
    for (size_t i = 0; i < n; i++) {
        int child = tn && (int)i < tn->child_count ? vc->schema->ext[node].children[i] : -1;
        ps_err_t rc = validate_value(vc, avro_schema_record_field_get_by_index(s, (int)i),
                                     child, child >= 0 ? child : at, depth + 1);
        if (rc != PS_OK) {
            return rc;
        }
    }
    return PS_OK;
}

static ps_err_t validate_value(struct validate_ctx *vc, avro_schema_t s, int node, int at,
                               int depth)
{
    if (depth > vc->limits->max_depth) {
        char what[96];
        snprintf(what, sizeof(what), "nesting deeper than the limit (%d)",
                 vc->limits->max_depth);
        return validate_fail(vc, PS_ERR_LIMIT, at, what);
    }
    if (is_avro_link(s)) {
        s = avro_schema_link_target(s);
    }
    int64_t v = 0;
    ps_err_t rc = PS_OK;
    switch (avro_typeof(s)) {
    case AVRO_NULL:
        return PS_OK;
    case AVRO_BOOLEAN:
        if (vc->p >= vc->end) {
            return validate_fail(vc, PS_ERR_DECODE, at, "datum ends early");
        }
        if (*vc->p > 1) {
            return validate_fail(vc, PS_ERR_DECODE, at, "boolean is neither 0 nor 1");
        }
        vc->p++;
        return PS_OK;
    case AVRO_INT32:
        rc = validate_varint(vc, at, &v);
        if (rc == PS_OK && (v < INT32_MIN || v > INT32_MAX)) {
            rc = validate_fail(vc, PS_ERR_DECODE, at, "int out of range");
        }
        return rc;
    case AVRO_INT64:
        return validate_varint(vc, at, &v);
    case AVRO_ENUM:
        rc = validate_varint(vc, at, &v);
        if (rc == PS_OK && (v < 0 || v >= avro_schema_enum_number_of_symbols(s))) {
            rc = validate_fail(vc, PS_ERR_DECODE, at, "enum index out of range");
        }
        return rc;
    case AVRO_FLOAT:
        return validate_skip(vc, at, 4);
    case AVRO_DOUBLE:
        return validate_skip(vc, at, 8);
    case AVRO_FIXED:
        return validate_skip(vc, at, avro_schema_fixed_size(s));
    case AVRO_STRING:
    case AVRO_BYTES:
        rc = validate_varint(vc, at, &v);
        return rc == PS_OK ? validate_skip(vc, at, v) : rc;
    case AVRO_RECORD:
        return validate_record(vc, s, node, at, depth);
    case AVRO_ARRAY:
    case AVRO_MAP:
        return validate_blocks(vc, s, avro_typeof(s) == AVRO_MAP, node, at, depth);
    case AVRO_UNION:
        return validate_union(vc, s, node, at, depth);
    default:
        return validate_fail(vc, PS_ERR_DECODE, at, "unsupported Avro type");
    }
}

ps_err_t ps_avro_validate(const struct ps_schema *schema, const void *datum, size_t len,
                          const struct ps_codec_limits *limits, struct ps_error *err)
{
    if (len > limits->max_message_bytes) {
        return ps_error_set(err, PS_ERR_LIMIT, "datum larger than the limit (%zu bytes)",
                            limits->max_message_bytes);
    }
    static const uint8_t nothing[1];
    const uint8_t *p = datum ? (const uint8_t *)datum : nothing;
    struct validate_ctx vc = {
        .schema = schema,
        .p = p,
        .end = p + (datum ? len : 0),
        .limits = limits,
        .items = 0,
        .err = err,
    };
    ps_err_t rc = validate_value(&vc, schema->avro, 0, 0, 0);
    if (rc == PS_OK && vc.p != vc.end) {
        rc = ps_error_set(err, PS_ERR_DECODE, "%zu trailing bytes after the record",
                          (size_t)(vc.end - vc.p));
    }
    return rc;
}
