#include "ps_nhs.h"

#include <stdio.h>

int ps_nhs_check_digit(const char nine[9])
{
    int sum = 0;
    for (int i = 0; i < 9; i++) {
        if (nine[i] < '0' || nine[i] > '9') {
            return -1;
        }
        sum += (nine[i] - '0') * (10 - i);
    }
    int check = 11 - sum % 11;
    if (check == 11) {
        check = 0;
    }
    return check == 10 ? -1 : check;
}

ps_err_t ps_nhs_normalise(const char *value, size_t len, char out[PS_NHS_DIGITS + 1],
                          struct ps_error *err)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = value[i];
        if (c >= '0' && c <= '9') {
            if (n == PS_NHS_DIGITS) {
                return ps_error_set(err, PS_ERR_NHS_INVALID, "NHS number has more than ten digits");
            }
            out[n++] = c;
        } else if ((c == ' ' || c == '-') && n > 0 && i + 1 < len) {
            continue; /* group separators, never leading or trailing */
        } else {
            return ps_error_set(err, PS_ERR_NHS_INVALID, "NHS number has a character other "
                                "than digits and group separators");
        }
    }
    out[n] = '\0';
    if (n != PS_NHS_DIGITS) {
        return ps_error_set(err, PS_ERR_NHS_INVALID, "NHS number does not have ten digits");
    }
    int check = ps_nhs_check_digit(out);
    if (check < 0 || check != out[9] - '0') {
        return ps_error_set(err, PS_ERR_NHS_INVALID, "NHS number fails the modulus 11 check");
    }
    return PS_OK;
}

uint32_t ps_nhs_make_test_number(uint32_t serial, char out[PS_NHS_DIGITS + 1])
{
    for (;; serial++) {
        serial %= 1000000;
        char nine[10];
        snprintf(nine, sizeof(nine), "999%06u", (unsigned)serial);
        int check = ps_nhs_check_digit(nine);
        if (check >= 0) {
            snprintf(out, PS_NHS_DIGITS + 1, "%s%d", nine, check);
            return serial;
        }
    }
}
