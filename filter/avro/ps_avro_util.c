/*
 * ps_avro_util: the pieces the Avro layer's modules share: Avro C's counting
 * allocator, a small binary encoder that writes what avro_value_write writes,
 * and leaf values as ps_scalar.
 */
#include "ps_avro_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/*
 * Avro C's allocator is process-wide, so the budget is per thread: only the
 * thread inside ps_decoder_decode counts, everything else passes through.
 */
struct alloc_budget {
    int active;
    int refused;
    size_t cap;
    size_t used;
};

static _Thread_local struct alloc_budget alloc_budget;
static pthread_once_t alloc_once = PTHREAD_ONCE_INIT;

static void *avro_util_alloc(void *user_data, void *ptr, size_t osize, size_t nsize)
{
    (void)user_data;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    struct alloc_budget *b = &alloc_budget;
    if (b->active && nsize > osize) {
        size_t grow = nsize - osize;
        if (nsize > b->cap || grow > b->cap - b->used) {
            b->refused = 1;
            return NULL;
        }
        b->used += grow;
    }
    return realloc(ptr, nsize);
}

static void avro_util_install_once(void)
{
    avro_set_allocator(avro_util_alloc, NULL);
}

void ps_avro_allocator_install(void)
{
    pthread_once(&alloc_once, avro_util_install_once);
}

void ps_avro_allocator_begin(size_t cap)
{
    alloc_budget.active = 1;
    alloc_budget.refused = 0;
    alloc_budget.cap = cap;
    alloc_budget.used = 0;
}

int ps_avro_allocator_end(void)
{
    alloc_budget.active = 0;
    return alloc_budget.refused;
}

const char *ps_avro_node_label(const struct ps_schema *schema, int node)
{
    if (node <= 0 || (size_t)node >= schema->count) {
        return "(root)";
    }
    return schema->nodes[node].path;
}

ps_err_t ps_avro_write_long(struct ps_buf *out, int64_t v)
{
    if (out->cap - out->len < 10) {
        ps_err_t rc = ps_buf_reserve(out, 10);
        if (rc != PS_OK) {
            return rc;
        }
    }
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    uint8_t *p = out->data + out->len;
    while (z > 0x7f) {
        *p++ = (uint8_t)((z & 0x7f) | 0x80);
        z >>= 7;
    }
    *p++ = (uint8_t)z;
    out->len = (size_t)(p - out->data);
    return PS_OK;
}

ps_err_t ps_avro_write_bytes(struct ps_buf *out, const void *data, size_t len)
{
    ps_err_t rc = ps_avro_write_long(out, (int64_t)len);
    return rc == PS_OK ? ps_buf_append(out, data, len) : rc;
}

static ps_err_t avro_util_write_le(struct ps_buf *out, uint64_t bits, size_t n)
{
    uint8_t b[8];
    for (size_t i = 0; i < n; i++) {
        b[i] = (uint8_t)(bits >> (8 * i));
    }
    return ps_buf_append(out, b, n);
}

ps_err_t ps_avro_write_float(struct ps_buf *out, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof(bits));
    return avro_util_write_le(out, bits, 4);
}

ps_err_t ps_avro_write_double(struct ps_buf *out, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    return avro_util_write_le(out, bits, 8);
}

/* Arrays and maps as Avro C writes them: one block of all items, then 0. */
static ps_err_t avro_util_write_container(struct ps_buf *out, avro_value_t *value, int is_map)
{
    size_t count = 0;
    if (avro_value_get_size(value, &count) != 0) {
        return PS_ERR_DECODE;
    }
    ps_err_t rc = PS_OK;
    if (count > 0) {
        rc = ps_avro_write_long(out, (int64_t)count);
    }
    for (size_t i = 0; rc == PS_OK && i < count; i++) {
        avro_value_t child;
        const char *key = NULL;
        if (avro_value_get_by_index(value, i, &child, &key) != 0) {
            return PS_ERR_DECODE;
        }
        if (is_map) {
            rc = ps_avro_write_bytes(out, key, strlen(key));
        }
        if (rc == PS_OK) {
            rc = ps_avro_write_value(out, &child);
        }
    }
    return rc == PS_OK ? ps_avro_write_long(out, 0) : rc;
}

static ps_err_t avro_util_write_compound(struct ps_buf *out, avro_value_t *value,
                                         avro_type_t type)
{
    if (type == AVRO_ARRAY || type == AVRO_MAP) {
        return avro_util_write_container(out, value, type == AVRO_MAP);
    }
    if (type == AVRO_UNION) {
        int disc = 0;
        avro_value_t branch;
        if (avro_value_get_discriminant(value, &disc) != 0 ||
            avro_value_get_current_branch(value, &branch) != 0) {
            return PS_ERR_DECODE;
        }
        ps_err_t rc = ps_avro_write_long(out, disc);
        return rc == PS_OK ? ps_avro_write_value(out, &branch) : rc;
    }
    size_t count = 0;
    if (avro_value_get_size(value, &count) != 0) {
        return PS_ERR_DECODE;
    }
    for (size_t i = 0; i < count; i++) {
        avro_value_t field;
        if (avro_value_get_by_index(value, i, &field, NULL) != 0) {
            return PS_ERR_DECODE;
        }
        ps_err_t rc = ps_avro_write_value(out, &field);
        if (rc != PS_OK) {
            return rc;
        }
    }
    return PS_OK;
}

