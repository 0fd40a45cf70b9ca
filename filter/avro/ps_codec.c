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
#define PS_CODEC_TAPE_MIN 4096u

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
    ps_avro_allocator_install();
    struct ps_decoder *dec = calloc(1, sizeof(*dec));
    if (!dec) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory creating a decoder");
    }
    ps_codec_limits_default(&dec->limits);
    if (limits) {
        dec->limits = *limits;
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
    free(slot->ev.datum);
    free(slot->ev.tape);
    free(slot->ev.first);
    free(slot->ev.last);
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
    slot->ev.max_alloc = dec->limits.max_alloc_bytes;
    /* The tape is bounded by the allocation cap, but never below a size that
     * any sane event fits (a cap set for Avro C's strings must not starve it). */
    slot->ev.tape_max = dec->limits.max_alloc_bytes / sizeof(struct ps_tape_entry);
    if (slot->ev.tape_max < PS_CODEC_TAPE_MIN) {
        slot->ev.tape_max = PS_CODEC_TAPE_MIN;
    }
    slot->ev.first = calloc(schema->count + 1, sizeof(*slot->ev.first));
    slot->ev.last = calloc(schema->count + 1, sizeof(*slot->ev.last));
    if (!slot->ev.first || !slot->ev.last) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "out of memory creating a decoder value");
        goto cleanup;
    }
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

/* Avro C's decode of ev->datum into ev->value, under the allocation cap. */
static ps_err_t codec_avro_read(struct ps_event *ev, struct ps_error *err)
{
    static const char empty[1];
    avro_reader_t reader = avro_reader_memory(ev->datum ? (const char *)ev->datum : empty,
                                              (int64_t)ev->len);
    if (!reader) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory creating a decoder");
    }
    ps_avro_allocator_begin(ev->max_alloc);
    int arc = avro_value_read(reader, &ev->value);
    int refused = ps_avro_allocator_end();
    avro_reader_free(reader);
    if (refused) {
        return ps_error_set(err, PS_ERR_LIMIT, "decoding needs more memory than the limit "
                            "(%zu bytes)", ev->max_alloc);
    }
    if (arc != 0) {
        /* avro_strerror is process-wide and may quote data: keep it out. */
        return ps_error_set(err, PS_ERR_DECODE, "Avro C refused the datum");
    }
    ev->avro_ready = 1;
    return PS_OK;
}

/*
 * The datum is copied into the event (strings of the event point into it, and
 * the caller's buffer may go before the event does) and walked once by the
 * validator, which records the tape. A canonical datum (what every common
 * writer produces) is then served from the tape alone: Avro C decodes it only
 * if someone asks for its value. Anything else (several array blocks, a map,
 * an over-long varint) is decoded by Avro C at once, as before.
 */
ps_err_t ps_decoder_decode(struct ps_decoder *dec, const struct ps_schema *schema,
                           const void *datum, size_t len, struct ps_event **ev_p,
                           struct ps_error *err)
{
    if (len > dec->limits.max_message_bytes) {
        return ps_error_set(err, PS_ERR_LIMIT, "datum larger than the limit (%zu bytes)",
                            dec->limits.max_message_bytes);
    }
    struct decoder_slot *slot = NULL;
    ps_err_t rc = decoder_slot_get(dec, schema, &slot, err);
    if (rc != PS_OK) {
        return rc;
    }
    struct ps_event *ev = &slot->ev;
    if (len > ev->datum_cap) {
        uint8_t *copy = realloc(ev->datum, len);
        if (!copy) {
            return ps_error_set(err, PS_ERR_NOMEM, "out of memory decoding a datum");
        }
        ev->datum = copy;
        ev->datum_cap = len;
    }
    if (len > 0) {
        memcpy(ev->datum, datum, len);
    }
    ev->len = len;
    ev->avro_ready = 0;
    rc = ps_avro_validate_tape(schema, ev, &dec->limits, err);
    if (rc == PS_OK && !ev->fast) {
        rc = codec_avro_read(ev, err);
    }
    if (rc != PS_OK) {
        ev->fast = 0;
        return rc;
    }
    *ev_p = ev;
    return PS_OK;
}

avro_value_t *ps_event_avro(const struct ps_event *ev)
{
    /* The event is the decoder's; filling in its Avro C value on demand does
     * not change what it holds, so the const is only the callers' view. */
    struct ps_event *mut = (struct ps_event *)ev;
    struct ps_error err;
    if (!mut->avro_ready && codec_avro_read(mut, &err) != PS_OK) {
        return NULL;
    }
    return &mut->value;
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

ps_err_t ps_event_visit_reference(const struct ps_event *ev, int node, ps_event_visit_fn fn,
                                  void *opaque)
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
    avro_value_t *value = ps_event_avro(ev);
    if (!value) {
        return PS_ERR_DECODE;
    }
    /* The generic value API takes a non-const value but reading does not change it. */
    avro_value_t root = *value;
    codec_visit_step(&vc, 0, &root);
    return PS_OK;
}

