#include "ps_pseudonym.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ps_hmac.h"
#include "ps_log.h"
#include "ps_nhs.h"

#define DOMAIN_PREFIX "pseudostream/v1/domain/"
/* Bytes of the digest that make the token: 160 bits, 32 base32 characters. */
#define TOKEN_DIGEST_BYTES 20
/* A kind is a tag name; bounding it keeps the hashed message small and the
 * check cheap. */
#define KIND_MAX 32
_Static_assert(KIND_MAX + 1 + PS_PSEUDONYM_VALUE_MAX <= PS_HMAC_MESSAGE_MAX,
               "a pseudonym's message must fit ps_hmac_finish");
_Static_assert(10 + 1 + 32 + 1 <= PS_TOKEN_MAX, "key id, '.', base32 digest and NUL");

/*
 * states[i] is an HMAC-SHA256 state already keyed with entry i's domain key,
 * so a token is one struct copy plus the update and final of a short message,
 * instead of re-deriving the inner and outer pads every time. The states are
 * as good as the domain keys, so they live in guarded, locked, read-only
 * memory like the master secrets.
 *
 * The region holds count states back to back. sodium_malloc returns memory
 * that ENDS at a page boundary; as sizeof is a multiple of the type's
 * alignment, the start of the array is suitably aligned too.
 */
struct ps_pseudonymiser {
    const struct ps_keyring *kr;
    char *domain;
    size_t count;
    uint32_t *ids; /* ids[i] of keyring entry i, strictly increasing */
    crypto_auth_hmacsha256_state *states;
    size_t states_size;
};

ps_err_t ps_pseudonymiser_new(const struct ps_keyring *kr, const char *domain,
                              struct ps_pseudonymiser **p_p, struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    struct ps_pseudonymiser *p = NULL;
    crypto_auth_hmacsha256_state st;
    uint8_t domain_key[crypto_auth_hmacsha256_BYTES];

    if (!kr || !p_p) {
        return ps_error_set(err, PS_ERR_INVALID, "ps_pseudonymiser_new: missing argument");
    }
    if (!domain || !domain[0]) {
        return ps_error_set(err, PS_ERR_INVALID, "pseudonym domain is empty");
    }
    rc = ps_crypto_init(err);
    if (rc != PS_OK) {
        return rc;
    }
    size_t count = ps_keyring_count(kr);
    if (count == 0 || count > SIZE_MAX / sizeof(*p->states)) {
        return ps_error_set(err, PS_ERR_INVALID, "pseudonym domain '%s': keyring has no usable "
                            "keys", domain);
    }

    p = calloc(1, sizeof(*p));
    if (!p) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "pseudonym domain '%s': out of memory", domain);
        goto cleanup;
    }
    p->kr = kr;
    p->count = count;
    p->domain = strdup(domain);
    p->ids = calloc(count, sizeof(*p->ids));
    if (!p->domain || !p->ids) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "pseudonym domain '%s': out of memory", domain);
        goto cleanup;
    }
    p->states_size = count * sizeof(*p->states);
    p->states = sodium_malloc(p->states_size);
    if (!p->states) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "pseudonym domain '%s': guarded memory could not "
                          "be allocated", domain);
        goto cleanup;
    }
    /* As for the keyring: sodium_malloc does not tell whether its lock held.
     * The keyring reports its own lock to the caller; a failure here has the
     * same cause, so a warning is enough. */
    if (sodium_mlock(p->states, p->states_size) != 0) {
        PS_WARN("crypto", "mlock_failed", "pseudonym domain keys could not be locked in memory "
                "and may be swapped out: raise RLIMIT_MEMLOCK");
    }

    for (size_t i = 0; i < count; i++) {
        size_t secret_len = 0;
        const uint8_t *secret = ps_keyring_secret(kr, i, &secret_len);
        ps_keyring_info(kr, i, &p->ids[i], NULL, NULL);
        if (!secret) {
            rc = ps_error_set(err, PS_ERR_INVALID, "pseudonym domain '%s': keyring entry %zu has "
                              "no secret", domain, i);
            goto cleanup;
        }
        crypto_auth_hmacsha256_init(&st, secret, secret_len);
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)DOMAIN_PREFIX,
                                      sizeof(DOMAIN_PREFIX) - 1);
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)domain, strlen(domain));
        crypto_auth_hmacsha256_final(&st, domain_key);
        crypto_auth_hmacsha256_init(&p->states[i], domain_key, sizeof(domain_key));
    }
    if (sodium_mprotect_readonly(p->states) != 0) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "pseudonym domain '%s': guarded memory could not be "
                          "made read-only", domain);
        goto cleanup;
    }

    *p_p = p;
    p = NULL;

