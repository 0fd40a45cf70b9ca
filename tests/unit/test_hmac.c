/*
 * Unit tests for ps_hmac: the SHA-extension path against libsodium (the
 * reference) for keys and messages of every length around the block
 * boundaries, split into parts at varying places; RFC 4231's vectors through
 * the dispatching entry point; the refusals (message too long, a state that
 * is not freshly keyed falls back to libsodium and stays correct).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "ps_hmac.h"

static int setup(void **state)
{
    (void)state;
    return sodium_init() < 0 ? -1 : 0;
}

static void hex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        assert_int_equal(sscanf(s + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

/* The one-shot libsodium HMAC of key and msg: what every path must equal. */
static void reference(const uint8_t *key, size_t key_len, const uint8_t *msg, size_t len,
                      uint8_t out[PS_HMAC_BYTES])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, key_len);
    crypto_auth_hmacsha256_update(&st, msg, len);
    crypto_auth_hmacsha256_final(&st, out);
}

static void test_rfc4231(void **state)
{
    (void)state;
    /* RFC 4231 test cases 1, 2 and 6 (a key longer than a block). */
    static const struct {
        const char *key_hex;
        size_t key_len;
        const char *msg;
        const char *mac_hex;
    } cases[] = {
        {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", 20, "Hi There",
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {"4a656665", 4, "what do ya want for nothing?",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {NULL, 131, "Test Using Larger Than Block-Size Key - Hash Key First",
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        uint8_t key[131], want[PS_HMAC_BYTES], got[PS_HMAC_BYTES];
        if (cases[c].key_hex) {
            hex(cases[c].key_hex, key, cases[c].key_len);
        } else {
            memset(key, 0xaa, cases[c].key_len);
        }
        hex(cases[c].mac_hex, want, sizeof(want));
        crypto_auth_hmacsha256_state keyed;
        crypto_auth_hmacsha256_init(&keyed, key, cases[c].key_len);
        size_t len = strlen(cases[c].msg);
        struct ps_hmac_part parts[2] = {{cases[c].msg, len / 2},
                                        {cases[c].msg + len / 2, len - len / 2}};
        assert_int_equal(ps_hmac_finish(&keyed, parts, 2, got), 0);
        assert_memory_equal(got, want, sizeof(want));
        assert_int_equal(ps_hmac_finish_portable(&keyed, parts, 2, got), 0);
        assert_memory_equal(got, want, sizeof(want));
        if (ps_hmac_finish_hw(&keyed, parts, 2, got) == 0) {
            assert_memory_equal(got, want, sizeof(want));
        }
    }
}

/* Every message length from 0 to 300 (the blocks of one to six, each side of
 * every padding boundary) under keys shorter than, equal to and longer than a
 * block, split into up to three parts. */
static void test_hw_equals_libsodium(void **state)
{
    (void)state;
    if (!ps_hmac_accelerated()) {
        print_message("no SHA extensions on this processor (or PS_SHA_PORTABLE=1): "
                      "the accelerated path is not exercised here\n");
        skip();
    }
    static const size_t key_lens[] = {0, 1, 20, 32, 63, 64, 65, 131};
    uint8_t seed[randombytes_SEEDBYTES] = {7};
    uint8_t key[131], msg[1024];
    randombytes_buf_deterministic(msg, sizeof(msg), seed);
    size_t compared = 0;
    for (size_t k = 0; k < sizeof(key_lens) / sizeof(key_lens[0]); k++) {
        memcpy(key, msg + 512, sizeof(key));
        key[0] = (uint8_t)k;
        crypto_auth_hmacsha256_state keyed;
        crypto_auth_hmacsha256_init(&keyed, key, key_lens[k]);
        for (size_t len = 0; len <= 300; len++) {
            uint8_t want[PS_HMAC_BYTES], hw[PS_HMAC_BYTES], any[PS_HMAC_BYTES];
            reference(key, key_lens[k], msg + k, len, want);
            size_t a = len / 3, b = (len * 2) / 3;
            struct ps_hmac_part parts[3] = {
                {msg + k, a}, {msg + k + a, b - a}, {msg + k + b, len - b}};
            assert_int_equal(ps_hmac_finish_hw(&keyed, parts, 3, hw), 0);
            assert_memory_equal(hw, want, sizeof(want));
            assert_int_equal(ps_hmac_finish(&keyed, parts + 2, 1, any), 0);
            reference(key, key_lens[k], msg + k + b, len - b, want);
            assert_memory_equal(any, want, sizeof(want));
            compared += 2;
        }
    }
    /* The largest message accepted, in one part. */
    uint8_t big[PS_HMAC_MESSAGE_MAX], want[PS_HMAC_BYTES], hw[PS_HMAC_BYTES];
    randombytes_buf_deterministic(big, sizeof(big), seed);
    crypto_auth_hmacsha256_state keyed;
    crypto_auth_hmacsha256_init(&keyed, key, 32);
    reference(key, 32, big, sizeof(big), want);
    struct ps_hmac_part whole = {big, sizeof(big)};
    assert_int_equal(ps_hmac_finish_hw(&keyed, &whole, 1, hw), 0);
    assert_memory_equal(hw, want, sizeof(want));
    assert_true(compared > 4000);
}

static void test_too_long_refused(void **state)
{
    (void)state;
    uint8_t big[PS_HMAC_MESSAGE_MAX + 1] = {0};
    uint8_t out[PS_HMAC_BYTES], untouched[PS_HMAC_BYTES];
    memset(out, 0x5a, sizeof(out));
    memcpy(untouched, out, sizeof(out));
    crypto_auth_hmacsha256_state keyed;
    crypto_auth_hmacsha256_init(&keyed, (const uint8_t *)"k", 1);
    struct ps_hmac_part parts[2] = {{big, PS_HMAC_MESSAGE_MAX}, {big, 1}};
    assert_int_equal(ps_hmac_finish(&keyed, parts, 2, out), -1);
    assert_int_equal(ps_hmac_finish_portable(&keyed, parts, 2, out), -1);
    assert_int_equal(ps_hmac_finish_hw(&keyed, parts, 2, out), -1);
    assert_memory_equal(out, untouched, sizeof(out));
}

/* A state already updated is not "freshly keyed": the accelerated path
 * declines it and the dispatcher's answer is still HMAC(key, prefix || parts). */
static void test_used_state_falls_back(void **state)
{
    (void)state;
    uint8_t want[PS_HMAC_BYTES], got[PS_HMAC_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const uint8_t *)"key", 3);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)"prefix:", 7);
    struct ps_hmac_part part = {"value", 5};
    assert_int_equal(ps_hmac_finish_hw(&st, &part, 1, got), -1);
    assert_int_equal(ps_hmac_finish(&st, &part, 1, got), 0);
    reference((const uint8_t *)"key", 3, (const uint8_t *)"prefix:value", 12, want);
    assert_memory_equal(got, want, sizeof(want));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4231),
        cmocka_unit_test(test_hw_equals_libsodium),
        cmocka_unit_test(test_too_long_refused),
        cmocka_unit_test(test_used_state_falls_back),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
