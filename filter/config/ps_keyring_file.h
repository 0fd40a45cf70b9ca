/*
 * ps_keyring_file: the keyring file, read with libcyaml.
 *
 *   # pseudostream keyring: keep it mode 0600, owned by the service user
 *   keys:
 *     - id: 1
 *       not_before: "2024-01-01T00:00:00Z"
 *       secret: "<base64 of 32 random bytes>"
 *     - id: 2
 *       not_before: "2026-06-01T00:00:00Z"
 *       secret: "..."
 *       retired: false
 *
 * A passphrase-protected keyring is a second form of the same file
 * (docs/KEYRING.md), whose ciphertext holds the text above:
 *
 *   encrypted:
 *     kdf: argon2id13
 *     opslimit: 3
 *     memlimit: 268435456
 *     salt: "<base64 of 16 bytes>"
 *     cipher: xchacha20poly1305-ietf
 *     nonce: "<base64 of 24 bytes>"
 *     ciphertext: "<base64>"
 *
 * Loading tells the two forms apart by the top-level key and decrypts in
 * guarded memory (ps_passphrase.h); a wrong passphrase is one message that
 * says only that.
 *
 * The file is refused (PS_ERR_PERMISSION) when group or others may read it.
 * Secrets are wiped from the loaded document when it is destroyed. No error
 * message repeats a secret: libcyaml's own messages (which echo values) are
 * not passed through for the secret field.
 */
#ifndef PS_KEYRING_FILE_H
#define PS_KEYRING_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "ps_error.h"
#include "ps_passphrase.h"

struct ps_keyring_file_key {
    uint32_t id;
    int64_t not_before_ms;
    int retired;
    char *secret_b64;
};

struct ps_keyring_file {
    char *file;
    struct ps_keyring_file_key *keys;
    size_t key_count;
    int encrypted;                        /* 1 when loaded from the passphrase form */
    struct ps_passbox_params kdf;         /* its Argon2id cost (when encrypted) */
};

/* Loads path; checks its mode first. A passphrase-protected file is opened
 * with the passphrase of the environment (ps_passphrase_resolve(NULL)). */
ps_err_t ps_keyring_file_load(const char *path, struct ps_keyring_file **kf_p,
                              struct ps_error *err);
/* As ps_keyring_file_load, with the passphrase read from passphrase_file when
 * the file is protected (NULL: from the environment). A plain file loads as
 * it is whatever passphrase_file says. */
ps_err_t ps_keyring_file_load_with_passphrase(const char *path, const char *passphrase_file,
                                              struct ps_keyring_file **kf_p,
                                              struct ps_error *err);
/* As ps_keyring_file_load with a passphrase already in hand (pp NULL: a
 * protected file fails with PS_ERR_CONFIG saying how to give one). */
ps_err_t ps_keyring_file_load_pp(const char *path, const struct ps_passphrase *pp,
                                 struct ps_keyring_file **kf_p, struct ps_error *err);
/* Sets *encrypted_p to 1 when path is a passphrase-protected keyring, 0 when
 * it is a plain one (the form is not otherwise checked). Checks the mode as
 * loading does. PS_ERR_IO, PS_ERR_PERMISSION, PS_ERR_CONFIG. */
ps_err_t ps_keyring_file_is_encrypted(const char *path, int *encrypted_p, struct ps_error *err);
/* Wipes the secrets and frees. NULL is a no-op. */
void ps_keyring_file_destroy(struct ps_keyring_file *kf);

#endif
