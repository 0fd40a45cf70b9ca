/*
 * ps_keyring: the numbered master secrets every replica shares.
 *
 * Each entry has an id, a not_before instant and a secret of at least 32
 * bytes. The secret for an event is the entry with the latest not_before at
 * or before the event's own time (never the wall clock), so replicas that
 * reloaded the keyring at different moments pick the same key for the same
 * event. Entries must have strictly increasing ids and strictly increasing
 * not_before instants; a retired entry is never selected.
 *
 * Secrets live in sodium_malloc memory (guard pages, canary), are locked with
 * sodium_mlock (whether that succeeded is reported by ps_keyring_locked: under
 * a low RLIMIT_MEMLOCK it fails and the memory may be swapped), and are wiped
 * when the keyring is destroyed.
 *
 * Immutable once built; may be shared between threads.
 */
#ifndef PS_KEYRING_H
#define PS_KEYRING_H

#include <stddef.h>
#include <stdint.h>

#include "ps_error.h"

#define PS_KEYRING_SECRET_MIN 32
#define PS_KEYRING_SECRET_MAX 64

/* One entry as read from a keyring file: the secret in standard base64. */
struct ps_keyring_entry {
    uint32_t id;
    int64_t not_before_ms;
    int retired;
    const char *secret_b64;
};

struct ps_keyring;

/* Calls sodium_init once; safe to call many times. PS_ERR_INVALID on failure. */
ps_err_t ps_crypto_init(struct ps_error *err);

/* Makes the process unable to leak the keyring through a crash or a debugger:
 * sets RLIMIT_CORE to 0 (soft and hard) and, on Linux, PR_SET_DUMPABLE to 0
 * (which also stops other processes of the same user from ptrace-attaching or
 * reading /proc/<pid>/mem). Call once at start-up, before the keyring is
 * loaded; it is process-wide and meant to last for the life of the process
 * (the hard core limit of 0 cannot be raised again without privilege).
 * PS_ERR_INVALID (with the system's reason) when either call fails. Call it
 * from main before other threads start. */
ps_err_t ps_crypto_harden_process(struct ps_error *err);

/* Builds a keyring from entries (which it does not keep). origin names the
 * keyring in messages. PS_ERR_CONFIG for an empty list, ids or not_before not
 * strictly increasing, a secret that is not base64, shorter than 32 bytes or
 * longer than 64;
 * the message names the entry by id, never the secret. */
ps_err_t ps_keyring_new(const struct ps_keyring_entry *entries, size_t count, const char *origin,
                        struct ps_keyring **kr_p, struct ps_error *err);
/* Wipes and frees. NULL is a no-op. */
void ps_keyring_destroy(struct ps_keyring *kr);

/* The id of the key for an event at event_time_ms. PS_ERR_NO_KEY when no
 * unretired entry has not_before at or before it. */
ps_err_t ps_keyring_select(const struct ps_keyring *kr, int64_t event_time_ms, uint32_t *key_id_p,
                           struct ps_error *err);

size_t ps_keyring_count(const struct ps_keyring *kr);
/* Id, not_before and retired flag of the i-th entry (never the secret). */
void ps_keyring_info(const struct ps_keyring *kr, size_t i, uint32_t *id_p,
                     int64_t *not_before_ms_p, int *retired_p);
/* 1 when every secret is locked in memory. */
int ps_keyring_locked(const struct ps_keyring *kr);

/* Crypto-layer internal: the secret of entry i (guarded memory, do not copy). */
const uint8_t *ps_keyring_secret(const struct ps_keyring *kr, size_t i, size_t *len_p);

#endif