cleanup:
    sodium_memzero(&st, sizeof(st));
    sodium_memzero(domain_key, sizeof(domain_key));
    ps_pseudonymiser_destroy(p);
    return rc;
}

void ps_pseudonymiser_destroy(struct ps_pseudonymiser *p)
{
    if (!p) {
        return;
    }
    if (p->states) {
        /* Wipes (sodium_munlock zeroes) before unmapping. */
        sodium_free(p->states);
    }
    free(p->ids);
    free(p->domain);
    free(p);
}

const char *ps_pseudonymiser_domain(const struct ps_pseudonymiser *p)
{
    return p ? p->domain : NULL;
}

/* Kinds are lower-case tag names. Refusing ':' in particular keeps
 * kind ":" value unambiguous, so no two (kind, value) pairs hash alike. */
static int kind_valid(const char *kind)
{
    size_t n = 0;
    for (; kind[n]; n++) {
        char c = kind[n];
        if (n >= KIND_MAX || !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
            return 0;
        }
    }
    return n > 0;
}

static int ascii_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Writes the normalised value to out (PS_PSEUDONYM_VALUE_MAX bytes, not
 * NUL-terminated) and its length to *out_len_p. */
static ps_err_t normalise(const char *kind, const char *value, size_t len, char *out,
                          size_t *out_len_p, struct ps_error *err)
{
    if (strcmp(kind, "nhs_number") == 0) {
        char digits[PS_NHS_DIGITS + 1];
        ps_err_t rc = ps_nhs_normalise(value, len, digits, err);
        if (rc == PS_OK) {
            memcpy(out, digits, PS_NHS_DIGITS);
            *out_len_p = PS_NHS_DIGITS;
        }
        sodium_memzero(digits, sizeof(digits));
        return rc;
    }
    size_t start = 0;
    size_t end = len;
    while (start < end && ascii_space(value[start])) {
        start++;
    }
    while (end > start && ascii_space(value[end - 1])) {
        end--;
    }
    if (start == end) {
        return ps_error_set(err, PS_ERR_TRANSFORM, "value of kind '%s' is empty", kind);
    }
    if (end - start > PS_PSEUDONYM_VALUE_MAX) {
        return ps_error_set(err, PS_ERR_TRANSFORM, "value of kind '%s' is longer than %d bytes",
                            kind, PS_PSEUDONYM_VALUE_MAX);
    }
    /* ASCII only, byte by byte: toupper() would follow the locale, and any
     * other implementation must be able to reproduce this exactly. */
    for (size_t i = start; i < end; i++) {
        char c = value[i];
        out[i - start] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
    }
    *out_len_p = end - start;
    return PS_OK;
}

static ps_err_t key_index(const struct ps_pseudonymiser *p, uint32_t key_id, size_t *i_p,
                          struct ps_error *err)
{
    size_t lo = 0;
    size_t hi = p->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->ids[mid] == key_id) {
            *i_p = mid;
            return PS_OK;
        }
        if (p->ids[mid] < key_id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return ps_error_set(err, PS_ERR_NO_KEY, "pseudonym domain '%s': key %u is not in the keyring",
                        p->domain, (unsigned)key_id);
}

/* key_id in decimal and '.', at out; returns the characters written. */
static size_t put_key_id(char *out, uint32_t key_id)
{
    char rev[10];
    size_t n = 0;
    do {
        rev[n++] = (char)('0' + key_id % 10);
        key_id /= 10;
    } while (key_id);
    for (size_t i = 0; i < n; i++) {
        out[i] = rev[n - 1 - i];
    }
    out[n] = '.';
    return n + 1;
}

/* The shared tail of both entry points once the key is known. The token is
 * not secret (it is what is published); the normalised value and the whole
 * digest are, and are wiped. */
