/*
 * ps_time: the few date and time conversions pseudostream needs, all UTC.
 *
 * Avro's logical types count days (date) and milliseconds (timestamp-millis)
 * since 1970-01-01; FHIR carries ISO 8601 text. Conversions use the proleptic
 * Gregorian calendar and never consult the local time zone.
 */
#ifndef PS_TIME_H
#define PS_TIME_H

#include <stddef.h>
#include <stdint.h>

#include "ps_error.h"

/* Civil date of a day count since 1970-01-01, and back. */
void ps_time_days_to_civil(int64_t days, int *year_p, int *month_p, int *day_p);
int64_t ps_time_civil_to_days(int year, int month, int day);

/* Parses "YYYY-MM-DD", "YYYY-MM-DDThh:mm[:ss[.fff]](Z|+hh:mm|-hh:mm)" into ms
 * since the epoch. PS_ERR_INVALID when the text is not such a date or instant. */
ps_err_t ps_time_parse_iso(const char *text, int64_t *ms_p);

/* Formats ms as "YYYY-MM-DDThh:mm:ss.fffZ" (buf of at least 32 bytes). */
void ps_time_format_iso(int64_t ms, char *buf, size_t size);
/* Formats days as "YYYY-MM-DD" (buf of at least 16 bytes). */
void ps_time_format_date(int64_t days, char *buf, size_t size);

/* Wall clock and monotonic clock in milliseconds. */
int64_t ps_time_now_ms(void);
/* As ps_time_now_ms from the kernel's coarse clock (CLOCK_REALTIME_COARSE:
 * resolution of a scheduler tick, a few ms; no hardware clock read, which
 * is slow on some virtual machines). For per-event stamps on hot paths. */
int64_t ps_time_now_coarse_ms(void);
/* As ps_time_mono_ms from CLOCK_MONOTONIC_COARSE, for deadlines and ages of a
 * few hundred ms or more checked on hot paths. */
int64_t ps_time_mono_coarse_ms(void);
int64_t ps_time_mono_ms(void);

#endif
