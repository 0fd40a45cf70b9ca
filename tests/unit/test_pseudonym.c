/*
 * Unit tests for ps_pseudonym: known-answer vectors (literals here and the
 * shared file docs/pseudonym-vectors.json, which tests/unit/test_pseudonym_kat.py
 * reproduces in Python), normalisation, key rotation, error paths and base32.
 *
 * The expected tokens were computed once with Python's hmac, hashlib and
 * base64 modules from the construction in DESIGN.md section 6, never with
 * this code. All NHS numbers are from the 999 test range.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "ps_error.h"
#include "ps_keyring.h"
#include "ps_nhs.h"
#include "ps_pseudonym.h"

/* 32 bytes 0x00..0x1f; 64 bytes 0x20..0x5f. */
#define SECRET_A "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define SECRET_64                                                                          \
    "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj9AQUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVpbXF1eXw=="

#define T1 INT64_C(1704067200000) /* 2024-01-01T00:00:00Z */
#define T2 INT64_C(1780272000000) /* 2026-06-01T00:00:00Z */

/* Known answers with SECRET_A as key 1 (the same as in the JSON file). */
#define TOK_COMM_NHS_9990000018 "1.azmjrzwnzcbxkehom6whk6y2u2tfu7ic"
#define TOK_RES_NHS_9990000018 "1.6qv473ex6parrajgqxhivlo77pu6rek6"
#define TOK_COMM_NHS_9991234578 "1.diohihykpumygnbnsorciikk2usdux6d"
#define TOK_COMM_LOCAL_RX1 "1.vdz5m77l5tkrypvj6txttwwsw2olmd23"
#define TOK_RES_LOCAL_RX1 "1.3r5jplkioyz6jfgiihy6ov22vdwzxkrw"
#define TOK_COMM_LOCAL_9990000018 "1.wtaoe7glia3pe2er6pdxshqmhu4dq5bj"

struct fixture {
    struct ps_keyring *kr;
    struct ps_pseudonymiser *comm;
    struct ps_pseudonymiser *res;
};

static struct ps_keyring *keyring_one(const char *secret_b64, uint32_t id, int64_t not_before)
{
    struct ps_keyring_entry e = {id, not_before, 0, secret_b64};
    struct ps_keyring *kr = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    if (ps_keyring_new(&e, 1, "test", &kr, &err) != PS_OK) {
        fail_msg("ps_keyring_new: %s", err.msg);
    }
    return kr;
}

static struct ps_pseudonymiser *pseudonymiser(const struct ps_keyring *kr, const char *domain)
{
    struct ps_pseudonymiser *p = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    if (ps_pseudonymiser_new(kr, domain, &p, &err) != PS_OK) {
        fail_msg("ps_pseudonymiser_new: %s", err.msg);
    }
    return p;
}

static int setup(void **state)
{
    struct ps_error err;
    ps_error_clear(&err);
    if (ps_crypto_init(&err) != PS_OK) {
        return -1;
    }
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f) {
        return -1;
    }
    f->kr = keyring_one(SECRET_A, 1, 0);
    f->comm = pseudonymiser(f->kr, "commissioning");
    f->res = pseudonymiser(f->kr, "research");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    ps_pseudonymiser_destroy(f->comm);
    ps_pseudonymiser_destroy(f->res);
    ps_keyring_destroy(f->kr);
    free(f);
    return 0;
}

/* Pseudonymises a NUL-terminated value at T1 and returns the token in buf. */
static const char *tok(const struct ps_pseudonymiser *p, const char *kind, const char *value,
                       char buf[PS_TOKEN_MAX])
{
    struct ps_error err;
    uint32_t key_id = 0;
    ps_error_clear(&err);
    if (ps_pseudonymise(p, T1, kind, value, strlen(value), buf, &key_id, &err) != PS_OK) {
        fail_msg("ps_pseudonymise: %s", err.msg);
    }
    return buf;
}

