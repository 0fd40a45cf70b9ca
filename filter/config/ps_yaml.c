#include "ps_yaml.h"

#include "ps_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

/* Deeper nesting than any of our documents needs; the index is built
 * recursively, so this also bounds the stack. */
#define INDEX_MAX_DEPTH 64
/* libcyaml's log for one failure: a message and a backtrace of one line per
 * level, which INDEX_MAX_DEPTH bounds. */
#define CAPTURE_MAX 8192
#define PATH_MAX_COMPS (INDEX_MAX_DEPTH + 2)
#define KEY_MAX 64
/* How much of an offending value a message may repeat. */
#define ECHO_MAX 48

void ps_yaml_wipe(void *p, size_t n)
{
    volatile unsigned char *q = p;
    while (n--) {
        *q++ = 0;
    }
}

/* ---------------------------------------------------------------- reading */

static ps_err_t read_file(const char *path, size_t max_bytes, unsigned flags, char **buf_p,
                          size_t *len_p, struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    char *buf = NULL;
    size_t len = 0;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return ps_error_set_at(err, PS_ERR_IO, path, 0, 0, "cannot open: %s", strerror(errno));
    }
    /* fstat on the open descriptor, so the mode checked is that of the file
     * actually read (a symbolic link, as Kubernetes mounts secrets, is followed). */
    if (fstat(fd, &st) != 0) {
        rc = ps_error_set_at(err, PS_ERR_IO, path, 0, 0, "cannot stat: %s", strerror(errno));
        goto cleanup;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = ps_error_set_at(err, PS_ERR_IO, path, 0, 0, "not a regular file (give a YAML file)");
        goto cleanup;
    }
    if ((flags & PS_YAML_SECRET) && (st.st_mode & 077) != 0) {
        rc = ps_error_set_at(err, PS_ERR_PERMISSION, path, 0, 0,
                             "holds secrets but group or others may access it (mode %04o); "
                             "run: chmod 600 %s",
                             (unsigned)(st.st_mode & 07777), path);
        goto cleanup;
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > max_bytes) {
        rc = ps_error_set_at(err, PS_ERR_CONFIG, path, 0, 0,
                             "file is larger than %zu bytes (is this the right file?)", max_bytes);
        goto cleanup;
    }
    size_t cap = (size_t)st.st_size + 1;
    buf = malloc(cap);
    if (!buf) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "out of memory reading %s", path);
        goto cleanup;
    }
    rc = ps_file_read_fd(fd, path, buf, cap, &len, err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    if (len == cap) {
        /* More bytes than fstat promised: the file is being rewritten. */
        rc = ps_error_set_at(err, PS_ERR_IO, path, 0, 0,
                             "file changed while it was read (try again)");
        goto cleanup;
    }
    buf[len] = '\0';
    *buf_p = buf;
    *len_p = len;
    buf = NULL;

cleanup:
    if (buf) {
        ps_yaml_wipe(buf, cap);
        free(buf);
    }
    close(fd);
    return rc;
}

/* ------------------------------------------------------------------ index */

struct index_ctx {
    yaml_parser_t parser;
    struct ps_yaml_file *yf;
    struct ps_error *err;
};

static void node_free(const struct ps_yaml_file *yf, struct ps_ynode *node)
{
    if (!node) {
        return;
    }
    for (size_t i = 0; i < node->count; i++) {
        if (node->keys) {
            node_free(yf, &node->keys[i]);
        }
        node_free(yf, &node->items[i]);
    }
    if (node->text) {
        if (yf->flags & (PS_YAML_SECRET | PS_YAML_WIPE)) {
            ps_yaml_wipe(node->text, strlen(node->text));
        }
        free(node->text);
    }
    free(node->keys);
    free(node->items);
    memset(node, 0, sizeof(*node));
}

static ps_err_t syntax_error(struct index_ctx *c)
{
    const yaml_parser_t *p = &c->parser;
    const char *path = c->yf->path;
    if (p->error == YAML_MEMORY_ERROR) {
        return ps_error_set(c->err, PS_ERR_NOMEM, "out of memory parsing %s", path);
    }
    if (p->error == YAML_READER_ERROR) {
        return ps_error_set_at(c->err, PS_ERR_CONFIG, path, 0, 0,
                               "not UTF-8 text: %s at byte %zu (save the file as UTF-8)",
                               p->problem ? p->problem : "unreadable", p->problem_offset);
    }
    const char *problem = p->problem ? p->problem : "not valid YAML";
    const char *fix = strstr(problem, "tab") ? "indent with spaces, not tabs"
                                             : "check the indentation and quoting here";
    if (p->context) {
        return ps_error_set_at(c->err, PS_ERR_CONFIG, path, (int)p->problem_mark.line + 1,
                               (int)p->problem_mark.column + 1, "YAML syntax error: %s %s (%s)",
                               problem, p->context, fix);
    }
    return ps_error_set_at(c->err, PS_ERR_CONFIG, path, (int)p->problem_mark.line + 1,
                           (int)p->problem_mark.column + 1, "YAML syntax error: %s (%s)", problem,
                           fix);
}

