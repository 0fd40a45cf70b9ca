/*
 * ps_codec: safe decoding into reused Avro values, and reading decoded events
 * by node of our tree.
 */
#include "ps_avro_internal.h"

#include <stdlib.h>
#include <string.h>

#define PS_CODEC_DEFAULT_MESSAGE_BYTES (1024u * 1024u)
#define PS_CODEC_DEFAULT_ALLOC_BYTES (64u * 1024u * 1024u)
#define PS_CODEC_DEFAULT_DEPTH 32
#define PS_CODEC_DEFAULT_ITEMS 100000u

/* One reusable value per schema: a fresh value per record costs a quarter
 * more (feasibility.md §3). Keyed by the schema's load serial, not its
 * address, so a schema freed and another loaded at the same address never
 * meets a value of the wrong class. */
struct decoder_slot {
    uint64_t serial;
    avro_value_iface_t *iface;
    struct ps_event ev;
};

struct ps_decoder {
    struct ps_codec_limits limits;
    avro_reader_t reader;
    struct decoder_slot **slots;
    size_t slot_count;
};

void ps_codec_limits_default(struct ps_codec_limits *limits)
{
    limits->max_message_bytes = PS_CODEC_DEFAULT_MESSAGE_BYTES;
    limits->max_alloc_bytes = PS_CODEC_DEFAULT_ALLOC_BYTES;
    limits->max_depth = PS_CODEC_DEFAULT_DEPTH;
    limits->max_items = PS_CODEC_DEFAULT_ITEMS;
}

ps_err_t ps_decoder_new(const struct ps_codec_limits *limits, struct ps_decoder **dec_p,
                        struct ps_error *err)
{
    static const char empty[1];
    ps_avro_allocator_install();
    struct ps_decoder *dec = calloc(1, sizeof(*dec));
    if (!dec) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory creating a decoder");
    }
    ps_codec_limits_default(&dec->limits);
    if (limits) {
        dec->limits = *limits;
    }
    dec->reader = avro_reader_memory(empty, 0);
    if (!dec->reader) {
        free(dec);
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory creating a decoder");
    }
    *dec_p = dec;
    return PS_OK;
}

static void decoder_slot_free(struct decoder_slot *slot)
{
    if (!slot) {
        return;
    }
    if (slot->ev.value.iface) {
        avro_value_decref(&slot->ev.value);
    }
    if (slot->iface) {
        avro_value_iface_decref(slot->iface);
    }
    free(slot);
}

void ps_decoder_destroy(struct ps_decoder *dec)
{
    if (!dec) {
        return;
    }
    for (size_t i = 0; i < dec->slot_count; i++) {
        decoder_slot_free(dec->slots[i]);
    }
    free(dec->slots);
    avro_reader_free(dec->reader);
    free(dec);
}

static ps_err_t decoder_slot_get(struct ps_decoder *dec, const struct ps_schema *schema,
                                 struct decoder_slot **slot_p, struct ps_error *err)
{
    for (size_t i = 0; i < dec->slot_count; i++) {
        if (dec->slots[i]->serial == schema->serial) {
            *slot_p = dec->slots[i];
            return PS_OK;
        }
    }
    ps_err_t rc = PS_OK;
    struct decoder_slot *slot = calloc(1, sizeof(*slot));
    struct decoder_slot **slots = realloc(dec->slots, (dec->slot_count + 1) * sizeof(*slots));
    if (!slot || !slots) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "out of memory creating a decoder value");
        goto cleanup;
    }
    dec->slots = slots;
    slot->serial = schema->serial;
    slot->ev.schema = schema;
    slot->iface = avro_generic_class_from_schema(schema->avro);
    if (!slot->iface || avro_generic_value_new(slot->iface, &slot->ev.value) != 0) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "cannot create a decoder value");
        goto cleanup;
    }
    dec->slots[dec->slot_count++] = slot;
    *slot_p = slot;
    slot = NULL;
cleanup:
    decoder_slot_free(slot);
    return rc;
}

