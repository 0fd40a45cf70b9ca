#include "ps_escrow.h"
#include "ps_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "ps_keyring.h"

/*
 * The innermost plaintext is MAGIC followed by the value. Without it, a
 * record sealed to two authorities and opened with one key would yield the
 * inner sealed box as if it were the identifier; with it, a layer left
 * unopened (or a key left over) is recognised and refused.
 */
#define ESCROW_MAGIC "PSE1"
#define ESCROW_MAGIC_LEN 4
#define ESCROW_PLAIN_MAX (ESCROW_MAGIC_LEN + PS_ESCROW_VALUE_MAX)
#define ESCROW_SEALED_MAX (ESCROW_PLAIN_MAX + PS_ESCROW_AUTHORITIES_MAX * crypto_box_SEALBYTES)
/* A key file is one line of base64; anything much longer is the wrong file. */
#define KEY_FILE_MAX 256

struct ps_escrow_secret {
    uint8_t *keys; /* sodium_malloc: secret key, then public key; read-only */
};

/* ------------------------------------------------------------ key files */

static ps_err_t write_new_file(const char *path, mode_t mode, const char *text,
                               struct ps_error *err)
{
    /* O_EXCL: an existing key is never replaced (a lost authority key would
     * make every record sealed to it unreadable). */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        return ps_error_set_at(err, PS_ERR_IO, path, 0, 0, "cannot create: %s%s", strerror(errno),
                               errno == EEXIST ? " (an existing key is never replaced)" : "");
    }
    size_t len = strlen(text), done = 0;
    ps_err_t rc = PS_OK;
    /* The umask may have removed bits from mode, never added: set it exactly. */
    if (fchmod(fd, mode) != 0) {
        rc = ps_error_set_at(err, PS_ERR_IO, path, 0, 0, "cannot set mode: %s", strerror(errno));
    }
    while (rc == PS_OK && done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rc = ps_error_set_at(err, PS_ERR_IO, path, 0, 0, "cannot write: %s",
                                 strerror(errno));
        } else {
            done += (size_t)n;
        }
    }
    if (rc == PS_OK && fsync(fd) != 0) {
        rc = ps_error_set_at(err, PS_ERR_IO, path, 0, 0, "cannot sync: %s", strerror(errno));
    }
    if (close(fd) != 0 && rc == PS_OK) {
        rc = ps_error_set_at(err, PS_ERR_IO, path, 0, 0, "cannot close: %s", strerror(errno));
    }
    if (rc != PS_OK) {
        unlink(path);
    }
    return rc;
}

ps_err_t ps_escrow_keypair_write(const char *public_path, const char *secret_path,
                                 struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    uint8_t pk[PS_ESCROW_KEY_BYTES];
    uint8_t *sk = NULL;
    char pk_b64[PS_ESCROW_KEY_B64_MAX + 1];
    char *sk_b64 = NULL;

    if (!public_path || !secret_path) {
        return ps_error_set(err, PS_ERR_INVALID, "ps_escrow_keypair_write: missing argument");
    }
    if (strcmp(public_path, secret_path) == 0) {
        return ps_error_set(err, PS_ERR_INVALID, "the public and secret key files must differ");
    }
    rc = ps_crypto_init(err);
    if (rc != PS_OK) {
        return rc;
    }
    sk = sodium_malloc(PS_ESCROW_KEY_BYTES);
    sk_b64 = sodium_malloc(PS_ESCROW_KEY_B64_MAX + 1);
    if (!sk || !sk_b64) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "out of guarded memory");
        goto cleanup;
    }
    crypto_box_keypair(pk, sk);
    sodium_bin2base64(pk_b64, PS_ESCROW_KEY_B64_MAX, pk, sizeof(pk),
                      sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64(sk_b64, PS_ESCROW_KEY_B64_MAX, sk, PS_ESCROW_KEY_BYTES,
                      sodium_base64_VARIANT_ORIGINAL);
    strcat(pk_b64, "\n");
    strcat(sk_b64, "\n");
    /* The secret first: if it cannot be written, no public key exists that
     * anyone could seal to in vain. */
    rc = write_new_file(secret_path, 0600, sk_b64, err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    rc = write_new_file(public_path, 0644, pk_b64, err);
    if (rc != PS_OK) {
        unlink(secret_path);
    }

cleanup:
    if (sk) {
        sodium_free(sk);
    }
    if (sk_b64) {
        sodium_free(sk_b64);
    }
    return rc;
}

/* Decodes base64 of exactly 32 bytes, ignoring white space around it. */
static int decode_key(const char *text, size_t len, uint8_t key[PS_ESCROW_KEY_BYTES])
{
    while (len > 0 && (text[0] == ' ' || text[0] == '\t' || text[0] == '\n' || text[0] == '\r')) {
        text++;
        len--;
    }
    while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t' || text[len - 1] == '\n' ||
                       text[len - 1] == '\r')) {
        len--;
    }
    size_t bin_len = 0;
    const char *end = NULL;
    if (sodium_base642bin(key, PS_ESCROW_KEY_BYTES, text, len, NULL, &bin_len, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != text + len || bin_len != PS_ESCROW_KEY_BYTES) {
        return -1;
    }
    return 0;
}

