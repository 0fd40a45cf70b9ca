/*
 * ps_project: derived schemas and the encoder that writes them.
 *
 * The derived schema is built in two passes over jansson documents. The first
 * writes every type inline (each named type under out_namespace), following
 * the plan node by node; the second walks the result in document order and
 * turns a repeated named type into a reference when its content is the same,
 * or renames it (Name_2, ...) when a different plan made it differ. So a
 * record type used twice in the input stays one type in the output unless the
 * plan treats its two uses differently.
 *
 * apply writes the binary datum of the derived schema straight from the input:
 * no intermediate value, no allocation beyond the output buffer. For an event
 * served from the tape (ps_avro_internal.h) the bytes of every subtree the
 * plan keeps whole are copied as they are; otherwise (and as the reference
 * the tape path is tested against) Avro C's decoded value is walked and kept
 * subtrees are written by the generic writer.
 */
#include "ps_project.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ps_avro_internal.h"
#include "ps_tag.h"

struct proj_node {
    enum ps_project_op op;
    enum ps_type out_type;
    int whole_keep;    /* KEEP with every descendant KEEP: copy the value as it is */
    int *kept;         /* record: children that are not dropped, in field order */
    int kept_count;
};

struct ps_projection {
    const struct ps_schema *in;
    struct ps_schema *out;
    struct proj_node *nodes;
    int mapped;        /* some node is MAP: apply needs a map function */
};

struct proj_named {
    char *requested;   /* full name the first pass gave */
    char *sig;         /* its fully inlined definition, canonical JSON */
    char *chosen;      /* full name written */
};

struct proj_build {
    const struct ps_schema *in;
    const struct ps_project_field *spec;
    const char *ns;
    struct proj_named *named;
    size_t named_count;
    struct ps_error *err;
};

static int proj_is_leaf(const struct ps_schema_node *n)
{
    return n->type != PS_TYPE_RECORD && n->type != PS_TYPE_ARRAY && n->type != PS_TYPE_MAP;
}

static ps_err_t proj_check_node(const struct proj_build *pb, int i)
{
    const struct ps_schema_node *n = &pb->in->nodes[i];
    const struct ps_project_field *f = &pb->spec[i];
    if (f->op == PS_PROJECT_MAP) {
        if (!proj_is_leaf(n) || n->type == PS_TYPE_UNION) {
            return ps_error_set(pb->err, PS_ERR_INVALID,
                                "field '%s': only a scalar leaf can be mapped", n->path);
        }
        if (f->out_type != PS_TYPE_STRING && f->out_type != PS_TYPE_INT &&
            f->out_type != PS_TYPE_LONG && f->out_type != PS_TYPE_BOOLEAN) {
            return ps_error_set(pb->err, PS_ERR_INVALID,
                                "field '%s': a mapped field must become a string, int, long "
                                "or boolean", n->path);
        }
    } else if (f->op == PS_PROJECT_DROP && (n->name[0] == '[' || n->name[0] == '{')) {
        return ps_error_set(pb->err, PS_ERR_INVALID,
                            "field '%s': items cannot be dropped alone; drop the collection",
                            n->path);
    } else if (f->op != PS_PROJECT_KEEP && f->op != PS_PROJECT_DROP) {
        return ps_error_set(pb->err, PS_ERR_INVALID, "field '%s': unknown operation", n->path);
    }
    return PS_OK;
}

/* Checks the plan where it applies (not under a dropped or mapped node). */
static ps_err_t proj_check(const struct proj_build *pb)
{
    const struct ps_schema *in = pb->in;
    if (pb->spec[0].op != PS_PROJECT_KEEP) {
        return ps_error_set(pb->err, PS_ERR_INVALID, "the root record must be kept");
    }
    for (size_t i = 1; i < in->count; i++) {
        int live = 1;
        for (int p = in->nodes[i].parent; p >= 0; p = in->nodes[p].parent) {
            live = live && pb->spec[p].op == PS_PROJECT_KEEP;
        }
        if (live) {
            ps_err_t rc = proj_check_node(pb, (int)i);
            if (rc != PS_OK) {
                return rc;
            }
        }
    }
    return PS_OK;
}

