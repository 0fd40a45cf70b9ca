/*
 * ps_synth: artificial patients and events, for the demo, tests and benchmarks.
 *
 * Everything is invented: NHS numbers come from the 999 test range (which no
 * real patient has), names are made from syllables, telephone numbers from
 * Ofcom's ranges reserved for drama (07700 900xxx, 0113 496 0xxx), e-mail
 * addresses from example.org, postcodes are random inward codes on a few
 * districts. The same seed gives the same patients and events.
 *
 * Events are the readable JSON form of the reference schemas (ps_codec.h):
 * HL7v2 ADT^A01/A02/A03/A04/A08/A40 and ORU^R01, FHIR Patient, Encounter and
 * Observation. About one event in a hundred has an invalid NHS number and one
 * in a hundred none, and about one diagnosis in thirty is in a restricted
 * category (policy/codesets/), so the withholding paths are exercised; free-text
 * comments mention the patient's name, so leaks through free text show.
 */
#ifndef PS_SYNTH_H
#define PS_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "ps_buf.h"
#include "ps_error.h"

enum ps_synth_family {
    PS_SYNTH_HL7V2 = 0,
    PS_SYNTH_FHIR = 1
};

struct ps_synth_options {
    uint64_t seed;
    uint32_t patients;        /* distinct patients (default 500) */
    int64_t start_ms;         /* time of the first event (default 2026-01-01T00:00:00Z) */
    int64_t step_ms;          /* event time advance per event (default 60000) */
};

struct ps_synth;

/* options may be NULL for the defaults. */
ps_err_t ps_synth_new(const struct ps_synth_options *options, struct ps_synth **synth_p,
                      struct ps_error *err);
/* NULL is a no-op. */
void ps_synth_destroy(struct ps_synth *synth);

size_t ps_synth_patient_count(const struct ps_synth *synth);

/* Appends the next event's JSON to json; tells its family and patient index. */
ps_err_t ps_synth_next(struct ps_synth *synth, struct ps_buf *json,
                       enum ps_synth_family *family_p, size_t *patient_p);

/* The patient's (valid, test-range) NHS number. */
const char *ps_synth_nhs_number(const struct ps_synth *synth, size_t patient);

/* The patient's hospital number (the key interface engines often use). */
const char *ps_synth_local_id(const struct ps_synth *synth, size_t patient);

/* Appends one JSON object with every identifying value of a patient (the
 * values tests search output bytes for): nhs_number, nhs_number_spaced,
 * invalid_nhs_number, family, given, birth_date, postcode, address_line,
 * phone, landline, email, local_id, fhir_id, next_of_kin_family,
 * next_of_kin_phone, merged_nhs_number, merged_local_id. */
ps_err_t ps_synth_manifest(const struct ps_synth *synth, size_t patient, struct ps_buf *json);

#endif
