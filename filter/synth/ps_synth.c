#include "ps_synth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ps_nhs.h"
#include "ps_time.h"

struct synth_patient {
    char nhs[PS_NHS_DIGITS + 1];
    char invalid_nhs[PS_NHS_DIGITS + 1];
    char merged_nhs[PS_NHS_DIGITS + 1];
    char family[32], given[24], nk_family[32], nk_given[24];
    char street[48], town[32], postcode[12];
    char phone[16], landline[16], nk_phone[16], email[80];
    char local_id[16], merged_local_id[16], fhir_id[40];
    char gp[8], sex;
    char ethnic;
    int64_t birth_days;
};

struct ps_synth {
    struct ps_synth_options opt;
    uint64_t rng;
    uint64_t counter;
    size_t count;
    struct synth_patient *patients;
};

static const char *const syllables[] = {
    "Ash",  "Bram", "Cor",  "Dun",   "Elm",  "Fen",   "Gar", "Hol",  "Ivel", "Jun",
    "Kel",  "Lor",  "Mar",  "Nor",   "Oak",  "Pen",   "Quil", "Ros", "Stan", "Thorn",
    "Ulver", "Vel", "Wren", "Yar"};
static const char *const suffixes[] = {"by",   "combe", "field", "ford",  "hamley", "holt",
                                       "ley",  "mere",  "tonby", "wick", "worth",  "dale"};
static const char *const givens[] = {
    "Arlo",  "Brynna", "Cassio", "Darana", "Eirwen", "Finnian", "Gwenllo", "Halden",
    "Islay", "Joryn",  "Kitterly", "Larkin", "Mabliss", "Nyelle", "Orlaith", "Perrin",
    "Quenby", "Rhianne", "Sorrelle", "Tamsinne", "Ullary", "Valdane", "Wynnfor", "Zoranne"};
static const char *const districts[] = {"LS1", "LS6", "M13", "B15", "BS8",
                                        "NE1", "NG7", "S10", "YO10", "CF10"};
static const char *const streets[] = {"Road", "Lane", "Close", "Grove", "Terrace", "Way"};
static const char *const towns[] = {"Ashmere Vale", "Brindlecombe", "Corrowby", "Dunmarsh",
                                    "Elderholt", "Fenwater"};
static const char *const adt_events[] = {"A01", "A02", "A03", "A04", "A08", "A40"};
static const char *const wards[] = {"AMU", "W14", "W22", "CCU", "ITU", "W07"};
static const char *const admission_methods[] = {"11", "12", "21", "22", "28"};
static const char *const treatment_functions[] = {"100", "300", "320", "340", "430", "501"};

struct diag {
    const char *code, *desc;
};
static const struct diag diagnoses[] = {
    {"J18.9", "Pneumonia, unspecified"},
    {"I21.9", "Acute myocardial infarction, unspecified"},
    {"E11.9", "Type 2 diabetes mellitus without complications"},
    {"S72.00", "Fracture of neck of femur"},
    {"K35.8", "Acute appendicitis, other and unspecified"},
    {"N39.0", "Urinary tract infection, site not specified"},
    {"I48.9", "Atrial fibrillation, unspecified"},
    {"J44.1", "COPD with acute exacerbation"}};

/* Restricted categories (policy/codesets/): rare, so most events still flow. */
static const struct diag restricted[] = {
    {"A54.9", "Gonococcal infection, unspecified"},
    {"B20.9", "HIV disease resulting in unspecified infectious or parasitic disease"},
    {"O04.9", "Medical abortion, complete or unspecified, without complication"},
    {"Z31.2", "In vitro fertilization"},
    {"F64.0", "Transsexualism"}};

struct test {
    const char *code, *desc, *units, *range;
    double low, high;
};
static const struct test tests[] = {
    {"1022431000000105", "Haemoglobin estimation", "g/L", "130-180", 95, 175},
    {"1000661000000107", "Serum sodium level", "mmol/L", "133-146", 128, 148},
    {"1000651000000109", "Serum potassium level", "mmol/L", "3.5-5.3", 3.1, 5.9},
    {"1001371000000100", "Serum C reactive protein level", "mg/L", "0-5", 0, 140}};

