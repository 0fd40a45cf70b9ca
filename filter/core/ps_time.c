#include "ps_time.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Howard Hinnant's days_from_civil / civil_from_days: exact for every year. */
int64_t ps_time_civil_to_days(int year, int month, int day)
{
    int64_t y = year - (month <= 2);
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void ps_time_days_to_civil(int64_t days, int *year_p, int *month_p, int *day_p)
{
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    *year_p = (int)(y + (m <= 2));
    *month_p = (int)m;
    *day_p = (int)d;
}

static int read_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i])) {
            return -1;
        }
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

ps_err_t ps_time_parse_iso(const char *text, int64_t *ms_p)
{
    const char *p = text;
    int y, mo, d, h = 0, mi = 0, s = 0, ms = 0;
    if (!p || read_digits(&p, 4, &y) || *p++ != '-' || read_digits(&p, 2, &mo) ||
        *p++ != '-' || read_digits(&p, 2, &d)) {
        return PS_ERR_INVALID;
    }
    static const int month_days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > month_days[mo - 1] || (mo == 2 && d == 29 && !leap)) {
        return PS_ERR_INVALID;
    }
    int64_t offset_min = 0;
    if (*p == 'T') {
        p++;
        if (read_digits(&p, 2, &h) || *p++ != ':' || read_digits(&p, 2, &mi)) {
            return PS_ERR_INVALID;
        }
        if (*p == ':') {
            p++;
            if (read_digits(&p, 2, &s)) {
                return PS_ERR_INVALID;
            }
            if (*p == '.') {
                p++;
                int scale = 100;
                if (!isdigit((unsigned char)*p)) {
                    return PS_ERR_INVALID;
                }
                while (isdigit((unsigned char)*p)) {
                    ms += (*p - '0') * scale;
                    scale /= 10;
                    p++;
                }
            }
        }
        if (*p == 'Z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, oh, om;
            if (read_digits(&p, 2, &oh) || *p++ != ':' || read_digits(&p, 2, &om)) {
                return PS_ERR_INVALID;
            }
            offset_min = sign * (oh * 60 + om);
        } else {
            return PS_ERR_INVALID;
        }
        if (h > 23 || mi > 59 || s > 60) {
            return PS_ERR_INVALID;
        }
    }
    if (*p != '\0') {
        return PS_ERR_INVALID;
    }
    int64_t days = ps_time_civil_to_days(y, mo, d);
    *ms_p = ((days * 24 + h) * 60 + mi - offset_min) * 60000 + (int64_t)s * 1000 + ms;
    return PS_OK;
}

void ps_time_format_iso(int64_t ms, char *buf, size_t size)
{
    int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
    int64_t rem = ms - days * 86400000;
    int y, mo, d;
    ps_time_days_to_civil(days, &y, &mo, &d);
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, mo, d, (int)(rem / 3600000),
             (int)(rem / 60000 % 60), (int)(rem / 1000 % 60), (int)(rem % 1000));
}

void ps_time_format_date(int64_t days, char *buf, size_t size)
{
    int y, mo, d;
    ps_time_days_to_civil(days, &y, &mo, &d);
    snprintf(buf, size, "%04d-%02d-%02d", y, mo, d);
}

int64_t ps_time_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#ifndef CLOCK_REALTIME_COARSE /* Linux's; elsewhere the fine clocks serve */
#define CLOCK_REALTIME_COARSE CLOCK_REALTIME
#define CLOCK_MONOTONIC_COARSE CLOCK_MONOTONIC
#endif

/* A coarse clock in ms (a scheduler tick: no hardware clock read, which is
 * slow on some virtual machines), or the fine one where there is none. */
static int64_t coarse_ms(clockid_t coarse, clockid_t fine)
{
    struct timespec ts;
    if (clock_gettime(coarse, &ts) != 0) {
        clock_gettime(fine, &ts);
    }
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ps_time_now_coarse_ms(void)
{
    return coarse_ms(CLOCK_REALTIME_COARSE, CLOCK_REALTIME);
}

int64_t ps_time_mono_coarse_ms(void)
{
    return coarse_ms(CLOCK_MONOTONIC_COARSE, CLOCK_MONOTONIC);
}

int64_t ps_time_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
