/*
 * ps_tag: the vocabulary of field tags (DESIGN.md §4).
 *
 * Schemas attach tags to fields with the Avro field attribute
 * "confluent:tags": [...]; policies speak in tags first and paths second.
 * A field's tags are held as a bitmask of (1u << enum ps_tag).
 *
 * Each tag has an identifiability class (DESIGN.md §1): direct identifier,
 * quasi-identifier, sensitive content, or none (the class tag PII itself).
 */
#ifndef PS_TAG_H
#define PS_TAG_H

#include <stdint.h>

enum ps_tag {
    PS_TAG_NHS_NUMBER = 0,
    PS_TAG_LOCAL_ID,
    PS_TAG_PERSON_NAME,
    PS_TAG_ADDRESS,
    PS_TAG_POSTCODE,
    PS_TAG_TELECOM,
    PS_TAG_EMAIL,
    PS_TAG_BIRTH_DATE,
    PS_TAG_DEATH_DATE,
    PS_TAG_EVENT_DATE,
    PS_TAG_SEX,
    PS_TAG_ETHNICITY,
    PS_TAG_GP_PRACTICE,
    PS_TAG_CLINICIAN_ID,
    PS_TAG_FREE_TEXT,
    PS_TAG_DIAGNOSIS_CODE,
    PS_TAG_PROCEDURE_CODE,
    PS_TAG_PII,
    PS_TAG_COUNT
};

enum ps_tag_class {
    PS_TAG_CLASS_NONE = 0,
    PS_TAG_CLASS_DIRECT,    /* direct identifier: NHS number, local id, name, address, ... */
    PS_TAG_CLASS_QUASI,     /* quasi-identifier: dates, postcode, sex, ethnicity, GP */
    PS_TAG_CLASS_SENSITIVE  /* free text, diagnosis and procedure codes */
};

#define PS_TAG_BIT(t) (1u << (unsigned)(t))

/* Upper-case name as written in schemas and policies ("NHS_NUMBER"). */
const char *ps_tag_name(enum ps_tag tag);
/* Lower-case pseudonym kind of the tag ("nhs_number"), DESIGN.md §6. */
const char *ps_tag_kind(enum ps_tag tag);
/* Looks a name up; returns -1 when it is not in the vocabulary. */
int ps_tag_parse(const char *name);
enum ps_tag_class ps_tag_class_of(enum ps_tag tag);
/* The NULL-terminated list of every tag name, in enum order (for parsers and help). */
const char *const *ps_tag_names(void);
/* Writes the names of the tags in mask, comma-separated, to buf. */
void ps_tag_mask_format(uint32_t mask, char *buf, unsigned long size);

#endif