ps_err_t ps_escrow_public_parse(const char *b64, uint8_t pk[PS_ESCROW_KEY_BYTES],
                                struct ps_error *err)
{
    if (!b64 || !pk) {
        return ps_error_set(err, PS_ERR_INVALID, "ps_escrow_public_parse: missing argument");
    }
    ps_err_t rc = ps_crypto_init(err);
    if (rc != PS_OK) {
        return rc;
    }
    if (decode_key(b64, strlen(b64), pk) != 0) {
        return ps_error_set(err, PS_ERR_CONFIG, "an escrow public key must be the standard "
                            "base64 of 32 bytes (make one with: pseudostream keyring "
                            "authority-new)");
    }
    return PS_OK;
}

/* Reads a small key file into buf (guarded when it is a secret). */
static ps_err_t read_key_file(const char *path, int secret, char *buf, size_t *len_p,
                              struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    struct stat st;
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return ps_error_set_at(err, PS_ERR_IO, path, 0, 0, "cannot open: %s", strerror(errno));
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = ps_error_set_at(err, PS_ERR_IO, path, 0, 0, "not a readable regular file");
        goto cleanup;
    }
    if (secret && (st.st_mode & 077) != 0) {
        rc = ps_error_set_at(err, PS_ERR_PERMISSION, path, 0, 0,
                             "holds an authority secret key but group or others may access it "
                             "(mode %04o); run: chmod 600 %s",
                             (unsigned)(st.st_mode & 07777), path);
        goto cleanup;
    }
    rc = ps_file_read_fd(fd, path, buf, KEY_FILE_MAX, &len, err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    *len_p = len;

cleanup:
    close(fd);
    return rc;
}

ps_err_t ps_escrow_public_load(const char *path, uint8_t pk[PS_ESCROW_KEY_BYTES],
                               struct ps_error *err)
{
    char buf[KEY_FILE_MAX];
    size_t len = 0;
    if (!path || !pk) {
        return ps_error_set(err, PS_ERR_INVALID, "ps_escrow_public_load: missing argument");
    }
    ps_err_t rc = ps_crypto_init(err);
    if (rc == PS_OK) {
        rc = read_key_file(path, 0, buf, &len, err);
    }
    if (rc == PS_OK && (len == KEY_FILE_MAX || decode_key(buf, len, pk) != 0)) {
        rc = ps_error_set_at(err, PS_ERR_CONFIG, path, 0, 0,
                             "not an escrow public key (one line: the base64 of 32 bytes)");
    }
    return rc;
}

ps_err_t ps_escrow_secret_from_bytes(const uint8_t sk[PS_ESCROW_KEY_BYTES],
                                     struct ps_escrow_secret **sk_p, struct ps_error *err)
{
    if (!sk || !sk_p) {
        return ps_error_set(err, PS_ERR_INVALID, "ps_escrow_secret_from_bytes: missing argument");
    }
    ps_err_t rc = ps_crypto_init(err);
    if (rc != PS_OK) {
        return rc;
    }
    struct ps_escrow_secret *s = calloc(1, sizeof(*s));
    if (!s) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory");
    }
    s->keys = sodium_malloc(2 * PS_ESCROW_KEY_BYTES);
    if (!s->keys) {
        free(s);
        return ps_error_set(err, PS_ERR_NOMEM, "out of guarded memory");
    }
    memcpy(s->keys, sk, PS_ESCROW_KEY_BYTES);
    /* crypto_box_seal_open needs the public key too: derive it rather than
     * trust a second file to match. */
    crypto_scalarmult_base(s->keys + PS_ESCROW_KEY_BYTES, s->keys);
    sodium_mprotect_readonly(s->keys);
    *sk_p = s;
    return PS_OK;
}

