/*
 * Keyring tooling: ps_keyring_write (new, add, atomic private rewrites) and
 * the passphrase-protected form (ps_passphrase, ps_keyring_file_load*).
 * Besides the round trips, two promises are tested: files are mode 0600 from
 * the first byte, and no message or file in the clear repeats a secret or
 * the passphrase.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ps_keyring.h"
#include "ps_keyring_file.h"
#include "ps_keyring_write.h"
#include "ps_passphrase.h"

#define PASSPHRASE "artificial test passphrase 0001"
#define T2024 INT64_C(1704067200000) /* 2024-01-01T00:00:00Z */
#define T2026 INT64_C(1780272000000) /* 2026-06-01T00:00:00Z */

static char dir[] = "/tmp/ps-test-keyring-tool-XXXXXX";

static void assert_ok_(ps_err_t rc, const struct ps_error *err, const char *file, int line)
{
    if (rc != PS_OK) {
        fprintf(stderr, "%s:%d: %s (%s)\n", file, line, err->msg, ps_err_name(rc));
    }
    _assert_int_equal(rc, PS_OK, file, line);
}
#define assert_ok(rc, err) assert_ok_((rc), (err), __FILE__, __LINE__)

static int setup(void **state)
{
    (void)state;
    unsetenv(PS_PASSPHRASE_ENV);
    unsetenv(PS_PASSPHRASE_FILE_ENV);
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(dir);
    struct dirent *de;
    char path[512];
    while (d && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
            unlink(path);
        }
    }
    if (d) {
        closedir(d);
    }
    return rmdir(dir);
}

