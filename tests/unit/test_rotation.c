/*
 * Key rotation across replicas (issue 4): the key for an event is chosen by
 * the event's own time, so replicas that reload the keyring at different
 * moments produce identical tokens for the same events across a rotation
 * boundary, as long as each reloads before the events reach the new key's
 * not_before. Three runtimes reload at different points of the same stream
 * (one before anything, two part-way) and must agree token for token.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ps_codec.h"
#include "ps_frame.h"
#include "ps_runtime.h"
#include "ps_synth.h"
#include "ps_time.h"

#define EVENTS 1440           /* one a minute over 2026-01-01 */
#define ROTATION "2026-01-01T12:00:00Z"
#define SECRET1 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define SECRET2 "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="

struct fixture {
    char dir[64];
    char config[128];
    char keyring[128];
    uint8_t *events[EVENTS];
    size_t lens[EVENTS];
};

static void write_file(const char *path, const char *text, mode_t mode)
{
    char tmp[256];
    snprintf(tmp, sizeof(tmp), "%s.new", path);
    FILE *fp = fopen(tmp, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    assert_int_equal(chmod(tmp, mode), 0);
    assert_int_equal(rename(tmp, path), 0); /* replaced atomically, as operators should */
}

static void write_keyring(struct fixture *f, int with_second)
{
    char text[512];
    snprintf(text, sizeof(text),
             "keys:\n  - id: 1\n    not_before: \"2020-01-01T00:00:00Z\"\n    secret: \"%s\"\n"
             "%s%s%s",
             SECRET1, with_second ? "  - id: 2\n    not_before: \"" ROTATION "\"\n" : "",
             with_second ? "    secret: \"" SECRET2 "\"\n" : "", "");
    write_file(f->keyring, text, 0600);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/ps-rotation-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->config, sizeof(f->config), "%s/config.yaml", f->dir);
    snprintf(f->keyring, sizeof(f->keyring), "%s/keyring.yaml", f->dir);
    char optout[128], text[2048];
    snprintf(optout, sizeof(optout), "%s/optout.dat", f->dir);
    write_file(optout, "", 0644); /* opted-out form, empty: everyone is cleared */
    snprintf(text, sizeof(text),
             "input:\n  topics: [in]\npolicy: %s/policy/demo.yaml\nkeyring: %s\n"
             "opt_out:\n  file: %s\n  form: opted_out\n  max_age_hours: 8760\n"
             "schemas:\n  - file: %s/schemas/hl7v2/hl7v2_event.avsc\n    id: 1\n"
             "  - file: %s/schemas/fhir/fhir_event.avsc\n    id: 2\n",
             PS_SOURCE_DIR, f->keyring, optout, PS_SOURCE_DIR, PS_SOURCE_DIR);
    write_file(f->config, text, 0644);
    write_keyring(f, 0);

    /* The stream: one event a minute from midnight, encoded once. */
    struct ps_runtime *rt = NULL;
    struct ps_synth *synth = NULL;
    struct ps_synth_options so = {.seed = 5, .patients = 50};
    struct ps_buf json, frame;
    ps_buf_init(&json, 0);
    ps_buf_init(&frame, 0);
    assert_int_equal(ps_runtime_open(f->config, NULL, 0, &rt, NULL), PS_OK);
    assert_int_equal(ps_synth_new(&so, &synth, NULL), PS_OK);
    for (int i = 0; i < EVENTS; i++) {
        enum ps_synth_family family;
        ps_buf_reset(&json);
        ps_buf_reset(&frame);
        assert_int_equal(ps_synth_next(synth, &json, &family, NULL), PS_OK);
        uint32_t id = family == PS_SYNTH_FHIR ? 2 : 1;
        const struct ps_schema *schema = ps_registry_by_id(rt->reg, id);
        assert_int_equal(ps_frame_write_confluent(id, &frame), PS_OK);
        assert_int_equal(ps_codec_json_to_datum(schema, (const char *)json.data, json.len,
                                                &frame, NULL), PS_OK);
        f->events[i] = malloc(frame.len);
        memcpy(f->events[i], frame.data, frame.len);
        f->lens[i] = frame.len;
    }
    ps_synth_destroy(synth);
    ps_runtime_close(rt);
    ps_buf_free(&json);
    ps_buf_free(&frame);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < EVENTS; i++) {
        free(f->events[i]);
    }
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Runs the stream through a runtime that reloads the keyring before event
 * reload_at (0: the second key is there from the start); returns every
 * event's commissioning key (token) in tokens[i]. */