ps_err_t ps_escrow_secret_load(const char *path, struct ps_escrow_secret **sk_p,
                               struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    char *buf = NULL;
    uint8_t *raw = NULL;
    size_t len = 0;
    if (!path || !sk_p) {
        return ps_error_set(err, PS_ERR_INVALID, "ps_escrow_secret_load: missing argument");
    }
    rc = ps_crypto_init(err);
    if (rc != PS_OK) {
        return rc;
    }
    buf = sodium_malloc(KEY_FILE_MAX);
    raw = sodium_malloc(PS_ESCROW_KEY_BYTES);
    if (!buf || !raw) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "out of guarded memory");
        goto cleanup;
    }
    rc = read_key_file(path, 1, buf, &len, err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    if (len == KEY_FILE_MAX || decode_key(buf, len, raw) != 0) {
        rc = ps_error_set_at(err, PS_ERR_CONFIG, path, 0, 0,
                             "not an escrow secret key (one line: the base64 of 32 bytes)");
        goto cleanup;
    }
    rc = ps_escrow_secret_from_bytes(raw, sk_p, err);

cleanup:
    if (buf) {
        sodium_free(buf);
    }
    if (raw) {
        sodium_free(raw);
    }
    return rc;
}

void ps_escrow_secret_public(const struct ps_escrow_secret *sk, uint8_t pk[PS_ESCROW_KEY_BYTES])
{
    memcpy(pk, sk->keys + PS_ESCROW_KEY_BYTES, PS_ESCROW_KEY_BYTES);
}

void ps_escrow_secret_destroy(struct ps_escrow_secret *sk)
{
    if (!sk) {
        return;
    }
    if (sk->keys) {
        sodium_free(sk->keys);
    }
    free(sk);
}

/* --------------------------------------------------------- seal and open */

ps_err_t ps_escrow_seal(const struct ps_escrow_authorities *auth, const void *value, size_t len,
                        struct ps_buf *out, struct ps_error *err)
{
    uint8_t layer[2][ESCROW_SEALED_MAX];
    size_t cur_len = ESCROW_MAGIC_LEN + len;
    ps_err_t rc = PS_OK;

    if (!auth || !value || !out) {
        return ps_error_set(err, PS_ERR_INVALID, "ps_escrow_seal: missing argument");
    }
    if (auth->count < 1 || auth->count > PS_ESCROW_AUTHORITIES_MAX) {
        return ps_error_set(err, PS_ERR_INVALID, "escrow needs 1 or %d authorities, not %zu",
                            PS_ESCROW_AUTHORITIES_MAX, auth->count);
    }
    if (len < 1 || len > PS_ESCROW_VALUE_MAX) {
        return ps_error_set(err, PS_ERR_INVALID, "an escrowed value must be 1 to %d bytes",
                            PS_ESCROW_VALUE_MAX);
    }
    rc = ps_crypto_init(err);
    if (rc != PS_OK) {
        return rc;
    }
    memcpy(layer[0], ESCROW_MAGIC, ESCROW_MAGIC_LEN);
    memcpy(layer[0] + ESCROW_MAGIC_LEN, value, len);
    size_t cur = 0;
    for (size_t a = 0; a < auth->count; a++) {
        if (crypto_box_seal(layer[1 - cur], layer[cur], cur_len, auth->pk[a]) != 0) {
            rc = ps_error_set(err, PS_ERR_INVALID, "escrow authority %zu: not a usable public key",
                              a + 1);
            goto cleanup;
        }
        cur = 1 - cur;
        cur_len += crypto_box_SEALBYTES;
    }
    ps_buf_reset(out);
    rc = ps_buf_append(out, layer[cur], cur_len);
    if (rc != PS_OK) {
        rc = ps_error_set(err, rc, "escrow: no room for %zu sealed bytes", cur_len);
    }

cleanup:
    /* The clear value sits in the first layer. */
    sodium_memzero(layer, sizeof(layer));
    return rc;
}

ps_err_t ps_escrow_open(const struct ps_escrow_secret *const *sks, size_t count,
                        const void *sealed, size_t len, struct ps_buf *out,
                        struct ps_error *err)
{
    uint8_t layer[2][ESCROW_SEALED_MAX];
    int used[PS_ESCROW_AUTHORITIES_MAX] = {0};
    size_t cur = 0, cur_len = len, opened = 0;
    ps_err_t rc = PS_OK;

