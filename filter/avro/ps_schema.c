/*
 * ps_schema: the .avsc is read by jansson for the node tree (tags, logical
 * types, attributes Avro C throws away) and by Avro C for the codec.
 *
 * The jansson walk expands every reference to a named type in place, so a
 * record type defined once and used twice gives two subtrees with their own
 * paths. The same walk refuses what would make decoding unsafe: recursion
 * (found as a named type referenced while it is being expanded), nesting past
 * the depth limit, and arrays or maps whose items can encode in zero bytes.
 */
#include "ps_avro_internal.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ps_fingerprint.h"
#include "ps_tag.h"

#define PS_SCHEMA_DEFAULT_MAX_DEPTH 32
#define PS_SCHEMA_FILE_MAX (16u * 1024u * 1024u)
#define PS_SCHEMA_TAGS_ATTR "confluent:tags"

static atomic_uint_fast64_t schema_serial;

struct load_ctx {
    struct ps_schema *schema;
    const char *origin;
    int max_depth;
    const char **expanding; /* full names of the named types being expanded */
    int expanding_len;
    int expanding_cap;
    struct ps_error *err;
};

static const char *const primitive_names[] = {"null", "boolean", "int", "long", "float",
                                              "double", "bytes", "string", NULL};
static const enum ps_type primitive_types[] = {PS_TYPE_NULL, PS_TYPE_BOOLEAN, PS_TYPE_INT,
                                               PS_TYPE_LONG, PS_TYPE_FLOAT, PS_TYPE_DOUBLE,
                                               PS_TYPE_BYTES, PS_TYPE_STRING};
/* Fewest bytes a value of each primitive can encode in. */
static const size_t primitive_min_size[] = {0, 1, 1, 1, 4, 8, 1, 1};

