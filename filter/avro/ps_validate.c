/*
 * ps_validate: the walk every datum passes before Avro C sees it.
 *
 * Avro C trusts lengths and counts (reliability.md §5): a declared string
 * length is allocated before the bytes are there, a block count of items that
 * encode in zero bytes is honoured, and recursion follows the datum. This walk
 * allocates nothing and checks, against the bytes that remain, every length
 * and every block count (a count can claim no more items than the remaining
 * bytes can hold at the item type's smallest encoding), plus the depth and the
 * total item budget. It follows our node tree and records a tape of where
 * each field sits (ps_avro_validate_tape); inside an opaque union, where the
 * tree has no nodes, it follows the Avro C schema instead (validate_value),
 * and names the nearest node of our tree in its messages.
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
    const uint8_t *base;       /* start of the datum, for tape offsets */
    struct ps_event *ev;       /* NULL: validate only, record nothing */
    int canonical;             /* every varint shortest, every array one block */
    size_t held;               /* bytes of string and bytes values so far (tape walk) */
};

static ps_err_t validate_fail(struct validate_ctx *vc, ps_err_t code, int at, const char *what)
{
    return ps_error_set(vc->err, code, "field '%s': %s", ps_avro_node_label(vc->schema, at),
                        what);
}

static ps_err_t validate_varint(struct validate_ctx *vc, int at, int64_t *v_p)
{
    /* Most lengths, indexes and small numbers fit one byte. */
    if (vc->p < vc->end && !(*vc->p & 0x80)) {
        uint8_t b = *vc->p++;
        *v_p = (int64_t)(b >> 1) ^ -(int64_t)(b & 1);
        return PS_OK;
    }
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
            /* A trailing zero byte after the first is a longer encoding than
             * needed: re-encoding would not give these bytes back. */
            if (b == 0 && shift > 0) {
                vc->canonical = 0;
            }
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

/* The header of one block of an array or map at vc->p: *count_p items (0:
 * the end), checked against the bytes left (at least min per item) and the
 * item limit, which it is counted towards. Only a single plain block of an
 * array is canonical: Avro C reads a map's duplicate keys into one entry and
 * writes every array and map as one block. */
static ps_err_t validate_block_count(struct validate_ctx *vc, int at, int is_map, size_t min,
                                     int *blocks, int64_t *count_p)
{
    int64_t count = 0;
    ps_err_t rc = validate_varint(vc, at, &count);
    *count_p = 0;
    if (rc != PS_OK || count == 0) {
        return rc;
    }
    if (count < 0 || is_map || (*blocks)++ > 0) {
        vc->canonical = 0;
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
        /* Two messages, so that a dead-letter reader can tell a hostile
         * count from a datum that ends inside its last item. */
        return validate_fail(vc, PS_ERR_DECODE, at,
                             count == 1 ? "array or map item beyond the end of the datum"
                                        : "block count larger than the remaining bytes can hold");
    }
    if ((size_t)count > vc->limits->max_items - vc->items) {
        char what[96];
        snprintf(what, sizeof(what), "more array or map items than the limit (%zu)",
                 vc->limits->max_items);
        return validate_fail(vc, PS_ERR_LIMIT, at, what);
    }
    vc->items += (size_t)count;
    *count_p = count;
    return PS_OK;
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
    int blocks = 0;
    for (;;) {
        int64_t count = 0;
        ps_err_t rc = validate_block_count(vc, at, is_map, min, &blocks, &count);
        if (rc != PS_OK || count == 0) {
            return rc;
        }
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

size_t ps_avro_min_size(avro_schema_t s)
{
    return validate_min_size(s, 0);
}

/* ---- the tape walk ---------------------------------------------------------
 * Where a node of our tree exists, the walk follows the tree (its Avro C
 * schema bound at load) instead of asking Avro C for every field, and records
 * one tape entry per node occurrence. The checks and messages are those of
 * the walk above; the contents of opaque unions still go through it. */

static ps_err_t tape_push(struct validate_ctx *vc, int node, const uint8_t *key, uint32_t *idx_p)
{
    struct ps_event *ev = vc->ev;
    if (ev->tape_count == ev->tape_cap) {
        size_t cap = ev->tape_cap ? ev->tape_cap * 2 : 256;
        cap = cap > ev->tape_max ? ev->tape_max : cap;
        if (ev->tape_count >= cap) {
            return ps_error_set(vc->err, PS_ERR_LIMIT, "decoding needs more memory than the "
                                "limit (%zu bytes)", vc->limits->max_alloc_bytes);
        }
        struct ps_tape_entry *tape = realloc(ev->tape, cap * sizeof(*tape));
        if (!tape) {
            return ps_error_set(vc->err, PS_ERR_NOMEM, "out of memory decoding a datum");
        }
        ev->tape = tape;
        ev->tape_cap = cap;
    }
    uint32_t idx = (uint32_t)ev->tape_count++;
    struct ps_tape_entry *e = &ev->tape[idx];
    uint32_t at = (uint32_t)(vc->p - vc->base);
    e->node = node;
    e->key = key ? (uint32_t)(key - vc->base) : at;
    e->pos = at;
    e->val = at;
    e->end = at;
    e->skip = idx + 1;
    e->next_same = PS_TAPE_NONE;
    e->count = 0;
    e->null = 0;
    if (ev->last[node] != PS_TAPE_NONE) {
        ev->tape[ev->last[node]].next_same = idx;
    } else {
        ev->first[node] = idx;
    }
    ev->last[node] = idx;
    *idx_p = idx;
    return PS_OK;
}

static ps_err_t validate_node(struct validate_ctx *vc, int node, const uint8_t *key, int depth);

static ps_err_t validate_node_blocks(struct validate_ctx *vc, int node, uint32_t idx, int depth)
{
    const struct ps_schema_node *n = &vc->schema->nodes[node];
    int is_map = n->type == PS_TYPE_MAP;
    int child = n->first_child;
    size_t min = vc->schema->ext[node].item_min;
    int blocks = 0;
    uint32_t total = 0;
    for (;;) {
        int64_t count = 0;
        ps_err_t rc = validate_block_count(vc, node, is_map, min, &blocks, &count);
        if (rc != PS_OK) {
            return rc;
        }
        if (count == 0) {
            vc->ev->tape[idx].count = total;
            return PS_OK;
        }
        total += (uint32_t)count;
        for (int64_t i = 0; i < count; i++) {
            const uint8_t *key = vc->p;
            if (is_map) {
                int64_t klen = 0;
                rc = validate_varint(vc, node, &klen);
                rc = rc == PS_OK ? validate_skip(vc, node, klen) : rc;
            }
            rc = rc == PS_OK ? validate_node(vc, child, is_map ? key : NULL, depth + 1) : rc;
            if (rc != PS_OK) {
                return rc;
            }
        }
    }
}

/* The value of a node whose (non-null) type is a scalar, at vc->p. */
static ps_err_t validate_node_scalar(struct validate_ctx *vc, int node, uint32_t idx, int depth)
{
    const struct ps_schema_node_ext *x = &vc->schema->ext[node];
    int64_t v = 0;
    ps_err_t rc = PS_OK;
    switch (vc->schema->nodes[node].type) {
    case PS_TYPE_NULL:
        return PS_OK;
    case PS_TYPE_BOOLEAN:
        if (vc->p >= vc->end) {
            return validate_fail(vc, PS_ERR_DECODE, node, "datum ends early");
        }
        if (*vc->p > 1) {
            return validate_fail(vc, PS_ERR_DECODE, node, "boolean is neither 0 nor 1");
        }
        vc->p++;
        return PS_OK;
    case PS_TYPE_INT:
        rc = validate_varint(vc, node, &v);
        if (rc == PS_OK && (v < INT32_MIN || v > INT32_MAX)) {
            rc = validate_fail(vc, PS_ERR_DECODE, node, "int out of range");
        }
        return rc;
    case PS_TYPE_LONG:
        return validate_varint(vc, node, &v);
    case PS_TYPE_ENUM:
        rc = validate_varint(vc, node, &v);
        if (rc == PS_OK && (v < 0 || v >= avro_schema_enum_number_of_symbols(x->avro))) {
            rc = validate_fail(vc, PS_ERR_DECODE, node, "enum index out of range");
        }
        return rc;
    case PS_TYPE_FLOAT:
        return validate_skip(vc, node, 4);
    case PS_TYPE_DOUBLE:
        return validate_skip(vc, node, 8);
    case PS_TYPE_FIXED:
        return validate_skip(vc, node, avro_schema_fixed_size(x->avro));
    case PS_TYPE_STRING:
    case PS_TYPE_BYTES:
        rc = validate_varint(vc, node, &v);
        rc = rc == PS_OK ? validate_skip(vc, node, v) : rc;
        /* The cap on what decoding holds applies as it did to Avro C, which
         * keeps every string and bytes value (and a NUL) in memory of its own. */
        if (rc == PS_OK) {
            vc->held += (size_t)v + 1;
            if (vc->held > vc->limits->max_alloc_bytes) {
                rc = ps_error_set(vc->err, PS_ERR_LIMIT, "decoding needs more memory than the "
                                  "limit (%zu bytes)", vc->limits->max_alloc_bytes);
            }
        }
        return rc;
    case PS_TYPE_UNION:
        /* An opaque union: no nodes below it, so Avro C's schema leads. */
        rc = validate_varint(vc, node, &v);
        if (rc != PS_OK) {
            return rc;
        }
        if (v < 0 || (uint64_t)v >= avro_schema_union_size(x->avro)) {
            return validate_fail(vc, PS_ERR_DECODE, node, "union branch out of range");
        }
        vc->ev->tape[idx].count = (uint32_t)v;
        return validate_value(vc, avro_schema_union_branch(x->avro, (int)v), -1, node, depth);
    default:
        return validate_fail(vc, PS_ERR_DECODE, node, "unsupported Avro type");
    }
}

static ps_err_t validate_node(struct validate_ctx *vc, int node, const uint8_t *key, int depth)
{
    if (depth > vc->limits->max_depth) {
        char what[96];
        snprintf(what, sizeof(what), "nesting deeper than the limit (%d)",
                 vc->limits->max_depth);
        return validate_fail(vc, PS_ERR_LIMIT, node, what);
    }
    const struct ps_schema_node *n = &vc->schema->nodes[node];
    uint32_t idx = 0;
    ps_err_t rc = tape_push(vc, node, key, &idx);
    if (rc != PS_OK) {
        return rc;
    }
    if (n->nullable) {
        int64_t branch = 0;
        rc = validate_varint(vc, node, &branch);
        if (rc != PS_OK) {
            return rc;
        }
        if (branch < 0 || branch > 1) {
            return validate_fail(vc, PS_ERR_DECODE, node, "union branch out of range");
        }
        if (branch == vc->schema->ext[node].null_branch) {
            struct ps_tape_entry *e = &vc->ev->tape[idx];
            e->null = 1;
            e->val = e->end = (uint32_t)(vc->p - vc->base);
            return PS_OK;
        }
        vc->ev->tape[idx].val = (uint32_t)(vc->p - vc->base);
    }
    if (n->type == PS_TYPE_RECORD) {
        const int *children = vc->schema->ext[node].children;
        for (int c = 0; rc == PS_OK && c < n->child_count; c++) {
            rc = validate_node(vc, children[c], NULL, depth + 1);
        }
    } else if (n->type == PS_TYPE_ARRAY || n->type == PS_TYPE_MAP) {
        rc = validate_node_blocks(vc, node, idx, depth);
    } else {
        rc = validate_node_scalar(vc, node, idx, depth);
    }
    if (rc == PS_OK) {
        struct ps_tape_entry *e = &vc->ev->tape[idx];
        e->end = (uint32_t)(vc->p - vc->base);
        e->skip = (uint32_t)vc->ev->tape_count;
    }
    return rc;
}

ps_err_t ps_avro_validate_tape(const struct ps_schema *schema, struct ps_event *ev,
                               const struct ps_codec_limits *limits, struct ps_error *err)
{
    ev->fast = 0;
    ev->tape_count = 0;
    /* Tape offsets are 32-bit; every configured limit is far below that. */
    if (ev->len > limits->max_message_bytes || ev->len >= UINT32_MAX) {
        return ps_error_set(err, PS_ERR_LIMIT, "datum larger than the limit (%zu bytes)",
                            limits->max_message_bytes);
    }
    for (size_t i = 0; i < schema->count; i++) {
        ev->first[i] = PS_TAPE_NONE;
        ev->last[i] = PS_TAPE_NONE;
    }
    static const uint8_t nothing[1];
    const uint8_t *p = ev->datum ? ev->datum : nothing;
    struct validate_ctx vc = {
        .schema = schema,
        .p = p,
        .end = p + (ev->datum ? ev->len : 0),
        .limits = limits,
        .items = 0,
        .err = err,
        .base = p,
        .ev = ev,
        .canonical = 1,
    };
    ps_err_t rc = validate_node(&vc, 0, NULL, 0);
    if (rc == PS_OK && vc.p != vc.end) {
        rc = ps_error_set(err, PS_ERR_DECODE, "%zu trailing bytes after the record",
                          (size_t)(vc.end - vc.p));
    }
    ev->fast = rc == PS_OK && vc.canonical;
    return rc;
}
