#include "ps_runtime.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ps_keyring_file.h"
#include "ps_log.h"
#include "ps_schema.h"
#include "ps_time.h"

ps_err_t ps_runtime_load_schemas(const struct ps_config *conf, struct ps_registry **reg_p,
                                 struct ps_error *err)
{
    struct ps_registry *reg = NULL;
    struct ps_schema_limits limits = {.max_depth = (int)conf->limits.max_depth};
    ps_err_t rc = ps_registry_new(&reg, err);
    for (size_t i = 0; rc == PS_OK && i < conf->schema_count; i++) {
        struct ps_schema *schema = NULL;
        rc = ps_schema_load_file(conf->schemas[i].file, &limits, &schema, err);
        if (rc == PS_OK) {
            rc = ps_registry_add(reg, schema, conf->schemas[i].id, err);
            if (rc != PS_OK) {
                ps_schema_destroy(schema);
            }
        }
    }
    if (rc != PS_OK) {
        ps_registry_destroy(reg);
        return rc;
    }
    *reg_p = reg;
    return PS_OK;
}

ps_err_t ps_runtime_load_keyring(const struct ps_config *conf, struct ps_keyring **kr_p,
                                 struct ps_error *err)
{
    const char *path = conf->keyring_file;
    struct ps_keyring_file *kf = NULL;
    struct ps_keyring_entry *entries = NULL;
    struct ps_passphrase *pp = NULL;
    ps_err_t rc = PS_OK;
    /* The configuration read keyring_passphrase_file already; without it a
     * protected keyring takes its passphrase from the environment. */
    if (conf->keyring_passphrase) {
        rc = ps_passphrase_from_text(conf->keyring_passphrase, strlen(conf->keyring_passphrase),
                                     &pp, err);
        if (rc != PS_OK) {
            ps_error_prefix(err, "keyring_passphrase_file");
            return rc;
        }
        rc = ps_keyring_file_load_pp(path, pp, &kf, err);
        ps_passphrase_destroy(pp);
    } else {
        rc = ps_keyring_file_load(path, &kf, err);
    }
    if (rc != PS_OK) {
        return rc;
    }
    entries = calloc(kf->key_count + 1, sizeof(*entries));
    if (!entries) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < kf->key_count; i++) {
        entries[i].id = kf->keys[i].id;
        entries[i].not_before_ms = kf->keys[i].not_before_ms;
        entries[i].retired = kf->keys[i].retired;
        entries[i].secret_b64 = kf->keys[i].secret_b64;
    }
    rc = ps_keyring_new(entries, kf->key_count, path, kr_p, err);
cleanup:
    free(entries);
    ps_keyring_file_destroy(kf);
    return rc;
}

static const char *first_optout_destination(const struct ps_runtime *rt)
{
    for (size_t d = 0; d < ps_engine_destination_count(rt->engine); d++) {
        const struct ps_policy_destination *dst = ps_engine_destination(rt->engine, d);
        if (ps_plan_applies_optout(dst)) {
            return dst->name;
        }
    }
    return NULL;
}

ps_err_t ps_runtime_load_optout(struct ps_runtime *rt, struct ps_error *err)
{
    const struct ps_config *conf = rt->conf;
    const char *needs = first_optout_destination(rt);
    if (!conf->opt_out.configured) {
        if (!needs) {
            return PS_OK;
        }
        return ps_error_set_at(err, PS_ERR_CONFIG, conf->file, 1, 1,
                               "the policy applies the national data opt-out to destination "
                               "'%s' but the configuration names no opt-out state (add opt_out: "
                               "with file: and/or topic:)", needs);
    }
    enum ps_optout_form form = conf->opt_out.form == PS_CONFIG_OPTOUT_OPTED_OUT
                                   ? PS_OPTOUT_OPTED_OUT : PS_OPTOUT_CLEARED;
    ps_err_t rc = ps_optout_new(form, &rt->optout, err);
    if (rc == PS_OK && conf->opt_out.file) {
        size_t invalid = 0;
        struct stat st;
        rc = ps_optout_load_file(rt->optout, conf->opt_out.file, &invalid, err);
        if (rc == PS_OK) {
            int64_t as_of = conf->opt_out.as_of_ms;
            if (!as_of && stat(conf->opt_out.file, &st) == 0) {
                as_of = (int64_t)st.st_mtime * 1000;
            }
            ps_optout_set_as_of(rt->optout, as_of);
            PS_INFO("runtime", "optout_loaded", "opt-out state: %zu numbers, %zu invalid lines "
                    "skipped", ps_optout_count(rt->optout), invalid);
        }
    }
    return rc;
}

