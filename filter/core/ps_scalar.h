/*
 * ps_scalar: a neutral scalar value crossing the layer boundary.
 *
 * The Avro layer walks records; where a destination's plan transforms a leaf
 * field, it hands the leaf to the engine as a ps_scalar and takes a ps_scalar
 * back, so the policy and crypto layers never see an Avro type. Strings are
 * borrowed (not NUL-terminated): valid only for the duration of the call that
 * received them.
 */
#ifndef PS_SCALAR_H
#define PS_SCALAR_H

#include <stddef.h>
#include <stdint.h>

enum ps_scalar_kind {
    PS_SCALAR_NULL = 0,
    PS_SCALAR_BOOL,
    PS_SCALAR_INT,    /* Avro int and long, and the logical types on them */
    PS_SCALAR_DOUBLE, /* Avro float and double */
    PS_SCALAR_STRING  /* Avro string, bytes, and enum symbols */
};

struct ps_scalar {
    enum ps_scalar_kind kind;
    int64_t i;        /* BOOL and INT */
    double d;         /* DOUBLE */
    const char *s;    /* STRING: borrowed, not NUL-terminated */
    size_t len;       /* STRING length in bytes */
};

#endif
