/*
 * ps_buf: a growable byte buffer with a hard maximum.
 *
 * Every buffer grown from untrusted input has a maximum; a write that would
 * pass it fails with PS_ERR_LIMIT and leaves the buffer as it was. Buffers are
 * reused across records: ps_buf_reset keeps the allocation.
 */
#ifndef PS_BUF_H
#define PS_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "ps_error.h"

struct ps_buf {
    uint8_t *data; /* owned; NULL until the first write */
    size_t len;
    size_t cap;
    size_t max;    /* 0 means SIZE_MAX */
};

/* Initialises an empty buffer that may grow to max bytes (0: no limit). */
void ps_buf_init(struct ps_buf *buf, size_t max);
/* Frees the storage; the buffer may be initialised again. NULL is a no-op. */
void ps_buf_free(struct ps_buf *buf);
/* Empties the buffer, keeping its storage. */
void ps_buf_reset(struct ps_buf *buf);
/* Ensures room for extra more bytes. PS_ERR_LIMIT past max, PS_ERR_NOMEM. */
ps_err_t ps_buf_reserve(struct ps_buf *buf, size_t extra);
/* Appends len bytes. */
ps_err_t ps_buf_append(struct ps_buf *buf, const void *data, size_t len);
/* Appends a NUL-terminated string without its NUL. */
ps_err_t ps_buf_append_str(struct ps_buf *buf, const char *s);
/* Appends printf-style text (no NUL counted in len, but one is kept after it). */
ps_err_t ps_buf_appendf(struct ps_buf *buf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
