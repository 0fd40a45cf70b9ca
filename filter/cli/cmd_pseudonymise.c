/*
 * pseudostream pseudonymise: tokens for identifiers read from stdin, with the
 * service's keyring, so that a batch extract links to the stream
 * (docs/KEYRING.md, docs/PSEUDONYMS.md).
 *
 * Tokens go to stdout, one output line or record per input one, in order. An
 * identifier that cannot be tokenised (an NHS number failing modulus 11, an
 * empty value) leaves an empty line or cell and is reported on stderr by its
 * line number, never by its value.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ps_config.h"
#include "ps_keyring.h"
#include "ps_passphrase.h"
#include "ps_pseudonym.h"
#include "ps_runtime.h"
#include "ps_time.h"

/* A CSV record (with its quoted line breaks) may not be longer than this. */
#define RECORD_MAX (1024 * 1024)

static void pseudonymise_help(void)
{
    printf("usage: pseudostream pseudonymise -c CONFIG --domain D [--kind K]\n"
           "                                 [--event-time T | --key-id N]\n"
           "                                 [--csv --column N|NAME [--no-header]]\n\n"
           "Reads identifiers from stdin, one per line (or one column of a CSV), and writes\n"
           "their tokens in domain D with the keyring of CONFIG: the same tokens the stream\n"
           "gives the same patients in that domain, so a batch extract links to it.\n\n"
           "Which key: the latest unretired key whose not_before is at or before --event-time\n"
           "T, or, without it, at or before now (the key new events take today). To match\n"
           "tokens issued under an older key, give the events' time or --key-id N.\n\n"
           "An identifier that cannot be tokenised (an NHS number that fails the modulus-11\n"
           "check, an empty value) leaves an empty line or cell and is reported on stderr by\n"
           "line number, never by value; the exit status is then 1.\n\n"
           "  -c, --config FILE         service configuration (its keyring)\n"
           "  -d, --domain D            pseudonym domain (a destination's pseudonym_domain)\n"
           "  -k, --kind K              nhs_number (default), local_id, ... (lower-case tag)\n"
           "  -t, --event-time T        ISO 8601 date or instant choosing the key\n"
           "      --key-id N            use key N whatever its dates (retired keys too)\n"
           "      --csv                 stdin is CSV (RFC 4180); other columns pass unchanged\n"
           "      --column N|NAME       the column to tokenise: 1-based number or header name;\n"
           "                            its header becomes NAME_token\n"
           "      --no-header           the CSV has no header row\n"
           "  -P, --passphrase-file F   passphrase of a protected keyring (see keyring --help)\n");
}

struct pseudonymise_args {
    const char *config, *domain, *kind, *event_time, *column, *passphrase_file;
    long key_id;
    int csv, no_header;
};

