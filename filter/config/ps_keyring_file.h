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
};

/* Loads path; checks its mode first. */
ps_err_t ps_keyring_file_load(const char *path, struct ps_keyring_file **kf_p,
                              struct ps_error *err);
/* Wipes the secrets and frees. NULL is a no-op. */
void ps_keyring_file_destroy(struct ps_keyring_file *kf);

#endif
