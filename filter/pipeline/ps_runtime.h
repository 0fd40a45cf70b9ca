/*
 * ps_runtime: everything `run` builds from a configuration file, in the three
 * phases STYLE.md asks for: parse (config, policy, keyring files), check
 * meaning (policy rules, keyring order), build runtime objects (schema
 * registry, keyring in guarded memory, compiled engine). Any failure stops
 * start-up with one message naming the file, the place and the fix.
 */
#ifndef PS_RUNTIME_H
#define PS_RUNTIME_H

#include "ps_codec.h"
#include "ps_config.h"
#include "ps_digest.h"
#include "ps_engine.h"
#include "ps_error.h"
#include "ps_kafka.h"
#include "ps_keyring.h"
#include "ps_optout.h"
#include "ps_optout_feed.h"
#include "ps_pipeline.h"
#include "ps_policy_doc.h"
#include "ps_registry.h"

struct ps_runtime {
    struct ps_config *conf;          /* owned */
    struct ps_registry *reg;         /* owned: input schemas */
    struct ps_policy_doc *policy;    /* owned */
    struct ps_keyring *kr;           /* owned */
    struct ps_engine *engine;        /* owned */
    struct ps_keyring *old_kr;       /* owned: the view before a reload, until released */
    struct ps_engine *old_engine;    /* owned likewise */
    int64_t keyring_mtime_ns;        /* of the keyring file when last loaded */
    struct ps_codec_limits limits;
    struct ps_optout *optout;        /* owned; NULL when no opt_out section */
    struct ps_optout_feed *optout_feed; /* owned; NULL without opt_out.topic */
    struct ps_kafka_property *props; /* owned array; strings borrowed from conf */
    size_t prop_count;
    char policy_hash[PS_DIGEST_HEX_LEN + 1];
};

/* Loads config_path, applies each "-X key=value" of props (count entries),
 * then builds everything. */
ps_err_t ps_runtime_open(const char *config_path, const char *const *props, size_t count,
                         struct ps_runtime **rt_p, struct ps_error *err);

/* Builds the schema registry of a configuration (used by tools that only
 * decode). */
ps_err_t ps_runtime_load_schemas(const struct ps_config *conf, struct ps_registry **reg_p,
                                 struct ps_error *err);

/* Loads the configuration's keyring file (refused when group or others may
 * read it) into guarded memory (used by tools that only need pseudonyms, such
 * as `audit trace`). Call ps_crypto_init first. The caller owns *kr_p
 * (ps_keyring_destroy). PS_ERR_IO, PS_ERR_PERMISSION, PS_ERR_CONFIG naming
 * the file and the entry, never a secret. */
ps_err_t ps_runtime_load_keyring(const struct ps_config *conf, struct ps_keyring **kr_p,
                                 struct ps_error *err);

/* Loads the national data opt-out state the configuration names (file now;
 * the topic's feed is created but caught up by ps_runtime_optout_catch_up).
 * PS_ERR_CONFIG when the policy applies the opt-out and no source is named. */
ps_err_t ps_runtime_load_optout(struct ps_runtime *rt, struct ps_error *err);

/* Reads the opt-out topic to its end (blocking, up to timeout_ms); the filter
 * consumes no input before this succeeded. PS_OK when there is no topic. */
ps_err_t ps_runtime_optout_catch_up(struct ps_runtime *rt, const char *bootstraps, int timeout_ms,
                                    struct ps_error *err);

/* Puts the policy version and the current key id on every log line. */
void ps_runtime_log_context(const struct ps_runtime *rt);

/* Reloads the keyring file and builds a new engine on it; the old ones are
 * kept (old_kr, old_engine) until ps_runtime_release_old, because the
 * pipeline's worker still uses them until the batch boundary. On failure
 * nothing changes and the running view stays (a bad new file is logged, not
 * fatal). */
ps_err_t ps_runtime_reload_keyring(struct ps_runtime *rt, struct ps_error *err);
void ps_runtime_release_old(struct ps_runtime *rt);
/* 1 when the keyring file changed on disk since it was loaded. */
int ps_runtime_keyring_changed(const struct ps_runtime *rt);

/* The pipeline's reload hook for this runtime (ps_pipeline.h). */
ps_err_t ps_runtime_reload_hook(void *opaque, const struct ps_engine **engine_p,
                                struct ps_error *err);
int ps_runtime_changed_hook(void *opaque);
void ps_runtime_release_hook(void *opaque);

/* Fills the pipeline options the configuration gives (bootstraps, group,
 * transactional id unless at-least-once, properties, topics, dead-letter
 * topic, batch size and interval, limits). stop and idle_exit_ms are left 0. */
void ps_runtime_pipeline_options(const struct ps_runtime *rt, struct ps_pipeline_options *opt);

/* NULL is a no-op. */
void ps_runtime_close(struct ps_runtime *rt);

#endif
