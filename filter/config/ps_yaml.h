/*
 * ps_yaml: what the three file loaders of the config layer share (internal to
 * filter/config; nothing outside this folder includes it, since it brings in
 * cyaml.h).
 *
 * A file is read once into memory and then looked at twice:
 *
 *  1. libyaml's event parser builds a small index of the document: every
 *     mapping, sequence and scalar with the line and column where it starts,
 *     and the text of mapping keys (scalar values only when asked for). It
 *     catches syntax errors with their exact position and refuses anchors,
 *     aliases and multiple documents.
 *  2. libcyaml loads the same bytes against the schema. libcyaml 1.3.1
 *     reports problems only through its log callback, as a message and a
 *     backtrace whose positions are often those of a neighbouring field, so
 *     the log is captured, its backtrace turned into a path such as
 *     destinations[1].rules[0].action, and the position is taken from the
 *     index instead.
 *
 * The index also gives the loaders the positions of values they check
 * themselves (numbers, dates, mutually exclusive keys).
 *
 * Secret files (the keyring): the file must not be readable by group or
 * others; scalar values are never copied into the index; no error message
 * repeats a value; every buffer this module owns, and everything libcyaml
 * allocates, is wiped before it is freed. libyaml's own internal buffers are
 * out of reach and are not wiped. PS_YAML_WIPE asks for the wiping alone (the
 * service configuration, whose Kafka properties may hold a password).
 */
#ifndef PS_YAML_H
#define PS_YAML_H

#include <stddef.h>
#include <stdint.h>

#include <cyaml/cyaml.h>

#include "ps_error.h"

enum ps_ynode_kind { PS_YNODE_SCALAR = 0, PS_YNODE_MAP, PS_YNODE_SEQ };

struct ps_ynode {
    enum ps_ynode_kind kind;
    int line, col;              /* 1-based start of the node */
    char *text;                 /* scalar text: always for keys, for values when kept */
    size_t count;               /* MAP: pairs; SEQ: items */
    struct ps_ynode *keys;      /* MAP: the key scalars */
    struct ps_ynode *items;     /* MAP: the values; SEQ: the items */
};

/* Suggested fix when a required key is missing: "add topic: <kafka topic name>". */
struct ps_yaml_hint {
    const char *key;
    const char *fix;
};

struct ps_yaml_doc_type {
    const cyaml_schema_value_t *schema;   /* top level: a mapping with CYAML_FLAG_POINTER */
    const struct ps_yaml_hint *hints;     /* ends with { NULL, NULL } */
    const char *empty_fix;                /* what to write when the file is empty */
};

enum {
    PS_YAML_SECRET = 1 << 0,    /* keyring: mode 0600, no values kept or echoed, wipe */
    PS_YAML_KEEP_VALUES = 1 << 1, /* keep scalar value text in the index */
    PS_YAML_WIPE = 1 << 2         /* wipe buffers and libcyaml's allocations when freed */
};

struct ps_yaml_file {
    char *path;                 /* as given; used in every message */
    char *buf;
    size_t len;
    unsigned flags;
    struct ps_ynode root;
    int has_root;               /* 0 when the document is empty */
};

/* Reads path (at most max_bytes) and builds the index. PS_YAML_SECRET also
 * refuses a file whose mode lets group or others in (PS_ERR_PERMISSION).
 * PS_ERR_IO, PS_ERR_CONFIG (syntax, anchors, too big), PS_ERR_NOMEM. */
ps_err_t ps_yaml_file_open(const char *path, size_t max_bytes, unsigned flags,
                           struct ps_yaml_file **yf_p, struct ps_error *err);
/* As ps_yaml_file_open, from len bytes already in memory (copied) that name
 * stands for in messages: no mode check (the caller read the bytes). Used for
 * a keyring decrypted in memory. */
ps_err_t ps_yaml_file_open_buffer(const char *name, const char *data, size_t len, unsigned flags,
                                  struct ps_yaml_file **yf_p, struct ps_error *err);
/* Wipes (secret files) and frees. NULL is a no-op. */
void ps_yaml_file_destroy(struct ps_yaml_file *yf);

/* Loads the file's bytes with libcyaml against type->schema. On success
 * *data_p is the loaded top-level structure (never NULL: an empty file is an
 * error) to be released with ps_yaml_file_free_data. On failure one message
 * with file:line:col and the fix. PS_ERR_CONFIG, PS_ERR_NOMEM. */
ps_err_t ps_yaml_file_load(const struct ps_yaml_file *yf, const struct ps_yaml_doc_type *type,
                           void **data_p, struct ps_error *err);
void ps_yaml_file_free_data(const struct ps_yaml_file *yf, const struct ps_yaml_doc_type *type,
                            void *data);

/* Index look-ups; each returns NULL when the node is absent or of another kind. */
const struct ps_ynode *ps_ynode_get(const struct ps_ynode *map, const char *key);
/* The key node itself (its position is where the key is written). */
const struct ps_ynode *ps_ynode_key(const struct ps_ynode *map, const char *key);
const struct ps_ynode *ps_ynode_item(const struct ps_ynode *seq, size_t i);
/* The root, or NULL when the document is empty. */
const struct ps_ynode *ps_yaml_file_root(const struct ps_yaml_file *yf);

/* PS_ERR_CONFIG at node's position (the file alone when node is NULL). */
ps_err_t ps_yaml_error_at(const struct ps_yaml_file *yf, const struct ps_ynode *node,
                          struct ps_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Strict decimal: digits only, no sign, no leading zero (except "0"), no
 * suffix, min <= value <= max. Returns 0 on success, -1 otherwise. */
int ps_yaml_parse_uint(const char *text, uint64_t min, uint64_t max, uint64_t *value_p);

/* Zeroes n bytes in a way the compiler may not remove. */
void ps_yaml_wipe(void *p, size_t n);

#endif
