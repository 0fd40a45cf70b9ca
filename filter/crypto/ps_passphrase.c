#include "ps_passphrase.h"
#include "ps_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "ps_keyring.h"

#define PASSBOX_AD "pseudostream/v1/keyring"
#define PASSBOX_KEY_BYTES crypto_aead_xchacha20poly1305_ietf_KEYBYTES
/* The plaintext is a keyring file, which the loader caps at 64 KiB. */
#define PASSBOX_PLAIN_MAX (64 * 1024)
/* Opening bounds: a file may not ask for more work than SENSITIVE's memory and
 * four times its passes (a few seconds), whoever wrote it. */
#define PASSBOX_OPS_OPEN_MAX (4 * (uint64_t)crypto_pwhash_OPSLIMIT_SENSITIVE)
#define PASSBOX_MEM_OPEN_MAX ((uint64_t)crypto_pwhash_MEMLIMIT_SENSITIVE)

struct ps_passphrase {
    char *text; /* sodium_malloc, len bytes */
    size_t len;
};

ps_err_t ps_passphrase_from_text(const char *text, size_t len, struct ps_passphrase **pp_p,
                                 struct ps_error *err)
{
    if (!text || !pp_p) {
        return ps_error_set(err, PS_ERR_INVALID, "ps_passphrase_from_text: missing argument");
    }
    if (len == 0) {
        return ps_error_set(err, PS_ERR_CONFIG, "the keyring passphrase is empty");
    }
    if (len > PS_PASSPHRASE_MAX) {
        return ps_error_set(err, PS_ERR_CONFIG, "the keyring passphrase is longer than %d bytes",
                            PS_PASSPHRASE_MAX);
    }
    ps_err_t rc = ps_crypto_init(err);
    if (rc != PS_OK) {
        return rc;
    }
    struct ps_passphrase *pp = calloc(1, sizeof(*pp));
    if (!pp) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory");
    }
    pp->text = sodium_malloc(len);
    if (!pp->text) {
        free(pp);
        return ps_error_set(err, PS_ERR_NOMEM, "out of guarded memory for the passphrase");
    }
    memcpy(pp->text, text, len);
    pp->len = len;
    *pp_p = pp;
    return PS_OK;
}

ps_err_t ps_passphrase_from_file(const char *path, struct ps_passphrase **pp_p,
                                 struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    /* One byte more than the longest passphrase and its newline, to see that
     * a file is too long without reading all of it. */
    const size_t cap = PS_PASSPHRASE_MAX + 3;

    if (!path || !pp_p) {
        return ps_error_set(err, PS_ERR_INVALID, "ps_passphrase_from_file: missing argument");
    }
    rc = ps_crypto_init(err);
    if (rc != PS_OK) {
        return rc;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return ps_error_set_at(err, PS_ERR_IO, path, 0, 0, "cannot open: %s", strerror(errno));
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = ps_error_set_at(err, PS_ERR_IO, path, 0, 0, "not a readable regular file");
        goto cleanup;
    }
    if ((st.st_mode & 077) != 0) {
        rc = ps_error_set_at(err, PS_ERR_PERMISSION, path, 0, 0,
                             "holds the keyring passphrase but group or others may access it "
                             "(mode %04o); run: chmod 600 %s",
                             (unsigned)(st.st_mode & 07777), path);
        goto cleanup;
    }
    buf = sodium_malloc(cap);
    if (!buf) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "out of guarded memory for the passphrase");
        goto cleanup;
    }
    rc = ps_file_read_fd(fd, path, buf, cap, &len, err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    /* Files written by editors and `echo` end in a newline that is not part
     * of the passphrase; anything else is kept as it is. */
    if (len > 0 && buf[len - 1] == '\n') {
        len--;
        if (len > 0 && buf[len - 1] == '\r') {
            len--;
        }
    }
    rc = ps_passphrase_from_text(buf, len, pp_p, err);
    if (rc != PS_OK) {
        ps_error_prefix(err, "%s", path);
    }

cleanup:
    if (buf) {
        sodium_free(buf);
    }
    close(fd);
    return rc;
}

ps_err_t ps_passphrase_resolve(const char *file, struct ps_passphrase **pp_p,
                               struct ps_error *err)
{
    if (file && file[0]) {
        return ps_passphrase_from_file(file, pp_p, err);
    }
    const char *env_file = getenv(PS_PASSPHRASE_FILE_ENV);
    if (env_file && env_file[0]) {
        return ps_passphrase_from_file(env_file, pp_p, err);
    }
    const char *env = getenv(PS_PASSPHRASE_ENV);
    if (env && env[0]) {
        return ps_passphrase_from_text(env, strlen(env), pp_p, err);
    }
    return ps_error_set(err, PS_ERR_CONFIG,
                        "the keyring is passphrase-protected but no passphrase was given: set "
                        "keyring_passphrase_file in the configuration, or " PS_PASSPHRASE_FILE_ENV
                        " to a file of mode 0600 (keyring commands: --passphrase-file FILE)");
}