#define PICK(rng, arr) (arr[synth_rand(rng) % (sizeof(arr) / sizeof(arr[0]))])

/* splitmix64: small, fast and the same on every platform. */
static uint64_t synth_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void invalid_nhs_of(const char *valid, char *out)
{
    memcpy(out, valid, PS_NHS_DIGITS + 1);
    out[9] = (char)('0' + (valid[9] - '0' + 1) % 10); /* a wrong check digit */
}

static void make_names(struct synth_patient *p, uint64_t *rng)
{
    snprintf(p->family, sizeof(p->family), "%s%s", PICK(rng, syllables), PICK(rng, suffixes));
    snprintf(p->given, sizeof(p->given), "%s", PICK(rng, givens));
    snprintf(p->nk_family, sizeof(p->nk_family), "%s%s", PICK(rng, syllables),
             PICK(rng, suffixes));
    snprintf(p->nk_given, sizeof(p->nk_given), "%s", PICK(rng, givens));
}

static void make_contact(struct synth_patient *p, uint64_t *rng, size_t i)
{
    static const char letters[] = "ABDEFGHJLNPQRSTUWXYZ";
    snprintf(p->street, sizeof(p->street), "%u %s%s %s", (unsigned)(1 + synth_rand(rng) % 180),
             PICK(rng, syllables), PICK(rng, suffixes), PICK(rng, streets));
    snprintf(p->town, sizeof(p->town), "%s", PICK(rng, towns));
    snprintf(p->postcode, sizeof(p->postcode), "%s %u%c%c", PICK(rng, districts),
             (unsigned)(synth_rand(rng) % 10), letters[synth_rand(rng) % 20],
             letters[synth_rand(rng) % 20]);
    snprintf(p->phone, sizeof(p->phone), "07700 900%03u", (unsigned)(synth_rand(rng) % 1000));
    snprintf(p->landline, sizeof(p->landline), "0113 496 0%03u",
             (unsigned)(synth_rand(rng) % 1000));
    snprintf(p->nk_phone, sizeof(p->nk_phone), "07700 900%03u",
             (unsigned)(synth_rand(rng) % 1000));
    snprintf(p->email, sizeof(p->email), "%s.%s.%zu@example.org", p->given, p->family, i);
    snprintf(p->local_id, sizeof(p->local_id), "RR8%07zu", 1000000 + i * 7);
    snprintf(p->merged_local_id, sizeof(p->merged_local_id), "RR8%07zu", 5000000 + i * 7);
    snprintf(p->fhir_id, sizeof(p->fhir_id), "pat-%08zx-%04x", i * 2654435761u,
             (unsigned)(synth_rand(rng) & 0xffff));
    snprintf(p->gp, sizeof(p->gp), "B86%03u", (unsigned)(synth_rand(rng) % 100));
}

static void make_patient(struct synth_patient *p, uint64_t *rng, size_t i, uint32_t *serial)
{
    memset(p, 0, sizeof(*p));
    /* Each patient takes the next valid serial for their own number and the
     * one after it for the record merged into theirs (A40), so no two
     * patients ever share a number, however many there are (up to the
     * test range's ~450,000 pairs). */
    *serial = ps_nhs_make_test_number(*serial, p->nhs) + 1;
    *serial = ps_nhs_make_test_number(*serial, p->merged_nhs) + 1;
    invalid_nhs_of(p->nhs, p->invalid_nhs);
    make_names(p, rng);
    make_contact(p, rng, i);
    static const char sexes[] = "MFMFMFU";
    static const char ethnic[] = "ABCDEFGHJKLMNPRSZ";
    p->sex = sexes[synth_rand(rng) % 7];
    p->ethnic = ethnic[synth_rand(rng) % 17];
    p->birth_days = ps_time_civil_to_days(1930, 1, 1) + (int64_t)(synth_rand(rng) % 32000);
}

