/*
 * The pseudostream command line: a thin layer over the library. Only this
 * layer prints, and it prints one line per error: "pseudostream: (code) detail".
 *
 * Exit codes: 0 success; 1 runtime failure; 2 usage or configuration error;
 * 3 Kafka fatal error (fencing included).
 */
#ifndef PS_CLI_H
#define PS_CLI_H

#include <signal.h>
#include <stddef.h>

#include "ps_error.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAILURE 1
#define CLI_EXIT_USAGE 2
#define CLI_EXIT_KAFKA_FATAL 3

/* Default Confluent ids of the reference schemas when no config names them. */
#define CLI_HL7V2_SCHEMA_ID 1
#define CLI_FHIR_SCHEMA_ID 2

/* Set by SIGINT/SIGTERM (stop) and SIGHUP (reload the keyring) once
 * cli_signals_install ran. */
extern volatile sig_atomic_t cli_stop;
extern volatile sig_atomic_t cli_reload;
void cli_signals_install(void);

/* Prints "pseudostream: (name) file:line:col: message" to stderr and returns
 * the exit code for the error. */
int cli_fail(const struct ps_error *err);
/* Prints a usage error and returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The folder holding policy/ and schemas/: $PSEUDOSTREAM_DATA_DIR, else the
 * source tree the binary was built from, else the installed share folder. */
const char *cli_data_dir(void);
/* data dir + "/" + relative, into buf. */
void cli_data_path(const char *relative, char *buf, size_t size);

/* The subcommands. argv[0] is the subcommand's name. */
int cmd_broker(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_consume(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_keyring(int argc, char **argv);
int cmd_pseudonymise(int argc, char **argv);
int cmd_reidentify(int argc, char **argv);
int cmd_policy(int argc, char **argv);

#endif
