/*
 * pseudostream keyring: create, extend, list and protect keyring files, and
 * create re-identification authority key pairs (docs/KEYRING.md).
 *
 * Nothing here prints a secret or anything derived from one: `list` shows
 * ids, dates, the retired flag and whether the file is passphrase-protected.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ps_escrow.h"
#include "ps_keyring.h"
#include "ps_keyring_file.h"
#include "ps_keyring_write.h"
#include "ps_passphrase.h"
#include "ps_time.h"

static void keyring_help(void)
{
    printf("usage: pseudostream keyring new FILE [--not-before T] [--encrypt]\n"
           "       pseudostream keyring add FILE --not-before T\n"
           "       pseudostream keyring list FILE\n"
           "       pseudostream keyring encrypt FILE\n"
           "       pseudostream keyring authority-new --public PUB --secret SEC\n\n"
           "Keyrings hold the numbered master secrets every replica shares; the key for an\n"
           "event is the latest unretired one whose not_before is at or before the event's\n"
           "own time (docs/KEYRING.md, docs/PSEUDONYMS.md).\n\n"
           "  new        a keyring with one random 32-byte secret, id 1, not_before now (or\n"
           "             T); written mode 0600; an existing file is never overwritten\n"
           "  add        a new random secret with id (largest + 1) that takes over for\n"
           "             events from T, which must be after the last key's not_before;\n"
           "             the file is replaced atomically (temporary file 0600, rename)\n"
           "  list       ids, not_before, retired, whether the file is passphrase-protected\n"
           "             and whether the secrets could be locked in memory; never a secret.\n"
           "             Exits 2 when the keyring would be refused by `run`\n"
           "  encrypt    rewrite a plain keyring in the passphrase-protected form\n"
           "             (Argon2id, XChaCha20-Poly1305)\n"
           "  authority-new  a key pair for a re-identification authority: the public key\n"
           "             (base64) goes into the policy's escrow setting, the secret key\n"
           "             (mode 0600) stays with the authority\n\n"
           "  -T, --not-before T        ISO 8601 date or instant (e.g. 2026-06-01T00:00:00Z)\n"
           "  -e, --encrypt             (new) write the passphrase-protected form\n"
           "  -P, --passphrase-file F   the passphrase, from a file of mode 0600; else\n"
           "                            $" PS_PASSPHRASE_FILE_ENV " names such a file,\n"
           "                            else $" PS_PASSPHRASE_ENV " holds it\n"
           "      --public PUB          (authority-new) public key file to create\n"
           "      --secret SEC          (authority-new) secret key file to create\n");
}

struct keyring_args {
    const char *action, *file, *not_before, *passphrase_file, *public_file, *secret_file;
    int encrypt;
};

static int parse_args(int argc, char **argv, struct keyring_args *a)
{
    static const struct option options[] = {{"not-before", required_argument, NULL, 'T'},
                                            {"encrypt", no_argument, NULL, 'e'},
                                            {"passphrase-file", required_argument, NULL, 'P'},
                                            {"public", required_argument, NULL, 'p'},
                                            {"secret", required_argument, NULL, 's'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "T:eP:h", options, NULL)) != -1) {
        switch (c) {
        case 'T': a->not_before = optarg; break;
        case 'e': a->encrypt = 1; break;
        case 'P': a->passphrase_file = optarg; break;
        case 'p': a->public_file = optarg; break;
        case 's': a->secret_file = optarg; break;
        case 'h': keyring_help(); return 1;
        default: return cli_usage_error("keyring", "unknown option");
        }
    }
    if (optind >= argc) {
        return cli_usage_error("keyring", "give an action: new, add, list, encrypt or "
                                          "authority-new");
    }
    a->action = argv[optind++];
    if (strcmp(a->action, "authority-new") == 0) {
        if (optind != argc || !a->public_file || !a->secret_file) {
            return cli_usage_error("keyring", "authority-new takes --public PUB and --secret SEC");
        }
        return 0;
    }
    if (optind != argc - 1) {
        return cli_usage_error("keyring", "%s takes one keyring FILE", a->action);
    }
    a->file = argv[optind];
    return 0;
}

static int parse_instant(const char *text, int64_t *ms_p)
{
    if (ps_time_parse_iso(text, ms_p) != PS_OK) {
        return cli_usage_error("keyring", "--not-before takes an ISO 8601 date or instant "
                                          "(e.g. 2026-06-01T00:00:00Z)");
    }
    return 0;
}

static void format_instant(int64_t ms, char out[40])
{
    ps_time_format_iso(ms, out, 40);
    char *frac = strstr(out, ".000Z");
    if (frac) {
        memcpy(frac, "Z", 2);
    }
}

/* Loads FILE, asking for a passphrase only when the file needs one, which is
 * handed back (NULL for a plain file) so that a rewrite can use it again. */