static void test_known_answers(void **state)
{
    struct fixture *f = *state;
    char t[PS_TOKEN_MAX];

    assert_string_equal(tok(f->comm, "nhs_number", "9990000018", t), TOK_COMM_NHS_9990000018);
    assert_string_equal(tok(f->comm, "nhs_number", "999 000 0018", t), TOK_COMM_NHS_9990000018);
    assert_string_equal(tok(f->comm, "nhs_number", "999-000-0018", t), TOK_COMM_NHS_9990000018);
    assert_string_equal(tok(f->res, "nhs_number", "9990000018", t), TOK_RES_NHS_9990000018);
    assert_string_equal(tok(f->res, "nhs_number", "999 000 0018", t), TOK_RES_NHS_9990000018);

    char nhs[PS_NHS_DIGITS + 1];
    ps_nhs_make_test_number(123456, nhs);
    assert_string_equal(nhs, "9991234578");
    assert_string_equal(tok(f->comm, "nhs_number", nhs, t), TOK_COMM_NHS_9991234578);

    assert_string_equal(tok(f->comm, "local_id", "RX1-00042", t), TOK_COMM_LOCAL_RX1);
    assert_string_equal(tok(f->comm, "local_id", "  rx1-00042\t", t), TOK_COMM_LOCAL_RX1);
    assert_string_equal(tok(f->res, "local_id", "RX1-00042", t), TOK_RES_LOCAL_RX1);
    /* The kind is part of the message: the same digits as a local id differ. */
    assert_string_equal(tok(f->comm, "local_id", "9990000018", t), TOK_COMM_LOCAL_9990000018);
}

static const char *vectors_path(char *buf, size_t size)
{
    const char *dir = getenv("PS_SOURCE_DIR");
#ifdef PS_SOURCE_DIR
    if (!dir) {
        dir = PS_SOURCE_DIR;
    }
#endif
    snprintf(buf, size, "%s/docs/pseudonym-vectors.json", dir ? dir : ".");
    return buf;
}

static const char *str_field(json_t *v, const char *name)
{
    const char *s = json_string_value(json_object_get(v, name));
    if (!s) {
        fail_msg("vector without string field '%s'", name);
    }
    return s;
}

/* Every vector of the shared file, through both entry points, and the
 * normalised form must pseudonymise to the same token as the raw value. */
static void test_vector_file(void **state)
{
    (void)state;
    char path[1024];
    json_error_t jerr;
    json_t *root = json_load_file(vectors_path(path, sizeof(path)), 0, &jerr);
    if (!root) {
        fail_msg("%s:%d: %s", path, jerr.line, jerr.text);
    }
    assert_true(json_is_array(root));
    assert_true(json_array_size(root) >= 10);

    int seen_comm = 0;
    int seen_res = 0;
    int seen_local = 0;
    size_t i;
    json_t *v;
    json_array_foreach(root, i, v) {
        const char *secret = str_field(v, "secret_b64");
        const char *domain = str_field(v, "domain");
        const char *kind = str_field(v, "kind");
        const char *value = str_field(v, "value");
        const char *normalised = str_field(v, "normalised");
        const char *expect = str_field(v, "token");
        json_t *jid = json_object_get(v, "key_id");
        assert_true(json_is_integer(jid));
        json_int_t key_id = json_integer_value(jid);
        assert_true(key_id >= 0 && key_id <= (json_int_t)UINT32_MAX);

        seen_comm |= strcmp(domain, "commissioning") == 0;
        seen_res |= strcmp(domain, "research") == 0;
        seen_local |= strcmp(kind, "local_id") == 0;

        struct ps_keyring *kr = keyring_one(secret, (uint32_t)key_id, T1);
        struct ps_pseudonymiser *p = pseudonymiser(kr, domain);
        struct ps_error err;
        char t[PS_TOKEN_MAX];
        uint32_t got_id = 0;

        ps_error_clear(&err);
        assert_int_equal(ps_pseudonymise_with_key(p, (uint32_t)key_id, kind, value,
                                                  strlen(value), t, &err), PS_OK);
        if (strcmp(t, expect) != 0) {
            fail_msg("vector %zu (%s, %s): got %s, want %s", i, domain, kind, t, expect);
        }
        assert_int_equal(ps_pseudonymise(p, T2, kind, value, strlen(value), t, &got_id, &err),
                         PS_OK);
        assert_string_equal(t, expect);
        assert_int_equal(got_id, (uint32_t)key_id);
        assert_int_equal(ps_pseudonymise(p, T1, kind, normalised, strlen(normalised), t,
                                         NULL, &err), PS_OK);
        assert_string_equal(t, expect);

        ps_pseudonymiser_destroy(p);
        ps_keyring_destroy(kr);
    }
    assert_true(seen_comm && seen_res && seen_local);
    json_decref(root);
}