void ps_passphrase_destroy(struct ps_passphrase *pp)
{
    if (!pp) {
        return;
    }
    if (pp->text) {
        sodium_free(pp->text);
    }
    free(pp);
}

void ps_passbox_params_default(struct ps_passbox_params *params)
{
    params->opslimit = crypto_pwhash_OPSLIMIT_MODERATE;
    params->memlimit = crypto_pwhash_MEMLIMIT_MODERATE;
}

void ps_passbox_params_interactive(struct ps_passbox_params *params)
{
    params->opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
    params->memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
}

static char *b64_new(const unsigned char *bin, size_t len)
{
    size_t size = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
    char *out = malloc(size);
    if (out) {
        sodium_bin2base64(out, size, bin, len, sodium_base64_VARIANT_ORIGINAL);
    }
    return out;
}

/* Decodes exactly expect bytes (expect 0: any length up to max into *bin_p,
 * malloc). Returns 0 on success. */
static int b64_decode(const char *b64, size_t expect, size_t max, unsigned char **bin_p,
                      size_t *len_p)
{
    if (!b64) {
        return -1;
    }
    size_t b64_len = strlen(b64);
    size_t cap = b64_len / 4 * 3 + 3;
    if (expect) {
        cap = expect;
    } else if (cap > max) {
        return -1;
    }
    unsigned char *bin = malloc(cap ? cap : 1);
    size_t len = 0;
    const char *end = NULL;
    if (!bin || sodium_base642bin(bin, cap, b64, b64_len, NULL, &len, &end,
                                  sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != b64 + b64_len || (expect && len != expect)) {
        free(bin);
        return -1;
    }
    *bin_p = bin;
    *len_p = len;
    return 0;
}

static ps_err_t derive_key(const struct ps_passphrase *pp, const struct ps_passbox_params *params,
                           const unsigned char salt[PS_PASSBOX_SALT_BYTES], unsigned char *key,
                           struct ps_error *err)
{
    if (crypto_pwhash(key, PASSBOX_KEY_BYTES, pp->text, pp->len, salt, params->opslimit,
                      (size_t)params->memlimit, crypto_pwhash_ALG_ARGON2ID13) != 0) {
        return ps_error_set(err, PS_ERR_NOMEM, "Argon2id could not get %llu bytes of memory",
                            (unsigned long long)params->memlimit);
    }
    return PS_OK;
}

ps_err_t ps_passbox_seal(const struct ps_passphrase *pp, const struct ps_passbox_params *params,
                         const void *plain, size_t len, struct ps_passbox *box,
                         struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    struct ps_passbox_params def;
    unsigned char salt[PS_PASSBOX_SALT_BYTES], nonce[PS_PASSBOX_NONCE_BYTES];
    unsigned char *key = NULL, *ct = NULL;
    unsigned long long ct_len = 0;
    struct ps_passbox out = {0};

    if (!pp || !box || (!plain && len > 0)) {
        return ps_error_set(err, PS_ERR_INVALID, "ps_passbox_seal: missing argument");
    }
    if (!params) {
        ps_passbox_params_default(&def);
        params = &def;
    }
    /* Below INTERACTIVE the passphrase is cheap to guess; above the opening
     * bounds no replica could open what we wrote. */
    if (params->opslimit < crypto_pwhash_OPSLIMIT_INTERACTIVE ||
        params->opslimit > PASSBOX_OPS_OPEN_MAX ||
        params->memlimit < crypto_pwhash_MEMLIMIT_INTERACTIVE ||
        params->memlimit > PASSBOX_MEM_OPEN_MAX) {
        return ps_error_set(err, PS_ERR_INVALID, "Argon2id parameters out of range");
    }
    if (len > PASSBOX_PLAIN_MAX) {
        return ps_error_set(err, PS_ERR_INVALID, "keyring text is larger than %d bytes",
                            PASSBOX_PLAIN_MAX);
    }
    rc = ps_crypto_init(err);
    if (rc != PS_OK) {
        return rc;
    }
    key = sodium_malloc(PASSBOX_KEY_BYTES);
    ct = malloc(len + crypto_aead_xchacha20poly1305_ietf_ABYTES);
    if (!key || !ct) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    randombytes_buf(salt, sizeof(salt));
    randombytes_buf(nonce, sizeof(nonce));
    rc = derive_key(pp, params, salt, key, err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    crypto_aead_xchacha20poly1305_ietf_encrypt(ct, &ct_len, plain, len,
                                               (const unsigned char *)PASSBOX_AD,
                                               strlen(PASSBOX_AD), NULL, nonce, key);
    out.params = *params;
    out.salt_b64 = b64_new(salt, sizeof(salt));
    out.nonce_b64 = b64_new(nonce, sizeof(nonce));
    out.ciphertext_b64 = b64_new(ct, (size_t)ct_len);
    if (!out.salt_b64 || !out.nonce_b64 || !out.ciphertext_b64) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    *box = out;
    memset(&out, 0, sizeof(out));

cleanup:
    ps_passbox_clear(&out);
    if (key) {
        sodium_free(key);
    }
    free(ct);
    return rc;
}

ps_err_t ps_passbox_open(const struct ps_passphrase *pp, const struct ps_passbox *box,
                         const char *origin, char **plain_p, size_t *len_p,
                         struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    unsigned char *salt = NULL, *nonce = NULL, *ct = NULL, *key = NULL;
    size_t salt_len = 0, nonce_len = 0, ct_len = 0;
    char *plain = NULL;
    unsigned long long plain_len = 0;
    const char *name = origin ? origin : "keyring";

    if (!pp || !box || !plain_p || !len_p) {
        return ps_error_set(err, PS_ERR_INVALID, "ps_passbox_open: missing argument");
    }
    rc = ps_crypto_init(err);
    if (rc != PS_OK) {
        return rc;
    }
    if (box->params.opslimit < crypto_pwhash_OPSLIMIT_MIN ||
        box->params.opslimit > PASSBOX_OPS_OPEN_MAX ||
        box->params.memlimit < crypto_pwhash_MEMLIMIT_MIN ||
        box->params.memlimit > PASSBOX_MEM_OPEN_MAX) {
        return ps_error_set(err, PS_ERR_CONFIG,
                            "%s: encrypted.opslimit must be %u to %llu and encrypted.memlimit "
                            "%u to %llu", name, (unsigned)crypto_pwhash_OPSLIMIT_MIN,
                            (unsigned long long)PASSBOX_OPS_OPEN_MAX,
                            (unsigned)crypto_pwhash_MEMLIMIT_MIN,
                            (unsigned long long)PASSBOX_MEM_OPEN_MAX);
    }
    if (b64_decode(box->salt_b64, PS_PASSBOX_SALT_BYTES, 0, &salt, &salt_len) != 0) {
        rc = ps_error_set(err, PS_ERR_CONFIG, "%s: encrypted.salt must be the base64 of %d bytes",
                          name, PS_PASSBOX_SALT_BYTES);
        goto cleanup;
    }
    if (b64_decode(box->nonce_b64, PS_PASSBOX_NONCE_BYTES, 0, &nonce, &nonce_len) != 0) {
        rc = ps_error_set(err, PS_ERR_CONFIG,
                          "%s: encrypted.nonce must be the base64 of %d bytes", name,
                          PS_PASSBOX_NONCE_BYTES);
        goto cleanup;
    }
    if (b64_decode(box->ciphertext_b64, 0,
                   PASSBOX_PLAIN_MAX + crypto_aead_xchacha20poly1305_ietf_ABYTES, &ct,
                   &ct_len) != 0 ||
        ct_len < crypto_aead_xchacha20poly1305_ietf_ABYTES) {
        rc = ps_error_set(err, PS_ERR_CONFIG,
                          "%s: encrypted.ciphertext must be standard base64 of at most %d bytes",
                          name, PASSBOX_PLAIN_MAX + crypto_aead_xchacha20poly1305_ietf_ABYTES);
        goto cleanup;
    }
    key = sodium_malloc(PASSBOX_KEY_BYTES);
    plain = sodium_malloc(ct_len + 1);
    if (!key || !plain) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "out of guarded memory opening %s", name);
        goto cleanup;
    }
    rc = derive_key(pp, &box->params, salt, key, err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    if (crypto_aead_xchacha20poly1305_ietf_decrypt((unsigned char *)plain, &plain_len, NULL, ct,
                                                   ct_len, (const unsigned char *)PASSBOX_AD,
                                                   strlen(PASSBOX_AD), nonce, key) != 0) {
        /* The tag says nothing about why: a wrong passphrase and a changed
         * byte look the same, and nothing of the content is known. */
        rc = ps_error_set(err, PS_ERR_CONFIG,
                          "%s: cannot decrypt the keyring: wrong passphrase or damaged file",
                          name);
        goto cleanup;
    }
    plain[plain_len] = '\0';
    *plain_p = plain;
    *len_p = (size_t)plain_len;
    plain = NULL;

cleanup:
    if (plain) {
        sodium_free(plain);
    }
    if (key) {
        sodium_free(key);
    }
    free(salt);
    free(nonce);
    free(ct);
    return rc;
}

void ps_passbox_plain_free(char *plain)
{
    if (plain) {
        sodium_free(plain);
    }
}

void ps_passbox_clear(struct ps_passbox *box)
{
    if (!box) {
        return;
    }
    free(box->salt_b64);
    free(box->nonce_b64);
    free(box->ciphertext_b64);
    memset(box, 0, sizeof(*box));
}
