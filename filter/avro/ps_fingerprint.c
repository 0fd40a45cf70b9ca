#include "ps_fingerprint.h"

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ps_buf.h"

/*
 * The canonical form is written straight from the JSON text (parsed by
 * jansson), in one walk. The form must agree byte for byte with every
 * other Avro implementation, whose reference is the Java one
 * (SchemaNormalization.build), so its rules are spelled out here:
 *
 *   - a primitive, as a string or as {"type": "int", ...}, becomes "int";
 *   - a named type (record, enum, fixed) is written in full at its first
 *     occurrence, as {"name":<fullname>,"type":..,<fields|symbols|size>},
 *     and every later reference to it as "<fullname>";
 *   - array and map become {"type":"array","items":..} and
 *     {"type":"map","values":..}; a union becomes [..];
 *   - fields become {"name":..,"type":..}; everything else (doc, aliases,
 *     default, order, logicalType, namespace, "confluent:tags" and any other
 *     custom attribute) is dropped.
 *
 * Names, namespaces and enum symbols are checked against the Avro name
 * grammar ([A-Za-z_][A-Za-z0-9_]*), so every string the canonical form holds
 * is plain ASCII that needs no JSON escape: that is the STRINGS rule
 * satisfied by construction.
 */

#define PCF_EMPTY UINT64_C(0xc15d213aa4d7a795)

/* Jansson already refuses JSON nested deeper than 2048; this tighter cap keeps
 * the walk's own recursion well inside any thread's stack. No real schema
 * comes near it (ps_schema refuses anything past depth 32 anyway). */
#define PCF_MAX_DEPTH 256

static uint64_t fp_table[256];
static pthread_once_t fp_table_once = PTHREAD_ONCE_INIT;

static void fp_table_init(void)
{
    for (unsigned i = 0; i < 256; i++) {
        uint64_t fp = i;
        for (int j = 0; j < 8; j++) {
            fp = (fp >> 1) ^ (PCF_EMPTY & (0 - (fp & 1)));
        }
        fp_table[i] = fp;
    }
}

uint64_t ps_fingerprint_crc64(const void *data, size_t len)
{
    pthread_once(&fp_table_once, fp_table_init);
    const uint8_t *p = data;
    uint64_t fp = PCF_EMPTY;
    for (size_t i = 0; i < len; i++) {
        fp = (fp >> 8) ^ fp_table[(fp ^ p[i]) & 0xff];
    }
    return fp;
}

struct pcf {
    struct ps_buf out;
    char **names;       /* fullnames of the named types defined so far */
    size_t name_count;
    size_t name_cap;
    struct ps_error *err;
};

static const char *const primitive_names[] = {
    "null", "boolean", "int", "long", "float", "double", "bytes", "string", NULL};