static void test_deterministic(void **state)
{
    struct fixture *f = *state;
    char a[PS_TOKEN_MAX];
    char b[PS_TOKEN_MAX];

    /* A second replica: its own keyring and pseudonymiser, same secret. */
    struct ps_keyring *kr2 = keyring_one(SECRET_A, 1, 0);
    struct ps_pseudonymiser *comm2 = pseudonymiser(kr2, "commissioning");
    for (uint32_t serial = 0; serial < 200; serial += 7) {
        char nhs[PS_NHS_DIGITS + 1];
        ps_nhs_make_test_number(serial, nhs);
        tok(f->comm, "nhs_number", nhs, a);
        tok(f->comm, "nhs_number", nhs, b);
        assert_string_equal(a, b);
        tok(comm2, "nhs_number", nhs, b);
        assert_string_equal(a, b);
        assert_int_equal(strlen(a), 2 + 32);
        tok(f->res, "nhs_number", nhs, b);
        assert_string_not_equal(a, b);
    }
    assert_string_equal(ps_pseudonymiser_domain(comm2), "commissioning");
    assert_null(ps_pseudonymiser_domain(NULL));
    ps_pseudonymiser_destroy(comm2);
    ps_keyring_destroy(kr2);
}

static void test_domains_and_kinds_separate(void **state)
{
    struct fixture *f = *state;
    char a[PS_TOKEN_MAX];
    char b[PS_TOKEN_MAX];
    tok(f->comm, "local_id", "RX1-00042", a);
    tok(f->res, "local_id", "RX1-00042", b);
    assert_string_not_equal(a, b);
    tok(f->comm, "clinician_id", "RX1-00042", b);
    assert_string_not_equal(a, b);
    /* Normalisation: case and outer white space do not matter, inner does. */
    tok(f->comm, "local_id", "\r\n rx1-00042 \v\f", b);
    assert_string_equal(a, b);
    tok(f->comm, "local_id", "RX1 -00042", b);
    assert_string_not_equal(a, b);
}

/* Runs a call that must fail, and checks the token and key id were left alone
 * and the message does not repeat the value. */
static void expect_fail(const struct ps_pseudonymiser *p, const char *kind, const char *value,
                        size_t len, ps_err_t want)
{
    char t[PS_TOKEN_MAX];
    uint32_t key_id = 777;
    struct ps_error err;
    memset(t, 'x', sizeof(t));
    ps_error_clear(&err);
    assert_int_equal(ps_pseudonymise(p, T1, kind, value, len, t, &key_id, &err), want);
    assert_int_equal(err.code, want);
    assert_true(err.msg[0] != '\0');
    for (size_t i = 0; i < sizeof(t); i++) {
        assert_int_equal(t[i], 'x');
    }
    assert_int_equal(key_id, 777);
    if (value && len >= 4) {
        char head[5];
        memcpy(head, value, 4);
        head[4] = '\0';
        if (strstr(err.msg, head) && strcmp(head, "    ") != 0) {
            fail_msg("message repeats the value: %s", err.msg);
        }
    }
    /* Both entry points agree, and a NULL error detail is allowed. */
    assert_int_equal(ps_pseudonymise_with_key(p, 1, kind, value, len, t, NULL), want);
}