static ps_err_t proj_plan(struct ps_projection *proj, const struct ps_project_field *spec,
                          struct ps_error *err)
{
    const struct ps_schema *in = proj->in;
    proj->nodes = calloc(in->count, sizeof(*proj->nodes));
    if (!proj->nodes) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory building a projection");
    }
    /* Reverse preorder visits children before their parent. */
    for (size_t k = in->count; k-- > 0;) {
        struct proj_node *pn = &proj->nodes[k];
        const struct ps_schema_node *n = &in->nodes[k];
        pn->op = spec[k].op;
        pn->out_type = spec[k].out_type;
        proj->mapped = proj->mapped || pn->op == PS_PROJECT_MAP;
        pn->whole_keep = pn->op == PS_PROJECT_KEEP;
        pn->kept = malloc((size_t)(n->child_count ? n->child_count : 1) * sizeof(int));
        if (!pn->kept) {
            return ps_error_set(err, PS_ERR_NOMEM, "out of memory building a projection");
        }
        for (int c = 0; c < n->child_count; c++) {
            int child = in->ext[k].children[c];
            pn->whole_keep = pn->whole_keep && proj->nodes[child].whole_keep;
            if (spec[child].op != PS_PROJECT_DROP) {
                pn->kept[pn->kept_count++] = child;
            }
        }
    }
    return PS_OK;
}

/* ---- derived schema, first pass: everything inline ---------------------- */

static const char *proj_short_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot ? dot + 1 : name;
}

/* Copies the attributes of obj except those listed (NULL-terminated). */
static json_t *proj_copy_except(json_t *obj, const char *const *skip)
{
    json_t *copy = json_object();
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        int skipped = 0;
        for (int i = 0; skip[i]; i++) {
            skipped = skipped || strcmp(key, skip[i]) == 0;
        }
        if (!skipped && copy && json_object_set_new(copy, key, json_deep_copy(v)) != 0) {
            json_decref(copy);
            return NULL;
        }
    }
    return copy;
}

static const char *const proj_named_skip[] = {"name", "namespace", "aliases", "fields", NULL};

/* A named type's header under the output namespace. */
static json_t *proj_named_header(const struct proj_build *pb, json_t *def)
{
    json_t *obj = proj_copy_except(def, proj_named_skip);
    const char *name = json_string_value(json_object_get(def, "name"));
    if (obj && name) {
        json_object_set_new(obj, "name", json_string(proj_short_name(name)));
        if (pb->ns[0]) {
            json_object_set_new(obj, "namespace", json_string(pb->ns));
        }
    }
    return obj;
}

/* An input type (inside an opaque union) copied with every reference inlined. */
static json_t *proj_inline_raw(const struct proj_build *pb, json_t *t, const char *ns, int depth)
{
    if (depth > 64) {
        return NULL;
    }
    if (json_is_array(t)) {
        json_t *u = json_array();
        size_t i;
        json_t *b;
        json_array_foreach(t, i, b) {
            if (json_array_append_new(u, proj_inline_raw(pb, b, ns, depth + 1)) != 0) {
                json_decref(u);
                return NULL;
            }
        }
        return u;
    }
    const char *kind = json_is_string(t) ? json_string_value(t)
                                         : json_string_value(json_object_get(t, "type"));
    if (!kind) {
        return NULL;
    }
    json_t *def = ps_schema_lookup_named(pb->in, kind, ns);
    if (json_is_string(t) || (def && json_object_size(t) == 1)) {
        return def ? proj_inline_raw(pb, def, ns, depth + 1) : json_deep_copy(t);
    }
    if (strcmp(kind, "array") == 0 || strcmp(kind, "map") == 0) {
        const char *key = kind[0] == 'a' ? "items" : "values";
        json_t *obj = json_deep_copy(t);
        json_object_set_new(obj, key, proj_inline_raw(pb, json_object_get(t, key), ns, depth + 1));
        return obj;
    }
    if (!json_object_get(t, "name")) {
        return json_deep_copy(t);
    }
    char *def_ns = NULL;
    char *full = ps_schema_fullname(t, ns, &def_ns);
    json_t *obj = full ? proj_named_header(pb, t) : NULL;
    json_t *fields = json_object_get(t, "fields");
    if (obj && fields) {
        json_t *out_fields = json_array();
        size_t i;
        json_t *f;
        json_array_foreach(fields, i, f) {
            json_t *of = json_deep_copy(f);
            json_object_set_new(of, "type",
                                proj_inline_raw(pb, json_object_get(f, "type"), def_ns,
                                                depth + 1));
            json_array_append_new(out_fields, of);
        }
        json_object_set_new(obj, "fields", out_fields);
    }
    free(full);
    free(def_ns);
    return obj;
}