static ps_err_t next_event(struct index_ctx *c, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&c->parser, ev)) {
        return syntax_error(c);
    }
    return PS_OK;
}

static void event_delete(const struct index_ctx *c, yaml_event_t *ev)
{
    /* libyaml frees the scalar without clearing it; clear secrets first. */
    if ((c->yf->flags & (PS_YAML_SECRET | PS_YAML_WIPE)) && ev->type == YAML_SCALAR_EVENT &&
        ev->data.scalar.value) {
        ps_yaml_wipe(ev->data.scalar.value, ev->data.scalar.length);
    }
    yaml_event_delete(ev);
}

static ps_err_t refuse_anchor(struct index_ctx *c, const yaml_mark_t *mark)
{
    return ps_error_set_at(c->err, PS_ERR_CONFIG, c->yf->path, (int)mark->line + 1,
                           (int)mark->column + 1,
                           "anchors and aliases (&name, *name) are not allowed "
                           "(write the value out in full)");
}

static ps_err_t node_append(struct ps_ynode *node, size_t *cap, struct ps_ynode *key,
                            struct ps_ynode *item)
{
    if (node->count == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        struct ps_ynode *items = realloc(node->items, ncap * sizeof(*items));
        if (!items) {
            return PS_ERR_NOMEM;
        }
        node->items = items;
        if (key) {
            struct ps_ynode *keys = realloc(node->keys, ncap * sizeof(*keys));
            if (!keys) {
                return PS_ERR_NOMEM;
            }
            node->keys = keys;
        }
        *cap = ncap;
    }
    if (key) {
        node->keys[node->count] = *key;
    }
    node->items[node->count] = *item;
    node->count++;
    return PS_OK;
}

/* Indexes the node that starts with ev; takes ownership of ev. */
static ps_err_t index_node(struct index_ctx *c, yaml_event_t *ev, int depth, int is_key,
                           struct ps_ynode *node)
{
    ps_err_t rc = PS_OK;
    size_t cap = 0;
    yaml_mark_t mark = ev->start_mark;
    memset(node, 0, sizeof(*node));
    node->line = (int)mark.line + 1;
    node->col = (int)mark.column + 1;

    if (depth > INDEX_MAX_DEPTH) {
        event_delete(c, ev);
        return ps_error_set_at(c->err, PS_ERR_CONFIG, c->yf->path, node->line, node->col,
                               "nested deeper than %d levels (flatten the document)",
                               INDEX_MAX_DEPTH);
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT: {
        node->kind = PS_YNODE_SCALAR;
        if (ev->data.scalar.anchor) {
            event_delete(c, ev);
            return refuse_anchor(c, &mark);
        }
        int keep = is_key || ((c->yf->flags & PS_YAML_KEEP_VALUES) &&
                              !(c->yf->flags & PS_YAML_SECRET));
        if (keep) {
            node->text = strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
            if (!node->text) {
                event_delete(c, ev);
                return ps_error_set(c->err, PS_ERR_NOMEM, "out of memory indexing %s",
                                    c->yf->path);
            }
        }
        event_delete(c, ev);
        return PS_OK;
    }
    case YAML_ALIAS_EVENT:
        event_delete(c, ev);
        return refuse_anchor(c, &mark);
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        int is_map = ev->type == YAML_MAPPING_START_EVENT;
        const yaml_char_t *anchor =
            is_map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
        node->kind = is_map ? PS_YNODE_MAP : PS_YNODE_SEQ;
        event_delete(c, ev);
        if (anchor) {
            return refuse_anchor(c, &mark);
        }
        if (is_key) {
            return ps_error_set_at(c->err, PS_ERR_CONFIG, c->yf->path, node->line, node->col,
                                   "a key must be a plain name, not a list or mapping");
        }
        break;
    }
    default:
        event_delete(c, ev);
        return ps_error_set_at(c->err, PS_ERR_CONFIG, c->yf->path, node->line, node->col,
                               "unexpected YAML structure here");
    }

    for (;;) {
        yaml_event_t kev;
        struct ps_ynode key, item;
        int have_key = 0;
        rc = next_event(c, &kev);
        if (rc != PS_OK) {
            goto fail;
        }
        if (kev.type == YAML_SEQUENCE_END_EVENT || kev.type == YAML_MAPPING_END_EVENT) {
            event_delete(c, &kev);
            break;
        }
        if (node->kind == PS_YNODE_MAP) {
            rc = index_node(c, &kev, depth + 1, 1, &key);
            if (rc != PS_OK) {
                goto fail;
            }
            have_key = 1;
            yaml_event_t vev;
            rc = next_event(c, &vev);
            if (rc != PS_OK) {
                node_free(c->yf, &key);
                goto fail;
            }
            rc = index_node(c, &vev, depth + 1, 0, &item);
        } else {
            rc = index_node(c, &kev, depth + 1, 0, &item);
        }
        if (rc != PS_OK) {
            if (have_key) {
                node_free(c->yf, &key);
            }
            goto fail;
        }
        if (node_append(node, &cap, have_key ? &key : NULL, &item) != PS_OK) {
            if (have_key) {
                node_free(c->yf, &key);
            }
            node_free(c->yf, &item);
            rc = ps_error_set(c->err, PS_ERR_NOMEM, "out of memory indexing %s", c->yf->path);
            goto fail;
        }
    }
    return PS_OK;

