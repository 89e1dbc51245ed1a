/*
 * cli.h - subcommands of the rtscore binary. Each takes argv with its own
 * name at argv[0] and returns the process exit code.
 */
#ifndef RTS_CLI_CLI_H
#define RTS_CLI_CLI_H

#include <stdio.h>

int rts_cmd_run(int argc, char **argv);
int rts_cmd_check(int argc, char **argv);
int rts_cmd_backfill(int argc, char **argv);
int rts_cmd_gen(int argc, char **argv);
int rts_cmd_predict(int argc, char **argv);
int rts_cmd_store(int argc, char **argv);
int rts_cmd_demo(int argc, char **argv);
int rts_cmd_dev_kafka(int argc, char **argv);
int rts_cmd_help(int argc, char **argv);
int rts_cmd_version(int argc, char **argv);

void rts_cli_usage(FILE *out);
void rts_cli_signals(void);

#endif /* RTS_CLI_CLI_H */
