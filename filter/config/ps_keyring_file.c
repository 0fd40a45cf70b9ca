#include "ps_keyring_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ps_time.h"
#include "ps_yaml.h"

/* A keyring holds a handful of keys; anything larger is the wrong file. The
 * passphrase form holds up to 64 KiB of plain keyring as base64, hence the
 * larger cap for the file as read. */
#define KEYRING_MAX_BYTES (64 * 1024)
#define KEYRING_FILE_MAX_BYTES (128 * 1024)
/* DESIGN.md §6: each master secret is 32 random bytes; the crypto layer takes
 * 32 to 64 (PS_KEYRING_SECRET_MIN/MAX). Checked here too so that the message
 * can name the line. */
#define SECRET_MIN_BYTES 32
#define SECRET_MAX_BYTES 64

/* Everything is text here: numbers and booleans are parsed strictly below
 * (libcyaml 1.3.1 takes "1x" as 1 and anything but a false word as true),
 * and messages about these values never repeat them. */
struct raw_key {
    char *id;
    char *not_before;
    char *secret;
    char *retired;
};

struct raw_keyring {
    struct raw_key *keys;
    unsigned keys_count;
};

#define STR_REQ CYAML_FLAG_POINTER
#define STR_OPT (CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL)

static const cyaml_schema_field_t key_fields[] = {
    CYAML_FIELD_STRING_PTR("id", STR_REQ, struct raw_key, id, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("not_before", STR_REQ, struct raw_key, not_before, 0,
                           CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("secret", STR_REQ, struct raw_key, secret, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("retired", STR_OPT, struct raw_key, retired, 0, CYAML_UNLIMITED),
    CYAML_FIELD_END};

static const cyaml_schema_value_t key_value = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_key, key_fields),
};

static const cyaml_schema_field_t keyring_fields[] = {
    CYAML_FIELD_SEQUENCE("keys", CYAML_FLAG_POINTER, struct raw_keyring, keys, &key_value, 1,
                         CYAML_UNLIMITED),
    CYAML_FIELD_END};

static const cyaml_schema_value_t keyring_value = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct raw_keyring, keyring_fields),
};

static const struct ps_yaml_hint keyring_hints[] = {
    {"keys", "add keys: with at least one key"},
    {"id", "add id: <key number, e.g. 1>"},
    {"not_before", "add not_before: \"<ISO 8601 instant, e.g. 2024-01-01T00:00:00Z>\""},
    {"secret", "add secret: <base64 of 32 random bytes, e.g. from: "
               "head -c 32 /dev/urandom | base64>"},
    {NULL, NULL}};

static const struct ps_yaml_doc_type keyring_type = {
    .schema = &keyring_value,
    .hints = keyring_hints,
    .empty_fix = "write keys: with at least one key",
};

/* The passphrase form: every value as text, checked below. */
struct raw_box {
    char *kdf;
    char *opslimit;
    char *memlimit;
    char *salt;
    char *cipher;
    char *nonce;
    char *ciphertext;
};

struct raw_encrypted {
    struct raw_box *encrypted;
};

