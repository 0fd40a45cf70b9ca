/*
 * pseudostream policy: commands for the people who write a disclosure policy
 * and sign its DPIA.
 *
 *   check    every error and warning of a policy, as start-up would find them
 *   explain  the data-flow tables (Markdown) of what each destination receives
 *   preview  what each destination would receive of one event
 *
 * The schemas are the configuration's (-c) or the reference schemas.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "cli_schemas.h"
#include "ps_buf.h"
#include "ps_codec.h"
#include "ps_digest.h"
#include "ps_engine.h"
#include "ps_explain.h"
#include "ps_frame.h"
#include "ps_keyring.h"
#include "ps_log.h"
#include "ps_optout.h"
#include "ps_plan.h"
#include "ps_policy.h"
#include "ps_policy_doc.h"
#include "ps_runtime.h"
#include "ps_secret.h"
#include "ps_time.h"

/* An event file is one event: a megabyte is a mistake, not an event. */
#define POLICY_EVENT_MAX (1024 * 1024)

static void policy_help(void)
{
    printf("usage: pseudostream policy check FILE [-c CONFIG]\n"
           "       pseudostream policy explain FILE [-c CONFIG]\n"
           "       pseudostream policy preview FILE EVENT.json [-c CONFIG] [--schema NAME]\n\n"
           "check    loads the policy and checks it as the filter does at start-up, against\n"
           "         every input schema; prints every error and warning (file:line:col) and\n"
           "         exits 2 on an error, 0 otherwise.\n"
           "explain  prints, as Markdown for a DPIA, each destination's purpose, legal basis,\n"
           "         opt-out, pseudonym domain and withhold conditions, and per input schema a\n"
           "         table of every field with what the destination receives and the rule\n"
           "         that decided.\n"
           "preview  runs one event (the readable JSON form that 'consume' prints) through\n"
           "         the policy and prints each destination's decision and record. Without\n"
           "         -c, pseudonyms come from a throw-away random key; the subject is\n"
           "         treated as cleared under the national data opt-out.\n\n"
           "  -c, --config FILE   service configuration: its input schemas (and, for\n"
           "                      preview, its keyring); default: the reference schemas\n"
           "      --schema NAME   preview: the event's schema (full name, or its last part,\n"
           "                      e.g. Hl7v2Event); default: the one schema the JSON fits\n");
}

struct policy_args {
    const char *config;
    const char *schema;
    const char *files[2];
    int file_count;
};

