/*
 * ps_reidentify: what `pseudostream reidentify` does, as a library function
 * so that tests can run it against the embedded broker.
 *
 * Reads an escrow topic from its beginning to its current end (records keyed
 * "<domain>/<token>", values sealed with ps_escrow_seal; docs/KEYRING.md),
 * and opens the records of the tokens asked for with the authority secret
 * key(s). A token may be asked for bare ("1.abc...") or with its domain
 * ("commissioning/1.abc..."); a bare token matches in any domain.
 *
 * The opened identifiers are the only output: no log line, error message or
 * metric ever holds one. Each result's value is in memory that
 * ps_reidentify_results_free wipes.
 */
#ifndef PS_REIDENTIFY_H
#define PS_REIDENTIFY_H

#include <stddef.h>

#include "ps_error.h"
#include "ps_escrow.h"
#include "ps_kafka.h"

/* Longest escrow record key: a domain, '/', a token. */
#define PS_REIDENTIFY_KEY_MAX 512

enum ps_reidentify_status {
    PS_REIDENTIFY_NOT_FOUND = 0, /* no escrow record for the token */
    PS_REIDENTIFY_OPENED,        /* value holds the identifier */
    PS_REIDENTIFY_SEALED         /* records exist but none opens with the keys given */
};

struct ps_reidentify_result {
    const char *token;                  /* as asked (borrowed from the options) */
    enum ps_reidentify_status status;
    char domain[PS_REIDENTIFY_KEY_MAX]; /* the record's domain, when found */
    char *value;                        /* OPENED: NUL-terminated identifier (owned) */
    size_t value_len;
};

struct ps_reidentify_options {
    const char *bootstraps;
    const char *topic;                          /* the escrow topic */
    const struct ps_kafka_property *props;      /* librdkafka properties, may be NULL */
    size_t prop_count;
    const struct ps_escrow_secret *const *keys; /* 1 or 2 authority secret keys */
    size_t key_count;
    const char *const *tokens;                  /* what to re-identify */
    size_t token_count;
    int timeout_ms;                             /* per read; 0: 10 s */
};

/* Reads the topic and fills results (token_count entries, caller-allocated,
 * to be released with ps_reidentify_results_free). Every token gets a status;
 * a token not found or not opened is not an error. PS_ERR_INVALID, the Kafka
 * errors of ps_kafka_reader_new/next, PS_ERR_NOMEM. */
ps_err_t ps_reidentify_run(const struct ps_reidentify_options *opt,
                           struct ps_reidentify_result *results, struct ps_error *err);

/* Wipes and frees the values. NULL is a no-op. */
void ps_reidentify_results_free(struct ps_reidentify_result *results, size_t count);

#endif
