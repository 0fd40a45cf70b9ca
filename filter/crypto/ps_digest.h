/*
 * ps_digest: SHA-256 of bytes as lower-case hex, for content identities such
 * as the policy hash carried in every output's headers and audit records.
 * Not for secrets: pseudonyms use ps_pseudonym.
 */
#ifndef PS_DIGEST_H
#define PS_DIGEST_H

#include <stddef.h>

#include "ps_error.h"

#define PS_DIGEST_HEX_LEN 64

/* Writes 64 hex characters and a NUL to hex. */
void ps_digest_sha256_hex(const void *data, size_t len, char hex[PS_DIGEST_HEX_LEN + 1]);

/* SHA-256 of a file's bytes. PS_ERR_IO when it cannot be read. */
ps_err_t ps_digest_file_hex(const char *path, char hex[PS_DIGEST_HEX_LEN + 1],
                            struct ps_error *err);

#endif
