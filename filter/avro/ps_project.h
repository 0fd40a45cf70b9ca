/*
 * ps_project: a destination's view of a schema, derived from the input schema
 * and a per-node plan, and the code that writes it.
 *
 * The plan gives one ps_project_field per node of the input schema:
 *   KEEP  the node is copied (a record or array recurses into its children);
 *   DROP  the node and its subtree do not exist in the output schema;
 *   MAP   a leaf whose value the caller's map function replaces, with
 *         out_type (STRING, INT, LONG or BOOLEAN) and out_logical.
 * The root must be KEEP. Nullability is kept: a MAP of an optional field
 * yields an optional field of out_type. The derived schema keeps record names
 * under out_namespace, keeps the doc and tags of kept fields, and for mapped
 * fields takes out_tags and out_doc (when not NULL). So a dropped field does
 * not exist in what the destination receives, and a consumer with the derived
 * schema can read it.
 *
 * A projection is immutable once built and may be shared between threads;
 * apply needs only the event and the caller's buffer.
 */
#ifndef PS_PROJECT_H
#define PS_PROJECT_H

#include <stddef.h>
#include <stdint.h>

#include "ps_buf.h"
#include "ps_codec.h"
#include "ps_error.h"
#include "ps_scalar.h"
#include "ps_schema.h"

enum ps_project_op {
    PS_PROJECT_KEEP = 0,
    PS_PROJECT_DROP,
    PS_PROJECT_MAP
};

struct ps_project_field {
    enum ps_project_op op;
    enum ps_type out_type;       /* MAP only */
    enum ps_logical out_logical; /* MAP only */
    uint32_t out_tags;           /* MAP only: tags of the output field */
    const char *out_doc;         /* MAP only, may be NULL; copied */
};

struct ps_projection;

/* Builds the derived schema and the walk. spec has ps_schema_node_count(in)
 * entries. The projection does not own `in`, which must outlive it.
 * PS_ERR_INVALID (naming the path) for a MAP on a non-leaf, a MAP to an
 * unsupported type, or a non-KEEP root. */
ps_err_t ps_projection_new(const struct ps_schema *in, const struct ps_project_field *spec,
                           const char *out_namespace, struct ps_projection **proj_p,
                           struct ps_error *err);
/* NULL is a no-op. */
void ps_projection_destroy(struct ps_projection *proj);

/* The derived output schema, owned by the projection. */
const struct ps_schema *ps_projection_schema(const struct ps_projection *proj);

/* Replaces the value of a MAP leaf. `in` is the input value (PS_SCALAR_NULL
 * for an absent optional value); write the output to *out_p: a value of the
 * node's out_type, or PS_SCALAR_NULL if the output is nullable. Strings in
 * *out_p must stay valid until the next call. A non-OK return fails the whole
 * apply with that error (fail closed: the record does not reach the
 * destination). */
typedef ps_err_t (*ps_project_map_fn)(void *opaque, int node, const struct ps_scalar *in,
                                      struct ps_scalar *out_p, struct ps_error *err);

/* Writes the event's projection as an Avro datum of the derived schema,
 * appended to out (no frame). On failure out is left at its old length. */
ps_err_t ps_projection_apply(const struct ps_projection *proj, const struct ps_event *ev,
                             ps_project_map_fn fn, void *opaque, struct ps_buf *out,
                             struct ps_error *err);

#endif
