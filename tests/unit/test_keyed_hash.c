/*
 * ps_keyed_hash: known answers for the keyed BLAKE2b-128 digest, and the
 * properties the opt-out state relies on (a fresh key per object, nothing of
 * the input in the output).
 *
 * The expected digests were computed with python3, not with this code:
 *   hashlib.blake2b(data, key=bytes(range(32)), digest_size=16).hexdigest()
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ps_keyed_hash.h"

struct kat {
    const char *data;
    const char *hex;
};

static const struct kat kats[] = {
    {"", "3daf97bce7888fd59773c66bf647459c"},
    {"9990000018", "d8c356826bf2a1f2c1dd8ec0de2ea394"},
    {"abc", "1a64be47e4729d951c302ee543f97cf3"},
};

static void to_hex(const uint8_t *bytes, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++) {
        snprintf(out + 2 * i, 3, "%02x", bytes[i]);
    }
}

static void assert_ok(ps_err_t rc, const struct ps_error *err)
{
    if (rc != PS_OK) {
        fail_msg("%s: %s", ps_err_name(rc), err->msg);
    }
}

static void test_known_answers(void **state)
{
    (void)state;
    struct ps_error err = {0};
    uint8_t key[PS_KEYED_HASH_KEY_BYTES];
    for (size_t i = 0; i < sizeof(key); i++) {
        key[i] = (uint8_t)i;
    }
    struct ps_keyed_hash *kh = NULL;
    assert_ok(ps_keyed_hash_new_from_key(key, sizeof(key), &kh, &err), &err);
    for (size_t i = 0; i < sizeof(kats) / sizeof(kats[0]); i++) {
        uint8_t out[PS_KEYED_HASH_BYTES];
        char hex[2 * PS_KEYED_HASH_BYTES + 1];
        ps_keyed_hash_compute(kh, kats[i].data, strlen(kats[i].data), out);
        to_hex(out, sizeof(out), hex);
        assert_string_equal(hex, kats[i].hex);
    }
    /* NULL data with length 0 is the empty message. */
    uint8_t out[PS_KEYED_HASH_BYTES];
    char hex[2 * PS_KEYED_HASH_BYTES + 1];
    ps_keyed_hash_compute(kh, NULL, 0, out);
    to_hex(out, sizeof(out), hex);
    assert_string_equal(hex, kats[0].hex);
    ps_keyed_hash_destroy(kh);
}

static void test_random_keys(void **state)
{
    (void)state;
    struct ps_error err = {0};
    struct ps_keyed_hash *a = NULL;
    struct ps_keyed_hash *b = NULL;
    assert_ok(ps_keyed_hash_new(&a, &err), &err);
    assert_ok(ps_keyed_hash_new(&b, &err), &err);
    uint8_t da[PS_KEYED_HASH_BYTES];
    uint8_t da2[PS_KEYED_HASH_BYTES];
    uint8_t db[PS_KEYED_HASH_BYTES];
    ps_keyed_hash_compute(a, "9990000018", 10, da);
    ps_keyed_hash_compute(a, "9990000018", 10, da2);
    ps_keyed_hash_compute(b, "9990000018", 10, db);
    /* Stable under one key, unrelated under another. */
    assert_memory_equal(da, da2, sizeof(da));
    assert_memory_not_equal(da, db, sizeof(da));
    /* The digest is not the input. */
    assert_memory_not_equal(da, "9990000018", 10);
    /* The lock may fail under a low RLIMIT_MEMLOCK; either answer is a flag. */
    int locked = ps_keyed_hash_locked(a);
    assert_true(locked == 0 || locked == 1);
    assert_int_equal(ps_keyed_hash_locked(NULL), 0);
    ps_keyed_hash_destroy(a);
    ps_keyed_hash_destroy(b);
    ps_keyed_hash_destroy(NULL);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    struct ps_error err = {0};
    struct ps_keyed_hash *kh = NULL;
    uint8_t key[PS_KEYED_HASH_KEY_BYTES] = {0};
    assert_int_equal(ps_keyed_hash_new(NULL, &err), PS_ERR_INVALID);
    assert_int_equal(ps_keyed_hash_new_from_key(key, 16, &kh, &err), PS_ERR_INVALID);
    assert_int_equal(ps_keyed_hash_new_from_key(NULL, sizeof(key), &kh, &err), PS_ERR_INVALID);
    assert_null(kh);

    char buf[12] = "9990000018";
    ps_keyed_hash_wipe(buf, sizeof(buf));
    for (size_t i = 0; i < sizeof(buf); i++) {
        assert_int_equal(buf[i], 0);
    }
    ps_keyed_hash_wipe(NULL, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_random_keys),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