static ps_err_t load_keyring_file(const struct keyring_args *a, struct ps_keyring_file **kf_p,
                                  struct ps_passphrase **pp_p, struct ps_error *err)
{
    int encrypted = 0;
    ps_err_t rc = ps_keyring_file_is_encrypted(a->file, &encrypted, err);
    if (rc == PS_OK && encrypted) {
        rc = ps_passphrase_resolve(a->passphrase_file, pp_p, err);
        if (rc != PS_OK) {
            ps_error_prefix(err, "%s", a->file);
        }
    }
    if (rc == PS_OK) {
        rc = ps_keyring_file_load_pp(a->file, *pp_p, kf_p, err);
    }
    return rc;
}

static int keyring_new(const struct keyring_args *a)
{
    struct ps_error err = {0};
    struct ps_keyring_file *kf = NULL;
    struct ps_passphrase *pp = NULL;
    int64_t not_before = ps_time_now_ms() / 1000 * 1000;
    if (a->not_before && parse_instant(a->not_before, &not_before) != 0) {
        return CLI_EXIT_USAGE;
    }
    ps_err_t rc = PS_OK;
    if (a->encrypt) {
        rc = ps_passphrase_resolve(a->passphrase_file, &pp, &err);
    }
    if (rc == PS_OK) {
        rc = ps_keyring_file_generate(a->file, not_before, &kf, &err);
    }
    if (rc == PS_OK) {
        struct ps_keyring_write_options opt = {.passphrase = pp, .create = 1};
        rc = ps_keyring_file_write(a->file, kf, &opt, &err);
    }
    ps_keyring_file_destroy(kf);
    ps_passphrase_destroy(pp);
    if (rc != PS_OK) {
        return cli_fail(&err);
    }
    char when[40];
    format_instant(not_before, when);
    printf("created %s: key 1, not_before %s%s, mode 0600\n", a->file, when,
           a->encrypt ? ", passphrase-protected" : "");
    return CLI_EXIT_OK;
}

static int keyring_add(const struct keyring_args *a)
{
    struct ps_error err = {0};
    struct ps_keyring_file *kf = NULL;
    struct ps_passphrase *pp = NULL;
    int64_t not_before = 0;
    uint32_t id = 0;
    if (!a->not_before) {
        return cli_usage_error("keyring", "add needs --not-before T: the instant from which "
                                          "events take the new key");
    }
    if (parse_instant(a->not_before, &not_before) != 0) {
        return CLI_EXIT_USAGE;
    }
    ps_err_t rc = load_keyring_file(a, &kf, &pp, &err);
    if (rc == PS_OK) {
        rc = ps_keyring_file_add_key(kf, not_before, &id, &err);
        if (rc != PS_OK) {
            ps_error_prefix(&err, "%s", a->file);
        }
    }
    if (rc == PS_OK) {
        /* Keep the file's form and, when protected, its Argon2id cost. */
        struct ps_keyring_write_options opt = {.passphrase = pp,
                                               .params = kf->encrypted ? &kf->kdf : NULL};
        rc = ps_keyring_file_write(a->file, kf, &opt, &err);
    }
    ps_keyring_file_destroy(kf);
    ps_passphrase_destroy(pp);
    if (rc != PS_OK) {
        return cli_fail(&err);
    }
    char when[40];
    format_instant(not_before, when);
    printf("added key %" PRIu32 " to %s: it takes over for events from %s; copy the file to "
           "every replica before then\n", id, a->file, when);
    return CLI_EXIT_OK;
}

/* Builds the keyring as `run` would, to tell whether it would be accepted
 * and whether its secrets can be locked in memory. */
static ps_err_t check_keyring(const struct ps_keyring_file *kf, int *locked_p,
                              struct ps_error *err)
{
    struct ps_keyring *kr = NULL;
    struct ps_keyring_entry *entries = calloc(kf->key_count + 1, sizeof(*entries));
    if (!entries) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < kf->key_count; i++) {
        entries[i].id = kf->keys[i].id;
        entries[i].not_before_ms = kf->keys[i].not_before_ms;
        entries[i].retired = kf->keys[i].retired;
        entries[i].secret_b64 = kf->keys[i].secret_b64;
    }
    ps_err_t rc = ps_keyring_new(entries, kf->key_count, kf->file, &kr, err);
    if (rc == PS_OK) {
        *locked_p = ps_keyring_locked(kr);
    }
    ps_keyring_destroy(kr);
    free(entries);
    return rc;
}