ps_err_t ps_decoder_decode(struct ps_decoder *dec, const struct ps_schema *schema,
                           const void *datum, size_t len, struct ps_event **ev_p,
                           struct ps_error *err)
{
    ps_err_t rc = ps_avro_validate(schema, datum, len, &dec->limits, err);
    if (rc != PS_OK) {
        return rc;
    }
    struct decoder_slot *slot = NULL;
    rc = decoder_slot_get(dec, schema, &slot, err);
    if (rc != PS_OK) {
        return rc;
    }
    static const char empty[1];
    avro_reader_memory_set_source(dec->reader, datum ? (const char *)datum : empty,
                                  (int64_t)len);
    ps_avro_allocator_begin(dec->limits.max_alloc_bytes);
    int arc = avro_value_read(dec->reader, &slot->ev.value);
    int refused = ps_avro_allocator_end();
    if (refused) {
        return ps_error_set(err, PS_ERR_LIMIT, "decoding needs more memory than the limit "
                            "(%zu bytes)", dec->limits.max_alloc_bytes);
    }
    if (arc != 0) {
        /* avro_strerror is process-wide and may quote data: keep it out. */
        return ps_error_set(err, PS_ERR_DECODE, "Avro C refused the datum");
    }
    *ev_p = &slot->ev;
    return PS_OK;
}

const struct ps_schema *ps_event_schema(const struct ps_event *ev)
{
    return ev->schema;
}

static int codec_is_leaf(const struct ps_schema_node *n)
{
    return n->type != PS_TYPE_RECORD && n->type != PS_TYPE_ARRAY && n->type != PS_TYPE_MAP;
}

struct visit_ctx {
    const struct ps_schema *schema;
    const int *chain;
    int chain_len;
    ps_event_visit_fn fn;
    void *opaque;
};

/* value is the (possibly union) value of node chain[k]; returns non-zero to stop. */
static int codec_visit_step(const struct visit_ctx *vc, int k, avro_value_t *value)
{
    int node = vc->chain[k];
    const struct ps_schema_node *n = &vc->schema->nodes[node];
    int last = k == vc->chain_len - 1;
    avro_value_t branch;
    if (n->nullable) {
        int disc = -1;
        avro_value_get_discriminant(value, &disc);
        if (disc == vc->schema->ext[node].null_branch) {
            struct ps_scalar null_scalar = {.kind = PS_SCALAR_NULL};
            return last ? vc->fn(vc->opaque, &null_scalar) : 0;
        }
        if (avro_value_get_current_branch(value, &branch) != 0) {
            return 0;
        }
        value = &branch;
    }
    if (last) {
        struct ps_scalar sc = {.kind = PS_SCALAR_NULL};
        ps_avro_value_to_scalar(value, &sc);
        return vc->fn(vc->opaque, &sc);
    }
    int next = vc->chain[k + 1];
    avro_value_t child;
    if (n->type == PS_TYPE_RECORD) {
        if (avro_value_get_by_index(value, (size_t)vc->schema->ext[next].field_index, &child,
                                    NULL) != 0) {
            return 0;
        }
        return codec_visit_step(vc, k + 1, &child);
    }
    size_t count = 0;
    avro_value_get_size(value, &count);
    for (size_t i = 0; i < count; i++) {
        if (avro_value_get_by_index(value, i, &child, NULL) == 0 &&
            codec_visit_step(vc, k + 1, &child)) {
            return 1;
        }
    }
    return 0;
}

ps_err_t ps_event_visit(const struct ps_event *ev, int node, ps_event_visit_fn fn, void *opaque)
{
    const struct ps_schema *schema = ev->schema;
    if (node < 0 || (size_t)node >= schema->count || !codec_is_leaf(&schema->nodes[node])) {
        return PS_ERR_INVALID;
    }
    struct visit_ctx vc = {
        .schema = schema,
        .chain = schema->ext[node].chain,
        .chain_len = schema->ext[node].chain_len,
        .fn = fn,
        .opaque = opaque,
    };
    /* The generic value API takes a non-const value but reading does not change it. */
    avro_value_t root = ev->value;
    codec_visit_step(&vc, 0, &root);
    return PS_OK;
}

static int codec_get_first(void *opaque, const struct ps_scalar *value)
{
    *(struct ps_scalar *)opaque = *value;
    return 1;
}

ps_err_t ps_event_get(const struct ps_event *ev, int node, struct ps_scalar *value_p)
{
    struct ps_scalar sc = {.kind = PS_SCALAR_NULL};
    ps_err_t rc = ps_event_visit(ev, node, codec_get_first, &sc);
    if (rc == PS_OK) {
        *value_p = sc;
    }
    return rc;
}
