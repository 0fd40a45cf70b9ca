/*
 * libFuzzer target: the disclosure policy loader (libcyaml + the second
 * libyaml pass for locations) on arbitrary bytes. A policy file is written
 * by people, but it is parsed before anything checks it, so a hostile or
 * broken one must fail with an error, never crash or leak.
 */
#include "fuzz_common.h"
#include "ps_policy_doc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_quiet();
    const char *path = fuzz_write_file(data, size, ".policy.yaml");
    struct ps_policy_doc *doc = NULL;
    struct ps_error err = {0};
    if (ps_policy_doc_load(path, &doc, &err) == PS_OK) {
        ps_policy_doc_destroy(doc);
    }
    return 0;
}