ps_err_t ps_runtime_optout_catch_up(struct ps_runtime *rt, const char *bootstraps, int timeout_ms,
                                    struct ps_error *err)
{
    if (!rt->optout || !rt->conf->opt_out.topic) {
        return PS_OK;
    }
    ps_err_t rc = PS_OK;
    if (!rt->optout_feed) {
        rc = ps_optout_feed_new(bootstraps, rt->conf->opt_out.topic, rt->props, rt->prop_count,
                                rt->optout, &rt->optout_feed, err);
    }
    if (rc == PS_OK) {
        rc = ps_optout_feed_catch_up(rt->optout_feed, timeout_ms, err);
    }
    if (rc != PS_OK) {
        ps_error_prefix(err, "opt-out topic '%s'", rt->conf->opt_out.topic);
    }
    return rc;
}

static int64_t file_mtime_ns(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        return -1;
    }
    return (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

int ps_runtime_keyring_changed(const struct ps_runtime *rt)
{
    int64_t now = file_mtime_ns(rt->conf->keyring_file);
    return now >= 0 && now != rt->keyring_mtime_ns;
}

void ps_runtime_log_context(const struct ps_runtime *rt)
{
    uint32_t key_id = 0;
    int has_key = ps_keyring_select(rt->kr, ps_time_now_ms(), &key_id, NULL) == PS_OK;
    ps_log_set_context(rt->policy_hash, has_key ? (int64_t)key_id : -1);
}

ps_err_t ps_runtime_reload_keyring(struct ps_runtime *rt, struct ps_error *err)
{
    struct ps_keyring *kr = NULL;
    struct ps_engine *engine = NULL;
    int64_t mtime = file_mtime_ns(rt->conf->keyring_file);
    ps_err_t rc = ps_runtime_load_keyring(rt->conf, &kr, err);
    if (rc == PS_OK) {
        rc = ps_engine_new(rt->policy, rt->policy_hash, rt->reg, kr, &engine, err);
    }
    if (rc != PS_OK) {
        ps_keyring_destroy(kr);
        /* Remember this file so a broken one is not retried every tick. */
        rt->keyring_mtime_ns = mtime;
        return rc;
    }
    ps_runtime_release_old(rt);
    rt->old_kr = rt->kr;
    rt->old_engine = rt->engine;
    rt->kr = kr;
    rt->engine = engine;
    rt->keyring_mtime_ns = mtime;
    ps_runtime_log_context(rt);
    return PS_OK;
}

void ps_runtime_release_old(struct ps_runtime *rt)
{
    ps_engine_destroy(rt->old_engine);
    ps_keyring_destroy(rt->old_kr);
    rt->old_engine = NULL;
    rt->old_kr = NULL;
}

ps_err_t ps_runtime_reload_hook(void *opaque, const struct ps_engine **engine_p,
                                struct ps_error *err)
{
    struct ps_runtime *rt = opaque;
    ps_err_t rc = ps_runtime_reload_keyring(rt, err);
    if (rc == PS_OK) {
        *engine_p = rt->engine;
    }
    return rc;
}

int ps_runtime_changed_hook(void *opaque)
{
    return ps_runtime_keyring_changed(opaque);
}

void ps_runtime_release_hook(void *opaque)
{
    ps_runtime_release_old(opaque);
}

static ps_err_t build(struct ps_runtime *rt, struct ps_error *err)
{
    struct ps_config *conf = rt->conf;
    ps_codec_limits_default(&rt->limits);
    rt->limits.max_message_bytes = conf->limits.max_message_bytes;
    rt->limits.max_alloc_bytes = conf->limits.max_alloc_bytes;
    rt->limits.max_depth = (int)conf->limits.max_depth;
    rt->limits.max_items = conf->limits.max_items;

    rt->props = calloc(conf->kafka.property_count + 1, sizeof(*rt->props));
    if (!rt->props) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < conf->kafka.property_count; i++) {
        rt->props[i].key = conf->kafka.properties[i].key;
        rt->props[i].value = conf->kafka.properties[i].value;
    }
    rt->prop_count = conf->kafka.property_count;

    ps_err_t rc = ps_crypto_init(err);
    if (rc == PS_OK) {
        rc = ps_runtime_load_schemas(conf, &rt->reg, err);
    }
    if (rc == PS_OK) {
        rc = ps_policy_doc_load(conf->policy_file, &rt->policy, err);
    }
    if (rc == PS_OK) {
        rc = ps_digest_file_hex(conf->policy_file, rt->policy_hash, err);
    }
    if (rc == PS_OK) {
        rt->keyring_mtime_ns = file_mtime_ns(conf->keyring_file);
        rc = ps_runtime_load_keyring(conf, &rt->kr, err);
    }
    if (rc == PS_OK) {
        rc = ps_engine_new(rt->policy, rt->policy_hash, rt->reg, rt->kr, &rt->engine, err);
    }
    if (rc == PS_OK) {
        rc = ps_runtime_load_optout(rt, err);
    }
    if (rc == PS_OK && !ps_keyring_locked(rt->kr)) {
        PS_WARN("runtime", "keyring_not_locked",
                "keyring secrets could not be locked in memory (raise RLIMIT_MEMLOCK); they "
                "may be swapped to disk");
    } else if (rc == PS_OK) {
        PS_INFO("runtime", "keyring_locked", "keyring loaded: %zu keys, locked in memory",
                ps_keyring_count(rt->kr));
    }
    return rc;
}

