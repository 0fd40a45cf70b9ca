/*
 * ps_error: error codes and the caller-owned error detail.
 *
 * Every fallible function in pseudostream returns a ps_err_t and, on failure,
 * fills a caller-owned struct ps_error (which may be NULL when the caller does
 * not want the detail). Codes are stable and append-only: they are used as
 * dead-letter and withhold reasons, as metric label values and as CLI exit
 * detail, so never renumber or remove one.
 *
 * Messages never contain a payload value, an identifier or key material: they
 * name places (file, line, field path, destination), never content.
 */
#ifndef PS_ERROR_H
#define PS_ERROR_H

#include <stddef.h>

typedef enum {
    PS_OK = 0,
    PS_ERR_NOMEM = 1,          /* allocation failed */
    PS_ERR_IO = 2,             /* file could not be read or written */
    PS_ERR_CONFIG = 3,         /* bad configuration, policy or keyring file */
    PS_ERR_INVALID = 4,        /* bad argument from the caller */
    PS_ERR_SCHEMA = 5,         /* a schema file is not acceptable */
    PS_ERR_PERMISSION = 6,     /* a secret file is readable by group or others */

    PS_ERR_FRAME = 10,         /* input is not Confluent-framed nor single-object */
    PS_ERR_SCHEMA_UNKNOWN = 11,/* schema id or fingerprint not known */
    PS_ERR_DECODE = 12,        /* Avro datum does not decode against its schema */
    PS_ERR_LIMIT = 13,         /* size, allocation or depth cap exceeded */
    PS_ERR_EMPTY = 14,         /* empty message */

    PS_ERR_TRANSFORM = 20,     /* a field could not be transformed */
    PS_ERR_NHS_INVALID = 21,   /* NHS number missing, malformed or failing modulus 11 */
    PS_ERR_NO_KEY = 22,        /* no keyring secret covers the event's time */
    PS_ERR_NO_EVENT_TIME = 23, /* the event carries no usable event time */
    PS_ERR_OPT_OUT = 24,       /* the patient is not cleared under the national data opt-out */
    PS_ERR_OPT_OUT_STALE = 25, /* the opt-out state is older than its maximum age, or not loaded */
    PS_ERR_PREDICATE = 26,     /* a withhold_when condition of the destination matched */

    PS_ERR_KAFKA = 30,         /* Kafka error of no particular class: treat as fatal */
    PS_ERR_KAFKA_RETRIABLE = 31,
    PS_ERR_KAFKA_ABORTABLE = 32,
    PS_ERR_KAFKA_FATAL = 33,
    PS_ERR_TIMEOUT = 34,
    PS_ERR_STOPPED = 35        /* stop was requested while waiting */
} ps_err_t;

#define PS_ERROR_MSG_MAX 512
#define PS_ERROR_FILE_MAX 256

struct ps_error {
    ps_err_t code;
    char msg[PS_ERROR_MSG_MAX];
    char file[PS_ERROR_FILE_MAX]; /* empty when the error has no source file */
    int line;                     /* 1-based; 0 when unknown */
    int col;                      /* 1-based; 0 when unknown */
};

/* Stable short name of a code, e.g. "frame", "schema_unknown". Never NULL. */
const char *ps_err_name(ps_err_t code);

/* Clears err (no-op for NULL). */
void ps_error_clear(struct ps_error *err);

/* Sets code and a printf-style message; returns code so callers can
 * `return ps_error_set(err, PS_ERR_X, "...")`. err may be NULL. */
ps_err_t ps_error_set(struct ps_error *err, ps_err_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* As ps_error_set, with a source location (file, 1-based line and column). */
ps_err_t ps_error_set_at(struct ps_error *err, ps_err_t code, const char *file, int line,
                         int col, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Prefixes context to the message on the way up: "destination 'x': <old>".
 * Keeps code and location. err may be NULL. Returns err->code (PS_OK for NULL). */
ps_err_t ps_error_prefix(struct ps_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Formats "file:line:col: message" (parts present only when known) into buf. */
void ps_error_format(const struct ps_error *err, char *buf, size_t size);

#endif
