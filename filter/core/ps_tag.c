#include "ps_tag.h"

#include <stdio.h>
#include <string.h>

static const char *const tag_names[PS_TAG_COUNT + 1] = {
    "NHS_NUMBER", "LOCAL_ID",  "PERSON_NAME", "ADDRESS",     "POSTCODE",     "TELECOM",
    "EMAIL",      "BIRTH_DATE", "DEATH_DATE", "EVENT_DATE",  "SEX",          "ETHNICITY",
    "GP_PRACTICE", "CLINICIAN_ID", "FREE_TEXT", "DIAGNOSIS_CODE", "PROCEDURE_CODE", "PII",
    NULL};

static const char *const tag_kinds[PS_TAG_COUNT] = {
    "nhs_number", "local_id",  "person_name", "address",     "postcode",     "telecom",
    "email",      "birth_date", "death_date", "event_date",  "sex",          "ethnicity",
    "gp_practice", "clinician_id", "free_text", "diagnosis_code", "procedure_code", "pii"};

static const enum ps_tag_class tag_classes[PS_TAG_COUNT] = {
    [PS_TAG_NHS_NUMBER] = PS_TAG_CLASS_DIRECT,   [PS_TAG_LOCAL_ID] = PS_TAG_CLASS_DIRECT,
    [PS_TAG_PERSON_NAME] = PS_TAG_CLASS_DIRECT,  [PS_TAG_ADDRESS] = PS_TAG_CLASS_DIRECT,
    [PS_TAG_POSTCODE] = PS_TAG_CLASS_QUASI,      [PS_TAG_TELECOM] = PS_TAG_CLASS_DIRECT,
    [PS_TAG_EMAIL] = PS_TAG_CLASS_DIRECT,        [PS_TAG_BIRTH_DATE] = PS_TAG_CLASS_QUASI,
    [PS_TAG_DEATH_DATE] = PS_TAG_CLASS_QUASI,    [PS_TAG_EVENT_DATE] = PS_TAG_CLASS_QUASI,
    [PS_TAG_SEX] = PS_TAG_CLASS_QUASI,           [PS_TAG_ETHNICITY] = PS_TAG_CLASS_QUASI,
    [PS_TAG_GP_PRACTICE] = PS_TAG_CLASS_QUASI,   [PS_TAG_CLINICIAN_ID] = PS_TAG_CLASS_QUASI,
    [PS_TAG_FREE_TEXT] = PS_TAG_CLASS_SENSITIVE, [PS_TAG_DIAGNOSIS_CODE] = PS_TAG_CLASS_SENSITIVE,
    [PS_TAG_PROCEDURE_CODE] = PS_TAG_CLASS_SENSITIVE, [PS_TAG_PII] = PS_TAG_CLASS_NONE};

const char *ps_tag_name(enum ps_tag tag)
{
    return (unsigned)tag < PS_TAG_COUNT ? tag_names[tag] : "?";
}

const char *ps_tag_kind(enum ps_tag tag)
{
    return (unsigned)tag < PS_TAG_COUNT ? tag_kinds[tag] : "?";
}

int ps_tag_parse(const char *name)
{
    for (int i = 0; name && i < PS_TAG_COUNT; i++) {
        if (strcmp(name, tag_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

enum ps_tag_class ps_tag_class_of(enum ps_tag tag)
{
    return (unsigned)tag < PS_TAG_COUNT ? tag_classes[tag] : PS_TAG_CLASS_NONE;
}

const char *const *ps_tag_names(void)
{
    return tag_names;
}

void ps_tag_mask_format(uint32_t mask, char *buf, unsigned long size)
{
    size_t n = 0;
    if (size == 0) {
        return;
    }
    buf[0] = '\0';
    for (int i = 0; i < PS_TAG_COUNT; i++) {
        if (mask & PS_TAG_BIT(i)) {
            int w = snprintf(buf + n, size - n, "%s%s", n ? "," : "", tag_names[i]);
            if (w < 0 || (size_t)w >= size - n) {
                return;
            }
            n += (size_t)w;
        }
    }
}
