/*
 * ps_escrow: sealed boxes to one or two re-identification authorities, key
 * files, and the bounded "already escrowed" cache. Every NHS number is from
 * the 999 test range.
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

#include "ps_escrow.h"
#include "ps_keyring.h"

#define NHS "9990000018"

static int contains(const uint8_t *hay, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++) {
        if (memcmp(hay + i, needle, n) == 0) {
            return 1;
        }
    }
    return 0;
}

static void assert_ok_(ps_err_t rc, const struct ps_error *err, const char *file, int line)
{
    if (rc != PS_OK) {
        fprintf(stderr, "%s:%d: %s (%s)\n", file, line, err->msg, ps_err_name(rc));
    }
    _assert_int_equal(rc, PS_OK, file, line);
}
#define assert_ok(rc, err) assert_ok_((rc), (err), __FILE__, __LINE__)

/* A fresh authority: its secret key, and its public key in auth at slot. */
static struct ps_escrow_secret *authority(struct ps_escrow_authorities *auth, size_t slot)
{
    struct ps_error err = {0};
    struct ps_escrow_secret *sk = NULL;
    uint8_t raw[PS_ESCROW_KEY_BYTES];
    FILE *rnd = fopen("/dev/urandom", "rb");
    assert_non_null(rnd);
    assert_int_equal(fread(raw, 1, sizeof(raw), rnd), sizeof(raw));
    fclose(rnd);
    assert_ok(ps_escrow_secret_from_bytes(raw, &sk, &err), &err);
    if (auth) {
        ps_escrow_secret_public(sk, auth->pk[slot]);
        if (auth->count < slot + 1) {
            auth->count = slot + 1;
        }
    }
    return sk;
}

static void test_round_trip(void **state)
{
    (void)state;
    struct ps_error err = {0};
    struct ps_escrow_authorities auth = {0};
    struct ps_escrow_secret *sk = authority(&auth, 0);
    struct ps_buf sealed, opened;
    ps_buf_init(&sealed, 0);
    ps_buf_init(&opened, 0);

    assert_ok(ps_escrow_seal(&auth, NHS, strlen(NHS), &sealed, &err), &err);
    /* magic + value + one sealed-box overhead, and no clear text inside. */
    assert_int_equal(sealed.len, 4 + strlen(NHS) + PS_ESCROW_SEAL_OVERHEAD);
    assert_false(contains(sealed.data, sealed.len, NHS));
    const struct ps_escrow_secret *keys[] = {sk};
    assert_ok(ps_escrow_open(keys, 1, sealed.data, sealed.len, &opened, &err), &err);
    assert_int_equal(opened.len, strlen(NHS));
    assert_memory_equal(opened.data, NHS, strlen(NHS));

    /* Two seals of one value differ (ephemeral keys): the topic does not show
     * which records hold the same identifier beyond their keys. */
    struct ps_buf again;
    ps_buf_init(&again, 0);
    assert_ok(ps_escrow_seal(&auth, NHS, strlen(NHS), &again, &err), &err);
    assert_int_equal(again.len, sealed.len);
    assert_memory_not_equal(again.data, sealed.data, sealed.len);

    ps_buf_free(&again);
    ps_buf_free(&sealed);
    ps_buf_free(&opened);
    ps_escrow_secret_destroy(sk);
}

static void test_wrong_key(void **state)
{
    (void)state;
    struct ps_error err = {0};
    struct ps_escrow_authorities auth = {0};
    struct ps_escrow_secret *sk = authority(&auth, 0);
    struct ps_escrow_secret *other = authority(NULL, 0);
    struct ps_buf sealed, opened;
    ps_buf_init(&sealed, 0);
    ps_buf_init(&opened, 0);
    assert_ok(ps_escrow_seal(&auth, NHS, strlen(NHS), &sealed, &err), &err);

    const struct ps_escrow_secret *wrong[] = {other};
    assert_int_equal(ps_escrow_open(wrong, 1, sealed.data, sealed.len, &opened, &err),
                     PS_ERR_PERMISSION);
    assert_non_null(strstr(err.msg, "cannot be opened"));
    assert_null(strstr(err.msg, NHS));
    assert_int_equal(opened.len, 0);

    /* A changed byte does not open either. */
    sealed.data[sealed.len - 1] ^= 1;
    const struct ps_escrow_secret *right[] = {sk};
    assert_int_equal(ps_escrow_open(right, 1, sealed.data, sealed.len, &opened, &err),
                     PS_ERR_PERMISSION);
    /* Nor does something too short to be a sealed box. */
    assert_int_equal(ps_escrow_open(right, 1, "x", 1, &opened, &err), PS_ERR_PERMISSION);

    ps_buf_free(&sealed);
    ps_buf_free(&opened);
    ps_escrow_secret_destroy(sk);
    ps_escrow_secret_destroy(other);
}

