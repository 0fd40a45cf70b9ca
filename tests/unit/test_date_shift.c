/*
 * Known answers for the per-patient date shift (the one derivation beside the
 * pseudonym itself): shift = fold(token of kind "date_shift") into the window,
 * where fold is FNV-1a 64 over the token's characters, h mod 2w minus w, with
 * 0 moved to +1 (a shift of 0 would disclose the date). The expected values
 * were computed once with Python's hmac, hashlib and base64 modules, outside
 * this code base (see docs/PSEUDONYMS.md, "Date shift").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ps_keyring.h"
#include "ps_pseudonym.h"
#include "ps_transform.h"

#define SECRET_0_31 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

struct vector {
    const char *domain;
    uint32_t window;
    const char *token;
    int64_t shift;
};

static const struct vector vectors[] = {
    {"research-cohort-a", 180, "1.pqpypfwdaajl5vpcsan56uju7lbjooi2", -12},
    {"commissioning", 30, "1.5fljscgsupdho3oflgocctjp34rk334e", -6},
    {"research-cohort-a", 1, "1.pqpypfwdaajl5vpcsan56uju7lbjooi2", -1},
};

static void test_known_answers(void **state)
{
    (void)state;
    struct ps_keyring *kr = NULL;
    struct ps_keyring_entry entry = {.id = 1, .not_before_ms = 0, .secret_b64 = SECRET_0_31};
    assert_int_equal(ps_crypto_init(NULL), PS_OK);
    assert_int_equal(ps_keyring_new(&entry, 1, "test", &kr, NULL), PS_OK);
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        struct ps_pseudonymiser *p = NULL;
        char token[PS_TOKEN_MAX];
        assert_int_equal(ps_pseudonymiser_new(kr, vectors[i].domain, &p, NULL), PS_OK);
        assert_int_equal(ps_pseudonymise(p, 1767225600000LL, "date_shift", "9990000018", 10,
                                         token, NULL, NULL), PS_OK);
        assert_string_equal(token, vectors[i].token);
        assert_int_equal(ps_transform_shift_days(token, vectors[i].window), vectors[i].shift);
        ps_pseudonymiser_destroy(p);
    }
    ps_keyring_destroy(kr);
}

static void test_never_zero_and_within_window(void **state)
{
    (void)state;
    char token[16];
    for (int i = 0; i < 5000; i++) {
        snprintf(token, sizeof(token), "1.%08d", i);
        int64_t s = ps_transform_shift_days(token, 7);
        assert_true(s != 0 && s >= -7 && s <= 7);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_never_zero_and_within_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
