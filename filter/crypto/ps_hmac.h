/*
 * ps_hmac: HMAC-SHA256 finished from a pre-keyed state, with the CPU's SHA
 * extensions where it has them.
 *
 * A pseudonym (DESIGN.md §6) is an HMAC-SHA256 of a short message under a
 * domain key. libsodium keys the state once (crypto_auth_hmacsha256_init, the
 * inner and outer pads already compressed), so each pseudonym costs two
 * SHA-256 blocks. libsodium 1.0.18 computes them in portable C, about a third
 * of the engine's time per event (docs/PERFORMANCE.md); x86-64 processors
 * with the SHA extensions (SHA-NI: Intel since Goldmont/Ice Lake, AMD since
 * Zen) do a block several times faster. This module computes the same
 * function with those instructions and falls back to libsodium itself on any
 * other processor, so every replica produces the same tokens whatever it
 * runs on. libsodium stays the reference: tests/unit/test_hmac.c compares the
 * two for keys and messages of every length that matters, and the pseudonym
 * known-answer vectors run on whichever path the machine takes.
 *
 * Only the finishing of a keyed state is accelerated; keying (rare) and every
 * other use of SHA-256 stay in libsodium.
 *
 * Thread-safe: no state beyond a CPU feature flag read once.
 */
#ifndef PS_HMAC_H
#define PS_HMAC_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#define PS_HMAC_BYTES 32
/* Most bytes ps_hmac_finish takes in all parts together. */
#define PS_HMAC_MESSAGE_MAX 1024

/* One piece of the message; the HMAC is of the pieces concatenated. */
struct ps_hmac_part {
    const void *data;
    size_t len;
};

/* out = HMAC-SHA256(key, parts concatenated), where keyed is the state
 * crypto_auth_hmacsha256_init(keyed, key, key_len) made and nothing updated
 * since. keyed is read, never changed, so one keyed state serves any number
 * of threads. Uses the SHA extensions when ps_hmac_accelerated(), libsodium
 * otherwise; the result is the same. Intermediate values on the stack are
 * wiped. Returns 0, or -1 (out untouched) when the parts together exceed
 * PS_HMAC_MESSAGE_MAX. */
int ps_hmac_finish(const crypto_auth_hmacsha256_state *keyed, const struct ps_hmac_part *parts,
                   size_t count, uint8_t out[PS_HMAC_BYTES]);

/* 1 when this process computes ps_hmac_finish with the SHA extensions. The
 * environment variable PS_SHA_PORTABLE=1, read once, forces the
 * libsodium path (for benchmarks and tests of the fallback). */
int ps_hmac_accelerated(void);

/* The two paths by name, for tests that compare them. ps_hmac_finish_hw
 * returns -1 when the processor lacks the extensions. */
int ps_hmac_finish_hw(const crypto_auth_hmacsha256_state *keyed,
                      const struct ps_hmac_part *parts, size_t count, uint8_t out[PS_HMAC_BYTES]);
int ps_hmac_finish_portable(const crypto_auth_hmacsha256_state *keyed,
                            const struct ps_hmac_part *parts, size_t count,
                            uint8_t out[PS_HMAC_BYTES]);

#endif