static const cyaml_schema_field_t box_fields[] = {
    CYAML_FIELD_STRING_PTR("kdf", STR_REQ, struct raw_box, kdf, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("opslimit", STR_REQ, struct raw_box, opslimit, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("memlimit", STR_REQ, struct raw_box, memlimit, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("salt", STR_REQ, struct raw_box, salt, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("cipher", STR_REQ, struct raw_box, cipher, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("nonce", STR_REQ, struct raw_box, nonce, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("ciphertext", STR_REQ, struct raw_box, ciphertext, 0,
                           CYAML_UNLIMITED),
    CYAML_FIELD_END};

static const cyaml_schema_field_t encrypted_fields[] = {
    CYAML_FIELD_MAPPING_PTR("encrypted", CYAML_FLAG_POINTER, struct raw_encrypted, encrypted,
                            box_fields),
    CYAML_FIELD_END};

static const cyaml_schema_value_t encrypted_value = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct raw_encrypted, encrypted_fields),
};

static const struct ps_yaml_hint encrypted_hints[] = {
    {"kdf", "add kdf: " PS_PASSBOX_KDF},
    {"cipher", "add cipher: " PS_PASSBOX_CIPHER},
    {"opslimit", "add opslimit: <Argon2id passes> (rewrite with: pseudostream keyring encrypt)"},
    {"memlimit", "add memlimit: <Argon2id bytes> (rewrite with: pseudostream keyring encrypt)"},
    {NULL, NULL}};

static const struct ps_yaml_doc_type encrypted_type = {
    .schema = &encrypted_value,
    .hints = encrypted_hints,
    .empty_fix = "write keys: with at least one key",
};

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return -1;
}

/* Standard base64 (RFC 4648 §4) with padding, as libsodium's ORIGINAL variant
 * wants it. Returns the decoded length, or -1 when the text is not that. Only
 * the form is checked here; the crypto layer decodes. */
static long b64_decoded_len(const char *s)
{
    size_t n = strlen(s);
    size_t pad = 0;
    while (n > 0 && s[n - 1] == '=' && pad < 2) {
        n--;
        pad++;
    }
    for (size_t i = 0; i < n; i++) {
        if (b64_value(s[i]) < 0) {
            return -1;
        }
    }
    if ((n + pad) % 4 != 0 || n % 4 == 1) {
        return -1;
    }
    return (long)(n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0));
}

static ps_err_t convert_key(const struct ps_yaml_file *yf, const struct ps_ynode *ykey, size_t i,
                            const struct raw_key *raw, struct ps_keyring_file_key *key,
                            struct ps_error *err)
{
    uint64_t id = 0;
    if (ps_yaml_parse_uint(raw->id, 0, UINT32_MAX, &id) != 0) {
        return ps_yaml_error_at(yf, ps_ynode_get(ykey, "id"), err,
                                "keys[%zu].id must be a whole number from 0 to %lu in plain "
                                "digits, with no sign or leading zero (e.g. id: 1)",
                                i, (unsigned long)UINT32_MAX);
    }
    key->id = (uint32_t)id;
    if (ps_time_parse_iso(raw->not_before, &key->not_before_ms) != PS_OK) {
        return ps_yaml_error_at(yf, ps_ynode_get(ykey, "not_before"), err,
                                "keys[%zu].not_before is not an ISO 8601 date or instant "
                                "(e.g. not_before: \"2024-01-01T00:00:00Z\")",
                                i);
    }
    if (!raw->retired || strcmp(raw->retired, "false") == 0) {
        key->retired = 0;
    } else if (strcmp(raw->retired, "true") == 0) {
        key->retired = 1;
    } else {
        return ps_yaml_error_at(yf, ps_ynode_get(ykey, "retired"), err,
                                "keys[%zu].retired must be true or false", i);
    }
    long len = b64_decoded_len(raw->secret);
    if (len < SECRET_MIN_BYTES || len > SECRET_MAX_BYTES) {
        return ps_yaml_error_at(yf, ps_ynode_get(ykey, "secret"), err,
                                "keys[%zu].secret must be standard base64, with padding, of %d to "
                                "%d random bytes (make one with: head -c 32 /dev/urandom | base64)",
                                i, SECRET_MIN_BYTES, SECRET_MAX_BYTES);
    }
    key->secret_b64 = strdup(raw->secret);
    if (!key->secret_b64) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory loading %s", yf->path);
    }
    return PS_OK;
}

static ps_err_t convert(const struct ps_yaml_file *yf, const struct raw_keyring *raw,
                        struct ps_keyring_file *kf, struct ps_error *err)
{
    const struct ps_ynode *ykeys = ps_ynode_get(ps_yaml_file_root(yf), "keys");
    kf->keys = calloc(raw->keys_count, sizeof(*kf->keys));
    if (!kf->keys) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory loading %s", yf->path);
    }
    for (size_t i = 0; i < raw->keys_count; i++) {
        const struct ps_ynode *ykey = ps_ynode_item(ykeys, i);
        kf->key_count = i + 1;
        ps_err_t rc = convert_key(yf, ykey, i, &raw->keys[i], &kf->keys[i], err);
        if (rc != PS_OK) {
            return rc;
        }
        /* A key number names one secret; two would make tokens ambiguous. */
        for (size_t j = 0; j < i; j++) {
            if (kf->keys[j].id == kf->keys[i].id) {
                return ps_yaml_error_at(yf, ps_ynode_get(ykey, "id"), err,
                                        "keys[%zu].id %lu is already used by keys[%zu] "
                                        "(give every key its own id)",
                                        i, (unsigned long)kf->keys[i].id, j);
            }
        }
    }
    return PS_OK;
}