static int parse_args(int argc, char **argv, struct pseudonymise_args *a)
{
    static const struct option options[] = {{"config", required_argument, NULL, 'c'},
                                            {"domain", required_argument, NULL, 'd'},
                                            {"kind", required_argument, NULL, 'k'},
                                            {"event-time", required_argument, NULL, 't'},
                                            {"key-id", required_argument, NULL, 'K'},
                                            {"csv", no_argument, NULL, 'C'},
                                            {"column", required_argument, NULL, 'N'},
                                            {"no-header", no_argument, NULL, 'H'},
                                            {"passphrase-file", required_argument, NULL, 'P'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    int c;
    char *end;
    a->kind = "nhs_number";
    a->key_id = -1;
    while ((c = getopt_long(argc, argv, "c:d:k:t:P:h", options, NULL)) != -1) {
        switch (c) {
        case 'c': a->config = optarg; break;
        case 'd': a->domain = optarg; break;
        case 'k': a->kind = optarg; break;
        case 't': a->event_time = optarg; break;
        case 'K':
            a->key_id = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end || a->key_id < 0 || a->key_id > (long)UINT32_MAX) {
                return cli_usage_error("pseudonymise", "--key-id takes a key number");
            }
            break;
        case 'C': a->csv = 1; break;
        case 'N': a->column = optarg; break;
        case 'H': a->no_header = 1; break;
        case 'P': a->passphrase_file = optarg; break;
        case 'h': pseudonymise_help(); return 1;
        default: return cli_usage_error("pseudonymise", "unknown option");
        }
    }
    if (optind != argc) {
        return cli_usage_error("pseudonymise", "identifiers come from stdin, not arguments");
    }
    if (!a->config || !a->domain) {
        return cli_usage_error("pseudonymise", "-c CONFIG and --domain D are required");
    }
    if (a->event_time && a->key_id >= 0) {
        return cli_usage_error("pseudonymise", "give --event-time or --key-id, not both");
    }
    if (a->csv != (a->column != NULL)) {
        return cli_usage_error("pseudonymise", "--csv and --column N go together");
    }
    if (a->no_header && !a->csv) {
        return cli_usage_error("pseudonymise", "--no-header is for --csv");
    }
    return 0;
}

struct tokeniser {
    const struct ps_pseudonymiser *p;
    const char *kind;
    int64_t time_ms;
    long key_id; /* -1: by time */
    size_t rejected;
};

/* The token of one value, or a reason on stderr naming the line only. */
static ps_err_t tokenise(struct tokeniser *t, const char *value, size_t len, size_t line,
                         char token[PS_TOKEN_MAX], struct ps_error *err)
{
    struct ps_error verr = {0};
    ps_err_t rc = t->key_id >= 0
                      ? ps_pseudonymise_with_key(t->p, (uint32_t)t->key_id, t->kind, value, len,
                                                 token, &verr)
                      : ps_pseudonymise(t->p, t->time_ms, t->kind, value, len, token, NULL,
                                        &verr);
    if (rc == PS_ERR_NHS_INVALID || rc == PS_ERR_TRANSFORM) {
        fprintf(stderr, "pseudostream pseudonymise: line %zu: %s (not tokenised)\n", line,
                rc == PS_ERR_NHS_INVALID ? "not a valid NHS number"
                                         : "empty or too long to tokenise");
        t->rejected++;
        token[0] = '\0';
        return PS_OK;
    }
    if (rc != PS_OK) {
        /* No key for the time, a bad kind: every line would fail alike. */
        *err = verr;
    }
    return rc;
}

/* ------------------------------------------------------------ line mode */

static ps_err_t run_lines(struct tokeniser *t, struct ps_error *err)
{
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t n;
    ps_err_t rc = PS_OK;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        size_t len = (size_t)n;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
            len--;
        }
        char token[PS_TOKEN_MAX];
        rc = tokenise(t, line, len, lineno, token, err);
        if (rc != PS_OK) {
            break;
        }
        printf("%s\n", token);
    }
    if (line) {
        memset(line, 0, cap);
    }
    free(line);
    return rc;
}

/* ------------------------------------------------------------- CSV mode */

struct field {
    size_t start, end; /* [start, end) in the record, quotes included */
};

/* Reads one CSV record: lines are joined while a quoted field is open.
 * Returns the record length, 0 at the end of input, -1 when too long. */
static long read_record(char **rec_p, size_t *cap_p, size_t *lines_p)
{
    char *line = NULL;
    size_t line_cap = 0, len = 0;
    int in_quotes = 0;
    long result = 0;
    ssize_t n;
    *lines_p = 0;
    while ((n = getline(&line, &line_cap, stdin)) >= 0) {
        (*lines_p)++;
        if (len + (size_t)n + 1 > RECORD_MAX) {
            result = -1;
            goto cleanup;
        }
        if (len + (size_t)n + 1 > *cap_p) {
            size_t cap = (len + (size_t)n + 1) * 2;
            char *rec = realloc(*rec_p, cap);
            if (!rec) {
                result = -1;
                goto cleanup;
            }
            *rec_p = rec;
            *cap_p = cap;
        }
        memcpy(*rec_p + len, line, (size_t)n);
        len += (size_t)n;
        (*rec_p)[len] = '\0';
        for (ssize_t i = 0; i < n; i++) {
            if (line[i] == '"') {
                in_quotes = !in_quotes;
            }
        }
        if (!in_quotes) {
            break;
        }
    }
    /* Drop the record's line ending (a quoted one inside stays). */
    while (len > 0 && ((*rec_p)[len - 1] == '\n' || (*rec_p)[len - 1] == '\r')) {
        len--;
    }
    if (*rec_p) {
        (*rec_p)[len] = '\0';
    }
    result = *lines_p == 0 ? 0 : (long)len + 1;

cleanup:
    if (line) {
        memset(line, 0, line_cap);
    }
    free(line);
    return result;
}

