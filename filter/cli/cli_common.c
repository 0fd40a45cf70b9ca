#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

#ifndef PS_INSTALL_DATADIR
#define PS_INSTALL_DATADIR "/usr/share/pseudostream"
#endif

volatile sig_atomic_t cli_stop = 0;
volatile sig_atomic_t cli_reload = 0;

static void on_signal(int sig)
{
    if (sig == SIGHUP) {
        cli_reload = 1;
    } else {
        cli_stop = 1;
    }
}

void cli_signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

int cli_fail(const struct ps_error *err)
{
    char line[PS_ERROR_MSG_MAX + PS_ERROR_FILE_MAX + 64];
    ps_error_format(err, line, sizeof(line));
    fprintf(stderr, "pseudostream: (%s) %s\n", ps_err_name(err->code), line);
    switch (err->code) {
    case PS_ERR_CONFIG:
    case PS_ERR_SCHEMA:
    case PS_ERR_PERMISSION:
    case PS_ERR_INVALID:
        return CLI_EXIT_USAGE;
    case PS_ERR_KAFKA_FATAL:
        return CLI_EXIT_KAFKA_FATAL;
    default:
        return CLI_EXIT_FAILURE;
    }
}

int cli_usage_error(const char *command, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "pseudostream %s: %s (see pseudostream %s --help)\n", command, msg, command);
    return CLI_EXIT_USAGE;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *cli_data_dir(void)
{
    const char *env = getenv("PSEUDOSTREAM_DATA_DIR");
    if (env && *env) {
        return env;
    }
    static char source_policy[4096];
    snprintf(source_policy, sizeof(source_policy), "%s/policy", PS_SOURCE_DIR);
    if (is_dir(source_policy)) {
        return PS_SOURCE_DIR;
    }
    return PS_INSTALL_DATADIR;
}

void cli_data_path(const char *relative, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", cli_data_dir(), relative);
}
