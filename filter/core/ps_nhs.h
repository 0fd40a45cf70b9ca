/*
 * ps_nhs: NHS number normalisation and the modulus-11 check.
 *
 * An NHS number is ten digits; the tenth is a check digit: weights 10..2 on
 * the first nine, sum mod 11, check = 11 - remainder, 11 becomes 0, and a
 * result of 10 means no valid number has those nine digits. Input may carry
 * spaces or hyphens between digit groups ("999 123 4560", "999-123-4560");
 * anything else makes it invalid. Numbers from 999 000 0000 to 999 999 9999
 * are the test range: all artificial data in this project uses it.
 */
#ifndef PS_NHS_H
#define PS_NHS_H

#include <stddef.h>
#include <stdint.h>

#include "ps_error.h"

#define PS_NHS_DIGITS 10

/* Normalises value (len bytes, not NUL-terminated) to its ten digits in
 * out (NUL-terminated). PS_ERR_NHS_INVALID when it is not ten digits once
 * spaces and hyphens are removed, or fails the check digit. The message never
 * repeats the input. */
ps_err_t ps_nhs_normalise(const char *value, size_t len, char out[PS_NHS_DIGITS + 1],
                          struct ps_error *err);

/* The check digit for nine digits (0..9), or -1 when those digits have none. */
int ps_nhs_check_digit(const char nine[9]);

/* Builds the valid NHS number whose first nine digits are 999 followed by the
 * six digits of serial (0..999999), skipping serials without a check digit by
 * moving to the next one. Writes ten digits and a NUL to out; returns the
 * serial actually used. For artificial data only. */
uint32_t ps_nhs_make_test_number(uint32_t serial, char out[PS_NHS_DIGITS + 1]);

#endif