ps_err_t ps_runtime_open(const char *config_path, const char *const *props, size_t count,
                         struct ps_runtime **rt_p, struct ps_error *err)
{
    struct ps_runtime *rt = calloc(1, sizeof(*rt));
    if (!rt) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory");
    }
    ps_err_t rc = ps_config_load(config_path, &rt->conf, err);
    for (size_t i = 0; rc == PS_OK && i < count; i++) {
        rc = ps_config_set_property(rt->conf, props[i], err);
    }
    if (rc == PS_OK) {
        rc = build(rt, err);
    }
    if (rc != PS_OK) {
        ps_runtime_close(rt);
        return rc;
    }
    *rt_p = rt;
    return PS_OK;
}

void ps_runtime_pipeline_options(const struct ps_runtime *rt, struct ps_pipeline_options *opt)
{
    const struct ps_config *conf = rt->conf;
    memset(opt, 0, sizeof(*opt));
    opt->bootstraps = conf->kafka.bootstrap_servers;
    opt->group_id = conf->kafka.group_id;
    opt->transactional_id = conf->delivery.mode == PS_DELIVERY_TRANSACTIONAL
                                ? conf->kafka.transactional_id : NULL;
    opt->props = rt->props;
    opt->prop_count = rt->prop_count;
    opt->topics = (const char *const *)conf->input_topics;
    opt->topic_count = conf->input_topic_count;
    opt->dead_letter_topic = conf->dead_letter_topic;
    opt->batch_max_events = conf->delivery.batch_max_events;
    opt->transaction_interval_ms = (int)conf->delivery.transaction_interval_ms;
    opt->limits = rt->limits;
    opt->audit_topic = conf->audit_topic;
    opt->reload.opaque = (void *)rt;
    opt->reload.fn = ps_runtime_reload_hook;
    opt->reload.changed = ps_runtime_changed_hook;
    opt->reload.release = ps_runtime_release_hook;
    opt->escrow_topic = conf->escrow_topic;
    opt->optout = rt->optout;
    opt->optout_feed = rt->optout_feed;
    opt->optout_max_age_ms = (int64_t)conf->opt_out.max_age_hours * 3600000;
}

void ps_runtime_close(struct ps_runtime *rt)
{
    if (!rt) {
        return;
    }
    free(rt->props);
    ps_runtime_release_old(rt);
    ps_optout_feed_destroy(rt->optout_feed);
    ps_optout_destroy(rt->optout);
    ps_engine_destroy(rt->engine);
    ps_keyring_destroy(rt->kr);
    ps_policy_doc_destroy(rt->policy);
    ps_registry_destroy(rt->reg);
    ps_config_destroy(rt->conf);
    free(rt);
}