ps_err_t ps_avro_write_value(struct ps_buf *out, avro_value_t *value)
{
    avro_type_t type = avro_value_get_type(value);
    const void *data = NULL;
    size_t size = 0;
    switch (type) {
    case AVRO_NULL:
        return PS_OK;
    case AVRO_BOOLEAN: {
        int b = 0;
        avro_value_get_boolean(value, &b);
        uint8_t byte = b ? 1 : 0;
        return ps_buf_append(out, &byte, 1);
    }
    case AVRO_INT32: {
        int32_t i = 0;
        avro_value_get_int(value, &i);
        return ps_avro_write_long(out, i);
    }
    case AVRO_INT64: {
        int64_t l = 0;
        avro_value_get_long(value, &l);
        return ps_avro_write_long(out, l);
    }
    case AVRO_FLOAT: {
        float f = 0;
        avro_value_get_float(value, &f);
        return ps_avro_write_float(out, f);
    }
    case AVRO_DOUBLE: {
        double d = 0;
        avro_value_get_double(value, &d);
        return ps_avro_write_double(out, d);
    }
    case AVRO_STRING: {
        const char *s = NULL;
        avro_value_get_string(value, &s, &size);
        /* Avro C counts the NUL it keeps after every string. */
        return ps_avro_write_bytes(out, s, size ? size - 1 : 0);
    }
    case AVRO_BYTES:
        avro_value_get_bytes(value, &data, &size);
        return ps_avro_write_bytes(out, data, size);
    case AVRO_FIXED:
        avro_value_get_fixed(value, &data, &size);
        return ps_buf_append(out, data, size);
    case AVRO_ENUM: {
        int e = 0;
        avro_value_get_enum(value, &e);
        return ps_avro_write_long(out, e);
    }
    case AVRO_RECORD:
    case AVRO_ARRAY:
    case AVRO_MAP:
    case AVRO_UNION:
        return avro_util_write_compound(out, value, type);
    default:
        return PS_ERR_DECODE;
    }
}

int ps_avro_value_to_scalar(avro_value_t *value, struct ps_scalar *scalar_p)
{
    struct ps_scalar sc = {0};
    const void *data = NULL;
    size_t size = 0;
    int rc = 0;
    switch (avro_value_get_type(value)) {
    case AVRO_BOOLEAN: {
        int b = 0;
        rc = avro_value_get_boolean(value, &b);
        sc.kind = PS_SCALAR_BOOL;
        sc.i = b ? 1 : 0;
        break;
    }
    case AVRO_INT32: {
        int32_t i = 0;
        rc = avro_value_get_int(value, &i);
        sc.kind = PS_SCALAR_INT;
        sc.i = i;
        break;
    }
    case AVRO_INT64:
        rc = avro_value_get_long(value, &sc.i);
        sc.kind = PS_SCALAR_INT;
        break;
    case AVRO_FLOAT: {
        float f = 0;
        rc = avro_value_get_float(value, &f);
        sc.kind = PS_SCALAR_DOUBLE;
        sc.d = f;
        break;
    }
    case AVRO_DOUBLE:
        rc = avro_value_get_double(value, &sc.d);
        sc.kind = PS_SCALAR_DOUBLE;
        break;
    case AVRO_STRING: {
        const char *s = NULL;
        rc = avro_value_get_string(value, &s, &size);
        sc.kind = PS_SCALAR_STRING;
        sc.s = s ? s : "";
        sc.len = size ? size - 1 : 0;
        break;
    }
    case AVRO_BYTES:
    case AVRO_FIXED:
        rc = avro_value_get_type(value) == AVRO_BYTES
                 ? avro_value_get_bytes(value, &data, &size)
                 : avro_value_get_fixed(value, &data, &size);
        sc.kind = PS_SCALAR_STRING;
        sc.s = data ? (const char *)data : "";
        sc.len = size;
        break;
    case AVRO_ENUM: {
        int e = 0;
        rc = avro_value_get_enum(value, &e);
        const char *sym = rc == 0 ? avro_schema_enum_get(avro_value_get_schema(value), e) : NULL;
        sc.kind = sym ? PS_SCALAR_STRING : PS_SCALAR_NULL;
        sc.s = sym;
        sc.len = sym ? strlen(sym) : 0;
        break;
    }
    case AVRO_UNION: {
        avro_value_t branch;
        rc = avro_value_get_current_branch(value, &branch);
        if (rc == 0) {
            return ps_avro_value_to_scalar(&branch, scalar_p);
        }
        break;
    }
    default:
        break; /* null, and compound values inside opaque unions */
    }
    if (rc != 0) {
        return rc;
    }
    *scalar_p = sc;
    return 0;
}
