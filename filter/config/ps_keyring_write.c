#include "ps_keyring_write.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ps_secret.h"
#include "ps_time.h"
#include "ps_yaml.h"

#define HEADER_PLAIN "# pseudostream keyring (docs/KEYRING.md): keep it mode 0600, owned by the " \
                     "service user.\n"
#define HEADER_ENCRYPTED "# pseudostream keyring, passphrase-protected (docs/KEYRING.md): keep " \
                         "it mode 0600.\n"
/* Per key, everything but the secret: "  - id: 4294967295\n", not_before,
 * "    secret: \"\"\n", "    retired: true\n", with room to spare. */
#define KEY_TEXT_MAX 160

static void format_instant(int64_t ms, char out[40])
{
    ps_time_format_iso(ms, out, 40);
    /* Whole seconds read better without ".000"; both forms parse. */
    char *frac = strstr(out, ".000Z");
    if (frac) {
        memcpy(frac, "Z", 2);
    }
}

ps_err_t ps_keyring_file_generate(const char *path, int64_t not_before_ms,
                                  struct ps_keyring_file **kf_p, struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    char secret[PS_SECRET_B64_MAX];
    struct ps_keyring_file *kf = NULL;

    if (!kf_p) {
        return ps_error_set(err, PS_ERR_INVALID, "ps_keyring_file_generate: missing argument");
    }
    kf = calloc(1, sizeof(*kf));
    if (!kf || (path && !(kf->file = strdup(path))) ||
        !(kf->keys = calloc(1, sizeof(*kf->keys)))) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    rc = ps_secret_new_b64(secret, err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    kf->keys[0].secret_b64 = strdup(secret);
    if (!kf->keys[0].secret_b64) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    kf->keys[0].id = 1;
    kf->keys[0].not_before_ms = not_before_ms;
    kf->key_count = 1;
    *kf_p = kf;
    kf = NULL;

cleanup:
    ps_yaml_wipe(secret, sizeof(secret));
    ps_keyring_file_destroy(kf);
    return rc;
}

ps_err_t ps_keyring_file_add_key(struct ps_keyring_file *kf, int64_t not_before_ms,
                                 uint32_t *id_p, struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    char secret[PS_SECRET_B64_MAX];
    uint32_t max_id = 0;
    int64_t last_nb = INT64_MIN;
    char when[40];

    if (!kf) {
        return ps_error_set(err, PS_ERR_INVALID, "ps_keyring_file_add_key: missing argument");
    }
    for (size_t i = 0; i < kf->key_count; i++) {
        if (kf->keys[i].id > max_id) {
            max_id = kf->keys[i].id;
        }
        if (kf->keys[i].not_before_ms > last_nb) {
            last_nb = kf->keys[i].not_before_ms;
        }
    }
    if (kf->key_count > 0 && max_id == UINT32_MAX) {
        return ps_error_set(err, PS_ERR_CONFIG, "keyring has a key with the largest id "
                            "(4294967295): no id is left for a new key");
    }
    if (kf->key_count > 0 && not_before_ms <= last_nb) {
        format_instant(last_nb, when);
        /* Selection is by the event's time: a new key must start after the
         * last one, or events already pseudonymised would change key. */
        return ps_error_set(err, PS_ERR_CONFIG, "--not-before must be after the last key's "
                            "not_before (%s)", when);
    }
    struct ps_keyring_file_key *keys = realloc(kf->keys, (kf->key_count + 1) * sizeof(*keys));
    if (!keys) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory");
    }
    kf->keys = keys;
    rc = ps_secret_new_b64(secret, err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    struct ps_keyring_file_key *key = &kf->keys[kf->key_count];
    memset(key, 0, sizeof(*key));
    key->secret_b64 = strdup(secret);
    if (!key->secret_b64) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    key->id = kf->key_count > 0 ? max_id + 1 : 1;
    key->not_before_ms = not_before_ms;
    kf->key_count++;
    if (id_p) {
        *id_p = key->id;
    }

cleanup:
    ps_yaml_wipe(secret, sizeof(secret));
    return rc;
}

ps_err_t ps_keyring_file_text(const struct ps_keyring_file *kf, char **text_p, size_t *len_p,
                              struct ps_error *err)
{
    if (!kf || !text_p || !len_p) {
        return ps_error_set(err, PS_ERR_INVALID, "ps_keyring_file_text: missing argument");
    }
    /* One allocation of the exact upper bound: a growing buffer would leave
     * copies of secrets behind in memory given back by realloc. */
    size_t cap = sizeof(HEADER_PLAIN) + sizeof("keys:\n");
    for (size_t i = 0; i < kf->key_count; i++) {
        cap += KEY_TEXT_MAX + (kf->keys[i].secret_b64 ? strlen(kf->keys[i].secret_b64) : 0);
    }
    char *text = malloc(cap);
    if (!text) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory");
    }
    size_t len = (size_t)snprintf(text, cap, "%skeys:\n", HEADER_PLAIN);
    for (size_t i = 0; i < kf->key_count; i++) {
        const struct ps_keyring_file_key *key = &kf->keys[i];
        char when[40];
        format_instant(key->not_before_ms, when);
        len += (size_t)snprintf(text + len, cap - len,
                                "  - id: %" PRIu32 "\n    not_before: \"%s\"\n"
                                "    secret: \"%s\"\n%s",
                                key->id, when, key->secret_b64 ? key->secret_b64 : "",
                                key->retired ? "    retired: true\n" : "");
    }
    *text_p = text;
    *len_p = len;
    return PS_OK;
}

