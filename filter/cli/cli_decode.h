/*
 * Decoding what is on a topic, for people: input events with the input
 * schemas, destination records with the schemas derived from the policy
 * (compiled here without any keyring: deriving a schema needs no secret), and
 * audit records with the audit schema.
 */
#ifndef PS_CLI_DECODE_H
#define PS_CLI_DECODE_H

#include "cli_schemas.h"
#include "ps_codec.h"
#include "ps_kafka.h"
#include "ps_policy_doc.h"
#include "ps_registry.h"

struct cli_decoder {
    struct cli_schemas schemas;
    struct ps_policy_doc *policy;     /* owned */
    struct ps_registry *derived;      /* owned: copies of every derived schema */
    struct ps_decoder *dec;
};

/* config_path and policy_path may be NULL (the config's policy, else the demo policy). */
ps_err_t cli_decoder_open(const char *config_path, const char *policy_path,
                          struct cli_decoder *cd, struct ps_error *err);
void cli_decoder_close(struct cli_decoder *cd);

/* Decodes a message value; *ev_p is borrowed from the decoder. */
ps_err_t cli_decoder_decode(struct cli_decoder *cd, const void *value, size_t len,
                            struct ps_event **ev_p, struct ps_error *err);

#endif
