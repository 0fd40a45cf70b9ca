#include "ps_reidentify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ps_buf.h"

#define REIDENTIFY_DEFAULT_TIMEOUT_MS 10000

/* Splits an escrow record key "<domain>/<token>" at its last '/' (a token
 * has none; a domain might). Returns 0 on success. */
static int split_key(const void *key, size_t key_len, char domain[PS_REIDENTIFY_KEY_MAX],
                     const char **token_p, size_t *token_len_p)
{
    const char *k = key;
    if (!key || key_len == 0 || key_len >= PS_REIDENTIFY_KEY_MAX) {
        return -1;
    }
    size_t slash = key_len;
    while (slash > 0 && k[slash - 1] != '/') {
        slash--;
    }
    if (slash < 2 || slash == key_len) {
        return -1;
    }
    memcpy(domain, k, slash - 1);
    domain[slash - 1] = '\0';
    *token_p = k + slash;
    *token_len_p = key_len - slash;
    return 0;
}

/* Whether a requested token (bare, or "domain/token") names this record. */
static int matches(const char *asked, const char *domain, const char *token, size_t token_len)
{
    const char *slash = strrchr(asked, '/');
    const char *want = slash ? slash + 1 : asked;
    if (strlen(want) != token_len || memcmp(want, token, token_len) != 0) {
        return 0;
    }
    if (slash) {
        size_t dlen = (size_t)(slash - asked);
        return strlen(domain) == dlen && memcmp(domain, asked, dlen) == 0;
    }
    return 1;
}

static void wipe_buf(struct ps_buf *buf)
{
    if (buf->data) {
        volatile uint8_t *p = buf->data;
        for (size_t i = 0; i < buf->cap; i++) {
            p[i] = 0;
        }
    }
    ps_buf_free(buf);
}

ps_err_t ps_reidentify_run(const struct ps_reidentify_options *opt,
                           struct ps_reidentify_result *results, struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    struct ps_kafka_reader *reader = NULL;
    struct ps_buf value;
    char domain[PS_REIDENTIFY_KEY_MAX];

    if (!opt || !results || !opt->bootstraps || !opt->topic || !opt->keys ||
        (opt->token_count > 0 && !opt->tokens)) {
        return ps_error_set(err, PS_ERR_INVALID, "ps_reidentify_run: missing argument");
    }
    if (opt->key_count < 1 || opt->key_count > PS_ESCROW_AUTHORITIES_MAX) {
        return ps_error_set(err, PS_ERR_INVALID, "give 1 or %d authority secret keys",
                            PS_ESCROW_AUTHORITIES_MAX);
    }
    memset(results, 0, opt->token_count * sizeof(*results));
    for (size_t t = 0; t < opt->token_count; t++) {
        results[t].token = opt->tokens[t];
    }
    /* The value cannot outgrow what ps_escrow_open returns, and it is
     * reserved once so that no copy of an identifier is left by a realloc. */
    ps_buf_init(&value, PS_ESCROW_VALUE_MAX + 1);
    rc = ps_buf_reserve(&value, PS_ESCROW_VALUE_MAX + 1);
    if (rc != PS_OK) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    rc = ps_kafka_reader_new(opt->bootstraps, opt->topic, opt->props, opt->prop_count, &reader,
                             err);
    if (rc != PS_OK) {
        ps_error_prefix(err, "escrow topic '%s'", opt->topic);
        goto cleanup;
    }
    int timeout = opt->timeout_ms > 0 ? opt->timeout_ms : REIDENTIFY_DEFAULT_TIMEOUT_MS;
    for (;;) {
        const struct ps_kafka_message *msg = NULL;
        rc = ps_kafka_reader_next(reader, timeout, &msg, err);
        if (rc == PS_ERR_STOPPED) {
            rc = PS_OK;
            break;
        }
        if (rc != PS_OK) {
            ps_error_prefix(err, "escrow topic '%s'", opt->topic);
            goto cleanup;
        }
        const char *token = NULL;
        size_t token_len = 0;
        /* A tombstone (no value) or a key of another form is skipped: the
         * topic is compacted, and only our records matter. */
        if (!msg->value || split_key(msg->key, msg->key_len, domain, &token, &token_len) != 0) {
            continue;
        }
        for (size_t t = 0; t < opt->token_count; t++) {
            struct ps_reidentify_result *r = &results[t];
            if (r->status == PS_REIDENTIFY_OPENED ||
                !matches(r->token, domain, token, token_len)) {
                continue;
            }
            snprintf(r->domain, sizeof(r->domain), "%s", domain);
            if (ps_escrow_open(opt->keys, opt->key_count, msg->value, msg->len, &value, NULL) !=
                PS_OK) {
                r->status = PS_REIDENTIFY_SEALED;
                continue;
            }
            r->value = malloc(value.len + 1);
            if (!r->value) {
                rc = ps_error_set(err, PS_ERR_NOMEM, "out of memory");
                goto cleanup;
            }
            memcpy(r->value, value.data, value.len);
            r->value[value.len] = '\0';
            r->value_len = value.len;
            r->status = PS_REIDENTIFY_OPENED;
        }
    }

cleanup:
    wipe_buf(&value);
    ps_kafka_reader_destroy(reader);
    if (rc != PS_OK) {
        ps_reidentify_results_free(results, opt->token_count);
    }
    return rc;
}

void ps_reidentify_results_free(struct ps_reidentify_result *results, size_t count)
{
    if (!results) {
        return;
    }
    for (size_t t = 0; t < count; t++) {
        if (results[t].value) {
            volatile char *p = results[t].value;
            for (size_t i = 0; i < results[t].value_len; i++) {
                p[i] = 0;
            }
            free(results[t].value);
            results[t].value = NULL;
        }
        results[t].value_len = 0;
    }
}
