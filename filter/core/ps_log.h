/*
 * ps_log: structured log lines, one JSON object per line.
 *
 *   {"time":"2026-11-23T15:00:00.123Z","level":"info","component":"pipeline",
 *    "code":"batch_committed","msg":"...","policy":"3f2a9c...","key_id":2}
 *
 * (policy and key_id once ps_log_set_context has been called; Kafka
 * coordinates, where a line concerns a record, are in msg as
 * topic/partition/offset.)
 *
 * Log lines name places and counts, never content: no payload value, no
 * identifier, no pseudonym beside its input and no key material may be passed
 * to these functions. Tests search every log line for every generated
 * identifier.
 *
 * The sink is process-wide (stdout by default, as DESIGN.md §9 asks for the
 * service; CLI tools that print data on stdout move it to stderr). Thread-safe:
 * each line is written with one locked fputs.
 */
#ifndef PS_LOG_H
#define PS_LOG_H

#include <stdint.h>
#include <stdio.h>

enum ps_log_level { PS_LOG_DEBUG = 0, PS_LOG_INFO = 1, PS_LOG_WARN = 2, PS_LOG_ERROR = 3 };

/* Process-wide context added to every line once set: the policy version
 * (its hash, shortened) and the keyring's current key id (-1: none). */
void ps_log_set_context(const char *policy, int64_t key_id);

/* Sets the sink (not owned; NULL silences logging) and the minimum level. */
void ps_log_set_stream(FILE *stream);
void ps_log_set_level(enum ps_log_level level);
enum ps_log_level ps_log_get_level(void);

/* Parses "debug", "info", "warn", "error"; returns -1 if unknown. */
int ps_log_level_parse(const char *name);

/* Writes one line. component and code are short identifiers
 * ([a-z0-9_.]); msg is printf-style. */
void ps_log_write(enum ps_log_level level, const char *component, const char *code,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define PS_LOG(level, component, code, ...)                                                    \
    do {                                                                                       \
        if ((level) >= ps_log_get_level()) {                                                   \
            ps_log_write((level), (component), (code), __VA_ARGS__);                           \
        }                                                                                      \
    } while (0)

#define PS_DEBUG(component, code, ...) PS_LOG(PS_LOG_DEBUG, component, code, __VA_ARGS__)
#define PS_INFO(component, code, ...) PS_LOG(PS_LOG_INFO, component, code, __VA_ARGS__)
#define PS_WARN(component, code, ...) PS_LOG(PS_LOG_WARN, component, code, __VA_ARGS__)
#define PS_ERROR(component, code, ...) PS_LOG(PS_LOG_ERROR, component, code, __VA_ARGS__)

/* Appends s as a JSON string body (without quotes) to buf, escaping as RFC 8259
 * asks; always NUL-terminates; returns the length written (truncates safely). */
size_t ps_log_json_escape(char *buf, size_t size, const char *s);

#endif
