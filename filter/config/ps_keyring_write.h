/*
 * ps_keyring_write: making and changing keyring files (the twin of
 * ps_keyring_file.h, which reads them; the format is in docs/KEYRING.md).
 *
 * Every write is atomic and private: the text goes to a temporary file of
 * mode 0600 in the same folder, is synced, and then takes the file's name
 * (rename, or link when an existing file must not be replaced), so a reader
 * sees the old keyring or the new one, never half of one, and never a
 * readable one. Every buffer that held a secret is wiped.
 *
 * Not thread-safe with respect to the same path: one writer at a time (an
 * operator's command, not the service).
 */
#ifndef PS_KEYRING_WRITE_H
#define PS_KEYRING_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "ps_error.h"
#include "ps_keyring_file.h"
#include "ps_passphrase.h"

struct ps_keyring_write_options {
    const struct ps_passphrase *passphrase; /* NULL: the plain form */
    const struct ps_passbox_params *params; /* Argon2id cost; NULL: the default */
    int create;                             /* 1: fail when path already exists */
};

/* A new keyring document with one key: id 1, not_before_ms, a fresh random
 * secret of 32 bytes. kf->file is set to path (may be NULL). */
ps_err_t ps_keyring_file_generate(const char *path, int64_t not_before_ms,
                                  struct ps_keyring_file **kf_p, struct ps_error *err);

/* Appends a key with id (largest id + 1) and a fresh random secret that takes
 * over for events from not_before_ms, which must be after every existing
 * key's not_before (PS_ERR_CONFIG otherwise, and when the largest id is
 * already 4294967295). Writes the new id to *id_p (may be NULL). */
ps_err_t ps_keyring_file_add_key(struct ps_keyring_file *kf, int64_t not_before_ms,
                                 uint32_t *id_p, struct ps_error *err);

/* The plain form of kf as YAML text, in *text_p (malloc, NUL-terminated; wipe
 * it with ps_keyring_text_free). PS_ERR_NOMEM. */
ps_err_t ps_keyring_file_text(const struct ps_keyring_file *kf, char **text_p, size_t *len_p,
                              struct ps_error *err);
/* Wipes and frees text from ps_keyring_file_text. NULL is a no-op. */
void ps_keyring_text_free(char *text, size_t len);

/* Writes kf to path in the plain form, or in the passphrase form when
 * opt->passphrase is set. opt may be NULL (plain, replace). PS_ERR_IO naming
 * the file (PS_ERR_IO with "already exists" when opt->create and it does),
 * PS_ERR_NOMEM, and the errors of ps_passbox_seal. */
ps_err_t ps_keyring_file_write(const char *path, const struct ps_keyring_file *kf,
                               const struct ps_keyring_write_options *opt,
                               struct ps_error *err);

#endif