static void test_invalid_nhs(void **state)
{
    struct fixture *f = *state;
    static const char *const bad[] = {
        "9990000019",    /* wrong check digit */
        "9990000010",    /* wrong check digit */
        "999000001",     /* nine digits */
        "99900000188",   /* eleven digits */
        " 9990000018",   /* leading separator */
        "9990000018 ",   /* trailing separator */
        "999.000.0018",  /* not a separator */
        "999O000018",    /* letter O */
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_fail(f->comm, "nhs_number", bad[i], strlen(bad[i]), PS_ERR_NHS_INVALID);
    }
    /* Nine digits with no possible check digit (remainder 1). */
    char nine[10] = "999000000";
    assert_int_equal(ps_nhs_check_digit(nine), -1);
    char ten[11];
    for (int d = 0; d <= 9; d++) {
        snprintf(ten, sizeof(ten), "%s%d", nine, d);
        expect_fail(f->comm, "nhs_number", ten, 10, PS_ERR_NHS_INVALID);
    }
    /* len is honoured: a valid number cut short is invalid. */
    expect_fail(f->comm, "nhs_number", "9990000018", 9, PS_ERR_NHS_INVALID);
    expect_fail(f->comm, "nhs_number", NULL, 0, PS_ERR_NHS_INVALID);
}

static void test_other_kinds_limits(void **state)
{
    struct fixture *f = *state;
    expect_fail(f->comm, "local_id", "", 0, PS_ERR_TRANSFORM);
    expect_fail(f->comm, "local_id", " \t\r\n ", 5, PS_ERR_TRANSFORM);
    expect_fail(f->comm, "local_id", NULL, 0, PS_ERR_TRANSFORM);

    char big[PS_PSEUDONYM_VALUE_MAX + 8];
    char t[PS_TOKEN_MAX];
    struct ps_error err;
    memset(big, 'a', sizeof(big));
    /* Exactly the maximum, also when surrounded by white space. */
    ps_error_clear(&err);
    assert_int_equal(ps_pseudonymise(f->comm, T1, "local_id", big, PS_PSEUDONYM_VALUE_MAX, t,
                                     NULL, &err), PS_OK);
    char u[PS_TOKEN_MAX];
    big[0] = ' ';
    big[PS_PSEUDONYM_VALUE_MAX + 1] = ' ';
    memset(big + 1, 'A', PS_PSEUDONYM_VALUE_MAX);
    assert_int_equal(ps_pseudonymise(f->comm, T1, "local_id", big, PS_PSEUDONYM_VALUE_MAX + 2, u,
                                     NULL, &err), PS_OK);
    assert_string_equal(t, u);
    memset(big, 'a', sizeof(big));
    expect_fail(f->comm, "local_id", big, PS_PSEUDONYM_VALUE_MAX + 1, PS_ERR_TRANSFORM);

    /* Bytes beyond ASCII are kept as they are (no locale-dependent case). */
    char a[PS_TOKEN_MAX];
    tok(f->res, "local_id", " ward-\xc3\xa9" "7 ", a);
    assert_string_equal(a, "1.oofzju2lqn7kp237b3oks7b5ebdzylhg");
    tok(f->res, "local_id", "WARD-\xc3\xa9" "7", u);
    assert_string_equal(a, u);
    tok(f->res, "local_id", "WARD-\xc3\x89" "7", u);
    assert_string_not_equal(a, u);
}