static int keyring_list(const struct keyring_args *a)
{
    struct ps_error err = {0};
    struct ps_keyring_file *kf = NULL;
    struct ps_passphrase *pp = NULL;
    int locked = 0;
    ps_err_t rc = load_keyring_file(a, &kf, &pp, &err);
    ps_passphrase_destroy(pp);
    if (rc == PS_OK) {
        rc = check_keyring(kf, &locked, &err);
    }
    if (rc != PS_OK) {
        ps_keyring_file_destroy(kf);
        return cli_fail(&err);
    }
    /* Which key new events take now: the same rule as ps_keyring_select. */
    int64_t now = ps_time_now_ms();
    size_t current = kf->key_count;
    for (size_t i = kf->key_count; i-- > 0;) {
        if (!kf->keys[i].retired && kf->keys[i].not_before_ms <= now) {
            current = i;
            break;
        }
    }
    printf("keyring: %s\n", a->file);
    printf("passphrase-protected: %s\n", kf->encrypted ? "yes" : "no");
    printf("locked in memory: %s\n",
           locked ? "yes" : "no (raise RLIMIT_MEMLOCK, e.g. ulimit -l, or the secrets may be "
                            "swapped to disk)");
    printf("%-10s  %-24s  %-7s  %s\n", "id", "not_before", "retired", "in use now");
    for (size_t i = 0; i < kf->key_count; i++) {
        char when[40];
        format_instant(kf->keys[i].not_before_ms, when);
        printf("%-10" PRIu32 "  %-24s  %-7s  %s\n", kf->keys[i].id, when,
               kf->keys[i].retired ? "yes" : "no", i == current ? "yes" : "");
    }
    ps_keyring_file_destroy(kf);
    return CLI_EXIT_OK;
}

static int keyring_encrypt(const struct keyring_args *a)
{
    struct ps_error err = {0};
    struct ps_keyring_file *kf = NULL;
    struct ps_passphrase *pp = NULL;
    int encrypted = 0;
    ps_err_t rc = ps_keyring_file_is_encrypted(a->file, &encrypted, &err);
    if (rc == PS_OK && encrypted) {
        fprintf(stderr, "pseudostream keyring: %s is already passphrase-protected\n", a->file);
        return CLI_EXIT_USAGE;
    }
    if (rc == PS_OK) {
        rc = ps_keyring_file_load_pp(a->file, NULL, &kf, &err);
    }
    if (rc == PS_OK) {
        rc = ps_passphrase_resolve(a->passphrase_file, &pp, &err);
    }
    if (rc == PS_OK) {
        struct ps_keyring_write_options opt = {.passphrase = pp};
        rc = ps_keyring_file_write(a->file, kf, &opt, &err);
    }
    ps_keyring_file_destroy(kf);
    ps_passphrase_destroy(pp);
    if (rc != PS_OK) {
        return cli_fail(&err);
    }
    printf("encrypted %s with the passphrase (Argon2id, XChaCha20-Poly1305)\n", a->file);
    return CLI_EXIT_OK;
}

static int keyring_authority_new(const struct keyring_args *a)
{
    struct ps_error err = {0};
    if (ps_escrow_keypair_write(a->public_file, a->secret_file, &err) != PS_OK) {
        return cli_fail(&err);
    }
    printf("created authority key pair: public key %s (for the policy's escrow setting), "
           "secret key %s (mode 0600; keep it with the authority, never on a filter)\n",
           a->public_file, a->secret_file);
    return CLI_EXIT_OK;
}

int cmd_keyring(int argc, char **argv)
{
    struct keyring_args a = {0};
    int usage = parse_args(argc, argv, &a);
    if (usage) {
        return usage == 1 ? CLI_EXIT_OK : usage;
    }
    struct ps_error err = {0};
    /* Secrets pass through this process: no core dump may hold them. */
    if (ps_crypto_harden_process(&err) != PS_OK) {
        return cli_fail(&err);
    }
    if (strcmp(a.action, "new") == 0) {
        return keyring_new(&a);
    }
    if (strcmp(a.action, "add") == 0) {
        return keyring_add(&a);
    }
    if (strcmp(a.action, "list") == 0) {
        return keyring_list(&a);
    }
    if (strcmp(a.action, "encrypt") == 0) {
        return keyring_encrypt(&a);
    }
    if (strcmp(a.action, "authority-new") == 0) {
        return keyring_authority_new(&a);
    }
    return cli_usage_error("keyring", "unknown action '%s'", a.action);
}
