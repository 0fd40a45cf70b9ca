/*
 * ps_escrow: controlled re-identification (DESIGN.md §6, docs/KEYRING.md).
 *
 * The original identifier is sealed (libsodium sealed box: X25519 with an
 * ephemeral key, XSalsa20-Poly1305) to a re-identification authority's
 * public key, and written to an escrow topic under "<domain>/<token>". The
 * filter holds only public keys: nothing it holds opens an escrow record.
 *
 * With two authorities the value is sealed to the first, and that sealed box
 * to the second: opening needs both secret keys, the second's first.
 *
 *   one authority:   sealed = seal(pk1, value)                    value + 48 bytes
 *   two authorities: sealed = seal(pk2, seal(pk1, value))         value + 96 bytes
 *
 * Key files hold standard base64 (padded) of the 32-byte key and a newline.
 * A secret key file must not be readable by group or others.
 *
 * A sealed box costs tens of microseconds, so the pipeline seals once per
 * patient and domain: struct ps_escrow_cache remembers, in bounded memory,
 * which (domain, token) pairs were already escrowed.
 */
#ifndef PS_ESCROW_H
#define PS_ESCROW_H

#include <stddef.h>
#include <stdint.h>

#include "ps_buf.h"
#include "ps_error.h"

#define PS_ESCROW_KEY_BYTES 32
/* Bytes a sealed box adds to what it seals. */
#define PS_ESCROW_SEAL_OVERHEAD 48
#define PS_ESCROW_AUTHORITIES_MAX 2
/* Longest value sealed or opened (an identifier, not a document). */
#define PS_ESCROW_VALUE_MAX 1024
/* Base64 of 32 bytes is 44 characters; with the NUL, 45. */
#define PS_ESCROW_KEY_B64_MAX 48

/* The public keys a destination seals to, in order. */
struct ps_escrow_authorities {
    uint8_t pk[PS_ESCROW_AUTHORITIES_MAX][PS_ESCROW_KEY_BYTES];
    size_t count; /* 1 or 2 */
};

/* An authority's secret key (and its public key), in guarded memory. */
struct ps_escrow_secret;

/* ----------------------------------------------------------------- keys */

/* A new key pair: writes the public key's base64 to public_path and the
 * secret key's to secret_path (mode 0600). Neither file may exist already
 * (PS_ERR_IO naming it); on failure neither is left behind. */
ps_err_t ps_escrow_keypair_write(const char *public_path, const char *secret_path,
                                 struct ps_error *err);

/* Parses a public key's base64 (surrounding white space ignored).
 * PS_ERR_CONFIG when it is not the base64 of 32 bytes. */
ps_err_t ps_escrow_public_parse(const char *b64, uint8_t pk[PS_ESCROW_KEY_BYTES],
                                struct ps_error *err);
/* Reads a public key file. PS_ERR_IO, PS_ERR_CONFIG naming the file. */
ps_err_t ps_escrow_public_load(const char *path, uint8_t pk[PS_ESCROW_KEY_BYTES],
                               struct ps_error *err);
/* Reads a secret key file: PS_ERR_PERMISSION when group or others may read it,
 * PS_ERR_IO, PS_ERR_CONFIG. The message never repeats the file's content. */
ps_err_t ps_escrow_secret_load(const char *path, struct ps_escrow_secret **sk_p,
                               struct ps_error *err);
/* A secret key from its 32 raw bytes (tests, tools). */
ps_err_t ps_escrow_secret_from_bytes(const uint8_t sk[PS_ESCROW_KEY_BYTES],
                                     struct ps_escrow_secret **sk_p, struct ps_error *err);
/* The public key that belongs to sk. */
void ps_escrow_secret_public(const struct ps_escrow_secret *sk, uint8_t pk[PS_ESCROW_KEY_BYTES]);
/* Wipes and frees. NULL is a no-op. */
void ps_escrow_secret_destroy(struct ps_escrow_secret *sk);

/* --------------------------------------------------------- seal and open */

/* Seals value (len bytes, 1 to PS_ESCROW_VALUE_MAX) to the authorities and
 * replaces out's content with the sealed bytes. PS_ERR_INVALID for no or more
 * than two authorities or a bad length, PS_ERR_LIMIT when out's maximum is too
 * small, PS_ERR_NOMEM. Thread-safe (no shared state). */
ps_err_t ps_escrow_seal(const struct ps_escrow_authorities *auth, const void *value, size_t len,
                        struct ps_buf *out, struct ps_error *err);

/* Opens sealed bytes with count secret keys (1 or 2, in any order): each
 * key must open exactly one layer. Replaces out's content with the value
 * (not NUL-terminated; the caller wipes out when done). PS_ERR_PERMISSION
 * "cannot be opened with the given key(s)" when a layer opens with none of
 * the keys left or a key is left over; PS_ERR_INVALID, PS_ERR_NOMEM. */
ps_err_t ps_escrow_open(const struct ps_escrow_secret *const *sks, size_t count,
                        const void *sealed, size_t len, struct ps_buf *out,
                        struct ps_error *err);

/* ----------------------------------------------------------------- cache */

/*
 * Which (domain, token) pairs were already escrowed. Entries are 128-bit
 * keyed hashes (SipHash-128 under a random per-cache key) of domain, a NUL
 * and token, in insertion order in a ring; when the ring is full the oldest
 * entry goes. About 24 bytes per entry: a million entries cost some 24 MiB.
 *
 * Forgetting an entry costs only a repeated escrow record (the topic is
 * compacted on its key); a false "seen" would cost a missing one, which is
 * why the hash is 128 bits.
 *
 * Inside a transaction, add entries after the transaction committed, or call
 * ps_escrow_cache_clear after an abort, so that an aborted escrow record is
 * written again. Not thread-safe: one cache per pipeline thread.
 */
struct ps_escrow_cache;

#define PS_ESCROW_CACHE_DEFAULT 1000000

/* capacity 1 to 2^30 entries. PS_ERR_INVALID, PS_ERR_NOMEM. */
ps_err_t ps_escrow_cache_new(size_t capacity, struct ps_escrow_cache **cache_p,
                             struct ps_error *err);
/* NULL is a no-op. */
void ps_escrow_cache_destroy(struct ps_escrow_cache *cache);

/* 1 when (domain, token) is in the cache. */
int ps_escrow_cache_contains(const struct ps_escrow_cache *cache, const char *domain,
                             const char *token);
/* Adds (domain, token), evicting the oldest entry when full. Returns 1 when it
 * was already there (nothing changes), 0 when added. */
int ps_escrow_cache_add(struct ps_escrow_cache *cache, const char *domain, const char *token);
/* Forgets everything (after an aborted transaction). */
void ps_escrow_cache_clear(struct ps_escrow_cache *cache);
size_t ps_escrow_cache_count(const struct ps_escrow_cache *cache);
size_t ps_escrow_cache_capacity(const struct ps_escrow_cache *cache);

#endif