/* Splits a record into fields (RFC 4180: commas, double quotes, "" inside). */
static size_t split_fields(const char *rec, size_t len, struct field **fields_p, size_t *cap_p)
{
    size_t count = 0, i = 0;
    for (;;) {
        if (count == *cap_p) {
            size_t cap = *cap_p ? *cap_p * 2 : 16;
            struct field *f = realloc(*fields_p, cap * sizeof(*f));
            if (!f) {
                return 0;
            }
            *fields_p = f;
            *cap_p = cap;
        }
        size_t start = i;
        int in_quotes = 0;
        while (i < len && (in_quotes || rec[i] != ',')) {
            if (rec[i] == '"') {
                in_quotes = !in_quotes;
            }
            i++;
        }
        (*fields_p)[count].start = start;
        (*fields_p)[count].end = i;
        count++;
        if (i >= len) {
            return count;
        }
        i++; /* the comma */
    }
}

/* The field's value without its quotes, "" made ", into out (NUL-terminated). */
static size_t unquote(const char *rec, const struct field *f, char *out)
{
    size_t n = 0;
    size_t s = f->start, e = f->end;
    if (e > s && rec[s] == '"') {
        s++;
        if (e > s && rec[e - 1] == '"') {
            e--;
        }
        for (size_t i = s; i < e; i++) {
            out[n++] = rec[i];
            if (rec[i] == '"' && i + 1 < e && rec[i + 1] == '"') {
                i++;
            }
        }
    } else {
        memcpy(out, rec + s, e - s);
        n = e - s;
    }
    out[n] = '\0';
    return n;
}

static void print_csv_text(const char *text)
{
    if (strpbrk(text, ",\"\r\n") == NULL) {
        fputs(text, stdout);
        return;
    }
    putchar('"');
    for (const char *p = text; *p; p++) {
        if (*p == '"') {
            putchar('"');
        }
        putchar(*p);
    }
    putchar('"');
}

/* Writes the record with column col replaced by replacement (as CSV text). */
static void print_record(const char *rec, const struct field *fields, size_t count, size_t col,
                         const char *replacement)
{
    for (size_t i = 0; i < count; i++) {
        if (i > 0) {
            putchar(',');
        }
        if (i == col) {
            print_csv_text(replacement);
        } else {
            fwrite(rec + fields[i].start, 1, fields[i].end - fields[i].start, stdout);
        }
    }
    putchar('\n');
}

static ps_err_t run_csv(struct tokeniser *t, const struct pseudonymise_args *a,
                        struct ps_error *err)
{
    char *rec = NULL, *value = NULL;
    size_t rec_cap = 0, field_cap = 0, lineno = 1, lines = 0;
    struct field *fields = NULL;
    long col = -1;
    int header = !a->no_header;
    ps_err_t rc = PS_OK;
    char *end = NULL;

