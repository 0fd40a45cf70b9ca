/*
 * ps_avro_internal: what the Avro layer's .c files share and nobody else sees.
 *
 * The public headers keep struct ps_schema and struct ps_event opaque; the
 * codec and the projection need the Avro C schema, the jansson document and
 * the per-node facts computed at load, so they are laid out here. Only files
 * under filter/avro include this header (and the Avro layer's own tests).
 */
#ifndef PS_AVRO_INTERNAL_H
#define PS_AVRO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <avro.h>
#include <jansson.h>

#include "ps_buf.h"
#include "ps_codec.h"
#include "ps_error.h"
#include "ps_project.h"
#include "ps_scalar.h"
#include "ps_schema.h"

/* Facts about a node that callers of ps_schema.h do not need. */
struct ps_schema_node_ext {
    int field_index;        /* position among the fields of the parent record; -1 otherwise */
    int null_branch;        /* nullable nodes: union index of "null" (0 or 1); -1 otherwise */
    int *children;          /* child node indexes in field order (child_count entries) */
    int *chain;             /* node indexes from the root to this node, inclusive */
    int chain_len;
    json_t *field_json;     /* the field object for record fields (borrowed from doc) */
    json_t *type_json;      /* resolved definition of the node's (non-null) type (borrowed) */
    char *ns;               /* namespace in force where the type is written ("" for none) */
    avro_schema_t avro;     /* Avro C schema of the node's (non-null) type, links resolved;
                               the union itself for an opaque union; NULL if unbound */
    size_t item_min;        /* arrays and maps: fewest bytes an item can encode in (>= 1) */
};

struct ps_schema {
    char *json;             /* text as loaded */
    char *origin;
    char *name;             /* full name of the top-level record */
    json_t *doc;            /* the parsed text; type_json and field_json point into it */
    json_t *named;          /* full name -> definition object (borrowed from doc) */
    avro_schema_t avro;
    uint64_t fingerprint;
    uint64_t serial;        /* unique per load: decoders key their cached values on it */
    struct ps_schema_node *nodes;
    struct ps_schema_node_ext *ext;
    size_t count;
    size_t cap;
    int bound;              /* every node's ext.avro is set: the tape decoder may be used */
};

/*
 * The tape: what the validator records of a datum as it walks it, one entry
 * per occurrence of a node of our tree, in document order. Offsets are into
 * the event's own copy of the datum. The hot path reads leaves and copies kept
 * subtrees from it; Avro C decodes the same bytes only on demand.
 */
struct ps_tape_entry {
    int32_t node;
    uint32_t key;           /* map items: where the key begins; else == pos */
    uint32_t pos;           /* where the node's encoding begins (its union index, if nullable) */
    uint32_t val;           /* where its value begins (after the union index) */
    uint32_t end;           /* one past its last byte */
    uint32_t skip;          /* the entry after this node's subtree */
    uint32_t next_same;     /* the next occurrence of the same node, or PS_TAPE_NONE */
    uint32_t count;         /* arrays and maps: items; opaque unions: the branch index */
    uint8_t null;           /* a nullable node holding null */
};

#define PS_TAPE_NONE UINT32_MAX

struct ps_event {
    const struct ps_schema *schema;
    avro_value_t value;     /* Avro C's decode of datum, valid when avro_ready */
    int avro_ready;
    int fast;               /* the tape is complete and the datum canonical: copying its
                               bytes is what re-encoding a decoded value would write */
    uint8_t *datum;         /* owned copy of the datum */
    size_t len;
    size_t datum_cap;
    struct ps_tape_entry *tape;
    size_t tape_count;
    size_t tape_cap;
    size_t tape_max;        /* entries allowed (the allocation cap) */
    uint32_t *first;        /* per node: its first occurrence, or PS_TAPE_NONE */
    uint32_t *last;         /* per node: its last occurrence (to link next_same) */
    size_t max_alloc;       /* Avro C allocation cap for the on-demand decode */
};

/* Full name of a named type definition written where namespace ns applies;
 * *def_ns_p gets the namespace in force inside it. Both malloc'd; NULL when
 * the definition has no name or memory runs out. */
char *ps_schema_fullname(json_t *def, const char *ns, char **def_ns_p);
/* Definition of the named type ref as written where namespace ns applies. */
json_t *ps_schema_lookup_named(const struct ps_schema *schema, const char *ref, const char *ns);

/* Walks ev->datum (ev->len bytes) against the schema, allocating nothing but
 * tape entries: every length and count is checked against the bytes that
 * remain, the nesting depth and the item budget against limits, and trailing
 * bytes are refused (PS_ERR_DECODE or PS_ERR_LIMIT naming the path). Records
 * ev's tape on the way; sets ev->fast when the tape is complete and every length,
 * count and index is in its canonical (shortest, single-block) encoding.
 * PS_ERR_LIMIT when the tape would pass ev->tape_max entries; PS_ERR_NOMEM. */
ps_err_t ps_avro_validate_tape(const struct ps_schema *schema, struct ps_event *ev,
                               const struct ps_codec_limits *limits, struct ps_error *err);

/* Fewest bytes a value of Avro C schema s can encode in. */
size_t ps_avro_min_size(avro_schema_t s);

/* Binds every node of the schema to its Avro C schema (ext.avro, ext.item_min)
 * and sets schema->bound when the two trees agree (loading refuses a schema
 * whose trees do not). */
void ps_schema_bind_avro(struct ps_schema *schema);

/* Avro C's decode of the event (done on demand for a fast event); NULL when
 * Avro C refuses it or passes the allocation cap. */
avro_value_t *ps_event_avro(const struct ps_event *ev);

/* The scalar of one tape entry of a leaf node (strings point into ev->datum). */
void ps_event_tape_scalar(const struct ps_event *ev, const struct ps_tape_entry *e,
                          struct ps_scalar *scalar_p);

/* The reference paths, through Avro C's decoded value, that the tape paths
 * are tested against byte for byte (tests/unit/test_fastpath.c). */
ps_err_t ps_event_visit_reference(const struct ps_event *ev, int node, ps_event_visit_fn fn,
                                  void *opaque);
ps_err_t ps_projection_apply_reference(const struct ps_projection *proj, const struct ps_event *ev,
                                       ps_project_map_fn fn, void *opaque, struct ps_buf *out,
                                       struct ps_error *err);

/* Installs the counting allocator into Avro C (once per process). */
void ps_avro_allocator_install(void);
/* Starts counting Avro C's allocations on this thread: a single request or a
 * running total above cap is refused. */
void ps_avro_allocator_begin(size_t cap);
/* Stops counting; returns non-zero when a request was refused since begin. */
int ps_avro_allocator_end(void);

/* The schema of a node's error messages: its path, or "(root)". */
const char *ps_avro_node_label(const struct ps_schema *schema, int node);

/* Converts a leaf Avro value to a scalar; strings point into the value. */
int ps_avro_value_to_scalar(avro_value_t *value, struct ps_scalar *scalar_p);

/* The little binary encoder shared by the projection and the JSON encoder.
 * Each returns PS_OK, PS_ERR_LIMIT past the buffer's maximum or PS_ERR_NOMEM. */
ps_err_t ps_avro_write_long(struct ps_buf *out, int64_t v);
ps_err_t ps_avro_write_bytes(struct ps_buf *out, const void *data, size_t len);
ps_err_t ps_avro_write_float(struct ps_buf *out, float v);
ps_err_t ps_avro_write_double(struct ps_buf *out, double v);
/* Writes any Avro value as Avro C's avro_value_write would. */
ps_err_t ps_avro_write_value(struct ps_buf *out, avro_value_t *value);

#endif
