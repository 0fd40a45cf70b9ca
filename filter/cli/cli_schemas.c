#include "cli_schemas.h"

#include <string.h>

#include "cli.h"
#include "ps_runtime.h"
#include "ps_schema.h"

static ps_err_t load_default(struct ps_registry *reg, const char *relative, int64_t id,
                             struct ps_error *err)
{
    char path[4096];
    struct ps_schema *schema = NULL;
    cli_data_path(relative, path, sizeof(path));
    ps_err_t rc = ps_schema_load_file(path, NULL, &schema, err);
    if (rc == PS_OK) {
        rc = ps_registry_add(reg, schema, id, err);
        if (rc != PS_OK) {
            ps_schema_destroy(schema);
        }
    }
    return rc;
}

ps_err_t cli_schemas_load(const char *config_path, struct cli_schemas *cs, struct ps_error *err)
{
    memset(cs, 0, sizeof(*cs));
    ps_err_t rc;
    if (config_path) {
        rc = ps_config_load(config_path, &cs->conf, err);
        if (rc == PS_OK) {
            rc = ps_runtime_load_schemas(cs->conf, &cs->reg, err);
        }
    } else {
        rc = ps_registry_new(&cs->reg, err);
        if (rc == PS_OK) {
            rc = load_default(cs->reg, "schemas/hl7v2/hl7v2_event.avsc", CLI_HL7V2_SCHEMA_ID, err);
        }
        if (rc == PS_OK) {
            rc = load_default(cs->reg, "schemas/fhir/fhir_event.avsc", CLI_FHIR_SCHEMA_ID, err);
        }
    }
    if (rc != PS_OK) {
        cli_schemas_free(cs);
        return rc;
    }
    for (size_t i = 0; i < ps_registry_count(cs->reg); i++) {
        const struct ps_schema *schema = ps_registry_at(cs->reg, i);
        int64_t id = ps_registry_id_at(cs->reg, i);
        if (strcmp(ps_schema_name(schema), CLI_HL7V2_NAME) == 0) {
            cs->hl7v2 = schema;
            cs->hl7v2_id = id >= 0 ? (uint32_t)id : 0;
        } else if (strcmp(ps_schema_name(schema), CLI_FHIR_NAME) == 0) {
            cs->fhir = schema;
            cs->fhir_id = id >= 0 ? (uint32_t)id : 0;
        }
    }
    return PS_OK;
}

void cli_schemas_free(struct cli_schemas *cs)
{
    ps_registry_destroy(cs->reg);
    ps_config_destroy(cs->conf);
    memset(cs, 0, sizeof(*cs));
}
