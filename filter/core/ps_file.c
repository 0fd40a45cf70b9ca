#include "ps_file.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

ps_err_t ps_file_read_fd(int fd, const char *path, char *buf, size_t cap, size_t *len_p,
                         struct ps_error *err)
{
    size_t len = 0;
    while (len < cap) {
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return ps_error_set_at(err, PS_ERR_IO, path, 0, 0, "cannot read: %s",
                                   strerror(errno));
        }
        if (n == 0) {
            break;
        }
        len += (size_t)n;
    }
    *len_p = len;
    return PS_OK;
}
