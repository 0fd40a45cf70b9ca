#include "ps_keyring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <sodium.h>

/*
 * Every secret of a keyring sits in ONE sodium_malloc region, in a slot of
 * PS_KEYRING_SECRET_MAX bytes per entry: one set of guard pages and one lock
 * for the whole keyring rather than three or four pages per key, and a single
 * mprotect to make it read-only once it is filled. The last slot ends at the
 * trailing guard page, so a read past any secret either stays inside the
 * region or faults.
 */
struct ps_keyring_slot {
    uint32_t id;
    int64_t not_before_ms;
    int retired;
    size_t secret_len;
};

struct ps_keyring {
    char *origin;
    struct ps_keyring_slot *slots;
    size_t count;
    uint8_t *secrets; /* sodium_malloc: count * PS_KEYRING_SECRET_MAX bytes, read-only */
    size_t secrets_size;
    int locked;
};

ps_err_t ps_crypto_init(struct ps_error *err)
{
    /* sodium_init is itself thread-safe and returns 1 when already done. */
    if (sodium_init() < 0) {
        return ps_error_set(err, PS_ERR_INVALID, "libsodium could not be initialised");
    }
    return PS_OK;
}

ps_err_t ps_crypto_harden_process(struct ps_error *err)
{
    /* A core dump or a ptrace attach would expose the keyring however well
     * its pages are guarded and locked. */
    struct rlimit rl = {0, 0};
    if (setrlimit(RLIMIT_CORE, &rl) != 0) {
        return ps_error_set(err, PS_ERR_INVALID, "core dumps could not be disabled: %s",
                            strerror(errno));
    }
#ifdef __linux__
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        return ps_error_set(err, PS_ERR_INVALID, "the process could not be made non-dumpable: %s",
                            strerror(errno));
    }
#endif
    return PS_OK;
}

static const char *origin_or_default(const char *origin)
{
    return origin && origin[0] ? origin : "(unnamed)";
}

/* Decodes one entry's secret into its slot. Only the entry id reaches the
 * message: libsodium says nothing about where decoding stopped that we pass on. */
static ps_err_t decode_secret(const struct ps_keyring_entry *e, uint8_t *slot, size_t *len_p,
                              const char *origin, struct ps_error *err)
{
    if (!e->secret_b64 || !e->secret_b64[0]) {
        return ps_error_set(err, PS_ERR_CONFIG, "keyring '%s': key %u has no secret", origin,
                            (unsigned)e->id);
    }
    size_t b64_len = strlen(e->secret_b64);
    size_t bin_len = 0;
    const char *end = NULL;
    int rc = sodium_base642bin(slot, PS_KEYRING_SECRET_MAX, e->secret_b64, b64_len, NULL,
                               &bin_len, &end, sodium_base64_VARIANT_ORIGINAL);
    /* libsodium sets ERANGE both for a full output buffer and for missing
     * padding, so tell "too long" from the length of the text instead. */
    size_t pads = 0;
    while (pads < 2 && pads < b64_len && e->secret_b64[b64_len - 1 - pads] == '=') {
        pads++;
    }
    if (rc != 0 && (b64_len - pads) / 4 * 3 + (b64_len - pads) % 4 * 3 / 4 >
                       PS_KEYRING_SECRET_MAX) {
        return ps_error_set(err, PS_ERR_CONFIG,
                            "keyring '%s': key %u: secret is longer than %d bytes", origin,
                            (unsigned)e->id, PS_KEYRING_SECRET_MAX);
    }
    if (rc != 0 || end != e->secret_b64 + b64_len) {
        return ps_error_set(err, PS_ERR_CONFIG,
                            "keyring '%s': key %u: secret is not standard base64 (with padding, "
                            "no white space)", origin, (unsigned)e->id);
    }
    if (bin_len < PS_KEYRING_SECRET_MIN) {
        return ps_error_set(err, PS_ERR_CONFIG,
                            "keyring '%s': key %u: secret is %zu bytes, at least %d are needed",
                            origin, (unsigned)e->id, bin_len, PS_KEYRING_SECRET_MIN);
    }
    *len_p = bin_len;
    return PS_OK;
}

