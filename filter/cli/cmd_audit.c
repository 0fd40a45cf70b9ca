/*
 * pseudostream audit: the audit trail for people. `audit trace` answers a
 * subject access request: which events of one patient went where, and why.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ps_audit_trace.h"
#include "ps_config.h"
#include "ps_keyring.h"
#include "ps_log.h"
#include "ps_nhs.h"
#include "ps_runtime.h"
#include "ps_schema.h"

#define AUDIT_MAX_PROPS 128
/* Room for a number written with spaces or hyphens, a newline and the NUL. */
#define AUDIT_NHS_INPUT_MAX 64

static void audit_help(void)
{
    printf("usage: pseudostream audit trace --nhs-number N -c CONFIG [--audit-topic TOPIC]\n"
           "                                [-b BOOTSTRAPS] [-X key=value]...\n\n"
           "Audit records name a patient only by a pseudonym in the audit domain\n"
           "(\"pseudostream-audit\"). 'trace' recomputes that pseudonym from the configuration's\n"
           "keyring, under every key (retired ones too), reads the audit topic from its\n"
           "beginning to its current end, and prints each of that patient's audit records\n"
           "as one JSON object per line: which destinations received the event, which were\n"
           "withheld it and why, and the plan each disclosure followed; then each plan\n"
           "named, once: which fields went in clear, pseudonymised, generalised or\n"
           "dropped. Nothing of any other patient's records is printed. A count of\n"
           "messages that could not be read goes to standard error.\n\n"
           "  -n, --nhs-number N      the patient's NHS number (ten digits, spaces or hyphens\n"
           "                          allowed); '-' reads it from standard input, which keeps\n"
           "                          it out of the process list and the shell history\n"
           "  -c, --config FILE       service configuration: its keyring, bootstrap servers\n"
           "                          and Kafka properties\n"
           "  -t, --audit-topic TOPIC audit topic (default %s)\n"
           "  -b, --bootstrap HOSTS   override kafka.bootstrap_servers\n"
           "  -X key=value            librdkafka property, after those of the file\n\n"
           "Exit codes: 0 done (also when no record matched), 1 runtime failure, 2 usage,\n"
           "configuration or keyring error, 3 fatal Kafka error.\n",
           PS_AUDIT_TOPIC_DEFAULT);
}

struct audit_args {
    const char *config, *bootstrap, *topic, *nhs_number;
    const char *props[AUDIT_MAX_PROPS];
    size_t prop_count;
};