static void test_two_authorities(void **state)
{
    (void)state;
    struct ps_error err = {0};
    struct ps_escrow_authorities auth = {0};
    struct ps_escrow_secret *first = authority(&auth, 0);
    struct ps_escrow_secret *second = authority(&auth, 1);
    struct ps_escrow_secret *other = authority(NULL, 0);
    struct ps_buf sealed, opened;
    ps_buf_init(&sealed, 0);
    ps_buf_init(&opened, 0);

    assert_int_equal(auth.count, 2);
    assert_ok(ps_escrow_seal(&auth, NHS, strlen(NHS), &sealed, &err), &err);
    assert_int_equal(sealed.len, 4 + strlen(NHS) + 2 * PS_ESCROW_SEAL_OVERHEAD);

    /* Both keys, in either order. */
    const struct ps_escrow_secret *both[] = {first, second};
    assert_ok(ps_escrow_open(both, 2, sealed.data, sealed.len, &opened, &err), &err);
    assert_memory_equal(opened.data, NHS, strlen(NHS));
    const struct ps_escrow_secret *reversed[] = {second, first};
    assert_ok(ps_escrow_open(reversed, 2, sealed.data, sealed.len, &opened, &err), &err);
    assert_memory_equal(opened.data, NHS, strlen(NHS));

    /* Either authority alone opens nothing: the outer layer needs the second,
     * and what it reveals is the inner sealed box, which is refused. */
    const struct ps_escrow_secret *only_second[] = {second};
    assert_int_equal(ps_escrow_open(only_second, 1, sealed.data, sealed.len, &opened, &err),
                     PS_ERR_PERMISSION);
    assert_non_null(strstr(err.msg, "more authorities"));
    const struct ps_escrow_secret *only_first[] = {first};
    assert_int_equal(ps_escrow_open(only_first, 1, sealed.data, sealed.len, &opened, &err),
                     PS_ERR_PERMISSION);
    /* A stranger in place of one of them fails too. */
    const struct ps_escrow_secret *mixed[] = {first, other};
    assert_int_equal(ps_escrow_open(mixed, 2, sealed.data, sealed.len, &opened, &err),
                     PS_ERR_PERMISSION);

    /* A one-authority record with a key left over is refused. */
    struct ps_escrow_authorities one = {.count = 1};
    memcpy(one.pk[0], auth.pk[0], PS_ESCROW_KEY_BYTES);
    assert_ok(ps_escrow_seal(&one, NHS, strlen(NHS), &sealed, &err), &err);
    assert_int_equal(ps_escrow_open(both, 2, sealed.data, sealed.len, &opened, &err),
                     PS_ERR_PERMISSION);

    ps_buf_free(&sealed);
    ps_buf_free(&opened);
    ps_escrow_secret_destroy(first);
    ps_escrow_secret_destroy(second);
    ps_escrow_secret_destroy(other);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    struct ps_error err = {0};
    struct ps_escrow_authorities auth = {0};
    struct ps_buf out;
    ps_buf_init(&out, 0);
    assert_int_equal(ps_escrow_seal(&auth, NHS, strlen(NHS), &out, &err), PS_ERR_INVALID);
    auth.count = 3;
    assert_int_equal(ps_escrow_seal(&auth, NHS, strlen(NHS), &out, &err), PS_ERR_INVALID);
    auth.count = 1;
    assert_int_equal(ps_escrow_seal(&auth, NHS, 0, &out, &err), PS_ERR_INVALID);
    assert_int_equal(ps_escrow_seal(&auth, NHS, PS_ESCROW_VALUE_MAX + 1, &out, &err),
                     PS_ERR_INVALID);
    /* A buffer whose maximum is too small keeps its limit. */
    struct ps_escrow_secret *sk = authority(&auth, 0);
    struct ps_buf small;
    ps_buf_init(&small, 16);
    assert_int_equal(ps_escrow_seal(&auth, NHS, strlen(NHS), &small, &err), PS_ERR_LIMIT);
    ps_buf_free(&small);
    ps_buf_free(&out);
    ps_escrow_secret_destroy(sk);

    uint8_t pk[PS_ESCROW_KEY_BYTES];
    assert_int_equal(ps_escrow_public_parse("not base64!", pk, &err), PS_ERR_CONFIG);
    assert_int_equal(ps_escrow_public_parse("AAAA", pk, &err), PS_ERR_CONFIG);
    assert_ok(ps_escrow_public_parse(" AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", pk, &err),
              &err);
    assert_int_equal(pk[31], 0x1f);
}