ps_err_t ps_synth_new(const struct ps_synth_options *options, struct ps_synth **synth_p,
                      struct ps_error *err)
{
    struct ps_synth *s = calloc(1, sizeof(*s));
    if (!s) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory");
    }
    if (options) {
        s->opt = *options;
    }
    if (!s->opt.patients) {
        s->opt.patients = 500;
    }
    if (!s->opt.start_ms) {
        s->opt.start_ms = ps_time_civil_to_days(2026, 1, 1) * 86400000LL;
    }
    if (!s->opt.step_ms) {
        s->opt.step_ms = 60000;
    }
    /* Two test-range numbers per patient; the range holds about 900,000
     * valid ones, so stay well inside it to never wrap onto a used one. */
    if (s->opt.patients > 400000) {
        free(s);
        return ps_error_set(err, PS_ERR_INVALID, "at most 400000 artificial patients");
    }
    s->count = s->opt.patients;
    s->patients = calloc(s->count, sizeof(*s->patients));
    if (!s->patients) {
        free(s);
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory");
    }
    s->rng = s->opt.seed ^ 0x5eed5eed5eedULL;
    uint32_t serial = (uint32_t)(s->opt.seed % 1000) * 317;
    for (size_t i = 0; i < s->count; i++) {
        make_patient(&s->patients[i], &s->rng, i, &serial);
    }
    *synth_p = s;
    return PS_OK;
}

void ps_synth_destroy(struct ps_synth *synth)
{
    if (synth) {
        free(synth->patients);
        free(synth);
    }
}

size_t ps_synth_patient_count(const struct ps_synth *synth)
{
    return synth->count;
}

/* NHS number as the sender wrote it: mostly valid, sometimes wrong or missing. */
static void nhs_json(struct ps_buf *b, const struct synth_patient *p, uint64_t roll)
{
    if (roll % 100 == 0) {
        ps_buf_appendf(b, "\"%s\"", p->invalid_nhs);
    } else if (roll % 100 == 1) {
        ps_buf_append_str(b, "null");
    } else {
        ps_buf_appendf(b, "\"%s\"", p->nhs);
    }
}

static void hl7_pid(struct ps_buf *b, const struct synth_patient *p, uint64_t roll)
{
    char dob[16];
    ps_time_format_date(p->birth_days, dob, sizeof(dob));
    ps_buf_append_str(b, "\"pid\":{\"nhs_number\":");
    nhs_json(b, p, roll);
    ps_buf_appendf(b,
                   ",\"nhs_number_status\":\"01\",\"local_identifiers\":[{\"id\":\"%s\","
                   "\"assigning_authority\":\"RR8\",\"identifier_type\":\"MR\"}],"
                   "\"name\":[{\"family\":\"%s\",\"given\":[\"%s\"],\"prefix\":null,"
                   "\"name_type\":\"L\"}],\"date_of_birth\":\"%s\",\"sex\":\"%c\","
                   "\"ethnic_category\":\"%c\",\"address\":[{\"lines\":[\"%s\"],\"city\":\"%s\","
                   "\"county\":\"West Yorkshire\",\"postcode\":\"%s\",\"address_type\":\"H\"}],"
                   "\"telecom\":[{\"use\":\"PRN\",\"equipment\":\"PH\",\"value\":\"%s\"},"
                   "{\"use\":\"PRN\",\"equipment\":\"CP\",\"value\":\"%s\"},"
                   "{\"use\":\"NET\",\"equipment\":\"Internet\",\"value\":\"%s\"}],"
                   "\"date_of_death\":null,\"death_indicator\":false}",
                   p->local_id, p->family, p->given, dob, p->sex, p->ethnic, p->street, p->town,
                   p->postcode, p->landline, p->phone, p->email);
}

