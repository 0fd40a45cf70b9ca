/*
 * ps_pseudonym: reproducible pseudonyms per domain (DESIGN.md §6).
 *
 *   domain_key = HMAC-SHA256(key = master_secret[k], msg = "pseudostream/v1/domain/" || domain)
 *   digest     = HMAC-SHA256(key = domain_key,       msg = kind || ":" || normalised_value)
 *   token      = decimal(k) || "." || base32(digest[0..20))
 *
 * base32 is RFC 4648's alphabet in lower case without padding (32 characters
 * for 20 bytes). kind is the tag in lower case ("nhs_number", "local_id").
 *
 * Normalisation: an NHS number is reduced to its ten digits and must pass the
 * modulus-11 check (PS_ERR_NHS_INVALID otherwise: never pseudonymised); every
 * other kind is trimmed of leading and trailing white space and upper-cased
 * (ASCII), and must not be empty (PS_ERR_TRANSFORM).
 *
 * A pseudonymiser holds, for one domain, a pre-keyed HMAC state per keyring
 * entry (in guarded memory), so a token costs one state copy and two blocks.
 * It is immutable once built and may be shared between threads.
 */
#ifndef PS_PSEUDONYM_H
#define PS_PSEUDONYM_H

#include <stddef.h>
#include <stdint.h>

#include "ps_error.h"
#include "ps_keyring.h"

/* Longest token: 10 digits of key id, '.', 32 base32 characters, NUL. */
#define PS_TOKEN_MAX 48
/* Longest normalised value accepted (bytes). */
#define PS_PSEUDONYM_VALUE_MAX 256

struct ps_pseudonymiser;

/* Derives the domain keys of every keyring entry. The keyring must outlive
 * the pseudonymiser. PS_ERR_INVALID for an empty domain. */
ps_err_t ps_pseudonymiser_new(const struct ps_keyring *kr, const char *domain,
                              struct ps_pseudonymiser **p_p, struct ps_error *err);
/* Wipes and frees. NULL is a no-op. */
void ps_pseudonymiser_destroy(struct ps_pseudonymiser *p);

const char *ps_pseudonymiser_domain(const struct ps_pseudonymiser *p);

/* The token of value (len bytes) of the given kind, with the key chosen by
 * event_time_ms. Writes a NUL-terminated token to token (PS_TOKEN_MAX bytes)
 * and the key id to *key_id_p (may be NULL). PS_ERR_NHS_INVALID,
 * PS_ERR_TRANSFORM, PS_ERR_NO_KEY; messages never repeat the value. */
ps_err_t ps_pseudonymise(const struct ps_pseudonymiser *p, int64_t event_time_ms,
                         const char *kind, const char *value, size_t len,
                         char token[PS_TOKEN_MAX], uint32_t *key_id_p, struct ps_error *err);

/* As ps_pseudonymise with an explicit key id (PS_ERR_NO_KEY if unknown). */
ps_err_t ps_pseudonymise_with_key(const struct ps_pseudonymiser *p, uint32_t key_id,
                                  const char *kind, const char *value, size_t len,
                                  char token[PS_TOKEN_MAX], struct ps_error *err);

/* RFC 4648 base32, lower case, no padding. out needs ceil(8*len/5)+1 bytes
 * (8*ceil(len/5)+1 always suffices); returns the characters written (NUL
 * added). When size is too small nothing is encoded: returns 0 and, if size
 * is not 0, writes an empty string. */
size_t ps_base32_encode(const uint8_t *data, size_t len, char *out, size_t size);

#endif
