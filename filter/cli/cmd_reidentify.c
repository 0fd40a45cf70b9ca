/*
 * pseudostream reidentify: the re-identification authority opens escrow
 * records for given tokens with its secret key(s) (docs/KEYRING.md).
 *
 * Identifiers are printed to stdout, one "TOKEN<TAB>IDENTIFIER" line per
 * token opened, and nowhere else. Tokens that have no record, or whose
 * records do not open with the keys given, are named on stderr.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ps_escrow.h"
#include "ps_keyring.h"
#include "ps_log.h"
#include "ps_reidentify.h"

#define REIDENTIFY_MAX_PROPS 128

static void reidentify_help(void)
{
    printf("usage: pseudostream reidentify -b BOOTSTRAPS --escrow-topic TOPIC\n"
           "                               --secret-key FILE [--secret-key FILE2] TOKEN...\n\n"
           "Reads the escrow topic to its current end and opens the records of the given\n"
           "tokens (bare, or DOMAIN/TOKEN) with the authority's secret key; a record sealed\n"
           "to two authorities needs both keys (in either order). Prints one line per token\n"
           "opened: TOKEN, a tab, the identifier. Tokens with no record, or whose record the\n"
           "keys cannot open, are named on stderr and make the exit status 1.\n\n"
           "  -b, --bootstrap HOSTS     Kafka bootstrap servers\n"
           "  -t, --escrow-topic TOPIC  the escrow topic (e.g. pseudostream.escrow)\n"
           "  -s, --secret-key FILE     authority secret key (mode 0600); once or twice\n"
           "  -X key=value              librdkafka property (e.g. security settings)\n");
}

int cmd_reidentify(int argc, char **argv)
{
    static const struct option options[] = {{"bootstrap", required_argument, NULL, 'b'},
                                            {"escrow-topic", required_argument, NULL, 't'},
                                            {"secret-key", required_argument, NULL, 's'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    const char *bootstraps = NULL, *topic = NULL;
    const char *key_files[PS_ESCROW_AUTHORITIES_MAX];
    size_t key_file_count = 0;
    struct ps_kafka_property props[REIDENTIFY_MAX_PROPS];
    size_t prop_count = 0;
    int c;
    while ((c = getopt_long(argc, argv, "b:t:s:X:h", options, NULL)) != -1) {
        switch (c) {
        case 'b': bootstraps = optarg; break;
        case 't': topic = optarg; break;
        case 's':
            if (key_file_count == PS_ESCROW_AUTHORITIES_MAX) {
                return cli_usage_error("reidentify", "at most %d --secret-key options",
                                       PS_ESCROW_AUTHORITIES_MAX);
            }
            key_files[key_file_count++] = optarg;
            break;
        case 'X': {
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg || prop_count == REIDENTIFY_MAX_PROPS) {
                return cli_usage_error("reidentify", "-X takes key=value");
            }
            *eq = '\0';
            props[prop_count].key = optarg;
            props[prop_count].value = eq + 1;
            prop_count++;
            break;
        }
        case 'h': reidentify_help(); return CLI_EXIT_OK;
        default: return cli_usage_error("reidentify", "unknown option");
        }
    }
    if (!bootstraps || !topic || key_file_count == 0 || optind >= argc) {
        return cli_usage_error("reidentify", "give -b BOOTSTRAPS, --escrow-topic TOPIC, "
                                             "--secret-key FILE and at least one TOKEN");
    }
    ps_log_set_stream(stderr);
    struct ps_error err = {0};
    struct ps_escrow_secret *keys[PS_ESCROW_AUTHORITIES_MAX] = {NULL};
    size_t token_count = (size_t)(argc - optind);
    struct ps_reidentify_result *results = calloc(token_count, sizeof(*results));
    ps_err_t rc = results ? ps_crypto_harden_process(&err)
                          : ps_error_set(&err, PS_ERR_NOMEM, "out of memory");
    for (size_t k = 0; rc == PS_OK && k < key_file_count; k++) {
        rc = ps_escrow_secret_load(key_files[k], &keys[k], &err);
    }
    if (rc == PS_OK) {
        struct ps_reidentify_options opt = {
            .bootstraps = bootstraps, .topic = topic, .props = props, .prop_count = prop_count,
            .keys = (const struct ps_escrow_secret *const *)keys, .key_count = key_file_count,
            .tokens = (const char *const *)(argv + optind), .token_count = token_count};
        rc = ps_reidentify_run(&opt, results, &err);
    }
    size_t missing = 0;
    for (size_t t = 0; rc == PS_OK && t < token_count; t++) {
        const struct ps_reidentify_result *r = &results[t];
        if (r->status == PS_REIDENTIFY_OPENED) {
            printf("%s\t%s\n", r->token, r->value);
        } else {
            missing++;
            fprintf(stderr, "pseudostream reidentify: %s: %s\n", r->token,
                    r->status == PS_REIDENTIFY_SEALED
                        ? "cannot be opened with the given key(s) (sealed to another authority, "
                          "or to two authorities and only one key was given)"
                        : "no escrow record on the topic");
        }
    }
    fflush(stdout);
    if (results) {
        ps_reidentify_results_free(results, token_count);
    }
    free(results);
    for (size_t k = 0; k < key_file_count; k++) {
        ps_escrow_secret_destroy(keys[k]);
    }
    if (rc != PS_OK) {
        return cli_fail(&err);
    }
    return missing ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}
