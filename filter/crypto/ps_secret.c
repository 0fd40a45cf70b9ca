#include "ps_secret.h"

#include <sodium.h>

#include "ps_keyring.h"

ps_err_t ps_secret_new_b64(char out[PS_SECRET_B64_MAX], struct ps_error *err)
{
    unsigned char secret[32];
    ps_err_t rc = ps_crypto_init(err);
    if (rc != PS_OK) {
        return rc;
    }
    randombytes_buf(secret, sizeof(secret));
    sodium_bin2base64(out, PS_SECRET_B64_MAX, secret, sizeof(secret),
                      sodium_base64_VARIANT_ORIGINAL);
    sodium_memzero(secret, sizeof(secret));
    return PS_OK;
}