    if (!sks || !sealed || !out) {
        return ps_error_set(err, PS_ERR_INVALID, "ps_escrow_open: missing argument");
    }
    if (count < 1 || count > PS_ESCROW_AUTHORITIES_MAX) {
        return ps_error_set(err, PS_ERR_INVALID, "give 1 or %d authority secret keys, not %zu",
                            PS_ESCROW_AUTHORITIES_MAX, count);
    }
    for (size_t k = 0; k < count; k++) {
        if (!sks[k]) {
            return ps_error_set(err, PS_ERR_INVALID, "ps_escrow_open: missing key");
        }
    }
    if (len > ESCROW_SEALED_MAX) {
        return ps_error_set(err, PS_ERR_PERMISSION,
                            "escrow record cannot be opened: it is larger than any sealed value");
    }
    rc = ps_crypto_init(err);
    if (rc != PS_OK) {
        return rc;
    }
    memcpy(layer[0], sealed, len);
    /* Peel layers while a key opens one. The order of the keys given does not
     * matter: each is tried on each layer, and each may open only one. */
    while (opened < count) {
        int done = 0;
        for (size_t k = 0; k < count && !done; k++) {
            if (used[k] || cur_len < crypto_box_SEALBYTES) {
                continue;
            }
            const uint8_t *sk = sks[k]->keys;
            if (crypto_box_seal_open(layer[1 - cur], layer[cur], cur_len,
                                     sk + PS_ESCROW_KEY_BYTES, sk) == 0) {
                used[k] = 1;
                done = 1;
            }
        }
        if (!done) {
            break;
        }
        cur = 1 - cur;
        cur_len -= crypto_box_SEALBYTES;
        opened++;
    }
    if (opened < count || cur_len < ESCROW_MAGIC_LEN + 1 ||
        memcmp(layer[cur], ESCROW_MAGIC, ESCROW_MAGIC_LEN) != 0) {
        rc = ps_error_set(err, PS_ERR_PERMISSION,
                          "escrow record cannot be opened with the given key%s%s",
                          count > 1 ? "s" : "",
                          opened == count ? " (it is sealed to more authorities than keys were "
                                            "given)" : "");
        goto cleanup;
    }
    ps_buf_reset(out);
    rc = ps_buf_append(out, layer[cur] + ESCROW_MAGIC_LEN, cur_len - ESCROW_MAGIC_LEN);
    if (rc != PS_OK) {
        rc = ps_error_set(err, rc, "escrow: no room for the opened value");
    }

cleanup:
    sodium_memzero(layer, sizeof(layer));
    return rc;
}

/* ----------------------------------------------------------------- cache */

#define CACHE_FP_BYTES crypto_shorthash_siphashx24_BYTES
#define CACHE_CAPACITY_MAX ((size_t)1 << 30)

struct ps_escrow_cache {
    uint8_t key[crypto_shorthash_siphashx24_KEYBYTES];
    uint8_t (*ring)[CACHE_FP_BYTES]; /* capacity fingerprints, oldest at head */
    size_t capacity, head, count;
    uint32_t *index; /* open addressing, linear probing: ring slot + 1, 0 = empty */
    size_t mask;     /* index size - 1 (a power of two, at least twice capacity) */
};

ps_err_t ps_escrow_cache_new(size_t capacity, struct ps_escrow_cache **cache_p,
                             struct ps_error *err)
{
    if (!cache_p || capacity < 1 || capacity > CACHE_CAPACITY_MAX) {
        return ps_error_set(err, PS_ERR_INVALID, "escrow cache capacity must be 1 to %zu",
                            CACHE_CAPACITY_MAX);
    }
    ps_err_t rc = ps_crypto_init(err);
    if (rc != PS_OK) {
        return rc;
    }
    size_t size = 2;
    while (size < 2 * capacity) {
        size *= 2;
    }
    struct ps_escrow_cache *cache = calloc(1, sizeof(*cache));
    if (!cache) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory");
    }
    cache->ring = calloc(capacity, sizeof(*cache->ring));
    cache->index = calloc(size, sizeof(*cache->index));
    if (!cache->ring || !cache->index) {
        ps_escrow_cache_destroy(cache);
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory for an escrow cache of %zu entries",
                            capacity);
    }
    cache->capacity = capacity;
    cache->mask = size - 1;
    /* A random key: what the cache holds cannot be tested against a guess
     * by anyone who reads the process's memory without the key too. */
    randombytes_buf(cache->key, sizeof(cache->key));
    *cache_p = cache;
    return PS_OK;
}

void ps_escrow_cache_destroy(struct ps_escrow_cache *cache)
{
    if (!cache) {
        return;
    }
    free(cache->ring);
    free(cache->index);
    sodium_memzero(cache->key, sizeof(cache->key));
    free(cache);
}