static int schema_primitive(const char *name)
{
    for (int i = 0; primitive_names[i]; i++) {
        if (strcmp(name, primitive_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

static char *schema_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *copy = malloc(n);
    if (copy) {
        memcpy(copy, s, n);
    }
    return copy;
}

static char *schema_join(const char *a, const char *sep, const char *b)
{
    size_t la = strlen(a), ls = strlen(sep), lb = strlen(b);
    char *s = malloc(la + ls + lb + 1);
    if (s) {
        memcpy(s, a, la);
        memcpy(s + la, sep, ls);
        memcpy(s + la + ls, b, lb + 1);
    }
    return s;
}

static ps_err_t schema_fail(struct load_ctx *ctx, ps_err_t code, const char *path,
                            const char *what)
{
    return ps_error_set_at(ctx->err, code, ctx->origin, 0, 0, "%s '%s': %s",
                           path[0] ? "field" : "record", path[0] ? path : "(root)", what);
}

static const char *schema_node_path(struct load_ctx *ctx, int node, const char *fallback)
{
    return node >= 0 ? ctx->schema->nodes[node].path : fallback;
}

/* Appends a node under parent; returns its index or -1 when out of memory. */
static int schema_node_add(struct load_ctx *ctx, int parent, const char *name, const char *ns)
{
    struct ps_schema *schema = ctx->schema;
    if (schema->count == schema->cap) {
        size_t cap = schema->cap ? schema->cap * 2 : 64;
        struct ps_schema_node *nodes = realloc(schema->nodes, cap * sizeof(*nodes));
        if (!nodes) {
            return -1;
        }
        schema->nodes = nodes;
        struct ps_schema_node_ext *ext = realloc(schema->ext, cap * sizeof(*ext));
        if (!ext) {
            return -1;
        }
        schema->ext = ext;
        schema->cap = cap;
    }
    int index = (int)schema->count;
    struct ps_schema_node *n = &schema->nodes[index];
    struct ps_schema_node_ext *x = &schema->ext[index];
    memset(n, 0, sizeof(*n));
    memset(x, 0, sizeof(*x));
    n->parent = parent;
    n->next_sibling = -1;
    n->first_child = -1;
    x->field_index = -1;
    x->null_branch = -1;
    schema->count++;

    const char *ppath = parent >= 0 ? schema->nodes[parent].path : "";
    n->name = schema_strdup(name);
    x->ns = schema_strdup(ns);
    if (parent < 0) {
        n->path = schema_strdup("");
    } else if (name[0] == '[' || name[0] == '{' || ppath[0] == '\0') {
        n->path = schema_join(ppath, "", name);
    } else {
        n->path = schema_join(ppath, ".", name);
    }
    if (!n->name || !n->path || !x->ns) {
        return -1;
    }
    if (parent >= 0) {
        struct ps_schema_node *p = &schema->nodes[parent];
        struct ps_schema_node_ext *px = &schema->ext[parent];
        int *children = realloc(px->children, (size_t)(p->child_count + 1) * sizeof(int));
        if (!children) {
            return -1;
        }
        px->children = children;
        if (p->child_count > 0) {
            schema->nodes[children[p->child_count - 1]].next_sibling = index;
        } else {
            p->first_child = index;
        }
        children[p->child_count++] = index;
        n->depth = p->depth + 1;
    }
    return index;
}

static ps_err_t schema_parse_tags(struct load_ctx *ctx, json_t *field, int node)
{
    json_t *tags = json_object_get(field, PS_SCHEMA_TAGS_ATTR);
    if (!tags) {
        return PS_OK;
    }
    const char *path = ctx->schema->nodes[node].path;
    if (!json_is_array(tags)) {
        return schema_fail(ctx, PS_ERR_SCHEMA, path, "\"confluent:tags\" must be an array");
    }
    size_t i;
    json_t *tag;
    json_array_foreach(tags, i, tag) {
        int t = json_is_string(tag) ? ps_tag_parse(json_string_value(tag)) : -1;
        if (t < 0) {
            char known[512];
            ps_tag_mask_format(PS_TAG_BIT(PS_TAG_COUNT) - 1u, known, sizeof(known));
            return ps_error_set_at(ctx->err, PS_ERR_SCHEMA, ctx->origin, 0, 0,
                                   "field '%s': tag %zu is not in the vocabulary (%s)", path,
                                   i + 1, known);
        }
        ctx->schema->nodes[node].tags |= PS_TAG_BIT(t);
    }
    return PS_OK;
}

static enum ps_logical schema_logical(json_t *obj, enum ps_type type)
{
    const char *lt = json_string_value(json_object_get(obj, "logicalType"));
    if (!lt) {
        return PS_LOGICAL_NONE;
    }
    if (type == PS_TYPE_INT && strcmp(lt, "date") == 0) {
        return PS_LOGICAL_DATE;
    }
    if (type == PS_TYPE_LONG && strcmp(lt, "timestamp-millis") == 0) {
        return PS_LOGICAL_TIMESTAMP_MILLIS;
    }
    if (type == PS_TYPE_LONG && strcmp(lt, "timestamp-micros") == 0) {
        return PS_LOGICAL_TIMESTAMP_MICROS;
    }
    return PS_LOGICAL_OTHER;
}

char *ps_schema_fullname(json_t *def, const char *ns, char **def_ns_p)
{
    const char *name = json_string_value(json_object_get(def, "name"));
    if (!name) {
        return NULL;
    }
    const char *dot = strrchr(name, '.');
    char *full;
    if (dot) {
        full = schema_strdup(name);
        *def_ns_p = full ? strndup(name, (size_t)(dot - name)) : NULL;
    } else {
        json_t *jns = json_object_get(def, "namespace");
        const char *own = json_is_string(jns) ? json_string_value(jns) : ns;
        full = own[0] ? schema_join(own, ".", name) : schema_strdup(name);
        *def_ns_p = full ? schema_strdup(own) : NULL;
    }
    if (full && !*def_ns_p) {
        free(full);
        full = NULL;
    }
    return full;
}

json_t *ps_schema_lookup_named(const struct ps_schema *schema, const char *ref, const char *ns)
{
    json_t *def = NULL;
    if (!strchr(ref, '.') && ns[0]) {
        char *full = schema_join(ns, ".", ref);
        if (full) {
            def = json_object_get(schema->named, full);
            free(full);
        }
    }
    return def ? def : json_object_get(schema->named, ref);
}

static ps_err_t schema_walk_type(struct load_ctx *ctx, json_t *type, const char *ns, int node,
                                 int depth, const char *where, size_t *min_p);

static ps_err_t schema_walk_fields(struct load_ctx *ctx, json_t *def, const char *ns, int node,
                                   int depth, const char *where, size_t *min_p)
{
    json_t *fields = json_object_get(def, "fields");
    if (!json_is_array(fields)) {
        return schema_fail(ctx, PS_ERR_SCHEMA, where, "record has no \"fields\" array");
    }
    size_t i;
    json_t *field;
    size_t total = 0;
    json_array_foreach(fields, i, field) {
        const char *fname = json_string_value(json_object_get(field, "name"));
        json_t *ftype = json_object_get(field, "type");
        if (!json_is_object(field) || !fname || !ftype) {
            return schema_fail(ctx, PS_ERR_SCHEMA, where, "a field lacks a name or a type");
        }
        int child = -1;
        if (node >= 0) {
            child = schema_node_add(ctx, node, fname, ns);
            if (child < 0) {
                return ps_error_set(ctx->err, PS_ERR_NOMEM, "out of memory loading a schema");
            }
            ctx->schema->ext[child].field_index = (int)i;
            ctx->schema->ext[child].field_json = field;
            ps_err_t rc = schema_parse_tags(ctx, field, child);
            if (rc != PS_OK) {
                return rc;
            }
        }
        size_t min = 0;
        ps_err_t rc = schema_walk_type(ctx, ftype, ns, child, depth + 1,
                                       schema_node_path(ctx, child, where), &min);
        if (rc != PS_OK) {
            return rc;
        }
        total += min;
    }
    *min_p = total;
    return PS_OK;
}

static ps_err_t schema_expanding_push(struct load_ctx *ctx, const char *full, const char *where)
{
    for (int i = 0; i < ctx->expanding_len; i++) {
        if (strcmp(ctx->expanding[i], full) == 0) {
            return schema_fail(ctx, PS_ERR_SCHEMA, where,
                               "the schema is recursive (a named type contains itself)");
        }
    }
    if (ctx->expanding_len == ctx->expanding_cap) {
        int cap = ctx->expanding_cap ? ctx->expanding_cap * 2 : 16;
        const char **e = realloc(ctx->expanding, (size_t)cap * sizeof(*e));
        if (!e) {
            return ps_error_set(ctx->err, PS_ERR_NOMEM, "out of memory loading a schema");
        }
        ctx->expanding = e;
        ctx->expanding_cap = cap;
    }
    ctx->expanding[ctx->expanding_len++] = full;
    return PS_OK;
}

/* A named type definition: registered on first sight, expanded every time. */
static ps_err_t schema_walk_named(struct load_ctx *ctx, json_t *def, const char *kind,
                                  const char *ns, int node, int depth, const char *where,
                                  size_t *min_p)
{
    char *def_ns = NULL;
    char *full = ps_schema_fullname(def, ns, &def_ns);
    ps_err_t rc = PS_OK;
    if (!full) {
        rc = schema_fail(ctx, PS_ERR_SCHEMA, where, "a named type has no name");
        goto cleanup;
    }
    json_t *known = json_object_get(ctx->schema->named, full);
    if (known && known != def) {
        rc = schema_fail(ctx, PS_ERR_SCHEMA, where, "a named type is defined twice");
        goto cleanup;
    }
    if (!known && json_object_set(ctx->schema->named, full, def) != 0) {
        rc = ps_error_set(ctx->err, PS_ERR_NOMEM, "out of memory loading a schema");
        goto cleanup;
    }
    if (node >= 0) {
        ctx->schema->ext[node].type_json = def;
    }
    if (strcmp(kind, "enum") == 0) {
        if (node >= 0) {
            ctx->schema->nodes[node].type = PS_TYPE_ENUM;
        }
        *min_p = 1;
    } else if (strcmp(kind, "fixed") == 0) {
        json_t *size = json_object_get(def, "size");
        if (!json_is_integer(size) || json_integer_value(size) < 0) {
            rc = schema_fail(ctx, PS_ERR_SCHEMA, where, "fixed type without a valid size");
            goto cleanup;
        }
        if (node >= 0) {
            ctx->schema->nodes[node].type = PS_TYPE_FIXED;
        }
        *min_p = (size_t)json_integer_value(size);
    } else {
        if (node >= 0) {
            ctx->schema->nodes[node].type = PS_TYPE_RECORD;
        }
        rc = schema_expanding_push(ctx, full, where);
        if (rc == PS_OK) {
            rc = schema_walk_fields(ctx, def, def_ns, node, depth, where, min_p);
            ctx->expanding_len--;
        }
    }
cleanup:
    free(full);
    free(def_ns);
    return rc;
}

static ps_err_t schema_walk_container(struct load_ctx *ctx, json_t *def, int is_map,
                                      const char *ns, int node, int depth, const char *where,
                                      size_t *min_p)
{
    json_t *items = json_object_get(def, is_map ? "values" : "items");
    if (!items) {
        return schema_fail(ctx, PS_ERR_SCHEMA, where,
                           is_map ? "map without \"values\"" : "array without \"items\"");
    }
    int child = -1;
    if (node >= 0) {
        ctx->schema->nodes[node].type = is_map ? PS_TYPE_MAP : PS_TYPE_ARRAY;
        ctx->schema->ext[node].type_json = def;
        child = schema_node_add(ctx, node, is_map ? "{}" : "[]", ns);
        if (child < 0) {
            return ps_error_set(ctx->err, PS_ERR_NOMEM, "out of memory loading a schema");
        }
    }
    size_t min = 0;
    ps_err_t rc = schema_walk_type(ctx, items, ns, child, depth + 1,
                                   schema_node_path(ctx, child, where), &min);
    if (rc != PS_OK) {
        return rc;
    }
    if (min == 0) {
        /* A few bytes could then claim millions of items (reliability.md §5). */
        return schema_fail(ctx, PS_ERR_SCHEMA, where,
                           is_map ? "map values can encode in zero bytes"
                                  : "array items can encode in zero bytes");
    }
    *min_p = 1;
    return PS_OK;
}

static ps_err_t schema_walk_union(struct load_ctx *ctx, json_t *branches, const char *ns,
                                  int node, int depth, const char *where, size_t *min_p)
{
    size_t n = json_array_size(branches);
    if (n == 0) {
        return schema_fail(ctx, PS_ERR_SCHEMA, where, "empty union");
    }
    const char *b0 = json_string_value(json_array_get(branches, 0));
    const char *b1 = json_string_value(json_array_get(branches, 1));
    int null0 = b0 && strcmp(b0, "null") == 0;
    int null1 = b1 && strcmp(b1, "null") == 0;
    if (node >= 0 && n == 2 && null0 != null1) {
        ctx->schema->nodes[node].nullable = 1;
        ctx->schema->ext[node].null_branch = null0 ? 0 : 1;
        size_t min = 0;
        ps_err_t rc = schema_walk_type(ctx, json_array_get(branches, null0 ? 1 : 0), ns, node,
                                       depth, where, &min);
        *min_p = 1;
        return rc;
    }
    if (node >= 0) {
        ctx->schema->nodes[node].type = PS_TYPE_UNION;
        ctx->schema->ext[node].type_json = branches;
    }
    size_t i;
    json_t *branch;
    size_t least = SIZE_MAX;
    json_array_foreach(branches, i, branch) {
        size_t min = 0;
        ps_err_t rc = schema_walk_type(ctx, branch, ns, -1, depth + 1, where, &min);
        if (rc != PS_OK) {
            return rc;
        }
        least = min < least ? min : least;
    }
    *min_p = 1 + least;
    return PS_OK;
}

static ps_err_t schema_walk_primitive(struct load_ctx *ctx, json_t *type, int prim,
                                      json_t *obj, int node, size_t *min_p)
{
    if (node >= 0) {
        struct ps_schema_node *n = &ctx->schema->nodes[node];
        n->type = primitive_types[prim];
        n->logical = obj ? schema_logical(obj, n->type) : PS_LOGICAL_NONE;
        ctx->schema->ext[node].type_json = type;
    }
    *min_p = primitive_min_size[prim];
    return PS_OK;
}

static ps_err_t schema_walk_type(struct load_ctx *ctx, json_t *type, const char *ns, int node,
                                 int depth, const char *where, size_t *min_p)
{
    if (depth > ctx->max_depth) {
        char what[96];
        snprintf(what, sizeof(what), "the schema nests deeper than the limit (%d)",
                 ctx->max_depth);
        return schema_fail(ctx, PS_ERR_SCHEMA, where, what);
    }
    if (node >= 0) {
        ctx->schema->nodes[node].depth = depth;
    }
    if (json_is_array(type)) {
        return schema_walk_union(ctx, type, ns, node, depth, where, min_p);
    }
    if (json_is_string(type)) {
        const char *name = json_string_value(type);
        int prim = schema_primitive(name);
        if (prim >= 0) {
            return schema_walk_primitive(ctx, type, prim, NULL, node, min_p);
        }
        json_t *def = ps_schema_lookup_named(ctx->schema, name, ns);
        if (!def) {
            return schema_fail(ctx, PS_ERR_SCHEMA, where, "reference to an unknown type");
        }
        const char *kind = json_string_value(json_object_get(def, "type"));
        return schema_walk_named(ctx, def, kind, ns, node, depth, where, min_p);
    }
    json_t *kind_json = json_object_get(type, "type");
    if (!json_is_object(type) || !kind_json) {
        return schema_fail(ctx, PS_ERR_SCHEMA, where, "a type is not a name, object or union");
    }
    if (!json_is_string(kind_json)) {
        return schema_walk_type(ctx, kind_json, ns, node, depth, where, min_p);
    }
    const char *kind = json_string_value(kind_json);
    int prim = schema_primitive(kind);
    if (prim >= 0) {
        return schema_walk_primitive(ctx, type, prim, type, node, min_p);
    }
    if (strcmp(kind, "record") == 0 || strcmp(kind, "error") == 0 ||
        strcmp(kind, "enum") == 0 || strcmp(kind, "fixed") == 0) {
        return schema_walk_named(ctx, type, kind, ns, node, depth, where, min_p);
    }
    if (strcmp(kind, "array") == 0 || strcmp(kind, "map") == 0) {
        return schema_walk_container(ctx, type, kind[0] == 'm', ns, node, depth, where, min_p);
    }
    /* A bare reference in object form: {"type": "CX"}. */
    json_t *def = ps_schema_lookup_named(ctx->schema, kind, ns);
    if (!def) {
        return schema_fail(ctx, PS_ERR_SCHEMA, where, "reference to an unknown type");
    }
    return schema_walk_named(ctx, def, json_string_value(json_object_get(def, "type")), ns,
                             node, depth, where, min_p);
}

static ps_err_t schema_build_chains(struct ps_schema *schema, struct ps_error *err)
{
    for (size_t i = 0; i < schema->count; i++) {
        struct ps_schema_node_ext *x = &schema->ext[i];
        int parent = schema->nodes[i].parent;
        int len = parent >= 0 ? schema->ext[parent].chain_len + 1 : 1;
        x->chain = malloc((size_t)len * sizeof(int));
        if (!x->chain) {
            return ps_error_set(err, PS_ERR_NOMEM, "out of memory loading a schema");
        }
        if (parent >= 0) {
            memcpy(x->chain, schema->ext[parent].chain, (size_t)(len - 1) * sizeof(int));
        }
        x->chain[len - 1] = (int)i;
        x->chain_len = len;
    }
    return PS_OK;
}

static ps_err_t schema_walk_root(struct load_ctx *ctx)
{
    struct ps_schema *schema = ctx->schema;
    json_t *doc = schema->doc;
    const char *kind = json_string_value(json_object_get(doc, "type"));
    if (!json_is_object(doc) || !kind || strcmp(kind, "record") != 0) {
        return ps_error_set_at(ctx->err, PS_ERR_SCHEMA, ctx->origin, 0, 0,
                               "the top-level schema must be a record");
    }
    char *def_ns = NULL;
    schema->name = ps_schema_fullname(doc, "", &def_ns);
    free(def_ns);
    if (!schema->name) {
        return ps_error_set_at(ctx->err, PS_ERR_SCHEMA, ctx->origin, 0, 0,
                               "the top-level record has no name");
    }
    if (schema_node_add(ctx, -1, "", "") != 0) {
        return ps_error_set(ctx->err, PS_ERR_NOMEM, "out of memory loading a schema");
    }
    size_t min = 0;
    ps_err_t rc = schema_walk_type(ctx, doc, "", 0, 0, "", &min);
    if (rc != PS_OK) {
        return rc;
    }
    return schema_build_chains(schema, ctx->err);
}

static ps_err_t schema_parse_avro(struct ps_schema *schema, struct ps_error *err)
{
    avro_schema_t avro = NULL;
    if (avro_schema_from_json_length(schema->json, strlen(schema->json), &avro) != 0) {
        /* avro_strerror is process-wide and not thread-safe: keep its text out. */
        return ps_error_set_at(err, PS_ERR_SCHEMA, schema->origin, 0, 0,
                               "Avro C does not accept the schema");
    }
    schema->avro = avro;
    return PS_OK;
}

static avro_schema_t schema_resolve_link(avro_schema_t s)
{
    return s && is_avro_link(s) ? avro_schema_link_target(s) : s;
}

/* Binds node (whose field or item schema in Avro C is s) and its subtree;
 * returns 0 where the two trees disagree. */
static int schema_bind_node(struct ps_schema *schema, int node, avro_schema_t s)
{
    static const avro_type_t types[] = {
        [PS_TYPE_NULL] = AVRO_NULL, [PS_TYPE_BOOLEAN] = AVRO_BOOLEAN,
        [PS_TYPE_INT] = AVRO_INT32, [PS_TYPE_LONG] = AVRO_INT64, [PS_TYPE_FLOAT] = AVRO_FLOAT,
        [PS_TYPE_DOUBLE] = AVRO_DOUBLE, [PS_TYPE_BYTES] = AVRO_BYTES,
        [PS_TYPE_STRING] = AVRO_STRING, [PS_TYPE_ENUM] = AVRO_ENUM, [PS_TYPE_FIXED] = AVRO_FIXED,
        [PS_TYPE_RECORD] = AVRO_RECORD, [PS_TYPE_ARRAY] = AVRO_ARRAY, [PS_TYPE_MAP] = AVRO_MAP,
        [PS_TYPE_UNION] = AVRO_UNION};
    const struct ps_schema_node *n = &schema->nodes[node];
    struct ps_schema_node_ext *x = &schema->ext[node];
    s = schema_resolve_link(s);
    if (!s) {
        return 0;
    }
    if (n->nullable) {
        if (avro_typeof(s) != AVRO_UNION || avro_schema_union_size(s) != 2) {
            return 0;
        }
        s = schema_resolve_link(avro_schema_union_branch(s, 1 - x->null_branch));
    }
    if (!s || (unsigned)n->type >= sizeof(types) / sizeof(types[0]) ||
        avro_typeof(s) != types[n->type]) {
        return 0;
    }
    x->avro = s;
    switch (n->type) {
    case PS_TYPE_RECORD:
        if ((size_t)n->child_count != avro_schema_record_size(s)) {
            return 0;
        }
        for (int c = 0; c < n->child_count; c++) {
            if (!schema_bind_node(schema, x->children[c],
                                  avro_schema_record_field_get_by_index(s, c))) {
                return 0;
            }
        }
        return 1;
    case PS_TYPE_ARRAY:
    case PS_TYPE_MAP: {
        avro_schema_t item = n->type == PS_TYPE_MAP ? avro_schema_map_values(s)
                                                    : avro_schema_array_items(s);
        size_t min = ps_avro_min_size(item) + (n->type == PS_TYPE_MAP ? 1 : 0);
        x->item_min = min ? min : 1;
        return n->first_child >= 0 && schema_bind_node(schema, n->first_child, item);
    }
    default:
        return n->child_count == 0;
    }
}

void ps_schema_bind_avro(struct ps_schema *schema)
{
    schema->bound = schema->count > 0 && schema_bind_node(schema, 0, schema->avro);
}

ps_err_t ps_schema_load_json(const char *json, const char *origin,
                             const struct ps_schema_limits *limits,
                             struct ps_schema **schema_p, struct ps_error *err)
{
    struct load_ctx ctx = {0};
    ps_err_t rc = PS_OK;
    if (!json || !schema_p) {
        return ps_error_set(err, PS_ERR_INVALID, "no schema text given");
    }
    ps_avro_allocator_install();
    struct ps_schema *schema = calloc(1, sizeof(*schema));
    if (!schema) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory loading a schema");
    }
    schema->json = schema_strdup(json);
    schema->origin = schema_strdup(origin ? origin : "(schema)");
    schema->named = json_object();
    if (!schema->json || !schema->origin || !schema->named) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "out of memory loading a schema");
        goto cleanup;
    }
    json_error_t jerr;
    schema->doc = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    if (!schema->doc) {
        rc = ps_error_set_at(err, PS_ERR_SCHEMA, schema->origin, jerr.line, jerr.column,
                             "invalid JSON: %s", jerr.text);
        goto cleanup;
    }
    ctx.schema = schema;
    ctx.origin = schema->origin;
    ctx.max_depth = limits && limits->max_depth > 0 ? limits->max_depth
                                                    : PS_SCHEMA_DEFAULT_MAX_DEPTH;
    ctx.err = err;
    rc = schema_walk_root(&ctx);
    if (rc != PS_OK) {
        goto cleanup;
    }
    rc = schema_parse_avro(schema, err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    ps_schema_bind_avro(schema);
    if (!schema->bound) {
        rc = ps_error_set(err, PS_ERR_SCHEMA,
                          "%s: Avro C reads this schema differently from pseudostream "
                          "(report it with the schema)", schema->origin);
        goto cleanup;
    }
    rc = ps_fingerprint_schema(schema->json, &schema->fingerprint, err);
    if (rc != PS_OK) {
        ps_error_prefix(err, "%s", schema->origin);
        goto cleanup;
    }
    schema->serial = atomic_fetch_add(&schema_serial, 1) + 1;
    *schema_p = schema;
    schema = NULL;
cleanup:
    free(ctx.expanding);
    ps_schema_destroy(schema);
    return rc;
}

static ps_err_t schema_read_file(const char *path, char **text_p, struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    char *text = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        return ps_error_set_at(err, PS_ERR_IO, path, 0, 0, "cannot open: %s", strerror(errno));
    }
    size_t cap = 4096, len = 0;
    text = malloc(cap);
    while (text) {
        if (len + 1 == cap) {
            if (cap >= PS_SCHEMA_FILE_MAX) {
                rc = ps_error_set_at(err, PS_ERR_SCHEMA, path, 0, 0, "schema file too large");
                goto cleanup;
            }
            char *bigger = realloc(text, cap * 2);
            if (!bigger) {
                break;
            }
            text = bigger;
            cap *= 2;
        }
        size_t n = fread(text + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0) {
            break;
        }
    }
    if (!text || len + 1 == cap) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "out of memory reading a schema");
        goto cleanup;
    }
    if (ferror(f)) {
        rc = ps_error_set_at(err, PS_ERR_IO, path, 0, 0, "read error");
        goto cleanup;
    }
    text[len] = '\0';
    *text_p = text;
    text = NULL;