void ps_keyring_text_free(char *text, size_t len)
{
    if (text) {
        ps_yaml_wipe(text, len);
        free(text);
    }
}

static ps_err_t write_all(int fd, const char *path, const char *data, size_t len,
                          struct ps_error *err)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, data + done, len - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return ps_error_set_at(err, PS_ERR_IO, path, 0, 0, "cannot write: %s",
                                   strerror(errno));
        }
        done += (size_t)n;
    }
    return PS_OK;
}

/* Syncs the folder so that the new name survives a crash; a failure here
 * leaves a complete file under one of the two names, so it is not an error. */
static void sync_dir(const char *path)
{
    char *copy = strdup(path);
    if (!copy) {
        return;
    }
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

static ps_err_t write_atomic(const char *path, const char *data, size_t len, int create,
                             struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    size_t tmp_len = strlen(path) + sizeof(".tmp-XXXXXX");
    char *tmp = malloc(tmp_len);
    int fd = -1;
    int created = 0;

    if (!tmp) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory");
    }
    snprintf(tmp, tmp_len, "%s.tmp-XXXXXX", path);
    /* mkstemp creates the file 0600 whatever the umask: the secrets are never
     * readable by anyone else, not even for a moment. */
    fd = mkstemp(tmp);
    if (fd < 0) {
        rc = ps_error_set_at(err, PS_ERR_IO, path, 0, 0, "cannot create a temporary file "
                             "beside it: %s", strerror(errno));
        goto cleanup;
    }
    created = 1;
    if (fchmod(fd, 0600) != 0) {
        rc = ps_error_set_at(err, PS_ERR_IO, path, 0, 0, "cannot set mode 0600: %s",
                             strerror(errno));
        goto cleanup;
    }
    rc = write_all(fd, tmp, data, len, err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    if (fsync(fd) != 0) {
        rc = ps_error_set_at(err, PS_ERR_IO, tmp, 0, 0, "cannot sync: %s", strerror(errno));
        goto cleanup;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = ps_error_set_at(err, PS_ERR_IO, tmp, 0, 0, "cannot close: %s", strerror(errno));
        goto cleanup;
    }
    fd = -1;
    if (create) {
        /* link() fails when the name exists: "never overwrite" holds even
         * against another writer racing us. */
        if (link(tmp, path) != 0) {
            rc = ps_error_set_at(err, PS_ERR_IO, path, 0, 0, "%s",
                                 errno == EEXIST ? "already exists (a keyring is never "
                                                   "overwritten; choose another name)"
                                                 : strerror(errno));
            goto cleanup;
        }
    } else if (rename(tmp, path) != 0) {
        rc = ps_error_set_at(err, PS_ERR_IO, path, 0, 0, "cannot replace: %s", strerror(errno));
        goto cleanup;
    } else {
        created = 0;
    }
    sync_dir(path);

cleanup:
    if (fd >= 0) {
        close(fd);
    }
    if (created) {
        unlink(tmp);
    }
    free(tmp);
    return rc;
}

/* The passphrase form's text (no secrets in it, only ciphertext). */
static ps_err_t encrypted_text(const struct ps_passbox *box, char **text_p, size_t *len_p,
                               struct ps_error *err)
{
    size_t cap = sizeof(HEADER_ENCRYPTED) + 512 + strlen(box->salt_b64) +
                 strlen(box->nonce_b64) + strlen(box->ciphertext_b64);
    char *text = malloc(cap);
    if (!text) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory");
    }
    int n = snprintf(text, cap,
                     "%sencrypted:\n  kdf: %s\n  opslimit: %" PRIu64 "\n  memlimit: %" PRIu64 "\n"
                     "  salt: \"%s\"\n  cipher: %s\n  nonce: \"%s\"\n  ciphertext: \"%s\"\n",
                     HEADER_ENCRYPTED, PS_PASSBOX_KDF, box->params.opslimit,
                     box->params.memlimit, box->salt_b64, PS_PASSBOX_CIPHER, box->nonce_b64,
                     box->ciphertext_b64);
    *text_p = text;
    *len_p = (size_t)n;
    return PS_OK;
}

ps_err_t ps_keyring_file_write(const char *path, const struct ps_keyring_file *kf,
                               const struct ps_keyring_write_options *opt,
                               struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    char *plain = NULL, *out = NULL;
    size_t plain_len = 0, out_len = 0;
    struct ps_passbox box = {0};
    const struct ps_keyring_write_options none = {0};

    if (!path || !kf) {
        return ps_error_set(err, PS_ERR_INVALID, "ps_keyring_file_write: missing argument");
    }
    if (!opt) {
        opt = &none;
    }
    if (kf->key_count == 0) {
        return ps_error_set(err, PS_ERR_INVALID, "a keyring needs at least one key");
    }
    rc = ps_keyring_file_text(kf, &plain, &plain_len, err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    if (opt->passphrase) {
        rc = ps_passbox_seal(opt->passphrase, opt->params, plain, plain_len, &box, err);
        if (rc == PS_OK) {
            rc = encrypted_text(&box, &out, &out_len, err);
        }
        if (rc == PS_OK) {
            rc = write_atomic(path, out, out_len, opt->create, err);
        }
    } else {
        rc = write_atomic(path, plain, plain_len, opt->create, err);
    }

cleanup:
    ps_keyring_text_free(plain, plain_len);
    free(out);
    ps_passbox_clear(&box);
    return rc;
}
