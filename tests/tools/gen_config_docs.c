/*
 * gen_config_docs: writes docs/CONFIGURATION.md to stdout from the settings
 * table in filter/config/ps_config.c. The ctest "unit.config_docs" fails when
 * the checked-in file differs; `cmake --build build --target config_docs`
 * rewrites it.
 */
#include <stdio.h>

#include "ps_config.h"

int main(void)
{
    struct ps_error err;
    ps_error_clear(&err);
    if (ps_config_docs_write(stdout, &err) != PS_OK || fflush(stdout) != 0) {
        fprintf(stderr, "gen_config_docs: %s\n", err.msg[0] ? err.msg : "cannot write stdout");
        return 1;
    }
    return 0;
}