cleanup:
    free(text);
    fclose(f);
    return rc;
}

ps_err_t ps_schema_load_file(const char *path, const struct ps_schema_limits *limits,
                             struct ps_schema **schema_p, struct ps_error *err)
{
    char *text = NULL;
    ps_err_t rc = schema_read_file(path, &text, err);
    if (rc == PS_OK) {
        rc = ps_schema_load_json(text, path, limits, schema_p, err);
    }
    free(text);
    return rc;
}

void ps_schema_destroy(struct ps_schema *schema)
{
    if (!schema) {
        return;
    }
    for (size_t i = 0; i < schema->count; i++) {
        free((char *)schema->nodes[i].name);
        free((char *)schema->nodes[i].path);
        free(schema->ext[i].children);
        free(schema->ext[i].chain);
        free(schema->ext[i].ns);
    }
    free(schema->nodes);
    free(schema->ext);
    if (schema->avro) {
        avro_schema_decref(schema->avro);
    }
    json_decref(schema->named);
    json_decref(schema->doc);
    free(schema->json);
    free(schema->origin);
    free(schema->name);
    free(schema);
}

const char *ps_schema_name(const struct ps_schema *schema)
{
    return schema->name;
}

const char *ps_schema_json(const struct ps_schema *schema)
{
    return schema->json;
}

const char *ps_schema_origin(const struct ps_schema *schema)
{
    return schema->origin;
}

uint64_t ps_schema_fingerprint(const struct ps_schema *schema)
{
    return schema->fingerprint;
}

size_t ps_schema_node_count(const struct ps_schema *schema)
{
    return schema->count;
}

const struct ps_schema_node *ps_schema_node(const struct ps_schema *schema, int index)
{
    if (!schema || index < 0 || (size_t)index >= schema->count) {
        return NULL;
    }
    return &schema->nodes[index];
}

int ps_schema_find(const struct ps_schema *schema, const char *path)
{
    for (size_t i = 0; path && i < schema->count; i++) {
        if (strcmp(schema->nodes[i].path, path) == 0) {
            return (int)i;
        }
    }
    return -1;
}

const char *ps_schema_attribute(const struct ps_schema *schema, const char *name)
{
    return json_string_value(json_object_get(schema->doc, name));
}
