/*
 * Unit tests for ps_keyring: the ordering rules, secret decoding and its error
 * messages, key selection by event time (rotation, retirement, before the
 * first key), memory protection and process hardening.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "ps_error.h"
#include "ps_keyring.h"

/* 32 bytes 0x00..0x1f, and 32 bytes 0x20..0x3f. */
#define SECRET_A "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define SECRET_B "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
/* 64 bytes 0x20..0x5f. */
#define SECRET_64                                                                          \
    "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj9AQUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVpbXF1eXw=="
/* 31 bytes 0x00..0x1e. */
#define SECRET_31 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg=="
/* 65 bytes 0x20..0x60. */
#define SECRET_65                                                                          \
    "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj9AQUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVpbXF1eX2A="

/* 2024-01-01T00:00:00Z and 2026-06-01T00:00:00Z, 2027-01-01T00:00:00Z. */
#define T1 INT64_C(1704067200000)
#define T2 INT64_C(1780272000000)
#define T3 INT64_C(1798761600000)

static int setup(void **state)
{
    (void)state;
    struct ps_error err;
    ps_error_clear(&err);
    return ps_crypto_init(&err) == PS_OK ? 0 : -1;
}

static struct ps_keyring *build_ok(const struct ps_keyring_entry *e, size_t n)
{
    struct ps_keyring *kr = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    ps_err_t rc = ps_keyring_new(e, n, "test", &kr, &err);
    if (rc != PS_OK) {
        fail_msg("ps_keyring_new: %s", err.msg);
    }
    assert_non_null(kr);
    return kr;
}

/* Builds a keyring that must fail with PS_ERR_CONFIG and returns the message. */
static void build_fails(const struct ps_keyring_entry *e, size_t n, struct ps_error *err)
{
    struct ps_keyring *kr = (struct ps_keyring *)(uintptr_t)1; /* must stay untouched */
    ps_error_clear(err);
    assert_int_equal(ps_keyring_new(e, n, "test", &kr, err), PS_ERR_CONFIG);
    assert_int_equal(err->code, PS_ERR_CONFIG);
    assert_ptr_equal(kr, (struct ps_keyring *)(uintptr_t)1);
    assert_non_null(strstr(err->msg, "keyring 'test'"));
}

static void test_empty_and_null(void **state)
{
    (void)state;
    struct ps_error err;
    struct ps_keyring_entry e[1] = {{1, T1, 0, SECRET_A}};
    build_fails(e, 0, &err);
    assert_non_null(strstr(err.msg, "no keys"));

    ps_error_clear(&err);
    assert_int_equal(ps_keyring_new(e, 1, "test", NULL, &err), PS_ERR_INVALID);
    ps_keyring_destroy(NULL);
    assert_int_equal(ps_keyring_count(NULL), 0);
    assert_int_equal(ps_keyring_locked(NULL), 0);
}

static void test_ordering_rules(void **state)
{
    (void)state;
    struct ps_error err;

    struct ps_keyring_entry ids_down[2] = {{2, T1, 0, SECRET_A}, {1, T2, 0, SECRET_B}};
    build_fails(ids_down, 2, &err);
    assert_non_null(strstr(err.msg, "key 1 follows key 2"));
    assert_non_null(strstr(err.msg, "ids must be strictly increasing"));

    struct ps_keyring_entry ids_same[2] = {{3, T1, 0, SECRET_A}, {3, T2, 0, SECRET_B}};
    build_fails(ids_same, 2, &err);
    assert_non_null(strstr(err.msg, "ids must be strictly increasing"));

    struct ps_keyring_entry nb_same[2] = {{1, T1, 0, SECRET_A}, {2, T1, 0, SECRET_B}};
    build_fails(nb_same, 2, &err);
    assert_non_null(strstr(err.msg, "key 2"));
    assert_non_null(strstr(err.msg, "not_before must be strictly increasing"));

    struct ps_keyring_entry nb_down[2] = {{1, T2, 0, SECRET_A}, {2, T1, 0, SECRET_B}};
    build_fails(nb_down, 2, &err);
    assert_non_null(strstr(err.msg, "not_before must be strictly increasing"));

    /* Retired entries take part in the ordering like any other. */
    struct ps_keyring_entry retired_down[3] = {
        {1, T1, 0, SECRET_A}, {5, T3, 1, SECRET_B}, {6, T2, 0, SECRET_A}};
    build_fails(retired_down, 3, &err);

    /* Gaps in ids are fine. */
    struct ps_keyring_entry gaps[3] = {{1, T1, 0, SECRET_A}, {7, T2, 0, SECRET_B},
                                       {4000000000u, T3, 0, SECRET_64}};
    struct ps_keyring *kr = build_ok(gaps, 3);
    assert_int_equal(ps_keyring_count(kr), 3);
    ps_keyring_destroy(kr);
}