static void test_bad_arguments(void **state)
{
    struct fixture *f = *state;
    static const char *const kinds[] = {"", "NHS_NUMBER", "nhs number", "a:b",
                                        "a_kind_name_that_is_much_too_long"};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        expect_fail(f->comm, kinds[i], "RX1-00042", 9, PS_ERR_INVALID);
    }
    char t[PS_TOKEN_MAX];
    struct ps_error err;
    ps_error_clear(&err);
    assert_int_equal(ps_pseudonymise(NULL, T1, "local_id", "x", 1, t, NULL, &err),
                     PS_ERR_INVALID);
    assert_int_equal(ps_pseudonymise(f->comm, T1, NULL, "x", 1, t, NULL, &err), PS_ERR_INVALID);
    assert_int_equal(ps_pseudonymise(f->comm, T1, "local_id", NULL, 1, t, NULL, &err),
                     PS_ERR_INVALID);
    assert_int_equal(ps_pseudonymise(f->comm, T1, "local_id", "x", 1, NULL, NULL, &err),
                     PS_ERR_INVALID);

    struct ps_pseudonymiser *p = (struct ps_pseudonymiser *)(uintptr_t)1;
    assert_int_equal(ps_pseudonymiser_new(f->kr, "", &p, &err), PS_ERR_INVALID);
    assert_int_equal(ps_pseudonymiser_new(f->kr, NULL, &p, &err), PS_ERR_INVALID);
    assert_int_equal(ps_pseudonymiser_new(NULL, "research", &p, &err), PS_ERR_INVALID);
    assert_int_equal(ps_pseudonymiser_new(f->kr, "research", NULL, &err), PS_ERR_INVALID);
    assert_ptr_equal(p, (struct ps_pseudonymiser *)(uintptr_t)1);
    ps_pseudonymiser_destroy(NULL);
}

static void test_rotation(void **state)
{
    (void)state;
    struct ps_keyring_entry e[3] = {
        {1, T1, 0, SECRET_A}, {2, T2, 0, SECRET_64}, {3, T2 + 1000, 1, SECRET_A}};
    struct ps_keyring *kr = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    assert_int_equal(ps_keyring_new(e, 3, "test", &kr, &err), PS_OK);
    struct ps_pseudonymiser *p = pseudonymiser(kr, "commissioning");
    char t[PS_TOKEN_MAX];
    char u[PS_TOKEN_MAX];
    uint32_t key_id = 0;

    /* Before the first key: no token at all. */
    assert_int_equal(ps_pseudonymise(p, T1 - 1, "nhs_number", "9990000018", 10, t, &key_id,
                                     &err), PS_ERR_NO_KEY);

    /* Key 1 up to the boundary: the same token as the single-key vectors. */
    assert_int_equal(ps_pseudonymise(p, T2 - 1, "nhs_number", "9990000018", 10, t, &key_id,
                                     &err), PS_OK);
    assert_int_equal(key_id, 1);
    assert_string_equal(t, TOK_COMM_NHS_9990000018);

    /* Key 2 from the boundary on; key 3 is retired, so key 2 covers its time too. */
    assert_int_equal(ps_pseudonymise(p, T2, "nhs_number", "9990000018", 10, t, &key_id, &err),
                     PS_OK);
    assert_int_equal(key_id, 2);
    assert_string_equal(t, "2.opkhh3mhe37nq3mmng4tjvtzwwi3lxs4");
    assert_int_equal(ps_pseudonymise(p, INT64_MAX, "nhs_number", "9990000018", 10, u, &key_id,
                                     &err), PS_OK);
    assert_int_equal(key_id, 2);
    assert_string_equal(t, u);

    /* An explicit key id reaches any entry, retired ones included, so tokens
     * issued before a retirement can still be reproduced. */
    assert_int_equal(ps_pseudonymise_with_key(p, 1, "nhs_number", "9990000018", 10, t, &err),
                     PS_OK);
    assert_string_equal(t, TOK_COMM_NHS_9990000018);
    assert_int_equal(ps_pseudonymise_with_key(p, 3, "nhs_number", "9990000018", 10, t, &err),
                     PS_OK);
    /* Same secret as key 1, different id: the same digest under a new prefix. */
    assert_string_equal(t + 2, TOK_COMM_NHS_9990000018 + 2);
    assert_int_equal(t[0], '3');
    memset(t, 'x', sizeof(t));
    assert_int_equal(ps_pseudonymise_with_key(p, 4, "nhs_number", "9990000018", 10, t, &err),
                     PS_ERR_NO_KEY);
    assert_int_equal(ps_pseudonymise_with_key(p, 0, "nhs_number", "9990000018", 10, t, &err),
                     PS_ERR_NO_KEY);
    assert_int_equal(t[0], 'x');

    ps_pseudonymiser_destroy(p);
    ps_keyring_destroy(kr);
}

