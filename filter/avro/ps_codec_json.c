/*
 * ps_codec_json: the readable JSON form of events, both ways.
 *
 * Both directions walk the Avro C schema (so opaque unions are covered) with
 * the node of our tree alongside where there is one: the node gives the
 * logical type (dates and timestamps as text) and tells a nullable field from
 * an opaque union. JSON to datum writes the binary directly with the encoder
 * the projection uses; it is not on the hot path.
 */
#include "ps_avro_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ps_time.h"

#define PS_MS_PER_DAY 86400000LL

static int codec_json_child(const struct ps_schema *schema, int node, size_t i)
{
    if (node < 0 || (int)i >= schema->nodes[node].child_count) {
        return -1;
    }
    return schema->ext[node].children[i];
}

/* Bytes as ISO-8859-1 code points, in UTF-8. */
static json_t *codec_json_latin1(const uint8_t *data, size_t len)
{
    char *text = malloc(len * 2 + 1);
    if (!text) {
        return NULL;
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (data[i] < 0x80) {
            text[n++] = (char)data[i];
        } else {
            text[n++] = (char)(0xc0 | (data[i] >> 6));
            text[n++] = (char)(0x80 | (data[i] & 0x3f));
        }
    }
    json_t *j = json_stringn(text, n);
    free(text);
    return j;
}

static json_t *codec_json_from_value(const struct ps_schema *schema, int node,
                                     avro_value_t *value, int depth);

static json_t *codec_json_from_compound(const struct ps_schema *schema, int node,
                                        avro_value_t *value, avro_type_t type, int depth)
{
    size_t count = 0;
    avro_value_get_size(value, &count);
    json_t *j = type == AVRO_ARRAY ? json_array() : json_object();
    for (size_t i = 0; j && i < count; i++) {
        avro_value_t child;
        const char *key = NULL;
        if (avro_value_get_by_index(value, i, &child, &key) != 0) {
            json_decref(j);
            return NULL;
        }
        int cn = type == AVRO_RECORD ? codec_json_child(schema, node, i)
                                     : (node >= 0 ? schema->nodes[node].first_child : -1);
        json_t *cj = codec_json_from_value(schema, cn, &child, depth + 1);
        int rc = -1;
        if (cj && type == AVRO_ARRAY) {
            rc = json_array_append_new(j, cj);
        } else if (cj) {
            rc = json_object_set_new(j, key, cj);
        }
        if (rc != 0) {
            json_decref(j);
            return NULL;
        }
    }
    return j;
}

static json_t *codec_json_from_number(const struct ps_schema_node *n, avro_value_t *value,
                                      avro_type_t type)
{
    char text[40];
    if (type == AVRO_INT32) {
        int32_t i = 0;
        avro_value_get_int(value, &i);
        if (n && n->logical == PS_LOGICAL_DATE) {
            ps_time_format_date(i, text, sizeof(text));
            return json_string(text);
        }
        return json_integer(i);
    }
    if (type == AVRO_INT64) {
        int64_t l = 0;
        avro_value_get_long(value, &l);
        if (n && n->logical == PS_LOGICAL_TIMESTAMP_MILLIS) {
            ps_time_format_iso(l, text, sizeof(text));
            return json_string(text);
        }
        return json_integer(l);
    }
    double d = 0;
    if (type == AVRO_FLOAT) {
        float f = 0;
        avro_value_get_float(value, &f);
        d = f;
    } else {
        avro_value_get_double(value, &d);
    }
    /* JSON has no NaN or infinity. */
    return isfinite(d) ? json_real(d) : json_null();
}

