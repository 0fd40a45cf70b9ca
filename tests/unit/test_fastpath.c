/*
 * The tape path (ps_avro_internal.h) against the Avro C reference: for
 * generated events of both reference schemas, for hand-made datums of every
 * Avro type, and for the non-canonical encodings that must leave the fast
 * path, every leaf visited through the tape must equal what Avro C's decoded
 * value gives, and every projection written from the tape must equal, byte
 * for byte, the one written from Avro C's value. Artificial data only.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ps_avro_internal.h"
#include "ps_codec.h"
#include "ps_project.h"
#include "ps_schema.h"
#include "ps_synth.h"

#define HL7_SCHEMA "schemas/hl7v2/hl7v2_event.avsc"
#define FHIR_SCHEMA "schemas/fhir/fhir_event.avsc"

/* ---- leaves --------------------------------------------------------------- */

#define SEEN_MAX 512

struct seen {
    struct ps_scalar v[SEEN_MAX];
    size_t n;
    size_t stop_after; /* 0: never stop */
};

static int collect(void *opaque, const struct ps_scalar *v)
{
    struct seen *s = opaque;
    if (s->n < SEEN_MAX) {
        s->v[s->n++] = *v;
    }
    return s->stop_after && s->n >= s->stop_after;
}

static void scalar_equal(const struct ps_scalar *a, const struct ps_scalar *b)
{
    assert_int_equal(a->kind, b->kind);
    switch (a->kind) {
    case PS_SCALAR_BOOL:
    case PS_SCALAR_INT:
        assert_true(a->i == b->i);
        break;
    case PS_SCALAR_DOUBLE:
        assert_memory_equal(&a->d, &b->d, sizeof(a->d));
        break;
    case PS_SCALAR_STRING:
        assert_int_equal(a->len, b->len);
        if (a->len) {
            assert_memory_equal(a->s, b->s, a->len);
        }
        break;
    default:
        break;
    }
}

static int is_leaf(const struct ps_schema_node *n)
{
    return n->type != PS_TYPE_RECORD && n->type != PS_TYPE_ARRAY && n->type != PS_TYPE_MAP;
}

/* Every leaf, every occurrence, and the early stop, through both paths. */
static void leaves_agree(const struct ps_event *ev)
{
    const struct ps_schema *schema = ps_event_schema(ev);
    for (size_t i = 0; i < ps_schema_node_count(schema); i++) {
        int leaf = is_leaf(ps_schema_node(schema, (int)i));
        for (size_t stop = 0; stop < 2; stop++) {
            struct seen *fast = calloc(1, sizeof(*fast));
            struct seen *ref = calloc(1, sizeof(*ref));
            fast->stop_after = ref->stop_after = stop;
            ps_err_t rc_fast = ps_event_visit(ev, (int)i, collect, fast);
            ps_err_t rc_ref = ps_event_visit_reference(ev, (int)i, collect, ref);
            assert_int_equal(rc_fast, rc_ref);
            assert_int_equal(rc_fast, leaf ? PS_OK : PS_ERR_INVALID);
            assert_int_equal(fast->n, ref->n);
            for (size_t k = 0; k < fast->n; k++) {
                scalar_equal(&fast->v[k], &ref->v[k]);
            }
            if (leaf) {
                struct ps_scalar got;
                assert_int_equal(ps_event_get(ev, (int)i, &got), PS_OK);
                struct ps_scalar none = {.kind = PS_SCALAR_NULL};
                scalar_equal(&got, ref->n ? &ref->v[0] : &none);
            }
            free(fast);
            free(ref);
        }
    }
}

/* ---- projections ------------------------------------------------------------ */