static void hl7_pv1(struct ps_buf *b, struct ps_synth *s, const char *admit, const char *event)
{
    int discharged = strcmp(event, "A03") == 0;
    ps_buf_appendf(b,
                   ",\"pv1\":{\"patient_class\":\"%s\",\"ward\":\"%s\",\"room\":\"R%u\","
                   "\"bed\":\"B%02u\",\"admission_method\":\"%s\",\"consultant_code\":"
                   "\"C%07u\",\"consultant_name\":\"Dr %s%s\",\"treatment_function_code\":"
                   "\"%s\",\"visit_number\":\"V%09llu\",\"admit_time\":\"%s\","
                   "\"discharge_time\":%s%s%s}",
                   strcmp(event, "A04") == 0 ? "O" : "I", PICK(&s->rng, wards),
                   (unsigned)(1 + synth_rand(&s->rng) % 9),
                   (unsigned)(1 + synth_rand(&s->rng) % 30), PICK(&s->rng, admission_methods),
                   (unsigned)(synth_rand(&s->rng) % 10000000), PICK(&s->rng, syllables),
                   PICK(&s->rng, suffixes), PICK(&s->rng, treatment_functions),
                   (unsigned long long)s->counter, admit, discharged ? "\"" : "",
                   discharged ? admit : "null", discharged ? "\"" : "");
}

static void hl7_dg1(struct ps_buf *b, struct ps_synth *s, const char *when)
{
    unsigned n = (unsigned)(synth_rand(&s->rng) % 3);
    ps_buf_append_str(b, ",\"dg1\":[");
    for (unsigned i = 0; i < n; i++) {
        const struct diag *d = synth_rand(&s->rng) % 30 == 0 ? &PICK(&s->rng, restricted)
                                                             : &PICK(&s->rng, diagnoses);
        ps_buf_appendf(b,
                       "%s{\"coding_system\":\"I10\",\"code\":\"%s\",\"description\":\"%s\","
                       "\"diagnosis_type\":\"W\",\"diagnosis_time\":\"%s\"}",
                       i ? "," : "", d->code, d->desc, when);
    }
    ps_buf_append_str(b, "]");
}

static void hl7_obx(struct ps_buf *b, struct ps_synth *s, const struct synth_patient *p,
                    const char *when)
{
    ps_buf_appendf(b,
                   ",\"obr\":{\"filler_order_number\":\"LAB%08llu\",\"service_code\":\"FBC\","
                   "\"service_name\":\"Blood panel\",\"observation_time\":\"%s\","
                   "\"ordering_provider\":\"C%07u\"},\"obx\":[",
                   (unsigned long long)s->counter, when,
                   (unsigned)(synth_rand(&s->rng) % 10000000));
    unsigned n = 1 + (unsigned)(synth_rand(&s->rng) % 3);
    for (unsigned i = 0; i < n; i++) {
        const struct test *t = &PICK(&s->rng, tests);
        double v = t->low + (t->high - t->low) * (double)(synth_rand(&s->rng) % 1000) / 1000.0;
        ps_buf_appendf(b,
                       "%s{\"value_type\":\"NM\",\"code\":\"%s\",\"code_system\":\"SCT\","
                       "\"description\":\"%s\",\"numeric_value\":%.1f,\"text_value\":null,"
                       "\"units\":\"%s\",\"reference_range\":\"%s\",\"abnormal_flag\":\"N\","
                       "\"observation_time\":\"%s\",\"comment\":\"Result discussed with %s %s "
                       "on ward\"}",
                       i ? "," : "", t->code, t->desc, v, t->units, t->range, when, p->given,
                       p->family);
    }
    ps_buf_append_str(b, "]");
}