/* The plain form, from an opened file or from decrypted text. */
static ps_err_t load_plain(struct ps_yaml_file *yf, const char *path,
                           struct ps_keyring_file **kf_p, struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    struct raw_keyring *raw = NULL;
    struct ps_keyring_file *kf = NULL;

    rc = ps_yaml_file_load(yf, &keyring_type, (void **)&raw, err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    kf = calloc(1, sizeof(*kf));
    if (!kf || !(kf->file = strdup(path))) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "out of memory loading %s", path);
        goto cleanup;
    }
    rc = convert(yf, raw, kf, err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    *kf_p = kf;
    kf = NULL;

cleanup:
    ps_keyring_file_destroy(kf);
    ps_yaml_file_free_data(yf, &keyring_type, raw);
    return rc;
}

static int is_encrypted_form(const struct ps_yaml_file *yf)
{
    const struct ps_ynode *root = ps_yaml_file_root(yf);
    return root && root->kind == PS_YNODE_MAP && ps_ynode_key(root, "encrypted") != NULL;
}

/* Reads the passphrase form's fields into box (strings borrowed from raw). */
static ps_err_t convert_box(const struct ps_yaml_file *yf, const struct raw_box *raw,
                            struct ps_passbox *box, struct ps_error *err)
{
    const struct ps_ynode *ybox = ps_ynode_get(ps_yaml_file_root(yf), "encrypted");
    if (strcmp(raw->kdf, PS_PASSBOX_KDF) != 0) {
        return ps_yaml_error_at(yf, ps_ynode_get(ybox, "kdf"), err,
                                "encrypted.kdf must be " PS_PASSBOX_KDF);
    }
    if (strcmp(raw->cipher, PS_PASSBOX_CIPHER) != 0) {
        return ps_yaml_error_at(yf, ps_ynode_get(ybox, "cipher"), err,
                                "encrypted.cipher must be " PS_PASSBOX_CIPHER);
    }
    uint64_t ops = 0, mem = 0;
    if (ps_yaml_parse_uint(raw->opslimit, 1, UINT32_MAX, &ops) != 0) {
        return ps_yaml_error_at(yf, ps_ynode_get(ybox, "opslimit"), err,
                                "encrypted.opslimit must be a whole number of Argon2id passes");
    }
    if (ps_yaml_parse_uint(raw->memlimit, 1, UINT64_MAX, &mem) != 0) {
        return ps_yaml_error_at(yf, ps_ynode_get(ybox, "memlimit"), err,
                                "encrypted.memlimit must be a whole number of bytes");
    }
    box->params.opslimit = ops;
    box->params.memlimit = mem;
    box->salt_b64 = raw->salt;
    box->nonce_b64 = raw->nonce;
    box->ciphertext_b64 = raw->ciphertext;
    return PS_OK;
}

/* The passphrase form: decrypt in guarded memory, then load the plain form
 * from there. pp NULL: resolve one from pp_file or the environment when
 * resolve is set. */
