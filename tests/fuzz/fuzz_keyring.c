/*
 * libFuzzer target: the keyring file loader on arbitrary bytes (the file is
 * written mode 0600, or the loader refuses it before parsing). Secrets go to
 * guarded memory; a broken file must fail with an error that never repeats
 * a secret, and never crash or leak.
 */
#include "fuzz_common.h"
#include "ps_keyring.h"
#include "ps_keyring_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    struct ps_error err = {0};
    fuzz_quiet();
    if (!init) {
        if (ps_crypto_init(&err) != PS_OK) {
            abort();
        }
        init = 1;
    }
    const char *path = fuzz_write_file(data, size, ".keyring.yaml");
    struct ps_keyring_file *kf = NULL;
    if (ps_keyring_file_load(path, &kf, &err) == PS_OK) {
        ps_keyring_file_destroy(kf);
    }
    return 0;
}
