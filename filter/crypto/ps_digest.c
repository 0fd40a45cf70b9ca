#include "ps_digest.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

void ps_digest_sha256_hex(const void *data, size_t len, char hex[PS_DIGEST_HEX_LEN + 1])
{
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, data, len);
    sodium_bin2hex(hex, PS_DIGEST_HEX_LEN + 1, digest, sizeof(digest));
}

ps_err_t ps_digest_file_hex(const char *path, char hex[PS_DIGEST_HEX_LEN + 1],
                            struct ps_error *err)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        return ps_error_set(err, PS_ERR_IO, "%s: %s", path, strerror(errno));
    }
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    unsigned char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
        crypto_hash_sha256_update(&st, chunk, n);
    }
    int failed = ferror(fp);
    fclose(fp);
    if (failed) {
        return ps_error_set(err, PS_ERR_IO, "%s: read error", path);
    }
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&st, digest);
    sodium_bin2hex(hex, PS_DIGEST_HEX_LEN + 1, digest, sizeof(digest));
    return PS_OK;
}