static json_t *proj_mapped_type(const struct ps_project_field *f)
{
    static const char *const names[] = {
        [PS_TYPE_STRING] = "string", [PS_TYPE_INT] = "int", [PS_TYPE_LONG] = "long",
        [PS_TYPE_BOOLEAN] = "boolean"};
    const char *logical = NULL;
    if (f->out_logical == PS_LOGICAL_DATE && f->out_type == PS_TYPE_INT) {
        logical = "date";
    } else if (f->out_logical == PS_LOGICAL_TIMESTAMP_MILLIS && f->out_type == PS_TYPE_LONG) {
        logical = "timestamp-millis";
    } else if (f->out_logical == PS_LOGICAL_TIMESTAMP_MICROS && f->out_type == PS_TYPE_LONG) {
        logical = "timestamp-micros";
    }
    if (!logical) {
        return json_string(names[f->out_type]);
    }
    return json_pack("{s:s, s:s}", "type", names[f->out_type], "logicalType", logical);
}

static json_t *proj_gen_field_type(const struct proj_build *pb, int node);

static json_t *proj_gen_field(const struct proj_build *pb, int child)
{
    static const char *const skip[] = {"type", NULL};
    const struct ps_project_field *f = &pb->spec[child];
    json_t *field = proj_copy_except(pb->in->ext[child].field_json, skip);
    if (!field) {
        return NULL;
    }
    if (f->op == PS_PROJECT_MAP) {
        json_object_del(field, "confluent:tags");
        if (f->out_tags) {
            json_t *tags = json_array();
            for (int t = 0; t < PS_TAG_COUNT; t++) {
                if (f->out_tags & PS_TAG_BIT(t)) {
                    json_array_append_new(tags, json_string(ps_tag_name((enum ps_tag)t)));
                }
            }
            json_object_set_new(field, "confluent:tags", tags);
        }
        if (f->out_doc) {
            json_object_set_new(field, "doc", json_string(f->out_doc));
        }
        /* Only a null default stays valid once the type changes. */
        json_t *def = json_object_get(field, "default");
        if (def && !(json_is_null(def) && pb->in->ext[child].null_branch == 0)) {
            json_object_del(field, "default");
        }
    }
    json_t *type = proj_gen_field_type(pb, child);
    if (!type || json_object_set_new(field, "type", type) != 0) {
        json_decref(field);
        return NULL;
    }
    return field;
}

