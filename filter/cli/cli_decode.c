#include "cli_decode.h"

#include <string.h>

#include "cli.h"
#include "ps_audit.h"
#include "ps_frame.h"
#include "ps_plan.h"
#include "ps_schema.h"

static ps_err_t add_derived(struct cli_decoder *cd, const struct ps_policy_destination *dst,
                            const struct ps_schema *schema, struct ps_error *err)
{
    struct ps_plan *plan = NULL;
    struct ps_schema *copy = NULL;
    ps_err_t rc = ps_plan_compile(cd->policy, dst, schema, &plan, err);
    if (rc == PS_OK) {
        const struct ps_schema *derived = ps_projection_schema(plan->projection);
        rc = ps_schema_load_json(ps_schema_json(derived), ps_schema_name(derived), NULL, &copy,
                                 err);
    }
    if (rc == PS_OK) {
        rc = ps_registry_add(cd->derived, copy, -1, err);
        if (rc != PS_OK) {
            ps_schema_destroy(copy);
        }
    }
    ps_plan_destroy(plan);
    return rc;
}

ps_err_t cli_decoder_open(const char *config_path, const char *policy_path,
                          struct cli_decoder *cd, struct ps_error *err)
{
    char demo_policy[4096];
    memset(cd, 0, sizeof(*cd));
    ps_err_t rc = cli_schemas_load(config_path, &cd->schemas, err);
    if (rc == PS_OK && !policy_path) {
        cli_data_path("policy/demo.yaml", demo_policy, sizeof(demo_policy));
        policy_path = cd->schemas.conf ? cd->schemas.conf->policy_file : demo_policy;
    }
    if (rc == PS_OK) {
        rc = ps_policy_doc_load(policy_path, &cd->policy, err);
    }
    if (rc == PS_OK) {
        rc = ps_registry_new(&cd->derived, err);
    }
    for (size_t d = 0; rc == PS_OK && d < cd->policy->destination_count; d++) {
        for (size_t s = 0; rc == PS_OK && s < ps_registry_count(cd->schemas.reg); s++) {
            rc = add_derived(cd, &cd->policy->destinations[d], ps_registry_at(cd->schemas.reg, s),
                             err);
        }
    }
    /* The audit topic's two record types. */
    const char *const audit_json[] = {ps_audit_schema_json, ps_audit_plan_schema_json};
    const char *const audit_origin[] = {"audit_record.avsc", "audit_plan.avsc"};
    for (size_t i = 0; rc == PS_OK && i < 2; i++) {
        struct ps_schema *audit = NULL;
        rc = ps_schema_load_json(audit_json[i], audit_origin[i], NULL, &audit, err);
        if (rc == PS_OK && (rc = ps_registry_add(cd->derived, audit, -1, err)) != PS_OK) {
            ps_schema_destroy(audit);
        }
    }
    if (rc == PS_OK) {
        rc = ps_decoder_new(NULL, &cd->dec, err);
    }
    if (rc != PS_OK) {
        cli_decoder_close(cd);
    }
    return rc;
}

void cli_decoder_close(struct cli_decoder *cd)
{
    ps_decoder_destroy(cd->dec);
    ps_registry_destroy(cd->derived);
    ps_policy_doc_destroy(cd->policy);
    cli_schemas_free(&cd->schemas);
    memset(cd, 0, sizeof(*cd));
}

ps_err_t cli_decoder_decode(struct cli_decoder *cd, const void *value, size_t len,
                            struct ps_event **ev_p, struct ps_error *err)
{
    struct ps_frame frame;
    const struct ps_schema *schema = NULL;
    ps_err_t rc = ps_frame_parse(value, len, &frame, err);
    if (rc != PS_OK) {
        return rc;
    }
    if (ps_registry_resolve(cd->schemas.reg, &frame, &schema, NULL) != PS_OK) {
        rc = ps_registry_resolve(cd->derived, &frame, &schema, err);
    }
    if (rc != PS_OK) {
        return rc;
    }
    return ps_decoder_decode(cd->dec, schema, frame.payload, frame.payload_len, ev_p, err);
}
