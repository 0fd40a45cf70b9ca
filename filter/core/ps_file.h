/*
 * ps_file: reading a whole small file from a descriptor into a caller's
 * buffer (secrets, keys, configuration), retrying interrupted reads. Kept to
 * one place so every reader of secret files behaves the same: no stdio
 * buffers holding a hidden copy, errors naming the file only.
 */
#ifndef PS_FILE_H
#define PS_FILE_H

#include <stddef.h>

#include "ps_error.h"

/* Reads from fd until end of file or until cap bytes are in buf; *len_p is
 * what was read (== cap means the buffer filled up: the caller decides
 * whether that is an error). PS_ERR_IO naming path when a read fails. */
ps_err_t ps_file_read_fd(int fd, const char *path, char *buf, size_t cap, size_t *len_p,
                         struct ps_error *err);

#endif
