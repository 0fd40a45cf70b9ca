/*
 * ps_transform: the value transforms a destination's rules apply to a leaf,
 * as pure functions on ps_scalar values (no Avro, no Kafka, no keys).
 *
 * Generalisation (DESIGN.md §5):
 *   year         a date, timestamp or ISO 8601 text  -> its year (int)
 *   year_month   a date, timestamp or ISO 8601 text  -> "YYYY-MM"
 *   district     a UK postcode -> its outward code, "LS1 4AB" -> "LS1"
 *   sector       a UK postcode -> outward code and the inward digit, "LS1 4"
 * Redaction replaces a string by the fixed marker PS_TRANSFORM_REDACTED.
 *
 * Input that does not have the expected shape is PS_ERR_TRANSFORM (the
 * record is then withheld from that destination: fail closed). Messages
 * never repeat the value.
 */
#ifndef PS_TRANSFORM_H
#define PS_TRANSFORM_H

#include <stddef.h>
#include <stdint.h>

#include "ps_error.h"
#include "ps_scalar.h"
#include "ps_schema.h"

#define PS_TRANSFORM_REDACTED "[REDACTED]"
/* Longest text a transform writes, NUL included. */
#define PS_TRANSFORM_TEXT_MAX 16

/* The instant a date-like leaf stands for, in ms since the epoch: a date
 * (days), a timestamp in ms or µs, or ISO 8601 text. */
ps_err_t ps_transform_instant(const struct ps_scalar *in, enum ps_logical logical,
                              int64_t *ms_p, struct ps_error *err);

/* Year of a date-like leaf. */
ps_err_t ps_transform_year(const struct ps_scalar *in, enum ps_logical logical, int64_t *year_p,
                           struct ps_error *err);

/* "YYYY-MM" of a date-like leaf into text (PS_TRANSFORM_TEXT_MAX bytes). */
ps_err_t ps_transform_year_month(const struct ps_scalar *in, enum ps_logical logical,
                                 char text[PS_TRANSFORM_TEXT_MAX], struct ps_error *err);

/* Postcode district or sector (sector = 1) into text. The postcode may be in
 * any case and with or without its space; it must have the UK shape: an
 * outward code of 2 to 4 characters starting with a letter, and an inward code
 * of a digit and two letters. */
ps_err_t ps_transform_postcode(const char *value, size_t len, int sector,
                               char text[PS_TRANSFORM_TEXT_MAX], struct ps_error *err);

/* Age band at the event's time: "0-4", "5-9", ..., "85-89", "90+", into text.
 * PS_ERR_TRANSFORM when the birth date is after the event. */
ps_err_t ps_transform_age_band(const struct ps_scalar *birth, enum ps_logical logical,
                               int64_t event_ms, char text[PS_TRANSFORM_TEXT_MAX],
                               struct ps_error *err);

/* A date-like leaf moved by days, in its own form: a date stays a day count, a
 * timestamp stays a timestamp, ISO text keeps its length (year, year-month,
 * date or instant). Text output goes to text (PS_TRANSFORM_DATE_TEXT_MAX). */
#define PS_TRANSFORM_DATE_TEXT_MAX 40
ps_err_t ps_transform_date_shift(const struct ps_scalar *in, enum ps_logical logical, int64_t days,
                                 struct ps_scalar *out, char text[PS_TRANSFORM_DATE_TEXT_MAX],
                                 struct ps_error *err);

/* The per-patient shift in days, in [-window, -1] or [1, window], from a
 * secret per-patient value (a pseudonym of kind "date_shift" that is never
 * disclosed). */
int64_t ps_transform_shift_days(const char *secret_token, uint32_t window_days);

#endif