ps_err_t ps_keyring_new(const struct ps_keyring_entry *entries, size_t count, const char *origin,
                        struct ps_keyring **kr_p, struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    struct ps_keyring *kr = NULL;
    const char *name = origin_or_default(origin);

    if (!kr_p || (count > 0 && !entries)) {
        return ps_error_set(err, PS_ERR_INVALID, "ps_keyring_new: missing argument");
    }
    if (count == 0) {
        return ps_error_set(err, PS_ERR_CONFIG, "keyring '%s' has no keys", name);
    }
    if (count > SIZE_MAX / PS_KEYRING_SECRET_MAX / 2) {
        return ps_error_set(err, PS_ERR_CONFIG, "keyring '%s' has too many keys", name);
    }
    rc = ps_crypto_init(err);
    if (rc != PS_OK) {
        return rc;
    }

    kr = calloc(1, sizeof(*kr));
    if (!kr) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "keyring '%s': out of memory", name);
        goto cleanup;
    }
    kr->origin = strdup(name);
    kr->slots = calloc(count, sizeof(*kr->slots));
    if (!kr->origin || !kr->slots) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "keyring '%s': out of memory", name);
        goto cleanup;
    }
    kr->count = count;
    kr->secrets_size = count * PS_KEYRING_SECRET_MAX;
    kr->secrets = sodium_malloc(kr->secrets_size);
    if (!kr->secrets) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "keyring '%s': guarded memory for %zu keys could "
                          "not be allocated", name, count);
        goto cleanup;
    }
    /* sodium_malloc already tries to lock the region but ignores the result;
     * lock it again to learn whether the secrets can be swapped out. Do it
     * before any secret is written so that no secret byte is ever swappable
     * when the lock holds. */
    kr->locked = sodium_mlock(kr->secrets, kr->secrets_size) == 0;
    sodium_memzero(kr->secrets, kr->secrets_size);

    for (size_t i = 0; i < count; i++) {
        const struct ps_keyring_entry *e = &entries[i];
        if (i > 0 && e->id <= entries[i - 1].id) {
            rc = ps_error_set(err, PS_ERR_CONFIG, "keyring '%s': key %u follows key %u: ids must "
                              "be strictly increasing", name, (unsigned)e->id,
                              (unsigned)entries[i - 1].id);
            goto cleanup;
        }
        if (i > 0 && e->not_before_ms <= entries[i - 1].not_before_ms) {
            rc = ps_error_set(err, PS_ERR_CONFIG, "keyring '%s': key %u has not_before at or "
                              "before that of key %u: not_before must be strictly increasing",
                              name, (unsigned)e->id, (unsigned)entries[i - 1].id);
            goto cleanup;
        }
        rc = decode_secret(e, kr->secrets + i * PS_KEYRING_SECRET_MAX, &kr->slots[i].secret_len,
                           name, err);
        if (rc != PS_OK) {
            goto cleanup;
        }
        kr->slots[i].id = e->id;
        kr->slots[i].not_before_ms = e->not_before_ms;
        kr->slots[i].retired = e->retired ? 1 : 0;
    }
    if (sodium_mprotect_readonly(kr->secrets) != 0) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "keyring '%s': guarded memory could not be made "
                          "read-only", name);
        goto cleanup;
    }

    *kr_p = kr;
    kr = NULL;

cleanup:
    ps_keyring_destroy(kr);
    return rc;
}

void ps_keyring_destroy(struct ps_keyring *kr)
{
    if (!kr) {
        return;
    }
    if (kr->secrets) {
        /* sodium_free makes the region writable again, checks the canary, and
         * zeroes and unlocks it before unmapping, so the secrets are wiped
         * whether or not the keyring was finished. */
        sodium_free(kr->secrets);
    }
    free(kr->slots);
    free(kr->origin);
    free(kr);
}

ps_err_t ps_keyring_select(const struct ps_keyring *kr, int64_t event_time_ms, uint32_t *key_id_p,
                           struct ps_error *err)
{
    if (!kr || !key_id_p) {
        return ps_error_set(err, PS_ERR_INVALID, "ps_keyring_select: missing argument");
    }
    /* Latest first: not_before is strictly increasing, so the first unretired
     * entry at or before the event's time is the one it belongs to. A retired
     * entry hands its period back to the unretired entry before it. */
    for (size_t i = kr->count; i-- > 0;) {
        const struct ps_keyring_slot *s = &kr->slots[i];
        if (s->not_before_ms <= event_time_ms && !s->retired) {
            *key_id_p = s->id;
            return PS_OK;
        }
    }
    /* The event time is payload: it stays out of the message. */
    return ps_error_set(err, PS_ERR_NO_KEY, "keyring '%s': no unretired key has not_before at or "
                        "before the event time", kr->origin);
}

size_t ps_keyring_count(const struct ps_keyring *kr)
{
    return kr ? kr->count : 0;
}

void ps_keyring_info(const struct ps_keyring *kr, size_t i, uint32_t *id_p,
                     int64_t *not_before_ms_p, int *retired_p)
{
    const struct ps_keyring_slot *s = (kr && i < kr->count) ? &kr->slots[i] : NULL;
    if (id_p) {
        *id_p = s ? s->id : 0;
    }
    if (not_before_ms_p) {
        *not_before_ms_p = s ? s->not_before_ms : 0;
    }
    if (retired_p) {
        *retired_p = s ? s->retired : 0;
    }
}

int ps_keyring_locked(const struct ps_keyring *kr)
{
    return kr ? kr->locked : 0;
}

const uint8_t *ps_keyring_secret(const struct ps_keyring *kr, size_t i, size_t *len_p)
{
    if (!kr || i >= kr->count) {
        if (len_p) {
            *len_p = 0;
        }
        return NULL;
    }
    if (len_p) {
        *len_p = kr->slots[i].secret_len;
    }
    return kr->secrets + i * PS_KEYRING_SECRET_MAX;
}