static json_t *codec_json_from_value(const struct ps_schema *schema, int node,
                                     avro_value_t *value, int depth)
{
    const struct ps_schema_node *n = node >= 0 ? &schema->nodes[node] : NULL;
    avro_type_t type = avro_value_get_type(value);
    const void *data = NULL;
    size_t size = 0;
    if (depth > 256) {
        return NULL;
    }
    switch (type) {
    case AVRO_NULL:
        return json_null();
    case AVRO_BOOLEAN: {
        int b = 0;
        avro_value_get_boolean(value, &b);
        return json_boolean(b);
    }
    case AVRO_INT32:
    case AVRO_INT64:
    case AVRO_FLOAT:
    case AVRO_DOUBLE:
        return codec_json_from_number(n, value, type);
    case AVRO_STRING: {
        const char *s = NULL;
        avro_value_get_string(value, &s, &size);
        return json_stringn(s ? s : "", size ? size - 1 : 0);
    }
    case AVRO_BYTES:
    case AVRO_FIXED:
        if (type == AVRO_BYTES) {
            avro_value_get_bytes(value, &data, &size);
        } else {
            avro_value_get_fixed(value, &data, &size);
        }
        return codec_json_latin1(data, size);
    case AVRO_ENUM: {
        int e = 0;
        avro_value_get_enum(value, &e);
        const char *sym = avro_schema_enum_get(avro_value_get_schema(value), e);
        return sym ? json_string(sym) : NULL;
    }
    case AVRO_UNION: {
        avro_value_t branch;
        if (avro_value_get_current_branch(value, &branch) != 0) {
            return NULL;
        }
        /* A nullable node keeps its node; an opaque union's branch has none. */
        return codec_json_from_value(schema, n && n->nullable ? node : -1, &branch, depth);
    }
    case AVRO_RECORD:
    case AVRO_ARRAY:
    case AVRO_MAP:
        return codec_json_from_compound(schema, node, value, type, depth);
    default:
        return NULL;
    }
}

ps_err_t ps_event_to_json(const struct ps_event *ev, struct ps_buf *out, struct ps_error *err)
{
    avro_value_t *value = ps_event_avro(ev);
    if (!value) {
        return ps_error_set(err, PS_ERR_DECODE, "Avro C refused the datum");
    }
    avro_value_t root = *value;
    json_t *j = codec_json_from_value(ev->schema, 0, &root, 0);
    if (!j) {
        /* jansson refuses strings that are not UTF-8; so do we. */
        return ps_error_set(err, PS_ERR_DECODE,
                            "the event cannot be shown as JSON (a string is not UTF-8)");
    }
    char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (!text) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory writing JSON");
    }
    /* A NUL is kept after the text (not counted) so callers may print it. */
    ps_err_t rc = ps_buf_append(out, text, strlen(text) + 1);
    free(text);
    if (rc == PS_OK) {
        out->len--;
    } else {
        return ps_error_set(err, rc, "the JSON form does not fit the output buffer");
    }
    return PS_OK;
}

/* ---- JSON to datum ------------------------------------------------------ */

struct encode_ctx {
    const struct ps_schema *schema;
    struct ps_buf *out;
    struct ps_error *err;
};

static ps_err_t codec_enc_fail(struct encode_ctx *ec, int at, const char *what)
{
    return ps_error_set(ec->err, PS_ERR_DECODE, "field '%s': %s",
                        ps_avro_node_label(ec->schema, at), what);
}

static ps_err_t codec_enc_value(struct encode_ctx *ec, avro_schema_t s, int node, int at,
                                json_t *j);

/* UTF-8 text whose code points are all below 256, as bytes. */
static ps_err_t codec_enc_latin1(struct encode_ctx *ec, int at, json_t *j, size_t fixed,
                                 int is_fixed)
{
    if (!json_is_string(j)) {
        return codec_enc_fail(ec, at, "expected a string");
    }
    const uint8_t *s = (const uint8_t *)json_string_value(j);
    size_t len = json_string_length(j);
    size_t count = 0;
    for (size_t i = 0; i < len; i++) {
        count += (s[i] & 0xc0) != 0x80;
        if (s[i] > 0xc3) {
            return codec_enc_fail(ec, at, "bytes text has a code point above U+00FF");
        }
    }
    if (is_fixed && count != fixed) {
        return codec_enc_fail(ec, at, "fixed value of the wrong size");
    }
    ps_err_t rc = is_fixed ? PS_OK : ps_avro_write_long(ec->out, (int64_t)count);
    for (size_t i = 0; rc == PS_OK && i < len; i++) {
        uint8_t b = s[i];
        if (b >= 0xc0) {
            b = (uint8_t)(((b & 0x03) << 6) | (s[++i] & 0x3f));
        }
        rc = ps_buf_append(ec->out, &b, 1);
    }
    return rc;
}

static int codec_enc_matches(avro_schema_t s, json_t *j)
{
    if (is_avro_link(s)) {
        s = avro_schema_link_target(s);
    }
    switch (avro_typeof(s)) {
    case AVRO_NULL:
        return json_is_null(j);
    case AVRO_BOOLEAN:
        return json_is_boolean(j);
    case AVRO_INT32:
    case AVRO_INT64:
        return json_is_integer(j);
    case AVRO_FLOAT:
    case AVRO_DOUBLE:
        return json_is_number(j);
    case AVRO_STRING:
    case AVRO_BYTES:
    case AVRO_FIXED:
    case AVRO_ENUM:
        return json_is_string(j);
    case AVRO_RECORD:
    case AVRO_MAP:
        return json_is_object(j);
    case AVRO_ARRAY:
        return json_is_array(j);
    default:
        return 0;
    }
}