fail:
    node_free(c->yf, node);
    return rc;
}

static ps_err_t index_file(struct ps_yaml_file *yf, struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    struct index_ctx c = {.yf = yf, .err = err};
    yaml_event_t ev;
    if (!yaml_parser_initialize(&c.parser)) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory parsing %s", yf->path);
    }
    yaml_parser_set_input_string(&c.parser, (const unsigned char *)yf->buf, yf->len);

    rc = next_event(&c, &ev); /* stream start */
    if (rc != PS_OK) {
        goto cleanup;
    }
    event_delete(&c, &ev);
    rc = next_event(&c, &ev);
    if (rc != PS_OK) {
        goto cleanup;
    }
    if (ev.type == YAML_STREAM_END_EVENT) {
        event_delete(&c, &ev);
        goto cleanup; /* empty: the loader says what to write */
    }
    event_delete(&c, &ev); /* document start */
    rc = next_event(&c, &ev);
    if (rc != PS_OK) {
        goto cleanup;
    }
    rc = index_node(&c, &ev, 0, 0, &yf->root);
    if (rc != PS_OK) {
        goto cleanup;
    }
    yf->has_root = 1;
    rc = next_event(&c, &ev); /* document end */
    if (rc != PS_OK) {
        goto cleanup;
    }
    event_delete(&c, &ev);
    rc = next_event(&c, &ev);
    if (rc != PS_OK) {
        goto cleanup;
    }
    if (ev.type != YAML_STREAM_END_EVENT) {
        rc = ps_error_set_at(err, PS_ERR_CONFIG, yf->path, (int)ev.start_mark.line + 1,
                             (int)ev.start_mark.column + 1,
                             "a second YAML document starts here (keep one document per file)");
    }
    event_delete(&c, &ev);

cleanup:
    yaml_parser_delete(&c.parser);
    return rc;
}

ps_err_t ps_yaml_file_open(const char *path, size_t max_bytes, unsigned flags,
                           struct ps_yaml_file **yf_p, struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    struct ps_yaml_file *yf = calloc(1, sizeof(*yf));
    if (!yf) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory reading %s", path);
    }
    yf->flags = flags;
    yf->path = strdup(path);
    if (!yf->path) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "out of memory reading %s", path);
        goto fail;
    }
    rc = read_file(path, max_bytes, flags, &yf->buf, &yf->len, err);
    if (rc != PS_OK) {
        goto fail;
    }
    rc = index_file(yf, err);
    if (rc != PS_OK) {
        goto fail;
    }
    *yf_p = yf;
    return PS_OK;

fail:
    ps_yaml_file_destroy(yf);
    return rc;
}

ps_err_t ps_yaml_file_open_buffer(const char *name, const char *data, size_t len, unsigned flags,
                                  struct ps_yaml_file **yf_p, struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    struct ps_yaml_file *yf = calloc(1, sizeof(*yf));
    if (!yf) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory reading %s", name);
    }
    yf->flags = flags;
    yf->path = strdup(name);
    yf->buf = malloc(len + 1);
    if (!yf->path || !yf->buf) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "out of memory reading %s", name);
        goto fail;
    }
    memcpy(yf->buf, data, len);
    yf->buf[len] = '\0';
    yf->len = len;
    rc = index_file(yf, err);
    if (rc != PS_OK) {
        goto fail;
    }
    *yf_p = yf;
    return PS_OK;

