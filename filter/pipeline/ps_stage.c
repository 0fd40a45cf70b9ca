#include "ps_stage.h"

#include <stdlib.h>
#include <string.h>

#include "ps_buf.h"

/* A piece of the arena: offsets, because the arena moves as it grows. NULL
 * is kept apart from empty (a null header value, a record without key). */
struct span {
    size_t off;
    size_t len;
    int null;
};

struct staged_header {
    struct span name;
    struct span value;
};

struct staged {
    struct span topic;
    struct span key;
    struct span value;
    size_t first_header; /* index into headers */
    size_t header_count;
};

/* Three growable buffers (ps_buf): the bytes, and the two tables as arrays
 * of structs (realloc'd memory is aligned for them). */
struct ps_stage {
    struct ps_buf arena;
    struct ps_buf records; /* struct staged[] */
    struct ps_buf headers; /* struct staged_header[] */
};

static const struct staged *records_at(const struct ps_stage *s)
{
    return (const struct staged *)(const void *)s->records.data;
}

static const struct staged_header *headers_at(const struct ps_stage *s)
{
    return (const struct staged_header *)(const void *)s->headers.data;
}

ps_err_t ps_stage_new(struct ps_stage **stage_p, struct ps_error *err)
{
    struct ps_stage *s = calloc(1, sizeof(*s));
    if (!s) {
        return ps_error_set(err, PS_ERR_NOMEM, "stage: out of memory");
    }
    ps_buf_init(&s->arena, 0);
    ps_buf_init(&s->records, 0);
    ps_buf_init(&s->headers, 0);
    *stage_p = s;
    return PS_OK;
}

void ps_stage_destroy(struct ps_stage *s)
{
    if (!s) {
        return;
    }
    ps_buf_free(&s->arena);
    ps_buf_free(&s->records);
    ps_buf_free(&s->headers);
    free(s);
}

void ps_stage_reset(struct ps_stage *s)
{
    ps_buf_reset(&s->arena);
    ps_buf_reset(&s->records);
    ps_buf_reset(&s->headers);
}

size_t ps_stage_count(const struct ps_stage *s)
{
    return s ? s->records.len / sizeof(struct staged) : 0;
}

size_t ps_stage_bytes(const struct ps_stage *s)
{
    return s ? s->arena.len + s->records.len + s->headers.len : 0;
}

static ps_err_t put(struct ps_stage *s, const void *data, size_t len, struct span *out)
{
    out->off = s->arena.len;
    out->len = data ? len : 0;
    out->null = data == NULL;
    return out->len ? ps_buf_append(&s->arena, data, out->len) : PS_OK;
}

static const void *at(const struct ps_stage *s, const struct span *sp)
{
    if (sp->null) {
        return NULL;
    }
    /* An empty span still needs a non-NULL pointer: "" for an empty string. */
    return sp->len ? (const void *)(s->arena.data + sp->off) : (const void *)"";
}

ps_err_t ps_stage_add(struct ps_stage *s, const char *topic, const void *key, size_t key_len,
                      const void *value, size_t len, const struct ps_kafka_header *headers,
                      size_t header_count, struct ps_error *err)
{
    if (!s || !topic || header_count > PS_STAGE_HEADERS_MAX || (header_count && !headers)) {
        return ps_error_set(err, PS_ERR_INVALID, "stage: bad record");
    }
    size_t arena_before = s->arena.len;
    size_t headers_before = s->headers.len;
    struct staged r = {.first_header = headers_before / sizeof(struct staged_header),
                       .header_count = header_count};
    ps_err_t rc = put(s, topic, strlen(topic) + 1, &r.topic);
    if (rc == PS_OK) {
        rc = put(s, key, key_len, &r.key);
    }
    if (rc == PS_OK) {
        rc = put(s, value, len, &r.value);
    }
    for (size_t i = 0; rc == PS_OK && i < header_count; i++) {
        struct staged_header h;
        if (!headers[i].name) {
            rc = ps_error_set(err, PS_ERR_INVALID, "stage: header %zu has no name", i);
            break;
        }
        rc = put(s, headers[i].name, strlen(headers[i].name) + 1, &h.name);
        if (rc == PS_OK) {
            rc = put(s, headers[i].value, headers[i].len, &h.value);
        }
        if (rc == PS_OK) {
            rc = ps_buf_append(&s->headers, &h, sizeof(h));
        }
    }
    if (rc == PS_OK) {
        rc = ps_buf_append(&s->records, &r, sizeof(r));
    }
    if (rc != PS_OK) {
        s->arena.len = arena_before;
        s->headers.len = headers_before;
        return rc == PS_ERR_INVALID ? rc
                                    : ps_error_set(err, rc, "stage: out of memory for a record");
    }
    return PS_OK;
}

ps_err_t ps_stage_send(const struct ps_stage *s, struct ps_kafka_producer *producer,
                       struct ps_error *err)
{
    struct ps_kafka_header h[PS_STAGE_HEADERS_MAX];
    size_t count = ps_stage_count(s);
    for (size_t i = 0; i < count; i++) {
        const struct staged *r = &records_at(s)[i];
        for (size_t j = 0; j < r->header_count; j++) {
            const struct staged_header *sh = &headers_at(s)[r->first_header + j];
            h[j].name = at(s, &sh->name);
            h[j].value = at(s, &sh->value);
            h[j].len = sh->value.len;
        }
        ps_err_t rc = ps_kafka_producer_send(producer, at(s, &r->topic), -1, at(s, &r->key),
                                             r->key.len, at(s, &r->value), r->value.len, h,
                                             r->header_count, err);
        if (rc != PS_OK) {
            return rc;
        }
    }
    return PS_OK;
}