    long number = strtol(a->column, &end, 10);
    if (*a->column != '\0' && *end == '\0') {
        if (number < 1) {
            return ps_error_set(err, PS_ERR_INVALID, "--column numbers start at 1");
        }
        col = number - 1;
    } else if (!header) {
        return ps_error_set(err, PS_ERR_INVALID, "--column NAME needs a header row");
    }
    value = malloc(RECORD_MAX);
    if (!value) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory");
    }
    for (;; lineno += lines) {
        long len = read_record(&rec, &rec_cap, &lines);
        if (len == 0) {
            break;
        }
        if (len < 0) {
            rc = ps_error_set(err, PS_ERR_LIMIT, "line %zu: a CSV record longer than %d bytes "
                              "(or an unclosed quote)", lineno, RECORD_MAX);
            break;
        }
        size_t rec_len = (size_t)len - 1;
        size_t count = split_fields(rec, rec_len, &fields, &field_cap);
        if (count == 0) {
            rc = ps_error_set(err, PS_ERR_NOMEM, "out of memory");
            break;
        }
        if (header) {
            header = 0;
            for (size_t i = 0; col < 0 && i < count; i++) {
                unquote(rec, &fields[i], value);
                if (strcmp(value, a->column) == 0) {
                    col = (long)i;
                }
            }
            if (col < 0 || (size_t)col >= count) {
                rc = ps_error_set(err, PS_ERR_INVALID, "the header row has no column %s",
                                  a->column);
                break;
            }
            size_t n = unquote(rec, &fields[col], value);
            snprintf(value + n, RECORD_MAX - n, "_token");
            print_record(rec, fields, count, (size_t)col, value);
            continue;
        }
        if ((size_t)col >= count) {
            fprintf(stderr, "pseudostream pseudonymise: line %zu: no column %ld (not "
                    "tokenised)\n", lineno, col + 1);
            t->rejected++;
            print_record(rec, fields, count, SIZE_MAX, "");
            continue;
        }
        size_t n = unquote(rec, &fields[col], value);
        char token[PS_TOKEN_MAX];
        rc = tokenise(t, value, n, lineno, token, err);
        if (rc != PS_OK) {
            break;
        }
        print_record(rec, fields, count, (size_t)col, token);
    }
    if (rec) {
        memset(rec, 0, rec_cap);
    }
    memset(value, 0, RECORD_MAX);
    free(rec);
    free(value);
    free(fields);
    return rc;
}

int cmd_pseudonymise(int argc, char **argv)
{
    struct pseudonymise_args a = {0};
    int usage = parse_args(argc, argv, &a);
    if (usage) {
        return usage == 1 ? CLI_EXIT_OK : usage;
    }
    struct ps_error err = {0};
    struct ps_config *conf = NULL;
    struct ps_keyring *kr = NULL;
    struct ps_pseudonymiser *p = NULL;
    struct tokeniser t = {.kind = a.kind, .key_id = a.key_id, .time_ms = ps_time_now_ms()};

    if (a.event_time && ps_time_parse_iso(a.event_time, &t.time_ms) != PS_OK) {
        return cli_usage_error("pseudonymise", "--event-time takes an ISO 8601 date or instant");
    }
    /* The keyring loader reads the passphrase from the environment. */
    if (a.passphrase_file && setenv(PS_PASSPHRASE_FILE_ENV, a.passphrase_file, 1) != 0) {
        return cli_usage_error("pseudonymise", "cannot pass on --passphrase-file");
    }
    ps_err_t rc = ps_crypto_harden_process(&err);
    if (rc == PS_OK) {
        rc = ps_crypto_init(&err);
    }
    if (rc == PS_OK) {
        rc = ps_config_load(a.config, &conf, &err);
    }
    if (rc == PS_OK) {
        rc = ps_runtime_load_keyring(conf, &kr, &err);
    }
    if (rc == PS_OK) {
        rc = ps_pseudonymiser_new(kr, a.domain, &p, &err);
    }
    if (rc == PS_OK) {
        t.p = p;
        rc = a.csv ? run_csv(&t, &a, &err) : run_lines(&t, &err);
    }
    if (fflush(stdout) != 0 && rc == PS_OK) {
        rc = ps_error_set(&err, PS_ERR_IO, "cannot write the tokens to stdout");
    }
    ps_pseudonymiser_destroy(p);
    ps_keyring_destroy(kr);
    ps_config_destroy(conf);
    if (rc != PS_OK) {
        return cli_fail(&err);
    }
    if (t.rejected > 0) {
        fprintf(stderr, "pseudostream pseudonymise: %zu value%s not tokenised (lines above)\n",
                t.rejected, t.rejected == 1 ? "" : "s");
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}
