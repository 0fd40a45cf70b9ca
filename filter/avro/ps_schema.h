/*
 * ps_schema: an Avro record schema with its field tags, as a flat node tree.
 *
 * Avro C drops custom attributes, defaults, docs and logical types when it
 * parses a schema, so the .avsc text is read twice: by jansson for the tree,
 * tags ("confluent:tags") and logical types, and by Avro C for the codec.
 *
 * The tree is flat, in preorder; node 0 is the top-level record. Children of a
 * record are its fields, in order. An array has one child, its items, named
 * "[]" (path "pid.name[]"); a map likewise "{}". A union of null and one type
 * is not a node of its own: the node has that type and nullable = 1. Other
 * unions are opaque leaves of type PS_TYPE_UNION (keep or drop only).
 *
 * Paths join field names with '.', array items add "[]": "pid.name[].family".
 *
 * Schemas are refused at load when they are recursive, nest deeper than the
 * limit, or contain an array or map whose items can encode in zero bytes
 * (null, empty record: a few bytes of input could then claim millions of
 * items), or carry a tag outside the vocabulary (ps_tag.h).
 *
 * A loaded schema is immutable and may be shared between threads.
 */
#ifndef PS_SCHEMA_H
#define PS_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#include "ps_error.h"

enum ps_type {
    PS_TYPE_NULL = 0,
    PS_TYPE_BOOLEAN,
    PS_TYPE_INT,
    PS_TYPE_LONG,
    PS_TYPE_FLOAT,
    PS_TYPE_DOUBLE,
    PS_TYPE_BYTES,
    PS_TYPE_STRING,
    PS_TYPE_ENUM,
    PS_TYPE_FIXED,
    PS_TYPE_RECORD,
    PS_TYPE_ARRAY,
    PS_TYPE_MAP,
    PS_TYPE_UNION
};

enum ps_logical {
    PS_LOGICAL_NONE = 0,
    PS_LOGICAL_DATE,             /* int: days since 1970-01-01 */
    PS_LOGICAL_TIMESTAMP_MILLIS, /* long: ms since the epoch, UTC */
    PS_LOGICAL_TIMESTAMP_MICROS, /* long: µs since the epoch, UTC */
    PS_LOGICAL_OTHER             /* any other logicalType: treated as its base type */
};

struct ps_schema_node {
    const char *name;      /* field name; "[]" for array items, "{}" for map values, "" for root */
    const char *path;      /* dotted path from the root, "" for the root */
    enum ps_type type;
    enum ps_logical logical;
    int nullable;          /* the field is a union of null and type */
    uint32_t tags;         /* this node's own "confluent:tags", as PS_TAG_BIT bits */
    int parent;            /* index of the parent node, -1 for the root */
    int depth;             /* 0 for the root */
    int next_sibling;      /* index of the next field of the same record, -1 if last */
    int first_child;       /* -1 for leaves */
    int child_count;
};

struct ps_schema_limits {
    int max_depth;         /* deepest node allowed (default 32) */
};

struct ps_schema;

/* Loads an .avsc file. limits may be NULL for the defaults. Errors
 * (PS_ERR_IO, PS_ERR_SCHEMA) name the file and, where jansson gives them, the
 * line and column, or the field path. */
ps_err_t ps_schema_load_file(const char *path, const struct ps_schema_limits *limits,
                             struct ps_schema **schema_p, struct ps_error *err);

/* As ps_schema_load_file, from JSON text; origin names it in errors. */
ps_err_t ps_schema_load_json(const char *json, const char *origin,
                             const struct ps_schema_limits *limits,
                             struct ps_schema **schema_p, struct ps_error *err);

/* NULL is a no-op. */
void ps_schema_destroy(struct ps_schema *schema);

/* Full name of the top-level record ("uk.nhs.pseudostream.hl7v2.Hl7v2Event"). */
const char *ps_schema_name(const struct ps_schema *schema);
/* The schema's JSON text as loaded (with its attributes), owned by the schema. */
const char *ps_schema_json(const struct ps_schema *schema);
/* Where it was loaded from (file path or origin). */
const char *ps_schema_origin(const struct ps_schema *schema);
/* CRC-64-AVRO fingerprint of the Parsing Canonical Form. */
uint64_t ps_schema_fingerprint(const struct ps_schema *schema);

size_t ps_schema_node_count(const struct ps_schema *schema);
/* Node by index (0 = root); NULL when out of range. */
const struct ps_schema_node *ps_schema_node(const struct ps_schema *schema, int index);
/* Index of the node with this path, or -1. */
int ps_schema_find(const struct ps_schema *schema, const char *path);

/* A string attribute of the top-level record, e.g. "pseudostream:event_time"
 * (whose value is a field path). NULL when absent or not a string. */
const char *ps_schema_attribute(const struct ps_schema *schema, const char *name);

#endif
