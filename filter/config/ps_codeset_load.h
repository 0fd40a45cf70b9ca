/*
 * Internal to filter/config: loading and freeing code set files (the
 * structure is in ps_policy_doc.h).
 */
#ifndef PS_CODESET_LOAD_H
#define PS_CODESET_LOAD_H

#include "ps_error.h"
#include "ps_policy_doc.h"

ps_err_t ps_codeset_load(const char *path, struct ps_codeset **set_p, struct ps_error *err);
void ps_codeset_destroy(struct ps_codeset *set);

#endif
