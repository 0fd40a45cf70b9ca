/*
 * ps_secret: new random secrets for keyrings, in the base64 a keyring file
 * holds. Used by the demo's throw-away keyring (and by keyring tooling).
 */
#ifndef PS_SECRET_H
#define PS_SECRET_H

#include <stddef.h>

#include "ps_error.h"

/* Base64 of 32 bytes is 44 characters; with the NUL, 45. */
#define PS_SECRET_B64_MAX 48

/* Writes the standard base64 of 32 fresh random bytes to out. */
ps_err_t ps_secret_new_b64(char out[PS_SECRET_B64_MAX], struct ps_error *err);

#endif