static void test_base32_rfc4648(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *out;
    } v[] = {
        {"", ""},
        {"f", "my"},
        {"fo", "mzxq"},
        {"foo", "mzxw6"},
        {"foob", "mzxw6yq"},
        {"fooba", "mzxw6ytb"},
        {"foobar", "mzxw6ytboi"},
    };
    char out[32];
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        size_t len = strlen(v[i].in);
        memset(out, 'x', sizeof(out));
        size_t n = ps_base32_encode((const uint8_t *)v[i].in, len, out, sizeof(out));
        assert_int_equal(n, strlen(v[i].out));
        assert_string_equal(out, v[i].out);
        /* The exact size fits; one byte less does not, and writes "". */
        memset(out, 'x', sizeof(out));
        assert_int_equal(ps_base32_encode((const uint8_t *)v[i].in, len, out, n + 1), n);
        assert_string_equal(out, v[i].out);
        if (n > 0) {
            memset(out, 'x', sizeof(out));
            assert_int_equal(ps_base32_encode((const uint8_t *)v[i].in, len, out, n), 0);
            assert_int_equal(out[0], '\0');
        }
    }
    /* Every symbol of the alphabet, in order. */
    const uint8_t all[20] = {0x00, 0x44, 0x32, 0x14, 0xc7, 0x42, 0x54, 0xb6, 0x35, 0xcf,
                             0x84, 0x65, 0x3a, 0x56, 0xd7, 0xc6, 0x75, 0xbe, 0x77, 0xdf};
    assert_int_equal(ps_base32_encode(all, sizeof(all), out, sizeof(out) + 0), 0);
    char wide[PS_TOKEN_MAX];
    assert_int_equal(ps_base32_encode(all, sizeof(all), wide, sizeof(wide)), 32);
    assert_string_equal(wide, "abcdefghijklmnopqrstuvwxyz234567");
    assert_int_equal(ps_base32_encode(all, 1, NULL, 0), 0);
}

/* sodium_malloc memory is mmap'd, out of sight of LeakSanitizer: count the
 * process's mappings instead. Every keyring and pseudonymiser maps several
 * regions, so a leak of either grows the count by at least the rounds. */
static size_t mapping_count(void)
{
    FILE *fp = fopen("/proc/self/maps", "r");
    if (!fp) {
        return 0;
    }
    size_t n = 0;
    int c;
    while ((c = fgetc(fp)) != EOF) {
        n += c == '\n';
    }
    fclose(fp);
    return n;
}

static void test_no_guarded_memory_leak(void **state)
{
    (void)state;
    struct ps_keyring_entry e[2] = {{1, T1, 0, SECRET_A}, {2, T2, 0, SECRET_64}};
    struct ps_keyring_entry bad[2] = {{1, T1, 0, SECRET_A}, {2, T2, 0, "not base64"}};
    enum { ROUNDS = 200 };
    size_t before = 0;
    for (int round = -1; round < ROUNDS; round++) {
        if (round == 0) {
            before = mapping_count();
        }
        struct ps_keyring *kr = NULL;
        assert_int_equal(ps_keyring_new(bad, 2, "test", &kr, NULL), PS_ERR_CONFIG);
        assert_int_equal(ps_keyring_new(e, 2, "test", &kr, NULL), PS_OK);
        struct ps_pseudonymiser *p = NULL;
        assert_int_equal(ps_pseudonymiser_new(kr, "research", &p, NULL), PS_OK);
        ps_pseudonymiser_destroy(p);
        ps_keyring_destroy(kr);
    }
    size_t after = mapping_count();
    if (before == 0 || after > before + ROUNDS / 4) {
        fail_msg("mappings grew from %zu to %zu over %d rounds", before, after, ROUNDS);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_vector_file),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_domains_and_kinds_separate),
        cmocka_unit_test(test_invalid_nhs),
        cmocka_unit_test(test_other_kinds_limits),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_base32_rfc4648),
        cmocka_unit_test(test_no_guarded_memory_leak),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