static uint64_t tape_varint(const uint8_t **p_p)
{
    const uint8_t *p = *p_p;
    uint64_t acc = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        uint8_t b = *p++;
        acc |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            break;
        }
    }
    *p_p = p;
    return acc;
}

static int64_t tape_long(const uint8_t **p_p)
{
    uint64_t z = tape_varint(p_p);
    return (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
}

/* One value of Avro C schema s (a primitive, enum or fixed; anything else is
 * null, as ps_avro_value_to_scalar has it) at p, already validated. */
static void tape_value_scalar(avro_schema_t s, const uint8_t *p, struct ps_scalar *sc)
{
    memset(sc, 0, sizeof(*sc));
    switch (avro_typeof(s)) {
    case AVRO_BOOLEAN:
        sc->kind = PS_SCALAR_BOOL;
        sc->i = *p ? 1 : 0;
        break;
    case AVRO_INT32:
    case AVRO_INT64:
        sc->kind = PS_SCALAR_INT;
        sc->i = tape_long(&p);
        break;
    case AVRO_FLOAT: {
        uint32_t bits = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                        (uint32_t)p[3] << 24;
        float f;
        memcpy(&f, &bits, sizeof(f));
        sc->kind = PS_SCALAR_DOUBLE;
        sc->d = f;
        break;
    }
    case AVRO_DOUBLE: {
        uint64_t bits = 0;
        for (int i = 7; i >= 0; i--) {
            bits = bits << 8 | p[i];
        }
        memcpy(&sc->d, &bits, sizeof(sc->d));
        sc->kind = PS_SCALAR_DOUBLE;
        break;
    }
    case AVRO_STRING:
    case AVRO_BYTES: {
        int64_t n = tape_long(&p);
        sc->kind = PS_SCALAR_STRING;
        sc->s = (const char *)p;
        sc->len = (size_t)n;
        break;
    }
    case AVRO_FIXED:
        sc->kind = PS_SCALAR_STRING;
        sc->s = (const char *)p;
        sc->len = (size_t)avro_schema_fixed_size(s);
        break;
    case AVRO_ENUM: {
        const char *sym = avro_schema_enum_get(s, (int)tape_long(&p));
        sc->kind = sym ? PS_SCALAR_STRING : PS_SCALAR_NULL;
        sc->s = sym;
        sc->len = sym ? strlen(sym) : 0;
        break;
    }
    default:
        break; /* null, and compound values inside opaque unions */
    }
}

void ps_event_tape_scalar(const struct ps_event *ev, const struct ps_tape_entry *e,
                          struct ps_scalar *scalar_p)
{
    const struct ps_schema_node_ext *x = &ev->schema->ext[e->node];
    const uint8_t *p = ev->datum + e->val;
    if (e->null) {
        memset(scalar_p, 0, sizeof(*scalar_p));
        return;
    }
    if (ev->schema->nodes[e->node].type == PS_TYPE_UNION) {
        tape_long(&p); /* the branch index, kept in e->count */
        avro_schema_t branch = avro_schema_union_branch(x->avro, (int)e->count);
        tape_value_scalar(is_avro_link(branch) ? avro_schema_link_target(branch) : branch, p,
                          scalar_p);
        return;
    }
    tape_value_scalar(x->avro, p, scalar_p);
}

ps_err_t ps_event_visit(const struct ps_event *ev, int node, ps_event_visit_fn fn, void *opaque)
{
    const struct ps_schema *schema = ev->schema;
    if (node < 0 || (size_t)node >= schema->count || !codec_is_leaf(&schema->nodes[node])) {
        return PS_ERR_INVALID;
    }
    if (!ev->fast) {
        return ps_event_visit_reference(ev, node, fn, opaque);
    }
    /* Occurrences are linked in document order: the order the recursive walk
     * of the decoded value visits them in. */
    for (uint32_t i = ev->first[node]; i != PS_TAPE_NONE; i = ev->tape[i].next_same) {
        struct ps_scalar sc;
        ps_event_tape_scalar(ev, &ev->tape[i], &sc);
        if (fn(opaque, &sc)) {
            break;
        }
    }
    return PS_OK;
}

static int codec_get_first(void *opaque, const struct ps_scalar *value)
{
    *(struct ps_scalar *)opaque = *value;
    return 1;
}

ps_err_t ps_event_get(const struct ps_event *ev, int node, struct ps_scalar *value_p)
{
    const struct ps_schema *schema = ev->schema;
    if (ev->fast && node >= 0 && (size_t)node < schema->count &&
        codec_is_leaf(&schema->nodes[node])) {
        uint32_t i = ev->first[node];
        if (i == PS_TAPE_NONE) {
            memset(value_p, 0, sizeof(*value_p));
        } else {
            ps_event_tape_scalar(ev, &ev->tape[i], value_p);
        }
        return PS_OK;
    }
    struct ps_scalar sc = {.kind = PS_SCALAR_NULL};
    ps_err_t rc = ps_event_visit(ev, node, codec_get_first, &sc);
    if (rc == PS_OK) {
        *value_p = sc;
    }
    return rc;
}