static void hl7_event(struct ps_synth *s, struct ps_buf *b, const struct synth_patient *p,
                      const char *when, uint64_t roll)
{
    int oru = roll % 5 == 0;
    const char *event = oru ? "R01" : PICK(&s->rng, adt_events);
    ps_buf_appendf(b,
                   "{\"msh\":{\"message_control_id\":\"MSG%010llu\",\"sending_application\":"
                   "\"%s\",\"sending_facility\":\"RR8\",\"message_type\":\"%s^%s\","
                   "\"event_time\":\"%s\",\"version_id\":\"2.4\"},",
                   (unsigned long long)s->counter, oru ? "LIMS" : "PAS", oru ? "ORU" : "ADT",
                   event, when);
    hl7_pid(b, p, roll >> 8);
    ps_buf_appendf(b, ",\"pd1\":{\"gp_practice\":\"%s\",\"gp_code\":\"G%07u\"}", p->gp,
                   (unsigned)(synth_rand(&s->rng) % 10000000));
    if (oru) {
        ps_buf_append_str(b, ",\"pv1\":null,\"nk1\":[],\"dg1\":[],\"mrg\":null");
        hl7_obx(b, s, p, when);
    } else {
        hl7_pv1(b, s, when, event);
        ps_buf_appendf(b,
                       ",\"nk1\":[{\"family\":\"%s\",\"given\":\"%s\",\"relationship\":"
                       "\"SPO\",\"telecom\":\"%s\"}]",
                       p->nk_family, p->nk_given, p->nk_phone);
        hl7_dg1(b, s, when);
        if (strcmp(event, "A40") == 0) {
            ps_buf_appendf(b, ",\"mrg\":{\"prior_nhs_number\":\"%s\",\"prior_local_id\":\"%s\"}",
                           p->merged_nhs, p->merged_local_id);
        } else {
            ps_buf_append_str(b, ",\"mrg\":null");
        }
        ps_buf_append_str(b, ",\"obr\":null,\"obx\":[]");
    }
    ps_buf_append_str(b, "}");
}

static void fhir_patient(struct ps_buf *b, const struct synth_patient *p, uint64_t roll)
{
    static const char *const genders[] = {"male", "female", "unknown"};
    char dob[16];
    ps_time_format_date(p->birth_days, dob, sizeof(dob));
    ps_buf_appendf(b, "\"patient\":{\"id\":\"%s\",\"nhsNumber\":", p->fhir_id);
    nhs_json(b, p, roll);
    ps_buf_appendf(b,
                   ",\"nhsNumberVerificationStatus\":\"number-present-and-verified\","
                   "\"identifier\":[{\"system\":\"https://fhir.rr8.example.org/Id/mrn\","
                   "\"value\":\"%s\"}],\"name\":[{\"use\":\"official\",\"family\":\"%s\","
                   "\"given\":[\"%s\"],\"prefix\":[]}],\"telecom\":[{\"system\":\"phone\","
                   "\"value\":\"%s\",\"use\":\"mobile\"},{\"system\":\"email\",\"value\":\"%s\","
                   "\"use\":\"home\"}],\"gender\":\"%s\",\"birthDate\":\"%s\","
                   "\"deceasedDateTime\":null,\"address\":[{\"use\":\"home\",\"line\":[\"%s\"],"
                   "\"city\":\"%s\",\"district\":\"West Yorkshire\",\"postalCode\":\"%s\"}],"
                   "\"generalPractitioner\":[{\"identifierSystem\":"
                   "\"https://fhir.nhs.uk/Id/ods-organization-code\",\"identifierValue\":\"%s\"}],"
                   "\"ethnicCategory\":\"%c\"}",
                   p->local_id, p->family, p->given, p->phone, p->email,
                   genders[p->sex == 'M' ? 0 : p->sex == 'F' ? 1 : 2], dob, p->street, p->town,
                   p->postcode, p->gp, p->ethnic);
}

