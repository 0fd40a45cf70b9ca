/*
 * ps_keyed_hash: short keyed digests (BLAKE2b, 16 bytes) under a secret that
 * exists only in this process.
 *
 * Used where a set of identifiers must be held for membership tests only
 * (the national data opt-out state): the digest can be compared with the
 * digest of a candidate but neither read back nor compared with a digest made
 * by another process, because the key is random, made at ps_keyed_hash_new
 * and never leaves guarded memory. This is NOT the pseudonym construction of
 * DESIGN.md §6: those digests must agree across replicas, these must not.
 *
 * The key (32 bytes) lives in sodium_malloc memory (guard pages, canary),
 * locked with sodium_mlock (ps_keyed_hash_locked tells whether the lock held)
 * and read-only once made; it is wiped when the object is destroyed.
 *
 * Immutable once built: ps_keyed_hash_compute may be called from any number
 * of threads at once.
 */
#ifndef PS_KEYED_HASH_H
#define PS_KEYED_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "ps_error.h"

#define PS_KEYED_HASH_BYTES 16
#define PS_KEYED_HASH_KEY_BYTES 32

struct ps_keyed_hash;

/* Makes a fresh random key. PS_ERR_INVALID when libsodium cannot start,
 * PS_ERR_NOMEM when guarded memory cannot be had. *kh_p is written only on
 * success; the caller owns the result. */
ps_err_t ps_keyed_hash_new(struct ps_keyed_hash **kh_p, struct ps_error *err);

/* As ps_keyed_hash_new with a caller-chosen key of exactly
 * PS_KEYED_HASH_KEY_BYTES (copied; the caller wipes its own copy). For
 * known-answer tests only: a production key must be random. PS_ERR_INVALID
 * for a NULL key or a wrong length. */
ps_err_t ps_keyed_hash_new_from_key(const uint8_t *key, size_t key_len,
                                    struct ps_keyed_hash **kh_p, struct ps_error *err);

/* Wipes the key and frees. NULL is a no-op. */
void ps_keyed_hash_destroy(struct ps_keyed_hash *kh);

/* out = keyed BLAKE2b of data[0..len) with a 16-byte output (libsodium's
 * crypto_generichash; the output length is a BLAKE2b parameter, so this is
 * not a prefix of the 64-byte digest). data may be NULL when len is 0.
 * Cannot fail. */
void ps_keyed_hash_compute(const struct ps_keyed_hash *kh, const void *data, size_t len,
                           uint8_t out[PS_KEYED_HASH_BYTES]);

/* 1 when the key is locked in memory (it may be swapped out otherwise, e.g.
 * under a low RLIMIT_MEMLOCK). */
int ps_keyed_hash_locked(const struct ps_keyed_hash *kh);

/* Zeroes n bytes at p in a way the compiler may not remove (sodium_memzero),
 * for callers outside the crypto layer that held an identifier in clear. */
void ps_keyed_hash_wipe(void *p, size_t n);

#endif
