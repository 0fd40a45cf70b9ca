/*
 * ps_fingerprint: Avro Parsing Canonical Form and the CRC-64-AVRO fingerprint.
 *
 * Avro C has neither, so they live here, written from the Avro 1.11
 * specification ("Parsing Canonical Form for Schemas", "Schema Fingerprints").
 * The fingerprint of a schema is the 64-bit Rabin fingerprint (EMPTY =
 * 0xc15d213aa4d7a795) of the UTF-8 bytes of its canonical form; single-object
 * encoding writes it little-endian after C3 01. Fingerprints identify, they
 * do not authenticate.
 *
 * Thread-safe; no global state besides a table built once on first use.
 */
#ifndef PS_FINGERPRINT_H
#define PS_FINGERPRINT_H

#include <stddef.h>
#include <stdint.h>

#include "ps_error.h"

/* CRC-64-AVRO of len bytes. */
uint64_t ps_fingerprint_crc64(const void *data, size_t len);

/* The Parsing Canonical Form of a schema given as JSON text. On success
 * *pcf_p is a NUL-terminated string the caller frees with free().
 * PS_ERR_SCHEMA when the text is not a valid Avro schema in JSON. */
ps_err_t ps_fingerprint_canonical(const char *schema_json, char **pcf_p, struct ps_error *err);

/* CRC-64-AVRO of the canonical form of a schema given as JSON text. */
ps_err_t ps_fingerprint_schema(const char *schema_json, uint64_t *fp_p, struct ps_error *err);

#endif