/* 0 to go on, 1 after --help, else an exit code. */
static int policy_parse(const char *command, int argc, char **argv, int files,
                        struct policy_args *a)
{
    static const struct option options[] = {{"config", required_argument, NULL, 'c'},
                                            {"schema", required_argument, NULL, 's'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
        switch (c) {
        case 'c': a->config = optarg; break;
        case 's': a->schema = optarg; break;
        case 'h': policy_help(); return 1;
        default: return cli_usage_error(command, "unknown option");
        }
    }
    if (argc - optind != files) {
        return cli_usage_error(command, files == 1 ? "give one policy FILE"
                                                   : "give a policy FILE and an EVENT.json");
    }
    for (int i = 0; i < files; i++) {
        a->files[a->file_count++] = argv[optind + i];
    }
    if (a->schema && files != 2) {
        return cli_usage_error(command, "--schema is for preview");
    }
    return 0;
}

/* ---------------------------------------------------------------- check */

/* Distinct lines, in the order found: the same tag rule fails or warns once
 * per schema, and a reader needs it once. */
struct lines {
    char **items;
    size_t count;
};

static void lines_add(struct lines *l, const char *text)
{
    for (size_t i = 0; i < l->count; i++) {
        if (strcmp(l->items[i], text) == 0) {
            return;
        }
    }
    char **grown = realloc(l->items, (l->count + 1) * sizeof(*grown));
    if (!grown) {
        return;
    }
    l->items = grown;
    if ((l->items[l->count] = strdup(text))) {
        l->count++;
    }
}

static void lines_add_error(struct lines *l, const struct ps_error *err)
{
    char line[PS_ERROR_MSG_MAX + PS_ERROR_FILE_MAX + 64];
    ps_error_format(err, line, sizeof(line));
    lines_add(l, line);
}

static void lines_free(struct lines *l)
{
    for (size_t i = 0; i < l->count; i++) {
        free(l->items[i]);
    }
    free(l->items);
}

/* A path that names no field of any input schema is a typo, not a choice:
 * start-up refuses it (ps_engine_new), so check reports it too. */
static void report_error(void *opaque, const struct ps_error *err)
{
    lines_add_error(opaque, err);
}

/* Every error and warning of doc on the registry's schemas. */
static void policy_findings(const struct ps_policy_doc *doc, const struct ps_registry *reg,
                            struct lines *errors, struct lines *warnings)
{
    struct ps_error err = {0};
    if (ps_policy_check(doc, &err) != PS_OK) {
        lines_add_error(errors, &err);
    }
    for (size_t d = 0; d < doc->destination_count; d++) {
        for (size_t s = 0; s < ps_registry_count(reg); s++) {
            struct ps_plan *plan = NULL;
            ps_error_clear(&err);
            if (ps_plan_compile(doc, &doc->destinations[d], ps_registry_at(reg, s), &plan,
                                &err) != PS_OK) {
                lines_add_error(errors, &err);
                continue;
            }
            for (size_t w = 0; w < plan->warning_count; w++) {
                lines_add(warnings, plan->warnings[w]);
            }
            ps_plan_destroy(plan);
        }
    }
    ps_policy_check_paths(doc, reg, report_error, errors);
}

static int policy_check(int argc, char **argv)
{
    struct policy_args a = {0};
    int usage = policy_parse("policy check", argc, argv, 1, &a);
    if (usage) {
        return usage == 1 ? CLI_EXIT_OK : usage;
    }
    ps_log_set_stream(stderr);
    struct ps_error err = {0};
    struct cli_schemas cs;
    struct ps_policy_doc *doc = NULL;
    if (cli_schemas_load(a.config, &cs, &err) != PS_OK) {
        return cli_fail(&err);
    }
    if (ps_policy_doc_load(a.files[0], &doc, &err) != PS_OK) {
        cli_schemas_free(&cs);
        return cli_fail(&err);
    }
    struct lines errors = {0}, warnings = {0};
    policy_findings(doc, cs.reg, &errors, &warnings);
    for (size_t i = 0; i < errors.count; i++) {
        fprintf(stderr, "pseudostream: (config) %s\n", errors.items[i]);
    }
    for (size_t i = 0; i < warnings.count; i++) {
        fprintf(stderr, "%s\n", warnings.items[i]);
    }
    printf("%s: %zu destination%s on %zu schema%s: %s, %zu error%s, %zu warning%s\n",
           a.files[0], doc->destination_count, doc->destination_count == 1 ? "" : "s",
           ps_registry_count(cs.reg), ps_registry_count(cs.reg) == 1 ? "" : "s",
           errors.count ? "REFUSED" : "ok", errors.count, errors.count == 1 ? "" : "s",
           warnings.count, warnings.count == 1 ? "" : "s");
    int rc = errors.count ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    lines_free(&errors);
    lines_free(&warnings);
    ps_policy_doc_destroy(doc);
    cli_schemas_free(&cs);
    return rc;
}

/* -------------------------------------------------------------- explain */

static int policy_explain(int argc, char **argv)
{
    struct policy_args a = {0};
    int usage = policy_parse("policy explain", argc, argv, 1, &a);
    if (usage) {
        return usage == 1 ? CLI_EXIT_OK : usage;
    }
    ps_log_set_stream(stderr);
    struct ps_error err = {0};
    struct cli_schemas cs;
    struct ps_policy_doc *doc = NULL;
    const struct ps_schema **schemas = NULL;
    struct lines errors = {0}, warnings = {0};
    struct ps_buf out;
    char hash[PS_DIGEST_HEX_LEN + 1];
    ps_buf_init(&out, 0);
    ps_err_t rc = cli_schemas_load(a.config, &cs, &err);
    if (rc != PS_OK) {
        return cli_fail(&err);
    }
    rc = ps_policy_doc_load(a.files[0], &doc, &err);
    if (rc == PS_OK) {
        rc = ps_digest_file_hex(a.files[0], hash, &err);
    }
    if (rc == PS_OK) {
        /* A DPIA table of a policy the filter would refuse would describe
         * flows that never happen: explain only what would run. */
        policy_findings(doc, cs.reg, &errors, &warnings);
        if (errors.count) {
            for (size_t i = 1; i < errors.count; i++) {
                fprintf(stderr, "pseudostream: (config) %s\n", errors.items[i]);
            }
            rc = ps_error_set(&err, PS_ERR_CONFIG, "%s (run 'pseudostream policy check')",
                              errors.items[0]);
        }
    }
    size_t count = ps_registry_count(cs.reg);
    if (rc == PS_OK && !(schemas = calloc(count + 1, sizeof(*schemas)))) {
        rc = ps_error_set(&err, PS_ERR_NOMEM, "out of memory");
    }
    for (size_t s = 0; rc == PS_OK && s < count; s++) {
        schemas[s] = ps_registry_at(cs.reg, s);
    }
    if (rc == PS_OK) {
        rc = ps_explain_policy(doc, hash, schemas, count, &out, &err);
    }
    if (rc == PS_OK && fwrite(out.data, 1, out.len, stdout) != out.len) {
        rc = ps_error_set(&err, PS_ERR_IO, "could not write to standard output");
    }
    lines_free(&errors);
    lines_free(&warnings);
    free(schemas);
    ps_buf_free(&out);
    ps_policy_doc_destroy(doc);
    cli_schemas_free(&cs);
    return rc == PS_OK ? CLI_EXIT_OK : cli_fail(&err);
}

/* -------------------------------------------------------------- preview */

static ps_err_t read_event(const char *path, struct ps_buf *text, struct ps_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return ps_error_set(err, PS_ERR_IO, "%s: cannot open the event file", path);
    }
    char chunk[8192];
    size_t n;
    ps_err_t rc = PS_OK;
    while (rc == PS_OK && (n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        rc = ps_buf_append(text, chunk, n);
    }
    if (rc == PS_OK && ferror(f)) {
        rc = ps_error_set(err, PS_ERR_IO, "%s: cannot read the event file", path);
    } else if (rc == PS_ERR_LIMIT) {
        rc = ps_error_set(err, PS_ERR_LIMIT, "%s: more than %d bytes: one event per file", path,
                          POLICY_EVENT_MAX);
    } else if (rc != PS_OK) {
        rc = ps_error_set(err, rc, "%s: out of memory", path);
    }
    fclose(f);
    return rc;
}

static int schema_named(const struct ps_schema *schema, const char *name)
{
    const char *full = ps_schema_name(schema);
    const char *dot = strrchr(full, '.');
    return strcmp(full, name) == 0 || strcasecmp(dot ? dot + 1 : full, name) == 0;
}

/* The event's schema: the one named, else the one schema the JSON fits.
 * On success datum holds the encoded event and *index_p the registry index. */
static ps_err_t find_schema(const struct ps_registry *reg, const char *name,
                            const struct ps_buf *json, struct ps_buf *datum, size_t *index_p,
                            struct ps_error *err)
{
    size_t fits = 0, found = 0;
    struct ps_error first = {0};
    for (size_t s = 0; s < ps_registry_count(reg); s++) {
        const struct ps_schema *schema = ps_registry_at(reg, s);
        struct ps_error why = {0};
        if (name && !schema_named(schema, name)) {
            continue;
        }
        ps_buf_reset(datum);
        if (ps_codec_json_to_datum(schema, (const char *)json->data, json->len, datum, &why) ==
            PS_OK) {
            if (fits++ == 0) {
                found = s;
            }
        } else if (first.code == PS_OK) {
            first = why;
            ps_error_prefix(&first, "schema '%s'", ps_schema_name(schema));
        }
    }
    if (fits == 0 && first.code == PS_OK) {
        return ps_error_set(err, PS_ERR_INVALID, "no input schema is named '%s'", name);
    }
    if (fits == 0) {
        *err = first;
        return ps_error_prefix(err, "the event fits no input schema");
    }
    if (fits > 1) {
        return ps_error_set(err, PS_ERR_INVALID, "the event fits %zu input schemas: name one "
                            "with --schema", fits);
    }
    ps_buf_reset(datum);
    *index_p = found;
    return ps_codec_json_to_datum(ps_registry_at(reg, found), (const char *)json->data,
                                  json->len, datum, err);
}

/* A keyring of one random secret, made here and forgotten at exit, so a
 * preview never needs (or shows tokens of) the real keyring. */
static ps_err_t throwaway_keyring(struct ps_keyring **kr_p, struct ps_error *err)
{
    char secret[PS_SECRET_B64_MAX];
    ps_err_t rc = ps_secret_new_b64(secret, err);
    if (rc == PS_OK) {
        struct ps_keyring_entry entry = {1, 0, 0, secret};
        rc = ps_keyring_new(&entry, 1, "throw-away preview key", kr_p, err);
    }
    explicit_bzero(secret, sizeof(secret));
    return rc;
}

static ps_err_t print_output(const struct ps_engine *engine, const struct ps_schema *schema,
                             size_t d, const struct ps_engine_output *out,
                             struct ps_decoder *dec, struct ps_buf *json, struct ps_error *err)
{
    const struct ps_policy_destination *dst = ps_engine_destination(engine, d);
    printf("## %s -> %s: ", dst->name, dst->topic);
    if (out->decision == PS_WITHHELD) {
        printf("withheld (%s): %s\n\n", ps_err_name(out->reason), out->detail);
        return PS_OK;
    }
    const struct ps_plan *plan = ps_engine_plan(engine, schema, d);
    const struct ps_schema *derived = ps_projection_schema(plan->projection);
    struct ps_frame frame;
    struct ps_event *ev = NULL;
    ps_err_t rc = ps_frame_parse(out->value, out->len, &frame, err);
    if (rc == PS_OK) {
        rc = ps_decoder_decode(dec, derived, frame.payload, frame.payload_len, &ev, err);
    }
    ps_buf_reset(json);
    if (rc == PS_OK) {
        rc = ps_event_to_json(ev, json, err);
    }
    if (rc != PS_OK) {
        return ps_error_prefix(err, "destination '%s': output", dst->name);
    }
    printf("disclosed\n");
    if (out->key) {
        printf("key: %.*s (the subject's pseudonym, key %u)\n", (int)out->key_len, out->key,
               out->key_id);
    } else if (ps_plan_is_direct_care(dst)) {
        printf("key: the input message's key, unchanged (direct care)\n");
    } else {
        printf("key: none\n");
    }
    printf("%.*s\n\n", (int)json->len, (const char *)json->data);
    return PS_OK;
}

struct preview {
    struct cli_schemas cs;
    struct ps_policy_doc *doc;
    struct ps_keyring *kr;
    struct ps_engine *engine;
    struct ps_engine_worker *worker;
    struct ps_optout *optout;
    struct ps_decoder *dec;
    struct ps_buf text, framed, json;
};

static ps_err_t preview_open(struct preview *p, const struct policy_args *a, size_t *schema_p,
                             struct ps_error *err)
{
    char hash[PS_DIGEST_HEX_LEN + 1];
    ps_err_t rc = ps_crypto_init(err);
    if (rc == PS_OK && a->config) {
        /* The real keyring is loaded: keep it out of core dumps and debuggers. */
        rc = ps_crypto_harden_process(err);
    }
    if (rc == PS_OK) {
        rc = cli_schemas_load(a->config, &p->cs, err);
    }
    if (rc == PS_OK) {
        rc = ps_policy_doc_load(a->files[0], &p->doc, err);
    }
    if (rc == PS_OK) {
        rc = ps_digest_file_hex(a->files[0], hash, err);
    }
    if (rc == PS_OK) {
        rc = read_event(a->files[1], &p->text, err);
    }
    if (rc == PS_OK) {
        rc = find_schema(p->cs.reg, a->schema, &p->text, &p->json, schema_p, err);
    }
    if (rc == PS_OK) {
        /* Framed as the filter would find it on the input topic. */
        int64_t id = ps_registry_id_at(p->cs.reg, *schema_p);
        const struct ps_schema *schema = ps_registry_at(p->cs.reg, *schema_p);
        rc = id >= 0 ? ps_frame_write_confluent((uint32_t)id, &p->framed)
                     : ps_frame_write_single_object(ps_schema_fingerprint(schema), &p->framed);
        if (rc == PS_OK) {
            rc = ps_buf_append(&p->framed, p->json.data, p->json.len);
        }
        if (rc != PS_OK) {
            rc = ps_error_set(err, rc, "out of memory");
        }
    }
    if (rc == PS_OK) {
        rc = a->config ? ps_runtime_load_keyring(p->cs.conf, &p->kr, err)
                       : throwaway_keyring(&p->kr, err);
    }
    if (rc == PS_OK) {
        rc = ps_engine_new(p->doc, hash, p->cs.reg, p->kr, &p->engine, err);
    }
    if (rc == PS_OK) {
        rc = ps_engine_worker_new(p->engine, NULL, &p->worker, err);
    }
    if (rc == PS_OK) {
        rc = ps_decoder_new(NULL, &p->dec, err);
    }
    if (rc == PS_OK) {
        /* An opted-out list with nobody on it, dated now: every valid number
         * is cleared, so the preview shows the policy, not the opt-out. */
        rc = ps_optout_new(PS_OPTOUT_OPTED_OUT, &p->optout, err);
    }
    if (rc == PS_OK) {
        ps_optout_set_as_of(p->optout, ps_time_now_ms());
        ps_engine_worker_set_optout(p->worker, p->optout, 1);
    }
    return rc;
}

static void preview_close(struct preview *p)
{
    ps_buf_free(&p->text);
    ps_buf_free(&p->framed);
    ps_buf_free(&p->json);
    ps_decoder_destroy(p->dec);
    ps_optout_destroy(p->optout);
    ps_engine_worker_destroy(p->worker);
    ps_engine_destroy(p->engine);
    ps_keyring_destroy(p->kr);
    ps_policy_doc_destroy(p->doc);
    cli_schemas_free(&p->cs);
}

static int policy_preview(int argc, char **argv)
{
    struct policy_args a = {0};
    int usage = policy_parse("policy preview", argc, argv, 2, &a);
    if (usage) {
        return usage == 1 ? CLI_EXIT_OK : usage;
    }
    ps_log_set_stream(stderr);
    struct ps_error err = {0};
    struct preview p;
    memset(&p, 0, sizeof(p));
    ps_buf_init(&p.text, POLICY_EVENT_MAX);
    ps_buf_init(&p.framed, 0);
    ps_buf_init(&p.json, 0);
    size_t s = 0;
    const struct ps_engine_output *outs = NULL;
    ps_err_t rc = preview_open(&p, &a, &s, &err);
    if (rc == PS_OK) {
        rc = ps_engine_process(p.worker, p.framed.data, p.framed.len, &outs, &err);
    }
    if (rc == PS_OK) {
        const struct ps_schema *schema = ps_registry_at(p.cs.reg, s);
        const struct ps_engine_event *ev = ps_engine_worker_event(p.worker);
        printf("# Preview of %s under policy %s\n\n", a.files[1], a.files[0]);
        printf("- schema: %s\n", ps_schema_name(schema));
        printf("- event: id '%s', type '%s'\n", ev->event_id, ev->event_type);
        if (a.config) {
            printf("- pseudonyms: from the keyring of %s (the real keyring: they are the "
                   "tokens the stream would carry)\n", a.config);
        } else {
            printf("- pseudonyms: from a throw-away random key made for this preview; they "
                   "differ on every run and from the stream's (give -c CONFIG to use its "
                   "keyring)\n");
        }
        printf("- national data opt-out: the subject is treated as cleared (not opted out) and "
               "the opt-out state as fresh\n\n");
        for (size_t d = 0; rc == PS_OK && d < ps_engine_destination_count(p.engine); d++) {
            rc = print_output(p.engine, schema, d, &outs[d], p.dec, &p.json, &err);
        }
    }
    preview_close(&p);
    return rc == PS_OK ? CLI_EXIT_OK : cli_fail(&err);
}

int cmd_policy(int argc, char **argv)
{
    if (argc < 2) {
        return cli_usage_error("policy", "give a subcommand: check, explain or preview");
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        policy_help();
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "check") == 0) {
        return policy_check(argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "explain") == 0) {
        return policy_explain(argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "preview") == 0) {
        return policy_preview(argc - 1, argv + 1);
    }
    return cli_usage_error("policy", "unknown subcommand '%s' (known: check, explain, preview)",
                           argv[1]);
}