static void fingerprint(const struct ps_escrow_cache *cache, const char *domain,
                        const char *token, uint8_t fp[CACHE_FP_BYTES])
{
    /* domain NUL token: a NUL cannot occur in either, so the split is unique. */
    size_t dlen = strlen(domain), tlen = strlen(token);
    uint8_t msg[512];
    if (dlen + 1 + tlen <= sizeof(msg)) {
        memcpy(msg, domain, dlen);
        msg[dlen] = 0;
        memcpy(msg + dlen + 1, token, tlen);
        crypto_shorthash_siphashx24(fp, msg, dlen + 1 + tlen, cache->key);
        return;
    }
    /* Longer than any real domain and token: hash the parts first. */
    uint8_t parts[2 * CACHE_FP_BYTES];
    crypto_shorthash_siphashx24(parts, (const uint8_t *)domain, dlen, cache->key);
    crypto_shorthash_siphashx24(parts + CACHE_FP_BYTES, (const uint8_t *)token, tlen, cache->key);
    crypto_shorthash_siphashx24(fp, parts, sizeof(parts), cache->key);
}

static size_t home(const struct ps_escrow_cache *cache, const uint8_t fp[CACHE_FP_BYTES])
{
    uint64_t h;
    memcpy(&h, fp, sizeof(h));
    return (size_t)h & cache->mask;
}

/* The index position holding fp, or the empty position where it would go. */
static size_t find(const struct ps_escrow_cache *cache, const uint8_t fp[CACHE_FP_BYTES],
                   int *found_p)
{
    size_t i = home(cache, fp);
    for (;;) {
        uint32_t slot = cache->index[i];
        if (slot == 0) {
            *found_p = 0;
            return i;
        }
        if (memcmp(cache->ring[slot - 1], fp, CACHE_FP_BYTES) == 0) {
            *found_p = 1;
            return i;
        }
        i = (i + 1) & cache->mask;
    }
}

/* Removes index position i, moving later entries of the probe run back so
 * that linear probing still finds them (no tombstones to accumulate). */
static void index_remove(struct ps_escrow_cache *cache, size_t i)
{
    size_t j = i;
    for (;;) {
        cache->index[i] = 0;
        for (;;) {
            j = (j + 1) & cache->mask;
            if (cache->index[j] == 0) {
                return;
            }
            size_t k = home(cache, cache->ring[cache->index[j] - 1]);
            /* The entry at j may move to i unless its home lies cyclically in (i, j]. */
            int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
            if (!stays) {
                break;
            }
        }
        cache->index[i] = cache->index[j];
        i = j;
    }
}

int ps_escrow_cache_contains(const struct ps_escrow_cache *cache, const char *domain,
                             const char *token)
{
    uint8_t fp[CACHE_FP_BYTES];
    int found = 0;
    if (!cache || !domain || !token) {
        return 0;
    }
    fingerprint(cache, domain, token, fp);
    find(cache, fp, &found);
    return found;
}

int ps_escrow_cache_add(struct ps_escrow_cache *cache, const char *domain, const char *token)
{
    uint8_t fp[CACHE_FP_BYTES];
    int found = 0;
    if (!cache || !domain || !token) {
        return 0;
    }
    fingerprint(cache, domain, token, fp);
    find(cache, fp, &found);
    if (found) {
        return 1;
    }
    size_t slot;
    if (cache->count == cache->capacity) {
        /* Full: the oldest entry gives up its ring slot. */
        slot = cache->head;
        int old_found = 0;
        size_t pos = find(cache, cache->ring[slot], &old_found);
        if (old_found) {
            index_remove(cache, pos);
        }
        cache->head = (cache->head + 1) % cache->capacity;
    } else {
        slot = (cache->head + cache->count) % cache->capacity;
        cache->count++;
    }
    memcpy(cache->ring[slot], fp, CACHE_FP_BYTES);
    /* Look again: the removal may have moved entries of this probe run. */
    size_t pos = find(cache, fp, &found);
    cache->index[pos] = (uint32_t)(slot + 1);
    return 0;
}

void ps_escrow_cache_clear(struct ps_escrow_cache *cache)
{
    if (!cache) {
        return;
    }
    memset(cache->index, 0, (cache->mask + 1) * sizeof(*cache->index));
    cache->head = 0;
    cache->count = 0;
}

size_t ps_escrow_cache_count(const struct ps_escrow_cache *cache)
{
    return cache ? cache->count : 0;
}

size_t ps_escrow_cache_capacity(const struct ps_escrow_cache *cache)
{
    return cache ? cache->capacity : 0;
}