static ps_err_t load_encrypted(struct ps_yaml_file *yf, const char *path,
                               const struct ps_passphrase *pp, const char *pp_file, int resolve,
                               struct ps_keyring_file **kf_p, struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    struct raw_encrypted *raw = NULL;
    struct ps_passphrase *own = NULL;
    struct ps_passbox box = {0};
    struct ps_yaml_file *inner = NULL;
    char *plain = NULL;
    size_t plain_len = 0;
    char name[PS_ERROR_FILE_MAX];

    rc = ps_yaml_file_load(yf, &encrypted_type, (void **)&raw, err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    rc = convert_box(yf, raw->encrypted, &box, err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    if (!pp && resolve) {
        rc = ps_passphrase_resolve(pp_file, &own, err);
        if (rc != PS_OK) {
            ps_error_prefix(err, "%s", path);
            goto cleanup;
        }
        pp = own;
    }
    if (!pp) {
        rc = ps_error_set_at(err, PS_ERR_CONFIG, path, 0, 0,
                             "the keyring is passphrase-protected and no passphrase was given");
        goto cleanup;
    }
    rc = ps_passbox_open(pp, &box, path, &plain, &plain_len, err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    if (plain_len > KEYRING_MAX_BYTES) {
        rc = ps_error_set_at(err, PS_ERR_CONFIG, path, 0, 0,
                             "the decrypted keyring is larger than %d bytes", KEYRING_MAX_BYTES);
        goto cleanup;
    }
    /* Positions in messages are those of the decrypted text. */
    snprintf(name, sizeof(name), "%s (decrypted)", path);
    rc = ps_yaml_file_open_buffer(name, plain, plain_len, PS_YAML_SECRET, &inner, err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    if (is_encrypted_form(inner)) {
        rc = ps_error_set_at(err, PS_ERR_CONFIG, path, 0, 0,
                             "the decrypted keyring is itself encrypted (encrypt a plain keyring "
                             "once)");
        goto cleanup;
    }
    rc = load_plain(inner, path, kf_p, err);
    if (rc == PS_OK) {
        (*kf_p)->encrypted = 1;
        (*kf_p)->kdf = box.params;
    }

cleanup:
    ps_yaml_file_destroy(inner);
    ps_passbox_plain_free(plain);
    ps_passphrase_destroy(own);
    ps_yaml_file_free_data(yf, &encrypted_type, raw);
    return rc;
}

static ps_err_t load(const char *path, const struct ps_passphrase *pp, const char *pp_file,
                     int resolve, struct ps_keyring_file **kf_p, struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    struct ps_yaml_file *yf = NULL;

    if (!path || !kf_p) {
        return ps_error_set(err, PS_ERR_INVALID, "ps_keyring_file_load: path and kf_p are "
                                                 "required");
    }
    rc = ps_yaml_file_open(path, KEYRING_FILE_MAX_BYTES, PS_YAML_SECRET, &yf, err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    if (is_encrypted_form(yf)) {
        rc = load_encrypted(yf, path, pp, pp_file, resolve, kf_p, err);
    } else if (yf->len > KEYRING_MAX_BYTES) {
        rc = ps_error_set_at(err, PS_ERR_CONFIG, path, 0, 0,
                             "file is larger than %d bytes (is this the right file?)",
                             KEYRING_MAX_BYTES);
    } else {
        rc = load_plain(yf, path, kf_p, err);
    }

cleanup:
    ps_yaml_file_destroy(yf);
    return rc;
}

ps_err_t ps_keyring_file_load(const char *path, struct ps_keyring_file **kf_p,
                              struct ps_error *err)
{
    return load(path, NULL, NULL, 1, kf_p, err);
}

ps_err_t ps_keyring_file_load_with_passphrase(const char *path, const char *passphrase_file,
                                              struct ps_keyring_file **kf_p,
                                              struct ps_error *err)
{
    return load(path, NULL, passphrase_file, 1, kf_p, err);
}

ps_err_t ps_keyring_file_load_pp(const char *path, const struct ps_passphrase *pp,
                                 struct ps_keyring_file **kf_p, struct ps_error *err)
{
    return load(path, pp, NULL, 0, kf_p, err);
}

ps_err_t ps_keyring_file_is_encrypted(const char *path, int *encrypted_p, struct ps_error *err)
{
    struct ps_yaml_file *yf = NULL;
    if (!path || !encrypted_p) {
        return ps_error_set(err, PS_ERR_INVALID, "ps_keyring_file_is_encrypted: missing "
                                                 "argument");
    }
    ps_err_t rc = ps_yaml_file_open(path, KEYRING_FILE_MAX_BYTES, PS_YAML_SECRET, &yf, err);
    if (rc == PS_OK) {
        *encrypted_p = is_encrypted_form(yf);
    }
    ps_yaml_file_destroy(yf);
    return rc;
}

void ps_keyring_file_destroy(struct ps_keyring_file *kf)
{
    if (!kf) {
        return;
    }
    for (size_t i = 0; i < kf->key_count; i++) {
        char *secret = kf->keys[i].secret_b64;
        if (secret) {
            ps_yaml_wipe(secret, strlen(secret));
            free(secret);
        }
    }
    if (kf->keys) {
        ps_yaml_wipe(kf->keys, kf->key_count * sizeof(*kf->keys));
    }
    free(kf->keys);
    free(kf->file);
    free(kf);
}