static ps_err_t codec_enc_union(struct encode_ctx *ec, avro_schema_t s, int node, int at,
                                json_t *j)
{
    const struct ps_schema_node *n = node >= 0 ? &ec->schema->nodes[node] : NULL;
    if (n && n->nullable) {
        int null_branch = ec->schema->ext[node].null_branch;
        if (!j || json_is_null(j)) {
            return ps_avro_write_long(ec->out, null_branch);
        }
        ps_err_t rc = ps_avro_write_long(ec->out, 1 - null_branch);
        return rc == PS_OK ? codec_enc_value(ec, avro_schema_union_branch(s, 1 - null_branch),
                                             node, at, j)
                           : rc;
    }
    /* Opaque union: the first branch whose kind fits the JSON value. */
    size_t n_branches = avro_schema_union_size(s);
    for (size_t i = 0; i < n_branches; i++) {
        avro_schema_t b = avro_schema_union_branch(s, (int)i);
        if (!codec_enc_matches(b, j ? j : json_null())) {
            continue;
        }
        size_t mark = ec->out->len;
        ps_err_t rc = ps_avro_write_long(ec->out, (int64_t)i);
        rc = rc == PS_OK ? codec_enc_value(ec, b, -1, at, j ? j : json_null()) : rc;
        if (rc == PS_OK) {
            return PS_OK;
        }
        ec->out->len = mark;
    }
    return codec_enc_fail(ec, at, "value fits no branch of the union");
}

static ps_err_t codec_enc_record(struct encode_ctx *ec, avro_schema_t s, int node, int at,
                                 json_t *j)
{
    if (!json_is_object(j)) {
        return codec_enc_fail(ec, at, j ? "expected an object" : "missing required field");
    }
    size_t n = avro_schema_record_size(s);
    if (json_object_size(j) > n) {
        return codec_enc_fail(ec, at, "an object has a member that is not in the schema");
    }
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        int child = codec_json_child(ec->schema, node, i);
        json_t *fj = json_object_get(j, avro_schema_record_field_name(s, (int)i));
        found += fj != NULL;
        ps_err_t rc = codec_enc_value(ec, avro_schema_record_field_get_by_index(s, (int)i),
                                      child, child >= 0 ? child : at, fj);
        if (rc != PS_OK) {
            return rc;
        }
    }
    if (found != json_object_size(j)) {
        return codec_enc_fail(ec, at, "an object has a member that is not in the schema");
    }
    return PS_OK;
}

static ps_err_t codec_enc_container(struct encode_ctx *ec, avro_schema_t s, int node, int at,
                                    json_t *j)
{
    int is_map = avro_typeof(s) == AVRO_MAP;
    int child = node >= 0 ? ec->schema->nodes[node].first_child : -1;
    avro_schema_t item = is_map ? avro_schema_map_values(s) : avro_schema_array_items(s);
    if (!j) {
        return ps_avro_write_long(ec->out, 0);
    }
    if (is_map ? !json_is_object(j) : !json_is_array(j)) {
        return codec_enc_fail(ec, at, is_map ? "expected an object" : "expected an array");
    }
    size_t count = is_map ? json_object_size(j) : json_array_size(j);
    ps_err_t rc = count ? ps_avro_write_long(ec->out, (int64_t)count) : PS_OK;
    if (is_map) {
        const char *key;
        json_t *v;
        json_object_foreach(j, key, v) {
            rc = rc == PS_OK ? ps_avro_write_bytes(ec->out, key, strlen(key)) : rc;
            rc = rc == PS_OK ? codec_enc_value(ec, item, child, child >= 0 ? child : at, v) : rc;
        }
    } else {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) {
            rc = rc == PS_OK ? codec_enc_value(ec, item, child, child >= 0 ? child : at, v) : rc;
        }
    }
    return rc == PS_OK ? ps_avro_write_long(ec->out, 0) : rc;
}

