/*
 * ps_keyring_file: the keyring file. Besides form, two promises are tested:
 * a file that group or others may read is refused, and no error message
 * repeats a secret (the fixtures' fake secrets all start with "RkFLRS1").
 *
 * git does not keep file modes, so each test sets 0600 on its fixture first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ps_keyring_file.h"

#define DATA "tests/unit/data/keyring/"
#define FAKE_SECRET_PREFIX "RkFLRS1"

static ps_err_t load_private(const char *path, struct ps_keyring_file **kf_p,
                             struct ps_error *err)
{
    assert_int_equal(chmod(path, 0600), 0);
    ps_error_clear(err);
    return ps_keyring_file_load(path, kf_p, err);
}

static void expect_error(const char *path, const char *expected)
{
    struct ps_error err;
    struct ps_keyring_file *kf = NULL;
    char line[PS_ERROR_MSG_MAX + PS_ERROR_FILE_MAX + 32];
    ps_err_t rc = load_private(path, &kf, &err);
    ps_error_format(&err, line, sizeof(line));
    assert_string_equal(line, expected);
    assert_int_equal(rc, PS_ERR_CONFIG);
    assert_null(kf);
    assert_null(strstr(line, FAKE_SECRET_PREFIX));
}

static void test_good(void **state)
{
    (void)state;
    struct ps_error err;
    struct ps_keyring_file *kf = NULL;
    assert_int_equal(load_private(DATA "good.yaml", &kf, &err), PS_OK);
    assert_string_equal(kf->file, DATA "good.yaml");
    assert_int_equal(kf->key_count, 2);
    assert_int_equal(kf->keys[0].id, 1);
    assert_int_equal(kf->keys[0].not_before_ms, INT64_C(1704067200000)); /* 2024-01-01 */
    assert_int_equal(kf->keys[0].retired, 0);
    assert_string_equal(kf->keys[0].secret_b64, "RkFLRS1LRVktRk9SLVVOSVQtVEVTVFMtT05MWS0wMDE=");
    assert_int_equal(kf->keys[1].id, 2);
    assert_int_equal(kf->keys[1].not_before_ms, INT64_C(1780272000000)); /* 2026-06-01 */
    assert_int_equal(kf->keys[1].retired, 1);
    assert_string_equal(kf->keys[1].secret_b64, "RkFLRS1LRVktRk9SLVVOSVQtVEVTVFMtT05MWS0wMDI=");
    ps_keyring_file_destroy(kf);
}

static void write_copy(const char *from, const char *to, mode_t mode)
{
    char buf[4096];
    FILE *in = fopen(from, "r");
    assert_non_null(in);
    size_t n = fread(buf, 1, sizeof(buf), in);
    fclose(in);
    FILE *out = fopen(to, "w");
    assert_non_null(out);
    assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(out);
    assert_int_equal(chmod(to, mode), 0);
}

static void test_permissions(void **state)
{
    (void)state;
    static const mode_t refused[] = {0644, 0640, 0604, 0660, 0602, 0620, 0610, 0601};
    static const mode_t accepted[] = {0600, 0400};
    char dir[] = "/tmp/ps_test_keyring_XXXXXX";
    char path[64];
    char expected[256];
    char line[PS_ERROR_MSG_MAX + PS_ERROR_FILE_MAX + 32];
    struct ps_error err;
    struct ps_keyring_file *kf = NULL;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/keyring.yaml", dir);

    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        write_copy(DATA "good.yaml", path, refused[i]);
        ps_error_clear(&err);
        assert_int_equal(ps_keyring_file_load(path, &kf, &err), PS_ERR_PERMISSION);
        assert_null(kf);
        ps_error_format(&err, line, sizeof(line));
        snprintf(expected, sizeof(expected),
                 "%s: holds secrets but group or others may access it (mode %04o); "
                 "run: chmod 600 %s",
                 path, (unsigned)refused[i], path);
        assert_string_equal(line, expected);
        unlink(path);
    }
    for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
        write_copy(DATA "good.yaml", path, accepted[i]);
        ps_error_clear(&err);
        assert_int_equal(ps_keyring_file_load(path, &kf, &err), PS_OK);
        ps_keyring_file_destroy(kf);
        kf = NULL;
        unlink(path);
    }
    rmdir(dir);
}