static json_t *proj_gen_record(const struct proj_build *pb, int node)
{
    json_t *obj = proj_named_header(pb, pb->in->ext[node].type_json);
    json_t *fields = json_array();
    const struct ps_schema_node *n = &pb->in->nodes[node];
    for (int c = 0; obj && fields && c < n->child_count; c++) {
        int child = pb->in->ext[node].children[c];
        if (pb->spec[child].op == PS_PROJECT_DROP) {
            continue;
        }
        if (json_array_append_new(fields, proj_gen_field(pb, child)) != 0) {
            json_decref(fields);
            fields = NULL;
        }
    }
    if (!obj || !fields || json_object_set_new(obj, "fields", fields) != 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

/* The node's type without its null branch. */
static json_t *proj_gen_type(const struct proj_build *pb, int node)
{
    const struct ps_schema_node *n = &pb->in->nodes[node];
    const struct ps_schema_node_ext *x = &pb->in->ext[node];
    if (pb->spec[node].op == PS_PROJECT_MAP) {
        return proj_mapped_type(&pb->spec[node]);
    }
    switch (n->type) {
    case PS_TYPE_RECORD:
        return proj_gen_record(pb, node);
    case PS_TYPE_ARRAY:
    case PS_TYPE_MAP: {
        const char *key = n->type == PS_TYPE_ARRAY ? "items" : "values";
        json_t *obj = json_deep_copy(x->type_json);
        if (obj && json_object_set_new(obj, key, proj_gen_field_type(pb, n->first_child)) != 0) {
            json_decref(obj);
            obj = NULL;
        }
        return obj;
    }
    case PS_TYPE_ENUM:
    case PS_TYPE_FIXED:
        return proj_named_header(pb, x->type_json);
    case PS_TYPE_UNION:
        return proj_inline_raw(pb, x->type_json, x->ns, 0);
    default:
        return json_deep_copy(x->type_json);
    }
}

static json_t *proj_gen_field_type(const struct proj_build *pb, int node)
{
    json_t *type = proj_gen_type(pb, node);
    int null_branch = pb->in->ext[node].null_branch;
    if (!type || !pb->in->nodes[node].nullable) {
        return type;
    }
    json_t *u = null_branch == 0 ? json_pack("[s, o]", "null", type)
                                 : json_pack("[o, s]", type, "null");
    return u;
}

/* ---- derived schema, second pass: references for repeats ---------------- */

static char *proj_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    return c ? memcpy(c, s, n) : NULL;
}

static char *proj_qualify(const struct proj_build *pb, const char *short_name)
{
    size_t n = strlen(pb->ns) + strlen(short_name) + 2;
    char *full = malloc(n);
    if (full) {
        snprintf(full, n, "%s%s%s", pb->ns, pb->ns[0] ? "." : "", short_name);
    }
    return full;
}

static int proj_name_taken(const struct proj_build *pb, const char *full)
{
    for (size_t i = 0; i < pb->named_count; i++) {
        if (strcmp(pb->named[i].chosen, full) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Returns the name a definition should be replaced by, or NULL to keep it
 * (renamed if needed); *failed_p on out-of-memory. */
static json_t *proj_dedupe_named(struct proj_build *pb, json_t *t, int *failed_p)
{
    const char *short_name = json_string_value(json_object_get(t, "name"));
    char *sig = json_dumps(t, JSON_COMPACT | JSON_SORT_KEYS);
    char *full = short_name ? proj_qualify(pb, short_name) : NULL;
    json_t *ref = NULL;
    struct proj_named *named = realloc(pb->named, (pb->named_count + 1) * sizeof(*named));
    if (!sig || !full || !named) {
        *failed_p = 1;
        goto cleanup;
    }
    pb->named = named;
    for (size_t i = 0; i < pb->named_count; i++) {
        if (strcmp(named[i].requested, full) == 0 && strcmp(named[i].sig, sig) == 0) {
            ref = json_string(named[i].chosen);
            goto cleanup;
        }
    }
    char *chosen = proj_strdup(full);
    for (int k = 2; chosen && proj_name_taken(pb, chosen); k++) {
        size_t n = strlen(short_name) + 16;
        char *alt = malloc(n);
        free(chosen);
        chosen = NULL;
        if (alt) {
            snprintf(alt, n, "%s_%d", short_name, k);
            chosen = proj_qualify(pb, alt);
            if (chosen && !proj_name_taken(pb, chosen)) {
                json_object_set_new(t, "name", json_string(alt));
            }
            free(alt);
        }
    }
    if (!chosen) {
        *failed_p = 1;
        goto cleanup;
    }
    named[pb->named_count].requested = full;
    named[pb->named_count].sig = sig;
    named[pb->named_count].chosen = chosen;
    pb->named_count++;
    full = NULL;
    sig = NULL;
cleanup:
    free(sig);
    free(full);
    return ref;
}

static void proj_dedupe(struct proj_build *pb, json_t *t, int *failed_p)
{
    if (json_is_array(t)) {
        for (size_t i = 0; i < json_array_size(t); i++) {
            json_t *b = json_array_get(t, i);
            json_t *ref = json_is_object(b) && json_object_get(b, "name")
                              ? proj_dedupe_named(pb, b, failed_p)
                              : NULL;
            if (ref) {
                json_array_set_new(t, i, ref);
            } else {
                proj_dedupe(pb, b, failed_p);
            }
        }
        return;
    }
    if (!json_is_object(t)) {
        return;
    }
    static const char *const slots[] = {"items", "values", "type", NULL};
    for (int k = 0; slots[k]; k++) {
        json_t *child = json_object_get(t, slots[k]);
        if (!json_is_object(child) && !json_is_array(child)) {
            continue;
        }
        json_t *ref = json_is_object(child) && json_object_get(child, "name")
                          ? proj_dedupe_named(pb, child, failed_p)
                          : NULL;
        if (ref) {
            json_object_set_new(t, slots[k], ref);
        } else {
            proj_dedupe(pb, child, failed_p);
        }
    }
    json_t *fields = json_object_get(t, "fields");
    for (size_t i = 0; i < json_array_size(fields); i++) {
        proj_dedupe(pb, json_array_get(fields, i), failed_p);
    }
}

static ps_err_t proj_derive(struct ps_projection *proj, struct proj_build *pb)
{
    ps_err_t rc = PS_OK;
    char *text = NULL;
    char *origin = NULL;
    json_t *doc = proj_gen_record(pb, 0);
    int failed = doc == NULL;
    if (doc) {
        /* The root is a definition too: register it before its fields. */
        json_t *ref = proj_dedupe_named(pb, doc, &failed);
        json_decref(ref);
        proj_dedupe(pb, doc, &failed);
    }
    text = failed ? NULL : json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    size_t olen = strlen(pb->in->origin) + 32;
    origin = malloc(olen);
    if (!text || !origin) {
        rc = ps_error_set(pb->err, PS_ERR_NOMEM, "out of memory deriving a schema");
        goto cleanup;
    }
    snprintf(origin, olen, "derived from %s", pb->in->origin);
    rc = ps_schema_load_json(text, origin, NULL, &proj->out, pb->err);
    if (rc != PS_OK) {
        ps_error_prefix(pb->err, "derived schema");
    }
cleanup:
    free(origin);
    free(text);
    json_decref(doc);
    return rc;
}

ps_err_t ps_projection_new(const struct ps_schema *in, const struct ps_project_field *spec,
                           const char *out_namespace, struct ps_projection **proj_p,
                           struct ps_error *err)
{
    struct proj_build pb = {
        .in = in, .spec = spec, .ns = out_namespace ? out_namespace : "", .err = err};
    ps_err_t rc = proj_check(&pb);
    if (rc != PS_OK) {
        return rc;
    }
    struct ps_projection *proj = calloc(1, sizeof(*proj));
    if (!proj) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory building a projection");
    }
    proj->in = in;
    rc = proj_plan(proj, spec, err);
    if (rc == PS_OK) {
        rc = proj_derive(proj, &pb);
    }
    if (rc == PS_OK) {
        *proj_p = proj;
        proj = NULL;
    }
    for (size_t i = 0; i < pb.named_count; i++) {
        free(pb.named[i].requested);
        free(pb.named[i].sig);
        free(pb.named[i].chosen);
    }
    free(pb.named);
    ps_projection_destroy(proj);
    return rc;
}

void ps_projection_destroy(struct ps_projection *proj)
{
    if (!proj) {
        return;
    }
    for (size_t i = 0; proj->nodes && i < proj->in->count; i++) {
        free(proj->nodes[i].kept);
    }
    free(proj->nodes);
    ps_schema_destroy(proj->out);
    free(proj);
}

const struct ps_schema *ps_projection_schema(const struct ps_projection *proj)
{
    return proj->out;
}

/* ---- apply -------------------------------------------------------------- */

struct apply_ctx {
    const struct ps_projection *proj;
    ps_project_map_fn fn;
    void *opaque;
    struct ps_buf *out;
    struct ps_error *err;
};

static ps_err_t proj_apply_fail(struct apply_ctx *ac, ps_err_t code, int node, const char *what)
{
    return ps_error_set(ac->err, code, "field '%s': %s",
                        ps_avro_node_label(ac->proj->in, node), what);
}

static ps_err_t proj_write_mapped(struct apply_ctx *ac, int node, const struct ps_scalar *v)
{
    enum ps_type type = ac->proj->nodes[node].out_type;
    switch (type) {
    case PS_TYPE_STRING:
        if (v->kind == PS_SCALAR_STRING) {
            return ps_avro_write_bytes(ac->out, v->s, v->len);
        }
        break;
    case PS_TYPE_INT:
        if (v->kind == PS_SCALAR_INT && v->i >= INT32_MIN && v->i <= INT32_MAX) {
            return ps_avro_write_long(ac->out, v->i);
        }
        break;
    case PS_TYPE_LONG:
        if (v->kind == PS_SCALAR_INT) {
            return ps_avro_write_long(ac->out, v->i);
        }
        break;
    case PS_TYPE_BOOLEAN:
        if (v->kind == PS_SCALAR_BOOL) {
            uint8_t b = v->i ? 1 : 0;
            return ps_buf_append(ac->out, &b, 1);
        }
        break;
    default:
        break;
    }
    return proj_apply_fail(ac, PS_ERR_TRANSFORM, node,
                           "the transformed value does not fit the output type");
}

/* A mapped leaf whose input value is sin: the caller's function gives the
 * output value, written with its union branch when the field is nullable. */
static ps_err_t proj_map_scalar(struct apply_ctx *ac, int node, const struct ps_scalar *sin)
{
    const struct ps_schema *in = ac->proj->in;
    int nullable = in->nodes[node].nullable;
    int null_branch = in->ext[node].null_branch;
    struct ps_scalar sout = {.kind = PS_SCALAR_NULL};
    ps_err_t rc = ac->fn(ac->opaque, node, sin, &sout, ac->err);
    if (rc != PS_OK) {
        return ps_error_prefix(ac->err, "field '%s'", in->nodes[node].path);
    }
    if (sout.kind == PS_SCALAR_NULL) {
        return nullable ? ps_avro_write_long(ac->out, null_branch)
                        : proj_apply_fail(ac, PS_ERR_TRANSFORM, node,
                                          "the transformed value is null for a required field");
    }
    if (nullable) {
        rc = ps_avro_write_long(ac->out, 1 - null_branch);
    }
    return rc == PS_OK ? proj_write_mapped(ac, node, &sout) : rc;
}

static ps_err_t proj_apply_map(struct apply_ctx *ac, int node, avro_value_t *value)
{
    const struct ps_schema *in = ac->proj->in;
    int nullable = in->nodes[node].nullable;
    int null_branch = in->ext[node].null_branch;
    struct ps_scalar sin = {.kind = PS_SCALAR_NULL};
    avro_value_t branch;
    int disc = -1;
    if (nullable) {
        avro_value_get_discriminant(value, &disc);
        if (disc != null_branch && avro_value_get_current_branch(value, &branch) == 0) {
            value = &branch;
        }
    }
    if ((!nullable || disc != null_branch) && ps_avro_value_to_scalar(value, &sin) != 0) {
        return proj_apply_fail(ac, PS_ERR_DECODE, node, "cannot read the input value");
    }
    return proj_map_scalar(ac, node, &sin);
}

static ps_err_t proj_apply_node(struct apply_ctx *ac, int node, avro_value_t *value);

static ps_err_t proj_apply_children(struct apply_ctx *ac, int node, avro_value_t *value)
{
    const struct ps_schema *in = ac->proj->in;
    const struct proj_node *pn = &ac->proj->nodes[node];
    avro_value_t child;
    if (in->nodes[node].type == PS_TYPE_RECORD) {
        for (int k = 0; k < pn->kept_count; k++) {
            int c = pn->kept[k];
            if (avro_value_get_by_index(value, (size_t)in->ext[c].field_index, &child, NULL)) {
                return proj_apply_fail(ac, PS_ERR_DECODE, c, "cannot read the input value");
            }
            ps_err_t rc = proj_apply_node(ac, c, &child);
            if (rc != PS_OK) {
                return rc;
            }
        }
        return PS_OK;
    }
    int is_map = in->nodes[node].type == PS_TYPE_MAP;
    int item = in->nodes[node].first_child;
    size_t count = 0;
    avro_value_get_size(value, &count);
    ps_err_t rc = count ? ps_avro_write_long(ac->out, (int64_t)count) : PS_OK;
    for (size_t i = 0; rc == PS_OK && i < count; i++) {
        const char *key = NULL;
        if (avro_value_get_by_index(value, i, &child, &key) != 0) {
            return proj_apply_fail(ac, PS_ERR_DECODE, node, "cannot read the input value");
        }
        if (is_map) {
            rc = ps_avro_write_bytes(ac->out, key, strlen(key));
        }
        rc = rc == PS_OK ? proj_apply_node(ac, item, &child) : rc;
    }
    return rc == PS_OK ? ps_avro_write_long(ac->out, 0) : rc;
}

static ps_err_t proj_apply_node(struct apply_ctx *ac, int node, avro_value_t *value)
{
    const struct proj_node *pn = &ac->proj->nodes[node];
    if (pn->op == PS_PROJECT_MAP) {
        return proj_apply_map(ac, node, value);
    }
    if (pn->whole_keep) {
        return ps_avro_write_value(ac->out, value);
    }
    avro_value_t branch;
    if (ac->proj->in->nodes[node].nullable) {
        int disc = -1;
        avro_value_get_discriminant(value, &disc);
        ps_err_t rc = ps_avro_write_long(ac->out, disc);
        if (rc != PS_OK || disc == ac->proj->in->ext[node].null_branch) {
            return rc;
        }
        if (avro_value_get_current_branch(value, &branch) != 0) {
            return proj_apply_fail(ac, PS_ERR_DECODE, node, "cannot read the input value");
        }
        value = &branch;
    }
    return proj_apply_children(ac, node, value);
}

/* ---- the tape path: the input's own bytes ---------------------------------
 * For a fast event (ps_avro_internal.h) the encoding of every node is at
 * hand: a subtree kept whole is one copy of its bytes (they are canonical, so
 * they are what writing the decoded value would give), a partly kept record
 * or array writes its union index and item count and recurses, and a mapped
 * leaf goes through the map function as before. */

struct tape_ctx {
    struct apply_ctx *ac;
    const struct ps_event *ev;
};

static ps_err_t proj_tape_node(struct tape_ctx *tc, uint32_t idx);

static ps_err_t proj_tape_map(struct tape_ctx *tc, const struct ps_tape_entry *e)
{
    struct apply_ctx *ac = tc->ac;
    struct ps_scalar sin;
    ps_event_tape_scalar(tc->ev, e, &sin);
    return proj_map_scalar(ac, e->node, &sin);
}

static ps_err_t proj_tape_children(struct tape_ctx *tc, uint32_t idx)
{
    struct apply_ctx *ac = tc->ac;
    const struct ps_tape_entry *tape = tc->ev->tape;
    const uint8_t *datum = tc->ev->datum;
    int node = tape[idx].node;
    const struct ps_schema *in = ac->proj->in;
    const struct ps_schema_node *n = &in->nodes[node];
    ps_err_t rc = PS_OK;
    uint32_t c = idx + 1;
    if (n->type == PS_TYPE_RECORD) {
        /* Every field of a record has its entry, in field order. Neighbouring
         * fields kept whole are neighbours in the input too: one copy each run. */
        uint32_t run = 0, run_end = 0;
        for (int k = 0; rc == PS_OK && k < n->child_count; k++) {
            const struct proj_node *cn = &ac->proj->nodes[tape[c].node];
            if (cn->whole_keep && cn->op == PS_PROJECT_KEEP) {
                if (run_end != tape[c].pos) {
                    rc = run_end > run ? ps_buf_append(ac->out, datum + run, run_end - run) : rc;
                    run = tape[c].pos;
                }
                run_end = tape[c].end;
            } else if (cn->op != PS_PROJECT_DROP) {
                rc = run_end > run ? ps_buf_append(ac->out, datum + run, run_end - run) : rc;
                run = run_end = 0;
                rc = rc == PS_OK ? proj_tape_node(tc, c) : rc;
            }
            c = tape[c].skip;
        }
        if (rc == PS_OK && run_end > run) {
            rc = ps_buf_append(ac->out, datum + run, run_end - run);
        }
        return rc;
    }
    uint32_t count = tape[idx].count;
    rc = count ? ps_avro_write_long(ac->out, (int64_t)count) : PS_OK;
    for (uint32_t i = 0; rc == PS_OK && i < count; i++) {
        if (tape[c].key != tape[c].pos) {
            rc = ps_buf_append(ac->out, datum + tape[c].key, tape[c].pos - tape[c].key);
        }
        rc = rc == PS_OK ? proj_tape_node(tc, c) : rc;
        c = tape[c].skip;
    }
    return rc == PS_OK ? ps_avro_write_long(ac->out, 0) : rc;
}

static ps_err_t proj_tape_node(struct tape_ctx *tc, uint32_t idx)
{
    const struct ps_tape_entry *e = &tc->ev->tape[idx];
    const struct proj_node *pn = &tc->ac->proj->nodes[e->node];
    if (pn->op == PS_PROJECT_MAP) {
        return proj_tape_map(tc, e);
    }
    if (pn->whole_keep) {
        return ps_buf_append(tc->ac->out, tc->ev->datum + e->pos, e->end - e->pos);
    }
    if (e->val != e->pos) {
        ps_err_t rc = ps_buf_append(tc->ac->out, tc->ev->datum + e->pos, e->val - e->pos);
        if (rc != PS_OK || e->null) {
            return rc;
        }
    } else if (e->null) {
        return PS_OK;
    }
    return proj_tape_children(tc, idx);
}

static ps_err_t proj_apply_common(const struct ps_projection *proj, const struct ps_event *ev,
                                  ps_project_map_fn fn, void *opaque, struct ps_buf *out,
                                  int reference, struct ps_error *err)
{
    if (ev->schema->serial != proj->in->serial) {
        return ps_error_set(err, PS_ERR_INVALID, "the event is not of the projection's schema");
    }
    if (!fn && proj->mapped) {
        return ps_error_set(err, PS_ERR_INVALID, "a mapped field needs a map function");
    }
    struct apply_ctx ac = {.proj = proj, .fn = fn, .opaque = opaque, .out = out, .err = err};
    size_t mark = out->len;
    ps_err_t rc;
    if (ev->fast && !reference) {
        struct tape_ctx tc = {.ac = &ac, .ev = ev};
        rc = proj_tape_node(&tc, 0);
    } else {
        avro_value_t *value = ps_event_avro(ev);
        if (!value) {
            return ps_error_set(err, PS_ERR_DECODE, "Avro C refused the datum");
        }
        avro_value_t root = *value;
        rc = proj_apply_node(&ac, 0, &root);
    }
    if (rc != PS_OK) {
        out->len = mark;
        if (rc == PS_ERR_LIMIT || rc == PS_ERR_NOMEM) {
            ps_error_set(err, rc, "the projected record does not fit the output buffer");
        }
    }
    return rc;
}

ps_err_t ps_projection_apply(const struct ps_projection *proj, const struct ps_event *ev,
                             ps_project_map_fn fn, void *opaque, struct ps_buf *out,
                             struct ps_error *err)
{
    return proj_apply_common(proj, ev, fn, opaque, out, 0, err);
}

ps_err_t ps_projection_apply_reference(const struct ps_projection *proj, const struct ps_event *ev,
                                       ps_project_map_fn fn, void *opaque, struct ps_buf *out,
                                       struct ps_error *err)
{
    return proj_apply_common(proj, ev, fn, opaque, out, 1, err);
}
