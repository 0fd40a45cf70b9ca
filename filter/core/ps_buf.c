#include "ps_buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ps_buf_init(struct ps_buf *buf, size_t max)
{
    buf->data = NULL;
    buf->len = 0;
    buf->cap = 0;
    buf->max = max ? max : SIZE_MAX;
}

void ps_buf_free(struct ps_buf *buf)
{
    if (!buf) {
        return;
    }
    free(buf->data);
    buf->data = NULL;
    buf->len = 0;
    buf->cap = 0;
}

void ps_buf_reset(struct ps_buf *buf)
{
    buf->len = 0;
}

ps_err_t ps_buf_reserve(struct ps_buf *buf, size_t extra)
{
    if (extra > buf->max || buf->len > buf->max - extra) {
        return PS_ERR_LIMIT;
    }
    size_t need = buf->len + extra;
    if (need <= buf->cap) {
        return PS_OK;
    }
    size_t cap = buf->cap ? buf->cap : 256;
    while (cap < need) {
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    }
    if (cap > buf->max) {
        cap = buf->max;
    }
    uint8_t *data = realloc(buf->data, cap);
    if (!data) {
        return PS_ERR_NOMEM;
    }
    buf->data = data;
    buf->cap = cap;
    return PS_OK;
}

ps_err_t ps_buf_append(struct ps_buf *buf, const void *data, size_t len)
{
    ps_err_t rc = ps_buf_reserve(buf, len);
    if (rc != PS_OK) {
        return rc;
    }
    if (len) {
        memcpy(buf->data + buf->len, data, len);
    }
    buf->len += len;
    return PS_OK;
}

ps_err_t ps_buf_append_str(struct ps_buf *buf, const char *s)
{
    return ps_buf_append(buf, s, strlen(s));
}

ps_err_t ps_buf_appendf(struct ps_buf *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return PS_ERR_INVALID;
    }
    ps_err_t rc = ps_buf_reserve(buf, (size_t)n + 1);
    if (rc != PS_OK) {
        return rc;
    }
    va_start(ap, fmt);
    vsnprintf((char *)buf->data + buf->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf->len += (size_t)n;
    return PS_OK;
}
