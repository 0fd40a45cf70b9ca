/*
 * libFuzzer target: the whole path an input message's value takes, bytes to
 * decisions. ps_engine_process parses the frame (Confluent id or
 * single-object fingerprint), resolves the schema among the reference
 * schemas (HL7v2 id 1, FHIR id 2), validates and decodes the Avro datum, and
 * runs every destination of the demo policy (pseudonyms, generalisation,
 * predicates, derived-record encoding). Whatever the bytes, it must return
 * an error or decisions, never crash, leak, or read out of bounds.
 *
 * The runtime is built once from a throw-away configuration: a fixed
 * artificial keyring and an empty opted-out list, so secondary-use plans run
 * too instead of being withheld for want of an opt-out state.
 */
#include "fuzz_common.h"
#include "ps_engine.h"
#include "ps_runtime.h"

static struct ps_runtime *rt;
static struct ps_engine_worker *worker;

static void write_text(const char *path, const char *text, mode_t mode)
{
    FILE *fp = fopen(path, "w");
    if (!fp) {
        abort();
    }
    fputs(text, fp);
    fclose(fp);
    chmod(path, mode);
}

/* At exit the runtime is torn down as `run` does, so that LeakSanitizer's
 * final check judges the real ownership: while the worker lives, the decoded
 * values it reuses are held through pointers LeakSanitizer does not follow
 * and would be reported as leaked. Leaks per input are still checked by
 * libFuzzer (-detect_leaks). */
static void teardown(void)
{
    ps_engine_worker_destroy(worker);
    worker = NULL;
    ps_runtime_close(rt);
    rt = NULL;
}

static void setup(void)
{
    char dir[] = "/tmp/pseudostream-fuzz-decode-XXXXXX";
    char path[256];
    char text[2048];
    struct ps_error err = {0};
    const char *src = getenv("PS_SOURCE_DIR") ? getenv("PS_SOURCE_DIR") : PS_SOURCE_DIR;
    if (!mkdtemp(dir)) {
        abort();
    }
    snprintf(path, sizeof(path), "%s/keyring.yaml", dir);
    write_text(path,
               "keys:\n  - id: 1\n    not_before: \"2000-01-01T00:00:00Z\"\n"
               "    secret: \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"\n",
               0600);
    snprintf(path, sizeof(path), "%s/optout.dat", dir);
    write_text(path, "", 0600);
    snprintf(text, sizeof(text),
             "kafka:\n  bootstrap_servers: \"127.0.0.1:9\"\n"
             "input:\n  topics: [in]\n"
             "dead_letter_topic: dlq\n"
             "opt_out:\n  file: \"%s/optout.dat\"\n  form: opted_out\n"
             "  as_of: \"2099-01-01T00:00:00Z\"\n  max_age_hours: 24\n"
             "schemas:\n"
             "  - file: \"%s/schemas/hl7v2/hl7v2_event.avsc\"\n    id: 1\n"
             "  - file: \"%s/schemas/fhir/fhir_event.avsc\"\n    id: 2\n"
             "policy: \"%s/policy/demo.yaml\"\n"
             "keyring: \"%s/keyring.yaml\"\n",
             dir, src, src, src, dir);
    snprintf(path, sizeof(path), "%s/config.yaml", dir);
    write_text(path, text, 0600);
    if (ps_runtime_open(path, NULL, 0, &rt, &err) != PS_OK ||
        ps_engine_worker_new(rt->engine, &rt->limits, &worker, &err) != PS_OK) {
        fprintf(stderr, "fuzz_decode: set-up failed: %s\n", err.msg);
        abort();
    }
    /* The opted-out list is empty and dated in the future: fresh. */
    ps_engine_worker_set_optout(worker, rt->optout, 1);
    atexit(teardown);
    snprintf(text, sizeof(text), "rm -rf '%s'", dir);
    if (system(text) != 0) {
        fprintf(stderr, "fuzz_decode: could not remove %s\n", dir);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!rt) {
        fuzz_quiet();
        setup();
    }
    const struct ps_engine_output *outs = NULL;
    struct ps_error err = {0};
    if (ps_engine_process(worker, data, size, &outs, &err) == PS_OK) {
        /* Touch every output, as the pipeline does when it sends them. */
        volatile size_t sum = 0;
        for (size_t d = 0; d < ps_engine_destination_count(rt->engine); d++) {
            if (outs[d].decision == PS_DISCLOSED) {
                for (size_t i = 0; i < outs[d].len; i++) {
                    sum += ((const uint8_t *)outs[d].value)[i];
                }
                for (size_t i = 0; i < outs[d].key_len; i++) {
                    sum += ((const uint8_t *)outs[d].key)[i];
                }
            }
        }
        (void)sum;
    }
    return 0;
}
