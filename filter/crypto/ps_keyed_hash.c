#include "ps_keyed_hash.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ps_keyring.h"

/* The key sits alone in its own sodium_malloc region: guard pages either side
 * and a canary, so a stray read or write near it faults instead of leaking
 * or corrupting it. The region is made read-only once the key is in. */
struct ps_keyed_hash {
    uint8_t *key; /* sodium_malloc, PS_KEYED_HASH_KEY_BYTES, read-only */
    int locked;
};

static ps_err_t keyed_hash_make(const uint8_t *key, struct ps_keyed_hash **kh_p,
                                struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    struct ps_keyed_hash *kh = NULL;

    rc = ps_crypto_init(err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    kh = calloc(1, sizeof(*kh));
    if (!kh) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "keyed hash: out of memory");
        goto cleanup;
    }
    kh->key = sodium_malloc(PS_KEYED_HASH_KEY_BYTES);
    if (!kh->key) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "keyed hash: guarded memory could not be "
                          "allocated");
        goto cleanup;
    }
    /* sodium_malloc tries to lock but ignores the result: lock again to learn
     * whether the key can be swapped out, before any key byte is written. */
    kh->locked = sodium_mlock(kh->key, PS_KEYED_HASH_KEY_BYTES) == 0;
    if (key) {
        memcpy(kh->key, key, PS_KEYED_HASH_KEY_BYTES);
    } else {
        crypto_generichash_keygen(kh->key);
    }
    if (sodium_mprotect_readonly(kh->key) != 0) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "keyed hash: guarded memory could not be made "
                          "read-only");
        goto cleanup;
    }
    *kh_p = kh;
    kh = NULL;

cleanup:
    ps_keyed_hash_destroy(kh);
    return rc;
}

ps_err_t ps_keyed_hash_new(struct ps_keyed_hash **kh_p, struct ps_error *err)
{
    if (!kh_p) {
        return ps_error_set(err, PS_ERR_INVALID, "keyed hash: missing argument");
    }
    return keyed_hash_make(NULL, kh_p, err);
}

ps_err_t ps_keyed_hash_new_from_key(const uint8_t *key, size_t key_len,
                                    struct ps_keyed_hash **kh_p, struct ps_error *err)
{
    if (!key || !kh_p || key_len != PS_KEYED_HASH_KEY_BYTES) {
        return ps_error_set(err, PS_ERR_INVALID, "keyed hash: the key must be %d bytes",
                            PS_KEYED_HASH_KEY_BYTES);
    }
    return keyed_hash_make(key, kh_p, err);
}

void ps_keyed_hash_destroy(struct ps_keyed_hash *kh)
{
    if (!kh) {
        return;
    }
    if (kh->key) {
        /* sodium_free makes the region writable, checks the canary, zeroes
         * and unlocks it before unmapping. */
        sodium_free(kh->key);
    }
    free(kh);
}

void ps_keyed_hash_compute(const struct ps_keyed_hash *kh, const void *data, size_t len,
                           uint8_t out[PS_KEYED_HASH_BYTES])
{
    static const uint8_t empty = 0;
    /* crypto_generichash only fails for out-of-range lengths, which are
     * constants here. */
    (void)crypto_generichash(out, PS_KEYED_HASH_BYTES, data ? data : &empty, len, kh->key,
                             PS_KEYED_HASH_KEY_BYTES);
}

int ps_keyed_hash_locked(const struct ps_keyed_hash *kh)
{
    return kh ? kh->locked : 0;
}

void ps_keyed_hash_wipe(void *p, size_t n)
{
    if (p && n) {
        sodium_memzero(p, n);
    }
}