fail:
    ps_yaml_file_destroy(yf);
    return rc;
}

void ps_yaml_file_destroy(struct ps_yaml_file *yf)
{
    if (!yf) {
        return;
    }
    if (yf->has_root) {
        node_free(yf, &yf->root);
    }
    if (yf->buf) {
        if (yf->flags & (PS_YAML_SECRET | PS_YAML_WIPE)) {
            ps_yaml_wipe(yf->buf, yf->len);
        }
        free(yf->buf);
    }
    free(yf->path);
    free(yf);
}

/* --------------------------------------------------------------- look-ups */

const struct ps_ynode *ps_yaml_file_root(const struct ps_yaml_file *yf)
{
    return yf && yf->has_root ? &yf->root : NULL;
}

static const struct ps_ynode *map_key_nth(const struct ps_ynode *map, const char *key,
                                          size_t nth, size_t *index_p)
{
    if (!map || map->kind != PS_YNODE_MAP || !key) {
        return NULL;
    }
    for (size_t i = 0; i < map->count; i++) {
        if (map->keys[i].text && strcmp(map->keys[i].text, key) == 0) {
            if (nth == 0) {
                if (index_p) {
                    *index_p = i;
                }
                return &map->keys[i];
            }
            nth--;
        }
    }
    return NULL;
}

const struct ps_ynode *ps_ynode_key(const struct ps_ynode *map, const char *key)
{
    return map_key_nth(map, key, 0, NULL);
}

const struct ps_ynode *ps_ynode_get(const struct ps_ynode *map, const char *key)
{
    size_t i = 0;
    if (!map_key_nth(map, key, 0, &i)) {
        return NULL;
    }
    return &map->items[i];
}

const struct ps_ynode *ps_ynode_item(const struct ps_ynode *seq, size_t i)
{
    if (!seq || seq->kind != PS_YNODE_SEQ || i >= seq->count) {
        return NULL;
    }
    return &seq->items[i];
}

ps_err_t ps_yaml_error_at(const struct ps_yaml_file *yf, const struct ps_ynode *node,
                          struct ps_error *err, const char *fmt, ...)
{
    char msg[PS_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return ps_error_set_at(err, PS_ERR_CONFIG, yf->path, node ? node->line : 0,
                           node ? node->col : 0, "%s", msg);
}

int ps_yaml_parse_uint(const char *text, uint64_t min, uint64_t max, uint64_t *value_p)
{
    uint64_t v = 0;
    if (!text || text[0] == '\0' || (text[0] == '0' && text[1] != '\0')) {
        return -1;
    }
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9') {
            return -1;
        }
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return -1;
        }
        v = v * 10 + d;
    }
    if (v < min || v > max) {
        return -1;
    }
    *value_p = v;
    return 0;
}

/* ---------------------------------------------------------- libcyaml load */

struct capture {
    char buf[CAPTURE_MAX];
    size_t len;
};

static void capture_log(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
    struct capture *cap = ctx;
    if (level < CYAML_LOG_ERROR || cap->len + 1 >= sizeof(cap->buf)) {
        return;
    }
    size_t room = sizeof(cap->buf) - cap->len;
    int n = vsnprintf(cap->buf + cap->len, room, fmt, args);
    if (n > 0) {
        cap->len += (size_t)n < room ? (size_t)n : room - 1;
    }
}

/* For secret files every allocation libcyaml makes carries its size, so that
 * it can be wiped when libcyaml frees or moves it. */
#define WIPE_HDR sizeof(max_align_t)

static void *wiping_mem(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    unsigned char *base = NULL;
    size_t old = 0;
    if (ptr) {
        base = (unsigned char *)ptr - WIPE_HDR;
        memcpy(&old, base, sizeof(old));
    }
    if (size == 0) {
        if (base) {
            ps_yaml_wipe(base, WIPE_HDR + old);
            free(base);
        }
        return NULL;
    }
    if (size > SIZE_MAX - WIPE_HDR) {
        return NULL;
    }
    unsigned char *fresh = malloc(WIPE_HDR + size);
    if (!fresh) {
        return NULL;
    }
    memcpy(fresh, &size, sizeof(size));
    if (base) {
        memcpy(fresh + WIPE_HDR, ptr, old < size ? old : size);
        ps_yaml_wipe(base, WIPE_HDR + old);
        free(base);
    }
    return fresh + WIPE_HDR;
}

static void cyaml_config_for(const struct ps_yaml_file *yf, struct capture *cap,
                             cyaml_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->log_fn = capture_log;
    cfg->log_ctx = cap;
    cfg->mem_fn = (yf->flags & (PS_YAML_SECRET | PS_YAML_WIPE)) ? wiping_mem : cyaml_mem;
    cfg->log_level = CYAML_LOG_ERROR;
    cfg->flags = CYAML_CFG_NO_ALIAS;
}