/* A secret must never reach a message, not even a recognisable piece of it. */
static void assert_no_secret(const char *msg, const char *secret_b64)
{
    char piece[9];
    size_t len = strlen(secret_b64);
    for (size_t i = 0; i + 8 <= len; i++) {
        memcpy(piece, secret_b64 + i, 8);
        piece[8] = '\0';
        if (strstr(msg, piece)) {
            fail_msg("message repeats part of the secret: %s", msg);
        }
    }
}

static void test_base64_errors(void **state)
{
    (void)state;
    static const struct {
        const char *secret;
        const char *says;
    } cases[] = {
        {"#%&*#%&*#%&*#%&*#%&*#%&*#%&*#%&*#%&*#%&*#%&*", "not standard base64"},
        /* The URL-safe alphabet is a different variant. */
        {"ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Oz-9Pj8=", "not standard base64"},
        {"ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Oz_9Pj8=", "not standard base64"},
        /* Padding is required. */
        {"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "not standard base64"},
        /* Embedded or surrounding white space is not accepted. */
        {"AAECAwQFBgcICQoLDA0ODxAR EhMUFRYXGBkaGxwdHh8=", "not standard base64"},
        {"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", "not standard base64"},
        /* Non-canonical trailing bits. */
        {"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=", "not standard base64"},
        {SECRET_31, "is 31 bytes, at least 32"},
        {"c2hvcnQ=", "is 5 bytes, at least 32"},
        {SECRET_65, "longer than 64 bytes"},
        {"", "has no secret"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ps_error err;
        struct ps_keyring_entry e[2] = {{1, T1, 0, SECRET_A}, {42, T2, 0, cases[i].secret}};
        build_fails(e, 2, &err);
        if (!strstr(err.msg, cases[i].says) || !strstr(err.msg, "key 42")) {
            fail_msg("case %zu: unexpected message: %s", i, err.msg);
        }
        assert_no_secret(err.msg, cases[i].secret);
        assert_no_secret(err.msg, SECRET_A);
    }

    struct ps_error err;
    struct ps_keyring_entry null_secret[1] = {{9, T1, 0, NULL}};
    build_fails(null_secret, 1, &err);
    assert_non_null(strstr(err.msg, "key 9 has no secret"));
}

static void test_secret_bytes(void **state)
{
    (void)state;
    struct ps_keyring_entry e[2] = {{1, T1, 0, SECRET_A}, {2, T2, 0, SECRET_64}};
    struct ps_keyring *kr = build_ok(e, 2);
    size_t len = 0;
    const uint8_t *s = ps_keyring_secret(kr, 0, &len);
    assert_non_null(s);
    assert_int_equal(len, 32);
    for (size_t i = 0; i < len; i++) {
        assert_int_equal(s[i], i);
    }
    s = ps_keyring_secret(kr, 1, &len);
    assert_non_null(s);
    assert_int_equal(len, 64);
    for (size_t i = 0; i < len; i++) {
        assert_int_equal(s[i], 0x20 + i);
    }
    assert_null(ps_keyring_secret(kr, 2, &len));
    assert_int_equal(len, 0);
    ps_keyring_destroy(kr);
}

static void test_info(void **state)
{
    (void)state;
    struct ps_keyring_entry e[2] = {{3, T1, 1, SECRET_A}, {8, T2, 0, SECRET_B}};
    struct ps_keyring *kr = build_ok(e, 2);
    uint32_t id = 0;
    int64_t nb = 0;
    int retired = -1;
    ps_keyring_info(kr, 0, &id, &nb, &retired);
    assert_int_equal(id, 3);
    assert_true(nb == T1);
    assert_int_equal(retired, 1);
    ps_keyring_info(kr, 1, &id, &nb, &retired);
    assert_int_equal(id, 8);
    assert_true(nb == T2);
    assert_int_equal(retired, 0);
    ps_keyring_info(kr, 2, &id, &nb, &retired);
    assert_int_equal(id, 0);
    ps_keyring_info(kr, 0, NULL, NULL, NULL);
    ps_keyring_destroy(kr);
}

static uint32_t select_ok(const struct ps_keyring *kr, int64_t t)
{
    uint32_t id = 0;
    struct ps_error err;
    ps_error_clear(&err);
    if (ps_keyring_select(kr, t, &id, &err) != PS_OK) {
        fail_msg("select at %lld: %s", (long long)t, err.msg);
    }
    return id;
}

static void select_none(const struct ps_keyring *kr, int64_t t)
{
    uint32_t id = 12345;
    struct ps_error err;
    ps_error_clear(&err);
    assert_int_equal(ps_keyring_select(kr, t, &id, &err), PS_ERR_NO_KEY);
    assert_int_equal(err.code, PS_ERR_NO_KEY);
    assert_int_equal(id, 12345);
    assert_non_null(strstr(err.msg, "keyring 'test'"));
    /* The event time is payload and stays out of the message. */
    char t_text[32];
    snprintf(t_text, sizeof(t_text), "%lld", (long long)t);
    assert_null(strstr(err.msg, t_text));
}

static void test_select_rotation(void **state)
{
    (void)state;
    struct ps_keyring_entry e[3] = {{1, T1, 0, SECRET_A}, {2, T2, 0, SECRET_B},
                                    {3, T3, 0, SECRET_64}};
    struct ps_keyring *kr = build_ok(e, 3);

    /* Before the first not_before there is no key at all: never the first
     * key "by default". */
    select_none(kr, T1 - 1);
    select_none(kr, INT64_MIN);
    select_none(kr, 0);

    assert_int_equal(select_ok(kr, T1), 1);
    assert_int_equal(select_ok(kr, T2 - 1), 1);
    /* The boundary belongs to the new key. */
    assert_int_equal(select_ok(kr, T2), 2);
    assert_int_equal(select_ok(kr, T2 + 1), 2);
    assert_int_equal(select_ok(kr, T3 - 1), 2);
    assert_int_equal(select_ok(kr, T3), 3);
    assert_int_equal(select_ok(kr, INT64_MAX), 3);
    ps_keyring_destroy(kr);
}

static void test_select_retired(void **state)
{
    (void)state;
    /* A retired key hands its period back to the unretired key before it. */
    struct ps_keyring_entry mid[3] = {{1, T1, 0, SECRET_A}, {2, T2, 1, SECRET_B},
                                      {3, T3, 0, SECRET_64}};
    struct ps_keyring *kr = build_ok(mid, 3);
    assert_int_equal(select_ok(kr, T2 - 1), 1);
    assert_int_equal(select_ok(kr, T2), 1);
    assert_int_equal(select_ok(kr, T3 - 1), 1);
    assert_int_equal(select_ok(kr, T3), 3);
    ps_keyring_destroy(kr);

    /* The first key retired: its period has no key. */
    struct ps_keyring_entry first[2] = {{1, T1, 1, SECRET_A}, {2, T2, 0, SECRET_B}};
    kr = build_ok(first, 2);
    select_none(kr, T1);
    select_none(kr, T2 - 1);
    assert_int_equal(select_ok(kr, T2), 2);
    ps_keyring_destroy(kr);

    /* The latest key retired: events after it fall back to the one before. */
    struct ps_keyring_entry last[2] = {{1, T1, 0, SECRET_A}, {2, T2, 1, SECRET_B}};
    kr = build_ok(last, 2);
    assert_int_equal(select_ok(kr, INT64_MAX), 1);
    ps_keyring_destroy(kr);

    struct ps_keyring_entry all[2] = {{1, T1, 1, SECRET_A}, {2, T2, 1, SECRET_B}};
    kr = build_ok(all, 2);
    select_none(kr, T1);
    select_none(kr, INT64_MAX);
    ps_keyring_destroy(kr);
}

static void test_select_null(void **state)
{
    (void)state;
    struct ps_keyring_entry e[1] = {{1, T1, 0, SECRET_A}};
    struct ps_keyring *kr = build_ok(e, 1);
    struct ps_error err;
    ps_error_clear(&err);
    assert_int_equal(ps_keyring_select(kr, T1, NULL, &err), PS_ERR_INVALID);
    uint32_t id = 0;
    assert_int_equal(ps_keyring_select(NULL, T1, &id, &err), PS_ERR_INVALID);
    /* A NULL error detail is allowed. */
    assert_int_equal(ps_keyring_select(kr, T1 - 1, &id, NULL), PS_ERR_NO_KEY);
    ps_keyring_destroy(kr);
}

/*
 * ps_keyring_locked must tell the truth both ways. With RLIMIT_MEMLOCK at 0 an
 * unprivileged process cannot lock anything, while one with CAP_IPC_LOCK (root
 * in many containers) still can; probe with a plain mlock to know which.
 */
static void test_locked(void **state)
{
    (void)state;
    struct ps_keyring_entry e[1] = {{1, T1, 0, SECRET_A}};
    struct ps_keyring *kr = build_ok(e, 1);
    assert_true(ps_keyring_locked(kr) == 0 || ps_keyring_locked(kr) == 1);
    ps_keyring_destroy(kr);

    struct rlimit saved;
    assert_int_equal(getrlimit(RLIMIT_MEMLOCK, &saved), 0);
    struct rlimit none = {0, saved.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_MEMLOCK, &none), 0);

    long page = sysconf(_SC_PAGESIZE);
    void *probe = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
    assert_true(probe != MAP_FAILED);
    int can_lock = mlock(probe, (size_t)page) == 0;
    if (can_lock) {
        munlock(probe, (size_t)page);
    }
    munmap(probe, (size_t)page);

    kr = build_ok(e, 1);
    assert_int_equal(ps_keyring_locked(kr), can_lock);
    /* The keyring works whether or not it is locked. */
    assert_int_equal(select_ok(kr, T1), 1);
    ps_keyring_destroy(kr);
    assert_int_equal(setrlimit(RLIMIT_MEMLOCK, &saved), 0);
    if (!can_lock) {
        print_message("(memlock limit honoured: unlocked keyring reported)\n");
    }
}

/* The secrets are read-only once built: a stray write faults. */
static void test_secrets_read_only(void **state)
{
    (void)state;
    struct ps_keyring_entry e[1] = {{1, T1, 0, SECRET_A}};
    struct ps_keyring *kr = build_ok(e, 1);
    size_t len = 0;
    uint8_t *s = (uint8_t *)(uintptr_t)ps_keyring_secret(kr, 0, &len);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* cmocka catches SIGSEGV to fail the test and carry on, which in a
         * child would run the rest of the suite twice: die of it instead. */
        signal(SIGSEGV, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, 2);
        }
        ((volatile uint8_t *)s)[0] = 0xff;
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_true(WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGBUS);
    ps_keyring_destroy(kr);
}

static void test_harden_process(void **state)
{
    (void)state;
    struct ps_error err;
    ps_error_clear(&err);
    assert_int_equal(ps_crypto_harden_process(&err), PS_OK);
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_CORE, &rl), 0);
    assert_true(rl.rlim_cur == 0);
    assert_true(rl.rlim_max == 0);
    assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
    /* Idempotent. */
    assert_int_equal(ps_crypto_harden_process(&err), PS_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_and_null),
        cmocka_unit_test(test_ordering_rules),
        cmocka_unit_test(test_base64_errors),
        cmocka_unit_test(test_secret_bytes),
        cmocka_unit_test(test_info),
        cmocka_unit_test(test_select_rotation),
        cmocka_unit_test(test_select_retired),
        cmocka_unit_test(test_select_null),
        cmocka_unit_test(test_locked),
        cmocka_unit_test(test_secrets_read_only),
        cmocka_unit_test(test_harden_process),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
