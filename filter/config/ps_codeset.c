/*
 * Code sets: the restricted categories a policy can withhold by
 * (the YAML files in policy/codesets/), read with the same loader as every config file.
 *
 *   name: sexually_transmitted_infections
 *   system: ICD-10
 *   description: ...
 *   prefixes: [A50, A51, ...]
 */
#include <stdlib.h>
#include <string.h>

#include "ps_codeset_load.h"
#include "ps_policy_doc.h"
#include "ps_yaml.h"

#define CODESET_MAX_BYTES (1024 * 1024)

struct raw_codeset {
    char *name;
    char *system;
    char *description;
    char **prefixes;
    unsigned prefixes_count;
};

static const cyaml_schema_value_t prefix_value = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 1, 16),
};

static const cyaml_schema_field_t codeset_fields[] = {
    CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_POINTER, struct raw_codeset, name, 1,
                           CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("system", CYAML_FLAG_POINTER, struct raw_codeset, system, 1,
                           CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("description", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL,
                           struct raw_codeset, description, 0, CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("prefixes", CYAML_FLAG_POINTER, struct raw_codeset, prefixes,
                         &prefix_value, 1, CYAML_UNLIMITED),
    CYAML_FIELD_END};

static const cyaml_schema_value_t codeset_value = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct raw_codeset, codeset_fields),
};

static const struct ps_yaml_hint codeset_hints[] = {
    {"name", "add name: <short name of the code set>"},
    {"system", "add system: ICD-10 (or the coding system of the prefixes)"},
    {"prefixes", "add prefixes: [A50, A51, ...]"},
    {NULL, NULL}};

static const struct ps_yaml_doc_type codeset_type = {
    .schema = &codeset_value,
    .hints = codeset_hints,
    .empty_fix = "write name:, system: and prefixes:",
};

/* Upper case without dots: "a54.0" and "A540" compare equal. ASCII only:
 * codes are ASCII, and toupper() would follow the locale. */
static size_t fold_code(const char *code, size_t len, char *out, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 1 < size; i++) {
        char c = code[i];
        if (c != '.' && c != ' ') {
            out[n++] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
        }
    }
    out[n] = '\0';
    return n;
}

int ps_codeset_match(const struct ps_codeset *set, const char *code, size_t len)
{
    char folded[64];
    size_t n = fold_code(code, len, folded, sizeof(folded));
    for (size_t i = 0; i < set->prefix_count; i++) {
        size_t plen = set->prefix_lens[i];
        if (plen <= n && folded[0] == set->prefixes[i][0] &&
            memcmp(folded, set->prefixes[i], plen) == 0) {
            return 1;
        }
    }
    return 0;
}

void ps_codeset_destroy(struct ps_codeset *set)
{
    if (!set) {
        return;
    }
    for (size_t i = 0; i < set->prefix_count; i++) {
        free(set->prefixes[i]);
    }
    free(set->prefixes);
    free(set->prefix_lens);
    free(set->file);
    free(set->name);
    free(set->system);
    free(set->description);
    free(set);
}

static ps_err_t convert(const struct raw_codeset *raw, const char *path, struct ps_codeset *set,
                        struct ps_error *err)
{
    set->file = strdup(path);
    set->name = strdup(raw->name);
    set->system = strdup(raw->system);
    set->description = raw->description ? strdup(raw->description) : NULL;
    set->prefixes = calloc(raw->prefixes_count, sizeof(*set->prefixes));
    set->prefix_lens = calloc(raw->prefixes_count, sizeof(*set->prefix_lens));
    if (!set->file || !set->name || !set->system || !set->prefixes || !set->prefix_lens ||
        (raw->description && !set->description)) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory loading %s", path);
    }
    for (unsigned i = 0; i < raw->prefixes_count; i++) {
        char folded[32];
        set->prefix_lens[i] =
            fold_code(raw->prefixes[i], strlen(raw->prefixes[i]), folded, sizeof(folded));
        if (set->prefix_lens[i] == 0) {
            /* It would match every code and withhold everything. */
            return ps_error_set(err, PS_ERR_CONFIG, "%s: prefixes[%u] is empty once dots and "
                                "spaces are removed: write a code prefix such as A50", path, i);
        }
        set->prefix_count = i + 1;
        if (!(set->prefixes[i] = strdup(folded))) {
            return ps_error_set(err, PS_ERR_NOMEM, "out of memory loading %s", path);
        }
    }
    return PS_OK;
}

ps_err_t ps_codeset_load(const char *path, struct ps_codeset **set_p, struct ps_error *err)
{
    struct ps_yaml_file *yf = NULL;
    struct raw_codeset *raw = NULL;
    struct ps_codeset *set = calloc(1, sizeof(*set));
    ps_err_t rc = set ? ps_yaml_file_open(path, CODESET_MAX_BYTES, 0, &yf, err)
                      : ps_error_set(err, PS_ERR_NOMEM, "out of memory");
    if (rc == PS_OK) {
        rc = ps_yaml_file_load(yf, &codeset_type, (void **)&raw, err);
    }
    if (rc == PS_OK) {
        rc = convert(raw, path, set, err);
    }
    if (rc == PS_OK) {
        *set_p = set;
        set = NULL;
    }
    ps_codeset_destroy(set);
    if (yf) {
        ps_yaml_file_free_data(yf, &codeset_type, raw);
        ps_yaml_file_destroy(yf);
    }
    return rc;
}
