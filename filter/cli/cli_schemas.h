/*
 * The schemas a CLI tool decodes or encodes with: those of a configuration
 * file, or the reference schemas (ids 1 and 2) when none is given.
 */
#ifndef PS_CLI_SCHEMAS_H
#define PS_CLI_SCHEMAS_H

#include <stdint.h>

#include "ps_config.h"
#include "ps_registry.h"

#define CLI_HL7V2_NAME "uk.nhs.pseudostream.hl7v2.Hl7v2Event"
#define CLI_FHIR_NAME "uk.nhs.pseudostream.fhir.FhirEvent"

struct cli_schemas {
    struct ps_config *conf;          /* owned; NULL without a config file */
    struct ps_registry *reg;         /* owned */
    const struct ps_schema *hl7v2;   /* NULL when the registry has none */
    const struct ps_schema *fhir;
    uint32_t hl7v2_id;
    uint32_t fhir_id;
};

/* config_path may be NULL. */
ps_err_t cli_schemas_load(const char *config_path, struct cli_schemas *cs, struct ps_error *err);
void cli_schemas_free(struct cli_schemas *cs);

#endif