static ps_err_t make_token(const struct ps_pseudonymiser *p, size_t i, const char *kind,
                           const char *value, size_t len, char token[PS_TOKEN_MAX],
                           struct ps_error *err)
{
    char norm[PS_PSEUDONYM_VALUE_MAX];
    size_t norm_len = 0;
    uint8_t digest[PS_HMAC_BYTES];

    ps_err_t rc = normalise(kind, value, len, norm, &norm_len, err);
    if (rc != PS_OK) {
        sodium_memzero(norm, sizeof(norm));
        return rc;
    }
    const struct ps_hmac_part parts[3] = {
        {kind, strlen(kind)}, {":", 1}, {norm, norm_len}};
    /* kind (at most KIND_MAX) + ':' + value (at most PS_PSEUDONYM_VALUE_MAX)
     * is well within PS_HMAC_MESSAGE_MAX, so this cannot fail. */
    (void)ps_hmac_finish(&p->states[i], parts, 3, digest);
    sodium_memzero(norm, norm_len);

    size_t n = put_key_id(token, p->ids[i]);
    (void)ps_base32_encode(digest, TOKEN_DIGEST_BYTES, token + n, PS_TOKEN_MAX - n);
    sodium_memzero(digest, sizeof(digest));
    return PS_OK;
}

static ps_err_t check_args(const struct ps_pseudonymiser *p, const char *kind, const char *value,
                           size_t len, const char *token, struct ps_error *err)
{
    if (!p || !kind || !token || (!value && len > 0)) {
        return ps_error_set(err, PS_ERR_INVALID, "ps_pseudonymise: missing argument");
    }
    if (!kind_valid(kind)) {
        return ps_error_set(err, PS_ERR_INVALID, "pseudonym kind must be a lower-case tag name "
                            "of at most %d characters", KIND_MAX);
    }
    return PS_OK;
}

ps_err_t ps_pseudonymise(const struct ps_pseudonymiser *p, int64_t event_time_ms,
                         const char *kind, const char *value, size_t len,
                         char token[PS_TOKEN_MAX], uint32_t *key_id_p, struct ps_error *err)
{
    uint32_t key_id = 0;
    size_t i = 0;
    ps_err_t rc = check_args(p, kind, value, len, token, err);
    if (rc == PS_OK) {
        rc = ps_keyring_select(p->kr, event_time_ms, &key_id, err);
    }
    if (rc == PS_OK) {
        rc = key_index(p, key_id, &i, err);
    }
    if (rc == PS_OK) {
        rc = make_token(p, i, kind, value ? value : "", len, token, err);
    }
    if (rc == PS_OK && key_id_p) {
        *key_id_p = key_id;
    }
    return rc;
}

ps_err_t ps_pseudonymise_with_key(const struct ps_pseudonymiser *p, uint32_t key_id,
                                  const char *kind, const char *value, size_t len,
                                  char token[PS_TOKEN_MAX], struct ps_error *err)
{
    size_t i = 0;
    ps_err_t rc = check_args(p, kind, value, len, token, err);
    if (rc == PS_OK) {
        rc = key_index(p, key_id, &i, err);
    }
    if (rc == PS_OK) {
        rc = make_token(p, i, kind, value ? value : "", len, token, err);
    }
    return rc;
}

size_t ps_base32_encode(const uint8_t *data, size_t len, char *out, size_t size)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

    if (!out || size == 0) {
        return 0;
    }
    if ((!data && len > 0) || len / 5 > (SIZE_MAX - 8) / 8) {
        out[0] = '\0';
        return 0;
    }
    /* ceil(8 * len / 5) characters, computed without overflowing 8 * len. */
    size_t need = len / 5 * 8 + (len % 5 * 8 + 4) / 5;
    if (need >= size) {
        out[0] = '\0';
        return 0;
    }
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 8) | data[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[n++] = alphabet[(acc >> bits) & 31];
        }
        acc &= (1u << bits) - 1; /* keep only the bits not yet emitted */
    }
    if (bits > 0) {
        out[n++] = alphabet[(acc << (5 - bits)) & 31];
    }
    out[n] = '\0';
    return n;
}