static void test_key_files(void **state)
{
    (void)state;
    struct ps_error err = {0};
    char dir[] = "/tmp/ps-test-escrow-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char pub[128], sec[128];
    snprintf(pub, sizeof(pub), "%s/authority.pub", dir);
    snprintf(sec, sizeof(sec), "%s/authority.key", dir);

    assert_ok(ps_escrow_keypair_write(pub, sec, &err), &err);
    struct stat st;
    assert_int_equal(stat(sec, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* Never replaced. */
    assert_int_equal(ps_escrow_keypair_write(pub, sec, &err), PS_ERR_IO);
    assert_non_null(strstr(err.msg, "never replaced"));

    struct ps_escrow_authorities auth = {.count = 1};
    struct ps_escrow_secret *sk = NULL;
    assert_ok(ps_escrow_public_load(pub, auth.pk[0], &err), &err);
    assert_ok(ps_escrow_secret_load(sec, &sk, &err), &err);
    uint8_t derived[PS_ESCROW_KEY_BYTES];
    ps_escrow_secret_public(sk, derived);
    assert_memory_equal(derived, auth.pk[0], PS_ESCROW_KEY_BYTES);

    struct ps_buf sealed, opened;
    ps_buf_init(&sealed, 0);
    ps_buf_init(&opened, 0);
    assert_ok(ps_escrow_seal(&auth, NHS, strlen(NHS), &sealed, &err), &err);
    const struct ps_escrow_secret *keys[] = {sk};
    assert_ok(ps_escrow_open(keys, 1, sealed.data, sealed.len, &opened, &err), &err);
    assert_memory_equal(opened.data, NHS, strlen(NHS));
    ps_escrow_secret_destroy(sk);
    sk = NULL;

    /* A secret key others may read is refused, and the message names chmod,
     * never the key. */
    char text[128] = {0};
    FILE *f = fopen(sec, "r");
    assert_non_null(f);
    assert_true(fread(text, 1, sizeof(text) - 1, f) > 0);
    fclose(f);
    text[strcspn(text, "\n")] = '\0';
    assert_int_equal(chmod(sec, 0640), 0);
    assert_int_equal(ps_escrow_secret_load(sec, &sk, &err), PS_ERR_PERMISSION);
    assert_null(sk);
    assert_non_null(strstr(err.msg, "chmod 600"));
    assert_null(strstr(err.msg, text));
    /* A file that is not a key. */
    assert_int_equal(chmod(sec, 0600), 0);
    f = fopen(sec, "w");
    assert_non_null(f);
    fputs("not a key\n", f);
    fclose(f);
    assert_int_equal(ps_escrow_secret_load(sec, &sk, &err), PS_ERR_CONFIG);
    assert_int_equal(ps_escrow_public_load(sec, auth.pk[0], &err), PS_ERR_CONFIG);

    ps_buf_free(&sealed);
    ps_buf_free(&opened);
    unlink(pub);
    unlink(sec);
    rmdir(dir);
}

static void test_cache(void **state)
{
    (void)state;
    struct ps_error err = {0};
    struct ps_escrow_cache *cache = NULL;
    char token[32];

    assert_int_equal(ps_escrow_cache_new(0, &cache, &err), PS_ERR_INVALID);
    assert_ok(ps_escrow_cache_new(100, &cache, &err), &err);
    assert_int_equal(ps_escrow_cache_capacity(cache), 100);

    assert_int_equal(ps_escrow_cache_contains(cache, "commissioning", "1.aaaa"), 0);
    assert_int_equal(ps_escrow_cache_add(cache, "commissioning", "1.aaaa"), 0);
    assert_int_equal(ps_escrow_cache_add(cache, "commissioning", "1.aaaa"), 1);
    assert_int_equal(ps_escrow_cache_contains(cache, "commissioning", "1.aaaa"), 1);
    /* The domain is part of the entry. */
    assert_int_equal(ps_escrow_cache_contains(cache, "research", "1.aaaa"), 0);
    /* ("a", "bc") and ("ab", "c") are different pairs. */
    assert_int_equal(ps_escrow_cache_add(cache, "a", "bc"), 0);
    assert_int_equal(ps_escrow_cache_contains(cache, "ab", "c"), 0);
    ps_escrow_cache_clear(cache);
    assert_int_equal(ps_escrow_cache_count(cache), 0);
    assert_int_equal(ps_escrow_cache_contains(cache, "commissioning", "1.aaaa"), 0);

    /* Fill past capacity: the count stays at the bound, the newest 100 are
     * there, the older ones were evicted oldest first. */
    for (int i = 0; i < 350; i++) {
        snprintf(token, sizeof(token), "1.t%d", i);
        assert_int_equal(ps_escrow_cache_add(cache, "commissioning", token), 0);
        assert_true(ps_escrow_cache_count(cache) <= 100);
    }
    assert_int_equal(ps_escrow_cache_count(cache), 100);
    for (int i = 0; i < 350; i++) {
        snprintf(token, sizeof(token), "1.t%d", i);
        assert_int_equal(ps_escrow_cache_contains(cache, "commissioning", token), i >= 250);
    }
    /* Re-adding an evicted entry evicts the oldest remaining one. */
    assert_int_equal(ps_escrow_cache_add(cache, "commissioning", "1.t0"), 0);
    assert_int_equal(ps_escrow_cache_contains(cache, "commissioning", "1.t250"), 0);
    assert_int_equal(ps_escrow_cache_contains(cache, "commissioning", "1.t251"), 1);
    ps_escrow_cache_destroy(cache);
    ps_escrow_cache_destroy(NULL);

    /* A large cache under churn: every live entry is found, none other
     * (exercises the index's deletions across wrapped probe runs). */
    assert_ok(ps_escrow_cache_new(1000, &cache, &err), &err);
    for (int i = 0; i < 20000; i++) {
        snprintf(token, sizeof(token), "2.x%d", i);
        ps_escrow_cache_add(cache, "research", token);
    }
    for (int i = 18000; i < 20000; i++) {
        snprintf(token, sizeof(token), "2.x%d", i);
        assert_int_equal(ps_escrow_cache_contains(cache, "research", token), i >= 19000);
    }
    ps_escrow_cache_destroy(cache);
}

static void test_cache_default_size(void **state)
{
    (void)state;
    struct ps_error err = {0};
    struct ps_escrow_cache *cache = NULL;
    char token[32];
    assert_ok(ps_escrow_cache_new(PS_ESCROW_CACHE_DEFAULT, &cache, &err), &err);
    for (int i = 0; i < 50000; i++) {
        snprintf(token, sizeof(token), "1.p%d", i);
        assert_int_equal(ps_escrow_cache_add(cache, "commissioning", token), 0);
    }
    assert_int_equal(ps_escrow_cache_count(cache), 50000);
    assert_int_equal(ps_escrow_cache_add(cache, "commissioning", "1.p49999"), 1);
    ps_escrow_cache_destroy(cache);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),    cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_two_authorities), cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_key_files),     cmocka_unit_test(test_cache),
        cmocka_unit_test(test_cache_default_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