enum comp_kind { COMP_KEY, COMP_INDEX, COMP_MAPPING };

struct comp {
    enum comp_kind kind;
    char key[KEY_MAX];
    long index;                 /* 0-based; -1 when the sequence had no entry yet */
    int line, col;              /* libcyaml's, used only when the index has nothing */
};

struct failure {
    char msg[512];              /* libcyaml's message without "Load: " */
    struct comp comps[PATH_MAX_COMPS];  /* outermost first */
    size_t n;
};

/* Turns the captured log into a message and a path. libcyaml writes the
 * backtrace innermost first; sequence entries are counted from 1. */
static void parse_capture(const struct capture *cap, struct failure *f)
{
    struct comp rev[PATH_MAX_COMPS];
    char line[600];
    size_t n = 0;
    const char *p = cap->buf;
    const char *end = cap->buf + cap->len;
    memset(f, 0, sizeof(*f));
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (len >= sizeof(line)) {
            len = sizeof(line) - 1;
        }
        memcpy(line, p, len);
        line[len] = '\0';
        p += len + (nl ? 1 : 0);

        const char *s = line;
        while (*s == ' ') {
            s++;
        }
        struct comp c;
        memset(&c, 0, sizeof(c));
        if (strncmp(s, "Load: ", 6) == 0) {
            s += 6;
            if (strcmp(s, "Backtrace:") != 0 && f->msg[0] == '\0') {
                snprintf(f->msg, sizeof(f->msg), "%s", s);
            }
            continue;
        }
        if (n == PATH_MAX_COMPS) {
            continue;
        }
        if (sscanf(s, "in mapping field '%63[^']' (line: %d, column: %d)", c.key, &c.line,
                   &c.col) == 3) {
            c.kind = COMP_KEY;
        } else if (sscanf(s, "in sequence entry '%ld' (line: %d, column: %d)", &c.index,
                          &c.line, &c.col) == 3) {
            c.kind = COMP_INDEX;
            c.index -= 1;
        } else if (sscanf(s, "in mapping (line: %d, column: %d)", &c.line, &c.col) == 2) {
            c.kind = COMP_MAPPING;
        } else {
            continue;
        }
        rev[n++] = c;
    }
    for (size_t i = 0; i < n; i++) {
        f->comps[i] = rev[n - 1 - i];
    }
    f->n = n;
    /* The log of a secret file may have quoted a value. */
    ps_yaml_wipe(line, sizeof(line));
}

static const struct ps_ynode *node_at(const struct ps_yaml_file *yf, const struct comp *comps,
                                      size_t n)
{
    const struct ps_ynode *node = ps_yaml_file_root(yf);
    for (size_t i = 0; i < n && node; i++) {
        if (comps[i].kind == COMP_KEY) {
            node = ps_ynode_get(node, comps[i].key);
        } else if (comps[i].kind == COMP_INDEX) {
            node = comps[i].index < 0 ? NULL : ps_ynode_item(node, (size_t)comps[i].index);
        }
    }
    return node;
}

static const cyaml_schema_value_t *schema_at(const cyaml_schema_value_t *v,
                                             const struct comp *comps, size_t n)
{
    for (size_t i = 0; i < n && v; i++) {
        if (comps[i].kind == COMP_KEY) {
            const cyaml_schema_field_t *field = NULL;
            if (v->type != CYAML_MAPPING) {
                return NULL;
            }
            for (const cyaml_schema_field_t *fl = v->mapping.fields; fl->key; fl++) {
                if (strcmp(fl->key, comps[i].key) == 0) {
                    field = fl;
                    break;
                }
            }
            v = field ? &field->value : NULL;
        } else if (comps[i].kind == COMP_INDEX) {
            if (v->type != CYAML_SEQUENCE && v->type != CYAML_SEQUENCE_FIXED) {
                return NULL;
            }
            v = v->sequence.entry;
        }
    }
    return v;
}

static int schema_has_field(const cyaml_schema_value_t *v, const char *key)
{
    if (!v || v->type != CYAML_MAPPING) {
        return 0;
    }
    for (const cyaml_schema_field_t *fl = v->mapping.fields; fl->key; fl++) {
        if (strcmp(fl->key, key) == 0) {
            return 1;
        }
    }
    return 0;
}