static uint64_t rng_next(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

/* A deterministic stand-in for the engine's transforms: the output depends
 * on the input, so a wrong input shows in the bytes. */
struct map_state {
    char text[64];
};

static ps_err_t map_fn(void *opaque, int node, const struct ps_scalar *in, struct ps_scalar *out,
                       struct ps_error *err)
{
    (void)err;
    struct map_state *m = opaque;
    memset(out, 0, sizeof(*out));
    if (in->kind == PS_SCALAR_NULL) {
        return PS_OK;
    }
    /* Strings are not NUL-terminated: print at most their length. */
    int shown = in->kind == PS_SCALAR_STRING ? (int)(in->len < 3 ? in->len : 3) : 0;
    int n = snprintf(m->text, sizeof(m->text), "%d:%d:%lld:%zu:%.*s", node, in->kind,
                     (long long)in->i, in->len, shown, shown ? in->s : "");
    out->kind = PS_SCALAR_STRING;
    out->s = m->text;
    out->len = (size_t)n;
    return PS_OK;
}

/* A random plan: keep, drop, or (scalar leaves) map to a string. Plans the
 * projection refuses (a record left with no field) are drawn again. */
static struct ps_projection *random_projection(const struct ps_schema *schema, uint64_t *rng)
{
    size_t count = ps_schema_node_count(schema);
    struct ps_project_field *spec = calloc(count, sizeof(*spec));
    assert_non_null(spec);
    struct ps_projection *proj = NULL;
    for (int attempt = 0; !proj; attempt++) {
        int mode = attempt >= 50 ? 0 : (int)(rng_next(rng) % 4); /* 0: keep all */
        for (size_t i = 1; i < count; i++) {
            const struct ps_schema_node *n = ps_schema_node(schema, (int)i);
            uint64_t r = mode == 0 ? 0 : rng_next(rng) % 6;
            int item = n->name[0] == '[' || n->name[0] == '{';
            memset(&spec[i], 0, sizeof(spec[i]));
            if (r == 1 && !item) {
                spec[i].op = PS_PROJECT_DROP;
            } else if (r == 2 && is_leaf(n) && n->type != PS_TYPE_UNION) {
                spec[i].op = PS_PROJECT_MAP;
                spec[i].out_type = PS_TYPE_STRING;
            }
        }
        struct ps_error err;
        ps_error_clear(&err);
        ps_err_t rc = ps_projection_new(schema, spec, "uk.nhs.pseudostream.test.fast", &proj,
                                        &err);
        if (rc != PS_OK && mode == 0) {
            print_error("%s\n", err.msg);
            fail();
        }
    }
    free(spec);
    return proj;
}

static void projection_agrees(const struct ps_projection *proj, const struct ps_event *ev)
{
    struct ps_buf fast, ref;
    struct map_state m1, m2;
    struct ps_error e1, e2;
    ps_buf_init(&fast, 0);
    ps_buf_init(&ref, 0);
    ps_error_clear(&e1);
    ps_error_clear(&e2);
    ps_err_t rc1 = ps_projection_apply(proj, ev, map_fn, &m1, &fast, &e1);
    ps_err_t rc2 = ps_projection_apply_reference(proj, ev, map_fn, &m2, &ref, &e2);
    assert_int_equal(rc1, rc2);
    assert_int_equal(fast.len, ref.len);
    if (fast.len) {
        assert_memory_equal(fast.data, ref.data, fast.len);
    }
    ps_buf_free(&fast);
    ps_buf_free(&ref);
}

static struct ps_schema *load_file(const char *path)
{
    struct ps_schema *schema = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    ps_err_t rc = ps_schema_load_file(path, NULL, &schema, &err);
    if (rc != PS_OK) {
        print_error("%s\n", err.msg);
    }
    assert_int_equal(rc, PS_OK);
    assert_true(schema->bound);
    return schema;
}

static void test_generated_events(void **state)
{
    (void)state;
    struct ps_schema *schemas[2] = {load_file(HL7_SCHEMA), load_file(FHIR_SCHEMA)};
    struct ps_projection *projs[2][8];
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    struct ps_projection *keep[2];
    for (int f = 0; f < 2; f++) {
        for (int p = 0; p < 8; p++) {
            projs[f][p] = random_projection(schemas[f], &rng);
        }
        struct ps_project_field *all = calloc(ps_schema_node_count(schemas[f]), sizeof(*all));
        struct ps_error kerr;
        assert_int_equal(ps_projection_new(schemas[f], all, "t", &keep[f], &kerr), PS_OK);
        free(all);
    }
    struct ps_synth *synth = NULL;
    struct ps_synth_options so = {.seed = 7, .patients = 300};
    struct ps_error err;
    ps_error_clear(&err);
    assert_int_equal(ps_synth_new(&so, &synth, &err), PS_OK);
    struct ps_decoder *dec = NULL;
    assert_int_equal(ps_decoder_new(NULL, &dec, &err), PS_OK);
    struct ps_buf json, datum;
    ps_buf_init(&json, 0);
    ps_buf_init(&datum, 0);
    for (int i = 0; i < 1500; i++) {
        enum ps_synth_family family;
        ps_buf_reset(&json);
        ps_buf_reset(&datum);
        assert_int_equal(ps_synth_next(synth, &json, &family, NULL), PS_OK);
        int f = family == PS_SYNTH_FHIR ? 1 : 0;
        assert_int_equal(ps_codec_json_to_datum(schemas[f], (const char *)json.data, json.len,
                                                &datum, &err), PS_OK);
        struct ps_event *ev = NULL;
        assert_int_equal(ps_decoder_decode(dec, schemas[f], datum.data, datum.len, &ev, &err),
                         PS_OK);
        assert_true(ev->fast); /* our encoder writes canonical datums */
        leaves_agree(ev);
        for (int p = 0; p < 8; p++) {
            projection_agrees(projs[f][p], ev);
        }
        /* A kept-whole record is the input again, byte for byte. */
        struct ps_buf copy;
        ps_buf_init(&copy, 0);
        assert_int_equal(ps_projection_apply(keep[f], ev, NULL, NULL, &copy, &err), PS_OK);
        assert_int_equal(copy.len, datum.len);
        assert_memory_equal(copy.data, datum.data, datum.len);
        ps_buf_free(&copy);
    }
    ps_buf_free(&json);
    ps_buf_free(&datum);
    ps_decoder_destroy(dec);
    ps_synth_destroy(synth);
    for (int f = 0; f < 2; f++) {
        for (int p = 0; p < 8; p++) {
            ps_projection_destroy(projs[f][p]);
        }
        ps_projection_destroy(keep[f]);
        ps_schema_destroy(schemas[f]);
    }
}

/* ---- every Avro type, and encodings the fast path must leave ------------- */

static const char *const all_types_schema =
    "{\"type\":\"record\",\"name\":\"All\",\"namespace\":\"t\",\"fields\":["
    "{\"name\":\"b\",\"type\":\"boolean\"},"
    "{\"name\":\"i\",\"type\":\"int\"},"
    "{\"name\":\"l\",\"type\":[\"null\",\"long\"]},"
    "{\"name\":\"f\",\"type\":\"float\"},"
    "{\"name\":\"d\",\"type\":\"double\"},"
    "{\"name\":\"by\",\"type\":\"bytes\"},"
    "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\",\"C\"]}},"
    "{\"name\":\"fx\",\"type\":{\"type\":\"fixed\",\"name\":\"F\",\"size\":3}},"
    "{\"name\":\"u\",\"type\":[\"null\",\"string\",\"long\",{\"type\":\"record\",\"name\":\"U\","
    "\"fields\":[{\"name\":\"z\",\"type\":\"int\"}]}]},"
    "{\"name\":\"xs\",\"type\":{\"type\":\"array\",\"items\":\"long\"}},"
    "{\"name\":\"rs\",\"type\":{\"type\":\"array\",\"items\":{\"type\":\"record\",\"name\":\"R\","
    "\"fields\":[{\"name\":\"s\",\"type\":[\"string\",\"null\"]},"
    "{\"name\":\"n\",\"type\":[\"null\",{\"type\":\"record\",\"name\":\"R2\","
    "\"fields\":[{\"name\":\"q\",\"type\":\"string\"}]}]}]}}},"
    "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"int\"}},"
    "{\"name\":\"opt\",\"type\":[\"null\",\"R2\"]}"
    "]}";

/* The fixed part of a datum of All, up to the union u. */
static const uint8_t all_head[] = {
    0x01,                   /* b = true */
    0x95, 0x9a, 0x0c,       /* i = -99659 */
    0x02, 0xac, 0x02,       /* l = 150 */
    0x00, 0x00, 0xc0, 0x3f, /* f = 1.5 */
    0, 0, 0, 0, 0, 0, 0x04, 0xc0, /* d = -2.5 */
    0x04, 0x00, 0xff,       /* by = 00 ff */
    0x04,                   /* e = C */
    'x', 'y', 'z',          /* fx */
};

struct case_bytes {
    const char *what;
    uint8_t tail[64];
    size_t tail_len;
    int fast;
};

static const struct case_bytes all_cases[] = {
    {"canonical, string branch",
     {0x02, 0x04, 'h', 'i',             /* u = "hi" */
      0x04, 0x02, 0x04, 0x00,           /* xs = [1, 2] */
      0x02, 0x00, 0x02, 'a', 0x02, 0x02, 'q', 0x00, /* rs = [{s: "a", n: {q: "q"}}] */
      0x00,                             /* m = {} */
      0x02, 0x02, 'w'},                 /* opt = {q: "w"} */
     20, 1},
    {"canonical, record branch, nulls",
     {0x06, 0x54,                       /* u = U{z: 42} */
      0x00,                             /* xs = [] */
      0x04, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, /* rs = [{s: null, n: null}, {s: "", n: null}] */
      0x00,                             /* m = {} */
      0x00},                            /* opt = null */
     12, 1},
    {"long branch, over-long varint",
     {0x04, 0x82, 0x00,                 /* u = 1, in two bytes */
      0x00, 0x00, 0x00, 0x00},
     7, 0},
    {"array in two blocks",
     {0x00, 0x02, 0x02, 0x02, 0x04, 0x00, 0x00, 0x00, 0x00}, 9, 0},
    {"array block with a byte size",
     {0x00, 0x03, 0x04, 0x02, 0x04, 0x00, 0x00, 0x00, 0x00}, 9, 0},
    {"map with a duplicated key",
     {0x00, 0x00, 0x00, 0x04, 0x02, 'k', 0x02, 0x02, 'k', 0x04, 0x00, 0x00}, 12, 0},
};

static void test_all_types(void **state)
{
    (void)state;
    struct ps_schema *schema = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    assert_int_equal(ps_schema_load_json(all_types_schema, "all", NULL, &schema, &err), PS_OK);
    assert_true(schema->bound);
    struct ps_decoder *dec = NULL;
    assert_int_equal(ps_decoder_new(NULL, &dec, &err), PS_OK);
    uint64_t rng = 12345;
    struct ps_projection *projs[16];
    for (int p = 0; p < 16; p++) {
        projs[p] = random_projection(schema, &rng);
    }
    for (size_t c = 0; c < sizeof(all_cases) / sizeof(all_cases[0]); c++) {
        uint8_t datum[128];
        memcpy(datum, all_head, sizeof(all_head));
        memcpy(datum + sizeof(all_head), all_cases[c].tail, all_cases[c].tail_len);
        size_t len = sizeof(all_head) + all_cases[c].tail_len;
        struct ps_event *ev = NULL;
        ps_err_t rc = ps_decoder_decode(dec, schema, datum, len, &ev, &err);
        if (rc != PS_OK) {
            print_error("%s: %s\n", all_cases[c].what, err.msg);
        }
        assert_int_equal(rc, PS_OK);
        assert_int_equal(ev->fast, all_cases[c].fast);
        leaves_agree(ev);
        for (int p = 0; p < 16; p++) {
            projection_agrees(projs[p], ev);
        }
        /* Whichever path served it, the event's bytes are the decoder's own. */
        memset(datum, 0xee, sizeof(datum));
        leaves_agree(ev);
    }
    for (int p = 0; p < 16; p++) {
        ps_projection_destroy(projs[p]);
    }
    ps_decoder_destroy(dec);
    ps_schema_destroy(schema);
}

/* A refused datum never leaves a half-recorded tape behind for the next one. */
static void test_refused_then_valid(void **state)
{
    (void)state;
    struct ps_schema *schema = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    assert_int_equal(ps_schema_load_json(all_types_schema, "all", NULL, &schema, &err), PS_OK);
    struct ps_decoder *dec = NULL;
    assert_int_equal(ps_decoder_new(NULL, &dec, &err), PS_OK);
    uint8_t datum[128];
    memcpy(datum, all_head, sizeof(all_head));
    memcpy(datum + sizeof(all_head), all_cases[0].tail, all_cases[0].tail_len);
    size_t len = sizeof(all_head) + all_cases[0].tail_len;
    struct ps_event *ev = NULL;
    for (size_t cut = 0; cut < len; cut++) {
        assert_int_not_equal(ps_decoder_decode(dec, schema, datum, cut, &ev, &err), PS_OK);
    }
    assert_int_equal(ps_decoder_decode(dec, schema, datum, len, &ev, &err), PS_OK);
    assert_true(ev->fast);
    leaves_agree(ev);
    ps_decoder_destroy(dec);
    ps_schema_destroy(schema);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generated_events),
        cmocka_unit_test(test_all_types),
        cmocka_unit_test(test_refused_then_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