static void fhir_event(struct ps_synth *s, struct ps_buf *b, const struct synth_patient *p,
                       const char *when, uint64_t roll)
{
    static const char *const kinds[] = {"Patient", "Encounter", "Observation"};
    const char *kind = kinds[roll % 3];
    ps_buf_appendf(b, "{\"id\":\"%s/%llu/_history/1\",\"resourceType\":\"%s\",\"lastUpdated\":"
                   "\"%s\",\"source\":\"RR8\",", kind, (unsigned long long)s->counter, kind, when);
    fhir_patient(b, p, roll >> 8);
    if (roll % 3 == 1) {
        ps_buf_appendf(b,
                       ",\"encounter\":{\"id\":\"enc-%llu\",\"status\":\"in-progress\",\"class\":"
                       "\"IMP\",\"periodStart\":\"%s\",\"periodEnd\":null,\"serviceProvider\":"
                       "\"RR8\",\"location\":[\"%s\"],\"participant\":[\"C%07u\"]}",
                       (unsigned long long)s->counter, when, PICK(&s->rng, wards),
                       (unsigned)(synth_rand(&s->rng) % 10000000));
    } else {
        ps_buf_append_str(b, ",\"encounter\":null");
    }
    if (roll % 3 == 2) {
        const struct test *t = &PICK(&s->rng, tests);
        double v = t->low + (t->high - t->low) * (double)(synth_rand(&s->rng) % 1000) / 1000.0;
        ps_buf_appendf(b,
                       ",\"observation\":{\"id\":\"obs-%llu\",\"status\":\"final\",\"codeSystem\":"
                       "\"http://snomed.info/sct\",\"code\":\"%s\",\"display\":\"%s\","
                       "\"valueQuantity\":%.1f,\"valueUnit\":\"%s\",\"valueString\":null,"
                       "\"interpretation\":\"N\",\"effectiveDateTime\":\"%s\",\"note\":"
                       "[\"Sample taken by %s at home\"]}",
                       (unsigned long long)s->counter, t->code, t->desc, v, t->units, when,
                       p->street);
    } else {
        ps_buf_append_str(b, ",\"observation\":null");
    }
    ps_buf_append_str(b, "}");
}

ps_err_t ps_synth_next(struct ps_synth *s, struct ps_buf *json, enum ps_synth_family *family_p,
                       size_t *patient_p)
{
    size_t patient = (size_t)(synth_rand(&s->rng) % s->count);
    const struct synth_patient *p = &s->patients[patient];
    uint64_t roll = synth_rand(&s->rng);
    enum ps_synth_family family = (roll >> 40) % 2 ? PS_SYNTH_FHIR : PS_SYNTH_HL7V2;
    char when[40];
    ps_time_format_iso(s->opt.start_ms + (int64_t)s->counter * s->opt.step_ms, when, sizeof(when));
    size_t before = json->len;
    if (family == PS_SYNTH_HL7V2) {
        hl7_event(s, json, p, when, roll);
    } else {
        fhir_event(s, json, p, when, roll);
    }
    s->counter++;
    if (json->len == before) {
        return PS_ERR_NOMEM;
    }
    *family_p = family;
    if (patient_p) {
        *patient_p = patient;
    }
    return PS_OK;
}

const char *ps_synth_nhs_number(const struct ps_synth *s, size_t patient)
{
    return patient < s->count ? s->patients[patient].nhs : "";
}

const char *ps_synth_local_id(const struct ps_synth *s, size_t patient)
{
    return patient < s->count ? s->patients[patient].local_id : "";
}

ps_err_t ps_synth_manifest(const struct ps_synth *s, size_t patient, struct ps_buf *json)
{
    if (patient >= s->count) {
        return PS_ERR_INVALID;
    }
    const struct synth_patient *p = &s->patients[patient];
    char dob[16];
    ps_time_format_date(p->birth_days, dob, sizeof(dob));
    return ps_buf_appendf(
        json,
        "{\"nhs_number\":\"%s\",\"nhs_number_spaced\":\"%.3s %.3s %.4s\","
        "\"invalid_nhs_number\":\"%s\",\"family\":\"%s\",\"given\":\"%s\",\"birth_date\":\"%s\","
        "\"postcode\":\"%s\",\"address_line\":\"%s\",\"phone\":\"%s\",\"landline\":\"%s\","
        "\"email\":\"%s\",\"local_id\":\"%s\",\"fhir_id\":\"%s\",\"next_of_kin_family\":\"%s\","
        "\"next_of_kin_phone\":\"%s\",\"merged_nhs_number\":\"%s\",\"merged_local_id\":\"%s\"}",
        p->nhs, p->nhs, p->nhs + 3, p->nhs + 6, p->invalid_nhs, p->family, p->given, dob,
        p->postcode, p->street, p->phone, p->landline, p->email, p->local_id, p->fhir_id,
        p->nk_family, p->nk_phone, p->merged_nhs, p->merged_local_id);
}
