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

struct ps_stage {
    struct ps_buf arena;
    struct staged *records;
    size_t count;
    size_t cap;
    struct staged_header *headers;
    size_t header_len;
    size_t header_cap;
};

ps_err_t ps_stage_new(struct ps_stage **stage_p, struct ps_error *err)
{
    struct ps_stage *s = calloc(1, sizeof(*s));
    if (!s) {
        return ps_error_set(err, PS_ERR_NOMEM, "stage: out of memory");
    }
    ps_buf_init(&s->arena, 0);
    *stage_p = s;
    return PS_OK;
}

void ps_stage_destroy(struct ps_stage *s)
{
    if (!s) {
        return;
    }
    ps_buf_free(&s->arena);
    free(s->records);
    free(s->headers);
    free(s);
}

void ps_stage_reset(struct ps_stage *s)
{
    ps_buf_reset(&s->arena);
    s->count = 0;
    s->header_len = 0;
}

size_t ps_stage_count(const struct ps_stage *s)
{
    return s ? s->count : 0;
}

size_t ps_stage_bytes(const struct ps_stage *s)
{
    return s ? s->arena.len + s->count * sizeof(struct staged) +
                   s->header_len * sizeof(struct staged_header)
             : 0;
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

static int grow(void **items, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) {
        return 1;
    }
    size_t n = *cap ? *cap : 1024;
    while (n < need) {
        n *= 2;
    }
    void *p = realloc(*items, n * size);
    if (!p) {
        return 0;
    }
    *items = p;
    *cap = n;
    return 1;
}

ps_err_t ps_stage_add(struct ps_stage *s, const char *topic, const void *key, size_t key_len,
                      const void *value, size_t len, const struct ps_kafka_header *headers,
                      size_t header_count, struct ps_error *err)
{
    if (!s || !topic || header_count > PS_STAGE_HEADERS_MAX || (header_count && !headers)) {
        return ps_error_set(err, PS_ERR_INVALID, "stage: bad record");
    }
    if (!grow((void **)&s->records, &s->cap, s->count + 1, sizeof(*s->records)) ||
        !grow((void **)&s->headers, &s->header_cap, s->header_len + header_count,
              sizeof(*s->headers))) {
        return ps_error_set(err, PS_ERR_NOMEM, "stage: out of memory");
    }
    size_t arena_before = s->arena.len;
    struct staged *r = &s->records[s->count];
    r->first_header = s->header_len;
    r->header_count = header_count;
    ps_err_t rc = put(s, topic, strlen(topic) + 1, &r->topic);
    if (rc == PS_OK) {
        rc = put(s, key, key_len, &r->key);
    }
    if (rc == PS_OK) {
        rc = put(s, value, len, &r->value);
    }
    for (size_t i = 0; rc == PS_OK && i < header_count; i++) {
        struct staged_header *h = &s->headers[s->header_len + i];
        if (!headers[i].name) {
            rc = ps_error_set(err, PS_ERR_INVALID, "stage: header %zu has no name", i);
            break;
        }
        rc = put(s, headers[i].name, strlen(headers[i].name) + 1, &h->name);
        if (rc == PS_OK) {
            rc = put(s, headers[i].value, headers[i].len, &h->value);
        }
    }
    if (rc != PS_OK) {
        s->arena.len = arena_before;
        return rc == PS_ERR_INVALID ? rc
                                    : ps_error_set(err, rc, "stage: out of memory for a record");
    }
    s->header_len += header_count;
    s->count++;
    return PS_OK;
}

ps_err_t ps_stage_send(const struct ps_stage *s, struct ps_kafka_producer *producer,
                       struct ps_error *err)
{
    struct ps_kafka_header h[PS_STAGE_HEADERS_MAX];
    for (size_t i = 0; s && i < s->count; i++) {
        const struct staged *r = &s->records[i];
        for (size_t j = 0; j < r->header_count; j++) {
            const struct staged_header *sh = &s->headers[r->first_header + j];
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