static void path_of(const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", dir, name);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *buf = calloc(1, 256 * 1024);
    assert_non_null(buf);
    size_t n = fread(buf, 1, 256 * 1024 - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void write_text(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static size_t files_in_dir(void)
{
    size_t n = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        n += de->d_name[0] != '.';
    }
    closedir(d);
    return n;
}

static void test_new_and_add(void **state)
{
    (void)state;
    struct ps_error err = {0};
    char path[256];
    path_of("new.yaml", path, sizeof(path));
    struct ps_keyring_file *kf = NULL, *back = NULL;

    /* A umask that would let everyone read must not matter. */
    mode_t old_umask = umask(0);
    assert_ok(ps_keyring_file_generate(path, T2024, &kf, &err), &err);
    assert_int_equal(kf->key_count, 1);
    assert_int_equal(kf->keys[0].id, 1);
    assert_int_equal(kf->keys[0].not_before_ms, T2024);
    assert_int_equal(strlen(kf->keys[0].secret_b64), 44);
    struct ps_keyring_write_options create = {.create = 1};
    assert_ok(ps_keyring_file_write(path, kf, &create, &err), &err);
    umask(old_umask);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* Never overwritten by "new", and nothing left behind by the attempt. */
    size_t before = files_in_dir();
    assert_int_equal(ps_keyring_file_write(path, kf, &create, &err), PS_ERR_IO);
    assert_non_null(strstr(err.msg, "already exists"));
    assert_int_equal(files_in_dir(), before);

    assert_ok(ps_keyring_file_load(path, &back, &err), &err);
    assert_int_equal(back->key_count, 1);
    assert_string_equal(back->keys[0].secret_b64, kf->keys[0].secret_b64);
    assert_int_equal(back->encrypted, 0);
    ps_keyring_file_destroy(back);
    back = NULL;

    /* add: not_before must come after the last key's. */
    assert_int_equal(ps_keyring_file_add_key(kf, T2024, NULL, &err), PS_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "after the last key"));
    assert_int_equal(ps_keyring_file_add_key(kf, T2024 - 1000, NULL, &err), PS_ERR_CONFIG);
    assert_int_equal(kf->key_count, 1);
    uint32_t id = 0;
    assert_ok(ps_keyring_file_add_key(kf, T2026, &id, &err), &err);
    assert_int_equal(id, 2);
    assert_string_not_equal(kf->keys[1].secret_b64, kf->keys[0].secret_b64);

    /* The rewrite replaces the file as a whole: a reader holding the old file
     * open keeps reading the old keyring, never a half-written one. */
    int old_fd = open(path, O_RDONLY);
    assert_true(old_fd >= 0);
    assert_ok(ps_keyring_file_write(path, kf, NULL, &err), &err);
    char old_text[2048] = {0};
    assert_true(read(old_fd, old_text, sizeof(old_text) - 1) > 0);
    close(old_fd);
    assert_null(strstr(old_text, kf->keys[1].secret_b64));
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(files_in_dir(), before); /* no temporary file left */

    assert_ok(ps_keyring_file_load(path, &back, &err), &err);
    assert_int_equal(back->key_count, 2);
    assert_int_equal(back->keys[1].id, 2);
    assert_int_equal(back->keys[1].not_before_ms, T2026);
    assert_string_equal(back->keys[1].secret_b64, kf->keys[1].secret_b64);

    /* What was written is a keyring the service accepts. */
    struct ps_keyring_entry entries[2];
    for (size_t i = 0; i < 2; i++) {
        entries[i].id = back->keys[i].id;
        entries[i].not_before_ms = back->keys[i].not_before_ms;
        entries[i].retired = back->keys[i].retired;
        entries[i].secret_b64 = back->keys[i].secret_b64;
    }
    struct ps_keyring *kr = NULL;
    assert_ok(ps_keyring_new(entries, 2, path, &kr, &err), &err);
    uint32_t sel = 0;
    assert_ok(ps_keyring_select(kr, T2026 - 1, &sel, &err), &err);
    assert_int_equal(sel, 1);
    assert_ok(ps_keyring_select(kr, T2026, &sel, &err), &err);
    assert_int_equal(sel, 2);
    ps_keyring_destroy(kr);

    /* A retired flag survives a rewrite. */
    back->keys[0].retired = 1;
    assert_ok(ps_keyring_file_write(path, back, NULL, &err), &err);
    ps_keyring_file_destroy(back);
    back = NULL;
    assert_ok(ps_keyring_file_load(path, &back, &err), &err);
    assert_int_equal(back->keys[0].retired, 1);
    assert_int_equal(back->keys[1].retired, 0);

    ps_keyring_file_destroy(back);
    ps_keyring_file_destroy(kf);
    unlink(path);
}

static void test_write_errors(void **state)
{
    (void)state;
    struct ps_error err = {0};
    struct ps_keyring_file empty = {0};
    char path[256];
    path_of("nowhere/k.yaml", path, sizeof(path));
    assert_int_equal(ps_keyring_file_write(path, &empty, NULL, &err), PS_ERR_INVALID);
    struct ps_keyring_file *kf = NULL;
    assert_ok(ps_keyring_file_generate(NULL, T2024, &kf, &err), &err);
    assert_int_equal(ps_keyring_file_write(path, kf, NULL, &err), PS_ERR_IO);
    assert_null(strstr(err.msg, kf->keys[0].secret_b64));
    /* The largest id leaves no room for another. */
    kf->keys[0].id = UINT32_MAX;
    assert_int_equal(ps_keyring_file_add_key(kf, T2026, NULL, &err), PS_ERR_CONFIG);
    ps_keyring_file_destroy(kf);
}

static struct ps_passphrase *passphrase(const char *text)
{
    struct ps_error err = {0};
    struct ps_passphrase *pp = NULL;
    assert_ok(ps_passphrase_from_text(text, strlen(text), &pp, &err), &err);
    return pp;
}

/* Writes a two-key keyring in the passphrase form (cheap Argon2id for tests)
 * and returns its document (secrets known to the test). */
static struct ps_keyring_file *write_encrypted(const char *path, const char *pass)
{
    struct ps_error err = {0};
    struct ps_keyring_file *kf = NULL;
    struct ps_passbox_params params;
    ps_passbox_params_interactive(&params);
    struct ps_passphrase *pp = passphrase(pass);
    assert_ok(ps_keyring_file_generate(path, T2024, &kf, &err), &err);
    assert_ok(ps_keyring_file_add_key(kf, T2026, NULL, &err), &err);
    struct ps_keyring_write_options opt = {.passphrase = pp, .params = &params, .create = 1};
    assert_ok(ps_keyring_file_write(path, kf, &opt, &err), &err);
    ps_passphrase_destroy(pp);
    return kf;
}

static void test_encrypt_round_trip(void **state)
{
    (void)state;
    struct ps_error err = {0};
    char path[256], pass_file[256];
    path_of("enc.yaml", path, sizeof(path));
    path_of("pass.txt", pass_file, sizeof(pass_file));
    struct ps_keyring_file *kf = write_encrypted(path, PASSPHRASE);

    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *text = slurp(path);
    assert_non_null(strstr(text, "encrypted:"));
    assert_non_null(strstr(text, "kdf: argon2id13"));
    assert_null(strstr(text, kf->keys[0].secret_b64));
    assert_null(strstr(text, kf->keys[1].secret_b64));
    assert_null(strstr(text, "not_before"));
    free(text);

    int encrypted = 0;
    assert_ok(ps_keyring_file_is_encrypted(path, &encrypted, &err), &err);
    assert_int_equal(encrypted, 1);

    /* An explicit passphrase. */
    struct ps_passphrase *pp = passphrase(PASSPHRASE);
    struct ps_keyring_file *back = NULL;
    assert_ok(ps_keyring_file_load_pp(path, pp, &back, &err), &err);
    assert_int_equal(back->encrypted, 1);
    assert_int_equal(back->kdf.memlimit, 64u * 1024 * 1024);
    assert_int_equal(back->key_count, 2);
    assert_string_equal(back->keys[0].secret_b64, kf->keys[0].secret_b64);
    assert_string_equal(back->keys[1].secret_b64, kf->keys[1].secret_b64);
    assert_int_equal(back->keys[1].not_before_ms, T2026);
    ps_keyring_file_destroy(back);
    back = NULL;

    /* From the environment, transparently (what `run` does). */
    setenv(PS_PASSPHRASE_ENV, PASSPHRASE, 1);
    assert_ok(ps_keyring_file_load(path, &back, &err), &err);
    assert_string_equal(back->keys[1].secret_b64, kf->keys[1].secret_b64);
    ps_keyring_file_destroy(back);
    back = NULL;
    unsetenv(PS_PASSPHRASE_ENV);

    /* From a file, with its trailing newline; a file others may read is refused. */
    write_text(pass_file, PASSPHRASE "\n", 0600);
    assert_ok(ps_keyring_file_load_with_passphrase(path, pass_file, &back, &err), &err);
    assert_string_equal(back->keys[0].secret_b64, kf->keys[0].secret_b64);
    ps_keyring_file_destroy(back);
    back = NULL;
    setenv(PS_PASSPHRASE_FILE_ENV, pass_file, 1);
    assert_ok(ps_keyring_file_load(path, &back, &err), &err);
    ps_keyring_file_destroy(back);
    back = NULL;
    unsetenv(PS_PASSPHRASE_FILE_ENV);
    assert_int_equal(chmod(pass_file, 0644), 0);
    assert_int_equal(ps_keyring_file_load_with_passphrase(path, pass_file, &back, &err),
                     PS_ERR_PERMISSION);
    assert_non_null(strstr(err.msg, "chmod 600"));
    assert_null(strstr(err.msg, PASSPHRASE));

    /* No passphrase at all: the message says how to give one. */
    assert_int_equal(ps_keyring_file_load(path, &back, &err), PS_ERR_CONFIG);
    assert_non_null(strstr(err.msg, PS_PASSPHRASE_FILE_ENV));
    assert_int_equal(ps_keyring_file_load_pp(path, NULL, &back, &err), PS_ERR_CONFIG);
    assert_null(back);

    /* Adding a key to a protected keyring keeps it protected. */
    assert_ok(ps_keyring_file_load_pp(path, pp, &back, &err), &err);
    assert_ok(ps_keyring_file_add_key(back, T2026 + 1000, NULL, &err), &err);
    struct ps_keyring_write_options opt = {.passphrase = pp, .params = &back->kdf};
    assert_ok(ps_keyring_file_write(path, back, &opt, &err), &err);
    ps_keyring_file_destroy(back);
    back = NULL;
    assert_ok(ps_keyring_file_load_pp(path, pp, &back, &err), &err);
    assert_int_equal(back->encrypted, 1);
    assert_int_equal(back->key_count, 3);
    ps_keyring_file_destroy(back);

    ps_passphrase_destroy(pp);
    ps_keyring_file_destroy(kf);
    unlink(path);
    unlink(pass_file);
}

static void assert_no_secret(const struct ps_error *err, const struct ps_keyring_file *kf)
{
    char line[PS_ERROR_MSG_MAX + PS_ERROR_FILE_MAX + 32];
    ps_error_format(err, line, sizeof(line));
    for (size_t i = 0; i < kf->key_count; i++) {
        assert_null(strstr(line, kf->keys[i].secret_b64));
    }
    assert_null(strstr(line, PASSPHRASE));
    assert_null(strstr(line, "not_before"));
}

static void test_wrong_passphrase(void **state)
{
    (void)state;
    struct ps_error err = {0};
    char path[256];
    path_of("wrong.yaml", path, sizeof(path));
    struct ps_keyring_file *kf = write_encrypted(path, PASSPHRASE);
    struct ps_keyring_file *back = NULL;

    struct ps_passphrase *wrong = passphrase("artificial test passphrase 0002");
    assert_int_equal(ps_keyring_file_load_pp(path, wrong, &back, &err), PS_ERR_CONFIG);
    assert_null(back);
    assert_non_null(strstr(err.msg, "wrong passphrase or damaged file"));
    assert_no_secret(&err, kf);
    ps_passphrase_destroy(wrong);

    /* A changed ciphertext byte is the same failure, with the same words. */
    char *text = slurp(path);
    char *ct = strstr(text, "ciphertext: \"");
    assert_non_null(ct);
    ct += strlen("ciphertext: \"") + 10;
    *ct = *ct == 'A' ? 'B' : 'A';
    write_text(path, text, 0600);
    free(text);
    struct ps_passphrase *pp = passphrase(PASSPHRASE);
    assert_int_equal(ps_keyring_file_load_pp(path, pp, &back, &err), PS_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "wrong passphrase or damaged file"));
    assert_no_secret(&err, kf);

    /* A hostile cost is refused before any work is done. */
    write_text(path,
               "encrypted:\n  kdf: argon2id13\n  opslimit: 3\n  memlimit: 99999999999999\n"
               "  salt: \"AAAAAAAAAAAAAAAAAAAAAA==\"\n  cipher: xchacha20poly1305-ietf\n"
               "  nonce: \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"\n  ciphertext: \"AAAA\"\n",
               0600);
    assert_int_equal(ps_keyring_file_load_pp(path, pp, &back, &err), PS_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "memlimit"));
    /* An unknown algorithm names its line. */
    write_text(path,
               "encrypted:\n  kdf: scrypt\n  opslimit: 3\n  memlimit: 8192\n"
               "  salt: \"AAAAAAAAAAAAAAAAAAAAAA==\"\n  cipher: xchacha20poly1305-ietf\n"
               "  nonce: \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"\n  ciphertext: \"AAAA\"\n",
               0600);
    assert_int_equal(ps_keyring_file_load_pp(path, pp, &back, &err), PS_ERR_CONFIG);
    assert_int_equal(err.line, 2);
    /* A protected file readable by others is refused before decryption. */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(ps_keyring_file_load_pp(path, pp, &back, &err), PS_ERR_PERMISSION);
    assert_non_null(strstr(err.msg, "chmod 600"));

    ps_passphrase_destroy(pp);
    ps_keyring_file_destroy(kf);
    unlink(path);
}