static void format_path(const struct comp *comps, size_t n, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < size; i++) {
        int w = 0;
        if (comps[i].kind == COMP_KEY) {
            w = snprintf(buf + used, size - used, "%s%s", used ? "." : "", comps[i].key);
        } else if (comps[i].kind == COMP_INDEX) {
            w = snprintf(buf + used, size - used, "[%ld]", comps[i].index);
        }
        if (w > 0) {
            used += (size_t)w;
        }
    }
}

static void join_fields(const cyaml_schema_value_t *v, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    if (!v || v->type != CYAML_MAPPING) {
        return;
    }
    for (const cyaml_schema_field_t *fl = v->mapping.fields; fl->key && used < size; fl++) {
        int w = snprintf(buf + used, size - used, "%s%s", used ? ", " : "", fl->key);
        if (w > 0) {
            used += (size_t)w;
        }
    }
}

static void join_enum(const cyaml_schema_value_t *v, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    if (!v || v->type != CYAML_ENUM) {
        return;
    }
    for (uint32_t i = 0; i < v->enumeration.count && used < size; i++) {
        int w = snprintf(buf + used, size - used, "%s%s", used ? ", " : "",
                         v->enumeration.strings[i].str);
        if (w > 0) {
            used += (size_t)w;
        }
    }
}

