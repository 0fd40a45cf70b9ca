/*
 * ps_passphrase: passphrase protection for keyring files (docs/KEYRING.md).
 *
 *   key        = Argon2id(passphrase, salt, opslimit, memlimit)    crypto_pwhash, 32 bytes
 *   ciphertext = XChaCha20-Poly1305-IETF(key, nonce, ad, plaintext)
 *   ad         = "pseudostream/v1/keyring"
 *
 * salt is 16 random bytes, nonce 24 random bytes, both new for every
 * encryption. The plaintext is the ordinary keyring YAML. A wrong passphrase
 * and a damaged file are the same failure (the tag does not verify): the
 * message says so and nothing else.
 *
 * A passphrase is held in guarded memory (sodium_malloc) and wiped when it is
 * destroyed. It comes from a file (refused when group or others may read it;
 * one trailing newline is dropped) or from the environment:
 * PSEUDOSTREAM_KEYRING_PASSPHRASE_FILE names such a file,
 * PSEUDOSTREAM_KEYRING_PASSPHRASE holds the passphrase itself.
 *
 * Nothing here is shared between threads; each call is independent.
 */
#ifndef PS_PASSPHRASE_H
#define PS_PASSPHRASE_H

#include <stddef.h>
#include <stdint.h>

#include "ps_error.h"

#define PS_PASSPHRASE_ENV "PSEUDOSTREAM_KEYRING_PASSPHRASE"
#define PS_PASSPHRASE_FILE_ENV "PSEUDOSTREAM_KEYRING_PASSPHRASE_FILE"
/* Longest passphrase accepted (bytes). */
#define PS_PASSPHRASE_MAX 1024

#define PS_PASSBOX_KDF "argon2id13"
#define PS_PASSBOX_CIPHER "xchacha20poly1305-ietf"
#define PS_PASSBOX_SALT_BYTES 16
#define PS_PASSBOX_NONCE_BYTES 24

struct ps_passphrase;

/* A passphrase from bytes (len 1 to PS_PASSPHRASE_MAX). PS_ERR_CONFIG when
 * empty or too long, PS_ERR_NOMEM. */
ps_err_t ps_passphrase_from_text(const char *text, size_t len, struct ps_passphrase **pp_p,
                                 struct ps_error *err);
/* A passphrase from a file: PS_ERR_PERMISSION when group or others may read
 * it, PS_ERR_IO, PS_ERR_CONFIG when empty or too long. */
ps_err_t ps_passphrase_from_file(const char *path, struct ps_passphrase **pp_p,
                                 struct ps_error *err);
/* file when not NULL; else $PSEUDOSTREAM_KEYRING_PASSPHRASE_FILE; else
 * $PSEUDOSTREAM_KEYRING_PASSPHRASE. PS_ERR_CONFIG (naming the three ways)
 * when none is set. */
ps_err_t ps_passphrase_resolve(const char *file, struct ps_passphrase **pp_p,
                               struct ps_error *err);
/* Wipes and frees. NULL is a no-op. */
void ps_passphrase_destroy(struct ps_passphrase *pp);

/* Argon2id cost. ps_passbox_params_default: libsodium's MODERATE (3 passes,
 * 256 MiB). Opening accepts from crypto_pwhash's minimum up to SENSITIVE's
 * memory (1 GiB) and four times its passes, so that a hostile file cannot ask
 * for unbounded work. */
struct ps_passbox_params {
    uint64_t opslimit;
    uint64_t memlimit;
};
void ps_passbox_params_default(struct ps_passbox_params *params);
/* libsodium's INTERACTIVE (2 passes, 64 MiB), for tests. */
void ps_passbox_params_interactive(struct ps_passbox_params *params);

/* The encrypted form as it is written to a file: base64 (standard, padded).
 * Strings are owned (malloc) and freed by ps_passbox_clear. */
struct ps_passbox {
    struct ps_passbox_params params;
    char *salt_b64;
    char *nonce_b64;
    char *ciphertext_b64;
};

/* Encrypts plain (len bytes) with pp. params NULL: the default. Fills box
 * (to be cleared with ps_passbox_clear). PS_ERR_INVALID for parameters out of
 * range, PS_ERR_NOMEM (Argon2id could not get its memory). */
ps_err_t ps_passbox_seal(const struct ps_passphrase *pp, const struct ps_passbox_params *params,
                         const void *plain, size_t len, struct ps_passbox *box,
                         struct ps_error *err);

/* Decrypts box with pp. On success *plain_p is NUL-terminated plaintext in
 * guarded memory (free with ps_passbox_plain_free) and *len_p its length.
 * origin names the file in messages. PS_ERR_CONFIG for a malformed box or
 * parameters out of range, and also, with only "wrong passphrase or damaged
 * file", when the tag does not verify; PS_ERR_NOMEM. */
ps_err_t ps_passbox_open(const struct ps_passphrase *pp, const struct ps_passbox *box,
                         const char *origin, char **plain_p, size_t *len_p,
                         struct ps_error *err);
/* Wipes and frees plaintext from ps_passbox_open. NULL is a no-op. */
void ps_passbox_plain_free(char *plain);
/* Frees the strings of box and zeroes it. NULL is a no-op. */
void ps_passbox_clear(struct ps_passbox *box);

#endif
