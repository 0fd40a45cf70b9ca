#include "ps_keyring_file.h"

#include <stdlib.h>
#include <string.h>

#include "ps_time.h"
#include "ps_yaml.h"

/* A keyring holds a handful of keys; anything larger is the wrong file. */
#define KEYRING_MAX_BYTES (64 * 1024)
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

ps_err_t ps_keyring_file_load(const char *path, struct ps_keyring_file **kf_p,
                              struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    struct ps_yaml_file *yf = NULL;
    struct raw_keyring *raw = NULL;
    struct ps_keyring_file *kf = NULL;

    if (!path || !kf_p) {
        return ps_error_set(err, PS_ERR_INVALID, "ps_keyring_file_load: path and kf_p are "
                                                 "required");
    }
    rc = ps_yaml_file_open(path, KEYRING_MAX_BYTES, PS_YAML_SECRET, &yf, err);
    if (rc != PS_OK) {
        goto cleanup;
    }
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