static void test_passphrase_sources(void **state)
{
    (void)state;
    struct ps_error err = {0};
    struct ps_passphrase *pp = NULL;
    char pass_file[256];
    path_of("empty-pass.txt", pass_file, sizeof(pass_file));

    assert_int_equal(ps_passphrase_from_text("", 0, &pp, &err), PS_ERR_CONFIG);
    char long_text[PS_PASSPHRASE_MAX + 2];
    memset(long_text, 'x', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = '\0';
    assert_int_equal(ps_passphrase_from_text(long_text, strlen(long_text), &pp, &err),
                     PS_ERR_CONFIG);
    write_text(pass_file, "\n", 0600);
    assert_int_equal(ps_passphrase_from_file(pass_file, &pp, &err), PS_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "empty"));
    assert_null(pp);

    /* The resolution order: explicit file, then the file variable, then the
     * variable holding the passphrase. */
    assert_int_equal(ps_passphrase_resolve(NULL, &pp, &err), PS_ERR_CONFIG);
    setenv(PS_PASSPHRASE_ENV, PASSPHRASE, 1);
    assert_ok(ps_passphrase_resolve(NULL, &pp, &err), &err);
    ps_passphrase_destroy(pp);
    pp = NULL;
    setenv(PS_PASSPHRASE_FILE_ENV, pass_file, 1);
    assert_int_equal(ps_passphrase_resolve(NULL, &pp, &err), PS_ERR_CONFIG); /* empty file */
    unsetenv(PS_PASSPHRASE_FILE_ENV);
    unsetenv(PS_PASSPHRASE_ENV);
    ps_passphrase_destroy(NULL);

    /* Sealing below libsodium's INTERACTIVE cost is refused. */
    struct ps_passbox box = {0};
    struct ps_passbox_params weak = {.opslimit = 1, .memlimit = 8192};
    pp = passphrase(PASSPHRASE);
    assert_int_equal(ps_passbox_seal(pp, &weak, "x", 1, &box, &err), PS_ERR_INVALID);
    ps_passphrase_destroy(pp);
    ps_passbox_clear(&box);
    unlink(pass_file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_and_add),        cmocka_unit_test(test_write_errors),
        cmocka_unit_test(test_encrypt_round_trip), cmocka_unit_test(test_wrong_passphrase),
        cmocka_unit_test(test_passphrase_sources),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