static ps_err_t codec_enc_integer(struct encode_ctx *ec, avro_type_t type, int node, int at,
                                  json_t *j)
{
    enum ps_logical logical = node >= 0 ? ec->schema->nodes[node].logical : PS_LOGICAL_NONE;
    int64_t v = 0;
    if (json_is_string(j) &&
        (logical == PS_LOGICAL_DATE || logical == PS_LOGICAL_TIMESTAMP_MILLIS)) {
        int64_t ms = 0;
        if (ps_time_parse_iso(json_string_value(j), &ms) != PS_OK) {
            return codec_enc_fail(ec, at, "not a valid date or instant");
        }
        if (logical == PS_LOGICAL_DATE) {
            if (ms % PS_MS_PER_DAY != 0) {
                return codec_enc_fail(ec, at, "a date has a time of day");
            }
            v = ms / PS_MS_PER_DAY;
        } else {
            v = ms;
        }
    } else if (json_is_integer(j)) {
        v = json_integer_value(j);
    } else {
        return codec_enc_fail(ec, at, j ? "expected an integer" : "missing required field");
    }
    if (type == AVRO_INT32 && (v < INT32_MIN || v > INT32_MAX)) {
        return codec_enc_fail(ec, at, "int out of range");
    }
    return ps_avro_write_long(ec->out, v);
}

static ps_err_t codec_enc_scalar(struct encode_ctx *ec, avro_schema_t s, int at, json_t *j)
{
    switch (avro_typeof(s)) {
    case AVRO_NULL:
        return !j || json_is_null(j) ? PS_OK : codec_enc_fail(ec, at, "expected null");
    case AVRO_BOOLEAN: {
        if (!json_is_boolean(j)) {
            return codec_enc_fail(ec, at, j ? "expected a boolean" : "missing required field");
        }
        uint8_t b = json_is_true(j) ? 1 : 0;
        return ps_buf_append(ec->out, &b, 1);
    }
    case AVRO_FLOAT:
    case AVRO_DOUBLE:
        if (!json_is_number(j)) {
            return codec_enc_fail(ec, at, j ? "expected a number" : "missing required field");
        }
        return avro_typeof(s) == AVRO_FLOAT
                   ? ps_avro_write_float(ec->out, (float)json_number_value(j))
                   : ps_avro_write_double(ec->out, json_number_value(j));
    case AVRO_STRING:
        if (!json_is_string(j)) {
            return codec_enc_fail(ec, at, j ? "expected a string" : "missing required field");
        }
        return ps_avro_write_bytes(ec->out, json_string_value(j), json_string_length(j));
    case AVRO_ENUM: {
        int index = json_is_string(j) ? avro_schema_enum_get_by_name(s, json_string_value(j))
                                      : -1;
        if (index < 0) {
            return codec_enc_fail(ec, at, "not a symbol of the enum");
        }
        return ps_avro_write_long(ec->out, index);
    }
    case AVRO_BYTES:
        return codec_enc_latin1(ec, at, j, 0, 0);
    case AVRO_FIXED:
        return codec_enc_latin1(ec, at, j, (size_t)avro_schema_fixed_size(s), 1);
    default:
        return codec_enc_fail(ec, at, "unsupported Avro type");
    }
}

static ps_err_t codec_enc_value(struct encode_ctx *ec, avro_schema_t s, int node, int at,
                                json_t *j)
{
    if (is_avro_link(s)) {
        s = avro_schema_link_target(s);
    }
    switch (avro_typeof(s)) {
    case AVRO_UNION:
        return codec_enc_union(ec, s, node, at, j);
    case AVRO_RECORD:
        return codec_enc_record(ec, s, node, at, j);
    case AVRO_ARRAY:
    case AVRO_MAP:
        return codec_enc_container(ec, s, node, at, j);
    case AVRO_INT32:
    case AVRO_INT64:
        return codec_enc_integer(ec, avro_typeof(s), node, at, j);
    default:
        return codec_enc_scalar(ec, s, at, j);
    }
}

ps_err_t ps_codec_json_to_datum(const struct ps_schema *schema, const char *json, size_t len,
                                struct ps_buf *out, struct ps_error *err)
{
    json_error_t jerr;
    json_t *j = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!j) {
        /* jansson's text can quote the offending token, which may be data. */
        return ps_error_set(err, PS_ERR_DECODE, "invalid JSON at line %d, column %d",
                            jerr.line, jerr.column);
    }
    size_t mark = out->len;
    struct encode_ctx ec = {.schema = schema, .out = out, .err = err};
    ps_err_t rc = codec_enc_value(&ec, schema->avro, 0, 0, j);
    json_decref(j);
    if (rc != PS_OK) {
        out->len = mark;
        if (rc == PS_ERR_LIMIT || rc == PS_ERR_NOMEM) {
            ps_error_set(err, rc, "the datum does not fit the output buffer");
        }
    }
    return rc;
}
