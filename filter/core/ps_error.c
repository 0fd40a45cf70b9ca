#include "ps_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *ps_err_name(ps_err_t code)
{
    switch (code) {
    case PS_OK: return "ok";
    case PS_ERR_NOMEM: return "nomem";
    case PS_ERR_IO: return "io";
    case PS_ERR_CONFIG: return "config";
    case PS_ERR_INVALID: return "invalid";
    case PS_ERR_SCHEMA: return "schema";
    case PS_ERR_PERMISSION: return "permission";
    case PS_ERR_FRAME: return "frame";
    case PS_ERR_SCHEMA_UNKNOWN: return "schema_unknown";
    case PS_ERR_DECODE: return "decode";
    case PS_ERR_LIMIT: return "limit";
    case PS_ERR_EMPTY: return "empty";
    case PS_ERR_TRANSFORM: return "transform";
    case PS_ERR_NHS_INVALID: return "nhs_number_invalid";
    case PS_ERR_NO_KEY: return "no_key";
    case PS_ERR_NO_EVENT_TIME: return "no_event_time";
    case PS_ERR_OPT_OUT: return "opt_out";
    case PS_ERR_OPT_OUT_STALE: return "opt_out_stale";
    case PS_ERR_PREDICATE: return "predicate";
    case PS_ERR_KAFKA: return "kafka";
    case PS_ERR_KAFKA_RETRIABLE: return "kafka_retriable";
    case PS_ERR_KAFKA_ABORTABLE: return "kafka_abortable";
    case PS_ERR_KAFKA_FATAL: return "kafka_fatal";
    case PS_ERR_TIMEOUT: return "timeout";
    case PS_ERR_STOPPED: return "stopped";
    }
    return "unknown";
}

void ps_error_clear(struct ps_error *err)
{
    /* Field by field: the struct is ~800 bytes and is cleared on hot paths;
     * the strings only need their first byte. */
    if (err) {
        err->code = PS_OK;
        err->msg[0] = '\0';
        err->file[0] = '\0';
        err->line = 0;
        err->col = 0;
    }
}

static void error_vset(struct ps_error *err, ps_err_t code, const char *fmt, va_list ap)
{
    err->code = code;
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
}

ps_err_t ps_error_set(struct ps_error *err, ps_err_t code, const char *fmt, ...)
{
    if (!err) {
        return code;
    }
    va_list ap;
    va_start(ap, fmt);
    error_vset(err, code, fmt, ap);
    va_end(ap);
    err->file[0] = '\0';
    err->line = 0;
    err->col = 0;
    return code;
}

ps_err_t ps_error_set_at(struct ps_error *err, ps_err_t code, const char *file, int line,
                         int col, const char *fmt, ...)
{
    if (!err) {
        return code;
    }
    va_list ap;
    va_start(ap, fmt);
    error_vset(err, code, fmt, ap);
    va_end(ap);
    snprintf(err->file, sizeof(err->file), "%s", file ? file : "");
    err->line = line;
    err->col = col;
    return code;
}

ps_err_t ps_error_prefix(struct ps_error *err, const char *fmt, ...)
{
    if (!err) {
        return PS_OK;
    }
    char prefix[PS_ERROR_MSG_MAX];
    char old[PS_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old);
    return err->code;
}

void ps_error_format(const struct ps_error *err, char *buf, size_t size)
{
    if (!err || size == 0) {
        return;
    }
    if (err->file[0] && err->line > 0 && err->col > 0) {
        snprintf(buf, size, "%s:%d:%d: %s", err->file, err->line, err->col, err->msg);
    } else if (err->file[0] && err->line > 0) {
        snprintf(buf, size, "%s:%d: %s", err->file, err->line, err->msg);
    } else if (err->file[0]) {
        snprintf(buf, size, "%s: %s", err->file, err->msg);
    } else {
        snprintf(buf, size, "%s", err->msg);
    }
}
