/*
 * libFuzzer target: the service configuration loader (libcyaml, strict
 * numbers, secrets by _file indirection) on arbitrary bytes, with an empty
 * environment so the result depends on the bytes only.
 */
#include "fuzz_common.h"
#include "ps_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const no_env[] = {NULL};
    fuzz_quiet();
    const char *path = fuzz_write_file(data, size, ".config.yaml");
    struct ps_config *conf = NULL;
    struct ps_error err = {0};
    if (ps_config_load_env(path, no_env, &conf, &err) == PS_OK) {
        ps_config_destroy(conf);
    }
    return 0;
}