/* A value from the file, safe to repeat in a one-line message. */
static void echo_value(const char *value, char *buf, size_t size)
{
    size_t o = 0;
    size_t i = 0;
    for (; value[i] && i < ECHO_MAX && o + 1 < size; i++) {
        unsigned char ch = (unsigned char)value[i];
        buf[o++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
    buf[o] = '\0';
    if (value[i] && o + 4 < size) {
        memcpy(buf + o, "...", 4);
    }
}

/* In a secret file a key is repeated only when it looks like a field name
 * (lower case and underscores), never like base64 text. */
static int plain_word(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        if (!((s[n] >= 'a' && s[n] <= 'z') || s[n] == '_') || n >= 24) {
            return 0;
        }
    }
    return n > 0;
}

static const char *describe_expected(const char *type)
{
    if (strcmp(type, "MAPPING") == 0) {
        return "a mapping (key: value lines)";
    }
    if (strncmp(type, "SEQUENCE", 8) == 0) {
        return "a list ('- ' items)";
    }
    return "a single value";
}

static const char *describe_got(const char *event)
{
    if (strcmp(event, "MAPPING_START") == 0) {
        return "a mapping";
    }
    if (strcmp(event, "SEQUENCE_START") == 0) {
        return "a list";
    }
    if (strcmp(event, "ALIAS") == 0) {
        return "an alias";
    }
    return "a single value";
}

static const char *hint_for(const struct ps_yaml_doc_type *type, const char *key)
{
    for (const struct ps_yaml_hint *h = type->hints; h && h->key; h++) {
        if (strcmp(h->key, key) == 0) {
            return h->fix;
        }
    }
    return NULL;
}

enum container_want { WANT_UNKNOWN, WANT_MISSING, WANT_DUPLICATE };

/* The mapping a key message is about. The innermost backtrace entry is
 * sometimes that mapping and sometimes one of its fields, so try the full path,
 * then shorter ones, and take the first whose index and schema fit. */
static size_t find_container(const struct ps_yaml_file *yf, const struct ps_yaml_doc_type *type,
                             const struct failure *f, const char *key, enum container_want want)
{
    for (size_t m = f->n + 1; m-- > 0;) {
        const struct ps_ynode *node = node_at(yf, f->comps, m);
        const cyaml_schema_value_t *v = schema_at(type->schema, f->comps, m);
        if (!node || node->kind != PS_YNODE_MAP || !v || v->type != CYAML_MAPPING) {
            continue;
        }
        int in_schema = schema_has_field(v, key);
        int in_file = map_key_nth(node, key, 0, NULL) != NULL;
        if ((want == WANT_UNKNOWN && in_file && !in_schema) ||
            (want == WANT_MISSING && in_schema && !in_file) ||
            (want == WANT_DUPLICATE && map_key_nth(node, key, 1, NULL))) {
            return m;
        }
    }
    /* Not found in the index: the innermost key entry is the field being read. */
    if (f->n > 0 && f->comps[f->n - 1].kind != COMP_INDEX) {
        return f->n - 1;
    }
    return f->n;
}

static ps_err_t report_at(const struct ps_yaml_file *yf, const struct failure *f,
                          const struct ps_ynode *node, struct ps_error *err, const char *msg)
{
    int line = 0;
    int col = 0;
    if (node) {
        line = node->line;
        col = node->col;
    } else if (f->n > 0) {
        line = f->comps[f->n - 1].line;
        col = f->comps[f->n - 1].col;
    }
    return ps_error_set_at(err, PS_ERR_CONFIG, yf->path, line, col, "%s", msg);
}

/* vsnprintf, so that a long path or list is cut short rather than warned about:
 * the message is one line of at most PS_ERROR_MSG_MAX bytes in any case. */
static void msg_set(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void msg_set(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
}

static ps_err_t translate(const struct ps_yaml_file *yf, const struct ps_yaml_doc_type *type,
                          cyaml_err_t cerr, const struct failure *f, struct ps_error *err)
{
    int secret = (yf->flags & PS_YAML_SECRET) != 0;
    char path[256];
    char list[320];
    char value[ECHO_MAX + 8];
    char msg[PS_ERROR_MSG_MAX];
    char word[KEY_MAX];
    char got[32];
    unsigned a = 0;
    unsigned b = 0;
    const char *m = f->msg;

    if (strncmp(m, "Unexpected key: ", 16) == 0) {
        const char *key = m + 16;
        size_t c = find_container(yf, type, f, key, WANT_UNKNOWN);
        const struct ps_ynode *cont = node_at(yf, f->comps, c);
        const struct ps_ynode *at = ps_ynode_key(cont, key);
        format_path(f->comps, c, path, sizeof(path));
        join_fields(schema_at(type->schema, f->comps, c), list, sizeof(list));
        if (secret && !plain_word(key)) {
            msg_set(msg, sizeof(msg), "unknown key %s%s (expected one of: %s)",
                     path[0] ? "in " : "at the top level", path, list);
        } else {
            echo_value(key, value, sizeof(value));
            msg_set(msg, sizeof(msg), "unknown key '%s' %s%s (expected one of: %s)", value,
                     path[0] ? "in " : "at the top level", path, list);
        }
        return report_at(yf, f, at ? at : cont, err, msg);
    }
    if (strncmp(m, "Missing required mapping field: ", 32) == 0) {
        const char *key = m + 32;
        size_t c = find_container(yf, type, f, key, WANT_MISSING);
        const char *fix = hint_for(type, key);
        format_path(f->comps, c, path, sizeof(path));
        if (fix) {
            msg_set(msg, sizeof(msg), "%s has no '%s' (%s)", path[0] ? path : "the file", key,
                     fix);
        } else {
            msg_set(msg, sizeof(msg), "%s has no '%s' (add %s: <value>)",
                     path[0] ? path : "the file", key, key);
        }
        return report_at(yf, f, node_at(yf, f->comps, c), err, msg);
    }
    if (strncmp(m, "Mapping field already seen: ", 28) == 0) {
        const char *key = m + 28;
        size_t c = find_container(yf, type, f, key, WANT_DUPLICATE);
        const struct ps_ynode *cont = node_at(yf, f->comps, c);
        format_path(f->comps, c, path, sizeof(path));
        msg_set(msg, sizeof(msg), "'%s' is written twice %s%s (keep only one)", key,
                 path[0] ? "in " : "at the top level", path);
        const struct ps_ynode *second = map_key_nth(cont, key, 1, NULL);
        return report_at(yf, f, second ? second : cont, err, msg);
    }
    format_path(f->comps, f->n, path, sizeof(path));
    const struct ps_ynode *at = node_at(yf, f->comps, f->n);
    if (strncmp(m, "Invalid ENUM value: ", 20) == 0) {
        const cyaml_schema_value_t *v = schema_at(type->schema, f->comps, f->n);
        snprintf(word, sizeof(word), "%s",
                 f->n > 0 && f->comps[f->n - 1].kind == COMP_KEY ? f->comps[f->n - 1].key
                                                                  : "value");
        join_enum(v, list, sizeof(list));
        if (secret) {
            msg_set(msg, sizeof(msg), "unknown %s in %s (expected one of: %s)", word, path,
                     list);
        } else {
            echo_value(m + 20, value, sizeof(value));
            msg_set(msg, sizeof(msg), "unknown %s '%s' in %s (expected one of: %s)", word, value,
                     path, list);
        }
        return report_at(yf, f, at, err, msg);
    }
    if (sscanf(m, "Expecting %31[A-Z_], got event: %31[A-Z_]", word, got) == 2) {
        msg_set(msg, sizeof(msg), "%s must be %s, not %s", path[0] ? path : "the file",
                 describe_expected(word), describe_got(got));
        return report_at(yf, f, at, err, msg);
    }
    if (sscanf(m, "Insufficient entries (%u of %u min)", &a, &b) == 2) {
        size_t c = f->n;
        while (c > 0 && f->comps[c - 1].kind == COMP_INDEX) {
            c--;
        }
        format_path(f->comps, c, path, sizeof(path));
        if (a == 0) {
            if (b == 1) {
                msg_set(msg, sizeof(msg), "%s is empty (add at least one entry)", path);
            } else {
                msg_set(msg, sizeof(msg), "%s is empty (add at least %u entries)", path, b);
            }
        } else {
            msg_set(msg, sizeof(msg), "%s has %u entries (at least %u are needed)", path, a, b);
        }
        return report_at(yf, f, node_at(yf, f->comps, c), err, msg);
    }
    if (sscanf(m, "Excessive entries (%u max)", &a) == 1) {
        size_t c = f->n;
        while (c > 0 && f->comps[c - 1].kind == COMP_INDEX) {
            c--;
        }
        format_path(f->comps, c, path, sizeof(path));
        msg_set(msg, sizeof(msg), "%s has more than %u entries (remove some)", path, a);
        return report_at(yf, f, node_at(yf, f->comps, c), err, msg);
    }
    if (sscanf(m, "STRING length < %u", &a) == 1) {
        msg_set(msg, sizeof(msg), "%s is empty (write a value)", path);
        return report_at(yf, f, at, err, msg);
    }
    if (sscanf(m, "STRING length > %u", &a) == 1) {
        msg_set(msg, sizeof(msg), "%s is longer than %u characters (shorten it)", path, a);
        return report_at(yf, f, at, err, msg);
    }
    if (cerr == CYAML_ERR_ALIAS) {
        return report_at(yf, f, at, err,
                         "anchors and aliases (&name, *name) are not allowed "
                         "(write the value out in full)");
    }
    /* Anything else: libcyaml's own words where they cannot carry a secret. */
    if (secret || m[0] == '\0') {
        msg_set(msg, sizeof(msg), "%s: %s", path[0] ? path : "the file", cyaml_strerror(cerr));
    } else {
        msg_set(msg, sizeof(msg), "%s: %s", path[0] ? path : "the file", m);
    }
    return report_at(yf, f, at, err, msg);
}

ps_err_t ps_yaml_file_load(const struct ps_yaml_file *yf, const struct ps_yaml_doc_type *type,
                           void **data_p, struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    cyaml_config_t cfg;
    void *data = NULL;
    struct capture *cap = calloc(1, sizeof(*cap));
    struct failure *f = NULL;
    if (!cap) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory loading %s", yf->path);
    }
    cyaml_config_for(yf, cap, &cfg);
    cyaml_err_t cerr = cyaml_load_data((const uint8_t *)yf->buf, yf->len, &cfg, type->schema,
                                       (cyaml_data_t **)&data, NULL);
    if (cerr == CYAML_OK && !data) {
        const struct ps_ynode *root = ps_yaml_file_root(yf);
        rc = ps_error_set_at(err, PS_ERR_CONFIG, yf->path, root ? root->line : 0,
                             root ? root->col : 0, "the file is empty (%s)", type->empty_fix);
        goto cleanup;
    }
    if (cerr == CYAML_ERR_OOM) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "out of memory loading %s", yf->path);
        goto cleanup;
    }
    if (cerr != CYAML_OK) {
        f = calloc(1, sizeof(*f));
        if (!f) {
            rc = ps_error_set(err, PS_ERR_NOMEM, "out of memory loading %s", yf->path);
            goto cleanup;
        }
        parse_capture(cap, f);
        /* The index pass parsed these same bytes, so libyaml failing now
         * (with no problem text) is libyaml running out of memory. */
        if (cerr == CYAML_ERR_LIBYAML_PARSER_INIT || cerr == CYAML_ERR_LIBYAML_EVENT_INIT ||
            (cerr == CYAML_ERR_LIBYAML_PARSER &&
             (f->msg[0] == '\0' || strcmp(f->msg, "libyaml: (null)") == 0))) {
            rc = ps_error_set(err, PS_ERR_NOMEM, "out of memory loading %s", yf->path);
            goto cleanup;
        }
        rc = translate(yf, type, cerr, f, err);
        goto cleanup;
    }
    *data_p = data;

cleanup:
    if (f) {
        ps_yaml_wipe(f, sizeof(*f));
        free(f);
    }
    ps_yaml_wipe(cap, sizeof(*cap));
    free(cap);
    return rc;
}

void ps_yaml_file_free_data(const struct ps_yaml_file *yf, const struct ps_yaml_doc_type *type,
                            void *data)
{
    struct capture cap = {.len = 0};
    cyaml_config_t cfg;
    if (!data) {
        return;
    }
    cyaml_config_for(yf, &cap, &cfg);
    cyaml_free(&cfg, type->schema, data, 0);
}