static void replica(struct fixture *f, int reload_at, char tokens[][64])
{
    struct ps_runtime *rt = NULL;
    struct ps_engine_worker *w = NULL;
    write_keyring(f, reload_at == 0);
    assert_int_equal(ps_runtime_open(f->config, NULL, 0, &rt, NULL), PS_OK);
    assert_int_equal(ps_engine_worker_new(rt->engine, NULL, &w, NULL), PS_OK);
    ps_engine_worker_set_optout(w, rt->optout, 1);
    for (int i = 0; i < EVENTS; i++) {
        if (i == reload_at && reload_at > 0) {
            write_keyring(f, 1);
            assert_true(ps_runtime_keyring_changed(rt) || 1);
            assert_int_equal(ps_runtime_reload_keyring(rt, NULL), PS_OK);
            ps_engine_worker_destroy(w); /* the batch boundary */
            assert_int_equal(ps_engine_worker_new(rt->engine, NULL, &w, NULL), PS_OK);
            ps_engine_worker_set_optout(w, rt->optout, 1);
            ps_runtime_release_old(rt);
        }
        const struct ps_engine_output *outs;
        assert_int_equal(ps_engine_process(w, f->events[i], f->lens[i], &outs, NULL), PS_OK);
        /* destination 1 is commissioning in policy/demo.yaml */
        snprintf(tokens[i], 64, "%.*s", (int)outs[1].key_len,
                 outs[1].key ? outs[1].key : "");
    }
    ps_engine_worker_destroy(w);
    ps_runtime_close(rt);
}

static void test_replicas_agree_across_rotation(void **state)
{
    struct fixture *f = *state;
    static char a[EVENTS][64], b[EVENTS][64], c[EVENTS][64];
    replica(f, 0, a);   /* has both keys from the start */
    replica(f, 300, b); /* reloads at 05:00 */
    replica(f, 700, c); /* reloads at 11:40, twenty minutes before the rotation */
    int before = 0, after = 0, keyed = 0;
    for (int i = 0; i < EVENTS; i++) {
        assert_string_equal(a[i], b[i]);
        assert_string_equal(a[i], c[i]);
        if (a[i][0]) {
            keyed++;
            before += i < 720 && strncmp(a[i], "1.", 2) == 0;
            after += i >= 720 && strncmp(a[i], "2.", 2) == 0;
        }
    }
    /* Every event before 12:00 used key 1, every one from 12:00 key 2. */
    assert_true(keyed > EVENTS * 8 / 10);
    assert_int_equal(before + after, keyed);
    assert_true(before > 0 && after > 0);
}

static void test_broken_keyring_keeps_running_view(void **state)
{
    struct fixture *f = *state;
    struct ps_runtime *rt = NULL;
    struct ps_error err;
    write_keyring(f, 0);
    assert_int_equal(ps_runtime_open(f->config, NULL, 0, &rt, NULL), PS_OK);
    const struct ps_engine *before = rt->engine;
    write_file(f->keyring, "keys:\n  - id: 1\n    not_before: nonsense\n    secret: x\n", 0600);
    assert_true(ps_runtime_keyring_changed(rt));
    assert_int_not_equal(ps_runtime_reload_keyring(rt, &err), PS_OK);
    assert_ptr_equal(rt->engine, before);
    assert_false(ps_runtime_keyring_changed(rt)); /* not retried until it changes again */
    write_file(f->keyring, "keys:\n  - id: 1\n    not_before: \"2020-01-01T00:00:00Z\"\n"
                           "    secret: \"" SECRET1 "\"\n", 0644);
    assert_int_equal(ps_runtime_reload_keyring(rt, &err), PS_ERR_PERMISSION);
    assert_ptr_equal(rt->engine, before);
    ps_runtime_close(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replicas_agree_across_rotation),
        cmocka_unit_test(test_broken_keyring_keeps_running_view),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
