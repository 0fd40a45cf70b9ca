/*
 * What the libFuzzer targets share: writing the input to a private temporary
 * file for the loaders that take a path.
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ps_log.h"

/* Writes data to a file private to this process (mode 0600, as the keyring
 * loader demands) and returns its path, reused for every input. */
static inline const char *fuzz_write_file(const uint8_t *data, size_t size, const char *suffix)
{
    static char path[128];
    if (!path[0]) {
        snprintf(path, sizeof(path), "/tmp/pseudostream-fuzz-%ld%s", (long)getpid(), suffix);
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        abort();
    }
    fchmod(fd, 0600);
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(fd, data + off, size - off);
        if (n <= 0) {
            abort();
        }
        off += (size_t)n;
    }
    close(fd);
    return path;
}

/* Logs of the code under test would drown the fuzzer's own output. */
static inline void fuzz_quiet(void)
{
    static int done;
    if (!done) {
        FILE *null = fopen("/dev/null", "w");
        if (null) {
            ps_log_set_stream(null);
        }
        ps_log_set_level(PS_LOG_ERROR);
        done = 1;
    }
}

#endif