/* The mode is checked before anything is parsed: a readable file with a
 * broken body is still refused for its mode. */
static void test_permission_checked_first(void **state)
{
    (void)state;
    char dir[] = "/tmp/ps_test_keyring_XXXXXX";
    char path[64];
    struct ps_error err;
    struct ps_keyring_file *kf = NULL;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/keyring.yaml", dir);
    write_copy(DATA "bad_id.yaml", path, 0644);
    ps_error_clear(&err);
    assert_int_equal(ps_keyring_file_load(path, &kf, &err), PS_ERR_PERMISSION);
    unlink(path);
    rmdir(dir);
}

static void test_bad_values(void **state)
{
    (void)state;
    expect_error(DATA "bad_id.yaml",
                 DATA "bad_id.yaml:5:9: keys[1].id must be a whole number from 0 to 4294967295 "
                      "in plain digits, with no sign or leading zero (e.g. id: 1)");
    expect_error(DATA "bad_duplicate_id.yaml",
                 DATA "bad_duplicate_id.yaml:5:9: keys[1].id 7 is already used by keys[0] "
                      "(give every key its own id)");
    expect_error(DATA "bad_not_before.yaml",
                 DATA "bad_not_before.yaml:3:17: keys[0].not_before is not an ISO 8601 date or "
                      "instant (e.g. not_before: \"2024-01-01T00:00:00Z\")");
    expect_error(DATA "bad_secret_short.yaml",
                 DATA "bad_secret_short.yaml:4:13: keys[0].secret must be standard base64, with "
                      "padding, of 32 to 64 random bytes (make one with: head -c 32 /dev/urandom "
                      "| base64)");
    expect_error(DATA "bad_secret_unpadded.yaml",
                 DATA "bad_secret_unpadded.yaml:4:13: keys[0].secret must be standard base64, "
                      "with padding, of 32 to 64 random bytes (make one with: head -c 32 "
                      "/dev/urandom | base64)");
    expect_error(DATA "bad_retired.yaml",
                 DATA "bad_retired.yaml:5:14: keys[0].retired must be true or false");
}

static void test_bad_form(void **state)
{
    (void)state;
    expect_error(DATA "bad_unknown_key.yaml",
                 DATA "bad_unknown_key.yaml:4:5: unknown key 'secert' in keys[0] (expected one "
                      "of: id, not_before, secret, retired)");
    expect_error(DATA "missing_secret.yaml",
                 DATA "missing_secret.yaml:2:5: keys[0] has no 'secret' (add secret: <base64 of "
                      "32 random bytes, e.g. from: head -c 32 /dev/urandom | base64>)");
    expect_error(DATA "bad_secret_list.yaml",
                 DATA "bad_secret_list.yaml:4:13: keys[0].secret must be a single value, "
                      "not a list");
}

/* Secrets written in the wrong place are not repeated either. */
static void test_secret_never_echoed(void **state)
{
    (void)state;
    expect_error(DATA "bad_secret_as_key.yaml",
                 DATA "bad_secret_as_key.yaml:4:5: unknown key in keys[0] (expected one of: id, "
                      "not_before, secret, retired)");
    expect_error(DATA "bad_secret_in_id.yaml",
                 DATA "bad_secret_in_id.yaml:2:9: keys[0].id must be a whole number from 0 to "
                      "4294967295 in plain digits, with no sign or leading zero (e.g. id: 1)");
}

static void test_io_and_null(void **state)
{
    (void)state;
    struct ps_error err;
    struct ps_keyring_file *kf = NULL;
    ps_error_clear(&err);
    assert_int_equal(ps_keyring_file_load(DATA "no_such_file.yaml", &kf, &err), PS_ERR_IO);
    assert_null(kf);
    assert_int_equal(ps_keyring_file_load(NULL, &kf, &err), PS_ERR_INVALID);
    ps_keyring_file_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_permissions),
        cmocka_unit_test(test_permission_checked_first),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_bad_form),
        cmocka_unit_test(test_secret_never_echoed),
        cmocka_unit_test(test_io_and_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