static int is_primitive(const char *s)
{
    for (int i = 0; primitive_names[i]; i++) {
        if (strcmp(s, primitive_names[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

/* One name component: [A-Za-z_][A-Za-z0-9_]*, len bytes of s. */
static int is_simple_name_n(const char *s, size_t len)
{
    if (len == 0) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
        int digit = c >= '0' && c <= '9';
        if (!alpha && !(digit && i > 0)) {
            return 0;
        }
    }
    return 1;
}

static int is_simple_name(const char *s)
{
    return is_simple_name_n(s, strlen(s));
}

/* Dot-separated components, each a simple name. */
static int is_full_name(const char *s)
{
    const char *start = s;
    for (const char *p = s;; p++) {
        if (*p == '.' || *p == '\0') {
            if (!is_simple_name_n(start, (size_t)(p - start))) {
                return 0;
            }
            if (*p == '\0') {
                return 1;
            }
            start = p + 1;
        }
    }
}

/* The fullname a name stands for in namespace ns ("" for the null
 * namespace): a name with a dot is already a fullname. Caller frees. */
static char *full_name(const char *name, const char *ns)
{
    if (strchr(name, '.') || ns[0] == '\0') {
        return strdup(name);
    }
    size_t ns_len = strlen(ns);
    size_t name_len = strlen(name);
    char *full = malloc(ns_len + 1 + name_len + 1);
    if (full) {
        memcpy(full, ns, ns_len);
        full[ns_len] = '.';
        memcpy(full + ns_len + 1, name, name_len + 1);
    }
    return full;
}

static int pcf_name_defined(const struct pcf *pcf, const char *full)
{
    for (size_t i = 0; i < pcf->name_count; i++) {
        if (strcmp(pcf->names[i], full) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Takes ownership of full, also on failure. */
static ps_err_t pcf_name_add(struct pcf *pcf, char *full)
{
    if (pcf->name_count == pcf->name_cap) {
        size_t cap = pcf->name_cap ? pcf->name_cap * 2 : 16;
        char **names = realloc(pcf->names, cap * sizeof(*names));
        if (!names) {
            free(full);
            return ps_error_set(pcf->err, PS_ERR_NOMEM, "out of memory");
        }
        pcf->names = names;
        pcf->name_cap = cap;
    }
    pcf->names[pcf->name_count++] = full;
    return PS_OK;
}

static ps_err_t pcf_append(struct pcf *pcf, const char *s)
{
    ps_err_t rc = ps_buf_append_str(&pcf->out, s);
    if (rc != PS_OK) {
        return ps_error_set(pcf->err, rc, "out of memory writing the canonical form");
    }
    return PS_OK;
}

static ps_err_t pcf_append_quoted(struct pcf *pcf, const char *s)
{
    ps_err_t rc = pcf_append(pcf, "\"");
    if (rc == PS_OK) {
        rc = pcf_append(pcf, s);
    }
    if (rc == PS_OK) {
        rc = pcf_append(pcf, "\"");
    }
    return rc;
}

/* A reference by name to a named type defined earlier. */
static ps_err_t pcf_reference(struct pcf *pcf, const char *name, const char *ns)
{
    if (!is_full_name(name)) {
        return ps_error_set(pcf->err, PS_ERR_SCHEMA, "'%s' is not a valid type name", name);
    }
    char *full = full_name(name, ns);
    if (!full) {
        return ps_error_set(pcf->err, PS_ERR_NOMEM, "out of memory");
    }
    ps_err_t rc;
    if (!pcf_name_defined(pcf, full)) {
        rc = ps_error_set(pcf->err, PS_ERR_SCHEMA, "unknown type '%s'", full);
    } else {
        rc = pcf_append_quoted(pcf, full);
    }
    free(full);
    return rc;
}

static ps_err_t pcf_schema(struct pcf *pcf, const json_t *schema, const char *ns, int depth);

static ps_err_t pcf_fields(struct pcf *pcf, const json_t *fields, const char *ns, int depth)
{
    if (!json_is_array(fields)) {
        return ps_error_set(pcf->err, PS_ERR_SCHEMA, "record has no \"fields\" array");
    }
    ps_err_t rc = pcf_append(pcf, ",\"fields\":[");
    size_t count = json_array_size(fields);
    for (size_t i = 0; rc == PS_OK && i < count; i++) {
        const json_t *field = json_array_get(fields, i);
        const char *name = json_string_value(json_object_get(field, "name"));
        if (!name || !is_simple_name(name)) {
            return ps_error_set(pcf->err, PS_ERR_SCHEMA, "field %zu has no valid \"name\"", i);
        }
        for (size_t j = 0; j < i; j++) {
            const char *other = json_string_value(json_object_get(json_array_get(fields, j),
                                                                  "name"));
            if (strcmp(other, name) == 0) {
                return ps_error_set(pcf->err, PS_ERR_SCHEMA, "field '%s' appears twice", name);
            }
        }
        const json_t *type = json_object_get(field, "type");
        if (!type) {
            return ps_error_set(pcf->err, PS_ERR_SCHEMA, "field '%s' has no \"type\"", name);
        }
        rc = pcf_append(pcf, i ? ",{\"name\":" : "{\"name\":");
        if (rc == PS_OK) {
            rc = pcf_append_quoted(pcf, name);
        }
        if (rc == PS_OK) {
            rc = pcf_append(pcf, ",\"type\":");
        }
        if (rc == PS_OK) {
            rc = pcf_schema(pcf, type, ns, depth + 1);
            if (rc != PS_OK) {
                ps_error_prefix(pcf->err, "field '%s'", name);
                return rc;
            }
        }
        if (rc == PS_OK) {
            rc = pcf_append(pcf, "}");
        }
    }
    if (rc == PS_OK) {
        rc = pcf_append(pcf, "]");
    }
    return rc;
}

static ps_err_t pcf_symbols(struct pcf *pcf, const json_t *symbols)
{
    if (!json_is_array(symbols)) {
        return ps_error_set(pcf->err, PS_ERR_SCHEMA, "enum has no \"symbols\" array");
    }
    ps_err_t rc = pcf_append(pcf, ",\"symbols\":[");
    size_t count = json_array_size(symbols);
    for (size_t i = 0; rc == PS_OK && i < count; i++) {
        const char *symbol = json_string_value(json_array_get(symbols, i));
        if (!symbol || !is_simple_name(symbol)) {
            return ps_error_set(pcf->err, PS_ERR_SCHEMA, "enum symbol %zu is not a valid name",
                                i);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(json_string_value(json_array_get(symbols, j)), symbol) == 0) {
                return ps_error_set(pcf->err, PS_ERR_SCHEMA, "enum symbol '%s' appears twice",
                                    symbol);
            }
        }
        if (i) {
            rc = pcf_append(pcf, ",");
        }
        if (rc == PS_OK) {
            rc = pcf_append_quoted(pcf, symbol);
        }
    }
    if (rc == PS_OK) {
        rc = pcf_append(pcf, "]");
    }
    return rc;
}

/* The INTEGERS rule: a size is written as a bare decimal with no leading
 * zeros, whether the schema gave it as a JSON number or as a quoted one. */
static ps_err_t pcf_size(struct pcf *pcf, const json_t *size)
{
    long long value = -1;
    if (json_is_integer(size)) {
        value = json_integer_value(size);
    } else if (json_is_string(size)) {
        const char *s = json_string_value(size);
        value = *s ? 0 : -1;
        for (; *s && value >= 0; s++) {
            if (*s < '0' || *s > '9') {
                value = -1;
            } else {
                value = value * 10 + (*s - '0');
                if (value > INT32_MAX) {
                    value = -1;
                }
            }
        }
    }
    /* Java keeps the size in an int; anything past that is no valid schema. */
    if (value < 0 || value > INT32_MAX) {
        return ps_error_set(pcf->err, PS_ERR_SCHEMA,
                            "fixed has no valid \"size\" (an integer from 0 to 2147483647)");
    }
    ps_err_t rc = ps_buf_appendf(&pcf->out, ",\"size\":%lld", value);
    if (rc != PS_OK) {
        return ps_error_set(pcf->err, rc, "out of memory writing the canonical form");
    }
    return PS_OK;
}

/* record, error, enum or fixed, defined here. */
static ps_err_t pcf_named(struct pcf *pcf, const json_t *schema, const char *type, const char *ns,
                          int depth)
{
    const char *name = json_string_value(json_object_get(schema, "name"));
    if (!name) {
        return ps_error_set(pcf->err, PS_ERR_SCHEMA, "%s has no \"name\"", type);
    }
    if (!is_full_name(name)) {
        return ps_error_set(pcf->err, PS_ERR_SCHEMA, "'%s' is not a valid %s name", name, type);
    }
    /* A dotted name is a fullname and its "namespace" attribute is ignored;
     * otherwise the attribute, when present, replaces the enclosing one ("" is
     * the null namespace). */
    const json_t *ns_json = json_object_get(schema, "namespace");
    if (ns_json && !json_is_null(ns_json)) {
        const char *own = json_string_value(ns_json);
        if (!own || (own[0] != '\0' && !is_full_name(own))) {
            return ps_error_set(pcf->err, PS_ERR_SCHEMA, "%s '%s' has an invalid \"namespace\"",
                                type, name);
        }
        ns = own;
    }
    char *full = full_name(name, ns);
    if (!full) {
        return ps_error_set(pcf->err, PS_ERR_NOMEM, "out of memory");
    }
    const char *last_dot = strrchr(full, '.');
    if (is_primitive(last_dot ? last_dot + 1 : full)) {
        ps_error_set(pcf->err, PS_ERR_SCHEMA, "%s may not be named '%s'", type, full);
        free(full);
        return PS_ERR_SCHEMA;
    }
    if (pcf_name_defined(pcf, full)) {
        ps_error_set(pcf->err, PS_ERR_SCHEMA, "type '%s' is defined twice", full);
        free(full);
        return PS_ERR_SCHEMA;
    }
    /* Defined before its body is walked, so a record may refer to itself. */
    ps_err_t rc = pcf_name_add(pcf, full);
    if (rc != PS_OK) {
        return rc;
    }
    /* full now lives in pcf->names until the walk ends. Nested definitions
     * and references take the namespace of this type's fullname. */
    char *inner_ns = strdup(full);
    if (!inner_ns) {
        return ps_error_set(pcf->err, PS_ERR_NOMEM, "out of memory");
    }
    char *dot = strrchr(inner_ns, '.');
    if (dot) {
        *dot = '\0';
    } else {
        inner_ns[0] = '\0';
    }

    /* The Java reference writes an error as a record: it is one, as far as
     * parsing data goes. */
    const char *canonical_type = strcmp(type, "error") == 0 ? "record" : type;
    rc = pcf_append(pcf, "{\"name\":");
    if (rc == PS_OK) {
        rc = pcf_append_quoted(pcf, full);
    }
    if (rc == PS_OK) {
        rc = pcf_append(pcf, ",\"type\":");
    }
    if (rc == PS_OK) {
        rc = pcf_append_quoted(pcf, canonical_type);
    }
    if (rc == PS_OK) {
        if (strcmp(type, "enum") == 0) {
            rc = pcf_symbols(pcf, json_object_get(schema, "symbols"));
        } else if (strcmp(type, "fixed") == 0) {
            rc = pcf_size(pcf, json_object_get(schema, "size"));
        } else {
            rc = pcf_fields(pcf, json_object_get(schema, "fields"), inner_ns, depth);
        }
        if (rc != PS_OK) {
            ps_error_prefix(pcf->err, "%s '%s'", type, full);
        }
    }
    if (rc == PS_OK) {
        rc = pcf_append(pcf, "}");
    }
    free(inner_ns);
    return rc;
}

static ps_err_t pcf_object(struct pcf *pcf, const json_t *schema, const char *ns, int depth)
{
    const char *type = json_string_value(json_object_get(schema, "type"));
    if (!type) {
        return ps_error_set(pcf->err, PS_ERR_SCHEMA, "schema object has no \"type\" string");
    }
    if (is_primitive(type)) {
        /* PRIMITIVES: {"type":"long","logicalType":..} is just "long". */
        return pcf_append_quoted(pcf, type);
    }
    if (strcmp(type, "record") == 0 || strcmp(type, "error") == 0 || strcmp(type, "enum") == 0 ||
        strcmp(type, "fixed") == 0) {
        return pcf_named(pcf, schema, type, ns, depth);
    }
    if (strcmp(type, "array") == 0 || strcmp(type, "map") == 0) {
        int is_array = type[0] == 'a';
        const char *key = is_array ? "items" : "values";
        const json_t *inner = json_object_get(schema, key);
        if (!inner) {
            return ps_error_set(pcf->err, PS_ERR_SCHEMA, "%s has no \"%s\"", type, key);
        }
        ps_err_t rc = pcf_append(pcf, is_array ? "{\"type\":\"array\",\"items\":"
                                               : "{\"type\":\"map\",\"values\":");
        if (rc == PS_OK) {
            rc = pcf_schema(pcf, inner, ns, depth + 1);
        }
        if (rc == PS_OK) {
            rc = pcf_append(pcf, "}");
        }
        return rc;
    }
    /* {"type": "SomeRecord"} refers to a named type, as the Java parser
     * accepts. */
    return pcf_reference(pcf, type, ns);
}

static ps_err_t pcf_union(struct pcf *pcf, const json_t *branches, const char *ns, int depth)
{
    ps_err_t rc = pcf_append(pcf, "[");
    size_t count = json_array_size(branches);
    for (size_t i = 0; rc == PS_OK && i < count; i++) {
        const json_t *branch = json_array_get(branches, i);
        if (json_is_array(branch)) {
            return ps_error_set(pcf->err, PS_ERR_SCHEMA,
                                "union branch %zu is itself a union, which Avro forbids", i);
        }
        if (i) {
            rc = pcf_append(pcf, ",");
        }
        if (rc == PS_OK) {
            rc = pcf_schema(pcf, branch, ns, depth + 1);
        }
    }
    if (rc == PS_OK) {
        rc = pcf_append(pcf, "]");
    }
    return rc;
}

static ps_err_t pcf_schema(struct pcf *pcf, const json_t *schema, const char *ns, int depth)
{
    if (depth > PCF_MAX_DEPTH) {
        return ps_error_set(pcf->err, PS_ERR_SCHEMA, "schema nests deeper than %d levels",
                            PCF_MAX_DEPTH);
    }
    if (json_is_string(schema)) {
        const char *s = json_string_value(schema);
        if (is_primitive(s)) {
            return pcf_append_quoted(pcf, s);
        }
        return pcf_reference(pcf, s, ns);
    }
    if (json_is_object(schema)) {
        return pcf_object(pcf, schema, ns, depth);
    }
    if (json_is_array(schema)) {
        return pcf_union(pcf, schema, ns, depth);
    }
    return ps_error_set(pcf->err, PS_ERR_SCHEMA,
                        "a schema must be a JSON string, object or array");
}

ps_err_t ps_fingerprint_canonical(const char *schema_json, char **pcf_p, struct ps_error *err)
{
    struct pcf pcf = {.err = err};
    json_t *root = NULL;
    ps_err_t rc = PS_OK;

    ps_buf_init(&pcf.out, 0);
    if (!schema_json || !pcf_p) {
        rc = ps_error_set(err, PS_ERR_INVALID, "schema text and output are required");
        goto cleanup;
    }
    json_error_t jerr;
    /* DECODE_ANY: a schema may be a bare string such as "int".
     * REJECT_DUPLICATES: with two "type" keys the schema means nothing. */
    root = json_loads(schema_json, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        rc = ps_error_set(err, PS_ERR_SCHEMA, "schema is not valid JSON: line %d, column %d: %s",
                          jerr.line, jerr.column, jerr.text);
        goto cleanup;
    }
    rc = pcf_schema(&pcf, root, "", 0);
    if (rc != PS_OK) {
        goto cleanup;
    }
    rc = ps_buf_append(&pcf.out, "", 1);
    if (rc != PS_OK) {
        rc = ps_error_set(err, rc, "out of memory writing the canonical form");
        goto cleanup;
    }
    *pcf_p = (char *)pcf.out.data;
    pcf.out.data = NULL;

cleanup:
    for (size_t i = 0; i < pcf.name_count; i++) {
        free(pcf.names[i]);
    }
    free(pcf.names);
    ps_buf_free(&pcf.out);
    json_decref(root);
    return rc;
}

ps_err_t ps_fingerprint_schema(const char *schema_json, uint64_t *fp_p, struct ps_error *err)
{
    if (!fp_p) {
        return ps_error_set(err, PS_ERR_INVALID, "fingerprint output is required");
    }
    char *pcf = NULL;
    ps_err_t rc = ps_fingerprint_canonical(schema_json, &pcf, err);
    if (rc != PS_OK) {
        return rc;
    }
    *fp_p = ps_fingerprint_crc64(pcf, strlen(pcf));
    free(pcf);
    return PS_OK;
}
