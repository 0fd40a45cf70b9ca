#include "ps_transform.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "ps_time.h"

ps_err_t ps_transform_instant(const struct ps_scalar *in, enum ps_logical logical,
                              int64_t *ms_p, struct ps_error *err)
{
    if (in->kind == PS_SCALAR_INT) {
        switch (logical) {
        case PS_LOGICAL_DATE:
            *ms_p = in->i * 86400000LL;
            return PS_OK;
        case PS_LOGICAL_TIMESTAMP_MILLIS:
            *ms_p = in->i;
            return PS_OK;
        case PS_LOGICAL_TIMESTAMP_MICROS:
            /* Floor, not truncation: -1 µs is in 1969, not 1970. */
            *ms_p = in->i >= 0 ? in->i / 1000 : -((-in->i + 999) / 1000);
            return PS_OK;
        default:
            return ps_error_set(err, PS_ERR_TRANSFORM, "integer field is not a date or timestamp");
        }
    }
    if (in->kind == PS_SCALAR_STRING) {
        char text[64];
        if (in->len >= sizeof(text)) {
            return ps_error_set(err, PS_ERR_TRANSFORM, "date text is too long");
        }
        memcpy(text, in->s, in->len);
        text[in->len] = '\0';
        /* FHIR allows partial dates: a year, or a year and month. */
        if (in->len == 4) {
            strcat(text, "-01-01");
        } else if (in->len == 7) {
            strcat(text, "-01");
        }
        if (ps_time_parse_iso(text, ms_p) != PS_OK) {
            return ps_error_set(err, PS_ERR_TRANSFORM, "text is not an ISO 8601 date");
        }
        return PS_OK;
    }
    return ps_error_set(err, PS_ERR_TRANSFORM, "value is not a date");
}

static ps_err_t civil_of(const struct ps_scalar *in, enum ps_logical logical, int *y, int *m,
                         struct ps_error *err)
{
    int64_t ms;
    ps_err_t rc = ps_transform_instant(in, logical, &ms, err);
    if (rc != PS_OK) {
        return rc;
    }
    int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
    int d;
    ps_time_days_to_civil(days, y, m, &d);
    return PS_OK;
}

ps_err_t ps_transform_year(const struct ps_scalar *in, enum ps_logical logical, int64_t *year_p,
                           struct ps_error *err)
{
    int y, m;
    ps_err_t rc = civil_of(in, logical, &y, &m, err);
    if (rc == PS_OK) {
        *year_p = y;
    }
    return rc;
}

ps_err_t ps_transform_year_month(const struct ps_scalar *in, enum ps_logical logical,
                                 char text[PS_TRANSFORM_TEXT_MAX], struct ps_error *err)
{
    int y, m;
    ps_err_t rc = civil_of(in, logical, &y, &m, err);
    if (rc == PS_OK) {
        snprintf(text, PS_TRANSFORM_TEXT_MAX, "%04d-%02d", y, m);
    }
    return rc;
}

ps_err_t ps_transform_postcode(const char *value, size_t len, int sector,
                               char text[PS_TRANSFORM_TEXT_MAX], struct ps_error *err)
{
    char compact[8];
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c == ' ') {
            continue;
        }
        if (!isalnum(c) || n == sizeof(compact)) {
            return ps_error_set(err, PS_ERR_TRANSFORM, "value is not a UK postcode");
        }
        compact[n++] = (char)toupper(c);
    }
    /* The inward code is always the last three characters: digit, letter, letter. */
    if (n < 5 || n > 7 || !isalpha((unsigned char)compact[0]) ||
        !isdigit((unsigned char)compact[n - 3]) || !isalpha((unsigned char)compact[n - 2]) ||
        !isalpha((unsigned char)compact[n - 1])) {
        return ps_error_set(err, PS_ERR_TRANSFORM, "value is not a UK postcode");
    }
    size_t outward = n - 3;
    memcpy(text, compact, outward);
    if (sector) {
        text[outward] = ' ';
        text[outward + 1] = compact[n - 3];
        text[outward + 2] = '\0';
    } else {
        text[outward] = '\0';
    }
    return PS_OK;
}

ps_err_t ps_transform_age_band(const struct ps_scalar *birth, enum ps_logical logical,
                               int64_t event_ms, char text[PS_TRANSFORM_TEXT_MAX],
                               struct ps_error *err)
{
    int by, bm, bd, ey, em, ed;
    int64_t ms;
    ps_err_t rc = ps_transform_instant(birth, logical, &ms, err);
    if (rc != PS_OK) {
        return rc;
    }
    int64_t bdays = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
    int64_t edays = event_ms >= 0 ? event_ms / 86400000 : -((-event_ms + 86399999) / 86400000);
    ps_time_days_to_civil(bdays, &by, &bm, &bd);
    ps_time_days_to_civil(edays, &ey, &em, &ed);
    int age = ey - by - ((em < bm || (em == bm && ed < bd)) ? 1 : 0);
    if (age < 0) {
        return ps_error_set(err, PS_ERR_TRANSFORM, "birth date is after the event");
    }
    if (age >= 90) {
        snprintf(text, PS_TRANSFORM_TEXT_MAX, "90+");
    } else {
        snprintf(text, PS_TRANSFORM_TEXT_MAX, "%d-%d", age / 5 * 5, age / 5 * 5 + 4);
    }
    return PS_OK;
}

ps_err_t ps_transform_date_shift(const struct ps_scalar *in, enum ps_logical logical, int64_t days,
                                 struct ps_scalar *out, char text[PS_TRANSFORM_DATE_TEXT_MAX],
                                 struct ps_error *err)
{
    *out = *in;
    if (in->kind == PS_SCALAR_INT) {
        switch (logical) {
        case PS_LOGICAL_DATE:
            out->i = in->i + days;
            return PS_OK;
        case PS_LOGICAL_TIMESTAMP_MILLIS:
            out->i = in->i + days * 86400000LL;
            return PS_OK;
        case PS_LOGICAL_TIMESTAMP_MICROS:
            out->i = in->i + days * 86400000000LL;
            return PS_OK;
        default:
            return ps_error_set(err, PS_ERR_TRANSFORM, "integer field is not a date or timestamp");
        }
    }
    int64_t ms;
    ps_err_t rc = ps_transform_instant(in, logical, &ms, err);
    if (rc != PS_OK) {
        return rc;
    }
    ms += days * 86400000LL;
    char iso[40];
    ps_time_format_iso(ms, iso, sizeof(iso));
    /* Keep the text's own precision: a year stays a year, a date a date. */
    size_t keep = in->len == 4 || in->len == 7 || in->len == 10 ? in->len : strlen(iso);
    snprintf(text, PS_TRANSFORM_DATE_TEXT_MAX, "%.*s", (int)keep, iso);
    out->kind = PS_SCALAR_STRING;
    out->s = text;
    out->len = strlen(text);
    return PS_OK;
}

int64_t ps_transform_shift_days(const char *secret_token, uint32_t window_days)
{
    /* FNV-1a over a keyed, undisclosed token: the token is already uniformly
     * unpredictable, this only folds it into the window. */
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = secret_token; *p; p++) {
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    }
    uint64_t w = window_days ? window_days : 1;
    int64_t shift = (int64_t)(h % (2 * w)) - (int64_t)w; /* -w .. w-1 */
    return shift >= 0 ? shift + 1 : shift;                /* never 0 */
}