/* 0 to go on, 1 after --help, else an exit code. */
static int audit_parse_trace(int argc, char **argv, struct audit_args *a)
{
    static const struct option options[] = {{"nhs-number", required_argument, NULL, 'n'},
                                            {"config", required_argument, NULL, 'c'},
                                            {"audit-topic", required_argument, NULL, 't'},
                                            {"bootstrap", required_argument, NULL, 'b'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    int c;
    a->topic = PS_AUDIT_TOPIC_DEFAULT;
    while ((c = getopt_long(argc, argv, "n:c:t:b:X:h", options, NULL)) != -1) {
        switch (c) {
        case 'n': a->nhs_number = optarg; break;
        case 'c': a->config = optarg; break;
        case 't': a->topic = optarg; break;
        case 'b': a->bootstrap = optarg; break;
        case 'X':
            if (a->prop_count == AUDIT_MAX_PROPS) {
                return cli_usage_error("audit trace", "too many -X options");
            }
            a->props[a->prop_count++] = optarg;
            break;
        case 'h': audit_help(); return 1;
        default: return cli_usage_error("audit trace", "unknown option");
        }
    }
    if (optind != argc) {
        return cli_usage_error("audit trace", "unexpected argument");
    }
    if (!a->nhs_number || !a->config) {
        return cli_usage_error("audit trace", "--nhs-number N and -c CONFIG are required");
    }
    if (!a->topic[0]) {
        return cli_usage_error("audit trace", "--audit-topic must not be empty");
    }
    return 0;
}

/* The number from the argument or, for "-", the first line of standard input,
 * into buf; 0 when it is a valid NHS number. Never echoes it. */
static int audit_read_nhs_number(const char *arg, char *buf, size_t size)
{
    if (strcmp(arg, "-") == 0) {
        if (!fgets(buf, (int)size, stdin)) {
            return cli_usage_error("audit trace", "no NHS number on standard input");
        }
        buf[strcspn(buf, "\r\n")] = '\0';
    } else {
        snprintf(buf, size, "%s", arg);
    }
    char digits[PS_NHS_DIGITS + 1];
    ps_err_t rc = ps_nhs_normalise(buf, strlen(buf), digits, NULL);
    memset(digits, 0, sizeof(digits));
    if (rc != PS_OK) {
        return cli_usage_error("audit trace", "--nhs-number is not a valid NHS number (ten "
                               "digits passing the modulus-11 check)");
    }
    return 0;
}

static int audit_trace(int argc, char **argv)
{
    struct audit_args a = {0};
    int usage = audit_parse_trace(argc, argv, &a);
    if (usage) {
        return usage == 1 ? CLI_EXIT_OK : usage;
    }
    char nhs[AUDIT_NHS_INPUT_MAX];
    usage = audit_read_nhs_number(a.nhs_number, nhs, sizeof(nhs));
    if (usage) {
        explicit_bzero(nhs, sizeof(nhs));
        return usage;
    }
    /* Data goes to stdout; logs (skipped-message counts, librdkafka) to stderr. */
    ps_log_set_stream(stderr);

    struct ps_error err = {0};
    struct ps_config *conf = NULL;
    struct ps_keyring *kr = NULL;
    struct ps_schema *schema = NULL;
    struct ps_kafka_property *props = NULL;
    size_t matches = 0;
    char schema_path[4096];
    cli_data_path("schemas/audit/audit_record.avsc", schema_path, sizeof(schema_path));

    /* The keyring is loaded: keep it out of core dumps and debuggers. */
    ps_err_t rc = ps_crypto_harden_process(&err);
    if (rc == PS_OK) {
        rc = ps_config_load(a.config, &conf, &err);
    }
    for (size_t i = 0; rc == PS_OK && i < a.prop_count; i++) {
        rc = ps_config_set_property(conf, a.props[i], &err);
    }
    const char *bootstraps = a.bootstrap ? a.bootstrap : conf ? conf->kafka.bootstrap_servers
                                                              : NULL;
    if (rc == PS_OK && (!bootstraps || !bootstraps[0])) {
        rc = ps_error_set(&err, PS_ERR_CONFIG, "no bootstrap servers: give -b or set "
                          "kafka.bootstrap_servers in '%s'", a.config);
    }
    if (rc == PS_OK) {
        props = calloc(conf->kafka.property_count + 1, sizeof(*props));
        rc = props ? PS_OK : ps_error_set(&err, PS_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; rc == PS_OK && i < conf->kafka.property_count; i++) {
        props[i].key = conf->kafka.properties[i].key;
        props[i].value = conf->kafka.properties[i].value;
    }
    if (rc == PS_OK) {
        rc = ps_crypto_init(&err);
    }
    if (rc == PS_OK) {
        rc = ps_runtime_load_keyring(conf, &kr, &err);
    }
    if (rc == PS_OK) {
        rc = ps_schema_load_file(schema_path, NULL, &schema, &err);
    }
    if (rc == PS_OK) {
        rc = ps_audit_trace(bootstraps, a.topic, props, conf->kafka.property_count, schema, kr,
                            nhs, stdout, &matches, &err);
    }
    explicit_bzero(nhs, sizeof(nhs));
    ps_schema_destroy(schema);
    ps_keyring_destroy(kr);
    free(props);
    ps_config_destroy(conf);
    if (rc != PS_OK) {
        return cli_fail(&err);
    }
    fprintf(stderr, "pseudostream audit trace: %zu matching audit record%s on '%s'\n", matches,
            matches == 1 ? "" : "s", a.topic);
    return CLI_EXIT_OK;
}

int cmd_audit(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        if (argc < 2) {
            return cli_usage_error("audit", "give a subcommand: trace");
        }
        audit_help();
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "trace") == 0) {
        return audit_trace(argc - 1, argv + 1);
    }
    return cli_usage_error("audit", "unknown subcommand (known: trace)");
}
