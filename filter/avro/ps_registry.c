#include "ps_registry.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/*
 * A process knows a handful of schemas, so entries are one array searched
 * linearly: simpler than any index, and faster at this size.
 *
 * Two schemas are "the same" when their JSON text is identical. Equal
 * fingerprints are not enough: the Parsing Canonical Form strips
 * "confluent:tags", so two schemas that differ only in which fields are
 * tagged PII share a fingerprint, and resolving a single-object frame to the
 * wrong one of them would apply the wrong disclosure plan. Such a pair is
 * refused at add, which keeps every fingerprint lookup unambiguous. The same
 * text under a second id is fine (both ids name one thing); the same text
 * added again under the same id, or with no id, is a no-op.
 */

struct registry_entry {
    struct ps_schema *schema; /* owned */
    int64_t id;               /* Confluent id, or -1 */
    uint64_t fingerprint;
};

struct ps_registry {
    struct registry_entry *entries;
    size_t count;
    size_t cap;
};

ps_err_t ps_registry_new(struct ps_registry **reg_p, struct ps_error *err)
{
    if (!reg_p) {
        return ps_error_set(err, PS_ERR_INVALID, "registry: output is required");
    }
    struct ps_registry *reg = calloc(1, sizeof(*reg));
    if (!reg) {
        return ps_error_set(err, PS_ERR_NOMEM, "registry: out of memory");
    }
    *reg_p = reg;
    return PS_OK;
}

void ps_registry_destroy(struct ps_registry *reg)
{
    if (!reg) {
        return;
    }
    for (size_t i = 0; i < reg->count; i++) {
        ps_schema_destroy(reg->entries[i].schema);
    }
    free(reg->entries);
    free(reg);
}

static int same_text(const struct ps_schema *a, const struct ps_schema *b)
{
    const char *ja = ps_schema_json(a);
    const char *jb = ps_schema_json(b);
    return ja && jb && strcmp(ja, jb) == 0;
}

static const char *display_name(const struct ps_schema *schema)
{
    const char *name = ps_schema_name(schema);
    return name ? name : "(unnamed)";
}

ps_err_t ps_registry_add(struct ps_registry *reg, struct ps_schema *schema, int64_t confluent_id,
                         struct ps_error *err)
{
    if (!reg || !schema) {
        return ps_error_set(err, PS_ERR_INVALID, "registry: registry and schema are required");
    }
    for (size_t i = 0; i < reg->count; i++) {
        if (reg->entries[i].schema == schema) {
            /* Taking it again would free it twice; a second id needs a
             * second load. */
            return ps_error_set(err, PS_ERR_INVALID,
                                "schema '%s' is already owned by the registry",
                                display_name(schema));
        }
    }
    if (confluent_id > (int64_t)UINT32_MAX) {
        return ps_error_set(err, PS_ERR_CONFIG,
                            "schema '%s': id %" PRId64 " does not fit the 4-byte Confluent id",
                            display_name(schema), confluent_id);
    }
    int64_t id = confluent_id < 0 ? -1 : confluent_id;
    uint64_t fp = ps_schema_fingerprint(schema);

    int duplicate = 0;
    for (size_t i = 0; i < reg->count; i++) {
        const struct registry_entry *entry = &reg->entries[i];
        int same = same_text(entry->schema, schema);
        if (id >= 0 && entry->id == id && !same) {
            return ps_error_set(err, PS_ERR_CONFIG,
                                "schema '%s': id %" PRId64 " is already taken by schema '%s'",
                                display_name(schema), id, display_name(entry->schema));
        }
        if (entry->fingerprint == fp && !same) {
            return ps_error_set(err, PS_ERR_CONFIG,
                                "schema '%s': fingerprint %016" PRIx64 " is already taken by "
                                "schema '%s' (same canonical form, different text, e.g. other "
                                "tags: single-object frames could not tell them apart)",
                                display_name(schema), fp, display_name(entry->schema));
        }
        /* Without an id a schema is only there to be found by fingerprint,
         * which an identical one already is. */
        if (same && (entry->id == id || id < 0)) {
            duplicate = 1;
        }
    }
    if (duplicate) {
        /* Nothing changes. The registry owns what it is given on success, so
         * the redundant copy is freed here rather than kept as a second
         * entry that every walk over the registry would meet twice. */
        ps_schema_destroy(schema);
        return PS_OK;
    }

    if (reg->count == reg->cap) {
        size_t cap = reg->cap ? reg->cap * 2 : 8;
        struct registry_entry *entries = realloc(reg->entries, cap * sizeof(*entries));
        if (!entries) {
            return ps_error_set(err, PS_ERR_NOMEM, "registry: out of memory");
        }
        reg->entries = entries;
        reg->cap = cap;
    }
    reg->entries[reg->count++] = (struct registry_entry){
        .schema = schema,
        .id = id,
        .fingerprint = fp,
    };
    return PS_OK;
}

const struct ps_schema *ps_registry_by_fingerprint(const struct ps_registry *reg, uint64_t fp)
{
    for (size_t i = 0; reg && i < reg->count; i++) {
        if (reg->entries[i].fingerprint == fp) {
            return reg->entries[i].schema;
        }
    }
    return NULL;
}

const struct ps_schema *ps_registry_by_id(const struct ps_registry *reg, uint32_t id)
{
    for (size_t i = 0; reg && i < reg->count; i++) {
        if (reg->entries[i].id == (int64_t)id) {
            return reg->entries[i].schema;
        }
    }
    return NULL;
}

ps_err_t ps_registry_resolve(const struct ps_registry *reg, const struct ps_frame *frame,
                             const struct ps_schema **schema_p, struct ps_error *err)
{
    if (!reg || !frame || !schema_p) {
        return ps_error_set(err, PS_ERR_INVALID, "registry: registry, frame and output are "
                                                 "required");
    }
    const struct ps_schema *schema;
    switch (frame->format) {
    case PS_FRAME_CONFLUENT:
        schema = ps_registry_by_id(reg, frame->schema_id);
        if (!schema) {
            return ps_error_set(err, PS_ERR_SCHEMA_UNKNOWN, "no schema with Confluent id %" PRIu32,
                                frame->schema_id);
        }
        break;
    case PS_FRAME_SINGLE_OBJECT:
        schema = ps_registry_by_fingerprint(reg, frame->fingerprint);
        if (!schema) {
            return ps_error_set(err, PS_ERR_SCHEMA_UNKNOWN,
                                "no schema with fingerprint %016" PRIx64, frame->fingerprint);
        }
        break;
    default:
        return ps_error_set(err, PS_ERR_INVALID, "registry: frame has no known format");
    }
    *schema_p = schema;
    return PS_OK;
}

size_t ps_registry_count(const struct ps_registry *reg)
{
    return reg ? reg->count : 0;
}

const struct ps_schema *ps_registry_at(const struct ps_registry *reg, size_t i)
{
    return reg && i < reg->count ? reg->entries[i].schema : NULL;
}

int64_t ps_registry_id_at(const struct ps_registry *reg, size_t i)
{
    return reg && i < reg->count ? reg->entries[i].id : -1;
}
