/*
 * ps_registry: the schemas a process knows, by Confluent id and by
 * fingerprint.
 *
 * In this release ids come from a static map in the service configuration;
 * a schema-registry client will fill the same structure. Ids are immutable,
 * so a lookup never changes once it succeeded.
 *
 * Not thread-safe for writes; lookups may run concurrently once filled.
 */
#ifndef PS_REGISTRY_H
#define PS_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "ps_error.h"
#include "ps_frame.h"
#include "ps_schema.h"

struct ps_registry;

ps_err_t ps_registry_new(struct ps_registry **reg_p, struct ps_error *err);
/* Destroys the registry and every schema it owns. NULL is a no-op. */
void ps_registry_destroy(struct ps_registry *reg);

/* Adds a schema. On success the registry owns it (set your pointer to NULL);
 * on failure the caller still owns it. confluent_id < 0 means "no id": the
 * schema is found by fingerprint only. PS_ERR_CONFIG when the id or the
 * fingerprint is already taken by a different schema. */
ps_err_t ps_registry_add(struct ps_registry *reg, struct ps_schema *schema, int64_t confluent_id,
                         struct ps_error *err);

/* The schema a frame names. PS_ERR_SCHEMA_UNKNOWN when none. */
ps_err_t ps_registry_resolve(const struct ps_registry *reg, const struct ps_frame *frame,
                             const struct ps_schema **schema_p, struct ps_error *err);

const struct ps_schema *ps_registry_by_fingerprint(const struct ps_registry *reg, uint64_t fp);
const struct ps_schema *ps_registry_by_id(const struct ps_registry *reg, uint32_t id);

size_t ps_registry_count(const struct ps_registry *reg);
const struct ps_schema *ps_registry_at(const struct ps_registry *reg, size_t i);
/* The Confluent id of the i-th schema, or -1. */
int64_t ps_registry_id_at(const struct ps_registry *reg, size_t i);

#endif
